/*
 * test_timer.c - unit tests for timers (runtime/herd_runtime.h):
 * herd_send_after, herd_send_interval and herd_cancel_timer.
 *
 * Real-clock tests only assert what cannot depend on the machine's speed: a
 * timer does not fire during a run much shorter than its delay, does fire in a
 * long enough run, not earlier than its delay by the node's clock, and timers
 * fire in deadline order. Exact timing is tested with a virtual clock
 * (herd_clock_t) driven by hand through herd_node_poll: there a timer fires
 * at its deadline and not a millisecond before.
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

#define MAX_EVENTS 8192
#define TEXT_MAX 24

typedef struct ev {
    uint64_t self;
    int kind;
    uint64_t ref;
    uint64_t now; /* herd_node_now when handled */
    size_t len;
    char text[TEXT_MAX];
} ev_t;

static ev_t g_ev[MAX_EVENTS];
static size_t g_nev;
static int g_terms;
static int g_cancel_rc[16];
static size_t g_ncancel;

static void reset(void)
{
    memset(g_ev, 0, sizeof(g_ev));
    g_nev = 0;
    g_terms = 0;
    g_ncancel = 0;
}

/* ---- the behaviour ------------------------------------------------------ */

typedef struct tstate {
    uint32_t per_ref_count[8]; /* for "cancel-at-3" */
} tstate_t;

static int tp_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self, (void)arg, (void)len;
    *state = calloc(1, sizeof(tstate_t));
    assert_non_null(*state);
    return 0;
}

static int tp_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    tstate_t *s = state;
    assert_true(g_nev < MAX_EVENTS);
    ev_t *e = &g_ev[g_nev++];
    e->self = herd_self(self).serial;
    e->kind = (int)msg->kind;
    e->ref = msg->ref;
    e->now = herd_node_now(herd_proc_node(self));
    e->len = msg->len;
    memcpy(e->text, msg->data, msg->len < TEXT_MAX - 1 ? msg->len : TEXT_MAX - 1);
    if (msg->len == 11 && memcmp(msg->data, "cancel-at-3", 11) == 0) {
        if (++s->per_ref_count[0] == 3) {
            assert_true(g_ncancel < 16);
            g_cancel_rc[g_ncancel++] = herd_cancel_timer(herd_proc_node(self), msg->ref);
        }
    }
    return 0;
}

static void tp_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    g_terms++;
    free(state);
}

static const herd_behaviour_t tp_beh = {
    .name = "tp",
    .init = tp_init,
    .handle_info = tp_info,
    .terminate = tp_terminate,
};

/* ---- helpers ------------------------------------------------------------ */

/* Nodes come from the shared support (support.h), with this file's seed. */
static herd_node_t *mknode(const char *name, const herd_clock_t *clock,
                           uint32_t mailbox_limit)
{
    herd_node_config_t cfg = {
        .name = name, .seed = 3, .clock = clock, .mailbox_limit = mailbox_limit};
    return ts_node_new(&cfg);
}

static herd_pid_t spawn_tp(herd_node_t *n)
{
    return ts_spawn(n, &tp_beh, NULL, 0);
}

static size_t count_ref(uint64_t ref)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nev; i++)
        k += g_ev[i].ref == ref;
    return k;
}

/* ---- real clock --------------------------------------------------------- */

static void test_timer_send_after_delivers_info(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n);
    uint64_t t0 = herd_node_now(n);
    uint64_t id = 0;
    assert_int_equal(herd_send_after(n, p, 300, "tick", 4, &id), 0);
    assert_true(id != 0);
    /* a run much shorter than the delay: nothing yet */
    assert_true(herd_node_run_for(n, 10) >= 0);
    assert_int_equal(g_nev, 0);
    /* a long enough run: exactly one delivery, then the run ends */
    assert_true(herd_node_run_for(n, 5000) >= 0);
    assert_int_equal(g_nev, 1);
    assert_int_equal(g_ev[0].kind, HERD_MSG_INFO);
    assert_int_equal(g_ev[0].ref, id);
    assert_int_equal(g_ev[0].self, p.serial);
    assert_int_equal(g_ev[0].len, 4);
    assert_string_equal(g_ev[0].text, "tick");
    assert_true(g_ev[0].now >= t0 + 300 - 1); /* not early, by the node's clock */
    assert_true(herd_node_run_for(n, 200) >= 0);
    assert_int_equal(g_nev, 1); /* one-shot */
    ts_node_free(n);
    assert_int_equal(g_terms, 1);
}

static void test_timer_ids_are_unique(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n);
    uint64_t ids[50];
    for (int i = 0; i < 50; i++) {
        assert_int_equal(herd_send_after(n, p, 1000 + (uint64_t)i, "x", 1, &ids[i]), 0);
        assert_true(ids[i] != 0);
        for (int j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
    }
    for (int i = 0; i < 50; i++)
        assert_int_equal(herd_cancel_timer(n, ids[i]), 0);
    ts_node_free(n);
}

static void test_timer_cancel_before_firing(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n);
    uint64_t a, b;
    assert_int_equal(herd_send_after(n, p, 50, "a", 1, &a), 0);
    assert_int_equal(herd_send_after(n, p, 60, "b", 1, &b), 0);
    assert_int_equal(herd_cancel_timer(n, a), 0);
    assert_int_equal(herd_cancel_timer(n, a), HERD_ENOENT); /* cancelled already */
    assert_true(herd_node_run_for(n, 400) >= 0);
    assert_int_equal(count_ref(a), 0);
    assert_int_equal(count_ref(b), 1);
    assert_int_equal(g_nev, 1);
    /* never armed */
    assert_int_equal(herd_cancel_timer(n, 987654321), HERD_ENOENT);
    assert_int_equal(herd_cancel_timer(n, 0), HERD_ENOENT);

    /* with nothing left armed the run returns early */
    assert_int_equal(herd_send_after(n, p, 100000, "far", 3, &a), 0);
    assert_int_equal(herd_cancel_timer(n, a), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    ts_node_free(n);
}

static void test_timer_cancel_after_firing(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n);
    uint64_t id;
    assert_int_equal(herd_send_after(n, p, 10, "x", 1, &id), 0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_int_equal(count_ref(id), 1);
    assert_int_equal(herd_cancel_timer(n, id), HERD_ENOENT);
    ts_node_free(n);
}

static void test_timer_interval_until_cancelled(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n);
    uint64_t id;
    uint64_t t0 = herd_node_now(n);
    assert_int_equal(herd_send_interval(n, p, 20, "iv", 2, &id), 0);
    for (int i = 0; i < 300 && count_ref(id) < 4; i++)
        assert_true(herd_node_run_for(n, 30) >= 0);
    assert_true(count_ref(id) >= 4);
    for (size_t i = 0; i < g_nev; i++) {
        assert_int_equal(g_ev[i].kind, HERD_MSG_INFO);
        assert_int_equal(g_ev[i].ref, id);
        assert_string_equal(g_ev[i].text, "iv");
        /* the k-th not before k intervals, by the node's clock (a late
         * delivery may be followed by a sooner one: the rate is fixed) */
        assert_true(g_ev[i].now + 1 >= t0 + 20 * (i + 1));
    }
    assert_int_equal(herd_cancel_timer(n, id), 0);
    size_t seen = g_nev;
    assert_true(herd_node_run_for(n, 150) >= 0);
    assert_int_equal(g_nev, seen);
    assert_int_equal(herd_cancel_timer(n, id), HERD_ENOENT);
    ts_node_free(n);
}

static void test_timer_interval_stops_when_target_exits(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n), q = spawn_tp(n);
    uint64_t id;
    assert_int_equal(herd_send_interval(n, p, 10, "iv", 2, &id), 0);
    for (int i = 0; i < 300 && count_ref(id) < 2; i++)
        assert_true(herd_node_run_for(n, 15) >= 0);
    assert_true(count_ref(id) >= 2);
    assert_int_equal(herd_exit(n, p, HERD_REASON_KILLED), 0);
    /* the interval ends with its target: the run has nothing left to wait for */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    assert_false(herd_is_alive(n, p));
    assert_int_equal(g_terms, 1);
    /* the node still works */
    uint64_t t;
    assert_int_equal(herd_send_after(n, q, 5, "q", 1, &t), 0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_int_equal(count_ref(t), 1);

    /* a long interval ends with its target too, not at its next tick */
    assert_int_equal(herd_send_interval(n, q, 60000, "long", 4, &id), 0);
    assert_int_equal(herd_exit(n, q, HERD_REASON_SHUTDOWN), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    assert_false(herd_is_alive(n, q));
    assert_int_equal(count_ref(id), 0);
    ts_node_free(n);
}

static void test_timer_to_exited_process_is_harmless(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n), q = spawn_tp(n);
    uint64_t tp1, tp2, tq;
    assert_int_equal(herd_send_after(n, p, 20, "p1", 2, &tp1), 0);
    assert_int_equal(herd_send_after(n, p, 40, "p2", 2, &tp2), 0);
    assert_int_equal(herd_send_after(n, q, 60, "q", 1, &tq), 0);
    assert_int_equal(herd_exit(n, p, HERD_REASON_KILLED), 0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_false(herd_is_alive(n, p));
    assert_int_equal(count_ref(tp1), 0);
    assert_int_equal(count_ref(tp2), 0);
    assert_int_equal(count_ref(tq), 1);
    assert_int_equal(g_nev, 1);
    /* the exited process's timers are no longer pending */
    assert_int_equal(herd_cancel_timer(n, tp1), HERD_ENOENT);
    ts_node_free(n);
    assert_int_equal(g_terms, 2);
}

static void test_timer_fire_in_deadline_order(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1", NULL, 0);
    herd_pid_t p = spawn_tp(n), q = spawn_tp(n);
    static const uint64_t delays[] = {90, 30, 150, 10, 60, 120, 45, 75};
    enum { N = sizeof(delays) / sizeof(delays[0]) };
    for (int i = 0; i < N; i++) {
        char t[8];
        int len = snprintf(t, sizeof(t), "%03u", (unsigned)delays[i]);
        uint64_t id;
        assert_int_equal(
            herd_send_after(n, i % 2 ? p : q, delays[i], t, (size_t)len, &id), 0);
    }
    assert_true(herd_node_run_for(n, 5000) >= 0);
    assert_int_equal(g_nev, N);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(g_ev[i - 1].text, g_ev[i].text) < 0);
    ts_node_free(n);
}

/* ---- virtual clock ------------------------------------------------------ */

static void test_timer_virtual_clock_fires_at_deadline(void **st)
{
    (void)st;
    reset();
    ts_vnow = 1000;
    herd_node_t *n = mknode("t1", &ts_vclock, 0);
    assert_int_equal(herd_node_now(n), 1000);
    herd_pid_t p = spawn_tp(n), q = spawn_tp(n);
    uint64_t a, b, c, iv;
    assert_int_equal(herd_send_after(n, p, 100, "a", 1, &a), 0); /* 1100 */
    assert_int_equal(herd_send_after(n, q, 250, "b", 1, &b), 0); /* 1250 */
    assert_int_equal(herd_send_after(n, p, 50, "c", 1, &c), 0);  /* 1050 */
    assert_int_equal(herd_send_interval(n, q, 300, "i", 1, &iv),
                     0); /* 1300, 1600, 1900 */
    assert_int_equal(herd_node_poll(n), 0);
    assert_int_equal(g_nev, 0);
    for (ts_vnow = 1001; ts_vnow <= 2000; ts_vnow++) {
        size_t before = g_nev;
        int handled = ts_drain(n);
        assert_int_equal((size_t)handled, g_nev - before);
    }
    assert_int_equal(g_nev, 6);
    static const char *const want_text[] = {"c", "a", "b", "i", "i", "i"};
    static const uint64_t want_now[] = {1050, 1100, 1250, 1300, 1600, 1900};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(g_ev[i].text, want_text[i]);
        assert_int_equal(g_ev[i].now, want_now[i]);
        assert_int_equal(g_ev[i].kind, HERD_MSG_INFO);
    }
    assert_int_equal(g_ev[0].ref, c);
    assert_int_equal(g_ev[1].ref, a);
    assert_int_equal(g_ev[2].ref, b);
    assert_int_equal(g_ev[3].ref, iv);
    assert_int_equal(g_ev[5].ref, iv);
    assert_int_equal(g_ev[0].self, p.serial);
    assert_int_equal(g_ev[2].self, q.serial);

    /* one-shots are gone, the interval is not */
    assert_int_equal(herd_cancel_timer(n, a), HERD_ENOENT);
    assert_int_equal(herd_cancel_timer(n, iv), 0);
    ts_vnow = 5000;
    assert_int_equal(ts_drain(n), 0);
    assert_int_equal(g_nev, 6);

    /* a jump past several deadlines fires them all, in deadline order */
    uint64_t x, y, z;
    assert_int_equal(herd_send_after(n, p, 30, "y", 1, &y), 0);
    assert_int_equal(herd_send_after(n, q, 10, "x", 1, &x), 0);
    assert_int_equal(herd_send_after(n, p, 40000, "z", 1, &z), 0);
    ts_vnow = 6000;
    assert_int_equal(herd_node_poll(n), 2);
    assert_int_equal(g_nev, 8);
    assert_int_equal(g_ev[6].ref, x);
    assert_int_equal(g_ev[7].ref, y);
    assert_int_equal(herd_cancel_timer(n, z), 0);
    ts_node_free(n);
}

/* A handler may cancel the interval timer whose message it is handling. */
static void test_timer_interval_cancelled_from_its_handler(void **st)
{
    (void)st;
    reset();
    ts_vnow = 0;
    herd_node_t *n = mknode("t1", &ts_vclock, 0);
    herd_pid_t p = spawn_tp(n);
    uint64_t iv;
    assert_int_equal(herd_send_interval(n, p, 10, "cancel-at-3", 11, &iv), 0);
    for (ts_vnow = 1; ts_vnow <= 200; ts_vnow++)
        ts_drain(n);
    assert_int_equal(count_ref(iv), 3);
    assert_int_equal(g_ncancel, 1);
    assert_int_equal(g_cancel_rc[0], 0);
    assert_int_equal(g_ev[0].now, 10);
    assert_int_equal(g_ev[1].now, 20);
    assert_int_equal(g_ev[2].now, 30);
    assert_int_equal(herd_cancel_timer(n, iv), HERD_ENOENT);
    ts_node_free(n);
}

/* Timer messages are accepted when armed and fire into a full mailbox. */
static void test_timer_not_counted_against_mailbox_limit(void **st)
{
    (void)st;
    reset();
    ts_vnow = 100;
    herd_node_t *n = mknode("t1", &ts_vclock, 2);
    herd_pid_t p = spawn_tp(n);
    assert_int_equal(herd_node_send(n, p, "m0", 2), 0);
    assert_int_equal(herd_node_send(n, p, "m1", 2), 0);
    assert_int_equal(herd_node_send(n, p, "m2", 2), HERD_EFULL);
    uint64_t t[3];
    for (int i = 0; i < 3; i++) {
        char txt[4];
        snprintf(txt, sizeof(txt), "t%d", i);
        assert_int_equal(herd_send_after(n, p, 10 + (uint64_t)i, txt, 2, &t[i]), 0);
    }
    ts_vnow = 200; /* all three are due; the two sends are still queued */
    assert_int_equal(ts_drain(n), 5);
    assert_int_equal(g_nev, 5);
    assert_string_equal(g_ev[0].text, "m0");
    assert_string_equal(g_ev[1].text, "m1");
    assert_string_equal(g_ev[2].text, "t0");
    assert_string_equal(g_ev[3].text, "t1");
    assert_string_equal(g_ev[4].text, "t2");
    ts_node_free(n);
}

/* Many timers with random deadlines, a third cancelled before firing: each
 * of the others fires once, exactly at its deadline, in deadline order. */
static void test_timer_many_random_deadlines(void **st)
{
    (void)st;
    reset();
    enum { N = 3000, PROCS = 4, SPAN = 500 };
    ts_vnow = 50;
    herd_node_t *n = mknode("t1", &ts_vclock, 0);
    herd_pid_t ps[PROCS];
    for (int i = 0; i < PROCS; i++)
        ps[i] = spawn_tp(n);
    static uint64_t ids[N], deadline[N];
    static int cancelled[N];
    uint64_t rng = 0x1234567;
    size_t expect = 0;
    for (int i = 0; i < N; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t d = 1 + (rng >> 33) % SPAN;
        deadline[i] = ts_vnow + d;
        char txt[TEXT_MAX];
        int len = snprintf(txt, sizeof(txt), "%d", i);
        assert_int_equal(herd_send_after(n, ps[i % PROCS], d, txt, (size_t)len, &ids[i]),
                         0);
    }
    for (int i = 0; i < N; i++) {
        cancelled[i] = (i % 3) == 1;
        if (cancelled[i])
            assert_int_equal(herd_cancel_timer(n, ids[i]), 0);
        else
            expect++;
    }
    for (ts_vnow = 51; ts_vnow <= 50 + SPAN + 5; ts_vnow++)
        ts_drain(n);
    assert_int_equal(g_nev, expect);
    uint64_t last = 0;
    for (size_t k = 0; k < g_nev; k++) {
        int i = atoi(g_ev[k].text);
        assert_true(i >= 0 && i < N);
        assert_false(cancelled[i]);
        assert_int_equal(g_ev[k].ref, ids[i]);
        assert_int_equal(g_ev[k].now, deadline[i]);
        assert_true(g_ev[k].now >= last);
        last = g_ev[k].now;
        cancelled[i] = 2; /* seen: a second delivery would fail above */
    }
    ts_node_free(n);
    assert_int_equal(g_terms, PROCS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_timer_send_after_delivers_info, ts_teardown),
        cmocka_unit_test_teardown(test_timer_ids_are_unique, ts_teardown),
        cmocka_unit_test_teardown(test_timer_cancel_before_firing, ts_teardown),
        cmocka_unit_test_teardown(test_timer_cancel_after_firing, ts_teardown),
        cmocka_unit_test_teardown(test_timer_interval_until_cancelled, ts_teardown),
        cmocka_unit_test_teardown(test_timer_interval_stops_when_target_exits,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_timer_to_exited_process_is_harmless, ts_teardown),
        cmocka_unit_test_teardown(test_timer_fire_in_deadline_order, ts_teardown),
        cmocka_unit_test_teardown(test_timer_virtual_clock_fires_at_deadline,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_timer_interval_cancelled_from_its_handler,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_timer_not_counted_against_mailbox_limit,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_timer_many_random_deadlines, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
