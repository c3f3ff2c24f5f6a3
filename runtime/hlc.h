/*
 * hlc.h - hybrid logical clock.
 *
 * A timestamp is the wall-clock millisecond in the high 48 bits and a logical
 * counter in the low 16. Timestamps from different nodes compare meaningfully
 * (unlike a node-local monotonic clock) and respect causality: a timestamp
 * made after seeing another is greater than it, even when the local wall
 * clock is behind. The registry orders conflicting registrations by it.
 * (Kulkarni et al., "Logical Physical Clocks", 2014.)
 */
#ifndef HERD_HLC_H
#define HERD_HLC_H

#include <stdint.h>

#define HLC_LOGICAL_BITS 16

typedef struct hlc {
    uint64_t last; /* the greatest timestamp made or seen */
} hlc_t;

static inline uint64_t hlc_physical_ms(uint64_t ts)
{
    return ts >> HLC_LOGICAL_BITS;
}

/* A new timestamp for a local event at wall time `wall_ms`: greater than every
 * timestamp made or observed before. Past 65535 events in one millisecond the
 * counter carries into the physical part (hlc.c says how). */
uint64_t hlc_now(hlc_t *c, uint64_t wall_ms);
/* Merge a timestamp received from another node; returns the new local one
 * (greater than both). */
uint64_t hlc_observe(hlc_t *c, uint64_t wall_ms, uint64_t remote);

#endif
