/*
 * bench_registry_procs.c - bench_registry's figures with one process a
 * node, as a cluster runs: each node's loop is its own, the nodes work side
 * by side (on as many cores as the machine gives), and a stall is one
 * node's own.
 *
 * The parent forks every node's process first (nanomsg must not be running
 * in a process that forks) and drives them over pipes, one command a line
 * (procs_driver.h):
 *
 *   start SEED      make the node (SEED "-": the first), spawn its idle
 *                   processes; answers "started ADDRESS"
 *   target N M      done once it holds N entries and sees M members up:
 *                   the time it first was (CLOCK_MONOTONIC, shared by all
 *                   processes) is kept; answers "ok"
 *   lookups TOTAL   from now on `target` is met only once a whereis of every
 *                   one of the TOTAL names (every node's) succeeds too; the
 *                   time kept is the one before that pass; answers "ok"
 *   register        registers its share of names at once; answers "ok"
 *   probe           starts a 1 ms timer and keeps its largest gap, and
 *                   notes the registry's bytes sent; answers "ok"
 *   report          answers "report DONE_AT REGISTERED_AT ENTRIES STALL_MS
 *                   BYTES STALL_END" (0 for what has not happened)
 *   exit            the process ends at once (its memory goes with it)
 *
 * converge_procs: three nodes, each registering per_node names of its own at
 * the same moment; the time from the commands to the last node holding all
 * and finding each of them with a whereis (converge_s ... processes=3): the
 * issue's workload at 3 x 10,000 names, against syn's 0.417 s, and at
 * 3 x 100,000.
 * join_procs: three nodes hold `total` names, converged before the clock;
 * a fourth starts and joins; join_procs_converge_s runs from its start
 * command until it holds every name and sees every member up; the stall is
 * the largest gap of a 1 ms timer on each existing node's own loop, from
 * before the newcomer starts until the traffic is quiet.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_registry.h"
#include "procs_driver.h"

#define CMD_MAX 256
#define POLL_MS 5              /* the parent asks for reports this often */
#define CONVERGE_REF_S 0.417   /* syn 3.4, 3 x 10,000 names, measured on this machine */
#define CONVERGE_REF_HORDE_S 8.3
#define QUIET_BYTES 16384 /* registry bytes sent in 100 ms when the traffic is quiet */

/* ---- a node's process ------------------------------------------------------------ */

typedef struct node_proc {
    uv_loop_t loop;
    herd_node_t *node;
    int index;
    size_t share; /* names this node registers */
    names_t names;
    herd_pid_t *pids;
    uint64_t want_entries;
    int want_members;
    int targeted; /* a target was set: done_at is kept */
    double done_at, registered_at;
    /* --verbose: the run's timeline on this node (monotonic s) */
    double register_cmd_at, first_in_at, held_at;
    uint64_t turns; /* loop turns from the register command until done */
    double cpu_at_register; /* the process's CPU time (s) at the register command */
    struct { double at, cpu; uint64_t entries, deltas_in, deltas_out; } turn_log[64];
    stall_probe_t probe;
    int probing;
    uint64_t bytes0;
    names_t all[NODES]; /* `lookups`: every node's names, each found before done */
    int lookups;
    uint64_t lookup_misses; /* whereis that failed in a done check */
    procs_serve_t serve;
    uv_check_t check;
    char who[48];
} node_proc_t;

/* The process's CPU time, user and system, in seconds. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define proc_reply(p, ...) procs_reply(&(p)->serve, __VA_ARGS__)

static uint64_t registry_bytes_out(herd_node_t *n)
{
    herd_registry_stats_t st;
    int rc = herd_registry_stats(n, &st);
    if (rc != 0) die("herd_registry_stats", rc);
    return st.bytes_out;
}

static void proc_start(node_proc_t *p, const char *seed)
{
    char name[16], listen[64];
    snprintf(name, sizeof(name), "bench-%c", 'a' + p->index);
    p->node = make_node(&p->loop, name, strcmp(seed, "-") == 0 ? NULL : seed, listen,
                        sizeof(listen));
    p->pids = malloc((p->share ? p->share : 1) * sizeof(*p->pids));
    if (p->pids == NULL) die("allocating pids", HERD_ENOMEM);
    spawn_idle(p->node, p->pids, p->share);
    proc_reply(p, "started %s", listen);
}

static void proc_register(node_proc_t *p)
{
    p->register_cmd_at = now_s();
    p->cpu_at_register = cpu_s();
    p->first_in_at = p->held_at = 0;
    p->turns = 0;
    for (size_t i = 0; i < p->share; i++) {
        int rc = herd_register(p->node, p->names.at[i], p->pids[i], NULL);
        if (rc != 0) die("herd_register", rc);
    }
    p->registered_at = now_s();
    proc_reply(p, "ok");
}

static void proc_report(node_proc_t *p)
{
    double stall = 0;
    if (p->probing) {
        uint64_t gap = uv_hrtime() - p->probe.last_ns;
        stall = (double)(gap > p->probe.max_gap_ns ? gap : p->probe.max_gap_ns) / 1e6;
    }
    proc_reply(
        p, "report %.6f %.6f %llu %.3f %llu %.6f", p->done_at, p->registered_at,
        (unsigned long long)(p->node ? entries_of(p->node) : 0), stall,
        (unsigned long long)(p->node ? registry_bytes_out(p->node) - p->bytes0 : 0),
        (double)p->probe.max_gap_end_ns / 1e9);
}

static void proc_command(void *data, char *line)
{
    node_proc_t *p = data;
    char arg[CMD_MAX];
    unsigned long long n;
    int m;
    if (sscanf(line, "start %255s", arg) == 1 && p->node == NULL) {
        proc_start(p, arg);
    } else if (sscanf(line, "target %llu %d", &n, &m) == 2) {
        p->want_entries = n;
        p->want_members = m;
        p->targeted = 1;
        p->done_at = 0;
        proc_reply(p, "ok");
    } else if (sscanf(line, "lookups %llu", &n) == 1 && !p->lookups) {
        make_node_names(p->all, (size_t)n);
        p->lookups = 1;
        proc_reply(p, "ok");
    } else if (strcmp(line, "register") == 0 && p->node) {
        proc_register(p);
    } else if (strcmp(line, "probe") == 0 && p->node && !p->probing) {
        stall_start(&p->probe, &p->loop);
        p->probing = 1;
        p->bytes0 = registry_bytes_out(p->node);
        proc_reply(p, "ok");
    } else if (strcmp(line, "report") == 0) {
        proc_report(p);
    } else if (strcmp(line, "exit") == 0) {
        _exit(0); /* a million names need no freeing one by one */
    } else {
        fprintf(stderr, "bench_registry: node %d: bad command '%s'\n", p->index, line);
        _exit(1);
    }
}

/* Whether a whereis of every name succeeds on p's node. */
static int all_found(node_proc_t *p)
{
    for (int k = 0; k < NODES; k++)
        for (size_t i = 0; i < p->all[k].count; i++)
            if (herd_whereis(p->node, p->all[k].at[i], NULL, NULL) != 0) {
                p->lookup_misses++;
                return 0;
            }
    return 1;
}

/* --verbose: when this node's registering ended, the first names of
 * another node came, it held every entry and every whereis succeeded
 * (ms after its register command), with the registry's traffic. */
static void print_timeline(node_proc_t *p)
{
    herd_registry_stats_t st;
    if (herd_registry_stats(p->node, &st) != 0)
        return;
    /* messages the streams sent again (no ack within their rto) and took
     * twice: the cost of a peer too busy to acknowledge */
    unsigned long long resent = 0, duplicates = 0;
    herd_member_info_t m[NODES + 2];
    int count = herd_cluster_members(p->node, m, NODES + 2);
    for (int i = 0; i < count && i < NODES + 2; i++) {
        herd_stream_stats_t ss;
        if (herd_cluster_stream_stats(p->node, herd_node_id_of(m[i].name), &ss) == 0)
            resent += ss.resent, duplicates += ss.duplicates;
    }
    double t0 = p->register_cmd_at;
    fprintf(stderr,
            "    node %d: registered +%.1f ms, first in +%.1f, held all +%.1f, "
            "found all +%.1f (the pass took %.1f ms), cpu %.1f ms; deltas in %llu out %llu, "
            "bytes in %llu out %llu, loop turns %llu, lookup misses %llu, "
            "stream messages resent %llu duplicates %llu\n",
            p->index, (p->registered_at - t0) * 1e3, (p->first_in_at - t0) * 1e3,
            (p->held_at - t0) * 1e3, (p->done_at - t0) * 1e3, (now_s() - p->done_at) * 1e3,
            (cpu_s() - p->cpu_at_register) * 1e3,
            (unsigned long long)st.deltas_in, (unsigned long long)st.deltas_out,
            (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
            (unsigned long long)p->turns, (unsigned long long)p->lookup_misses, resent,
            duplicates);
    for (uint64_t i = 0; i < p->turns && i < 64; i++)
        fprintf(stderr, "      node %d turn %llu: +%.1f ms cpu %.1f entries %llu deltas in %llu out %llu\n",
                p->index, (unsigned long long)i, (p->turn_log[i].at - t0) * 1e3,
                (p->turn_log[i].cpu - p->cpu_at_register) * 1e3,
                (unsigned long long)p->turn_log[i].entries,
                (unsigned long long)p->turn_log[i].deltas_in,
                (unsigned long long)p->turn_log[i].deltas_out);
}

/* After every turn of the loop: done yet? The time kept is the one the
 * node held every name (the pass of lookups only confirms it: nothing
 * changes during it). */
static void proc_on_check(uv_check_t *h)
{
    node_proc_t *p = h->data;
    if (p->node == NULL || !p->targeted || p->done_at != 0)
        return;
    uint64_t held = entries_of(p->node);
    if (p->register_cmd_at > 0) {
        if (verbose && p->turns < 64) {
            herd_registry_stats_t st;
            herd_registry_stats(p->node, &st);
            p->turn_log[p->turns].at = now_s();
            p->turn_log[p->turns].cpu = cpu_s();
            p->turn_log[p->turns].entries = held;
            p->turn_log[p->turns].deltas_in = st.deltas_in;
            p->turn_log[p->turns].deltas_out = st.deltas_out;
        }
        p->turns++;
        if (p->first_in_at == 0 && held > p->share)
            p->first_in_at = now_s();
    }
    if (held == p->want_entries && all_up(p->node, p->want_members)) {
        double t = now_s();
        if (p->held_at == 0)
            p->held_at = t;
        if (!p->lookups || all_found(p)) {
            p->done_at = t;
            if (verbose && p->register_cmd_at > 0)
                print_timeline(p);
        }
    }
}

static void node_proc_main(int index, int cmd_fd, int rep_fd, void *arg)
{
    node_proc_t *p = calloc(1, sizeof(*p));
    if (p == NULL || uv_loop_init(&p->loop) != 0) die("a node process's loop", 0);
    p->index = index;
    p->share = *(const size_t *)arg;
    char prefix[8];
    snprintf(prefix, sizeof(prefix), "%c", 'a' + index);
    p->names = names_make(prefix, p->share);
    next_port += 97 * index; /* each process tries its own ports first */
    snprintf(p->who, sizeof(p->who), "bench_registry: node %d", index);
    procs_serve_start(&p->serve, &p->loop, cmd_fd, rep_fd, proc_command, p, p->who);
    p->check.data = p;
    if (uv_check_init(&p->loop, &p->check) != 0 ||
        uv_check_start(&p->check, proc_on_check) != 0)
        die("a node process's handles", 0);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* ---- the parent's side ----------------------------------------------------------- */

typedef procs_child_t child_t;

typedef struct report {
    double done_at, registered_at, stall_ms;
    unsigned long long entries, bytes;
    double stall_end; /* when the largest gap ended (monotonic s) */
} report_t;

static child_t *fork_node(int index, size_t share)
{
    static size_t shares[PROCS_MAX];
    shares[index] = share;
    return procs_fork(node_proc_main, index, &shares[index]);
}

static void expect_ok(child_t *c)
{
    procs_expect(c, "ok");
}

static report_t ask_report(child_t *c)
{
    char line[CMD_MAX];
    report_t r;
    procs_ask(c, line, sizeof(line), "report");
    if (sscanf(line, "report %lf %lf %llu %lf %llu %lf", &r.done_at, &r.registered_at,
               &r.entries, &r.stall_ms, &r.bytes, &r.stall_end) != 6)
        procs_fail("a bad report: '%s'", line);
    return r;
}

/* Start the nodes in order, each after the first joining it; seed (64
 * bytes) gets the first's address. */
static void start_nodes(child_t **c, int count, char *seed)
{
    char line[CMD_MAX];
    for (int k = 0; k < count; k++) {
        procs_ask(c[k], line, sizeof(line), "start %s", k == 0 ? "-" : seed);
        if (k == 0 && sscanf(line, "started %63s", seed) != 1)
            procs_fail("the first node's address: '%s'", line);
    }
}

static void set_target(child_t **c, int count, uint64_t entries, int members)
{
    for (int k = 0; k < count; k++) {
        procs_send(c[k], "target %llu %d", (unsigned long long)entries, members);
        expect_ok(c[k]);
    }
}

/* Ask until every one of c[0..count) is done; the latest done_at. */
static double wait_done(child_t **c, int count, double deadline_s)
{
    double deadline = now_s() + deadline_s, last = 0;
    for (int k = 0; k < count; k++)
        for (;;) {
            report_t r = ask_report(c[k]);
            if (r.done_at > 0) {
                last = r.done_at > last ? r.done_at : last;
                break;
            }
            if (now_s() > deadline)
                procs_fail("node %d did not converge within %.0f s (it holds %llu names)", k,
                           deadline_s, r.entries);
            usleep(POLL_MS * 1000);
        }
    return last;
}

/* ---- the figures ----------------------------------------------------------------- */

static void converge_procs_run(size_t per_node, double *register_s, double *converge_s)
{
    child_t *c[NODES];
    char seed[64];
    for (int k = 0; k < NODES; k++)
        c[k] = fork_node(k, per_node);
    start_nodes(c, NODES, seed);
    set_target(c, NODES, 0, NODES); /* all up, nothing held yet */
    wait_done(c, NODES, 15.0);
    uint64_t total = (uint64_t)per_node * NODES;
    for (int k = 0; k < NODES; k++) {
        procs_send(c[k], "lookups %llu", (unsigned long long)total);
        expect_ok(c[k]);
    }
    set_target(c, NODES, total, NODES);
    double t0 = now_s();
    for (int k = 0; k < NODES; k++)
        procs_send(c[k], "register");
    if (verbose)
        fprintf(stderr, "  run: the register commands went at %.6f (monotonic s)\n", t0);
    double registered = 0;
    for (int k = 0; k < NODES; k++) {
        expect_ok(c[k]);
        report_t r = ask_report(c[k]);
        registered = r.registered_at > registered ? r.registered_at : registered;
    }
    double done = wait_done(c, NODES, 60.0);
    *register_s = registered - t0;
    *converge_s = done - t0;
    if (verbose)
        fprintf(stderr, "  run: names=%llu processes=%d register_s %.3f converge_s %.3f\n",
                (unsigned long long)total, NODES, *register_s, *converge_s);
    procs_end_all();
}

void bench_converge_procs(size_t per_node, int runs)
{
    double reg[8], conv[8];
    if (runs > 8)
        runs = 8;
    for (int i = 0; i < runs; i++)
        converge_procs_run(per_node, &reg[i], &conv[i]);
    size_t total = per_node * NODES;
    double c = median(conv, (size_t)runs);
    char ref[160] = "";
    if (total == 30000) /* the references' workload */
        snprintf(ref, sizeof(ref), " ref=%.3f ref_system=syn ratio=%.1fx ref_horde=%.1f",
                 CONVERGE_REF_S, CONVERGE_REF_S / c, CONVERGE_REF_HORDE_S);
    printf("bench registry converge_s %.3f s nodes=%d names=%zu processes=%d "
           "until=all_lookups_succeed runs=%d%s\n",
           c, NODES, total, NODES, runs, ref);
    printf("bench registry register_s %.3f s nodes=%d names=%zu processes=%d runs=%d\n",
           median(reg, (size_t)runs), NODES, total, NODES, runs);
    fflush(stdout);
}

/* Until the existing nodes send under QUIET_BYTES in 100 ms (bounded). */
static void wait_quiet_procs(child_t **c, int count)
{
    unsigned long long before = 0;
    for (int k = 0; k < count; k++)
        before += ask_report(c[k]).bytes;
    for (int round = 0; round < 600; round++) {
        usleep(100 * 1000);
        unsigned long long after = 0;
        for (int k = 0; k < count; k++)
            after += ask_report(c[k]).bytes;
        if (after - before < QUIET_BYTES) return;
        before = after;
    }
    procs_fail("join traffic still flowing after 60 s");
}

void bench_join_procs(size_t total)
{
    child_t *c[NODES + 1];
    char seed[64];
    for (int k = 0; k <= NODES; k++)
        c[k] = fork_node(k, k < NODES ? total / NODES + ((size_t)k < total % NODES) : 0);
    start_nodes(c, NODES, seed);
    set_target(c, NODES, 0, NODES);
    wait_done(c, NODES, 15.0);
    set_target(c, NODES, total, NODES);
    for (int k = 0; k < NODES; k++)
        procs_send(c[k], "register");
    for (int k = 0; k < NODES; k++)
        expect_ok(c[k]);
    wait_done(c, NODES, 120.0);
    wait_quiet_procs(c, NODES);
    for (int k = 0; k < NODES; k++) {
        procs_send(c[k], "probe");
        expect_ok(c[k]);
    }
    set_target(&c[NODES], 1, total, NODES + 1);
    double t0 = now_s();
    char line[CMD_MAX];
    procs_ask(c[NODES], line, sizeof(line), "start %s", seed);
    procs_send(c[NODES], "probe");
    expect_ok(c[NODES]);
    double done = wait_done(&c[NODES], 1, 120.0);
    wait_quiet_procs(c, NODES);
    double worst = 0;
    unsigned long long bytes = 0;
    int worst_k = 0;
    for (int k = 0; k < NODES; k++) {
        report_t r = ask_report(c[k]);
        if (verbose)
            fprintf(stderr,
                    "  bench-%c (pid %d): stall %.1f ms, ended %.6f (monotonic s), "
                    "%.3f s after the newcomer's start\n",
                    'a' + k, (int)c[k]->pid, r.stall_ms, r.stall_end, r.stall_end - t0);
        bytes += r.bytes;
        if (r.stall_ms > worst) worst = r.stall_ms, worst_k = k;
    }
    report_t newcomer = ask_report(c[NODES]);
    printf("bench registry join_procs_converge_s %.3f s nodes=%d names=%zu processes=%d "
           "goal_s=2\n",
           done - t0, NODES + 1, total, NODES + 1);
    printf("bench registry join_procs_stall_ms %.1f ms nodes=%d names=%zu of=existing "
           "node=bench-%c timer_ms=1 until=quiet goal_ms=20\n",
           worst, NODES + 1, total, 'a' + worst_k);
    printf("bench registry join_procs_newcomer_stall_ms %.1f ms nodes=%d names=%zu "
           "timer_ms=1 "
           "until=quiet\n",
           newcomer.stall_ms, NODES + 1, total);
    printf("bench registry join_procs_bytes %llu B nodes=%d names=%zu per_name=%.1f "
           "of=registry_bytes_out senders=existing until=quiet\n",
           bytes, NODES + 1, total, (double)bytes / (double)total);
    fflush(stdout);
    procs_end_all();
}
