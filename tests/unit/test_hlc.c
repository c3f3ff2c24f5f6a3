/*
 * test_hlc.c - unit tests for the hybrid logical clock (runtime/hlc.h).
 *
 * The clock's promise is strict monotonicity and causality whatever the wall
 * clock does, so the tests drive it with wall clocks that stand still, go
 * backwards, jump, and trail a remote node, and with more events in one
 * millisecond than the 16-bit counter holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hlc.h"

#define LOGICAL_MASK ((UINT64_C(1) << HLC_LOGICAL_BITS) - 1)

static uint64_t ts_of(uint64_t ms, uint64_t logical)
{
    return (ms << HLC_LOGICAL_BITS) | logical;
}

static void test_hlc_tracks_leading_wall_clock(void **state)
{
    (void)state;
    hlc_t c = {0};
    for (uint64_t ms = 1000; ms < 1100; ms += 7) {
        uint64_t t = hlc_now(&c, ms);
        assert_true(t == ts_of(ms, 0)); /* wall leads: counter back to 0 */
        assert_true(hlc_physical_ms(t) == ms);
    }
}

static void test_hlc_wall_clock_stands_still(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t prev = hlc_now(&c, 5000);
    for (int i = 1; i <= 1000; i++) {
        uint64_t t = hlc_now(&c, 5000);
        assert_true(t > prev);
        assert_true(t == ts_of(5000, (uint64_t)i)); /* the counter counts */
        prev = t;
    }
}

static void test_hlc_wall_clock_goes_backwards(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t prev = hlc_now(&c, 10000);
    for (uint64_t ms = 9999; ms > 9000; ms--) {
        uint64_t t = hlc_now(&c, ms);
        assert_true(t > prev);
        assert_true(hlc_physical_ms(t) == 10000); /* holds the greatest seen */
        prev = t;
    }
    uint64_t t = hlc_now(&c, 10001); /* the wall catches up and leads again */
    assert_true(t == ts_of(10001, 0));
    assert_true(t > prev);
}

static void test_hlc_observe_remote_ahead(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t local = hlc_now(&c, 1000);
    uint64_t remote = ts_of(5000, 17); /* a node whose clock is 4 s ahead */
    uint64_t merged = hlc_observe(&c, 1001, remote);
    assert_true(merged > remote);
    assert_true(merged > local);
    assert_true(merged == remote + 1);
    uint64_t prev = merged;
    for (uint64_t ms = 1002; ms < 1200; ms++) {
        uint64_t t = hlc_now(&c, ms); /* still behind the remote's wall */
        assert_true(t > remote);
        assert_true(t > prev);
        assert_true(hlc_physical_ms(t) == 5000);
        prev = t;
    }
    assert_true(hlc_now(&c, 6000) == ts_of(6000, 0));
}

static void test_hlc_observe_remote_behind(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t local = hlc_now(&c, 8000);
    uint64_t merged = hlc_observe(&c, 8000, ts_of(100, 5));
    assert_true(merged > local); /* still a new event */
    assert_true(merged == local + 1);
    /* The wall leading both: the wall wins with counter 0. */
    assert_true(hlc_observe(&c, 9000, ts_of(8500, 3)) == ts_of(9000, 0));
}

static void test_hlc_observe_equal_to_last(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t local = hlc_now(&c, 700);
    assert_true(hlc_observe(&c, 700, local) == local + 1);
    assert_true(hlc_observe(&c, 0, c.last) > local + 1);
}

/* 65536 events and more within one millisecond: the counter overflows and the
 * increment carries into the physical part (documented in hlc.c). */
static void test_hlc_logical_overflow_still_increasing(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t prev = hlc_now(&c, 42);
    for (uint64_t i = 1; i <= 3 * (LOGICAL_MASK + 1); i++) {
        uint64_t t = hlc_now(&c, 42);
        assert_true(t > prev);
        prev = t;
    }
    assert_true(hlc_physical_ms(prev) == 45); /* three carries */
    assert_true((prev & LOGICAL_MASK) == 0);
    /* The physical part now leads the wall; the wall catches up later. */
    assert_true(hlc_now(&c, 44) == ts_of(45, 1));
    assert_true(hlc_now(&c, 46) == ts_of(46, 0));
}

static void test_hlc_observe_overflowing_remote(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t remote = ts_of(300, LOGICAL_MASK); /* counter at its maximum */
    uint64_t t = hlc_observe(&c, 10, remote);
    assert_true(t > remote);
    assert_true(t == ts_of(301, 0));
}

static void test_hlc_wall_beyond_48_bits_clamped(void **state)
{
    (void)state;
    hlc_t c = {0};
    uint64_t big = UINT64_C(1) << 50;
    uint64_t t1 = hlc_now(&c, big);
    uint64_t t2 = hlc_now(&c, big + 1);
    assert_true(t2 > t1); /* no wrap back to a small physical time */
    assert_true(hlc_physical_ms(t1) == (UINT64_C(1) << 48) - 1);
}

static void test_hlc_saturates_at_max(void **state)
{
    (void)state;
    hlc_t c = {0};
    assert_true(hlc_observe(&c, 1, UINT64_MAX) == UINT64_MAX);
    assert_true(hlc_now(&c, 1) == UINT64_MAX); /* no wrap to 0 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc_tracks_leading_wall_clock),
        cmocka_unit_test(test_hlc_wall_clock_stands_still),
        cmocka_unit_test(test_hlc_wall_clock_goes_backwards),
        cmocka_unit_test(test_hlc_observe_remote_ahead),
        cmocka_unit_test(test_hlc_observe_remote_behind),
        cmocka_unit_test(test_hlc_observe_equal_to_last),
        cmocka_unit_test(test_hlc_logical_overflow_still_increasing),
        cmocka_unit_test(test_hlc_observe_overflowing_remote),
        cmocka_unit_test(test_hlc_wall_beyond_48_bits_clamped),
        cmocka_unit_test(test_hlc_saturates_at_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
