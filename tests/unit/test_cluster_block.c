/*
 * test_cluster_block.c - fault injection in the cluster layer
 * (herd_cluster_block, herd_runtime.h): a node that blocks a peer drops
 * every frame to and from it, so both of them declare the other down while
 * the rest of the cluster sees both up; blocking each side's peers on the
 * other side makes a netsplit; unblocking heals it, and everybody is up
 * again with the same incarnations (nobody restarted). Messages on a
 * reliable stream sent across the split arrive once after the heal, not
 * before.
 *
 * Three nodes in this one process on one shared loop over tcp loopback
 * (support.h). Small failure-detector timings, every wait bounded; no
 * assertion on how fast anything is beyond those bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "support.h"

#define SECRET "test-cluster-block-secret-0123456789"
#define WAIT_MS 15000u
#define APP 200

/* Down after 0.6 s of silence: quick, yet well clear of the stalls of a
 * sanitized run on a loaded machine (the checks that nobody else is declared
 * down depend on that). */
static const ts_timing_t T = {50, 300, 600, 60000};

#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

static herd_node_t *node(const char *name, herd_node_t *seed)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop};
    herd_node_t *n = ts_cluster_add(&cfg);
    ts_cluster_join(n, &T, seed ? &seed : NULL, seed ? 1 : 0);
    return n;
}

/* a, b, c all up. */
static void three(herd_node_t *n[3])
{
    n[0] = node("a", NULL);
    n[1] = node("b", n[0]);
    n[2] = node("c", n[0]);
    WAIT_UNTIL(ts_cluster_all_up(n, 3));
}

static uint64_t id(herd_node_t *n)
{
    return herd_node_id_of(herd_node_name(n));
}

static int state_of(herd_node_t *observer, herd_node_t *n)
{
    return ts_cluster_member_state(observer, herd_node_name(n));
}

/* Up, or at worst suspect (a loaded machine): not declared down. */
static int live(int st)
{
    return st == HERD_MEMBER_UP || st == HERD_MEMBER_SUSPECT;
}

static herd_cluster_stats_t stats(herd_node_t *n)
{
    herd_cluster_stats_t s;
    assert_int_equal(herd_cluster_stats(n, &s), 0);
    return s;
}

static void free_all(herd_node_t *n[3])
{
    for (int i = 2; i >= 0; i--)
        ts_node_free(n[i]);
}

/* ---- the stream the tests send across the split ------------------------------- */

typedef struct inbox {
    int count;
    char last[32];
} inbox_t;

static void on_app(void *data, uint64_t from, uint64_t inc, const uint8_t *msg, size_t len)
{
    (void)from, (void)inc;
    inbox_t *in = data;
    if (ts_detached())
        return;
    in->count++;
    snprintf(in->last, sizeof(in->last), "%.*s", (int)len, (const char *)msg);
}

/* ---- cases ------------------------------------------------------------------------ */

/* a blocks b, at a only: a and b each declare the other down (a hears
 * nothing from b, b nothing from a); c, untouched, sees both up all along.
 * Unblocked, b is up again at a and a at b, with the same incarnations. */
static void test_cluster_block_one_side_splits_both_ways(void **state)
{
    (void)state;
    herd_node_t *n[3];
    three(n);
    herd_node_t *a = n[0], *b = n[1], *c = n[2];
    uint64_t inc_a = herd_node_incarnation(a), inc_b = herd_node_incarnation(b);
    herd_cluster_stats_t s0 = stats(a);
    assert_int_equal(s0.blocked_peers, 0);
    assert_int_equal(s0.blocked_in + s0.blocked_out, 0);

    assert_int_equal(herd_cluster_block(a, id(b), 1), 0);
    assert_int_equal(stats(a).blocked_peers, 1);
    uint64_t t0 = ts_mono_ms();
    while (state_of(a, b) != HERD_MEMBER_DOWN || state_of(b, a) != HERD_MEMBER_DOWN) {
        if (ts_mono_ms() - t0 > WAIT_MS)
            fail_msg("a sees b as %d, b sees a as %d: want both down", state_of(a, b),
                     state_of(b, a));
        /* c is not part of the split */
        if (!live(state_of(c, a)) || !live(state_of(c, b)))
            fail_msg("c sees a as %d and b as %d, though nothing was blocked at c",
                     state_of(c, a), state_of(c, b));
        ts_cluster_run_slice(5);
    }
    print_message("block: a and b declared each other down after %llu ms\n",
                  (unsigned long long)(ts_mono_ms() - t0));
    /* a and b keep seeing c up; c sees both */
    ts_cluster_run_ms(300);
    assert_true(live(state_of(a, c)));
    assert_true(live(state_of(b, c)));
    assert_true(live(state_of(c, a)));
    assert_true(live(state_of(c, b)));
    /* both directions were dropped at a, and counted there only */
    herd_cluster_stats_t s1 = stats(a);
    assert_true(s1.blocked_out > 0);
    assert_true(s1.blocked_in > 0);
    assert_int_equal(stats(b).blocked_in + stats(b).blocked_out, 0);
    /* still down while blocked */
    assert_int_equal(state_of(a, b), HERD_MEMBER_DOWN);

    assert_int_equal(herd_cluster_block(a, id(b), 0), 0);
    assert_int_equal(stats(a).blocked_peers, 0);
    t0 = ts_mono_ms();
    WAIT_UNTIL(ts_cluster_all_up(n, 3));
    print_message("block: healed, all up after %llu ms\n",
                  (unsigned long long)(ts_mono_ms() - t0));
    assert_int_equal(herd_cluster_member_incarnation(b, id(a)), inc_a);
    assert_int_equal(herd_cluster_member_incarnation(a, id(b)), inc_b);
    /* nothing is dropped any more */
    herd_cluster_stats_t s2 = stats(a);
    ts_cluster_run_ms(200);
    herd_cluster_stats_t s3 = stats(a);
    assert_int_equal(s3.blocked_in, s2.blocked_in);
    assert_int_equal(s3.blocked_out, s2.blocked_out);
    free_all(n);
}

/* {a} | {b, c}: each side blocks the other side's nodes. Each side sees the
 * other down and its own side up; a stream message a sends b meanwhile does
 * not arrive while split, and arrives once after the heal. */
static void test_cluster_block_partition_and_heal(void **state)
{
    (void)state;
    herd_node_t *n[3];
    three(n);
    herd_node_t *a = n[0], *b = n[1], *c = n[2];
    static inbox_t in; /* static: callbacks may outlive a failed test's frame */
    memset(&in, 0, sizeof(in));
    assert_int_equal(herd_cluster_on_app(b, APP, on_app, &in), 0);
    assert_int_equal(herd_cluster_send_app(a, id(b), APP, "before", 6), 0);
    WAIT_UNTIL(in.count == 1);
    assert_string_equal(in.last, "before");

    assert_int_equal(herd_cluster_block(a, id(b), 1), 0);
    assert_int_equal(herd_cluster_block(a, id(c), 1), 0);
    assert_int_equal(herd_cluster_block(b, id(a), 1), 0);
    assert_int_equal(herd_cluster_block(c, id(a), 1), 0);
    assert_int_equal(herd_cluster_send_app(a, id(b), APP, "during", 6), 0);
    WAIT_UNTIL(state_of(a, b) == HERD_MEMBER_DOWN && state_of(a, c) == HERD_MEMBER_DOWN &&
               state_of(b, a) == HERD_MEMBER_DOWN && state_of(c, a) == HERD_MEMBER_DOWN);
    ts_cluster_run_ms(300);
    /* b and c still see each other (their only other member is down) */
    assert_true(live(state_of(b, c)));
    assert_true(live(state_of(c, b)));
    assert_int_equal(in.count, 1); /* "during" did not cross */
    for (int i = 0; i < 3; i++)
        assert_int_equal(stats(n[i]).blocked_peers, i == 0 ? 2 : 1);

    for (int i = 1; i < 3; i++) {
        assert_int_equal(herd_cluster_block(a, id(n[i]), 0), 0);
        assert_int_equal(herd_cluster_block(n[i], id(a), 0), 0);
    }
    WAIT_UNTIL(ts_cluster_all_up(n, 3));
    WAIT_UNTIL(in.count == 2);
    assert_string_equal(in.last, "during");
    ts_cluster_run_ms(200);
    assert_int_equal(in.count, 2); /* once */
    assert_int_equal(herd_cluster_on_app(b, APP, NULL, NULL), 0);
    free_all(n);
}

/* The bad paths, and idempotence. */
static void test_cluster_block_bad_arguments(void **state)
{
    (void)state;
    herd_node_config_t cfg = {.name = "lone", .loop = &ts_loop};
    herd_node_t *lone = ts_cluster_add(&cfg);
    /* not in a cluster */
    assert_int_equal(herd_cluster_block(lone, herd_node_id_of("x"), 1), HERD_ENOENT);
    assert_int_equal(herd_cluster_block(lone, herd_node_id_of("x"), 0), HERD_ENOENT);
    ts_node_free(lone);

    herd_node_t *n[3];
    three(n);
    herd_node_t *a = n[0], *b = n[1];
    assert_int_equal(herd_cluster_block(a, 0, 1), HERD_EINVAL);
    assert_int_equal(herd_cluster_block(a, id(a), 1), HERD_EINVAL);
    assert_int_equal(herd_cluster_block(a, id(a), 0), HERD_EINVAL);
    assert_int_equal(stats(a).blocked_peers, 0);
    /* unblocking what is not blocked: nothing to do */
    assert_int_equal(herd_cluster_block(a, id(b), 0), 0);
    /* twice is once */
    assert_int_equal(herd_cluster_block(a, id(b), 1), 0);
    assert_int_equal(herd_cluster_block(a, id(b), 1), 0);
    assert_int_equal(stats(a).blocked_peers, 1);
    /* a node that is not a member (yet): matched by id, harmless */
    assert_int_equal(herd_cluster_block(a, herd_node_id_of("nobody"), 1), 0);
    assert_int_equal(stats(a).blocked_peers, 2);
    assert_int_equal(herd_cluster_block(a, herd_node_id_of("nobody"), 0), 0);
    assert_int_equal(herd_cluster_block(a, id(b), 0), 0);
    assert_int_equal(stats(a).blocked_peers, 0);
    WAIT_UNTIL(ts_cluster_all_up(n, 3));
    /* freeing a node with peers blocked frees them too (ASan would tell) */
    assert_int_equal(herd_cluster_block(a, id(b), 1), 0);
    free_all(n);
}

/* A message too big for one frame is refused by the sender and counted
 * there (oversize_out): the receiver's nanomsg would drop the frame unseen.
 * One that fits still goes. */
static void test_cluster_block_oversize_is_refused_and_counted(void **state)
{
    (void)state;
    herd_node_t *n[3];
    three(n);
    herd_node_t *a = n[0], *b = n[1];
    inbox_t in = {0};
    assert_int_equal(herd_cluster_on_app(b, APP, on_app, &in), 0);
    size_t big = 1u << 20;
    uint8_t *buf = calloc(1, big);
    assert_non_null(buf);
    assert_int_equal(stats(a).oversize_out, 0);
    assert_int_equal(herd_cluster_send_app(a, id(b), APP, buf, big), HERD_ETOOBIG);
    assert_int_equal(stats(a).oversize_out, 1);
    assert_int_equal(herd_cluster_send_app(a, id(b), APP, buf, big - 10), HERD_ETOOBIG);
    assert_int_equal(stats(a).oversize_out, 2);
    memcpy(buf, "fits", 4);
    assert_int_equal(herd_cluster_send_app(a, id(b), APP, buf, 4), 0);
    WAIT_UNTIL(in.count == 1);
    assert_int_equal(stats(b).oversize_out, 0);
    assert_int_equal(stats(a).seeds_silent, 0);
    free(buf);
    assert_int_equal(herd_cluster_on_app(b, APP, NULL, NULL), 0);
    free_all(n);
}

int main(void)
{
    ts_cluster_init("test_cluster_block", SECRET);
    if (getenv("HERD_TEST_LOG") == NULL)
        herd_log_set_level(HERD_LOG_ERROR);
#define T(f) cmocka_unit_test_setup_teardown(f, ts_cluster_setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_cluster_block_one_side_splits_both_ways),
        T(test_cluster_block_partition_and_heal),
        T(test_cluster_block_bad_arguments),
        T(test_cluster_block_oversize_is_refused_and_counted),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
