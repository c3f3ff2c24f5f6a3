/*
 * recmem.c - memory for the map's key records (see recmem.h).
 */
#include "recmem.h"

#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define RECMEM_CARVE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECMEM_CARVE 0
#endif
#endif
#ifndef RECMEM_CARVE
#define RECMEM_CARVE 1
#endif

/* Carved chunks start small (a delta of one key holds one) and double up
 * to RECMEM_CHUNK_MAX (what an offset reaches): a big map's last chunk
 * leaves at most that unused. */
#define RECMEM_CHUNK_MIN 256u
#define RECMEM_CHUNK_MAX (8u << RECMEM_OFFSET_BITS)
/* one slot fewer than the bits name: no block's reference is UINT32_MAX, so
 * a reference + 1 (a free list's link) never wraps to 0 */
#define RECMEM_SLOTS_MAX ((1u << RECMEM_CHUNK_BITS) - 1)

static size_t round8(size_t bytes)
{
    return (bytes + 7) & ~(size_t)7;
}

void recmem_init(recmem_t *r)
{
    *r = (recmem_t){.next_chunk = RECMEM_CHUNK_MIN};
}

void recmem_fini(recmem_t *r)
{
    for (uint32_t i = 0; i < r->chunk_n; i++)
        free(r->chunks[i]);
    free(r->chunks);
    free(r->free_slots);
    free(r->free_lists);
    recmem_init(r);
}

/* Whether a block of `bytes` is a malloc'd chunk of its own. */
static int is_single(size_t bytes)
{
    return !RECMEM_CARVE || round8(bytes) >= RECMEM_SMALL;
}

/* A slot for chunk p: its index, or -1 when out of memory or slots. */
static long slot_take(recmem_t *r, char *p)
{
    if (r->free_n) {
        uint32_t i = r->free_slots[--r->free_n];
        r->chunks[i] = p;
        return i;
    }
    if (r->chunk_n == r->chunk_cap) {
        if (r->chunk_cap == RECMEM_SLOTS_MAX)
            return -1;
        uint32_t cap = r->chunk_cap ? r->chunk_cap * 2 : 4;
        char **chunks = realloc(r->chunks, cap * sizeof(*chunks));
        if (chunks == NULL)
            return -1;
        r->chunks = chunks;
        uint32_t *free_slots = realloc(r->free_slots, cap * sizeof(*free_slots));
        if (free_slots == NULL)
            return -1;
        r->free_slots = free_slots;
        r->chunk_cap = cap;
    }
    r->chunks[r->chunk_n] = p;
    return r->chunk_n++;
}

/* Push a block on its size's free list (the lists are made at the first
 * push: a map that never frees has none). */
static void push_free(recmem_t *r, uint32_t ref, size_t bytes)
{
    if (r->free_lists == NULL &&
        (r->free_lists = calloc(RECMEM_CLASSES, sizeof(*r->free_lists))) == NULL) {
        r->lost += bytes;
        return;
    }
    size_t c = bytes / 8;
    *(uint32_t *)recmem_ptr(r, ref) = r->free_lists[c];
    r->free_lists[c] = ref + 1;
}

static uint32_t ref_of(uint32_t chunk, uint32_t at)
{
    return chunk << RECMEM_OFFSET_BITS | at >> 3;
}

/* A new chunk to carve from; what the last one had left goes on a list. */
static int new_chunk(recmem_t *r)
{
    char *c = malloc(r->next_chunk);
    if (c == NULL)
        return -1;
    long slot = slot_take(r, c);
    if (slot < 0) {
        free(c);
        return -1;
    }
    if (r->left >= 8)
        push_free(r, ref_of(r->carving, r->at), r->left);
    r->chunk_bytes += r->next_chunk;
    r->carving = (uint32_t)slot;
    r->at = 0;
    r->left = r->next_chunk;
    if (r->next_chunk < RECMEM_CHUNK_MAX)
        r->next_chunk *= 2;
    return 0;
}

static void *alloc_single(recmem_t *r, size_t bytes, uint32_t *ref)
{
    char *p = malloc(bytes);
    long slot = p ? slot_take(r, p) : -1;
    if (slot < 0) {
        free(p);
        return NULL;
    }
    *ref = ref_of((uint32_t)slot, 0);
    r->chunk_bytes += bytes;
    r->used_bytes += bytes;
    return p;
}

void *recmem_alloc(recmem_t *r, size_t bytes, uint32_t *ref)
{
    if (bytes == 0)
        bytes = 8;
    if (is_single(bytes))
        return alloc_single(r, bytes, ref);
    bytes = round8(bytes);
    r->used_bytes += bytes;
    uint32_t *head = r->free_lists ? &r->free_lists[bytes / 8] : NULL;
    if (head && *head) {
        *ref = *head - 1;
        void *p = recmem_ptr(r, *ref);
        *head = *(uint32_t *)p;
        return p;
    }
    while (r->left < bytes) /* a chunk of at least 256 bytes: one new chunk may not do */
        if (new_chunk(r) != 0) {
            r->used_bytes -= bytes;
            return NULL;
        }
    *ref = ref_of(r->carving, r->at);
    r->at += (uint32_t)bytes;
    r->left -= (uint32_t)bytes;
    return recmem_ptr(r, *ref);
}

void recmem_free(recmem_t *r, uint32_t ref, size_t bytes)
{
    if (bytes == 0)
        bytes = 8;
    if (is_single(bytes)) {
        uint32_t slot = ref >> RECMEM_OFFSET_BITS;
        free(r->chunks[slot]);
        r->chunks[slot] = NULL;
        r->chunk_bytes -= bytes;
        r->used_bytes -= bytes;
        r->free_slots[r->free_n++] = slot; /* room: free_slots has chunk_cap */
        return;
    }
    r->used_bytes -= round8(bytes);
    push_free(r, ref, round8(bytes));
}
