/*
 * test_sim_dsup.c - the distributed supervisor and the handoff in full-stack
 * deterministic simulations (regsim.h): real nodes (node + cluster +
 * registry + distributed supervisor with the counter service, polled on the
 * virtual clock through regsim's hooks) over the in-memory transport, with
 * loss, duplicates, delays, one-way blocks, partitions and crashes; one seed
 * replays a run exactly.
 *
 * Counters are started by name (herd_start_child_async from a random node)
 * and incremented by "client" processes, one per node life, each call by
 * name (herd_call_name from inside a process; one call in flight per
 * counter cluster-wide). Every call's outcome is booked per counter:
 * acknowledged (a reply with status 0), unknown (an error reply, or the
 * client died first: it may or may not have been applied), or not sent (the
 * lookup failed at once, or the call ended HERD_ENOTCONN: the runtime's word
 * that its request was never applied). A counter's value counts the
 * increments applied:
 *   value <= acknowledged + unknown            (nothing applied twice)
 *   value >= acknowledged                      (nothing acknowledged lost)
 * The first is checked at every reply and at the end. The second at the end
 * (once copies that ran side by side have merged), for every counter in
 * runs without crashes, and in runs with crashes for every counter no crash
 * may have hit (no crashed node ran or received a copy, or was registered
 * as running it). A reply below what was acknowledged (a second copy
 * answered for a while) is only counted ("stale reads").
 *
 * What a crash leaves unknowable is counted, not skipped silently: a counter
 * whose copy a crash may have taken (its value is then only bounded above)
 * or whose start or terminate a crash may have taken before it spread
 * (whether it has a spec is then not checked; without one it has no value)
 * counts in the seed's uncertain figure: the sum over the seeds is the
 * summary line's uncertain=K, and HERD_SIM_VERBOSE names them per seed.
 *
 * After quiescence (heal, lift blocks, no loss, drains finished, calls
 * done, then up to 40 s of virtual time) the checks:
 * - members converged; every live node has the same specs and the same
 *   registrations;
 * - every spec's child runs exactly once cluster-wide, on the ring's owner
 *   of its name, RUNNING (not restarting, moving or arriving), alive, not
 *   frozen, and every live node resolves the name to that pid; no child
 *   runs without a spec, no counter name is registered without one; no
 *   handoff in flight;
 * - every node runs no process but its children and its client (no
 *   orphaned provisional copy, no conflict loser left alive);
 * - no spec lost: a counter started (and not terminated) has a spec, a
 *   terminated one has none, unless a crash may have taken that start or
 *   terminate with it before it spread (a crashed node held it while another
 *   running node did not yet; a terminate answered 0 never counts so);
 * - the same 3 s later; then a final "get" on every counter answers, with
 *   the bounds above.
 *
 * Random cases (6 node slots, 3-4 up at first, 12-24 counters, 6 s of
 * events every 150-700 ms, 5% loss, 2% duplicates, 1-15 ms delays):
 * - graceful: joins (new nodes and new incarnations of nodes that left),
 *   drains then leaves, starts, terminates. A node leaves as herdd does on
 *   SIGTERM: as soon as it runs no child (and its client's calls ended),
 *   lingering 200 ms; a drain that has not finished in 20 s fails the run.
 * - graceful_acked: the same, but a drained node leaves only once
 *   everything it sent on its reliable streams was acknowledged.
 * - crashes: graceful_acked plus crashes and restarts.
 * - partitions: graceful_acked plus partitions (some longer than
 *   forget_ms) and heals; no crash, so every final value is exact.
 * - mixed: all of it.
 * - determinism: a mixed run (no checks) twice with one seed: the same
 *   deliveries, frame bytes, registries and call outcomes.
 * Targeted cases (notes/handoff.md's failure table): 3 nodes with 24
 * settled counters, a 4th joins so that counters move to it; one-way blocks
 * steer the protocol's messages; exact values unless said:
 * - target_dies_before_accept: the target's frames are blocked from the
 *   first offer to it, then it crashes: the moves abort, the old copies run
 *   on unfrozen with their state.
 * - target_dies_after_accept: it accepted (a frozen arriving copy), its
 *   accept cannot reach the old node, it crashes: abort, old copy resumes.
 * - target_dies_after_commit: the old node got the accept and committed,
 *   the commit cannot reach the target, the target crashes: the counter
 *   restarts exactly once elsewhere (values only bounded above).
 * - old_dies_after_accept: the old node crashes after the target accepted,
 *   before the accept reached it: the target promotes its copy, with the
 *   state (exact for every counter the target had accepted).
 * - old_dies_after_commit: the old node committed (switch made), the
 *   commit cannot reach the target, the old node crashes: promoted, exact.
 * - accept_after_abort: handoff timeout 300 ms, the target's frames held
 *   back 900 ms: the old node aborts, the late accept is answered with an
 *   abort, the provisional copy goes (no orphan), the retry commits.
 * - late_commit: the commit held back and the old node cut off until the
 *   target promoted its copy, then healed: the late commit is ignored, one
 *   copy, exact values.
 * - duplicate_messages: after committed moves, the old node sends the
 *   commit again, an abort of the committed move and a commit of a made-up
 *   id, and the target an accept again and one of a made-up id: all
 *   ignored, nothing revived or stopped.
 * - target_already_running: {1} | {2,3} each run every counter, increments
 *   on both sides, heal: offers to a node that already runs the name are
 *   rejected, the conflict rule keeps one copy and merges the counts.
 * - join_during_partition: {1} | {2,3}, node4 joins the second side and
 *   takes its share; no copy stops for a conflict inside a side; after the
 *   heal the merged counts are exact.
 * One case per fix of the table's gaps (exact values unless said):
 * - switch_reaches_target_before_commit: the old node's frames reach only
 *   the target from its first offer; it commits, then crashes: every
 *   survivor resolves the committed counters to the target's copy.
 * - promoted_copy_meets_restarted_copy: the old node cut off after the
 *   accept, the target's frames held from the others until one restarts
 *   the counter from its spec: after the release one copy, with the name's
 *   first registration time, holding every acknowledged increment.
 * - merge_follows_moved_holder: {1} | {2,3}; a winner on the second side
 *   moves to node4 while the loser's state (node1) is held on its way: the
 *   state is sent on to node4 (merges_redirected).
 * - abort_keeps_conflict_freeze: a loser moving to a mute node4 at the heal
 *   is judged after the abort, frozen for the conflict while its state is
 *   held on its way, and stays frozen until the merge is confirmed.
 * - old_node_restarts_fast: the old node crashes after the accept and
 *   restarts at once: the target promotes its copy (exact for what it
 *   accepted).
 * - restart_keeps_name: a counter killed three times (back-off): its name
 *   stays registered with its first registration time, no other node
 *   starts it, a call made in the back-off is answered by the new copy.
 * - terminate_in_partition_then_crash: {1} | {2,3}, a terminate via node1
 *   answers HERD_EUNCERTAIN; node1 crashes: the spec stays (uncertain).
 * - terminate_acked_survives_crash: a terminate answered 0, then its node
 *   crashes: the spec stays removed everywhere, the child stopped.
 * Joins and readiness (readiness.c: moves to a new member on its
 * announcement, its join grace ended by its own readiness): 3 nodes with 24
 * settled counters, 3% loss and 1% duplicates, node4 and node5 join 0-150
 * ms apart, and 0-400 ms after the first join:
 * - join_under_crash: a random node (a joiner or an old one) crashes, and
 *   half the time starts again 100-600 ms later (exact where no crash
 *   reached);
 * - join_under_partition: two random sides for 200-1500 ms (exact).
 *   In both, every running node's join grace has ended at the end.
 * A false "down" between two live nodes (false_down_with_crash): 3 nodes
 * with 24 settled counters; node3 crashes while node1 and node2 lose each
 * other past the down timeout (both directions cut, one only, node2's loop
 * paused: regsim_pause, or both flapping: pauses and cuts at random for
 * 1.5-5 s); each runs the counters it sees nowhere else;
 * within 5 s of the heal every counter runs once, on its owner (the
 * acknowledged increments are checked but for the crash's counters).
 *
 * Environment: HERD_SIM_SEEDS (seeds per case), HERD_SIM_FIRST_SEED (the
 * first, default 1), HERD_SIM_SEED=N (replay one), HERD_SIM_SEED_LIST=a,b,c
 * (exactly those; ctest replays seeds that once failed), HERD_SIM_TEST (a cmocka
 * name filter, e.g. 'sim_dsup_mixed'), HERD_SIM_LOG=info|debug,
 * HERD_SIM_LIST, HERD_SIM_PROGRESS (seeds.h); HERD_SIM_VERBOSE=1: figures
 * per seed; HERD_SIM_DSUP_TRACE=1: every event, every change of a node's
 * children, every counter copy's birth, merge and end, on stderr;
 * HERD_SIM_DSUP_WATCH=NAME: every change of NAME's registry entries on
 * every node (writer, pid, registration time).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "dsup_int.h"
#include "dsup_layers.h"
#include "herd_dsup.h"
#include "herd_ring.h"
#include "registry_int.h"
#include "registry_layers.h"
#include "regsim.h"
#include "runtime_layers.h"
#include "wire.h"

#define HB 50
#define SLOTS 6
#define MAX_CTR 64
#define CALL_MS 3000
#define FORGET_MS 4000
#define DRAIN_MS 20000   /* a drain that has not finished by then is stuck */
#define LINGER_MS 200    /* a leaving node runs this long after its leave */
#define SETTLE_MS 40000  /* quiescence deadline */
#define HANDOFF_APP 2    /* handoff.c's stream */
#define TERMINATE_MS 3000 /* a terminate not held by every member by then: uncertain */

enum { OP_INCR = 1, OP_GET = 2 };
enum { N_OFF, N_UP, N_DRAINING, N_LEAVING };

#define M_CRASH 1
#define M_PART 2
#define M_RAW_LEAVE 4 /* leave once herd_dsup_drained says so, as herdd does */
#define M_NOCHECK 8   /* the workload alone (determinism): no check fails the run */
/* counters keep 2 copies of their state (herd_child_req_t.replicas): a
 * node crashes only while replication is settled (repl_ready), so no two
 * crashes hit at once, and every value is checked exactly */
#define M_REPL 16
/* with M_REPL: counters keep 3 copies, and a crash takes two nodes at once */
#define M_REPL3 32
#define REPL_STOP_WAIT_MS 10000 /* a leaving node stops by then, settled or not */

typedef struct ctr {
    char name[24];
    int started, terminated;
    int op_node;           /* where the last start/terminate was issued */
    int spec_uncertain;    /* a crash may have taken that op with it */
    int term_status;       /* the terminate's answer: 1 pending, 0, HERD_EUNCERTAIN */
    int affected;          /* a crash may have taken its state */
    int start_status;      /* 1: pending */
    uint64_t acked, unknown, notsent;
    /* the call in flight */
    int inflight, op;
    herd_pid_t client;
    uint64_t ref;
    int have_final, get_failed;
    int64_t final_value;
} ctr_t;

typedef struct wnode {
    int state;
    int redrained;
    herd_pid_t client;
    int client_alive;
    uint64_t deadline;
} wnode_t;

typedef struct world {
    int active;
    regsim_t *rs;
    int mode;
    herd_dsup_config_t dcfg;
    ctr_t ctr[MAX_CTR];
    int nctr;
    wnode_t node[RS_MAX_NODES];
    int nslots;
    int no_new_calls;
    uint32_t call_pm;   /* per mille per idle counter per round */
    char fail[400];
    uint64_t calls, replies_ok, replies_err, lookups_failed;
    uint64_t errs[32], sync_errs[32];
    uint64_t part_until;
    uint64_t stale_reads;       /* an incr answered below what was acknowledged */
    uint64_t underreplicated;   /* M_REPL: incr replies saying fewer than 2 copies */
    uint64_t taken_after_leave; /* children a node held when it stopped after leaving */
    int parted;
    unsigned crashes, joins, leaves, partitions;
    /* the counters the end checks could make only in part (note_uncertain) */
    unsigned bounded_only, spec_unchecked;
    char uncertain[400];
} world_t;

static world_t g_w;

#define FAIL(w, ...)                                                                     \
    do {                                                                                 \
        if (!(w)->fail[0])                                                               \
            snprintf((w)->fail, sizeof((w)->fail), __VA_ARGS__);                         \
    } while (0)

/* ---- the client process ------------------------------------------------------------ */

typedef struct client_arg {
    world_t *w;
    int node;
} client_arg_t;

typedef struct client_msg {
    uint32_t ctr;
    uint8_t op;
} client_msg_t;

static int client_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    if (len != sizeof(client_arg_t))
        return HERD_EINVAL;
    client_arg_t *a = malloc(sizeof(*a));
    if (a == NULL)
        return HERD_ENOMEM;
    memcpy(a, arg, sizeof(*a));
    *state = a;
    return 0;
}

static void client_issue(herd_proc_t *self, world_t *w, const client_msg_t *m)
{
    if (m->ctr >= (uint32_t)w->nctr)
        return;
    ctr_t *c = &w->ctr[m->ctr];
    if (!c->inflight || !herd_pid_equal(c->client, herd_self(self)) || c->ref != 0)
        return;
    const char *cmd = m->op == OP_INCR ? "incr" : "get";
    uint64_t ref = 0;
    int rc = herd_call_name(self, c->name, cmd, strlen(cmd), CALL_MS, &ref);
    if (rc) {
        c->inflight = 0;
        c->notsent++;
        w->lookups_failed++;
        w->sync_errs[(unsigned)-rc & 31u]++;
        if (m->op == OP_GET)
            c->get_failed = rc;
        return;
    }
    w->calls++;
    c->op = m->op;
    c->ref = ref;
}

static void client_reply(herd_proc_t *self, world_t *w, const herd_msg_t *msg)
{
    ctr_t *c = NULL;
    for (int k = 0; k < w->nctr && c == NULL; k++)
        if (w->ctr[k].inflight && w->ctr[k].ref == msg->ref &&
            herd_pid_equal(w->ctr[k].client, herd_self(self)))
            c = &w->ctr[k];
    if (c == NULL)
        return;
    c->inflight = 0;
    c->ref = 0;
    if (msg->status != 0) {
        w->replies_err++;
        w->errs[(unsigned)-msg->status & 31u]++;
        if (c->op == OP_INCR && msg->status == HERD_ENOTCONN)
            c->notsent++; /* the runtime's word: never applied */
        else if (c->op == OP_INCR)
            c->unknown++;
        else
            c->get_failed = msg->status;
        return;
    }
    w->replies_ok++;
    char text[32];
    size_t l = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
    memcpy(text, msg->data, l);
    text[l] = '\0';
    int64_t v = strtoll(text, NULL, 10);
    if (c->op == OP_GET) {
        c->have_final = 1;
        c->final_value = v;
        return;
    }
    /* v counts every increment applied, this one included */
    if (v > (int64_t)(c->acked + c->unknown + 1))
        FAIL(w, "%s: incr answered %lld with %llu acknowledged and %llu unknown before it: "
                "an increment applied twice, or one that ended ENOTCONN applied",
             c->name, (long long)v, (unsigned long long)c->acked,
             (unsigned long long)c->unknown);
    /* Below what was acknowledged: a second copy answered (a partition, or a
     * registration not yet seen where the new owner started one): the final
     * value, once the copies merged, must count everything. */
    if (v < (int64_t)(c->acked + 1))
        w->stale_reads++;
    unsigned want = (w->mode & M_REPL3) ? 3 : 2;
    if ((w->mode & M_REPL) && msg->copies < want) {
        /* answered with fewer copies than asked (said so): outside the
         * durability guarantee, so only bounded above */
        w->underreplicated++;
        c->unknown++;
        return;
    }
    if ((w->mode & M_REPL) && msg->copies != want)
        FAIL(w, "%s: incr answered with %u copies, %u asked", c->name, (unsigned)msg->copies,
             want);
    c->acked++;
}

static int client_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    client_arg_t *a = state;
    world_t *w = a->w;
    if (!w->active)
        return 0;
    if (msg->kind == HERD_MSG_REPLY)
        client_reply(self, w, msg);
    else if (msg->kind == HERD_MSG_INFO && msg->len == sizeof(client_msg_t)) {
        client_msg_t m;
        memcpy(&m, msg->data, sizeof(m));
        client_issue(self, w, &m);
    }
    return 0;
}

/* Its calls' outcomes are unknown from now on. */
static void client_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)reason;
    client_arg_t *a = state;
    world_t *w = a->w;
    if (w->active) {
        for (int k = 0; k < w->nctr; k++) {
            ctr_t *c = &w->ctr[k];
            if (c->inflight && herd_pid_equal(c->client, herd_self(self))) {
                if (c->ref && c->op == OP_INCR)
                    c->unknown++;
                else if (!c->ref)
                    c->notsent++;
                c->inflight = 0;
                c->ref = 0;
            }
        }
        w->node[a->node].client_alive = 0;
    }
    free(a);
}

static const herd_behaviour_t client_behaviour = {
    .name = "client",
    .init = client_init,
    .handle_info = client_info,
    .terminate = client_terminate,
};

/* ---- the hooks: a supervisor, the counter service and a client on every node ----------- */

static const herd_behaviour_t *counter_service(void);

static int hook_start(regsim_t *rs, int i, herd_node_t *n, void *data)
{
    (void)rs;
    world_t *w = data;
    int rc = herd_dsup_start(n, &w->dcfg);
    if (rc == 0)
        rc = herd_service_register(n, "counter", counter_service());
    client_arg_t a = {w, i};
    herd_spawn_opts_t o = {.behaviour = &client_behaviour, .arg = &a, .arg_len = sizeof(a)};
    if (rc == 0)
        rc = herd_spawn(n, &o, &w->node[i].client);
    if (rc == 0)
        w->node[i].client_alive = 1;
    return rc;
}

/* HERD_SIM_DSUP_TRACE: every change of a node's children, as seen after
 * its poll. */
typedef struct snap {
    int n;
    char name[128][24];
    herd_pid_t pid[128];
    herd_child_state_t st[128];
} snap_t;

static snap_t g_snap[RS_MAX_NODES];

static int node_of_id_rs(regsim_t *rs, uint64_t id)
{
    for (int i = 0; i < regsim_node_count(rs); i++)
        if (herd_node_id_of(regsim_name(rs, i)) == id)
            return i;
    return -1;
}
static int g_trace = -1;

static int snap_add(void *data, const herd_child_view_t *c)
{
    snap_t *s = data;
    if (s->n < 128) {
        snprintf(s->name[s->n], 24, "%s", c->name);
        s->pid[s->n] = c->pid;
        s->st[s->n++] = c->state;
    }
    return 0;
}

static void trace_children(regsim_t *rs, int i, herd_node_t *n)
{
    static snap_t now;
    now.n = 0;
    if (n)
        herd_which_children(n, snap_add, &now);
    snap_t *old = &g_snap[i];
    for (int k = 0; k < now.n; k++) {
        int j = 0;
        while (j < old->n && strcmp(old->name[j], now.name[k]) != 0)
            j++;
        if (j == old->n || old->st[j] != now.st[k] || !herd_pid_equal(old->pid[j], now.pid[k]))
            fprintf(stderr, "t=%llu %s: %s %s serial %llu\n", (unsigned long long)regsim_now(rs),
                   regsim_name(rs, i), now.name[k], herd_child_state_name(now.st[k]),
                   (unsigned long long)now.pid[k].serial);
    }
    for (int j = 0; j < old->n; j++) {
        int k = 0;
        while (k < now.n && strcmp(old->name[j], now.name[k]) != 0)
            k++;
        if (k == now.n)
            fprintf(stderr, "t=%llu %s: %s gone\n", (unsigned long long)regsim_now(rs), regsim_name(rs, i),
                   old->name[j]);
    }
    *old = now;
}

/* HERD_SIM_DSUP_WATCH=NAME: every change of NAME's registry entries on
 * every node (replica, pid, registration time), from the registry's
 * internals: the tool to tell which entry won a conflict, and why. */
static char g_watch_text[RS_MAX_NODES][512];

static void trace_entries(regsim_t *rs, int i, herd_node_t *n, const char *name)
{
    char text[512];
    size_t off = 0;
    text[0] = '\0';
    registry_t *g = n ? reg_of(n) : NULL;
    const awmap_entry_t *e = g ? awmap_get(g->map, name, strlen(name)) : NULL;
    for (; e && off < sizeof(text) - 100; e = awmap_next(e)) {
        awmap_replica_id_t id = awmap_replica_id(g->map, e->dot.replica);
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        herd_pid_t who;
        int vis = herd_whereis(n, name, &who, NULL) == 0 && herd_pid_equal(who, v.pid);
        off += (size_t)snprintf(text + off, sizeof(text) - off,
                                " [by n%d.%llu #%llu: pid n%d.%llu hlc %llu%s]",
                                node_of_id_rs(rs, id.node) + 1,
                                (unsigned long long)(id.incarnation >> 40),
                                (unsigned long long)e->dot.counter,
                                node_of_id_rs(rs, v.pid.node) + 1,
                                (unsigned long long)v.pid.serial,
                                (unsigned long long)(v.hlc >> 16), vis ? " visible" : "");
    }
    if (strcmp(text, g_watch_text[i]) != 0) {
        fprintf(stderr, "t=%llu %s: %s entries:%s\n", (unsigned long long)regsim_now(rs),
                regsim_name(rs, i), name, text[0] ? text : " none");
        snprintf(g_watch_text[i], sizeof(g_watch_text[i]), "%s", text);
    }
}

static int hook_poll(regsim_t *rs, int i, herd_node_t *n, void *data)
{
    (void)data;
    int rc = herd_dsup_poll(n);
    if (g_trace < 0)
        g_trace = getenv("HERD_SIM_DSUP_TRACE") != NULL;
    if (g_trace)
        trace_children(rs, i, n);
    if (getenv("HERD_SIM_DSUP_WATCH"))
        trace_entries(rs, i, n, getenv("HERD_SIM_DSUP_WATCH"));
    return rc;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
    if (g_trace < 0)
        g_trace = getenv("HERD_SIM_DSUP_TRACE") != NULL;
    if (!g_trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "t=%llu ", (unsigned long long)(g_w.rs ? regsim_now(g_w.rs) : 0));
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* The counter service, traced (HERD_SIM_DSUP_TRACE): every copy's birth,
 * merge and end with its value. */
static const char *self_text(herd_proc_t *self)
{
    static char buf[48];
    herd_pid_t p = herd_self(self);
    snprintf(buf, sizeof(buf), "n%d.%llu", g_w.rs ? node_of_id_rs(g_w.rs, p.node) + 1 : 0,
             (unsigned long long)p.serial);
    return buf;
}

static int tc_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    int rc = counter_behaviour.init(self, arg, len, state);
    trace("counter %s: init: %d", self_text(self), rc);
    return rc;
}

static int tc_in(herd_proc_t *self, const uint8_t *data, size_t len, void **state)
{
    int rc = counter_behaviour.handoff_in(self, data, len, state);
    trace("counter %s: handoff_in: value %lld", self_text(self),
          rc ? -1ll : (long long)counter_value(*state));
    return rc;
}

static int tc_resolve(herd_proc_t *self, void *state, const uint8_t *other, size_t len)
{
    long long before = (long long)counter_value(state);
    int rc = counter_behaviour.resolve_conflict(self, state, other, len);
    trace("counter %s: merged a loser: %lld -> %lld", self_text(self), before,
          (long long)counter_value(state));
    return rc;
}

static void tc_terminate(herd_proc_t *self, void *state, int reason)
{
    trace("counter %s: ends (%s) at %lld", self_text(self), herd_reason_name(reason),
          state ? (long long)counter_value(state) : -1ll);
    counter_behaviour.terminate(self, state, reason);
}

static herd_behaviour_t traced_counter;

static const herd_behaviour_t *counter_service(void)
{
    if (g_trace < 0)
        g_trace = getenv("HERD_SIM_DSUP_TRACE") != NULL;
    if (!g_trace)
        return &counter_behaviour;
    traced_counter = counter_behaviour;
    traced_counter.init = tc_init;
    traced_counter.handoff_in = tc_in;
    traced_counter.resolve_conflict = tc_resolve;
    traced_counter.terminate = tc_terminate;
    return &traced_counter;
}

static const regsim_hooks_t HOOKS = {.data = &g_w, .on_start = hook_start, .on_poll = hook_poll};

/* ---- the world --------------------------------------------------------------------- */

typedef struct world_opts {
    int slots, initial, mode;
    uint32_t drop_pm, dup_pm;
    uint32_t down_ms;
    herd_dsup_config_t dcfg;
} world_opts_t;

static int world_make(rs_run_t *r, const world_opts_t *o)
{
    world_t *w = &g_w;
    memset(w, 0, sizeof(*w));
    memset(g_snap, 0, sizeof(g_snap));
    memset(g_watch_text, 0, sizeof(g_watch_text));
    w->active = 1;
    w->mode = o->mode;
    w->dcfg = o->dcfg;
    if (w->dcfg.reconcile_slice == 0) { /* half the seeds slice their full passes finely */
        static const uint32_t slices[] = {0, 0, 0, 8, 16, 32};
        w->dcfg.reconcile_slice = slices[r->seed % 6];
    }
    w->nslots = o->slots;
    w->call_pm = 300;
    regsim_config_t cfg = {.seed = r->seed,
                           .nodes = o->slots,
                           .tick_ms = 5,
                           .heartbeat_ms = HB,
                           .suspect_ms = 3 * HB,
                           .down_ms = o->down_ms ? o->down_ms : 6 * HB,
                           .forget_ms = FORGET_MS,
                           .delay_min = 1,
                           .delay_max = 15,
                           .drop_pm = o->drop_pm,
                           .dup_pm = o->dup_pm,
                           .hooks = &HOOKS};
    RS_CHECK_OK(r, regsim_new(&cfg, &r->rs));
    w->rs = r->rs;
    for (int i = 0; i < o->initial; i++) {
        RS_CHECK_OK(r, regsim_start(r->rs, i));
        w->node[i].state = N_UP;
        RS_CHECK_OK(r, regsim_run_for(r->rs, regsim_range(r->rs, 0, 30)));
    }
    RS_CHECK_OK(r, regsim_run_until_members(r->rs, regsim_now(r->rs) + 5000));
    return 1;
}

/* End the world's bookkeeping (the driver frees the nodes later). */
static void world_close(void)
{
    g_w.active = 0;
}

static int up_count(const world_t *w, int only_up)
{
    int n = 0;
    for (int i = 0; i < w->nslots; i++)
        n += only_up ? w->node[i].state == N_UP : w->node[i].state != N_OFF;
    return n;
}

/* A random slot in state st, or -1. */
static int random_slot(world_t *w, int st)
{
    int c[RS_MAX_NODES], n = 0;
    for (int i = 0; i < w->nslots; i++)
        if (w->node[i].state == st)
            c[n++] = i;
    return n ? c[regsim_range(w->rs, 0, (uint64_t)n - 1)] : -1;
}

/* A random running node (up, draining or leaving), or -1. */
static int random_live(world_t *w)
{
    int c[RS_MAX_NODES], n = 0;
    for (int i = 0; i < w->nslots; i++)
        if (w->node[i].state != N_OFF)
            c[n++] = i;
    return n ? c[regsim_range(w->rs, 0, (uint64_t)n - 1)] : -1;
}

static void start_cb(void *data, const herd_start_result_t *res)
{
    ctr_t *c = data;
    if (g_w.active)
        c->start_status = res->status;
}

static int ctr_start(rs_run_t *r, int via)
{
    world_t *w = &g_w;
    if (w->nctr == MAX_CTR)
        return 1;
    ctr_t *c = &w->ctr[w->nctr];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "ctr%d", w->nctr);
    herd_node_t *n = regsim_node(w->rs, via);
    RS_CHECK(r, n != NULL, "start via a node that is down");
    c->start_status = 1;
    herd_child_req_t req = {.name = c->name, .service = "counter",
                            .restart = HERD_RESTART_PERMANENT,
                            .replicas = (w->mode & M_REPL3) ? 3 : (w->mode & M_REPL) ? 2 : 0};
    w->nctr++;
    c->started = 1;
    c->op_node = via;
    trace("start %s via %s", c->name, regsim_name(w->rs, via));
    RS_CHECK_OK(r, herd_start_child_async(n, &req, 10000, start_cb, c));
    return 1;
}

static void terminate_cb(void *data, int status)
{
    ctr_t *c = data;
    c->term_status = status;
    trace("terminate %s answered: %s", c->name, herd_strerror(status));
}

/* A terminate answers 0 only once every member holds it: no crash may undo
 * it then. Its node's crash before that (or an uncertain answer followed by
 * that crash) may. */
static int ctr_terminate(rs_run_t *r, int k, int via)
{
    world_t *w = &g_w;
    ctr_t *c = &w->ctr[k];
    herd_node_t *n = regsim_node(w->rs, via);
    if (n == NULL || c->terminated)
        return 1;
    int rc = herd_terminate_child_async(n, c->name, TERMINATE_MS, terminate_cb, c);
    RS_CHECK(r, rc == 0 || rc == HERD_ENOENT, "terminate %s: %s", c->name, herd_strerror(rc));
    trace("terminate %s via %s: %s", c->name, regsim_name(w->rs, via), herd_strerror(rc));
    if (rc == 0) {
        c->terminated = 1;
        c->term_status = 1;
        c->op_node = via;
    }
    return 1;
}

/* Send one call to counter k through a random up node's client. */
static void issue(world_t *w, int k, int op)
{
    ctr_t *c = &w->ctr[k];
    int cand[RS_MAX_NODES], n = 0;
    for (int i = 0; i < w->nslots; i++)
        if (w->node[i].state == N_UP && w->node[i].client_alive)
            cand[n++] = i;
    if (n == 0)
        return;
    int i = cand[regsim_range(w->rs, 0, (uint64_t)n - 1)];
    client_msg_t m = {(uint32_t)k, (uint8_t)op};
    c->inflight = 1;
    c->ref = 0;
    c->client = w->node[i].client;
    c->op = op;
    if (herd_node_send(regsim_node(w->rs, i), c->client, &m, sizeof(m)) != 0) {
        c->inflight = 0;
        c->notsent++;
    }
}

static void issue_calls(world_t *w)
{
    if (w->no_new_calls)
        return;
    for (int k = 0; k < w->nctr; k++) {
        ctr_t *c = &w->ctr[k];
        if (c->started && !c->terminated && !c->inflight &&
            regsim_range(w->rs, 0, 999) < w->call_pm)
            issue(w, k, OP_INCR);
    }
}

static int calls_idle(const world_t *w)
{
    for (int k = 0; k < w->nctr; k++)
        if (w->ctr[k].inflight)
            return 0;
    return 1;
}

/* Whether every running node other than `except` reflects counter k's last
 * start/terminate (spec present, or gone). */
static int spec_settled(world_t *w, int k, int except)
{
    ctr_t *c = &w->ctr[k];
    const uint8_t *spec;
    size_t len;
    for (int i = 0; i < w->nslots; i++) {
        herd_node_t *n = regsim_node(w->rs, i);
        if (n == NULL || i == except)
            continue;
        int has = herd_spec_get(n, c->name, &spec, &len) == 0;
        if (has == c->terminated)
            return 0;
    }
    return 1;
}

/* Whether node i reflects counter k's last start/terminate. */
static int holds_change(world_t *w, int k, int i)
{
    const uint8_t *spec;
    size_t len;
    herd_node_t *n = regsim_node(w->rs, i);
    return n && (herd_spec_get(n, w->ctr[k].name, &spec, &len) == 0) != w->ctr[k].terminated;
}

static int ctr_index(const world_t *w, const char *name)
{
    for (int k = 0; k < w->nctr; k++)
        if (strcmp(w->ctr[k].name, name) == 0)
            return k;
    return -1;
}

static int mark_affected(void *data, const herd_child_view_t *v)
{
    world_t *w = data;
    int k = ctr_index(w, v->name);
    if (k >= 0)
        w->ctr[k].affected = 1;
    return 0;
}

typedef struct find_kid {
    const char *name;
    int found;
    herd_pid_t pid;
    herd_child_state_t state;
} find_kid_t;

static int find_kid_add(void *data, const herd_child_view_t *c)
{
    find_kid_t *f = data;
    if (strcmp(c->name, f->name) != 0)
        return 0;
    f->found = 1;
    f->pid = c->pid;
    f->state = c->state;
    return 1;
}

static find_kid_t kid_on(world_t *w, int i, const char *name)
{
    find_kid_t f = {.name = name};
    herd_node_t *n = regsim_node(w->rs, i);
    if (n)
        herd_which_children(n, find_kid_add, &f);
    return f;
}

/* Whether one node may crash now without losing an acknowledged increment
 * (M_REPL): every running node has noticed the crashes and restarts so far
 * (sees_truth) and its replication is settled, and every counter
 * started and not terminated has its spec on every running node and runs
 * (RUNNING, or MOVING off with its state) on exactly one of them. */
/* Whether running node i sees every other slot as it is: one that is off
 * as down, left or gone, one that runs in its current start. Until then a
 * crash that happened is not yet a crash to i: another one would be two
 * at once. */
static int sees_truth(world_t *w, int i)
{
    herd_node_t *n = regsim_node(w->rs, i);
    for (int j = 0; j < w->nslots; j++) {
        herd_member_info_t m, self;
        uint64_t id = herd_node_id_of(regsim_name(w->rs, j));
        int known = herd_cluster_member(n, id, &m) == 0;
        if (w->node[j].state == N_OFF) {
            if (known && m.state != HERD_MEMBER_DOWN && m.state != HERD_MEMBER_LEFT)
                return 0;
        } else if (!known || herd_cluster_member(regsim_node(w->rs, j), id, &self) != 0 ||
                   m.incarnation != self.incarnation) {
            return 0;
        }
    }
    return 1;
}

static int repl_ready(world_t *w)
{
    for (int i = 0; i < w->nslots; i++)
        if (w->node[i].state != N_OFF &&
            (!sees_truth(w, i) || !herd_repl_settled(regsim_node(w->rs, i))))
            return 0;
    for (int k = 0; k < w->nctr; k++) {
        const ctr_t *c = &w->ctr[k];
        if (!c->started || c->terminated)
            continue;
        int running = 0;
        for (int i = 0; i < w->nslots; i++) {
            const uint8_t *spec;
            size_t len;
            if (w->node[i].state == N_OFF)
                continue;
            if (herd_spec_get(regsim_node(w->rs, i), c->name, &spec, &len) != 0)
                return 0;
            find_kid_t f = kid_on(w, i, c->name);
            running += f.found &&
                       (f.state == HERD_CHILD_RUNNING || f.state == HERD_CHILD_MOVING);
        }
        if (running != 1)
            return 0;
    }
    return 1;
}

/* Before node i goes without handing its children off: the counters whose
 * state it may take with it, and (a crash) the spec changes it may take too.
 * With replicas (M_REPL) a node goes only while repl_ready, so no state is
 * taken: its children restart from their copies. */
static void before_loss(world_t *w, int i, int crash)
{
    herd_node_t *n = regsim_node(w->rs, i);
    if (n == NULL)
        return;
    if (!(w->mode & M_REPL))
        herd_which_children(n, mark_affected, w);
    uint64_t id = herd_node_id_of(regsim_name(w->rs, i));
    for (int k = 0; k < w->nctr; k++) {
        ctr_t *c = &w->ctr[k];
        for (int j = 0; j < w->nslots && !(w->mode & M_REPL); j++) {
            herd_node_t *o = regsim_node(w->rs, j);
            herd_pid_t pid;
            if (o && herd_whereis(o, c->name, &pid, NULL) == 0 && pid.node == id)
                c->affected = 1;
        }
        /* A crash may take a start or terminate with it while the crashed
         * node holds it and some other running node does not yet (whoever
         * made it: its maker may have left since); a terminate answered 0
         * is held everywhere and no crash may undo it. */
        if (crash && holds_change(w, k, i) && !spec_settled(w, k, i) &&
            !(c->terminated && c->term_status == 0))
            c->spec_uncertain = 1;
    }
}

/* A crash as the mode has it: with 3 copies (M_REPL3), two nodes at once
 * while at least 4 are up. */
static int node_crash(rs_run_t *r, int i);
static int crash_event(rs_run_t *r)
{
    world_t *w = &g_w;
    int first = random_slot(w, N_UP);
    if (!node_crash(r, first))
        return 0;
    if ((w->mode & M_REPL3) && up_count(w, 1) >= 3)
        return node_crash(r, random_slot(w, N_UP));
    return 1;
}

static int node_crash(rs_run_t *r, int i)
{
    world_t *w = &g_w;
    trace("crash %s", regsim_name(w->rs, i));
    before_loss(w, i, 1);
    RS_CHECK_OK(r, regsim_crash(w->rs, i));
    w->node[i].state = N_OFF;
    w->node[i].client_alive = 0;
    w->crashes++;
    return 1;
}

static int node_join(rs_run_t *r, int i)
{
    world_t *w = &g_w;
    trace("join %s", regsim_name(w->rs, i));
    RS_CHECK_OK(r, regsim_start(w->rs, i));
    w->node[i].state = N_UP;
    w->joins++;
    return 1;
}

static int node_drain(rs_run_t *r, int i)
{
    world_t *w = &g_w;
    int via = regsim_range(w->rs, 0, 1) ? i : random_slot(w, N_UP); /* not one that left */
    herd_node_t *n = regsim_node(w->rs, via);
    RS_CHECK(r, n != NULL, "drain via a node that is down");
    int rc = herd_drain(n, regsim_name(w->rs, i), 1);
    if (rc == HERD_ENOTCONN && via != i) /* the other node does not know it yet */
        rc = herd_drain(regsim_node(w->rs, i), regsim_name(w->rs, i), 1);
    RS_CHECK(r, rc == 0, "drain %s via %s: %s", regsim_name(w->rs, i), regsim_name(w->rs, via),
             herd_strerror(rc));
    trace("drain %s via %s", regsim_name(w->rs, i), regsim_name(w->rs, via));
    w->node[i].state = N_DRAINING;
    w->node[i].redrained = 0;
    w->node[i].deadline = regsim_now(w->rs) + DRAIN_MS;
    return 1;
}

static int self_draining(herd_node_t *n)
{
    herd_member_info_t m[RS_MAX_NODES * 2];
    int c = herd_cluster_members(n, m, RS_MAX_NODES * 2);
    for (int k = 0; k < c && k < RS_MAX_NODES * 2; k++)
        if (strcmp(m[k].name, herd_node_name(n)) == 0)
            return m[k].state == HERD_MEMBER_DRAINING;
    return 0;
}

/* Whether everything node i sent on its reliable streams to the other
 * running nodes was acknowledged; if not, what waits (into why). */
static int streams_acked(world_t *w, int i, char *why, size_t cap)
{
    herd_node_t *n = regsim_node(w->rs, i);
    for (int j = 0; j < w->nslots; j++) {
        herd_stream_stats_t st;
        if (j == i || w->node[j].state == N_OFF)
            continue;
        if (herd_cluster_stream_stats(n, herd_node_id_of(regsim_name(w->rs, j)), &st) == 0 &&
            st.pending) {
            if (why)
                snprintf(why, cap, "; %llu messages to %s unacknowledged (sent up to %llu, "
                                   "acknowledged up to %llu)",
                         (unsigned long long)st.pending, regsim_name(w->rs, j),
                         (unsigned long long)st.sent_seq, (unsigned long long)st.acked_seq);
            return 0;
        }
    }
    return 1;
}

static int client_busy(const world_t *w, int i)
{
    for (int k = 0; k < w->nctr; k++)
        if (w->ctr[k].inflight && herd_pid_equal(w->ctr[k].client, w->node[i].client))
            return 1;
    return 0;
}

/* Drains that finished leave; leaves that went out stop the node. */
static int advance_nodes(rs_run_t *r)
{
    world_t *w = &g_w;
    uint64_t now = regsim_now(w->rs);
    for (int i = 0; i < w->nslots; i++) {
        wnode_t *x = &w->node[i];
        herd_node_t *n = regsim_node(w->rs, i);
        if (x->state == N_DRAINING) {
            herd_child_counts_t cc;
            RS_CHECK_OK(r, herd_count_children(n, &cc));
            if (cc.local == 0 && self_draining(n) && !client_busy(w, i) &&
                ((w->mode & M_RAW_LEAVE) ? herd_dsup_drained(n)
                                         : streams_acked(w, i, NULL, 0))) {
                trace("leave %s", regsim_name(w->rs, i));
                RS_CHECK_OK(r, regsim_leave(w->rs, i));
                x->state = N_LEAVING;
                x->deadline = now + LINGER_MS;
            } else if (now >= x->deadline && (w->mode & M_NOCHECK)) {
                RS_CHECK_OK(r, regsim_leave(w->rs, i));
                x->state = N_LEAVING;
                x->deadline = now + LINGER_MS;
            } else if (now >= x->deadline) {
                herd_handoff_stats_t hs;
                char acks[160] = "";
                herd_handoff_stats(n, &hs);
                streams_acked(w, i, acks, sizeof(acks));
                RS_CHECK(r, 0,
                         "drain of %s stuck: %llu children still there after %u ms "
                         "(draining: %d; handoffs started %llu committed %llu aborted %llu "
                         "rejected %llu in flight %llu)%s",
                         regsim_name(w->rs, i), (unsigned long long)cc.local, DRAIN_MS,
                         self_draining(n), (unsigned long long)hs.started,
                         (unsigned long long)hs.committed, (unsigned long long)hs.aborted,
                         (unsigned long long)hs.rejected, (unsigned long long)hs.in_flight,
                         acks);
            } else if (!self_draining(n) && now >= x->deadline - DRAIN_MS + 2000 &&
                       !x->redrained) {
                /* the request went through another node that could not pass it
                 * on (cut off from it, or it left since): ask again, here */
                x->redrained = 1;
                RS_CHECK_OK(r, herd_drain(n, regsim_name(w->rs, i), 1));
            }
        } else if (x->state == N_LEAVING && now >= x->deadline &&
                   (w->mode & M_REPL) && !repl_ready(w) &&
                   now < x->deadline + REPL_STOP_WAIT_MS) {
            continue; /* its stop would be a crash: one while replication is settled */
        } else if (x->state == N_LEAVING && now >= x->deadline) {
            herd_child_counts_t cc;
            if ((w->mode & M_REPL) && !repl_ready(w) && (n = regsim_node(w->rs, i)) != NULL)
                herd_which_children(n, mark_affected, w); /* waited too long: not exact */
            RS_CHECK_OK(r, herd_count_children(n, &cc));
            if (cc.local) /* offers that raced its leave: what they hold goes */
                w->taken_after_leave += cc.local;
            trace("stop %s (%llu children)", regsim_name(w->rs, i), (unsigned long long)cc.local);
            before_loss(w, i, 0);
            RS_CHECK_OK(r, regsim_crash(w->rs, i)); /* its leave went out: stop it */
            x->state = N_OFF;
            x->client_alive = 0;
            w->leaves++;
        }
    }
    return 1;
}

static int partition(rs_run_t *r, uint64_t ms)
{
    world_t *w = &g_w;
    int g[RS_MAX_NODES], a = 0, b = 0;
    for (int i = 0; i < w->nslots; i++) {
        g[i] = (int)regsim_range(w->rs, 1, 2);
        if (w->node[i].state != N_OFF && g[i] == 1)
            a++;
        else if (w->node[i].state != N_OFF)
            b++;
    }
    if (a == 0 || b == 0) { /* move one node across */
        int i = random_live(w);
        if (i < 0)
            return 1;
        g[i] = 3 - g[i];
    }
    for (int i = 0; i < w->nslots; i++)
        regsim_set_group(w->rs, i, g[i]);
    trace("partition for %llu ms: %d%d%d%d%d%d", (unsigned long long)ms, g[0], g[1], g[2], g[3],
          g[4], g[5]);
    w->parted = 1;
    w->part_until = regsim_now(w->rs) + ms;
    w->partitions++;
    (void)r;
    return 1;
}

/* ---- one round of the workload ---------------------------------------------------- */

static int round_(rs_run_t *r, uint64_t ms)
{
    world_t *w = &g_w;
    RS_CHECK_OK(r, regsim_run_for(w->rs, ms));
    RS_CHECK(r, !w->fail[0] || (w->mode & M_NOCHECK), "%.400s", w->fail);
    if (w->parted && regsim_now(w->rs) >= w->part_until) {
        trace("heal");
        regsim_heal(w->rs);
        w->parted = 0;
    }
    if (!advance_nodes(r))
        return 0;
    issue_calls(w);
    return 1;
}

static int random_event(rs_run_t *r)
{
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int up = up_count(w, 1);
    int off = random_slot(w, N_OFF);
    uint64_t e = regsim_range(rs, 0, 99);
    if (e < 18) {
        if (off >= 0 && up_count(w, 0) < 5)
            return node_join(r, off);
    } else if (e < 34) {
        if (up > 2)
            return node_drain(r, random_slot(w, N_UP));
    } else if (e < 50) {
        if ((w->mode & M_CRASH) && up > 2 && (!(w->mode & M_REPL) || repl_ready(w)))
            return crash_event(r);
        if ((w->mode & M_PART) && !w->parted)
            return partition(r, regsim_range(rs, 0, 5) == 0 ? regsim_range(rs, 4500, 6000)
                                                             : regsim_range(rs, 200, 3000));
    } else if (e < 62) {
        if ((w->mode & M_PART) && !w->parted)
            return partition(r, regsim_range(rs, 200, 3000));
        if ((w->mode & M_CRASH) && up > 2 && (!(w->mode & M_REPL) || repl_ready(w)))
            return crash_event(r);
    } else if (e < 86) {
        int via = random_slot(w, N_UP);
        if (via >= 0)
            return ctr_start(r, via);
    } else {
        int via = random_slot(w, N_UP);
        if (via >= 0 && w->nctr)
            return ctr_terminate(r, (int)regsim_range(rs, 0, (uint64_t)w->nctr - 1), via);
    }
    return 1;
}

/* ---- checks ------------------------------------------------------------------------- */

typedef struct kid {
    char name[24];
    int node;
    herd_pid_t pid;
    herd_child_state_t state;
} kid_t;

typedef struct kids {
    kid_t v[512];
    int n, node, overflow;
} kids_t;

static int kids_add(void *data, const herd_child_view_t *c)
{
    kids_t *k = data;
    if (k->n == 512) {
        k->overflow = 1;
        return 1;
    }
    kid_t *x = &k->v[k->n++];
    snprintf(x->name, sizeof(x->name), "%s", c->name);
    x->node = k->node;
    x->pid = c->pid;
    x->state = c->state;
    return 0;
}

typedef struct names {
    char v[256][24];
    int n;
} names_t;

static int spec_add(void *data, const char *name, const uint8_t *spec, size_t len)
{
    (void)spec;
    (void)len;
    names_t *s = data;
    if (s->n < 256)
        snprintf(s->v[s->n++], 24, "%s", name);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void pid_text(herd_pid_t p, char *buf, size_t cap)
{
    snprintf(buf, cap, "<%llx.%llx.%llu>", (unsigned long long)(p.node & 0xffff),
             (unsigned long long)(p.incarnation >> 40), (unsigned long long)p.serial);
}

static int node_of_id(world_t *w, uint64_t id)
{
    for (int i = 0; i < w->nslots; i++)
        if (herd_node_id_of(regsim_name(w->rs, i)) == id)
            return i;
    return -1;
}

/* The supervisor's invariants once quiet; 1, or 0 with why. */
static int dsup_settled(world_t *w, char *why, size_t cap)
{
    regsim_t *rs = w->rs;
    static kids_t kids;
    static names_t specs, other;
    kids.n = 0;
    kids.overflow = 0;
    int first = -1;
    for (int i = 0; i < w->nslots; i++) {
        herd_node_t *n = regsim_node(rs, i);
        if (n == NULL)
            continue;
        herd_handoff_stats_t hs;
        herd_handoff_stats(n, &hs);
        if (hs.in_flight) {
            snprintf(why, cap, "%s: %llu handoffs in flight", regsim_name(rs, i),
                     (unsigned long long)hs.in_flight);
            return 0;
        }
        int before = kids.n;
        kids.node = i;
        herd_which_children(n, kids_add, &kids);
        if (kids.overflow) {
            snprintf(why, cap, "too many children");
            return 0;
        }
        size_t procs = herd_node_process_count(n);
        size_t expect = (size_t)(kids.n - before) + (w->node[i].client_alive ? 1 : 0);
        for (int k = before; k < kids.n; k++)
            if (herd_pid_is_none(kids.v[k].pid))
                expect--;
        if (procs != expect) {
            snprintf(why, cap, "%s runs %zu processes: %d children, client %s", regsim_name(rs, i),
                     procs, kids.n - before, w->node[i].client_alive ? "alive" : "gone");
            return 0;
        }
        names_t *s = first < 0 ? &specs : &other;
        s->n = 0;
        herd_spec_foreach(n, spec_add, s);
        qsort(s->v, (size_t)s->n, sizeof(s->v[0]), name_cmp);
        if (first < 0) {
            first = i;
        } else {
            int same = other.n == specs.n;
            for (int k = 0; same && k < specs.n; k++)
                same = strcmp(specs.v[k], other.v[k]) == 0;
            if (!same) {
                snprintf(why, cap, "%s has %d specs, %s %d (or other names)",
                         regsim_name(rs, first), specs.n, regsim_name(rs, i), other.n);
                return 0;
            }
        }
    }
    if (first < 0) {
        snprintf(why, cap, "no node runs");
        return 0;
    }
    char p1[48], p2[48];
    for (int s = 0; s < specs.n; s++) {
        const char *name = specs.v[s];
        int found = -1, count = 0;
        for (int k = 0; k < kids.n; k++)
            if (strcmp(kids.v[k].name, name) == 0) {
                count++;
                found = k;
            }
        if (count != 1) {
            snprintf(why, cap, "%s: %d copies (children) cluster-wide", name, count);
            return 0;
        }
        kid_t *x = &kids.v[found];
        herd_node_t *n = regsim_node(rs, x->node);
        if (x->state != HERD_CHILD_RUNNING) {
            snprintf(why, cap, "%s on %s is %s", name, regsim_name(rs, x->node),
                     herd_child_state_name(x->state));
            return 0;
        }
        if (!herd_is_alive(n, x->pid) || herd_is_frozen(n, x->pid)) {
            pid_text(x->pid, p1, sizeof(p1));
            snprintf(why, cap, "%s on %s: %s %s", name, regsim_name(rs, x->node), p1,
                     herd_is_alive(n, x->pid) ? "frozen" : "not alive");
            return 0;
        }
        const char *owner = NULL;
        const struct herd_ring *ring = herd_cluster_ring(n);
        if (ring == NULL || herd_ring_owner(ring, name, strlen(name), &owner) != 0 ||
            strcmp(owner, regsim_name(rs, x->node)) != 0) {
            snprintf(why, cap, "%s runs on %s, its owner is %s", name, regsim_name(rs, x->node),
                     owner ? owner : "?");
            return 0;
        }
        for (int i = 0; i < w->nslots; i++) {
            herd_node_t *o = regsim_node(rs, i);
            herd_pid_t pid;
            if (o == NULL)
                continue;
            if (herd_whereis(o, name, &pid, NULL) != 0 || !herd_pid_equal(pid, x->pid)) {
                pid_text(x->pid, p1, sizeof(p1));
                pid_text(pid, p2, sizeof(p2));
                snprintf(why, cap, "%s runs as %s on %s, %s resolves it to %s", name, p1,
                         regsim_name(rs, x->node), regsim_name(rs, i),
                         herd_whereis(o, name, &pid, NULL) ? "nothing" : p2);
                return 0;
            }
        }
    }
    for (int k = 0; k < kids.n; k++) {
        if (!bsearch(kids.v[k].name, specs.v, (size_t)specs.n, sizeof(specs.v[0]), name_cmp)) {
            snprintf(why, cap, "%s runs on %s (%s) without a spec", kids.v[k].name,
                     regsim_name(rs, kids.v[k].node), herd_child_state_name(kids.v[k].state));
            return 0;
        }
    }
    /* the books: specs kept and removed as asked */
    for (int k = 0; k < w->nctr; k++) {
        ctr_t *c = &w->ctr[k];
        int has = bsearch(c->name, specs.v, (size_t)specs.n, sizeof(specs.v[0]), name_cmp) != NULL;
        if (c->spec_uncertain)
            continue;
        if (!c->terminated && !has) {
            snprintf(why, cap, "%s was started (via %s, start status %s) and its spec is lost",
                     c->name, regsim_name(rs, c->op_node),
                     c->start_status == 1 ? "pending" : herd_strerror(c->start_status));
            return 0;
        }
        if (c->terminated && has) {
            snprintf(why, cap, "%s was terminated (via %s) and its spec came back", c->name,
                     regsim_name(rs, c->op_node));
            return 0;
        }
    }
    /* no name of a counter without a spec */
    for (int i = 0; i < w->nslots; i++) {
        herd_node_t *o = regsim_node(rs, i);
        herd_pid_t pid;
        for (int k = 0; o && k < w->nctr; k++)
            if (herd_whereis(o, w->ctr[k].name, &pid, NULL) == 0 &&
                !bsearch(w->ctr[k].name, specs.v, (size_t)specs.n, sizeof(specs.v[0]),
                         name_cmp)) {
                pid_text(pid, p1, sizeof(p1));
                snprintf(why, cap, "%s has no spec, %s resolves it to %s (node %d)",
                         w->ctr[k].name, regsim_name(rs, i), p1, node_of_id(w, pid.node) + 1);
                return 0;
            }
    }
    return 1;
}

static int all_ok(world_t *w, char *why, size_t cap)
{
    return regsim_members_converged(w->rs, why, cap) &&
           regsim_replicas_agree(w->rs, 0, why, cap) && dsup_settled(w, why, cap);
}

/* Heal, lift blocks, no loss; finish drains; let calls end; then settle. */
static int quiesce(rs_run_t *r, const char *what)
{
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    regsim_heal(rs);
    regsim_unblock_all(rs);
    regsim_set_loss(rs, 0, 0);
    w->parted = 0;
    w->no_new_calls = 1;
    uint64_t deadline = regsim_now(rs) + DRAIN_MS + 2000;
    while (!calls_idle(w) || up_count(w, 0) != up_count(w, 1)) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s: calls or drains never ended", what);
        if (!round_(r, 10))
            return 0;
    }
    char why[400] = "";
    deadline = regsim_now(rs) + SETTLE_MS;
    while (!all_ok(w, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s: not settled after %u ms: %s", what,
                 SETTLE_MS, why);
        RS_CHECK_OK(r, regsim_run_for(rs, 50));
        RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    }
    RS_CHECK_OK(r, regsim_run_for(rs, 3000));
    RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    RS_CHECK(r, all_ok(w, why, sizeof(why)), "%s: 3 s after settling: %s", what, why);
    return 1;
}

/* Book a counter the end checks could make only in part: `what` says which
 * check was not made. It counts in the seed's uncertain figure (the case's
 * summary line) and is named in the verbose line. */
static void note_uncertain(rs_run_t *r, world_t *w, const ctr_t *c, const char *what)
{
    size_t used = strlen(w->uncertain);
    r->uncertain++;
    if (used + 1 < sizeof(w->uncertain))
        snprintf(w->uncertain + used, sizeof(w->uncertain) - used, " %s(%s)", c->name, what);
}

/* The counters a crash left the end checks unable to check in full: a crash
 * may have taken its start or terminate (whether it has a spec is not
 * checked; without one it has no value to check), or its copy (its value is
 * only bounded above). `has_spec` says whether it has a spec now. */
static void book_uncertain(rs_run_t *r, const ctr_t *c, int has_spec, int strict)
{
    world_t *w = &g_w;
    if (c->spec_uncertain) {
        w->spec_unchecked++;
        note_uncertain(r, w, c, has_spec && !c->terminated ? "spec" : "spec,value");
    } else if (has_spec && c->affected && !strict) {
        w->bounded_only++;
        note_uncertain(r, w, c, "value");
    }
}

/* A final get on every counter that has a spec; check the values: never
 * above its acknowledged plus unknown increments, and never below the
 * acknowledged ones unless a crash may have taken its copy (`strict`: no
 * crash could have, check every counter). What could not be checked is
 * booked (book_uncertain), never dropped silently. */
static int final_values(rs_run_t *r, int strict)
{
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    herd_node_t *any = NULL;
    for (int i = 0; i < w->nslots && any == NULL; i++)
        any = regsim_node(rs, i);
    const uint8_t *spec;
    size_t len;
    for (int k = 0; k < w->nctr; k++)
        if (herd_spec_get(any, w->ctr[k].name, &spec, &len) == 0)
            issue(w, k, OP_GET);
    uint64_t deadline = regsim_now(rs) + CALL_MS + 500;
    while (!calls_idle(w)) {
        RS_CHECK(r, regsim_now(rs) < deadline, "final gets never answered");
        RS_CHECK_OK(r, regsim_run_for(rs, 10));
    }
    RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    for (int k = 0; k < w->nctr; k++) {
        ctr_t *c = &w->ctr[k];
        int has_spec = herd_spec_get(any, c->name, &spec, &len) == 0;
        book_uncertain(r, c, has_spec, strict);
        if (!has_spec)
            continue;
        RS_CHECK(r, c->have_final, "%s: the final get failed: %s", c->name,
                 herd_strerror(c->get_failed));
        int64_t v = c->final_value, lo = (int64_t)c->acked, hi = (int64_t)(c->acked + c->unknown);
        RS_CHECK(r, v <= hi,
                 "%s is %lld: above %llu acknowledged + %llu unknown: increments applied "
                 "twice, or ones that ended ENOTCONN applied",
                 c->name, (long long)v, (unsigned long long)c->acked,
                 (unsigned long long)c->unknown);
        /* a terminate a crash undid may have stopped a copy, with its counts */
        int undone = c->terminated && c->spec_uncertain;
        RS_CHECK(r, (!strict && c->affected) || undone || v >= lo,
                 "%s is %lld, %llu increments were acknowledged (%llu unknown): acknowledged "
                 "increments lost%s",
                 c->name, (long long)v, (unsigned long long)c->acked,
                 (unsigned long long)c->unknown, c->affected ? " (a crash hit it)" : "");
    }
    return 1;
}

static void verbose(rs_run_t *r, const char *what)
{
    world_t *w = &g_w;
    if (getenv("HERD_SIM_VERBOSE") == NULL)
        return;
    herd_handoff_stats_t t = {0};
    for (int i = 0; i < w->nslots; i++) {
        herd_node_t *n = regsim_node(w->rs, i);
        herd_handoff_stats_t s;
        if (n == NULL || herd_handoff_stats(n, &s) != 0)
            continue;
        t.started += s.started, t.committed += s.committed, t.aborted += s.aborted;
        t.rejected += s.rejected, t.received += s.received, t.promoted += s.promoted;
        t.forwarded += s.forwarded, t.starts += s.starts, t.restarts += s.restarts;
    }
    uint64_t acked = 0, unknown = 0, notsent = 0;
    int affected = 0;
    for (int k = 0; k < w->nctr; k++) {
        acked += w->ctr[k].acked;
        unknown += w->ctr[k].unknown;
        notsent += w->ctr[k].notsent;
        affected += w->ctr[k].affected;
    }
    printf("%s seed %llu: uncertain=%u (value bounded above only %u, spec unchecked %u)%s\n",
           what, (unsigned long long)r->seed, r->uncertain, w->bounded_only,
           w->spec_unchecked, w->uncertain);
    if (w->mode & M_REPL) {
        herd_repl_stats_t rt = {0};
        for (int i = 0; i < w->nslots; i++) {
            herd_node_t *n = regsim_node(w->rs, i);
            herd_repl_stats_t s;
            if (n == NULL || herd_repl_stats(n, &s) != 0)
                continue;
            rt.puts_out += s.puts_out, rt.promoted += s.promoted, rt.queries += s.queries;
            rt.query_timeouts += s.query_timeouts, rt.handed_over += s.handed_over;
            rt.unreplicated += s.unreplicated;
        }
        printf("%s seed %llu: replication on live nodes: puts %llu promoted %llu queries %llu "
               "(timed out %llu) handed over %llu unreplicated %llu | replies under-replicated "
               "%llu\n",
               what, (unsigned long long)r->seed, (unsigned long long)rt.puts_out,
               (unsigned long long)rt.promoted, (unsigned long long)rt.queries,
               (unsigned long long)rt.query_timeouts, (unsigned long long)rt.handed_over,
               (unsigned long long)rt.unreplicated, (unsigned long long)w->underreplicated);
    }
    printf("%s seed %llu: t=%llu counters %d acked %llu unknown %llu notsent %llu affected %d "
           "| joins %u leaves %u crashes %u partitions %u | live nodes: started "
           "%llu committed %llu aborted %llu rejected %llu received %llu promoted %llu "
           "forwarded %llu starts %llu | conflicts %u | errs timeout %llu noproc %llu "
           "notconn %llu uncertain %llu | lookups failed: noent %llu notconn %llu other %llu | stale reads %llu "
           "children held at a stop after leave %llu\n",
           what, (unsigned long long)r->seed, (unsigned long long)regsim_now(w->rs), w->nctr,
           (unsigned long long)acked, (unsigned long long)unknown,
           (unsigned long long)notsent, affected, w->joins, w->leaves, w->crashes,
           w->partitions, (unsigned long long)t.started, (unsigned long long)t.committed,
           (unsigned long long)t.aborted, (unsigned long long)t.rejected,
           (unsigned long long)t.received, (unsigned long long)t.promoted,
           (unsigned long long)t.forwarded, (unsigned long long)t.starts,
           regsim_exits(w->rs, HERD_REASON_NAME_CONFLICT),
           (unsigned long long)w->errs[(unsigned)-HERD_ETIMEDOUT & 31u],
           (unsigned long long)w->errs[(unsigned)-HERD_ENOPROC & 31u],
           (unsigned long long)w->errs[(unsigned)-HERD_ENOTCONN & 31u],
           (unsigned long long)w->errs[(unsigned)-HERD_EUNCERTAIN & 31u],
           (unsigned long long)w->sync_errs[(unsigned)-HERD_ENOENT & 31u],
           (unsigned long long)w->sync_errs[(unsigned)-HERD_ENOTCONN & 31u],
           (unsigned long long)(w->lookups_failed - w->sync_errs[(unsigned)-HERD_ENOENT & 31u] -
                                w->sync_errs[(unsigned)-HERD_ENOTCONN & 31u]),
           (unsigned long long)w->stale_reads, (unsigned long long)w->taken_after_leave);
}

/* ---- the random cases ---------------------------------------------------------------- */

static int churn(rs_run_t *r, int mode, uint64_t duration)
{
    world_opts_t o = {.slots = SLOTS,
                      .initial = (int)(3 + r->seed % 2),
                      .mode = mode,
                      .drop_pm = 50,
                      .dup_pm = 20,
                      .dcfg = {.reconcile_ms = 500}};
    if (!world_make(r, &o))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int initial = (int)regsim_range(rs, 12, 24);
    for (int k = 0; k < initial; k++)
        if (!ctr_start(r, random_slot(w, N_UP)))
            return 0;
    uint64_t end = regsim_now(rs) + duration;
    uint64_t next = regsim_now(rs) + regsim_range(rs, 200, 600);
    while (regsim_now(rs) < end) {
        if (!round_(r, 10))
            return 0;
        if (regsim_now(rs) >= next) {
            if (!random_event(r))
                return 0;
            next = regsim_now(rs) + regsim_range(rs, 150, 700);
        }
    }
    if (mode & M_NOCHECK) {
        regsim_heal(rs);
        regsim_unblock_all(rs);
        w->no_new_calls = 1;
        RS_CHECK_OK(r, regsim_run_for(rs, 5000));
        return 1;
    }
    if (!quiesce(r, "after churn") || !final_values(r, !(mode & M_CRASH) || (mode & M_REPL)))
        return 0;
    verbose(r, mode & M_REPL3                      ? "replicated3_crashes"
               : (mode & M_REPL) && (mode & M_PART)   ? "replicated_mixed"
               : mode & M_REPL                       ? "replicated_crashes"
               : (mode & M_CRASH) && (mode & M_PART) ? "mixed"
               : mode & M_CRASH                    ? "crashes"
               : mode & M_PART                     ? "partitions"
               : mode & M_RAW_LEAVE                ? "graceful"
                                                   : "graceful_acked");
    world_close();
    return 1;
}

static int scen_graceful(rs_run_t *r)
{
    return churn(r, M_RAW_LEAVE, 6000);
}

static int scen_graceful_acked(rs_run_t *r)
{
    return churn(r, 0, 6000);
}

static int scen_crashes(rs_run_t *r)
{
    return churn(r, M_CRASH, 6000);
}

/* - replicated_crashes: crashes, with counters keeping 2 copies of their
 *   state; a node crashes (or a leaving one stops) only while replication
 *   is settled, and every value is checked exactly: no acknowledged
 *   increment is lost. */
static int scen_replicated_crashes(rs_run_t *r)
{
    return churn(r, M_CRASH | M_REPL, 6000);
}

/* - replicated_mixed: the same with partitions (some longer than the
 *   failure detector's forget time) and heals: copies run on both sides and
 *   merge at the heal; still every value is checked exactly. */
static int scen_replicated_mixed(rs_run_t *r)
{
    return churn(r, M_CRASH | M_PART | M_REPL, 6000);
}

/* - replicated3_crashes: counters keep 3 copies and crashes take two nodes
 *   at once (while replication is settled and 4 or more are up): still
 *   every value is checked exactly. */
static int scen_replicated3_crashes(rs_run_t *r)
{
    return churn(r, M_CRASH | M_REPL | M_REPL3, 6000);
}

static int scen_partitions(rs_run_t *r)
{
    return churn(r, M_PART, 6000);
}

static int scen_mixed(rs_run_t *r)
{
    return churn(r, M_CRASH | M_PART, 6000);
}

typedef struct det {
    uint64_t trace, shape, delivered, now, state, books;
} det_t;

static int det_once(rs_run_t *r, det_t *out)
{
    if (!churn(r, M_CRASH | M_PART | M_NOCHECK, 4000))
        return 0;
    out->trace = regsim_trace_hash(r->rs);
    out->shape = regsim_shape_hash(r->rs);
    out->delivered = regsim_delivered(r->rs);
    out->now = regsim_now(r->rs);
    out->state = regsim_state_hash(r->rs);
    out->books = 0;
    for (int k = 0; k < g_w.nctr; k++)
        out->books = out->books * 31 + g_w.ctr[k].acked * 7 + g_w.ctr[k].unknown;
    world_close();
    return 1;
}

static int scen_determinism(rs_run_t *r)
{
    det_t a, b;
    if (!det_once(r, &a))
        return 0;
    regsim_free(r->rs);
    r->rs = NULL;
    if (!det_once(r, &b))
        return 0;
    RS_CHECK(r, a.delivered == b.delivered && a.shape == b.shape && a.now == b.now,
             "deliveries differ: %llu vs %llu frames, ended at %llu vs %llu",
             (unsigned long long)a.delivered, (unsigned long long)b.delivered,
             (unsigned long long)a.now, (unsigned long long)b.now);
    RS_CHECK(r, a.trace == b.trace, "same deliveries, different frame bytes");
    RS_CHECK(r, a.state == b.state, "different final registries");
    RS_CHECK(r, a.books == b.books, "different call outcomes");
    return 1;
}

/* ---- targeted cases ------------------------------------------------------------------- */

#define T_NEW 3 /* the node that joins: node4 */

static int all_ok(world_t *w, char *why, size_t cap);

/* Three nodes up, counters with some increments, settled; node4 not started. */
static int targeted_setup(rs_run_t *r, const herd_dsup_config_t *dcfg, uint32_t down_ms,
                          int counters)
{
    world_opts_t o = {.slots = 4, .initial = 3, .mode = 0, .drop_pm = 0, .dup_pm = 0,
                      .down_ms = down_ms};
    if (dcfg)
        o.dcfg = *dcfg;
    if (!world_make(r, &o))
        return 0;
    world_t *w = &g_w;
    for (int k = 0; k < counters; k++)
        if (!ctr_start(r, (int)regsim_range(w->rs, 0, 2)))
            return 0;
    char why[400];
    uint64_t deadline = regsim_now(w->rs) + 10000;
    while (!all_ok(w, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(w->rs) < deadline, "the counters did not settle: %s", why);
        if (!round_(r, 10))
            return 0;
    }
    for (int k = 0; k < 20; k++)
        if (!round_(r, 10))
            return 0;
    return 1;
}

/* targeted_setup with 24 counters, then node4 starts (the moves' target). */
static int targeted_join(rs_run_t *r)
{
    if (!targeted_setup(r, NULL, 0, 24))
        return 0;
    RS_CHECK_OK(r, regsim_start(g_w.rs, T_NEW));
    g_w.node[T_NEW].state = N_UP;
    return 1;
}

typedef struct moving {
    int n;
    char name[64][24];
    herd_child_state_t state[64];
} moving_t;

static int collect_state(void *data, const herd_child_view_t *c)
{
    moving_t *m = data;
    if ((c->state == HERD_CHILD_MOVING || c->state == HERD_CHILD_ARRIVING) && m->n < 64) {
        snprintf(m->name[m->n], 24, "%s", c->name);
        m->state[m->n++] = c->state;
    }
    return 0;
}

static moving_t moves_of(world_t *w, int i)
{
    moving_t m;
    m.n = 0;
    herd_node_t *n = regsim_node(w->rs, i);
    if (n)
        herd_which_children(n, collect_state, &m);
    return m;
}

static int has_state(const moving_t *m, const char *name, herd_child_state_t st)
{
    for (int k = 0; k < m->n; k++)
        if (m->state[k] == st && strcmp(m->name[k], name) == 0)
            return 1;
    return 0;
}

/* Run rounds until some node has a child moving to node4 (an offer went
 * out); returns that node's index, or -1 with r->why set. */
static int until_offer(rs_run_t *r, uint64_t deadline)
{
    world_t *w = &g_w;
    while (regsim_now(w->rs) < deadline) {
        for (int i = 0; i < 3; i++) {
            moving_t m = moves_of(w, i);
            if (m.n)
                return i;
        }
        if (!round_(r, 5))
            return -1;
    }
    snprintf(r->why, sizeof(r->why), "no offer to %s", regsim_name(w->rs, T_NEW));
    return -1;
}

/* Run until node4 has an arriving child from node `from` (any when < 0);
 * returns its name's counter index, or -1. */
static int until_arriving(rs_run_t *r, int from, uint64_t deadline)
{
    world_t *w = &g_w;
    while (regsim_now(w->rs) < deadline) {
        moving_t t = moves_of(w, T_NEW);
        for (int k = 0; k < t.n; k++) {
            if (t.state[k] != HERD_CHILD_ARRIVING)
                continue;
            for (int i = 0; i < 3; i++) {
                if (from >= 0 && i != from)
                    continue;
                moving_t o = moves_of(w, i);
                if (has_state(&o, t.name[k], HERD_CHILD_MOVING))
                    return ctr_index(w, t.name[k]);
            }
        }
        if (!round_(r, 5))
            return -1;
    }
    snprintf(r->why, sizeof(r->why), "%s never had an arriving copy", regsim_name(w->rs, T_NEW));
    return -1;
}

static herd_handoff_stats_t hstats(world_t *w, int i)
{
    herd_handoff_stats_t s = {0};
    herd_node_t *n = regsim_node(w->rs, i);
    if (n)
        herd_handoff_stats(n, &s);
    return s;
}

static void block_all(world_t *w, int from, int on)
{
    for (int j = 0; j < w->nslots; j++)
        if (j != from)
            regsim_block(w->rs, from, j, on);
}

/* Every counter's value, strictly, after quiescence. */
static int targeted_end(rs_run_t *r, const char *what, int strict)
{
    if (!quiesce(r, what) || !final_values(r, strict))
        return 0;
    verbose(r, what);
    world_close();
    return 1;
}

/* The target crashes before its accept can reach anyone. */
static int scen_target_dies_before_accept(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int o = until_offer(r, regsim_now(rs) + 3000);
    if (o < 0)
        return 0;
    block_all(w, T_NEW, 1); /* nothing of node4 gets out any more */
    herd_handoff_stats_t before = hstats(w, o);
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 60)));
    moving_t m = moves_of(w, o);
    RS_CHECK(r, m.n > 0, "the move from %s ended while its target was mute", regsim_name(rs, o));
    if (!node_crash(r, T_NEW))
        return 0;
    /* the old node sees it down: every move to it aborts, the copies run on */
    uint64_t deadline = regsim_now(rs) + 3000;
    while (moves_of(w, o).n) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s still moving children to a dead target",
                 regsim_name(rs, o));
        if (!round_(r, 5))
            return 0;
    }
    herd_handoff_stats_t after = hstats(w, o);
    RS_CHECK(r, after.aborted - before.aborted >= (uint64_t)m.n,
             "%d moves in flight, %llu aborted", m.n,
             (unsigned long long)(after.aborted - before.aborted));
    RS_CHECK(r, after.committed == before.committed, "a move to a dead target committed");
    for (int k = 0; k < m.n; k++) {
        herd_pid_t pid;
        herd_node_t *n = regsim_node(rs, o);
        RS_CHECK(r, herd_whereis(n, m.name[k], &pid, NULL) == 0 && !herd_is_frozen(n, pid) &&
                        herd_is_alive(n, pid),
                 "%s: not running unfrozen on %s after the abort", m.name[k], regsim_name(rs, o));
    }
    return targeted_end(r, "target died before accepting", 1);
}

/* The target accepted; its accept never reaches the old node; it crashes. */
static int scen_target_dies_after_accept(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    block_all(w, T_NEW, 1);
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 5, 60)));
    RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    if (!node_crash(r, T_NEW))
        return 0;
    /* the moves abort once it is seen down (before then, what it sent
     * stays blocked); the old copies hold the state: nothing is lost */
    uint64_t deadline = regsim_now(rs) + 3000;
    for (;;) {
        int moving = 0;
        for (int i = 0; i < 3; i++)
            moving += moves_of(w, i).n;
        if (!moving)
            break;
        RS_CHECK(r, regsim_now(rs) < deadline, "moves to a dead target still in flight");
        if (!round_(r, 5))
            return 0;
    }
    return targeted_end(r, "target died after accepting", 1);
}

/* The old node committed; the commit never reaches the target; it crashes:
 * the state of what it had accepted is gone, the counter restarts once. */
static int scen_target_dies_after_commit(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    for (int i = 0; i < 3; i++)
        regsim_block(rs, i, T_NEW, 1); /* nothing reaches node4 any more */
    uint64_t deadline = regsim_now(rs) + 3000;
    while (!(hstats(w, 0).committed + hstats(w, 1).committed + hstats(w, 2).committed)) {
        RS_CHECK(r, regsim_now(rs) < deadline, "no move committed");
        if (!round_(r, 5))
            return 0;
    }
    if (!node_crash(r, T_NEW))
        return 0;
    return targeted_end(r, "target died after the commit", 0);
}

/* The old node dies after the target accepted: before the accept reached it
 * (commit_first 0), or after it committed (1). The target promotes its copy. */
static int old_dies(rs_run_t *r, int commit_first)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    /* the old node: the one moving it */
    int o = -1;
    for (int i = 0; i < 3 && o < 0; i++) {
        moving_t m = moves_of(w, i);
        if (has_state(&m, w->ctr[k].name, HERD_CHILD_MOVING))
            o = i;
    }
    RS_CHECK(r, o >= 0, "no old node for %s", w->ctr[k].name);
    herd_handoff_stats_t before = hstats(w, o);
    if (commit_first) {
        regsim_block(rs, o, T_NEW, 1); /* its commit (and all else) never arrives */
        uint64_t deadline = regsim_now(rs) + 3000;
        while (hstats(w, o).committed == before.committed) {
            RS_CHECK(r, regsim_now(rs) < deadline, "%s never committed", regsim_name(rs, o));
            if (!round_(r, 5))
                return 0;
        }
    } else {
        regsim_block(rs, T_NEW, o, 1); /* its accept never arrives */
    }
    RS_CHECK_OK(r, regsim_run_for(rs, 5));
    /* what node4 accepted keeps its state through o's crash: promoted */
    moving_t t = moves_of(w, T_NEW);
    before_loss(w, o, 1);
    for (int j = 0; j < t.n; j++) {
        int c = ctr_index(w, t.name[j]);
        if (c >= 0 && t.state[j] == HERD_CHILD_ARRIVING)
            w->ctr[c].affected = 0;
    }
    RS_CHECK(r, has_state(&t, w->ctr[k].name, HERD_CHILD_ARRIVING),
             "%s no longer arriving on %s", w->ctr[k].name, regsim_name(rs, T_NEW));
    RS_CHECK_OK(r, regsim_crash(rs, o));
    w->node[o].state = N_OFF;
    w->node[o].client_alive = 0;
    w->crashes++;
    herd_handoff_stats_t tb = hstats(w, T_NEW);
    uint64_t deadline = regsim_now(rs) + 3000;
    while (hstats(w, T_NEW).promoted == tb.promoted) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s never promoted its copy of %s",
                 regsim_name(rs, T_NEW), w->ctr[k].name);
        if (!round_(r, 5))
            return 0;
    }
    return targeted_end(r, commit_first ? "old node died after commit"
                                        : "old node died after accept",
                        0);
}

static int scen_old_dies_after_accept(rs_run_t *r)
{
    return old_dies(r, 0);
}

static int scen_old_dies_after_commit(rs_run_t *r)
{
    return old_dies(r, 1);
}

/* The accept is held back past the handoff timeout. */
static int scen_accept_after_abort(rs_run_t *r)
{
    herd_dsup_config_t d = {.handoff_timeout_ms = 300, .reconcile_ms = 500};
    if (!targeted_setup(r, &d, 1500, 24))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    RS_CHECK_OK(r, regsim_start(rs, T_NEW));
    w->node[T_NEW].state = N_UP;
    RS_CHECK_OK(r, regsim_run_until_members(rs, regsim_now(rs) + 5000));
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    block_all(w, T_NEW, 1);
    uint64_t ab = 0;
    for (int i = 0; i < 3; i++)
        ab += hstats(w, i).aborted;
    RS_CHECK_OK(r, regsim_run_for(rs, 900));
    RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    uint64_t aa = 0;
    for (int i = 0; i < 3; i++)
        aa += hstats(w, i).aborted;
    RS_CHECK(r, aa > ab, "no move aborted while the accepts were held back");
    block_all(w, T_NEW, 0);
    return targeted_end(r, "accept after abort", 1);
}

/* The commit is held back, the two nodes split until the target promoted
 * its copy, then heal: the late commit must change nothing. */
static int scen_late_commit(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    int o = -1;
    for (int i = 0; i < 3 && o < 0; i++) {
        moving_t m = moves_of(w, i);
        if (has_state(&m, w->ctr[k].name, HERD_CHILD_MOVING))
            o = i;
    }
    RS_CHECK(r, o >= 0, "no old node");
    herd_handoff_stats_t before = hstats(w, o);
    regsim_block(rs, o, T_NEW, 1);
    uint64_t deadline = regsim_now(rs) + 3000;
    while (hstats(w, o).committed == before.committed) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s never committed", regsim_name(rs, o));
        if (!round_(r, 5))
            return 0;
    }
    for (int i = 0; i < 4; i++) /* now o is cut off from everyone */
        regsim_set_group(rs, i, i == o ? 1 : 2);
    herd_handoff_stats_t tb = hstats(w, T_NEW);
    deadline = regsim_now(rs) + 5000;
    while (hstats(w, T_NEW).promoted == tb.promoted) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s never promoted (no down of %s seen)",
                 regsim_name(rs, T_NEW), regsim_name(rs, o));
        if (!round_(r, 5))
            return 0;
    }
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 500)));
    regsim_heal(rs); /* the commit arrives late */
    regsim_unblock_all(rs);
    return targeted_end(r, "late commit", 1);
}

/* Handoff messages sent again by hand after committed moves. */
typedef struct hv {
    int n;
    herd_handoff_view_t v[64];
} hv_t;

static int hv_add(void *data, const herd_handoff_view_t *h)
{
    hv_t *x = data;
    if (x->n < 64)
        x->v[x->n++] = *h;
    return 0;
}

static int send_ho(herd_node_t *from, const char *to, uint8_t kind, uint64_t id,
                   const char *name, int with_serial, uint64_t serial)
{
    wire_writer_t wr;
    wire_writer_init(&wr);
    wire_put_u8(&wr, kind);
    wire_put_u64(&wr, id);
    wire_put_str(&wr, name);
    if (with_serial)
        wire_put_u64(&wr, serial);
    size_t len;
    uint8_t *buf = wire_writer_take(&wr, &len);
    if (buf == NULL)
        return HERD_ENOMEM;
    int rc = herd_cluster_send_app(from, herd_node_id_of(to), HANDOFF_APP, buf, len);
    free(buf);
    return rc;
}

static int scen_duplicate_messages(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    char why[400];
    uint64_t deadline = regsim_now(rs) + 10000;
    while (!all_ok(w, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(rs) < deadline, "not settled after the join: %s", why);
        if (!round_(r, 10))
            return 0;
    }
    const char *tname = regsim_name(rs, T_NEW);
    int sent = 0;
    for (int i = 0; i < 3; i++) {
        hv_t hv = {0};
        herd_node_t *n = regsim_node(rs, i);
        herd_handoffs(n, hv_add, &hv);
        for (int j = 0; j < hv.n; j++) {
            herd_handoff_view_t *h = &hv.v[j];
            if (strcmp(h->target, tname) != 0 || strcmp(h->phase, "committed") != 0)
                continue;
            herd_pid_t pid;
            RS_CHECK_OK(r, herd_whereis(n, h->name, &pid, NULL));
            /* commit again; abort after commit; an accept echo; a commit of
             * a made-up id; an offer-less accept of a made-up id */
            RS_CHECK_OK(r, send_ho(n, tname, 5, h->id, h->name, 0, 0));
            RS_CHECK_OK(r, send_ho(n, tname, 4, h->id, h->name, 0, 0));
            RS_CHECK_OK(r, send_ho(n, tname, 5, h->id + 1000, h->name, 0, 0));
            RS_CHECK_OK(r, send_ho(regsim_node(rs, T_NEW), regsim_name(rs, i), 2, h->id,
                                   h->name, 1, pid.serial));
            RS_CHECK_OK(r, send_ho(regsim_node(rs, T_NEW), regsim_name(rs, i), 2,
                                   h->id + 1000, h->name, 1, pid.serial));
            sent++;
        }
    }
    RS_CHECK(r, sent > 0, "no committed move to %s", tname);
    for (int k = 0; k < 30; k++)
        if (!round_(r, 10))
            return 0;
    RS_CHECK(r, all_ok(w, why, sizeof(why)), "after the duplicates: %s", why);
    return targeted_end(r, "duplicate messages", 1);
}

/* {node1} | {node2, node3}: each side runs every counter; increments on both
 * sides; heal. */
static int scen_target_already_running(rs_run_t *r)
{
    if (!targeted_setup(r, NULL, 0, 24))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int lone = (int)regsim_range(rs, 0, 2);
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, i == lone ? 1 : 2);
    /* both sides restart the other's counters */
    uint64_t deadline = regsim_now(rs) + 5000;
    for (;;) {
        int both = 1;
        for (int k = 0; k < w->nctr && both; k++)
            for (int i = 0; i < 3 && both; i++)
                both = herd_whereis(regsim_node(rs, i), w->ctr[k].name, NULL, NULL) == 0;
        if (both)
            break;
        RS_CHECK(r, regsim_now(rs) < deadline, "the sides did not both run every counter");
        if (!round_(r, 10))
            return 0;
    }
    for (int k = 0; k < 100; k++)
        if (!round_(r, 10))
            return 0;
    regsim_heal(rs);
    uint64_t rej = 0;
    unsigned conflicts = regsim_exits(rs, HERD_REASON_NAME_CONFLICT);
    if (!quiesce(r, "target already running") || !final_values(r, 1))
        return 0;
    for (int i = 0; i < 3; i++)
        rej += hstats(w, i).rejected;
    RS_CHECK(r, regsim_exits(rs, HERD_REASON_NAME_CONFLICT) > conflicts,
             "no copy stopped for a name conflict after the heal");
    if (getenv("HERD_SIM_VERBOSE"))
        printf("target_already_running seed %llu: %llu offers rejected, %u name conflicts\n",
               (unsigned long long)r->seed, (unsigned long long)rej,
               regsim_exits(rs, HERD_REASON_NAME_CONFLICT) - conflicts);
    verbose(r, "target already running");
    world_close();
    return 1;
}

/* {node1} | {node2, node3}: the second side restarts node1's counters; then
 * node4 joins that side and takes its share. Nothing conflicts within a
 * side, so no copy may stop for a name conflict before the heal; after it,
 * the merged counts are exact. */
static int scen_join_during_partition(rs_run_t *r)
{
    if (!targeted_setup(r, NULL, 0, 24))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    static const int group[4] = {1, 2, 2, 2};
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, group[i]);
    uint64_t deadline = regsim_now(rs) + 5000;
    for (;;) {
        int all = 1;
        for (int k = 0; k < w->nctr && all; k++)
            all = herd_whereis(regsim_node(rs, 1), w->ctr[k].name, NULL, NULL) == 0;
        if (all)
            break;
        RS_CHECK(r, regsim_now(rs) < deadline, "node2's side did not restart node1's counters");
        if (!round_(r, 10))
            return 0;
    }
    unsigned conflicts = regsim_exits(rs, HERD_REASON_NAME_CONFLICT);
    if (!node_join(r, T_NEW))
        return 0;
    for (int k = 0; k < 250; k++)
        if (!round_(r, 10))
            return 0;
    RS_CHECK(r, regsim_exits(rs, HERD_REASON_NAME_CONFLICT) == conflicts,
             "%u copies stopped for a name conflict inside one side of the split (node4 "
             "joined it)",
             regsim_exits(rs, HERD_REASON_NAME_CONFLICT) - conflicts);
    regsim_heal(rs);
    return targeted_end(r, "join during a partition", 1);
}

/* ---- targeted cases for the fixes of the failure table ------------------------------ */

/* Where node i runs child `name`: 1 with its pid and state, 0 if it does not. */
/* Nodes (other than `except`) that run child `name`, in any state. */
static int copies_of(world_t *w, const char *name, int except)
{
    int n = 0;
    for (int i = 0; i < w->nslots; i++)
        n += i != except && kid_on(w, i, name).found;
    return n;
}

/* The node moving counter k (a child MOVING there), or -1. */
static int mover_of(world_t *w, int k)
{
    for (int i = 0; i < w->nslots; i++)
        if (i != T_NEW && kid_on(w, i, w->ctr[k].name).state == HERD_CHILD_MOVING &&
            kid_on(w, i, w->ctr[k].name).found)
            return i;
    return -1;
}

/* Crash node o as a targeted case does: what node4 holds arriving or
 * running (it accepted it: its state survives o) stays checked exactly. */
static int crash_keeping_target(rs_run_t *r, int o)
{
    world_t *w = &g_w;
    trace("crash %s", regsim_name(w->rs, o));
    before_loss(w, o, 1);
    for (int k = 0; k < w->nctr; k++)
        if (kid_on(w, T_NEW, w->ctr[k].name).found)
            w->ctr[k].affected = 0;
    RS_CHECK_OK(r, regsim_crash(w->rs, o));
    w->node[o].state = N_OFF;
    w->node[o].client_alive = 0;
    w->crashes++;
    return 1;
}

static uint64_t total_registry(world_t *w, int which)
{
    uint64_t t = 0;
    for (int i = 0; i < w->nslots; i++) {
        herd_registry_stats_t s;
        herd_node_t *n = regsim_node(w->rs, i);
        if (n && herd_registry_stats(n, &s) == 0)
            t += which ? s.merges_redirected : s.conflicts_resolved;
    }
    return t;
}

/* Fix 1: the old node's frames reach the target alone from its first offer
 * on; it commits; once the target has the commit, the old node crashes. The
 * switch travelled to the target ahead of the commit and the target claimed
 * the name itself: every survivor resolves each committed counter to the
 * target's copy, which holds every acknowledged increment. */
static int scen_switch_reaches_target_before_commit(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int o = until_offer(r, regsim_now(rs) + 3000);
    if (o < 0)
        return 0;
    for (int j = 0; j < 3; j++)
        if (j != o)
            regsim_block(rs, o, j, 1);
    moving_t m = moves_of(w, o);
    int done[64] = {0}, ndone = 0;
    uint64_t deadline = regsim_now(rs) + 3000;
    while (ndone == 0) {
        RS_CHECK(r, regsim_now(rs) < deadline, "no move from %s committed on %s",
                 regsim_name(rs, o), regsim_name(rs, T_NEW));
        if (!round_(r, 5))
            return 0;
        for (int j = 0; j < m.n; j++) {
            find_kid_t f = kid_on(w, T_NEW, m.name[j]);
            done[j] = f.found && f.state == HERD_CHILD_RUNNING;
            ndone += done[j];
        }
    }
    if (!crash_keeping_target(r, o))
        return 0;
    deadline = regsim_now(rs) + 2000;
    for (int j = 0; j < m.n; j++) {
        if (!done[j])
            continue;
        herd_pid_t tpid = kid_on(w, T_NEW, m.name[j]).pid;
        for (int i = 0; i < 4; i++) {
            herd_pid_t pid = HERD_PID_NONE;
            while (i != o && (herd_whereis(regsim_node(rs, i), m.name[j], &pid, NULL) != 0 ||
                              !herd_pid_equal(pid, tpid))) {
                RS_CHECK(r, regsim_now(rs) < deadline,
                         "%s committed on %s: %s does not resolve it to that copy",
                         m.name[j], regsim_name(rs, T_NEW), regsim_name(rs, i));
                if (!round_(r, 5))
                    return 0;
            }
        }
        RS_CHECK(r, copies_of(w, m.name[j], T_NEW) == 0 &&
                        herd_pid_equal(kid_on(w, T_NEW, m.name[j]).pid, tpid),
                 "%s: a second copy started, or the committed one went", m.name[j]);
    }
    return targeted_end(r, "switch reaches the target before the commit", 0);
}

/* Fix 6: the old node crashes after the target accepted (its accept held
 * back) and restarts at once with a new incarnation, before anyone saw it
 * down: the target counts the old node as gone and promotes its copy. */
static int scen_old_node_restarts_fast(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    int o = mover_of(w, k);
    RS_CHECK(r, o >= 0, "no old node for %s", w->ctr[k].name);
    regsim_block(rs, T_NEW, o, 1); /* its accept never arrives */
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 5, 40)));
    RS_CHECK(r, kid_on(w, T_NEW, w->ctr[k].name).state == HERD_CHILD_ARRIVING,
             "%s no longer arriving on %s", w->ctr[k].name, regsim_name(rs, T_NEW));
    herd_handoff_stats_t tb = hstats(w, T_NEW);
    if (!crash_keeping_target(r, o))
        return 0;
    RS_CHECK_OK(r, regsim_start(rs, o)); /* at once: nobody saw it down */
    regsim_block(rs, T_NEW, o, 0);
    w->node[o].state = N_UP;
    uint64_t deadline = regsim_now(rs) + 3000;
    while (hstats(w, T_NEW).promoted == tb.promoted) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s never promoted %s after %s restarted",
                 regsim_name(rs, T_NEW), w->ctr[k].name, regsim_name(rs, o));
        RS_CHECK(r, kid_on(w, T_NEW, w->ctr[k].name).found,
                 "%s dropped its copy of %s, the only one", regsim_name(rs, T_NEW),
                 w->ctr[k].name);
        if (!round_(r, 5))
            return 0;
    }
    return targeted_end(r, "old node restarts fast", 0);
}

/* Fix 2: the old node is cut off from everyone right after the target
 * accepted; the target's frames to the other survivors are held back until
 * one of them restarts the counter from its spec (a newer registration).
 * Released: one copy survives, with the name's first registration time, and
 * holds every acknowledged increment of every copy. */
static int scen_promoted_copy_meets_restarted_copy(rs_run_t *r)
{
    if (!targeted_join(r))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = until_arriving(r, -1, regsim_now(rs) + 3000);
    if (k < 0)
        return 0;
    const char *name = w->ctr[k].name;
    int o = mover_of(w, k);
    RS_CHECK(r, o >= 0, "no old node for %s", name);
    uint64_t first_hlc = 0;
    uint8_t gen;
    RS_CHECK_OK(r, herd_registry_stamp(regsim_node(rs, o), name, &first_hlc, &gen));
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, i == o ? 1 : 2);
    for (int j = 0; j < 3; j++)
        if (j != o)
            regsim_block(rs, T_NEW, j, 1);
    herd_handoff_stats_t tb = hstats(w, T_NEW);
    unsigned conflicts = regsim_exits(rs, HERD_REASON_NAME_CONFLICT);
    uint64_t deadline = regsim_now(rs) + 5000;
    int restarted = -1;
    while (restarted < 0 || hstats(w, T_NEW).promoted == tb.promoted) {
        RS_CHECK(r, regsim_now(rs) < deadline,
                 "%s: promoted on %s %s, restarted from its spec %s", name,
                 regsim_name(rs, T_NEW),
                 hstats(w, T_NEW).promoted > tb.promoted ? "yes" : "no",
                 restarted >= 0 ? "yes" : "no");
        if (!round_(r, 5))
            return 0;
        for (int j = 0; j < 3 && restarted < 0; j++)
            if (j != o && kid_on(w, j, name).found)
                restarted = j;
    }
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 100, 400))); /* both count */
    RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    regsim_unblock_all(rs);
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 300)));
    regsim_heal(rs);
    if (!targeted_end(r, "promoted copy meets a restarted copy", 1))
        return 0;
    uint64_t hlc = 0;
    for (int i = 0; i < 4; i++) {
        RS_CHECK_OK(r, herd_registry_stamp(regsim_node(rs, i), name, &hlc, &gen));
        RS_CHECK(r, hlc == first_hlc,
                 "%s on %s: registered at %llu, first registered at %llu: the newer copy won",
                 name, regsim_name(rs, i), (unsigned long long)hlc,
                 (unsigned long long)first_hlc);
    }
    RS_CHECK(r, regsim_exits(rs, HERD_REASON_NAME_CONFLICT) > conflicts,
             "no copy of %s stopped for a name conflict", name);
    return 1;
}

/* {node1} | {node2, node3} (node4's slot on the second side) until both
 * sides run every counter, then 150-400 ms of increments on both. orig[k]:
 * the node that ran counter k before the split (its copy is the older
 * registration: it wins the conflict at the heal). */
static int split_both_run(rs_run_t *r, int orig[MAX_CTR])
{
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    for (int k = 0; k < w->nctr; k++) {
        orig[k] = -1;
        for (int i = 0; i < 3; i++)
            if (kid_on(w, i, w->ctr[k].name).found)
                orig[k] = i;
    }
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, i == 0 ? 1 : 2);
    uint64_t deadline = regsim_now(rs) + 6000;
    for (;;) {
        int both = 1;
        for (int k = 0; k < w->nctr && both; k++)
            both = kid_on(w, 0, w->ctr[k].name).found &&
                   (kid_on(w, 1, w->ctr[k].name).found || kid_on(w, 2, w->ctr[k].name).found);
        if (both)
            break;
        RS_CHECK(r, regsim_now(rs) < deadline, "the sides did not both run every counter");
        if (!round_(r, 10))
            return 0;
    }
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 150, 400)));
    RS_CHECK(r, !w->fail[0], "%.400s", w->fail);
    return 1;
}

/* node4 joins the second side; returns a counter that node `*o` offers it
 * and that `want_loser` (a copy node1 ran first) or not, -1 when none shows
 * within 400 ms of the first offer (the schedule is then not forced this
 * seed), -2 with r->why set when no offer came at all. */
static int offer_of_kind(rs_run_t *r, const int orig[MAX_CTR], int want_loser, int *o)
{
    world_t *w = &g_w;
    RS_CHECK_OK(r, regsim_start(w->rs, T_NEW));
    w->node[T_NEW].state = N_UP;
    if (until_offer(r, regsim_now(w->rs) + 3000) < 0)
        return -2;
    uint64_t deadline = regsim_now(w->rs) + 400;
    while (regsim_now(w->rs) < deadline) {
        for (*o = 1; *o < 3; (*o)++) {
            moving_t m = moves_of(w, *o);
            for (int j = 0; j < m.n; j++) {
                int k = ctr_index(w, m.name[j]);
                if (k >= 0 && m.state[j] == HERD_CHILD_MOVING && (orig[k] == 0) == want_loser)
                    return k;
            }
        }
        if (!round_(r, 5))
            return -2;
    }
    return -1;
}

/* Fix 4: a counter that is moving (to node4) when it becomes a conflict
 * loser (node1's older copy meets it at the heal); the move aborts (node4
 * is mute). A loser is not judged while it moves, and a conflict-frozen
 * child is not offered, so the two freezes cannot overlap: the closest
 * schedule is the judgement after the abort (at the registry's next check;
 * the reconcile may offer it again meanwhile), with the loser's state held
 * on its way to the winner. It is never frozen for both at once, is frozen
 * for the conflict after the abort, and stays frozen (not offered again)
 * until the merge is confirmed; then it stops and the merged counts are
 * exact. */
static int scen_abort_keeps_conflict_freeze(rs_run_t *r)
{
    herd_dsup_config_t d = {.handoff_timeout_ms = 400, .reconcile_ms = 500};
    int orig[MAX_CTR];
    if (!targeted_setup(r, &d, 1000, 24) || !split_both_run(r, orig))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int o;
    int k = offer_of_kind(r, orig, 1, &o);
    if (k == -2)
        return 0;
    block_all(w, T_NEW, 1); /* no accept gets out: the move times out */
    if (k < 0) {
        r->uncertain++; /* no loser among the moves: not forced this seed */
        return targeted_end(r, "abort keeps the conflict freeze (not forced)", 1);
    }
    const char *name = w->ctr[k].name;
    herd_pid_t loser = kid_on(w, o, name).pid;
    herd_node_t *on = regsim_node(rs, o);
    regsim_heal(rs);
    uint64_t deadline = regsim_now(rs) + 3000;
    while (kid_on(w, o, name).state == HERD_CHILD_MOVING) { /* judged once it is back */
        RS_CHECK(r, regsim_now(rs) < deadline, "%s: the move from %s never aborted", name,
                 regsim_name(rs, o));
        RS_CHECK(r, herd_is_alive(on, loser) && !(herd_is_frozen(on, loser) & HERD_FREEZE_CONFLICT),
                 "%s on %s: stopped or frozen for the conflict while it was moving", name,
                 regsim_name(rs, o));
        if (!round_(r, 5))
            return 0;
    }
    /* judged at the registry's next check (the move may be offered again
     * meanwhile, and is judged after that abort) */
    deadline = regsim_now(rs) + 5000;
    while (!(herd_is_frozen(on, loser) & HERD_FREEZE_CONFLICT)) {
        RS_CHECK(r, regsim_now(rs) < deadline && herd_is_alive(on, loser),
                 "%s on %s: %s after the abort, not frozen for the conflict", name,
                 regsim_name(rs, o), herd_is_alive(on, loser) ? "running" : "stopped");
        if (!round_(r, 5))
            return 0;
        RS_CHECK(r, !(herd_is_frozen(on, loser) & HERD_FREEZE_CONFLICT) ||
                        !(herd_is_frozen(on, loser) & HERD_FREEZE_MOVE),
                 "%s on %s: frozen for a move and the conflict at once", name,
                 regsim_name(rs, o));
    }
    regsim_block(rs, o, 0, 1); /* its state, sent this step, waits on its way */
    for (int t = 0; t < 20; t++) { /* the merge is held back: frozen, and not moving */
        find_kid_t f = kid_on(w, o, name);
        RS_CHECK(r, herd_is_alive(on, loser) && herd_is_frozen(on, loser) &&
                        f.state != HERD_CHILD_MOVING,
                 "%s on %s %s while its state had not reached the winner", name,
                 regsim_name(rs, o),
                 !herd_is_alive(on, loser) ? "stopped"
                 : f.state == HERD_CHILD_MOVING ? "moved again" : "thawed");
        if (!round_(r, 5))
            return 0;
    }
    regsim_block(rs, o, 0, 0);
    unsigned conflicts = regsim_exits(rs, HERD_REASON_NAME_CONFLICT);
    deadline = regsim_now(rs) + 3000;
    while (herd_is_alive(on, loser)) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s: the loser on %s never stopped", name,
                 regsim_name(rs, o));
        if (!round_(r, 5))
            return 0;
    }
    RS_CHECK(r, regsim_exits(rs, HERD_REASON_NAME_CONFLICT) > conflicts,
             "%s: the loser stopped, not for a name conflict", name);
    return targeted_end(r, "abort keeps the conflict freeze", 1);
}

/* Fix 3: a winner that moves (to node4) while the loser's state is on its
 * way: the state reaches the winner's old node after the commit and is
 * sent on to the new one (merges_redirected); the counts are exact. */
static int scen_merge_follows_moved_holder(rs_run_t *r)
{
    int orig[MAX_CTR];
    if (!targeted_setup(r, NULL, 1000, 24) || !split_both_run(r, orig))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int o;
    int k = offer_of_kind(r, orig, 0, &o);
    if (k == -2)
        return 0;
    if (k < 0) {
        r->uncertain++;
        regsim_heal(rs);
        return targeted_end(r, "merge follows a moved holder (not forced)", 1);
    }
    const char *name = w->ctr[k].name;
    regsim_block(rs, T_NEW, o, 1); /* the accept waits: the winner stays on o */
    regsim_block(rs, 0, o, 1);     /* the loser's state waits on its way */
    regsim_heal(rs);
    herd_node_t *n0 = regsim_node(rs, 0);
    herd_pid_t loser = kid_on(w, 0, name).pid;
    uint64_t deadline = regsim_now(rs) + 800;
    while (!(herd_is_frozen(n0, loser) & HERD_FREEZE_CONFLICT)) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s on %s: no conflict freeze after the heal",
                 name, regsim_name(rs, 0));
        if (!round_(r, 5))
            return 0;
    }
    regsim_block(rs, T_NEW, o, 0);
    deadline = regsim_now(rs) + 800;
    while (kid_on(w, T_NEW, name).state != HERD_CHILD_RUNNING || kid_on(w, o, name).found) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s never moved from %s to %s", name,
                 regsim_name(rs, o), regsim_name(rs, T_NEW));
        if (!round_(r, 5))
            return 0;
    }
    uint64_t redirected = total_registry(w, 1);
    regsim_block(rs, 0, o, 0);
    deadline = regsim_now(rs) + 3000;
    while (herd_is_alive(n0, loser)) {
        RS_CHECK(r, regsim_now(rs) < deadline, "%s: the loser on %s never stopped", name,
                 regsim_name(rs, 0));
        if (!round_(r, 5))
            return 0;
    }
    RS_CHECK(r, total_registry(w, 1) > redirected,
             "%s: the loser's state reached %s after the move, and was not sent on", name,
             regsim_name(rs, o));
    return targeted_end(r, "merge follows a moved holder", 1);
}

/* Fix 9: a counter's process crashes (no command crashes a counter: the
 * harness kills it, an abnormal exit) three times in a row, so its third
 * restart waits out a back-off. Meanwhile its name stays registered with its first
 * registration time (a frozen holder takes its messages), no other node
 * starts a copy, and the calls made in the back-off are answered by the
 * restarted copy. Its state starts afresh: counted from the crash. */
static int scen_restart_keeps_name(rs_run_t *r)
{
    herd_dsup_config_t d = {.max_restarts = 5, .reconcile_ms = 500};
    if (!targeted_setup(r, &d, 0, 12))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int k = (int)regsim_range(rs, 0, (uint64_t)w->nctr - 1);
    ctr_t *c = &w->ctr[k];
    int on = -1;
    for (int i = 0; i < 3 && on < 0; i++)
        if (kid_on(w, i, c->name).found)
            on = i;
    RS_CHECK(r, on >= 0, "%s runs nowhere", c->name);
    herd_node_t *n = regsim_node(rs, on);
    uint64_t first_hlc, hlc;
    uint8_t gen;
    RS_CHECK_OK(r, herd_registry_stamp(n, c->name, &first_hlc, &gen));
    uint64_t deadline = regsim_now(rs) + CALL_MS + 500;
    while (c->inflight) { /* its books restart with its state */
        RS_CHECK(r, regsim_now(rs) < deadline, "a call to %s never ended", c->name);
        RS_CHECK_OK(r, regsim_run_for(rs, 5));
    }
    herd_handoff_stats_t before = hstats(w, on);
    for (int crash = 0; crash < 3; crash++) { /* back-offs 0, 10, 20 ms */
        while (kid_on(w, on, c->name).state != HERD_CHILD_RUNNING)
            RS_CHECK_OK(r, regsim_step(rs));
        RS_CHECK_OK(r, herd_stop(n, kid_on(w, on, c->name).pid, HERD_REASON_KILLED));
        RS_CHECK_OK(r, regsim_step(rs));
        c->acked = c->unknown = 0; /* its state starts afresh */
    }
    RS_CHECK(r, kid_on(w, on, c->name).state == HERD_CHILD_RESTARTING,
             "%s on %s is %s after its third crash, not restarting", c->name,
             regsim_name(rs, on), herd_child_state_name(kid_on(w, on, c->name).state));
    /* a call by name from its own node now reaches the holder */
    client_msg_t m = {(uint32_t)k, OP_INCR};
    c->inflight = 1, c->ref = 0, c->client = w->node[on].client, c->op = OP_INCR;
    RS_CHECK_OK(r, herd_node_send(n, c->client, &m, sizeof(m)));
    while (kid_on(w, on, c->name).state == HERD_CHILD_RESTARTING) {
        for (int i = 0; i < 3; i++) {
            herd_node_t *x = regsim_node(rs, i);
            RS_CHECK(r, herd_whereis(x, c->name, NULL, NULL) == 0 &&
                            herd_registry_stamp(x, c->name, &hlc, &gen) == 0 &&
                            hlc == first_hlc,
                     "%s restarting on %s: %s does not resolve it with its first "
                     "registration time",
                     c->name, regsim_name(rs, on), regsim_name(rs, i));
            RS_CHECK(r, i == on || !kid_on(w, i, c->name).found, "%s started on %s too",
                     c->name, regsim_name(rs, i));
        }
        RS_CHECK_OK(r, regsim_step(rs));
    }
    deadline = regsim_now(rs) + CALL_MS + 500;
    while (c->inflight) {
        RS_CHECK(r, regsim_now(rs) < deadline, "the call made in the back-off never ended");
        RS_CHECK_OK(r, regsim_step(rs));
    }
    RS_CHECK(r, c->acked == 1, "the incr sent to %s in its back-off was not answered",
             c->name);
    RS_CHECK(r, hstats(w, on).restarts == before.restarts + 3, "%s restarted %llu times",
             c->name, (unsigned long long)(hstats(w, on).restarts - before.restarts));
    RS_CHECK_OK(r, herd_registry_stamp(n, c->name, &hlc, &gen));
    RS_CHECK(r, hlc == first_hlc, "%s lost its first registration time on restart", c->name);
    return targeted_end(r, "restart keeps its name", 1);
}

/* Fix 10: {node1} | {node2, node3}: a terminate via node1 cannot reach the
 * others, so it answers HERD_EUNCERTAIN at its timeout; node1 then crashes
 * with the only record of it: the spec stays (booked uncertain). */
static int scen_terminate_in_partition_then_crash(rs_run_t *r)
{
    if (!targeted_setup(r, NULL, 0, 12))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, i == 0 ? 1 : 2);
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 400)));
    int k = (int)regsim_range(rs, 0, (uint64_t)w->nctr - 1);
    ctr_t *c = &w->ctr[k];
    if (!ctr_terminate(r, k, 0))
        return 0;
    RS_CHECK(r, c->terminated, "the terminate of %s was refused", c->name);
    uint64_t deadline = regsim_now(rs) + TERMINATE_MS + 500;
    while (c->term_status == 1) {
        RS_CHECK(r, regsim_now(rs) < deadline, "the terminate of %s never answered", c->name);
        if (!round_(r, 10))
            return 0;
    }
    RS_CHECK(r, c->term_status == HERD_EUNCERTAIN,
             "the terminate of %s across a split answered %s, not HERD_EUNCERTAIN", c->name,
             herd_strerror(c->term_status));
    const uint8_t *spec;
    size_t len;
    for (int i = 1; i < 3; i++)
        RS_CHECK(r, herd_spec_get(regsim_node(rs, i), c->name, &spec, &len) == 0,
                 "%s lost its spec across the split", regsim_name(rs, i));
    if (!node_crash(r, 0))
        return 0;
    RS_CHECK(r, c->spec_uncertain, "%s: the crash did not book its terminate uncertain",
             c->name);
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 500)));
    regsim_heal(rs);
    if (!node_join(r, 0))
        return 0;
    if (!targeted_end(r, "terminate in a partition, then a crash", 0))
        return 0;
    for (int i = 0; i < 3; i++)
        RS_CHECK(r, herd_spec_get(regsim_node(rs, i), c->name, &spec, &len) == 0,
                 "%s: the removal died with node1, yet %s has no spec", c->name,
                 regsim_name(rs, i));
    return 1;
}

/* Fix 10: all connected, a terminate answers 0; its node crashes at once:
 * the answer means every member holds the removal, so no member has the
 * spec from then on, and the child stops within 200 ms. */
static int scen_terminate_acked_survives_crash(rs_run_t *r)
{
    if (!targeted_setup(r, NULL, 0, 12))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int via = (int)regsim_range(rs, 0, 2);
    int k = (int)regsim_range(rs, 0, (uint64_t)w->nctr - 1);
    ctr_t *c = &w->ctr[k];
    if (!ctr_terminate(r, k, via))
        return 0;
    RS_CHECK(r, c->terminated, "the terminate of %s was refused", c->name);
    uint64_t deadline = regsim_now(rs) + TERMINATE_MS + 500;
    while (c->term_status == 1) {
        RS_CHECK(r, regsim_now(rs) < deadline, "the terminate of %s never answered", c->name);
        RS_CHECK_OK(r, regsim_step(rs));
    }
    RS_CHECK(r, c->term_status == 0, "the terminate of %s answered %s with all connected",
             c->name, herd_strerror(c->term_status));
    if (!node_crash(r, via))
        return 0;
    RS_CHECK(r, !c->spec_uncertain, "%s: an acknowledged terminate booked uncertain", c->name);
    for (int t = 0; t < 200; t++) {
        for (int i = 0; i < 3; i++) {
            const uint8_t *spec;
            size_t len;
            herd_node_t *n = regsim_node(rs, i);
            RS_CHECK(r, n == NULL || herd_spec_get(n, c->name, &spec, &len) != 0,
                     "%s: terminated (acknowledged), yet %s has its spec", c->name,
                     regsim_name(rs, i));
        }
        RS_CHECK(r, copies_of(w, c->name, -1) == 0 || t < 20,
                 "%s: terminated (acknowledged), still runs %d ms later", c->name, t * 10);
        if (!round_(r, 10))
            return 0;
    }
    return targeted_end(r, "an acknowledged terminate survives a crash", 0);
}

/* ---- joins and readiness (readiness.c) ------------------------------------------------ */

/* Whether every running node's supervisor ended its join grace (by
 * readiness or by its fallback) and settled every member's verdict: every
 * wait is bounded. */
static int readiness_settled(rs_run_t *r)
{
    world_t *w = &g_w;
    for (int i = 0; i < w->nslots; i++) {
        herd_node_t *n = regsim_node(w->rs, i);
        dsup_t *d = n && w->node[i].state != N_OFF ? dsup_of(n) : NULL;
        if (d == NULL)
            continue;
        RS_CHECK(r, d->self_ready, "%s never ended its join grace", regsim_name(w->rs, i));
    }
    return 1;
}

/* Three nodes run 24 counters (settled, 3% loss and 1% duplicates from
 * then on); node4 and node5 join 0-150 ms apart while calls go on, and
 * while they sync and announce `disturb` strikes 0-400 ms after the first
 * join. Then quiescence, the usual checks, and the values (exact for
 * every counter no crash could reach). */
static int join_disturbed(rs_run_t *r, int (*disturb)(rs_run_t *r), const char *what,
                          int strict)
{
    world_opts_t o = {.slots = 5, .initial = 3, .mode = 0, .drop_pm = 0, .dup_pm = 0};
    if (!world_make(r, &o))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    for (int k = 0; k < 24; k++)
        if (!ctr_start(r, (int)regsim_range(rs, 0, 2)))
            return 0;
    char why[400];
    uint64_t deadline = regsim_now(rs) + 10000;
    while (!all_ok(w, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(rs) < deadline, "the counters did not settle: %s", why);
        if (!round_(r, 10))
            return 0;
    }
    regsim_set_loss(rs, 30, 10);
    uint64_t second = regsim_range(rs, 0, 150), strike = regsim_range(rs, 0, 400);
    uint64_t t0 = regsim_now(rs);
    if (!node_join(r, 3))
        return 0;
    int joined5 = 0, struck = 0;
    while (!(joined5 && struck)) { /* ends by 400 ms */
        uint64_t at = regsim_now(rs) - t0;
        if (!joined5 && at >= second) {
            if (!node_join(r, 4))
                return 0;
            joined5 = 1;
        }
        if (!struck && at >= strike) {
            if (!disturb(r))
                return 0;
            struck = 1;
        }
        if (!round_(r, 5))
            return 0;
    }
    for (int k = 0; k < 100; k++) /* the joins and the disturbance play out */
        if (!round_(r, 10))
            return 0;
    if (!quiesce(r, what) || !readiness_settled(r) || !final_values(r, strict))
        return 0;
    verbose(r, what);
    world_close();
    return 1;
}

/* A random node (a joiner or an old one) crashes; half the time it
 * starts again (a new start, which syncs and announces anew) 100-600 ms
 * later. */
static int strike_crash(rs_run_t *r)
{
    world_t *w = &g_w;
    int i = random_slot(w, N_UP);
    if (i < 0 || !node_crash(r, i))
        return i < 0 ? 1 : 0;
    if (regsim_range(w->rs, 0, 1) == 0)
        return 1;
    uint64_t end = regsim_now(w->rs) + regsim_range(w->rs, 100, 600);
    while (regsim_now(w->rs) < end)
        if (!round_(r, 5))
            return 0;
    return node_join(r, i);
}

/* The nodes split in two random sides for 200-1500 ms (healed by the
 * rounds): a joiner may announce to one side only, or sync with a member
 * the other side declares down. */
static int strike_partition(rs_run_t *r)
{
    return partition(r, regsim_range(g_w.rs, 200, 1500));
}

/* Joins under a crash: nothing acknowledged is lost where no crash
 * reached, every child runs once, every join grace ends. */
static int scen_join_under_crash(rs_run_t *r)
{
    return join_disturbed(r, strike_crash, "joins under a crash", 0);
}

/* Joins under a partition: no crash, so every value is exact. */
static int scen_join_under_partition(rs_run_t *r)
{
    return join_disturbed(r, strike_partition, "joins under a partition", 1);
}

/* How many of the survivors (node1, node2) run a copy of counter k. */
static int copies_on_survivors(world_t *w, int k)
{
    int n = 0;
    for (int i = 0; i < 2; i++)
        n += kid_on(w, i, w->ctr[k].name).found;
    return n;
}

/* node1 and node2 flap for `ms`: every 50-500 ms each may be paused, and
 * each direction between them cut, at random (a machine loaded in bursts). */
static int flap(rs_run_t *r, uint64_t ms)
{
    regsim_t *rs = g_w.rs;
    uint64_t end = regsim_now(rs) + ms;
    while (regsim_now(rs) < end) {
        for (int i = 0; i < 2; i++) {
            regsim_pause(rs, i, regsim_range(rs, 0, 2) == 0);
            regsim_block(rs, i, 1 - i, regsim_range(rs, 0, 2) == 0);
        }
        uint64_t until = regsim_now(rs) + regsim_range(rs, 50, 500);
        while (regsim_now(rs) < until)
            if (!round_(r, 10))
                return 0;
    }
    return 1;
}

/* A false down between two live nodes while the third crashes (a loaded
 * machine, a paused process): node3 crashes and node1 and node2 lose each
 * other for longer than the down timeout: both directions cut, one only
 * (node2 hears node1 but is not heard), or node2's loop paused (SIGSTOP:
 * frames to it wait, its timers run late at once), or both flapping (flap).
 * Each side runs the counters it sees nowhere else. At the heal (or the
 * resume) the conflict rule stops one copy of each; the copy left runs on
 * its ring owner (moved by handoff if it won elsewhere), once, within a
 * bound, and the acknowledged increments are all there (but for those of
 * the counters the crash took: no copies are kept). */
static int scen_false_down_with_crash(rs_run_t *r)
{
    static const char *const how[] = {"both ways", "one way", "paused", "flapping"};
    if (!targeted_setup(r, NULL, 0, 24))
        return 0;
    world_t *w = &g_w;
    regsim_t *rs = w->rs;
    int mode = (int)regsim_range(rs, 0, 3);
    if (!node_crash(r, 2))
        return 0;
    if (mode == 3 && !flap(r, regsim_range(rs, 1500, 5000)))
        return 0;
    if (mode == 3) {
        regsim_pause(rs, 0, 0);
    } else if (mode == 0) {
        regsim_set_group(rs, 0, 1);
        regsim_set_group(rs, 1, 2);
    } else if (mode == 1) {
        regsim_block(rs, 0, 1, 1);
    } else {
        regsim_pause(rs, 1, 1);
    }
    uint64_t deadline = regsim_now(rs) + 6000;
    for (; mode != 3;) { /* node1 runs every counter; both do unless node2 is paused */
        int all = 1;
        for (int k = 0; k < w->nctr && all; k++)
            all = w->ctr[k].terminated ||
                  copies_on_survivors(w, k) == (mode == 2 ? 1 : 2) ||
                  (mode == 2 && !kid_on(w, 0, w->ctr[k].name).found);
        if (all)
            break;
        RS_CHECK(r, regsim_now(rs) < deadline, "the sides did not run every counter (%s)",
                 how[mode]);
        if (!round_(r, 10))
            return 0;
    }
    if (mode == 2) { /* node1 runs them all: node2 was down for it */
        deadline = regsim_now(rs) + 6000;
        for (int k = 0; k < w->nctr; k++)
            while (!w->ctr[k].terminated && !kid_on(w, 0, w->ctr[k].name).found) {
                RS_CHECK(r, regsim_now(rs) < deadline, "%s: node1 never started %s",
                         how[mode], w->ctr[k].name);
                if (!round_(r, 10))
                    return 0;
            }
    }
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 100, 400)));
    regsim_pause(rs, 1, 0);
    regsim_heal(rs);
    regsim_unblock_all(rs);
    /* within 5 s of the heal: one copy of each counter, on its owner */
    char why[400] = "";
    deadline = regsim_now(rs) + 5000;
    while (!all_ok(w, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(rs) < deadline, "not settled 5 s after the heal (%s): %s",
                 how[mode], why);
        if (!round_(r, 10))
            return 0;
    }
    for (int k = 0; k < w->nctr; k++)
        RS_CHECK(r, w->ctr[k].terminated || copies_on_survivors(w, k) == 1,
                 "%s runs %d times after the heal (%s)", w->ctr[k].name,
                 copies_on_survivors(w, k), how[mode]);
    char what[64];
    snprintf(what, sizeof(what), "false down %s with a crash", how[mode]);
    return targeted_end(r, what, 0);
}

int main(void)
{
    static const rs_case_t cases[] = {
        {"graceful", scen_graceful, 120},
        {"graceful_acked", scen_graceful_acked, 120},
        {"crashes", scen_crashes, 120},
        {"replicated_crashes", scen_replicated_crashes, 120},
        {"replicated_mixed", scen_replicated_mixed, 120},
        {"replicated3_crashes", scen_replicated3_crashes, 120},
        {"partitions", scen_partitions, 120},
        {"mixed", scen_mixed, 120},
        {"determinism", scen_determinism, 20},
        {"target_dies_before_accept", scen_target_dies_before_accept, 60},
        {"target_dies_after_accept", scen_target_dies_after_accept, 60},
        {"target_dies_after_commit", scen_target_dies_after_commit, 60},
        {"old_dies_after_accept", scen_old_dies_after_accept, 60},
        {"old_dies_after_commit", scen_old_dies_after_commit, 60},
        {"accept_after_abort", scen_accept_after_abort, 60},
        {"late_commit", scen_late_commit, 60},
        {"duplicate_messages", scen_duplicate_messages, 60},
        {"target_already_running", scen_target_already_running, 60},
        {"join_during_partition", scen_join_during_partition, 60},
        {"switch_reaches_target_before_commit", scen_switch_reaches_target_before_commit, 60},
        {"promoted_copy_meets_restarted_copy", scen_promoted_copy_meets_restarted_copy, 60},
        {"merge_follows_moved_holder", scen_merge_follows_moved_holder, 60},
        {"abort_keeps_conflict_freeze", scen_abort_keeps_conflict_freeze, 60},
        {"old_node_restarts_fast", scen_old_node_restarts_fast, 60},
        {"restart_keeps_name", scen_restart_keeps_name, 60},
        {"terminate_in_partition_then_crash", scen_terminate_in_partition_then_crash, 60},
        {"terminate_acked_survives_crash", scen_terminate_acked_survives_crash, 60},
        {"join_under_crash", scen_join_under_crash, 60},
        {"join_under_partition", scen_join_under_partition, 60},
        {"false_down_with_crash", scen_false_down_with_crash, 60},
    };
    return regsim_main("sim_dsup", cases, sizeof(cases) / sizeof(cases[0]));
}
