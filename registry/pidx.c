/*
 * pidx.c - local processes' names by pid serial (see pidx.h).
 *
 * Open addressing with linear probing from the serial's home slot; deletion
 * shifts the rest of the run back (no tombstones), as u64map does. The
 * table takes any size and grows by a quarter, not double: memory is per
 * name, a table just grown is 70 % full, and growing is cheap (a pair holds
 * all its rehash needs).
 */
#include "pidx.h"

#include <stdlib.h>

#include "herd_error.h"
#include "tablemem.h"

#define HASH_SHIFT (64 - AWMAP_HASH_BITS)
#define TAG_MASK ((UINT64_C(1) << PIDX_TAG_BITS) - 1)

static uint64_t tag_of(uint64_t serial)
{
    uint64_t t = (serial ^ (serial >> PIDX_TAG_BITS) ^ (serial >> 2 * PIDX_TAG_BITS)) & TAG_MASK;
    return t ? t : 1;
}

static uint64_t pair_of(uint64_t serial, uint64_t hash)
{
    return tag_of(serial) << AWMAP_HASH_BITS | hash >> HASH_SHIFT;
}

static uint64_t pair_tag(uint64_t pair)
{
    return pair >> AWMAP_HASH_BITS;
}

/* The tag's home: its Fibonacci hash scaled to [0, n). */
static size_t home(const pidx_t *x, uint64_t tag)
{
    uint64_t spread = (uint32_t)(tag * 0x9e3779b9u);
    return (size_t)((spread * x->n) >> 32);
}

static size_t next(const pidx_t *x, size_t i)
{
    return i + 1 == x->n ? 0 : i + 1;
}

void pidx_init(pidx_t *x)
{
    x->slots = NULL;
    x->n = 0;
    x->count = 0;
}

void pidx_fini(pidx_t *x)
{
    tablemem_free(x->slots, x->n * sizeof(*x->slots));
    pidx_init(x);
}

/* The slot of the pair, or the empty slot that ends its run. */
static size_t find(const pidx_t *x, uint64_t pair)
{
    size_t i = home(x, pair_tag(pair));
    while (x->slots[i] && x->slots[i] != pair)
        i = next(x, i);
    return i;
}

static int grow(pidx_t *x)
{
    size_t n = x->slots ? x->n + x->n / 4 : 16;
    uint64_t *old = x->slots;
    size_t old_n = old ? x->n : 0;
    if ((x->slots = tablemem_alloc(n * sizeof(*x->slots))) == NULL) {
        x->slots = old;
        return HERD_ENOMEM;
    }
    x->n = n;
    for (size_t i = 0; i < old_n; i++)
        if (old[i])
            x->slots[find(x, old[i])] = old[i];
    tablemem_free(old, old_n * sizeof(*old));
    return 0;
}

int pidx_add(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (serial == 0)
        return HERD_EINVAL;
    /* at most 7/8 full: lookups are rare (exits, checks), memory is per name */
    if ((x->slots == NULL || (x->count + 1) * 8 > x->n * 7) && grow(x) != 0)
        return HERD_ENOMEM;
    uint64_t pair = pair_of(serial, hash);
    size_t i = find(x, pair);
    if (x->slots[i] == 0) {
        x->slots[i] = pair;
        x->count++;
    }
    return 0;
}

int pidx_has(const pidx_t *x, uint64_t serial, uint64_t hash)
{
    return x->slots && serial && x->slots[find(x, pair_of(serial, hash))] != 0;
}

/* Slots from a to b, going forward (with wrap-around). */
static size_t dist(const pidx_t *x, size_t a, size_t b)
{
    return b >= a ? b - a : b + x->n - a;
}

static void remove_at(pidx_t *x, size_t hole)
{
    x->slots[hole] = 0;
    x->count--;
    for (size_t j = next(x, hole); x->slots[j]; j = next(x, j)) {
        size_t h = home(x, pair_tag(x->slots[j]));
        /* the pair at j may fill the hole if its home lies at or before it */
        if (dist(x, h, j) >= dist(x, hole, j)) {
            x->slots[hole] = x->slots[j];
            x->slots[j] = 0;
            hole = j;
        }
    }
}

void pidx_del(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (x->slots == NULL || serial == 0)
        return;
    size_t i = find(x, pair_of(serial, hash));
    if (x->slots[i])
        remove_at(x, i);
}

int pidx_tagged(const pidx_t *x, uint64_t serial)
{
    if (x->slots == NULL || serial == 0)
        return 0;
    uint64_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->slots[i]; i = next(x, i))
        if (pair_tag(x->slots[i]) == tag)
            return 1;
    return 0;
}

int pidx_each(const pidx_t *x, uint64_t serial, int (*fn)(void *data, uint64_t hash),
              void *data)
{
    if (x->slots == NULL || serial == 0)
        return 0;
    uint64_t tag = tag_of(serial);
    int rc = 0;
    for (size_t i = home(x, tag); x->slots[i] && rc == 0; i = next(x, i))
        if (pair_tag(x->slots[i]) == tag)
            rc = fn(data, x->slots[i] << HASH_SHIFT);
    return rc;
}

size_t pidx_get(const pidx_t *x, uint64_t serial, uint64_t *out, size_t cap)
{
    size_t n = 0;
    if (x->slots == NULL || serial == 0)
        return 0;
    uint64_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->slots[i]; i = next(x, i))
        if (pair_tag(x->slots[i]) == tag) {
            if (n < cap)
                out[n] = x->slots[i] << HASH_SHIFT;
            n++;
        }
    return n;
}

size_t pidx_take(pidx_t *x, uint64_t serial, uint64_t **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    if (x->slots == NULL || serial == 0)
        return 0;
    uint64_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->slots[i];) {
        if (pair_tag(x->slots[i]) != tag) {
            i = next(x, i);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            uint64_t *o = realloc(*out, cap * sizeof(*o));
            if (o == NULL)
                return n;
            *out = o;
        }
        (*out)[n++] = x->slots[i] << HASH_SHIFT;
        remove_at(x, i); /* the next pair may have moved into slot i: look again */
    }
    return n;
}
