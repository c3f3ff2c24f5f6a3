/*
 * test_supervisor.c - unit tests for local supervision (runtime/herd_runtime.h:
 * herd_sup_start, herd_sup_start_child, herd_sup_terminate_child,
 * herd_sup_which_children, and the restart strategies of DESIGN.md, "handoff":
 * permanent / transient / temporary, intensity, exponential back-off, exits
 * for name_conflict or handoff that restart nothing).
 *
 * Children are "probe" processes: their record (probe_t) lives in the test and
 * survives restarts, so it counts every init and terminate of every copy of a
 * child; the process's own state is a small heap block freed by terminate, so
 * a missing terminate shows up as a leak under ASan. Each init also checks the
 * spawn argument byte for byte; the test frees its own copy of the argument
 * right after herd_sup_start_child, so a runtime that kept a pointer instead
 * of a copy reads freed memory. The supervisor's callbacks are recorded in an
 * obs_t.
 *
 * Time: restarts are awaited with bounded loops (RUN_UNTIL) with generous
 * deadlines; back-off is checked for "not before the delay" only, never for
 * speed. One back-off test drives a virtual clock through herd_node_poll and
 * is exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "herd_runtime.h"
#include "runtime_layers.h"
#include "support.h"

#define WAIT_MS 5000 /* deadline for something that should happen at once */
#define PATTERN_LEN 40
#define MAX_OBS 32
#define MANY 1000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the probe child --------------------------------------------------------- */

typedef struct probe {
    int inits, terminates, term_reason;
    int nonshutdown; /* terminates with a reason other than shutdown */
    int bad_args;    /* inits that saw other argument bytes than were given */
    int fail_from;   /* > 0: init number fail_from and later fail */
    int fail_code;   /* ... with this code (HERD_EIO when 0) */
    herd_pid_t self; /* the last copy, as its init saw it */
} probe_t;

typedef struct child_arg {
    probe_t *p;
    uint8_t pattern[PATTERN_LEN];
} child_arg_t;

typedef struct pstate {
    probe_t *p;
} pstate_t;

enum {
    OP_CRASH = 1, /* return `code` from handle_cast */
    OP_EXIT_SELF, /* herd_exit(self, code), then return 0 */
};

typedef struct cmd {
    int op;
    int code;
} cmd_t;

static uint8_t pattern_byte(size_t i)
{
    return (uint8_t)(i * 7 + 3);
}

static int probe_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    child_arg_t a;
    if (len != sizeof(a))
        return HERD_EINVAL;
    memcpy(&a, arg, sizeof(a));
    probe_t *p = a.p;
    p->inits++;
    for (size_t i = 0; i < PATTERN_LEN; i++) {
        if (a.pattern[i] != pattern_byte(i)) {
            p->bad_args++;
            break;
        }
    }
    if (p->fail_from > 0 && p->inits >= p->fail_from)
        return p->fail_code ? p->fail_code : HERD_EIO;
    p->self = herd_self(self);
    pstate_t *s = malloc(sizeof(*s));
    if (!s)
        return HERD_ENOMEM;
    s->p = p;
    *state = s;
    return 0;
}

static int probe_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    cmd_t c;
    if (msg->len != sizeof(c))
        return HERD_EINVAL;
    memcpy(&c, msg->data, sizeof(c));
    switch (c.op) {
    case OP_CRASH:
        return c.code;
    case OP_EXIT_SELF:
        return herd_exit(herd_proc_node(self), herd_self(self), c.code);
    default:
        return HERD_EINVAL;
    }
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
    if (reason != HERD_REASON_SHUTDOWN)
        s->p->nonshutdown++;
    free(s);
}

static const herd_behaviour_t probe_beh = {
    .name = "probe",
    .init = probe_init,
    .handle_cast = probe_cast,
    .terminate = probe_terminate,
};

/* ---- the supervisor's callbacks ------------------------------------------------ */

typedef struct restart_ev {
    uint64_t id;
    herd_pid_t old_pid, pid;
    uint64_t at_ms; /* mono_ms() when told */
} restart_ev_t;

typedef struct gone_ev {
    uint64_t id;
    herd_pid_t last_pid;
    int reason;
} gone_ev_t;

typedef struct obs {
    int nrestart, ngone; /* calls; only the first MAX_OBS are kept */
    restart_ev_t r[MAX_OBS];
    gone_ev_t g[MAX_OBS];
} obs_t;

static void on_restart(void *data, uint64_t id, herd_pid_t old_pid, herd_pid_t pid)
{
    obs_t *o = data;
    if (ts_detached())
        return;
    if (o->nrestart < MAX_OBS)
        o->r[o->nrestart] = (restart_ev_t){id, old_pid, pid, mono_ms()};
    o->nrestart++;
}

static void on_gone(void *data, uint64_t id, herd_pid_t last_pid, int reason)
{
    obs_t *o = data;
    if (ts_detached())
        return;
    if (o->ngone < MAX_OBS)
        o->g[o->ngone] = (gone_ev_t){id, last_pid, reason};
    o->ngone++;
}

/* ---- helpers ------------------------------------------------------------------ */

#define RUN_UNTIL(n, cond, max_ms)                                                     \
    do {                                                                               \
        uint64_t t0_ = mono_ms();                                                      \
        while (!(cond) && mono_ms() - t0_ < (max_ms))                                  \
            ts_run_for((n), 5);                                                        \
    } while (0)

/* Run the loop for `ms` of real time, whether or not there is work. */
static void run_ms(herd_node_t *n, uint64_t ms)
{
    uint64_t t0 = mono_ms();
    while (mono_ms() - t0 < ms)
        ts_run_for(n, 10);
}

/* One node per test (support.h: ts_teardown frees it if the test ends early). */
static herd_node_t *node_make(const char *name, const herd_clock_t *clock)
{
    assert_int_equal(ts_live_nodes(), 0);
    return ts_node(name, clock, 7);
}

static herd_sup_config_t sup_cfg(obs_t *o)
{
    herd_sup_config_t c;
    memset(&c, 0, sizeof(c));
    c.on_child_restart = on_restart;
    c.on_child_gone = on_gone;
    c.data = o;
    return c;
}

static herd_pid_t sup_make(herd_node_t *n, const herd_sup_config_t *cfg)
{
    herd_pid_t sup = HERD_PID_NONE;
    assert_int_equal(herd_sup_start(n, cfg, &sup), 0);
    assert_false(herd_pid_is_none(sup));
    assert_int_equal(herd_is_alive(n, sup), 1);
    return sup;
}

static void fill_arg(child_arg_t *a, probe_t *p)
{
    a->p = p;
    for (size_t i = 0; i < PATTERN_LEN; i++)
        a->pattern[i] = pattern_byte(i);
}

/* Start a probe child; returns the error. The argument is a heap copy that is
 * scribbled over and freed as soon as the call returns. */
static int child_try(herd_node_t *n, herd_pid_t sup, probe_t *p, herd_restart_t restart,
                     uint64_t *id, herd_pid_t *pid)
{
    child_arg_t *a = malloc(sizeof(*a));
    assert_non_null(a);
    fill_arg(a, p);
    herd_child_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.behaviour = &probe_beh;
    spec.arg = a;
    spec.arg_len = sizeof(*a);
    spec.restart = restart;
    int err = herd_sup_start_child(n, sup, &spec, id, pid);
    memset(a, 0xA5, sizeof(*a));
    free(a);
    return err;
}

static uint64_t child_start(herd_node_t *n, herd_pid_t sup, probe_t *p,
                            herd_restart_t restart, herd_pid_t *pid)
{
    uint64_t id = 0;
    herd_pid_t got = HERD_PID_NONE;
    int inits = p->inits;
    assert_int_equal(child_try(n, sup, p, restart, &id, &got), 0);
    assert_int_equal(p->inits, inits + 1); /* init ran before the call returned */
    assert_false(herd_pid_is_none(got));
    ts_assert_pid_eq(p->self, got);
    assert_int_equal(ts_alive(n, got), 1);
    if (pid)
        *pid = got;
    return id;
}

static int which(herd_node_t *n, herd_pid_t sup, herd_child_info_t *out, size_t cap)
{
    int c = herd_sup_which_children(n, sup, out, cap);
    assert_true(c >= 0);
    return c;
}

static int count_children(herd_node_t *n, herd_pid_t sup)
{
    herd_child_info_t ci[8];
    return which(n, sup, ci, 8);
}

/* The listed entry of child `id`; fails the test when it is not listed. */
static herd_child_info_t child_info(herd_node_t *n, herd_pid_t sup, uint64_t id)
{
    herd_child_info_t ci[8];
    memset(ci, 0, sizeof(ci));
    int c = which(n, sup, ci, 8);
    assert_true(c <= 8);
    for (int i = 0; i < c; i++)
        if (ci[i].id == id)
            return ci[i];
    fail_msg("child %llu is not listed", (unsigned long long)id);
    return ci[0];
}

static void cast_cmd(herd_node_t *n, herd_pid_t to, int op, int code)
{
    cmd_t c = {op, code};
    assert_int_equal(herd_node_cast(n, to, &c, sizeof(c)), 0);
}

static void poll_all(herd_node_t *n)
{
    for (int i = 0; i < 4; i++)
        assert_true(herd_node_poll(n) >= 0);
}

/* Crash child `id` whenever a new copy of it is up, until the supervisor gives
 * up on it (or the deadline passes). Returns the last pid crashed. */
static herd_pid_t crash_until_gone(herd_node_t *n, herd_pid_t sup, uint64_t id, obs_t *o)
{
    herd_pid_t crashed = HERD_PID_NONE;
    uint64_t t0 = mono_ms();
    while (o->ngone == 0 && mono_ms() - t0 < WAIT_MS) {
        herd_child_info_t ci[2];
        int c = which(n, sup, ci, 2);
        if (c == 1 && ci[0].id == id && !herd_pid_is_none(ci[0].pid) &&
            !herd_pid_equal(ci[0].pid, crashed) && ts_alive(n, ci[0].pid)) {
            cast_cmd(n, ci[0].pid, OP_CRASH, HERD_EIO);
            crashed = ci[0].pid;
        }
        ts_run_for(n, 5);
    }
    return crashed;
}

/* ---- start and restart strategies -------------------------------------------------- */

static void test_supervisor_start_child(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t1", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0}, b = {0};
    herd_pid_t ap, bp;
    uint64_t aid = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &ap);
    uint64_t bid = child_start(n, sup, &b, HERD_RESTART_TEMPORARY, &bp);
    assert_true(aid != bid);
    assert_false(herd_pid_equal(ap, bp));
    assert_int_equal(a.bad_args, 0);
    assert_int_equal(herd_node_process_count(n), 3);

    herd_child_info_t ci[4];
    memset(ci, 0, sizeof(ci));
    assert_int_equal(which(n, sup, ci, 4), 2);
    assert_int_equal(ci[0].id, aid);
    ts_assert_pid_eq(ci[0].pid, ap);
    assert_int_equal(ci[0].restarts, 0);
    assert_int_equal(ci[0].restart, HERD_RESTART_PERMANENT);
    assert_int_equal(ci[1].id, bid);
    ts_assert_pid_eq(ci[1].pid, bp);
    assert_int_equal(ci[1].restarts, 0);
    assert_int_equal(ci[1].restart, HERD_RESTART_TEMPORARY);

    /* cap bounds what is filled, not the count. */
    herd_child_info_t one[2];
    memset(one, 0, sizeof(one));
    one[1].id = 0xabcdef;
    assert_int_equal(which(n, sup, one, 1), 2);
    assert_int_equal(one[0].id, aid);
    assert_int_equal(one[1].id, 0xabcdef);

    run_ms(n, 50);
    assert_int_equal(o.nrestart, 0);
    assert_int_equal(o.ngone, 0);
    ts_node_free(n);
    assert_int_equal(a.terminates, 1);
    assert_int_equal(a.term_reason, HERD_REASON_SHUTDOWN);
    assert_int_equal(b.terminates, 1);
}

static void test_supervisor_permanent_restarted(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t2", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    herd_pid_t p0;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &p0);

    cast_cmd(n, p0, OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.nrestart >= 1, WAIT_MS);
    assert_int_equal(o.nrestart, 1);
    assert_int_equal(o.ngone, 0);
    assert_int_equal(o.r[0].id, id);
    ts_assert_pid_eq(o.r[0].old_pid, p0);
    herd_pid_t p1 = o.r[0].pid;
    assert_false(herd_pid_is_none(p1));
    assert_false(herd_pid_equal(p0, p1));
    assert_true(p1.serial > p0.serial); /* pids are never reused */
    assert_int_equal(ts_alive(n, p0), 0);
    assert_int_equal(ts_alive(n, p1), 1);
    ts_assert_pid_eq(a.self, p1);
    assert_int_equal(a.inits, 2);
    assert_int_equal(a.terminates, 1);
    assert_int_equal(a.term_reason, HERD_EIO);

    herd_child_info_t ci = child_info(n, sup, id);
    ts_assert_pid_eq(ci.pid, p1);
    assert_int_equal(ci.restarts, 1);
    assert_int_equal(ci.restart, HERD_RESTART_PERMANENT);
    assert_int_equal(count_children(n, sup), 1);

    /* Killed from outside: restarted as well, same id again. */
    assert_int_equal(herd_exit(n, p1, HERD_REASON_KILLED), 0);
    RUN_UNTIL(n, o.nrestart >= 2, WAIT_MS);
    assert_int_equal(o.nrestart, 2);
    assert_int_equal(o.r[1].id, id);
    ts_assert_pid_eq(o.r[1].old_pid, p1);
    assert_int_equal(ts_alive(n, o.r[1].pid), 1);
    assert_int_equal(a.term_reason, HERD_REASON_KILLED);
    ci = child_info(n, sup, id);
    ts_assert_pid_eq(ci.pid, o.r[1].pid);

    /* A permanent child is restarted even after a normal exit. */
    herd_pid_t p2 = o.r[1].pid;
    cast_cmd(n, p2, OP_EXIT_SELF, HERD_REASON_NORMAL);
    RUN_UNTIL(n, o.nrestart >= 3, WAIT_MS);
    assert_int_equal(o.nrestart, 3);
    ts_assert_pid_eq(o.r[2].old_pid, p2);
    assert_int_equal(a.term_reason, HERD_REASON_NORMAL);
    assert_int_equal(o.ngone, 0);
    assert_int_equal(a.bad_args, 0);
    assert_int_equal(herd_node_process_count(n), 2);
    ts_node_free(n);
}

static void test_supervisor_transient(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t3", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0}, b = {0};
    herd_pid_t p0, bp;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_TRANSIENT, &p0);
    uint64_t bid = child_start(n, sup, &b, HERD_RESTART_TRANSIENT, &bp);

    /* A crash restarts it. */
    cast_cmd(n, p0, OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.nrestart >= 1, WAIT_MS);
    assert_int_equal(o.nrestart, 1);
    assert_int_equal(o.r[0].id, id);
    herd_pid_t p1 = o.r[0].pid;
    assert_int_equal(ts_alive(n, p1), 1);

    /* A normal exit does not: it is gone with reason normal. */
    cast_cmd(n, p1, OP_EXIT_SELF, HERD_REASON_NORMAL);
    RUN_UNTIL(n, o.ngone >= 1, WAIT_MS);
    assert_int_equal(o.ngone, 1);
    assert_int_equal(o.g[0].id, id);
    ts_assert_pid_eq(o.g[0].last_pid, p1);
    assert_int_equal(o.g[0].reason, HERD_REASON_NORMAL);
    assert_int_equal(a.terminates, 2);
    assert_int_equal(a.term_reason, HERD_REASON_NORMAL);

    /* Nor does an exit by shutdown. */
    cast_cmd(n, bp, OP_EXIT_SELF, HERD_REASON_SHUTDOWN);
    RUN_UNTIL(n, o.ngone >= 2, WAIT_MS);
    assert_int_equal(o.ngone, 2);
    assert_int_equal(o.g[1].id, bid);
    ts_assert_pid_eq(o.g[1].last_pid, bp);
    assert_int_equal(o.g[1].reason, HERD_REASON_SHUTDOWN);

    run_ms(n, 50);
    assert_int_equal(o.nrestart, 1);
    assert_int_equal(a.inits, 2);
    assert_int_equal(b.inits, 1);
    assert_int_equal(count_children(n, sup), 0);
    assert_int_equal(herd_node_process_count(n), 1);
    ts_node_free(n);
}

static void test_supervisor_temporary_never_restarted(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t4", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0}, b = {0};
    herd_pid_t ap, bp;
    uint64_t aid = child_start(n, sup, &a, HERD_RESTART_TEMPORARY, &ap);
    uint64_t bid = child_start(n, sup, &b, HERD_RESTART_TEMPORARY, &bp);

    cast_cmd(n, ap, OP_CRASH, HERD_ETIMEDOUT);
    RUN_UNTIL(n, o.ngone >= 1, WAIT_MS);
    assert_int_equal(o.ngone, 1);
    assert_int_equal(o.g[0].id, aid);
    ts_assert_pid_eq(o.g[0].last_pid, ap);
    assert_int_equal(o.g[0].reason, HERD_ETIMEDOUT);

    cast_cmd(n, bp, OP_EXIT_SELF, HERD_REASON_NORMAL);
    RUN_UNTIL(n, o.ngone >= 2, WAIT_MS);
    assert_int_equal(o.ngone, 2);
    assert_int_equal(o.g[1].id, bid);
    assert_int_equal(o.g[1].reason, HERD_REASON_NORMAL);

    run_ms(n, 50);
    assert_int_equal(o.nrestart, 0);
    assert_int_equal(a.inits, 1);
    assert_int_equal(b.inits, 1);
    assert_int_equal(count_children(n, sup), 0);
    assert_int_equal(herd_node_process_count(n), 1);
    ts_node_free(n);
}

/* ---- intensity and back-off ----------------------------------------------------------- */

static void check_gives_up(uint32_t max_restarts, uint32_t expect)
{
    herd_node_t *n = node_make("t5", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    cfg.max_restarts = max_restarts;
    cfg.backoff_ms = 1;
    cfg.backoff_max_ms = 4;
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, NULL);

    herd_pid_t last = crash_until_gone(n, sup, id, &o);
    assert_int_equal(o.ngone, 1);
    assert_int_equal(o.g[0].id, id);
    assert_int_equal(o.g[0].reason, HERD_REASON_MAX_RESTARTS);
    ts_assert_pid_eq(o.g[0].last_pid, last);
    assert_int_equal((uint32_t)o.nrestart, expect);
    assert_int_equal((uint32_t)a.inits, expect + 1);
    assert_int_equal((uint32_t)a.terminates, expect + 1);
    assert_int_equal(a.bad_args, 0);

    run_ms(n, 50);
    assert_int_equal((uint32_t)o.nrestart, expect);
    assert_int_equal(o.ngone, 1);
    assert_int_equal(count_children(n, sup), 0);
    assert_int_equal(ts_alive(n, sup), 1); /* it gave up on the child, not itself */
    assert_int_equal(herd_node_process_count(n), 1);
    ts_node_free(n);
}

static void test_supervisor_max_restarts_default(void **state)
{
    (void)state;
    check_gives_up(0, 3);
}

static void test_supervisor_max_restarts_five(void **state)
{
    (void)state;
    check_gives_up(5, 5);
}

static void test_supervisor_window_forgets_old_restarts(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t6", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    cfg.max_restarts = 2;
    cfg.window_ms = 200;
    cfg.backoff_ms = 1;
    cfg.backoff_max_ms = 2;
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    herd_pid_t p;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &p);

    for (int i = 1; i <= 2; i++) {
        cast_cmd(n, p, OP_CRASH, HERD_EIO);
        RUN_UNTIL(n, o.nrestart >= i, WAIT_MS);
        assert_int_equal(o.nrestart, i);
        p = o.r[i - 1].pid;
    }
    /* Two restarts used up; once the window has passed a crash is restarted. */
    run_ms(n, 400);
    cast_cmd(n, p, OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.nrestart >= 3 || o.ngone > 0, WAIT_MS);
    assert_int_equal(o.ngone, 0);
    assert_int_equal(o.nrestart, 3);
    herd_child_info_t ci = child_info(n, sup, id);
    ts_assert_pid_eq(ci.pid, o.r[2].pid);
    assert_true(ci.restarts >= 1 && ci.restarts <= 2);
    ts_node_free(n);
}

/* Real time: the second restart in a window waits backoff_ms, the third twice
 * that. Only lower bounds (with 5 ms for the loop's millisecond clock). */
static void test_supervisor_backoff_delays_restart(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t7", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    cfg.max_restarts = 10;
    cfg.window_ms = 60000;
    cfg.backoff_ms = 50;
    cfg.backoff_max_ms = 1000;
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    herd_pid_t p0;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &p0);

    cast_cmd(n, p0, OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.nrestart >= 1, WAIT_MS);
    assert_int_equal(o.nrestart, 1);
    herd_pid_t p1 = o.r[0].pid;

    /* Second crash: handle it and the supervisor's reaction, nothing more. */
    uint64_t t0 = mono_ms();
    cast_cmd(n, p1, OP_CRASH, HERD_EIO);
    herd_child_info_t ci = child_info(n, sup, id);
    for (int i = 0; i < 50 && herd_pid_equal(ci.pid, p1); i++) {
        assert_true(herd_node_poll(n) >= 0);
        ci = child_info(n, sup, id);
    }
    uint64_t seen = mono_ms() - t0;
    assert_int_equal(a.terminates, 2);
    assert_int_equal(ts_alive(n, p1), 0);
    if (seen < 40) { /* else this machine was too slow to judge "meanwhile" */
        assert_true(herd_pid_is_none(ci.pid));
        assert_int_equal(o.nrestart, 1);
    }
    RUN_UNTIL(n, o.nrestart >= 2, WAIT_MS);
    assert_int_equal(o.nrestart, 2);
    assert_true(o.r[1].at_ms - t0 >= 45);
    ts_assert_pid_eq(o.r[1].old_pid, p1);
    herd_pid_t p2 = o.r[1].pid;
    ci = child_info(n, sup, id);
    ts_assert_pid_eq(ci.pid, p2);
    assert_int_equal(ts_alive(n, p2), 1);

    /* Third crash: the delay doubles. */
    uint64_t t1 = mono_ms();
    cast_cmd(n, p2, OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.nrestart >= 3, WAIT_MS);
    assert_int_equal(o.nrestart, 3);
    assert_true(o.r[2].at_ms - t1 >= 95);
    assert_int_equal(o.ngone, 0);
    assert_int_equal(a.bad_args, 0);
    ts_node_free(n);
}

/* The same on a virtual clock, exactly: the supervisor's delays are node
 * timers, driven by the node's clock (DESIGN.md, deterministic simulation). */
static void test_supervisor_backoff_virtual_clock(void **state)
{
    (void)state;
    ts_vnow = 1000;
    herd_node_t *n = node_make("t8", &ts_vclock);
    assert_int_equal(herd_node_now(n), 1000);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    cfg.max_restarts = 10;
    cfg.window_ms = 60000;
    cfg.backoff_ms = 50;
    cfg.backoff_max_ms = 1000;
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    herd_pid_t p0;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &p0);

    /* The first restart in a window does not wait. */
    cast_cmd(n, p0, OP_CRASH, HERD_EIO);
    poll_all(n);
    assert_int_equal(o.nrestart, 1);
    herd_pid_t p1 = o.r[0].pid;
    ts_assert_pid_eq(child_info(n, sup, id).pid, p1);

    cast_cmd(n, p1, OP_CRASH, HERD_EIO);
    poll_all(n);
    assert_int_equal(a.terminates, 2);
    assert_true(herd_pid_is_none(child_info(n, sup, id).pid));
    ts_vnow += 49;
    poll_all(n);
    assert_int_equal(o.nrestart, 1);
    assert_true(herd_pid_is_none(child_info(n, sup, id).pid));
    ts_vnow += 1;
    poll_all(n);
    assert_int_equal(o.nrestart, 2);
    herd_pid_t p2 = o.r[1].pid;
    ts_assert_pid_eq(child_info(n, sup, id).pid, p2);
    assert_int_equal(ts_alive(n, p2), 1);

    cast_cmd(n, p2, OP_CRASH, HERD_EIO);
    poll_all(n);
    ts_vnow += 99;
    poll_all(n);
    assert_int_equal(o.nrestart, 2);
    assert_true(herd_pid_is_none(child_info(n, sup, id).pid));
    ts_vnow += 1;
    poll_all(n);
    assert_int_equal(o.nrestart, 3);
    ts_assert_pid_eq(child_info(n, sup, id).pid, o.r[2].pid);
    assert_int_equal(o.ngone, 0);
    ts_node_free(n);
}

/* ---- init failures --------------------------------------------------------------- */

static void test_supervisor_init_fails_at_start(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t9", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);

    probe_t a = {0};
    a.fail_from = 1;
    a.fail_code = HERD_ETIMEDOUT;
    uint64_t id = 0;
    herd_pid_t pid = HERD_PID_NONE;
    assert_int_equal(child_try(n, sup, &a, HERD_RESTART_PERMANENT, &id, &pid),
                     HERD_ETIMEDOUT);
    assert_int_equal(a.inits, 1);
    assert_int_equal(a.terminates, 0); /* not after a failed init */
    assert_int_equal(count_children(n, sup), 0);
    assert_int_equal(herd_node_process_count(n), 1);

    run_ms(n, 50);
    assert_int_equal(a.inits, 1); /* nothing kept, nothing retried */
    assert_int_equal(o.nrestart, 0);
    assert_int_equal(o.ngone, 0);

    /* The supervisor is fine afterwards. */
    probe_t b = {0};
    herd_pid_t bp;
    uint64_t bid = child_start(n, sup, &b, HERD_RESTART_PERMANENT, &bp);
    herd_child_info_t ci[2];
    assert_int_equal(which(n, sup, ci, 2), 1);
    assert_int_equal(ci[0].id, bid);
    ts_assert_pid_eq(ci[0].pid, bp);
    ts_node_free(n);
}

static void test_supervisor_init_fails_on_restart(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t10", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    cfg.max_restarts = 3;
    cfg.backoff_ms = 1;
    cfg.backoff_max_ms = 2;
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    a.fail_from = 2; /* the first init works, every restart's fails */
    herd_pid_t p0;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &p0);

    cast_cmd(n, p0, OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.ngone >= 1, WAIT_MS);
    assert_int_equal(o.ngone, 1);
    assert_int_equal(o.g[0].id, id);
    assert_int_equal(o.g[0].reason, HERD_REASON_MAX_RESTARTS);
    ts_assert_pid_eq(o.g[0].last_pid, p0);
    assert_int_equal(o.nrestart, 0);    /* no restart ever produced a pid */
    assert_int_equal(a.inits, 1 + 3);   /* each failed restart counted */
    assert_int_equal(a.terminates, 1);  /* only the copy whose init worked */
    assert_int_equal(a.bad_args, 0);

    run_ms(n, 50);
    assert_int_equal(a.inits, 4);
    assert_int_equal(count_children(n, sup), 0);
    assert_int_equal(herd_node_process_count(n), 1);
    ts_node_free(n);
}

/* ---- stopping children ----------------------------------------------------------- */

static void test_supervisor_terminate_child(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t11", NULL);
    obs_t o = {0}, o2 = {0};
    herd_sup_config_t cfg = sup_cfg(&o), cfg2 = sup_cfg(&o2);
    herd_pid_t sup = sup_make(n, &cfg);
    herd_pid_t sup2 = sup_make(n, &cfg2);
    probe_t a = {0}, b = {0};
    herd_pid_t ap, bp;
    uint64_t aid = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &ap);
    uint64_t bid = child_start(n, sup, &b, HERD_RESTART_PERMANENT, &bp);

    /* An id of another supervisor's child: not ours. */
    assert_int_equal(herd_sup_terminate_child(n, sup2, aid), HERD_ENOENT);
    assert_int_equal(ts_alive(n, ap), 1);
    uint64_t unknown = aid ^ bid ^ 0x5a5a5a5a5a5aULL;
    assert_true(unknown != aid && unknown != bid);
    assert_int_equal(herd_sup_terminate_child(n, sup, unknown), HERD_ENOENT);

    assert_int_equal(herd_sup_terminate_child(n, sup, aid), 0);
    run_ms(n, 50);
    assert_int_equal(a.terminates, 1);
    assert_int_equal(a.term_reason, HERD_REASON_SHUTDOWN);
    assert_int_equal(ts_alive(n, ap), 0);
    assert_int_equal(a.inits, 1); /* not restarted, even though permanent */
    assert_int_equal(o.nrestart, 0);
    herd_child_info_t ci[3];
    assert_int_equal(which(n, sup, ci, 3), 1);
    assert_int_equal(ci[0].id, bid);
    ts_assert_pid_eq(ci[0].pid, bp);
    assert_int_equal(herd_sup_terminate_child(n, sup, aid), HERD_ENOENT);
    assert_int_equal(b.terminates, 0);
    assert_int_equal(herd_node_process_count(n), 3);
    ts_node_free(n);
}

/* A node on a virtual clock with a supervisor (back-off 100 ms) whose child has
 * crashed twice: the second restart is waiting out its back-off. */
typedef struct pending {
    herd_node_t *n;
    obs_t o;
    herd_pid_t sup;
    uint64_t id;
    probe_t a, b; /* a: the crashing child; b: a quiet sibling */
    herd_pid_t bp;
} pending_t;

static void pending_setup(pending_t *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    ts_vnow = 5000;
    t->n = node_make(name, &ts_vclock);
    herd_sup_config_t cfg = sup_cfg(&t->o);
    cfg.max_restarts = 10;
    cfg.window_ms = 60000;
    cfg.backoff_ms = 100;
    t->sup = sup_make(t->n, &cfg);
    herd_pid_t p0;
    t->id = child_start(t->n, t->sup, &t->a, HERD_RESTART_PERMANENT, &p0);
    child_start(t->n, t->sup, &t->b, HERD_RESTART_PERMANENT, &t->bp);

    cast_cmd(t->n, p0, OP_CRASH, HERD_EIO);
    poll_all(t->n);
    assert_int_equal(t->o.nrestart, 1);
    cast_cmd(t->n, t->o.r[0].pid, OP_CRASH, HERD_EIO);
    poll_all(t->n);
    assert_int_equal(t->a.terminates, 2);
    assert_int_equal(t->o.nrestart, 1);
    assert_true(herd_pid_is_none(child_info(t->n, t->sup, t->id).pid));
    assert_int_equal(herd_node_process_count(t->n), 2);
}

static void test_supervisor_terminate_child_waiting_restart(void **state)
{
    (void)state;
    pending_t t;
    pending_setup(&t, "t12");
    assert_int_equal(herd_sup_terminate_child(t.n, t.sup, t.id), 0);
    ts_vnow += 10000;
    poll_all(t.n);
    assert_int_equal(t.o.nrestart, 1); /* the pending restart was cancelled */
    assert_int_equal(t.a.inits, 2);
    assert_int_equal(t.a.terminates, 2);
    assert_int_equal(count_children(t.n, t.sup), 1);
    assert_int_equal(herd_sup_terminate_child(t.n, t.sup, t.id), HERD_ENOENT);
    assert_int_equal(herd_node_process_count(t.n), 2);
    assert_int_equal(t.b.terminates, 0);
    ts_node_free(t.n);
}

static void test_supervisor_shutdown_with_restart_pending(void **state)
{
    (void)state;
    pending_t t;
    pending_setup(&t, "t16");
    assert_int_equal(herd_exit(t.n, t.sup, HERD_REASON_SHUTDOWN), 0);
    poll_all(t.n);
    ts_vnow += 10000;
    poll_all(t.n);
    assert_int_equal(ts_alive(t.n, t.sup), 0);
    assert_int_equal(herd_node_process_count(t.n), 0);
    assert_int_equal(t.o.nrestart, 1);
    assert_int_equal(t.a.inits, 2);
    assert_int_equal(t.b.terminates, 1);
    assert_int_equal(t.b.term_reason, HERD_REASON_SHUTDOWN);
    ts_node_free(t.n);
}

static void test_supervisor_node_free_with_restart_pending(void **state)
{
    (void)state;
    pending_t t;
    pending_setup(&t, "t19");
    ts_node_free(t.n); /* with the restart timer armed: no leak, no restart */
    assert_int_equal(t.o.nrestart, 1);
    assert_int_equal(t.a.inits, 2);
    assert_int_equal(t.a.terminates, 2);
    assert_int_equal(t.b.terminates, 1);
    assert_int_equal(t.b.term_reason, HERD_REASON_SHUTDOWN);
}

static void test_supervisor_conflict_and_handoff_restart_nothing(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t13", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0}, b = {0}, c = {0};
    herd_pid_t ap, bp, cp;
    uint64_t aid = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &ap);
    uint64_t bid = child_start(n, sup, &b, HERD_RESTART_PERMANENT, &bp);
    uint64_t cid = child_start(n, sup, &c, HERD_RESTART_TRANSIENT, &cp);

    cast_cmd(n, ap, OP_EXIT_SELF, HERD_REASON_NAME_CONFLICT);
    cast_cmd(n, bp, OP_EXIT_SELF, HERD_REASON_HANDOFF);
    cast_cmd(n, cp, OP_EXIT_SELF, HERD_REASON_NAME_CONFLICT);
    RUN_UNTIL(n, o.ngone >= 3, WAIT_MS);
    run_ms(n, 100);
    assert_int_equal(o.nrestart, 0);
    assert_int_equal(a.inits, 1);
    assert_int_equal(b.inits, 1);
    assert_int_equal(c.inits, 1);
    assert_int_equal(a.term_reason, HERD_REASON_NAME_CONFLICT);
    assert_int_equal(b.term_reason, HERD_REASON_HANDOFF);

    assert_int_equal(o.ngone, 3);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        if (o.g[i].id == aid) {
            ts_assert_pid_eq(o.g[i].last_pid, ap);
            assert_int_equal(o.g[i].reason, HERD_REASON_NAME_CONFLICT);
            seen |= 1;
        } else if (o.g[i].id == bid) {
            ts_assert_pid_eq(o.g[i].last_pid, bp);
            assert_int_equal(o.g[i].reason, HERD_REASON_HANDOFF);
            seen |= 2;
        } else if (o.g[i].id == cid) {
            assert_int_equal(o.g[i].reason, HERD_REASON_NAME_CONFLICT);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    assert_int_equal(count_children(n, sup), 0);
    assert_int_equal(herd_node_process_count(n), 1);
    ts_node_free(n);
}

static void test_supervisor_start_child_bad_sup_or_spec(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t14", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t plain = {0}, a = {0};
    herd_pid_t pp;
    child_start(n, sup, &plain, HERD_RESTART_PERMANENT, &pp);
    size_t count = herd_node_process_count(n);

    uint64_t id = 0;
    herd_pid_t pid = HERD_PID_NONE;
    /* A live process that is not a supervisor. */
    assert_int_equal(child_try(n, pp, &a, HERD_RESTART_PERMANENT, &id, &pid),
                     HERD_ENOPROC);
    /* A pid that never existed. */
    herd_pid_t ghost = sup;
    ghost.serial += 1000000;
    assert_int_equal(child_try(n, ghost, &a, HERD_RESTART_PERMANENT, &id, &pid),
                     HERD_ENOPROC);
    assert_true(child_try(n, HERD_PID_NONE, &a, HERD_RESTART_PERMANENT, &id, &pid) < 0);
    assert_int_equal(a.inits, a.terminates);
    assert_int_equal(herd_node_process_count(n), count);

    /* Bad specs. */
    assert_int_equal(herd_sup_start_child(n, sup, NULL, &id, &pid), HERD_EINVAL);
    child_arg_t arg;
    fill_arg(&arg, &a);
    herd_child_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.arg = &arg;
    spec.arg_len = sizeof(arg);
    spec.restart = HERD_RESTART_PERMANENT;
    assert_int_equal(herd_sup_start_child(n, sup, &spec, &id, &pid), HERD_EINVAL);
    spec.behaviour = &probe_beh;
    spec.restart = (herd_restart_t)9;
    assert_int_equal(herd_sup_start_child(n, sup, &spec, &id, &pid), HERD_EINVAL);
    assert_int_equal(a.inits, a.terminates);
    assert_int_equal(count_children(n, sup), 1);
    assert_int_equal(herd_node_process_count(n), count);

    /* A supervisor that has exited (killed: shutting one down has its own test). */
    assert_int_equal(herd_exit(n, sup, HERD_REASON_KILLED), 0);
    run_ms(n, 50);
    assert_int_equal(ts_alive(n, sup), 0);
    assert_int_equal(child_try(n, sup, &a, HERD_RESTART_PERMANENT, &id, &pid),
                     HERD_ENOPROC);
    assert_int_equal(a.inits, a.terminates);
    ts_node_free(n);
}

static void test_supervisor_shutdown_stops_children(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t15", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t c[3];
    herd_pid_t pid[3];
    memset(c, 0, sizeof(c));
    static const herd_restart_t kinds[3] = {HERD_RESTART_PERMANENT, HERD_RESTART_TRANSIENT,
                                            HERD_RESTART_TEMPORARY};
    for (int i = 0; i < 3; i++)
        child_start(n, sup, &c[i], kinds[i], &pid[i]);
    assert_int_equal(herd_node_process_count(n), 4);

    assert_int_equal(herd_exit(n, sup, HERD_REASON_SHUTDOWN), 0);
    RUN_UNTIL(n, herd_node_process_count(n) == 0, WAIT_MS);
    run_ms(n, 50);
    assert_int_equal(ts_alive(n, sup), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ts_alive(n, pid[i]), 0);
        assert_int_equal(c[i].terminates, 1);
        assert_int_equal(c[i].term_reason, HERD_REASON_SHUTDOWN);
        assert_int_equal(c[i].inits, 1);
    }
    assert_int_equal(o.nrestart, 0);
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
}

static void test_supervisor_crash_spares_siblings(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t17", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t c[3];
    herd_pid_t pid[3];
    uint64_t id[3];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 3; i++)
        id[i] = child_start(n, sup, &c[i], HERD_RESTART_PERMANENT, &pid[i]);

    cast_cmd(n, pid[1], OP_CRASH, HERD_EIO);
    RUN_UNTIL(n, o.nrestart >= 1, WAIT_MS);
    run_ms(n, 50);
    assert_int_equal(o.nrestart, 1);
    assert_int_equal(o.r[0].id, id[1]);
    assert_int_equal(o.ngone, 0);
    for (int i = 0; i < 3; i += 2) {
        assert_int_equal(ts_alive(n, pid[i]), 1);
        assert_int_equal(c[i].inits, 1);
        assert_int_equal(c[i].terminates, 0);
    }
    herd_child_info_t ci[4];
    assert_int_equal(which(n, sup, ci, 4), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ci[i].id, id[i]);
    ts_assert_pid_eq(ci[0].pid, pid[0]);
    ts_assert_pid_eq(ci[1].pid, o.r[0].pid);
    ts_assert_pid_eq(ci[2].pid, pid[2]);
    assert_int_equal(ci[0].restarts, 0);
    assert_int_equal(ci[1].restarts, 1);
    assert_int_equal(ci[2].restarts, 0);
    assert_int_equal(herd_node_process_count(n), 4);
    ts_node_free(n);
}

static void test_supervisor_node_free_many_children(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t18", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t shared = {0};
    static uint64_t ids[MANY];
    static herd_child_info_t ci[MANY + 1];
    memset(ids, 0, sizeof(ids));
    memset(ci, 0, sizeof(ci));
    for (int i = 0; i < MANY; i++)
        ids[i] = child_start(n, sup, &shared,
                             i % 3 == 0   ? HERD_RESTART_PERMANENT
                             : i % 3 == 1 ? HERD_RESTART_TRANSIENT
                                          : HERD_RESTART_TEMPORARY,
                             NULL);
    assert_int_equal(herd_node_process_count(n), MANY + 1);
    assert_int_equal(which(n, sup, ci, MANY + 1), MANY);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(ci[i].id, ids[i]);
        assert_false(herd_pid_is_none(ci[i].pid));
        if (i > 0)
            assert_true(ci[i].pid.serial != ci[i - 1].pid.serial);
    }
    run_ms(n, 20);

    ts_node_free(n);
    assert_int_equal(shared.inits, MANY);
    assert_int_equal(shared.terminates, MANY);
    assert_int_equal(shared.nonshutdown, 0);
    assert_int_equal(shared.bad_args, 0);
    assert_int_equal(o.nrestart, 0); /* no link or monitor traffic at node free */
    assert_int_equal(o.ngone, 0);
}

static void test_supervisor_same_arg_every_restart(void **state)
{
    (void)state;
    herd_node_t *n = node_make("t20", NULL);
    obs_t o = {0};
    herd_sup_config_t cfg = sup_cfg(&o);
    cfg.max_restarts = 10;
    cfg.window_ms = 60000;
    cfg.backoff_ms = 1;
    cfg.backoff_max_ms = 2;
    herd_pid_t sup = sup_make(n, &cfg);
    probe_t a = {0};
    herd_pid_t p;
    uint64_t id = child_start(n, sup, &a, HERD_RESTART_PERMANENT, &p);

    /* The caller's copy of the argument is freed already (child_try). */
    for (int i = 1; i <= 4; i++) {
        cast_cmd(n, p, OP_CRASH, HERD_EIO);
        RUN_UNTIL(n, o.nrestart >= i, WAIT_MS);
        assert_int_equal(o.nrestart, i);
        p = o.r[i - 1].pid;
        assert_int_equal(ts_alive(n, p), 1);
    }
    assert_int_equal(a.inits, 5);
    assert_int_equal(a.bad_args, 0);
    assert_int_equal(child_info(n, sup, id).restarts, 4);
    ts_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_supervisor_start_child, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_permanent_restarted, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_transient, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_temporary_never_restarted, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_max_restarts_default, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_max_restarts_five, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_window_forgets_old_restarts, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_backoff_delays_restart, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_backoff_virtual_clock, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_init_fails_at_start, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_init_fails_on_restart, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_terminate_child, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_terminate_child_waiting_restart, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_conflict_and_handoff_restart_nothing, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_start_child_bad_sup_or_spec, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_shutdown_stops_children, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_shutdown_with_restart_pending, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_crash_spares_siblings, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_node_free_many_children, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_node_free_with_restart_pending, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_supervisor_same_arg_every_restart, ts_setup, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
