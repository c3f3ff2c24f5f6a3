/*
 * herdd_memory.h - what herdd's memory is made of, and giving back what the
 * heap keeps free.
 *
 * A long-running node allocates and frees all day (names come and go,
 * processes start and stop, frames pass): the allocator keeps the freed
 * pages inside its heap, so the resident size creeps up with the churn's
 * high-water marks although what is in use stays flat. Every
 * HERDD_MEMORY_TRIM_MS herdd hands the free pages back (malloc_trim) and
 * counts what that returned. `ringctl stats` shows the figures (`memory`).
 */
#ifndef HERDD_MEMORY_H
#define HERDD_MEMORY_H

#include <jansson.h>
#include <uv.h>

#define HERDD_MEMORY_TRIM_MS 30000

typedef struct herdd_memory herdd_memory_t;

/* Start trimming on `loop` (the timer does not keep the loop alive). NULL
 * when out of memory: herdd then runs without. */
herdd_memory_t *herdd_memory_start(uv_loop_t *loop);
/* Stop (the handle closes with the loop's next turn). NULL is fine. */
void herdd_memory_stop(herdd_memory_t *m);
/* Give the free pages back now; the bytes the resident size fell by. */
long herdd_memory_trim(herdd_memory_t *m);
/* {"rss_kb", "heap_in_use", "heap_free", "heap_mapped", "trims",
 * "trimmed_kb"}: the resident size, the allocator's bytes in use, free in
 * its heap and in its own mappings (mallinfo2; zeros under a sanitizer,
 * whose allocator does not say), and the trims so far. */
json_t *herdd_memory_json(const herdd_memory_t *m);

#endif
