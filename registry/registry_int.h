/*
 * registry_int.h - the registry's internals, shared by registry.c (the name
 * API, the local index, conflicts, events) and registry_sync.c (shipping
 * deltas and the digest exchange). Users include herd_registry.h.
 */
#ifndef HERD_REGISTRY_INT_H
#define HERD_REGISTRY_INT_H

#include "awmap.h"
#include "digest.h"
#include "herd_registry.h"
#include "pidx.h"
#include "u64map.h"

#define REGISTRY_APP 1
/* Bytes a sync message may take (an upper estimate of its encoding): deltas,
 * digest answers and dots pieces are split to stay below it, far below the
 * runtime's 1 MiB message limit (one change is at most a key and a 64 KiB
 * value). */
#define REGISTRY_MSG_MAX (256u << 10)
/* Cloud counters a context carried in one message may hold (8 bytes each). */
#define REGISTRY_CONTEXT_CLOUD 8192u
/* A pull (a digest sync this node offered) not answered by then no longer
 * holds back the next one. */
#define REGISTRY_PULL_MS 10000u
/* Sync messages (registry/PROTOCOL.md): a delta; the digest exchange
 * (digest.h): A's digest, B's wanted buckets, A's dots in them, B's answer as
 * SYNC_DELTA pieces, then B's context. */
enum { SYNC_DELTA = 1, SYNC_DIGEST = 3, SYNC_WANT = 4, SYNC_DOTS = 5, SYNC_UNREGISTER = 6,
       SYNC_MERGE = 7, SYNC_MERGED = 8, SYNC_CONTEXT = 9 };
#define REGISTRY_MERGE_WAIT_MS 3000 /* a frozen loser waits this long for its winner */
#define REGISTRY_MERGE_HOPS 4 /* times a loser's state follows a holder that moved on */
#define REGISTRY_CHECK_MS 2000
#define REGISTRY_SYNC_CHECKS 5 /* every 5th check: a digest sync with one live peer */
/* The first byte of a child spec's key (herd_spec_put); never of a name. */
#define REG_SPEC_PREFIX '\x01'
 /* how often live processes' entries are checked */

/* An entry of a live local process that went away without the process
 * letting go of the name (a node that thought us gone removed it): put back
 * by the next check_registrations. Name (klen bytes, a NUL), then value. */
typedef struct missing {
    uint64_t serial;
    uint32_t vlen;
    uint8_t klen;
    char name[];
} missing_t;

/* A frozen local conflict loser whose state went to the winner's node. */
typedef struct reg_merging {
    uint64_t deadline; /* node clock: no answer by then, it resumes */
    unsigned hops;     /* times its state followed a holder that moved on */
    uint64_t attempt;  /* the merge request out now; answers to others are stale */
    char name[HERD_NAME_MAX + 1];
} reg_merging_t;

typedef struct registry {
    herd_node_t *node;
    awmap_t *map;
    uint32_t self; /* our replica index in map */
    uint64_t self_node, self_inc; /* our node id and incarnation */
    u64map_t down;   /* node id -> incarnation declared down */
    /* node id -> reg_live_t of the members that are up (or suspect, or
     * draining): only their processes' entries, and this node's, are visible */
    u64map_t live;
    int clustered;   /* in a cluster: visibility follows `live` */
    pidx_t by_pid;   /* local serial -> hashes of the names it holds */
    missing_t **missing; /* entries of live local processes that went away */
    size_t missing_n, missing_cap;
    char **touched;  /* names a join added entries to: conflicts to settle */
    size_t touched_n, touched_cap;
    herd_registry_stats_t stats;
    awmap_observer_t obs; /* on_added; the index is pruned when its process exits */
    awmap_t *pending;     /* this loop iteration's changes, shipped as one delta */
    struct registry_flush *flush;
    uint64_t last_check; /* node clock, for herd_registry_poll */
    u64map_t peers;      /* node id -> herd_registry_peer_t */
    uint64_t spec_entries; /* entries of spec keys, kept out of the stats */
    int resettle; /* a loser's state could not go to its winner yet: retry */
    u64map_t merging; /* serial of a frozen local loser -> reg_merging_t */
    uint64_t merge_attempts; /* merge requests sent, numbering them */
    unsigned checks; /* check_registrations runs, for the periodic digest sync */
    char **spec_changed;   /* spec names changed, told to spec_watch after the change */
    size_t spec_changed_n, spec_changed_cap;
    herd_spec_watch_fn spec_watch;
    void *spec_watch_data;
    uint64_t *added;  /* name hashes with new entries, for added_watch */
    size_t added_n, added_cap;
    herd_name_watch_fn added_watch;
    void *added_watch_data;
    struct reg_dead { /* entries of local pids that are not alive, to remove */
        herd_pid_t pid;
        uint64_t hash;
    } *dead;
    size_t dead_n, dead_cap;
    digest_t digest;      /* of map, kept up to date by the observer */
    size_t pending_bytes; /* estimated encoding of `pending` */
    uint64_t sync_rounds; /* digest syncs this node answered, numbering them */
    uint64_t pulling;     /* the peer this node pulls from now (0: none) */
    uint64_t pull_started; /* node clock */
} registry_t;

/* The prepare handle that ships `pending` once per loop iteration. It lives
 * apart from the registry because libuv frees handles only after the loop
 * closes them, which may be after the registry is gone. */
typedef struct registry_flush {
    uv_prepare_t handle;
    uv_timer_t check; /* check_registrations */
    registry_t *g;    /* NULL once the registry is freed */
    int open_handles;
} registry_flush_t;

enum { VALUE_FULL = 1, VALUE_COMPACT = 2 }; /* a registration value's form */

typedef struct reg_live {
    uint64_t incarnation;
    int draining; /* its processes are moving off: entries of it may be stale */
    uint64_t draining_since; /* node clock */
} reg_live_t;
/* How long after a node starts draining a conflict whose winner it holds
 * waits (the winner may have moved and the move's delta be on its way). */
#define REGISTRY_DRAIN_DEFER_MS 3000

typedef struct reg_value {
    herd_pid_t pid;
    uint64_t hlc;
    uint8_t gen; /* moves since first registered (wraps): a moved copy wins a tie */
} reg_value_t;

/* registry.c */
registry_t *reg_of(herd_node_t *n);
/* Decode a value; `meta` may be NULL. Malformed values read as pid NONE. */
reg_value_t reg_value_decode(const awmap_t *m, const awmap_entry_t *e, herd_meta_t *meta);
const awmap_observer_t *reg_observer(registry_t *g);
/* Apply a change made on this node (add a value superseding `dots`, or remove
 * `dots`) into the map and the pending delta. */
int reg_local_change(registry_t *g, const char *name, const void *value, size_t vlen,
                     const awmap_dot_t *dots, size_t ndots, int add);
void reg_index_remove(registry_t *g, herd_pid_t pid, const char *name);
void reg_settle_touched(registry_t *g);

/* registry_spec.c */
static inline int reg_is_spec_key(const char *key, size_t klen)
{
    return klen > 0 && key[0] == REG_SPEC_PREFIX;
}
/* Keep a spec key whose entries changed (from the map's observer). */
void reg_spec_changed(registry_t *g, const char *key, size_t klen, int added);
/* Tell the watcher of the kept names (after a change or join is complete). */
void reg_spec_deliver(registry_t *g);
size_t reg_spec_keys(registry_t *g);
void reg_spec_free(registry_t *g);

/* registry_sync.c */
/* A local change of about `bytes` goes into `pending`: if that would take it
 * past REGISTRY_MSG_MAX, what it holds is shipped first. */
void reg_pending_room(registry_t *g, size_t bytes);
/* Peers a send to was refused: offer them a digest sync (every check). */
void reg_sync_repair(registry_t *g);
void reg_sync_free(registry_t *g);
/* Send map `m` as `kind` to every member (or only `only_to`). */
void reg_ship(registry_t *g, const awmap_t *m, uint8_t kind, uint64_t only_to);
/* Send delta `m` to member `to` alone; the send's error is returned. */
int reg_ship_to(registry_t *g, const awmap_t *m, uint64_t to);
void reg_flush_now(registry_t *g);
void reg_sync_offer(registry_t *g, uint64_t to, int ask_back);
/* Tell pid's node that its registration of `name` made at `hlc` went. */
void reg_send_unregister(registry_t *g, herd_pid_t pid, const char *name, uint64_t hlc);
/* A conflict loser's state, for whatever process holds `name` as node `to`
 * sees it (the winner this node saw may have moved on meanwhile). */
int reg_send_merge(registry_t *g, uint64_t to, const char *name, uint64_t loser,
                   uint64_t attempt, const uint8_t *state, size_t len);
/* The node that holds the name merged the loser's state into its local
 * `holder` (ok): the loser goes, its queued messages to the holder. Or it
 * did not: with a holder on another node (it moved on) the state follows
 * it; with none the loser resumes and is judged again. */
void reg_merged(registry_t *g, uint64_t loser, uint64_t attempt, int ok, herd_pid_t holder);
void reg_on_sync(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                 size_t len);

#endif
