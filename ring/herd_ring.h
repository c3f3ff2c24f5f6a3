/*
 * ring.h - herd's consistent hash ring: which node owns which name.
 *
 * Members are (name, weight); a member owns `weight` points on a 64-bit circle.
 * Point i of member m sits at XXH3_64bits(m || 0x00 || i as 4 bytes little
 * endian): names hold no NUL and the index has a fixed width, so no two
 * (member, index) pairs share a hash input ("n1"+"12" cannot equal "n11"+"2"). A key hashes to XXH3_64bits(key, len) and belongs to the
 * member of the first point >= that hash, wrapping past the top. Points with equal
 * hashes are ordered by member name. The ring is a pure value: the same member set
 * gives the same ring, and the same answers, whatever order it was built in.
 *
 * Changing the hash or the point scheme moves every process of a running cluster,
 * so tests/unit/test_ring.c pins placement with test vectors.
 *
 * Names returned by the ring (owners, members) stay valid until the ring is next
 * modified or freed. A ring is not thread-safe; readers may share a ring nobody
 * modifies.
 */
#ifndef HERD_RING_H
#define HERD_RING_H

#include <stddef.h>
#include <stdint.h>

#include "herd_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

#define HERD_RING_DEFAULT_WEIGHT 128u /* points per member, as libring */
#define HERD_RING_MAX_WEIGHT 4096u
#define HERD_RING_MAX_MEMBERS 4096u
#define HERD_RING_NAME_MAX 64u     /* bytes, without the NUL */
#define HERD_RING_NONE UINT32_MAX  /* "no member": the owner side of an empty ring */

typedef struct herd_ring herd_ring_t;

typedef struct herd_ring_member_info {
    const char *name;
    uint32_t weight;
    uint32_t points;
    double share; /* fraction of the key space it owns, 0..1 */
} herd_ring_member_info_t;

/* Keys whose hash h satisfies lo <= h <= hi change owner from `from` to `to`
 * (indices into herd_ring_diff_t.names; `from` is HERD_RING_NONE when the old ring was
 * empty, `to` when the new one is). */
typedef struct herd_ring_move {
    uint64_t lo, hi;
    uint32_t from, to;
} herd_ring_move_t;

/* All moves between the same two members, summed. */
typedef struct herd_ring_move_total {
    uint32_t from, to;
    double share;
} herd_ring_move_total_t;

typedef struct herd_ring_diff {
    char **names; /* owned; every member of either ring, sorted */
    size_t name_count;
    herd_ring_move_t *moves; /* owned; sorted by lo, adjacent equal moves merged */
    size_t move_count;
    herd_ring_move_total_t *totals; /* owned; sorted by (from, to) name */
    size_t total_count;
    double moved_share; /* fraction of the key space that changes owner */
} herd_ring_diff_t;

/* Lifecycle. herd_ring_new/herd_ring_clone return NULL when out of memory. */
herd_ring_t *herd_ring_new(void);
herd_ring_t *herd_ring_clone(const herd_ring_t *r);
void herd_ring_free(herd_ring_t *r);

/* Membership. `name` is 1..HERD_RING_NAME_MAX bytes of A-Za-z0-9_.- and weight is
 * 1..HERD_RING_MAX_WEIGHT. Errors: HERD_EBADNAME, HERD_ENAMETOOLONG, HERD_ERANGE,
 * HERD_EEXIST (add of a member already there), HERD_ENOENT (remove or
 * set_weight of an unknown member), HERD_ENOMEM. On error the ring is
 * unchanged. */
int herd_ring_add(herd_ring_t *r, const char *name, uint32_t weight);
int herd_ring_remove(herd_ring_t *r, const char *name);
int herd_ring_set_weight(herd_ring_t *r, const char *name, uint32_t weight);
/* Add n members at once, all or nothing, with one rebuild (n herd_ring_add calls
 * merge the whole ring n times: seconds for a thousand members). The same
 * ring as adding them one by one. Errors as herd_ring_add (HERD_EEXIST also for a
 * name given twice); *bad, when not NULL, gets the index of the entry at
 * fault (n for a limit or memory). */
int herd_ring_add_many(herd_ring_t *r, const char *const *names, const uint32_t *weights, size_t n,
                  size_t *bad);
/* 0 when `name` is a valid member name, else HERD_EBADNAME/HERD_ENAMETOOLONG. */
int herd_ring_check_name(const char *name);

size_t herd_ring_member_count(const herd_ring_t *r);
size_t herd_ring_point_count(const herd_ring_t *r);
/* Members in name order: i in 0..herd_ring_member_count()-1. HERD_ERANGE past the end. */
int herd_ring_member_at(const herd_ring_t *r, size_t i, herd_ring_member_info_t *out);
/* HERD_ENOENT when `name` is not a member. */
int herd_ring_member_find(const herd_ring_t *r, const char *name, herd_ring_member_info_t *out);
/* Points in ring order: i in 0..herd_ring_point_count()-1. HERD_ERANGE past the end. */
int herd_ring_point_at(const herd_ring_t *r, size_t i, uint64_t *hash, const char **owner);

/* The hash a key is placed by. */
uint64_t herd_ring_hash_key(const void *key, size_t len);

/* The owner of a key (or of a pre-hashed key). HERD_EEMPTY on an empty ring. */
int herd_ring_owner(const herd_ring_t *r, const void *key, size_t len, const char **owner);
int herd_ring_owner_of_hash(const herd_ring_t *r, uint64_t hash, const char **owner);

/* The owner and its distinct successors clockwise: fills out[0..k) with
 * k = min(n, members) names, out[0] being the owner, and returns k (>= 1), or
 * HERD_EEMPTY on an empty ring, HERD_EINVAL for n == 0. */
int herd_ring_owners(const herd_ring_t *r, const void *key, size_t len, const char **out, size_t n);

/* Which key ranges change owner from `old` to `new`. Fills *out (free it with
 * herd_ring_diff_free) and returns 0, or HERD_ENOMEM with *out left empty. */
int herd_ring_compare(const herd_ring_t *old, const herd_ring_t *new_ring, herd_ring_diff_t *out);
void herd_ring_diff_free(herd_ring_diff_t *d);

/* A stable text dump: a header line, then one line per member in name order:
 *   ring members=3 points=384
 *   NAME WEIGHT POINTS SHARE
 *   a 128 128 0.334512 ...
 * Writes at most `cap` bytes (NUL included) like snprintf and returns the
 * length the whole dump needs, without the NUL. */
size_t herd_ring_dump_text(const herd_ring_t *r, char *buf, size_t cap);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
