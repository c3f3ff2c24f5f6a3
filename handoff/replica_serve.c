/*
 * replica_serve.c - the replica's side of replication (replicas.c's head
 * comment has the messages): keep the newest copy an owner puts, say
 * whether it was stored, drop it when told or when the child's spec goes,
 * and answer a starting owner's query with the copy kept here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "herd_ring.h"
#include "log.h"
#include "registry_layers.h"
#include "replicas_int.h"
#include "svcring.h"

static int self_leaving(dsup_t *d);

int repl_mergeable(dsup_t *d, const char *name)
{
    dspec_t spec;
    int service;
    if (dspec_of(d, name, &spec, &service) != 0)
        return 0;
    const herd_behaviour_t *b = dsup_behaviour(d, service);
    return b && b->resolve_conflict;
}

/* Copies of other registrations or runs kept beside `kept` go to its
 * owner `to` to be merged (again after REPL_MERGE_RESEND_MS, until it says
 * it did). */
static void offer_others(dsup_t *d, uint64_t to, replica_t *kept)
{
    uint64_t now = herd_node_now(d->node);
    for (size_t i = 0; i < kept->others_n; i++) {
        replica_other_t *o = &kept->others[i];
        if (o->offered && now - o->offered < REPL_MERGE_RESEND_MS)
            continue;
        o->offered = now;
        replica_lineage_t lin = repl_copy_lineage(o->writer, o->version);
        if (repl_send_copy(d, to, REPL_MERGE, kept->name, NULL, 0, o->hlc, o->version, &lin,
                           o->bytes, o->len) != 0)
            d->repl_stats.send_failed++;
    }
}

void replica_on_merged(dsup_t *d, wire_reader_t *r, const char *name)
{
    uint64_t hlc = wire_get_u64(r), writer = wire_get_u64(r), version = wire_get_u64(r);
    if (wire_reader_done(r)) {
        d->repl_stats.malformed++;
        return;
    }
    replica_merged(d, name, hlc, writer, version);
}

void replica_merged(dsup_t *d, const char *name, uint64_t hlc, uint64_t writer,
                    uint64_t version)
{
    replica_store_t *s = &d->repl->store;
    const replica_t *kept = replica_find(s, name);
    int gone = replica_drop_other(s, name, hlc, writer, version);
    if (!gone && kept && kept->hlc == hlc && kept->writer == writer && kept->version <= version)
        gone = replica_drop(s, name, hlc); /* an orphan's copy (replica_orphans) */
    if (gone)
        herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' copy of registration %llu by %016llx "
                 "dropped: merged", herd_node_name(d->node), name, (unsigned long long)hlc,
                 (unsigned long long)writer);
}

/* Offer one copy of registration `hlc` by `writer` to `holder` (another
 * node) to merge, at most once per REPL_MERGE_RESEND_MS (*offered). */
static void offer_copy(dsup_t *d, uint64_t holder, const char *name, uint64_t *offered,
                       uint64_t hlc, uint64_t writer, uint64_t version, const uint8_t *bytes,
                       size_t len)
{
    uint64_t now = herd_node_now(d->node);
    if (*offered && now - *offered < REPL_MERGE_RESEND_MS)
        return;
    *offered = now;
    replica_lineage_t lin = repl_copy_lineage(writer, version);
    if (repl_send_copy(d, holder, REPL_MERGE, name, NULL, 0, hlc, version, &lin, bytes, len) != 0)
        d->repl_stats.send_failed++;
}

/* Whether this node is in the replica set of `name` (of `spec` and
 * `service`, as dspec_of reads them) run by `holder`. */
static int in_holders_set(dsup_t *d, const char *name, const dspec_t *spec, int service,
                          uint64_t holder)
{
    uint64_t set[HERD_MAX_REPLICAS - 1], self = herd_node_id_of(herd_node_name(d->node));
    if (holder == self)
        return 0;
    size_t n = replica_set_of(d, name, service, replicas_wanted(d, spec, service), holder, set);
    for (size_t i = 0; i < n; i++)
        if (set[i] == self)
            return 1;
    return 0;
}

/* Whether a copy of registration `hlc` goes to the child's holder to be
 * merged: one of another registration of the current spec (its owner
 * died, or it lost a conflict, and whoever runs the child now started
 * without it: a partition hid it); one of the registration the registry
 * shows kept as an other (another run's: a fork); the copy of that
 * registration another node than the holder put (a fork's run); or one
 * kept by a node outside the holder's set (no put of the holder's comes
 * to replace it). The holder tells at once what it holds already. */
static int orphaned(dsup_t *d, const char *name, uint64_t hlc, uint64_t put_by, int other,
                    replica_rank_t rank, uint64_t holder, const dspec_t *spec, int service)
{
    if (hlc != rank.visible)
        return hlc >= rank.floor;
    if (other || put_by != holder)
        return 1;
    dspec_t read;
    if (spec == NULL) { /* the caller has not read it */
        if (dspec_of(d, name, &read, &service) != 0)
            return 1;
        spec = &read;
    }
    return !in_holders_set(d, name, spec, service, holder);
}

/* The ranks of `name` and whether its children merge, from one read of
 * its spec (repl_rank_of and repl_mergeable each read it): 0, or when
 * nothing of it is to be merged (no spec or service here, no
 * resolve_conflict, no registration shown). */
static int orphan_view(dsup_t *d, const char *name, replica_rank_t *rank, dspec_t *spec,
                       int *service)
{
    if (dspec_of(d, name, spec, service) != 0)
        return HERD_ENOENT;
    const herd_behaviour_t *b = dsup_behaviour(d, *service);
    if (b == NULL || b->resolve_conflict == NULL)
        return HERD_ENOENT;
    rank->floor = spec->written;
    if (herd_registry_time(d->node, name, &rank->visible) != 0 || rank->visible == 0)
        return HERD_ENOENT;
    return 0;
}

/* Merge here, into the child this node runs, the orphaned copies of
 * `name` it keeps itself. A merge may drop the copy (the child held it):
 * the entry is looked up again after each. */
static void merge_own_orphans(dsup_t *d, const char *name, uint64_t self)
{
    for (;;) {
        replica_t *rep = replica_find(&d->repl->store, name);
        replica_rank_t rank = repl_rank_of(d, name);
        uint64_t now = herd_node_now(d->node), *offered = NULL, hlc = 0, writer = 0, version = 0;
        const uint8_t *bytes = NULL;
        size_t len = 0;
        if (rep && rep->bytes && (!rep->offered || now - rep->offered >= REPL_MERGE_RESEND_MS) &&
            orphaned(d, name, rep->hlc, rep->owner, 0, rank, self, NULL, 0))
            offered = &rep->offered, hlc = rep->hlc, writer = rep->writer,
            version = rep->version, bytes = rep->bytes, len = rep->len;
        for (size_t i = 0; rep && offered == NULL && i < rep->others_n; i++) {
            replica_other_t *o = &rep->others[i];
            if ((!o->offered || now - o->offered >= REPL_MERGE_RESEND_MS) &&
                orphaned(d, name, o->hlc, 0, 1, rank, self, NULL, 0))
                offered = &o->offered, hlc = o->hlc, writer = o->writer, version = o->version,
                bytes = o->bytes, len = o->len;
        }
        if (offered == NULL)
            return;
        *offered = now;
        uint8_t *copy = malloc(len ? len : 1); /* the merge may free the copy kept */
        if (copy == NULL)
            return; /* the next pass tries again */
        if (len)
            memcpy(copy, bytes, len);
        repl_merge_here(d, self, name, hlc, writer, version, copy, len);
        free(copy);
    }
}

/* Visit up to `max` copies kept here (0: all the rest) from where walk w
 * stopped, in the order of the store's slots; returns 1 when it reached
 * the end. A copy kept or dropped between two slices may move the others
 * in the map: the walk may then miss or visit again a few, which the next
 * walk looks at again. */
static int copy_walk_slice(replica_store_t *s, copy_walk_t *w, size_t max,
                           void (*fn)(void *data, replica_t *rep), void *data)
{
    size_t seen = 0;
    while (max == 0 || seen < max) {
        u64map_slot_t *sl = u64map_next(&s->by_hash, &w->cursor);
        if (sl == NULL)
            return 1;
        for (replica_t *rep = sl->value; rep; rep = rep->twin, seen++)
            fn(data, rep);
    }
    return 0;
}

/* Whether a periodic walk over the copies has a slice to run now: one
 * under way, or a new one `every` ms after the last began. */
static int copy_walk_due(repl_t *r, copy_walk_t *w, uint64_t *last, uint64_t every,
                         uint64_t now)
{
    if (w->on)
        return 1;
    if (r->store.count == 0 || now - *last < every)
        return 0;
    *last = now;
    *w = (copy_walk_t){.on = 1};
    return 1;
}

typedef struct orphan_walk {
    dsup_t *d;
    uint64_t self;
    char **here; /* names of children running here: merged after the slice */
    size_t here_n;
} orphan_walk_t;

static void orphan_one(void *data, replica_t *rep)
{
    orphan_walk_t *w = data;
    dsup_t *d = w->d;
    herd_pid_t holder;
    replica_rank_t rank;
    dspec_t spec;
    int service;
    if (orphan_view(d, rep->name, &rank, &spec, &service) != 0 ||
        herd_whereis(d->node, rep->name, &holder, NULL) != 0)
        return;
    if (holder.node == w->self) {
        char **more = realloc(w->here, (w->here_n + 1) * sizeof(*more));
        if (more && (more[w->here_n] = strdup(rep->name)) != NULL)
            w->here_n++;
        if (more)
            w->here = more; /* else: the next walk */
        return;
    }
    if (rep->bytes && orphaned(d, rep->name, rep->hlc, rep->owner, 0, rank, holder.node, &spec,
                               service))
        offer_copy(d, holder.node, rep->name, &rep->offered, rep->hlc, rep->writer,
                   rep->version, rep->bytes, rep->len);
    for (size_t i = 0; i < rep->others_n; i++) {
        replica_other_t *o = &rep->others[i];
        if (orphaned(d, rep->name, o->hlc, 0, 1, rank, holder.node, &spec, service))
            offer_copy(d, holder.node, rep->name, &o->offered, o->hlc, o->writer, o->version,
                       o->bytes, o->len);
    }
}

/* Copies here the child's holder may lack (orphaned) go to it, to be
 * merged in; they stay until it says it merged them (or held them). A walk
 * every REPL_MERGE_RESEND_MS, reconcile_slice copies a tick. */
void replica_orphans(dsup_t *d, uint64_t now)
{
    repl_t *r = d->repl;
    if (r == NULL || !copy_walk_due(r, &r->orphans_walk, &r->last_orphans,
                                    REPL_MERGE_RESEND_MS, now))
        return;
    orphan_walk_t w = {.d = d, .self = herd_node_id_of(herd_node_name(d->node))};
    if (copy_walk_slice(&r->store, &r->orphans_walk, d->cfg.reconcile_slice, orphan_one, &w))
        r->orphans_walk.on = 0;
    for (size_t i = 0; i < w.here_n; i++) {
        merge_own_orphans(d, w.here[i], w.self);
        free(w.here[i]);
    }
    free(w.here);
}

replica_rank_t repl_rank_of(dsup_t *d, const char *name)
{
    const uint8_t *buf;
    size_t len;
    dspec_t spec;
    replica_rank_t rank = {0, 0};
    if (herd_spec_get(d->node, name, &buf, &len) == 0 && dspec_decode(buf, len, &spec) == 0)
        rank.floor = spec.written;
    if (herd_registry_time(d->node, name, &rank.visible) != 0)
        rank.visible = 0;
    return rank;
}
static void hand_over(dsup_t *d, const replica_t *rep);

/* One put as it arrived: alone (REPL_PUT: token 0, on 0) or in a batch. */
typedef struct put_in {
    char name[HERD_NAME_MAX + 1];
    uint64_t token; /* the owner's name for the child, echoed in the ack */
    uint64_t hlc, version, on;
    replica_lineage_t lin;
    const uint8_t *state;
    size_t len;
} put_in_t;

/* The acknowledgement of a put: into `acks` (a batch to `from`: by the
 * put's token, so the owner finds its child without a lookup by name), or
 * alone by name without one. */
static void ack_put(dsup_t *d, uint64_t from, const put_in_t *p, uint8_t stored,
                    repl_batches_t *acks)
{
    wire_writer_t *w = acks ? repl_batch_for(d, acks, from, 25) : NULL;
    if (w) {
        wire_put_u64(w, p->token);
        wire_put_u64(w, p->hlc);
        wire_put_u64(w, p->version);
        wire_put_u8(w, stored);
    } else if (repl_send_ack(d, from, p->name, p->hlc, p->version, stored) != 0) {
        d->repl_stats.send_failed++; /* the owner puts again when no ack comes */
    }
}

/* What a put needs to know of its child: its behaviour (NULL: no spec
 * here) and service, whether that merges, and the ranks. */
typedef struct put_view {
    const herd_behaviour_t *b;
    int service; /* + 1; 0: none */
    int mergeable;
    replica_rank_t rank;
} put_view_t;

/* The view of a put to `held` by run lin at registration `hlc`. A put that
 * goes on from the copy held (the same registration and run) is decided
 * by versions alone: its behaviour, remembered with the copy, is all it
 * needs, and the spec and the registry are not looked up (the costly part
 * of a put, each of them a lookup by name). */
static put_view_t put_view_of(dsup_t *d, const char *name, const replica_t *held, uint64_t hlc,
                              const replica_lineage_t *lin)
{
    put_view_t v = {0};
    if (held && held->bytes && held->service && held->hlc == hlc && held->writer == lin->writer) {
        v.service = held->service;
        v.b = dsup_behaviour(d, held->service - 1);
        return v;
    }
    dspec_t spec;
    const uint8_t *buf;
    size_t len;
    if (herd_spec_get(d->node, name, &buf, &len) == 0 && dspec_decode(buf, len, &spec) == 0) {
        int service = dsup_service_index(d, spec.service);
        v.b = service >= 0 ? dsup_behaviour(d, service) : NULL;
        v.service = service + 1;
        v.mergeable = v.b && v.b->resolve_conflict;
        v.rank.floor = spec.written;
    }
    if (herd_registry_time(d->node, name, &v.rank.visible) != 0)
        v.rank.visible = 0;
    return v;
}

/* A change (`delta`, from version `on` of run lin's copy) applied to the
 * copy kept here, into a malloc'ed *out: 0; 1 when the copy is not the one
 * it follows (the whole state is wanted); or the behaviour's failure. */
static int apply_delta(const put_view_t *v, const replica_t *kept, uint64_t hlc, uint64_t on,
                       const replica_lineage_t *lin, const uint8_t *delta, size_t len,
                       uint8_t **out, size_t *out_len)
{
    const herd_behaviour_t *b = v->b;
    if (kept == NULL || kept->bytes == NULL || kept->hlc != hlc || kept->writer != lin->writer ||
        kept->version != on || b == NULL || b->delta_apply == NULL)
        return 1;
    *out = NULL;
    *out_len = 0;
    return b->delta_apply(kept->bytes, kept->len, delta, len, out, out_len);
}

/* Whether a state of `len` bytes put by run lin fits under
 * max_replica_bytes, what it replaces (the copy of that run) freed. */
static int has_room(dsup_t *d, const replica_t *kept, const replica_lineage_t *lin, size_t len)
{
    const replica_store_t *s = &d->repl->store;
    uint64_t freed = kept && kept->bytes && kept->writer == lin->writer ? kept->len : 0;
    return s->bytes - freed + len <= d->cfg.max_replica_bytes;
}

/* Keep one put (a whole state, or a change on version `on`); its
 * acknowledgement goes into `acks` (a batch to `from`), or alone without
 * one. */
static void take_put(dsup_t *d, uint64_t from, const put_in_t *p, repl_batches_t *acks)
{
    replica_store_t *s = &d->repl->store;
    const char *name = p->name;
    const replica_lineage_t *lin = &p->lin;
    uint64_t hlc = p->hlc, version = p->version;
    const uint8_t *state = p->state;
    size_t len = p->len;
    uint8_t *applied = NULL;
    replica_t *held = replica_find(s, name);
    put_view_t view = put_view_of(d, name, held, hlc, lin);
    if (p->on) {
        int rc = apply_delta(&view, held, hlc, p->on, lin, state, len, &applied, &len);
        if (rc) {
            if (rc < 0)
                herd_log(HERD_LOG_WARN, "replicas", "'%s': a change to version %llu not "
                         "applied: %s", name, (unsigned long long)version, herd_strerror(rc));
            free(applied);
            ack_put(d, from, p, REPL_ACK_GAP, acks);
            return;
        }
        state = applied;
        d->repl_stats.deltas_in++;
    }
    if (!has_room(d, held, lin, len)) {
        d->repl_stats.no_room++;
        free(applied);
        ack_put(d, from, p, REPL_ACK_NO_ROOM, acks);
        return;
    }
    replica_t *kept = held;
    int rc = replica_put(s, &kept, name, from, hlc, version, lin, view.rank, view.mergeable,
                         state, len);
    /* stored: as the copy or as an other (kept to be merged), or the same
     * version again from the same run (a put sent twice: another run's
     * equal version is other bytes, refused so it puts again, higher) */
    int stored = rc >= 1 || (rc == 0 && kept && kept->hlc == hlc && kept->version == version &&
                             kept->writer == lin->writer);
    if (rc < 0) { /* no memory: as good as no room */
        herd_log(HERD_LOG_ERROR, "replicas", "'%s' version %llu not kept: %s", name,
                 (unsigned long long)version, herd_strerror(rc));
        d->repl_stats.no_room++;
        free(applied);
        ack_put(d, from, p, REPL_ACK_NO_ROOM, acks);
        return;
    }
    herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' from %016llx registration %llu version %llu: %s",
             herd_node_name(d->node), name, (unsigned long long)from, (unsigned long long)hlc,
             (unsigned long long)version,
             rc == 1 ? "kept" : rc == 2 ? "kept as an other" : stored ? "held already" : "refused");
    if (stored)
        kept->touched = herd_node_now(d->node);
    if (rc == 1 && view.service)
        kept->service = view.service; /* the next put of this run needs no lookup */
    if (stored && kept->hlc == hlc && kept->others_n)
        offer_others(d, from, kept); /* the owner merges what the other side ran */
    if (rc == 1) {
        d->repl_stats.puts_in++;
        d->repl_stats.bytes_in += len;
        replica_query_offer(d, name, hlc, version, lin->writer, state,
                            len); /* a start waiting for it */
        if (self_leaving(d)) /* its owner has not heard of the drain yet */
            hand_over(d, kept);
    }
    ack_put(d, from, p, (uint8_t)stored, acks);
    free(applied);
}

void replica_on_put(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name)
{
    put_in_t p = {.token = 0, .on = 0};
    snprintf(p.name, sizeof(p.name), "%s", name); /* the caller read at most HERD_NAME_MAX */
    p.hlc = wire_get_u64(r);
    p.version = wire_get_u64(r);
    int bad = repl_get_lineage(r, &p.lin);
    p.len = wire_get_bytes(r, &p.state);
    if (wire_reader_done(r) || bad || p.version == 0) {
        d->repl_stats.malformed++;
        return;
    }
    take_put(d, from, &p, NULL);
}

/* The next entry of a batch of puts; 0, or HERD_EBADFRAME. */
static int next_put(wire_reader_t *r, put_in_t *p)
{
    wire_get_str(r, p->name, sizeof(p->name));
    p->token = wire_get_u64(r);
    p->hlc = wire_get_u64(r);
    p->version = wire_get_u64(r);
    p->on = wire_get_u64(r);
    int bad = repl_get_lineage(r, &p->lin) || p->on >= p->version;
    p->len = wire_get_bytes(r, &p->state);
    return r->err || bad || !p->name[0] || p->token == 0 || p->version == 0 ? HERD_EBADFRAME
                                                                           : 0;
}

void replica_on_puts(dsup_t *d, uint64_t from, wire_reader_t *r)
{
    put_in_t p;
    wire_reader_t check = *r; /* a malformed entry anywhere: none is taken */
    while (check.off < check.len)
        if (next_put(&check, &p) != 0) {
            d->repl_stats.malformed++;
            return;
        }
    repl_batches_t acks = {.kind = REPL_ACKS};
    while (r->off < r->len && next_put(r, &p) == 0)
        take_put(d, from, &p, &acks);
    d->repl_stats.send_failed += repl_batches_send(d, &acks);
}

/* An owner no longer needs the copy it put here. Only a copy that owner
 * wrote goes: two nodes can run one registration at once (a copy promoted
 * across a partition), and the other's copy may hold what this one never
 * merged. */
void replica_on_drop(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name)
{
    uint64_t hlc = wire_get_u64(r);
    if (wire_reader_done(r) || hlc == 0) { /* 0 would drop copies waiting to merge */
        d->repl_stats.malformed++;
        return;
    }
    const replica_t *kept = replica_find(&d->repl->store, name);
    if (kept && kept->owner == from && replica_drop(&d->repl->store, name, hlc))
        herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' copy dropped at its owner's word",
                 herd_node_name(d->node), name);
}

void replica_drop_local(dsup_t *d, const char *name)
{
    if (d->repl)
        replica_drop(&d->repl->store, name, 0);
}

void replica_on_query(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name)
{
    uint64_t id = wire_get_u64(r);
    if (wire_reader_done(r)) {
        d->repl_stats.malformed++;
        return;
    }
    const replica_t *kept = replica_find(&d->repl->store, name);
    /* copies of other registrations or runs first (has 2), then the answer */
    for (size_t i = 0; kept && i < kept->others_n; i++) {
        const replica_other_t *o = &kept->others[i];
        replica_lineage_t lin = repl_copy_lineage(o->writer, o->version);
        if (repl_send_copy(d, from, REPL_HAVE, name, &id, 2, o->hlc, o->version, &lin, o->bytes,
                           o->len) != 0)
            d->repl_stats.send_failed++;
    }
    int has = kept != NULL && kept->bytes != NULL;
    replica_lineage_t lin = repl_copy_lineage(has ? kept->writer : 1, has ? kept->version : 0);
    if (repl_send_copy(d, from, REPL_HAVE, name, &id, (uint8_t)has, has ? kept->hlc : 0,
                       has ? kept->version : 0, &lin, has ? kept->bytes : NULL,
                       has ? kept->len : 0) != 0)
        d->repl_stats.send_failed++; /* the asker's query times out */
}

/* Whether this node should keep its copy of `name`: the child's spec is
 * here, and this node is in the replica set of the ring's owner of it (or
 * is that owner, not running it yet: a query may still want the copy). */
static int still_wanted(dsup_t *d, const replica_t *rep)
{
    const char *name = rep->name;
    dspec_t spec;
    int service;
    if (dspec_of(d, name, &spec, &service) != 0)
        return 0;
    if (rep->others_n || (rep->bytes && rep->hlc >= spec.written &&
                          rep->hlc != repl_rank_of(d, name).visible && repl_mergeable(d, name)))
        return 1; /* copies of a registration waiting to be merged */
    const herd_ring_t *ring = svcring_get(d, d->services[service].name);
    const char *owner;
    if (ring == NULL || herd_ring_owners(ring, name, strlen(name), &owner, 1) != 1)
        return 1; /* nobody provides it now: keep it for whoever comes */
    uint64_t self = herd_node_id_of(herd_node_name(d->node));
    uint64_t owner_id = herd_node_id_of(owner), set[HERD_MAX_REPLICAS - 1];
    if (owner_id == self)
        return dsup_find(d, name) == NULL;
    size_t n = replica_set_of(d, name, service, replicas_wanted(d, &spec, service), owner_id,
                              set);
    for (size_t i = 0; i < n; i++)
        if (set[i] == self)
            return 1;
    return 0;
}

typedef struct gc_walk {
    dsup_t *d;
    uint64_t now;
    char **gone; /* names of the copies to drop after the slice */
    size_t n, cap;
} gc_walk_t;

static void gc_one(void *data, replica_t *rep)
{
    gc_walk_t *w = data;
    if (w->now - rep->touched < REPL_GC_MS || still_wanted(w->d, rep))
        return;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        char **g = realloc(w->gone, cap * sizeof(*g));
        if (g == NULL)
            return; /* the next walk takes it */
        w->gone = g;
        w->cap = cap;
    }
    if ((w->gone[w->n] = strdup(rep->name)) != NULL)
        w->n++;
}

/* A walk every REPL_GC_MS / 2, reconcile_slice copies a tick. */
void replica_gc(dsup_t *d, uint64_t now)
{
    repl_t *r = d->repl;
    if (r == NULL || !copy_walk_due(r, &r->gc_walk, &r->last_gc, REPL_GC_MS / 2, now))
        return;
    gc_walk_t w = {.d = d, .now = now};
    if (copy_walk_slice(&r->store, &r->gc_walk, d->cfg.reconcile_slice, gc_one, &w))
        r->gc_walk.on = 0;
    for (size_t i = 0; i < w.n; i++) {
        replica_drop(&r->store, w.gone[i], 0);
        d->repl_stats.collected++;
        free(w.gone[i]);
    }
    free(w.gone);
}

/* Whether this node is out of the ring: draining, or left and lingering. */
static int self_leaving(dsup_t *d)
{
    herd_member_info_t m;
    return herd_cluster_member(d->node, herd_node_id_of(herd_node_name(d->node)), &m) == 0 &&
           (m.state == HERD_MEMBER_DRAINING || m.state == HERD_MEMBER_LEFT);
}

/* Send `rep` on to the members that would keep it now: the ring's owner
 * of the child and its set (this node being out of the ring). */
static void hand_over(dsup_t *d, const replica_t *rep)
{
    dspec_t spec;
    int service;
    if (dspec_of(d, rep->name, &spec, &service) != 0)
        return;
    const herd_ring_t *ring = svcring_get(d, d->services[service].name);
    const char *owners[HERD_MAX_REPLICAS];
    uint8_t copies = replicas_wanted(d, &spec, service);
    int k = ring ? herd_ring_owners(ring, rep->name, strlen(rep->name), owners, copies) : 0;
    uint64_t self = herd_node_id_of(herd_node_name(d->node));
    for (int i = 0; i < k; i++) {
        uint64_t to = herd_node_id_of(owners[i]);
        if (to == self)
            continue;
        replica_lineage_t lin = repl_copy_lineage(rep->writer, rep->version);
        int rc = rep->bytes ? repl_send_copy(d, to, REPL_PUT, rep->name, NULL, 0, rep->hlc,
                                             rep->version, &lin, rep->bytes, rep->len)
                            : 0;
        for (size_t o = 0; rc == 0 && o < rep->others_n; o++) {
            const replica_other_t *x = &rep->others[o];
            lin = repl_copy_lineage(x->writer, x->version);
            rc = repl_send_copy(d, to, REPL_PUT, rep->name, NULL, 0, x->hlc, x->version, &lin,
                                x->bytes, x->len);
        }
        if (rc != 0)
            d->repl_stats.send_failed++;
        else
            d->repl_stats.handed_over++;
    }
}

/* This node drains or leaves: each copy it keeps goes to the members that
 * would keep it now, so that a child whose owner died before it could put
 * again does not lose its only copy with this node. A member already
 * holding something newer keeps that (replica_put). Copies that come in
 * while it drains go on the same way (replica_on_put). */
void replica_handover(dsup_t *d)
{
    repl_t *r = d->repl;
    if (r == NULL || r->store.count == 0)
        return;
    size_t cursor = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&r->store.by_hash, &cursor)) != NULL;)
        for (const replica_t *rep = sl->value; rep; rep = rep->twin)
            hand_over(d, rep);
}
