/*
 * test_cluster_control.c - the control socket under long listings and slow
 * calls, with real herdd processes on 127.0.0.1 (issue 12, items 7 and 8):
 *
 * 1. 20,000 registered names are listed completely by `ringctl names` and
 *    `ringctl --json names` (the answer is over nanomsg's 1 MiB receive
 *    limit: ringctl fetches it page by page), sorted; bad pages (limit out
 *    of range, a malformed or unknown cursor) are refused with EINVAL /
 *    ENOENT.
 * 2. 20,000 children are listed by `ringctl children` within a bounded time
 *    (the listing was quadratic: 10-18 s at 20,000), and while it runs the
 *    node's loop is free: `stats` asked again and again answers each time
 *    within STATS_MS; every page shows each child's replication (2 copies
 *    asked, under-replicated: the node is alone).
 * 3. a `call` pending on a target cut off from the asked node (block) does
 *    not hold up the control socket: `stats` on the same node answers at
 *    once, several calls wait side by side, and each call gets its own
 *    answer (ETIMEDOUT) when its timeout passes.
 * 4. `ringctl names --where K=V` (repeatable, with or without a prefix, as a
 *    table and as JSON) lists only the names whose metadata holds every
 *    pair, sorted; a selection by hand pages like any listing; a bad
 *    --where is a usage error (exit 2) and the node refuses a bad `where`.
 *
 * Every wait is bounded with generous slack for a sanitized build on a
 * loaded 2-core machine; measured times are printed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "cluster_harness.h"

#define MANY 20000
#define IN_FLIGHT 16
#define FILL_MS 120000  /* MANY requests answered (ASan, 2 busy cores) */
#define LIST_MS 60000   /* ringctl lists MANY entries */
#define STATS_MS 2000   /* stats answers while a listing or a call runs */
#define JOIN_MS 15000
#define CALL_TIMEOUT_MS 4000

/* Long down verdicts: a blocked peer must stay up while calls to it wait. */
static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "30000", NULL};

/* ---- requests in flight ------------------------------------------------------------- */

typedef void (*make_fn)(int i, char *buf, size_t cap);

/* Send `count` requests made by `make` to node n, IN_FLIGHT at a time on
 * their own REQ sockets; every answer must be ok. */
static void ask_many(const cl_node_t *n, int count, make_fn make)
{
    int sock[IN_FLIGHT], busy[IN_FLIGHT] = {0}, sent = 0, done = 0;
    for (int k = 0; k < IN_FLIGHT; k++) {
        sock[k] = nn_socket(AF_SP, NN_REQ);
        assert_true(sock[k] >= 0);
        assert_true(nn_connect(sock[k], n->control) >= 0);
    }
    uint64_t start = cl_now_ms();
    while (done < count) {
        assert_true(cl_now_ms() - start < FILL_MS);
        for (int k = 0; k < IN_FLIGHT && sent < count; k++) {
            if (busy[k])
                continue;
            char buf[512];
            make(sent++, buf, sizeof(buf));
            assert_true(nn_send(sock[k], buf, strlen(buf), 0) >= 0);
            busy[k] = 1;
        }
        struct nn_pollfd pf[IN_FLIGHT];
        for (int k = 0; k < IN_FLIGHT; k++)
            pf[k] = (struct nn_pollfd){sock[k], NN_POLLIN, 0};
        nn_poll(pf, IN_FLIGHT, 1000);
        for (int k = 0; k < IN_FLIGHT; k++) {
            void *m = NULL;
            int len;
            if (!busy[k] || !(pf[k].revents & NN_POLLIN) ||
                (len = nn_recv(sock[k], &m, NN_MSG, NN_DONTWAIT)) < 0)
                continue;
            char *text = strndup(m, (size_t)len); /* a message is not NUL-terminated */
            nn_freemsg(m);
            assert_non_null(text);
            if (strstr(text, "\"ok\":true") == NULL)
                fail_msg("%s answered %s", n->name, text);
            free(text);
            busy[k] = 0;
            done++;
        }
    }
    for (int k = 0; k < IN_FLIGHT; k++)
        nn_close(sock[k]);
    print_message("control: %d requests to %s answered in %llu ms\n", count, n->name,
                  (unsigned long long)(cl_now_ms() - start));
}

static void make_register(int i, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"id\":\"reg-%d-%d\",\"cmd\":\"register\",\"args\":{\"name\":\"name%06d\","
             "\"meta\":{\"role\":\"listed\"}}}",
             (int)getpid(), i, i);
}

static void make_start(int i, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"id\":\"start-%d-%d\",\"cmd\":\"start\",\"args\":{\"service\":\"counter\","
             "\"name\":\"child%06d\"}}",
             (int)getpid(), i, i);
}

/* ---- ringctl in the background ------------------------------------------------------ */

/* Start `ringctl --node N ARGS... > out` (stderr to out.err). */
static pid_t ringctl_spawn(const cl_node_t *n, const char *const *args, const char *out)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[400];
        snprintf(err, sizeof(err), "%s.err", out);
        if (freopen(out, "w", stdout) == NULL || freopen(err, "w", stderr) == NULL)
            _exit(126);
        const char *argv[16] = {RINGCTL_PATH, "--node", n->control};
        int k = 3;
        for (int i = 0; args[i] && k < 15; i++)
            argv[k++] = args[i];
        argv[k] = NULL;
        execv(RINGCTL_PATH, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Wait up to timeout_ms for ringctl; its exit code (-1: killed at the deadline). */
static int ringctl_wait(pid_t pid, int timeout_ms)
{
    cl_node_t proc = {.pid = pid};
    if (cl_wait_exit(&proc, timeout_ms) != 0) {
        cl_kill9(&proc);
        return -1;
    }
    return WIFEXITED(proc.status) ? WEXITSTATUS(proc.status) : -1;
}

static int ringctl_run(const cl_node_t *n, const char *const *args, const char *out,
                       long *elapsed_ms)
{
    uint64_t start = cl_now_ms();
    int rc = ringctl_wait(ringctl_spawn(n, args, out), LIST_MS);
    *elapsed_ms = (long)(cl_now_ms() - start);
    return rc;
}

/* The lines of a text file that start with `prefix`; checks they are sorted. */
static long lines_with(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024], last[1024] = "";
    long count = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, prefix, strlen(prefix)) != 0)
            continue;
        assert_true(strcmp(last, line) < 0);
        snprintf(last, sizeof(last), "%s", line);
        count++;
    }
    fclose(f);
    return count;
}

static void out_path(cluster_t *c, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", c->dir, name);
}

/* How long `stats` takes to answer, in ms; fails when it does not. */
static long stats_ms(const cl_node_t *n)
{
    uint64_t start = cl_now_ms();
    json_t *st = cl_ask(n, "stats", NULL, 0);
    long ms = (long)(cl_now_ms() - start);
    if (st == NULL)
        fail_msg("%s: stats did not answer", n->name);
    json_decref(st);
    return ms;
}

static void refused(const cl_node_t *n, const char *cmd, json_t *args, const char *code)
{
    char got[32] = "", why[600] = "";
    json_t *r = cl_ask_args(n, cmd, args, got, sizeof(got), why, sizeof(why));
    if (r)
        fail_msg("%s %s: answered, expected %s", n->name, cmd, code);
    if (strcmp(got, code) != 0)
        fail_msg("%s %s: expected %s, got '%s' (%s)", n->name, cmd, code, got, why);
}

/* ---- 1. names ----------------------------------------------------------------------- */

static void test_cluster_control_names_listed_completely(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "ctl1", NULL, NULL, TIMING);
    ask_many(a, MANY, make_register);

    char out[320];
    long ms;
    out_path(c, "names.txt", out, sizeof(out));
    const char *plain[] = {"names", NULL};
    assert_int_equal(ringctl_run(a, plain, out, &ms), 0);
    assert_int_equal(lines_with(out, "name0"), MANY);
    print_message("control: ringctl names listed %d names in %ld ms\n", MANY, ms);

    out_path(c, "names.json", out, sizeof(out));
    const char *js[] = {"--json", "names", NULL};
    assert_int_equal(ringctl_run(a, js, out, &ms), 0);
    json_error_t err;
    json_t *doc = json_load_file(out, 0, &err);
    assert_non_null(doc);
    assert_int_equal(json_array_size(doc), MANY);
    json_t *first = json_array_get(doc, 0), *last = json_array_get(doc, MANY - 1);
    assert_string_equal(json_string_value(json_object_get(first, "name")), "name000000");
    assert_string_equal(json_string_value(json_object_get(last, "name")), "name019999");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(last, "meta"), "role")), "listed");
    json_decref(doc);
    print_message("control: ringctl --json names listed %d names in %ld ms\n", MANY, ms);

    /* one page by hand: its size, the total and a cursor that goes on */
    json_t *page = cl_ask_args(a, "names", json_pack("{s:s, s:i}", "prefix", "name01", "limit", 7),
                               NULL, 0, NULL, 0);
    assert_non_null(page);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 7);
    assert_int_equal(json_integer_value(json_object_get(page, "total")), 10000);
    const char *cursor = json_string_value(json_object_get(page, "cursor"));
    assert_non_null(cursor);
    json_t *next = cl_ask_args(a, "names",
                               json_pack("{s:s, s:i, s:s}", "prefix", "name01", "limit", 2,
                                         "cursor", cursor),
                               NULL, 0, NULL, 0);
    assert_non_null(next);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(next, "items"), 0),
                                          "name")),
        "name010007");
    json_decref(next);
    /* the cursor of a names listing does not page children */
    refused(a, "children", json_pack("{s:i, s:s}", "limit", 10, "cursor", cursor), "EINVAL");
    next = cl_ask_args(a, "names", json_pack("{s:i, s:s}", "limit", 1, "cursor", cursor), NULL,
                       0, NULL, 0);
    assert_non_null(next); /* and its listing stays open */
    json_decref(next);
    json_decref(page);

    /* bad pages */
    refused(a, "names", json_pack("{s:i}", "limit", 0), "EINVAL");
    refused(a, "names", json_pack("{s:i}", "limit", 10001), "EINVAL");
    refused(a, "names", json_pack("{s:s}", "limit", "10"), "EINVAL");
    refused(a, "names", json_pack("{s:i, s:s}", "limit", 10, "cursor", "x"), "EINVAL");
    refused(a, "names", json_pack("{s:i, s:s}", "limit", 10, "cursor", "ffff:0"), "ENOENT");
    refused(a, "children", json_pack("{s:i, s:i}", "limit", 10, "cursor", 5), "EINVAL");
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 2. children -------------------------------------------------------------------- */

static void test_cluster_control_children_listed_while_stats_answers(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "ctl1", NULL, NULL, TIMING);
    ask_many(a, MANY, make_start);

    char out[320];
    out_path(c, "children.txt", out, sizeof(out));
    const char *args[] = {"children", NULL};
    uint64_t start = cl_now_ms();
    pid_t pid = ringctl_spawn(a, args, out);
    long worst = 0, asked = 0;
    cl_node_t proc = {.pid = pid};
    while (cl_alive(&proc) && cl_now_ms() - start < LIST_MS) {
        long ms = stats_ms(a);
        if (ms > worst)
            worst = ms;
        asked++;
        cl_sleep_ms(20);
    }
    int rc = ringctl_wait(pid, 1000);
    if (proc.pid == 0) /* cl_alive reaped it */
        rc = WIFEXITED(proc.status) ? WEXITSTATUS(proc.status) : -1;
    long elapsed = (long)(cl_now_ms() - start);
    print_message("control: ringctl children listed %d children in %ld ms; stats answered "
                  "%ld times meanwhile, the slowest in %ld ms\n",
                  MANY, elapsed, asked, worst);
    assert_int_equal(rc, 0);
    assert_int_equal(lines_with(out, "child0"), MANY);
    assert_true(worst <= STATS_MS);

    /* only this node's, as JSON, each running */
    out_path(c, "children.json", out, sizeof(out));
    const char *js[] = {"--json", "children", "ctl1", NULL};
    long ms;
    assert_int_equal(ringctl_run(a, js, out, &ms), 0);
    json_error_t err;
    json_t *doc = json_load_file(out, 0, &err);
    assert_non_null(doc);
    assert_int_equal(json_array_size(doc), MANY);
    size_t i;
    json_t *o;
    json_array_foreach(doc, i, o)
    {
        assert_string_equal(json_string_value(json_object_get(o, "state")), "running");
        assert_string_equal(json_string_value(json_object_get(o, "service")), "counter");
        /* its replication, on every page (kept with the listing's snapshot):
         * 2 copies asked, no other node to hold one */
        assert_int_equal(json_integer_value(json_object_get(o, "copies")), 2);
        assert_true(json_is_array(json_object_get(o, "replicas")));
        assert_int_equal(json_array_size(json_object_get(o, "replicas")), 0);
        assert_true(json_is_true(json_object_get(o, "under_replicated")));
    }
    json_decref(doc);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 3. a pending call -------------------------------------------------------------- */

/* Start a counter through `via` until one lands on node `on`; its name in out. */
static void counter_on(const cl_node_t *via, const char *on, char *out, size_t cap)
{
    for (int i = 0; i < 64; i++) {
        char name[32];
        snprintf(name, sizeof(name), "slow%d", i);
        json_t *r = cl_ask_args(via, "start", json_pack("{s:s, s:s}", "service", "counter",
                                                        "name", name),
                                NULL, 0, NULL, 0);
        assert_non_null(r);
        int here = strcmp(json_string_value(json_object_get(r, "node")), on) == 0;
        json_decref(r);
        if (here) {
            snprintf(out, cap, "%s", name);
            return;
        }
    }
    fail_msg("no counter landed on %s", on);
}

static void test_cluster_control_pending_call_does_not_block_stats(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[2];
    n[0] = cl_start(c, "ctl1", NULL, NULL, TIMING);
    n[1] = cl_start(c, "ctl2", n[0], NULL, TIMING);
    assert_true(cl_wait_all_up(n, 2, JOIN_MS) >= 0);
    char name[32];
    counter_on(n[0], "ctl2", name, sizeof(name));
    json_t *r = cl_ask_args(n[0], "call", json_pack("{s:s, s:s}", "name", name, "request",
                                                    "incr 1"),
                            NULL, 0, NULL, 0);
    assert_non_null(r);
    json_decref(r);
    r = cl_ask_args(n[0], "block", json_pack("{s:s}", "node", "ctl2"), NULL, 0, NULL, 0);
    assert_non_null(r);
    json_decref(r);

    /* three calls wait side by side on their own sockets */
    enum { CALLS = 3 };
    int sock[CALLS];
    uint64_t sent = cl_now_ms();
    for (int k = 0; k < CALLS; k++) {
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "{\"id\":\"call-%d-%d\",\"cmd\":\"call\",\"args\":{\"name\":\"%s\","
                 "\"request\":\"incr 1\",\"timeout_ms\":%d}}",
                 (int)getpid(), k, name, CALL_TIMEOUT_MS);
        sock[k] = nn_socket(AF_SP, NN_REQ);
        assert_true(sock[k] >= 0);
        assert_true(nn_connect(sock[k], n[0]->control) >= 0);
        assert_true(nn_send(sock[k], buf, strlen(buf), 0) >= 0);
    }
    cl_sleep_ms(300);
    long worst = 0;
    for (int i = 0; i < 5; i++) {
        long ms = stats_ms(n[0]);
        worst = ms > worst ? ms : worst;
    }
    json_t *w = cl_members(n[0]); /* any other command answers too */
    assert_non_null(w);
    json_decref(w);
    long stats_done = (long)(cl_now_ms() - sent);
    print_message("control: with %d calls pending, stats answered in %ld ms at most\n", CALLS,
                  worst);
    assert_true(worst <= STATS_MS);
    assert_true(stats_done < CALL_TIMEOUT_MS); /* the calls were still pending */

    for (int k = 0; k < CALLS; k++) {
        int to = CALL_TIMEOUT_MS + 10000;
        nn_setsockopt(sock[k], NN_SOL_SOCKET, NN_RCVTIMEO, &to, sizeof(to));
        void *m = NULL;
        int len = nn_recv(sock[k], &m, NN_MSG, 0);
        assert_true(len > 0);
        json_error_t err;
        json_t *ans = json_loadb(m, (size_t)len, 0, &err);
        nn_freemsg(m);
        nn_close(sock[k]);
        assert_non_null(ans);
        char id[64];
        snprintf(id, sizeof(id), "call-%d-%d", (int)getpid(), k);
        assert_string_equal(json_string_value(json_object_get(ans, "id")), id);
        assert_false(json_is_true(json_object_get(ans, "ok")));
        assert_string_equal(json_string_value(json_object_get(ans, "error")), "ETIMEDOUT");
        json_decref(ans);
    }
    long answered = (long)(cl_now_ms() - sent);
    print_message("control: the calls timed out after %ld ms\n", answered);
    assert_true(answered >= CALL_TIMEOUT_MS - 100);
    r = cl_ask_args(n[0], "unblock", json_pack("{s:s}", "node", "ctl2"), NULL, 0, NULL, 0);
    assert_non_null(r);
    json_decref(r);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 4. names --where --------------------------------------------------------------- */

/* ringctl --node N ARGS...: its exit code, stdout and stderr in r. */
static void ringctl_to(cluster_t *c, const cl_node_t *n, const char *const *args, cl_run_t *r)
{
    const char *argv[32] = {"--node", n->control};
    int k = 2;
    for (int i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    cl_run_prog(c, RINGCTL_PATH, argv, LIST_MS, r);
}

#define RINGCTL(c, n, r, ...) ringctl_to((c), (n), (const char *const[]){__VA_ARGS__, NULL}, (r))

/* The names of a `ringctl --json names` answer, in order, as "a,b,c". */
static void json_names(const char *text, char *out, size_t cap)
{
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (!json_is_array(doc))
        fail_msg("not a JSON list: %s", text);
    size_t i, used = 0;
    json_t *o;
    out[0] = '\0';
    json_array_foreach(doc, i, o)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "",
                                 json_string_value(json_object_get(o, "name")));
    json_decref(doc);
}

static void test_cluster_control_names_where(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "ctlw", NULL, NULL, TIMING);
    cl_run_t r;
    static const char *const regs[][4] = {
        {"web-1", "zone=eu", "role=web", NULL}, {"web-2", "zone=us", "role=web", NULL},
        {"db-1", "zone=eu", "role=db", NULL},   {"web-3", "zone=eu", "role=web", NULL},
        {"bare", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        RINGCTL(c, a, &r, "register", regs[i][0], regs[i][1], regs[i][2]);
        if (r.status != 0)
            fail_msg("register %s: exit %d: %s", regs[i][0], r.status, r.err);
    }
    char got[512];
    RINGCTL(c, a, &r, "--json", "names", "--where", "zone=eu");
    assert_int_equal(r.status, 0);
    json_names(r.out, got, sizeof(got));
    assert_string_equal(got, "db-1,web-1,web-3");
    RINGCTL(c, a, &r, "--json", "names", "--where", "zone=eu", "--where", "role=web");
    assert_int_equal(r.status, 0);
    json_names(r.out, got, sizeof(got));
    assert_string_equal(got, "web-1,web-3");
    RINGCTL(c, a, &r, "--json", "names", "web", "--where", "role=web");
    assert_int_equal(r.status, 0);
    json_names(r.out, got, sizeof(got));
    assert_string_equal(got, "web-1,web-2,web-3");
    RINGCTL(c, a, &r, "--json", "names", "--where", "zone=asia");
    assert_int_equal(r.status, 0);
    json_names(r.out, got, sizeof(got));
    assert_string_equal(got, "");

    /* the table: a header and the matching names with their metadata */
    RINGCTL(c, a, &r, "names", "--where", "role=db");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "NAME"));
    assert_non_null(strstr(r.out, "db-1"));
    assert_non_null(strstr(r.out, "zone=eu"));
    assert_null(strstr(r.out, "web-"));
    assert_null(strstr(r.out, "bare"));

    /* bad --where: exit 2 before anything is asked */
    RINGCTL(c, a, &r, "names", "--where", "zone");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--where wants KEY=VALUE"));
    RINGCTL(c, a, &r, "--json", "names", "--where", "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk=1");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "\"EUSAGE\""));

    /* by hand: a selection pages as any listing; a bad where is refused */
    json_t *page = cl_ask_args(
        a, "names", json_pack("{s:{s:s}, s:i}", "where", "zone", "eu", "limit", 2), NULL, 0,
        NULL, 0);
    assert_non_null(page);
    assert_int_equal(json_integer_value(json_object_get(page, "total")), 3);
    assert_int_equal(json_array_size(json_object_get(page, "items")), 2);
    assert_non_null(json_object_get(page, "cursor"));
    json_decref(page);
    refused(a, "names", json_pack("{s:s}", "where", "zone=eu"), "EINVAL");
    refused(a, "names", json_pack("{s:{s:i}}", "where", "zone", 1), "EINVAL");
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_control_names_listed_completely,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_control_children_listed_while_stats_answers, cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_control_pending_call_does_not_block_stats,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_control_names_where, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
