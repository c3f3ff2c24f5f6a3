/*
 * test_cluster_replicas.c - what ringctl shows of replicated state, with
 * real herdd processes on 127.0.0.1 (issue 13: `start --replicas`,
 * `children`, `whereis`, `stats`):
 *
 * Three nodes. A counter started with the service's default (herdd's
 * counter keeps 2 copies) lists, on its node, copies 2 and one replica node
 * that acknowledged the version its last incr put; one started with
 * `--replicas 3` lists two replica nodes; `--replicas 9` is refused (by
 * ringctl, exit 2, and by the node's control socket, EINVAL) with the range
 * in the message, and nothing is started. `whereis` names the replica set,
 * `stats` counts the puts and acknowledgements. Then the node running the
 * first counter is killed with SIGKILL: both counters answer again with
 * their counts, and the one asking for 3 copies of 2 live nodes is marked
 * under-replicated, in JSON and in the table.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_harness.h"

#define JOIN_MS 15000
#define SETTLE_MS 30000
#define RINGCTL_MS 20000

static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "1000", NULL};

/* ---- asking through ringctl -------------------------------------------------------- */

/* ringctl --node N's control ARGS...: the exit code; r holds the output. */
static int ringctl(cluster_t *c, const cl_node_t *n, cl_run_t *r, const char *const *args)
{
    const char *argv[24] = {"--node", n->control};
    size_t k = 2;
    for (size_t i = 0; args[i] && k < 23; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    cl_run_prog(c, RINGCTL_PATH, argv, RINGCTL_MS, r);
    return r->status;
}
#define RINGCTL(c, n, r, ...) ringctl((c), (n), (r), (const char *const[]){__VA_ARGS__, NULL})

/* The JSON document ringctl printed (it must have exited 0). */
static json_t *ringctl_json(cluster_t *c, const cl_node_t *n, cl_run_t *r,
                            const char *const *args)
{
    int rc = ringctl(c, n, r, args);
    if (rc != 0)
        fail_msg("ringctl %s %s: exit %d\n%s%s", args[0], args[1] ? args[1] : "", rc, r->out,
                 r->err);
    json_error_t e;
    json_t *doc = json_loads(r->out, 0, &e);
    if (doc == NULL)
        fail_msg("ringctl %s: not JSON (%s): %s", args[0], e.text, r->out);
    return doc;
}
#define RINGCTL_JSON(c, n, r, ...) \
    ringctl_json((c), (n), (r), (const char *const[]){"--json", __VA_ARGS__, NULL})

static cl_node_t *node_named(cl_node_t *const *nodes, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (name && strcmp(nodes[i]->name, name) == 0)
            return nodes[i];
    fail_msg("no node is named '%s'", name ? name : "(null)");
    return NULL;
}

/* `name`'s item in `ringctl --json children` asked at n (a new reference),
 * or NULL when n does not list it. */
static json_t *child_item(cluster_t *c, const cl_node_t *n, const char *name)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    json_t *list = RINGCTL_JSON(c, n, r, "children");
    json_t *found = NULL, *o;
    size_t i;
    json_array_foreach(list, i, o)
        if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            found = json_incref(o);
    json_decref(list);
    free(r);
    return found;
}

static long long int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("'%s' is not a whole number in %s", key, json_dumps(o, JSON_COMPACT));
    return (long long)json_integer_value(v);
}

/* ---- the checks -------------------------------------------------------------------- */

/* Poll n's children until `name` runs there, asks `copies` copies, has
 * `set_size` replica nodes (none of them n), each of which acknowledged
 * the version put, that version's replies went, and it is marked
 * under-replicated or not as `under` says; returns the item. */
static json_t *wait_replicated(cluster_t *c, const cl_node_t *n, const char *name,
                               long long copies, size_t set_size, int under)
{
    uint64_t deadline = cl_now_ms() + SETTLE_MS;
    char last[2000] = "";
    for (;;) {
        json_t *o = child_item(c, n, name);
        json_t *set = o ? json_object_get(o, "replicas") : NULL;
        int ok = o && strcmp(json_string_value(json_object_get(o, "node")), n->name) == 0 &&
                 json_is_integer(json_object_get(o, "copies")) &&
                 int_of(o, "copies") == copies && json_array_size(set) == set_size &&
                 json_is_boolean(json_object_get(o, "under_replicated")) &&
                 json_is_true(json_object_get(o, "under_replicated")) == under &&
                 (copies == 1 || (int_of(o, "version") >= 1 &&
                                  int_of(o, "released") == int_of(o, "version")));
        size_t i;
        json_t *m;
        json_array_foreach(set, i, m)
        {
            const char *node = json_string_value(json_object_get(m, "node"));
            ok = ok && node && strcmp(node, n->name) != 0 &&
                 int_of(m, "acked") == int_of(o, "version");
        }
        if (ok)
            return o;
        if (o) {
            char *text = json_dumps(o, JSON_COMPACT);
            snprintf(last, sizeof(last), "%s", text ? text : "?");
            free(text);
            json_decref(o);
        }
        if (cl_now_ms() > deadline)
            fail_msg("%s on %s: not %lld copies with %zu acknowledging replicas%s within "
                     "%d ms; last: %s",
                     name, n->name, copies, set_size, under ? " (under-replicated)" : "",
                     SETTLE_MS, last[0] ? last : "not listed");
        cl_sleep_ms(100);
    }
}

/* The replica set `whereis` names (JSON) equals `want` (owner first). */
static void check_whereis(cluster_t *c, const cl_node_t *n, const char *name, json_t *want)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    json_t *w = RINGCTL_JSON(c, n, r, "whereis", name);
    if (!json_equal(json_object_get(w, "replica_nodes"), want))
        fail_msg("whereis %s: replica_nodes %s, want %s", name,
                 json_dumps(json_object_get(w, "replica_nodes"), JSON_COMPACT),
                 json_dumps(want, JSON_COMPACT));
    json_decref(w);
    /* the table: "replica set: owner X, replicas Y,Z" */
    char line[300];
    int len = snprintf(line, sizeof(line), "replica set: owner %s, replicas ",
                       json_string_value(json_array_get(want, 0)));
    for (size_t i = 1; i < json_array_size(want); i++)
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%s", i > 1 ? "," : "",
                        json_string_value(json_array_get(want, i)));
    assert_int_equal(RINGCTL(c, n, r, "whereis", name), 0);
    if (strstr(r->out, line) == NULL)
        fail_msg("whereis %s: the table lacks '%s':\n%s", name, line, r->out);
    free(r);
}

/* `--replicas 9` is refused by ringctl and by the control socket, naming
 * the range, and nothing is started anywhere. */
static void check_refused(cluster_t *c, cl_node_t *const *n, size_t count)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    if (RINGCTL(c, n[0], r, "start", "counter", "r-nine", "--replicas", "9") != 2 ||
        strstr(r->err, "--replicas wants a whole number 1-5") == NULL)
        fail_msg("start --replicas 9: exit %d, want 2 naming 1-5: %s", r->status, r->err);
    const char *bad[] = {"9", "0", "-1", "\"2\"", "2.5", "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char code[32] = "", why[600] = "";
        json_error_t e;
        json_t *v = json_loads(bad[i], JSON_DECODE_ANY, &e);
        assert_non_null(v);
        json_t *args = json_pack("{s:s, s:s, s:o}", "service", "counter", "name", "r-nine",
                                 "replicas", v);
        json_t *res = cl_ask_args(n[1], "start", args, code, sizeof(code), why, sizeof(why));
        if (res != NULL || strcmp(code, "EINVAL") != 0 ||
            strstr(why, "replicas must be a whole number 1..5") == NULL)
            fail_msg("start with replicas %s: %s %s, want EINVAL naming 1..5", bad[i],
                     res ? "answered" : code, why);
    }
    cl_sleep_ms(300); /* a spec written by mistake would have spread by now */
    for (size_t i = 0; i < count; i++) {
        json_t *o = child_item(c, n[i], "r-nine");
        if (o != NULL)
            fail_msg("%s lists r-nine after every start of it was refused", n[i]->name);
        assert_int_equal(RINGCTL(c, n[i], r, "whereis", "r-nine"), 1);
    }
    free(r);
}

/* The owner's stats count what replication did. */
static void check_stats(cluster_t *c, const cl_node_t *owner, const cl_node_t *replica)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    json_t *st = RINGCTL_JSON(c, owner, r, "stats");
    json_t *repl = json_object_get(st, "replication");
    assert_true(int_of(repl, "puts_out") >= 2);
    assert_true(int_of(repl, "acks_in") >= 2);
    assert_true(int_of(repl, "bytes_out") > 0);
    assert_int_equal(int_of(repl, "malformed"), 0);
    assert_true(json_is_boolean(json_object_get(repl, "settled")));
    json_decref(st);
    st = RINGCTL_JSON(c, replica, r, "stats");
    repl = json_object_get(st, "replication");
    assert_true(int_of(repl, "puts_in") >= 2);
    assert_true(int_of(repl, "held") >= 1);
    assert_true(int_of(repl, "held_bytes") > 0);
    json_decref(st);
    assert_int_equal(RINGCTL(c, owner, r, "stats"), 0);
    if (strstr(r->out, "\nreplication.acks_in ") == NULL ||
        strstr(r->out, "\nreplication.settled ") == NULL)
        fail_msg("ringctl stats shows no replication figures: %s", r->out);
    free(r);
}

/* `ringctl call NAME get` through n: the value; the answer says how many
 * copies held the state (`copies`: what the child's set holds now). */
static long long get_value_copies(cluster_t *c, const cl_node_t *n, const char *name,
                                  long long copies)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    json_t *doc = RINGCTL_JSON(c, n, r, "call", name, "get");
    long long v = int_of(doc, "value");
    if (copies && int_of(doc, "replicated") != copies)
        fail_msg("call %s get: replicated %lld, %lld expected: %s", name,
                 int_of(doc, "replicated"), copies, r->out);
    json_decref(doc);
    free(r);
    return v;
}

static long long get_value(cluster_t *c, const cl_node_t *n, const char *name)
{
    return get_value_copies(c, n, name, 0);
}

/* ---- the test ---------------------------------------------------------------------- */

static void test_cluster_replicas_shown_and_kept(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    n[0] = cl_start(c, "n1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "n2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "n3", n[0], NULL, TIMING);
    if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);

    /* The service's default: 2 copies. */
    json_t *two = RINGCTL_JSON(c, n[0], r, "start", "counter", "r-two");
    json_t *two_nodes = json_incref(json_object_get(two, "replica_nodes"));
    assert_int_equal(json_array_size(two_nodes), 2);
    cl_node_t *owner2 = node_named(n, 3, json_string_value(json_object_get(two, "node")));
    assert_string_equal(json_string_value(json_array_get(two_nodes, 0)), owner2->name);
    json_decref(two);
    assert_int_equal(cl_ringctl_incr(c, n[1], "r-two"), 1);
    json_t *o = wait_replicated(c, owner2, "r-two", 2, 1, 0);
    long long v1 = int_of(o, "version");
    json_t *rep = json_array_get(json_object_get(o, "replicas"), 0);
    assert_string_equal(json_string_value(json_object_get(rep, "node")),
                        json_string_value(json_array_get(two_nodes, 1)));
    json_decref(o);
    assert_int_equal(cl_ringctl_incr(c, n[2], "r-two"), 2);
    o = wait_replicated(c, owner2, "r-two", 2, 1, 0);
    if (int_of(o, "version") <= v1)
        fail_msg("r-two: version %lld after an incr, was %lld", int_of(o, "version"), v1);
    long long v2 = int_of(o, "version");
    print_message("replicas: r-two on %s, its replica %s acknowledged version %lld\n",
                  owner2->name, json_string_value(json_array_get(two_nodes, 1)), v2);
    json_decref(o);
    /* the table on its node: COPIES 2, VERSION, REPLICA@ACKED, not marked */
    char cell[200];
    snprintf(cell, sizeof(cell), " 2 %8lld %s@%lld ", v2,
             json_string_value(json_array_get(two_nodes, 1)), v2);
    assert_int_equal(RINGCTL(c, owner2, r, "children"), 0);
    const char *line = strstr(r->out, "\nr-two ");
    if (line == NULL || strstr(line, cell) == NULL ||
        strstr(line, "under-replicated") != NULL)
        fail_msg("children on %s: r-two's line lacks '%s' (or is under-replicated):\n%s",
                 owner2->name, cell, r->out);
    /* a call's answer says how many copies held the state it reflects */
    assert_int_equal(get_value_copies(c, n[0], "r-two", 2), 2);
    check_whereis(c, n[2], "r-two", two_nodes);

    /* --replicas 3 on three nodes: two replica nodes, after the arguments
     * or before them. */
    json_t *three = RINGCTL_JSON(c, n[1], r, "start", "counter", "r-three", "--replicas", "3");
    json_t *three_nodes = json_incref(json_object_get(three, "replica_nodes"));
    assert_int_equal(json_array_size(three_nodes), 3);
    cl_node_t *owner3 = node_named(n, 3, json_string_value(json_object_get(three, "node")));
    json_decref(three);
    assert_int_equal(cl_ringctl_incr(c, n[0], "r-three"), 1);
    o = wait_replicated(c, owner3, "r-three", 3, 2, 0);
    const char *a = json_string_value(
        json_object_get(json_array_get(json_object_get(o, "replicas"), 0), "node"));
    const char *b = json_string_value(
        json_object_get(json_array_get(json_object_get(o, "replicas"), 1), "node"));
    assert_string_not_equal(a, b);
    print_message("replicas: r-three on %s, replicas %s and %s\n", owner3->name, a, b);
    json_decref(o);
    check_whereis(c, n[0], "r-three", three_nodes);
    json_t *one = RINGCTL_JSON(c, n[2], r, "start", "--replicas", "1", "counter", "r-one");
    assert_int_equal(json_array_size(json_object_get(one, "replica_nodes")), 1);
    cl_node_t *owner1 = node_named(n, 3, json_string_value(json_object_get(one, "node")));
    json_decref(one);
    assert_int_equal(cl_ringctl_incr(c, n[0], "r-one"), 1);
    json_decref(wait_replicated(c, owner1, "r-one", 1, 0, 0));
    /* a child that runs already keeps its copies, and says so */
    json_t *again = RINGCTL_JSON(c, n[2], r, "start", "counter", "r-two", "--replicas", "3");
    assert_true(json_is_true(json_object_get(again, "already_started")));
    assert_true(json_equal(json_object_get(again, "replica_nodes"), two_nodes));
    json_decref(again);

    check_refused(c, n, 3);
    check_stats(c, owner2, node_named(n, 3, json_string_value(json_array_get(two_nodes, 1))));

    /* kill -9 of r-two's node: both counters come back with their counts;
     * r-three, 3 copies asked of 2 live nodes, is under-replicated. */
    cl_node_t *victim = owner2;
    uint64_t t0 = cl_now_ms();
    cl_kill9(victim);
    cl_node_t *live[2];
    size_t nl = 0;
    for (int i = 0; i < 3; i++)
        if (n[i] != victim)
            live[nl++] = n[i];
    if (cl_wait_state(live[0], victim->name, "down", 10000) < 0)
        fail_msg("%s did not see %s down", live[0]->name, victim->name);
    uint64_t deadline = cl_now_ms() + SETTLE_MS;
    char code[32] = "";
    json_t *w;
    while ((w = cl_ask_args(live[0], "whereis", json_pack("{s:s}", "name", "r-two"), code,
                            sizeof(code), NULL, 0)) == NULL ||
           strcmp(json_string_value(json_object_get(w, "node")), victim->name) == 0) {
        json_decref(w);
        if (cl_now_ms() > deadline)
            fail_msg("r-two was not restarted off %s within %d ms", victim->name, SETTLE_MS);
        cl_sleep_ms(100);
    }
    cl_node_t *new2 = node_named(live, 2, json_string_value(json_object_get(w, "node")));
    json_decref(w);
    print_message("replicas: kill -9 of %s: r-two runs on %s after %ld ms\n", victim->name,
                  new2->name, (long)(cl_now_ms() - t0));
    assert_int_equal(get_value(c, live[1], "r-two"), 2);
    /* 3 asked, 2 members left: the answer says 2 copies hold it */
    assert_int_equal(get_value_copies(c, live[0], "r-three", 2), 1);
    assert_int_equal(cl_ringctl_incr(c, live[0], "r-two"), 3);
    json_decref(wait_replicated(c, new2, "r-two", 2, 1, 0));
    w = cl_ask_args(live[0], "whereis", json_pack("{s:s}", "name", "r-three"), NULL, 0, NULL, 0);
    assert_non_null(w);
    cl_node_t *new3 = node_named(live, 2, json_string_value(json_object_get(w, "node")));
    json_decref(w);
    assert_int_equal(cl_ringctl_incr(c, live[1], "r-three"), 2);
    json_decref(wait_replicated(c, new3, "r-three", 3, 1, 1));
    assert_int_equal(RINGCTL(c, new3, r, "children"), 0);
    line = strstr(r->out, "\nr-three ");
    if (line == NULL || strstr(line, "under-replicated") == NULL ||
        strstr(r->out, " under-replicated") == NULL)
        fail_msg("children on %s: r-three is not marked under-replicated:\n%s", new3->name,
                 r->out);

    /* A child that refuses calls while under-replicated: 3 copies asked, 2
     * members left: its calls fail EUNAVAILABLE and change nothing. */
    assert_int_equal(RINGCTL(c, live[0], r, "start", "counter", "r-strict", "--replicas", "3",
                             "--refuse-underreplicated"), 0);
    assert_int_equal(RINGCTL(c, live[1], r, "call", "r-strict", "incr"), 1);
    if (strstr(r->err, "too few copies") == NULL)
        fail_msg("call to r-strict: not refused as under-replicated: out %s err %s", r->out,
                 r->err);
    assert_int_equal(RINGCTL(c, live[0], r, "call", "r-strict", "incr", "5"), 1);
    /* a bad flag value is refused at the control socket */
    code[0] = '\0';
    json_t *bad = cl_ask_args(live[0], "start",
                              json_pack("{s:s, s:s, s:i}", "service", "counter", "name",
                                        "r-bad", "refuse_underreplicated", 1),
                              code, sizeof(code), NULL, 0);
    assert_null(bad);
    assert_string_equal(code, "EINVAL");

    json_decref(two_nodes);
    json_decref(three_nodes);
    free(r);
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_replicas_shown_and_kept, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
