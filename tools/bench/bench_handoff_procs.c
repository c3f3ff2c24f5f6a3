/*
 * bench_handoff_procs.c - bench_handoff's failover and join with one OS
 * process a node, as the reference systems ran (each BEAM node its own
 * process): every node's loop is its own, the nodes work side by side, and
 * a killed node is a process that got SIGKILL.
 *
 * The parent forks every node's process first (nanomsg must not be running
 * in a process that forks) and drives them over pipes (procs_driver.h), one
 * command a line; bench_handoff_node.c is the node's side.
 *
 * failover_procs: three node processes, n counters started from all three
 * (replicas R) and settled on their ring owners; the parent SIGKILLs
 * bench-c's process (about a third of the counters). recover_s runs from
 * the kill until every counter answered a "get" sent after the kill by the
 * survivors themselves (each probes half); detect_s until both survivors
 * declared bench-c down. lost and duplicated count the counters running
 * nowhere or twice once the survivors settled (transient_max: twice at the
 * moment the last one answered); false_downs how often a survivor declared
 * the other down (a loaded machine starves a process of its heartbeats). A
 * run whose survivors do not settle within SETTLE_DEADLINE_S is reported
 * (unsettled_runs, each node's counters on stderr) and fails the program.
 *
 * join_procs: two node processes run n counters; both keep DRIVER_WINDOW
 * incr calls in flight to their half and look names up every tick; a third
 * process starts and joins. join_settle_s runs from its start command until
 * every node is settled: it sees the three members up, no handoff in
 * flight, every counter name resolves there to a pid on the counter's ring
 * owner, its own counters run there, RUNNING, on their owner, at the pid
 * its whereis gives; and (checked by the parent) every counter runs exactly
 * once and every node's whereis answers the same pids. lookups_failed
 * counts the polled whereis on the two existing nodes that failed from
 * just before the join until then. Then the load stops, every counter is
 * read, and increments_lost counts acknowledged increments missing. The
 * join runs with a lenient failure detector (down after 60 s, as a BEAM
 * node's default net_ticktime): three busy processes on a loaded machine
 * can miss heartbeats for a second, and a node declared down in the middle
 * of a join measures the detector, not the join. The failover keeps the
 * default detector: detecting the kill is part of its figure.
 *
 * Every wait has a deadline: past it the run fails (exit 1) with every
 * node's counters on stderr, and every node process is killed by PID.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_handoff.h"
#include "procs_driver.h"

#define VICTIM 2             /* the failover's victim, bench-c (VICTIM_NAME) */
#define DRIVER_WINDOW 128    /* incr calls in flight on each existing node in the join */
#define POLL_MS 5            /* the parent asks for the nodes' status this often */
#define UP_DEADLINE_S 20.0
#define SETUP_DEADLINE_S 60.0
#define RECOVER_DEADLINE_S 30.0
#define SETTLE_DEADLINE_S 30.0
#define STATUS_MAX 1024

/* ---- the parent's side ----------------------------------------------------------- */

typedef procs_child_t child_t;

typedef struct hstatus {
    int up;
    size_t start_answered, start_failed, local;
    double down_at, up_at, settled_at;
    unsigned long long pid_hash, lookups, lookups_failed;
    size_t share, answered;
    double last_answer;
    size_t outstanding;
    unsigned long long acked;
    size_t unresolved, off_owner, own_bad;
    unsigned long long probe_failures, false_downs;
} hstatus_t;

static hstatus_t ask_status(child_t *c)
{
    char line[STATUS_MAX];
    hstatus_t s;
    procs_ask(c, line, sizeof(line), "status");
    if (sscanf(line,
               "status %d %zu %zu %zu %lf %lf %lf %llu %llu %llu %zu %zu %lf %zu %llu %zu %zu "
               "%zu %llu %llu",
               &s.up, &s.start_answered, &s.start_failed, &s.local, &s.down_at, &s.up_at,
               &s.settled_at, &s.pid_hash, &s.lookups, &s.lookups_failed, &s.share,
               &s.answered, &s.last_answer, &s.outstanding, &s.acked, &s.unresolved,
               &s.off_owner, &s.own_bad, &s.probe_failures, &s.false_downs) != 20)
        procs_fail("a bad status: '%s'", line);
    return s;
}

/* A command the node answers "ok". */
static void ok(child_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ok(child_t *c, const char *fmt, ...)
{
    char cmd[PROCS_CMD_MAX], line[PROCS_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    procs_ask(c, line, sizeof(line), "%s", cmd);
    if (strcmp(line, "ok") != 0)
        procs_fail("node process %d answered '%s' to '%s'", c->index, line, cmd);
}

/* Every live node of c[0..count) says on stderr what it holds. */
static void report_all(child_t **c, int count)
{
    for (int k = 0; k < count; k++)
        if (c[k] && c[k]->pid > 0) {
            procs_send(c[k], "report");
            char line[PROCS_CMD_MAX];
            procs_read(c[k], line, sizeof(line), 10.0);
        }
}

/* Every live node says on stderr what it holds, then the run fails. */
static void fail_with_reports(child_t **c, int count, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void fail_with_reports(child_t **c, int count, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fprintf(stderr, "bench_handoff: %s\n", what);
    report_all(c, count);
    procs_fail("%s", what);
}

static void fork_nodes(child_t **c, int count, size_t n)
{
    static size_t n_arg;
    n_arg = n;
    for (int k = 0; k < count; k++)
        c[k] = procs_fork(handoff_node_main, k, &n_arg);
}

static void start_node(child_t *c, char *seed, int lenient_detector)
{
    char line[PROCS_CMD_MAX];
    procs_ask(c, line, sizeof(line), "start %s %d", seed[0] ? seed : "-", lenient_detector);
    char addr[64];
    if (sscanf(line, "started %63s", addr) != 1)
        procs_fail("node process %d: '%s'", c->index, line);
    if (seed[0] == '\0')
        snprintf(seed, 64, "%s", addr);
}

static void wait_up(child_t **c, int count, int want)
{
    double deadline = now_s() + UP_DEADLINE_S;
    for (int k = 0; k < count; k++)
        while (ask_status(c[k]).up != want) {
            if (now_s() > deadline)
                fail_with_reports(c, count, "the nodes did not see %d members up within %.0f s",
                                  want, UP_DEADLINE_S);
            usleep(POLL_MS * 1000);
        }
}

/* Each of c[0..count) starts its share of the n counters (child i from
 * node i % count); until every start answered. */
static void start_counters(child_t **c, int count, size_t n, int replicas)
{
    for (int k = 0; k < count; k++)
        ok(c[k], "kids %d %d %d", k, count, replicas);
    double deadline = now_s() + SETUP_DEADLINE_S;
    for (int k = 0; k < count; k++) {
        size_t share = (n - (size_t)k + (size_t)count - 1) / (size_t)count;
        for (;;) {
            hstatus_t s = ask_status(c[k]);
            if (s.start_failed)
                fail_with_reports(c, count, "%zu starts failed on node %d", s.start_failed, k);
            if (s.start_answered == share)
                break;
            if (now_s() > deadline)
                fail_with_reports(c, count, "node %d: %zu of %zu starts answered within %.0f s",
                                  k, s.start_answered, share, SETUP_DEADLINE_S);
            usleep(POLL_MS * 1000);
        }
    }
}

typedef struct placement {
    size_t unique, copies, not_running, per_node[NODES_MAX];
} placement_t;

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Where every counter runs, from the nodes' bitmaps. */
static placement_t take_placement(child_t **c, int count, size_t n)
{
    placement_t p = {0};
    uint8_t *copies = calloc(n, 1);
    size_t cap = (n + 7) / 8 * 2 + 128;
    char *line = malloc(cap);
    if (copies == NULL || line == NULL)
        procs_fail("allocating the placement");
    for (int k = 0; k < count; k++) {
        size_t held, not_running;
        int off;
        procs_send(c[k], "children");
        procs_read(c[k], line, cap, PROCS_REPLY_DEADLINE_S);
        if (sscanf(line, "children %zu %zu %n", &held, &not_running, &off) != 2)
            procs_fail("a bad children answer: '%.80s'", line);
        const char *hex = line + off;
        if (hex[0] != '-' && strlen(hex) != (n + 7) / 8 * 2)
            procs_fail("a children bitmap of %zu digits from node process %d, not %zu",
                       strlen(hex), c[k]->index, (n + 7) / 8 * 2);
        for (size_t i = 0; i < n; i++) {
            int v = hex[0] == '-' ? 0 : hexval(hex[(i / 8) * 2 + ((i % 8) < 4)]);
            if (v < 0)
                procs_fail("a bad children bitmap from node process %d", c[k]->index);
            if (v & (1 << (i % 4)))
                copies[i]++;
        }
        p.per_node[k] = held;
        p.copies += held;
        p.not_running += not_running;
    }
    for (size_t i = 0; i < n; i++)
        p.unique += copies[i] > 0;
    free(copies);
    free(line);
    return p;
}

/* Until every node of c[0..count), watching already, settled, every counter
 * runs exactly once and every node's whereis gives the same pids: the
 * latest settled_at then (0 past deadline_s, with *p as last seen). */
static double wait_settled(child_t **c, int count, size_t n, double t0,
                           double deadline_s, placement_t *p)
{
    double deadline = t0 + deadline_s;
    memset(p, 0, sizeof(*p));
    for (;;) {
        double last = 0;
        unsigned long long hash = 0;
        int all = 1;
        for (int k = 0; k < count && all; k++) {
            hstatus_t s = ask_status(c[k]);
            all = s.settled_at > 0 && (k == 0 || s.pid_hash == hash);
            hash = s.pid_hash;
            last = s.settled_at > last ? s.settled_at : last;
        }
        if (all) {
            *p = take_placement(c, count, n);
            if (p->unique == n && p->copies == n && p->not_running == 0)
                return last;
        }
        if (now_s() > deadline)
            return 0;
        usleep(POLL_MS * 1000);
    }
}

static void unwatch(child_t **c, int count)
{
    for (int k = 0; k < count; k++)
        ok(c[k], "unwatch");
}

/* A cluster of `count` node processes with n counters settled on them. */
static void setup(child_t **c, int count, size_t n, int replicas, char *seed,
                  int lenient_detector)
{
    seed[0] = '\0';
    for (int k = 0; k < count; k++)
        start_node(c[k], seed, lenient_detector);
    wait_up(c, count, count);
    start_counters(c, count, n, replicas);
    placement_t p;
    for (int k = 0; k < count; k++)
        ok(c[k], "watch %d", count);
    if (wait_settled(c, count, n, now_s(), SETUP_DEADLINE_S, &p) == 0)
        fail_with_reports(c, count, "setup: %zu counters not settled on %d nodes within %.0f s "
                                    "(%zu unique, %zu copies, %zu not running)",
                          n, count, SETUP_DEADLINE_S, p.unique, p.copies, p.not_running);
    unwatch(c, count);
}

/* ---- failover ---- */

typedef struct failover_result {
    double recover_s, detect_s;
    size_t killed_held, lost, duplicated, transient_dup;
    int unsettled; /* the survivors did not settle by the deadline */
    unsigned long long false_downs; /* a survivor declared the other down */
    unsigned long long probe_failures;
} failover_result_t;

static failover_result_t failover_run(size_t n, int replicas)
{
    failover_result_t r = {0};
    child_t *c[NODES_MAX];
    char seed[64];
    fork_nodes(c, NODES_MAX, n);
    setup(c, NODES_MAX, n, replicas, seed, 0);
    const int victim = VICTIM;
    r.killed_held = ask_status(c[victim]).local;
    for (int k = 0; k < 2; k++)
        ok(c[k], "share %d 2", k);

    double t0 = now_s();
    procs_kill(c[victim]); /* SIGKILL: its sockets close as it dies */
    for (int k = 0; k < 2; k++)
        ok(c[k], "probe");
    double deadline = t0 + RECOVER_DEADLINE_S, last = 0, down = 0;
    for (int k = 0; k < 2; k++)
        for (;;) {
            hstatus_t s = ask_status(c[k]);
            if (s.answered == s.share) {
                last = s.last_answer > last ? s.last_answer : last;
                down = s.down_at > down ? s.down_at : down;
                r.probe_failures += s.probe_failures;
                break;
            }
            if (now_s() > deadline)
                fail_with_reports(c, 2, "failover: %zu of %zu counters of node %d answered "
                                        "within %.0f s of the kill",
                                  s.answered, s.share, k, RECOVER_DEADLINE_S);
            usleep(POLL_MS * 1000);
        }
    r.recover_s = last - t0;
    r.detect_s = down > 0 ? down - t0 : -1;
    placement_t p = take_placement(c, 2, n);
    r.transient_dup = p.copies - p.unique;
    for (int k = 0; k < 2; k++)
        ok(c[k], "watch 2");
    if (wait_settled(c, 2, n, now_s(), SETTLE_DEADLINE_S, &p) == 0) {
        p = take_placement(c, 2, n); /* where the counters run at the deadline */
        fprintf(stderr, "bench_handoff: failover_procs: the survivors did not settle within "
                        "%.0f s: %zu unique of %zu, %zu copies, %zu not running\n",
                SETTLE_DEADLINE_S, p.unique, n, p.copies, p.not_running);
        report_all(c, 2);
        r.unsettled = 1;
    }
    for (int k = 0; k < 2; k++)
        r.false_downs += ask_status(c[k]).false_downs;
    r.lost = n - p.unique;
    r.duplicated = p.copies - p.unique;
    if (verbose)
        fprintf(stderr, "  failover_procs run (replicas %d): bench-c held %zu; detected %.3f s, "
                        "every counter answered %.3f s after the kill (%llu probes failed "
                        "first); lost %zu duplicated %zu (at recovery %zu); survivors "
                        "declared down by mistake %llu times\n",
                replicas, r.killed_held, r.detect_s, r.recover_s, r.probe_failures, r.lost,
                r.duplicated, r.transient_dup, r.false_downs);
    procs_end_all();
    return r;
}

int bench_failover_procs(size_t n, int runs, int replicas)
{
    double recover[8], detect[8], held[8];
    size_t lost = 0, dup = 0, transient = 0;
    int unsettled = 0;
    unsigned long long false_downs = 0;
    if (runs > 8)
        runs = 8;
    for (int i = 0; i < runs; i++) {
        failover_result_t r = failover_run(n, replicas);
        unsettled += r.unsettled;
        false_downs += r.false_downs;
        recover[i] = r.recover_s;
        detect[i] = r.detect_s;
        held[i] = (double)r.killed_held;
        lost += r.lost;
        dup += r.duplicated;
        transient = r.transient_dup > transient ? r.transient_dup : transient;
    }
    double rec = median(recover, (size_t)runs);
    printf("bench failover recover_s %.3f s children=%zu killed_held=%.0f nodes=3-1 "
           "replicas=%d processes=3 detector=default until=every_child_answers runs=%d%s\n",
           rec, n, median(held, (size_t)runs), replicas, runs,
           ref_keys(FAILOVER_REF_S, "Horde", rec, n));
    printf("bench failover detect_s %.3f s nodes=3-1 replicas=%d processes=3 detector=default "
           "false_downs=%llu runs=%d\n",
           median(detect, (size_t)runs), replicas, false_downs, runs);
    printf("bench failover lost %zu children children=%zu replicas=%d processes=3 runs=%d\n",
           lost, n, replicas, runs);
    printf("bench failover duplicated %zu children transient_max=%zu replicas=%d processes=3 "
           "runs=%d unsettled_runs=%d\n",
           dup, transient, replicas, runs, unsettled);
    fflush(stdout);
    return lost || dup || unsettled;
}

/* ---- join ---- */

typedef struct join_result {
    double settle_s, up_s;
    unsigned long long lookups, lookups_failed;
    unsigned long long increments, lost, extra, uncertain, unread;
    int placement_ok;
} join_result_t;

static join_result_t join_run(size_t n)
{
    join_result_t r = {0};
    child_t *c[NODES_MAX];
    char seed[64];
    fork_nodes(c, NODES_MAX, n);
    setup(c, 2, n, 1, seed, 1);
    for (int k = 0; k < 2; k++) {
        ok(c[k], "share %d 2", k);
        ok(c[k], "load %d", DRIVER_WINDOW);
        ok(c[k], "watch 3");
        ok(c[k], "look 1");
    }
    usleep(20 * 1000); /* the load under way */

    double t0 = now_s();
    start_node(c[2], seed, 1);
    ok(c[2], "watch 3");
    placement_t p;
    double settled = wait_settled(c, NODES_MAX, n, t0, SETTLE_DEADLINE_S, &p);
    if (settled == 0)
        fail_with_reports(c, NODES_MAX, "join: not settled within %.0f s (%zu unique of %zu, "
                                        "%zu copies, %zu not running)",
                          SETTLE_DEADLINE_S, p.unique, n, p.copies, p.not_running);
    r.settle_s = settled - t0;
    r.placement_ok = 1;
    for (int k = 0; k < NODES_MAX; k++) {
        hstatus_t s = ask_status(c[k]);
        r.up_s = s.up_at - t0 > r.up_s ? s.up_at - t0 : r.up_s;
        if (k < 2)
            ok(c[k], "look 0");
    }
    for (int k = 0; k < 2; k++) { /* the lookups' counts stopped with look 0 */
        hstatus_t s = ask_status(c[k]);
        r.lookups += s.lookups;
        r.lookups_failed += s.lookups_failed;
    }
    /* stop the load, let its last calls answer, read every counter */
    for (int k = 0; k < 2; k++)
        ok(c[k], "stop");
    double deadline = now_s() + CALL_TIMEOUT_MS / 1000.0 + 5.0;
    for (int k = 0; k < 2; k++)
        while (ask_status(c[k]).outstanding > 0) {
            if (now_s() > deadline)
                fail_with_reports(c, NODES_MAX, "join: node %d's calls never answered", k);
            usleep(POLL_MS * 1000);
        }
    for (int k = 0; k < 2; k++)
        ok(c[k], "probe");
    deadline = now_s() + SETUP_DEADLINE_S;
    for (int k = 0; k < 2; k++)
        for (;;) {
            hstatus_t s = ask_status(c[k]);
            if (s.answered == s.share)
                break;
            if (now_s() > deadline)
                fail_with_reports(c, NODES_MAX, "join: %zu of %zu counters read on node %d",
                                  s.answered, s.share, k);
            usleep(POLL_MS * 1000);
        }
    for (int k = 0; k < 2; k++) {
        char line[PROCS_CMD_MAX];
        unsigned long long lost, extra, uncertain, unread, acked;
        procs_ask(c[k], line, sizeof(line), "verify");
        if (sscanf(line, "verify %llu %llu %llu %llu %llu", &lost, &extra, &uncertain,
                   &unread, &acked) != 5)
            procs_fail("a bad verify answer: '%s'", line);
        r.lost += lost;
        r.extra += extra;
        r.uncertain += uncertain;
        r.unread += unread;
        r.increments += acked;
    }
    if (verbose)
        fprintf(stderr, "  join_procs run: all up %.3f s, settled %.3f s after the start; "
                        "lookups %llu failed %llu; increments %llu lost %llu extra %llu "
                        "uncertain %llu unread %llu\n",
                r.up_s, r.settle_s, r.lookups, r.lookups_failed, r.increments, r.lost, r.extra,
                r.uncertain, r.unread);
    procs_end_all();
    return r;
}

int bench_join_procs(size_t n, int runs)
{
    double settle[8], up[8];
    join_result_t sum = {0};
    if (runs > 8)
        runs = 8;
    for (int i = 0; i < runs; i++) {
        join_result_t r = join_run(n);
        settle[i] = r.settle_s;
        up[i] = r.up_s;
        sum.lookups += r.lookups;
        sum.lookups_failed += r.lookups_failed;
        sum.increments += r.increments;
        sum.lost += r.lost;
        sum.extra += r.extra;
        sum.uncertain += r.uncertain;
        sum.unread += r.unread;
    }
    double s = median(settle, (size_t)runs);
    printf("bench handoff join_settle_s %.3f s workers=%zu nodes=2+1 replicas=1 processes=3 "
           "lookups_failed=%llu until=every_name_resolves_on_its_owner detector=lenient "
           "runs=%d%s%s\n",
           s, n, sum.lookups_failed, runs, ref_keys(JOIN_REF_S, "Swarm", s, n),
           n == REF_CHILDREN ? " ref_unresolvable=808" : "");
    printf("bench handoff join_up_s %.3f s nodes=2+1 processes=3 runs=%d\n",
           median(up, (size_t)runs), runs);
    printf("bench handoff join_lookups_failed %llu lookups=%llu polled_on=existing processes=3 "
           "runs=%d\n",
           sum.lookups_failed, sum.lookups, runs);
    printf("bench handoff join_increments_lost %llu increments=%llu extra=%llu uncertain=%llu "
           "unread=%llu window=%d processes=3 runs=%d\n",
           sum.lost, sum.increments, sum.extra, sum.uncertain, sum.unread, DRIVER_WINDOW, runs);
    fflush(stdout);
    return sum.lost || sum.extra || sum.unread || sum.lookups_failed;
}
