/*
 * pidx.c - local processes' names by pid serial (see pidx.h).
 *
 * Open addressing with linear probing from the serial's home slot; deletion
 * shifts the rest of the run back (no tombstones), as u64map does. A probe
 * reads the tags (2 bytes a slot) and a hash only where the tag matches.
 * The table takes any size, at most 9/10 full, and grows by an eighth, not
 * double: memory is per name, a table just grown is 80 % full, and growing
 * is cheap (a pair holds all its rehash needs). So full, an add's probe
 * for its pair reads some 50 slots' tags at most on average: 100 bytes.
 */
#include "pidx.h"

#include <stdint.h>
#include <stdlib.h>

#include "herd_error.h"
#include "tablemem.h"

#define HASH_SHIFT (64 - AWMAP_HASH_BITS)
#define TAG_MASK ((1u << PIDX_TAG_BITS) - 1)

_Static_assert(AWMAP_HASH_BITS == 32, "a pair keeps the hash's top bits in a u32");

static uint16_t tag_of(uint64_t serial)
{
    uint64_t t = serial ^ (serial >> 16) ^ (serial >> 32) ^ (serial >> 48);
    return (uint16_t)((t & TAG_MASK) ? (t & TAG_MASK) : 1);
}

static uint32_t hash_of(uint64_t hash)
{
    return (uint32_t)(hash >> HASH_SHIFT);
}

/* The bytes of a table of n slots: the hashes, then the tags. */
static size_t table_bytes(size_t n)
{
    return n * (sizeof(uint32_t) + sizeof(uint16_t));
}

/* The tag's home: its Fibonacci hash scaled to [0, n). */
static size_t home(const pidx_t *x, uint16_t tag)
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
    x->hashes = NULL;
    x->tags = NULL;
    x->n = 0;
    x->count = 0;
}

size_t pidx_bytes(const pidx_t *x)
{
    return table_bytes(x->n);
}

void pidx_fini(pidx_t *x)
{
    tablemem_free(x->hashes, table_bytes(x->n), 1);
    pidx_init(x);
}

/* The slot of the pair, or the empty slot that ends its run. */
static size_t find(const pidx_t *x, uint16_t tag, uint32_t h)
{
    size_t i = home(x, tag);
    while (x->tags[i] && (x->tags[i] != tag || x->hashes[i] != h))
        i = next(x, i);
    return i;
}

static void put(pidx_t *x, size_t i, uint16_t tag, uint32_t h)
{
    x->tags[i] = tag;
    x->hashes[i] = h;
}

static int grow(pidx_t *x)
{
    size_t n = x->hashes ? x->n + x->n / 8 : 16;
    uint32_t *old = x->hashes;
    uint16_t *old_tags = x->tags;
    size_t old_n = old ? x->n : 0;
    uint32_t *hashes = tablemem_alloc(table_bytes(n), 1);
    if (hashes == NULL)
        return HERD_ENOMEM;
    x->hashes = hashes;
    x->tags = (uint16_t *)(void *)(hashes + n);
    x->n = n;
    /* pairs are distinct: each goes to the first empty slot from its home
     * on. A tag's pairs lie together in the old table and come in one
     * after another, each after the one before (the slots between are
     * taken): so a process holding many names costs one pass, not a walk
     * over its run per name. */
    size_t last_home = SIZE_MAX, at = 0;
    for (size_t i = 0; i < old_n; i++) {
        if (old_tags[i] == 0)
            continue;
        size_t h = home(x, old_tags[i]);
        at = h == last_home ? next(x, at) : h;
        while (x->tags[at])
            at = next(x, at);
        put(x, at, old_tags[i], old[i]);
        last_home = h;
    }
    tablemem_free(old, table_bytes(old_n), 1);
    return 0;
}

int pidx_add(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (serial == 0)
        return HERD_EINVAL;
    /* at most 9/10 full: lookups are rare (exits, checks), memory is per name */
    if ((x->hashes == NULL || (x->count + 1) * 10 > x->n * 9) && grow(x) != 0)
        return HERD_ENOMEM;
    uint16_t tag = tag_of(serial);
    uint32_t h = hash_of(hash);
    size_t i = find(x, tag, h);
    if (x->tags[i] == 0) {
        put(x, i, tag, h);
        x->count++;
    }
    return 0;
}

int pidx_has(const pidx_t *x, uint64_t serial, uint64_t hash)
{
    return x->hashes && serial && x->tags[find(x, tag_of(serial), hash_of(hash))] != 0;
}

/* Slots from a to b, going forward (with wrap-around). */
static size_t dist(const pidx_t *x, size_t a, size_t b)
{
    return b >= a ? b - a : b + x->n - a;
}

static void remove_at(pidx_t *x, size_t hole)
{
    x->tags[hole] = 0;
    x->count--;
    for (size_t j = next(x, hole); x->tags[j]; j = next(x, j)) {
        size_t h = home(x, x->tags[j]);
        /* the pair at j may fill the hole if its home lies at or before it */
        if (dist(x, h, j) >= dist(x, hole, j)) {
            put(x, hole, x->tags[j], x->hashes[j]);
            x->tags[j] = 0;
            hole = j;
        }
    }
}

void pidx_del(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (x->hashes == NULL || serial == 0)
        return;
    size_t i = find(x, tag_of(serial), hash_of(hash));
    if (x->tags[i])
        remove_at(x, i);
}

/* A pair's hash as the caller gets it back: its top bits, the rest 0. */
static uint64_t hash_back(uint32_t h)
{
    return (uint64_t)h << HASH_SHIFT;
}

int pidx_tagged(const pidx_t *x, uint64_t serial)
{
    if (x->hashes == NULL || serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->tags[i]; i = next(x, i))
        if (x->tags[i] == tag)
            return 1;
    return 0;
}

int pidx_each(const pidx_t *x, uint64_t serial, int (*fn)(void *data, uint64_t hash),
              void *data)
{
    if (x->hashes == NULL || serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    int rc = 0;
    for (size_t i = home(x, tag); x->tags[i] && rc == 0; i = next(x, i))
        if (x->tags[i] == tag)
            rc = fn(data, hash_back(x->hashes[i]));
    return rc;
}

size_t pidx_get(const pidx_t *x, uint64_t serial, uint64_t *out, size_t cap)
{
    size_t n = 0;
    if (x->hashes == NULL || serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->tags[i]; i = next(x, i))
        if (x->tags[i] == tag) {
            if (n < cap)
                out[n] = hash_back(x->hashes[i]);
            n++;
        }
    return n;
}

size_t pidx_take(pidx_t *x, uint64_t serial, uint64_t **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    if (x->hashes == NULL || serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->tags[i];) {
        if (x->tags[i] != tag) {
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
        (*out)[n++] = hash_back(x->hashes[i]);
        remove_at(x, i); /* the next pair may have moved into slot i: look again */
    }
    return n;
}
