/*
 * herd_events.h - a node's events: names registered and unregistered,
 * conflicts resolved, group joins and leaves, children started, moved,
 * restarted, given up on and terminated, members up, suspect, draining,
 * down and gone. Any number of subscribers per node, each by callback or
 * by process (events arrive as HERD_MSG_INFO messages from code outside
 * processes, serial 0, read with herd_event_decode).
 *
 * Each node tells what it sees: a name registered on another node is told
 * on this one when the registration reaches this node's replica. The
 * registry, the distributed supervisor and the handoff subscribe to the
 * same events through a tier of their own, told before any program's
 * subscriber, which no program's call can remove: a program's subscription
 * never breaks them.
 *
 * Threads: every function here must be called on the node's loop thread.
 */
#ifndef HERD_EVENTS_H
#define HERD_EVENTS_H

#include "herd_runtime.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

typedef enum herd_event_kind {
    HERD_EV_NAME_REGISTERED = 1, /* name, pid: this node's replica got a registration
                                    of the name by pid (a metadata update tells
                                    nothing; a move's switch tells the old pid
                                    unregistered and the new one registered) */
    HERD_EV_NAME_UNREGISTERED,   /* name, pid: ... and lost it (unregistered, its
                                    process exited, a conflict lost); hidden
                                    while its node is down is not told here
                                    (member_down is) */
    HERD_EV_NAME_CONFLICT,       /* told on the loser's node, which stops it: name,
                                    pid: the winner, other: the loser */
    HERD_EV_GROUP_JOINED,        /* name: the group, pid */
    HERD_EV_GROUP_LEFT,          /* name: the group, pid, reason */
    HERD_EV_CHILD_STARTED,       /* name: the child, pid: started here from its spec
                                    (new, or from its replicated state when its
                                    owner's node went) */
    HERD_EV_CHILD_MOVED,         /* told on the node it left: name, pid: the new
                                    copy, other: the old one, reason HANDOFF */
    HERD_EV_CHILD_RESTARTED,     /* name, pid: the new process, other: the one
                                    that exited */
    HERD_EV_CHILD_GAVE_UP,       /* name, other: the last pid, reason: its last
                                    exit's (too many restarts: its spec goes) */
    HERD_EV_CHILD_TERMINATED,    /* name, pid, reason: stopped (its spec removed,
                                    reason SHUTDOWN) or ended and not restarted */
    HERD_EV_MEMBER_UP,           /* member events: member, node, incarnation, */
    HERD_EV_MEMBER_SUSPECT,      /* old_state, new_state, gone */
    HERD_EV_MEMBER_DRAINING,
    HERD_EV_MEMBER_DOWN,
    HERD_EV_MEMBER_LEFT,         /* left gracefully, or known gone (gone = 1) */
    HERD_EV_KIND_END             /* one past the last kind */
} herd_event_kind_t;

/* Subscription masks: the kinds a subscriber wants. */
#define HERD_EV_BIT(kind) (1u << (unsigned)(kind))
#define HERD_EV_NAMES                                                                   \
    (HERD_EV_BIT(HERD_EV_NAME_REGISTERED) | HERD_EV_BIT(HERD_EV_NAME_UNREGISTERED) |   \
     HERD_EV_BIT(HERD_EV_NAME_CONFLICT))
#define HERD_EV_GROUPS (HERD_EV_BIT(HERD_EV_GROUP_JOINED) | HERD_EV_BIT(HERD_EV_GROUP_LEFT))
#define HERD_EV_CHILDREN                                                                \
    (HERD_EV_BIT(HERD_EV_CHILD_STARTED) | HERD_EV_BIT(HERD_EV_CHILD_MOVED) |           \
     HERD_EV_BIT(HERD_EV_CHILD_RESTARTED) | HERD_EV_BIT(HERD_EV_CHILD_GAVE_UP) |       \
     HERD_EV_BIT(HERD_EV_CHILD_TERMINATED))
#define HERD_EV_MEMBERS                                                                 \
    (HERD_EV_BIT(HERD_EV_MEMBER_UP) | HERD_EV_BIT(HERD_EV_MEMBER_SUSPECT) |            \
     HERD_EV_BIT(HERD_EV_MEMBER_DRAINING) | HERD_EV_BIT(HERD_EV_MEMBER_DOWN) |         \
     HERD_EV_BIT(HERD_EV_MEMBER_LEFT))
#define HERD_EV_ALL (HERD_EV_NAMES | HERD_EV_GROUPS | HERD_EV_CHILDREN | HERD_EV_MEMBERS)

/* Bytes of an event's name (a registered name, a group, a child, a member's
 * node name), without the NUL. */
#define HERD_EVENT_NAME_MAX 255u

typedef struct herd_event {
    herd_event_kind_t kind;
    uint64_t seq;     /* this node's event number, from 1, one more per event told
                         to any subscriber (a narrow mask sees gaps) */
    uint64_t time_ms; /* the node's clock (herd_node_now) when it was told */
    const char *name; /* the name, group, child or member node ("" if none) */
    herd_pid_t pid;   /* the process it is about (HERD_PID_NONE if none) */
    herd_pid_t other; /* see the kinds above (HERD_PID_NONE if none) */
    int reason;       /* see the kinds above, else 0 */
    /* member events */
    uint64_t node;        /* the member's id (herd_node_id_of its name) */
    uint64_t incarnation; /* the member's start */
    herd_member_state_t old_state, new_state;
    int gone; /* the member start is known gone (its entries are removed) */
} herd_event_t;

/* A kind's name ("name_registered", "member_down", ...), "unknown" else. */
const char *herd_event_kind_name(herd_event_kind_t kind);

/* Told each event whose kind is in the mask, on the loop thread, after the
 * change it tells of is applied. fn may call anything on the loop thread,
 * subscribe and unsubscribe included (an unsubscribed subscriber is not
 * told again, even of the event being told). `ev` and its strings are
 * valid during the call only. */
typedef void (*herd_event_fn)(void *data, const herd_event_t *ev);

/* Subscribe a callback; *id (if not NULL) names the subscription. Errors:
 * HERD_EINVAL (NULL fn, a mask with no known kind), HERD_ENOMEM. */
int herd_events_subscribe(herd_node_t *node, uint32_t mask, herd_event_fn fn, void *data,
                          uint64_t *id);
/* Subscribe local process `pid`: each event arrives as a HERD_MSG_INFO from
 * HERD_PID_NONE, read with herd_event_decode. The subscription ends when
 * the process exits. An event its full mailbox refuses is dropped and
 * counted (herd_events_stats). Errors: HERD_EINVAL (mask; a pid of another
 * node), HERD_ENOPROC (not alive), HERD_ENOMEM. */
int herd_events_subscribe_proc(herd_node_t *node, uint32_t mask, herd_pid_t pid, uint64_t *id);
/* End a subscription. HERD_ENOENT when `id` names none (or one of herd's own). */
int herd_events_unsubscribe(herd_node_t *node, uint64_t id);

/* An event message's bytes (at most HERD_EVENT_MSG_MAX). */
#define HERD_EVENT_MSG_MAX (104u + HERD_EVENT_NAME_MAX)
/* Whether a message is an event (it starts with the event magic) and, if
 * so, read it: *out's name points into `name` (cap bytes, at least
 * HERD_EVENT_NAME_MAX + 1). 0, or HERD_EINVAL for bytes that are not a
 * whole event (nothing written to *out). */
int herd_event_decode(const void *data, size_t len, herd_event_t *out, char *name, size_t cap);

typedef struct herd_events_stats {
    uint64_t emitted;     /* events told on this node */
    uint64_t delivered;   /* deliveries to subscribers (callbacks and processes) */
    uint64_t dropped;     /* deliveries to processes that failed (mailbox full, ...) */
    uint64_t subscribers; /* programs' subscriptions now (herd's own not counted) */
} herd_events_stats_t;
int herd_events_stats(herd_node_t *node, herd_events_stats_t *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
