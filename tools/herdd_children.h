/*
 * herdd_children.h - herdd's control commands for the distributed
 * supervisor and its services (ringctl start/call/stop/children/handoffs/
 * drain). Answers (JSON; pids as "NODE/INCARNATION/SERIAL"):
 *
 *   start {"service": S, "name": N, "arg": TEXT?, "replicas": 1..5?}
 *     -> {"name", "node", "pid", "service", "already_started": BOOL,
 *         "replica_nodes": [OWNER, REPLICA...]}
 *     answered once N is registered as seen from this node (the ring's owner
 *     starts it); ETIMEDOUT after 5 s; EINVAL for an unknown service, or
 *     replicas (the copies of its state, the running one included; absent:
 *     the service's default) out of 1..HERD_MAX_REPLICAS. A child that ran
 *     already keeps the copies it has: replica_nodes says which.
 *   call {"name": N, "request": TEXT, "timeout_ms": MS?}
 *     -> {"name", "node", "pid", "reply": TEXT, "value": INT (when the
 *        reply is a whole number, as the counter's always is)}
 *     ENOENT: N is not registered; the callee's own error otherwise.
 *   stop {"name": N}        -> {"name", "stopped": true}; ENOENT: no such child
 *   children {"node": NODE?, "limit": N?, "cursor": C?}
 *     -> [{"name", "node", "pid", "service", "state", "copies",
 *          "replicas": [{"node", "acked"}], "version", "released",
 *          "under_replicated": BOOL}], sorted by name, or
 *     with "limit" one page of them (control_list.h)
 *     every child (of NODE only, when given) as this node sees it: state is
 *     running / restarting / moving / arriving for this node's own, running
 *     for a registered child of another node, and missing for a child with
 *     a spec and no registration (starting, or its node just died). The
 *     replication (herd_child_view_t) of this node's own children as of the
 *     listing's first page; null for the others.
 *   handoffs -> [{"name", "target", "id", "phase", "started_ms",
 *                "freeze_to_commit_ms", "forwarded"}]  in flight, then recent
 *   drain {"node": NODE, "on": BOOL?} -> {"node", "draining": BOOL}
 */
#ifndef HERDD_CHILDREN_H
#define HERDD_CHILDREN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "control.h"
#include "control_list.h"
#include "herd_registry.h"

/* What herdd.c gives these commands from their `data`. */
control_t *herdd_control(void *data);
json_t *herdd_name_json(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta);
/* The name of member `id` ("?" and its id in hex for one not known here). */
void herdd_member_name(void *data, uint64_t id, char *out, size_t cap);
/* Where child `name`'s state is kept, as [OWNER, REPLICA...]
 * (herd_child_replica_nodes), or JSON null when it is not a child. */
json_t *herdd_replica_nodes_json(void *data, const char *name);
/* Serve a listing page by page from the socket's open listings
 * (control_list_serve). */
int herdd_list_serve(void *data, json_t *args, const control_list_ops_t *ops, void *opsdata,
                     json_t **result, char *msg, size_t cap);

/* The `call`s a control socket waits for: its own, in its instance. */
typedef struct call_req call_req_t;
typedef struct call_list {
    call_req_t *pending;
    size_t count;
} call_list_t;
call_list_t *herdd_calls(void *data);
/* The control socket stops: its waiting calls end unanswered (each is
 * freed when its reply or timeout comes). */
void herdd_calls_orphan(call_list_t *l);

/* 0 when `name` may name a process: 1..HERD_NAME_MAX-1 bytes, no control
 * character (a newline or tab would forge lines in tables and logs);
 * otherwise HERD_EINVAL with the reason in msg. */
int herdd_check_name(const char *what, const char *name, char *msg, size_t cap);

int herdd_cmd_start(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_call(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_stop(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_children(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_handoffs(void *data, json_t *args, json_t **result, char *msg, size_t cap);
int herdd_cmd_drain(void *data, json_t *args, json_t **result, char *msg, size_t cap);

#endif
