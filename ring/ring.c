/*
 * ring.c - the consistent hash ring (see ring.h for the placement rules).
 *
 * How it works
 * ------------
 * Members are kept sorted by name, so a member's index is its rank by name and
 * the same member set always yields the same indices. Points live in one array of
 * {hash, owner index}, sorted by (hash, owner index), which is (hash, member
 * name): that array *is* the ring, and it is a function of the member set alone.
 *
 * A lookup must find the first point >= h. A binary search over 16k points costs
 * ~14 dependent cache misses, so the ring also keeps a top-bits index: the key
 * space is cut into 2^k equal buckets (k chosen so there are at least two
 * buckets per point), and bucket b records the first point whose hash is in
 * bucket b or later. Most buckets hold no point at all; for those the answer
 * is already known and stored in the bucket (one memory access per lookup).
 * Otherwise the lookup scans the bucket's few points, which share a cache line
 * or two. Both paths give exactly the answers of the sorted array.
 *
 * An add merges the new member's sorted points into the array and a remove
 * filters its points out, both in one pass; a weight change rebuilds. The
 * index and shares are recomputed after every change. Changes are rare
 * (membership events); lookups are the hot path.
 */
#include "herd_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define RING_MIN_INDEX_BITS 8u
#define RING_MAX_INDEX_BITS 24u
#define RING_SCAN UINT32_MAX /* bucket holds points: scan them */

typedef struct ring_point {
    uint64_t hash;
    uint32_t owner; /* member index */
    uint32_t reserved;
} ring_point_t;

typedef struct ring_bucket {
    uint32_t first; /* first point in this bucket or later (== count: wrap) */
    uint32_t owner; /* owner when the bucket holds no point, else RING_SCAN */
} ring_bucket_t;

typedef struct ring_member {
    char name[HERD_RING_NAME_MAX + 1];
    uint32_t weight;
    double share;
} ring_member_t;

struct herd_ring {
    ring_member_t *members; /* sorted by name */
    uint32_t member_count;
    uint32_t member_cap;
    ring_point_t *points; /* sorted by (hash, owner) */
    uint32_t point_count;
    ring_bucket_t *buckets; /* 2^index_bits + 1 entries; the last is a sentinel */
    unsigned index_bits;
};

uint64_t herd_ring_hash_key(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/* Point `index` of member `name`: XXH3 of the bytes name, NUL, index as 4
 * bytes little-endian. Names hold no NUL, so distinct (name, index) pairs are
 * distinct inputs. (Not the index as XXH3's seed: for inputs under 17 bytes
 * XXH3 folds the seed into the input by add and xor, so short names such as
 * "db1" and "db2" would share most of their points.) */
static uint64_t ring_point_hash(const char *name, uint32_t index)
{
    uint8_t buf[HERD_RING_NAME_MAX + 5];
    size_t len = strlen(name);
    memcpy(buf, name, len);
    buf[len] = 0;
    buf[len + 1] = (uint8_t)index;
    buf[len + 2] = (uint8_t)(index >> 8);
    buf[len + 3] = (uint8_t)(index >> 16);
    buf[len + 4] = (uint8_t)(index >> 24);
    return XXH3_64bits(buf, len + 5);
}

int herd_ring_check_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return HERD_EBADNAME;
    size_t len = strnlen(name, HERD_RING_NAME_MAX + 1);
    if (len > HERD_RING_NAME_MAX)
        return HERD_ENAMETOOLONG;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok)
            return HERD_EBADNAME;
    }
    return 0;
}

static int ring_check_weight(uint32_t weight)
{
    return (weight == 0 || weight > HERD_RING_MAX_WEIGHT) ? HERD_ERANGE : 0;
}

herd_ring_t *herd_ring_new(void)
{
    return calloc(1, sizeof(herd_ring_t));
}

void herd_ring_free(herd_ring_t *r)
{
    if (r == NULL)
        return;
    free(r->members);
    free(r->points);
    free(r->buckets);
    free(r);
}

herd_ring_t *herd_ring_clone(const herd_ring_t *r)
{
    herd_ring_t *c = herd_ring_new();
    if (c == NULL)
        return NULL;
    size_t mbytes = (size_t)r->member_count * sizeof(ring_member_t);
    size_t pbytes = (size_t)r->point_count * sizeof(ring_point_t);
    size_t bbytes = r->buckets ? (((size_t)1 << r->index_bits) + 1) * sizeof(ring_bucket_t)
                               : 0;
    c->members = mbytes ? malloc(mbytes) : NULL;
    c->points = pbytes ? malloc(pbytes) : NULL;
    c->buckets = bbytes ? malloc(bbytes) : NULL;
    if ((mbytes && !c->members) || (pbytes && !c->points) || (bbytes && !c->buckets)) {
        herd_ring_free(c);
        return NULL;
    }
    if (mbytes)
        memcpy(c->members, r->members, mbytes);
    if (pbytes)
        memcpy(c->points, r->points, pbytes);
    if (bbytes)
        memcpy(c->buckets, r->buckets, bbytes);
    c->member_count = c->member_cap = r->member_count;
    c->point_count = r->point_count;
    c->index_bits = r->index_bits;
    return c;
}

/* Binary search by name: returns the index of `name`, or -(insertion point) - 1. */
static long ring_member_search(const herd_ring_t *r, const char *name)
{
    size_t lo = 0, hi = r->member_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->members[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static int ring_point_cmp(const void *a, const void *b)
{
    const ring_point_t *pa = a, *pb = b;
    if (pa->hash != pb->hash)
        return pa->hash < pb->hash ? -1 : 1;
    return (pa->owner > pb->owner) - (pa->owner < pb->owner);
}

static unsigned ring_index_bits_for(uint32_t points)
{
    unsigned bits = RING_MIN_INDEX_BITS;
    while (bits < RING_MAX_INDEX_BITS && ((uint64_t)1 << bits) < 2ull * points)
        bits++;
    return bits;
}

static void ring_fill_buckets(herd_ring_t *r)
{
    size_t nbuckets = (size_t)1 << r->index_bits;
    unsigned shift = 64 - r->index_bits;
    uint32_t p = 0;
    for (size_t b = 0; b <= nbuckets; b++) {
        while (p < r->point_count && (b == nbuckets || (r->points[p].hash >> shift) < b))
            p++;
        r->buckets[b].first = p;
    }
    for (size_t b = 0; b < nbuckets; b++) {
        uint32_t first = r->buckets[b].first;
        int empty = first == r->buckets[b + 1].first;
        uint32_t next = first == r->point_count ? 0 : first;
        r->buckets[b].owner = empty ? r->points[next].owner : RING_SCAN;
    }
    r->buckets[nbuckets].owner = RING_SCAN;
}

/* Each point owns the arc (previous point, point]; point 0 owns the arc that
 * wraps past the top. Arcs are summed exactly, in 128 bits, so a member that
 * owns every arc has share 1.0 exactly. */
__extension__ typedef unsigned __int128 ring_u128;

/* `owned`: zeroed scratch of member_count entries, freed here. */
static void ring_fill_shares(herd_ring_t *r, ring_u128 *owned)
{
    for (uint32_t i = 0; i < r->point_count; i++) {
        uint64_t prev = r->points[i == 0 ? r->point_count - 1 : i - 1].hash;
        ring_u128 width = (uint64_t)(r->points[i].hash - prev); /* mod 2^64 */
        if (i == 0 && width == 0) /* every point at one hash: point 0 owns all */
            width = (ring_u128)1 << 64;
        owned[r->points[i].owner] += width;
    }
    for (uint32_t m = 0; m < r->member_count; m++)
        r->members[m].share = (double)owned[m] / 18446744073709551616.0; /* 2^64 */
    free(owned);
}

/* Make `points` (n of them, sorted) the ring's, with a fresh index and shares.
 * Takes `points`; on HERD_ENOMEM frees it and leaves the ring as it was. */
static int ring_install(herd_ring_t *r, ring_point_t *points, uint32_t n)
{
    unsigned bits = ring_index_bits_for(n);
    ring_bucket_t *buckets = n ? malloc((((size_t)1 << bits) + 1) * sizeof(*buckets)) : NULL;
    ring_u128 *owned = calloc(r->member_count + 1, sizeof(*owned));
    if ((n && buckets == NULL) || owned == NULL) {
        free(points);
        free(buckets);
        free(owned);
        return HERD_ENOMEM;
    }
    free(r->points);
    free(r->buckets);
    r->points = points;
    r->buckets = buckets;
    r->point_count = n;
    r->index_bits = bits;
    if (n)
        ring_fill_buckets(r);
    ring_fill_shares(r, owned);
    return 0;
}

/* Recompute every point from the member list (a weight change). */
static int ring_rebuild(herd_ring_t *r)
{
    uint32_t total = 0;
    for (uint32_t m = 0; m < r->member_count; m++)
        total += r->members[m].weight;
    ring_point_t *points = total ? malloc((size_t)total * sizeof(*points)) : NULL;
    if (total && points == NULL)
        return HERD_ENOMEM;
    uint32_t n = 0;
    for (uint32_t m = 0; m < r->member_count; m++)
        for (uint32_t i = 0; i < r->members[m].weight; i++)
            points[n++] = (ring_point_t){ring_point_hash(r->members[m].name, i), m, 0};
    qsort(points, n, sizeof(*points), ring_point_cmp);
    return ring_install(r, points, n);
}

/* The member at index `at` was just inserted: merge its points into the ring.
 * Owners at or above `at` shift up by one, which keeps (hash, owner) order the
 * same as (hash, name) order, so the result equals a full rebuild. */
static int ring_merge_member(herd_ring_t *r, uint32_t at)
{
    uint32_t w = r->members[at].weight, old = r->point_count;
    ring_point_t *mine = malloc((size_t)w * sizeof(*mine));
    ring_point_t *points = malloc(((size_t)old + w) * sizeof(*points));
    if (mine == NULL || points == NULL) {
        free(mine);
        free(points);
        return HERD_ENOMEM;
    }
    for (uint32_t i = 0; i < w; i++)
        mine[i] = (ring_point_t){ring_point_hash(r->members[at].name, i), at, 0};
    qsort(mine, w, sizeof(*mine), ring_point_cmp);
    uint32_t i = 0, j = 0, n = 0;
    while (i < old || j < w) {
        ring_point_t p = i < old ? r->points[i] : mine[0];
        if (i < old && p.owner >= at)
            p.owner++;
        if (j < w && (i == old || ring_point_cmp(&mine[j], &p) < 0)) {
            points[n++] = mine[j++];
        } else {
            points[n++] = p;
            i++;
        }
    }
    free(mine);
    return ring_install(r, points, n);
}

/* The member at index `at`, of `weight` points, has just left the member list:
 * drop its points and shift the owners above it down. */
static int ring_drop_member(herd_ring_t *r, uint32_t at, uint32_t weight)
{
    uint32_t n = 0, keep = r->point_count - weight;
    ring_point_t *points = keep ? malloc((size_t)keep * sizeof(*points)) : NULL;
    if (keep && points == NULL)
        return HERD_ENOMEM;
    for (uint32_t i = 0; i < r->point_count; i++) {
        ring_point_t p = r->points[i];
        if (p.owner == at)
            continue;
        if (p.owner > at)
            p.owner--;
        points[n++] = p;
    }
    return ring_install(r, points, n);
}

int herd_ring_add(herd_ring_t *r, const char *name, uint32_t weight)
{
    int rc = herd_ring_check_name(name);
    if (rc == 0)
        rc = ring_check_weight(weight);
    if (rc)
        return rc;
    long pos = ring_member_search(r, name);
    if (pos >= 0)
        return HERD_EEXIST;
    if (r->member_count >= HERD_RING_MAX_MEMBERS)
        return HERD_ERANGE;
    if (r->member_count == r->member_cap) {
        uint32_t cap = r->member_cap ? r->member_cap * 2 : 8;
        ring_member_t *m = realloc(r->members, (size_t)cap * sizeof(*m));
        if (m == NULL)
            return HERD_ENOMEM;
        r->members = m;
        r->member_cap = cap;
    }
    size_t at = (size_t)(-pos - 1);
    memmove(&r->members[at + 1], &r->members[at],
            (r->member_count - at) * sizeof(ring_member_t));
    memset(&r->members[at], 0, sizeof(ring_member_t));
    strcpy(r->members[at].name, name);
    r->members[at].weight = weight;
    r->member_count++;
    rc = ring_merge_member(r, (uint32_t)at);
    if (rc) { /* undo: the old points still describe the old member list */
        r->member_count--;
        memmove(&r->members[at], &r->members[at + 1],
                (r->member_count - at) * sizeof(ring_member_t));
    }
    return rc;
}

static int ring_member_cmp(const void *a, const void *b)
{
    return strcmp(((const ring_member_t *)a)->name, ((const ring_member_t *)b)->name);
}

int herd_ring_add_many(herd_ring_t *r, const char *const *names, const uint32_t *weights, size_t n,
                  size_t *bad)
{
    size_t dummy, total = (size_t)r->member_count + n;
    bad = bad ? bad : &dummy;
    *bad = n;
    for (size_t i = 0; i < n; i++) {
        int rc = herd_ring_check_name(names[i]);
        if (rc == 0)
            rc = ring_check_weight(weights[i]);
        if (rc == 0 && ring_member_search(r, names[i]) >= 0)
            rc = HERD_EEXIST;
        if (rc)
            return *bad = i, rc;
    }
    if (total > HERD_RING_MAX_MEMBERS)
        return HERD_ERANGE;
    ring_member_t *m = malloc((total ? total : 1) * sizeof(*m));
    if (m == NULL)
        return HERD_ENOMEM;
    if (r->member_count)
        memcpy(m, r->members, r->member_count * sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        memset(&m[r->member_count + i], 0, sizeof(*m));
        strcpy(m[r->member_count + i].name, names[i]);
        m[r->member_count + i].weight = weights[i];
    }
    qsort(m, total, sizeof(*m), ring_member_cmp);
    for (size_t i = 1; i < total; i++) {
        if (strcmp(m[i - 1].name, m[i].name) == 0) { /* a name given twice */
            for (size_t j = n; j-- > 0;)
                if (strcmp(names[j], m[i].name) == 0) {
                    *bad = j;
                    break;
                }
            free(m);
            return HERD_EEXIST;
        }
    }
    ring_member_t *old = r->members;
    uint32_t old_count = r->member_count, old_cap = r->member_cap;
    r->members = m;
    r->member_count = r->member_cap = (uint32_t)total;
    int rc = ring_rebuild(r);
    if (rc) {
        free(m);
        r->members = old;
        r->member_count = old_count;
        r->member_cap = old_cap;
        return rc;
    }
    free(old);
    return 0;
}

int herd_ring_remove(herd_ring_t *r, const char *name)
{
    int rc = herd_ring_check_name(name);
    if (rc)
        return rc;
    long pos = ring_member_search(r, name);
    if (pos < 0)
        return HERD_ENOENT;
    ring_member_t saved = r->members[pos];
    memmove(&r->members[pos], &r->members[pos + 1],
            (r->member_count - (size_t)pos - 1) * sizeof(ring_member_t));
    r->member_count--;
    rc = ring_drop_member(r, (uint32_t)pos, saved.weight);
    if (rc) {
        memmove(&r->members[pos + 1], &r->members[pos],
                (r->member_count - (size_t)pos) * sizeof(ring_member_t));
        r->members[pos] = saved;
        r->member_count++;
    }
    return rc;
}

int herd_ring_set_weight(herd_ring_t *r, const char *name, uint32_t weight)
{
    int rc = herd_ring_check_name(name);
    if (rc == 0)
        rc = ring_check_weight(weight);
    if (rc)
        return rc;
    long pos = ring_member_search(r, name);
    if (pos < 0)
        return HERD_ENOENT;
    uint32_t old = r->members[pos].weight;
    if (old == weight)
        return 0;
    r->members[pos].weight = weight;
    rc = ring_rebuild(r);
    if (rc)
        r->members[pos].weight = old;
    return rc;
}

size_t herd_ring_member_count(const herd_ring_t *r)
{
    return r->member_count;
}

size_t herd_ring_point_count(const herd_ring_t *r)
{
    return r->point_count;
}

static void ring_fill_info(const herd_ring_t *r, size_t i, herd_ring_member_info_t *out)
{
    out->name = r->members[i].name;
    out->weight = r->members[i].weight;
    out->points = r->members[i].weight;
    out->share = r->members[i].share;
}

int herd_ring_member_at(const herd_ring_t *r, size_t i, herd_ring_member_info_t *out)
{
    if (i >= r->member_count)
        return HERD_ERANGE;
    ring_fill_info(r, i, out);
    return 0;
}

int herd_ring_member_find(const herd_ring_t *r, const char *name, herd_ring_member_info_t *out)
{
    long pos = name ? ring_member_search(r, name) : -1;
    if (pos < 0)
        return HERD_ENOENT;
    ring_fill_info(r, (size_t)pos, out);
    return 0;
}

int herd_ring_point_at(const herd_ring_t *r, size_t i, uint64_t *hash, const char **owner)
{
    if (i >= r->point_count)
        return HERD_ERANGE;
    *hash = r->points[i].hash;
    *owner = r->members[r->points[i].owner].name;
    return 0;
}

/* Index of the first point >= hash, wrapping to 0. The ring must not be empty. */
static inline uint32_t ring_successor(const herd_ring_t *r, uint64_t hash)
{
    const ring_bucket_t *bk = &r->buckets[hash >> (64 - r->index_bits)];
    uint32_t i = bk->first, end = bk[1].first;
    while (i < end && r->points[i].hash < hash)
        i++;
    return i == r->point_count ? 0 : i;
}

static inline uint32_t ring_owner_index(const herd_ring_t *r, uint64_t hash)
{
    const ring_bucket_t *bk = &r->buckets[hash >> (64 - r->index_bits)];
    if (bk->owner != RING_SCAN)
        return bk->owner;
    return r->points[ring_successor(r, hash)].owner;
}

int herd_ring_owner_of_hash(const herd_ring_t *r, uint64_t hash, const char **owner)
{
    if (r->point_count == 0)
        return HERD_EEMPTY;
    *owner = r->members[ring_owner_index(r, hash)].name;
    return 0;
}

int herd_ring_owner(const herd_ring_t *r, const void *key, size_t len, const char **owner)
{
    if (key == NULL && len > 0)
        return HERD_EINVAL;
    return herd_ring_owner_of_hash(r, herd_ring_hash_key(key, len), owner);
}

int herd_ring_owners(const herd_ring_t *r, const void *key, size_t len, const char **out, size_t n)
{
    if (n == 0 || out == NULL || (key == NULL && len > 0))
        return HERD_EINVAL;
    if (r->point_count == 0)
        return HERD_EEMPTY;
    size_t want = n < r->member_count ? n : r->member_count;
    size_t got = 0;
    uint32_t i = ring_successor(r, herd_ring_hash_key(key, len));
    for (uint32_t step = 0; step < r->point_count && got < want; step++) {
        const char *name = r->members[r->points[i].owner].name;
        size_t k = 0;
        while (k < got && out[k] != name)
            k++;
        if (k == got)
            out[got++] = name;
        i = i + 1 == r->point_count ? 0 : i + 1;
    }
    return (int)got;
}

size_t herd_ring_dump_text(const herd_ring_t *r, char *buf, size_t cap)
{
    size_t need = 0;
    int n = snprintf(buf, cap, "ring members=%u points=%u\nNAME WEIGHT POINTS SHARE\n",
                     r->member_count, r->point_count);
    need += (size_t)n;
    for (uint32_t m = 0; m < r->member_count; m++) {
        char *at = need < cap ? buf + need : NULL;
        size_t room = need < cap ? cap - need : 0;
        n = snprintf(at, room, "%s %u %u %.6f\n", r->members[m].name, r->members[m].weight,
                     r->members[m].weight, r->members[m].share);
        need += (size_t)n;
    }
    return need;
}
