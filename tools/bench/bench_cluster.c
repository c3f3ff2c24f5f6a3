/*
 * bench_cluster - what herd's layers cost between two nodes on loopback.
 *
 * In one run, side by side: bare nanomsg (PUSH/PULL throughput of 64-byte
 * messages, REQ/REP round trips) and herd (remote casts between two nodes,
 * calls from outside code and from a process). Both nodes share one loop and
 * one thread, as do the bare sockets, so the ratio is layers against layers.
 *
 *   bench cluster <metric> <value> <unit> [key=value ...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/reqrep.h>

#include "herd_runtime.h"

#define MSG_SIZE 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void percentiles(double *v, size_t n, double *median, double *p99)
{
    qsort(v, n, sizeof(double), cmp_double);
    *median = v[n / 2];
    *p99 = v[(size_t)((double)n * 0.99)];
}

static void die(const char *what)
{
    fprintf(stderr, "bench_cluster: %s failed\n", what);
    exit(1);
}

/* ---- bare nanomsg ---------------------------------------------------------------- */

static double bare_push_pull(const char *url, size_t n)
{
    int pull = nn_socket(AF_SP, NN_PULL), push = nn_socket(AF_SP, NN_PUSH);
    if (pull < 0 || push < 0 || nn_bind(pull, url) < 0 || nn_connect(push, url) < 0)
        die("nanomsg push/pull setup");
    char msg[MSG_SIZE] = {0}, buf[MSG_SIZE];
    /* one warm-up message so the connection exists */
    nn_send(push, msg, sizeof(msg), 0);
    nn_recv(pull, buf, sizeof(buf), 0);
    size_t sent = 0, got = 0;
    double t0 = now_s(), deadline = t0 + 30;
    while (got < n && now_s() < deadline) {
        while (sent < n && sent - got < 10000 && nn_send(push, msg, sizeof(msg), NN_DONTWAIT) >= 0)
            sent++;
        while (nn_recv(pull, buf, sizeof(buf), NN_DONTWAIT) >= 0)
            got++;
    }
    double dt = now_s() - t0;
    printf("bench cluster bare_nanomsg_msgs_per_s %.0f msg/s size=%d msgs=%zu\n",
           (double)got / dt, MSG_SIZE, got);
    nn_close(push);
    nn_close(pull);
    return (double)got / dt;
}

static double bare_req_rep(const char *url, size_t n)
{
    int rep = nn_socket(AF_SP, NN_REP), req = nn_socket(AF_SP, NN_REQ);
    if (rep < 0 || req < 0 || nn_bind(rep, url) < 0 || nn_connect(req, url) < 0)
        die("nanomsg req/rep setup");
    char msg[MSG_SIZE] = {0}, buf[MSG_SIZE];
    double *rtt = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double t = now_s();
        if (nn_send(req, msg, sizeof(msg), 0) < 0 || nn_recv(rep, buf, sizeof(buf), 0) < 0 ||
            nn_send(rep, buf, sizeof(buf), 0) < 0 || nn_recv(req, buf, sizeof(buf), 0) < 0)
            die("nanomsg req/rep round trip");
        rtt[i] = (now_s() - t) * 1e6;
    }
    double med, p99;
    percentiles(rtt, n, &med, &p99);
    printf("bench cluster bare_nanomsg_rtt_median_us %.1f us calls=%zu\n", med, n);
    printf("bench cluster bare_nanomsg_rtt_p99_us %.1f us calls=%zu\n", p99, n);
    free(rtt);
    nn_close(req);
    nn_close(rep);
    return med;
}

/* ---- herd ---------------------------------------------------------------------- */

static size_t sink_count;

static int sink_cast(herd_proc_t *self, void *st, const herd_msg_t *m)
{
    (void)self, (void)st, (void)m;
    sink_count++;
    return 0;
}

static int echo_call(herd_proc_t *self, void *st, const herd_msg_t *m, herd_from_t from)
{
    (void)st;
    return herd_reply(herd_proc_node(self), from, 0, m->data, m->len);
}

static const herd_behaviour_t server = {
    .name = "bench-server", .handle_cast = sink_cast, .handle_call = echo_call};

/* A client process that calls the server back to back and times each call. */
typedef struct client {
    herd_pid_t server;
    size_t left, done;
    double started;
    double *rtt;
} client_t;

static client_t the_client;

static int client_next(herd_proc_t *self)
{
    uint64_t ref;
    char msg[MSG_SIZE] = {0};
    the_client.started = now_s();
    return herd_call(self, the_client.server, msg, sizeof(msg), 5000, &ref);
}

static int client_cast(herd_proc_t *self, void *st, const herd_msg_t *m)
{
    (void)st, (void)m;
    return client_next(self);
}

static int client_info(herd_proc_t *self, void *st, const herd_msg_t *m)
{
    (void)st;
    if (m->kind != HERD_MSG_REPLY || m->status != 0)
        return m->kind == HERD_MSG_REPLY ? m->status : 0;
    the_client.rtt[the_client.done++] = (now_s() - the_client.started) * 1e6;
    if (--the_client.left == 0)
        return 0;
    return client_next(self);
}

static const herd_behaviour_t client = {
    .name = "bench-client", .handle_cast = client_cast, .handle_info = client_info};

static herd_node_t *make_node(uv_loop_t *loop, const char *name, const char *listen,
                              const char *seed)
{
    herd_node_t *n;
    herd_node_config_t nc = {.name = name, .loop = loop};
    if (herd_node_new(&nc, &n) != 0)
        die("herd_node_new");
    static const char secret[] = "bench-cluster-secret-0123456789";
    herd_cluster_config_t cc = {.listen = listen, .secret = secret,
                                .secret_len = sizeof(secret) - 1,
                                .seeds = seed ? &seed : NULL, .seed_count = seed ? 1 : 0};
    if (herd_cluster_start(n, &cc) != 0)
        die("herd_cluster_start");
    return n;
}

static void wait_joined(herd_node_t *a)
{
    herd_member_info_t m[4];
    for (int i = 0; i < 100; i++) {
        if (herd_cluster_members(a, m, 4) == 2 && m[0].state == HERD_MEMBER_UP &&
            m[1].state == HERD_MEMBER_UP)
            return;
        herd_node_run_for(a, 50);
    }
    die("the two nodes joining");
}

static double herd_casts(herd_node_t *a, herd_pid_t sink, size_t n)
{
    char msg[MSG_SIZE] = {0};
    sink_count = 0;
    double t0 = now_s(), deadline = t0 + 60;
    size_t sent = 0;
    while (sink_count < n && now_s() < deadline) {
        /* keep at most 20k in flight: the receiver's mailbox stays under its bound */
        while (sent < n && sent - sink_count < 20000)
            if (herd_node_cast(a, sink, msg, sizeof(msg)) == 0)
                sent++;
            else
                break;
        herd_node_run_for(a, 1);
    }
    double dt = now_s() - t0;
    printf("bench cluster remote_cast_msgs_per_s %.0f msg/s size=%d msgs=%zu\n",
           (double)sink_count / dt, MSG_SIZE, sink_count);
    return (double)sink_count / dt;
}

static void herd_node_calls(herd_node_t *a, herd_pid_t srv, size_t n)
{
    char msg[MSG_SIZE] = {0};
    double *rtt = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        herd_reply_t r;
        double t = now_s();
        if (herd_node_call(a, srv, msg, sizeof(msg), 5000, &r) != 0)
            die("herd_node_call");
        rtt[i] = (now_s() - t) * 1e6;
        herd_reply_free(&r);
    }
    double med, p99;
    percentiles(rtt, n, &med, &p99);
    printf("bench cluster remote_node_call_rtt_median_us %.1f us calls=%zu\n", med, n);
    printf("bench cluster remote_node_call_rtt_p99_us %.1f us calls=%zu\n", p99, n);
    free(rtt);
}

static double herd_process_calls(herd_node_t *a, herd_pid_t srv, size_t n)
{
    the_client = (client_t){.server = srv, .left = n, .rtt = malloc(n * sizeof(double))};
    herd_pid_t c;
    herd_spawn_opts_t o = {.behaviour = &client};
    if (herd_spawn(a, &o, &c) != 0 || herd_node_cast(a, c, "go", 2) != 0)
        die("client");
    double deadline = now_s() + 60;
    while (the_client.left > 0 && now_s() < deadline)
        herd_node_run_for(a, 10);
    double med, p99;
    percentiles(the_client.rtt, the_client.done, &med, &p99);
    printf("bench cluster remote_call_rtt_median_us %.1f us calls=%zu\n", med, the_client.done);
    printf("bench cluster remote_call_rtt_p99_us %.1f us calls=%zu\n", p99, the_client.done);
    free(the_client.rtt);
    return med;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t casts = quick ? 20000 : 500000, calls = quick ? 2000 : 20000;
    int port = 20000 + (int)(now_s() * 1000) % 30000;
    char a_url[64], b_url[64], bare1[64], bare2[64];
    snprintf(a_url, sizeof(a_url), "tcp://127.0.0.1:%d", port);
    snprintf(b_url, sizeof(b_url), "tcp://127.0.0.1:%d", port + 1);
    snprintf(bare1, sizeof(bare1), "tcp://127.0.0.1:%d", port + 2);
    snprintf(bare2, sizeof(bare2), "tcp://127.0.0.1:%d", port + 3);

    double bare_rate = bare_push_pull(bare1, casts);
    double bare_rtt = bare_req_rep(bare2, calls);

    uv_loop_t loop;
    uv_loop_init(&loop);
    herd_node_t *a = make_node(&loop, "bench-a", a_url, NULL);
    herd_node_t *b = make_node(&loop, "bench-b", b_url, a_url);
    wait_joined(a);
    herd_pid_t srv;
    herd_spawn_opts_t o = {.behaviour = &server};
    if (herd_spawn(b, &o, &srv) != 0)
        die("spawn");
    double rate = herd_casts(a, srv, casts);
    herd_node_calls(a, srv, calls);
    double rtt = herd_process_calls(a, srv, calls);
    printf("bench cluster cast_vs_bare_ratio %.2f x of=herd_cast/nanomsg_push_pull\n",
           rate / bare_rate);
    printf("bench cluster call_rtt_vs_bare_ratio %.2f x of=herd_call/nanomsg_req_rep "
           "ref_us=%.1f ref_system=nanomsg_req_rep lower_is_better=1\n",
           rtt / bare_rtt, bare_rtt);
    herd_node_free(b);
    herd_node_free(a);
    uv_loop_close(&loop);
    return 0;
}
