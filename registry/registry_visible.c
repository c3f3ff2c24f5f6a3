/*
 * registry_visible.c - which entries this node sees: the liveness of the
 * members whose processes the entries name, a name's visible winner (what
 * every lookup reads), and the dots of a key's entries that a change
 * supersedes or removes.
 */
#include <stdlib.h>
#include <string.h>

#include "herd_registry.h"
#include "registry_int.h"

/* An entry is visible when its process's node start is this one or a live
 * member: the names of a node that is down (maybe only partitioned away),
 * and of a start this node never knew (it died before this node joined),
 * are hidden. Outside a cluster every pid but none's is visible. */
int reg_hidden(const registry_t *g, herd_pid_t pid)
{
    if (pid.node == g->self_node)
        return pid.incarnation != g->self_inc;
    if (pid.node == 0 || !g->clustered)
        return pid.node == 0;
    const reg_live_t *l = u64map_get(&g->live, pid.node);
    return l == NULL || l->incarnation != pid.incarnation;
}

int reg_start_of(const registry_t *g, herd_pid_t pid)
{
    const reg_live_t *l = u64map_get(&g->live, pid.node);
    if (l && l->incarnation == pid.incarnation)
        return REG_START_KNOWN;
    const uint64_t *down = u64map_get(&g->down, pid.node);
    if ((l && pid.incarnation < l->incarnation) || (down && pid.incarnation < *down))
        return REG_START_DEAD;
    if ((down && *down == pid.incarnation) || !g->clustered || pid.node == 0)
        return REG_START_KNOWN;
    return REG_START_UNKNOWN;
}

/* Whether pid's node began draining lately: its processes are on their way
 * to other nodes, so a replica that has not heard of a move yet may name
 * the old copy. (Not for long: a copy it cannot move may be what blocks.) */
int reg_draining(const registry_t *g, herd_pid_t pid)
{
    const reg_live_t *l = pid.node == g->self_node ? NULL : u64map_get(&g->live, pid.node);
    return l && l->draining &&
           herd_node_now(g->node) - l->draining_since < REGISTRY_DRAIN_DEFER_MS;
}

void reg_live_set(registry_t *g, uint64_t id, uint64_t incarnation, herd_member_state_t st)
{
    reg_live_t *l = u64map_get(&g->live, id);
    g->visible_dirty = 1; /* names may show or hide: recounted when asked */
    g->groups_dirty = 1;  /* and group members */
    int up = st == HERD_MEMBER_UP || st == HERD_MEMBER_SUSPECT || st == HERD_MEMBER_DRAINING;
    if (!up) {
        if (l && l->incarnation == incarnation)
            free(u64map_del(&g->live, id));
        return;
    }
    if (l == NULL && ((l = calloc(1, sizeof(*l))) == NULL || u64map_put(&g->live, id, l) != 0)) {
        free(l);
        reg_alloc_failed(g, "a live member", 0);
        return;
    }
    if (st == HERD_MEMBER_DRAINING && !(l->draining && l->incarnation == incarnation))
        l->draining_since = herd_node_now(g->node);
    l->incarnation = incarnation;
    l->draining = st == HERD_MEMBER_DRAINING;
}

/* reg_value_decode without metadata, with the common case inline: a
 * compact value written here (the replica is this node start). */
static inline reg_value_t value_of(const registry_t *g, const awmap_entry_t *e)
{
    if (e->dot.replica == g->self && e->len >= 1 + 18 && e->value[0] == VALUE_COMPACT) {
        uint64_t hlc = reg_le64(e->value + 9);
        reg_value_t v = {{g->self_node, g->self_inc, reg_le64(e->value + 1)}, hlc,
                         e->value[17], hlc};
        return v;
    }
    return reg_value_decode(g->map, e, NULL);
}

const awmap_entry_t *reg_winner(const registry_t *g, const awmap_entry_t *e, reg_value_t *out)
{
    const awmap_entry_t *best = NULL;
    reg_value_t bv = {0};
    int several = e && awmap_next(e);
    for (; e; e = awmap_next(e)) {
        reg_value_t v = value_of(g, e);
        if (reg_hidden(g, v.pid))
            continue;
        /* a local process known dead never wins a conflict (its entry goes
         * with its exit; a single entry is not worth the lookup) */
        if (several && reg_is_local(g, v.pid) && !herd_is_alive(g->node, v.pid))
            continue;
        if (best == NULL || reg_value_wins(g->map, &v, e, &bv, best)) {
            best = e;
            bv = v;
        }
    }
    if (out)
        *out = bv;
    return best;
}

static int matches(const registry_t *g, const awmap_entry_t *e, const reg_match_t *m)
{
    if (m->flags & REG_MATCH_ANY)
        return 1;
    reg_value_t v = reg_value_decode(g->map, e, NULL);
    if ((m->flags & REG_MATCH_VISIBLE) && reg_hidden(g, v.pid))
        return 0;
    if ((m->flags & REG_MATCH_HLC) && v.hlc != m->hlc)
        return 0;
    if (m->flags & REG_MATCH_START)
        return v.pid.node == m->pid.node && v.pid.incarnation <= m->pid.incarnation;
    return herd_pid_equal(v.pid, m->pid);
}

int reg_dots(const registry_t *g, const awmap_entry_t *e, const reg_match_t *m, reg_vec_t *out)
{
    int n = 0;
    for (; e; e = awmap_next(e)) {
        if (!matches(g, e, m))
            continue;
        if (reg_vec_push(out, &e->dot, sizeof(e->dot)) != 0)
            return HERD_ENOMEM;
        n++;
    }
    return n;
}

int reg_holds_pid(const registry_t *g, const char *key, herd_pid_t pid)
{
    for (const awmap_entry_t *e = awmap_get(g->map, key, strlen(key)); e; e = awmap_next(e))
        if (herd_pid_equal(reg_value_decode(g->map, e, NULL).pid, pid))
            return 1;
    return 0;
}

/* ---- the count of visible names ---------------------------------------------------- */

/* Whether an entry of the list other than `skip` is visible. */
static int list_visible(const registry_t *g, const awmap_entry_t *e, const awmap_entry_t *skip)
{
    for (; e; e = awmap_next(e))
        if (e != skip && !reg_hidden(g, reg_value_decode(g->map, e, NULL).pid))
            return 1;
    return 0;
}

void reg_count_added(registry_t *g, const char *key, size_t klen, const awmap_entry_t *e)
{
    if (g->visible_dirty || reg_hidden(g, reg_value_decode(g->map, e, NULL).pid))
        return;
    if (!list_visible(g, awmap_get(g->map, key, klen), e))
        g->visible_names++;
}

void reg_count_removed(registry_t *g, const char *key, size_t klen, const awmap_entry_t *e)
{
    if (g->visible_dirty || reg_hidden(g, reg_value_decode(g->map, e, NULL).pid))
        return;
    if (!list_visible(g, awmap_get(g->map, key, klen), NULL))
        g->visible_names--;
}

static int count_visible(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    registry_t *g = data;
    if (reg_is_name_key(key, klen) && list_visible(g, e, NULL))
        g->visible_names++;
    return 0;
}

uint64_t reg_visible_names(registry_t *g)
{
    if (g->visible_dirty) {
        g->visible_names = 0;
        awmap_foreach(g->map, count_visible, g);
        g->visible_dirty = 0;
    }
    return g->visible_names;
}
