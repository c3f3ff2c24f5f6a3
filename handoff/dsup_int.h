/*
 * dsup_int.h - the distributed supervisor's internals, shared by its files
 * (dsup.c's head comment lists them). Users include herd_dsup.h.
 */
#ifndef HERD_DSUP_INT_H
#define HERD_DSUP_INT_H

#include <uv.h>

#include "herd_dsup.h"
#include "log.h"
#include "u64map.h"

#define HANDOFF_APP 2
/* How long a child that could not move waits before it is offered again. */
#define DSUP_TOO_BIG_RETRY_MS 10000 /* a state over the limit: measured again then */
#define DSUP_CONFLICT_RETRY_MS 3000 /* the target runs the name: its conflict settles */
/* The handoff stream's messages (handoff.c's head comment). */
enum { HO_OFFER = 1, HO_ACCEPT, HO_REJECT, HO_ABORT, HO_COMMIT, HO_DRAIN, HO_PART };
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
    herd_pid_t holder; /* while restarting: what holds its name (holder.c), or NONE */
    int service;    /* index in dsup_t.services */
    herd_restart_t restart;
    herd_child_state_t state; /* written by child_set_state only */
    uint32_t restarts; /* within the window opened at window_start (restarts.c) */
    uint64_t window_start, restart_at; /* node clock */
    /* a move: its id, the other node, when it times out, when it froze */
    uint64_t move_id, peer, peer_inc, deadline, froze_us, hlc;
    uint8_t gen; /* the registration's moves so far (herd_registry_stamp) */
    int commit_due; /* switched; the commit goes at the next tick (again if refused) */
    herd_pid_t moved_to; /* the accepted new copy */
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
    struct dsup *d; /* NULL once the supervisor is freed */
    int open;
} dsup_handles_t;

typedef struct term_waiter term_waiter_t; /* terminate.c */

typedef struct dsup {
    herd_node_t *node;
    herd_dsup_config_t cfg;
    struct {
        char name[HERD_SERVICE_NAME_MAX + 1];
        const herd_behaviour_t *behaviour;
    } services[HERD_MAX_SERVICES];
    size_t service_count;
    u64map_t by_hash;   /* name hash -> dchild_t (twins chained) */
    u64map_t by_serial; /* pid serial -> dchild_t */
    size_t child_count;
    size_t restarting, moving, arriving; /* children in each state (children.c) */
    char **dirty; /* names whose spec changed: reconciled at the next kick */
    size_t dirty_n, dirty_cap;
    int full_due; /* a full reconcile at the next kick */
    dsup_handles_t *h;
    u64map_t waiters; /* name hash -> start_waiter_t chain */
    size_t waiter_count;
    u64map_t parts; /* (old node, move id) -> a large state arriving in parts */
    term_waiter_t *terms; /* terminates waiting for every member to hold them */
    size_t term_count;
    u64map_t up_since; /* member id -> since when it is up (node clock) */
    uint64_t started_at, started_hlc;
    int grace_pending; /* starts were held back by the join grace */
    int more_moves; /* a handoff waited for room (max_moves) or a new target */
    uint64_t last_reconcile;
    uint64_t next_move_id;
    herd_handoff_stats_t stats;
    herd_handoff_view_t recent[HERD_HANDOFF_RECENT];
    size_t recent_next, recent_count;
    struct svcring *rings; /* one ring per service (svcring.h), owned */
    herd_log_limit_t log_bad; /* malformed messages from peers: one line a second */
} dsup_t;

/* dsup.c */
dsup_t *dsup_of(herd_node_t *n);
void dsup_kick(dsup_t *d, int full);
/* Keep the loop alive while a restart, a waiter, a terminate or a move
 * waits for the tick. */
void dsup_update_ref(dsup_t *d);

/* services.c */
int dsup_service_index(const dsup_t *d, const char *service);
const herd_behaviour_t *dsup_behaviour(const dsup_t *d, int service);
void dsup_meta(dsup_t *d, int service, herd_meta_t *meta);

/* The spec's bytes: u8 version 1, str service, u8 restart, bytes arg, u64
 * written (the hybrid logical clock time of the start_child). */
typedef struct dspec {
    char service[HERD_SERVICE_NAME_MAX + 1];
    herd_restart_t restart;
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
void reconcile_full(dsup_t *d);
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

/* terminate.c */
void terminate_tick(dsup_t *d, uint64_t now);
void terminate_free(dsup_t *d);

/* handoff.c */
int handoff_begin(dsup_t *d, dchild_t *c, const char *target);
void handoff_on_app(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                    size_t len);
/* Moves that timed out, arrivals whose sender died. */
void handoff_tick(dsup_t *d, uint64_t now);
void handoff_on_member(dsup_t *d, uint64_t id, herd_member_state_t state);
/* A moving child's process exited before the move ended. */
void handoff_lost(dsup_t *d, dchild_t *c);

#endif
