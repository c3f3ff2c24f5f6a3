/*
 * pidx.h - which names each local process holds, as (pid serial, name hash)
 * pairs: what the registry removes when a process exits, and whether an
 * entry of a live process that went away was let go (unregistered) or went
 * missing (to be put back).
 *
 * 16 bytes a pair and no copy of the name or value: the map already holds
 * both, and finds a key again by its hash (awmap_foreach_hash). Pairs of one
 * serial share a home slot, so a process's pairs lie in one probe run.
 * Serials are never 0 (0 marks an empty slot).
 */
#ifndef HERD_PIDX_H
#define HERD_PIDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct pidx_slot {
    uint64_t serial, hash;
} pidx_slot_t;

typedef struct pidx {
    pidx_slot_t *slots;
    size_t mask, count;
} pidx_t;

void pidx_init(pidx_t *x);
void pidx_fini(pidx_t *x);
/* Add the pair (no-op if present). HERD_EINVAL for serial 0, HERD_ENOMEM. */
int pidx_add(pidx_t *x, uint64_t serial, uint64_t hash);
int pidx_has(const pidx_t *x, uint64_t serial, uint64_t hash);
/* Remove the pair if present. */
void pidx_del(pidx_t *x, uint64_t serial, uint64_t hash);
/* Remove every pair of `serial`; their hashes go to a malloc'd *out (the
 * caller frees it). Returns the count (on ENOMEM fewer: the rest stay). */
size_t pidx_take(pidx_t *x, uint64_t serial, uint64_t **out);

#endif
