/*
 * awmap.h - an add-wins map from keys to sets of (dot, value): the delta-state
 * CRDT under herd's registry (name -> registration) and the distributed
 * supervisor's child list (name -> child spec). Pure data: no I/O, no clock.
 *
 * A dot (replica, counter) names one write; a replica is (node id,
 * incarnation), interned per map as a small index. The causal context (CC)
 * says which dots a map has seen: per replica a version vector entry (every
 * counter up to it) and a sorted cloud of counters above it, folded into the
 * vector as gaps fill. Mutators return deltas, which are maps themselves;
 * join merges any map into another and is commutative, associative and
 * idempotent (tests/prop/test_awmap_prop.c proves it on random histories).
 *
 * Keys in a delta: join looks only at the keys a delta lists, so every dot in
 * a delta's causal context must be a dot of a key the delta lists (possibly
 * with no entries: "these dots of this key are removed") or a dot no map has
 * as an entry yet. The mutators keep to this as long as the dots they are
 * given to supersede or remove are dots of their key (the caller's promise:
 * the registry takes them from the key's own entries), and so does the digest
 * sync; awmap_join_full joins arbitrary maps by looking at every key.
 *
 * Names and values are byte strings; names up to AWMAP_KEY_MAX bytes.
 */
#ifndef HERD_AWMAP_H
#define HERD_AWMAP_H

#include <stddef.h>
#include <stdint.h>

#include "herd_error.h"
#include "wire.h"

#define AWMAP_KEY_MAX 255u
#define AWMAP_VALUE_MAX (64u << 10)

/* A dot packs in 8 bytes (every entry holds one): a map's replica table
 * holds up to AWMAP_REPLICAS_MAX node starts (awmap_replica refuses more),
 * and an entry's counter is at most AWMAP_COUNTER_MAX (a node start that
 * wrote that many is refused its next write, a map on the wire with a
 * higher one is refused). Contexts hold any u64 counter. */
#define AWMAP_REPLICAS_MAX 65536u
#define AWMAP_COUNTER_MAX ((UINT64_C(1) << 48) - 1)
typedef struct awmap_dot {
    uint64_t replica : 16; /* index in the map's replica table */
    uint64_t counter : 48;
} awmap_dot_t;

typedef struct awmap_replica_id {
    uint64_t node, incarnation;
} awmap_replica_id_t;

typedef struct awmap awmap_t;

/* One entry of a key, as the map holds it (valid until the map changes):
 * a 13-byte header and the value. A key's next entry is awmap_next's: most
 * keys hold one entry, and a link in every entry would cost each 8 bytes. */
typedef struct awmap_entry {
    awmap_dot_t dot;
    uint32_t len;
    uint8_t flags;   /* the map's own (AWMAP_ENTRY_*) */
    uint8_t value[];
} awmap_entry_t;

/* An entry's flags: the key's first entry (inline in its record), kept
 * unused (never set in an entry seen); an entry followed by a link to the
 * key's next entry (NULL: none), 8-aligned after its value. */
#define AWMAP_ENTRY_IDLE 1u
#define AWMAP_ENTRY_LINKED 2u

/* The bytes from an entry of a len-byte value to its link. */
static inline size_t awmap_link_offset(size_t len)
{
    return (offsetof(awmap_entry_t, value) + len + 7) & ~(size_t)7;
}

/* The key's entry after e (NULL: e is its last). */
static inline const awmap_entry_t *awmap_next(const awmap_entry_t *e)
{
    if (!(e->flags & AWMAP_ENTRY_LINKED))
        return NULL;
    return *(const awmap_entry_t *const *)(const void *)((const char *)e +
                                                         awmap_link_offset(e->len));
}

/* Told of every entry a join or mutator adds or removes. */
typedef struct awmap_observer {
    void (*added)(void *data, const char *key, size_t klen, const awmap_entry_t *e);
    void (*removed)(void *data, const char *key, size_t klen, const awmap_entry_t *e);
    void *data;
} awmap_observer_t;

/* A state: keys whose last entry goes are dropped. */
awmap_t *awmap_new(void);
/* A delta: keys stay listed with no entries, as removal hints for join. */
awmap_t *awmap_new_delta(void);
void awmap_free(awmap_t *m);

/* Seed the key table's layout (which bucket a key goes to), while the map
 * holds no key (HERD_EBUSY otherwise). Maps with different seeds lay keys
 * out unrelated to each other, so that a map joined in pieces in another's
 * iteration order fills evenly; give every big map its own (a registry:
 * its node id and incarnation). A map never seeded takes a seed from its
 * first key and first replica: deterministic either way. */
int awmap_set_seed(awmap_t *m, uint64_t seed);

/* The index of replica (node, incarnation), added if new; found in O(1).
 * HERD_ENOMEM when out of memory, or when the table holds
 * AWMAP_REPLICAS_MAX replicas (a pruned one's slot is taken first). */
int awmap_replica(awmap_t *m, awmap_replica_id_t id, uint32_t *index);
awmap_replica_id_t awmap_replica_id(const awmap_t *m, uint32_t index);
size_t awmap_replica_count(const awmap_t *m);

/* ---- mutators: change `m` and describe the change in `delta` ---------------- */

/* Add (key, value) under a new dot of `replica`, and remove the `n` dots in
 * `supersede` (entries of this key the caller replaces; HERD_EINVAL for a dot
 * of an unknown replica or counter 0). The delta gets the
 * new entry and a CC of the new dot plus the superseded ones. `delta` may be
 * NULL; it may already hold other changes (they accumulate). HERD_ERANGE
 * once the replica's next counter would pass AWMAP_COUNTER_MAX. */
int awmap_add(awmap_t *m, uint32_t replica, const char *key, size_t klen, const void *value,
              size_t vlen, const awmap_dot_t *supersede, size_t n, awmap_t *delta,
              const awmap_observer_t *obs, awmap_dot_t *new_dot);
/* Remove the given dots of `key` (never the key's other entries). */
int awmap_remove(awmap_t *m, const char *key, size_t klen, const awmap_dot_t *dots, size_t n,
                 awmap_t *delta, const awmap_observer_t *obs);

/* ---- join ------------------------------------------------------------------- */

/* m := m join d, looking at the keys d lists (see the header comment).
 *
 * Out of memory: HERD_ENOMEM leaves m as m joined with a part of d (perhaps
 * none of it), never a mix that a later join could not mend: every entry m
 * holds has its dot in m's context, no entry d removed comes back, the
 * observer has been told of every change that stays, and the same join,
 * retried, gives m join d. A caller may retry, or drop d and let a later
 * sync bring what it missed. d's replicas may have been added to m's table. */
int awmap_join(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs);
/* m := m join d for arbitrary maps (every key of m is checked); out of
 * memory as awmap_join. */
int awmap_join_full(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs);

/* Copy `key`'s entries from `src` into `dst`, with their dots added to dst's
 * context (nothing else of src's context): a piece of src that can travel on
 * its own as a delta. */
int awmap_copy_key(awmap_t *dst, const awmap_t *src, const char *key, size_t klen);
/* The same for one entry of `src` (with `value` NULL and vlen 0 to copy only
 * the dot as an entry without a value: a digest's list of live dots). */
int awmap_copy_entry(awmap_t *dst, const awmap_t *src, const char *key, size_t klen,
                     const awmap_entry_t *e, int with_value);
/* Join src's causal context (and nothing else) into dst. */
int awmap_copy_context(awmap_t *dst, const awmap_t *src);
/* The same, keeping at most `max_cloud` cloud counters in all (those of the
 * replicas first in src's table): an under-approximation of src's context,
 * which is always safe to ship (a dot left out is at worst sent again).
 * *trimmed (may be NULL) is set when something was left out. */
int awmap_copy_context_bounded(awmap_t *dst, const awmap_t *src, size_t max_cloud,
                               int *trimmed);
/* Copy src's context from replica *replica, cloud position *at on, at most
 * `max_cloud` cloud counters (and the version vector entry of each replica
 * it reaches), advancing the position: 1 when it reached the end, 0 when
 * more is left, HERD_ENOMEM. Pieces copied this way join to the whole. */
int awmap_copy_context_part(awmap_t *dst, const awmap_t *src, uint32_t *replica, uint32_t *at,
                            size_t max_cloud);
/* Drop replica `id` from the table: its version vector and cloud go, and
 * the map no longer counts any of its dots seen. HERD_EBUSY while the map
 * holds an entry under one of its dots, HERD_ENOENT if unknown. For a node
 * start that is gone, once no member holds its entries (registry/PROTOCOL.md):
 * a dot of it that arrives later is taken as new. */
int awmap_prune_replica(awmap_t *m, awmap_replica_id_t id);
/* Visit each replica of the table: its version vector entry, cloud size and
 * the entries the map holds under its dots; stop when fn returns nonzero. */
typedef int (*awmap_replica_fn)(void *data, awmap_replica_id_t id, uint64_t vv, size_t cloud,
                                uint64_t held);
int awmap_foreach_replica(const awmap_t *m, awmap_replica_fn fn, void *data);
/* The causal context's size: the dots held in clouds, all and the largest
 * one replica's. */
void awmap_cloud_stats(const awmap_t *m, uint64_t *total, uint64_t *largest);
/* List `key` in delta `dst` with the dot (id, counter) in its context and no
 * entry for it: "this entry of this key is removed". */
int awmap_note_removed(awmap_t *dst, const char *key, size_t klen, awmap_replica_id_t id,
                       uint64_t counter);
/* List `key` in delta `dst` with the entry of dot (id, counter) holding
 * `value`, and that dot in its context: one write passed on by a node that
 * is not its writer (a join adds it where that dot was never seen, and
 * nowhere else: a write removed since stays removed). */
int awmap_note_entry(awmap_t *dst, const char *key, size_t klen, awmap_replica_id_t id,
                     uint64_t counter, const void *value, size_t vlen);

/* ---- reading ------------------------------------------------------------------ */

/* The entries of `key` (NULL if none). */
const awmap_entry_t *awmap_get(const awmap_t *m, const char *key, size_t klen);
size_t awmap_key_count(const awmap_t *m);
/* Keys holding two entries or more (concurrent registrations, in conflict
 * until settled). */
size_t awmap_multi_key_count(const awmap_t *m);
/* Make room in the key table for n keys in all, so that taking them in
 * does not stop to grow it (a node about to receive a large map); 0, or
 * HERD_ENOMEM with the map unchanged. */
int awmap_reserve(awmap_t *m, size_t n);
size_t awmap_entry_count(const awmap_t *m);
/* What the map's memory goes to, in bytes (a registry's breakdown per name:
 * tools/bench/bench_registry.c, memory_fill). */
typedef struct awmap_memory {
    size_t records;       /* key records in use (each a name and its first entry) */
    size_t record_chunks; /* the chunks they are carved from: records, free blocks, slack */
    size_t entries;       /* entries beyond a key's first (conflicts), on the heap */
    size_t table;         /* the key table */
    size_t replicas;      /* the replica table, its index and the clouds */
    size_t fixed;         /* the map itself and its chunk table */
} awmap_memory_t;
void awmap_memory(const awmap_t *m, awmap_memory_t *out);
/* The hash the map files `key` under. The map places and finds keys by its
 * top AWMAP_HASH_BITS bits, so an index of keys may keep only those (the
 * registry's pid index: 6 bytes a pair with the serial's tag). Keys that
 * share them (twins: about one key in 20,000 of a million) share a home
 * and are told apart by name. */
#define AWMAP_HASH_BITS 32
uint64_t awmap_key_hash(const char *key, size_t klen);
/* awmap_get with the key's hash already known. */
const awmap_entry_t *awmap_get_hashed(const awmap_t *m, const char *key, size_t klen,
                                      uint64_t hash);
/* For lookups in a batch: start loading from memory what a lookup of `hash`
 * will read, stage 0 its bucket, stage 1 (once the bucket is in) the key
 * records its tag matches. Lookups a few apart then overlap their misses. */
void awmap_prefetch(const awmap_t *m, uint64_t hash, int stage);
/* Visit the keys whose hash agrees with `hash` in its top AWMAP_HASH_BITS
 * bits (one, but for a 2^-32 twin); stop when fn returns nonzero (and
 * return that). fn must not change the map. */
int awmap_foreach_hash(const awmap_t *m, uint64_t hash,
                       int (*fn)(void *data, const char *key, size_t klen, const awmap_entry_t *e),
                       void *data);
/* Visit the keys whose position lies in [lo, hi) (hi up to 2^32), a
 * position being where the map's order places a key, the same whatever the
 * table's size: ranges that cover [0, 2^32) visit every key once, and a
 * walk over successive ranges visits every key present throughout it even
 * when the map changes between two ranges (keys added or removed meanwhile
 * may or may not be visited). fn must not change the map. */
int awmap_foreach_range(const awmap_t *m, uint32_t lo, uint64_t hi,
                        int (*fn)(void *data, const char *key, size_t klen,
                                  const awmap_entry_t *e),
                        void *data);
/* Visit every key; stop when fn returns nonzero (and return that). */
int awmap_foreach(const awmap_t *m,
                  int (*fn)(void *data, const char *key, size_t klen, const awmap_entry_t *e),
                  void *data);
/* Whether the map's causal context holds the dot (replica, counter) given by
 * replica id. */
int awmap_seen(const awmap_t *m, awmap_replica_id_t id, uint64_t counter);
/* The version vector entry of a replica (0 if unknown), and the size of its
 * cloud. */
uint64_t awmap_vv(const awmap_t *m, awmap_replica_id_t id, size_t *cloud);
/* Equal entries and equal causal contexts (replica indices may differ). */
int awmap_equal(const awmap_t *a, const awmap_t *b);
int awmap_is_empty(const awmap_t *m);

/* ---- wire ------------------------------------------------------------------ */

/* Append the whole map (replicas by id, CC, keys and entries) to `w`. */
void awmap_encode(const awmap_t *m, wire_writer_t *w);
/* Read a map written by awmap_encode. HERD_EBADFRAME on malformed input. */
int awmap_decode(wire_reader_t *r, awmap_t **out);

#endif
