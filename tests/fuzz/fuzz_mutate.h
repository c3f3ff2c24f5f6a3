/*
 * fuzz_mutate.h - the mutations of the fuzz driver (fuzz_driver.c), for any
 * buffer: the driver mutates its inputs with them, and the simulations
 * mutate what a hostile member sends (tests/sim/test_sim_hostile.c).
 *
 * One mutation is one of: flip a bit, set a byte to a random value, write a
 * boundary value (0, 1, 0x7f, 0xff, 0xffff, 2^31-1, 2^32, 2^64-1, ... and
 * their neighbours) as 1, 2, 4 or 8 bytes little-endian (lengths and counts
 * are where decoders go wrong), insert random bytes, delete, repeat or
 * splice in a chunk of a seed, cut the end. Deterministic: the same rng
 * state gives the same mutations.
 */
#ifndef HERD_FUZZ_MUTATE_H
#define HERD_FUZZ_MUTATE_H

#include <stddef.h>
#include <stdint.h>

#include "fuzz_seeds.h"

/* A splitmix64 stream; seed it by setting state. */
typedef struct fuzz_rng {
    uint64_t state;
} fuzz_rng_t;

uint64_t fuzz_rng_next(fuzz_rng_t *r);

/* Apply one mutation to b[0..*n), which has room for cap bytes (it never
 * grows past cap). A splice takes from `seeds` (nseeds 0: never). */
void fuzz_mutate_once(fuzz_rng_t *r, uint8_t *b, size_t *n, size_t cap,
                      const fuzz_seed_t *seeds, size_t nseeds);

#endif
