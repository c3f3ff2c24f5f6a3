/*
 * herdd_groups.h - herdd's control commands for process groups
 * (herd_group.h):
 *
 *   groups {"prefix": P?}                  paged (control_list.h)
 *     -> [{"group", "members": N}]          groups with a visible member
 *   group_members {"group": G}              paged
 *     -> [{"pid", "node", "meta": {...}}]   sorted by pid
 *   publish {"group": G, "message": TEXT}
 *     -> {"group", "reached": N}            N members it was cast to (0 for
 *                                           an empty or unknown group)
 *   join {"group": G, "meta": {"k": "v"}?}
 *     starts a holder process on this node (it runs while it is in some
 *     group) and joins it to G
 *     -> {"group", "node", "pid", "meta"}
 *   leave {"group": G, "pid": "NODE/INCARNATION/SERIAL"}
 *     takes the pid out of G; a holder `join` started through this socket
 *     stops once it is in no group
 *     -> {"group", "pid", "stopped": BOOL}
 *
 * Errors: EINVAL (a missing, empty or over-long group, a malformed pid or
 * meta, a message over the node's limit: ETOOBIG), ENOENT (leave: not a
 * member; no registry).
 */
#ifndef HERDD_GROUPS_H
#define HERDD_GROUPS_H

#include <stddef.h>

#include <jansson.h>

/* control_fn's (control.h); `data` as herdd_debug.h's. */
int herdd_cmd_groups(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_group_members(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_publish(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_join(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_leave(void *data, json_t *args, json_t **result, char *msg, size_t cap);

#endif
