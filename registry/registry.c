/*
 * registry.c - the global name registry on one node (see herd_registry.h):
 * the name API. A registration is a value in the add-wins map (awmap.h);
 * registry_value.c says how a value is written down and which of a name's
 * entries wins, registry_visible.c which entries this node sees.
 *
 * Every change made here is one reg_local_change: one add that supersedes
 * the entries it replaces (a register, a metadata update, a move), or one
 * remove (an unregister), so no other change can come between a lookup and
 * the write it decides.
 *
 * Sync messages on the registry's stream (app 1), each a u8 kind then:
 *   1 delta: an awmap encoding, joined by the keys it lists;
 *   3 digest: u8 ask_back, digest_encode (to a node that joins or comes back);
 *   4 want: u16 n, n x u8 bucket;
 *   5 dots: u16 n, n x u8 bucket, an awmap encoding (context + dots);
 *   6 unregister: u64 serial, bytes name, u64 first-registration time (the
 *     pid's node lets go of that registration of it);
 *   7 merge: str name, u64 loser serial, u64 attempt, bytes state (a conflict
 *     loser's state, for the node's live holder of the name);
 *   8 merged: u64 loser serial, u64 attempt, u8 ok, u64 x 3 the holder's pid
 *     (ok: merged into it; else the holder seen there, maybe elsewhere, or
 *     none). An answer to an attempt other than the loser's current one is
 *     stale and ignored.
 */
#include "herd_registry.h"

#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "log.h"
#include "registry_int.h"
#include "registry_layers.h"
#include "runtime_layers.h"

registry_t *reg_of(herd_node_t *n)
{
    return herd_node_ext(n, HERD_EXT_REGISTRY);
}

/* Apply a change made on this node; its delta goes straight into this
 * iteration's interval: one delta per iteration goes out, or one per
 * REGISTRY_MSG_MAX bytes, so no message outgrows its bound. A registry
 * outside a cluster has nobody to ship to (and never joins one later:
 * hooks_start): it keeps no delta, whose changes would only pile up in
 * memory (up to REGISTRY_MSG_MAX worth, 3 bytes a name at 50,000). */
int reg_local_change_len(registry_t *g, const char *key, size_t klen, const void *value,
                         size_t vlen, const awmap_dot_t *dots, size_t ndots, int add)
{
    if (g->clustered)
        reg_pending_room(g, klen + vlen + 16 * ndots + 64); /* may start a new delta */
    awmap_t *delta = g->clustered ? g->pending : NULL;
    int rc = add ? awmap_add(g->map, g->self, key, klen, value, vlen, dots, ndots, delta,
                             reg_observer(g), NULL)
                 : awmap_remove(g->map, key, klen, dots, ndots, delta, reg_observer(g));
    reg_settle_touched(g);
    return rc;
}

int reg_local_change(registry_t *g, const char *name, const void *value, size_t vlen,
                     const awmap_dot_t *dots, size_t ndots, int add)
{
    return reg_local_change_len(g, name, strlen(name), value, vlen, dots, ndots, add);
}

/* Not shipped: every member learns by itself that a node start is gone, when
 * it is (its own failure detector, or the start's newer incarnation). A
 * delta of it would also reach members that see the start still live (the
 * far side of a partition, once healed: a stream holds what it queued for
 * a member that was down), which would drop a live process's entry while
 * its own node, forgotten by the sender, hears nothing of it and does not
 * put it back. The digest syncs carry the removal where it is due. */
int reg_local_drop(registry_t *g, const char *key, size_t klen, const awmap_dot_t *dots,
                   size_t ndots)
{
    int rc = awmap_remove(g->map, key, klen, dots, ndots, NULL, reg_observer(g));
    reg_settle_touched(g);
    return rc;
}

int reg_name_check(const char *name, size_t max, size_t *len)
{
    size_t n = name ? strnlen(name, max + 1) : 0;
    if (n == 0 || n > max || name[0] == REG_SPEC_PREFIX || name[0] == REG_GROUP_PREFIX)
        return HERD_EINVAL;
    *len = n;
    return 0;
}

/* The registry of `n` and the length of `name`: 0, HERD_ENOENT (no
 * registry) or HERD_EINVAL (not a name). */
static int api_enter(herd_node_t *n, const char *name, registry_t **g, size_t *len)
{
    if ((*g = reg_of(n)) == NULL)
        return HERD_ENOENT;
    return reg_name_check(name, HERD_NAME_MAX, len);
}

/* The visible winner of `name` on `n`: its entry (and value), or NULL with
 * *rc set (HERD_ENOENT when none is visible). */
static const awmap_entry_t *winner_of(herd_node_t *n, const char *name, registry_t **g,
                                      reg_value_t *v, int *rc)
{
    size_t len;
    if ((*rc = api_enter(n, name, g, &len)) != 0)
        return NULL;
    const awmap_entry_t *e = reg_winner(*g, awmap_get((*g)->map, name, len), v);
    *rc = e ? 0 : HERD_ENOENT;
    return e;
}

/* ---- changes ------------------------------------------------------------------------ */

/* Write `v` (with `meta`) for `name` in one change, superseding the visible
 * entries of the `n` pids in `old`. */
static int write_entry(registry_t *g, const char *name, const awmap_entry_t *entries,
                       const reg_value_t *v, const herd_meta_t *meta, const herd_pid_t *old,
                       size_t n)
{
    awmap_dot_t buf[16];
    reg_vec_t dots = REG_VEC_ON(buf);
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        reg_match_t m = {old[i], REG_MATCH_VISIBLE, 0};
        rc = reg_dots(g, entries, &m, &dots);
    }
    size_t vlen;
    uint8_t *value = rc < 0 ? NULL : reg_value_encode(g, v, meta, &vlen);
    rc = value ? reg_local_change(g, name, value, vlen, dots.items, dots.n, 1) : HERD_ENOMEM;
    free(value);
    reg_vec_free(&dots);
    return rc;
}

/* New metadata for the registration `win` (its time and moves kept): one
 * entry that supersedes the pid's, stamped now so that of two updates made
 * at once on two nodes the later wins everywhere. */
static int update_entry(registry_t *g, const char *name, const awmap_entry_t *entries,
                        const reg_value_t *win, const herd_meta_t *meta)
{
    reg_value_t v = *win;
    v.written = herd_node_hlc_now(g->node);
    return write_entry(g, name, entries, &v, meta, &v.pid, 1);
}

/* The visible entry of `pid` that wins among its own; NULL when none. */
static const awmap_entry_t *pid_entry(const registry_t *g, const awmap_entry_t *e,
                                      herd_pid_t pid, reg_value_t *out)
{
    const awmap_entry_t *best = NULL;
    if (reg_hidden(g, pid))
        return NULL;
    for (; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (herd_pid_equal(v.pid, pid) && (best == NULL || reg_value_wins(g->map, &v, e, out, best))) {
            best = e;
            *out = v;
        }
    }
    return best;
}

/* herd_register, with the first-registration time given (0: now). */
static int register_with(herd_node_t *n, const char *name, herd_pid_t pid,
                         const herd_meta_t *meta, uint64_t at, uint8_t gen)
{
    registry_t *g;
    size_t len;
    int rc = api_enter(n, name, &g, &len);
    if (rc)
        return rc;
    if (herd_pid_is_none(pid) || (meta && meta->count > HERD_META_MAX))
        return HERD_EINVAL;
    if (pid.node == g->self_node && !herd_is_alive(n, pid))
        return HERD_ENOPROC;
    const awmap_entry_t *entries = awmap_get(g->map, name, len);
    reg_value_t win;
    const awmap_entry_t *held = reg_winner(g, entries, &win);
    if (held && herd_pid_equal(win.pid, pid))
        return update_entry(g, name, entries, &win, meta); /* the same registration */
    /* A local holder whose exit is decided but not yet carried out no longer
     * holds the name: the new registration replaces its entry. */
    int holder_leaving = held && reg_is_local(g, win.pid) && !herd_is_alive(n, win.pid);
    if (held && !holder_leaving)
        return HERD_EEXIST;
    reg_value_t v = {pid, at ? at : herd_node_hlc_now(n), gen, 0};
    herd_pid_t old[2] = {pid, win.pid};
    return write_entry(g, name, entries, &v, meta, old, holder_leaving ? 2 : 1);
}

int herd_register(herd_node_t *n, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    return register_with(n, name, pid, meta, 0, 0);
}

int herd_register_at(herd_node_t *n, const char *name, herd_pid_t pid, const herd_meta_t *meta,
                     uint64_t hlc)
{
    return register_with(n, name, pid, meta, hlc, 0);
}

int herd_update_meta(herd_node_t *n, const char *name, const herd_meta_t *meta)
{
    registry_t *g;
    reg_value_t win;
    int rc;
    if (winner_of(n, name, &g, &win, &rc) == NULL)
        return rc;
    if (meta && meta->count > HERD_META_MAX)
        return HERD_EINVAL;
    if (win.pid.node == g->self_node && !herd_is_alive(n, win.pid))
        return HERD_ENOPROC;
    return update_entry(g, name, awmap_get(g->map, name, strlen(name)), &win, meta);
}

int herd_register_claim(herd_node_t *n, const char *name, herd_pid_t pid,
                        const herd_meta_t *meta, uint64_t hlc, uint8_t gen)
{
    registry_t *g;
    size_t len;
    int rc = api_enter(n, name, &g, &len);
    if (rc)
        return rc;
    if (hlc == 0 || (meta && meta->count > HERD_META_MAX))
        return HERD_EINVAL;
    if (!reg_is_local(g, pid) || !herd_is_alive(n, pid))
        return HERD_ENOPROC;
    if (reg_holds_pid(g, name, pid))
        return 0;
    g->stats.claimed++;
    reg_value_t v = {pid, hlc, gen, 0};
    return write_entry(g, name, NULL, &v, meta, NULL, 0);
}

int herd_registry_switch(herd_node_t *n, const char *name, herd_pid_t from, herd_pid_t to)
{
    registry_t *g;
    size_t len;
    int rc = api_enter(n, name, &g, &len);
    if (rc)
        return rc;
    if (herd_pid_is_none(to))
        return HERD_EINVAL;
    const awmap_entry_t *entries = awmap_get(g->map, name, len);
    reg_value_t v;
    const awmap_entry_t *e = pid_entry(g, entries, from, &v);
    if (e == NULL)
        return HERD_ENOENT;
    herd_meta_t meta;
    reg_value_decode(g->map, e, &meta);
    if (reg_is_local(g, from)) /* its exit must not take the moved name along */
        reg_index_remove(g, from, name);
    else if (from.node != g->self_node) /* nor its node put the name back */
        reg_send_unregister(g, from, name, v.hlc);
    reg_value_t moved = {to, v.hlc, (uint8_t)(v.gen + 1), herd_node_hlc_now(n)};
    return write_entry(g, name, entries, &moved, &meta, &from, 1);
}

int herd_unregister_pid(herd_node_t *n, const char *name, herd_pid_t pid)
{
    registry_t *g;
    size_t len;
    int rc = api_enter(n, name, &g, &len);
    if (rc)
        return rc;
    if (herd_pid_is_none(pid))
        return HERD_EINVAL;
    const awmap_entry_t *entries = awmap_get(g->map, name, len);
    reg_value_t v;
    if (pid_entry(g, entries, pid, &v) == NULL)
        return HERD_ENOENT;
    awmap_dot_t buf[16];
    reg_vec_t dots = REG_VEC_ON(buf);
    reg_match_t m = {pid, REG_MATCH_VISIBLE, 0};
    if (reg_dots(g, entries, &m, &dots) < 0) {
        reg_vec_free(&dots);
        return HERD_ENOMEM;
    }
    /* The pid's node lets go too, or it would put the name back as "gone
     * missing" (the request travels ahead of our delta, in order). */
    if (pid.node == g->self_node)
        reg_index_remove(g, pid, name);
    else
        reg_send_unregister(g, pid, name, v.hlc);
    rc = reg_local_change(g, name, NULL, 0, dots.items, dots.n, 0);
    reg_vec_free(&dots);
    return rc;
}

int herd_unregister(herd_node_t *n, const char *name)
{
    registry_t *g;
    reg_value_t win;
    int rc;
    if (winner_of(n, name, &g, &win, &rc) == NULL)
        return rc;
    return herd_unregister_pid(n, name, win.pid);
}

int herd_registry_flush(herd_node_t *n)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    reg_flush_now(g);
    return 0;
}

/* ---- lookups ------------------------------------------------------------------------ */

int herd_registry_holds(herd_node_t *n, const char *name, herd_pid_t pid)
{
    registry_t *g;
    size_t len;
    if (api_enter(n, name, &g, &len) != 0 || reg_hidden(g, pid))
        return 0;
    return reg_holds_pid(g, name, pid);
}

int herd_registry_stamp(herd_node_t *n, const char *name, uint64_t *hlc, uint8_t *gen)
{
    registry_t *g;
    reg_value_t v;
    int rc;
    if (winner_of(n, name, &g, &v, &rc) == NULL)
        return rc;
    *hlc = v.hlc;
    *gen = v.gen;
    return 0;
}

int herd_registry_time(herd_node_t *n, const char *name, uint64_t *hlc)
{
    uint8_t gen;
    return herd_registry_stamp(n, name, hlc, &gen);
}

int herd_whereis(herd_node_t *n, const char *name, herd_pid_t *pid, herd_meta_t *meta)
{
    registry_t *g;
    reg_value_t v;
    int rc;
    const awmap_entry_t *e = winner_of(n, name, &g, &v, &rc);
    if (e == NULL)
        return rc;
    if (meta)
        reg_value_decode(g->map, e, meta);
    if (pid)
        *pid = v.pid;
    return 0;
}

#define WHEREIS_AHEAD 6 /* lookups between a bucket's prefetch and its key's */

static int whereis_hashed(registry_t *g, const char *name, uint64_t hash, herd_pid_t *pid)
{
    size_t len;
    if (reg_name_check(name, HERD_NAME_MAX, &len) != 0)
        return HERD_EINVAL;
    reg_value_t v;
    if (reg_winner(g, awmap_get_hashed(g->map, name, len, hash), &v) == NULL)
        return HERD_ENOENT;
    *pid = v.pid;
    return 0;
}

/* A pipeline: name i's bucket is fetched, name i-AHEAD's key records, and
 * name i-2*AHEAD is looked up, its memory already on the way. */
int herd_whereis_many(herd_node_t *n, const char *const *names, size_t count, herd_pid_t *pids,
                      int *status)
{
    registry_t *g = reg_of(n);
    uint64_t hashes[4 * WHEREIS_AHEAD];
    int found = 0;
    for (size_t i = 0; i < count + 2 * WHEREIS_AHEAD; i++) {
        if (i < count) {
            const char *s = names[i] ? names[i] : "";
            hashes[i % (4 * WHEREIS_AHEAD)] = awmap_key_hash(s, strlen(s));
            if (g)
                awmap_prefetch(g->map, hashes[i % (4 * WHEREIS_AHEAD)], 0);
        }
        if (g && i >= WHEREIS_AHEAD && i - WHEREIS_AHEAD < count)
            awmap_prefetch(g->map, hashes[(i - WHEREIS_AHEAD) % (4 * WHEREIS_AHEAD)], 1);
        if (i < 2 * WHEREIS_AHEAD || i - 2 * WHEREIS_AHEAD >= count)
            continue;
        size_t j = i - 2 * WHEREIS_AHEAD;
        pids[j] = HERD_PID_NONE;
        status[j] = g == NULL ? HERD_ENOENT
                    : names[j] == NULL
                        ? HERD_EINVAL
                        : whereis_hashed(g, names[j], hashes[j % (4 * WHEREIS_AHEAD)], &pids[j]);
        found += status[j] == 0;
    }
    return found;
}

/* ---- messages by name ------------------------------------------------------------ */

int herd_cast_name(herd_proc_t *self, const char *name, const void *data, size_t len)
{
    herd_pid_t pid;
    int rc = herd_whereis(herd_proc_node(self), name, &pid, NULL);
    return rc ? rc : herd_cast(self, pid, data, len);
}

int herd_send_name(herd_proc_t *self, const char *name, const void *data, size_t len)
{
    herd_pid_t pid;
    int rc = herd_whereis(herd_proc_node(self), name, &pid, NULL);
    return rc ? rc : herd_send(self, pid, data, len);
}

int herd_call_name(herd_proc_t *self, const char *name, const void *data, size_t len,
                   uint32_t timeout_ms, uint64_t *ref)
{
    herd_pid_t pid;
    int rc = herd_whereis(herd_proc_node(self), name, &pid, NULL);
    return rc ? rc : herd_call(self, pid, data, len, timeout_ms, ref);
}

int herd_node_cast_name(herd_node_t *n, const char *name, const void *data, size_t len)
{
    herd_pid_t pid;
    int rc = herd_whereis(n, name, &pid, NULL);
    return rc ? rc : herd_node_cast(n, pid, data, len);
}

int herd_node_call_name(herd_node_t *n, const char *name, const void *data, size_t len,
                        uint32_t timeout_ms, herd_reply_t *out)
{
    herd_pid_t pid;
    int rc = herd_node_in_loop(n) ? HERD_EDEADLK : herd_whereis(n, name, &pid, NULL);
    if (rc) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    return herd_node_call(n, pid, data, len, timeout_ms, out);
}

int herd_node_call_name_async(herd_node_t *n, const char *name, const void *data, size_t len,
                              uint32_t timeout_ms, herd_call_cb cb, void *cbdata)
{
    herd_pid_t pid;
    int rc = cb ? herd_whereis(n, name, &pid, NULL) : HERD_EINVAL;
    return rc ? rc : herd_node_call_async(n, pid, data, len, timeout_ms, cb, cbdata);
}

/* ---- listing ------------------------------------------------------------------------ */

typedef struct list_ctx {
    registry_t *g;
    const char *prefix;
    size_t plen;
    herd_name_fn fn;
    void *data;
    int visited;
} list_ctx_t;

static int list_one(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    list_ctx_t *c = data;
    if (!reg_is_name_key(key, klen) || klen < c->plen || memcmp(key, c->prefix, c->plen) != 0)
        return 0;
    reg_value_t v;
    const awmap_entry_t *win = reg_winner(c->g, e, &v);
    if (win == NULL)
        return 0;
    c->visited++;
    if (c->fn == NULL)
        return 0;
    herd_meta_t meta;
    reg_value_decode(c->g->map, win, &meta);
    return c->fn(c->data, key, v.pid, &meta);
}

int herd_registry_list(herd_node_t *n, const char *prefix, herd_name_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    list_ctx_t c = {g, prefix ? prefix : "", prefix ? strlen(prefix) : 0, fn, data, 0};
    awmap_foreach(g->map, list_one, &c);
    return c.visited;
}

int herd_registry_count(herd_node_t *n, const char *prefix)
{
    registry_t *g = reg_of(n);
    if (g != NULL && (prefix == NULL || prefix[0] == '\0'))
        return (int)reg_visible_names(g); /* kept as entries come and go */
    return herd_registry_list(n, prefix, NULL, NULL);
}

int herd_registry_owns(herd_node_t *n, const char *name, herd_pid_t pid)
{
    registry_t *g;
    size_t len;
    int rc = api_enter(n, name, &g, &len);
    if (rc)
        return rc;
    if (!reg_is_local(g, pid))
        return HERD_EINVAL;
    return pidx_has(&g->by_pid, pid.serial, awmap_key_hash(name, len));
}

int herd_registry_stats(herd_node_t *n, herd_registry_stats_t *out)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    *out = g->stats;
    out->names = awmap_key_count(g->map) - reg_spec_keys(g) - g->group_keys;
    out->entries = awmap_entry_count(g->map) - g->spec_entries - g->group_entries;
    out->cc_replicas = awmap_replica_count(g->map);
    awmap_cloud_stats(g->map, &out->cc_cloud_dots, &out->cc_cloud_max);
    out->syncs_under_way = reg_sync_under_way(g);
    return 0;
}

/* The pending delta's bytes, all told. */
static uint64_t pending_bytes(const awmap_t *d)
{
    awmap_memory_t m;
    awmap_memory(d, &m);
    return m.record_chunks + m.entries + m.table + m.replicas + m.fixed;
}

int herd_registry_memory(herd_node_t *n, herd_registry_memory_t *out)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    awmap_memory_t m;
    awmap_memory(g->map, &m);
    *out = (herd_registry_memory_t){
        .records = m.records,
        .record_chunks = m.record_chunks,
        .entries = m.entries,
        .key_table = m.table,
        .pid_index = pidx_bytes(&g->by_pid),
        .replicas = m.replicas,
        .pending = g->pending ? pending_bytes(g->pending) : 0,
        .digest = sizeof(g->digest) + (g->fine ? sizeof(*g->fine) : 0),
        .fixed = m.fixed,
    };
    return 0;
}
