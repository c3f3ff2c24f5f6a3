/*
 * test_cluster_registry.c - the global name registry across real herdd
 * processes on 127.0.0.1, driven through their control sockets (register,
 * unregister, whereis, names, crdt, stats, block, unblock) and ringctl:
 *
 * 1. kill -9 of a node holding names: once the survivors declare it down its
 *    names are hidden there (whereis ENOENT, ringctl exit 1) but kept in the
 *    replica, the survivors' own names stay; a name it held may be taken
 *    meanwhile; when it restarts with a new incarnation its old names are
 *    removed for good on every node (it holds none), and what was taken
 *    meanwhile stays with its new holder, no conflict.
 * 2. a netsplit {n1} | {n2, n3} made with block / unblock, the same names
 *    registered on both sides by live holders, then healed: every node
 *    answers each name with the same single pid (the earlier registration:
 *    the node names are chosen so that the node-id tie-break would pick the
 *    other one), the losers are stopped with name_conflict and their nodes
 *    count one process fewer, and the names registered on one side only are
 *    visible everywhere.
 * 3. the control commands' answers and bad paths: block / unblock errors
 *    and counters, register's answer, metadata and refusals (no holder left
 *    behind), unregister at the holder's node (the holder stops) and at
 *    another node (the name goes everywhere and does not come back).
 *
 * herdd runs with short failure-detector timings (heartbeat 100 ms, down
 * after 800 ms of silence). Every wait is bounded with generous slack for a
 * sanitized build on a loaded 2-core machine; measured times are printed,
 * not judged.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_harness.h"
#include "herd_runtime.h"

#define JOIN_MS 15000   /* three nodes see each other up */
#define STATE_MS 10000  /* a down verdict, a heal, a restart seen */
#define SETTLE_MS 20000 /* the registry converges after a change of members */
#define PID_MAX 160

static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "800", NULL};

/* ---- nodes ---------------------------------------------------------------------- */

/* n1 (the seed), n2 and n3 joining through it, all up. */
static void start_three(cluster_t *c, cl_node_t *n[3])
{
    n[0] = cl_start(c, "n1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "n2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "n3", n[0], NULL, TIMING);
    long ms = cl_wait_all_up(n, 3, JOIN_MS);
    if (ms < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    print_message("registry: three nodes all up after %ld ms\n", ms);
}

static long long stat_of(const cl_node_t *n, const char *field)
{
    long long v = cl_stat(n, field, NULL);
    if (v < 0)
        fail_msg("%s: stats.%s missing (or the node does not answer)", n->name, field);
    return v;
}

/* A counter of the node's runtime (stats.runtime.FIELD); -1 when missing. */
static long long runtime_stat_of(const cl_node_t *n, const char *field)
{
    json_t *st = cl_ask(n, "stats", NULL, 0);
    json_t *v = json_object_get(json_object_get(st, "runtime"), field);
    long long out = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(st);
    return out;
}

static long long crdt_of(const cl_node_t *n, const char *field)
{
    json_t *doc = cl_ask(n, "crdt", NULL, 0);
    if (doc == NULL)
        fail_msg("%s does not answer crdt", n->name);
    json_t *v = json_object_get(doc, field);
    if (!json_is_integer(v))
        fail_msg("%s: crdt.%s missing", n->name, field);
    long long out = (long long)json_integer_value(v);
    json_decref(doc);
    return out;
}

/* Every node has written: once the cluster is quiet, every replica knows one
 * replica per node start and holds no dot above its version vectors (an empty
 * cloud), in `crdt` and in `stats` (registry.*) alike. */
static void quiet_context(cl_node_t **n, size_t count)
{
    uint64_t t0 = cl_now_ms();
    for (size_t i = 0; i < count; i++) {
        while (crdt_of(n[i], "cc_cloud_dots") != 0 || crdt_of(n[i], "cc_replicas") != 3) {
            if (cl_now_ms() - t0 > SETTLE_MS)
                fail_msg("%s: %lld dots in clouds (largest %lld), %lld replicas; want 0 "
                         "and 3 on a quiet cluster",
                         n[i]->name, crdt_of(n[i], "cc_cloud_dots"),
                         crdt_of(n[i], "cc_cloud_max"), crdt_of(n[i], "cc_replicas"));
            cl_sleep_ms(CL_POLL_MS);
        }
        assert_int_equal(crdt_of(n[i], "cc_cloud_max"), 0);
        json_t *st = cl_ask(n[i], "stats", NULL, 0);
        json_t *reg = json_object_get(st, "registry");
        assert_int_equal(json_integer_value(json_object_get(reg, "cc_cloud_dots")), 0);
        assert_int_equal(json_integer_value(json_object_get(reg, "cc_replicas")), 3);
        assert_true(json_is_integer(json_object_get(reg, "send_failed")));
        json_decref(st);
    }
    print_message("registry: quiet after %ld ms: empty clouds, 3 replicas on every node\n",
                  (long)(cl_now_ms() - t0));
}

/* Wait until `observer` reports `name` in `state`. */
static void wait_state(const cl_node_t *observer, const char *name, const char *state)
{
    long ms = cl_wait_state(observer, name, state, STATE_MS);
    if (ms < 0) {
        char s[32] = "?";
        cl_state(observer, name, s, sizeof(s), NULL);
        fail_msg("%s reports %s as '%s' after %d ms, want '%s'", observer->name, name, s,
                 STATE_MS, state);
    }
}

/* ---- names ---------------------------------------------------------------------- */

/* register NAME at n (meta: stolen, may be NULL): the holder's pid into pid. */
static void reg(const cl_node_t *n, const char *name, json_t *meta, char *pid)
{
    char code[32], why[600];
    json_t *args = json_pack("{s:s}", "name", name);
    if (meta)
        json_object_set_new(args, "meta", meta);
    json_t *r = cl_ask_args(n, "register", args, code, sizeof(code), why, sizeof(why));
    if (r == NULL)
        fail_msg("register '%s' at %s: %s", name, n->name, why);
    assert_string_equal(json_string_value(json_object_get(r, "name")), name);
    assert_string_equal(json_string_value(json_object_get(r, "node")), n->name);
    assert_true(json_is_object(json_object_get(r, "meta")));
    const char *p = json_string_value(json_object_get(r, "pid"));
    assert_non_null(p);
    /* "NODE/INCARNATION/SERIAL" */
    size_t len = strlen(n->name);
    if (strncmp(p, n->name, len) != 0 || p[len] != '/')
        fail_msg("register '%s' at %s answered pid '%s'", name, n->name, p);
    snprintf(pid, PID_MAX, "%s", p);
    json_decref(r);
}

/* Ask `cmd` with args (stolen) and expect the error `want`. */
static void refused(const cl_node_t *n, const char *cmd, json_t *args, const char *want)
{
    char code[32], why[600];
    char *text = json_dumps(args, JSON_COMPACT);
    json_t *r = cl_ask_args(n, cmd, args, code, sizeof(code), why, sizeof(why));
    if (r) {
        char *got = json_dumps(r, JSON_COMPACT);
        fail_msg("%s %s at %s: answered %s, want %s", cmd, text, n->name, got, want);
    }
    if (strcmp(code, want) != 0)
        fail_msg("%s %s at %s: '%s', want %s", cmd, text, n->name, why, want);
    free(text);
}

/* whereis NAME at n: 1 and the pid, or 0 and the error's name in code. */
static int where(const cl_node_t *n, const char *name, char *pid, char *code)
{
    char why[600];
    json_t *r = cl_ask_args(n, "whereis", json_pack("{s:s}", "name", name), code, 32, why,
                            sizeof(why));
    if (r == NULL) {
        if (code[0] == '\0')
            fail_msg("%s does not answer whereis '%s': %s", n->name, name, why);
        return 0;
    }
    const char *p = json_string_value(json_object_get(r, "pid"));
    assert_non_null(p);
    snprintf(pid, PID_MAX, "%s", p);
    json_decref(r);
    return 1;
}

static void assert_where(const cl_node_t *n, const char *name, const char *want_pid)
{
    char pid[PID_MAX], code[32];
    if (!where(n, name, pid, code))
        fail_msg("whereis '%s' at %s: %s, want %s", name, n->name, code, want_pid);
    if (strcmp(pid, want_pid) != 0)
        fail_msg("whereis '%s' at %s: %s, want %s", name, n->name, pid, want_pid);
}

static void assert_nowhere(const cl_node_t *n, const char *name)
{
    char pid[PID_MAX], code[32];
    if (where(n, name, pid, code))
        fail_msg("whereis '%s' at %s: %s, want ENOENT", name, n->name, pid);
    assert_string_equal(code, "ENOENT");
}

/* What a node's names list should be: these names with these pids, and
 * nothing else. */
typedef struct want {
    const char *name;
    const char *pid;
} want_t;

/* Whether n lists exactly `w`; if not, what differs into why. */
static int names_are(const cl_node_t *n, const want_t *w, size_t k, char *why, size_t cap)
{
    json_t *list = cl_ask(n, "names", NULL, 0);
    if (list == NULL || !json_is_array(list)) {
        snprintf(why, cap, "%s does not answer names", n->name);
        json_decref(list);
        return 0;
    }
    int ok = json_array_size(list) == k;
    if (!ok)
        snprintf(why, cap, "%s lists %zu names, want %zu", n->name, json_array_size(list), k);
    for (size_t i = 0; ok && i < k; i++) {
        size_t j;
        json_t *e;
        const char *pid = NULL;
        json_array_foreach(list, j, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "name")), w[i].name) == 0)
                pid = json_string_value(json_object_get(e, "pid"));
        }
        if (pid == NULL || strcmp(pid, w[i].pid) != 0) {
            snprintf(why, cap, "%s lists '%s' as %s, want %s", n->name, w[i].name,
                     pid ? pid : "(absent)", w[i].pid);
            ok = 0;
        }
    }
    json_decref(list);
    return ok;
}

/* Poll until each of nodes[0..k) lists exactly `w` and has `procs[i]`
 * processes (procs NULL: not checked); returns the elapsed ms. */
static long wait_views(cl_node_t *const *nodes, size_t k, const want_t *w, size_t nw,
                       const long long *procs, int timeout_ms)
{
    uint64_t t0 = cl_now_ms();
    char why[600] = "";
    for (;;) {
        int ok = 1;
        for (size_t i = 0; ok && i < k; i++) {
            ok = names_are(nodes[i], w, nw, why, sizeof(why));
            if (ok && procs) {
                long long p = stat_of(nodes[i], "processes");
                if (p != procs[i]) {
                    snprintf(why, sizeof(why), "%s runs %lld processes, want %lld",
                             nodes[i]->name, p, procs[i]);
                    ok = 0;
                }
            }
        }
        if (ok)
            return (long)(cl_now_ms() - t0);
        if (cl_now_ms() - t0 > (uint64_t)timeout_ms)
            fail_msg("no agreement within %d ms: %s", timeout_ms, why);
        cl_sleep_ms(CL_POLL_MS);
    }
}

/* Stays so for `ms`: nothing flips back. */
static void views_hold(cl_node_t *const *nodes, size_t k, const want_t *w, size_t nw,
                       const long long *procs, int ms)
{
    uint64_t t0 = cl_now_ms();
    while (cl_now_ms() - t0 < (uint64_t)ms) {
        char why[600];
        for (size_t i = 0; i < k; i++) {
            if (!names_are(nodes[i], w, nw, why, sizeof(why)))
                fail_msg("%ld ms after agreeing: %s", (long)(cl_now_ms() - t0), why);
            if (procs && stat_of(nodes[i], "processes") != procs[i])
                fail_msg("%ld ms after agreeing: %s runs %lld processes, want %lld",
                         (long)(cl_now_ms() - t0), nodes[i]->name,
                         stat_of(nodes[i], "processes"), procs[i]);
        }
        cl_sleep_ms(4 * CL_POLL_MS);
    }
}

/* ---- block / unblock ------------------------------------------------------------ */

static json_t *block(const cl_node_t *at, const char *peer, int on)
{
    char code[32], why[600];
    json_t *r = cl_ask_args(at, on ? "block" : "unblock", json_pack("{s:s}", "node", peer),
                            code, sizeof(code), why, sizeof(why));
    if (r == NULL)
        fail_msg("%s %s at %s: %s", on ? "block" : "unblock", peer, at->name, why);
    assert_string_equal(json_string_value(json_object_get(r, "node")), peer);
    assert_true(json_is_boolean(json_object_get(r, "blocked")));
    assert_int_equal(json_is_true(json_object_get(r, "blocked")), on);
    return r;
}

/* x and y stop hearing each other (each blocks the other), or hear again. */
static void split(const cl_node_t *x, const cl_node_t *y, int on)
{
    json_decref(block(x, y->name, on));
    json_decref(block(y, x->name, on));
}

/* ---- ringctl -------------------------------------------------------------------- */

static void ringctl_whereis(cluster_t *c, const cl_node_t *n, const char *name, cl_run_t *r)
{
    const char *argv[] = {RINGCTL_PATH, "--json", "--node", n->control, "whereis", name, NULL};
    cl_run(c, argv, 10000, r);
}

static void ringctl_says_enoent(cluster_t *c, const cl_node_t *n, const char *name)
{
    static cl_run_t r;
    ringctl_whereis(c, n, name, &r);
    if (r.status != 1)
        fail_msg("ringctl whereis %s at %s: exit %d, want 1; %s%s", name, n->name, r.status,
                 r.out, r.err);
    json_error_t e;
    json_t *doc = json_loads(r.out, 0, &e);
    if (doc == NULL)
        fail_msg("ringctl --json whereis: not JSON: %s", r.out);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "ENOENT");
    json_decref(doc);
}

/* ---- 1. kill -9 ------------------------------------------------------------------ */

static void test_cluster_registry_killed_node_names_hidden_then_removed(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    long long base[3];
    for (int i = 0; i < 3; i++)
        base[i] = stat_of(n[i], "processes");
    /* what the runtime dropped is in stats, and nothing is at the start */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(stat_of(n[i], "messages_dropped"), 0);
        assert_int_equal(runtime_stat_of(n[i], "late_replies"), 0);
        assert_int_equal(runtime_stat_of(n[i], "forward_dropped"), 0);
        assert_int_equal(runtime_stat_of(n[i], "forward_failed_calls"), 0);
    }

    char p1[PID_MAX], p2[PID_MAX], p3[PID_MAX], p3b[PID_MAX];
    reg(n[0], "on-n1", NULL, p1);
    reg(n[1], "on-n2", NULL, p2);
    reg(n[2], "on-n3", json_pack("{s:s}", "role", "victim"), p3);
    reg(n[2], "n3-second", NULL, p3b);
    const want_t all4[] = {{"on-n1", p1}, {"on-n2", p2}, {"on-n3", p3}, {"n3-second", p3b}};
    const long long procs0[3] = {base[0] + 1, base[1] + 1, base[2] + 2};
    long ms = wait_views(n, 3, all4, 4, procs0, SETTLE_MS);
    print_message("registry: 4 names on every node after %ld ms\n", ms);
    /* the metadata travelled with the name */
    json_t *w = cl_ask_args(n[0], "whereis", json_pack("{s:s}", "name", "on-n3"), NULL, 0,
                            NULL, 0);
    assert_non_null(w);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(w, "meta"), "role")), "victim");
    json_decref(w);

    /* kill -9 n3: once down at the survivors, its names are hidden there */
    char s[32];
    uint64_t inc_before = 0;
    assert_non_null(cl_state(n[0], "n3", s, sizeof(s), &inc_before));
    uint64_t t0 = cl_now_ms();
    cl_kill9(n[2]);
    wait_state(n[0], "n3", "down");
    wait_state(n[1], "n3", "down");
    print_message("registry: n3 killed, down at both survivors after %ld ms\n",
                  (long)(cl_now_ms() - t0));
    cl_node_t *surv[2] = {n[0], n[1]};
    const want_t two[] = {{"on-n1", p1}, {"on-n2", p2}};
    const long long procs1[2] = {base[0] + 1, base[1] + 1};
    wait_views(surv, 2, two, 2, procs1, SETTLE_MS);
    for (int i = 0; i < 2; i++) {
        assert_nowhere(surv[i], "on-n3");
        assert_nowhere(surv[i], "n3-second");
        ringctl_says_enoent(c, surv[i], "on-n3");
        assert_where(surv[i], "on-n1", p1);
        assert_where(surv[i], "on-n2", p2);
        /* hidden, not deleted: the replica still holds n3's entries */
        assert_int_equal(crdt_of(surv[i], "names"), 4);
    }

    /* a hidden entry does not hold its name: n2 takes "n3-second" */
    char p2b[PID_MAX];
    reg(n[1], "n3-second", NULL, p2b);
    const want_t three_while_down[] = {{"on-n1", p1}, {"on-n2", p2}, {"n3-second", p2b}};
    const long long procs2[2] = {base[0] + 1, base[1] + 2};
    wait_views(surv, 2, three_while_down, 3, procs2, SETTLE_MS);
    /* and it stays that way while n3 is down (longer than a few heartbeats) */
    views_hold(surv, 2, three_while_down, 3, procs2, 1500);

    /* n3 restarts: a new incarnation, so its old names are gone for good */
    cl_restart_args(c, n[2], TIMING);
    t0 = cl_now_ms();
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);
    uint64_t inc_after = 0;
    assert_non_null(cl_state(n[0], "n3", s, sizeof(s), &inc_after));
    assert_true(inc_after > inc_before);
    const long long procs3[3] = {base[0] + 1, base[1] + 2, base[2]};
    ms = wait_views(n, 3, three_while_down, 3, procs3, SETTLE_MS);
    print_message("registry: n3 restarted (incarnation %llu -> %llu); every node agrees "
                  "after %ld ms\n",
                  (unsigned long long)inc_before, (unsigned long long)inc_after,
                  (long)(cl_now_ms() - t0));
    /* removed, not hidden: gone from every replica too */
    uint64_t t1 = cl_now_ms();
    for (int i = 0; i < 3; i++) {
        while (crdt_of(n[i], "names") != 3) {
            if (cl_now_ms() - t1 > SETTLE_MS)
                fail_msg("%s's replica holds %lld names, want 3 (n3's old 'on-n3' removed)",
                         n[i]->name, crdt_of(n[i], "names"));
            cl_sleep_ms(CL_POLL_MS);
        }
    }
    for (int i = 0; i < 3; i++) {
        assert_nowhere(n[i], "on-n3");
        assert_where(n[i], "n3-second", p2b);
        assert_int_equal(crdt_of(n[i], "conflicts_resolved"), 0);
    }
    ringctl_says_enoent(c, n[2], "on-n3");
    views_hold(n, 3, three_while_down, 3, procs3, 1500);

    /* the name is free: the new n3 registers it afresh, seen everywhere */
    char p3new[PID_MAX];
    reg(n[2], "on-n3", NULL, p3new);
    assert_true(strcmp(p3new, p3) != 0);
    const want_t last[] = {{"on-n1", p1}, {"on-n2", p2}, {"n3-second", p2b}, {"on-n3", p3new}};
    const long long procs4[3] = {base[0] + 1, base[1] + 2, base[2] + 1};
    wait_views(n, 3, last, 4, procs4, SETTLE_MS);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 2. a netsplit healed with conflicting names --------------------------------- */

static void test_cluster_registry_partition_heals_to_one_pid_per_name(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    /* n2 < n1 < n3 by node id: below, each conflict's earlier registration
     * is on the node with the higher id, so only the time rule picks it. */
    uint64_t id1 = herd_node_id_of("n1"), id2 = herd_node_id_of("n2"),
             id3 = herd_node_id_of("n3");
    if (!(id2 < id1 && id1 < id3))
        fail_msg("node ids changed (n1 %016llx n2 %016llx n3 %016llx): pick other names",
                 (unsigned long long)id1, (unsigned long long)id2, (unsigned long long)id3);
    start_three(c, n);
    long long base[3];
    for (int i = 0; i < 3; i++)
        base[i] = stat_of(n[i], "processes");

    char pre1[PID_MAX], pre2[PID_MAX];
    reg(n[0], "pre-n1", NULL, pre1);
    reg(n[1], "pre-n2", NULL, pre2);
    const want_t pre[] = {{"pre-n1", pre1}, {"pre-n2", pre2}};
    wait_views(n, 3, pre, 2, NULL, SETTLE_MS);

    /* {n1} | {n2, n3} */
    uint64_t t0 = cl_now_ms();
    split(n[0], n[1], 1);
    split(n[0], n[2], 1);
    wait_state(n[0], "n2", "down");
    wait_state(n[0], "n3", "down");
    wait_state(n[1], "n1", "down");
    wait_state(n[2], "n1", "down");
    print_message("registry: partitioned {n1} | {n2, n3} after %ld ms\n",
                  (long)(cl_now_ms() - t0));
    cl_node_t *side_a[1] = {n[0]}, *side_b[2] = {n[1], n[2]};
    assert_true(cl_wait_all_up(side_b, 2, STATE_MS) >= 0);
    /* each side hides the other side's names */
    const want_t pre_a[] = {{"pre-n1", pre1}}, pre_b[] = {{"pre-n2", pre2}};
    wait_views(side_a, 1, pre_a, 1, NULL, SETTLE_MS);
    wait_views(side_b, 2, pre_b, 1, NULL, SETTLE_MS);

    /* The same names on both sides, held by live processes; the later one
     * waits a little, so that the registration times differ. */
    char dupa1[PID_MAX], dupa2[PID_MAX], dupb3[PID_MAX], dupb1[PID_MAX];
    char only1[PID_MAX], only3[PID_MAX];
    reg(n[0], "dup-a", NULL, dupa1); /* earlier, on n1 (id above n2's) */
    reg(n[2], "dup-b", NULL, dupb3); /* earlier, on n3 (id above n1's) */
    cl_sleep_ms(30);
    reg(n[1], "dup-a", NULL, dupa2);
    reg(n[0], "dup-b", NULL, dupb1);
    reg(n[0], "only-n1", NULL, only1);
    reg(n[2], "only-n3", json_pack("{s:s}", "side", "b"), only3);
    /* each side agrees with itself, and refuses a second holder there */
    const want_t during_a[] = {
        {"pre-n1", pre1}, {"dup-a", dupa1}, {"dup-b", dupb1}, {"only-n1", only1}};
    const want_t during_b[] = {
        {"pre-n2", pre2}, {"dup-a", dupa2}, {"dup-b", dupb3}, {"only-n3", only3}};
    const long long procs_a[1] = {base[0] + 4}, procs_b[2] = {base[1] + 2, base[2] + 2};
    wait_views(side_a, 1, during_a, 4, procs_a, SETTLE_MS);
    wait_views(side_b, 2, during_b, 4, procs_b, SETTLE_MS);
    refused(n[2], "register", json_pack("{s:s}", "name", "dup-a"), "EEXIST");
    assert_int_equal(stat_of(n[2], "processes"), base[2] + 2); /* no holder left behind */

    /* heal */
    t0 = cl_now_ms();
    split(n[0], n[1], 0);
    split(n[0], n[2], 0);
    long up = cl_wait_all_up(n, 3, JOIN_MS);
    if (up < 0)
        fail_msg("the healed nodes did not all see each other up within %d ms", JOIN_MS);
    /* one pid per name everywhere: the earlier registrations; the losers
     * (n2's dup-a, n1's dup-b) stopped, one process fewer on n1 and n2 */
    const want_t healed[] = {{"pre-n1", pre1},   {"pre-n2", pre2},   {"dup-a", dupa1},
                             {"dup-b", dupb3},   {"only-n1", only1}, {"only-n3", only3}};
    const long long procs_healed[3] = {base[0] + 3, base[1] + 1, base[2] + 2};
    long ms = wait_views(n, 3, healed, 6, procs_healed, SETTLE_MS);
    print_message("registry: healed; all up after %ld ms, one pid per name everywhere "
                  "after %ld ms\n",
                  up, (long)(cl_now_ms() - t0));
    (void)ms;
    for (int i = 0; i < 3; i++) {
        assert_where(n[i], "dup-a", dupa1);
        assert_where(n[i], "dup-b", dupb3);
        assert_where(n[i], "only-n1", only1);
        assert_where(n[i], "only-n3", only3);
    }
    /* each loser's node stopped its own loser, and says why */
    assert_int_equal(crdt_of(n[0], "conflicts_resolved"), 1);
    assert_int_equal(crdt_of(n[1], "conflicts_resolved"), 1);
    assert_int_equal(crdt_of(n[2], "conflicts_resolved"), 0);
    assert_true(cl_log_has(n[0], "of 'dup-b' exited: name_conflict"));
    assert_true(cl_log_has(n[1], "of 'dup-a' exited: name_conflict"));
    assert_false(cl_log_has(n[2], "exited: name_conflict"));
    /* and it stays settled */
    views_hold(n, 3, healed, 6, procs_healed, 2000);
    for (int i = 0; i < 3; i++) { /* nothing is blocked any more */
        json_t *r = block(n[i], i == 0 ? "n2" : "n1", 0);
        assert_int_equal(json_integer_value(json_object_get(r, "blocked_peers")), 0);
        json_decref(r);
    }
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 3. the commands themselves -------------------------------------------------- */

static void test_cluster_registry_control_commands(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    long long base[3];
    for (int i = 0; i < 3; i++)
        base[i] = stat_of(n[i], "processes");

    /* block / unblock: errors */
    refused(n[0], "block", json_pack("{s:s}", "node", "nobody"), "ENOENT");
    refused(n[0], "unblock", json_pack("{s:s}", "node", "nobody"), "ENOENT");
    refused(n[0], "block", json_pack("{s:s}", "node", "n1"), "EINVAL");
    refused(n[0], "block", json_object(), "EINVAL");
    refused(n[0], "block", json_pack("{s:i}", "node", 3), "EINVAL");
    /* the counters: frames dropped both ways while blocked */
    json_t *r = block(n[0], "n2", 1);
    assert_int_equal(json_integer_value(json_object_get(r, "blocked_peers")), 1);
    json_decref(r);
    wait_state(n[0], "n2", "down");
    r = block(n[0], "n2", 0);
    assert_int_equal(json_integer_value(json_object_get(r, "blocked_peers")), 0);
    assert_true(json_integer_value(json_object_get(r, "blocked_in")) > 0);
    assert_true(json_integer_value(json_object_get(r, "blocked_out")) > 0);
    json_decref(r);
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);
    assert_true(cl_log_has(n[0], "fault injection"));

    /* register: the answer, metadata, refusals */
    char pid[PID_MAX], other[PID_MAX];
    reg(n[1], "svc", json_pack("{s:s, s:s}", "zone", "z1", "v", "2"), pid);
    const want_t one[] = {{"svc", pid}};
    wait_views(n, 3, one, 1, NULL, SETTLE_MS);
    json_t *w =
        cl_ask_args(n[2], "whereis", json_pack("{s:s}", "name", "svc"), NULL, 0, NULL, 0);
    assert_non_null(w);
    json_t *meta = json_object_get(w, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "zone")), "z1");
    assert_string_equal(json_string_value(json_object_get(meta, "v")), "2");
    assert_string_equal(json_string_value(json_object_get(w, "node")), "n2");
    json_decref(w);
    refused(n[0], "register", json_pack("{s:s}", "name", "svc"), "EEXIST");
    refused(n[1], "register", json_pack("{s:s}", "name", "svc"), "EEXIST");
    refused(n[0], "register", json_object(), "EINVAL");
    refused(n[0], "register", json_pack("{s:s}", "name", ""), "EINVAL");
    refused(n[0], "register", json_pack("{s:s, s:s}", "name", "x", "meta", "flat"), "EINVAL");
    refused(n[0], "register", json_pack("{s:s, s:{s:i}}", "name", "x", "meta", "k", 1),
            "EINVAL");
    json_t *big = json_object();
    for (int i = 0; i < 9; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        json_object_set_new(big, k, json_string("v"));
    }
    refused(n[0], "register", json_pack("{s:s, s:o}", "name", "x", "meta", big), "ERANGE");
    /* nothing was started for the refusals */
    for (int i = 0; i < 3; i++)
        assert_int_equal(stat_of(n[i], "processes"), base[i] + (i == 1));
    assert_nowhere(n[0], "x");

    /* unregister at the holder's node: the name goes everywhere, the holder
     * stops */
    refused(n[0], "unregister", json_pack("{s:s}", "name", "nothing-here"), "ENOENT");
    refused(n[0], "unregister", json_object(), "EINVAL");
    r = cl_ask_args(n[1], "unregister", json_pack("{s:s}", "name", "svc"), NULL, 0, NULL, 0);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "pid")), pid);
    assert_true(json_is_true(json_object_get(r, "stopped")));
    json_decref(r);
    wait_views(n, 3, NULL, 0, base, SETTLE_MS);

    /* unregister at another node: the name goes everywhere and stays gone
     * (the holder's node lets go of it: it does not register it again), and
     * the holder ends */
    reg(n[2], "far", NULL, other);
    const want_t far[] = {{"far", other}};
    wait_views(n, 3, far, 1, NULL, SETTLE_MS);
    r = cl_ask_args(n[0], "unregister", json_pack("{s:s}", "name", "far"), NULL, 0, NULL, 0);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "pid")), other);
    assert_string_equal(json_string_value(json_object_get(r, "node")), "n3");
    assert_false(json_is_true(json_object_get(r, "stopped")));
    json_decref(r);
    wait_views(n, 3, NULL, 0, NULL, SETTLE_MS);
    views_hold(n, 3, NULL, 0, NULL, 3000); /* past the registry's 2 s re-check */
    /* the holder on n3, its name let go of, ends at its next check (it
     * used to run on unnamed for good: one process leaked per such
     * unregister); the name is free again */
    uint64_t t0 = cl_now_ms();
    while (stat_of(n[2], "processes") != base[2]) {
        if (cl_now_ms() - t0 > 5000)
            fail_msg("n3's holder of 'far' still runs %ld ms after its name was let go of",
                     (long)(cl_now_ms() - t0));
        cl_sleep_ms(CL_POLL_MS);
    }
    reg(n[0], "far", NULL, other);
    const want_t again[] = {{"far", other}};
    wait_views(n, 3, again, 1, NULL, SETTLE_MS);
    quiet_context(n, 3);
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cluster_registry_killed_node_names_hidden_then_removed, cl_setup,
            cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_registry_partition_heals_to_one_pid_per_name, cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_registry_control_commands, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
