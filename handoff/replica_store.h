/*
 * replica_store.h - the copies of other nodes' children's states this node
 * keeps as a replica (replicas.c says when they come and go).
 *
 * One entry per child name: the bytes of its state as its owner last sent
 * them, the registration they belong to (its first-registration time) and
 * their version. A newer copy replaces an older one (replica_newer). No
 * I/O here.
 */
#ifndef HERD_REPLICA_STORE_H
#define HERD_REPLICA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "u64map.h"

typedef struct replica {
    struct replica *twin; /* another name with the same hash */
    char *name;
    uint64_t hash;
    uint64_t owner; /* the node that sent it */
    uint64_t hlc;   /* the registration's first-registration time */
    uint64_t version;
    uint64_t touched; /* node clock: when a put last stored or confirmed it */
    uint8_t *bytes;
    size_t len;
} replica_t;

typedef struct replica_store {
    u64map_t by_hash; /* name hash -> replica_t (twins chained) */
    size_t count;
    uint64_t bytes; /* state bytes held */
} replica_store_t;

void replica_store_init(replica_store_t *s);
void replica_store_fini(replica_store_t *s);
replica_t *replica_find(const replica_store_t *s, const char *name);
/* What decides between copies of two registrations of a child: the
 * first-registration time of the registration the registry shows now
 * (`visible`, 0 when none), and the spec's write time (`floor`, 0 when
 * unknown): registrations made for the current spec are at least that old,
 * older ones are of a child terminated since. */
typedef struct replica_rank {
    uint64_t visible, floor;
} replica_rank_t;
/* Whether a copy of registration `hlc` at `version` is newer than one of
 * (old_hlc, old_version). Within one registration the higher version wins.
 * Between two, the visible one's copy wins (its owner is the one running
 * the child); failing that, one of the current spec beats an older one,
 * and of two current ones the earlier registration wins, as the registry's
 * conflict rule has it (the loser's state is merged into the winner). */
int replica_rank_newer(uint64_t old_hlc, uint64_t old_version, uint64_t hlc, uint64_t version,
                       replica_rank_t rank);
/* The same against what `r` holds (any copy is newer than none). */
int replica_newer(const replica_t *r, uint64_t hlc, uint64_t version, replica_rank_t rank);
/* Keep a copy of `bytes` as name's replica, replacing an older one.
 * Returns 1 stored, 0 not newer (nothing changed), HERD_ENOMEM. */
int replica_put(replica_store_t *s, const char *name, uint64_t owner, uint64_t hlc,
                uint64_t version, replica_rank_t rank, const uint8_t *bytes, size_t len);
/* Drop name's replica (of the registration `hlc`, or any when hlc is 0).
 * Returns whether one went. */
int replica_drop(replica_store_t *s, const char *name, uint64_t hlc);

#endif
