/*
 * registry_layers.h - what the distributed supervisor (and herd's tools and
 * tests) use of the registry and programs do not: the replicated child
 * specs, watchers of names appearing, the handoff's switch and claims, a
 * simulation's clock-driven poll. Not installed, and hidden in libherd.so
 * (only the public headers' declarations are exported).
 */
#ifndef HERD_REGISTRY_LAYERS_H
#define HERD_REGISTRY_LAYERS_H

#include "herd_registry.h"

/* Under a virtual clock, what the loop would do by itself: ship the pending
 * delta, and check live processes' entries when that is due (simulations). */
int herd_registry_poll(herd_node_t *node);

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
/* One slice of a walk over every spec, so that a walk of many can be
 * spread over loop turns: visits the specs whose position in the
 * registry's order (awmap_foreach_range) lies from *pos on, in a range
 * that holds about `keys` of the registry's keys (0: all the rest), and
 * advances *pos past it. Walked from *pos = 0 until it returns 1, the
 * slices visit every spec present throughout the walk once; one added or
 * removed meanwhile may or may not be visited. fn must not change the
 * registry; when it returns nonzero the slice stops, *pos stays, and that
 * value is returned. Returns 0 (more to walk), 1 (the walk reached the
 * end), or HERD_ENOENT (no registry). */
int herd_spec_foreach_slice(herd_node_t *node, uint64_t *pos, size_t keys, herd_spec_fn fn,
                            void *data);
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
/* Take in one write of `name`'s spec that a peer passes on (a child's new
 * owner gets its spec with the child, in case the spec's write has not
 * reached it: its writer may be gone before it did), as if from its writer:
 * held from now on, and shipped to every member, when this node has not
 * seen that write; nothing when it has (it holds it, or a removal or a
 * newer put removed it). 1 when taken in, 0 when seen before; HERD_EINVAL
 * for a counter 0 or a spec over HERD_SPEC_MAX, HERD_ENOMEM. */
int herd_spec_relay(herd_node_t *node, const char *name, const herd_spec_ref_t *ref,
                    const void *spec, size_t len);
/* Tell member `to` that these writes of `name`'s spec are removed (a delta
 * of that alone): for a member that may have the spec from a node that had
 * not heard of the removal yet. */
int herd_spec_send_removed(herd_node_t *node, const char *name, const herd_spec_ref_t *refs,
                           size_t n, uint64_t to);

/* Told, once the change is applied, of the hash (awmap_key_hash) of every
 * name that got a new registration entry, here or by a join: a waiter for
 * a name to appear need not poll. (Not of groups' memberships: they are no
 * name, herd_group.h.) Any number of watchers (each added pair
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

/* Whether a digest sync this node pulled from member `node_id`'s start
 * `incarnation` ended with its context joined (its answer whole), since
 * that member last went down or left: this replica then holds everything
 * that start held when it answered, and that start knew this node as a
 * member (it sent to it). 1 or 0. The handoff's readiness (readiness.c). */
int herd_registry_synced_with(herd_node_t *node, uint64_t node_id, uint64_t incarnation);
/* How many pulls of this node's from member `node_id` came whole so far,
 * over all its starts (never reset): one more after a given moment is a
 * whole pull since then. */
uint64_t herd_registry_pulls_from(herd_node_t *node, uint64_t node_id);

#endif
