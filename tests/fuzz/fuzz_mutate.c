/*
 * fuzz_mutate.c - the fuzz driver's mutations (fuzz_mutate.h).
 */
#include "fuzz_mutate.h"

#include <string.h>

uint64_t fuzz_rng_next(fuzz_rng_t *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const uint64_t boundary[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000,
                                    0x7fffffff, 0xffffffff, 0x100000000ull,
                                    0x7fffffffffffffffull, 0xffffffffffffffffull, 64, 255,
                                    4096, 1u << 20};

/* A boundary value (or a neighbour) as 1, 2, 4 or 8 bytes little-endian. */
static void put_boundary(fuzz_rng_t *r, uint8_t *b, size_t n)
{
    size_t w = (size_t)1 << (fuzz_rng_next(r) % 4);
    if (n < w)
        return;
    size_t at = fuzz_rng_next(r) % (n - w + 1);
    uint64_t v = boundary[fuzz_rng_next(r) % (sizeof boundary / sizeof boundary[0])];
    if (fuzz_rng_next(r) & 1)
        v = v + (fuzz_rng_next(r) % 3) - 1;
    for (size_t i = 0; i < w; i++)
        b[at + i] = (uint8_t)(v >> (8 * i));
}

/* Insert 1-16 random bytes. */
static void insert_random(fuzz_rng_t *r, uint8_t *b, size_t *n, size_t cap)
{
    size_t k = 1 + fuzz_rng_next(r) % 16, at = *n ? fuzz_rng_next(r) % (*n + 1) : 0;
    if (*n + k > cap)
        return;
    memmove(b + at + k, b + at, *n - at);
    for (size_t i = 0; i < k; i++)
        b[at + i] = (uint8_t)fuzz_rng_next(r);
    *n += k;
}

/* Delete 1-32 bytes, or repeat 1-64 bytes in place. */
static void delete_or_repeat(fuzz_rng_t *r, uint8_t *b, size_t *n, size_t cap, int repeat)
{
    if (*n == 0)
        return;
    size_t most = repeat ? 64 : 32;
    size_t at = fuzz_rng_next(r) % *n;
    size_t k = 1 + fuzz_rng_next(r) % (*n - at < most ? *n - at : most);
    if (!repeat) {
        memmove(b + at, b + at + k, *n - at - k);
        *n -= k;
    } else if (*n + k <= cap) {
        memmove(b + at + k, b + at, *n - at);
        *n += k;
    }
}

/* The tail of a seed over the tail of b. */
static void splice(fuzz_rng_t *r, uint8_t *b, size_t *n, size_t cap, const fuzz_seed_t *seeds,
                   size_t nseeds)
{
    if (nseeds == 0)
        return;
    const fuzz_seed_t *s = &seeds[fuzz_rng_next(r) % nseeds];
    if (s->len == 0)
        return;
    size_t from = fuzz_rng_next(r) % s->len, at = *n ? fuzz_rng_next(r) % *n : 0;
    size_t k = s->len - from;
    if (at + k > cap)
        k = cap - at;
    memcpy(b + at, s->data + from, k);
    *n = at + k;
}

void fuzz_mutate_once(fuzz_rng_t *r, uint8_t *b, size_t *n, size_t cap,
                      const fuzz_seed_t *seeds, size_t nseeds)
{
    switch (fuzz_rng_next(r) % 8) {
    case 0: /* flip a bit */
        if (*n)
            b[fuzz_rng_next(r) % *n] ^= (uint8_t)(1u << (fuzz_rng_next(r) % 8));
        break;
    case 1: /* a random byte */
        if (*n)
            b[fuzz_rng_next(r) % *n] = (uint8_t)fuzz_rng_next(r);
        break;
    case 2: put_boundary(r, b, *n); break;
    case 3: insert_random(r, b, n, cap); break;
    case 4: delete_or_repeat(r, b, n, cap, 0); break;
    case 5: delete_or_repeat(r, b, n, cap, 1); break;
    case 6: splice(r, b, n, cap, seeds, nseeds); break;
    default: /* cut the end */
        if (*n)
            *n = fuzz_rng_next(r) % *n;
        break;
    }
}
