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
 * gone (a new incarnation, a graceful leave, or down past the forget time).
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
/* Under a virtual clock, what the loop would do by itself: ship the pending
 * delta, and check live processes' entries when that is due (simulations). */
int herd_registry_poll(herd_node_t *node);

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

/* ---- replicated child specs (the distributed supervisor's child list) ------------ */

/* The registry's map also carries `name -> child spec`, under keys no
 * registration can have (a leading REG_SPEC_PREFIX byte), so specs travel
 * with the same deltas and digest syncs. The registry does not read a spec:
 * it is bytes of the supervisor's (up to HERD_SPEC_MAX). Specs are never
 * hidden or removed when their writer's node goes: only a remove does that.
 * Two specs written at once for one name both stay until the next put; the
 * one every node reads is the same (the lowest writer, then dot). */
#define HERD_SPEC_MAX 4096u

/* Write the spec of `name` (1..HERD_NAME_MAX-1 bytes), replacing every spec
 * of it this node sees. */
int herd_spec_put(herd_node_t *node, const char *name, const void *spec, size_t len);
/* Remove every spec of `name` this node sees. HERD_ENOENT when none. */
int herd_spec_remove(herd_node_t *node, const char *name);
/* The spec of `name` (valid until the registry next changes). HERD_ENOENT. */
int herd_spec_get(herd_node_t *node, const char *name, const uint8_t **spec, size_t *len);
/* Visit every spec; stop when fn returns nonzero. Returns the number visited. */
typedef int (*herd_spec_fn)(void *data, const char *name, const uint8_t *spec, size_t len);
int herd_spec_foreach(herd_node_t *node, herd_spec_fn fn, void *data);
size_t herd_spec_count(herd_node_t *node);
/* Told of every name whose specs changed (added, replaced or removed), here
 * or by a join, once the change is applied; the callback may change the
 * registry. One watcher per node; NULL removes it. */
typedef void (*herd_spec_watch_fn)(void *data, const char *name);
int herd_spec_watch(herd_node_t *node, herd_spec_watch_fn fn, void *data);

/* Which write of a spec a node read: so a node can tell "removed" (it has
 * seen that write and the spec is gone) from "not arrived yet". */
typedef struct herd_spec_ref {
    uint64_t node, incarnation, counter;
} herd_spec_ref_t;
/* The write of `name`'s spec herd_spec_get reads. HERD_ENOENT. */
int herd_spec_ref(herd_node_t *node, const char *name, herd_spec_ref_t *ref);
/* Whether this node's replica has seen that write (then a missing spec was
 * removed, not yet to arrive). */
int herd_spec_ref_seen(herd_node_t *node, const herd_spec_ref_t *ref);
/* Every write of `name`'s spec this node holds (up to `cap`); returns how
 * many it holds (more than `cap`: HERD_ERANGE, nothing written). */
int herd_spec_refs(herd_node_t *node, const char *name, herd_spec_ref_t *out, size_t cap);
/* Tell member `to` that these writes of `name`'s spec are removed (a delta
 * of that alone): for a member that may have the spec from a node that had
 * not heard of the removal yet. */
int herd_spec_send_removed(herd_node_t *node, const char *name, const herd_spec_ref_t *refs,
                           size_t n, uint64_t to);

/* Told, once the change is applied, of the hash (awmap_key_hash) of every
 * name that got a new registration entry, here or by a join: a waiter for
 * a name to appear need not poll. Any number of watchers (each added pair
 * is told, in the order added; fn may change the registry and add or
 * remove watchers). HERD_EINVAL for a NULL fn. */
typedef void (*herd_name_watch_fn)(void *data, uint64_t name_hash);
int herd_registry_watch_added(herd_node_t *node, herd_name_watch_fn fn, void *data);
/* Remove a watcher added with the same fn and data (one of them, if added
 * twice). HERD_ENOENT when there is none. */
int herd_registry_unwatch_added(herd_node_t *node, herd_name_watch_fn fn, void *data);
uint64_t herd_registry_name_hash(const char *name);

/* ---- for the handoff ----------------------------------------------------------- */

/* Replace the registration of `name` by `from` with one by `to` in one
 * delta, keeping its metadata and first-registration time: a moved process
 * keeps its place in conflicts. HERD_ENOENT when `from` holds no visible
 * registration of it. */
int herd_registry_switch(herd_node_t *node, const char *name, herd_pid_t from, herd_pid_t to);
/* Ship this loop iteration's changes now (they go at its end otherwise): a
 * handoff's switch must reach the new owner ahead of the commit that
 * follows it on the same ordered stream. */
int herd_registry_flush(herd_node_t *node);
/* The first-registration time of `name`'s visible registration. */
int herd_registry_time(herd_node_t *node, const char *name, uint64_t *hlc);
/* Register with a given first-registration time (a handoff's new copy whose
 * old node died taking the name over); otherwise as herd_register. */
int herd_register_at(herd_node_t *node, const char *name, herd_pid_t pid,
                     const herd_meta_t *meta, uint64_t hlc);
/* A registration has a first-registration time and a move count (`gen`,
 * one more at every switch, wrapping at 256): between entries of one
 * registration (same time) the later move wins, so a moved copy carrying
 * state never loses to the entry it replaced. The stamp of `name`'s visible
 * registration: */
int herd_registry_stamp(herd_node_t *node, const char *name, uint64_t *hlc, uint8_t *gen);
/* Make sure the live local process `pid` has an entry of its own for `name`
 * with the given stamp: a handoff's new copy on commit or when its old node
 * died, and a child that runs here but resolves to nothing. Entries of the
 * same pid are one registration, so nothing changes when one is visible
 * already. Other visible holders are not superseded: when another process
 * holds the name, the conflict rule judges the two (and merges state where
 * the behaviour can), so a copy that holds the only state is never dropped
 * here. HERD_ENOPROC (not a live local process), HERD_EINVAL. */
int herd_register_claim(herd_node_t *node, const char *name, herd_pid_t pid,
                        const herd_meta_t *meta, uint64_t hlc, uint8_t gen);
/* Whether the live local process `pid` has a visible entry for `name`. */
int herd_registry_holds(herd_node_t *node, const char *name, herd_pid_t pid);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
