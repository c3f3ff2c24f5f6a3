/*
 * test_ringctl.c - ringctl's offline commands as a script sees them: stdout,
 * stderr, exit codes and the JSON shapes of the command-line contract.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

typedef struct run {
    int status;
    char out[65536];
    char err[8192];
} run_t;

static void read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = '\0';
}

/* Run ringctl with argv (NULL-terminated, without the program name). stdout and
 * stderr go to temporary files so neither pipe can fill up and block. */
static void ringctl(run_t *r, const char *const *args)
{
    char *argv[64];
    size_t n = 0;
    argv[n++] = (char *)RINGCTL_PATH;
    for (; args[n - 1] != NULL && n < 63; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        unsetenv("HERD_NODE");
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    r->status = WEXITSTATUS(st);
    lseek(fileno(out), 0, SEEK_SET);
    lseek(fileno(err), 0, SEEK_SET);
    read_all(fileno(out), r->out, sizeof(r->out));
    read_all(fileno(err), r->err, sizeof(r->err));
    fclose(out);
    fclose(err);
}

#define RUN(r, ...) ringctl((r), (const char *const[]){__VA_ARGS__, NULL})

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    if (doc == NULL)
        fail_msg("not JSON (%s): %s", e.text, text);
    return doc;
}

static void test_ringctl_ring_table(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "ring", "--nodes", "a,b,c:256");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "MEMBER"));
    assert_non_null(strstr(r.out, "3 members, 512 points"));
    assert_string_equal(r.err, "");
}

static void test_ringctl_ring_json(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "--json", "ring", "--nodes", "a,b,c:256");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    json_t *members = json_object_get(doc, "members");
    assert_true(json_is_array(members));
    assert_int_equal(json_array_size(members), 3);
    double total = 0;
    const char *names[] = {"a", "b", "c"};
    const int weights[] = {128, 128, 256};
    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_array_get(members, i);
        assert_string_equal(json_string_value(json_object_get(m, "name")), names[i]);
        assert_int_equal(json_integer_value(json_object_get(m, "weight")), weights[i]);
        assert_int_equal(json_integer_value(json_object_get(m, "points")), weights[i]);
        total += json_real_value(json_object_get(m, "share"));
    }
    assert_float_equal(total, 1.0, 1e-9);
    json_decref(doc);
}

static void test_ringctl_owner_json_replicas(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "--json", "owner", "counter-42", "--nodes", "a,b,c,d", "--replicas", "3");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(doc, "key")), "counter-42");
    const char *owner = json_string_value(json_object_get(doc, "owner"));
    assert_non_null(owner);
    json_t *reps = json_object_get(doc, "replicas");
    assert_int_equal(json_array_size(reps), 3);
    assert_string_equal(json_string_value(json_array_get(reps, 0)), owner);
    assert_string_not_equal(json_string_value(json_array_get(reps, 1)), owner);

    /* the same question without replicas names the same owner, alone */
    run_t r1;
    RUN(&r1, "--json", "owner", "counter-42", "--nodes", "d,c,b,a");
    json_t *doc1 = parse_json(r1.out);
    assert_string_equal(json_string_value(json_object_get(doc1, "owner")), owner);
    assert_int_equal(json_array_size(json_object_get(doc1, "replicas")), 1);
    json_decref(doc1);
    json_decref(doc);
}

static void test_ringctl_owner_replicas_capped_at_members(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "--json", "owner", "k", "--nodes", "a,b", "--replicas", "10");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    assert_int_equal(json_array_size(json_object_get(doc, "replicas")), 2);
    json_decref(doc);
}

static void test_ringctl_owner_table(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "owner", "k", "--nodes", "only");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "owner: only\n");
}

static void test_ringctl_diff_add_json(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "--json", "diff", "--nodes", "a,b,c", "--add", "d");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    double moved = json_real_value(json_object_get(doc, "moved_share"));
    assert_true(moved > 0.10 && moved < 0.45); /* about 1/4 at weight 128 */
    json_t *moves = json_object_get(doc, "moves");
    assert_int_equal(json_array_size(moves), 3);
    double sum = 0;
    for (size_t i = 0; i < json_array_size(moves); i++) {
        json_t *m = json_array_get(moves, i);
        assert_string_equal(json_string_value(json_object_get(m, "to")), "d");
        sum += json_real_value(json_object_get(m, "share"));
    }
    assert_float_equal(sum, moved, 1e-9);
    json_decref(doc);
}

static void test_ringctl_diff_remove_and_weight(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "--json", "diff", "--nodes", "a,b,c", "--remove", "b");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    json_t *moves = json_object_get(doc, "moves");
    for (size_t i = 0; i < json_array_size(moves); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(moves, i), "from")),
                            "b");
    json_decref(doc);

    RUN(&r, "diff", "--nodes", "a,b,c", "--weight", "a:512");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "moved:"));

    RUN(&r, "--json", "diff", "--nodes", "a", "--remove", "a");
    assert_int_equal(r.status, 0);
    doc = parse_json(r.out);
    assert_float_equal(json_real_value(json_object_get(doc, "moved_share")), 1.0, 1e-9);
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(doc, "moves"), 0),
                                             "to")));
    json_decref(doc);
}

/* Every usage error: exit 2, a message on stderr naming the problem, and with
 * --json an error object on stdout. */
static void expect_usage(const char *needle, const char *const *args)
{
    run_t r;
    ringctl(&r, args);
    assert_int_equal(r.status, 2);
    if (strstr(r.err, needle) == NULL)
        fail_msg("stderr lacks '%s': %s", needle, r.err);
    if (strcmp(args[0], "--json") == 0) {
        json_t *doc = parse_json(r.out);
        assert_string_equal(json_string_value(json_object_get(doc, "error")), "EUSAGE");
        assert_non_null(strstr(json_string_value(json_object_get(doc, "message")), needle));
        json_decref(doc);
    } else {
        assert_string_equal(r.out, "");
    }
}

#define USAGE(needle, ...) expect_usage((needle), (const char *const[]){__VA_ARGS__, NULL})

static void test_ringctl_usage_errors(void **state)
{
    (void)state;
    USAGE("missing COMMAND", "--json");
    USAGE("unknown command 'rings'", "rings");
    USAGE("unknown option '--bogus'", "ring", "--nodes", "a", "--bogus");
    USAGE("unknown option '--frobnicate'", "--frobnicate", "ring");
    USAGE("--nodes needs a value", "ring", "--nodes");
    USAGE("give --nodes a,b,c (offline) or --node ADDR", "--json", "ring");
    USAGE("no node to ask", "members");
    USAGE("missing KEY", "owner", "--nodes", "a");
    USAGE("unexpected argument 'extra'", "owner", "k", "extra", "--nodes", "a");
    USAGE("empty member", "ring", "--nodes", "a,,b");
    USAGE("--nodes is empty", "ring", "--nodes", "");
    USAGE("listed twice", "ring", "--nodes", "a,b,a");
    USAGE("bad member name 'a b'", "--json", "ring", "--nodes", "a b");
    USAGE("longer than 64", "ring", "--nodes",
          "n12345678901234567890123456789012345678901234567890123456789012345");
    USAGE("out of range", "ring", "--nodes", "a:0");
    USAGE("out of range", "ring", "--nodes", "a:4097");
    USAGE("bad weight", "ring", "--nodes", "a:x1");
    USAGE("bad weight", "ring", "--nodes", "a:");
    USAGE("--replicas wants", "owner", "k", "--nodes", "a", "--replicas", "0");
    USAGE("--replicas wants", "owner", "k", "--nodes", "a", "--replicas", "-1");
    USAGE("--replicas wants", "owner", "k", "--nodes", "a", "--replicas", "3x");
    USAGE("option '--replicas' does not apply to ring", "ring", "--nodes", "a", "--replicas", "2");
    USAGE("option '--add' does not apply to owner", "owner", "k", "--nodes", "a", "--add", "b");
    USAGE("at least one --add", "diff", "--nodes", "a,b");
    USAGE("already a member", "diff", "--nodes", "a,b", "--add", "a");
    USAGE("'z' is not a member", "diff", "--nodes", "a,b", "--remove", "z");
    USAGE("--weight wants NAME:WEIGHT", "diff", "--nodes", "a,b", "--weight", "a");
}

static void test_ringctl_help(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: ringctl"));
    const char *cmds[] = {"ring", "owner", "diff"};
    for (size_t i = 0; i < 3; i++) {
        RUN(&r, cmds[i], "--help");
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, cmds[i]));
        assert_non_null(strstr(r.out, "JSON:"));
        run_t h;
        RUN(&h, "help", cmds[i]);
        assert_string_equal(h.out, r.out);
    }
}

/* Global options work after the command too (`ringctl ring --nodes a --json`
 * was a usage error); each option is given once. */
static void test_ringctl_options_after_the_command(void **state)
{
    (void)state;
    run_t r;
    RUN(&r, "ring", "--nodes", "a,b", "--json");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    assert_int_equal(json_array_size(json_object_get(doc, "members")), 2);
    json_decref(doc);
    RUN(&r, "owner", "k", "--json", "--nodes", "a");
    assert_int_equal(r.status, 0);
    RUN(&r, "--json", "ring", "--json", "--nodes", "a");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--json given twice"));
    RUN(&r, "ring", "--nodes", "a", "--nodes", "b");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--nodes given twice"));
    RUN(&r, "owner", "k", "--nodes", "a,b", "--replicas", "1", "--replicas", "2");
    assert_int_equal(r.status, 2);
    RUN(&r, "--node", "ipc:///x", "stats", "--node", "ipc:///y");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--node given twice"));
    RUN(&r, "drain", "n1", "--off", "--off");
    assert_int_equal(r.status, 2);
}

/* 1,024 members in --nodes: well under a second (it took 2.2 s, one ring
 * rebuild per member). */
static void test_ringctl_ring_many_members_fast(void **state)
{
    (void)state;
    char *list = malloc(1024 * 8);
    assert_non_null(list);
    size_t used = 0;
    for (int i = 0; i < 1024; i++)
        used += (size_t)sprintf(list + used, "%sn%d", i ? "," : "", i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_t r;
    RUN(&r, "ring", "--nodes", list);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "1024 members, 131072 points"));
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (s > 1.0)
        fail_msg("ring --nodes with 1024 members took %.2f s", s);
    free(list);
}

/* ringctl tells a missing socket, a file that is not one and a socket
 * nobody serves apart, instead of "does not answer" for all. */
static void test_ringctl_says_why_a_node_cannot_be_reached(void **state)
{
    (void)state;
    char dir[] = "/tmp/ringctl-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[100], addr[120];
    run_t r;
    snprintf(path, sizeof(path), "%s/missing.ctl", dir);
    snprintf(addr, sizeof(addr), "ipc://%s", path);
    RUN(&r, "--node", addr, "stats");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "no such socket"));
    assert_null(strstr(r.err, "does not answer"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    RUN(&r, "--node", addr, "members");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "not a socket"));
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* bound, never listening: refuses */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    RUN(&r, "--json", "--node", addr, "stats");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "nobody serves"));
    if (geteuid() != 0) { /* root opens any socket */
        chmod(path, 0);
        listen(fd, 1);
        RUN(&r, "--node", addr, "stats");
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "permission denied"));
    }
    close(fd);
    unlink(path);
    rmdir(dir);
}

/* start --replicas N: 1-5, before or after the command's arguments, given
 * once; anything else is a usage error (exit 2) before any node is asked. */
static void test_ringctl_start_replicas_parsed(void **state)
{
    (void)state;
    const char *want = "--replicas wants a whole number 1-5";
    USAGE(want, "start", "counter", "c1", "--replicas", "9");
    USAGE(want, "--json", "start", "counter", "c1", "--replicas", "6");
    USAGE(want, "start", "counter", "c1", "--replicas", "0");
    USAGE(want, "start", "counter", "c1", "--replicas", "-1");
    USAGE(want, "start", "counter", "c1", "--replicas", "2x");
    USAGE(want, "start", "counter", "c1", "--replicas", "");
    USAGE(want, "start", "counter", "c1", "--replicas", " 2");
    USAGE(want, "start", "counter", "c1", "--replicas=99999999999999999999");
    USAGE("got '9'", "start", "--replicas", "9", "counter", "c1");
    USAGE("--replicas needs a value", "start", "counter", "c1", "--replicas");
    USAGE("--replicas given twice", "start", "counter", "c1", "--replicas", "2",
          "--replicas", "3");
    USAGE("--replicas given twice", "start", "--replicas=2", "counter", "c1", "--replicas=2");
    USAGE("unknown option '--replicas'", "stop", "c1", "--replicas", "2");
    USAGE("unknown option '--replicas'", "children", "--replicas", "2");
    USAGE("missing argument", "start", "counter", "--replicas", "2");
    USAGE("unexpected argument 'x'", "start", "counter", "c1", "arg", "x", "--replicas", "2");

    /* a good N anywhere among the arguments: the request goes to the node
     * (here none: exit 1, not a usage error) */
    const char *const *ok[] = {
        (const char *const[]){"start", "counter", "c1", "--replicas", "3", NULL},
        (const char *const[]){"start", "--replicas", "1", "counter", "c1", "7", NULL},
        (const char *const[]){"start", "counter", "--replicas=5", "c1", NULL},
        (const char *const[]){"start", "counter", "c1", "7", "--replicas", "2", "--json",
                              NULL},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *args[12] = {"--node", "ipc:///nonexistent/herd.ctl"};
        size_t n = 2;
        for (const char *const *a = ok[i]; *a; a++)
            args[n++] = *a;
        args[n] = NULL;
        run_t r;
        ringctl(&r, args);
        if (r.status != 1 || strstr(r.err, "no such socket") == NULL)
            fail_msg("start case %zu: exit %d, want 1 (no node): %s", i, r.status, r.err);
    }
}

/* The help of the commands replication shows in: the options and JSON keys. */
static void test_ringctl_help_documents_replication(void **state)
{
    (void)state;
    static const struct {
        const char *cmd;
        const char *keys[24];
    } want[] = {
        {"start", {"--replicas N", "1-5", "\"replica_nodes\"", NULL}},
        {"children",
         {"COPIES", "under-replicated", "\"copies\"", "\"replicas\"", "\"acked\"",
          "\"version\"", "\"released\"", "\"under_replicated\"", NULL}},
        {"whereis", {"\"replica_nodes\"", NULL}},
        {"stats",
         {"\"replication\"", "\"puts_out\"", "\"puts_in\"", "\"acks_in\"", "\"refused\"",
          "\"bytes_out\"", "\"bytes_in\"", "\"send_failed\"", "\"unreplicated\"",
          "\"too_big\"", "\"promoted\"", "\"queries\"", "\"query_timeouts\"", "\"held\"",
          "\"held_bytes\"", "\"collected\"", "\"handed_over\"", "\"merged_in\"", "\"others_dropped\"", "\"reputs\"", "\"refusing\"", "\"malformed\"",
          "\"settled\"", NULL}},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        run_t r;
        RUN(&r, want[i].cmd, "--help");
        assert_int_equal(r.status, 0);
        for (size_t k = 0; want[i].keys[k]; k++)
            if (strstr(r.out, want[i].keys[k]) == NULL)
                fail_msg("ringctl %s --help lacks %s:\n%s", want[i].cmd, want[i].keys[k],
                         r.out);
    }
    run_t r;
    RUN(&r, "--help");
    assert_non_null(strstr(r.out, "[--replicas N]               with N copies"));
}

/* A request over the node's 64 KiB limit is refused before it is sent. */
static void test_ringctl_refuses_an_oversize_request(void **state)
{
    (void)state;
    char *arg = malloc(70001);
    assert_non_null(arg);
    memset(arg, 'x', 70000);
    arg[70000] = '\0';
    run_t r;
    RUN(&r, "--node", "ipc:///nonexistent/herd.ctl", "start", "counter", "c1", arg);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "over the node's limit of 65536"));
    free(arg);
}

/* names --where KEY=VALUE: every bad one is a usage error (exit 2) before
 * any node is asked; good ones (at the limits) go to the node (here none:
 * exit 1, not a usage error). */
static void test_ringctl_names_where_parsed(void **state)
{
    (void)state;
    char key32[40], value128[140], value127[140], kv[200];
    memset(key32, 'k', 32);
    key32[32] = '\0';
    memset(value128, 'v', 128);
    value128[128] = '\0';
    memset(value127, 'v', 127);
    value127[127] = '\0';
    USAGE("--where wants KEY=VALUE, got 'zone'", "names", "--where", "zone");
    USAGE("--where wants KEY=VALUE, got '=eu'", "--json", "names", "--where", "=eu");
    USAGE("--where wants KEY=VALUE, got ''", "names", "--where", "");
    USAGE("--where needs a value", "names", "--where");
    snprintf(kv, sizeof(kv), "%s=x", key32);
    USAGE("is longer than 31 bytes", "names", "--where", kv);
    USAGE("is longer than 31 bytes", "--json", "names", "--where", kv);
    snprintf(kv, sizeof(kv), "zone=%s", value128);
    USAGE("--where value of 'zone' is longer than 127 bytes", "names", "--where", kv);
    USAGE("--where key 'zone' given twice", "names", "--where", "zone=eu", "--where",
          "zone=us");
    USAGE("at most 8 --where", "names", "--where", "a=1", "--where", "b=1", "--where", "c=1",
          "--where", "d=1", "--where", "e=1", "--where", "f=1", "--where", "g=1", "--where",
          "h=1", "--where", "i=1");
    USAGE("is not UTF-8", "names", "--where", "zone=\xff");
    USAGE("option '--where' does not apply to whereis", "whereis", "n", "--where", "a=1");
    USAGE("option '--where' does not apply to ring", "ring", "--nodes", "a", "--where", "a=1");
    USAGE("unknown option '--where'", "children", "--where", "a=1");

    key32[31] = '\0';
    snprintf(kv, sizeof(kv), "%s=%s", key32, value127);
    const char *const *ok[] = {
        (const char *const[]){"names", "--where", "zone=eu", NULL},
        (const char *const[]){"names", "pre", "--where", "zone=", "--where", "a=b=c", NULL},
        (const char *const[]){"--json", "names", "--where=zone=eu", "pre", NULL},
        (const char *const[]){"names", "--where", kv, NULL},
        (const char *const[]){"names", "--where", "a=1", "--where", "b=1", "--where", "c=1",
                              "--where", "d=1", "--where", "e=1", "--where", "f=1",
                              "--where", "g=1", "--where", "h=1", NULL},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *args[24] = {"--node", "ipc:///nonexistent/herd.ctl"};
        size_t n = 2;
        for (const char *const *a = ok[i]; *a; a++)
            args[n++] = *a;
        args[n] = NULL;
        run_t r;
        ringctl(&r, args);
        if (r.status != 1 || strstr(r.err, "no such socket") == NULL)
            fail_msg("names case %zu: exit %d, want 1 (no node): %s", i, r.status, r.err);
    }
    run_t r;
    RUN(&r, "names", "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "[--where KEY=VALUE]..."));
    RUN(&r, "--help");
    assert_non_null(strstr(r.out, "names [PREFIX] [--where K=V]..."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ringctl_ring_table),
        cmocka_unit_test(test_ringctl_options_after_the_command),
        cmocka_unit_test(test_ringctl_ring_many_members_fast),
        cmocka_unit_test(test_ringctl_says_why_a_node_cannot_be_reached),
        cmocka_unit_test(test_ringctl_refuses_an_oversize_request),
        cmocka_unit_test(test_ringctl_ring_json),
        cmocka_unit_test(test_ringctl_owner_json_replicas),
        cmocka_unit_test(test_ringctl_owner_replicas_capped_at_members),
        cmocka_unit_test(test_ringctl_owner_table),
        cmocka_unit_test(test_ringctl_diff_add_json),
        cmocka_unit_test(test_ringctl_diff_remove_and_weight),
        cmocka_unit_test(test_ringctl_usage_errors),
        cmocka_unit_test(test_ringctl_names_where_parsed),
        cmocka_unit_test(test_ringctl_help),
        cmocka_unit_test(test_ringctl_start_replicas_parsed),
        cmocka_unit_test(test_ringctl_help_documents_replication),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
