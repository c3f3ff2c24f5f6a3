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
 * is neither left nor forgotten, down ones included (a down member may only
 * be cut off). "Holds" means its stream from this node acknowledged the
 * sequence number the removal's delta was sent with. A member that left, was
 * forgotten or restarted since takes no old spec back with it. Past the
 * timeout the caller gets HERD_EUNCERTAIN while the removal keeps spreading.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"

typedef struct term_peer {
    uint64_t id, incarnation, seq; /* seq: the removal's place in its stream */
} term_peer_t;

struct term_waiter {
    struct term_waiter *next;
    uint64_t deadline; /* node clock */
    herd_terminate_cb cb;
    void *data;
    size_t count, cap;
    term_peer_t *peers;
    int untracked; /* out of memory listing the members: the answer is uncertain */
};

typedef struct collect_ctx {
    dsup_t *d;
    term_waiter_t *w;
    int failed;
} collect_ctx_t;

static int collect_peer(void *data, const herd_member_info_t *m)
{
    collect_ctx_t *c = data;
    herd_node_t *n = c->d->node;
    uint64_t id = herd_node_id_of(m->name);
    herd_stream_stats_t st;
    if (id == herd_node_id_of(herd_node_name(n)) || m->state == HERD_MEMBER_LEFT)
        return 0;
    if (herd_cluster_stream_stats(n, id, &st) != 0)
        st.queued_seq = UINT64_MAX; /* no stream to it: it cannot hold the removal */
    term_waiter_t *w = c->w;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        term_peer_t *p = realloc(w->peers, cap * sizeof(*p));
        if (p == NULL) {
            c->failed = 1;
            return 1;
        }
        w->peers = p;
        w->cap = cap;
    }
    /* the removal's delta was queued last (it may not have left yet) */
    w->peers[w->count++] = (term_peer_t){id, m->incarnation, st.queued_seq};
    return 0;
}

/* Whether `p` holds the removal, or no longer matters. */
static int peer_settled(herd_node_t *n, const term_peer_t *p)
{
    herd_member_info_t m;
    herd_stream_stats_t st;
    if (herd_cluster_member(n, p->id, &m) != 0 || m.state == HERD_MEMBER_LEFT ||
        m.incarnation != p->incarnation)
        return 1;
    return herd_cluster_stream_stats(n, p->id, &st) == 0 && st.acked_seq >= p->seq;
}

static int waiter_settled(herd_node_t *n, term_waiter_t *w)
{
    while (w->count && peer_settled(n, &w->peers[w->count - 1]))
        w->count--;
    return w->count == 0;
}

int herd_terminate_child_async(herd_node_t *n, const char *name, uint32_t timeout_ms,
                               herd_terminate_cb cb, void *data)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    if (cb == NULL)
        return HERD_EINVAL;
    term_waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HERD_ENOMEM;
    int rc = herd_spec_remove(n, name);
    if (rc) {
        free(w);
        return rc;
    }
    if (d->dirty_n) /* stops a copy of this node at once */
        reconcile_dirty(d);
    herd_registry_flush(n); /* the removal's delta is on every stream now */
    collect_ctx_t c = {d, w, 0};
    herd_cluster_foreach_member(n, collect_peer, &c);
    w->untracked = c.failed; /* made, but its spread cannot be followed: uncertain */
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
        int settled = !w->untracked && waiter_settled(d->node, w);
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
        free(w->peers);
        free(w);
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
            free(w->peers);
            free(w);
            return;
        }
    }
}

void terminate_free(dsup_t *d)
{
    for (term_waiter_t *w = d->terms, *next; w; w = next) {
        next = w->next;
        free(w->peers);
        free(w);
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
    if (herd_node_in_process(n))
        return HERD_EDEADLK; /* the loop cannot run from inside a process */
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
