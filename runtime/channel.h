/*
 * channel.h - a reliable, ordered stream of messages to one peer node, free
 * of I/O.
 *
 * nanomsg loses frames when a link breaks and says nothing, so everything
 * between nodes that must arrive (process messages, and later the registry
 * and handoff) travels in a channel: each message gets a sequence number,
 * frames carry a batch of consecutive messages plus a cumulative
 * acknowledgement of the other direction, the sender keeps what is not yet
 * acknowledged and sends it again after rto_ms (go-back-N), and the receiver
 * delivers each sequence number exactly once, in order, holding back what
 * arrives early. A channel belongs to one pair of incarnations: when the
 * peer restarts, what was queued for the old one is dropped (its processes
 * are dead), and the stream starts again from 1.
 *
 * Flow: at most `window` bytes of messages are in flight (sent and not yet
 * acknowledged); the rest waits in the channel, unsent, until acks open the
 * window (a lone message larger than the window still goes when nothing is
 * in flight). A resend goes back to the oldest unacknowledged message and
 * sends the window again from there, so a loss is repaired at the speed of
 * the acks, not one frame per rto. A frame the transport refused (its
 * outbox full) is taken back with channel_unsend: its messages wait, unsent.
 *
 * Body of FRAME_MSG: u64 ack, u64 first_seq, u16 count, then count x bytes.
 * Body of FRAME_ACK: u64 ack.
 */
#ifndef HERD_CHANNEL_H
#define HERD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "herd_error.h"

#define CHANNEL_DEFAULT_RTO_MS 200u
#define CHANNEL_DEFAULT_MAX_UNACKED (64u << 20) /* bytes queued per peer */
#define CHANNEL_REORDER_WINDOW 4096u           /* messages held back at most */
#define CHANNEL_DEFAULT_WINDOW (4u << 20)      /* bytes in flight per peer */
/* Received, unacknowledged bytes past which an acknowledgement should go
 * at once rather than wait for a frame to carry it (a quarter of the
 * sender's window: it never stalls on an ack held back). */
#define CHANNEL_ACK_EAGER_BYTES (CHANNEL_DEFAULT_WINDOW / 4)

typedef struct channel_msg {
    struct channel_msg *next;
    uint64_t seq;
    size_t len;
    uint8_t data[];
} channel_msg_t;

typedef struct channel {
    uint64_t peer_inc; /* the incarnation this stream talks to; 0: none yet */
    /* sending */
    uint64_t next_seq;        /* of the next message queued */
    uint64_t sent_upto;       /* highest seq sent at least once */
    uint64_t next_send;       /* seq the next frame starts from (go-back-N) */
    channel_msg_t *head, *tail; /* unacknowledged, in order */
    channel_msg_t *unsent;      /* the first at or after next_send, or NULL */
    size_t unacked_bytes, max_unacked;
    size_t inflight_bytes;    /* of the unacked messages below next_send */
    size_t window;            /* inflight_bytes at most (but one message) */
    /* what the last channel_next_frame changed, for channel_unsend */
    uint64_t undo_next_send, undo_sent_upto;
    channel_msg_t *undo_unsent;
    size_t undo_inflight;
    int undo_ack_due;
    size_t undo_ack_due_bytes;
    uint64_t last_send_ms;    /* when the oldest unacked was (re)sent */
    uint32_t rto_ms;
    /* receiving */
    uint64_t expected;        /* next seq to deliver */
    channel_msg_t *early;     /* arrived ahead of `expected`, sorted by seq */
    size_t early_count;
    int ack_due;              /* something arrived that we have not acked */
    size_t ack_due_bytes;     /* bytes of messages arrived since our last ack */
    /* counters */
    uint64_t delivered, duplicates, resent, dropped_early;
} channel_t;

void channel_init(channel_t *ch, uint32_t rto_ms, size_t max_unacked);
void channel_fini(channel_t *ch);
/* The peer now has incarnation `inc`: a new one resets both directions and
 * drops what was queued (returns how many messages were dropped). */
size_t channel_set_peer(channel_t *ch, uint64_t inc);

/* Queue a copy of `data` for the peer. HERD_EFULL past max_unacked,
 * HERD_ENOMEM. */
int channel_queue(channel_t *ch, const void *data, size_t len);

/* Whether queued message `m` went out in a frame at least once (it may
 * have arrived), as opposed to waiting for its first send. */
static inline int channel_msg_sent(const channel_t *ch, const channel_msg_t *m)
{
    return m->seq <= ch->sent_upto;
}
/* Replace the bytes of queued (unacknowledged) message `m` with `len` bytes
 * of `data`, len <= m->len: it keeps its sequence number, so the stream
 * stays whole, and what is sent from now on (a resend too) carries the new
 * bytes. A copy sent before may still arrive instead. HERD_EINVAL when
 * len > m->len (the message keeps its bytes). */
int channel_rewrite(channel_t *ch, channel_msg_t *m, const void *data, size_t len);

/* Build the next FRAME_MSG body: the messages not sent since the last go
 * back (when `resend`, go back first: from the oldest unacknowledged one),
 * as many as fit in max_body and the window. *body is malloc'ed (free it);
 * NULL with 0 when there is nothing to send or the window is full. */
int channel_next_frame(channel_t *ch, int resend, size_t max_body, uint64_t now,
                       uint8_t **body, size_t *len);
/* channel_next_frame with the body built `headroom` bytes into *buf (their
 * bytes unset), and `tailroom` bytes of room after it: a frame's header
 * and MAC then go around it in place (cluster_send_frame_at), no copy of
 * the body. *len is the body's length. */
int channel_next_frame_at(channel_t *ch, int resend, size_t max_body, uint64_t now,
                          size_t headroom, size_t tailroom, uint8_t **buf, size_t *len);
/* The frame the last channel_next_frame built did not leave (the transport
 * refused it): its messages are unsent again, as before that call. Call it
 * right after, before anything else touches the channel. */
void channel_unsend(channel_t *ch);
/* Whether messages wait to be sent and the window lets some go now. */
int channel_send_ready(const channel_t *ch);
/* Whether the oldest unacknowledged message is due to be sent again. */
int channel_resend_due(const channel_t *ch, uint64_t now);
/* A FRAME_ACK body for what was received; clears ack_due. */
int channel_ack_frame(channel_t *ch, uint8_t **body, size_t *len);

/* Called for each message delivered in order. */
typedef void (*channel_deliver_fn)(void *data, const uint8_t *msg, size_t len);

/* A FRAME_MSG body arrived: take its ack, deliver what is next in order
 * (and what it unblocks). HERD_EBADFRAME when the body is malformed. */
int channel_on_msg(channel_t *ch, const uint8_t *body, size_t len, uint64_t now,
                   channel_deliver_fn deliver, void *data);
/* A FRAME_ACK body arrived. */
int channel_on_ack(channel_t *ch, const uint8_t *body, size_t len, uint64_t now);

#endif
