/*
 * test_monitor.c - unit tests for monitors, links and exit signals
 * (runtime/herd_runtime.h: herd_monitor, herd_demonitor, herd_link,
 * herd_unlink, herd_set_trap_exit, herd_exit and the spawn options `link` and
 * `trap_exit`).
 *
 * Every test builds its own node and a few "probe" processes. A probe does
 * what the test casts to it (crash, exit, monitor, link, trap exits, ...) and
 * writes down what happens to it: its init and terminate calls with the exit
 * reason, the result of its last command, and every message its handle_info
 * sees. That record (probe_t) lives in the test, so it outlives the process;
 * the process's own state is a small heap block freed by terminate, so a
 * missing terminate shows up as a leak under ASan.
 *
 * Everything is driven from outside processes with herd_node_cast and a
 * bounded herd_node_run_for; no test depends on wall-clock speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_runtime.h"
#include "support.h"

#define RUN_MS 100 /* one bounded turn of the loop; returns early when idle */
#define MAX_EV 16

/* ---- the probe process ----------------------------------------------------- */

typedef struct ev {
    herd_msg_kind_t kind;
    herd_pid_t from;
    uint64_t ref;
    int status;
} ev_t;

typedef struct probe {
    int inits, terminates, term_reason;
    herd_pid_t self;  /* as init saw it */
    int trap_in_init; /* call herd_set_trap_exit(self, 1) from init */
    int cmds;         /* commands handled */
    int rc;           /* the last command's result */
    uint64_t ref;     /* the last OP_MONITOR's ref */
    int nev;          /* handle_info calls (only the first MAX_EV are kept) */
    ev_t ev[MAX_EV];
} probe_t;

typedef struct pstate {
    probe_t *p;
} pstate_t;

enum {
    OP_CRASH = 1, /* return `code` from handle_cast */
    OP_EXIT_SELF, /* herd_exit(self, code), then return 0 */
    OP_MONITOR,   /* herd_monitor(pid) */
    OP_DEMONITOR, /* herd_demonitor(ref) */
    OP_LINK,      /* herd_link(pid) */
    OP_UNLINK,    /* herd_unlink(pid) */
    OP_TRAP,      /* herd_set_trap_exit(code) */
    OP_EXIT,      /* herd_exit(pid, code): an exit signal sent by a process */
};

typedef struct cmd {
    int op;
    int code;
    herd_pid_t pid;
    uint64_t ref;
} cmd_t;

static int probe_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    probe_t *p;
    if (len != sizeof(p))
        return HERD_EINVAL;
    memcpy(&p, arg, sizeof(p));
    p->inits++;
    p->self = herd_self(self);
    if (p->trap_in_init)
        herd_set_trap_exit(self, 1);
    pstate_t *s = malloc(sizeof(*s));
    if (!s)
        return HERD_ENOMEM;
    s->p = p;
    *state = s;
    return 0;
}

static int probe_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    probe_t *p = ((pstate_t *)state)->p;
    cmd_t c;
    if (msg->len != sizeof(c))
        return HERD_EINVAL;
    memcpy(&c, msg->data, sizeof(c));
    p->cmds++;
    switch (c.op) {
    case OP_CRASH:
        return c.code;
    case OP_EXIT_SELF:
        p->rc = herd_exit(herd_proc_node(self), herd_self(self), c.code);
        return 0;
    case OP_MONITOR:
        p->ref = 0;
        p->rc = herd_monitor(self, c.pid, &p->ref);
        return 0;
    case OP_DEMONITOR:
        p->rc = herd_demonitor(self, c.ref);
        return 0;
    case OP_LINK:
        p->rc = herd_link(self, c.pid);
        return 0;
    case OP_UNLINK:
        p->rc = herd_unlink(self, c.pid);
        return 0;
    case OP_TRAP:
        herd_set_trap_exit(self, c.code);
        p->rc = 0;
        return 0;
    case OP_EXIT:
        p->rc = herd_exit(herd_proc_node(self), c.pid, c.code);
        return 0;
    default:
        return HERD_EINVAL;
    }
}

static int probe_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    probe_t *p = ((pstate_t *)state)->p;
    if (ts_detached())
        return 0;
    if (p->nev < MAX_EV)
        p->ev[p->nev] = (ev_t){msg->kind, msg->from, msg->ref, msg->status};
    p->nev++;
    return 0;
}

static void probe_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    pstate_t *s = state;
    if (ts_detached()) {
        free(s);
        return;
    }
    s->p->terminates++;
    s->p->term_reason = reason;
    free(s);
}

static const herd_behaviour_t probe_beh = {
    .name = "probe",
    .init = probe_init,
    .handle_cast = probe_cast,
    .handle_info = probe_info,
    .terminate = probe_terminate,
};

/* ---- helpers ------------------------------------------------------------------ */

/* One node per test (support.h: ts_teardown frees it if the test ends early). */
static herd_node_t *node_make(const char *name)
{
    assert_int_equal(ts_live_nodes(), 0);
    return ts_node(name, NULL, 42);
}

static herd_pid_t spawn_full(herd_node_t *n, probe_t *p, int trap_exit, herd_pid_t link,
                             int *err)
{
    herd_spawn_opts_t o;
    memset(&o, 0, sizeof(o));
    o.behaviour = &probe_beh;
    o.arg = &p;
    o.arg_len = sizeof(p);
    o.link = link;
    o.trap_exit = trap_exit;
    herd_pid_t pid = HERD_PID_NONE;
    *err = herd_spawn(n, &o, &pid);
    return pid;
}

static herd_pid_t spawn_probe(herd_node_t *n, probe_t *p, int trap_exit, herd_pid_t link)
{
    int err;
    int inits = p->inits;
    herd_pid_t pid = spawn_full(n, p, trap_exit, link, &err);
    assert_int_equal(err, 0);
    assert_false(herd_pid_is_none(pid));
    assert_int_equal(p->inits, inits + 1);
    ts_assert_pid_eq(p->self, pid);
    assert_int_equal(ts_alive(n, pid), 1);
    return pid;
}

static herd_pid_t spawn_plain(herd_node_t *n, probe_t *p)
{
    return spawn_probe(n, p, 0, HERD_PID_NONE);
}

/* Cast a command to `to`, then run the loop until things settle. */
static void act(herd_node_t *n, herd_pid_t to, int op, int code, herd_pid_t pid,
                uint64_t ref)
{
    cmd_t c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    c.code = code;
    c.pid = pid;
    c.ref = ref;
    assert_int_equal(herd_node_cast(n, to, &c, sizeof(c)), 0);
    ts_run_for(n, RUN_MS);
}

static void crash(herd_node_t *n, herd_pid_t pid, int code)
{
    act(n, pid, OP_CRASH, code, HERD_PID_NONE, 0);
}

/* `w` monitors `target`; returns the monitor's ref. */
static uint64_t monitor(herd_node_t *n, herd_pid_t w, probe_t *wp, herd_pid_t target)
{
    int cmds = wp->cmds;
    act(n, w, OP_MONITOR, 0, target, 0);
    assert_int_equal(wp->cmds, cmds + 1);
    assert_int_equal(wp->rc, 0);
    assert_true(wp->ref != 0);
    return wp->ref;
}

static void link_to(herd_node_t *n, herd_pid_t a, probe_t *ap, herd_pid_t b)
{
    int cmds = ap->cmds;
    act(n, a, OP_LINK, 0, b, 0);
    assert_int_equal(ap->cmds, cmds + 1);
    assert_int_equal(ap->rc, 0);
}

static void assert_ev(const probe_t *p, int i, herd_msg_kind_t kind, uint64_t ref,
                      herd_pid_t from, int status)
{
    assert_true(i < p->nev && i < MAX_EV);
    assert_int_equal(p->ev[i].kind, kind);
    assert_int_equal(p->ev[i].ref, ref);
    ts_assert_pid_eq(p->ev[i].from, from);
    assert_int_equal(p->ev[i].status, status);
}

static void assert_exited(herd_node_t *n, herd_pid_t pid, const probe_t *p, int reason)
{
    assert_int_equal(ts_alive(n, pid), 0);
    assert_int_equal(p->terminates, 1);
    assert_int_equal(p->term_reason, reason);
}

static void assert_untouched(herd_node_t *n, herd_pid_t pid, const probe_t *p)
{
    assert_int_equal(ts_alive(n, pid), 1);
    assert_int_equal(p->terminates, 0);
    assert_int_equal(p->nev, 0);
}

/* A pid of this node that never existed: serials only grow. */
static herd_pid_t ghost_of(herd_pid_t pid)
{
    pid.serial += 1000000;
    return pid;
}

/* ---- monitors ------------------------------------------------------------------ */

static void test_monitor_down_on_normal_exit(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t1");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);

    uint64_t ref = monitor(n, wp, &w, tp);
    assert_int_equal(w.nev, 0); /* no DOWN while the target lives */

    act(n, tp, OP_EXIT_SELF, HERD_REASON_NORMAL, HERD_PID_NONE, 0);
    assert_int_equal(t.rc, 0);
    assert_exited(n, tp, &t, HERD_REASON_NORMAL);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, tp, HERD_REASON_NORMAL);
    assert_int_equal(ts_alive(n, wp), 1);
    assert_int_equal(w.terminates, 0);
    assert_int_equal(herd_node_process_count(n), 1);

    ts_node_free(n);
    assert_int_equal(w.terminates, 1);
    assert_int_equal(w.term_reason, HERD_REASON_SHUTDOWN);
}

static void test_monitor_down_on_crash(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t2");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);

    uint64_t ref = monitor(n, wp, &w, tp);
    crash(n, tp, HERD_ETIMEDOUT);
    assert_exited(n, tp, &t, HERD_ETIMEDOUT);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, tp, HERD_ETIMEDOUT);
    /* A monitor is one-way: the watcher lives on. */
    assert_int_equal(ts_alive(n, wp), 1);
    assert_int_equal(w.terminates, 0);
    ts_node_free(n);
}

static void test_monitor_down_on_kill(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t3");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);

    uint64_t ref = monitor(n, wp, &w, tp);
    assert_int_equal(herd_exit(n, tp, HERD_REASON_KILLED), 0);
    ts_run_for(n, RUN_MS);
    assert_exited(n, tp, &t, HERD_REASON_KILLED);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, tp, HERD_REASON_KILLED);
    ts_node_free(n);
}

static void test_monitor_dead_pid_gets_noproc(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t4");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);
    crash(n, tp, HERD_EIO);
    assert_exited(n, tp, &t, HERD_EIO);

    /* A pid that has exited. */
    uint64_t ref = monitor(n, wp, &w, tp);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, tp, HERD_REASON_NOPROC);

    /* A pid that never existed. */
    herd_pid_t ghost = ghost_of(tp);
    uint64_t ref2 = monitor(n, wp, &w, ghost);
    assert_true(ref2 != ref);
    assert_int_equal(w.nev, 2);
    assert_ev(&w, 1, HERD_MSG_DOWN, ref2, ghost, HERD_REASON_NOPROC);

    /* The monitor has fired: nothing left to remove. */
    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, ref);
    assert_int_equal(w.rc, HERD_ENOENT);
    assert_int_equal(ts_alive(n, wp), 1);
    assert_int_equal(w.terminates, 0);
    ts_node_free(n);
}

/* A node in no cluster reaches no other node (node_net_local, node.h): a
 * monitor of another node's pid fires at once with noconnection, and
 * sends and calls to it fail with HERD_ENOTCONN, a reply to a caller
 * there is a late reply. */
static void test_monitor_other_node_without_cluster(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t4b");
    probe_t w = {0};
    herd_pid_t wp = spawn_plain(n, &w);
    herd_pid_t far = {herd_node_id_of("elsewhere"), 7, 1};

    uint64_t ref = monitor(n, wp, &w, far);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, far, HERD_REASON_NOCONNECTION);
    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, ref); /* it has fired */
    assert_int_equal(w.rc, HERD_ENOENT);

    int c = 0;
    assert_int_equal(herd_node_send(n, far, &c, sizeof(c)), HERD_ENOTCONN);
    assert_int_equal(herd_node_cast(n, far, &c, sizeof(c)), HERD_ENOTCONN);
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, far, &c, sizeof(c), 1000, &r), HERD_ENOTCONN);
    /* a reply to a caller there finds no call waiting: dropped, counted */
    assert_int_equal(herd_reply(n, (herd_from_t){far, 5}, 0, &c, sizeof(c)), 0);
    herd_node_stats_t st;
    herd_node_stats(n, &st);
    assert_int_equal(st.late_replies, 1);
    assert_int_equal(ts_alive(n, wp), 1);
    ts_node_free(n);
}

static void test_monitor_demonitor_before_exit(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t5");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);

    uint64_t ref = monitor(n, wp, &w, tp);
    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, ref);
    assert_int_equal(w.rc, 0);
    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, ref);
    assert_int_equal(w.rc, HERD_ENOENT);

    crash(n, tp, HERD_EIO);
    assert_exited(n, tp, &t, HERD_EIO);
    assert_int_equal(w.nev, 0); /* no DOWN after demonitor */
    assert_int_equal(ts_alive(n, wp), 1);

    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, ref);
    assert_int_equal(w.rc, HERD_ENOENT);
    ts_node_free(n);
}

static void test_monitor_demonitor_unknown_ref(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t6");
    probe_t w = {0};
    herd_pid_t wp = spawn_plain(n, &w);
    w.rc = 12345;
    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, 0xfeedfacecafeULL);
    assert_int_equal(w.rc, HERD_ENOENT);
    ts_node_free(n);
}

static void test_monitor_demonitor_after_down(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t7");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);

    uint64_t ref = monitor(n, wp, &w, tp);
    act(n, tp, OP_EXIT_SELF, HERD_REASON_NORMAL, HERD_PID_NONE, 0);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, tp, HERD_REASON_NORMAL);
    act(n, wp, OP_DEMONITOR, 0, HERD_PID_NONE, ref);
    assert_int_equal(w.rc, HERD_ENOENT);
    ts_node_free(n);
}

static void test_monitor_several_monitors_each_get_down(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t8");
    probe_t w1 = {0}, w2 = {0}, t = {0};
    herd_pid_t w1p = spawn_plain(n, &w1), w2p = spawn_plain(n, &w2);
    herd_pid_t tp = spawn_plain(n, &t);

    uint64_t r1 = monitor(n, w1p, &w1, tp);
    uint64_t r2 = monitor(n, w1p, &w1, tp);
    uint64_t r3 = monitor(n, w2p, &w2, tp);
    assert_true(r1 != r2);

    crash(n, tp, HERD_EIO);
    assert_exited(n, tp, &t, HERD_EIO);

    assert_int_equal(w1.nev, 2);
    int first = w1.ev[0].ref == r1 ? 0 : 1;
    assert_ev(&w1, first, HERD_MSG_DOWN, r1, tp, HERD_EIO);
    assert_ev(&w1, 1 - first, HERD_MSG_DOWN, r2, tp, HERD_EIO);
    assert_int_equal(w2.nev, 1);
    assert_ev(&w2, 0, HERD_MSG_DOWN, r3, tp, HERD_EIO);
    assert_int_equal(herd_node_process_count(n), 2);
    ts_node_free(n);
}

static void test_monitor_watcher_exits_first(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t9");
    probe_t w = {0}, t = {0};
    herd_pid_t wp = spawn_plain(n, &w), tp = spawn_plain(n, &t);

    monitor(n, wp, &w, tp);
    crash(n, wp, HERD_EIO);
    assert_exited(n, wp, &w, HERD_EIO);
    assert_untouched(n, tp, &t); /* the target is told nothing */

    /* The dead watcher's monitor must not be used when the target exits. */
    crash(n, tp, HERD_EIO);
    assert_exited(n, tp, &t, HERD_EIO);
    assert_int_equal(w.nev, 0);
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
}

static void test_monitor_reason_names(void **state)
{
    (void)state;
    assert_string_equal(herd_reason_name(HERD_REASON_NORMAL), "normal");
    assert_string_equal(herd_reason_name(HERD_REASON_SHUTDOWN), "shutdown");
    assert_string_equal(herd_reason_name(HERD_ETIMEDOUT), "crash:ETIMEDOUT");
    assert_string_equal(herd_reason_name(HERD_EIO), "crash:EIO");
    for (int r = HERD_REASON_NORMAL; r <= HERD_REASON_MAX_RESTARTS; r++) {
        assert_non_null(herd_reason_name(r));
        for (int q = HERD_REASON_NORMAL; q < r; q++)
            assert_string_not_equal(herd_reason_name(q), herd_reason_name(r));
    }
}

/* ---- links -------------------------------------------------------------------- */

static void test_monitor_link_crash_propagates(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t10");
    probe_t a = {0}, b = {0}, w = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);
    herd_pid_t wp = spawn_plain(n, &w);

    link_to(n, ap, &a, bp);
    uint64_t ref = monitor(n, wp, &w, ap);

    crash(n, bp, HERD_ETIMEDOUT);
    assert_exited(n, bp, &b, HERD_ETIMEDOUT);
    /* The linked process exits with the same reason; its terminate ran. */
    assert_exited(n, ap, &a, HERD_ETIMEDOUT);
    assert_int_equal(a.nev, 0);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, ap, HERD_ETIMEDOUT);
    assert_int_equal(herd_node_process_count(n), 1);
    ts_node_free(n);
}

static void test_monitor_link_is_both_ways(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t11");
    probe_t a = {0}, b = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);

    link_to(n, ap, &a, bp); /* a made the link, a crashes */
    crash(n, ap, HERD_EIO);
    assert_exited(n, ap, &a, HERD_EIO);
    assert_exited(n, bp, &b, HERD_EIO);
    ts_node_free(n);
}

static void test_monitor_link_normal_exit_spares(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t12");
    probe_t a = {0}, b = {0}, c = {0}, d = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);
    herd_pid_t cp = spawn_plain(n, &c), dp = spawn_plain(n, &d);

    link_to(n, ap, &a, bp);
    act(n, bp, OP_EXIT_SELF, HERD_REASON_NORMAL, HERD_PID_NONE, 0);
    assert_exited(n, bp, &b, HERD_REASON_NORMAL);
    assert_int_equal(ts_alive(n, ap), 1);
    assert_int_equal(a.terminates, 0);

    /* The same from the side that made the link. */
    link_to(n, cp, &c, dp);
    act(n, cp, OP_EXIT_SELF, HERD_REASON_NORMAL, HERD_PID_NONE, 0);
    assert_exited(n, cp, &c, HERD_REASON_NORMAL);
    assert_untouched(n, dp, &d);
    assert_int_equal(herd_node_process_count(n), 2);
    ts_node_free(n);
}

static void test_monitor_link_kill_propagates(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t13");
    probe_t a = {0}, b = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);

    link_to(n, ap, &a, bp);
    assert_int_equal(herd_exit(n, bp, HERD_REASON_KILLED), 0);
    ts_run_for(n, RUN_MS);
    assert_exited(n, bp, &b, HERD_REASON_KILLED);
    assert_exited(n, ap, &a, HERD_REASON_KILLED);
    ts_node_free(n);
}

static void test_monitor_link_shutdown_propagates(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t14");
    probe_t a = {0}, b = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);

    link_to(n, ap, &a, bp);
    assert_int_equal(herd_exit(n, bp, HERD_REASON_SHUTDOWN), 0);
    ts_run_for(n, RUN_MS);
    assert_exited(n, bp, &b, HERD_REASON_SHUTDOWN);
    assert_exited(n, ap, &a, HERD_REASON_SHUTDOWN);
    ts_node_free(n);
}

static void test_monitor_trap_exit_turns_crash_into_message(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t15");
    probe_t a = {0}, b = {0}, c = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);
    herd_pid_t cp = spawn_plain(n, &c);

    act(n, ap, OP_TRAP, 1, HERD_PID_NONE, 0);
    link_to(n, ap, &a, bp);
    crash(n, bp, HERD_ETIMEDOUT);
    assert_exited(n, bp, &b, HERD_ETIMEDOUT);
    assert_int_equal(ts_alive(n, ap), 1);
    assert_int_equal(a.terminates, 0);
    assert_int_equal(a.nev, 1);
    assert_int_equal(a.ev[0].kind, HERD_MSG_EXIT);
    ts_assert_pid_eq(a.ev[0].from, bp);
    assert_int_equal(a.ev[0].status, HERD_ETIMEDOUT);

    /* Trapping switched off again: the next linked crash kills it. */
    act(n, ap, OP_TRAP, 0, HERD_PID_NONE, 0);
    link_to(n, ap, &a, cp);
    crash(n, cp, HERD_EIO);
    assert_exited(n, cp, &c, HERD_EIO);
    assert_exited(n, ap, &a, HERD_EIO);
    assert_int_equal(a.nev, 1);
    ts_node_free(n);
}

static void test_monitor_trap_exit_spawn_option(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t16");
    probe_t a = {0}, b = {0}, c = {0}, d = {0};
    herd_pid_t bp = spawn_plain(n, &b);
    herd_pid_t ap = spawn_probe(n, &a, 1, bp); /* trap_exit and link at spawn */

    crash(n, bp, HERD_EIO);
    assert_exited(n, bp, &b, HERD_EIO);
    assert_int_equal(ts_alive(n, ap), 1);
    assert_int_equal(a.terminates, 0);
    assert_int_equal(a.nev, 1);
    assert_int_equal(a.ev[0].kind, HERD_MSG_EXIT);
    ts_assert_pid_eq(a.ev[0].from, bp);
    assert_int_equal(a.ev[0].status, HERD_EIO);

    /* herd_set_trap_exit from init does the same. */
    d.trap_in_init = 1;
    herd_pid_t dp = spawn_plain(n, &d);
    herd_pid_t cp = spawn_probe(n, &c, 0, dp);
    crash(n, cp, HERD_ETIMEDOUT);
    assert_exited(n, cp, &c, HERD_ETIMEDOUT);
    assert_int_equal(ts_alive(n, dp), 1);
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].kind, HERD_MSG_EXIT);
    ts_assert_pid_eq(d.ev[0].from, cp);
    assert_int_equal(d.ev[0].status, HERD_ETIMEDOUT);
    ts_node_free(n);
}

static void test_monitor_trap_exit_linked_killed(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t17");
    probe_t a = {0}, b = {0};
    herd_pid_t ap = spawn_probe(n, &a, 1, HERD_PID_NONE);
    herd_pid_t bp = spawn_plain(n, &b);

    link_to(n, ap, &a, bp);
    assert_int_equal(herd_exit(n, bp, HERD_REASON_KILLED), 0);
    ts_run_for(n, RUN_MS);
    assert_exited(n, bp, &b, HERD_REASON_KILLED);
    /* Only the kill signal itself cannot be trapped; the link's exit can. */
    assert_int_equal(ts_alive(n, ap), 1);
    assert_int_equal(a.nev, 1);
    assert_int_equal(a.ev[0].kind, HERD_MSG_EXIT);
    ts_assert_pid_eq(a.ev[0].from, bp);
    assert_int_equal(a.ev[0].status, HERD_REASON_KILLED);
    ts_node_free(n);
}

static void test_monitor_exit_killed_beats_trap(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t18");
    probe_t a = {0}, b = {0}, w = {0};
    herd_pid_t ap = spawn_probe(n, &a, 1, HERD_PID_NONE);
    herd_pid_t bp = spawn_probe(n, &b, 0, ap);
    herd_pid_t wp = spawn_plain(n, &w);
    uint64_t ref = monitor(n, wp, &w, ap);

    assert_int_equal(herd_exit(n, ap, HERD_REASON_KILLED), 0);
    ts_run_for(n, RUN_MS);
    assert_exited(n, ap, &a, HERD_REASON_KILLED);
    assert_int_equal(a.nev, 0);
    assert_int_equal(w.nev, 1);
    assert_ev(&w, 0, HERD_MSG_DOWN, ref, ap, HERD_REASON_KILLED);
    /* Its non-trapping link partner goes down with it. */
    assert_exited(n, bp, &b, HERD_REASON_KILLED);
    ts_node_free(n);
}

static void test_monitor_exit_signal_trapped_or_not(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t19");
    probe_t a = {0}, b = {0}, c = {0}, d = {0};
    herd_pid_t ap = spawn_probe(n, &a, 1, HERD_PID_NONE);
    herd_pid_t bp = spawn_plain(n, &b);
    herd_pid_t cp = spawn_plain(n, &c), dp = spawn_plain(n, &d);

    /* A trapping process gets the signal as a message and lives. */
    assert_int_equal(herd_exit(n, ap, HERD_REASON_SHUTDOWN), 0);
    ts_run_for(n, RUN_MS);
    assert_int_equal(ts_alive(n, ap), 1);
    assert_int_equal(a.terminates, 0);
    assert_int_equal(a.nev, 1);
    assert_int_equal(a.ev[0].kind, HERD_MSG_EXIT);
    assert_int_equal(a.ev[0].status, HERD_REASON_SHUTDOWN);

    /* A process that does not trap exits with the signal's reason. */
    assert_int_equal(herd_exit(n, bp, HERD_REASON_SHUTDOWN), 0);
    ts_run_for(n, RUN_MS);
    assert_exited(n, bp, &b, HERD_REASON_SHUTDOWN);

    /* The same signal sent by a process. */
    act(n, cp, OP_EXIT, HERD_EIO, dp, 0);
    assert_int_equal(c.rc, 0);
    assert_exited(n, dp, &d, HERD_EIO);
    assert_int_equal(ts_alive(n, cp), 1);
    assert_int_equal(c.terminates, 0);
    ts_node_free(n);
}

static void test_monitor_exit_dead_pid_enoproc(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t20");
    probe_t t = {0}, a = {0};
    herd_pid_t tp = spawn_plain(n, &t);
    herd_pid_t ap = spawn_plain(n, &a);
    crash(n, tp, HERD_EIO);
    assert_exited(n, tp, &t, HERD_EIO);

    assert_int_equal(herd_exit(n, tp, HERD_REASON_KILLED), HERD_ENOPROC);
    assert_int_equal(herd_exit(n, tp, HERD_REASON_SHUTDOWN), HERD_ENOPROC);
    assert_int_equal(herd_exit(n, ghost_of(tp), HERD_REASON_KILLED), HERD_ENOPROC);
    act(n, ap, OP_EXIT, HERD_REASON_KILLED, tp, 0);
    assert_int_equal(a.rc, HERD_ENOPROC);
    assert_int_equal(t.terminates, 1);
    assert_int_equal(ts_alive(n, ap), 1);
    ts_node_free(n);
}

static void test_monitor_unlink_stops_propagation(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t21");
    probe_t a = {0}, b = {0}, c = {0}, d = {0};
    herd_pid_t ap = spawn_plain(n, &a), bp = spawn_plain(n, &b);
    herd_pid_t cp = spawn_plain(n, &c), dp = spawn_plain(n, &d);

    /* Unlinked by the side that linked. */
    link_to(n, ap, &a, bp);
    act(n, ap, OP_UNLINK, 0, bp, 0);
    assert_int_equal(a.rc, 0);
    crash(n, bp, HERD_EIO);
    assert_exited(n, bp, &b, HERD_EIO);
    assert_untouched(n, ap, &a);

    /* Unlinked by the other side. */
    link_to(n, cp, &c, dp);
    d.rc = 12345;
    act(n, dp, OP_UNLINK, 0, cp, 0);
    assert_int_equal(d.rc, 0);
    crash(n, cp, HERD_EIO);
    assert_exited(n, cp, &c, HERD_EIO);
    assert_untouched(n, dp, &d);
    ts_node_free(n);
}

static void test_monitor_link_dead_pid_enoproc(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t22");
    probe_t a = {0}, t = {0};
    herd_pid_t ap = spawn_plain(n, &a), tp = spawn_plain(n, &t);
    act(n, tp, OP_EXIT_SELF, HERD_REASON_NORMAL, HERD_PID_NONE, 0);
    assert_exited(n, tp, &t, HERD_REASON_NORMAL);

    act(n, ap, OP_LINK, 0, tp, 0);
    assert_int_equal(a.rc, HERD_ENOPROC);
    a.rc = 12345;
    act(n, ap, OP_LINK, 0, ghost_of(tp), 0);
    assert_int_equal(a.rc, HERD_ENOPROC);
    assert_untouched(n, ap, &a);
    ts_node_free(n);
}

static void test_monitor_spawn_link_option(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t23");
    probe_t a = {0}, b = {0}, c = {0}, d = {0};

    /* The older process crashes: the one spawned linked to it follows. */
    herd_pid_t ap = spawn_plain(n, &a);
    herd_pid_t bp = spawn_probe(n, &b, 0, ap);
    crash(n, ap, HERD_ETIMEDOUT);
    assert_exited(n, ap, &a, HERD_ETIMEDOUT);
    assert_exited(n, bp, &b, HERD_ETIMEDOUT);

    /* And the other way. */
    herd_pid_t cp = spawn_plain(n, &c);
    herd_pid_t dp = spawn_probe(n, &d, 0, cp);
    crash(n, dp, HERD_EIO);
    assert_exited(n, dp, &d, HERD_EIO);
    assert_exited(n, cp, &c, HERD_EIO);
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
}

static void test_monitor_spawn_link_dead_pid_enoproc(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t24");
    probe_t t = {0}, a = {0};
    herd_pid_t tp = spawn_plain(n, &t);
    crash(n, tp, HERD_EIO);
    assert_exited(n, tp, &t, HERD_EIO);

    int err = 0;
    herd_pid_t ap = spawn_full(n, &a, 0, tp, &err);
    (void)ap;
    assert_int_equal(err, HERD_ENOPROC);
    assert_int_equal(herd_node_process_count(n), 0);
    /* Whatever init did was undone: every successful init gets its terminate. */
    assert_int_equal(a.inits, a.terminates);
    ts_run_for(n, RUN_MS);
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
}

#define CHAIN 6

static void test_monitor_link_chain_dies_together(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t25");
    probe_t p[CHAIN];
    herd_pid_t pid[CHAIN];
    memset(p, 0, sizeof(p));
    for (int i = 0; i < CHAIN; i++)
        pid[i] = spawn_probe(n, &p[i], 0, i ? pid[i - 1] : HERD_PID_NONE);
    assert_int_equal(herd_node_process_count(n), CHAIN);

    crash(n, pid[CHAIN / 2], HERD_ETIMEDOUT);
    for (int i = 0; i < CHAIN; i++)
        assert_exited(n, pid[i], &p[i], HERD_ETIMEDOUT);
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
}

static void test_monitor_link_chain_stops_at_trapper(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t26");
    probe_t p[5];
    herd_pid_t pid[5];
    memset(p, 0, sizeof(p));
    for (int i = 0; i < 5; i++)
        pid[i] = spawn_probe(n, &p[i], i == 2, i ? pid[i - 1] : HERD_PID_NONE);

    crash(n, pid[0], HERD_EIO);
    assert_exited(n, pid[0], &p[0], HERD_EIO);
    assert_exited(n, pid[1], &p[1], HERD_EIO);
    assert_int_equal(ts_alive(n, pid[2]), 1);
    assert_int_equal(p[2].terminates, 0);
    assert_int_equal(p[2].nev, 1);
    assert_int_equal(p[2].ev[0].kind, HERD_MSG_EXIT);
    ts_assert_pid_eq(p[2].ev[0].from, pid[1]);
    assert_int_equal(p[2].ev[0].status, HERD_EIO);
    assert_untouched(n, pid[3], &p[3]);
    assert_untouched(n, pid[4], &p[4]);
    assert_int_equal(herd_node_process_count(n), 3);

    ts_node_free(n);
    /* Node shutdown: terminate with shutdown, no link traffic. */
    for (int i = 2; i < 5; i++) {
        assert_int_equal(p[i].terminates, 1);
        assert_int_equal(p[i].term_reason, HERD_REASON_SHUTDOWN);
    }
    assert_int_equal(p[2].nev, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_monitor_down_on_normal_exit, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_down_on_crash, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_down_on_kill, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_dead_pid_gets_noproc, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_other_node_without_cluster, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_demonitor_before_exit, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_demonitor_unknown_ref, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_demonitor_after_down, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_several_monitors_each_get_down, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_watcher_exits_first, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_reason_names, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_crash_propagates, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_is_both_ways, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_normal_exit_spares, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_kill_propagates, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_shutdown_propagates, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_trap_exit_turns_crash_into_message, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_trap_exit_spawn_option, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_trap_exit_linked_killed, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_exit_killed_beats_trap, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_exit_signal_trapped_or_not, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_exit_dead_pid_enoproc, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_unlink_stops_propagation, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_dead_pid_enoproc, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_spawn_link_option, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_spawn_link_dead_pid_enoproc, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_chain_dies_together, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_link_chain_stops_at_trapper, ts_setup, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
