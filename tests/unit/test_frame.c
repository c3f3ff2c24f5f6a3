/*
 * test_frame.c - unit tests for the wire frame (runtime/frame.h).
 *
 * A frame is the one thing every byte from the network goes through, so the
 * bad paths get most of the tests: each reject reason from a buffer crafted
 * to produce exactly it, every single-bit flip of a small frame, and 200,000
 * random or mutated buffers that must never crash (the sanitizer build runs
 * them too) and never be accepted unless the test itself made their MAC with
 * the key. A pinned test vector makes any change of layout, key derivation
 * or MAC fail; its bytes were computed independently (Python's hashlib
 * BLAKE2b, see PROTOCOL.md) from the specification.
 *
 * Frames are crafted by encoding a valid one and patching bytes; where a test
 * needs a patched frame to carry a valid MAC, resign() recomputes it with
 * libsodium directly (not through frame.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "frame.h"
#include "herd_error.h"

/* ---- helpers ------------------------------------------------------------ */

static const char SECRET[] = "correct horse battery staple 42!";

static frame_key_t test_key(void)
{
    frame_key_t k;
    assert_int_equal(frame_key_from_secret(&k, SECRET, sizeof SECRET - 1), 0);
    return k;
}

static frame_key_t other_key(void)
{
    frame_key_t k;
    assert_int_equal(frame_key_from_secret(&k, "another cluster's secret", 24), 0);
    return k;
}

static frame_header_t sample_header(void)
{
    frame_header_t h = {0};
    h.type = FRAME_MSG;
    h.sender = 0x1122334455667788ull;
    h.sender_inc = 0x0102030405060708ull;
    h.receiver = 0x8877665544332211ull;
    h.receiver_inc = 0x1112131415161718ull;
    h.hlc = 0x0000018c2a5b3c01ull;
    h.seq = 42;
    return h;
}

/* A heap buffer of exactly frame_size(len) bytes holding an encoded frame. */
static uint8_t *encode_exact(const frame_key_t *k, const frame_header_t *h,
                             const void *body, size_t len)
{
    size_t n = frame_size(len);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(frame_encode(k, h, body, len, buf, n), 0);
    return buf;
}

/* Recompute the MAC of buf[0..n) with `k`, as frame.c should. */
static void resign(const frame_key_t *k, uint8_t *buf, size_t n)
{
    assert_true(n >= FRAME_MAC_SIZE);
    crypto_generichash(buf + n - FRAME_MAC_SIZE, FRAME_MAC_SIZE, buf, n - FRAME_MAC_SIZE,
                       k->bytes, FRAME_KEY_SIZE);
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* frame_decode's reason for buf[0..n), checking the result agrees with it. */
static frame_reject_t decode_why(const frame_key_t *k, const uint8_t *buf, size_t n,
                                 uint32_t max_body)
{
    frame_header_t h;
    const uint8_t *body = (const uint8_t *)1;
    frame_reject_t why = FRAME_REJECT_COUNT;
    int rc = frame_decode(k, buf, n, max_body, &h, &body, &why);
    assert_true(why < FRAME_REJECT_COUNT);
    if (why == FRAME_OK) {
        assert_int_equal(rc, 0);
        assert_ptr_equal(body, buf + FRAME_HEADER_SIZE);
    } else {
        assert_int_equal(rc, HERD_EBADFRAME);
        assert_null(body);
    }
    return why;
}

/* A copy of buf[0..n) in a heap buffer of exactly m bytes (zero-padded). */
static uint8_t *resize_copy(const uint8_t *buf, size_t n, size_t m)
{
    uint8_t *p = calloc(m ? m : 1, 1);
    assert_non_null(p);
    memcpy(p, buf, n < m ? n : m);
    return p;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- round trips --------------------------------------------------------- */

static void assert_header_eq(const frame_header_t *a, const frame_header_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->flags, b->flags);
    assert_true(a->sender == b->sender);
    assert_true(a->sender_inc == b->sender_inc);
    assert_true(a->receiver == b->receiver);
    assert_true(a->receiver_inc == b->receiver_inc);
    assert_true(a->hlc == b->hlc);
    assert_true(a->seq == b->seq);
}

static void test_frame_round_trip_all_fields(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    h.version = 99; /* ignored: encode writes FRAME_VERSION */
    h.length = 12345; /* ignored: encode writes the body's length */
    uint8_t *buf = encode_exact(&k, &h, "hello", 5);
    frame_header_t got;
    const uint8_t *body;
    frame_reject_t why = FRAME_REJECT_COUNT;
    assert_int_equal(frame_decode(&k, buf, frame_size(5), FRAME_DEFAULT_MAX_BODY, &got,
                                  &body, &why),
                     0);
    assert_int_equal(why, FRAME_OK);
    assert_header_eq(&got, &h);
    assert_int_equal(got.version, FRAME_VERSION);
    assert_int_equal(got.length, 5);
    assert_ptr_equal(body, buf + FRAME_HEADER_SIZE);
    assert_memory_equal(body, "hello", 5);
    free(buf);
}

static void test_frame_round_trip_every_type_and_extremes(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    for (int t = 1; t < FRAME_TYPE_COUNT; t++) {
        frame_header_t h = {0};
        h.type = (uint8_t)t;
        h.sender = h.sender_inc = h.receiver = h.receiver_inc = UINT64_MAX;
        h.hlc = h.seq = UINT64_MAX;
        uint8_t *buf = encode_exact(&k, &h, "x", 1);
        frame_header_t got;
        const uint8_t *body;
        assert_int_equal(frame_decode(&k, buf, frame_size(1), 1, &got, &body, NULL), 0);
        assert_header_eq(&got, &h);
        free(buf);
    }
}

static void test_frame_round_trip_empty_body(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    h.type = FRAME_LEAVE;
    uint8_t *buf = encode_exact(&k, &h, NULL, 0);
    frame_header_t got;
    const uint8_t *body;
    assert_int_equal(frame_decode(&k, buf, frame_size(0), 0, &got, &body, NULL), 0);
    assert_int_equal(got.length, 0);
    assert_header_eq(&got, &h);
    assert_ptr_equal(body, buf + FRAME_HEADER_SIZE); /* the MAC, zero bytes of body */
    free(buf);
}

static void test_frame_round_trip_max_body(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    size_t len = FRAME_DEFAULT_MAX_BODY;
    uint8_t *body = malloc(len);
    assert_non_null(body);
    uint64_t rng = 7;
    for (size_t i = 0; i < len; i++)
        body[i] = (uint8_t)rng_next(&rng);
    uint8_t *buf = encode_exact(&k, &h, body, len);
    assert_int_equal(frame_size(len), 1u << 20);
    frame_header_t got;
    const uint8_t *b;
    assert_int_equal(frame_decode(&k, buf, frame_size(len), FRAME_DEFAULT_MAX_BODY, &got,
                                  &b, NULL),
                     0);
    assert_int_equal(got.length, len);
    assert_memory_equal(b, body, len);
    assert_int_equal(decode_why(&k, buf, frame_size(len), FRAME_DEFAULT_MAX_BODY - 1),
                     FRAME_REJECT_OVERSIZE);
    /* One byte more cannot even be encoded. */
    uint8_t *big = malloc(frame_size(len + 1));
    assert_non_null(big);
    assert_int_equal(frame_encode(&k, &h, body, len + 1, big, frame_size(len + 1)),
                     HERD_ERANGE);
    free(big);
    free(buf);
    free(body);
}

static void test_frame_encode_body_in_place(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t out[FRAME_HEADER_SIZE + 3 + FRAME_MAC_SIZE];
    memcpy(out + FRAME_HEADER_SIZE, "abc", 3);
    uint8_t *in_place = out + FRAME_HEADER_SIZE;
    assert_int_equal(frame_encode(&k, &h, in_place, 3, out, sizeof out), 0);
    uint8_t *ref = encode_exact(&k, &h, "abc", 3);
    assert_memory_equal(out, ref, sizeof out);
    free(ref);
}

/* ---- encode errors and the key ----------------------------------------- */

static void test_frame_encode_cap_too_small_erange(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t out[FRAME_HEADER_SIZE + 10 + FRAME_MAC_SIZE];
    memset(out, 0xee, sizeof out);
    assert_int_equal(frame_encode(&k, &h, "0123456789", 10, out, sizeof out - 1),
                     HERD_ERANGE);
    assert_int_equal(frame_encode(&k, &h, "0123456789", 10, out, 0), HERD_ERANGE);
    assert_int_equal(frame_encode(&k, &h, NULL, 0, out, FRAME_HEADER_SIZE), HERD_ERANGE);
    assert_int_equal(out[0], 0xee); /* nothing written on error */
    assert_int_equal(frame_encode(&k, &h, "0123456789", 10, out, sizeof out), 0);
}

static void test_frame_encode_bad_arguments_einval(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t out[128];
    assert_int_equal(frame_encode(NULL, &h, "a", 1, out, sizeof out), HERD_EINVAL);
    assert_int_equal(frame_encode(&k, NULL, "a", 1, out, sizeof out), HERD_EINVAL);
    assert_int_equal(frame_encode(&k, &h, "a", 1, NULL, sizeof out), HERD_EINVAL);
    assert_int_equal(frame_encode(&k, &h, NULL, 1, out, sizeof out), HERD_EINVAL);
    h.type = 0;
    assert_int_equal(frame_encode(&k, &h, "a", 1, out, sizeof out), HERD_EINVAL);
    h.type = FRAME_TYPE_COUNT;
    assert_int_equal(frame_encode(&k, &h, "a", 1, out, sizeof out), HERD_EINVAL);
    h.type = FRAME_HELLO;
    h.flags = 1; /* no type defines flags yet */
    assert_int_equal(frame_encode(&k, &h, "a", 1, out, sizeof out), HERD_EINVAL);
}

static void test_frame_key_from_secret(void **state)
{
    (void)state;
    frame_key_t a, b;
    char secret[64];
    memset(secret, 's', sizeof secret);
    assert_int_equal(frame_key_from_secret(&a, secret, FRAME_MIN_SECRET - 1),
                     HERD_ERANGE);
    assert_int_equal(frame_key_from_secret(&a, secret, 0), HERD_ERANGE);
    assert_int_equal(frame_key_from_secret(&a, NULL, 32), HERD_EINVAL);
    assert_int_equal(frame_key_from_secret(NULL, secret, 32), HERD_EINVAL);
    assert_int_equal(frame_key_from_secret(&a, secret, FRAME_MIN_SECRET), 0);
    assert_int_equal(frame_key_from_secret(&b, secret, FRAME_MIN_SECRET), 0);
    assert_memory_equal(a.bytes, b.bytes, FRAME_KEY_SIZE); /* deterministic */
    assert_int_equal(frame_key_from_secret(&b, secret, FRAME_MIN_SECRET + 1), 0);
    assert_memory_not_equal(a.bytes, b.bytes, FRAME_KEY_SIZE);
    /* The documented derivation: BLAKE2b-256 of the secret, keyed by the
     * context string. */
    uint8_t want[FRAME_KEY_SIZE];
    crypto_generichash(want, sizeof want, (const uint8_t *)secret, sizeof secret,
                       (const uint8_t *)"herd frame mac v1", 17);
    assert_int_equal(frame_key_from_secret(&a, secret, sizeof secret), 0);
    assert_memory_equal(a.bytes, want, FRAME_KEY_SIZE);
}

/* The exact bytes of one frame, computed from PROTOCOL.md with Python's
 * hashlib (key = blake2b(secret, key=b"herd frame mac v1", digest_size=32);
 * mac = blake2b(header + body, key=key, digest_size=16)). Any change of
 * layout, key derivation or MAC breaks every running cluster, and this test. */
static void test_frame_pinned_vector(void **state)
{
    (void)state;
    static const char want_hex[] =
        "4845524404040000887766554433221108070605040302011122334455667788"
        "18171615141312110140b9a58c0100002a000000000000000400000000000000"
        "70696e67"
        "a0c4c56a870c3f9c56bcfabce0a80c0a";
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    h.hlc = 0x0000018ca5b94001ull;
    uint8_t *buf = encode_exact(&k, &h, "ping", 4);
    char hex[2 * (FRAME_HEADER_SIZE + 4 + FRAME_MAC_SIZE) + 1];
    for (size_t i = 0; i < frame_size(4); i++)
        snprintf(hex + 2 * i, 3, "%02x", buf[i]);
    assert_string_equal(hex, want_hex);
    frame_header_t got;
    const uint8_t *body;
    assert_int_equal(frame_decode(&k, buf, frame_size(4), 4, &got, &body, NULL), 0);
    free(buf);
}

static void test_frame_names_tables(void **state)
{
    (void)state;
    static const char *const reasons[] = {"ok",       "short",    "magic", "version",
                                          "length",   "oversize", "reserved", "mac",
                                          "type",     "replay",   "body",  "cluster",
                                          "services", "sender", "rate", "name", "memory"};
    assert_int_equal(sizeof reasons / sizeof reasons[0], FRAME_REJECT_COUNT);
    for (int i = 0; i < FRAME_REJECT_COUNT; i++)
        assert_string_equal(frame_reject_name((frame_reject_t)i), reasons[i]);
    assert_string_equal(frame_reject_name(FRAME_REJECT_COUNT), "unknown");
    assert_string_equal(frame_reject_name((frame_reject_t)-1), "unknown");
    static const char *const types[] = {"unknown", "hello", "heartbeat", "leave", "msg",
                                        "ack"};
    assert_int_equal(sizeof types / sizeof types[0], FRAME_TYPE_COUNT);
    for (int i = 0; i < FRAME_TYPE_COUNT; i++)
        assert_string_equal(frame_type_name(i), types[i]);
    assert_string_equal(frame_type_name(FRAME_TYPE_COUNT), "unknown");
    assert_string_equal(frame_type_name(200), "unknown");
    assert_string_equal(frame_type_name(-1), "unknown");
}

/* ---- every reject reason ----------------------------------------------- */

static void test_frame_reject_short(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, NULL, 0);
    for (size_t n = 0; n < FRAME_HEADER_SIZE + FRAME_MAC_SIZE; n++) {
        uint8_t *p = resize_copy(buf, n, n);
        assert_int_equal(decode_why(&k, p, n, UINT32_MAX), FRAME_REJECT_SHORT);
        free(p);
    }
    assert_int_equal(decode_why(&k, NULL, 0, UINT32_MAX), FRAME_REJECT_SHORT);
    assert_int_equal(decode_why(&k, NULL, 100, UINT32_MAX), FRAME_REJECT_SHORT);
    free(buf);
}

static void test_frame_reject_magic(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    for (size_t i = 0; i < 4; i++) {
        buf[i] ^= 0x20; /* "herd" in lower case, one letter at a time */
        resign(&k, buf, frame_size(3));
        assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_REJECT_MAGIC);
        buf[i] ^= 0x20;
    }
    resign(&k, buf, frame_size(3));
    assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_OK);
    free(buf);
}

static void test_frame_reject_version(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    /* 1: the format before members announced their services */
    static const uint8_t versions[] = {0, 1, FRAME_VERSION - 1, FRAME_VERSION + 1, 255};
    for (size_t i = 0; i < sizeof versions; i++) {
        buf[4] = versions[i];
        resign(&k, buf, frame_size(3));
        assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_REJECT_VERSION);
    }
    free(buf);
}

static void test_frame_reject_length_field_disagrees(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abcdef", 6);
    static const uint32_t lengths[] = {5, 7, 0, UINT32_MAX, 0x80000006u};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        put_le(buf + 56, lengths[i], 4);
        resign(&k, buf, frame_size(6));
        assert_int_equal(decode_why(&k, buf, frame_size(6), UINT32_MAX),
                         FRAME_REJECT_LENGTH);
    }
    free(buf);
}

static void test_frame_reject_length_buffer_disagrees(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    size_t n = frame_size(6);
    uint8_t *buf = encode_exact(&k, &h, "abcdef", 6);
    uint8_t *shorter = resize_copy(buf, n, n - 1); /* one byte lost */
    assert_int_equal(decode_why(&k, shorter, n - 1, UINT32_MAX), FRAME_REJECT_LENGTH);
    uint8_t *longer = resize_copy(buf, n, n + 1); /* one byte trailing */
    assert_int_equal(decode_why(&k, longer, n + 1, UINT32_MAX), FRAME_REJECT_LENGTH);
    /* Even re-signed over what is there, the length still disagrees. */
    resign(&k, longer, n + 1);
    assert_int_equal(decode_why(&k, longer, n + 1, UINT32_MAX), FRAME_REJECT_LENGTH);
    free(shorter);
    free(longer);
    free(buf);
}

static void test_frame_reject_oversize(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t body[100] = {0};
    uint8_t *buf = encode_exact(&k, &h, body, sizeof body);
    assert_int_equal(decode_why(&k, buf, frame_size(100), 99), FRAME_REJECT_OVERSIZE);
    assert_int_equal(decode_why(&k, buf, frame_size(100), 0), FRAME_REJECT_OVERSIZE);
    assert_int_equal(decode_why(&k, buf, frame_size(100), 100), FRAME_OK);
    /* The size check comes before the MAC: a wrong key still says oversize. */
    frame_key_t other = other_key();
    assert_int_equal(decode_why(&other, buf, frame_size(100), 99), FRAME_REJECT_OVERSIZE);
    free(buf);
}

static void test_frame_reject_reserved(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    for (size_t i = 60; i < 64; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            resign(&k, buf, frame_size(3));
            assert_int_equal(decode_why(&k, buf, frame_size(3), 3),
                             FRAME_REJECT_RESERVED);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    free(buf);
}

static void test_frame_reject_flags_type_lacks(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    put_le(buf + 6, 0x8000, 2);
    assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_REJECT_MAC);
    resign(&k, buf, frame_size(3)); /* a member really sent it */
    assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_REJECT_RESERVED);
    free(buf);
}

static void test_frame_reject_mac_wrong_key(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_key_t other = other_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    assert_int_equal(decode_why(&other, buf, frame_size(3), 3), FRAME_REJECT_MAC);
    frame_key_t near = k;
    near.bytes[FRAME_KEY_SIZE - 1] ^= 1;
    assert_int_equal(decode_why(&near, buf, frame_size(3), 3), FRAME_REJECT_MAC);
    assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_OK);
    free(buf);
}

/* What flipping any bit of byte `i` must give: the structural checks catch
 * their own fields, the MAC everything else (type, flags, ids, body, MAC). */
static frame_reject_t flip_reason(size_t i)
{
    if (i < 4)
        return FRAME_REJECT_MAGIC;
    if (i == 4)
        return FRAME_REJECT_VERSION;
    if (i >= 56 && i < 60)
        return FRAME_REJECT_LENGTH;
    if (i >= 60 && i < 64)
        return FRAME_REJECT_RESERVED;
    return FRAME_REJECT_MAC;
}

static void test_frame_reject_every_bit_flip(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    size_t n = frame_size(8);
    uint8_t *buf = encode_exact(&k, &h, "12345678", 8);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(decode_why(&k, buf, n, UINT32_MAX), flip_reason(i));
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(decode_why(&k, buf, n, UINT32_MAX), FRAME_OK);
    free(buf);
}

static void test_frame_reject_unknown_type_after_mac(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    static const uint8_t types[] = {0, FRAME_TYPE_COUNT, 200, 255};
    for (size_t i = 0; i < sizeof types; i++) {
        buf[5] = types[i];
        assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_REJECT_MAC);
        resign(&k, buf, frame_size(3));
        assert_int_equal(decode_why(&k, buf, frame_size(3), 3), FRAME_REJECT_TYPE);
        frame_key_t other = other_key(); /* unknown type, wrong key: the MAC first */
        assert_int_equal(decode_why(&other, buf, frame_size(3), 3), FRAME_REJECT_MAC);
    }
    free(buf);
}

static void test_frame_reject_order(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_key_t other = other_key();
    frame_header_t h = sample_header();
    size_t n = frame_size(3);
    uint8_t *buf = encode_exact(&k, &h, "abc", 3);
    /* Everything wrong at once; fix one thing at a time, in order. */
    buf[0] = 'X';
    buf[4] = 9;
    put_le(buf + 56, 2, 4);
    put_le(buf + 60, 1, 4);
    buf[5] = 200;
    assert_int_equal(decode_why(&other, buf, n, 3), FRAME_REJECT_MAGIC);
    buf[0] = 'H';
    assert_int_equal(decode_why(&other, buf, n, 3), FRAME_REJECT_VERSION);
    buf[4] = FRAME_VERSION;
    assert_int_equal(decode_why(&other, buf, n, 3), FRAME_REJECT_LENGTH);
    put_le(buf + 56, 3, 4);
    assert_int_equal(decode_why(&other, buf, n, 2), FRAME_REJECT_OVERSIZE);
    assert_int_equal(decode_why(&other, buf, n, 3), FRAME_REJECT_RESERVED);
    put_le(buf + 60, 0, 4);
    assert_int_equal(decode_why(&other, buf, n, 3), FRAME_REJECT_MAC);
    resign(&k, buf, n);
    assert_int_equal(decode_why(&k, buf, n, 3), FRAME_REJECT_TYPE);
    buf[5] = FRAME_ACK;
    resign(&k, buf, n);
    assert_int_equal(decode_why(&k, buf, n, 3), FRAME_OK);
    free(buf);
}

static void test_frame_decode_bad_arguments(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_header_t h = sample_header();
    uint8_t *buf = encode_exact(&k, &h, "a", 1);
    frame_header_t got;
    const uint8_t *body;
    frame_reject_t why;
    assert_int_equal(frame_decode(NULL, buf, frame_size(1), 1, &got, &body, &why),
                     HERD_EINVAL);
    assert_int_equal(frame_decode(&k, buf, frame_size(1), 1, NULL, &body, &why),
                     HERD_EINVAL);
    assert_int_equal(frame_decode(&k, buf, frame_size(1), 1, &got, NULL, &why),
                     HERD_EINVAL);
    assert_int_equal(frame_decode(&k, buf, frame_size(1), 0, &got, &body, NULL),
                     HERD_EBADFRAME); /* `why` is optional */
    assert_null(body);
    free(buf);
}

/* ---- robustness ------------------------------------------------------- */

enum { ROBUST_ROUNDS = 200000, ROBUST_MAX_BODY = 96 };

/* A random, well-formed frame (possibly with an unknown type or flags) of
 * `n` = frame_size(len) bytes, signed with `k`. */
static uint8_t *random_signed(uint64_t *rng, const frame_key_t *k, size_t *n)
{
    size_t len = rng_next(rng) % (ROBUST_MAX_BODY + 1);
    *n = frame_size(len);
    uint8_t *p = malloc(*n);
    assert_non_null(p);
    for (size_t i = 0; i < *n; i++)
        p[i] = (uint8_t)rng_next(rng);
    put_le(p, FRAME_MAGIC, 4);
    p[4] = FRAME_VERSION;
    if (rng_next(rng) % 2)
        p[5] = (uint8_t)(1 + rng_next(rng) % (FRAME_TYPE_COUNT - 1));
    if (rng_next(rng) % 2)
        put_le(p + 6, 0, 2);
    put_le(p + 56, len, 4);
    put_le(p + 60, 0, 4);
    resign(k, p, *n);
    return p;
}

/* Flip, set, truncate or extend a copy of `src`. */
static uint8_t *mutate(uint64_t *rng, const uint8_t *src, size_t n, size_t *m)
{
    uint64_t r = rng_next(rng);
    *m = n;
    if (r % 8 == 0)
        *m = rng_next(rng) % (n + 1);
    else if (r % 8 == 1)
        *m = n + 1 + rng_next(rng) % 16;
    uint8_t *p = resize_copy(src, n, *m);
    int edits = 1 + (int)(rng_next(rng) % 4);
    for (int e = 0; e < edits && *m > 0; e++) {
        size_t at = rng_next(rng) % *m;
        if (rng_next(rng) % 2)
            p[at] ^= (uint8_t)(1u << (rng_next(rng) % 8));
        else
            p[at] = (uint8_t)rng_next(rng);
    }
    return p;
}

/* One random buffer through frame_decode. Returns 1 if it was accepted. */
static int robust_round(uint64_t *rng, const frame_key_t *k, const frame_key_t *other,
                        const uint8_t *valid, size_t valid_n)
{
    frame_reject_t why = FRAME_REJECT_COUNT;
    size_t n;
    uint8_t *p;
    switch (rng_next(rng) % 4) {
    case 0: /* noise */
        n = rng_next(rng) % (frame_size(ROBUST_MAX_BODY) + 8);
        p = malloc(n ? n : 1);
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)rng_next(rng);
        if (n >= 4 && rng_next(rng) % 2)
            put_le(p, FRAME_MAGIC, 4);
        why = decode_why(k, p, n, ROBUST_MAX_BODY);
        assert_int_not_equal(why, FRAME_OK);
        break;
    case 1: /* a valid frame, mutated: accepted only if unchanged */
        p = mutate(rng, valid, valid_n, &n);
        why = decode_why(k, p, n, ROBUST_MAX_BODY);
        if (why == FRAME_OK)
            assert_true(n == valid_n && memcmp(p, valid, n) == 0);
        break;
    case 2: /* well formed, signed with another key */
        p = random_signed(rng, other, &n);
        why = decode_why(k, p, n, ROBUST_MAX_BODY);
        assert_int_equal(why, FRAME_REJECT_MAC);
        break;
    default: { /* well formed, signed with the key: decoded as written */
        p = random_signed(rng, k, &n);
        why = decode_why(k, p, n, ROBUST_MAX_BODY);
        int known = p[5] > 0 && p[5] < FRAME_TYPE_COUNT;
        int flags = p[6] | p[7];
        assert_int_equal(why, !known  ? FRAME_REJECT_TYPE
                              : flags ? FRAME_REJECT_RESERVED
                                      : FRAME_OK);
        break;
    }
    }
    free(p);
    return why == FRAME_OK;
}

static void test_frame_random_buffers_never_crash_or_forge(void **state)
{
    (void)state;
    frame_key_t k = test_key();
    frame_key_t other = other_key();
    frame_header_t h = sample_header();
    uint8_t *valid = encode_exact(&k, &h, "a body of some bytes", 20);
    uint64_t rng = 0x5eed;
    int accepted = 0;
    for (int i = 0; i < ROBUST_ROUNDS; i++)
        accepted += robust_round(&rng, &k, &other, valid, frame_size(20));
    /* Only the self-signed kind (a quarter, half of those with a known type
     * and zero flags ...) and unchanged mutations get through. */
    assert_true(accepted > 0);
    assert_true(accepted < ROBUST_ROUNDS / 4);
    free(valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_round_trip_all_fields),
        cmocka_unit_test(test_frame_round_trip_every_type_and_extremes),
        cmocka_unit_test(test_frame_round_trip_empty_body),
        cmocka_unit_test(test_frame_round_trip_max_body),
        cmocka_unit_test(test_frame_encode_body_in_place),
        cmocka_unit_test(test_frame_encode_cap_too_small_erange),
        cmocka_unit_test(test_frame_encode_bad_arguments_einval),
        cmocka_unit_test(test_frame_key_from_secret),
        cmocka_unit_test(test_frame_pinned_vector),
        cmocka_unit_test(test_frame_names_tables),
        cmocka_unit_test(test_frame_reject_short),
        cmocka_unit_test(test_frame_reject_magic),
        cmocka_unit_test(test_frame_reject_version),
        cmocka_unit_test(test_frame_reject_length_field_disagrees),
        cmocka_unit_test(test_frame_reject_length_buffer_disagrees),
        cmocka_unit_test(test_frame_reject_oversize),
        cmocka_unit_test(test_frame_reject_reserved),
        cmocka_unit_test(test_frame_reject_flags_type_lacks),
        cmocka_unit_test(test_frame_reject_mac_wrong_key),
        cmocka_unit_test(test_frame_reject_every_bit_flip),
        cmocka_unit_test(test_frame_reject_unknown_type_after_mac),
        cmocka_unit_test(test_frame_reject_order),
        cmocka_unit_test(test_frame_decode_bad_arguments),
        cmocka_unit_test(test_frame_random_buffers_never_crash_or_forge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
