/*
 * fuzz_seeds.h - what a fuzz target gives its drivers: well-formed inputs to
 * start mutating from (fuzz_driver.c; `-dump=DIR` writes them out as a
 * starting corpus for libFuzzer).
 */
#ifndef HERD_FUZZ_SEEDS_H
#define HERD_FUZZ_SEEDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fuzz_seed {
    uint8_t *data; /* malloc'ed */
    size_t len;
} fuzz_seed_t;

/* Build the target's seeds (at least one); *out is malloc'ed. */
size_t fuzz_seeds(fuzz_seed_t **out);
void fuzz_seeds_free(fuzz_seed_t *seeds, size_t n);

#endif
