/*
 * tablemem.h - memory for the registry's big hash tables (the map's key
 * table, the pid index): zeroed, 64-byte aligned, and, when big, a mapping
 * of its own.
 *
 * Why: these tables grow by rehashing into a new one and freeing the old.
 * From malloc, a freed old table of a few MB stays in the heap (glibc
 * raises its mmap threshold after the first big free) until small records
 * fill it again, so right after a table grows the process holds both: up
 * to a fifth more memory per name than the tables need. A mapping of its
 * own goes back to the system at once. Sanitizer builds use malloc
 * throughout, so every table stays checked.
 */
#ifndef HERD_TABLEMEM_H
#define HERD_TABLEMEM_H

#include <stddef.h>

/* `bytes` zeroed bytes, 64-byte aligned; NULL when out of memory.
 * `lasting`: a table that lives as long as its owner and grows with it (a
 * registry's map, its pid index) is a mapping from a page on, so that
 * none of the tables it outgrows stays in the heap as a hole; others (a
 * delta's, made and freed every turn of the loop) only from 64 KiB on,
 * reusing the heap's warm memory (mapping them from a page on made each
 * registration 14 % slower: bench_registry register_s). */
void *tablemem_alloc(size_t bytes, int lasting);
/* Free what tablemem_alloc(bytes, lasting) gave (the same `bytes` and
 * `lasting`); NULL is fine. */
void tablemem_free(void *p, size_t bytes, int lasting);

#endif
