/*
 * control_events.h - a control socket's `events` command: the node's
 * events (herd_events.h) kept as they happen, for `ringctl watch` to read
 * with long polls. Each control socket keeps its own (herd_control_t owns
 * one): nothing is shared between sockets.
 *
 *   events {"since": SEQ?, "wait_ms": MS?, "incarnation": INC?}
 *     -> {"events": [EVENT...], "seq": SEQ, "incarnation": INC, "lost": N,
 *         "more": BOOL}
 *
 *   since        the last seq the client has (default 0).
 *   incarnation  the node's incarnation `since` counts in: the last
 *                answer's. When it is not this node's, the node restarted
 *                meanwhile: the answer starts from the oldest event held
 *                of the new start (since is ignored).
 *                Without it, since 0 means "from now": answered at once
 *                with no events and the current seq (a socket that saw no
 *                event yet waits for the first). With it, since 0 is the
 *                start: every event held. A since past the last event this
 *                socket saw (of another socket or start) is "from now" too.
 *   wait_ms      1..10000 (default 2000): when no event after `since` is
 *                held, the answer waits (control_defer) until one comes or
 *                this long passes (then it holds none).
 *   -> events    in seq order, at most CONTROL_EVENTS_ANSWER_MAX (and about
 *                CONTROL_EVENTS_ANSWER_BYTES) per answer; "more" when the
 *                answer stopped short of the newest held;
 *      seq       the last seq included, else the client's cursor (the
 *                current seq for "from now"): the next request's since;
 *      lost      events after `since` that the socket saw but no longer
 *                holds (it keeps the last CONTROL_EVENTS_KEEP, at most
 *                CONTROL_EVENTS_KEEP_BYTES of them): a slow client is told.
 *   An EVENT: {"seq", "kind" (herd_event_kind_name), "time" (UTC, ISO 8601
 *   with ms, the node's wall clock), "time_ms" (the node's clock), "name",
 *   and when set: "pid" and "node" (its node's name), "other" (pids as
 *   "NODE/INCARNATION/SERIAL"), "reason" (herd_reason_name; for group_left
 *   and the children's moved, gave_up and terminated), and for member
 *   events "incarnation", "old_state", "new_state", "gone"}.
 *   Errors: EINVAL (since, wait_ms or incarnation not as above), EBUSY
 *   (CONTROL_EVENTS_WATCHERS_MAX answers wait already), ESHUTDOWN (the
 *   socket is stopping: also the answer of every request still waiting).
 *
 * The socket keeps the node's events from its first `events` request on (a
 * node nobody watches renders none): a watcher that comes back after the
 * node restarted gets the new start's events from its first request.
 *
 * Waits are timed on the node's clock by a small process of the socket's
 * own (spawned at the first wait, stopped with the socket), so a node on a
 * virtual clock times them as it times everything else.
 */
#ifndef HERD_CONTROL_EVENTS_H
#define HERD_CONTROL_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "herd_events.h"

#define CONTROL_EVENTS_KEEP 4096u
#define CONTROL_EVENTS_KEEP_BYTES (1u << 20)
#define CONTROL_EVENTS_ANSWER_MAX 256u
#define CONTROL_EVENTS_ANSWER_BYTES (32u << 10)
#define CONTROL_EVENTS_WAIT_MS 2000
#define CONTROL_EVENTS_WAIT_MAX_MS 10000
/* Below control.c's bound on deferred requests (256), so that watchers
 * never take every slot from `call` and `start`. */
#define CONTROL_EVENTS_WATCHERS_MAX 64u

typedef struct control_events control_events_t;

/* Start keeping the events of the node of `data`, the herd_control_t whose
 * commands these are (herdd_node, herdd_control, herdd_member_name), after
 * its control socket started. Errors: HERD_ENOMEM, herd_events_subscribe's. */
int control_events_start(void *data, control_events_t **out);
/* Answer every waiting request (with the events held, usually none), end
 * the subscription and the timing process, free. Before the control socket
 * stops; NULL is a no-op. */
void control_events_stop(control_events_t *ev);

/* The subscription's callback (herd_event_fn): keeps `e` and answers the
 * waiting requests it completes. For tests, which may tell it events. */
void control_events_told(void *data, const herd_event_t *e);

/* The `events` command (control_fn); `data` as for control_events_start. */
int herdd_cmd_events(void *data, json_t *args, json_t **result, char *msg, size_t cap);
/* What herd_control_t gives the command: its control_events_t. */
control_events_t *herdd_events(void *data);

#endif
