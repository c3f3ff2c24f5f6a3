/*
 * node.c - a herd node: its identity, clock, random source, run queue and the
 * libuv handles that drive them.
 *
 * How it works
 * ------------
 * Processes with messages sit in a FIFO run queue. While the queue is not
 * empty an idle handle keeps the loop from sleeping, and each loop iteration
 * gives every queued process a turn of up to PROC_TURN messages, for at most
 * NODE_BUDGET messages in all, so timers and I/O are never starved. Node
 * timers live in a heap (timer.c) behind one uv_timer armed for the earliest
 * deadline. Blocking calls from outside processes run the loop one iteration
 * at a time until their reply arrives.
 *
 * Each run of a node's loop by herd is noted on the running thread (a
 * loop_frame_t on its stack), so that a blocking call from one of the loop's
 * callbacks finds its loop already running and refuses (HERD_EDEADLK)
 * instead of running it nested in itself: libuv does not say whether a loop
 * runs, and a nested uv_run re-enters callbacks that are half done.
 */
#include "node.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define NODE_BUDGET 8192 /* messages per loop iteration */
#define PROC_TURN 64     /* messages per process turn */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t herd_node_id_of(const char *name)
{
    return XXH3_64bits(name, strlen(name));
}

int herd_pid_equal(herd_pid_t a, herd_pid_t b)
{
    return a.node == b.node && a.incarnation == b.incarnation && a.serial == b.serial;
}

int herd_pid_is_none(herd_pid_t p)
{
    return p.node == 0 && p.incarnation == 0 && p.serial == 0;
}

const char *herd_reason_name(int reason)
{
    static const char *const names[] = {"normal",       "shutdown", "killed",
                                        "noproc",       "noconnection",
                                        "name_conflict", "handoff",  "max_restarts"};
    switch (reason) {
#define HERD_CRASH_NAME(name, value, msg)                                     \
    case HERD_##name:                                                         \
        return "crash:" #name;
        HERD_ERRNO_MAP(HERD_CRASH_NAME)
#undef HERD_CRASH_NAME
    }
    if (reason < 0)
        return "crash";
    if ((size_t)reason < sizeof(names) / sizeof(names[0]))
        return names[reason];
    return "unknown";
}

uint64_t herd_node_now(const herd_node_t *n)
{
    if (n->clock.now_ms)
        return n->clock.now_ms(n->clock.data);
    return uv_now(n->loop);
}

uint64_t herd_node_wall_ms(const herd_node_t *n)
{
    if (n->clock.wall_ms)
        return n->clock.wall_ms(n->clock.data);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t herd_node_hlc_now(herd_node_t *n)
{
    return hlc_now(&n->hlc, herd_node_wall_ms(n));
}

uint64_t herd_node_random(herd_node_t *n)
{
    return splitmix64(&n->rng);
}

uint64_t node_new_ref(herd_node_t *n)
{
    return ++n->next_ref;
}

herd_pid_t node_outside_pid(const herd_node_t *n)
{
    return (herd_pid_t){n->id, n->incarnation, 0};
}

int node_is_local(const herd_node_t *n, herd_pid_t pid)
{
    return pid.node == n->id && pid.incarnation == n->incarnation;
}

const char *herd_node_name(const herd_node_t *n)
{
    return n->name;
}

uint64_t herd_node_incarnation(const herd_node_t *n)
{
    return n->incarnation;
}

uv_loop_t *herd_node_loop(herd_node_t *n)
{
    return n->loop;
}

void herd_node_stats(const herd_node_t *n, herd_node_stats_t *out)
{
    *out = n->stats;
}

size_t herd_node_process_count(const herd_node_t *n)
{
    return n->procs.count;
}

/* ---- the run queue ---------------------------------------------------------- */

static int node_run_queue(herd_node_t *n, int budget)
{
    int handled = 0;
    /* Only the processes queued now get a turn: one that re-queues goes last. */
    herd_proc_t *stop_after = n->runq_tail;
    while (n->runq_head && handled < budget) {
        herd_proc_t *p = n->runq_head;
        n->runq_head = p->run_next;
        if (n->runq_head == NULL)
            n->runq_tail = NULL;
        p->run_next = NULL;
        p->flags &= (uint8_t)~PROC_QUEUED;
        int last = p == stop_after;
        handled += proc_run(p, PROC_TURN); /* may free p, may queue others */
        if (last)
            break;
    }
    return handled;
}

/* Run queued processes until the queue is empty or the budget is spent.
 * Every round trip between two processes would otherwise cost a loop
 * iteration, and with it an epoll_wait system call. */
static int node_drain(herd_node_t *n, int budget)
{
    int handled = 0;
    while (n->runq_head && handled < budget)
        handled += node_run_queue(n, budget - handled);
    return handled;
}

static void node_on_idle(uv_idle_t *h)
{
    herd_node_t *n = h->data;
    node_drain(n, NODE_BUDGET);
    if (n->done_head)
        node_run_done(n);
    if (n->runq_head == NULL && n->done_head == NULL)
        uv_idle_stop(&n->idle);
}

void node_schedule(herd_node_t *n, herd_proc_t *p)
{
    if (p->flags & (PROC_QUEUED | PROC_PREPARED))
        return;
    p->flags |= PROC_QUEUED;
    p->run_next = NULL;
    if (n->runq_tail)
        n->runq_tail->run_next = p;
    else
        n->runq_head = p;
    n->runq_tail = p;
    node_kick(n);
}

void node_kick(herd_node_t *n)
{
    if (!n->stopping && !uv_is_active((uv_handle_t *)&n->idle))
        uv_idle_start(&n->idle, node_on_idle);
}

/* ---- timers ------------------------------------------------------------------ */

static void node_on_tick(uv_timer_t *h)
{
    herd_node_t *n = h->data;
    n->armed_deadline = UINT64_MAX;
    uv_update_time(n->loop);
    timer_fire_due(n, herd_node_now(n));
    node_timers_changed(n);
}

/* Keep the uv_timer armed for the earliest node timer. Re-arm only when that
 * deadline moved earlier: a cancelled earliest timer just costs one early
 * wake-up. */
void node_timers_changed(herd_node_t *n)
{
    uint64_t next = timer_next_deadline(n);
    if (n->stopping)
        return;
    if (next == UINT64_MAX && n->armed_deadline != UINT64_MAX) {
        /* nothing left to wait for: let the loop end (herd_node_run_for) */
        uv_timer_stop(&n->tick);
        n->armed_deadline = UINT64_MAX;
        return;
    }
    if (next >= n->armed_deadline)
        return;
    uint64_t now = herd_node_now(n);
    n->armed_deadline = next;
    uv_timer_start(&n->tick, node_on_tick, next > now ? next - now : 0, 0);
}

/* ---- lifecycle ------------------------------------------------------------- */

/* A seed that differs per node made, even for nodes made and freed in the
 * same millisecond at the same address. */
static uint64_t node_entropy(void)
{
    static uint64_t made;
    uint64_t s = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    s ^= ++made * 0x9e3779b97f4a7c15ull;
    return splitmix64(&s);
}

static uint64_t node_default_incarnation(herd_node_t *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    /* start time first, so a restart compares higher; random bits for two
     * starts in the same millisecond */
    return (ms << 20) | (herd_node_random(n) & 0xfffff);
}

static int node_init_loop(herd_node_t *n, uv_loop_t *loop)
{
    if (loop == NULL) {
        loop = malloc(sizeof(*loop));
        if (loop == NULL)
            return HERD_ENOMEM;
        if (uv_loop_init(loop) != 0) {
            free(loop);
            return HERD_EIO;
        }
        n->own_loop = 1;
    }
    n->loop = loop;
    uv_idle_init(loop, &n->idle);
    uv_timer_init(loop, &n->tick);
    uv_timer_init(loop, &n->limit);
    n->idle.data = n->tick.data = n->limit.data = n;
    return 0;
}

static void node_on_closed(uv_handle_t *h)
{
    herd_node_t *n = h->data;
    n->closed_handles++;
}

/* Close the node's own handles and its loop if it made it; memory tied to
 * the loop is freed only once the loop says it is closed. */
static void node_close_handles(herd_node_t *n)
{
    uv_close((uv_handle_t *)&n->idle, node_on_closed);
    uv_close((uv_handle_t *)&n->tick, node_on_closed);
    uv_close((uv_handle_t *)&n->limit, node_on_closed);
    while (n->closed_handles < 3)
        uv_run(n->loop, UV_RUN_NOWAIT);
    if (n->own_loop) {
        uv_loop_close(n->loop);
        free(n->loop);
    }
}

int herd_node_new(const herd_node_config_t *cfg, herd_node_t **out)
{
    if (cfg == NULL || out == NULL)
        return HERD_EINVAL;
    int rc = herd_ring_check_name(cfg->name);
    if (rc)
        return rc;
    herd_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return HERD_ENOMEM;
    strcpy(n->name, cfg->name);
    n->id = herd_node_id_of(cfg->name);
    n->rng = cfg->seed ? cfg->seed : node_entropy();
    n->incarnation = cfg->incarnation ? cfg->incarnation : node_default_incarnation(n);
    if (cfg->clock)
        n->clock = *cfg->clock;
    n->mailbox_limit = cfg->mailbox_limit ? cfg->mailbox_limit : HERD_DEFAULT_MAILBOX_LIMIT;
    n->max_message = cfg->max_message ? cfg->max_message : HERD_DEFAULT_MAX_MESSAGE;
    n->armed_deadline = UINT64_MAX;
    n->net = &node_net_local;
    u64map_init(&n->procs);
    u64map_init(&n->calls);
    u64map_init(&n->timers);
    u64map_init(&n->redirects);
    rc = node_init_loop(n, cfg->loop);
    if (rc == 0 && (rc = node_posts_init(n)) != 0)
        node_close_handles(n);
    if (rc) {
        free(n);
        return rc;
    }
    *out = n;
    return 0;
}

void herd_node_free(herd_node_t *n)
{
    if (n == NULL)
        return;
    node_posts_free(n); /* first: no thread can post to it any more */
    for (int i = HERD_EXT_COUNT - 1; i >= 0; i--) /* upper layers first */
        if (n->ext[i].ptr && n->ext[i].free_fn)
            n->ext[i].free_fn(n->ext[i].ptr);
    memset(n->ext, 0, sizeof(n->ext));
    n->exit_hook_count = 0;
    node_events_free(n); /* nobody is told of what freeing does */
    n->net->close(n); /* the cluster, if any */
    n->stopping = 1;
    proc_free_all(n);
    timer_free_all(n);
    node_calls_cancel(n); /* the async callers are told; then the calls go */
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&n->calls, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&n->calls);
    u64map_fini(&n->procs);
    node_redirects_free(n);
    node_close_handles(n);
    free(n);
}

/* ---- hooks ------------------------------------------------------------------ */

int herd_node_on_exit(herd_node_t *n, herd_exit_hook cb, void *data)
{
    if (cb == NULL || n->exit_hook_count == HERD_MAX_HOOKS)
        return HERD_EINVAL;
    n->exit_hooks[n->exit_hook_count].cb = cb;
    n->exit_hooks[n->exit_hook_count].data = data;
    n->exit_hook_count++;
    return 0;
}

int herd_node_set_ext(herd_node_t *n, int slot, void *ptr, void (*free_fn)(void *))
{
    if (slot < 0 || slot >= HERD_EXT_COUNT)
        return HERD_EINVAL;
    n->ext[slot].ptr = ptr;
    n->ext[slot].free_fn = free_fn;
    return 0;
}

void *herd_node_ext(const herd_node_t *n, int slot)
{
    return slot >= 0 && slot < HERD_EXT_COUNT ? n->ext[slot].ptr : NULL;
}

/* ---- running ----------------------------------------------------------------- */

static void node_on_limit(uv_timer_t *h)
{
    uv_stop(h->loop);
}

int herd_node_in_process(const herd_node_t *n)
{
    return n->depth > 0;
}

/* The runs of loops on this thread, innermost first: a few frames deep at
 * most, so a walk is cheap next to what a blocking call costs. Initial-exec:
 * the library's objects are position independent, and the default model
 * would call __tls_get_addr at every look (a blocking call looks three
 * times; measured: herd_node_call's round trip 3-10 % slower). One pointer
 * fits the static TLS glibc keeps for libraries, dlopen'ed ones included. */
static _Thread_local loop_frame_t *loop_frames __attribute__((tls_model("initial-exec")));

void node_loop_enter(herd_node_t *n, loop_frame_t *f)
{
    f->loop = n->loop;
    f->up = loop_frames;
    loop_frames = f;
}

void node_loop_leave(loop_frame_t *f)
{
    loop_frames = f->up;
}

int herd_node_in_loop(const herd_node_t *n)
{
    if (n->depth > 0)
        return 1;
    for (const loop_frame_t *f = loop_frames; f; f = f->up)
        if (f->loop == n->loop)
            return 1;
    return 0;
}

int herd_node_run_for(herd_node_t *n, uint64_t ms)
{
    if (herd_node_in_loop(n))
        return HERD_EDEADLK;
    loop_frame_t f;
    node_loop_enter(n, &f);
    uv_update_time(n->loop);
    /* unref'd: the limit alone does not keep the loop running */
    uv_timer_start(&n->limit, node_on_limit, ms, 0);
    uv_unref((uv_handle_t *)&n->limit);
    node_posts_hold(n);
    uv_run(n->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&n->limit);
    node_loop_leave(&f);
    return 0;
}

int herd_node_run(herd_node_t *n)
{
    if (herd_node_in_loop(n))
        return HERD_EDEADLK;
    loop_frame_t f;
    node_loop_enter(n, &f);
    node_posts_ref(n, 1); /* another thread's post may be all there is to wait for */
    uv_run(n->loop, UV_RUN_DEFAULT);
    node_posts_ref(n, 0);
    node_loop_leave(&f);
    return 0;
}

int herd_node_poll(herd_node_t *n)
{
    if (herd_node_in_process(n))
        return HERD_EDEADLK;
    timer_fire_due(n, herd_node_now(n));
    /* bounded: a process that keeps messaging itself cannot hold poll forever */
    int handled = node_drain(n, 64 * NODE_BUDGET);
    if (n->done_head)
        handled += node_run_done(n);
    if (n->runq_head == NULL && n->done_head == NULL)
        uv_idle_stop(&n->idle);
    node_timers_changed(n);
    return handled;
}

/* Run the loop until `w` is answered; the call's own timeout (a node timer)
 * guarantees an answer. Under a virtual clock nobody advances, nothing would
 * ever time out, so there the wait ends when the node runs out of work. */
int node_wait(herd_node_t *n, call_waiter_t *w)
{
    loop_frame_t f;
    int rc = 0;
    node_loop_enter(n, &f);
    while (!w->done) {
        if (n->clock.now_ms == NULL) {
            /* what is ready now first; block in the loop only when idle */
            node_drain(n, NODE_BUDGET);
            if (!w->done)
                uv_run(n->loop, n->runq_head ? UV_RUN_NOWAIT : UV_RUN_ONCE);
        } else {
            uv_run(n->loop, UV_RUN_NOWAIT);
            if (herd_node_poll(n) == 0 && !w->done) {
                rc = HERD_ETIMEDOUT;
                break;
            }
        }
    }
    node_loop_leave(&f);
    return rc;
}
