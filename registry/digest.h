/*
 * digest.h - digest-driven state sync between two registry replicas: only
 * what differs travels, never the whole map or the whole history. Pure
 * functions over awmap: no I/O. registry/PROTOCOL.md gives the messages and
 * why the exchange is complete; in short, for A pulling from B:
 *
 * 1. A sends B its digest: its entries hashed into DIGEST_BUCKETS buckets by
 *    key, a count and a checksum of the (key, dot) pairs in each. Each node
 *    keeps its own digest up to date as its map changes (digest_update).
 * 2. B diffs it against its own, keeps a copy of its causal context as it is
 *    at that moment (the snapshot) and names the buckets that differ.
 * 3. A sends the dots it holds in those buckets that B's context (sent with
 *    the buckets) has seen, with its own causal context, in pieces
 *    (digest_dots).
 * 4. B answers with deltas: A's dots that B has seen and no longer holds
 *    (removals A missed; digest_answer_theirs, per piece), then its entries
 *    in those buckets that A's context has not seen (digest_answer_mine, once).
 * 5. B sends the snapshot; A joins it into its context. Every dot in it is
 *    one A now holds or has seen removed: a dot B held in a bucket that did
 *    not differ was held by A when A made its digest, one in a bucket that
 *    differed was sent in step 4 unless A had seen it or B removed it since.
 *    So A's context takes in the dots added and removed before A joined or
 *    came back, and its clouds empty.
 * Each side runs the exchange toward the other, so both end up complete with
 * equal contexts.
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

/* The second level: each bucket cut into DIGEST_SUBS cells by the next bits
 * of its keys' hashes, each cell a checksum of its (key, dot) pairs (128
 * KiB a node). The answering node sends its cells of the buckets that
 * differ (SYNC_FINE), and the puller's dots (step 3) are only those of the
 * cells that differ: what the exchange carries grows with what differs,
 * not with the map (a few names in flight touch every bucket of a million
 * names, but only a few of the 16,384 cells). */
#define DIGEST_SUBS 64u
#define DIGEST_CELLS (DIGEST_BUCKETS * DIGEST_SUBS)
#define DIGEST_MASK_BYTES (DIGEST_CELLS / 8) /* a set of cells, one bit each */

typedef struct digest_fine {
    uint64_t sum[DIGEST_CELLS];
} digest_fine_t;

/* The bucket of a key. */
unsigned digest_bucket(const char *key, size_t klen);
/* The digest of a whole map (a full pass: for tests and a first build);
 * `fine` (may be NULL) gets its cells. */
void digest_of(const awmap_t *m, digest_t *out, digest_fine_t *fine);
/* Keep a digest (and its cells, unless `fine` is NULL) up to date: entry
 * `e` of `key` in map `m` was added (sign 1) or removed (sign -1). */
void digest_update(digest_t *d, digest_fine_t *fine, const awmap_t *m, const char *key,
                   size_t klen, const awmap_entry_t *e, int sign);
/* digest_update of a key whose hash (awmap_key_hash) the caller has. */
void digest_update_hashed(digest_t *d, digest_fine_t *fine, const awmap_t *m, uint64_t kh,
                          const awmap_entry_t *e, int sign);
/* Ask for the sums a change of the key with hash kh updates ahead of
 * digest_update_hashed: the fine sums are 128 KiB read at random, and a
 * change's other work hides the wait. */
static inline void digest_prefetch(const digest_t *d, const digest_fine_t *fine, uint64_t kh)
{
    __builtin_prefetch(&d->sum[kh >> 56], 1);
    if (fine)
        __builtin_prefetch(&fine->sum[kh >> (64 - 14)], 1);
}

/* The cells of the n buckets listed (SYNC_FINE's body after its round):
 * a u16 count, then each bucket's number and its DIGEST_SUBS sums, at most
 * DIGEST_FINE_MAX_BYTES in all. */
#define DIGEST_FINE_MAX_BYTES (2 + DIGEST_BUCKETS * (1 + 8 * DIGEST_SUBS))
void digest_fine_encode(const digest_fine_t *f, const uint8_t *buckets, size_t n,
                        wire_writer_t *w);
/* Read the peer's cells and compare them with ours: the cells that differ
 * go into mask, and each bucket read is flagged in got[]. A bucket may have
 * no cell differing any more (our digest, offered before, was behind: what
 * we took in since made the bucket equal): none of its dots go. 0, or
 * HERD_EBADFRAME (then nothing read may be used). */
int digest_fine_compare(wire_reader_t *r, const digest_fine_t *mine,
                        uint8_t mask[DIGEST_MASK_BYTES], uint8_t got[DIGEST_BUCKETS]);
/* Make mask the cells to send dots of: for each of the n buckets listed,
 * its differing cells when got[b] (digest_fine_compare), else all of them;
 * no cell of another bucket. got may be NULL (no cells came). */
void digest_mask_of(uint8_t mask[DIGEST_MASK_BYTES], const uint8_t *buckets, size_t n,
                    const uint8_t *got);
void digest_encode(const digest_t *d, wire_writer_t *w);
int digest_decode(wire_reader_t *r, digest_t *out);
/* The buckets whose summaries differ; writes their numbers into out and
 * returns how many. */
size_t digest_diff(const digest_t *a, const digest_t *b, uint8_t out[DIGEST_BUCKETS]);

/* Bytes a piece may hold (an estimate of its encoding, kept below it), and
 * the cloud counters a context sent along may keep. */
typedef struct digest_limits {
    size_t piece_bytes;
    size_t context_cloud;
} digest_limits_t;

/* A's side (step 3): its dots (entries without values) in the cells of mask,
 * in pieces of about limits->piece_bytes, each with A's context (its cloud
 * cut to limits->context_cloud counters: a context that says less makes B
 * send more, never less). Only the dots B's context `seen_by` has seen go (B
 * can tell a removal only of a dot it has seen); NULL sends them all. One
 * pass over the map; the last piece (maybe without keys) comes with last =
 * 1. emit must not keep the map. */
typedef void (*digest_dots_fn)(void *data, const awmap_t *piece, int last);
int digest_dots(const awmap_t *m, const uint8_t mask[DIGEST_MASK_BYTES], const awmap_t *seen_by,
                const digest_limits_t *limits, digest_dots_fn emit, void *data);
/* digest_dots made range by range, like digest_answer_begin below, so that
 * a pass over a large map is spread over loop iterations: begin (taking
 * `seen_by`, which it frees; the mask is copied), steps over successive
 * positions [lo, hi) of m covering [0, DIGEST_POSITIONS) (the map may
 * change between steps: a dot held throughout goes if its cell is in the
 * mask and B has seen it), finish (the last piece goes, last = 1; frees
 * the pass) or free (abandoned). */
typedef struct digest_dots_pass digest_dots_pass_t;
digest_dots_pass_t *digest_dots_begin(const awmap_t *m, const uint8_t mask[DIGEST_MASK_BYTES],
                                      awmap_t *seen_by, const digest_limits_t *limits,
                                      digest_dots_fn emit, void *data);
int digest_dots_step(digest_dots_pass_t *d, const awmap_t *m, uint32_t lo, uint64_t hi);
int digest_dots_finish(digest_dots_pass_t *d, const awmap_t *m);
void digest_dots_free(digest_dots_pass_t *d);

/* B's side (step 4), each answer a series of deltas of about
 * limits->piece_bytes handed to emit (which must not keep the map):
 * - theirs: of the dots in A's piece, those B has seen and no longer holds;
 * - mine: B's entries in the buckets flagged in want[] whose dots A's
 *   context `theirs` has not seen (one pass over B's map). */
typedef void (*digest_emit_fn)(void *data, const awmap_t *piece);
int digest_answer_theirs(const awmap_t *mine, const awmap_t *piece,
                         const digest_limits_t *limits, digest_emit_fn emit, void *data);
int digest_answer_mine(const awmap_t *mine, const awmap_t *theirs,
                       const uint8_t want[DIGEST_BUCKETS], const digest_limits_t *limits,
                       digest_emit_fn emit, void *data);
/* digest_answer_mine made range by range, so that a large answer is spread
 * over loop iterations: begin (with A's context, kept by the caller until
 * the end), steps over successive positions [lo, hi) of `mine` covering
 * [0, DIGEST_POSITIONS) (awmap_foreach_range: the map may change between
 * steps; an entry held throughout is sent unless A has seen it), finish
 * (the last piece goes; frees it) or free (abandoned). */
#define DIGEST_POSITIONS (1ull << 32)
typedef struct digest_answer digest_answer_t;
digest_answer_t *digest_answer_begin(const awmap_t *theirs, const uint8_t want[DIGEST_BUCKETS],
                                     const digest_limits_t *limits, digest_emit_fn emit,
                                     void *data);
int digest_answer_step(digest_answer_t *a, const awmap_t *mine, uint32_t lo, uint64_t hi);
int digest_answer_finish(digest_answer_t *a);
void digest_answer_free(digest_answer_t *a);
/* Both at once, for a dots map covering the buckets listed (tests). */
int digest_answer(const awmap_t *mine, const awmap_t *dots, const uint8_t *buckets, size_t n,
                  size_t piece_bytes, digest_emit_fn emit, void *data);

/* Step 5: B's context in pieces of at most `cloud` cloud counters each
 * (their union is the whole context), each a map without keys; the last
 * comes with last = 1. */
int digest_context(const awmap_t *m, size_t cloud, digest_dots_fn emit, void *data);

#endif
