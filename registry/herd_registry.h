/*
 * herd_registry.h - the global name registry: register a process under a
 * name on one node, find it and message it from any node.
 *
 * Threads: every function here must be called on the node's loop thread
 * (another thread hands work to it with herd_node_post, herd_runtime.h);
 * none is thread-safe.
 *
 * Every node holds a replica of name -> registration in an add-wins delta
 * CRDT (awmap.h). A registration is the pid, its metadata and the hybrid
 * logical clock time it was first made. Changes ship to the other nodes as
 * deltas over the cluster's reliable streams; a node that joins (or comes
 * back), or one a delta could not reach, is brought up to date by a digest
 * sync that sends only what differs (registry/PROTOCOL.md). A name registered on a node is visible there
 * as soon as herd_register returns (read-your-writes).
 *
 * Conflicts: after a partition heals, one name may have two live
 * registrations. Every node picks the same winner: the earlier registration
 * time, then the lower node id (the hash of the node name; the same on every
 * node). The node of the loser hands the loser's state (handoff_out) to the
 * winner, whose resolve_conflict merges it (if its behaviour has one), then
 * stops the loser with HERD_REASON_NAME_CONFLICT; its registration goes with
 * it. Entries of one process are one registration, never a conflict: of
 * two written at once (its metadata updated on two nodes), the later write
 * wins on every node, and the process's node removes the other.
 *
 * Names whose pid lives on a node declared down are hidden, not deleted: the
 * node may only be partitioned away. They are removed once the node is known
 * gone (a new incarnation, a graceful leave, or down past the forget time;
 * a start this node never met: unheard of for the forget time).
 */
#ifndef HERD_REGISTRY_H
#define HERD_REGISTRY_H

/* herd_runtime.h first: it sets up POSIX for uv.h under -std=c11. */
#include "herd_runtime.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

#define HERD_NAME_MAX 255u
#define HERD_META_MAX 8u
#define HERD_META_KEY_MAX 31u
#define HERD_META_VALUE_MAX 127u

/* Metadata: a small map of strings. */
typedef struct herd_meta {
    uint8_t count;
    struct {
        char key[HERD_META_KEY_MAX + 1];
        char value[HERD_META_VALUE_MAX + 1];
    } kv[HERD_META_MAX];
} herd_meta_t;

/* Set key to value (replacing); HERD_ERANGE when full or too long. */
int herd_meta_set(herd_meta_t *m, const char *key, const char *value);
/* The value of key, or NULL. */
const char *herd_meta_get(const herd_meta_t *m, const char *key);

/* Give `node` a registry. Start the cluster first if the node is in one. */
int herd_registry_start(herd_node_t *node);
/* Register `name` for `pid` (a process of this node, or of another node when
 * the caller knows it lives). Errors: HERD_EEXIST (a live registration of
 * another pid holds the name), HERD_ENOPROC (a local pid that is not alive),
 * HERD_EINVAL (empty or over-long name), HERD_ENOENT (no registry). Registering
 * the same pid again updates its metadata. `meta` may be NULL. */
int herd_register(herd_node_t *node, const char *name, herd_pid_t pid, const herd_meta_t *meta);
/* Remove the registration of `name` that lookups see (its winner), and only
 * that one: while two registrations are in conflict, the other live
 * process keeps its name. HERD_ENOENT when there is none. For a process of
 * another node, that node is told too, naming the registration (pid and
 * first-registration time), so it neither puts the name back as gone
 * missing nor removes a newer registration of the same pid. */
int herd_unregister(herd_node_t *node, const char *name);
/* The same for the registration of `name` by `pid`: HERD_ENOENT when `pid`
 * has no visible registration of it. */
int herd_unregister_pid(herd_node_t *node, const char *name, herd_pid_t pid);
/* The pid (and, if `meta` is given, the metadata) of a name. HERD_ENOENT when
 * the name has no visible registration, HERD_EINVAL for an empty or over-long
 * name (as for every call here that takes a name). A process's names go when
 * its exit is carried out (its next turn on the loop), not at herd_exit; a
 * register on the same node may take such a name at once. */
int herd_whereis(herd_node_t *node, const char *name, herd_pid_t *pid, herd_meta_t *meta);
/* Look up `n` names at once: pids[i] and status[i] (0 or the error
 * herd_whereis would give) for names[i]. The lookups overlap their memory
 * reads, so a batch goes several times faster than one call a name when
 * the registry is larger than the CPU's caches. Returns the number found. */
int herd_whereis_many(herd_node_t *node, const char *const *names, size_t n, herd_pid_t *pids,
                      int *status);
/* Replace the metadata of a registered name. */
int herd_update_meta(herd_node_t *node, const char *name, const herd_meta_t *meta);

/* Messages by name: HERD_ENOENT at once for an unknown name, else as the pid
 * variants (herd_runtime.h). herd_node_call_name blocks: HERD_EDEADLK from
 * the node's loop (herd_node_in_loop: a process, a loop callback), whatever
 * the name. herd_node_call_name_async is herd_node_call_async by name: an
 * unknown name is HERD_ENOENT at once (cb never called); the reply and its
 * ownership as there. */
int herd_cast_name(herd_proc_t *self, const char *name, const void *data, size_t len);
int herd_send_name(herd_proc_t *self, const char *name, const void *data, size_t len);
int herd_call_name(herd_proc_t *self, const char *name, const void *data, size_t len,
                   uint32_t timeout_ms, uint64_t *ref);
int herd_node_cast_name(herd_node_t *node, const char *name, const void *data, size_t len);
int herd_node_call_name(herd_node_t *node, const char *name, const void *data, size_t len,
                        uint32_t timeout_ms, herd_reply_t *out);
int herd_node_call_name_async(herd_node_t *node, const char *name, const void *data,
                              size_t len, uint32_t timeout_ms, herd_call_cb cb, void *cbdata);

/* Visit the visible registrations whose name starts with `prefix` (NULL or
 * "" for all), in no particular order; stop when fn returns nonzero. Returns
 * the number visited. */
typedef int (*herd_name_fn)(void *data, const char *name, herd_pid_t pid,
                            const herd_meta_t *meta);
int herd_registry_list(herd_node_t *node, const char *prefix, herd_name_fn fn, void *data);
/* The visible names starting with `prefix`. For all names (NULL or "") the
 * count is kept as entries come and go: O(1), recounted once after a member
 * comes or goes; with a prefix it is a pass over the names. */
int herd_registry_count(herd_node_t *node, const char *prefix);

/* ---- queries ---------------------------------------------------------------------- */

/* Whether `meta` holds every key=value pair of `where` (values compared as
 * strings, exactly); an empty or NULL `where` is held by any metadata. */
int herd_meta_holds(const herd_meta_t *meta, const herd_meta_t *where);
/* Visit the visible names whose metadata holds every pair of `where`
 * (herd_meta_holds; NULL or no pairs: every name), in no particular order,
 * each with its winner's pid and metadata as herd_whereis gives them; stop
 * when fn returns nonzero. fn may be NULL (only count) and must not change
 * the registry. Returns the number visited (the one fn stopped at
 * included); HERD_ENOENT without a registry, HERD_EINVAL for a `where`
 * over HERD_META_MAX pairs. Cost: one pass over the names (no index of
 * metadata is kept), O(names) whatever `where` asks. */
int herd_registry_select(herd_node_t *node, const herd_meta_t *where, herd_name_fn fn,
                         void *data);
/* Visit the visible names `pid` holds: those herd_whereis resolves to it
 * (during a conflict, only those it wins). As herd_registry_select
 * otherwise; HERD_EINVAL for HERD_PID_NONE; 0 for a pid whose node is down
 * or of an earlier start (its names are hidden). Cost: for a pid of this
 * node, the names it holds only (the registry indexes local processes'
 * names: O(its names), whatever the registry's size); for another node's
 * pid, one pass over the names (O(names)). */
int herd_registry_names_of(herd_node_t *node, herd_pid_t pid, herd_name_fn fn, void *data);
/* How many names herd_registry_names_of would visit, at its cost. */
int herd_registry_count_of(herd_node_t *node, herd_pid_t pid);
/* Spawn a process (opts as herd_spawn) and register it as `name` with
 * `meta` (may be NULL) in one step: the process exists only if it got the
 * name. Its init runs after the registration is made, so init and anything
 * the process is sent by name meanwhile already find it under the name; if
 * init fails, the process exits as a failed herd_spawn's does and the name
 * goes with it. If the name is taken (HERD_EEXIST) or bad (HERD_EINVAL: as
 * herd_register, and also a name whose first byte is a control byte, below
 * 0x20, which herd keeps for keys of its own), nothing ran: no init, no
 * terminate, no exit, DOWN or link signal. Other errors: herd_spawn's
 * (HERD_EINVAL, HERD_ENOMEM, HERD_ENOPROC for a dead link target, init's
 * own) and herd_register's (HERD_ENOENT: no registry). *out (may be NULL)
 * is set on success only. */
int herd_spawn_named(herd_node_t *node, const char *name, const herd_meta_t *meta,
                     const herd_spawn_opts_t *opts, herd_pid_t *out);

/* Whether local process `pid` owns `name`: it registered it here and has
 * not let go of it (unregistered here or from another node, or lost it in
 * a conflict). Unlike herd_registry_holds, a registration missing from the
 * replica for a moment, to be put back, still counts. 1 or 0; HERD_EINVAL
 * for a pid of another node or a bad name, HERD_ENOENT without a registry. */
int herd_registry_owns(herd_node_t *node, const char *name, herd_pid_t pid);

typedef struct herd_registry_stats {
    uint64_t names, entries;     /* keys and entries in the replica */
    uint64_t deltas_out, deltas_in, full_syncs_out, full_syncs_in;
    uint64_t conflicts_resolved; /* registrations this node stopped as losers */
    uint64_t reregistered;       /* live processes' entries put back after going missing */
    uint64_t claimed;            /* entries a moved or unnamed local child wrote for itself */
    uint64_t merges_redirected;  /* a loser's state sent on to the holder's node */
    uint64_t merges_abandoned;   /* a loser that resumed: no holder took its state in time */
    uint64_t merges_stale;       /* answers to a merge attempt given up since, ignored */
    uint64_t rejected;           /* malformed sync messages */
    /* sync traffic (registry/PROTOCOL.md) */
    uint64_t bytes_out, bytes_in;  /* sync message bytes sent and received */
    uint64_t send_failed;   /* sync messages a send refused: the peer is synced again */
    uint64_t repairs;       /* digest syncs started to repair a refused send */
    uint64_t pieces_split;  /* messages split to stay under REGISTRY_MSG_MAX bytes */
    uint64_t context_trimmed; /* contexts sent without part of their cloud (too big) */
    uint64_t contexts_joined; /* digest syncs completed with the peer's context */
    /* the causal context: replicas in the table, dots held above the version
     * vectors (0 at quiescence), the largest one replica's cloud */
    uint64_t cc_replicas, cc_cloud_dots, cc_cloud_max;
    /* allocations that failed (each logged; the work left is redone by the
     * next check where it can be) */
    uint64_t alloc_failed;
    uint64_t replicas_pruned; /* replicas of gone node starts dropped from the table */
    /* digest syncs under way now: this node's pull (0 or 1), and its peers'
     * pulls it answers, sends dots to or has put off (PROTOCOL.md) */
    uint64_t syncs_under_way;
    uint64_t deferred_overdue; /* peers' digests answered after REGISTRY_DEFER_MS put off */
    /* peers' digests answered as this node's own pull went unanswered for
     * REGISTRY_ANSWER_WAIT_MS (its peer may wait for one of them) */
    uint64_t deferred_unanswered;
    /* the longest the registry held the loop in one go (one message taken
     * in, one step of a paced pass, one flush or periodic check), in
     * microseconds, and what it was doing ("delta", "want", "work", ...) */
    uint64_t longest_us;
    const char *longest_what;
} herd_registry_stats_t;
int herd_registry_stats(herd_node_t *node, herd_registry_stats_t *out);

/* What this node's registry exchanged with one peer node (zeros if nothing);
 * with herd_cluster_stream_stats (sent/acknowledged/pending) this is what
 * `ringctl crdt` shows. */
typedef struct herd_registry_peer {
    uint64_t deltas_out, deltas_in;
    uint64_t digest_syncs;  /* digest syncs this node offered it */
    uint64_t last_sync_ms;  /* wall clock of the last one, 0: never */
    uint64_t bytes_out, bytes_in;
    uint64_t send_failed;   /* sends to it refused (each repaired by a digest sync) */
} herd_registry_peer_t;
int herd_registry_peer_stats(herd_node_t *node, uint64_t node_id, herd_registry_peer_t *out);

/* What the registry's memory goes to, in bytes: its map's key records (a
 * name and its first entry each; `record_chunks` is the chunks they are
 * carved from, free blocks and the last chunk's unused end included), the
 * entries beyond a name's first (conflicts), the map's key table, the pid
 * index of local processes' names, the map's replica table and causal
 * context, the pending delta (changes not shipped yet), the digest of the
 * map kept for digest syncs (its cells, 128 KiB, only in a cluster) and
 * what the map holds whatever its size. tools/bench/bench_registry.c
 * prints it per name (memory_fill). */
typedef struct herd_registry_memory {
    uint64_t records, record_chunks, entries, key_table, pid_index, replicas, pending, digest,
        fixed;
} herd_registry_memory_t;
int herd_registry_memory(herd_node_t *node, herd_registry_memory_t *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
