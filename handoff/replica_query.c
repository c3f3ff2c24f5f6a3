/*
 * replica_query.c - a replicated child starts from the newest copy of its
 * state any member keeps (replicas.c).
 *
 * Before an owner starts a child with copies > 1 (a new child, or one
 * whose owner died), it asks every member that is up, suspect or draining
 * and provides the child's service (no other is ever in a replica set)
 * for the copy it keeps, and waits until each answered or went down (at
 * most the handoff timeout). The newest copy (replica_rank_newer) wins, its
 * own included; copies of other registrations of the current spec, and
 * those other runs of the winner's registration wrote (two ran at once,
 * across a partition), are merged into it as the child starts. Every version a
 * reply was let go for is held by each member of the old owner's set, so
 * as long as fewer than `copies` of them crashed, one answers with it.
 */
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
    repl_copy_t *copies; /* the newest copy of each registration and writer found */
    size_t copies_n;
    int failed; /* a copy could not be kept (out of memory): logged */
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
    for (size_t i = 0; i < q->copies_n; i++)
        free(q->copies[i].bytes);
    free(q->copies);
    free(q->name);
    free(q->waiting);
    free(q);
}

void repl_found_free(repl_found_t *f)
{
    for (size_t i = 0; i < f->others_n; i++)
        free(f->others[i].bytes);
    free(f->others);
    free(f->bytes);
    memset(f, 0, sizeof(*f));
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

/* Keep a copy found: the newest of its registration and writer. A copy of
 * a registration older than the spec (a child terminated since) is never
 * kept. */
static int collect(repl_query_t *q, uint64_t hlc, uint64_t version, uint64_t writer,
                   const uint8_t *bytes, size_t len, uint64_t floor)
{
    if (hlc < floor)
        return 0;
    repl_copy_t *c = NULL;
    for (size_t i = 0; i < q->copies_n && c == NULL; i++)
        if (q->copies[i].hlc == hlc && q->copies[i].writer == writer)
            c = &q->copies[i];
    if (c && c->version >= version)
        return 0;
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return HERD_ENOMEM;
    if (len)
        memcpy(copy, bytes, len);
    if (c == NULL) {
        repl_copy_t *grown = realloc(q->copies, (q->copies_n + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(copy);
            return HERD_ENOMEM;
        }
        q->copies = grown;
        c = &q->copies[q->copies_n++];
        c->bytes = NULL;
    }
    free(c->bytes);
    *c = (repl_copy_t){
        .hlc = hlc, .version = version, .writer = writer, .bytes = copy, .len = len};
    return 1;
}

/* Keep copies found, logging what could not be kept. */
static void keep(repl_query_t *q, uint64_t hlc, uint64_t version, uint64_t writer,
                 const uint8_t *bytes, size_t len, uint64_t floor)
{
    if (collect(q, hlc, version, writer, bytes, len, floor) < 0 && !q->failed) {
        q->failed = 1;
        herd_log(HERD_LOG_ERROR, "replicas", "'%s': out of memory keeping a copy found",
                 q->name);
    }
}

/* The query's result: the newest copy, the others to merge into it. */
static void query_result(repl_query_t *q, replica_rank_t rank, repl_found_t *out)
{
    memset(out, 0, sizeof(*out));
    if (q->copies_n == 0)
        return;
    size_t best = 0;
    for (size_t i = 1; i < q->copies_n; i++)
        if (replica_rank_newer(q->copies[best].hlc, q->copies[best].version, q->copies[i].hlc,
                               q->copies[i].version, rank))
            best = i;
    repl_copy_t b = q->copies[best];
    q->copies[best] = q->copies[--q->copies_n];
    *out = (repl_found_t){.found = 1,
                          .hlc = b.hlc,
                          .version = b.version,
                          .writer = b.writer,
                          .bytes = b.bytes,
                          .len = b.len,
                          .others = q->copies,
                          .others_n = q->copies_n};
    q->copies = NULL;
    q->copies_n = 0;
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
    uint64_t floor = repl_rank_of(d, name).floor;
    if (own && own->bytes)
        keep(q, own->hlc, own->version, own->writer, own->bytes, own->len, floor);
    for (size_t i = 0; own && i < own->others_n; i++)
        keep(q, own->others[i].hlc, own->others[i].version, own->others[i].writer,
             own->others[i].bytes, own->others[i].len, floor);
    ask_ctx_t a = {d, q, herd_node_id_of(herd_node_name(d->node)), service, 0};
    if ((herd_cluster_foreach_member(d->node, ask_member, &a) < 0 && herd_cluster_ring(d->node)) ||
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
    herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' asks %zu member(s) for copies (%zu here)",
             herd_node_name(d->node), name, q->waiting_n, q->copies_n);
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
    query_result(q, repl_rank_of(d, name), out);
    herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' starts from %s (registration %llu version %llu, "
             "%zu other(s) to merge)", herd_node_name(d->node), name,
             out->found ? "a copy" : "its spec", (unsigned long long)out->hlc,
             (unsigned long long)out->version, out->others_n);
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
    replica_lineage_t lin;
    int bad = repl_get_lineage(r, &lin);
    const uint8_t *bytes;
    size_t len = wire_get_bytes(r, &bytes);
    if (wire_reader_done(r) || bad || has > 2 || (has && version == 0)) {
        d->repl_stats.malformed++;
        return;
    }
    repl_query_t *q = query_find(d->repl, name);
    if (q == NULL || q->id != id)
        return; /* an answer to a query that ended */
    if (has)
        keep(q, hlc, version, lin.writer, bytes, len, repl_rank_of(d, name).floor);
    if (has != 2) /* 2: a copy of another registration, ahead of the answer */
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
                         uint64_t writer, const uint8_t *bytes, size_t len)
{
    if (d->repl == NULL || d->repl->queries.count == 0)
        return; /* none under way (the common case: no lookup) */
    repl_query_t *q = query_find(d->repl, name);
    if (q)
        keep(q, hlc, version, writer, bytes, len, repl_rank_of(d, name).floor);
}
