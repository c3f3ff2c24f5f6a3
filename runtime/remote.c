/*
 * remote.c - process messages between nodes (see remote.h).
 *
 * A message in a channel: u8 kind, u8 flags (bit 0: a reply made by the
 * runtime), u64 to (serial on the receiving node), u64 from node, u64 from
 * incarnation, u64 from serial, u64 ref, u32 status, bytes data.
 *
 * Calls: the caller's node keeps the pending call and its timeout (proc.c);
 * the callee's node records the inbound call and watches the callee, so that
 * a callee that exits first answers HERD_ENOPROC at once. When a node goes
 * down, calls waiting on it end with HERD_ENOTCONN and monitors of its pids
 * fire DOWN with HERD_REASON_NOCONNECTION, as Erlang's do.
 */
#include "remote.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ring.h"
#include "wire.h"

/* REMOTE_MOVED: your call `ref` is with `from` now (a moved process's new
 * copy), so the caller's node does not end it when the old node goes.
 * REMOTE_RELAY: a reply for a caller the replying node cannot reach (its
 * node is not a member there yet), sent to the node that forwarded the call
 * to it, which passes it on: data is u64 caller node, u64 caller
 * incarnation, then the reply's bytes; `to` is the caller's serial. */
enum { REMOTE_MONITOR = 32, REMOTE_DEMONITOR = 33, REMOTE_APP = 34, REMOTE_MOVED = 35,
       REMOTE_RELAY = 36 };
/* What a message adds to its data in a frame body: the channel's batch header
 * (18) and length (4), our fields (50), rounded up. A message within the
 * limit always fits a frame of its own, so a channel never stalls on it. */
#define REMOTE_OVERHEAD 128u

typedef struct remote_watch {
    uint64_t watcher; /* serial on this node */
    herd_pid_t target;
} remote_watch_t;

typedef struct inbound_call {
    herd_pid_t caller;
    uint64_t ref;
    uint64_t callee; /* serial on this node */
    uint64_t via;    /* the node that forwarded the call here, or 0 */
} inbound_call_t;

static uint64_t inbound_key(uint64_t node, uint64_t ref)
{
    return (node * 0x9e3779b97f4a7c15ull) ^ ref ^ 1; /* never 0 in practice */
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

/* The member that hosts `to`, if messages can reach it now. A stream of the
 * layers above (`queue_if_down`) also queues for a member that is down: it
 * may only be partitioned away, and the channel delivers when it answers. */
static int remote_route(herd_cluster_t *c, herd_pid_t to, int queue_if_down,
                        const mship_member_t **out)
{
    const mship_member_t *x = mship_find_id(c->mship, to.node);
    if (x == NULL || x->state == MEMBER_LEFT || x == mship_self(c->mship) ||
        (x->state == MEMBER_DOWN && !queue_if_down))
        return HERD_ENOTCONN;
    if (x->incarnation != to.incarnation)
        return HERD_ENOPROC; /* an earlier (dead) or unknown start of that node */
    *out = x;
    return 0;
}

int remote_send(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                uint64_t ref, int status, const void *data, size_t len, unsigned flags)
{
    herd_cluster_t *c = n->cluster;
    const mship_member_t *x;
    if (c == NULL)
        return HERD_ENOTCONN;
    if (len + REMOTE_OVERHEAD > FRAME_DEFAULT_MAX_BODY)
        return cluster_oversize_out(c, len + REMOTE_OVERHEAD), HERD_ETOOBIG;
    /* the layers' streams, and messages forwarded from a moved or merged
     * process (they exist nowhere else any more), queue for a member that is
     * down: it may only be cut off, or not yet seen back */
    int rc = remote_route(c, to,
                          kind == (herd_msg_kind_t)REMOTE_APP || (flags & REMOTE_FORWARDED), &x);
    cluster_peer_t *p = rc == 0 ? remote_peer(c, to.node) : NULL;
    if (rc)
        return rc;
    if (p == NULL)
        return HERD_ENOMEM;
    if (channel_set_peer(&p->ch, x->incarnation))
        herd_log(HERD_LOG_INFO, "remote", "dropped messages for an old start of %s", x->name);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, (uint8_t)kind);
    wire_put_u8(&w, (uint8_t)flags);
    wire_put_u64(&w, to.serial);
    wire_put_u64(&w, from.node);
    wire_put_u64(&w, from.incarnation);
    wire_put_u64(&w, from.serial);
    wire_put_u64(&w, ref);
    wire_put_u32(&w, (uint32_t)status);
    wire_put_bytes(&w, data, len);
    rc = w.err ? w.err : channel_queue(&p->ch, w.buf, w.len);
    wire_writer_fini(&w);
    if (rc == 0) {
        p->dirty = c->any_dirty = 1;
        c->msgs_out++;
    }
    return rc;
}

static void remote_send_frames(herd_cluster_t *c, cluster_peer_t *p, int resend, uint64_t now)
{
    const mship_member_t *x = mship_find_id(c->mship, p->id);
    if (x == NULL || x->incarnation != p->ch.peer_inc)
        return;
    for (int guard = 0; guard < 64; guard++) {
        uint8_t *body;
        size_t len;
        if (channel_next_frame(&p->ch, resend, FRAME_DEFAULT_MAX_BODY, now, &body, &len) ||
            body == NULL)
            break;
        cluster_send_frame(c, x->address, x->id, x->incarnation, FRAME_MSG, body, len);
        free(body);
        if (resend)
            break; /* one window per rto is enough; the rest follows the acks */
    }
    if (p->ch.ack_due) {
        uint8_t *body;
        size_t len;
        if (channel_ack_frame(&p->ch, &body, &len) == 0) {
            cluster_send_frame(c, x->address, x->id, x->incarnation, FRAME_ACK, body, len);
            free(body);
        }
    }
}

void remote_flush(herd_cluster_t *c, uint64_t now)
{
    if (!c->any_dirty)
        return;
    c->any_dirty = 0;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->peers, &cursor)) != NULL;) {
        cluster_peer_t *p = s->value;
        if (p->dirty)
            remote_send_frames(c, p, 0, now);
        p->dirty = 0;
    }
}

void remote_tick(herd_cluster_t *c, uint64_t now)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->peers, &cursor)) != NULL;) {
        cluster_peer_t *p = s->value;
        if (channel_resend_due(&p->ch, now))
            remote_send_frames(c, p, 1, now);
    }
}

/* ---- calls and monitors ------------------------------------------------------ */

static int remote_answer(herd_node_t *n, herd_from_t from, int status, const void *data,
                         size_t len, int by_runtime);

int remote_reply(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len)
{
    return remote_answer(n, from, status, data, len, 0);
}

int remote_callee_gone(herd_node_t *n, herd_from_t from)
{
    return remote_answer(n, from, HERD_ENOPROC, NULL, 0, 1);
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
                         size_t len, int by_runtime)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOPROC;
    uint64_t key = inbound_key(from.pid.node, from.ref);
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
    unsigned flags = by_runtime ? REMOTE_BY_RUNTIME : 0;
    int rc = remote_send(n, from.pid, HERD_MSG_REPLY, callee, from.ref, status, data, len, flags);
    if (rc == HERD_ENOTCONN && via)
        rc = remote_relay(n, via, from, callee, status, data, len, flags);
    return rc;
}

void remote_move_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t to)
{
    herd_cluster_t *c = n->cluster;
    herd_proc_t *t = proc_lookup(n, to);
    inbound_call_t *ic = c ? u64map_get(&c->inbound_calls, inbound_key(caller.node, ref)) : NULL;
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
    uint64_t key = inbound_key(caller.node, ref);
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

typedef struct remote_msg {
    uint8_t kind, flags;
    herd_pid_t to, from;
    uint64_t ref;
    int32_t status;
    const uint8_t *data;
    size_t len;
} remote_msg_t;

static int remote_decode(herd_node_t *n, const uint8_t *buf, size_t len, remote_msg_t *m)
{
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    m->kind = wire_get_u8(&r);
    m->flags = wire_get_u8(&r);
    m->to = (herd_pid_t){n->id, n->incarnation, wire_get_u64(&r)};
    m->from.node = wire_get_u64(&r);
    m->from.incarnation = wire_get_u64(&r);
    m->from.serial = wire_get_u64(&r);
    m->ref = wire_get_u64(&r);
    m->status = (int32_t)wire_get_u32(&r);
    m->len = wire_get_bytes(&r, &m->data);
    return wire_reader_done(&r);
}

/* The name of the member whose frame is being delivered, for logs. */
static const char *remote_sender_name(const herd_cluster_t *c)
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

static void remote_on_call(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    int rc = m->flags & REMOTE_FORWARDED
                 ? proc_deliver_relayed(n, m->to, HERD_MSG_CALL, m->from, m->ref, 0, m->data,
                                        m->len)
                 : proc_deliver(n, m->to, HERD_MSG_CALL, m->from, m->ref, 0, m->data, m->len, 0);
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
    inbound_call_t *ic = callee ? calloc(1, sizeof(*ic)) : NULL;
    uint64_t key = inbound_key(m->from.node, m->ref);
    /* the same call delivered again (forwarded by a node it moved from, as
     * well as sent here): its newer record replaces the older */
    if (ic)
        free(u64map_del(&c->inbound_calls, key));
    if (ic && u64map_put(&c->inbound_calls, key, ic) == 0 &&
        proc_watch(callee, m->ref, m->from, 1) == 0) {
        uint64_t sender = c->delivering_from;
        uint64_t via = (m->flags & REMOTE_FORWARDED) && sender != m->from.node ? sender : 0;
        *ic = (inbound_call_t){m->from, m->ref, to.serial, via};
        return;
    }
    if (ic && u64map_get(&c->inbound_calls, key) == ic)
        u64map_del(&c->inbound_calls, key);
    free(ic);
    remote_send(n, m->from, HERD_MSG_REPLY, m->to, m->ref, rc ? rc : HERD_ENOMEM, NULL, 0, 1);
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
        rc = proc_complete_call(n, m->ref, m->status, reply, len, m->flags & REMOTE_BY_RUNTIME);
    else
        rc = remote_send(n, caller, HERD_MSG_REPLY, m->from, m->ref, m->status, reply, len,
                         (m->flags & REMOTE_BY_RUNTIME) | REMOTE_FORWARDED);
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
    return ring_hash_key(data, len);
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

static void remote_deliver(void *data, const uint8_t *buf, size_t len)
{
    herd_cluster_t *c = data;
    herd_node_t *n = c->node;
    remote_msg_t m;
    if (remote_decode(n, buf, len, &m) != 0) {
        cluster_refuse(c, FRAME_REJECT_BODY, "a message from %s: it does not decode",
                       remote_sender_name(c));
        return;
    }
    if (!remote_sender_ok(c, &m)) {
        cluster_refuse(c, FRAME_REJECT_SENDER,
                       "a message (kind %u) from %s that claims to come from node %016llx "
                       "incarnation %llu",
                       m.kind, remote_sender_name(c), (unsigned long long)m.from.node,
                       (unsigned long long)m.from.incarnation);
        return;
    }
    c->msgs_in++;
    switch (m.kind) {
    case HERD_MSG_CALL:
        remote_on_call(c, &m);
        break;
    case HERD_MSG_REPLY:
        if (proc_complete_call(n, m.ref, m.status, m.data, m.len,
                               m.flags & REMOTE_BY_RUNTIME) == HERD_ENOPROC)
            n->stats.late_replies++; /* the call gave up: its timeout answered */
        break;
    case HERD_MSG_DOWN:
        remote_on_down(c, &m);
        break;
    case REMOTE_MONITOR:
    case REMOTE_DEMONITOR:
        remote_on_monitor(c, &m);
        break;
    case REMOTE_MOVED:
        call_moved(n, m.to, m.ref, m.from);
        break;
    case REMOTE_RELAY:
        remote_on_relay(c, &m);
        break;
    case REMOTE_APP: /* `to` names the app; the sender is the header's */
        remote_on_app(c, &m);
        break;
    case HERD_MSG_MERGE:
        if (proc_deliver(n, m.to, HERD_MSG_MERGE, m.from, 0, 0, m.data, m.len, 1))
            c->msgs_dropped++; /* the winner is gone too */
        break;
    case HERD_MSG_CAST:
    case HERD_MSG_INFO:
        if (m.flags & REMOTE_FORWARDED
                ? proc_deliver_relayed(n, m.to, (herd_msg_kind_t)m.kind, m.from, 0, 0, m.data,
                                       m.len)
                : proc_deliver(n, m.to, (herd_msg_kind_t)m.kind, m.from, 0, 0, m.data, m.len, 0))
            c->msgs_dropped++; /* dead or full: casts are at most once */
        break;
    default:
        cluster_refuse(c, FRAME_REJECT_BODY, "a message of unknown kind %u from %s", m.kind,
                       remote_sender_name(c));
    }
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
    if (p == NULL)
        return;
    channel_set_peer(&p->ch, h->sender_inc);
    uint64_t now = herd_node_now(c->node);
    c->delivering_from = h->sender;
    c->delivering_inc = h->sender_inc;
    int rc = h->type == FRAME_ACK ? channel_on_ack(&p->ch, body, h->length, now)
                                  : channel_on_msg(&p->ch, body, h->length, now,
                                                   remote_deliver, c);
    c->delivering_from = c->delivering_inc = 0;
    if (rc)
        cluster_refuse(c, FRAME_REJECT_BODY, "a %s frame from %s: its batch does not decode",
                       frame_type_name(h->type), x->name);
    if (p->ch.ack_due)
        p->dirty = c->any_dirty = 1;
}

/* ---- members that go away -------------------------------------------------- */

typedef struct ref_list {
    uint64_t *refs;
    size_t count, cap;
} ref_list_t;

static void ref_list_push(ref_list_t *l, uint64_t ref)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        uint64_t *more = realloc(l->refs, cap * sizeof(*more));
        if (more == NULL)
            return; /* what is not listed is settled by its own timeout */
        l->refs = more;
        l->cap = cap;
    }
    l->refs[l->count++] = ref;
}

/* Node `id` is unreachable: calls waiting on it fail, monitors of it fire.
 * The refs are collected first: completing them changes the maps walked. */
static void remote_node_lost(herd_cluster_t *c, uint64_t id)
{
    herd_node_t *n = c->node;
    ref_list_t calls = {0}, watches = {0};
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&n->calls, &cursor)) != NULL;)
        if (((pending_call_t *)s->value)->callee.node == id)
            ref_list_push(&calls, s->key);
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->remote_watches, &cursor)) != NULL;)
        if (((remote_watch_t *)s->value)->target.node == id)
            ref_list_push(&watches, s->key);
    for (size_t i = 0; i < calls.count; i++)
        proc_complete_call(n, calls.refs[i], HERD_ENOTCONN, NULL, 0, 1);
    for (size_t i = 0; i < watches.count; i++) {
        remote_watch_t *w = u64map_del(&c->remote_watches, watches.refs[i]);
        herd_pid_t watcher = {n->id, n->incarnation, w->watcher};
        herd_proc_t *p = proc_lookup(n, watcher);
        if (p)
            proc_forget_monitor(p, watches.refs[i]);
        proc_deliver(n, watcher, HERD_MSG_DOWN, w->target, watches.refs[i],
                     HERD_REASON_NOCONNECTION, NULL, 0, 1);
        free(w);
    }
    free(calls.refs);
    free(watches.refs);
}

void remote_on_member(herd_cluster_t *c, const mship_effect_t *e)
{
    int lost = e->new_state == MEMBER_DOWN || e->new_state == MEMBER_LEFT ||
               e->new_state == MEMBER_ABSENT;
    int was_reachable = e->old_state != MEMBER_DOWN && e->old_state != MEMBER_LEFT;
    uint64_t id = herd_node_id_of(e->name);
    if (lost && was_reachable)
        remote_node_lost(c, id);
    cluster_peer_t *p = u64map_get(&c->peers, id);
    /* Gone for good (left, or restarted: a new start has a new stream): drop
     * its stream. A member only forgotten after a long silence may come back
     * with the same start from a partition, and both ends' sequence numbers
     * must still agree then: its stream stays (its queue is bounded). */
    if (p && (e->new_state == MEMBER_LEFT ||
              (e->new_state == MEMBER_ABSENT && e->gone != MSHIP_GONE_FORGOTTEN))) {
        u64map_del(&c->peers, id);
        channel_fini(&p->ch);
        free(p);
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
