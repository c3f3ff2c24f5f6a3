/*
 * hset.h - a set of the registry map's keys, each kept as the top
 * AWMAP_HASH_BITS bits of its hash (awmap_key_hash): the members of one
 * process group (registry_group.c).
 *
 * 8 bytes a slot and no copy of the key: the map already holds it, and
 * finds it again from those bits (awmap_foreach_hash, which also visits a
 * 2^-32 twin: the caller tells keys apart). So the set holds one slot for
 * keys whose hashes agree in those bits; a caller that removes one of them
 * first checks that no twin is left (registry_group.c does).
 */
#ifndef HERD_HSET_H
#define HERD_HSET_H

#include <stddef.h>
#include <stdint.h>

#include "awmap.h"

typedef struct hset {
    uint64_t *slots; /* owned: n of them (0: none yet) */
    uint32_t n, count;
} hset_t;

void hset_init(hset_t *s);
void hset_fini(hset_t *s);
/* Add a key's hash (a no-op if its bits are held): 0 or HERD_ENOMEM. */
int hset_add(hset_t *s, uint64_t hash);
/* Whether the hash's bits are held. */
int hset_has(const hset_t *s, uint64_t hash);
/* Remove them if held: 1 removed, 0 absent. */
int hset_del(hset_t *s, uint64_t hash);
static inline size_t hset_count(const hset_t *s)
{
    return s->count;
}
/* Walk the set: start with *cursor = 0; 1 and the next hash held (as
 * hset_get gives it), or 0 at the end. The set must not change meanwhile. */
int hset_next(const hset_t *s, size_t *cursor, uint64_t *hash);
/* Copy the hashes held (their top AWMAP_HASH_BITS bits as added, the rest
 * 0: what awmap_foreach_hash takes) into out[0..cap); returns how many are
 * held (more than cap: only cap were copied). */
size_t hset_get(const hset_t *s, uint64_t *out, size_t cap);

#endif
