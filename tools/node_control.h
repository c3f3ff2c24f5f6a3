/*
 * node_control.h - serve a node's control socket with the commands ringctl
 * sends: members, ring, stats, names, whereis, crdt, start, call, stop,
 * children, handoffs, drain, block, unblock, register, unregister. herdd
 * serves it, and so can any program that embeds herd (tools/embed_example.c).
 * The node needs its cluster, registry and supervisor started first.
 */
#ifndef HERD_NODE_CONTROL_H
#define HERD_NODE_CONTROL_H

#include "control.h"
#include "herd_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

typedef struct node_control node_control_t;

/* Serve at `address` (control.h: ipc:// paths are made 0600). Errors:
 * HERD_EINVAL, HERD_EIO, HERD_ENOMEM. */
int node_control_start(herd_node_t *node, const char *address, node_control_t **out);
/* The control socket it serves (control_serve hands it requests directly). */
control_t *node_control_socket(node_control_t *nc);
/* Stop serving (before the node is freed). */
void node_control_stop(node_control_t *nc);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
