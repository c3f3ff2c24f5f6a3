/*
 * test_cluster_limits.c - limits and operator mistakes, with real herdd
 * processes on 127.0.0.1 (issue 12, items 10-12):
 *
 * 1. herdd refuses, naming the real cause: a cookie file that is a FIFO
 *    (it used to block forever in open()), a directory, or longer than 4096
 *    bytes (it used to be cut there); an option given twice; a number with
 *    a blank ("--weight ' 5'"); an empty --cluster; a --down-ms under two
 *    heartbeats (it used to be raised silently).
 * 2. a node with the wrong cookie says so on its own side (its seeds drop its
 *    frames and never answer) and counts it in stats.seeds_silent.
 * 3. the counter at its limits through ringctl: a step past INT64_MAX is
 *    refused with the reason, nothing changes, reset and small steps work.
 * 4. the control socket: a request over 64 KiB is answered (ETOOBIG), not
 *    dropped; `start` with an oversize argument says so; names with control
 *    characters are refused; `ringctl stats --json` (option after the
 *    command) works.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "cluster_harness.h"

#define RUN_MS 15000 /* a herdd that must fail does so well within this */

/* Run herdd with the cluster's cookie (unless args give one) and `args`;
 * expect exit `want` and `needle` on stderr, and no ready line. */
static void herdd_refuses(cluster_t *c, const char *const *args, int want, const char *needle)
{
    const char *argv[32];
    size_t k = 0;
    char listen[64];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", 20000 + (int)(cl_random(c) % 40000));
    argv[k++] = HERDD_PATH;
    argv[k++] = "--name";
    argv[k++] = "lim";
    argv[k++] = "--listen";
    argv[k++] = listen;
    int has_cookie = 0;
    for (size_t i = 0; args[i]; i++)
        has_cookie |= strcmp(args[i], "--cookie-file") == 0;
    if (!has_cookie) {
        argv[k++] = "--cookie-file";
        argv[k++] = c->cookie;
    }
    char control[400];
    snprintf(control, sizeof(control), "ipc://%s/lim.ctl", c->dir);
    argv[k++] = "--control";
    argv[k++] = control;
    for (size_t i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    cl_run(c, argv, RUN_MS, r);
    if (r->status != want || strstr(r->err, needle) == NULL || strstr(r->err, "ready") != NULL)
        fail_msg("herdd %s ...: exit %d, wanted %d with '%s'; stderr:\n%s", args[0], r->status,
                 want, needle, r->err);
    print_message("limits: refused as expected: %s", r->err);
    free(r);
}

#define RINGCTL(c, r, ...)                                                                 \
    cl_run_prog((c), RINGCTL_PATH, (const char *const[]){__VA_ARGS__, NULL}, 20000, (r))

/* ---- 1. herdd's refusals ------------------------------------------------------------ */

static void test_cluster_limits_herdd_refusals(void **state)
{
    cluster_t *c = *state;
    char path[400];
    /* a FIFO as cookie: refused at once, not a hang in open() */
    snprintf(path, sizeof(path), "%s/fifo", c->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    uint64_t t0 = cl_now_ms();
    herdd_refuses(c, (const char *const[]){"--cookie-file", path, NULL}, 1, "is a FIFO");
    assert_true(cl_now_ms() - t0 < 10000);
    /* a directory */
    snprintf(path, sizeof(path), "%s/adir", c->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    herdd_refuses(c, (const char *const[]){"--cookie-file", path, NULL}, 1, "is a directory");
    rmdir(path);
    /* 4097 bytes: refused, not cut at 4096 (two cookies that differed after
     * that used to form one cluster) */
    char longer[400];
    snprintf(longer, sizeof(longer), "%s/long", c->dir);
    FILE *f = fopen(longer, "w");
    assert_non_null(f);
    for (int i = 0; i < 4097; i++)
        fputc('a' + i % 26, f);
    fputc('\n', f);
    fclose(f);
    assert_int_equal(chmod(longer, 0600), 0);
    herdd_refuses(c, (const char *const[]){"--cookie-file", longer, NULL}, 1,
                  "longer than 4096 bytes");
    assert_int_equal(truncate(longer, 4096), 0); /* 4096 bytes: taken (it gets ready) */
    cl_node_t *ok = cl_start(c, "lim4096", NULL, longer, NULL);
    assert_true(cl_alive(ok));
    cl_stop_all(c);
    /* options */
    herdd_refuses(c, (const char *const[]){"--weight", "5", "--weight", "6", NULL}, 2,
                  "--weight given twice");
    herdd_refuses(c, (const char *const[]){"--weight", " 5", NULL}, 2, "digits only");
    herdd_refuses(c, (const char *const[]){"--cluster", "", NULL}, 2, "bad --cluster ''");
    herdd_refuses(c, (const char *const[]){"--down-ms", "20", "--heartbeat-ms", "1000", NULL}, 2,
                  "under two heartbeats");
    cl_pass(c);
}

/* ---- 2. a wrong cookie ---------------------------------------------------------------- */

static void test_cluster_limits_wrong_cookie_is_logged_and_counted(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "wa", NULL, NULL, NULL);
    char other[400];
    cl_write_cookie(c, "other", 32, 0600, other, sizeof(other));
    cl_node_t *b = cl_start(c, "wb", a, other, NULL);
    uint64_t deadline = cl_now_ms() + 30000;
    while (cl_now_ms() < deadline && (cl_stat(b, "seeds_silent", NULL) < 1 ||
                                      !cl_log_has(b, "another cookie")))
        cl_sleep_ms(200);
    if (cl_stat(b, "seeds_silent", NULL) < 1 || !cl_log_has(b, "another cookie")) {
        cl_dump_log(b, 4000);
        fail_msg("the node with the wrong cookie did not say so");
    }
    assert_true(cl_stat(a, "rejected", "mac") > 0); /* and the seed counted its frames */
    assert_int_equal(cl_stat(a, "seeds_silent", NULL), 0);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 3. the counter at its limits ----------------------------------------------------- */

static void test_cluster_limits_counter_extremes(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "ca", NULL, NULL, NULL);
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    RINGCTL(c, r, "--node", a->control, "start", "counter", "big");
    assert_int_equal(r->status, 0);
    RINGCTL(c, r, "--node", a->control, "call", "big", "incr", "4611686018427387904");
    assert_int_equal(r->status, 0);
    RINGCTL(c, r, "--node", a->control, "call", "big", "incr", "4611686018427387903");
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, "9223372036854775807\n");
    /* the counter's own error (COUNTER_ERANGE, 2), not one of herd's: exit 4 */
    RINGCTL(c, r, "--node", a->control, "call", "big", "incr", "--json");
    if (r->status != 4 || strstr(r->err, "its service's error 2") == NULL ||
        strstr(r->err, "must stay within") == NULL || strstr(r->out, "\"EAPP\"") == NULL ||
        strstr(r->out, "\"app_code\": 2") == NULL)
        fail_msg("incr past INT64_MAX: exit %d\n%s%s", r->status, r->out, r->err);
    RINGCTL(c, r, "--node", a->control, "call", "big", "get");
    assert_string_equal(r->out, "9223372036854775807\n"); /* unchanged, not wrapped */
    RINGCTL(c, r, "--node", a->control, "call", "big", "reset");
    assert_string_equal(r->out, "0\n");
    RINGCTL(c, r, "--node", a->control, "call", "big", "incr");
    assert_string_equal(r->out, "1\n");
    RINGCTL(c, r, "--node", a->control, "call", "big", "decr", "2");
    assert_string_equal(r->out, "-1\n");
    RINGCTL(c, r, "--node", a->control, "call", "big", "incr", "4611686018427387905");
    if (r->status != 4 || strstr(r->err, "1..4611686018427387904") == NULL ||
        strstr(r->err, "its service's error 1") == NULL)
        fail_msg("a step over 2^62: exit %d\n%s", r->status, r->err);
    free(r);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 4. the control socket ------------------------------------------------------------ */

/* Send `len` bytes of a JSON request straight to the socket (ringctl refuses
 * to send so much itself); the answer, or NULL when none came. */
static json_t *raw_request(const cl_node_t *n, size_t len)
{
    char *req = malloc(len + 1);
    assert_non_null(req);
    int head = snprintf(req, len, "{\"id\":\"big-1\",\"cmd\":\"members\",\"args\":{\"pad\":\"");
    memset(req + head, 'x', len - (size_t)head - 3);
    memcpy(req + len - 3, "\"}}", 3);
    int sock = nn_socket(AF_SP, NN_REQ), ms = 10000;
    assert_true(sock >= 0);
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &ms, sizeof(ms));
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &ms, sizeof(ms));
    assert_true(nn_connect(sock, n->control) >= 0);
    assert_int_equal(nn_send(sock, req, len, 0), (int)len);
    free(req);
    void *buf = NULL;
    int got = nn_recv(sock, &buf, NN_MSG, 0);
    json_t *ans = got > 0 ? json_loadb(buf, (size_t)got, 0, NULL) : NULL;
    if (buf)
        nn_freemsg(buf);
    nn_close(sock);
    return ans;
}

static void test_cluster_limits_control_socket(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "xa", NULL, NULL, NULL);
    json_t *ans = raw_request(a, 70 * 1024);
    assert_non_null(ans); /* it used to get no answer at all */
    assert_string_equal(json_string_value(json_object_get(ans, "error")), "ETOOBIG");
    assert_non_null(strstr(json_string_value(json_object_get(ans, "message")), "65536"));
    json_decref(ans);
    ans = raw_request(a, 1000); /* and it still serves */
    assert_non_null(ans);
    assert_true(json_is_true(json_object_get(ans, "ok")));
    json_decref(ans);

    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    char *arg = malloc(70001);
    assert_non_null(arg);
    memset(arg, 'a', 70000);
    arg[60000] = '\0';
    RINGCTL(c, r, "--node", a->control, "start", "counter", "c1", arg);
    if (r->status != 1 || strstr(r->err, "argument is 60000 bytes") == NULL)
        fail_msg("start with a 60 KB argument: exit %d\n%s", r->status, r->err);
    arg[60000] = 'a'; /* over 64 KiB: ringctl does not send it */
    arg[70000] = '\0';
    RINGCTL(c, r, "--node", a->control, "start", "counter", "c1", arg);
    if (r->status != 1 || strstr(r->err, "over the node's limit") == NULL)
        fail_msg("start with a 70 KB argument: exit %d\n%s", r->status, r->err);
    free(arg);
    RINGCTL(c, r, "--node", a->control, "start", "counter", "bad\nname");
    if (r->status != 1 || strstr(r->err, "control character") == NULL)
        fail_msg("a name with a newline: exit %d\n%s", r->status, r->err);
    RINGCTL(c, r, "--node", a->control, "start", "counter", "tab\tname");
    assert_int_equal(r->status, 1);
    RINGCTL(c, r, "--node", a->control, "register", "r\x1b[2Jx");
    if (r->status != 1 || strstr(r->err, "control character") == NULL)
        fail_msg("register with an escape: exit %d\n%s", r->status, r->err);
    /* options after the command */
    RINGCTL(c, r, "stats", "--json", "--node", a->control);
    assert_int_equal(r->status, 0);
    json_t *st = json_loads(r->out, 0, NULL);
    assert_non_null(st);
    assert_true(json_is_integer(json_object_get(st, "oversize_out")));
    assert_true(json_is_integer(json_object_get(st, "seeds_silent")));
    json_decref(st);
    free(r);
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_limits_herdd_refusals, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_limits_wrong_cookie_is_logged_and_counted,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_limits_counter_extremes, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_limits_control_socket, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
