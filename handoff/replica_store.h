/*
 * replica_store.h - the copies of other nodes' children's states this node
 * keeps as a replica (replicas.c says when they come and go).
 *
 * One entry per child name: the bytes of its state as its owner last sent
 * them, the registration they belong to (its first-registration time),
 * their version and the run of the child that wrote them (its writer). A
 * newer copy replaces an older one (replica_newer).
 *
 * Two registrations of one child can run at once (a partition: one side
 * started or promoted a copy while the other ran on). Where the child's
 * behaviour can merge states, a copy of the registration that does not
 * win is not thrown away: it is kept beside the winner's as an "other"
 * (the newest of each registration, up to REPLICA_OTHERS_MAX), until the
 * winner's owner says it merged it, the spec goes, or a query takes it to
 * merge.
 *
 * Two runs of one registration can fork too: a run promoted from a copy
 * older than the newest (a partition hid the newest one) writes versions
 * above those of the copy it never saw. Where the behaviour can merge, a
 * put never replaces a copy its run does not hold (replica_lineage_holds):
 * that copy is kept as an other of the same registration, its writer
 * telling it apart, and merged like one. No I/O here.
 */
#ifndef HERD_REPLICA_STORE_H
#define HERD_REPLICA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "u64map.h"

/* The most copies of other registrations kept beside a name's copy. */
#define REPLICA_OTHERS_MAX 4

/* Which run of a child wrote a state (`writer`: one per process that ran
 * it, on any node) and the copy that run started from (`base_writer`'s at
 * `base_version`; zeros for a run started from its spec). */
typedef struct replica_lineage {
    uint64_t writer, base_writer, base_version;
} replica_lineage_t;
/* Whether the state of a run of lineage `l` holds what a copy written by
 * `writer` at `version` holds: the run wrote it, or it is the copy the run
 * started from or an earlier one of the same writer. Anything else may
 * hold updates the run lacks (a copy two runs back is counted so too:
 * merged again, which a merge that is a join does not mind). */
int replica_lineage_holds(const replica_lineage_t *l, uint64_t writer, uint64_t version);

typedef struct replica_other {
    uint64_t hlc, version, writer;
    uint64_t offered; /* node clock: when it was last sent to be merged (0: never) */
    uint8_t *bytes;
    size_t len;
} replica_other_t;

typedef struct replica {
    struct replica *twin; /* another name with the same hash */
    char *name;
    uint64_t hash;
    uint64_t owner; /* the node that sent it */
    uint64_t hlc;   /* the registration's first-registration time */
    uint64_t version;
    uint64_t writer; /* the run that wrote it (replica_lineage_t) */
    uint64_t touched; /* node clock: when a put last stored or confirmed it */
    uint64_t offered; /* node clock: when it was last sent to be merged (0: never) */
    int service; /* the caller's: its child's service index + 1 (0: not known) */
    uint8_t *bytes;
    size_t len;
    /* copies of other registrations: REPLICA_OTHERS_MAX places, allocated
     * with the first (most names never have one) */
    replica_other_t *others;
    size_t others_n;
} replica_t;

typedef struct replica_store {
    u64map_t by_hash; /* name hash -> replica_t (twins chained) */
    size_t count;
    uint64_t bytes; /* state bytes held, others' included */
    uint64_t others_dropped; /* others that found no room (the oldest went), or no memory */
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
/* Keep a copy of `bytes`, written by the run `lin`, as name's replica,
 * replacing an older one. With `mergeable` (the behaviour has
 * resolve_conflict), the copy of another registration of the current spec
 * that loses, either way round, is kept as an other; so is a copy of the
 * put's registration that its run does not hold (a fork: the put becomes
 * the copy, whatever its version). An other of the put's writer that wins
 * becomes the copy at the newer of the two versions. Returns 1 stored as
 * name's copy, 2 kept as an other, 0 not stored (not newer; or a newer
 * version of its writer, kept as an other so far, became the copy
 * instead), HERD_ENOMEM. */
/* *at: on entry replica_find(s, name), the caller's lookup; on return
 * name's replica (NULL: none, nothing stored). */
int replica_put(replica_store_t *s, replica_t **at, const char *name, uint64_t owner,
                uint64_t hlc, uint64_t version, const replica_lineage_t *lin,
                replica_rank_t rank, int mergeable, const uint8_t *bytes, size_t len);
/* Drop name's other of registration `hlc` written by `writer` at version
 * `upto` or below (merged: a newer one of that writer holds more). Returns
 * whether one went. */
int replica_drop_other(replica_store_t *s, const char *name, uint64_t hlc, uint64_t writer,
                       uint64_t upto);
/* Drop name's replica (of the registration `hlc`, or any when hlc is 0,
 * its others included; with `hlc`, others waiting to be merged stay).
 * Returns whether one went. */
int replica_drop(replica_store_t *s, const char *name, uint64_t hlc);

#endif
