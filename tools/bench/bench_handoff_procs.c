/*
 * bench_handoff_procs.c - bench_handoff's failover and join with one OS
 * process a node, as the reference systems ran (each BEAM node its own
 * process): every node's loop is its own, the nodes work side by side, and
 * a killed node is a process that got SIGKILL.
 *
 * The parent forks every node's process first (nanomsg must not be running
 * in a process that forks) and drives them over pipes (procs_driver.h), one
 * command a line:
 *
 *   start SEED D     make the node bench-<a+index> (SEED "-": the first),
 *                    with a registry, a supervisor and the counter service
 *                    (handoff_node_start), the failure detector lenient if D
 *                    is 1; answers "started ADDRESS"
 *   kids F S R       start counters F, F+S, ... (herd_start_child_async,
 *                    replicas R), START_BATCH a tick; answers "ok"
 *   watch M          from now on, every CHECK_MS, check that the node is
 *                    settled (node_settled) with M members up; settled_at is
 *                    the first check of a run of passing ones; "unwatch"
 *   look 1|0         random whereis of counter names every tick (counting
 *                    the failed ones), from now on (the counts reset) or no
 *                    more
 *   share F S        the node's share of counters for probe, load, verify
 *   probe            a "get" to each counter of the share, each retried
 *                    every RETRY_MS until one sent after the command answers
 *   load W           W "incr" calls in flight to random counters of the
 *                    share, counting the acknowledged ones; "stop" ends it
 *   verify           answers "verify LOST EXTRA UNCERTAIN UNREAD ACKED": the
 *                    share's last probe against the acknowledged increments
 *   children         answers "children COUNT NOT_RUNNING HEX": a bitmap of
 *                    the counters this node runs (bit i: counter i)
 *   status           answers the node's state (see node_status)
 *   report           what the node holds, on stderr (report_node); "ok"
 *   exit             the process ends at once
 *
 * failover_procs: three node processes, n counters started from all three
 * (replicas R) and settled on their ring owners; the parent SIGKILLs
 * bench-c's process (about a third of the counters). recover_s runs from
 * the kill until every counter answered a "get" sent after the kill by the
 * survivors themselves (each probes half); detect_s until both survivors
 * declared bench-c down. lost and duplicated count the counters running
 * nowhere or twice once the survivors settled (transient_max: twice at the
 * moment the last one answered).
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
#include "herd_ring.h"
#include "procs_driver.h"

#define NODES_MAX 3
#define VICTIM 2 /* the failover's victim, bench-c */
#define VICTIM_NAME "bench-c"
#define TICK_MS 2            /* starts, calls and lookups are issued this often */
#define CHECK_MS 10          /* a watching node checks whether it settled this often */
#define START_BATCH 500      /* starts issued a tick */
#define START_TIMEOUT_MS 30000
#define CALL_TIMEOUT_MS 3000
#define PROBE_TIMEOUT_MS 1000
#define RETRY_MS 10          /* a probe that failed is sent again after this */
#define PROBE_WINDOW 1024    /* probe calls in flight */
#define WINDOW_MAX 1024
#define DRIVER_WINDOW 128    /* incr calls in flight on each existing node in the join */
#define LOOKUPS_PER_TICK 32
#define POLL_MS 5            /* the parent asks for the nodes' status this often */
#define UP_DEADLINE_S 20.0
#define SETUP_DEADLINE_S 60.0
#define RECOVER_DEADLINE_S 30.0
#define SETTLE_DEADLINE_S 30.0
#define STATUS_MAX 1024

/* ---- a node's process ------------------------------------------------------------ */

typedef enum job { JOB_NONE, JOB_PROBE, JOB_LOAD } job_t;

typedef struct hnode hnode_t;

/* One call in flight: what answers it is counted against. */
typedef struct call_ctx {
    hnode_t *h;
    uint32_t slot; /* in the share */
    uint8_t job, used;
} call_ctx_t;

struct hnode {
    uv_loop_t loop;
    herd_node_t *node;
    procs_serve_t serve;
    uv_timer_t tick, check;
    int index;
    char name[16], who[48];
    names_t names;
    size_t n;
    /* starting children */
    size_t start_next, start_stride;
    int start_replicas, starting;
    size_t start_answered, start_failed, start_wanted;
    int start_error;
    /* the victim: when this node first saw it down or gone */
    double down_at;
    uint64_t false_downs; /* another member declared down or gone */
    /* watch */
    int watch_members;
    double settled_at, up_at;
    uint64_t pid_hash;        /* over (counter, whereis pid) at the last passing check */
    size_t unresolved, off_owner, own_bad; /* at the last failing check */
    /* lookups */
    int looking;
    uint64_t lookups, lookups_failed, rng;
    /* the share and its calls */
    size_t *share;            /* counter indexes */
    size_t share_n;
    job_t job;
    size_t window, outstanding;
    call_ctx_t ctx[WINDOW_MAX];
    uint32_t free_ctx[WINDOW_MAX];
    size_t nfree;
    uint64_t *expected, *uncertain;
    int64_t *got;
    uint8_t *got_ok;
    uint64_t acked, failed_now, failed_reply;
    /* the probe's queue: share slots waiting, each not before its retry time */
    uint32_t *queue;
    double *retry_at;
    size_t q_head, q_len;
    size_t answered;
    double last_answer;
    uint64_t probe_failures;
};

#define reply(h, ...) procs_reply(&(h)->serve, __VA_ARGS__)

static void on_member_change(void *data, const char *name, uint64_t incarnation,
                             herd_member_state_t old_state, herd_member_state_t new_state,
                             int gone)
{
    (void)incarnation, (void)old_state;
    hnode_t *h = data;
    if (new_state != HERD_MEMBER_DOWN && new_state != HERD_MEMBER_LEFT && !gone)
        return;
    if (strcmp(name, VICTIM_NAME) != 0)
        h->false_downs++; /* a live node declared down: the detector's mistake */
    else if (h->down_at == 0)
        h->down_at = now_s();
}

static int members_up(herd_node_t *n)
{
    herd_member_info_t m[NODES_MAX + 2];
    int count = herd_cluster_members(n, m, NODES_MAX + 2);
    int up = 0;
    for (int i = 0; i < count && i < NODES_MAX + 2; i++)
        up += m[i].state == HERD_MEMBER_UP;
    return up;
}

static void node_start(hnode_t *h, const char *seed, int lenient_detector)
{
    char addr[64];
    h->node = handoff_node_start(&h->loop, h->name, strcmp(seed, "-") ? seed : NULL, addr,
                                 sizeof(addr), lenient_detector);
    int rc = herd_cluster_on_change(h->node, on_member_change, h);
    if (rc != 0)
        die("herd_cluster_on_change", rc);
    reply(h, "started %s", addr);
}

/* ---- starting children ---- */

static void start_done(void *data, const herd_start_result_t *res)
{
    hnode_t *h = data;
    h->start_answered++;
    if (res->status != 0) {
        h->start_failed++;
        if (!h->start_error)
            h->start_error = res->status;
    }
}

static void issue_starts(hnode_t *h)
{
    for (int i = 0; i < START_BATCH && h->start_next < h->n; i++) {
        herd_child_req_t req = {.name = h->names.at[h->start_next], .service = "counter",
                                .restart = HERD_RESTART_PERMANENT,
                                .replicas = (uint8_t)h->start_replicas};
        int rc = herd_start_child_async(h->node, &req, START_TIMEOUT_MS, start_done, h);
        if (rc != 0)
            die("herd_start_child_async", rc);
        h->start_next += h->start_stride;
    }
    h->starting = h->start_next < h->n;
}

/* ---- settled ---- */

/* Counter `name` runs, or resolves, on its owner in this node's ring. */
static int on_owner(const struct herd_ring *r, const char *name, uint64_t node_id)
{
    const char *owner;
    return herd_ring_owner(r, name, strlen(name), &owner) == 0 &&
           herd_node_id_of(owner) == node_id;
}

typedef struct own_check {
    hnode_t *h;
    const struct herd_ring *ring;
    uint64_t self;
    size_t bad;
} own_check_t;

static int check_own_child(void *data, const herd_child_view_t *c)
{
    own_check_t *o = data;
    if (name_index(c->name, o->h->n) < 0)
        return 0;
    herd_pid_t pid;
    if (c->state != HERD_CHILD_RUNNING || !on_owner(o->ring, c->name, o->self) ||
        herd_whereis(o->h->node, c->name, &pid, NULL) != 0 || !herd_pid_equal(pid, c->pid))
        o->bad++;
    return 0;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* The node's side of "settled" (see the top): cheap tests first. */
static int node_settled(hnode_t *h)
{
    if (members_up(h->node) != h->watch_members)
        return 0;
    if (h->up_at == 0)
        h->up_at = now_s();
    herd_handoff_stats_t hs;
    if (herd_handoff_stats(h->node, &hs) != 0 || hs.in_flight != 0)
        return 0;
    const struct herd_ring *ring = herd_cluster_ring(h->node);
    if (ring == NULL)
        return 0;
    uint64_t hash = 0;
    h->unresolved = h->off_owner = 0;
    for (size_t i = 0; i < h->n; i++) {
        herd_pid_t pid;
        if (herd_whereis(h->node, h->names.at[i], &pid, NULL) != 0) {
            h->unresolved++;
            return 0;
        }
        if (!on_owner(ring, h->names.at[i], pid.node)) {
            h->off_owner++;
            return 0;
        }
        hash += mix64(i ^ mix64(pid.node ^ mix64(pid.incarnation ^ mix64(pid.serial))));
    }
    own_check_t o = {h, ring, herd_node_id_of(h->name), 0};
    herd_which_children(h->node, check_own_child, &o);
    h->own_bad = o.bad;
    if (o.bad)
        return 0;
    h->pid_hash = hash;
    return 1;
}

static void on_check(uv_timer_t *t)
{
    hnode_t *h = t->data;
    double at = now_s();
    if (!node_settled(h))
        h->settled_at = 0;
    else if (h->settled_at == 0)
        h->settled_at = at;
}

/* ---- calls to the share's counters ---- */

static void calls_fill(hnode_t *h);

static void queue_push(hnode_t *h, uint32_t slot, double at)
{
    size_t tail = (h->q_head + h->q_len) % h->share_n;
    h->queue[tail] = slot;
    h->retry_at[tail] = at;
    h->q_len++;
}

static void on_reply(void *data, int rc, herd_reply_t *r)
{
    call_ctx_t *cx = data;
    hnode_t *h = cx->h;
    int ok = rc == 0 && r->status == 0;
    uint32_t slot = cx->slot;
    if (cx->job == JOB_PROBE) {
        if (ok) {
            char text[32];
            size_t len = r->len < sizeof(text) - 1 ? r->len : sizeof(text) - 1;
            memcpy(text, r->data, len);
            text[len] = '\0';
            h->got[slot] = strtoll(text, NULL, 10);
            h->got_ok[slot] = 1;
            h->answered++;
            h->last_answer = now_s();
            if (h->answered == h->share_n)
                h->job = JOB_NONE; /* every counter answered */
        } else {
            h->probe_failures++;
            queue_push(h, slot, now_s() + RETRY_MS / 1000.0);
        }
    } else if (ok) {
        h->expected[slot]++;
        h->acked++;
    } else {
        h->uncertain[slot]++;
        h->failed_reply++;
    }
    cx->used = 0;
    h->free_ctx[h->nfree++] = (uint32_t)(cx - h->ctx);
    h->outstanding--;
    if (rc != HERD_ESHUTDOWN)
        calls_fill(h);
}

/* One call to share slot `slot`: 0, or the error it failed with at once. */
static int call_one(hnode_t *h, uint32_t slot, job_t job)
{
    uint32_t c = h->free_ctx[--h->nfree];
    call_ctx_t *cx = &h->ctx[c];
    *cx = (call_ctx_t){h, slot, (uint8_t)job, 1};
    const char *cmd = job == JOB_PROBE ? "get" : "incr";
    int rc = herd_node_call_name_async(h->node, h->names.at[h->share[slot]], cmd, strlen(cmd),
                                       job == JOB_PROBE ? PROBE_TIMEOUT_MS : CALL_TIMEOUT_MS,
                                       on_reply, cx);
    if (rc != 0) {
        cx->used = 0;
        h->free_ctx[h->nfree++] = c;
        return rc;
    }
    h->outstanding++;
    return 0;
}

static void calls_fill(hnode_t *h)
{
    double t = now_s();
    size_t attempts = 0;
    while (h->job != JOB_NONE && h->outstanding < h->window && h->nfree > 0 &&
           attempts++ < 2 * WINDOW_MAX) {
        if (h->job == JOB_LOAD) {
            uint32_t slot = (uint32_t)rand_below(&h->rng, h->share_n);
            if (call_one(h, slot, JOB_LOAD) != 0)
                h->failed_now++; /* nothing sent: nothing applied */
            continue;
        }
        if (h->q_len == 0 || h->retry_at[h->q_head] > t)
            break; /* the rest waits for its retry time (the queue is in that order) */
        uint32_t slot = h->queue[h->q_head];
        h->q_head = (h->q_head + 1) % h->share_n;
        h->q_len--;
        if (call_one(h, slot, JOB_PROBE) != 0) {
            h->probe_failures++;
            queue_push(h, slot, t + RETRY_MS / 1000.0);
        }
    }
}

static void set_share(hnode_t *h, size_t first, size_t stride)
{
    if (h->outstanding)
        die("a new share with calls in flight", 0);
    free(h->share), free(h->expected), free(h->uncertain), free(h->got), free(h->got_ok);
    free(h->queue), free(h->retry_at);
    h->share_n = first < h->n ? (h->n - first + stride - 1) / stride : 0;
    size_t cap = h->share_n ? h->share_n : 1;
    h->share = malloc(cap * sizeof(*h->share));
    h->expected = calloc(cap, sizeof(*h->expected));
    h->uncertain = calloc(cap, sizeof(*h->uncertain));
    h->got = calloc(cap, sizeof(*h->got));
    h->got_ok = calloc(cap, 1);
    h->queue = malloc(cap * sizeof(*h->queue));
    h->retry_at = malloc(cap * sizeof(*h->retry_at));
    if (!h->share || !h->expected || !h->uncertain || !h->got || !h->got_ok || !h->queue ||
        !h->retry_at)
        die("allocating a share", HERD_ENOMEM);
    for (size_t s = 0; s < h->share_n; s++)
        h->share[s] = first + s * stride;
    h->acked = h->failed_now = h->failed_reply = 0;
}

static void probe_begin(hnode_t *h)
{
    h->q_head = h->q_len = 0;
    for (size_t s = 0; s < h->share_n; s++) {
        h->got_ok[s] = 0;
        queue_push(h, (uint32_t)s, 0);
    }
    h->answered = 0;
    h->last_answer = 0;
    h->probe_failures = 0;
    h->job = JOB_PROBE;
    h->window = PROBE_WINDOW;
    calls_fill(h);
}

static void verify(hnode_t *h)
{
    unsigned long long lost = 0, extra = 0, uncertain = 0, unread = 0;
    for (size_t s = 0; s < h->share_n; s++) {
        uncertain += h->uncertain[s];
        if (!h->got_ok[s]) {
            unread++;
            continue;
        }
        int64_t want = (int64_t)h->expected[s];
        if (h->got[s] < want)
            lost += (unsigned long long)(want - h->got[s]);
        else if (h->got[s] > want + (int64_t)h->uncertain[s])
            extra += (unsigned long long)(h->got[s] - want - (int64_t)h->uncertain[s]);
    }
    reply(h, "verify %llu %llu %llu %llu %llu", lost, extra, uncertain, unread,
          (unsigned long long)h->acked);
}

/* ---- children, status, ticks ---- */

typedef struct bitmap {
    size_t n, count, not_running;
    uint8_t *bits;
} bitmap_t;

static int mark_child(void *data, const herd_child_view_t *c)
{
    bitmap_t *b = data;
    long i = name_index(c->name, b->n);
    if (i < 0)
        return 0;
    b->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    b->count++;
    b->not_running += c->state != HERD_CHILD_RUNNING;
    return 0;
}

static void children(hnode_t *h)
{
    bitmap_t b = {h->n, 0, 0, calloc((h->n + 7) / 8 + 1, 1)};
    char *hex = malloc((h->n + 7) / 8 * 2 + 2);
    if (b.bits == NULL || hex == NULL)
        die("allocating a bitmap", HERD_ENOMEM);
    herd_which_children(h->node, mark_child, &b);
    size_t len = 0;
    for (size_t i = 0; i < (h->n + 7) / 8; i++)
        len += (size_t)sprintf(hex + len, "%02x", b.bits[i]);
    hex[len] = '\0';
    reply(h, "children %zu %zu %s", b.count, b.not_running, len ? hex : "-");
    free(hex);
    free(b.bits);
}

/* status UP START_ANSWERED START_FAILED LOCAL DOWN_AT UP_AT SETTLED_AT PID_HASH
 *        LOOKUPS LOOKUPS_FAILED SHARE ANSWERED LAST_ANSWER OUTSTANDING ACKED
 *        UNRESOLVED OFF_OWNER OWN_BAD PROBE_FAILURES FALSE_DOWNS */
static void node_status(hnode_t *h)
{
    int up = h->node ? members_up(h->node) : 0;
    size_t local = h->node ? (size_t)herd_which_children(h->node, NULL, NULL) : 0;
    reply(h,
          "status %d %zu %zu %zu %.6f %.6f %.6f %llu %llu %llu %zu %zu %.6f %zu %llu %zu %zu "
          "%zu %llu %llu",
          up, h->start_answered, h->start_failed, local, h->down_at, h->up_at, h->settled_at,
          (unsigned long long)h->pid_hash, (unsigned long long)h->lookups,
          (unsigned long long)h->lookups_failed, h->share_n, h->answered, h->last_answer,
          h->outstanding, (unsigned long long)h->acked, h->unresolved, h->off_owner,
          h->own_bad, (unsigned long long)h->probe_failures,
          (unsigned long long)h->false_downs);
}

static void on_tick(uv_timer_t *t)
{
    hnode_t *h = t->data;
    if (h->node == NULL)
        return;
    if (h->starting)
        issue_starts(h);
    if (h->looking)
        for (int i = 0; i < LOOKUPS_PER_TICK; i++) {
            h->lookups++;
            if (herd_whereis(h->node, h->names.at[rand_below(&h->rng, h->n)], NULL, NULL) != 0)
                h->lookups_failed++;
        }
    calls_fill(h);
}

static void node_command(void *data, char *line)
{
    hnode_t *h = data;
    char arg[PROCS_CMD_MAX];
    size_t a, b;
    int m;
    if (sscanf(line, "start %511s %d", arg, &m) == 2 && h->node == NULL) {
        node_start(h, arg, m);
        return;
    }
    if (strcmp(line, "exit") == 0)
        _exit(0); /* ten thousand counters need no freeing one by one */
    if (strcmp(line, "status") == 0) {
        node_status(h);
        return;
    }
    if (strcmp(line, "report") == 0 && h->node == NULL) {
        fprintf(stderr, "  %s: not started\n", h->name);
        reply(h, "ok");
        return;
    }
    if (h->node == NULL) {
        fprintf(stderr, "%s: '%s' before start\n", h->who, line);
        _exit(1);
    }
    if (sscanf(line, "kids %zu %zu %d", &a, &b, &m) == 3 && b > 0 && m >= 1 &&
        m <= HERD_MAX_REPLICAS) {
        h->start_next = a;
        h->start_stride = b;
        h->start_replicas = m;
        h->start_answered = h->start_failed = 0;
        h->starting = 1;
        issue_starts(h);
    } else if (sscanf(line, "watch %d", &m) == 1) {
        h->watch_members = m;
        h->settled_at = h->up_at = 0;
        if (uv_timer_start(&h->check, on_check, CHECK_MS, CHECK_MS) != 0)
            die("the check timer", 0);
    } else if (strcmp(line, "unwatch") == 0) {
        uv_timer_stop(&h->check);
    } else if (sscanf(line, "look %d", &m) == 1) {
        h->looking = m;
        if (m)
            h->lookups = h->lookups_failed = 0;
    } else if (sscanf(line, "share %zu %zu", &a, &b) == 2 && b > 0) {
        set_share(h, a, b);
        h->down_at = 0; /* what went down before is not what the run watches */
        h->false_downs = 0;
    } else if (strcmp(line, "probe") == 0 && h->share_n && h->job == JOB_NONE) {
        probe_begin(h);
    } else if (sscanf(line, "load %d", &m) == 1 && m > 0 && m <= WINDOW_MAX && h->share_n &&
               h->job == JOB_NONE) {
        h->job = JOB_LOAD;
        h->window = (size_t)m;
        calls_fill(h);
    } else if (strcmp(line, "stop") == 0) {
        h->job = JOB_NONE;
    } else if (strcmp(line, "verify") == 0) {
        verify(h);
        return;
    } else if (strcmp(line, "children") == 0) {
        children(h);
        return;
    } else if (strcmp(line, "report") == 0) {
        report_node(h->node, h->n);
        fprintf(stderr, "    %s: unresolved %zu off_owner %zu own_bad %zu (at the last "
                        "check); probe %zu of %zu answered, %llu failures\n",
                h->name, h->unresolved, h->off_owner, h->own_bad, h->answered, h->share_n,
                (unsigned long long)h->probe_failures);
    } else {
        fprintf(stderr, "%s: bad command '%s'\n", h->who, line);
        _exit(1);
    }
    reply(h, "ok");
}

static void node_main(int index, int cmd_fd, int rep_fd, void *arg)
{
    hnode_t *h = calloc(1, sizeof(*h));
    if (h == NULL || uv_loop_init(&h->loop) != 0)
        die("a node process's loop", 0);
    h->index = index;
    h->n = *(const size_t *)arg;
    h->names = names_make(h->n);
    h->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(index + 1) | 1;
    for (uint32_t c = 0; c < WINDOW_MAX; c++)
        h->free_ctx[h->nfree++] = WINDOW_MAX - 1 - c;
    snprintf(h->name, sizeof(h->name), "bench-%c", 'a' + index);
    snprintf(h->who, sizeof(h->who), "bench_handoff: node %s", h->name);
    next_port += 97 * index; /* each process tries its own ports first */
    procs_serve_start(&h->serve, &h->loop, cmd_fd, rep_fd, node_command, h, h->who);
    h->tick.data = h->check.data = h;
    if (uv_timer_init(&h->loop, &h->tick) != 0 || uv_timer_init(&h->loop, &h->check) != 0 ||
        uv_timer_start(&h->tick, on_tick, TICK_MS, TICK_MS) != 0)
        die("a node process's timers", 0);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    _exit(0);
}

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
        c[k] = procs_fork(node_main, k, &n_arg);
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
