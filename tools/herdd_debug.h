/*
 * herdd_debug.h - herdd's control commands for rehearsing failures and for
 * naming processes by hand (tests, and people trying the registry out):
 *
 *   block   {"node": NAME}  drop every frame to and from member NAME at this
 *                           node (herd_cluster_block): one side of a netsplit
 *   unblock {"node": NAME}  let them flow again
 *     -> {"node": NAME, "blocked": BOOL, "blocked_peers": N,
 *         "blocked_in": N, "blocked_out": N}   (frames dropped so far)
 *     ENOENT: NAME is not a member; EINVAL: no name, or this node itself.
 *
 *   register {"name": NAME, "meta": {"k": "v", ...}}   (meta optional)
 *     starts a holder process on this node, which does nothing until it is
 *     stopped, and registers it as NAME.
 *     -> {"name", "node", "pid", "meta"} as whereis answers.
 *     EEXIST: the name is taken (nothing is started); EINVAL: no name, a
 *     bad name or meta that is not an object of strings; ERANGE: meta over
 *     the registry's limits.
 *
 *   unregister {"name": NAME}
 *     removes the name's registration (herd_unregister). When it was held by
 *     a holder that `register` started on this node, the holder stops too;
 *     sent to another node, the registration goes but that holder keeps
 *     running, unnamed, on its node.
 *     -> {"name", "node", "pid", "stopped": BOOL}; ENOENT: not registered.
 *
 * A holder that exits for any reason but a shutdown logs it at warn, with
 * the reason's name (e.g. "exited: name_conflict" when it lost a conflict
 * after a partition healed).
 */
#ifndef HERDD_DEBUG_H
#define HERDD_DEBUG_H

#include <stddef.h>

#include <jansson.h>

#include "herd_registry.h"
#include "herd_runtime.h"

/* The node behind the `data` every control command is given: the program
 * serving these commands defines it (herdd.c). */
herd_node_t *herdd_node(void *data);

/* The holders one control socket started (`register`): `unregister` stops
 * only those. Each socket has its own (herdd_holders of its `data`). */
typedef struct holder holder_t;
typedef struct holder_list {
    holder_t **items;
    size_t count, cap;
} holder_list_t;
holder_list_t *herdd_holders(void *data);
/* The control socket stops: its holders keep their names, on their own. */
void herdd_holders_orphan(holder_list_t *l);
/* A holder's spawn options: one that runs while it holds `name` (a name
 * holder, HOLDER_NAME, for herd_spawn_named) or while it is in some group
 * (HOLDER_GROUP, `name` its first group). `arg` is the caller's, kept
 * until the spawn; `name` at most HERD_NAME_MAX bytes. */
enum { HOLDER_NAME = 0, HOLDER_GROUP = 1 };
#define HOLDER_ARG_MAX (sizeof(void *) + 1 + 255)
void herdd_holder_opts(void *data, int kind, const char *name, char arg[HOLDER_ARG_MAX],
                       herd_spawn_opts_t *out);
/* args' "meta" (absent or null: none), an object of strings, into *meta:
 * 0, or HERD_EINVAL / HERD_ERANGE with msg saying why. */
int herdd_meta_from_json(json_t *obj, herd_meta_t *meta, char *msg, size_t cap);
/* "node/incarnation/serial", as whereis shows a pid; `node` gets the node's
 * name (a member's, this node's, or "?HEX"). */
json_t *herdd_pid_json(herd_node_t *n, herd_pid_t pid, char *node, size_t cap);
/* Whether `pid` is a visible member of some group (1) or of none (0). */
int herdd_in_some_group(herd_node_t *n, herd_pid_t pid);
/* Whether `pid` is a holder this control socket started. */
int herdd_holder_of(void *data, herd_pid_t pid);

/* control_fn's (control.h). */
int herdd_cmd_block(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_unblock(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_register(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_unregister(void *data, json_t *args, json_t **result, char *msg, size_t cap);

#endif
