/*
 * bench_ring.c - the ring benchmark: lookup cost against a bare binary-search
 * floor, load balance, build time and key movement on membership changes, for
 * rings of 3, 16 and 128 members of weight HERD_RING_DEFAULT_WEIGHT.
 *
 * Output is one figure per line (DESIGN.md, "Benchmark output"):
 *
 *     bench ring <metric> <value> <unit> [key=value ...]
 *
 * Usage: bench_ring [--quick]    (--quick: 10x smaller sizes, for a CI smoke run)
 *
 * All keys come from a seeded splitmix64, so runs are repeatable; only the
 * timings vary. Lookup and floor repetitions are interleaved so that machine
 * noise hits both alike, and the median of the repetitions is reported.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd_ring.h"

#define KEY_LEN 16u
#define REPS 5
#define BUILD_REPS 5
#define SEED 0x6865726462656e63ull /* "herdbenc" */

/* libring's median lookup, uncontended, measured on this machine (herd's
 * issue 16), at the member counts measured here; 0: none at that count. */
static double libring_ref_ns(unsigned members)
{
    switch (members) {
    case 3:
        return 107.0;
    case 16:
        return 146.0;
    case 128:
        return 212.0;
    default:
        return 0;
    }
}

typedef struct bench_key {
    unsigned char b[KEY_LEN];
} bench_key_t;

/* Written at the end of every timed loop so the compiler must compute it. */
static volatile uint64_t bench_sink;

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ring: %s: %s\n", what, rc ? herd_strerror(rc) : "failed");
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        die("malloc", HERD_ENOMEM);
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void member_name(char *buf, size_t cap, unsigned i)
{
    snprintf(buf, cap, "node-%03u", i);
}

/* A ring of members node-001 .. node-<n>, added in name order. */
static herd_ring_t *build_ring(unsigned n)
{
    herd_ring_t *r = herd_ring_new();
    if (r == NULL)
        die("herd_ring_new", HERD_ENOMEM);
    char name[HERD_RING_NAME_MAX + 1];
    for (unsigned i = 1; i <= n; i++) {
        member_name(name, sizeof(name), i);
        int rc = herd_ring_add(r, name, HERD_RING_DEFAULT_WEIGHT);
        if (rc)
            die("herd_ring_add", rc);
    }
    return r;
}

/* ---- lookup and floor ---------------------------------------------------- */

static double time_ring_lookup(const herd_ring_t *r, const bench_key_t *keys, size_t nkeys,
                               size_t lookups)
{
    uint64_t sum = 0;
    double t0 = now_ns();
    for (size_t i = 0, k = 0; i < lookups; i++) {
        const char *owner;
        herd_ring_owner(r, keys[k].b, KEY_LEN, &owner);
        sum += (uintptr_t)owner;
        if (++k == nkeys)
            k = 0;
    }
    double t1 = now_ns();
    bench_sink += sum;
    return (t1 - t0) / (double)lookups;
}

static double time_ring_prehashed(const herd_ring_t *r, const uint64_t *hashes, size_t nkeys,
                                  size_t lookups)
{
    uint64_t sum = 0;
    double t0 = now_ns();
    for (size_t i = 0, k = 0; i < lookups; i++) {
        const char *owner;
        herd_ring_owner_of_hash(r, hashes[k], &owner);
        sum += (uintptr_t)owner;
        if (++k == nkeys)
            k = 0;
    }
    double t1 = now_ns();
    bench_sink += sum;
    return (t1 - t0) / (double)lookups;
}

/* Index of the first point >= h, wrapping to 0: a plain lower bound over the
 * sorted point hashes. The step is a mask, not a ?:, because GCC compiles the ?:
 * form to a data-dependent branch that mispredicts half the time; branch-free,
 * the floor is the fair one. */
static inline size_t floor_search(const uint64_t *pts, size_t n, uint64_t h)
{
    size_t base = 0, len = n;
    while (len > 1) {
        size_t half = len / 2;
        size_t take = (size_t)0 - (size_t)(pts[base + half - 1] < h);
        base += half & take;
        len -= half;
    }
    size_t i = base + (pts[base] < h);
    return i == n ? 0 : i;
}

static double time_floor(const uint64_t *pts, size_t npts, const uint64_t *hashes,
                         size_t nkeys, size_t lookups)
{
    uint64_t sum = 0;
    double t0 = now_ns();
    for (size_t i = 0, k = 0; i < lookups; i++) {
        sum += floor_search(pts, npts, hashes[k]);
        if (++k == nkeys)
            k = 0;
    }
    double t1 = now_ns();
    bench_sink += sum;
    return (t1 - t0) / (double)lookups;
}

/* ---- balance and movement ------------------------------------------------ */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const char *const *)a;
    uintptr_t y = (uintptr_t) * (const char *const *)b;
    return (x > y) - (x < y);
}

/* Member index of an owner pointer returned by the ring (names sorted by address). */
static size_t owner_slot(const char *const *names, size_t n, const char *owner)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)names[mid] < (uintptr_t)owner)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n || names[lo] != owner)
        die("owner is not a member", 0);
    return lo;
}

/* Fraction of keys whose owner differs between rings a and b. */
static double moved_fraction(const herd_ring_t *a, const herd_ring_t *b, const uint64_t *hashes,
                             size_t n)
{
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        const char *oa, *ob;
        herd_ring_owner_of_hash(a, hashes[i], &oa);
        herd_ring_owner_of_hash(b, hashes[i], &ob);
        moved += strcmp(oa, ob) != 0;
    }
    return (double)moved / (double)n;
}

/* ---- one member count ---------------------------------------------------- */

static void bench_members(unsigned n, const bench_key_t *keys, const uint64_t *hashes,
                          size_t nkeys, size_t lookups, size_t balance_keys)
{
    /* build_ms: median of BUILD_REPS builds from empty */
    double build[BUILD_REPS];
    for (int rep = 0; rep < BUILD_REPS; rep++) {
        double t0 = now_ns();
        herd_ring_t *tmp = build_ring(n);
        double t1 = now_ns();
        bench_sink += herd_ring_point_count(tmp);
        herd_ring_free(tmp);
        build[rep] = (t1 - t0) / 1e6;
    }
    herd_ring_t *r = build_ring(n);

    /* the floor's array: the ring's point hashes, in ring order */
    size_t npts = herd_ring_point_count(r);
    uint64_t *pts = xmalloc(npts * sizeof(*pts));
    for (size_t i = 0; i < npts; i++) {
        const char *owner;
        int rc = herd_ring_point_at(r, i, &pts[i], &owner);
        if (rc)
            die("herd_ring_point_at", rc);
        if (i > 0 && pts[i] < pts[i - 1])
            die("ring points are not sorted", 0);
    }

    /* sanity: the floor finds the very point whose owner the ring reports */
    for (size_t i = 0; i < nkeys && i < 100000; i++) {
        const char *want, *got;
        herd_ring_owner(r, keys[i].b, KEY_LEN, &want);
        uint64_t h;
        herd_ring_point_at(r, floor_search(pts, npts, hashes[i]), &h, &got);
        if (want != got)
            die("floor and ring disagree", 0);
    }

    /* lookup_ns / lookup_floor_ns: warm up, then interleaved repetitions,
     * alternating which goes first */
    time_ring_lookup(r, keys, nkeys, lookups / 4);
    time_floor(pts, npts, hashes, nkeys, lookups / 4);
    double look[REPS], flr[REPS], pre[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        if (rep % 2 == 0) {
            look[rep] = time_ring_lookup(r, keys, nkeys, lookups);
            flr[rep] = time_floor(pts, npts, hashes, nkeys, lookups);
        } else {
            flr[rep] = time_floor(pts, npts, hashes, nkeys, lookups);
            look[rep] = time_ring_lookup(r, keys, nkeys, lookups);
        }
        pre[rep] = time_ring_prehashed(r, hashes, nkeys, lookups);
    }
    double look_ns = median(look, REPS);
    double floor_ns = median(flr, REPS);
    double pre_ns = median(pre, REPS);

    /* balance: empirical key shares over balance_keys keys */
    size_t members = herd_ring_member_count(r);
    const char **names = xmalloc(members * sizeof(*names));
    size_t *count = calloc(members, sizeof(*count));
    if (count == NULL)
        die("calloc", HERD_ENOMEM);
    double arc_max = 0.0, arc_min = 1.0;
    for (size_t m = 0; m < members; m++) {
        herd_ring_member_info_t info;
        herd_ring_member_at(r, m, &info);
        names[m] = info.name;
        if (info.share > arc_max)
            arc_max = info.share;
        if (info.share < arc_min)
            arc_min = info.share;
    }
    qsort(names, members, sizeof(*names), cmp_ptr);
    for (size_t i = 0; i < balance_keys; i++) {
        const char *owner;
        herd_ring_owner_of_hash(r, hashes[i], &owner);
        count[owner_slot(names, members, owner)]++;
    }
    size_t cmax = 0, cmin = SIZE_MAX;
    for (size_t m = 0; m < members; m++) {
        if (count[m] > cmax)
            cmax = count[m];
        if (count[m] < cmin)
            cmin = count[m];
    }
    double ideal = (double)balance_keys / (double)members;

    /* movement: add node-<n+1>; remove the middle member */
    char name[HERD_RING_NAME_MAX + 1];
    herd_ring_t *added = herd_ring_clone(r);
    if (added == NULL)
        die("herd_ring_clone", HERD_ENOMEM);
    member_name(name, sizeof(name), n + 1);
    int rc = herd_ring_add(added, name, HERD_RING_DEFAULT_WEIGHT);
    if (rc)
        die("herd_ring_add", rc);
    double moved_add = moved_fraction(r, added, hashes, balance_keys);

    herd_ring_t *removed = herd_ring_clone(r);
    if (removed == NULL)
        die("herd_ring_clone", HERD_ENOMEM);
    char gone[HERD_RING_NAME_MAX + 1];
    member_name(gone, sizeof(gone), (n + 1) / 2);
    herd_ring_member_info_t gone_info;
    rc = herd_ring_member_find(r, gone, &gone_info);
    if (rc)
        die("herd_ring_member_find", rc);
    rc = herd_ring_remove(removed, gone);
    if (rc)
        die("herd_ring_remove", rc);
    double moved_remove = moved_fraction(r, removed, hashes, balance_keys);

    herd_ring_diff_t diff;
    rc = herd_ring_compare(r, added, &diff);
    if (rc)
        die("ring_diff", rc);
    double diff_share = diff.moved_share;
    herd_ring_diff_free(&diff);

    /* report */
    printf("bench ring lookup_ns %.1f ns members=%u keys=%zu lookups=%zu\n", look_ns, n,
           nkeys, lookups);
    printf("bench ring lookup_floor_ns %.1f ns members=%u points=%zu\n", floor_ns, n, npts);
    printf("bench ring lookup_floor_ratio %.2f x members=%u\n", look_ns / floor_ns, n);
    printf("bench ring lookup_prehashed_ns %.1f ns members=%u\n", pre_ns, n);
    double ref_ns = libring_ref_ns(n);
    if (ref_ns > 0)
        printf("bench ring vs_libring_ratio %.1f x members=%u ref_ns=%.0f ref_system=libring "
               "uncontended=1 lookup_ns=%.1f\n",
               ref_ns / look_ns, n, ref_ns, look_ns);
    printf("bench ring max_share_ratio %.3f x members=%u keys=%zu arc=%.3f\n",
           (double)cmax / ideal, n, balance_keys, arc_max * (double)members);
    printf("bench ring min_share_ratio %.3f x members=%u keys=%zu arc=%.3f\n",
           (double)cmin / ideal, n, balance_keys, arc_min * (double)members);
    printf("bench ring build_ms %.3f ms members=%u weight=%u\n", median(build, BUILD_REPS),
           n, HERD_RING_DEFAULT_WEIGHT);
    printf("bench ring moved_add_ratio %.4f x members=%u keys=%zu expected=%.4f\n",
           moved_add, n, balance_keys, 1.0 / (double)(n + 1));
    printf("bench ring moved_remove_ratio %.4f x members=%u keys=%zu expected=%.4f "
           "removed=%s removed_share=%.4f\n",
           moved_remove, n, balance_keys, 1.0 / (double)n, gone, gone_info.share);
    printf("bench ring diff_moved_share %.4f x members=%u op=add expected=%.4f\n",
           diff_share, n, 1.0 / (double)(n + 1));
    fflush(stdout);

    herd_ring_free(removed);
    herd_ring_free(added);
    free(count);
    free(names);
    free(pts);
    herd_ring_free(r);
}

/* Balance is a random draw that depends on the member names. Over many name
 * sets ("s<k>-node-<i>"), the median of the most and least loaded member's
 * exact arc share against the ideal, so one lucky or unlucky set of names
 * does not decide the figure. */
static void bench_balance_spread(unsigned n, unsigned sets)
{
    double *maxr = xmalloc(sets * sizeof(double)), *minr = xmalloc(sets * sizeof(double));
    char name[HERD_RING_NAME_MAX + 1];
    for (unsigned k = 0; k < sets; k++) {
        herd_ring_t *r = herd_ring_new();
        if (r == NULL)
            die("herd_ring_new", HERD_ENOMEM);
        for (unsigned i = 1; i <= n; i++) {
            snprintf(name, sizeof(name), "s%u-node-%03u", k, i);
            int rc = herd_ring_add(r, name, HERD_RING_DEFAULT_WEIGHT);
            if (rc)
                die("herd_ring_add", rc);
        }
        double hi = 0, lo = 1;
        herd_ring_member_info_t m;
        for (size_t i = 0; herd_ring_member_at(r, i, &m) == 0; i++) {
            hi = m.share > hi ? m.share : hi;
            lo = m.share < lo ? m.share : lo;
        }
        maxr[k] = hi * n;
        minr[k] = lo * n;
        herd_ring_free(r);
    }
    printf("bench ring max_share_ratio_median %.3f x members=%u namesets=%u\n",
           median(maxr, sets), n, sets);
    printf("bench ring min_share_ratio_median %.3f x members=%u namesets=%u\n",
           median(minr, sets), n, sets);
    free(maxr);
    free(minr);
}

int main(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
            return 2;
        }
    }
    size_t nkeys = quick ? ((size_t)1 << 20) / 10 : (size_t)1 << 20;
    size_t lookups = quick ? 100000 : 1048576;
    size_t balance_keys = quick ? 100000 : 1000000;

    bench_key_t *keys = xmalloc(nkeys * sizeof(*keys));
    uint64_t *hashes = xmalloc(nkeys * sizeof(*hashes));
    uint64_t state = SEED;
    for (size_t i = 0; i < nkeys; i++) {
        uint64_t a = splitmix64(&state), b = splitmix64(&state);
        memcpy(keys[i].b, &a, 8);
        memcpy(keys[i].b + 8, &b, 8);
        hashes[i] = herd_ring_hash_key(keys[i].b, KEY_LEN);
    }

    static const unsigned counts[] = {3, 16, 128};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
        bench_members(counts[c], keys, hashes, nkeys, lookups, balance_keys);
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
        bench_balance_spread(counts[c], quick ? 5 : 50);

    free(hashes);
    free(keys);
    return 0;
}
