/*
 * remote.h - messages between processes on different nodes: sends, casts,
 * calls and replies, monitors, and what happens to them when a node goes
 * down. Everything travels in a per-peer channel (channel.h), batched into
 * frames once per loop iteration.
 */
#ifndef HERD_REMOTE_H
#define HERD_REMOTE_H

#include "cluster.h"

/* Message flags in a channel (bits of its u8 flags); node.h's, as the core
 * passes them through its net ops. */
#define REMOTE_BY_RUNTIME REPLY_BY_RUNTIME /* a reply made by the runtime (timeout, ENOPROC) */
#define REMOTE_FORWARDED NET_FORWARDED     /* forwarded from a moved process's old copy */
/* bits 5-7 of a reply's flags: REPLY_COPIES (node.h) */

/* The hooks of the cluster's node_net_ops_t (node.h, installed by
 * cluster.c), which says what each does and may return; the network's own
 * modules call them by name. */

/* To a member that is down only what remote.c's remote_queues_if_down
 * allows is queued. */
int remote_send(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                uint64_t ref, int status, const void *data, size_t len, unsigned flags);
/* The receiver drops a call's request unapplied if the frame that brings it
 * was sent after its deadline. */
int remote_send_call(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                     uint64_t deadline, const void *data, size_t len, unsigned flags);
/* When the caller's node is unknown here, the reply goes through the node
 * that forwarded the call (a relay). */
int remote_reply(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len,
                 unsigned copies);
int remote_callee_gone(herd_node_t *n, herd_from_t from, int status);
/* remote_many.c: one REMOTE_CAST_MANY per REMOTE_MANY_MAX serials (fewer
 * when the payload leaves less room in a frame). */
int remote_send_many(herd_node_t *n, uint64_t node, uint64_t incarnation, herd_pid_t from,
                     const uint64_t *serials, size_t count, const void *data, size_t len);
int remote_monitor(herd_proc_t *self, herd_pid_t target, uint64_t ref);
void remote_demonitor(herd_node_t *n, herd_pid_t watcher, herd_pid_t target, uint64_t ref);
void remote_move_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t to);
void remote_release_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref);

/* From cluster.c: */
void remote_init(herd_cluster_t *c);
void remote_fini(herd_cluster_t *c);
void remote_on_frame(herd_cluster_t *c, const frame_header_t *h, const uint8_t *body);
/* remote_lost.c: a member's state changed; a lost one's queued requests
 * are withdrawn, the calls and monitors waiting on it end. */
void remote_on_member(herd_cluster_t *c, const mship_effect_t *e);
void remote_flush(herd_cluster_t *c, uint64_t now);
/* Let the acknowledgements no frame has carried since they fell due (a
 * request whose reply waits, a cast) go: from the link timer, so an
 * acknowledgement waits CLUSTER_LINK_POLL_MS at most, far below the
 * sender's rto. It only marks their peers dirty: the flush that ends the
 * loop iteration sends them, after the membership verdicts of this
 * iteration, as every other queued message (a request queued for a member
 * declared down in the same iteration is then still unsent, and withdrawn
 * "not applied" rather than sent into a dead link, remote_lost.c). */
void remote_release_acks(herd_cluster_t *c);
void remote_tick(herd_cluster_t *c, uint64_t now);

#endif
