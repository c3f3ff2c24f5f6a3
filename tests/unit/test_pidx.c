/*
 * test_pidx.c - the registry's index of local processes' names (pidx.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "herd_error.h"
#include "pidx.h"

/* A name hash as the map's are: every bit in use. */
static uint64_t H(uint64_t i)
{
    return (i + 1) * 0x9e3779b97f4a7c15ull;
}

/* Whether v holds h as pidx_take gives it back: its top AWMAP_HASH_BITS,
 * the rest 0. */
static int has_hash(const uint64_t *v, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == h >> (64 - AWMAP_HASH_BITS) << (64 - AWMAP_HASH_BITS))
            return 1;
    return 0;
}

static void test_pidx_add_has_del(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    const uint64_t a = 0x1234567890abcdefull, b = 0xffffffffff000001ull;
    assert_int_equal(pidx_add(&x, 0, a), HERD_EINVAL);
    assert_false(pidx_has(&x, 7, a)); /* empty */
    assert_int_equal(pidx_add(&x, 7, a), 0);
    assert_int_equal(pidx_add(&x, 7, a), 0); /* no-op */
    assert_int_equal(pidx_add(&x, 7, b), 0);
    assert_int_equal(x.count, 2);
    assert_true(pidx_has(&x, 7, a));
    assert_true(pidx_has(&x, 7, b));
    assert_true(pidx_has(&x, 7, a ^ 0xffffffff)); /* only the top 32 bits count */
    assert_false(pidx_has(&x, 7, a ^ 0x100000000));
    assert_false(pidx_has(&x, 7, b & ~(1ull << 63)));
    assert_false(pidx_has(&x, 8, a));
    pidx_del(&x, 7, a);
    assert_false(pidx_has(&x, 7, a));
    assert_true(pidx_has(&x, 7, b));
    pidx_del(&x, 7, a); /* absent: nothing */
    assert_int_equal(x.count, 1);
    uint64_t *h = NULL;
    assert_int_equal(pidx_take(&x, 7, &h), 1);
    assert_int_equal(h[0], 0xffffffff00000000ull); /* the low bits come back 0 */
    free(h);
    pidx_fini(&x);
}

/* Many serials with several names each, through growth and deletions that
 * shift probe runs: every take returns exactly its own pairs. */
static void test_pidx_many_take(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    enum { N = 20000 };
    for (uint64_t s = 1; s <= N; s++)
        for (uint64_t k = 0; k < 1 + s % 3; k++)
            assert_int_equal(pidx_add(&x, s, H(s * 4 + k)), 0);
    for (uint64_t s = 2; s <= N; s += 2) /* half lose their first name */
        pidx_del(&x, s, H(s * 4));
    for (uint64_t s = 1; s <= N; s++) {
        uint64_t *h = NULL;
        size_t n = pidx_take(&x, s, &h);
        size_t want = 1 + s % 3 - (s % 2 == 0);
        assert_int_equal(n, want);
        for (uint64_t k = s % 2 == 0; k < 1 + s % 3; k++)
            assert_true(has_hash(h, n, H(s * 4 + k)));
        free(h);
        assert_false(pidx_has(&x, s, H(s * 4 + s % 3)));
    }
    assert_int_equal(x.count, 0);
    pidx_fini(&x);
}

/* Serials whose tags are equal share their pairs: a take returns both
 * processes' hashes (the registry sorts them out by pid). */
static void test_pidx_shared_tag(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    uint64_t a = 1, b = 1ull << PIDX_TAG_BITS; /* folded to the same tag */
    assert_int_equal(pidx_add(&x, a, H(11)), 0);
    assert_int_equal(pidx_add(&x, b, H(22)), 0);
    assert_true(pidx_has(&x, a, H(22))); /* the documented sharing */
    uint64_t *h = NULL;
    size_t n = pidx_take(&x, a, &h);
    assert_int_equal(n, 2);
    assert_true(has_hash(h, n, H(11)) && has_hash(h, n, H(22)));
    free(h);
    assert_int_equal(x.count, 0);
    pidx_fini(&x);
}

/* One process with many names among others with one each, through many
 * growths (each rehash places a tag's pairs in one pass): every pair is
 * still found, a take returns the process's names alone, and the table
 * stays at most 9/10 full at 6 bytes a slot. */
static void test_pidx_one_serial_many_names(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    enum { MANY = 5000, OTHERS = 3000 };
    for (uint64_t k = 0; k < MANY; k++) {
        assert_int_equal(pidx_add(&x, 7, H(k)), 0);
        if (k < OTHERS)
            assert_int_equal(pidx_add(&x, 100 + k, H(MANY + k)), 0);
    }
    assert_int_equal(x.count, MANY + OTHERS);
    assert_true(x.count * 10 <= x.n * 9);
    assert_int_equal(pidx_bytes(&x), x.n * 6);
    for (uint64_t k = 0; k < MANY; k++)
        assert_true(pidx_has(&x, 7, H(k)));
    for (uint64_t k = 0; k < OTHERS; k++)
        assert_true(pidx_has(&x, 100 + k, H(MANY + k)));
    uint64_t *h = NULL;
    size_t n = pidx_take(&x, 7, &h);
    assert_int_equal(n, MANY);
    for (uint64_t k = 0; k < MANY; k += 97)
        assert_true(has_hash(h, n, H(k)));
    free(h);
    assert_int_equal(x.count, OTHERS);
    for (uint64_t k = 0; k < OTHERS; k++)
        assert_true(pidx_has(&x, 100 + k, H(MANY + k)));
    pidx_fini(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pidx_add_has_del),
        cmocka_unit_test(test_pidx_many_take),
        cmocka_unit_test(test_pidx_shared_tag),
        cmocka_unit_test(test_pidx_one_serial_many_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
