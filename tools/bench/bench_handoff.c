/*
 * bench_handoff - what herd's distributed supervisor costs when membership
 * changes: a join that moves counters with their state, a node killed under
 * its children, and starting many children by name.
 *
 * Real nodes over loopback in one program, on one shared libuv loop; every
 * node registers the counter service (tools/counter.h) and runs
 * herd_dsup_start with its defaults. Every run has fresh nodes. The
 * workloads (the same as the reference systems'):
 *
 * - handoff: 2 nodes run N counters (started by name, counter i incremented
 *   1 + i % 3 times by acknowledged calls); a third node joins. The clock
 *   runs from the join (the new node's creation) until every move has
 *   settled: every counter runs exactly once, RUNNING (nothing moving or
 *   arriving, no handoff in flight), on its owner in every node's ring, and
 *   every node's whereis answers that very pid. Meanwhile two driver
 *   processes (one on each old node) keep DRIVER_WINDOW "incr" calls each in
 *   flight to random counters, and between loop turns the program looks up
 *   random counter names on both old nodes (herd_whereis), counting ENOENT.
 *   After settling the load stops, the drivers wait for their last replies,
 *   and every counter is read ("get", by name): it must hold its setup
 *   increments plus every acknowledged one. lost counts increments missing;
 *   extra (applied but not acknowledged: calls that timed out) is printed
 *   apart. moved counts committed handoffs; expected_moves the counters whose
 *   node changed; moves_per_s is moved over the window from the join to the
 *   last commit; wave_moves_per_s is the first wave alone (from the first
 *   offer until no move is in flight: at most max_moves per node, the rest
 *   waits for a later reconcile). A call whose reply never comes ends with
 *   HERD_ETIMEDOUT after CALL_TIMEOUT_MS; its increment counts as uncertain.
 *   (The counter has no handle_cast, so a cast "incr" would be dropped by
 *   design: the load uses calls, which are acknowledged.)
 * - failover: 3 nodes run N children; one node is freed without leaving
 *   (herd_node_free: its sockets close as a killed process's do). The clock
 *   runs from the kill until every child runs again and is registered, as
 *   counted from a survivor (herd_count_children: running == specs == N),
 *   with no child twice and nothing restarting; recover_both_s until the
 *   other survivor counts them all too and every name answers whereis on
 *   both. detect_s is until both
 *   survivors declared the victim down (herd_cluster_on_change), restart_s
 *   the rest. This one always uses the cluster's default failure detector.
 * - startup: 3 nodes; N children started by name with
 *   herd_start_child_async, spread over the three nodes (child i from node
 *   i % 3; from=all), then all from the first node (from=one), in batches of START_BATCH with a loop turn between batches; the
 *   clock runs until every start answered and every name answers herd_whereis
 *   on every node.
 * - reconcile: 3 nodes, 50,000 children (5,000 with --quick) started as in
 *   startup, then nothing for 3.5 s (1.5 s) but the supervisors' own
 *   periodic full reconcile passes: the longest loop turn in that window
 *   (reconcile_stall_ms), with the default reconcile_slice (a pass spread
 *   over loop turns) and, run by run in turn, with the whole registry in
 *   one slice (one_turn_pass_ms: a pass in one turn, as herd did before);
 *   then again (not with --quick) with 2 copies of each child's state, so
 *   that each node also walks the copies it keeps for the others.
 * - failover_procs and join_procs (bench_handoff_procs.c): failover and the
 *   join with one OS process a node, as the reference systems ran: the
 *   victim gets SIGKILL, and recovery is timed until every child answered a
 *   call from the survivors; their lines carry processes=3 (the figures
 *   above processes=1). failover_procs runs with replicas=1 and replicas=2.
 *   They run first: they fork, before this process starts nanomsg.
 *
 * The reference systems' figures (Horde, Swarm: measured on this machine,
 * herd's issue 16) are printed beside herd's as ref=, ref_system= and
 * ratio= (> 1: herd is better) keys.
 *
 *   bench handoff|failover|startup <metric> <value> <unit> [key=value ...]
 *
 * Times are the median of `runs`; counts that must be 0 (lost, failed,
 * duplicated) are totals over all runs. --quick uses N = 1,000 and one run
 * (the ctest smoke run); --verbose prints each run's timeline on stderr;
 * --only handoff|failover|startup|failover_procs|join_procs|reconcile runs one
 * part;
 * --lenient-detector makes the
 * failure detector lenient for handoff and startup (failover keeps the
 * default). Every wait has a deadline: a stall fails the run with each
 * node's stats instead of hanging. The exit status is 1 when an increment or
 * a child was lost, a lookup failed, a child ran twice or a move was missing
 * or extra (the figures are printed first).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_handoff.h"
#include "counter.h"
#include "herd_ring.h"
#include "procs_driver.h"
#include "registry_layers.h"

#define MAX_NODES 3
#define MAX_RUNS 8
#define DRIVER_WINDOW 128   /* calls in flight per driver during the move */
#define SETUP_WINDOW 256    /* calls in flight per driver for setup and reads */
#define START_TIMEOUT_MS 30000
#define START_BATCH 500     /* async starts issued per loop turn */
#define LOOKUPS_PER_TURN 32 /* whereis per old node per loop turn */
#define PULSE_MS 2          /* the longest a loop turn waits */
#define CHECK_EVERY_S 0.010 /* full settle checks at most this often */
#define JOIN_DEADLINE_S 15.0
#define SETTLE_DEADLINE_S 30.0
#define SETUP_DEADLINE_S 60.0

int verbose;
static int lenient; /* --lenient-detector: for handoff and startup */
int next_port;

static const char secret[] = "bench-handoff-secret-0123456789ab";
/* The supervisor's configuration of the nodes started next (NULL: its
 * defaults), and the copies of its state each child started next asks for
 * (0: the service's, 1); the reconcile part sets them. */
static const herd_dsup_config_t *node_dsup_cfg;
static uint8_t start_replicas;

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void die(const char *what, int rc)
{
    fprintf(stderr, "bench_handoff: %s failed (%d: %s)\n", what, rc,
            rc < 0 ? herd_strerror(rc) : "-");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

const char *ref_keys(double ref_s, const char *system, double v, size_t n)
{
    static char keys[128];
    keys[0] = '\0';
    if (n == REF_CHILDREN && v > 0)
        snprintf(keys, sizeof(keys), " ref=%.2f ref_system=%s ratio=%.1fx", ref_s, system,
                 ref_s / v);
    return keys;
}

size_t rand_below(uint64_t *s, size_t n)
{
    return (size_t)(((xorshift64(s) >> 32) * (uint64_t)n) >> 32);
}

/* ---- names: "ctr-<i>" ------------------------------------------------------------ */

names_t names_make(size_t count)
{
    names_t ns = {.count = count};
    size_t cap = count * 24;
    ns.at = malloc(count * sizeof(char *));
    ns.text = malloc(cap);
    if (ns.at == NULL || ns.text == NULL)
        die("allocating names", HERD_ENOMEM);
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        int len = snprintf(ns.text + off, cap - off, NAME_PREFIX "%zu", i);
        ns.at[i] = ns.text + off;
        off += (size_t)len + 1;
    }
    return ns;
}

void names_free(names_t *ns)
{
    free(ns->at);
    free(ns->text);
}

long name_index(const char *name, size_t count)
{
    if (strncmp(name, NAME_PREFIX, sizeof(NAME_PREFIX) - 1) != 0)
        return -1;
    char *end;
    unsigned long i = strtoul(name + sizeof(NAME_PREFIX) - 1, &end, 10);
    return *end == '\0' && i < count ? (long)i : -1;
}

/* ---- a cluster on one loop ----------------------------------------------------------- */

typedef struct cluster {
    uv_loop_t loop;
    uv_timer_t pulse; /* keeps a loop turn short (PULSE_MS) */
    herd_node_t *node[MAX_NODES];
    char addr[MAX_NODES][64];
    int lenient;
} cluster_t;

static void on_pulse(uv_timer_t *t)
{
    (void)t;
}

static void cluster_init(cluster_t *cl, int lenient_detector)
{
    memset(cl, 0, sizeof(*cl));
    cl->lenient = lenient_detector;
    if (uv_loop_init(&cl->loop) != 0 || uv_timer_init(&cl->loop, &cl->pulse) != 0)
        die("uv_loop_init", 0);
    uv_timer_start(&cl->pulse, on_pulse, PULSE_MS, PULSE_MS);
}

static void turn(cluster_t *cl)
{
    uv_run(&cl->loop, UV_RUN_ONCE);
}

static const char *node_label(int k)
{
    static const char *names[MAX_NODES] = {"bench-a", "bench-b", "bench-c"};
    return names[k];
}

herd_node_t *handoff_node_start(uv_loop_t *loop, const char *name, const char *seed,
                                char *addr, size_t addr_cap, int lenient_detector)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        herd_node_t *n;
        herd_node_config_t nc = {.name = name, .loop = loop};
        int rc = herd_node_new(&nc, &n);
        if (rc != 0)
            die("herd_node_new", rc);
        snprintf(addr, addr_cap, "tcp://127.0.0.1:%d", next_port++);
        if (next_port > 60000)
            next_port = 20000;
        herd_cluster_config_t cc = {.listen = addr, .secret = secret,
                                    .secret_len = sizeof(secret) - 1,
                                    .seeds = seed ? &seed : NULL,
                                    .seed_count = seed ? 1 : 0};
        if (lenient_detector) {
            cc.suspect_ms = 30000;
            cc.down_ms = 60000;
        }
        rc = herd_cluster_start(n, &cc);
        if (rc == 0) {
            if ((rc = herd_registry_start(n)) != 0)
                die("herd_registry_start", rc);
            if ((rc = herd_dsup_start(n, node_dsup_cfg)) != 0)
                die("herd_dsup_start", rc);
            if ((rc = herd_service_register(n, "counter", &counter_behaviour)) != 0)
                die("herd_service_register", rc);
            return n;
        }
        herd_node_free(n); /* most likely the port is taken: try the next */
        if (rc != HERD_EIO)
            die("herd_cluster_start", rc);
    }
    die("finding a free port", 0);
    return NULL;
}

/* Node k, joining through node 0 unless it is node 0. */
static herd_node_t *cluster_add(cluster_t *cl, int k)
{
    cl->node[k] = handoff_node_start(&cl->loop, node_label(k), k > 0 ? cl->addr[0] : NULL,
                                     cl->addr[k], sizeof(cl->addr[k]), cl->lenient);
    return cl->node[k];
}

/* Every live node sees `want` members, all up. */
static int all_up(cluster_t *cl, int want)
{
    for (int k = 0; k < MAX_NODES; k++) {
        if (cl->node[k] == NULL)
            continue;
        herd_member_info_t m[MAX_NODES + 1];
        int count = herd_cluster_members(cl->node[k], m, MAX_NODES + 1);
        if (count != want)
            return 0;
        for (int i = 0; i < count; i++)
            if (m[i].state != HERD_MEMBER_UP)
                return 0;
    }
    return 1;
}

static void report_cluster(cluster_t *cl, size_t n);

static void wait_up(cluster_t *cl, int want, const char *what)
{
    double deadline = now_s() + JOIN_DEADLINE_S;
    while (!all_up(cl, want)) {
        if (now_s() > deadline) {
            fprintf(stderr, "bench_handoff: %s: the nodes did not all see each other up "
                            "within %.0f s\n", what, JOIN_DEADLINE_S);
            report_cluster(cl, 0);
            exit(1);
        }
        turn(cl);
    }
}

static void cluster_free(cluster_t *cl)
{
    for (int k = MAX_NODES - 1; k >= 0; k--)
        if (cl->node[k]) {
            herd_node_free(cl->node[k]);
            cl->node[k] = NULL;
        }
    uv_close((uv_handle_t *)&cl->pulse, NULL);
    for (int i = 0; i < 1000 && uv_loop_close(&cl->loop) == UV_EBUSY; i++)
        uv_run(&cl->loop, UV_RUN_NOWAIT);
}

/* ---- what a node holds: why a run did not settle ------------------------------------ */

typedef struct state_hist {
    size_t by_state[4];
} state_hist_t;

static int hist_child(void *data, const herd_child_view_t *c)
{
    state_hist_t *h = data;
    if ((unsigned)c->state < 4)
        h->by_state[c->state]++;
    return 0;
}

void report_node(herd_node_t *n, size_t names)
{
    herd_handoff_stats_t hs;
    herd_child_counts_t cc;
    herd_registry_stats_t rs;
    herd_cluster_stats_t cs;
    state_hist_t h = {{0}};
    if (herd_handoff_stats(n, &hs) != 0 || herd_count_children(n, &cc) != 0 ||
        herd_registry_stats(n, &rs) != 0 || herd_cluster_stats(n, &cs) != 0)
        return;
    herd_which_children(n, hist_child, &h);
    fprintf(stderr,
            "  %s: children local %llu (running %zu restarting %zu moving %zu arriving %zu) "
            "specs %llu visible %llu | handoffs started %llu committed %llu aborted %llu "
            "rejected %llu received %llu promoted %llu forwarded %llu in_flight %llu | "
            "starts %llu restarts %llu stops %llu | processes %zu",
            herd_node_name(n), (unsigned long long)cc.local, h.by_state[0], h.by_state[1],
            h.by_state[2], h.by_state[3], (unsigned long long)cc.specs,
            (unsigned long long)cc.running, (unsigned long long)hs.started,
            (unsigned long long)hs.committed, (unsigned long long)hs.aborted,
            (unsigned long long)hs.rejected, (unsigned long long)hs.received,
            (unsigned long long)hs.promoted, (unsigned long long)hs.forwarded,
            (unsigned long long)hs.in_flight, (unsigned long long)hs.starts,
            (unsigned long long)hs.restarts, (unsigned long long)hs.stops,
            herd_node_process_count(n));
    if (names)
        fprintf(stderr, " | registered %d of %zu",
                herd_registry_count(n, NAME_PREFIX), names);
    fprintf(stderr, " | registry entries %llu names %llu deltas out %llu in %llu "
                    "full syncs out %llu in %llu conflicts %llu reregistered %llu | "
                    "frames out %llu in %llu dropped_out %llu\n",
            (unsigned long long)rs.entries, (unsigned long long)rs.names,
            (unsigned long long)rs.deltas_out, (unsigned long long)rs.deltas_in,
            (unsigned long long)rs.full_syncs_out, (unsigned long long)rs.full_syncs_in,
            (unsigned long long)rs.conflicts_resolved, (unsigned long long)rs.reregistered,
            (unsigned long long)cs.frames_out, (unsigned long long)cs.frames_in,
            (unsigned long long)cs.dropped_out);
    for (int i = 0; i < 16; i++)
        if (cs.rejected[i] && herd_cluster_reject_name(i))
            fprintf(stderr, "    rejected[%s] %llu\n", herd_cluster_reject_name(i),
                    (unsigned long long)cs.rejected[i]);
    herd_member_info_t m[MAX_NODES + 2];
    int count = herd_cluster_members(n, m, MAX_NODES + 2);
    fprintf(stderr, "    members:");
    for (int i = 0; i < count && i < MAX_NODES + 2; i++)
        fprintf(stderr, " %s=%s(%llums)", m[i].name, herd_member_state_name(m[i].state),
                (unsigned long long)m[i].last_heard_ms);
    fputc('\n', stderr);
}

static void report_cluster(cluster_t *cl, size_t names)
{
    for (int k = 0; k < MAX_NODES; k++)
        if (cl->node[k])
            report_node(cl->node[k], names);
}

/* ---- the driver: a process that keeps calls to counters in flight -------------------- */

typedef enum job { JOB_NONE, JOB_PREINCR, JOB_GET, JOB_LOAD } job_t;

typedef struct counters {
    names_t names;
    size_t n;
    uint64_t *expected;  /* acknowledged increments */
    uint32_t *uncertain; /* increments whose call failed after it was sent */
    int64_t *got;        /* "get" answers */
    uint8_t *got_ok;
} counters_t;

/* Counter i's setup increments. */
static uint32_t setup_reps(size_t i)
{
    return 1 + (uint32_t)(i % 3);
}

typedef struct driver {
    herd_node_t *node;
    herd_pid_t pid;
    counters_t *c;
    job_t job;
    size_t cursor, stride, end; /* list jobs: task indexes cursor, +stride, ... < end */
    size_t window, outstanding;
    struct {
        uint64_t ref;
        uint32_t idx;
        uint8_t used, get;
        double sent_at;
    } slot[SETUP_WINDOW];
    uint32_t free_slot[SETUP_WINDOW];
    size_t nfree;
    uint64_t rng;
    /* incr: acknowledged, failed at once (nothing sent), failed after sending */
    uint64_t acked, failed_now, enoent_now, failed_reply, timeouts;
    uint64_t get_failed, stray;
    uint64_t now_err[32], reply_err[32]; /* by -error code */
    /* for --verbose: the first failures, which counter and when (sent) */
#define DIAG_MAX 4096
    uint32_t diag_idx[DIAG_MAX];
    double diag_at[DIAG_MAX];
    int diag_err[DIAG_MAX];
    size_t diag_n;
} driver_t;

static void diag(driver_t *d, uint32_t idx, double at, int err)
{
    if (d->diag_n < DIAG_MAX) {
        d->diag_idx[d->diag_n] = idx;
        d->diag_at[d->diag_n] = at;
        d->diag_err[d->diag_n++] = err;
    }
}

/* The next counter to call, or -1 when the job has no more. */
static long next_task(driver_t *d)
{
    size_t n = d->c->n;
    switch (d->job) {
    case JOB_LOAD:
        return (long)rand_below(&d->rng, n);
    case JOB_PREINCR:
        while (d->cursor < d->end) {
            size_t t = d->cursor;
            d->cursor += d->stride;
            if (t / n < setup_reps(t % n))
                return (long)(t % n);
        }
        return -1;
    case JOB_GET:
        if (d->cursor < d->end) {
            size_t t = d->cursor;
            d->cursor += d->stride;
            return (long)t;
        }
        return -1;
    default:
        return -1;
    }
}

static void driver_fill(herd_proc_t *self, driver_t *d)
{
    size_t attempts = 0;
    while (d->job != JOB_NONE && d->outstanding < d->window && d->nfree > 0 &&
           attempts++ < 2 * SETUP_WINDOW) {
        long idx = next_task(d);
        if (idx < 0)
            break;
        int get = d->job == JOB_GET;
        const char *cmd = get ? "get" : "incr";
        uint64_t ref;
        int rc = herd_call_name(self, d->c->names.at[idx], cmd, strlen(cmd), CALL_TIMEOUT_MS,
                                &ref);
        if (rc != 0) {
            if (get)
                d->get_failed++;
            else
                d->failed_now++;
            if (rc == HERD_ENOENT)
                d->enoent_now++;
            d->now_err[(-rc) & 31]++;
            if (!get)
                diag(d, (uint32_t)idx, now_s(), rc);
            continue;
        }
        uint32_t s = d->free_slot[--d->nfree];
        d->slot[s].ref = ref;
        d->slot[s].idx = (uint32_t)idx;
        d->slot[s].get = (uint8_t)get;
        d->slot[s].used = 1;
        d->slot[s].sent_at = now_s();
        d->outstanding++;
    }
}

static void driver_reply(driver_t *d, const herd_msg_t *msg)
{
    size_t s = 0;
    while (s < SETUP_WINDOW && !(d->slot[s].used && d->slot[s].ref == msg->ref))
        s++;
    if (s == SETUP_WINDOW) {
        d->stray++;
        return;
    }
    uint32_t idx = d->slot[s].idx;
    counters_t *c = d->c;
    if (d->slot[s].get) {
        char text[32];
        size_t len = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
        memcpy(text, msg->data, len);
        text[len] = '\0';
        if (msg->status == 0) {
            c->got[idx] = strtoll(text, NULL, 10);
            c->got_ok[idx] = 1;
        } else {
            d->get_failed++;
        }
    } else if (msg->status == 0) {
        c->expected[idx]++;
        d->acked++;
    } else {
        c->uncertain[idx]++;
        d->failed_reply++;
        if (msg->status == HERD_ETIMEDOUT)
            d->timeouts++;
        d->reply_err[(-msg->status) & 31]++;
        diag(d, idx, d->slot[s].sent_at, msg->status);
    }
    d->slot[s].used = 0;
    d->free_slot[d->nfree++] = (uint32_t)s;
    d->outstanding--;
}

static int driver_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    driver_t *d;
    if (len != sizeof(d))
        return HERD_EINVAL;
    memcpy(&d, arg, sizeof(d));
    *state = d;
    return 0;
}

static int driver_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    driver_t *d = state;
    if (msg->kind == HERD_MSG_REPLY)
        driver_reply(d, msg);
    driver_fill(self, d); /* any other message is a kick */
    return 0;
}

static const herd_behaviour_t driver_behaviour = {
    .name = "bench-driver",
    .init = driver_init,
    .handle_info = driver_info,
};

static driver_t *driver_start(herd_node_t *n, counters_t *c, uint64_t seed)
{
    driver_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        die("allocating a driver", HERD_ENOMEM);
    d->node = n;
    d->c = c;
    d->rng = seed | 1;
    for (uint32_t s = 0; s < SETUP_WINDOW; s++)
        d->free_slot[d->nfree++] = SETUP_WINDOW - 1 - s;
    herd_spawn_opts_t o = {.behaviour = &driver_behaviour, .arg = &d, .arg_len = sizeof(d)};
    int rc = herd_spawn(n, &o, &d->pid);
    if (rc != 0)
        die("spawning a driver", rc);
    return d;
}

static void driver_job(driver_t *d, job_t job, size_t first, size_t stride, size_t end,
                       size_t window)
{
    d->job = job;
    d->cursor = first;
    d->stride = stride;
    d->end = end;
    d->window = window;
    int rc = herd_node_send(d->node, d->pid, "go", 2);
    if (rc != 0)
        die("kicking a driver", rc);
}

static int driver_done(const driver_t *d)
{
    return d->outstanding == 0 &&
           (d->job == JOB_NONE || ((d->job == JOB_PREINCR || d->job == JOB_GET) &&
                                   d->cursor >= d->end));
}

/* Run a list job over `nd` drivers until all are done. */
static void drivers_run(cluster_t *cl, driver_t **ds, int nd, job_t job, size_t end,
                        const char *what)
{
    for (int i = 0; i < nd; i++)
        driver_job(ds[i], job, (size_t)i, (size_t)nd, end, SETUP_WINDOW);
    double deadline = now_s() + SETUP_DEADLINE_S;
    for (;;) {
        int done = 1;
        for (int i = 0; i < nd; i++)
            done = done && driver_done(ds[i]);
        if (done)
            break;
        if (now_s() > deadline) {
            fprintf(stderr, "bench_handoff: %s: the calls did not finish within %.0f s\n",
                    what, SETUP_DEADLINE_S);
            for (int i = 0; i < nd; i++)
                fprintf(stderr, "  driver %d: outstanding %zu cursor %zu/%zu\n", i,
                        ds[i]->outstanding, ds[i]->cursor, ds[i]->end);
            report_cluster(cl, ds[0]->c->n);
            exit(1);
        }
        turn(cl);
    }
    for (int i = 0; i < nd; i++)
        ds[i]->job = JOB_NONE;
}

/* ---- starting children by name ---------------------------------------------------- */

typedef struct start_tally {
    size_t answered, ok, already, failed;
    int first_error;
} start_tally_t;

static void start_done(void *data, const herd_start_result_t *res)
{
    start_tally_t *t = data;
    t->answered++;
    if (res->status != 0) {
        t->failed++;
        if (!t->first_error)
            t->first_error = res->status;
    } else if (res->already_started) {
        t->already++;
    } else {
        t->ok++;
    }
}

/* Issue the starts of names[0..n), child i from the i % nodes'th live node
 * of `from`, START_BATCH per loop turn. Returns when all are issued. */
static void issue_starts(cluster_t *cl, const names_t *ns, size_t n, int nodes,
                         start_tally_t *tally)
{
    for (size_t i = 0; i < n; i++) {
        herd_child_req_t req = {.name = ns->at[i], .service = "counter",
                                .restart = HERD_RESTART_PERMANENT, .replicas = start_replicas};
        int rc = herd_start_child_async(cl->node[i % (size_t)nodes], &req, START_TIMEOUT_MS,
                                        start_done, tally);
        if (rc != 0)
            die("herd_start_child_async", rc);
        if ((i + 1) % START_BATCH == 0)
            turn(cl);
    }
}

/* Every name answers whereis on every live node; returns how many lookups
 * failed (0: all visible). */
static size_t missing_lookups(cluster_t *cl, const names_t *ns)
{
    size_t missing = 0;
    for (int k = 0; k < MAX_NODES; k++) {
        if (cl->node[k] == NULL)
            continue;
        for (size_t i = 0; i < ns->count; i++)
            if (herd_whereis(cl->node[k], ns->at[i], NULL, NULL) != 0)
                missing++;
    }
    return missing;
}

/* Start names on the first `nodes` nodes and wait until each answers
 * everywhere (set-up, not timed). */
static void start_all(cluster_t *cl, const names_t *ns, int nodes)
{
    start_tally_t tally = {0};
    issue_starts(cl, ns, ns->count, nodes, &tally);
    double deadline = now_s() + SETUP_DEADLINE_S, next_check = 0;
    for (;;) {
        if (tally.failed)
            die("starting the children", tally.first_error);
        if (tally.answered == ns->count && now_s() >= next_check) {
            next_check = now_s() + CHECK_EVERY_S;
            if (missing_lookups(cl, ns) == 0)
                break;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "bench_handoff: starting %zu children: %zu answered within %.0f s\n",
                    ns->count, tally.answered, SETUP_DEADLINE_S);
            report_cluster(cl, ns->count);
            exit(1);
        }
        turn(cl);
    }
}

/* ---- where every child runs -------------------------------------------------------- */

typedef struct placement {
    size_t n;
    uint8_t *where;    /* per child: 1 + node index, 0: nowhere */
    herd_pid_t *pid;
    size_t unique, copies, not_running, off_owner;
    int node;          /* while visiting */
    herd_node_t *nodes[MAX_NODES];
} placement_t;

static void placement_init(placement_t *p, size_t n)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->where = calloc(n, 1);
    p->pid = calloc(n, sizeof(herd_pid_t));
    if (p->where == NULL || p->pid == NULL)
        die("allocating the placement", HERD_ENOMEM);
}

static void placement_free(placement_t *p)
{
    free(p->where);
    free(p->pid);
}

static int place_child(void *data, const herd_child_view_t *c)
{
    placement_t *p = data;
    long i = name_index(c->name, p->n);
    if (i < 0)
        return 0;
    p->copies++;
    if (c->state != HERD_CHILD_RUNNING)
        p->not_running++;
    if (p->where[i] == 0)
        p->unique++;
    p->where[i] = (uint8_t)(p->node + 1);
    p->pid[i] = c->pid;
    /* on its owner in every live node's ring */
    const char *self = herd_node_name(p->nodes[p->node]);
    for (int k = 0; k < MAX_NODES; k++) {
        if (p->nodes[k] == NULL)
            continue;
        const struct herd_ring *r = herd_cluster_ring(p->nodes[k]);
        const char *owner;
        if (r == NULL || herd_ring_owner(r, c->name, strlen(c->name), &owner) != 0 ||
            strcmp(owner, self) != 0) {
            p->off_owner++;
            break;
        }
    }
    return 0;
}

/* Visit every live node's children. */
static void placement_take(placement_t *p, cluster_t *cl)
{
    memset(p->where, 0, p->n);
    p->unique = p->copies = p->not_running = p->off_owner = 0;
    for (int k = 0; k < MAX_NODES; k++)
        p->nodes[k] = cl->node[k];
    for (int k = 0; k < MAX_NODES; k++) {
        if (cl->node[k] == NULL)
            continue;
        p->node = k;
        herd_which_children(cl->node[k], place_child, p);
    }
}

/* Settled: each child once, running on its owner, and every live node's
 * whereis answers its pid. */
static int placement_settled(placement_t *p, cluster_t *cl, const names_t *ns)
{
    placement_take(p, cl);
    if (p->unique != p->n || p->copies != p->n || p->not_running || p->off_owner)
        return 0;
    for (int k = 0; k < MAX_NODES; k++) {
        if (cl->node[k] == NULL)
            continue;
        for (size_t i = 0; i < p->n; i++) {
            herd_pid_t pid;
            if (herd_whereis(cl->node[k], ns->at[i], &pid, NULL) != 0 ||
                !herd_pid_equal(pid, p->pid[i]))
                return 0;
        }
    }
    return 1;
}

/* Until the placement is settled (set-up, not timed: on a loaded machine the
 * last starts' registrations may lag the lookups start_all waited for). */
static void wait_placement(cluster_t *cl, placement_t *p, const names_t *ns, const char *what)
{
    double deadline = now_s() + SETUP_DEADLINE_S, next_check = 0;
    for (;;) {
        if (now_s() >= next_check) {
            if (placement_settled(p, cl, ns))
                return;
            next_check = now_s() + CHECK_EVERY_S;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "bench_handoff: %s: not settled within %.0f s (children %zu "
                            "unique of %zu, %zu copies, %zu not running, %zu off their owner)\n",
                    what, SETUP_DEADLINE_S, p->unique, p->n, p->copies, p->not_running,
                    p->off_owner);
            report_cluster(cl, p->n);
            exit(1);
        }
        turn(cl);
    }
}

static uint64_t sum_stat(cluster_t *cl, size_t offset)
{
    uint64_t total = 0;
    for (int k = 0; k < MAX_NODES; k++) {
        herd_handoff_stats_t hs;
        if (cl->node[k] && herd_handoff_stats(cl->node[k], &hs) == 0)
            total += *(const uint64_t *)((const char *)&hs + offset);
    }
    return total;
}

#define SUM_STAT(cl, field) sum_stat((cl), offsetof(herd_handoff_stats_t, field))

static size_t local_children(cluster_t *cl)
{
    size_t total = 0;
    for (int k = 0; k < MAX_NODES; k++)
        if (cl->node[k])
            total += (size_t)herd_which_children(cl->node[k], NULL, NULL);
    return total;
}

/* ---- 1. handoff: a third node joins two that hold the counters ---------------------- */

/* --verbose: the failed calls of a driver by error, by where the counter was
 * before the join and after, and when they were sent (s after the join). */
static void diag_report(const driver_t *d, const char *on, const placement_t *before,
                        const placement_t *after, double t0, double join_s)
{
    for (int e = 1; e < 32; e++) {
        size_t moves[MAX_NODES + 1][MAX_NODES + 1] = {{0}}, count = 0, before_join = 0;
        double first = 1e9, last = -1e9;
        for (size_t k = 0; k < d->diag_n; k++) {
            if (d->diag_err[k] != -e)
                continue;
            uint32_t idx = d->diag_idx[k];
            moves[before->where[idx]][after->where[idx]]++;
            double at = d->diag_at[k] - t0;
            first = at < first ? at : first;
            last = at > last ? at : last;
            before_join += at < join_s;
            count++;
        }
        if (count == 0)
            continue;
        fprintf(stderr, "  driver on %s: %zu calls %s, sent %.3f..%.3f s after the join "
                        "(%zu before every node saw every node up at %.3f s); counters:",
                on, count, herd_err_name(-e), first, last, before_join, join_s);
        for (int a = 0; a <= MAX_NODES; a++)
            for (int b = 0; b <= MAX_NODES; b++)
                if (moves[a][b])
                    fprintf(stderr, " %s->%s %zu", a ? node_label(a - 1) : "none",
                            b ? node_label(b - 1) : "none", moves[a][b]);
        fputc('\n', stderr);
    }
}

typedef struct handoff_result {
    double settle_s, join_s, first_commit_s, last_commit_s;
    double wave_s;       /* the first wave: from the first offer until none is in flight */
    uint64_t wave_moves; /* committed by then */
    uint64_t moved, expected_moves, aborted, rejected, forwarded;
    uint64_t lookups, lookups_failed;
    uint64_t increments, lost, extra, uncertain, failed_now, enoent_now, unread;
    double f2c_ms; /* median freeze-to-commit of the recent moves */
} handoff_result_t;

typedef struct f2c {
    double v[2 * HERD_HANDOFF_RECENT];
    size_t n;
} f2c_t;

static int take_f2c(void *data, const herd_handoff_view_t *h)
{
    f2c_t *f = data;
    if (h->freeze_to_commit_us && strcmp(h->phase, "committed") == 0 &&
        f->n < sizeof(f->v) / sizeof(f->v[0]))
        f->v[f->n++] = (double)h->freeze_to_commit_us / 1000.0;
    return 0;
}

static handoff_result_t handoff_run(const names_t *ns, uint64_t seed)
{
    const size_t n = ns->count;
    handoff_result_t r = {0};
    cluster_t *cl = malloc(sizeof(*cl));
    if (cl == NULL)
        die("allocating the cluster", HERD_ENOMEM);
    cluster_init(cl, lenient);
    cluster_add(cl, 0);
    cluster_add(cl, 1);
    wait_up(cl, 2, "handoff: two nodes joining");
    start_all(cl, ns, 2);

    counters_t c = {.names = *ns, .n = n};
    c.expected = calloc(n, sizeof(*c.expected));
    c.uncertain = calloc(n, sizeof(*c.uncertain));
    c.got = calloc(n, sizeof(*c.got));
    c.got_ok = calloc(n, 1);
    if (!c.expected || !c.uncertain || !c.got || !c.got_ok)
        die("allocating counters", HERD_ENOMEM);
    driver_t *ds[2] = {driver_start(cl->node[0], &c, seed), driver_start(cl->node[1], &c,
                                                                         seed * 31 + 7)};
    drivers_run(cl, ds, 2, JOB_PREINCR, 3 * n, "handoff: setup increments");
    for (int i = 0; i < 2; i++)
        if (ds[i]->failed_now || ds[i]->failed_reply)
            die("the setup increments", 0);
    for (size_t i = 0; i < n; i++)
        if (c.expected[i] != setup_reps(i))
            die("counting the setup increments", 0);
    uint64_t setup_acked = ds[0]->acked + ds[1]->acked;

    placement_t before, p;
    placement_init(&before, n);
    placement_init(&p, n);
    wait_placement(cl, &before, ns, "handoff: the two nodes' placement before the join");

    /* the load: the drivers keep calls in flight from here on */
    for (int i = 0; i < 2; i++)
        driver_job(ds[i], JOB_LOAD, 0, 1, 0, DRIVER_WINDOW);
    herd_node_run_for(cl->node[0], 20);

    uint64_t rng = seed ^ 0x5bd1e995;
    double t0 = now_s();
    cluster_add(cl, 2);
    double deadline = t0 + SETTLE_DEADLINE_S, next_check = 0;
    int joined = 0;
    uint64_t last_committed = 0;
    double wave_start = 0;
#define BINS 64
#define BIN_S 0.1
    uint64_t bins[2][BINS] = {{0}}, bins_started[2][BINS] = {{0}};
    size_t nbins = 0;
    uint64_t cbin[BINS][5] = {{0}};
    uint8_t cbin_done[BINS] = {0};
    double seen[MAX_NODES][MAX_NODES] = {{0}}; /* [k][j]: when k first listed j (any state) */
    double seen_up[MAX_NODES][MAX_NODES] = {{0}};
    for (;;) {
        turn(cl);
        double t = now_s();
        if (verbose && !joined)
            for (int k = 0; k < MAX_NODES; k++) {
                herd_member_info_t m[MAX_NODES + 1];
                int count = cl->node[k] ? herd_cluster_members(cl->node[k], m, MAX_NODES + 1) : 0;
                for (int i = 0; i < count && i <= MAX_NODES; i++)
                    for (int j = 0; j < MAX_NODES; j++)
                        if (strcmp(m[i].name, node_label(j)) == 0) {
                            if (seen[k][j] == 0)
                                seen[k][j] = t;
                            if (seen_up[k][j] == 0 && m[i].state == HERD_MEMBER_UP)
                                seen_up[k][j] = t;
                        }
            }
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < LOOKUPS_PER_TURN; j++) {
                r.lookups++;
                if (herd_whereis(cl->node[k], ns->at[rand_below(&rng, n)], NULL, NULL) ==
                    HERD_ENOENT)
                    r.lookups_failed++;
            }
        if (!joined && all_up(cl, 3)) {
            joined = 1;
            r.join_s = t - t0;
        }
        uint64_t committed = SUM_STAT(cl, committed);
        if (wave_start == 0 && SUM_STAT(cl, started) > 0)
            wave_start = t;
        else if (wave_start > 0 && r.wave_moves == 0 && SUM_STAT(cl, in_flight) == 0) {
            r.wave_s = t - wave_start;
            r.wave_moves = committed;
        }
        if (verbose) {
            size_t bin = (size_t)((t - t0) / BIN_S);
            if (bin < BINS)
                for (int k = 0; k < 2; k++) {
                    herd_handoff_stats_t hs;
                    herd_handoff_stats(cl->node[k], &hs);
                    bins[k][bin] = hs.committed;
                    bins_started[k][bin] = hs.started;
                    if (bin + 1 > nbins)
                        nbins = bin + 1;
                }
            if (bin < BINS && !cbin_done[bin]) { /* once per bin: the new node's view */
                herd_handoff_stats_t hs;
                herd_handoff_stats(cl->node[2], &hs);
                cbin_done[bin] = 1;
                cbin[bin][0] = herd_spec_count(cl->node[2]);
                cbin[bin][1] = (uint64_t)herd_registry_count(cl->node[2], NAME_PREFIX);
                cbin[bin][2] = hs.received;
                cbin[bin][3] = hs.stops;
                cbin[bin][4] = hs.starts;
            }
        }
        if (committed != last_committed) {
            if (last_committed == 0)
                r.first_commit_s = t - t0;
            r.last_commit_s = t - t0;
            last_committed = committed;
        }
        if (joined && t >= next_check && SUM_STAT(cl, in_flight) == 0 &&
            local_children(cl) == n) {
            next_check = t + CHECK_EVERY_S;
            if (placement_settled(&p, cl, ns))
                break;
        }
        if (t > deadline) {
            placement_take(&p, cl);
            fprintf(stderr, "bench_handoff: handoff: moves did not settle within %.0f s "
                            "(joined %d, committed %llu; children %zu unique of %zu, "
                            "%zu copies, %zu not running, %zu off their owner)\n",
                    SETTLE_DEADLINE_S, joined, (unsigned long long)committed, p.unique, n,
                    p.copies, p.not_running, p.off_owner);
            report_cluster(cl, n);
            exit(1);
        }
    }
    r.settle_s = now_s() - t0;
    r.moved = SUM_STAT(cl, committed);
    r.aborted = SUM_STAT(cl, aborted);
    r.rejected = SUM_STAT(cl, rejected);
    r.forwarded = SUM_STAT(cl, forwarded);
    for (size_t i = 0; i < n; i++)
        r.expected_moves += before.where[i] != p.where[i];
    f2c_t f = {.n = 0};
    herd_handoffs(cl->node[0], take_f2c, &f);
    herd_handoffs(cl->node[1], take_f2c, &f);
    r.f2c_ms = f.n ? median(f.v, f.n) : 0;

    /* stop the load, let the last calls answer */
    for (int i = 0; i < 2; i++)
        ds[i]->job = JOB_NONE;
    deadline = now_s() + CALL_TIMEOUT_MS / 1000.0 + 5.0;
    while (ds[0]->outstanding + ds[1]->outstanding > 0) {
        if (now_s() > deadline) {
            fprintf(stderr, "bench_handoff: handoff: %zu calls never answered\n",
                    ds[0]->outstanding + ds[1]->outstanding);
            report_cluster(cl, n);
            exit(1);
        }
        turn(cl);
    }
    for (int i = 0; i < 2; i++) {
        r.failed_now += ds[i]->failed_now;
        r.enoent_now += ds[i]->enoent_now;
        r.increments += ds[i]->acked;
    }
    r.increments -= setup_acked;
    if (verbose)
        for (int i = 0; i < 2; i++)
            for (int e = 1; e < 32; e++)
                if (ds[i]->now_err[e] || ds[i]->reply_err[e])
                    fprintf(stderr, "  driver on %s: %s: %llu calls failed at once, %llu "
                                    "answered with it\n",
                            node_label(i), herd_err_name(-e),
                            (unsigned long long)ds[i]->now_err[e],
                            (unsigned long long)ds[i]->reply_err[e]);
    if (verbose) {
        for (int i = 0; i < 2; i++)
            diag_report(ds[i], node_label(i), &before, &p, t0, r.join_s);
        for (int k = 0; k < 2; k++) {
            fprintf(stderr, "  %s moves started/committed by %.1f s steps:", node_label(k),
                    BIN_S);
            uint64_t done = 0, st = 0;
            for (size_t b = 0; b < nbins; b++) {
                done = bins[k][b] ? bins[k][b] : done;
                st = bins_started[k][b] ? bins_started[k][b] : st;
                fprintf(stderr, " %llu/%llu", (unsigned long long)st, (unsigned long long)done);
            }
            fputc('\n', stderr);
        }
        fprintf(stderr, "  %s by %.1f s steps (specs/registered/received/stops/starts):",
                node_label(2), BIN_S);
        for (size_t b = 0; b < nbins; b++)
            if (cbin_done[b])
                fprintf(stderr, " [%zu] %llu/%llu/%llu/%llu/%llu", b,
                        (unsigned long long)cbin[b][0], (unsigned long long)cbin[b][1],
                        (unsigned long long)cbin[b][2], (unsigned long long)cbin[b][3],
                        (unsigned long long)cbin[b][4]);
        fputc('\n', stderr);
        fprintf(stderr, "  membership after the join (s): ");
        for (int k = 0; k < MAX_NODES; k++)
            for (int j = 0; j < MAX_NODES; j++)
                if (j != k && (k == 2 || j == 2))
                    fprintf(stderr, " %s lists %s %.3f (up %.3f);", node_label(k),
                            node_label(j), seen[k][j] - t0, seen_up[k][j] - t0);
        fputc('\n', stderr);
    }

    /* read every counter by name */
    drivers_run(cl, ds, 2, JOB_GET, n, "handoff: reading the counters");
    for (size_t i = 0; i < n; i++) {
        r.uncertain += c.uncertain[i];
        if (!c.got_ok[i]) {
            r.unread++;
            continue;
        }
        int64_t want = (int64_t)c.expected[i];
        if (c.got[i] < want)
            r.lost += (uint64_t)(want - c.got[i]);
        else if (c.got[i] > want)
            r.extra += (uint64_t)(c.got[i] - want);
    }
    if (verbose && r.lost) {
        size_t paths[MAX_NODES + 1][MAX_NODES + 1] = {{0}}, short_n = 0, below_setup = 0;
        for (size_t i = 0; i < n; i++) {
            if (!c.got_ok[i] || c.got[i] >= (int64_t)c.expected[i])
                continue;
            short_n++;
            below_setup += c.got[i] < (int64_t)setup_reps(i);
            paths[before.where[i]][p.where[i]]++;
        }
        fprintf(stderr, "  %zu counters short (%zu below their setup value: a fresh copy);",
                short_n, below_setup);
        for (int a = 0; a <= MAX_NODES; a++)
            for (int b = 0; b <= MAX_NODES; b++)
                if (paths[a][b])
                    fprintf(stderr, " %s->%s %zu", a ? node_label(a - 1) : "none",
                            b ? node_label(b - 1) : "none", paths[a][b]);
        fputc('\n', stderr);
    }
    if (verbose)
        fprintf(stderr,
                "  handoff run: join %.3f s, first commit %.3f s, first wave %llu moves in %.3f s, "
                "last commit %.3f s, settled %.3f s; moved %llu (expected %llu) aborted %llu rejected %llu forwarded %llu; "
                "freeze-to-commit median %.2f ms (%zu recent); increments %llu lost %llu "
                "extra %llu uncertain %llu failed-at-once %llu (ENOENT %llu) unread %llu; "
                "lookups %llu failed %llu\n",
                r.join_s, r.first_commit_s, (unsigned long long)r.wave_moves, r.wave_s,
                r.last_commit_s, r.settle_s,
                (unsigned long long)r.moved, (unsigned long long)r.expected_moves,
                (unsigned long long)r.aborted, (unsigned long long)r.rejected,
                (unsigned long long)r.forwarded, r.f2c_ms, f.n,
                (unsigned long long)r.increments, (unsigned long long)r.lost,
                (unsigned long long)r.extra, (unsigned long long)r.uncertain,
                (unsigned long long)r.failed_now, (unsigned long long)r.enoent_now,
                (unsigned long long)r.unread, (unsigned long long)r.lookups,
                (unsigned long long)r.lookups_failed);
    if (verbose)
        report_cluster(cl, n);
    placement_free(&before);
    placement_free(&p);
    cluster_free(cl);
    free(cl);
    free(ds[0]);
    free(ds[1]);
    free(c.expected);
    free(c.uncertain);
    free(c.got);
    free(c.got_ok);
    return r;
}

static int bench_handoff(size_t n, int runs)
{
    names_t ns = names_make(n);
    double wave[MAX_RUNS], wave_moves[MAX_RUNS];
    double settle[MAX_RUNS], rate[MAX_RUNS], join[MAX_RUNS], last[MAX_RUNS], f2c[MAX_RUNS],
        moved[MAX_RUNS];
    handoff_result_t sum = {0};
    for (int i = 0; i < runs; i++) {
        handoff_result_t r = handoff_run(&ns, 0x9e3779b97f4a7c15ull + (uint64_t)i * 7919);
        settle[i] = r.settle_s;
        join[i] = r.join_s;
        last[i] = r.last_commit_s;
        moved[i] = (double)r.moved;
        rate[i] = r.last_commit_s > 0 ? (double)r.moved / r.last_commit_s : 0;
        f2c[i] = r.f2c_ms;
        wave[i] = r.wave_s > 0 ? (double)r.wave_moves / r.wave_s : 0;
        wave_moves[i] = (double)r.wave_moves;
        sum.moved += r.moved;
        sum.expected_moves += r.expected_moves;
        sum.aborted += r.aborted;
        sum.rejected += r.rejected;
        sum.forwarded += r.forwarded;
        sum.lookups += r.lookups;
        sum.lookups_failed += r.lookups_failed;
        sum.increments += r.increments;
        sum.lost += r.lost;
        sum.extra += r.extra;
        sum.uncertain += r.uncertain;
        sum.failed_now += r.failed_now;
        sum.unread += r.unread;
    }
    const char *det = lenient ? "lenient" : "default";
    double st = median(settle, (size_t)runs);
    printf("bench handoff settle_s %.3f s counters=%zu nodes=2+1 replicas=1 processes=1 runs=%d "
           "detector=%s%s\n",
           st, n, runs, det, ref_keys(JOIN_REF_S, "Swarm", st, n));
    printf("bench handoff join_s %.3f s nodes=2+1 runs=%d\n", median(join, (size_t)runs), runs);
    printf("bench handoff last_commit_s %.3f s runs=%d\n", median(last, (size_t)runs), runs);
    printf("bench handoff moved %.0f moves expected=%llu aborted=%llu rejected=%llu "
           "forwarded=%llu runs=%d\n",
           median(moved, (size_t)runs), (unsigned long long)sum.expected_moves / (uint64_t)runs,
           (unsigned long long)sum.aborted, (unsigned long long)sum.rejected,
           (unsigned long long)sum.forwarded, runs);
    printf("bench handoff moves_per_s %.0f moves/s window=join..last_commit runs=%d\n",
           median(rate, (size_t)runs), runs);
    printf("bench handoff wave_moves_per_s %.0f moves/s moves=%.0f window=first_offer..none_in_flight "
           "runs=%d\n", median(wave, (size_t)runs), median(wave_moves, (size_t)runs), runs);
    printf("bench handoff freeze_to_commit_ms %.2f ms recent=%u runs=%d\n",
           median(f2c, (size_t)runs), 2 * HERD_HANDOFF_RECENT, runs);
    printf("bench handoff lookups_failed %llu lookups=%llu runs=%d\n",
           (unsigned long long)sum.lookups_failed, (unsigned long long)sum.lookups, runs);
    printf("bench handoff increments_lost %llu increments=%llu extra=%llu uncertain=%llu "
           "failed_at_once=%llu unread=%llu runs=%d\n",
           (unsigned long long)sum.lost, (unsigned long long)sum.increments,
           (unsigned long long)sum.extra, (unsigned long long)sum.uncertain,
           (unsigned long long)sum.failed_now, (unsigned long long)sum.unread, runs);
    fflush(stdout);
    names_free(&ns);
    return sum.lost || sum.lookups_failed || sum.unread || sum.moved != sum.expected_moves;
}

/* ---- 2. failover: one of three nodes is killed ----------------------------------------- */

typedef struct down_watch {
    const char *victim;
    double at; /* when this survivor declared it down; 0: not yet */
} down_watch_t;

static void on_member_change(void *data, const char *name, uint64_t incarnation,
                             herd_member_state_t old_state, herd_member_state_t new_state,
                             int gone)
{
    (void)incarnation;
    (void)old_state;
    down_watch_t *w = data;
    if (w->at == 0 && strcmp(name, w->victim) == 0 &&
        (new_state == HERD_MEMBER_DOWN || new_state == HERD_MEMBER_LEFT || gone))
        w->at = now_s();
}

typedef struct failover_result {
    double total_s, detect_s, restart_s;
    double both_s; /* until the other survivor sees every child registered too */
    size_t victim_children, lost, duplicated, max_transient_dup;
    uint64_t restarted;
} failover_result_t;

static failover_result_t failover_run(const names_t *ns)
{
    const size_t n = ns->count;
    failover_result_t r = {0};
    cluster_t *cl = malloc(sizeof(*cl));
    if (cl == NULL)
        die("allocating the cluster", HERD_ENOMEM);
    cluster_init(cl, 0); /* the default failure detector, always */
    for (int k = 0; k < MAX_NODES; k++)
        cluster_add(cl, k);
    wait_up(cl, 3, "failover: three nodes joining");
    start_all(cl, ns, 3);
    placement_t p;
    placement_init(&p, n);
    wait_placement(cl, &p, ns, "failover: the placement before the kill");
    const int victim = 2;
    r.victim_children = (size_t)herd_which_children(cl->node[victim], NULL, NULL);
    down_watch_t watch[2] = {{node_label(victim), 0}, {node_label(victim), 0}};
    for (int k = 0; k < 2; k++)
        if (herd_cluster_on_change(cl->node[k], on_member_change, &watch[k]) != 0)
            die("herd_cluster_on_change", 0);
    uint64_t starts0 = 0; /* the survivors' starts so far */
    for (int k = 0; k < 2; k++) {
        herd_handoff_stats_t hs;
        if (herd_handoff_stats(cl->node[k], &hs) == 0)
            starts0 += hs.starts;
    }

    double t0 = now_s();
    herd_node_free(cl->node[victim]); /* no leave: its sockets just close */
    cl->node[victim] = NULL;
    double deadline = t0 + SETTLE_DEADLINE_S, next_check = 0;
    for (;;) {
        turn(cl);
        double t = now_s();
        if (watch[0].at && watch[1].at && t >= next_check && local_children(cl) >= n) {
            next_check = t + CHECK_EVERY_S;
            placement_take(&p, cl);
            size_t dup = p.copies - p.unique;
            if (dup > r.max_transient_dup)
                r.max_transient_dup = dup;
            herd_child_counts_t cc;
            if (p.unique == n && p.copies == n && p.not_running == 0 &&
                herd_count_children(cl->node[0], &cc) == 0 && cc.specs == n &&
                cc.running == n)
                break;
        }
        if (t > deadline) {
            placement_take(&p, cl);
            fprintf(stderr, "bench_handoff: failover: not recovered within %.0f s (down "
                            "seen by a %s, b %s; children %zu unique of %zu, %zu copies, "
                            "%zu not running, %zu off their owner): lost %zu duplicated "
                            "%zu\n",
                    SETTLE_DEADLINE_S, watch[0].at ? "yes" : "no", watch[1].at ? "yes" : "no",
                    p.unique, n, p.copies, p.not_running, p.off_owner, n - p.unique,
                    p.copies - p.unique);
            report_cluster(cl, n);
            exit(1);
        }
    }
    double t1 = now_s();
    r.total_s = t1 - t0;
    double detected = watch[0].at > watch[1].at ? watch[0].at : watch[1].at;
    r.detect_s = detected - t0;
    r.restart_s = t1 - detected;
    r.restarted = SUM_STAT(cl, starts) - starts0;
    /* the final word: every name once, visible from both survivors */
    for (;;) {
        herd_child_counts_t cc;
        if (herd_count_children(cl->node[1], &cc) == 0 && cc.specs == n && cc.running == n &&
            missing_lookups(cl, ns) == 0)
            break;
        if (now_s() > deadline) {
            fprintf(stderr, "bench_handoff: failover: %zu lookups on the survivors still "
                            "fail after %.0f s\n", missing_lookups(cl, ns), SETTLE_DEADLINE_S);
            report_cluster(cl, n);
            exit(1);
        }
        turn(cl);
    }
    r.both_s = now_s() - t0;
    placement_take(&p, cl);
    r.lost = n - p.unique;
    r.duplicated = p.copies - p.unique;
    if (verbose)
        fprintf(stderr, "  failover run: victim ran %zu; detected %.3f s (a %.3f, b %.3f), "
                        "recovered %.3f s (seen from both %.3f s); restarted %llu, lost %zu, duplicated %zu "
                        "(transient max %zu)\n",
                r.victim_children, r.detect_s, watch[0].at - t0, watch[1].at - t0, r.total_s,
                r.both_s,
                (unsigned long long)r.restarted, r.lost, r.duplicated, r.max_transient_dup);
    for (int k = 0; k < 2; k++)
        herd_cluster_off_change(cl->node[k], on_member_change, &watch[k]);
    placement_free(&p);
    cluster_free(cl);
    free(cl);
    return r;
}

static int bench_failover(size_t n, int runs)
{
    names_t ns = names_make(n);
    double total[MAX_RUNS], detect[MAX_RUNS], restart[MAX_RUNS], restarted[MAX_RUNS],
        both[MAX_RUNS];
    size_t lost = 0, dup = 0, transient = 0;
    for (int i = 0; i < runs; i++) {
        failover_result_t r = failover_run(&ns);
        total[i] = r.total_s;
        both[i] = r.both_s;
        detect[i] = r.detect_s;
        restart[i] = r.restart_s;
        restarted[i] = (double)r.restarted;
        lost += r.lost;
        dup += r.duplicated;
        if (r.max_transient_dup > transient)
            transient = r.max_transient_dup;
    }
    double rec = median(total, (size_t)runs);
    printf("bench failover recover_s %.3f s children=%zu nodes=3-1 detector=default "
           "counted_from=one_survivor replicas=1 processes=1 runs=%d%s\n",
           rec, n, runs, ref_keys(FAILOVER_REF_S, "Horde", rec, n));
    printf("bench failover recover_both_s %.3f s counted_from=both_survivors runs=%d\n",
           median(both, (size_t)runs), runs);
    printf("bench failover detect_s %.3f s detector=default heartbeat_ms=200 runs=%d\n",
           median(detect, (size_t)runs), runs);
    printf("bench failover restart_s %.3f s restarted=%.0f runs=%d\n",
           median(restart, (size_t)runs), median(restarted, (size_t)runs), runs);
    printf("bench failover lost %zu children children=%zu runs=%d\n", lost, n, runs);
    printf("bench failover duplicated %zu children transient_max=%zu runs=%d\n", dup,
           transient, runs);
    fflush(stdout);
    names_free(&ns);
    return lost || dup;
}

/* ---- 3. startup: children by name on three nodes ------------------------------------- */

typedef struct startup_result {
    double total_s, issue_s;
} startup_result_t;

/* Start the children of ns from `from` nodes of a new three-node cluster
 * and wait until every node counts them all and every lookup succeeds;
 * returns the cluster (r: the times taken). */
static cluster_t *cluster_with_children(const names_t *ns, int from, const char *what,
                                        startup_result_t *r)
{
    const size_t n = ns->count;
    cluster_t *cl = malloc(sizeof(*cl));
    if (cl == NULL)
        die("allocating the cluster", HERD_ENOMEM);
    cluster_init(cl, lenient);
    for (int k = 0; k < MAX_NODES; k++)
        cluster_add(cl, k);
    wait_up(cl, 3, what);
    herd_node_run_for(cl->node[0], 50); /* the (empty) syncs of the joins */

    start_tally_t tally = {0};
    double t0 = now_s();
    issue_starts(cl, ns, n, from, &tally);
    r->issue_s = now_s() - t0;
    double deadline = t0 + SETTLE_DEADLINE_S, next_check = 0;
    for (;;) {
        double t = now_s();
        if (tally.failed)
            die("starting the children", tally.first_error);
        if (tally.answered == n && t >= next_check) {
            next_check = t + CHECK_EVERY_S;
            int counted = 1;
            for (int k = 0; k < MAX_NODES && counted; k++)
                counted = herd_registry_count(cl->node[k], NAME_PREFIX) == (int)n;
            if (counted && missing_lookups(cl, ns) == 0)
                break;
        }
        if (t > deadline) {
            fprintf(stderr, "bench_handoff: %s: %zu of %zu starts answered within %.0f s\n",
                    what, tally.answered, n, SETTLE_DEADLINE_S);
            report_cluster(cl, n);
            exit(1);
        }
        turn(cl);
    }
    r->total_s = now_s() - t0;
    if (local_children(cl) != n)
        die("starting the children: each child once", 0);
    if (verbose)
        fprintf(stderr, "  %s (from %d node%s): issued %.3f s, all visible everywhere %.3f s "
                        "(already %zu)\n", what, from, from > 1 ? "s" : "", r->issue_s,
                r->total_s, tally.already);
    return cl;
}

static startup_result_t startup_run(const names_t *ns, int from)
{
    startup_result_t r = {0};
    cluster_t *cl = cluster_with_children(ns, from, "startup", &r);
    cluster_free(cl);
    free(cl);
    return r;
}

/* from: the starts are issued from 3 nodes in turn, or all from one */
static void bench_startup(size_t n, int runs, int from)
{
    names_t ns = names_make(n);
    double total[MAX_RUNS], issue[MAX_RUNS], rate[MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        startup_result_t r = startup_run(&ns, from);
        total[i] = r.total_s;
        issue[i] = r.issue_s;
        rate[i] = (double)n / r.total_s;
    }
    const char *det = lenient ? "lenient" : "default";
    const char *fr = from > 1 ? "all" : "one";
    printf("bench startup start_s %.3f s children=%zu nodes=3 from=%s runs=%d detector=%s\n",
           median(total, (size_t)runs), n, fr, runs, det);
    printf("bench startup starts_per_s %.0f starts/s children=%zu from=%s runs=%d\n",
           median(rate, (size_t)runs), n, fr, runs);
    printf("bench startup issue_s %.3f s children=%zu from=%s batch=%d runs=%d\n",
           median(issue, (size_t)runs), n, fr, START_BATCH, runs);
    fflush(stdout);
    names_free(&ns);
}

/* ---- 4. reconcile: the loop while full passes run over many children ----------------- */

/* The idle window measured: three periodic full passes or more a node at
 * the default reconcile_ms (1 s); one or more with --quick. */
#define RECONCILE_WINDOW_S 3.5
#define RECONCILE_WINDOW_QUICK_S 1.5

typedef struct reconcile_result {
    double stall_ms;          /* the longest loop turn in the window */
    uint64_t passes, slices; /* full passes ended, slices run: all three nodes */
} reconcile_result_t;

/* A settled cluster of n children with nothing else to do: the longest
 * turn of its loop over RECONCILE_WINDOW_S, the time every other handle
 * of the loop (timers, sockets, processes) waits behind a full reconcile
 * (a pass in one turn, or a slice a turn). */
static reconcile_result_t reconcile_run(const names_t *ns, uint32_t slice, double window_s)
{
    herd_dsup_config_t cfg = {.reconcile_slice = slice};
    startup_result_t started;
    node_dsup_cfg = &cfg;
    cluster_t *cl = cluster_with_children(ns, 3, "reconcile", &started);
    node_dsup_cfg = NULL;
    reconcile_result_t r = {0};
    uint64_t passes = SUM_STAT(cl, full_passes), slices = SUM_STAT(cl, full_slices);
    double end = now_s() + window_s;
    while (now_s() < end) {
        double t = now_s();
        turn(cl);
        double ms = (now_s() - t) * 1000.0;
        if (ms > r.stall_ms)
            r.stall_ms = ms;
    }
    r.passes = SUM_STAT(cl, full_passes) - passes;
    r.slices = SUM_STAT(cl, full_slices) - slices;
    if (verbose) {
        fprintf(stderr, "  reconcile (slice %u keys): longest turn %.1f ms, %llu passes in "
                        "%llu slices\n", slice, r.stall_ms, (unsigned long long)r.passes,
                (unsigned long long)r.slices);
        for (int k = 0; k < MAX_NODES; k++) {
            herd_registry_stats_t rs;
            if (herd_registry_stats(cl->node[k], &rs) == 0)
                fprintf(stderr, "    %s: the registry's longest hold of the loop %.1f ms (%s)\n",
                        node_label(k), (double)rs.longest_us / 1000.0,
                        rs.longest_what ? rs.longest_what : "-");
        }
    }
    cluster_free(cl);
    free(cl);
    return r;
}

/* The default slices against a pass in one turn (the whole registry in one
 * slice: how herd reconciled before), run after run in turn. */
static void bench_reconcile(size_t n, int runs, double window_s, uint8_t replicas)
{
    start_replicas = replicas;
    names_t ns = names_make(n);
    double sliced[MAX_RUNS], whole[MAX_RUNS];
    uint64_t passes = 0, slices = 0;
    for (int i = 0; i < runs; i++) {
        reconcile_result_t w = reconcile_run(&ns, UINT32_MAX, window_s);
        reconcile_result_t r = reconcile_run(&ns, 0, window_s);
        whole[i] = w.stall_ms;
        sliced[i] = r.stall_ms;
        passes += r.passes;
        slices += r.slices;
    }
    double st = median(sliced, (size_t)runs), wh = median(whole, (size_t)runs);
    printf("bench handoff reconcile_stall_ms %.1f ms children=%zu replicas=%u nodes=3 "
           "slice_keys=4096 passes=%llu slices=%llu window_s=%.1f runs=%d one_turn_pass_ms=%.1f "
           "ratio=%.1fx\n",
           st, n, (unsigned)(replicas ? replicas : 1), (unsigned long long)passes,
           (unsigned long long)slices, window_s, runs, wh, st > 0 ? wh / st : 0.0);
    fflush(stdout);
    names_free(&ns);
    start_replicas = 0;
}

static int part_known(const char *part)
{
    static const char *const parts[] = {"handoff", "failover", "startup", "failover_procs",
                                        "join_procs", "reconcile"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcmp(part, parts[i]) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--lenient-detector") == 0) {
            lenient = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && part_known(argv[i + 1])) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_handoff [--quick] [--verbose] [--lenient-detector] "
                            "[--only handoff|failover|startup|failover_procs|join_procs|"
                            "reconcile]\n");
            return 2;
        }
    }
    size_t n = quick ? 1000 : 10000;
    int runs = quick ? 1 : 3;
    next_port = 20000 + (int)(((uint64_t)(now_s() * 1000) ^ ((uint64_t)getpid() << 7)) % 30000);
    procs_init("bench_handoff");
    int bad = 0;
    /* one process a node first: they fork, and nanomsg must not be running
     * in a process that forks */
    if (only == NULL || strcmp(only, "failover_procs") == 0) {
        bad |= bench_failover_procs(n, runs, 1);
        bad |= bench_failover_procs(n, runs, 2);
    }
    if (only == NULL || strcmp(only, "join_procs") == 0)
        bad |= bench_join_procs(n, runs);
    if (only == NULL || strcmp(only, "handoff") == 0)
        bad |= bench_handoff(n, runs);
    if (only == NULL || strcmp(only, "failover") == 0)
        bad |= bench_failover(n, runs);
    if (only == NULL || strcmp(only, "startup") == 0) {
        bench_startup(n, runs, 3);
        bench_startup(n, runs, 1);
    }
    if (only == NULL || strcmp(only, "reconcile") == 0) {
        bench_reconcile(quick ? 5000 : 50000, quick ? 1 : 3,
                        quick ? RECONCILE_WINDOW_QUICK_S : RECONCILE_WINDOW_S, 1);
        if (!quick) /* the copies kept for other owners walked too */
            bench_reconcile(50000, 3, RECONCILE_WINDOW_S, 2);
    }
    if (bad)
        fprintf(stderr, "bench_handoff: something was lost, duplicated or misplaced "
                        "(see the figures above)\n");
    return bad ? 1 : 0;
}
