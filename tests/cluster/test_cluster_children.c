/*
 * test_cluster_children.c - the distributed supervisor with real herdd
 * processes on 127.0.0.1, under load, driven through the control sockets
 * (start, call, children, handoffs, drain):
 *
 * Three nodes; 1,000 counters started by name (each `start` sent to the
 * ring's owner of the name, so it answers as soon as the owner registered
 * it); the test then sends `call incr` round-robin over the counters, through
 * the live nodes in turn, between and during the steps, and counts per
 * counter the increments that were acknowledged:
 *
 * 1. a 4th node joins: wait until every child settles (`children` from every
 *    live node lists each name exactly once, running, on the same node with
 *    the same pid, that node being the name's owner on the ring of the active
 *    members; the old nodes' `handoffs` show committed moves and none in
 *    flight). Only the children whose owner changed moved (same pid for the
 *    others). Then `call get` of every counter equals its acknowledged
 *    increments exactly: a graceful move loses nothing.
 * 2. a node is drained (`drain`): wait until it runs no child and everything
 *    settles again; the same exact check.
 * 3. a node is killed with SIGKILL: wait until every child runs again and is
 *    registered (no "missing"); the counters that lived on the killed node
 *    restarted from their replicas (herdd's counter keeps 2 copies) with
 *    every acknowledged increment, so every counter is still exact.
 * Finally the drained node and then the other survivors are stopped with
 * SIGTERM (which drains: the counters move once more and stay exact) and
 * must exit 0 with no sanitizer report.
 *
 * A call that fails is not counted as acknowledged; failures are counted per
 * step and by error code, and printed. A call answered with an error must
 * not have been applied (the exact checks see it); one that timed out, whose
 * outcome the node could not know (EUNCERTAIN: its callee's node went down
 * after the request left) or that got no answer may have been, so its
 * counter may hold up to that many more, and how many were applied is
 * printed. An incr's answer must be the counter's
 * acknowledged increments plus one, the kill included (not for a counter
 * with a call of unknown outcome). After each check, every node
 * still lists the pids that had settled. herdd runs
 * with short failure-detector timings (heartbeat 100 ms, down after 1 s of
 * silence). Every wait is bounded with generous slack for a sanitized build
 * on a loaded 2-core machine; step timings are printed, not judged.
 *
 * A second test (false_down_with_kill): three nodes, 300 counters;
 * n3 gets SIGKILL while n2 is stopped (SIGSTOP) past the down timeout, so
 * n1 runs every counter and n2, let go on, may too: every counter must end
 * once on its owner among n1 and n2, with its acknowledged increments.
 *
 * HERD_CHILDREN_COUNT overrides the number of counters (for quick runs);
 * HERD_CHILDREN_LOG sets herdd's --log-level (e.g. info, debug);
 * HERD_CHILDREN_TEST runs only the tests whose name matches the pattern.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_harness.h"
#include "herd_ring.h"

#define MAX_COUNTERS 5000
#define DEFAULT_COUNTERS 1000
#define JOIN_MS 15000        /* nodes see each other up */
#define SETTLE_MS 90000      /* every child settles after a change of members */
#define CALL_TIMEOUT_MS 4000 /* a call's own timeout (the control socket waits 5 s) */
#define LOAD_SLICE_MS 250    /* load between two looks at the children */
#define MAX_CODES 16

/* herdd's arguments: short failure-detector timings, and the log level from
 * HERD_CHILDREN_LOG (e.g. "info"; default: herdd's, warn). */
static const char *TIMING[] = {
    "--heartbeat-ms", "100", "--down-ms", "1000", NULL, NULL, NULL};

static void timing_init(void)
{
    const char *level = getenv("HERD_CHILDREN_LOG");
    if (level && *level) {
        TIMING[4] = "--log-level";
        TIMING[5] = level;
    }
}

/* ---- the counters and the load -------------------------------------------------- */

enum { PH_WARMUP, PH_JOIN, PH_DRAIN, PH_KILL, PH_SIGTERM, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {"warm-up", "join", "drain", "kill -9",
                                                  "SIGTERM"};

typedef struct phase_stats {
    long long ok, failed, unknown; /* unknown: no answer, or timed out */
    long long mismatched;          /* an incr answered a value != acknowledged */
    char code[MAX_CODES][32];
    long long code_count[MAX_CODES];
    size_t codes;
    long long ms;
} phase_stats_t;

typedef struct counter {
    char name[24];
    long long acked;   /* acknowledged increments */
    long long since;   /* of those, acknowledged since the last mark */
    long long unknown; /* calls whose outcome is unknown (timed out / no answer) */
    long long failed;  /* calls that failed with an error */
    int on_victim;     /* it ran on the node that was killed */
    char node[65];     /* where it runs, at the last settled look */
    char pid[128];
    char first_err[200];
} counter_t;

typedef struct load {
    cluster_t *c;
    counter_t *ctr;
    size_t count;
    size_t next;                  /* round robin over the counters */
    cl_node_t *via[CL_MAX_NODES]; /* live nodes the calls go through */
    size_t nvia, next_via;
    int phase;
    uint64_t phase_t0;
    phase_stats_t ph[PH_COUNT];
    int check_replies; /* an incr's answer must be acked+1 (a crash keeps the count) */
} load_t;

static size_t counter_count(void)
{
    const char *s = getenv("HERD_CHILDREN_COUNT");
    long v = s ? strtol(s, NULL, 10) : DEFAULT_COUNTERS;
    return v >= 10 && v <= MAX_COUNTERS ? (size_t)v : DEFAULT_COUNTERS;
}

/* "c0042" -> 42; -1 for a name that is not one of ours. */
static long counter_index(const load_t *ld, const char *name)
{
    if (name == NULL || name[0] != 'c' || name[1] == '\0') return -1;
    char *end;
    long i = strtol(name + 1, &end, 10);
    if (*end != '\0' || i < 0 || (size_t)i >= ld->count) return -1;
    return strcmp(ld->ctr[i].name, name) == 0 ? i : -1;
}

static void set_via(load_t *ld, cl_node_t *const *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ld->via[i] = nodes[i];
    ld->nvia = n;
    ld->next_via = 0;
}

static void set_phase(load_t *ld, int phase)
{
    ld->phase = phase;
    ld->phase_t0 = cl_now_ms();
    for (size_t i = 0; i < ld->count; i++)
        ld->ctr[i].since = 0;
}

static void note_code(phase_stats_t *p, const char *code)
{
    const char *k = code[0] ? code : "no-answer";
    for (size_t i = 0; i < p->codes; i++)
        if (strcmp(p->code[i], k) == 0) {
            p->code_count[i]++;
            return;
        }
    if (p->codes < MAX_CODES) {
        snprintf(p->code[p->codes], sizeof(p->code[0]), "%s", k);
        p->code_count[p->codes++] = 1;
    }
}

/* Send the next `call incr` of the round robin. */
static void load_one(load_t *ld)
{
    counter_t *ct = &ld->ctr[ld->next];
    ld->next = (ld->next + 1) % ld->count;
    cl_node_t *via = ld->via[ld->next_via];
    ld->next_via = (ld->next_via + 1) % ld->nvia;
    phase_stats_t *p = &ld->ph[ld->phase];
    char code[32] = "", why[600] = "";
    json_t *r = cl_ask_args(via, "call",
                            json_pack("{s:s, s:s, s:i}", "name", ct->name, "request",
                                      "incr", "timeout_ms", CALL_TIMEOUT_MS),
                            code, sizeof(code), why, sizeof(why));
    if (r) {
        ct->acked++;
        ct->since++;
        p->ok++;
        json_t *v = json_object_get(r, "value");
        if (ld->check_replies && ct->unknown == 0 &&
            (!json_is_integer(v) || json_integer_value(v) != ct->acked)) {
            if (p->mismatched++ < 5)
                print_message("children: %s: incr through %s answered %lld, want %lld\n",
                              ct->name, via->name,
                              json_is_integer(v) ? (long long)json_integer_value(v) : -1,
                              ct->acked);
        }
        json_decref(r);
        return;
    }
    /* No answer, a timeout or an uncertain outcome: the increment may have
     * been applied (and, replicated, outlived its node). */
    int unknown = code[0] == '\0' || strcmp(code, "ETIMEDOUT") == 0 ||
                  strcmp(code, "EUNCERTAIN") == 0;
    if (unknown) {
        ct->unknown++;
        p->unknown++;
    } else {
        ct->failed++;
        p->failed++;
    }
    note_code(p, code);
    if (p->failed + p->unknown <= 3)
        print_message(
            "children: %s: call incr %s through %s failed (%ld ms after the step "
            "began): %s\n",
            phase_names[ld->phase], ct->name, via->name,
            (long)(cl_now_ms() - ld->phase_t0), why);
    if (!ct->first_err[0])
        snprintf(ct->first_err, sizeof(ct->first_err), "%s via %s (%s)",
                 phase_names[ld->phase], via->name, why);
}

static void load_for(load_t *ld, int ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)ms;
    do
        load_one(ld);
    while (cl_now_ms() < end);
}

static void print_phase(const load_t *ld, int ph)
{
    const phase_stats_t *p = &ld->ph[ph];
    char codes[600] = "";
    for (size_t i = 0; i < p->codes; i++)
        snprintf(codes + strlen(codes), sizeof(codes) - strlen(codes), "%s%s=%lld",
                 i ? "," : "", p->code[i], p->code_count[i]);
    print_message("children: load during %s: %lld incr acknowledged, %lld failed, %lld "
                  "outcome unknown%s%s%s, %lld answers != acknowledged\n",
                  phase_names[ph], p->ok, p->failed, p->unknown, p->codes ? " (" : "",
                  codes, p->codes ? ")" : "", p->mismatched);
}

/* The answers of the incr calls in phase `ph` were the acknowledged counts. */
static void check_answers(const load_t *ld, int ph)
{
    if (ld->ph[ph].mismatched)
        fail_msg("during %s, %lld incr calls answered a value other than the counter's "
                 "acknowledged increments",
                 phase_names[ph], ld->ph[ph].mismatched);
}

/* ---- rings ---------------------------------------------------------------------- */

/* Every ring and buffer the test makes, freed by the teardown also when an
 * assertion ended the test early. */
#define MAX_RINGS 8
static herd_ring_t *g_rings[MAX_RINGS];
static size_t g_ring_n;

static herd_ring_t *ring_of(cl_node_t *const *nodes, size_t n)
{
    herd_ring_t *r = herd_ring_new();
    assert_non_null(r);
    assert_true(g_ring_n < MAX_RINGS);
    g_rings[g_ring_n++] = r;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(herd_ring_add(r, nodes[i]->name, HERD_RING_DEFAULT_WEIGHT), 0);
    return r;
}

static const char *owner_of(const herd_ring_t *r, const char *name)
{
    const char *o = NULL;
    assert_int_equal(herd_ring_owner(r, name, strlen(name), &o), 0);
    return o;
}

/* ---- looking at the children ---------------------------------------------------- */

typedef struct view {
    char node[65];
    char pid[128];
    char state[16];
    int seen;
} view_t;

static view_t *g_ref, *g_obs; /* count entries each */

/* Ask `obs` for its children into g_obs. 0 and why on a bad answer. */
static int read_children(load_t *ld, const cl_node_t *obs, view_t *out, char *why,
                         size_t cap)
{
    char code[32], msg[600];
    memset(out, 0, ld->count * sizeof(*out));
    json_t *list =
        cl_ask_args(obs, "children", NULL, code, sizeof(code), msg, sizeof(msg));
    if (list == NULL)
        return snprintf(why, cap, "%s does not answer children: %s", obs->name, msg), 0;
    if (!json_is_array(list)) {
        json_decref(list);
        fail_msg("%s: children is not a JSON array", obs->name);
    }
    size_t i;
    json_t *o;
    int ok = 1;
    json_array_foreach(list, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *node = json_string_value(json_object_get(o, "node"));
        const char *pid = json_string_value(json_object_get(o, "pid"));
        const char *state = json_string_value(json_object_get(o, "state"));
        const char *service = json_string_value(json_object_get(o, "service"));
        long k = counter_index(ld, name);
        if (k < 0) {
            json_decref(list);
            fail_msg("%s lists a child '%s' nobody started", obs->name,
                     name ? name : "?");
        }
        if (service == NULL || strcmp(service, "counter") != 0 || state == NULL) {
            json_decref(list);
            fail_msg("%s lists %s with service '%s' state '%s'", obs->name, name,
                     service ? service : "?", state ? state : "?");
        }
        view_t *v = &out[k];
        if (v->seen++ && ok) {
            ok = 0;
            snprintf(why, cap, "%s lists %s %d times", obs->name, name, v->seen);
        }
        snprintf(v->node, sizeof(v->node), "%s", node ? node : "");
        snprintf(v->pid, sizeof(v->pid), "%s", pid ? pid : "");
        snprintf(v->state, sizeof(v->state), "%s", state);
    }
    json_decref(list);
    return ok;
}

/* Whether every live node lists every counter exactly once, running, on the
 * same node with the same pid, that node being its owner on `ring`. On
 * success g_ref holds the placement; on failure why says what is not yet so
 * (and *missing counts the children some node lists as missing). */
static int settled(load_t *ld, cl_node_t *const *live, size_t nlive, const herd_ring_t *ring,
                   char *why, size_t cap, size_t *missing)
{
    *missing = 0;
    for (size_t l = 0; l < nlive; l++) {
        view_t *v = l == 0 ? g_ref : g_obs;
        if (!read_children(ld, live[l], v, why, cap)) return 0;
        for (size_t i = 0; i < ld->count; i++)
            if (v[i].seen && strcmp(v[i].state, "missing") == 0) (*missing)++;
        for (size_t i = 0; i < ld->count; i++) {
            const char *name = ld->ctr[i].name;
            if (!v[i].seen)
                return snprintf(why, cap, "%s does not list %s", live[l]->name, name), 0;
            if (strcmp(v[i].state, "running") != 0)
                return snprintf(why, cap, "%s lists %s as %s (node '%s')", live[l]->name,
                                name, v[i].state, v[i].node),
                       0;
            const char *want = owner_of(ring, name);
            if (strcmp(v[i].node, want) != 0)
                return snprintf(why, cap, "%s lists %s on %s, its owner is %s",
                                live[l]->name, name, v[i].node, want),
                       0;
            if (l > 0 && strcmp(v[i].pid, g_ref[i].pid) != 0)
                return snprintf(why, cap, "%s lists %s as %s, %s as %s", live[0]->name,
                                name, g_ref[i].pid, live[l]->name, v[i].pid),
                       0;
        }
    }
    return 1;
}

typedef struct handoff_count {
    long long offered, committed, committed_to, aborted, rejected, other;
} handoff_count_t;

static handoff_count_t handoffs_of(const cl_node_t *n, const char *target)
{
    char code[32], why[600];
    handoff_count_t h = {0};
    json_t *list = cl_ask_args(n, "handoffs", NULL, code, sizeof(code), why, sizeof(why));
    if (list == NULL || !json_is_array(list))
        fail_msg("%s does not answer handoffs: %s", n->name, why);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *phase = json_string_value(json_object_get(o, "phase"));
        const char *to = json_string_value(json_object_get(o, "target"));
        phase = phase ? phase : "";
        if (strcmp(phase, "offered") == 0)
            h.offered++;
        else if (strcmp(phase, "committed") == 0) {
            h.committed++;
            h.committed_to += target == NULL || (to && strcmp(to, target) == 0);
        } else if (strcmp(phase, "aborted") == 0)
            h.aborted++;
        else if (strcmp(phase, "rejected") == 0)
            h.rejected++;
        else
            h.other++;
    }
    json_decref(list);
    return h;
}

/* Keep the load going and look every LOAD_SLICE_MS until everything settled
 * on `ring`; when `movers` is given, also until each of them shows a
 * committed handoff to `target` and none in flight. Returns the elapsed ms;
 * fails the test at SETTLE_MS. */
static long wait_settled(load_t *ld, cl_node_t *const *live, size_t nlive,
                         const herd_ring_t *ring, cl_node_t *const *movers, size_t nmovers,
                         const char *target, const char *what)
{
    uint64_t t0 = cl_now_ms();
    char why[800] = "";
    size_t missing = 0, max_missing = 0;
    long looks = 0;
    for (;;) {
        load_for(ld, LOAD_SLICE_MS);
        looks++;
        int ok = settled(ld, live, nlive, ring, why, sizeof(why), &missing);
        if (missing > max_missing) max_missing = missing;
        for (size_t m = 0; ok && m < nmovers; m++) {
            handoff_count_t h = handoffs_of(movers[m], target);
            if (h.offered || h.committed_to == 0) {
                ok = 0;
                snprintf(why, sizeof(why),
                         "%s's handoffs: %lld in flight, %lld committed to %s",
                         movers[m]->name, h.offered, h.committed_to, target);
            }
        }
        if (ok) break;
        if (cl_now_ms() - t0 > SETTLE_MS)
            fail_msg("%s: not settled after %d ms: %s", what, SETTLE_MS, why);
    }
    long ms = (long)(cl_now_ms() - t0);
    print_message("children: %s: settled after %ld ms (%ld looks; at most %zu children "
                  "listed missing by one node)\n",
                  what, ms, looks, max_missing);
    return ms;
}

/* Record the settled placement (g_ref) in the counters; returns how many
 * changed pid since the last record. */
static size_t record_placement(load_t *ld, size_t *moved_as_planned, const herd_ring_t *before,
                               const herd_ring_t *after, size_t *unexpected)
{
    size_t changed = 0;
    *moved_as_planned = *unexpected = 0;
    for (size_t i = 0; i < ld->count; i++) {
        counter_t *ct = &ld->ctr[i];
        int moved = strcmp(ct->pid, g_ref[i].pid) != 0;
        changed += moved;
        if (before && after) {
            int planned =
                strcmp(owner_of(before, ct->name), owner_of(after, ct->name)) != 0;
            if (planned && moved)
                (*moved_as_planned)++;
            else if (planned != moved && (*unexpected)++ < 5)
                print_message("children: %s %s (%s -> %s) though its owner %s\n",
                              ct->name, moved ? "was re-placed" : "did not move", ct->pid,
                              g_ref[i].pid, planned ? "changed" : "did not change");
        }
        snprintf(ct->node, sizeof(ct->node), "%s", g_ref[i].node);
        snprintf(ct->pid, sizeof(ct->pid), "%s", g_ref[i].pid);
    }
    return changed;
}

/* ---- checks --------------------------------------------------------------------- */

/* `call get` of counter i through `via`; fails the test when it fails. */
static long long get_value(load_t *ld, size_t i, const cl_node_t *via)
{
    char code[32], why[600];
    json_t *r = cl_ask_args(
        via, "call", json_pack("{s:s, s:s}", "name", ld->ctr[i].name, "request", "get"),
        code, sizeof(code), why, sizeof(why));
    if (r == NULL)
        fail_msg("call get %s through %s failed: %s", ld->ctr[i].name, via->name, why);
    json_t *v = json_object_get(r, "value");
    if (!json_is_integer(v)) fail_msg("call get %s: no integer value", ld->ctr[i].name);
    long long out = (long long)json_integer_value(v);
    json_decref(r);
    return out;
}

/* What each live node says about itself and about one counter, for a failure
 * report: processes, registry totals, and where it sees the counter. */
static void diagnose(const load_t *ld, const char *name)
{
    for (size_t k = 0; k < ld->nvia; k++) {
        const cl_node_t *n = ld->via[k];
        json_t *st = cl_ask(n, "stats", NULL, 0);
        json_t *cr = cl_ask(n, "crdt", NULL, 0);
        json_t *wh =
            cl_ask_args(n, "whereis", json_pack("{s:s}", "name", name), NULL, 0, NULL, 0);
        json_object_del(cr, "peers");
        char *a =
            st ? json_dumps(json_object_get(st, "processes"), JSON_ENCODE_ANY) : NULL;
        char *b = cr ? json_dumps(cr, JSON_COMPACT) : NULL;
        char *w = wh ? json_dumps(wh, JSON_COMPACT) : NULL;
        print_message("children:   %s: processes %s; crdt %s; whereis %s: %s\n", n->name,
                      a ? a : "?", b ? b : "?", name, w ? w : "-");
        free(a);
        free(b);
        free(w);
        json_decref(st);
        json_decref(cr);
        json_decref(wh);
    }
}

/* Every counter's value equals its acknowledged increments (plus at most
 * the calls to it whose outcome is unknown), those that lived on a killed
 * node included: they restarted from a replica's copy, and a reply leaves
 * only once the state it reflects is replicated. Prints a summary; fails
 * the test with the first few differences. */
static void check_values(load_t *ld, const char *what, const char *killed)
{
    uint64_t t0 = cl_now_ms();
    size_t bad = 0, restarted = 0, restarted_kept = 0;
    long long unknown_calls = 0, unknown_applied = 0;
    long long total = 0;
    char first[5][800], first_name[24] = "";
    for (size_t i = 0; i < ld->count; i++) {
        counter_t *ct = &ld->ctr[i];
        long long v = get_value(ld, i, ld->via[i % ld->nvia]);
        total += v;
        /* exact, but for calls whose outcome is unknown (timed out,
         * EUNCERTAIN, no answer): those may or may not have been applied,
         * and are counted apart */
        int ok = v >= ct->acked && v <= ct->acked + ct->unknown;
        unknown_calls += ct->unknown;
        unknown_applied += ok ? v - ct->acked : 0;
        if (killed && ct->on_victim) {
            restarted++;
            restarted_kept += ok;
        }
        if (!ok && bad == 0) snprintf(first_name, sizeof(first_name), "%s", ct->name);
        if (!ok && bad < 5)
            snprintf(first[bad], sizeof(first[0]),
                     "%s on %s (%s): value %lld, acknowledged %lld (%lld since the last "
                     "step), %lld "
                     "failed, %lld with unknown outcome%s%s",
                     ct->name, g_ref[i].node, g_ref[i].pid, v, ct->acked, ct->since,
                     ct->failed, ct->unknown, ct->first_err[0] ? "; first failure: " : "",
                     ct->first_err);
        bad += !ok;
    }
    print_message("children: %s: checked %zu counters in %ld ms, sum %lld; %zu differ",
                  what, ld->count, (long)(cl_now_ms() - t0), total, bad);
    if (unknown_calls)
        print_message(
            "; of %lld calls with an unknown outcome %lld were applied",
            unknown_calls, unknown_applied);
    if (killed)
        print_message("; %zu lived on %s: %zu restarted with every acknowledged increment",
                      restarted, killed, restarted_kept);
    print_message("\n");
    for (size_t k = 0; k < bad && k < 5; k++)
        print_message("children:   %s\n", first[k]);
    if (bad) {
        diagnose(ld, first_name);
        fail_msg("%s: %zu of %zu counters do not hold their acknowledged increments",
                 what, bad, ld->count);
    }
}

/* After a check: every live node still lists every counter once, running,
 * with the pid recorded when it settled (nothing moved or restarted since). */
static void check_stable(load_t *ld, const char *what)
{
    size_t changed = 0;
    char first[600] = "";
    for (size_t l = 0; l < ld->nvia; l++) {
        char why[800];
        if (!read_children(ld, ld->via[l], g_obs, why, sizeof(why)))
            fail_msg("%s: %s", what, why);
        for (size_t i = 0; i < ld->count; i++) {
            const counter_t *ct = &ld->ctr[i];
            if (g_obs[i].seen == 1 && strcmp(g_obs[i].state, "running") == 0 &&
                strcmp(g_obs[i].pid, ct->pid) == 0)
                continue;
            if (changed++ == 0)
                snprintf(first, sizeof(first),
                         "%s lists %s %d times, as %s %s (settled: %s)", ld->via[l]->name,
                         ct->name, g_obs[i].seen, g_obs[i].state, g_obs[i].pid, ct->pid);
        }
    }
    if (changed)
        fail_msg("%s: %zu listings changed after everything had settled; first: %s", what,
                 changed, first);
}

/* ---- the test ------------------------------------------------------------------- */

/* Start every counter at its owner on `ring`; returns the elapsed ms. */
static long start_counters(load_t *ld, cl_node_t *const *nodes, size_t n,
                           const herd_ring_t *ring)
{
    uint64_t t0 = cl_now_ms();
    size_t already = 0;
    for (size_t i = 0; i < ld->count; i++) {
        counter_t *ct = &ld->ctr[i];
        const char *owner = owner_of(ring, ct->name);
        const cl_node_t *at = NULL;
        for (size_t k = 0; k < n && at == NULL; k++)
            if (strcmp(nodes[k]->name, owner) == 0) at = nodes[k];
        assert_non_null(at);
        char code[32], why[600];
        json_t *r = cl_ask_args(
            at, "start", json_pack("{s:s, s:s}", "service", "counter", "name", ct->name),
            code, sizeof(code), why, sizeof(why));
        if (r == NULL) fail_msg("start counter %s at %s: %s", ct->name, at->name, why);
        const char *node = json_string_value(json_object_get(r, "node"));
        const char *pid = json_string_value(json_object_get(r, "pid"));
        if (node == NULL || pid == NULL || strcmp(node, owner) != 0)
            fail_msg("start %s at its owner %s: it runs on '%s'", ct->name, owner,
                     node ? node : "?");
        already += json_is_true(json_object_get(r, "already_started"));
        snprintf(ct->node, sizeof(ct->node), "%s", node);
        snprintf(ct->pid, sizeof(ct->pid), "%s", pid);
        json_decref(r);
    }
    assert_int_equal(already, 0);
    return (long)(cl_now_ms() - t0);
}

static void count_per_node(const load_t *ld, cl_node_t *const *nodes, size_t n, char *out,
                           size_t cap)
{
    out[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        size_t m = 0;
        for (size_t i = 0; i < ld->count; i++)
            m += strcmp(ld->ctr[i].node, nodes[k]->name) == 0;
        snprintf(out + strlen(out), cap - strlen(out), "%s%s=%zu", k ? " " : "",
                 nodes[k]->name, m);
    }
}

/* SIGTERM one node and wait until it exits 0 (it drains first), loading
 * meanwhile. Returns the elapsed ms. */
static long sigterm_and_wait(load_t *ld, cl_node_t *n)
{
    uint64_t t0 = cl_now_ms();
    cl_signal(n, SIGTERM);
    while (cl_alive(n)) {
        if (cl_now_ms() - t0 > 40000)
            fail_msg("herdd %s still runs 40 s after SIGTERM", n->name);
        load_for(ld, 50);
    }
    if (!WIFEXITED(n->status) || WEXITSTATUS(n->status) != 0) {
        cl_dump_log(n, 6000);
        fail_msg("herdd %s: SIGTERM, then %s %d, want exit 0", n->name,
                 WIFEXITED(n->status) ? "exit" : "signal",
                 WIFEXITED(n->status) ? WEXITSTATUS(n->status) : WTERMSIG(n->status));
    }
    return (long)(cl_now_ms() - t0);
}

static load_t g_load;

static void test_cluster_children_join_drain_kill_under_load(void **state)
{
    cluster_t *c = *state;
    uint64_t t_all = cl_now_ms();
    memset(&g_load, 0, sizeof(g_load));
    g_load.c = c;
    g_load.count = counter_count();
    g_load.ctr = calloc(g_load.count, sizeof(*g_load.ctr));
    g_ref = calloc(g_load.count, sizeof(*g_ref));
    g_obs = calloc(g_load.count, sizeof(*g_obs));
    assert_true(g_load.ctr && g_ref && g_obs);
    for (size_t i = 0; i < g_load.count; i++)
        snprintf(g_load.ctr[i].name, sizeof(g_load.ctr[i].name), "c%04u",
                 (unsigned)(i % 10000u));
    char per[200];

    /* Three nodes, all up. */
    uint64_t t0 = cl_now_ms();
    cl_node_t *n[4];
    n[0] = cl_start(c, "n1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "n2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "n3", n[0], NULL, TIMING);
    long ms = cl_wait_all_up(n, 3, JOIN_MS);
    if (ms < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    print_message("children: three nodes up in %ld ms (all up %ld ms after the first "
                  "saw the others)\n",
                  (long)(cl_now_ms() - t0), ms);

    /* The counters, each started at its owner. */
    herd_ring_t *ring3 = ring_of(n, 3);
    ms = start_counters(&g_load, n, 3, ring3);
    count_per_node(&g_load, n, 3, per, sizeof(per));
    print_message("children: started %zu counters in %ld ms (%.2f ms each): %s\n",
                  g_load.count, ms, (double)ms / (double)g_load.count, per);
    g_load.check_replies = 1;
    set_via(&g_load, n, 3);
    set_phase(&g_load, PH_WARMUP);
    t0 = cl_now_ms();
    wait_settled(&g_load, n, 3, ring3, NULL, 0, NULL, "start");
    size_t planned, unexpected;
    size_t changed = record_placement(&g_load, &planned, NULL, NULL, &unexpected);
    if (changed)
        fail_msg("%zu counters changed pid between their start and the first settle",
                 changed);
    load_for(&g_load, 2000);
    g_load.ph[PH_WARMUP].ms = (long long)(cl_now_ms() - t0);
    print_phase(&g_load, PH_WARMUP);
    if (g_load.ph[PH_WARMUP].failed || g_load.ph[PH_WARMUP].unknown)
        fail_msg("calls failed on a steady cluster");
    check_values(&g_load, "steady", NULL);
    check_stable(&g_load, "steady");
    check_answers(&g_load, PH_WARMUP);

    /* 1. A 4th node joins. */
    set_phase(&g_load, PH_JOIN);
    t0 = cl_now_ms();
    n[3] = cl_start(c, "n4", n[0], NULL, TIMING);
    long ready_ms = (long)(cl_now_ms() - t0);
    herd_ring_t *ring4 = ring_of(n, 4);
    set_via(&g_load, n, 4);
    long settle_ms = wait_settled(&g_load, n, 4, ring4, n, 3, "n4", "join of n4");
    changed = record_placement(&g_load, &planned, ring3, ring4, &unexpected);
    count_per_node(&g_load, n, 4, per, sizeof(per));
    g_load.ph[PH_JOIN].ms = (long long)(cl_now_ms() - t0);
    print_message(
        "children: join of n4: ready in %ld ms, settled %ld ms later; %zu moved "
        "(%zu as the ring planned, %zu unexpected): %s\n",
        ready_ms, settle_ms, changed, planned, unexpected, per);
    for (int k = 0; k < 3; k++) {
        handoff_count_t h = handoffs_of(n[k], "n4");
        print_message(
            "children:   %s handoffs (recent): %lld committed (%lld to n4), %lld "
            "aborted, %lld rejected, %lld in flight\n",
            n[k]->name, h.committed, h.committed_to, h.aborted, h.rejected, h.offered);
    }
    print_phase(&g_load, PH_JOIN);
    check_values(&g_load, "after the join", NULL);
    check_stable(&g_load, "after the join");
    check_answers(&g_load, PH_JOIN);
    if (unexpected)
        fail_msg("the join re-placed or kept %zu counters against the ring's plan",
                 unexpected);
    load_for(&g_load, 1000);

    /* 2. Drain n2. */
    set_phase(&g_load, PH_DRAIN);
    t0 = cl_now_ms();
    {
        char code[32], why[600];
        json_t *r = cl_ask_args(n[0], "drain", json_pack("{s:s}", "node", "n2"), code,
                                sizeof(code), why, sizeof(why));
        if (r == NULL) fail_msg("drain n2 through n1: %s", why);
        assert_true(json_is_true(json_object_get(r, "draining")));
        json_decref(r);
    }
    cl_node_t *active3[3] = {n[0], n[2], n[3]};
    herd_ring_t *ring_d = ring_of(active3, 3);
    settle_ms = wait_settled(&g_load, n, 4, ring_d, &n[1], 1, NULL, "drain of n2");
    /* the drained node commits its moves to the others: any target */
    changed = record_placement(&g_load, &planned, ring4, ring_d, &unexpected);
    count_per_node(&g_load, n, 4, per, sizeof(per));
    g_load.ph[PH_DRAIN].ms = (long long)(cl_now_ms() - t0);
    {
        handoff_count_t h = handoffs_of(n[1], NULL);
        print_message(
            "children: drain of n2: settled after %ld ms; %zu moved (%zu as the "
            "ring planned, %zu unexpected): %s; n2 handoffs (recent): %lld "
            "committed, %lld aborted, %lld rejected, %lld in flight\n",
            settle_ms, changed, planned, unexpected, per, h.committed, h.aborted,
            h.rejected, h.offered);
    }
    print_phase(&g_load, PH_DRAIN);
    check_values(&g_load, "after the drain", NULL);
    check_stable(&g_load, "after the drain");
    check_answers(&g_load, PH_DRAIN);
    if (unexpected)
        fail_msg("the drain re-placed or kept %zu counters against the ring's plan",
                 unexpected);
    load_for(&g_load, 1000);

    /* 3. kill -9 n3: its counters restart from their replicas, so an incr
     * still answers the acknowledged increments plus one. */
    set_phase(&g_load, PH_KILL);
    cl_node_t *victim = n[2];
    size_t on_victim = 0;
    for (size_t i = 0; i < g_load.count; i++) {
        g_load.ctr[i].on_victim = strcmp(g_load.ctr[i].node, victim->name) == 0;
        on_victim += (size_t)g_load.ctr[i].on_victim;
    }
    t0 = cl_now_ms();
    cl_kill9(victim);
    cl_node_t *live[3] = {n[0], n[1], n[3]};
    set_via(&g_load, live, 3);
    cl_node_t *active2[2] = {n[0], n[3]};
    herd_ring_t *ring_k = ring_of(active2, 2);
    settle_ms = wait_settled(&g_load, live, 3, ring_k, NULL, 0, NULL, "kill -9 of n3");
    g_load.ph[PH_KILL].ms = (long long)(cl_now_ms() - t0);
    print_message(
        "children: kill -9 of n3 (%zu counters): all running again after %ld ms\n",
        on_victim, settle_ms);
    print_phase(&g_load, PH_KILL);
    /* The rest keep their pids: only n3's counters were started again. */
    changed = record_placement(&g_load, &planned, ring_d, ring_k, &unexpected);
    print_message("children: kill -9 of n3: %zu counters have a new pid (%zu as the ring "
                  "planned, %zu unexpected)\n",
                  changed, planned, unexpected);
    check_values(&g_load, "after the kill", victim->name);
    check_stable(&g_load, "after the kill");
    check_answers(&g_load, PH_KILL);
    if (unexpected)
        fail_msg("the kill re-placed or kept %zu counters against the ring's plan",
                 unexpected);

    /* Stop: the drained n2 first, then n1 (its counters move to n4 with their
     * state), then the rest (n4) through cl_stop_all. */
    set_phase(&g_load, PH_SIGTERM);
    g_load.check_replies = 0;
    for (size_t i = 0; i < g_load.count; i++) /* exact from here on */
        g_load.ctr[i].acked = get_value(&g_load, i, n[0]), g_load.ctr[i].unknown = 0;
    t0 = cl_now_ms();
    /* no calls through a node that is going away: they would wait for an
     * answer that never comes */
    cl_node_t *two[2] = {n[0], n[3]};
    set_via(&g_load, two, 2);
    long stop2 = sigterm_and_wait(&g_load, n[1]);
    cl_node_t *last[1] = {n[3]};
    set_via(&g_load, last, 1);
    long stop1 = sigterm_and_wait(&g_load, n[0]);
    herd_ring_t *ring_1 = ring_of(last, 1);
    settle_ms = wait_settled(&g_load, last, 1, ring_1, NULL, 0, NULL, "SIGTERM of n1");
    g_load.ph[PH_SIGTERM].ms = (long long)(cl_now_ms() - t0);
    changed = record_placement(&g_load, &planned, ring_k, ring_1, &unexpected);
    print_message("children: SIGTERM: n2 exited 0 after %ld ms, n1 after %ld ms (drained "
                  "to n4), settled %ld ms later; %zu moved (%zu as the ring planned, %zu "
                  "unexpected)\n",
                  stop2, stop1, settle_ms, changed, planned, unexpected);
    print_phase(&g_load, PH_SIGTERM);
    check_values(&g_load, "after SIGTERM of n2 and n1", NULL);
    check_stable(&g_load, "after SIGTERM of n2 and n1");
    cl_stop_all(c);

    long long ok = 0, failed = 0, unknown = 0;
    for (int p = 0; p < PH_COUNT; p++)
        ok += g_load.ph[p].ok, failed += g_load.ph[p].failed,
            unknown += g_load.ph[p].unknown;
    print_message(
        "children: total %.1f s; steps: warm-up %lld ms, join %lld ms, drain %lld "
        "ms, kill %lld ms, sigterm %lld ms; %lld incr acknowledged, %lld failed, "
        "%lld unknown\n",
        (double)(cl_now_ms() - t_all) / 1000.0, g_load.ph[PH_WARMUP].ms,
        g_load.ph[PH_JOIN].ms, g_load.ph[PH_DRAIN].ms, g_load.ph[PH_KILL].ms,
        g_load.ph[PH_SIGTERM].ms, ok, failed, unknown);
    cl_pass(c);
}

/* ---- a stop the cluster cannot confirm ------------------------------------------ */

static void ringctl_stop(cluster_t *c, const cl_node_t *via, const char *name, cl_run_t *r)
{
    const char *argv[] = {RINGCTL_PATH, "--json", "--node", via->control, "stop", name, NULL};
    cl_run(c, argv, 20000, r);
}

static int spec_on(const cl_node_t *n, const char *name)
{
    char why[300];
    json_t *list = cl_ask(n, "children", why, sizeof(why));
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
        found |= strcmp(json_string_value(json_object_get(o, "name")), name) == 0;
    json_decref(list);
    return found;
}

/* n1 cut off from n2 and n3: `ringctl stop` through n1 cannot know whether
 * the removal will survive (n1 could crash before the others hear of it), so
 * it exits 3 with EUNCERTAIN; after the heal the removal reaches everyone.
 * With everyone connected, a stop exits 0. */
static void test_cluster_children_stop_in_netsplit_is_uncertain(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    n[0] = cl_start(c, "n1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "n2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "n3", n[0], NULL, TIMING);
    if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    const char *names[2] = {"kept-apart", "stopped-whole"};
    char code[32], why[600];
    for (int i = 0; i < 2; i++) {
        json_t *r = cl_ask_args(n[0], "start",
                                json_pack("{s:s, s:s}", "service", "counter", "name", names[i]),
                                code, sizeof(code), why, sizeof(why));
        if (r == NULL)
            fail_msg("start %s: %s %s", names[i], code, why);
        json_decref(r);
    }
    for (int i = 0; i < 3; i++)
        while (!spec_on(n[i], names[0]) || !spec_on(n[i], names[1]))
            cl_sleep_ms(50);

    cl_split(n[0], n[1], 1);
    cl_split(n[0], n[2], 1);
    if (cl_wait_state(n[0], "n2", "down", 10000) < 0 || cl_wait_state(n[0], "n3", "down", 10000) < 0)
        fail_msg("n1 did not see n2 and n3 down");
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    ringctl_stop(c, n[0], names[0], r);
    if (r->status != 3 || strstr(r->out, "EUNCERTAIN") == NULL)
        fail_msg("stop in a netsplit: exit %d, want 3 with EUNCERTAIN; out %s err %s", r->status,
                 r->out, r->err);
    assert_true(spec_on(n[1], names[0])); /* n2 has not heard of it */

    cl_split(n[0], n[1], 0);
    cl_split(n[0], n[2], 0);
    if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
        fail_msg("the nodes did not see each other up again");
    uint64_t deadline = cl_now_ms() + 15000;
    while (spec_on(n[1], names[0]) || spec_on(n[2], names[0])) {
        if (cl_now_ms() > deadline)
            fail_msg("the removal of %s never reached n2 and n3", names[0]);
        cl_sleep_ms(50);
    }
    ringctl_stop(c, n[1], names[1], r);
    if (r->status != 0 || strstr(r->out, "\"stopped\": true") == NULL)
        fail_msg("stop with everyone up: exit %d, want 0; out %s err %s", r->status, r->out,
                 r->err);
    for (int i = 0; i < 3; i++)
        assert_false(spec_on(n[i], names[1])); /* everyone held it before the answer */
    free(r);
    cl_pass(c);
}

/* The load's bookkeeping for `count` counters named c0000.. */
static void load_init(cluster_t *c, size_t count)
{
    memset(&g_load, 0, sizeof(g_load));
    g_load.c = c;
    g_load.count = count;
    g_load.ctr = calloc(g_load.count, sizeof(*g_load.ctr));
    g_ref = calloc(g_load.count, sizeof(*g_ref));
    g_obs = calloc(g_load.count, sizeof(*g_obs));
    assert_true(g_load.ctr && g_ref && g_obs);
    for (size_t i = 0; i < g_load.count; i++)
        snprintf(g_load.ctr[i].name, sizeof(g_load.ctr[i].name), "c%04u",
                 (unsigned)(i % 10000u));
}

/* Whether `obs` lists every counter running on itself. */
static int runs_all(load_t *ld, const cl_node_t *obs)
{
    char why[800];
    if (!read_children(ld, obs, g_obs, why, sizeof(why)))
        return 0;
    for (size_t i = 0; i < ld->count; i++)
        if (!g_obs[i].seen || strcmp(g_obs[i].state, "running") != 0 ||
            strcmp(g_obs[i].node, obs->name) != 0)
            return 0;
    return 1;
}

/* A false "down" between two live nodes while the third dies: n3 gets
 * SIGKILL and n2 SIGSTOP at once, for FALSE_DOWN_PAUSE_MS (past the down
 * timeout), so n1 runs every counter; n2, let go on, finds n1 (and n3)
 * silent and may run them all too. The conflict rule must leave one copy
 * of each, on its owner on the ring of n1 and n2, with every acknowledged
 * increment. */
#define FALSE_DOWN_PAUSE_MS 2500
static void test_cluster_children_false_down_with_kill(void **state)
{
    cluster_t *c = *state;
    load_init(c, getenv("HERD_CHILDREN_COUNT") ? counter_count() : 300);
    cl_node_t *n[3];
    n[0] = cl_start(c, "n1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "n2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "n3", n[0], NULL, TIMING);
    if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    herd_ring_t *ring3 = ring_of(n, 3);
    start_counters(&g_load, n, 3, ring3);
    g_load.check_replies = 1;
    set_via(&g_load, n, 3);
    set_phase(&g_load, PH_WARMUP);
    wait_settled(&g_load, n, 3, ring3, NULL, 0, NULL, "start");
    size_t planned, unexpected;
    record_placement(&g_load, &planned, NULL, NULL, &unexpected);
    load_for(&g_load, 1000);
    check_values(&g_load, "steady", NULL);

    set_phase(&g_load, PH_KILL);
    for (size_t i = 0; i < g_load.count; i++)
        g_load.ctr[i].on_victim = strcmp(g_load.ctr[i].node, n[2]->name) == 0;
    g_load.check_replies = 0; /* the two sides count apart until the heal */
    cl_signal(n[1], SIGSTOP);
    cl_kill9(n[2]);
    set_via(&g_load, n, 1);
    load_for(&g_load, FALSE_DOWN_PAUSE_MS);
    if (cl_wait_state(n[0], n[1]->name, "down", 5000) < 0)
        fail_msg("n1 never declared the stopped n2 down");
    uint64_t t0 = cl_now_ms();
    while (!runs_all(&g_load, n[0])) { /* n1 took every counter: n2's too */
        if (cl_now_ms() - t0 > SETTLE_MS)
            fail_msg("n1 did not run every counter within %d ms of n2's false down", SETTLE_MS);
        load_for(&g_load, LOAD_SLICE_MS);
    }
    cl_signal(n[1], SIGCONT);
    set_via(&g_load, n, 2);
    herd_ring_t *ring2 = ring_of(n, 2);
    long ms = wait_settled(&g_load, n, 2, ring2, NULL, 0, NULL,
                           "n2 paused past the down timeout while n3 died");
    record_placement(&g_load, &planned, NULL, NULL, &unexpected);
    char per[200];
    count_per_node(&g_load, n, 2, per, sizeof(per));
    print_message("children: false down: settled %ld ms after n2 ran again: %s\n", ms, per);
    check_values(&g_load, "after the false down", n[2]->name);
    load_for(&g_load, 2000);
    check_stable(&g_load, "2 s after the false down settled");
    cl_stop_all(c); /* each exits 0, no sanitizer report */
    cl_pass(c);
}

static int children_teardown(void **state)
{
    for (size_t i = 0; i < g_ring_n; i++)
        herd_ring_free(g_rings[i]);
    g_ring_n = 0;
    free(g_load.ctr);
    free(g_ref);
    free(g_obs);
    g_load.ctr = NULL;
    g_ref = g_obs = NULL;
    return cl_teardown(state);
}

int main(void)
{
    unsetenv("HERD_NODE");
    timing_init();
    signal(SIGPIPE, SIG_IGN);
    if (getenv("HERD_CHILDREN_TEST")) /* one test by name pattern */
        cmocka_set_test_filter(getenv("HERD_CHILDREN_TEST"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_children_join_drain_kill_under_load,
                                        cl_setup, children_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_children_stop_in_netsplit_is_uncertain,
                                        cl_setup, children_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_children_false_down_with_kill, cl_setup,
                                        children_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
