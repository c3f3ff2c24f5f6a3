/*
 * cluster.h - the cluster adapter's internals (cluster.c); users call the
 * herd_cluster_* functions of herd_runtime.h.
 */
#ifndef HERD_CLUSTER_H
#define HERD_CLUSTER_H

#include "channel.h"
#include "hlc.h"
#include "log.h"
#include "membership.h"
#include "node.h"
#include "replay.h"
#include "runtime_layers.h"
#include "transport.h"

/* A program's herd_cluster_on_change hook: a subscriber of the node's
 * member events (herd_events.h). */
typedef struct cluster_hook {
    herd_member_cb cb;
    void *data;
    uint64_t sub; /* its subscription */
} cluster_hook_t;

/* One peer node's message stream (remote.c). */
typedef struct cluster_peer {
    uint64_t id;
    channel_t ch;
    int dirty; /* queued messages or an ack wait for the next flush */
} cluster_peer_t;

typedef struct herd_cluster {
    herd_node_t *node;
    mship_t *mship;
    transport_t transport;
    struct fdguard *guard; /* owned: the cluster port's guard (fdguard.h), or NULL */
    frame_key_t key;
    uint64_t seq;
    u64map_t windows; /* sender id -> replay_window_t */
    herd_ring_t *ring;
    uint64_t generation; /* herd_cluster_generation: moves with every member event */
    uv_timer_t tick;
    uv_prepare_t flush; /* sends what the loop iteration queued, batched */
    int closed_handles;
    uint32_t tick_ms;
    uint8_t *frame_buf; /* one frame being built */
    size_t frame_cap;
    uint64_t rejected[FRAME_REJECT_COUNT];
    herd_log_limit_t reject_log[FRAME_REJECT_COUNT]; /* cluster_refuse's, per reason */
    cluster_hook_t **hooks; /* herd_cluster_on_change's, owned */
    size_t hook_count, hook_cap;
    mship_effects_t fx;
    /* remote messaging (remote.c) */
    u64map_t peers;          /* node id -> cluster_peer */
    u64map_t remote_watches; /* monitor ref -> remote_watch: my monitors of remote pids */
    u64map_t inbound_calls;  /* key of (caller node, ref) -> inbound_call */
    int any_dirty;
    int acks_held; /* some peer's acknowledgement waits for a frame to carry it */
    uint64_t last_tick; /* node clock, for herd_cluster_poll */
    uint64_t last_drift_log;
    int left;
    struct {
        herd_app_cb cb;
        void *data;
    } apps[256];
    uint64_t msgs_out, msgs_in, msgs_dropped;
    uint64_t multicasts_out, multicasts_in; /* REMOTE_CAST_MANY messages (remote_many.c) */
    uint64_t effects_lost; /* membership effects lost for want of memory (cluster_apply) */
    uint64_t replies_relayed; /* replies sent on through the node that forwarded the call */
    /* what members lost and late calls cost (remote_lost.c, remote.c): see
     * herd_cluster_stats_t */
    uint64_t withdrawn, calls_not_applied, calls_uncertain, calls_expired, calls_duplicate;
    herd_log_limit_t lost_log, expired_log, duplicate_log;
    /* the sender (node, incarnation) of the frame being delivered, as its
     * authenticated header says, and the header's HLC timestamp (remote.c) */
    uint64_t delivering_from, delivering_inc, delivering_hlc;
    /* fault injection (herd_cluster_block): peer id -> its address when
     * blocked (malloc'ed, "" if it was not a member yet) */
    u64map_t blocked;
    uint64_t blocked_in, blocked_out;
    /* limits and silence: frames refused on the way out as over the frame
     * limit (the receiver's nanomsg would drop them uncounted), and periods
     * of CLUSTER_SILENT_MS with seeds to join and no authenticated frame */
    uint64_t oversize_out;
    uint64_t ack_frames_out; /* frames that carried only an acknowledgement */
    herd_log_limit_t oversize_log;
    size_t seed_count;
    uint64_t last_authed, seeds_silent, last_silent_mark, last_silent_log;
    /* the poll of the transport's links (cluster.c, cluster_check_links) */
    uv_timer_t links;
    uint64_t last_link_check; /* node clock, for herd_cluster_poll */
} herd_cluster_t;

/* Build and send one frame to `address` (to/to_inc: the receiver's id and
 * incarnation, 0 when unknown). Errors: HERD_ETOOBIG, HERD_EFULL, HERD_ENOMEM. */
int cluster_send_frame(herd_cluster_t *c, const char *address, uint64_t to, uint64_t to_inc,
                       uint8_t type, const uint8_t *body, size_t len);
/* cluster_send_frame of a body that sits FRAME_HEADER_SIZE bytes into
 * frame[], with FRAME_MAC_SIZE bytes of room after it: the header and MAC
 * are written around it in place (channel_next_frame_at). */
int cluster_send_frame_at(herd_cluster_t *c, const char *address, uint64_t to, uint64_t to_inc,
                          uint8_t type, uint8_t *frame, size_t body_len);
/* A frame, or a message in one, is refused for reason `why`: count it (for
 * `ringctl stats`) and log what `fmt` says, at most once a second per
 * reason (herd_log_limited). Every bad-input log of the receive path goes
 * through here. */
void cluster_refuse(herd_cluster_t *c, frame_reject_t why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Count (and log, rate-limited) a frame refused as over the size limit. */
void cluster_oversize_out(herd_cluster_t *c, size_t body_len);

#endif
