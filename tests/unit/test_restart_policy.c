/*
 * test_restart_policy.c - unit tests for the restart policy both
 * supervisors share (runtime/restart_policy.h).
 *
 * The numbers are the supervisors' own: 3 restarts within 5 s, the first at
 * once, then 10 ms doubling up to a second. The windows are checked at
 * their edges, where the two kinds (sliding, reopening) differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "restart_policy.h"

static const restart_policy_t policy = {3, 5000, 10, 1000};

static void test_restart_policy_verdict_by_strategy(void **state)
{
    (void)state;
    const int failures[] = {HERD_REASON_KILLED, HERD_REASON_NOCONNECTION, HERD_ETIMEDOUT};
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
        assert_int_equal(restart_verdict(HERD_RESTART_PERMANENT, failures[i]), RESTART_AGAIN);
        assert_int_equal(restart_verdict(HERD_RESTART_TRANSIENT, failures[i]), RESTART_AGAIN);
        assert_int_equal(restart_verdict(HERD_RESTART_TEMPORARY, failures[i]), RESTART_ENDED);
    }
    const int normal[] = {HERD_REASON_NORMAL, HERD_REASON_SHUTDOWN};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(restart_verdict(HERD_RESTART_PERMANENT, normal[i]), RESTART_AGAIN);
        assert_int_equal(restart_verdict(HERD_RESTART_TRANSIENT, normal[i]), RESTART_ENDED);
        assert_int_equal(restart_verdict(HERD_RESTART_TEMPORARY, normal[i]), RESTART_ENDED);
    }
}

static void test_restart_policy_moves_are_no_failure(void **state)
{
    (void)state;
    const herd_restart_t all[] = {HERD_RESTART_PERMANENT, HERD_RESTART_TRANSIENT,
                                  HERD_RESTART_TEMPORARY};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(restart_verdict(all[i], HERD_REASON_NAME_CONFLICT), RESTART_NO_FAILURE);
        assert_int_equal(restart_verdict(all[i], HERD_REASON_HANDOFF), RESTART_NO_FAILURE);
    }
}

static void test_restart_policy_over_limit_after_max(void **state)
{
    (void)state;
    for (uint32_t prior = 0; prior < 3; prior++)
        assert_false(restart_over_limit(&policy, prior));
    assert_true(restart_over_limit(&policy, 3));
    assert_true(restart_over_limit(&policy, UINT32_MAX));
    restart_policy_t none = {0, 5000, 10, 1000};
    assert_true(restart_over_limit(&none, 0));
}

static void test_restart_policy_backoff_doubles_to_cap(void **state)
{
    (void)state;
    const uint64_t want[] = {0, 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000};
    for (uint32_t prior = 0; prior < sizeof(want) / sizeof(want[0]); prior++)
        assert_int_equal(restart_backoff(&policy, prior), want[prior]);
    assert_int_equal(restart_backoff(&policy, UINT32_MAX), 1000);
}

static void test_restart_policy_backoff_odd_settings(void **state)
{
    (void)state;
    restart_policy_t over = {3, 5000, 1500, 1000}; /* first delay above the cap */
    assert_int_equal(restart_backoff(&over, 0), 0);
    assert_int_equal(restart_backoff(&over, 1), 1000);
    assert_int_equal(restart_backoff(&over, 5), 1000);
    restart_policy_t zero = {3, 5000, 0, 1000};
    assert_int_equal(restart_backoff(&zero, 1), 0);
    assert_int_equal(restart_backoff(&zero, 100), 0);
    restart_policy_t big = {3, 5000, UINT32_MAX, UINT32_MAX};
    assert_int_equal(restart_backoff(&big, 64), UINT32_MAX);
}

static void test_restart_policy_slide_drops_old_keeps_order(void **state)
{
    (void)state;
    uint64_t stamps[] = {1000, 2000, 5999, 6000, 7000};
    /* at 11000: 6000 + 5000 is not after now, so it left the window too */
    uint32_t keep = restart_window_slide(&policy, stamps, 5, 11000);
    assert_int_equal(keep, 1);
    assert_int_equal(stamps[0], 7000);
    uint64_t again[] = {1000, 2000, 5999, 6000, 7000};
    keep = restart_window_slide(&policy, again, 5, 10998);
    assert_int_equal(keep, 3);
    assert_int_equal(again[0], 5999);
    assert_int_equal(again[1], 6000);
    assert_int_equal(again[2], 7000);
    assert_int_equal(restart_window_slide(&policy, again, 0, 10998), 0);
}

static void test_restart_policy_reopen_at_first_and_after_window(void **state)
{
    (void)state;
    assert_true(restart_window_reopens(&policy, 1000, 0, 1000)); /* none counted */
    assert_false(restart_window_reopens(&policy, 1000, 2, 1000));
    assert_false(restart_window_reopens(&policy, 1000, 2, 6000)); /* exactly window_ms */
    assert_true(restart_window_reopens(&policy, 1000, 2, 6001));
}

/* The distributed supervisor's sequence: crashes 1 ms apart restart at
 * once, after 10 ms, after 20 ms, then the fourth is given up. */
static void test_restart_policy_crash_loop_sequence(void **state)
{
    (void)state;
    uint64_t opened = 0;
    uint32_t counted = 0;
    const uint64_t want[] = {0, 10, 20};
    for (uint64_t now = 100; now < 104; now++) {
        if (restart_window_reopens(&policy, opened, counted, now)) {
            opened = now;
            counted = 0;
        }
        uint32_t prior = counted++;
        if (now == 103) {
            assert_true(restart_over_limit(&policy, prior));
            break;
        }
        assert_false(restart_over_limit(&policy, prior));
        assert_int_equal(restart_backoff(&policy, prior), want[now - 100]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_policy_verdict_by_strategy),
        cmocka_unit_test(test_restart_policy_moves_are_no_failure),
        cmocka_unit_test(test_restart_policy_over_limit_after_max),
        cmocka_unit_test(test_restart_policy_backoff_doubles_to_cap),
        cmocka_unit_test(test_restart_policy_backoff_odd_settings),
        cmocka_unit_test(test_restart_policy_slide_drops_old_keeps_order),
        cmocka_unit_test(test_restart_policy_reopen_at_first_and_after_window),
        cmocka_unit_test(test_restart_policy_crash_loop_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
