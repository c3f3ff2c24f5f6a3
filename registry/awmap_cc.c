/*
 * awmap_cc.c - the add-wins map's replica table and causal context (see
 * awmap.h, awmap_int.h): replicas interned by id through a hash index, per
 * replica a version vector entry and a sorted cloud, and the context copies
 * the registry's sync ships.
 */
#include "awmap_int.h"

#include <stdlib.h>
#include <string.h>

typedef awmap_replica_st_t replica_t;

#define replica_find awmap__replica_find
#define cc_has awmap__cc_has
#define cc_add awmap__cc_add

static uint32_t replica_hash(awmap_replica_id_t id)
{
    uint64_t z = id.node * 0x9e3779b97f4a7c15ull ^ id.incarnation * 0xc2b2ae3d27d4eb4full;
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ull;
    return (uint32_t)(z ^ (z >> 32));
}

static int replica_is(const replica_t *r, awmap_replica_id_t id)
{
    return r->id.node == id.node && r->id.incarnation == id.incarnation;
}

/* The index slot of `id`: its own, or the empty one where it would go. */
static uint32_t rindex_slot(const awmap_t *m, awmap_replica_id_t id)
{
    uint32_t s = replica_hash(id) & m->rindex_mask;
    while (m->rindex[s] && !replica_is(&m->replicas[m->rindex[s] - 1], id))
        s = (s + 1) & m->rindex_mask;
    return s;
}

long awmap__replica_find(const awmap_t *m, awmap_replica_id_t id)
{
    if (m->rindex == NULL)
        return -1;
    uint32_t v = m->rindex[rindex_slot(m, id)];
    return v ? (long)v - 1 : -1;
}

/* Room in the table and its index for one more replica (nothing else
 * changes, so a failure leaves the map as it was). */
static int replica_reserve(awmap_t *m)
{
    if (m->replica_n == m->replica_cap) {
        uint32_t cap = m->replica_cap ? m->replica_cap * 2 : 4;
        replica_t *r = realloc(m->replicas, cap * sizeof(*r));
        if (r == NULL)
            return HERD_ENOMEM;
        m->replicas = r;
        m->replica_cap = cap;
    }
    uint32_t slots = m->rindex ? m->rindex_mask + 1 : 0;
    if ((m->replica_n + 1) * 2 <= slots)
        return 0;
    uint32_t ns = slots ? slots * 2 : 8;
    uint32_t *ix = calloc(ns, sizeof(*ix));
    if (ix == NULL)
        return HERD_ENOMEM;
    free(m->rindex);
    m->rindex = ix;
    m->rindex_mask = ns - 1;
    for (uint32_t i = 0; i < m->replica_n; i++)
        m->rindex[rindex_slot(m, m->replicas[i].id)] = i + 1;
    return 0;
}

int awmap_replica(awmap_t *m, awmap_replica_id_t id, uint32_t *index)
{
    long i = awmap__replica_find(m, id);
    if (i >= 0) {
        *index = (uint32_t)i;
        return 0;
    }
    if (m->pruned_n == 0 && m->replica_n >= AWMAP_REPLICAS_MAX)
        return HERD_ENOMEM; /* a dot names its replica in 16 bits */
    if (replica_reserve(m) != 0)
        return HERD_ENOMEM;
    uint32_t at = m->replica_n;
    if (m->pruned_n) { /* a free slot first: the table does not grow with restarts */
        for (at = 0; !m->replicas[at].pruned; at++)
            ;
        m->pruned_n--;
    } else {
        m->replica_n++;
    }
    m->replicas[at] = (replica_t){.id = id};
    m->rindex[rindex_slot(m, id)] = at + 1;
    *index = at;
    return 0;
}

awmap_replica_id_t awmap_replica_id(const awmap_t *m, uint32_t index)
{
    return index < m->replica_n && !m->replicas[index].pruned ? m->replicas[index].id
                                                               : (awmap_replica_id_t){0, 0};
}

size_t awmap_replica_count(const awmap_t *m)
{
    return m->replica_n - m->pruned_n;
}

int awmap_prune_replica(awmap_t *m, awmap_replica_id_t id)
{
    long i = replica_find(m, id);
    if (i < 0)
        return HERD_ENOENT;
    replica_t *r = &m->replicas[i];
    if (r->held)
        return HERD_EBUSY;
    free(r->cloud);
    *r = (replica_t){.pruned = 1};
    m->pruned_n++;
    /* rebuild the index without it (open addressing has no cheap delete;
     * pruning is rare and the table small) */
    memset(m->rindex, 0, (m->rindex_mask + 1) * sizeof(*m->rindex));
    for (uint32_t k = 0; k < m->replica_n; k++)
        if (!m->replicas[k].pruned)
            m->rindex[rindex_slot(m, m->replicas[k].id)] = k + 1;
    return 0;
}

int awmap_foreach_replica(const awmap_t *m, awmap_replica_fn fn, void *data)
{
    for (uint32_t i = 0; i < m->replica_n; i++) {
        const replica_t *r = &m->replicas[i];
        if (r->pruned)
            continue;
        int rc = fn(data, r->id, r->vv, r->cloud_n, r->held);
        if (rc)
            return rc;
    }
    return 0;
}

static int cloud_find(const replica_t *r, uint64_t c, uint32_t *at)
{
    /* a delta's context is one run of a writer's counters, all in the
     * cloud (the run starts above 1): where it is dense, c sits at c -
     * cloud[0], and the search is one look */
    if (r->cloud_n && c >= r->cloud[0] && c - r->cloud[0] < r->cloud_n &&
        r->cloud[c - r->cloud[0]] == c) {
        *at = (uint32_t)(c - r->cloud[0]);
        return 1;
    }
    uint32_t lo = 0, hi = r->cloud_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->cloud[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return lo < r->cloud_n && r->cloud[lo] == c;
}

int awmap__cc_has(const replica_t *r, uint64_t c)
{
    uint32_t at;
    return c <= r->vv || cloud_find(r, c, &at);
}

/* Fold the cloud into the vector while it continues it. */
static void cc_fold(replica_t *r)
{
    uint32_t k = 0;
    while (k < r->cloud_n && r->cloud[k] <= r->vv + 1) {
        if (r->cloud[k] == r->vv + 1)
            r->vv++;
        k++;
    }
    if (k) {
        memmove(r->cloud, r->cloud + k, (r->cloud_n - k) * sizeof(uint64_t));
        r->cloud_n -= k;
    }
}

/* Room in r's cloud for c, if c would go there: then adding c cannot fail. */
int awmap__cc_reserve(replica_t *r, uint64_t c)
{
    uint32_t at;
    if (c <= r->vv + 1 || r->cloud_n < r->cloud_cap || cloud_find(r, c, &at))
        return 0;
    uint32_t cap = r->cloud_cap ? r->cloud_cap * 2 : 4;
    uint64_t *cl = realloc(r->cloud, cap * sizeof(*cl));
    if (cl == NULL)
        return HERD_ENOMEM;
    r->cloud = cl;
    r->cloud_cap = cap;
    return 0;
}

int awmap__cc_add(replica_t *r, uint64_t c)
{
    uint32_t at;
    if (c <= r->vv)
        return 0;
    if (c == r->vv + 1) { /* the common case: a writer's next dot */
        r->vv++;
        if (r->cloud_n)
            cc_fold(r);
        return 0;
    }
    if (cloud_find(r, c, &at))
        return 0;
    if (awmap__cc_reserve(r, c) != 0)
        return HERD_ENOMEM;
    memmove(r->cloud + at + 1, r->cloud + at, (r->cloud_n - at) * sizeof(uint64_t));
    r->cloud[at] = c;
    r->cloud_n++;
    return 0;
}

/* Every counter up to vv is seen: drop the cloud below it and fold. */
static void cc_raise(replica_t *r, uint64_t vv)
{
    if (vv <= r->vv)
        return;
    r->vv = vv;
    uint32_t keep = 0;
    for (uint32_t k = 0; k < r->cloud_n; k++)
        if (r->cloud[k] > r->vv)
            r->cloud[keep++] = r->cloud[k];
    r->cloud_n = keep;
    cc_fold(r);
}

int awmap_seen(const awmap_t *m, awmap_replica_id_t id, uint64_t counter)
{
    if (counter == 0)
        return 0; /* no dot has counter 0 */
    long i = replica_find(m, id);
    return i >= 0 && cc_has(&m->replicas[i], counter);
}

uint64_t awmap_vv(const awmap_t *m, awmap_replica_id_t id, size_t *cloud)
{
    long i = replica_find(m, id);
    if (cloud)
        *cloud = i >= 0 ? m->replicas[i].cloud_n : 0;
    return i >= 0 ? m->replicas[i].vv : 0;
}

int awmap_copy_context(awmap_t *dst, const awmap_t *src)
{
    return awmap_copy_context_bounded(dst, src, SIZE_MAX, NULL);
}

/* Add the sorted counters c[0..n) to r's context. A few go in one by one;
 * more are merged with the cloud in one pass (a node that joins takes in
 * pieces whose clouds are scattered counters of a large range: inserting
 * each would move half the growing cloud every time). */
static int cc_merge(replica_t *r, const uint64_t *c, size_t n)
{
    if (n <= 16) { /* a delta's few dots: no allocation */
        for (size_t k = 0; k < n; k++)
            if (cc_add(r, c[k]) != 0)
                return HERD_ENOMEM;
        return 0;
    }
    size_t cap = r->cloud_n + n;
    uint64_t *out = cap <= UINT32_MAX ? malloc(cap * sizeof(*out)) : NULL;
    if (out == NULL)
        return HERD_ENOMEM;
    size_t a = 0, b = 0, k = 0;
    while (a < r->cloud_n || b < n) {
        uint64_t x;
        if (b == n || (a < r->cloud_n && r->cloud[a] <= c[b]))
            x = r->cloud[a++];
        else
            x = c[b++];
        if (x > r->vv && (k == 0 || out[k - 1] != x))
            out[k++] = x;
    }
    free(r->cloud);
    r->cloud = out;
    r->cloud_n = (uint32_t)k;
    r->cloud_cap = (uint32_t)cap;
    cc_fold(r);
    return 0;
}

/* dst's replica of sr's node start (added if new), its version vector entry
 * raised to sr's; NULL on ENOMEM. */
static replica_t *replica_with_vv(awmap_t *dst, const replica_t *sr)
{
    uint32_t idx;
    if (awmap_replica(dst, sr->id, &idx) != 0)
        return NULL;
    cc_raise(&dst->replicas[idx], sr->vv);
    return &dst->replicas[idx];
}

int awmap_copy_context_bounded(awmap_t *dst, const awmap_t *src, size_t max_cloud,
                               int *trimmed)
{
    size_t left = max_cloud;
    if (trimmed)
        *trimmed = 0;
    for (uint32_t i = 0; i < src->replica_n; i++) {
        const replica_t *sr = &src->replicas[i];
        replica_t *r;
        if (sr->pruned)
            continue;
        if ((r = replica_with_vv(dst, sr)) == NULL)
            return HERD_ENOMEM;
        size_t take = sr->cloud_n < left ? sr->cloud_n : left;
        if (take < sr->cloud_n && trimmed)
            *trimmed = 1;
        if (cc_merge(r, sr->cloud, take) != 0)
            return HERD_ENOMEM;
        left -= take;
    }
    return 0;
}

int awmap_copy_context_part(awmap_t *dst, const awmap_t *src, uint32_t *replica, uint32_t *at,
                            size_t max_cloud)
{
    for (; *replica < src->replica_n; (*replica)++, *at = 0) {
        const replica_t *sr = &src->replicas[*replica];
        replica_t *r;
        if (sr->pruned)
            continue;
        if ((r = replica_with_vv(dst, sr)) == NULL)
            return HERD_ENOMEM;
        for (; *at < sr->cloud_n; (*at)++) {
            if (max_cloud == 0)
                return 0;
            if (cc_add(r, sr->cloud[*at]) != 0)
                return HERD_ENOMEM;
            max_cloud--;
        }
    }
    return 1;
}

void awmap_cloud_stats(const awmap_t *m, uint64_t *total, uint64_t *largest)
{
    uint64_t t = 0, l = 0;
    for (uint32_t i = 0; i < m->replica_n; i++) {
        t += m->replicas[i].cloud_n;
        if (m->replicas[i].cloud_n > l)
            l = m->replicas[i].cloud_n;
    }
    if (total)
        *total = t;
    if (largest)
        *largest = l;
}

int awmap__cc_within(const awmap_t *a, const awmap_t *b)
{
    for (uint32_t i = 0; i < a->replica_n; i++) {
        const replica_t *ra = &a->replicas[i];
        long bi = replica_find(b, ra->id);
        if (ra->vv == 0 && ra->cloud_n == 0)
            continue;
        if (bi < 0)
            return 0;
        const replica_t *rb = &b->replicas[bi];
        if (ra->vv != rb->vv || ra->cloud_n != rb->cloud_n ||
            (ra->cloud_n && memcmp(ra->cloud, rb->cloud, ra->cloud_n * sizeof(uint64_t))))
            return 0;
    }
    return 1;
}

