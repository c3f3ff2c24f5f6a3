/*
 * test_replay.c - unit tests for the replay window (runtime/replay.h).
 *
 * Each test feeds a sequence of (incarnation, seq) pairs and checks every
 * verdict (for a HELLO too: it never moves the window to a new start); a final randomized test compares the window with a plain model
 * (a set of everything accepted) over reordered, duplicated streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "replay.h"

static void test_replay_accept_once(void **state)
{
    (void)state;
    replay_window_t w = {0};
    for (uint64_t s = 1; s <= 200; s++)
        assert_int_equal(replay_accept(&w, 7, s), 1);
    assert_true(w.top == 200);
    assert_true(w.incarnation == 7);
}

static void test_replay_duplicate_refused(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept(&w, 7, 1), 1);
    assert_int_equal(replay_accept(&w, 7, 1), 0);
    assert_int_equal(replay_accept(&w, 7, 2), 1);
    assert_int_equal(replay_accept(&w, 7, 2), 0);
    assert_int_equal(replay_accept(&w, 7, 1), 0);
}

static void test_replay_reordered_within_window_once_each(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept(&w, 3, 100), 1);
    /* Everything from 100 - 63 to 99 arrives late, in reverse order. */
    for (uint64_t s = 99; s >= 100 - (REPLAY_WINDOW - 1); s--)
        assert_int_equal(replay_accept(&w, 3, s), 1);
    for (uint64_t s = 100 - (REPLAY_WINDOW - 1); s <= 100; s++)
        assert_int_equal(replay_accept(&w, 3, s), 0); /* and not twice */
    /* Odd ones first, then even ones, above the old top. */
    for (uint64_t s = 101; s <= 140; s += 2)
        assert_int_equal(replay_accept(&w, 3, s), 1);
    for (uint64_t s = 102; s <= 140; s += 2)
        assert_int_equal(replay_accept(&w, 3, s), 1);
    for (uint64_t s = 101; s <= 140; s++)
        assert_int_equal(replay_accept(&w, 3, s), 0);
}

static void test_replay_older_than_window_refused(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept(&w, 1, 100), 1);
    assert_int_equal(replay_accept(&w, 1, 100 - REPLAY_WINDOW), 0); /* 36: too old */
    assert_int_equal(replay_accept(&w, 1, 1), 0);
    assert_int_equal(replay_accept(&w, 1, 100 - REPLAY_WINDOW + 1), 1); /* 37: the edge */
}

static void test_replay_higher_incarnation_resets(void **state)
{
    (void)state;
    replay_window_t w = {0};
    for (uint64_t s = 1; s <= 500; s++)
        assert_int_equal(replay_accept(&w, 10, s), 1);
    /* The sender restarted: it numbers from 1 again. */
    assert_int_equal(replay_accept(&w, 11, 1), 1);
    assert_true(w.incarnation == 11);
    assert_true(w.top == 1);
    assert_int_equal(replay_accept(&w, 11, 2), 1);
    assert_int_equal(replay_accept(&w, 11, 1), 0);
    /* A higher incarnation resets even at a lower sequence than before. */
    assert_int_equal(replay_accept(&w, 12, 5), 1);
    assert_int_equal(replay_accept(&w, 12, 4), 1);
}

static void test_replay_lower_incarnation_refused(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept(&w, 20, 1), 1);
    assert_int_equal(replay_accept(&w, 19, 2), 0);
    assert_int_equal(replay_accept(&w, 19, 1000), 0);
    assert_int_equal(replay_accept(&w, 1, 1), 0);
    assert_true(w.incarnation == 20); /* refusals change nothing */
    assert_true(w.top == 1);
    assert_int_equal(replay_accept(&w, 20, 2), 1);
}

static void test_replay_zero_refused(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept(&w, 5, 0), 0); /* seq 0 on an empty window */
    assert_int_equal(replay_accept(&w, 0, 1), 0); /* incarnation 0 */
    assert_true(w.incarnation == 0);
    assert_int_equal(replay_accept(&w, 5, 1), 1);
    assert_int_equal(replay_accept(&w, 5, 0), 0);
    assert_int_equal(replay_accept(&w, 6, 0), 0); /* not even to reset */
    assert_true(w.incarnation == 5);
}

static void test_replay_jump_far_ahead_then_old_refused(void **state)
{
    (void)state;
    replay_window_t w = {0};
    for (uint64_t s = 1; s <= 10; s++)
        assert_int_equal(replay_accept(&w, 2, s), 1);
    assert_int_equal(replay_accept(&w, 2, 1000000), 1);
    for (uint64_t s = 1; s <= 20; s++)
        assert_int_equal(replay_accept(&w, 2, s), 0);
    assert_int_equal(replay_accept(&w, 2, 1000000 - 64), 0);
    assert_int_equal(replay_accept(&w, 2, 1000000 - 63), 1);
    assert_int_equal(replay_accept(&w, 2, 1000000), 0);
    /* A jump of exactly the window, and to the top of the range. */
    assert_int_equal(replay_accept(&w, 2, 1000000 + 64), 1);
    assert_int_equal(replay_accept(&w, 2, 1000000), 0);
    assert_int_equal(replay_accept(&w, 2, UINT64_MAX), 1);
    assert_int_equal(replay_accept(&w, 2, UINT64_MAX), 0);
    assert_int_equal(replay_accept(&w, 2, UINT64_MAX - 1), 1);
    assert_int_equal(replay_accept(&w, 2, 1), 0);
}

static void test_replay_shift_by_63_keeps_edge(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept(&w, 1, 10), 1);
    assert_int_equal(replay_accept(&w, 1, 10 + 63), 1); /* 10 is now the oldest */
    assert_int_equal(replay_accept(&w, 1, 10), 0);      /* still remembered */
    assert_int_equal(replay_accept(&w, 1, 11), 1);
}

/* A HELLO never moves the window to another incarnation: a second start
 * of a name (or a recording from another one) says HELLO, and the live
 * start's frames must still pass. */
static void test_replay_hello_keeps_incarnation(void **state)
{
    (void)state;
    replay_window_t w = {0};
    assert_int_equal(replay_accept_hello(&w, 9, 1), 1); /* empty: accepted, not taken */
    assert_true(w.incarnation == 0);
    assert_int_equal(replay_accept(&w, 5, 10), 1); /* the live start */
    assert_int_equal(replay_accept_hello(&w, 9, 1), 1);
    assert_int_equal(replay_accept_hello(&w, 9, 1), 1); /* again: answers are rate-limited */
    assert_true(w.incarnation == 5 && w.top == 10);
    assert_int_equal(replay_accept(&w, 5, 11), 1); /* still passes */
    /* at the window's incarnation a HELLO is windowed like anything else */
    assert_int_equal(replay_accept_hello(&w, 5, 12), 1);
    assert_int_equal(replay_accept_hello(&w, 5, 12), 0);
    assert_int_equal(replay_accept_hello(&w, 5, 11), 0);
    /* older starts, sequence 0 and incarnation 0 are refused */
    assert_int_equal(replay_accept_hello(&w, 4, 100), 0);
    assert_int_equal(replay_accept_hello(&w, 9, 0), 0);
    assert_int_equal(replay_accept_hello(&w, 0, 1), 0);
    /* a frame to this start from the new incarnation does move it */
    assert_int_equal(replay_accept(&w, 9, 2), 1);
    assert_int_equal(replay_accept(&w, 5, 13), 0);
    assert_int_equal(replay_accept_hello(&w, 5, 13), 0);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random streams of nearby sequence numbers against a model: a frame is
 * accepted iff never accepted before and within the window of the greatest
 * accepted so far. */
static void test_replay_random_against_model(void **state)
{
    (void)state;
    enum { SPAN = 4096 };
    static uint8_t accepted[SPAN + 1];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t rng = seed;
        memset(accepted, 0, sizeof accepted);
        replay_window_t w = {0};
        uint64_t top = 0, next = 1;
        for (int i = 0; i < 20000; i++) {
            uint64_t back = rng_next(&rng) % 100; /* sometimes beyond 64 */
            uint64_t s = next > back ? next - back : 1;
            if (rng_next(&rng) % 4 == 0 && next < SPAN)
                next++;
            int want = !accepted[s] && (top < REPLAY_WINDOW || s > top - REPLAY_WINDOW);
            assert_int_equal(replay_accept(&w, 9, s), want);
            if (want) {
                accepted[s] = 1;
                if (s > top)
                    top = s;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_accept_once),
        cmocka_unit_test(test_replay_duplicate_refused),
        cmocka_unit_test(test_replay_reordered_within_window_once_each),
        cmocka_unit_test(test_replay_older_than_window_refused),
        cmocka_unit_test(test_replay_higher_incarnation_resets),
        cmocka_unit_test(test_replay_lower_incarnation_refused),
        cmocka_unit_test(test_replay_zero_refused),
        cmocka_unit_test(test_replay_jump_far_ahead_then_old_refused),
        cmocka_unit_test(test_replay_shift_by_63_keeps_edge),
        cmocka_unit_test(test_replay_random_against_model),
        cmocka_unit_test(test_replay_hello_keeps_incarnation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
