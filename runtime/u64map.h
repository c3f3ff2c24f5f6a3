/*
 * u64map.h - an open-addressing hash map from non-zero uint64 keys to pointers.
 *
 * The runtime's tables (processes by serial, pending calls and timers by
 * reference) are all keyed by counters that only grow, so keys are never 0 and
 * 0 marks an empty slot. Deletion uses backward shifting (no tombstones), so a
 * table that churns through millions of short-lived processes stays fast.
 */
#ifndef HERD_U64MAP_H
#define HERD_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct u64map_slot {
    uint64_t key; /* 0: empty */
    void *value;
} u64map_slot_t;

typedef struct u64map {
    u64map_slot_t *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t count;
} u64map_t;

void u64map_init(u64map_t *m);
void u64map_fini(u64map_t *m);
/* The value of `key`, or NULL. */
void *u64map_get(const u64map_t *m, uint64_t key);
/* Insert or replace. HERD_EINVAL for key 0, HERD_ENOMEM when it cannot grow. */
int u64map_put(u64map_t *m, uint64_t key, void *value);
/* Remove and return the value of `key`, or NULL when absent. */
void *u64map_del(u64map_t *m, uint64_t key);
/* Iterate: start with *cursor = 0; returns the next slot or NULL at the end.
 * The map must not change during the iteration. */
u64map_slot_t *u64map_next(const u64map_t *m, size_t *cursor);

#endif
