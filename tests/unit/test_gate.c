/*
 * test_gate.c - unit tests for holding replies until the state they reflect
 * is replicated (herd_runtime.h, "holding replies"): herd_gate_open,
 * herd_gate_mark, herd_gate_release, herd_gate_held, the dirty callback and
 * herd_node_stats' gate_dropped.
 *
 * What is checked:
 * - an ungated process answers at once (the control);
 * - a gated process's replies from its handlers are held until released:
 *   versions start after the one given to herd_gate_open, a reply is tagged
 *   with the version of the next mark, release(v) sends exactly the replies
 *   tagged v or lower, in the order they were sent (one caller or several);
 *   a call from outside (herd_node_call) times out while its reply is held,
 *   and the late release is counted as a late reply; a dirty callback that
 *   marks and releases at once lets a herd_node_call through;
 * - the dirty callback: once per run that took messages (not per message,
 *   not for a run that took none, not when idle), with the pid and data, not
 *   from inside a handler; gating again replaces it and keeps what is held;
 * - replies sent outside the gated process's handlers (test code with a kept
 *   herd_from_t, another process, its terminate) are not held, while a
 *   deferred reply from a later handler of its own is;
 * - a gated process that exits (crash, kill) drops what it holds, counted in
 *   gate_dropped, and its callers' calls end HERD_EUNCERTAIN (applied, not
 *   said to be replicated; never ENOPROC, not by timeout); a node freed
 *   with held replies frees them (the sanitizer build checks for leaks);
 * - herd_reply's HERD_EINVAL (a `from` of another caller) is the same gated
 *   or not;
 * - bad paths: unknown, dead and foreign pids, ungated processes.
 *
 * Most tests run on a virtual clock (ts_vclock) driven by ts_drain: nothing
 * times out unless the test moves the clock, so "no reply yet" is exact.
 * The tests that use herd_node_call (which blocks) run on the real clock.
 *
 * Two behaviours: "srv" answers calls according to the request's text (and
 * may keep them to answer later), "cli" makes calls when told to by a cast
 * and records the replies it gets. They write into global logs.
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

#include "herd_runtime.h"
#include "runtime_layers.h"
#include "support.h"

#define BODY_MAX 48
#define LOG_MAX 64
#define LONG_MS 60000u /* a call timeout that a virtual-clock test never reaches */

/* ---- logs ------------------------------------------------------------------ */

typedef struct seen_reply { /* a HERD_MSG_REPLY that cli got */
    uint64_t self;
    herd_pid_t from;
    uint64_t ref;
    int status;
    uint8_t copies;
    size_t len;
    char data[BODY_MAX];
} seen_reply_t;

static seen_reply_t g_replies[LOG_MAX];
static size_t g_nreplies;
static uint64_t g_cli_ref[LOG_MAX]; /* refs of the calls cli made, in order */
static int g_cli_rc[LOG_MAX];
static size_t g_ncli;
static int g_srv_rc[LOG_MAX]; /* what srv's herd_reply returned */
static size_t g_nsrv;
static size_t g_srv_msgs; /* messages srv handled */
static herd_from_t g_saved[LOG_MAX]; /* calls srv kept to answer later */
static size_t g_nsaved;
static int g_in_handler; /* 1 while a srv handler runs */
static int g_term_reply; /* srv's terminate answers the kept calls */
static int g_term_rc[LOG_MAX];
static size_t g_nterm;

/* the dirty callback's log */
typedef struct dirty_log {
    int count;
    herd_pid_t pid;
    void *data;
    int in_handler;        /* times it was called while a srv handler ran */
    size_t msgs_at_call;   /* g_srv_msgs when it was last called */
    herd_node_t *node;     /* for the callback that marks and releases */
    int release_rc;        /* what that callback's release returned */
} dirty_log_t;

static dirty_log_t g_dirty, g_dirty2;

static void reset(void)
{
    memset(g_replies, 0, sizeof(g_replies));
    g_nreplies = g_ncli = g_nsrv = g_srv_msgs = g_nsaved = g_nterm = 0;
    memset(g_saved, 0, sizeof(g_saved));
    g_in_handler = g_term_reply = 0;
    memset(&g_dirty, 0, sizeof(g_dirty));
    memset(&g_dirty2, 0, sizeof(g_dirty2));
    ts_vnow = 1000;
}

static int has_prefix(const herd_msg_t *m, const char *p)
{
    size_t n = strlen(p);
    return m->len >= n && memcmp(m->data, p, n) == 0;
}

static void srv_rc(int rc)
{
    assert_true(g_nsrv < LOG_MAX);
    g_srv_rc[g_nsrv++] = rc;
}

static void note_dirty(dirty_log_t *d, void *data, herd_pid_t pid)
{
    if (ts_detached()) return;
    d->count++;
    d->pid = pid;
    d->data = data;
    d->in_handler += g_in_handler;
    d->msgs_at_call = g_srv_msgs;
}

static void dirty_cb(void *data, herd_pid_t pid)
{
    note_dirty(&g_dirty, data, pid);
}

static void dirty_cb2(void *data, herd_pid_t pid)
{
    note_dirty(&g_dirty2, data, pid);
}

/* Replication done at once: mark the state and release what it covers. */
static void dirty_release_cb(void *data, herd_pid_t pid)
{
    note_dirty(&g_dirty, data, pid);
    if (ts_detached()) return;
    uint64_t v = herd_gate_mark(g_dirty.node, pid);
    g_dirty.release_rc = v ? herd_gate_release(g_dirty.node, pid, v, 2) : -1;
}

/* ---- srv ------------------------------------------------------------------- */

static int srv_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self, (void)arg, (void)len;
    *state = NULL;
    return 0;
}

static int srv_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    herd_node_t *node = herd_proc_node(self);
    int rc = 0;
    g_in_handler = 1;
    g_srv_msgs++;
    if (has_prefix(msg, "echo:")) {
        srv_rc(herd_reply(node, from, 0, msg->data + 5, msg->len - 5));
    } else if (has_prefix(msg, "echo-crash:")) { /* answer, then crash in the same run */
        srv_rc(herd_reply(node, from, 0, msg->data + 11, msg->len - 11));
        rc = HERD_EIO;
    } else if (has_prefix(msg, "save")) {
        assert_true(g_nsaved < LOG_MAX);
        g_saved[g_nsaved++] = from;
    } else if (has_prefix(msg, "relay") && msg->len == 5 + sizeof(herd_pid_t)) {
        /* another process answers: it gets {"relay", from} */
        herd_pid_t peer;
        memcpy(&peer, msg->data + 5, sizeof(peer));
        uint8_t buf[5 + sizeof(herd_from_t)];
        memcpy(buf, "relay", 5);
        memcpy(buf + 5, &from, sizeof(from));
        srv_rc(herd_cast(self, peer, buf, sizeof(buf)));
    }
    g_in_handler = 0;
    return rc;
}

static int srv_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    herd_node_t *node = herd_proc_node(self);
    int rc = 0;
    g_in_handler = 1;
    g_srv_msgs++;
    if (has_prefix(msg, "answer-saved")) { /* a deferred reply from its own handler */
        for (size_t i = 0; i < g_nsaved; i++)
            srv_rc(herd_reply(node, g_saved[i], 0, "deferred", 8));
        g_nsaved = 0;
    } else if (has_prefix(msg, "relay") && msg->len == 5 + sizeof(herd_from_t)) {
        herd_from_t f;
        memcpy(&f, msg->data + 5, sizeof(f));
        srv_rc(herd_reply(node, f, 0, "relayed", 7));
    } else if (has_prefix(msg, "forge") && g_nsaved > 0) {
        /* a `from` naming a kept call, but with another caller */
        herd_from_t forged = g_saved[0];
        forged.pid.serial = herd_self(self).serial;
        srv_rc(herd_reply(node, forged, 0, "forged", 6));
    } else if (has_prefix(msg, "crash")) {
        rc = HERD_EIO;
    }
    g_in_handler = 0;
    return rc;
}

static void srv_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)state, (void)reason;
    if (!g_term_reply || ts_detached()) return;
    for (size_t i = 0; i < g_nsaved && g_nterm < LOG_MAX; i++)
        g_term_rc[g_nterm++] = herd_reply(herd_proc_node(self), g_saved[i], 0, "bye", 3);
    g_nsaved = 0;
}

static const herd_behaviour_t srv_beh = {
    .name = "srv",
    .init = srv_init,
    .handle_call = srv_call,
    .handle_cast = srv_cast,
    .terminate = srv_terminate,
};

/* ---- cli ------------------------------------------------------------------- */

typedef struct callreq {
    char tag[4]; /* "CALL" */
    herd_pid_t to;
    uint32_t timeout_ms;
    uint32_t body_len;
    uint8_t body[BODY_MAX];
} callreq_t;

static int cli_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->len != sizeof(callreq_t)) return 0;
    callreq_t q;
    memcpy(&q, msg->data, sizeof(q));
    assert_memory_equal(q.tag, "CALL", 4);
    uint64_t ref = 0;
    assert_true(q.body_len <= sizeof(q.body));
    int rc = herd_call(self, q.to, q.body, q.body_len, q.timeout_ms, &ref);
    assert_true(g_ncli < LOG_MAX);
    g_cli_rc[g_ncli] = rc;
    g_cli_ref[g_ncli] = ref;
    g_ncli++;
    return 0;
}

static int cli_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind != HERD_MSG_REPLY) return 0;
    assert_true(g_nreplies < LOG_MAX);
    seen_reply_t *r = &g_replies[g_nreplies++];
    memset(r, 0, sizeof(*r));
    r->self = herd_self(self).serial;
    r->from = msg->from;
    r->ref = msg->ref;
    r->status = msg->status;
    r->copies = msg->copies;
    r->len = msg->len;
    memcpy(r->data, msg->data, msg->len < BODY_MAX - 1 ? msg->len : BODY_MAX - 1);
    return 0;
}

static const herd_behaviour_t cli_beh = {
    .name = "cli",
    .handle_cast = cli_cast,
    .handle_info = cli_info,
};

/* ---- helpers --------------------------------------------------------------- */

static herd_node_t *vnode(void)
{
    return ts_node("g1", &ts_vclock, 11);
}

static herd_node_t *rnode(void)
{
    return ts_node("g1", NULL, 11);
}

static herd_pid_t spawn_srv(herd_node_t *n)
{
    return ts_spawn(n, &srv_beh, NULL, 0);
}

static herd_pid_t spawn_cli(herd_node_t *n)
{
    return ts_spawn(n, &cli_beh, NULL, 0);
}

static herd_node_stats_t stats(const herd_node_t *n)
{
    herd_node_stats_t st;
    memset(&st, 0xff, sizeof(st));
    herd_node_stats(n, &st);
    return st;
}

/* Tell cli to call `to` with the `len` bytes of `body`. */
static void order_call_bytes(herd_node_t *n, herd_pid_t cli, herd_pid_t to, const void *body,
                             size_t len, uint32_t timeout_ms)
{
    callreq_t q;
    memset(&q, 0, sizeof(q));
    memcpy(q.tag, "CALL", 4);
    q.to = to;
    q.timeout_ms = timeout_ms;
    assert_true(len <= sizeof(q.body));
    memcpy(q.body, body, len);
    q.body_len = (uint32_t)len;
    assert_int_equal(herd_node_cast(n, cli, &q, sizeof(q)), 0);
}

static void order_call(herd_node_t *n, herd_pid_t cli, herd_pid_t to, const char *body,
                       uint32_t timeout_ms)
{
    order_call_bytes(n, cli, to, body, strlen(body), timeout_ms);
}

static void cast_str(herd_node_t *n, herd_pid_t to, const char *body)
{
    assert_int_equal(herd_node_cast(n, to, body, strlen(body)), 0);
}

static int call_str(herd_node_t *n, herd_pid_t to, const char *body, uint32_t timeout_ms,
                    herd_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    return herd_node_call(n, to, body, strlen(body), timeout_ms, out);
}

/* The i-th reply cli got: to `cli`, from `callee`, for cli's call number
 * `call`, with `status` and `data`. */
static void assert_seen(size_t i, herd_pid_t cli, herd_pid_t callee, size_t call, int status,
                        const char *data)
{
    assert_true(i < g_nreplies);
    const seen_reply_t *r = &g_replies[i];
    assert_int_equal(r->self, cli.serial);
    assert_true(herd_pid_equal(r->from, callee));
    assert_true(call < g_ncli);
    assert_int_equal(g_cli_rc[call], 0);
    assert_int_equal(r->ref, g_cli_ref[call]);
    assert_int_equal(r->status, status);
    assert_int_equal(r->len, strlen(data));
    assert_string_equal(r->data, data);
}

static void assert_reply(const herd_reply_t *r, int status, const char *data)
{
    assert_int_equal(r->status, status);
    assert_int_equal(r->len, strlen(data));
    assert_non_null(r->data);
    assert_memory_equal(r->data, data, r->len);
}

static void all_srv_rc_zero(void)
{
    for (size_t i = 0; i < g_nsrv; i++)
        assert_int_equal(g_srv_rc[i], 0);
}

/* ---- 1. the control: an ungated process answers at once ----------------------- */

static void test_gate_ungated_answers_at_once(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = rnode();
    herd_pid_t s = spawn_srv(n), c = spawn_cli(n);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "echo:now", 5000, &r), 0);
    assert_reply(&r, 0, "now");
    assert_int_equal(r.copies, 0); /* an ungated callee says nothing of copies */
    herd_reply_free(&r);
    assert_true(ts_ms_since(&t0) < 2000);
    order_call(n, c, s, "echo:proc", 5000);
    ts_run(n);
    assert_int_equal(g_nreplies, 1);
    assert_seen(0, c, s, 0, 0, "proc");
    assert_int_equal(g_replies[0].copies, 0);
    assert_int_equal(herd_gate_held(n, s), 0);
    assert_int_equal(g_dirty.count, 0);
    all_srv_rc_zero();
    ts_node_free(n);

    /* the same on the virtual clock, where nothing else would answer */
    n = vnode();
    s = spawn_srv(n);
    c = spawn_cli(n);
    g_ncli = g_nreplies = 0;
    order_call(n, c, s, "echo:v", LONG_MS);
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);
    assert_seen(0, c, s, 0, 0, "v");
    ts_node_free(n);
}

/* ---- 2. holding, versions, release, order --------------------------------------- */

static void test_gate_holds_until_release(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n), c = spawn_cli(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);
    assert_int_equal(herd_gate_held(n, s), 0);

    order_call(n, c, s, "echo:a", LONG_MS);
    ts_drain(n);
    assert_int_equal(g_ncli, 1);
    assert_int_equal(g_cli_rc[0], 0);
    assert_int_equal(g_srv_msgs, 1); /* srv answered ... */
    all_srv_rc_zero();               /* ... and herd_reply said it went */
    assert_int_equal(g_nreplies, 0); /* but it is held */
    assert_int_equal(herd_gate_held(n, s), 1);

    /* nothing tagged 41 or lower */
    assert_int_equal(herd_gate_release(n, s, 41, 2), 0);
    assert_int_equal(herd_gate_release(n, s, 0, 2), 0);
    ts_drain(n);
    assert_int_equal(g_nreplies, 0);
    assert_int_equal(herd_gate_held(n, s), 1);

    /* the versions go on from 41; the reply reflects the state of mark 42 */
    assert_int_equal(herd_gate_mark(n, s), 42);
    assert_int_equal(herd_gate_release(n, s, 41, 2), 0);
    ts_drain(n);
    assert_int_equal(g_nreplies, 0);
    assert_int_equal(herd_gate_release(n, s, 42, 3), 1);
    assert_int_equal(herd_gate_held(n, s), 0);
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);
    assert_seen(0, c, s, 0, 0, "a");
    assert_int_equal(g_replies[0].copies, 3); /* the copies the release said */

    /* marks keep increasing, also with nothing held; a release of nothing is 0 */
    assert_int_equal(herd_gate_mark(n, s), 43);
    assert_int_equal(herd_gate_mark(n, s), 44);
    assert_int_equal(herd_gate_release(n, s, 44, 2), 0);

    /* the next reply is tagged 45: release(44) leaves it, release(45) sends it */
    order_call(n, c, s, "echo:b", LONG_MS);
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s), 1);
    assert_int_equal(herd_gate_release(n, s, 44, 2), 0);
    assert_int_equal(herd_gate_mark(n, s), 45);
    assert_int_equal(herd_gate_release(n, s, UINT64_MAX, 2), 1);
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    assert_seen(1, c, s, 1, 0, "b");
    assert_int_equal(stats(n).late_replies, 0);
    assert_int_equal(stats(n).gate_dropped, 0);
    all_srv_rc_zero();
    ts_node_free(n);
}

static void test_gate_release_keeps_order(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n), c1 = spawn_cli(n), c2 = spawn_cli(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);

    /* two callers answered before one mark: one release sends both, in order */
    order_call(n, c1, s, "echo:one", LONG_MS); /* call 0 */
    order_call(n, c2, s, "echo:two", LONG_MS); /* call 1 */
    ts_drain(n);
    assert_int_equal(g_ncli, 2);
    assert_int_equal(g_srv_msgs, 2);
    assert_int_equal(herd_gate_held(n, s), 2);
    assert_int_equal(g_nreplies, 0);
    assert_int_equal(herd_gate_mark(n, s), 42);
    assert_int_equal(herd_gate_release(n, s, 42, 2), 2);
    assert_int_equal(herd_gate_held(n, s), 0);
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    assert_seen(0, c1, s, 0, 0, "one");
    assert_seen(1, c2, s, 1, 0, "two");

    /* a mark between two replies: releasing the lower version sends only the
     * earlier reply; the later one waits for its own version */
    order_call(n, c1, s, "echo:three", LONG_MS); /* call 2 */
    ts_drain(n);
    assert_int_equal(herd_gate_mark(n, s), 43);
    order_call(n, c2, s, "echo:four", LONG_MS); /* call 3 */
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s), 2);
    assert_int_equal(herd_gate_release(n, s, 43, 2), 1);
    assert_int_equal(herd_gate_held(n, s), 1);
    ts_drain(n);
    assert_int_equal(g_nreplies, 3);
    assert_seen(2, c1, s, 2, 0, "three");
    /* four is tagged 44, not marked yet: a repeated release(43) sends nothing */
    assert_int_equal(herd_gate_release(n, s, 43, 2), 0);
    ts_drain(n);
    assert_int_equal(g_nreplies, 3);
    assert_int_equal(herd_gate_mark(n, s), 44);
    assert_int_equal(herd_gate_release(n, s, 44, 2), 1);
    ts_drain(n);
    assert_int_equal(g_nreplies, 4);
    assert_seen(3, c2, s, 3, 0, "four");

    /* one caller, two calls, one release: they arrive in the order sent */
    order_call(n, c1, s, "echo:five", LONG_MS); /* call 4 */
    order_call(n, c1, s, "echo:six", LONG_MS);  /* call 5 */
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s), 2);
    assert_int_equal(herd_gate_release(n, s, herd_gate_mark(n, s), 2), 2);
    ts_drain(n);
    assert_int_equal(g_nreplies, 6);
    assert_seen(4, c1, s, 4, 0, "five");
    assert_seen(5, c1, s, 5, 0, "six");

    /* replies held over several marks go out oldest first in one release */
    order_call(n, c1, s, "echo:seven", LONG_MS); /* call 6, tagged 46 */
    ts_drain(n);
    assert_int_equal(herd_gate_mark(n, s), 46);
    order_call(n, c2, s, "echo:eight", LONG_MS); /* call 7, tagged 47 */
    ts_drain(n);
    assert_int_equal(herd_gate_mark(n, s), 47);
    assert_int_equal(herd_gate_release(n, s, 47, 2), 2);
    ts_drain(n);
    assert_int_equal(g_nreplies, 8);
    assert_seen(6, c1, s, 6, 0, "seven");
    assert_seen(7, c2, s, 7, 0, "eight");
    all_srv_rc_zero();
    ts_node_free(n);
}

/* A call from outside processes waits for the held reply like any caller:
 * with a short timeout it ends HERD_ETIMEDOUT, and the reply released later
 * is dropped and counted as late. */
static void test_gate_node_call_times_out_while_held(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = rnode();
    herd_pid_t s = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "echo:x", 100, &r), HERD_ETIMEDOUT);
    assert_int_equal(r.len, 0);
    assert_int_equal(g_srv_msgs, 1);
    assert_int_equal(herd_gate_held(n, s), 1);
    assert_int_equal(g_dirty.count, 1);
    uint64_t late = stats(n).late_replies;
    assert_int_equal(herd_gate_release(n, s, herd_gate_mark(n, s), 2), 1);
    assert_int_equal(herd_gate_held(n, s), 0);
    assert_int_equal(stats(n).late_replies, late + 1);
    assert_true(herd_is_alive(n, s));
    ts_node_free(n);
}

/* Replication that completes inside the dirty callback (mark, then release
 * at once) lets a blocking call from outside through. */
static void test_gate_release_from_dirty_callback(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = rnode();
    herd_pid_t s = spawn_srv(n);
    g_dirty.node = n;
    assert_int_equal(herd_gate_open(n, s, 7, dirty_release_cb, &g_dirty), 0);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "echo:fast", 5000, &r), 0);
    assert_reply(&r, 0, "fast");
    assert_int_equal(r.copies, 2); /* what the release said */
    herd_reply_free(&r);
    assert_int_equal(g_dirty.count, 1);
    assert_int_equal(g_dirty.release_rc, 1);
    assert_int_equal(herd_gate_held(n, s), 0);
    assert_int_equal(herd_gate_mark(n, s), 9); /* the callback took 8 */
    ts_node_free(n);
}

/* Calls refused while the gate says so (herd_gate_refuse_calls): answered
 * with the status at once, the handler never runs, nothing is held; casts
 * still run; 0 takes calls again. Not gated: HERD_ENOPROC. */
static void test_gate_refuses_calls(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = rnode();
    herd_pid_t s = spawn_srv(n);
    assert_int_equal(herd_gate_refuse_calls(n, s, HERD_EUNAVAILABLE), HERD_ENOPROC);
    assert_int_equal(herd_gate_open(n, s, 0, NULL, NULL), 0);
    assert_int_equal(herd_gate_refuse_calls(n, s, HERD_EUNAVAILABLE), 0);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "echo:no", 5000, &r), 0);
    assert_int_equal(r.status, HERD_EUNAVAILABLE);
    assert_int_equal(r.len, 0);
    herd_reply_free(&r);
    assert_int_equal(g_srv_msgs, 0); /* the handler never ran */
    assert_int_equal(herd_gate_held(n, s), 0);
    assert_int_equal(herd_gate_refuse_calls(n, s, 0), 0);
    g_dirty.node = n;
    assert_int_equal(herd_gate_open(n, s, 0, dirty_release_cb, &g_dirty), 0);
    assert_int_equal(call_str(n, s, "echo:yes", 5000, &r), 0);
    assert_reply(&r, 0, "yes");
    herd_reply_free(&r);
    assert_int_equal(g_srv_msgs, 1);
    ts_node_free(n);
}

/* herd_merge_into_local: an ungated process is told merged at once; a
 * gated one once it handled the merge and a release covered it; one that
 * exits first is told HERD_ENOPROC. */
static int g_merge_status[4], g_merge_calls;
static void merge_done(void *data, int status)
{
    (void)data;
    assert_true(g_merge_calls < 4);
    g_merge_status[g_merge_calls++] = status;
}

static void test_gate_merge_confirmed_after_release(void **st)
{
    (void)st;
    reset();
    g_merge_calls = 0;
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n);
    assert_int_equal(herd_merge_into_local(n, s, (const uint8_t *)"m", 1, merge_done, NULL), 0);
    assert_int_equal(g_merge_calls, 1); /* not gated: at once */
    assert_int_equal(g_merge_status[0], 0);
    ts_drain(n);
    assert_int_equal(herd_gate_open(n, s, 10, NULL, NULL), 0);
    assert_int_equal(herd_merge_into_local(n, s, (const uint8_t *)"m", 1, merge_done, NULL), 0);
    assert_int_equal(g_merge_calls, 1); /* not handled yet */
    ts_drain(n);
    assert_int_equal(g_merge_calls, 1); /* handled, held as a reply */
    assert_int_equal(herd_gate_held(n, s), 1);
    assert_int_equal(herd_gate_release(n, s, 10, 2), 0); /* tagged 11 */
    assert_int_equal(g_merge_calls, 1);
    assert_int_equal(herd_gate_mark(n, s), 11);
    assert_int_equal(herd_gate_release(n, s, 11, 2), 1);
    assert_int_equal(g_merge_calls, 2);
    assert_int_equal(g_merge_status[1], 0);
    /* one held and one not handled yet when it exits: both told ENOPROC */
    assert_int_equal(herd_merge_into_local(n, s, (const uint8_t *)"m", 1, merge_done, NULL), 0);
    ts_drain(n);
    assert_int_equal(herd_merge_into_local(n, s, (const uint8_t *)"m", 1, merge_done, NULL), 0);
    assert_int_equal(herd_stop(n, s, HERD_REASON_SHUTDOWN), 0);
    ts_drain(n);
    assert_int_equal(g_merge_calls, 4);
    assert_int_equal(g_merge_status[2], HERD_ENOPROC);
    assert_int_equal(g_merge_status[3], HERD_ENOPROC);
    herd_node_stats_t ns;
    herd_node_stats(n, &ns);
    assert_int_equal(ns.gate_dropped, 0); /* merges are not replies */
    /* a dead process: an error, done not called */
    assert_int_equal(herd_merge_into_local(n, s, (const uint8_t *)"m", 1, merge_done, NULL),
                     HERD_ENOPROC);
    assert_int_equal(g_merge_calls, 4);
    ts_node_free(n);
}

/* ---- 3. the dirty callback ----------------------------------------------------- */

static void test_gate_dirty_once_per_run(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n), other = spawn_srv(n);
    int token;
    assert_int_equal(herd_gate_open(n, s, 0, dirty_cb, &token), 0);
    ts_drain(n);
    assert_int_equal(g_dirty.count, 0); /* nothing ran */

    /* three messages taken in one run: one call */
    cast_str(n, s, "bump");
    cast_str(n, s, "bump");
    cast_str(n, s, "bump");
    assert_int_equal(g_dirty.count, 0); /* not at the send */
    ts_drain(n);
    assert_int_equal(g_srv_msgs, 3);
    assert_int_equal(g_dirty.count, 1);
    assert_true(herd_pid_equal(g_dirty.pid, s));
    assert_ptr_equal(g_dirty.data, &token);
    assert_int_equal(g_dirty.in_handler, 0);   /* never from inside a handler */
    assert_int_equal(g_dirty.msgs_at_call, 3); /* after the run, not within it */

    /* idle: no more calls */
    ts_drain(n);
    assert_int_equal(herd_node_poll(n), 0);
    assert_int_equal(g_dirty.count, 1);

    /* another process's messages are not this one's state */
    cast_str(n, other, "bump");
    ts_drain(n);
    assert_int_equal(g_srv_msgs, 4);
    assert_int_equal(g_dirty.count, 1);

    /* one more run, one more call; a call answered counts as a message */
    cast_str(n, s, "bump");
    ts_drain(n);
    assert_int_equal(g_dirty.count, 2);
    herd_pid_t c = spawn_cli(n);
    order_call(n, c, s, "echo:d", LONG_MS);
    ts_drain(n);
    assert_int_equal(g_dirty.count, 3);
    assert_int_equal(g_dirty.msgs_at_call, 6);

    /* a run that takes nothing (queued, then frozen before its turn): no call */
    cast_str(n, s, "bump");
    assert_int_equal(herd_freeze(n, s, HERD_FREEZE_TEST), 0);
    ts_drain(n);
    assert_int_equal(g_srv_msgs, 6);
    assert_int_equal(g_dirty.count, 3);
    assert_int_equal(herd_thaw(n, s, HERD_FREEZE_TEST), 0);
    ts_drain(n);
    assert_int_equal(g_srv_msgs, 7);
    assert_int_equal(g_dirty.count, 4);
    assert_true(herd_pid_equal(g_dirty.pid, s));
    assert_int_equal(g_dirty.in_handler, 0);

    /* gating again replaces the callback and keeps what is held */
    assert_int_equal(herd_gate_held(n, s), 1);
    assert_int_equal(herd_gate_open(n, s, 0, dirty_cb2, &g_dirty2), 0);
    assert_int_equal(herd_gate_held(n, s), 1);
    cast_str(n, s, "bump");
    ts_drain(n);
    assert_int_equal(g_dirty.count, 4);
    assert_int_equal(g_dirty2.count, 1);
    assert_true(herd_pid_equal(g_dirty2.pid, s));
    assert_ptr_equal(g_dirty2.data, &g_dirty2);
    assert_int_equal(herd_gate_release(n, s, UINT64_MAX, 2), 1);
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);
    assert_seen(0, c, s, 0, 0, "d");

    /* gated without a callback: replies are still held */
    herd_pid_t quiet = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, quiet, 0, NULL, NULL), 0);
    order_call(n, c, quiet, "echo:q", LONG_MS);
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, quiet), 1);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(herd_gate_release(n, quiet, herd_gate_mark(n, quiet), 2), 1);
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    assert_seen(1, c, quiet, 1, 0, "q");
    ts_node_free(n);
}

/* ---- 4. replies from outside the gated process's handlers ------------------------ */

static void test_gate_replies_outside_handlers_not_held(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n), peer = spawn_srv(n), c = spawn_cli(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);

    /* kept by the gated process, answered by test code */
    order_call(n, c, s, "save", LONG_MS); /* call 0 */
    ts_drain(n);
    assert_int_equal(g_nsaved, 1);
    assert_int_equal(g_nreplies, 0);
    assert_int_equal(herd_reply(n, g_saved[0], 0, "outside", 7), 0);
    assert_int_equal(herd_gate_held(n, s), 0);
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);
    assert_seen(0, c, s, 0, 0, "outside");
    g_nsaved = 0;

    /* passed to another (ungated) process, which answers from its handler */
    uint8_t buf[5 + sizeof(herd_pid_t)];
    memcpy(buf, "relay", 5);
    memcpy(buf + 5, &peer, sizeof(peer));
    order_call_bytes(n, c, s, buf, sizeof(buf), LONG_MS); /* call 1 */
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s), 0);
    assert_int_equal(herd_gate_held(n, peer), 0);
    assert_int_equal(g_nreplies, 2);
    assert_seen(1, c, s, 1, 0, "relayed");

    /* in contrast: kept, then answered from a later handler of its own: held */
    order_call(n, c, s, "save", LONG_MS); /* call 2 */
    ts_drain(n);
    assert_int_equal(g_nsaved, 1);
    cast_str(n, s, "answer-saved");
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s), 1);
    assert_int_equal(g_nreplies, 2);
    assert_int_equal(herd_gate_release(n, s, herd_gate_mark(n, s), 2), 1);
    ts_drain(n);
    assert_int_equal(g_nreplies, 3);
    assert_seen(2, c, s, 2, 0, "deferred");

    /* kept, and answered by terminate when it is stopped: not held, not dropped */
    order_call(n, c, s, "save", LONG_MS); /* call 3 */
    ts_drain(n);
    assert_int_equal(g_nsaved, 1);
    g_term_reply = 1;
    assert_int_equal(herd_stop(n, s, HERD_REASON_SHUTDOWN), 0);
    ts_drain(n);
    assert_false(herd_is_alive(n, s));
    assert_int_equal(g_nterm, 1);
    assert_int_equal(g_term_rc[0], 0);
    assert_int_equal(g_nreplies, 4);
    assert_seen(3, c, s, 3, 0, "bye");
    assert_int_equal(stats(n).gate_dropped, 0);
    assert_int_equal(stats(n).late_replies, 0);
    all_srv_rc_zero();
    ts_node_free(n);
}

/* ---- 5. exit with held replies ---------------------------------------------------- */

static void test_gate_exit_drops_held(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n), c1 = spawn_cli(n), c2 = spawn_cli(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);
    order_call(n, c1, s, "echo:a", LONG_MS); /* call 0 */
    order_call(n, c2, s, "echo:b", LONG_MS); /* call 1 */
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s), 2);
    assert_int_equal(herd_gate_mark(n, s), 42); /* marked, never released */
    assert_int_equal(stats(n).gate_dropped, 0);
    uint64_t late = stats(n).late_replies;

    cast_str(n, s, "crash");
    ts_drain(n); /* the virtual clock stands still: no timeout can answer */
    assert_false(herd_is_alive(n, s));
    assert_int_equal(stats(n).gate_dropped, 2);
    assert_int_equal(stats(n).late_replies, late);
    /* each caller learns its call failed, once, and never gets the reply */
    assert_int_equal(g_nreplies, 2);
    for (size_t i = 0; i < 2; i++) {
        const seen_reply_t *r = &g_replies[i];
        assert_true(r->status != 0);
        assert_int_equal(r->len, 0);
        assert_true(herd_pid_equal(r->from, s));
        int mine = (r->self == c1.serial && r->ref == g_cli_ref[0]) ||
                   (r->self == c2.serial && r->ref == g_cli_ref[1]);
        assert_true(mine);
    }
    assert_true(g_replies[0].self != g_replies[1].self);
    /* the gate went with it */
    assert_int_equal(herd_gate_held(n, s), 0);
    assert_int_equal(herd_gate_mark(n, s), 0);
    assert_int_equal(herd_gate_release(n, s, UINT64_MAX, 2), HERD_ENOPROC);
    ts_vnow += 2 * LONG_MS; /* the calls' timeouts were cancelled */
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    assert_true(herd_is_alive(n, c1));
    assert_true(herd_is_alive(n, c2));

    /* killed from outside while holding: the same, counted on top */
    herd_pid_t s2 = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, s2, 0, dirty_cb, &g_dirty), 0);
    order_call(n, c1, s2, "echo:c", LONG_MS); /* call 2 */
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s2), 1);
    assert_int_equal(herd_exit(n, s2, HERD_REASON_KILLED), 0);
    ts_drain(n);
    assert_false(herd_is_alive(n, s2));
    assert_int_equal(stats(n).gate_dropped, 3);
    assert_int_equal(g_nreplies, 3);
    assert_int_equal(g_replies[2].self, c1.serial);
    assert_int_equal(g_replies[2].ref, g_cli_ref[2]);
    assert_true(g_replies[2].status != 0);
    assert_int_equal(g_replies[2].len, 0);

    /* an exit with nothing held drops nothing */
    herd_pid_t s3 = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, s3, 0, dirty_cb, &g_dirty), 0);
    assert_int_equal(herd_exit(n, s3, HERD_REASON_KILLED), 0);
    ts_drain(n);
    assert_int_equal(stats(n).gate_dropped, 3);

    /* a node freed with held replies frees them (the sanitizer build checks) */
    herd_pid_t s4 = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, s4, 0, dirty_cb, &g_dirty), 0);
    order_call(n, c2, s4, "echo:left-behind-with-a-longer-body", LONG_MS);
    ts_drain(n);
    assert_int_equal(herd_gate_held(n, s4), 1);
    ts_node_free(n);
}

/* From outside processes: the call ends when the callee dies holding the
 * reply, at once rather than at its timeout, with HERD_EUNCERTAIN: it was
 * applied (HERD_ENOPROC would say it was not). */
static void test_gate_exit_fails_node_call(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = rnode();
    herd_pid_t s = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    herd_reply_t r;
    int rc = call_str(n, s, "echo-crash:x", 8000, &r);
    assert_int_equal(rc, HERD_EUNCERTAIN);
    assert_true(ts_ms_since(&t0) < 4000);
    assert_int_equal(r.len, 0);
    assert_null(r.data);
    assert_int_equal(g_srv_msgs, 1);
    all_srv_rc_zero(); /* herd_reply held it: 0 */
    assert_false(herd_is_alive(n, s));
    assert_int_equal(stats(n).gate_dropped, 1);
    ts_node_free(n);
}

/* ---- 6. bad paths ------------------------------------------------------------------ */

static void dirty_never(void *data, herd_pid_t pid)
{
    (void)data, (void)pid;
    fail_msg("dirty callback of a process that is not gated");
}

static void test_gate_bad_paths(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t u = spawn_srv(n), dead = spawn_srv(n);
    assert_int_equal(herd_exit(n, dead, HERD_REASON_KILLED), 0);
    ts_drain(n);
    assert_false(herd_is_alive(n, dead));

    herd_pid_t unknown = u;
    unknown.serial = 424242;
    herd_pid_t foreign = u;
    foreign.node ^= 1;
    herd_pid_t old_start = u;
    old_start.incarnation ^= 1;
    herd_pid_t outside = u;
    outside.serial = 0;
    const herd_pid_t bad[] = {dead, unknown, foreign, old_start, outside, HERD_PID_NONE};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(herd_gate_open(n, bad[i], 1, dirty_never, NULL), HERD_ENOPROC);
        assert_int_equal(herd_gate_mark(n, bad[i]), 0);
        assert_int_equal(herd_gate_release(n, bad[i], UINT64_MAX, 2), HERD_ENOPROC);
        assert_int_equal(herd_gate_held(n, bad[i]), 0);
    }

    /* a live process that is not gated */
    assert_int_equal(herd_gate_release(n, u, 0, 2), HERD_ENOPROC);
    assert_int_equal(herd_gate_release(n, u, UINT64_MAX, 2), HERD_ENOPROC);
    assert_int_equal(herd_gate_mark(n, u), 0);
    assert_int_equal(herd_gate_mark(n, u), 0);
    assert_int_equal(herd_gate_held(n, u), 0);
    /* the failed opens gated nothing: u answers at once */
    herd_pid_t c = spawn_cli(n);
    order_call(n, c, u, "echo:free", LONG_MS);
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);
    assert_seen(0, c, u, 0, 0, "free");
    assert_int_equal(herd_gate_held(n, u), 0);

    /* gating one process gates only that one */
    herd_pid_t g = spawn_srv(n);
    assert_int_equal(herd_gate_open(n, g, 5, dirty_cb, &g_dirty), 0);
    assert_int_equal(herd_gate_mark(n, u), 0);
    assert_int_equal(herd_gate_release(n, u, 6, 2), HERD_ENOPROC);
    order_call(n, c, u, "echo:still", LONG_MS);
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    assert_seen(1, c, u, 1, 0, "still");
    assert_int_equal(g_dirty.count, 0);
    assert_int_equal(herd_gate_mark(n, g), 6);
    ts_node_free(n);
}

/* herd_reply's errors are the same gated or not: a `from` that names a call
 * of another caller is HERD_EINVAL at once (not held, nothing sent at the
 * release), and the call it names still waits for its own reply. */
static void test_gate_foreign_from_einval(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = vnode();
    herd_pid_t s = spawn_srv(n), u = spawn_srv(n), c = spawn_cli(n);
    assert_int_equal(herd_gate_open(n, s, 41, dirty_cb, &g_dirty), 0);
    for (int gated = 0; gated < 2; gated++) {
        herd_pid_t to = gated ? s : u;
        g_nsrv = g_nsaved = 0;
        order_call(n, c, to, "save", LONG_MS);
        ts_drain(n);
        assert_int_equal(g_nsaved, 1);
        cast_str(n, to, "forge");
        ts_drain(n);
        assert_int_equal(g_nsrv, 1);
        assert_int_equal(g_srv_rc[0], HERD_EINVAL);
        assert_int_equal(herd_gate_held(n, to), 0);
        assert_true(herd_is_alive(n, to));
        assert_int_equal(g_nreplies, (size_t)gated);
        cast_str(n, to, "answer-saved");
        ts_drain(n);
        if (gated) {
            assert_int_equal(herd_gate_held(n, s), 1);
            assert_int_equal(herd_gate_release(n, s, herd_gate_mark(n, s), 2), 1);
            ts_drain(n);
        }
        assert_int_equal(g_nreplies, (size_t)gated + 1);
        assert_seen((size_t)gated, c, to, (size_t)gated, 0, "deferred");
    }
    assert_int_equal(stats(n).late_replies, 0);
    ts_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gate_ungated_answers_at_once, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_holds_until_release, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_release_keeps_order, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_node_call_times_out_while_held, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_release_from_dirty_callback, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_dirty_once_per_run, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_replies_outside_handlers_not_held, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_exit_drops_held, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_exit_fails_node_call, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_bad_paths, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_foreign_from_einval, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_refuses_calls, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_gate_merge_confirmed_after_release, ts_setup,
                                        ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
