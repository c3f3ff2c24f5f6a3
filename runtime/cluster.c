/*
 * cluster.c - joins a node to a cluster: the adapter between the membership
 * state machine (membership.c, no I/O) and the real world (a transport, the
 * node's loop and clock).
 *
 * Every frame out is built here (header, HLC, sequence number, MAC); every
 * frame in is checked here in one place before any protocol sees it: size,
 * MAC, addressee, replay window. A frame that fails is dropped, counted by
 * reason for `ringctl stats`, and logged at most once a second per reason.
 *
 * Starting a cluster attaches the network to the node: its net ops
 * (cluster_net_ops, remote.c's hooks) replace node_net_local's, and the
 * node's free calls back into the cluster through them (node.h).
 */
#include "cluster.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fdguard.h"
#include "log.h"
#include "remote.h"
#include "runtime_layers.h"
#include "svclist.h"

#define CLUSTER_MAX_DRIFT_MS 60000u /* a clock further ahead is not followed */
/* How often the transport's links are asked how they stand: a killed
 * member's refused link is noticed within this (plus nanomsg's reconnect,
 * transport_nn.c), not after heartbeats of silence. */
#define CLUSTER_LINK_POLL_MS 10u


const char *herd_member_state_name(herd_member_state_t s)
{
    return mship_state_name((mship_state_t)s);
}

const char *herd_cluster_reject_name(int reason)
{
    if (reason <= 0 || reason >= FRAME_REJECT_COUNT)
        return NULL;
    return frame_reject_name((frame_reject_t)reason);
}

/* ---- fault injection ------------------------------------------------------------ */

/* Whether a frame for `address` (receiver `to`, 0 when unknown: a HELLO to a
 * seed) goes to a blocked peer. By id when known, else by the address the
 * peer had when blocked or has now. */
static int cluster_blocked_out(const herd_cluster_t *c, const char *address, uint64_t to)
{
    if (c->blocked.count == 0)
        return 0;
    if (to != 0)
        return u64map_get(&c->blocked, to) != NULL;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->blocked, &cursor)) != NULL;) {
        const mship_member_t *m = mship_find_id(c->mship, s->key);
        if (strcmp(s->value, address) == 0 || (m && strcmp(m->address, address) == 0))
            return 1;
    }
    return 0;
}

int herd_cluster_block(herd_node_t *n, uint64_t peer_id, int on)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    if (peer_id == 0 || peer_id == n->id)
        return HERD_EINVAL;
    const mship_member_t *m = mship_find_id(c->mship, peer_id);
    if (!on) {
        char *address = u64map_del(&c->blocked, peer_id);
        if (address)
            herd_log(HERD_LOG_WARN, "cluster", "fault injection: frames to and from %s flow "
                     "again", m ? m->name : "a node that is not a member");
        free(address);
        return 0;
    }
    if (u64map_get(&c->blocked, peer_id))
        return 0;
    char *address = strdup(m ? m->address : "");
    if (address == NULL || u64map_put(&c->blocked, peer_id, address) != 0) {
        free(address);
        return HERD_ENOMEM;
    }
    herd_log(HERD_LOG_WARN, "cluster", "fault injection: dropping every frame to and from %s",
             m ? m->name : "a node that is not a member");
    return 0;
}

/* ---- frames out --------------------------------------------------------------- */

/* A frame over the limit is refused here and counted: the receiver's
 * nanomsg would drop it (NN_RCVMAXSIZE) and close the connection without
 * telling herd, so the receiver cannot count it. */
void cluster_oversize_out(herd_cluster_t *c, size_t body_len)
{
    c->oversize_out++;
    herd_log_limited(&c->oversize_log, herd_node_now(c->node), HERD_LOG_WARN, "cluster",
                     "refused to send a frame of %zu body bytes: over the %u-byte limit; "
                     "%llu so far",
                     body_len, FRAME_DEFAULT_MAX_BODY, (unsigned long long)c->oversize_out);
}

/* The header and MAC around `body` (len bytes) into out[frame_size(len)]
 * (the body may sit in place at out + FRAME_HEADER_SIZE), and the frame to
 * the transport. */
static int send_encoded(herd_cluster_t *c, const char *address, uint64_t to, uint64_t to_inc,
                        uint8_t type, const uint8_t *body, size_t len, uint8_t *out)
{
    herd_node_t *n = c->node;
    frame_header_t h = {.type = type,
                        .sender = n->id,
                        .sender_inc = n->incarnation,
                        .receiver = to,
                        .receiver_inc = to_inc,
                        .hlc = herd_node_hlc_now(n),
                        .seq = ++c->seq};
    int rc = frame_encode(&c->key, &h, body, len, out, frame_size(len));
    if (rc == 0)
        rc = c->transport.ops->send(c->transport.impl, address, out, frame_size(len));
    return rc;
}

/* Whether a frame of body `len` to `to` goes out at all: too big (counted,
 * HERD_ETOOBIG into *rc), or lost on a blocked way (counted, 0). */
static int send_refused(herd_cluster_t *c, const char *address, uint64_t to, size_t len,
                        int *rc)
{
    *rc = 0;
    if (len > FRAME_DEFAULT_MAX_BODY) {
        cluster_oversize_out(c, len);
        *rc = HERD_ETOOBIG;
        return 1;
    }
    if (cluster_blocked_out(c, address, to)) {
        c->blocked_out++; /* lost on the way, as across a partition */
        return 1;
    }
    return 0;
}

int cluster_send_frame(herd_cluster_t *c, const char *address, uint64_t to, uint64_t to_inc,
                       uint8_t type, const uint8_t *body, size_t len)
{
    size_t need = frame_size(len);
    int rc;
    if (send_refused(c, address, to, len, &rc))
        return rc;
    if (need > c->frame_cap) {
        uint8_t *buf = realloc(c->frame_buf, need);
        if (buf == NULL)
            return HERD_ENOMEM;
        c->frame_buf = buf;
        c->frame_cap = need;
    }
    return send_encoded(c, address, to, to_inc, type, body, len, c->frame_buf);
}

int cluster_send_frame_at(herd_cluster_t *c, const char *address, uint64_t to, uint64_t to_inc,
                          uint8_t type, uint8_t *frame, size_t body_len)
{
    int rc;
    if (send_refused(c, address, to, body_len, &rc))
        return rc;
    return send_encoded(c, address, to, to_inc, type, frame + FRAME_HEADER_SIZE, body_len,
                        frame);
}

/* ---- membership effects ---------------------------------------------------- */

static void cluster_rebuild_ring(herd_cluster_t *c)
{
    herd_ring_t *r;
    if (mship_build_ring(c->mship, &r) != 0) {
        herd_log(HERD_LOG_ERROR, "cluster", "cannot rebuild the ring: out of memory");
        return;
    }
    herd_ring_free(c->ring);
    c->ring = r;
    herd_log(HERD_LOG_INFO, "cluster", "ring rebuilt: %zu members, %zu points",
             herd_ring_member_count(r), herd_ring_point_count(r));
}

static herd_event_kind_t member_event_kind(herd_member_state_t state)
{
    switch (state) {
    case HERD_MEMBER_UP: return HERD_EV_MEMBER_UP;
    case HERD_MEMBER_SUSPECT: return HERD_EV_MEMBER_SUSPECT;
    case HERD_MEMBER_DRAINING: return HERD_EV_MEMBER_DRAINING;
    case HERD_MEMBER_DOWN: return HERD_EV_MEMBER_DOWN;
    default: return HERD_EV_MEMBER_LEFT; /* left, or no longer a member */
    }
}

/* A member changed state: the node's event bus tells herd's layers (the
 * registry, the supervisor), then the programs' subscribers and hooks. */
static void cluster_tell_member(herd_cluster_t *c, const mship_effect_t *e)
{
    herd_member_state_t to = (herd_member_state_t)e->new_state;
    herd_event_t ev = {
        .kind = member_event_kind(to),
        .name = e->name,
        .node = herd_node_id_of(e->name),
        .incarnation = e->incarnation,
        .old_state = (herd_member_state_t)e->old_state,
        .new_state = to,
        .gone = (int)e->gone,
    };
    herd_event_emit(c->node, &ev);
}

static void cluster_apply(herd_cluster_t *c, mship_effects_t *fx)
{
    if (fx->lost) { /* the table and the ring changed all the same (membership.h) */
        c->effects_lost += fx->lost;
        herd_log(HERD_LOG_ERROR, "cluster", "out of memory: %zu membership effect(s) lost "
                 "(frames not sent, members' changes not passed on); %llu so far", fx->lost,
                 (unsigned long long)c->effects_lost);
    }
    for (size_t i = 0; i < fx->count; i++) {
        mship_effect_t *e = &fx->items[i];
        if (e->kind == MSHIP_SEND)
            cluster_send_frame(c, e->address, e->to, e->to_inc, e->type, e->body, e->len);
        else if (e->new_state == MEMBER_ABSENT && e->gone == MSHIP_GONE_FORGOTTEN)
            c->transport.ops->forget(c->transport.impl, e->address); /* close its link */
    }
    if (fx->ring_changed)
        cluster_rebuild_ring(c);
    for (size_t i = 0; i < fx->count; i++)
        if (fx->ring_changed || fx->items[i].kind == MSHIP_MEMBER) {
            c->generation++; /* before the hooks: they may read it */
            break;
        }
    for (size_t i = 0; i < fx->count; i++) {
        mship_effect_t *e = &fx->items[i];
        if (e->kind != MSHIP_MEMBER)
            continue;
        remote_on_member(c, e);
        cluster_tell_member(c, e);
    }
    mship_effects_clear(fx);
}

_Static_assert((int)TRANSPORT_LINK_OK == (int)MSHIP_LINK_OK &&
                   (int)TRANSPORT_LINK_CLOSED == (int)MSHIP_LINK_CLOSED &&
                   (int)TRANSPORT_LINK_REFUSED == (int)MSHIP_LINK_REFUSED,
               "mship_link_t mirrors transport_link_t");

/* Tell membership how the link to each member stands (mship_link_report): a
 * member whose connection closed and whose port refuses the reconnect is
 * declared down at once. Statistics calls only, one to three per member. */
static void cluster_check_links(herd_cluster_t *c, uint64_t now)
{
    c->last_link_check = now;
    remote_release_acks(c); /* the flush that ends the iteration sends them */
    if (c->transport.ops->link_lost == NULL || c->left)
        return;
    const mship_member_t *self = mship_self(c->mship);
    for (size_t i = 0; i < mship_member_count(c->mship); i++) {
        const mship_member_t *x = mship_member_at(c->mship, i);
        if (x == self || x->state == MEMBER_LEFT)
            continue;
        int link = c->transport.ops->link_lost(c->transport.impl, x->address);
        if (link < MSHIP_LINK_OK || link > MSHIP_LINK_REFUSED)
            link = MSHIP_LINK_OK; /* a transport's value we do not know says nothing */
        if (link == MSHIP_LINK_OK && x->link_verdict_at == 0)
            continue; /* the usual case: nothing to tell */
        char name[HERD_RING_NAME_MAX + 1];
        strcpy(name, x->name); /* the table may change under the call */
        mship_link_report(c->mship, name, (mship_link_t)link, now, &c->fx);
    }
    if (c->fx.count)
        cluster_apply(c, &c->fx);
}

static void cluster_on_links(uv_timer_t *h)
{
    herd_cluster_t *c = h->data;
    cluster_check_links(c, herd_node_now(c->node));
}

/*
 * A node whose cookie (or cluster name) differs from its seeds' hears
 * nothing at all: its frames fail the MAC there, and they never learn of it.
 * So a node with seeds to join that receives no authenticated frame for
 * CLUSTER_SILENT_MS counts it (seeds_silent) and says so, at most every
 * CLUSTER_SILENT_LOG_MS.
 */
#define CLUSTER_SILENT_MS 5000
#define CLUSTER_SILENT_LOG_MS 30000

static void cluster_check_silence(herd_cluster_t *c, uint64_t now)
{
    if (c->seed_count == 0 || now - c->last_authed < CLUSTER_SILENT_MS ||
        now - c->last_silent_mark < CLUSTER_SILENT_MS)
        return;
    c->seeds_silent++;
    c->last_silent_mark = now;
    if (c->last_silent_log && now - c->last_silent_log < CLUSTER_SILENT_LOG_MS)
        return;
    c->last_silent_log = now;
    herd_log(HERD_LOG_WARN, "cluster",
             "no authenticated frame from any seed or member for %llu ms: the seeds are "
             "down or unreachable, or use another cookie (--cookie-file) or cluster name "
             "(%llu such periods so far)",
             (unsigned long long)(now - c->last_authed), (unsigned long long)c->seeds_silent);
}

static void cluster_tick(herd_cluster_t *c)
{
    uint64_t now = herd_node_now(c->node);
    c->last_tick = now;
    cluster_check_silence(c, now);
    mship_tick(c->mship, now, &c->fx);
    cluster_apply(c, &c->fx);
    remote_tick(c, now);
}

static void cluster_on_tick(uv_timer_t *h)
{
    cluster_tick(h->data);
}

int herd_cluster_poll(herd_node_t *n)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    if (herd_node_now(n) - c->last_link_check >= CLUSTER_LINK_POLL_MS && !c->left)
        cluster_check_links(c, herd_node_now(n));
    if (herd_node_now(n) - c->last_tick >= c->tick_ms && !c->left)
        cluster_tick(c);
    remote_flush(c, herd_node_now(n));
    return 0;
}

int herd_cluster_flush(herd_node_t *n)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    /* in the middle of long work the loop's time is the turn's start: what
     * leaves now is stamped now, or its stream's resend would come due as
     * soon as the work ends (and a peer busy with its own burst had no
     * chance to acknowledge it) */
    if (n->clock.now_ms == NULL)
        uv_update_time(n->loop);
    remote_flush(c, herd_node_now(n));
    return 0;
}

/* Once per loop iteration, before it waits: the messages queued meanwhile
 * leave in as few frames as possible. */
static void cluster_on_flush(uv_prepare_t *h)
{
    herd_cluster_t *c = h->data;
    remote_flush(c, herd_node_now(c->node));
}

/* ---- frames in --------------------------------------------------------------- */

void cluster_refuse(herd_cluster_t *c, frame_reject_t why, const char *fmt, ...)
{
    if ((unsigned)why >= FRAME_REJECT_COUNT)
        why = FRAME_REJECT_BODY;
    c->rejected[why]++;
    herd_log_limit_t *lim = &c->reject_log[why];
    uint64_t now = herd_node_now(c->node);
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    herd_log_limited(lim, now, why == FRAME_REJECT_MAC || why == FRAME_REJECT_SENDER
                                   ? HERD_LOG_WARN
                                   : HERD_LOG_INFO,
                     "cluster", "dropped %s (%s)%s; %llu so far", what, frame_reject_name(why),
                     why == FRAME_REJECT_MAC ? ": wrong cluster secret, or altered" : "",
                     (unsigned long long)c->rejected[why]);
}

static void cluster_reject(herd_cluster_t *c, frame_reject_t why, const frame_header_t *h)
{
    const mship_member_t *x = h ? mship_find_id(c->mship, h->sender) : NULL;
    if (why == FRAME_REJECT_MAC)
        cluster_refuse(c, why, "a frame");
    else if (x)
        cluster_refuse(c, why, "a %s frame from %s", frame_type_name(h->type), x->name);
    else
        cluster_refuse(c, why, "a frame");
}

/* Not addressed to this start of this node. Only a HELLO may name no start
 * (to a seed: no receiver; to a silent member: no incarnation), and a HELLO
 * admits nobody (mship_join.c): every other frame must name this start. */
static int cluster_misaddressed(const herd_cluster_t *c, const frame_header_t *h)
{
    const herd_node_t *n = c->node;
    if (h->receiver == n->id && h->receiver_inc == n->incarnation)
        return 0;
    return h->type != FRAME_HELLO || h->receiver_inc != 0 ||
           (h->receiver != 0 && h->receiver != n->id);
}

/* The sender's replay window (replay.h); a HELLO never moves it to a new
 * incarnation. */
static int cluster_fresh(herd_cluster_t *c, const frame_header_t *h)
{
    replay_window_t *w = u64map_get(&c->windows, h->sender);
    if (w == NULL) {
        w = calloc(1, sizeof(*w));
        if (w == NULL || u64map_put(&c->windows, h->sender, w) != 0) {
            free(w);
            return 0;
        }
    }
    if (h->type == FRAME_HELLO)
        return replay_accept_hello(w, h->sender_inc, h->seq);
    return replay_accept(w, h->sender_inc, h->seq);
}

static void cluster_on_frame(void *data, const uint8_t *buf, size_t len)
{
    herd_cluster_t *c = data;
    frame_header_t h;
    const uint8_t *body;
    frame_reject_t why;
    if (frame_decode(&c->key, buf, len, FRAME_DEFAULT_MAX_BODY, &h, &body, &why) != 0) {
        cluster_reject(c, why, NULL);
        return;
    }
    if (c->blocked.count && u64map_get(&c->blocked, h.sender)) {
        c->blocked_in++;
        return;
    }
    if (cluster_misaddressed(c, &h) || !cluster_fresh(c, &h)) {
        cluster_reject(c, FRAME_REJECT_REPLAY, &h);
        return;
    }
    c->last_authed = herd_node_now(c->node);
    /* A member whose clock runs far ahead must not drag every clock with it:
     * such a timestamp is not merged (the frame is still used) and logged. */
    uint64_t wall = herd_node_wall_ms(c->node);
    if (hlc_physical_ms(h.hlc) <= wall + CLUSTER_MAX_DRIFT_MS)
        hlc_observe(&c->node->hlc, wall, h.hlc);
    else if (wall - c->last_drift_log >= 10000) {
        c->last_drift_log = wall;
        herd_log(HERD_LOG_WARN, "cluster", "a member's clock is %llu ms ahead of ours: not "
                 "merged into our clock", (unsigned long long)(hlc_physical_ms(h.hlc) - wall));
    }
    uint64_t now = herd_node_now(c->node);
    switch (h.type) {
    case FRAME_HELLO:
    case FRAME_HEARTBEAT:
    case FRAME_LEAVE:
        if (mship_receive(c->mship, now, &h, body, h.length, &c->fx, &why) != 0)
            cluster_reject(c, why, &h);
        cluster_apply(c, &c->fx);
        break;
    case FRAME_MSG:
    case FRAME_ACK:
        remote_on_frame(c, &h, body);
        break;
    default:
        cluster_reject(c, FRAME_REJECT_TYPE, &h);
    }
}

/* ---- lifecycle --------------------------------------------------------------- */

static int cluster_membership(herd_cluster_t *c, const herd_cluster_config_t *cfg)
{
    herd_node_t *n = c->node;
    mship_config_t mc = {.cluster = cfg->cluster ? cfg->cluster : "herd",
                         .name = n->name,
                         .address = cfg->listen,
                         .incarnation = n->incarnation,
                         .weight = cfg->weight,
                         .seeds = cfg->seeds,
                         .seed_count = cfg->seed_count,
                         .heartbeat_ms = cfg->heartbeat_ms,
                         .suspect_ms = cfg->suspect_ms,
                         .down_ms = cfg->down_ms,
                         .forget_ms = cfg->forget_ms};
    int rc = mship_new(&mc, herd_node_now(n), &c->mship);
    if (rc == 0)
        rc = mship_build_ring(c->mship, &c->ring);
    uint32_t hb = cfg->heartbeat_ms ? cfg->heartbeat_ms : 200;
    c->tick_ms = hb / 4 > 10 ? hb / 4 : 10;
    return rc;
}

static void cluster_free_parts(herd_cluster_t *c)
{
    mship_free(c->mship);
    herd_ring_free(c->ring);
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->windows, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&c->windows);
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&c->blocked, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&c->blocked);
    remote_fini(c);
    mship_effects_fini(&c->fx);
    for (size_t i = 0; i < c->hook_count; i++) {
        herd_events_unsubscribe(c->node, c->hooks[i]->sub);
        free(c->hooks[i]);
    }
    free(c->hooks);
    free(c->frame_buf);
    free(c);
}

static void cluster_on_closed(uv_handle_t *h)
{
    herd_cluster_t *c = h->data;
    c->closed_handles++;
}

/* The node is being freed (its net ops' close). */
static void cluster_free(herd_node_t *n)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return;
    remote_flush(c, herd_node_now(c->node)); /* what is queued still goes out */
    uv_close((uv_handle_t *)&c->tick, cluster_on_closed);
    uv_close((uv_handle_t *)&c->flush, cluster_on_closed);
    uv_close((uv_handle_t *)&c->links, cluster_on_closed);
    while (c->closed_handles < 3)
        uv_run(c->node->loop, UV_RUN_NOWAIT);
    fdguard_free(c->guard);
    c->transport.ops->close(c->transport.impl);
    n->cluster = NULL;
    node_net_detach(n);
    cluster_free_parts(c);
}

/* How the process core reaches other nodes once the node is in a cluster
 * (node.h says what each hook does). */
static const node_net_ops_t cluster_net_ops = {
    .send = remote_send,
    .send_call = remote_send_call,
    .send_many = remote_send_many,
    .reply = remote_reply,
    .callee_gone = remote_callee_gone,
    .monitor = remote_monitor,
    .demonitor = remote_demonitor,
    .move_inbound = remote_move_inbound,
    .release_inbound = remote_release_inbound,
    .close = cluster_free,
};

int herd_cluster_start(herd_node_t *n, const herd_cluster_config_t *cfg)
{
    return herd_cluster_start_with(n, cfg, NULL);
}

int herd_cluster_start_with(herd_node_t *n, const herd_cluster_config_t *cfg,
                            const struct transport *transport)
{
    if (n->cluster)
        return HERD_EEXIST;
    if (cfg == NULL || cfg->listen == NULL || cfg->secret == NULL)
        return HERD_EINVAL;
    herd_cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HERD_ENOMEM;
    c->node = n;
    c->generation = 1; /* 0 is "in no cluster" */
    c->seed_count = cfg->seed_count;
    c->last_authed = c->last_silent_mark = herd_node_now(n);
    u64map_init(&c->windows);
    u64map_init(&c->blocked);
    remote_init(c);
    mship_effects_init(&c->fx);
    int rc = frame_key_from_secret(&c->key, cfg->secret, cfg->secret_len);
    if (rc == 0)
        rc = cluster_membership(c, cfg);
    if (rc == 0 && transport)
        c->transport = *transport;
    else if (rc == 0)
        rc = transport_nn_new(n->loop, frame_size(FRAME_DEFAULT_MAX_BODY), &c->transport);
    if (rc) {
        cluster_free_parts(c);
        return rc;
    }
    rc = c->transport.ops->listen(c->transport.impl, cfg->listen, cluster_on_frame, c);
    if (rc) {
        c->transport.ops->close(c->transport.impl);
        cluster_free_parts(c);
        return rc;
    }
    /* A nanomsg tcp:// port is guarded against running out of descriptors
     * (fdguard.h); a member's link carries data within its down time. */
    if (transport == NULL)
        fdguard_start(n, cfg->listen, cfg->down_ms ? cfg->down_ms
                                      : 5u * (cfg->heartbeat_ms ? cfg->heartbeat_ms : 200u),
                      &c->guard);
    uv_timer_init(n->loop, &c->tick);
    uv_prepare_init(n->loop, &c->flush);
    c->tick.data = c->flush.data = c;
    uv_timer_start(&c->tick, cluster_on_tick, 0, c->tick_ms);
    uv_prepare_start(&c->flush, cluster_on_flush);
    uv_unref((uv_handle_t *)&c->flush);
    uv_timer_init(n->loop, &c->links);
    c->links.data = c;
    if (c->transport.ops->link_lost) {
        uv_timer_start(&c->links, cluster_on_links, CLUSTER_LINK_POLL_MS, CLUSTER_LINK_POLL_MS);
        uv_unref((uv_handle_t *)&c->links); /* the tick keeps the loop alive */
    }
    n->cluster = c;
    node_net_attach(n, &cluster_net_ops);
    return 0;
}

int herd_cluster_leave(herd_node_t *n)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    int rc = mship_leave(c->mship, herd_node_now(n), &c->fx);
    cluster_apply(c, &c->fx);
    uv_timer_stop(&c->tick);
    uv_timer_stop(&c->links);
    c->left = 1;
    return rc;
}

int herd_cluster_set_draining(herd_node_t *n, int on)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    int rc = mship_set_draining(c->mship, on, herd_node_now(n), &c->fx);
    cluster_apply(c, &c->fx);
    return rc;
}

int herd_cluster_set_services(herd_node_t *n, const char *const *names, size_t count)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    herd_service_list_t l;
    int rc = svclist_set(&l, names, count);
    if (rc)
        return rc;
    mship_set_services(c->mship, &l, herd_node_now(n), &c->fx);
    cluster_apply(c, &c->fx);
    return 0;
}

int herd_cluster_set_seeds(herd_node_t *n, const char *const *seeds, size_t count)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    int rc = mship_set_seeds(c->mship, seeds, count);
    if (rc == 0)
        c->seed_count = count; /* the silence check counts only with seeds */
    return rc;
}

static void cluster_hook_tell(void *data, const herd_event_t *ev)
{
    const cluster_hook_t *h = data;
    h->cb(h->data, ev->name, ev->incarnation, ev->old_state, ev->new_state, ev->gone);
}

int herd_cluster_on_change(herd_node_t *n, herd_member_cb cb, void *data)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    if (cb == NULL)
        return HERD_EINVAL;
    if (c->hook_count == c->hook_cap) {
        size_t cap = c->hook_cap ? c->hook_cap * 2 : 4;
        cluster_hook_t **hooks = realloc(c->hooks, cap * sizeof(*hooks));
        if (hooks == NULL)
            return HERD_ENOMEM;
        c->hooks = hooks;
        c->hook_cap = cap;
    }
    cluster_hook_t *h = malloc(sizeof(*h));
    if (h == NULL)
        return HERD_ENOMEM;
    *h = (cluster_hook_t){cb, data, 0};
    int rc = herd_events_subscribe(n, HERD_EV_MEMBERS, cluster_hook_tell, h, &h->sub);
    if (rc != 0) {
        free(h);
        return rc;
    }
    c->hooks[c->hook_count++] = h;
    return 0;
}

void herd_cluster_off_change(herd_node_t *n, herd_member_cb cb, void *data)
{
    herd_cluster_t *c = n->cluster;
    for (size_t i = 0; c && i < c->hook_count; i++) {
        cluster_hook_t *h = c->hooks[i];
        if (h->cb == cb && h->data == data) {
            herd_events_unsubscribe(n, h->sub);
            free(h);
            memmove(&c->hooks[i], &c->hooks[i + 1], (c->hook_count - i - 1) * sizeof(c->hooks[0]));
            c->hook_count--;
            return;
        }
    }
}

/* ---- introspection ------------------------------------------------------------ */

static void member_info(const herd_cluster_t *c, const mship_member_t *x, uint64_t now,
                        herd_member_info_t *o)
{
    memset(o, 0, sizeof(*o));
    strcpy(o->name, x->name);
    strcpy(o->address, x->address);
    o->incarnation = x->incarnation;
    o->state = (herd_member_state_t)x->state;
    o->weight = x->weight;
    o->last_heard_ms = x == mship_self(c->mship) ? 0 : now - x->last_heard;
}

int herd_cluster_members(herd_node_t *n, herd_member_info_t *out, size_t cap)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    size_t count = mship_member_count(c->mship);
    uint64_t now = herd_node_now(n);
    for (size_t i = 0; i < count && i < cap; i++)
        member_info(c, mship_member_at(c->mship, i), now, &out[i]);
    return (int)count;
}

int herd_cluster_member(herd_node_t *n, uint64_t id, herd_member_info_t *out)
{
    herd_cluster_t *c = n->cluster;
    const mship_member_t *x = c ? mship_find_id(c->mship, id) : NULL;
    if (x == NULL)
        return HERD_ENOENT;
    member_info(c, x, herd_node_now(n), out);
    return 0;
}

int herd_cluster_foreach_member(herd_node_t *n, herd_member_fn fn, void *data)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    uint64_t now = herd_node_now(n);
    size_t count = mship_member_count(c->mship);
    herd_member_info_t info;
    for (size_t i = 0; i < count; i++) {
        member_info(c, mship_member_at(c->mship, i), now, &info);
        int rc = fn(data, &info);
        if (rc)
            return rc;
    }
    return 0;
}

const struct herd_ring *herd_cluster_ring(herd_node_t *n)
{
    return n->cluster ? n->cluster->ring : NULL;
}

uint64_t herd_cluster_generation(herd_node_t *n)
{
    return n->cluster ? n->cluster->generation : 0;
}

size_t herd_cluster_unconfirmed(herd_node_t *n)
{
    return n->cluster ? mship_candidate_count(n->cluster->mship) : 0;
}

uint32_t herd_cluster_forget_ms(herd_node_t *n)
{
    return n->cluster ? mship_forget_ms(n->cluster->mship) : 0;
}

int herd_cluster_member_provides(herd_node_t *n, uint64_t id, const char *service)
{
    herd_cluster_t *c = n->cluster;
    const mship_member_t *x = c ? mship_find_id(c->mship, id) : NULL;
    if (x == NULL)
        return HERD_ENOENT;
    return svclist_has(&x->services, service);
}

int herd_cluster_member_services(herd_node_t *n, uint64_t id, herd_service_list_t *out)
{
    herd_cluster_t *c = n->cluster;
    const mship_member_t *x = c ? mship_find_id(c->mship, id) : NULL;
    if (x == NULL)
        return HERD_ENOENT;
    out->count = x->services.count;
    memcpy(out->names, x->services.names, x->services.count * sizeof(out->names[0]));
    return 0;
}

_Static_assert(FRAME_REJECT_COUNT <= HERD_CLUSTER_REJECT_MAX,
               "herd_cluster_stats_t.rejected holds every reason");

int herd_cluster_stats(herd_node_t *n, herd_cluster_stats_t *out)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    transport_stats_t ts;
    c->transport.ops->stats(c->transport.impl, &ts);
    memset(out, 0, sizeof(*out));
    out->frames_in = ts.frames_in;
    out->frames_out = ts.frames_out;
    out->bytes_in = ts.bytes_in;
    out->bytes_out = ts.bytes_out;
    out->dropped_out = ts.dropped_out;
    out->msgs_dropped = c->msgs_dropped;
    out->replies_relayed = c->replies_relayed;
    out->withdrawn = c->withdrawn;
    out->calls_not_applied = c->calls_not_applied;
    out->calls_uncertain = c->calls_uncertain;
    out->calls_expired = c->calls_expired;
    out->calls_duplicate = c->calls_duplicate;
    out->peers = ts.peers;
    out->blocked_in = c->blocked_in;
    out->blocked_out = c->blocked_out;
    out->blocked_peers = (uint32_t)c->blocked.count;
    out->oversize_out = c->oversize_out;
    out->ack_frames_out = c->ack_frames_out;
    out->seeds_silent = c->seeds_silent;
    out->multicasts_out = c->multicasts_out;
    out->multicasts_in = c->multicasts_in;
    mship_stats_t ms;
    mship_stats(c->mship, &ms);
    out->prompt_beats = ms.prompt_beats;
    out->prompt_beats_deferred = ms.prompt_deferred;
    out->membership_effects_lost = c->effects_lost;
    for (int i = 0; i < FRAME_REJECT_COUNT; i++)
        out->rejected[i] = c->rejected[i];
    return 0;
}

_Static_assert((int)MSHIP_ID_UNCHECKED == (int)HERD_IDENTITY_UNCHECKED &&
                   (int)MSHIP_ID_PROBING == (int)HERD_IDENTITY_PROBING &&
                   (int)MSHIP_ID_CONFIRMED == (int)HERD_IDENTITY_CONFIRMED &&
                   (int)MSHIP_ID_REFUSED == (int)HERD_IDENTITY_REFUSED,
               "herd_identity_t mirrors mship_identity_t");

int herd_cluster_identity(herd_node_t *n, uint64_t *holder_inc, char *holder_address,
                          size_t cap)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOENT;
    return (int)mship_identity(c->mship, holder_inc, holder_address, cap);
}
