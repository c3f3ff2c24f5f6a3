/*
 * frame.c - encode and validate the cluster's wire frame (frame.h,
 * PROTOCOL.md).
 *
 * The header is written and read field by field at the fixed offsets below,
 * never through a struct laid over the bytes, so the layout does not depend on
 * the compiler's padding or the host's byte order; the static asserts pin the
 * offsets to the table in frame.h. frame_decode runs every check that needs no
 * key before the MAC (cheap, and each gives its own reject reason) and checks
 * the type only after the MAC held, so unknown types are counted only for
 * frames a cluster member really sent.
 *
 * The MAC is libsodium's crypto_generichash (BLAKE2b) keyed by the 32-byte
 * frame key with a 16-byte output, over header and body; the key is BLAKE2b
 * of the cluster secret keyed by a fixed context string, so the secret itself
 * never keys anything and another use of it would get an unrelated key.
 */
#include "frame.h"

#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

/* Header field offsets (frame.h has the table). */
enum {
    FRAME_OFF_MAGIC = 0,
    FRAME_OFF_VERSION = 4,
    FRAME_OFF_TYPE = 5,
    FRAME_OFF_FLAGS = 6,
    FRAME_OFF_SENDER = 8,
    FRAME_OFF_SENDER_INC = 16,
    FRAME_OFF_RECEIVER = 24,
    FRAME_OFF_RECEIVER_INC = 32,
    FRAME_OFF_HLC = 40,
    FRAME_OFF_SEQ = 48,
    FRAME_OFF_LENGTH = 56,
    FRAME_OFF_RESERVED = 60,
};

_Static_assert(FRAME_OFF_VERSION == FRAME_OFF_MAGIC + 4, "magic is 4 bytes");
_Static_assert(FRAME_OFF_TYPE == FRAME_OFF_VERSION + 1, "version is 1 byte");
_Static_assert(FRAME_OFF_FLAGS == FRAME_OFF_TYPE + 1, "type is 1 byte");
_Static_assert(FRAME_OFF_SENDER == FRAME_OFF_FLAGS + 2, "flags are 2 bytes");
_Static_assert(FRAME_OFF_SENDER_INC == FRAME_OFF_SENDER + 8, "sender is 8 bytes");
_Static_assert(FRAME_OFF_RECEIVER == FRAME_OFF_SENDER_INC + 8, "sender_inc is 8");
_Static_assert(FRAME_OFF_RECEIVER_INC == FRAME_OFF_RECEIVER + 8, "receiver is 8");
_Static_assert(FRAME_OFF_HLC == FRAME_OFF_RECEIVER_INC + 8, "receiver_inc is 8");
_Static_assert(FRAME_OFF_SEQ == FRAME_OFF_HLC + 8, "hlc is 8 bytes");
_Static_assert(FRAME_OFF_LENGTH == FRAME_OFF_SEQ + 8, "seq is 8 bytes");
_Static_assert(FRAME_OFF_RESERVED == FRAME_OFF_LENGTH + 4, "length is 4 bytes");
_Static_assert(FRAME_HEADER_SIZE == FRAME_OFF_RESERVED + 4, "reserved is 4 bytes");
_Static_assert(FRAME_MAC_SIZE >= crypto_generichash_BYTES_MIN, "MAC size");
_Static_assert(FRAME_KEY_SIZE >= crypto_generichash_KEYBYTES_MIN &&
                   FRAME_KEY_SIZE <= crypto_generichash_KEYBYTES_MAX,
               "key size");
_Static_assert(FRAME_DEFAULT_MAX_BODY + FRAME_HEADER_SIZE + FRAME_MAC_SIZE == 1u << 20,
               "a default frame is at most 1 MiB");

/* The key-derivation context: BLAKE2b's key when hashing the secret. */
#define FRAME_KDF_CONTEXT "herd frame mac v1"
_Static_assert(sizeof(FRAME_KDF_CONTEXT) - 1 >= crypto_generichash_KEYBYTES_MIN,
               "the context must be a valid BLAKE2b key");

/* Flags each type may carry: none yet. A type that defines flags adds them
 * here; any other bit is refused as FRAME_REJECT_RESERVED. */
static const uint16_t frame_flags_allowed[FRAME_TYPE_COUNT] = {0};

static const char *const frame_reject_names[FRAME_REJECT_COUNT] = {
    [FRAME_OK] = "ok",
    [FRAME_REJECT_SHORT] = "short",
    [FRAME_REJECT_MAGIC] = "magic",
    [FRAME_REJECT_VERSION] = "version",
    [FRAME_REJECT_LENGTH] = "length",
    [FRAME_REJECT_OVERSIZE] = "oversize",
    [FRAME_REJECT_RESERVED] = "reserved",
    [FRAME_REJECT_MAC] = "mac",
    [FRAME_REJECT_TYPE] = "type",
    [FRAME_REJECT_REPLAY] = "replay",
    [FRAME_REJECT_BODY] = "body",
    [FRAME_REJECT_CLUSTER] = "cluster",
    [FRAME_REJECT_SERVICES] = "services",
    [FRAME_REJECT_SENDER] = "sender",
    [FRAME_REJECT_RATE] = "rate",
    [FRAME_REJECT_NAME] = "name",
    [FRAME_REJECT_MEMORY] = "memory",
};

static const char *const frame_type_names[FRAME_TYPE_COUNT] = {
    [FRAME_HELLO] = "hello", [FRAME_HEARTBEAT] = "heartbeat", [FRAME_LEAVE] = "leave",
    [FRAME_MSG] = "msg",     [FRAME_ACK] = "ack",
};

const char *frame_reject_name(frame_reject_t why)
{
    if ((unsigned)why >= FRAME_REJECT_COUNT)
        return "unknown";
    return frame_reject_names[why];
}

static int frame_type_known(int type)
{
    return type > 0 && type < FRAME_TYPE_COUNT;
}

const char *frame_type_name(int type)
{
    return frame_type_known(type) ? frame_type_names[type] : "unknown";
}

/* ---- crypto -------------------------------------------------------------- */

/* sodium_init once. It is idempotent and thread-safe, but takes a lock on
 * every call, hence the flag; a race only calls it twice. */
static int frame_crypto_init(void)
{
    static atomic_int ready;
    if (atomic_load_explicit(&ready, memory_order_acquire))
        return 0;
    if (sodium_init() < 0)
        return HERD_EIO;
    atomic_store_explicit(&ready, 1, memory_order_release);
    return 0;
}

static void frame_mac(const frame_key_t *key, const uint8_t *data, size_t len,
                      uint8_t mac[FRAME_MAC_SIZE])
{
    crypto_generichash(mac, FRAME_MAC_SIZE, data, len, key->bytes, FRAME_KEY_SIZE);
}

int frame_key_from_secret(frame_key_t *key, const void *secret, size_t len)
{
    if (key == NULL || secret == NULL)
        return HERD_EINVAL;
    if (len < FRAME_MIN_SECRET)
        return HERD_ERANGE;
    int rc = frame_crypto_init();
    if (rc != 0)
        return rc;
    crypto_generichash(key->bytes, FRAME_KEY_SIZE, secret, len,
                       (const unsigned char *)FRAME_KDF_CONTEXT,
                       sizeof(FRAME_KDF_CONTEXT) - 1);
    return 0;
}

/* ---- little-endian fields ------------------------------------------------ */

static void frame_put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t frame_get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void frame_put_header(uint8_t *out, const frame_header_t *h, uint32_t length)
{
    frame_put_le(out + FRAME_OFF_MAGIC, FRAME_MAGIC, 4);
    out[FRAME_OFF_VERSION] = FRAME_VERSION;
    out[FRAME_OFF_TYPE] = h->type;
    frame_put_le(out + FRAME_OFF_FLAGS, h->flags, 2);
    frame_put_le(out + FRAME_OFF_SENDER, h->sender, 8);
    frame_put_le(out + FRAME_OFF_SENDER_INC, h->sender_inc, 8);
    frame_put_le(out + FRAME_OFF_RECEIVER, h->receiver, 8);
    frame_put_le(out + FRAME_OFF_RECEIVER_INC, h->receiver_inc, 8);
    frame_put_le(out + FRAME_OFF_HLC, h->hlc, 8);
    frame_put_le(out + FRAME_OFF_SEQ, h->seq, 8);
    frame_put_le(out + FRAME_OFF_LENGTH, length, 4);
    frame_put_le(out + FRAME_OFF_RESERVED, 0, 4);
}

static void frame_get_header(const uint8_t *in, frame_header_t *h)
{
    h->version = in[FRAME_OFF_VERSION];
    h->type = in[FRAME_OFF_TYPE];
    h->flags = (uint16_t)frame_get_le(in + FRAME_OFF_FLAGS, 2);
    h->sender = frame_get_le(in + FRAME_OFF_SENDER, 8);
    h->sender_inc = frame_get_le(in + FRAME_OFF_SENDER_INC, 8);
    h->receiver = frame_get_le(in + FRAME_OFF_RECEIVER, 8);
    h->receiver_inc = frame_get_le(in + FRAME_OFF_RECEIVER_INC, 8);
    h->hlc = frame_get_le(in + FRAME_OFF_HLC, 8);
    h->seq = frame_get_le(in + FRAME_OFF_SEQ, 8);
    h->length = (uint32_t)frame_get_le(in + FRAME_OFF_LENGTH, 4);
}

/* ---- encode -------------------------------------------------------------- */

int frame_encode(const frame_key_t *key, const frame_header_t *h, const void *body,
                 size_t len, uint8_t *out, size_t cap)
{
    if (key == NULL || h == NULL || out == NULL || (body == NULL && len > 0))
        return HERD_EINVAL;
    if (!frame_type_known(h->type) || (h->flags & ~frame_flags_allowed[h->type]))
        return HERD_EINVAL;
    if (len > FRAME_DEFAULT_MAX_BODY || cap < frame_size(len))
        return HERD_ERANGE;
    int rc = frame_crypto_init();
    if (rc != 0)
        return rc;
    /* memmove: the caller may have built the body in place at out + 64
     * (then there is nothing to move) */
    if (len > 0 && (const uint8_t *)body != out + FRAME_HEADER_SIZE)
        memmove(out + FRAME_HEADER_SIZE, body, len);
    frame_put_header(out, h, (uint32_t)len);
    frame_mac(key, out, FRAME_HEADER_SIZE + len, out + FRAME_HEADER_SIZE + len);
    return 0;
}

/* ---- decode -------------------------------------------------------------- */

/* Everything that needs no key, in the documented order. */
static frame_reject_t frame_check_structure(const uint8_t *buf, size_t len,
                                            uint32_t max_body)
{
    if (buf == NULL || len < FRAME_HEADER_SIZE + FRAME_MAC_SIZE)
        return FRAME_REJECT_SHORT;
    if (frame_get_le(buf + FRAME_OFF_MAGIC, 4) != FRAME_MAGIC)
        return FRAME_REJECT_MAGIC;
    if (buf[FRAME_OFF_VERSION] != FRAME_VERSION)
        return FRAME_REJECT_VERSION;
    uint64_t length = frame_get_le(buf + FRAME_OFF_LENGTH, 4);
    if (length != len - FRAME_HEADER_SIZE - FRAME_MAC_SIZE)
        return FRAME_REJECT_LENGTH;
    if (length > max_body)
        return FRAME_REJECT_OVERSIZE;
    if (frame_get_le(buf + FRAME_OFF_RESERVED, 4) != 0)
        return FRAME_REJECT_RESERVED;
    return FRAME_OK;
}

static frame_reject_t frame_check(const frame_key_t *key, const uint8_t *buf, size_t len,
                                  uint32_t max_body)
{
    frame_reject_t why = frame_check_structure(buf, len, max_body);
    if (why != FRAME_OK)
        return why;
    size_t signed_len = len - FRAME_MAC_SIZE;
    uint8_t mac[FRAME_MAC_SIZE];
    /* If sodium_init failed, crypto_generichash still works: it keeps its
     * portable implementation instead of picking a faster one. */
    (void)frame_crypto_init();
    frame_mac(key, buf, signed_len, mac);
    if (crypto_verify_16(mac, buf + signed_len) != 0)
        return FRAME_REJECT_MAC;
    uint8_t type = buf[FRAME_OFF_TYPE];
    if (!frame_type_known(type))
        return FRAME_REJECT_TYPE;
    uint16_t flags = (uint16_t)frame_get_le(buf + FRAME_OFF_FLAGS, 2);
    if (flags & ~frame_flags_allowed[type])
        return FRAME_REJECT_RESERVED;
    return FRAME_OK;
}

int frame_decode(const frame_key_t *key, const uint8_t *buf, size_t len,
                 uint32_t max_body, frame_header_t *h, const uint8_t **body,
                 frame_reject_t *why)
{
    if (key == NULL || h == NULL || body == NULL)
        return HERD_EINVAL;
    *body = NULL;
    frame_reject_t r = frame_check(key, buf, len, max_body);
    if (why != NULL)
        *why = r;
    if (r != FRAME_OK)
        return HERD_EBADFRAME;
    frame_get_header(buf, h);
    *body = buf + FRAME_HEADER_SIZE;
    return 0;
}
