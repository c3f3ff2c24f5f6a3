/*
 * remote.c - process messages between nodes (see remote.h).
 *
 * A message in a channel: u8 kind, u8 flags (bit 0: a reply made by the
 * runtime; bit 1: passed on from another node), u64 to (serial on the
 * receiving node), u64 from node, u64 from incarnation, u64 from serial,
 * u64 ref, u32 status, a call's u64 deadline, bytes data (PROTOCOL.md).
 *
 * Calls: the caller's node keeps the pending call and its timeout (proc.c);
 * the callee's node records the inbound call and watches the callee, so that
 * a callee that exits first answers HERD_ENOPROC at once. A request carries
 * its caller's deadline; the callee's node drops one that comes later, or a
 * second copy of one it is still answering, unapplied. When a node goes
 * down, what was queued for it and the calls and monitors waiting on it are
 * settled by remote_lost.c.
 *
 * This is the network layer's side of the node's net ops (node.h): the
 * process core calls remote_send, remote_reply, remote_monitor and the
 * others only through the table cluster.c installs, and remote.c calls down
 * into the core (proc_deliver, proc_complete_call, ...) by name.
 */
#include "remote_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "herd_ring.h"
#include "wire.h"

typedef struct inbound_call {
    herd_pid_t caller;
    uint64_t ref;
    uint64_t callee; /* serial on this node */
    uint64_t via;    /* the node that forwarded the call here, or 0 */
} inbound_call_t;

/* The key of a caller's call: refs are unique per node start only, so a
 * restarted caller's calls must not meet its earlier start's. */
static uint64_t inbound_key(herd_pid_t caller, uint64_t ref)
{
    uint64_t k = (caller.node * 0x9e3779b97f4a7c15ull) ^ (caller.incarnation * 0xbf58476d1ce4e5b9ull);
    return k ^ ref ^ 1; /* never 0 in practice */
}

void remote_init(herd_cluster_t *c)
{
    u64map_init(&c->peers);
    u64map_init(&c->remote_watches);
    u64map_init(&c->inbound_calls);
}

static void free_values(u64map_t *m)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(m, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(m);
}

void remote_fini(herd_cluster_t *c)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->peers, &cursor)) != NULL;)
        channel_fini(&((cluster_peer_t *)s->value)->ch);
    free_values(&c->peers);
    free_values(&c->remote_watches);
    free_values(&c->inbound_calls);
}

/* ---- sending ----------------------------------------------------------------- */

static cluster_peer_t *remote_peer(herd_cluster_t *c, uint64_t id)
{
    cluster_peer_t *p = u64map_get(&c->peers, id);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (p == NULL || u64map_put(&c->peers, id, p) != 0) {
        free(p);
        return NULL;
    }
    p->id = id;
    channel_init(&p->ch, 0, 0);
    return p;
}

void remote_encode(wire_writer_t *w, const remote_msg_t *m)
{
    wire_put_u8(w, m->kind);
    wire_put_u8(w, m->flags);
    wire_put_u64(w, m->to.serial);
    wire_put_u64(w, m->from.node);
    wire_put_u64(w, m->from.incarnation);
    wire_put_u64(w, m->from.serial);
    wire_put_u64(w, m->ref);
    wire_put_u32(w, (uint32_t)m->status);
    if (m->kind == HERD_MSG_CALL)
        wire_put_u64(w, m->deadline);
    wire_put_bytes(w, m->data, m->len);
}

int remote_decode(const uint8_t *buf, size_t len, remote_msg_t *m)
{
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    memset(m, 0, sizeof(*m));
    m->kind = wire_get_u8(&r);
    m->flags = wire_get_u8(&r);
    m->to.serial = wire_get_u64(&r);
    m->from.node = wire_get_u64(&r);
    m->from.incarnation = wire_get_u64(&r);
    m->from.serial = wire_get_u64(&r);
    m->ref = wire_get_u64(&r);
    m->status = (int32_t)wire_get_u32(&r);
    if (m->kind == HERD_MSG_CALL)
        m->deadline = wire_get_u64(&r);
    m->len = wire_get_bytes(&r, &m->data);
    return wire_reader_done(&r);
}

/* Whether a message queues for a member that is down: the layers' streams,
 * and what a moved or merged process's old copy passes on (it exists nowhere
 * else any more), for the member may only be cut off and the channel
 * delivers when it answers. Never a request someone waits on or expects to
 * take effect now: calls (forwarded ones too), casts, sends and monitors are
 * refused (HERD_ENOTCONN), as those queued before it went down were
 * withdrawn (remote_lost.c). */
static int remote_queues_if_down(uint8_t kind, unsigned flags)
{
    if (kind == REMOTE_APP)
        return 1;
    return (flags & REMOTE_FORWARDED) && kind != HERD_MSG_CALL;
}

/* The member that hosts `to`, if messages of that kind can reach it now. */
static int remote_route(herd_cluster_t *c, herd_pid_t to, uint8_t kind, unsigned flags,
                        const mship_member_t **out)
{
    const mship_member_t *x = mship_find_id(c->mship, to.node);
    if (x == NULL || x->state == MEMBER_LEFT || x == mship_self(c->mship) ||
        (x->state == MEMBER_DOWN && !remote_queues_if_down(kind, flags)))
        return HERD_ENOTCONN;
    if (x->incarnation != to.incarnation)
        return HERD_ENOPROC; /* an earlier (dead) or unknown start of that node */
    *out = x;
    return 0;
}

int remote_admit(herd_node_t *n, herd_pid_t to, uint8_t kind, unsigned flags, size_t data_len,
                 cluster_peer_t **out)
{
    herd_cluster_t *c = n->cluster;
    const mship_member_t *x;
    if (c == NULL)
        return HERD_ENOTCONN;
    if (data_len + REMOTE_OVERHEAD > FRAME_DEFAULT_MAX_BODY)
        return cluster_oversize_out(c, data_len + REMOTE_OVERHEAD), HERD_ETOOBIG;
    int rc = remote_route(c, to, kind, flags, &x);
    cluster_peer_t *p = rc == 0 ? remote_peer(c, to.node) : NULL;
    if (rc)
        return rc;
    if (p == NULL)
        return HERD_ENOMEM;
    if (channel_set_peer(&p->ch, x->incarnation))
        herd_log(HERD_LOG_INFO, "remote", "dropped messages for an old start of %s", x->name);
    *out = p;
    return 0;
}

int remote_enqueue(herd_cluster_t *c, cluster_peer_t *p, const uint8_t *msg, size_t len)
{
    int rc = channel_queue(&p->ch, msg, len);
    if (rc == 0) {
        p->dirty = c->any_dirty = 1;
        c->msgs_out++;
    }
    return rc;
}

/* Queue m for `to` (m->to.serial is to's). */
static int remote_queue(herd_node_t *n, herd_pid_t to, const remote_msg_t *m)
{
    cluster_peer_t *p;
    int rc = remote_admit(n, to, m->kind, m->flags, m->len, &p);
    if (rc)
        return rc;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_writer_reserve(&w, REMOTE_OVERHEAD + m->len);
    remote_encode(&w, m);
    rc = w.err ? w.err : remote_enqueue(n->cluster, p, w.buf, w.len);
    wire_writer_fini(&w);
    return rc;
}

int remote_send(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                uint64_t ref, int status, const void *data, size_t len, unsigned flags)
{
    remote_msg_t m = {.kind = (uint8_t)kind, .flags = (uint8_t)flags, .to = to, .from = from,
                      .ref = ref, .status = status, .data = data, .len = len};
    return remote_queue(n, to, &m);
}

int remote_send_call(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                     uint64_t deadline, const void *data, size_t len, unsigned flags)
{
    remote_msg_t m = {.kind = HERD_MSG_CALL, .flags = (uint8_t)flags, .to = to, .from = from,
                      .ref = ref, .deadline = deadline, .data = data, .len = len};
    return remote_queue(n, to, &m);
}

/* Frames one flush sends to a peer at most; what is left (within the
 * window) goes at the next flush. */
#define REMOTE_FLUSH_FRAMES 64

/* Send p's stream as far as its window lets (after going back to the oldest
 * unacknowledged message when `resend`), then an ACK frame if one is due
 * and no MSG frame carried it. A frame the transport refuses (its outbox
 * for the peer is full, or memory is short) is taken back into the stream
 * unsent (the transport counted it in dropped_out). Returns 0 when it
 * sent what it could; 1 when the transport refused a frame or the stream's
 * member is not that start any more (nothing sent): the tick tries again
 * (remote_tick), or the member's change resets the stream. */
static int remote_send_frames(herd_cluster_t *c, cluster_peer_t *p, int resend, uint64_t now)
{
    const mship_member_t *x = mship_find_id(c->mship, p->id);
    int refused = 0;
    if (x == NULL || x->incarnation != p->ch.peer_inc)
        return 1;
    for (int i = 0; i < REMOTE_FLUSH_FRAMES; i++) {
        uint8_t *frame; /* the body built in place: header and MAC go around it */
        size_t len;
        if (channel_next_frame_at(&p->ch, resend && i == 0, FRAME_DEFAULT_MAX_BODY, now,
                                  FRAME_HEADER_SIZE, FRAME_MAC_SIZE, &frame, &len) ||
            frame == NULL)
            break;
        int rc = cluster_send_frame_at(c, x->address, x->id, x->incarnation, FRAME_MSG, frame,
                                       len);
        free(frame);
        if (rc == HERD_EFULL || rc == HERD_ENOMEM) {
            channel_unsend(&p->ch);
            refused = 1;
            break;
        }
    }
    if (p->ch.ack_due) {
        uint8_t *body;
        size_t len;
        if (channel_ack_frame(&p->ch, &body, &len) == 0) {
            cluster_send_frame(c, x->address, x->id, x->incarnation, FRAME_ACK, body, len);
            c->ack_frames_out++;
            free(body);
        }
    }
    return refused;
}

void remote_flush(herd_cluster_t *c, uint64_t now)
{
    if (!c->any_dirty)
        return;
    c->any_dirty = 0;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->peers, &cursor)) != NULL;) {
        cluster_peer_t *p = s->value;
        if (!p->dirty)
            continue;
        int stuck = remote_send_frames(c, p, 0, now);
        /* more than one flush's frames: the rest at the next flush (at once:
         * see below); refused by the transport, or no such member: at the
         * next tick, so that the loop never spins on a stream that cannot go */
        p->dirty = !stuck && channel_send_ready(&p->ch);
        c->any_dirty |= p->dirty;
    }
    if (c->any_dirty)
        node_kick(c->node); /* the loop turns again at once, not when woken */
}

/* Each tick: go back for streams whose oldest message waited an rto, and
 * send what waits in the others (frames the transport refused, a window
 * that opened without a flush). */
void remote_tick(herd_cluster_t *c, uint64_t now)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->peers, &cursor)) != NULL;) {
        cluster_peer_t *p = s->value;
        if (channel_resend_due(&p->ch, now))
            remote_send_frames(c, p, 1, now);
        else if (channel_send_ready(&p->ch))
            remote_send_frames(c, p, 0, now);
    }
}

/* ---- calls and monitors ------------------------------------------------------ */

static int remote_answer(herd_node_t *n, herd_from_t from, int status, const void *data,
                         size_t len, unsigned flags);

int remote_reply(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len,
                 unsigned copies)
{
    return remote_answer(n, from, status, data, len,
                         (copies << REPLY_COPIES_SHIFT) & REPLY_COPIES_MASK);
}

int remote_callee_gone(herd_node_t *n, herd_from_t from, int status)
{
    return remote_answer(n, from, status, NULL, 0, REMOTE_BY_RUNTIME);
}

/* The caller's node is unknown here (this node joined after it, or has not
 * heard of it yet), but the node that forwarded the call knows it. */
static int remote_relay(herd_node_t *n, uint64_t via, herd_from_t from, herd_pid_t callee,
                        int status, const void *data, size_t len, unsigned flags)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, from.pid.node);
    wire_put_u64(&w, from.pid.incarnation);
    wire_put_raw(&w, data, len);
    const mship_member_t *x = mship_find_id(n->cluster->mship, via);
    herd_pid_t to = {via, x ? x->incarnation : 0, from.pid.serial};
    int rc = w.err ? HERD_ENOMEM
                   : remote_send(n, to, (herd_msg_kind_t)REMOTE_RELAY, callee, from.ref, status,
                                 w.buf, w.len, flags);
    wire_writer_fini(&w);
    if (rc == 0)
        n->cluster->replies_relayed++;
    return rc;
}

static int remote_answer(herd_node_t *n, herd_from_t from, int status, const void *data,
                         size_t len, unsigned flags)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOPROC;
    uint64_t key = inbound_key(from.pid, from.ref);
    inbound_call_t *ic = u64map_get(&c->inbound_calls, key);
    if (ic == NULL || !herd_pid_equal(ic->caller, from.pid) || ic->ref != from.ref)
        return HERD_ENOPROC;
    u64map_del(&c->inbound_calls, key);
    herd_pid_t callee = {n->id, n->incarnation, ic->callee};
    herd_proc_t *p = proc_lookup(n, callee);
    if (p && p->ext)
        proc_unwatch(p, from.ref);
    uint64_t via = ic->via;
    free(ic);
    int rc = remote_send(n, from.pid, HERD_MSG_REPLY, callee, from.ref, status, data, len, flags);
    if (rc == HERD_ENOTCONN && via)
        rc = remote_relay(n, via, from, callee, status, data, len, flags);
    return rc;
}

void remote_move_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t to)
{
    herd_cluster_t *c = n->cluster;
    herd_proc_t *t = proc_lookup(n, to);
    inbound_call_t *ic = c ? u64map_get(&c->inbound_calls, inbound_key(caller, ref)) : NULL;
    if (ic == NULL || t == NULL || !herd_pid_equal(ic->caller, caller) || ic->ref != ref)
        return;
    ic->callee = to.serial;
    if (proc_watch(t, ref, caller, 1) != 0)
        herd_log(HERD_LOG_WARN, "remote", "out of memory watching a moved call");
}

void remote_release_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return;
    uint64_t key = inbound_key(caller, ref);
    inbound_call_t *ic = u64map_get(&c->inbound_calls, key);
    if (ic && herd_pid_equal(ic->caller, caller) && ic->ref == ref)
        free(u64map_del(&c->inbound_calls, key));
}

int remote_monitor(herd_proc_t *self, herd_pid_t target, uint64_t ref)
{
    herd_node_t *n = self->node;
    herd_cluster_t *c = n->cluster;
    remote_watch_t *w = calloc(1, sizeof(*w));
    if (c == NULL || w == NULL || u64map_put(&c->remote_watches, ref, w) != 0) {
        free(w);
        return c ? HERD_ENOMEM : HERD_ENOTCONN;
    }
    w->watcher = self->serial;
    w->target = target;
    int rc = remote_send(n, target, (herd_msg_kind_t)REMOTE_MONITOR, herd_self(self), ref, 0,
                         NULL, 0, 0);
    if (rc) { /* unreachable: the monitor fires at once, as for a dead pid */
        u64map_del(&c->remote_watches, ref);
        free(w);
        return rc;
    }
    return 0;
}

void remote_demonitor(herd_node_t *n, herd_pid_t watcher, herd_pid_t target, uint64_t ref)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return;
    free(u64map_del(&c->remote_watches, ref));
    remote_send(n, target, (herd_msg_kind_t)REMOTE_DEMONITOR, watcher, ref, 0, NULL, 0, 0);
}

/* ---- receiving ------------------------------------------------------------------ */

const char *remote_sender_name(const herd_cluster_t *c)
{
    const mship_member_t *x = mship_find_id(c->mship, c->delivering_from);
    return x ? x->name : "?";
}

/* A pending call of this node's `caller` is answered by `callee` now. */
static void call_moved(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t callee)
{
    pending_call_t *pc = u64map_get(&n->calls, ref);
    if (pc && pc->caller == caller.serial)
        pc->callee = callee;
}

/* Whether a call's request left in a frame stamped after its deadline (the
 * caller's HLC timestamp at which it stops waiting): a copy sent, or sent
 * again, once its caller gave up. The sender's clock judges, not this
 * node's: a receiver whose clock runs ahead must not refuse calls in time. */
static int remote_call_late(const herd_cluster_t *c, uint64_t deadline)
{
    return deadline != 0 && c->delivering_hlc > deadline;
}

/* A call that came too late is dropped unapplied: its caller has given up
 * (HERD_ETIMEDOUT, or HERD_EUNCERTAIN when it declared this node down) and
 * expects no answer. Counted and logged. */
static void remote_call_expired(herd_cluster_t *c, const remote_msg_t *m)
{
    c->calls_expired++;
    herd_log_limited(&c->expired_log, herd_node_now(c->node), HERD_LOG_INFO, "remote",
                     "dropped a call from %016llx (via %s) sent %llu ms after its caller's "
                     "deadline; %llu so far",
                     (unsigned long long)m->from.node, remote_sender_name(c),
                     (unsigned long long)(hlc_physical_ms(c->delivering_hlc) -
                                          hlc_physical_ms(m->deadline)),
                     (unsigned long long)c->calls_expired);
}

/* The same call (caller and ref) is here already, not yet answered: a
 * second copy is dropped, so that a request is applied at most once. */
static int remote_call_duplicate(herd_cluster_t *c, const remote_msg_t *m)
{
    inbound_call_t *ic = u64map_get(&c->inbound_calls, inbound_key(m->from, m->ref));
    if (ic == NULL || !herd_pid_equal(ic->caller, m->from) || ic->ref != m->ref)
        return 0;
    c->calls_duplicate++;
    herd_log_limited(&c->duplicate_log, herd_node_now(c->node), HERD_LOG_WARN, "remote",
                     "dropped a second copy of a call from %016llx (via %s) still being "
                     "answered here; %llu so far",
                     (unsigned long long)m->from.node, remote_sender_name(c),
                     (unsigned long long)c->calls_duplicate);
    return 1;
}

/* Record a call from another node delivered to local `callee` (`to`):
 * answered by remote_answer, or HERD_ENOPROC if the callee exits first. */
static int remote_record_call(herd_cluster_t *c, const remote_msg_t *m, herd_proc_t *callee,
                              herd_pid_t to)
{
    inbound_call_t *ic = calloc(1, sizeof(*ic));
    uint64_t key = inbound_key(m->from, m->ref);
    if (ic == NULL)
        return HERD_ENOMEM;
    if (u64map_put(&c->inbound_calls, key, ic) != 0) {
        free(ic);
        return HERD_ENOMEM;
    }
    if (proc_watch(callee, m->ref, m->from, 1) != 0) {
        u64map_del(&c->inbound_calls, key);
        free(ic);
        return HERD_ENOMEM;
    }
    uint64_t sender = c->delivering_from;
    uint64_t via = (m->flags & REMOTE_FORWARDED) && sender != m->from.node ? sender : 0;
    *ic = (inbound_call_t){m->from, m->ref, to.serial, via};
    return 0;
}

static void remote_on_call(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    if (remote_call_late(c, m->deadline)) {
        remote_call_expired(c, m);
        return;
    }
    if (remote_call_duplicate(c, m))
        return;
    int rc = proc_deliver_call(n, m->to, m->from, m->ref, m->deadline, m->data, m->len,
                               m->flags & REMOTE_FORWARDED);
    herd_pid_t to = m->to;
    herd_proc_t *callee = rc == 0 ? proc_lookup(n, to) : NULL;
    if (rc == 0 && callee == NULL) { /* the callee moved (freeze.c's redirect) */
        to = node_redirect_of(n, m->to.serial);
        callee = node_is_local(n, to) ? proc_lookup(n, to) : NULL;
        if (callee == NULL)
            return; /* to another node, which records the call; or gone */
    }
    if (rc == 0 && node_is_local(n, m->from)) {
        /* a call from here to a process that moved here: the caller's own
         * pending call is the record; it follows the callee, and a watch
         * answers if the callee exits first */
        call_moved(n, m->from, m->ref, to);
        if (proc_watch(callee, m->ref, m->from, 1) == 0)
            return;
        rc = HERD_ENOMEM;
    }
    if (rc == 0 && (m->flags & REMOTE_FORWARDED)) /* the caller's node learns where */
        remote_send(n, m->from, (herd_msg_kind_t)REMOTE_MOVED, to, m->ref, 0, NULL, 0, 0);
    if (rc == 0 && (rc = remote_record_call(c, m, callee, to)) == 0)
        return;
    remote_send(n, m->from, HERD_MSG_REPLY, m->to, m->ref, rc, NULL, 0, REMOTE_BY_RUNTIME);
}

/* A relayed reply: pass it on to the caller (here, or on its node). */
static void remote_on_relay(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    wire_reader_t r;
    wire_reader_init(&r, m->data, m->len);
    herd_pid_t caller;
    caller.node = wire_get_u64(&r);
    caller.incarnation = wire_get_u64(&r);
    caller.serial = m->to.serial;
    if (r.err || m->len < 16) {
        cluster_refuse(c, FRAME_REJECT_BODY, "a relayed reply from %s: too short",
                       remote_sender_name(c));
        return;
    }
    const uint8_t *reply = m->data + 16;
    size_t len = m->len - 16;
    int rc;
    if (node_is_local(n, caller))
        rc = proc_complete_call(n, m->ref, m->status, reply, len,
                                m->flags & (REMOTE_BY_RUNTIME | REPLY_COPIES_MASK));
    else
        rc = remote_send(n, caller, HERD_MSG_REPLY, m->from, m->ref, m->status, reply, len,
                         (m->flags & (REMOTE_BY_RUNTIME | REPLY_COPIES_MASK)) |
                             REMOTE_FORWARDED);
    if (rc)
        c->msgs_dropped++; /* the caller gave up or is gone too */
}

static void remote_on_down(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    remote_watch_t *w = u64map_del(&c->remote_watches, m->ref);
    free(w);
    herd_proc_t *watcher = proc_lookup(n, m->to);
    if (watcher)
        proc_forget_monitor(watcher, m->ref);
    proc_deliver(n, m->to, HERD_MSG_DOWN, m->from, m->ref, m->status, NULL, 0, 1);
}

static void remote_on_monitor(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    herd_proc_t *t = proc_lookup(n, m->to);
    if (m->kind == REMOTE_DEMONITOR) {
        if (t)
            proc_unwatch(t, m->ref);
        return;
    }
    if (t == NULL || proc_watch(t, m->ref, m->from, 0) != 0)
        remote_send(n, m->from, HERD_MSG_DOWN, m->to, m->ref,
                    t ? HERD_REASON_NOCONNECTION : HERD_REASON_NOPROC, NULL, 0, 0);
}

/* Whether a message may go out again with REMOTE_FORWARDED, naming its first
 * sender: the kinds a process's mailbox holds (a moved process's old copy
 * passes them on; a relayed or forwarded call's reply is passed on too).
 * The runtime's own messages (monitors, moves, relays, the layers' streams)
 * always speak for the node that sends them. */
static int remote_kind_forwardable(uint8_t kind)
{
    switch (kind) {
    case HERD_MSG_CALL:
    case HERD_MSG_CAST:
    case HERD_MSG_INFO:
    case HERD_MSG_REPLY:
    case HERD_MSG_DOWN:
    case HERD_MSG_MERGE:
        return 1;
    default:
        return 0;
    }
}

/* The sender rule: a message's `from` is a pid of the frame's sender, at the
 * incarnation its authenticated header carries, unless the message was
 * passed on (REMOTE_FORWARDED): then `from` names the first sender, while
 * the hop is still the header's (the channel the message came in on). */
static int remote_sender_ok(const herd_cluster_t *c, const remote_msg_t *m)
{
    if (m->from.node == c->delivering_from && m->from.incarnation == c->delivering_inc)
        return 1;
    return (m->flags & REMOTE_FORWARDED) && remote_kind_forwardable(m->kind);
}

/* The check sum of an app's message: its `ref` (remote_app_sum). */
static uint64_t remote_app_sum(const void *data, size_t len)
{
    return herd_ring_hash_key(data, len);
}

/* An app's message goes to its handler when its body is the one the sending
 * layer handed over (its check sum holds); otherwise it is refused, counted,
 * and the handler told (msg NULL) that something from that node was lost. */
static void remote_on_app(herd_cluster_t *c, const remote_msg_t *m)
{
    if (m->to.serial >= 256 || c->apps[m->to.serial].cb == NULL)
        return;
    int intact = m->ref == remote_app_sum(m->data, m->len);
    if (!intact)
        cluster_refuse(c, FRAME_REJECT_BODY,
                       "an app %llu message of %zu bytes from %s: the body is not the one "
                       "its sender's layer wrote (check sum)",
                       (unsigned long long)m->to.serial, m->len, remote_sender_name(c));
    c->apps[m->to.serial].cb(c->apps[m->to.serial].data, c->delivering_from,
                             c->delivering_inc, intact ? m->data : NULL, intact ? m->len : 0);
}

/* A cast or send from another node: dropped (and counted) when its process
 * is gone or its mailbox full, as casts are at most once. */
static void remote_on_cast(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    herd_msg_kind_t kind = (herd_msg_kind_t)m->kind;
    int rc = m->flags & REMOTE_FORWARDED
                 ? proc_deliver_relayed(n, m->to, kind, m->from, 0, 0, m->data, m->len)
                 : proc_deliver(n, m->to, kind, m->from, 0, 0, m->data, m->len, 0);
    if (rc)
        c->msgs_dropped++;
}

static void remote_dispatch(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    switch (m->kind) {
    case HERD_MSG_CALL:
        remote_on_call(c, m);
        break;
    case HERD_MSG_REPLY:
        if (proc_complete_call(n, m->ref, m->status, m->data, m->len,
                               m->flags & (REMOTE_BY_RUNTIME | REPLY_COPIES_MASK)) ==
            HERD_ENOPROC)
            n->stats.late_replies++; /* the call gave up: its timeout answered */
        break;
    case HERD_MSG_DOWN:
        remote_on_down(c, m);
        break;
    case REMOTE_MONITOR:
    case REMOTE_DEMONITOR:
        remote_on_monitor(c, m);
        break;
    case REMOTE_MOVED:
        call_moved(n, m->to, m->ref, m->from);
        break;
    case REMOTE_RELAY:
        remote_on_relay(c, m);
        break;
    case REMOTE_APP: /* `to` names the app; the sender is the header's */
        remote_on_app(c, m);
        break;
    case REMOTE_WITHDRAWN: /* its sender declared us down meanwhile: nothing to do */
        break;
    case REMOTE_CAST_MANY:
        remote_on_cast_many(c, m);
        break;
    case HERD_MSG_MERGE:
        if (proc_deliver(n, m->to, HERD_MSG_MERGE, m->from, 0, 0, m->data, m->len, 1))
            c->msgs_dropped++; /* the winner is gone too */
        break;
    case HERD_MSG_CAST:
    case HERD_MSG_INFO:
        remote_on_cast(c, m);
        break;
    default:
        cluster_refuse(c, FRAME_REJECT_BODY, "a message of unknown kind %u from %s", m->kind,
                       remote_sender_name(c));
    }
}

static void remote_deliver(void *data, const uint8_t *buf, size_t len)
{
    herd_cluster_t *c = data;
    herd_node_t *n = c->node;
    remote_msg_t m;
    if (remote_decode(buf, len, &m) != 0) {
        cluster_refuse(c, FRAME_REJECT_BODY, "a message from %s: it does not decode",
                       remote_sender_name(c));
        return;
    }
    m.to.node = n->id;
    m.to.incarnation = n->incarnation;
    if (!remote_sender_ok(c, &m)) {
        cluster_refuse(c, FRAME_REJECT_SENDER,
                       "a message (kind %u) from %s that claims to come from node %016llx "
                       "incarnation %llu",
                       m.kind, remote_sender_name(c), (unsigned long long)m.from.node,
                       (unsigned long long)m.from.incarnation);
        return;
    }
    c->msgs_in++;
    remote_dispatch(c, &m);
}

void remote_on_frame(herd_cluster_t *c, const frame_header_t *h, const uint8_t *body)
{
    const mship_member_t *x = mship_find_id(c->mship, h->sender);
    if (x == NULL || x->incarnation != h->sender_inc) {
        /* not a member we know at that start */
        cluster_refuse(c, FRAME_REJECT_REPLAY, "a %s frame from a node that is not a member "
                       "at that start", frame_type_name(h->type));
        return;
    }
    cluster_peer_t *p = remote_peer(c, h->sender);
    if (p == NULL) { /* its messages come again: the sender resends what we never acked */
        cluster_refuse(c, FRAME_REJECT_MEMORY, "a %s frame from %s: no memory for its stream",
                       frame_type_name(h->type), x->name);
        return;
    }
    channel_set_peer(&p->ch, h->sender_inc);
    uint64_t now = herd_node_now(c->node);
    c->delivering_from = h->sender;
    c->delivering_inc = h->sender_inc;
    c->delivering_hlc = h->hlc;
    int rc = h->type == FRAME_ACK ? channel_on_ack(&p->ch, body, h->length, now)
                                  : channel_on_msg(&p->ch, body, h->length, now,
                                                   remote_deliver, c);
    c->delivering_from = c->delivering_inc = c->delivering_hlc = 0;
    if (rc)
        cluster_refuse(c, FRAME_REJECT_BODY, "a %s frame from %s: its batch does not decode",
                       frame_type_name(h->type), x->name);
    /* an ack that opened the window for messages waiting, or many bytes
     * to acknowledge; a lone ack waits for a frame to carry it (a reply
     * later in the loop iteration or soon after), or for remote_release_acks */
    if (channel_send_ready(&p->ch) || p->ch.ack_due_bytes >= CHANNEL_ACK_EAGER_BYTES)
        p->dirty = c->any_dirty = 1;
    else if (p->ch.ack_due)
        c->acks_held = 1;
}

void remote_release_acks(herd_cluster_t *c)
{
    if (!c->acks_held)
        return;
    c->acks_held = 0;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->peers, &cursor)) != NULL;) {
        cluster_peer_t *p = s->value;
        if (p->ch.ack_due)
            p->dirty = c->any_dirty = 1;
    }
}

/* ---- streams of the layers above --------------------------------------------- */

int herd_cluster_on_app(herd_node_t *n, uint8_t app, herd_app_cb cb, void *data)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    if (app == 0)
        return HERD_EINVAL; /* a NULL cb removes the handler */
    c->apps[app].cb = cb;
    c->apps[app].data = data;
    return 0;
}

int herd_cluster_send_app(herd_node_t *n, uint64_t to_node, uint8_t app, const void *msg,
                          size_t len)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOTCONN;
    if (app == 0)
        return HERD_EINVAL;
    const mship_member_t *x = mship_find_id(c->mship, to_node);
    if (x == NULL)
        return HERD_ENOTCONN;
    herd_pid_t to = {to_node, x->incarnation, app};
    herd_pid_t from = {n->id, n->incarnation, 0};
    return remote_send(n, to, (herd_msg_kind_t)REMOTE_APP, from, remote_app_sum(msg, len), 0,
                       msg, len, 0);
}

uint64_t herd_cluster_member_incarnation(herd_node_t *n, uint64_t id)
{
    const mship_member_t *x = n->cluster ? mship_find_id(n->cluster->mship, id) : NULL;
    return x ? x->incarnation : 0;
}

int herd_cluster_stream_stats(herd_node_t *n, uint64_t id, herd_stream_stats_t *out)
{
    cluster_peer_t *p = n->cluster ? u64map_get(&n->cluster->peers, id) : NULL;
    if (p == NULL)
        return HERD_ENOENT;
    const channel_t *ch = &p->ch;
    memset(out, 0, sizeof(*out));
    out->sent_seq = ch->sent_upto;
    out->queued_seq = ch->next_seq - 1;
    out->acked_seq = ch->head ? ch->head->seq - 1 : ch->next_seq - 1;
    for (const channel_msg_t *m = ch->head; m; m = m->next)
        out->pending++;
    out->pending_bytes = ch->unacked_bytes;
    out->resent = ch->resent;
    out->received = ch->delivered;
    out->duplicates = ch->duplicates;
    return 0;
}
