/*
 * herd_group.h - process groups: any number of processes of any nodes under
 * a group name, replicated to every node with the registry's deltas and
 * digest syncs (herd_registry.h).
 *
 * A group is a set of pids, each with its metadata: the same pid joining
 * twice is one membership (the second join replaces its metadata). Joins
 * made on both sides of a partition are all kept after it heals; there is
 * nothing to resolve. A membership goes when its process exits, is hidden
 * while its node is down and removed once that node is known gone, exactly
 * as a name's registration.
 *
 * Threads: every function here must be called on the node's loop thread.
 * Needs herd_registry_start (without it: HERD_ENOENT).
 *
 * A group's name is any string of 1..HERD_GROUP_MAX bytes; it never meets a
 * registered name of the same string (herd_registry_list, herd_registry_count
 * and the names of herd_registry_stats see no group). A callback given to a
 * visit below may join and leave (the visit goes on over what it had found);
 * a NULL fn only counts.
 */
#ifndef HERD_GROUP_H
#define HERD_GROUP_H

#include "herd_registry.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

/* Bytes of a group name (1..HERD_GROUP_MAX). */
#define HERD_GROUP_MAX 200u

/* Join `pid` to `group` (a process of this node, or of another node when the
 * caller knows it lives). Errors: HERD_EINVAL (empty or over-long group),
 * HERD_ENOPROC (a local pid that is not alive), HERD_ENOENT (no registry),
 * HERD_ENOMEM. `meta` may be NULL. */
int herd_group_join(herd_node_t *node, const char *group, herd_pid_t pid, const herd_meta_t *meta);
/* Take `pid` out of `group`. HERD_ENOENT when it is no visible member (a
 * process of this node whose membership another node removed, which its
 * node would put back, is then no member either). For a process of another
 * node, that node is told, so it does not put the membership back. */
int herd_group_leave(herd_node_t *node, const char *group, herd_pid_t pid);

/* Visit the visible members of `group`, in no particular order; stop when
 * fn returns nonzero. Returns the number visited (0 for an unknown group),
 * or HERD_EINVAL, HERD_ENOMEM. The member's node is pid.node. */
typedef int (*herd_group_member_fn)(void *data, const char *group, herd_pid_t pid,
                                    const herd_meta_t *meta);
int herd_group_members(herd_node_t *node, const char *group, herd_group_member_fn fn,
                       void *data);
/* The same for the members that are processes of this node (a pass over the
 * group's members). */
int herd_group_local_members(herd_node_t *node, const char *group, herd_group_member_fn fn,
                             void *data);
/* The number of visible members of `group`: O(1) (kept as members come and
 * go; recounted once after a member node comes or goes). */
int herd_group_count(herd_node_t *node, const char *group);
/* Whether `pid` is a visible member of `group`: 1 (and its metadata into
 * `meta`, when given) or 0; HERD_EINVAL, HERD_ENOENT (no registry). One
 * lookup of its key. */
int herd_group_member(herd_node_t *node, const char *group, herd_pid_t pid, herd_meta_t *meta);
/* Visit the groups `pid` is a visible member of (fn's meta: its metadata
 * there); stop when fn returns nonzero. Returns the number visited (0 for a
 * pid hidden here: its node is down), or HERD_EINVAL (HERD_PID_NONE). For a
 * process of this node the registry's pid index has its memberships; for
 * another node's it is a lookup in every group this node knows (a pass over
 * the groups, not over their members). */
int herd_group_which(herd_node_t *node, herd_pid_t pid, herd_group_member_fn fn, void *data);
/* Visit the groups with a visible member whose name starts with `prefix`
 * (NULL or "" for all), with their member counts; stop when fn returns
 * nonzero. Returns the number visited, or HERD_ENOMEM. */
typedef int (*herd_group_fn)(void *data, const char *group, size_t members);
int herd_group_list(herd_node_t *node, const char *prefix, herd_group_fn fn, void *data);

/* Send `data` as a cast to every visible member of `group`: members of this
 * node directly, each other node in one frame that carries the message
 * once and its members' pids (herd_node_cast_many). Returns the number of
 * members it went to (0 for an empty or unknown group: not an error), or
 * HERD_EINVAL (group), HERD_ETOOBIG (over the node's max_message), HERD_ENOMEM. A member that
 * exits meanwhile does not get it, as for any cast. `self` may be NULL
 * (the sender is then HERD_PID_NONE). */
int herd_group_publish(herd_node_t *node, herd_proc_t *self, const char *group,
                       const void *data, size_t len);

/* One member's answer to a multi-call: the runtime's (herd_runtime.h,
 * herd_multi_reply_t): pid, status (0, the member's own error, or the
 * call's: HERD_ETIMEDOUT for no answer in time, HERD_ENOPROC, ...), and
 * the reply's bytes, valid during the callback. */
typedef herd_multi_reply_t herd_group_reply_t;
/* Told once, on the loop thread, never inside herd_group_multi_call, when
 * every member answered or failed or the timeout passed (members that had
 * not answered then have HERD_ETIMEDOUT). `replies` is valid during the
 * call only, in no particular order of members. */
typedef herd_multi_call_cb herd_group_multi_cb;
/* Call every visible member of `group` with `data` (as
 * herd_node_multi_call_async, from code outside processes), gathering the
 * answers and errors until `timeout_ms` (1..): a dead member's call fails
 * at once or times out, never hangs the rest. Returns the number of
 * members called (0: cb is still called, at the loop's next turn, with
 * n = 0), or HERD_EINVAL (group, timeout 0, NULL cb), HERD_ETOOBIG,
 * HERD_ENOMEM (cb not called). */
int herd_group_multi_call(herd_node_t *node, const char *group, const void *data, size_t len,
                          uint32_t timeout_ms, herd_group_multi_cb cb, void *cbdata);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
