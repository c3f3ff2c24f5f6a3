/*
 * test_control_events.c - a control socket's `events` command
 * (tools/control_events.h), on node1 of a simulated two-node cluster
 * (sim/regsim.h: waits are timed on its virtual clock), requests handed to
 * the socket directly (control_serve):
 *
 * - the events after `since`, rendered as the other commands print names
 *   and pids, asked again alike; since 0 is "from now";
 * - a request with nothing to answer waits, and the next event answers it;
 *   with none it is answered empty once wait_ms passed, no sooner;
 * - a ring that overflowed says how many events after `since` it lost,
 *   and hands the rest out a bounded page at a time ("more");
 * - an incarnation not the node's (it restarted) reads from the oldest held;
 *   a since past the last event is "from now";
 * - an event a subscriber of herd's own tier emits while being told another
 *   arrives first: the waiting request gets both, in seq order;
 * - bad arguments are refused (EINVAL) saying which; the 65th waiting
 *   request is refused (EBUSY);
 * - a socket that stops answers its waiting requests, and its timing
 *   process ends (ASan watches for the rest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "counter_cluster.h"
#include "herd_control.h"
#include "herd_registry.h"
#include "node_control.h"
#include "regsim.h"

#define WAIT_MS 20000

typedef struct answer {
    int count;
    json_t *doc;
} answer_t;

static void on_answer(void *data, const char *text, size_t len)
{
    answer_t *a = data;
    a->count++;
    json_decref(a->doc);
    a->doc = json_loadb(text, len, 0, NULL);
}

/* node1 of a two-node cluster and one control socket for it. */
typedef struct one {
    regsim_t *rs;
    herd_node_t *n;
    herd_control_t *ctl;
    char path[96];
} one_t;

static void one_up(one_t *o, char which)
{
    regsim_config_t cfg = {.seed = 11, .nodes = 2, .hooks = &counter_cluster_hooks};
    assert_int_equal(regsim_new(&cfg, &o->rs), 0);
    assert_int_equal(regsim_start(o->rs, 0), 0);
    assert_int_equal(regsim_start(o->rs, 1), 0);
    assert_int_equal(regsim_run_until_members(o->rs, regsim_now(o->rs) + 5000), 0);
    o->n = regsim_node(o->rs, 0);
    snprintf(o->path, sizeof(o->path), "ipc:///tmp/herd-test-ev-%d-%c.ctl", (int)getpid(), which);
    assert_int_equal(herd_control_start(o->n, o->path, &o->ctl), 0);
}

static void one_down(one_t *o)
{
    herd_control_stop(o->ctl);
    regsim_free(o->rs);
    unlink(o->path + 6);
}

static void serve(one_t *o, const char *req, answer_t *a)
{
    control_serve(node_control_socket(o->ctl), req, strlen(req), on_answer, a);
}

/* Run the cluster until `a` is answered (WAIT_MS of virtual time at most). */
static void wait_answer(one_t *o, answer_t *a)
{
    uint64_t end = regsim_now(o->rs) + WAIT_MS;
    while (a->count == 0 && regsim_now(o->rs) < end)
        assert_int_equal(regsim_step(o->rs), 0);
    assert_int_equal(a->count, 1);
    assert_non_null(a->doc);
}

static json_t *ask(one_t *o, const char *req)
{
    answer_t a = {0};
    serve(o, req, &a);
    wait_answer(o, &a);
    return a.doc;
}

/* An `events` request for the events after `since` of o's node's start
 * (its incarnation given), or from now (since 0 without incarnation). */
static void events_req(one_t *o, char *buf, size_t cap, uint64_t since, int wait_ms)
{
    snprintf(buf, cap,
             "{\"cmd\":\"events\",\"args\":{\"since\":%llu,\"wait_ms\":%d,"
             "\"incarnation\":%lld}}",
             (unsigned long long)since, wait_ms, (long long)herd_node_incarnation(o->n));
}

static json_t *result_of_ok(json_t *doc)
{
    if (!json_is_true(json_object_get(doc, "ok")))
        fail_msg("events refused: %s", json_string_value(json_object_get(doc, "message")));
    json_t *r = json_incref(json_object_get(doc, "result"));
    json_decref(doc);
    return r;
}

/* The result of an `events` that must succeed (a new reference). */
static json_t *events(one_t *o, uint64_t since, int wait_ms)
{
    char req[200];
    events_req(o, req, sizeof(req), since, wait_ms);
    return result_of_ok(ask(o, req));
}

/* since 0 without incarnation: from now. */
static json_t *events_now(one_t *o, int wait_ms)
{
    char req[160];
    snprintf(req, sizeof(req), "{\"cmd\":\"events\",\"args\":{\"since\":0,\"wait_ms\":%d}}",
             wait_ms);
    return result_of_ok(ask(o, req));
}

static uint64_t u64_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return (uint64_t)json_integer_value(v);
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static size_t count_of(json_t *r)
{
    return json_array_size(json_object_get(r, "events"));
}

static json_t *event_at(json_t *r, size_t i)
{
    return json_array_get(json_object_get(r, "events"), i);
}

/* The socket's current seq, with at least one event seen (a name). The
 * socket keeps events from its first `events` request on: one comes first. */
static uint64_t current_seq(one_t *o)
{
    json_t *r = events_now(o, 1);
    json_decref(r);
    r = ask(o, "{\"cmd\":\"register\",\"args\":{\"name\":\"seq-mark\"}}");
    json_decref(r);
    r = events_now(o, 100);
    uint64_t s = u64_of(r, "seq");
    assert_true(s > 0);
    json_decref(r);
    return s;
}

/* A process on node1 to register names for. */
static herd_pid_t a_process(one_t *o)
{
    int k = regsim_spawn(o->rs, 0);
    assert_true(k >= 0);
    return regsim_proc(o->rs, k)->pid;
}

static void test_control_events_after_since(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'a');
    json_t *r = events_now(&o, 50); /* from now: none seen yet, so it waits */
    uint64_t s0 = u64_of(r, "seq");
    assert_int_equal(count_of(r), 0);
    assert_int_equal(u64_of(r, "incarnation"), herd_node_incarnation(o.n));
    json_decref(r);

    json_t *reg = ask(&o, "{\"cmd\":\"register\",\"args\":{\"name\":\"ev-a\"}}");
    const char *pid = str_of(json_object_get(reg, "result"), "pid");
    assert_non_null(pid);

    r = events(&o, s0, 50);
    assert_true(count_of(r) >= 1);
    json_t *e = event_at(r, 0);
    assert_string_equal(str_of(e, "kind"), "name_registered");
    assert_string_equal(str_of(e, "name"), "ev-a");
    assert_string_equal(str_of(e, "pid"), pid); /* as register and whereis print it */
    assert_string_equal(str_of(e, "node"), "node1");
    assert_true(u64_of(e, "seq") > s0);
    assert_non_null(str_of(e, "time"));
    assert_int_equal(strlen(str_of(e, "time")), strlen("2026-12-07T09:30:01.123Z"));
    assert_int_equal(u64_of(r, "lost"), 0);
    assert_true(json_is_false(json_object_get(r, "more")));
    uint64_t s1 = u64_of(r, "seq");
    assert_int_equal(s1, u64_of(event_at(r, count_of(r) - 1), "seq"));
    json_decref(r);

    /* asked again alike: the same events */
    r = events(&o, s0, 50);
    assert_string_equal(str_of(event_at(r, 0), "name"), "ev-a");
    json_decref(r);

    /* with the incarnation, since 0 is the start: every event held */
    r = events(&o, 0, 50);
    assert_string_equal(str_of(event_at(r, count_of(r) - 1), "name"), "ev-a");
    json_decref(r);

    /* from now: no events, the current seq, at once */
    uint64_t t0 = regsim_now(o.rs);
    r = events_now(&o, 5000);
    assert_int_equal(count_of(r), 0);
    assert_int_equal(u64_of(r, "seq"), s1);
    assert_true(regsim_now(o.rs) - t0 < 100);
    json_decref(r);

    /* unregistered: its event with the same pid */
    json_decref(ask(&o, "{\"cmd\":\"unregister\",\"args\":{\"name\":\"ev-a\"}}"));
    r = events(&o, s1, 50);
    assert_string_equal(str_of(event_at(r, 0), "kind"), "name_unregistered");
    assert_string_equal(str_of(event_at(r, 0), "pid"), pid);
    json_decref(r);
    json_decref(reg);
    one_down(&o);
}

static void test_control_events_wait_for_an_event(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'b');
    uint64_t s = current_seq(&o);
    herd_pid_t p = a_process(&o);
    char req[200];
    events_req(&o, req, sizeof(req), s, 5000);
    answer_t a = {0};
    uint64_t t0 = regsim_now(o.rs);
    serve(&o, req, &a);
    regsim_run_for(o.rs, 200);
    assert_int_equal(a.count, 0); /* nothing yet: it waits */

    assert_int_equal(herd_register(o.n, "ev-b", p, NULL), 0);
    assert_int_equal(a.count, 1); /* the event answers it */
    assert_true(regsim_now(o.rs) - t0 < 5000);
    json_t *r = json_object_get(a.doc, "result");
    assert_int_equal(count_of(r), 1);
    assert_string_equal(str_of(event_at(r, 0), "name"), "ev-b");
    assert_int_equal(u64_of(r, "seq"), s + 1);
    json_decref(a.doc);
    regsim_run_for(o.rs, 6000); /* its timer, cancelled, answers nothing more */
    one_down(&o);
}

static void test_control_events_wait_ends_empty(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'c');
    uint64_t s = current_seq(&o);
    char req[200];
    events_req(&o, req, sizeof(req), s, 300);
    answer_t a = {0};
    uint64_t t0 = regsim_now(o.rs);
    serve(&o, req, &a);
    wait_answer(&o, &a);
    uint64_t took = regsim_now(o.rs) - t0;
    assert_true(took >= 300);
    assert_true(took < 1000);
    json_t *r = json_object_get(a.doc, "result");
    assert_true(json_is_true(json_object_get(a.doc, "ok")));
    assert_int_equal(count_of(r), 0);
    assert_int_equal(u64_of(r, "seq"), s);
    assert_int_equal(u64_of(r, "lost"), 0);
    json_decref(a.doc);
    one_down(&o);
}

static void test_control_events_lost_when_overflowed(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'd');
    uint64_t s = current_seq(&o);
    herd_pid_t p = a_process(&o);
    const unsigned extra = 104, total = CONTROL_EVENTS_KEEP + extra;
    for (unsigned i = 0; i < total; i++) {
        char name[32];
        snprintf(name, sizeof(name), "many-%u", i);
        assert_int_equal(herd_register(o.n, name, p, NULL), 0);
    }
    json_t *r = events(&o, s, 50);
    assert_int_equal(u64_of(r, "lost"), extra); /* told, not skipped */
    /* at most 256 an answer, and about 32 KiB of them */
    assert_true(count_of(r) > 100 && count_of(r) <= CONTROL_EVENTS_ANSWER_MAX);
    char *text = json_dumps(json_object_get(r, "events"), JSON_COMPACT);
    assert_true(strlen(text) < CONTROL_EVENTS_ANSWER_BYTES + 1024);
    free(text);
    assert_true(json_is_true(json_object_get(r, "more")));
    assert_int_equal(u64_of(event_at(r, 0), "seq"), s + extra + 1);
    assert_string_equal(str_of(event_at(r, 0), "name"), "many-104");
    size_t got = count_of(r);
    uint64_t next = u64_of(r, "seq");
    json_decref(r);
    for (int pages = 0; pages < 100; pages++) { /* the rest, page by page, in order */
        r = events(&o, next, 50);
        assert_int_equal(u64_of(r, "lost"), 0);
        assert_int_equal(u64_of(event_at(r, 0), "seq"), next + 1);
        got += count_of(r);
        next = u64_of(r, "seq");
        int more = json_is_true(json_object_get(r, "more"));
        json_decref(r);
        if (!more)
            break;
    }
    assert_int_equal(got, CONTROL_EVENTS_KEEP);
    assert_int_equal(next, s + total);
    one_down(&o);
}

static void test_control_events_restart_and_stale_since(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'e');
    uint64_t s = current_seq(&o);
    char req[200];
    /* another incarnation's since: from the oldest held, this start's */
    snprintf(req, sizeof(req),
             "{\"cmd\":\"events\",\"args\":{\"since\":999999,\"incarnation\":12345}}");
    json_t *doc = ask(&o, req);
    json_t *r = json_object_get(doc, "result");
    assert_true(count_of(r) >= 1);
    assert_string_equal(str_of(event_at(r, count_of(r) - 1), "name"), "seq-mark");
    assert_int_equal(u64_of(r, "seq"), s);
    json_decref(doc);
    /* this incarnation: as any since */
    snprintf(req, sizeof(req), "{\"cmd\":\"events\",\"args\":{\"since\":%llu,\"wait_ms\":20,"
             "\"incarnation\":%lld}}", (unsigned long long)(s - 1),
             (long long)herd_node_incarnation(o.n));
    doc = ask(&o, req);
    assert_int_equal(count_of(json_object_get(doc, "result")), 1);
    json_decref(doc);
    /* a since past the last event: from now */
    r = events(&o, s + 1000, 5000);
    assert_int_equal(count_of(r), 0);
    assert_int_equal(u64_of(r, "seq"), s);
    json_decref(r);
    one_down(&o);
}

/* A subscriber of herd's own tier that emits group_left while told
 * group_joined: its event is told everywhere before the one being told. */
static void nested_emit(void *data, const herd_event_t *e)
{
    herd_node_t *n = data;
    herd_event_t left = {.kind = HERD_EV_GROUP_LEFT, .name = e->name, .pid = e->pid};
    herd_event_emit(n, &left);
}

static void test_control_events_out_of_order_arrivals(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'f');
    uint64_t s = current_seq(&o);
    assert_int_equal(herd_events_subscribe_internal(o.n, HERD_EV_BIT(HERD_EV_GROUP_JOINED),
                                                    nested_emit, o.n),
                     0);
    char req[200];
    events_req(&o, req, sizeof(req), s, 5000);
    answer_t a = {0};
    serve(&o, req, &a);
    assert_int_equal(a.count, 0);
    herd_pid_t p = a_process(&o);
    herd_event_t joined = {.kind = HERD_EV_GROUP_JOINED, .name = "g1", .pid = p};
    herd_event_emit(o.n, &joined);
    assert_int_equal(a.count, 1); /* not before both were told */
    json_t *r = json_object_get(a.doc, "result");
    assert_int_equal(count_of(r), 2);
    assert_string_equal(str_of(event_at(r, 0), "kind"), "group_joined");
    assert_int_equal(u64_of(event_at(r, 0), "seq"), s + 1);
    assert_string_equal(str_of(event_at(r, 1), "kind"), "group_left");
    assert_int_equal(u64_of(event_at(r, 1), "seq"), s + 2);
    assert_string_equal(str_of(event_at(r, 1), "reason"), "normal");
    assert_int_equal(u64_of(r, "seq"), s + 2);
    json_decref(a.doc);
    herd_events_unsubscribe_internal(o.n, nested_emit, o.n);
    one_down(&o);
}

static void expect_refused(one_t *o, const char *req, const char *code, const char *word)
{
    json_t *doc = ask(o, req);
    assert_true(json_is_false(json_object_get(doc, "ok")));
    assert_string_equal(str_of(doc, "error"), code);
    if (strstr(str_of(doc, "message"), word) == NULL)
        fail_msg("%s: message '%s' does not name %s", req, str_of(doc, "message"), word);
    json_decref(doc);
}

static void test_control_events_bad_arguments(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'g');
    static const struct {
        const char *args, *word;
    } bad[] = {
        {"{\"since\":-1}", "since"},          {"{\"since\":\"5\"}", "since"},
        {"{\"since\":1.5}", "since"},         {"{\"since\":null}", "since"},
        {"{\"wait_ms\":0}", "wait_ms"},       {"{\"wait_ms\":10001}", "wait_ms"},
        {"{\"wait_ms\":\"2000\"}", "wait_ms"}, {"{\"wait_ms\":-5}", "wait_ms"},
        {"{\"incarnation\":\"x\"}", "incarnation"}, {"[1,2]", "object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[200];
        snprintf(req, sizeof(req), "{\"cmd\":\"events\",\"args\":%s}", bad[i].args);
        expect_refused(&o, req, "EINVAL", bad[i].word);
    }
    /* the bounds themselves are taken; no args at all is "from now" */
    json_decref(events_now(&o, 1));
    json_decref(events_now(&o, CONTROL_EVENTS_WAIT_MAX_MS));
    json_t *doc = ask(&o, "{\"cmd\":\"events\"}");
    assert_true(json_is_true(json_object_get(doc, "ok")));
    json_decref(doc);
    one_down(&o);
}

static void test_control_events_watchers_bounded(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'h');
    uint64_t s = current_seq(&o);
    char req[200];
    events_req(&o, req, sizeof(req), s, 5000);
    answer_t a[CONTROL_EVENTS_WATCHERS_MAX] = {{0}};
    for (unsigned i = 0; i < CONTROL_EVENTS_WATCHERS_MAX; i++)
        serve(&o, req, &a[i]);
    expect_refused(&o, req, "EBUSY", "wait");
    herd_pid_t p = a_process(&o);
    assert_int_equal(herd_register(o.n, "wake", p, NULL), 0);
    for (unsigned i = 0; i < CONTROL_EVENTS_WATCHERS_MAX; i++) {
        assert_int_equal(a[i].count, 1);
        assert_string_equal(str_of(event_at(json_object_get(a[i].doc, "result"), 0), "name"),
                            "wake");
        json_decref(a[i].doc);
    }
    one_down(&o);
}

static void test_control_events_stop_answers_waiting(void **state)
{
    (void)state;
    one_t o;
    one_up(&o, 'i');
    size_t procs = herd_node_process_count(o.n);
    uint64_t s = current_seq(&o); /* its first request waited: the timing process */
    assert_int_equal(herd_node_process_count(o.n), procs + 2); /* and seq-mark's holder */
    char req[200];
    events_req(&o, req, sizeof(req), s, 5000);
    answer_t a = {0}, b = {0};
    serve(&o, req, &a);
    serve(&o, req, &b);
    assert_int_equal(herd_node_process_count(o.n), procs + 2); /* one timing process */
    herd_control_stop(o.ctl);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 1);
    assert_false(json_is_true(json_object_get(a.doc, "ok")));
    assert_string_equal(json_string_value(json_object_get(a.doc, "error")), "ESHUTDOWN");
    json_decref(a.doc);
    json_decref(b.doc);
    regsim_run_for(o.rs, 6000); /* the timers went with the process: nothing fires */
    assert_int_equal(herd_node_process_count(o.n), procs + 1); /* seq-mark's holder stays */
    regsim_free(o.rs);
    unlink(o.path + 6);
}

int main(void)
{
    herd_log_set_level(HERD_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_events_after_since),
        cmocka_unit_test(test_control_events_wait_for_an_event),
        cmocka_unit_test(test_control_events_wait_ends_empty),
        cmocka_unit_test(test_control_events_lost_when_overflowed),
        cmocka_unit_test(test_control_events_restart_and_stale_since),
        cmocka_unit_test(test_control_events_out_of_order_arrivals),
        cmocka_unit_test(test_control_events_bad_arguments),
        cmocka_unit_test(test_control_events_watchers_bounded),
        cmocka_unit_test(test_control_events_stop_answers_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
