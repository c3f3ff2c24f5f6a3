/*
 * fuzz_frame.c - libFuzzer target for frame_decode and the body reader.
 *
 * The first input byte picks a mode. Raw mode hands the rest to frame_decode
 * as it is: without the key nothing may be accepted, so an accepted frame is a
 * forged MAC and aborts. Signed mode first overwrites the input's last 16
 * bytes with the MAC made with the key, so the checks after the MAC (type,
 * flags) and the body reader are reached too. An accepted body is then walked
 * with wire_reader, the input choosing which getters run, to check the reader
 * never reads outside the body whatever its lengths say.
 *
 * Built only with clang (tests/CMakeLists.txt); run e.g.
 *   fuzz_frame -max_total_time=60
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "frame.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Below libFuzzer's default input limit (4096), so oversize is reachable. */
#define FUZZ_MAX_BODY 512u

static const frame_key_t *fuzz_key(void)
{
    static frame_key_t key;
    static int ready;
    if (!ready) {
        static const char secret[] = "fuzzing secret, 32 bytes long!!";
        if (frame_key_from_secret(&key, secret, sizeof secret - 1) != 0)
            abort();
        ready = 1;
    }
    return &key;
}

static volatile uint8_t fuzz_sink;

/* Walk the body with getters chosen by its own bytes. */
static void fuzz_body(const uint8_t *body, size_t len)
{
    wire_reader_t r;
    wire_reader_init(&r, body, len);
    char s[64];
    const uint8_t *b;
    for (int i = 0; i < 64 && r.err == 0 && r.off < r.len; i++) {
        switch (wire_get_u8(&r) % 6) {
        case 0: (void)wire_get_u16(&r); break;
        case 1: (void)wire_get_u32(&r); break;
        case 2: (void)wire_get_u64(&r); break;
        case 3: (void)wire_get_str(&r, s, sizeof s); break;
        case 4: {
            size_t n = wire_get_bytes(&r, &b);
            if (n > 0) /* touch both ends: ASan sees a reference past the body */
                fuzz_sink ^= b[0] ^ b[n - 1];
            break;
        }
        default: (void)wire_reader_done(&r); break;
        }
        if (r.off > r.len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const frame_key_t *key = fuzz_key();
    int signed_mode = data[0] & 1;
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1); /* exact size: ASan sees any overread */
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, n);
    if (signed_mode && n >= FRAME_MAC_SIZE)
        crypto_generichash(buf + n - FRAME_MAC_SIZE, FRAME_MAC_SIZE, buf,
                           n - FRAME_MAC_SIZE, key->bytes, FRAME_KEY_SIZE);
    frame_header_t h;
    const uint8_t *body;
    frame_reject_t why;
    int rc = frame_decode(key, buf, n, FUZZ_MAX_BODY, &h, &body, &why);
    if (rc == 0) {
        if (!signed_mode || why != FRAME_OK || h.length != n - FRAME_HEADER_SIZE -
                                                               FRAME_MAC_SIZE)
            abort(); /* accepted without the key: a forged MAC */
        fuzz_body(body, h.length);
    } else if (rc != HERD_EBADFRAME || why == FRAME_OK || why >= FRAME_REJECT_COUNT) {
        abort();
    }
    free(buf);
    return 0;
}
