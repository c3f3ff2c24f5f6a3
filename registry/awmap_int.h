/*
 * awmap_int.h - the add-wins map's insides, shared by awmap.c (the map and
 * join) and awmap_wire.c (encode/decode). Not for other modules.
 *
 * Memory layout, and why: a registry holds one key per name and nearly every
 * key has one entry, so a lookup should touch two cache lines (a bucket of
 * the key table, then the key record; the chunk table a reference goes
 * through is small and stays cached) and a key should cost one block and
 * few bytes beside it (a registration with a 14-byte name: a 48-byte record
 * and 6-7 bytes of table).
 * - The key table is bucketed open addressing: a 64-byte bucket holds 12
 *   keys, each as its record's 32-bit reference (recmem.h) and a one-byte
 *   tag (8 bits of the hash), so a probe rarely reads a key record that is
 *   not the one sought; 5.3 bytes a lane, at most 9/10 of them in use and
 *   grown by a fifth (awmap.c, keys_grow). A key's home
 *   bucket is its hash times the map's seed, so that keys sent in one
 *   map's bucket order land all over another's table.
 * - A key record holds the name (a length byte, the bytes, a NUL) and,
 *   inline after it, the key's first entry (the head of its entry list
 *   whenever it is in use); other entries are heap entries chained from the
 *   inline one's link, which stays the link to them while the inline entry
 *   is unused. A link is 8 bytes after an entry's value, there only when
 *   the entry's flags say so (awmap.h, AWMAP_ENTRY_LINKED): a heap entry
 *   always has one, a record only once its key held a second entry (the
 *   record grows by 8 bytes then, and shrinks back when a new first entry
 *   is written with no other left). Records are carved from chunks
 *   (recmem.h): no malloc header, no rounding to 16 bytes. An entry's
 *   header is 13 bytes (a dot packs in 8, awmap.h).
 * - Replicas live in a table (entries name them by index) and are found by
 *   id through a hash index beside it: joins, digests and equality look one
 *   up per entry, and a long-running cluster's table holds every incarnation
 *   of every node.
 */
#ifndef HERD_AWMAP_INT_H
#define HERD_AWMAP_INT_H

#include <stddef.h>

#include "awmap.h"
#include "recmem.h"

typedef struct awmap_replica_st {
    awmap_replica_id_t id;
    uint64_t vv;     /* every counter 1..vv seen */
    uint64_t *cloud; /* counters > vv seen, sorted */
    uint32_t cloud_n, cloud_cap;
    uint64_t held;   /* entries of the map under this replica's dots */
    int pruned;      /* a free slot (awmap_prune_replica), reused by the next replica */
} awmap_replica_st_t;

/* A key record: one block of the map's recmem, of key_record_size(klen,
 * the inline entry's len, whether it is linked) bytes. The inline entry is
 * unused when its flags hold AWMAP_ENTRY_IDLE; its len then stays the room
 * its value has, which is (with the link) what sizes the record. */
typedef struct awmap_key {
    uint8_t klen;     /* AWMAP_KEY_MAX fits */
    char name[];      /* klen bytes and a NUL; then, 8-aligned, the inline entry */
} awmap_key_t;

#define AWMAP_LANES 12
typedef struct awmap_bucket {
    _Alignas(64) uint8_t tag[AWMAP_LANES]; /* per lane: 0 empty, else from the hash */
    uint32_t ref[AWMAP_LANES];             /* the key record's (recmem.h) */
} awmap_bucket_t;

struct awmap {
    awmap_replica_st_t *replicas; /* owned */
    uint32_t replica_n, replica_cap;
    /* owned: the replica table indexed by id, open addressing at most half
     * full; a slot holds a replica's index + 1 (0: empty) */
    uint32_t *rindex;
    uint32_t rindex_mask; /* slots - 1 */
    uint32_t pruned_n;    /* free slots in the table */
    awmap_bucket_t *buckets; /* owned: nb of them (any number) */
    recmem_t records;        /* the key records */
    size_t nb, key_n, entry_n;
    size_t multi_n; /* keys holding two entries or more */
    size_t heap_bytes; /* of the entries on the heap (awmap_memory) */
    uint64_t seed; /* odd: multiplies a key's hash for its bucket (awmap.c, key_home) */
    int seeded;    /* set by awmap_set_seed, or by the first key */
    int is_delta;
};

/* The inline entry of k (in use or not). */
static inline awmap_entry_t *awmap__first(const awmap_key_t *k)
{
    size_t off = (offsetof(awmap_key_t, name) + k->klen + 1 + 7) & ~(size_t)7;
    return (awmap_entry_t *)((char *)(uintptr_t)k + off);
}

/* Whether k's inline entry holds an entry. */
static inline int awmap__used(const awmap_key_t *k)
{
    return !(awmap__first(k)->flags & AWMAP_ENTRY_IDLE);
}

/* The link of e, which has one (AWMAP_ENTRY_LINKED). */
static inline awmap_entry_t **awmap__link(awmap_entry_t *e)
{
    return (awmap_entry_t **)(void *)((char *)e + awmap_link_offset(e->len));
}

/* The entry after e, for the map's own changes. */
static inline awmap_entry_t *awmap__next(const awmap_entry_t *e)
{
    return (awmap_entry_t *)(uintptr_t)awmap_next(e);
}

/* The head of k's entry list (NULL if none). */
static inline awmap_entry_t *awmap__entries(const awmap_key_t *k)
{
    awmap_entry_t *f = awmap__first(k);
    return f->flags & AWMAP_ENTRY_IDLE ? awmap__next(f) : f;
}

awmap_t *awmap__alloc(int is_delta);
long awmap__replica_find(const awmap_t *m, awmap_replica_id_t id);
int awmap__cc_has(const awmap_replica_st_t *r, uint64_t c);
int awmap__cc_add(awmap_replica_st_t *r, uint64_t c);
/* Room in r's cloud for c, if c would go there: then adding c cannot fail. */
int awmap__cc_reserve(awmap_replica_st_t *r, uint64_t c);
/* Every dot of a's context is in b's (replicas that saw nothing aside). */
int awmap__cc_within(const awmap_t *a, const awmap_t *b);
awmap_key_t *awmap__key_find(const awmap_t *m, const char *key, size_t klen);
/* The key, added (with room for a vhint-byte value inline) if new; NULL on
 * ENOMEM or an over-long key. */
awmap_key_t *awmap__key_get_or_add(awmap_t *m, const char *key, size_t klen, size_t vhint);
/* Room for n keys in all without growing the table again (a decoder that
 * knows the count); 0 or HERD_ENOMEM. */
int awmap__keys_reserve(awmap_t *m, size_t n);
/* Add an entry as the head of *kp's list; the record may move (*kp follows). */
int awmap__entry_insert(awmap_t *m, awmap_key_t **kp, awmap_dot_t dot, const void *value,
                        size_t vlen, const awmap_observer_t *obs);

#endif
