/*
 * replicas_int.h - what replicas.c, replica_serve.c and replica_query.c
 * share: the replication stream's messages and its per-node state.
 */
#ifndef HERD_REPLICAS_INT_H
#define HERD_REPLICAS_INT_H

#include <uv.h>

#include "dsup_int.h"
#include "replica_store.h"

enum {
    REPL_PUT = 1,
    REPL_ACK,
    REPL_DROP,
    REPL_QUERY,
    REPL_HAVE,
    REPL_MERGE,
    REPL_MERGED,
    REPL_PUTS, /* the puts of one loop iteration to one member */
    REPL_ACKS, /* the acknowledgements of one such batch */
};
/* A batch of puts or acknowledgements goes once it reaches this many bytes
 * (and at the end of the loop iteration's flush): every message stays
 * under the cluster's frame limit, a state of REPL_STATE_MAX included. */
#define REPL_BATCH_MAX (128u << 10)
/* An ack's `stored` when a put's change does not follow the copy kept
 * there (another version, another run, none): the whole state is wanted. */
#define REPL_ACK_GAP 2
/* An ack's `stored` when the replica has no room for the put (its
 * max_replica_bytes, or its memory): its owner's replies go without it. */
#define REPL_ACK_NO_ROOM 3
/* A put whose set has not acknowledged it this long is put again (an
 * acknowledgement a send refused; its replies wait meanwhile). */
#define REPL_ACK_WAIT_MS 2000u
/* At most one batch of puts is in flight to a member: while one waits for
 * its acknowledgements, the children replicated to that member stay dirty
 * and go together in the next batch once they come (adaptive group
 * commit: an idle cluster puts at once, a loaded one in fewer, larger
 * batches). A batch unanswered this long no longer holds the next one
 * (lost, or its member slow or gone; its own puts are put again after
 * REPL_ACK_WAIT_MS). */
#define REPL_INFLIGHT_MS 10u

/* Messages to several members, one batch each (puts, or acknowledgements):
 * an entry goes into its member's batch, and a batch is sent when full
 * and by repl_batches_send. */
typedef struct repl_batch {
    uint64_t to;
    wire_writer_t w;
    size_t entries;
} repl_batch_t;
typedef struct repl_batches {
    uint8_t kind; /* REPL_PUTS or REPL_ACKS */
    repl_batch_t *b;
    size_t n, cap;
} repl_batches_t;
/* The batch for `to` with room for `need` more bytes (the full one sent
 * first); NULL when out of memory. */
wire_writer_t *repl_batch_for(dsup_t *d, repl_batches_t *bs, uint64_t to, size_t need);
/* Send every batch and free them; returns how many sends failed. */
size_t repl_batches_send(dsup_t *d, repl_batches_t *bs);
/* A copy of another registration kept beside a child's (replica_store.h)
 * is offered to the child's owner to merge again after this long, until it
 * says it merged it. */
#define REPL_MERGE_RESEND_MS 1000u
/* The largest state put to replicas in one message (a larger one is not
 * replicated: its replies go counted as unreplicated, and too_big). */
#define REPL_STATE_MAX (512u << 10)
/* A copy no put touched for this long, of a child whose owner's replica
 * set (as this node computes it) does not hold this node, goes. */
#define REPL_GC_MS 30000u

/* A child to put: its process serial, and the member of its set whose
 * batch in flight it waited for last (0: none), so that while that batch
 * is still in flight the child is passed over without a lookup. */
typedef struct repl_dirty {
    uint64_t serial, waits_on;
} repl_dirty_t;

/* A walk over the copies kept here spread over ticks (replica_serve.c):
 * under way, and the store map's slot where its next slice starts. */
typedef struct copy_walk {
    int on;
    size_t cursor;
} copy_walk_t;

typedef struct repl {
    dsup_t *d; /* NULL once the supervisor is freed */
    uv_prepare_t prepare; /* puts the dirty children at the end of an iteration */
    repl_dirty_t *dirty;  /* children to put */
    size_t dirty_n, dirty_cap;
    size_t retries;       /* children whose put a send refused */
    replica_store_t store; /* copies kept here for other owners */
    u64map_t queries;     /* query id -> repl_query_t (replica_query.c) */
    uint64_t next_query;
    uint64_t last_gc; /* node clock: when the last replica_gc walk began */
    uint64_t last_orphans; /* node clock: when the last replica_orphans walk began */
    copy_walk_t gc_walk, orphans_walk; /* those walks, a slice a tick */
    uint64_t last_unacked; /* node clock: the last look for puts not acknowledged */
    u64map_t inflight; /* member id -> 1 + node clock when a batch of puts went to it,
                          until its acknowledgements come (REPL_INFLIGHT_MS) */
    /* dirty[0 .. waiting) wait for batches in flight, and are looked at
     * again only once one is answered or expires (rescan, next_expiry):
     * a loaded owner does not walk every waiting child each iteration */
    size_t waiting;
    int rescan;
    uint64_t next_expiry; /* node clock: the first in-flight batch to expire */
} repl_t;

int repl_send_ack(dsup_t *d, uint64_t to, const char *name, uint64_t hlc, uint64_t version,
                  int stored);
/* Send an encoded replication message (the writer is consumed). */
int repl_send(dsup_t *d, uint64_t to, wire_writer_t *w);
/* Whether children of `name`'s spec can merge states (resolve_conflict). */
int repl_mergeable(dsup_t *d, const char *name);
/* A copy message (put, merge, or a query's answer): u8 kind, str name,
 * [u64 query id, u8 has,] u64 first-registration time, u64 version, u64 x 3
 * lineage (writer, base writer, base version), bytes. */
void repl_put_copy(wire_writer_t *w, uint8_t kind, const char *name, const uint64_t *query,
                   uint8_t has, uint64_t hlc, uint64_t version, const replica_lineage_t *lin,
                   const uint8_t *bytes, size_t len);
int repl_send_copy(dsup_t *d, uint64_t to, uint8_t kind, const char *name, const uint64_t *query,
                   uint8_t has, uint64_t hlc, uint64_t version, const replica_lineage_t *lin,
                   const uint8_t *bytes, size_t len);
/* The lineage a copy kept by a replica travels with: its writer, as its
 * own base (the replica does not keep the run's base). */
replica_lineage_t repl_copy_lineage(uint64_t writer, uint64_t version);
/* Read a lineage; HERD_EBADFRAME when a writer is 0 (every run has one). */
int repl_get_lineage(wire_reader_t *r, replica_lineage_t *lin);
void replica_queries_free(repl_t *r);
/* A copy of registration `hlc` by `writer` of `name`, at `version` or
 * below, was merged and replicated by the child's owner (or it held it
 * already): it goes from here (a newer copy of that writer stays). */
void replica_merged(dsup_t *d, const char *name, uint64_t hlc, uint64_t writer,
                    uint64_t version);
/* Merge a copy of registration `hlc` by `writer` at `version` into the
 * child running here, told to `from` (a replica, or this node) once
 * replicated (replicas.c); one the child holds already is told at once,
 * unless `from` is in its replica set (its next put replaces it). */
void repl_merge_here(dsup_t *d, uint64_t from, const char *name, uint64_t hlc, uint64_t writer,
                     uint64_t version, const uint8_t *bytes, size_t len);
/* replica_rank_newer's ranks for `name` as this node sees it now. */
replica_rank_t repl_rank_of(dsup_t *d, const char *name);
/* The replica set of a child of `service` named `name` whose owner is
 * `owner`: the members after it on the service's ring, up to copies - 1,
 * in ring order, into out[HERD_MAX_REPLICAS - 1]; returns how many. */
size_t replica_set_of(dsup_t *d, const char *name, int service, uint8_t copies,
                      uint64_t owner, uint64_t *out);

#endif
