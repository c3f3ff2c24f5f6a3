/*
 * ring_diff.c - which key ranges change owner between two rings.
 *
 * How it works
 * ------------
 * Take every point hash of both rings, sorted and unique: b_0 < ... < b_{m-1}.
 * No point of either ring lies strictly inside an arc (b_{i-1}, b_i], so in each
 * ring every key of that arc has the owner of b_i itself; the arc that wraps past
 * the top, (b_{m-1}, 2^64) + [0, b_0], has the owner of b_0. Comparing the two
 * owners arc by arc gives the exact moved ranges, and the handoff planner only
 * ever touches the names that fall in them.
 */
#include "herd_ring.h"

#include <stdlib.h>
#include <string.h>

typedef struct diff_builder {
    herd_ring_diff_t *d;
    size_t move_cap, total_cap;
} diff_builder_t;

static int diff_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int diff_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static double diff_width(uint64_t lo, uint64_t hi)
{
    return ((double)(hi - lo) + 1.0) / 18446744073709551616.0;
}

static int diff_push_name(herd_ring_diff_t *d, const char *name)
{
    d->names[d->name_count] = strdup(name);
    if (d->names[d->name_count] == NULL)
        return HERD_ENOMEM;
    d->name_count++;
    return 0;
}

/* The sorted union of both rings' member names, copied. */
static int diff_collect_names(const herd_ring_t *a, const herd_ring_t *b, herd_ring_diff_t *d)
{
    size_t na = herd_ring_member_count(a), nb = herd_ring_member_count(b);
    d->names = calloc(na + nb + 1, sizeof(char *));
    if (d->names == NULL)
        return HERD_ENOMEM;
    herd_ring_member_info_t info, in_a;
    int rc = 0;
    for (size_t i = 0; i < na && rc == 0; i++) {
        herd_ring_member_at(a, i, &info);
        rc = diff_push_name(d, info.name);
    }
    for (size_t i = 0; i < nb && rc == 0; i++) {
        herd_ring_member_at(b, i, &info);
        if (herd_ring_member_find(a, info.name, &in_a) != 0)
            rc = diff_push_name(d, info.name);
    }
    if (rc == 0)
        qsort(d->names, d->name_count, sizeof(char *), diff_cmp_str);
    return rc;
}

static uint32_t diff_name_index(const herd_ring_diff_t *d, const char *name)
{
    char **hit = bsearch(&name, d->names, d->name_count, sizeof(char *), diff_cmp_str);
    return (uint32_t)(hit - d->names);
}

static uint32_t diff_owner(const herd_ring_diff_t *d, const herd_ring_t *r, uint64_t hash)
{
    const char *name;
    if (herd_ring_owner_of_hash(r, hash, &name) != 0)
        return HERD_RING_NONE;
    return diff_name_index(d, name);
}

static int diff_add_total(diff_builder_t *bld, uint32_t from, uint32_t to, double share)
{
    herd_ring_diff_t *d = bld->d;
    for (size_t i = 0; i < d->total_count; i++) {
        if (d->totals[i].from == from && d->totals[i].to == to) {
            d->totals[i].share += share;
            return 0;
        }
    }
    if (d->total_count == bld->total_cap) {
        size_t cap = bld->total_cap ? bld->total_cap * 2 : 16;
        herd_ring_move_total_t *t = realloc(d->totals, cap * sizeof(*t));
        if (t == NULL)
            return HERD_ENOMEM;
        d->totals = t;
        bld->total_cap = cap;
    }
    d->totals[d->total_count++] = (herd_ring_move_total_t){from, to, share};
    return 0;
}

/* Record that keys lo..hi go from `from` to `to` (nothing when they stay). */
static int diff_add_move(diff_builder_t *bld, uint64_t lo, uint64_t hi, uint32_t from,
                         uint32_t to)
{
    herd_ring_diff_t *d = bld->d;
    if (from == to)
        return 0;
    double share = diff_width(lo, hi);
    d->moved_share += share;
    herd_ring_move_t *last = d->move_count ? &d->moves[d->move_count - 1] : NULL;
    if (last && last->from == from && last->to == to && last->hi + 1 == lo) {
        last->hi = hi;
        return diff_add_total(bld, from, to, share);
    }
    if (d->move_count == bld->move_cap) {
        size_t cap = bld->move_cap ? bld->move_cap * 2 : 64;
        herd_ring_move_t *m = realloc(d->moves, cap * sizeof(*m));
        if (m == NULL)
            return HERD_ENOMEM;
        d->moves = m;
        bld->move_cap = cap;
    }
    d->moves[d->move_count++] = (herd_ring_move_t){lo, hi, from, to};
    return diff_add_total(bld, from, to, share);
}

/* The sorted, unique point hashes of both rings; *count gets their number. */
static uint64_t *diff_boundaries(const herd_ring_t *a, const herd_ring_t *b, size_t *count)
{
    size_t na = herd_ring_point_count(a), nb = herd_ring_point_count(b);
    uint64_t *all = malloc((na + nb + 1) * sizeof(uint64_t));
    if (all == NULL)
        return NULL;
    const char *owner;
    for (size_t i = 0; i < na; i++)
        herd_ring_point_at(a, i, &all[i], &owner);
    for (size_t i = 0; i < nb; i++)
        herd_ring_point_at(b, i, &all[na + i], &owner);
    qsort(all, na + nb, sizeof(uint64_t), diff_cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < na + nb; i++)
        if (m == 0 || all[m - 1] != all[i])
            all[m++] = all[i];
    *count = m;
    return all;
}

static int diff_total_cmp(const void *x, const void *y)
{
    const herd_ring_move_total_t *a = x, *b = y;
    if (a->from != b->from)
        return a->from < b->from ? -1 : 1;
    return (a->to > b->to) - (a->to < b->to);
}

static int diff_walk(diff_builder_t *bld, const herd_ring_t *old, const herd_ring_t *new_ring,
                     const uint64_t *bound, size_t m)
{
    const herd_ring_diff_t *d = bld->d;
    uint32_t wrap_from = diff_owner(d, old, bound[0]);
    uint32_t wrap_to = diff_owner(d, new_ring, bound[0]);
    int rc = diff_add_move(bld, 0, bound[0], wrap_from, wrap_to);
    for (size_t i = 1; i < m && rc == 0; i++)
        rc = diff_add_move(bld, bound[i - 1] + 1, bound[i], diff_owner(d, old, bound[i]),
                           diff_owner(d, new_ring, bound[i]));
    if (rc == 0 && bound[m - 1] != UINT64_MAX)
        rc = diff_add_move(bld, bound[m - 1] + 1, UINT64_MAX, wrap_from, wrap_to);
    return rc;
}

int herd_ring_compare(const herd_ring_t *old, const herd_ring_t *new_ring, herd_ring_diff_t *out)
{
    memset(out, 0, sizeof(*out));
    diff_builder_t bld = {.d = out};
    int rc = diff_collect_names(old, new_ring, out);
    size_t m = 0;
    uint64_t *bound = rc == 0 ? diff_boundaries(old, new_ring, &m) : NULL;
    if (rc == 0 && bound == NULL)
        rc = HERD_ENOMEM;
    if (rc == 0 && m > 0)
        rc = diff_walk(&bld, old, new_ring, bound, m);
    free(bound);
    if (rc) {
        herd_ring_diff_free(out);
        return rc;
    }
    if (out->total_count) /* qsort's base must not be NULL, even for 0 items */
        qsort(out->totals, out->total_count, sizeof(herd_ring_move_total_t), diff_total_cmp);
    return 0;
}

void herd_ring_diff_free(herd_ring_diff_t *d)
{
    if (d->names)
        for (size_t i = 0; i < d->name_count; i++)
            free(d->names[i]);
    free(d->names);
    free(d->moves);
    free(d->totals);
    memset(d, 0, sizeof(*d));
}
