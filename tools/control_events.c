/*
 * control_events.c - a control socket's `events` command (control_events.h):
 * the node's events kept in a bounded ring, answered by long polls.
 *
 * How it works. The socket subscribes to every kind of event and keeps
 * each as the JSON text of its answer, rendered when it is told (pids with
 * the names of their nodes as the members are then), in a ring sorted by
 * seq: the last CONTROL_EVENTS_KEEP, at most CONTROL_EVENTS_KEEP_BYTES.
 * A request answers at once with the events after its `since`; when there
 * are none it waits in a watcher list, each watcher with a timer of the
 * node (herd_send_after) aimed at the socket's timing process, until an
 * event completes it or its timer fires.
 *
 * Seqs do not always arrive in order: a subscriber of herd's own tier,
 * told first, may emit an event of its own while being told one (the
 * supervisor starts a child as it is told member_down), and that event
 * reaches this socket before the one that caused it. So the ring tells
 * `ready`: the highest seq below which no seq is missing, and watchers are
 * answered only up to it; a gap closes when its event comes. Every gap
 * closes before the outermost emit returns, so a request or a timer, which
 * run from the loop and never inside an emit, take every event held as
 * ready (and a gap wider than EVENTS_GAP_MAX closes at once, to be safe).
 */
#include "control_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"
#include "herdd_children.h"
#include "herdd_debug.h"
#include "log.h"

#define EVENTS_GAP_MAX 64
#define EVENTS_TEXT_MAX 2048 /* one event's JSON: a name of 255 bytes, escaped */

typedef struct ev_item {
    uint64_t seq;
    size_t len;
    char *text; /* owned: the event as a JSON object */
} ev_item_t;

/* A request waiting for events after `since`. */
typedef struct watcher {
    uint64_t token; /* control_defer's */
    uint64_t since;
    uint64_t timer; /* the node's timer that ends the wait */
    struct watcher *next;
} watcher_t;

/* The timing process's state: the socket's events (NULL once the socket
 * stopped: the process then only waits for its own end). */
typedef struct ev_clock {
    control_events_t *ev;
} ev_clock_t;

struct control_events {
    void *data; /* the herd_control_t */
    herd_node_t *node;
    uint64_t sub;
    int stopping;
    ev_item_t items[CONTROL_EVENTS_KEEP]; /* a ring from head, sorted by seq */
    size_t head, count, bytes;
    uint64_t first;   /* the first seq told (0: none yet) */
    uint64_t top;     /* the highest seq told */
    uint64_t ready;   /* every seq in [first, ready] is told */
    uint64_t dropped; /* events told but no longer held */
    watcher_t *watchers;
    size_t watcher_count;
    ev_clock_t *clock; /* the timing process's, NULL while there is none */
    herd_pid_t clock_pid;
};

/* ---- the ring ------------------------------------------------------------------------ */

static ev_item_t *item_at(control_events_t *ev, size_t i)
{
    return &ev->items[(ev->head + i) % CONTROL_EVENTS_KEEP];
}

static void ring_drop_oldest(control_events_t *ev)
{
    ev_item_t *it = item_at(ev, 0);
    ev->bytes -= it->len;
    free(it->text);
    *it = (ev_item_t){0};
    ev->head = (ev->head + 1) % CONTROL_EVENTS_KEEP;
    ev->count--;
    ev->dropped++;
}

/* Insert in seq order (usually at the end); takes `text`. Returns its index. */
static size_t ring_insert(control_events_t *ev, uint64_t seq, char *text, size_t len)
{
    while (ev->count > 0 && (ev->count == CONTROL_EVENTS_KEEP ||
                             ev->bytes + len > CONTROL_EVENTS_KEEP_BYTES))
        ring_drop_oldest(ev);
    size_t at = ev->count;
    while (at > 0 && item_at(ev, at - 1)->seq > seq) {
        *item_at(ev, at) = *item_at(ev, at - 1);
        at--;
    }
    *item_at(ev, at) = (ev_item_t){seq, len, text};
    ev->count++;
    ev->bytes += len;
    return at;
}

/* The index of the first event after `since` (count when there is none). */
static size_t ring_after(control_events_t *ev, uint64_t since)
{
    size_t lo = 0, hi = ev->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (item_at(ev, mid)->seq <= since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The event at index `at` came: move `ready` up over the seqs now held
 * without a gap below them. Only a new event can be ready + 1 (ready is
 * moved as far as it goes each time), so the walk starts there. */
static void ring_advance(control_events_t *ev, size_t at)
{
    for (size_t i = at; i < ev->count && item_at(ev, i)->seq == ev->ready + 1; i++)
        ev->ready++;
    if (ev->top - ev->ready > EVENTS_GAP_MAX)
        ev->ready = ev->top;
}

/* The events after `since` that are ready, as an answer. */
static json_t *events_answer(control_events_t *ev, uint64_t since)
{
    json_t *list = json_array();
    uint64_t last = since;
    size_t bytes = 0, n = 0, i = ring_after(ev, since);
    uint64_t oldest = ev->count ? item_at(ev, 0)->seq : ev->top + 1;
    uint64_t from = since + 1 > ev->first ? since + 1 : ev->first;
    uint64_t lost = ev->first && oldest > from ? oldest - from : 0;
    for (; i < ev->count; i++) {
        const ev_item_t *it = item_at(ev, i);
        if (it->seq > ev->ready || n == CONTROL_EVENTS_ANSWER_MAX ||
            (n > 0 && bytes + it->len > CONTROL_EVENTS_ANSWER_BYTES))
            break;
        json_t *o = json_loadb(it->text, it->len, 0, NULL);
        if (o == NULL)
            continue; /* not possible: the text is json_dumps' */
        json_array_append_new(list, o);
        bytes += it->len;
        last = it->seq;
        n++;
    }
    int more = i < ev->count && item_at(ev, i)->seq <= ev->ready;
    return json_pack("{s:o, s:I, s:I, s:I, s:b}", "events", list, "seq", (json_int_t)last,
                     "incarnation", (json_int_t)herd_node_incarnation(ev->node), "lost",
                     (json_int_t)lost, "more", more);
}

/* ---- rendering ---------------------------------------------------------------------- */

static void iso_time(uint64_t wall_ms, char *out, size_t cap)
{
    time_t s = (time_t)(wall_ms / 1000);
    struct tm tm;
    char base[32];
    if (gmtime_r(&s, &tm) == NULL || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(base, sizeof(base), "?");
    snprintf(out, cap, "%s.%03uZ", base, (unsigned)(wall_ms % 1000));
}

/* A pid as the other commands print it: NODE/INCARNATION/SERIAL. */
static json_t *pid_json(void *data, herd_pid_t pid, char *node, size_t cap)
{
    char text[160];
    herdd_member_name(data, pid.node, node, cap);
    snprintf(text, sizeof(text), "%s/%llu/%llu", node, (unsigned long long)pid.incarnation,
             (unsigned long long)pid.serial);
    return json_string(text);
}

static int has_reason(herd_event_kind_t k)
{
    return k == HERD_EV_GROUP_LEFT || k == HERD_EV_CHILD_MOVED || k == HERD_EV_CHILD_GAVE_UP ||
           k == HERD_EV_CHILD_TERMINATED;
}

static int is_member_event(herd_event_kind_t k)
{
    return k >= HERD_EV_MEMBER_UP && k <= HERD_EV_MEMBER_LEFT;
}

static json_t *event_json(control_events_t *ev, const herd_event_t *e)
{
    char when[48], node[80];
    iso_time(herd_node_wall_ms(ev->node), when, sizeof(when));
    json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:s}", "seq", (json_int_t)e->seq, "kind",
                          herd_event_kind_name(e->kind), "time", when, "time_ms",
                          (json_int_t)e->time_ms, "name", e->name ? e->name : "");
    if (o == NULL) /* a name that is not UTF-8 */
        o = json_pack("{s:I, s:s, s:s, s:I, s:s}", "seq", (json_int_t)e->seq, "kind",
                      herd_event_kind_name(e->kind), "time", when, "time_ms",
                      (json_int_t)e->time_ms, "name", "?");
    if (o == NULL)
        return NULL;
    if (!herd_pid_is_none(e->pid)) {
        json_object_set_new(o, "pid", pid_json(ev->data, e->pid, node, sizeof(node)));
        json_object_set_new(o, "node", json_string(node));
    }
    if (!herd_pid_is_none(e->other))
        json_object_set_new(o, "other", pid_json(ev->data, e->other, node, sizeof(node)));
    if (has_reason(e->kind) || e->reason != 0)
        json_object_set_new(o, "reason", json_string(herd_reason_name(e->reason)));
    if (is_member_event(e->kind)) {
        json_object_set_new(o, "incarnation", json_integer((json_int_t)e->incarnation));
        json_object_set_new(o, "old_state", json_string(herd_member_state_name(e->old_state)));
        json_object_set_new(o, "new_state", json_string(herd_member_state_name(e->new_state)));
        json_object_set_new(o, "gone", json_boolean(e->gone));
    }
    return o;
}

/* ---- watchers --------------------------------------------------------------------------- */

/* A stopping socket answers its waiters ESHUTDOWN: a watcher says at once
 * that it lost the node, instead of asking a node that may still be there
 * for a moment and then waiting out its request. */
static void watcher_answer(control_events_t *ev, watcher_t *w)
{
    if (ev->stopping)
        control_finish(herdd_control(ev->data), w->token, HERD_ESHUTDOWN, NULL,
                       "the control socket is stopping");
    else
        control_finish(herdd_control(ev->data), w->token, 0, events_answer(ev, w->since), NULL);
    free(w);
}

/* Take the watchers that `all` or the ready events complete out of the
 * list, then answer them (an answer's callback may add watchers). */
static void watchers_answer(control_events_t *ev, int all)
{
    watcher_t *done = NULL;
    for (watcher_t **p = &ev->watchers; *p;) {
        watcher_t *w = *p;
        if (all || ev->ready > w->since) {
            *p = w->next;
            ev->watcher_count--;
            if (ev->clock)
                herd_cancel_timer(ev->node, w->timer);
            w->next = done;
            done = w;
        } else {
            p = &w->next;
        }
    }
    while (done) {
        watcher_t *w = done;
        done = w->next;
        watcher_answer(ev, w);
    }
}

/* A watcher's timer fired: it is answered with what is ready (none, or
 * events a gap held back). */
static void watcher_expired(control_events_t *ev, uint64_t timer)
{
    for (watcher_t **p = &ev->watchers; *p && timer; p = &(*p)->next) {
        if ((*p)->timer == timer) {
            watcher_t *w = *p;
            *p = w->next;
            ev->watcher_count--;
            ev->ready = ev->top; /* not inside an emit: gaps are final */
            watcher_answer(ev, w);
            return;
        }
    }
}

/* ---- the timing process ---------------------------------------------------------------- */

static int clock_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    if (len != sizeof(ev_clock_t *))
        return HERD_EINVAL;
    memcpy(state, arg, sizeof(ev_clock_t *));
    return 0;
}

static int clock_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    ev_clock_t *ck = state;
    if (ck->ev && msg->kind == HERD_MSG_INFO)
        watcher_expired(ck->ev, msg->ref); /* a timer's: its id (0 for other infos) */
    return 0;
}

/* Its end (the socket stopped it, or the node stops): the timers of the
 * watchers went with it, so they are answered now. */
static void clock_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    (void)reason;
    ev_clock_t *ck = state;
    control_events_t *ev = ck->ev;
    free(ck);
    if (ev == NULL)
        return;
    ev->clock = NULL;
    ev->clock_pid = HERD_PID_NONE;
    ev->ready = ev->top;
    watchers_answer(ev, 1);
}

static const herd_behaviour_t clock_behaviour = {
    .name = "control_events_clock",
    .init = clock_init,
    .handle_info = clock_info,
    .terminate = clock_terminate,
};

static int clock_ensure(control_events_t *ev)
{
    if (ev->clock)
        return 0;
    ev_clock_t *ck = calloc(1, sizeof(*ck));
    if (ck == NULL)
        return HERD_ENOMEM;
    ck->ev = ev;
    herd_spawn_opts_t opts = {.behaviour = &clock_behaviour, .arg = &ck, .arg_len = sizeof(ck)};
    int rc = herd_spawn(ev->node, &opts, &ev->clock_pid);
    if (rc) {
        free(ck);
        return rc;
    }
    ev->clock = ck;
    return 0;
}

/* ---- the subscription, the command ---------------------------------------------------- */

void control_events_told(void *data, const herd_event_t *e)
{
    control_events_t *ev = data;
    if (ev->stopping || e->seq == 0)
        return;
    if (ev->first && e->seq <= ev->ready) { /* older than what was answered: too late */
        herd_log(HERD_LOG_DEBUG, "control", "event %llu came after %llu: not kept",
                 (unsigned long long)e->seq, (unsigned long long)ev->ready);
        return;
    }
    json_t *o = event_json(ev, e);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        herd_log(HERD_LOG_WARN, "control", "event %llu not kept: out of memory",
                 (unsigned long long)e->seq);
        return;
    }
    if (ev->first == 0) {
        ev->first = e->seq;
        ev->ready = e->seq - 1;
    }
    if (e->seq > ev->top)
        ev->top = e->seq;
    size_t at = ring_insert(ev, e->seq, text, strlen(text));
    uint64_t before = ev->ready;
    ring_advance(ev, at);
    if (ev->ready > before && ev->watchers)
        watchers_answer(ev, 0);
}

int control_events_start(void *data, control_events_t **out)
{
    control_events_t *ev = calloc(1, sizeof(*ev));
    if (ev == NULL)
        return HERD_ENOMEM;
    ev->data = data;
    ev->node = herdd_node(data);
    *out = ev; /* subscribed at the first `events` request (events_subscribe) */
    return 0;
}

void control_events_stop(control_events_t *ev)
{
    if (ev == NULL)
        return;
    if (ev->sub)
        herd_events_unsubscribe(ev->node, ev->sub);
    ev->ready = ev->top;
    ev->stopping = 1; /* the waiters, and their callbacks' new requests, get ESHUTDOWN */
    watchers_answer(ev, 1);
    if (ev->clock) {
        ev->clock->ev = NULL;
        herd_stop(ev->node, ev->clock_pid, HERD_REASON_SHUTDOWN);
    }
    while (ev->count)
        ring_drop_oldest(ev);
    free(ev);
}

/* since and incarnation: whole numbers >= 0 (absent: *out untouched). */
static int arg_u64(json_t *args, const char *key, uint64_t *out, int *given)
{
    json_t *v = json_object_get(args, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || (json_integer_value(v) < 0 && strcmp(key, "incarnation") != 0))
        return HERD_EINVAL;
    *out = (uint64_t)json_integer_value(v);
    if (given)
        *given = 1;
    return 0;
}

static int events_args(json_t *args, uint64_t *since, int *wait_ms, uint64_t *inc,
                       int *has_inc, char *msg, size_t cap)
{
    if (args && !json_is_object(args) && !json_is_null(args))
        return snprintf(msg, cap, "events takes an object of arguments"), HERD_EINVAL;
    if (arg_u64(args, "since", since, NULL))
        return snprintf(msg, cap, "since must be a whole number >= 0: the last seq you "
                        "have (0: from now)"), HERD_EINVAL;
    if (arg_u64(args, "incarnation", inc, has_inc))
        return snprintf(msg, cap, "incarnation must be a whole number: the node's, as "
                        "the last answer gave it"), HERD_EINVAL;
    json_t *w = json_object_get(args, "wait_ms");
    if (w && (!json_is_integer(w) || json_integer_value(w) < 1 ||
              json_integer_value(w) > CONTROL_EVENTS_WAIT_MAX_MS))
        return snprintf(msg, cap, "wait_ms must be a whole number 1..%d",
                        CONTROL_EVENTS_WAIT_MAX_MS), HERD_EINVAL;
    *wait_ms = w ? (int)json_integer_value(w) : CONTROL_EVENTS_WAIT_MS;
    return 0;
}

/* No event after `since` yet: wait for one, or wait_ms. */
static int events_wait(control_events_t *ev, uint64_t since, int wait_ms, char *msg, size_t cap)
{
    if (ev->watcher_count >= CONTROL_EVENTS_WATCHERS_MAX)
        return snprintf(msg, cap, "%u requests wait for this node's events already",
                        CONTROL_EVENTS_WATCHERS_MAX), HERD_EBUSY;
    int rc = clock_ensure(ev);
    if (rc)
        return snprintf(msg, cap, "cannot time the wait: %s", herd_strerror(rc)), rc;
    watcher_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HERD_ENOMEM;
    w->since = since;
    w->token = control_defer(herdd_control(ev->data));
    rc = herd_send_after(ev->node, ev->clock_pid, (uint64_t)wait_ms, NULL, 0, &w->timer);
    if (rc) {
        free(w);
        return snprintf(msg, cap, "cannot time the wait: %s", herd_strerror(rc)), rc;
    }
    w->next = ev->watchers;
    ev->watchers = w;
    ev->watcher_count++;
    return CONTROL_DEFERRED;
}

/* The socket subscribes to the node's events when it is first asked for
 * them, not before: a node nobody watches renders no event (and its
 * registry notes no name change for events). */
static int events_subscribe(control_events_t *ev, char *msg, size_t cap)
{
    if (ev->sub)
        return 0;
    int rc = herd_events_subscribe(ev->node, HERD_EV_ALL, control_events_told, ev, &ev->sub);
    if (rc)
        snprintf(msg, cap, "cannot watch the node's events: %s", herd_strerror(rc));
    return rc;
}

int herdd_cmd_events(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    control_events_t *ev = herdd_events(data);
    uint64_t since = 0, inc = 0;
    int wait_ms, has_inc = 0;
    int rc = events_args(args, &since, &wait_ms, &inc, &has_inc, msg, cap);
    if (rc)
        return rc;
    if (ev == NULL || ev->stopping)
        return snprintf(msg, cap, "the control socket is stopping"), HERD_ESHUTDOWN;
    if ((rc = events_subscribe(ev, msg, cap)) != 0)
        return rc;
    ev->ready = ev->top; /* not inside an emit: gaps are final */
    if (has_inc && inc != herd_node_incarnation(ev->node)) {
        since = 0; /* another start's seq: from the oldest held of this one */
    } else if ((since == 0 && !has_inc) || since > ev->top) {
        since = 0; /* from now */
        if (ev->top > 0) {
            *result = events_answer(ev, ev->top);
            return 0;
        }
    }
    if (ev->top > since) {
        *result = events_answer(ev, since);
        return 0;
    }
    return events_wait(ev, since, wait_ms, msg, cap);
}
