/*
 * bench_handoff_node.c - a node's process in bench_handoff's figures with
 * one process a node (bench_handoff_procs.c drives it). It reads commands
 * from its parent, one a line (procs_driver.h), and answers each:
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
 * Counters are called with herd_node_call_name_async, from outside any
 * process, as an embedding program would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_handoff.h"
#include "herd_ring.h"
#include "procs_driver.h"

#define TICK_MS 2            /* starts, calls and lookups are issued this often */
#define CHECK_MS 10          /* a watching node checks whether it settled this often */
#define START_BATCH 500      /* starts issued a tick */
#define START_TIMEOUT_MS 30000
#define PROBE_TIMEOUT_MS 1000
#define RETRY_MS 10          /* a probe that failed is sent again after this */
#define PROBE_WINDOW 1024    /* probe calls in flight */
#define WINDOW_MAX 1024
#define LOOKUPS_PER_TICK 32

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

void handoff_node_main(int index, int cmd_fd, int rep_fd, void *arg)
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

