/*
 * digest.h - digest-driven state sync for a node that joins or comes back:
 * only what differs travels, never the whole map or the whole history.
 *
 * How it works (shared/notes/delta-crdt.md, "State sync")
 * ----------------------------------------------------
 * A sends B a digest: its live entries hashed into DIGEST_BUCKETS buckets by
 * key, with a count and a checksum of the (key, dot) pairs in each. B answers
 * with the buckets whose summary differs from its own. A sends the dots it
 * holds in those buckets, with its causal context (a map whose entries carry
 * no values). B answers with one delta: (a) its entries in those buckets whose
 * dots A's context has not seen, and (b) those of A's dots that B's context
 * has seen but B no longer holds — removals A missed. Joining that delta gives
 * A everything B knows about those buckets; entries both hold are untouched.
 * Each side runs the exchange toward the other, so both end up complete.
 * Pure functions over awmap: no I/O.
 */
#ifndef HERD_DIGEST_H
#define HERD_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "awmap.h"

#define DIGEST_BUCKETS 256u

typedef struct digest {
    uint64_t sum[DIGEST_BUCKETS];
    uint32_t count[DIGEST_BUCKETS];
} digest_t;

/* The bucket of a key. */
unsigned digest_bucket(const char *key, size_t klen);
void digest_of(const awmap_t *m, digest_t *out);
void digest_encode(const digest_t *d, wire_writer_t *w);
int digest_decode(wire_reader_t *r, digest_t *out);
/* The buckets whose summaries differ; writes their numbers into out and
 * returns how many. */
size_t digest_diff(const digest_t *a, const digest_t *b, uint8_t out[DIGEST_BUCKETS]);

/* A's side: its context and the dots (no values) of its entries in the given
 * buckets, as a delta map to encode and send. */
awmap_t *digest_dots(const awmap_t *m, const uint8_t *buckets, size_t n);

/* B's side: given A's dots map (decoded), the delta A needs: B's entries in
 * those buckets that A has not seen, and A's dots that B has seen removed.
 * It comes in pieces of about `batch` keys, each a delta of its own, handed to
 * emit (which must not keep the map). */
typedef void (*digest_emit_fn)(void *data, const awmap_t *piece);
int digest_answer(const awmap_t *mine, const awmap_t *dots, const uint8_t *buckets, size_t n,
                  size_t batch, digest_emit_fn emit, void *data);

#endif
