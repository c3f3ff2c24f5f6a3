/*
 * recmem.h - memory for the map's key records: many small blocks, each a
 * multiple of 8 bytes, carved from chunks the map owns, and each named by a
 * 32-bit reference (the key table holds those, not pointers: 4 bytes a key
 * instead of 8).
 *
 * Why: a registry holds one record per name, 48-70 bytes each. From malloc
 * each costs a header and the rounding of its chunk to 16 bytes (a 56-byte
 * record takes 64, a 64-byte one 80); carved from a chunk it takes its own
 * size. A freed block goes on a free list of its size, which the next block
 * of that size takes. Blocks stay where they are (pointers to them hold)
 * until freed.
 *
 * A reference is a chunk's index (the high RECMEM_CHUNK_BITS bits) and the
 * block's offset in it in 8-byte units (the low RECMEM_OFFSET_BITS): chunks
 * are at most 64 KiB. Bigger blocks (RECMEM_SMALL on) and every block of a
 * sanitizer build come from malloc, each a chunk of its own (so that the
 * sanitizer checks each one); at most 2^RECMEM_CHUNK_BITS chunks in all,
 * then allocation fails (HERD_ENOMEM to the map's caller).
 */
#ifndef HERD_RECMEM_H
#define HERD_RECMEM_H

#include <stddef.h>
#include <stdint.h>

#define RECMEM_SMALL 512u /* blocks of this size on come from malloc */
#define RECMEM_CLASSES (RECMEM_SMALL / 8)
#define RECMEM_OFFSET_BITS 13u
#define RECMEM_CHUNK_BITS (32u - RECMEM_OFFSET_BITS)

typedef struct recmem {
    char **chunks;           /* owned: chunk_n slots, each a chunk (NULL: free) */
    uint32_t chunk_n, chunk_cap;
    uint32_t *free_slots;    /* owned: free_n indices of free slots (cap chunk_cap) */
    uint32_t free_n;
    uint32_t carving;        /* the chunk being carved (valid while left > 0) */
    uint32_t at;             /* its next byte not carved yet */
    uint32_t left;           /* how many bytes are left in it */
    uint32_t next_chunk;     /* the size of the next carved chunk (they double) */
    uint32_t *free_lists;    /* owned, made at the first free: RECMEM_CLASSES heads,
                                each a block's reference + 1 (0: empty) */
    size_t lost; /* bytes freed while the lists could not be made: unused until fini */
    size_t chunk_bytes; /* bytes of every chunk held (carved or a block's own) */
    size_t used_bytes;  /* bytes of the blocks given out and not freed */
} recmem_t;

void recmem_init(recmem_t *r);
/* Free every block and chunk. */
void recmem_fini(recmem_t *r);
/* A block of `bytes` (rounded up to 8), 8-aligned, and its reference in
 * *ref; NULL when out of memory. */
void *recmem_alloc(recmem_t *r, size_t bytes, uint32_t *ref);
/* Give back the block of reference `ref` that recmem_alloc(bytes) gave
 * (the same `bytes`). */
void recmem_free(recmem_t *r, uint32_t ref, size_t bytes);

/* The block a reference names. */
static inline void *recmem_ptr(const recmem_t *r, uint32_t ref)
{
    return r->chunks[ref >> RECMEM_OFFSET_BITS] +
           ((size_t)(ref & ((1u << RECMEM_OFFSET_BITS) - 1)) << 3);
}

#endif
