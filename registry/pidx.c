/*
 * pidx.c - local processes' names by pid serial (see pidx.h).
 *
 * Open addressing with linear probing from the serial's home slot; deletion
 * shifts the rest of the run back (no tombstones), as u64map does.
 */
#include "pidx.h"

#include <stdlib.h>

#include "herd_error.h"

static uint32_t tag_of(uint64_t serial)
{
    uint32_t t = (uint32_t)(serial ^ (serial >> 32));
    return t ? t : 1;
}

static uint64_t hash_of(const pidx_slot_t *s)
{
    return (uint64_t)s->hash_hi << 32 | s->hash_lo;
}

static size_t home(const pidx_t *x, uint32_t tag)
{
    return (size_t)(((uint64_t)tag * 0x9e3779b97f4a7c15ull) >> 32) & x->mask;
}

void pidx_init(pidx_t *x)
{
    x->slots = NULL;
    x->mask = 0;
    x->count = 0;
}

void pidx_fini(pidx_t *x)
{
    free(x->slots);
    pidx_init(x);
}

/* The slot of the pair, or the empty slot that ends its run. */
static size_t find(const pidx_t *x, uint32_t tag, uint64_t hash)
{
    size_t i = home(x, tag);
    while (x->slots[i].tag && (x->slots[i].tag != tag || hash_of(&x->slots[i]) != hash))
        i = (i + 1) & x->mask;
    return i;
}

static int grow(pidx_t *x)
{
    size_t cap = x->slots ? (x->mask + 1) * 2 : 16;
    pidx_slot_t *old = x->slots;
    size_t old_cap = old ? x->mask + 1 : 0;
    if ((x->slots = calloc(cap, sizeof(*x->slots))) == NULL) {
        x->slots = old;
        return HERD_ENOMEM;
    }
    x->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].tag)
            x->slots[find(x, old[i].tag, hash_of(&old[i]))] = old[i];
    free(old);
    return 0;
}

int pidx_add(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (serial == 0)
        return HERD_EINVAL;
    /* at most 7/8 full: lookups are rare (exits, checks), memory is per name */
    if ((x->slots == NULL || (x->count + 1) * 8 > (x->mask + 1) * 7) && grow(x) != 0)
        return HERD_ENOMEM;
    size_t i = find(x, tag_of(serial), hash);
    if (x->slots[i].tag == 0) {
        x->slots[i] = (pidx_slot_t){tag_of(serial), (uint32_t)hash, (uint32_t)(hash >> 32)};
        x->count++;
    }
    return 0;
}

int pidx_has(const pidx_t *x, uint64_t serial, uint64_t hash)
{
    return x->slots && serial && x->slots[find(x, tag_of(serial), hash)].tag != 0;
}

static void remove_at(pidx_t *x, size_t hole)
{
    x->slots[hole].tag = 0;
    x->count--;
    for (size_t j = (hole + 1) & x->mask; x->slots[j].tag; j = (j + 1) & x->mask) {
        size_t h = home(x, x->slots[j].tag);
        /* the pair at j may fill the hole if its home lies at or before it */
        if (((j - h) & x->mask) >= ((j - hole) & x->mask)) {
            x->slots[hole] = x->slots[j];
            x->slots[j].tag = 0;
            hole = j;
        }
    }
}

void pidx_del(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (x->slots == NULL || serial == 0)
        return;
    size_t i = find(x, tag_of(serial), hash);
    if (x->slots[i].tag)
        remove_at(x, i);
}

int pidx_tagged(const pidx_t *x, uint64_t serial)
{
    if (x->slots == NULL || serial == 0)
        return 0;
    uint32_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->slots[i].tag; i = (i + 1) & x->mask)
        if (x->slots[i].tag == tag)
            return 1;
    return 0;
}

size_t pidx_take(pidx_t *x, uint64_t serial, uint64_t **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    if (x->slots == NULL || serial == 0)
        return 0;
    uint32_t tag = tag_of(serial);
    for (size_t i = home(x, tag); x->slots[i].tag;) {
        if (x->slots[i].tag != tag) {
            i = (i + 1) & x->mask;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            uint64_t *o = realloc(*out, cap * sizeof(*o));
            if (o == NULL)
                return n;
            *out = o;
        }
        (*out)[n++] = hash_of(&x->slots[i]);
        remove_at(x, i); /* the next pair may have moved into slot i: look again */
    }
    return n;
}
