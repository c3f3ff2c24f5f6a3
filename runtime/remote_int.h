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
 * numbering and carries nothing. */
enum { REMOTE_MONITOR = 32, REMOTE_DEMONITOR = 33, REMOTE_APP = 34, REMOTE_MOVED = 35,
       REMOTE_RELAY = 36, REMOTE_WITHDRAWN = 37 };

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

/* Append m's encoding to w (w->err on failure). */
void remote_encode(wire_writer_t *w, const remote_msg_t *m);
/* Read a message; m->to gets only its serial, m->data points into buf.
 * HERD_EBADFRAME when it is short or has bytes left over. */
int remote_decode(const uint8_t *buf, size_t len, remote_msg_t *m);

#endif
