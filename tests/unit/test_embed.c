/*
 * test_embed.c - what a program that embeds a node uses from outside
 * processes (issue 14, "Embedding"):
 * - herd_node_post from another thread: every post runs on the loop
 *   thread, in order, never inside the post call; HERD_EFULL past
 *   HERD_POST_MAX; posts queued when the node is freed are told
 *   HERD_ESHUTDOWN, and a post after the free is refused with it;
 *   herd_node_run waits for posts and ends at uv_stop;
 * - herd_node_call_async and herd_node_call_name_async: a local callee, a
 *   callee on another node, a timeout, a dead pid and an unknown name (the
 *   same errors as the blocking forms, at once, the callback never called),
 *   the callback never inside the call, the reply taken by the callback, a
 *   call still waiting when the node is freed (HERD_ESHUTDOWN);
 * - HERD_EDEADLK from every blocking call made from the loop: a timer
 *   callback, a post, an async call's callback, a process handler, and a
 *   timer of a loop shared with another node;
 * - herd_node_shutdown: in a cluster of two, the children of the node that
 *   shuts down move to the other with their counters' values, it leaves,
 *   the callback says 0; a child nobody else can run: HERD_ETIMEDOUT at
 *   the deadline, and it leaves anyway; alone: HERD_ENOTCONN; a node in no
 *   cluster: 0; freed midway: HERD_ESHUTDOWN; a second shutdown refused.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counter.h"
#include "herd_dsup.h"
#include "herd_registry.h"
#include "herd_ring.h"
#include "support.h"

#define SECRET "test-embed-secret-0123456789abcdef"
#define WAIT_MS 20000u

static const ts_timing_t CALM = {100, 1500, 3000, 60000};
static const herd_dsup_config_t DCFG = {
    .reconcile_ms = 300, .handoff_timeout_ms = 5000, .forward_grace_ms = 5000};

/* ---- an echo process ------------------------------------------------------------- */

/* What the echo's handler got from blocking calls it tried. */
static int g_inproc_rc[4];

/* "silent": no answer; "block": try the blocking calls, answer; else
 * "echo:" and the request. */
static int echo_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    herd_node_t *n = herd_proc_node(self);
    if (msg->len == 6 && memcmp(msg->data, "silent", 6) == 0)
        return 0;
    if (msg->len == 5 && memcmp(msg->data, "block", 5) == 0) {
        herd_reply_t r;
        g_inproc_rc[0] = herd_node_run_for(n, 1);
        g_inproc_rc[1] = herd_node_run(n);
        g_inproc_rc[2] = herd_node_call(n, herd_self(self), "x", 1, 100, &r);
        g_inproc_rc[3] = herd_node_call_name(n, "nobody", "x", 1, 100, &r);
    }
    char out[64];
    int len = snprintf(out, sizeof(out), "echo:%.*s", (int)msg->len, (const char *)msg->data);
    return herd_reply(n, from, 0, out, (size_t)len);
}

static const herd_behaviour_t echo_behaviour = {.name = "echo", .handle_call = echo_call};

/* ---- posts ----------------------------------------------------------------------- */

#define POSTS 2000

static struct {
    pthread_t loop_thread;
    size_t ran, cancelled, off_thread, out_of_order, bad_status;
    uintptr_t next;
} g_post;

static void on_post(void *data, int status)
{
    if (!pthread_equal(pthread_self(), g_post.loop_thread))
        g_post.off_thread++;
    if (status == HERD_ESHUTDOWN) {
        g_post.cancelled++;
        return;
    }
    if (status != 0)
        g_post.bad_status++;
    if ((uintptr_t)data != g_post.next++)
        g_post.out_of_order++;
    g_post.ran++;
}

typedef struct poster {
    herd_node_t *node;
    int failed; /* posts refused */
    int first_error;
} poster_t;

static void *post_thread(void *arg)
{
    poster_t *p = arg;
    for (uintptr_t i = 0; i < POSTS; i++) {
        int rc = herd_node_post(p->node, on_post, (void *)i);
        if (rc && p->failed++ == 0)
            p->first_error = rc;
    }
    return NULL;
}

static void reset_posts(void)
{
    memset(&g_post, 0, sizeof(g_post));
    g_post.loop_thread = pthread_self();
}

static void test_embed_post_from_thread_runs_in_order_on_loop(void **state)
{
    (void)state;
    reset_posts();
    herd_node_t *n = ts_node("post", NULL, 1);
    /* posted from the loop thread: never run inside the call */
    assert_int_equal(herd_node_post(n, on_post, (void *)0), 0);
    assert_int_equal(g_post.ran, 0);
    TS_WAIT_UNTIL(g_post.ran == 1, 5000);
    g_post.next = 0;
    poster_t p = {.node = n};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
    /* the loop runs while the thread posts */
    TS_WAIT_UNTIL(g_post.ran == 1 + POSTS, 10000);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.failed, 0);
    assert_int_equal(g_post.off_thread, 0);
    assert_int_equal(g_post.out_of_order, 0);
    assert_int_equal(g_post.bad_status, 0);
    assert_int_equal(g_post.cancelled, 0);
    assert_int_equal(herd_node_post(n, NULL, NULL), HERD_EINVAL);
    ts_node_free(n);
}

static void test_embed_post_full_then_freed_then_refused(void **state)
{
    (void)state;
    reset_posts();
    herd_node_t *n = ts_node("full", NULL, 2);
    for (uintptr_t i = 0; i < HERD_POST_MAX; i++)
        if (herd_node_post(n, on_post, (void *)i) != 0)
            fail_msg("post %zu refused", (size_t)i);
    assert_int_equal(herd_node_post(n, on_post, NULL), HERD_EFULL);
    assert_int_equal(g_post.ran, 0); /* the loop has not run */
    ts_node_free(n);
    /* each queued post was told, on this (the loop's) thread */
    assert_int_equal(g_post.cancelled, HERD_POST_MAX);
    assert_int_equal(g_post.ran, 0);
    assert_int_equal(g_post.off_thread, 0);
    /* after the free: refused, from this thread and another */
    assert_int_equal(herd_node_post(n, on_post, NULL), HERD_ESHUTDOWN);
    poster_t p = {.node = n};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.failed, POSTS);
    assert_int_equal(p.first_error, HERD_ESHUTDOWN);
    assert_int_equal(g_post.cancelled, HERD_POST_MAX); /* none of those was queued */
}

static void post_stop(void *data, int status)
{
    herd_node_t *n = data;
    if (status == 0) {
        g_post.ran++;
        uv_stop(herd_node_loop(n));
    }
}

static void *stop_thread(void *arg)
{
    struct timespec ts = {0, 100 * 1000000L}; /* the loop is waiting by then */
    nanosleep(&ts, NULL);
    herd_node_post(arg, post_stop, arg);
    return NULL;
}

static void on_guard(uv_timer_t *t)
{
    uv_stop(t->loop); /* herd_node_run never ended by the post: the test fails */
}

static void test_embed_run_waits_for_posts_until_stopped(void **state)
{
    (void)state;
    reset_posts();
    herd_node_t *n = ts_node("run", NULL, 3);
    uv_timer_t guard;
    uv_timer_init(herd_node_loop(n), &guard);
    uv_timer_start(&guard, on_guard, 5000, 0);
    uv_unref((uv_handle_t *)&guard); /* only the post may keep the loop */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_thread, n), 0);
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(herd_node_run(n), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(g_post.ran, 1);
    assert_true(ts_mono_ms() - t0 < 4000);
    uv_close((uv_handle_t *)&guard, NULL);
    ts_node_free(n);
}

/* ---- asynchronous calls --------------------------------------------------------- */

typedef struct call_rec {
    int calls, rc, status;
    uint8_t *data; /* taken from the reply */
    size_t len;
    int in_loop, nested_rc; /* herd_node_in_loop, a blocking call from the callback */
    herd_node_t *node;
} call_rec_t;

static void on_reply(void *data, int rc, herd_reply_t *reply)
{
    if (ts_detached())
        return;
    call_rec_t *r = data;
    r->calls++;
    r->rc = rc;
    r->status = reply->status;
    r->data = reply->data; /* taken: herd does not free it */
    r->len = reply->len;
    reply->data = NULL;
    if (r->node) {
        herd_reply_t x;
        r->in_loop = herd_node_in_loop(r->node);
        r->nested_rc = herd_node_call(r->node, HERD_PID_NONE, "x", 1, 10, &x);
    }
}

static void assert_reply(call_rec_t *r, const char *text)
{
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->len, strlen(text));
    assert_memory_equal(r->data, text, r->len);
    free(r->data);
    r->data = NULL;
}

static void test_embed_async_call_local_timeout_and_errors(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("acall", NULL, 4);
    herd_pid_t echo = ts_spawn(n, &echo_behaviour, NULL, 0);
    call_rec_t r = {.node = n};
    assert_int_equal(herd_node_call_async(n, echo, "hi", 2, 5000, on_reply, &r), 0);
    assert_int_equal(r.calls, 0); /* never inside the call */
    TS_WAIT_UNTIL(r.calls == 1, 5000);
    assert_reply(&r, "echo:hi");
    assert_int_equal(r.in_loop, 1); /* the callback runs on the loop... */
    assert_int_equal(r.nested_rc, HERD_EDEADLK); /* ...and cannot block it */

    /* no answer: the timeout, as herd_node_call reports it */
    call_rec_t t = {0};
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(herd_node_call_async(n, echo, "silent", 6, 100, on_reply, &t), 0);
    TS_WAIT_UNTIL(t.calls == 1, 5000);
    assert_true(ts_mono_ms() - t0 >= 90);
    assert_int_equal(t.rc, HERD_ETIMEDOUT);
    assert_int_equal(t.status, HERD_ETIMEDOUT);
    assert_null(t.data);
    herd_reply_t sync;
    assert_int_equal(herd_node_call(n, echo, "silent", 6, 50, &sync), HERD_ETIMEDOUT);

    /* errors at once, the callback never called */
    call_rec_t e = {0};
    herd_pid_t dead = echo;
    dead.serial += 1000;
    assert_int_equal(herd_node_call_async(n, dead, "x", 1, 100, on_reply, &e), HERD_ENOPROC);
    assert_int_equal(herd_node_call(n, dead, "x", 1, 100, &sync), HERD_ENOPROC);
    assert_int_equal(herd_node_call_async(n, echo, "x", 1, 100, NULL, &e), HERD_EINVAL);
    ts_run_for(n, 50);
    assert_int_equal(e.calls, 0);
    ts_node_free(n);
}

static void test_embed_async_call_by_name(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("aname", NULL, 5);
    assert_int_equal(herd_registry_start(n), 0);
    herd_pid_t echo = ts_spawn(n, &echo_behaviour, NULL, 0);
    assert_int_equal(herd_register(n, "echo1", echo, NULL), 0);
    call_rec_t r = {0};
    assert_int_equal(herd_node_call_name_async(n, "echo1", "yo", 2, 5000, on_reply, &r), 0);
    assert_int_equal(r.calls, 0);
    TS_WAIT_UNTIL(r.calls == 1, 5000);
    assert_reply(&r, "echo:yo");
    /* an unknown name: what the blocking form says, at once */
    call_rec_t e = {0};
    herd_reply_t sync;
    assert_int_equal(herd_node_call_name(n, "nobody", "x", 1, 100, &sync), HERD_ENOENT);
    assert_int_equal(herd_node_call_name_async(n, "nobody", "x", 1, 100, on_reply, &e),
                     HERD_ENOENT);
    assert_int_equal(herd_node_call_name_async(n, "echo1", "x", 1, 100, NULL, &e), HERD_EINVAL);
    ts_run_for(n, 50);
    assert_int_equal(e.calls, 0);
    ts_node_free(n);
}

static void test_embed_async_call_pending_at_free(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("afree", NULL, 6);
    herd_pid_t echo = ts_spawn(n, &echo_behaviour, NULL, 0);
    call_rec_t r = {0}, done = {0};
    assert_int_equal(herd_node_call_async(n, echo, "silent", 6, 60000, on_reply, &r), 0);
    assert_int_equal(herd_node_call_async(n, echo, "now", 3, 60000, on_reply, &done), 0);
    ts_run_for(n, 20);
    assert_int_equal(r.calls, 0);
    assert_reply(&done, "echo:now");
    ts_node_free(n);
    assert_int_equal(r.calls, 1); /* told inside the free */
    assert_int_equal(r.rc, HERD_ESHUTDOWN);
    assert_null(r.data);
}

static void test_embed_async_call_remote(void **state)
{
    (void)state;
    herd_node_config_t ca = {.name = "ra", .loop = &ts_loop};
    herd_node_config_t cb = {.name = "rb", .loop = &ts_loop};
    herd_node_t *a = ts_cluster_add(&ca), *b = ts_cluster_add(&cb);
    ts_cluster_join(a, &CALM, NULL, 0);
    ts_cluster_join(b, &CALM, &a, 1);
    herd_node_t *both[] = {a, b};
    TS_WAIT_UNTIL(ts_cluster_all_up(both, 2), WAIT_MS);
    herd_pid_t echo = ts_spawn(b, &echo_behaviour, NULL, 0);
    call_rec_t r = {.node = a};
    assert_int_equal(herd_node_call_async(a, echo, "far", 3, 10000, on_reply, &r), 0);
    assert_int_equal(r.calls, 0);
    TS_WAIT_UNTIL(r.calls == 1, WAIT_MS);
    assert_reply(&r, "echo:far");
    assert_int_equal(r.nested_rc, HERD_EDEADLK);
    /* a remote callee that does not answer: the timeout */
    call_rec_t t = {0};
    assert_int_equal(herd_node_call_async(a, echo, "silent", 6, 200, on_reply, &t), 0);
    TS_WAIT_UNTIL(t.calls == 1, WAIT_MS);
    assert_int_equal(t.rc, HERD_ETIMEDOUT);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- HERD_EDEADLK from the loop ---------------------------------------------------- */

typedef struct deadlk {
    herd_node_t *node, *other; /* other: a node sharing the loop, or NULL */
    herd_pid_t callee;
    int ran, in_loop;
    int rc[8];
} deadlk_t;

/* Every blocking call, from wherever this runs. */
static void try_blocking(deadlk_t *d)
{
    herd_node_t *n = d->node;
    herd_reply_t r;
    herd_start_result_t res;
    herd_child_req_t req = {.name = "kid", .service = "counter"};
    d->ran++;
    d->in_loop = herd_node_in_loop(n);
    d->rc[0] = herd_node_call(n, d->callee, "x", 1, 100, &r);
    d->rc[1] = herd_node_call_name(n, "echo1", "x", 1, 100, &r);
    d->rc[2] = herd_node_run_for(n, 1);
    d->rc[3] = herd_node_run(n);
    d->rc[4] = herd_start_child(n, &req, 100, &res);
    d->rc[5] = herd_terminate_child(n, "kid", 100);
    d->rc[6] = d->other ? herd_node_call(d->other, d->callee, "x", 1, 100, &r) : HERD_EDEADLK;
    d->rc[7] = d->other ? herd_node_in_loop(d->other) ? HERD_EDEADLK : 0 : HERD_EDEADLK;
}

static void assert_refused(const deadlk_t *d)
{
    assert_int_equal(d->ran, 1);
    assert_int_equal(d->in_loop, 1);
    for (int i = 0; i < 8; i++)
        if (d->rc[i] != HERD_EDEADLK)
            fail_msg("blocking call %d: %s, not EDEADLK", i, herd_err_name(d->rc[i]));
}

static void deadlk_on_timer(uv_timer_t *t)
{
    try_blocking(t->data);
}

static void deadlk_on_post(void *data, int status)
{
    if (status == 0)
        try_blocking(data);
}

/* A node with a registry, a supervisor and the counter service; in a
 * cluster (joined through `seed`, or of its own) when `cluster` is set:
 * the cluster first, so that the supervisor hooks into it. */
static herd_node_t *dsup_node_in(const char *name, uv_loop_t *loop, int cluster,
                                 herd_node_t *seed)
{
    herd_node_config_t nc = {.name = name, .loop = loop};
    herd_node_t *n = cluster ? ts_cluster_add(&nc) : ts_node_new(&nc);
    if (cluster)
        ts_cluster_join(n, &CALM, seed ? &seed : NULL, seed ? 1 : 0);
    assert_int_equal(herd_registry_start(n), 0);
    assert_int_equal(herd_dsup_start(n, &DCFG), 0);
    assert_int_equal(herd_service_register(n, "counter", &counter_behaviour), 0);
    return n;
}

static herd_node_t *dsup_node(const char *name, uv_loop_t *loop)
{
    return dsup_node_in(name, loop, 0, NULL);
}

static void test_embed_deadlk_from_timer_post_and_handler(void **state)
{
    (void)state;
    herd_node_t *n = dsup_node("dl", NULL);
    herd_pid_t echo = ts_spawn(n, &echo_behaviour, NULL, 0);
    assert_int_equal(herd_register(n, "echo1", echo, NULL), 0);
    assert_int_equal(herd_node_in_loop(n), 0);

    /* a timer of the program's own on the node's loop */
    deadlk_t d = {.node = n, .callee = echo};
    uv_timer_t t;
    uv_timer_init(herd_node_loop(n), &t);
    t.data = &d;
    uv_timer_start(&t, deadlk_on_timer, 1, 0);
    TS_WAIT_UNTIL(d.ran == 1, 5000);
    assert_refused(&d);
    uv_close((uv_handle_t *)&t, NULL);

    /* a post */
    deadlk_t p = {.node = n, .callee = echo};
    assert_int_equal(herd_node_post(n, deadlk_on_post, &p), 0);
    TS_WAIT_UNTIL(p.ran == 1, 5000);
    assert_refused(&p);

    /* a process handler */
    herd_reply_t r;
    memset(g_inproc_rc, 0, sizeof(g_inproc_rc));
    assert_int_equal(herd_node_call(n, echo, "block", 5, 5000, &r), 0);
    assert_int_equal(r.status, 0);
    herd_reply_free(&r);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g_inproc_rc[i], HERD_EDEADLK);

    /* nothing was started by the refused calls; from outside they work */
    herd_child_counts_t cc;
    assert_int_equal(herd_count_children(n, &cc), 0);
    assert_int_equal(cc.specs, 0);
    assert_int_equal(herd_node_in_loop(n), 0);
    assert_int_equal(herd_node_call_name(n, "echo1", "out", 3, 5000, &r), 0);
    assert_int_equal(r.len, 8);
    herd_reply_free(&r);
    ts_node_free(n);
}

/* Two nodes on one loop: running a's runs b's too. */
static void test_embed_deadlk_on_a_shared_loop(void **state)
{
    (void)state;
    herd_node_t *a = dsup_node("sa", &ts_loop), *b = dsup_node("sb", &ts_loop);
    herd_pid_t echo = ts_spawn(b, &echo_behaviour, NULL, 0);
    deadlk_t d = {.node = a, .other = b, .callee = echo};
    uv_timer_t t;
    uv_timer_init(&ts_loop, &t);
    t.data = &d;
    uv_timer_start(&t, deadlk_on_timer, 1, 0);
    TS_WAIT_UNTIL(d.ran == 1, 5000);
    assert_refused(&d);
    uv_close((uv_handle_t *)&t, NULL);
    herd_reply_t r;
    assert_int_equal(herd_node_call(b, echo, "ok", 2, 5000, &r), 0);
    herd_reply_free(&r);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- herd_node_shutdown ------------------------------------------------------------ */

typedef struct shut_rec {
    int calls, status;
} shut_rec_t;

static void on_shutdown(void *data, int status)
{
    if (ts_detached())
        return;
    shut_rec_t *s = data;
    s->calls++;
    s->status = status;
}

static herd_node_t *cnode(const char *name, herd_node_t *seed)
{
    return dsup_node_in(name, &ts_loop, 1, seed);
}

static int rings_of_two(herd_node_t *a, herd_node_t *b)
{
    const herd_ring_t *ra = herd_cluster_ring(a), *rb = herd_cluster_ring(b);
    return ra && rb && herd_ring_member_count(ra) == 2 && herd_ring_member_count(rb) == 2;
}

static void form_two(herd_node_t **a, herd_node_t **b)
{
    *a = cnode("a", NULL);
    *b = cnode("b", *a);
    herd_node_t *both[] = {*a, *b};
    TS_WAIT_UNTIL(ts_cluster_all_up(both, 2) && rings_of_two(*a, *b), WAIT_MS);
}

static int local_children(herd_node_t *n)
{
    herd_child_counts_t cc;
    assert_int_equal(herd_count_children(n, &cc), 0);
    return (int)cc.local;
}

static long long get_value(herd_node_t *n, const char *name, herd_pid_t *pid)
{
    herd_reply_t r;
    assert_int_equal(herd_whereis(n, name, pid, NULL), 0);
    int rc = herd_node_call_name(n, name, "get", 3, 10000, &r);
    if (rc != 0 || r.status != 0)
        fail_msg("get %s: %s / %s", name, herd_err_name(rc), herd_err_name(r.status));
    char text[32];
    snprintf(text, sizeof(text), "%.*s", (int)r.len, (const char *)r.data);
    herd_reply_free(&r);
    return strtoll(text, NULL, 10);
}

#define KIDS 16

static int all_on(herd_node_t *n, uint64_t id)
{
    for (int i = 0; i < KIDS; i++) {
        char name[16];
        herd_pid_t pid;
        snprintf(name, sizeof(name), "k%d", i);
        if (herd_whereis(n, name, &pid, NULL) != 0 || pid.node != id)
            return 0;
    }
    return 1;
}

static void test_embed_shutdown_moves_children_with_state(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    form_two(&a, &b);
    for (int i = 0; i < KIDS; i++) {
        char name[16], cmd[16];
        snprintf(name, sizeof(name), "k%d", i);
        snprintf(cmd, sizeof(cmd), "incr %d", i + 1);
        herd_child_req_t req = {.name = name, .service = "counter"};
        herd_start_result_t res;
        assert_int_equal(herd_start_child(a, &req, WAIT_MS, &res), 0);
        herd_reply_t r;
        assert_int_equal(herd_node_call_name(a, name, cmd, strlen(cmd), 10000, &r), 0);
        assert_int_equal(r.status, 0);
        herd_reply_free(&r);
    }
    int on_b = local_children(b);
    assert_true(on_b > 0); /* 16 names: all on a has odds 2^-16 */

    shut_rec_t s = {0};
    assert_int_equal(herd_node_shutdown(b, 20000, NULL, &s), HERD_EINVAL);
    assert_int_equal(herd_node_shutdown(b, 20000, on_shutdown, &s), 0);
    assert_int_equal(s.calls, 0); /* never inside the call */
    assert_int_equal(herd_node_shutdown(b, 20000, on_shutdown, &s), HERD_ESHUTDOWN);
    TS_WAIT_UNTIL(s.calls == 1, 30000);
    assert_int_equal(s.status, 0);
    assert_int_equal(local_children(b), 0);
    assert_int_equal(herd_node_shutdown_now(b), HERD_ENOENT); /* nothing waits */
    TS_WAIT_UNTIL(ts_cluster_member_state(a, "b") == HERD_MEMBER_LEFT, WAIT_MS);
    uint64_t id_a = herd_node_id_of("a");
    TS_WAIT_UNTIL(all_on(a, id_a), WAIT_MS);
    ts_node_free(b);
    for (int i = 0; i < KIDS; i++) { /* every value came along */
        char name[16];
        herd_pid_t pid;
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(get_value(a, name, &pid), i + 1);
        assert_int_equal(pid.node, id_a);
    }
    assert_int_equal(local_children(a), KIDS);
    ts_node_free(a);
}

/* A child of a service only b provides cannot move: the deadline passes,
 * b leaves anyway. */
static void test_embed_shutdown_timeout_leaves_anyway(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    form_two(&a, &b);
    assert_int_equal(herd_service_register(b, "only_b", &counter_behaviour), 0);
    herd_child_req_t req = {.name = "lonely", .service = "only_b"};
    herd_start_result_t res;
    TS_WAIT_UNTIL(herd_cluster_member_provides(a, herd_node_id_of("b"), "only_b") == 1,
                  WAIT_MS);
    assert_int_equal(herd_start_child(a, &req, WAIT_MS, &res), 0);
    assert_int_equal(res.pid.node, herd_node_id_of("b"));
    shut_rec_t s = {0};
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(herd_node_shutdown(b, 400, on_shutdown, &s), 0);
    TS_WAIT_UNTIL(s.calls == 1, WAIT_MS);
    uint64_t took = ts_mono_ms() - t0;
    assert_int_equal(s.status, HERD_ETIMEDOUT);
    assert_true(took >= 400);
    assert_int_equal(local_children(b), 1); /* it did not move */
    TS_WAIT_UNTIL(ts_cluster_member_state(a, "b") == HERD_MEMBER_LEFT, WAIT_MS);
    ts_node_free(b);
    ts_node_free(a);
}

static void test_embed_shutdown_alone_unclustered_and_freed(void **state)
{
    (void)state;
    /* alone in its cluster with a child: nobody can take it */
    herd_node_t *a = cnode("alone", NULL);
    herd_child_req_t req = {.name = "k", .service = "counter"};
    herd_start_result_t res;
    assert_int_equal(herd_start_child(a, &req, WAIT_MS, &res), 0);
    shut_rec_t s = {0};
    assert_int_equal(herd_node_shutdown(a, 20000, on_shutdown, &s), 0);
    TS_WAIT_UNTIL(s.calls == 1, 5000);
    assert_int_equal(s.status, HERD_ENOTCONN);
    ts_node_free(a);

    /* in no cluster, nothing to move: 0 */
    herd_node_t *n = dsup_node("solo", &ts_loop);
    shut_rec_t u = {0};
    assert_int_equal(herd_node_shutdown(n, 20000, on_shutdown, &u), 0);
    assert_int_equal(u.calls, 0);
    TS_WAIT_UNTIL(u.calls == 1, 5000);
    assert_int_equal(u.status, 0);
    ts_node_free(n);

    /* freed midway: told inside the free */
    herd_node_t *f = dsup_node("freed", &ts_loop);
    assert_int_equal(herd_start_child(f, &req, WAIT_MS, &res), 0);
    shut_rec_t v = {0};
    assert_int_equal(herd_node_shutdown(f, 20000, on_shutdown, &v), 0);
    assert_int_equal(herd_node_shutdown_now(f), 0); /* and cut short */
    assert_int_equal(herd_node_shutdown_now(f), HERD_ENOENT);
    ts_node_free(f);
    assert_int_equal(v.calls, 1);
    assert_int_equal(v.status, HERD_ESHUTDOWN);
}

int main(void)
{
    ts_cluster_init("test_embed", SECRET);
    herd_log_set_level(HERD_LOG_ERROR);
#define T(f) cmocka_unit_test_setup_teardown(f, ts_cluster_setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_embed_post_from_thread_runs_in_order_on_loop),
        T(test_embed_post_full_then_freed_then_refused),
        T(test_embed_run_waits_for_posts_until_stopped),
        T(test_embed_async_call_local_timeout_and_errors),
        T(test_embed_async_call_by_name),
        T(test_embed_async_call_pending_at_free),
        T(test_embed_async_call_remote),
        T(test_embed_deadlk_from_timer_post_and_handler),
        T(test_embed_deadlk_on_a_shared_loop),
        T(test_embed_shutdown_moves_children_with_state),
        T(test_embed_shutdown_timeout_leaves_anyway),
        T(test_embed_shutdown_alone_unclustered_and_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
