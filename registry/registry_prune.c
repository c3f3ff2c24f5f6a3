/*
 * registry_prune.c - the replica table stays as small as the live node
 * starts: a gone node start's replica is dropped from the map once no member
 * holds an entry under its dots (registry/PROTOCOL.md, "Pruning").
 *
 * Every check, each node tells every live member what its table holds: per
 * replica the entries it holds under that replica's dots (SYNC_SUMMARY). A
 * replica is pruned here when its node start is gone (its node is no member,
 * or a member with another incarnation), this node holds no entry of it, and
 * every member but the ones that left has said so too in a summary sent
 * after this node saw the start gone. No new dot of a gone start is ever
 * made, and no member holds one of its entries, so nothing can bring one
 * back but a copy still in flight; such a copy comes in as new, and is
 * removed again by the sync with a member that saw it removed.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "registry_int.h"

/* What one member said of its table. */
typedef struct summary {
    uint64_t at;   /* node clock when it arrived */
    int complete;  /* every replica of its table is listed */
    size_t n;
    struct summary_item {
        awmap_replica_id_t id;
        uint64_t held;
    } items[];
} summary_t;

/* A replica of a gone node start, and since when it is known gone. */
typedef struct gone_replica {
    awmap_replica_id_t id;
    uint64_t since;
} gone_replica_t;

/* Summary bytes per replica, and how many one message may list. */
#define SUMMARY_ITEM_BYTES 24u
#define SUMMARY_MAX_ITEMS ((REGISTRY_MSG_MAX - 16u) / SUMMARY_ITEM_BYTES)

static int replica_gone(registry_t *g, awmap_replica_id_t id)
{
    if (id.node == g->self_node && id.incarnation == g->self_inc)
        return 0;
    return herd_cluster_member_incarnation(g->node, id.node) != id.incarnation;
}

/* ---- telling ------------------------------------------------------------------------ */

typedef struct summary_ctx {
    wire_writer_t *w;
    uint32_t n;
} summary_ctx_t;

static int put_item(void *data, awmap_replica_id_t id, uint64_t vv, size_t cloud, uint64_t held)
{
    (void)vv;
    (void)cloud;
    summary_ctx_t *c = data;
    if (c->n == SUMMARY_MAX_ITEMS)
        return 1;
    wire_put_u64(c->w, id.node);
    wire_put_u64(c->w, id.incarnation);
    wire_put_u64(c->w, held);
    c->n++;
    return 0;
}

static int tell_member(void *data, const herd_member_info_t *m)
{
    registry_t *g = ((void **)data)[0];
    const wire_writer_t *w = ((void **)data)[1];
    uint64_t id = herd_node_id_of(m->name);
    if (id != g->self_node && (m->state == HERD_MEMBER_UP || m->state == HERD_MEMBER_SUSPECT ||
                               m->state == HERD_MEMBER_DRAINING))
        reg_send_raw(g, id, w);
    return 0;
}

/* Layout: u8 kind, u8 complete, u32 n, n x (u64 node, u64 incarnation, u64
 * held); n is written last, at its place. */
static void tell_members(registry_t *g)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, SYNC_SUMMARY);
    size_t flag_at = w.len;
    wire_put_u8(&w, 0);
    size_t n_at = w.len;
    wire_put_u32(&w, 0);
    summary_ctx_t c = {&w, 0};
    int cut = awmap_foreach_replica(g->map, put_item, &c);
    if (w.err == 0) {
        w.buf[flag_at] = (uint8_t)(cut == 0);
        for (int i = 0; i < 4; i++)
            w.buf[n_at + (size_t)i] = (uint8_t)(c.n >> (8 * i));
        void *args[2] = {g, &w};
        herd_cluster_foreach_member(g->node, tell_member, args);
    } else {
        g->stats.alloc_failed++;
    }
    wire_writer_fini(&w);
}

void reg_on_summary(registry_t *g, uint64_t from, wire_reader_t *r)
{
    uint8_t complete = wire_get_u8(r);
    uint32_t n = wire_get_u32(r);
    if (r->err || complete > 1 || n > SUMMARY_MAX_ITEMS || (size_t)n * SUMMARY_ITEM_BYTES > r->len) {
        g->stats.rejected++;
        return;
    }
    summary_t *s = malloc(sizeof(*s) + n * sizeof(s->items[0]));
    if (s == NULL) {
        g->stats.alloc_failed++; /* the next one, 2 s later, is taken */
        return;
    }
    s->at = herd_node_now(g->node);
    s->complete = complete;
    s->n = n;
    for (uint32_t i = 0; i < n; i++) {
        s->items[i].id.node = wire_get_u64(r);
        s->items[i].id.incarnation = wire_get_u64(r);
        s->items[i].held = wire_get_u64(r);
    }
    if (wire_reader_done(r) != 0) {
        g->stats.rejected++;
        free(s);
        return;
    }
    free(u64map_del(&g->summaries, from));
    if (u64map_put(&g->summaries, from, s) != 0) {
        g->stats.alloc_failed++;
        free(s);
    }
}

/* ---- pruning ------------------------------------------------------------------------ */

/* Whether member `id` said, after `since`, that it holds no entry of `r`. */
static int member_holds_none(registry_t *g, uint64_t id, awmap_replica_id_t r, uint64_t since)
{
    const summary_t *s = u64map_get(&g->summaries, id);
    if (s == NULL || s->at <= since)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->items[i].id.node == r.node && s->items[i].id.incarnation == r.incarnation)
            return s->items[i].held == 0;
    return s->complete; /* not in its table: it holds none */
}

typedef struct acks_ctx {
    registry_t *g;
    awmap_replica_id_t r;
    uint64_t since;
    int all;
} acks_ctx_t;

static int check_member(void *data, const herd_member_info_t *m)
{
    acks_ctx_t *c = data;
    uint64_t id = herd_node_id_of(m->name);
    if (id == c->g->self_node || m->state == HERD_MEMBER_LEFT)
        return 0;
    if (!member_holds_none(c->g, id, c->r, c->since)) {
        c->all = 0;
        return 1;
    }
    return 0;
}

/* The gone replicas of the table (those holding no entry here), each with
 * the time this node first saw it gone; the list of the last check tells
 * since when. */
typedef struct scan_ctx {
    registry_t *g;
    gone_replica_t *now;
    size_t n, cap;
    uint64_t clock;
} scan_ctx_t;

static uint64_t gone_since(const registry_t *g, awmap_replica_id_t id, uint64_t clock)
{
    for (size_t i = 0; i < g->gone_n; i++)
        if (g->gone_list[i].id.node == id.node && g->gone_list[i].id.incarnation == id.incarnation)
            return g->gone_list[i].since;
    return clock;
}

static int scan_replica(void *data, awmap_replica_id_t id, uint64_t vv, size_t cloud,
                        uint64_t held)
{
    (void)vv;
    (void)cloud;
    scan_ctx_t *c = data;
    if (held || !replica_gone(c->g, id))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        gone_replica_t *a = realloc(c->now, cap * sizeof(*a));
        if (a == NULL)
            return 1;
        c->now = a;
        c->cap = cap;
    }
    c->now[c->n++] = (gone_replica_t){id, gone_since(c->g, id, c->clock)};
    return 0;
}

static void prune_acknowledged(registry_t *g)
{
    for (size_t i = 0; i < g->gone_n;) {
        acks_ctx_t c = {g, g->gone_list[i].id, g->gone_list[i].since, 1};
        herd_cluster_foreach_member(g->node, check_member, &c);
        if (c.all && awmap_prune_replica(g->map, c.r) == 0) {
            g->stats.replicas_pruned++;
            herd_log(HERD_LOG_DEBUG, "registry", "replica %016llx/%llu pruned",
                     (unsigned long long)c.r.node, (unsigned long long)c.r.incarnation);
            g->gone_list[i] = g->gone_list[--g->gone_n];
        } else {
            i++;
        }
    }
}

void reg_prune_check(registry_t *g)
{
    if (!g->clustered)
        return;
    tell_members(g);
    scan_ctx_t c = {g, NULL, 0, 0, herd_node_now(g->node)};
    if (awmap_foreach_replica(g->map, scan_replica, &c) != 0) {
        g->stats.alloc_failed++; /* the next check tries again */
        free(c.now);
        return;
    }
    free(g->gone_list);
    g->gone_list = c.now;
    g->gone_n = c.n;
    prune_acknowledged(g);
}

void reg_prune_free(registry_t *g)
{
    size_t at = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->summaries, &at)) != NULL;)
        free(s->value);
    u64map_fini(&g->summaries);
    free(g->gone_list);
}
