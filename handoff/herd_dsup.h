/*
 * herd_dsup.h - the distributed dynamic supervisor: start a process by name
 * from any node; the ring's owner of the name runs it, supervises it and
 * registers it; when the owner changes, the process moves with its state.
 *
 * Threads: every function here must be called on the node's loop thread
 * (another thread hands work to it with herd_node_post, herd_runtime.h);
 * none is thread-safe.
 *
 * Services: a node knows behaviours by service name (herd_service_register)
 * and announces the names it knows with its membership, so every member
 * knows what every other one provides. A child spec is (name, service,
 * arguments, restart strategy); specs live in the registry's replicated map
 * (the registry's child specs), so every node knows every child that must exist.
 *
 * Owners: the owner of a child is the owner of its name on the ring of the
 * members that provide its service (the cluster ring's members, up or
 * suspect, filtered by what they announced; svcring.h). A member that lacks
 * the service never owns the child: it never starts it and is never offered
 * it in a handoff. Where every member provides every service this is the
 * cluster ring itself.
 *
 * Reconcile (after every membership change, every spec change, and every
 * reconcile_ms): a node starts each child whose spec exists, whose name it
 * owns and that has no visible live registration; hands off each child it
 * runs but no longer owns; stops each child it runs whose spec was removed
 * (planner.h decides). A crash restart is this rule once the dead owner's
 * registrations are hidden. A child whose service no member in the ring
 * provides waits, not started, until one does.
 *
 * Local supervision: an owner restarts a child that exits abnormally, with
 * back-off (10 ms doubling to 1 s) and at most max_restarts in window_ms;
 * meanwhile the child stays its own (no other node starts it). A transient
 * child that exits normally, a temporary child on any exit, and a child over
 * the intensity have their spec removed. Exits for a name conflict or a
 * handoff restart nothing.
 *
 * The handoff (handoff.c, ../shared/notes/handoff.md): the owner-to-be
 * starts a frozen copy from handoff_in(state); the old node switches the
 * registration to it in one delta, forwards the messages queued meanwhile in
 * order, commits, stops the old copy (HERD_REASON_HANDOFF) and redirects
 * late messages to the new copy for forward_grace_ms. A message sent to the
 * name during a move is handled once, by whichever copy is live. Each
 * sender's messages keep their order, except for a sender whose view of the
 * name changes mid-stream: its late messages come through the redirect and
 * may land after its newer ones. Timers a process armed do not move (re-arm
 * them in handoff_in); monitors of the old copy fire with HERD_REASON_HANDOFF.
 */
#ifndef HERD_DSUP_H
#define HERD_DSUP_H

/* herd_runtime.h first: it sets up POSIX for uv.h under -std=c11. */
#include "herd_registry.h"
#include "herd_runtime.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

/* The most copies of a child's state (herd_child_req_t.replicas). */
#define HERD_MAX_REPLICAS 5

/* A node's services are what it announces to the cluster: the same limits. */
#define HERD_SERVICE_NAME_MAX HERD_MEMBER_SERVICE_NAME_MAX /* 63 */
#define HERD_MAX_SERVICES HERD_MEMBER_SERVICES_MAX         /* 32 */

/* Make `behaviour` known as `service` on this node (after herd_dsup_start)
 * and announce it to the cluster (herd_cluster_set_services): from then on
 * the members place children of `service` here too, and some of those
 * already running elsewhere move here. Errors: HERD_ENOENT (no supervisor
 * yet), HERD_EINVAL, HERD_EEXIST, HERD_EFULL. */
int herd_service_register(herd_node_t *node, const char *service,
                          const herd_behaviour_t *behaviour);
/* The same with the copies of state its children keep by default
 * (1..HERD_MAX_REPLICAS; herd_child_req_t.replicas 0 takes it; 1: none
 * elsewhere, as herd_service_register). Every node providing a service
 * should register it with the same default. HERD_EINVAL out of range. */
int herd_service_register_replicas(herd_node_t *node, const char *service,
                                   const herd_behaviour_t *behaviour, uint8_t replicas);

typedef struct herd_dsup_config {
    uint32_t reconcile_ms;     /* periodic reconcile; 0: 1000 */
    uint32_t handoff_timeout_ms; /* no accept within it: abort; 0: 2000 */
    uint32_t forward_grace_ms; /* late messages to a moved copy; 0: 5000 */
    uint32_t max_moves;        /* handoffs in flight from this node; 0: 1024 */
    uint32_t max_restarts;     /* per child within window_ms; 0: 3 */
    uint32_t window_ms;        /* 0: 5000 */
    /* Until it is ready, a node that joined others starts no child asked
     * for before it started: those it now owns come to it by handoff, with
     * their state, and its replica of the registry (where it would see them
     * running) is still filling. New children start at once. Ready: its
     * registry pulled whole from every member up here, each of which
     * announced the members it synced with, all known here (readiness.c,
     * REPLICATION.md "Readiness"). join_grace_ms is only the fallback: a
     * node not ready that long after it first met another member (a member
     * of an older version never announces) starts them all the same
     * (herd_handoff_stats_t.join_fallbacks); while its registry is still
     * syncing, up to 10 times that. 0: 1000. */
    uint32_t join_grace_ms;
    /* A member becomes a handoff target as soon as its announcement says
     * it is ready and names every member up here: its new copies can
     * answer those members' calls, and they resolve the name to a node
     * they know. target_grace_ms is only the fallback: a member up here
     * that long without such an announcement becomes a target all the same
     * (herd_handoff_stats_t.target_fallbacks). 0: 500. */
    uint32_t target_grace_ms;
    /* A child whose state is larger does not move (HERD_ETOOBIG: it runs on
     * where it is, and a drain reports it); 0: 64 MiB. States over 512 KiB
     * travel in parts. */
    uint64_t max_state_bytes;
    /* The most state bytes this node keeps as copies for other owners
     * (replicas.c); a put that would take it over is refused as "no room",
     * and its owner answers with the copies that do hold the state; 0:
     * 1 GiB. */
    uint64_t max_replica_bytes;
    /* A full reconcile looks at this many of the registry's keys (names,
     * specs and groups; each child has a name and a spec) per loop turn
     * and goes on at the next, and the periodic walks over the copies kept
     * here for other owners (offering orphaned ones to merge, collecting
     * unwanted ones) at this many copies a tick, so that a node with many
     * children does not stop everything else for one long pass; 0: 4096. */
    uint32_t reconcile_slice;
} herd_dsup_config_t;

/* Give `node` a distributed supervisor (after herd_registry_start). `cfg`
 * may be NULL. Errors: HERD_ENOENT (no registry), HERD_EEXIST. */
int herd_dsup_start(herd_node_t *node, const herd_dsup_config_t *cfg);

typedef struct herd_child_req {
    const char *name;    /* 1..HERD_NAME_MAX-1 bytes (a spec key has a prefix byte) */
    const char *service; /* a service some member provides (maybe not this one) */
    const void *arg;     /* init's argument */
    size_t arg_len;
    herd_restart_t restart;
    /* Copies of its state, the running one included (0: the service's
     * default; 1: none elsewhere; up to HERD_MAX_REPLICAS). With 2 or more,
     * a reply leaves only once the state it reflects is held by the
     * owner's ring successors (replicas.c), and a crash of the owner
     * restarts the child from the newest copy. Needs a behaviour with
     * handoff_out and handoff_in (else 1). */
    uint8_t replicas;
    /* With replicas > 1: while fewer live members than asked can keep a
     * copy, its calls are refused HERD_EUNAVAILABLE (nothing applied)
     * instead of answered with fewer copies (herd_msg_t.copies). */
    int refuse_underreplicated;
} herd_child_req_t;

typedef struct herd_start_result {
    int status;          /* 0, or why it failed (HERD_ETIMEDOUT, ...) */
    herd_pid_t pid;      /* where it runs */
    int already_started; /* it ran before this request */
} herd_start_result_t;

typedef void (*herd_start_cb)(void *data, const herd_start_result_t *res);

/* Start a child by name from this node: the spec is written and the owner
 * (among the members that provide `service`) starts it; `cb` runs (on the
 * loop thread, possibly before this returns) once the name is registered as
 * seen from here, or with HERD_ETIMEDOUT after timeout_ms. A name that
 * already runs answers its pid with already_started set. This node need not
 * provide the service itself. Errors at once, with nothing written:
 * HERD_EINVAL (bad name, a service name empty or over HERD_SERVICE_NAME_MAX,
 * argument over the spec limit), HERD_ENOSERVICE (no member in the ring, as
 * this node sees it, provides `service`: nobody could start it),
 * HERD_ENOENT (no supervisor). */
int herd_start_child_async(herd_node_t *node, const herd_child_req_t *req,
                           uint32_t timeout_ms, herd_start_cb cb, void *data);
/* The same for code outside processes: runs the loop until done. From the
 * node's loop (herd_node_in_loop: a handler, a loop callback) it returns
 * HERD_EDEADLK at once, having written nothing: the loop it would run is
 * the one running the caller. Use herd_start_child_async there. */
int herd_start_child(herd_node_t *node, const herd_child_req_t *req, uint32_t timeout_ms,
                     herd_start_result_t *out);
/* End a child for good: its spec is removed from the replicated map and
 * whichever node runs it stops it (at once when that is this node). `cb`
 * runs on the loop thread, never inside this call: with 0 once every member
 * that has not left (down ones included: a down member may only be cut off;
 * and members that appear meanwhile, which are sent the removal) has
 * acknowledged the removal, so no crash of this node can undo it; or with
 * HERD_EUNCERTAIN after timeout_ms, when some member may not hold it yet (a
 * member forgotten meanwhile counts as such: it may come back from a long
 * partition): the removal keeps spreading, but if this node crashes before
 * it reaches the others, the child may come back. Errors at once:
 * HERD_ENOENT (no such child, or no supervisor), HERD_EINVAL. */
typedef void (*herd_terminate_cb)(void *data, int status);
int herd_terminate_child_async(herd_node_t *node, const char *name, uint32_t timeout_ms,
                               herd_terminate_cb cb, void *data);
/* The same for code outside processes: runs the loop until done and returns
 * the status; HERD_EDEADLK from the node's loop (herd_node_in_loop; nothing
 * removed). */
int herd_terminate_child(herd_node_t *node, const char *name, uint32_t timeout_ms);

/* A child's spec as every node reads it. HERD_ENOENT: no such child. */
typedef struct herd_child_spec_view {
    char service[HERD_SERVICE_NAME_MAX + 1];
    herd_restart_t restart;
    size_t arg_len;
} herd_child_spec_view_t;
int herd_child_spec_get(herd_node_t *node, const char *name, herd_child_spec_view_t *out);

typedef enum herd_child_state {
    HERD_CHILD_RUNNING,
    HERD_CHILD_RESTARTING,  /* exited; restarts after its back-off */
    HERD_CHILD_MOVING,      /* frozen, offered to its new owner */
    HERD_CHILD_ARRIVING,    /* the new owner's frozen copy, not yet committed */
    HERD_CHILD_STATE_COUNT
} herd_child_state_t;
const char *herd_child_state_name(herd_child_state_t s);

typedef struct herd_child_view {
    const char *name, *service;
    herd_pid_t pid;
    herd_child_state_t state;
    herd_restart_t restart;
    uint32_t restarts;
    /* replication: the copies asked for (1: none elsewhere); the members of
     * its replica set (node ids) and the version each holds; the last
     * version put and the highest whose replies went; under_replicated:
     * fewer than `copies` live copies hold what was answered */
    uint8_t copies, replica_count;
    uint64_t replicas[HERD_MAX_REPLICAS - 1], replica_acked[HERD_MAX_REPLICAS - 1];
    uint64_t version, released;
    int under_replicated;
} herd_child_view_t;

/* Visit the children this node runs; stop when fn returns nonzero. Returns
 * the number visited. */
typedef int (*herd_child_fn)(void *data, const herd_child_view_t *c);
int herd_which_children(herd_node_t *node, herd_child_fn fn, void *data);

typedef struct herd_child_counts {
    uint64_t local;   /* children this node runs (any state) */
    uint64_t specs;   /* children that must exist, cluster-wide */
    uint64_t running; /* of those, registered and visible from here */
} herd_child_counts_t;
int herd_count_children(herd_node_t *node, herd_child_counts_t *out);

/* ---- replication ------------------------------------------------------------------ */

typedef struct herd_repl_stats {
    uint64_t puts_out, puts_in;   /* states sent to replicas, and taken as one */
    uint64_t acks_in, refused;    /* acknowledgements; puts a replica refused */
    uint64_t bytes_out, bytes_in; /* state bytes sent and taken */
    uint64_t send_failed;         /* puts the cluster refused (put again later) */
    uint64_t reputs;              /* puts no acknowledgement answered in time, put again */
    uint64_t refusing;            /* times a strict child began refusing calls (too few
                                     members to keep its copies) */
    uint64_t unreplicated;        /* replies let go with fewer copies than asked */
    uint64_t too_big;             /* states over REPL_STATE_MAX: not replicated */
    uint64_t promoted;            /* children started from a replica's copy */
    uint64_t queries, query_timeouts;
    uint64_t held;                /* copies kept here for other owners */
    uint64_t held_bytes;          /* their state bytes (not the tables around them) */
    uint64_t collected;           /* copies dropped here: no owner's set holds this node */
    uint64_t handed_over;         /* copies sent on as this node drained or left */
    uint64_t merged_in;           /* copies of other registrations merged into children
                                     here (a partition ran two) */
    uint64_t others_dropped;      /* such copies kept here that found no room (the
                                     oldest registration's went) */
    uint64_t malformed;           /* replication messages that did not decode */
    uint64_t deltas_out;          /* of puts_out, those sent as a change (delta_out) */
    uint64_t delta_bytes_out;     /* of bytes_out, those deltas' */
    uint64_t deltas_in;           /* of puts_in, those applied to a copy here */
    uint64_t no_room;             /* puts refused here: max_replica_bytes reached */
    uint64_t members_full;        /* times a member of a child's set here refused a put
                                     for want of room: its replies went without it */
    /* replication lag, now: children running here whose last put their set
     * (its members with room) has not acknowledged, and the age of the
     * oldest such put in ms (0: none) */
    uint64_t lagging, lag_ms;
    uint64_t delta_gaps;          /* deltas a replica could not apply (its copy was not
                                     the version they follow): the whole state went */
    uint64_t batches_out;         /* batches of puts sent (each to one member) */
    uint64_t puts_waited;         /* times a dirty child waited for the batch in flight
                                     to a member of its set (it goes in the next one) */
    uint64_t inflight_expired;    /* batches unanswered for REPL_INFLIGHT_MS: the next
                                     went without waiting more */
} herd_repl_stats_t;
int herd_repl_stats(herd_node_t *node, herd_repl_stats_t *out);
/* Whether, for every replicated child this node runs, every version whose
 * replies went is held by as many live copies as it asks for (this node's
 * included), or by every member providing its service when fewer provide
 * it, and no start waits for its query. With 2 copies or more held, a
 * crash of any one node then loses nothing acknowledged by this node's
 * children. */
int herd_repl_settled(herd_node_t *node);
/* Where `name`'s state is kept: the ring's owner of it (among the members
 * providing its service) first, then its replica set, up to the copies its
 * spec asks for; node names into out[cap][65]. Returns how many, or
 * HERD_ENOENT (no such child, or no member provides its service). */
int herd_child_replica_nodes(herd_node_t *node, const char *name, char (*out)[65], size_t cap);

/* ---- handoffs --------------------------------------------------------------------- */

typedef struct herd_handoff_stats {
    uint64_t started, committed, aborted, rejected, received, promoted;
    uint64_t forwarded;     /* messages moved from old copies to new ones */
    uint64_t send_failed;   /* protocol messages the cluster refused (retried or aborted) */
    uint64_t too_big;       /* moves refused: the state was over max_state_bytes */
    uint64_t rejected_parts; /* state parts out of order or over the cap, dropped */
    uint64_t malformed;     /* messages that did not decode (or of no known kind), dropped */
    uint64_t specs_relayed; /* child specs that came with an offer before the registry
                               brought them here (herd_spec_relay) */
    uint64_t claimed;       /* children that registered themselves (a commit, a
                               promotion, or found running without a name) */
    uint64_t starts, restarts, stops;
    uint64_t in_flight;
    /* how long the moves this node committed took, from the freeze of the
     * old copy to the commit: counts per bucket (not cumulative; bucket i
     * holds those over bound i - 1 and up to bound i, in ms, of
     * herd_handoff_duration_bound_ms; the last bucket those over every
     * bound), and their sum in microseconds */
#define HERD_HANDOFF_DURATION_BOUNDS 12u
    uint64_t duration_buckets[HERD_HANDOFF_DURATION_BOUNDS + 1];
    uint64_t duration_us_sum;
    /* readiness (herd_dsup_config_t.join_grace_ms, target_grace_ms):
     * announcements sent and taken in; those from a start that is no live
     * member here, dropped; repeats, which change nothing; members made
     * targets by target_grace_ms, no announcement covering this node's
     * members having come; 1 when this node's join grace ended by
     * join_grace_ms rather than readiness; ms from its start until it was
     * ready (0: not yet, or by the fallback) */
    uint64_t ready_out, ready_in, ready_unknown, ready_duplicate;
    uint64_t target_fallbacks, join_fallbacks, ready_ms;
    /* full reconcile passes (over every spec and child): after a member
     * change, a member newly taking children, room for more moves, and
     * every reconcile_ms */
    uint64_t full_passes;
    /* the loop turns those passes took (herd_dsup_config_t.reconcile_slice),
     * and passes begun again from where they were, over a whole circle of
     * the registry, as the membership changed under them */
    uint64_t full_slices, full_restarts;
} herd_handoff_stats_t;
int herd_handoff_stats(herd_node_t *node, herd_handoff_stats_t *out);
/* The upper bound of duration bucket `i` in ms (1, 2, 5, 10, 25, 50, 100,
 * 250, 500, 1000, 2500, 5000), 0 past the last. */
uint32_t herd_handoff_duration_bound_ms(unsigned i);

/* One handoff this node coordinated (moved a child off), in flight or recent. */
typedef struct herd_handoff_view {
    char name[HERD_NAME_MAX + 1];
    char target[65];
    uint64_t id;
    const char *phase;    /* "offered", "committed", "aborted", "rejected", "too_big" */
    uint64_t started_ms;  /* wall clock */
    uint64_t freeze_to_commit_us; /* 0 while in flight */
    uint32_t forwarded;   /* messages forwarded at commit */
} herd_handoff_view_t;
/* In flight first, then the most recent (up to HERD_HANDOFF_RECENT). */
#define HERD_HANDOFF_RECENT 64u
typedef int (*herd_handoff_fn)(void *data, const herd_handoff_view_t *h);
int herd_handoffs(herd_node_t *node, herd_handoff_fn fn, void *data);

/* Drain node `name` (this node or another member): it leaves the ring, so
 * every child it runs moves off gracefully; it stays a member. `on` 0 ends
 * a drain. HERD_ENOTCONN for an unknown member. */
int herd_drain(herd_node_t *node, const char *name, int on);
/* Whether this node may leave now with nothing lost: it runs no child, no
 * move is in flight, every member that is up has acknowledged all this node
 * sent it (the moves' commits, forwarded messages, registry deltas), and if
 * no other member is up, every member that is down but not forgotten has
 * too (a node cut off alone must not leave with the only copy of a
 * terminate). herdd's SIGTERM waits for it before leaving. */
int herd_dsup_drained(herd_node_t *node);

/* ---- leaving gracefully ------------------------------------------------------------- */

/* Take this node out of its cluster without losing what it runs (herdd's
 * SIGTERM, an embedding program's): drain it (herd_drain: it leaves the
 * ring and its children move to their new owners with their state), wait
 * until it may leave with nothing lost (herd_dsup_drained: the moves and
 * all it sent acknowledged), leave (herd_cluster_leave), linger 200 ms so
 * the leave reaches the members, then `cb(data, status)` on the loop
 * thread, never inside this call:
 *   0               drained: nothing lost;
 *   HERD_ETIMEDOUT  timeout_ms ran out first (0: leave at once, no drain);
 *   HERD_ENOTCONN   no other member is up to take its children;
 *   HERD_ESHUTDOWN  the node was freed first (cb runs inside herd_node_free
 *                   and must not use the node).
 * It leaves in every case; children that did not move stop with the node
 * (their supervisor restarts them elsewhere, as after a crash). The node
 * keeps running until the program frees it: cb typically stops the loop
 * (uv_stop), and the program then calls herd_node_free. A node in no
 * cluster, or without a supervisor, has nothing to move. Errors at once:
 * HERD_EINVAL (cb NULL), HERD_ESHUTDOWN (a shutdown began already),
 * HERD_ENOMEM. On the loop thread; from anywhere there (it does not block). */
typedef void (*herd_shutdown_cb)(void *data, int status);
int herd_node_shutdown(herd_node_t *node, uint32_t timeout_ms, herd_shutdown_cb cb, void *data);
/* Cut a shutdown that still waits for its drain short: it leaves now (a
 * second signal to herdd). HERD_ENOENT when no shutdown waits. */
int herd_node_shutdown_now(herd_node_t *node);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
