/*
 * remote_int.h - what remote.c and remote_lost.c share: the kinds of the
 * runtime's own messages, a message as it travels in a channel, the
 * monitors this node holds of remote pids, and the calls it keeps for
 * callers on other nodes.
 */
#ifndef HERD_REMOTE_INT_H
#define HERD_REMOTE_INT_H

#include "remote.h"
#include "wire.h"

/* REMOTE_MOVED: your call `ref` is with `from` now (a moved process's new
 * copy), so the caller's node does not end it when the old node goes.
 * REMOTE_RELAY: a reply for a caller the replying node cannot reach (its
 * node is not a member there yet), sent to the node that forwarded the call
 * to it, which passes it on: data is u64 caller node, u64 caller
 * incarnation, then the reply's bytes; `to` is the caller's serial.
 * REMOTE_WITHDRAWN: a request its sender withdrew from the stream when it
 * declared the receiver down (remote_lost.c); it keeps the stream's
 * numbering and carries nothing.
 * REMOTE_CAST_MANY: one cast to several processes of the receiver
 * (remote_many.c): data is a remote_many_t. */
enum { REMOTE_MONITOR = 32, REMOTE_DEMONITOR = 33, REMOTE_APP = 34, REMOTE_MOVED = 35,
       REMOTE_RELAY = 36, REMOTE_WITHDRAWN = 37, REMOTE_CAST_MANY = 38 };

/* What a message adds to its data in a frame body: the channel's batch header
 * (18) and length (4), our fields (58 with a call's deadline), rounded up. A
 * message within the limit always fits a frame of its own, so a channel
 * never stalls on it. */
#define REMOTE_OVERHEAD 128u

typedef struct remote_watch {
    uint64_t watcher; /* serial on this node */
    herd_pid_t target;
} remote_watch_t;

/* A message in a channel (PROTOCOL.md, MSG). */
typedef struct remote_msg {
    uint8_t kind, flags;
    herd_pid_t to;   /* only the serial travels: node and incarnation are the receiver's */
    herd_pid_t from;
    uint64_t ref;
    int32_t status;
    /* HERD_MSG_CALL only: the caller's HLC timestamp at which it stops
     * waiting; a receiver drops a call whose frame was stamped later. 0:
     * none. */
    uint64_t deadline;
    const uint8_t *data;
    size_t len;
} remote_msg_t;

/* The bytes of a message with no data: a withdrawn request is rewritten as
 * one (remote_lost.c), and a message is never shorter. */
#define REMOTE_MSG_MIN 50u

/* The peer stream that a message of `kind` with `flags` and `data_len`
 * bytes of data for `to` goes into, if it can be queued now: 0 with *out
 * set, or the error remote_send gives (HERD_ENOTCONN, HERD_ENOPROC,
 * HERD_ETOOBIG, HERD_ENOMEM). */
int remote_admit(herd_node_t *n, herd_pid_t to, uint8_t kind, unsigned flags, size_t data_len,
                 cluster_peer_t **out);
/* Queue an encoded message in p's stream (admitted by remote_admit):
 * HERD_EFULL, HERD_ENOMEM. */
int remote_enqueue(herd_cluster_t *c, cluster_peer_t *p, const uint8_t *msg, size_t len);
/* The name of the member whose frame is being delivered, for logs. */
const char *remote_sender_name(const herd_cluster_t *c);

/* Append m's encoding to w (w->err on failure). */
void remote_encode(wire_writer_t *w, const remote_msg_t *m);
/* Read a message; m->to gets only its serial, m->data points into buf.
 * HERD_EBADFRAME when it is short or has bytes left over. */
int remote_decode(const uint8_t *buf, size_t len, remote_msg_t *m);

/* ---- remote_many.c: one cast to several processes of a node ---------------------- */

/* Serials in one REMOTE_CAST_MANY at most (PROTOCOL.md, cast_many); its
 * bytes are bounded by the frame too. */
#define REMOTE_MANY_MAX 8192u
/* The bytes of its data besides the serials and the payload: u64
 * incarnation, u32 count, the payload's u32 length. */
#define REMOTE_MANY_HEAD 16u

/* A REMOTE_CAST_MANY's data, read: pointers into the message. */
typedef struct remote_many {
    uint64_t incarnation;   /* the receiver's start the serials are of */
    uint32_t count;         /* 1..REMOTE_MANY_MAX */
    const uint8_t *serials; /* count x u64, little-endian, unaligned */
    const uint8_t *data;    /* the cast's bytes */
    size_t len;
} remote_many_t;

/* How many serials fit one message with a payload of `len` bytes: 0 when
 * not even one does. */
size_t remote_many_fit(size_t len);
/* Read a REMOTE_CAST_MANY's data (hostile bytes): HERD_EBADFRAME when it is
 * short, has bytes left over, or its count is 0, over REMOTE_MANY_MAX or
 * not the number of serials there. */
int remote_many_decode(const uint8_t *buf, size_t len, remote_many_t *out);
/* The i-th serial of a decoded message. */
uint64_t remote_many_serial(const remote_many_t *m, uint32_t i);
/* A REMOTE_CAST_MANY arrived (its sender checked): refused and counted
 * (`body`) unless it reads whole and names this start; else a cast to each
 * serial, a dead or full one dropped and counted as any cast. */
void remote_on_cast_many(herd_cluster_t *c, const remote_msg_t *m);

#endif
