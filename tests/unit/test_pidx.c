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
    assert_int_equal(x.pairs, 2);
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
    assert_int_equal(x.pairs, 1);
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
    assert_int_equal(x.pairs, 0);
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
    assert_int_equal(x.pairs, 0);
    pidx_fini(&x);
}

/* One process with many names among others with one each, through many
 * growths: its pairs move to a table of their own (the shared table keeps
 * the others), every pair is still found, a take returns the process's
 * names alone and that table goes; memory stays about 6 bytes a pair. */
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
    assert_int_equal(pidx_add(&x, 7, H(3)), 0); /* held: nothing */
    assert_int_equal(x.pairs, MANY + OTHERS);
    assert_int_equal(x.count, OTHERS); /* the shared table: the others */
    assert_int_equal(x.big.count, 1);
    assert_true(x.count * 10 <= x.n * 9);
    assert_true(pidx_bytes(&x) <= x.pairs * 8 + 1024);
    assert_true(pidx_tagged(&x, 7));
    for (uint64_t k = 0; k < MANY; k++)
        assert_true(pidx_has(&x, 7, H(k)));
    assert_false(pidx_has(&x, 7, H(MANY + 1)));
    for (uint64_t k = 0; k < OTHERS; k++)
        assert_true(pidx_has(&x, 100 + k, H(MANY + k)));
    uint64_t got[MANY];
    assert_int_equal(pidx_get(&x, 7, got, MANY), MANY);
    assert_true(has_hash(got, MANY, H(MANY - 1)));
    pidx_del(&x, 7, H(0));
    assert_false(pidx_has(&x, 7, H(0)));
    assert_int_equal(x.pairs, MANY + OTHERS - 1);
    uint64_t *h = NULL;
    size_t n = pidx_take(&x, 7, &h);
    assert_int_equal(n, MANY - 1);
    for (uint64_t k = 1; k < MANY; k += 97)
        assert_true(has_hash(h, n, H(k)));
    assert_false(has_hash(h, n, H(0)));
    free(h);
    assert_int_equal(x.pairs, OTHERS);
    assert_int_equal(x.big.count, 0); /* its table went */
    assert_false(pidx_tagged(&x, 7));
    assert_false(pidx_has(&x, 7, H(5)));
    for (uint64_t k = 0; k < OTHERS; k++)
        assert_true(pidx_has(&x, 100 + k, H(MANY + k)));
    pidx_fini(&x);
}

/* A tag's own table empties by deletes too, and then goes; pairs added
 * again start in the shared table and move once more. */
static int count_each(void *data, uint64_t hash)
{
    (void)hash;
    ++*(size_t *)data;
    return 0;
}

static void test_pidx_own_table_by_deletes(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    enum { K = 100 };
    for (uint64_t k = 0; k < K; k++)
        assert_int_equal(pidx_add(&x, 9, H(k)), 0);
    assert_int_equal(pidx_add(&x, 10, H(K)), 0);
    assert_int_equal(x.big.count, 1);
    size_t seen = 0;
    assert_int_equal(pidx_each(&x, 9, count_each, &seen), 0);
    assert_int_equal(seen, K);
    for (uint64_t k = 0; k < K; k++)
        pidx_del(&x, 9, H(k));
    assert_int_equal(x.big.count, 0);
    assert_int_equal(x.pairs, 1);
    assert_false(pidx_tagged(&x, 9));
    for (uint64_t k = 0; k < K; k++)
        assert_int_equal(pidx_add(&x, 9, H(k)), 0);
    assert_int_equal(x.big.count, 1);
    assert_int_equal(x.pairs, K + 1);
    assert_true(pidx_has(&x, 10, H(K)));
    pidx_fini(&x);
    assert_int_equal(pidx_bytes(&x), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pidx_add_has_del),
        cmocka_unit_test(test_pidx_many_take),
        cmocka_unit_test(test_pidx_shared_tag),
        cmocka_unit_test(test_pidx_one_serial_many_names),
        cmocka_unit_test(test_pidx_own_table_by_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
