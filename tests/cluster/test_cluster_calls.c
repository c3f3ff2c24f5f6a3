/*
 * test_cluster_calls.c - calls through ringctl to a counter whose node is
 * cut off, with real herdd processes on 127.0.0.1 (issue 12, item 3: "calls
 * reported as failed are applied later").
 *
 * Three nodes hx1, hx2, hx3; the counter c101 runs on hx3 (its owner on
 * that ring). Three rounds of:
 * 1. hx3 cut off both ways (each side blocks the other);
 * 2. `ringctl --node hx1 call c101 incr 7` at once, while hx1 still sees hx3
 *    up: it must fail, with exit 1 ("not applied") or exit 3 ("outcome
 *    unknown", EUNCERTAIN or ETIMEDOUT); it was answered "node down or
 *    unknown" with exit 1 before, and then applied after the heal;
 * 3. the same call again once it is answered (the cluster restarted c101 on
 *    hx1 or hx2, the callee has moved): exit 0;
 * 4. the heal; once the copies have merged, every node's `get` answers the
 *    value before the round plus 7: the retry counted once, the failed call
 *    not at all (its request never reached hx3, and the request queued for
 *    hx3 was withdrawn when hx1 declared it down, so nothing was delivered
 *    after the heal: with it, the value was 14 above, the increment applied
 *    twice).
 * hx1's stats count the withdrawn requests and the call's verdict.
 *
 * Every wait is bounded, with slack for a sanitized build on 2 busy cores.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_harness.h"

#define JOIN_MS 15000
#define ROUNDS 3
#define STEP 7
#define MOVE_MS 20000   /* the cut-off counter runs again on the other side */
#define SETTLE_MS 30000 /* after the heal, one copy with the merged value */
#define RINGCTL_MS 20000

/* Down after 1 s: the first call leaves while hx3 is still up at hx1. */
static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "1000", NULL};

/* ---- helpers ----------------------------------------------------------------------- */

static void ringctl_call(cluster_t *c, const cl_node_t *via, const char *request,
                         cl_run_t *r)
{
    char req[64];
    snprintf(req, sizeof(req), "%s", request);
    const char *argv[] = {RINGCTL_PATH, "--json", "--node", via->control, "call", "c101",
                          req, NULL};
    cl_run(c, argv, RINGCTL_MS, r);
}

/* stats.calls.FIELD of node n; -1 when it does not answer. */
static long long calls_stat(const cl_node_t *n, const char *field)
{
    json_t *st = cl_ask(n, "stats", NULL, 0);
    json_t *v = st ? json_object_get(json_object_get(st, "calls"), field) : NULL;
    long long out = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(st);
    return out;
}

/* c101's value as node n's call answers it; 0 with *v set, -1 otherwise. */
static int value_at(const cl_node_t *n, long long *v)
{
    json_t *r = cl_ask_args(n, "call", json_pack("{s:s, s:s}", "name", "c101", "request", "get"),
                            NULL, 0, NULL, 0);
    json_t *value = r ? json_object_get(r, "value") : NULL;
    int ok = json_is_integer(value);
    if (ok)
        *v = json_integer_value(value);
    json_decref(r);
    return ok ? 0 : -1;
}

/* The node that runs c101, as n sees it ("" when it cannot say). */
static void owner_at(const cl_node_t *n, char *out, size_t cap)
{
    json_t *r = cl_ask_args(n, "whereis", json_pack("{s:s}", "name", "c101"), NULL, 0, NULL, 0);
    const char *node = r ? json_string_value(json_object_get(r, "node")) : NULL;
    snprintf(out, cap, "%s", node ? node : "");
    json_decref(r);
}

/* Every node finds c101 on `node` (a move back to its owner after a heal
 * has finished); fails the test past SETTLE_MS. */
static void wait_owner(cl_node_t *const *n, size_t count, const char *node)
{
    uint64_t deadline = cl_now_ms() + SETTLE_MS;
    for (;;) {
        int all = 1;
        char where[80];
        for (size_t i = 0; i < count; i++) {
            owner_at(n[i], where, sizeof(where));
            all &= strcmp(where, node) == 0;
        }
        if (all)
            return;
        if (cl_now_ms() > deadline)
            fail_msg("c101 did not come back to %s (%s sees it on %s)", node, n[count - 1]->name,
                     where);
        cl_sleep_ms(100);
    }
}

/* Every node answers the same value twice in a row (the copies merged);
 * fails the test past SETTLE_MS. */
static long long settled_value(cl_node_t *const *n, size_t count)
{
    uint64_t deadline = cl_now_ms() + SETTLE_MS;
    long long last = 0;
    int agreed = 0;
    for (;;) {
        long long v[8];
        int same = 1;
        for (size_t i = 0; i < count; i++)
            same &= value_at(n[i], &v[i]) == 0 && v[i] == v[0];
        agreed = same && (agreed == 0 || v[0] == last) ? agreed + 1 : 0;
        last = v[0];
        if (agreed == 2)
            return last;
        if (cl_now_ms() > deadline)
            fail_msg("c101's value never settled on every node (last %lld)", last);
        cl_sleep_ms(200);
    }
}

/* The call through hx1 that the cut makes fail: exit 1 or 3, and hx1
 * counted its verdict. Returns the exit code. */
static int failed_call(cluster_t *c, const cl_node_t *hx1, cl_run_t *r)
{
    long long not_applied = calls_stat(hx1, "not_applied");
    long long uncertain = calls_stat(hx1, "uncertain");
    ringctl_call(c, hx1, "incr 7", r);
    print_message("calls: cut off: exit %d, %.300s", r->status, r->err);
    if (r->status != 1 && r->status != 3)
        fail_msg("a call to a cut-off node: exit %d, want 1 (not applied) or 3 (outcome "
                 "unknown); out %s err %s",
                 r->status, r->out, r->err);
    int unknown = strstr(r->out, "EUNCERTAIN") || strstr(r->out, "ETIMEDOUT");
    if ((r->status == 3) != (unknown != 0))
        fail_msg("exit %d with the error %s", r->status, r->out);
    if (strstr(r->out, "EUNCERTAIN") &&
        calls_stat(hx1, "uncertain") != uncertain + 1)
        fail_msg("hx1 did not count the call ended with its outcome unknown");
    if (strstr(r->out, "ENOTCONN") && calls_stat(hx1, "not_applied") < not_applied)
        fail_msg("hx1's count of calls not applied went down");
    return r->status;
}

/* The retry, once c101 answers on hx1's side of the cut: exit 0. */
static void retried_call(cluster_t *c, const cl_node_t *hx1, cl_run_t *r)
{
    uint64_t deadline = cl_now_ms() + MOVE_MS;
    long long v;
    while (value_at(hx1, &v) != 0) {
        if (cl_now_ms() > deadline)
            fail_msg("c101 never ran again on hx1's side of the cut");
        cl_sleep_ms(200);
    }
    ringctl_call(c, hx1, "incr 7", r);
    if (r->status != 0)
        fail_msg("the retry on the moved counter: exit %d; out %s err %s", r->status, r->out,
                 r->err);
}

/* ---- the test ------------------------------------------------------------------------ */

static void test_cluster_calls_failed_call_not_applied_after_heal(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    n[0] = cl_start(c, "hx1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "hx2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "hx3", n[0], NULL, TIMING);
    if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    char code[32], why[600], where[80];
    json_t *s = cl_ask_args(n[0], "start",
                            json_pack("{s:s, s:s}", "service", "counter", "name", "c101"), code,
                            sizeof(code), why, sizeof(why));
    if (s == NULL)
        fail_msg("start c101: %s %s", code, why);
    assert_string_equal(json_string_value(json_object_get(s, "node")), "hx3");
    json_decref(s);
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    ringctl_call(c, n[0], "incr 5", r);
    assert_int_equal(r->status, 0);
    long long value = settled_value(n, 3);
    assert_int_equal(value, 5);
    int exits[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        wait_owner(n, 3, "hx3");
        cl_split(n[2], n[0], 1);
        cl_split(n[2], n[1], 1);
        exits[round] = failed_call(c, n[0], r);
        retried_call(c, n[0], r);
        owner_at(n[0], where, sizeof(where));
        cl_split(n[2], n[0], 0);
        cl_split(n[2], n[1], 0);
        if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
            fail_msg("round %d: the nodes did not see each other up again", round);
        long long now = settled_value(n, 3);
        print_message("calls: round %d: the failed call exited %d, the retry ran on %s; "
                      "%lld -> %lld\n",
                      round, exits[round], where, value, now);
        if (now != value + STEP)
            fail_msg("round %d: c101 is %lld after the heal, want %lld + %d: the failed call "
                     "(exit %d) was applied too",
                     round, now, value, STEP, exits[round]);
        value = now;
    }
    assert_true(calls_stat(n[0], "withdrawn") >= 1);
    free(r);
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_calls_failed_call_not_applied_after_heal,
                                        cl_setup, cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
