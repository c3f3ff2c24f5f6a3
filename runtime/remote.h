/*
 * remote.h - messages between processes on different nodes: sends, casts,
 * calls and replies, monitors, and what happens to them when a node goes
 * down. Everything travels in a per-peer channel (channel.h), batched into
 * frames once per loop iteration.
 */
#ifndef HERD_REMOTE_H
#define HERD_REMOTE_H

#include "cluster.h"

/* Message flags in a channel (bits of its u8 flags). */
#define REMOTE_BY_RUNTIME REPLY_BY_RUNTIME /* a reply made by the runtime (timeout, ENOPROC) */
#define REMOTE_FORWARDED 2u  /* forwarded from a moved process's old copy */
/* bits 5-7 of a reply's flags: REPLY_COPIES (node.h) */

/* Send a message to a pid on another node. Errors: HERD_ENOTCONN (its node
 * is down, left or unknown; nothing was queued), HERD_ENOPROC (its
 * incarnation is not the node's current one), HERD_ETOOBIG, HERD_EFULL (too
 * much unacknowledged for that node). `flags`: REMOTE_*. To a member that
 * is down only what remote.c's remote_queues_if_down allows is queued. */
/* A reply to `from`'s call, saying `copies` hold its state (0: not said). */
int remote_reply_copies(herd_node_t *n, herd_from_t from, int status, const void *data,
                        size_t len, unsigned copies);
int remote_send(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                uint64_t ref, int status, const void *data, size_t len, unsigned flags);
/* The same for a call's request: `deadline` is the caller's HLC timestamp
 * at which it stops waiting (0: none); the receiver drops it unapplied if
 * the frame that brings it was sent later. */
int remote_send_call(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                     uint64_t deadline, const void *data, size_t len, unsigned flags);
/* A call to a local process is forwarded elsewhere: forget it here without
 * answering (the process it went to answers). */
void remote_release_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref);
/* ... or forwarded to `to`, another process of this node: it answers now. */
void remote_move_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t to);
/* Answer a call that came from another node. HERD_ENOPROC when that call is
 * not (or no longer) waiting. */
int remote_reply(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len);
/* The callee of that call exited: the caller gets HERD_ENOPROC, as from the
 * runtime. */
int remote_callee_gone(herd_node_t *n, herd_from_t from);
/* `self` monitors `target` on another node under `ref`. */
int remote_monitor(herd_proc_t *self, herd_pid_t target, uint64_t ref);
/* The monitor `ref` of `watcher` on remote `target` is removed. */
void remote_demonitor(herd_node_t *n, herd_pid_t watcher, herd_pid_t target, uint64_t ref);

/* From cluster.c: */
void remote_init(herd_cluster_t *c);
void remote_fini(herd_cluster_t *c);
void remote_on_frame(herd_cluster_t *c, const frame_header_t *h, const uint8_t *body);
/* remote_lost.c: a member's state changed; a lost one's queued requests
 * are withdrawn, the calls and monitors waiting on it end. */
void remote_on_member(herd_cluster_t *c, const mship_effect_t *e);
void remote_flush(herd_cluster_t *c, uint64_t now);
void remote_tick(herd_cluster_t *c, uint64_t now);

#endif
