/*
 * awmap.c - the add-wins map (see awmap.h).
 *
 * How join works
 * --------------
 * For each key, an entry of `m` survives when `d` holds the same dot, or
 * when d's causal context has not seen that dot (d simply does not know of
 * it yet). An entry of `d` comes in when `m` has not seen its dot; when m has
 * seen it but holds no such entry, m removed it, and the removal wins over
 * the stale copy. Then the contexts join by union. Each rule only asks "has
 * the other side seen this dot?", never "which came first?", which is why
 * join is commutative, associative and idempotent, and why deltas may arrive
 * late, twice or out of order (Almeida, Shoker, Baquero, "Delta State
 * Replicated Data Types", 2018).
 */
#include "awmap_int.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tablemem.h"

typedef awmap_replica_st_t replica_t;

/* ---- maps (replicas and the causal context: awmap_cc.c) -------------------------- */

awmap_t *awmap__alloc(int is_delta)
{
    awmap_t *m = calloc(1, sizeof(*m));
    if (m) {
        m->is_delta = is_delta;
        recmem_init(&m->records);
    }
    return m;
}

awmap_t *awmap_new(void)
{
    return awmap__alloc(0);
}

awmap_t *awmap_new_delta(void)
{
    return awmap__alloc(1);
}

#define replica_find awmap__replica_find
#define cc_has awmap__cc_has
#define cc_add awmap__cc_add
#define cc_reserve awmap__cc_reserve

/* Whether `m` has seen the dot `dot` of map `from`. */
static int seen_dot(const awmap_t *m, const awmap_t *from, awmap_dot_t dot)
{
    long i = replica_find(m, from->replicas[dot.replica].id);
    return i >= 0 && cc_has(&m->replicas[i], dot.counter);
}

/* m's context := m's joined with d's (a big cloud merges in one pass:
 * awmap_cc.c). */
static int cc_join(awmap_t *m, const awmap_t *d)
{
    return awmap_copy_context_bounded(m, d, SIZE_MAX, NULL);
}

/* ---- keys (the layout: awmap_int.h) ------------------------------------------- */

static uint64_t key_hash(const char *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

uint64_t awmap_key_hash(const char *key, size_t klen)
{
    return key_hash(key, klen);
}

/* The top byte of the hash (the bucket comes from its top AWMAP_HASH_BITS
 * times the seed, key_home). 0 marks an empty lane. */
static uint8_t key_tag(uint64_t h)
{
    uint8_t t = (uint8_t)(h >> 56);
    return t ? t : 1;
}

/* A 64-bit finalizer (MurmurHash3's fmix64): every output bit depends on
 * every input bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* How a key's home bucket comes from its hash, and why: a map sent to
 * another in pieces arrives in its bucket order (awmap_foreach). Were the
 * home bucket the same bits of the hash in both maps, the receiver's
 * smaller table would take the keys front to back, its front would overfill
 * and probe runs grow with every piece: inserts go quadratic (a join of
 * 300,000 names took seconds). So each map multiplies the hash by its
 * own odd seed and takes the top bits: for two maps with seeds s and t, the
 * one's products are the other's times t/s (mod 2^64), and a run of keys
 * close in one map's order has products all over the other's range. One
 * multiply, as the hash is already uniform. The hash itself (awmap_key_hash)
 * is the same in every map: callers keep it, and the tag is its top byte. */
static size_t key_home(const awmap_t *m, uint64_t h)
{
    /* the top 32 bits scaled to [0, nb): any table size, not only powers
     * of two (keys_grow) */
    uint64_t x = (h >> (64 - AWMAP_HASH_BITS)) * m->seed;
    return (size_t)(((x >> 32) * (uint64_t)m->nb) >> 32);
}

static size_t next_bucket(const awmap_t *m, size_t b)
{
    return b + 1 == m->nb ? 0 : b + 1;
}

/* A seed as the map keeps it: an odd multiplier with its bits spread, so
 * that seeds 1 and 2 lay keys out unrelated to each other. */
static uint64_t seed_spread(uint64_t seed)
{
    return mix64(seed + 0x9e3779b97f4a7c15ull) | 1;
}

int awmap_set_seed(awmap_t *m, uint64_t seed)
{
    if (m->key_n)
        return HERD_EBUSY;
    m->seed = seed_spread(seed);
    m->seeded = 1;
    return 0;
}

/* A map nobody seeded takes its seed as its first key comes in: from that
 * key and the first replica of its table. Deterministic (a simulation runs
 * the same twice), and two maps rarely share both: a registry's map lists
 * its own node start first, and a map filled from another in that one's
 * order gets as its first key the sender's first in bucket order, not the
 * sender's first key. */
static void seed_default(awmap_t *m, uint64_t first_hash)
{
    uint64_t r = 0;
    if (m->replica_n)
        r = mix64(m->replicas[0].id.node) ^ m->replicas[0].id.incarnation;
    /* a delta built beside a state from its first change differs too */
    m->seed = seed_spread(first_hash ^ mix64(r) ^ (uint64_t)m->is_delta);
    m->seeded = 1;
}

/* A record's bytes: the name, then an inline entry with room for a
 * vlen-byte value, rounded up to 8 (what recmem gives), and its link if
 * `linked`. */
static size_t key_record_size(size_t klen, size_t vlen, int linked)
{
    size_t off = (offsetof(awmap_key_t, name) + klen + 1 + 7) & ~(size_t)7;
    return off + awmap_link_offset(vlen) + (linked ? sizeof(awmap_entry_t *) : 0);
}

/* The bytes k's record holds (its inline entry's len is its room). */
static size_t key_size(const awmap_key_t *k)
{
    const awmap_entry_t *f = awmap__first(k);
    return key_record_size(k->klen, f->len, (f->flags & AWMAP_ENTRY_LINKED) != 0);
}

/* A heap entry's bytes: header, value, link. */
static size_t heap_entry_size(size_t vlen)
{
    return awmap_link_offset(vlen) + sizeof(awmap_entry_t *);
}

/* The record of reference ref. */
static awmap_key_t *key_at(const awmap_t *m, uint32_t ref)
{
    return recmem_ptr(&m->records, ref);
}

/* Probe for key from its home bucket. Found: the key. Not found: NULL, and
 * (*bi, *lane) is the first empty lane of the run, where it would go. The
 * load factor keeps an empty lane somewhere. */
static awmap_key_t *key_probe(const awmap_t *m, const char *key, size_t klen, uint64_t h,
                              size_t *bi, unsigned *lane)
{
    uint8_t tag = key_tag(h);
    for (size_t b = key_home(m, h);; b = next_bucket(m, b)) {
        const awmap_bucket_t *bk = &m->buckets[b];
        for (unsigned l = 0; l < AWMAP_LANES; l++) {
            uint8_t t = bk->tag[l];
            if (t == 0) {
                *bi = b;
                *lane = l;
                return NULL;
            }
            if (t != tag)
                continue;
            awmap_key_t *k = key_at(m, bk->ref[l]);
            if (k->klen == klen && memcmp(k->name, key, klen) == 0) {
                *bi = b;
                *lane = l;
                return k;
            }
        }
    }
}

awmap_key_t *awmap__key_find(const awmap_t *m, const char *key, size_t klen)
{
    size_t b;
    unsigned l;
    if (m->buckets == NULL || klen > AWMAP_KEY_MAX)
        return NULL;
    return key_probe(m, key, klen, key_hash(key, klen), &b, &l);
}

static awmap_key_t *key_find(const awmap_t *m, const char *key, size_t klen)
{
    return awmap__key_find(m, key, klen);
}

/* Put the record of reference ref in the first empty lane from its home on. */
static void bucket_put(awmap_t *m, uint32_t ref, uint64_t h)
{
    for (size_t b = key_home(m, h);; b = next_bucket(m, b))
        for (unsigned l = 0; l < AWMAP_LANES; l++)
            if (m->buckets[b].tag[l] == 0) {
                m->buckets[b].tag[l] = key_tag(h);
                m->buckets[b].ref[l] = ref;
                return;
            }
}

static int keys_resize(awmap_t *m, size_t nb);

/* A table is at most KEYS_FULL_NUM/KEYS_FULL_DEN full (of its lanes). */
#define KEYS_FULL_NUM 9
#define KEYS_FULL_DEN 10

static int keys_grow(awmap_t *m)
{
    /* by a fifth, not double: a table just grown is 3/4 full (at 9/10
     * before), and memory per key stays within 1.2x of the least (a key
     * costs 5.9 to 7.1 bytes of table) */
    return keys_resize(m, m->buckets ? m->nb + (m->nb + 4) / 5 : 2);
}

int awmap__keys_reserve(awmap_t *m, size_t n)
{
    /* the fill limit of awmap__key_get_or_add */
    size_t nb = (n * KEYS_FULL_DEN + KEYS_FULL_NUM * AWMAP_LANES - 1) /
                    (KEYS_FULL_NUM * AWMAP_LANES) + 1;
    if (m->buckets && nb <= m->nb)
        return 0;
    return keys_resize(m, nb < 2 ? 2 : nb);
}

int awmap_reserve(awmap_t *m, size_t n)
{
    return awmap__keys_reserve(m, n);
}

/* Move every key to a table of nb buckets. */
static int keys_resize(awmap_t *m, size_t nb)
{
    awmap_bucket_t *buckets = tablemem_alloc(nb * sizeof(*buckets), !m->is_delta);
    if (buckets == NULL)
        return HERD_ENOMEM;
    awmap_bucket_t *old = m->buckets;
    size_t old_n = old ? m->nb : 0;
    m->buckets = buckets;
    m->nb = nb;
    for (size_t b = 0; b < old_n; b++) {
        /* each record is read for its hash: ask for those two buckets on */
        for (unsigned l = 0; b + 2 < old_n && l < AWMAP_LANES; l++)
            if (old[b + 2].tag[l])
                __builtin_prefetch(key_at(m, old[b + 2].ref[l]));
        for (unsigned l = 0; l < AWMAP_LANES; l++)
            if (old[b].tag[l]) {
                awmap_key_t *k = key_at(m, old[b].ref[l]);
                bucket_put(m, old[b].ref[l], key_hash(k->name, k->klen));
            }
    }
    tablemem_free(old, old_n * sizeof(*old), !m->is_delta);
    return 0;
}

awmap_key_t *awmap__key_get_or_add(awmap_t *m, const char *key, size_t klen, size_t vhint)
{
    if (klen > AWMAP_KEY_MAX)
        return NULL;
    uint64_t h = key_hash(key, klen);
    if (!m->seeded)
        seed_default(m, h);
    /* at most 9/10 of the lanes in use: with 12 lanes a bucket, most keys
     * still lie in their home bucket that full */
    size_t cap = m->buckets ? m->nb * AWMAP_LANES : 0;
    if ((m->buckets == NULL || (m->key_n + 1) * KEYS_FULL_DEN > cap * KEYS_FULL_NUM) &&
        keys_grow(m) != 0)
        return NULL;
    size_t b;
    unsigned l;
    awmap_key_t *k = key_probe(m, key, klen, h, &b, &l);
    if (k)
        return k;
    uint32_t ref;
    k = recmem_alloc(&m->records, key_record_size(klen, vhint, 0), &ref);
    if (k == NULL)
        return NULL;
    k->klen = (uint8_t)klen;
    memcpy(k->name, key, klen);
    k->name[klen] = '\0';
    awmap_entry_t *f = awmap__first(k);
    f->flags = AWMAP_ENTRY_IDLE;
    f->len = (uint32_t)vhint;
    m->buckets[b].tag[l] = key_tag(h);
    m->buckets[b].ref[l] = ref;
    m->key_n++;
    return k;
}

static awmap_key_t *key_get_or_add(awmap_t *m, const char *key, size_t klen, size_t vhint)
{
    return awmap__key_get_or_add(m, key, klen, vhint);
}

/* The lane that holds record k. */
static void key_locate(const awmap_t *m, const awmap_key_t *k, size_t *bi, unsigned *lane)
{
    for (size_t b = key_home(m, key_hash(k->name, k->klen));; b = next_bucket(m, b))
        for (unsigned l = 0; l < AWMAP_LANES; l++)
            if (m->buckets[b].tag[l] && key_at(m, m->buckets[b].ref[l]) == k) {
                *bi = b;
                *lane = l;
                return;
            }
}

/* Give k room for a vlen-byte inline value and a link if `linked`, exactly
 * (a record's size follows from its inline len and flags); the record
 * moves. Its name and inline entry's header come along, the value and link
 * do not (the caller writes them, and the flags). */
static awmap_key_t *key_resize(awmap_t *m, awmap_key_t *k, size_t vlen, int linked)
{
    size_t b;
    unsigned l;
    key_locate(m, k, &b, &l);
    uint32_t ref;
    awmap_key_t *nk = recmem_alloc(&m->records, key_record_size(k->klen, vlen, linked), &ref);
    if (nk == NULL)
        return NULL;
    size_t head = (size_t)((char *)awmap__first(k) - (char *)k) + offsetof(awmap_entry_t, value);
    memcpy(nk, k, head);
    recmem_free(&m->records, m->buckets[b].ref[l], key_size(k));
    awmap__first(nk)->len = (uint32_t)vlen;
    m->buckets[b].ref[l] = ref;
    return nk;
}

/* Drop a key (its entries already gone), shifting back the rest of its probe
 * run so no lookup stops early at the hole (no tombstones). Lanes are
 * numbered b * AWMAP_LANES + l, and a key's home is its bucket's lane 0. */
static void key_drop(awmap_t *m, awmap_key_t *k)
{
    size_t b;
    unsigned l;
    key_locate(m, k, &b, &l);
    const size_t cap = m->nb * AWMAP_LANES;
    size_t hole = b * AWMAP_LANES + l;
    uint32_t ref = m->buckets[b].ref[l];
    m->buckets[b].tag[l] = 0;
    m->key_n--;
    for (size_t j = (hole + 1) % cap;; j = (j + 1) % cap) {
        awmap_bucket_t *bj = &m->buckets[j / AWMAP_LANES];
        unsigned lj = (unsigned)(j % AWMAP_LANES);
        if (bj->tag[lj] == 0)
            break;
        awmap_key_t *x = key_at(m, bj->ref[lj]);
        size_t home = key_home(m, key_hash(x->name, x->klen)) * AWMAP_LANES;
        if ((j + cap - hole) % cap <= (j + cap - home) % cap) { /* hole lies in [home, j) */
            awmap_bucket_t *bh = &m->buckets[hole / AWMAP_LANES];
            bh->tag[hole % AWMAP_LANES] = bj->tag[lj];
            bh->ref[hole % AWMAP_LANES] = bj->ref[lj];
            bj->tag[lj] = 0;
            hole = j;
        }
    }
    recmem_free(&m->records, ref, key_size(k));
}

static void key_drop_if_empty(awmap_t *m, awmap_key_t *k)
{
    if (awmap__entries(k) == NULL && !m->is_delta)
        key_drop(m, k);
}

static awmap_entry_t *entry_find(const awmap_key_t *k, awmap_dot_t dot)
{
    awmap_entry_t *e = awmap__entries(k);
    while (e && (e->dot.replica != dot.replica || e->dot.counter != dot.counter))
        e = awmap__next(e);
    return e;
}

/* How many entries k holds, counted up to 3. */
static unsigned entries_upto3(const awmap_key_t *k)
{
    const awmap_entry_t *f = awmap__first(k);
    unsigned n = (unsigned)awmap__used(k);
    for (const awmap_entry_t *e = awmap_next(f); e && n < 3; e = awmap_next(e))
        n++;
    return n;
}

/* The new entry goes inline and heads the list (observers see the others
 * behind it, through its link); an inline entry already in use moves to
 * the heap. The record has a link while other entries follow, and gets or
 * loses it (moving) as that changes. */
int awmap__entry_insert(awmap_t *m, awmap_key_t **kp, awmap_dot_t dot, const void *value,
                        size_t vlen, const awmap_observer_t *obs)
{
    awmap_key_t *k = *kp;
    awmap_entry_t *f = awmap__first(k), *rest = awmap__next(f), *old = NULL;
    int had_one = entries_upto3(k) == 1;
    if (awmap__used(k)) {
        if ((old = malloc(heap_entry_size(f->len))) == NULL)
            return HERD_ENOMEM;
        memcpy(old, f, offsetof(awmap_entry_t, value) + f->len);
        old->flags = AWMAP_ENTRY_LINKED;
        *awmap__link(old) = rest;
        rest = old;
    }
    int linked = rest != NULL;
    if (key_record_size(k->klen, vlen, linked) != key_size(k)) {
        awmap_key_t *nk = key_resize(m, k, vlen, linked);
        if (nk == NULL) {
            free(old);
            return HERD_ENOMEM;
        }
        *kp = k = nk;
        f = awmap__first(k);
    }
    if (old)
        m->heap_bytes += heap_entry_size(old->len);
    f->dot = dot;
    f->len = (uint32_t)vlen;
    f->flags = linked ? AWMAP_ENTRY_LINKED : 0;
    if (linked)
        *awmap__link(f) = rest;
    if (vlen)
        memcpy(f->value, value, vlen);
    m->entry_n++;
    m->multi_n += had_one;
    m->replicas[dot.replica].held++;
    if (obs && obs->added)
        obs->added(obs->data, k->name, k->klen, f);
    return 0;
}

static int entry_insert(awmap_t *m, awmap_key_t **kp, awmap_dot_t dot, const void *value,
                        size_t vlen, const awmap_observer_t *obs)
{
    return awmap__entry_insert(m, kp, dot, value, vlen, obs);
}

/* Insert an entry and add its dot to m's context, both or neither: a map
 * never holds an entry whose dot its context lacks, nor claims to have seen
 * (so removed) the dot of an entry it failed to take in. */
static int entry_insert_seen(awmap_t *m, awmap_key_t **kp, awmap_dot_t dot, const void *value,
                             size_t vlen, const awmap_observer_t *obs)
{
    replica_t *r = &m->replicas[dot.replica];
    if (cc_reserve(r, dot.counter) != 0 || entry_insert(m, kp, dot, value, vlen, obs) != 0)
        return HERD_ENOMEM;
    return cc_add(r, dot.counter); /* room reserved: cannot fail */
}

/* Remove e, which follows prev in k's list (prev NULL: e heads it). An
 * inline entry is only marked unused; its link keeps linking the rest.
 * Every entry before another is linked. */
static void entry_remove(awmap_t *m, awmap_key_t *k, awmap_entry_t *prev, awmap_entry_t *e,
                         const awmap_observer_t *obs)
{
    awmap_entry_t *f = awmap__first(k);
    m->multi_n -= entries_upto3(k) == 2;
    if (e == f)
        f->flags |= AWMAP_ENTRY_IDLE;
    else
        *awmap__link(prev ? prev : f) = awmap__next(e);
    m->entry_n--;
    m->replicas[e->dot.replica].held--;
    if (obs && obs->removed)
        obs->removed(obs->data, k->name, k->klen, e);
    if (e != f) {
        m->heap_bytes -= heap_entry_size(e->len);
        free(e);
    }
}

void awmap_free(awmap_t *m)
{
    if (m == NULL)
        return;
    for (size_t b = 0; m->buckets && b < m->nb; b++)
        for (unsigned l = 0; l < AWMAP_LANES; l++) {
            if (m->buckets[b].tag[l] == 0)
                continue;
            awmap_key_t *k = key_at(m, m->buckets[b].ref[l]);
            for (awmap_entry_t *e = awmap__next(awmap__first(k)), *next; e; e = next) {
                next = awmap__next(e);
                free(e);
            }
        }
    tablemem_free(m->buckets, m->nb * sizeof(*m->buckets), !m->is_delta);
    recmem_fini(&m->records);
    for (uint32_t i = 0; i < m->replica_n; i++)
        free(m->replicas[i].cloud);
    free(m->replicas);
    free(m->rindex);
    free(m);
}

/* Visit every key record (fn must not change the map). */
#define FOREACH_KEY(m, k)                                                              \
    for (size_t b_ = 0; (m)->buckets && b_ < (m)->nb; b_++)                               \
        for (unsigned l_ = 0; l_ < AWMAP_LANES; l_++)                                     \
            for (awmap_key_t *k = (m)->buckets[b_].tag[l_] ? key_at(m, (m)->buckets[b_].ref[l_]) : NULL; \
                 k; k = NULL)

/* ---- join ------------------------------------------------------------------------ */

/* A join's replica translation, made once per join so that every entry's
 * dot translates by an array read, both ways, instead of a lookup by id. */
typedef struct xlate {
    uint32_t *d2m; /* d's index -> m's */
    uint32_t *m2d; /* m's index -> d's, XLATE_NONE where d does not know it */
    uint32_t *heap; /* owned: the two arrays, unless `small` holds them */
    uint32_t small[64];
} xlate_t;

#define XLATE_NONE UINT32_MAX

/* d's replicas are all interned in m first (the context join adds them
 * anyway; an unused replica is no change of state), so m's table stays put
 * while the entries join. */
static int xlate_init(xlate_t *t, awmap_t *m, const awmap_t *d)
{
    uint32_t idx;
    t->heap = NULL;
    for (uint32_t i = 0; i < d->replica_n; i++)
        if (!d->replicas[i].pruned && awmap_replica(m, d->replicas[i].id, &idx) != 0)
            return HERD_ENOMEM;
    size_t need = (size_t)d->replica_n + m->replica_n;
    t->d2m = need <= 64 ? t->small : (t->heap = malloc(need * sizeof(uint32_t)));
    if (t->d2m == NULL)
        return HERD_ENOMEM;
    t->m2d = t->d2m + d->replica_n;
    for (uint32_t i = 0; i < m->replica_n; i++)
        t->m2d[i] = XLATE_NONE;
    for (uint32_t i = 0; i < d->replica_n; i++) {
        t->d2m[i] = XLATE_NONE; /* a free slot of d: no entry of d is under it */
        if (d->replicas[i].pruned)
            continue;
        t->d2m[i] = (uint32_t)replica_find(m, d->replicas[i].id);
        t->m2d[t->d2m[i]] = i;
    }
    return 0;
}

static void xlate_fini(xlate_t *t)
{
    free(t->heap);
}

/* Whether d's key dk holds an entry with dot (di, counter) in d's indices. */
static int key_holds(const awmap_key_t *dk, uint32_t di, uint64_t counter)
{
    for (const awmap_entry_t *x = dk ? awmap__entries(dk) : NULL; x; x = awmap_next(x))
        if (x->dot.replica == di && x->dot.counter == counter)
            return 1;
    return 0;
}

/* Join key `dk` of `d` into `m`, all but the context: m's entries that d has
 * seen and does not hold go; d's entries that m has not seen come in. */
static int join_key(awmap_t *m, const awmap_t *d, const xlate_t *t, const awmap_key_t *dk,
                    const char *name, size_t klen, const awmap_observer_t *obs)
{
    awmap_key_t *mk = key_find(m, name, klen);
    awmap_entry_t *prev = NULL;
    for (awmap_entry_t *e = mk ? awmap__entries(mk) : NULL, *next; e; e = next) {
        next = awmap__next(e);
        uint32_t di = t->m2d[e->dot.replica];
        if (di != XLATE_NONE && cc_has(&d->replicas[di], e->dot.counter) &&
            !key_holds(dk, di, e->dot.counter))
            entry_remove(m, mk, prev, e, obs);
        else
            prev = e;
    }
    int rc = 0;
    for (const awmap_entry_t *x = dk ? awmap__entries(dk) : NULL; x && rc == 0; x = awmap_next(x)) {
        awmap_dot_t dot = {t->d2m[x->dot.replica], x->dot.counter};
        if (cc_has(&m->replicas[dot.replica], dot.counter))
            continue;
        if (mk == NULL && (mk = key_get_or_add(m, name, klen, x->len)) == NULL)
            rc = HERD_ENOMEM;
        else if (entry_find(mk, dot) == NULL)
            rc = entry_insert(m, &mk, dot, x->value, x->len, obs);
    }
    if (rc == 0 && mk == NULL && m->is_delta && dk &&
        (mk = key_get_or_add(m, name, klen, 0)) == NULL)
        rc = HERD_ENOMEM; /* a delta keeps the removal hint */
    if (mk)
        key_drop_if_empty(m, mk);
    return rc;
}

/* d's keys come in d's bucket order, which says nothing of where they
 * lie in m (key_home): each lookup in m would wait for its bucket from
 * memory. So m's bucket is asked for JOIN_AHEAD keys before it is needed. */
#define JOIN_AHEAD 8

static int join_keys_of(awmap_t *m, const awmap_t *d, const xlate_t *t,
                        const awmap_observer_t *obs)
{
    const awmap_key_t *ring[JOIN_AHEAD];
    size_t in = 0, out = 0;
    FOREACH_KEY(d, dk) {
        if (m->buckets)
            __builtin_prefetch(&m->buckets[key_home(m, key_hash(dk->name, dk->klen))]);
        ring[in++ % JOIN_AHEAD] = dk;
        if (in - out == JOIN_AHEAD) {
            const awmap_key_t *k = ring[out++ % JOIN_AHEAD];
            if (join_key(m, d, t, k, k->name, k->klen, obs) != 0)
                return HERD_ENOMEM;
        }
    }
    for (; out < in; out++) {
        const awmap_key_t *k = ring[out % JOIN_AHEAD];
        if (join_key(m, d, t, k, k->name, k->klen, obs) != 0)
            return HERD_ENOMEM;
    }
    return 0;
}

/* After a join failed part-way: drop the entries of d's keys whose dots m's
 * context lacks. Those are the entries the join brought in and whose dots
 * the context join did not reach (every other entry's dot is in the context);
 * nothing is allocated, so this cannot fail. */
static void join_undo(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs)
{
    FOREACH_KEY(d, dk) {
        awmap_key_t *mk = key_find(m, dk->name, dk->klen);
        awmap_entry_t *prev = NULL;
        for (awmap_entry_t *e = mk ? awmap__entries(mk) : NULL, *next; e; e = next) {
            next = awmap__next(e);
            if (!cc_has(&m->replicas[e->dot.replica], e->dot.counter))
                entry_remove(m, mk, prev, e, obs);
            else
                prev = e;
        }
        if (mk)
            key_drop_if_empty(m, mk);
    }
}

/* Entries first, then contexts: adding each entry's dot as it comes in would
 * cost a sorted insert into a cloud per entry (keys come in hash order, not
 * counter order), where the context join takes a version vector at once.
 * Until the contexts join, the entries brought in lack their dots, so a
 * failure anywhere is undone down to what the context covers (join_undo):
 * what remains is m joined with a part of d, a valid state from which the
 * same join, retried, gives m join d. */
static int join_finish(awmap_t *m, const awmap_t *d, int rc, const awmap_observer_t *obs)
{
    if (rc == 0)
        rc = cc_join(m, d);
    if (rc != 0)
        join_undo(m, d, obs);
    return rc;
}

int awmap_join(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs)
{
    xlate_t t;
    int rc = xlate_init(&t, m, d);
    if (rc == 0)
        rc = join_keys_of(m, d, &t, obs);
    xlate_fini(&t);
    return join_finish(m, d, rc, obs);
}

int awmap_join_full(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs)
{
    xlate_t t;
    int rc = xlate_init(&t, m, d);
    if (rc == 0)
        rc = join_keys_of(m, d, &t, obs);
    /* keys d does not list: their entries go where d has seen the dot (the
     * names are copied: join_key may move or drop records) */
    size_t n = 0;
    char (*todo)[AWMAP_KEY_MAX + 1] = rc == 0 ? malloc((m->key_n + 1) * sizeof(*todo)) : NULL;
    uint8_t *lens = rc == 0 ? malloc(m->key_n + 1) : NULL;
    if (rc == 0 && (todo == NULL || lens == NULL))
        rc = HERD_ENOMEM;
    if (rc == 0) {
        FOREACH_KEY(m, k)
            if (key_find(d, k->name, k->klen) == NULL) {
                memcpy(todo[n], k->name, k->klen);
                lens[n++] = k->klen;
            }
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = join_key(m, d, &t, NULL, todo[i], lens[i], obs);
    free(todo);
    free(lens);
    xlate_fini(&t);
    return join_finish(m, d, rc, obs);
}

/* ---- mutators -------------------------------------------------------------------- */

static uint64_t next_counter(const replica_t *r)
{
    return (r->cloud_n ? r->cloud[r->cloud_n - 1] : r->vv) + 1;
}

/* Whether m's dot is one of `dots` (given in from's replica indices). */
static int dot_listed(const awmap_t *m, const awmap_t *from, awmap_dot_t dot,
                      const awmap_dot_t *dots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (dots[i].counter != dot.counter)
            continue;
        if (m == from ? dots[i].replica == dot.replica
                      : replica_find(m, from->replicas[dots[i].replica].id) == (long)dot.replica)
            return 1;
    }
    return 0;
}

/* m := m join (a delta of one key: the entry `add` with `value`, if given,
 * and a context of `dots` and `add`), all dots in from's replica indices.
 * The same as building that delta and joining it, without the map: the
 * listed dots' entries go, the new entry comes in unless m has seen it. */
static int apply_change(awmap_t *m, const awmap_t *from, const char *key, size_t klen,
                        const awmap_dot_t *add, const void *value, size_t vlen,
                        const awmap_dot_t *dots, size_t n, const awmap_observer_t *obs)
{
    awmap_key_t *k = key_find(m, key, klen);
    awmap_entry_t *prev = NULL;
    for (awmap_entry_t *e = k ? awmap__entries(k) : NULL, *next; e; e = next) {
        next = awmap__next(e);
        if (dot_listed(m, from, e->dot, dots, n) &&
            !(add && dot_listed(m, from, e->dot, add, 1)))
            entry_remove(m, k, prev, e, obs);
        else
            prev = e;
    }
    uint32_t idx;
    int rc = 0;
    if (add && !seen_dot(m, from, *add)) {
        if (awmap_replica(m, from->replicas[add->replica].id, &idx) != 0 ||
            (k == NULL && (k = key_get_or_add(m, key, klen, vlen)) == NULL))
            rc = HERD_ENOMEM;
        else if (entry_find(k, (awmap_dot_t){idx, add->counter}) == NULL)
            rc = entry_insert_seen(m, &k, (awmap_dot_t){idx, add->counter}, value, vlen, obs);
    }
    if (rc == 0 && k == NULL && m->is_delta && (k = key_get_or_add(m, key, klen, 0)) == NULL)
        rc = HERD_ENOMEM; /* a delta keeps the removal hint */
    if (k)
        key_drop_if_empty(m, k);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n + (add != NULL); i++) {
        awmap_dot_t dot = i < n ? dots[i] : *add;
        if (awmap_replica(m, from->replicas[dot.replica].id, &idx) != 0 ||
            cc_add(&m->replicas[idx], dot.counter) != 0)
            return HERD_ENOMEM;
    }
    return 0;
}

/* Dots a mutator is given must at least name replicas the map knows. That
 * they are dots of this key is the caller's promise (awmap.h): checking it
 * would need an index of every dot. */
static int dots_known(const awmap_t *m, const awmap_dot_t *dots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (dots[i].replica >= m->replica_n || dots[i].counter == 0)
            return 0;
    return 1;
}

int awmap_add(awmap_t *m, uint32_t replica, const char *key, size_t klen, const void *value,
              size_t vlen, const awmap_dot_t *supersede, size_t n, awmap_t *delta,
              const awmap_observer_t *obs, awmap_dot_t *new_dot)
{
    if (replica >= m->replica_n || klen > AWMAP_KEY_MAX || vlen > AWMAP_VALUE_MAX ||
        (vlen && value == NULL) || (n && supersede == NULL) ||
        !dots_known(m, supersede, n))
        return HERD_EINVAL;
    uint64_t counter = next_counter(&m->replicas[replica]);
    if (counter > AWMAP_COUNTER_MAX)
        return HERD_ERANGE; /* this node start wrote all a dot can count */
    awmap_dot_t dot = {replica, counter};
    /* the delta first: it reads m's replica table, which m's change leaves be */
    int rc = delta ? apply_change(delta, m, key, klen, &dot, value, vlen, supersede, n, NULL) : 0;
    if (rc == 0)
        rc = apply_change(m, m, key, klen, &dot, value, vlen, supersede, n, obs);
    if (rc == 0 && new_dot)
        *new_dot = dot;
    return rc;
}

int awmap_remove(awmap_t *m, const char *key, size_t klen, const awmap_dot_t *dots, size_t n,
                 awmap_t *delta, const awmap_observer_t *obs)
{
    if (klen > AWMAP_KEY_MAX || (n && dots == NULL) || !dots_known(m, dots, n))
        return HERD_EINVAL;
    int rc = delta ? apply_change(delta, m, key, klen, NULL, NULL, 0, dots, n, NULL) : 0;
    return rc ? rc : apply_change(m, m, key, klen, NULL, NULL, 0, dots, n, obs);
}

/* List `key` in dst with the entry of dot (id, counter) holding `value`
 * (NULL: none), and the dot in dst's context. */
static int note_write(awmap_t *dst, const char *key, size_t klen, awmap_replica_id_t id,
                      uint64_t counter, const void *value, size_t vlen)
{
    uint32_t idx;
    if (awmap_replica(dst, id, &idx) != 0)
        return HERD_ENOMEM;
    awmap_key_t *dk = key_get_or_add(dst, key, klen, vlen);
    if (dk == NULL)
        return HERD_ENOMEM;
    awmap_dot_t dot = {idx, counter};
    int rc = entry_find(dk, dot) ? cc_add(&dst->replicas[idx], counter)
                                 : entry_insert_seen(dst, &dk, dot, value, vlen, NULL);
    key_drop_if_empty(dst, dk);
    return rc;
}

int awmap_copy_entry(awmap_t *dst, const awmap_t *src, const char *key, size_t klen,
                     const awmap_entry_t *e, int with_value)
{
    if (klen > AWMAP_KEY_MAX || e == NULL)
        return HERD_EINVAL;
    return note_write(dst, key, klen, src->replicas[e->dot.replica].id, e->dot.counter,
                      with_value ? e->value : NULL, with_value ? e->len : 0);
}

int awmap_copy_key(awmap_t *dst, const awmap_t *src, const char *key, size_t klen)
{
    const awmap_key_t *sk = key_find(src, key, klen);
    if (sk == NULL)
        return HERD_ENOENT;
    for (const awmap_entry_t *e = awmap__entries(sk); e; e = awmap_next(e))
        if (awmap_copy_entry(dst, src, key, klen, e, 1) != 0)
            return HERD_ENOMEM;
    return 0;
}

int awmap_note_removed(awmap_t *dst, const char *key, size_t klen, awmap_replica_id_t id,
                       uint64_t counter)
{
    uint32_t idx;
    if (!dst->is_delta || klen > AWMAP_KEY_MAX || counter == 0)
        return HERD_EINVAL;
    if (key_get_or_add(dst, key, klen, 0) == NULL || awmap_replica(dst, id, &idx) != 0)
        return HERD_ENOMEM;
    return cc_add(&dst->replicas[idx], counter);
}

int awmap_note_entry(awmap_t *dst, const char *key, size_t klen, awmap_replica_id_t id,
                     uint64_t counter, const void *value, size_t vlen)
{
    if (!dst->is_delta || klen > AWMAP_KEY_MAX || counter == 0 || counter > AWMAP_COUNTER_MAX ||
        vlen > AWMAP_VALUE_MAX || (vlen && value == NULL))
        return HERD_EINVAL;
    return note_write(dst, key, klen, id, counter, value, vlen);
}

/* ---- reading ----------------------------------------------------------------------- */

const awmap_entry_t *awmap_get_hashed(const awmap_t *m, const char *key, size_t klen,
                                      uint64_t hash)
{
    size_t b;
    unsigned l;
    if (m->buckets == NULL || klen > AWMAP_KEY_MAX)
        return NULL;
    const awmap_key_t *k = key_probe(m, key, klen, hash, &b, &l);
    return k ? awmap__entries(k) : NULL;
}

void awmap_prefetch(const awmap_t *m, uint64_t hash, int stage)
{
    if (m->buckets == NULL)
        return;
    const awmap_bucket_t *bk = &m->buckets[key_home(m, hash)];
    if (stage == 0) {
        __builtin_prefetch(bk);
        return;
    }
    uint8_t tag = key_tag(hash);
    for (unsigned l = 0; l < AWMAP_LANES; l++) {
        if (bk->tag[l] == tag) {
            const char *k = (const char *)key_at(m, bk->ref[l]);
            __builtin_prefetch(k);
            __builtin_prefetch(k + 63);
        }
    }
}

const awmap_entry_t *awmap_get(const awmap_t *m, const char *key, size_t klen)
{
    const awmap_key_t *k = key_find(m, key, klen);
    return k ? awmap__entries(k) : NULL;
}

int awmap_foreach_hash(const awmap_t *m, uint64_t hash,
                       int (*fn)(void *data, const char *key, size_t klen, const awmap_entry_t *e),
                       void *data)
{
    uint8_t tag = key_tag(hash);
    for (size_t b = m->buckets ? key_home(m, hash) : 0; m->buckets; b = next_bucket(m, b))
        for (unsigned l = 0; l < AWMAP_LANES; l++) {
            if (m->buckets[b].tag[l] == 0)
                return 0;
            const awmap_key_t *k = key_at(m, m->buckets[b].ref[l]);
            int rc = m->buckets[b].tag[l] == tag &&
                             (key_hash(k->name, k->klen) ^ hash) >> (64 - AWMAP_HASH_BITS) == 0
                         ? fn(data, k->name, k->klen, awmap__entries(k))
                         : 0;
            if (rc)
                return rc;
        }
    return 0;
}

/* A key's place in the table's order, independent of the table's size:
 * key_home scales it to the buckets, so positions in [lo, hi) have their
 * homes in one run of buckets whatever the size. */
static uint32_t key_position(const awmap_t *m, uint64_t h)
{
    return (uint32_t)(((h >> (64 - AWMAP_HASH_BITS)) * m->seed) >> 32);
}

int awmap_foreach_range(const awmap_t *m, uint32_t lo, uint64_t hi,
                        int (*fn)(void *data, const char *key, size_t klen,
                                  const awmap_entry_t *e),
                        void *data)
{
    if (m->buckets == NULL || hi <= lo || m->key_n == 0)
        return 0;
    size_t first = (size_t)(((uint64_t)lo * m->nb) >> 32);
    size_t last = (size_t)(((hi - 1) * (uint64_t)m->nb) >> 32);
    /* a key stays between its home and the first empty lane after it (no
     * delete moves it before its home), so the keys homed in [first, last]
     * lie before the first empty lane at or after bucket `last` */
    int past_last = 0;
    for (size_t b = first, n = 0; n < m->nb; b = next_bucket(m, b), n++) { /* each once */
        past_last |= b == last;
        for (unsigned l = 0; l < AWMAP_LANES; l++) {
            if (m->buckets[b].tag[l] == 0) {
                if (past_last)
                    return 0;
                continue;
            }
            const awmap_key_t *k = key_at(m, m->buckets[b].ref[l]);
            uint32_t pos = key_position(m, key_hash(k->name, k->klen));
            int rc = pos >= lo && pos < hi ? fn(data, k->name, k->klen, awmap__entries(k)) : 0;
            if (rc)
                return rc;
        }
    }
    return 0;
}

size_t awmap_key_count(const awmap_t *m)
{
    return m->key_n;
}

size_t awmap_multi_key_count(const awmap_t *m)
{
    return m->multi_n;
}

size_t awmap_entry_count(const awmap_t *m)
{
    return m->entry_n;
}

void awmap_memory(const awmap_t *m, awmap_memory_t *out)
{
    size_t replicas = m->replica_cap * sizeof(*m->replicas);
    for (uint32_t i = 0; i < m->replica_n; i++)
        replicas += m->replicas[i].cloud_cap * sizeof(uint64_t);
    if (m->rindex)
        replicas += ((size_t)m->rindex_mask + 1) * sizeof(*m->rindex);
    *out = (awmap_memory_t){
        .records = m->records.used_bytes,
        .record_chunks = m->records.chunk_bytes,
        .entries = m->heap_bytes,
        .table = m->buckets ? m->nb * sizeof(*m->buckets) : 0,
        .replicas = replicas,
        .fixed = sizeof(*m) + m->records.chunk_cap * (sizeof(char *) + sizeof(uint32_t)) +
                 (m->records.free_lists ? RECMEM_CLASSES * sizeof(uint32_t) : 0),
    };
}

int awmap_foreach(const awmap_t *m,
                  int (*fn)(void *data, const char *key, size_t klen, const awmap_entry_t *e),
                  void *data)
{
    FOREACH_KEY(m, k) {
        int rc = fn(data, k->name, k->klen, awmap__entries(k));
        if (rc)
            return rc;
    }
    return 0;
}

int awmap_is_empty(const awmap_t *m)
{
    if (m->key_n)
        return 0;
    for (uint32_t i = 0; i < m->replica_n; i++)
        if (m->replicas[i].vv || m->replicas[i].cloud_n)
            return 0;
    return 1;
}

/* Every (dot, value) of a's keys is in b (dots compared by replica id). */
static int entries_within(const awmap_t *a, const awmap_t *b)
{
    FOREACH_KEY(a, ka) {
        const awmap_key_t *kb = awmap__entries(ka) ? key_find(b, ka->name, ka->klen) : NULL;
        for (const awmap_entry_t *e = awmap__entries(ka); e; e = awmap_next(e)) {
            long bi = replica_find(b, a->replicas[e->dot.replica].id);
            const awmap_entry_t *f = kb ? awmap__entries(kb) : NULL;
            while (f && !(bi >= 0 && f->dot.replica == (uint32_t)bi &&
                          f->dot.counter == e->dot.counter))
                f = awmap_next(f);
            if (f == NULL || f->len != e->len || memcmp(f->value, e->value, e->len) != 0)
                return 0;
        }
    }
    return 1;
}

int awmap_equal(const awmap_t *a, const awmap_t *b)
{
    return a->entry_n == b->entry_n && entries_within(a, b) && entries_within(b, a) &&
           awmap__cc_within(a, b) && awmap__cc_within(b, a);
}

