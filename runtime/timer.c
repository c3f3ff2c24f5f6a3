/*
 * timer.c - node timers: send_after, send_interval and call timeouts.
 *
 * Timers sit in a binary min-heap ordered by (deadline, id); each timer knows
 * its heap slot, so a cancel (every answered call cancels its timeout) is an
 * O(log n) removal rather than a tombstone left to rot. One uv_timer, armed
 * by node.c for the earliest deadline, drives them; a virtual clock drives
 * them through herd_node_poll instead.
 */
#include "node.h"
#include "runtime_layers.h"

#include <stdlib.h>
#include <string.h>

#define TIMER_FIRE_BUDGET 100000 /* per call of timer_fire_due */

typedef struct htimer {
    uint64_t id;
    uint64_t deadline;
    uint64_t interval; /* 0: one-shot */
    uint64_t ref;      /* TIMER_CALL: the call */
    herd_pid_t to;
    timer_kind_t kind;
    size_t heap_index;
    size_t len;
    uint8_t *data;
} htimer_t;

static int timer_before(const htimer_t *a, const htimer_t *b)
{
    return a->deadline != b->deadline ? a->deadline < b->deadline : a->id < b->id;
}

static void heap_set(timer_heap_t *h, size_t i, htimer_t *t)
{
    h->items[i] = t;
    t->heap_index = i;
}

static void heap_up(timer_heap_t *h, size_t i)
{
    htimer_t *t = h->items[i];
    while (i > 0 && timer_before(t, h->items[(i - 1) / 2])) {
        heap_set(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(h, i, t);
}

static void heap_down(timer_heap_t *h, size_t i)
{
    htimer_t *t = h->items[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->count)
            break;
        if (c + 1 < h->count && timer_before(h->items[c + 1], h->items[c]))
            c++;
        if (!timer_before(h->items[c], t))
            break;
        heap_set(h, i, h->items[c]);
        i = c;
    }
    heap_set(h, i, t);
}

static int heap_push(timer_heap_t *h, htimer_t *t)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct htimer **items = realloc(h->items, cap * sizeof(*items));
        if (items == NULL)
            return HERD_ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    heap_set(h, h->count++, t);
    heap_up(h, h->count - 1);
    return 0;
}

static void heap_remove(timer_heap_t *h, htimer_t *t)
{
    size_t i = t->heap_index;
    htimer_t *last = h->items[--h->count];
    if (last == t)
        return;
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->heap_index);
}

static void timer_free(htimer_t *t)
{
    free(t->data);
    free(t);
}

int timer_arm(herd_node_t *n, timer_kind_t kind, herd_pid_t to, uint64_t ms,
              uint64_t interval, const void *data, size_t len, uint64_t ref, uint64_t *id)
{
    if (len > n->max_message)
        return HERD_ETOOBIG;
    htimer_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return HERD_ENOMEM;
    if (len && (t->data = malloc(len)) == NULL) {
        free(t);
        return HERD_ENOMEM;
    }
    if (len)
        memcpy(t->data, data, len);
    t->len = len;
    t->id = node_new_ref(n);
    t->deadline = herd_node_now(n) + ms;
    t->interval = interval;
    t->ref = ref;
    t->to = to;
    t->kind = kind;
    if (u64map_put(&n->timers, t->id, t) != 0) {
        timer_free(t);
        return HERD_ENOMEM;
    }
    if (heap_push(&n->heap, t) != 0 || proc_note_timer(n, to, t->id) != 0) {
        if (n->heap.count && n->heap.items[t->heap_index] == t)
            heap_remove(&n->heap, t);
        u64map_del(&n->timers, t->id);
        timer_free(t);
        return HERD_ENOMEM;
    }
    *id = t->id;
    node_timers_changed(n);
    return 0;
}

int timer_cancel(herd_node_t *n, uint64_t id)
{
    htimer_t *t = u64map_del(&n->timers, id);
    if (t == NULL)
        return HERD_ENOENT;
    proc_forget_timer(n, t->to, id);
    heap_remove(&n->heap, t);
    timer_free(t);
    node_timers_changed(n);
    return 0;
}

void timer_drop_for_exit(herd_node_t *n, uint64_t id)
{
    htimer_t *t = u64map_get(&n->timers, id);
    if (t == NULL)
        return;
    if (t->kind == TIMER_CALL)
        /* cancels t */
        proc_complete_call(n, t->ref, HERD_ENOPROC, NULL, 0, REPLY_BY_RUNTIME);
    else
        timer_cancel(n, id);
}

uint64_t timer_next_deadline(const herd_node_t *n)
{
    return n->heap.count ? n->heap.items[0]->deadline : UINT64_MAX;
}

/* A due timer fires: a call times out, or a message is sent. Returns 1 when
 * the timer is to run again (it stays in the heap, re-keyed). */
static int timer_fire(herd_node_t *n, htimer_t *t, uint64_t now)
{
    if (t->kind == TIMER_CALL) {
        proc_complete_call(n, t->ref, HERD_ETIMEDOUT, NULL, 0, REPLY_BY_RUNTIME);
        return 0;
    }
    int rc = proc_deliver(n, t->to, HERD_MSG_INFO, node_outside_pid(n), t->id, 0, t->data,
                          t->len, 1);
    if (rc != 0 || t->interval == 0)
        return 0; /* one-shot, or its process is gone */
    t->deadline += t->interval;
    if (t->deadline <= now) /* fell behind (a long handler): do not burst */
        t->deadline = now + t->interval;
    return 1;
}

int timer_fire_due(herd_node_t *n, uint64_t now)
{
    int fired = 0;
    while (n->heap.count && n->heap.items[0]->deadline <= now && fired < TIMER_FIRE_BUDGET) {
        htimer_t *t = n->heap.items[0];
        fired++;
        /* out of the table first: completing a call cancels its timer */
        heap_remove(&n->heap, t);
        u64map_del(&n->timers, t->id);
        if (timer_fire(n, t, now) && u64map_put(&n->timers, t->id, t) == 0 &&
            heap_push(&n->heap, t) == 0)
            continue;
        if (u64map_get(&n->timers, t->id) == t)
            u64map_del(&n->timers, t->id);
        proc_forget_timer(n, t->to, t->id);
        timer_free(t);
    }
    return fired;
}

void timer_free_all(herd_node_t *n)
{
    for (size_t i = 0; i < n->heap.count; i++)
        timer_free(n->heap.items[i]);
    free(n->heap.items);
    memset(&n->heap, 0, sizeof(n->heap));
    u64map_fini(&n->timers);
}

/* ---- the public timer API ------------------------------------------------------ */

static int timer_start_send(herd_node_t *n, herd_pid_t to, uint64_t ms, uint64_t interval,
                            const void *data, size_t len, uint64_t *timer)
{
    if ((len && data == NULL) || timer == NULL)
        return HERD_EINVAL;
    if (proc_lookup(n, to) == NULL)
        return HERD_ENOPROC;
    return timer_arm(n, TIMER_SEND, to, ms, interval, data, len, 0, timer);
}

int herd_send_after(herd_node_t *n, herd_pid_t to, uint64_t ms, const void *data, size_t len,
                    uint64_t *timer)
{
    return timer_start_send(n, to, ms, 0, data, len, timer);
}

int herd_send_interval(herd_node_t *n, herd_pid_t to, uint64_t ms, const void *data,
                       size_t len, uint64_t *timer)
{
    if (ms == 0)
        return HERD_EINVAL;
    return timer_start_send(n, to, ms, ms, data, len, timer);
}

int herd_cancel_timer(herd_node_t *n, uint64_t timer)
{
    htimer_t *t = u64map_get(&n->timers, timer);
    if (t == NULL || t->kind != TIMER_SEND)
        return HERD_ENOENT;
    return timer_cancel(n, timer);
}
