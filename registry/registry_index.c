/*
 * registry_index.c - what the map's observer keeps while a change or join
 * runs, and what is done with it once the change is complete: the local
 * pid index (which names each local process holds), the entries of live
 * local processes that went away (put back by the next check), the names
 * with new entries (conflicts to settle, watchers to tell), and the entries
 * of local processes already dead (removed).
 *
 * Nothing here is dropped quietly: a list that cannot grow logs, counts
 * (stats.alloc_failed) and leaves a REG_REDO_* bit, and the next check
 * redoes the work from the map itself (reg_redo).
 */
#include <stdlib.h>
#include <string.h>

#include "herd_registry.h"
#include "log.h"
#include "registry_int.h"
#include "registry_layers.h"

int reg_vec_push(reg_vec_t *v, const void *item, size_t size)
{
    if (v->n == v->cap || v->items == NULL) {
        size_t cap = v->cap && v->items ? v->cap * 2 : 16;
        void *items = v->on_heap ? realloc(v->items, cap * size) : malloc(cap * size);
        if (items == NULL)
            return HERD_ENOMEM;
        if (!v->on_heap && v->n)
            memcpy(items, v->items, v->n * size);
        v->items = items;
        v->cap = cap;
        v->on_heap = 1;
    }
    memcpy((char *)v->items + v->n * size, item, size);
    v->n++;
    return 0;
}

void reg_vec_free(reg_vec_t *v)
{
    if (v->on_heap)
        free(v->items);
    *v = (reg_vec_t){0};
}

void reg_alloc_failed(registry_t *g, const char *what, unsigned redo)
{
    g->stats.alloc_failed++;
    g->redo |= redo;
    herd_log(HERD_LOG_ERROR, "registry", "out of memory keeping %s%s", what,
             redo ? ": redone at the next check" : "");
}

/* The process let go of the name: nothing to put back any more. */
void reg_index_remove(registry_t *g, herd_pid_t pid, const char *name)
{
    pidx_del(&g->by_pid, pid.serial, awmap_key_hash(name, strlen(name)));
}

int reg_pid_dead(const registry_t *g, herd_pid_t pid)
{
    /* of another node: a start older than one this node knows of its node
     * (a peer that never knew that start may pass its entries on) */
    if (pid.node != g->self_node)
        return reg_start_of(g, pid) == REG_START_DEAD;
    return pid.incarnation != g->self_inc || !herd_is_alive(g->node, pid);
}

/* ---- the work lists --------------------------------------------------------------- */

/* Kept whole (name, value): the map no longer has the entry to put back. */
static void missing_add(registry_t *g, const reg_value_t *v, const char *key, size_t klen,
                        const awmap_entry_t *e)
{
    missing_t *m = malloc(sizeof(*m) + klen + 1 + e->len);
    size_t order = g->missing.n;
    if (m && reg_vec_push(&g->missing, &m, sizeof(m)) == 0) {
        m->serial = v->pid.serial;
        m->writer = awmap_replica_id(g->map, e->dot.replica);
        m->counter = e->dot.counter;
        m->written = v->written;
        m->order = order;
        m->vlen = e->len;
        m->klen = (uint8_t)klen;
        memcpy(m->name, key, klen);
        m->name[klen] = '\0';
        memcpy(m->name + klen + 1, e->value, e->len);
        return;
    }
    free(m);
    g->stats.alloc_failed++;
    herd_log(HERD_LOG_ERROR, "registry", "out of memory: an entry of a live process of "
             "'%.*s' went away and cannot be kept to be put back", (int)klen, key);
}

int reg_touched_add(registry_t *g, const char *key, size_t klen)
{
    char *name = strndup(key, klen);
    if (name && reg_vec_push(&g->touched, &name, sizeof(name)) == 0)
        return 0;
    free(name);
    g->resettle = 1; /* every name with two entries is judged at the next check */
    reg_alloc_failed(g, "a name to settle", 0);
    return HERD_ENOMEM;
}

int reg_dead_add(registry_t *g, herd_pid_t pid, uint64_t hash)
{
    struct reg_dead d = {pid, hash};
    if (reg_vec_push(&g->dead, &d, sizeof(d)) == 0)
        return 0;
    reg_alloc_failed(g, "an entry of a dead process", REG_REDO_DEAD);
    return HERD_ENOMEM;
}

static void added_add(registry_t *g, uint64_t hash)
{
    if (reg_vec_push(&g->added, &hash, sizeof(hash)) != 0)
        reg_alloc_failed(g, "a name for the watchers", REG_REDO_ADDED);
}

/* ---- the map's observer ------------------------------------------------------------- */

static void on_added(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    registry_t *g = data;
    uint64_t hash = awmap_key_hash(key, klen);
    /* the digest's sums are asked for now and updated last: the work
     * between hides their wait */
    digest_prefetch(&g->digest, g->fine, hash);
    reg_notify_entry(g, key, klen, e, 1);
    if (reg_is_spec_key(key, klen)) {
        reg_spec_changed(g, key, klen, 1);
        digest_update_hashed(&g->digest, g->fine, g->map, hash, e, 1);
        return;
    }
    int group = reg_is_group_key(key, klen);
    if (group) /* a membership: everything below applies to it as to a name */
        reg_group_added(g, key, klen, hash);
    else
        reg_count_added(g, key, klen, e);
    reg_value_t v = reg_value_decode(g->map, e, NULL);
    int start = v.pid.node == g->self_node ? REG_START_KNOWN : reg_start_of(g, v.pid);
    if (start == REG_START_DEAD || (v.pid.node == g->self_node && reg_pid_dead(g, v.pid)))
        reg_dead_add(g, v.pid, hash); /* it exited before the entry arrived: it goes */
    else if (reg_is_local(g, v.pid) && pidx_add(&g->by_pid, v.pid.serial, hash) != 0)
        reg_alloc_failed(g, "the local index", REG_REDO_INDEX);
    else if (start == REG_START_UNKNOWN)
        reg_stranger_note(g, v.pid); /* not met yet, or gone before this node met it */
    /* a second entry: maybe a conflict (of a group key: one pid's); reg_settle
     * takes a C string, and a key holding a NUL is no name any node writes */
    if (awmap_next(e) && memchr(key, '\0', klen) == NULL)
        reg_touched_add(g, key, klen);
    if (g->watchers.n && !group) /* watchers wait for names */
        added_add(g, hash);
    digest_update_hashed(&g->digest, g->fine, g->map, hash, e, 1);
}

/* An entry of a local process went while the process still holds the name
 * (it did not unregister, and has not exited): maybe gone missing. Kept to
 * be checked later, as a replacement by newer metadata looks the same. */
static void on_removed(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    registry_t *g = data;
    digest_update(&g->digest, g->fine, g->map, key, klen, e, -1);
    reg_notify_entry(g, key, klen, e, -1);
    if (reg_is_spec_key(key, klen)) {
        reg_spec_changed(g, key, klen, 0);
        return;
    }
    uint64_t hash = awmap_key_hash(key, klen);
    if (reg_is_group_key(key, klen))
        reg_group_removed(g, key, klen, hash);
    else
        reg_count_removed(g, key, klen, e);
    reg_value_t v = reg_value_decode(g->map, e, NULL);
    if (reg_is_local(g, v.pid) && pidx_has(&g->by_pid, v.pid.serial, hash))
        missing_add(g, &v, key, klen, e);
}

const awmap_observer_t *reg_observer(registry_t *g)
{
    return &g->obs;
}

void reg_index_init(registry_t *g)
{
    g->obs = (awmap_observer_t){.added = on_added, .removed = on_removed, .data = g};
    pidx_init(&g->by_pid);
}

/* ---- after a change ----------------------------------------------------------------- */

/* Entries that joins brought for local processes already gone: this node
 * is the authority on its own processes, so it removes them (a moved
 * process's new copy that exited before the move's registration arrived). */
static void remove_dead(registry_t *g)
{
    while (g->dead.n) {
        struct reg_dead d = REG_VEC_AT(&g->dead, struct reg_dead, g->dead.n - 1);
        g->dead.n--;
        if (!reg_pid_dead(g, d.pid))
            continue;
        if (reg_remove_pid(g, d.pid, d.hash) < 0) {
            reg_alloc_failed(g, "an entry of a dead process", REG_REDO_DEAD);
            return;
        }
    }
}

static void compact_watchers(registry_t *g)
{
    size_t k = 0;
    for (size_t i = 0; i < g->watchers.n; i++)
        if (REG_VEC_AT(&g->watchers, reg_watcher_t, i).fn)
            REG_VEC_AT(&g->watchers, reg_watcher_t, k++) =
                REG_VEC_AT(&g->watchers, reg_watcher_t, i);
    g->watchers.n = k;
}

/* The list is taken first: a watcher may change the registry, which adds
 * to a new list told by that change. */
static void tell_watchers(registry_t *g)
{
    while (g->added.n) {
        reg_vec_t list = g->added;
        g->added = (reg_vec_t){0};
        g->telling++;
        for (size_t i = 0; i < list.n; i++)
            for (size_t j = 0; j < g->watchers.n; j++) {
                reg_watcher_t w = REG_VEC_AT(&g->watchers, reg_watcher_t, j);
                if (w.fn)
                    w.fn(w.data, REG_VEC_AT(&list, uint64_t, i));
            }
        g->telling--;
        reg_vec_free(&list);
    }
    if (!g->telling)
        compact_watchers(g);
}

void reg_settle_touched(registry_t *g)
{
    while (g->touched.n) {
        reg_vec_t list = g->touched; /* taken: settling may change the map */
        g->touched = (reg_vec_t){0};
        for (size_t i = 0; i < list.n; i++) {
            reg_settle(g, REG_VEC_AT(&list, char *, i));
            free(REG_VEC_AT(&list, char *, i));
        }
        reg_vec_free(&list);
    }
    remove_dead(g);
    reg_spec_deliver(g);
    tell_watchers(g);
    reg_notify_deliver(g);
}

int herd_registry_watch_added(herd_node_t *n, herd_name_watch_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (fn == NULL)
        return HERD_EINVAL;
    reg_watcher_t w = {fn, data};
    return reg_vec_push(&g->watchers, &w, sizeof(w));
}

int herd_registry_unwatch_added(herd_node_t *n, herd_name_watch_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    for (size_t i = 0; i < g->watchers.n; i++) {
        reg_watcher_t *w = &REG_VEC_AT(&g->watchers, reg_watcher_t, i);
        if (w->fn == fn && w->data == data && fn) {
            w->fn = NULL; /* compacted once no one is being told */
            if (!g->telling)
                compact_watchers(g);
            return 0;
        }
    }
    return HERD_ENOENT;
}

uint64_t herd_registry_name_hash(const char *name)
{
    return awmap_key_hash(name, strlen(name));
}

/* ---- each check ----------------------------------------------------------------------- */

/* Whether `key` (klen bytes) has an entry of pid. */
static int holds(const registry_t *g, const char *key, size_t klen, herd_pid_t pid)
{
    for (const awmap_entry_t *e = awmap_get(g->map, key, klen); e; e = awmap_next(e))
        if (herd_pid_equal(reg_value_decode(g->map, e, NULL).pid, pid))
            return 1;
    return 0;
}

/* Candidates of one process and name together, the newest write first (of
 * two alike, the later removal). */
static int missing_cmp(const void *pa, const void *pb)
{
    const missing_t *a = *(missing_t *const *)pa, *b = *(missing_t *const *)pb;
    if (a->serial != b->serial)
        return a->serial < b->serial ? -1 : 1;
    if (a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    int c = memcmp(a->name, b->name, a->klen);
    if (c)
        return c;
    if (a->written != b->written)
        return a->written > b->written ? -1 : 1;
    return a->order > b->order ? -1 : (a->order < b->order);
}

static int missing_same(const missing_t *a, const missing_t *b)
{
    return a->serial == b->serial && a->klen == b->klen &&
           memcmp(a->name, b->name, a->klen) == 0;
}

/* Every live local process whose entry has gone missing (a node that thought
 * us gone removed it: a forget time shorter than a partition) is registered
 * again, with its first registration time, so conflicts still judge fairly.
 * The candidates are the entries on_removed kept; one whose process has let
 * go of the name, exited, or holds it again (new metadata) is dropped. Of
 * one process and name only the newest write goes back: an older candidate
 * is one its process replaced itself (a join again with new metadata) before
 * the newer entry went missing too, since the last check. */
void reg_check_missing(registry_t *g)
{
    reg_vec_t list = g->missing;
    g->missing = (reg_vec_t){0};
    if (list.n > 1)
        qsort(list.items, list.n, sizeof(missing_t *), missing_cmp);
    for (size_t i = 0; i < list.n; i++) {
        missing_t *m = REG_VEC_AT(&list, missing_t *, i);
        herd_pid_t pid = {g->self_node, g->self_inc, m->serial};
        int newest = i == 0 || !missing_same(REG_VEC_AT(&list, missing_t *, i - 1), m);
        if (newest && herd_is_alive(g->node, pid) &&
            pidx_has(&g->by_pid, m->serial, awmap_key_hash(m->name, m->klen)) &&
            !holds(g, m->name, m->klen, pid)) {
            herd_log(HERD_LOG_INFO, "registry", "'%s' had gone missing: registered again",
                     m->name);
            g->stats.reregistered++;
            /* in place of the entry that went: a node that holds it still
             * (the removal has not reached it) drops it as it takes this */
            uint32_t writer;
            int known = awmap_seen(g->map, m->writer, m->counter) &&
                        awmap_replica(g->map, m->writer, &writer) == 0;
            awmap_dot_t gone = {known ? writer : 0, m->counter};
            reg_local_change_len(g, m->name, m->klen, m->name + m->klen + 1, m->vlen,
                                 known ? &gone : NULL, known ? 1u : 0u, 1);
        }
    }
    for (size_t i = 0; i < list.n; i++)
        free(REG_VEC_AT(&list, missing_t *, i));
    reg_vec_free(&list);
}

typedef struct redo_ctx {
    registry_t *g;
    unsigned bits; /* REG_REDO_* to redo in this scan */
} redo_ctx_t;

/* One key of the scan: what fails again sets its bit again. */
static int redo_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    redo_ctx_t *c = data;
    registry_t *g = c->g;
    if (reg_is_spec_key(key, klen))
        return 0;
    uint64_t hash = awmap_key_hash(key, klen);
    if ((c->bits & REG_REDO_ADDED) && g->watchers.n && !reg_is_group_key(key, klen))
        added_add(g, hash);
    for (; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if ((c->bits & REG_REDO_DEAD) && reg_pid_dead(g, v.pid))
            reg_dead_add(g, v.pid, hash);
        else if ((c->bits & REG_REDO_INDEX) && reg_is_local(g, v.pid) &&
                 pidx_add(&g->by_pid, v.pid.serial, hash) != 0)
            reg_alloc_failed(g, "the local index", REG_REDO_INDEX);
    }
    return 0;
}

/* Redo what allocation failures left: a scan of the map for the lists'
 * work, and the removal of node starts that failed. */
void reg_redo(registry_t *g)
{
    redo_ctx_t c = {g, g->redo & (REG_REDO_DEAD | REG_REDO_ADDED | REG_REDO_INDEX)};
    g->redo &= ~c.bits;
    if (c.bits)
        awmap_foreach(g->map, redo_key, &c);
    if (g->redo & REG_REDO_GROUPS) {
        g->redo &= ~(unsigned)REG_REDO_GROUPS;
        reg_group_rebuild(g); /* sets the bit again if it fails again */
    }
    if (g->redo & REG_REDO_GONE) {
        g->redo &= ~(unsigned)REG_REDO_GONE;
        reg_vec_t gone = g->gone;
        g->gone = (reg_vec_t){0};
        for (size_t i = 0; i < gone.n; i++) {
            awmap_replica_id_t id = REG_VEC_AT(&gone, awmap_replica_id_t, i);
            reg_remove_start(g, id.node, id.incarnation);
        }
        reg_vec_free(&gone);
    }
    reg_settle_touched(g);
}

void reg_index_free(registry_t *g)
{
    pidx_fini(&g->by_pid);
    for (size_t i = 0; i < g->missing.n; i++)
        free(REG_VEC_AT(&g->missing, missing_t *, i));
    for (size_t i = 0; i < g->touched.n; i++)
        free(REG_VEC_AT(&g->touched, char *, i));
    reg_vec_free(&g->missing);
    reg_vec_free(&g->touched);
    reg_vec_free(&g->added);
    reg_vec_free(&g->watchers);
    reg_vec_free(&g->dead);
    reg_vec_free(&g->gone);
    reg_vec_free(&g->strangers);
}
