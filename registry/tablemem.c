/*
 * tablemem.c - memory for big hash tables (see tablemem.h).
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "tablemem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define TABLEMEM_MAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TABLEMEM_MAP 0
#endif
#endif
#ifndef TABLEMEM_MAP
#define TABLEMEM_MAP 1
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* From this size on a table is its own mapping: a lasting one from a page
 * (the waste of rounding up to a page stays under one), others from 64
 * KiB. Why a page for lasting tables: they grow by a fifth at a time
 * (awmap.c) or an eighth (pidx.c), and the heap keeps each smaller table
 * freed on the way as a hole the records, which come in bigger chunks
 * (recmem.c), mostly cannot use: with a 64 KiB bound that was 200-300 KB,
 * 4-5 bytes a name at 50,000 names (bench_registry, memory_fill,
 * registration_parts' other). */
#define TABLEMEM_BIG (64u << 10)
#define TABLEMEM_BIG_LASTING (4u << 10)

static int is_mapped(size_t bytes, int lasting)
{
    return TABLEMEM_MAP && bytes >= (lasting ? TABLEMEM_BIG_LASTING : TABLEMEM_BIG);
}

void *tablemem_alloc(size_t bytes, int lasting)
{
    if (is_mapped(bytes, lasting)) { /* fresh pages are zero */
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    size_t rounded = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void tablemem_free(void *p, size_t bytes, int lasting)
{
    if (p == NULL)
        return;
    if (is_mapped(bytes, lasting))
        munmap(p, bytes);
    else
        free(p);
}
