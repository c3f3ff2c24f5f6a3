/*
 * registry_int.h - the registry's internals, shared by its files:
 * registry.c (the name API), registry_value.c (the value codec, metadata,
 * the order of entries), registry_visible.c (visibility, liveness, a name's
 * winner, a key's dots), registry_conflict.c (conflicts, losers, merges),
 * registry_index.c (the map's observer: the local pid index and the work
 * lists a change leaves), registry_events.c (exits, members, lifecycle),
 * registry_spec.c (child specs) and registry_sync.c (shipping deltas and
 * the digest exchange). Users include herd_registry.h.
 */
#ifndef HERD_REGISTRY_INT_H
#define HERD_REGISTRY_INT_H

#include <string.h>

#include "awmap.h"
#include "digest.h"
#include "herd_registry.h"
#include "pidx.h"
#include "registry_layers.h"
#include "u64map.h"

#define REGISTRY_APP 1
/* Bytes a sync message may take (an upper estimate of its encoding): deltas,
 * digest answers and dots pieces are split to stay below it, far below the
 * runtime's 1 MiB message limit (one change is at most a key and a 64 KiB
 * value). */
#define REGISTRY_MSG_MAX (256u << 10)
/* A delta near REGISTRY_MSG_MAX is a piece of a burst: the key table makes
 * room for this many pieces more like it (registry_sync.c, reserve_for_burst). */
#define REGISTRY_BURST_PIECES 3
/* Pieces of a burst of local changes that leave before it ends (1 MiB,
 * about 17,000 registrations, some 20 ms of work: far within the streams'
 * resend time; registry_sync.c, reg_pending_room). */
#define REGISTRY_BURST_EARLY 4
/* Cloud counters a context carried in one message may hold (8 bytes each). */
#define REGISTRY_CONTEXT_CLOUD 8192u
/* A pull (a digest sync this node offered) that brought nothing for this
 * long no longer holds back the next one. */
#define REGISTRY_PULL_MS 10000u
/* A peer's digest put off while this node pulls for this long is answered
 * at the next periodic check (REGISTRY_CHECK_MS; registry_sync.c,
 * defer_digest). */
#define REGISTRY_DEFER_MS 2000u
/* ...and after this long if the pull it makes meanwhile is not answered
 * yet (no WANT or CONTEXT of it came): the peer it pulls from may be
 * putting off this node's digest in turn, round a ring of pulls. */
#define REGISTRY_ANSWER_WAIT_MS 200u
/* Sync messages (registry/PROTOCOL.md): a delta; the digest exchange
 * (digest.h): A's digest, B's wanted buckets, A's dots in them, B's answer as
 * SYNC_DELTA pieces, then B's context. */
enum { SYNC_DELTA = 1, SYNC_DIGEST = 3, SYNC_WANT = 4, SYNC_DOTS = 5, SYNC_UNREGISTER = 6,
       SYNC_MERGE = 7, SYNC_MERGED = 8, SYNC_CONTEXT = 9, SYNC_SUMMARY = 10, SYNC_FINE = 11 };
#define REGISTRY_MERGE_WAIT_MS 3000 /* a frozen loser waits this long for its winner */
#define REGISTRY_MERGE_HOPS 4 /* times a loser's state follows a holder that moved on */
#define REGISTRY_CHECK_MS 2000
#define REGISTRY_SYNC_CHECKS 5 /* every 5th check: a digest sync with one live peer */
/* The first byte of a child spec's key (herd_spec_put); never of a name. */
#define REG_SPEC_PREFIX '\x01'
/* The first byte of a group membership's key (registry_group.c); never of a
 * name. */
#define REG_GROUP_PREFIX '\x02'
 /* how often live processes' entries are checked */

/* A growable array of `size`-byte items (reg_vec_push gives the size). It
 * may start on a caller's buffer (REG_VEC_ON), which is never freed: the
 * items move to the heap when they outgrow it. */
typedef struct reg_vec {
    void *items;
    size_t n, cap;
    int on_heap; /* items is malloc'd (reg_vec_free frees it) */
} reg_vec_t;
#define REG_VEC_ON(buf) {(buf), 0, sizeof(buf) / sizeof((buf)[0]), 0}
#define REG_VEC_AT(v, type, i) (((type *)(v)->items)[i])
/* Append one item: 0, or HERD_ENOMEM with the array as it was. */
int reg_vec_push(reg_vec_t *v, const void *item, size_t size);
void reg_vec_free(reg_vec_t *v);

/* A watcher of names that got new entries (herd_registry_watch_added). */
typedef struct reg_watcher {
    herd_name_watch_fn fn; /* NULL: removed while the watchers were being told */
    void *data;
} reg_watcher_t;

/* Work an allocation failure left undone, redone by the next check
 * (besides `resettle`, which judges every conflict again). */
enum {
    REG_REDO_DEAD = 1,  /* entries of local pids not alive: found by a scan */
    REG_REDO_ADDED = 2, /* watchers told of every name */
    REG_REDO_GONE = 4,  /* node starts known gone whose entries still stand */
    REG_REDO_INDEX = 8, /* local processes' names missing from the pid index */
    REG_REDO_GROUPS = 16, /* memberships missing from the group index: rebuilt */
};

/* An entry of a live local process that went away without the process
 * letting go of the name (a node that thought us gone removed it): put back
 * by the next check (reg_check_missing). Name (klen bytes, a NUL), then value. */
typedef struct missing {
    uint64_t serial;
    awmap_replica_id_t writer; /* the dot of the entry that went */
    uint64_t counter;
    uint64_t written; /* its value's write time: of one name, the newest goes back */
    size_t order;     /* its place among the removals since the last check */
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
    reg_vec_t missing; /* missing_t *: entries of live local processes that went away */
    reg_vec_t touched; /* char *: names a join added entries to: conflicts to settle */
    herd_registry_stats_t stats;
    awmap_observer_t obs; /* on_added; the index is pruned when its process exits */
    awmap_t *pending;     /* this loop iteration's changes, shipped as one delta */
    struct registry_flush *flush;
    uint64_t last_check; /* node clock, for herd_registry_poll */
    u64map_t peers;      /* node id -> herd_registry_peer_t */
    uint64_t spec_entries; /* entries of spec keys, kept out of the stats */
    uint64_t spec_keys;    /* spec keys with an entry */
    uint64_t visible_names; /* names with an entry visible here (count is O(1)) */
    int visible_dirty;      /* the live set changed: visible_names is recounted */
    /* the process groups (registry_group.c): group name hash -> reg_group_t,
     * twins of a hash chained; kept by the map's observer */
    u64map_t groups;
    uint64_t group_entries; /* entries of group keys, kept out of the stats */
    uint64_t group_keys;    /* group keys with an entry: memberships */
    int groups_dirty;       /* the live set changed: members visible are recounted */
    int resettle; /* a loser's state could not go to its winner yet: retry */
    u64map_t merging; /* serial of a frozen local loser -> reg_merging_t */
    uint64_t merge_attempts; /* merge requests sent, numbering them */
    unsigned checks; /* periodic checks run, for the periodic digest sync */
    reg_vec_t spec_changed; /* char *: spec names changed, told to spec_watch after */
    herd_spec_watch_fn spec_watch;
    void *spec_watch_data;
    reg_vec_t added;    /* uint64_t: name hashes with new entries, for the watchers */
    reg_vec_t watchers; /* reg_watcher_t */
    int telling;        /* the watchers are being told: removals only mark */
    reg_vec_t notes;      /* reg_note_t: (name, pid) pairs changed, for events */
    u64map_t note_index;  /* hash of (name, pid) -> index + 1 in notes */
    reg_vec_t dead;     /* struct reg_dead: entries of local pids not alive, to remove */
    reg_vec_t gone;     /* awmap_replica_id_t: node starts whose removal failed */
    reg_vec_t strangers; /* reg_stranger_t: node starts of entries held here that
                            this node does not know (registry_events.c) */
    unsigned redo;      /* REG_REDO_* */
    digest_t digest;      /* of map, kept up to date by the observer */
    digest_fine_t *fine;  /* its cells (digest.h), kept with it */
    size_t pending_bytes; /* estimated encoding of `pending` */
    size_t burst_room;    /* keys the map's table was last made room for (reserve_for_burst) */
    unsigned burst_pieces; /* pieces of this loop turn's burst shipped (reg_pending_room) */
    uint64_t sync_rounds; /* digest syncs this node answered, numbering them */
    uint64_t pulling;     /* the peer this node pulls from now (0: none) */
    /* a message from this member was refused since the last check (0: none):
     * the next check also syncs with another member, which may hold what it
     * carried (the refusing one may keep sending garbage) */
    uint64_t refused_from;
    uint64_t pull_started; /* node clock: its offer, or the last piece of its answer */
    int pull_answered;     /* the peer answered the pull (WANT or CONTEXT): its deltas
                              keep the pull alive (before, they may be its own changes
                              while our digest went unanswered) */
    u64map_t summaries;   /* member id -> what it last said of its table (registry_prune.c) */
    struct gone_replica *gone_list; /* replicas of gone node starts, none held here */
    size_t gone_n;
} registry_t;

struct reg_dead {
    herd_pid_t pid;
    uint64_t hash;
};

/* A node start some entry held here names that this node has not known as a
 * member: one not met yet, or one gone before this node met it (a peer that
 * held its entries passed them on). */
typedef struct reg_stranger {
    uint64_t node, incarnation;
    uint64_t since; /* node clock: noted then */
} reg_stranger_t;

/* The prepare handle that ships `pending` once per loop iteration. It lives
 * apart from the registry because libuv frees handles only after the loop
 * closes them, which may be after the registry is gone. */
typedef struct registry_flush {
    uv_prepare_t handle;
    uv_timer_t check; /* the periodic check */
    uv_timer_t work;  /* while digest answers are under way: their next steps */
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
    uint64_t written; /* when this entry was written (hlc for a first registration) */
} reg_value_t;

/* Which entries of a key reg_dots collects. */
typedef struct reg_match {
    herd_pid_t pid; /* the entries of this pid */
    unsigned flags; /* REG_MATCH_* */
    uint64_t hlc;   /* REG_MATCH_HLC: of the registration first made then */
} reg_match_t;
enum {
    REG_MATCH_VISIBLE = 1, /* visible entries only */
    REG_MATCH_START = 2,   /* every pid of pid's node start (node, incarnation)
                              and of the node's older starts */
    REG_MATCH_ANY = 4,     /* every entry (values need not be registrations) */
    REG_MATCH_HLC = 8,
};

/* registry.c */
registry_t *reg_of(herd_node_t *n);
/* Apply a change made on this node (add a value superseding `dots`, or remove
 * `dots`) into the map and the pending delta. */
int reg_local_change(registry_t *g, const char *name, const void *value, size_t vlen,
                     const awmap_dot_t *dots, size_t ndots, int add);
/* The same for a key of klen bytes: a key taken from the map may hold any
 * byte (one a peer wrote that no herd node would: a NUL), so paths that
 * find keys in the map keep their length, never strlen. */
int reg_local_change_len(registry_t *g, const char *key, size_t klen, const void *value,
                         size_t vlen, const awmap_dot_t *dots, size_t ndots, int add);
/* Remove `dots` of `key` (klen bytes) from the map only, shipping no delta: a
 * change every node makes by itself (the entries of a node start it knows
 * gone). */
int reg_local_drop(registry_t *g, const char *key, size_t klen, const awmap_dot_t *dots,
                   size_t ndots);
/* A name of at most `max` bytes, not empty and not starting with the child
 * specs' or the groups' prefix: 0 and its length, or HERD_EINVAL. */
int reg_name_check(const char *name, size_t max, size_t *len);

/* registry_value.c */
/* Decode a value; `meta` may be NULL. Malformed values read as pid NONE. */
reg_value_t reg_value_decode(const awmap_t *m, const awmap_entry_t *e, herd_meta_t *meta);
/* Encode v (written == hlc or 0: not stamped) with `meta` (may be NULL), as
 * this node writes it. */
uint8_t *reg_value_encode(const registry_t *g, const reg_value_t *v, const herd_meta_t *meta,
                          size_t *len);
/* The same as node start `writer` writes it. */
uint8_t *reg_value_encode_by(awmap_replica_id_t writer, const reg_value_t *v,
                             const herd_meta_t *meta, size_t *len);
/* Whether entry ea (value a) goes before eb (value b): a total order. */
int reg_value_wins(const awmap_t *m, const reg_value_t *a, const awmap_entry_t *ea,
                   const reg_value_t *b, const awmap_entry_t *eb);
static inline uint64_t reg_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v)); /* one load: lookups read values this way */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* registry_visible.c */
int reg_hidden(const registry_t *g, herd_pid_t pid);
/* What this node knows of the start of pid, a pid of another node:
 * REG_START_KNOWN (a member at that incarnation, up or down; or not in a
 * cluster), REG_START_DEAD (older than a start of its node this node knows:
 * runtime/PROTOCOL.md, Incarnations) or REG_START_UNKNOWN. */
enum { REG_START_DEAD = -1, REG_START_KNOWN = 0, REG_START_UNKNOWN = 1 };
int reg_start_of(const registry_t *g, herd_pid_t pid);
int reg_draining(const registry_t *g, herd_pid_t pid);
static inline int reg_is_local(const registry_t *g, herd_pid_t pid)
{
    return pid.node == g->self_node && pid.incarnation == g->self_inc;
}
void reg_live_set(registry_t *g, uint64_t id, uint64_t incarnation, herd_member_state_t st);
/* Keep visible_names: entry e of name `key` was added (the key's list holds
 * it) or removed (the list no longer does). */
void reg_count_added(registry_t *g, const char *key, size_t klen, const awmap_entry_t *e);
void reg_count_removed(registry_t *g, const char *key, size_t klen, const awmap_entry_t *e);
/* The names with a visible entry, recounted once after the live set changed. */
uint64_t reg_visible_names(registry_t *g);
/* The visible winner among a name's entries; NULL when none is visible. */
const awmap_entry_t *reg_winner(const registry_t *g, const awmap_entry_t *e, reg_value_t *out);
/* Append the dots of the entries (a key's list) that `m` matches to `out`:
 * their count, or HERD_ENOMEM. */
int reg_dots(const registry_t *g, const awmap_entry_t *e, const reg_match_t *m, reg_vec_t *out);
/* Whether `key` has an entry for `pid` (visible or hidden). */
int reg_holds_pid(const registry_t *g, const char *key, herd_pid_t pid);

/* registry_index.c */
const awmap_observer_t *reg_observer(registry_t *g);
void reg_index_remove(registry_t *g, herd_pid_t pid, const char *name);
/* What the change or join that just happened left to do: settle the names
 * it touched, remove dead pids' entries, tell the watchers. */
void reg_settle_touched(registry_t *g);
/* An allocation failed (`what`): logged and counted; `redo` (REG_REDO_*) is
 * retried by the next check. */
void reg_alloc_failed(registry_t *g, const char *what, unsigned redo);
int reg_touched_add(registry_t *g, const char *key, size_t klen);
int reg_dead_add(registry_t *g, herd_pid_t pid, uint64_t hash);
/* Whether pid is known dead: of this node and exited, or of an earlier start
 * of its node than one this node knows. */
int reg_pid_dead(const registry_t *g, herd_pid_t pid);
/* Put back the missing entries of live local processes (each check). */
void reg_check_missing(registry_t *g);
/* Redo what allocation failures left undone (each check). */
void reg_redo(registry_t *g);
void reg_index_init(registry_t *g);
void reg_index_free(registry_t *g);

/* registry_notify.c: events (herd_events.h) */
/* Entry e of `key` was added (delta 1) or removed (-1): noted for the
 * events told once the change is complete (only while some subscriber
 * wants name events). */
void reg_notify_entry(registry_t *g, const char *key, size_t klen, const awmap_entry_t *e,
                      int delta);
void reg_notify_deliver(registry_t *g);
/* This node stopped its local `loser` of `name` (won by `winner`). */
void reg_notify_conflict(registry_t *g, const char *name, herd_pid_t winner, herd_pid_t loser);
void reg_notify_free(registry_t *g);

/* registry_conflict.c */
void reg_settle(registry_t *g, const char *name);
/* Losers whose winner's node did not answer in time resume. */
void reg_merging_expire(registry_t *g);

/* registry_events.c */
/* Remove every entry of the node start (node, incarnation) and of the node's
 * older starts (dead too: runtime/PROTOCOL.md, Incarnations); 0 or
 * HERD_ENOMEM (then it is retried by the next check). */
int reg_remove_start(registry_t *g, uint64_t node, uint64_t incarnation);
/* Remove pid's entries under the keys of `hash`: 1 some went, 0 none, or an
 * error. */
int reg_remove_pid(registry_t *g, herd_pid_t pid, uint64_t hash);
/* Note pid's start, unknown here (from the map's observer). */
void reg_stranger_note(registry_t *g, herd_pid_t pid);
/* Each check: the entries of a start still unknown here after the forget
 * time go, as a down member's do (and of one known dead meanwhile). */
void reg_strangers_check(registry_t *g);

/* registry_spec.c */
static inline int reg_is_spec_key(const char *key, size_t klen)
{
    return klen > 0 && key[0] == REG_SPEC_PREFIX;
}

/* registry_group.c */
static inline int reg_is_group_key(const char *key, size_t klen)
{
    return klen > 0 && key[0] == REG_GROUP_PREFIX;
}
/* A key of a name (a registration): neither a child spec's nor a group's. */
static inline int reg_is_name_key(const char *key, size_t klen)
{
    return klen > 0 && key[0] != REG_SPEC_PREFIX && key[0] != REG_GROUP_PREFIX;
}
/* The order of one membership's entries (two joins written at once on two
 * nodes): the later write wins, then reg_value_wins. Total. */
int reg_member_wins(const awmap_t *m, const reg_value_t *a, const awmap_entry_t *ea,
                    const reg_value_t *b, const awmap_entry_t *eb);
/* Keep the group index: entry e of group key `key` (hash: its
 * awmap_key_hash) was added (the key's list holds it) or removed (the list
 * no longer does). From the map's observer. */
void reg_group_added(registry_t *g, const char *key, size_t klen, uint64_t hash);
void reg_group_removed(registry_t *g, const char *key, size_t klen, uint64_t hash);
/* The key of pid's membership of `group` (glen bytes, 1..HERD_GROUP_MAX of
 * herd_group.h) into key[REG_GROUP_KEY_MAX + 1], NUL-terminated: its
 * length. */
#define REG_GROUP_KEY_MAX (1 + 200 + 1 + 32)
size_t reg_group_key(const char *group, size_t glen, herd_pid_t pid, char *key);
/* A membership's key read back: its group (into `group`, HERD_GROUP_MAX + 1
 * bytes) and pid. HERD_EINVAL for a key no join writes. */
int reg_group_key_split(const char *key, size_t klen, char *group, herd_pid_t *pid);
/* Build the group index again from the map (after an allocation failed). */
void reg_group_rebuild(registry_t *g);
void reg_group_free(registry_t *g);
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
/* The next step of each digest answer and dots pass under way (every loop
 * iteration); returns how many are still under way. Each goes over the map
 * in steps of about REGISTRY_ANSWER_KEYS keys, and waits while more than
 * REGISTRY_ANSWER_QUEUED bytes to its peer are unacknowledged. A step of
 * 2,048 keys holds the loop 4-6 ms when every entry goes (a newcomer's
 * pull of 1,000,000 names); 4,096 gave stalls near 20 ms. */
#define REGISTRY_ANSWER_KEYS 2048u
#define REGISTRY_ANSWER_QUEUED (8u << 20)
/* A peer's digest makes the key table room for its entries up to this
 * many keys (or four times ours): reserve_for in registry_sync.c */
#define REGISTRY_RESERVE_MAX (4u << 20)
size_t reg_sync_work(registry_t *g);
/* Notes that the registry held the loop from start_ns (uv_hrtime) until
 * now doing `what` (a static string): herd_registry_stats' longest_us. */
void reg_held(registry_t *g, const char *what, uint64_t start_ns);

/* herd_registry_stats' syncs_under_way. */
uint64_t reg_sync_under_way(registry_t *g);
/* Member `id` is down, left or gone: a pull from it ends, and an offer held
 * back for it is dropped (it is offered a sync when it comes back). */
void reg_sync_peer_gone(registry_t *g, uint64_t id);
/* Peers a send to was refused: offer them a digest sync (every check). */
void reg_sync_repair(registry_t *g);
void reg_sync_free(registry_t *g);
/* Send an encoded message to member `to`, counted; a refused send is
 * repaired by a digest sync (PROTOCOL.md). */
int reg_send_raw(registry_t *g, uint64_t to, const wire_writer_t *w);

/* registry_prune.c */
/* Tell the members what this node's table holds, and prune the replicas of
 * gone node starts that no member holds an entry of (every check). */
void reg_prune_check(registry_t *g);
void reg_on_summary(registry_t *g, uint64_t from, wire_reader_t *r);
void reg_prune_free(registry_t *g);
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
