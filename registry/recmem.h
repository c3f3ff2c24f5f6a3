/*
 * recmem.h - memory for the map's key records: many small blocks of a few
 * sizes, each a multiple of 8 bytes, carved from chunks the map owns.
 *
 * Why: a registry holds one record per name, 50-70 bytes each. From malloc
 * each costs a header and the rounding of its chunk to 16 bytes (a 64-byte
 * record takes 80); carved from a chunk it takes its own size. A freed
 * block goes on a free list of its size, which the next record of that
 * size takes. Blocks stay where they are (pointers to them hold) until
 * freed. Bigger blocks (RECMEM_SMALL on) and every block of a sanitizer
 * build come from malloc, so that the sanitizer checks each one.
 */
#ifndef HERD_RECMEM_H
#define HERD_RECMEM_H

#include <stddef.h>

#define RECMEM_SMALL 512u /* blocks of this size on come from malloc */
#define RECMEM_CLASSES (RECMEM_SMALL / 8)

typedef struct recmem_chunk recmem_chunk_t;

typedef struct recmem {
    recmem_chunk_t *chunks; /* owned: every chunk, the newest first */
    char *at;               /* the newest chunk's bytes not carved yet */
    size_t left;            /* how many */
    size_t next_chunk;      /* the size of the next chunk (they double) */
    void **free_lists;      /* owned, made at the first free: RECMEM_CLASSES heads */
    size_t lost; /* bytes freed while the lists could not be made: unused until fini */
} recmem_t;

void recmem_init(recmem_t *r);
/* Free every chunk (blocks from malloc are the caller's to free first). */
void recmem_fini(recmem_t *r);
/* A block of `bytes` (rounded up to 8), 8-aligned; NULL when out of memory. */
void *recmem_alloc(recmem_t *r, size_t bytes);
/* Give back a block recmem_alloc(bytes) gave (the same `bytes`). */
void recmem_free(recmem_t *r, void *p, size_t bytes);
/* Whether recmem_alloc(bytes) takes from malloc (recmem_fini leaves it). */
int recmem_is_heap(size_t bytes);

#endif
