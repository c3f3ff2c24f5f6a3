/*
 * test_awmap_prop.c - laws of the add-wins map (registry/awmap.h), checked on
 * random operation histories.
 *
 * A history runs 2-5 replicas (one of them sometimes a restarted node: same
 * node, next incarnation) over 1-6 keys (sometimes the empty key, sometimes a
 * 255-byte key with NUL bytes in it). Each step is a local add, supersede or
 * remove on one replica, each producing a delta, or the delivery of an
 * earlier delta or of an interval (a contiguous run of deltas joined into one)
 * to a replica, in any order. Removes sometimes name a dot of the key that
 * the remover has not seen yet ("remove before add").
 *
 * Beside every replica run, step by step:
 *  - a model: live (key, replica, counter, value) entries and a seen-set per
 *    replica, joined by the paper's rule written out here (keep an entry both
 *    sides hold, or one side holds and the other has not seen; union the
 *    contexts). Every replica, delta and interval is compared with it.
 *  - a twin that receives the same deltas through awmap_join_full: awmap_join
 *    (which trusts the delta's key list) must give the same state.
 *  - a shadow replica doing the same operations with one accumulating delta
 *    map: the accumulation must equal the join of the single deltas.
 *  - mirrors fed only by the observers of the replica and of the twin: they
 *    must hold exactly the map's entries.
 * Then, on the histories: join laws on random states (join_full) and on
 * deltas and intervals (join), delivery in any permutation with duplicates,
 * intervals out of order, gossip until convergence, the wire codec (identity
 * on every map; mutated encodings never crash and either fail with
 * HERD_EBADFRAME or decode to a map that re-encodes), and a state shipped in
 * pieces (awmap_copy_key / copy_entry / note_removed / copy_context) doing
 * what the whole state does.
 *
 * About 5 s for the default seeds in a release build, 20 s under ASan+UBSan.
 *
 * Seeds come from a splitmix64 generator, so a run is the same everywhere; a
 * failure names the property and the seed. AWMAP_PROP_SEED=<seed> replays one
 * seed for every property, AWMAP_PROP_SEEDS=<n> changes the number of seeds,
 * AWMAP_PROP_VERBOSE=1 prints the failing history. Maps are registered as
 * they are made and freed after each seed (and by the teardown when a
 * property fails), so a failure does not turn into a leak report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "awmap.h"
#include "herd_error.h"
#include "splitmix.h"
#include "wire.h"

#define MAXR 5   /* replicas */
#define MAXK 6   /* keys */
#define MAXC 128 /* counters per replica */
#define MAXD 160 /* deltas per history */
#define MAXE 160 /* entries in a model */
#define VMAX 8   /* value bytes */
#define MAXSNAP 12

/* ---- seeded randomness ------------------------------------------------------- */

static uint32_t rng_range(rng_t *g, uint32_t lo, uint32_t hi)
{
    return lo + rng_below(g, hi - lo + 1);
}

static void shuffle(rng_t *g, size_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(g, (uint32_t)i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- seeds and failure messages ----------------------------------------------- */

static uint64_t g_seed;
static const char *g_prop;
static struct hist *g_hist; /* the history under test, for the verbose dump */

static unsigned env_unsigned(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    return v && *v ? (unsigned)strtoul(v, NULL, 0) : dflt;
}

static void dump_history(void);

#define PROPF(cond, fmt, ...)                                                                \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            dump_history();                                                                  \
            fail_msg("%s:%d: %s: `%s` is false (seed 0x%llx; replay with "                   \
                     "AWMAP_PROP_SEED=0x%llx AWMAP_PROP_VERBOSE=1): " fmt,                   \
                     __FILE__, __LINE__, g_prop, #cond, (unsigned long long)g_seed,          \
                     (unsigned long long)g_seed, __VA_ARGS__);                               \
        }                                                                                    \
    } while (0)
#define PROP(cond) PROPF(cond, "%s", "")

/* Seeds of a property: `dflt` of them from `base`, or the one given. */
typedef struct seeds {
    uint64_t first, step;
    unsigned n;
} seeds_t;

static seeds_t seeds_for(const char *prop, uint64_t base, unsigned dflt)
{
    g_prop = prop;
    if (getenv("AWMAP_PROP_SEED"))
        return (seeds_t){strtoull(getenv("AWMAP_PROP_SEED"), NULL, 0), 1, 1};
    return (seeds_t){base, 0x1000, env_unsigned("AWMAP_PROP_SEEDS", dflt)};
}

static rng_t seed_case(seeds_t s, unsigned i)
{
    g_seed = s.first + s.step * i;
    return (rng_t){g_seed};
}

/* ---- everything a seed allocates, freed together ------------------------------ */

static awmap_t **g_maps;
static size_t g_nmaps, g_capmaps;
static void **g_mem;
static size_t g_nmem, g_capmem;

static awmap_t *own(awmap_t *m)
{
    assert_non_null(m);
    if (g_nmaps == g_capmaps) {
        g_capmaps = g_capmaps ? g_capmaps * 2 : 256;
        g_maps = realloc(g_maps, g_capmaps * sizeof(*g_maps));
        assert_non_null(g_maps);
    }
    g_maps[g_nmaps++] = m;
    return m;
}

static void *own_mem(void *p)
{
    assert_non_null(p);
    if (g_nmem == g_capmem) {
        g_capmem = g_capmem ? g_capmem * 2 : 64;
        g_mem = realloc(g_mem, g_capmem * sizeof(*g_mem));
        assert_non_null(g_mem);
    }
    g_mem[g_nmem++] = p;
    return p;
}

static void release_all(void)
{
    for (size_t i = 0; i < g_nmaps; i++)
        awmap_free(g_maps[i]);
    for (size_t i = 0; i < g_nmem; i++)
        free(g_mem[i]);
    g_nmaps = g_nmem = 0;
    g_hist = NULL;
}

static int teardown(void **state)
{
    (void)state;
    release_all();
    free(g_maps);
    free(g_mem);
    g_maps = NULL;
    g_mem = NULL;
    g_capmaps = g_capmem = 0;
    return 0;
}

static awmap_t *new_state(void)
{
    return own(awmap_new());
}

static awmap_t *new_delta(void)
{
    return own(awmap_new_delta());
}

static awmap_t *clone_state(const awmap_t *m)
{
    awmap_t *c = new_state();
    assert_int_equal(awmap_join_full(c, m, NULL), 0);
    return c;
}

static awmap_t *clone_delta(const awmap_t *d)
{
    awmap_t *c = new_delta();
    assert_int_equal(awmap_join(c, d, NULL), 0);
    return c;
}

/* ---- the model ------------------------------------------------------------------ */

typedef struct ment {
    uint8_t key, rep, vlen;
    uint64_t counter;
    uint8_t val[VMAX];
} ment_t;

typedef struct model {
    size_t n;
    ment_t e[MAXE];
    uint8_t seen[MAXR][MAXC + 1];
} model_t;

static int same_dot(const ment_t *a, const ment_t *b)
{
    return a->rep == b->rep && a->counter == b->counter;
}

static const ment_t *model_find(const model_t *m, const ment_t *x)
{
    for (size_t i = 0; i < m->n; i++)
        if (same_dot(&m->e[i], x))
            return &m->e[i];
    return NULL;
}

static void model_push(model_t *m, const ment_t *x)
{
    assert_true(m->n < MAXE);
    m->e[m->n++] = *x;
}

/* The paper's join, written out: (s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c'. */
static void model_join(model_t *m, const model_t *d)
{
    static model_t out;
    out.n = 0;
    for (size_t i = 0; i < m->n; i++) {
        const ment_t *x = &m->e[i];
        if (model_find(d, x) || !d->seen[x->rep][x->counter])
            model_push(&out, x);
    }
    for (size_t i = 0; i < d->n; i++) {
        const ment_t *x = &d->e[i];
        if (!m->seen[x->rep][x->counter] && !model_find(&out, x))
            model_push(&out, x);
    }
    m->n = out.n;
    memcpy(m->e, out.e, out.n * sizeof(ment_t));
    for (int r = 0; r < MAXR; r++)
        for (int c = 0; c <= MAXC; c++)
            m->seen[r][c] |= d->seen[r][c];
}

/* ---- histories ------------------------------------------------------------------ */

typedef struct mirror {
    struct hist *h;
    const awmap_t *m;
    model_t set; /* entries only */
    char err[160];
} mirror_t;

typedef struct hist {
    unsigned R, K;
    awmap_replica_id_t ids[MAXR];
    char keys[MAXK][AWMAP_KEY_MAX + 1];
    size_t klen[MAXK];
    int checked; /* compare with the model, twin, shadow and mirrors every step */

    awmap_t *rep[MAXR];    /* the replicas: mutators and awmap_join */
    awmap_t *twin[MAXR];   /* the same deltas through awmap_join_full */
    awmap_t *shadow[MAXR]; /* the same operations, deltas accumulated in acc */
    awmap_t *acc[MAXR];
    size_t acc_list[MAXR][MAXD], acc_n[MAXR]; /* the deltas acc should equal */
    model_t mod[MAXR];
    mirror_t mir[MAXR], tmir[MAXR];

    size_t nd;
    awmap_t *delta[MAXD];
    model_t *mdelta[MAXD];
    uint8_t origin[MAXD];
    uint8_t known[MAXR][MAXD];
    int8_t dot_key[MAXR][MAXC + 1]; /* the key of each dot made so far */
    uint64_t next[MAXR];            /* each replica's next counter */

    awmap_t *snap[MAXSNAP]; /* states copied along the way */
    size_t nsnap;
    awmap_t *ival[MAXD]; /* intervals delivered along the way */
    size_t nival;

    char log[12000];
    size_t loglen;
    unsigned adds, removes, blind, deliveries;
} hist_t;

static void logf_(hist_t *h, const char *fmt, ...)
{
    if (h->loglen >= sizeof h->log - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(h->log + h->loglen, sizeof h->log - h->loglen, fmt, ap);
    va_end(ap);
    if (n > 0)
        h->loglen += (size_t)n;
    if (h->loglen > sizeof h->log - 1)
        h->loglen = sizeof h->log - 1;
}

static void dump_history(void)
{
    if (g_hist == NULL || getenv("AWMAP_PROP_VERBOSE") == NULL)
        return;
    print_message("history of seed 0x%llx (%u replicas, %u keys):\n%s",
                  (unsigned long long)g_seed, g_hist->R, g_hist->K, g_hist->log);
}

static int gid_of(const hist_t *h, awmap_replica_id_t id)
{
    for (unsigned i = 0; i < h->R; i++)
        if (h->ids[i].node == id.node && h->ids[i].incarnation == id.incarnation)
            return (int)i;
    return -1;
}

static int key_of(const hist_t *h, const char *key, size_t klen)
{
    for (unsigned i = 0; i < h->K; i++)
        if (h->klen[i] == klen && memcmp(h->keys[i], key, klen) == 0)
            return (int)i;
    return -1;
}

static const char *key_name(const hist_t *h, unsigned k)
{
    static char buf[MAXK][16];
    if (h->klen[k] == 0)
        return "\"\"";
    if (h->klen[k] > 8) {
        snprintf(buf[k], sizeof buf[k], "long%u", k);
        return buf[k];
    }
    return h->keys[k];
}

/* ---- a map read into the model's terms ------------------------------------------ */

typedef struct reader_ctx {
    const hist_t *h;
    const awmap_t *m;
    model_t *out;
    int is_state;
    uint32_t keymask;
    size_t keys;
    size_t multi; /* keys with two entries or more */
    char *why;
    size_t cap;
} reader_ctx_t;

static int read_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    reader_ctx_t *c = data;
    int k = key_of(c->h, key, klen);
    c->keys++;
    if (k < 0) {
        snprintf(c->why, c->cap, "a key of %zu bytes that no operation used", klen);
        return 1;
    }
    if (c->keymask & (1u << k)) {
        snprintf(c->why, c->cap, "key %s listed twice", key_name(c->h, (unsigned)k));
        return 1;
    }
    c->keymask |= 1u << k;
    if (e == NULL && c->is_state) {
        snprintf(c->why, c->cap, "state lists key %s with no entries", key_name(c->h, (unsigned)k));
        return 1;
    }
    c->multi += e && awmap_next(e);
    for (; e; e = awmap_next(e)) {
        awmap_replica_id_t id = awmap_replica_id(c->m, e->dot.replica);
        int r = gid_of(c->h, id);
        if (r < 0 || e->dot.counter == 0 || e->dot.counter > MAXC || e->len > VMAX) {
            snprintf(c->why, c->cap, "key %s: entry with a dot or value no operation made",
                     key_name(c->h, (unsigned)k));
            return 1;
        }
        if (!awmap_seen(c->m, id, e->dot.counter)) {
            snprintf(c->why, c->cap, "key %s: entry %u:%llu outside the map's own context",
                     key_name(c->h, (unsigned)k), r, (unsigned long long)e->dot.counter);
            return 1;
        }
        ment_t x = {.key = (uint8_t)k, .rep = (uint8_t)r, .vlen = (uint8_t)e->len,
                    .counter = e->dot.counter};
        memcpy(x.val, e->value, e->len);
        if (model_find(c->out, &x)) {
            snprintf(c->why, c->cap, "dot %u:%llu held twice", r,
                     (unsigned long long)e->dot.counter);
            return 1;
        }
        model_push(c->out, &x);
    }
    return 0;
}

/* Read `m` into `out`; 0 (with why) when the map is not well formed: unknown
 * keys or replicas with content, a context not folded, counts that disagree.
 * *keymask gets the listed keys. */
static int read_map(const hist_t *h, const awmap_t *m, int is_state, model_t *out,
                    uint32_t *keymask, char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    reader_ctx_t c = {h, m, out, is_state, 0, 0, 0, why, cap};
    if (awmap_foreach(m, read_key, &c) != 0)
        return 0;
    if (keymask)
        *keymask = c.keymask;
    if (c.keys != awmap_key_count(m) || out->n != awmap_entry_count(m)) {
        snprintf(why, cap, "counts: %zu keys, %zu entries visited; key_count %zu, entry_count %zu",
                 c.keys, out->n, awmap_key_count(m), awmap_entry_count(m));
        return 0;
    }
    if (c.multi != awmap_multi_key_count(m)) {
        snprintf(why, cap, "%zu keys with two entries or more, multi_key_count %zu", c.multi,
                 awmap_multi_key_count(m));
        return 0;
    }
    for (uint32_t i = 0; i < awmap_replica_count(m); i++) {
        awmap_replica_id_t id = awmap_replica_id(m, i);
        size_t cloud;
        uint64_t vv = awmap_vv(m, id, &cloud);
        if (gid_of(h, id) < 0 && (vv || cloud)) {
            snprintf(why, cap, "context of an unknown replica");
            return 0;
        }
    }
    for (unsigned r = 0; r < h->R; r++) {
        size_t cloud;
        uint64_t vv = awmap_vv(m, h->ids[r], &cloud);
        if (vv > MAXC) {
            snprintf(why, cap, "replica %u: vv %llu above every counter made", r,
                     (unsigned long long)vv);
            return 0;
        }
        size_t above = 0;
        for (uint64_t k = 1; k <= MAXC; k++) {
            out->seen[r][k] = (uint8_t)awmap_seen(m, h->ids[r], k);
            if (k <= vv && !out->seen[r][k]) {
                snprintf(why, cap, "replica %u: %llu not seen under vv %llu", r,
                         (unsigned long long)k, (unsigned long long)vv);
                return 0;
            }
            above += k > vv && out->seen[r][k];
        }
        if (vv < MAXC && out->seen[r][vv + 1]) {
            snprintf(why, cap, "replica %u: cloud not folded (vv %llu, %llu seen)", r,
                     (unsigned long long)vv, (unsigned long long)vv + 1);
            return 0;
        }
        if (above != cloud) {
            snprintf(why, cap, "replica %u: cloud of %zu, %zu counters seen above vv %llu", r,
                     cloud, above, (unsigned long long)vv);
            return 0;
        }
        if (awmap_seen(m, h->ids[r], MAXC + 1)) {
            snprintf(why, cap, "replica %u: a counter above every one made is seen", r);
            return 0;
        }
    }
    return 1;
}

static void fmt_entry(char *buf, size_t cap, const hist_t *h, const ment_t *x)
{
    snprintf(buf, cap, "%s=%u:%llu", key_name(h, x->key), x->rep,
             (unsigned long long)x->counter);
}

/* Whether two models hold the same entries (and, if ctx, contexts). */
static int model_eq(const hist_t *h, const model_t *a, const model_t *b, int ctx, char *why,
                    size_t cap)
{
    char e[64];
    for (int pass = 0; pass < 2; pass++) {
        const model_t *x = pass ? b : a, *y = pass ? a : b;
        for (size_t i = 0; i < x->n; i++) {
            const ment_t *f = model_find(y, &x->e[i]);
            if (f == NULL || f->key != x->e[i].key || f->vlen != x->e[i].vlen ||
                memcmp(f->val, x->e[i].val, f->vlen) != 0) {
                fmt_entry(e, sizeof e, h, &x->e[i]);
                snprintf(why, cap, "entry %s only in the %s%s", e, pass ? "model" : "map",
                         f ? " (or another key/value)" : "");
                return 0;
            }
        }
    }
    for (unsigned r = 0; ctx && r < h->R; r++)
        for (unsigned c = 1; c <= MAXC; c++)
            if (a->seen[r][c] != b->seen[r][c]) {
                snprintf(why, cap, "dot %u:%u seen by the %s only", r, c,
                         a->seen[r][c] ? "map" : "model");
                return 0;
            }
    return 1;
}

/* The map agrees with the model (entries and context). */
static void check_model(const hist_t *h, const awmap_t *m, int is_state, const model_t *want,
                        const char *what)
{
    static model_t got;
    char why[200];
    int ok = read_map(h, m, is_state, &got, NULL, why, sizeof why);
    PROPF(ok, "%s is not well formed: %s", what, why);
    ok = model_eq(h, &got, want, 1, why, sizeof why);
    PROPF(ok, "%s differs from the model: %s", what, why);
}

/* Every dot in a delta's context belongs to a key the delta lists (the
 * "keys in a delta" rule of awmap.h); every dot of a history has a key. */
static void check_delta_keys(const hist_t *h, const awmap_t *d, const char *what)
{
    static model_t got;
    char why[200];
    uint32_t mask = 0;
    int ok = read_map(h, d, 0, &got, &mask, why, sizeof why);
    PROPF(ok, "%s is not well formed: %s", what, why);
    for (unsigned r = 0; r < h->R; r++)
        for (unsigned c = 1; c <= MAXC; c++) {
            if (!got.seen[r][c])
                continue;
            int k = h->dot_key[r][c];
            PROPF(k >= 0, "%s: context holds %u:%u, a dot never made", what, r, c);
            PROPF(mask & (1u << k), "%s: context holds %u:%u of key %s, which it does not list",
                  what, r, c, key_name(h, (unsigned)k));
        }
}

static void check_equal(const awmap_t *a, const awmap_t *b, const char *what)
{
    PROPF(awmap_equal(a, b) && awmap_equal(b, a), "%s", what);
}

/* Same listed keys (awmap_equal ignores a delta's empty keys). */
static void check_same_keys(const hist_t *h, const awmap_t *a, const awmap_t *b, const char *what)
{
    static model_t ma, mb;
    char why[200];
    uint32_t ka = 0, kb = 0;
    PROPF(read_map(h, a, 0, &ma, &ka, why, sizeof why), "%s: %s", what, why);
    PROPF(read_map(h, b, 0, &mb, &kb, why, sizeof why), "%s: %s", what, why);
    PROPF(ka == kb, "%s: keys 0x%x vs 0x%x", what, ka, kb);
}

/* ---- observers -------------------------------------------------------------------- */

static int mirror_entry(mirror_t *mi, const char *key, size_t klen, const awmap_entry_t *e,
                        ment_t *x)
{
    int k = key_of(mi->h, key, klen);
    int r = gid_of(mi->h, awmap_replica_id(mi->m, e->dot.replica));
    if (k < 0 || r < 0 || e->len > VMAX) {
        snprintf(mi->err, sizeof mi->err, "observer told of an entry no operation made");
        return 0;
    }
    *x = (ment_t){.key = (uint8_t)k, .rep = (uint8_t)r, .vlen = (uint8_t)e->len,
                  .counter = e->dot.counter};
    memcpy(x->val, e->value, e->len);
    return 1;
}

static void mirror_added(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    mirror_t *mi = data;
    ment_t x;
    if (mi->err[0] || !mirror_entry(mi, key, klen, e, &x))
        return;
    if (model_find(&mi->set, &x)) {
        snprintf(mi->err, sizeof mi->err, "added %u:%llu twice", x.rep,
                 (unsigned long long)x.counter);
        return;
    }
    model_push(&mi->set, &x);
}

static void mirror_removed(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    mirror_t *mi = data;
    ment_t x;
    if (mi->err[0] || !mirror_entry(mi, key, klen, e, &x))
        return;
    const ment_t *f = model_find(&mi->set, &x);
    if (f == NULL || f->key != x.key) {
        snprintf(mi->err, sizeof mi->err, "removed %u:%llu, never added", x.rep,
                 (unsigned long long)x.counter);
        return;
    }
    size_t i = (size_t)(f - mi->set.e);
    mi->set.e[i] = mi->set.e[--mi->set.n];
}

static awmap_observer_t observer(mirror_t *mi)
{
    return (awmap_observer_t){mirror_added, mirror_removed, mi};
}

static void check_mirror(const hist_t *h, const mirror_t *mi, const char *what)
{
    static model_t got;
    char why[200];
    PROPF(mi->err[0] == 0, "%s: %s", what, mi->err);
    PROPF(read_map(h, mi->m, 1, &got, NULL, why, sizeof why), "%s: %s", what, why);
    PROPF(model_eq(h, &got, &mi->set, 0, why, sizeof why), "%s: mirror and map differ: %s", what,
          why);
}

/* ---- building a history ------------------------------------------------------------ */

static void gen_ids_and_keys(hist_t *h, rng_t *g)
{
    h->R = rng_range(g, 2, MAXR);
    for (unsigned r = 0; r < h->R; r++)
        h->ids[r] = (awmap_replica_id_t){rng_next(g), rng_range(g, 1, 3)};
    if (rng_chance(g, 3)) /* a restarted node: same node, next incarnation */
        h->ids[1] = (awmap_replica_id_t){h->ids[0].node, h->ids[0].incarnation + 1};
    h->K = rng_range(g, 1, MAXK);
    for (unsigned k = 0; k < h->K; k++) {
        h->klen[k] = (size_t)snprintf(h->keys[k], sizeof h->keys[k], "k%u", k);
    }
    if (h->K > 1 && rng_chance(g, 4))
        h->klen[0] = 0, h->keys[0][0] = '\0';
    if (h->K > 1 && rng_chance(g, 4)) {
        unsigned k = h->K - 1;
        h->klen[k] = AWMAP_KEY_MAX;
        for (size_t i = 0; i < AWMAP_KEY_MAX; i++)
            h->keys[k][i] = (char)rng_below(g, 4); /* NUL bytes inside */
        h->keys[k][0] = 'L';
    }
}

static hist_t *hist_new(rng_t *g, int checked)
{
    hist_t *h = own_mem(calloc(1, sizeof(hist_t)));
    g_hist = h;
    h->checked = checked;
    gen_ids_and_keys(h, g);
    memset(h->dot_key, -1, sizeof h->dot_key);
    for (unsigned r = 0; r < h->R; r++) {
        uint32_t idx;
        h->rep[r] = new_state();
        h->twin[r] = new_state();
        h->shadow[r] = new_state();
        h->acc[r] = new_delta();
        assert_int_equal(awmap_replica(h->rep[r], h->ids[r], &idx), 0);
        assert_int_equal(idx, 0);
        assert_int_equal(awmap_replica(h->shadow[r], h->ids[r], &idx), 0);
        h->mir[r] = (mirror_t){.h = h, .m = h->rep[r]};
        h->tmir[r] = (mirror_t){.h = h, .m = h->twin[r]};
        h->next[r] = 1;
    }
    logf_(h, "replicas:");
    for (unsigned r = 0; r < h->R; r++)
        logf_(h, " %u=(%llx,%llu)", r, (unsigned long long)h->ids[r].node,
              (unsigned long long)h->ids[r].incarnation);
    logf_(h, "\n");
    return h;
}

/* The dot of `m` (index there) as (replica number, counter). */
static ment_t dot_in(const hist_t *h, const awmap_t *m, awmap_dot_t d)
{
    int r = gid_of(h, awmap_replica_id(m, d.replica));
    assert_true(r >= 0);
    return (ment_t){.rep = (uint8_t)r, .counter = d.counter};
}

/* A dot of replica r's map for (replica number, counter), interning it. */
static awmap_dot_t dot_for(const hist_t *h, awmap_t *m, unsigned rep, uint64_t counter)
{
    uint32_t idx;
    assert_int_equal(awmap_replica(m, h->ids[rep], &idx), 0);
    return (awmap_dot_t){idx, counter};
}

/* Checks of replica r after a step. */
static void check_replica(hist_t *h, unsigned r)
{
    char what[64];
    snprintf(what, sizeof what, "replica %u", r);
    check_model(h, h->rep[r], 1, &h->mod[r], what);
    snprintf(what, sizeof what, "replica %u: join vs join_full twin", r);
    check_equal(h->rep[r], h->twin[r], what);
    snprintf(what, sizeof what, "replica %u: shadow", r);
    check_equal(h->rep[r], h->shadow[r], what);
    snprintf(what, sizeof what, "replica %u: observers", r);
    check_mirror(h, &h->mir[r], what);
    snprintf(what, sizeof what, "replica %u twin: observers", r);
    check_mirror(h, &h->tmir[r], what);
}

/* Record the delta made by replica r's last operation. */
static void record_delta(hist_t *h, unsigned r, awmap_t *d, model_t *md)
{
    assert_true(h->nd < MAXD);
    size_t j = h->nd++;
    h->delta[j] = d;
    h->mdelta[j] = md;
    h->origin[j] = (uint8_t)r;
    h->known[r][j] = 1;
    h->acc_list[r][h->acc_n[r]++] = j;
    model_join(&h->mod[r], md);
    awmap_observer_t to = observer(&h->tmir[r]);
    assert_int_equal(awmap_join_full(h->twin[r], d, &to), 0);
    if (h->checked) {
        char what[64];
        snprintf(what, sizeof what, "delta %zu (replica %u)", j, r);
        check_model(h, d, 0, md, what);
        check_delta_keys(h, d, what);
        check_replica(h, r);
    }
}

static void random_value(rng_t *g, uint8_t *v, size_t *len)
{
    *len = rng_below(g, VMAX + 1);
    for (size_t i = 0; i < *len; i++)
        v[i] = (uint8_t)rng_next(g);
}

/* add (mode 0), supersede all of the key's entries (1) or some (2) */
static void op_add(hist_t *h, rng_t *g, unsigned r, int mode)
{
    unsigned k = rng_below(g, h->K);
    awmap_dot_t sup[MAXE], sup2[MAXE];
    size_t n = 0;
    for (const awmap_entry_t *e = awmap_get(h->rep[r], h->keys[k], h->klen[k]); e; e = awmap_next(e))
        if (mode == 1 || (mode == 2 && rng_chance(g, 2)))
            sup[n++] = e->dot;
    uint8_t v[VMAX];
    size_t vlen;
    random_value(g, v, &vlen);

    awmap_t *d = new_delta();
    model_t *md = own_mem(calloc(1, sizeof(model_t)));
    logf_(h, "%zu: r%u %s %s", h->nd, r, mode ? "supersede" : "add", key_name(h, k));
    for (size_t i = 0; i < n; i++) {
        ment_t x = dot_in(h, h->rep[r], sup[i]);
        md->seen[x.rep][x.counter] = 1;
        sup2[i] = dot_for(h, h->shadow[r], x.rep, x.counter);
        logf_(h, " -%u:%llu", x.rep, (unsigned long long)x.counter);
    }
    awmap_observer_t obs = observer(&h->mir[r]);
    awmap_dot_t dot = {0, 0}, dot2 = {0, 0};
    int rc = awmap_add(h->rep[r], 0, h->keys[k], h->klen[k], v, vlen, sup, n, d, &obs, &dot);
    PROPF(rc == 0, "awmap_add: %d", rc);
    rc = awmap_add(h->shadow[r], 0, h->keys[k], h->klen[k], v, vlen, sup2, n, h->acc[r], NULL,
                   &dot2);
    PROPF(rc == 0, "awmap_add (shadow): %d", rc);
    PROPF(dot.replica == 0 && dot.counter == h->next[r] && dot2.counter == dot.counter,
          "new dot %u:%llu (shadow %llu), want 0:%llu", dot.replica,
          (unsigned long long)dot.counter, (unsigned long long)dot2.counter,
          (unsigned long long)h->next[r]);
    logf_(h, " => %u:%llu\n", r, (unsigned long long)dot.counter);
    h->next[r]++;
    h->dot_key[r][dot.counter] = (int8_t)k;
    ment_t x = {.key = (uint8_t)k, .rep = (uint8_t)r, .vlen = (uint8_t)vlen, .counter = dot.counter};
    memcpy(x.val, v, vlen);
    model_push(md, &x);
    md->seen[r][dot.counter] = 1;
    h->adds++;
    record_delta(h, r, d, md);
}

/* Remove some entries of a key; or, sometimes, dots of the key made
 * elsewhere that r may not have seen. 0 if there was nothing to remove. */
static int op_remove(hist_t *h, rng_t *g, unsigned r)
{
    unsigned k = rng_below(g, h->K);
    ment_t dots[MAXE];
    size_t n = 0;
    int blind = rng_chance(g, 5);
    if (!blind)
        for (const awmap_entry_t *e = awmap_get(h->rep[r], h->keys[k], h->klen[k]); e;
             e = awmap_next(e))
            if (rng_chance(g, 2) || awmap_next(e) == NULL)
                dots[n++] = dot_in(h, h->rep[r], e->dot);
    if (n == 0) { /* dots of the key anybody made */
        blind = 1;
        for (unsigned q = 0; q < h->R; q++)
            for (unsigned c = 1; c <= MAXC; c++)
                if (h->dot_key[q][c] == (int8_t)k && rng_chance(g, 3))
                    dots[n++] = (ment_t){.rep = (uint8_t)q, .counter = c};
    }
    if (n == 0)
        return 0;
    awmap_dot_t d1[MAXE], d2[MAXE];
    awmap_t *d = new_delta();
    model_t *md = own_mem(calloc(1, sizeof(model_t)));
    logf_(h, "%zu: r%u remove%s %s", h->nd, r, blind ? " (blind)" : "", key_name(h, k));
    for (size_t i = 0; i < n; i++) {
        d1[i] = dot_for(h, h->rep[r], dots[i].rep, dots[i].counter);
        d2[i] = dot_for(h, h->shadow[r], dots[i].rep, dots[i].counter);
        md->seen[dots[i].rep][dots[i].counter] = 1;
        logf_(h, " -%u:%llu", dots[i].rep, (unsigned long long)dots[i].counter);
    }
    logf_(h, "\n");
    awmap_observer_t obs = observer(&h->mir[r]);
    int rc = awmap_remove(h->rep[r], h->keys[k], h->klen[k], d1, n, d, &obs);
    PROPF(rc == 0, "awmap_remove: %d", rc);
    rc = awmap_remove(h->shadow[r], h->keys[k], h->klen[k], d2, n, h->acc[r], NULL);
    PROPF(rc == 0, "awmap_remove (shadow): %d", rc);
    h->removes++;
    h->blind += (unsigned)blind;
    record_delta(h, r, d, md);
    return 1;
}

/* An interval: deltas [a, b) joined into one delta map, with its model. */
static awmap_t *make_interval(hist_t *h, size_t a, size_t b, model_t *md)
{
    awmap_t *iv = new_delta();
    memset(md, 0, sizeof(*md));
    for (size_t j = a; j < b; j++) {
        assert_int_equal(awmap_join(iv, h->delta[j], NULL), 0);
        model_join(md, h->mdelta[j]);
    }
    return iv;
}

/* Deliver a delta (or interval) with its model to replica r. */
static void deliver(hist_t *h, unsigned r, const awmap_t *d, const model_t *md)
{
    awmap_observer_t obs = observer(&h->mir[r]), to = observer(&h->tmir[r]);
    int rc = awmap_join(h->rep[r], d, &obs);
    PROPF(rc == 0, "awmap_join: %d", rc);
    assert_int_equal(awmap_join_full(h->twin[r], d, &to), 0);
    assert_int_equal(awmap_join(h->shadow[r], d, NULL), 0);
    model_join(&h->mod[r], md);
    h->deliveries++;
    if (h->checked)
        check_replica(h, r);
}

static void step_deliver(hist_t *h, rng_t *g, unsigned r)
{
    if (h->nd == 0)
        return;
    if (rng_chance(g, 4)) {
        size_t a = rng_below(g, (uint32_t)h->nd);
        size_t b = a + rng_range(g, 1, 6);
        if (b > h->nd)
            b = h->nd;
        static model_t md;
        awmap_t *iv = make_interval(h, a, b, &md);
        logf_(h, "   r%u <- interval [%zu, %zu)\n", r, a, b);
        if (h->checked) {
            check_model(h, iv, 0, &md, "interval");
            check_delta_keys(h, iv, "interval");
        }
        if (h->nival < MAXD)
            h->ival[h->nival++] = iv;
        for (size_t j = a; j < b; j++)
            h->known[r][j] = 1;
        deliver(h, r, iv, &md);
        return;
    }
    /* mostly something r has not got yet */
    size_t j = rng_below(g, (uint32_t)h->nd);
    for (size_t t = 0; t < h->nd && h->known[r][j] && !rng_chance(g, 5); t++)
        j = (j + 1) % h->nd;
    logf_(h, "   r%u <- %zu\n", r, j);
    h->known[r][j] = 1;
    deliver(h, r, h->delta[j], h->mdelta[j]);
}

/* The shadow's accumulated delta equals the join of r's own deltas since the
 * last check; then start a new accumulation. */
static void check_acc(hist_t *h, unsigned r)
{
    static model_t md;
    memset(&md, 0, sizeof md);
    awmap_t *j = new_delta();
    for (size_t i = 0; i < h->acc_n[r]; i++) {
        assert_int_equal(awmap_join(j, h->delta[h->acc_list[r][i]], NULL), 0);
        model_join(&md, h->mdelta[h->acc_list[r][i]]);
    }
    char what[80];
    snprintf(what, sizeof what, "replica %u: accumulated delta of %zu ops", r, h->acc_n[r]);
    check_equal(h->acc[r], j, what);
    check_same_keys(h, h->acc[r], j, what);
    check_model(h, h->acc[r], 0, &md, what);
    check_delta_keys(h, h->acc[r], what);
    if (h->nival < MAXD)
        h->ival[h->nival++] = h->acc[r];
    h->acc[r] = new_delta();
    h->acc_n[r] = 0;
}

static hist_t *gen_history(rng_t *g, int checked)
{
    hist_t *h = hist_new(g, checked);
    unsigned steps = rng_range(g, 10, rng_chance(g, 8) ? 150 : 60); /* some long ones */
    for (unsigned s = 0; s < steps; s++) {
        unsigned r = rng_below(g, h->R);
        uint32_t p = rng_below(g, 100);
        int done = 0;
        if (p < 22)
            op_add(h, g, r, 0), done = 1;
        else if (p < 34)
            op_add(h, g, r, rng_chance(g, 2) ? 1 : 2), done = 1;
        else if (p < 50)
            done = op_remove(h, g, r);
        if (!done)
            step_deliver(h, g, r);
        if (checked && rng_chance(g, 8))
            check_acc(h, r);
        if (h->nsnap < MAXSNAP && rng_chance(g, 6))
            h->snap[h->nsnap++] = clone_state(h->rep[rng_below(g, h->R)]);
    }
    if (checked)
        for (unsigned r = 0; r < h->R; r++)
            check_acc(h, r);
    return h;
}

/* Every delta joined into a fresh state in order, and the model of that. */
static awmap_t *all_in_order(hist_t *h, model_t *md)
{
    awmap_t *s = new_state();
    memset(md, 0, sizeof(*md));
    for (size_t j = 0; j < h->nd; j++) {
        assert_int_equal(awmap_join(s, h->delta[j], NULL), 0);
        model_join(md, h->mdelta[j]);
    }
    return s;
}

/* The origin replicas merged: join_full of every replica's final state. */
static awmap_t *merged(hist_t *h)
{
    awmap_t *s = new_state();
    for (unsigned r = 0; r < h->R; r++)
        assert_int_equal(awmap_join_full(s, h->rep[r], NULL), 0);
    return s;
}

/* ---- properties --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const char *prop, unsigned seeds, double t0, unsigned long ops)
{
    print_message("  %s: %u seeds, %lu operations, %.2f s\n", prop, seeds, ops, now_s() - t0);
}

/* Model, twin (join_full), shadow (accumulated deltas) and observers agree
 * with every replica after every step. */
static void test_prop_history_matches_model(void **state)
{
    (void)state;
    seeds_t s = seeds_for("history matches model", 0xa11ce, 3000);
    double t0 = now_s();
    unsigned long ops = 0, blind = 0, ivs = 0;
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 1);
        ops += h->adds + h->removes + h->deliveries;
        blind += h->blind;
        ivs += h->nival;
        release_all();
    }
    report(g_prop, s.n, t0, ops);
    print_message("    (%lu blind removes, %lu intervals)\n", blind, ivs);
}

/* join_full is commutative, associative and idempotent on states; join is on
 * deltas and intervals; join of a delta into any state is join_full's. */
static void test_prop_join_laws(void **state)
{
    (void)state;
    seeds_t s = seeds_for("join laws", 0x1a55, 1500);
    double t0 = now_s();
    unsigned long ops = 0;
    char what[96];
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        const awmap_t *st[MAXR + MAXSNAP + 2];
        size_t ns = 0;
        for (unsigned r = 0; r < h->R; r++)
            st[ns++] = h->rep[r];
        for (size_t k = 0; k < h->nsnap; k++)
            st[ns++] = h->snap[k];
        st[ns++] = new_state(); /* bottom */
        st[ns++] = merged(h);
        const awmap_t *dl[2 * MAXD + 1];
        size_t ndl = 0;
        for (size_t j = 0; j < h->nd; j++)
            dl[ndl++] = h->delta[j];
        for (size_t j = 0; j < h->nival; j++)
            dl[ndl++] = h->ival[j];
        dl[ndl++] = new_delta();

        for (int t = 0; t < 12; t++) {
            const awmap_t *a = st[rng_below(&g, (uint32_t)ns)], *b = st[rng_below(&g, (uint32_t)ns)],
                          *c = st[rng_below(&g, (uint32_t)ns)];
            awmap_t *ab = clone_state(a), *ba = clone_state(b), *aa = clone_state(a);
            assert_int_equal(awmap_join_full(ab, b, NULL), 0);
            assert_int_equal(awmap_join_full(ba, a, NULL), 0);
            assert_int_equal(awmap_join_full(aa, a, NULL), 0);
            check_equal(ab, ba, "states: a ⊔ b == b ⊔ a");
            check_equal(aa, a, "states: a ⊔ a == a");
            awmap_t *ab_c = clone_state(ab), *bc = clone_state(b), *a_bc = clone_state(a);
            assert_int_equal(awmap_join_full(ab_c, c, NULL), 0);
            assert_int_equal(awmap_join_full(bc, c, NULL), 0);
            assert_int_equal(awmap_join_full(a_bc, bc, NULL), 0);
            check_equal(ab_c, a_bc, "states: (a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)");
            /* the model's join of the two states read as models */
            static model_t ma, mb, mab;
            char why[200];
            PROPF(read_map(h, a, 1, &ma, NULL, why, sizeof why), "%s", why);
            PROPF(read_map(h, b, 1, &mb, NULL, why, sizeof why), "%s", why);
            model_join(&ma, &mb);
            PROPF(read_map(h, ab, 1, &mab, NULL, why, sizeof why), "%s", why);
            PROPF(model_eq(h, &mab, &ma, 1, why, sizeof why), "states: a ⊔ b vs model: %s", why);

            /* deltas and intervals under join */
            const awmap_t *x = dl[rng_below(&g, (uint32_t)ndl)], *y = dl[rng_below(&g, (uint32_t)ndl)],
                          *z = dl[rng_below(&g, (uint32_t)ndl)];
            awmap_t *xy = clone_delta(x), *yx = clone_delta(y), *xx = clone_delta(x);
            assert_int_equal(awmap_join(xy, y, NULL), 0);
            assert_int_equal(awmap_join(yx, x, NULL), 0);
            assert_int_equal(awmap_join(xx, x, NULL), 0);
            check_equal(xy, yx, "deltas: x ⊔ y == y ⊔ x");
            check_same_keys(h, xy, yx, "deltas: keys of x ⊔ y, y ⊔ x");
            check_equal(xx, x, "deltas: x ⊔ x == x");
            check_same_keys(h, xx, x, "deltas: keys of x ⊔ x");
            awmap_t *xy_z = clone_delta(xy), *yz = clone_delta(y), *x_yz = clone_delta(x);
            assert_int_equal(awmap_join(xy_z, z, NULL), 0);
            assert_int_equal(awmap_join(yz, z, NULL), 0);
            assert_int_equal(awmap_join(x_yz, yz, NULL), 0);
            check_equal(xy_z, x_yz, "deltas: (x ⊔ y) ⊔ z == x ⊔ (y ⊔ z)");
            check_same_keys(h, xy_z, x_yz, "deltas: keys of the two groupings");
            check_delta_keys(h, xy_z, "deltas: (x ⊔ y) ⊔ z");

            /* a delta into any state: join (by its keys) == join_full */
            awmap_t *hinted = clone_state(a), *full = clone_state(a);
            assert_int_equal(awmap_join(hinted, x, NULL), 0);
            assert_int_equal(awmap_join_full(full, x, NULL), 0);
            snprintf(what, sizeof what, "state ⊔ delta: join vs join_full (trial %d)", t);
            check_equal(hinted, full, what);
        }
        release_all();
    }
    report(g_prop, s.n, t0, ops);
}

/* All deltas, delivered to a fresh replica in any order and with duplicates,
 * give the in-order state, the origin replicas' merged state and the model's. */
static void test_prop_any_permutation(void **state)
{
    (void)state;
    seeds_t s = seeds_for("any permutation", 0x9e57, 2000);
    double t0 = now_s();
    unsigned long ops = 0;
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        static model_t md;
        awmap_t *ordered = all_in_order(h, &md);
        check_model(h, ordered, 1, &md, "all deltas in order");
        check_equal(ordered, merged(h), "in order vs the replicas merged");
        for (int t = 0; t < 4; t++) {
            size_t order[3 * MAXD], n = 0;
            for (size_t j = 0; j < h->nd; j++) {
                order[n++] = j;
                while (rng_chance(&g, 4) && n < 3 * MAXD)
                    order[n++] = j;
            }
            shuffle(&g, order, n);
            awmap_t *p = new_state(), *pf = new_state();
            mirror_t mi = {.h = h, .m = p};
            awmap_observer_t obs = observer(&mi);
            for (size_t k = 0; k < n; k++) {
                assert_int_equal(awmap_join(p, h->delta[order[k]], &obs), 0);
                assert_int_equal(awmap_join_full(pf, h->delta[order[k]], NULL), 0);
            }
            check_equal(p, ordered, "a permutation with duplicates vs in order");
            check_equal(pf, ordered, "a permutation through join_full vs in order");
            check_mirror(h, &mi, "a permutation's observers");
        }
        release_all();
    }
    report(g_prop, s.n, t0, ops);
}

/* Contiguous runs of deltas joined into intervals: each interval does what
 * its run does, and intervals delivered out of order and duplicated converge
 * to the in-order state. */
static void test_prop_intervals(void **state)
{
    (void)state;
    seeds_t s = seeds_for("intervals", 0x1e7a, 2000);
    double t0 = now_s();
    unsigned long ops = 0;
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        static model_t md, mrun;
        awmap_t *ordered = all_in_order(h, &md);
        for (int t = 0; t < 3; t++) {
            /* cut [0, nd) into runs, plus some overlapping extra runs */
            awmap_t *iv[2 * MAXD];
            size_t n = 0, a = 0;
            while (a < h->nd) {
                size_t b = a + rng_range(&g, 1, 8);
                if (b > h->nd)
                    b = h->nd;
                iv[n] = make_interval(h, a, b, &mrun);
                check_model(h, iv[n], 0, &mrun, "an interval");
                check_delta_keys(h, iv[n], "an interval");
                /* the interval does what its run does, on a fresh state and on
                 * a replica that already has some of it */
                awmap_t *one = new_state(), *each = new_state();
                assert_int_equal(awmap_join(one, iv[n], NULL), 0);
                for (size_t j = a; j < b; j++)
                    assert_int_equal(awmap_join(each, h->delta[j], NULL), 0);
                check_equal(one, each, "an interval vs its run one by one");
                unsigned r = rng_below(&g, h->R);
                awmap_t *on_r = clone_state(h->rep[r]), *on_r2 = clone_state(h->rep[r]);
                assert_int_equal(awmap_join(on_r, iv[n], NULL), 0);
                for (size_t j = a; j < b; j++)
                    assert_int_equal(awmap_join(on_r2, h->delta[j], NULL), 0);
                check_equal(on_r, on_r2, "an interval vs its run, on a replica");
                n++;
                a = b;
            }
            size_t cover = n;
            for (int extra = rng_below(&g, 4); extra > 0 && h->nd; extra--) {
                size_t x = rng_below(&g, (uint32_t)h->nd);
                size_t y = x + rng_range(&g, 1, (uint32_t)(h->nd - x));
                iv[n++] = make_interval(h, x, y, &mrun);
            }
            size_t order[4 * MAXD], no = 0;
            for (size_t k = 0; k < n; k++) {
                order[no++] = k;
                if (rng_chance(&g, 3))
                    order[no++] = k;
            }
            shuffle(&g, order, no);
            awmap_t *p = new_state();
            for (size_t k = 0; k < no; k++)
                assert_int_equal(awmap_join(p, iv[order[k]], NULL), 0);
            check_equal(p, ordered, "intervals out of order vs all deltas in order");
            /* the intervals of the cover, joined into one, are the whole */
            awmap_t *whole = new_delta(), *all = make_interval(h, 0, h->nd, &mrun);
            size_t perm[2 * MAXD];
            for (size_t k = 0; k < cover; k++)
                perm[k] = k;
            shuffle(&g, perm, cover);
            for (size_t k = 0; k < cover; k++)
                assert_int_equal(awmap_join(whole, iv[perm[k]], NULL), 0);
            check_equal(whole, all, "joined intervals vs one interval of everything");
            check_same_keys(h, whole, all, "joined intervals vs one interval: keys");
        }
        release_all();
    }
    report(g_prop, s.n, t0, ops);
}

/* Replicas exchange random subsets of what they know, in random order, one
 * by one or as one joined delta, until every replica has every delta: then
 * they are identical, and each matches the model. */
static void test_prop_convergence(void **state)
{
    (void)state;
    seeds_t s = seeds_for("convergence", 0xc0de, 2000);
    double t0 = now_s();
    unsigned long ops = 0, rounds = 0;
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        for (unsigned round = 0;; round++) {
            int all = 1;
            for (unsigned r = 0; r < h->R && all; r++)
                for (size_t j = 0; j < h->nd && all; j++)
                    all = h->known[r][j];
            if (all)
                break;
            PROPF(round < 10000, "%s", "gossip does not end");
            rounds++;
            unsigned from = rng_below(&g, h->R), to = rng_below(&g, h->R - 1);
            to += to >= from;
            int everything = round > 8 * h->R; /* then make progress surely */
            size_t pick[MAXD], n = 0;
            for (size_t j = 0; j < h->nd; j++)
                if (h->known[from][j] && (everything || rng_chance(&g, 2)))
                    pick[n++] = j;
            shuffle(&g, pick, n);
            if (n > 1 && rng_chance(&g, 2)) { /* as one delta */
                awmap_t *iv = new_delta();
                static model_t md;
                memset(&md, 0, sizeof md);
                for (size_t k = 0; k < n; k++) {
                    assert_int_equal(awmap_join(iv, h->delta[pick[k]], NULL), 0);
                    model_join(&md, h->mdelta[pick[k]]);
                    h->known[to][pick[k]] = 1;
                }
                deliver(h, to, iv, &md);
            } else {
                for (size_t k = 0; k < n; k++) {
                    h->known[to][pick[k]] = 1;
                    deliver(h, to, h->delta[pick[k]], h->mdelta[pick[k]]);
                }
            }
        }
        static model_t md;
        awmap_t *ordered = all_in_order(h, &md);
        char what[64];
        for (unsigned r = 0; r < h->R; r++) {
            snprintf(what, sizeof what, "replica %u after gossip", r);
            check_equal(h->rep[r], h->rep[0], what);
            check_equal(h->rep[r], ordered, what);
            check_model(h, h->rep[r], 1, &md, what);
            check_model(h, h->rep[r], 1, &h->mod[r], what);
            check_mirror(h, &h->mir[r], what);
            check_equal(h->rep[r], h->twin[r], what);
        }
        release_all();
    }
    report(g_prop, s.n, t0, ops);
    print_message("    (%lu gossip rounds)\n", rounds);
}

/* ---- wire ------------------------------------------------------------------------------ */

static uint8_t *encode_exact(const awmap_t *m, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    awmap_encode(m, &w);
    assert_int_equal(w.err, 0);
    uint8_t *buf = wire_writer_take(&w, len);
    assert_non_null(buf);
    return own_mem(buf);
}

/* Decode exactly `len` bytes from their own heap copy. */
static int decode_exact(const uint8_t *data, size_t len, awmap_t **out, size_t *used)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    wire_reader_t r;
    wire_reader_init(&r, copy, len);
    *out = NULL;
    int rc = awmap_decode(&r, out);
    if (used)
        *used = r.off;
    free(copy);
    if (rc == 0)
        own(*out);
    return rc;
}

static void describe_cc(const hist_t *h, const awmap_t *m, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (unsigned r = 0; r < h->R; r++) {
        size_t cloud, at = strlen(buf);
        uint64_t vv = awmap_vv(m, h->ids[r], &cloud);
        snprintf(buf + at, cap - at, "r%u: vv %llu cloud {", r, (unsigned long long)vv);
        for (uint64_t c = vv + 2; c <= MAXC; c++)
            if (awmap_seen(m, h->ids[r], c)) {
                at = strlen(buf);
                snprintf(buf + at, cap - at, " %llu", (unsigned long long)c);
            }
        at = strlen(buf);
        snprintf(buf + at, cap - at, " }; ");
    }
}

static void round_trip(const hist_t *h, const awmap_t *m, const char *what)
{
    size_t len, used;
    uint8_t *buf = encode_exact(m, &len);
    awmap_t *c;
    int rc = decode_exact(buf, len, &c, &used);
    if (rc != 0) {
        char cc[600];
        describe_cc(h, m, cc, sizeof cc);
        PROPF(rc == 0, "%s: decode of its encoding gave %d; context %s", what, rc, cc);
    }
    PROPF(used == len, "%s: decode read %zu of %zu bytes", what, used, len);
    check_equal(c, m, what);
    check_same_keys(h, c, m, what);
    size_t len2;
    uint8_t *buf2 = encode_exact(c, &len2);
    PROPF(len2 == len && buf2[0] == buf[0], "%s: re-encoding %zu bytes (kind %u), first %zu (%u)",
          what, len2, buf2[0], len, buf[0]);
}

/* Encoding then decoding any state, delta or interval gives it back. */
static void test_prop_encode_decode_identity(void **state)
{
    (void)state;
    seeds_t s = seeds_for("encode/decode identity", 0xc0dec, 2000);
    double t0 = now_s();
    unsigned long ops = 0, maps = 0;
    char what[64];
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        for (unsigned r = 0; r < h->R; r++) {
            snprintf(what, sizeof what, "replica %u", r);
            round_trip(h, h->rep[r], what);
            snprintf(what, sizeof what, "replica %u's accumulated delta", r);
            round_trip(h, h->acc[r], what);
        }
        for (size_t k = 0; k < h->nsnap; k++) {
            snprintf(what, sizeof what, "snapshot %zu", k);
            round_trip(h, h->snap[k], what);
        }
        for (size_t j = 0; j < h->nd; j++) {
            snprintf(what, sizeof what, "delta %zu", j);
            round_trip(h, h->delta[j], what);
        }
        for (size_t j = 0; j < h->nival; j++) {
            snprintf(what, sizeof what, "interval %zu", j);
            round_trip(h, h->ival[j], what);
        }
        round_trip(h, merged(h), "the merged state");
        maps += 2 * h->R + h->nsnap + h->nd + h->nival + 1;
        release_all();
    }
    report(g_prop, s.n, t0, ops);
    print_message("    (%lu maps round-tripped)\n", maps);
}

static int count_visit(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key;
    size_t *n = data;
    n[0]++;
    for (; e; e = awmap_next(e))
        n[1]++;
    return klen > AWMAP_KEY_MAX ? 1 : 0;
}

static int check_dots_seen(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key;
    (void)klen;
    const awmap_t *m = data;
    for (; e; e = awmap_next(e))
        if (e->dot.replica >= awmap_replica_count(m) || e->dot.counter == 0 ||
            !awmap_seen(m, awmap_replica_id(m, e->dot.replica), e->dot.counter))
            return 1;
    return 0;
}

static size_t mutate(rng_t *g, uint8_t *buf, size_t len, size_t cap, const uint8_t *other,
                     size_t olen)
{
    static const uint32_t u32s[] = {0, 1, 2, 3, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff,
                                    0x80000000u, 0xfffffffe, 0xffffffffu};
    static const uint64_t u64s[] = {0, 1, 2, 0xff, 0xffffffffull, UINT64_MAX - 1, UINT64_MAX,
                                    0x8000000000000000ull};
    unsigned kind = rng_below(g, 10);
    if (len == 0)
        kind = 8;
    size_t at = len ? rng_below(g, (uint32_t)len) : 0;
    switch (kind) {
    case 0: /* flip a bit */
        buf[at] ^= (uint8_t)(1u << rng_below(g, 8));
        break;
    case 1: /* a random byte */
        buf[at] = (uint8_t)rng_next(g);
        break;
    case 2: /* 0 or 0xff */
        buf[at] = rng_chance(g, 2) ? 0 : 0xff;
        break;
    case 3: /* an interesting u32, wherever */
        if (at + 4 <= len) {
            uint32_t v = u32s[rng_below(g, sizeof u32s / sizeof u32s[0])];
            if (rng_chance(g, 4))
                v = (uint32_t)len - (uint32_t)at;
            for (int b = 0; b < 4; b++)
                buf[at + (size_t)b] = (uint8_t)(v >> (8 * b));
        }
        break;
    case 4: /* an interesting u64 */
        if (at + 8 <= len) {
            uint64_t v = u64s[rng_below(g, sizeof u64s / sizeof u64s[0])];
            for (int b = 0; b < 8; b++)
                buf[at + (size_t)b] = (uint8_t)(v >> (8 * b));
        }
        break;
    case 5: /* truncate */
        return at;
    case 6: { /* delete a range */
        size_t n = rng_range(g, 1, 16);
        if (n > len - at)
            n = len - at;
        memmove(buf + at, buf + at + n, len - at - n);
        return len - n;
    }
    case 7: { /* duplicate a range */
        size_t n = rng_range(g, 1, 32);
        if (n > len - at)
            n = len - at;
        if (len + n > cap)
            break;
        memmove(buf + at + n, buf + at, len - at);
        return len + n;
    }
    case 8: { /* insert random bytes */
        size_t n = rng_range(g, 1, 8);
        if (len + n > cap)
            break;
        memmove(buf + at + n, buf + at, len - at);
        for (size_t i = 0; i < n; i++)
            buf[at + i] = (uint8_t)rng_next(g);
        return len + n;
    }
    default: { /* splice the tail of another encoding */
        if (olen == 0)
            break;
        size_t from = rng_below(g, (uint32_t)olen);
        size_t n = olen - from;
        if (at + n > cap)
            n = cap - at;
        memcpy(buf + at, other + from, n);
        return at + n;
    }
    }
    return len;
}

/* Mutated encodings: decode never crashes or reads out of bounds (the
 * sanitizer build runs this), and either fails with HERD_EBADFRAME or gives
 * a well-formed map that re-encodes and decodes to itself and joins. */
static void test_prop_decode_mutations(void **state)
{
    (void)state;
    seeds_t s = seeds_for("decode of mutated encodings", 0xbad, 1500);
    double t0 = now_s();
    unsigned long tries = 0, accepted = 0, ops = 0;
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        const awmap_t *src[2 * MAXR + MAXD];
        size_t ns = 0;
        for (unsigned r = 0; r < h->R; r++)
            src[ns++] = h->rep[r];
        for (size_t j = 0; j < h->nd; j++)
            src[ns++] = h->delta[j];
        for (size_t j = 0; j < h->nival; j++)
            src[ns++] = h->ival[j];
        for (int t = 0; t < 60; t++) {
            size_t len, olen;
            const uint8_t *enc = encode_exact(src[rng_below(&g, (uint32_t)ns)], &len);
            const uint8_t *oth = encode_exact(src[rng_below(&g, (uint32_t)ns)], &olen);
            size_t cap = len + 256;
            uint8_t *buf = own_mem(malloc(cap));
            memcpy(buf, enc, len);
            for (unsigned m = rng_range(&g, 1, 3); m > 0; m--)
                len = mutate(&g, buf, len, cap, oth, olen);
            awmap_t *d;
            int rc = decode_exact(buf, len, &d, NULL);
            tries++;
            PROPF(rc == 0 || rc == HERD_EBADFRAME, "decode gave %d", rc);
            if (rc != 0)
                continue;
            accepted++;
            size_t n[2] = {0, 0};
            PROPF(awmap_foreach(d, count_visit, n) == 0, "%s", "a decoded key over the limit");
            PROPF(n[0] == awmap_key_count(d) && n[1] == awmap_entry_count(d),
                  "decoded counts %zu/%zu vs %zu/%zu", n[0], n[1], awmap_key_count(d),
                  awmap_entry_count(d));
            PROPF(awmap_foreach(d, check_dots_seen, d) == 0, "%s",
                  "a decoded entry outside the decoded context");
            size_t len2;
            uint8_t *re = encode_exact(d, &len2);
            awmap_t *d2;
            rc = decode_exact(re, len2, &d2, NULL);
            PROPF(rc == 0, "a decoded map re-encodes to something that does not decode: %d", rc);
            check_equal(d, d2, "a decoded map, re-encoded and decoded");
            /* it can be joined either way without harm (not checked for
             * equality: a mutated value under a known dot breaks the rule
             * that a dot names one value, and then the join may keep either) */
            awmap_t *a = clone_state(h->rep[0]), *b = clone_state(h->rep[0]);
            assert_int_equal(awmap_join_full(a, d, NULL), 0);
            assert_int_equal(awmap_join(b, d, NULL), 0);
            awmap_t *c = clone_state(d);
            assert_int_equal(awmap_join_full(c, h->rep[0], NULL), 0);
        }
        release_all();
    }
    report(g_prop, s.n, t0, ops);
    print_message("    (%lu mutated encodings, %lu decoded)\n", tries, accepted);
}

/* ---- pieces: state sync without shipping the whole state --------------------------- */

typedef struct piece_ctx {
    const awmap_t *src; /* the state shipped in pieces */
    awmap_t *dst;       /* the delta being built */
    rng_t *g;
    int err;
} piece_ctx_t;

static int copy_piece(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    piece_ctx_t *c = data;
    if (rng_chance(c->g, 2))
        c->err = awmap_copy_key(c->dst, c->src, key, klen);
    else
        for (; e && !c->err; e = awmap_next(e))
            c->err = awmap_copy_entry(c->dst, c->src, key, klen, e, 1);
    return c->err;
}

typedef struct gone_ctx {
    const awmap_t *recv, *sender;
    awmap_t *dst;
    int err;
} gone_ctx_t;

static int note_removed_of(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    gone_ctx_t *c = data;
    for (; e && !c->err; e = awmap_next(e)) {
        awmap_replica_id_t id = awmap_replica_id(c->recv, e->dot.replica);
        if (!awmap_seen(c->sender, id, e->dot.counter))
            continue;
        int held = 0;
        for (const awmap_entry_t *f = awmap_get(c->sender, key, klen); f && !held; f = awmap_next(f)) {
            awmap_replica_id_t fid = awmap_replica_id(c->sender, f->dot.replica);
            held = fid.node == id.node && fid.incarnation == id.incarnation &&
                   f->dot.counter == e->dot.counter;
        }
        if (!held)
            c->err = awmap_note_removed(c->dst, key, klen, id, e->dot.counter);
    }
    return c->err;
}

/* A state shipped as pieces (its keys by copy_key / copy_entry, plus a
 * note_removed for each of the receiver's entries it has seen and dropped)
 * keeps the "keys in a delta" rule, and joined into the receiver by awmap_join
 * gives the entries awmap_join_full of the whole state gives; adding
 * copy_context gives the very same state. */
static void test_prop_sync_by_pieces(void **state)
{
    (void)state;
    seeds_t s = seeds_for("sync by pieces", 0x51ec, 1000);
    double t0 = now_s();
    unsigned long ops = 0, notes = 0;
    for (unsigned i = 0; i < s.n; i++) {
        rng_t g = seed_case(s, i);
        hist_t *h = gen_history(&g, 0);
        ops += h->adds + h->removes + h->deliveries;
        const awmap_t *st[MAXR + MAXSNAP];
        size_t ns = 0;
        for (unsigned r = 0; r < h->R; r++)
            st[ns++] = h->rep[r];
        for (size_t k = 0; k < h->nsnap; k++)
            st[ns++] = h->snap[k];
        for (int t = 0; t < 6; t++) {
            const awmap_t *sender = st[rng_below(&g, (uint32_t)ns)];
            const awmap_t *recv = st[rng_below(&g, (uint32_t)ns)];
            awmap_t *d = new_delta();
            piece_ctx_t pc = {sender, d, &g, 0};
            PROPF(awmap_foreach(sender, copy_piece, &pc) == 0, "copying pieces: %d", pc.err);
            gone_ctx_t gc = {recv, sender, d, 0};
            PROPF(awmap_foreach(recv, note_removed_of, &gc) == 0, "note_removed: %d", gc.err);
            notes += awmap_key_count(d);
            check_delta_keys(h, d, "a state in pieces");
            awmap_t *by_pieces = clone_state(recv), *whole = clone_state(recv);
            assert_int_equal(awmap_join(by_pieces, d, NULL), 0);
            assert_int_equal(awmap_join_full(whole, sender, NULL), 0);
            static model_t mp, mw;
            char why[200];
            PROPF(read_map(h, by_pieces, 1, &mp, NULL, why, sizeof why), "%s", why);
            PROPF(read_map(h, whole, 1, &mw, NULL, why, sizeof why), "%s", why);
            PROPF(model_eq(h, &mp, &mw, 0, why, sizeof why),
                  "receiver ⊔ pieces vs receiver ⊔ whole state: %s", why);
            assert_int_equal(awmap_copy_context(d, sender), 0);
            awmap_t *with_ctx = clone_state(recv);
            assert_int_equal(awmap_join(with_ctx, d, NULL), 0);
            check_equal(with_ctx, whole, "receiver ⊔ (pieces + context) vs receiver ⊔ state");
        }
        release_all();
    }
    report(g_prop, s.n, t0, ops);
    print_message("    (%lu keys shipped or noted)\n", notes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_prop_history_matches_model, teardown),
        cmocka_unit_test_teardown(test_prop_join_laws, teardown),
        cmocka_unit_test_teardown(test_prop_any_permutation, teardown),
        cmocka_unit_test_teardown(test_prop_intervals, teardown),
        cmocka_unit_test_teardown(test_prop_convergence, teardown),
        cmocka_unit_test_teardown(test_prop_encode_decode_identity, teardown),
        cmocka_unit_test_teardown(test_prop_decode_mutations, teardown),
        cmocka_unit_test_teardown(test_prop_sync_by_pieces, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
