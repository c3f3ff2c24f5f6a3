/*
 * test_herd_control.c - a node's control sockets as the public API serves
 * them (tools/herd_control.h), on a simulated two-node cluster
 * (sim/regsim.h), requests handed to each socket directly (control_serve):
 *
 * - two sockets serve one node side by side, each with its own state: a
 *   name holder that socket A's `register` started is stopped by A's
 *   `unregister` only; B's unregister removes the name and leaves A's
 *   holder running (it is not B's);
 * - a `call` that waits when its socket stops ends unanswered, and nothing
 *   is touched after the stop (ASan watches); the other socket keeps
 *   answering calls, with the counter's own error codes as EAPP;
 * - the default address holds the cluster's name, and bad arguments are
 *   refused;
 * - `names` with `where` lists only the names whose metadata holds every
 *   pair (with a prefix too), page by page, leaving out a name whose
 *   metadata changed since the listing began; a bad `where` is refused.
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

#include "counter.h"
#include "counter_cluster.h"
#include "herd_control.h"
#include "herd_dsup.h"
#include "herd_registry.h"
#include "node_control.h"
#include "regsim.h"

#define WAIT_MS 20000

/* One request's answer, as control_serve hands it over. */
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

/* Serve `req` on `ctl` and run the cluster until it is answered. */
static json_t *ask(regsim_t *rs, herd_control_t *ctl, const char *req)
{
    answer_t a = {0};
    control_serve(node_control_socket(ctl), req, strlen(req), on_answer, &a);
    uint64_t end = regsim_now(rs) + WAIT_MS;
    while (a.count == 0 && regsim_now(rs) < end)
        assert_int_equal(regsim_step(rs), 0);
    if (a.count != 1)
        fail_msg("no answer to %s", req);
    assert_non_null(a.doc);
    return a.doc;
}

static int is_ok(const json_t *doc)
{
    return json_is_true(json_object_get(doc, "ok"));
}

static const char *error_of(const json_t *doc)
{
    return json_string_value(json_object_get(doc, "error"));
}

static json_t *result_of(json_t *doc)
{
    return json_object_get(doc, "result");
}

/* A control address of this test run's own (runs may overlap). */
static const char *addr(char *buf, size_t cap, char which)
{
    snprintf(buf, cap, "ipc:///tmp/herd-test-ctl-%d-%c.ctl", (int)getpid(), which);
    return buf;
}

static regsim_t *cluster_up(void)
{
    regsim_config_t cfg = {.seed = 7, .nodes = 2, .hooks = &counter_cluster_hooks};
    regsim_t *rs;
    assert_int_equal(regsim_new(&cfg, &rs), 0);
    assert_int_equal(regsim_start(rs, 0), 0);
    assert_int_equal(regsim_start(rs, 1), 0);
    assert_int_equal(regsim_run_until_members(rs, regsim_now(rs) + 5000), 0);
    return rs;
}

/* A two-node cluster and two control sockets, a and b, for its first node. */
typedef struct pair {
    regsim_t *rs;
    herd_node_t *n;
    herd_control_t *a, *b;
    char pa[96], pb[96];
} pair_t;

static void pair_up(pair_t *p, char which_a, char which_b)
{
    p->rs = cluster_up();
    p->n = regsim_node(p->rs, 0);
    assert_int_equal(herd_control_start(p->n, addr(p->pa, sizeof(p->pa), which_a), &p->a), 0);
    assert_int_equal(herd_control_start(p->n, addr(p->pb, sizeof(p->pb), which_b), &p->b), 0);
}

/* b stops (a stopped already), then the cluster goes. */
static void pair_down(pair_t *p)
{
    herd_control_stop(p->b);
    regsim_free(p->rs);
    unlink(p->pa + 6);
    unlink(p->pb + 6);
}

static void test_herd_control_two_sockets_keep_their_own_holders(void **state)
{
    (void)state;
    pair_t p;
    pair_up(&p, 'a', 'b');
    regsim_t *rs = p.rs;
    herd_node_t *n = p.n;
    herd_control_t *a = p.a, *b = p.b;

    json_t *r = ask(rs, a, "{\"cmd\":\"register\",\"args\":{\"name\":\"held-by-a\"}}");
    assert_true(is_ok(r));
    json_decref(r);
    r = ask(rs, a, "{\"cmd\":\"register\",\"args\":{\"name\":\"also-a\"}}");
    assert_true(is_ok(r));
    json_decref(r);
    size_t procs = herd_node_process_count(n);

    /* B removes the name, but the holder is A's: it keeps running */
    r = ask(rs, b, "{\"cmd\":\"unregister\",\"args\":{\"name\":\"held-by-a\"}}");
    assert_true(is_ok(r));
    assert_true(json_is_false(json_object_get(result_of(r), "stopped")));
    json_decref(r);
    regsim_run_for(rs, 100);
    assert_int_equal(herd_node_process_count(n), procs);

    /* A's own unregister stops its holder */
    r = ask(rs, a, "{\"cmd\":\"unregister\",\"args\":{\"name\":\"also-a\"}}");
    assert_true(is_ok(r));
    assert_true(json_is_true(json_object_get(result_of(r), "stopped")));
    json_decref(r);
    regsim_run_for(rs, 100);
    assert_int_equal(herd_node_process_count(n), procs - 1);

    /* A stops: its remaining holder keeps running alone, and B still serves */
    herd_control_stop(a);
    regsim_run_for(rs, 2500); /* past a holder's check of its name */
    r = ask(rs, b, "{\"cmd\":\"members\"}");
    assert_true(is_ok(r));
    json_decref(r);
    pair_down(&p);
}

static void test_herd_control_stopped_socket_leaves_its_calls(void **state)
{
    (void)state;
    pair_t p;
    pair_up(&p, 'c', 'd');
    regsim_t *rs = p.rs;
    herd_control_t *a = p.a, *b = p.b;
    json_t *r = ask(rs, b, "{\"cmd\":\"start\",\"args\":{\"service\":\"counter\",\"name\":\"c\"}}");
    assert_true(is_ok(r));
    json_decref(r);

    /* a call on A that waits (the cluster does not run), then A stops */
    answer_t waiting = {0};
    const char *incr = "{\"cmd\":\"call\",\"args\":{\"name\":\"c\",\"request\":\"incr\"}}";
    control_serve(node_control_socket(a), incr, strlen(incr), on_answer, &waiting);
    herd_control_stop(a);
    regsim_run_for(rs, 500); /* its reply comes to nobody */
    assert_int_equal(waiting.count, 0);

    /* B answers, the counter counted A's call too, and its own errors are
     * the service's (EAPP with the counter's code), not herd's */
    r = ask(rs, b, "{\"cmd\":\"call\",\"args\":{\"name\":\"c\",\"request\":\"get\"}}");
    assert_true(is_ok(r));
    assert_int_equal(json_integer_value(json_object_get(result_of(r), "value")), 1);
    json_decref(r);
    r = ask(rs, b, "{\"cmd\":\"call\",\"args\":{\"name\":\"c\",\"request\":\"nonsense\"}}");
    assert_false(is_ok(r));
    assert_string_equal(error_of(r), "EAPP");
    assert_int_equal(json_integer_value(json_object_get(r, "app_code")), COUNTER_EBADCMD);
    json_decref(r);
    pair_down(&p);
}

static void test_herd_control_default_address(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(herd_control_default_address("prod", "n1", out, sizeof(out)), 0);
    assert_string_equal(out, "ipc:///tmp/herd-prod-n1.ctl");
    assert_int_equal(herd_control_default_address(NULL, "n1", out, sizeof(out)), 0);
    assert_string_equal(out, "ipc:///tmp/herd-herd-n1.ctl");
    /* two clusters on one host: two paths */
    char other[128];
    assert_int_equal(herd_control_default_address("test", "n1", other, sizeof(other)), 0);
    assert_string_not_equal(out, other);
    strcpy(out, "unchanged");
    assert_int_equal(herd_control_default_address("prod", "n1", out, 10), HERD_ERANGE);
    assert_string_equal(out, "unchanged");
    assert_int_equal(herd_control_default_address("prod", NULL, out, sizeof(out)), HERD_EINVAL);
    assert_int_equal(herd_control_default_address("prod", "", out, sizeof(out)), HERD_EINVAL);
    assert_int_equal(herd_control_default_address("a/b", "n1", out, sizeof(out)), HERD_EINVAL);
    assert_int_equal(herd_control_default_address("prod", "../n1", out, sizeof(out)),
                     HERD_EINVAL);
    herd_control_stop(NULL); /* a no-op */
}

/* The names of a `names` answer (a list, or a page's items), in order, as
 * "a,b,c". */
static void names_in(json_t *list, char *out, size_t cap)
{
    if (json_is_object(list))
        list = json_object_get(list, "items");
    size_t i, used = 0;
    json_t *o;
    out[0] = '\0';
    json_array_foreach(list, i, o)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "",
                                 json_string_value(json_object_get(o, "name")));
}

static void expect_names(regsim_t *rs, herd_control_t *ctl, const char *req, const char *want)
{
    json_t *r = ask(rs, ctl, req);
    if (!is_ok(r))
        fail_msg("%s: refused: %s", req, error_of(r));
    char got[512];
    names_in(result_of(r), got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s: got '%s', want '%s'", req, got, want);
    json_decref(r);
}

static void expect_refused(regsim_t *rs, herd_control_t *ctl, const char *req, const char *why)
{
    json_t *r = ask(rs, ctl, req);
    if (is_ok(r) || strcmp(error_of(r), "EINVAL") != 0)
        fail_msg("%s: want EINVAL, got %s", req, is_ok(r) ? "ok" : error_of(r));
    const char *msg = json_string_value(json_object_get(r, "message"));
    if (msg == NULL || strstr(msg, why) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", req, msg ? msg : "", why);
    json_decref(r);
}

static void test_herd_control_names_where(void **state)
{
    (void)state;
    pair_t p;
    pair_up(&p, 'e', 'f');
    regsim_t *rs = p.rs;
    herd_control_t *a = p.a;
    static const char *const regs[] = {
        "{\"cmd\":\"register\",\"args\":{\"name\":\"w1\","
        "\"meta\":{\"zone\":\"eu\",\"role\":\"web\"}}}",
        "{\"cmd\":\"register\",\"args\":{\"name\":\"w2\","
        "\"meta\":{\"zone\":\"us\",\"role\":\"web\"}}}",
        "{\"cmd\":\"register\",\"args\":{\"name\":\"d1\","
        "\"meta\":{\"zone\":\"eu\",\"role\":\"db\"}}}",
        "{\"cmd\":\"register\",\"args\":{\"name\":\"w3\","
        "\"meta\":{\"zone\":\"eu\",\"role\":\"web\"}}}",
        "{\"cmd\":\"register\",\"args\":{\"name\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        json_t *r = ask(rs, a, regs[i]);
        assert_true(is_ok(r));
        json_decref(r);
    }
    expect_names(rs, a, "{\"cmd\":\"names\"}", "d1,w1,w2,w3,x");
    expect_names(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":{\"zone\":\"eu\"}}}",
                 "d1,w1,w3");
    expect_names(rs, a,
                 "{\"cmd\":\"names\",\"args\":{\"where\":{\"zone\":\"eu\",\"role\":\"web\"}}}",
                 "w1,w3");
    expect_names(rs, a,
                 "{\"cmd\":\"names\",\"args\":{\"prefix\":\"d\",\"where\":{\"zone\":\"eu\"}}}",
                 "d1");
    expect_names(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":{\"zone\":\"asia\"}}}", "");
    expect_names(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":{}}}", "d1,w1,w2,w3,x");
    expect_names(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":null}}", "d1,w1,w2,w3,x");

    /* page by page: a name whose metadata no longer holds is left out */
    const char *first = "{\"cmd\":\"names\",\"args\":{\"where\":{\"zone\":\"eu\"},\"limit\":1}}";
    json_t *r = ask(rs, a, first);
    assert_true(is_ok(r));
    assert_int_equal(json_integer_value(json_object_get(result_of(r), "total")), 3);
    char got[512], req[512];
    names_in(result_of(r), got, sizeof(got));
    assert_string_equal(got, "d1");
    herd_meta_t us;
    memset(&us, 0, sizeof(us));
    assert_int_equal(herd_meta_set(&us, "zone", "us"), 0);
    assert_int_equal(herd_update_meta(p.n, "w1", &us), 0);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"names\",\"args\":{\"where\":{\"zone\":\"eu\"},\"limit\":5,"
             "\"cursor\":\"%s\"}}",
             json_string_value(json_object_get(result_of(r), "cursor")));
    json_decref(r);
    expect_names(rs, a, req, "w3");

    /* bad where */
    expect_refused(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":\"zone=eu\"}}",
                   "where must be an object");
    expect_refused(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":{\"zone\":1}}}",
                   "is not a string");
    expect_refused(rs, a,
                   "{\"cmd\":\"names\",\"args\":{\"where\":{"
                   "\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":\"v\"}}}",
                   "at most 8 keys of 1-31 bytes");
    expect_refused(rs, a, "{\"cmd\":\"names\",\"args\":{\"where\":{\"\":\"v\"}}}",
                   "at most 8 keys of 1-31 bytes");
    expect_refused(rs, a, "{\"cmd\":\"names\",\"args\":{\"prefix\":7}}",
                   "prefix must be a string");
    herd_control_stop(a);
    pair_down(&p);
}

int main(void)
{
    herd_log_set_level(HERD_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_herd_control_two_sockets_keep_their_own_holders),
        cmocka_unit_test(test_herd_control_stopped_socket_leaves_its_calls),
        cmocka_unit_test(test_herd_control_default_address),
        cmocka_unit_test(test_herd_control_names_where),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
