/*
 * replica_store.c - the replicas this node keeps (replica_store.h).
 */
#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "herd_error.h"
#include "replica_store.h"

static uint64_t name_hash(const char *name)
{
    uint64_t h = awmap_key_hash(name, strlen(name));
    return h ? h : 1; /* 0 marks an empty slot of the map */
}

void replica_store_init(replica_store_t *s)
{
    memset(s, 0, sizeof(*s));
    u64map_init(&s->by_hash);
}

static void replica_free(replica_t *r)
{
    for (size_t i = 0; i < r->others_n; i++)
        free(r->others[i].bytes);
    free(r->others);
    free(r->bytes); /* the name lives in r's own allocation */
    free(r);
}

void replica_store_fini(replica_store_t *s)
{
    size_t cursor = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&s->by_hash, &cursor)) != NULL;)
        for (replica_t *r = sl->value, *next; r; r = next) {
            next = r->twin;
            replica_free(r);
        }
    u64map_fini(&s->by_hash);
    s->count = 0;
    s->bytes = 0;
}

replica_t *replica_find(const replica_store_t *s, const char *name)
{
    for (replica_t *r = u64map_get(&s->by_hash, name_hash(name)); r; r = r->twin)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

int replica_rank_newer(uint64_t old_hlc, uint64_t old_version, uint64_t hlc, uint64_t version,
                       replica_rank_t rank)
{
    if (hlc == old_hlc)
        return version > old_version;
    if (rank.visible && (hlc == rank.visible || old_hlc == rank.visible))
        return hlc == rank.visible;
    int current = hlc >= rank.floor, old_current = old_hlc >= rank.floor;
    if (current != old_current)
        return current;
    return current ? hlc < old_hlc : hlc > old_hlc;
}

int replica_newer(const replica_t *r, uint64_t hlc, uint64_t version, replica_rank_t rank)
{
    return r == NULL || r->bytes == NULL ||
           replica_rank_newer(r->hlc, r->version, hlc, version, rank);
}

static int replica_add(replica_store_t *s, replica_t *r)
{
    replica_t *first = u64map_get(&s->by_hash, r->hash);
    if (first) {
        r->twin = first->twin;
        first->twin = r;
    } else if (u64map_put(&s->by_hash, r->hash, r) != 0) {
        return HERD_ENOMEM;
    }
    s->count++;
    return 0;
}

static uint8_t *copy_of(const uint8_t *bytes, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy && len)
        memcpy(copy, bytes, len);
    return copy;
}

int replica_lineage_holds(const replica_lineage_t *l, uint64_t writer, uint64_t version)
{
    return writer == l->writer || (writer == l->base_writer && version <= l->base_version);
}

/* The other of registration `hlc` written by `writer`, or NULL. */
static replica_other_t *other_of(replica_t *r, uint64_t hlc, uint64_t writer)
{
    for (size_t i = 0; i < r->others_n; i++)
        if (r->others[i].hlc == hlc && r->others[i].writer == writer)
            return &r->others[i];
    return NULL;
}

/* The other to give up for a new one when all places are taken: the
 * oldest registration's, of it the lowest version. */
static replica_other_t *other_oldest(replica_t *r)
{
    size_t oldest = 0;
    for (size_t i = 1; i < r->others_n; i++) {
        const replica_other_t *o = &r->others[i], *b = &r->others[oldest];
        if (o->hlc < b->hlc || (o->hlc == b->hlc && o->version < b->version))
            oldest = i;
    }
    return &r->others[oldest];
}

/* Keep (hlc, writer, version, bytes) among r's others: the newest copy of
 * each writer of each registration; with no room, the oldest one goes.
 * Takes `copy` (freed when not kept). Returns 2 kept, 0 an other of it was
 * newer, HERD_ENOMEM (no places could be made). */
static int other_keep(replica_store_t *s, replica_t *r, uint64_t hlc, uint64_t writer,
                      uint64_t version, uint8_t *copy, size_t len)
{
    replica_other_t *o = other_of(r, hlc, writer);
    if (o && o->version >= version) {
        free(copy);
        return 0;
    }
    if (o == NULL && r->others_n == REPLICA_OTHERS_MAX) {
        o = other_oldest(r);
        s->others_dropped++;
    } else if (o == NULL) {
        if (r->others == NULL &&
            (r->others = calloc(REPLICA_OTHERS_MAX, sizeof(*r->others))) == NULL) {
            free(copy);
            return HERD_ENOMEM;
        }
        o = &r->others[r->others_n++];
        *o = (replica_other_t){0};
    }
    s->bytes -= o->len;
    free(o->bytes);
    *o = (replica_other_t){
        .hlc = hlc, .version = version, .writer = writer, .bytes = copy, .len = len};
    s->bytes += len;
    return 2;
}

/* A replica and its name in one allocation: a put looks up its copy by
 * name, and the name compared lies next to the entry it belongs to (one
 * cache miss less, a copy per child a node keeps for others). */
static replica_t *replica_new(replica_store_t *s, const char *name)
{
    size_t len = strlen(name);
    replica_t *r = calloc(1, sizeof(*r) + len + 1);
    if (r == NULL)
        return NULL;
    r->name = (char *)(r + 1);
    memcpy(r->name, name, len + 1);
    r->hash = name_hash(name);
    if (replica_add(s, r) != 0) {
        replica_free(r);
        return NULL;
    }
    return r;
}

/* Take the other of registration `hlc` by `writer` out of r (its bytes to
 * the caller: *version, *bytes, *len), uncounted. Returns whether there
 * was one. */
static int other_take(replica_store_t *s, replica_t *r, uint64_t hlc, uint64_t writer,
                      uint64_t *version, uint8_t **bytes, size_t *len)
{
    replica_other_t *o = other_of(r, hlc, writer);
    if (o == NULL)
        return 0;
    *version = o->version;
    *bytes = o->bytes;
    *len = o->len;
    s->bytes -= o->len;
    *o = r->others[--r->others_n];
    return 1;
}

/* Whether what r holds is a copy the put must not replace without it being
 * merged: another registration of the current spec, or another run of the
 * put's registration that the put's run does not hold (a fork). */
static int held_is_kept(const replica_t *r, uint64_t hlc, const replica_lineage_t *lin,
                        replica_rank_t rank)
{
    if (r->hlc != hlc)
        return r->hlc >= rank.floor;
    return !replica_lineage_holds(lin, r->writer, r->version);
}

/* The put every replicated call makes: the next version of the run whose
 * copy is held, as large as that copy, nothing kept to be merged. Written
 * over the copy's bytes: no allocation. */
static int put_in_place(replica_t *r, uint64_t owner, uint64_t hlc, uint64_t version,
                        const replica_lineage_t *lin, const uint8_t *bytes, size_t len)
{
    if (len) /* the same size: the store's byte count stays */
        memcpy(r->bytes, bytes, len);
    r->owner = owner;
    r->hlc = hlc;
    r->version = version;
    r->writer = lin->writer;
    return 1;
}

int replica_put(replica_store_t *s, replica_t **at, const char *name, uint64_t owner,
                uint64_t hlc, uint64_t version, const replica_lineage_t *lin,
                replica_rank_t rank, int mergeable, const uint8_t *bytes, size_t len)
{
    replica_t *r = *at;
    /* a fork's put becomes the copy whatever its version: the copy is what
     * the run putting here wrote last, the other run's is kept to merge */
    int kept_aside = mergeable && r && r->bytes && held_is_kept(r, hlc, lin, rank);
    int fork = kept_aside && r->hlc == hlc;
    int newer = fork || replica_newer(r, hlc, version, rank);
    /* a current registration's copy that loses is kept to be merged */
    int keep_loser = mergeable && r && r->bytes && hlc != r->hlc && hlc >= rank.floor;
    if (!newer && !keep_loser)
        return 0;
    if (newer && r && r->bytes && r->len == len && r->others_n == 0 && !kept_aside)
        return put_in_place(r, owner, hlc, version, lin, bytes, len);
    uint8_t *copy = copy_of(bytes, len);
    if (copy == NULL)
        return HERD_ENOMEM;
    if (!newer)
        return other_keep(s, r, hlc, lin->writer, version, copy, len);
    if (r == NULL && (r = *at = replica_new(s, name)) == NULL) {
        free(copy);
        return HERD_ENOMEM;
    }
    /* this writer's copy kept as an other so far: it becomes the copy, at
     * the newer of the two versions (its place among the others is free
     * before the copy it replaces needs one) */
    int rc = 1;
    uint64_t o_version;
    uint8_t *o_bytes;
    size_t o_len;
    if (other_take(s, r, hlc, lin->writer, &o_version, &o_bytes, &o_len)) {
        if (o_version > version) {
            free(copy);
            copy = o_bytes, len = o_len, version = o_version;
            rc = 0; /* this put is not what is held */
        } else {
            free(o_bytes);
        }
    }
    if (r->bytes && mergeable && held_is_kept(r, hlc, lin, rank)) {
        /* the registration or run it replaces runs (or ran) too: kept to be
         * merged (other_keep takes the bytes and counts them as an other's,
         * or frees them when it holds a newer copy of that writer) */
        if (other_keep(s, r, r->hlc, r->writer, r->version, r->bytes, r->len) < 0)
            s->others_dropped++; /* no memory for its place: it went */
        s->bytes -= r->len;
        r->bytes = NULL;
        r->len = 0;
    }
    s->bytes -= r->len;
    free(r->bytes);
    r->owner = owner;
    r->hlc = hlc;
    r->version = version;
    r->writer = lin->writer;
    r->bytes = copy;
    r->len = len;
    s->bytes += len;
    return rc;
}

int replica_drop_other(replica_store_t *s, const char *name, uint64_t hlc, uint64_t writer,
                       uint64_t upto)
{
    replica_t *r = replica_find(s, name);
    uint64_t version;
    uint8_t *bytes;
    size_t len;
    const replica_other_t *o = r ? other_of(r, hlc, writer) : NULL;
    if (o == NULL || o->version > upto || !other_take(s, r, hlc, writer, &version, &bytes, &len))
        return 0;
    free(bytes);
    if (r->bytes == NULL && r->others_n == 0)
        replica_drop(s, name, 0); /* nothing left under the name */
    return 1;
}

int replica_drop(replica_store_t *s, const char *name, uint64_t hlc)
{
    uint64_t hash = name_hash(name);
    replica_t *first = u64map_get(&s->by_hash, hash), *prev = NULL, *r = first;
    while (r && strcmp(r->name, name) != 0)
        prev = r, r = r->twin;
    if (r == NULL || (hlc && r->hlc != hlc))
        return 0;
    if (hlc && r->others_n) { /* copies of other registrations wait to be merged */
        s->bytes -= r->len;
        free(r->bytes);
        r->bytes = NULL;
        r->len = 0;
        r->hlc = r->version = r->writer = 0;
        return 1;
    }
    if (prev) {
        prev->twin = r->twin;
    } else {
        u64map_del(&s->by_hash, hash);
        /* the twin takes the slot; a put into a slot just freed cannot fail */
        if (r->twin)
            (void)u64map_put(&s->by_hash, hash, r->twin);
    }
    s->count--;
    s->bytes -= r->len;
    for (size_t i = 0; i < r->others_n; i++)
        s->bytes -= r->others[i].len;
    replica_free(r);
    return 1;
}
