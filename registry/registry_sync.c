/*
 * registry_sync.c - how registry replicas reach each other: deltas shipped
 * once per loop iteration (split by bytes), the digest exchange with its
 * rounds and context (digest.h), the repair of refused sends, an unregister
 * made for another node's process, and a conflict loser's merge. Messages
 * and why they converge: registry/PROTOCOL.md.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "digest.h"
#include "log.h"
#include "registry_int.h"
#include "runtime_layers.h"

/* ---- peers --------------------------------------------------------------------------- */

/* What this node knows of one peer: its stats (ringctl crdt), whether a send
 * to it was refused, and the digest sync this node is answering for it. */
typedef struct reg_peer {
    herd_registry_peer_t st;
    int repair;          /* a send was refused: sync at the next check */
    uint64_t round;      /* the sync answered now (SYNC_WANT's number) */
    uint8_t want[DIGEST_BUCKETS]; /* its buckets that differed */
    awmap_t *snap;       /* this node's context when it diffed; NULL: done */
    awmap_t *theirs;     /* the peer's context, from its first dots piece */
    int failed;          /* a piece of this round's answer was refused */
    int offer_due;       /* 1: an offer held back for another pull; |2: ask_back */
    digest_t *deferred;  /* its digest, come while we pulled: answered after */
    uint64_t deferred_at; /* node clock: when it was put off (REGISTRY_DEFER_MS) */
    uint64_t fine_round; /* the round of the peer's cells we hold (SYNC_FINE) */
    uint8_t fine_got[DIGEST_BUCKETS];     /* its buckets whose cells came */
    uint8_t fine_mask[DIGEST_MASK_BYTES]; /* the cells that differ */
    digest_answer_t *answer; /* our entries it has not seen, going out step by step */
    uint64_t answer_pos;     /* the map positions below it are answered */
    digest_dots_pass_t *dots; /* our dots for its round, going out step by step */
    uint64_t dots_pos;        /* the map positions below it are done */
    uint64_t dots_round;      /* the round they belong to (its WANT's) */
    int dots_failed;          /* a piece was refused: the rest does not go */
    int refused;              /* a message from it was refused since its last context */
    int nudged;               /* sent our digest after a refusal, since the last check */
    /* the start of the peer (its incarnation) whose answer to a pull of
     * ours ended with its context joined; 0: none since it last went
     * (herd_registry_synced_with) */
    uint64_t synced_inc;
    uint64_t pulls; /* pulls of ours from it that came whole, ever (never reset) */
    registry_t *g;
    uint64_t id;
} reg_peer_t;

static reg_peer_t *peer_of(registry_t *g, uint64_t id)
{
    reg_peer_t *p = u64map_get(&g->peers, id);
    if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL && u64map_put(&g->peers, id, p) != 0) {
        free(p);
        p = NULL;
    }
    if (p) {
        p->g = g;
        p->id = id;
    }
    if (p == NULL)
        g->stats.alloc_failed++;
    return p;
}

static void round_end(reg_peer_t *p)
{
    digest_answer_free(p->answer);
    awmap_free(p->snap);
    awmap_free(p->theirs);
    p->answer = NULL;
    p->snap = p->theirs = NULL;
}

void reg_sync_free(registry_t *g)
{
    size_t at = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&g->peers, &at)) != NULL;) {
        reg_peer_t *p = sl->value;
        round_end(p);
        digest_dots_free(p->dots);
        free(p->deferred);
        free(p);
    }
    u64map_fini(&g->peers);
}

/* ---- sending ------------------------------------------------------------------------ */

static void reserve_for_burst(registry_t *g, size_t keys, size_t bytes);

/* Send one message to `to`, counted. A refused send (the peer's stream is
 * full, the message too big, no memory) is logged and counted, and the peer
 * is synced again at the next check; a member that left is not. */
static int send_msg(registry_t *g, uint64_t to, const wire_writer_t *w)
{
    int rc = w->err ? HERD_ENOMEM
                    : herd_cluster_send_app(g->node, to, REGISTRY_APP, w->buf, w->len);
    reg_peer_t *p = peer_of(g, to);
    if (rc == 0) {
        g->stats.bytes_out += w->len;
        if (p)
            p->st.bytes_out += w->len;
        return 0;
    }
    if (rc == HERD_ENOTCONN)
        return rc;
    g->stats.send_failed++;
    if (p) {
        p->st.send_failed++;
        p->repair = 1;
    }
    herd_log(HERD_LOG_WARN, "registry", "sync message of %zu bytes to %016llx refused (%s): "
             "a digest sync repairs it", w->len, (unsigned long long)to, herd_strerror(rc));
    return rc;
}

int reg_send_raw(registry_t *g, uint64_t to, const wire_writer_t *w)
{
    return send_msg(g, to, w);
}

static int send_and_free(registry_t *g, uint64_t to, wire_writer_t *w)
{
    int rc = send_msg(g, to, w);
    wire_writer_fini(w);
    return rc;
}

/* `m` as a message of `kind`; `hint`: about the bytes it takes (0: not
 * known), room made at once rather than grown a copy at a time. */
static void encode_map_sized(wire_writer_t *w, uint8_t kind, const awmap_t *m, size_t hint)
{
    wire_writer_init(w);
    if (hint)
        wire_writer_reserve(w, 1 + hint);
    wire_put_u8(w, kind);
    awmap_encode(m, w);
}

static void encode_map(wire_writer_t *w, uint8_t kind, const awmap_t *m)
{
    wire_writer_init(w);
    wire_put_u8(w, kind);
    awmap_encode(m, w);
}

static void delta_sent(registry_t *g, uint64_t to)
{
    reg_peer_t *p = peer_of(g, to);
    g->stats.deltas_out++;
    if (p)
        p->st.deltas_out++;
}

/* reg_ship, with about the bytes m's encoding takes (0: not known). */
static void ship_sized(registry_t *g, const awmap_t *m, uint8_t kind, uint64_t only_to,
                       size_t hint)
{
    herd_node_t *n = g->node;
    int count = herd_cluster_members(n, NULL, 0);
    herd_member_info_t *members = count > 1 ? calloc((size_t)count, sizeof(*members)) : NULL;
    if (members == NULL) {
        if (count > 1)
            g->stats.alloc_failed++; /* every peer's digest sync repairs it */
        return;
    }
    count = herd_cluster_members(n, members, (size_t)count);
    wire_writer_t w;
    encode_map_sized(&w, kind, m, hint);
    for (int i = 0; i < count; i++) {
        uint64_t id = herd_node_id_of(members[i].name);
        /* a down member may be partitioned away: its stream keeps what we send */
        if (id == g->self_node || (only_to && id != only_to) ||
            members[i].state == HERD_MEMBER_LEFT)
            continue;
        if (send_msg(g, id, &w) == 0)
            delta_sent(g, id);
    }
    wire_writer_fini(&w);
    free(members);
}

void reg_ship(registry_t *g, const awmap_t *m, uint8_t kind, uint64_t only_to)
{
    ship_sized(g, m, kind, only_to, 0);
}

int reg_ship_to(registry_t *g, const awmap_t *m, uint64_t to)
{
    wire_writer_t w;
    encode_map(&w, SYNC_DELTA, m);
    int rc = send_and_free(g, to, &w);
    if (rc == 0)
        delta_sent(g, to);
    return rc;
}

/* Ship the pending interval and start a new one; `keys_next` keys are
 * room made in the new one's table at once (a burst of changes cut by
 * bytes fills the next piece as it filled this one: its table then is not
 * grown a fifth at a time, rehashing every key each time). */
static void flush_pending(registry_t *g, size_t keys_next)
{
    if (g->pending == NULL || awmap_is_empty(g->pending))
        return;
    awmap_t *next = awmap_new_delta();
    if (next == NULL) {
        g->stats.alloc_failed++;
        return; /* keep accumulating; the next flush tries again */
    }
    if (keys_next && awmap_reserve(next, keys_next) != 0)
        g->stats.alloc_failed++; /* it grows as the keys come, as without */
    ship_sized(g, g->pending, SYNC_DELTA, 0, g->pending_bytes); /* an upper estimate */
    awmap_free(g->pending);
    g->pending = next;
    g->pending_bytes = 0;
}

void reg_flush_now(registry_t *g)
{
    g->burst_pieces = 0; /* the loop turns: a burst is over */
    flush_pending(g, 0);
}

/* The pending interval is full: a burst of changes (thousands of
 * registrations in one go of the loop) is under way. Its first
 * REGISTRY_BURST_EARLY pieces leave now, not when the burst ends, so that
 * the peers take them in while this node goes on. Not more: a piece is
 * acknowledged only once its peer's loop gets to it, and a longer burst
 * outlasts the stream's resend time when the peer is as busy as this node
 * (the pieces would go twice). The next piece and the map's key table get
 * room for as many keys again. */
void reg_pending_room(registry_t *g, size_t bytes)
{
    if (g->pending_bytes > 0 && g->pending_bytes + bytes > REGISTRY_MSG_MAX) {
        size_t keys = g->pending ? awmap_key_count(g->pending) : 0;
        g->stats.pieces_split++;
        flush_pending(g, keys);
        if (++g->burst_pieces <= REGISTRY_BURST_EARLY)
            herd_cluster_flush(g->node);
        reserve_for_burst(g, keys, REGISTRY_MSG_MAX);
    }
    g->pending_bytes += bytes;
}

/* ---- digest sync (digest.h, PROTOCOL.md) ------------------------------------------------ */

static const digest_limits_t sync_limits = {REGISTRY_MSG_MAX, REGISTRY_CONTEXT_CLOUD};

static int send_digest(registry_t *g, uint64_t to, int ask_back)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_DIGEST);
    wire_put_u8(&w, (uint8_t)(ask_back != 0));
    digest_encode(&g->digest, &w);
    return send_and_free(g, to, &w);
}

/* Offer node `to` our digest: it names the buckets that differ and we pull
 * what it has there. With `ask_back`, it offers its own in return: the two
 * may not have seen each other leave (a one-sided partition), so the one that
 * notices syncs both. */
void reg_sync_offer(registry_t *g, uint64_t to, int ask_back)
{
    reg_peer_t *p = peer_of(g, to);
    uint64_t now = herd_node_now(g->node);
    if (p && g->pulling && g->pulling != to && now - g->pull_started < REGISTRY_PULL_MS) {
        /* one pull at a time: a node that arrives is offered a sync by every
         * member at once, and one full answer is enough; the others then
         * find little or nothing differing */
        p->offer_due |= 1 | (ask_back ? 2 : 0);
        return;
    }
    if (p)
        p->offer_due = 0;
    if (send_digest(g, to, ask_back) != 0)
        return;
    g->pulling = to;
    g->pull_started = now;
    g->pull_answered = 0;
    g->stats.full_syncs_out++;
    if (p) {
        p->st.digest_syncs++;
        p->st.last_sync_ms = herd_node_wall_ms(g->node);
    }
}

/* The pull from `from` ended (its context came, or it took too long): the
 * next offer held back goes. */
static void offer_next_due(registry_t *g)
{
    size_t at = 0;
    for (u64map_slot_t *sl; g->pulling == 0 && (sl = u64map_next(&g->peers, &at)) != NULL;) {
        reg_peer_t *p = sl->value;
        if (p->offer_due)
            reg_sync_offer(g, sl->key, (p->offer_due & 2) != 0);
    }
}

static void answer_digest(registry_t *g, uint64_t from, reg_peer_t *p, const digest_t *theirs);

/* Answer every digest put off (against our digest as it is now); returns
 * how many. */
static size_t answer_deferred(registry_t *g)
{
    size_t n = 0, at = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&g->peers, &at)) != NULL;) {
        reg_peer_t *p = sl->value;
        digest_t *d = p->deferred;
        if (d == NULL)
            continue;
        p->deferred = NULL;
        answer_digest(g, sl->key, p, d);
        free(d);
        n++;
    }
    return n;
}

static void pull_done(registry_t *g, uint64_t from)
{
    if (g->pulling != from)
        return;
    g->pulling = 0;
    /* the pulls that waited for ours are answered now (little or nothing
     * differs any more) */
    answer_deferred(g);
    offer_next_due(g);
}

/* Digests put off while our pull has no answer yet: answered once it has
 * waited REGISTRY_ANSWER_WAIT_MS (defer_digest); until then 1, so that the
 * work timer looks again (each millisecond, for that long at most). */
static size_t unanswered_wait(registry_t *g)
{
    if (!g->pulling || g->pull_answered)
        return 0;
    size_t at = 0, deferred = 0;
    for (u64map_slot_t *sl; !deferred && (sl = u64map_next(&g->peers, &at)) != NULL;)
        deferred = ((reg_peer_t *)sl->value)->deferred != NULL;
    if (!deferred)
        return 0;
    if (herd_node_now(g->node) - g->pull_started < REGISTRY_ANSWER_WAIT_MS)
        return 1;
    g->stats.deferred_unanswered += answer_deferred(g);
    return 0;
}

/* A malformed message from `from`: counted, and at the next check the peer
 * is synced again, and so is one other live member (it may hold what the
 * message carried). Whatever it carried is missing here, so the context that
 * ends the peer's answer is not joined (it would claim what never arrived),
 * and a pull from it ends now rather than after REGISTRY_PULL_MS. */
static void refuse_from(registry_t *g, uint64_t from)
{
    reg_peer_t *p = peer_of(g, from);
    g->stats.rejected++;
    g->refused_from = from;
    if (p) {
        p->refused = 1;
        p->repair = 1;
    }
    pull_done(g, from); /* a pull from it now: its answer will not be whole */
    if (p && !p->nudged) {
        /* the refused message may have been its digest or dots: its pull
         * from us waits for an answer that will not come, and may hold back
         * others' pulls. Our digest, asking back, makes it offer again now
         * (once a check: a member that keeps sending garbage gets no more) */
        p->nudged = 1;
        send_digest(g, from, 1);
    }
}

void reg_sync_peer_gone(registry_t *g, uint64_t id)
{
    reg_peer_t *p = u64map_get(&g->peers, id);
    if (p) {
        p->offer_due = 0;
        free(p->deferred); /* its pull ended with it */
        p->deferred = NULL;
        digest_dots_free(p->dots);
        p->dots = NULL;
        round_end(p); /* and our answer to it */
        p->synced_inc = 0;
    }
    pull_done(g, id);
}

/* Digests put off for REGISTRY_DEFER_MS are answered now. */
static void answer_overdue(registry_t *g)
{
    uint64_t now = herd_node_now(g->node);
    size_t at = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&g->peers, &at)) != NULL;) {
        reg_peer_t *p = sl->value;
        digest_t *d = p->deferred;
        if (d == NULL || now - p->deferred_at < REGISTRY_DEFER_MS)
            continue;
        p->deferred = NULL;
        g->stats.deferred_overdue++;
        answer_digest(g, sl->key, p, d);
        free(d);
    }
}

void reg_sync_repair(registry_t *g)
{
    if (g->pulling && herd_node_now(g->node) - g->pull_started >= REGISTRY_PULL_MS)
        pull_done(g, g->pulling);
    answer_overdue(g);
    offer_next_due(g);
    size_t at = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&g->peers, &at)) != NULL;) {
        reg_peer_t *p = sl->value;
        herd_member_info_t mi;
        p->nudged = 0;
        if (!p->repair)
            continue;
        if (herd_cluster_member(g->node, sl->key, &mi) != 0 || mi.state == HERD_MEMBER_LEFT) {
            p->repair = 0; /* gone: nothing to repair */
            continue;
        }
        if (mi.state != HERD_MEMBER_UP && mi.state != HERD_MEMBER_DRAINING)
            continue; /* it syncs when it comes back */
        p->repair = 0;
        g->stats.repairs++;
        reg_sync_offer(g, sl->key, 1); /* both ways: each pulls what the other has */
    }
}

typedef struct emit_ctx {
    registry_t *g;
    reg_peer_t *p;
    uint64_t to;
    uint64_t round;
    int failed;
} emit_ctx_t;

/* Our context as we diffed, after every piece of the answer: the peer takes
 * it in (digest.h, step 5). Not when a piece was refused: the context would
 * claim what the peer never got (the repair sync starts over). */
static void context_piece(void *data, const awmap_t *piece, int last)
{
    emit_ctx_t *c = data;
    wire_writer_t w;
    encode_map(&w, SYNC_CONTEXT, piece);
    wire_put_u8(&w, (uint8_t)(last != 0));
    if (!c->failed && send_and_free(c->g, c->to, &w) != 0)
        c->failed = 1;
    else if (c->failed)
        wire_writer_fini(&w);
}

static void send_context(registry_t *g, uint64_t to, const awmap_t *snap)
{
    emit_ctx_t c = {g, NULL, to, 0, 0};
    if (digest_context(snap, REGISTRY_CONTEXT_CLOUD, context_piece, &c) != 0)
        g->stats.alloc_failed++;
}

/* Our cells of the buckets that differ, before the WANT of the round: the
 * peer sends dots only of the cells that differ (digest.h). */
static int send_fine(registry_t *g, uint64_t to, uint64_t round, const uint8_t *want, size_t n)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_FINE);
    wire_put_u64(&w, round);
    digest_fine_encode(g->fine, want, n, &w);
    return send_and_free(g, to, &w);
}

/* The buckets that differ, and our context: the peer sends only the dots we
 * have seen (we can tell a removal of no other). A context too big for one
 * message goes cut and flagged, and the peer then sends every dot. */
static int send_want(registry_t *g, uint64_t to, uint64_t round, const uint8_t *want, size_t n,
                     const awmap_t *context)
{
    awmap_t *cut = awmap_new_delta();
    int trimmed = 0;
    if (cut == NULL ||
        awmap_copy_context_bounded(cut, context, REGISTRY_CONTEXT_CLOUD, &trimmed) != 0) {
        g->stats.alloc_failed++;
        awmap_free(cut);
        return HERD_ENOMEM;
    }
    g->stats.context_trimmed += trimmed != 0;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_WANT);
    wire_put_u64(&w, round);
    wire_put_u16(&w, (uint16_t)n);
    wire_put_raw(&w, want, n);
    wire_put_u8(&w, (uint8_t)trimmed);
    awmap_encode(cut, &w);
    awmap_free(cut);
    return send_and_free(g, to, &w);
}

static uint64_t digest_entries(const digest_t *d)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < DIGEST_BUCKETS; b++)
        n += d->count[b];
    return n;
}

/* A peer holds `theirs` entries: when that is more than we hold, we are
 * about to take them in, and the key table makes room for them at once
 * (growing it under a million keys stalls the loop for tens of ms). A
 * member claiming more is believed up to REGISTRY_RESERVE_MAX keys, or four
 * times what we hold. */
static void reserve_for(registry_t *g, uint64_t theirs)
{
    uint64_t ours = awmap_key_count(g->map);
    uint64_t cap = ours * 4 > REGISTRY_RESERVE_MAX ? ours * 4 : REGISTRY_RESERVE_MAX;
    if (theirs > ours && awmap_reserve(g->map, theirs < cap ? theirs : cap) != 0)
        g->stats.alloc_failed++; /* it grows as the keys come, as without */
}

/* Whether to put off answering a peer's digest: we are taking in an
 * answer (the peer we pull from answers: its WANT or CONTEXT came, or it
 * was asked less than REGISTRY_ANSWER_WAIT_MS ago, as when a newcomer
 * pulls and every member offers it its digest at once), and the peer
 * holds more than we do, so its pull from us would bring it little now and
 * send us back the dots we are taking in. A pull unanswered for longer
 * puts nothing off, and what it put off is answered then (unanswered_wait):
 * the peer we pull from may itself be putting ours off, and so on round a
 * ring of pulls (sim_dsup join_under_partition seed 2225148: four nodes,
 * each pulling the next, each waiting for its own pull to end, so that
 * none did until the periodic check, 2-4 s later). The digest of the node
 * we pull from is never put off: it may be putting off ours (the two
 * compared their counts at different times). The pull we make ends (its
 * context comes, or REGISTRY_PULL_MS pass without a word of it), and
 * pull_done answers; a digest put off for REGISTRY_DEFER_MS is answered
 * anyway (the check). */
static int defer_digest(const registry_t *g, uint64_t from, const digest_t *theirs)
{
    uint64_t waited = herd_node_now(g->node) - g->pull_started;
    return g->pulling && g->pulling != from &&
           (g->pull_answered || waited < REGISTRY_ANSWER_WAIT_MS) &&
           waited < REGISTRY_PULL_MS && digest_entries(theirs) > digest_entries(&g->digest);
}

/* A peer offers its digest (to pull from us): answered now, or once our
 * own pull is over. */
static void sync_on_digest(registry_t *g, uint64_t from, wire_reader_t *r)
{
    digest_t theirs;
    uint8_t ask_back = wire_get_u8(r);
    if (digest_decode(r, &theirs) != 0 || wire_reader_done(r) != 0 || ask_back > 1) {
        refuse_from(g, from);
        return;
    }
    if (ask_back)
        reg_sync_offer(g, from, 0);
    reserve_for(g, digest_entries(&theirs));
    reg_peer_t *p = peer_of(g, from);
    if (p && defer_digest(g, from, &theirs)) {
        if (p->deferred == NULL) {
            p->deferred = malloc(sizeof(*p->deferred));
            p->deferred_at = herd_node_now(g->node);
        }
        if (p->deferred) {
            *p->deferred = theirs; /* a later one replaces it */
            return;
        }
        g->stats.alloc_failed++; /* answered now, then */
    }
    answer_digest(g, from, p, &theirs);
}

/* Answer a peer's digest: name the buckets that differ (and send our cells
 * of them) and keep our context as it is now for the end of the exchange;
 * with none differing, the context goes at once. */
static void answer_digest(registry_t *g, uint64_t from, reg_peer_t *p, const digest_t *theirs)
{
    awmap_t *snap = awmap_new_delta();
    if (p == NULL || snap == NULL || awmap_copy_context(snap, g->map) != 0) {
        g->stats.alloc_failed++;
        awmap_free(snap);
        return; /* the next anti-entropy round tries again */
    }
    uint8_t want[DIGEST_BUCKETS];
    size_t n = digest_diff(theirs, &g->digest, want);
    round_end(p);
    if (n == 0) {
        send_context(g, from, snap);
        awmap_free(snap);
        return;
    }
    p->round = ++g->sync_rounds;
    p->snap = snap;
    p->failed = 0;
    memset(p->want, 0, sizeof(p->want));
    for (size_t i = 0; i < n; i++)
        p->want[want[i]] = 1;
    if (send_fine(g, from, p->round, want, n) != 0 ||
        send_want(g, from, p->round, want, n, snap) != 0)
        round_end(p);
}

static void peer_dots_piece(void *data, const awmap_t *piece, int last)
{
    reg_peer_t *p = data;
    if (p->dots_failed)
        return;
    wire_writer_t w;
    encode_map(&w, SYNC_DOTS, piece);
    /* the round and the last flag follow the map: read after it */
    wire_put_u64(&w, p->dots_round);
    wire_put_u8(&w, (uint8_t)(last != 0));
    if (send_and_free(p->g, p->id, &w) != 0)
        p->dots_failed = 1;
}

/* A peer's cells of the buckets of its round that differ: which of ours
 * differ is kept for its WANT. */
static void sync_on_fine(registry_t *g, uint64_t from, wire_reader_t *r)
{
    uint64_t round = wire_get_u64(r);
    reg_peer_t *p = peer_of(g, from);
    if (p == NULL) {
        g->stats.alloc_failed++;
        return; /* its WANT then asks for every cell of the buckets */
    }
    if (p->fine_round != round) {
        p->fine_round = round;
        memset(p->fine_got, 0, sizeof(p->fine_got));
        memset(p->fine_mask, 0, sizeof(p->fine_mask));
    }
    if (r->err || digest_fine_compare(r, g->fine, p->fine_mask, p->fine_got) != 0 ||
        wire_reader_done(r) != 0) {
        g->stats.rejected++;
        p->fine_round = 0; /* what came is not trusted: every cell goes */
    }
}

/* They want our dots in some buckets: one pass over the map, in pieces. */
static void sync_on_want(registry_t *g, uint64_t from, wire_reader_t *r)
{
    uint64_t round = wire_get_u64(r);
    uint16_t n = wire_get_u16(r);
    uint8_t want[DIGEST_BUCKETS];
    for (uint16_t i = 0; i < n && i < DIGEST_BUCKETS; i++)
        want[i] = wire_get_u8(r);
    uint8_t trimmed = wire_get_u8(r);
    awmap_t *theirs = NULL;
    if (n == 0 || n > DIGEST_BUCKETS || trimmed > 1 || r->err ||
        awmap_decode(r, &theirs) != 0 || wire_reader_done(r) != 0 ||
        awmap_key_count(theirs) != 0) {
        refuse_from(g, from);
        awmap_free(theirs);
        return;
    }
    if (from == g->pulling) { /* our pull is answered: its deltas keep it alive */
        g->pull_answered = 1;
        g->pull_started = herd_node_now(g->node);
    }
    reg_peer_t *p = peer_of(g, from);
    if (p == NULL) {
        awmap_free(theirs);
        return; /* counted; its pull ends by time, and a later one retries */
    }
    /* the cells that differ, where the peer's came for this round */
    uint8_t all[DIGEST_MASK_BYTES], *mask = all;
    if (p->fine_round == round && round != 0)
        mask = p->fine_mask;
    digest_mask_of(mask, want, n, mask == all ? NULL : p->fine_got);
    p->fine_round = 0;
    if (trimmed) {
        awmap_free(theirs); /* its context was cut: every dot goes */
        theirs = NULL;
    }
    /* a round replaces one under way; the pass goes step by step
     * (reg_sync_work), like an answer */
    digest_dots_free(p->dots);
    p->dots = digest_dots_begin(g->map, mask, theirs, &sync_limits, peer_dots_piece, p);
    p->dots_pos = 0;
    p->dots_round = round;
    p->dots_failed = 0;
    if (p->dots == NULL)
        g->stats.alloc_failed++;
}

static void answer_piece(void *data, const awmap_t *piece)
{
    emit_ctx_t *c = data;
    if (c->p->failed)
        return;
    if (reg_ship_to(c->g, piece, c->to) != 0)
        c->p->failed = 1;
}

static void peer_answer_piece(void *data, const awmap_t *piece)
{
    reg_peer_t *p = data;
    if (!p->failed && reg_ship_to(p->g, piece, p->id) != 0)
        p->failed = 1;
}

/* The end of the round: our entries they have not seen, step by step over
 * the map (reg_sync_work), then our context. */
static void answer_round(registry_t *g, reg_peer_t *p)
{
    p->answer = digest_answer_begin(p->theirs, p->want, &sync_limits, peer_answer_piece, p);
    p->answer_pos = 0;
    if (p->answer == NULL) {
        g->stats.alloc_failed++;
        round_end(p); /* no context: the next anti-entropy round tries again */
    }
}

/* Whether the peer has not taken what went to it yet: a step waits. */
static int peer_behind(registry_t *g, const reg_peer_t *p)
{
    herd_stream_stats_t st;
    return herd_cluster_stream_stats(g->node, p->id, &st) == 0 &&
           st.pending_bytes > REGISTRY_ANSWER_QUEUED;
}

/* The end of the step from map position `pos`: about REGISTRY_ANSWER_KEYS
 * keys further. */
static uint64_t step_end(registry_t *g, uint64_t pos)
{
    size_t keys = awmap_key_count(g->map);
    uint64_t span = keys <= REGISTRY_ANSWER_KEYS
                        ? DIGEST_POSITIONS
                        : DIGEST_POSITIONS / (keys / REGISTRY_ANSWER_KEYS + 1);
    return pos + span < DIGEST_POSITIONS ? pos + span : DIGEST_POSITIONS;
}

/* One step of the dots we send p; at the end the last piece goes. Returns
 * whether it is still under way. */
static int dots_step(registry_t *g, reg_peer_t *p)
{
    if (peer_behind(g, p))
        return 1;
    uint64_t hi = step_end(g, p->dots_pos);
    if (digest_dots_step(p->dots, g->map, (uint32_t)p->dots_pos, hi) != 0)
        g->stats.alloc_failed++, p->dots_failed = 1;
    p->dots_pos = hi;
    if (hi < DIGEST_POSITIONS && !p->dots_failed)
        return 1;
    digest_dots_pass_t *d = p->dots;
    p->dots = NULL;
    if (p->dots_failed)
        digest_dots_free(d); /* the send that failed starts a repair */
    else if (digest_dots_finish(d, g->map) != 0)
        g->stats.alloc_failed++;
    return 0;
}

/* One step of p's answer; at the end the rest and the context go. Returns
 * whether it is still under way. */
static int answer_step(registry_t *g, reg_peer_t *p)
{
    if (peer_behind(g, p))
        return 1; /* the peer has not taken what went: wait */
    uint64_t hi = step_end(g, p->answer_pos);
    if (digest_answer_step(p->answer, g->map, (uint32_t)p->answer_pos, hi) != 0)
        g->stats.alloc_failed++, p->failed = 1;
    p->answer_pos = hi;
    if (hi < DIGEST_POSITIONS && !p->failed)
        return 1;
    digest_answer_t *a = p->answer;
    p->answer = NULL;
    if (digest_answer_finish(a) != 0)
        g->stats.alloc_failed++, p->failed = 1;
    if (!p->failed)
        send_context(g, p->id, p->snap);
    round_end(p);
    return 0;
}

size_t reg_sync_work(registry_t *g)
{
    size_t at = 0, going = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&g->peers, &at)) != NULL;) {
        reg_peer_t *p = sl->value;
        if (p->dots)
            going += (size_t)dots_step(g, p);
        if (p->answer)
            going += (size_t)answer_step(g, p);
    }
    return going + unanswered_wait(g);
}

uint64_t reg_sync_under_way(registry_t *g)
{
    uint64_t n = g->pulling != 0;
    size_t at = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&g->peers, &at)) != NULL;) {
        const reg_peer_t *p = sl->value;
        n += p->snap != NULL || p->dots != NULL || p->deferred != NULL;
    }
    return n;
}

static void sync_on_dots(registry_t *g, uint64_t from, wire_reader_t *r)
{
    awmap_t *dots = NULL;
    int rc = awmap_decode(r, &dots);
    uint64_t round = wire_get_u64(r);
    uint8_t last = wire_get_u8(r);
    reg_peer_t *p = peer_of(g, from);
    if (rc != 0 || wire_reader_done(r) != 0 || last > 1 || p == NULL) {
        if (p)
            refuse_from(g, from);
        awmap_free(dots);
        return;
    }
    int current = round == p->round && p->snap != NULL;
    emit_ctx_t c = {g, p, from, round, 0};
    /* removals they missed: always true, whichever round the piece is of */
    if (digest_answer_theirs(g->map, dots, &sync_limits, answer_piece, &c) != 0)
        g->stats.alloc_failed++, p->failed = 1;
    if (current && p->theirs == NULL)
        p->theirs = dots; /* its context serves the whole round */
    else
        awmap_free(dots);
    if (current && last)
        answer_round(g, p);
}

/* The peer's context as it diffed our digest, after its answer: every dot in
 * it is one we now hold or know removed (digest.h). */
static void sync_on_context(registry_t *g, uint64_t from, wire_reader_t *r)
{
    awmap_t *ctx = NULL;
    int rc = awmap_decode(r, &ctx);
    uint8_t last = wire_get_u8(r);
    if (rc != 0 || wire_reader_done(r) != 0 || last > 1 || awmap_key_count(ctx) != 0) {
        refuse_from(g, from);
        awmap_free(ctx);
        return;
    }
    reg_peer_t *p = peer_of(g, from);
    if (p && p->refused) { /* not joined: the peer is synced again (refuse_from) */
        herd_log(HERD_LOG_INFO, "registry", "context from %016llx not joined: a message "
                 "before it was refused", (unsigned long long)from);
        p->repair = 1;
        p->refused = !last;
        awmap_free(ctx);
        if (last)
            pull_done(g, from);
        return;
    }
    if (from == g->pulling)
        g->pull_answered = 1;
    if (awmap_copy_context(g->map, ctx) != 0) {
        g->stats.alloc_failed++; /* a partial join is an under-approximation: safe */
    } else {
        g->stats.contexts_joined += last;
        if (p && last && from == g->pulling) { /* our pull's answer came whole */
            p->synced_inc = herd_cluster_member_incarnation(g->node, from);
            p->pulls++;
        }
    }
    awmap_free(ctx);
    if (last)
        pull_done(g, from);
}

void reg_send_unregister(registry_t *g, herd_pid_t pid, const char *name, uint64_t hlc)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_UNREGISTER);
    wire_put_u64(&w, pid.serial);
    wire_put_bytes(&w, name, strlen(name));
    wire_put_u64(&w, hlc);
    send_and_free(g, pid.node, &w);
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
    return send_and_free(g, to, &w);
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
static void send_merged(registry_t *g, uint64_t to, uint64_t loser, uint64_t attempt, int ok,
                        herd_pid_t holder)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_MERGED);
    wire_put_u64(&w, loser);
    wire_put_u64(&w, attempt);
    wire_put_u8(&w, (uint8_t)ok);
    wire_put_u64(&w, holder.node);
    wire_put_u64(&w, holder.incarnation);
    wire_put_u64(&w, holder.serial);
    send_and_free(g, to, &w);
}

/* A merge in the holder's mailbox, to confirm once it holds. */
typedef struct merge_wait {
    herd_node_t *node;
    uint64_t to, loser, attempt;
    herd_pid_t holder;
} merge_wait_t;

/* The holder merged it: at once when its state is not replicated, else once
 * the state that includes it is held by its copies (herd_merge_into_local),
 * so the loser stops only when no crash of the holder's node can lose what
 * it counted. */
static void merge_held(void *data, int status)
{
    merge_wait_t *m = data;
    registry_t *g = reg_of(m->node); /* NULL once the node is shutting down */
    if (g)
        send_merged(g, m->to, m->loser, m->attempt, status == 0, m->holder);
    free(m);
}

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
        refuse_from(g, from);
        return;
    }
    if (herd_whereis(g->node, name, &pid, NULL) != 0 || pid.node == from ||
        (pid.node == g->self_node && herd_is_frozen(g->node, pid)))
        pid = HERD_PID_NONE; /* a frozen holder is moving or merging itself: later */
    else if (pid.node == g->self_node) {
        merge_wait_t *m = malloc(sizeof(*m));
        if (m == NULL) {
            g->stats.alloc_failed++; /* not merged: the loser resumes and tries again */
        } else {
            *m = (merge_wait_t){g->node, from, loser, attempt, pid};
            if (herd_merge_into_local(g->node, pid, state, len, merge_held, m) == 0)
                return; /* merge_held says merged */
            free(m);
        }
    }
    send_merged(g, from, loser, attempt, 0, pid);
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
    uint64_t serial = wire_get_u64(r);
    const uint8_t *name;
    size_t len = wire_get_bytes(r, &name);
    uint64_t hlc = wire_get_u64(r);
    char buf[HERD_NAME_MAX + 1];
    if (wire_reader_done(r) != 0 || len == 0 || len > HERD_NAME_MAX) {
        refuse_from(g, from);
        return;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    herd_pid_t pid = {g->self_node, g->self_inc, serial};
    const awmap_entry_t *entries = awmap_get(g->map, buf, len);
    awmap_dot_t sbuf[16];
    reg_vec_t dots = REG_VEC_ON(sbuf);
    reg_match_t that = {pid, REG_MATCH_HLC, hlc}, any = {pid, 0, 0};
    int nd = reg_dots(g, entries, &that, &dots);
    int all = nd < 0 ? nd : reg_dots(g, entries, &any, &dots);
    if (nd < 0 || all < 0) {
        /* the process keeps the name: its node's entries stand, and the
         * sender's own removal reaches every node anyway */
        g->stats.alloc_failed++;
        herd_log(HERD_LOG_ERROR, "registry", "unregister of %s: out of memory", buf);
        reg_vec_free(&dots);
        return;
    }
    if (all == nd) /* no newer registration of the pid: it lets go */
        pidx_del(&g->by_pid, pid.serial, awmap_key_hash(buf, len)); /* it lets go */
    if (nd)
        reg_local_change_len(g, buf, len, NULL, 0, dots.items, (size_t)nd, 0);
    reg_vec_free(&dots);
}

/* A delta of `keys` keys in `bytes` bytes is about to be joined. One near
 * REGISTRY_MSG_MAX is a piece of a burst cut by bytes (a node registering
 * thousands of names at once), and more like it follow: the key table
 * makes room for this piece and REGISTRY_BURST_PIECES more at once, rather
 * than growing a fifth at a time and rehashing every key each time. Only
 * while that is a step of more than a fifth of what it holds: in a larger
 * map the table's own growth is the larger step. */
static void reserve_for_burst(registry_t *g, size_t keys, size_t bytes)
{
    size_t held = awmap_key_count(g->map);
    if (bytes < REGISTRY_MSG_MAX / 2 || held + keys <= g->burst_room)
        return; /* the room made for the burst's earlier pieces holds this one */
    size_t want = held + keys * (1 + REGISTRY_BURST_PIECES);
    if (want - held <= held / 5)
        return;
    if (awmap_reserve(g->map, want) != 0)
        g->stats.alloc_failed++; /* it grows as the keys come, as without */
    else
        g->burst_room = want;
}

/* A delta from `node`: joined; a join that fails (no memory) is logged,
 * and the peer synced again at the next check. */
static void sync_on_delta(registry_t *g, uint64_t node, wire_reader_t *r)
{
    awmap_t *d = NULL;
    if (awmap_decode(r, &d) != 0 || wire_reader_done(r) != 0) {
        refuse_from(g, node);
        awmap_free(d);
        return;
    }
    reserve_for_burst(g, awmap_key_count(d), r->len);
    int rc = awmap_join(g->map, d, reg_observer(g));
    if (node == g->pulling && g->pull_answered) /* the answer is coming: the pull is alive */
        g->pull_started = herd_node_now(g->node);
    reg_peer_t *p = peer_of(g, node);
    g->stats.deltas_in++;
    if (p)
        p->st.deltas_in++;
    if (rc) {
        herd_log(HERD_LOG_ERROR, "registry", "join failed: %s", herd_strerror(rc));
        g->stats.alloc_failed++;
        if (p)
            p->repair = 1;
    }
    awmap_free(d);
    reg_settle_touched(g);
}

void reg_held(registry_t *g, const char *what, uint64_t start_ns)
{
    uint64_t us = (uv_hrtime() - start_ns) / 1000;
    if (us >= g->stats.longest_us)
        g->stats.longest_us = us, g->stats.longest_what = what;
}

/* Takes in one message of `kind`; returns what it was for reg_held. */
static const char *take_in(registry_t *g, uint64_t node, uint8_t kind, wire_reader_t *r)
{
    switch (kind) {
    case SYNC_DELTA:
        sync_on_delta(g, node, r);
        return "delta";
    case SYNC_DIGEST:
        g->stats.full_syncs_in++;
        sync_on_digest(g, node, r);
        return "digest";
    case SYNC_FINE:
        sync_on_fine(g, node, r);
        return "fine";
    case SYNC_WANT:
        sync_on_want(g, node, r);
        return "want";
    case SYNC_DOTS:
        sync_on_dots(g, node, r);
        return "dots";
    case SYNC_CONTEXT:
        sync_on_context(g, node, r);
        return "context";
    case SYNC_UNREGISTER:
        sync_on_unregister(g, node, r);
        return "unregister";
    case SYNC_MERGE:
        sync_on_merge(g, node, r);
        return "merge";
    case SYNC_MERGED:
        sync_on_merged(g, r);
        return "merged";
    case SYNC_SUMMARY:
        reg_on_summary(g, node, r);
        return "summary";
    default:
        refuse_from(g, node);
        return "refused";
    }
}

void reg_on_sync(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                    size_t len)
{
    (void)incarnation;
    registry_t *g = data;
    if (msg == NULL) { /* a message from node arrived altered: lost */
        refuse_from(g, node);
        return;
    }
    uint64_t start = uv_hrtime();
    wire_reader_t r;
    wire_reader_init(&r, msg, len);
    uint8_t kind = wire_get_u8(&r);
    reg_peer_t *p = peer_of(g, node);
    g->stats.bytes_in += len;
    if (p)
        p->st.bytes_in += len;
    reg_held(g, take_in(g, node, kind, &r), start);
}

int herd_registry_synced_with(herd_node_t *n, uint64_t node_id, uint64_t incarnation)
{
    registry_t *g = reg_of(n);
    const reg_peer_t *p = g ? u64map_get(&g->peers, node_id) : NULL;
    return p && incarnation != 0 && p->synced_inc == incarnation;
}

uint64_t herd_registry_pulls_from(herd_node_t *n, uint64_t node_id)
{
    registry_t *g = reg_of(n);
    const reg_peer_t *p = g ? u64map_get(&g->peers, node_id) : NULL;
    return p ? p->pulls : 0;
}

int herd_registry_peer_stats(herd_node_t *n, uint64_t node_id, herd_registry_peer_t *out)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    reg_peer_t *p = u64map_get(&g->peers, node_id);
    memset(out, 0, sizeof(*out));
    if (p)
        *out = p->st;
    return 0;
}

