/*
 * splitmix.h - the seeded generator of the property tests: splitmix64, so a
 * seed gives the same history on every machine and compiler.
 */
#ifndef HERD_TESTS_SPLITMIX_H
#define HERD_TESTS_SPLITMIX_H

#include <stdint.h>

typedef struct rng {
    uint64_t s;
} rng_t;

static inline uint64_t rng_next(rng_t *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Below n (n > 0). */
static inline uint32_t rng_below(rng_t *g, uint32_t n)
{
    return (uint32_t)(rng_next(g) % n);
}

static inline int rng_chance(rng_t *g, uint32_t one_in)
{
    return rng_below(g, one_in) == 0;
}

#endif
