/*
 * pidx.c - local processes' names by pid serial (see pidx.h).
 *
 * Open addressing with linear probing from the serial's home slot; deletion
 * shifts the rest of the run back (no tombstones), as u64map does. A probe
 * reads the tags (2 bytes a slot) and a hash only where the tag matches.
 * The table takes any size, at most 9/10 full, and grows by an eighth, not
 * double: memory is per name, a table just grown is 80 % full, and growing
 * is cheap (a pair holds all its rehash needs). So full, an add's probe
 * for its pair reads some 50 slots' tags at most on average: 100 bytes.
 *
 * A tag's pairs share one probe run, so each add of a process holding k
 * names walks those k: a tag that reaches PIDX_BIG pairs moves to a table
 * of its own (the same layout, homes by the hash), found by its tag in
 * `big`, where an add, lookup or delete probes a few slots whatever the
 * process holds, and a take or visit reads that table alone.
 */
#include "pidx.h"

#include <stdint.h>
#include <stdlib.h>

#include "herd_error.h"
#include "tablemem.h"

/* A tag with this many pairs gets a table of its own. */
#define PIDX_BIG 32u

#define HASH_SHIFT (64 - AWMAP_HASH_BITS)
#define TAG_MASK ((1u << PIDX_TAG_BITS) - 1)

_Static_assert(AWMAP_HASH_BITS == 32, "a pair keeps the hash's top bits in a u32");

static uint16_t tag_of(uint64_t serial)
{
    uint64_t t = serial ^ (serial >> 16) ^ (serial >> 32) ^ (serial >> 48);
    return (uint16_t)((t & TAG_MASK) ? (t & TAG_MASK) : 1);
}

static uint32_t hash_of(uint64_t hash)
{
    return (uint32_t)(hash >> HASH_SHIFT);
}

/* The bytes of a table of n slots: the hashes, then the tags. */
static size_t table_bytes(size_t n)
{
    return n * (sizeof(uint32_t) + sizeof(uint16_t));
}

/* A pair's home: its tag's Fibonacci hash scaled to [0, n), or in a table
 * of one tag's pairs its hash's. */
static size_t home(const pidx_t *x, uint16_t tag, uint32_t h)
{
    uint64_t spread = (uint32_t)((x->by_hash ? h : tag) * 0x9e3779b9u);
    return (size_t)((spread * x->n) >> 32);
}

static size_t next(const pidx_t *x, size_t i)
{
    return i + 1 == x->n ? 0 : i + 1;
}

void pidx_init(pidx_t *x)
{
    *x = (pidx_t){0};
    u64map_init(&x->big);
}

size_t pidx_bytes(const pidx_t *x)
{
    size_t map = x->big.slots ? (x->big.mask + 1) * sizeof(*x->big.slots) : 0;
    return table_bytes(x->n) + x->big_bytes + map;
}

/* A table of one tag's pairs, and what it takes (its struct included). */
static size_t own_bytes(const pidx_t *t)
{
    return sizeof(*t) + table_bytes(t->n);
}

static void own_free(pidx_t *x, pidx_t *t)
{
    x->big_bytes -= own_bytes(t);
    tablemem_free(t->hashes, table_bytes(t->n), 1);
    free(t);
}

void pidx_fini(pidx_t *x)
{
    size_t at = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&x->big, &at)) != NULL;)
        own_free(x, sl->value);
    u64map_fini(&x->big);
    tablemem_free(x->hashes, table_bytes(x->n), 1);
    pidx_init(x);
}

/* The table of its own of `tag`, or NULL. */
static pidx_t *own_of(const pidx_t *x, uint16_t tag)
{
    return x->big.count ? u64map_get(&x->big, tag) : NULL;
}

/* The slot of the pair, or the empty slot that ends its run; *same (may
 * be NULL) counts the tag's other pairs passed on the way. */
static size_t find_counting(const pidx_t *x, uint16_t tag, uint32_t h, size_t *same)
{
    size_t i = home(x, tag, h), n = 0;
    while (x->tags[i] && (x->tags[i] != tag || x->hashes[i] != h)) {
        n += x->tags[i] == tag;
        i = next(x, i);
    }
    if (same)
        *same = n;
    return i;
}

static size_t find(const pidx_t *x, uint16_t tag, uint32_t h)
{
    return find_counting(x, tag, h, NULL);
}

static void put(pidx_t *x, size_t i, uint16_t tag, uint32_t h)
{
    x->tags[i] = tag;
    x->hashes[i] = h;
}

/* Rehash into n slots (room for every pair held). */
static int resize(pidx_t *x, size_t n)
{
    uint32_t *old = x->hashes;
    uint16_t *old_tags = x->tags;
    size_t old_n = old ? x->n : 0;
    uint32_t *hashes = tablemem_alloc(table_bytes(n), 1);
    if (hashes == NULL)
        return HERD_ENOMEM;
    x->hashes = hashes;
    x->tags = (uint16_t *)(void *)(hashes + n);
    x->n = n;
    /* pairs are distinct: each goes to the first empty slot from its home
     * on. A tag's pairs lie together in the old table and come in one
     * after another, each after the one before (the slots between are
     * taken): so a process holding many names costs one pass, not a walk
     * over its run per name. */
    size_t last_home = SIZE_MAX, at = 0;
    for (size_t i = 0; i < old_n; i++) {
        if (old_tags[i] == 0)
            continue;
        size_t h = home(x, old_tags[i], old[i]);
        at = h == last_home ? next(x, at) : h;
        while (x->tags[at])
            at = next(x, at);
        put(x, at, old_tags[i], old[i]);
        last_home = h;
    }
    tablemem_free(old, table_bytes(old_n), 1);
    return 0;
}

static int grow(pidx_t *x)
{
    return resize(x, x->hashes ? x->n + x->n / 8 : 16);
}

/* Add to one table (no-op if present): 1 added, 0 held, HERD_ENOMEM. */
static int table_add(pidx_t *t, uint16_t tag, uint32_t h)
{
    /* at most 9/10 full: lookups are rare (exits, checks), memory is per name */
    if ((t->hashes == NULL || (t->count + 1) * 10 > t->n * 9) && grow(t) != 0)
        return HERD_ENOMEM;
    size_t i = find(t, tag, h);
    if (t->tags[i])
        return 0;
    put(t, i, tag, h);
    t->count++;
    return 1;
}

static void remove_at(pidx_t *x, size_t hole);

/* Move the pairs of `tag` (`held` of them) from the shared table to a table
 * of their own, sized for them first, so the move cannot stop half way.
 * Out of memory they stay (an add then walks their run, as before). */
static void move_to_own(pidx_t *x, uint16_t tag, size_t held)
{
    pidx_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return;
    t->by_hash = 1;
    if (resize(t, (held + 1) * 10 / 9 + 16) != 0 || u64map_put(&x->big, tag, t) != 0) {
        tablemem_free(t->hashes, table_bytes(t->n), 1);
        free(t);
        return;
    }
    x->big_bytes += own_bytes(t);
    for (size_t i = home(x, tag, 0); x->tags[i];) {
        if (x->tags[i] != tag) {
            i = next(x, i);
            continue;
        }
        table_add(t, tag, x->hashes[i]); /* room made: cannot fail */
        remove_at(x, i); /* the next pair may have moved into slot i: look again */
    }
}

int pidx_add(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (serial == 0)
        return HERD_EINVAL;
    uint16_t tag = tag_of(serial);
    uint32_t h = hash_of(hash);
    pidx_t *t = own_of(x, tag);
    if (t == NULL) {
        /* at most 9/10 full: lookups are rare (exits, checks), memory is per name */
        if ((x->hashes == NULL || (x->count + 1) * 10 > x->n * 9) && grow(x) != 0)
            return HERD_ENOMEM;
        size_t same;
        size_t i = find_counting(x, tag, h, &same);
        if (x->tags[i])
            return 0;
        if (same + 1 >= PIDX_BIG)
            move_to_own(x, tag, same);
        if ((t = own_of(x, tag)) == NULL) { /* not moved (or out of memory): here */
            put(x, i, tag, h);
            x->count++;
            x->pairs++;
            return 0;
        }
    }
    size_t before = own_bytes(t);
    int rc = table_add(t, tag, h);
    x->big_bytes += own_bytes(t) - before;
    if (rc > 0)
        x->pairs++;
    return rc < 0 ? rc : 0;
}

/* The table holding `tag`'s pairs: its own, or the shared one. */
static const pidx_t *table_of(const pidx_t *x, uint16_t tag)
{
    const pidx_t *t = own_of(x, tag);
    return t ? t : x;
}

int pidx_has(const pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    const pidx_t *t = table_of(x, tag);
    return t->hashes && t->tags[find(t, tag, hash_of(hash))] != 0;
}

/* Slots from a to b, going forward (with wrap-around). */
static size_t dist(const pidx_t *x, size_t a, size_t b)
{
    return b >= a ? b - a : b + x->n - a;
}

static void remove_at(pidx_t *x, size_t hole)
{
    x->tags[hole] = 0;
    x->count--;
    for (size_t j = next(x, hole); x->tags[j]; j = next(x, j)) {
        size_t h = home(x, x->tags[j], x->hashes[j]);
        /* the pair at j may fill the hole if its home lies at or before it */
        if (dist(x, h, j) >= dist(x, hole, j)) {
            put(x, hole, x->tags[j], x->hashes[j]);
            x->tags[j] = 0;
            hole = j;
        }
    }
}

/* A table of its own that holds nothing more goes. */
static void own_drop_if_empty(pidx_t *x, uint16_t tag, pidx_t *t)
{
    if (t->count)
        return;
    u64map_del(&x->big, tag);
    own_free(x, t);
}

void pidx_del(pidx_t *x, uint64_t serial, uint64_t hash)
{
    if (serial == 0)
        return;
    uint16_t tag = tag_of(serial);
    pidx_t *own = own_of(x, tag), *t = own ? own : x;
    if (t->hashes == NULL)
        return;
    size_t i = find(t, tag, hash_of(hash));
    if (t->tags[i] == 0)
        return;
    remove_at(t, i);
    x->pairs--;
    if (own)
        own_drop_if_empty(x, tag, own);
}

/* A pair's hash as the caller gets it back: its top bits, the rest 0. */
static uint64_t hash_back(uint32_t h)
{
    return (uint64_t)h << HASH_SHIFT;
}

/* The first slot of `tag`'s pairs to visit in table t, and the next: in the
 * shared table the tag's run from its home, in its own every slot. */
static size_t visit_first(const pidx_t *t, uint16_t tag)
{
    return t->by_hash ? 0 : home(t, tag, 0);
}

static int visit_more(const pidx_t *t, size_t i, size_t steps)
{
    return t->by_hash ? steps < t->n : t->tags[i] != 0;
}

int pidx_tagged(const pidx_t *x, uint64_t serial)
{
    if (serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    if (own_of(x, tag)) /* one that held nothing would have gone */
        return 1;
    if (x->hashes == NULL)
        return 0;
    for (size_t i = home(x, tag, 0); x->tags[i]; i = next(x, i))
        if (x->tags[i] == tag)
            return 1;
    return 0;
}

int pidx_each(const pidx_t *x, uint64_t serial, int (*fn)(void *data, uint64_t hash),
              void *data)
{
    if (serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    const pidx_t *t = table_of(x, tag);
    if (t->hashes == NULL)
        return 0;
    int rc = 0;
    for (size_t i = visit_first(t, tag), k = 0; rc == 0 && visit_more(t, i, k);
         i = next(t, i), k++)
        if (t->tags[i] == tag)
            rc = fn(data, hash_back(t->hashes[i]));
    return rc;
}

size_t pidx_get(const pidx_t *x, uint64_t serial, uint64_t *out, size_t cap)
{
    size_t n = 0;
    if (serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    const pidx_t *t = table_of(x, tag);
    if (t->hashes == NULL)
        return 0;
    for (size_t i = visit_first(t, tag), k = 0; visit_more(t, i, k); i = next(t, i), k++)
        if (t->tags[i] == tag) {
            if (n < cap)
                out[n] = hash_back(t->hashes[i]);
            n++;
        }
    return n;
}

/* Every pair of a table of its own, into a malloc'd *out; the table goes
 * (on ENOMEM nothing is taken). */
static size_t take_own(pidx_t *x, uint16_t tag, pidx_t *t, uint64_t **out)
{
    *out = malloc(t->count * sizeof(**out));
    if (*out == NULL)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->tags[i])
            (*out)[n++] = hash_back(t->hashes[i]);
    x->pairs -= n;
    t->count = 0;
    own_drop_if_empty(x, tag, t);
    return n;
}

size_t pidx_take(pidx_t *x, uint64_t serial, uint64_t **out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    if (serial == 0)
        return 0;
    uint16_t tag = tag_of(serial);
    pidx_t *own = own_of(x, tag);
    if (own)
        return take_own(x, tag, own, out);
    if (x->hashes == NULL)
        return 0;
    for (size_t i = home(x, tag, 0); x->tags[i];) {
        if (x->tags[i] != tag) {
            i = next(x, i);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            uint64_t *o = realloc(*out, cap * sizeof(*o));
            if (o == NULL)
                return n;
            *out = o;
        }
        (*out)[n++] = hash_back(x->hashes[i]);
        remove_at(x, i); /* the next pair may have moved into slot i: look again */
        x->pairs--;
    }
    return n;
}
