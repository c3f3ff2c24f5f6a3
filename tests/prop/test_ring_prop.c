/*
 * test_ring_prop.c - laws of the consistent hash ring, checked over random seeds.
 *
 * Every property runs a fixed list of seeds through a small splitmix64 generator,
 * so a run is the same on every machine; a failure names the seed (and the
 * property's loop is short enough to replay it alone). Rings stay at most 64
 * members and the key counts are bounded so the whole program stays well under a
 * minute even under ASan+UBSan on a slow machine.
 *
 * The laws: the ring is a function of its member set (insertion order, removes
 * and re-adds and weight changes in between do not matter); it agrees with a
 * naive sorted-array reference written here; adding or removing a member moves
 * only that member's keys, about its share; ring_diff describes exactly the keys
 * that change owner; owners(key, n) is a distinct, stable, prefix-closed list; and
 * shares follow weights and match the keys a member really gets.
 *
 * The diff property never diffs two rings with no moves between them: that
 * path runs into undefined behaviour (qsort of NULL) pinned by
 * test_ring_diff_identical_rings_no_moves in tests/unit/test_ring.c, and would
 * stop the sanitized run before the other properties report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "herd_ring.h"

#define MAX_MEMBERS 64
#define NAME_CAP (HERD_RING_NAME_MAX + 1)

/* ---- seeded randomness ---------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform enough in 0..n-1 for n far below 2^64. */
static uint32_t rng_below(rng_t *g, uint32_t n)
{
    return (uint32_t)(rng_next(g) % n);
}

static uint32_t rng_range(rng_t *g, uint32_t lo, uint32_t hi)
{
    return lo + rng_below(g, hi - lo + 1);
}

/* The seed of the property case running now, for failure messages. */
static uint64_t g_seed;
static const char *g_prop;

static rng_t seed_case(const char *prop, uint64_t base, unsigned i)
{
    g_prop = prop;
    g_seed = base + 0x1000u * (uint64_t)i;
    return (rng_t){g_seed};
}

#define PROP(cond)                                                                       \
    do {                                                                                 \
        if (!(cond))                                                                     \
            fail_msg("%s:%d: %s: `%s` is false (seed 0x%016llx)", __FILE__, __LINE__,    \
                     g_prop, #cond, (unsigned long long)g_seed);                         \
    } while (0)

#define PROPF(cond, fmt, ...)                                                            \
    do {                                                                                 \
        if (!(cond))                                                                     \
            fail_msg("%s:%d: %s: `%s` is false (seed 0x%016llx): " fmt, __FILE__,        \
                     __LINE__, g_prop, #cond, (unsigned long long)g_seed, __VA_ARGS__);  \
    } while (0)

/* The test links no libm (tests/CMakeLists.txt gives it only herd_ring). */
static double abs_d(double x)
{
    return x < 0 ? -x : x;
}

static double sqrt_d(double x)
{
    if (x <= 0) return 0;
    double y = x < 1 ? 1 : x;
    for (int i = 0; i < 60; i++)
        y = 0.5 * (y + x / y);
    return y;
}

/* ---- member sets ------------------------------------------------------------ */

typedef struct mset {
    size_t n;
    char name[MAX_MEMBERS][NAME_CAP];
    uint32_t weight[MAX_MEMBERS];
} mset_t;

enum name_style {
    NAMES_ANY,   /* 1..20 random bytes of the alphabet, sometimes 64 */
    NAMES_LONG,  /* 4..20 bytes */
    NAMES_SHORT3 /* "n" + two digits: the names XXH3's seeded scheme made collide */
};

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

static void gen_name(rng_t *g, enum name_style style, char *out)
{
    if (style == NAMES_SHORT3) {
        snprintf(out, NAME_CAP, "n%02u", rng_below(g, 100));
        return;
    }
    size_t len;
    if (style == NAMES_ANY && rng_below(g, 16) == 0)
        len = HERD_RING_NAME_MAX;
    else
        len = rng_range(g, style == NAMES_LONG ? 4 : 1, 20);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rng_below(g, (uint32_t)sizeof alphabet - 1)];
    out[len] = '\0';
}

static int mset_has(const mset_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) return 1;
    return 0;
}

/* Appends one member with a name not yet in the set. */
static size_t mset_push(rng_t *g, mset_t *m, enum name_style style, uint32_t weight)
{
    char name[NAME_CAP];
    do
        gen_name(g, style, name);
    while (mset_has(m, name));
    strcpy(m->name[m->n], name);
    m->weight[m->n] = weight;
    return m->n++;
}

static void mset_gen(rng_t *g, mset_t *m, size_t n, enum name_style style, uint32_t wlo,
                     uint32_t whi)
{
    m->n = 0;
    for (size_t i = 0; i < n; i++)
        mset_push(g, m, style, rng_range(g, wlo, whi));
}

/* Ring sizes: building a ring costs about members^2 x weight (every add
 * rebuilds), so most cases are small and every fourth one goes up to 64. */
static size_t some_members(rng_t *g, unsigned c)
{
    return rng_range(g, 1, c % 4 == 0 ? MAX_MEMBERS : 24);
}

/* Two names whose point 0 collide (see test_ring_equal_points_ordered_by_name):
 * added to some sets so that ties, ordered by name, meet every law below. */
#define TIE_A "G9xEAbvXPdA"
#define TIE_B "h3TR9nLR2SN"
#define TIE_HASH 0xa6aef28ad521f402ull

static void mset_add_tie_pair(rng_t *g, mset_t *m)
{
    if (m->n + 2 > MAX_MEMBERS || mset_has(m, TIE_A) || mset_has(m, TIE_B)) return;
    size_t at = rng_below(g, (uint32_t)m->n + 1); /* somewhere in insertion order */
    for (size_t i = m->n; i > at; i--) {
        strcpy(m->name[i + 1], m->name[i - 1]);
        m->weight[i + 1] = m->weight[i - 1];
    }
    strcpy(m->name[at], TIE_B);
    strcpy(m->name[at + 1], TIE_A);
    m->weight[at] = rng_range(g, 1, 512);
    m->weight[at + 1] = rng_range(g, 1, 512);
    m->n += 2;
}

static enum name_style any_style(rng_t *g)
{
    uint32_t r = rng_below(g, 4);
    return r == 0 ? NAMES_SHORT3 : r == 1 ? NAMES_LONG : NAMES_ANY;
}

/* Index of `name` in the set (it must be there). */
static size_t mset_index(const mset_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->name[i][0] == name[0] && strcmp(m->name[i], name) == 0) return i;
    PROPF(0, "%s is not a member", name);
    return 0;
}

static herd_ring_t *ring_from(const mset_t *m)
{
    herd_ring_t *r = herd_ring_new();
    PROP(r != NULL);
    for (size_t i = 0; i < m->n; i++)
        PROP(herd_ring_add(r, m->name[i], m->weight[i]) == 0);
    return r;
}

static void shuffle(rng_t *g, size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(g, (uint32_t)i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static const char *owner_h(const herd_ring_t *r, uint64_t h)
{
    const char *o = NULL;
    PROP(herd_ring_owner_of_hash(r, h, &o) == 0);
    PROP(o != NULL);
    return o;
}

static const char *owner_k(const herd_ring_t *r, uint64_t key)
{
    const char *o = NULL;
    PROP(herd_ring_owner(r, &key, sizeof key, &o) == 0);
    PROP(o != NULL);
    return o;
}

static double share_of(const herd_ring_t *r, const char *name)
{
    herd_ring_member_info_t info;
    PROP(herd_ring_member_find(r, name, &info) == 0);
    return info.share;
}

/* ---- the reference ring: all points in a sorted array, nothing clever ------- */

typedef struct refpt {
    uint64_t hash;
    const char *name;
    uint32_t member; /* index into the mset */
} refpt_t;

static int refpt_cmp(const void *a, const void *b)
{
    const refpt_t *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ring.h: XXH3_64bits(name || 0x00 || index as 4 bytes little-endian). */
static uint64_t ref_point_hash(const char *name, uint32_t index)
{
    unsigned char buf[HERD_RING_NAME_MAX + 5];
    size_t len = strlen(name);
    memcpy(buf, name, len);
    buf[len] = 0;
    for (int i = 0; i < 4; i++)
        buf[len + 1 + i] = (unsigned char)(index >> (8 * i));
    return XXH3_64bits(buf, len + 5);
}

static refpt_t *ref_build(const mset_t *m, size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->weight[i];
    refpt_t *p = malloc((n + 1) * sizeof(*p));
    PROP(p != NULL);
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        for (uint32_t j = 0; j < m->weight[i]; j++)
            p[k++] = (refpt_t){ref_point_hash(m->name[i], j), m->name[i], (uint32_t)i};
    qsort(p, n, sizeof(*p), refpt_cmp);
    *count = n;
    return p;
}

/* Index of the first point with hash >= h, wrapping to 0. */
static size_t ref_successor(const refpt_t *p, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == n ? 0 : lo;
}

static const char *ref_owner(const refpt_t *p, size_t n, uint64_t h)
{
    return p[ref_successor(p, n, h)].name;
}

/* ---- ring comparison --------------------------------------------------------- */

static void assert_same_ring(const herd_ring_t *a, const herd_ring_t *b, rng_t *g, size_t keys)
{
    PROP(herd_ring_member_count(a) == herd_ring_member_count(b));
    PROP(herd_ring_point_count(a) == herd_ring_point_count(b));
    for (size_t i = 0; i < herd_ring_point_count(a); i++) {
        uint64_t ha, hb;
        const char *oa, *ob;
        PROP(herd_ring_point_at(a, i, &ha, &oa) == 0);
        PROP(herd_ring_point_at(b, i, &hb, &ob) == 0);
        PROPF(ha == hb && strcmp(oa, ob) == 0, "point %zu: %016llx %s vs %016llx %s", i,
              (unsigned long long)ha, oa, (unsigned long long)hb, ob);
    }
    for (size_t i = 0; i < herd_ring_member_count(a); i++) {
        herd_ring_member_info_t ia, ib;
        PROP(herd_ring_member_at(a, i, &ia) == 0);
        PROP(herd_ring_member_at(b, i, &ib) == 0);
        PROP(strcmp(ia.name, ib.name) == 0);
        PROP(ia.weight == ib.weight && ia.points == ib.points);
        PROP(ia.share == ib.share); /* a function of the points: bit for bit */
    }
    size_t na = herd_ring_dump_text(a, NULL, 0), nb = herd_ring_dump_text(b, NULL, 0);
    PROP(na == nb);
    char *da = malloc(na + 1), *db = malloc(nb + 1);
    PROP(da != NULL && db != NULL);
    herd_ring_dump_text(a, da, na + 1);
    herd_ring_dump_text(b, db, nb + 1);
    PROP(strcmp(da, db) == 0);
    free(da);
    free(db);
    for (size_t k = 0; k < keys; k++) {
        uint64_t key = rng_next(g);
        PROP(strcmp(owner_k(a, key), owner_k(b, key)) == 0);
        if (k % 8 == 0) {
            const char *oa[3], *ob[3];
            int ka = herd_ring_owners(a, &key, sizeof key, oa, 3);
            int kb = herd_ring_owners(b, &key, sizeof key, ob, 3);
            PROP(ka == kb && ka >= 1);
            for (int j = 0; j < ka; j++)
                PROP(strcmp(oa[j], ob[j]) == 0);
        }
    }
}

/* ---- properties -------------------------------------------------------------- */

/* The same member set gives the same ring whatever happened on the way. */
static void test_ring_prop_insertion_order_irrelevant(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 30; c++) {
        rng_t g = seed_case("insertion order", 0x0de7e2a11u, c);
        mset_t m;
        size_t n = some_members(&g, c);
        mset_gen(&g, &m, n, any_style(&g), 1, 512);
        if (c % 3 == 0) mset_add_tie_pair(&g, &m);
        herd_ring_t *a = ring_from(&m);

        /* b: shuffled adds, with random removes (put back for later), re-adds
         * and wrong weights set on the way, fixed at the end. */
        herd_ring_t *b = herd_ring_new();
        PROP(b != NULL);
        size_t pending[MAX_MEMBERS], present[MAX_MEMBERS];
        size_t npend = m.n, npres = 0;
        for (size_t i = 0; i < m.n; i++)
            pending[i] = i;
        shuffle(&g, pending, npend);
        for (unsigned step = 0; npend > 0; step++) {
            PROP(step < 16 * MAX_MEMBERS);
            uint32_t op = step > 4 * m.n ? 0 : rng_below(&g, 20); /* bounded */
            if (op < 14 || npres == 0) {
                size_t i = pending[--npend];
                uint32_t w = rng_below(&g, 8) == 0 ? rng_range(&g, 1, 512) : m.weight[i];
                PROP(herd_ring_add(b, m.name[i], w) == 0);
                PROP(herd_ring_add(b, m.name[i], w) == HERD_EEXIST);
                present[npres++] = i;
            } else if (op < 17) {
                size_t at = rng_below(&g, (uint32_t)npres);
                size_t i = present[at];
                present[at] = present[--npres];
                PROP(herd_ring_remove(b, m.name[i]) == 0);
                PROP(herd_ring_remove(b, m.name[i]) == HERD_ENOENT);
                pending[npend++] = i;
                size_t j = rng_below(&g, (uint32_t)npend); /* re-add at a random time */
                pending[npend - 1] = pending[j];
                pending[j] = i;
            } else {
                size_t i = present[rng_below(&g, (uint32_t)npres)];
                PROP(herd_ring_set_weight(b, m.name[i], rng_range(&g, 1, 512)) == 0);
            }
        }
        for (size_t i = 0; i < m.n; i++)
            PROP(herd_ring_set_weight(b, m.name[i], m.weight[i]) == 0);
        assert_same_ring(a, b, &g, 10000);

        /* c: plain reverse order. */
        herd_ring_t *c2 = herd_ring_new();
        PROP(c2 != NULL);
        for (size_t i = m.n; i-- > 0;)
            PROP(herd_ring_add(c2, m.name[i], m.weight[i]) == 0);
        assert_same_ring(a, c2, &g, 2000);

        /* d: a clone. */
        herd_ring_t *d = herd_ring_clone(b);
        PROP(d != NULL);
        assert_same_ring(a, d, &g, 1000);
        herd_ring_free(d);
        herd_ring_free(c2);
        herd_ring_free(b);
        herd_ring_free(a);
    }
}

/* The ring gives the answers of the naive sorted array, wherever h falls. */
static void test_ring_prop_matches_reference(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 40; c++) {
        rng_t g = seed_case("reference", 0x2ef2e2e4ce0u, c);
        mset_t m;
        enum name_style style = c % 4 == 0 ? NAMES_SHORT3 : any_style(&g);
        uint32_t whi = c % 3 == 0 ? 8 : 512; /* small rings too: few points, wide arcs */
        mset_gen(&g, &m, some_members(&g, c), style, 1, whi);
        if (c % 5 == 1) mset_add_tie_pair(&g, &m);
        herd_ring_t *r = ring_from(&m);
        size_t n;
        refpt_t *ref = ref_build(&m, &n);

        /* The point array is the reference array (sorted by hash, then name). */
        PROP(herd_ring_point_count(r) == n);
        for (size_t i = 0; i < n; i++) {
            uint64_t h;
            const char *o;
            PROP(herd_ring_point_at(r, i, &h, &o) == 0);
            PROPF(h == ref[i].hash && strcmp(o, ref[i].name) == 0, "point %zu: %s vs %s",
                  i, o, ref[i].name);
        }
        /* Distinct members never share a point (see the unit test of the same
         * name), but for the pair made to; a member's own points are distinct. */
        for (size_t i = 1; i < n; i++)
            PROPF(ref[i - 1].hash != ref[i].hash || ref[i].hash == TIE_HASH,
                  "%s and %s share point %016llx", ref[i - 1].name, ref[i].name,
                  (unsigned long long)ref[i].hash);
        /* At, just before and just after every point. */
        for (size_t i = 0; i < n; i++) {
            uint64_t h = ref[i].hash;
            PROP(strcmp(owner_h(r, h), ref_owner(ref, n, h)) == 0);
            PROP(strcmp(owner_h(r, h - 1), ref_owner(ref, n, h - 1)) == 0);
            PROP(strcmp(owner_h(r, h + 1), ref_owner(ref, n, h + 1)) == 0);
        }
        /* The ends of the circle and the edges of any top-bits index. */
        static const uint64_t fixed[] = {0,
                                         1,
                                         2,
                                         UINT64_MAX,
                                         UINT64_MAX - 1,
                                         0x8000000000000000ull,
                                         0x7fffffffffffffffull};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            PROPF(strcmp(owner_h(r, fixed[i]), ref_owner(ref, n, fixed[i])) == 0,
                  "hash %016llx", (unsigned long long)fixed[i]);
        for (unsigned shift = 32; shift < 64; shift++) {
            for (int k = 0; k < 8; k++) {
                uint64_t h = rng_next(&g) >> shift << shift;
                PROP(strcmp(owner_h(r, h), ref_owner(ref, n, h)) == 0);
                PROP(strcmp(owner_h(r, h - 1), ref_owner(ref, n, h - 1)) == 0);
            }
        }
        for (int k = 0; k < 4000; k++) {
            uint64_t h = rng_next(&g);
            PROP(strcmp(owner_h(r, h), ref_owner(ref, n, h)) == 0);
        }
        /* Keys go through XXH3_64bits of their bytes. */
        for (int k = 0; k < 1000; k++) {
            char key[24];
            size_t len = rng_below(&g, sizeof key + 1);
            for (size_t i = 0; i < len; i++)
                key[i] = (char)rng_next(&g);
            const char *o;
            PROP(herd_ring_owner(r, key, len, &o) == 0);
            PROP(strcmp(o, ref_owner(ref, n, XXH3_64bits(key, len))) == 0);
            PROP(herd_ring_hash_key(key, len) == XXH3_64bits(key, len));
        }
        free(ref);
        herd_ring_free(r);
    }
}

/* Adding a member moves keys only to it, about 1/(N+1) of them; removing one
 * moves only its own keys. */
static void test_ring_prop_add_remove_moves_only_own_keys(void **state)
{
    (void)state;
    enum { KEYS = 100000 };
    for (unsigned c = 0; c < 30; c++) {
        rng_t g = seed_case("add/remove", 0xadd4e30e0u, c);
        mset_t m;
        size_t n = rng_range(&g, 1, MAX_MEMBERS - 1);
        mset_gen(&g, &m, n, NAMES_LONG, HERD_RING_DEFAULT_WEIGHT, HERD_RING_DEFAULT_WEIGHT);
        herd_ring_t *old = ring_from(&m);
        size_t added = mset_push(&g, &m, NAMES_LONG, HERD_RING_DEFAULT_WEIGHT);
        const char *newcomer = m.name[added];
        herd_ring_t *grown = herd_ring_clone(old);
        PROP(grown != NULL);
        PROP(herd_ring_add(grown, newcomer, HERD_RING_DEFAULT_WEIGHT) == 0);

        size_t gone_at = rng_below(&g, (uint32_t)m.n);
        const char *gone = m.name[gone_at];
        herd_ring_t *shrunk = herd_ring_clone(grown);
        PROP(shrunk != NULL);
        PROP(herd_ring_remove(shrunk, gone) == 0);

        size_t moved_in = 0, moved_out = 0;
        for (size_t k = 0; k < KEYS; k++) {
            uint64_t key = rng_next(&g);
            const char *before = owner_k(old, key);
            const char *mid = owner_k(grown, key);
            const char *after = owner_k(shrunk, key);
            if (strcmp(before, mid) != 0) {
                PROPF(strcmp(mid, newcomer) == 0, "key moved %s -> %s, not to %s", before,
                      mid, newcomer);
                moved_in++;
            }
            if (strcmp(mid, gone) == 0) {
                PROP(strcmp(after, gone) != 0);
                moved_out++;
            } else {
                PROPF(strcmp(after, mid) == 0, "removing %s moved a key of %s to %s",
                      gone, mid, after);
            }
        }
        double in = (double)moved_in / KEYS, fair = 1.0 / (double)(n + 1);
        PROPF(in >= 0.5 * fair && in <= 1.6 * fair, "moved %.4f, 1/(N+1) = %.4f", in,
              fair);
        double s_in = share_of(grown, newcomer), s_out = share_of(grown, gone);
        PROPF(abs_d(in - s_in) <= 6 * sqrt_d(s_in / KEYS) + 1e-3,
              "moved %.4f, share %.4f", in, s_in);
        double out = (double)moved_out / KEYS;
        PROPF(abs_d(out - s_out) <= 6 * sqrt_d(s_out / KEYS) + 1e-3,
              "moved %.4f, share %.4f", out, s_out);
        herd_ring_free(shrunk);
        herd_ring_free(grown);
        herd_ring_free(old);
    }
}

/* Index of r's owner of h among the diff's (sorted) names; HERD_RING_NONE when r is
 * empty. */
static uint32_t diff_owner(const herd_ring_diff_t *d, const herd_ring_t *r, uint64_t h)
{
    const char *o;
    int rc = herd_ring_owner_of_hash(r, h, &o);
    if (rc == HERD_EEMPTY) return HERD_RING_NONE;
    PROP(rc == 0);
    size_t lo = 0, hi = d->name_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(d->names[mid], o);
        if (cmp == 0) return (uint32_t)mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    PROPF(0, "owner %s missing from the diff's names", o);
    return HERD_RING_NONE;
}

/* The move holding h, or NULL. */
static const herd_ring_move_t *diff_find(const herd_ring_diff_t *d, uint64_t h)
{
    size_t lo = 0, hi = d->move_count;
    while (lo < hi) { /* first move with hi >= h */
        size_t mid = lo + (hi - lo) / 2;
        if (d->moves[mid].hi < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < d->move_count && d->moves[lo].lo <= h) return &d->moves[lo];
    return NULL;
}

/* h is in a move from the old owner to the new one iff its owner changed. */
static void diff_probe(const herd_ring_diff_t *d, const herd_ring_t *old,
                       const herd_ring_t *new_ring, uint64_t h)
{
    uint32_t from = diff_owner(d, old, h), to = diff_owner(d, new_ring, h);
    const herd_ring_move_t *mv = diff_find(d, h);
    if (from == to)
        PROPF(mv == NULL, "hash %016llx keeps its owner but is in a move",
              (unsigned long long)h);
    else
        PROPF(mv != NULL && mv->from == from && mv->to == to,
              "hash %016llx: owner %u -> %u, move %s", (unsigned long long)h, from, to,
              mv ? "with other names" : "missing");
}

static double arc(uint64_t lo, uint64_t hi)
{
    return ((double)(hi - lo) + 1.0) / 18446744073709551616.0;
}

static void diff_check_shape(const herd_ring_diff_t *d, const herd_ring_t *old,
                             const herd_ring_t *new_ring)
{
    PROP(d->name_count >= herd_ring_member_count(old) &&
         d->name_count >= herd_ring_member_count(new_ring));
    PROP(d->name_count <= herd_ring_member_count(old) + herd_ring_member_count(new_ring));
    for (size_t i = 1; i < d->name_count; i++)
        PROP(strcmp(d->names[i - 1], d->names[i]) < 0);
    for (size_t i = 0; i < herd_ring_member_count(old) + herd_ring_member_count(new_ring); i++) {
        herd_ring_member_info_t info;
        const herd_ring_t *r = i < herd_ring_member_count(old) ? old : new_ring;
        size_t at = i < herd_ring_member_count(old) ? i : i - herd_ring_member_count(old);
        PROP(herd_ring_member_at(r, at, &info) == 0);
        int found = 0;
        for (size_t j = 0; j < d->name_count && !found; j++)
            found = strcmp(d->names[j], info.name) == 0;
        PROP(found);
    }
    double sum = 0;
    for (size_t i = 0; i < d->move_count; i++) {
        const herd_ring_move_t *mv = &d->moves[i];
        PROP(mv->lo <= mv->hi && mv->from != mv->to);
        PROP(mv->from == HERD_RING_NONE || mv->from < d->name_count);
        PROP(mv->to == HERD_RING_NONE || mv->to < d->name_count);
        if (i > 0) {
            const herd_ring_move_t *p = &d->moves[i - 1];
            PROP(p->hi < mv->lo);
            PROP(!(p->hi + 1 == mv->lo && p->from == mv->from && p->to == mv->to));
        }
        sum += arc(mv->lo, mv->hi);
    }
    PROPF(abs_d(sum - d->moved_share) < 1e-12, "moves sum %.15f, moved_share %.15f", sum,
          d->moved_share);
    double tsum = 0;
    for (size_t t = 0; t < d->total_count; t++) {
        const herd_ring_move_total_t *tot = &d->totals[t];
        if (t > 0)
            PROP(d->totals[t - 1].from < tot->from ||
                 (d->totals[t - 1].from == tot->from && d->totals[t - 1].to < tot->to));
        double s = 0;
        for (size_t i = 0; i < d->move_count; i++)
            if (d->moves[i].from == tot->from && d->moves[i].to == tot->to)
                s += arc(d->moves[i].lo, d->moves[i].hi);
        PROP(s > 0 && abs_d(s - tot->share) < 1e-12);
        tsum += tot->share;
    }
    PROP(abs_d(tsum - d->moved_share) < 1e-12);
    PROP(d->moved_share >= 0 && d->moved_share <= 1 + 1e-12);
}

/* ring_diff against brute force: exact at every place the answer could change,
 * and its moved share against the fraction of random hashes that moved. */
static void test_ring_prop_diff_matches_brute_force(void **state)
{
    (void)state;
    enum { HASHES = 20000 };
    for (unsigned c = 0; c < 30; c++) {
        rng_t g = seed_case("diff", 0xd1ffb2u, c);
        mset_t m;
        size_t n = c % 10 == 1 ? 0 : some_members(&g, c); /* old ring sometimes empty */
        mset_gen(&g, &m, n, any_style(&g), 1, 512);
        herd_ring_t *old = ring_from(&m);
        herd_ring_t *new_ring = herd_ring_clone(old);
        PROP(new_ring != NULL);
        /* 1..4 changes, each to a member no earlier change touched, so none
         * undoes another and the rings always differ. Removing the last
         * member is allowed: then every move goes to HERD_RING_NONE. */
        unsigned char touched[MAX_MEMBERS] = {0};
        unsigned ops = rng_range(&g, 1, 4);
        for (unsigned k = 0; k < ops && m.n < MAX_MEMBERS; k++) {
            uint32_t op = rng_below(&g, 3);
            size_t victim = n;
            for (int tries = 0; op != 0 && n > 0 && tries < 8 && victim == n; tries++) {
                size_t i = rng_below(&g, (uint32_t)n);
                if (!touched[i]) victim = i;
            }
            if (victim == n) {
                size_t i = mset_push(&g, &m, NAMES_ANY, rng_range(&g, 1, 512));
                touched[i] = 1;
                PROP(herd_ring_add(new_ring, m.name[i], m.weight[i]) == 0);
            } else if (op == 1) {
                touched[victim] = 1;
                PROP(herd_ring_remove(new_ring, m.name[victim]) == 0);
            } else {
                touched[victim] = 1;
                uint32_t w = rng_range(&g, 1, 511);
                w += w >= m.weight[victim]; /* any weight but the one it has */
                PROP(herd_ring_set_weight(new_ring, m.name[victim], w) == 0);
            }
        }
        herd_ring_diff_t d;
        PROP(herd_ring_compare(old, new_ring, &d) == 0);
        diff_check_shape(&d, old, new_ring);
        if (herd_ring_member_count(old) == 0)
            for (size_t i = 0; i < d.move_count; i++)
                PROP(d.moves[i].from == HERD_RING_NONE);

        /* Owners are constant between consecutive probes below, so probing every
         * point of both rings, both sides of it and both ends of every move
         * checks the whole circle. */
        static const uint64_t ends[] = {0, UINT64_MAX};
        for (size_t i = 0; i < 2; i++)
            diff_probe(&d, old, new_ring, ends[i]);
        const herd_ring_t *both[2] = {old, new_ring};
        for (int w = 0; w < 2; w++) {
            for (size_t i = 0; i < herd_ring_point_count(both[w]); i++) {
                uint64_t h;
                const char *o;
                PROP(herd_ring_point_at(both[w], i, &h, &o) == 0);
                diff_probe(&d, old, new_ring, h);
                diff_probe(&d, old, new_ring, h + 1);
            }
        }
        for (size_t i = 0; i < d.move_count; i++) {
            diff_probe(&d, old, new_ring, d.moves[i].lo);
            diff_probe(&d, old, new_ring, d.moves[i].lo - 1);
            diff_probe(&d, old, new_ring, d.moves[i].hi);
            diff_probe(&d, old, new_ring, d.moves[i].hi + 1);
        }
        size_t changed = 0;
        for (size_t k = 0; k < HASHES; k++) {
            uint64_t h = rng_next(&g);
            diff_probe(&d, old, new_ring, h);
            changed += diff_owner(&d, old, h) != diff_owner(&d, new_ring, h);
        }
        double frac = (double)changed / HASHES, ms = d.moved_share;
        PROPF(abs_d(frac - ms) <= 5 * sqrt_d(ms * (1 - ms) / HASHES) + 1e-3,
              "%.4f of hashes moved, moved_share %.4f", frac, ms);
        herd_ring_diff_free(&d);
        herd_ring_free(new_ring);
        herd_ring_free(old);
    }
}

/* owners(key, n): distinct, led by the owner, min(n, members) long, the same on a
 * ring rebuilt in another order, and each list a prefix of the next. */
static void test_ring_prop_owners_list(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 30; c++) {
        rng_t g = seed_case("owners", 0x0e4e25u, c);
        mset_t m;
        mset_gen(&g, &m, some_members(&g, c), any_style(&g), 1, 512);
        if (c % 3 == 0) mset_add_tie_pair(&g, &m);
        herd_ring_t *a = ring_from(&m);
        herd_ring_t *b = herd_ring_new();
        PROP(b != NULL);
        for (size_t i = m.n; i-- > 0;)
            PROP(herd_ring_add(b, m.name[i], m.weight[i]) == 0);
        size_t npts;
        refpt_t *ref = ref_build(&m, &npts);
        const size_t members = m.n;

        for (int k = 0; k < 300; k++) {
            uint64_t key = rng_next(&g);
            /* The whole list walks most of the ring, so only a few keys ask for it. */
            size_t cap = members + 1 < 8 ? members + 1 : 8;
            size_t n = k < 8 ? members + 1 : rng_range(&g, 1, (uint32_t)cap);
            size_t want = n < members ? n : members;
            size_t want1 = n + 1 < members ? n + 1 : members;
            const char *next[MAX_MEMBERS + 2], *part[MAX_MEMBERS + 2];
            const char *other[MAX_MEMBERS + 2], *walk[MAX_MEMBERS + 2];
            PROP(herd_ring_owners(a, &key, sizeof key, next, n + 1) == (int)want1);
            PROP(herd_ring_owners(a, &key, sizeof key, part, n) == (int)want);
            PROP(herd_ring_owners(b, &key, sizeof key, other, n) == (int)want);
            /* distinct, and the first is the owner */
            for (size_t i = 0; i < want1; i++)
                for (size_t j = 0; j < i; j++)
                    PROP(strcmp(next[i], next[j]) != 0);
            PROP(strcmp(next[0], owner_k(a, key)) == 0);
            /* owners(n) is a prefix of owners(n + 1), and the same on the ring
             * built in reverse order */
            for (size_t i = 0; i < want; i++) {
                PROP(strcmp(part[i], next[i]) == 0);
                PROP(strcmp(other[i], next[i]) == 0);
            }
            /* the reference: distinct owners of the points clockwise */
            size_t at = ref_successor(ref, npts, XXH3_64bits(&key, sizeof key)), seen = 0;
            unsigned char taken[MAX_MEMBERS] = {0};
            for (size_t step = 0; step < npts && seen < want1; step++) {
                const refpt_t *p = &ref[(at + step) % npts];
                if (!taken[p->member]) {
                    taken[p->member] = 1;
                    walk[seen++] = p->name;
                }
            }
            PROP(seen == want1);
            for (size_t i = 0; i < want1; i++)
                PROPF(strcmp(walk[i], next[i]) == 0, "owner %zu: %s vs reference %s", i,
                      next[i], walk[i]);
        }
        free(ref);
        herd_ring_free(b);
        herd_ring_free(a);
    }
}

/* Shares: sum to 1, equal the arcs of the reference, match the keys a member
 * really gets, and follow weights. */
static void test_ring_prop_shares_follow_weights(void **state)
{
    (void)state;
    enum { KEYS = 20000 };
    for (unsigned c = 0; c < 60; c++) {
        rng_t g = seed_case("shares", 0x5a4e5u, c);
        mset_t m;
        mset_gen(&g, &m, some_members(&g, c), any_style(&g), 1, 512);
        if (c % 3 == 0) mset_add_tie_pair(&g, &m);
        herd_ring_t *r = ring_from(&m);
        size_t npts;
        refpt_t *ref = ref_build(&m, &npts);
        /* reference shares: point i owns (point i-1, point i] */
        long double want[MAX_MEMBERS] = {0};
        for (size_t i = 0; i < npts; i++) {
            uint64_t w = ref[i].hash - ref[i == 0 ? npts - 1 : i - 1].hash;
            want[ref[i].member] += npts == 1 ? 18446744073709551616.0L : (long double)w;
        }
        size_t hits[MAX_MEMBERS] = {0};
        for (size_t k = 0; k < KEYS; k++) {
            hits[mset_index(&m, owner_k(r, rng_next(&g)))]++;
        }
        double sum = 0;
        for (size_t i = 0; i < m.n; i++) {
            double s = share_of(r, m.name[i]);
            /* 1 + 1e-12: rounding can lift a lone member just over 1, pinned in
             * test_ring_single_member_share_is_exactly_one */
            PROPF(s >= 0 && s <= 1 + 1e-12, "%s: share %.17g", m.name[i], s);
            double ws = (double)(want[i] / 18446744073709551616.0L);
            PROPF(abs_d(s - ws) < 1e-9, "%s: share %.12f, arcs %.12f", m.name[i], s, ws);
            double f = (double)hits[i] / KEYS;
            PROPF(abs_d(f - s) <= 5 * sqrt_d(s * (1 - s) / KEYS) + 1e-4,
                  "%s: %.4f of keys, share %.4f", m.name[i], f, s);
            sum += s;
        }
        PROPF(abs_d(sum - 1.0) < 1e-9, "shares sum to %.15f", sum);
        free(ref);
        herd_ring_free(r);
    }

    /* Weight 256 against 128: about twice the share, on average over seeds. */
    double heavy = 0, light = 0;
    for (unsigned c = 0; c < 50; c++) {
        rng_t g = seed_case("weights 128 vs 256", 0x128256u, c);
        mset_t m;
        m.n = 0;
        for (int i = 0; i < 8; i++)
            mset_push(&g, &m, NAMES_LONG, i % 2 ? 256 : 128);
        herd_ring_t *r = ring_from(&m);
        double h = 0, l = 0;
        for (size_t i = 0; i < m.n; i++)
            *(m.weight[i] == 256 ? &h : &l) += share_of(r, m.name[i]);
        PROPF(h > l, "heavy %.4f, light %.4f", h, l);
        heavy += h;
        light += l;
        herd_ring_free(r);
    }
    g_seed = 0x128256u;
    PROPF(heavy / light > 1.8 && heavy / light < 2.2, "heavy/light share ratio %.4f",
          heavy / light);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_prop_insertion_order_irrelevant),
        cmocka_unit_test(test_ring_prop_matches_reference),
        cmocka_unit_test(test_ring_prop_add_remove_moves_only_own_keys),
        cmocka_unit_test(test_ring_prop_diff_matches_brute_force),
        cmocka_unit_test(test_ring_prop_owners_list),
        cmocka_unit_test(test_ring_prop_shares_follow_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
