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
#include "awmap.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "u64map.h"

typedef struct awmap_replica_st {
    awmap_replica_id_t id;
    uint64_t vv;     /* every counter 1..vv seen */
    uint64_t *cloud; /* counters > vv seen, sorted */
    uint32_t cloud_n, cloud_cap;
} replica_t;

typedef struct awmap_key {
    uint64_t hash;
    awmap_entry_t *entries;
    uint32_t klen;
    char name[];
} key_t_;

struct awmap {
    replica_t *replicas;
    uint32_t replica_n, replica_cap;
    key_t_ **slots; /* open addressing by name hash */
    size_t mask, key_n, entry_n;
    int is_delta;
};

/* ---- replicas and the causal context ------------------------------------------ */

static awmap_t *awmap_alloc(int is_delta)
{
    awmap_t *m = calloc(1, sizeof(*m));
    if (m)
        m->is_delta = is_delta;
    return m;
}

awmap_t *awmap_new(void)
{
    return awmap_alloc(0);
}

awmap_t *awmap_new_delta(void)
{
    return awmap_alloc(1);
}

static long replica_find(const awmap_t *m, awmap_replica_id_t id)
{
    for (uint32_t i = 0; i < m->replica_n; i++)
        if (m->replicas[i].id.node == id.node && m->replicas[i].id.incarnation == id.incarnation)
            return (long)i;
    return -1;
}

int awmap_replica(awmap_t *m, awmap_replica_id_t id, uint32_t *index)
{
    long i = replica_find(m, id);
    if (i >= 0) {
        *index = (uint32_t)i;
        return 0;
    }
    if (m->replica_n == m->replica_cap) {
        uint32_t cap = m->replica_cap ? m->replica_cap * 2 : 4;
        replica_t *r = realloc(m->replicas, cap * sizeof(*r));
        if (r == NULL)
            return HERD_ENOMEM;
        m->replicas = r;
        m->replica_cap = cap;
    }
    m->replicas[m->replica_n] = (replica_t){.id = id};
    *index = m->replica_n++;
    return 0;
}

awmap_replica_id_t awmap_replica_id(const awmap_t *m, uint32_t index)
{
    return index < m->replica_n ? m->replicas[index].id : (awmap_replica_id_t){0, 0};
}

size_t awmap_replica_count(const awmap_t *m)
{
    return m->replica_n;
}

static int cloud_find(const replica_t *r, uint64_t c, uint32_t *at)
{
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

static int cc_has(const replica_t *r, uint64_t c)
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

static int cc_add(replica_t *r, uint64_t c)
{
    uint32_t at;
    if (c <= r->vv || cloud_find(r, c, &at))
        return 0;
    if (c == r->vv + 1) {
        r->vv++;
        cc_fold(r);
        return 0;
    }
    if (r->cloud_n == r->cloud_cap) {
        uint32_t cap = r->cloud_cap ? r->cloud_cap * 2 : 4;
        uint64_t *cl = realloc(r->cloud, cap * sizeof(*cl));
        if (cl == NULL)
            return HERD_ENOMEM;
        r->cloud = cl;
        r->cloud_cap = cap;
    }
    memmove(r->cloud + at + 1, r->cloud + at, (r->cloud_n - at) * sizeof(uint64_t));
    r->cloud[at] = c;
    r->cloud_n++;
    return 0;
}

/* Whether `m` has seen the dot `dot` of map `from`. */
static int seen_dot(const awmap_t *m, const awmap_t *from, awmap_dot_t dot)
{
    long i = replica_find(m, from->replicas[dot.replica].id);
    return i >= 0 && cc_has(&m->replicas[i], dot.counter);
}

static int cc_join(awmap_t *m, const awmap_t *d)
{
    for (uint32_t i = 0; i < d->replica_n; i++) {
        const replica_t *dr = &d->replicas[i];
        uint32_t idx;
        if (awmap_replica(m, dr->id, &idx) != 0)
            return HERD_ENOMEM;
        replica_t *r = &m->replicas[idx];
        if (dr->vv > r->vv) {
            r->vv = dr->vv;
            uint32_t keep = 0;
            for (uint32_t k = 0; k < r->cloud_n; k++)
                if (r->cloud[k] > r->vv)
                    r->cloud[keep++] = r->cloud[k];
            r->cloud_n = keep;
            cc_fold(r);
        }
        for (uint32_t k = 0; k < dr->cloud_n; k++)
            if (cc_add(r, dr->cloud[k]) != 0)
                return HERD_ENOMEM;
    }
    return 0;
}

/* ---- keys --------------------------------------------------------------------- */

static uint64_t key_hash(const char *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

static key_t_ **key_slot(const awmap_t *m, const char *key, size_t klen, uint64_t h)
{
    if (m->slots == NULL)
        return NULL;
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        key_t_ *k = m->slots[i];
        if (k == NULL || (k->hash == h && k->klen == klen && memcmp(k->name, key, klen) == 0))
            return &m->slots[i];
    }
}

static key_t_ *key_find(const awmap_t *m, const char *key, size_t klen)
{
    key_t_ **s = key_slot(m, key, klen, key_hash(key, klen));
    return s ? *s : NULL;
}

static int keys_grow(awmap_t *m)
{
    size_t cap = m->slots ? (m->mask + 1) * 2 : 16;
    key_t_ **slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return HERD_ENOMEM;
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        key_t_ *k = m->slots[i];
        if (k == NULL)
            continue;
        size_t j = k->hash & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = k;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = cap - 1;
    return 0;
}

static key_t_ *key_get_or_add(awmap_t *m, const char *key, size_t klen)
{
    if (klen > AWMAP_KEY_MAX)
        return NULL;
    if ((m->slots == NULL || (m->key_n + 1) * 4 > (m->mask + 1) * 3) && keys_grow(m) != 0)
        return NULL;
    uint64_t h = key_hash(key, klen);
    key_t_ **s = key_slot(m, key, klen, h);
    if (*s)
        return *s;
    key_t_ *k = malloc(sizeof(*k) + klen + 1);
    if (k == NULL)
        return NULL;
    k->hash = h;
    k->entries = NULL;
    k->klen = (uint32_t)klen;
    memcpy(k->name, key, klen);
    k->name[klen] = '\0';
    *s = k;
    m->key_n++;
    return k;
}

/* Drop a key (its entries already gone), re-placing the probe run after it. */
static void key_drop(awmap_t *m, key_t_ *k)
{
    key_t_ **s = key_slot(m, k->name, k->klen, k->hash);
    size_t hole = (size_t)(s - m->slots);
    m->slots[hole] = NULL;
    m->key_n--;
    for (size_t j = (hole + 1) & m->mask; m->slots[j]; j = (j + 1) & m->mask) {
        key_t_ *moved = m->slots[j];
        m->slots[j] = NULL;
        size_t i = moved->hash & m->mask;
        while (m->slots[i])
            i = (i + 1) & m->mask;
        m->slots[i] = moved;
    }
    free(k);
}

static void key_drop_if_empty(awmap_t *m, key_t_ *k)
{
    if (k->entries == NULL && !m->is_delta)
        key_drop(m, k);
}

static awmap_entry_t **entry_find(key_t_ *k, awmap_dot_t dot)
{
    awmap_entry_t **e = &k->entries;
    while (*e && ((*e)->dot.replica != dot.replica || (*e)->dot.counter != dot.counter))
        e = &(*e)->next;
    return e;
}

static int entry_insert(awmap_t *m, key_t_ *k, awmap_dot_t dot, const void *value, size_t vlen,
                        const awmap_observer_t *obs)
{
    awmap_entry_t *e = malloc(sizeof(*e) + vlen);
    if (e == NULL)
        return HERD_ENOMEM;
    e->dot = dot;
    e->len = (uint32_t)vlen;
    if (vlen)
        memcpy(e->value, value, vlen);
    e->next = k->entries;
    k->entries = e;
    m->entry_n++;
    if (obs && obs->added)
        obs->added(obs->data, k->name, k->klen, e);
    return 0;
}

static void entry_unlink(awmap_t *m, key_t_ *k, awmap_entry_t **at, const awmap_observer_t *obs)
{
    awmap_entry_t *e = *at;
    *at = e->next;
    m->entry_n--;
    if (obs && obs->removed)
        obs->removed(obs->data, k->name, k->klen, e);
    free(e);
}

void awmap_free(awmap_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        key_t_ *k = m->slots[i];
        if (k == NULL)
            continue;
        for (awmap_entry_t *e = k->entries, *next; e; e = next) {
            next = e->next;
            free(e);
        }
        free(k);
    }
    free(m->slots);
    for (uint32_t i = 0; i < m->replica_n; i++)
        free(m->replicas[i].cloud);
    free(m->replicas);
    free(m);
}

/* ---- join ------------------------------------------------------------------------ */

/* Join key `dk` of `d` into `m` (before the contexts join). */
static int join_key(awmap_t *m, const awmap_t *d, const key_t_ *dk, const char *name,
                    size_t klen, const awmap_observer_t *obs)
{
    key_t_ *mk = key_find(m, name, klen);
    /* m's entries that d has seen and does not hold are removed */
    for (awmap_entry_t **e = mk ? &mk->entries : NULL; e && *e;) {
        awmap_replica_id_t id = m->replicas[(*e)->dot.replica].id;
        long di = replica_find(d, id);
        int d_seen = di >= 0 && cc_has(&d->replicas[di], (*e)->dot.counter);
        int d_holds = 0;
        for (const awmap_entry_t *x = dk ? dk->entries : NULL; x && !d_holds; x = x->next)
            d_holds = di >= 0 && x->dot.replica == (uint32_t)di && x->dot.counter == (*e)->dot.counter;
        if (d_seen && !d_holds)
            entry_unlink(m, mk, e, obs);
        else
            e = &(*e)->next;
    }
    /* d's entries that m has not seen come in */
    for (const awmap_entry_t *x = dk ? dk->entries : NULL; x; x = x->next) {
        if (seen_dot(m, d, x->dot))
            continue;
        uint32_t idx;
        if (awmap_replica(m, d->replicas[x->dot.replica].id, &idx) != 0)
            return HERD_ENOMEM;
        if (mk == NULL && (mk = key_get_or_add(m, name, klen)) == NULL)
            return HERD_ENOMEM;
        awmap_dot_t dot = {idx, x->dot.counter};
        if (*entry_find(mk, dot) == NULL && entry_insert(m, mk, dot, x->value, x->len, obs))
            return HERD_ENOMEM;
    }
    if (mk == NULL && m->is_delta && dk && (mk = key_get_or_add(m, name, klen)) == NULL)
        return HERD_ENOMEM; /* a delta keeps the removal hint */
    if (mk)
        key_drop_if_empty(m, mk);
    return 0;
}

static int join_keys_of(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs)
{
    for (size_t i = 0; d->slots && i <= d->mask; i++) {
        const key_t_ *dk = d->slots[i];
        if (dk && join_key(m, d, dk, dk->name, dk->klen, obs) != 0)
            return HERD_ENOMEM;
    }
    return 0;
}

int awmap_join(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs)
{
    int rc = join_keys_of(m, d, obs);
    return rc ? rc : cc_join(m, d);
}

int awmap_join_full(awmap_t *m, const awmap_t *d, const awmap_observer_t *obs)
{
    int rc = join_keys_of(m, d, obs);
    /* keys d does not list: their entries go where d has seen the dot */
    size_t n = 0;
    key_t_ **todo = rc == 0 ? malloc((m->key_n + 1) * sizeof(*todo)) : NULL;
    if (rc == 0 && todo == NULL)
        rc = HERD_ENOMEM;
    for (size_t i = 0; rc == 0 && m->slots && i <= m->mask; i++)
        if (m->slots[i] && key_find(d, m->slots[i]->name, m->slots[i]->klen) == NULL)
            todo[n++] = m->slots[i];
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = join_key(m, d, NULL, todo[i]->name, todo[i]->klen, obs);
    free(todo);
    return rc ? rc : cc_join(m, d);
}

/* ---- mutators -------------------------------------------------------------------- */

static uint64_t next_counter(const replica_t *r)
{
    return (r->cloud_n ? r->cloud[r->cloud_n - 1] : r->vv) + 1;
}

/* A delta of one key: its entries `add` (0 or 1) and a CC of the given dots. */
static awmap_t *small_delta(const awmap_t *m, const char *key, size_t klen,
                            const awmap_dot_t *add, const void *value, size_t vlen,
                            const awmap_dot_t *dots, size_t n)
{
    awmap_t *t = awmap_new_delta();
    key_t_ *k = t ? key_get_or_add(t, key, klen) : NULL;
    int rc = k ? 0 : HERD_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n + (add != NULL); i++) {
        awmap_dot_t dot = i < n ? dots[i] : *add;
        uint32_t idx;
        rc = awmap_replica(t, m->replicas[dot.replica].id, &idx);
        if (rc == 0)
            rc = cc_add(&t->replicas[idx], dot.counter);
        if (rc == 0 && i == n)
            rc = entry_insert(t, k, (awmap_dot_t){idx, dot.counter}, value, vlen, NULL);
    }
    if (rc) {
        awmap_free(t);
        return NULL;
    }
    return t;
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
    awmap_dot_t dot = {replica, next_counter(&m->replicas[replica])};
    awmap_t *t = small_delta(m, key, klen, &dot, value, vlen, supersede, n);
    if (t == NULL)
        return HERD_ENOMEM;
    int rc = awmap_join(m, t, obs);
    if (rc == 0 && delta)
        rc = awmap_join(delta, t, NULL);
    awmap_free(t);
    if (rc == 0 && new_dot)
        *new_dot = dot;
    return rc;
}

int awmap_remove(awmap_t *m, const char *key, size_t klen, const awmap_dot_t *dots, size_t n,
                 awmap_t *delta, const awmap_observer_t *obs)
{
    if (klen > AWMAP_KEY_MAX || (n && dots == NULL) || !dots_known(m, dots, n))
        return HERD_EINVAL;
    awmap_t *t = small_delta(m, key, klen, NULL, NULL, 0, dots, n);
    if (t == NULL)
        return HERD_ENOMEM;
    int rc = awmap_join(m, t, obs);
    if (rc == 0 && delta)
        rc = awmap_join(delta, t, NULL);
    awmap_free(t);
    return rc;
}

int awmap_copy_entry(awmap_t *dst, const awmap_t *src, const char *key, size_t klen,
                     const awmap_entry_t *e, int with_value)
{
    if (klen > AWMAP_KEY_MAX || e == NULL)
        return HERD_EINVAL;
    key_t_ *dk = key_get_or_add(dst, key, klen);
    uint32_t idx;
    if (dk == NULL || awmap_replica(dst, src->replicas[e->dot.replica].id, &idx) != 0 ||
        cc_add(&dst->replicas[idx], e->dot.counter) != 0)
        return HERD_ENOMEM;
    awmap_dot_t dot = {idx, e->dot.counter};
    if (*entry_find(dk, dot) == NULL &&
        entry_insert(dst, dk, dot, with_value ? e->value : NULL, with_value ? e->len : 0, NULL))
        return HERD_ENOMEM;
    return 0;
}

int awmap_copy_key(awmap_t *dst, const awmap_t *src, const char *key, size_t klen)
{
    const key_t_ *sk = key_find(src, key, klen);
    if (sk == NULL)
        return HERD_ENOENT;
    for (const awmap_entry_t *e = sk->entries; e; e = e->next)
        if (awmap_copy_entry(dst, src, key, klen, e, 1) != 0)
            return HERD_ENOMEM;
    return 0;
}

int awmap_copy_context(awmap_t *dst, const awmap_t *src)
{
    return cc_join(dst, src);
}

int awmap_note_removed(awmap_t *dst, const char *key, size_t klen, awmap_replica_id_t id,
                       uint64_t counter)
{
    uint32_t idx;
    if (!dst->is_delta || klen > AWMAP_KEY_MAX || counter == 0)
        return HERD_EINVAL;
    if (key_get_or_add(dst, key, klen) == NULL || awmap_replica(dst, id, &idx) != 0)
        return HERD_ENOMEM;
    return cc_add(&dst->replicas[idx], counter);
}

/* ---- reading ----------------------------------------------------------------------- */

const awmap_entry_t *awmap_get(const awmap_t *m, const char *key, size_t klen)
{
    const key_t_ *k = key_find(m, key, klen);
    return k ? k->entries : NULL;
}

size_t awmap_key_count(const awmap_t *m)
{
    return m->key_n;
}

size_t awmap_entry_count(const awmap_t *m)
{
    return m->entry_n;
}

int awmap_foreach(const awmap_t *m,
                  int (*fn)(void *data, const char *key, size_t klen, const awmap_entry_t *e),
                  void *data)
{
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        const key_t_ *k = m->slots[i];
        int rc = k ? fn(data, k->name, k->klen, k->entries) : 0;
        if (rc)
            return rc;
    }
    return 0;
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
    for (size_t i = 0; a->slots && i <= a->mask; i++) {
        const key_t_ *ka = a->slots[i];
        if (ka == NULL || ka->entries == NULL)
            continue;
        const key_t_ *kb = key_find(b, ka->name, ka->klen);
        for (const awmap_entry_t *e = ka->entries; e; e = e->next) {
            long bi = replica_find(b, a->replicas[e->dot.replica].id);
            const awmap_entry_t *f = kb ? kb->entries : NULL;
            while (f && !(bi >= 0 && f->dot.replica == (uint32_t)bi &&
                          f->dot.counter == e->dot.counter))
                f = f->next;
            if (f == NULL || f->len != e->len || memcmp(f->value, e->value, e->len) != 0)
                return 0;
        }
    }
    return 1;
}

static int cc_within(const awmap_t *a, const awmap_t *b)
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

int awmap_equal(const awmap_t *a, const awmap_t *b)
{
    return a->entry_n == b->entry_n && entries_within(a, b) && entries_within(b, a) &&
           cc_within(a, b) && cc_within(b, a);
}

static int decode_keys_into(wire_reader_t *r, awmap_t *m, u64map_t *seen);

/* ---- wire ---------------------------------------------------------------------------- */

static int encode_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    wire_writer_t *w = data;
    uint16_t n = 0;
    for (const awmap_entry_t *x = e; x; x = x->next)
        n++;
    wire_put_bytes(w, key, klen);
    wire_put_u16(w, n);
    for (const awmap_entry_t *x = e; x; x = x->next) {
        wire_put_u32(w, x->dot.replica);
        wire_put_u64(w, x->dot.counter);
        wire_put_bytes(w, x->value, x->len);
    }
    return 0;
}

void awmap_encode(const awmap_t *m, wire_writer_t *w)
{
    wire_put_u8(w, (uint8_t)m->is_delta);
    wire_put_u32(w, m->replica_n);
    for (uint32_t i = 0; i < m->replica_n; i++) {
        const replica_t *r = &m->replicas[i];
        wire_put_u64(w, r->id.node);
        wire_put_u64(w, r->id.incarnation);
        wire_put_u64(w, r->vv);
        wire_put_u32(w, r->cloud_n);
        for (uint32_t k = 0; k < r->cloud_n; k++)
            wire_put_u64(w, r->cloud[k]);
    }
    wire_put_u32(w, (uint32_t)m->key_n);
    awmap_foreach(m, encode_key, w);
}

static int decode_replicas(wire_reader_t *r, awmap_t *m)
{
    uint32_t n = wire_get_u32(r);
    if (n > r->len) /* each replica takes bytes: a bound against absurd counts */
        return HERD_EBADFRAME;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        awmap_replica_id_t id = {wire_get_u64(r), wire_get_u64(r)};
        uint64_t vv = wire_get_u64(r);
        uint32_t cn = wire_get_u32(r), idx;
        if (r->err || cn > r->len || replica_find(m, id) >= 0 || awmap_replica(m, id, &idx))
            return HERD_EBADFRAME;
        m->replicas[idx].vv = vv;
        uint64_t prev = vv + 1; /* the cloud starts above vv + 1 (else it would fold) */
        for (uint32_t k = 0; k < cn && !r->err; k++) {
            uint64_t c = wire_get_u64(r);
            if (c <= prev || cc_add(&m->replicas[idx], c)) /* strictly increasing */
                return HERD_EBADFRAME;
            prev = c;
        }
    }
    return r->err;
}

/* A dot names one write: it may stand under one key only. */
static int dot_unique(u64map_t *seen, awmap_dot_t dot)
{
    uint64_t h = (dot.counter * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)dot.replica << 1) ^ 1;
    if (u64map_get(seen, h))
        return 0; /* the same dot (or, at 2^-64 odds, a twin hash): refuse */
    return u64map_put(seen, h, (void *)1) == 0;
}

static int decode_keys(wire_reader_t *r, awmap_t *m)
{
    u64map_t seen;
    u64map_init(&seen);
    int rc = decode_keys_into(r, m, &seen);
    u64map_fini(&seen);
    return rc;
}

static int decode_keys_into(wire_reader_t *r, awmap_t *m, u64map_t *seen)
{
    uint32_t n = wire_get_u32(r);
    if (n > r->len)
        return HERD_EBADFRAME;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        const uint8_t *name;
        size_t klen = wire_get_bytes(r, &name);
        uint16_t en = wire_get_u16(r);
        if (r->err || klen > AWMAP_KEY_MAX || key_find(m, (const char *)name, klen))
            return HERD_EBADFRAME;
        key_t_ *k = key_get_or_add(m, (const char *)name, klen);
        if (k == NULL)
            return HERD_ENOMEM;
        for (uint16_t j = 0; j < en && !r->err; j++) {
            awmap_dot_t dot = {wire_get_u32(r), wire_get_u64(r)};
            const uint8_t *v;
            size_t vlen = wire_get_bytes(r, &v);
            if (r->err || dot.replica >= m->replica_n || dot.counter == 0 ||
                vlen > AWMAP_VALUE_MAX || !cc_has(&m->replicas[dot.replica], dot.counter) ||
                !dot_unique(seen, dot) || entry_insert(m, k, dot, v, vlen, NULL))
                return HERD_EBADFRAME; /* every entry's dot is in the map's own context */
        }
        if (k->entries == NULL && !m->is_delta)
            return HERD_EBADFRAME;
    }
    return r->err;
}

int awmap_decode(wire_reader_t *r, awmap_t **out)
{
    uint8_t is_delta = wire_get_u8(r);
    awmap_t *m = r->err || is_delta > 1 ? NULL : awmap_alloc(is_delta);
    int rc = m ? decode_replicas(r, m) : HERD_EBADFRAME;
    if (rc == 0)
        rc = decode_keys(r, m);
    if (rc) {
        awmap_free(m);
        return HERD_EBADFRAME;
    }
    *out = m;
    return 0;
}
