/*
 * test_remote.c - unit tests for messages between nodes (runtime/remote.h,
 * the cluster section of herd_runtime.h): blocking and process calls to
 * another node, deferred and late replies, timeouts, callees that exit,
 * casts in order, remote monitors, a node that dies, and the errors of
 * sends that cannot be routed.
 *
 * Every test makes two or three nodes in this one process, all on one
 * uv_loop_t (herd_node_config_t.loop), clustered over tcp://127.0.0.1 on
 * ports picked at random per run (another port on a bind failure), and waits
 * until each sees the others up. Every wait has a deadline and runs the loop
 * in small slices; no assertion depends on how fast anything is.
 *
 * Behaviours: "srv" answers calls (echo, error, deferred, held for the test
 * to answer, crash) and crashes on a cast; "sink" checks the order of the
 * casts it gets, per sender; "cli" does what a cast from the test tells it
 * (call, monitor, demonitor, link, a stream of casts) and records the replies
 * and DOWNs it gets. Callbacks only record into the global logs below; the
 * tests assert on them.
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

#include "cluster.h" /* cluster_peer_t: the allocation test_remote fails on purpose */
#include "frame.h" /* FRAME_DEFAULT_MAX_BODY: the limit of one message between nodes */
#include "herd_ring.h" /* herd_ring_hash_key: the check sum of an app's message */
#include "wire.h"
#include "herd_runtime.h"
#include "support.h"

#define SECRET "test-remote-secret-0123456789"
#define LOG_MAX 512
#define DATA_MAX 64
#define WAIT_MS 10000u /* deadline of every wait */

#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

/* ---- nodes ------------------------------------------------------------------- */

/* Generous: a slow (sanitized) run must not see a live node go down. */
static const ts_timing_t NORMAL = {100, 1500, 3000, 0};
/* For the tests where a node dies. */
static const ts_timing_t FAST = {50, 150, 300, 0};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A node on the shared loop, not in a cluster. */
static herd_node_t *plain_node(const char *name, uint32_t max_message)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop, .max_message = max_message};
    return ts_cluster_add(&cfg);
}

/* A node in the test's cluster, joining through `seed` (NULL: the first). */
static herd_node_t *cluster_node(const char *name, const ts_timing_t *t, herd_node_t *seed,
                                 uint32_t max_message)
{
    herd_node_t *n = plain_node(name, max_message);
    ts_cluster_join(n, t, &seed, seed ? 1 : 0);
    return n;
}

/* Two (or three) nodes a, b (, c) that see each other up. */
typedef struct trio {
    herd_node_t *a, *b, *c;
} trio_t;

static trio_t form(int k, const ts_timing_t *t, uint32_t a_max_message)
{
    trio_t x = {0};
    x.a = cluster_node("a", t, NULL, a_max_message);
    x.b = cluster_node("b", t, x.a, 0);
    if (k == 3) x.c = cluster_node("c", t, x.a, 0);
    herd_node_t *all[3] = {x.a, x.b, x.c};
    WAIT_UNTIL(ts_cluster_all_up(all, k));
    return x;
}

static herd_pid_t outside_pid(herd_node_t *n)
{
    return (herd_pid_t){herd_node_id_of(herd_node_name(n)), herd_node_incarnation(n), 0};
}

static void assert_pid_eq(herd_pid_t a, herd_pid_t b)
{
    assert_int_equal(a.node, b.node);
    assert_int_equal(a.incarnation, b.incarnation);
    assert_int_equal(a.serial, b.serial);
}

static herd_pid_t spawn(herd_node_t *n, const herd_behaviour_t *b)
{
    herd_spawn_opts_t o = {.behaviour = b};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

/* ---- logs ---------------------------------------------------------------------- */

typedef struct seen { /* a REPLY or DOWN that cli got */
    herd_pid_t self;  /* refs are unique per node only: match both */
    int kind;
    uint64_t ref;
    herd_pid_t from;
    int status;
    size_t len;
    uint8_t data[DATA_MAX];
} seen_t;

static seen_t g_seen[LOG_MAX];
static size_t g_nseen;

/* what cli's commands returned */
static int g_cli_rc[LOG_MAX];
static uint64_t g_cli_ref[LOG_MAX];
static size_t g_ncli;
static int g_cast_errors; /* herd_cast failures in a stream */
static int g_cast_first_error;

/* srv */
typedef struct srv_call {
    herd_pid_t from_pid; /* msg->from */
    herd_from_t from;
    char body[DATA_MAX];
} srv_call_t;
static srv_call_t g_srv_calls[LOG_MAX];
static size_t g_nsrv_calls;
static herd_from_t g_held[LOG_MAX]; /* calls held for the test to answer */
static size_t g_nheld;
static int g_srv_rc[LOG_MAX]; /* what srv's own herd_reply calls returned */
static size_t g_nsrv_rc;
static int g_srv_exits;

/* sink: casts tagged (tag, seq); each tag must count up from 0 */
#define TAGS 4
static herd_pid_t g_sink_from[TAGS]; /* the sender each tag must come from */
static uint32_t g_sink_next[TAGS];
static uint32_t g_sink_bad; /* out of order, twice, or from the wrong pid */
static uint64_t g_sink_total;
static size_t g_sink_big[8]; /* lengths of untagged (big) casts, in order */
static size_t g_nsink_big;

static void reset_logs(void)
{
    memset(g_seen, 0, sizeof(g_seen));
    g_nseen = g_ncli = g_nsrv_calls = g_nheld = g_nsrv_rc = g_nsink_big = 0;
    g_cast_errors = g_srv_exits = 0;
    g_cast_first_error = 0;
    memset(g_sink_from, 0, sizeof(g_sink_from));
    memset(g_sink_next, 0, sizeof(g_sink_next));
    g_sink_bad = 0;
    g_sink_total = 0;
}

/* What cli `self` got of `kind` with `ref`. */
static uint64_t late_replies(const herd_node_t *n)
{
    herd_node_stats_t st;
    herd_node_stats(n, &st);
    return st.late_replies;
}

static const seen_t *find_seen(herd_pid_t self, int kind, uint64_t ref)
{
    for (size_t i = 0; i < g_nseen; i++)
        if (g_seen[i].kind == kind && g_seen[i].ref == ref &&
            herd_pid_equal(g_seen[i].self, self))
            return &g_seen[i];
    return NULL;
}

static size_t count_seen(herd_pid_t self, int kind, uint64_t ref)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nseen; i++)
        k += g_seen[i].kind == kind && g_seen[i].ref == ref &&
             herd_pid_equal(g_seen[i].self, self);
    return k;
}

static int has_prefix(const herd_msg_t *m, const char *p)
{
    size_t n = strlen(p);
    return m->len >= n && memcmp(m->data, p, n) == 0;
}

/* ---- srv ----------------------------------------------------------------------- */

static int srv_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    (void)arg;
    (void)len;
    *state = calloc(1, sizeof(herd_from_t) * 4); /* owned: freed by terminate */
    return *state ? 0 : HERD_ENOMEM;
}

static void srv_rc(int rc)
{
    if (g_nsrv_rc < LOG_MAX) g_srv_rc[g_nsrv_rc++] = rc;
}

static int srv_call(herd_proc_t *self, void *state, const herd_msg_t *msg,
                    herd_from_t from)
{
    herd_from_t *deferred = state;
    herd_node_t *node = herd_proc_node(self);
    if (g_nsrv_calls < LOG_MAX) {
        srv_call_t *c = &g_srv_calls[g_nsrv_calls++];
        c->from_pid = msg->from;
        c->from = from;
        size_t n = msg->len < DATA_MAX - 1 ? msg->len : DATA_MAX - 1;
        memcpy(c->body, msg->data, n);
        c->body[n] = '\0';
    }
    if (has_prefix(msg, "echo:")) {
        srv_rc(herd_reply(node, from, 0, msg->data + 5, msg->len - 5));
    } else if (has_prefix(msg, "error")) {
        srv_rc(herd_reply(node, from, HERD_ERANGE, "why", 3));
    } else if (has_prefix(msg, "app-error")) { /* the service's own code: the largest */
        srv_rc(herd_reply_error(node, from, HERD_APP_ERROR_MAX, "mine", 4));
    } else if (has_prefix(msg, "app-bad")) { /* out of range: refused, nothing sent */
        int rc = herd_reply_error(node, from, 0, NULL, 0);
        srv_rc(rc == HERD_EINVAL ? herd_reply_error(node, from, 7, NULL, 0) : -1000);
    } else if (has_prefix(msg,
                          "noproc")) { /* the callee's own error, not the runtime's */
        srv_rc(herd_reply(node, from, HERD_ENOPROC, NULL, 0));
    } else if (has_prefix(msg, "defer")) {
        uint64_t t;
        deferred[0] = from;
        srv_rc(herd_send_after(node, herd_self(self), 20, "release", 7, &t));
    } else if (has_prefix(msg, "hold")) {
        if (g_nheld < LOG_MAX) g_held[g_nheld++] = from;
    } else if (has_prefix(msg, "crash")) {
        return HERD_EIO;
    } else if (has_prefix(msg, "ping")) {
        srv_rc(herd_reply(node, from, 0, "pong", 4));
    }
    return 0;
}

static int srv_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    herd_from_t *deferred = state;
    herd_node_t *node = herd_proc_node(self);
    if (has_prefix(msg, "release")) {
        srv_rc(herd_reply(node, deferred[0], 0, "deferred", 8));
        srv_rc(herd_reply(node, deferred[0], 0, "twice", 5)); /* dropped: 0 */
    }
    return 0;
}

static int srv_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    (void)state;
    if (has_prefix(msg, "crash")) return HERD_ERANGE;
    return 0;
}

static void srv_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    (void)reason;
    free(state);
    g_srv_exits++;
}

static const herd_behaviour_t srv = {.name = "srv",
                                     .init = srv_init,
                                     .handle_call = srv_call,
                                     .handle_cast = srv_cast,
                                     .handle_info = srv_info,
                                     .terminate = srv_terminate};

/* ---- sink ---------------------------------------------------------------------- */

typedef struct tagged {
    uint32_t tag, seq;
} tagged_t;

static int sink_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    (void)state;
    g_sink_total++;
    if (msg->len != sizeof(tagged_t)) {
        if (g_nsink_big < 8) g_sink_big[g_nsink_big++] = msg->len;
        return 0;
    }
    tagged_t t;
    memcpy(&t, msg->data, sizeof(t));
    if (t.tag >= TAGS || t.seq != g_sink_next[t.tag] ||
        !herd_pid_equal(msg->from, g_sink_from[t.tag])) {
        g_sink_bad++;
        return 0;
    }
    g_sink_next[t.tag]++;
    return 0;
}

static const herd_behaviour_t sink = {.name = "sink", .handle_cast = sink_cast};

/* ---- cli ----------------------------------------------------------------------- */

typedef enum cmd_op {
    CMD_CALL = 1,
    CMD_MONITOR,
    CMD_DEMONITOR,
    CMD_LINK,
    CMD_CASTS, /* `count` casts (tag, 0..count-1) to pid */
    CMD_MORE,  /* cli to itself: the rest of a stream */
} cmd_op_t;

typedef struct cmd {
    int op;
    herd_pid_t pid;
    uint64_t ref;
    uint32_t timeout_ms, count, tag;
    uint32_t body_len;
    char body[DATA_MAX];
} cmd_t;

typedef struct cli {
    herd_pid_t target;
    uint32_t next, count, tag;
} cli_t;

static int cli_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    (void)arg;
    (void)len;
    *state = calloc(1, sizeof(cli_t));
    return *state ? 0 : HERD_ENOMEM;
}

static void cli_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    (void)reason;
    free(state);
}

/* Up to 500 casts of the stream, then a note to itself for the rest: the loop
 * turns between chunks, so they leave in several frames. */
static void cli_stream(herd_proc_t *self, cli_t *c)
{
    for (int i = 0; i < 500 && c->next < c->count; i++) {
        tagged_t t = {c->tag, c->next};
        int rc = herd_cast(self, c->target, &t, sizeof(t));
        if (rc != 0) {
            if (g_cast_errors++ == 0) g_cast_first_error = rc;
            c->count = c->next; /* give up */
            return;
        }
        c->next++;
    }
    if (c->next < c->count) {
        cmd_t more = {.op = CMD_MORE};
        herd_cast(self, herd_self(self), &more, sizeof(more));
    }
}

static int cli_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    cli_t *c = state;
    cmd_t cmd;
    if (msg->len != sizeof(cmd)) return 0;
    memcpy(&cmd, msg->data, sizeof(cmd));
    if (cmd.op == CMD_MORE) {
        cli_stream(self, c);
        return 0;
    }
    int rc = HERD_EINVAL;
    uint64_t ref = 0;
    switch (cmd.op) {
    case CMD_CALL:
        rc = herd_call(self, cmd.pid, cmd.body, cmd.body_len, cmd.timeout_ms, &ref);
        break;
    case CMD_MONITOR:
        rc = herd_monitor(self, cmd.pid, &ref);
        break;
    case CMD_DEMONITOR:
        rc = herd_demonitor(self, cmd.ref);
        break;
    case CMD_LINK:
        rc = herd_link(self, cmd.pid);
        break;
    case CMD_CASTS:
        *c = (cli_t){cmd.pid, 0, cmd.count, cmd.tag};
        cli_stream(self, c);
        rc = 0;
        break;
    }
    if (g_ncli < LOG_MAX) {
        g_cli_rc[g_ncli] = rc;
        g_cli_ref[g_ncli] = ref;
        g_ncli++;
    }
    return 0;
}

static int cli_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if ((msg->kind != HERD_MSG_REPLY && msg->kind != HERD_MSG_DOWN) || g_nseen >= LOG_MAX)
        return 0;
    seen_t *s = &g_seen[g_nseen++];
    s->self = herd_self(self);
    s->kind = (int)msg->kind;
    s->ref = msg->ref;
    s->from = msg->from;
    s->status = msg->status;
    s->len = msg->len;
    memcpy(s->data, msg->data, msg->len < DATA_MAX ? msg->len : DATA_MAX);
    return 0;
}

static const herd_behaviour_t cli = {.name = "cli",
                                     .init = cli_init,
                                     .handle_cast = cli_cast,
                                     .handle_info = cli_info,
                                     .terminate = cli_terminate};

/* Tell cli (on node n) to do `cmd`; waits until it did. Returns the index of
 * its result in g_cli_rc / g_cli_ref. */
static size_t cli_do(herd_node_t *n, herd_pid_t c, const cmd_t *cmd)
{
    size_t k = g_ncli;
    assert_int_equal(herd_node_cast(n, c, cmd, sizeof(*cmd)), 0);
    WAIT_UNTIL(g_ncli > k);
    return k;
}

static size_t cli_call(herd_node_t *n, herd_pid_t c, herd_pid_t to, const char *body,
                       uint32_t timeout_ms)
{
    cmd_t cmd = {.op = CMD_CALL, .pid = to, .timeout_ms = timeout_ms};
    cmd.body_len = (uint32_t)strlen(body);
    memcpy(cmd.body, body, cmd.body_len);
    return cli_do(n, c, &cmd);
}

static size_t cli_monitor(herd_node_t *n, herd_pid_t c, herd_pid_t target)
{
    cmd_t cmd = {.op = CMD_MONITOR, .pid = target};
    return cli_do(n, c, &cmd);
}

/* A blocking call that must answer `want` (text). */
static void call_expect(herd_node_t *n, herd_pid_t to, const char *req, const char *want)
{
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, to, req, strlen(req), WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, strlen(want));
    assert_memory_equal(r.data, want, r.len);
    herd_reply_free(&r);
}

/* ---- setup and teardown ------------------------------------------------------- */

static void *g_scratch; /* a test's big buffer: teardown frees it, even after a failure */

static uint8_t *scratch(size_t len)
{
    free(g_scratch);
    g_scratch = calloc(1, len);
    assert_non_null(g_scratch);
    return g_scratch;
}

static int setup(void **state)
{
    reset_logs();
    return ts_cluster_setup(state);
}

/* Frees what the test left (after a failure, or on purpose), then checks that
 * the shared loop has nothing left open. */
static int teardown(void **state)
{
    int rc = ts_cluster_teardown(state);
    free(g_scratch);
    g_scratch = NULL;
    return rc;
}

/* ---- tests: forming -------------------------------------------------------------- */

static void test_remote_three_nodes_see_each_other(void **state)
{
    (void)state;
    trio_t x = form(3, &NORMAL, 0);
    herd_member_info_t info[4];
    assert_int_equal(herd_cluster_members(x.b, info, 4), 3);
    assert_string_equal(info[0].name, "a"); /* name order */
    assert_string_equal(info[1].name, "b");
    assert_string_equal(info[2].name, "c");
    assert_int_equal(info[0].incarnation, herd_node_incarnation(x.a));
    assert_string_equal(info[0].address, ts_cluster_addr(x.a));
    /* every pair talks, both ways */
    herd_pid_t sa = spawn(x.a, &srv), sb = spawn(x.b, &srv), sc = spawn(x.c, &srv);
    call_expect(x.a, sb, "echo:a>b", "a>b");
    call_expect(x.b, sa, "echo:b>a", "b>a");
    call_expect(x.a, sc, "echo:a>c", "a>c");
    call_expect(x.c, sb, "echo:c>b", "c>b");
    call_expect(x.b, sc, "echo:b>c", "b>c");
    call_expect(x.c, sa, "echo:c>a", "c>a");
    ts_node_free(x.c);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* ---- tests: calls -------------------------------------------------------------- */

static void test_remote_node_call_reply_bytes_intact(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    enum { BIG = 200000 };
    uint8_t *req = scratch(5 + BIG);
    memcpy(req, "echo:", 5);
    uint64_t rng = 7;
    for (size_t i = 0; i < BIG; i++)
        req[5 + i] = (uint8_t)rng_next(&rng);
    req[5] = 0; /* zeros and every byte value travel as they are */
    req[6] = 0xff;
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, s, req, 5 + BIG, WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, BIG);
    assert_memory_equal(r.data, req + 5, BIG);
    herd_reply_free(&r);
    /* the callee saw the caller: a's code outside processes */
    assert_int_equal(g_nsrv_calls, 1);
    assert_pid_eq(g_srv_calls[0].from_pid, outside_pid(x.a));
    assert_pid_eq(g_srv_calls[0].from.pid, outside_pid(x.a));
    /* an empty reply, an error status with data, and many in a row */
    assert_int_equal(herd_node_call(x.a, s, "echo:", 5, WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, 0);
    herd_reply_free(&r);
    assert_int_equal(herd_node_call(x.a, s, "error", 5, WAIT_MS, &r), 0);
    assert_int_equal(r.status, HERD_ERANGE);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.data, "why", 3);
    herd_reply_free(&r);
    assert_int_equal(herd_node_call(x.a, s, "noproc", 6, WAIT_MS, &r), 0);
    assert_int_equal(r.status, HERD_ENOPROC);
    herd_reply_free(&r);
    /* the service's own error codes cross the wire apart from herd's */
    assert_int_equal(herd_node_call(x.a, s, "app-error", 9, WAIT_MS, &r), 0);
    assert_int_equal(herd_app_error_code(r.status), HERD_APP_ERROR_MAX);
    assert_string_equal(herd_err_name(r.status), "EAPP");
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.data, "mine", 4);
    herd_reply_free(&r);
    assert_int_equal(herd_node_call(x.a, s, "app-bad", 7, WAIT_MS, &r), 0);
    assert_int_equal(herd_app_error_code(r.status), 7);
    herd_reply_free(&r);
    for (size_t len = 0; len < 3000; len += 97) {
        assert_int_equal(herd_node_call(x.a, s, req, 5 + len, WAIT_MS, &r), 0);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.len, len);
        if (len) assert_memory_equal(r.data, req + 5, len);
        herd_reply_free(&r);
    }
    for (size_t i = 0; i < g_nsrv_rc; i++)
        assert_int_equal(g_srv_rc[i], 0);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_deferred_reply(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    call_expect(x.a, s, "defer", "deferred");
    /* the first reply answered the call; a second one finds nobody waiting
     * and is dropped as late, which is no error of the callee's */
    WAIT_UNTIL(g_nsrv_rc >= 3);
    assert_int_equal(g_srv_rc[0], 0); /* herd_send_after */
    assert_int_equal(g_srv_rc[1], 0);
    assert_int_equal(g_srv_rc[2], 0);
    assert_int_equal(late_replies(x.b), 1);
    /* and from a process: the deferred reply comes to handle_info */
    herd_pid_t c = spawn(x.a, &cli);
    size_t k = cli_call(x.a, c, s, "defer", WAIT_MS);
    assert_int_equal(g_cli_rc[k], 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k]) != NULL);
    const seen_t *r = find_seen(c, HERD_MSG_REPLY, g_cli_ref[k]);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->len, 8);
    assert_memory_equal(r->data, "deferred", 8);
    assert_pid_eq(r->from, s);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_process_call_reply_in_handle_info(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    herd_pid_t c = spawn(x.a, &cli);
    size_t k1 = cli_call(x.a, c, s, "echo:hello", WAIT_MS);
    size_t k2 = cli_call(x.a, c, s, "error", WAIT_MS);
    assert_int_equal(g_cli_rc[k1], 0);
    assert_int_equal(g_cli_rc[k2], 0);
    assert_true(g_cli_ref[k1] != g_cli_ref[k2]);
    WAIT_UNTIL(g_nseen >= 2);
    /* replies in the order of the calls, each with its call's ref */
    assert_int_equal(g_seen[0].kind, HERD_MSG_REPLY);
    assert_int_equal(g_seen[0].ref, g_cli_ref[k1]);
    assert_pid_eq(g_seen[0].from, s);
    assert_pid_eq(g_seen[0].self, c);
    assert_int_equal(g_seen[0].status, 0);
    assert_int_equal(g_seen[0].len, 5);
    assert_memory_equal(g_seen[0].data, "hello", 5);
    assert_int_equal(g_seen[1].kind, HERD_MSG_REPLY);
    assert_int_equal(g_seen[1].ref, g_cli_ref[k2]);
    assert_int_equal(g_seen[1].status, HERD_ERANGE);
    assert_memory_equal(g_seen[1].data, "why", 3);
    /* the callee saw the calling process and the call's ref */
    assert_int_equal(g_nsrv_calls, 2);
    assert_pid_eq(g_srv_calls[0].from_pid, c);
    assert_pid_eq(g_srv_calls[0].from.pid, c);
    assert_int_equal(g_srv_calls[0].from.ref, g_cli_ref[k1]);
    ts_cluster_run_ms(50);
    assert_int_equal(g_nseen, 2); /* once each */
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_call_timeout_late_reply_dropped(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, s, "hold", 4, 200, &r), HERD_ETIMEDOUT);
    assert_int_equal(r.status, HERD_ETIMEDOUT);
    assert_null(r.data);
    herd_reply_free(&r);
    WAIT_UNTIL(g_nheld == 1);
    /* b cannot know a gave up: its reply goes, and a drops and counts it */
    assert_int_equal(herd_reply(x.b, g_held[0], 0, "late", 4), 0);
    call_expect(x.a, s, "echo:fresh", "fresh");
    assert_int_equal(late_replies(x.a), 1);
    assert_int_equal(late_replies(x.b), 0);

    /* from a process: ETIMEDOUT in handle_info, the late reply never */
    herd_pid_t c = spawn(x.a, &cli);
    size_t k1 = cli_call(x.a, c, s, "hold", 200);
    assert_int_equal(g_cli_rc[k1], 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k1]) != NULL);
    const seen_t *t = find_seen(c, HERD_MSG_REPLY, g_cli_ref[k1]);
    assert_int_equal(t->status, HERD_ETIMEDOUT);
    assert_pid_eq(t->from, s);
    WAIT_UNTIL(g_nheld == 2);
    assert_int_equal(herd_reply(x.b, g_held[1], 0, "late", 4), 0);
    /* a call after the late reply: b->a is ordered, so its reply comes after */
    size_t k2 = cli_call(x.a, c, s, "echo:after", WAIT_MS);
    WAIT_UNTIL(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k2]) != NULL);
    assert_int_equal(count_seen(c, HERD_MSG_REPLY, g_cli_ref[k1]), 1);
    assert_int_equal(g_nseen, 2);
    assert_memory_equal(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k2])->data, "after", 5);
    assert_int_equal(late_replies(x.a), 2);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_callee_exits_during_call_enoproc(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    const uint32_t long_timeout = 120000; /* an answer means it was not the timeout */
    herd_pid_t s = spawn(x.b, &srv);
    herd_pid_t c = spawn(x.a, &cli);
    size_t k = cli_call(x.a, c, s, "hold", long_timeout);
    assert_int_equal(g_cli_rc[k], 0);
    WAIT_UNTIL(g_nheld == 1);
    assert_int_equal(herd_exit(x.b, s, HERD_REASON_KILLED), 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k]) != NULL);
    const seen_t *r = find_seen(c, HERD_MSG_REPLY, g_cli_ref[k]);
    assert_int_equal(r->status, HERD_ENOPROC);
    assert_pid_eq(r->from, s);
    assert_int_equal(r->len, 0);
    ts_cluster_run_ms(50);
    assert_int_equal(count_seen(c, HERD_MSG_REPLY, g_cli_ref[k]), 1);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* A blocking call whose callee crashes in its handler ends as it does on one
 * node: herd_node_call returns HERD_ENOPROC (made by the runtime), well
 * before its timeout. */
static void test_remote_node_call_callee_crashes_enoproc(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    const uint32_t long_timeout = 60000;
    herd_pid_t s = spawn(x.b, &srv);
    herd_reply_t out;
    uint64_t t0 = ts_mono_ms();
    int rc = herd_node_call(x.a, s, "crash", 5, long_timeout, &out);
    assert_true(ts_mono_ms() - t0 < long_timeout / 2);
    assert_int_equal(out.status, HERD_ENOPROC);
    herd_reply_free(&out);
    assert_int_equal(herd_is_alive(x.b, s), 0);
    assert_int_equal(rc, HERD_ENOPROC);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_call_dead_pid_enoproc(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    assert_int_equal(herd_exit(x.b, s, HERD_REASON_KILLED), 0);
    WAIT_UNTIL(herd_is_alive(x.b, s) == 0);
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, s, "ping", 4, WAIT_MS, &r), HERD_ENOPROC);
    assert_int_equal(r.status, HERD_ENOPROC);
    herd_reply_free(&r);
    /* from a process: a remote pid's death is known over there, so the answer
     * comes back as a reply (or, equally right, herd_call fails at once) */
    herd_pid_t c = spawn(x.a, &cli);
    size_t k = cli_call(x.a, c, s, "ping", WAIT_MS);
    if (g_cli_rc[k] == 0) {
        WAIT_UNTIL(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k]) != NULL);
        assert_int_equal(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k])->status,
                         HERD_ENOPROC);
    } else {
        assert_int_equal(g_cli_rc[k], HERD_ENOPROC);
    }
    /* a serial never used on b */
    herd_pid_t never = s;
    never.serial += 1000;
    assert_int_equal(herd_node_call(x.a, never, "ping", 4, WAIT_MS, &r), HERD_ENOPROC);
    herd_reply_free(&r);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* ---- tests: casts -------------------------------------------------------------- */

static void test_remote_10000_casts_arrive_in_order(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t k = spawn(x.b, &sink);
    herd_pid_t c = spawn(x.a, &cli);
    g_sink_from[0] = c;
    cmd_t cmd = {.op = CMD_CASTS, .pid = k, .count = 10000, .tag = 0};
    cli_do(x.a, c, &cmd);
    WAIT_UNTIL(g_sink_total >= 10000 || g_cast_errors > 0);
    assert_int_equal(g_cast_errors, 0);
    ts_cluster_run_ms(50); /* nothing more, nothing twice */
    assert_int_equal(g_sink_total, 10000);
    assert_int_equal(g_sink_bad, 0);
    assert_int_equal(g_sink_next[0], 10000);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_casts_from_several_senders_keep_own_order(void **state)
{
    (void)state;
    trio_t x = form(3, &NORMAL, 0);
    herd_pid_t k = spawn(x.b, &sink);
    herd_pid_t c0 = spawn(x.a, &cli), c1 = spawn(x.a, &cli), c2 = spawn(x.c, &cli);
    g_sink_from[0] = c0;
    g_sink_from[1] = c1;
    g_sink_from[2] = c2;
    g_sink_from[3] = outside_pid(x.a);
    cmd_t cmd = {.op = CMD_CASTS, .pid = k, .count = 4000};
    cmd.tag = 0;
    assert_int_equal(herd_node_cast(x.a, c0, &cmd, sizeof(cmd)), 0);
    cmd.tag = 1;
    assert_int_equal(herd_node_cast(x.a, c1, &cmd, sizeof(cmd)), 0);
    cmd.tag = 2;
    assert_int_equal(herd_node_cast(x.c, c2, &cmd, sizeof(cmd)), 0);
    for (uint32_t i = 0; i < 1000; i++) { /* and code outside processes on a */
        tagged_t t = {3, i};
        assert_int_equal(herd_node_cast(x.a, k, &t, sizeof(t)), 0);
    }
    WAIT_UNTIL(g_sink_total >= 3 * 4000 + 1000 || g_cast_errors > 0);
    assert_int_equal(g_cast_errors, 0);
    ts_cluster_run_ms(50);
    assert_int_equal(g_sink_total, 3 * 4000 + 1000);
    assert_int_equal(g_sink_bad, 0);
    assert_int_equal(g_sink_next[0], 4000);
    assert_int_equal(g_sink_next[1], 4000);
    assert_int_equal(g_sink_next[2], 4000);
    assert_int_equal(g_sink_next[3], 1000);
    ts_node_free(x.c);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* ---- tests: monitors ----------------------------------------------------------- */

static void test_remote_monitor_down_with_exit_reason(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t t1 = spawn(x.b, &srv), t2 = spawn(x.b, &srv);
    herd_pid_t c = spawn(x.a, &cli);
    size_t m1 = cli_monitor(x.a, c, t1);
    size_t m2 = cli_monitor(x.a, c, t2);
    assert_int_equal(g_cli_rc[m1], 0);
    assert_int_equal(g_cli_rc[m2], 0);
    assert_true(g_cli_ref[m1] != g_cli_ref[m2]);
    /* a->b is ordered: once these calls are answered, b has the monitors */
    call_expect(x.a, t1, "ping", "pong");
    call_expect(x.a, t2, "ping", "pong");
    assert_int_equal(g_nseen, 0);
    assert_int_equal(herd_node_cast(x.b, t1, "crash", 5), 0); /* exits with HERD_ERANGE */
    assert_int_equal(herd_exit(x.b, t2, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m1]) &&
               find_seen(c, HERD_MSG_DOWN, g_cli_ref[m2]));
    const seen_t *d1 = find_seen(c, HERD_MSG_DOWN, g_cli_ref[m1]);
    const seen_t *d2 = find_seen(c, HERD_MSG_DOWN, g_cli_ref[m2]);
    assert_pid_eq(d1->from, t1);
    assert_int_equal(d1->status, HERD_ERANGE);
    assert_pid_eq(d2->from, t2);
    assert_int_equal(d2->status, HERD_REASON_SHUTDOWN);
    /* a fired monitor is gone */
    cmd_t dm = {.op = CMD_DEMONITOR, .ref = g_cli_ref[m1]};
    size_t k = cli_do(x.a, c, &dm);
    assert_int_equal(g_cli_rc[k], HERD_ENOENT);
    ts_cluster_run_ms(50);
    assert_int_equal(g_nseen, 2);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_monitor_dead_pid_noproc(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t t = spawn(x.b, &srv);
    assert_int_equal(herd_exit(x.b, t, HERD_REASON_KILLED), 0);
    WAIT_UNTIL(herd_is_alive(x.b, t) == 0);
    herd_pid_t c = spawn(x.a, &cli);
    size_t m = cli_monitor(x.a, c, t);
    assert_int_equal(g_cli_rc[m], 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m]) != NULL);
    const seen_t *d = find_seen(c, HERD_MSG_DOWN, g_cli_ref[m]);
    assert_pid_eq(d->from, t);
    assert_int_equal(d->status, HERD_REASON_NOPROC);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_demonitor_no_down(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t t = spawn(x.b, &srv);
    herd_pid_t c = spawn(x.a, &cli);
    size_t m = cli_monitor(x.a, c, t);
    assert_int_equal(g_cli_rc[m], 0);
    call_expect(x.a, t, "ping", "pong"); /* b has the monitor */
    cmd_t dm = {.op = CMD_DEMONITOR, .ref = g_cli_ref[m]};
    size_t k = cli_do(x.a, c, &dm);
    assert_int_equal(g_cli_rc[k], 0);
    call_expect(x.a, t, "ping", "pong"); /* b has the demonitor */
    assert_int_equal(herd_exit(x.b, t, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(herd_is_alive(x.b, t) == 0);
    /* a new monitor of the dead pid: its NOPROC comes after anything b sent
     * for the old one, on the same ordered stream */
    size_t m2 = cli_monitor(x.a, c, t);
    WAIT_UNTIL(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m2]) != NULL);
    assert_int_equal(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m2])->status,
                     HERD_REASON_NOPROC);
    assert_null(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m]));
    assert_int_equal(g_nseen, 1);
    /* demonitor twice: no such monitor */
    k = cli_do(x.a, c, &dm);
    assert_int_equal(g_cli_rc[k], HERD_ENOENT);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* ---- tests: a node dies ---------------------------------------------------------- */

static void test_remote_node_crash_fails_calls_and_fires_monitors(void **state)
{
    (void)state;
    trio_t x = form(3, &FAST, 0);
    herd_pid_t held = spawn(x.b, &srv), watched = spawn(x.b, &srv);
    herd_pid_t on_c = spawn(x.c, &srv);
    herd_pid_t ca = spawn(x.a, &cli), cc = spawn(x.c, &cli);
    const uint32_t long_timeout = 120000;
    size_t ka = cli_call(x.a, ca, held, "hold", long_timeout);
    size_t kc = cli_call(x.c, cc, held, "hold", long_timeout);
    size_t m = cli_monitor(x.a, ca, watched);
    assert_int_equal(g_cli_rc[ka], 0);
    assert_int_equal(g_cli_rc[kc], 0);
    assert_int_equal(g_cli_rc[m], 0);
    WAIT_UNTIL(g_nheld == 2);
    call_expect(x.a, watched, "ping", "pong"); /* b has the monitor */
    assert_int_equal(g_nseen, 0);

    /* b vanishes without a word (no leave): like a crash */
    ts_node_free(x.b);
    x.b = NULL;
    WAIT_UNTIL(ts_cluster_member_state(x.a, "b") == HERD_MEMBER_DOWN &&
               ts_cluster_member_state(x.c, "b") == HERD_MEMBER_DOWN &&
               find_seen(ca, HERD_MSG_REPLY, g_cli_ref[ka]) &&
               find_seen(cc, HERD_MSG_REPLY, g_cli_ref[kc]) &&
               find_seen(ca, HERD_MSG_DOWN, g_cli_ref[m]));
    const seen_t *ra = find_seen(ca, HERD_MSG_REPLY, g_cli_ref[ka]);
    const seen_t *rc = find_seen(cc, HERD_MSG_REPLY, g_cli_ref[kc]);
    const seen_t *d = find_seen(ca, HERD_MSG_DOWN, g_cli_ref[m]);
    /* b had the requests (it held them): their outcome is unknown */
    assert_int_equal(ra->status, HERD_EUNCERTAIN);
    assert_pid_eq(ra->from, held);
    assert_int_equal(rc->status, HERD_EUNCERTAIN);
    assert_pid_eq(rc->from, held);
    assert_int_equal(d->status, HERD_REASON_NOCONNECTION);
    assert_pid_eq(d->from, watched);
    assert_int_equal(g_nseen, 3);

    /* nothing reaches b any more; a monitor of its pids fires at once */
    assert_int_equal(herd_node_send(x.a, held, "x", 1), HERD_ENOTCONN);
    assert_int_equal(herd_node_cast(x.c, held, "x", 1), HERD_ENOTCONN);
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, held, "ping", 4, WAIT_MS, &r), HERD_ENOTCONN);
    herd_reply_free(&r);
    size_t m2 = cli_monitor(x.a, ca, held);
    assert_int_equal(g_cli_rc[m2], 0);
    WAIT_UNTIL(find_seen(ca, HERD_MSG_DOWN, g_cli_ref[m2]) != NULL);
    assert_int_equal(find_seen(ca, HERD_MSG_DOWN, g_cli_ref[m2])->status,
                     HERD_REASON_NOCONNECTION);
    /* a and c still talk */
    call_expect(x.a, on_c, "echo:still", "still");
    ts_node_free(x.c);
    ts_node_free(x.a);
}

/* ---- tests: sends that cannot be routed -------------------------------------------- */

static void test_remote_unknown_node_enotconn(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t ghost = {herd_node_id_of("ghost"), 12345, 1};
    assert_int_equal(herd_node_send(x.a, ghost, "x", 1), HERD_ENOTCONN);
    assert_int_equal(herd_node_cast(x.a, ghost, "x", 1), HERD_ENOTCONN);
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, ghost, "x", 1, WAIT_MS, &r), HERD_ENOTCONN);
    herd_reply_free(&r);
    herd_pid_t c = spawn(x.a, &cli);
    size_t k = cli_call(x.a, c, ghost, "x", WAIT_MS);
    assert_int_equal(g_cli_rc[k], HERD_ENOTCONN);
    size_t m = cli_monitor(x.a, c, ghost);
    assert_int_equal(g_cli_rc[m], 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m]) != NULL);
    assert_int_equal(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m])->status,
                     HERD_REASON_NOCONNECTION);
    assert_pid_eq(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m])->from, ghost);
    /* a node in no cluster reaches no other node */
    herd_node_t *alone = plain_node("alone", 0);
    herd_pid_t on_b = spawn(x.b, &srv);
    assert_int_equal(herd_node_send(alone, on_b, "x", 1), HERD_ENOTCONN);
    ts_node_free(alone);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_old_incarnation_enoproc(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    herd_pid_t old = s;
    old.incarnation = herd_node_incarnation(x.b) - 1;
    assert_int_equal(herd_node_send(x.a, old, "x", 1), HERD_ENOPROC);
    assert_int_equal(herd_node_cast(x.a, old, "x", 1), HERD_ENOPROC);
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, old, "ping", 4, WAIT_MS, &r), HERD_ENOPROC);
    herd_reply_free(&r);
    herd_pid_t c = spawn(x.a, &cli);
    size_t m = cli_monitor(x.a, c, old);
    assert_int_equal(g_cli_rc[m], 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m]) != NULL);
    assert_int_equal(find_seen(c, HERD_MSG_DOWN, g_cli_ref[m])->status,
                     HERD_REASON_NOPROC);
    /* the live incarnation still answers */
    call_expect(x.a, s, "ping", "pong");
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_over_frame_limit_etoobig(void **state)
{
    (void)state;
    /* a takes local messages of up to 4 MiB: only the frame limit refuses */
    trio_t x = form(2, &NORMAL, 4u << 20);
    herd_pid_t k = spawn(x.b, &sink);
    size_t big = 2u << 20;
    uint8_t *buf = scratch(big);
    assert_int_equal(herd_node_cast(x.a, k, buf, big), HERD_ETOOBIG);
    assert_int_equal(herd_node_send(x.a, k, buf, FRAME_DEFAULT_MAX_BODY), HERD_ETOOBIG);
    herd_reply_t r;
    assert_int_equal(herd_node_call(x.a, k, buf, big, WAIT_MS, &r), HERD_ETOOBIG);
    herd_reply_free(&r);
    herd_pid_t local = spawn(x.a, &sink); /* locally the same size is fine */
    assert_int_equal(herd_node_cast(x.a, local, buf, big), 0);
    /* nothing was queued for b: the next small cast is the first it gets */
    g_sink_from[0] = outside_pid(x.a);
    tagged_t t = {0, 0};
    assert_int_equal(herd_node_cast(x.a, k, &t, sizeof(t)), 0);
    WAIT_UNTIL(g_sink_next[0] == 1);
    WAIT_UNTIL(g_nsink_big == 1); /* the local one */
    assert_int_equal(g_sink_big[0], big);
    assert_int_equal(g_sink_bad, 0);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* Every cast the runtime accepts for another node arrives, even one at the
 * frame limit, and the stream behind it keeps flowing. */
static void test_remote_largest_accepted_message_arrives(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t k = spawn(x.b, &sink);
    size_t cap = HERD_DEFAULT_MAX_MESSAGE;
    uint8_t *buf = scratch(cap);
    /* the largest size accepted, from the top down: refused sizes queue nothing */
    size_t len = cap + 1;
    int rc;
    do
        rc = herd_node_cast(x.a, k, buf, --len);
    while (rc == HERD_ETOOBIG && len > cap - 4096);
    assert_int_equal(rc, 0);
    g_sink_from[0] = outside_pid(x.a);
    tagged_t t = {0, 0};
    assert_int_equal(herd_node_cast(x.a, k, &t, sizeof(t)), 0);
    WAIT_UNTIL(g_nsink_big == 1 && g_sink_next[0] == 1);
    assert_int_equal(g_sink_big[0], len);
    assert_int_equal(g_sink_bad, 0);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

static void test_remote_link_einval(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t s = spawn(x.b, &srv);
    herd_pid_t c = spawn(x.a, &cli);
    cmd_t cmd = {.op = CMD_LINK, .pid = s};
    size_t k = cli_do(x.a, c, &cmd);
    assert_int_equal(g_cli_rc[k], HERD_EINVAL);
    /* neither side is disturbed */
    assert_int_equal(herd_exit(x.b, s, HERD_REASON_KILLED), 0);
    WAIT_UNTIL(herd_is_alive(x.b, s) == 0);
    ts_cluster_run_ms(50);
    assert_int_equal(herd_is_alive(x.a, c), 1);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* ---- tests: who speaks -------------------------------------------------------- */

static herd_pid_t g_heard_from[8]; /* casts that reached `heard` */
static size_t g_nheard;
static uint64_t g_app_node[8], g_app_inc[8]; /* what app 5's handler was told */
static int g_app_lost[8];                     /* told msg NULL: one arrived altered */
static size_t g_napp;

static int heard_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self, (void)state;
    if (g_nheard < 8) g_heard_from[g_nheard++] = msg->from;
    return 0;
}

static const herd_behaviour_t heard = {.name = "heard", .handle_cast = heard_cast};

static void on_app5(void *data, uint64_t node, uint64_t inc, const uint8_t *msg, size_t len)
{
    (void)data, (void)len;
    if (g_napp < 8) {
        g_app_lost[g_napp] = msg == NULL;
        g_app_node[g_napp] = node;
        g_app_inc[g_napp++] = inc;
    }
}

/* Added to a frame's number: a message sent again goes in a new frame (the
 * replay rule refuses a frame number seen before). */
static uint64_t g_frame_shift;

/* One message in a FRAME_MSG body from member `name` (incarnation `inc`), as
 * the `seq`th of its stream: the channel's batch of one (runtime/channel.h)
 * around remote.c's message (a call's with its deadline, an HLC timestamp),
 * in a frame stamped `hlc`, numbered 100 + seq + g_frame_shift. */
static void speak_at(ts_fake_tr_t *t, const char *name, uint64_t inc, uint64_t seq,
                     uint8_t kind, uint8_t flags, uint64_t to_serial, herd_pid_t from,
                     uint64_t ref, uint64_t deadline, uint64_t hlc)
{
    wire_writer_t m;
    wire_writer_init(&m);
    wire_put_u8(&m, kind);
    wire_put_u8(&m, flags);
    wire_put_u64(&m, to_serial);
    wire_put_u64(&m, from.node);
    wire_put_u64(&m, from.incarnation);
    wire_put_u64(&m, from.serial);
    wire_put_u64(&m, ref);
    wire_put_u32(&m, 0);
    if (kind == HERD_MSG_CALL)
        wire_put_u64(&m, deadline);
    wire_put_bytes(&m, "hi", 2);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, 0);
    wire_put_u64(&w, seq);
    wire_put_u16(&w, 1);
    wire_put_bytes(&w, m.buf, m.len);
    assert_int_equal(m.err | w.err, 0);
    ts_fake_frame_at(t, name, inc, FRAME_MSG, 100 + seq + g_frame_shift, hlc, w.buf, w.len);
    wire_writer_fini(&m);
    wire_writer_fini(&w);
}

/* An HLC timestamp `ms` from now (negative: in the past) by the wall clock. */
static uint64_t hlc_in(herd_node_t *n, int64_t ms)
{
    return (uint64_t)((int64_t)herd_node_wall_ms(n) + ms) << 16;
}

static void speak(ts_fake_tr_t *t, const char *name, uint64_t inc, uint64_t seq, uint8_t kind,
                  uint8_t flags, uint64_t to_serial, herd_pid_t from)
{
    /* an app's message (kind 34) carries the check sum of its body "hi" */
    speak_at(t, name, inc, seq, kind, flags, to_serial, from,
             kind == 34 ? herd_ring_hash_key("hi", 2) : 77, UINT64_MAX, 0);
}

/* A member that names another member (or another start of itself) as the
 * sender of a message is refused and counted, for every kind; a mailbox
 * message passed on (REMOTE_FORWARDED) keeps its first sender; the layers'
 * streams hear the header's sender. */
static void test_remote_body_claiming_another_sender_refused(void **state)
{
    (void)state;
    enum { KIND_MONITOR = 32, KIND_APP = 34, KIND_MOVED = 35 }; /* remote.c's */
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    ts_fake_join(&t, "y", 9, 1);
    assert_int_equal(herd_cluster_members(b, NULL, 0), 3);
    assert_int_equal(herd_cluster_on_app(b, 5, on_app5, NULL), 0);
    herd_pid_t p = spawn(b, &heard);
    g_nheard = g_napp = 0;

    herd_pid_t x = {herd_node_id_of("x"), 7, 3}, y = {herd_node_id_of("y"), 9, 4};
    herd_pid_t x_old = {x.node, 6, 3}, x_app = {x.node, 7, 0}, y_app = {y.node, 9, 0};
    uint64_t seq = 1;
    speak(&t, "x", 7, seq++, HERD_MSG_CAST, 0, p.serial, x);                 /* fine */
    speak(&t, "x", 7, seq++, HERD_MSG_CAST, 0, p.serial, y);                 /* refused */
    speak(&t, "x", 7, seq++, HERD_MSG_CAST, 0, p.serial, x_old);             /* refused */
    speak(&t, "x", 7, seq++, HERD_MSG_CAST, 2 /* forwarded */, p.serial, y); /* fine */
    speak(&t, "x", 7, seq++, KIND_APP, 0, 5, x_app);                         /* fine */
    speak(&t, "x", 7, seq++, KIND_APP, 0, 5, y_app);                         /* refused */
    speak(&t, "x", 7, seq++, KIND_APP, 2, 5, y_app);                         /* refused */
    speak(&t, "x", 7, seq++, KIND_MONITOR, 2, p.serial, y);                  /* refused */
    speak(&t, "x", 7, seq++, KIND_MOVED, 0, p.serial, y);                    /* refused */
    speak(&t, "x", 7, seq++, HERD_MSG_CALL, 0, p.serial, y);                 /* refused */
    ts_cluster_run_ms(50);

    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_SENDER], 7);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 0);
    assert_int_equal(g_nheard, 2);
    assert_pid_eq(g_heard_from[0], x);
    assert_pid_eq(g_heard_from[1], y);
    assert_int_equal(g_napp, 1);
    assert_int_equal(g_app_node[0], x.node);
    assert_int_equal(g_app_inc[0], 7);
    herd_cluster_on_app(b, 5, NULL, NULL);
    ts_node_free(b);
}

/* calloc fails while g_fail_peer_calloc is set for a block of a peer's
 * stream (cluster_peer_t): the remote layer's allocation, not another's */
static int g_fail_peer_calloc;
void *__real_calloc(size_t count, size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_calloc(size_t count, size_t size)
{
    if (g_fail_peer_calloc && count == 1 && size == sizeof(cluster_peer_t))
        return NULL;
    return __real_calloc(count, size);
}

/* The first MSG frame of a member whose stream finds no memory is refused
 * whole and counted (`memory`), nothing of it delivered; when x sends the
 * same messages again (its go back: nothing was acknowledged), they arrive,
 * once each and in order. */
static void test_remote_frame_without_memory_refused_then_resent(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    herd_pid_t p = spawn(b, &heard), x1 = {herd_node_id_of("x"), 7, 3},
               x2 = {herd_node_id_of("x"), 7, 4};
    g_nheard = 0;
    g_fail_peer_calloc = 1;
    speak(&t, "x", 7, 1, HERD_MSG_CAST, 0, p.serial, x1);
    ts_cluster_run_ms(20);
    g_fail_peer_calloc = 0;
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_MEMORY], 1);
    assert_string_equal(herd_cluster_reject_name(FRAME_REJECT_MEMORY), "memory");
    assert_int_equal(g_nheard, 0);
    g_frame_shift = 10; /* the go back: the same messages in new frames */
    speak(&t, "x", 7, 1, HERD_MSG_CAST, 0, p.serial, x1);
    speak(&t, "x", 7, 2, HERD_MSG_CAST, 0, p.serial, x2);
    g_frame_shift = 0;
    ts_cluster_run_ms(50);
    assert_int_equal(g_nheard, 2);
    assert_pid_eq(g_heard_from[0], x1);
    assert_pid_eq(g_heard_from[1], x2);
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_MEMORY], 1);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 0);
    ts_node_free(b);
}

/* ---- tests: at most once --------------------------------------------------------- */

/* A call sent (by the sender's clock: the frame's timestamp) after its
 * caller's deadline is dropped unapplied and counted (its caller gave up),
 * whatever the receiver's clock says; a second copy of a call still being
 * answered is dropped too; a call in time is applied, once. */
static void test_remote_late_or_second_copy_of_call_not_applied(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1); /* frames 1 and 2 */
    herd_pid_t p = spawn(b, &srv), x = {herd_node_id_of("x"), 7, 3};
    /* "hi" is held unanswered: the call stays open at b */
    uint64_t now = hlc_in(b, 0), ahead = hlc_in(b, 30000);
    speak_at(&t, "x", 7, 1, HERD_MSG_CALL, 0, p.serial, x, 10, hlc_in(b, -1000), now); /* late */
    speak_at(&t, "x", 7, 2, HERD_MSG_CALL, 0, p.serial, x, 11, hlc_in(b, 60000), now);
    speak_at(&t, "x", 7, 3, HERD_MSG_CALL, 0, p.serial, x, 11, hlc_in(b, 60000), now); /* again */
    speak_at(&t, "x", 7, 4, HERD_MSG_CALL, 0, p.serial, x, 12, 0, now); /* no deadline */
    /* b's clock is past the deadline, x's was not when it sent it: in time */
    speak_at(&t, "x", 7, 5, HERD_MSG_CALL, 0, p.serial, x, 13, hlc_in(b, -1000), 1);
    /* sent again by x after its deadline (x's clock runs ahead): late */
    speak_at(&t, "x", 7, 6, HERD_MSG_CALL, 0, p.serial, x, 14, hlc_in(b, 20000), ahead);
    ts_cluster_run_ms(50);
    assert_int_equal(g_nsrv_calls, 3);
    assert_int_equal(g_srv_calls[0].from.ref, 11);
    assert_int_equal(g_srv_calls[1].from.ref, 12);
    assert_int_equal(g_srv_calls[2].from.ref, 13);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.calls_expired, 2);
    assert_int_equal(st.calls_duplicate, 1);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 0);
    ts_node_free(b);
}

/* b cut off from a (blocked both ways at a): a call from a to b ends
 * HERD_EUNCERTAIN when a declares b down (its request had left, into the
 * cut); calls made while b is down are refused at once (HERD_ENOTCONN);
 * after the heal b never gets any of them: what was queued for it was
 * withdrawn. A call after the heal is answered. Failed before: the first
 * ended HERD_ENOTCONN, and b applied it after the heal. */
static void test_remote_cut_off_callee_gets_no_call_after_heal(void **state)
{
    (void)state;
    trio_t x = form(2, &FAST, 0);
    herd_pid_t s = spawn(x.b, &srv), c = spawn(x.a, &cli);
    call_expect(x.a, s, "echo:before", "before");
    assert_int_equal(g_nsrv_calls, 1);
    uint64_t b_id = herd_node_id_of("b");
    assert_int_equal(herd_cluster_block(x.a, b_id, 1), 0);
    size_t k = cli_call(x.a, c, s, "echo:cut", 120000);
    assert_int_equal(g_cli_rc[k], 0);
    WAIT_UNTIL(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k]) != NULL);
    assert_int_equal(find_seen(c, HERD_MSG_REPLY, g_cli_ref[k])->status, HERD_EUNCERTAIN);
    assert_int_equal(ts_cluster_member_state(x.a, "b"), HERD_MEMBER_DOWN);
    size_t k2 = cli_call(x.a, c, s, "echo:down", 120000);
    assert_int_equal(g_cli_rc[k2], HERD_ENOTCONN);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(x.a, &st), 0);
    assert_int_equal(st.calls_uncertain, 1);
    assert_int_equal(st.calls_not_applied, 0);
    assert_true(st.withdrawn >= 1);

    assert_int_equal(herd_cluster_block(x.a, b_id, 0), 0);
    herd_node_t *both[2] = {x.a, x.b};
    WAIT_UNTIL(ts_cluster_all_up(both, 2));
    ts_cluster_run_ms(600); /* three resend periods of the stream */
    assert_int_equal(g_nsrv_calls, 1);
    call_expect(x.a, s, "echo:after", "after");
    assert_int_equal(g_nsrv_calls, 2);
    assert_string_equal(g_srv_calls[1].body, "echo:after");
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* An app's message whose body is not the one its check sum names (a
 * member's bug between its layer and the wire) is refused as a `body`
 * reject, and the layer is told (msg NULL) that a message was lost; an
 * intact one goes through. */
static void test_remote_altered_app_body_refused(void **state)
{
    (void)state;
    enum { KIND_APP = 34 }; /* remote.c's */
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    assert_int_equal(herd_cluster_on_app(b, 5, on_app5, NULL), 0);
    g_napp = 0;
    herd_pid_t x_app = {herd_node_id_of("x"), 7, 0};
    speak_at(&t, "x", 7, 1, KIND_APP, 0, 5, x_app, herd_ring_hash_key("hi", 2) ^ 1, 0,
             0); /* altered */
    speak_at(&t, "x", 7, 2, KIND_APP, 0, 5, x_app, 0, 0, 0); /* none */
    speak(&t, "x", 7, 3, KIND_APP, 0, 5, x_app);                                /* intact */
    ts_cluster_run_ms(50);

    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 2);
    assert_int_equal(g_napp, 3);
    assert_int_equal(g_app_lost[0], 1);
    assert_int_equal(g_app_lost[1], 1);
    assert_int_equal(g_app_lost[2], 0);
    assert_int_equal(g_app_node[0], x_app.node);
    herd_cluster_on_app(b, 5, NULL, NULL);
    ts_node_free(b);
}

/* ---- tests: batches and the transport pushing back ------------------------------- */

/* A cast's message in a channel batch: remote.c's layout (PROTOCOL.md, MSG). */
static void put_cast(wire_writer_t *w, uint64_t to_serial, herd_pid_t from, const char *data)
{
    wire_writer_t m;
    wire_writer_init(&m);
    wire_put_u8(&m, HERD_MSG_CAST);
    wire_put_u8(&m, 0);
    wire_put_u64(&m, to_serial);
    wire_put_u64(&m, from.node);
    wire_put_u64(&m, from.incarnation);
    wire_put_u64(&m, from.serial);
    wire_put_u64(&m, 0);
    wire_put_u32(&m, 0);
    wire_put_bytes(&m, data, strlen(data));
    assert_int_equal(m.err, 0);
    wire_put_bytes(w, m.buf, m.len);
    wire_writer_fini(&m);
}

/* Frame `body` from member x (incarnation 7) to b's start as frame `seq`,
 * with the MAC over it, and flip the bit `flip` bits into the body (none
 * when flip is SIZE_MAX) before handing it to b. */
static void deliver_from_x(ts_fake_tr_t *t, herd_node_t *b, uint64_t seq, const uint8_t *body,
                           size_t len, size_t flip)
{
    frame_key_t key;
    assert_int_equal(frame_key_from_secret(&key, SECRET, strlen(SECRET)), 0);
    frame_header_t h = {.type = FRAME_MSG, .sender = herd_node_id_of("x"), .sender_inc = 7,
                        .receiver = herd_node_id_of("b"), .receiver_inc = herd_node_incarnation(b),
                        .seq = seq};
    size_t size = frame_size(len);
    uint8_t *frame = malloc(size);
    assert_non_null(frame);
    assert_int_equal(frame_encode(&key, &h, body, len, frame, size), 0);
    if (flip != SIZE_MAX)
        frame[FRAME_HEADER_SIZE + flip / 8] ^= (uint8_t)(1u << (flip % 8));
    t->cb(t->data, frame, size);
    free(frame);
}

/* A batch altered on the way fails the MAC, which covers the whole frame:
 * none of its messages is delivered, and it is counted (`mac`). A batch
 * whose count says more messages than it holds is a `body` reject, whole.
 * The intact batch then delivers every message, in order. */
static void test_remote_corrupted_batch_refused_whole(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    herd_pid_t p = spawn(b, &heard);
    g_nheard = 0;
    uint64_t x_id = herd_node_id_of("x");

    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, 0); /* ack */
    wire_put_u64(&w, 1); /* first seq */
    wire_put_u16(&w, 3);
    for (uint64_t i = 1; i <= 3; i++)
        put_cast(&w, p.serial, (herd_pid_t){x_id, 7, i}, "batched");
    assert_int_equal(w.err, 0);
    size_t half = w.len / 2 * 8; /* a bit in the second message */
    deliver_from_x(&t, b, 100, w.buf, w.len, half);
    ts_cluster_run_ms(20);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_MAC], 1);
    assert_int_equal(g_nheard, 0);

    w.buf[16] = 4; /* the count says 4: one is missing */
    deliver_from_x(&t, b, 101, w.buf, w.len, SIZE_MAX);
    ts_cluster_run_ms(20);
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 1);
    assert_int_equal(g_nheard, 0);

    w.buf[16] = 3;
    deliver_from_x(&t, b, 102, w.buf, w.len, SIZE_MAX);
    ts_cluster_run_ms(20);
    assert_int_equal(g_nheard, 3);
    for (uint64_t i = 1; i <= 3; i++)
        assert_pid_eq(g_heard_from[i - 1], (herd_pid_t){x_id, 7, i});
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_MAC], 1);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 1);
    wire_writer_fini(&w);
    ts_node_free(b);
}

/* The first seq and count of a kept FRAME_MSG's batch. */
static void batch_of(const ts_fake_sent_t *k, uint64_t *first, uint16_t *count)
{
    wire_reader_t r;
    wire_reader_init(&r, k->body, k->h.length);
    (void)wire_get_u64(&r);
    *first = wire_get_u64(&r);
    *count = wire_get_u16(&r);
    assert_int_equal(r.err, 0);
}

/* While the transport refuses frames for a member (its outbox full), the
 * messages wait in the stream, not counted as sent; once it takes frames
 * again they leave whole and in order, in one batch, without anything
 * queued anew to push them. (Failed before: a refused frame counted as
 * sent, and its messages went again only by resend.) */
static void test_remote_refused_frames_wait_then_go_whole(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    uint64_t x_id = herd_node_id_of("x");
    herd_pid_t x = {x_id, 7, 3};
    t.refuse = 1;
    assert_int_equal(herd_node_cast(b, x, "c1", 2), 0);
    assert_int_equal(herd_node_cast(b, x, "c2", 2), 0);
    assert_int_equal(herd_node_cast(b, x, "c3", 2), 0);
    ts_cluster_run_ms(20);
    assert_true(t.refused >= 1);
    herd_stream_stats_t ss;
    assert_int_equal(herd_cluster_stream_stats(b, x_id, &ss), 0);
    assert_int_equal(ss.queued_seq, 3);
    assert_int_equal(ss.sent_seq, 0);
    assert_int_equal(ss.pending, 3);

    t.refuse = 0;
    ts_fake_forget_sent(&t);
    WAIT_UNTIL(ts_fake_sent_to(&t, FRAME_MSG, x_id, NULL) != NULL);
    const ts_fake_sent_t *k = NULL; /* the first frame of the stream since */
    for (size_t i = 0; i < t.kept_count && k == NULL; i++)
        if (t.kept[i].h.type == FRAME_MSG && t.kept[i].h.receiver == x_id)
            k = &t.kept[i];
    assert_non_null(k);
    uint64_t first;
    uint16_t count;
    batch_of(k, &first, &count);
    assert_int_equal(first, 1);
    assert_int_equal(count, 3);
    assert_int_equal(herd_cluster_stream_stats(b, x_id, &ss), 0);
    assert_int_equal(ss.sent_seq, 3);
    ts_node_free(b);
}

/* More messages queued in one turn than one flush sends (64 frames of at
 * most 1024): the rest goes at the next turns, by itself. Failed before: the
 * stream stopped at 65536 messages until something new was queued. */
static void test_remote_burst_over_one_flush_goes_whole(void **state)
{
    (void)state;
    enum { CASTS = 70000 };
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    uint64_t x_id = herd_node_id_of("x");
    herd_pid_t x = {x_id, 7, 3};
    for (int i = 0; i < CASTS; i++)
        assert_int_equal(herd_node_cast(b, x, "c", 1), 0);
    herd_stream_stats_t ss;
    WAIT_UNTIL(herd_cluster_stream_stats(b, x_id, &ss) == 0 && ss.sent_seq == CASTS);
    assert_int_equal(ss.pending, CASTS); /* x acknowledged nothing */
    ts_node_free(b);
}

static int g_async_rc[4];
static int g_async_done[4];

static void on_async(void *data, int rc, herd_reply_t *reply)
{
    int i = (int)(intptr_t)data;
    g_async_rc[i] = rc;
    g_async_done[i] = 1;
    herd_reply_free(reply);
}

/* A member dies with part of the stream sent and the rest held back (the
 * transport refused its frame): the call whose request left ends "outcome
 * unknown", the one whose request never left "not applied". */
static void test_remote_stream_cut_by_dead_member_verdicts(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    uint64_t x_id = herd_node_id_of("x");
    herd_pid_t x = {x_id, 7, 3};
    memset(g_async_done, 0, sizeof(g_async_done));
    assert_int_equal(herd_node_call_async(b, x, "sent", 4, 60000, on_async, (void *)0), 0);
    WAIT_UNTIL(ts_fake_sent_to(&t, FRAME_MSG, x_id, NULL) != NULL);
    t.refuse = 1;
    assert_int_equal(herd_node_call_async(b, x, "held", 4, 60000, on_async, (void *)1), 0);
    ts_cluster_run_ms(20);
    assert_true(t.refused >= 1);
    herd_stream_stats_t ss;
    assert_int_equal(herd_cluster_stream_stats(b, x_id, &ss), 0);
    assert_int_equal(ss.sent_seq, 1);
    assert_int_equal(ss.queued_seq, 2);
    /* x says nothing more: b declares it down */
    WAIT_UNTIL(g_async_done[0] && g_async_done[1]);
    assert_int_equal(g_async_rc[0], HERD_EUNCERTAIN);
    assert_int_equal(g_async_rc[1], HERD_ENOTCONN);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(b, &st), 0);
    assert_int_equal(st.calls_uncertain, 1);
    assert_int_equal(st.calls_not_applied, 1);
    ts_node_free(b);
}

int main(void)
{
    ts_cluster_init("test_remote", SECRET);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_remote_three_nodes_see_each_other),
        T(test_remote_node_call_reply_bytes_intact),
        T(test_remote_deferred_reply),
        T(test_remote_process_call_reply_in_handle_info),
        T(test_remote_call_timeout_late_reply_dropped),
        T(test_remote_callee_exits_during_call_enoproc),
        T(test_remote_node_call_callee_crashes_enoproc),
        T(test_remote_call_dead_pid_enoproc),
        T(test_remote_10000_casts_arrive_in_order),
        T(test_remote_casts_from_several_senders_keep_own_order),
        T(test_remote_monitor_down_with_exit_reason),
        T(test_remote_monitor_dead_pid_noproc),
        T(test_remote_demonitor_no_down),
        T(test_remote_node_crash_fails_calls_and_fires_monitors),
        T(test_remote_unknown_node_enotconn),
        T(test_remote_old_incarnation_enoproc),
        T(test_remote_over_frame_limit_etoobig),
        T(test_remote_largest_accepted_message_arrives),
        T(test_remote_link_einval),
        T(test_remote_body_claiming_another_sender_refused),
        T(test_remote_frame_without_memory_refused_then_resent),
        T(test_remote_late_or_second_copy_of_call_not_applied),
        T(test_remote_cut_off_callee_gets_no_call_after_heal),
        T(test_remote_altered_app_body_refused),
        T(test_remote_corrupted_batch_refused_whole),
        T(test_remote_refused_frames_wait_then_go_whole),
        T(test_remote_burst_over_one_flush_goes_whole),
        T(test_remote_stream_cut_by_dead_member_verdicts),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
