/*
 * digest.c - digest-driven state sync (see digest.h).
 */
#include "digest.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

unsigned digest_bucket(const char *key, size_t klen)
{
    return (unsigned)(XXH3_64bits(key, klen) >> 56); /* top 8 bits: 256 buckets */
}

static uint64_t entry_hash(const char *key, size_t klen, awmap_replica_id_t id, uint64_t c)
{
    uint64_t parts[3] = {id.node, id.incarnation, c};
    return XXH3_64bits_withSeed(parts, sizeof(parts), XXH3_64bits(key, klen));
}

typedef struct digest_ctx {
    const awmap_t *m;
    digest_t *d;
} digest_ctx_t;

static int digest_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    digest_ctx_t *c = data;
    unsigned b = digest_bucket(key, klen);
    for (; e; e = e->next) {
        c->d->sum[b] += entry_hash(key, klen, awmap_replica_id(c->m, e->dot.replica),
                                   e->dot.counter);
        c->d->count[b]++;
    }
    return 0;
}

void digest_of(const awmap_t *m, digest_t *out)
{
    memset(out, 0, sizeof(*out));
    digest_ctx_t c = {m, out};
    awmap_foreach(m, digest_key, &c);
}

void digest_encode(const digest_t *d, wire_writer_t *w)
{
    for (unsigned b = 0; b < DIGEST_BUCKETS; b++) {
        wire_put_u64(w, d->sum[b]);
        wire_put_u32(w, d->count[b]);
    }
}

int digest_decode(wire_reader_t *r, digest_t *out)
{
    for (unsigned b = 0; b < DIGEST_BUCKETS; b++) {
        out->sum[b] = wire_get_u64(r);
        out->count[b] = wire_get_u32(r);
    }
    return r->err;
}

size_t digest_diff(const digest_t *a, const digest_t *b, uint8_t out[DIGEST_BUCKETS])
{
    size_t n = 0;
    for (unsigned i = 0; i < DIGEST_BUCKETS; i++)
        if (a->sum[i] != b->sum[i] || a->count[i] != b->count[i])
            out[n++] = (uint8_t)i;
    return n;
}

typedef struct pick_ctx {
    const awmap_t *src;
    awmap_t *dst;
    uint8_t want[DIGEST_BUCKETS];
    const awmap_t *other; /* digest_answer: A's dots map */
    size_t batch;
    digest_emit_fn emit;
    void *emit_data;
    int err;
} pick_ctx_t;

/* Hand over a full piece and start the next one. */
static void pick_maybe_emit(pick_ctx_t *c, int force)
{
    if (c->err || c->emit == NULL || awmap_key_count(c->dst) == 0 ||
        (!force && awmap_key_count(c->dst) < c->batch))
        return;
    c->emit(c->emit_data, c->dst);
    awmap_free(c->dst);
    c->dst = awmap_new_delta();
    if (c->dst == NULL)
        c->err = HERD_ENOMEM;
}

static void pick_init(pick_ctx_t *c, const uint8_t *buckets, size_t n)
{
    memset(c->want, 0, sizeof(c->want));
    for (size_t i = 0; i < n; i++)
        c->want[buckets[i]] = 1;
}

static int dots_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    pick_ctx_t *c = data;
    if (!c->want[digest_bucket(key, klen)])
        return 0;
    for (; e && c->err == 0; e = e->next)
        c->err = awmap_copy_entry(c->dst, c->src, key, klen, e, 0);
    return c->err != 0;
}

awmap_t *digest_dots(const awmap_t *m, const uint8_t *buckets, size_t n)
{
    pick_ctx_t c = {.src = m, .dst = awmap_new_delta()};
    pick_init(&c, buckets, n);
    if (c.dst == NULL || awmap_copy_context(c.dst, m) != 0 ||
        awmap_foreach(m, dots_key, &c) != 0 || c.err) {
        awmap_free(c.dst);
        return NULL;
    }
    return c.dst;
}

/* (a) mine that A has not seen */
static int answer_mine(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    pick_ctx_t *c = data;
    if (!c->want[digest_bucket(key, klen)])
        return 0;
    for (; e && c->err == 0; e = e->next)
        if (!awmap_seen(c->other, awmap_replica_id(c->src, e->dot.replica), e->dot.counter))
            c->err = awmap_copy_entry(c->dst, c->src, key, klen, e, 1);
    pick_maybe_emit(c, 0);
    return c->err != 0;
}

static int holds(const awmap_t *m, const char *key, size_t klen, awmap_replica_id_t id,
                 uint64_t counter)
{
    for (const awmap_entry_t *e = awmap_get(m, key, klen); e; e = e->next) {
        awmap_replica_id_t x = awmap_replica_id(m, e->dot.replica);
        if (x.node == id.node && x.incarnation == id.incarnation && e->dot.counter == counter)
            return 1;
    }
    return 0;
}

/* (b) A's dots that I have seen and no longer hold: removed */
static int answer_theirs(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    pick_ctx_t *c = data;
    for (; e && c->err == 0; e = e->next) {
        awmap_replica_id_t id = awmap_replica_id(c->other, e->dot.replica);
        if (awmap_seen(c->src, id, e->dot.counter) && !holds(c->src, key, klen, id, e->dot.counter))
            c->err = awmap_note_removed(c->dst, key, klen, id, e->dot.counter);
    }
    pick_maybe_emit(c, 0);
    return c->err != 0;
}

int digest_answer(const awmap_t *mine, const awmap_t *dots, const uint8_t *buckets, size_t n,
                  size_t batch, digest_emit_fn emit, void *data)
{
    pick_ctx_t c = {.src = mine, .dst = awmap_new_delta(), .other = dots,
                    .batch = batch ? batch : 1, .emit = emit, .emit_data = data};
    pick_init(&c, buckets, n);
    if (c.dst == NULL)
        return HERD_ENOMEM;
    awmap_foreach(mine, answer_mine, &c);
    if (c.err == 0)
        awmap_foreach(dots, answer_theirs, &c);
    pick_maybe_emit(&c, 1);
    awmap_free(c.dst);
    return c.err;
}
