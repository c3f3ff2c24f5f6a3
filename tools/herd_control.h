/*
 * herd_control.h - a node's control socket, what `ringctl` talks to: the
 * cluster, registry and supervisor commands (members, ring, stats, names,
 * whereis, crdt, start, call, stop, children, handoffs, drain, block,
 * unblock, register, unregister) and its events (`events`, which
 * `ringctl watch` reads) served for one node at one address.
 *
 * herdd serves one; a program that embeds herd serves as many as it likes
 * (one per node it runs, or several addresses for one node): each instance
 * keeps all it needs (the calls it waits for, the name holders it started)
 * and nothing is shared between them. On the node's loop thread only.
 */
#ifndef HERD_CONTROL_PUBLIC_H
#define HERD_CONTROL_PUBLIC_H

#include <stddef.h>

#include "herd_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

typedef struct herd_control herd_control_t;

/* Serve `node`'s commands at `address` (nanomsg: ipc:///path, created
 * 0600, or tcp://HOST:PORT). The node needs its cluster, registry and
 * supervisor started first. Errors: HERD_EINVAL (address), HERD_EIO (it
 * cannot be bound: in use, no permission), HERD_ENOMEM. */
int herd_control_start(herd_node_t *node, const char *address, herd_control_t **out);
/* Stop serving and free (before the node is freed; NULL is a no-op).
 * Requests still waiting (a `call` whose reply has not come) go
 * unanswered; ringctl then reports the outcome as unknown. An `events`
 * that waits is answered (with no events: the watcher then finds the
 * node gone). Names it registered (`register`) stay with their holders. */
void herd_control_stop(herd_control_t *ctl);
/* The default control address of node `node` of cluster `cluster` (NULL:
 * "herd", the default cluster name): ipc:///tmp/herd-CLUSTER-NODE.ctl, so
 * nodes of two clusters on one host never share a path. Writes it into
 * `out` (cap bytes with the NUL). Errors: HERD_EINVAL (node NULL or empty,
 * a name with '/'), HERD_ERANGE (cap too small: nothing written). */
int herd_control_default_address(const char *cluster, const char *node, char *out, size_t cap);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
