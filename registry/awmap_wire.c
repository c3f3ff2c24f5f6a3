/*
 * awmap_wire.c - the add-wins map on the wire (see awmap.h): encode, and a
 * decode that validates every field before the map takes it.
 *
 * Layout: u8 is_delta; u32 n replicas, each u64 node, u64 incarnation, u64
 * vv, u32 cloud n, n x u64 counters (strictly increasing, above vv + 1);
 * u32 n keys, each bytes name, u16 n entries, each u32 replica, u64 counter,
 * bytes value.
 */
#include "awmap_int.h"

#include <stdlib.h>

#include "u64map.h"

static int decode_keys_into(wire_reader_t *r, awmap_t *m, u64map_t *seen);

typedef struct encode_ctx {
    wire_writer_t *w;
    const uint32_t *index; /* replica index -> index on the wire (NULL: the same) */
} encode_ctx_t;

static int encode_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    const encode_ctx_t *c = data;
    wire_writer_t *w = c->w;
    uint16_t n = 0;
    for (const awmap_entry_t *x = e; x; x = awmap_next(x))
        n++;
    wire_put_bytes(w, key, klen);
    wire_put_u16(w, n);
    for (const awmap_entry_t *x = e; x; x = awmap_next(x)) {
        wire_put_u32(w, c->index ? c->index[x->dot.replica] : x->dot.replica);
        wire_put_u64(w, x->dot.counter);
        wire_put_bytes(w, x->value, x->len);
    }
    return 0;
}

void awmap_encode(const awmap_t *m, wire_writer_t *w)
{
    /* free slots of pruned replicas stay off the wire; entries name the
     * others by their place among those written */
    uint32_t *index = m->pruned_n ? malloc(m->replica_n * sizeof(*index)) : NULL;
    if (m->pruned_n && index == NULL) {
        w->err = HERD_ENOMEM;
        return;
    }
    for (uint32_t i = 0, k = 0; index && i < m->replica_n; i++)
        index[i] = m->replicas[i].pruned ? UINT32_MAX : k++;
    wire_put_u8(w, (uint8_t)m->is_delta);
    wire_put_u32(w, m->replica_n - m->pruned_n);
    for (uint32_t i = 0; i < m->replica_n; i++) {
        const awmap_replica_st_t *r = &m->replicas[i];
        if (r->pruned)
            continue;
        wire_put_u64(w, r->id.node);
        wire_put_u64(w, r->id.incarnation);
        wire_put_u64(w, r->vv);
        wire_put_u32(w, r->cloud_n);
        for (uint32_t k = 0; k < r->cloud_n; k++)
            wire_put_u64(w, r->cloud[k]);
    }
    wire_put_u32(w, (uint32_t)m->key_n);
    encode_ctx_t c = {w, index};
    awmap_foreach(m, encode_key, &c);
    free(index);
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
        if (r->err || cn > r->len || awmap__replica_find(m, id) >= 0 || awmap_replica(m, id, &idx))
            return HERD_EBADFRAME;
        m->replicas[idx].vv = vv;
        uint64_t prev = vv + 1; /* the cloud starts above vv + 1 (else it would fold) */
        for (uint32_t k = 0; k < cn && !r->err; k++) {
            uint64_t c = wire_get_u64(r);
            if (c <= prev || awmap__cc_add(&m->replicas[idx], c)) /* strictly increasing */
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
    /* a key takes at least 7 bytes on the wire (a u32 length, a byte, a
     * u16 entry count): a count the rest cannot hold reserves no more */
    size_t fits = (r->len - r->off) / 7;
    if (awmap__keys_reserve(m, n < fits ? n : fits) != 0)
        return HERD_ENOMEM;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        const uint8_t *name;
        size_t klen = wire_get_bytes(r, &name);
        uint16_t en = wire_get_u16(r);
        if (r->err || klen > AWMAP_KEY_MAX || awmap__key_find(m, (const char *)name, klen))
            return HERD_EBADFRAME;
        awmap_key_t *k = NULL; /* made at the first entry, with room for its value */
        for (uint16_t j = 0; j < en && !r->err; j++) {
            uint32_t replica = wire_get_u32(r);
            uint64_t counter = wire_get_u64(r);
            awmap_dot_t dot = {replica, counter};
            const uint8_t *v;
            size_t vlen = wire_get_bytes(r, &v);
            if (r->err || replica >= m->replica_n || counter == 0 || counter > AWMAP_COUNTER_MAX ||
                vlen > AWMAP_VALUE_MAX || !awmap__cc_has(&m->replicas[dot.replica], dot.counter) ||
                !dot_unique(seen, dot))
                return HERD_EBADFRAME; /* every entry's dot is in the map's own context */
            if (k == NULL && (k = awmap__key_get_or_add(m, (const char *)name, klen, vlen)) == NULL)
                return HERD_ENOMEM;
            if (awmap__entry_insert(m, &k, dot, v, vlen, NULL) != 0)
                return HERD_ENOMEM;
        }
        if (k == NULL && (!m->is_delta || r->err))
            return HERD_EBADFRAME;
        if (k == NULL && awmap__key_get_or_add(m, (const char *)name, klen, 0) == NULL)
            return HERD_ENOMEM;
    }
    return r->err;
}

int awmap_decode(wire_reader_t *r, awmap_t **out)
{
    uint8_t is_delta = wire_get_u8(r);
    awmap_t *m = r->err || is_delta > 1 ? NULL : awmap__alloc(is_delta);
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
