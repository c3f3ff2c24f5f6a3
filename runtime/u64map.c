/* u64map.c - open addressing with linear probing (see u64map.h). */
#include "u64map.h"

#include <stdlib.h>

#include "herd_error.h"

#define U64MAP_MIN_CAP 16u

static inline size_t u64map_hash(uint64_t k)
{
    /* splitmix64's finalizer: serials are sequential, so spread them. */
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    k ^= k >> 31;
    return (size_t)k;
}

void u64map_init(u64map_t *m)
{
    m->slots = NULL;
    m->mask = 0;
    m->count = 0;
}

void u64map_fini(u64map_t *m)
{
    free(m->slots);
    u64map_init(m);
}

void *u64map_get(const u64map_t *m, uint64_t key)
{
    if (m->slots == NULL || key == 0)
        return NULL;
    for (size_t i = u64map_hash(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
        if (m->slots[i].key == 0)
            return NULL;
    }
}

static void u64map_place(u64map_slot_t *slots, size_t mask, uint64_t key, void *value)
{
    size_t i = u64map_hash(key) & mask;
    while (slots[i].key != 0 && slots[i].key != key)
        i = (i + 1) & mask;
    slots[i].key = key;
    slots[i].value = value;
}

static int u64map_grow(u64map_t *m)
{
    size_t cap = m->slots ? (m->mask + 1) * 2 : U64MAP_MIN_CAP;
    u64map_slot_t *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return HERD_ENOMEM;
    for (size_t i = 0; m->slots && i <= m->mask; i++)
        if (m->slots[i].key != 0)
            u64map_place(slots, cap - 1, m->slots[i].key, m->slots[i].value);
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return 0;
}

int u64map_put(u64map_t *m, uint64_t key, void *value)
{
    if (key == 0)
        return HERD_EINVAL;
    /* keep the load at or below 3/4 */
    if (m->slots == NULL || (m->count + 1) * 4 > (m->mask + 1) * 3) {
        int rc = u64map_grow(m);
        if (rc)
            return rc;
    }
    size_t i = u64map_hash(key) & m->mask;
    while (m->slots[i].key != 0 && m->slots[i].key != key)
        i = (i + 1) & m->mask;
    if (m->slots[i].key == 0)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    return 0;
}

void *u64map_del(u64map_t *m, uint64_t key)
{
    if (m->slots == NULL || key == 0)
        return NULL;
    size_t i = u64map_hash(key) & m->mask;
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return NULL;
        i = (i + 1) & m->mask;
    }
    void *value = m->slots[i].value;
    /* Backward-shift: pull later entries of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & m->mask; m->slots[j].key != 0; j = (j + 1) & m->mask) {
        size_t home = u64map_hash(m->slots[j].key) & m->mask;
        /* entry j may move to the hole iff its home is not in (hole, j] */
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}

u64map_slot_t *u64map_next(const u64map_t *m, size_t *cursor)
{
    for (; m->slots && *cursor <= m->mask; (*cursor)++)
        if (m->slots[*cursor].key != 0)
            return &m->slots[(*cursor)++];
    return NULL;
}
