/*
 * registry_spec.c - the replicated child specs the registry's map carries
 * beside the names (herd_registry.h): keys REG_SPEC_PREFIX + name, values
 * the supervisor's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "herd_registry.h"
#include "registry_int.h"
#include "registry_layers.h"

static int spec_key(const char *name, char *key, size_t *klen)
{
    size_t len;
    if (reg_name_check(name, AWMAP_KEY_MAX - 1, &len) != 0)
        return HERD_EINVAL;
    key[0] = REG_SPEC_PREFIX;
    memcpy(key + 1, name, len + 1);
    *klen = len + 1;
    return 0;
}

void reg_spec_changed(registry_t *g, const char *key, size_t klen, int added)
{
    g->spec_entries += added ? 1 : (uint64_t)-1;
    const awmap_entry_t *now = awmap_get(g->map, key, klen);
    if (added && now && awmap_next(now) == NULL)
        g->spec_keys++; /* its first entry */
    else if (!added && now == NULL)
        g->spec_keys--; /* its last went */
    if (g->spec_watch == NULL)
        return;
    char *name = strndup(key + 1, klen - 1);
    if (name && reg_vec_push(&g->spec_changed, &name, sizeof(name)) == 0)
        return;
    free(name);
    reg_alloc_failed(g, "a changed child spec for its watcher", 0);
}

/* The list is taken first: the watcher may change specs, which adds to a new
 * list delivered by that change. */
void reg_spec_deliver(registry_t *g)
{
    while (g->spec_changed.n) {
        reg_vec_t list = g->spec_changed;
        g->spec_changed = (reg_vec_t){0};
        for (size_t i = 0; i < list.n; i++) {
            if (g->spec_watch)
                g->spec_watch(g->spec_watch_data, REG_VEC_AT(&list, char *, i));
            free(REG_VEC_AT(&list, char *, i));
        }
        reg_vec_free(&list);
    }
}

void reg_spec_free(registry_t *g)
{
    for (size_t i = 0; i < g->spec_changed.n; i++)
        free(REG_VEC_AT(&g->spec_changed, char *, i));
    reg_vec_free(&g->spec_changed);
}

size_t reg_spec_keys(registry_t *g)
{
    return g->spec_keys;
}

size_t herd_spec_count(herd_node_t *node)
{
    registry_t *g = reg_of(node);
    return g ? reg_spec_keys(g) : 0;
}

/* The entry every node reads: the lowest (writer node, incarnation, counter). */
static const awmap_entry_t *spec_winner(const registry_t *g, const awmap_entry_t *e)
{
    const awmap_entry_t *best = NULL;
    awmap_replica_id_t bid = {0, 0};
    for (; e; e = awmap_next(e)) {
        awmap_replica_id_t id = awmap_replica_id(g->map, e->dot.replica);
        if (best == NULL || id.node < bid.node ||
            (id.node == bid.node && (id.incarnation < bid.incarnation ||
                                     (id.incarnation == bid.incarnation &&
                                      e->dot.counter < best->dot.counter)))) {
            best = e;
            bid = id;
        }
    }
    return best;
}

/* The registry and the spec key of `name`; an error code instead. */
static int spec_lookup(herd_node_t *node, const char *name, registry_t **g, char *key,
                       size_t *klen)
{
    if ((*g = reg_of(node)) == NULL)
        return HERD_ENOENT;
    return spec_key(name, key, klen);
}

/* Put (spec given) or remove every entry of the spec key this node sees. */
static int spec_change(registry_t *g, const char *key, size_t klen, const void *spec,
                       size_t len, int add)
{
    awmap_dot_t buf[16];
    reg_vec_t dots = REG_VEC_ON(buf);
    reg_match_t every = {HERD_PID_NONE, REG_MATCH_ANY, 0};
    int rc = reg_dots(g, awmap_get(g->map, key, klen), &every, &dots);
    if (rc >= 0)
        rc = !add && rc == 0 ? HERD_ENOENT
                             : reg_local_change(g, key, spec, len, dots.items, dots.n, add);
    reg_vec_free(&dots);
    return rc;
}

int herd_spec_put(herd_node_t *node, const char *name, const void *spec, size_t len)
{
    registry_t *g;
    char key[AWMAP_KEY_MAX + 1];
    size_t klen;
    int rc = spec_lookup(node, name, &g, key, &klen);
    if (rc == 0 && (len > HERD_SPEC_MAX || (len && spec == NULL)))
        rc = HERD_EINVAL;
    return rc ? rc : spec_change(g, key, klen, spec, len, 1);
}

int herd_spec_remove(herd_node_t *node, const char *name)
{
    registry_t *g;
    char key[AWMAP_KEY_MAX + 1];
    size_t klen;
    int rc = spec_lookup(node, name, &g, key, &klen);
    return rc ? rc : spec_change(g, key, klen, NULL, 0, 0);
}

/* The entry of `name`'s spec every node reads, or NULL with *rc set. */
static const awmap_entry_t *spec_read(herd_node_t *node, const char *name, registry_t **g,
                                      int *rc)
{
    char key[AWMAP_KEY_MAX + 1];
    size_t klen;
    if ((*rc = spec_lookup(node, name, g, key, &klen)) != 0)
        return NULL;
    const awmap_entry_t *e = spec_winner(*g, awmap_get((*g)->map, key, klen));
    *rc = e ? 0 : HERD_ENOENT;
    return e;
}

int herd_spec_get(herd_node_t *node, const char *name, const uint8_t **spec, size_t *len)
{
    registry_t *g;
    int rc;
    const awmap_entry_t *e = spec_read(node, name, &g, &rc);
    if (e == NULL)
        return rc;
    *spec = e->value;
    *len = e->len;
    return 0;
}

typedef struct spec_each {
    registry_t *g;
    herd_spec_fn fn;
    void *data;
    int visited;
} spec_each_t;

static int spec_one(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    spec_each_t *c = data;
    if (!reg_is_spec_key(key, klen) || e == NULL)
        return 0;
    char name[AWMAP_KEY_MAX + 1];
    memcpy(name, key + 1, klen - 1);
    name[klen - 1] = '\0';
    const awmap_entry_t *w = spec_winner(c->g, e);
    c->visited++;
    return c->fn ? c->fn(c->data, name, w->value, w->len) : 0;
}

int herd_spec_foreach(herd_node_t *node, herd_spec_fn fn, void *data)
{
    registry_t *g = reg_of(node);
    if (g == NULL)
        return HERD_ENOENT;
    spec_each_t c = {g, fn, data, 0};
    awmap_foreach(g->map, spec_one, &c);
    return c.visited;
}

/* Positions of the registry's order (awmap_foreach_range): [0, 2^32). */
#define SPEC_POSITIONS (UINT64_C(1) << 32)

int herd_spec_foreach_slice(herd_node_t *node, uint64_t *pos, size_t keys, herd_spec_fn fn,
                            void *data)
{
    registry_t *g = reg_of(node);
    if (g == NULL)
        return HERD_ENOENT;
    if (*pos >= SPEC_POSITIONS)
        return 1;
    /* names and groups share the map with the specs: the range is sized
     * by every key, so it holds about `keys` of them (spread evenly by
     * their hashes) */
    size_t total = awmap_key_count(g->map);
    uint64_t width = keys == 0 || total <= keys ? SPEC_POSITIONS
                                                 : SPEC_POSITIONS / total * keys;
    uint64_t hi = width == 0 || SPEC_POSITIONS - *pos <= width ? SPEC_POSITIONS : *pos + width;
    spec_each_t c = {g, fn, data, 0};
    int rc = awmap_foreach_range(g->map, (uint32_t)*pos, hi, spec_one, &c);
    if (rc)
        return rc;
    *pos = hi;
    return hi == SPEC_POSITIONS;
}

int herd_spec_watch(herd_node_t *node, herd_spec_watch_fn fn, void *data)
{
    registry_t *g = reg_of(node);
    if (g == NULL)
        return HERD_ENOENT;
    g->spec_watch = fn;
    g->spec_watch_data = data;
    return 0;
}

int herd_spec_ref(herd_node_t *node, const char *name, herd_spec_ref_t *ref)
{
    registry_t *g;
    int rc;
    const awmap_entry_t *e = spec_read(node, name, &g, &rc);
    if (e == NULL)
        return rc;
    awmap_replica_id_t id = awmap_replica_id(g->map, e->dot.replica);
    *ref = (herd_spec_ref_t){id.node, id.incarnation, e->dot.counter};
    return 0;
}

int herd_spec_ref_seen(herd_node_t *node, const herd_spec_ref_t *ref)
{
    registry_t *g = reg_of(node);
    awmap_replica_id_t id = {ref->node, ref->incarnation};
    return g && ref->counter && awmap_seen(g->map, id, ref->counter);
}

int herd_spec_refs(herd_node_t *node, const char *name, herd_spec_ref_t *out, size_t cap)
{
    registry_t *g;
    char key[AWMAP_KEY_MAX + 1];
    size_t klen, n = 0;
    int rc = spec_lookup(node, name, &g, key, &klen);
    if (rc)
        return rc;
    for (const awmap_entry_t *e = awmap_get(g->map, key, klen); e; e = awmap_next(e), n++) {
        if (n >= cap)
            return HERD_ERANGE;
        awmap_replica_id_t id = awmap_replica_id(g->map, e->dot.replica);
        out[n] = (herd_spec_ref_t){id.node, id.incarnation, e->dot.counter};
    }
    return (int)n;
}

int herd_spec_relay(herd_node_t *node, const char *name, const herd_spec_ref_t *ref,
                    const void *spec, size_t len)
{
    registry_t *g;
    char key[AWMAP_KEY_MAX + 1];
    size_t klen;
    int rc = spec_lookup(node, name, &g, key, &klen);
    if (rc == 0 && (ref == NULL || ref->counter == 0 || len > HERD_SPEC_MAX ||
                    (len && spec == NULL)))
        rc = HERD_EINVAL;
    if (rc)
        return rc;
    awmap_replica_id_t id = {ref->node, ref->incarnation};
    if (awmap_seen(g->map, id, ref->counter))
        return 0;
    awmap_t *d = awmap_new_delta();
    if (d == NULL)
        return HERD_ENOMEM;
    rc = awmap_note_entry(d, key, klen, id, ref->counter, spec, len);
    if (rc == 0)
        rc = awmap_join(g->map, d, reg_observer(g));
    if (rc == 0 && g->clustered) /* the members that missed it too */
        reg_ship(g, d, SYNC_DELTA, 0);
    awmap_free(d);
    reg_settle_touched(g);
    return rc ? rc : 1;
}

int herd_spec_send_removed(herd_node_t *node, const char *name, const herd_spec_ref_t *refs,
                           size_t n, uint64_t to)
{
    registry_t *g;
    char key[AWMAP_KEY_MAX + 1];
    size_t klen;
    int rc = spec_lookup(node, name, &g, key, &klen);
    if (rc)
        return rc;
    awmap_t *d = awmap_new_delta();
    if (d == NULL)
        return HERD_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        awmap_replica_id_t id = {refs[i].node, refs[i].incarnation};
        rc = awmap_note_removed(d, key, klen, id, refs[i].counter);
    }
    if (rc == 0)
        rc = reg_ship_to(g, d, to);
    awmap_free(d);
    return rc;
}
