/*
 * registry.c - the global name registry on one node (see herd_registry.h).
 *
 * A registration value (wire.h encoding): u8 form, then for form 1 (full)
 * u64 pid node, u64 pid incarnation, and for both u64 pid serial, u64 hlc
 * (first registered), u8 gen (moves since), u8 n, n x (str key, str value). Form 2 (compact)
 * leaves out the pid's node and incarnation: they are those of the entry's
 * replica (the node start that wrote it, registering its own process), so
 * most registrations cost 16 bytes less.
 *
 * Sync messages on the registry's stream (app 1): registry/PROTOCOL.md.
 */
#include "herd_registry.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awmap.h"
#include "digest.h"
#include "hlc.h"
#include "log.h"
#include "pidx.h"
#include "u64map.h"

#include "registry_int.h"

/* ---- metadata ------------------------------------------------------------------- */

int herd_meta_set(herd_meta_t *m, const char *key, const char *value)
{
    if (strlen(key) > HERD_META_KEY_MAX || strlen(value) > HERD_META_VALUE_MAX || !key[0])
        return HERD_ERANGE;
    for (uint8_t i = 0; i < m->count; i++) {
        if (strcmp(m->kv[i].key, key) == 0) {
            strcpy(m->kv[i].value, value);
            return 0;
        }
    }
    if (m->count == HERD_META_MAX)
        return HERD_ERANGE;
    strcpy(m->kv[m->count].key, key);
    strcpy(m->kv[m->count].value, value);
    m->count++;
    return 0;
}

const char *herd_meta_get(const herd_meta_t *m, const char *key)
{
    for (uint8_t i = 0; i < m->count; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            return m->kv[i].value;
    return NULL;
}

/* ---- values -------------------------------------------------------------------- */

/* A registration written here of a process of this node start is compact
 * (its pid's node and incarnation are the entry's replica's); another's pid
 * is written whole. */
static uint8_t *value_encode(const registry_t *g, herd_pid_t pid, uint64_t hlc, uint8_t gen,
                             const herd_meta_t *meta, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    int compact = pid.node == g->self_node && pid.incarnation == g->self_inc;
    wire_put_u8(&w, compact ? VALUE_COMPACT : VALUE_FULL);
    if (!compact) {
        wire_put_u64(&w, pid.node);
        wire_put_u64(&w, pid.incarnation);
    }
    wire_put_u64(&w, pid.serial);
    wire_put_u64(&w, hlc);
    wire_put_u8(&w, gen);
    wire_put_u8(&w, meta ? meta->count : 0);
    for (uint8_t i = 0; meta && i < meta->count; i++) {
        wire_put_str(&w, meta->kv[i].key);
        wire_put_str(&w, meta->kv[i].value);
    }
    return wire_writer_take(&w, len);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v)); /* one load: lookups read values this way */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Decode a value; `meta` may be NULL. Malformed values read as pid NONE. The
 * pid and time sit at fixed offsets (lookups read only those). A compact
 * value's pid is of the node start that wrote it: the entry's replica. */
reg_value_t reg_value_decode(const awmap_t *m, const awmap_entry_t *e, herd_meta_t *meta)
{
    reg_value_t v = {HERD_PID_NONE, 0, 0};
    if (e->len >= 1 + 18 && e->value[0] == VALUE_COMPACT) {
        awmap_replica_id_t id = awmap_replica_id(m, e->dot.replica);
        v.pid = (herd_pid_t){id.node, id.incarnation, le64(e->value + 1)};
        v.hlc = le64(e->value + 9);
        v.gen = e->value[17];
    } else if (e->len >= 1 + 34 && e->value[0] == VALUE_FULL) {
        v.pid = (herd_pid_t){le64(e->value + 1), le64(e->value + 9), le64(e->value + 17)};
        v.hlc = le64(e->value + 25);
        v.gen = e->value[33];
    } else {
        return v;
    }
    if (meta == NULL)
        return v;
    wire_reader_t r;
    size_t skip = e->value[0] == VALUE_COMPACT ? 18 : 34;
    wire_reader_init(&r, e->value + skip, e->len - skip);
    memset(meta, 0, sizeof(*meta));
    uint8_t n = wire_get_u8(&r);
    for (uint8_t i = 0; i < n && i < HERD_META_MAX && !r.err; i++) {
        wire_get_str(&r, meta->kv[i].key, sizeof(meta->kv[i].key));
        wire_get_str(&r, meta->kv[i].value, sizeof(meta->kv[i].value));
        meta->count = (uint8_t)(i + 1);
    }
    if (r.err)
        v.pid = HERD_PID_NONE;
    return v;
}

registry_t *reg_of(herd_node_t *n)
{
    return herd_node_ext(n, HERD_EXT_REGISTRY);
}


/* ---- visibility and the winner -------------------------------------------------- */

/* An entry is visible when its process's node start is this one or a live
 * member: the names of a node that is down (maybe only partitioned away),
 * and of a start this node never knew (it died before this node joined),
 * are hidden. Outside a cluster every pid but none's is visible. */
static int entry_hidden(const registry_t *g, herd_pid_t pid)
{
    if (pid.node == g->self_node)
        return pid.incarnation != g->self_inc;
    if (pid.node == 0 || !g->clustered)
        return pid.node == 0;
    const reg_live_t *l = u64map_get(&g->live, pid.node);
    return l == NULL || l->incarnation != pid.incarnation;
}

/* Whether pid's node began draining lately: its processes are on their way
 * to other nodes, so a replica that has not heard of a move yet may name
 * the old copy. (Not for long: a copy it cannot move may be what blocks.) */
static int node_draining(const registry_t *g, herd_pid_t pid)
{
    const reg_live_t *l = pid.node == g->self_node ? NULL : u64map_get(&g->live, pid.node);
    return l && l->draining &&
           herd_node_now(g->node) - l->draining_since < REGISTRY_DRAIN_DEFER_MS;
}

static void live_set(registry_t *g, uint64_t id, uint64_t incarnation, herd_member_state_t st)
{
    reg_live_t *l = u64map_get(&g->live, id);
    int up = st == HERD_MEMBER_UP || st == HERD_MEMBER_SUSPECT || st == HERD_MEMBER_DRAINING;
    if (!up) {
        if (l && l->incarnation == incarnation)
            free(u64map_del(&g->live, id));
        return;
    }
    if (l == NULL && ((l = calloc(1, sizeof(*l))) == NULL || u64map_put(&g->live, id, l) != 0)) {
        free(l);
        return;
    }
    if (st == HERD_MEMBER_DRAINING && !(l->draining && l->incarnation == incarnation))
        l->draining_since = herd_node_now(g->node);
    l->incarnation = incarnation;
    l->draining = st == HERD_MEMBER_DRAINING;
}

static int is_local(const registry_t *g, herd_pid_t pid)
{
    return pid.node == g->self_node && pid.incarnation == g->self_inc;
}

/* Whether registration a wins over b: earlier time; for one registration
 * and a copy moved from it (same time), the later move; then lower node id. */
static int value_wins(const reg_value_t *a, const reg_value_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc;
    if (a->gen != b->gen)
        return (int8_t)(uint8_t)(a->gen - b->gen) > 0;
    if (a->pid.node != b->pid.node)
        return a->pid.node < b->pid.node;
    return a->pid.serial < b->pid.serial;
}

/* reg_value_decode without metadata, with the common case inline: a
 * compact value written here (the replica is this node start). */
static inline reg_value_t value_of(const registry_t *g, const awmap_entry_t *e)
{
    if (e->dot.replica == g->self && e->len >= 1 + 18 && e->value[0] == VALUE_COMPACT) {
        reg_value_t v = {{g->self_node, g->self_inc, le64(e->value + 1)}, le64(e->value + 9),
                         e->value[17]};
        return v;
    }
    return reg_value_decode(g->map, e, NULL);
}

/* The visible winner among a name's entries; NULL when none is visible. */
static const awmap_entry_t *name_winner(const registry_t *g, const awmap_entry_t *e,
                                        reg_value_t *out)
{
    const awmap_entry_t *best = NULL;
    reg_value_t bv = {0};
    int several = e && e->next;
    for (; e; e = e->next) {
        reg_value_t v = value_of(g, e);
        if (entry_hidden(g, v.pid))
            continue;
        /* a local process known dead never wins a conflict (its entry goes
         * with its exit; a single entry is not worth the lookup) */
        if (several && is_local(g, v.pid) && !herd_is_alive(g->node, v.pid))
            continue;
        if (best == NULL || value_wins(&v, &bv)) {
            best = e;
            bv = v;
        }
    }
    if (out)
        *out = bv;
    return best;
}

/* ---- the local pid index (fed by the map's reg_observer) ----------------------------- */

/* The process let go of the name: nothing to put back any more. */
void reg_index_remove(registry_t *g, herd_pid_t pid, const char *name)
{
    pidx_del(&g->by_pid, pid.serial, awmap_key_hash(name, strlen(name)));
}

static void missing_add(registry_t *g, uint64_t serial, const char *key, size_t klen,
                        const awmap_entry_t *e)
{
    if (g->missing_n == g->missing_cap) {
        size_t cap = g->missing_cap ? g->missing_cap * 2 : 8;
        missing_t **m = realloc(g->missing, cap * sizeof(*m));
        if (m == NULL)
            return;
        g->missing = m;
        g->missing_cap = cap;
    }
    missing_t *m = malloc(sizeof(*m) + klen + 1 + e->len);
    if (m == NULL)
        return;
    m->serial = serial;
    m->vlen = e->len;
    m->klen = (uint8_t)klen;
    memcpy(m->name, key, klen);
    m->name[klen] = '\0';
    memcpy(m->name + klen + 1, e->value, e->len);
    g->missing[g->missing_n++] = m;
}

static void touched_add(registry_t *g, const char *key, size_t klen)
{
    if (g->touched_n == g->touched_cap) {
        size_t cap = g->touched_cap ? g->touched_cap * 2 : 16;
        char **t = realloc(g->touched, cap * sizeof(char *));
        if (t == NULL)
            return;
        g->touched = t;
        g->touched_cap = cap;
    }
    if ((g->touched[g->touched_n] = strndup(key, klen)) != NULL)
        g->touched_n++;
}

static void dead_add(registry_t *g, herd_pid_t pid, uint64_t hash)
{
    if (g->dead_n == g->dead_cap) {
        size_t cap = g->dead_cap ? g->dead_cap * 2 : 8;
        struct reg_dead *d = realloc(g->dead, cap * sizeof(*d));
        if (d == NULL)
            return;
        g->dead = d;
        g->dead_cap = cap;
    }
    g->dead[g->dead_n++] = (struct reg_dead){pid, hash};
}

static void reg_remove_dead(registry_t *g);

static void added_add(registry_t *g, uint64_t hash)
{
    if (g->added_n == g->added_cap) {
        size_t cap = g->added_cap ? g->added_cap * 2 : 64;
        uint64_t *a = realloc(g->added, cap * sizeof(*a));
        if (a == NULL)
            return;
        g->added = a;
        g->added_cap = cap;
    }
    g->added[g->added_n++] = hash;
}

static void on_added(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    registry_t *g = data;
    digest_update(&g->digest, g->map, key, klen, e, 1);
    if (reg_is_spec_key(key, klen)) {
        reg_spec_changed(g, key, klen, 1);
        return;
    }
    reg_value_t v = reg_value_decode(g->map, e, NULL);
    uint64_t hash = awmap_key_hash(key, klen);
    if ((is_local(g, v.pid) && !herd_is_alive(g->node, v.pid)) ||
        (v.pid.node == g->self_node && v.pid.incarnation != g->self_inc))
        dead_add(g, v.pid, hash); /* it exited before the entry arrived: it goes */
    else if (is_local(g, v.pid))
        pidx_add(&g->by_pid, v.pid.serial, hash);
    if (e->next) /* a second entry: maybe a conflict */
        touched_add(g, key, klen);
    if (g->added_watch)
        added_add(g, hash);
}

/* An entry of a local process went while the process still holds the name
 * (it did not unregister, and has not exited): maybe gone missing. Kept to
 * be checked later, as a replacement by newer metadata looks the same. */
static void on_removed(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    registry_t *g = data;
    digest_update(&g->digest, g->map, key, klen, e, -1);
    if (reg_is_spec_key(key, klen)) {
        reg_spec_changed(g, key, klen, 0);
        return;
    }
    reg_value_t v = reg_value_decode(g->map, e, NULL);
    if (is_local(g, v.pid) && pidx_has(&g->by_pid, v.pid.serial, awmap_key_hash(key, klen)))
        missing_add(g, v.pid.serial, key, klen, e);
}

const awmap_observer_t *reg_observer(registry_t *g)
{
    return &g->obs;
}

/* Whether `key` still has an entry for `pid` (visible or hidden). */
static int holds_pid(const registry_t *g, const char *key, herd_pid_t pid)
{
    for (const awmap_entry_t *e = awmap_get(g->map, key, strlen(key)); e; e = e->next)
        if (herd_pid_equal(reg_value_decode(g->map, e, NULL).pid, pid))
            return 1;
    return 0;
}

/* Every live local process whose entry has gone missing (a node that thought
 * us gone removed it: a forget time shorter than a partition) is registered
 * again, with its first registration time, so conflicts still judge fairly.
 * The candidates are the entries on_removed kept; one whose process has let
 * go of the name, exited, or holds it again (new metadata) is dropped. */
static void check_registrations(registry_t *g)
{
    missing_t **list = g->missing;
    size_t count = g->missing_n;
    g->missing = NULL;
    g->missing_n = g->missing_cap = 0;
    for (size_t i = 0; i < count; i++) {
        missing_t *m = list[i];
        herd_pid_t pid = {g->self_node, g->self_inc, m->serial};
        if (herd_is_alive(g->node, pid) &&
            pidx_has(&g->by_pid, m->serial, awmap_key_hash(m->name, m->klen)) &&
            !holds_pid(g, m->name, pid)) {
            herd_log(HERD_LOG_INFO, "registry", "'%s' had gone missing: registered again",
                     m->name);
            g->stats.reregistered++;
            reg_local_change(g, m->name, m->name + m->klen + 1, m->vlen, NULL, 0, 1);
        }
        free(m);
    }
    free(list);
}

/* ---- conflicts ---------------------------------------------------------------------- */

static void loser_stop(registry_t *g, herd_pid_t loser, herd_pid_t winner, const char *name)
{
    if (herd_stop(g->node, loser, HERD_REASON_NAME_CONFLICT) == 0) {
        g->stats.conflicts_resolved++;
        herd_log(HERD_LOG_INFO, "registry", "name '%s': a registration made earlier on node "
                 "%016llx wins; stopping the local copy", name, (unsigned long long)winner.node);
    }
}

/* A loser whose winner is on another node: frozen, its state goes to that
 * node, and it stops only once the node that holds the name confirms it ran
 * the merge (reg_merged); its messages then follow to the holder. Returns
 * nonzero when it does not stop now (waiting, or to be judged again later);
 * 0 to stop it at once (a behaviour without state to hand over). */
static int lose_remote(registry_t *g, const char *name, herd_pid_t loser, herd_pid_t winner)
{
    uint8_t *state = NULL;
    size_t len = 0;
    int rc = herd_freeze(g->node, loser, HERD_FREEZE_CONFLICT);
    if (rc == 0 && (rc = herd_state_out(g->node, loser, &state, &len)) == HERD_EINVAL) {
        herd_thaw(g->node, loser, HERD_FREEZE_CONFLICT);
        return 0; /* nothing to hand over */
    }
    uint64_t attempt = ++g->merge_attempts;
    if (rc == 0)
        rc = reg_send_merge(g, winner.node, name, loser.serial, attempt, state, len);
    free(state);
    reg_merging_t *m = rc ? NULL : calloc(1, sizeof(*m));
    if (m == NULL || u64map_put(&g->merging, loser.serial, m) != 0) {
        free(m);
        herd_thaw(g->node, loser, HERD_FREEZE_CONFLICT); /* judged again at the next check */
        g->resettle = 1;
        return 1;
    }
    m->deadline = herd_node_now(g->node) + REGISTRY_MERGE_WAIT_MS;
    m->attempt = attempt;
    snprintf(m->name, sizeof(m->name), "%s", name);
    return 1;
}

/* The loser was not merged where it sent its state: that node's holder is
 * on `holder.node` (it moved on). Send the state there, a bounded number of
 * times; 0 when sent. */
static int merge_redirect(registry_t *g, reg_merging_t *m, herd_pid_t loser, herd_pid_t holder)
{
    if (herd_pid_is_none(holder) || holder.node == g->self_node ||
        m->hops >= REGISTRY_MERGE_HOPS)
        return HERD_ENOENT;
    uint8_t *state = NULL;
    size_t len = 0;
    uint64_t attempt = ++g->merge_attempts;
    int rc = herd_state_out(g->node, loser, &state, &len);
    if (rc == 0)
        rc = reg_send_merge(g, holder.node, m->name, loser.serial, attempt, state, len);
    free(state);
    if (rc)
        return rc;
    m->attempt = attempt;
    m->hops++;
    m->deadline = herd_node_now(g->node) + REGISTRY_MERGE_WAIT_MS;
    g->stats.merges_redirected++;
    return u64map_put(&g->merging, loser.serial, m);
}

void reg_merged(registry_t *g, uint64_t serial, uint64_t attempt, int ok, herd_pid_t holder)
{
    reg_merging_t *m = u64map_get(&g->merging, serial);
    if (m && attempt && m->attempt != attempt) {
        /* the answer to an earlier attempt that timed out (a partition held
         * it back): the loser ran on since, so what that node merged is not
         * all of its state; only the current attempt's answer counts */
        g->stats.merges_stale++;
        return;
    }
    m = u64map_del(&g->merging, serial);
    herd_pid_t loser = {g->self_node, g->self_inc, serial};
    if (m == NULL || !herd_is_alive(g->node, loser) ||
        !(herd_is_frozen(g->node, loser) & HERD_FREEZE_CONFLICT)) {
        free(m);
        return;
    }
    if (!ok && merge_redirect(g, m, loser, holder) == 0)
        return; /* still frozen: the holder's node answers next */
    free(m);
    if (!ok || herd_pid_is_none(holder)) {
        /* not merged: it resumes, and the conflict is judged again */
        g->stats.merges_abandoned++;
        herd_thaw(g->node, loser, HERD_FREEZE_CONFLICT);
        g->resettle = 1;
        return;
    }
    herd_forward_mailbox(g->node, loser, holder);
    loser_stop(g, loser, holder, "(merged)");
}

/* Losers whose winner's node did not answer in time resume. */
static void merging_expire(registry_t *g)
{
    uint64_t now = herd_node_now(g->node), due[64];
    size_t n = 0, cursor = 0;
    for (u64map_slot_t *s; n < 64 && (s = u64map_next(&g->merging, &cursor)) != NULL;)
        if (((reg_merging_t *)s->value)->deadline <= now)
            due[n++] = s->key;
    for (size_t i = 0; i < n; i++)
        reg_merged(g, due[i], 0, 0, HERD_PID_NONE); /* attempt 0: whichever is current */
}

/* Every node sees the same entries and picks the same winner; each stops its
 * own losers, whose registrations then go with them (the exit hook). */
static void settle(registry_t *g, const char *name)
{
    herd_node_t *n = g->node;
    const awmap_entry_t *entries = awmap_get(g->map, name, strlen(name));
    reg_value_t win;
    if (name_winner(g, entries, &win) == NULL)
        return;
    if (node_draining(g, win.pid)) {
        /* the winner may have moved on already: judge once its node is done */
        g->resettle = 1;
        return;
    }
    for (const awmap_entry_t *e = entries; e; e = e->next) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (entry_hidden(g, v.pid) || herd_pid_equal(v.pid, win.pid))
            continue;
        if (!herd_is_alive(n, v.pid) || u64map_get(&g->merging, v.pid.serial))
            continue; /* gone, or frozen waiting for its winner's node */
        if (herd_is_frozen(n, v.pid) & HERD_FREEZE_MOVE) {
            g->resettle = 1; /* on its way to another node: judged once it arrives */
            continue;
        }
        if (win.pid.node != g->self_node && lose_remote(g, name, v.pid, win.pid) != 0)
            continue;
        /* a winner here: the loser's state goes to its resolve_conflict first */
        uint8_t *state = NULL;
        size_t len = 0;
        if (herd_state_out(n, v.pid, &state, &len) == 0)
            herd_merge_into(n, win.pid, state, len);
        free(state);
        loser_stop(g, v.pid, win.pid, name);
    }
}

void reg_settle_touched(registry_t *g)
{
    for (size_t i = 0; i < g->touched_n; i++) {
        settle(g, g->touched[i]);
        free(g->touched[i]);
    }
    g->touched_n = 0;
    reg_remove_dead(g);
    reg_spec_deliver(g);
    while (g->added_n) {
        uint64_t *list = g->added;
        size_t n = g->added_n;
        g->added = NULL;
        g->added_n = g->added_cap = 0;
        for (size_t i = 0; i < n && g->added_watch; i++)
            g->added_watch(g->added_watch_data, list[i]);
        free(list);
    }
}

int herd_registry_watch_added(herd_node_t *n, herd_name_watch_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    g->added_watch = fn;
    g->added_watch_data = data;
    return 0;
}

uint64_t herd_registry_name_hash(const char *name)
{
    return awmap_key_hash(name, strlen(name));
}

/* ---- changes from here ------------------------------------------------------------- */

/* Apply a change made on this node; its delta goes straight into this
 * iteration's interval: one delta per iteration goes out, or one per
 * REGISTRY_MSG_MAX bytes, so no message outgrows its bound. */
int reg_local_change(registry_t *g, const char *name, const void *value, size_t vlen,
                        const awmap_dot_t *dots, size_t ndots, int add)
{
    size_t klen = strlen(name);
    reg_pending_room(g, klen + vlen + 16 * ndots + 64);
    int rc = add ? awmap_add(g->map, g->self, name, klen, value, vlen, dots, ndots, g->pending,
                             reg_observer(g), NULL)
                 : awmap_remove(g->map, name, klen, dots, ndots, g->pending, reg_observer(g));
    reg_settle_touched(g);
    return rc;
}

/* The dots of a name's visible entries (all of them when `all`). */
static size_t visible_dots(const registry_t *g, const awmap_entry_t *e, awmap_dot_t *out,
                           size_t cap, herd_pid_t only_pid)
{
    size_t n = 0;
    for (; e && n < cap; e = e->next) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (entry_hidden(g, v.pid))
            continue;
        if (!herd_pid_is_none(only_pid) && !herd_pid_equal(v.pid, only_pid))
            continue;
        out[n++] = e->dot;
    }
    return n;
}

/* A name: 1..HERD_NAME_MAX bytes, not starting with the child specs' prefix. */
static int check_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    return len == 0 || len > HERD_NAME_MAX || name[0] == REG_SPEC_PREFIX ? HERD_EINVAL : 0;
}

/* herd_register, with the first-registration time given (0: now). */
static int register_with(herd_node_t *n, const char *name, herd_pid_t pid,
                         const herd_meta_t *meta, uint64_t at, uint8_t gen)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (check_name(name) || herd_pid_is_none(pid) || (meta && meta->count > HERD_META_MAX))
        return HERD_EINVAL;
    int local = pid.node == g->self_node;
    if (local && !herd_is_alive(n, pid))
        return HERD_ENOPROC;
    const awmap_entry_t *entries = awmap_get(g->map, name, strlen(name));
    reg_value_t win;
    const awmap_entry_t *held = name_winner(g, entries, &win);
    /* A local holder whose exit is decided but not yet carried out no longer
     * holds the name: the new registration replaces its entry. */
    int holder_leaving = held && !herd_pid_equal(win.pid, pid) && is_local(g, win.pid) &&
                         !herd_is_alive(n, win.pid);
    if (held && !herd_pid_equal(win.pid, pid) && !holder_leaving)
        return HERD_EEXIST;
    /* a new registration, or new metadata for the same pid (same time) */
    uint64_t hlc = held && !holder_leaving ? win.hlc : at ? at : herd_node_hlc_now(n);
    awmap_dot_t dots[16];
    size_t ndots = visible_dots(g, entries, dots, 16, pid);
    if (holder_leaving)
        ndots += visible_dots(g, entries, dots + ndots, 16 - ndots, win.pid);
    size_t vlen;
    uint8_t *value = value_encode(g, pid, hlc, held && !holder_leaving ? win.gen : gen, meta,
                                  &vlen);
    if (value == NULL)
        return HERD_ENOMEM;
    int rc = reg_local_change(g, name, value, vlen, dots, ndots, 1);
    free(value);
    return rc;
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

int herd_registry_flush(herd_node_t *n)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    reg_flush_now(g);
    return 0;
}

int herd_registry_holds(herd_node_t *n, const char *name, herd_pid_t pid)
{
    registry_t *g = reg_of(n);
    if (g == NULL || check_name(name) || entry_hidden(g, pid))
        return 0;
    return holds_pid(g, name, pid);
}

int herd_register_claim(herd_node_t *n, const char *name, herd_pid_t pid,
                        const herd_meta_t *meta, uint64_t hlc, uint8_t gen)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (check_name(name) || hlc == 0 || (meta && meta->count > HERD_META_MAX))
        return HERD_EINVAL;
    if (!is_local(g, pid) || !herd_is_alive(n, pid))
        return HERD_ENOPROC;
    if (holds_pid(g, name, pid))
        return 0;
    size_t vlen;
    uint8_t *value = value_encode(g, pid, hlc, gen, meta, &vlen);
    if (value == NULL)
        return HERD_ENOMEM;
    g->stats.claimed++;
    int rc = reg_local_change(g, name, value, vlen, NULL, 0, 1);
    free(value);
    return rc;
}

int herd_registry_stamp(herd_node_t *n, const char *name, uint64_t *hlc, uint8_t *gen)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (check_name(name))
        return HERD_EINVAL;
    reg_value_t v;
    if (name_winner(g, awmap_get(g->map, name, strlen(name)), &v) == NULL)
        return HERD_ENOENT;
    *hlc = v.hlc;
    *gen = v.gen;
    return 0;
}

int herd_registry_time(herd_node_t *n, const char *name, uint64_t *hlc)
{
    uint8_t gen;
    return herd_registry_stamp(n, name, hlc, &gen);
}

int herd_registry_switch(herd_node_t *n, const char *name, herd_pid_t from, herd_pid_t to)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (check_name(name) || herd_pid_is_none(to))
        return HERD_EINVAL;
    const awmap_entry_t *entries = awmap_get(g->map, name, strlen(name));
    awmap_dot_t dots[16];
    size_t ndots = visible_dots(g, entries, dots, 16, from);
    const awmap_entry_t *e = entries;
    while (e && !(herd_pid_equal(reg_value_decode(g->map, e, NULL).pid, from) &&
                  !entry_hidden(g, from)))
        e = e->next;
    if (ndots == 0 || e == NULL)
        return HERD_ENOENT;
    herd_meta_t meta;
    reg_value_t v = reg_value_decode(g->map, e, &meta);
    size_t vlen;
    uint8_t *value = value_encode(g, to, v.hlc, (uint8_t)(v.gen + 1), &meta, &vlen);
    if (value == NULL)
        return HERD_ENOMEM;
    if (is_local(g, from)) /* its exit must not take the moved name along */
        reg_index_remove(g, from, name);
    else if (from.node != g->self_node) /* nor its node put the name back */
        reg_send_unregister(g, from, name, v.hlc);
    int rc = reg_local_change(g, name, value, vlen, dots, ndots, 1);
    free(value);
    return rc;
}

int herd_unregister_pid(herd_node_t *n, const char *name, herd_pid_t pid)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (check_name(name) || herd_pid_is_none(pid))
        return HERD_EINVAL;
    awmap_dot_t dots[16];
    const awmap_entry_t *entries = awmap_get(g->map, name, strlen(name));
    size_t ndots = visible_dots(g, entries, dots, 16, pid);
    if (ndots == 0)
        return HERD_ENOENT;
    /* The pid's node lets go too, or it would put the name back as "gone
     * missing" (the request travels ahead of our delta, in order). */
    if (pid.node == g->self_node) {
        reg_index_remove(g, pid, name);
    } else {
        reg_value_t v = {0};
        for (const awmap_entry_t *e = entries; e; e = e->next)
            if (herd_pid_equal((v = reg_value_decode(g->map, e, NULL)).pid, pid))
                break;
        reg_send_unregister(g, pid, name, v.hlc);
    }
    return reg_local_change(g, name, NULL, 0, dots, ndots, 0);
}

int herd_unregister(herd_node_t *n, const char *name)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (check_name(name))
        return HERD_EINVAL;
    reg_value_t win;
    if (name_winner(g, awmap_get(g->map, name, strlen(name)), &win) == NULL)
        return HERD_ENOENT;
    return herd_unregister_pid(n, name, win.pid);
}

int herd_whereis(herd_node_t *n, const char *name, herd_pid_t *pid, herd_meta_t *meta)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    size_t len = name ? strlen(name) : 0; /* check_name's, once */
    if (len == 0 || len > HERD_NAME_MAX || name[0] == REG_SPEC_PREFIX)
        return HERD_EINVAL;
    reg_value_t v;
    const awmap_entry_t *e = name_winner(g, awmap_get(g->map, name, len), &v);
    if (e == NULL)
        return HERD_ENOENT;
    if (meta)
        reg_value_decode(g->map, e, meta);
    if (pid)
        *pid = v.pid;
    return 0;
}

#define WHEREIS_AHEAD 6 /* lookups between a bucket's prefetch and its key's */

static int whereis_hashed(registry_t *g, const char *name, uint64_t hash, herd_pid_t *pid)
{
    size_t len = strlen(name);
    if (len == 0 || len > HERD_NAME_MAX || name[0] == REG_SPEC_PREFIX)
        return HERD_EINVAL;
    reg_value_t v;
    if (name_winner(g, awmap_get_hashed(g->map, name, len, hash), &v) == NULL)
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

int herd_update_meta(herd_node_t *n, const char *name, const herd_meta_t *meta)
{
    herd_pid_t pid;
    int rc = herd_whereis(n, name, &pid, NULL);
    return rc ? rc : herd_register(n, name, pid, meta);
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
    int rc = herd_node_in_process(n) ? HERD_EDEADLK : herd_whereis(n, name, &pid, NULL);
    if (rc) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    return herd_node_call(n, pid, data, len, timeout_ms, out);
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
    if (reg_is_spec_key(key, klen) || klen < c->plen || memcmp(key, c->prefix, c->plen) != 0)
        return 0;
    reg_value_t v;
    const awmap_entry_t *win = name_winner(c->g, e, &v);
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
    return herd_registry_list(n, prefix, NULL, NULL);
}

int herd_registry_stats(herd_node_t *n, herd_registry_stats_t *out)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    *out = g->stats;
    out->names = awmap_key_count(g->map) - reg_spec_keys(g);
    out->entries = awmap_entry_count(g->map) - g->spec_entries;
    out->cc_replicas = awmap_replica_count(g->map);
    awmap_cloud_stats(g->map, &out->cc_cloud_dots, &out->cc_cloud_max);
    return 0;
}

/* ---- events: exits, members, sync messages ----------------------------------------- */

typedef struct exit_ctx {
    const awmap_t *map;
    herd_pid_t pid;
    char name[AWMAP_KEY_MAX + 1];
    awmap_dot_t dots[16];
    size_t nd;
} exit_ctx_t;

/* A key with entries of c->pid: its name and those dots, and stop. */
static int exit_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    exit_ctx_t *c = data;
    c->nd = 0;
    if (reg_is_spec_key(key, klen))
        return 0;
    for (; e && c->nd < 16; e = e->next)
        if (herd_pid_equal(reg_value_decode(c->map, e, NULL).pid, c->pid))
            c->dots[c->nd++] = e->dot;
    if (c->nd == 0)
        return 0;
    memcpy(c->name, key, klen);
    c->name[klen] = '\0';
    return 1;
}

/* Remove the exited process's registrations: its names are found again by
 * their hashes (each pass removes the pid's entries under one name). */
static void on_exit(void *data, herd_pid_t pid, int reason)
{
    (void)reason;
    registry_t *g = data;
    uint64_t *hashes;
    size_t n = pidx_take(&g->by_pid, pid.serial, &hashes);
    exit_ctx_t c = {.map = g->map, .pid = pid};
    for (size_t i = 0; i < n; i++) {
        int removed = 0;
        while (awmap_foreach_hash(g->map, hashes[i], exit_key, &c) &&
               reg_local_change(g, c.name, NULL, 0, c.dots, c.nd, 0) == 0)
            removed = 1;
        if (!removed) /* another process's pair under the same tag (pidx.h) */
            pidx_add(&g->by_pid, pid.serial, hashes[i]);
    }
    free(hashes);
}

/* Entries that joins brought for local processes already gone: this node
 * is the authority on its own processes, so it removes them (a moved
 * process's new copy that exited before the move's registration arrived). */
static void reg_remove_dead(registry_t *g)
{
    while (g->dead_n) {
        struct reg_dead d = g->dead[--g->dead_n];
        exit_ctx_t c = {.map = g->map, .pid = d.pid};
        if (herd_is_alive(g->node, d.pid))
            continue;
        while (awmap_foreach_hash(g->map, d.hash, exit_key, &c) &&
               reg_local_change(g, c.name, NULL, 0, c.dots, c.nd, 0) == 0)
            ;
    }
}

typedef struct gone_ctx {
    registry_t *g;
    uint64_t node, incarnation;
    char **names;
    size_t count, cap;
} gone_ctx_t;

static int collect_gone(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    gone_ctx_t *c = data;
    if (reg_is_spec_key(key, klen))
        return 0;
    for (; e; e = e->next) {
        reg_value_t v = reg_value_decode(c->g->map, e, NULL);
        if (v.pid.node != c->node || v.pid.incarnation != c->incarnation)
            continue;
        if (c->count == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 16;
            char **names = realloc(c->names, cap * sizeof(char *));
            if (names == NULL)
                return 1;
            c->names = names;
            c->cap = cap;
        }
        if ((c->names[c->count] = strndup(key, klen)) != NULL)
            c->count++;
        return 0;
    }
    return 0;
}

/* A node start is known gone: its registrations are removed (every survivor
 * does this; the removes are per dot, so doing it twice is harmless). */
static void remove_node(registry_t *g, uint64_t node, uint64_t incarnation)
{
    gone_ctx_t c = {.g = g, .node = node, .incarnation = incarnation};
    awmap_foreach(g->map, collect_gone, &c);
    for (size_t i = 0; i < c.count; i++) {
        awmap_dot_t dots[16];
        const awmap_entry_t *e = awmap_get(g->map, c.names[i], strlen(c.names[i]));
        size_t nd = 0;
        for (; e && nd < 16; e = e->next) {
            reg_value_t v = reg_value_decode(g->map, e, NULL);
            if (v.pid.node == node && v.pid.incarnation == incarnation)
                dots[nd++] = e->dot;
        }
        if (nd)
            reg_local_change(g, c.names[i], NULL, 0, dots, nd, 0);
        free(c.names[i]);
    }
    free(c.names);
}

static int touch_all(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    if (e && e->next && !reg_is_spec_key(key, klen))
        touched_add(data, key, klen);
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

static void on_member(void *data, const char *name, uint64_t incarnation,
                      herd_member_state_t old_state, herd_member_state_t new_state, int gone)
{
    registry_t *g = data;
    uint64_t id = herd_node_id_of(name);
    if (id == g->self_node)
        return; /* this node's own leave or drain: its names stay its own */
    live_set(g, id, incarnation, new_state);
    if (new_state == HERD_MEMBER_DOWN) {
        uint64_t *inc = malloc(sizeof(*inc));
        if (inc) {
            *inc = incarnation;
            free(u64map_del(&g->down, id));
            if (u64map_put(&g->down, id, inc) != 0)
                free(inc);
        }
        /* what it sent just before may have reached only some of us */
        sync_with_live(g, id, 0);
        return;
    }
    if (new_state == HERD_MEMBER_LEFT || (new_state == HERD_MEMBER_ABSENT && gone)) {
        free(u64map_del(&g->down, id));
        remove_node(g, id, incarnation);
        return;
    }
    int arrived = old_state == HERD_MEMBER_ABSENT || old_state == HERD_MEMBER_DOWN;
    if (arrived && (new_state == HERD_MEMBER_UP || new_state == HERD_MEMBER_DRAINING)) {
        free(u64map_del(&g->down, id)); /* back from a partition: visible again */
        reg_sync_offer(g, id, 1);
        /* its names reappear: two live registrations of one name may meet */
        awmap_foreach(g->map, touch_all, g);
        reg_settle_touched(g);
    }
}

static int live_add(void *data, const herd_member_info_t *m)
{
    registry_t *g = data;
    if (herd_node_id_of(m->name) != g->self_node)
        live_set(g, herd_node_id_of(m->name), m->incarnation, m->state);
    return 0;
}

/* The members already known when the registry starts. */
static void live_load(registry_t *g)
{
    herd_cluster_foreach_member(g->node, live_add, g);
}

static void on_flush(uv_prepare_t *h)
{
    registry_flush_t *f = h->data;
    if (f->g)
        reg_flush_now(f->g);
}

static void on_flush_closed(uv_handle_t *h)
{
    registry_flush_t *f = h->data;
    if (--f->open_handles == 0)
        free(f);
}

static int touch_all(void *data, const char *key, size_t klen, const awmap_entry_t *e);

/* Conflicts whose loser could not hand its state over are judged again. */
static void resettle_all(registry_t *g)
{
    if (g->merging.count)
        merging_expire(g);
    if (!g->resettle)
        return;
    g->resettle = 0;
    awmap_foreach(g->map, touch_all, g);
    reg_settle_touched(g);
}

static void on_check(uv_timer_t *h)
{
    registry_flush_t *f = h->data;
    if (f->g) {
        check_registrations(f->g);
        resettle_all(f->g);
        if (++f->g->checks % REGISTRY_SYNC_CHECKS == 0)
            sync_with_live(f->g, 0, 1);
        reg_sync_repair(f->g);
    }
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void registry_free(void *p)
{
    registry_t *g = p;
    /* no callback may reach a freed registry while the node finishes closing */
    herd_cluster_off_change(g->node, on_member, g);
    herd_cluster_on_app(g->node, REGISTRY_APP, NULL, NULL);
    if (g->flush) {
        if (g->pending && !awmap_is_empty(g->pending))
            reg_ship(g, g->pending, SYNC_DELTA, 0); /* the last changes still go */
        g->flush->g = NULL;
        uv_close((uv_handle_t *)&g->flush->handle, on_flush_closed);
        uv_close((uv_handle_t *)&g->flush->check, on_flush_closed);
    }
    reg_sync_free(g);
    awmap_free(g->pending);
    pidx_fini(&g->by_pid);
    for (size_t i = 0; i < g->missing_n; i++)
        free(g->missing[i]);
    free(g->missing);
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->down, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&g->down);
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->live, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&g->live);
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->merging, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&g->merging);
    for (size_t i = 0; i < g->touched_n; i++)
        free(g->touched[i]);
    free(g->touched);
    reg_spec_free(g);
    free(g->added);
    free(g->dead);
    awmap_free(g->map);
    free(g);
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
    g->obs = (awmap_observer_t){.added = on_added, .removed = on_removed, .data = g};
    g->self_node = herd_node_id_of(herd_node_name(n));
    g->self_inc = herd_node_incarnation(n);
    g->pending = awmap_new_delta();
    g->flush = calloc(1, sizeof(*g->flush));
    if (g->pending == NULL || g->flush == NULL) {
        awmap_free(g->pending);
        awmap_free(g->map);
        free(g->flush);
        free(g);
        return HERD_ENOMEM;
    }
    g->flush->g = g;
    g->flush->handle.data = g->flush;
    uv_prepare_init(herd_node_loop(n), &g->flush->handle);
    uv_prepare_start(&g->flush->handle, on_flush);
    uv_unref((uv_handle_t *)&g->flush->handle);
    uv_timer_init(herd_node_loop(n), &g->flush->check);
    g->flush->check.data = g->flush;
    g->flush->open_handles = 2;
    uv_timer_start(&g->flush->check, on_check, REGISTRY_CHECK_MS, REGISTRY_CHECK_MS);
    uv_unref((uv_handle_t *)&g->flush->check);
    u64map_init(&g->down);
    u64map_init(&g->live);
    u64map_init(&g->merging);
    u64map_init(&g->peers);
    pidx_init(&g->by_pid);
    awmap_replica_id_t self = {g->self_node, g->self_inc};
    int rc = awmap_replica(g->map, self, &g->self);
    if (rc == 0 && herd_cluster_ring(n) != NULL) {
        g->clustered = 1;
        live_load(g);
        rc = herd_cluster_on_change(n, on_member, g);
        if (rc == 0)
            rc = herd_cluster_on_app(n, REGISTRY_APP, reg_on_sync, g);
    }
    if (rc == 0)
        rc = herd_node_on_exit(n, on_exit, g);
    if (rc) {
        registry_free(g);
        return rc;
    }
    herd_node_set_ext(n, HERD_EXT_REGISTRY, g, registry_free);
    return 0;
}

int herd_registry_poll(herd_node_t *n)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    reg_flush_now(g);
    uint64_t now = herd_node_now(n);
    if (now - g->last_check >= REGISTRY_CHECK_MS) {
        g->last_check = now;
        check_registrations(g);
        resettle_all(g);
        if (++g->checks % REGISTRY_SYNC_CHECKS == 0)
            sync_with_live(g, 0, 1);
        reg_sync_repair(g);
    }
    return 0;
}


