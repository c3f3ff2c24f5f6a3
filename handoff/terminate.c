/*
 * terminate.c - ending a child for good, and knowing when that is settled
 * (herd_terminate_child in herd_dsup.h).
 *
 * A terminate removes the child's spec from the replicated map; whichever
 * node runs the child stops it. The removal is only as durable as the nodes
 * that hold it: made inside a partition and followed by a crash of the node
 * that made it, it would be undone once the other side's spec (which never
 * saw the removal) spreads again. So the caller is told 0 only once every
 * member that could bring the spec back holds the removal: each member that
 * is not left, down ones included (a down member may only be cut off).
 * "Holds" means its stream from this node acknowledged the sequence number
 * the removal's delta was queued with. A member that left or restarted since
 * takes no old spec back with it; one forgotten meanwhile may (a partition
 * longer than the forget time), so it keeps the answer uncertain. A member
 * that appears while the terminate waits (it joined, or restarted) may have
 * taken the spec from a node that had not heard of the removal yet: it is
 * sent the removal on its own and waited for too, so that 0 means every
 * member at the time of the answer holds it. Past the timeout the caller
 * gets HERD_EUNCERTAIN while the removal keeps spreading.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "registry_layers.h"

#define TERM_REFS_MAX 16 /* writes of one spec (concurrent starts) a terminate follows */

typedef struct term_peer {
    uint64_t id, incarnation, seq; /* seq: the removal's place in its stream */
    int settled;
} term_peer_t;

struct term_waiter {
    struct term_waiter *next;
    uint64_t deadline; /* node clock */
    herd_terminate_cb cb;
    void *data;
    char *name;
    herd_spec_ref_t refs[TERM_REFS_MAX]; /* the spec's writes the removal covers */
    size_t nrefs;
    size_t count, cap;
    term_peer_t *peers;
    int untracked; /* out of memory following it: the answer is uncertain */
};

static term_peer_t *peer_of(term_waiter_t *w, uint64_t id, uint64_t incarnation)
{
    for (size_t i = 0; i < w->count; i++)
        if (w->peers[i].id == id && w->peers[i].incarnation == incarnation)
            return &w->peers[i];
    return NULL;
}

static int peer_add(term_waiter_t *w, uint64_t id, uint64_t incarnation, uint64_t seq)
{
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        term_peer_t *p = realloc(w->peers, cap * sizeof(*p));
        if (p == NULL)
            return HERD_ENOMEM;
        w->peers = p;
        w->cap = cap;
    }
    w->peers[w->count++] = (term_peer_t){id, incarnation, seq, 0};
    return 0;
}

typedef struct collect_ctx {
    dsup_t *d;
    term_waiter_t *w;
    int joining; /* members not listed yet are sent the removal on their own */
} collect_ctx_t;

/* List member m with the place of the removal in its stream: the delta
 * queued last for those listed at the terminate; for a member that appeared
 * since (it joined or restarted, and may have the spec from a node that had
 * not heard of the removal yet), a delta of the removal alone, sent now. */
static int collect_peer(void *data, const herd_member_info_t *m)
{
    collect_ctx_t *c = data;
    herd_node_t *n = c->d->node;
    term_waiter_t *w = c->w;
    uint64_t id = herd_node_id_of(m->name);
    herd_stream_stats_t st;
    if (id == herd_node_id_of(herd_node_name(n)) || m->state == HERD_MEMBER_LEFT ||
        peer_of(w, id, m->incarnation))
        return 0;
    if (c->joining && herd_spec_send_removed(n, w->name, w->refs, w->nrefs, id) != 0)
        return 0; /* not sent: tried again at the next tick */
    if (herd_cluster_stream_stats(n, id, &st) != 0)
        st.queued_seq = UINT64_MAX; /* no stream to it: it cannot hold the removal */
    if (peer_add(w, id, m->incarnation, st.queued_seq) != 0)
        w->untracked = 1;
    return 0;
}

/* Whether `p` holds the removal, or no longer matters: it left, or it
 * restarted (its new start is listed on its own). A member forgotten while
 * the terminate waits is not settled: it may only be cut off for longer than
 * the forget time, and come back with the spec. */
static int peer_settled(herd_node_t *n, const term_peer_t *p)
{
    herd_member_info_t m;
    herd_stream_stats_t st;
    if (herd_cluster_member(n, p->id, &m) != 0)
        return 0;
    if (m.state == HERD_MEMBER_LEFT || m.incarnation != p->incarnation)
        return 1;
    return herd_cluster_stream_stats(n, p->id, &st) == 0 && st.acked_seq >= p->seq;
}

static int waiter_settled(dsup_t *d, term_waiter_t *w)
{
    collect_ctx_t c = {d, w, 1};
    herd_cluster_foreach_member(d->node, collect_peer, &c);
    /* a node heard of but not from (a member cut off since before this one
     * joined) may hold the spec: it cannot be counted yet */
    int settled = herd_cluster_unconfirmed(d->node) == 0;
    for (size_t i = 0; i < w->count; i++) {
        term_peer_t *p = &w->peers[i];
        p->settled = p->settled || peer_settled(d->node, p);
        settled &= p->settled;
    }
    return settled;
}

static void waiter_free(term_waiter_t *w)
{
    free(w->name);
    free(w->peers);
    free(w);
}

int herd_terminate_child_async(herd_node_t *n, const char *name, uint32_t timeout_ms,
                               herd_terminate_cb cb, void *data)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    if (cb == NULL || name == NULL)
        return HERD_EINVAL;
    term_waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->name = strdup(name)) == NULL) {
        free(w);
        return HERD_ENOMEM;
    }
    int refs = herd_spec_refs(n, name, w->refs, TERM_REFS_MAX);
    int rc = herd_spec_remove(n, name);
    if (rc) {
        waiter_free(w);
        return rc;
    }
    w->nrefs = refs > 0 ? (size_t)refs : 0;
    w->untracked = refs < 0; /* more writes than it can tell a newcomer of */
    if (d->dirty_n) /* stops a copy of this node at once */
        reconcile_dirty(d);
    herd_registry_flush(n); /* the removal's delta is on every stream now */
    collect_ctx_t c = {d, w, 0};
    herd_cluster_foreach_member(n, collect_peer, &c);
    w->deadline = herd_node_now(n) + timeout_ms;
    w->cb = cb;
    w->data = data;
    w->next = d->terms;
    d->terms = w;
    d->term_count++;
    dsup_kick(d, 0); /* answered from the loop, never inside this call */
    return 0;
}

void terminate_tick(dsup_t *d, uint64_t now)
{
    term_waiter_t *done = NULL;
    for (term_waiter_t **at = &d->terms; *at;) {
        term_waiter_t *w = *at;
        int settled = !w->untracked && waiter_settled(d, w);
        if (!settled && now < w->deadline && !w->untracked) {
            at = &w->next;
            continue;
        }
        *at = w->next;
        w->next = done;
        w->untracked = !settled;
        done = w;
        d->term_count--;
    }
    for (term_waiter_t *w = done, *next; w; w = next) { /* callbacks last: they may terminate */
        next = w->next;
        w->cb(w->data, w->untracked ? HERD_EUNCERTAIN : 0);
        waiter_free(w);
    }
}

/* Forget the waiter whose callback data is `data` without calling it. */
static void terminate_cancel(dsup_t *d, void *data)
{
    for (term_waiter_t **at = &d->terms; *at; at = &(*at)->next) {
        term_waiter_t *w = *at;
        if (w->data == data) {
            *at = w->next;
            d->term_count--;
            waiter_free(w);
            return;
        }
    }
}

void terminate_free(dsup_t *d)
{
    for (term_waiter_t *w = d->terms, *next; w; w = next) {
        next = w->next;
        waiter_free(w);
    }
    d->terms = NULL;
    d->term_count = 0;
}

typedef struct term_wait {
    int done, status;
} term_wait_t;

static void terminate_done(void *data, int status)
{
    term_wait_t *t = data;
    t->status = status;
    t->done = 1;
}

int herd_terminate_child(herd_node_t *n, const char *name, uint32_t timeout_ms)
{
    if (herd_node_in_loop(n))
        return HERD_EDEADLK; /* the loop cannot run nested in itself */
    term_wait_t t = {0};
    int rc = herd_terminate_child_async(n, name, timeout_ms, terminate_done, &t);
    if (rc)
        return rc;
    /* bounded: the waiter answers by its deadline */
    for (uint64_t end = herd_node_now(n) + timeout_ms + 1000; !t.done && herd_node_now(n) < end;)
        if (herd_node_run_for(n, 10) != 0)
            break;
    if (!t.done)
        terminate_cancel(dsup_of(n), &t);
    return t.done ? t.status : HERD_EUNCERTAIN;
}
