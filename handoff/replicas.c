/*
 * replicas.c - a child's state held by its owner's ring successors, so that
 * a crash of the owner loses no acknowledged update (herd_dsup.h,
 * herd_child_req_t.replicas).
 *
 * The owner gates each replicated child's process (herd_gate_open): the
 * replies it sends wait. After a run of its handlers the child is dirty; at
 * the end of the loop iteration (a uv_prepare, or herd_dsup_poll) each
 * dirty child's state is written out once under a new version and put to
 * every member of its replica set: the successors of the owner on its
 * service's ring, up to copies - 1 of them. The replies it held up to that
 * version go once every member of the set has acknowledged it (group
 * commit: one put a loop iteration, however many calls it answered). At
 * most one batch of puts is in flight to each member: a child whose set
 * has a member still to acknowledge the last batch stays dirty and goes
 * in the next batch once it does (REPL_INFLIGHT_MS bounds the wait), so
 * a loaded owner sends fewer, larger batches and one version carries
 * every change of the wait. A
 * child whose set is empty, or whose state cannot be put (over
 * REPL_STATE_MAX, out of memory), lets its replies go at once and counts
 * them as unreplicated.
 *
 * When the membership moves, a child whose set changed puts again (the new
 * members get the whole state); members that left the set are told to drop
 * their copy once the new set holds the version put. A moved child's new
 * owner puts its state to its own set before it accepts the move
 * (handoff.c), so a commit never leaves the only copy on one node.
 *
 * Every state travels with its lineage (replica_store.h): u64 writer (the
 * run that wrote it), u64 base writer, u64 base version (the copy that run
 * started from). A replica never lets a put replace a copy the putting run
 * does not hold: two runs of one registration forked, and the copy is
 * merged instead (replica_put).
 *
 * Messages on the replication stream (app 3), each u8 kind, str name:
 *   1 put    + u64 first-registration time, u64 version, lineage, bytes state
 *   2 ack    + u64 first-registration time, u64 version, u8 stored (0 no,
 *              1 yes, 2 a change that does not follow the copy kept: the
 *              whole state is wanted, 3 no room: max_replica_bytes, or
 *              memory)
 *   3 drop   + u64 first-registration time
 *   4 query  + u64 query id
 *   5 have   + u64 query id, u8 has, u64 first-registration time, u64 version,
 *              lineage, bytes state (has 2: a copy of another registration
 *              or run, ahead of the answer, which has 0 or 1)
 *   6 merge  + u64 first-registration time, u64 version, lineage, bytes
 *              state: a copy of another registration or run of the child,
 *              to merge into it
 *   7 merged + u64 first-registration time, u64 writer, u64 version: the
 *              copy by that writer at that version (or below) is merged and
 *              replicated (or held by the child already)
 *   8 puts   (no name; a malformed entry anywhere drops it whole) the puts of
 *              one loop iteration to one member, each
 *              str name, u64 token (the child's process serial on its owner,
 *              never 0), u64 first-registration time, u64 version, u64 on,
 *              lineage, bytes: the whole state (on 0), or the change from
 *              version `on` of the same run's copy (the behaviour's
 *              delta_out, applied with its delta_apply), to the end of the
 *              message (at most REPL_BATCH_MAX bytes, unless one state is
 *              larger)
 *   9 acks   (no name) their acknowledgements, each u64 token (the put's),
 *              u64 first-registration time, u64 version, u8 stored, to the
 *              end: the owner finds the child by its token, no name lookup
 * replica_serve.c answers puts, drops and queries; replica_query.c asks.
 */
#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "dsup_int.h"
#include "dsup_layers.h"
#include "herd_ring.h"
#include "log.h"
#include "replicas_int.h"
#include "runtime_layers.h"
#include "svcring.h"

/* ---- lifecycle ------------------------------------------------------------------------- */

static void on_prepare(uv_prepare_t *h)
{
    repl_t *r = h->data;
    if (r->d)
        replicas_flush(r->d);
}

int replicas_init(dsup_t *d)
{
    repl_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HERD_ENOMEM;
    r->d = d;
    replica_store_init(&r->store);
    u64map_init(&r->queries);
    u64map_init(&r->inflight);
    r->next_expiry = UINT64_MAX;
    uv_prepare_init(herd_node_loop(d->node), &r->prepare);
    uv_unref((uv_handle_t *)&r->prepare); /* it waits for work, it keeps no loop alive */
    r->prepare.data = r;
    d->repl = r;
    if (herd_cluster_ring(d->node) != NULL)
        return herd_cluster_on_app(d->node, REPL_APP, replicas_on_app, d);
    return 0;
}

static void on_prepare_closed(uv_handle_t *h)
{
    free(h->data);
}

void replicas_free(dsup_t *d)
{
    repl_t *r = d->repl;
    if (r == NULL)
        return;
    herd_cluster_on_app(d->node, REPL_APP, NULL, NULL);
    replica_store_fini(&r->store);
    replica_queries_free(r);
    u64map_fini(&r->inflight);
    free(r->dirty);
    r->d = NULL;
    d->repl = NULL;
    uv_close((uv_handle_t *)&r->prepare, on_prepare_closed);
}

static int set_holds(const dchild_t *c, uint64_t version, int but_full);

/* The lag figures of herd_repl_stats: a walk of the children. */
static void repl_lag(dsup_t *d, herd_repl_stats_t *out)
{
    uint64_t now = herd_node_now(d->node);
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (const dchild_t *c = s->value; c; c = c->twin) {
            if (c->copies <= 1 || c->state != HERD_CHILD_RUNNING ||
                set_holds(c, c->version, 1))
                continue;
            out->lagging++;
            if (now - c->put_at > out->lag_ms)
                out->lag_ms = now - c->put_at;
        }
}

int herd_repl_stats(herd_node_t *n, herd_repl_stats_t *out)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL || d->repl == NULL)
        return HERD_ENOENT;
    *out = d->repl_stats;
    out->lagging = out->lag_ms = 0;
    repl_lag(d, out);
    out->held = d->repl->store.count;
    out->held_bytes = d->repl->store.bytes;
    out->others_dropped = d->repl->store.others_dropped;
    return 0;
}

uint8_t replicas_wanted(const dsup_t *d, const dspec_t *spec, int service)
{
    const herd_behaviour_t *b = dsup_behaviour(d, service);
    if (b == NULL || b->handoff_out == NULL || b->handoff_in == NULL)
        return 1;
    uint8_t n = spec->replicas ? spec->replicas : d->services[service].replicas;
    return n ? n : 1;
}

/* ---- the dirty list ---------------------------------------------------------------------- */

static void mark_dirty(dsup_t *d, dchild_t *c)
{
    repl_t *r = d->repl;
    if (c->repl_dirty || herd_pid_is_none(c->pid))
        return;
    if (r->dirty_n == r->dirty_cap) {
        size_t cap = r->dirty_cap ? r->dirty_cap * 2 : 64;
        repl_dirty_t *n = realloc(r->dirty, cap * sizeof(*n));
        if (n == NULL) { /* the next periodic pass puts it (replicas_on_member) */
            herd_log(HERD_LOG_ERROR, "replicas", "out of memory marking '%s'", c->name);
            return;
        }
        r->dirty = n;
        r->dirty_cap = cap;
    }
    r->dirty[r->dirty_n++] = (repl_dirty_t){.serial = c->pid.serial};
    c->repl_dirty = 1;
    if (!uv_is_active((uv_handle_t *)&r->prepare))
        uv_prepare_start(&r->prepare, on_prepare);
}

static void on_dirty(void *data, herd_pid_t pid)
{
    dsup_t *d = data;
    dchild_t *c = d->repl ? u64map_get(&d->by_serial, pid.serial) : NULL;
    if (c && c->copies > 1)
        mark_dirty(d, c);
}

/* The writer of c's run: one per process, whichever node and start ran it
 * (never 0). */
static uint64_t writer_of(dsup_t *d, const dchild_t *c)
{
    uint64_t id[3] = {herd_node_id_of(herd_node_name(d->node)), herd_node_incarnation(d->node),
                      c->pid.serial};
    uint64_t w = awmap_key_hash((const char *)id, sizeof(id));
    return w ? w : 1;
}

static int gate(dsup_t *d, dchild_t *c, const replica_lineage_t *base, uint64_t version)
{
    int rc = herd_gate_open(d->node, c->pid, version, on_dirty, d);
    if (rc) {
        herd_log(HERD_LOG_ERROR, "replicas", "'%s' not replicated: %s", c->name,
                 herd_strerror(rc));
        c->copies = 1;
        return rc;
    }
    /* the state it starts with was answered for elsewhere: it counts as
     * released until its set holds it */
    c->version = c->released = version;
    c->lin = (replica_lineage_t){writer_of(d, c), base->base_writer, base->base_version};
    memset(c->set_sent, 0, sizeof(c->set_sent)); /* a new run: the whole state first */
    memset(c->set_full, 0, sizeof(c->set_full));
    c->put_at = herd_node_now(d->node);
    return 0;
}

void replicas_gate(dsup_t *d, dchild_t *c, uint64_t base_writer, uint64_t base_version,
                   uint64_t version)
{
    replica_lineage_t base = {0, base_writer, base_version};
    if (c->copies > 1 && d->repl && gate(d, c, &base, version) == 0)
        mark_dirty(d, c); /* its set gets the state it starts with */
}

void replicas_resume(dsup_t *d, dchild_t *c)
{
    if (c->copies > 1 && d->repl)
        mark_dirty(d, c);
}

/* ---- the replica set ----------------------------------------------------------------------- */

size_t replica_set_of(dsup_t *d, const char *name, int service, uint8_t copies,
                      uint64_t owner, uint64_t *out)
{
    const herd_ring_t *ring = svcring_get(d, d->services[service].name);
    const char *owners[HERD_MAX_REPLICAS + 1];
    size_t want = copies > HERD_MAX_REPLICAS ? HERD_MAX_REPLICAS : copies;
    int k = ring ? herd_ring_owners(ring, name, strlen(name), owners, want + 1) : 0;
    size_t n = 0;
    for (int i = 0; i < k && n + 1 < want; i++) {
        uint64_t id = herd_node_id_of(owners[i]);
        if (id != owner)
            out[n++] = id;
    }
    return n;
}

static size_t replica_set(dsup_t *d, const dchild_t *c, uint64_t *out)
{
    return replica_set_of(d, c->name, c->service, c->copies,
                          herd_node_id_of(herd_node_name(d->node)), out);
}

static int in_set(const uint64_t *set, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == id)
            return (int)i;
    return -1;
}

/* Take the new set: members staying (the same start of theirs: one that
 * restarted since holds nothing) keep what they acknowledged; members
 * leaving it are told to drop their copy once the new set holds the
 * state. */
static void set_update(dsup_t *d, dchild_t *c, const uint64_t *set, size_t n)
{
    uint64_t acked[HERD_MAX_REPLICAS - 1], inc[HERD_MAX_REPLICAS - 1];
    uint64_t sent[HERD_MAX_REPLICAS - 1];
    uint8_t full[HERD_MAX_REPLICAS - 1];
    for (size_t i = 0; i < n; i++) {
        int at = in_set(c->set, c->set_n, set[i]);
        inc[i] = herd_cluster_member_incarnation(d->node, set[i]);
        int same = at >= 0 && c->set_inc[at] == inc[i];
        acked[i] = same ? c->set_acked[at] : 0;
        sent[i] = same ? c->set_sent[at] : 0;
        full[i] = same ? c->set_full[at] : 0;
    }
    for (size_t i = 0; i < c->set_n; i++)
        if (in_set(set, n, c->set[i]) < 0 && in_set(c->drop, c->drop_n, c->set[i]) < 0 &&
            c->drop_n < HERD_MAX_REPLICAS - 1)
            c->drop[c->drop_n++] = c->set[i];
    for (size_t i = 0; i < c->drop_n;) /* one back in the set keeps its copy */
        if (in_set(set, n, c->drop[i]) >= 0)
            c->drop[i] = c->drop[--c->drop_n];
        else
            i++;
    memcpy(c->set, set, n * sizeof(*set));
    memcpy(c->set_acked, acked, n * sizeof(*acked));
    memcpy(c->set_inc, inc, n * sizeof(*inc));
    memcpy(c->set_sent, sent, n * sizeof(*sent));
    memcpy(c->set_full, full, n * sizeof(*full));
    c->set_n = (uint8_t)n;
}

/* ---- putting ------------------------------------------------------------------------------ */

/* The next version of c's state: one more than the last, and no earlier
 * than the node's clock. Two copies of one registration can run at once
 * (a partition: one side promoted a copy while the other ran on); their
 * versions then say which was written later, never collide, and the
 * merged state written after the heal outranks both. */
uint64_t repl_mark(dsup_t *d, dchild_t *c)
{
    return herd_gate_mark_after(d->node, c->pid, herd_node_hlc_now(d->node));
}

int repl_send(dsup_t *d, uint64_t to, wire_writer_t *w)
{
    size_t len;
    uint8_t *buf = wire_writer_take(w, &len);
    int rc = buf ? herd_cluster_send_app(d->node, to, REPL_APP, buf, len) : HERD_ENOMEM;
    free(buf);
    return rc;
}

int repl_send_ack(dsup_t *d, uint64_t to, const char *name, uint64_t hlc, uint64_t version,
                  int stored)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, REPL_ACK);
    wire_put_str(&w, name);
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, version);
    wire_put_u8(&w, (uint8_t)stored);
    return repl_send(d, to, &w);
}

static void send_drop(dsup_t *d, uint64_t to, const dchild_t *c)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, REPL_DROP);
    wire_put_str(&w, c->name);
    wire_put_u64(&w, c->hlc);
    if (repl_send(d, to, &w) != 0) /* its copy stays: an older version, never promoted */
        d->repl_stats.send_failed++;
}

/* Tell `to` its copy of registration `hlc` by `writer` at `version` is
 * merged. */
static void tell_merged(dsup_t *d, uint64_t to, const char *name, uint64_t hlc, uint64_t writer,
                        uint64_t version)
{
    if (to == herd_node_id_of(herd_node_name(d->node))) {
        replica_merged(d, name, hlc, writer, version); /* a copy kept here */
        return;
    }
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, REPL_MERGED);
    wire_put_str(&w, name);
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, writer);
    wire_put_u64(&w, version);
    if (repl_send(d, to, &w) != 0) /* offered again: merged twice */
        d->repl_stats.send_failed++;
}

/* Replicas whose other copies c merged are told, once its set holds a
 * version that includes them: they drop those copies. */
static void confirm_merged(dsup_t *d, dchild_t *c, uint64_t upto)
{
    for (size_t i = 0; i < c->merged_n;) {
        if (c->merged[i].after > upto) {
            i++;
            continue;
        }
        tell_merged(d, c->merged[i].node, c->name, c->merged[i].hlc, c->merged[i].writer,
                    c->merged[i].version);
        c->merged[i] = c->merged[--c->merged_n];
    }
}

/* A replica offers a copy of another registration or run of c's child to
 * merge (the two ran at once): merged now, confirmed once replicated. A
 * child that cannot take it now (moving, not here) is offered it again
 * later. */
static void on_merge(dsup_t *d, uint64_t from, wire_reader_t *rd, const char *name)
{
    uint64_t hlc = wire_get_u64(rd), version = wire_get_u64(rd);
    replica_lineage_t lin;
    int bad = repl_get_lineage(rd, &lin);
    const uint8_t *bytes;
    size_t len = wire_get_bytes(rd, &bytes);
    if (wire_reader_done(rd) || bad || version == 0) {
        d->repl_stats.malformed++;
        return;
    }
    repl_merge_here(d, from, name, hlc, lin.writer, version, bytes, len);
}

void repl_merge_here(dsup_t *d, uint64_t from, const char *name, uint64_t hlc, uint64_t writer,
                     uint64_t version, const uint8_t *bytes, size_t len)
{
    dchild_t *c = dsup_find(d, name);
    if (c == NULL || c->state != HERD_CHILD_RUNNING || c->copies <= 1)
        return;
    for (size_t i = 0; i < c->merged_n; i++)
        if (c->merged[i].node == from && c->merged[i].hlc == hlc &&
            c->merged[i].writer == writer && c->merged[i].version >= version)
            return; /* merged already: told once the set holds it */
    if (c->hlc == hlc && replica_lineage_holds(&c->lin, writer, version)) {
        /* nothing the child lacks. A member of its set gets a put that
         * replaces the copy. Any other node may let it go once the set
         * holds all the child answered (until then that copy may be one
         * of those it was answered with: a member that left the set) */
        if (in_set(c->set, c->set_n, from) >= 0)
            mark_dirty(d, c);
        else if (set_holds(c, c->version, 0))
            tell_merged(d, from, name, hlc, writer, version);
        else if (c->merged_n < HERD_MAX_REPLICAS) /* else offered again, told then */
            c->merged[c->merged_n++] =
                (struct repl_merged){from, hlc, writer, version, c->version};
        return;
    }
    int rc = herd_state_merge(d->node, c->pid, bytes, len);
    if (rc) {
        if (rc != HERD_EBUSY)
            herd_log(HERD_LOG_WARN, "replicas", "'%s': a copy of another registration not "
                     "merged: %s", name, herd_strerror(rc));
        return;
    }
    d->repl_stats.merged_in++;
    mark_dirty(d, c);
    if (c->merged_n < HERD_MAX_REPLICAS) /* else it offers it again, and is told then */
        c->merged[c->merged_n++] =
            (struct repl_merged){from, hlc, writer, version, c->version + 1};
}

/* Whether every member of c's set acknowledged `version`; with `but_full`,
 * every one but those that refused for want of room. */
static int set_holds(const dchild_t *c, uint64_t version, int but_full)
{
    for (size_t i = 0; i < c->set_n; i++)
        if (c->set_acked[i] < version && !(but_full && c->set_full[i]))
            return 0;
    return 1;
}

/* The replies held up to the version every member of the set acknowledged
 * go (members with no room for the state left out: the replies say fewer
 * copies, counted in unreplicated); once the set holds the last put,
 * members that left it drop theirs. */
static void release_acked(dsup_t *d, dchild_t *c)
{
    uint64_t upto = c->version;
    unsigned copies = 1, full = 0;
    for (size_t i = 0; i < c->set_n; i++) {
        if (c->set_full[i]) {
            full++;
            continue;
        }
        copies++;
        if (c->set_acked[i] < upto)
            upto = c->set_acked[i];
    }
    size_t held = full ? herd_gate_held(d->node, c->pid) : 0;
    herd_gate_release(d->node, c->pid, upto, copies); /* those of the set with room hold upto */
    if (full)
        d->repl_stats.unreplicated += held - herd_gate_held(d->node, c->pid);
    if (upto > c->released)
        c->released = upto;
    if (upto == c->version && !full)
        c->unreplicated = 0; /* the set holds all there is: what went alone is covered */
    confirm_merged(d, c, upto);
    if (upto == c->version && c->drop_n) {
        herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' version %llu held by its %u member(s) "
                 "(first %016llx): %u former one(s) drop theirs", herd_node_name(d->node), c->name,
                 (unsigned long long)upto, c->set_n, (unsigned long long)c->set[0], c->drop_n);
        for (size_t i = 0; i < c->drop_n; i++)
            send_drop(d, c->drop[i], c);
        c->drop_n = 0;
    }
}

/* The state could not be put: its replies go, counted. */
static void put_failed(dsup_t *d, dchild_t *c, uint64_t version)
{
    size_t held = herd_gate_held(d->node, c->pid);
    d->repl_stats.unreplicated += held;
    herd_gate_release(d->node, c->pid, version, 1); /* this node's copy alone */
    c->unreplicated = held > 0;
}

static void put_lineage(wire_writer_t *w, const replica_lineage_t *lin)
{
    wire_put_u64(w, lin->writer);
    wire_put_u64(w, lin->base_writer);
    wire_put_u64(w, lin->base_version);
}

int repl_get_lineage(wire_reader_t *r, replica_lineage_t *lin)
{
    lin->writer = wire_get_u64(r);
    lin->base_writer = wire_get_u64(r);
    lin->base_version = wire_get_u64(r);
    return lin->writer == 0 ? HERD_EBADFRAME : 0;
}

replica_lineage_t repl_copy_lineage(uint64_t writer, uint64_t version)
{
    return (replica_lineage_t){writer, writer, version};
}

void repl_put_copy(wire_writer_t *w, uint8_t kind, const char *name, const uint64_t *query,
                   uint8_t has, uint64_t hlc, uint64_t version, const replica_lineage_t *lin,
                   const uint8_t *bytes, size_t len)
{
    wire_put_u8(w, kind);
    wire_put_str(w, name);
    if (query) {
        wire_put_u64(w, *query);
        wire_put_u8(w, has);
    }
    wire_put_u64(w, hlc);
    wire_put_u64(w, version);
    put_lineage(w, lin);
    wire_put_bytes(w, bytes, len);
}

int repl_send_copy(dsup_t *d, uint64_t to, uint8_t kind, const char *name, const uint64_t *query,
                   uint8_t has, uint64_t hlc, uint64_t version, const replica_lineage_t *lin,
                   const uint8_t *bytes, size_t len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    repl_put_copy(&w, kind, name, query, has, hlc, version, lin, bytes, len);
    return repl_send(d, to, &w);
}

/* ---- batches ------------------------------------------------------------------------------ */

static int batch_send(dsup_t *d, repl_batch_t *b)
{
    int rc = b->entries ? repl_send(d, b->to, &b->w) : 0;
    if (!b->entries)
        wire_writer_fini(&b->w);
    wire_writer_init(&b->w);
    b->entries = 0;
    return rc;
}

wire_writer_t *repl_batch_for(dsup_t *d, repl_batches_t *bs, uint64_t to, size_t need)
{
    repl_batch_t *b = NULL;
    for (size_t i = 0; i < bs->n && b == NULL; i++)
        if (bs->b[i].to == to)
            b = &bs->b[i];
    if (b == NULL) {
        if (bs->n == bs->cap) {
            size_t cap = bs->cap ? bs->cap * 2 : 8;
            repl_batch_t *more = realloc(bs->b, cap * sizeof(*more));
            if (more == NULL)
                return NULL;
            bs->b = more;
            bs->cap = cap;
        }
        b = &bs->b[bs->n++];
        b->to = to;
        b->entries = 0;
        wire_writer_init(&b->w);
    }
    if (b->entries && b->w.len + need > REPL_BATCH_MAX && batch_send(d, b) != 0)
        d->repl_stats.send_failed++; /* its puts are put again (retry), its acks time out */
    if (b->entries == 0)
        wire_put_u8(&b->w, bs->kind);
    b->entries++;
    return &b->w;
}

size_t repl_batches_send(dsup_t *d, repl_batches_t *bs)
{
    size_t failed = 0;
    for (size_t i = 0; i < bs->n; i++) {
        failed += batch_send(d, &bs->b[i]) != 0;
        wire_writer_fini(&bs->b[i].w);
    }
    free(bs->b);
    *bs = (repl_batches_t){.kind = bs->kind};
    return failed;
}

/* What one put of a child sends: its whole state, and the change since
 * the version put before (`on`; 0: none), each written only when needed. */
typedef struct put_out {
    uint64_t on;
    uint8_t *delta, *whole;
    size_t delta_len, whole_len;
} put_out_t;

/* Whether member i of c's set gets o's change (it was put o->on by this
 * run) rather than the whole state. */
static int gets_delta(const dchild_t *c, size_t i, const put_out_t *o)
{
    return o->on && c->set_sent[i] == o->on;
}

/* Put version v to every member of c's set, as a change or whole (o): into
 * `puts` (one batch a member), or, without batches, one message each (the
 * whole state only). */
static void put_to_set(dsup_t *d, dchild_t *c, uint64_t v, const put_out_t *o,
                       repl_batches_t *puts)
{
    for (size_t i = 0; i < c->set_n; i++) {
        int delta = puts && gets_delta(c, i, o), rc;
        const uint8_t *bytes = delta ? o->delta : o->whole;
        size_t len = delta ? o->delta_len : o->whole_len;
        if (puts) {
            wire_writer_t *w = repl_batch_for(d, puts, c->set[i], strlen(c->name) + 64 + len);
            if (w) {
                wire_put_str(w, c->name);
                wire_put_u64(w, c->pid.serial);
                wire_put_u64(w, c->hlc);
                wire_put_u64(w, v);
                wire_put_u64(w, delta ? o->on : 0);
                put_lineage(w, &c->lin);
                wire_put_bytes(w, bytes ? bytes : (const uint8_t *)"", len);
            }
            rc = w ? 0 : HERD_ENOMEM;
        } else {
            rc = repl_send_copy(d, c->set[i], REPL_PUT, c->name, NULL, 0, c->hlc, v, &c->lin,
                                bytes, len);
        }
        if (rc != 0) {
            c->set_sent[i] = 0; /* the whole state next time */
            d->repl_stats.send_failed++;
            if (!c->repl_retry) /* put again at the next tick */
                c->repl_retry = 1, d->repl->retries++;
        } else {
            c->set_sent[i] = v;
            d->repl_stats.puts_out++;
            d->repl_stats.bytes_out += len;
            d->repl_stats.deltas_out += (uint64_t)delta;
            d->repl_stats.delta_bytes_out += delta ? len : 0;
        }
    }
}

/* Write what c's put needs into o: the change since the version put before
 * (`prev`), when its behaviour writes one (every put asks for it, so the
 * next change follows this version); the whole state when a member cannot
 * take the change. 0, or why nothing can be put (the state is too big or
 * could not be written). */
static int write_put(dsup_t *d, const dchild_t *c, uint64_t prev, put_out_t *o)
{
    *o = (put_out_t){0};
    const herd_behaviour_t *b = dsup_behaviour(d, c->service);
    int writes_changes = b && b->delta_out && b->delta_apply; /* no process lookup else */
    if (writes_changes &&
        herd_state_delta_out(d->node, c->pid, &o->delta, &o->delta_len) == 0 &&
        o->delta_len <= REPL_STATE_MAX) {
        o->on = prev;
    } else {
        free(o->delta);
        o->delta = NULL;
    }
    int whole = 0;
    for (size_t i = 0; i < c->set_n && !whole; i++)
        whole = !gets_delta(c, i, o);
    if (!whole)
        return 0;
    int rc = herd_state_out(d->node, c->pid, &o->whole, &o->whole_len);
    if (rc == 0 && o->whole_len > REPL_STATE_MAX) {
        d->repl_stats.too_big++;
        rc = HERD_ETOOBIG;
    }
    return rc;
}

/* Whether a member is up (or suspect, or draining) in start `inc`. */
static int member_live(dsup_t *d, uint64_t id, uint64_t inc);

/* A strict child refuses calls while fewer live members than it asks for
 * can keep a copy (its set as last computed). */
static void update_refusal(dsup_t *d, dchild_t *c)
{
    if (!c->strict || c->copies <= 1)
        return;
    size_t live = 1;
    for (size_t i = 0; i < c->set_n; i++)
        live += member_live(d, c->set[i], c->set_inc[i]);
    int refuse = live < c->copies;
    if (refuse == c->refusing || herd_gate_refuse_calls(d->node, c->pid,
                                                          refuse ? HERD_EUNAVAILABLE : 0) != 0)
        return;
    c->refusing = refuse;
    d->repl_stats.refusing += (uint64_t)refuse;
    herd_log(HERD_LOG_INFO, "replicas", "'%s' %s calls: %zu of %u copies can be kept", c->name,
             refuse ? "refuses" : "takes", live, c->copies);
}

/* c's set now: computed again only when the membership or the local
 * services changed since it last was. */
static void set_refresh(dsup_t *d, dchild_t *c)
{
    uint64_t gen = herd_cluster_generation(d->node);
    if (c->set_gen == gen && gen != 0 && c->set_services == d->service_count)
        return;
    uint64_t set[HERD_MAX_REPLICAS - 1];
    set_update(d, c, set, replica_set(d, c, set));
    c->set_gen = gen;
    c->set_services = d->service_count;
}

static void put_state(dsup_t *d, dchild_t *c, repl_batches_t *puts)
{
    set_refresh(d, c);
    update_refusal(d, c);
    uint64_t prev = c->version, v = repl_mark(d, c);
    if (v == 0)
        return; /* the process is gone */
    c->version = v;
    c->put_at = herd_node_now(d->node);
    if (c->set_n == 0) {
        put_failed(d, c, v);
        return;
    }
    put_out_t o;
    int rc = write_put(d, c, prev, &o);
    if (rc) {
        herd_log(HERD_LOG_WARN, "replicas", "'%s' version %llu not put: %s", c->name,
                 (unsigned long long)v, herd_strerror(rc));
        for (size_t i = 0; i < c->set_n; i++)
            c->set_sent[i] = 0; /* a change would follow a version never put */
        put_failed(d, c, v);
    } else {
        herd_log(HERD_LOG_DEBUG, "replicas", "%s: '%s' version %llu put to %u member(s), first "
                 "%016llx", herd_node_name(d->node), c->name, (unsigned long long)v, c->set_n,
                 (unsigned long long)c->set[0]);
        put_to_set(d, c, v, &o, puts);
    }
    free(o.delta);
    free(o.whole);
}

static void retry_all(dsup_t *d);

/* ---- batches in flight (REPL_INFLIGHT_MS) ---------------------------------------------- */

/* Whether a batch of puts to `member` waits for its acknowledgements (one
 * older than REPL_INFLIGHT_MS no longer counts, and is forgotten). */
static int inflight_to(dsup_t *d, uint64_t member, uint64_t now)
{
    repl_t *r = d->repl;
    uintptr_t at = (uintptr_t)u64map_get(&r->inflight, member);
    if (at == 0)
        return 0;
    if (now - (at - 1) < REPL_INFLIGHT_MS)
        return 1;
    u64map_del(&r->inflight, member);
    d->repl_stats.inflight_expired++;
    return 0;
}

/* The member of c's set that has a batch in flight (c waits for it), or 0. */
static uint64_t set_waits(dsup_t *d, const dchild_t *c, uint64_t now)
{
    for (size_t i = 0; i < c->set_n; i++)
        if (inflight_to(d, c->set[i], now))
            return c->set[i];
    return 0;
}

/* The batches about to go are in flight from now. A member that cannot be
 * recorded (out of memory) is simply not waited for. */
static void inflight_mark(dsup_t *d, const repl_batches_t *puts, uint64_t now)
{
    repl_t *r = d->repl;
    for (size_t i = 0; i < puts->n; i++) {
        if (puts->b[i].entries == 0)
            continue;
        d->repl_stats.batches_out++;
        if (u64map_put(&r->inflight, puts->b[i].to, (void *)(uintptr_t)(now + 1)) == 0 &&
            now + REPL_INFLIGHT_MS < r->next_expiry)
            r->next_expiry = now + REPL_INFLIGHT_MS;
    }
}

/* After a walk of the whole list: when the first batch still in flight
 * expires (UINT64_MAX: none; an expired one left in the map waits for
 * nothing already). */
static void inflight_next_expiry(repl_t *r, uint64_t now)
{
    r->next_expiry = UINT64_MAX;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&r->inflight, &cursor)) != NULL;) {
        uint64_t ends = (uintptr_t)s->value - 1 + REPL_INFLIGHT_MS;
        if (ends > now && ends < r->next_expiry)
            r->next_expiry = ends;
    }
}

/* `from`'s acknowledgements came: the next batch to it may go. */
static void inflight_done(dsup_t *d, uint64_t from)
{
    repl_t *r = d->repl;
    if (u64map_del(&r->inflight, from) == NULL)
        return;
    r->rescan = 1; /* the children that waited for it may go */
    if (r->dirty_n && !uv_is_active((uv_handle_t *)&r->prepare))
        uv_prepare_start(&r->prepare, on_prepare);
}

void replicas_flush(dsup_t *d)
{
    repl_t *r = d->repl;
    if (r == NULL)
        return;
    size_t n = r->dirty_n;
    repl_dirty_t *list = r->dirty;
    uint64_t now = herd_node_now(d->node);
    int whole = r->rescan || now >= r->next_expiry;
    size_t kept = whole ? 0 : r->waiting; /* those still wait: untouched */
    int held = 0;
    repl_batches_t puts = {.kind = REPL_PUTS};
    for (size_t i = kept; i < n; i++) {
        repl_dirty_t e = list[i];
        if (e.waits_on && inflight_to(d, e.waits_on, now)) {
            list[kept++] = e; /* still waits for that batch: no lookup */
            d->repl_stats.puts_waited++;
            continue;
        }
        dchild_t *c = u64map_get(&d->by_serial, e.serial);
        if (c == NULL || c->pid.serial != e.serial || !c->repl_dirty)
            continue;
        if (c->state != HERD_CHILD_RUNNING || herd_is_frozen(d->node, c->pid)) {
            list[kept++] = (repl_dirty_t){.serial = e.serial}; /* moving or merging: put */
            held = 1;                                          /* once it runs again */
            continue;
        }
        if ((e.waits_on = set_waits(d, c, now)) != 0) {
            list[kept++] = e; /* the next batch: after the acknowledgements */
            d->repl_stats.puts_waited++;
            continue;
        }
        c->repl_dirty = 0;
        put_state(d, c, &puts); /* runs no handler: the list does not grow meanwhile */
    }
    if (whole)
        inflight_next_expiry(r, now);
    inflight_mark(d, &puts, now);
    r->waiting = kept;
    r->rescan = held; /* a moving or frozen child is looked at each iteration */
    /* a batch the cluster refused: its children are put again (the tick) */
    if (repl_batches_send(d, &puts))
        retry_all(d);
    r->dirty_n = kept;
    if (kept == 0)
        uv_prepare_stop(&r->prepare);
}

/* A batch of puts was refused as a whole: every replicated child puts again
 * at the next tick (the ones it held included). */
static void retry_all(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c; c = c->twin) {
            if (c->copies <= 1)
                continue;
            memset(c->set_sent, 0, sizeof(c->set_sent)); /* which went is not known */
            if (!c->repl_retry)
                c->repl_retry = 1, d->repl->retries++;
        }
}

/* Children whose put a send refused put again; a move that ended gives its
 * child back to the flush. From the supervisor's tick. */
void replicas_tick(dsup_t *d, uint64_t now)
{
    repl_t *r = d->repl;
    int look = r && now - r->last_unacked >= REPL_ACK_WAIT_MS / 2;
    if (r == NULL || (r->retries == 0 && !look))
        return;
    r->retries = 0;
    if (look)
        r->last_unacked = now;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c; c = c->twin) {
            int unacked = look && c->copies > 1 && c->state == HERD_CHILD_RUNNING &&
                          !set_holds(c, c->version, 0) && now - c->put_at >= REPL_ACK_WAIT_MS;
            if (unacked)
                d->repl_stats.reputs++;
            if (c->repl_retry || unacked) {
                c->repl_retry = 0;
                mark_dirty(d, c);
            }
        }
}

/* ---- acknowledgements and membership ------------------------------------------------------ */

static void take_ack(dsup_t *d, uint64_t from, uint64_t inc, dchild_t *c, uint64_t hlc,
                     uint64_t version, uint8_t stored);

static void on_ack(dsup_t *d, uint64_t from, uint64_t inc, wire_reader_t *rd,
                   const char *name)
{
    uint64_t hlc = wire_get_u64(rd), version = wire_get_u64(rd);
    uint8_t stored = wire_get_u8(rd);
    if (wire_reader_done(rd) || stored > REPL_ACK_NO_ROOM) {
        d->repl_stats.malformed++;
        return;
    }
    d->repl_stats.acks_in++;
    take_ack(d, from, inc, dsup_find(d, name), hlc, version, stored);
}

/* The next entry of a batch of acknowledgements; 0, or HERD_EBADFRAME. */
static int next_ack(wire_reader_t *rd, uint64_t *token, uint64_t *hlc, uint64_t *version,
                    uint8_t *stored)
{
    *token = wire_get_u64(rd);
    *hlc = wire_get_u64(rd);
    *version = wire_get_u64(rd);
    *stored = wire_get_u8(rd);
    return rd->err || *token == 0 || *stored > REPL_ACK_NO_ROOM ? HERD_EBADFRAME : 0;
}

/* A batch of acknowledgements: (u64 token, u64 hlc, u64 version, u8
 * stored) to the end; one malformed entry and none counts. The token is
 * the serial of the process the put came from: a child that restarted or
 * moved since has another and the ack is late. */
static void on_acks(dsup_t *d, uint64_t from, uint64_t inc, wire_reader_t *rd)
{
    uint64_t token, hlc, version;
    uint8_t stored;
    wire_reader_t check = *rd;
    while (check.off < check.len)
        if (next_ack(&check, &token, &hlc, &version, &stored) != 0) {
            d->repl_stats.malformed++;
            return;
        }
    inflight_done(d, from);
    while (rd->off < rd->len && next_ack(rd, &token, &hlc, &version, &stored) == 0) {
        dchild_t *c = u64map_get(&d->by_serial, token);
        d->repl_stats.acks_in++;
        take_ack(d, from, inc, c && c->pid.serial == token ? c : NULL, hlc, version, stored);
    }
}

/* Members that refused c's last put for want of room. */
static unsigned members_full(const dchild_t *c)
{
    unsigned n = 0;
    for (size_t i = 0; i < c->set_n; i++)
        n += c->set_full[i];
    return n;
}

/* After an acknowledgement: an arriving child is accepted once its set
 * (those with room) holds its state; a running one lets replies go. */
static void took_ack(dsup_t *d, dchild_t *c)
{
    if (c->state == HERD_CHILD_ARRIVING) {
        if (c->accept_due && set_holds(c, c->version, 1))
            c->accept_due = 0, handoff_accept(d, c, 1u + c->set_n - members_full(c));
        return;
    }
    release_acked(d, c);
}

static void take_ack(dsup_t *d, uint64_t from, uint64_t inc, dchild_t *c, uint64_t hlc,
                     uint64_t version, uint8_t stored)
{
    if (c == NULL || c->hlc != hlc || c->copies <= 1)
        return; /* late: the child went, or is another registration now */
    int at = in_set(c->set, c->set_n, from);
    if (at < 0 || c->set_inc[at] != inc)
        return; /* not in the set, or a start of it before the one put to */
    if (stored == REPL_ACK_NO_ROOM) { /* its replies go without it; put again in a while */
        c->set_sent[at] = 0;
        if (!c->set_full[at])
            d->repl_stats.members_full++;
        c->set_full[at] = 1;
        took_ack(d, c);
        return;
    }
    if (stored != 1) { /* put again later, whole */
        c->set_sent[at] = 0;
        if (stored == REPL_ACK_GAP) /* a change its copy did not follow */
            d->repl_stats.delta_gaps++;
        else /* it holds a newer copy */
            d->repl_stats.refused++;
        if (!c->repl_retry)
            c->repl_retry = 1, d->repl->retries++;
        return;
    }
    c->set_full[at] = 0;
    if (version > c->set_acked[at])
        c->set_acked[at] = version;
    took_ack(d, c);
}

void replicas_on_member(dsup_t *d)
{
    if (d->repl == NULL)
        return;
    /* a member that went waits for nothing; one that came back starts anew */
    u64map_fini(&d->repl->inflight);
    u64map_init(&d->repl->inflight);
    d->repl->rescan = 1;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c; c = c->twin) {
            /* an arriving copy put its state to the set of the membership it
             * arrived in: a set that changed since gets it once it runs */
            if (c->copies <= 1 ||
                (c->state != HERD_CHILD_RUNNING && c->state != HERD_CHILD_ARRIVING))
                continue;
            uint64_t set[HERD_MAX_REPLICAS - 1];
            size_t n = replica_set(d, c, set);
            int same = n == c->set_n;
            for (size_t i = 0; same && i < n; i++) {
                int at = in_set(c->set, c->set_n, set[i]);
                same = at >= 0 &&
                       c->set_inc[at] == herd_cluster_member_incarnation(d->node, set[i]);
            }
            if (!same)
                mark_dirty(d, c);
            update_refusal(d, c); /* a member of its set went down, or came back */
        }
}

void replicas_on_app(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                     size_t len)
{
    dsup_t *d = data;
    if (msg == NULL || d->repl == NULL) { /* altered on the way: the sender repairs */
        d->repl_stats.malformed++;
        return;
    }
    wire_reader_t r;
    wire_reader_init(&r, msg, len);
    uint8_t kind = wire_get_u8(&r);
    if (kind == REPL_PUTS || kind == REPL_ACKS) { /* batches: entries to the end */
        if (r.off >= r.len) /* never sent empty */
            d->repl_stats.malformed++;
        else if (kind == REPL_PUTS)
            replica_on_puts(d, node, &r);
        else
            on_acks(d, node, incarnation, &r);
        return;
    }
    char name[HERD_NAME_MAX + 1];
    wire_get_str(&r, name, sizeof(name));
    if (!name[0]) {
        d->repl_stats.malformed++;
        return;
    }
    switch (kind) {
    case REPL_PUT: replica_on_put(d, node, &r, name); break;
    case REPL_ACK: on_ack(d, node, incarnation, &r, name); break;
    case REPL_DROP: replica_on_drop(d, node, &r, name); break;
    case REPL_QUERY: replica_on_query(d, node, &r, name); break;
    case REPL_HAVE: replica_on_have(d, node, &r, name); break;
    case REPL_MERGE: on_merge(d, node, &r, name); break;
    case REPL_MERGED: replica_on_merged(d, &r, name); break;
    default: d->repl_stats.malformed++;
    }
}

/* ---- moves ------------------------------------------------------------------------------ */

int replicas_arrival(dsup_t *d, dchild_t *c, const uint8_t *state, size_t len,
                     uint64_t base_writer, uint64_t version)
{
    replica_lineage_t base = {0, base_writer, version};
    if (c->copies <= 1 || d->repl == NULL || gate(d, c, &base, version) != 0)
        return 1;
    set_refresh(d, c);
    c->drop_n = 0; /* a new child here: no earlier set of its to drop */
    update_refusal(d, c);
    if (c->set_n == 0 || len > REPL_STATE_MAX) {
        if (len > REPL_STATE_MAX)
            d->repl_stats.too_big++;
        return 1;
    }
    /* version 0: a state never put before; its first version here is 1 */
    if (version == 0)
        c->version = repl_mark(d, c);
    put_out_t o = {.whole = (uint8_t *)(uintptr_t)(state ? state : (const uint8_t *)""),
                   .whole_len = len};
    put_to_set(d, c, c->version, &o, NULL);
    c->accept_due = 1;
    return 0;
}

void replicas_moved(dsup_t *d, dchild_t *c)
{
    if (c->copies <= 1 || d->repl == NULL)
        return;
    /* the new owner and its set hold them (it accepted only then) */
    herd_gate_release(d->node, c->pid, UINT64_MAX, c->moved_copies);
    uint64_t theirs[HERD_MAX_REPLICAS - 1];
    size_t n = replica_set_of(d, c->name, c->service, c->copies, c->peer, theirs);
    for (size_t i = 0; i < c->set_n; i++)
        if (c->set[i] != c->peer && in_set(theirs, n, c->set[i]) < 0)
            send_drop(d, c->set[i], c);
}

/* ---- settled ------------------------------------------------------------------------------ */

/* Whether start `inc` of a member is up (or suspect, or draining): it
 * answers a query. */
static int member_live(dsup_t *d, uint64_t id, uint64_t inc)
{
    herd_member_info_t m;
    return herd_cluster_member(d->node, id, &m) == 0 && m.incarnation == inc &&
           m.state != HERD_MEMBER_DOWN && m.state != HERD_MEMBER_LEFT;
}

/* The live copies (this node's included) holding every version of c whose
 * replies went. */
static size_t copies_holding(dsup_t *d, const dchild_t *c)
{
    if (c->unreplicated)
        return 1;
    size_t holding = 1;
    for (size_t i = 0; i < c->set_n; i++)
        holding += c->set_acked[i] >= c->released && member_live(d, c->set[i], c->set_inc[i]);
    return holding;
}

/* Whether every version of c whose replies went is held by as many live
 * copies (this node's included) as it asks for, or as there are members
 * providing its service when fewer: then one crash leaves one a query
 * finds. Puts under way for newer versions do not matter: their replies
 * wait. */
static int child_settled(dsup_t *d, const dchild_t *c)
{
    if (c->copies <= 1 || c->state == HERD_CHILD_ARRIVING)
        return 1; /* an arriving copy: its old node's set holds what was answered */
    size_t want = c->copies;
    const herd_ring_t *ring = svcring_get(d, d->services[c->service].name);
    if (ring && herd_ring_member_count(ring) < want)
        want = herd_ring_member_count(ring);
    return copies_holding(d, c) >= want;
}

void replicas_view(dsup_t *d, const dchild_t *c, herd_child_view_t *v)
{
    v->copies = c->copies ? c->copies : 1;
    v->replica_count = c->set_n;
    memcpy(v->replicas, c->set, c->set_n * sizeof(*c->set));
    memcpy(v->replica_acked, c->set_acked, c->set_n * sizeof(*c->set_acked));
    v->version = c->version;
    v->released = c->released;
    /* fewer copies than asked for, whatever the reason (not enough members) */
    v->under_replicated = c->copies > 1 && c->state != HERD_CHILD_ARRIVING &&
                          copies_holding(d, c) < c->copies;
}

int herd_child_replica_nodes(herd_node_t *n, const char *name, char (*out)[65], size_t cap)
{
    dsup_t *d = dsup_of(n);
    dspec_t spec;
    int service;
    if (d == NULL || name == NULL || dspec_of(d, name, &spec, &service) != 0)
        return HERD_ENOENT;
    const herd_ring_t *ring = svcring_get(d, d->services[service].name);
    const char *owners[HERD_MAX_REPLICAS];
    uint8_t copies = replicas_wanted(d, &spec, service);
    int k = ring ? herd_ring_owners(ring, name, strlen(name), owners, copies) : HERD_ENOENT;
    if (k < 0)
        return HERD_ENOENT;
    for (int i = 0; i < k && (size_t)i < cap; i++)
        snprintf(out[i], 65, "%s", owners[i]);
    return k < (int)cap ? k : (int)cap;
}

int herd_repl_settled(herd_node_t *n)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL || d->repl == NULL)
        return 1;
    if (d->repl->queries.count)
        return 0; /* a child about to start may take the one copy there is */
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (const dchild_t *c = s->value; c; c = c->twin)
            if (!child_settled(d, c))
                return 0;
    return 1;
}
