/*
 * events.c - a node's event bus (herd_events.h): subscribers by callback or
 * by process, herd's own layers in a tier told first, events encoded as
 * messages for processes.
 *
 * Subscribers live in one growable array, herd's own before the programs'.
 * An event is told to the array as it stands when the event starts; a
 * subscriber removed meanwhile (by any callback) is marked, not told again,
 * and the array is compacted once no event is being told, so callbacks may
 * subscribe and unsubscribe freely.
 */
#include <stdlib.h>
#include <string.h>

#include "herd_events.h"
#include "log.h"
#include "node.h"
#include "runtime_layers.h"

typedef struct ev_sub {
    uint64_t id;
    uint32_t mask;
    int removed;      /* unsubscribed while events were being told */
    herd_event_fn fn; /* NULL: a process subscriber */
    void *data;
    herd_pid_t pid;
} ev_sub_t;

typedef struct ev_tier {
    ev_sub_t *subs;
    size_t n, cap;
} ev_tier_t;

/* tiers[EV_HERD]: herd's own layers, told first and not removable by a
 * program's call; tiers[EV_PROGRAMS]: the programs' */
enum { EV_HERD, EV_PROGRAMS, EV_TIERS };

struct node_events {
    ev_tier_t tiers[EV_TIERS];
    uint32_t wanted; /* the kinds some subscriber wants (a removed one's may linger) */
    uint64_t next_id;
    uint64_t seq;
    int telling;  /* events being told now (nested: a callback's own emits) */
    int removals; /* marked removed, to compact */
    int exit_hooked;
    herd_events_stats_t stats;
};

#define EV_MAGIC "HEV1"

static const char *const kind_names[HERD_EV_KIND_END] = {
    [HERD_EV_NAME_REGISTERED] = "name_registered",
    [HERD_EV_NAME_UNREGISTERED] = "name_unregistered",
    [HERD_EV_NAME_CONFLICT] = "name_conflict",
    [HERD_EV_GROUP_JOINED] = "group_joined",
    [HERD_EV_GROUP_LEFT] = "group_left",
    [HERD_EV_CHILD_STARTED] = "child_started",
    [HERD_EV_CHILD_MOVED] = "child_moved",
    [HERD_EV_CHILD_RESTARTED] = "child_restarted",
    [HERD_EV_CHILD_GAVE_UP] = "child_gave_up",
    [HERD_EV_CHILD_TERMINATED] = "child_terminated",
    [HERD_EV_MEMBER_UP] = "member_up",
    [HERD_EV_MEMBER_SUSPECT] = "member_suspect",
    [HERD_EV_MEMBER_DRAINING] = "member_draining",
    [HERD_EV_MEMBER_DOWN] = "member_down",
    [HERD_EV_MEMBER_LEFT] = "member_left",
};

const char *herd_event_kind_name(herd_event_kind_t kind)
{
    if ((int)kind <= 0 || kind >= HERD_EV_KIND_END || kind_names[kind] == NULL)
        return "unknown";
    return kind_names[kind];
}

/* ---- the bus ---------------------------------------------------------------------- */

static struct node_events *events_of(herd_node_t *n, int create)
{
    if (n->events == NULL && create) {
        n->events = calloc(1, sizeof(*n->events));
        if (n->events)
            n->events->next_id = 1;
    }
    return n->events;
}

void node_events_free(herd_node_t *n)
{
    if (n->events == NULL)
        return;
    for (int t = 0; t < EV_TIERS; t++)
        free(n->events->tiers[t].subs);
    free(n->events);
    n->events = NULL;
}

static int mask_valid(uint32_t mask)
{
    return mask != 0 && (mask & ~(uint32_t)HERD_EV_ALL) == 0;
}

/* Drop the marked subscribers (never while an event is being told) and
 * recompute the kinds wanted. */
static void events_compact(struct node_events *e)
{
    if (e->telling || e->removals == 0)
        return;
    e->wanted = 0;
    for (int t = 0; t < EV_TIERS; t++) {
        ev_tier_t *tier = &e->tiers[t];
        size_t w = 0;
        for (size_t i = 0; i < tier->n; i++) {
            if (tier->subs[i].removed)
                continue;
            e->wanted |= tier->subs[i].mask;
            tier->subs[w++] = tier->subs[i];
        }
        tier->n = w;
    }
    e->removals = 0;
}

/* Append to its tier (told after those before it); returns its id, or 0
 * on a failed allocation. Appending keeps the indexes of an event being
 * told valid. */
static uint64_t events_add(struct node_events *e, int t, const ev_sub_t *sub)
{
    ev_tier_t *tier = &e->tiers[t];
    if (tier->n == tier->cap) {
        size_t cap = tier->cap ? tier->cap * 2 : 8;
        ev_sub_t *subs = realloc(tier->subs, cap * sizeof(*subs));
        if (subs == NULL)
            return 0;
        tier->subs = subs;
        tier->cap = cap;
    }
    ev_sub_t *at = &tier->subs[tier->n++];
    *at = *sub;
    at->id = e->next_id++;
    e->wanted |= sub->mask;
    if (t == EV_PROGRAMS)
        e->stats.subscribers++;
    return at->id;
}

static void events_mark_removed(struct node_events *e, int t, size_t i)
{
    e->tiers[t].subs[i].removed = 1;
    e->removals++;
    if (t == EV_PROGRAMS)
        e->stats.subscribers--;
}

/* A process subscriber's process exited: its subscriptions end. */
static void events_on_exit(void *data, herd_pid_t pid, int reason)
{
    (void)reason;
    herd_node_t *n = data;
    struct node_events *e = n->events;
    if (e == NULL)
        return;
    ev_tier_t *tier = &e->tiers[EV_PROGRAMS];
    for (size_t i = 0; i < tier->n; i++) {
        const ev_sub_t *s = &tier->subs[i];
        if (s->fn == NULL && !s->removed && s->pid.serial == pid.serial &&
            s->pid.node == pid.node && s->pid.incarnation == pid.incarnation)
            events_mark_removed(e, EV_PROGRAMS, i);
    }
    events_compact(e);
}

int herd_events_subscribe(herd_node_t *n, uint32_t mask, herd_event_fn fn, void *data,
                          uint64_t *id)
{
    if (n == NULL || fn == NULL || !mask_valid(mask))
        return HERD_EINVAL;
    struct node_events *e = events_of(n, 1);
    if (e == NULL)
        return HERD_ENOMEM;
    uint64_t got = events_add(e, EV_PROGRAMS, &(ev_sub_t){.mask = mask, .fn = fn, .data = data});
    if (got == 0)
        return HERD_ENOMEM;
    if (id)
        *id = got;
    return 0;
}

int herd_events_subscribe_internal(herd_node_t *n, uint32_t mask, herd_event_fn fn, void *data)
{
    if (n == NULL || fn == NULL || !mask_valid(mask))
        return HERD_EINVAL;
    struct node_events *e = events_of(n, 1);
    if (e == NULL)
        return HERD_ENOMEM;
    return events_add(e, EV_HERD, &(ev_sub_t){.mask = mask, .fn = fn, .data = data}) ? 0
                                                                                   : HERD_ENOMEM;
}

void herd_events_unsubscribe_internal(herd_node_t *n, herd_event_fn fn, void *data)
{
    struct node_events *e = n ? n->events : NULL;
    for (size_t i = 0; e && i < e->tiers[EV_HERD].n; i++) {
        const ev_sub_t *s = &e->tiers[EV_HERD].subs[i];
        if (!s->removed && s->fn == fn && s->data == data) {
            events_mark_removed(e, EV_HERD, i);
            events_compact(e);
            return;
        }
    }
}

int herd_events_subscribe_proc(herd_node_t *n, uint32_t mask, herd_pid_t pid, uint64_t *id)
{
    if (n == NULL || !mask_valid(mask) || !node_is_local(n, pid))
        return HERD_EINVAL;
    if (herd_is_alive(n, pid) != 1)
        return HERD_ENOPROC;
    struct node_events *e = events_of(n, 1);
    if (e == NULL)
        return HERD_ENOMEM;
    if (!e->exit_hooked) {
        int rc = herd_node_on_exit(n, events_on_exit, n);
        if (rc != 0)
            return rc;
        e->exit_hooked = 1;
    }
    uint64_t got = events_add(e, EV_PROGRAMS, &(ev_sub_t){.mask = mask, .pid = pid});
    if (got == 0)
        return HERD_ENOMEM;
    if (id)
        *id = got;
    return 0;
}

int herd_events_unsubscribe(herd_node_t *n, uint64_t id)
{
    struct node_events *e = n ? n->events : NULL;
    for (size_t i = 0; e && i < e->tiers[EV_PROGRAMS].n; i++)
        if (e->tiers[EV_PROGRAMS].subs[i].id == id && !e->tiers[EV_PROGRAMS].subs[i].removed) {
            events_mark_removed(e, EV_PROGRAMS, i);
            events_compact(e);
            return 0;
        }
    return HERD_ENOENT;
}

int herd_events_wanted(const herd_node_t *n, herd_event_kind_t kind)
{
    const struct node_events *e = n->events;
    return e != NULL && (e->wanted & HERD_EV_BIT(kind)) != 0;
}

/* ---- messages ---------------------------------------------------------------------- */

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t *put_pid(uint8_t *p, herd_pid_t pid)
{
    return put_u64(put_u64(put_u64(p, pid.node), pid.incarnation), pid.serial);
}

static herd_pid_t get_pid(const uint8_t *p)
{
    return (herd_pid_t){get_u64(p), get_u64(p + 8), get_u64(p + 16)};
}

/* magic 4, kind 1, state 3 (old, new, gone), reason 8, seq 8, time 8, pid 24,
 * other 24, node 8, incarnation 8, name length 1, the name */
#define EV_FIXED (4u + 1u + 3u + 8u + 8u + 8u + 24u + 24u + 8u + 8u + 1u)
_Static_assert(EV_FIXED + HERD_EVENT_NAME_MAX <= HERD_EVENT_MSG_MAX, "event message bound");

static size_t event_encode(const herd_event_t *ev, uint8_t *out)
{
    const char *name = ev->name ? ev->name : "";
    size_t nlen = strnlen(name, HERD_EVENT_NAME_MAX + 1);
    if (nlen > HERD_EVENT_NAME_MAX)
        nlen = HERD_EVENT_NAME_MAX; /* herd_event_emit refuses longer names */
    uint8_t *p = out;
    memcpy(p, EV_MAGIC, 4);
    p += 4;
    *p++ = (uint8_t)ev->kind;
    *p++ = (uint8_t)ev->old_state;
    *p++ = (uint8_t)ev->new_state;
    *p++ = (uint8_t)(ev->gone != 0);
    p = put_u64(p, (uint64_t)(int64_t)ev->reason);
    p = put_u64(p, ev->seq);
    p = put_u64(p, ev->time_ms);
    p = put_pid(p, ev->pid);
    p = put_pid(p, ev->other);
    p = put_u64(p, ev->node);
    p = put_u64(p, ev->incarnation);
    *p++ = (uint8_t)nlen;
    memcpy(p, name, nlen);
    return (size_t)(p - out) + nlen;
}

int herd_event_decode(const void *data, size_t len, herd_event_t *out, char *name, size_t cap)
{
    const uint8_t *p = data;
    if (p == NULL || out == NULL || name == NULL || len < EV_FIXED ||
        memcmp(p, EV_MAGIC, 4) != 0)
        return HERD_EINVAL;
    size_t nlen = p[EV_FIXED - 1];
    if (len != EV_FIXED + nlen || cap <= nlen || p[4] == 0 || p[4] >= HERD_EV_KIND_END ||
        p[5] > HERD_MEMBER_ABSENT || p[6] > HERD_MEMBER_ABSENT || p[7] > 1)
        return HERD_EINVAL;
    memcpy(name, p + EV_FIXED, nlen);
    name[nlen] = '\0';
    *out = (herd_event_t){
        .kind = (herd_event_kind_t)p[4],
        .old_state = (herd_member_state_t)p[5],
        .new_state = (herd_member_state_t)p[6],
        .gone = p[7],
        .reason = (int)(int64_t)get_u64(p + 8),
        .seq = get_u64(p + 16),
        .time_ms = get_u64(p + 24),
        .pid = get_pid(p + 32),
        .other = get_pid(p + 56),
        .node = get_u64(p + 80),
        .incarnation = get_u64(p + 88),
        .name = name,
    };
    return 0;
}

/* ---- telling ------------------------------------------------------------------------ */

static void tell_one(herd_node_t *n, struct node_events *e, int t, size_t i,
                     const herd_event_t *ev, const uint8_t *msg, size_t msglen)
{
    ev_sub_t sub = e->tiers[t].subs[i]; /* the array may move under the callback */
    if (sub.fn) {
        sub.fn(sub.data, ev);
        e->stats.delivered++;
        return;
    }
    int rc = herd_node_send(n, sub.pid, msg, msglen);
    if (rc == 0) {
        e->stats.delivered++;
        return;
    }
    e->stats.dropped++;
    if (rc == HERD_ENOPROC) /* exited before its exit hook ran */
        events_mark_removed(e, t, i);
}

void herd_event_emit(herd_node_t *n, const herd_event_t *in)
{
    struct node_events *e = n->events;
    if (e == NULL || in->kind <= 0 || in->kind >= HERD_EV_KIND_END ||
        !(e->wanted & HERD_EV_BIT(in->kind)))
        return;
    if (in->name && strnlen(in->name, HERD_EVENT_NAME_MAX + 1) > HERD_EVENT_NAME_MAX) {
        herd_log(HERD_LOG_WARN, "events", "%s with a name over %u bytes not told",
                 herd_event_kind_name(in->kind), HERD_EVENT_NAME_MAX);
        return;
    }
    herd_event_t ev = *in;
    ev.seq = ++e->seq;
    ev.time_ms = herd_node_now(n);
    if (ev.name == NULL)
        ev.name = "";
    e->stats.emitted++;
    uint8_t msg[HERD_EVENT_MSG_MAX];
    size_t msglen = 0;
    uint32_t bit = HERD_EV_BIT(ev.kind);
    e->telling++;
    for (int t = 0; t < EV_TIERS; t++) {
        /* subscribers added while telling wait for the next event */
        size_t count = e->tiers[t].n;
        for (size_t i = 0; i < count; i++) {
            const ev_sub_t *s = &e->tiers[t].subs[i];
            if (s->removed || !(s->mask & bit))
                continue;
            if (s->fn == NULL && msglen == 0)
                msglen = event_encode(&ev, msg);
            tell_one(n, e, t, i, &ev, msg, msglen);
        }
    }
    e->telling--;
    events_compact(e);
}

int herd_events_stats(herd_node_t *n, herd_events_stats_t *out)
{
    if (n == NULL || out == NULL)
        return HERD_EINVAL;
    *out = n->events ? n->events->stats : (herd_events_stats_t){0};
    return 0;
}
