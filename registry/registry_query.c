/*
 * registry_query.c - questions asked of the registry as a whole (see
 * herd_registry.h): the names whose metadata holds given pairs, the names
 * one process holds and how many, and a spawn that registers its process
 * in the same step, so that a name that is taken never costs a process.
 *
 * Which names a query sees: the visible ones, each through its winner, as
 * herd_whereis and herd_registry_list see them. The map also carries keys
 * that are no names (child specs, and whatever else herd files there
 * under a first byte below 0x20): a query passes over every key whose
 * first byte is a control byte, without knowing what it is.
 *
 * What it costs: select is a pass over the map (O(names)); names_of and
 * count_of of a local pid look only at the keys the pid index holds for
 * it (O(its names), whatever the registry's size); of another node's pid,
 * a pass, as no node indexes other nodes' pids.
 */
#include <stdlib.h>
#include <string.h>

#include "herd_registry.h"
#include "registry_int.h"
#include "runtime_layers.h"

/* A key that is no name of a process: a child spec, or a key of another
 * kind that herd files under a control byte. */
static int reserved_key(const char *key, size_t klen)
{
    return klen == 0 || (unsigned char)key[0] < 0x20 || reg_is_spec_key(key, klen);
}

int herd_meta_holds(const herd_meta_t *meta, const herd_meta_t *where)
{
    for (uint8_t i = 0; where && i < where->count && i < HERD_META_MAX; i++) {
        const char *v = meta ? herd_meta_get(meta, where->kv[i].key) : NULL;
        if (v == NULL || strcmp(v, where->kv[i].value) != 0)
            return 0;
    }
    return 1;
}

typedef struct query {
    registry_t *g;
    const herd_meta_t *where; /* select: NULL or no pairs for every name */
    herd_pid_t pid;           /* names_of: the holder (NONE for select) */
    herd_name_fn fn;          /* NULL: only count */
    void *data;
    int visited;
} query_t;

/* One key of a query: its winner, if visible and what the query asks for,
 * goes to fn. */
static int query_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    query_t *q = data;
    if (reserved_key(key, klen))
        return 0;
    reg_value_t v;
    const awmap_entry_t *win = reg_winner(q->g, e, &v);
    if (win == NULL || (!herd_pid_is_none(q->pid) && !herd_pid_equal(v.pid, q->pid)))
        return 0;
    int filtered = q->where && q->where->count;
    if (q->fn == NULL && !filtered) {
        q->visited++;
        return 0;
    }
    herd_meta_t meta;
    reg_value_decode(q->g->map, win, &meta);
    if (filtered && !herd_meta_holds(&meta, q->where))
        return 0;
    q->visited++;
    return q->fn ? q->fn(q->data, key, v.pid, &meta) : 0;
}

int herd_registry_select(herd_node_t *n, const herd_meta_t *where, herd_name_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (where && where->count > HERD_META_MAX)
        return HERD_EINVAL;
    query_t q = {g, where, HERD_PID_NONE, fn, data, 0};
    awmap_foreach(g->map, query_key, &q);
    return q.visited;
}

/* One hash of the pid index: the key (or its 2^-32 twin) it stands for. */
static int query_hash(void *data, uint64_t hash)
{
    query_t *q = data;
    return awmap_foreach_hash(q->g->map, hash, query_key, q);
}

int herd_registry_names_of(herd_node_t *n, herd_pid_t pid, herd_name_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (herd_pid_is_none(pid))
        return HERD_EINVAL;
    if (reg_hidden(g, pid))
        return 0; /* a down node's, or an earlier start's: none visible */
    query_t q = {g, NULL, pid, fn, data, 0};
    if (reg_is_local(g, pid))
        pidx_each(&g->by_pid, pid.serial, query_hash, &q);
    else
        awmap_foreach(g->map, query_key, &q);
    return q.visited;
}

int herd_registry_count_of(herd_node_t *n, herd_pid_t pid)
{
    return herd_registry_names_of(n, pid, NULL, NULL);
}

/* The process is made first but not started: the registration names a live
 * pid, as herd_register wants, and the name is taken or refused before
 * anything of the process ran. */
int herd_spawn_named(herd_node_t *n, const char *name, const herd_meta_t *meta,
                     const herd_spawn_opts_t *opts, herd_pid_t *out)
{
    registry_t *g = reg_of(n);
    size_t len;
    if (g == NULL)
        return HERD_ENOENT;
    if (reg_name_check(name, HERD_NAME_MAX, &len) != 0 || reserved_key(name, len) ||
        (meta && meta->count > HERD_META_MAX))
        return HERD_EINVAL;
    herd_pid_t pid;
    int rc = herd_spawn_prepare(n, opts, &pid);
    if (rc)
        return rc;
    if ((rc = herd_register(n, name, pid, meta)) != 0) {
        herd_spawn_discard(n, pid, rc);
        return rc;
    }
    /* init runs holding the name; if it fails, the process exits as a
     * failed spawn does, and its name goes with it */
    if ((rc = herd_spawn_start(n, pid, opts)) != 0)
        return rc;
    if (out)
        *out = pid;
    return 0;
}
