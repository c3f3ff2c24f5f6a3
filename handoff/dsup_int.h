/*
 * dsup_int.h - the distributed supervisor's internals, shared by its files
 * (dsup.c's head comment lists them). Users include herd_dsup.h.
 */
#ifndef HERD_DSUP_INT_H
#define HERD_DSUP_INT_H

#include <uv.h>

#include "dsup_layers.h"
#include "herd_dsup.h"
#include "herd_events.h"
#include "log.h"
#include "registry_layers.h"
#include "replica_store.h"
#include "u64map.h"
#include "wire.h"

#define HANDOFF_APP 2
#define REPL_APP 3 /* the replication stream (replicas.c) */
/* How long a child that could not move waits before it is offered again. */
#define DSUP_TOO_BIG_RETRY_MS 10000 /* a state over the limit: measured again then */
#define DSUP_CONFLICT_RETRY_MS 3000 /* the target runs the name: its conflict settles */
/* The handoff stream's messages (handoff.c's head comment). */
enum { HO_OFFER = 1, HO_ACCEPT, HO_REJECT, HO_ABORT, HO_COMMIT, HO_DRAIN, HO_PART, HO_READY };
/* The most member starts one readiness announcement names (readiness.c). */
#define READY_MAX_MEMBERS 4096u
/* While its registry still pulls, a node's join grace waits past
 * join_grace_ms, up to this many times it (readiness.c). */
#define JOIN_BUSY_FACTOR 10u
/* A state up to BIGSTATE_INLINE bytes travels inside its offer; a larger one
 * as parts of up to BIGSTATE_PART bytes ahead of it (bigstate.c). */
#define BIGSTATE_INLINE (512u << 10)
#define BIGSTATE_PART (512u << 10)

/* A child this node runs (or is about to run, or restarts, or moves). */
typedef struct dchild {
    struct dchild *twin; /* another name with the same hash */
    char *name;
    uint64_t hash;
    herd_pid_t pid; /* NONE while restarting */
    herd_pid_t last_pid; /* while restarting: the process that exited (events) */
    herd_pid_t holder; /* while restarting: what holds its name (holder.c), or NONE */
    int service;    /* index in dsup_t.services */
    herd_restart_t restart;
    herd_child_state_t state; /* written by child_set_state only */
    uint32_t pass_gen; /* the full reconcile that last looked at it (dsup_t.pass_gen) */
    uint32_t restarts; /* within the window opened at window_start (restarts.c) */
    uint64_t window_start, restart_at; /* node clock */
    /* a move: its id, the other node, when it times out, when it froze */
    uint64_t move_id, peer, peer_inc, deadline, froze_us, hlc;
    uint8_t gen; /* the registration's moves so far (herd_registry_stamp) */
    int commit_due; /* switched; the commit goes at the next tick (again if refused) */
    herd_pid_t moved_to; /* the accepted new copy */
    uint8_t moved_copies; /* copies of the state on its side when it accepted */
    uint8_t *out;        /* a large state on its way out in parts (bigstate.c), owned */
    size_t out_len, out_sent;
    /* node clock: no move before then (its state was over max_state_bytes,
     * or the target ran a copy of its own: the conflict rule settles that
     * first, and a move keeps the holder frozen while the loser's state
     * waits for it) */
    uint64_t move_after;
    uint32_t forwarded;  /* messages forwarded to it so far */
    /* the spec write it runs: a missing spec it has not seen is not removed */
    herd_spec_ref_t spec_ref;
    /* replication (replicas.c): copies of its state asked for (1: none
     * elsewhere); its replica set (other members) and the version each
     * acknowledged; members to tell to drop their copy once the set holds
     * `version`, the last version put */
    uint8_t copies, set_n, drop_n;
    int strict; /* its spec refuses calls while under-replicated */
    int refusing; /* strict, and refusing calls now */
    int repl_dirty; /* in the dirty list: put at the end of the loop iteration */
    int repl_retry; /* a put a send refused: put again at the next tick */
    int accept_due; /* arriving: accepted once the set holds `version` */
    int unreplicated; /* its last put could not go: replies went with one copy */
    /* copies of other registrations merged in at a replica's offer: the
     * replica is told once the set holds a version from `after` on */
    struct repl_merged { uint64_t node, hlc, writer, version, after; } merged[HERD_MAX_REPLICAS];
    uint8_t merged_n;
    uint64_t version;
    /* the run it is (a writer of its own, this process) and the copy it
     * started from (replica_store.h) */
    replica_lineage_t lin;
    uint64_t released; /* the highest version whose replies went */
    uint64_t put_at;   /* node clock: the last put */
    uint64_t set[HERD_MAX_REPLICAS - 1], set_acked[HERD_MAX_REPLICAS - 1];
    uint64_t set_inc[HERD_MAX_REPLICAS - 1]; /* the start of each that acknowledged */
    /* the version last put to each by this run (whole, or as a change on
     * the one before): the next change follows it; 0: the whole state next */
    uint64_t set_sent[HERD_MAX_REPLICAS - 1];
    /* each refused its last put for want of room (REPL_ACK_NO_ROOM): it
     * does not hold the state, and replies go without it until it takes a
     * put again */
    uint8_t set_full[HERD_MAX_REPLICAS - 1];
    uint64_t drop[HERD_MAX_REPLICAS - 1];
    /* the set was computed at this cluster generation with this many local
     * services (what the service's ring depends on): the same two, the same
     * set, and a put needs no ring lookup (0: compute it) */
    uint64_t set_gen;
    size_t set_services;
} dchild_t;

typedef struct start_waiter {
    struct start_waiter *next; /* another waiter of the same name hash */
    char *name;
    uint64_t hash;
    uint64_t deadline;
    herd_start_cb cb;
    void *data;
} start_waiter_t;

typedef struct dsup_handles {
    uv_timer_t tick, kick;
    uv_idle_t more; /* active while a full reconcile has slices to go */
    struct dsup *d; /* NULL once the supervisor is freed */
    int open;
} dsup_handles_t;

typedef struct term_waiter term_waiter_t; /* terminate.c */

/* A member's start (readiness.c). */
typedef struct ready_member {
    uint64_t id, inc;
} ready_member_t;

/* What this node knows of another member's readiness (readiness.c). */
typedef struct peer_ready {
    uint64_t member_inc; /* the start this is about */
    uint64_t since;      /* node clock: up here since (the fallback counts from it) */
    uint64_t inc;        /* the start whose announcement is below (0: none yet) */
    int ready;           /* it announced it is ready */
    ready_member_t *synced; /* the member starts it announced it synced with, owned */
    size_t synced_n;
    int target;          /* its announcement covers this node's members (or fell_back) */
    int fell_back;       /* made a target by target_grace_ms */
    /* a move to it waited for its readiness: the tick reconciles once it
     * takes children or its fallback is due (readiness_tick) */
    int waited;
    /* this node's announcement (dsup_t.announce_gen) sent to that start */
    uint64_t told_gen, told_inc;
    /* herd_registry_pulls_from when it last came up here (from suspect
     * too): a pull since then makes this node's replica current */
    uint64_t pulls_at_up;
} peer_ready_t;

/* A member as this node sees it, for readiness's pure rules. */
typedef struct ready_view {
    uint64_t id, inc;
    herd_member_state_t state;
    int synced;    /* this node's pull from that start came whole */
    int announced; /* that start's announcement is here */
} ready_view_t;

typedef struct dsup {
    herd_node_t *node;
    herd_dsup_config_t cfg;
    struct {
        char name[HERD_SERVICE_NAME_MAX + 1];
        const herd_behaviour_t *behaviour;
        uint8_t replicas; /* its children's default copies (1..HERD_MAX_REPLICAS) */
    } services[HERD_MAX_SERVICES];
    size_t service_count;
    u64map_t by_hash;   /* name hash -> dchild_t (twins chained) */
    u64map_t by_serial; /* pid serial -> dchild_t */
    size_t child_count;
    size_t restarting, moving, arriving; /* children in each state (children.c) */
    char **dirty; /* names whose spec changed: reconciled at the next kick */
    size_t dirty_n, dirty_cap;
    int full_due; /* a full reconcile at the next kick */
    /* The full reconcile under way (reconcile.c), a slice a loop turn: the
     * position in the registry's order where its next slice starts, the
     * positions it has yet to cover (a whole circle, 2^32, when it begins
     * or begins again), and its generation (dchild_t.pass_gen). */
    int pass_active;
    uint64_t pass_pos, pass_left;
    uint32_t pass_gen;
    dsup_handles_t *h;
    u64map_t waiters; /* name hash -> start_waiter_t chain */
    size_t waiter_count;
    u64map_t parts; /* (old node, move id) -> a large state arriving in parts */
    term_waiter_t *terms; /* terminates waiting for every member to hold them */
    size_t term_count;
    u64map_t peers; /* member id -> peer_ready_t (readiness.c) */
    uint64_t self_id;
    uint64_t started_at, started_hlc;
    uint64_t first_peer_at; /* node clock: when another member was first up here */
    int self_ready; /* the join grace is over (readiness.c) */
    int grace_pending; /* starts were held back by the join grace */
    int target_waiting; /* a move waited for a member's readiness (peer_ready_t.waited) */
    ready_member_t *announced; /* the synced set last announced, owned */
    size_t announced_n;
    int announced_ready; /* and whether it said ready */
    uint64_t announce_gen; /* announcements made (each member gets the last once) */
    int more_moves; /* a handoff waited for room (max_moves) or a new target */
    uint64_t last_reconcile;
    uint64_t next_move_id;
    herd_handoff_stats_t stats;
    herd_handoff_view_t recent[HERD_HANDOFF_RECENT];
    size_t recent_next, recent_count;
    struct svcring *rings; /* one ring per service (svcring.h), owned */
    herd_log_limit_t log_bad; /* malformed messages from peers: one line a second */
    struct repl *repl; /* replication (replicas.c), owned */
    herd_repl_stats_t repl_stats;
} dsup_t;

/* dsup.c */
dsup_t *dsup_of(herd_node_t *n);
void dsup_kick(dsup_t *d, int full);
/* Run the full reconcile's next slice at the loop's next turn, and one a
 * turn until it ends: an idle handle, so the loop takes in what came
 * between two slices without waiting for anything (a timer started from a
 * timer's callback at 0 ms would run in the same turn). */
void dsup_more(dsup_t *d);
/* Keep the loop alive while a restart, a waiter, a terminate or a move
 * waits for the tick. */
void dsup_update_ref(dsup_t *d);

/* services.c */
int dsup_service_index(const dsup_t *d, const char *service);
const herd_behaviour_t *dsup_behaviour(const dsup_t *d, int service);
void dsup_meta(dsup_t *d, int service, herd_meta_t *meta);

/* The spec's bytes: u8 version (1 or 2), str service, u8 restart, bytes arg,
 * u64 written (the hybrid logical clock time of the start_child); version 2
 * adds u8 replicas (0: the service's default) and u8 flags (bit 0: refuse
 * calls while under-replicated). */
#define DSPEC_REFUSE_UNDERREPLICATED 1u
typedef struct dspec {
    char service[HERD_SERVICE_NAME_MAX + 1];
    herd_restart_t restart;
    uint8_t replicas, flags;
    uint64_t written;
    const uint8_t *arg;
    size_t arg_len;
} dspec_t;
/* Returns the encoded spec, malloc'ed (NULL when out of memory). */
uint8_t *dspec_encode(const herd_child_req_t *req, uint64_t written, size_t *len);
int dspec_decode(const uint8_t *buf, size_t len, dspec_t *out);
/* The spec of `name` and the index of its service; HERD_EINVAL (logged)
 * when the service is unknown here. */
int dspec_of(dsup_t *d, const char *name, dspec_t *spec, int *service);

/* children.c */
/* A child not yet in the table: NULL when out of memory. */
dchild_t *dsup_child_new(const char *name, int service, herd_restart_t restart);
dchild_t *dsup_find(dsup_t *d, const char *name);
/* Put c in the tables in `state` (running or arriving); on error c is
 * freed. */
int dsup_add(dsup_t *d, dchild_t *c, herd_child_state_t state);
/* Take c out of the tables and free it (its process is not touched). */
/* Tell the node's event subscribers (herd_events.h) of child `name`. */
void dsup_event(dsup_t *d, herd_event_kind_t kind, const char *name, herd_pid_t pid,
                herd_pid_t other, int reason);
void dsup_forget(dsup_t *d, dchild_t *c);
/* The only writer of c->state (children.c's table says which changes are
 * legal); it keeps d->restarting, d->moving and d->arriving. */
void child_set_state(dsup_t *d, dchild_t *c, herd_child_state_t to);
void children_free(dsup_t *d);

/* restarts.c */
void restarts_on_exit(void *data, herd_pid_t pid, int reason);
/* Restart the children whose back-off ended. */
void restarts_due(dsup_t *d, uint64_t now);

/* reconcile.c */
/* Begin a full reconcile (again, over a whole circle, when one is under
 * way) and run its first slice; reconcile_continue runs the next. */
void reconcile_full(dsup_t *d);
void reconcile_continue(dsup_t *d);
/* Between full passes, or while one is under way: the names whose spec
 * changed (a pass under way may have walked past them), then the pass's
 * next slice, if one is under way. */
void reconcile_more(dsup_t *d);
/* Plan the children whose spec changed since the last reconcile, now. */
void reconcile_dirty(dsup_t *d);
void reconcile_on_spec(void *data, const char *name);
void reconcile_free(dsup_t *d);

/* waiters.c */
int waiters_add(dsup_t *d, const char *name, uint32_t timeout_ms, herd_start_cb cb, void *data);
void waiters_on_name_added(void *data, uint64_t hash);
void waiters_expire(dsup_t *d, uint64_t now);
void waiters_free(dsup_t *d);

/* holder.c: a restarting child's name held by a frozen stand-in */
void holder_hold(dsup_t *d, dchild_t *c);
/* The restarted copy `to` takes the name and the queued messages; nonzero
 * when there was no holder to take them from (register anew). */
int holder_pass(dsup_t *d, dchild_t *c, herd_pid_t to);
void holder_drop(dsup_t *d, dchild_t *c);

/* bigstate.c */
int bigstate_pump(dsup_t *d, dchild_t *c);
void bigstate_out_free(dchild_t *c);
void bigstate_on_part(dsup_t *d, uint64_t from, uint64_t id, uint64_t offset, uint64_t total,
                      const uint8_t *chunk, size_t len);
int bigstate_take(dsup_t *d, uint64_t from, uint64_t id, uint64_t total, uint8_t **out);
void bigstate_drop_move(dsup_t *d, uint64_t from, uint64_t id);
void bigstate_expire(dsup_t *d, uint64_t from, uint64_t stale_before);
void bigstate_free(dsup_t *d);

/* replicas.c: the owner's side of replication */
int replicas_init(dsup_t *d);
void replicas_free(dsup_t *d);
/* The copies a child of `spec` keeps: the spec's, else its service's
 * default; 1 when its behaviour cannot write its state out. */
uint8_t replicas_wanted(const dsup_t *d, const dspec_t *spec, int service);
/* Gate c's running process (c->copies > 1), its versions continuing from
 * `version`, its run holding the copy by `base_writer` at `base_version`
 * it started from (0, 0: none), and put its state at the end of this loop iteration (c->strict
 * set from its spec first). */
void replicas_gate(dsup_t *d, dchild_t *c, uint64_t base_writer, uint64_t base_version,
                   uint64_t version);
/* Put the state of every child whose state changed (each loop iteration,
 * and from herd_dsup_poll). */
void replicas_flush(dsup_t *d);
/* The membership moved: children whose replica set changed put again. */
void replicas_on_member(dsup_t *d);
/* A move of c committed: its new owner's replica set holds its state, so
 * the replies held go, and members of c's set outside the new owner's
 * drop their copies. */
void replicas_moved(dsup_t *d, dchild_t *c);
/* A move of c ended without commit: it puts again (its held replies). */
void replicas_resume(dsup_t *d, dchild_t *c);
/* An arriving copy c (frozen) of a state at `version` (written by
 * `base_writer`, the run it moves from): gate it and put
 * the state to this node's replica set. Returns 1 when it can be accepted
 * now (not replicated, or an empty set); else handoff_accept follows the
 * set's acknowledgements (or the arrival times out). */
int replicas_arrival(dsup_t *d, dchild_t *c, const uint8_t *state, size_t len,
                     uint64_t base_writer, uint64_t version);
/* The next version of c's state (a gated process), 0 when it is gone. */
uint64_t repl_mark(dsup_t *d, dchild_t *c);
/* Fill v's replication fields from c. */
void replicas_view(dsup_t *d, const dchild_t *c, herd_child_view_t *v);
/* Puts to retry, and puts no acknowledgement answered in REPL_ACK_WAIT_MS
 * (from the tick). */
void replicas_tick(dsup_t *d, uint64_t now);
/* Copies of registrations the registry no longer shows go to the node that
 * runs the child, to be merged (replica_serve.c; at most once a second). */
void replica_orphans(dsup_t *d, uint64_t now);
/* This node drains or leaves: its copies go to the members that keep them
 * now (replica_serve.c). */
void replica_handover(dsup_t *d);
/* Copies kept here that no owner's set includes any more go (replica_serve.c). */
void replica_gc(dsup_t *d, uint64_t now);
void replicas_on_app(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                     size_t len);
/* replica_serve.c: the replica's side (called by replicas_on_app) */
void replica_on_put(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name);
/* A batch of puts (REPL_PUTS), acknowledged in one batch. */
void replica_on_puts(dsup_t *d, uint64_t from, wire_reader_t *r);
void replica_on_drop(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name);
void replica_on_query(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name);
void replica_on_merged(dsup_t *d, wire_reader_t *r, const char *name);
/* The copy of `name` kept here goes: its spec went, or it runs here now. */
void replica_drop_local(dsup_t *d, const char *name);
/* replica_query.c: a replicated child starts from the newest copy */
typedef struct repl_copy {
    uint64_t hlc, version, writer;
    uint8_t *bytes; /* owned */
    size_t len;
} repl_copy_t;
/* What a start's query found: the newest copy (replica_rank_newer), and
 * copies of other registrations of the current spec, or of other runs of
 * its registration (a partition ran two): merged into the child as it
 * starts. */
typedef struct repl_found {
    int found;
    uint64_t hlc, version, writer;
    uint8_t *bytes; /* owned */
    size_t len;
    repl_copy_t *others; /* owned */
    size_t others_n;
} repl_found_t;
void repl_found_free(repl_found_t *f);
/* Before starting `name` (copies > 1): 1 and *out filled when the query of
 * the members for their copies ended (free it with repl_found_free); 0
 * while it runs (started now, or still waiting); HERD_ENOMEM. */
int replica_query_start(dsup_t *d, const char *name, const char *service, repl_found_t *out);
void replica_on_have(dsup_t *d, uint64_t from, wire_reader_t *r, const char *name);
void replica_query_member_gone(dsup_t *d, uint64_t id);
void replica_query_tick(dsup_t *d, uint64_t now);
/* A copy just kept here: a query under way for it takes it if newer (it
 * may be the copy its answers will not bring: one handed over). */
void replica_query_offer(dsup_t *d, const char *name, uint64_t hlc, uint64_t version,
                         uint64_t writer, const uint8_t *bytes, size_t len);

/* terminate.c */
void terminate_tick(dsup_t *d, uint64_t now);
void terminate_free(dsup_t *d);

/* readiness.c: explicit readiness instead of fixed waits */
/* Whether this node may call itself ready (members: every member as seen
 * here, this node `self` included; named: the starts the live members'
 * announcements name): not alone, every member up or draining synced with
 * and announced, every named start known here (at it or a newer start). */
int ready_self_ok(const ready_view_t *members, size_t n, uint64_t self,
                  const ready_member_t *named, size_t named_n);
/* Whether every start `list` names but `self` is live among `members`, at
 * that start or a newer one (this node's view is not behind the lister's). */
int ready_known_live(const ready_member_t *list, size_t n, const ready_view_t *members,
                     size_t members_n, uint64_t self);
/* Whether `list` names every start of `need`, each at it or a newer one. */
int ready_covers(const ready_member_t *list, size_t n, const ready_member_t *need,
                 size_t need_n);
/* An HO_READY from `from`'s start `inc`; `r` is past the id and name. */
void readiness_on_ready(dsup_t *d, uint64_t from, uint64_t inc, wire_reader_t *r,
                        uint64_t id, const char *name);
void readiness_on_member(dsup_t *d, uint64_t id, uint64_t inc, herd_member_state_t old_state,
                         herd_member_state_t new_state);
/* Whether member `target` takes children from this node now (its
 * announcement covers this node's members, or target_grace_ms passed). */
int readiness_target(dsup_t *d, const char *target, uint64_t now);
/* Whether this node starts the children asked for before it started. */
int readiness_may_start(dsup_t *d);
/* This node's readiness, its announcement, the fallbacks (from the tick). */
void readiness_tick(dsup_t *d, uint64_t now);
void readiness_free(dsup_t *d);

/* handoff.c */
int handoff_begin(dsup_t *d, dchild_t *c, const char *target);
void handoff_on_app(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                    size_t len);
/* Accept the arriving c (its state replicated): HO_ACCEPT to the old node,
 * saying how many copies hold it on this side. */
void handoff_accept(dsup_t *d, dchild_t *c, unsigned copies);
/* Moves that timed out, arrivals whose sender died. */
void handoff_tick(dsup_t *d, uint64_t now);
void handoff_on_member(dsup_t *d, uint64_t id, herd_member_state_t state);
/* A moving child's process exited before the move ended. */
void handoff_lost(dsup_t *d, dchild_t *c);

#endif
