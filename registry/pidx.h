/*
 * pidx.h - which names each local process holds, as (pid serial, name hash)
 * pairs: what the registry removes when a process exits, and whether an
 * entry of a live process that went away was let go (unregistered) or went
 * missing (to be put back).
 *
 * 6 bytes a pair and no copy of the name or value: the map already holds
 * both, and finds a key again by the top AWMAP_HASH_BITS bits of its hash
 * (awmap_foreach_hash), which is what a pair keeps, beside a 16-bit tag of
 * the serial. Pairs of one serial share a home slot, so a process's pairs
 * lie in one probe run; a serial (tag) with many pairs gets a table of its
 * own, so a process holding many names costs no more an add than one
 * holding a few. Serials are never 0.
 */
#ifndef HERD_PIDX_H
#define HERD_PIDX_H

#include <stddef.h>
#include <stdint.h>

#include "awmap.h"
#include "u64map.h"

/* A pair is a tag of the serial (PIDX_TAG_BITS, never 0; 0 marks an
 * empty slot) and the hash's top AWMAP_HASH_BITS bits, in two arrays of
 * one block. Two serials may share a tag (one in 65,535 pairs of serials;
 * a node with 100,000 local processes has one or two a tag): the pairs of
 * both then come back for either, and the caller tells them apart (the
 * registry checks the entries' pids). */
#define PIDX_TAG_BITS 16

typedef struct pidx {
    uint32_t *hashes; /* owned: n of them, then the n tags (one block) */
    uint16_t *tags;   /* in that block */
    size_t n, count;  /* slots, and pairs in them */
    size_t pairs;     /* pairs held in all (this table and the tags' own) */
    int by_hash;      /* a tag's own table: homes by the hash */
    u64map_t big;     /* tag -> pidx_t *: the tables of tags with many pairs */
    size_t big_bytes; /* what those take */
} pidx_t;

void pidx_init(pidx_t *x);
/* The bytes the index takes (its tables of single tags included). */
size_t pidx_bytes(const pidx_t *x);
void pidx_fini(pidx_t *x);
/* Add the pair (no-op if present). HERD_EINVAL for serial 0, HERD_ENOMEM. */
int pidx_add(pidx_t *x, uint64_t serial, uint64_t hash);
/* Whether the pair is held (hashes compared in their top AWMAP_HASH_BITS). */
int pidx_has(const pidx_t *x, uint64_t serial, uint64_t hash);
/* Remove the pair if present. */
void pidx_del(pidx_t *x, uint64_t serial, uint64_t hash);
/* Remove every pair of `serial` (and of a serial sharing its tag); their
 * hashes go to a malloc'd *out (the caller frees it), their top
 * AWMAP_HASH_BITS bits as added and the rest 0: what awmap_foreach_hash
 * takes. Returns the count (on ENOMEM fewer: the rest stay). */
size_t pidx_take(pidx_t *x, uint64_t serial, uint64_t **out);
/* Visit the hashes of `serial`'s pairs (and of a serial sharing its tag),
 * as pidx_take gives them, without removing them; stop when fn returns
 * nonzero (and return that). fn must not change the index. */
int pidx_each(const pidx_t *x, uint64_t serial, int (*fn)(void *data, uint64_t hash),
              void *data);
/* Copy the hashes of `serial`'s pairs (and of a serial sharing its tag), as
 * pidx_take gives them, into out[0..cap), leaving them held; returns how
 * many there are (more than cap: only cap were copied). */
size_t pidx_get(const pidx_t *x, uint64_t serial, uint64_t *out, size_t cap);
/* Whether a pair of `serial` (or of a serial sharing its tag) is held: after
 * pidx_take, that it ran out of memory. */
int pidx_tagged(const pidx_t *x, uint64_t serial);

#endif
