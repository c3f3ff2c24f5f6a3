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

static int has_hash(const uint64_t *v, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == h)
            return 1;
    return 0;
}

static void test_pidx_add_has_del(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    assert_int_equal(pidx_add(&x, 0, 1), HERD_EINVAL);
    assert_false(pidx_has(&x, 7, 100)); /* empty */
    assert_int_equal(pidx_add(&x, 7, 100), 0);
    assert_int_equal(pidx_add(&x, 7, 100), 0); /* no-op */
    assert_int_equal(pidx_add(&x, 7, 0xffffffff00000001ull), 0);
    assert_int_equal(x.count, 2);
    assert_true(pidx_has(&x, 7, 100));
    assert_true(pidx_has(&x, 7, 0xffffffff00000001ull)); /* both halves of the hash */
    assert_false(pidx_has(&x, 7, 0x00000001ull));
    assert_false(pidx_has(&x, 8, 100));
    pidx_del(&x, 7, 100);
    assert_false(pidx_has(&x, 7, 100));
    assert_true(pidx_has(&x, 7, 0xffffffff00000001ull));
    pidx_del(&x, 7, 100); /* absent: nothing */
    assert_int_equal(x.count, 1);
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
            assert_int_equal(pidx_add(&x, s, s * 1000003ull + k), 0);
    for (uint64_t s = 2; s <= N; s += 2) /* half lose their first name */
        pidx_del(&x, s, s * 1000003ull);
    for (uint64_t s = 1; s <= N; s++) {
        uint64_t *h = NULL;
        size_t n = pidx_take(&x, s, &h);
        size_t want = 1 + s % 3 - (s % 2 == 0);
        assert_int_equal(n, want);
        for (uint64_t k = s % 2 == 0; k < 1 + s % 3; k++)
            assert_true(has_hash(h, n, s * 1000003ull + k));
        free(h);
        assert_false(pidx_has(&x, s, s * 1000003ull + s % 3));
    }
    assert_int_equal(x.count, 0);
    pidx_fini(&x);
}

/* Serials whose 32-bit tags are equal share their pairs: a take returns
 * both processes' hashes (the registry sorts them out by pid). */
static void test_pidx_shared_tag(void **state)
{
    (void)state;
    pidx_t x;
    pidx_init(&x);
    uint64_t a = 1, b = 1ull << 32; /* lo ^ hi: 1 and 1 */
    assert_int_equal(pidx_add(&x, a, 11), 0);
    assert_int_equal(pidx_add(&x, b, 22), 0);
    assert_true(pidx_has(&x, a, 22)); /* the documented sharing */
    uint64_t *h = NULL;
    size_t n = pidx_take(&x, a, &h);
    assert_int_equal(n, 2);
    assert_true(has_hash(h, n, 11) && has_hash(h, n, 22));
    free(h);
    assert_int_equal(x.count, 0);
    pidx_fini(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pidx_add_has_del),
        cmocka_unit_test(test_pidx_many_take),
        cmocka_unit_test(test_pidx_shared_tag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
