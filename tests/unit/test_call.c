/*
 * test_call.c - unit tests for calls (runtime/herd_runtime.h): blocking calls
 * from outside processes (herd_node_call), asynchronous calls between
 * processes (herd_call, answered as HERD_MSG_REPLY), immediate and deferred
 * replies, timeouts and late replies, dead and crashing callees, error
 * statuses, and the refusal of a blocking call inside a handler.
 *
 * Two behaviours: "srv" answers calls according to the request's text, and
 * "cli" makes calls to other processes when told to by a cast and records the
 * replies that come back. Everything they see goes to global logs that the
 * tests check.
 */
#include <limits.h>
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
#include "support.h"

#define BODY_MAX 48
#define LOG_MAX 256

/* ---- logs --------------------------------------------------------------- */

typedef struct seen_call { /* what srv's handle_call saw */
    uint64_t self;
    int kind;
    herd_pid_t msg_from;
    uint64_t msg_ref;
    herd_from_t from;
    char body[BODY_MAX];
} seen_call_t;

typedef struct seen_reply { /* what cli's handle_info saw */
    uint64_t self;
    int kind;
    herd_pid_t from;
    uint64_t ref;
    int status;
    size_t len;
    char data[BODY_MAX];
} seen_reply_t;

static seen_call_t g_calls[LOG_MAX];
static size_t g_ncalls;
static seen_reply_t g_replies[LOG_MAX];
static size_t g_nreplies;
static int g_cli_rc[LOG_MAX]; /* herd_call's results in cli */
static uint64_t g_cli_ref[LOG_MAX];
static size_t g_ncli;
static int g_srv_rc[LOG_MAX]; /* results of what srv did (herd_reply, ...) */
static size_t g_nsrv;
static herd_from_t g_saved; /* a call srv never answered */
static int g_terms;
static int g_last_reason;

static void reset(void)
{
    g_ncalls = g_nreplies = g_ncli = g_nsrv = 0;
    memset(g_calls, 0, sizeof(g_calls));
    memset(g_replies, 0, sizeof(g_replies));
    memset(&g_saved, 0, sizeof(g_saved));
    g_terms = 0;
    g_last_reason = 12345;
}

static void srv_rc(int rc)
{
    assert_true(g_nsrv < LOG_MAX);
    g_srv_rc[g_nsrv++] = rc;
}

static int has_prefix(const herd_msg_t *m, const char *p)
{
    size_t n = strlen(p);
    return m->len >= n && memcmp(m->data, p, n) == 0;
}

/* ---- srv ---------------------------------------------------------------- */

typedef struct srv {
    herd_from_t pending[16];
    int npending;
    herd_pid_t peer; /* for "defer-cast": who to ping */
} srv_t;

static int srv_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    srv_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    if (len == sizeof(herd_pid_t)) memcpy(&s->peer, arg, len);
    *state = s;
    return 0;
}

static void srv_reply_pending(herd_proc_t *self, srv_t *s, const char *text)
{
    for (int i = 0; i < s->npending; i++)
        srv_rc(herd_reply(herd_proc_node(self), s->pending[i], 0, text, strlen(text)));
    s->npending = 0;
}

static int srv_call(herd_proc_t *self, void *state, const herd_msg_t *msg,
                    herd_from_t from)
{
    srv_t *s = state;
    herd_node_t *node = herd_proc_node(self);
    assert_true(g_ncalls < LOG_MAX);
    seen_call_t *c = &g_calls[g_ncalls++];
    c->self = herd_self(self).serial;
    c->kind = (int)msg->kind;
    c->msg_from = msg->from;
    c->msg_ref = msg->ref;
    c->from = from;
    memcpy(c->body, msg->data, msg->len < BODY_MAX - 1 ? msg->len : BODY_MAX - 1);

    if (has_prefix(msg, "echo:")) {
        srv_rc(herd_reply(node, from, 0, msg->data + 5, msg->len - 5));
    } else if (has_prefix(msg, "bare-error")) {
        srv_rc(herd_reply(node, from, HERD_ETIMEDOUT, NULL, 0));
    } else if (has_prefix(msg, "bare-noproc")) {
        srv_rc(herd_reply(node, from, HERD_ENOPROC, NULL, 0));
    } else if (has_prefix(msg, "error")) {
        srv_rc(herd_reply(node, from, HERD_ERANGE, "why", 3));
    } else if (has_prefix(msg, "app-error")) {
        srv_rc(herd_reply_error(node, from, 42, "no", 2));
    } else if (has_prefix(msg, "defer-timer")) {
        uint64_t t;
        s->pending[s->npending++] = from;
        srv_rc(herd_send_after(node, herd_self(self), 20, "reply-now", 9, &t));
    } else if (has_prefix(msg, "defer-cast")) {
        s->pending[s->npending++] = from;
        srv_rc(herd_cast(self, s->peer, "ping", 4));
    } else if (has_prefix(msg, "defer-relay")) {
        uint8_t buf[5 + sizeof(herd_from_t)];
        memcpy(buf, "relay", 5);
        memcpy(buf + 5, &from, sizeof(from));
        srv_rc(herd_cast(self, s->peer, buf, sizeof(buf)));
    } else if (has_prefix(msg, "defer-return")) {
        uint64_t t;
        s->pending[s->npending++] = from;
        srv_rc(herd_send_after(node, herd_self(self), 50, "return-reply", 12, &t));
    } else if (has_prefix(msg, "never")) {
        g_saved = from;
    } else if (has_prefix(msg, "stale-then-echo")) {
        srv_rc(herd_reply(node, g_saved, 0, "stale", 5));
        srv_rc(herd_reply(node, from, 0, "fresh", 5));
    } else if (has_prefix(msg, "crash-later")) {
        s->pending[s->npending++] = from;
        srv_rc(herd_send(self, herd_self(self), "crash", 5));
    } else if (has_prefix(msg, "crash-now")) {
        return HERD_EIO;
    } else if (has_prefix(msg, "exit-later")) {
        s->pending[s->npending++] = from;
        srv_rc(herd_exit(node, herd_self(self), HERD_REASON_NORMAL));
    }
    return 0;
}

static int srv_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    srv_t *s = state;
    herd_node_t *node = herd_proc_node(self);
    if (has_prefix(msg, "ping")) {
        srv_rc(herd_cast(self, msg->from, "go", 2));
    } else if (has_prefix(msg, "go")) {
        srv_reply_pending(self, s, "deferred-cast");
    } else if (has_prefix(msg, "relay") && msg->len == 5 + sizeof(herd_from_t)) {
        herd_from_t f;
        memcpy(&f, msg->data + 5, sizeof(f));
        srv_rc(herd_reply(node, f, 0, "relayed", 7));
    } else if (has_prefix(msg, "deadlk") && msg->len == 6 + sizeof(herd_pid_t)) {
        herd_pid_t to;
        memcpy(&to, msg->data + 6, sizeof(to));
        herd_reply_t r = {0};
        int rc = herd_node_call(node, to, "echo:x", 6, 100, &r);
        srv_rc(rc);
        if (rc == 0) herd_reply_free(&r);
    } else if (has_prefix(msg, "late-reply")) {
        srv_rc(herd_reply(node, g_saved, 0, "late", 4));
    } else if (has_prefix(msg, "late-return")) {
        return herd_reply(node, g_saved, 0, "late", 4); /* the idiom: its result */
    }
    return 0;
}

static int srv_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    srv_t *s = state;
    if (has_prefix(msg, "reply-now"))
        srv_reply_pending(self, s, "deferred-timer");
    else if (has_prefix(msg, "return-reply") && s->npending > 0)
        return herd_reply(herd_proc_node(self), s->pending[--s->npending], 0, "deferred",
                          8);
    else if (has_prefix(msg, "crash"))
        return HERD_EIO;
    else if (has_prefix(msg, "kill") && msg->len == 4 + sizeof(herd_pid_t)) {
        herd_pid_t p;
        memcpy(&p, msg->data + 4, sizeof(p));
        srv_rc(herd_exit(herd_proc_node(self), p, HERD_REASON_KILLED));
    }
    return 0;
}

static void any_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    g_terms++;
    g_last_reason = reason;
    free(state);
}

static const herd_behaviour_t srv_beh = {
    .name = "srv",
    .init = srv_init,
    .handle_call = srv_call,
    .handle_cast = srv_cast,
    .handle_info = srv_info,
    .terminate = any_terminate,
};

/* ---- cli ---------------------------------------------------------------- */

typedef struct callreq {
    char tag[4]; /* "CALL" */
    herd_pid_t to;
    uint32_t timeout_ms;
    char body[BODY_MAX];
} callreq_t;

static int cli_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self, (void)arg, (void)len;
    *state = calloc(1, 8);
    assert_non_null(*state);
    return 0;
}

static int cli_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->len != sizeof(callreq_t)) return 0;
    callreq_t q;
    memcpy(&q, msg->data, sizeof(q));
    assert_memory_equal(q.tag, "CALL", 4);
    uint64_t ref = 0;
    int rc = herd_call(self, q.to, q.body, strlen(q.body), q.timeout_ms, &ref);
    assert_true(g_ncli < LOG_MAX);
    g_cli_rc[g_ncli] = rc;
    g_cli_ref[g_ncli] = ref;
    g_ncli++;
    return 0;
}

static int cli_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    assert_true(g_nreplies < LOG_MAX);
    seen_reply_t *r = &g_replies[g_nreplies++];
    r->self = herd_self(self).serial;
    r->kind = (int)msg->kind;
    r->from = msg->from;
    r->ref = msg->ref;
    r->status = msg->status;
    r->len = msg->len;
    memcpy(r->data, msg->data, msg->len < BODY_MAX - 1 ? msg->len : BODY_MAX - 1);
    return 0;
}

static const herd_behaviour_t cli_beh = {
    .name = "cli",
    .init = cli_init,
    .handle_cast = cli_cast,
    .handle_info = cli_info,
    .terminate = any_terminate,
};

/* ---- helpers ------------------------------------------------------------ */

/* Nodes come from the shared support (support.h), with this file's seed. */
static herd_node_t *mknode(const char *name, const herd_clock_t *clock)
{
    return ts_node(name, clock, 7);
}

static herd_pid_t spawn_srv(herd_node_t *n)
{
    return ts_spawn(n, &srv_beh, NULL, 0);
}

static uint64_t late_replies(const herd_node_t *n)
{
    herd_node_stats_t st;
    herd_node_stats(n, &st);
    return st.late_replies;
}

/* Tell cli to call `to`. */
static void order_call(herd_node_t *n, herd_pid_t cli, herd_pid_t to, const char *body,
                       uint32_t timeout_ms)
{
    callreq_t q;
    memset(&q, 0, sizeof(q));
    memcpy(q.tag, "CALL", 4);
    q.to = to;
    q.timeout_ms = timeout_ms;
    snprintf(q.body, sizeof(q.body), "%s", body);
    assert_int_equal(herd_node_cast(n, cli, &q, sizeof(q)), 0);
}

static int call_str(herd_node_t *n, herd_pid_t to, const char *body, uint32_t timeout_ms,
                    herd_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    return herd_node_call(n, to, body, strlen(body), timeout_ms, out);
}

static void assert_reply(const herd_reply_t *r, int status, const char *data)
{
    assert_int_equal(r->status, status);
    assert_int_equal(r->len, strlen(data));
    assert_non_null(r->data);
    assert_memory_equal(r->data, data, r->len);
}

/* ---- blocking calls from outside ---------------------------------------- */

static void test_call_node_call_immediate_reply(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    for (int i = 0; i < 20; i++) {
        char body[32], want[32];
        snprintf(body, sizeof(body), "echo:hello%d", i);
        snprintf(want, sizeof(want), "hello%d", i);
        herd_reply_t r;
        assert_int_equal(call_str(n, s, body, 5000, &r), 0);
        assert_reply(&r, 0, want);
        herd_reply_free(&r);
    }
    assert_int_equal(g_ncalls, 20);
    for (size_t i = 0; i < g_ncalls; i++) {
        const seen_call_t *c = &g_calls[i];
        assert_int_equal(c->kind, HERD_MSG_CALL);
        assert_int_equal(c->self, s.serial);
        assert_int_equal(c->msg_from.serial, 0); /* code outside processes */
        assert_true(herd_pid_equal(c->from.pid, c->msg_from));
        assert_int_equal(c->from.ref, c->msg_ref);
        assert_true(c->msg_ref != 0);
        for (size_t j = 0; j < i; j++)
            assert_true(g_calls[j].msg_ref != c->msg_ref); /* refs are unique */
    }
    for (size_t i = 0; i < g_nsrv; i++)
        assert_int_equal(g_srv_rc[i], 0);
    ts_node_free(n);
}

static void test_call_node_call_deferred_reply_from_timer(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "defer-timer", 5000, &r), 0);
    assert_reply(&r, 0, "deferred-timer");
    herd_reply_free(&r);
    assert_int_equal(g_nsrv, 2); /* send_after, reply */
    assert_int_equal(g_srv_rc[0], 0);
    assert_int_equal(g_srv_rc[1], 0);
    ts_node_free(n);
}

static void test_call_node_call_deferred_reply_on_later_cast(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t peer = spawn_srv(n);
    herd_pid_t s = ts_spawn(n, &srv_beh, &peer, sizeof(peer));
    herd_reply_t r;
    /* s keeps the call, pings peer, peer casts "go" back, s replies */
    assert_int_equal(call_str(n, s, "defer-cast", 5000, &r), 0);
    assert_reply(&r, 0, "deferred-cast");
    herd_reply_free(&r);
    /* another process may answer: the herd_from_t is a value */
    assert_int_equal(call_str(n, s, "defer-relay", 5000, &r), 0);
    assert_reply(&r, 0, "relayed");
    herd_reply_free(&r);
    for (size_t i = 0; i < g_nsrv; i++)
        assert_int_equal(g_srv_rc[i], 0);
    assert_int_equal(g_nsrv, 5); /* cast ping, cast go, reply; cast relay, reply */
    ts_node_free(n);
}

static void test_call_node_call_timeout_and_late_reply(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "never", 100, &r), HERD_ETIMEDOUT);
    assert_int_equal(g_ncalls, 1);
    assert_true(g_saved.ref != 0);
    /* the caller gave up: a late reply is dropped, counted, and no error */
    assert_int_equal(herd_reply(n, g_saved, 0, "late", 4), 0);
    assert_int_equal(late_replies(n), 1);
    assert_true(herd_is_alive(n, s));
    /* the next call is not confused by the stale one */
    assert_int_equal(call_str(n, s, "stale-then-echo", 5000, &r), 0);
    assert_reply(&r, 0, "fresh");
    herd_reply_free(&r);
    assert_int_equal(g_nsrv, 2);
    assert_int_equal(g_srv_rc[0], 0);
    assert_int_equal(g_srv_rc[1], 0);
    assert_int_equal(late_replies(n), 2);
    ts_node_free(n);
}

static void test_call_node_call_dead_pid(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    assert_int_equal(herd_exit(n, s, HERD_REASON_KILLED), 0);
    ts_run(n);
    assert_false(herd_is_alive(n, s));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "echo:x", 8000, &r), HERD_ENOPROC);
    herd_pid_t never = s;
    never.serial = 424242;
    assert_int_equal(call_str(n, never, "echo:x", 8000, &r), HERD_ENOPROC);
    assert_true(ts_ms_since(&t0) < 4000); /* at once, not at the timeout */
    assert_int_equal(g_ncalls, 0);
    ts_node_free(n);
}

static void test_call_node_call_callee_crashes(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    struct timespec t0;
    herd_reply_t r;
    static const char *const bodies[] = {"crash-later", "crash-now", "exit-later"};
    for (int i = 0; i < 3; i++) {
        herd_pid_t s = spawn_srv(n);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(call_str(n, s, bodies[i], 8000, &r), HERD_ENOPROC);
        assert_true(ts_ms_since(&t0) < 4000); /* not a timeout */
        assert_false(herd_is_alive(n, s));
        assert_int_equal(g_terms, i + 1);
    }
    ts_node_free(n);
}

static void test_call_node_call_callee_killed(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), killer = spawn_srv(n);
    uint8_t buf[4 + sizeof(herd_pid_t)];
    memcpy(buf, "kill", 4);
    memcpy(buf + 4, &s, sizeof(s));
    uint64_t t;
    assert_int_equal(herd_send_after(n, killer, 30, buf, sizeof(buf), &t), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "never", 8000, &r), HERD_ENOPROC);
    assert_true(ts_ms_since(&t0) < 4000);
    assert_int_equal(g_nsrv, 1);
    assert_int_equal(g_srv_rc[0], 0);
    assert_int_equal(g_terms, 1);
    assert_int_equal(g_last_reason, HERD_REASON_KILLED);
    ts_node_free(n);
}

static void test_call_node_call_error_status(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "error", 5000, &r), 0);
    assert_reply(&r, HERD_ERANGE, "why");
    herd_reply_free(&r);
    assert_true(herd_is_alive(n, s)); /* replying an error is not a crash */
    ts_node_free(n);
}

/* A service's own error code (herd_reply_error) comes back as the reply's
 * status, told apart from herd's codes; the codes' range is checked. */
static void test_call_node_call_app_error(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "app-error", 5000, &r), 0);
    assert_int_equal(herd_app_error_code(r.status), 42);
    assert_int_equal(r.status, herd_app_error(42));
    assert_string_equal(herd_err_name(r.status), "EAPP");
    assert_string_equal(herd_strerror(r.status), "the service's own error");
    assert_reply(&r, herd_app_error(42), "no");
    herd_reply_free(&r);
    assert_int_equal(g_srv_rc[0], 0);
    /* the codes: 1..HERD_APP_ERROR_MAX, none of them one of herd's */
    assert_int_equal(herd_app_error(0), HERD_EINVAL);
    assert_int_equal(herd_app_error(-1), HERD_EINVAL);
    assert_int_equal(herd_app_error(HERD_APP_ERROR_MAX + 1), HERD_EINVAL);
    assert_int_equal(herd_app_error_code(herd_app_error(1)), 1);
    assert_int_equal(herd_app_error_code(herd_app_error(HERD_APP_ERROR_MAX)), HERD_APP_ERROR_MAX);
    static const int not_app[] = {0, 1, HERD_EINVAL, HERD_EUNAVAILABLE, HERD_APP_ERROR_BASE,
                                  HERD_APP_ERROR_BASE - HERD_APP_ERROR_MAX - 1, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof(not_app) / sizeof(not_app[0]); i++)
        assert_int_equal(herd_app_error_code(not_app[i]), 0);
    assert_string_equal(herd_err_name(HERD_EINVAL), "EINVAL"); /* herd's stay herd's */
    ts_node_free(n);
}

/* A reply is the callee's answer whatever its status: even a status that
 * reads like a runtime error, with no bytes, comes back as 0 with out->status
 * set, not as the call's own failure. */
static void test_call_node_call_error_status_without_data(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "bare-error", 5000, &r), 0);
    assert_int_equal(r.status, HERD_ETIMEDOUT);
    assert_int_equal(r.len, 0);
    herd_reply_free(&r);
    assert_int_equal(call_str(n, s, "bare-noproc", 5000, &r), 0);
    assert_int_equal(r.status, HERD_ENOPROC);
    assert_int_equal(r.len, 0);
    herd_reply_free(&r);
    assert_int_equal(g_nsrv, 2);
    assert_int_equal(g_srv_rc[0], 0);
    assert_int_equal(g_srv_rc[1], 0);
    ts_node_free(n);
}

static void test_call_node_call_inside_handler_edeadlk(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t a = spawn_srv(n), b = spawn_srv(n);
    uint8_t buf[6 + sizeof(herd_pid_t)];
    memcpy(buf, "deadlk", 6);
    memcpy(buf + 6, &b, sizeof(b));
    assert_int_equal(herd_node_cast(n, a, buf, sizeof(buf)), 0);
    ts_run(n);
    assert_int_equal(g_nsrv, 1);
    assert_int_equal(g_srv_rc[0], HERD_EDEADLK);
    assert_true(herd_is_alive(n, a));
    /* from outside it works */
    herd_reply_t r;
    assert_int_equal(call_str(n, b, "echo:ok", 5000, &r), 0);
    assert_reply(&r, 0, "ok");
    herd_reply_free(&r);
    ts_node_free(n);
}

/* ---- calls between processes -------------------------------------------- */

static void test_call_process_reply_arrives_as_message(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "echo:one", 10000);
    order_call(n, c, s, "echo:two", 10000);
    order_call(n, c, s, "defer-timer", 10000);
    order_call(n, c, s, "echo:three", 10000);
    /* answered calls leave nothing armed: the run ends once all is done,
     * long before the calls' timeouts */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    assert_int_equal(g_ncli, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g_cli_rc[i], 0);
        assert_true(g_cli_ref[i] != 0);
    }
    /* srv saw each call from c */
    assert_int_equal(g_ncalls, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g_calls[i].kind, HERD_MSG_CALL);
        assert_true(herd_pid_equal(g_calls[i].msg_from, c));
        assert_true(herd_pid_equal(g_calls[i].from.pid, c));
        assert_int_equal(g_calls[i].msg_ref, g_cli_ref[i]);
        assert_int_equal(g_calls[i].from.ref, g_cli_ref[i]);
    }
    /* replies: immediate ones in order, the deferred one last */
    assert_int_equal(g_nreplies, 4);
    static const char *const want[] = {"one", "two", "three", "deferred-timer"};
    static const int which[] = {0, 1, 3, 2};
    for (int i = 0; i < 4; i++) {
        const seen_reply_t *r = &g_replies[i];
        assert_int_equal(r->kind, HERD_MSG_REPLY);
        assert_int_equal(r->self, c.serial);
        assert_true(herd_pid_equal(r->from, s));
        assert_int_equal(r->ref, g_cli_ref[which[i]]);
        assert_int_equal(r->status, 0);
        assert_int_equal(r->len, strlen(want[i]));
        assert_string_equal(r->data, want[i]);
    }
    ts_node_free(n);
}

static void test_call_process_timeout_arrives_as_reply(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "never", 50);
    ts_run(n); /* runs until the timeout fired: then nothing is left */
    assert_int_equal(g_ncli, 1);
    assert_int_equal(g_cli_rc[0], 0);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(g_replies[0].kind, HERD_MSG_REPLY);
    assert_int_equal(g_replies[0].ref, g_cli_ref[0]);
    assert_int_equal(g_replies[0].status, HERD_ETIMEDOUT);
    /* the late reply is dropped, and no second REPLY arrives */
    assert_int_equal(herd_node_cast(n, s, "late-reply", 10), 0);
    ts_run(n);
    assert_int_equal(g_nsrv, 1);
    assert_int_equal(g_srv_rc[0], 0);
    assert_int_equal(late_replies(n), 1);
    assert_int_equal(g_nreplies, 1);
    assert_true(herd_is_alive(n, c));
    assert_true(herd_is_alive(n, s));
    ts_node_free(n);
}

static void test_call_process_callee_crash_arrives_as_noproc(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s1 = spawn_srv(n), s2 = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    order_call(n, c, s1, "crash-later", 8000);
    order_call(n, c, s2, "crash-now", 8000);
    ts_run(n);
    assert_true(ts_ms_since(&t0) < 4000); /* not a timeout */
    assert_int_equal(g_ncli, 2);
    assert_int_equal(g_cli_rc[0], 0);
    assert_int_equal(g_cli_rc[1], 0);
    assert_int_equal(g_nreplies, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g_replies[i].kind, HERD_MSG_REPLY);
        assert_int_equal(g_replies[i].status, HERD_ENOPROC);
    }
    /* which reply answers which call: by ref */
    int m0 = g_replies[0].ref == g_cli_ref[0] || g_replies[1].ref == g_cli_ref[0];
    int m1 = g_replies[0].ref == g_cli_ref[1] || g_replies[1].ref == g_cli_ref[1];
    assert_true(m0 && m1);
    assert_true(herd_is_alive(n, c)); /* the caller is not hurt */
    assert_int_equal(g_terms, 2);
    ts_node_free(n);
}

static void test_call_process_call_to_dead_pid_fails_at_once(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    assert_int_equal(herd_exit(n, s, HERD_REASON_KILLED), 0);
    ts_run(n);
    order_call(n, c, s, "echo:x", 5000);
    ts_run(n);
    assert_int_equal(g_ncli, 1);
    assert_int_equal(g_cli_rc[0], HERD_ENOPROC);
    assert_int_equal(g_nreplies, 0); /* failed at once: no REPLY message */
    assert_int_equal(g_ncalls, 0);
    ts_node_free(n);
}

static void test_call_process_error_status(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "error", 5000);
    ts_run(n);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(g_replies[0].kind, HERD_MSG_REPLY);
    assert_int_equal(g_replies[0].ref, g_cli_ref[0]);
    assert_int_equal(g_replies[0].status, HERD_ERANGE);
    assert_int_equal(g_replies[0].len, 3);
    assert_string_equal(g_replies[0].data, "why");
    ts_node_free(n);
}

/* A caller that exited gave up too: the reply is dropped. */
static void test_call_reply_to_exited_caller(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "never", 60000);
    /* short runs: the call's timeout is armed for a minute */
    assert_true(herd_node_run_for(n, 100) >= 0);
    assert_int_equal(g_ncalls, 1);
    assert_int_equal(herd_exit(n, c, HERD_REASON_KILLED), 0);
    assert_true(herd_node_run_for(n, 100) >= 0);
    assert_false(herd_is_alive(n, c));
    assert_int_equal(herd_reply(n, g_saved, 0, "late", 4), 0);
    assert_int_equal(late_replies(n), 1);
    assert_true(herd_node_run_for(n, 100) >= 0);
    assert_int_equal(g_nreplies, 0);
    ts_node_free(n);
}

/* With a virtual clock the timeout of a process's call fires exactly at its
 * deadline, and not a millisecond before. */
static void test_call_timeout_on_virtual_clock(void **st)
{
    (void)st;
    reset();
    ts_vnow = 10000;
    herd_node_t *n = mknode("t1", &ts_vclock);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "never", 100);
    ts_drain(n);
    assert_int_equal(g_ncli, 1);
    assert_int_equal(g_cli_rc[0], 0);
    assert_int_equal(g_ncalls, 1);
    ts_vnow += 99;
    ts_drain(n);
    assert_int_equal(g_nreplies, 0);
    ts_vnow += 1;
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(g_replies[0].ref, g_cli_ref[0]);
    assert_int_equal(g_replies[0].status, HERD_ETIMEDOUT);
    assert_int_equal(herd_reply(n, g_saved, 0, "late", 4), 0);
    ts_vnow += 100000;
    ts_drain(n);
    assert_int_equal(g_nreplies, 1);

    /* a reply before the deadline wins, and the timeout never comes */
    order_call(n, c, s, "defer-timer", 100); /* answered after 20 ms */
    ts_drain(n);
    ts_vnow += 20;
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    assert_int_equal(g_replies[1].status, 0);
    assert_string_equal(g_replies[1].data, "deferred-timer");
    ts_vnow += 1000;
    ts_drain(n);
    assert_int_equal(g_nreplies, 2);
    ts_node_free(n);
}

/* `return herd_reply(...)` from a handler, after the caller timed out: the
 * reply is dropped and counted, herd_reply answers 0, and the callee does
 * not crash but keeps serving. The same for a caller that is a process. */
static void test_call_late_reply_returned_from_handler_keeps_callee(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "never", 50, &r), HERD_ETIMEDOUT);
    assert_int_equal(herd_node_cast(n, s, "late-return", 11), 0);
    ts_run(n);
    assert_true(herd_is_alive(n, s));
    assert_int_equal(g_terms, 0);
    assert_int_equal(late_replies(n), 1);
    assert_int_equal(call_str(n, s, "echo:still", 5000, &r), 0);
    assert_reply(&r, 0, "still");
    herd_reply_free(&r);

    herd_pid_t c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "never", 50);
    ts_run(n);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(g_replies[0].status, HERD_ETIMEDOUT);
    assert_int_equal(herd_node_cast(n, s, "late-return", 11), 0);
    ts_run(n);
    assert_true(herd_is_alive(n, s));
    assert_true(herd_is_alive(n, c));
    assert_int_equal(g_terms, 0);
    assert_int_equal(late_replies(n), 2);
    assert_int_equal(g_nreplies, 1); /* no second REPLY */
    order_call(n, c, s, "echo:again", 5000);
    ts_run(n);
    assert_int_equal(g_nreplies, 2);
    assert_int_equal(g_replies[1].status, 0);
    assert_string_equal(g_replies[1].data, "again");
    ts_node_free(n);
}

/* A deferred reply (kept `from`, answered from a later message) that comes
 * after the caller's timeout: `return herd_reply(...)` in handle_info
 * returns 0, the callee lives on and answers the next call. */
static void test_call_late_deferred_reply_returned_keeps_callee(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n);
    herd_reply_t r;
    assert_int_equal(call_str(n, s, "defer-return", 10, &r), HERD_ETIMEDOUT);
    ts_run(n); /* the timer fires 50 ms after the call: the reply is late */
    assert_true(herd_is_alive(n, s));
    assert_int_equal(g_terms, 0);
    assert_int_equal(late_replies(n), 1);

    herd_pid_t c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "defer-return", 10);
    ts_run(n);
    assert_true(herd_is_alive(n, s));
    assert_int_equal(g_terms, 0);
    assert_int_equal(late_replies(n), 2);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(g_replies[0].status, HERD_ETIMEDOUT);

    /* in time, the same path answers */
    assert_int_equal(call_str(n, s, "defer-return", 5000, &r), 0);
    assert_reply(&r, 0, "deferred");
    herd_reply_free(&r);
    assert_int_equal(late_replies(n), 2);
    ts_node_free(n);
}

/* A `from` that names another caller's call is refused, and the call it
 * names is left waiting for its own reply. */
static void test_call_reply_with_foreign_from_einval(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL);
    herd_pid_t s = spawn_srv(n), c = ts_spawn(n, &cli_beh, NULL, 0);
    order_call(n, c, s, "never", 60000);
    assert_true(herd_node_run_for(n, 50) >= 0);
    assert_int_equal(g_ncalls, 1);
    herd_from_t forged = g_saved;
    forged.pid.serial = s.serial;
    assert_int_equal(herd_reply(n, forged, 0, "x", 1), HERD_EINVAL);
    assert_int_equal(late_replies(n), 0);
    assert_int_equal(herd_reply(n, g_saved, 0, "ok", 2), 0);
    assert_true(herd_node_run_for(n, 50) >= 0);
    assert_int_equal(g_nreplies, 1);
    assert_int_equal(g_replies[0].status, 0);
    assert_string_equal(g_replies[0].data, "ok");
    ts_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_call_node_call_immediate_reply, ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_deferred_reply_from_timer,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_deferred_reply_on_later_cast,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_timeout_and_late_reply,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_dead_pid, ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_callee_crashes, ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_callee_killed, ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_error_status, ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_app_error, ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_error_status_without_data,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_node_call_inside_handler_edeadlk,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_process_reply_arrives_as_message,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_process_timeout_arrives_as_reply,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_process_callee_crash_arrives_as_noproc,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_process_call_to_dead_pid_fails_at_once,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_process_error_status, ts_teardown),
        cmocka_unit_test_teardown(test_call_reply_to_exited_caller, ts_teardown),
        cmocka_unit_test_teardown(test_call_timeout_on_virtual_clock, ts_teardown),
        cmocka_unit_test_teardown(test_call_late_reply_returned_from_handler_keeps_callee,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_late_deferred_reply_returned_keeps_callee,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_call_reply_with_foreign_from_einval, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
