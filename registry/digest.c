/*
 * digest.c - digest-driven state sync (see digest.h).
 */
#include "digest.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Bytes a piece's encoding takes per entry and per key beyond the key and
 * the value (dot, lengths, and the dot in the context as a cloud counter):
 * an upper bound, so a piece is never larger than its estimate. */
#define PIECE_ENTRY_BYTES 40u
#define PIECE_KEY_BYTES 8u

unsigned digest_bucket(const char *key, size_t klen)
{
    return (unsigned)(XXH3_64bits(key, klen) >> 56); /* top 8 bits: 256 buckets */
}

/* An entry's hash, seeded with its key's (which also gives the bucket). */
static uint64_t entry_hash(uint64_t key_hash, awmap_replica_id_t id, uint64_t c)
{
    uint64_t parts[3] = {id.node, id.incarnation, c};
    return XXH3_64bits_withSeed(parts, sizeof(parts), key_hash);
}

/* A key's cell: the top bits of its hash, the bucket's 8 and the next. */
static unsigned cell_of_hash(uint64_t kh)
{
    return (unsigned)(kh >> (64 - 14));
}
_Static_assert(DIGEST_CELLS == 1u << 14, "cells are the hash's top 14 bits");

void digest_update(digest_t *d, digest_fine_t *fine, const awmap_t *m, const char *key,
                   size_t klen, const awmap_entry_t *e, int sign)
{
    digest_update_hashed(d, fine, m, XXH3_64bits(key, klen), e, sign);
}

void digest_update_hashed(digest_t *d, digest_fine_t *fine, const awmap_t *m, uint64_t kh,
                          const awmap_entry_t *e, int sign)
{
    unsigned b = (unsigned)(kh >> 56);
    uint64_t h = entry_hash(kh, awmap_replica_id(m, e->dot.replica), e->dot.counter);
    uint64_t add = sign > 0 ? h : -h; /* sums: order does not matter */
    d->sum[b] += add;
    d->count[b] += sign > 0 ? 1u : (uint32_t)-1;
    if (fine)
        fine->sum[cell_of_hash(kh)] += add;
}

typedef struct digest_ctx {
    const awmap_t *m;
    digest_t *d;
    digest_fine_t *fine;
} digest_ctx_t;

static int digest_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    digest_ctx_t *c = data;
    for (; e; e = awmap_next(e))
        digest_update(c->d, c->fine, c->m, key, klen, e, 1);
    return 0;
}

void digest_of(const awmap_t *m, digest_t *out, digest_fine_t *fine)
{
    memset(out, 0, sizeof(*out));
    if (fine)
        memset(fine, 0, sizeof(*fine));
    digest_ctx_t c = {m, out, fine};
    awmap_foreach(m, digest_key, &c);
}

/* ---- cells ------------------------------------------------------------------------ */

static void mask_set(uint8_t *mask, unsigned cell)
{
    mask[cell / 8] |= (uint8_t)(1u << (cell % 8));
}

static int mask_has(const uint8_t *mask, unsigned cell)
{
    return (mask[cell / 8] >> (cell % 8)) & 1;
}

void digest_fine_encode(const digest_fine_t *f, const uint8_t *buckets, size_t n,
                        wire_writer_t *w)
{
    wire_put_u16(w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        wire_put_u8(w, buckets[i]);
        for (unsigned c = 0; c < DIGEST_SUBS; c++)
            wire_put_u64(w, f->sum[buckets[i] * DIGEST_SUBS + c]);
    }
}

int digest_fine_compare(wire_reader_t *r, const digest_fine_t *mine,
                        uint8_t mask[DIGEST_MASK_BYTES], uint8_t got[DIGEST_BUCKETS])
{
    uint16_t n = wire_get_u16(r);
    if (r->err || n > DIGEST_BUCKETS || r->len - r->off < (size_t)n * (1 + 8 * DIGEST_SUBS))
        return HERD_EBADFRAME;
    for (uint16_t i = 0; i < n; i++) {
        unsigned b = wire_get_u8(r);
        for (unsigned c = 0; c < DIGEST_SUBS; c++) {
            unsigned cell = b * DIGEST_SUBS + c;
            if (wire_get_u64(r) != mine->sum[cell])
                mask_set(mask, cell);
        }
        got[b] = 1;
    }
    return r->err;
}

void digest_mask_of(uint8_t mask[DIGEST_MASK_BYTES], const uint8_t *buckets, size_t n,
                    const uint8_t *got)
{
    uint8_t want[DIGEST_BUCKETS] = {0};
    for (size_t i = 0; i < n; i++)
        want[buckets[i]] = 1;
    for (unsigned b = 0; b < DIGEST_BUCKETS; b++) {
        /* a bucket's DIGEST_SUBS cells are DIGEST_SUBS / 8 whole bytes */
        uint8_t *bytes = mask + b * (DIGEST_SUBS / 8);
        if (!want[b])
            memset(bytes, 0, DIGEST_SUBS / 8);
        else if (got == NULL || !got[b])
            memset(bytes, 0xff, DIGEST_SUBS / 8);
    }
}
_Static_assert(DIGEST_SUBS % 8 == 0, "a bucket's cells fill whole bytes of a mask");

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

/* ---- pieces ------------------------------------------------------------------------ */

/* An entry of the source map waiting to go into the piece. */
typedef struct staged {
    const char *key;
    const awmap_entry_t *e;
    uint8_t klen;
} staged_t;

/* A delta being filled, handed over when it reaches its byte budget. */
typedef struct piece {
    awmap_t *dst;
    /* entries copied in at the hand-over, in dot order: their dots then go
     * at the end of the piece's clouds instead of into their middles */
    staged_t *staged;
    size_t staged_n, staged_cap;
    int with_value;
    size_t bytes, budget;
    const awmap_t *src;     /* the map read from */
    const awmap_t *other;   /* the peer's context (or its dots piece) */
    const awmap_t *context; /* dots: the context each piece carries */
    size_t context_cloud;
    uint8_t want[DIGEST_BUCKETS];
    const uint8_t *cells; /* dots: the cells whose dots go (a mask) */
    digest_emit_fn emit;
    digest_dots_fn emit_dots;
    void *data;
    int err;
} piece_t;

static int piece_start(piece_t *p)
{
    p->dst = awmap_new_delta();
    p->bytes = 0;
    if (p->dst == NULL)
        return p->err = HERD_ENOMEM;
    if (p->context && awmap_copy_context_bounded(p->dst, p->context, p->context_cloud, NULL))
        p->err = HERD_ENOMEM;
    return p->err;
}

static int staged_cmp(const void *a, const void *b)
{
    const awmap_dot_t *x = &((const staged_t *)a)->e->dot, *y = &((const staged_t *)b)->e->dot;
    if (x->replica != y->replica)
        return x->replica < y->replica ? -1 : 1;
    return x->counter < y->counter ? -1 : x->counter > y->counter;
}

static void piece_copy_staged(piece_t *p)
{
    if (p->staged_n == 0)
        return;
    qsort(p->staged, p->staged_n, sizeof(p->staged[0]), staged_cmp);
    for (size_t i = 0; i < p->staged_n && p->err == 0; i++)
        p->err = awmap_copy_entry(p->dst, p->src, p->staged[i].key, p->staged[i].klen,
                                  p->staged[i].e, p->with_value);
    p->staged_n = 0;
}

/* Keep entry e of `key` for the piece (copied at the hand-over). */
static void piece_stage(piece_t *p, const char *key, size_t klen, const awmap_entry_t *e)
{
    if (p->staged_n == p->staged_cap) {
        size_t cap = p->staged_cap ? p->staged_cap * 2 : 256;
        staged_t *a = realloc(p->staged, cap * sizeof(*a));
        if (a == NULL) {
            p->err = HERD_ENOMEM;
            return;
        }
        p->staged = a;
        p->staged_cap = cap;
    }
    p->staged[p->staged_n++] = (staged_t){key, e, (uint8_t)klen};
}

/* Hand over the piece (a full one, or with `force` whatever it holds) and
 * start the next. */
static void piece_emit(piece_t *p, int force, int last)
{
    if (p->err || (!force && p->bytes < p->budget))
        return;
    piece_copy_staged(p);
    if (p->err)
        return;
    if (p->emit_dots)
        p->emit_dots(p->data, p->dst, last);
    else if (force && awmap_key_count(p->dst) == 0)
        return; /* nothing to say */
    else
        p->emit(p->data, p->dst);
    awmap_free(p->dst);
    p->dst = NULL;
    if (!last)
        piece_start(p);
}

static void piece_init(piece_t *p, const awmap_t *src, const digest_limits_t *limits)
{
    memset(p, 0, sizeof(*p));
    p->src = src;
    p->budget = limits->piece_bytes ? limits->piece_bytes : 1;
    p->context_cloud = limits->context_cloud;
}

static int piece_finish(piece_t *p)
{
    if (p->dst && p->err == 0)
        piece_emit(p, 1, 1);
    awmap_free(p->dst);
    free(p->staged);
    return p->err;
}

static void want_set(uint8_t want[DIGEST_BUCKETS], const uint8_t *buckets, size_t n)
{
    memset(want, 0, DIGEST_BUCKETS);
    for (size_t i = 0; i < n; i++)
        want[buckets[i]] = 1;
}

/* ---- A: dots ------------------------------------------------------------------------ */

static int dots_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    piece_t *p = data;
    if (!mask_has(p->cells, cell_of_hash(XXH3_64bits(key, klen))))
        return 0;
    for (; e && p->err == 0; e = awmap_next(e)) {
        if (p->other &&
            !awmap_seen(p->other, awmap_replica_id(p->src, e->dot.replica), e->dot.counter))
            continue; /* B never saw it: it cannot have removed it */
        piece_stage(p, key, klen, e);
        p->bytes += klen + PIECE_ENTRY_BYTES;
        piece_emit(p, 0, 0);
    }
    return p->err != 0;
}

static int replica_seen_by(void *data, awmap_replica_id_t id, uint64_t vv, size_t cloud,
                           uint64_t held)
{
    (void)vv;
    (void)cloud;
    size_t their_cloud;
    return held && (awmap_vv(data, id, &their_cloud) || their_cloud);
}

struct digest_dots_pass {
    piece_t p;
    uint8_t mask[DIGEST_MASK_BYTES];
    awmap_t *seen_by; /* owned; NULL: every dot goes */
    int any;          /* B may have seen a dot of ours (else nothing goes) */
};

digest_dots_pass_t *digest_dots_begin(const awmap_t *m, const uint8_t mask[DIGEST_MASK_BYTES],
                                      awmap_t *seen_by, const digest_limits_t *limits,
                                      digest_dots_fn emit, void *data)
{
    digest_dots_pass_t *d = malloc(sizeof(*d));
    if (d == NULL) {
        awmap_free(seen_by);
        return NULL;
    }
    piece_init(&d->p, m, limits);
    memcpy(d->mask, mask, sizeof(d->mask));
    d->seen_by = seen_by;
    d->p.context = m;
    d->p.other = seen_by;
    d->p.emit_dots = emit;
    d->p.data = data;
    d->p.cells = d->mask;
    /* B has seen no dot of any writer of our entries (it is new): none of
     * them goes, and the passes over the map are skipped */
    d->any = seen_by == NULL || awmap_foreach_replica(m, replica_seen_by, seen_by);
    if (piece_start(&d->p) != 0) {
        digest_dots_free(d);
        return NULL;
    }
    return d;
}

int digest_dots_step(digest_dots_pass_t *d, const awmap_t *m, uint32_t lo, uint64_t hi)
{
    d->p.src = d->p.context = m;
    if (d->p.err == 0 && d->any)
        awmap_foreach_range(m, lo, hi, dots_key, &d->p);
    /* what is staged points into m, which may change before the next step */
    if (d->p.err == 0)
        piece_copy_staged(&d->p);
    return d->p.err;
}

int digest_dots_finish(digest_dots_pass_t *d, const awmap_t *m)
{
    d->p.src = d->p.context = m;
    int rc = piece_finish(&d->p);
    awmap_free(d->seen_by);
    free(d);
    return rc;
}

void digest_dots_free(digest_dots_pass_t *d)
{
    if (d == NULL)
        return;
    awmap_free(d->p.dst);
    free(d->p.staged);
    awmap_free(d->seen_by);
    free(d);
}

int digest_dots(const awmap_t *m, const uint8_t mask[DIGEST_MASK_BYTES], const awmap_t *seen_by,
                const digest_limits_t *limits, digest_dots_fn emit, void *data)
{
    awmap_t *copy = NULL;
    if (seen_by && ((copy = awmap_new_delta()) == NULL || awmap_copy_context(copy, seen_by))) {
        awmap_free(copy);
        return HERD_ENOMEM;
    }
    digest_dots_pass_t *d = digest_dots_begin(m, mask, copy, limits, emit, data);
    if (d == NULL)
        return HERD_ENOMEM;
    int rc = digest_dots_step(d, m, 0, DIGEST_POSITIONS);
    if (rc) {
        digest_dots_free(d);
        return rc;
    }
    return digest_dots_finish(d, m);
}

/* ---- B: the answers ------------------------------------------------------------------- */

static int mine_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    piece_t *p = data;
    if (!p->want[digest_bucket(key, klen)])
        return 0;
    for (; e && p->err == 0; e = awmap_next(e)) {
        if (awmap_seen(p->other, awmap_replica_id(p->src, e->dot.replica), e->dot.counter))
            continue;
        piece_stage(p, key, klen, e);
        p->bytes += klen + e->len + PIECE_ENTRY_BYTES;
        piece_emit(p, 0, 0);
    }
    return p->err != 0;
}

struct digest_answer {
    piece_t p;
};

digest_answer_t *digest_answer_begin(const awmap_t *theirs, const uint8_t want[DIGEST_BUCKETS],
                                     const digest_limits_t *limits, digest_emit_fn emit,
                                     void *data)
{
    digest_answer_t *a = malloc(sizeof(*a));
    if (a == NULL)
        return NULL;
    piece_init(&a->p, NULL, limits);
    a->p.other = theirs;
    a->p.emit = emit;
    a->p.data = data;
    a->p.with_value = 1;
    memcpy(a->p.want, want, DIGEST_BUCKETS);
    if (piece_start(&a->p) != 0) {
        digest_answer_free(a);
        return NULL;
    }
    return a;
}

int digest_answer_step(digest_answer_t *a, const awmap_t *mine, uint32_t lo, uint64_t hi)
{
    a->p.src = mine;
    if (a->p.err == 0)
        awmap_foreach_range(mine, lo, hi, mine_key, &a->p);
    /* what is staged points into `mine`, which may change before the next
     * step: it goes into the piece now */
    if (a->p.err == 0)
        piece_copy_staged(&a->p);
    return a->p.err;
}

int digest_answer_finish(digest_answer_t *a)
{
    int rc = piece_finish(&a->p);
    free(a);
    return rc;
}

void digest_answer_free(digest_answer_t *a)
{
    if (a == NULL)
        return;
    awmap_free(a->p.dst);
    free(a->p.staged);
    free(a);
}

int digest_answer_mine(const awmap_t *mine, const awmap_t *theirs,
                       const uint8_t want[DIGEST_BUCKETS], const digest_limits_t *limits,
                       digest_emit_fn emit, void *data)
{
    digest_answer_t *a = digest_answer_begin(theirs, want, limits, emit, data);
    if (a == NULL)
        return HERD_ENOMEM;
    int rc = digest_answer_step(a, mine, 0, DIGEST_POSITIONS);
    if (rc) {
        digest_answer_free(a);
        return rc;
    }
    return digest_answer_finish(a);
}

static int holds(const awmap_t *m, const char *key, size_t klen, awmap_replica_id_t id,
                 uint64_t counter)
{
    for (const awmap_entry_t *e = awmap_get(m, key, klen); e; e = awmap_next(e)) {
        awmap_replica_id_t x = awmap_replica_id(m, e->dot.replica);
        if (x.node == id.node && x.incarnation == id.incarnation && e->dot.counter == counter)
            return 1;
    }
    return 0;
}

static int theirs_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    piece_t *p = data;
    for (; e && p->err == 0; e = awmap_next(e)) {
        awmap_replica_id_t id = awmap_replica_id(p->other, e->dot.replica);
        if (!awmap_seen(p->src, id, e->dot.counter) || holds(p->src, key, klen, id, e->dot.counter))
            continue;
        p->err = awmap_note_removed(p->dst, key, klen, id, e->dot.counter);
        p->bytes += klen + PIECE_ENTRY_BYTES;
        piece_emit(p, 0, 0);
    }
    return p->err != 0;
}

int digest_answer_theirs(const awmap_t *mine, const awmap_t *piece,
                         const digest_limits_t *limits, digest_emit_fn emit, void *data)
{
    piece_t p;
    piece_init(&p, mine, limits);
    p.other = piece;
    p.emit = emit;
    p.data = data;
    if (piece_start(&p) == 0)
        awmap_foreach(piece, theirs_key, &p);
    return piece_finish(&p);
}

int digest_answer(const awmap_t *mine, const awmap_t *dots, const uint8_t *buckets, size_t n,
                  size_t piece_bytes, digest_emit_fn emit, void *data)
{
    digest_limits_t limits = {piece_bytes, 0};
    uint8_t want[DIGEST_BUCKETS];
    want_set(want, buckets, n);
    int rc = digest_answer_theirs(mine, dots, &limits, emit, data);
    return rc ? rc : digest_answer_mine(mine, dots, want, &limits, emit, data);
}

int digest_context(const awmap_t *m, size_t cloud, digest_dots_fn emit, void *data)
{
    uint32_t replica = 0, at = 0;
    for (;;) {
        awmap_t *piece = awmap_new_delta();
        int rc = piece ? awmap_copy_context_part(piece, m, &replica, &at, cloud ? cloud : 1)
                       : HERD_ENOMEM;
        if (rc >= 0)
            emit(data, piece, rc == 1);
        awmap_free(piece);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}
