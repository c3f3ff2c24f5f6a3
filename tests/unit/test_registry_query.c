/*
 * test_registry_query.c - the registry's queries and the spawn that
 * registers in one step (registry/herd_registry.h, issue 15):
 *
 * - herd_registry_select visits the names whose metadata holds every pair
 *   asked (none: all), and none when nothing matches; a bad `where` is
 *   refused;
 * - herd_registry_names_of / count_of give the names a pid holds, for a
 *   local pid from the pid index and for another node's pid by a pass, and
 *   never a key that is no name: a child spec, or a key filed under a
 *   control byte (as process groups are) even when the pid index holds it;
 * - herd_spawn_named runs the process only when it got the name: a free
 *   name gives a registered, running process whose init already finds
 *   itself under the name; a taken or bad name leaves no trace (no init,
 *   no process, no exit hook, no exit signal to a linked process); a
 *   failing init takes the name with it;
 * - the runtime's two-step spawn under it: what reaches a prepared process
 *   waits for its init, a discarded one that something reached exits as a
 *   failed init, one stopped before it started never runs init.
 *
 * One node per test, but for names_of of a remote pid: two clustered nodes
 * on one loop over tcp loopback (support.h), as test_registry.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_registry.h"
#include "log.h"
#include "registry_int.h" /* a key of another kind, filed as process groups will be */
#include "registry_layers.h"
#include "support.h"

#define SECRET "test-registry-query-secret-0123456"
#define WAIT_MS 15000u
#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

static const ts_timing_t CALM = {100, 1500, 3000, 60000};

/* ---- what the processes did ---------------------------------------------------------- */

static struct {
    int inits, terminates, casts, exits_seen, downs_seen, hooks;
    int init_found_itself; /* whereis of the name given as arg named the process in init */
    int init_fail;         /* init fails with this (0: succeeds) */
} ev;

static int rec_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    *state = NULL;
    ev.inits++;
    if (len > 0 && len <= HERD_NAME_MAX) {
        char name[HERD_NAME_MAX + 1];
        memcpy(name, arg, len);
        name[len] = '\0';
        herd_pid_t p;
        if (herd_whereis(herd_proc_node(self), name, &p, NULL) == 0 &&
            herd_pid_equal(p, herd_self(self)))
            ev.init_found_itself++;
    }
    return ev.init_fail;
}

static int rec_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    ev.casts++;
    return 0;
}

static void rec_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    (void)state;
    (void)reason;
    ev.terminates++;
}

static const herd_behaviour_t rec = {.name = "rec", .init = rec_init, .handle_cast = rec_cast,
                                     .terminate = rec_terminate};

/* Traps exits; counts the exit signals and DOWNs it gets. */
static int trap_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)arg;
    (void)len;
    *state = NULL;
    herd_set_trap_exit(self, 1);
    return 0;
}

static int trap_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    (void)state;
    if (msg->kind == HERD_MSG_EXIT)
        ev.exits_seen++;
    else if (msg->kind == HERD_MSG_DOWN)
        ev.downs_seen++;
    return 0;
}

static const herd_behaviour_t trap = {.name = "trap", .init = trap_init,
                                      .handle_info = trap_info};

static void on_exit_hook(void *data, herd_pid_t pid, int reason)
{
    (void)data;
    (void)pid;
    (void)reason;
    ev.hooks++;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static herd_node_t *solo_node(const char *name)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop};
    herd_node_t *n = ts_cluster_add(&cfg);
    assert_int_equal(herd_registry_start(n), 0);
    assert_int_equal(herd_node_on_exit(n, on_exit_hook, NULL), 0);
    return n;
}

static herd_node_t *cluster_node(const char *name, herd_node_t *const *seeds, size_t nseeds)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop};
    herd_node_t *n = ts_cluster_add(&cfg);
    ts_cluster_join(n, &CALM, seeds, nseeds);
    assert_int_equal(herd_registry_start(n), 0);
    return n;
}

static herd_pid_t spawn_rec(herd_node_t *n)
{
    return ts_spawn(n, &rec, NULL, 0);
}

static herd_meta_t meta2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    herd_meta_t m;
    memset(&m, 0, sizeof(m));
    if (k1)
        assert_int_equal(herd_meta_set(&m, k1, v1), 0);
    if (k2)
        assert_int_equal(herd_meta_set(&m, k2, v2), 0);
    return m;
}

static void reg(herd_node_t *n, const char *name, herd_pid_t pid, herd_meta_t m)
{
    assert_int_equal(herd_register(n, name, pid, &m), 0);
}

/* What a query visited: names (sorted when asked), pids, and when to stop. */
#define SEEN_MAX 64
typedef struct seen {
    int calls, stop_after;
    char names[SEEN_MAX][HERD_NAME_MAX + 1];
    herd_pid_t pids[SEEN_MAX];
    char zone[SEEN_MAX][HERD_META_VALUE_MAX + 1];
} seen_t;

static int see(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    seen_t *s = data;
    if (s->calls < SEEN_MAX) {
        snprintf(s->names[s->calls], sizeof(s->names[0]), "%s", name);
        s->pids[s->calls] = pid;
        const char *z = herd_meta_get(meta, "zone");
        snprintf(s->zone[s->calls], sizeof(s->zone[0]), "%s", z ? z : "");
    }
    s->calls++;
    return s->stop_after && s->calls >= s->stop_after;
}

static int seen_has(const seen_t *s, const char *name)
{
    for (int i = 0; i < s->calls && i < SEEN_MAX; i++)
        if (strcmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

/* Select with `where` and check that exactly `want` (NULL-terminated) came. */
static void expect_select(herd_node_t *n, const herd_meta_t *where, const char *const *want)
{
    seen_t s;
    memset(&s, 0, sizeof(s));
    int k = 0;
    while (want[k])
        k++;
    assert_int_equal(herd_registry_select(n, where, see, &s), k);
    assert_int_equal(s.calls, k);
    for (int i = 0; i < k; i++)
        if (!seen_has(&s, want[i]))
            fail_msg("select did not visit '%s'", want[i]);
    assert_int_equal(herd_registry_select(n, where, NULL, NULL), k); /* counting alone */
}

#define SELECT(n, where, ...) expect_select((n), (where), (const char *const[]){__VA_ARGS__, NULL})
#define SELECT_NONE(n, where) expect_select((n), (where), (const char *const[]){NULL})

static int setup(void **state)
{
    memset(&ev, 0, sizeof(ev));
    return ts_cluster_setup(state);
}

/* ---- select ------------------------------------------------------------------------------ */

static void test_registry_query_select_by_pairs(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p1 = spawn_rec(a), p2 = spawn_rec(a), p3 = spawn_rec(a);
    reg(a, "web-1", p1, meta2("zone", "eu", "role", "web"));
    reg(a, "web-2", p2, meta2("zone", "us", "role", "web"));
    reg(a, "db-1", p3, meta2("zone", "eu", "role", "db"));
    reg(a, "bare", p3, meta2(NULL, NULL, NULL, NULL));
    reg(a, "web-1-alias", p1, meta2("role", "web", NULL, NULL));

    /* no pairs: every name, NULL or empty */
    SELECT(a, NULL, "web-1", "web-2", "db-1", "bare", "web-1-alias");
    herd_meta_t none = meta2(NULL, NULL, NULL, NULL);
    SELECT(a, &none, "web-1", "web-2", "db-1", "bare", "web-1-alias");

    /* one pair */
    herd_meta_t eu = meta2("zone", "eu", NULL, NULL);
    SELECT(a, &eu, "web-1", "db-1");
    herd_meta_t web = meta2("role", "web", NULL, NULL);
    SELECT(a, &web, "web-1", "web-2", "web-1-alias");

    /* two pairs: both must hold, in either order */
    herd_meta_t eu_web = meta2("zone", "eu", "role", "web");
    SELECT(a, &eu_web, "web-1");
    herd_meta_t web_us = meta2("role", "web", "zone", "us");
    SELECT(a, &web_us, "web-2");

    /* no match: an unknown value, an unknown key, a value that is only a
     * prefix or case apart, two pairs that each match elsewhere */
    herd_meta_t asia = meta2("zone", "asia", NULL, NULL);
    SELECT_NONE(a, &asia);
    herd_meta_t rack = meta2("rack", "1", NULL, NULL);
    SELECT_NONE(a, &rack);
    herd_meta_t e = meta2("zone", "e", NULL, NULL);
    SELECT_NONE(a, &e);
    herd_meta_t EU = meta2("zone", "EU", NULL, NULL);
    SELECT_NONE(a, &EU);
    herd_meta_t us_db = meta2("zone", "us", "role", "db");
    SELECT_NONE(a, &us_db);

    /* what fn is given: the winner's pid and metadata */
    seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(herd_registry_select(a, &eu_web, see, &s), 1);
    ts_assert_pid_eq(s.pids[0], p1);
    assert_string_equal(s.zone[0], "eu");

    /* fn stops the pass; the count includes the one it stopped at */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    assert_int_equal(herd_registry_select(a, &web, see, &s), 2);
    assert_int_equal(s.calls, 2);

    /* metadata changes and exits are seen at once */
    herd_meta_t moved = meta2("zone", "us", "role", "db");
    assert_int_equal(herd_update_meta(a, "db-1", &moved), 0);
    SELECT(a, &eu, "web-1");
    SELECT(a, &us_db, "db-1");
    assert_int_equal(herd_stop(a, p2, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(herd_registry_count(a, NULL) == 4);
    SELECT(a, &web, "web-1", "web-1-alias");

    /* bad where, no registry */
    herd_meta_t over = eu;
    over.count = HERD_META_MAX + 1;
    assert_int_equal(herd_registry_select(a, &over, see, &s), HERD_EINVAL);
    herd_node_config_t cfg = {.name = "bare", .loop = &ts_loop};
    herd_node_t *b = ts_cluster_add(&cfg);
    assert_int_equal(herd_registry_select(b, NULL, see, &s), HERD_ENOENT);
    assert_int_equal(herd_registry_names_of(b, p1, see, &s), HERD_ENOENT);
    assert_int_equal(herd_registry_count_of(b, p1), HERD_ENOENT);
    herd_pid_t pb;
    herd_spawn_opts_t o = {.behaviour = &rec};
    assert_int_equal(herd_spawn_named(b, "x", NULL, &o, &pb), HERD_ENOENT);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_registry_query_meta_holds(void **state)
{
    (void)state;
    herd_meta_t m = meta2("zone", "eu", "role", "web");
    herd_meta_t w = meta2(NULL, NULL, NULL, NULL);
    assert_int_equal(herd_meta_holds(&m, NULL), 1);
    assert_int_equal(herd_meta_holds(&m, &w), 1);
    assert_int_equal(herd_meta_holds(NULL, &w), 1);
    w = meta2("role", "web", NULL, NULL);
    assert_int_equal(herd_meta_holds(&m, &w), 1);
    assert_int_equal(herd_meta_holds(NULL, &w), 0);
    w = meta2("role", "web", "zone", "eu");
    assert_int_equal(herd_meta_holds(&m, &w), 1);
    w = meta2("role", "web", "zone", "us");
    assert_int_equal(herd_meta_holds(&m, &w), 0);
    herd_meta_t empty_value = meta2("note", "", NULL, NULL);
    w = meta2("note", "", NULL, NULL);
    assert_int_equal(herd_meta_holds(&empty_value, &w), 1);
    assert_int_equal(herd_meta_holds(&m, &w), 0); /* absent is not empty */
}

/* ---- names_of and count_of --------------------------------------------------------------- */

static void test_registry_query_names_of_local_pid(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p1 = spawn_rec(a), p2 = spawn_rec(a), idle = spawn_rec(a);
    const char *mine[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        reg(a, mine[i], p1, meta2("zone", "eu", NULL, NULL));
    reg(a, "other", p2, meta2(NULL, NULL, NULL, NULL));
    /* many other processes' names: none of them is looked at */
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "filler-%d", i);
        reg(a, name, p2, meta2(NULL, NULL, NULL, NULL));
    }

    seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(herd_registry_names_of(a, p1, see, &s), 3);
    assert_int_equal(s.calls, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(seen_has(&s, mine[i]));
        ts_assert_pid_eq(s.pids[i], p1);
        assert_string_equal(s.zone[i], "eu");
    }
    assert_int_equal(herd_registry_count_of(a, p1), 3);
    assert_int_equal(herd_registry_count_of(a, p2), 201);
    assert_int_equal(herd_registry_count_of(a, idle), 0);

    /* fn stops it */
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(herd_registry_names_of(a, p1, see, &s), 1);
    assert_int_equal(s.calls, 1);

    /* unregister, a name taken over after its holder's exit, an exit */
    assert_int_equal(herd_unregister(a, "two"), 0);
    assert_int_equal(herd_registry_count_of(a, p1), 2);
    memset(&s, 0, sizeof(s));
    assert_int_equal(herd_registry_names_of(a, p1, see, &s), 2);
    assert_false(seen_has(&s, "two"));
    assert_int_equal(herd_stop(a, p1, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(herd_registry_count(a, NULL) == 201);
    assert_int_equal(herd_registry_count_of(a, p1), 0);

    /* bad pids: none, an earlier start's, a pid never spawned */
    assert_int_equal(herd_registry_names_of(a, HERD_PID_NONE, see, &s), HERD_EINVAL);
    herd_pid_t old = p2;
    old.incarnation--;
    assert_int_equal(herd_registry_count_of(a, old), 0);
    herd_pid_t never = p2;
    never.serial += 1000;
    assert_int_equal(herd_registry_count_of(a, never), 0);
    ts_node_free(a);
}

static void test_registry_query_names_of_remote_pid(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", NULL, 0);
    herd_node_t *b = cluster_node("b", &a, 1);
    herd_node_t *both[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(both, 2));
    herd_pid_t pb = spawn_rec(b), qb = spawn_rec(b), pa = spawn_rec(a);
    reg(b, "b-x", pb, meta2("zone", "eu", NULL, NULL));
    reg(b, "b-y", pb, meta2("zone", "us", NULL, NULL));
    reg(b, "b-q", qb, meta2(NULL, NULL, NULL, NULL));
    reg(a, "a-x", pa, meta2("zone", "eu", NULL, NULL));
    WAIT_UNTIL(herd_registry_count(a, NULL) == 4 && herd_registry_count(b, NULL) == 4);

    /* on a, b's pid: a pass over the names */
    seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(herd_registry_names_of(a, pb, see, &s), 2);
    assert_true(seen_has(&s, "b-x") && seen_has(&s, "b-y"));
    assert_int_equal(herd_registry_count_of(a, qb), 1);
    /* on b, a's pid; and each node's own, from its index */
    assert_int_equal(herd_registry_count_of(b, pa), 1);
    assert_int_equal(herd_registry_count_of(b, pb), 2);
    assert_int_equal(herd_registry_count_of(a, pa), 1);

    /* select sees the other node's names with their metadata */
    herd_meta_t eu = meta2("zone", "eu", NULL, NULL);
    SELECT(a, &eu, "b-x", "a-x");
    SELECT(b, &eu, "b-x", "a-x");

    /* an unregister on b reaches a's pass */
    assert_int_equal(herd_unregister(b, "b-y"), 0);
    WAIT_UNTIL(herd_registry_count_of(a, pb) == 1);
    ts_node_free(b);
    ts_node_free(a);
}

static int never_called(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)data;
    (void)pid;
    (void)meta;
    fail_msg("visited a key that is no name: '\\x%02x%s'", (unsigned char)name[0], name + 1);
    return 1;
}

/* Child specs, and keys of other kinds filed under a control byte (as
 * process groups are, '\x02'), are never names: not even when their value
 * reads as a registration of the pid and the pid index holds them. */
static void test_registry_query_skips_keys_that_are_no_names(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_rec(a);
    assert_int_equal(herd_spec_put(a, "svc", "spec-bytes", 10), 0);
    assert_int_equal(herd_spec_put(a, "other", "spec", 4), 0);
    reg(a, "svc", p, meta2("zone", "eu", NULL, NULL));

    /* a key under '\x02' whose value is a registration of p, indexed for p */
    registry_t *g = reg_of(a);
    herd_meta_t eu = meta2("zone", "eu", NULL, NULL);
    reg_value_t v = {p, herd_node_hlc_now(a), 0, 0};
    size_t vlen;
    uint8_t *value = reg_value_encode(g, &v, &eu, &vlen);
    assert_non_null(value);
    const char group_key[] = "\x02" "grp";
    assert_int_equal(reg_local_change(g, group_key, value, vlen, NULL, 0, 1), 0);
    free(value);
    assert_true(pidx_has(&g->by_pid, p.serial, awmap_key_hash(group_key, strlen(group_key))));

    seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(herd_registry_names_of(a, p, see, &s), 1);
    assert_string_equal(s.names[0], "svc");
    assert_int_equal(herd_registry_count_of(a, p), 1);
    SELECT(a, NULL, "svc");
    SELECT(a, &eu, "svc");

    /* without the name, nothing at all */
    assert_int_equal(herd_unregister(a, "svc"), 0);
    assert_int_equal(herd_registry_names_of(a, p, never_called, NULL), 0);
    assert_int_equal(herd_registry_select(a, NULL, never_called, NULL), 0);
    assert_int_equal(herd_registry_select(a, &eu, never_called, NULL), 0);
    assert_int_equal(herd_spec_count(a), 2);
    ts_node_free(a);
}

/* ---- spawn_named ------------------------------------------------------------------------- */

static void test_registry_query_spawn_named_free_name(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    size_t procs = herd_node_process_count(a);
    herd_meta_t m = meta2("zone", "eu", NULL, NULL);
    herd_spawn_opts_t o = {.behaviour = &rec, .arg = "svc-1", .arg_len = 5};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn_named(a, "svc-1", &m, &o, &p), 0);
    assert_false(herd_pid_is_none(p));
    assert_int_equal(ev.inits, 1);
    assert_int_equal(ev.init_found_itself, 1); /* registered before its init ran */
    assert_int_equal(herd_node_process_count(a), procs + 1);
    assert_true(ts_alive(a, p));
    herd_pid_t got;
    herd_meta_t gm;
    assert_int_equal(herd_whereis(a, "svc-1", &got, &gm), 0);
    ts_assert_pid_eq(got, p);
    assert_string_equal(herd_meta_get(&gm, "zone"), "eu");
    assert_int_equal(herd_registry_count_of(a, p), 1);

    /* it runs: a cast by name reaches it */
    assert_int_equal(herd_node_cast_name(a, "svc-1", "hi", 2), 0);
    WAIT_UNTIL(ev.casts == 1);

    /* its exit takes the name, as any registration */
    assert_int_equal(herd_stop(a, p, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(ev.terminates == 1);
    assert_int_equal(herd_whereis(a, "svc-1", NULL, NULL), HERD_ENOENT);

    /* out may be NULL; meta may be NULL */
    assert_int_equal(herd_spawn_named(a, "svc-2", NULL, &o, NULL), 0);
    assert_int_equal(herd_whereis(a, "svc-2", &got, &gm), 0);
    assert_int_equal(gm.count, 0);
    ts_node_free(a);
}

static void test_registry_query_spawn_named_taken_name_runs_nothing(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t holder = spawn_rec(a);
    reg(a, "taken", holder, meta2(NULL, NULL, NULL, NULL));
    herd_pid_t watcher = ts_spawn(a, &trap, NULL, 0);
    ts_run_for(a, 20);
    memset(&ev, 0, sizeof(ev));
    size_t procs = herd_node_process_count(a);
    herd_registry_stats_t before;
    assert_int_equal(herd_registry_stats(a, &before), 0);

    /* linked to a watcher that traps exits: any exit would reach it */
    herd_spawn_opts_t o = {.behaviour = &rec, .link = watcher};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn_named(a, "taken", NULL, &o, &p), HERD_EEXIST);
    assert_true(herd_pid_is_none(p)); /* out untouched */
    assert_int_equal(herd_node_process_count(a), procs);
    ts_run_for(a, 50);
    assert_int_equal(ev.inits, 0);
    assert_int_equal(ev.terminates, 0);
    assert_int_equal(ev.hooks, 0);
    assert_int_equal(ev.exits_seen, 0);
    assert_int_equal(herd_node_process_count(a), procs);
    herd_pid_t got;
    assert_int_equal(herd_whereis(a, "taken", &got, NULL), 0);
    ts_assert_pid_eq(got, holder);
    herd_registry_stats_t after;
    assert_int_equal(herd_registry_stats(a, &after), 0);
    assert_int_equal(after.entries, before.entries);

    /* the same with the holder alive on its way: the name is free once its
     * exit is decided, as for herd_register */
    assert_int_equal(herd_stop(a, holder, HERD_REASON_SHUTDOWN), 0);
    assert_int_equal(herd_spawn_named(a, "taken", NULL, &o, &p), 0);
    assert_int_equal(herd_whereis(a, "taken", &got, NULL), 0);
    ts_assert_pid_eq(got, p);
    assert_int_equal(ev.inits, 1);
    ts_node_free(a);
}

static void test_registry_query_spawn_named_bad_input_runs_nothing(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    size_t procs = herd_node_process_count(a);
    herd_spawn_opts_t o = {.behaviour = &rec};
    char longname[HERD_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *bad[] = {NULL, "", longname, "\x01spec", "\x02group", "\x1f", "\ttab"};
    herd_pid_t p = HERD_PID_NONE;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (herd_spawn_named(a, bad[i], NULL, &o, &p) != HERD_EINVAL)
            fail_msg("bad name %zu was not refused", i);
    herd_meta_t over = meta2("k", "v", NULL, NULL);
    over.count = HERD_META_MAX + 1;
    assert_int_equal(herd_spawn_named(a, "ok", &over, &o, &p), HERD_EINVAL);
    assert_int_equal(herd_spawn_named(a, "ok", NULL, NULL, &p), HERD_EINVAL);
    herd_spawn_opts_t nobeh = {0};
    assert_int_equal(herd_spawn_named(a, "ok", NULL, &nobeh, &p), HERD_EINVAL);
    /* a dead link target: no process, and the name stays free */
    herd_pid_t gone = spawn_rec(a);
    assert_int_equal(herd_stop(a, gone, HERD_REASON_SHUTDOWN), 0);
    ts_run_for(a, 20);
    procs = herd_node_process_count(a);
    memset(&ev, 0, sizeof(ev));
    herd_spawn_opts_t dead_link = {.behaviour = &rec, .link = gone};
    assert_int_equal(herd_spawn_named(a, "ok", NULL, &dead_link, &p), HERD_ENOPROC);
    assert_int_equal(herd_whereis(a, "ok", NULL, NULL), HERD_ENOENT);
    ts_run_for(a, 20);
    assert_true(herd_pid_is_none(p));
    assert_int_equal(ev.inits, 0);
    assert_int_equal(ev.hooks, 0);
    assert_int_equal(herd_node_process_count(a), procs);
    assert_int_equal(herd_registry_count(a, NULL), 0);
    ts_node_free(a);
}

/* An init that fails: herd_spawn's error, and the name is free again. */
static void test_registry_query_spawn_named_failed_init_frees_the_name(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    size_t procs = herd_node_process_count(a);
    ev.init_fail = HERD_ERANGE;
    herd_spawn_opts_t o = {.behaviour = &rec, .arg = "n", .arg_len = 1};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn_named(a, "n", NULL, &o, &p), HERD_ERANGE);
    assert_true(herd_pid_is_none(p));
    assert_int_equal(ev.init_found_itself, 1);
    assert_int_equal(ev.terminates, 0); /* not after a failed init */
    assert_int_equal(herd_whereis(a, "n", NULL, NULL), HERD_ENOENT);
    assert_int_equal(herd_node_process_count(a), procs);
    ev.init_fail = 0;
    assert_int_equal(herd_spawn_named(a, "n", NULL, &o, &p), 0);
    assert_int_equal(herd_registry_count_of(a, p), 1);
    ts_node_free(a);
}

/* ---- the runtime's two steps -------------------------------------------------------------- */

static void test_registry_query_prepared_process_waits_for_its_init(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_spawn_opts_t o = {.behaviour = &rec};
    herd_pid_t p;
    assert_int_equal(herd_spawn_prepare(a, &o, &p), 0);
    assert_true(ts_alive(a, p));
    assert_int_equal(herd_node_cast(a, p, "early", 5), 0);
    ts_run_for(a, 20);
    assert_int_equal(ev.casts, 0); /* nothing runs before init */
    assert_int_equal(ev.inits, 0);
    herd_spawn_opts_t other = {.behaviour = &trap};
    assert_int_equal(herd_spawn_start(a, p, &other), HERD_EINVAL);
    assert_int_equal(herd_spawn_start(a, p, &o), 0);
    assert_int_equal(ev.inits, 1);
    WAIT_UNTIL(ev.casts == 1);
    assert_int_equal(herd_spawn_start(a, p, &o), HERD_ENOPROC); /* started already */
    assert_int_equal(herd_spawn_discard(a, p, HERD_REASON_SHUTDOWN), HERD_ENOPROC);

    /* discarded after a message reached it: it exits (no terminate, no init) */
    assert_int_equal(herd_spawn_prepare(a, &o, &p), 0);
    int hooks = ev.hooks;
    assert_int_equal(herd_spawn_discard(a, p, HERD_REASON_SHUTDOWN), 0); /* untouched: silent */
    assert_int_equal(ev.hooks, hooks);
    assert_int_equal(herd_spawn_prepare(a, &o, &p), 0);
    assert_int_equal(herd_node_cast(a, p, "x", 1), 0);
    assert_int_equal(herd_spawn_discard(a, p, HERD_REASON_SHUTDOWN), 1);
    assert_int_equal(ev.hooks, hooks + 1);
    assert_false(ts_alive(a, p));
    assert_int_equal(ev.inits, 1);
    assert_int_equal(ev.terminates, 0);

    /* stopped before it started: init never runs */
    assert_int_equal(herd_spawn_prepare(a, &o, &p), 0);
    assert_int_equal(herd_stop(a, p, HERD_REASON_SHUTDOWN), 0);
    ts_run_for(a, 20);
    assert_int_equal(herd_spawn_start(a, p, &o), HERD_ENOPROC);
    assert_int_equal(ev.inits, 1);
    assert_int_equal(ev.terminates, 0);

    /* a prepared process left so is freed with its node without terminate:
     * only the one started above terminates */
    assert_int_equal(herd_spawn_prepare(a, &o, &p), 0);
    ts_node_free(a);
    assert_int_equal(ev.terminates, 1);
}

int main(void)
{
    ts_cluster_init("test_registry_query", SECRET);
    if (getenv("HERD_TEST_LOG") == NULL)
        herd_log_set_level(HERD_LOG_WARN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_query_select_by_pairs),
        T(test_registry_query_meta_holds),
        T(test_registry_query_names_of_local_pid),
        T(test_registry_query_names_of_remote_pid),
        T(test_registry_query_skips_keys_that_are_no_names),
        T(test_registry_query_spawn_named_free_name),
        T(test_registry_query_spawn_named_taken_name_runs_nothing),
        T(test_registry_query_spawn_named_bad_input_runs_nothing),
        T(test_registry_query_spawn_named_failed_init_frees_the_name),
        T(test_registry_query_prepared_process_waits_for_its_init),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
