/*
 * test_registry_spec.c - unit tests for the registry's replicated child
 * specs and its handoff helpers (registry/herd_registry.h, sections
 * "replicated child specs" and "for the handoff").
 *
 * What is checked:
 * - specs on one node: put, get, replace, remove, foreach (and its stop),
 *   count, binary bytes and the HERD_SPEC_MAX limit; a node without a
 *   registry answers HERD_ENOENT;
 * - bad input: empty or over-long names, a spec over HERD_SPEC_MAX, and a
 *   name starting with the byte 0x01 (the specs' key prefix) are HERD_EINVAL
 *   for the spec calls and for herd_register / herd_whereis and the other
 *   name calls;
 * - specs are not names: herd_registry_list / count and herd_whereis never
 *   show them, the stats' names and entries leave them out, a name and a spec
 *   of the same text are independent, a process's exit leaves specs alone;
 * - in a cluster: specs replicate (put, replace, remove), a node that joins
 *   later gets them (digest sync), and the specs a node wrote stay after it is
 *   declared down and after it is forgotten (registrations are hidden, then
 *   removed); concurrent puts of one name on two nodes converge to the same
 *   spec on every node (the lowest writer), the next put replaces both, and a
 *   put concurrent with a remove wins;
 * - a spec's write passed on by another node (herd_spec_relay, as a child's
 *   new owner gets it with the child) is taken in once, under its writer's
 *   dot, when never seen; a write seen (held, removed, replaced) changes
 *   nothing; on a clustered node it reaches the members; bad input is
 *   refused;
 * - the watcher is told of local and remote changes and of what a join
 *   brings, the change is applied when it is told, it may call
 *   herd_spec_put from inside the callback, and NULL removes it;
 * - herd_registry_switch replaces the pid in one step (another node never
 *   sees the name missing), keeps metadata and first-registration time, the
 *   old local process's exit does not take the switched name, the new
 *   holder's does; a name the pid does not hold is HERD_ENOENT; a switch
 *   made on another node than the old pid's does not make the old pid's node
 *   put the old entry back while the old process still lives;
 * - herd_register_at keeps the given time, and in a conflict the earlier
 *   time wins even when it was registered later and on the node the id
 *   tie-break would not pick;
 * - herd_register_claim adds the pid's own entry and lets the conflict rule
 *   judge it against another holder (older stamp wins, newer loses);
 * - unregister removes one registration: in a conflict only the winner's;
 *   a late remote unregister does not remove a newer registration of the
 *   same pid.
 *
 * Nodes live in this one process on one uv loop (ts_loop); clustered nodes
 * talk over tcp://127.0.0.1 on random ports. Every wait has a deadline.
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

#include "herd_registry.h"
#include "log.h"
#include "registry_layers.h"
#include "support.h"

#define SECRET "test-registry-spec-secret-0123456789"
#define WAIT_MS 15000u
#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

/* Generous: a slow (sanitized) run must not see a live node go down. */
static const ts_timing_t CALM = {100, 1500, 3000, 60000};
/* A node dies, is declared down quickly and forgotten after 2 s. */
static const ts_timing_t FAST = {50, 150, 300, 2000};

/* ---- nodes ------------------------------------------------------------------------ */

static herd_node_t *bare_node(const char *name)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop};
    return ts_cluster_add(&cfg);
}

static herd_node_t *solo_node(const char *name)
{
    herd_node_t *n = bare_node(name);
    assert_int_equal(herd_registry_start(n), 0);
    return n;
}

static herd_node_t *cluster_node(const char *name, const ts_timing_t *t, herd_node_t *const *seeds,
                                 size_t nseeds)
{
    herd_node_t *n = bare_node(name);
    ts_cluster_join(n, t, seeds, nseeds);
    assert_int_equal(herd_registry_start(n), 0);
    return n;
}

/* k (2 or 3) clustered nodes "a", "b", "c" that see each other up. */
static int syncs_done(herd_node_t **n, int k)
{
    for (int i = 0; i < k; i++) {
        herd_registry_stats_t st;
        if (herd_registry_stats(n[i], &st) != 0 || st.contexts_joined < (uint64_t)(k - 1) ||
            st.syncs_under_way != 0)
            return 0;
    }
    return 1;
}

static void form(int k, const ts_timing_t *t, herd_node_t **out)
{
    static const char *names[3] = {"a", "b", "c"};
    out[0] = cluster_node(names[0], t, NULL, 0);
    for (int i = 1; i < k; i++)
        out[i] = cluster_node(names[i], t, &out[0], 1);
    WAIT_UNTIL(ts_cluster_all_up(out, k));
    /* and the digest syncs of the arrivals are over: each node pulled from
     * every other (one pull at a time) and none is under way (one put off
     * is answered after), so none brings a later change to a node the test
     * has cut off from its writer */
    WAIT_UNTIL(syncs_done(out, k));
}

static void assert_pid_eq(herd_pid_t a, herd_pid_t b)
{
    assert_int_equal(a.node, b.node);
    assert_int_equal(a.incarnation, b.incarnation);
    assert_int_equal(a.serial, b.serial);
}

/* ---- a process ------------------------------------------------------------------------ */

#define EXITS_MAX 64
static herd_pid_t g_exited[EXITS_MAX];
static int g_exit_reason[EXITS_MAX];
static size_t g_nexited;

static void srv_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)state;
    if (ts_detached() || g_nexited >= EXITS_MAX)
        return;
    g_exit_reason[g_nexited] = reason;
    g_exited[g_nexited++] = herd_self(self);
}

static const herd_behaviour_t srv = {.name = "srv", .terminate = srv_terminate};

static herd_pid_t spawn_srv(herd_node_t *n)
{
    herd_spawn_opts_t o = {.behaviour = &srv};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

/* The exit reason of p, or -1000 while it has not exited. */
static int exit_reason(herd_pid_t p)
{
    for (size_t i = 0; i < g_nexited; i++)
        if (herd_pid_equal(g_exited[i], p))
            return g_exit_reason[i];
    return -1000;
}

/* Stop p with `reason` and wait until its exit is carried out (terminate and
 * the node's exit hooks have run). */
static void stop_and_wait(herd_node_t *n, herd_pid_t p, int reason)
{
    assert_int_equal(herd_stop(n, p, reason), 0);
    WAIT_UNTIL(exit_reason(p) != -1000);
    assert_int_equal(exit_reason(p), reason);
}

/* ---- registry helpers -------------------------------------------------------------- */

static int spec_is(herd_node_t *n, const char *name, const char *want)
{
    const uint8_t *s = NULL;
    size_t len = 0;
    return herd_spec_get(n, name, &s, &len) == 0 && len == strlen(want) &&
           memcmp(s, want, len) == 0;
}

static void assert_spec(herd_node_t *n, const char *name, const char *want)
{
    const uint8_t *s = NULL;
    size_t len = 0;
    int rc = herd_spec_get(n, name, &s, &len);
    if (rc != 0)
        fail_msg("spec '%s' on %s: %s", name, herd_node_name(n), herd_strerror(rc));
    if (len != strlen(want) || memcmp(s, want, len) != 0)
        fail_msg("spec '%s' on %s: '%.*s', expected '%s'", name, herd_node_name(n), (int)len,
                 (const char *)s, want);
}

static int spec_absent(herd_node_t *n, const char *name)
{
    const uint8_t *s;
    size_t len;
    return herd_spec_get(n, name, &s, &len) == HERD_ENOENT;
}

static int resolves_to(herd_node_t *n, const char *name, herd_pid_t pid)
{
    herd_pid_t got;
    return herd_whereis(n, name, &got, NULL) == 0 && herd_pid_equal(got, pid);
}

static int unknown_on(herd_node_t *n, const char *name)
{
    return herd_whereis(n, name, NULL, NULL) == HERD_ENOENT;
}

static herd_registry_stats_t stats_of(herd_node_t *n)
{
    herd_registry_stats_t s;
    memset(&s, 0xa5, sizeof(s));
    assert_int_equal(herd_registry_stats(n, &s), 0);
    return s;
}

static uint64_t entries_of(herd_node_t *n)
{
    herd_registry_stats_t s;
    return herd_registry_stats(n, &s) == 0 ? s.entries : UINT64_MAX;
}

static herd_meta_t meta1(const char *key, const char *value)
{
    herd_meta_t m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(herd_meta_set(&m, key, value), 0);
    return m;
}

static uint64_t time_of(herd_node_t *n, const char *name)
{
    uint64_t t = 0;
    assert_int_equal(herd_registry_time(n, name, &t), 0);
    return t;
}

/* What herd_registry_list / herd_spec_foreach visited. */
typedef struct seen {
    int calls, stop_after;
    char names[16][64];
    char values[16][64];
} seen_t;

static void seen_add(seen_t *c, const char *name, const void *value, size_t len)
{
    if (c->calls < 16) {
        snprintf(c->names[c->calls], sizeof(c->names[0]), "%s", name);
        size_t n = len < sizeof(c->values[0]) - 1 ? len : sizeof(c->values[0]) - 1;
        memcpy(c->values[c->calls], value, n);
        c->values[c->calls][n] = '\0';
    }
    c->calls++;
}

static int seen_index(const seen_t *c, const char *name)
{
    for (int i = 0; i < c->calls && i < 16; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return -1;
}

static int collect_name(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)pid;
    (void)meta;
    seen_t *c = data;
    seen_add(c, name, "", 0);
    return c->stop_after && c->calls >= c->stop_after;
}

static int collect_spec(void *data, const char *name, const uint8_t *spec, size_t len)
{
    seen_t *c = data;
    seen_add(c, name, spec, len);
    return c->stop_after && c->calls >= c->stop_after;
}

/* ---- the watcher -------------------------------------------------------------------- */

#define WATCH_MAX 256

typedef struct told {
    herd_node_t *node;
    char name[64];
    int present;   /* herd_spec_get of the name in the callback: 1 found */
    char value[64]; /* ... and what it read */
} told_t;

static told_t g_told[WATCH_MAX];
static size_t g_ntold;
/* A watcher that, told of `trigger`, puts `derived` = `derived_value`. */
typedef struct watch_ctx {
    herd_node_t *node;
    const char *trigger, *derived, *derived_value;
    int put_rc; /* what its herd_spec_put returned */
    int puts;
} watch_ctx_t;
static watch_ctx_t g_wctx[3];

static void on_spec(void *data, const char *name)
{
    watch_ctx_t *w = data;
    if (ts_detached())
        return;
    if (g_ntold < WATCH_MAX) {
        told_t *t = &g_told[g_ntold++];
        memset(t, 0, sizeof(*t));
        t->node = w->node;
        snprintf(t->name, sizeof(t->name), "%s", name);
        const uint8_t *s;
        size_t len;
        if (herd_spec_get(w->node, name, &s, &len) == 0) {
            t->present = 1;
            size_t k = len < sizeof(t->value) - 1 ? len : sizeof(t->value) - 1;
            memcpy(t->value, s, k);
        }
    }
    if (w->trigger && strcmp(name, w->trigger) == 0) {
        w->put_rc = herd_spec_put(w->node, w->derived, w->derived_value,
                                  strlen(w->derived_value));
        w->puts++;
    }
}

/* How often n's watcher was told of `name`. */
static size_t told_count(herd_node_t *n, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < g_ntold; i++)
        k += g_told[i].node == n && strcmp(g_told[i].name, name) == 0;
    return k;
}

/* The last time n's watcher was told of `name`, or NULL. */
static const told_t *told_last(herd_node_t *n, const char *name)
{
    const told_t *last = NULL;
    for (size_t i = 0; i < g_ntold; i++)
        if (g_told[i].node == n && strcmp(g_told[i].name, name) == 0)
            last = &g_told[i];
    return last;
}

static void watch(herd_node_t *n, int slot)
{
    memset(&g_wctx[slot], 0, sizeof(g_wctx[slot]));
    g_wctx[slot].node = n;
    assert_int_equal(herd_spec_watch(n, on_spec, &g_wctx[slot]), 0);
}

/* ---- setup -------------------------------------------------------------------------- */

static int setup(void **state)
{
    g_nexited = 0;
    g_ntold = 0;
    memset(g_wctx, 0, sizeof(g_wctx));
    return ts_cluster_setup(state);
}

/* ---- specs on one node ---------------------------------------------------------------- */

static void test_spec_put_get_replace_remove(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    const uint8_t *s = NULL;
    size_t len = 0;
    assert_int_equal(herd_spec_count(a), 0);
    assert_int_equal(herd_spec_get(a, "job", &s, &len), HERD_ENOENT);
    assert_int_equal(herd_spec_remove(a, "job"), HERD_ENOENT);
    assert_int_equal(herd_spec_foreach(a, collect_spec, NULL), 0);

    assert_int_equal(herd_spec_put(a, "job", "v1", 2), 0);
    assert_spec(a, "job", "v1");
    assert_int_equal(herd_spec_count(a), 1);
    assert_int_equal(herd_spec_put(a, "job", "version-2", 9), 0); /* replace */
    assert_spec(a, "job", "version-2");
    assert_int_equal(herd_spec_count(a), 1);

    /* bytes, not strings */
    static const uint8_t bin[6] = {0, 1, 2, 0, 0xff, 0x7f};
    assert_int_equal(herd_spec_put(a, "bin", bin, sizeof(bin)), 0);
    assert_int_equal(herd_spec_get(a, "bin", &s, &len), 0);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(s, bin, sizeof(bin));

    /* the largest spec */
    uint8_t *big = malloc(HERD_SPEC_MAX);
    assert_non_null(big);
    for (size_t i = 0; i < HERD_SPEC_MAX; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    int rc = herd_spec_put(a, "big", big, HERD_SPEC_MAX);
    int get_rc = herd_spec_get(a, "big", &s, &len);
    int same = get_rc == 0 && len == HERD_SPEC_MAX && memcmp(s, big, len) == 0;
    free(big);
    assert_int_equal(rc, 0);
    assert_int_equal(get_rc, 0);
    assert_true(same);
    assert_int_equal(herd_spec_count(a), 3);

    seen_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(herd_spec_foreach(a, collect_spec, &c), 3);
    assert_int_equal(c.calls, 3);
    assert_true(seen_index(&c, "job") >= 0);
    assert_string_equal(c.values[seen_index(&c, "job")], "version-2");
    assert_true(seen_index(&c, "bin") >= 0);
    assert_true(seen_index(&c, "big") >= 0);
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(herd_spec_foreach(a, collect_spec, &c), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(herd_spec_foreach(a, NULL, NULL), 3);

    assert_int_equal(herd_spec_remove(a, "job"), 0);
    assert_int_equal(herd_spec_get(a, "job", &s, &len), HERD_ENOENT);
    assert_int_equal(herd_spec_remove(a, "job"), HERD_ENOENT);
    assert_int_equal(herd_spec_count(a), 2);
    assert_int_equal(herd_spec_put(a, "job", "v3", 2), 0); /* back after a remove */
    assert_spec(a, "job", "v3");
    assert_int_equal(herd_spec_count(a), 3);

    /* a node without a registry */
    herd_node_t *bare = bare_node("bare");
    assert_int_equal(herd_spec_put(bare, "job", "v", 1), HERD_ENOENT);
    assert_int_equal(herd_spec_get(bare, "job", &s, &len), HERD_ENOENT);
    assert_int_equal(herd_spec_remove(bare, "job"), HERD_ENOENT);
    assert_int_equal(herd_spec_foreach(bare, collect_spec, &c), HERD_ENOENT);
    assert_int_equal(herd_spec_watch(bare, on_spec, NULL), HERD_ENOENT);
    assert_int_equal(herd_spec_count(bare), 0);
    ts_node_free(bare);
    ts_node_free(a);
}

/* herd_spec_foreach_slice: slices of a few keys from position 0 visit every
 * spec once, however the registry changes between two slices (names
 * registered and specs added or removed meanwhile); a spec present
 * throughout is never missed nor visited twice; a callback's error stops
 * the slice where it is. */
#define SLICE_SPECS 200

typedef struct slice_seen {
    int visits[SLICE_SPECS];
    int others;
    int fail_at; /* a call returns HERD_ENOMEM when it is this one (1-based), else 0 */
    int calls;
} slice_seen_t;

static int slice_collect(void *data, const char *name, const uint8_t *spec, size_t len)
{
    (void)spec;
    (void)len;
    slice_seen_t *c = data;
    if (++c->calls == c->fail_at)
        return HERD_ENOMEM;
    int i;
    if (sscanf(name, "slice-%d", &i) == 1 && i >= 0 && i < SLICE_SPECS)
        c->visits[i]++;
    else
        c->others++;
    return 0;
}

static void test_spec_foreach_slice_visits_each_once(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    char name[64];
    for (int i = 0; i < SLICE_SPECS; i++) {
        snprintf(name, sizeof(name), "slice-%d", i);
        assert_int_equal(herd_spec_put(a, name, "v", 1), 0);
    }
    /* names share the registry's order: they count in a slice's size */
    herd_pid_t p = spawn_srv(a);
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "plain-%d", i);
        assert_int_equal(herd_register(a, name, p, NULL), 0);
    }

    slice_seen_t c;
    memset(&c, 0, sizeof(c));
    uint64_t pos = 0;
    int slices = 0, rc = 0;
    while ((rc = herd_spec_foreach_slice(a, &pos, 8, slice_collect, &c)) == 0) {
        assert_true(++slices < 1000);
        /* the registry changes between slices: a spec and a name added,
         * one added earlier removed */
        snprintf(name, sizeof(name), "extra-%d", slices);
        assert_int_equal(herd_spec_put(a, name, "x", 1), 0);
        snprintf(name, sizeof(name), "late-%d", slices);
        assert_int_equal(herd_register(a, name, p, NULL), 0);
        if (slices > 1) {
            snprintf(name, sizeof(name), "extra-%d", slices - 1);
            assert_int_equal(herd_spec_remove(a, name), 0);
        }
    }
    assert_int_equal(rc, 1);
    assert_true(slices >= 10); /* 250 keys at about 8 a slice */
    assert_int_equal(pos, UINT64_C(1) << 32);
    for (int i = 0; i < SLICE_SPECS; i++)
        assert_int_equal(c.visits[i], 1);
    assert_true(c.others <= slices); /* an added spec at most once */
    /* walked to the end: nothing more */
    assert_int_equal(herd_spec_foreach_slice(a, &pos, 8, slice_collect, &c), 1);

    /* 0 keys: the rest in one slice */
    memset(&c, 0, sizeof(c));
    pos = 0;
    assert_int_equal(herd_spec_foreach_slice(a, &pos, 0, slice_collect, &c), 1);
    for (int i = 0; i < SLICE_SPECS; i++)
        assert_int_equal(c.visits[i], 1);

    /* the callback's error: returned, and the position stays */
    memset(&c, 0, sizeof(c));
    c.fail_at = 3;
    pos = 0;
    assert_int_equal(herd_spec_foreach_slice(a, &pos, 0, slice_collect, &c), HERD_ENOMEM);
    assert_int_equal(pos, 0);

    herd_node_t *bare = bare_node("bare");
    pos = 0;
    assert_int_equal(herd_spec_foreach_slice(bare, &pos, 8, slice_collect, &c), HERD_ENOENT);
    ts_node_free(bare);
}

static void test_spec_bad_input_einval(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a), q = spawn_srv(a);
    const uint8_t *s = NULL;
    size_t len = 0;

    /* empty names */
    assert_int_equal(herd_spec_put(a, "", "v", 1), HERD_EINVAL);
    assert_int_equal(herd_spec_put(a, NULL, "v", 1), HERD_EINVAL);
    assert_int_equal(herd_spec_get(a, "", &s, &len), HERD_EINVAL);
    assert_int_equal(herd_spec_remove(a, ""), HERD_EINVAL);

    /* over-long names; a long one within the key limit is fine */
    char longest[255], over[300];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0'; /* 254 bytes: the prefix makes 255 */
    memset(over, 'y', sizeof(over) - 1);
    over[sizeof(over) - 1] = '\0';
    assert_int_equal(herd_spec_put(a, over, "v", 1), HERD_EINVAL);
    assert_int_equal(herd_spec_get(a, over, &s, &len), HERD_EINVAL);
    assert_int_equal(herd_spec_remove(a, over), HERD_EINVAL);
    over[256] = '\0'; /* just over */
    assert_int_equal(herd_spec_put(a, over, "v", 1), HERD_EINVAL);
    assert_int_equal(herd_spec_put(a, longest, "long", 4), 0);
    assert_spec(a, longest, "long");

    /* specs over the limit, and bytes promised but not given */
    uint8_t *big = calloc(1, HERD_SPEC_MAX + 1);
    assert_non_null(big);
    int rc = herd_spec_put(a, "big", big, HERD_SPEC_MAX + 1);
    free(big);
    assert_int_equal(rc, HERD_EINVAL);
    assert_true(spec_absent(a, "big"));
    assert_int_equal(herd_spec_put(a, "null", NULL, 3), HERD_EINVAL);
    assert_true(spec_absent(a, "null"));
    assert_int_equal(herd_spec_count(a), 1);

    /* names starting with 0x01, the specs' key prefix: never a name, never a
     * spec (even while a spec and a registration of the rest exist) */
    assert_int_equal(herd_spec_put(a, "job", "spec-of-job", 11), 0);
    assert_int_equal(herd_register(a, "job", p, NULL), 0);
    uint64_t t = 0;
    herd_pid_t got = HERD_PID_NONE;
    const char *bad[3] = {"\x01job", "\x01", "\x01other"};
    for (int i = 0; i < 3; i++) {
        const char *b = bad[i];
        assert_int_equal(herd_register(a, b, q, NULL), HERD_EINVAL);
        assert_int_equal(herd_whereis(a, b, &got, NULL), HERD_EINVAL);
        assert_int_equal(herd_unregister(a, b), HERD_EINVAL);
        assert_int_equal(herd_update_meta(a, b, NULL), HERD_EINVAL);
        assert_int_equal(herd_registry_time(a, b, &t), HERD_EINVAL);
        assert_int_equal(herd_register_at(a, b, q, NULL, 1), HERD_EINVAL);
        assert_int_equal(herd_registry_switch(a, b, p, q), HERD_EINVAL);
        assert_int_equal(herd_node_cast_name(a, b, "x", 1), HERD_EINVAL);
        assert_int_equal(herd_spec_put(a, b, "v", 1), HERD_EINVAL);
        assert_int_equal(herd_spec_get(a, b, &s, &len), HERD_EINVAL);
        assert_int_equal(herd_spec_remove(a, b), HERD_EINVAL);
    }
    /* nothing changed */
    assert_true(resolves_to(a, "job", p));
    assert_spec(a, "job", "spec-of-job");
    assert_int_equal(herd_spec_count(a), 2);
    assert_int_equal(herd_registry_count(a, NULL), 1);
    ts_node_free(a);
}

/* Specs are not names: listing, counting, whereis and the stats leave them
 * out; a name and a spec of the same text are independent. */
static void test_spec_not_names(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "job", p, NULL), 0);
    assert_int_equal(herd_register(a, "svc", p, NULL), 0);
    assert_int_equal(herd_spec_put(a, "job", "sj", 2), 0);
    assert_int_equal(herd_spec_put(a, "w1", "s1", 2), 0);
    assert_int_equal(herd_spec_put(a, "w2", "s2", 2), 0);

    assert_int_equal(herd_registry_count(a, NULL), 2);
    assert_int_equal(herd_registry_count(a, ""), 2);
    assert_int_equal(herd_registry_count(a, "w"), 0);
    assert_int_equal(herd_registry_count(a, "\x01"), 0);
    seen_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(herd_registry_list(a, NULL, collect_name, &c), 2);
    assert_int_equal(c.calls, 2);
    assert_true(seen_index(&c, "job") >= 0);
    assert_true(seen_index(&c, "svc") >= 0);
    for (int i = 0; i < c.calls; i++)
        assert_int_not_equal(c.names[i][0], '\x01');
    assert_true(unknown_on(a, "w1"));
    assert_true(unknown_on(a, "w2"));
    assert_true(resolves_to(a, "job", p));
    herd_registry_stats_t st = stats_of(a);
    assert_int_equal(st.names, 2);
    assert_int_equal(st.entries, 2);
    assert_int_equal(herd_spec_count(a), 3);

    /* replacing and removing specs leaves the stats alone */
    assert_int_equal(herd_spec_put(a, "w1", "s1-bis", 6), 0);
    assert_int_equal(herd_spec_remove(a, "w2"), 0);
    st = stats_of(a);
    assert_int_equal(st.names, 2);
    assert_int_equal(st.entries, 2);
    assert_int_equal(herd_spec_count(a), 2);

    /* independent: the name's calls do not touch the spec, and back */
    assert_int_equal(herd_unregister(a, "w1"), HERD_ENOENT); /* a spec, not a name */
    assert_int_equal(herd_spec_remove(a, "svc"), HERD_ENOENT); /* a name, not a spec */
    assert_int_equal(herd_unregister(a, "job"), 0);
    assert_spec(a, "job", "sj");
    assert_int_equal(herd_register(a, "job", p, NULL), 0);
    assert_int_equal(herd_spec_remove(a, "job"), 0);
    assert_true(resolves_to(a, "job", p));

    /* the process's exit takes its names, not the specs */
    stop_and_wait(a, p, HERD_REASON_SHUTDOWN);
    assert_int_equal(herd_registry_count(a, NULL), 0);
    assert_true(unknown_on(a, "job"));
    assert_spec(a, "w1", "s1-bis");
    assert_int_equal(herd_spec_count(a), 1);
    st = stats_of(a);
    assert_int_equal(st.names, 0);
    assert_int_equal(st.entries, 0);
    ts_node_free(a);
}

/* ---- specs in a cluster ----------------------------------------------------------------- */

/* Puts, replaces and removes replicate; a node that joins later gets the
 * specs; the stats of every node leave them out. */
static void test_spec_replicates_and_reaches_a_late_joiner(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    assert_int_equal(herd_spec_put(a, "s1", "one", 3), 0);
    assert_int_equal(herd_spec_put(a, "s2", "two", 3), 0);
    assert_int_equal(herd_spec_put(b, "s3", "three", 5), 0);
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "svc", p, NULL), 0);
    WAIT_UNTIL(herd_spec_count(a) == 3 && herd_spec_count(b) == 3);
    WAIT_UNTIL(resolves_to(b, "svc", p));
    for (int i = 0; i < 2; i++) {
        assert_spec(n[i], "s1", "one");
        assert_spec(n[i], "s2", "two");
        assert_spec(n[i], "s3", "three");
        herd_registry_stats_t st = stats_of(n[i]);
        assert_int_equal(st.names, 1);
        assert_int_equal(st.entries, 1);
        assert_int_equal(herd_registry_count(n[i], NULL), 1);
    }

    assert_int_equal(herd_spec_put(b, "s1", "uno", 3), 0); /* replace elsewhere */
    WAIT_UNTIL(spec_is(a, "s1", "uno"));
    assert_int_equal(herd_spec_remove(a, "s2"), 0);
    WAIT_UNTIL(spec_absent(b, "s2"));
    assert_int_equal(herd_spec_count(a), 2);
    assert_int_equal(herd_spec_count(b), 2);
    assert_int_equal(entries_of(a), 1);
    assert_int_equal(entries_of(b), 1);

    /* a late joiner: the digest sync brings the specs (and tells its watcher) */
    herd_node_t *c = cluster_node("c", &CALM, &a, 1);
    watch(c, 2);
    herd_node_t *all[3] = {a, b, c};
    WAIT_UNTIL(ts_cluster_all_up(all, 3));
    WAIT_UNTIL(herd_spec_count(c) == 2 && resolves_to(c, "svc", p));
    assert_spec(c, "s1", "uno");
    assert_spec(c, "s3", "three");
    assert_true(spec_absent(c, "s2"));
    herd_registry_stats_t st = stats_of(c);
    assert_int_equal(st.names, 1);
    assert_int_equal(st.entries, 1);
    assert_true(told_count(c, "s1") >= 1);
    assert_true(told_count(c, "s3") >= 1);
    assert_int_equal(told_count(c, "s2"), 0);
    assert_int_equal(told_last(c, "s1")->present, 1);
    assert_string_equal(told_last(c, "s1")->value, "uno");

    /* and it takes part from then on */
    assert_int_equal(herd_spec_put(c, "s4", "four", 4), 0);
    WAIT_UNTIL(spec_is(a, "s4", "four") && spec_is(b, "s4", "four"));
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

/* The specs a node wrote stay on the survivors after it is declared down
 * and after it is forgotten (its registrations are hidden, then removed);
 * the survivors can still replace and remove them. */
static void test_spec_writer_down_specs_stay(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(3, &FAST, n);
    herd_node_t *a = n[0], *b = n[1], *c = n[2];
    herd_pid_t pc = spawn_srv(c);
    assert_int_equal(herd_spec_put(c, "c-spec", "from-c", 6), 0);
    assert_int_equal(herd_spec_put(c, "c-spec2", "from-c-2", 8), 0);
    assert_int_equal(herd_register(c, "c-name", pc, NULL), 0);
    assert_int_equal(herd_spec_put(a, "a-spec", "from-a", 6), 0);
    WAIT_UNTIL(spec_is(a, "c-spec", "from-c") && spec_is(b, "c-spec", "from-c"));
    WAIT_UNTIL(herd_spec_count(a) == 3 && herd_spec_count(b) == 3 && herd_spec_count(c) == 3);
    WAIT_UNTIL(resolves_to(a, "c-name", pc) && resolves_to(b, "c-name", pc));

    ts_node_free(c); /* a crash: no leave */
    WAIT_UNTIL(unknown_on(a, "c-name") && unknown_on(b, "c-name"));
    assert_int_equal(ts_cluster_member_state(a, "c"), HERD_MEMBER_DOWN);
    assert_int_equal(entries_of(a), 1); /* hidden, still in the replica */
    for (int i = 0; i < 2; i++) {
        assert_spec(n[i], "c-spec", "from-c");
        assert_spec(n[i], "c-spec2", "from-c-2");
        assert_spec(n[i], "a-spec", "from-a");
        assert_int_equal(herd_spec_count(n[i]), 3);
    }

    /* forgotten: the registration is removed, the specs are not */
    WAIT_UNTIL(ts_cluster_member_state(a, "c") == -1 && ts_cluster_member_state(b, "c") == -1);
    WAIT_UNTIL(entries_of(a) == 0 && entries_of(b) == 0);
    for (int i = 0; i < 2; i++) {
        assert_spec(n[i], "c-spec", "from-c");
        assert_spec(n[i], "c-spec2", "from-c-2");
        assert_int_equal(herd_spec_count(n[i]), 3);
        assert_int_equal(stats_of(n[i]).names, 0);
    }

    /* the survivors own them now */
    assert_int_equal(herd_spec_put(b, "c-spec", "adopted", 7), 0);
    WAIT_UNTIL(spec_is(a, "c-spec", "adopted"));
    assert_int_equal(herd_spec_remove(a, "c-spec2"), 0);
    WAIT_UNTIL(spec_absent(b, "c-spec2"));
    assert_int_equal(herd_spec_count(a), 2);
    assert_int_equal(herd_spec_count(b), 2);
    ts_node_free(b);
    ts_node_free(a);
}

static int same_ref(const herd_spec_ref_t *a, const herd_spec_ref_t *b)
{
    return a->node == b->node && a->incarnation == b->incarnation && a->counter == b->counter;
}

/* herd_spec_relay takes in a write of a spec this node never saw, under its
 * writer's dot (the same spec every node reads), once; a write it saw
 * (held, removed, or replaced since) changes nothing; bad input is refused
 * and changes nothing. */
static void test_spec_relay_takes_in_an_unseen_write_once(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a"), *b = solo_node("b");
    herd_spec_ref_t r1, r2, got;
    assert_int_equal(herd_spec_put(a, "job", "v1", 2), 0);
    assert_int_equal(herd_spec_ref(a, "job", &r1), 0);
    assert_false(herd_spec_ref_seen(b, &r1));

    assert_int_equal(herd_spec_relay(b, "job", &r1, "v1", 2), 1);
    assert_spec(b, "job", "v1");
    assert_int_equal(herd_spec_ref(b, "job", &got), 0);
    assert_true(same_ref(&got, &r1)); /* the writer's write, not b's */
    assert_true(herd_spec_ref_seen(b, &r1));
    assert_int_equal(herd_spec_relay(b, "job", &r1, "v1", 2), 0); /* again: nothing */
    assert_int_equal(herd_spec_count(b), 1);

    assert_int_equal(herd_spec_remove(b, "job"), 0); /* removed stays removed */
    assert_int_equal(herd_spec_relay(b, "job", &r1, "v1", 2), 0);
    assert_true(spec_absent(b, "job"));

    assert_int_equal(herd_spec_put(a, "job", "v2", 2), 0); /* replaced on its writer */
    assert_int_equal(herd_spec_ref(a, "job", &r2), 0);
    assert_int_equal(herd_spec_relay(b, "job", &r2, "v2", 2), 1);
    assert_spec(b, "job", "v2");
    assert_int_equal(herd_spec_relay(a, "job", &r1, "v1", 2), 0); /* a replaced it */
    assert_spec(a, "job", "v2");

    /* bad input: refused, nothing taken in */
    herd_spec_ref_t zero = {r1.node, r1.incarnation, 0};
    uint8_t *big = calloc(1, HERD_SPEC_MAX + 1);
    assert_non_null(big);
    int rc[6];
    rc[0] = herd_spec_relay(b, "other", &zero, "v", 1);
    rc[1] = herd_spec_relay(b, "other", NULL, "v", 1);
    rc[2] = herd_spec_relay(b, "other", &r1, big, HERD_SPEC_MAX + 1);
    rc[3] = herd_spec_relay(b, "other", &r1, NULL, 1);
    rc[4] = herd_spec_relay(b, "", &r1, "v", 1);
    herd_node_t *bare = bare_node("bare");
    rc[5] = herd_spec_relay(bare, "other", &r1, "v", 1);
    free(big);
    ts_node_free(bare);
    for (int i = 0; i < 5; i++)
        if (rc[i] != HERD_EINVAL)
            fail_msg("bad relay %d answered %d, want HERD_EINVAL", i, rc[i]);
    assert_int_equal(rc[5], HERD_ENOENT);
    assert_true(spec_absent(b, "other"));
    assert_int_equal(herd_spec_count(b), 1);
    ts_node_free(b);
    ts_node_free(a);
}

/* A write taken in by herd_spec_relay on a clustered node reaches its
 * members too, and is the same write there (a remove of it anywhere
 * removes it everywhere). */
static void test_spec_relay_reaches_the_members(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1], *far = solo_node("far");
    watch(b, 1);
    herd_spec_ref_t ref, got;
    assert_int_equal(herd_spec_put(far, "moved", "spec-bytes", 10), 0);
    assert_int_equal(herd_spec_ref(far, "moved", &ref), 0);
    assert_int_equal(herd_spec_relay(a, "moved", &ref, "spec-bytes", 10), 1);
    WAIT_UNTIL(spec_is(b, "moved", "spec-bytes"));
    assert_int_equal(herd_spec_ref(b, "moved", &got), 0);
    assert_true(same_ref(&got, &ref));
    assert_true(told_count(b, "moved") >= 1); /* its watcher is told, as of any spec */
    assert_int_equal(herd_spec_remove(b, "moved"), 0);
    WAIT_UNTIL(spec_absent(a, "moved"));
    assert_int_equal(herd_spec_relay(a, "moved", &ref, "spec-bytes", 10), 0);
    assert_true(spec_absent(a, "moved"));
    ts_node_free(far);
    ts_node_free(b);
    ts_node_free(a);
}

/* Two nodes put one name at once (before either sees the other's): every
 * node ends up reading the same spec, the lowest writer's; the next put
 * replaces both; a put concurrent with a remove wins. */
static void test_spec_concurrent_puts_converge(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    int a_low = herd_node_id_of("a") < herd_node_id_of("b");
    herd_node_t *low = a_low ? a : b, *high = a_low ? b : a;

    /* same loop turn: neither has seen the other's */
    assert_int_equal(herd_spec_put(high, "job", "from-high", 9), 0);
    assert_int_equal(herd_spec_put(low, "job", "from-low", 8), 0);
    assert_spec(high, "job", "from-high"); /* read-your-writes */
    assert_spec(low, "job", "from-low");
    WAIT_UNTIL(spec_is(high, "job", "from-low"));
    ts_cluster_run_ms(200);
    assert_spec(a, "job", "from-low");
    assert_spec(b, "job", "from-low");
    assert_int_equal(herd_spec_count(a), 1);
    assert_int_equal(herd_spec_count(b), 1);
    seen_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(herd_spec_foreach(high, collect_spec, &c), 1); /* one name, its winner */
    assert_string_equal(c.values[0], "from-low");

    /* the next put (made where the other entry wins) replaces both */
    assert_int_equal(herd_spec_put(high, "job", "final", 5), 0);
    assert_spec(high, "job", "final");
    WAIT_UNTIL(spec_is(low, "job", "final"));
    ts_cluster_run_ms(200);
    assert_spec(a, "job", "final");
    assert_spec(b, "job", "final");

    /* a put concurrent with a remove: the put wins everywhere */
    assert_int_equal(herd_spec_remove(low, "job"), 0);
    assert_int_equal(herd_spec_put(high, "job", "again", 5), 0);
    assert_true(spec_absent(low, "job"));
    WAIT_UNTIL(spec_is(low, "job", "again"));
    ts_cluster_run_ms(200);
    assert_spec(a, "job", "again");
    assert_spec(b, "job", "again");

    /* removes on both at once: gone everywhere */
    assert_int_equal(herd_spec_remove(low, "job"), 0);
    assert_int_equal(herd_spec_remove(high, "job"), 0);
    ts_cluster_run_ms(200);
    assert_true(spec_absent(a, "job"));
    assert_true(spec_absent(b, "job"));
    assert_int_equal(herd_spec_count(a), 0);
    assert_int_equal(herd_spec_count(b), 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* The watcher: told of local and remote changes, once they are applied; may
 * put a spec from inside the callback (here and when told of a remote
 * change); NULL removes it. */
static void test_spec_watch_local_remote_and_reentrant(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    watch(a, 0);
    watch(b, 1);

    assert_int_equal(herd_spec_put(a, "w1", "v1", 2), 0);
    assert_true(told_count(a, "w1") >= 1); /* local: before the put returns */
    assert_int_equal(told_last(a, "w1")->present, 1);
    assert_string_equal(told_last(a, "w1")->value, "v1");
    WAIT_UNTIL(told_count(b, "w1") >= 1);
    assert_int_equal(told_last(b, "w1")->present, 1);
    assert_string_equal(told_last(b, "w1")->value, "v1");

    size_t ka = told_count(a, "w1"), kb = told_count(b, "w1");
    assert_int_equal(herd_spec_put(b, "w1", "v2", 2), 0); /* replaced elsewhere */
    assert_true(told_count(b, "w1") > kb);
    assert_string_equal(told_last(b, "w1")->value, "v2");
    WAIT_UNTIL(told_count(a, "w1") > ka && spec_is(a, "w1", "v2"));
    assert_string_equal(told_last(a, "w1")->value, "v2");

    ka = told_count(a, "w1");
    kb = told_count(b, "w1");
    assert_int_equal(herd_spec_remove(a, "w1"), 0);
    assert_true(told_count(a, "w1") > ka);
    assert_int_equal(told_last(a, "w1")->present, 0);
    WAIT_UNTIL(told_count(b, "w1") > kb && spec_absent(b, "w1"));
    assert_int_equal(told_last(b, "w1")->present, 0);

    /* a put from inside the callback, for a local change */
    g_wctx[0].trigger = "local-trigger";
    g_wctx[0].derived = "local-derived";
    g_wctx[0].derived_value = "made-by-a";
    assert_int_equal(herd_spec_put(a, "local-trigger", "t", 1), 0);
    assert_int_equal(g_wctx[0].puts, 1);
    assert_int_equal(g_wctx[0].put_rc, 0);
    assert_spec(a, "local-derived", "made-by-a");
    assert_true(told_count(a, "local-derived") >= 1);
    assert_spec(a, "local-trigger", "t");
    WAIT_UNTIL(spec_is(b, "local-derived", "made-by-a") && spec_is(b, "local-trigger", "t"));

    /* ... and for a remote one */
    g_wctx[1].trigger = "remote-trigger";
    g_wctx[1].derived = "remote-derived";
    g_wctx[1].derived_value = "made-by-b";
    assert_int_equal(herd_spec_put(a, "remote-trigger", "t", 1), 0);
    WAIT_UNTIL(g_wctx[1].puts >= 1);
    assert_int_equal(g_wctx[1].put_rc, 0);
    assert_spec(b, "remote-derived", "made-by-b");
    WAIT_UNTIL(spec_is(a, "remote-derived", "made-by-b"));
    assert_true(told_count(a, "remote-derived") >= 1);

    /* NULL removes the watcher */
    assert_int_equal(herd_spec_watch(a, NULL, NULL), 0);
    size_t before = g_ntold;
    assert_int_equal(herd_spec_put(a, "quiet", "q", 1), 0);
    for (size_t i = before; i < g_ntold; i++)
        assert_ptr_not_equal(g_told[i].node, a);
    WAIT_UNTIL(told_count(b, "quiet") >= 1);
    assert_int_equal(told_count(a, "quiet"), 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- the handoff helpers ---------------------------------------------------------------- */

static void test_switch_one_node(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a), q = spawn_srv(a), r = spawn_srv(a);
    herd_meta_t m = meta1("role", "db");
    assert_int_equal(herd_register(a, "svc", p, &m), 0);
    assert_int_equal(herd_register(a, "other", r, NULL), 0);
    uint64_t t0 = time_of(a, "svc");

    /* names the pid does not hold */
    assert_int_equal(herd_registry_switch(a, "svc", q, p), HERD_ENOENT);
    assert_int_equal(herd_registry_switch(a, "other", p, q), HERD_ENOENT);
    assert_int_equal(herd_registry_switch(a, "nope", p, q), HERD_ENOENT);
    assert_int_equal(herd_registry_switch(a, "svc", p, HERD_PID_NONE), HERD_EINVAL);
    assert_int_equal(herd_registry_switch(a, "", p, q), HERD_EINVAL);
    assert_true(resolves_to(a, "svc", p));
    assert_true(resolves_to(a, "other", r));

    assert_int_equal(herd_registry_switch(a, "svc", p, q), 0);
    herd_pid_t got;
    herd_meta_t gm;
    memset(&gm, 0, sizeof(gm));
    assert_int_equal(herd_whereis(a, "svc", &got, &gm), 0);
    assert_pid_eq(got, q);
    assert_int_equal(gm.count, 1);
    assert_string_equal(herd_meta_get(&gm, "role"), "db");
    assert_int_equal(time_of(a, "svc"), t0);
    herd_registry_stats_t st = stats_of(a);
    assert_int_equal(st.names, 2);
    assert_int_equal(st.entries, 2); /* replaced, not added */
    assert_int_equal(herd_registry_switch(a, "svc", p, q), HERD_ENOENT); /* p holds none now */

    /* the old process's exit does not take the name; the new one's does */
    stop_and_wait(a, p, HERD_REASON_HANDOFF);
    assert_true(resolves_to(a, "svc", q));
    assert_int_equal(time_of(a, "svc"), t0);
    assert_int_equal(entries_of(a), 2);
    stop_and_wait(a, q, HERD_REASON_SHUTDOWN);
    assert_true(unknown_on(a, "svc"));
    assert_true(resolves_to(a, "other", r));
    assert_int_equal(entries_of(a), 1);
    ts_node_free(a);
}

/* Across nodes: p on a switched to q on b. b never sees the name missing;
 * every node ends with q, the metadata and the first time; p's exit leaves
 * the name; q's exit (on b) removes it everywhere. */
static void test_switch_across_nodes(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    herd_pid_t p = spawn_srv(a), q = spawn_srv(b);
    herd_meta_t m = meta1("role", "db");
    assert_int_equal(herd_register(a, "svc", p, &m), 0);
    WAIT_UNTIL(resolves_to(b, "svc", p));
    uint64_t t0 = time_of(a, "svc");
    assert_int_equal(time_of(b, "svc"), t0);

    assert_int_equal(herd_registry_switch(a, "svc", p, q), 0);
    assert_true(resolves_to(a, "svc", q));
    /* watch b's view every slice: p, then q, never nothing */
    uint64_t t_start = ts_mono_ms();
    while (!resolves_to(b, "svc", q)) {
        herd_pid_t got;
        int rc = herd_whereis(b, "svc", &got, NULL);
        if (rc != 0)
            fail_msg("b saw 'svc' missing during the switch: %s", herd_strerror(rc));
        assert_true(herd_pid_equal(got, p) || herd_pid_equal(got, q));
        if (ts_mono_ms() - t_start > WAIT_MS)
            fail_msg("b never saw the switch");
        ts_cluster_run_slice(1);
    }
    for (int i = 0; i < 2; i++) {
        herd_meta_t gm;
        herd_pid_t got;
        memset(&gm, 0, sizeof(gm));
        assert_int_equal(herd_whereis(n[i], "svc", &got, &gm), 0);
        assert_pid_eq(got, q);
        assert_string_equal(herd_meta_get(&gm, "role"), "db");
        assert_int_equal(time_of(n[i], "svc"), t0);
        assert_int_equal(entries_of(n[i]), 1);
    }

    stop_and_wait(a, p, HERD_REASON_HANDOFF);
    ts_cluster_run_ms(200);
    assert_true(resolves_to(a, "svc", q));
    assert_true(resolves_to(b, "svc", q));
    assert_int_equal(entries_of(a), 1);
    assert_int_equal(entries_of(b), 1);

    stop_and_wait(b, q, HERD_REASON_SHUTDOWN);
    WAIT_UNTIL(unknown_on(a, "svc") && unknown_on(b, "svc"));
    assert_int_equal(entries_of(a), 0);
    assert_int_equal(entries_of(b), 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* The switch made on another node than the old pid's (here on the new pid's
 * node b) while the old process on a still lives: a must not take the
 * removal of p's entry for a registration that went missing and put it back
 * (herd_unregister tells the pid's node for that reason); the name stays q's
 * on both nodes and nobody is stopped. Waits past REGISTRY_CHECK_MS (2 s), when
 * entries gone missing are put back.
 * Failed when written: herd_registry_switch does not tell the old pid's node
 * to let go of the name (herd_unregister does, SYNC_UNREGISTER), so that node
 * re-registers p ("gone missing") with the same time, and the conflict rule
 * stops one of the two copies (which one depends on the node ids). */
static void test_switch_made_on_the_new_node_while_old_lives(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    herd_pid_t p = spawn_srv(a), q = spawn_srv(b);
    assert_int_equal(herd_register(a, "svc", p, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "svc", p));
    uint64_t t0 = time_of(a, "svc");
    assert_int_equal(herd_registry_switch(b, "svc", p, q), 0);
    WAIT_UNTIL(resolves_to(a, "svc", q));
    ts_cluster_run_ms(2600);
    for (int i = 0; i < 2; i++) {
        herd_registry_stats_t st = stats_of(n[i]);
        if (!resolves_to(n[i], "svc", q) || st.entries != 1 || st.reregistered != 0)
            fail_msg("node %s after 2.6 s: 'svc' %s q, %llu entries, %llu re-registered, "
                     "%llu conflicts resolved, p %s, q %s",
                     herd_node_name(n[i]), resolves_to(n[i], "svc", q) ? "is" : "is not",
                     (unsigned long long)st.entries, (unsigned long long)st.reregistered,
                     (unsigned long long)st.conflicts_resolved,
                     herd_is_alive(a, p) ? "alive" : "stopped",
                     herd_is_alive(b, q) ? "alive" : "stopped");
        assert_int_equal(time_of(n[i], "svc"), t0);
    }
    assert_int_equal(herd_is_alive(a, p), 1);
    assert_int_equal(herd_is_alive(b, q), 1);
    ts_node_free(b);
    ts_node_free(a);
}

/* herd_register_at keeps the time given; new metadata for the same pid keeps
 * it too; otherwise as herd_register. */
static void test_register_at_keeps_time(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a), q = spawn_srv(a), dead = spawn_srv(a);
    uint64_t at = herd_node_hlc_now(a) - ((uint64_t)3600000 << 16); /* an hour ago */
    herd_meta_t m = meta1("v", "1");
    assert_int_equal(herd_register_at(a, "x", p, &m, at), 0);
    assert_true(resolves_to(a, "x", p));
    assert_int_equal(time_of(a, "x"), at);
    herd_meta_t m2 = meta1("v", "2");
    assert_int_equal(herd_register(a, "x", p, &m2), 0); /* same pid: metadata only */
    assert_int_equal(time_of(a, "x"), at);
    assert_int_equal(herd_register_at(a, "x", q, NULL, at - 1), HERD_EEXIST);
    assert_true(resolves_to(a, "x", p));
    stop_and_wait(a, dead, HERD_REASON_SHUTDOWN);
    assert_int_equal(herd_register_at(a, "y", dead, NULL, at), HERD_ENOPROC);
    assert_int_equal(herd_register_at(a, "", p, NULL, at), HERD_EINVAL);
    assert_int_equal(herd_register_at(a, "y", HERD_PID_NONE, NULL, at), HERD_EINVAL);
    uint64_t t;
    assert_int_equal(herd_registry_time(a, "y", &t), HERD_ENOENT);
    ts_node_free(a);
}

/* A conflict: `late` registers first (real order) with the current time on the
 * node the id tie-break would pick; `early` registers after it, in the same
 * loop turn on the other node, with an earlier given time. Every node picks
 * the earlier time; the loser is stopped with HERD_REASON_NAME_CONFLICT. */
static void test_register_at_earlier_time_wins_conflict(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    int a_high = herd_node_id_of("a") > herd_node_id_of("b");
    herd_node_t *early = a_high ? a : b, *late = a_high ? b : a; /* early: the higher id */
    herd_pid_t pe = spawn_srv(early), pl = spawn_srv(late);
    assert_int_equal(herd_register(late, "x", pl, NULL), 0);
    uint64_t t_late = time_of(late, "x");
    uint64_t at = t_late - ((uint64_t)60000 << 16); /* a minute earlier */
    assert_int_equal(herd_register_at(early, "x", pe, NULL, at), 0); /* cannot see late's */
    assert_int_equal(time_of(early, "x"), at);

    WAIT_UNTIL(exit_reason(pl) != -1000);
    assert_int_equal(exit_reason(pl), HERD_REASON_NAME_CONFLICT);
    WAIT_UNTIL(resolves_to(a, "x", pe) && resolves_to(b, "x", pe));
    WAIT_UNTIL(entries_of(a) == 1 && entries_of(b) == 1);
    ts_cluster_run_ms(200);
    for (int i = 0; i < 2; i++) {
        assert_true(resolves_to(n[i], "x", pe));
        assert_int_equal(time_of(n[i], "x"), at);
        assert_int_equal(stats_of(n[i]).conflicts_resolved, n[i] == late ? 1 : 0);
    }
    assert_int_equal(herd_is_alive(early, pe), 1);
    assert_int_equal(exit_reason(pe), -1000);
    ts_node_free(b);
    ts_node_free(a);
}

/* A claim adds the pid's own entry with the given stamp and supersedes no
 * other holder: an older stamp then wins the conflict (the other holder is
 * stopped), a newer one loses; a pid that holds the name already changes
 * nothing. Bad input: a dead or remote pid, time 0, a bad name. */
static void test_register_claim_judged_by_the_conflict_rule(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a), q = spawn_srv(a), r = spawn_srv(a), dead = spawn_srv(a);
    assert_int_equal(herd_register(a, "x", p, NULL), 0);
    uint64_t t0 = time_of(a, "x");
    assert_int_equal(herd_register_claim(a, "x", p, NULL, t0 + 5, 0), 0); /* p holds it */
    assert_int_equal(time_of(a, "x"), t0);
    assert_int_equal(stats_of(a).claimed, 0);

    assert_int_equal(herd_register_claim(a, "x", r, NULL, t0 + 5, 0), 0); /* newer: loses */
    WAIT_UNTIL(exit_reason(r) != -1000);
    assert_int_equal(exit_reason(r), HERD_REASON_NAME_CONFLICT);
    assert_true(resolves_to(a, "x", p));

    assert_int_equal(herd_register_claim(a, "x", q, NULL, t0 - 1, 0), 0); /* older: wins */
    WAIT_UNTIL(exit_reason(p) != -1000);
    assert_int_equal(exit_reason(p), HERD_REASON_NAME_CONFLICT);
    assert_true(resolves_to(a, "x", q));
    assert_int_equal(time_of(a, "x"), t0 - 1);
    assert_int_equal(stats_of(a).claimed, 2);

    stop_and_wait(a, dead, HERD_REASON_SHUTDOWN);
    herd_pid_t remote = {herd_node_id_of("elsewhere"), 1, 1};
    assert_int_equal(herd_register_claim(a, "y", dead, NULL, t0, 0), HERD_ENOPROC);
    assert_int_equal(herd_register_claim(a, "y", remote, NULL, t0, 0), HERD_ENOPROC);
    assert_int_equal(herd_register_claim(a, "y", q, NULL, 0, 0), HERD_EINVAL);
    assert_int_equal(herd_register_claim(a, "", q, NULL, t0, 0), HERD_EINVAL);
    assert_true(unknown_on(a, "y"));
    ts_node_free(a);
}

/* a and b cannot hear each other; c hears both, so it sees both
 * registrations of "x" (a conflict a and b cannot settle yet). An
 * unregister on c removes the winner's registration only: the other live
 * process keeps its name, and c now finds it.
 * Failed when written: herd_unregister removed every visible entry, so q
 * ran on without a name. */
static void test_unregister_in_conflict_removes_only_the_winner(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(3, &CALM, n);
    herd_node_t *a = n[0], *b = n[1], *c = n[2];
    assert_int_equal(herd_cluster_block(a, herd_node_id_of("b"), 1), 0);
    assert_int_equal(herd_cluster_block(b, herd_node_id_of("a"), 1), 0);
    herd_pid_t p = spawn_srv(a), q = spawn_srv(b);
    assert_int_equal(herd_register(a, "x", p, NULL), 0);
    ts_cluster_run_ms(5);
    assert_int_equal(herd_register(b, "x", q, NULL), 0); /* later: p wins */
    WAIT_UNTIL(stats_of(c).entries == 2 && resolves_to(c, "x", p));
    assert_int_equal(herd_unregister(c, "x"), 0);
    assert_true(resolves_to(c, "x", q));
    WAIT_UNTIL(unknown_on(a, "x"));
    ts_cluster_run_ms(300);
    assert_true(resolves_to(c, "x", q));
    assert_true(resolves_to(b, "x", q));
    assert_int_equal(herd_is_alive(b, q), 1);
    assert_int_equal(herd_is_alive(a, p), 1); /* it let go of the name, nothing more */
    assert_int_equal(herd_registry_owns(a, "x", p), 0); /* let go of, from c */
    assert_int_equal(herd_registry_owns(b, "x", q), 1);
    assert_int_equal(herd_unregister_pid(c, "x", p), HERD_ENOENT);
    assert_int_equal(herd_unregister_pid(c, "x", HERD_PID_NONE), HERD_EINVAL);
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

/* b unregisters p's registration of "x" while a (p's node) cannot hear b;
 * meanwhile p lets go of the name and registers it again (a new
 * registration, a new time). When b's message finally arrives it names the
 * old registration: the new one stays, everywhere, past the check period.
 * Failed when written: the late message removed every entry of p under "x". */
static void test_late_unregister_keeps_a_newer_registration(void **state)
{
    (void)state;
    herd_node_t *n[3];
    form(2, &CALM, n);
    herd_node_t *a = n[0], *b = n[1];
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "x", p, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "x", p));
    assert_int_equal(herd_cluster_block(a, herd_node_id_of("b"), 1), 0);
    assert_int_equal(herd_unregister(b, "x"), 0);
    assert_int_equal(herd_unregister(a, "x"), 0);
    ts_cluster_run_ms(5);
    assert_int_equal(herd_register(a, "x", p, NULL), 0);
    uint64_t t1 = time_of(a, "x");
    assert_int_equal(herd_cluster_block(a, herd_node_id_of("b"), 0), 0);
    WAIT_UNTIL(resolves_to(b, "x", p));
    ts_cluster_run_ms(2600); /* past REGISTRY_CHECK_MS */
    for (int i = 0; i < 2; i++) {
        assert_true(resolves_to(n[i], "x", p));
        assert_int_equal(time_of(n[i], "x"), t1);
    }
    ts_node_free(b);
    ts_node_free(a);
}

int main(void)
{
    ts_cluster_init("test_registry_spec", SECRET);
    if (getenv("HERD_TEST_LOG") == NULL)
        herd_log_set_level(HERD_LOG_WARN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_spec_put_get_replace_remove),
        T(test_spec_foreach_slice_visits_each_once),
        T(test_spec_bad_input_einval),
        T(test_spec_not_names),
        T(test_spec_replicates_and_reaches_a_late_joiner),
        T(test_spec_writer_down_specs_stay),
        T(test_spec_concurrent_puts_converge),
        T(test_spec_relay_takes_in_an_unseen_write_once),
        T(test_spec_relay_reaches_the_members),
        T(test_spec_watch_local_remote_and_reentrant),
        T(test_switch_one_node),
        T(test_switch_across_nodes),
        T(test_switch_made_on_the_new_node_while_old_lives),
        T(test_register_at_keeps_time),
        T(test_register_at_earlier_time_wins_conflict),
        T(test_register_claim_judged_by_the_conflict_rule),
        T(test_unregister_in_conflict_removes_only_the_winner),
        T(test_late_unregister_keeps_a_newer_registration),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
