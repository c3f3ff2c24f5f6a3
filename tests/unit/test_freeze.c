/*
 * test_freeze.c - unit tests for moving a process to another node, the
 * runtime's part (herd_runtime.h, "moving a process to another node"):
 * herd_freeze / herd_thaw / herd_is_frozen, herd_forward_mailbox and
 * herd_redirect.
 *
 * What is checked:
 * - a frozen process handles nothing while its messages queue (the mailbox
 *   limit still applies to ordinary sends), and after thaw handles them in
 *   order; freezing twice is a no-op;
 * - freeze errors: HERD_ENOPROC for a dead pid, HERD_EINVAL from its own
 *   handler, HERD_EBUSY while a call it made is outstanding (local or remote);
 * - forward_mailbox moves casts, infos and calls in order, with their kind,
 *   sender and reference, to another process of the node or of another node;
 *   the new process answers the calls to their original callers (processes on
 *   either node, and code outside processes with herd_node_call), and the old
 *   process stopping with HERD_REASON_HANDOFF afterwards does not make those
 *   callers get HERD_ENOPROC; its own DOWN notices are dropped;
 * - forwarded messages queue ahead of the direct ones while the receiver is
 *   frozen (also across nodes, and over two forwards);
 * - forward_mailbox of a process that is not frozen is HERD_EINVAL;
 * - herd_redirect: after the old process exits, casts and calls to its pid
 *   reach the new one (here and across nodes, from callers on either node),
 *   and after the redirect period a send is HERD_ENOPROC again.
 *
 * Single-node tests run on a virtual clock (ts_vclock) and drive the node
 * with ts_drain: deterministic, and a redirect's period is exact. The tests
 * that need herd_node_call (which blocks) run on the real clock: a
 * "coordinator" process, woken by a timer while the call waits, forwards the
 * frozen mailbox and stops the old process. Cluster tests make two nodes on
 * the shared loop (ts_loop) over tcp loopback; every wait has a deadline.
 *
 * One behaviour, "rec", does everything: it records every message it gets
 * (casts, infos and calls carry a uint32 value), answers calls with
 * {value, its own pid} (or holds them when the value has HOLD set), and runs
 * the commands (cmd_t) it is sent: make a call, freeze itself, forward a
 * mailbox (and stop the old process), monitor. Callbacks only record into the
 * global log; the tests assert on it.
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

#define SECRET "test-freeze-secret-0123456789"
#define WAIT_MS 10000u /* deadline of every wait */
#define LOG_MAX 1024
#define HOLD 0x80000000u /* a call with this bit in its value is held, not answered */
/* The timeout of calls whose answer a suspected defect may lose: short, so a
 * failure costs little time. */
#define SHORT_CALL_MS 1500u

#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

/* Generous: a slow (sanitized) run must not see a live node go down. */
static const ts_timing_t CALM = {100, 1500, 3000, 0};

/* ---- the log ------------------------------------------------------------------- */

enum { EV_CAST = 1, EV_INFO, EV_CALL, EV_REPLY, EV_DOWN, EV_EXIT, EV_RC };

typedef struct ev {
    int kind;
    herd_pid_t self; /* the process that recorded it */
    herd_pid_t from; /* the message's sender */
    uint32_t val;    /* CAST/INFO/CALL/REPLY: the value */
    uint64_t ref;    /* CALL/REPLY: the call's reference; RC: a call's or monitor's */
    int status;      /* REPLY: its status; EXIT/DOWN: the reason; RC: what the op
                        returned; CALL: what herd_reply returned */
    herd_pid_t by;   /* REPLY: who answered (from the answer's bytes) */
    int op;          /* RC: the command */
    int status2;     /* RC of OP_FORWARD: what herd_stop returned */
} ev_t;

static ev_t g_ev[LOG_MAX];
static size_t g_nev;
static herd_from_t g_held[64]; /* calls held (HOLD) */
static size_t g_nheld;

static void reset_log(void)
{
    memset(g_ev, 0, sizeof(g_ev));
    g_nev = 0;
    g_nheld = 0;
}

static ev_t *ev_add(int kind, herd_pid_t self)
{
    if (ts_detached() || g_nev >= LOG_MAX)
        return NULL;
    ev_t *e = &g_ev[g_nev++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->self = self;
    return e;
}

static size_t ev_count(int kind, herd_pid_t self)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nev; i++)
        k += g_ev[i].kind == kind && herd_pid_equal(g_ev[i].self, self);
    return k;
}

/* The nth (from 0) event of `kind` recorded by `self`, or NULL. */
static const ev_t *ev_nth(int kind, herd_pid_t self, size_t nth)
{
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].kind == kind && herd_pid_equal(g_ev[i].self, self) && nth-- == 0)
            return &g_ev[i];
    return NULL;
}

/* The messages (casts, infos, calls) `self` handled, in order. */
static size_t msgs_of(herd_pid_t self, const ev_t **out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nev; i++) {
        const ev_t *e = &g_ev[i];
        if ((e->kind == EV_CAST || e->kind == EV_INFO || e->kind == EV_CALL) &&
            herd_pid_equal(e->self, self)) {
            if (k < cap)
                out[k] = e;
            k++;
        }
    }
    return k;
}

static size_t msg_count(herd_pid_t self)
{
    return msgs_of(self, NULL, 0);
}

/* The reply caller `self` got for its call `ref`, or NULL. */
static const ev_t *reply_of(herd_pid_t self, uint64_t ref)
{
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].kind == EV_REPLY && g_ev[i].ref == ref && herd_pid_equal(g_ev[i].self, self))
            return &g_ev[i];
    return NULL;
}

static void assert_pid_eq(herd_pid_t a, herd_pid_t b)
{
    assert_int_equal(a.node, b.node);
    assert_int_equal(a.incarnation, b.incarnation);
    assert_int_equal(a.serial, b.serial);
}

/* The pid of code outside processes on `n` (serial 0). */
static herd_pid_t outside(herd_node_t *n)
{
    return (herd_pid_t){herd_node_id_of(herd_node_name(n)), herd_node_incarnation(n), 0};
}

/* One handled message: kind, value, sender. */
static void assert_msg(const ev_t *e, int kind, uint32_t val, herd_pid_t from)
{
    assert_non_null(e);
    if (e->kind != kind || e->val != val)
        fail_msg("message: kind %d value %u, expected kind %d value %u", e->kind,
                 (unsigned)e->val, kind, (unsigned)val);
    assert_pid_eq(e->from, from);
}

/* ---- rec ----------------------------------------------------------------------- */

#define CMD_MAGIC 0xc0def00du

enum { OP_CALL = 1, OP_FREEZE_SELF, OP_FORWARD, OP_MONITOR, OP_FORWARD_SELF, OP_RELAY };

typedef struct cmd {
    uint32_t magic;
    int32_t op;
    herd_pid_t a, b; /* CALL: a is the callee; FORWARD: from a to b; MONITOR: a */
    uint32_t val;
    uint32_t timeout_ms;
    int32_t stop; /* FORWARD: then herd_stop(a, HERD_REASON_HANDOFF) */
    herd_pid_t relay_to; /* RELAY: cast FORWARD(a, b, stop) to this process */
} cmd_t;

typedef struct answer {
    uint32_t val;
    uint32_t pad;
    herd_pid_t by;
} answer_t;

static void rec_cmd(herd_proc_t *self, const cmd_t *c)
{
    herd_node_t *n = herd_proc_node(self);
    int rc = HERD_EINVAL, rc2 = 0;
    uint64_t ref = 0;
    switch (c->op) {
    case OP_CALL:
        rc = herd_call(self, c->a, &c->val, sizeof(c->val), c->timeout_ms, &ref);
        break;
    case OP_FREEZE_SELF:
        rc = herd_freeze(n, herd_self(self), HERD_FREEZE_TEST);
        break;
    case OP_FORWARD:
        rc = herd_forward_mailbox(n, c->a, c->b);
        if (c->stop)
            rc2 = herd_stop(n, c->a, HERD_REASON_HANDOFF);
        break;
    case OP_FORWARD_SELF:
        rc = herd_forward_mailbox(n, herd_self(self), c->b);
        break;
    case OP_MONITOR:
        rc = herd_monitor(self, c->a, &ref);
        break;
    case OP_RELAY: {
        cmd_t fw = *c;
        fw.op = OP_FORWARD;
        rc = herd_cast(self, c->relay_to, &fw, sizeof(fw));
        break;
    }
    }
    ev_t *e = ev_add(EV_RC, herd_self(self));
    if (e) {
        e->op = c->op;
        e->status = rc;
        e->status2 = rc2;
        e->ref = ref;
    }
}

/* A value message, or a command. */
static void rec_msg(herd_proc_t *self, const herd_msg_t *m, int kind)
{
    if (m->len == sizeof(cmd_t)) {
        cmd_t c;
        memcpy(&c, m->data, sizeof(c));
        if (c.magic == CMD_MAGIC) {
            rec_cmd(self, &c);
            return;
        }
    }
    ev_t *e = ev_add(kind, herd_self(self));
    if (e == NULL)
        return;
    e->from = m->from;
    e->ref = m->ref;
    if (m->len == sizeof(uint32_t))
        memcpy(&e->val, m->data, sizeof(uint32_t));
}

static int rec_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    rec_msg(self, msg, EV_CAST);
    return 0;
}

static int rec_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind == HERD_MSG_REPLY) {
        ev_t *e = ev_add(EV_REPLY, herd_self(self));
        if (e == NULL)
            return 0;
        e->from = msg->from;
        e->ref = msg->ref;
        e->status = msg->status;
        if (msg->len == sizeof(answer_t)) {
            answer_t a;
            memcpy(&a, msg->data, sizeof(a));
            e->val = a.val;
            e->by = a.by;
        }
        return 0;
    }
    if (msg->kind == HERD_MSG_DOWN) {
        ev_t *e = ev_add(EV_DOWN, herd_self(self));
        if (e) {
            e->from = msg->from;
            e->ref = msg->ref;
            e->status = msg->status;
        }
        return 0;
    }
    if (msg->kind == HERD_MSG_INFO)
        rec_msg(self, msg, EV_INFO);
    return 0;
}

static int rec_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    ev_t *e = ev_add(EV_CALL, herd_self(self));
    uint32_t v = 0;
    if (msg->len == sizeof(v))
        memcpy(&v, msg->data, sizeof(v));
    if (e) {
        e->from = msg->from;
        e->ref = msg->ref;
        e->val = v;
    }
    if (v & HOLD) {
        if (g_nheld < 64)
            g_held[g_nheld++] = from;
        return 0;
    }
    answer_t a;
    memset(&a, 0, sizeof(a));
    a.val = v;
    a.by = herd_self(self);
    int rc = herd_reply(herd_proc_node(self), from, 0, &a, sizeof(a));
    if (e)
        e->status = rc;
    return 0;
}

static void rec_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)state;
    ev_t *e = ev_add(EV_EXIT, herd_self(self));
    if (e)
        e->status = reason;
}

static const herd_behaviour_t rec = {.name = "rec",
                                     .handle_call = rec_call,
                                     .handle_cast = rec_cast,
                                     .handle_info = rec_info,
                                     .terminate = rec_terminate};

static herd_pid_t spawn_rec_limit(herd_node_t *n, uint32_t mailbox_limit)
{
    herd_spawn_opts_t o = {.behaviour = &rec, .mailbox_limit = mailbox_limit};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

static herd_pid_t spawn_rec(herd_node_t *n)
{
    return spawn_rec_limit(n, 0);
}

/* ---- driving ------------------------------------------------------------------- */

/* A value message from code outside processes on n. */
static void cast_val(herd_node_t *n, herd_pid_t to, uint32_t v)
{
    assert_int_equal(herd_node_cast(n, to, &v, sizeof(v)), 0);
}

static void send_val(herd_node_t *n, herd_pid_t to, uint32_t v)
{
    assert_int_equal(herd_node_send(n, to, &v, sizeof(v)), 0);
}

/* Tell rec `p` on n to run `c`; returns what it recorded. `virt`: n runs on
 * the virtual clock (drained here); else the shared loop runs until done. */
static ev_t run_cmd(herd_node_t *n, herd_pid_t p, cmd_t c, int virt)
{
    size_t k = ev_count(EV_RC, p);
    c.magic = CMD_MAGIC;
    assert_int_equal(herd_node_cast(n, p, &c, sizeof(c)), 0);
    if (virt)
        ts_drain(n);
    else
        WAIT_UNTIL(ev_count(EV_RC, p) > k);
    const ev_t *e = ev_nth(EV_RC, p, k);
    assert_non_null(e);
    return *e;
}

/* Process `caller` calls `to` with value v; returns the call's reference. */
static uint64_t call_from(herd_node_t *n, herd_pid_t caller, herd_pid_t to, uint32_t v,
                          uint32_t timeout_ms, int virt)
{
    cmd_t c = {.op = OP_CALL, .a = to, .val = v, .timeout_ms = timeout_ms};
    ev_t r = run_cmd(n, caller, c, virt);
    assert_int_equal(r.status, 0);
    assert_true(r.ref != 0);
    return r.ref;
}

/* The reply caller got for ref: status 0, value v, answered by `by`. */
static void assert_answered(herd_pid_t caller, uint64_t ref, uint32_t v, herd_pid_t by)
{
    const ev_t *r = reply_of(caller, ref);
    assert_non_null(r);
    if (r->status != 0)
        fail_msg("call %llu of caller %llu: status %s, expected an answer",
                 (unsigned long long)ref, (unsigned long long)caller.serial,
                 herd_strerror(r->status));
    assert_int_equal(r->val, v);
    assert_pid_eq(r->by, by);
}

/* A node on the shared loop on the virtual clock. */
static herd_node_t *vnode(const char *name)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop, .clock = &ts_vclock};
    return ts_cluster_add(&cfg);
}

/* A node on the shared loop on the real clock, not in a cluster. */
static herd_node_t *rnode(const char *name)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop};
    return ts_cluster_add(&cfg);
}

/* Two clustered nodes a and b that see each other up. */
static void pair(herd_node_t **a, herd_node_t **b)
{
    *a = rnode("a");
    ts_cluster_join(*a, &CALM, NULL, 0);
    *b = rnode("b");
    ts_cluster_join(*b, &CALM, a, 1);
    herd_node_t *all[2] = {*a, *b};
    WAIT_UNTIL(ts_cluster_all_up(all, 2));
}

/* Everything `from` sent to `to` has been acknowledged: delivered there. */
static int stream_idle(herd_node_t *from, herd_node_t *to)
{
    herd_stream_stats_t s;
    int rc = herd_cluster_stream_stats(from, herd_node_id_of(herd_node_name(to)), &s);
    return rc == HERD_ENOENT || (rc == 0 && s.pending == 0 && s.acked_seq == s.sent_seq);
}

static void wait_streams_idle(herd_node_t *a, herd_node_t *b)
{
    WAIT_UNTIL(stream_idle(a, b) && stream_idle(b, a));
}

/* The old process's exit: terminate ran with HERD_REASON_HANDOFF. */
static void wait_exit_handoff(herd_node_t *n, herd_pid_t p, int virt)
{
    if (virt)
        ts_drain(n);
    else
        WAIT_UNTIL(ev_count(EV_EXIT, p) == 1);
    const ev_t *e = ev_nth(EV_EXIT, p, 0);
    assert_non_null(e);
    assert_int_equal(e->status, HERD_REASON_HANDOFF);
    assert_int_equal(herd_is_alive(n, p), 0);
}

/* No reply of `caller` carries HERD_ENOPROC. */
static void assert_no_enoproc(herd_pid_t caller)
{
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].kind == EV_REPLY && herd_pid_equal(g_ev[i].self, caller))
            assert_int_not_equal(g_ev[i].status, HERD_ENOPROC);
}

/* ---- setup ---------------------------------------------------------------------- */

static int setup(void **state)
{
    reset_log();
    ts_vnow = 1000000;
    return ts_cluster_setup(state);
}

/* ---- freeze and thaw -------------------------------------------------------------- */

/* A frozen process handles nothing, whatever arrives (casts, infos, timer
 * messages, a call from a process, messages queued before the freeze); after
 * thaw it handles all of them in the order they came. */
static void test_freeze_holds_messages_until_thaw_in_order(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), c = spawn_rec(n), out = outside(n);

    /* queued before the freeze, not handled yet */
    cast_val(n, p, 1);
    send_val(n, p, 2);
    assert_int_equal(herd_is_frozen(n, p), 0);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_is_frozen(n, p), HERD_FREEZE_TEST);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0); /* a no-op */
    assert_int_equal(herd_is_frozen(n, p), HERD_FREEZE_TEST);
    assert_int_equal(herd_is_alive(n, p), 1);

    cast_val(n, p, 3);
    uint64_t ref = call_from(n, c, p, 4, 60000, 1);
    uint64_t timer;
    uint32_t tv = 5;
    assert_int_equal(herd_send_after(n, p, 10, &tv, sizeof(tv), &timer), 0);
    for (int i = 0; i < 3; i++) {
        ts_vnow += 10; /* the timer fires into the frozen mailbox */
        ts_drain(n);
    }
    send_val(n, p, 6);
    ts_drain(n);
    assert_int_equal(msg_count(p), 0);
    assert_null(reply_of(c, ref));
    assert_int_equal(herd_is_frozen(n, p), HERD_FREEZE_TEST);
    assert_int_equal(herd_is_frozen(n, c), 0);

    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_is_frozen(n, p), 0);
    ts_drain(n);
    const ev_t *m[8];
    assert_int_equal(msgs_of(p, m, 8), 6);
    assert_msg(m[0], EV_CAST, 1, out);
    assert_msg(m[1], EV_INFO, 2, out);
    assert_msg(m[2], EV_CAST, 3, out);
    assert_msg(m[3], EV_CALL, 4, c);
    assert_int_equal(m[3]->ref, ref);
    assert_msg(m[4], EV_INFO, 5, out);
    assert_int_equal(m[4]->ref, timer);
    assert_msg(m[5], EV_INFO, 6, out);
    assert_answered(c, ref, 4, p);

    /* thawed: handles at once again; thaw of a running process is harmless */
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_TEST), 0);
    cast_val(n, p, 7);
    ts_drain(n);
    assert_int_equal(msg_count(p), 7);

    /* and it can be frozen again */
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    cast_val(n, p, 8);
    ts_drain(n);
    assert_int_equal(msg_count(p), 7);
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_TEST), 0);
    ts_drain(n);
    assert_int_equal(msg_count(p), 8);
    ts_node_free(n);
}

/* The mailbox limit still applies to ordinary sends while frozen. */
static void test_freeze_mailbox_limit_still_applies(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec_limit(n, 3);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    uint32_t v = 1;
    for (v = 1; v <= 3; v++)
        assert_int_equal(herd_node_cast(n, p, &v, sizeof(v)), 0);
    assert_int_equal(herd_node_cast(n, p, &v, sizeof(v)), HERD_EFULL);
    assert_int_equal(herd_node_send(n, p, &v, sizeof(v)), HERD_EFULL);
    ts_drain(n);
    assert_int_equal(msg_count(p), 0);
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_TEST), 0);
    ts_drain(n);
    assert_int_equal(msg_count(p), 3);
    ts_node_free(n);
}

/* ENOPROC for a pid that is not alive; EINVAL from the process's own
 * handler (and it is not frozen after that). */
static void test_freeze_errors_enoproc_and_own_handler(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n);
    assert_int_equal(herd_stop(n, q, HERD_REASON_SHUTDOWN), 0);
    ts_drain(n);
    assert_int_equal(herd_is_alive(n, q), 0);
    assert_int_equal(herd_freeze(n, q, HERD_FREEZE_TEST), HERD_ENOPROC);
    assert_int_equal(herd_thaw(n, q, HERD_FREEZE_TEST), HERD_ENOPROC);
    assert_int_equal(herd_is_frozen(n, q), 0);
    assert_int_equal(herd_forward_mailbox(n, q, p), HERD_ENOPROC);
    herd_pid_t never = {p.node, p.incarnation, p.serial + 1000};
    assert_int_equal(herd_freeze(n, never, HERD_FREEZE_TEST), HERD_ENOPROC);
    assert_int_equal(herd_freeze(n, outside(n), HERD_FREEZE_TEST), HERD_ENOPROC);

    /* from its own handler */
    ev_t r = run_cmd(n, p, (cmd_t){.op = OP_FREEZE_SELF}, 1);
    assert_int_equal(r.status, HERD_EINVAL);
    assert_int_equal(herd_is_frozen(n, p), 0);
    cast_val(n, p, 1);
    ts_drain(n);
    assert_int_equal(msg_count(p), 1);

    /* its own handler cannot forward its own mailbox either */
    herd_pid_t t = spawn_rec(n);
    r = run_cmd(n, p, (cmd_t){.op = OP_FORWARD_SELF, .b = t}, 1);
    assert_int_equal(r.status, HERD_EINVAL);
    ts_node_free(n);
}

/* EBUSY while a call the process made is outstanding; fine once it is
 * answered, and once another one has timed out. */
static void test_freeze_ebusy_while_own_call_outstanding(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), s = spawn_rec(n), other = spawn_rec(n);
    uint64_t ref = call_from(n, p, s, HOLD | 1, 60000, 1);
    assert_int_equal(g_nheld, 1);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), HERD_EBUSY);
    assert_int_equal(herd_is_frozen(n, p), 0);
    /* the callee is not the one with an outstanding call */
    assert_int_equal(herd_freeze(n, s, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_thaw(n, s, HERD_FREEZE_TEST), 0);
    /* a call of another process does not count */
    assert_int_equal(herd_freeze(n, other, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_thaw(n, other, HERD_FREEZE_TEST), 0);

    assert_int_equal(herd_reply(n, g_held[0], 0, NULL, 0), 0);
    ts_drain(n);
    assert_non_null(reply_of(p, ref));
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_TEST), 0);

    /* a call that times out stops counting */
    uint64_t ref2 = call_from(n, p, s, HOLD | 2, 100, 1);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), HERD_EBUSY);
    ts_vnow += 100;
    ts_drain(n);
    const ev_t *r = reply_of(p, ref2);
    assert_non_null(r);
    assert_int_equal(r->status, HERD_ETIMEDOUT);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    ts_node_free(n);
}

/* ---- forwarding on one node ---------------------------------------------------------- */

/* Casts, infos and calls (from two callers) move in order with their sender
 * and reference; the new copy answers the calls to the callers; the old
 * process's own DOWN is dropped (not counted); stopping the old process with
 * HERD_REASON_HANDOFF does not fail the forwarded calls. */
static void test_forward_local_in_order_calls_answered_by_new(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n), out = outside(n);
    herd_pid_t c1 = spawn_rec(n), c2 = spawn_rec(n), gone = spawn_rec(n);
    ev_t mon = run_cmd(n, p, (cmd_t){.op = OP_MONITOR, .a = gone}, 1);
    assert_int_equal(mon.status, 0);

    /* not frozen: EINVAL, nothing moved */
    cast_val(n, p, 99);
    assert_int_equal(herd_forward_mailbox(n, p, q), HERD_EINVAL);
    ts_drain(n);
    assert_int_equal(msg_count(p), 1);
    assert_int_equal(msg_count(q), 0);

    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_forward_mailbox(n, p, p), HERD_EINVAL); /* to itself */
    assert_int_equal(herd_forward_mailbox(n, p, q), 0); /* nothing queued */
    cast_val(n, p, 1);
    uint64_t r2 = call_from(n, c1, p, 2, 60000, 1);
    send_val(n, p, 3);
    assert_int_equal(herd_stop(n, gone, HERD_REASON_SHUTDOWN), 0); /* DOWN for p */
    ts_drain(n);
    uint64_t r4 = call_from(n, c2, p, 4, 60000, 1);
    cast_val(n, p, 5);
    uint64_t r6 = call_from(n, c1, p, 6, 60000, 1);
    assert_int_equal(msg_count(p), 1);

    assert_int_equal(herd_forward_mailbox(n, p, q), 6); /* the DOWN is not moved */
    assert_int_equal(herd_stop(n, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(n, p, 1);
    ts_drain(n);

    const ev_t *m[8];
    assert_int_equal(msgs_of(q, m, 8), 6);
    assert_msg(m[0], EV_CAST, 1, out);
    assert_msg(m[1], EV_CALL, 2, c1);
    assert_int_equal(m[1]->ref, r2);
    assert_msg(m[2], EV_INFO, 3, out);
    assert_msg(m[3], EV_CALL, 4, c2);
    assert_int_equal(m[3]->ref, r4);
    assert_msg(m[4], EV_CAST, 5, out);
    assert_msg(m[5], EV_CALL, 6, c1);
    assert_int_equal(m[5]->ref, r6);
    assert_int_equal(ev_count(EV_DOWN, q), 0);
    assert_int_equal(ev_count(EV_DOWN, p), 0);
    assert_int_equal(msg_count(p), 1); /* only what it handled before the freeze */
    for (int i = 1; i < 6; i += 2)
        assert_int_equal(m[i]->status, 0); /* herd_reply succeeded */
    assert_answered(c1, r2, 2, q);
    assert_answered(c2, r4, 4, q);
    assert_answered(c1, r6, 6, q);
    assert_int_equal(ev_count(EV_REPLY, c1), 2);
    assert_int_equal(ev_count(EV_REPLY, c2), 1);

    /* nothing else arrives later (no ENOPROC, no timeout) */
    ts_vnow += 120000;
    ts_drain(n);
    assert_int_equal(ev_count(EV_REPLY, c1), 2);
    assert_int_equal(ev_count(EV_REPLY, c2), 1);
    ts_node_free(n);
}

/* The calls move even when the new copy answers only after the old one has
 * exited (the new copy frozen until then). */
static void test_forward_local_new_copy_answers_after_old_exits(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n), c = spawn_rec(n);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_freeze(n, q, HERD_FREEZE_TEST), 0);
    uint64_t r1 = call_from(n, c, p, 1, 60000, 1);
    uint64_t r2 = call_from(n, c, p, 2, 60000, 1);
    assert_int_equal(herd_forward_mailbox(n, p, q), 2);
    assert_int_equal(herd_stop(n, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(n, p, 1);
    assert_int_equal(ev_count(EV_REPLY, c), 0); /* not an ENOPROC */
    assert_int_equal(herd_thaw(n, q, HERD_FREEZE_TEST), 0);
    ts_drain(n);
    assert_answered(c, r1, 1, q);
    assert_answered(c, r2, 2, q);
    ts_node_free(n);
}

/* A blocking herd_node_call from code outside processes to the frozen old
 * copy: a coordinator process forwards the mailbox and stops the old copy
 * while the call waits; the new copy's answer comes back. */
static void test_forward_local_node_call_answered_by_new(void **state)
{
    (void)state;
    herd_node_t *n = rnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n), k = spawn_rec(n);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    cmd_t fw = {.magic = CMD_MAGIC, .op = OP_FORWARD, .a = p, .b = q, .stop = 1};
    uint64_t timer;
    assert_int_equal(herd_send_after(n, k, 30, &fw, sizeof(fw), &timer), 0);
    uint32_t v = 7;
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, p, &v, sizeof(v), WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, sizeof(answer_t));
    answer_t a;
    memcpy(&a, r.data, sizeof(a));
    herd_reply_free(&r);
    assert_int_equal(a.val, 7);
    assert_pid_eq(a.by, q);
    const ev_t *k_rc = ev_nth(EV_RC, k, 0);
    assert_non_null(k_rc);
    assert_int_equal(k_rc->status, 1);  /* one message moved */
    assert_int_equal(k_rc->status2, 0); /* herd_stop */
    wait_exit_handoff(n, p, 0);
    assert_int_equal(msg_count(p), 0);
    const ev_t *m[2];
    assert_int_equal(msgs_of(q, m, 2), 1);
    assert_msg(m[0], EV_CALL, 7, outside(n));
    ts_node_free(n);
}

/* While the receiver is frozen, forwarded messages queue ahead of those sent
 * to it directly, in the order they were forwarded (over two forwards). */
static void test_forward_queues_ahead_of_direct_while_frozen(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t a = spawn_rec(n), b = spawn_rec(n), s = spawn_rec(n), out = outside(n);
    assert_int_equal(herd_freeze(n, a, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_freeze(n, b, HERD_FREEZE_TEST), 0);
    cast_val(n, b, 101); /* direct to b */
    send_val(n, b, 102);
    cast_val(n, a, 1);
    send_val(n, a, 2);
    uint64_t r3 = call_from(n, s, a, 3, 60000, 1);
    assert_int_equal(herd_forward_mailbox(n, a, b), 3);
    cast_val(n, b, 103); /* direct, after the forward */
    cast_val(n, a, 4);   /* a second forward joins the first */
    assert_int_equal(herd_forward_mailbox(n, a, b), 1);
    cast_val(n, b, 104);
    ts_drain(n);
    assert_int_equal(msg_count(b), 0);
    assert_int_equal(herd_thaw(n, b, HERD_FREEZE_TEST), 0);
    ts_drain(n);
    const ev_t *m[8];
    assert_int_equal(msgs_of(b, m, 8), 8);
    assert_msg(m[0], EV_CAST, 1, out);
    assert_msg(m[1], EV_INFO, 2, out);
    assert_msg(m[2], EV_CALL, 3, s);
    assert_msg(m[3], EV_CAST, 4, out);
    assert_msg(m[4], EV_CAST, 101, out);
    assert_msg(m[5], EV_INFO, 102, out);
    assert_msg(m[6], EV_CAST, 103, out);
    assert_msg(m[7], EV_CAST, 104, out);
    assert_answered(s, r3, 3, b);

    /* after the thaw, a forward into b (running) just appends */
    cast_val(n, a, 5);
    assert_int_equal(herd_forward_mailbox(n, a, b), 1);
    ts_drain(n);
    assert_int_equal(msgs_of(b, m, 8), 9);
    assert_int_equal(msg_count(a), 0);
    ts_node_free(n);
}

/* ---- forwarding to another node ------------------------------------------------------ */

/* p on a is moved to q on b (frozen, with messages of its own). Callers: a
 * process on a (p's node), a process on b (q's node). q sees p's messages
 * first, in order, then its direct ones; every call is answered by q; p's
 * exit (handoff) fails nothing. A remote outstanding call makes freeze EBUSY. */
static void test_forward_to_other_node_callers_on_both_nodes(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), s = spawn_rec(b);
    herd_pid_t ca = spawn_rec(a), cb = spawn_rec(b);
    herd_pid_t out_a = outside(a), out_b = outside(b);

    /* a call of ca to another node is outstanding: EBUSY */
    uint64_t held_ref = call_from(a, ca, s, HOLD | 50, WAIT_MS, 0);
    WAIT_UNTIL(g_nheld == 1);
    assert_int_equal(herd_freeze(a, ca, HERD_FREEZE_TEST), HERD_EBUSY);
    assert_int_equal(herd_reply(b, g_held[0], 0, NULL, 0), 0);
    WAIT_UNTIL(reply_of(ca, held_ref) != NULL);
    assert_int_equal(herd_freeze(a, ca, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_thaw(a, ca, HERD_FREEZE_TEST), 0);

    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_freeze(b, q, HERD_FREEZE_TEST), 0);
    cast_val(b, q, 101); /* direct to q, from its own node */
    cast_val(a, p, 1);
    uint64_t r2 = call_from(a, ca, p, 2, WAIT_MS, 0);
    uint64_t r3 = call_from(b, cb, p, 3, WAIT_MS, 0);
    wait_streams_idle(a, b); /* cb's call is in p's mailbox */
    send_val(a, p, 4);
    cast_val(a, q, 102); /* direct to q, from p's node */
    wait_streams_idle(a, b);
    assert_int_equal(msg_count(p), 0);

    assert_int_equal(herd_forward_mailbox(a, p, q), 4);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);
    wait_streams_idle(a, b); /* the forwarded messages are in q's mailbox */
    assert_int_equal(msg_count(q), 0);
    assert_int_equal(ev_count(EV_REPLY, ca), 1); /* only the held call's */
    assert_int_equal(ev_count(EV_REPLY, cb), 0);

    assert_int_equal(herd_thaw(b, q, HERD_FREEZE_TEST), 0);
    WAIT_UNTIL(msg_count(q) == 6);
    const ev_t *m[8];
    assert_int_equal(msgs_of(q, m, 8), 6);
    assert_msg(m[0], EV_CAST, 1, out_a);
    assert_msg(m[1], EV_CALL, 2, ca);
    assert_int_equal(m[1]->ref, r2);
    assert_msg(m[2], EV_CALL, 3, cb);
    assert_int_equal(m[2]->ref, r3);
    assert_msg(m[3], EV_INFO, 4, out_a);
    assert_msg(m[4], EV_CAST, 101, out_b);
    assert_msg(m[5], EV_CAST, 102, out_a);
    WAIT_UNTIL(reply_of(ca, r2) != NULL && reply_of(cb, r3) != NULL);
    assert_answered(ca, r2, 2, q);
    assert_answered(cb, r3, 3, q);
    ts_cluster_run_ms(100); /* nothing else comes */
    assert_int_equal(ev_count(EV_REPLY, ca), 2);
    assert_int_equal(ev_count(EV_REPLY, cb), 1);
    assert_no_enoproc(ca);
    assert_no_enoproc(cb);
    ts_node_free(b);
    ts_node_free(a);
}

/* herd_node_call from code outside processes on p's node, p moved to q on
 * the other node by a coordinator while the call waits. */
static void test_forward_to_other_node_node_call_from_old_node(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), k = spawn_rec(a);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    cmd_t fw = {.magic = CMD_MAGIC, .op = OP_FORWARD, .a = p, .b = q, .stop = 1};
    uint64_t timer;
    assert_int_equal(herd_send_after(a, k, 30, &fw, sizeof(fw), &timer), 0);
    uint32_t v = 8;
    herd_reply_t r;
    assert_int_equal(herd_node_call(a, p, &v, sizeof(v), WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, sizeof(answer_t));
    answer_t ans;
    memcpy(&ans, r.data, sizeof(ans));
    herd_reply_free(&r);
    assert_int_equal(ans.val, 8);
    assert_pid_eq(ans.by, q);
    assert_non_null(ev_nth(EV_RC, k, 0));
    assert_int_equal(ev_nth(EV_RC, k, 0)->status, 1);
    wait_exit_handoff(a, p, 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* For a herd_node_call from code outside processes on node `cn` to p on
 * another node: 1 ms into the call, process s on cn casts to coordinator k
 * (on p's node) the order to forward p's mailbox to q and stop p. The cast
 * follows the call in the same ordered stream, so p's mailbox holds the call
 * when k acts. */
static void relay_forward_after_call(herd_node_t *cn, herd_pid_t s, herd_pid_t k, herd_pid_t p,
                                     herd_pid_t q)
{
    cmd_t relay = {.magic = CMD_MAGIC, .op = OP_RELAY, .a = p, .b = q, .stop = 1,
                   .relay_to = k};
    uint64_t timer;
    assert_int_equal(herd_send_after(cn, s, 1, &relay, sizeof(relay), &timer), 0);
}

/* herd_node_call from code outside processes on q's node to p on the other
 * node, p moved to q (the caller's own node). */
static void test_forward_to_other_node_node_call_from_new_node(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), k = spawn_rec(a), s = spawn_rec(b);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    relay_forward_after_call(b, s, k, p, q);
    uint32_t v = 9;
    herd_reply_t r;
    assert_int_equal(herd_node_call(b, p, &v, sizeof(v), WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, sizeof(answer_t));
    answer_t ans;
    memcpy(&ans, r.data, sizeof(ans));
    herd_reply_free(&r);
    assert_int_equal(ans.val, 9);
    assert_pid_eq(ans.by, q);
    assert_non_null(ev_nth(EV_RC, k, 0));
    assert_int_equal(ev_nth(EV_RC, k, 0)->status, 1); /* the call was in p's mailbox */
    wait_exit_handoff(a, p, 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* A caller on another node (b) calls p on a; p's mailbox moves to q on a (p's
 * own node); q answers; the caller must get q's answer.
 * Failed when written: herd_forward_mailbox releases the caller's inbound
 * record (remote_release_inbound) and the local delivery to q makes none, so
 * q's herd_reply is HERD_ENOPROC and the caller times out. */
static void test_forward_local_copy_remote_caller_process(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(a), cb = spawn_rec(b);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    uint64_t r1 = call_from(b, cb, p, 1, SHORT_CALL_MS, 0);
    wait_streams_idle(a, b);
    assert_int_equal(herd_forward_mailbox(a, p, q), 1);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);
    WAIT_UNTIL(msg_count(q) == 1);
    const ev_t *m[2];
    assert_int_equal(msgs_of(q, m, 2), 1);
    assert_msg(m[0], EV_CALL, 1, cb);
    assert_int_equal(m[0]->ref, r1);
    WAIT_UNTIL(reply_of(cb, r1) != NULL);
    if (m[0]->status != 0) /* q's herd_reply to the remote caller */
        fail_msg("q's herd_reply to the remote caller returned %s; the caller got %s",
                 herd_strerror(m[0]->status), herd_strerror(reply_of(cb, r1)->status));
    assert_answered(cb, r1, 1, q);
    ts_node_free(b);
    ts_node_free(a);
}

/* The same with herd_node_call from code outside processes on b (failed when
 * written, same cause). */
static void test_forward_local_copy_remote_node_call(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(a), k = spawn_rec(a), s = spawn_rec(b);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    relay_forward_after_call(b, s, k, p, q);
    uint32_t v = 11;
    herd_reply_t r;
    int rc = herd_node_call(b, p, &v, sizeof(v), SHORT_CALL_MS, &r);
    int status = r.status;
    size_t len = r.len;
    answer_t ans;
    memset(&ans, 0, sizeof(ans));
    if (len == sizeof(ans))
        memcpy(&ans, r.data, sizeof(ans));
    herd_reply_free(&r);
    assert_non_null(ev_nth(EV_RC, k, 0));
    assert_int_equal(ev_nth(EV_RC, k, 0)->status, 1); /* the call was in p's mailbox */
    if (rc != 0 || status != 0)
        fail_msg("herd_node_call: %s, status %s; expected q's answer", herd_strerror(rc),
                 herd_strerror(status));
    assert_int_equal(len, sizeof(answer_t));
    assert_int_equal(ans.val, 11);
    assert_pid_eq(ans.by, q);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- the new copy exits without answering -------------------------------------------- */

/* A call moved to the new copy is the new copy's: when it exits without
 * answering, the caller gets HERD_ENOPROC ("if the callee exits first"), not
 * a timeout, as when the new copy is on another node (next test). One node
 * (virtual clock: no timeout can fire meanwhile).
 * Failed when written: a call forwarded to a local process is not watched by
 * it (only the old copy's watch is dropped), so the caller waits for its
 * timeout. */
static void test_forward_local_new_copy_exit_gives_caller_enoproc(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n), c = spawn_rec(n);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_TEST), 0);
    uint64_t ref = call_from(n, c, p, HOLD | 1, 60000, 1);
    assert_int_equal(herd_forward_mailbox(n, p, q), 1);
    assert_int_equal(herd_stop(n, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(n, p, 1);
    assert_int_equal(g_nheld, 1); /* q holds the call */
    assert_null(reply_of(c, ref));
    assert_int_equal(herd_stop(n, q, HERD_REASON_SHUTDOWN), 0);
    ts_drain(n);
    assert_int_equal(herd_is_alive(n, q), 0);
    const ev_t *r = reply_of(c, ref);
    if (r == NULL)
        fail_msg("the new copy exited holding the call: no HERD_ENOPROC for the caller "
                 "(it waits for its timeout)");
    assert_int_equal(r->status, HERD_ENOPROC);
    ts_node_free(n);
}

/* The same when the new copy is on the other node (the caller and the old
 * copy on a, the new copy on b). */
static void test_forward_remote_new_copy_exit_gives_caller_enoproc(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), ca = spawn_rec(a);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    uint64_t ref = call_from(a, ca, p, HOLD | 1, WAIT_MS, 0);
    assert_int_equal(herd_forward_mailbox(a, p, q), 1);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);
    WAIT_UNTIL(g_nheld == 1);
    assert_null(reply_of(ca, ref));
    assert_int_equal(herd_stop(b, q, HERD_REASON_SHUTDOWN), 0);
    WAIT_UNTIL(reply_of(ca, ref) != NULL);
    assert_int_equal(reply_of(ca, ref)->status, HERD_ENOPROC);
    ts_node_free(b);
    ts_node_free(a);
}

/* A call redirected to the new copy (the old pid exited) is the new copy's
 * too: its exit without answering gives the caller HERD_ENOPROC.
 * Failed when written: proc_track_call looks up the callee by the old pid
 * (dead), so nothing watches the call. */
static void test_redirect_local_new_copy_exit_gives_caller_enoproc(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n), c = spawn_rec(n);
    assert_int_equal(herd_redirect(n, p, q, 60000), 0);
    assert_int_equal(herd_stop(n, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(n, p, 1);
    uint64_t ref = call_from(n, c, p, HOLD | 1, 60000, 1);
    assert_int_equal(g_nheld, 1);
    assert_int_equal(herd_stop(n, q, HERD_REASON_SHUTDOWN), 0);
    ts_drain(n);
    const ev_t *r = reply_of(c, ref);
    if (r == NULL)
        fail_msg("the new copy exited holding the redirected call: no HERD_ENOPROC for "
                 "the caller (it waits for its timeout)");
    assert_int_equal(r->status, HERD_ENOPROC);
    ts_node_free(n);
}

/* ---- redirects ------------------------------------------------------------------------- */

/* One node on the virtual clock: while p lives its messages are its own; once
 * it has exited, casts, sends and calls (from a process and from outside) go
 * to q until the period ends (exactly), then HERD_ENOPROC again. */
static void test_redirect_local_then_expires(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n), q = spawn_rec(n), c = spawn_rec(n), out = outside(n);

    /* bad arguments */
    herd_pid_t remote = {p.node + 1, p.incarnation, p.serial};
    assert_int_equal(herd_redirect(n, remote, q, 100), HERD_EINVAL);
    assert_int_equal(herd_redirect(n, p, HERD_PID_NONE, 100), HERD_EINVAL);
    assert_int_equal(herd_redirect(n, p, p, 100), HERD_EINVAL);
    assert_int_equal(herd_redirect(n, outside(n), q, 100), HERD_EINVAL);

    assert_int_equal(herd_redirect(n, p, q, 1000), 0);
    cast_val(n, p, 1); /* p is alive: its own */
    ts_drain(n);
    assert_int_equal(msg_count(p), 1);
    assert_int_equal(msg_count(q), 0);

    assert_int_equal(herd_stop(n, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(n, p, 1);
    cast_val(n, p, 2);
    send_val(n, p, 3);
    uint64_t r4 = call_from(n, c, p, 4, 60000, 1);
    uint32_t v = 5;
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, p, &v, sizeof(v), 5000, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, sizeof(answer_t));
    answer_t ans;
    memcpy(&ans, r.data, sizeof(ans));
    herd_reply_free(&r);
    assert_int_equal(ans.val, 5);
    assert_pid_eq(ans.by, q);
    ts_drain(n);
    const ev_t *m[8];
    assert_int_equal(msgs_of(q, m, 8), 4);
    assert_msg(m[0], EV_CAST, 2, out);
    assert_msg(m[1], EV_INFO, 3, out);
    assert_msg(m[2], EV_CALL, 4, c);
    assert_msg(m[3], EV_CALL, 5, out);
    assert_answered(c, r4, 4, q);

    /* the period: 1000 ms from the herd_redirect */
    ts_vnow += 999;
    cast_val(n, p, 6);
    ts_drain(n);
    assert_int_equal(msg_count(q), 5);
    ts_vnow += 1;
    v = 7;
    assert_int_equal(herd_node_cast(n, p, &v, sizeof(v)), HERD_ENOPROC);
    assert_int_equal(herd_node_send(n, p, &v, sizeof(v)), HERD_ENOPROC);
    ev_t rc = run_cmd(n, c, (cmd_t){.op = OP_CALL, .a = p, .val = 7, .timeout_ms = 1000}, 1);
    assert_int_equal(rc.status, HERD_ENOPROC);
    assert_int_equal(herd_node_call(n, p, &v, sizeof(v), 1000, &r), HERD_ENOPROC);
    herd_reply_free(&r);
    ts_drain(n);
    assert_int_equal(msg_count(q), 5);
    ts_node_free(n);
}

/* p on a moved to q on b: casts and calls to p, from processes and code
 * outside processes on both nodes, reach q; after the period a send on a is
 * HERD_ENOPROC, and a call from b gets HERD_ENOPROC back. */
static void test_redirect_across_nodes_then_expires(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), ca = spawn_rec(a), cb = spawn_rec(b);
    const uint64_t period = 1500;
    assert_int_equal(herd_redirect(a, p, q, period), 0);
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);

    cast_val(a, p, 1);
    uint64_t r2 = call_from(a, ca, p, 2, WAIT_MS, 0);
    cast_val(b, p, 3); /* from q's node to the old pid: via a */
    uint64_t r4 = call_from(b, cb, p, 4, WAIT_MS, 0);
    WAIT_UNTIL(msg_count(q) == 4);
    WAIT_UNTIL(reply_of(ca, r2) != NULL && reply_of(cb, r4) != NULL);
    assert_answered(ca, r2, 2, q);
    assert_answered(cb, r4, 4, q);
    uint32_t v = 5;
    herd_reply_t r;
    assert_int_equal(herd_node_call(a, p, &v, sizeof(v), WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, sizeof(answer_t));
    herd_reply_free(&r);
    v = 6;
    assert_int_equal(herd_node_call(b, p, &v, sizeof(v), WAIT_MS, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, sizeof(answer_t));
    herd_reply_free(&r);
    assert_int_equal(msg_count(q), 6);
    if (ts_mono_ms() - t0 >= period)
        fail_msg("too slow to check the redirect within its period");

    /* after the period */
    WAIT_UNTIL(ts_mono_ms() - t0 > period + 50);
    v = 7;
    assert_int_equal(herd_node_cast(a, p, &v, sizeof(v)), HERD_ENOPROC);
    uint64_t r8 = call_from(b, cb, p, 8, WAIT_MS, 0);
    WAIT_UNTIL(reply_of(cb, r8) != NULL);
    assert_int_equal(reply_of(cb, r8)->status, HERD_ENOPROC);
    ts_cluster_run_ms(50);
    assert_int_equal(msg_count(q), 6);
    ts_node_free(b);
    ts_node_free(a);
}

/* A process on node b calls the old pid p on node a (exited, redirected to q
 * on b: the caller's own node) and gets q's answer. */
static void test_redirect_remote_call_to_copy_on_callers_node(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), cb = spawn_rec(b);
    assert_int_equal(herd_redirect(a, p, q, 60000), 0);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);
    uint64_t r1 = call_from(b, cb, p, 1, SHORT_CALL_MS, 0);
    WAIT_UNTIL(reply_of(cb, r1) != NULL);
    assert_answered(cb, r1, 1, q);
    ts_node_free(b);
    ts_node_free(a);
}

/* A process on node b calls the old pid p on node a (exited, redirected to q
 * on a: the old pid's own node) and gets q's answer; the same from code
 * outside processes on b (next test).
 * Failed when written: remote_on_call sees the call delivered (to q, through
 * the redirect) but proc_lookup(old pid) NULL, and returns without recording
 * the inbound call for q, so q's herd_reply is HERD_ENOPROC and the caller
 * times out. */
static void test_redirect_remote_call_to_copy_on_old_node(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(a), cb = spawn_rec(b);
    assert_int_equal(herd_redirect(a, p, q, 60000), 0);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);
    uint64_t r1 = call_from(b, cb, p, 1, SHORT_CALL_MS, 0);
    WAIT_UNTIL(reply_of(cb, r1) != NULL);
    WAIT_UNTIL(msg_count(q) == 1);
    const ev_t *m[2];
    assert_int_equal(msgs_of(q, m, 2), 1);
    assert_msg(m[0], EV_CALL, 1, cb);
    if (m[0]->status != 0)
        fail_msg("q's herd_reply to the remote caller returned %s; the caller got %s",
                 herd_strerror(m[0]->status), herd_strerror(reply_of(cb, r1)->status));
    assert_answered(cb, r1, 1, q);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_redirect_remote_node_call_to_copy_on_old_node(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), q = spawn_rec(a);
    assert_int_equal(herd_redirect(a, p, q, 60000), 0);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);
    uint32_t v = 2;
    herd_reply_t r;
    int rc = herd_node_call(b, p, &v, sizeof(v), SHORT_CALL_MS, &r);
    int status = r.status;
    size_t len = r.len;
    herd_reply_free(&r);
    if (rc != 0 || status != 0)
        fail_msg("herd_node_call: %s, status %s; expected q's answer", herd_strerror(rc),
                 herd_strerror(status));
    assert_int_equal(len, sizeof(answer_t));
    assert_int_equal(msg_count(q), 1);
    ts_node_free(b);
    ts_node_free(a);
}

/* A move and a conflict merge freeze on their own: the move's thaw leaves
 * the conflict's freeze in place (its state is on its way to the winner),
 * and only the last holder's thaw lets the process run. A freeze must name
 * exactly one holder. */
static void test_freeze_holders_thaw_only_their_own(void **state)
{
    (void)state;
    herd_node_t *n = vnode("n");
    herd_pid_t p = spawn_rec(n);

    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_MOVE), 0);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_CONFLICT), 0);
    assert_int_equal(herd_is_frozen(n, p), HERD_FREEZE_MOVE | HERD_FREEZE_CONFLICT);
    cast_val(n, p, 1);
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_MOVE), 0);
    ts_drain(n);
    assert_int_equal(herd_is_frozen(n, p), HERD_FREEZE_CONFLICT);
    assert_int_equal(msg_count(p), 0);
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_MOVE), 0); /* not held: a no-op */
    assert_int_equal(herd_is_frozen(n, p), HERD_FREEZE_CONFLICT);
    assert_int_equal(herd_thaw(n, p, HERD_FREEZE_CONFLICT), 0);
    ts_drain(n);
    assert_int_equal(herd_is_frozen(n, p), 0);
    assert_int_equal(msg_count(p), 1);

    assert_int_equal(herd_freeze(n, p, 0), HERD_EINVAL);
    assert_int_equal(herd_freeze(n, p, HERD_FREEZE_MOVE | HERD_FREEZE_CONFLICT), HERD_EINVAL);
    assert_int_equal(herd_freeze(n, p, (herd_freeze_holder_t)64), HERD_EINVAL);
    assert_int_equal(herd_thaw(n, p, 0), HERD_EINVAL);
    assert_int_equal(herd_is_frozen(n, p), 0);
    ts_node_free(n);
}

/* ---- forwarding that fails ---------------------------------------------------------- */

static herd_node_stats_t node_stats(const herd_node_t *n)
{
    herd_node_stats_t s;
    herd_node_stats(n, &s);
    return s;
}

/* A pid on a node that is no member: nothing can reach it (HERD_ENOTCONN). */
static herd_pid_t ghost_pid(void)
{
    return (herd_pid_t){herd_node_id_of("ghost"), 7, 3};
}

/* p's mailbox forwarded to a pid nothing can reach: no message vanishes
 * silently. Its callers, here and on another node, get HERD_ENOTCONN as
 * their reply at once (not their timeout); the cast is dropped, counted and
 * no error of anybody's. */
static void test_forward_unreachable_answers_callers_counts_casts(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), ca = spawn_rec(a), cb = spawn_rec(b);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    cast_val(a, p, 1);
    uint64_t ra = call_from(a, ca, p, 2, 60000, 0);
    uint64_t rb = call_from(b, cb, p, 3, 60000, 0);
    wait_streams_idle(a, b); /* cb's call is in p's mailbox */
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(herd_forward_mailbox(a, p, ghost_pid()), 0);
    TS_WAIT_UNTIL(reply_of(ca, ra) != NULL && reply_of(cb, rb) != NULL, 3000);
    assert_true(ts_mono_ms() - t0 < 3000);
    assert_int_equal(reply_of(ca, ra)->status, HERD_ENOTCONN);
    assert_int_equal(reply_of(cb, rb)->status, HERD_ENOTCONN);
    herd_node_stats_t s = node_stats(a);
    assert_int_equal(s.forward_dropped, 1);
    assert_int_equal(s.forward_failed_calls, 2);
    assert_int_equal(s.late_replies, 0);
    assert_int_equal(node_stats(b).late_replies, 0);
    ts_cluster_run_ms(50); /* one answer each: nothing more comes */
    assert_int_equal(ev_count(EV_REPLY, ca), 1);
    assert_int_equal(ev_count(EV_REPLY, cb), 1);
    assert_true(herd_is_alive(a, ca) && herd_is_alive(b, cb));
    ts_node_free(b);
    ts_node_free(a);
}

/* Late messages redirected to a pid nothing can reach: the senders here get
 * the error; a cast from another node is dropped and counted; a call from
 * another node is answered HERD_ENOTCONN. */
static void test_redirect_unreachable_reports_and_counts(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    herd_pid_t p = spawn_rec(a), ca = spawn_rec(a), cb = spawn_rec(b);
    assert_int_equal(herd_redirect(a, p, ghost_pid(), 60000), 0);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_exit_handoff(a, p, 0);

    uint32_t v = 1;
    assert_int_equal(herd_node_cast(a, p, &v, sizeof(v)), HERD_ENOTCONN);
    cmd_t c = {.op = OP_CALL, .a = p, .val = 2, .timeout_ms = 60000};
    assert_int_equal(run_cmd(a, ca, c, 0).status, HERD_ENOTCONN);
    assert_int_equal(node_stats(a).forward_dropped, 1);
    assert_int_equal(node_stats(a).forward_failed_calls, 1);

    cast_val(b, p, 3);
    uint64_t rb = call_from(b, cb, p, 4, 60000, 0);
    TS_WAIT_UNTIL(reply_of(cb, rb) != NULL, 3000);
    assert_int_equal(reply_of(cb, rb)->status, HERD_ENOTCONN);
    WAIT_UNTIL(node_stats(a).forward_dropped == 2);
    assert_int_equal(node_stats(a).forward_failed_calls, 2);
    herd_cluster_stats_t cs;
    assert_int_equal(herd_cluster_stats(a, &cs), 0);
    assert_int_equal(cs.msgs_dropped, 1); /* b's cast, dropped where it arrived */
    ts_node_free(b);
    ts_node_free(a);
}

/* A moved copy answers a caller whose node it cannot reach (here: b and x
 * cut off from each other, so each has the other down): the reply goes back
 * through the node that forwarded the call (a), which passes it on, and the
 * caller gets it instead of a timeout for a call that was applied. */
static void test_forward_reply_relayed_through_old_node(void **state)
{
    (void)state;
    static const ts_timing_t quick = {50, 150, 300, 0};
    herd_node_t *a = rnode("a"), *b = rnode("b"), *x = rnode("x");
    ts_cluster_join(a, &quick, NULL, 0);
    ts_cluster_join(b, &quick, &a, 1);
    ts_cluster_join(x, &quick, &a, 1);
    herd_node_t *all[3] = {a, b, x};
    WAIT_UNTIL(ts_cluster_all_up(all, 3));
    assert_int_equal(herd_cluster_block(b, herd_node_id_of("x"), 1), 0);
    assert_int_equal(herd_cluster_block(x, herd_node_id_of("b"), 1), 0);
    WAIT_UNTIL(ts_cluster_member_state(b, "x") == HERD_MEMBER_DOWN &&
               ts_cluster_member_state(x, "b") == HERD_MEMBER_DOWN);

    herd_pid_t p = spawn_rec(a), q = spawn_rec(b), cx = spawn_rec(x);
    assert_int_equal(herd_freeze(a, p, HERD_FREEZE_TEST), 0);
    assert_int_equal(herd_freeze(b, q, HERD_FREEZE_TEST), 0);
    uint64_t ref = call_from(x, cx, p, 7, WAIT_MS, 0);
    WAIT_UNTIL(herd_forward_mailbox(a, p, q) == 1);
    assert_int_equal(herd_stop(a, p, HERD_REASON_HANDOFF), 0);
    wait_streams_idle(a, b);
    assert_int_equal(herd_thaw(b, q, HERD_FREEZE_TEST), 0);
    WAIT_UNTIL(reply_of(cx, ref) != NULL);
    assert_answered(cx, ref, 7, q);
    herd_cluster_stats_t cs;
    assert_int_equal(herd_cluster_stats(b, &cs), 0);
    assert_int_equal(cs.replies_relayed, 1);
    ts_node_free(x);
    ts_node_free(b);
    ts_node_free(a);
}

int main(void)
{
    ts_cluster_init("test_freeze", SECRET);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_freeze_holds_messages_until_thaw_in_order),
        T(test_freeze_mailbox_limit_still_applies),
        T(test_freeze_holders_thaw_only_their_own),
        T(test_freeze_errors_enoproc_and_own_handler),
        T(test_freeze_ebusy_while_own_call_outstanding),
        T(test_forward_local_in_order_calls_answered_by_new),
        T(test_forward_local_new_copy_answers_after_old_exits),
        T(test_forward_local_node_call_answered_by_new),
        T(test_forward_queues_ahead_of_direct_while_frozen),
        T(test_forward_to_other_node_callers_on_both_nodes),
        T(test_forward_to_other_node_node_call_from_old_node),
        T(test_forward_to_other_node_node_call_from_new_node),
        T(test_forward_local_copy_remote_caller_process),
        T(test_forward_local_copy_remote_node_call),
        T(test_forward_local_new_copy_exit_gives_caller_enoproc),
        T(test_forward_remote_new_copy_exit_gives_caller_enoproc),
        T(test_redirect_local_new_copy_exit_gives_caller_enoproc),
        T(test_redirect_local_then_expires),
        T(test_redirect_across_nodes_then_expires),
        T(test_redirect_remote_call_to_copy_on_callers_node),
        T(test_redirect_remote_call_to_copy_on_old_node),
        T(test_redirect_remote_node_call_to_copy_on_old_node),
        T(test_forward_unreachable_answers_callers_counts_casts),
        T(test_forward_reply_relayed_through_old_node),
        T(test_redirect_unreachable_reports_and_counts),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
