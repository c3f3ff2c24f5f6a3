/*
 * bench_replicas - what replicated state (herd_child_req_t.replicas) costs
 * and what it saves, for replicas = 1, 2 and 3 side by side.
 *
 * Each replica count gets a fresh cluster of real nodes over nanomsg on
 * 127.0.0.1, one process a node: three server nodes (bench-a, -b, -c) each
 * running a registry, a distributed supervisor and the counter service
 * (tools/counter.h), and `clients` client-only nodes (bench-x, -y, ...)
 * with a registry and a supervisor but no service: they never own or keep a
 * counter, so every call they make goes to another node. The parent forks
 * every node's process first and never uses nanomsg itself; it drives them
 * over pipes, one command a line (see node_command and client_command).
 *
 * Each client owns a share of the counters (counter i is client i % clients'
 * share): it starts them (herd_start_child_async, replicas = R), and it is
 * the only one that increments them, so it knows for each how many
 * increments were acknowledged and how many are uncertain (the call failed
 * after it left: timed out, EUNCERTAIN, ...). Calls that fail at once are
 * not applied and not counted. The figures:
 *
 * - rtt: one process on client bench-x makes `incr` calls one at a time to
 *   random counters of its share (each owned by a server node); the round
 *   trip from herd_call_name to the reply, median and p99.
 * - incr_per_s: every client runs `callers` processes, each keeping `window`
 *   incr calls in flight to random counters of its share; acknowledged
 *   increments over `seconds` (after a warm-up). incr_per_version: those
 *   increments per state version put by the owners (the group commit's
 *   batching; a version goes to each of the replicas - 1 members);
 *   puts_per_batch: the puts a batch to one member carries (at most one
 *   batch is in flight to a member: the more load, the larger).
 * - failover: under that load, the parent sends SIGKILL to bench-c (a third
 *   of the counters). recover_s runs from the kill until every counter has
 *   answered a `get` sent after it (each client probes its share, retrying
 *   every PROBE_RETRY_MS); detect_s until both survivors saw bench-c down.
 *   Then the load stops, its last calls end, and every counter is read:
 *   acked_lost sums acknowledged increments missing (with replicas 1 the
 *   victim's counters restart from 0: that loss is the baseline); over sums
 *   what a counter holds above acknowledged + uncertain (goal 0 always).
 *   server_frames_per_incr: frames the three server nodes sent per
 *   acknowledged increment (ack_only: of them, frames that carried only an
 *   acknowledgement of the reliable stream).
 * - memory: after the counters started, got one increment each and
 *   replication settled, each server node's herd_repl_stats (held copies
 *   and their state bytes), heap in use (mallinfo2) and RSS, against the
 *   same node before any counter existed; per held copy against the
 *   replicas-1 cluster's growth.
 *
 * - colocated (after the three runs; --colocated alone, --no-colocated
 *   not at all): for each replica count a fresh cluster of the three
 *   server nodes only, each also running `callers` callers of a third of
 *   the counters (the "same 3-node cluster"; a third of a node's
 *   calls go to counters it owns): incr_per_s_colocated and the nodes'
 *   CPU per increment. Nothing is killed.
 *
 *   bench replicas <metric> <value> <unit> [key=value ...]
 *
 * Goals are printed as figures (goal_*), never asserted: a replicated
 * counter (replicas 2 or 3) that lost an acknowledged increment, or any
 * counter holding more than it could, is said on stderr, and fails the run
 * (exit 1) only with --strict. --quick (the ctest smoke run) uses 300
 * counters, 200 rtt calls and a 1 s window. Every wait has a deadline: a
 * stall ends the run (exit 1) with every node process killed. --observer
 * adds a node with a registry and no supervisor (bench-o), which never
 * answers a replica query: a replicated child's start waits for the query's
 * timeout (query_timeouts). --only R runs replica count R alone (profiling:
 * its ratios are to itself).
 */
#define _GNU_SOURCE /* mallinfo2 */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "counter.h"
#include "herd_dsup.h"

#define SERVERS 3
#define VICTIM 2 /* bench-c */
#define MAX_CLIENTS 8
#define MAX_CALLERS 16
#define MAX_WINDOW 256
#define LIST_WINDOW 256     /* calls in flight for a pass over a share */
#define CMD_MAX 512
#define TICK_MS 5           /* a client's callers and pending commands are checked this often */
#define CALL_TIMEOUT_MS 5000
#define PROBE_TIMEOUT_MS 2000
#define PROBE_RETRY_MS 10
#define START_TIMEOUT_MS 30000
#define START_BATCH 500     /* starts a client issues per tick */
#define REPLY_DEADLINE_S 120.0
#define UP_DEADLINE_S 20.0
#define CREATE_DEADLINE_S 60.0
#define SETTLE_DEADLINE_S 60.0
#define RECOVER_DEADLINE_S 60.0
#define STOP_DEADLINE_S (CALL_TIMEOUT_MS / 1000.0 + 5.0)
#define CHECK_DEADLINE_S 30.0
#define WARMUP_S 0.5

static struct {
    size_t counters, rtt_calls;
    int clients, callers, window;
    double seconds;
    int verbose, observer, strict;
} opt = {10000, 2000, 2, 4, 64, 5.0, 0, 0, 0};

static int next_port;
/* Set while the colocated runs go on (the node processes, forked then, see
 * it too): the callers run on the three server nodes, none elsewhere. */
static int colocated;
static const char secret[] = "bench-replicas-secret-0123456789";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static size_t rand_below(uint64_t *s, size_t n)
{
    return (size_t)(((xorshift64(s) >> 32) * (uint64_t)n) >> 32);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int ok = f && fscanf(f, "%lu %lu", &size, &resident) == 2;
    if (f)
        fclose(f);
    return ok ? (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static const char *server_name(int k)
{
    static const char *names[SERVERS] = {"bench-a", "bench-b", "bench-c"};
    return names[k];
}

/* ---- a node's process ------------------------------------------------------------ */

typedef struct client client_t;

typedef enum role {
    ROLE_CLIENT,   /* registry and supervisor, no service: calls the counters */
    ROLE_SERVER,   /* runs the counter service */
    ROLE_OBSERVER, /* --observer: a registry alone, no supervisor */
} role_t;

typedef struct proc {
    uv_loop_t loop;
    herd_node_t *node;
    role_t role;
    int index;
    int cmd_fd, rep_fd;
    uv_poll_t cmd_poll;
    uv_timer_t tick;
    uv_prepare_t turns; /* counts the loop's iterations (cost) */
    uint64_t iterations;
    char buf[CMD_MAX];
    size_t buf_n;
    double down_at; /* when this node first saw bench-c down */
    client_t *cl;
} proc_t;

static void proc_reply(proc_t *p, const char *fmt, ...)
{
    char line[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        _exit(3);
    line[n++] = '\n';
    if (write(p->rep_fd, line, (size_t)n) != n)
        _exit(3);
}

static void node_die(proc_t *p, const char *what, int rc)
{
    static const char *roles[] = {"client", "server", "observer"};
    fprintf(stderr, "bench_replicas: node process %s %d: %s failed (%d: %s)\n",
            roles[p->role], p->index, what, rc,
            rc < 0 ? herd_strerror(rc) : "-");
    _exit(1);
}

static void on_member_change(void *data, const char *name, uint64_t incarnation,
                             herd_member_state_t old_state, herd_member_state_t new_state,
                             int gone)
{
    (void)incarnation, (void)old_state;
    proc_t *p = data;
    if (p->down_at == 0 && strcmp(name, server_name(VICTIM)) == 0 &&
        (new_state == HERD_MEMBER_DOWN || new_state == HERD_MEMBER_LEFT || gone))
        p->down_at = now_s();
}

/* The node, in a cluster at a free port, joining `seed` unless "-", with a
 * registry and a supervisor; a server provides the counter service. */
static void proc_start(proc_t *p, const char *seed)
{
    char name[16], listen[64];
    if (p->role == ROLE_SERVER)
        snprintf(name, sizeof(name), "%s", server_name(p->index));
    else if (p->role == ROLE_CLIENT)
        snprintf(name, sizeof(name), "bench-%c", 'x' + p->index);
    else
        snprintf(name, sizeof(name), "bench-o");
    int has_seed = strcmp(seed, "-") != 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        herd_node_config_t nc = {.name = name, .loop = &p->loop};
        int rc = herd_node_new(&nc, &p->node);
        if (rc != 0)
            node_die(p, "herd_node_new", rc);
        snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", next_port++);
        if (next_port > 60000)
            next_port = 20000;
        herd_cluster_config_t cc = {.listen = listen, .secret = secret,
                                    .secret_len = sizeof(secret) - 1,
                                    .seeds = has_seed ? &seed : NULL,
                                    .seed_count = has_seed ? 1 : 0};
        rc = herd_cluster_start(p->node, &cc);
        if (rc == 0)
            break;
        herd_node_free(p->node); /* most likely the port is taken: try the next */
        p->node = NULL;
        if (rc != HERD_EIO)
            node_die(p, "herd_cluster_start", rc);
    }
    if (p->node == NULL)
        node_die(p, "finding a free port", 0);
    int rc = herd_registry_start(p->node);
    if (rc == 0 && p->role != ROLE_OBSERVER)
        rc = herd_dsup_start(p->node, NULL);
    /* the counters ask for their copies themselves (herd_child_req_t.replicas) */
    if (rc == 0 && p->role == ROLE_SERVER)
        rc = herd_service_register(p->node, "counter", &counter_behaviour);
    if (rc == 0)
        rc = herd_cluster_on_change(p->node, on_member_change, p);
    if (rc != 0)
        node_die(p, "starting the node's layers", rc);
    proc_reply(p, "started %s", listen);
}

static int members_up(herd_node_t *n)
{
    herd_member_info_t m[SERVERS + MAX_CLIENTS + 1];
    int count = herd_cluster_members(n, m, SERVERS + MAX_CLIENTS + 1);
    int up = 0;
    for (int i = 0; i < count && i < SERVERS + MAX_CLIENTS + 1; i++)
        up += m[i].state == HERD_MEMBER_UP;
    return up;
}

/* status UP LOCAL SETTLED HELD HELD_BYTES HEAP RSS_KB DOWN_AT SPECS RUNNING PUTS_OUT
 *        PROMOTED QUERY_TIMEOUTS UNREPLICATED QUERIES FRAMES_OUT */
static void server_status(proc_t *p)
{
    herd_repl_stats_t rs;
    herd_child_counts_t cc;
    int rc = herd_repl_stats(p->node, &rs);
    if (rc == 0)
        rc = herd_count_children(p->node, &cc);
    if (rc != 0)
        node_die(p, "reading the node's stats", rc);
    herd_cluster_stats_t cs;
    if (rc == 0)
        rc = herd_cluster_stats(p->node, &cs);
    if (rc != 0)
        node_die(p, "reading the node's cluster stats", rc);
    struct mallinfo2 mi = mallinfo2();
    proc_reply(p, "status %d %llu %d %llu %llu %llu %ld %.6f %llu %llu %llu %llu %llu %llu %llu "
                  "%llu %llu %llu",
               members_up(p->node), (unsigned long long)cc.local,
               herd_repl_settled(p->node), (unsigned long long)rs.held,
               (unsigned long long)rs.held_bytes,
               (unsigned long long)(mi.uordblks + mi.hblkhd), rss_kb(), p->down_at,
               (unsigned long long)cc.specs, (unsigned long long)cc.running,
               (unsigned long long)rs.puts_out, (unsigned long long)rs.promoted,
               (unsigned long long)rs.query_timeouts, (unsigned long long)rs.unreplicated,
               (unsigned long long)rs.queries, (unsigned long long)cs.frames_out,
               (unsigned long long)cs.ack_frames_out, (unsigned long long)rs.batches_out);
}

/* cost CPU_US ITERATIONS FRAMES_OUT FRAMES_IN ACK_FRAMES_OUT CSW: what this node
 * process spent so far (all its threads, nanomsg's included): CPU time,
 * loop iterations, frames, context switches (voluntary + not) */
static void node_cost(proc_t *p)
{
    struct rusage ru;
    herd_cluster_stats_t cs;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || herd_cluster_stats(p->node, &cs) != 0)
        node_die(p, "reading the node's cost", 0);
    double cpu = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
                 (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
    proc_reply(p, "cost %.0f %llu %llu %llu %llu %ld", cpu, (unsigned long long)p->iterations,
               (unsigned long long)cs.frames_out, (unsigned long long)cs.frames_in,
               (unsigned long long)cs.ack_frames_out, ru.ru_nvcsw + ru.ru_nivcsw);
}

/* ---- a client: callers ----------------------------------------------------------- */

typedef enum job {
    JOB_IDLE,
    JOB_LOAD,    /* incr to random counters of the share */
    JOB_RTT,     /* the same, one at a time, timed */
    JOB_PASS,    /* one incr to each counter of the share */
    JOB_GET_ALL, /* a get answered by each counter of the share (retried) */
} job_t;

typedef struct call_slot {
    uint64_t ref;
    uint32_t j; /* the counter: index in the share */
    uint8_t used, get;
    double sent_at;
} call_slot_t;

typedef struct caller {
    client_t *cl;
    herd_pid_t pid;
    job_t job;
    size_t window, outstanding;
    call_slot_t slot[MAX_WINDOW];
    uint32_t free_slot[MAX_WINDOW];
    size_t nfree;
    uint64_t rng;
    size_t cursor;
    double *samples; /* JOB_RTT: round trips in us */
    size_t nsamples, want, rtt_failed;
    int ticking;
} caller_t;

struct client {
    proc_t *p;
    size_t n, first, stride; /* counter j of the share is ctr-<first + j * stride> */
    char **names;
    char *text;
    uint32_t *acked, *uncertain;
    int64_t *value;
    double *got_at, *retry_at;
    uint8_t *inflight;
    /* JOB_GET_ALL: the counters not yet answered, scanned round robin */
    uint32_t *pend;
    size_t pend_n, remaining;
    double get_since, done_at;
    uint64_t total_acked, failed_now, failed_reply;
    uint64_t err_now[64], err_reply[64];
    caller_t *load[MAX_CALLERS];
    caller_t *lister, *timer;
    uint8_t replicas;
    /* the command being carried out, answered from the tick */
    enum { WAIT_NONE, WAIT_CREATE, WAIT_PASS, WAIT_RTT, WAIT_STOP, WAIT_CHECK } waiting;
    double wait_deadline;
    size_t create_next, create_answered, create_failed;
    int create_error;
};

static void caller_fill(herd_proc_t *self, caller_t *c);

static long next_counter(caller_t *c)
{
    client_t *cl = c->cl;
    switch (c->job) {
    case JOB_LOAD:
    case JOB_RTT:
        if (c->job == JOB_RTT && c->nsamples + c->rtt_failed + c->outstanding >= c->want)
            return -1;
        return (long)rand_below(&c->rng, cl->n);
    case JOB_PASS:
        return c->cursor < cl->n ? (long)c->cursor : -1;
    case JOB_GET_ALL: {
        double t = now_s();
        for (size_t step = 0; step < cl->pend_n; step++) {
            if (c->cursor >= cl->pend_n) { /* a round: drop the answered ones */
                size_t kept = 0;
                for (size_t i = 0; i < cl->pend_n; i++)
                    if (cl->got_at[cl->pend[i]] == 0)
                        cl->pend[kept++] = cl->pend[i];
                cl->pend_n = kept;
                c->cursor = 0;
                if (kept == 0)
                    return -1;
            }
            uint32_t j = cl->pend[c->cursor++];
            if (cl->got_at[j] == 0 && !cl->inflight[j] && cl->retry_at[j] <= t)
                return (long)j;
        }
        return -1;
    }
    default:
        return -1;
    }
}

static void caller_fill(herd_proc_t *self, caller_t *c)
{
    client_t *cl = c->cl;
    size_t attempts = 0;
    while (c->job != JOB_IDLE && c->outstanding < c->window && c->nfree > 0 &&
           attempts++ < 2 * MAX_WINDOW) {
        long j = next_counter(c);
        if (j < 0)
            break;
        int get = c->job == JOB_GET_ALL;
        const char *cmd = get ? "get" : "incr";
        uint64_t ref;
        double t = now_s();
        int rc = herd_call_name(self, cl->names[j], cmd, strlen(cmd),
                                get && cl->waiting != WAIT_CHECK ? PROBE_TIMEOUT_MS
                                                                  : CALL_TIMEOUT_MS,
                                &ref);
        if (rc != 0) { /* not sent: never applied */
            if (get) {
                cl->retry_at[j] = t + PROBE_RETRY_MS / 1000.0;
            } else {
                cl->failed_now++;
                cl->err_now[(-rc) & 63]++;
                if (c->job == JOB_PASS)
                    break; /* the same counter again at the next tick */
                if (c->job == JOB_RTT)
                    c->rtt_failed++;
            }
            continue;
        }
        if (c->job == JOB_PASS)
            c->cursor++;
        uint32_t s = c->free_slot[--c->nfree];
        c->slot[s] = (call_slot_t){ref, (uint32_t)j, 1, (uint8_t)get, t};
        if (get)
            cl->inflight[j] = 1;
        c->outstanding++;
    }
}

static void caller_reply(caller_t *c, const herd_msg_t *msg)
{
    size_t s = 0;
    while (s < MAX_WINDOW && !(c->slot[s].used && c->slot[s].ref == msg->ref))
        s++;
    if (s == MAX_WINDOW)
        return; /* not a call of ours */
    client_t *cl = c->cl;
    call_slot_t *sl = &c->slot[s];
    uint32_t j = sl->j;
    double t = now_s();
    if (sl->get) {
        cl->inflight[j] = 0;
        if (msg->status == 0 && cl->got_at[j] == 0) {
            char text[32];
            size_t len = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
            memcpy(text, msg->data, len);
            text[len] = '\0';
            cl->value[j] = strtoll(text, NULL, 10);
            cl->got_at[j] = t;
            if (t > cl->done_at)
                cl->done_at = t;
            cl->remaining--;
        } else if (msg->status != 0) {
            cl->retry_at[j] = t + PROBE_RETRY_MS / 1000.0;
        }
    } else if (msg->status == 0) {
        cl->acked[j]++;
        cl->total_acked++;
        if (c->job == JOB_RTT && c->nsamples < c->want)
            c->samples[c->nsamples++] = (t - sl->sent_at) * 1e6;
    } else {
        cl->uncertain[j]++;
        cl->failed_reply++;
        cl->err_reply[(-msg->status) & 63]++;
        if (c->job == JOB_RTT)
            c->rtt_failed++;
    }
    sl->used = 0;
    c->free_slot[c->nfree++] = (uint32_t)s;
    c->outstanding--;
}

static int caller_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    caller_t *c;
    if (len != sizeof(c))
        return HERD_EINVAL;
    memcpy(&c, arg, sizeof(c));
    *state = c;
    return 0;
}

static int caller_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    caller_t *c = state;
    if (msg->kind == HERD_MSG_REPLY)
        caller_reply(c, msg);
    if (!c->ticking) { /* a kick every tick: a call that failed at once leaves no reply */
        uint64_t timer;
        int rc = herd_send_interval(herd_proc_node(self), herd_self(self), TICK_MS, "t", 1,
                                    &timer);
        if (rc != 0)
            return rc;
        c->ticking = 1;
    }
    caller_fill(self, c);
    return 0;
}

static const herd_behaviour_t caller_behaviour = {
    .name = "bench-caller",
    .init = caller_init,
    .handle_info = caller_info,
};

static caller_t *caller_new(client_t *cl, uint64_t seed)
{
    caller_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        node_die(cl->p, "allocating a caller", HERD_ENOMEM);
    c->cl = cl;
    c->rng = seed | 1;
    for (uint32_t s = 0; s < MAX_WINDOW; s++)
        c->free_slot[c->nfree++] = MAX_WINDOW - 1 - s;
    herd_spawn_opts_t o = {.behaviour = &caller_behaviour, .arg = &c, .arg_len = sizeof(c)};
    int rc = herd_spawn(cl->p->node, &o, &c->pid);
    if (rc != 0)
        node_die(cl->p, "spawning a caller", rc);
    return c;
}

static void caller_job(caller_t *c, job_t job, size_t window)
{
    c->job = job;
    c->window = window;
    c->cursor = 0;
    int rc = herd_node_send(c->cl->p->node, c->pid, "go", 2);
    if (rc != 0)
        node_die(c->cl->p, "kicking a caller", rc);
}

/* ---- a client: commands ---------------------------------------------------------- */

static void client_init(proc_t *p)
{
    client_t *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        node_die(p, "allocating the client", HERD_ENOMEM);
    cl->p = p;
    cl->first = (size_t)p->index;
    cl->stride = colocated ? SERVERS : (size_t)opt.clients;
    cl->n = opt.counters > cl->first ? (opt.counters - cl->first + cl->stride - 1) / cl->stride
                                     : 0;
    size_t n = cl->n ? cl->n : 1;
    cl->names = calloc(n, sizeof(char *));
    cl->text = malloc(n * 24);
    cl->acked = calloc(n, sizeof(*cl->acked));
    cl->uncertain = calloc(n, sizeof(*cl->uncertain));
    cl->value = calloc(n, sizeof(*cl->value));
    cl->got_at = calloc(n, sizeof(*cl->got_at));
    cl->retry_at = calloc(n, sizeof(*cl->retry_at));
    cl->inflight = calloc(n, 1);
    cl->pend = calloc(n, sizeof(*cl->pend));
    if (!cl->names || !cl->text || !cl->acked || !cl->uncertain || !cl->value || !cl->got_at ||
        !cl->retry_at || !cl->inflight || !cl->pend)
        node_die(p, "allocating the client", HERD_ENOMEM);
    size_t off = 0;
    for (size_t j = 0; j < cl->n; j++) {
        cl->names[j] = cl->text + off;
        off += (size_t)snprintf(cl->text + off, 24, "ctr-%zu", cl->first + j * cl->stride) + 1;
    }
    p->cl = cl;
}

static void client_spawn_callers(client_t *cl)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(cl->p->index + 1);
    for (int i = 0; i < opt.callers; i++)
        cl->load[i] = caller_new(cl, seed + (uint64_t)i * 7919);
    cl->lister = caller_new(cl, seed ^ 0x5bd1e995);
    cl->timer = caller_new(cl, seed ^ 0xc2b2ae35);
    cl->timer->samples = calloc(opt.rtt_calls ? opt.rtt_calls : 1, sizeof(double));
    if (cl->timer->samples == NULL)
        node_die(cl->p, "allocating the samples", HERD_ENOMEM);
}

static void start_done(void *data, const herd_start_result_t *res)
{
    client_t *cl = data;
    cl->create_answered++;
    if (res->status != 0) {
        cl->create_failed++;
        if (cl->create_error == 0)
            cl->create_error = res->status;
    }
}

static void client_create_some(client_t *cl)
{
    for (size_t k = 0; k < START_BATCH && cl->create_next < cl->n; k++) {
        herd_child_req_t req = {.name = cl->names[cl->create_next], .service = "counter",
                                .restart = HERD_RESTART_PERMANENT,
                                .replicas = cl->replicas};
        int rc = herd_start_child_async(cl->p->node, &req, START_TIMEOUT_MS, start_done, cl);
        if (rc != 0)
            node_die(cl->p, "herd_start_child_async", rc);
        cl->create_next++;
    }
}

static void get_all_begin(client_t *cl)
{
    for (size_t j = 0; j < cl->n; j++) {
        cl->got_at[j] = 0;
        cl->retry_at[j] = 0;
        cl->pend[j] = (uint32_t)j;
    }
    cl->pend_n = cl->remaining = cl->n;
    cl->get_since = now_s();
    cl->done_at = 0;
    caller_job(cl->lister, JOB_GET_ALL, LIST_WINDOW);
}

static size_t load_outstanding(const client_t *cl)
{
    size_t out = 0;
    for (int i = 0; i < opt.callers; i++)
        out += cl->load[i]->outstanding;
    return out;
}

/* checked ACKED UNCERTAIN LOST OVER UNREAD SHORT_COUNTERS OVER_COUNTERS */
static void client_checked(client_t *cl)
{
    unsigned long long acked = 0, uncertain = 0, lost = 0, over = 0, short_n = 0, over_n = 0;
    size_t shown = 0;
    for (size_t j = 0; j < cl->n; j++) {
        acked += cl->acked[j];
        uncertain += cl->uncertain[j];
        if (cl->got_at[j] == 0)
            continue;
        int64_t v = cl->value[j], a = cl->acked[j], most = a + cl->uncertain[j];
        if (v < a) {
            lost += (unsigned long long)(a - v);
            short_n++;
        }
        if (v > most) {
            over += (unsigned long long)(v - most);
            over_n++;
        }
        if ((v < a || v > most) && cl->replicas > 1 && shown++ < 8)
            fprintf(stderr, "bench_replicas: replicas=%u: %s holds %lld, acknowledged %lld, "
                            "uncertain %u\n",
                    cl->replicas, cl->names[j], (long long)v, (long long)a, cl->uncertain[j]);
    }
    proc_reply(cl->p, "checked %llu %llu %llu %llu %zu %llu %llu", acked, uncertain, lost, over,
               cl->remaining, short_n, over_n);
}

/* From the tick: answer the command under way once it is done (or its
 * deadline passed: the answer says how far it got). */
static void client_progress(client_t *cl)
{
    double t = now_s();
    int late = t > cl->wait_deadline;
    switch (cl->waiting) {
    case WAIT_CREATE:
        client_create_some(cl);
        if (cl->create_answered < cl->n && !late)
            return;
        proc_reply(cl->p, "created %zu %zu %d", cl->create_answered - cl->create_failed,
                   cl->create_failed, cl->create_error);
        break;
    case WAIT_PASS:
        if ((cl->lister->cursor < cl->n || cl->lister->outstanding) && !late)
            return;
        cl->lister->job = JOB_IDLE;
        proc_reply(cl->p, "passed %llu %llu %llu", (unsigned long long)cl->total_acked,
                   (unsigned long long)cl->failed_now, (unsigned long long)cl->failed_reply);
        break;
    case WAIT_RTT: {
        caller_t *c = cl->timer;
        if (c->nsamples + c->rtt_failed < c->want && !late)
            return;
        c->job = JOB_IDLE;
        double med = 0, p99 = 0;
        if (c->nsamples) {
            qsort(c->samples, c->nsamples, sizeof(double), cmp_double);
            med = c->samples[c->nsamples / 2];
            p99 = c->samples[(size_t)((double)c->nsamples * 0.99)];
        }
        proc_reply(cl->p, "rtt %.1f %.1f %zu %zu", med, p99, c->nsamples, c->rtt_failed);
        break;
    }
    case WAIT_STOP:
        if (load_outstanding(cl) && !late)
            return;
        proc_reply(cl->p, "stopped %llu %llu %llu %zu", (unsigned long long)cl->total_acked,
                   (unsigned long long)cl->failed_now, (unsigned long long)cl->failed_reply,
                   load_outstanding(cl));
        if (opt.verbose)
            for (int e = 1; e < 64; e++)
                if (cl->err_now[e] || cl->err_reply[e])
                    fprintf(stderr, "  bench-%c: %s: %llu incr failed at once, %llu answered "
                                    "with it\n",
                            'x' + cl->p->index, herd_err_name(-e),
                            (unsigned long long)cl->err_now[e],
                            (unsigned long long)cl->err_reply[e]);
        break;
    case WAIT_CHECK:
        if (cl->remaining && !late)
            return;
        cl->lister->job = JOB_IDLE;
        client_checked(cl);
        break;
    default:
        return;
    }
    cl->waiting = WAIT_NONE;
}

static void client_wait(client_t *cl, int what, double deadline_s)
{
    cl->waiting = what;
    cl->wait_deadline = now_s() + deadline_s;
}

static int client_command(proc_t *p, const char *line)
{
    client_t *cl = p->cl;
    unsigned u;
    size_t k;
    if (sscanf(line, "create %u", &u) == 1) {
        cl->replicas = (uint8_t)u;
        client_wait(cl, WAIT_CREATE, CREATE_DEADLINE_S);
    } else if (strcmp(line, "pass") == 0) {
        caller_job(cl->lister, JOB_PASS, LIST_WINDOW);
        client_wait(cl, WAIT_PASS, CREATE_DEADLINE_S);
    } else if (sscanf(line, "rtt %zu", &k) == 1) {
        cl->timer->want = k < opt.rtt_calls ? k : opt.rtt_calls;
        cl->timer->nsamples = cl->timer->rtt_failed = 0;
        caller_job(cl->timer, JOB_RTT, 1);
        client_wait(cl, WAIT_RTT, REPLY_DEADLINE_S / 2);
    } else if (strcmp(line, "load") == 0) {
        for (int i = 0; i < opt.callers; i++)
            caller_job(cl->load[i], JOB_LOAD, (size_t)opt.window);
        proc_reply(p, "ok");
    } else if (strcmp(line, "acked") == 0) {
        proc_reply(p, "acked %llu %.6f", (unsigned long long)cl->total_acked, now_s());
    } else if (strcmp(line, "probe") == 0) {
        get_all_begin(cl);
        proc_reply(p, "ok");
    } else if (strcmp(line, "probed") == 0) {
        proc_reply(p, "probed %zu %.6f", cl->remaining, cl->done_at);
    } else if (strcmp(line, "stop") == 0) {
        for (int i = 0; i < opt.callers; i++)
            cl->load[i]->job = JOB_IDLE;
        cl->lister->job = JOB_IDLE;
        client_wait(cl, WAIT_STOP, STOP_DEADLINE_S);
    } else if (strcmp(line, "check") == 0) {
        for (size_t j = 0; j < cl->n; j++)
            cl->inflight[j] = 0; /* the probe's late answers count for nothing now */
        client_wait(cl, WAIT_CHECK, CHECK_DEADLINE_S);
        get_all_begin(cl);
    } else if (strcmp(line, "status") == 0) {
        proc_reply(p, "status %d", members_up(p->node));
    } else {
        return -1;
    }
    return 0;
}

/* ---- the node process's loop ----------------------------------------------------- */

static void node_command(proc_t *p, char *line)
{
    char arg[CMD_MAX];
    if (sscanf(line, "start %255s", arg) == 1 && p->node == NULL) {
        proc_start(p, arg);
        if (p->cl)
            client_spawn_callers(p->cl);
    } else if (strcmp(line, "exit") == 0) {
        _exit(0); /* the memory goes with the process */
    } else if (p->node && strcmp(line, "cost") == 0) {
        node_cost(p);
    } else if (p->node && p->role == ROLE_SERVER && strcmp(line, "status") == 0) {
        server_status(p);
    } else if (p->node && p->role == ROLE_OBSERVER && strcmp(line, "status") == 0) {
        proc_reply(p, "status %d", members_up(p->node));
    } else if (!(p->node && p->cl && client_command(p, line) == 0)) {
        fprintf(stderr, "bench_replicas: node process: bad command '%s'\n", line);
        _exit(1);
    }
}

static void on_cmd(uv_poll_t *h, int status, int events)
{
    (void)events;
    proc_t *p = h->data;
    ssize_t got =
        status < 0 ? -1 : read(p->cmd_fd, p->buf + p->buf_n, sizeof(p->buf) - 1 - p->buf_n);
    if (got <= 0)
        _exit(got == 0 ? 0 : 1); /* the parent is gone */
    p->buf_n += (size_t)got;
    char *nl;
    while ((nl = memchr(p->buf, '\n', p->buf_n)) != NULL) {
        *nl = '\0';
        node_command(p, p->buf);
        size_t used = (size_t)(nl + 1 - p->buf);
        memmove(p->buf, nl + 1, p->buf_n - used);
        p->buf_n -= used;
    }
    if (p->buf_n == sizeof(p->buf) - 1)
        _exit(1);
}

static void on_tick(uv_timer_t *h)
{
    proc_t *p = h->data;
    if (p->cl && p->node)
        client_progress(p->cl);
}

static void on_turn(uv_prepare_t *h)
{
    ((proc_t *)h->data)->iterations++;
}

static void node_main(role_t role, int index, int cmd_fd, int rep_fd)
{
    proc_t *p = calloc(1, sizeof(*p));
    if (p == NULL || uv_loop_init(&p->loop) != 0)
        _exit(1);
    p->role = role;
    p->index = index;
    p->cmd_fd = cmd_fd;
    p->rep_fd = rep_fd;
    next_port += 97 * (role == ROLE_SERVER   ? index
                       : role == ROLE_CLIENT ? SERVERS + index
                                             : SERVERS + MAX_CLIENTS); /* its own ports first */
    int calls = role == ROLE_CLIENT || (role == ROLE_SERVER && colocated);
    if (calls)
        client_init(p);
    p->cmd_poll.data = p->tick.data = p->turns.data = p;
    if (uv_prepare_init(&p->loop, &p->turns) != 0 ||
        uv_prepare_start(&p->turns, on_turn) != 0)
        _exit(1);
    uv_unref((uv_handle_t *)&p->turns);
    if (uv_poll_init(&p->loop, &p->cmd_poll, cmd_fd) != 0 ||
        uv_poll_start(&p->cmd_poll, UV_READABLE, on_cmd) != 0 ||
        uv_timer_init(&p->loop, &p->tick) != 0 ||
        (calls && uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS) != 0))
        _exit(1);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* ---- the parent's side ----------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int cmd, rep;
} child_t;

static child_t kids[SERVERS + MAX_CLIENTS + 1];
static int nkids;

static void end_all(int kill_them)
{
    for (int k = 0; k < nkids; k++) {
        if (kids[k].pid <= 0)
            continue;
        if (kill_them)
            kill(kids[k].pid, SIGKILL);
        else if (write(kids[k].cmd, "exit\n", 5) != 5)
            kill(kids[k].pid, SIGKILL);
        close(kids[k].cmd);
        close(kids[k].rep);
        int st;
        waitpid(kids[k].pid, &st, 0);
        kids[k].pid = 0;
    }
    nkids = 0;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_replicas: %s failed (%d: %s)\n", what, rc,
            rc < 0 ? herd_strerror(rc) : "-");
    end_all(1);
    exit(1);
}

static child_t *fork_node(role_t role, int index)
{
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0)
        die("pipe", 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", 0);
    if (pid == 0) {
        /* named for perf and top: "server-a", "client-x"; nanomsg's worker
         * threads, created later, take the name too */
        char comm[16];
        snprintf(comm, sizeof(comm), "%s-%c",
                 role == ROLE_SERVER ? "server" : role == ROLE_CLIENT ? "client" : "observer",
                 role == ROLE_CLIENT ? 'x' + index : 'a' + index);
        prctl(PR_SET_NAME, comm, 0, 0, 0);
        close(down[1]);
        close(up[0]);
        for (int k = 0; k < nkids; k++) { /* the siblings' pipes are not ours */
            close(kids[k].cmd);
            close(kids[k].rep);
        }
        node_main(role, index, down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    kids[nkids] = (child_t){pid, down[1], up[0]};
    return &kids[nkids++];
}

static void send_cmd(const child_t *c, const char *fmt, ...)
{
    char line[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    if (write(c->cmd, line, (size_t)n) != n)
        die("writing a command to a node process", 0);
}

static void read_reply(const child_t *c, char *out, size_t cap)
{
    size_t n = 0;
    double deadline = now_s() + REPLY_DEADLINE_S;
    while (n + 1 < cap) {
        struct pollfd pf = {c->rep, POLLIN, 0};
        int left = (int)((deadline - now_s()) * 1000);
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            die("waiting for a node process's answer", 0);
        ssize_t got = read(c->rep, out + n, 1);
        if (got <= 0)
            die("a node process ended; reading its answer", 0);
        if (out[n] == '\n') {
            out[n] = '\0';
            return;
        }
        n++;
    }
    die("a node process's answer: too long", 0);
}

static void ask(const child_t *c, char *out, size_t cap, const char *fmt, const char *arg)
{
    send_cmd(c, fmt, arg);
    read_reply(c, out, cap);
}

typedef struct server_status {
    int up, settled;
    unsigned long long local, held, held_bytes, heap, specs, running, puts_out, promoted,
        query_timeouts, unreplicated, queries, frames_out, ack_frames_out, batches_out;
    long rss_kb;
    double down_at;
} server_status_t;

static server_status_t server_ask(const child_t *c)
{
    char line[CMD_MAX];
    server_status_t s;
    ask(c, line, sizeof(line), "%s", "status");
    if (sscanf(line,
               "status %d %llu %d %llu %llu %llu %ld %lf %llu %llu %llu %llu %llu %llu %llu %llu "
               "%llu %llu",
               &s.up, &s.local, &s.settled, &s.held, &s.held_bytes, &s.heap, &s.rss_kb,
               &s.down_at, &s.specs, &s.running, &s.puts_out, &s.promoted, &s.query_timeouts,
               &s.unreplicated, &s.queries, &s.frames_out, &s.ack_frames_out,
               &s.batches_out) != 18)
        die("a server's status", 0);
    return s;
}

typedef struct result {
    int replicas;
    double rtt_med_us, rtt_p99_us;
    size_t rtt_calls, rtt_failed;
    double incr_per_s, incr_per_put, puts_per_batch, server_frames_per_incr, server_ack_frames_per_incr;
    unsigned long long tput_acked;
    unsigned long long held, held_bytes;
    double heap_growth, rss_growth; /* bytes, the mean of the server nodes */
    double recover_s, detect_s;
    unsigned long long victim_children;
    unsigned long long acked, uncertain, lost, over, unread, short_n, over_n, failed_now;
    unsigned long long promoted, query_timeouts, unreplicated;
    /* the increment phase's cost per acknowledged increment: [0] the server
     * nodes, [1] the client nodes (node_cost) */
    double cpu_us[2], turns[2], frames_out[2], frames_in[2], csw[2];
} result_t;

typedef struct node_cost {
    double cpu_us;
    unsigned long long turns, frames_out, frames_in, ack_frames, csw;
} node_cost_t;

static node_cost_t cost_ask(const child_t *c)
{
    char line[CMD_MAX];
    node_cost_t k;
    ask(c, line, sizeof(line), "%s", "cost");
    if (sscanf(line, "cost %lf %llu %llu %llu %llu %llu", &k.cpu_us, &k.turns, &k.frames_out,
               &k.frames_in, &k.ack_frames, &k.csw) != 6)
        die("a node's cost", 0);
    return k;
}

/* The cost of the nodes between two readings, per acknowledged increment,
 * added to r's figures for `role` (0 servers, 1 clients). */
static void cost_add(result_t *r, int role, const char *name, const node_cost_t *a,
                     const node_cost_t *b)
{
    double n = r->tput_acked ? (double)r->tput_acked : 1;
    r->cpu_us[role] += (b->cpu_us - a->cpu_us) / n;
    r->turns[role] += (double)(b->turns - a->turns) / n;
    r->frames_out[role] += (double)(b->frames_out - a->frames_out) / n;
    r->frames_in[role] += (double)(b->frames_in - a->frames_in) / n;
    r->csw[role] += (double)(b->csw - a->csw) / n;
    if (opt.verbose)
        fprintf(stderr, "  replicas=%d %s per 1000 incr: cpu %.0f us, iterations %.1f, frames out "
                        "%.1f (ack only %.1f), in %.1f, context switches %.1f\n",
                r->replicas, name, (b->cpu_us - a->cpu_us) * 1000 / n,
                (double)(b->turns - a->turns) * 1000 / n,
                (double)(b->frames_out - a->frames_out) * 1000 / n,
                (double)(b->ack_frames - a->ack_frames) * 1000 / n,
                (double)(b->frames_in - a->frames_in) * 1000 / n,
                (double)(b->csw - a->csw) * 1000 / n);
}

/* Every node process of the cluster sees `want` members up. */
static void wait_up(child_t *const *nodes, int count, int want)
{
    double deadline = now_s() + UP_DEADLINE_S;
    char line[CMD_MAX];
    for (int k = 0; k < count; k++)
        for (;;) {
            int up;
            ask(nodes[k], line, sizeof(line), "%s", "status");
            if (sscanf(line, "status %d", &up) == 1 && up == want)
                break;
            if (now_s() > deadline)
                die("the nodes seeing each other up", 0);
            usleep(20 * 1000);
        }
}

/* The counters run once each, visible from every server, and replication
 * settled on every server. */
static void wait_settled(child_t *const *srv, int replicas)
{
    double deadline = now_s() + SETTLE_DEADLINE_S;
    for (;;) {
        unsigned long long local = 0;
        int ok = 1;
        for (int k = 0; k < SERVERS; k++) {
            server_status_t s = server_ask(srv[k]);
            local += s.local;
            ok = ok && s.settled && s.specs == opt.counters && s.running == opt.counters;
        }
        if (ok && local == opt.counters)
            return;
        if (now_s() > deadline) {
            fprintf(stderr, "bench_replicas: replicas=%d: not settled within %.0f s "
                            "(children %llu of %zu)\n",
                    replicas, SETTLE_DEADLINE_S, local, opt.counters);
            die("waiting for the counters to settle", 0);
        }
        usleep(20 * 1000);
    }
}

static void run_memory(child_t *const *srv, const server_status_t *before, result_t *r)
{
    for (int k = 0; k < SERVERS; k++) {
        server_status_t s = server_ask(srv[k]);
        r->held += s.held;
        r->held_bytes += s.held_bytes;
        r->heap_growth += ((double)s.heap - (double)before[k].heap) / SERVERS;
        r->rss_growth += ((double)s.rss_kb - (double)before[k].rss_kb) * 1024.0 / SERVERS;
        if (opt.verbose)
            fprintf(stderr, "  replicas=%d %s: children %llu, holds %llu copies (%llu B), heap "
                            "+%.0f B, rss +%ld KiB\n",
                    r->replicas, server_name(k), s.local, s.held, s.held_bytes,
                    (double)s.heap - (double)before[k].heap, s.rss_kb - before[k].rss_kb);
    }
}

/* The increment phase: `ncli` callers' nodes (cli) load the counters for
 * opt.seconds after a warm-up. With colocated set, cli are the servers
 * themselves, and their cost is counted once, as the servers'. */
static void run_throughput(child_t *const *srv, child_t *const *cli, int ncli, result_t *r)
{
    char line[CMD_MAX];
    for (int k = 0; k < ncli; k++) {
        ask(cli[k], line, sizeof(line), "%s", "load");
        if (strcmp(line, "ok") != 0)
            die("starting the load", 0);
    }
    usleep((useconds_t)(WARMUP_S * 1e6));
    if (opt.verbose)
        fprintf(stderr, "  replicas=%d: the increment phase begins\n", r->replicas);
    node_cost_t cost0[SERVERS + MAX_CLIENTS], cost1[SERVERS + MAX_CLIENTS];
    for (int k = 0; k < SERVERS; k++)
        cost0[k] = cost_ask(srv[k]);
    for (int k = 0; k < ncli && !colocated; k++)
        cost0[SERVERS + k] = cost_ask(cli[k]);
    unsigned long long a0[MAX_CLIENTS], puts0 = 0, puts1 = 0, frames0 = 0, frames1 = 0;
    unsigned long long acks0 = 0, acks1 = 0, batches0 = 0, batches1 = 0;
    double t0[MAX_CLIENTS];
    for (int k = 0; k < SERVERS; k++) {
        server_status_t s = server_ask(srv[k]);
        puts0 += s.puts_out, frames0 += s.frames_out, acks0 += s.ack_frames_out;
        batches0 += s.batches_out;
    }
    for (int k = 0; k < ncli; k++) {
        ask(cli[k], line, sizeof(line), "%s", "acked");
        if (sscanf(line, "acked %llu %lf", &a0[k], &t0[k]) != 2)
            die("reading the acknowledged increments", 0);
    }
    usleep((useconds_t)(opt.seconds * 1e6));
    for (int k = 0; k < ncli; k++) {
        unsigned long long a1;
        double t1;
        ask(cli[k], line, sizeof(line), "%s", "acked");
        if (sscanf(line, "acked %llu %lf", &a1, &t1) != 2)
            die("reading the acknowledged increments", 0);
        r->tput_acked += a1 - a0[k];
        r->incr_per_s += (double)(a1 - a0[k]) / (t1 - t0[k]);
    }
    for (int k = 0; k < SERVERS; k++)
        cost1[k] = cost_ask(srv[k]);
    for (int k = 0; k < ncli && !colocated; k++)
        cost1[SERVERS + k] = cost_ask(cli[k]);
    for (int k = 0; k < SERVERS + (colocated ? 0 : ncli); k++) {
        char name[16];
        snprintf(name, sizeof(name), "%s", k < SERVERS ? server_name(k) : "bench-x");
        if (k >= SERVERS)
            name[6] = (char)('x' + k - SERVERS);
        cost_add(r, k >= SERVERS, name, &cost0[k], &cost1[k]);
    }
    if (opt.verbose)
        fprintf(stderr, "  replicas=%d: the increment phase ends\n", r->replicas);
    for (int k = 0; k < SERVERS; k++) {
        server_status_t s = server_ask(srv[k]);
        puts1 += s.puts_out, frames1 += s.frames_out, acks1 += s.ack_frames_out;
        batches1 += s.batches_out;
    }
    r->server_frames_per_incr = r->tput_acked ? (double)(frames1 - frames0) / r->tput_acked : 0;
    r->server_ack_frames_per_incr = r->tput_acked ? (double)(acks1 - acks0) / r->tput_acked : 0;
    /* a version goes to replicas - 1 members: one put message each */
    double versions = (double)(puts1 - puts0) / (r->replicas > 1 ? r->replicas - 1 : 1);
    r->incr_per_put = versions > 0 ? (double)r->tput_acked / versions : 0;
    r->puts_per_batch =
        batches1 > batches0 ? (double)(puts1 - puts0) / (double)(batches1 - batches0) : 0;
}

/* The load of the callers' nodes cli[0 .. ncli) stops and its last calls
 * end (answered or timed out); adds the calls that failed at once and those
 * answered with an error. */
static void stop_load(child_t *const *cli, int ncli, unsigned long long *failed_now,
                      unsigned long long *failed_reply)
{
    char line[CMD_MAX];
    for (int k = 0; k < ncli; k++) {
        unsigned long long acked, now_failed, reply_failed;
        size_t left;
        ask(cli[k], line, sizeof(line), "%s", "stop");
        if (sscanf(line, "stopped %llu %llu %llu %zu", &acked, &now_failed, &reply_failed,
                   &left) != 4 || left)
            die("stopping the load (calls never answered)", 0);
        *failed_now += now_failed;
        *failed_reply += reply_failed;
    }
}

/* Under the load: SIGKILL to bench-c, then until every counter answers. */
static void run_failover(child_t *const *srv, child_t *const *cli, result_t *r)
{
    char line[CMD_MAX];
    r->victim_children = server_ask(srv[VICTIM]).local;
    double t0 = now_s();
    if (kill(srv[VICTIM]->pid, SIGKILL) != 0)
        die("kill -9 of bench-c", 0);
    for (int k = 0; k < opt.clients; k++) {
        ask(cli[k], line, sizeof(line), "%s", "probe");
        if (strcmp(line, "ok") != 0)
            die("starting the probe", 0);
    }
    int st;
    waitpid(srv[VICTIM]->pid, &st, 0);
    for (int k = 0; k < nkids; k++)
        if (kids[k].pid == srv[VICTIM]->pid)
            kids[k].pid = 0;
    close(srv[VICTIM]->cmd);
    close(srv[VICTIM]->rep);
    double deadline = t0 + RECOVER_DEADLINE_S, done = 0;
    for (int k = 0; k < opt.clients; k++)
        for (;;) {
            size_t remaining;
            double at;
            ask(cli[k], line, sizeof(line), "%s", "probed");
            if (sscanf(line, "probed %zu %lf", &remaining, &at) != 2)
                die("reading the probe", 0);
            if (remaining == 0) {
                done = at > done ? at : done;
                break;
            }
            if (now_s() > deadline) {
                fprintf(stderr, "bench_replicas: replicas=%d: %zu counters of client %d still "
                                "do not answer %.0f s after the kill\n",
                        r->replicas, remaining, k, RECOVER_DEADLINE_S);
                die("the failover", 0);
            }
            usleep(20 * 1000);
        }
    r->recover_s = done - t0;
    double detected = 0;
    for (int k = 0; k < SERVERS; k++) {
        if (k == VICTIM)
            continue;
        server_status_t s = server_ask(srv[k]);
        detected = s.down_at > detected ? s.down_at : detected;
        r->promoted += s.promoted;
        r->query_timeouts += s.query_timeouts;
        r->unreplicated += s.unreplicated;
    }
    r->detect_s = detected > 0 ? detected - t0 : -1;
    /* the load ends; its last calls are answered or time out */
    unsigned long long failed_reply = 0;
    stop_load(cli, opt.clients, &r->failed_now, &failed_reply);
    for (int k = 0; k < opt.clients; k++) {
        unsigned long long v[7];
        ask(cli[k], line, sizeof(line), "%s", "check");
        if (sscanf(line, "checked %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6]) != 7)
            die("reading the counters", 0);
        r->acked += v[0];
        r->uncertain += v[1];
        r->lost += v[2];
        r->over += v[3];
        r->unread += v[4];
        r->short_n += v[5];
        r->over_n += v[6];
    }
    if (opt.verbose)
        for (int k = 0; k < SERVERS; k++)
            if (k != VICTIM) {
                server_status_t s = server_ask(srv[k]);
                fprintf(stderr, "  replicas=%d %s after the failover: children %llu, holds %llu "
                                "copies, settled %d, unreplicated replies %llu, queries %llu "
                                "(timed out %llu), promoted %llu\n",
                        r->replicas, server_name(k), s.local, s.held, s.settled, s.unreplicated,
                        s.queries, s.query_timeouts, s.promoted);
            }
}

/* Start the node processes nodes[0 .. count) as one cluster (the first
 * alone, the others joining it) and wait until each sees them all up. */
static void start_cluster(child_t *const *nodes, int count)
{
    char line[CMD_MAX], seed[64];
    for (int k = 0; k < count; k++) {
        ask(nodes[k], line, sizeof(line), "start %s", k == 0 ? "-" : seed);
        if (k == 0 && sscanf(line, "started %63s", seed) != 1)
            die("the first node's address", 0);
    }
    wait_up(nodes, count, count);
    usleep(300 * 1000); /* the joins' registry syncs */
}

/* Each of the callers' nodes cli[0 .. ncli) starts its share of the
 * counters with `replicas` copies, and all of them start. */
static void create_counters(child_t *const *cli, int ncli, int replicas)
{
    char line[CMD_MAX], arg[16];
    snprintf(arg, sizeof(arg), "%d", replicas);
    for (int k = 0; k < ncli; k++)
        send_cmd(cli[k], "create %s", arg);
    for (int k = 0; k < ncli; k++) {
        size_t ok, failed;
        int err;
        read_reply(cli[k], line, sizeof(line));
        if (sscanf(line, "created %zu %zu %d", &ok, &failed, &err) != 3 || failed)
            die("starting the counters", failed ? err : 0);
    }
}

static result_t run(int replicas)
{
    result_t r = {.replicas = replicas};
    char line[CMD_MAX];
    child_t *srv[SERVERS], *cli[MAX_CLIENTS], *all[SERVERS + MAX_CLIENTS + 1];
    int count = 0;
    next_port += 1000; /* a fresh cluster: fresh ports */
    for (int k = 0; k < SERVERS; k++)
        all[count++] = srv[k] = fork_node(ROLE_SERVER, k);
    for (int k = 0; k < opt.clients; k++)
        all[count++] = cli[k] = fork_node(ROLE_CLIENT, k);
    if (opt.observer)
        all[count++] = fork_node(ROLE_OBSERVER, 0);
    start_cluster(all, count);
    server_status_t before[SERVERS];
    for (int k = 0; k < SERVERS; k++)
        before[k] = server_ask(srv[k]);
    create_counters(cli, opt.clients, replicas);
    for (int k = 0; k < opt.clients; k++)
        send_cmd(cli[k], "pass");
    for (int k = 0; k < opt.clients; k++) {
        unsigned long long acked, now_failed, reply_failed;
        read_reply(cli[k], line, sizeof(line));
        if (sscanf(line, "passed %llu %llu %llu", &acked, &now_failed, &reply_failed) != 3 ||
            reply_failed)
            die("the first increment of each counter", 0);
    }
    wait_settled(srv, replicas);
    run_memory(srv, before, &r);
    char arg[24];
    snprintf(arg, sizeof(arg), "%zu", opt.rtt_calls);
    ask(cli[0], line, sizeof(line), "rtt %s", arg);
    if (sscanf(line, "rtt %lf %lf %zu %zu", &r.rtt_med_us, &r.rtt_p99_us, &r.rtt_calls,
               &r.rtt_failed) != 4)
        die("the round trips", 0);
    run_throughput(srv, cli, opt.clients, &r);
    run_failover(srv, cli, &r);
    end_all(0);
    if (opt.verbose)
        fprintf(stderr, "  replicas=%d: rtt %.1f us, %.0f incr/s, recovered in %.3f s, lost %llu "
                        "over %llu\n",
                replicas, r.rtt_med_us, r.incr_per_s, r.recover_s, r.lost, r.over);
    return r;
}

/* The increment phase alone in a cluster of the three server nodes, each
 * also running `callers` callers of its own share of the counters (counter
 * i is server i % 3's share): the "same 3-node cluster". A third of
 * a node's calls go to counters it owns itself. Then the load stops and
 * its last calls end; nothing is killed. */
static result_t run_colocated(int replicas)
{
    result_t r = {.replicas = replicas};
    child_t *srv[SERVERS];
    colocated = 1;
    next_port += 1000; /* a fresh cluster: fresh ports */
    for (int k = 0; k < SERVERS; k++)
        srv[k] = fork_node(ROLE_SERVER, k);
    start_cluster(srv, SERVERS);
    create_counters(srv, SERVERS, replicas);
    wait_settled(srv, replicas);
    run_throughput(srv, srv, SERVERS, &r);
    unsigned long long failed_reply = 0;
    stop_load(srv, SERVERS, &r.failed_now, &failed_reply);
    r.failed_now += failed_reply;
    end_all(0);
    colocated = 0;
    if (opt.verbose)
        fprintf(stderr, "  replicas=%d colocated: %.0f incr/s\n", replicas, r.incr_per_s);
    return r;
}

/* ---- the figures ----------------------------------------------------------------- */

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static void print_results(const result_t *res, int count)
{
    const result_t *one = &res[0];
    const char *from = "bench-x(client-only_node)";
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas rtt_median_us %.1f us replicas=%d ratio_vs_1=%.2f%s calls=%zu "
               "failed=%zu op=incr from=%s to=owner_on_other_node\n",
               r->rtt_med_us, r->replicas, ratio(r->rtt_med_us, one->rtt_med_us),
               r->replicas == 2 ? " goal_ratio_max=2.5" : "", r->rtt_calls, r->rtt_failed, from);
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas rtt_p99_us %.1f us replicas=%d ratio_vs_1=%.2f calls=%zu\n",
               r->rtt_p99_us, r->replicas, ratio(r->rtt_p99_us, one->rtt_p99_us), r->rtt_calls);
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas incr_per_s %.0f incr/s replicas=%d ratio_vs_1=%.2f%s "
               "counters=%zu callers=%dx%d window=%d seconds=%.1f acked=%llu\n",
               r->incr_per_s, r->replicas, ratio(r->incr_per_s, one->incr_per_s),
               r->replicas == 2 ? " goal_ratio_min=0.5" : "", opt.counters, opt.clients,
               opt.callers, opt.window, opt.seconds, r->tput_acked);
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas cpu_us_per_incr %.2f us replicas=%d ratio_vs_1=%.2f "
               "servers=%.2f clients=%.2f of=cpu_of_all_node_processes/acked_incr "
               "nodes=%d cores=%ld\n",
               r->cpu_us[0] + r->cpu_us[1], r->replicas,
               ratio(r->cpu_us[0] + r->cpu_us[1], one->cpu_us[0] + one->cpu_us[1]),
               r->cpu_us[0], r->cpu_us[1], SERVERS + opt.clients, sysconf(_SC_NPROCESSORS_ONLN));
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas per_1000_incr_servers %.1f iterations replicas=%d "
               "frames_out=%.1f frames_in=%.1f context_switches=%.1f\n",
               r->turns[0] * 1000, r->replicas, r->frames_out[0] * 1000, r->frames_in[0] * 1000,
               r->csw[0] * 1000);
        printf("bench replicas per_1000_incr_clients %.1f iterations replicas=%d "
               "frames_out=%.1f frames_in=%.1f context_switches=%.1f\n",
               r->turns[1] * 1000, r->replicas, r->frames_out[1] * 1000, r->frames_in[1] * 1000,
               r->csw[1] * 1000);
    }
    for (int i = 0; i < count; i++)
        printf("bench replicas server_frames_per_incr %.3f frames replicas=%d "
               "of=frames_out_of_3_servers/acked_incr ack_only=%.3f\n",
               res[i].server_frames_per_incr, res[i].replicas, res[i].server_ack_frames_per_incr);
    for (int i = 0; i < count; i++)
        if (res[i].replicas > 1)
            printf("bench replicas incr_per_version %.2f incr replicas=%d "
                   "of=acked_incr/(puts_out/(replicas-1)) (group commit: increments a state put "
                   "carries)\n",
                   res[i].incr_per_put, res[i].replicas);
    for (int i = 0; i < count; i++)
        if (res[i].replicas > 1)
            printf("bench replicas puts_per_batch %.1f puts replicas=%d "
                   "of=puts_out/batches_out (at most one batch in flight to a member)\n",
                   res[i].puts_per_batch, res[i].replicas);
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas failover_recover_s %.3f s replicas=%d ratio_vs_1=%.2f "
               "victim=bench-c victim_counters=%llu counters=%zu until=every_counter_answers "
               "promoted=%llu query_timeouts=%llu\n",
               r->recover_s, r->replicas, ratio(r->recover_s, one->recover_s),
               r->victim_children, opt.counters, r->promoted, r->query_timeouts);
    }
    for (int i = 0; i < count; i++)
        printf("bench replicas failover_detect_s %.3f s replicas=%d of=both_survivors "
               "detector=default\n",
               res[i].detect_s, res[i].replicas);
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas failover_acked_lost %llu incr replicas=%d %s counters_short=%llu "
               "acked=%llu uncertain=%llu failed_at_once=%llu unread=%llu\n",
               r->lost, r->replicas,
               r->replicas == 1 ? "expect=loss(baseline:no_copies)" : "goal=0",
               r->short_n, r->acked, r->uncertain, r->failed_now, r->unread);
    }
    for (int i = 0; i < count; i++)
        printf("bench replicas failover_over %llu incr replicas=%d goal=0 counters_over=%llu "
               "of=value-(acked+uncertain)\n",
               res[i].over, res[i].replicas, res[i].over_n);
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        double per_copy = r->held ? (double)r->held_bytes / (double)r->held : 0;
        printf("bench replicas held_bytes_per_copy %.1f B replicas=%d held=%llu held_bytes=%llu "
               "of=herd_repl_stats on=3_servers\n",
               per_copy, r->replicas, r->held, r->held_bytes);
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas heap_per_counter %.0f B replicas=%d of=server_heap_growth/"
               "counters rss_per_counter=%.0f counters=%zu\n",
               r->heap_growth / (double)opt.counters, r->replicas,
               r->rss_growth / (double)opt.counters, opt.counters);
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        if (r->replicas == 1 || r->held == 0)
            continue;
        double held_per_node = (double)r->held / SERVERS;
        printf("bench replicas heap_per_held_copy %.0f B replicas=%d vs=replicas_1 "
               "rss_per_held_copy=%.0f held_per_node=%.0f\n",
               (r->heap_growth - one->heap_growth) / held_per_node, r->replicas,
               (r->rss_growth - one->rss_growth) / held_per_node, held_per_node);
    }
    fflush(stdout);
}

static void print_colocated(const result_t *res, int count)
{
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas incr_per_s_colocated %.0f incr/s replicas=%d ratio_vs_1=%.2f%s "
               "counters=%zu callers=%dx%d window=%d seconds=%.1f acked=%llu failed=%llu "
               "nodes=3 callers_on=server_nodes local_calls=1/3\n",
               r->incr_per_s, r->replicas, ratio(r->incr_per_s, res[0].incr_per_s),
               r->replicas == 2 ? " goal_ratio_min=0.5" : "", opt.counters, SERVERS,
               opt.callers, opt.window, opt.seconds, r->tput_acked, r->failed_now);
    }
    for (int i = 0; i < count; i++) {
        const result_t *r = &res[i];
        printf("bench replicas cpu_us_per_incr_colocated %.2f us replicas=%d ratio_vs_1=%.2f "
               "of=cpu_of_3_node_processes/acked_incr frames_out_per_1000=%.1f "
               "context_switches_per_1000=%.1f cores=%ld\n",
               r->cpu_us[0], r->replicas, ratio(r->cpu_us[0], res[0].cpu_us[0]),
               r->frames_out[0] * 1000, r->csw[0] * 1000, sysconf(_SC_NPROCESSORS_ONLN));
    }
    fflush(stdout);
}

static int parse_count(const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, only = 0, coloc = 1; /* 1 both topologies, 0 not colocated, 2 it alone */
    size_t v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            quick = 1;
        } else if (strcmp(a, "--verbose") == 0) {
            opt.verbose = 1;
        } else if (strcmp(a, "--observer") == 0) {
            opt.observer = 1;
        } else if (strcmp(a, "--colocated") == 0) {
            coloc = 2;
        } else if (strcmp(a, "--no-colocated") == 0) {
            coloc = 0;
        } else if (strcmp(a, "--strict") == 0) {
            opt.strict = 1;
        } else if (strcmp(a, "--counters") == 0 && val && parse_count(val, 1, 1000000, &v) == 0) {
            opt.counters = v, i++;
        } else if (strcmp(a, "--clients") == 0 && val &&
                   parse_count(val, 1, MAX_CLIENTS, &v) == 0) {
            opt.clients = (int)v, i++;
        } else if (strcmp(a, "--seconds") == 0 && val && parse_count(val, 1, 600, &v) == 0) {
            opt.seconds = (double)v, i++;
        } else if (strcmp(a, "--callers") == 0 && val &&
                   parse_count(val, 1, MAX_CALLERS, &v) == 0) {
            opt.callers = (int)v, i++;
        } else if (strcmp(a, "--window") == 0 && val && parse_count(val, 1, MAX_WINDOW, &v) == 0) {
            opt.window = (int)v, i++;
        } else if (strcmp(a, "--only") == 0 && val && parse_count(val, 1, 3, &v) == 0) {
            only = (int)v, i++; /* one replica count alone: for profiling, no ratios */
        } else {
            fprintf(stderr, "usage: bench_replicas [--quick] [--verbose] [--observer] "
                            "[--strict] [--counters N] [--clients N] [--seconds S] "
                            "[--callers N] [--window N] [--only 1|2|3] "
                            "[--colocated | --no-colocated]\n");
            return 2;
        }
    }
    if (quick) {
        opt.counters = opt.counters == 10000 ? 300 : opt.counters;
        opt.rtt_calls = 200;
        opt.seconds = 1.0;
    }
    signal(SIGPIPE, SIG_IGN);
    next_port = 20000 + (int)(((uint64_t)(now_s() * 1000) ^ ((uint64_t)getpid() << 7)) % 30000);
    result_t res[3], col[3];
    if (coloc == 2) {
        for (int i = 0; i < 3; i++)
            if (!only || only == i + 1)
                col[only ? 0 : i] = run_colocated(i + 1);
        print_colocated(col, only ? 1 : 3);
        return 0;
    }
    if (only) {
        result_t r = run(only);
        print_results(&r, 1);
        return (r.lost || r.over || r.unread) && only > 1 && opt.strict;
    }
    for (int i = 0; i < 3; i++)
        res[i] = run(i + 1);
    print_results(res, 3);
    if (coloc) {
        for (int i = 0; i < 3; i++)
            col[i] = run_colocated(i + 1);
        print_colocated(col, 3);
    }
    int bad = 0;
    for (int i = 1; i < 3; i++)
        if (res[i].lost || res[i].over || res[i].unread)
            bad = 1;
    if (res[0].over)
        bad = 1;
    if (bad)
        fprintf(stderr, "bench_replicas: LOST: a replicated counter lost an acknowledged "
                        "increment, or a counter holds more than was sent, or could not be read "
                        "(failover_acked_lost, failover_over above)\n");
    return bad && opt.strict;
}
