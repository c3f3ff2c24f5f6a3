/*
 * registry_group.c - process groups (herd_group.h): memberships as entries
 * of the registry's map, and the index that finds a group's members.
 *
 * A membership of pid P in group G is an entry under the key
 *
 *   REG_GROUP_PREFIX, G (1..HERD_GROUP_MAX bytes), ':', P in 32 characters
 *
 * P being its node id, incarnation and serial (24 bytes, big-endian) in
 * base64url. The key is read from its end (the pid's part has a fixed
 * length), so G may hold any byte but NUL, ':' included, and two
 * memberships never share a key. No byte of a key is NUL: some of the
 * registry's paths take keys as C strings (reg_local_change, reg_settle,
 * reg_index_remove). No name has the prefix
 * (reg_name_check), so a group never meets a name, whatever its string.
 *
 * The value is a registration's (registry_value.c: pid, time first joined,
 * metadata), so everything the registry does for a name's entry holds for
 * a membership: deltas and digest syncs carry it; it goes when its local
 * process exits (the pid index holds its key's hash) and with its node
 * start; it is hidden while the pid's node is down; a live local process's
 * membership that another node removed is put back; the pid's node is told
 * of a leave made elsewhere (the unregister message, matched by the time
 * first joined, which a join of the same membership keeps). One key holds
 * one pid, so two entries of a key are one membership written on two nodes
 * at once: never a conflict (reg_settle), the later write wins
 * (reg_member_wins) and the pid's node removes the other.
 *
 * The index, kept by the map's observer: per group name a reg_group_t with
 * the hashes of its member keys (hset.h: 8 bytes a slot, the map holds the
 * keys) and how many of them are visible here, so members, count and list
 * never scan the map. The visible counts are recounted once after the live
 * set changed (groups_dirty), as the count of visible names is. Visits
 * work on a copy of the hashes and call back outside any walk of the map,
 * so a callback may join and leave.
 */
#include "herd_group.h"

#include <stdlib.h>
#include <string.h>

#include "hset.h"
#include "registry_int.h"

#define GROUP_SEP ':'
#define PID_CHARS 32 /* 24 bytes, 6 bits a character */
#define PID_PART (1 + PID_CHARS) /* the separator and the pid */
#define GROUP_KEY_MAX (1 + HERD_GROUP_MAX + PID_PART)
_Static_assert(GROUP_KEY_MAX == REG_GROUP_KEY_MAX, "registry_int.h says so");
_Static_assert(GROUP_KEY_MAX <= AWMAP_KEY_MAX, "a group's key fits the map's");
_Static_assert(GROUP_KEY_MAX <= HERD_NAME_MAX, "and the unregister message's name");
#define VISIT_BUF 256 /* hashes a visit copies on the stack (more: malloc) */

typedef struct reg_group {
    struct reg_group *twin; /* another group whose name hash is the same */
    uint64_t visible;       /* members visible here (stale while groups_dirty) */
    hset_t members;         /* the hashes of its member keys */
    uint8_t len;
    char name[]; /* len bytes and a NUL */
} reg_group_t;

/* ---- the key ------------------------------------------------------------------------ */

static const char B64[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* A group name: 0 and its length, or HERD_EINVAL. */
static int group_check(const char *group, size_t *len)
{
    size_t n = group ? strnlen(group, HERD_GROUP_MAX + 1) : 0;
    if (n == 0 || n > HERD_GROUP_MAX)
        return HERD_EINVAL;
    *len = n;
    return 0;
}

size_t reg_group_key(const char *group, size_t glen, herd_pid_t pid, char *key)
{
    uint8_t raw[24];
    const uint64_t parts[3] = {pid.node, pid.incarnation, pid.serial};
    for (int p = 0; p < 3; p++)
        for (int b = 0; b < 8; b++)
            raw[p * 8 + b] = (uint8_t)(parts[p] >> (56 - 8 * b));
    key[0] = REG_GROUP_PREFIX;
    memcpy(key + 1, group, glen);
    char *out = key + 1 + glen;
    *out++ = GROUP_SEP;
    for (int i = 0; i < 24; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int c = 3; c >= 0; c--)
            *out++ = B64[(v >> (6 * c)) & 63];
    }
    *out = '\0';
    return (size_t)(out - key);
}

/* A membership's key read back: its group (in the key) and pid. */
typedef struct member_key {
    const char *group;
    size_t glen;
    herd_pid_t pid;
} member_key_t;

/* 0, or -1 for a key that no join writes (a peer's garbage). */
static int key_parse(const char *key, size_t klen, member_key_t *out)
{
    if (!reg_is_group_key(key, klen) || klen < 1 + 1 + PID_PART || klen > GROUP_KEY_MAX ||
        key[klen - PID_PART] != GROUP_SEP)
        return -1;
    const char *p = key + klen - PID_CHARS;
    uint64_t parts[3] = {0, 0, 0};
    for (int i = 0; i < PID_CHARS; i += 4) {
        uint32_t v = 0;
        for (int c = 0; c < 4; c++) {
            int d = b64_value(p[i + c]);
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        for (int b = 2; b >= 0; b--) { /* byte k of the 24 goes to part k / 8 */
            int k = i / 4 * 3 + (2 - b);
            parts[k / 8] = parts[k / 8] << 8 | ((v >> (8 * b)) & 0xff);
        }
    }
    out->group = key + 1;
    out->glen = klen - 1 - PID_PART;
    out->pid = (herd_pid_t){parts[0], parts[1], parts[2]};
    return 0;
}

/* ---- the order of one membership's entries ------------------------------------------ */

int reg_member_wins(const awmap_t *m, const reg_value_t *a, const awmap_entry_t *ea,
                    const reg_value_t *b, const awmap_entry_t *eb)
{
    if (a->written != b->written)
        return a->written > b->written;
    return reg_value_wins(m, a, ea, b, eb);
}

/* The entry of a membership every node reads (its metadata); NULL for none. */
static const awmap_entry_t *member_entry(const registry_t *g, const awmap_entry_t *e,
                                         reg_value_t *out)
{
    const awmap_entry_t *best = NULL;
    for (; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (best == NULL || reg_member_wins(g->map, &v, e, out, best)) {
            best = e;
            *out = v;
        }
    }
    return best;
}

/* ---- the index ---------------------------------------------------------------------- */

static uint64_t group_hash(const char *name, size_t len)
{
    uint64_t h = awmap_key_hash(name, len);
    return h ? h : 1; /* 0 is no key of a u64map */
}

static reg_group_t *group_find(const registry_t *g, const char *name, size_t len)
{
    for (reg_group_t *x = u64map_get(&g->groups, group_hash(name, len)); x; x = x->twin)
        if (x->len == len && memcmp(x->name, name, len) == 0)
            return x;
    return NULL;
}

static reg_group_t *group_add(registry_t *g, const char *name, size_t len)
{
    reg_group_t *x = group_find(g, name, len);
    if (x)
        return x;
    uint64_t h = group_hash(name, len);
    if ((x = malloc(sizeof(*x) + len + 1)) == NULL)
        return NULL;
    x->twin = u64map_get(&g->groups, h);
    x->visible = 0;
    hset_init(&x->members);
    x->len = (uint8_t)len;
    memcpy(x->name, name, len);
    x->name[len] = '\0';
    if (u64map_put(&g->groups, h, x) != 0) {
        free(x);
        return NULL;
    }
    return x;
}

/* A group whose last member went. */
static void group_drop(registry_t *g, reg_group_t *x)
{
    uint64_t h = group_hash(x->name, x->len);
    reg_group_t *head = u64map_get(&g->groups, h);
    if (head == x) {
        if (x->twin)
            u64map_put(&g->groups, h, x->twin); /* replaces: cannot fail */
        else
            u64map_del(&g->groups, h);
    } else {
        reg_group_t *p = head;
        while (p && p->twin != x)
            p = p->twin;
        if (p)
            p->twin = x->twin;
    }
    hset_fini(&x->members);
    free(x);
}

/* Whether `key` is a membership of group x (its parts into *k). */
static int key_of_group(const char *key, size_t klen, const reg_group_t *x, member_key_t *k)
{
    return key_parse(key, klen, k) == 0 && k->glen == x->len &&
           memcmp(k->group, x->name, k->glen) == 0;
}

/* Whether a key under `hash` other than the one that just lost its last
 * entry is a member of x: the set keeps one slot for such twins. */
typedef struct twin_ctx {
    const reg_group_t *x;
    int found;
} twin_ctx_t;

static int twin_of(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    twin_ctx_t *c = data;
    member_key_t k;
    if (e && key_of_group(key, klen, c->x, &k))
        c->found = 1;
    return c->found;
}

/* The key's first entry: it is a membership now. */
static void index_add(registry_t *g, const char *key, size_t klen, uint64_t hash)
{
    member_key_t k;
    if (key_parse(key, klen, &k) != 0)
        return; /* no join writes it: no member (its entries go as any) */
    reg_group_t *x = group_add(g, k.group, k.glen);
    if (x == NULL || hset_add(&x->members, hash) != 0) {
        if (x && hset_count(&x->members) == 0)
            group_drop(g, x);
        reg_alloc_failed(g, "a group's member", REG_REDO_GROUPS);
        return;
    }
    if (!g->groups_dirty && !reg_hidden(g, k.pid))
        x->visible++;
}

void reg_group_added(registry_t *g, const char *key, size_t klen, uint64_t hash)
{
    g->group_entries++;
    const awmap_entry_t *now = awmap_get(g->map, key, klen);
    if (now == NULL || awmap_next(now) != NULL)
        return; /* another entry of a membership already there */
    g->group_keys++;
    index_add(g, key, klen, hash);
}

void reg_group_removed(registry_t *g, const char *key, size_t klen, uint64_t hash)
{
    g->group_entries--;
    if (awmap_get(g->map, key, klen) != NULL)
        return; /* the membership keeps an entry */
    g->group_keys--;
    member_key_t k;
    reg_group_t *x;
    if (key_parse(key, klen, &k) != 0 || (x = group_find(g, k.group, k.glen)) == NULL)
        return;
    if (!g->groups_dirty && !reg_hidden(g, k.pid) && x->visible)
        x->visible--;
    twin_ctx_t c = {x, 0};
    awmap_foreach_hash(g->map, hash, twin_of, &c);
    if (!c.found)
        hset_del(&x->members, hash);
    if (hset_count(&x->members) == 0)
        group_drop(g, x);
}

static void index_clear(registry_t *g)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->groups, &cursor)) != NULL;)
        for (reg_group_t *x = s->value, *next; x; x = next) {
            next = x->twin;
            hset_fini(&x->members);
            free(x);
        }
    u64map_fini(&g->groups);
    u64map_init(&g->groups);
}

static int rebuild_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    if (e && reg_is_group_key(key, klen))
        index_add(data, key, klen, awmap_key_hash(key, klen));
    return 0;
}

void reg_group_rebuild(registry_t *g)
{
    index_clear(g);
    g->groups_dirty = 1; /* index_add counts nothing: recounted when asked */
    awmap_foreach(g->map, rebuild_key, g);
}

void reg_group_free(registry_t *g)
{
    index_clear(g);
}

/* ---- visible counts ----------------------------------------------------------------- */

typedef struct count_ctx {
    const registry_t *g;
    const reg_group_t *x;
    uint64_t visible;
} count_ctx_t;

static int count_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    count_ctx_t *c = data;
    member_key_t k;
    if (e && key_of_group(key, klen, c->x, &k) && !reg_hidden(c->g, k.pid))
        c->visible++;
    return 0;
}

/* After the live set changed: every group's visible members counted again,
 * once (a pass over the memberships, not the map). */
static void recount(registry_t *g)
{
    if (!g->groups_dirty)
        return;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->groups, &cursor)) != NULL;)
        for (reg_group_t *x = s->value; x; x = x->twin) {
            count_ctx_t c = {g, x, 0};
            size_t at = 0;
            for (uint64_t h; hset_next(&x->members, &at, &h);)
                awmap_foreach_hash(g->map, h, count_key, &c);
            x->visible = c.visible;
        }
    g->groups_dirty = 0;
}

/* ---- visits ------------------------------------------------------------------------- */

/* Which memberships a visit takes, and the one a pass over a hash took. */
typedef struct visit {
    registry_t *g;
    /* filters */
    const char *group; /* this group's only (NULL: any) */
    size_t glen;
    int by_pid;        /* this pid's only */
    herd_pid_t pid;
    int local_only;    /* processes of this node only */
    int with_meta;     /* decode the metadata of what it takes */
    /* a pass: matching keys met, the one to take (twins: one a pass) */
    size_t met, skip;
    int took;
    member_key_t k;
    char group_buf[HERD_GROUP_MAX + 1];
    herd_meta_t meta;
} visit_t;

static int visit_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    visit_t *v = data;
    member_key_t k;
    if (e == NULL || key_parse(key, klen, &k) != 0 || reg_hidden(v->g, k.pid))
        return 0;
    if (v->group && (k.glen != v->glen || memcmp(k.group, v->group, k.glen) != 0))
        return 0;
    if ((v->by_pid && !herd_pid_equal(k.pid, v->pid)) ||
        (v->local_only && !reg_is_local(v->g, k.pid)))
        return 0;
    if (v->met++ != v->skip)
        return 0;
    v->took = 1;
    v->k = k;
    memcpy(v->group_buf, k.group, k.glen);
    v->group_buf[k.glen] = '\0';
    v->k.group = v->group_buf;
    if (v->with_meta) {
        reg_value_t best;
        reg_value_decode(v->g->map, member_entry(v->g, e, &best), &v->meta);
    }
    return 0; /* on: a twin met after it takes another pass */
}

/* Visit the memberships under each of hashes[0..n) that v takes: fn is
 * called outside the map's walk. Returns the number visited; *stopped when
 * fn returned nonzero. */
static int visit_hashes(visit_t *v, const uint64_t *hashes, size_t n, herd_group_member_fn fn,
                        void *data)
{
    int visited = 0;
    for (size_t i = 0; i < n; i++)
        for (v->skip = 0;; v->skip++) {
            v->met = 0;
            v->took = 0;
            awmap_foreach_hash(v->g->map, hashes[i], visit_key, v);
            if (!v->took)
                break;
            visited++;
            if (fn && fn(data, v->k.group, v->k.pid, v->with_meta ? &v->meta : NULL) != 0)
                return visited;
            if (v->met <= v->skip + 1)
                break;
        }
    return visited;
}

/* The registry, and the group's length: 0, HERD_ENOENT, HERD_EINVAL. */
static int group_enter(herd_node_t *n, const char *group, registry_t **g, size_t *glen)
{
    if ((*g = reg_of(n)) == NULL)
        return HERD_ENOENT;
    return group_check(group, glen);
}

static int members_of(herd_node_t *n, const char *group, int local_only,
                      herd_group_member_fn fn, void *data)
{
    registry_t *g;
    size_t glen;
    int rc = group_enter(n, group, &g, &glen);
    if (rc)
        return rc;
    reg_group_t *x = group_find(g, group, glen);
    if (x == NULL)
        return 0;
    uint64_t buf[VISIT_BUF], *hashes = buf;
    size_t count = hset_count(&x->members);
    if (count > VISIT_BUF && (hashes = malloc(count * sizeof(*hashes))) == NULL)
        return HERD_ENOMEM;
    hset_get(&x->members, hashes, count);
    visit_t v = {.g = g, .group = group, .glen = glen, .local_only = local_only,
                 .with_meta = fn != NULL};
    rc = visit_hashes(&v, hashes, count, fn, data);
    if (hashes != buf)
        free(hashes);
    return rc;
}

int herd_group_members(herd_node_t *n, const char *group, herd_group_member_fn fn, void *data)
{
    return members_of(n, group, 0, fn, data);
}

int herd_group_local_members(herd_node_t *n, const char *group, herd_group_member_fn fn,
                             void *data)
{
    return members_of(n, group, 1, fn, data);
}

int reg_group_key_split(const char *key, size_t klen, char *group, herd_pid_t *pid)
{
    member_key_t k;
    if (key_parse(key, klen, &k) != 0)
        return HERD_EINVAL;
    memcpy(group, k.group, k.glen);
    group[k.glen] = '\0';
    *pid = k.pid;
    return 0;
}

int herd_group_count(herd_node_t *n, const char *group)
{
    registry_t *g;
    size_t glen;
    int rc = group_enter(n, group, &g, &glen);
    if (rc)
        return rc;
    recount(g);
    reg_group_t *x = group_find(g, group, glen);
    return x ? (int)x->visible : 0;
}

static int hash_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The hashes of the keys of pid's memberships, for a pid of another node:
 * a lookup of its key in every group (a pass over the groups, not over the
 * map), sorted and without repeats (twins). */
static int remote_hashes(registry_t *g, herd_pid_t pid, reg_vec_t *out)
{
    size_t cursor = 0;
    char key[GROUP_KEY_MAX + 1];
    for (u64map_slot_t *s; (s = u64map_next(&g->groups, &cursor)) != NULL;)
        for (reg_group_t *x = s->value; x; x = x->twin) {
            size_t klen = reg_group_key(x->name, x->len, pid, key);
            uint64_t h = awmap_key_hash(key, klen);
            if (awmap_get_hashed(g->map, key, klen, h) && reg_vec_push(out, &h, sizeof(h)) != 0)
                return HERD_ENOMEM;
        }
    uint64_t *h = out->items;
    if (out->n > 1)
        qsort(h, out->n, sizeof(*h), hash_cmp);
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++)
        if (k == 0 || (h[i] ^ h[k - 1]) >> (64 - AWMAP_HASH_BITS))
            h[k++] = h[i];
    out->n = k;
    return 0;
}

int herd_group_which(herd_node_t *n, herd_pid_t pid, herd_group_member_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    if (herd_pid_is_none(pid))
        return HERD_EINVAL;
    if (reg_hidden(g, pid))
        return 0;
    uint64_t buf[VISIT_BUF];
    reg_vec_t hashes = REG_VEC_ON(buf);
    int rc = 0;
    if (reg_is_local(g, pid)) {
        /* the pid index: every key its entries are under (names too) */
        hashes.n = pidx_get(&g->by_pid, pid.serial, buf, VISIT_BUF);
        if (hashes.n > VISIT_BUF) {
            if ((hashes.items = malloc(hashes.n * sizeof(uint64_t))) == NULL)
                return HERD_ENOMEM;
            hashes.on_heap = 1;
            hashes.cap = hashes.n;
            pidx_get(&g->by_pid, pid.serial, hashes.items, hashes.n);
        }
    } else {
        rc = remote_hashes(g, pid, &hashes);
    }
    visit_t v = {.g = g, .by_pid = 1, .pid = pid, .with_meta = fn != NULL};
    if (rc == 0)
        rc = visit_hashes(&v, hashes.items, hashes.n, fn, data);
    reg_vec_free(&hashes);
    return rc;
}

int herd_group_list(herd_node_t *n, const char *prefix, herd_group_fn fn, void *data)
{
    registry_t *g = reg_of(n);
    if (g == NULL)
        return HERD_ENOENT;
    size_t plen = prefix ? strlen(prefix) : 0;
    recount(g);
    /* the names and counts first: fn may join and leave */
    typedef struct listed {
        size_t members;
        char name[HERD_GROUP_MAX + 1];
    } listed_t;
    reg_vec_t list = {0};
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&g->groups, &cursor)) != NULL;)
        for (reg_group_t *x = s->value; x; x = x->twin) {
            if (x->visible == 0 || x->len < plen || (plen && memcmp(x->name, prefix, plen) != 0))
                continue;
            listed_t l = {(size_t)x->visible, ""};
            memcpy(l.name, x->name, x->len + 1u);
            if (reg_vec_push(&list, &l, sizeof(l)) != 0) {
                reg_vec_free(&list);
                return HERD_ENOMEM;
            }
        }
    int visited = 0;
    for (size_t i = 0; i < list.n; i++) {
        listed_t *l = &REG_VEC_AT(&list, listed_t, i);
        visited++;
        if (fn && fn(data, l->name, l->members) != 0)
            break;
    }
    reg_vec_free(&list);
    return visited;
}

/* ---- changes ------------------------------------------------------------------------ */

/* The registry, the key of pid's membership of group: 0 or an error. */
static int member_enter(herd_node_t *n, const char *group, herd_pid_t pid, registry_t **g,
                        char *key, size_t *klen)
{
    size_t glen;
    int rc = group_enter(n, group, g, &glen);
    if (rc)
        return rc;
    if (herd_pid_is_none(pid))
        return HERD_EINVAL;
    *klen = reg_group_key(group, glen, pid, key);
    return 0;
}

int herd_group_join(herd_node_t *n, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    registry_t *g;
    char key[GROUP_KEY_MAX + 1];
    size_t klen;
    int rc = member_enter(n, group, pid, &g, key, &klen);
    if (rc)
        return rc;
    if (meta && meta->count > HERD_META_MAX)
        return HERD_EINVAL;
    if (pid.node == g->self_node && !herd_is_alive(n, pid))
        return HERD_ENOPROC;
    /* A join again is the same membership: its time first joined stays (a
     * leave elsewhere names it), its entries are superseded, and the new
     * one is stamped now, so that of two joins at once the later wins. */
    const awmap_entry_t *entries = awmap_get(g->map, key, klen);
    reg_value_t cur, v = {pid, herd_node_hlc_now(n), 0, 0};
    if (member_entry(g, entries, &cur)) {
        v.written = v.hlc;
        v.hlc = cur.hlc;
    }
    awmap_dot_t buf[8];
    reg_vec_t dots = REG_VEC_ON(buf);
    reg_match_t all = {pid, REG_MATCH_ANY, 0};
    uint8_t *value = NULL;
    size_t vlen;
    if (reg_dots(g, entries, &all, &dots) < 0 ||
        (value = reg_value_encode(g, &v, meta, &vlen)) == NULL)
        rc = HERD_ENOMEM;
    else
        rc = reg_local_change(g, key, value, vlen, dots.items, dots.n, 1);
    free(value);
    reg_vec_free(&dots);
    return rc;
}

/* Tell pid's node that the membership's entries (first joined at each time
 * they carry) went, as herd_unregister_pid does for a name, so it neither
 * puts them back as gone missing nor keeps one this node had not seen. */
static void tell_pid_node(registry_t *g, herd_pid_t pid, const char *key,
                          const awmap_entry_t *entries)
{
    uint64_t told[4];
    size_t ntold = 0;
    for (const awmap_entry_t *e = entries; e; e = awmap_next(e)) {
        uint64_t hlc = reg_value_decode(g->map, e, NULL).hlc;
        size_t i = 0;
        while (i < ntold && told[i] != hlc)
            i++;
        if (i < ntold)
            continue;
        if (ntold < sizeof(told) / sizeof(told[0]))
            told[ntold++] = hlc;
        reg_send_unregister(g, pid, key, hlc);
    }
}

int herd_group_leave(herd_node_t *n, const char *group, herd_pid_t pid)
{
    registry_t *g;
    char key[GROUP_KEY_MAX + 1];
    size_t klen;
    int rc = member_enter(n, group, pid, &g, key, &klen);
    if (rc)
        return rc;
    const awmap_entry_t *entries = awmap_get(g->map, key, klen);
    int visible = entries && !reg_hidden(g, pid);
    awmap_dot_t buf[8];
    reg_vec_t dots = REG_VEC_ON(buf);
    reg_match_t all = {pid, REG_MATCH_ANY, 0};
    if (visible && reg_dots(g, entries, &all, &dots) < 0) {
        reg_vec_free(&dots);
        return HERD_ENOMEM;
    }
    /* A local process lets go, even of a membership another node removed
     * that the next check would put back: after a leave it is no member. */
    if (reg_is_local(g, pid))
        reg_index_remove(g, pid, key);
    if (!visible)
        return HERD_ENOENT;
    /* the pid's node lets go first (the message travels ahead of the delta) */
    if (!reg_is_local(g, pid))
        tell_pid_node(g, pid, key, entries);
    rc = reg_local_change(g, key, NULL, 0, dots.items, dots.n, 0);
    reg_vec_free(&dots);
    return rc;
}

int herd_group_member(herd_node_t *n, const char *group, herd_pid_t pid, herd_meta_t *meta)
{
    registry_t *g;
    char key[GROUP_KEY_MAX + 1];
    size_t klen;
    int rc = member_enter(n, group, pid, &g, key, &klen);
    if (rc)
        return rc;
    const awmap_entry_t *e = awmap_get(g->map, key, klen);
    if (e == NULL || reg_hidden(g, pid))
        return 0;
    if (meta) {
        reg_value_t best;
        reg_value_decode(g->map, member_entry(g, e, &best), meta);
    }
    return 1;
}
