/*
 * registry_sync.c - how registry replicas reach each other: deltas shipped
 * once per loop iteration, the digest exchange for a node that arrives or
 * returns (digest.h), and an unregister made for another node's process.
 * Message formats are in registry.c's head comment.
 */
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "log.h"
#include "registry_int.h"

/* ---- shipping --------------------------------------------------------------------- */

/* What this node exchanged with one peer (ringctl crdt). */
static herd_registry_peer_t *peer_of(registry_t *g, uint64_t id)
{
    herd_registry_peer_t *p = u64map_get(&g->peers, id);
    if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL && u64map_put(&g->peers, id, p) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

void reg_ship(registry_t *g, const awmap_t *m, uint8_t kind, uint64_t only_to)
{
    herd_node_t *n = g->node;
    int count = herd_cluster_members(n, NULL, 0);
    herd_member_info_t *members = count > 1 ? calloc((size_t)count, sizeof(*members)) : NULL;
    if (members == NULL)
        return;
    count = herd_cluster_members(n, members, (size_t)count);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, kind);
    awmap_encode(m, &w);
    for (int i = 0; i < count && w.err == 0; i++) {
        uint64_t id = herd_node_id_of(members[i].name);
        /* a down member may be partitioned away: its stream keeps what we send */
        if (id == g->self_node || (only_to && id != only_to) ||
            members[i].state == HERD_MEMBER_LEFT)
            continue;
        if (herd_cluster_send_app(n, id, REGISTRY_APP, w.buf, w.len) == 0) {
            herd_registry_peer_t *p = peer_of(g, id);
            g->stats.deltas_out++;
            if (p)
                p->deltas_out++;
        }
    }
    wire_writer_fini(&w);
    free(members);
}

int reg_ship_to(registry_t *g, const awmap_t *m, uint64_t to)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_DELTA);
    awmap_encode(m, &w);
    int rc = w.err ? HERD_ENOMEM : herd_cluster_send_app(g->node, to, REGISTRY_APP, w.buf, w.len);
    wire_writer_fini(&w);
    if (rc == 0) {
        herd_registry_peer_t *p = peer_of(g, to);
        g->stats.deltas_out++;
        if (p)
            p->deltas_out++;
    }
    return rc;
}

/* Ship the pending interval and start a new one. */
void reg_flush_now(registry_t *g)
{
    if (g->pending == NULL || awmap_is_empty(g->pending))
        return;
    awmap_t *next = awmap_new_delta();
    if (next == NULL)
        return; /* keep accumulating; the next flush tries again */
    reg_ship(g, g->pending, SYNC_DELTA, 0);
    awmap_free(g->pending);
    g->pending = next;
}

/* ---- digest sync (digest.h) ------------------------------------------------------ */

static void send_to(registry_t *g, uint64_t to, wire_writer_t *w)
{
    if (w->err == 0)
        herd_cluster_send_app(g->node, to, REGISTRY_APP, w->buf, w->len);
    wire_writer_fini(w);
}

/* Node `to` arrived: offer it our digest; it asks for what differs. With
 * `ask_back`, it offers its own in return: the two may not have seen each
 * other leave (a one-sided partition), so the one that notices syncs both. */
void reg_sync_offer(registry_t *g, uint64_t to, int ask_back)
{
    digest_t d;
    digest_of(g->map, &d);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_DIGEST);
    wire_put_u8(&w, (uint8_t)(ask_back != 0));
    digest_encode(&d, &w);
    send_to(g, to, &w);
    g->stats.full_syncs_out++;
    herd_registry_peer_t *p = peer_of(g, to);
    if (p) {
        p->digest_syncs++;
        p->last_sync_ms = herd_node_wall_ms(g->node);
    }
}

static void sync_on_digest(registry_t *g, uint64_t from, wire_reader_t *r)
{
    digest_t theirs, mine;
    uint8_t ask_back = wire_get_u8(r);
    if (digest_decode(r, &theirs) != 0 || wire_reader_done(r) != 0 || ask_back > 1) {
        g->stats.rejected++;
        return;
    }
    if (ask_back)
        reg_sync_offer(g, from, 0);
    digest_of(g->map, &mine);
    uint8_t want[DIGEST_BUCKETS];
    size_t n = digest_diff(&theirs, &mine, want);
    if (n == 0)
        return;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_WANT);
    wire_put_u16(&w, (uint16_t)n);
    wire_put_raw(&w, want, n);
    send_to(g, from, &w);
}

static void send_dots(registry_t *g, uint64_t to, const uint8_t *buckets, size_t n)
{
    awmap_t *dots = digest_dots(g->map, buckets, n);
    if (dots == NULL)
        return;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_DOTS);
    wire_put_u16(&w, (uint16_t)n);
    wire_put_raw(&w, buckets, n);
    awmap_encode(dots, &w);
    awmap_free(dots);
    send_to(g, to, &w);
}

/* They want our dots in some buckets: send them in groups of about
 * REGISTRY_BATCH_KEYS entries, so no message outgrows a frame. */
static void sync_on_want(registry_t *g, uint64_t from, wire_reader_t *r)
{
    uint16_t n = wire_get_u16(r);
    uint8_t want[DIGEST_BUCKETS];
    for (uint16_t i = 0; i < n && i < DIGEST_BUCKETS; i++)
        want[i] = wire_get_u8(r);
    if (n > DIGEST_BUCKETS || wire_reader_done(r) != 0) {
        g->stats.rejected++;
        return;
    }
    digest_t mine;
    digest_of(g->map, &mine);
    size_t start = 0, entries = 0;
    for (size_t i = 0; i < n; i++) {
        entries += mine.count[want[i]];
        if (entries >= REGISTRY_BATCH_KEYS || i + 1 == n) {
            send_dots(g, from, want + start, i + 1 - start);
            start = i + 1;
            entries = 0;
        }
    }
}

typedef struct answer_ctx {
    registry_t *g;
    uint64_t to;
} answer_ctx_t;

static void answer_piece(void *data, const awmap_t *piece)
{
    answer_ctx_t *c = data;
    reg_ship(c->g, piece, SYNC_DELTA, c->to);
}

static void sync_on_dots(registry_t *g, uint64_t from, wire_reader_t *r)
{
    uint16_t n = wire_get_u16(r);
    uint8_t buckets[DIGEST_BUCKETS];
    for (uint16_t i = 0; i < n && i < DIGEST_BUCKETS; i++)
        buckets[i] = wire_get_u8(r);
    awmap_t *dots = NULL;
    if (n > DIGEST_BUCKETS || r->err || awmap_decode(r, &dots) != 0 ||
        wire_reader_done(r) != 0) {
        g->stats.rejected++;
        awmap_free(dots);
        return;
    }
    answer_ctx_t c = {g, from};
    digest_answer(g->map, dots, buckets, n, REGISTRY_BATCH_KEYS, answer_piece, &c);
    awmap_free(dots);
}

void reg_send_unregister(registry_t *g, herd_pid_t pid, const char *name, uint64_t hlc)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_UNREGISTER);
    wire_put_u64(&w, pid.serial);
    wire_put_bytes(&w, name, strlen(name));
    wire_put_u64(&w, hlc);
    send_to(g, pid.node, &w);
}

int reg_send_merge(registry_t *g, uint64_t to, const char *name, uint64_t loser,
                   uint64_t attempt, const uint8_t *state, size_t len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_MERGE);
    wire_put_str(&w, name);
    wire_put_u64(&w, loser);
    wire_put_u64(&w, attempt);
    wire_put_bytes(&w, state, len);
    int rc = w.err ? HERD_ENOMEM
                   : herd_cluster_send_app(g->node, to, REGISTRY_APP, w.buf, w.len);
    wire_writer_fini(&w);
    return rc;
}

/* The winner is whoever holds the name here now (a move this node made is
 * known here first). Only a live, unfrozen process of this node is merged
 * into (one frozen for a move or its own merge could carry the state to a
 * node that goes before it arrives; the loser then resumes and tries again,
 * and the handoff moves no process with a merge still in its mailbox), so
 * "merged" is said by the node that put the state in the mailbox of the
 * holder that will run it, never by one that passed it on. A holder on
 * another node is named back to the loser's node, which sends the state
 * there; with no holder here, or the loser's own node as the holder (it has
 * not heard of the winner the loser's node saw), nothing is merged and the
 * loser resumes: the conflict is judged again once the replicas agree. */
static void sync_on_merge(registry_t *g, uint64_t from, wire_reader_t *r)
{
    char name[HERD_NAME_MAX + 1];
    const uint8_t *state;
    wire_get_str(r, name, sizeof(name));
    uint64_t loser = wire_get_u64(r);
    uint64_t attempt = wire_get_u64(r);
    size_t len = wire_get_bytes(r, &state);
    herd_pid_t pid = HERD_PID_NONE;
    if (wire_reader_done(r) != 0 || !name[0]) {
        g->stats.rejected++;
        return;
    }
    int ok = 0;
    if (herd_whereis(g->node, name, &pid, NULL) != 0 || pid.node == from ||
        (pid.node == g->self_node && herd_is_frozen(g->node, pid)))
        pid = HERD_PID_NONE; /* a frozen holder is moving or merging itself: later */
    else if (pid.node == g->self_node)
        ok = herd_merge_into(g->node, pid, state, len) == 0;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_MERGED);
    wire_put_u64(&w, loser);
    wire_put_u64(&w, attempt);
    wire_put_u8(&w, (uint8_t)ok);
    wire_put_u64(&w, pid.node);
    wire_put_u64(&w, pid.incarnation);
    wire_put_u64(&w, pid.serial);
    send_to(g, from, &w);
}

static void sync_on_merged(registry_t *g, wire_reader_t *r)
{
    uint64_t loser = wire_get_u64(r);
    uint64_t attempt = wire_get_u64(r);
    int ok = wire_get_u8(r);
    herd_pid_t holder;
    holder.node = wire_get_u64(r);
    holder.incarnation = wire_get_u64(r);
    holder.serial = wire_get_u64(r);
    if (wire_reader_done(r) != 0) {
        g->stats.rejected++;
        return;
    }
    if (attempt == 0) { /* never sent: 0 stands for "whichever is current" */
        g->stats.rejected++;
        return;
    }
    reg_merged(g, loser, attempt, ok, holder);
}

/* Another node removed our process's registration of a name made at `hlc`:
 * the process lets go of it, and entries of that registration this node
 * holds go too (one with newer metadata the sender had not received yet).
 * A newer registration of the same pid (another time: made after this
 * message was sent) stays. */
static void sync_on_unregister(registry_t *g, uint64_t from, wire_reader_t *r)
{
    (void)from;
    uint64_t serial = wire_get_u64(r);
    const uint8_t *name;
    size_t len = wire_get_bytes(r, &name);
    uint64_t hlc = wire_get_u64(r);
    char buf[HERD_NAME_MAX + 1];
    if (wire_reader_done(r) != 0 || len == 0 || len > HERD_NAME_MAX) {
        g->stats.rejected++;
        return;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    herd_pid_t pid = {g->self_node, g->self_inc, serial};
    awmap_dot_t dots[16];
    size_t nd = 0, newer = 0;
    for (const awmap_entry_t *e = awmap_get(g->map, buf, len); e; e = e->next) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (!herd_pid_equal(v.pid, pid))
            continue;
        if (v.hlc != hlc)
            newer++;
        else if (nd < 16)
            dots[nd++] = e->dot;
    }
    if (newer == 0)
        reg_index_remove(g, pid, buf);
    if (nd)
        reg_local_change(g, buf, NULL, 0, dots, nd, 0);
}

void reg_on_sync(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                    size_t len)
{
    (void)incarnation;
    registry_t *g = data;
    wire_reader_t r;
    wire_reader_init(&r, msg, len);
    uint8_t kind = wire_get_u8(&r);
    if (kind == SYNC_DIGEST) {
        g->stats.full_syncs_in++;
        sync_on_digest(g, node, &r);
        return;
    }
    if (kind == SYNC_WANT) {
        sync_on_want(g, node, &r);
        return;
    }
    if (kind == SYNC_DOTS) {
        sync_on_dots(g, node, &r);
        return;
    }
    if (kind == SYNC_UNREGISTER) {
        sync_on_unregister(g, node, &r);
        return;
    }
    if (kind == SYNC_MERGE) {
        sync_on_merge(g, node, &r);
        return;
    }
    if (kind == SYNC_MERGED) {
        sync_on_merged(g, &r);
        return;
    }
    awmap_t *d = NULL;
    if (kind != SYNC_DELTA || awmap_decode(&r, &d) != 0 || wire_reader_done(&r) != 0) {
        g->stats.rejected++;
        awmap_free(d);
        return;
    }
    int rc = awmap_join(g->map, d, reg_observer(g));
    g->stats.deltas_in++;
    herd_registry_peer_t *p = peer_of(g, node);
    if (p)
        p->deltas_in++;
    if (rc)
        herd_log(HERD_LOG_ERROR, "registry", "join failed: %s", herd_strerror(rc));
    awmap_free(d);
    reg_settle_touched(g);
}

int herd_registry_peer_stats(herd_node_t *n, uint64_t node_id, herd_registry_peer_t *out)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    herd_registry_peer_t *p = u64map_get(&g->peers, node_id);
    memset(out, 0, sizeof(*out));
    if (p)
        *out = *p;
    return 0;
}
