/*
 * hset.c - a set of map keys by hash (see hset.h).
 *
 * Open addressing with linear probing; deletion shifts the rest of the run
 * back (no tombstones), as pidx and u64map do. A slot holds the hash's top
 * AWMAP_HASH_BITS bits with a bit set above them, so no held value is 0
 * (0: an empty slot). Most groups are small: a set starts at 4 slots from
 * malloc, grows by a quarter (memory is per member) and takes the big
 * tables' own mappings (tablemem.h) only once it is large.
 */
#include "hset.h"

#include <stdlib.h>

#include "herd_error.h"
#include "tablemem.h"

#define HASH_SHIFT (64 - AWMAP_HASH_BITS)
#define HELD (UINT64_C(1) << AWMAP_HASH_BITS)
#define SMALL_BYTES 4096u /* below: calloc; above: tablemem */

static uint64_t value_of(uint64_t hash)
{
    return hash >> HASH_SHIFT | HELD;
}

static size_t home(const hset_t *s, uint64_t v)
{
    uint64_t spread = (uint32_t)((v * UINT64_C(0x9e3779b97f4a7c15)) >> 32);
    return (size_t)((spread * s->n) >> 32);
}

static size_t next(const hset_t *s, size_t i)
{
    return i + 1 == s->n ? 0 : i + 1;
}

static uint64_t *slots_alloc(size_t n)
{
    size_t bytes = n * sizeof(uint64_t);
    return bytes < SMALL_BYTES ? calloc(n, sizeof(uint64_t)) : tablemem_alloc(bytes, 0);
}

static void slots_free(uint64_t *slots, size_t n)
{
    size_t bytes = n * sizeof(uint64_t);
    if (bytes < SMALL_BYTES)
        free(slots);
    else
        tablemem_free(slots, bytes, 0);
}

void hset_init(hset_t *s)
{
    s->slots = NULL;
    s->n = 0;
    s->count = 0;
}

void hset_fini(hset_t *s)
{
    slots_free(s->slots, s->n);
    hset_init(s);
}

/* The slot of v, or the empty slot that ends its run. */
static size_t find(const hset_t *s, uint64_t v)
{
    size_t i = home(s, v);
    while (s->slots[i] && s->slots[i] != v)
        i = next(s, i);
    return i;
}

static int grow(hset_t *s)
{
    size_t n = s->n ? s->n + (s->n / 4 > 4 ? s->n / 4 : 4) : 4;
    if (n > UINT32_MAX)
        return HERD_ENOMEM;
    uint64_t *old = s->slots, *slots = slots_alloc(n);
    size_t old_n = s->n;
    if (slots == NULL)
        return HERD_ENOMEM;
    s->slots = slots;
    s->n = (uint32_t)n;
    for (size_t i = 0; i < old_n; i++)
        if (old[i])
            s->slots[find(s, old[i])] = old[i];
    slots_free(old, old_n);
    return 0;
}

int hset_add(hset_t *s, uint64_t hash)
{
    /* at most 7/8 full: memory is per member, and a set is mostly walked */
    if ((s->slots == NULL || ((size_t)s->count + 1) * 8 > (size_t)s->n * 7) && grow(s) != 0)
        return HERD_ENOMEM;
    uint64_t v = value_of(hash);
    size_t i = find(s, v);
    if (s->slots[i] == 0) {
        s->slots[i] = v;
        s->count++;
    }
    return 0;
}

int hset_has(const hset_t *s, uint64_t hash)
{
    return s->slots && s->slots[find(s, value_of(hash))] != 0;
}

/* Slots from a to b, going forward (with wrap-around). */
static size_t dist(const hset_t *s, size_t a, size_t b)
{
    return b >= a ? b - a : b + s->n - a;
}

int hset_del(hset_t *s, uint64_t hash)
{
    if (s->slots == NULL)
        return 0;
    size_t hole = find(s, value_of(hash));
    if (s->slots[hole] == 0)
        return 0;
    s->slots[hole] = 0;
    s->count--;
    for (size_t j = next(s, hole); s->slots[j]; j = next(s, j)) {
        /* the value at j may fill the hole if its home lies at or before it */
        if (dist(s, home(s, s->slots[j]), j) >= dist(s, hole, j)) {
            s->slots[hole] = s->slots[j];
            s->slots[j] = 0;
            hole = j;
        }
    }
    return 1;
}

int hset_next(const hset_t *s, size_t *cursor, uint64_t *hash)
{
    for (size_t i = *cursor; i < s->n; i++)
        if (s->slots[i]) {
            *hash = (s->slots[i] & (HELD - 1)) << HASH_SHIFT;
            *cursor = i + 1;
            return 1;
        }
    *cursor = s->n;
    return 0;
}

size_t hset_get(const hset_t *s, uint64_t *out, size_t cap)
{
    size_t cursor = 0, k = 0;
    while (k < cap && hset_next(s, &cursor, &out[k]))
        k++;
    return s->count;
}
