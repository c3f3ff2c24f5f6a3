/*
 * hlc.c - hybrid logical clock (hlc.h).
 *
 * How it works. A timestamp packs the wall-clock millisecond (high 48 bits)
 * and a logical counter (low 16) into one uint64_t, so the pair compares as a
 * plain integer. Every new timestamp is the greater of "the wall clock now,
 * counter 0" and "one more than the greatest timestamp made or seen":
 *
 *   now(wall)           = max(wall << 16, last + 1)
 *   observe(wall, rem)  = max(wall << 16, max(last, rem) + 1)
 *
 * While the wall clock leads, timestamps are the wall clock with counter 0;
 * while it stands still, goes backwards or trails a remote node, the counter
 * counts events. This is Kulkarni et al.'s algorithm with (l, c) stored as
 * one integer: "+1" on the packed value is "c + 1", and when c would pass
 * 65535 the increment carries into the physical part instead, which runs one
 * millisecond ahead of the wall until the wall catches up. Timestamps stay
 * strictly increasing in every case; a burst of n events within one
 * millisecond moves the physical part about n / 65536 ms past the wall.
 *
 * A wall time past 2^48 ms (the year 10889) is clamped to the largest 48-bit
 * millisecond. The clock saturates at UINT64_MAX, which would take 2^64
 * events or a peer sending UINT64_MAX; the frame MAC keeps such peers out.
 */
#include "hlc.h"

#define HLC_MAX_WALL_MS ((UINT64_C(1) << (64 - HLC_LOGICAL_BITS)) - 1)

static uint64_t hlc_pack_wall(uint64_t wall_ms)
{
    if (wall_ms > HLC_MAX_WALL_MS)
        wall_ms = HLC_MAX_WALL_MS;
    return wall_ms << HLC_LOGICAL_BITS;
}

/* The greater of the wall clock and one more than `floor`. */
static uint64_t hlc_next(hlc_t *c, uint64_t wall_ms, uint64_t floor)
{
    uint64_t wall = hlc_pack_wall(wall_ms);
    uint64_t after = floor == UINT64_MAX ? UINT64_MAX : floor + 1;
    c->last = wall > after ? wall : after;
    return c->last;
}

uint64_t hlc_now(hlc_t *c, uint64_t wall_ms)
{
    return hlc_next(c, wall_ms, c->last);
}

uint64_t hlc_observe(hlc_t *c, uint64_t wall_ms, uint64_t remote)
{
    return hlc_next(c, wall_ms, remote > c->last ? remote : c->last);
}
