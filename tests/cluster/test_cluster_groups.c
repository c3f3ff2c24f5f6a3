/*
 * test_cluster_groups.c - process groups on real herdd nodes, driven
 * through their control sockets and ringctl (herdd_groups.h):
 *
 * - three nodes; holders joined to groups on each (`join`, with
 *   metadata): every node lists the same groups and members (`groups`,
 *   `group_members`, `ringctl members GROUP`), the metadata travelled;
 * - `publish` from one node reaches every member, each other node with
 *   one message (its multicasts_in goes up by one a publish);
 * - `leave` takes a member out everywhere and its holder stops;
 * - kill -9 of a node: its members are hidden on the survivors (counts
 *   drop), a group only it had is gone from their lists; it restarts with
 *   a new incarnation: its old members stay gone;
 * - bad input: empty and over-long groups, a malformed pid, a pid that is
 *   no member (ENOENT), publish to an unknown group (0 reached, no error),
 *   ringctl's usage errors (exit 2).
 *
 * Every wait is bounded (SETTLE_MS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_harness.h"

#define JOIN_MS 15000
#define STATE_MS 10000
#define SETTLE_MS 20000
#define PID_MAX 160

static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "800", NULL};

static void start_three(cluster_t *c, cl_node_t *n[3])
{
    n[0] = cl_start(c, "n1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "n2", n[0], NULL, TIMING);
    n[2] = cl_start(c, "n3", n[0], NULL, TIMING);
    if (cl_wait_all_up(n, 3, JOIN_MS) < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
}

/* Join a new holder on `n` to `group`; its pid into `pid`. */
static void join(cl_node_t *n, const char *group, json_t *meta, char pid[PID_MAX])
{
    char code[32] = "", why[256] = "";
    json_t *args = json_pack("{s:s}", "group", group);
    if (meta)
        json_object_set_new(args, "meta", meta);
    json_t *r = cl_ask_args(n, "join", args, code, sizeof(code), why, sizeof(why));
    if (r == NULL)
        fail_msg("%s: join %s: %s %s", n->name, group, code, why);
    snprintf(pid, PID_MAX, "%s", json_string_value(json_object_get(r, "pid")));
    assert_string_equal(json_string_value(json_object_get(r, "node")), n->name);
    json_decref(r);
}

/* The member count `n` lists for `group` (0 when it lists no such group). */
static long long listed_count(const cl_node_t *n, const char *group)
{
    json_t *r = cl_ask_args(n, "groups", json_pack("{s:s}", "prefix", group), NULL, 0, NULL, 0);
    long long count = 0;
    size_t i;
    json_t *o;
    json_array_foreach(r, i, o)
        if (strcmp(json_string_value(json_object_get(o, "group")), group) == 0)
            count = json_integer_value(json_object_get(o, "members"));
    json_decref(r);
    return count;
}

static void wait_count(cl_node_t *const *n, size_t k, const char *group, long long want)
{
    uint64_t t0 = cl_now_ms();
    for (size_t i = 0; i < k; i++)
        while (listed_count(n[i], group) != want) {
            if (cl_now_ms() - t0 > SETTLE_MS)
                fail_msg("%s lists %lld members of %s, want %lld", n[i]->name,
                         listed_count(n[i], group), group, want);
            cl_sleep_ms(CL_POLL_MS);
        }
}

/* Whether `n` lists `pid` as a member of `group` (with `role` as its
 * metadata's role, when given). */
static int lists_member(const cl_node_t *n, const char *group, const char *pid, const char *role)
{
    json_t *r = cl_ask_args(n, "group_members", json_pack("{s:s}", "group", group), NULL, 0,
                            NULL, 0);
    int found = 0;
    size_t i;
    json_t *o;
    json_array_foreach(r, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "pid")), pid) != 0)
            continue;
        const char *got = json_string_value(json_object_get(json_object_get(o, "meta"), "role"));
        found = role == NULL || (got && strcmp(got, role) == 0);
    }
    json_decref(r);
    return found;
}

static void expect_error(const cl_node_t *n, const char *cmd, json_t *args, const char *want)
{
    char code[32] = "";
    json_t *r = cl_ask_args(n, cmd, args, code, sizeof(code), NULL, 0);
    if (r != NULL)
        fail_msg("%s: %s answered, want %s", n->name, cmd, want);
    assert_string_equal(code, want);
}

static void test_cluster_groups_members_publish_leave_and_a_crash(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);

    char a[PID_MAX], b[PID_MAX], c3[PID_MAX], c3b[PID_MAX];
    join(n[0], "room", json_pack("{s:s}", "role", "first"), a);
    join(n[1], "room", NULL, b);
    join(n[2], "room", json_pack("{s:s}", "role", "third"), c3);
    join(n[2], "n3-only", NULL, c3b);
    wait_count(n, 3, "room", 3);
    wait_count(n, 3, "n3-only", 1);
    for (int i = 0; i < 3; i++) {
        assert_true(lists_member(n[i], "room", a, "first"));
        assert_true(lists_member(n[i], "room", b, NULL));
        assert_true(lists_member(n[i], "room", c3, "third"));
    }

    /* ringctl shows the same */
    cl_run_t r;
    const char *members[] = {"--node", n[1]->control, "--json", "members", "room", NULL};
    cl_run_prog(c, RINGCTL_PATH, members, 5000, &r);
    assert_int_equal(r.status, 0);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_true(json_is_array(doc));
    assert_int_equal(json_array_size(doc), 3);
    json_decref(doc);
    const char *groups[] = {"--node", n[0]->control, "groups", NULL};
    cl_run_prog(c, RINGCTL_PATH, groups, 5000, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "room"));
    assert_non_null(strstr(r.out, "n3-only"));

    /* publish from n3: three members, n1 and n2 each get one message */
    long long in1 = cl_stat(n[0], "multicasts_in", NULL), in2 = cl_stat(n[1], "multicasts_in", NULL);
    json_t *p = cl_ask_args(n[2], "publish", json_pack("{s:s, s:s}", "group", "room", "message",
                                                       "hello"),
                            NULL, 0, NULL, 0);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "reached")), 3);
    json_decref(p);
    uint64_t t0 = cl_now_ms();
    while (cl_stat(n[0], "multicasts_in", NULL) != in1 + 1 ||
           cl_stat(n[1], "multicasts_in", NULL) != in2 + 1) {
        if (cl_now_ms() - t0 > SETTLE_MS)
            fail_msg("multicasts_in: n1 %lld (was %lld), n2 %lld (was %lld), want one more each",
                     cl_stat(n[0], "multicasts_in", NULL), in1,
                     cl_stat(n[1], "multicasts_in", NULL), in2);
        cl_sleep_ms(CL_POLL_MS);
    }
    /* an unknown group: nobody reached, no error */
    p = cl_ask_args(n[0], "publish", json_pack("{s:s, s:s}", "group", "nobody-here", "message",
                                               "x"),
                    NULL, 0, NULL, 0);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "reached")), 0);
    json_decref(p);

    /* leave: b goes everywhere, its holder stops */
    long long procs2 = cl_stat(n[1], "processes", NULL);
    json_t *l = cl_ask_args(n[1], "leave", json_pack("{s:s, s:s}", "group", "room", "pid", b),
                            NULL, 0, NULL, 0);
    assert_non_null(l);
    assert_true(json_is_true(json_object_get(l, "stopped")));
    json_decref(l);
    wait_count(n, 3, "room", 2);
    assert_int_equal(cl_stat(n[1], "processes", NULL), procs2 - 1);
    expect_error(n[0], "leave", json_pack("{s:s, s:s}", "group", "room", "pid", b), "ENOENT");

    /* bad input */
    expect_error(n[0], "join", json_pack("{s:s}", "group", ""), "EINVAL");
    char big[260];
    memset(big, 'g', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_error(n[0], "join", json_pack("{s:s}", "group", big), "EINVAL");
    expect_error(n[0], "leave", json_pack("{s:s, s:s}", "group", "room", "pid", "no-slashes"),
                 "EINVAL");
    expect_error(n[0], "publish", json_pack("{s:s}", "group", "room"), "EINVAL");
    const char *usage[] = {"--node", n[0]->control, "leave", "room", NULL};
    cl_run_prog(c, RINGCTL_PATH, usage, 5000, &r);
    assert_int_equal(r.status, 2);

    /* kill -9 n3: its members hidden at the survivors, its own group gone */
    cl_kill9(n[2]);
    char s[32];
    t0 = cl_now_ms();
    while (strcmp(cl_state(n[0], "n3", s, sizeof(s), NULL) ? s : "", "down") != 0) {
        if (cl_now_ms() - t0 > STATE_MS)
            fail_msg("n1 does not see n3 down");
        cl_sleep_ms(CL_POLL_MS);
    }
    cl_node_t *surv[2] = {n[0], n[1]};
    wait_count(surv, 2, "room", 1);
    wait_count(surv, 2, "n3-only", 0);
    assert_true(lists_member(n[0], "room", a, "first"));
    assert_false(lists_member(n[1], "room", c3, NULL));

    /* a new incarnation: its old members stay gone */
    print_message("groups: n3 killed; its members hidden at the survivors after %ld ms\n",
                  (long)(cl_now_ms() - t0));
    cl_restart_args(c, n[2], TIMING);
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);
    cl_sleep_ms(1000);
    wait_count(n, 3, "room", 1);
    wait_count(n, 3, "n3-only", 0);
    print_message("groups: n3 restarted; its old members stay gone\n");
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_groups_members_publish_leave_and_a_crash,
                                        cl_setup, cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
