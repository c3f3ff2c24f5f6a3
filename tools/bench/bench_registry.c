/*
 * bench_registry - what herd's global name registry costs.
 *
 * The workload Horde 0.10 and syn 3.4 were measured with:
 * - convergence: 3 nodes on loopback (one program, one shared loop), each
 *   registering its own idle processes under distinct names at the same
 *   time (TURN_BATCH names on each node in turn, the loop not run in
 *   between); the clock runs from the first register until every node holds
 *   every name (its entry count, which is O(1) to read). The processes are
 *   spawned and the names formatted before the clock; every run has fresh
 *   nodes. register_s is the registering alone. converge_large is the same
 *   at 3 x 100,000 names.
 * - whereis of random existing names on a node holding 100,000 names. The
 *   names to look up are laid out one after another beforehand, so the
 *   caller's side is a sequential read and what is timed is the lookup.
 * - memory per registration: the anonymous RSS (rss_anon_bytes) after
 *   spawning the processes, then after registering them; the difference
 *   over the count (the names' own bytes
 *   are in it: name_len says how many). Measured first, while the heap is
 *   fresh.
 *
 * And what a large registry costs its cluster:
 * - join_large: 3 nodes hold 300,000 names, a third each, registered and
 *   converged before the clock; then a 4th node joins. join_converge_s runs
 *   from the start of the newcomer's cluster until it holds every name and
 *   sees every member up (so none of the names is hidden from its lookups).
 *   join_stall_ms is the largest gap between two firings of a 1 ms repeating
 *   uv_timer on the loop the four nodes share, armed just before the
 *   newcomer starts and stopped once the join traffic is quiet (JOIN_QUIET):
 *   the longest time the loop spent without coming back to its timers. On
 *   one shared loop that gap holds whatever all four nodes did in it (the
 *   newcomer's work too), so it is an upper bound of the stall a node of
 *   its own would see; an idle loop shows about 1 ms. join_bytes is the
 *   registry's sync bytes sent (herd_registry_stats' bytes_out) summed over
 *   the three existing nodes, from just before the newcomer starts until the
 *   traffic is quiet; join_wire_bytes is herd_cluster_stats' bytes_out summed
 *   over all four (frame headers, resends and heartbeats included).
 *   Goals (printed, not enforced): converged in under 2 s, no stall over
 *   20 ms. One run (runs=1): its setup converges the names first.
 * - join_1m: join_large at 1,000,000 names (the figure), bounded:
 *   a newcomer that does not hold every name JOIN_1M_DEADLINE_S after its
 *   start is given up on, and the run prints join_converged no (with how
 *   many names it holds) and the stall and bytes up to then, instead of
 *   failing. The deadline is checked between turns of the loop, so one long
 *   stall can carry the run past it: after_s says when it was given up.
 * - memory_fill: memory per registration across fill levels. One node
 *   registers FILL_LO..FILL_HI names of exactly 14 bytes (the issue's
 *   figure) in steps of FILL_STEP; after each step the growth of the
 *   anonymous RSS (rss_anon_bytes: resident less file-backed pages, so
 *   the code pages a first registration faults in do not count as names'
 *   memory) since before the first register over the names held, the same
 *   method as
 *   registration_bytes, printed as a line of its own (with syn's 410 B as
 *   the reference and the goal of 64 B), then its min, median and max over
 *   the steps (table growth shows as the spread). After each level's line,
 *   registration_parts says where the bytes go per name
 *   (herd_registry_memory: records, chunk slack, key table, pid index, ...;
 *   `other` is the RSS growth the registry's own structures do not
 *   account for). It runs in a child process forked before anything
 *   else, so its heap is fresh.
 *
 * - converge_procs and join_procs (bench_registry_procs.c): convergence (at
 *   the references' 3 x 10,000 names and at 3 x 100,000) and join_1m with
 *   one process a node, side by side on the machine's cores, each stall
 *   measured on its own node's loop (the goal's "stall on an existing
 *   node"); their lines carry processes=3 (or 4), the shared-loop figures
 *   above processes=1, for comparison. A converge with processes=3 ends
 *   when every node holds every name and a whereis of each succeeds there.
 *
 * The figures of the reference systems (syn 3.4, Horde 0.10, ETS, Elixir
 * Registry, measured on this machine: herd's issue 16) are printed beside
 * herd's as ref= (the best one), ref_system= and ratio= (> 1: herd is
 * better) keys, with the others as ref_<system>= keys.
 *
 *   bench registry <metric> <value> <unit> [key=value ...]
 *
 * The default run leaves join_large and join_1m out (tens of seconds and
 * minutes today); --full adds them, and --quick (which divides every size by
 * 10 and runs each figure once: the ctest smoke run) has join_large with
 * 20,000 names. --verbose prints each run on stderr (--trace adds progress
 * lines every 10 ms of a wait); --only single|converge|converge_large|
 * join_large|join_1m|memory_fill|converge_procs|join_procs|one_process runs
 * one part;
 * --join-names N sets join_large's size (and join_procs', in --full, default
 * 1,000,000). The cluster's failure detector is made lenient (see
 * make_node); --default-timeouts keeps its defaults. Every wait has a
 * deadline: a registry that stops converging fails the run (with each
 * node's counters) instead of hanging it.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_registry.h"
#include "procs_driver.h"

#define TURN_BATCH 1000 /* names registered on one node per turn */
#define CONVERGE_DEADLINE_S 20.0
#define JOIN_NAMES 300000
#define JOIN_LARGE_DEADLINE_S 60.0 /* for the setup's convergence, and for the join */
#define JOIN_1M_NAMES 1000000
#define JOIN_1M_DEADLINE_S 120.0   /* join_1m's join: then it is given up on */
#define JOIN_QUIET_MS 100          /* join traffic is quiet: a window of this long */
#define JOIN_QUIET_BYTES 16384     /* ... that sent fewer bytes than this */
#define FILL_LO 50000
#define FILL_HI 200000
#define FILL_STEP 10000

/* The reference systems, measured on this machine (herd's issue 16): they
 * are printed beside herd's figures as ref= keys; ratio > 1: herd is
 * better. */
#define CONVERGE_REF_S 0.417 /* syn 3.4: 3 x 10,000 names, all found everywhere */
#define CONVERGE_REF_HORDE_S 8.3
#define WHEREIS_REF_ETS 2.2e6 /* local lookups/s: a raw ETS table */
#define WHEREIS_REF_REGISTRY 1.2e6 /* Elixir Registry */
#define WHEREIS_REF_SYN 0.59e6
#define WHEREIS_REF_HORDE 0.31e6
#define MEM_REF_SYN 410.0    /* bytes per name per replica, syn (issue's table) */
#define MEM_REF_HORDE 1340.0
#define MEM_REF_ETS 86.0     /* bytes per name on one node: a raw ETS table */

static int trace;            /* --trace: progress lines during waits (trace_line) */


/* ---- convergence ------------------------------------------------------------------ */

/* Every node registers names[k] for its processes pids[k], TURN_BATCH names
 * on each node in turn, without running the loop in between. */
static void register_turns(herd_node_t **nodes, names_t *names, herd_pid_t **pids)
{
    size_t most = 0;
    for (int k = 0; k < NODES; k++)
        most = names[k].count > most ? names[k].count : most;
    for (size_t off = 0; off < most; off += TURN_BATCH) {
        for (int k = 0; k < NODES; k++)
            for (size_t i = off; i < off + TURN_BATCH && i < names[k].count; i++) {
                int rc = herd_register(nodes[k], names[k].at[i], pids[k][i], NULL);
                if (rc != 0)
                    die("herd_register", rc);
            }
    }
}

/* --trace: the time, the process's CPU time and each node's entries, on
 * stderr every 10 ms of a wait: where a wait is busy and where it idles. */
static void trace_line(herd_node_t **nodes, int count)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "  trace t=%.3f cpu=%.3f entries", now_s(),
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    for (int k = 0; k < count; k++)
        fprintf(stderr, " %llu", (unsigned long long)entries_of(nodes[k]));
    fputc('\n', stderr);
}

/* Run the loop until each of nodes[from..count) holds `total` entries and
 * sees all `count` members up (until then it hides the names of those it
 * has not seen): 0 then, -1 once past `deadline` (a now_s() time). */
static int wait_entries_until(uv_loop_t *loop, herd_node_t **nodes, int from, int count,
                              uint64_t total, double deadline)
{
    double next_trace = now_s();
    for (;;) {
        int done = 1;
        if (trace && now_s() >= next_trace)
            trace_line(nodes, count), next_trace = now_s() + 0.01;
        for (int k = from; k < count && done; k++)
            done = entries_of(nodes[k]) == total && all_up(nodes[k], count);
        if (done)
            return 0;
        if (now_s() > deadline)
            return -1;
        uv_run(loop, UV_RUN_ONCE);
    }
}

/* The same; past `deadline_s` of waiting, fail the run with every node's
 * counters. */
static void wait_entries(uv_loop_t *loop, herd_node_t **nodes, int from, int count,
                         uint64_t total, double deadline_s, const char *what)
{
    if (wait_entries_until(loop, nodes, from, count, total, now_s() + deadline_s) == 0)
        return;
    fprintf(stderr, "bench_registry: %s: no convergence after %.0f s (%llu names)\n",
            what, deadline_s, (unsigned long long)total);
    for (int k = 0; k < count; k++)
        report_node(nodes[k]);
    exit(1);
}

/* Every node of nodes[0..count) finds a sample of names[k] at pids[k]. */
static void check_sample(herd_node_t **nodes, int count, names_t *names, herd_pid_t **pids)
{
    for (int k = 0; k < NODES; k++)
        for (size_t i = 0; i < names[k].count; i += names[k].count / 97 + 1)
            for (int at = 0; at < count; at++) {
                herd_pid_t p;
                int rc = herd_whereis(nodes[at], names[k].at[i], &p, NULL);
                if (rc != 0 || !herd_pid_equal(p, pids[k][i]))
                    die("whereis after convergence", rc);
            }
}

/* A fresh cluster, node k with an idle process in pids[k] for each of
 * names[k]. */
static void cluster_with_procs(uv_loop_t *loop, herd_node_t **nodes, herd_pid_t **pids,
                               const names_t *names, char *first, size_t first_cap)
{
    if (uv_loop_init(loop) != 0)
        die("uv_loop_init", 0);
    make_cluster(loop, nodes, first, first_cap);
    for (int k = 0; k < NODES; k++) {
        if ((pids[k] = malloc(names[k].count * sizeof(herd_pid_t))) == NULL)
            die("allocating pids", HERD_ENOMEM);
        spawn_idle(nodes[k], pids[k], names[k].count);
    }
    herd_node_run_for(nodes[0], 10);
}

typedef struct converge_result {
    double register_s, converge_s;
} converge_result_t;

/* One run on fresh nodes: every node registers names[k] for its own processes,
 * a batch per node in turn; then the loop runs until each node holds all. */
static converge_result_t converge_run(names_t *names, size_t per_node)
{
    uv_loop_t loop;
    herd_node_t *nodes[NODES];
    herd_pid_t *pids[NODES];
    char first[64];
    cluster_with_procs(&loop, nodes, pids, names, first, sizeof(first));
    const uint64_t total = (uint64_t)per_node * NODES;

    converge_result_t r;
    double t0 = now_s();
    register_turns(nodes, names, pids);
    double t1 = now_s();
    r.register_s = t1 - t0;
    wait_entries(&loop, nodes, 0, NODES, total, CONVERGE_DEADLINE_S, "converge");
    r.converge_s = now_s() - t0;
    if (verbose)
        fprintf(stderr, "  run: names=%llu register_s %.3f converge_s %.3f\n",
                (unsigned long long)total, r.register_s, r.converge_s);

    check_sample(nodes, NODES, names, pids);
    free_cluster(&loop, nodes, NODES);
    for (int k = 0; k < NODES; k++)
        free(pids[k]);
    return r;
}

/* names[k] for node k: `total` names, as even a share each as can be. */
void make_node_names(names_t *names, size_t total)
{
    for (int k = 0; k < NODES; k++) {
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "%c", 'a' + k);
        names[k] = names_make(prefix, total / NODES + ((size_t)k < total % NODES));
    }
}

static void bench_converge(size_t per_node, int runs)
{
    names_t names[NODES];
    make_node_names(names, per_node * NODES);
    double reg[8], conv[8];
    for (int i = 0; i < runs; i++) {
        converge_result_t r = converge_run(names, per_node);
        reg[i] = r.register_s;
        conv[i] = r.converge_s;
    }
    size_t total = per_node * NODES;
    double c = median(conv, (size_t)runs);
    char ref[160] = "";
    if (total == 30000) /* the references' workload */
        snprintf(ref, sizeof(ref), " ref=%.3f ref_system=syn ratio=%.1fx ref_horde=%.1f",
                 CONVERGE_REF_S, CONVERGE_REF_S / c, CONVERGE_REF_HORDE_S);
    printf("bench registry converge_s %.3f s nodes=%d names=%zu processes=1 runs=%d%s\n", c,
           NODES, total, runs, ref);
    printf("bench registry register_s %.3f s nodes=%d names=%zu processes=1 runs=%d\n",
           median(reg, (size_t)runs), NODES, total, runs);
    fflush(stdout);
    for (int k = 0; k < NODES; k++)
        names_free(&names[k]);
}

/* ---- a fourth node joins a large registry ---------------------------------------- */

static void stall_note(stall_probe_t *p)
{
    uint64_t now = uv_hrtime();
    if (now - p->last_ns > p->max_gap_ns) {
        p->max_gap_ns = now - p->last_ns;
        p->max_gap_end_ns = now;
    }
    p->last_ns = now;
}

static void stall_tick(uv_timer_t *t)
{
    stall_note(t->data);
}

void stall_start(stall_probe_t *p, uv_loop_t *loop)
{
    *p = (stall_probe_t){.last_ns = uv_hrtime()};
    p->timer.data = p;
    uv_update_time(loop);
    if (uv_timer_init(loop, &p->timer) != 0 || uv_timer_start(&p->timer, stall_tick, 1, 1) != 0)
        die("starting the stall timer", 0);
}

/* The largest gap in ms, the one up to now included. */
double stall_stop(stall_probe_t *p)
{
    stall_note(p);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
    return (double)p->max_gap_ns / 1e6;
}

static uint64_t bytes_out_of(herd_node_t **nodes, int count)
{
    uint64_t sum = 0;
    for (int k = 0; k < count; k++) {
        herd_cluster_stats_t cs;
        int rc = herd_cluster_stats(nodes[k], &cs);
        if (rc != 0)
            die("herd_cluster_stats", rc);
        sum += cs.bytes_out;
    }
    return sum;
}

/* The registry's sync bytes sent, summed over nodes[0..count). */
static uint64_t registry_bytes_out_of(herd_node_t **nodes, int count)
{
    uint64_t sum = 0;
    for (int k = 0; k < count; k++) {
        herd_registry_stats_t st;
        int rc = herd_registry_stats(nodes[k], &st);
        if (rc != 0) die("herd_registry_stats", rc);
        sum += st.bytes_out;
    }
    return sum;
}

/* Run the loop until a window of JOIN_QUIET_MS sends under JOIN_QUIET_BYTES
 * (heartbeats only); fail the run past `deadline`. */
static void wait_quiet(herd_node_t **nodes, int count, double deadline)
{
    uint64_t before = bytes_out_of(nodes, count);
    for (;;) {
        herd_node_run_for(nodes[0], JOIN_QUIET_MS);
        uint64_t after = bytes_out_of(nodes, count);
        if (after - before < JOIN_QUIET_BYTES)
            return;
        before = after;
        if (now_s() > deadline) {
            fprintf(stderr, "bench_registry: join: traffic still flowing at its deadline\n");
            for (int k = 0; k < count; k++)
                report_node(nodes[k]);
            exit(1);
        }
    }
}

/* Goals, printed as keys and not enforced: the newcomer holds every name
 * within 2 s, and no node's loop stalls over 20 ms meanwhile. With
 * `give_up_s` nonzero a join that has not converged by then is reported as
 * such (join_converged no) instead of failing the run. */
static void bench_join_large(size_t total, double give_up_s)
{
    names_t names[NODES];
    make_node_names(names, total);
    uv_loop_t loop;
    herd_node_t *nodes[NODES + 1];
    herd_pid_t *pids[NODES];
    char first[64], listen[64];
    cluster_with_procs(&loop, nodes, pids, names, first, sizeof(first));
    register_turns(nodes, names, pids);
    wait_entries(&loop, nodes, 0, NODES, total, JOIN_LARGE_DEADLINE_S, "join_large setup");
    herd_node_run_for(nodes[0], 50); /* the last acknowledgements */

    stall_probe_t probe;
    stall_start(&probe, &loop);
    uint64_t bytes0 = bytes_out_of(nodes, NODES);
    uint64_t sync0 = registry_bytes_out_of(nodes, NODES);
    double t0 = now_s();
    nodes[NODES] = make_node(&loop, "bench-d", first, listen, sizeof(listen));
    int converged = 1;
    if (give_up_s > 0)
        converged = wait_entries_until(&loop, nodes, NODES, NODES + 1, total,
                                       t0 + give_up_s) == 0;
    else
        wait_entries(&loop, nodes, NODES, NODES + 1, total, JOIN_LARGE_DEADLINE_S,
                     "join_large");
    double converge_s = now_s() - t0;
    uint64_t held = entries_of(nodes[NODES]);
    if (converged)
        wait_quiet(nodes, NODES + 1,
                   t0 + (give_up_s > 0 ? give_up_s : JOIN_LARGE_DEADLINE_S));
    double quiet_s = now_s() - t0;
    uint64_t bytes = bytes_out_of(nodes, NODES + 1) - bytes0;
    uint64_t sync_bytes = registry_bytes_out_of(nodes, NODES) - sync0;
    double stall_ms = stall_stop(&probe);
    if (verbose)
        fprintf(stderr, "  run: the largest stall ended %.3f s after the newcomer started "
                "(monotonic %.6f s)\n", (double)probe.max_gap_end_ns / 1e9 - t0,
                (double)probe.max_gap_end_ns / 1e9);
    if (verbose || !converged) {
        fprintf(stderr, "  run: join %s after %.3f s (quiet after %.3f s), per node:\n",
                converged ? "converged" : "given up", converge_s, quiet_s);
        for (int k = 0; k <= NODES; k++)
            report_node(nodes[k]);
    }
    if (converged) {
        check_sample(nodes + NODES, 1, names, pids);
        printf(
            "bench registry join_converge_s %.3f s nodes=%d names=%zu goal_s=2 runs=1\n",
            converge_s, NODES + 1, total);
    } else {
        printf("bench registry join_converged no bool nodes=%d names=%zu after_s=%.0f "
               "held=%llu goal_s=2 runs=1\n",
               NODES + 1, total, converge_s, (unsigned long long)held);
    }
    const char *upto = converged ? "quiet" : "given_up";
    printf(
        "bench registry join_stall_ms %.1f ms nodes=%d names=%zu timer_ms=1 loop=shared "
        "goal_ms=20 until=%s runs=1\n",
        stall_ms, NODES + 1, total, upto);
    printf("bench registry join_bytes %llu B nodes=%d names=%zu per_name=%.1f "
           "of=registry_bytes_out senders=existing until=%s runs=1\n",
           (unsigned long long)sync_bytes, NODES + 1, total,
           (double)sync_bytes / (double)total, upto);
    printf("bench registry join_wire_bytes %llu B nodes=%d names=%zu per_name=%.1f "
           "of=cluster_bytes_out senders=all until=%s runs=1\n",
           (unsigned long long)bytes, NODES + 1, total, (double)bytes / (double)total,
           upto);
    fflush(stdout);
    free_cluster(&loop, nodes, NODES + 1);
    for (int k = 0; k < NODES; k++) {
        free(pids[k]);
        names_free(&names[k]);
    }
}

/* ---- one node: memory per registration across fill levels ------------------------ */

/* The memory references as keys (a static buffer: one line at a time):
 * syn's bytes per name per replica, the goal, then a raw ETS
 * table's per name on one node (no registry: the floor). */
static const char *mem_refs(double per_name)
{
    static char keys[192];
    snprintf(keys, sizeof(keys),
             " ref=%.0f ref_system=syn ratio=%.1fx ref_horde=%.0f ref_ets=%.0f ratio_ets=%.2fx",
             MEM_REF_SYN, MEM_REF_SYN / per_name, MEM_REF_HORDE, MEM_REF_ETS,
             MEM_REF_ETS / per_name);
    return keys;
}

#define FILL_NAME_LEN 14 /* the figure: a registration with a 14-byte name */
#define FILL_GOAL_BYTES 64

/* count names of exactly FILL_NAME_LEN bytes ("fill-" and 9 digits), one
 * after another in one block (*text, the caller frees it). */
static const char **fill_names(size_t count, char **text)
{
    const char **at = malloc(count * sizeof(*at));
    *text = malloc(count * (FILL_NAME_LEN + 1));
    if (at == NULL || *text == NULL)
        die("allocating names", HERD_ENOMEM);
    for (size_t i = 0; i < count; i++) {
        char *name = *text + i * (FILL_NAME_LEN + 1);
        if (snprintf(name, FILL_NAME_LEN + 1, "fill-%09zu", i) != FILL_NAME_LEN)
            die("formatting a name", HERD_EINVAL);
        at[i] = name;
    }
    return at;
}

/* What the registry's memory goes to per name (herd_registry_memory), and
 * the rest of the RSS growth per name (`other`: the heap's own overhead,
 * freed memory the heap keeps, the node's other allocations). */
static void print_memory_parts(herd_node_t *n, size_t names, double rss_per)
{
    herd_registry_memory_t m;
    int rc = herd_registry_memory(n, &m);
    if (rc != 0)
        die("herd_registry_memory", rc);
    double k = 1.0 / (double)names;
    double parts = (double)(m.record_chunks + m.entries + m.key_table + m.pid_index +
                            m.replicas + m.pending + m.digest + m.fixed) * k;
    printf("bench registry registration_parts %.1f B names=%zu record=%.1f chunk_slack=%.1f "
           "entries=%.1f key_table=%.1f pid_index=%.1f replicas=%.2f pending=%.1f digest=%.2f "
           "fixed=%.2f other=%.1f\n",
           parts, names, (double)m.records * k, (double)(m.record_chunks - m.records) * k,
           (double)m.entries * k, (double)m.key_table * k, (double)m.pid_index * k,
           (double)m.replicas * k, (double)m.pending * k, (double)m.digest * k,
           (double)m.fixed * k, rss_per - parts);
}

static void bench_memory_fill(size_t lo, size_t hi, size_t step)
{
    char *text;
    const char **names = fill_names(hi, &text);
    herd_pid_t *pids = malloc(hi * sizeof(herd_pid_t));
    double per[64];
    if (pids == NULL)
        die("allocating pids", HERD_ENOMEM);
    herd_node_t *n = solo_registry_node("bench-fill");
    int rc;
    spawn_idle(n, pids, hi);
    herd_node_run_for(n, 5);

    size_t rss0 = rss_anon_bytes(), done = 0, steps = 0;
    for (size_t level = lo; level <= hi && steps < 64; level += step, steps++) {
        for (; done < level; done++)
            if ((rc = herd_register(n, names[done], pids[done], NULL)) != 0)
                die("herd_register", rc);
        herd_node_run_for(n, 5); /* the last pending delta goes */
        per[steps] = ((double)rss_anon_bytes() - (double)rss0) / (double)level;
        printf("bench registry registration_bytes %.1f B names=%zu name_len=%d goal=%d%s\n",
               per[steps], level, FILL_NAME_LEN, FILL_GOAL_BYTES, mem_refs(per[steps]));
        print_memory_parts(n, level, per[steps]);
    }
    qsort(per, steps, sizeof(double), cmp_double);
    const char *which[3] = {"min", "median", "max"};
    double value[3] = {per[0], per[steps / 2], per[steps - 1]};
    for (int i = 0; i < 3; i++)
        printf("bench registry registration_bytes_%s %.0f B names=%zu..%zu steps=%zu "
               "name_len=%d goal=%d%s\n", which[i], value[i], lo, hi, steps, FILL_NAME_LEN,
               FILL_GOAL_BYTES, mem_refs(value[i]));
    fflush(stdout);
    herd_node_free(n);
    free(pids);
    free(names);
    free(text);
}

/* Run memory_fill in a child process, so its heap is as fresh as this
 * process's is now; the run fails with it. */
static void memory_fill_in_child(size_t scale)
{
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0)
        die("fork", 0);
    if (child == 0) {
        bench_memory_fill(FILL_LO / scale, FILL_HI / scale, FILL_STEP / scale);
        exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_registry: memory_fill failed\n");
        exit(1);
    }
}

/* ---- one node: memory per registration, then whereis ----------------------------- */

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The same lookups through herd_whereis_many, BATCH names a call. */
static void bench_batch(herd_node_t *n, const char *stream, size_t lookups, size_t count,
                        int runs)
{
    enum { BATCH = 256 };
    const char **names = malloc(lookups * sizeof(*names));
    herd_pid_t pids[BATCH];
    int status[BATCH];
    double rate[8];
    if (names == NULL)
        die("allocating the batch", HERD_ENOMEM);
    for (size_t i = 0, off = 0; i < lookups; i++, off += strlen(stream + off) + 1)
        names[i] = stream + off;
    for (int r = 0; r < runs; r++) {
        size_t found = 0;
        double t0 = now_s();
        for (size_t i = 0; i < lookups; i += BATCH) {
            size_t k = lookups - i < BATCH ? lookups - i : BATCH;
            found += (size_t)herd_whereis_many(n, names + i, k, pids, status);
        }
        rate[r] = (double)lookups / (now_s() - t0);
        if (found != lookups)
            die("herd_whereis_many", HERD_ENOENT);
    }
    free(names);
    double r = median(rate, (size_t)runs);
    printf("bench registry whereis_batch_per_s %.0f lookups/s names=%zu lookups=%zu batch=%d "
           "runs=%d ref=%.0f ref_system=ets ratio=%.1fx\n", r, count, lookups, BATCH, runs,
           WHEREIS_REF_ETS, r / WHEREIS_REF_ETS);
    fflush(stdout);
}

static void bench_single(size_t count, size_t lookups, int runs)
{
    names_t ns = names_make("s", count);
    herd_pid_t *pids = malloc(count * sizeof(herd_pid_t));
    if (pids == NULL)
        die("allocating pids", HERD_ENOMEM);
    herd_node_t *n = solo_registry_node("bench-single");
    int rc;
    spawn_idle(n, pids, count);
    herd_node_run_for(n, 5);

    size_t rss0 = rss_anon_bytes();
    for (size_t i = 0; i < count; i++)
        if ((rc = herd_register(n, ns.at[i], pids[i], NULL)) != 0)
            die("herd_register", rc);
    herd_node_run_for(n, 5); /* the last pending delta goes */
    size_t rss1 = rss_anon_bytes();
    double per = ((double)rss1 - (double)rss0) / (double)count;
    printf("bench registry registration_bytes %.0f B names=%zu name_len=%.1f%s\n", per, count,
           (double)ns.total_len / (double)count, mem_refs(per));
    fflush(stdout);

    /* The lookups, in order: random existing names copied one after another,
     * so the caller's side is a sequential read (a name it has in hand), and
     * what is timed is the registry's lookup. */
    size_t stream_cap = lookups * (ns.total_len / count + 8), off = 0;
    char *stream = malloc(stream_cap);
    if (stream == NULL)
        die("allocating the lookup stream", HERD_ENOMEM);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < lookups; i++) {
        const char *name = ns.at[((xorshift64(&seed) >> 32) * (uint64_t)count) >> 32];
        size_t len = strlen(name) + 1;
        if (off + len > stream_cap)
            die("sizing the lookup stream", 0);
        memcpy(stream + off, name, len);
        off += len;
    }
    double rate[8];
    uint64_t check = 0;
    for (int r = 0; r < runs; r++) {
        const char *name = stream;
        double t0 = now_s();
        for (size_t i = 0; i < lookups; i++) {
            herd_pid_t p;
            if ((rc = herd_whereis(n, name, &p, NULL)) != 0)
                die("herd_whereis", rc);
            check += p.serial;
            name += strlen(name) + 1;
        }
        rate[r] = (double)lookups / (now_s() - t0);
        if (verbose)
            fprintf(stderr, "  run: whereis_per_s %.0f\n", rate[r]);
    }
    if (check == 0)
        die("whereis results", 0);
    double r = median(rate, (size_t)runs);
    printf("bench registry whereis_per_s %.0f lookups/s names=%zu lookups=%zu runs=%d "
           "ref=%.0f ref_system=ets ratio=%.1fx ref_registry=%.0f ref_syn=%.0f "
           "ref_horde=%.0f ratio_syn=%.1fx\n",
           r, count, lookups, runs, WHEREIS_REF_ETS, r / WHEREIS_REF_ETS, WHEREIS_REF_REGISTRY,
           WHEREIS_REF_SYN, WHEREIS_REF_HORDE, r / WHEREIS_REF_SYN);
    fflush(stdout);
    bench_batch(n, stream, lookups, count, runs);
    free(stream);
    herd_node_free(n);
    free(pids);
    names_free(&ns);
}

/* ---- one process holding many names ------------------------------------------------ */

/* Register `count` names on one node for `holders` processes (round robin)
 * and time it; then stop the processes and time until the registry holds
 * no name (an exit removes its process's names). */
static void one_process_run(const names_t *ns, size_t holders, double *reg_s, double *exit_s)
{
    herd_node_t *n = solo_registry_node("bench-holders");
    int rc;
    herd_pid_t *pids = malloc(holders * sizeof(*pids));
    if (pids == NULL)
        die("allocating pids", HERD_ENOMEM);
    spawn_idle(n, pids, holders);
    herd_node_run_for(n, 5);
    double t0 = now_s();
    for (size_t i = 0; i < ns->count; i++)
        if ((rc = herd_register(n, ns->at[i], pids[i % holders], NULL)) != 0)
            die("herd_register", rc);
    *reg_s = now_s() - t0;
    t0 = now_s();
    for (size_t i = 0; i < holders; i++)
        herd_stop(n, pids[i], HERD_REASON_SHUTDOWN);
    for (int i = 0; i < 10000 && herd_registry_count(n, NULL) > 0; i++)
        herd_node_run_for(n, 1);
    if (herd_registry_count(n, NULL) != 0)
        die("the names of stopped processes", 0);
    *exit_s = now_s() - t0;
    herd_node_free(n);
    free(pids);
}

/* The same names held by one process, and by one process each: what a
 * name costs should not grow with how many its process holds. */
static void bench_one_process(size_t count, int runs)
{
    names_t ns = names_make("p", count);
    double one_reg[8], one_exit[8], each_reg[8], each_exit[8];
    for (int r = 0; r < runs; r++) {
        one_process_run(&ns, 1, &one_reg[r], &one_exit[r]);
        one_process_run(&ns, count, &each_reg[r], &each_exit[r]);
    }
    double o = median(one_reg, (size_t)runs), e = median(each_reg, (size_t)runs);
    double ox = median(one_exit, (size_t)runs), ex = median(each_exit, (size_t)runs);
    printf("bench registry register_one_holder_s %.3f s names=%zu holders=1 one_each_s=%.3f "
           "ratio=%.2fx runs=%d\n", o, count, e, o / e, runs);
    printf("bench registry exit_one_holder_s %.3f s names=%zu holders=1 one_each_s=%.3f "
           "ratio=%.2fx runs=%d of=stop_until_no_name_is_held\n", ox, count, ex, ox / ex, runs);
    fflush(stdout);
    names_free(&ns);
}

static int part_known(const char *part)
{
    static const char *const parts[] = {"single",     "converge", "converge_large",
                                        "join_large", "join_1m",  "memory_fill",
                                        "converge_procs", "join_procs", "one_process"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcmp(part, parts[i]) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    bench_prog = "bench_registry";
    procs_init(bench_prog);
    int quick = 0, full = 0;
    size_t join_names = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--full") == 0) {
            full = 1;
        } else if (strcmp(argv[i], "--trace") == 0) {
            trace = verbose = 1;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--default-timeouts") == 0) {
            default_timeouts = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && part_known(argv[i + 1])) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--join-names") == 0 && i + 1 < argc &&
                   (join_names = strtoull(argv[i + 1], NULL, 10)) >= NODES) {
            i++;
        } else {
            fprintf(stderr,
                    "usage: bench_registry [--quick] [--full] [--verbose] "
                    "[--default-timeouts] "
                    "[--join-names N (>= %d)]\n"
                    "                      [--only single|converge|converge_large|"
                    "join_large|join_1m|memory_fill|converge_procs|join_procs|one_process]\n",
                    NODES);
            return 2;
        }
    }
    size_t scale = quick ? 10 : 1;
    int runs = quick ? 1 : 3;
    next_port = 20000 + (int)(((uint64_t)(now_s() * 1000) ^ ((uint64_t)getpid() << 7)) % 30000);

    /* first, while the heap is fresh: freed memory of earlier figures would
     * hide the registry's growth from RSS */
    if (only == NULL || strcmp(only, "memory_fill") == 0)
        memory_fill_in_child(scale);
    /* the parts with one process a node fork them: before this process
     * starts nanomsg */
    if (only == NULL || strcmp(only, "converge_procs") == 0) {
        bench_converge_procs(10000 / scale, runs); /* the references' workload */
        bench_converge_procs(100000 / scale, runs);
    }
    if ((only == NULL && full) || (only && strcmp(only, "join_procs") == 0))
        bench_join_procs(join_names ? join_names : JOIN_1M_NAMES);
    if (only == NULL || strcmp(only, "single") == 0)
        bench_single(100000 / scale, 2000000 / scale, runs);
    if (only == NULL || strcmp(only, "one_process") == 0)
        bench_one_process(100000 / scale, runs);
    if (only == NULL || strcmp(only, "converge") == 0)
        bench_converge(10000 / scale, runs);
    if (only == NULL || strcmp(only, "converge_large") == 0)
        bench_converge(100000 / scale, runs);
    /* a large join takes tens of seconds today: not in the default run;
     * the smoke run joins 20,000 names: a test run must not depend on how a
     * large join fares on a loaded machine */
    if ((only == NULL && (full || quick)) || (only && strcmp(only, "join_large") == 0))
        bench_join_large(join_names ? join_names : quick ? 20000 : JOIN_NAMES, 0);
    /* the million names: bounded, given up on after its deadline */
    if ((only == NULL && full) || (only && strcmp(only, "join_1m") == 0))
        bench_join_large(JOIN_1M_NAMES, JOIN_1M_DEADLINE_S);
    return 0;
}
