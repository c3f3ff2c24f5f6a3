/*
 * replica_query.c - a replicated child starts from the newest copy of its
 * state any member keeps (replicas.c).
 *
 * Before an owner starts a child with copies > 1 (a new child, or one
 * whose owner died), it asks every member that is up, suspect or draining
 * and provides the child's service (no other is ever in a replica set)
 * for the copy it keeps, and waits until each answered or went down (at
 * most the handoff timeout). The newest copy (a later registration, or the
 * same one at a higher version) wins, its own included. Every version a
 * reply was let go for is held by each member of the old owner's set, so
 * as long as fewer than `copies` of them crashed, one answers with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "dsup_int.h"
#include "log.h"
#include "replicas_int.h"

typedef struct repl_query {
    struct repl_query *twin; /* another name with the same hash */
    char *name;
    uint64_t hash, id;
    uint64_t deadline;
    uint64_t *waiting; /* members that have not answered */
    size_t waiting_n;
    repl_found_t best;
} repl_query_t;

static uint64_t query_hash(const char *name)
{
    uint64_t h = awmap_key_hash(name, strlen(name));
    return h ? h : 1;
}

static repl_query_t *query_find(repl_t *r, const char *name)
{
    for (repl_query_t *q = u64map_get(&r->queries, query_hash(name)); q; q = q->twin)
        if (strcmp(q->name, name) == 0)
            return q;
    return NULL;
}

static void query_free(repl_query_t *q)
{
    free(q->name);
    free(q->waiting);
    free(q->best.bytes);
    free(q);
}

static void query_unlink(repl_t *r, repl_query_t *q)
{
    repl_query_t *first = u64map_get(&r->queries, q->hash);
    if (first == q) {
        u64map_del(&r->queries, q->hash);
        /* a put into the slot just freed cannot grow the map */
        if (q->twin)
            (void)u64map_put(&r->queries, q->hash, q->twin);
        return;
    }
    for (repl_query_t *p = first; p; p = p->twin)
        if (p->twin == q) {
            p->twin = q->twin;
            return;
        }
}

void replica_queries_free(repl_t *r)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&r->queries, &cursor)) != NULL;)
        for (repl_query_t *q = s->value, *next; q; q = next) {
            next = q->twin;
            query_free(q);
        }
    u64map_fini(&r->queries);
}

/* Take a copy if it is newer than the best so far (replica_rank_newer); a
 * copy of a registration older than the spec (a child terminated since) is
 * never taken. */
static int take_if_newer(repl_found_t *best, uint64_t hlc, uint64_t version,
                         const uint8_t *bytes, size_t len, replica_rank_t rank)
{
    if (hlc < rank.floor ||
        (best->found && !replica_rank_newer(best->hlc, best->version, hlc, version, rank)))
        return 0;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return HERD_ENOMEM;
    if (len)
        memcpy(copy, bytes, len);
    free(best->bytes);
    *best = (repl_found_t){.found = 1, .hlc = hlc, .version = version, .bytes = copy, .len = len};
    return 1;
}

typedef struct ask_ctx {
    dsup_t *d;
    repl_query_t *q;
    uint64_t self;
    const char *service;
    int rc;
} ask_ctx_t;

static int ask_member(void *data, const herd_member_info_t *m)
{
    ask_ctx_t *a = data;
    uint64_t id = herd_node_id_of(m->name);
    if (id == a->self || m->state == HERD_MEMBER_DOWN || m->state == HERD_MEMBER_LEFT ||
        herd_cluster_member_provides(a->d->node, id, a->service) != 1)
        return 0; /* down, or never in a replica set of this service: no copy */
    uint64_t *w = realloc(a->q->waiting, (a->q->waiting_n + 1) * sizeof(*w));
    if (w == NULL) {
        a->rc = HERD_ENOMEM;
        return 1;
    }
    a->q->waiting = w;
    wire_writer_t wr;
    wire_writer_init(&wr);
    wire_put_u8(&wr, REPL_QUERY);
    wire_put_str(&wr, a->q->name);
    wire_put_u64(&wr, a->q->id);
    if (repl_send(a->d, id, &wr) != 0) {
        a->d->repl_stats.send_failed++; /* not waited for: it cannot answer */
        return 0;
    }
    w[a->q->waiting_n++] = id;
    return 0;
}

static int query_begin(dsup_t *d, const char *name, const char *service, repl_query_t **out)
{
    repl_t *r = d->repl;
    repl_query_t *q = calloc(1, sizeof(*q));
    if (q == NULL || (q->name = strdup(name)) == NULL) {
        free(q);
        return HERD_ENOMEM;
    }
    q->hash = query_hash(name);
    q->id = ++r->next_query;
    q->deadline = herd_node_now(d->node) + d->cfg.handoff_timeout_ms;
    const replica_t *own = replica_find(&r->store, name);
    ask_ctx_t a = {d, q, herd_node_id_of(herd_node_name(d->node)), service, 0};
    if ((own && take_if_newer(&q->best, own->hlc, own->version, own->bytes, own->len,
                              repl_rank_of(d, name)) < 0) ||
        (herd_cluster_foreach_member(d->node, ask_member, &a) < 0 && herd_cluster_ring(d->node)) ||
        a.rc) {
        query_free(q);
        return HERD_ENOMEM;
    }
    repl_query_t *first = u64map_get(&r->queries, q->hash);
    if (first) {
        q->twin = first->twin;
        first->twin = q;
    } else if (u64map_put(&r->queries, q->hash, q) != 0) {
        query_free(q);
        return HERD_ENOMEM;
    }
    d->repl_stats.queries++;
    if (getenv("TMP_REPL") && strcmp(name, getenv("TMP_REPL")) == 0) { fprintf(stderr, "QUERY %s at %s t=%llu waiting %zu own %d:", name, herd_node_name(d->node), (unsigned long long)herd_node_now(d->node), q->waiting_n, own != NULL); for (size_t i = 0; i < q->waiting_n; i++) fprintf(stderr, " %llx", (unsigned long long)q->waiting[i]); fprintf(stderr, "\n"); }
    *out = q;
    return 0;
}

int replica_query_start(dsup_t *d, const char *name, const char *service, repl_found_t *out)
{
    repl_t *r = d->repl;
    if (r == NULL) {
        memset(out, 0, sizeof(*out));
        return 1;
    }
    repl_query_t *q = query_find(r, name);
    if (q == NULL) {
        int rc = query_begin(d, name, service, &q);
        if (rc)
            return rc;
    }
    if (q->waiting_n)
        return 0; /* the last answer (or the tick, at the deadline) starts it */
    *out = q->best;
    q->best.bytes = NULL;
    query_unlink(r, q);
    query_free(q);
    return 1;
}

static void answered(dsup_t *d, repl_query_t *q, uint64_t id)
{
    for (size_t i = 0; i < q->waiting_n; i++)
        if (q->waiting[i] == id) {
            q->waiting[i] = q->waiting[--q->waiting_n];
            break;
        }
    if (q->waiting_n == 0)
        reconcile_on_spec(d, q->name); /* start it now */
}

void replica_on_have(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name)
{
    uint64_t id = wire_get_u64(r);
    uint8_t has = wire_get_u8(r);
    uint64_t hlc = wire_get_u64(r), version = wire_get_u64(r);
    const uint8_t *bytes;
    size_t len = wire_get_bytes(r, &bytes);
    if (wire_reader_done(r) || has > 1) {
        d->repl_stats.malformed++;
        return;
    }
    repl_query_t *q = query_find(d->repl, name);
    if (getenv("TMP_REPL") && strcmp(name, getenv("TMP_REPL")) == 0) fprintf(stderr, "HAVE %s at %s from %llx has %d hlc %llu v%llu q %p\n", name, herd_node_name(d->node), (unsigned long long)from, has, (unsigned long long)hlc, (unsigned long long)version, (void*)q);
    if (q == NULL || q->id != id)
        return; /* an answer to a query that ended */
    if (has && take_if_newer(&q->best, hlc, version, bytes, len, repl_rank_of(d, name)) < 0) {
        herd_log(HERD_LOG_ERROR, "replicas", "'%s': out of memory taking a copy", name);
        return; /* still waited for: the query times out and starts without it */
    }
    answered(d, q, from);
}

void replica_query_member_gone(dsup_t *d, uint64_t id)
{
    if (d->repl == NULL || d->repl->queries.count == 0)
        return;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->repl->queries, &cursor)) != NULL;)
        for (repl_query_t *q = s->value; q; q = q->twin)
            for (size_t i = 0; i < q->waiting_n; i++)
                if (q->waiting[i] == id) {
                    q->waiting[i] = q->waiting[--q->waiting_n];
                    if (q->waiting_n == 0)
                        reconcile_on_spec(d, q->name);
                    break;
                }
}

/* A query whose child no reconcile started since it ended (its spec went,
 * or another member owns it now) is dropped a timeout after its deadline;
 * one that timed out starts its child with the best copy it has. */
void replica_query_tick(dsup_t *d, uint64_t now)
{
    repl_t *r = d->repl;
    if (r == NULL || r->queries.count == 0)
        return;
    repl_query_t *stale = NULL;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&r->queries, &cursor)) != NULL;)
        for (repl_query_t *q = s->value; q; q = q->twin) {
            if (now >= q->deadline + d->cfg.handoff_timeout_ms && stale == NULL) {
                stale = q; /* one a tick: the map must not change while visited */
            } else if (q->waiting_n && now >= q->deadline) {
                d->repl_stats.query_timeouts++;
                q->waiting_n = 0;
                reconcile_on_spec(d, q->name); /* starts with the best copy it has */
            }
        }
    if (stale) {
        query_unlink(r, stale);
        query_free(stale);
    }
}

void replica_query_offer(dsup_t *d, const char *name, uint64_t hlc, uint64_t version,
                         const uint8_t *bytes, size_t len)
{
    repl_query_t *q = d->repl ? query_find(d->repl, name) : NULL;
    if (q && take_if_newer(&q->best, hlc, version, bytes, len, repl_rank_of(d, name)) < 0)
        herd_log(HERD_LOG_ERROR, "replicas", "'%s': out of memory taking a copy", name);
}
