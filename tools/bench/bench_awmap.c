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
 * Each figure is the best of a few runs. --quick runs a small size once, to
 * keep the program working (ctest's smoke run).
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
    return 0;
}
