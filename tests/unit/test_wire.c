/*
 * test_wire.c - unit tests for the body codec (runtime/wire.h).
 *
 * The reader meets hostile input, so most of these tests are bad paths: short
 * buffers, lengths that claim more than remains (up to UINT32_MAX, which must
 * not wrap an offset), leftovers, and the stickiness of the first error. Every
 * reader here reads a heap buffer of exactly the right size, so the sanitizer
 * build catches a read one byte past it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_error.h"
#include "wire.h"

/* ---- helpers ------------------------------------------------------------ */

/* A heap copy of exactly n bytes (so reading past it is a sanitizer error). */
static uint8_t *exact_copy(const void *data, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, data, n);
    return p;
}

/* Takes the writer's buffer, which must be there. */
static uint8_t *take_ok(wire_writer_t *w, size_t *len)
{
    assert_int_equal(w->err, 0);
    uint8_t *buf = wire_writer_take(w, len);
    assert_non_null(buf);
    return buf;
}

/* ---- writer and round trips ------------------------------------------- */

static void test_wire_round_trip_every_type(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, 0xab);
    wire_put_u16(&w, 0xbeef);
    wire_put_u32(&w, 0xdeadbeefu);
    wire_put_u64(&w, 0x0123456789abcdefull);
    wire_put_raw(&w, "xyz", 3);
    wire_put_str(&w, "node-1");
    wire_put_str(&w, "");
    wire_put_bytes(&w, "\0\1\2", 3);
    wire_put_bytes(&w, NULL, 0);
    wire_put_u64(&w, UINT64_MAX);
    size_t len;
    uint8_t *buf = take_ok(&w, &len);
    assert_int_equal(len, 1 + 2 + 4 + 8 + 3 + 7 + 1 + 7 + 4 + 8);

    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    assert_int_equal(wire_get_u8(&r), 0xab);
    assert_int_equal(wire_get_u16(&r), 0xbeef);
    assert_int_equal(wire_get_u32(&r), 0xdeadbeefu);
    assert_true(wire_get_u64(&r) == 0x0123456789abcdefull);
    char raw[3];
    memcpy(raw, r.p + r.off, 3); /* raw has no getter: skip it by hand */
    assert_memory_equal(raw, "xyz", 3);
    r.off += 3;
    char s[16];
    assert_int_equal(wire_get_str(&r, s, sizeof s), 6);
    assert_string_equal(s, "node-1");
    assert_int_equal(wire_get_str(&r, s, sizeof s), 0);
    assert_string_equal(s, "");
    const uint8_t *d;
    assert_int_equal(wire_get_bytes(&r, &d), 3);
    assert_memory_equal(d, "\0\1\2", 3);
    assert_int_equal(wire_get_bytes(&r, &d), 0);
    assert_non_null(d); /* success is never NULL, even for zero bytes */
    assert_true(wire_get_u64(&r) == UINT64_MAX);
    assert_int_equal(r.err, 0);
    assert_int_equal(wire_reader_done(&r), 0);
    free(buf);
}

static void test_wire_little_endian_layout(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u16(&w, 0x0102);
    wire_put_u32(&w, 0x03040506u);
    wire_put_u64(&w, 0x0708090a0b0c0d0eull);
    wire_put_str(&w, "ab");
    wire_put_bytes(&w, "c", 1);
    size_t len;
    uint8_t *buf = take_ok(&w, &len);
    static const uint8_t want[] = {0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d,
                                   0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 2,    'a',
                                   'b',  1,    0,    0,    0,    'c'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
}

static void test_wire_writer_grows(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    for (uint32_t i = 0; i < 100000; i++)
        wire_put_u32(&w, i);
    size_t len;
    uint8_t *buf = take_ok(&w, &len);
    assert_int_equal(len, 400000);
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    for (uint32_t i = 0; i < 100000; i++)
        assert_int_equal(wire_get_u32(&r), i);
    assert_int_equal(wire_reader_done(&r), 0);
    free(buf);
}

/* wire_writer_reserve makes exactly the room asked for, at once; what is
 * put within it stays in that buffer, and past it the writer grows as ever. */
static void test_wire_writer_reserve_exact_then_grows(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, 7);
    wire_writer_reserve(&w, 1000);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.cap, 1 + 1000);
    uint8_t *room = w.buf;
    for (uint32_t i = 0; i < 250; i++)
        wire_put_u32(&w, i);
    assert_ptr_equal(w.buf, room); /* no growing within the room */
    assert_int_equal(w.len, 1001);
    wire_writer_reserve(&w, 0); /* nothing asked: nothing changes */
    assert_int_equal(w.cap, 1001);
    wire_put_u64(&w, 0x0102030405060708ull); /* past it: grown */
    assert_int_equal(w.err, 0);
    assert_true(w.cap >= 1009);
    size_t len;
    uint8_t *buf = take_ok(&w, &len);
    assert_int_equal(len, 1009);
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    assert_int_equal(wire_get_u8(&r), 7);
    for (uint32_t i = 0; i < 250; i++)
        assert_int_equal(wire_get_u32(&r), i);
    assert_int_equal(wire_get_u64(&r), 0x0102030405060708ull);
    assert_int_equal(wire_reader_done(&r), 0);
    free(buf);
}

/* A reservation no memory can hold is the writer's error (sticky), and one
 * after an error changes nothing. */
static void test_wire_writer_reserve_too_big_enomem(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, 1);
    wire_writer_reserve(&w, SIZE_MAX);
    assert_int_equal(w.err, HERD_ENOMEM);
    assert_int_equal(w.len, 1);
    wire_put_u8(&w, 2);
    assert_int_equal(w.len, 1); /* the first error stays */
    size_t cap = w.cap;
    wire_writer_reserve(&w, 10);
    assert_int_equal(w.cap, cap);
    size_t len = 99;
    assert_null(wire_writer_take(&w, &len));
    assert_int_equal(len, 0);
}

static void test_wire_writer_str_255_ok_256_erange(void **state)
{
    (void)state;
    char s[257];
    memset(s, 'a', 256);
    s[256] = '\0';
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, s + 1); /* 255 bytes: the largest */
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 256);
    wire_put_str(&w, s); /* 256 bytes */
    assert_int_equal(w.err, HERD_ERANGE);
    assert_int_equal(w.len, 256); /* nothing of it was written */
    size_t len = 99;
    assert_null(wire_writer_take(&w, &len));
    assert_int_equal(len, 0);
}

static void test_wire_writer_errors_sticky(void **state)
{
    (void)state;
    char s[300];
    memset(s, 'x', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, 1);
    wire_put_str(&w, s);
    assert_int_equal(w.err, HERD_ERANGE);
    wire_put_u8(&w, 2);
    wire_put_u64(&w, 3);
    wire_put_str(&w, "ok");
    wire_put_bytes(&w, "b", 1);
    wire_put_raw(&w, "r", 1);
    assert_int_equal(w.err, HERD_ERANGE); /* the first error stays */
    assert_int_equal(w.len, 1);
    wire_writer_fini(&w);
    assert_null(w.buf);
    assert_int_equal(w.err, 0);
}

static void test_wire_writer_null_is_einval(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, NULL);
    assert_int_equal(w.err, HERD_EINVAL);
    wire_writer_fini(&w);
    wire_writer_init(&w);
    wire_put_raw(&w, NULL, 4);
    assert_int_equal(w.err, HERD_EINVAL);
    wire_writer_fini(&w);
    wire_writer_init(&w);
    wire_put_bytes(&w, NULL, 0); /* zero bytes need no pointer */
    wire_put_raw(&w, NULL, 0);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 4);
    wire_writer_fini(&w);
}

static void test_wire_writer_bytes_over_u32_erange(void **state)
{
    (void)state;
    if (SIZE_MAX <= UINT32_MAX)
        skip();
    static const uint8_t one = 1;
    wire_writer_t w;
    wire_writer_init(&w);
    /* The length is refused before anything is read from `data`. */
    wire_put_bytes(&w, &one, (size_t)UINT32_MAX + 1);
    assert_int_equal(w.err, HERD_ERANGE);
    assert_int_equal(w.len, 0);
    wire_writer_fini(&w);
}

static void test_wire_take_hands_over_and_resets(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u32(&w, 7);
    size_t len;
    uint8_t *a = take_ok(&w, &len);
    assert_int_equal(len, 4);
    assert_null(w.buf); /* the writer no longer owns it */
    assert_int_equal(w.len, 0);
    assert_int_equal(w.cap, 0);
    wire_put_u8(&w, 9); /* reusable after take */
    uint8_t *b = take_ok(&w, &len);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], 9);
    assert_int_equal(a[0], 7); /* the first buffer is untouched */
    free(a);
    free(b);
}

static void test_wire_take_empty_writer_not_null(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    size_t len = 99;
    uint8_t *buf = wire_writer_take(&w, &len);
    assert_non_null(buf); /* NULL would mean an error */
    assert_int_equal(len, 0);
    free(buf);
}

static void test_wire_take_after_error_resets(void **state)
{
    (void)state;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, 1);
    wire_put_str(&w, NULL);
    size_t len = 99;
    assert_null(wire_writer_take(&w, &len)); /* and the buffer was freed */
    assert_int_equal(len, 0);
    assert_int_equal(w.err, 0);
    assert_null(w.buf);
    wire_put_u8(&w, 1);
    uint8_t *buf = take_ok(&w, &len);
    assert_int_equal(len, 1);
    free(buf);
}

/* ---- reader bad paths --------------------------------------------------- */

static void test_wire_reader_short_reads(void **state)
{
    (void)state;
    static const uint8_t seven[7] = {1, 2, 3, 4, 5, 6, 7};
    for (size_t n = 0; n < 8; n++) {
        uint8_t *buf = exact_copy(seven, n);
        wire_reader_t r;
        wire_reader_init(&r, buf, n);
        assert_true(wire_get_u64(&r) == 0);
        assert_int_equal(r.err, HERD_EBADFRAME);
        assert_int_equal(r.off, 0); /* nothing consumed */
        wire_reader_init(&r, buf, n);
        uint32_t v = wire_get_u32(&r);
        assert_int_equal(r.err, n < 4 ? HERD_EBADFRAME : 0);
        assert_int_equal(v, n < 4 ? 0 : 0x04030201u);
        wire_reader_init(&r, buf, n);
        uint16_t v16 = wire_get_u16(&r);
        assert_int_equal(r.err, n < 2 ? HERD_EBADFRAME : 0);
        assert_int_equal(v16, n < 2 ? 0 : 0x0201);
        wire_reader_init(&r, buf, n);
        uint8_t v8 = wire_get_u8(&r);
        assert_int_equal(r.err, n < 1 ? HERD_EBADFRAME : 0);
        assert_int_equal(v8, n < 1 ? 0 : 1);
        free(buf);
    }
}

static void test_wire_reader_errors_sticky(void **state)
{
    (void)state;
    static const uint8_t data[] = {1, 2, 3};
    uint8_t *buf = exact_copy(data, sizeof data);
    wire_reader_t r;
    wire_reader_init(&r, buf, sizeof data);
    assert_int_equal(wire_get_u32(&r), 0); /* 4 > 3: fails */
    assert_int_equal(r.err, HERD_EBADFRAME);
    /* A read that would fit now still fails and returns zero. */
    assert_int_equal(wire_get_u8(&r), 0);
    assert_int_equal(wire_get_u16(&r), 0);
    char s[8] = "junk";
    assert_int_equal(wire_get_str(&r, s, sizeof s), 0);
    assert_string_equal(s, "");
    const uint8_t *d = buf;
    assert_int_equal(wire_get_bytes(&r, &d), 0);
    assert_null(d);
    assert_int_equal(r.off, 0);
    assert_int_equal(r.err, HERD_EBADFRAME);
    assert_int_equal(wire_reader_done(&r), HERD_EBADFRAME);
    free(buf);
}

static void test_wire_reader_str_length_beyond_end(void **state)
{
    (void)state;
    static const uint8_t data[] = {5, 'a', 'b', 'c', 'd'}; /* claims 5, has 4 */
    uint8_t *buf = exact_copy(data, sizeof data);
    wire_reader_t r;
    wire_reader_init(&r, buf, sizeof data);
    char s[64];
    assert_int_equal(wire_get_str(&r, s, sizeof s), 0);
    assert_int_equal(r.err, HERD_EBADFRAME);
    assert_string_equal(s, "");
    free(buf);

    static const uint8_t big[] = {255}; /* claims 255, has none */
    buf = exact_copy(big, sizeof big);
    wire_reader_init(&r, buf, sizeof big);
    char s256[256];
    assert_int_equal(wire_get_str(&r, s256, sizeof s256), 0);
    assert_int_equal(r.err, HERD_EBADFRAME);
    free(buf);
}

static void test_wire_reader_str_too_long_for_out(void **state)
{
    (void)state;
    static const uint8_t data[] = {4, 'a', 'b', 'c', 'd'};
    uint8_t *buf = exact_copy(data, sizeof data);
    wire_reader_t r;
    char s[5];
    wire_reader_init(&r, buf, sizeof data);
    assert_int_equal(wire_get_str(&r, s, 4), 0); /* 4 bytes need cap 5 */
    assert_int_equal(r.err, HERD_EBADFRAME);
    assert_string_equal(s, "");
    wire_reader_init(&r, buf, sizeof data);
    assert_int_equal(wire_get_str(&r, s, 5), 4);
    assert_string_equal(s, "abcd");
    assert_int_equal(wire_reader_done(&r), 0);
    wire_reader_init(&r, buf, sizeof data);
    assert_int_equal(wire_get_str(&r, NULL, 0), 0); /* cap 0 writes nothing */
    assert_int_equal(r.err, HERD_EBADFRAME);
    free(buf);
}

static void test_wire_reader_str_embedded_nul_refused(void **state)
{
    (void)state;
    static const uint8_t data[] = {3, 'a', 0, 'b'};
    uint8_t *buf = exact_copy(data, sizeof data);
    wire_reader_t r;
    wire_reader_init(&r, buf, sizeof data);
    char s[8];
    assert_int_equal(wire_get_str(&r, s, sizeof s), 0);
    assert_int_equal(r.err, HERD_EBADFRAME);
    assert_string_equal(s, "");
    free(buf);
}

/* A u32 length of `claim` followed by `have` bytes. */
static void check_bytes_claim(uint32_t claim, size_t have)
{
    size_t n = 4 + have;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    buf[0] = (uint8_t)claim;
    buf[1] = (uint8_t)(claim >> 8);
    buf[2] = (uint8_t)(claim >> 16);
    buf[3] = (uint8_t)(claim >> 24);
    memset(buf + 4, 0x5a, have);
    wire_reader_t r;
    wire_reader_init(&r, buf, n);
    const uint8_t *d = buf;
    size_t got = wire_get_bytes(&r, &d);
    if (claim <= have) {
        assert_int_equal(r.err, 0);
        assert_int_equal(got, claim);
        assert_ptr_equal(d, buf + 4);
    } else {
        assert_int_equal(r.err, HERD_EBADFRAME);
        assert_int_equal(got, 0);
        assert_null(d);
        assert_int_equal(r.off, 4); /* the length was read; nothing more */
        assert_int_equal(wire_get_u8(&r), 0);
    }
    free(buf);
}

static void test_wire_reader_bytes_length_beyond_end(void **state)
{
    (void)state;
    check_bytes_claim(0, 0);
    check_bytes_claim(1, 0);
    check_bytes_claim(3, 3);
    check_bytes_claim(4, 3);
    check_bytes_claim(1000, 999);
    check_bytes_claim(UINT32_MAX, 16);
    check_bytes_claim(UINT32_MAX - 3, 16);
    check_bytes_claim(0x80000000u, 16);
}

/* Lengths at the top of their range, read at an offset past the start: the
 * reader compares `n > len - off` (off <= len always holds), which cannot wrap
 * the way `off + n > len` could. A cap of SIZE_MAX must not wrap either. */
static void test_wire_reader_lengths_near_max(void **state)
{
    (void)state;
    static const uint8_t data[] = {0xaa, 0xbb, 0xff, 0xff, 0xff, 0xff, 1, 2};
    uint8_t *buf = exact_copy(data, sizeof data);
    wire_reader_t r;
    wire_reader_init(&r, buf, sizeof data);
    assert_int_equal(wire_get_u16(&r), 0xbbaa);
    const uint8_t *d = buf;
    assert_int_equal(wire_get_bytes(&r, &d), 0); /* claims UINT32_MAX, has 2 */
    assert_null(d);
    assert_int_equal(r.err, HERD_EBADFRAME);
    assert_int_equal(r.off, 6);

    wire_reader_init(&r, buf + 2, 4); /* the length alone, nothing after it */
    assert_int_equal(wire_get_bytes(&r, &d), 0);
    assert_int_equal(r.err, HERD_EBADFRAME);
    free(buf);

    static const uint8_t str[] = {2, 'h', 'i', 255, 'x'};
    buf = exact_copy(str, sizeof str);
    char out[300];
    wire_reader_init(&r, buf, sizeof str);
    assert_int_equal(wire_get_str(&r, out, SIZE_MAX), 2); /* cap only bounds */
    assert_string_equal(out, "hi");
    assert_int_equal(wire_get_str(&r, out, SIZE_MAX), 0); /* claims 255, has 1 */
    assert_int_equal(r.err, HERD_EBADFRAME);
    free(buf);
}

static void test_wire_reader_done_leftover(void **state)
{
    (void)state;
    static const uint8_t data[] = {1, 2, 3};
    uint8_t *buf = exact_copy(data, sizeof data);
    wire_reader_t r;
    wire_reader_init(&r, buf, sizeof data);
    assert_int_equal(wire_get_u16(&r), 0x0201);
    assert_int_equal(r.err, 0);
    assert_int_equal(wire_reader_done(&r), HERD_EBADFRAME); /* one byte left */
    assert_int_equal(wire_get_u8(&r), 3);
    assert_int_equal(wire_reader_done(&r), 0);
    free(buf);
}

static void test_wire_reader_empty_and_null(void **state)
{
    (void)state;
    wire_reader_t r;
    wire_reader_init(&r, NULL, 0);
    assert_int_equal(wire_reader_done(&r), 0);
    const uint8_t *d;
    static const uint8_t zero_len[4] = {0};
    wire_reader_init(&r, zero_len, sizeof zero_len);
    assert_int_equal(wire_get_bytes(&r, &d), 0);
    assert_ptr_equal(d, zero_len + 4);
    assert_int_equal(wire_reader_done(&r), 0);
    wire_reader_init(&r, NULL, 100); /* no buffer: nothing to read */
    assert_int_equal(r.len, 0);
    assert_int_equal(wire_get_u8(&r), 0);
    assert_int_equal(r.err, HERD_EBADFRAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip_every_type),
        cmocka_unit_test(test_wire_little_endian_layout),
        cmocka_unit_test(test_wire_writer_grows),
        cmocka_unit_test(test_wire_writer_reserve_exact_then_grows),
        cmocka_unit_test(test_wire_writer_reserve_too_big_enomem),
        cmocka_unit_test(test_wire_writer_str_255_ok_256_erange),
        cmocka_unit_test(test_wire_writer_errors_sticky),
        cmocka_unit_test(test_wire_writer_null_is_einval),
        cmocka_unit_test(test_wire_writer_bytes_over_u32_erange),
        cmocka_unit_test(test_wire_take_hands_over_and_resets),
        cmocka_unit_test(test_wire_take_empty_writer_not_null),
        cmocka_unit_test(test_wire_take_after_error_resets),
        cmocka_unit_test(test_wire_reader_short_reads),
        cmocka_unit_test(test_wire_reader_errors_sticky),
        cmocka_unit_test(test_wire_reader_str_length_beyond_end),
        cmocka_unit_test(test_wire_reader_str_too_long_for_out),
        cmocka_unit_test(test_wire_reader_str_embedded_nul_refused),
        cmocka_unit_test(test_wire_reader_bytes_length_beyond_end),
        cmocka_unit_test(test_wire_reader_lengths_near_max),
        cmocka_unit_test(test_wire_reader_done_leftover),
        cmocka_unit_test(test_wire_reader_empty_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
