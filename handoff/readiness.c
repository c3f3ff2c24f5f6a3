/*
 * readiness.c - when a member takes children by handoff, and when a node
 * that joined starts the children asked for before it started: on an
 * explicit announcement, with the fixed waits (target_grace_ms,
 * join_grace_ms) only as bounded fallbacks for a member that never
 * announces (an older version, or one whose syncs never end).
 *
 * A node's synced set is the member starts (id, incarnation) whose answer
 * to a registry pull of its own came whole (herd_registry_synced_with):
 * this replica holds what each held then, and each knew this node as a
 * member (it sent to it). A node announces its synced set (HO_READY,
 * handoff.c's head comment) to every live member whenever the set gains a
 * start, and when it becomes ready; a member new to it gets the
 * announcement of the moment at once. It is ready (its join grace ends)
 * once it is not alone and
 *   - every member up or draining here is in its synced set and has
 *     announced its own (so it learnt which members that one knows), and
 *   - every member start named in those announcements is known here, at
 *     that start or a newer one (else a member this node has not heard of
 *     yet may run children this node would start again: its entries are
 *     hidden here and its names look like this node's on a ring without it).
 * A member announced ready becomes a handoff target here once its synced
 * set covers every member up or draining here (each at its start or a
 * newer one), and names no start that is not live here: the new copies it runs can answer every caller those members
 * send, and every member resolves the name to a node it knows, which is
 * what target_grace_ms stood in for; and once this node's replica is
 * current (a pull of its own from another live member came whole since
 * that one was last up here): a copy here that lost a conflict while a
 * partition healed is judged, not offered. An announcement from a start
 * that is not a live member here is dropped (counted); a repeat changes
 * nothing. The fallbacks: a member up here target_grace_ms without such an
 * announcement becomes a target; a node not ready join_grace_ms after it
 * first met another member ends its join grace (while its registry still
 * syncs, up to JOIN_BUSY_FACTOR times that). REPLICATION.md "Readiness".
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "herd_ring.h"
#include "log.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "wire.h"

/* ---- the rules (pure) ------------------------------------------------------------------ */

static int live_state(herd_member_state_t s)
{
    return s == HERD_MEMBER_UP || s == HERD_MEMBER_SUSPECT || s == HERD_MEMBER_DRAINING;
}

/* up or draining: what this node counts on reaching (a suspect member may be
 * cut off: it is neither waited for nor required) */
static int counted_state(herd_member_state_t s)
{
    return s == HERD_MEMBER_UP || s == HERD_MEMBER_DRAINING;
}

static const ready_view_t *view_find(const ready_view_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

int ready_self_ok(const ready_view_t *members, size_t n, uint64_t self,
                  const ready_member_t *named, size_t named_n)
{
    size_t others = 0;
    for (size_t i = 0; i < n; i++) {
        if (members[i].id == self || !counted_state(members[i].state))
            continue;
        others++;
        if (!members[i].synced || !members[i].announced)
            return 0;
    }
    if (others == 0)
        return 0; /* alone: nothing to be ready for (and nothing is held) */
    for (size_t i = 0; i < named_n; i++) {
        if (named[i].id == self)
            continue;
        const ready_view_t *m = view_find(members, n, named[i].id);
        if (m == NULL || m->inc < named[i].inc)
            return 0; /* a member (or a start of it) this node has not heard of */
    }
    return 1;
}

int ready_known_live(const ready_member_t *list, size_t n, const ready_view_t *members,
                     size_t members_n, uint64_t self)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].id == self)
            continue;
        const ready_view_t *m = view_find(members, members_n, list[i].id);
        if (m == NULL || !live_state(m->state) || m->inc < list[i].inc)
            return 0;
    }
    return 1;
}

int ready_covers(const ready_member_t *list, size_t n, const ready_member_t *need,
                 size_t need_n)
{
    for (size_t i = 0; i < need_n; i++) {
        size_t j = 0;
        while (j < n && !(list[j].id == need[i].id && list[j].inc >= need[i].inc))
            j++;
        if (j == n)
            return 0;
    }
    return 1;
}

/* ---- what this node sees ------------------------------------------------------------- */

typedef struct views {
    dsup_t *d;
    ready_view_t *v;
    size_t n, cap;
    int failed;
} views_t;

static int view_add(void *data, const herd_member_info_t *m)
{
    views_t *vs = data;
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 8;
        ready_view_t *v = realloc(vs->v, cap * sizeof(*v));
        if (v == NULL) {
            vs->failed = 1;
            return 1;
        }
        vs->v = v;
        vs->cap = cap;
    }
    dsup_t *d = vs->d;
    uint64_t id = herd_node_id_of(m->name);
    const peer_ready_t *p = u64map_get(&d->peers, id);
    vs->v[vs->n++] = (ready_view_t){
        .id = id,
        .inc = m->incarnation,
        .state = m->state,
        .synced = live_state(m->state) &&
                  herd_registry_synced_with(d->node, id, m->incarnation),
        .announced = p && p->inc == m->incarnation,
    };
    return 0;
}

/* Every member as this node sees it now (this node included); HERD_ENOMEM
 * (counted by the caller's retry at the next tick). */
static int views_take(dsup_t *d, views_t *vs)
{
    memset(vs, 0, sizeof(*vs));
    vs->d = d;
    herd_cluster_foreach_member(d->node, view_add, vs);
    if (vs->failed) {
        free(vs->v);
        vs->v = NULL;
        return HERD_ENOMEM;
    }
    return 0;
}

/* This node's live members but `except` (up or draining), as starts. */
static size_t counted_members(const views_t *vs, uint64_t self, uint64_t except,
                              ready_member_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < vs->n; i++)
        if (vs->v[i].id != self && vs->v[i].id != except && counted_state(vs->v[i].state))
            out[n++] = (ready_member_t){vs->v[i].id, vs->v[i].inc};
    return n;
}

/* ---- members' announcements ------------------------------------------------------------ */

static peer_ready_t *peer_get(dsup_t *d, uint64_t id, uint64_t now)
{
    peer_ready_t *p = u64map_get(&d->peers, id);
    if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
        if (u64map_put(&d->peers, id, p) != 0) {
            free(p);
            return NULL;
        }
        p->since = now;
    }
    return p;
}

/* Forget what an earlier start of the member announced, and its verdict. */
static void peer_clear(peer_ready_t *p)
{
    free(p->synced);
    p->synced = NULL;
    p->synced_n = 0;
    p->inc = 0;
    p->ready = 0;
    p->target = p->fell_back = 0;
}

/* Whether announced member p (id) covers this node's live members: then it
 * takes children here from now on. */
static void peer_check(dsup_t *d, uint64_t id, peer_ready_t *p, const views_t *vs)
{
    if (p->target || !p->ready)
        return;
    ready_member_t *need = vs->n ? malloc(vs->n * sizeof(*need)) : NULL;
    if (vs->n && need == NULL)
        return; /* checked again at the next announcement or member change */
    size_t need_n = counted_members(vs, d->self_id, id, need);
    /* and this node's view is not behind the member's: right after a
     * partition heals, a member it names may still be down here, its
     * entries hidden, so a copy here that lost to one of them would be
     * offered before it is judged */
    if (ready_covers(p->synced, p->synced_n, need, need_n) &&
        ready_known_live(p->synced, p->synced_n, vs->v, vs->n, d->self_id)) {
        p->target = 1;
        dsup_kick(d, 1); /* its moves start at once */
    }
    free(need);
}

static void peers_check(dsup_t *d)
{
    views_t vs;
    if (views_take(d, &vs) != 0)
        return;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->peers, &cursor)) != NULL;)
        peer_check(d, s->key, s->value, &vs);
    free(vs.v);
}

static int same_list(const peer_ready_t *p, const ready_member_t *l, size_t n)
{
    return p->synced_n == n && (n == 0 || memcmp(p->synced, l, n * sizeof(*l)) == 0);
}

void readiness_on_ready(dsup_t *d, uint64_t from, uint64_t inc, wire_reader_t *r,
                        uint64_t id, const char *name)
{
    uint64_t now = herd_node_now(d->node);
    uint8_t flags = wire_get_u8(r);
    uint32_t n = wire_get_u32(r);
    ready_member_t *list = NULL;
    int bad = id != 0 || name[0] || flags > 1 || n > READY_MAX_MEMBERS;
    if (!bad && n && (list = malloc(n * sizeof(*list))) == NULL) {
        herd_log_limited(&d->log_bad, now, HERD_LOG_WARN, "handoff", "readiness announcement "
                         "from %016llx dropped: out of memory (its next one, or the "
                         "fallback, makes it a target)", (unsigned long long)from);
        return;
    }
    for (uint32_t i = 0; !bad && i < n; i++) {
        list[i].id = wire_get_u64(r);
        list[i].inc = wire_get_u64(r);
    }
    if (bad || wire_reader_done(r)) {
        free(list);
        herd_log_limited(&d->log_bad, now, HERD_LOG_WARN, "handoff",
                         "malformed readiness announcement from %016llx dropped",
                         (unsigned long long)from);
        d->stats.malformed++;
        return;
    }
    herd_member_info_t m;
    if (from == d->self_id || herd_cluster_member(d->node, from, &m) != 0 ||
        m.incarnation != inc || !live_state(m.state)) {
        free(list);
        herd_log_limited(&d->log_bad, now, HERD_LOG_INFO, "handoff",
                         "readiness announcement from %016llx, not a live member here, "
                         "dropped", (unsigned long long)from);
        d->stats.ready_unknown++;
        return;
    }
    peer_ready_t *p = peer_get(d, from, now);
    if (p == NULL) {
        free(list);
        d->stats.ready_unknown++;
        return;
    }
    if (p->inc == inc && p->ready >= (int)flags && same_list(p, list, n)) {
        free(list);
        d->stats.ready_duplicate++;
        return;
    }
    if (p->member_inc != inc) { /* an earlier start's verdict says nothing of this one */
        peer_clear(p);
        p->member_inc = inc;
        p->since = now;
    }
    free(p->synced);
    p->synced = list;
    p->synced_n = n;
    p->inc = inc;
    p->ready = p->ready || (flags & 1);
    d->stats.ready_in++;
    peers_check(d);
    dsup_kick(d, 0); /* this node's own readiness may follow */
}

void readiness_on_member(dsup_t *d, uint64_t id, uint64_t inc, herd_member_state_t old_state,
                         herd_member_state_t new_state)
{
    if (id == d->self_id)
        return;
    if (live_state(new_state)) {
        uint64_t now = herd_node_now(d->node);
        peer_ready_t *p = peer_get(d, id, now);
        if (p && p->member_inc != inc) { /* a start new here: its announcement comes */
            peer_clear(p);
            p->member_inc = inc;
            p->since = now;
        } else if (p && !live_state(old_state)) {
            p->since = now; /* back: the fallback counts from here */
        }
        if (p && new_state == HERD_MEMBER_UP && old_state != HERD_MEMBER_UP)
            p->pulls_at_up = herd_registry_pulls_from(d->node, id); /* replica_current */
    } else {
        peer_ready_t *p = u64map_del(&d->peers, id);
        if (p)
            peer_clear(p);
        free(p);
    }
    peers_check(d); /* a member gone may complete another's cover */
}

typedef struct current_ctx {
    dsup_t *d;
    uint64_t target;
    int others, synced, target_synced;
} current_ctx_t;

static int current_member(void *data, const herd_member_info_t *m)
{
    current_ctx_t *c = data;
    uint64_t id = herd_node_id_of(m->name);
    if (id == c->d->self_id || !counted_state(m->state))
        return 0;
    const peer_ready_t *p = u64map_get(&c->d->peers, id);
    int synced = p && herd_registry_synced_with(c->d->node, id, m->incarnation) &&
                 herd_registry_pulls_from(c->d->node, id) > p->pulls_at_up;
    if (id == c->target) {
        c->target_synced = synced;
        return 0;
    }
    c->others++;
    c->synced += synced;
    return c->synced > 0; /* one is enough */
}

/* Whether this node's replica is current enough to offer children to
 * `target`: a pull of its own from another live member came whole since
 * that member last came up here, from suspect too (from the target when
 * there is no other). Right after a partition heals, no pull has: a copy
 * here that lost a conflict there is then judged once the winner's entry
 * arrives, not offered first (else the fallback applies). */
static int replica_current(dsup_t *d, uint64_t target)
{
    current_ctx_t c = {d, target, 0, 0, 0};
    herd_cluster_foreach_member(d->node, current_member, &c);
    return c.synced > 0 || (c.others == 0 && c.target_synced);
}

/* Whether member p (id) takes children from this node now: its
 * announcement covers this node's members and this node's replica is
 * current, or its fallback passed. */
static int peer_takes(dsup_t *d, uint64_t id, const peer_ready_t *p)
{
    return p->target && (p->fell_back || replica_current(d, id));
}

int readiness_target(dsup_t *d, const char *target, uint64_t now)
{
    uint64_t id = herd_node_id_of(target);
    peer_ready_t *p = u64map_get(&d->peers, id);
    if (p == NULL || peer_takes(d, id, p))
        return 1;
    if (now - p->since < d->cfg.target_grace_ms) {
        p->waited = 1; /* the tick reconciles when it takes or its fallback is due */
        d->target_waiting = 1;
        return 0;
    }
    p->target = p->fell_back = 1;
    d->stats.target_fallbacks++;
    herd_log(HERD_LOG_INFO, "handoff", "member %s announced no readiness that covers this "
             "node's members within %u ms: it takes children all the same", target,
             d->cfg.target_grace_ms);
    return 1;
}

/* ---- this node's announcement -------------------------------------------------------- */

static int send_ready(dsup_t *d, uint64_t to, const ready_member_t *l, size_t n)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, HO_READY);
    wire_put_u64(&w, 0);
    wire_put_str(&w, "");
    wire_put_u8(&w, (uint8_t)(d->self_ready != 0));
    wire_put_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        wire_put_u64(&w, l[i].id);
        wire_put_u64(&w, l[i].inc);
    }
    int rc = w.err ? HERD_ENOMEM : herd_cluster_send_app(d->node, to, HANDOFF_APP, w.buf, w.len);
    wire_writer_fini(&w);
    if (rc == 0)
        d->stats.ready_out++;
    else
        d->stats.send_failed++;
    return rc;
}

static int announced(const dsup_t *d, ready_member_t m)
{
    for (size_t i = 0; i < d->announced_n; i++)
        if (d->announced[i].id == m.id && d->announced[i].inc == m.inc)
            return 1;
    return 0;
}

/* This node's synced set now (its ids and starts), into d->announced when
 * it changed or this node became ready: a new announcement
 * (d->announce_gen). HERD_ENOMEM: tried again at the next tick. */
static int announcement_update(dsup_t *d, const views_t *vs)
{
    ready_member_t *set = vs->n ? malloc(vs->n * sizeof(*set)) : NULL;
    if (vs->n && set == NULL)
        return HERD_ENOMEM;
    size_t n = 0;
    int grew = d->announce_gen == 0 || d->announced_ready != d->self_ready;
    size_t synced_n = 0;
    for (size_t i = 0; i < vs->n; i++)
        synced_n += vs->v[i].id != d->self_id && vs->v[i].synced;
    grew |= synced_n != d->announced_n; /* a start gone too: members check again */
    for (size_t i = 0; i < vs->n; i++) {
        if (vs->v[i].id == d->self_id || !vs->v[i].synced)
            continue;
        set[n] = (ready_member_t){vs->v[i].id, vs->v[i].inc};
        grew |= !announced(d, set[n]);
        n++;
    }
    if (!grew) {
        free(set);
        return 0;
    }
    free(d->announced);
    d->announced = set;
    d->announced_n = n;
    d->announced_ready = d->self_ready;
    d->announce_gen++;
    return 0;
}

/* Every live member gets this node's latest announcement once: each new
 * one (the synced set gained a start, or this node became ready), and a
 * member new here the one of the moment, so it learns at once which
 * members this node knows. A refused send goes again at the next tick. */
static void announce(dsup_t *d, const views_t *vs)
{
    if (announcement_update(d, vs) != 0)
        return;
    if (d->announced_n > READY_MAX_MEMBERS) {
        herd_log_limited(&d->log_bad, herd_node_now(d->node), HERD_LOG_ERROR, "handoff",
                         "%zu members synced: over the %u an announcement holds, none sent "
                         "(the members' fallbacks apply)", d->announced_n, READY_MAX_MEMBERS);
        return;
    }
    for (size_t i = 0; i < vs->n; i++) {
        if (vs->v[i].id == d->self_id || !live_state(vs->v[i].state))
            continue;
        peer_ready_t *p = peer_get(d, vs->v[i].id, herd_node_now(d->node));
        if (p && p->member_inc == 0) /* up before this supervisor started */
            p->member_inc = vs->v[i].inc;
        if (p == NULL || p->member_inc != vs->v[i].inc ||
            (p->told_gen == d->announce_gen && p->told_inc == p->member_inc))
            continue; /* (a start not yet in its entry: once its event came) */
        if (send_ready(d, vs->v[i].id, d->announced, d->announced_n) == 0) {
            p->told_gen = d->announce_gen;
            p->told_inc = p->member_inc;
        }
    }
}

/* The member starts named by the announcements of live members. */
static ready_member_t *named_take(dsup_t *d, size_t *n)
{
    size_t total = 0, cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->peers, &cursor)) != NULL;)
        total += ((peer_ready_t *)s->value)->synced_n;
    ready_member_t *all = total ? malloc(total * sizeof(*all)) : NULL;
    *n = 0;
    if (total && all == NULL)
        return NULL;
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->peers, &cursor)) != NULL;) {
        const peer_ready_t *p = s->value;
        if (p->synced_n == 0)
            continue;
        memcpy(all + *n, p->synced, p->synced_n * sizeof(*all));
        *n += p->synced_n;
    }
    return all;
}

/* Whether this node's registry is pulling or answering a pull now: a node
 * slow to sync (a loaded machine, a large registry) is not a stuck one,
 * and its join grace's fallback waits for it, up to JOIN_BUSY_FACTOR
 * times join_grace_ms (starting children it cannot see yet would run them
 * twice until the conflict rule stops one). */
static int registry_busy(dsup_t *d)
{
    herd_registry_stats_t st;
    return herd_registry_stats(d->node, &st) == 0 && st.syncs_under_way > 0;
}

static void self_check(dsup_t *d, const views_t *vs, uint64_t now)
{
    size_t named_n = 0;
    ready_member_t *named = named_take(d, &named_n);
    if (named_n && named == NULL)
        return;
    int ok = ready_self_ok(vs->v, vs->n, d->self_id, named, named_n);
    free(named);
    int alone = 1;
    for (size_t i = 0; i < vs->n; i++)
        alone &= vs->v[i].id == d->self_id || !counted_state(vs->v[i].state);
    if (!alone && d->first_peer_at == 0)
        d->first_peer_at = now;
    if (ok) {
        d->stats.ready_ms = now - d->started_at;
        herd_log(HERD_LOG_DEBUG, "handoff", "ready %llu ms after the start",
                 (unsigned long long)d->stats.ready_ms);
    } else if (d->first_peer_at && now - d->first_peer_at >= d->cfg.join_grace_ms &&
               (!registry_busy(d) ||
                now - d->first_peer_at >= (uint64_t)JOIN_BUSY_FACTOR * d->cfg.join_grace_ms)) {
        d->stats.join_fallbacks++;
        herd_log(HERD_LOG_INFO, "handoff", "not synced with every member %llu ms after "
                 "meeting the first: starting the children asked for before this node "
                 "started all the same", (unsigned long long)(now - d->first_peer_at));
    } else {
        return;
    }
    d->self_ready = 1;
    if (d->grace_pending) {
        d->grace_pending = 0; /* what the grace held back starts now */
        d->full_due = 1;
    }
}

/* Whether a member that moves waited for now takes children, or its
 * fallback is due: then every waiting mark is cleared, and the full pass
 * that follows marks again the members it still waits for. Only those
 * members count: one that took children all along changes nothing, and
 * counting it would run a full pass at every tick while another member
 * syncs (a pass over every child, the loop held meanwhile). */
static int waited_change(dsup_t *d, uint64_t now)
{
    int change = 0;
    size_t cursor = 0;
    for (u64map_slot_t *s; !change && (s = u64map_next(&d->peers, &cursor)) != NULL;) {
        const peer_ready_t *p = s->value;
        change = p->waited &&
                 (peer_takes(d, s->key, p) || now - p->since >= d->cfg.target_grace_ms);
    }
    if (!change)
        return 0;
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->peers, &cursor)) != NULL;)
        ((peer_ready_t *)s->value)->waited = 0;
    return 1;
}

void readiness_tick(dsup_t *d, uint64_t now)
{
    if (herd_cluster_ring(d->node) == NULL)
        return;
    views_t vs;
    if (views_take(d, &vs) != 0)
        return;
    if (!d->self_ready)
        self_check(d, &vs, now);
    announce(d, &vs);
    free(vs.v);
    if (d->target_waiting && waited_change(d, now)) {
        d->target_waiting = 0; /* the full pass offers (or takes the fallback) */
        d->full_due = 1;
    }
}

int readiness_may_start(dsup_t *d)
{
    const herd_ring_t *ring = herd_cluster_ring(d->node);
    return ring == NULL || herd_ring_member_count(ring) < 2 || d->self_ready;
}

void readiness_free(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->peers, &cursor)) != NULL;) {
        peer_clear(s->value);
        free(s->value);
    }
    u64map_fini(&d->peers);
    free(d->announced);
    d->announced = NULL;
}
