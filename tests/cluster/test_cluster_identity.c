/*
 * test_cluster_identity.c - a node's name and start are its own, with real
 * herdd processes on 127.0.0.1 (issue 12, items 2 and 4):
 *
 * 1. two nodes, same name: a second herdd started with a live node's --name
 *    (another --listen and --control), joining through another member or
 *    through the live node itself, exits 1 before its ready line, naming
 *    the live node and its address; the live node logs that a second node
 *    of its name tried to join, and counts it (stats.rejected.name), the
 *    seed logs the HELLO; every member keeps the live node at its
 *    incarnation, and the counters it holds keep their values.
 * 2. same control path: a second herdd given a live node's --control exits
 *    1 naming the path; the live node keeps answering on it.
 * 3. restart after kill -9: the node started again at once with the same
 *    name and address, before the others declared it down, rejoins quickly
 *    with a higher incarnation.
 * 4. restart and replay: frames a node sent (recorded on the way out, as a
 *    tap on the wire would: no cookie needed), replayed after that node
 *    died to a node that restarted, do not bring the dead node up there.
 *
 * Every wait is bounded, with slack for a sanitized build on a loaded
 * 2-core machine.
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
#include <nanomsg/pipeline.h>

#include "cluster_harness.h"
#include "frame.h"
#include "herd_runtime.h"
#include "runtime_layers.h"
#include "transport.h"

#define JOIN_MS 15000
#define RUN_MS 20000    /* a second herdd that must fail does so well within this */
#define REJOIN_MS 5000  /* a restart at the same address is back within this */
#define WATCH_MS 2500   /* how long a replay gets to (wrongly) bring a node up */
#define RECORD_MAX 4096

/* Down only after 5 s of silence: a killed node is not declared down by
 * timeouts before it restarts, and the in-test node's loop does not run
 * while the test waits for a herdd or ringctl. */
static const char *const TIMING[] = {"--heartbeat-ms", "100", "--down-ms", "5000", NULL};

/* ---- helpers ---------------------------------------------------------------------- */

static int free_port(cluster_t *c)
{
    return 20000 + (int)(cl_random(c) % 40001u);
}

/* Start counters ctr0, ctr1, ... through `via` until one runs on `holder`;
 * its name into name[cap]. */
static void counter_on(const cl_node_t *via, const char *holder, char *name, size_t cap)
{
    for (int i = 0; i < 32; i++) {
        snprintf(name, cap, "ctr%d", i);
        char why[600];
        json_t *r = cl_ask_args(via, "start",
                                json_pack("{s:s, s:s}", "service", "counter", "name", name),
                                NULL, 0, why, sizeof(why));
        if (r == NULL)
            fail_msg("start counter %s: %s", name, why);
        const char *node = json_string_value(json_object_get(r, "node"));
        int there = node && strcmp(node, holder) == 0;
        json_decref(r);
        if (there)
            return;
    }
    fail_msg("no counter of 32 landed on %s", holder);
}

/* Run herdd with `args` (after the program's name) expecting it to refuse
 * to start: exit 1, no ready line, every needle in its stderr. */
static void herdd_refuses(cluster_t *c, const char *const *args, const char *const *needles)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    cl_run_prog(c, HERDD_PATH, args, RUN_MS, r);
    int ok = r->status == 1 && strstr(r->err, "herdd: ready") == NULL;
    for (size_t i = 0; needles[i]; i++)
        ok = ok && strstr(r->err, needles[i]) != NULL;
    if (!ok)
        fail_msg("herdd %s %s: exit %d after %ld ms, wanted 1 saying '%s'; stderr:\n%s",
                 args[0], args[1], r->status, r->elapsed_ms, needles[0], r->err);
    print_message("identity: refused in %ld ms: %s", r->elapsed_ms, r->err);
    free(r);
}

/* `observer` lists `name` up at incarnation `inc`. */
static void assert_up_at(const cl_node_t *observer, const char *name, uint64_t inc)
{
    char s[32];
    uint64_t got = 0;
    if (cl_state(observer, name, s, sizeof(s), &got) == NULL)
        fail_msg("%s does not answer", observer->name);
    if (strcmp(s, "up") != 0 || got != inc)
        fail_msg("%s lists %s '%s' at incarnation %llu, want up at %llu", observer->name, name,
                 s, (unsigned long long)got, (unsigned long long)inc);
}

/* ---- 1. two nodes, same name ------------------------------------------------------- */

static void test_cluster_identity_same_name_refused(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n1 = cl_start(c, "hx1", NULL, NULL, TIMING);
    cl_node_t *n2 = cl_start(c, "hx2", n1, NULL, TIMING);
    cl_node_t *both[] = {n1, n2};
    assert_true(cl_wait_all_up(both, 2, JOIN_MS) >= 0);
    char ctr[32];
    counter_on(n1, "hx2", ctr, sizeof(ctr));
    for (long long v = 1; v <= 3; v++)
        assert_int_equal(cl_ringctl_incr(c, n1, ctr), v);
    char s[32];
    uint64_t inc1 = 0, inc2 = 0;
    assert_non_null(cl_state(n1, "hx1", s, sizeof(s), &inc1));
    assert_non_null(cl_state(n1, "hx2", s, sizeof(s), &inc2));
    assert_true(inc1 != 0 && inc2 != 0);

    /* joining through hx1, then through hx2 itself */
    const cl_node_t *seeds[] = {n1, n2};
    for (int k = 0; k < 2; k++) {
        char listen[64], control[320];
        snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", free_port(c));
        snprintf(control, sizeof(control), "ipc://%s/second%d.ctl", c->dir, k);
        const char *args[] = {"--name", "hx2", "--listen", listen, "--join",
                              seeds[k]->listen, "--cookie-file", c->cookie, "--control",
                              control, "--heartbeat-ms", "100", "--down-ms", "5000", NULL};
        const char *needles[] = {"already has a live node named hx2", n2->listen, NULL};
        herdd_refuses(c, args, needles);
        assert_up_at(n1, "hx2", inc2);
        assert_up_at(n2, "hx2", inc2);
        assert_up_at(n2, "hx1", inc1);
        json_t *m = cl_members(n1);
        assert_non_null(m);
        assert_int_equal(json_array_size(m), 2);
        json_decref(m);
    }
    /* the cluster said so: the live node, and the seed that heard the HELLO */
    assert_true(cl_log_has(n2, "a second node named hx2"));
    assert_true(cl_log_has(n1, "says HELLO while hx2"));
    assert_true(cl_stat(n2, NULL, "name") >= 2);
    /* the counter hx2 holds kept its value */
    assert_int_equal(cl_ringctl_incr(c, n1, ctr), 4);
    assert_int_equal(cl_ringctl_incr(c, n2, ctr), 5);
    assert_up_at(n1, "hx2", inc2);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 2. same control path ---------------------------------------------------------- */

static void test_cluster_identity_same_control_path_refused(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n1 = cl_start(c, "hx1", NULL, NULL, TIMING);
    cl_node_t *n2 = cl_start(c, "hx2", n1, NULL, TIMING);
    cl_node_t *both[] = {n1, n2};
    assert_true(cl_wait_all_up(both, 2, JOIN_MS) >= 0);
    char s[32];
    uint64_t inc2 = 0;
    assert_non_null(cl_state(n1, "hx2", s, sizeof(s), &inc2));

    /* under another name, and under hx2's */
    static const char *const names[] = {"hx3", "hx2"};
    for (int k = 0; k < 2; k++) {
        char listen[64], msg[400];
        snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", free_port(c));
        snprintf(msg, sizeof(msg), "%s is served by a live process", n2->control + 6);
        const char *args[] = {"--name", names[k], "--listen", listen, "--join", n1->listen,
                              "--cookie-file", c->cookie, "--control", n2->control, NULL};
        const char *needles[] = {msg, NULL};
        herdd_refuses(c, args, needles);
        json_t *m = cl_members(n2); /* hx2 still answers on its socket */
        assert_non_null(m);
        assert_int_equal(json_array_size(m), 2);
        json_decref(m);
        assert_up_at(n1, "hx2", inc2);
    }
    json_t *m = cl_members(n1);
    assert_non_null(m);
    assert_null(cl_member(m, "hx3"));
    json_decref(m);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 3. restart after kill -9 ------------------------------------------------------ */

static void test_cluster_identity_restart_after_kill9_rejoins(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n1 = cl_start(c, "hx1", NULL, NULL, TIMING);
    cl_node_t *n2 = cl_start(c, "hx2", n1, NULL, TIMING);
    cl_node_t *both[] = {n1, n2};
    assert_true(cl_wait_all_up(both, 2, JOIN_MS) >= 0);
    char s[32], before[32];
    uint64_t inc0 = 0;
    assert_non_null(cl_state(n1, "hx2", s, sizeof(s), &inc0));

    cl_kill9(n2);
    uint64_t t0 = cl_now_ms();
    cl_restart_args(c, n2, TIMING);
    long ready_ms = (long)(cl_now_ms() - t0);
    assert_non_null(cl_state(n1, "hx2", before, sizeof(before), NULL));
    uint64_t inc = 0;
    for (;;) {
        if (cl_state(n1, "hx2", s, sizeof(s), &inc) && strcmp(s, "up") == 0 && inc > inc0)
            break;
        if (cl_now_ms() - t0 > REJOIN_MS)
            fail_msg("hx1 lists hx2 '%s' at incarnation %llu %d ms after the restart (before: "
                     "%llu)", s, (unsigned long long)inc, REJOIN_MS, (unsigned long long)inc0);
        cl_sleep_ms(20);
    }
    long rejoin_ms = (long)(cl_now_ms() - t0);
    print_message("identity: hx2 ready %ld ms after kill -9 and restart, up again at hx1 after "
                  "%ld ms (hx1 listed it '%s' when it was ready)\n",
                  ready_ms, rejoin_ms, before);
    assert_true(cl_wait_all_up(both, 2, JOIN_MS) >= 0);
    assert_false(cl_log_has(n2, "not starting"));
    assert_up_at(n2, "hx2", inc);
    json_t *m = cl_members(n1);
    assert_non_null(m);
    assert_int_equal(json_array_size(m), 2);
    json_decref(m);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 4. restart and replay --------------------------------------------------------- */

/* A transport that keeps a copy of every frame it sends: a tap on the wire
 * (it needs no cookie) around the nanomsg transport. */
typedef struct recorder {
    transport_t inner;
    uint8_t *frame[RECORD_MAX];
    size_t len[RECORD_MAX];
    size_t count;
} recorder_t;

static int rec_listen(void *impl, const char *address, transport_recv_cb cb, void *data)
{
    recorder_t *r = impl;
    return r->inner.ops->listen(r->inner.impl, address, cb, data);
}

static int rec_send(void *impl, const char *address, const uint8_t *frame, size_t len)
{
    recorder_t *r = impl;
    if (r->count < RECORD_MAX && (r->frame[r->count] = malloc(len)) != NULL) {
        memcpy(r->frame[r->count], frame, len);
        r->len[r->count++] = len;
    }
    return r->inner.ops->send(r->inner.impl, address, frame, len);
}

static void rec_forget(void *impl, const char *address)
{
    recorder_t *r = impl;
    r->inner.ops->forget(r->inner.impl, address);
}

static void rec_stats(void *impl, transport_stats_t *out)
{
    recorder_t *r = impl;
    r->inner.ops->stats(r->inner.impl, out);
}

static int rec_link_lost(void *impl, const char *address)
{
    recorder_t *r = impl;
    return r->inner.ops->link_lost ? r->inner.ops->link_lost(r->inner.impl, address) : 0;
}

static void rec_close(void *impl)
{
    recorder_t *r = impl;
    r->inner.ops->close(r->inner.impl); /* the recording stays with the test */
}

static const transport_ops_t rec_ops = {rec_listen, rec_send,      rec_forget,
                                        rec_stats,  rec_link_lost, rec_close};

static size_t recorded_of(const recorder_t *r, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        n += r->frame[i][5] == type; /* the header's type byte (PROTOCOL.md) */
    return n;
}

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

/* Node fzB in this process, joined to `seed` with the cluster's cookie over
 * the recorder `rec`. */
static herd_node_t *recorded_join(cluster_t *c, recorder_t *rec, const cl_node_t *seed)
{
    char secret[4096], listen[64];
    size_t len;
    read_secret(c->cookie, secret, sizeof(secret), &len);
    herd_node_config_t nc = {.name = "fzB"};
    herd_node_t *n;
    assert_int_equal(herd_node_new(&nc, &n), 0);
    const char *seeds[] = {seed->listen};
    transport_t tap = {&rec_ops, rec};
    int rc = -1;
    for (int attempt = 0; attempt < 40 && rc != 0; attempt++) {
        assert_int_equal(transport_nn_new(herd_node_loop(n), frame_size(FRAME_DEFAULT_MAX_BODY),
                                          &rec->inner),
                         0);
        snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", free_port(c));
        herd_cluster_config_t cc = {.listen = listen, .seeds = seeds, .seed_count = 1,
                                    .secret = secret, .secret_len = len, .heartbeat_ms = 100,
                                    .down_ms = 5000};
        rc = herd_cluster_start_with(n, &cc, &tap);
    }
    assert_int_equal(rc, 0);
    return n;
}

/* Run fzB's loop until `seed` lists it up and it lists `seed` up. */
static void wait_mutual_up(herd_node_t *b, const cl_node_t *seed)
{
    uint64_t deadline = cl_now_ms() + JOIN_MS;
    herd_member_info_t info;
    for (;;) {
        char s[32];
        const char *st = cl_state(seed, "fzB", s, sizeof(s), NULL);
        int seen = herd_cluster_member(b, herd_node_id_of(seed->name), &info) == 0 &&
                   info.state == HERD_MEMBER_UP;
        if (st && strcmp(st, "up") == 0 && seen)
            return;
        if (cl_now_ms() > deadline)
            fail_msg("fzB and %s do not see each other up within %d ms", seed->name, JOIN_MS);
        herd_node_run_for(b, 50);
    }
}

/* Send every recorded frame to `address` through a raw nanomsg PUSH socket,
 * `rounds` times. */
static void replay_to(const recorder_t *rec, const char *address, int rounds)
{
    int sock = nn_socket(AF_SP, NN_PUSH);
    assert_true(sock >= 0);
    int ms = 5000;
    assert_int_equal(nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &ms, sizeof(ms)), 0);
    assert_true(nn_connect(sock, address) >= 0);
    for (int k = 0; k < rounds; k++) {
        for (size_t i = 0; i < rec->count; i++)
            assert_int_equal(nn_send(sock, rec->frame[i], rec->len[i], 0), (int)rec->len[i]);
        cl_sleep_ms(200);
    }
    cl_sleep_ms(300); /* let the last ones leave before the socket closes */
    nn_close(sock);
}

static void test_cluster_identity_restart_replay(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "fzA", NULL, NULL, TIMING);
    recorder_t *rec = calloc(1, sizeof(*rec));
    assert_non_null(rec);
    herd_node_t *b = recorded_join(c, rec, a);
    wait_mutual_up(b, a);
    /* fzA stopped for a while: fzB asks it with HELLOs to no incarnation */
    cl_signal(a, SIGSTOP);
    herd_node_run_for(b, 800);
    cl_signal(a, SIGCONT);
    wait_mutual_up(b, a);
    size_t hellos = recorded_of(rec, FRAME_HELLO);
    print_message("identity: recorded %zu frames of fzB, %zu HELLOs\n", rec->count, hellos);
    assert_true(hellos >= 2);

    /* fzB dies (no LEAVE), fzA is killed and started again */
    herd_node_free(b);
    cl_kill9(a);
    cl_restart_args(c, a, TIMING);
    replay_to(rec, a->listen, 3);
    uint64_t t0 = cl_now_ms();
    while (cl_now_ms() - t0 < WATCH_MS) {
        json_t *m = cl_members(a);
        assert_non_null(m);
        json_t *x = cl_member(m, "fzB");
        if (x)
            fail_msg("the restarted fzA lists dead fzB as '%s' after a replay",
                     json_string_value(json_object_get(x, "state")));
        json_decref(m);
        cl_sleep_ms(CL_POLL_MS);
    }
    long long replay = cl_stat(a, NULL, "replay"), rate = cl_stat(a, NULL, "rate");
    print_message("identity: the restarted fzA refused %lld replayed frames, held back %lld "
                  "HELLO answers\n", replay, rate);
    assert_true(replay > 0);
    assert_true(rate > 0);
    for (size_t i = 0; i < rec->count; i++)
        free(rec->frame[i]);
    free(rec);
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_identity_same_name_refused, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_identity_same_control_path_refused,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_identity_restart_after_kill9_rejoins,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_identity_restart_replay, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
