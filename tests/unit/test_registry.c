/*
 * test_registry.c - unit tests for the global name registry
 * (registry/herd_registry.h): what it promises on one node (register,
 * whereis, unregister, read-your-writes, the error codes, metadata and its
 * limits, names that go with their process, messages by name, listing,
 * stats), and what it promises in a cluster (names visible on every node,
 * calls by name across nodes, unregisters and exits that propagate, the full
 * state sent to a node that joins late, names of a crashed node hidden once
 * it is down and removed once it is gone, and name conflicts settled the same
 * way on every node, the loser stopped with HERD_REASON_NAME_CONFLICT), and
 * that a name with more entries than any fixed array held (joined straight
 * into the map, as many writers at once would leave it) goes whole with its
 * node, its unregister or its process; watchers of new names are each told.
 *
 * Every test makes its nodes in this one process, all on one uv_loop_t
 * (but one: a node on a loop of its own that the test stops driving).
 * Clustered nodes listen on tcp://127.0.0.1 at ports picked at random per run
 * (another port on a bind failure) and share one secret. Every wait has a
 * deadline and runs the loop in small slices; no assertion depends on how
 * fast anything is. Tests where nothing dies use generous failure-detector
 * timings (a slow, sanitized run must not see a live node go down and hide
 * its names); the tests where a node dies use small ones.
 *
 * Conflicts need two live registrations of one name made where they cannot
 * see each other. The public API offers three ways, all deterministic: make
 * the registrations before the loop has run (the nodes have not met yet);
 * start two separate clusters and join them through a third node; or give a
 * node a clock the test jumps forward, so that it declares its peer down
 * (the peer lives on and comes back with the same incarnation) and register
 * from its member hook while the peer is down. The later registration waits
 * until the wall clock has moved on, so the registration times differ; where
 * the test chooses, the earlier one is made on the node with the higher id,
 * so that only the time rule, not the node-id tie-break, can pick it.
 *
 * TEST_REGISTRY_FILTER / TEST_REGISTRY_SKIP (cmocka patterns, e.g.
 * "*conflict*") run or skip some cases.
 *
 * Behaviours: "srv" answers calls ("re:" + the request), records casts and
 * infos, crashes on a cast "crash", records its exit reason; "watch"
 * monitors the pid it is spawned with and records the DOWN; "cli" does the
 * by-name operation a cast from the test tells it and records the result and
 * the replies it gets. Callbacks only record into the global log below; the
 * tests assert on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "herd_events.h"
#include "herd_registry.h"
#include "log.h"
#include "registry_int.h" /* many entries of one name, joined straight into the map */
#include "registry_layers.h"
#include "support.h"

#define SECRET "test-registry-secret-0123456789"
#define WAIT_MS 15000u /* deadline of every wait */
#define LOG_MAX 1024
#define DATA_MAX 64

#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

/* ---- time -------------------------------------------------------------------- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Until the wall clock (what registration times are made of) has moved on by
 * a few milliseconds. */
static void wall_clock_moves_on(void)
{
    uint64_t t0 = wall_ms();
    while (wall_ms() < t0 + 3) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
}

/* ---- nodes ------------------------------------------------------------------- */

/* Generous: a slow (sanitized) run must not see a live node go down. */
static const ts_timing_t CALM = {100, 1500, 3000, 60000};
/* For the tests where a node dies and is forgotten. */
static const ts_timing_t FAST = {50, 150, 300, 2000};
/* A node dies, but only a restart or a leave may make it gone. */
static const ts_timing_t FAST_NO_FORGET = {50, 150, 300, 60000};

/* A node on `loop` (NULL: a loop of its own), not in a cluster, without a
 * registry. */
static herd_node_t *bare_node_on(const char *name, uv_loop_t *loop)
{
    herd_node_config_t cfg = {.name = name, .loop = loop};
    return ts_cluster_add(&cfg);
}

/* A node on the shared loop, not in a cluster, without a registry. */
static herd_node_t *bare_node(const char *name)
{
    return bare_node_on(name, &ts_loop);
}

/* A node with a registry, not in a cluster. */
static herd_node_t *solo_node(const char *name)
{
    herd_node_t *n = bare_node(name);
    assert_int_equal(herd_registry_start(n), 0);
    return n;
}

/* A node with a registry in the test's cluster, joining through `seeds`
 * (none: it starts a cluster of its own). */
static herd_node_t *cluster_node_on(const char *name, uv_loop_t *loop, const ts_timing_t *t,
                                    herd_node_t *const *seeds, size_t nseeds)
{
    herd_node_t *n = bare_node_on(name, loop);
    ts_cluster_join(n, t, seeds, nseeds);
    assert_int_equal(herd_registry_start(n), 0); /* after the cluster, as documented */
    return n;
}

static herd_node_t *cluster_node(const char *name, const ts_timing_t *t, herd_node_t *const *seeds,
                                 size_t nseeds)
{
    return cluster_node_on(name, &ts_loop, t, seeds, nseeds);
}

/* Two or three clustered nodes that see each other up. */
typedef struct trio {
    herd_node_t *n[3];
} trio_t;

static trio_t form(int k, const ts_timing_t *t)
{
    static const char *names[3] = {"a", "b", "c"};
    trio_t x = {{NULL, NULL, NULL}};
    x.n[0] = cluster_node(names[0], t, NULL, 0);
    for (int i = 1; i < k; i++)
        x.n[i] = cluster_node(names[i], t, &x.n[0], 1);
    WAIT_UNTIL(ts_cluster_all_up(x.n, k));
    return x;
}

static void assert_pid_eq(herd_pid_t a, herd_pid_t b)
{
    assert_int_equal(a.node, b.node);
    assert_int_equal(a.incarnation, b.incarnation);
    assert_int_equal(a.serial, b.serial);
}

/* ---- the log ------------------------------------------------------------------- */

enum { EV_EXIT = 1, EV_CAST, EV_INFO, EV_CALL, EV_DOWN, EV_REPLY, EV_CLI, EV_TRAPPED };

typedef struct ev {
    int kind;
    herd_pid_t self; /* the process that recorded it */
    herd_pid_t from;
    int status; /* EXIT, DOWN: the reason; REPLY: its status; CLI: what the call returned */
    uint64_t ref;
    size_t len;
    char data[DATA_MAX + 1];
} ev_t;

static ev_t g_ev[LOG_MAX];
static size_t g_nev;

static void ev_add(int kind, herd_pid_t self, herd_pid_t from, int status, uint64_t ref,
                   const void *data, size_t len)
{
    if (g_nev >= LOG_MAX)
        return;
    ev_t *e = &g_ev[g_nev++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->self = self;
    e->from = from;
    e->status = status;
    e->ref = ref;
    e->len = len < DATA_MAX ? len : DATA_MAX;
    if (data && e->len)
        memcpy(e->data, data, e->len);
}

/* The first event of `kind` recorded by `self` (and with `ref` unless 0). */
static const ev_t *ev_find(int kind, herd_pid_t self, uint64_t ref)
{
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].kind == kind && herd_pid_equal(g_ev[i].self, self) &&
            (ref == 0 || g_ev[i].ref == ref))
            return &g_ev[i];
    return NULL;
}

static size_t ev_count(int kind, herd_pid_t self)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nev; i++)
        k += g_ev[i].kind == kind && herd_pid_equal(g_ev[i].self, self);
    return k;
}

static int has_prefix(const herd_msg_t *m, const char *p)
{
    size_t n = strlen(p);
    return m->len >= n && memcmp(m->data, p, n) == 0;
}

/* ---- srv: answers, records, crashes on request ----------------------------------- */

static int srv_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    ev_add(EV_CALL, herd_self(self), msg->from, 0, msg->ref, msg->data, msg->len);
    char buf[DATA_MAX + 3] = "re:";
    size_t n = msg->len < DATA_MAX ? msg->len : DATA_MAX;
    memcpy(buf + 3, msg->data, n);
    (void)herd_reply(herd_proc_node(self), from, 0, buf, n + 3);
    return 0;
}

static int srv_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (has_prefix(msg, "crash"))
        return HERD_ERANGE;
    ev_add(EV_CAST, herd_self(self), msg->from, 0, 0, msg->data, msg->len);
    return 0;
}

static int srv_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind == HERD_MSG_EXIT) /* an exit signal it traps */
        ev_add(EV_TRAPPED, herd_self(self), msg->from, msg->status, 0, NULL, 0);
    else
        ev_add(EV_INFO, herd_self(self), msg->from, 0, 0, msg->data, msg->len);
    return 0;
}

static void srv_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)state;
    ev_add(EV_EXIT, herd_self(self), HERD_PID_NONE, reason, 0, NULL, 0);
}

static const herd_behaviour_t srv = {.name = "srv",
                                     .handle_call = srv_call,
                                     .handle_cast = srv_cast,
                                     .handle_info = srv_info,
                                     .terminate = srv_terminate};

static herd_pid_t spawn_srv(herd_node_t *n)
{
    herd_spawn_opts_t o = {.behaviour = &srv};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

/* ---- watch: monitors the pid it is spawned with, from init on --------------------- */

static int watch_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    herd_pid_t target;
    uint64_t ref;
    if (len != sizeof(target))
        return HERD_EINVAL;
    memcpy(&target, arg, sizeof(target));
    *state = NULL;
    return herd_monitor(self, target, &ref);
}

static int watch_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind == HERD_MSG_DOWN)
        ev_add(EV_DOWN, herd_self(self), msg->from, msg->status, msg->ref, NULL, 0);
    return 0;
}

static const herd_behaviour_t watch = {.name = "watch", .init = watch_init,
                                       .handle_info = watch_info};

/* A watcher on n that monitors target (set up before this returns). */
static herd_pid_t spawn_watch(herd_node_t *n, herd_pid_t target)
{
    herd_spawn_opts_t o = {.behaviour = &watch, .arg = &target, .arg_len = sizeof(target)};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

/* ---- cli: by-name operations from inside a process --------------------------------- */

enum { CLI_CAST_NAME = 1, CLI_SEND_NAME, CLI_CALL_NAME };

typedef struct cmd {
    int op;
    char name[HERD_NAME_MAX + 1];
    char body[DATA_MAX];
} cmd_t;

static int cli_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    cmd_t cmd;
    if (msg->len != sizeof(cmd))
        return 0;
    memcpy(&cmd, msg->data, sizeof(cmd));
    size_t blen = strlen(cmd.body);
    uint64_t ref = 0;
    int rc = HERD_EINVAL;
    switch (cmd.op) {
    case CLI_CAST_NAME:
        rc = herd_cast_name(self, cmd.name, cmd.body, blen);
        break;
    case CLI_SEND_NAME:
        rc = herd_send_name(self, cmd.name, cmd.body, blen);
        break;
    case CLI_CALL_NAME:
        rc = herd_call_name(self, cmd.name, cmd.body, blen, WAIT_MS, &ref);
        break;
    }
    ev_add(EV_CLI, herd_self(self), HERD_PID_NONE, rc, ref, NULL, 0);
    return 0;
}

static int cli_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind == HERD_MSG_REPLY)
        ev_add(EV_REPLY, herd_self(self), msg->from, msg->status, msg->ref, msg->data,
               msg->len);
    return 0;
}

static const herd_behaviour_t cli = {.name = "cli", .handle_cast = cli_cast,
                                     .handle_info = cli_info};

static herd_pid_t spawn_cli(herd_node_t *n)
{
    herd_spawn_opts_t o = {.behaviour = &cli};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

/* Tell cli `c` (on n) to do `op` on `name` with `body`; waits until it did and
 * returns what it recorded (rc in status, a call's ref in ref). */
static ev_t cli_do(herd_node_t *n, herd_pid_t c, int op, const char *name, const char *body)
{
    cmd_t cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.op = op;
    snprintf(cmd.name, sizeof(cmd.name), "%s", name);
    snprintf(cmd.body, sizeof(cmd.body), "%s", body);
    size_t k = ev_count(EV_CLI, c);
    assert_int_equal(herd_node_cast(n, c, &cmd, sizeof(cmd)), 0);
    WAIT_UNTIL(ev_count(EV_CLI, c) > k);
    ev_t out = {0};
    for (size_t i = 0, seen = 0; i < g_nev; i++) {
        if (g_ev[i].kind == EV_CLI && herd_pid_equal(g_ev[i].self, c) && seen++ == k) {
            out = g_ev[i];
            break;
        }
    }
    return out;
}

/* ---- registry helpers ------------------------------------------------------------- */

/* Whether `name` resolves on n to `pid`. */
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

/* The metadata of a name as n sees it; fails the test when it has none. */
static herd_meta_t meta_of(herd_node_t *n, const char *name)
{
    herd_meta_t m;
    herd_pid_t p;
    memset(&m, 0xa5, sizeof(m));
    assert_int_equal(herd_whereis(n, name, &p, &m), 0);
    return m;
}

/* Stop srv `pid` and wait until it has exited: its terminate has run, and
 * with it the node's exit hooks (herd_is_alive turns 0 earlier, as soon as
 * the exit is decided). */
static void kill_and_wait(herd_node_t *n, herd_pid_t pid)
{
    assert_int_equal(herd_exit(n, pid, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(ev_find(EV_EXIT, pid, 0) != NULL);
    assert_int_equal(herd_is_alive(n, pid), 0);
}

/* Make srv `pid` crash (a handler error) and wait until it has exited. */
static void crash_and_wait(herd_node_t *n, herd_pid_t pid)
{
    assert_int_equal(herd_node_cast(n, pid, "crash", 5), 0);
    WAIT_UNTIL(ev_find(EV_EXIT, pid, 0) != NULL);
    assert_int_equal(herd_is_alive(n, pid), 0);
    assert_int_equal(ev_find(EV_EXIT, pid, 0)->status, HERD_ERANGE);
}

/* ---- setup and teardown ----------------------------------------------------------- */

static int setup(void **state)
{
    g_nev = 0;
    return ts_cluster_setup(state);
}

/* ---- one node ------------------------------------------------------------------------ */

static void test_registry_register_whereis_unregister(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    herd_meta_t m = meta1("role", "db");
    assert_int_equal(herd_register(a, "svc", p, &m), 0);

    herd_pid_t got = HERD_PID_NONE;
    herd_meta_t gm = meta_of(a, "svc");
    assert_int_equal(herd_whereis(a, "svc", &got, NULL), 0);
    assert_pid_eq(got, p);
    assert_int_equal(gm.count, 1);
    assert_string_equal(herd_meta_get(&gm, "role"), "db");
    assert_int_equal(herd_whereis(a, "svc", NULL, NULL), 0); /* both outputs optional */
    assert_int_equal(herd_registry_owns(a, "svc", p), 1);
    assert_int_equal(herd_registry_owns(a, "other", p), 0);
    herd_pid_t remote = {herd_node_id_of("b"), 1, p.serial};
    assert_int_equal(herd_registry_owns(a, "svc", remote), HERD_EINVAL);
    assert_int_equal(herd_registry_owns(a, "", p), HERD_EINVAL);

    assert_int_equal(herd_unregister(a, "svc"), 0);
    assert_int_equal(herd_registry_owns(a, "svc", p), 0); /* let go of */
    assert_int_equal(herd_whereis(a, "svc", &got, NULL), HERD_ENOENT);
    assert_int_equal(herd_unregister(a, "svc"), HERD_ENOENT);
    assert_int_equal(herd_registry_count(a, NULL), 0);
    assert_int_equal(herd_is_alive(a, p), 1); /* the name goes, the process stays */

    /* the name is free again; no metadata this time */
    assert_int_equal(herd_register(a, "svc", p, NULL), 0);
    gm = meta_of(a, "svc");
    assert_int_equal(gm.count, 0);
    assert_true(resolves_to(a, "svc", p));
    ts_node_free(a);
}

/* herd_whereis_many answers each name as herd_whereis would, in order,
 * across batches shorter and longer than its pipeline. */
static void test_registry_whereis_many(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    enum { N = 40 };
    herd_pid_t pids[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "many-%d", i);
        pids[i] = spawn_srv(a);
        if (i % 3 != 0) /* every third stays unregistered */
            assert_int_equal(herd_register(a, names[i], pids[i], NULL), 0);
    }
    char too_long[HERD_NAME_MAX + 2];
    memset(too_long, 'x', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    const char *ask[N + 3];
    for (int i = 0; i < N; i++)
        ask[i] = names[N - 1 - i];
    ask[N] = NULL;
    ask[N + 1] = "";
    ask[N + 2] = too_long;
    for (size_t count = 0; count <= N + 3; count += count < 4 ? 1 : 7) {
        herd_pid_t got[N + 3];
        int status[N + 3];
        int found = herd_whereis_many(a, ask, count, got, status);
        int expect_found = 0;
        for (size_t i = 0; i < count; i++) {
            herd_pid_t one = HERD_PID_NONE;
            int rc = ask[i] ? herd_whereis(a, ask[i], &one, NULL) : HERD_EINVAL;
            assert_int_equal(status[i], rc);
            if (rc == 0) {
                assert_pid_eq(got[i], one);
                expect_found++;
            }
        }
        assert_int_equal(found, expect_found);
    }
    herd_pid_t got[3];
    int status[3];
    const char *last[3] = {names[1], names[3], names[2]};
    assert_int_equal(herd_whereis_many(a, last, 3, got, status), 2);
    assert_int_equal(status[1], HERD_ENOENT);
    assert_pid_eq(got[0], pids[1]);
    assert_pid_eq(got[2], pids[2]);
    herd_node_t *bare = bare_node("b"); /* no registry */
    assert_int_equal(herd_whereis_many(bare, last, 3, got, status), 0);
    assert_int_equal(status[0], HERD_ENOENT);
    ts_node_free(bare);
    ts_node_free(a);
}

/* Every change is visible on its node when the call returns: the loop never
 * runs in this test. */
static void test_registry_read_your_writes(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a), q = spawn_srv(a);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ryw-%d", i);
        assert_int_equal(herd_register(a, name, i % 2 ? p : q, NULL), 0);
        assert_true(resolves_to(a, name, i % 2 ? p : q));
        assert_int_equal(herd_registry_count(a, "ryw-"), i + 1);
    }
    herd_meta_t m = meta1("k", "v2");
    assert_int_equal(herd_update_meta(a, "ryw-7", &m), 0);
    herd_meta_t got = meta_of(a, "ryw-7");
    assert_string_equal(herd_meta_get(&got, "k"), "v2");
    assert_int_equal(herd_unregister(a, "ryw-7"), 0);
    assert_true(unknown_on(a, "ryw-7"));
    assert_int_equal(herd_registry_count(a, "ryw-"), 99);
    ts_node_free(a);
}

/* A holder whose exit is decided (herd_exit) but not yet carried out no
 * longer holds the name: another local process may take it at once, and the
 * holder's exit later does not take it away. */
static void test_registry_name_of_an_exiting_holder_can_be_taken(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p1 = spawn_srv(a), p2 = spawn_srv(a);
    assert_int_equal(herd_register(a, "x", p1, NULL), 0);
    assert_int_equal(herd_exit(a, p1, HERD_REASON_SHUTDOWN), 0);
    assert_false(herd_is_alive(a, p1));
    assert_int_equal(herd_register(a, "x", p2, NULL), 0);
    assert_true(resolves_to(a, "x", p2));
    herd_node_run_for(a, 50); /* p1's exit is carried out */
    assert_true(resolves_to(a, "x", p2));
    assert_int_equal(stats_of(a).entries, 1);
    ts_node_free(a);
}

static void test_registry_name_held_by_another_pid_eexist(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p1 = spawn_srv(a), p2 = spawn_srv(a);
    herd_meta_t m1 = meta1("v", "1"), m2 = meta1("v", "2");
    assert_int_equal(herd_register(a, "x", p1, &m1), 0);
    assert_int_equal(herd_register(a, "x", p2, NULL), HERD_EEXIST);
    assert_int_equal(herd_register(a, "x", p2, &m2), HERD_EEXIST);
    /* the holder and its metadata are untouched */
    assert_true(resolves_to(a, "x", p1));
    herd_meta_t got = meta_of(a, "x");
    assert_string_equal(herd_meta_get(&got, "v"), "1");
    herd_registry_stats_t s = stats_of(a);
    assert_int_equal(s.names, 1);
    assert_int_equal(s.entries, 1);

    /* once the holder lets go (unregister), another pid may take it */
    assert_int_equal(herd_unregister(a, "x"), 0);
    assert_int_equal(herd_register(a, "x", p2, &m2), 0);
    assert_true(resolves_to(a, "x", p2));
    /* and once the holder exits, too */
    assert_int_equal(herd_register(a, "x", p1, NULL), HERD_EEXIST);
    kill_and_wait(a, p2);
    assert_int_equal(herd_register(a, "x", p1, NULL), 0);
    assert_true(resolves_to(a, "x", p1));
    ts_node_free(a);
}

static void test_registry_same_pid_again_updates_metadata(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    herd_meta_t m1 = meta1("v", "1");
    assert_int_equal(herd_register(a, "x", p, &m1), 0);

    herd_meta_t m2 = meta1("v", "2");
    assert_int_equal(herd_meta_set(&m2, "w", "3"), 0);
    assert_int_equal(herd_register(a, "x", p, &m2), 0);
    assert_true(resolves_to(a, "x", p));
    herd_meta_t got = meta_of(a, "x");
    assert_int_equal(got.count, 2);
    assert_string_equal(herd_meta_get(&got, "v"), "2");
    assert_string_equal(herd_meta_get(&got, "w"), "3");
    /* one registration, not two */
    herd_registry_stats_t s = stats_of(a);
    assert_int_equal(s.names, 1);
    assert_int_equal(s.entries, 1);
    assert_int_equal(herd_registry_count(a, NULL), 1);

    /* herd_update_meta replaces the whole map */
    herd_meta_t m3 = meta1("z", "9");
    assert_int_equal(herd_update_meta(a, "x", &m3), 0);
    got = meta_of(a, "x");
    assert_int_equal(got.count, 1);
    assert_string_equal(herd_meta_get(&got, "z"), "9");
    assert_null(herd_meta_get(&got, "v"));
    assert_true(resolves_to(a, "x", p));
    s = stats_of(a);
    assert_int_equal(s.entries, 1);

    /* one unregister removes it (no older copy left behind) */
    assert_int_equal(herd_unregister(a, "x"), 0);
    assert_true(unknown_on(a, "x"));
    assert_int_equal(stats_of(a).entries, 0);
    ts_node_free(a);
}

static void test_registry_dead_local_pid_enoproc(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    kill_and_wait(a, p);
    assert_int_equal(herd_register(a, "x", p, NULL), HERD_ENOPROC);
    assert_true(unknown_on(a, "x"));

    /* a crashed one */
    herd_pid_t c = spawn_srv(a);
    crash_and_wait(a, c);
    assert_int_equal(herd_register(a, "x", c, NULL), HERD_ENOPROC);

    /* a pid of this node that never lived */
    herd_pid_t never = {herd_node_id_of("a"), herd_node_incarnation(a), p.serial + 1000};
    assert_int_equal(herd_register(a, "x", never, NULL), HERD_ENOPROC);
    assert_int_equal(herd_registry_count(a, NULL), 0);
    assert_int_equal(stats_of(a).entries, 0);
    ts_node_free(a);
}

static void test_registry_bad_names_einval(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    char longest[HERD_NAME_MAX + 1], too_long[HERD_NAME_MAX + 2];
    memset(longest, 'n', HERD_NAME_MAX);
    longest[HERD_NAME_MAX] = '\0';
    memset(too_long, 'n', HERD_NAME_MAX + 1);
    too_long[HERD_NAME_MAX + 1] = '\0';
    assert_int_equal(strlen(too_long), 256);

    assert_int_equal(herd_register(a, "", p, NULL), HERD_EINVAL);
    assert_int_equal(herd_register(a, too_long, p, NULL), HERD_EINVAL);
    assert_int_equal(herd_registry_count(a, NULL), 0);
    /* lookups of such names find nothing (the header names no code for them) */
    int rc = herd_whereis(a, too_long, NULL, NULL);
    assert_true(rc == HERD_EINVAL || rc == HERD_ENOENT);
    rc = herd_whereis(a, "", NULL, NULL);
    assert_true(rc == HERD_EINVAL || rc == HERD_ENOENT);

    /* 255 bytes is fine, and is not confused with its 256-byte extension */
    assert_int_equal(herd_register(a, longest, p, NULL), 0);
    assert_true(resolves_to(a, longest, p));
    rc = herd_whereis(a, too_long, NULL, NULL);
    assert_true(rc == HERD_EINVAL || rc == HERD_ENOENT);
    assert_int_equal(herd_registry_count(a, longest), 1);
    assert_int_equal(herd_unregister(a, longest), 0);
    assert_true(unknown_on(a, longest));
    ts_node_free(a);
}

static void test_registry_unknown_name_enoent(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t s = spawn_srv(a), c = spawn_cli(a);
    assert_int_equal(herd_register(a, "known", s, NULL), 0);

    herd_pid_t got = HERD_PID_NONE;
    assert_int_equal(herd_whereis(a, "nope", &got, NULL), HERD_ENOENT);
    assert_int_equal(herd_unregister(a, "nope"), HERD_ENOENT);
    herd_meta_t m = meta1("k", "v");
    assert_int_equal(herd_update_meta(a, "nope", &m), HERD_ENOENT);
    assert_int_equal(herd_node_cast_name(a, "nope", "x", 1), HERD_ENOENT);
    herd_reply_t r = {0};
    assert_int_equal(herd_node_call_name(a, "nope", "x", 1, WAIT_MS, &r), HERD_ENOENT);
    herd_reply_free(&r);

    /* from a process: at once, and no reply comes later */
    assert_int_equal(cli_do(a, c, CLI_CAST_NAME, "nope", "x").status, HERD_ENOENT);
    assert_int_equal(cli_do(a, c, CLI_SEND_NAME, "nope", "x").status, HERD_ENOENT);
    assert_int_equal(cli_do(a, c, CLI_CALL_NAME, "nope", "x").status, HERD_ENOENT);
    ts_cluster_run_ms(50);
    assert_int_equal(ev_count(EV_REPLY, c), 0);
    /* nothing reached the registered process either */
    assert_int_equal(ev_count(EV_CAST, s) + ev_count(EV_INFO, s) + ev_count(EV_CALL, s), 0);
    assert_true(resolves_to(a, "known", s));
    ts_node_free(a);
}

static void test_registry_node_without_registry_enoent(void **state)
{
    (void)state;
    herd_node_t *a = bare_node("a");
    herd_pid_t p = spawn_srv(a), c = spawn_cli(a);
    herd_meta_t m = meta1("k", "v");
    herd_registry_stats_t s;
    herd_reply_t r = {0};
    assert_int_equal(herd_register(a, "x", p, &m), HERD_ENOENT);
    assert_int_equal(herd_whereis(a, "x", NULL, NULL), HERD_ENOENT);
    assert_int_equal(herd_unregister(a, "x"), HERD_ENOENT);
    assert_int_equal(herd_update_meta(a, "x", &m), HERD_ENOENT);
    assert_int_equal(herd_registry_list(a, NULL, NULL, NULL), HERD_ENOENT);
    assert_int_equal(herd_registry_count(a, NULL), HERD_ENOENT);
    assert_int_equal(herd_registry_stats(a, &s), HERD_ENOENT);
    assert_int_equal(herd_node_cast_name(a, "x", "y", 1), HERD_ENOENT);
    assert_int_equal(herd_node_call_name(a, "x", "y", 1, WAIT_MS, &r), HERD_ENOENT);
    herd_reply_free(&r);
    assert_int_equal(cli_do(a, c, CLI_CAST_NAME, "x", "y").status, HERD_ENOENT);
    assert_int_equal(cli_do(a, c, CLI_SEND_NAME, "x", "y").status, HERD_ENOENT);
    assert_int_equal(cli_do(a, c, CLI_CALL_NAME, "x", "y").status, HERD_ENOENT);
    ts_node_free(a);
}

static void test_registry_start_twice_eexist(void **state)
{
    (void)state;
    herd_node_t *a = bare_node("a");
    assert_int_equal(herd_registry_start(a), 0);
    assert_int_equal(herd_registry_start(a), HERD_EEXIST);
    /* the first registry is still there and works */
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "x", p, NULL), 0);
    assert_int_equal(herd_registry_start(a), HERD_EEXIST);
    assert_true(resolves_to(a, "x", p));

    /* the same in a cluster */
    herd_node_t *b = cluster_node("b", &CALM, NULL, 0);
    assert_int_equal(herd_registry_start(b), HERD_EEXIST);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_registry_meta_set_get_limits(void **state)
{
    (void)state;
    herd_meta_t m;
    memset(&m, 0, sizeof(m));
    assert_null(herd_meta_get(&m, "k0"));
    for (unsigned i = 0; i < HERD_META_MAX; i++) {
        char k[8], v[8];
        snprintf(k, sizeof(k), "k%u", i);
        snprintf(v, sizeof(v), "v%u", i);
        assert_int_equal(herd_meta_set(&m, k, v), 0);
    }
    assert_int_equal(m.count, HERD_META_MAX);
    assert_int_equal(herd_meta_set(&m, "k8", "v8"), HERD_ERANGE); /* full */
    assert_int_equal(m.count, HERD_META_MAX);
    assert_null(herd_meta_get(&m, "k8"));
    assert_int_equal(herd_meta_set(&m, "k3", "three"), 0); /* replacing needs no room */
    assert_int_equal(m.count, HERD_META_MAX);
    assert_string_equal(herd_meta_get(&m, "k3"), "three");
    assert_string_equal(herd_meta_get(&m, "k7"), "v7");
    assert_null(herd_meta_get(&m, "zz"));

    /* key and value lengths */
    char key_max[HERD_META_KEY_MAX + 1], key_over[HERD_META_KEY_MAX + 2];
    char val_max[HERD_META_VALUE_MAX + 1], val_over[HERD_META_VALUE_MAX + 2];
    memset(key_max, 'k', HERD_META_KEY_MAX);
    key_max[HERD_META_KEY_MAX] = '\0';
    memset(key_over, 'k', HERD_META_KEY_MAX + 1);
    key_over[HERD_META_KEY_MAX + 1] = '\0';
    memset(val_max, 'v', HERD_META_VALUE_MAX);
    val_max[HERD_META_VALUE_MAX] = '\0';
    memset(val_over, 'v', HERD_META_VALUE_MAX + 1);
    val_over[HERD_META_VALUE_MAX + 1] = '\0';
    herd_meta_t n;
    memset(&n, 0, sizeof(n));
    assert_int_equal(herd_meta_set(&n, key_max, "v"), 0);
    assert_int_equal(herd_meta_set(&n, key_over, "v"), HERD_ERANGE);
    assert_int_equal(herd_meta_set(&n, "val", val_max), 0);
    assert_int_equal(herd_meta_set(&n, "val2", val_over), HERD_ERANGE);
    assert_int_equal(n.count, 2);
    assert_string_equal(herd_meta_get(&n, key_max), "v");
    assert_string_equal(herd_meta_get(&n, "val"), val_max);
    assert_null(herd_meta_get(&n, "val2"));
    /* a rejected value does not touch the old one */
    assert_int_equal(herd_meta_set(&n, "val", val_over), HERD_ERANGE);
    assert_string_equal(herd_meta_get(&n, "val"), val_max);

    /* the largest metadata goes through the registry intact */
    herd_meta_t big;
    memset(&big, 0, sizeof(big));
    for (unsigned i = 0; i < HERD_META_MAX; i++) {
        char k[HERD_META_KEY_MAX + 1], v[HERD_META_VALUE_MAX + 1];
        memset(k, 'a' + (int)i, HERD_META_KEY_MAX);
        k[HERD_META_KEY_MAX] = '\0';
        memset(v, 'A' + (int)i, HERD_META_VALUE_MAX);
        v[HERD_META_VALUE_MAX] = '\0';
        assert_int_equal(herd_meta_set(&big, k, v), 0);
    }
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "big", p, &big), 0);
    herd_meta_t got = meta_of(a, "big");
    assert_int_equal(got.count, HERD_META_MAX);
    for (unsigned i = 0; i < HERD_META_MAX; i++) {
        assert_string_equal(got.kv[i].key, big.kv[i].key);
        assert_string_equal(got.kv[i].value, big.kv[i].value);
    }
    /* update, and update of a name nobody holds */
    assert_int_equal(herd_update_meta(a, "big", &m), 0);
    got = meta_of(a, "big");
    assert_int_equal(got.count, HERD_META_MAX);
    assert_string_equal(herd_meta_get(&got, "k3"), "three");
    assert_null(herd_meta_get(&got, big.kv[0].key));
    assert_int_equal(herd_update_meta(a, "nobody", &m), HERD_ENOENT);
    ts_node_free(a);
}

static void test_registry_exit_removes_every_name_of_the_process(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a), q = spawn_srv(a), c = spawn_srv(a);
    herd_meta_t m = meta1("v", "1");
    assert_int_equal(herd_register(a, "p/1", p, NULL), 0);
    assert_int_equal(herd_register(a, "p/2", p, NULL), 0);
    assert_int_equal(herd_register(a, "p/3", p, NULL), 0);
    assert_int_equal(herd_register(a, "p/1", p, &m), 0); /* metadata update: still one */
    assert_int_equal(herd_register(a, "q/1", q, NULL), 0);
    assert_int_equal(herd_register(a, "c/1", c, NULL), 0);
    assert_int_equal(herd_register(a, "c/2", c, NULL), 0);
    assert_int_equal(herd_registry_count(a, NULL), 6);

    kill_and_wait(a, p);  /* stopped */
    crash_and_wait(a, c); /* crashed */
    assert_true(unknown_on(a, "p/1"));
    assert_true(unknown_on(a, "p/2"));
    assert_true(unknown_on(a, "p/3"));
    assert_true(unknown_on(a, "c/1"));
    assert_true(unknown_on(a, "c/2"));
    assert_true(resolves_to(a, "q/1", q));
    assert_int_equal(herd_registry_count(a, NULL), 1);
    herd_registry_stats_t s = stats_of(a);
    assert_int_equal(s.names, 1);
    assert_int_equal(s.entries, 1);

    /* the names are free for others */
    assert_int_equal(herd_register(a, "p/1", q, NULL), 0);
    assert_true(resolves_to(a, "p/1", q));
    ts_node_free(a);
}

static void test_registry_messages_by_name_reach_the_process(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t s = spawn_srv(a), c = spawn_cli(a);
    assert_int_equal(herd_register(a, "echo", s, NULL), 0);
    herd_pid_t outside = {herd_node_id_of("a"), herd_node_incarnation(a), 0};

    /* node variants */
    assert_int_equal(herd_node_cast_name(a, "echo", "hello", 5), 0);
    WAIT_UNTIL(ev_find(EV_CAST, s, 0) != NULL);
    const ev_t *e = ev_find(EV_CAST, s, 0);
    assert_int_equal(e->len, 5);
    assert_memory_equal(e->data, "hello", 5);
    assert_pid_eq(e->from, outside);

    herd_reply_t r = {0};
    assert_int_equal(herd_node_call_name(a, "echo", "ping", 4, WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, 7);
    assert_memory_equal(r.data, "re:ping", 7);
    herd_reply_free(&r);

    /* process variants */
    assert_int_equal(cli_do(a, c, CLI_CAST_NAME, "echo", "c1").status, 0);
    WAIT_UNTIL(ev_count(EV_CAST, s) == 2);
    assert_memory_equal(g_ev[g_nev - 1].data, "c1", 2);
    assert_pid_eq(g_ev[g_nev - 1].from, c);

    assert_int_equal(cli_do(a, c, CLI_SEND_NAME, "echo", "s1").status, 0);
    WAIT_UNTIL(ev_find(EV_INFO, s, 0) != NULL);
    e = ev_find(EV_INFO, s, 0);
    assert_memory_equal(e->data, "s1", 2);
    assert_pid_eq(e->from, c);

    ev_t done = cli_do(a, c, CLI_CALL_NAME, "echo", "k1");
    assert_int_equal(done.status, 0);
    assert_true(done.ref != 0);
    WAIT_UNTIL(ev_find(EV_REPLY, c, done.ref) != NULL);
    e = ev_find(EV_REPLY, c, done.ref);
    assert_int_equal(e->status, 0);
    assert_int_equal(e->len, 5);
    assert_memory_equal(e->data, "re:k1", 5);
    assert_pid_eq(e->from, s);

    /* the name follows the registration: re-registered to another process */
    herd_pid_t s2 = spawn_srv(a);
    assert_int_equal(herd_unregister(a, "echo"), 0);
    assert_int_equal(herd_register(a, "echo", s2, NULL), 0);
    assert_int_equal(herd_node_cast_name(a, "echo", "to-s2", 5), 0);
    WAIT_UNTIL(ev_find(EV_CAST, s2, 0) != NULL);
    assert_int_equal(ev_count(EV_CAST, s), 2);
    ts_node_free(a);
}

typedef struct collected {
    int calls, stop_after; /* stop_after: return 1 on that call (0: never) */
    char names[8][32];
    herd_pid_t pids[8];
    char values[8][32];
} collected_t;

static int collect(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    collected_t *c = data;
    if (c->calls < 8) {
        snprintf(c->names[c->calls], sizeof(c->names[0]), "%s", name);
        c->pids[c->calls] = pid;
        const char *v = meta ? herd_meta_get(meta, "v") : NULL;
        snprintf(c->values[c->calls], sizeof(c->values[0]), "%s", v ? v : "");
    }
    c->calls++;
    return c->stop_after && c->calls >= c->stop_after;
}

static int collected_index(const collected_t *c, const char *name)
{
    for (int i = 0; i < c->calls && i < 8; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return -1;
}

static void test_registry_list_and_count_by_prefix(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p1 = spawn_srv(a), p2 = spawn_srv(a), p3 = spawn_srv(a);
    const char *names[4] = {"svc/a1", "svc/a2", "svc/b1", "other"};
    herd_pid_t pids[4] = {p1, p2, p3, p1};
    for (int i = 0; i < 4; i++) {
        herd_meta_t m = meta1("v", names[i]);
        assert_int_equal(herd_register(a, names[i], pids[i], &m), 0);
    }
    assert_int_equal(herd_registry_count(a, NULL), 4);
    assert_int_equal(herd_registry_count(a, ""), 4);
    assert_int_equal(herd_registry_count(a, "svc/"), 3);
    assert_int_equal(herd_registry_count(a, "svc/a"), 2);
    assert_int_equal(herd_registry_count(a, "svc/a1"), 1);
    assert_int_equal(herd_registry_count(a, "svc/a1x"), 0);
    assert_int_equal(herd_registry_count(a, "zzz"), 0);
    assert_int_equal(herd_registry_count(a, "o"), 1);

    collected_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(herd_registry_list(a, "svc/", collect, &c), 3);
    assert_int_equal(c.calls, 3);
    for (int i = 0; i < 3; i++) {
        int k = collected_index(&c, names[i]);
        assert_true(k >= 0);
        assert_pid_eq(c.pids[k], pids[i]);
        assert_string_equal(c.values[k], names[i]);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(herd_registry_list(a, NULL, collect, &c), 4);
    assert_int_equal(c.calls, 4);
    assert_true(collected_index(&c, "other") >= 0);

    /* the callback stops the walk */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(herd_registry_list(a, "svc/", collect, &c), 1);
    assert_int_equal(c.calls, 1);
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(herd_registry_list(a, NULL, collect, &c), 2);
    assert_int_equal(c.calls, 2);

    /* what goes stops being listed */
    assert_int_equal(herd_unregister(a, "svc/a2"), 0);
    kill_and_wait(a, p3);
    assert_int_equal(herd_registry_count(a, "svc/"), 1);
    memset(&c, 0, sizeof(c));
    assert_int_equal(herd_registry_list(a, "svc/", collect, &c), 1);
    assert_string_equal(c.names[0], "svc/a1");
    assert_int_equal(herd_registry_count(a, NULL), 2);
    ts_node_free(a);
}

static void test_registry_stats_count_names_and_entries(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_registry_stats_t s = stats_of(a);
    assert_int_equal(s.names, 0);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.deltas_in, 0);
    assert_int_equal(s.full_syncs_in, 0);
    assert_int_equal(s.full_syncs_out, 0);
    assert_int_equal(s.conflicts_resolved, 0);
    assert_int_equal(s.rejected, 0);

    herd_pid_t p = spawn_srv(a), q = spawn_srv(a);
    assert_int_equal(herd_register(a, "s1", p, NULL), 0);
    assert_int_equal(herd_register(a, "s2", p, NULL), 0);
    assert_int_equal(herd_register(a, "s3", q, NULL), 0);
    s = stats_of(a);
    assert_int_equal(s.names, 3);
    assert_int_equal(s.entries, 3);
    herd_meta_t m = meta1("v", "1");
    assert_int_equal(herd_register(a, "s1", p, &m), 0);
    assert_int_equal(herd_register(a, "s1", q, NULL), HERD_EEXIST);
    s = stats_of(a);
    assert_int_equal(s.names, 3);
    assert_int_equal(s.entries, 3);
    assert_int_equal(herd_unregister(a, "s2"), 0);
    s = stats_of(a);
    assert_int_equal(s.names, 2);
    assert_int_equal(s.entries, 2);
    kill_and_wait(a, q);
    s = stats_of(a);
    assert_int_equal(s.names, 1);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.deltas_in, 0);    /* nobody to hear from */
    assert_int_equal(s.full_syncs_in, 0);
    assert_int_equal(s.conflicts_resolved, 0);
    assert_int_equal(s.rejected, 0);
    ts_node_free(a);
}

/* ---- many entries of one name --------------------------------------------------------- */

#define MANY 40 /* entries of one name: more than any fixed array held */
#define FAR_NODE 0x5151u
#define FAR_INC 7u

/* Join into n's map what MANY writers wrote for `name` at once (as after a
 * partition): writer k an entry of pid(k), stamped as written at hlc + k,
 * with metadata "k" = k. Then what the registry does after a join. The
 * writers are new at every call (a map that saw a dot never takes it again). */
static void join_many(herd_node_t *n, const char *name, herd_pid_t first, int same_pid)
{
    registry_t *g = reg_of(n);
    awmap_t *d = awmap_new_delta();
    assert_non_null(d);
    uint64_t hlc = herd_node_hlc_now(n);
    static uint64_t writers;
    for (int k = 0; k < MANY; k++) {
        awmap_replica_id_t id = {0x7000u + writers++, 1};
        uint32_t writer;
        assert_int_equal(awmap_replica(d, id, &writer), 0);
        herd_pid_t pid = first;
        pid.serial += same_pid ? 0 : (uint64_t)k;
        char kv[8];
        snprintf(kv, sizeof(kv), "%d", k);
        herd_meta_t meta = meta1("k", kv);
        reg_value_t v = {pid, hlc, 0, hlc + 1 + (uint64_t)k};
        size_t vlen;
        uint8_t *value = reg_value_encode_by(id, &v, &meta, &vlen);
        assert_non_null(value);
        assert_int_equal(awmap_add(d, writer, name, strlen(name), value, vlen, NULL, 0, NULL,
                                   NULL, NULL), 0);
        free(value);
    }
    assert_int_equal(awmap_join(g->map, d, reg_observer(g)), 0);
    reg_settle_touched(g);
    awmap_free(d);
}

/* A node start known gone takes all its entries of a name along, not 16. */
static void test_registry_many_entries_go_with_their_node(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "mine", p, NULL), 0);
    join_many(a, "many", (herd_pid_t){FAR_NODE, FAR_INC, 1}, 0);
    assert_int_equal(stats_of(a).entries, MANY + 1);
    herd_pid_t got;
    assert_int_equal(herd_whereis(a, "many", &got, NULL), 0);
    assert_int_equal(got.serial, 1); /* the lowest pid, of one time and no moves */
    assert_int_equal(reg_remove_start(reg_of(a), FAR_NODE, FAR_INC), 0);
    assert_true(unknown_on(a, "many"));
    assert_int_equal(stats_of(a).entries, 1);
    assert_int_equal(stats_of(a).alloc_failed, 0);
    assert_true(resolves_to(a, "mine", p));
    ts_node_free(a);
}

/* An unregister removes every entry of the registration, not 16. */
static void test_registry_many_entries_of_one_pid_unregistered(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    join_many(a, "many", (herd_pid_t){FAR_NODE, FAR_INC, 3}, 1);
    assert_int_equal(stats_of(a).entries, MANY); /* another node's pid: its node prunes */
    herd_meta_t m = meta_of(a, "many");
    assert_string_equal(herd_meta_get(&m, "k"), "39"); /* the newest write */
    assert_int_equal(herd_unregister(a, "many"), 0);
    assert_true(unknown_on(a, "many"));
    assert_int_equal(stats_of(a).entries, 0);
    assert_int_equal(herd_unregister(a, "many"), HERD_ENOENT);
    ts_node_free(a);
}

/* Entries of the node's own processes: of a process gone (an earlier start
 * of this node) they all go at once; of a live one the node keeps the
 * newest write alone, and that goes when the process exits. */
static void test_registry_many_entries_of_a_local_pid_go(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_srv(a);
    herd_pid_t old = {p.node, p.incarnation ^ 1, 5};
    join_many(a, "old", old, 1);
    assert_int_equal(stats_of(a).entries, 0);
    join_many(a, "many", p, 1);
    assert_int_equal(stats_of(a).entries, 1);
    herd_meta_t m = meta_of(a, "many");
    assert_string_equal(herd_meta_get(&m, "k"), "39");
    assert_true(resolves_to(a, "many", p));
    kill_and_wait(a, p);
    assert_true(unknown_on(a, "many"));
    assert_int_equal(stats_of(a).entries, 0);
    ts_node_free(a);
}

/* ---- watchers of new names ------------------------------------------------------------ */

typedef struct added_log {
    uint64_t hashes[8];
    int n;
} added_log_t;

static void on_name_added(void *data, uint64_t hash)
{
    added_log_t *l = data;
    if (l->n < 8)
        l->hashes[l->n] = hash;
    l->n++;
}

/* Every watcher is told, each until it is removed. */
static void test_registry_watchers_of_added_names(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    added_log_t one = {0}, two = {0};
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_registry_watch_added(a, on_name_added, &one), 0);
    assert_int_equal(herd_registry_watch_added(a, on_name_added, &two), 0);
    assert_int_equal(herd_registry_watch_added(a, NULL, &two), HERD_EINVAL);
    assert_int_equal(herd_register(a, "w1", p, NULL), 0);
    assert_int_equal(one.n, 1);
    assert_int_equal(two.n, 1);
    assert_true(one.hashes[0] == herd_registry_name_hash("w1"));
    assert_true(two.hashes[0] == herd_registry_name_hash("w1"));
    assert_int_equal(herd_registry_unwatch_added(a, on_name_added, &one), 0);
    assert_int_equal(herd_registry_unwatch_added(a, on_name_added, &one), HERD_ENOENT);
    assert_int_equal(herd_register(a, "w2", p, NULL), 0);
    assert_int_equal(one.n, 1);
    assert_int_equal(two.n, 2);
    assert_true(two.hashes[1] == herd_registry_name_hash("w2"));
    assert_int_equal(herd_registry_unwatch_added(a, on_name_added, &two), 0);
    assert_int_equal(herd_register(a, "w3", p, NULL), 0);
    assert_int_equal(two.n, 2);
    ts_node_free(a);
}

/* ---- clusters ------------------------------------------------------------------------- */

#define PER_NODE 50

/* Names registered on one node become visible, with pid and metadata, on
 * every node; the registering node sees them at once. */
static void test_registry_cluster_names_visible_on_every_node(void **state)
{
    (void)state;
    trio_t x = form(3, &CALM);
    static herd_pid_t pids[3][PER_NODE];
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < PER_NODE; i++) {
            char name[32], idx[16];
            snprintf(name, sizeof(name), "%c-%d", 'a' + k, i);
            snprintf(idx, sizeof(idx), "%d", i);
            herd_meta_t m = meta1("node", herd_node_name(x.n[k]));
            assert_int_equal(herd_meta_set(&m, "i", idx), 0);
            pids[k][i] = spawn_srv(x.n[k]);
            assert_int_equal(herd_register(x.n[k], name, pids[k][i], &m), 0);
            assert_true(resolves_to(x.n[k], name, pids[k][i])); /* read-your-writes */
        }
    }
    /* the largest metadata crosses intact */
    herd_meta_t big;
    memset(&big, 0, sizeof(big));
    for (unsigned i = 0; i < HERD_META_MAX; i++) {
        char key[HERD_META_KEY_MAX + 1], v[HERD_META_VALUE_MAX + 1];
        memset(key, 'a' + (int)i, HERD_META_KEY_MAX);
        key[HERD_META_KEY_MAX] = '\0';
        memset(v, '0' + (int)i, HERD_META_VALUE_MAX);
        v[HERD_META_VALUE_MAX] = '\0';
        assert_int_equal(herd_meta_set(&big, key, v), 0);
    }
    herd_pid_t bp = spawn_srv(x.n[1]);
    assert_int_equal(herd_register(x.n[1], "big", bp, &big), 0);

    const int total = 3 * PER_NODE + 1;
    WAIT_UNTIL(herd_registry_count(x.n[0], NULL) == total &&
               herd_registry_count(x.n[1], NULL) == total &&
               herd_registry_count(x.n[2], NULL) == total);
    for (int j = 0; j < 3; j++) {
        for (int k = 0; k < 3; k++) {
            for (int i = 0; i < PER_NODE; i++) {
                char name[32], idx[16];
                snprintf(name, sizeof(name), "%c-%d", 'a' + k, i);
                snprintf(idx, sizeof(idx), "%d", i);
                herd_pid_t got;
                herd_meta_t m;
                assert_int_equal(herd_whereis(x.n[j], name, &got, &m), 0);
                assert_pid_eq(got, pids[k][i]);
                assert_int_equal(m.count, 2);
                assert_string_equal(herd_meta_get(&m, "node"), herd_node_name(x.n[k]));
                assert_string_equal(herd_meta_get(&m, "i"), idx);
            }
            char prefix[4] = {(char)('a' + k), '-', '\0', '\0'};
            assert_int_equal(herd_registry_count(x.n[j], prefix), PER_NODE);
        }
        herd_meta_t got = meta_of(x.n[j], "big");
        assert_true(resolves_to(x.n[j], "big", bp));
        assert_int_equal(got.count, HERD_META_MAX);
        for (unsigned i = 0; i < HERD_META_MAX; i++) {
            assert_string_equal(got.kv[i].key, big.kv[i].key);
            assert_string_equal(got.kv[i].value, big.kv[i].value);
        }
        herd_registry_stats_t s = stats_of(x.n[j]);
        assert_int_equal(s.names, (uint64_t)total);
        assert_int_equal(s.entries, (uint64_t)total);
        assert_true(s.deltas_out > 0);
        assert_true(s.deltas_in > 0);
        assert_int_equal(s.conflicts_resolved, 0);
        assert_int_equal(s.rejected, 0);
    }
    /* a name held on another node is taken here too */
    herd_pid_t c2 = spawn_srv(x.n[2]);
    assert_int_equal(herd_register(x.n[2], "a-0", c2, NULL), HERD_EEXIST);
    assert_true(resolves_to(x.n[2], "a-0", pids[0][0]));
    /* and metadata updates propagate */
    herd_meta_t nm = meta1("node", "moved");
    assert_int_equal(herd_update_meta(x.n[0], "a-1", &nm), 0);
    for (int j = 1; j < 3; j++) {
        herd_node_t *n = x.n[j];
        uint64_t t0 = ts_mono_ms();
        for (;;) {
            herd_meta_t m;
            herd_pid_t got;
            if (herd_whereis(n, "a-1", &got, &m) == 0 && herd_meta_get(&m, "node") &&
                strcmp(herd_meta_get(&m, "node"), "moved") == 0) {
                assert_pid_eq(got, pids[0][1]);
                assert_int_equal(m.count, 1);
                break;
            }
            if (ts_mono_ms() - t0 > WAIT_MS)
                fail_msg("the metadata update of a-1 never reached %s", herd_node_name(n));
            ts_cluster_run_slice(5);
        }
        assert_int_equal(herd_registry_count(n, NULL), total);
        assert_int_equal(stats_of(n).entries, (uint64_t)total);
    }
    ts_node_free(x.n[2]);
    ts_node_free(x.n[1]);
    ts_node_free(x.n[0]);
}

static void test_registry_cluster_call_by_name_across_nodes(void **state)
{
    (void)state;
    trio_t x = form(2, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1];
    herd_pid_t s = spawn_srv(b), c = spawn_cli(a);
    assert_int_equal(herd_register(b, "echo", s, NULL), 0);
    WAIT_UNTIL(resolves_to(a, "echo", s));

    herd_reply_t r = {0};
    assert_int_equal(herd_node_call_name(a, "echo", "far", 3, WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, 6);
    assert_memory_equal(r.data, "re:far", 6);
    herd_reply_free(&r);

    assert_int_equal(herd_node_cast_name(a, "echo", "n-cast", 6), 0);
    WAIT_UNTIL(ev_find(EV_CAST, s, 0) != NULL);
    assert_memory_equal(ev_find(EV_CAST, s, 0)->data, "n-cast", 6);

    ev_t done = cli_do(a, c, CLI_CALL_NAME, "echo", "p-call");
    assert_int_equal(done.status, 0);
    WAIT_UNTIL(ev_find(EV_REPLY, c, done.ref) != NULL);
    const ev_t *e = ev_find(EV_REPLY, c, done.ref);
    assert_int_equal(e->status, 0);
    assert_int_equal(e->len, 9);
    assert_memory_equal(e->data, "re:p-call", 9);
    assert_pid_eq(e->from, s);
    const ev_t *call = ev_find(EV_CALL, s, 0);
    assert_non_null(call);

    assert_int_equal(cli_do(a, c, CLI_CAST_NAME, "echo", "p-cast").status, 0);
    assert_int_equal(cli_do(a, c, CLI_SEND_NAME, "echo", "p-send").status, 0);
    WAIT_UNTIL(ev_count(EV_CAST, s) == 2 && ev_find(EV_INFO, s, 0) != NULL);
    for (size_t i = 0; i < g_nev; i++) {
        if (g_ev[i].kind == EV_CAST && herd_pid_equal(g_ev[i].self, s) &&
            memcmp(g_ev[i].data, "p-cast", 6) == 0)
            assert_pid_eq(g_ev[i].from, c);
    }
    assert_memory_equal(ev_find(EV_INFO, s, 0)->data, "p-send", 6);
    assert_pid_eq(ev_find(EV_INFO, s, 0)->from, c);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_registry_cluster_unregister_propagates(void **state)
{
    (void)state;
    trio_t x = form(3, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1], *c = x.n[2];
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "u1", p, NULL), 0);
    assert_int_equal(herd_register(a, "u2", p, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "u1", p) && resolves_to(c, "u1", p) && resolves_to(b, "u2", p) &&
               resolves_to(c, "u2", p));

    /* on the node that made it */
    assert_int_equal(herd_unregister(a, "u1"), 0);
    assert_true(unknown_on(a, "u1"));
    WAIT_UNTIL(unknown_on(b, "u1") && unknown_on(c, "u1"));

    /* on another node */
    assert_int_equal(herd_unregister(c, "u2"), 0);
    assert_true(unknown_on(c, "u2"));
    WAIT_UNTIL(unknown_on(a, "u2") && unknown_on(b, "u2"));
    assert_int_equal(herd_is_alive(a, p), 1);
    WAIT_UNTIL(entries_of(a) == 0 && entries_of(b) == 0 && entries_of(c) == 0);
    /* and stays unregistered: a's periodic check (every 2 s in this version)
     * puts back only names that went missing, not names let go */
    ts_cluster_run_ms(2500);
    assert_true(unknown_on(a, "u2") && unknown_on(b, "u2") && unknown_on(c, "u2"));
    assert_true(unknown_on(a, "u1") && unknown_on(b, "u1") && unknown_on(c, "u1"));

    /* the name is free everywhere: another node's process takes it */
    herd_pid_t q = spawn_srv(b);
    assert_int_equal(herd_register(b, "u2", q, NULL), 0);
    WAIT_UNTIL(resolves_to(a, "u2", q) && resolves_to(c, "u2", q));

    /* several changes of one name within one loop iteration travel together:
     * the others end where the node that made them ended */
    herd_pid_t r1 = spawn_srv(a), r2 = spawn_srv(a);
    herd_meta_t last = meta1("v", "last");
    assert_int_equal(herd_register(a, "flip", r1, NULL), 0);
    assert_int_equal(herd_unregister(a, "flip"), 0);
    assert_int_equal(herd_register(a, "flip", r2, NULL), 0);
    assert_int_equal(herd_update_meta(a, "flip", &last), 0);
    assert_int_equal(herd_register(a, "blink", r1, NULL), 0);
    assert_int_equal(herd_unregister(a, "blink"), 0);
    assert_int_equal(herd_register(a, "marker", r1, NULL), 0);
    herd_node_t *others[2] = {b, c};
    for (int i = 0; i < 2; i++) {
        herd_node_t *n = others[i];
        WAIT_UNTIL(resolves_to(n, "marker", r1) && resolves_to(n, "flip", r2));
        herd_meta_t got = meta_of(n, "flip");
        assert_string_equal(herd_meta_get(&got, "v"), "last");
        assert_true(unknown_on(n, "blink"));
        WAIT_UNTIL(entries_of(n) == 3); /* u2, flip, marker */
        assert_int_equal(herd_registry_count(n, NULL), 3);
    }
    assert_int_equal(entries_of(a), 3);
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_registry_cluster_process_exit_propagates(void **state)
{
    (void)state;
    trio_t x = form(3, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1], *c = x.n[2];
    herd_pid_t p = spawn_srv(b), q = spawn_srv(b), keep = spawn_srv(c);
    const char *pn[3] = {"p1", "p2", "p3"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(herd_register(b, pn[i], p, NULL), 0);
    assert_int_equal(herd_register(b, "q1", q, NULL), 0);
    assert_int_equal(herd_register(c, "keep", keep, NULL), 0);
    WAIT_UNTIL(herd_registry_count(a, NULL) == 5 && herd_registry_count(c, NULL) == 5);

    kill_and_wait(b, p);  /* stopped */
    crash_and_wait(b, q); /* crashed */
    herd_node_t *all[3] = {a, b, c};
    for (int j = 0; j < 3; j++) {
        herd_node_t *n = all[j];
        WAIT_UNTIL(unknown_on(n, "p1") && unknown_on(n, "p2") && unknown_on(n, "p3") &&
                   unknown_on(n, "q1"));
        WAIT_UNTIL(entries_of(n) == 1);
        assert_true(resolves_to(n, "keep", keep));
        assert_int_equal(herd_registry_count(n, NULL), 1);
    }
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

/* A node may register a process of another node; the name goes when that
 * process exits on its own node. */
static void test_registry_cluster_register_pid_of_another_node(void **state)
{
    (void)state;
    trio_t x = form(2, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1];
    herd_pid_t p = spawn_srv(b);
    assert_int_equal(herd_register(a, "theirs", p, NULL), 0);
    assert_true(resolves_to(a, "theirs", p));
    WAIT_UNTIL(resolves_to(b, "theirs", p));
    assert_int_equal(herd_node_cast_name(a, "theirs", "hi", 2), 0);
    WAIT_UNTIL(ev_find(EV_CAST, p, 0) != NULL);

    kill_and_wait(b, p);
    WAIT_UNTIL(unknown_on(a, "theirs") && unknown_on(b, "theirs"));
    WAIT_UNTIL(entries_of(a) == 0 && entries_of(b) == 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* A node that joins later is sent the whole map. */
static void test_registry_cluster_late_joiner_gets_every_name(void **state)
{
    (void)state;
    trio_t x = form(2, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1];
    static herd_pid_t pids[2][100];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 100; i++) {
            char name[32];
            snprintf(name, sizeof(name), "%c-%d", 'a' + k, i);
            herd_meta_t m = meta1("name", name);
            pids[k][i] = spawn_srv(x.n[k]);
            assert_int_equal(herd_register(x.n[k], name, pids[k][i], &m), 0);
        }
    }
    /* some churn before the join: unregistered and exited names stay gone */
    assert_int_equal(herd_unregister(a, "a-0"), 0);
    kill_and_wait(b, pids[1][0]);
    WAIT_UNTIL(herd_registry_count(a, NULL) == 198 && herd_registry_count(b, NULL) == 198);

    herd_node_t *c = cluster_node("c", &CALM, &a, 1);
    herd_node_t *all[3] = {a, b, c};
    WAIT_UNTIL(ts_cluster_all_up(all, 3));
    WAIT_UNTIL(herd_registry_count(c, NULL) == 198);
    for (int k = 0; k < 2; k++) {
        for (int i = 1; i < 100; i++) {
            char name[32];
            snprintf(name, sizeof(name), "%c-%d", 'a' + k, i);
            herd_pid_t got;
            herd_meta_t m;
            assert_int_equal(herd_whereis(c, name, &got, &m), 0);
            assert_pid_eq(got, pids[k][i]);
            assert_string_equal(herd_meta_get(&m, "name"), name);
        }
    }
    assert_true(unknown_on(c, "a-0"));
    assert_true(unknown_on(c, "b-0"));
    herd_registry_stats_t s = stats_of(c);
    assert_true(s.full_syncs_in >= 1);
    assert_int_equal(s.names, 198);
    assert_int_equal(s.entries, 198);
    assert_int_equal(s.rejected, 0);
    assert_true(stats_of(a).full_syncs_out + stats_of(b).full_syncs_out >= 1);

    /* the newcomer takes part: its names reach the others, and a name taken
     * before it joined is taken for it too */
    herd_pid_t cp = spawn_srv(c);
    assert_int_equal(herd_register(c, "a-5", cp, NULL), HERD_EEXIST);
    assert_int_equal(herd_register(c, "c-0", cp, NULL), 0);
    WAIT_UNTIL(resolves_to(a, "c-0", cp) && resolves_to(b, "c-0", cp));
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

/* The same with a map whose full state is bigger than one message between
 * nodes (1 MiB): the header promises the whole map to a joining node. */
#define BIG_MAP 20000
static void test_registry_cluster_late_joiner_gets_a_large_map(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_pid_t p = spawn_srv(a);
    for (int i = 0; i < BIG_MAP; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big-%05d", i);
        assert_int_equal(herd_register(a, name, p, NULL), 0);
    }
    herd_node_t *b = cluster_node("b", &CALM, &a, 1);
    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    WAIT_UNTIL(herd_registry_count(b, NULL) == BIG_MAP);
    assert_true(resolves_to(b, "big-00000", p));
    assert_true(resolves_to(b, "big-19999", p));
    ts_node_free(b);
    ts_node_free(a);
}

/* A node freed without leaving: once the survivors declare it down its names
 * are hidden (not deleted), and once it is forgotten they are removed. */
static void test_registry_cluster_crashed_node_names_hidden_then_removed(void **state)
{
    (void)state;
    trio_t x = form(3, &FAST);
    herd_node_t *a = x.n[0], *b = x.n[1], *c = x.n[2];
    herd_pid_t pa = spawn_srv(a), pb = spawn_srv(b), pc = spawn_srv(c);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "a-%d", i);
        assert_int_equal(herd_register(a, name, pa, NULL), 0);
        snprintf(name, sizeof(name), "b-%d", i);
        assert_int_equal(herd_register(b, name, pb, NULL), 0);
        snprintf(name, sizeof(name), "c-%d", i);
        assert_int_equal(herd_register(c, name, pc, NULL), 0);
    }
    /* what counts is the node of the pid, not of the node that wrote it */
    assert_int_equal(herd_register(c, "c-wrote-for-a", pa, NULL), 0);
    assert_int_equal(herd_register(a, "a-wrote-for-c", pc, NULL), 0);
    WAIT_UNTIL(herd_registry_count(a, NULL) == 17 && herd_registry_count(b, NULL) == 17 &&
               herd_registry_count(c, NULL) == 17);
    assert_int_equal(entries_of(a), 17);
    assert_int_equal(entries_of(b), 17);

    ts_node_free(c); /* a crash: no leave */
    WAIT_UNTIL(herd_registry_count(a, NULL) == 11 && herd_registry_count(b, NULL) == 11);
    /* hidden: down, not gone, so still in the replica */
    assert_int_equal(ts_cluster_member_state(a, "c"), HERD_MEMBER_DOWN);
    assert_int_equal(ts_cluster_member_state(b, "c"), HERD_MEMBER_DOWN);
    assert_int_equal(entries_of(a), 17);
    assert_int_equal(entries_of(b), 17);
    assert_true(unknown_on(a, "c-0"));
    assert_true(unknown_on(b, "c-4"));
    assert_true(unknown_on(a, "a-wrote-for-c"));
    assert_true(unknown_on(b, "a-wrote-for-c"));
    assert_true(resolves_to(a, "c-wrote-for-a", pa));
    assert_true(resolves_to(b, "c-wrote-for-a", pa));
    assert_int_equal(herd_registry_count(a, "c-"), 1);
    assert_int_equal(herd_registry_count(a, "a-"), 5);
    assert_int_equal(herd_registry_count(b, "b-"), 5);
    assert_true(resolves_to(b, "a-0", pa));
    assert_true(resolves_to(a, "b-0", pb));
    assert_int_equal(herd_node_cast_name(a, "c-1", "x", 1), HERD_ENOENT);
    collected_t col;
    memset(&col, 0, sizeof(col));
    assert_int_equal(herd_registry_list(b, "c-", collect, &col), 1);
    assert_string_equal(col.names[0], "c-wrote-for-a");

    /* a hidden registration does not hold its name */
    herd_pid_t pa2 = spawn_srv(a);
    assert_int_equal(herd_register(a, "c-0", pa2, NULL), 0);
    assert_true(resolves_to(a, "c-0", pa2));
    WAIT_UNTIL(resolves_to(b, "c-0", pa2));
    assert_int_equal(entries_of(a), 18);

    /* forgotten: removed (the five of c's pids and the one a wrote for c) */
    WAIT_UNTIL(entries_of(a) == 12 && entries_of(b) == 12);
    assert_int_equal(ts_cluster_member_state(a, "c"), -1);
    herd_registry_stats_t s = stats_of(a);
    assert_int_equal(s.names, 12);
    assert_true(resolves_to(a, "c-0", pa2));
    assert_true(resolves_to(b, "c-0", pa2));
    assert_true(unknown_on(b, "c-1"));
    assert_true(unknown_on(a, "a-wrote-for-c"));
    assert_true(resolves_to(a, "c-wrote-for-a", pa));
    assert_true(resolves_to(b, "c-wrote-for-a", pa));
    assert_int_equal(herd_registry_count(a, NULL), 12);
    assert_int_equal(herd_registry_count(b, NULL), 12);
    ts_node_free(b);
    ts_node_free(a);
}

/* A graceful leave makes the node gone at once: no forget time to wait. */
static void test_registry_cluster_left_node_names_removed(void **state)
{
    (void)state;
    trio_t x = form(3, &FAST_NO_FORGET);
    herd_node_t *a = x.n[0], *b = x.n[1], *c = x.n[2];
    herd_pid_t pa = spawn_srv(a), pc = spawn_srv(c);
    assert_int_equal(herd_register(a, "stay", pa, NULL), 0);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "c-%d", i);
        assert_int_equal(herd_register(c, name, pc, NULL), 0);
    }
    WAIT_UNTIL(herd_registry_count(a, NULL) == 6 && herd_registry_count(b, NULL) == 6);
    assert_int_equal(herd_cluster_leave(c), 0);
    WAIT_UNTIL(entries_of(a) == 1 && entries_of(b) == 1);
    assert_true(unknown_on(a, "c-0"));
    assert_true(unknown_on(b, "c-0"));
    assert_true(resolves_to(b, "stay", pa));
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

/* A node that comes back with a new incarnation proves its old pids dead:
 * their names are removed without waiting for the forget time. */
static void test_registry_cluster_restarted_node_old_names_removed(void **state)
{
    (void)state;
    trio_t x = form(2, &FAST_NO_FORGET);
    herd_node_t *a = x.n[0], *b = x.n[1];
    herd_pid_t pa = spawn_srv(a), pb = spawn_srv(b);
    assert_int_equal(herd_register(a, "stay", pa, NULL), 0);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "old-%d", i);
        assert_int_equal(herd_register(b, name, pb, NULL), 0);
    }
    WAIT_UNTIL(herd_registry_count(a, NULL) == 6);
    uint64_t old_inc = herd_node_incarnation(b);
    ts_node_free(b);

    /* "b" again, a new start (new incarnation, new port) */
    herd_node_t *b2 = cluster_node("b", &FAST_NO_FORGET, &a, 1);
    assert_true(herd_node_incarnation(b2) != old_inc);
    herd_node_t *all[2] = {a, b2};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    WAIT_UNTIL(entries_of(a) == 1);
    assert_true(unknown_on(a, "old-0"));
    assert_true(resolves_to(a, "stay", pa));
    /* the new start sees only what is alive */
    WAIT_UNTIL(resolves_to(b2, "stay", pa));
    assert_true(unknown_on(b2, "old-0"));
    assert_int_equal(herd_registry_count(b2, "old-"), 0);
    WAIT_UNTIL(entries_of(b2) == 1);
    ts_node_free(b2);
    ts_node_free(a);
}

/* What every conflict test checks once things settle: every node in `all`
 * names `win`, `lose` has exited with HERD_REASON_NAME_CONFLICT (its own
 * terminate and the watcher's DOWN say so), the winner lives and its watcher
 * saw nothing, and only the loser's node counted a resolved conflict. */
static void conflict_settles(herd_node_t *const *all, int k, const char *name,
                             herd_node_t *win_node, herd_pid_t win, herd_pid_t win_watch,
                             herd_node_t *lose_node, herd_pid_t lose, herd_pid_t lose_watch)
{
    WAIT_UNTIL(ev_find(EV_DOWN, lose_watch, 0) != NULL);
    assert_int_equal(herd_is_alive(lose_node, lose), 0);
    const ev_t *down = ev_find(EV_DOWN, lose_watch, 0);
    assert_pid_eq(down->from, lose);
    assert_int_equal(down->status, HERD_REASON_NAME_CONFLICT);
    const ev_t *ex = ev_find(EV_EXIT, lose, 0);
    assert_non_null(ex);
    assert_int_equal(ex->status, HERD_REASON_NAME_CONFLICT);

    for (int i = 0; i < k; i++) {
        herd_node_t *n = all[i];
        WAIT_UNTIL(resolves_to(n, name, win));
        WAIT_UNTIL(entries_of(n) == stats_of(n).names); /* the loser's entry is gone */
    }
    ts_cluster_run_ms(200); /* nothing else happens */
    for (int i = 0; i < k; i++) {
        assert_true(resolves_to(all[i], name, win));
        herd_registry_stats_t s = stats_of(all[i]);
        assert_int_equal(s.conflicts_resolved, all[i] == lose_node ? 1 : 0);
        assert_int_equal(s.rejected, 0);
    }
    assert_int_equal(herd_is_alive(win_node, win), 1);
    assert_null(ev_find(EV_DOWN, win_watch, 0));
    assert_null(ev_find(EV_EXIT, win, 0));
    assert_int_equal(ev_count(EV_DOWN, lose_watch), 1);
}

/* Two nodes register one name before they have met (the loop has not run):
 * once they meet, the earlier registration wins on both. */
/* ---- name events (herd_events.h) ------------------------------------------------- */

#define NAMEV_MAX 32
typedef struct namev {
    int n;
    herd_event_kind_t kind[NAMEV_MAX];
    char name[NAMEV_MAX][32];
    herd_pid_t pid[NAMEV_MAX], other[NAMEV_MAX];
} namev_t;

static void namev_on(void *data, const herd_event_t *ev)
{
    namev_t *r = data;
    if (ts_detached() || r->n >= NAMEV_MAX)
        return;
    r->kind[r->n] = ev->kind;
    snprintf(r->name[r->n], sizeof(r->name[0]), "%s", ev->name);
    r->pid[r->n] = ev->pid;
    r->other[r->n] = ev->other;
    r->n++;
}

static int namev_has(const namev_t *r, herd_event_kind_t kind, const char *name, herd_pid_t pid)
{
    int k = 0;
    for (int i = 0; i < r->n; i++)
        k += r->kind[i] == kind && strcmp(r->name[i], name) == 0 && herd_pid_equal(r->pid[i], pid);
    return k;
}

/* Each node tells a name registered and unregistered as its replica sees
 * it: once per registration, not for a metadata update; an exit
 * unregisters; spec keys tell nothing. */
static void test_registry_cluster_name_events(void **state)
{
    (void)state;
    trio_t x = form(2, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1];
    static namev_t ea, eb;
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(herd_events_subscribe(a, HERD_EV_NAMES, namev_on, &ea, NULL), 0);
    assert_int_equal(herd_events_subscribe(b, HERD_EV_NAMES, namev_on, &eb, NULL), 0);
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "ev1", p, NULL), 0);
    assert_int_equal(ea.n, 1); /* told on the node that made it at once */
    assert_int_equal(namev_has(&ea, HERD_EV_NAME_REGISTERED, "ev1", p), 1);
    WAIT_UNTIL(namev_has(&eb, HERD_EV_NAME_REGISTERED, "ev1", p) == 1);

    herd_meta_t m = meta1("k", "v2");
    assert_int_equal(herd_update_meta(a, "ev1", &m), 0);
    assert_int_equal(herd_spec_put(a, "spec-of-ev", "x", 1), 0);
    WAIT_UNTIL(resolves_to(b, "ev1", p) && herd_spec_count(b) == 1);
    ts_cluster_run_ms(100);
    assert_int_equal(ea.n, 1);
    assert_int_equal(eb.n, 1);

    assert_int_equal(herd_unregister(b, "ev1"), 0);
    assert_int_equal(namev_has(&eb, HERD_EV_NAME_UNREGISTERED, "ev1", p), 1);
    WAIT_UNTIL(namev_has(&ea, HERD_EV_NAME_UNREGISTERED, "ev1", p) == 1);

    assert_int_equal(herd_register(a, "ev2", p, NULL), 0);
    WAIT_UNTIL(namev_has(&eb, HERD_EV_NAME_REGISTERED, "ev2", p) == 1);
    assert_int_equal(herd_exit(a, p, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(namev_has(&ea, HERD_EV_NAME_UNREGISTERED, "ev2", p) == 1 &&
               namev_has(&eb, HERD_EV_NAME_UNREGISTERED, "ev2", p) == 1);
    assert_int_equal(ea.n, 4);
    assert_int_equal(eb.n, 4);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_registry_cluster_conflict_earlier_registration_wins(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_node_t *b = cluster_node("b", &CALM, &a, 1);
    /* the earlier registration on the node with the higher id: the node-id
     * tie-break alone would pick the other one */
    int a_first = herd_node_id_of("a") > herd_node_id_of("b");
    herd_node_t *first = a_first ? a : b, *second = a_first ? b : a;
    herd_pid_t pf = spawn_srv(first), ps = spawn_srv(second);
    herd_pid_t wf = spawn_watch(first, pf), ws = spawn_watch(second, ps);
    herd_pid_t other = spawn_srv(second);
    /* the loser's node tells the conflict: winner and loser */
    static namev_t ev;
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(herd_events_subscribe(second, HERD_EV_BIT(HERD_EV_NAME_CONFLICT), namev_on,
                                           &ev, NULL),
                     0);

    assert_int_equal(herd_register(first, "x", pf, NULL), 0);
    wall_clock_moves_on();
    assert_int_equal(herd_register(second, "x", ps, NULL), 0); /* cannot see the first */
    assert_int_equal(herd_register(second, "y", other, NULL), 0);
    assert_true(resolves_to(first, "x", pf));
    assert_true(resolves_to(second, "x", ps));

    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    conflict_settles(all, 2, "x", first, pf, wf, second, ps, ws);
    WAIT_UNTIL(ev.n == 1);
    assert_int_equal(ev.kind[0], HERD_EV_NAME_CONFLICT);
    assert_string_equal(ev.name[0], "x");
    ts_assert_pid_eq(ev.pid[0], pf);
    ts_assert_pid_eq(ev.other[0], ps);
    /* the other names of the loser's node are untouched */
    assert_true(resolves_to(first, "y", other));
    assert_int_equal(herd_is_alive(second, other), 1);
    ts_node_free(b);
    ts_node_free(a);
}

/* Two separate clusters each register one name, then a third node joins them
 * (a partition that heals): all three report the same winner. */
static void test_registry_cluster_conflict_after_clusters_merge(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_node_t *b = cluster_node("b", &CALM, NULL, 0);
    int b_first = herd_node_id_of("b") > herd_node_id_of("a");
    herd_node_t *first = b_first ? b : a, *second = b_first ? a : b;
    herd_pid_t pf = spawn_srv(first), ps = spawn_srv(second);
    herd_pid_t wf = spawn_watch(first, pf), ws = spawn_watch(second, ps);
    herd_pid_t only_a = spawn_srv(a), only_b = spawn_srv(b);
    assert_int_equal(herd_register(a, "only-a", only_a, NULL), 0);
    assert_int_equal(herd_register(b, "only-b", only_b, NULL), 0);
    assert_int_equal(herd_register(first, "x", pf, NULL), 0);
    ts_cluster_run_ms(100);
    wall_clock_moves_on();
    assert_int_equal(herd_register(second, "x", ps, NULL), 0);
    ts_cluster_run_ms(300);
    /* still apart: each side has its own "x" */
    assert_int_equal(herd_cluster_members(a, NULL, 0), 1);
    assert_int_equal(herd_cluster_members(b, NULL, 0), 1);
    assert_true(resolves_to(first, "x", pf));
    assert_true(resolves_to(second, "x", ps));
    assert_true(unknown_on(a, "only-b"));

    herd_node_t *seeds[2] = {a, b};
    herd_node_t *c = cluster_node("c", &CALM, seeds, 2);
    herd_node_t *all[3] = {a, b, c};
    WAIT_UNTIL(ts_cluster_all_up(all, 3));
    conflict_settles(all, 3, "x", first, pf, wf, second, ps, ws);
    for (int i = 0; i < 3; i++) {
        WAIT_UNTIL(resolves_to(all[i], "only-a", only_a) && resolves_to(all[i], "only-b", only_b));
        assert_int_equal(herd_registry_count(all[i], NULL), 3);
    }
    ts_node_free(c);
    ts_node_free(b);
    ts_node_free(a);
}

/* The loser traps exits: "the node of the loser stops it" all the same, so
 * that exactly one copy survives. */
static void test_registry_cluster_conflict_loser_trapping_exits_is_stopped(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_node_t *b = cluster_node("b", &CALM, &a, 1);
    int a_first = herd_node_id_of("a") > herd_node_id_of("b");
    herd_node_t *first = a_first ? a : b, *second = a_first ? b : a;
    herd_pid_t pf = spawn_srv(first);
    herd_spawn_opts_t o = {.behaviour = &srv, .trap_exit = 1};
    herd_pid_t ps = HERD_PID_NONE;
    assert_int_equal(herd_spawn(second, &o, &ps), 0);
    herd_pid_t wf = spawn_watch(first, pf), ws = spawn_watch(second, ps);

    assert_int_equal(herd_register(first, "x", pf, NULL), 0);
    wall_clock_moves_on();
    assert_int_equal(herd_register(second, "x", ps, NULL), 0);
    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    WAIT_UNTIL(stats_of(second).conflicts_resolved >= 1); /* the loser's node decided */
    WAIT_UNTIL(ev_find(EV_EXIT, ps, 0) != NULL || ev_find(EV_TRAPPED, ps, 0) != NULL);
    ts_cluster_run_ms(200);
    const ev_t *trapped = ev_find(EV_TRAPPED, ps, 0);
    if (herd_is_alive(second, ps))
        fail_msg("the losing copy lives on: it trapped the exit signal (%s) as a message",
                 trapped ? herd_reason_name(trapped->status) : "none");
    conflict_settles(all, 2, "x", first, pf, wf, second, ps, ws);
    ts_node_free(b);
    ts_node_free(a);
}

/* A metadata update is the same registration: it keeps the time the name was
 * first registered, so it does not turn an earlier registration into a later
 * one. */
static void test_registry_cluster_conflict_metadata_update_keeps_time(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_node_t *b = cluster_node("b", &CALM, &a, 1);
    int a_first = herd_node_id_of("a") > herd_node_id_of("b");
    herd_node_t *first = a_first ? a : b, *second = a_first ? b : a;
    herd_pid_t pf = spawn_srv(first), ps = spawn_srv(second);
    herd_pid_t wf = spawn_watch(first, pf), ws = spawn_watch(second, ps);

    herd_meta_t m1 = meta1("v", "1"), m2 = meta1("v", "2");
    assert_int_equal(herd_register(first, "x", pf, &m1), 0);
    wall_clock_moves_on();
    assert_int_equal(herd_register(second, "x", ps, NULL), 0);
    wall_clock_moves_on();
    assert_int_equal(herd_register(first, "x", pf, &m2), 0); /* after the other one */
    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    conflict_settles(all, 2, "x", first, pf, wf, second, ps, ws);
    for (int i = 0; i < 2; i++) {
        herd_meta_t got = meta_of(all[i], "x");
        assert_string_equal(herd_meta_get(&got, "v"), "2");
    }
    ts_node_free(b);
    ts_node_free(a);
}

/* Two nodes register one name for the same pid: one registration, no
 * conflict; the process's exit removes both entries. */
static void test_registry_cluster_same_pid_on_two_nodes_is_no_conflict(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_node_t *b = cluster_node("b", &CALM, &a, 1);
    herd_pid_t p = spawn_srv(b);
    herd_pid_t w = spawn_watch(b, p);
    assert_int_equal(herd_register(b, "same", p, NULL), 0);
    wall_clock_moves_on();
    assert_int_equal(herd_register(a, "same", p, NULL), 0); /* before they met */
    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    WAIT_UNTIL(stats_of(a).full_syncs_in >= 1 && stats_of(b).full_syncs_in >= 1);
    ts_cluster_run_ms(200);
    for (int i = 0; i < 2; i++) {
        assert_true(resolves_to(all[i], "same", p));
        assert_int_equal(herd_registry_count(all[i], NULL), 1);
        assert_int_equal(stats_of(all[i]).conflicts_resolved, 0);
    }
    assert_int_equal(herd_is_alive(b, p), 1);
    assert_null(ev_find(EV_DOWN, w, 0));

    kill_and_wait(b, p);
    WAIT_UNTIL(unknown_on(a, "same") && unknown_on(b, "same"));
    WAIT_UNTIL(entries_of(a) == 0 && entries_of(b) == 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* Malformed messages on the registry's stream (app 1) are dropped and
 * counted; the replica and the node carry on. */
static void test_registry_cluster_malformed_sync_rejected(void **state)
{
    (void)state;
    trio_t x = form(2, &CALM);
    herd_node_t *a = x.n[0], *b = x.n[1];
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "fine", p, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "fine", p));
    uint64_t before = stats_of(b).rejected;
    uint64_t to = herd_node_id_of("b");
    static const uint8_t bad[][12] = {
        {9, 1, 2, 3},                    /* unknown kind */
        {1, 0xff, 0xff, 0xff, 0xff, 7},  /* a delta that does not decode */
        {3, 0, 1, 2},                    /* a digest cut short */
        {4, 0xff, 0xff, 1},              /* wanted buckets: more than there are */
        {5, 1, 0, 7, 0xee},              /* dots that do not decode */
    };
    static const size_t lens[] = {4, 6, 4, 4, 5};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        assert_int_equal(herd_cluster_send_app(a, to, 1, bad[i], lens[i]), 0);
    WAIT_UNTIL(stats_of(b).rejected == before + sizeof(lens) / sizeof(lens[0]));
    /* nothing changed, and changes still flow */
    assert_true(resolves_to(b, "fine", p));
    assert_int_equal(herd_registry_count(b, NULL), 1);
    assert_int_equal(stats_of(b).entries, 1);
    assert_int_equal(herd_register(a, "still", p, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "still", p));
    assert_int_equal(stats_of(a).rejected, 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- a node that comes back with the same incarnation --------------------------------- */

/* Node a's clock: the loop's, plus a skew the test sets. Jumping it forward
 * makes a hear nothing from b for longer than down_ms, so a declares b down
 * while b lives on, sees a up and keeps heartbeating: b's next heartbeat
 * brings it back at a with the same incarnation, as after a partition that
 * only a noticed (membership.h: each node judges liveness from the frames it
 * receives itself). */
static uint64_t g_skew;
static uint64_t skewed_now(void *data)
{
    (void)data;
    return uv_now(&ts_loop) + g_skew;
}
static const herd_clock_t skewed_clock = {.now_ms = skewed_now};

/* What a does from its member hook the moment it declares b down, and what
 * it saw then. */
static struct {
    herd_node_t *node;   /* a; NULL: do nothing */
    const char *name[2]; /* register these on a ... */
    herd_pid_t pid[2];   /* ... for these pids (NULL name: skip) */
    int fired, whereis_x_rc, count, register_rc[2];
} g_down;

static void on_b_down(void *data, const char *name, uint64_t incarnation,
                      herd_member_state_t old_state, herd_member_state_t new_state, int gone)
{
    (void)data, (void)incarnation, (void)old_state, (void)gone;
    if (g_down.node == NULL || g_down.fired || strcmp(name, "b") != 0 ||
        new_state != HERD_MEMBER_DOWN)
        return;
    g_down.fired = 1;
    g_down.whereis_x_rc = herd_whereis(g_down.node, "x", NULL, NULL);
    g_down.count = herd_registry_count(g_down.node, NULL);
    for (int i = 0; i < 2; i++)
        if (g_down.name[i])
            g_down.register_rc[i] = herd_register(g_down.node, g_down.name[i], g_down.pid[i],
                                                  NULL);
}

/* a (skewed clock, hook above) and b, up, small timings, no forgetting. */
static void skewed_pair(herd_node_t **a_out, herd_node_t **b_out)
{
    g_skew = 0;
    memset(&g_down, 0, sizeof(g_down));
    herd_node_config_t cfg = {.name = "a", .loop = &ts_loop, .clock = &skewed_clock};
    herd_node_t *a = ts_cluster_add(&cfg);
    const ts_timing_t *t = &FAST_NO_FORGET;
    ts_cluster_join(a, t, NULL, 0);
    assert_int_equal(herd_registry_start(a), 0);
    assert_int_equal(herd_cluster_on_change(a, on_b_down, NULL), 0); /* after the registry's */
    herd_node_t *b = cluster_node("b", t, &a, 1);
    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
    *a_out = a;
    *b_out = b;
}

/* Make a hold b down for a moment (the hook acts then); wait until b is back
 * at a with the same incarnation. */
static void a_holds_b_down(herd_node_t *a, herd_node_t *b)
{
    uint64_t b_inc = herd_node_incarnation(b);
    g_down.node = a;
    g_skew += 10u * FAST_NO_FORGET.down_ms; /* a hears nothing for a while */
    WAIT_UNTIL(g_down.fired);
    herd_node_t *all[2] = {a, b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2)); /* b heartbeats on: back up at a */
    assert_int_equal(herd_cluster_member_incarnation(a, herd_node_id_of("b")), b_inc);
    g_down.node = NULL;
}

/* b's names are hidden on a while a holds b down, a registers one of them
 * again meanwhile, and when b comes back (same incarnation) its names
 * reappear: the two registrations of "x" meet, and the earlier one (b's)
 * wins on both nodes. */
static void test_registry_cluster_conflict_when_down_node_comes_back(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    skewed_pair(&a, &b);
    herd_node_t *all[2] = {a, b};
    herd_pid_t pb = spawn_srv(b), pa = spawn_srv(a);
    herd_pid_t wb = spawn_watch(b, pb), wa = spawn_watch(a, pa);
    assert_int_equal(herd_register(b, "x", pb, NULL), 0);
    assert_int_equal(herd_register(b, "b-only", pb, NULL), 0);
    WAIT_UNTIL(resolves_to(a, "x", pb) && resolves_to(a, "b-only", pb));
    wall_clock_moves_on();

    g_down.name[0] = "x";
    g_down.pid[0] = pa;
    a_holds_b_down(a, b);
    assert_int_equal(g_down.whereis_x_rc, HERD_ENOENT); /* hidden */
    assert_int_equal(g_down.count, 0);
    assert_int_equal(g_down.register_rc[0], 0); /* a hidden entry does not hold the name */

    conflict_settles(all, 2, "x", b, pb, wb, a, pa, wa);
    for (int i = 0; i < 2; i++)
        WAIT_UNTIL(resolves_to(all[i], "b-only", pb));
    ts_node_free(b);
    ts_node_free(a);
}

/* While a holds b down it ships b nothing; when b is back, what a changed
 * meanwhile must still reach b (the header: a node that comes back is sent
 * the whole map), though b itself never saw a go down. */
static void test_registry_cluster_changes_while_peer_down_reach_it_after(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    skewed_pair(&a, &b);
    herd_pid_t pa = spawn_srv(a), pb = spawn_srv(b);
    assert_int_equal(herd_register(a, "before", pa, NULL), 0);
    assert_int_equal(herd_register(b, "from-b", pb, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "before", pa) && resolves_to(a, "from-b", pb));

    g_down.name[0] = "during";
    g_down.pid[0] = pa;
    a_holds_b_down(a, b);
    assert_int_equal(g_down.register_rc[0], 0);
    assert_true(resolves_to(a, "during", pa));
    WAIT_UNTIL(resolves_to(a, "from-b", pb)); /* b's names are visible at a again */

    /* a change after the return travels as usual ... */
    assert_int_equal(herd_register(a, "after", pa, NULL), 0);
    WAIT_UNTIL(resolves_to(b, "after", pa));
    /* ... and the one made while b was down must arrive too */
    uint64_t t0 = ts_mono_ms();
    while (!resolves_to(b, "during", pa)) {
        if (ts_mono_ms() - t0 > 3000u)
            fail_msg("b never learns 'during', registered on a while a held b down "
                     "(a: %d names, b: %d names; b's digest syncs in: %llu)",
                     herd_registry_count(a, NULL), herd_registry_count(b, NULL),
                     (unsigned long long)stats_of(b).full_syncs_in);
        ts_cluster_run_slice(5);
    }
    assert_int_equal(herd_registry_count(b, NULL), herd_registry_count(a, NULL));
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- freeing a node ---------------------------------------------------------------------- */

/* herd_node_free while registry messages to the node are waiting in its
 * socket: the node must not hand them to its registry, which it frees first.
 * b runs on a loop of its own, which the test stops driving (a node that has
 * stalled), so the deltas a sends meanwhile are sure to be waiting there.
 * (Last in the list: under AddressSanitizer a use-after-free aborts the
 * whole program.) */
static void test_registry_cluster_node_freed_while_deltas_arrive(void **state)
{
    (void)state;
    herd_node_t *a = cluster_node("a", &CALM, NULL, 0);
    herd_node_t *b = cluster_node_on("b", NULL, &CALM, &a, 1);
    herd_node_t *all[2] = {a, b};
    herd_pid_t p = spawn_srv(a);
    assert_int_equal(herd_register(a, "early", p, NULL), 0);
    uint64_t t0 = ts_mono_ms();
    while (!ts_cluster_all_up(all, 2) || herd_registry_count(b, NULL) != 1) {
        if (ts_mono_ms() - t0 > WAIT_MS)
            fail_msg("a and b never met");
        assert_int_equal(herd_node_run_for(a, 2), 0);
        assert_int_equal(herd_node_run_for(b, 2), 0);
    }
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "late-%d", i);
        assert_int_equal(herd_register(a, name, p, NULL), 0);
    }
    assert_int_equal(herd_node_run_for(a, 50), 0); /* only a's loop: the deltas leave */
    ts_node_free(b);
    /* a carries on */
    assert_int_equal(herd_registry_count(a, NULL), 21);
    ts_cluster_run_ms(50);
    assert_true(resolves_to(a, "late-19", p));
    ts_node_free(a);
}

int main(void)
{
    ts_cluster_init("test_registry", SECRET);
    if (getenv("HERD_TEST_LOG") == NULL)
        herd_log_set_level(HERD_LOG_WARN);
    /* run or skip only some cases: a cmocka pattern, e.g. "*conflict*" */
    if (getenv("TEST_REGISTRY_FILTER"))
        cmocka_set_test_filter(getenv("TEST_REGISTRY_FILTER"));
    if (getenv("TEST_REGISTRY_SKIP"))
        cmocka_set_skip_filter(getenv("TEST_REGISTRY_SKIP"));
#define T(f) cmocka_unit_test_setup_teardown(f, setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_register_whereis_unregister),
        T(test_registry_read_your_writes),
        T(test_registry_whereis_many),
        T(test_registry_name_held_by_another_pid_eexist),
        T(test_registry_name_of_an_exiting_holder_can_be_taken),
        T(test_registry_same_pid_again_updates_metadata),
        T(test_registry_dead_local_pid_enoproc),
        T(test_registry_bad_names_einval),
        T(test_registry_unknown_name_enoent),
        T(test_registry_node_without_registry_enoent),
        T(test_registry_start_twice_eexist),
        T(test_registry_meta_set_get_limits),
        T(test_registry_exit_removes_every_name_of_the_process),
        T(test_registry_messages_by_name_reach_the_process),
        T(test_registry_list_and_count_by_prefix),
        T(test_registry_stats_count_names_and_entries),
        T(test_registry_many_entries_go_with_their_node),
        T(test_registry_many_entries_of_one_pid_unregistered),
        T(test_registry_many_entries_of_a_local_pid_go),
        T(test_registry_watchers_of_added_names),
        T(test_registry_cluster_names_visible_on_every_node),
        T(test_registry_cluster_call_by_name_across_nodes),
        T(test_registry_cluster_unregister_propagates),
        T(test_registry_cluster_name_events),
        T(test_registry_cluster_process_exit_propagates),
        T(test_registry_cluster_register_pid_of_another_node),
        T(test_registry_cluster_late_joiner_gets_every_name),
        T(test_registry_cluster_late_joiner_gets_a_large_map),
        T(test_registry_cluster_crashed_node_names_hidden_then_removed),
        T(test_registry_cluster_left_node_names_removed),
        T(test_registry_cluster_restarted_node_old_names_removed),
        T(test_registry_cluster_conflict_earlier_registration_wins),
        T(test_registry_cluster_conflict_after_clusters_merge),
        T(test_registry_cluster_conflict_loser_trapping_exits_is_stopped),
        T(test_registry_cluster_conflict_metadata_update_keeps_time),
        T(test_registry_cluster_same_pid_on_two_nodes_is_no_conflict),
        T(test_registry_cluster_malformed_sync_rejected),
        T(test_registry_cluster_conflict_when_down_node_comes_back),
        T(test_registry_cluster_changes_while_peer_down_reach_it_after),
        T(test_registry_cluster_node_freed_while_deltas_arrive),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
