/*
 * registry_events.c - what happens to the registry from outside a call:
 * a local process exits (its entries go), a member changes state (its
 * processes' entries are hidden, shown again or removed; a digest sync
 * repairs what it may have missed), the loop turns (the pending delta
 * ships, the periodic check runs), and the registry's own start and end.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "herd_registry.h"
#include "log.h"
#include "registry_int.h"
#include "registry_layers.h"
#include "runtime_layers.h"

/* ---- exits -------------------------------------------------------------------------- */

typedef struct pid_key {
    const registry_t *g;
    reg_match_t match;
    char name[AWMAP_KEY_MAX + 1];
    size_t klen;
    reg_vec_t dots;
    int err;
} pid_key_t;

/* A key with entries the match takes: its name and their dots, and stop. */
static int pid_key_of(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    pid_key_t *c = data;
    if (reg_is_spec_key(key, klen))
        return 0;
    c->dots.n = 0;
    int n = reg_dots(c->g, e, &c->match, &c->dots);
    if (n == 0)
        return 0;
    c->err = n < 0 ? n : 0;
    memcpy(c->name, key, klen);
    c->name[klen] = '\0';
    c->klen = klen;
    return 1;
}

int reg_remove_pid(registry_t *g, herd_pid_t pid, uint64_t hash)
{
    awmap_dot_t buf[16];
    pid_key_t c = {.g = g, .match = {pid, 0, 0}, .dots = REG_VEC_ON(buf)};
    int removed = 0, rc = 0;
    /* one key a pass (a 2^-32 twin of the hash is another key); each pass
     * removes entries, so the passes end */
    while (rc == 0 && awmap_foreach_hash(g->map, hash, pid_key_of, &c)) {
        rc = c.err ? c.err
                   : reg_local_change_len(g, c.name, c.klen, NULL, 0, c.dots.items, c.dots.n, 0);
        removed |= rc == 0;
    }
    reg_vec_free(&c.dots);
    return rc ? rc : removed;
}

/* Remove the exited process's registrations: its names are found again by
 * their hashes. */
static void on_exit(void *data, herd_pid_t pid, int reason)
{
    (void)reason;
    registry_t *g = data;
    uint64_t *hashes;
    size_t n = pidx_take(&g->by_pid, pid.serial, &hashes);
    int redo = pidx_tagged(&g->by_pid, pid.serial) || (g->redo & REG_REDO_INDEX);
    for (size_t i = 0; i < n; i++) {
        int rc = reg_remove_pid(g, pid, hashes[i]);
        if (rc == 0) /* another process's pair under the same tag (pidx.h) */
            pidx_add(&g->by_pid, pid.serial, hashes[i]);
        redo |= rc < 0;
    }
    free(hashes);
    if (redo) /* the index or a removal ran out of memory: the check finds them */
        reg_alloc_failed(g, "the names of an exited process", REG_REDO_DEAD);
}

/* ---- members ------------------------------------------------------------------------- */

typedef struct start_ctx {
    registry_t *g;
    uint64_t node, incarnation;
    reg_vec_t names; /* char *: a key's length (one byte), then its bytes */
    int failed;
} start_ctx_t;

static int collect_start(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    start_ctx_t *c = data;
    if (reg_is_spec_key(key, klen))
        return 0;
    for (; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(c->g->map, e, NULL);
        if (v.pid.node != c->node || v.pid.incarnation > c->incarnation)
            continue;
        char *name = malloc(1 + klen);
        if (name) {
            name[0] = (char)(uint8_t)klen; /* AWMAP_KEY_MAX fits */
            memcpy(name + 1, key, klen);
        }
        if (name == NULL || reg_vec_push(&c->names, &name, sizeof(name)) != 0) {
            free(name);
            c->failed = 1;
            return 1;
        }
        return 0;
    }
    return 0;
}

/* A node start is known gone: its registrations are removed, and those of
 * the node's older starts, which a node that never knew them may hold (a
 * peer passed them on). Every survivor does this by itself, shipping
 * nothing (reg_local_drop). Its entries are hidden meanwhile, so one that
 * cannot go yet is retried. */
int reg_remove_start(registry_t *g, uint64_t node, uint64_t incarnation)
{
    start_ctx_t c = {.g = g, .node = node, .incarnation = incarnation};
    awmap_foreach(g->map, collect_start, &c);
    awmap_dot_t buf[16];
    reg_vec_t dots = REG_VEC_ON(buf);
    reg_match_t m = {{node, incarnation, 0}, REG_MATCH_START, 0};
    for (size_t i = 0; i < c.names.n; i++) {
        char *name = REG_VEC_AT(&c.names, char *, i);
        size_t klen = (uint8_t)name[0];
        dots.n = 0;
        int nd = reg_dots(g, awmap_get(g->map, name + 1, klen), &m, &dots);
        if (nd > 0)
            reg_local_drop(g, name + 1, klen, dots.items, dots.n);
        c.failed |= nd < 0;
        free(name);
    }
    reg_vec_free(&dots);
    reg_vec_free(&c.names);
    if (!c.failed)
        return 0;
    awmap_replica_id_t id = {node, incarnation};
    if (reg_vec_push(&g->gone, &id, sizeof(id)) == 0)
        reg_alloc_failed(g, "a gone node's names", REG_REDO_GONE);
    else
        reg_alloc_failed(g, "a gone node's names, which stay hidden", 0);
    return HERD_ENOMEM;
}

/* ---- node starts this node never knew ------------------------------------------------ */

/* A peer may hold entries of a node start this node never met: a start that
 * joined a moment ago (its entries came through a third node first), or one
 * that died before this node met it, which none of the members that knew it
 * removed before they went too (a node restarted after the start died is
 * given its entries by a sync). Nothing would ever remove the second kind:
 * no member event names that start here. So a start unknown here for the
 * forget time is taken for gone, as a member down for that long is (a live
 * one that was only out of reach puts its entries back, as after any
 * forget); and one older than a start of its node met since is dead. */
void reg_stranger_note(registry_t *g, herd_pid_t pid)
{
    for (size_t i = 0; i < g->strangers.n; i++) {
        const reg_stranger_t *s = &REG_VEC_AT(&g->strangers, reg_stranger_t, i);
        if (s->node == pid.node && s->incarnation == pid.incarnation)
            return;
    }
    reg_stranger_t s = {pid.node, pid.incarnation, herd_node_now(g->node)};
    if (reg_vec_push(&g->strangers, &s, sizeof(s)) != 0)
        reg_alloc_failed(g, "a node start never met", 0);
}

void reg_strangers_check(registry_t *g)
{
    if (g->strangers.n == 0)
        return;
    uint64_t now = herd_node_now(g->node), forget = herd_cluster_forget_ms(g->node);
    reg_vec_t list = g->strangers; /* taken: a removal may note others */
    g->strangers = (reg_vec_t){0};
    for (size_t i = 0; i < list.n; i++) {
        reg_stranger_t s = REG_VEC_AT(&list, reg_stranger_t, i);
        herd_pid_t pid = {s.node, s.incarnation, 0};
        int start = reg_start_of(g, pid);
        int dead = start == REG_START_DEAD, unknown = start == REG_START_UNKNOWN;
        if (!dead && unknown && now - s.since < forget) {
            if (reg_vec_push(&g->strangers, &s, sizeof(s)) != 0)
                reg_alloc_failed(g, "a node start never met", 0);
            continue;
        }
        if (!dead && !unknown)
            continue; /* met since: the members' rules apply */
        herd_log(HERD_LOG_INFO, "registry", "node %016llx start %llu, never met here, is %s: "
                 "its entries are removed", (unsigned long long)s.node,
                 (unsigned long long)s.incarnation, dead ? "dead" : "unheard of");
        reg_remove_start(g, s.node, s.incarnation);
    }
    reg_vec_free(&list);
}

static int touch_all(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    if (e && awmap_next(e) && !reg_is_spec_key(key, klen) && memchr(key, '\0', klen) == NULL)
        reg_touched_add(data, key, klen);
    return 0;
}

typedef struct sync_ctx {
    registry_t *g;
    uint64_t except;
    int pick;  /* offer to the pick-th candidate only; -1: to every one */
    int count; /* candidates seen */
} sync_ctx_t;

static int sync_candidate(void *data, const herd_member_info_t *m)
{
    sync_ctx_t *c = data;
    uint64_t id = herd_node_id_of(m->name);
    if (id == c->g->self_node || id == c->except ||
        (m->state != HERD_MEMBER_UP && m->state != HERD_MEMBER_DRAINING))
        return 0;
    if (c->pick < 0 || c->pick == c->count)
        reg_sync_offer(c->g, id, 0);
    c->count++;
    return c->pick >= 0 && c->count > c->pick; /* the one picked is done */
}

/* Offer a digest sync to the live members other than `except` (all when
 * 0), or to one of them chosen at random (`one`): anti-entropy. */
static void sync_with_live(registry_t *g, uint64_t except, int one)
{
    sync_ctx_t c = {g, except, -1, 0};
    if (one) {
        sync_ctx_t counted = {g, except, INT_MAX, 0}; /* a pick never reached: counts */
        herd_cluster_foreach_member(g->node, sync_candidate, &counted);
        if (counted.count == 0)
            return;
        c.pick = (int)(herd_node_random(g->node) % (uint64_t)counted.count);
    }
    herd_cluster_foreach_member(g->node, sync_candidate, &c);
}

static void member_down(registry_t *g, uint64_t id, uint64_t incarnation)
{
    uint64_t *inc = malloc(sizeof(*inc));
    if (inc) {
        *inc = incarnation;
        free(u64map_del(&g->down, id));
        if (u64map_put(&g->down, id, inc) != 0)
            free(inc);
    }
    /* what it sent just before may have reached only some of us */
    sync_with_live(g, id, 0);
}

static void on_member(void *data, const char *name, uint64_t incarnation,
                      herd_member_state_t old_state, herd_member_state_t new_state, int gone)
{
    registry_t *g = data;
    uint64_t id = herd_node_id_of(name);
    if (id == g->self_node)
        return; /* this node's own leave or drain: its names stay its own */
    reg_live_set(g, id, incarnation, new_state);
    if (new_state != HERD_MEMBER_UP && new_state != HERD_MEMBER_DRAINING &&
        new_state != HERD_MEMBER_SUSPECT)
        reg_sync_peer_gone(g, id); /* a pull from it will not finish */
    if (new_state == HERD_MEMBER_DOWN) {
        member_down(g, id, incarnation);
        return;
    }
    if (new_state == HERD_MEMBER_LEFT || (new_state == HERD_MEMBER_ABSENT && gone)) {
        free(u64map_del(&g->down, id));
        reg_remove_start(g, id, incarnation);
        return;
    }
    int arrived = old_state == HERD_MEMBER_ABSENT || old_state == HERD_MEMBER_DOWN;
    if (arrived && (new_state == HERD_MEMBER_UP || new_state == HERD_MEMBER_DRAINING)) {
        const uint64_t *was = u64map_get(&g->down, id);
        int healed = old_state == HERD_MEMBER_DOWN && was && *was == incarnation;
        free(u64map_del(&g->down, id)); /* back from a partition: visible again */
        /* a start this node did not know was gone (it never knew it, and a
         * peer passed its entries on): older than this one, it is dead */
        if (!healed && incarnation > 1)
            reg_remove_start(g, id, incarnation - 1);
        reg_sync_offer(g, id, 1);
        /* its names reappear: two live registrations of one name may meet
         * (only keys with two entries can: none, no pass over the map) */
        if (awmap_multi_key_count(g->map))
            awmap_foreach(g->map, touch_all, g);
        reg_settle_touched(g);
    }
}

/* Member events come from the node's event bus, in herd's own tier. */
static void on_member_event(void *data, const herd_event_t *ev)
{
    on_member(data, ev->name, ev->incarnation, ev->old_state, ev->new_state, ev->gone);
}

static int live_add(void *data, const herd_member_info_t *m)
{
    registry_t *g = data;
    if (herd_node_id_of(m->name) != g->self_node)
        reg_live_set(g, herd_node_id_of(m->name), m->incarnation, m->state);
    return 0;
}

/* ---- the loop's turns and the periodic check ------------------------------------------ */

/* reg_sync_work, timed for herd_registry_stats' longest_us. */
static size_t sync_work(registry_t *g)
{
    uint64_t start = uv_hrtime();
    size_t going = reg_sync_work(g);
    reg_held(g, "work", start);
    return going;
}

static void on_work(uv_timer_t *h)
{
    registry_flush_t *f = h->data;
    if (f->g == NULL || sync_work(f->g) == 0)
        uv_timer_stop(h);
}

static void on_flush(uv_prepare_t *h)
{
    registry_flush_t *f = h->data;
    if (f->g == NULL)
        return;
    uint64_t start = uv_hrtime();
    reg_flush_now(f->g);
    reg_held(f->g, "flush", start);
    /* answers under way go on at every turn of the loop; the timer keeps
     * the loop turning (1 ms, not idle: an answer waiting for
     * acknowledgements should not spin) */
    if (sync_work(f->g) && !uv_is_active((uv_handle_t *)&f->work))
        uv_timer_start(&f->work, on_work, 1, 1);
}

static void on_flush_closed(uv_handle_t *h)
{
    registry_flush_t *f = h->data;
    if (--f->open_handles == 0)
        free(f);
}

/* Conflicts whose loser could not hand its state over are judged again. */
static void resettle_all(registry_t *g)
{
    if (g->merging.count)
        reg_merging_expire(g);
    if (!g->resettle)
        return;
    g->resettle = 0;
    if (awmap_multi_key_count(g->map))
        awmap_foreach(g->map, touch_all, g);
    reg_settle_touched(g);
}

static void periodic_check(registry_t *g)
{
    reg_check_missing(g);
    reg_strangers_check(g);
    resettle_all(g);
    if (g->redo)
        reg_redo(g);
    if (++g->checks % REGISTRY_SYNC_CHECKS == 0)
        sync_with_live(g, 0, 1);
    if (g->refused_from) /* and the refusing member itself, through its repair */
        sync_with_live(g, g->refused_from, 1);
    g->refused_from = 0;
    reg_sync_repair(g);
    reg_prune_check(g);
}

static void on_check(uv_timer_t *h)
{
    registry_flush_t *f = h->data;
    if (f->g) {
        uint64_t start = uv_hrtime();
        periodic_check(f->g);
        reg_held(f->g, "check", start);
    }
}

int herd_registry_poll(herd_node_t *n)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    reg_flush_now(g);
    reg_sync_work(g);
    uint64_t now = herd_node_now(n);
    if (now - g->last_check >= REGISTRY_CHECK_MS) {
        g->last_check = now;
        periodic_check(g);
    }
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void free_values(u64map_t *m)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(m, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(m);
}

static void registry_free(void *p)
{
    registry_t *g = p;
    /* no callback may reach a freed registry while the node finishes closing */
    herd_events_unsubscribe_internal(g->node, on_member_event, g);
    herd_cluster_on_app(g->node, REGISTRY_APP, NULL, NULL);
    if (g->flush) {
        if (g->pending && !awmap_is_empty(g->pending))
            reg_ship(g, g->pending, SYNC_DELTA, 0); /* the last changes still go */
        g->flush->g = NULL;
        uv_close((uv_handle_t *)&g->flush->handle, on_flush_closed);
        uv_close((uv_handle_t *)&g->flush->check, on_flush_closed);
        uv_close((uv_handle_t *)&g->flush->work, on_flush_closed);
    }
    reg_sync_free(g);
    reg_prune_free(g);
    awmap_free(g->pending);
    free_values(&g->down);
    free_values(&g->live);
    free_values(&g->merging);
    reg_index_free(g);
    reg_spec_free(g);
    reg_notify_free(g);
    reg_group_free(g);
    awmap_free(g->map);
    free(g->fine);
    free(g);
}

/* The prepare handle that ships the pending delta, and the check's timer. */
static void handles_start(registry_t *g)
{
    herd_node_t *n = g->node;
    g->flush->g = g;
    g->flush->handle.data = g->flush;
    uv_prepare_init(herd_node_loop(n), &g->flush->handle);
    uv_prepare_start(&g->flush->handle, on_flush);
    uv_unref((uv_handle_t *)&g->flush->handle);
    uv_timer_init(herd_node_loop(n), &g->flush->check);
    g->flush->check.data = g->flush;
    g->flush->open_handles = 3;
    uv_timer_start(&g->flush->check, on_check, REGISTRY_CHECK_MS, REGISTRY_CHECK_MS);
    uv_unref((uv_handle_t *)&g->flush->check);
    uv_timer_init(herd_node_loop(n), &g->flush->work);
    g->flush->work.data = g->flush;
}

/* Hooks into the node and its cluster (the members already known first). */
static int hooks_start(registry_t *g)
{
    herd_node_t *n = g->node;
    awmap_replica_id_t self = {g->self_node, g->self_inc};
    int rc = awmap_replica(g->map, self, &g->self);
    if (rc == 0 && herd_cluster_ring(n) != NULL) {
        g->clustered = 1;
        herd_cluster_foreach_member(n, live_add, g);
        rc = herd_events_subscribe_internal(n, HERD_EV_MEMBERS, on_member_event, g);
        if (rc == 0)
            rc = herd_cluster_on_app(n, REGISTRY_APP, reg_on_sync, g);
    }
    return rc ? rc : herd_node_on_exit(n, on_exit, g);
}

int herd_registry_start(herd_node_t *n)
{
    if (reg_of(n))
        return HERD_EEXIST;
    registry_t *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->map = awmap_new()) == NULL) {
        free(g);
        return HERD_ENOMEM;
    }
    g->node = n;
    g->self_node = herd_node_id_of(herd_node_name(n));
    g->self_inc = herd_node_incarnation(n);
    /* each node start's key table places keys its own way: a map joined in
     * another node's table order then fills evenly (awmap_set_seed) */
    awmap_set_seed(g->map, g->self_node ^ (g->self_inc * 0x9e3779b97f4a7c15ull));
    g->pending = awmap_new_delta();
    g->flush = calloc(1, sizeof(*g->flush));
    /* the digest's cells (128 KiB) serve digest syncs alone: a registry
     * outside a cluster (hooks_start) keeps none, and digest_update skips
     * them */
    int clustered = herd_cluster_ring(n) != NULL;
    g->fine = clustered ? calloc(1, sizeof(*g->fine)) : NULL;
    if (g->pending == NULL || g->flush == NULL || (clustered && g->fine == NULL)) {
        awmap_free(g->pending);
        awmap_free(g->map);
        free(g->flush);
        free(g->fine);
        free(g);
        return HERD_ENOMEM;
    }
    reg_index_init(g);
    handles_start(g);
    u64map_init(&g->down);
    u64map_init(&g->live);
    u64map_init(&g->merging);
    u64map_init(&g->peers);
    u64map_init(&g->groups);
    int rc = hooks_start(g);
    if (rc) {
        registry_free(g);
        return rc;
    }
    herd_node_set_ext(n, HERD_EXT_REGISTRY, g, registry_free);
    return 0;
}
