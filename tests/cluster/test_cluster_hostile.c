/*
 * test_cluster_hostile.c - herdd against hostile or careless input, with
 * real herdd processes on 127.0.0.1:
 *
 * 1. casts of arbitrary bytes from another member of the cluster (a node in
 *    this test process that joined with the cluster's cookie) to every small
 *    serial of a herdd node (its counters and name holders among them): the
 *    node stays up, none of its processes dies of them, and it keeps
 *    answering `ringctl call`.
 * 2. a failed start deletes no file it does not own: a regular file (or a
 *    symbolic link) where --control or --listen would put its ipc socket is
 *    left as it was, herdd exits 1 naming the path.
 * 3. a second herdd pointed at a live node's socket (its --control, its
 *    default control path /tmp/herd-CLUSTER-NAME.ctl, or as --listen) exits 1
 *    naming the path, and the live node keeps its socket and answers on it.
 *    A socket file nobody serves (left by a node killed with -9) is taken
 *    over as before.
 *
 * Every wait is bounded with generous slack for a sanitized build on a
 * loaded 2-core machine.
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

#include "cluster_harness.h"
#include "herd_runtime.h"

#define JOIN_MS 15000
#define RUN_MS 15000 /* a herdd that must fail does so well within this */
#define SERIAL_MAX 64

/* Down only after 5 s of silence: the in-test node's loop does not run while
 * the test waits for a herdd or ringctl. */
static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "5000", NULL};

/* ---- helpers ---------------------------------------------------------------------- */

static void read_secret(const char *path, char *out, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    *len = fread(out, 1, cap, f);
    fclose(f);
    if (*len && out[*len - 1] == '\n')
        (*len)--;
    assert_true(*len >= 16);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The file at `path` is a regular file holding exactly `text`. */
static void assert_file_kept(const char *path, const char *text)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("%s is gone: %s", path, strerror(errno));
    assert_true(S_ISREG(st.st_mode));
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

static void assert_is_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        fail_msg("%s is gone: %s", path, strerror(errno));
    assert_true(S_ISSOCK(st.st_mode));
}

static int free_port(cluster_t *c)
{
    return 20000 + (int)(cl_random(c) % 40001u);
}

/* Run herdd NAME with `listen` and `control` (NULL: none given) and the
 * cluster's cookie, expecting it to fail: exit 1 with `needle` in its stderr. */
static void herdd_fails(cluster_t *c, const char *name, const char *listen,
                        const char *control, const char *needle)
{
    const char *argv[12];
    size_t k = 0;
    argv[k++] = HERDD_PATH;
    argv[k++] = "--name";
    argv[k++] = name;
    argv[k++] = "--listen";
    argv[k++] = listen;
    argv[k++] = "--cookie-file";
    argv[k++] = c->cookie;
    if (control) {
        argv[k++] = "--control";
        argv[k++] = control;
    }
    argv[k] = NULL;
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    cl_run(c, argv, RUN_MS, r);
    if (r->status != 1 || strstr(r->err, needle) == NULL || strstr(r->err, "ready") != NULL)
        fail_msg("herdd --listen %s --control %s: exit %d, wanted 1 with '%s'; stderr:\n%s",
                 listen, control ? control : "(default)", r->status, needle, r->err);
    print_message("hostile: refused as expected: %s", r->err);
    free(r);
}

/* ---- 1. casts from another member ------------------------------------------------- */

typedef struct intruder {
    herd_node_t *node;
    char listen[64];
} intruder_t;

/* A node in this process joining the cluster through `seed` with its cookie. */
static void intruder_join(cluster_t *c, intruder_t *in, const cl_node_t *seed)
{
    char secret[4096];
    size_t len;
    read_secret(c->cookie, secret, sizeof(secret), &len);
    herd_node_config_t nc = {.name = "intruder"};
    assert_int_equal(herd_node_new(&nc, &in->node), 0);
    const char *seeds[] = {seed->listen};
    int rc = -1;
    for (int attempt = 0; attempt < 40 && rc != 0; attempt++) {
        snprintf(in->listen, sizeof(in->listen), "tcp://127.0.0.1:%d", free_port(c));
        herd_cluster_config_t cc = {.listen = in->listen, .seeds = seeds, .seed_count = 1,
                                    .secret = secret, .secret_len = len,
                                    .heartbeat_ms = 100, .down_ms = 5000};
        rc = herd_cluster_start(in->node, &cc);
    }
    assert_int_equal(rc, 0);
    uint64_t deadline = cl_now_ms() + JOIN_MS;
    uint64_t id = herd_node_id_of(seed->name);
    while (herd_cluster_member_incarnation(in->node, id) == 0) {
        if (cl_now_ms() > deadline)
            fail_msg("the intruder did not join %s within %d ms", seed->name, JOIN_MS);
        herd_node_run_for(in->node, 20);
    }
    for (;;) {
        char st[32];
        const char *s = cl_state(seed, "intruder", st, sizeof(st), NULL);
        if (s && strcmp(s, "up") == 0)
            break;
        if (cl_now_ms() > deadline)
            fail_msg("%s did not see the intruder up within %d ms", seed->name, JOIN_MS);
        herd_node_run_for(in->node, 50);
    }
}

static void intruder_leave(intruder_t *in)
{
    herd_cluster_leave(in->node);
    herd_node_run_for(in->node, 300);
    herd_node_free(in->node);
    in->node = NULL;
}

static void test_cluster_hostile_foreign_casts_do_not_crash_the_node(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n1 = cl_start(c, "n1", NULL, NULL, TIMING);
    json_t *r = cl_ask_args(n1, "start", json_pack("{s:s, s:s}", "service", "counter",
                                                   "name", "ctr"),
                            NULL, 0, NULL, 0);
    assert_non_null(r);
    json_decref(r);
    assert_int_equal(cl_ringctl_incr(c, n1, "ctr"), 1);

    long long procs = cl_stat(n1, "processes", NULL);
    assert_true(procs > 0);

    intruder_t in = {0};
    intruder_join(c, &in, n1);
    uint64_t inc = herd_cluster_member_incarnation(in.node, herd_node_id_of("n1"));
    assert_true(inc != 0);
    /* What a pointer, a zero, a small integer or a plausible token look like. */
    static const uint8_t pattern[][8] = {
        {0, 0, 0, 0, 0, 0, 0, 0},
        {0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41},
        {0x10, 0, 0, 0, 0, 0, 0, 0},
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
        {0x00, 0x10, 0x40, 0x00, 0x00, 0x56, 0x00, 0x00},
    };
    size_t sent = 0;
    for (uint64_t serial = 1; serial <= SERIAL_MAX; serial++) {
        herd_pid_t to = {herd_node_id_of("n1"), inc, serial};
        for (size_t i = 0; i < sizeof(pattern) / sizeof(pattern[0]); i++) {
            int rc = herd_node_cast(in.node, to, pattern[i], sizeof(pattern[i]));
            if (rc == 0)
                sent++;
            else
                print_message("hostile: cast to serial %llu: %s\n",
                              (unsigned long long)serial, herd_err_name(rc));
            herd_node_run_for(in.node, 2);
        }
    }
    herd_node_run_for(in.node, 500);
    print_message("hostile: %zu casts of 8 bytes sent to serials 1-%d\n", sent,
                  SERIAL_MAX);
    assert_true(sent > 0);

    /* The node is up and answers; every process took the casts and lives. */
    assert_true(cl_alive(n1));
    assert_int_equal(cl_stat(n1, "processes", NULL), procs); /* none of them crashed */
    assert_int_equal(cl_ringctl_incr(c, n1, "ctr"), 2);
    herd_node_run_for(in.node, 50);
    assert_int_equal(cl_ringctl_incr(c, n1, "ctr"), 3);

    intruder_leave(&in);
    assert_true(cl_alive(n1));
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 2. files it does not own ----------------------------------------------------- */

static void test_cluster_hostile_failed_start_keeps_regular_files(void **state)
{
    cluster_t *c = *state;
    char path[400], url[420], other[420], listen[64], msg[500];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", free_port(c));

    /* --control at a regular file */
    snprintf(path, sizeof(path), "%s/notes.txt", c->dir);
    write_file(path, "keep me\n");
    snprintf(url, sizeof(url), "ipc://%s", path);
    snprintf(msg, sizeof(msg), "%s exists and is not a socket", path);
    herdd_fails(c, "x1", listen, url, msg);
    assert_file_kept(path, "keep me\n");

    /* --listen at a regular file: the control socket is not made either */
    snprintf(other, sizeof(other), "ipc://%s/x2.ctl", c->dir);
    herdd_fails(c, "x2", url, other, msg);
    assert_file_kept(path, "keep me\n");
    struct stat st;
    assert_int_equal(lstat(other + 6, &st), -1);

    /* a symbolic link to a regular file is no socket either */
    char link_path[400];
    snprintf(link_path, sizeof(link_path), "%s/link.ctl", c->dir);
    assert_int_equal(symlink(path, link_path), 0);
    snprintf(url, sizeof(url), "ipc://%s", link_path);
    snprintf(msg, sizeof(msg), "%s exists and is not a socket", link_path);
    herdd_fails(c, "x3", listen, url, msg);
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_file_kept(path, "keep me\n");

    /* a directory */
    snprintf(path, sizeof(path), "%s/adir", c->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(url, sizeof(url), "ipc://%s", path);
    snprintf(msg, sizeof(msg), "%s exists and is not a socket", path);
    herdd_fails(c, "x4", url, NULL, msg);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    rmdir(path);
    cl_pass(c);
}

/* ---- 3. a live node's sockets ----------------------------------------------------- */

static void test_cluster_hostile_second_herdd_on_live_socket(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n1 = cl_start(c, "n1", NULL, NULL, TIMING);
    char listen[64], msg[500];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", free_port(c));
    snprintf(msg, sizeof(msg), "%s is served by a live process", n1->control + 6);

    /* the same --control, under its own name and under n1's */
    herdd_fails(c, "n1b", listen, n1->control, msg);
    herdd_fails(c, "n1", listen, n1->control, msg);
    assert_is_socket(n1->control + 6);
    json_t *m = cl_members(n1);
    assert_non_null(m);
    json_decref(m);

    /* n1's control socket as --listen */
    herdd_fails(c, "n1c", n1->control, NULL, msg);
    assert_is_socket(n1->control + 6);

    cl_stop_all(c);
    cl_pass(c);
}

/* The default control path /tmp/herd-CLUSTER-NAME.ctl (cluster "herd"
 * here): a second herdd of that name that gives no --control refuses to
 * start, and the first keeps answering. */
static void test_cluster_hostile_second_herdd_same_name_default_control(void **state)
{
    cluster_t *c = *state;
    char name[65], dflt[300], listen[64], msg[500];
    snprintf(name, sizeof(name), "hostile-%d-%04x", (int)getpid(),
             (unsigned)(cl_random(c) & 0xffff));
    snprintf(dflt, sizeof(dflt), "ipc:///tmp/herd-herd-%s.ctl", name);
    const char *extra[] = {"--control", dflt, "--heartbeat-ms", "100", NULL};
    cl_node_t *n1 = cl_start(c, name, NULL, NULL, extra);
    cl_node_t at = *n1;
    snprintf(at.control, sizeof(at.control), "%s", dflt);
    json_t *m = cl_members(&at);
    assert_non_null(m);
    json_decref(m);

    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", free_port(c));
    snprintf(msg, sizeof(msg), "%s is served by a live process", dflt + 6);
    herdd_fails(c, name, listen, NULL, msg);
    assert_is_socket(dflt + 6);
    m = cl_members(&at);
    assert_non_null(m);
    json_decref(m);

    /* killed with -9 it leaves the socket file: a new start takes it over */
    cl_kill9(n1);
    assert_is_socket(dflt + 6);
    cl_restart_args(c, n1, extra);
    m = cl_members(&at);
    assert_non_null(m);
    json_decref(m);
    cl_stop_all(c);
    unlink(dflt + 6);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_hostile_foreign_casts_do_not_crash_the_node,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_hostile_failed_start_keeps_regular_files,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_hostile_second_herdd_on_live_socket,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_hostile_second_herdd_same_name_default_control, cl_setup, cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
