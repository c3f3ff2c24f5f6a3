/*
 * test_sim_calls.c - calls between nodes whose callee's node is cut off
 * (runtime/remote_lost.c; PROTOCOL.md, "Calls and lost members"), in
 * full-stack deterministic simulations (regsim.h): real nodes over the
 * in-memory transport on a virtual clock, one seed replays a run exactly.
 *
 * A "tally" process on node3 applies every call it is handed (it counts it
 * by the call's id) and answers; a "caller" process on node1 makes one call
 * to it per step (5 ms of virtual time), each with an id of its own, and
 * books how each ended: answered, HERD_ENOTCONN (at once, or when node3 was
 * declared down), HERD_EUNCERTAIN, HERD_ETIMEDOUT or another error.
 *
 * Cases (seeds.h: HERD_SIM_SEEDS, HERD_SIM_SEED, ...):
 * - cut_off: node3 is cut off both ways (frames dropped at send and at
 *   delivery) while the calls go on; node1 declares it down and calls made
 *   after that are refused at once; then the heal, calls answered again,
 *   quiescence (1% loss, 1% duplicates throughout). Checks: no call was
 *   applied twice; every answered call was applied; no call that ended
 *   HERD_ENOTCONN was ever applied; no call made between the cut and the
 *   heal was applied (the requests queued for node3 were withdrawn when it
 *   was declared down: nothing is resent to it after the heal); and both
 *   verdicts of node1's down declaration were reached: a call whose request
 *   was still unsent ended "not applied" (calls_not_applied), and those
 *   whose request had left ended "outcome unknown" (calls_uncertain).
 * - late_copy: node1's frames to node3 are held back for 150 ms (one way,
 *   shorter than the down verdict) while one call with a 40 ms timeout
 *   waits; it ends HERD_ETIMEDOUT, and when the block lifts the channel
 *   sends the request again, after its caller's deadline: node3 drops it
 *   unapplied (calls_expired). A call made after that is answered.
 *
 * Timings: ticks of 5 ms, heartbeat 50 ms, suspect 150 ms, down 300 ms.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regsim.h"

#define MAX_CALLS 4096
#define CALLER 0 /* node1 */
#define CALLEE 2 /* node3 */
#define FORGET_MS 3000

enum { OUT_PENDING, OUT_OK, OUT_NOTCONN, OUT_UNCERTAIN, OUT_TIMEDOUT, OUT_OTHER };

/* The books of one seed. */
typedef struct world {
    herd_pid_t tally, caller;
    uint32_t next_id;            /* ids given so far */
    uint32_t timeout_ms;         /* of the calls made from now on */
    uint8_t outcome[MAX_CALLS];  /* OUT_* by id */
    uint32_t applied[MAX_CALLS]; /* how many times the tally applied each id */
    uint64_t ref[MAX_CALLS];     /* the call's ref while pending */
    uint32_t cut_from, cut_to;   /* ids made while node3 was cut off */
} world_t;

static world_t g_w;

/* ---- the tally: applies every call it gets ----------------------------------- */

static int tally_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    uint32_t id;
    if (msg->len != sizeof(id))
        return herd_reply(herd_proc_node(self), from, HERD_EINVAL, NULL, 0);
    memcpy(&id, msg->data, sizeof(id));
    if (id < MAX_CALLS)
        g_w.applied[id]++;
    return herd_reply(herd_proc_node(self), from, 0, &id, sizeof(id));
}

static const herd_behaviour_t tally = {.name = "tally", .handle_call = tally_call};

/* ---- the caller: one call per nudge, each outcome booked --------------------- */

static uint8_t outcome_of(int status)
{
    switch (status) {
    case 0:
        return OUT_OK;
    case HERD_ENOTCONN:
        return OUT_NOTCONN;
    case HERD_EUNCERTAIN:
        return OUT_UNCERTAIN;
    case HERD_ETIMEDOUT:
        return OUT_TIMEDOUT;
    default:
        return OUT_OTHER;
    }
}

static void caller_call(herd_proc_t *self)
{
    uint32_t id = g_w.next_id;
    if (id >= MAX_CALLS)
        return;
    g_w.next_id++;
    uint64_t ref = 0;
    int rc = herd_call(self, g_w.tally, &id, sizeof(id), g_w.timeout_ms, &ref);
    if (rc)
        g_w.outcome[id] = outcome_of(rc);
    else
        g_w.ref[id] = ref;
}

static void caller_reply(const herd_msg_t *msg)
{
    for (uint32_t id = 0; id < g_w.next_id; id++) {
        if (g_w.outcome[id] == OUT_PENDING && g_w.ref[id] == msg->ref) {
            g_w.outcome[id] = outcome_of(msg->status);
            return;
        }
    }
}

static int caller_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind == HERD_MSG_REPLY)
        caller_reply(msg);
    else if (msg->kind == HERD_MSG_INFO)
        caller_call(self);
    return 0;
}

static const herd_behaviour_t caller = {.name = "caller", .handle_info = caller_info};

/* ---- driving ------------------------------------------------------------------ */

/* Steps for `ms`, the caller making one call per step (`calling`). */
static int run_calls(rs_run_t *r, uint64_t ms, int calling)
{
    uint64_t end = regsim_now(r->rs) + ms;
    while (regsim_now(r->rs) < end) {
        if (calling)
            RS_CHECK_OK(r, herd_node_send(regsim_node(r->rs, CALLER), g_w.caller, "", 0));
        RS_CHECK_OK(r, regsim_step(r->rs));
    }
    return 1;
}

static int pending_calls(void)
{
    int k = 0;
    for (uint32_t id = 0; id < g_w.next_id; id++)
        k += g_w.outcome[id] == OUT_PENDING;
    return k;
}

/* Three nodes, the tally on node3 and the caller on node1. */
static int setup(rs_run_t *r, uint32_t drop, uint32_t dup)
{
    memset(&g_w, 0, sizeof(g_w));
    if (!regsim_make_cluster(r, 3, FORGET_MS, drop, dup))
        return 0;
    herd_spawn_opts_t t = {.behaviour = &tally}, c = {.behaviour = &caller};
    RS_CHECK_OK(r, herd_spawn(regsim_node(r->rs, CALLEE), &t, &g_w.tally));
    RS_CHECK_OK(r, herd_spawn(regsim_node(r->rs, CALLER), &c, &g_w.caller));
    return 1;
}

static herd_member_state_t state_at(regsim_t *rs, int i, int of)
{
    herd_member_info_t m;
    if (herd_cluster_member(regsim_node(rs, i), herd_node_id_of(regsim_name(rs, of)), &m))
        return HERD_MEMBER_ABSENT;
    return m.state;
}

static void cut(regsim_t *rs, int on)
{
    for (int i = 0; i < 3; i++) {
        if (i == CALLEE)
            continue;
        regsim_block(rs, i, CALLEE, on);
        regsim_block(rs, CALLEE, i, on);
    }
}

/* Every call ended, and long enough after for any resend to have come. */
static int quiesce(rs_run_t *r)
{
    uint64_t deadline = regsim_now(r->rs) + 20000;
    while (pending_calls() > 0) {
        RS_CHECK(r, regsim_now(r->rs) < deadline, "%d calls never ended", pending_calls());
        RS_CHECK_OK(r, regsim_step(r->rs));
    }
    RS_CHECK_OK(r, regsim_run_for(r->rs, 2000));
    return 1;
}

/* ---- checks -------------------------------------------------------------------- */

static const char *const out_names[] = {"pending", "ok", "ENOTCONN", "EUNCERTAIN",
                                        "ETIMEDOUT", "other"};

/* At most once; every answered call applied; no "not applied" applied. */
static int check_books(rs_run_t *r)
{
    for (uint32_t id = 0; id < g_w.next_id; id++) {
        uint8_t o = g_w.outcome[id];
        RS_CHECK(r, g_w.applied[id] <= 1, "call %u applied %u times", id, g_w.applied[id]);
        RS_CHECK(r, o != OUT_OK || g_w.applied[id] == 1, "call %u answered, not applied", id);
        RS_CHECK(r, o != OUT_NOTCONN || g_w.applied[id] == 0,
                 "call %u ended ENOTCONN (not applied) and was applied", id);
        RS_CHECK(r, o != OUT_OTHER, "call %u ended with an unexpected error", id);
    }
    return 1;
}

static herd_cluster_stats_t stats_of(regsim_t *rs, int i)
{
    herd_cluster_stats_t st;
    memset(&st, 0, sizeof(st));
    herd_cluster_stats(regsim_node(rs, i), &st);
    return st;
}

/* ---- cases ------------------------------------------------------------------------ */

static int scen_cut_off(rs_run_t *r)
{
    if (!setup(r, 10, 10))
        return 0;
    regsim_t *rs = r->rs;
    g_w.timeout_ms = 5000; /* the down verdict, not the timeout, ends them */
    if (!run_calls(r, 100 + regsim_range(rs, 0, 50), 1))
        return 0;
    cut(rs, 1);
    g_w.cut_from = g_w.next_id;
    uint64_t deadline = regsim_now(rs) + 2000;
    while (state_at(rs, CALLER, CALLEE) != HERD_MEMBER_DOWN) {
        RS_CHECK(r, regsim_now(rs) < deadline, "node3 never declared down at node1");
        if (!run_calls(r, 5, 1))
            return 0;
    }
    if (!run_calls(r, 100 + regsim_range(rs, 0, 100), 1)) /* refused at once */
        return 0;
    g_w.cut_to = g_w.next_id;
    cut(rs, 0);
    RS_CHECK_OK(r, regsim_run_until_members(rs, regsim_now(rs) + 5000));
    if (!run_calls(r, 200, 1) || !quiesce(r) || !check_books(r))
        return 0;
    for (uint32_t id = g_w.cut_from; id < g_w.cut_to; id++)
        RS_CHECK(r, g_w.applied[id] == 0,
                 "call %u, made while node3 was cut off (%s), was applied after the heal", id,
                 out_names[g_w.outcome[id]]);
    herd_cluster_stats_t st = stats_of(rs, CALLER);
    RS_CHECK(r, st.calls_not_applied >= 1 && st.calls_uncertain >= 1,
             "node3 down at node1 ended %llu calls not applied and %llu uncertain: want both",
             (unsigned long long)st.calls_not_applied, (unsigned long long)st.calls_uncertain);
    RS_CHECK(r, st.withdrawn >= st.calls_not_applied,
             "%llu requests withdrawn, fewer than the calls that ended not applied",
             (unsigned long long)st.withdrawn);
    RS_CHECK(r, g_w.outcome[g_w.next_id - 1] == OUT_OK, "the last call was not answered");
    return 1;
}

static int scen_late_copy(rs_run_t *r)
{
    if (!setup(r, 0, 0))
        return 0;
    regsim_t *rs = r->rs;
    g_w.timeout_ms = 40;
    regsim_block(rs, CALLER, CALLEE, 1);
    if (!run_calls(r, 5, 1) || !run_calls(r, 145, 0))
        return 0;
    RS_CHECK(r, g_w.outcome[0] == OUT_TIMEDOUT, "the held call ended %s",
             out_names[g_w.outcome[0]]);
    RS_CHECK(r, state_at(rs, CALLEE, CALLER) != HERD_MEMBER_DOWN, "node1 down at node3");
    regsim_block(rs, CALLER, CALLEE, 0);
    if (!run_calls(r, 1000, 0))
        return 0;
    RS_CHECK(r, g_w.applied[0] == 0, "the request that came after its deadline was applied");
    herd_cluster_stats_t st = stats_of(rs, CALLEE);
    RS_CHECK(r, st.calls_expired == 1, "node3 dropped %llu late calls, want 1",
             (unsigned long long)st.calls_expired);
    g_w.timeout_ms = 2000;
    if (!run_calls(r, 5, 1) || !quiesce(r) || !check_books(r))
        return 0;
    RS_CHECK(r, g_w.outcome[1] == OUT_OK, "the call after the block ended %s",
             out_names[g_w.outcome[1]]);
    return 1;
}

int main(void)
{
    static const rs_case_t cases[] = {
        {"cut_off", scen_cut_off, 200},
        {"late_copy", scen_late_copy, 200},
    };
    return regsim_main("sim_calls", cases, sizeof(cases) / sizeof(cases[0]));
}
