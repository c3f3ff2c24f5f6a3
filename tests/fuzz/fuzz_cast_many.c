/*
 * fuzz_cast_many.c - fuzz target for the data of a cast to many processes
 * as a node receives it from a member (remote_many_decode, PROTOCOL.md
 * cast_many): whatever the bytes, the decoder reads nothing outside them
 * (the sanitizers watch), and what it accepts is exactly the layout (16
 * bytes, the serials, the payload, nothing more) with a count in bounds.
 * The receive path around it (refusal, counting, delivery) is tested in
 * test_cast_many.c; this is where odd lengths and counts are thrown at it.
 * Seeds: well-formed data with 1, 3 and 500 serials, with and without a
 * payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seeds.h"
#include "remote_int.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    remote_many_t m;
    if (remote_many_decode(data, size, &m) != 0)
        return 0;
    if (m.count == 0 || m.count > REMOTE_MANY_MAX ||
        REMOTE_MANY_HEAD + (size_t)m.count * 8 + m.len != size || m.data == NULL)
        abort(); /* accepted something that is not the layout */
    uint64_t sum = 0;
    for (uint32_t i = 0; i < m.count; i++)
        sum += remote_many_serial(&m, i);
    for (size_t i = 0; i < m.len; i++)
        sum += m.data[i];
    g_sink = sum; /* every byte read */
    return 0;
}

static void seed(fuzz_seed_t *s, uint32_t count, const char *payload)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, 1234567);
    wire_put_u32(&w, count);
    for (uint32_t i = 0; i < count; i++)
        wire_put_u64(&w, i * 3 + 1);
    wire_put_bytes(&w, payload, strlen(payload));
    s->data = wire_writer_take(&w, &s->len);
    if (s->data == NULL)
        abort();
}

size_t fuzz_seeds(fuzz_seed_t **out)
{
    fuzz_seed_t *s = calloc(4, sizeof(*s));
    if (s == NULL)
        abort();
    seed(&s[0], 1, "hello");
    seed(&s[1], 3, "");
    seed(&s[2], 3, "a longer payload, for the fuzzer to cut and splice");
    seed(&s[3], 500, "x"); /* near the driver's 4 KiB inputs */
    *out = s;
    return 4;
}

void fuzz_seeds_free(fuzz_seed_t *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(seeds[i].data);
    free(seeds);
}
