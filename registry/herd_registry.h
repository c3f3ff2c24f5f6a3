/*
 * herd_registry.h - the global name registry: register a process under a
 * name on one node, find it and message it from any node.
 *
 * Every node holds a replica of name -> registration in an add-wins delta
 * CRDT (awmap.h). A registration is the pid, its metadata and the hybrid
 * logical clock time it was first made. Changes ship to the other nodes as
 * deltas over the cluster's reliable streams; a node that joins (or comes
 * back) is sent the whole map. A name registered on a node is visible there
 * as soon as herd_register returns (read-your-writes).
 *
 * Conflicts: after a partition heals, one name may have two live
 * registrations. Every node picks the same winner: the earlier registration
 * time, then the lower node id (the hash of the node name; the same on every
 * node). The node of the loser hands the loser's state (handoff_out) to the
 * winner, whose resolve_conflict merges it (if its behaviour has one), then
 * stops the loser with HERD_REASON_NAME_CONFLICT; its registration goes with
 * it.
 *
 * Names whose pid lives on a node declared down are hidden, not deleted: the
 * node may only be partitioned away. They are removed once the node is known
 * gone (a new incarnation, a graceful leave, or down past the forget time).
 */
#ifndef HERD_REGISTRY_H
#define HERD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "herd_runtime.h"

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
/* Remove the name's visible registration. HERD_ENOENT when there is none.
 * For a process of another node, that node is told too (so it does not put
 * the name back as gone missing). */
int herd_unregister(herd_node_t *node, const char *name);
/* The pid (and, if `meta` is given, the metadata) of a name. HERD_ENOENT when
 * the name has no visible registration, HERD_EINVAL for an empty or over-long
 * name (as for every call here that takes a name). A process's names go when
 * its exit is carried out (its next turn on the loop), not at herd_exit; a
 * register on the same node may take such a name at once. */
int herd_whereis(herd_node_t *node, const char *name, herd_pid_t *pid, herd_meta_t *meta);
/* Replace the metadata of a registered name. */
int herd_update_meta(herd_node_t *node, const char *name, const herd_meta_t *meta);

/* Messages by name: HERD_ENOENT at once for an unknown name, else as the pid
 * variants (herd_runtime.h). */
int herd_cast_name(herd_proc_t *self, const char *name, const void *data, size_t len);
int herd_send_name(herd_proc_t *self, const char *name, const void *data, size_t len);
int herd_call_name(herd_proc_t *self, const char *name, const void *data, size_t len,
                   uint32_t timeout_ms, uint64_t *ref);
int herd_node_cast_name(herd_node_t *node, const char *name, const void *data, size_t len);
int herd_node_call_name(herd_node_t *node, const char *name, const void *data, size_t len,
                        uint32_t timeout_ms, herd_reply_t *out);

/* Visit the visible registrations whose name starts with `prefix` (NULL or
 * "" for all), in no particular order; stop when fn returns nonzero. Returns
 * the number visited. */
typedef int (*herd_name_fn)(void *data, const char *name, herd_pid_t pid,
                            const herd_meta_t *meta);
int herd_registry_list(herd_node_t *node, const char *prefix, herd_name_fn fn, void *data);
int herd_registry_count(herd_node_t *node, const char *prefix);

typedef struct herd_registry_stats {
    uint64_t names, entries;     /* keys and entries in the replica */
    uint64_t deltas_out, deltas_in, full_syncs_out, full_syncs_in;
    uint64_t conflicts_resolved; /* registrations this node stopped as losers */
    uint64_t reregistered;       /* live processes' entries put back after going missing */
    uint64_t rejected;           /* malformed sync messages */
} herd_registry_stats_t;
int herd_registry_stats(herd_node_t *node, herd_registry_stats_t *out);

/* What this node's registry exchanged with one peer node (zeros if nothing);
 * with herd_cluster_stream_stats (sent/acknowledged/pending) this is what
 * `ringctl crdt` shows. */
typedef struct herd_registry_peer {
    uint64_t deltas_out, deltas_in;
    uint64_t digest_syncs;  /* digest syncs this node offered it */
    uint64_t last_sync_ms;  /* wall clock of the last one, 0: never */
} herd_registry_peer_t;
int herd_registry_peer_stats(herd_node_t *node, uint64_t node_id, herd_registry_peer_t *out);

#endif
