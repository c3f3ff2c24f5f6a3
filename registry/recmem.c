/*
 * recmem.c - memory for the map's key records (see recmem.h).
 */
#include "recmem.h"

#include <stdint.h>
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

/* Chunks start small (a delta of one key holds one chunk) and double up to
 * RECMEM_CHUNK_MAX: a big map's last chunk leaves at most that unused. */
#define RECMEM_CHUNK_MIN 256u
#define RECMEM_CHUNK_MAX (256u << 10)

struct recmem_chunk {
    recmem_chunk_t *next;
    size_t bytes; /* all of it, this header too */
};

static size_t round8(size_t bytes)
{
    return (bytes + 7) & ~(size_t)7;
}

void recmem_init(recmem_t *r)
{
    r->chunks = NULL;
    r->at = NULL;
    r->left = 0;
    r->next_chunk = RECMEM_CHUNK_MIN;
    r->free_lists = NULL;
    r->lost = 0;
}

void recmem_fini(recmem_t *r)
{
    for (recmem_chunk_t *c = r->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(r->free_lists);
    recmem_init(r);
}

int recmem_is_heap(size_t bytes)
{
    return !RECMEM_CARVE || round8(bytes) >= RECMEM_SMALL || bytes == 0;
}

/* Push a block on its size's free list (the lists are made at the first
 * push: a map that never frees has none; failing to make them only loses
 * the block until recmem_fini). */
static void push_free(recmem_t *r, void *p, size_t bytes)
{
    if (r->free_lists == NULL && (r->free_lists = calloc(RECMEM_CLASSES, sizeof(void *))) == NULL) {
        r->lost += bytes;
        return;
    }
    size_t c = bytes / 8;
    *(void **)p = r->free_lists[c];
    r->free_lists[c] = p;
}

/* A new chunk to carve from; what the last one had left goes on a list. */
static int new_chunk(recmem_t *r, size_t need)
{
    size_t bytes = r->next_chunk;
    while (bytes - sizeof(recmem_chunk_t) < need)
        bytes *= 2;
    recmem_chunk_t *c = malloc(bytes);
    if (c == NULL)
        return -1;
    if (r->left >= 8)
        push_free(r, r->at, r->left);
    c->next = r->chunks;
    c->bytes = bytes;
    r->chunks = c;
    r->at = (char *)(c + 1);
    r->left = bytes - sizeof(*c);
    if (r->next_chunk < RECMEM_CHUNK_MAX)
        r->next_chunk *= 2;
    return 0;
}

void *recmem_alloc(recmem_t *r, size_t bytes)
{
    if (recmem_is_heap(bytes))
        return malloc(bytes ? bytes : 1);
    bytes = round8(bytes);
    void **head = r->free_lists ? &r->free_lists[bytes / 8] : NULL;
    if (head && *head) {
        void *p = *head;
        *head = *(void **)p;
        return p;
    }
    if (r->left < bytes && new_chunk(r, bytes) != 0)
        return NULL;
    void *p = r->at;
    r->at += bytes;
    r->left -= bytes;
    return p;
}

void recmem_free(recmem_t *r, void *p, size_t bytes)
{
    if (p == NULL)
        return;
    if (recmem_is_heap(bytes)) {
        free(p);
        return;
    }
    push_free(r, p, round8(bytes));
}
