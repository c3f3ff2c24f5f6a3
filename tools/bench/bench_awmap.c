/*
 * bench_awmap.c - how long awmap_join takes on a big delta: 100,000 keys with
 * one entry each, written by 50 replicas (registry/awmap.h).
 *
 * Three targets, as a node meets them:
 *  - fresh:   an empty state (a node that joins the cluster);
 *  - rejoin:  a state already holding every entry (a delta delivered twice,
 *             or a digest piece of what the node has);
 *  - history: an empty state whose replica table already lists 1,000 older
 *             replicas (incarnations of restarted nodes), the delta's 50 last.
 * Each figure is the best of a few runs.
 *
 * Then a join in a foreign order, as a node that joins a cluster meets it:
 * a map of 300,000 keys is sent, in the order awmap_foreach walks it, as
 * pieces of 4,000 keys (awmap_copy_key), and an empty map joins them one by
 * one. Were the receiver's bucket index the sender's iteration order, the
 * front of its smaller table would overfill and inserts go quadratic.
 *
 *   bench awmap join_in_foreign_order_ms <ms> keys=<n>
 *
 * --quick runs small sizes once, to keep the program working (ctest's smoke
 * run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awmap.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_awmap: %s failed\n", what);
    exit(1);
}

/* A delta of `keys` keys, one entry each, from `reps` replicas in turn. */
static awmap_t *make_delta(unsigned keys, unsigned reps)
{
    awmap_t *src = awmap_new(), *d = awmap_new_delta();
    uint32_t idx[64];
    if (src == NULL || d == NULL || reps > 64)
        die("alloc");
    for (unsigned r = 0; r < reps; r++)
        if (awmap_replica(src, (awmap_replica_id_t){100 + r, 7}, &idx[r]) != 0)
            die("awmap_replica");
    char key[32], value[24];
    for (unsigned i = 0; i < keys; i++) {
        int kl = snprintf(key, sizeof(key), "service/%u", i);
        int vl = snprintf(value, sizeof(value), "pid:%u", i * 7u);
        if (awmap_add(src, idx[i % reps], key, (size_t)kl, value, (size_t)vl, NULL, 0, d, NULL,
                      NULL) != 0)
            die("awmap_add");
    }
    awmap_free(src);
    return d;
}

/* A state with `old` unrelated replicas interned first. */
static awmap_t *make_target(unsigned old)
{
    awmap_t *m = awmap_new();
    uint32_t idx;
    if (m == NULL)
        die("alloc");
    for (unsigned i = 0; i < old; i++)
        if (awmap_replica(m, (awmap_replica_id_t){5000 + i % 40, 1 + i / 40}, &idx) != 0)
            die("awmap_replica");
    return m;
}

/* Seconds for the best of `runs` joins of d into a target made by mk. */
static double time_join(const awmap_t *d, unsigned old, int twice, unsigned runs)
{
    double best = 1e9;
    for (unsigned i = 0; i < runs; i++) {
        awmap_t *m = make_target(old);
        if (twice && awmap_join(m, d, NULL) != 0)
            die("awmap_join");
        double t0 = now_s();
        if (awmap_join(m, d, NULL) != 0)
            die("awmap_join");
        double t = now_s() - t0;
        if (awmap_entry_count(m) != awmap_entry_count(d))
            die("entry count");
        awmap_free(m);
        if (t < best)
            best = t;
    }
    return best;
}

/* ---- join in a foreign order ----------------------------------------------------- */

typedef struct pieces {
    const awmap_t *src;
    awmap_t **at;
    size_t n, cap, per;
} pieces_t;

static int piece_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    pieces_t *p = data;
    (void)e;
    if (p->n == 0 || awmap_key_count(p->at[p->n - 1]) == p->per) {
        if (p->n == p->cap && (p->at = realloc(p->at, (p->cap = p->cap * 2 + 16) *
                                                          sizeof(*p->at))) == NULL)
            die("alloc");
        if ((p->at[p->n++] = awmap_new_delta()) == NULL)
            die("alloc");
    }
    if (awmap_copy_key(p->at[p->n - 1], p->src, key, klen) != 0)
        die("awmap_copy_key");
    return 0;
}

/* Milliseconds for an empty map to join a `keys`-key map sent as pieces of
 * `per` keys in the sender's iteration order (best of `runs`); `seeded`:
 * both maps seeded as registries seed theirs, else neither. */
static double time_foreign_order(unsigned keys, size_t per, int seeded, unsigned runs)
{
    awmap_t *a = awmap_new();
    uint32_t idx;
    char key[32], value[24];
    if (a == NULL || (seeded && awmap_set_seed(a, 1) != 0) ||
        awmap_replica(a, (awmap_replica_id_t){1, 1}, &idx) != 0)
        die("alloc");
    for (unsigned i = 0; i < keys; i++) {
        int kl = snprintf(key, sizeof(key), "node-1/worker-%u", i);
        int vl = snprintf(value, sizeof(value), "<0.%u.1>", i);
        if (awmap_add(a, idx, key, (size_t)kl, value, (size_t)vl, NULL, 0, NULL, NULL, NULL) != 0)
            die("awmap_add");
    }
    pieces_t p = {.src = a, .per = per};
    awmap_foreach(a, piece_key, &p);
    double best = 1e9;
    for (unsigned r = 0; r < runs; r++) {
        awmap_t *b = awmap_new();
        if (b == NULL || (seeded && awmap_set_seed(b, 2) != 0))
            die("alloc");
        double t0 = now_s();
        for (size_t i = 0; i < p.n; i++)
            if (awmap_join(b, p.at[i], NULL) != 0)
                die("awmap_join");
        double t = now_s() - t0;
        if (awmap_key_count(b) != keys)
            die("key count");
        awmap_free(b);
        if (t < best)
            best = t;
    }
    for (size_t i = 0; i < p.n; i++)
        awmap_free(p.at[i]);
    free(p.at);
    awmap_free(a);
    return 1e3 * best;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    unsigned keys = quick ? 2000 : 100000, reps = 50, runs = quick ? 1 : 5;
    awmap_t *d = make_delta(keys, reps);
    printf("awmap_join of a delta of %u keys from %u replicas (best of %u)\n", keys, reps, runs);
    printf("  fresh    %8.2f ms\n", 1e3 * time_join(d, 0, 0, runs));
    printf("  rejoin   %8.2f ms\n", 1e3 * time_join(d, 0, 1, runs));
    printf("  history  %8.2f ms  (1,000 older replicas in the table)\n",
           1e3 * time_join(d, 1000, 0, runs));
    awmap_free(d);
    unsigned fkeys = quick ? 30000 : 300000;
    for (int seeded = 1; seeded >= 0; seeded--)
        printf("bench awmap join_in_foreign_order_ms %.1f keys=%u piece=4000 seeds=%s "
               "runs=%u\n", time_foreign_order(fkeys, 4000, seeded, quick ? 1 : 3), fkeys,
               seeded ? "1,2" : "default", quick ? 1 : 3);
    return 0;
}
