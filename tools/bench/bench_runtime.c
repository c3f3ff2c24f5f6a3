/*
 * bench_runtime.c - the runtime benchmark: memory per idle process, spawn
 * rate, message throughput (ping-pong and fan-out), call round trips, and
 * between two nodes in two OS processes, call round trips and cast
 * throughput beside bare nanomsg REQ/REP and PUSH/PULL in the same run.
 *
 * Output is one figure per line (DESIGN.md, "Benchmark output"):
 *
 *     bench runtime <metric> <value> <unit> [key=value ...]
 *
 * Usage: bench_runtime [--quick] [--only idle|pingpong|fanout|calls|remote_call|remote_cast]
 *   --quick: 10-20x smaller sizes, for a CI smoke run, also under sanitizers
 *   --only:  one part alone (tools/bench/ab_compare.sh runs two builds' parts
 *            in turn, so each pair of runs shares the machine's moment)
 *
 * The remote parts print, beside herd's figure, bare nanomsg's between the
 * same two processes in the same runs: bare_reqrep_us (REQ/REP, one TCP
 * connection carries request and reply), bare_pushpull_rtt_us (the same
 * round trip over a PUSH/PULL pair, a connection each way: the shape of
 * herd's transport) and bare_pushpull_msgs_per_s; ratio= is herd's median
 * over the bare median, against the goal of issue 16.
 *
 * Every benchmark gets a node of its own, freed at its end. Timings use
 * CLOCK_MONOTONIC; the cheap ones report the median of REPS repetitions. The
 * idle-process figures come from one cold run (spawning a million processes
 * again would reuse memory the first run faulted in, and measure less).
 * Loops that run the node are bounded by a wall-clock deadline and stop as soon
 * as a run makes no progress, so a lost message ends the run with a diagnostic
 * instead of hanging it. Only the bench lines go to stdout.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/reqrep.h>

#include "herd_runtime.h"

#define REPS 3
#define RUN_SLICE_MS 200         /* one herd_node_run_for */
#define DEADLINE_S 30.0          /* per timed loop: a broken runtime cannot hang us */
#define CALL_TIMEOUT_MS 10000u   /* never hit: only arms the call's timer */

static const char *prog = "bench_runtime";

/* ---- helpers ---------------------------------------------------------------- */

/* Called by a handler that saw the last message of a timed run: end the
 * herd_node_run_for now, so the run is timed to its last message and not to
 * the end of a slice (an armed node timer keeps the loop from returning early). */
static void stop_run(herd_proc_t *self)
{
    uv_stop(herd_node_loop(herd_proc_node(self)));
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, rc ? herd_strerror(rc) : "failed");
    exit(1);
}

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

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Resident set size in bytes, from /proc/self/statm (second field, in pages). */
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        die("open /proc/self/statm", 0);
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        die("parse /proc/self/statm", 0);
    long page = sysconf(_SC_PAGESIZE);
    return (size_t)resident * (size_t)(page > 0 ? page : 4096);
}

static herd_node_t *node_make(const char *name)
{
    herd_node_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = name;
    herd_node_t *node = NULL;
    int rc = herd_node_new(&cfg, &node);
    if (rc)
        die("herd_node_new", rc);
    return node;
}

/* Spawn a process of `beh` whose init receives the pointer `ctx` (by value). */
static herd_pid_t spawn_with(herd_node_t *node, const herd_behaviour_t *beh, void *ctx)
{
    herd_spawn_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.behaviour = beh;
    opts.arg = &ctx;
    opts.arg_len = sizeof(ctx);
    herd_pid_t pid;
    int rc = herd_spawn(node, &opts, &pid);
    if (rc)
        die("herd_spawn", rc);
    return pid;
}

/* init for behaviours whose state is the pointer passed to spawn_with. */
static int init_ptr(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    if (len != sizeof(void *))
        return HERD_EINVAL;
    memcpy(state, arg, sizeof(void *));
    return 0;
}

/* Run `node` until *counter reaches `target` or a handler counts an error in
 * *errors (the caller reports it). Stops with a diagnostic when a run makes no
 * progress (a message was lost) or after DEADLINE_S. */
static void run_until(herd_node_t *node, const uint64_t *counter, uint64_t target,
                      const int *errors, const char *what)
{
    double deadline = now_s() + DEADLINE_S;
    uint64_t last = *counter;
    int idle_runs = 0;
    while (*counter < target && *errors == 0) {
        int rc = herd_node_run_for(node, RUN_SLICE_MS);
        if (rc < 0)
            die("herd_node_run_for", rc);
        if (*counter == last) {
            /* run_for returns early once there is nothing left to do: twice
             * without progress means nothing is coming */
            if (++idle_runs >= 2) {
                fprintf(stderr, "%s: %s: stalled at %llu of %llu\n", prog, what,
                        (unsigned long long)*counter, (unsigned long long)target);
                exit(1);
            }
        } else {
            idle_runs = 0;
            last = *counter;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "%s: %s: over %.0f s, at %llu of %llu\n", prog, what,
                    DEADLINE_S, (unsigned long long)*counter, (unsigned long long)target);
            exit(1);
        }
    }
}

/* ---- idle processes and spawn rate ------------------------------------------ */

static int idle_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    (void)arg;
    (void)len;
    *state = NULL;
    return 0;
}

static const herd_behaviour_t idle_beh = {
    .name = "bench_idle",
    .init = idle_init,
};

static void bench_idle(size_t procs)
{
    herd_node_t *node = node_make("bench-idle");
    herd_spawn_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.behaviour = &idle_beh;

    size_t rss0 = rss_bytes();
    double t0 = now_s();
    for (size_t i = 0; i < procs; i++) {
        herd_pid_t pid;
        int rc = herd_spawn(node, &opts, &pid);
        if (rc)
            die("herd_spawn (idle)", rc);
    }
    double t1 = now_s();
    size_t rss1 = rss_bytes();

    size_t alive = herd_node_process_count(node);
    if (alive != procs) {
        fprintf(stderr, "%s: idle: %zu processes alive, expected %zu\n", prog, alive, procs);
        exit(1);
    }
    double per = rss1 > rss0 ? (double)(rss1 - rss0) / (double)procs : 0.0;
    fprintf(stderr, "%s: idle: rss %.1f -> %.1f MiB, spawn %.3f s\n", prog,
            (double)rss0 / 1048576.0, (double)rss1 / 1048576.0, t1 - t0);
    printf("bench runtime idle_process_bytes %.0f B procs=%zu ref=2752 "
           "ref_system=beam_idle_process ratio=%.1fx\n", per, procs, 2752.0 / per);
    printf("bench runtime spawn_per_s %.0f procs/s procs=%zu\n", (double)procs / (t1 - t0),
           procs);
    fflush(stdout);

    double f0 = now_s();
    herd_node_free(node);
    fprintf(stderr, "%s: idle: herd_node_free of %zu processes %.3f s\n", prog, procs,
            now_s() - f0);
}

/* ---- ping-pong ---------------------------------------------------------------- */

typedef struct pp_shared {
    uint64_t handled; /* casts handled by either process */
    uint64_t total;   /* stop once this many were handled */
    int errors;
} pp_shared_t;

typedef struct pp_ctx {
    pp_shared_t *shared;
    herd_pid_t peer;
} pp_ctx_t;

static int pp_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    pp_ctx_t *c = state;
    pp_shared_t *s = c->shared;
    (void)msg;
    if (++s->handled >= s->total) {
        stop_run(self);
        return 0;
    }
    uint64_t n = s->handled;
    int rc = herd_cast(self, c->peer, &n, sizeof(n));
    if (rc) {
        s->errors++;
        s->total = s->handled; /* end the run: the caller reports it */
        stop_run(self);
    }
    return 0;
}

static const herd_behaviour_t pp_beh = {
    .name = "bench_pingpong",
    .init = init_ptr,
    .handle_cast = pp_cast,
};

static void bench_pingpong(uint64_t msgs)
{
    herd_node_t *node = node_make("bench-pingpong");
    pp_shared_t shared = {0, 0, 0};
    pp_ctx_t a = {&shared, HERD_PID_NONE}, b = {&shared, HERD_PID_NONE};
    herd_pid_t pa = spawn_with(node, &pp_beh, &a);
    herd_pid_t pb = spawn_with(node, &pp_beh, &b);
    a.peer = pb;
    b.peer = pa;

    double rate[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        shared.handled = 0;
        shared.total = msgs;
        uint64_t n = 0;
        double t0 = now_s();
        int rc = herd_node_cast(node, pb, &n, sizeof(n));
        if (rc)
            die("herd_node_cast (pingpong)", rc);
        run_until(node, &shared.handled, msgs, &shared.errors, "pingpong");
        double t1 = now_s();
        if (shared.errors)
            die("herd_cast (pingpong) failed", 0);
        rate[rep] = (double)shared.handled / (t1 - t0);
        fprintf(stderr, "%s: pingpong rep %d: %llu msgs in %.3f s\n", prog, rep,
                (unsigned long long)shared.handled, t1 - t0);
    }
    printf("bench runtime pingpong_msgs_per_s %.0f msg/s msgs=%llu\n", median(rate, REPS),
           (unsigned long long)msgs);
    fflush(stdout);
    herd_node_free(node);
}

/* ---- fan-out ------------------------------------------------------------------ */

typedef struct fan_ctx {
    const herd_pid_t *targets;
    size_t count;
    uint64_t received; /* by all receivers */
    uint64_t stop_at;  /* the end of the current round */
    int errors;
} fan_ctx_t;

/* The sender: each "go" casts one message to every receiver. */
static int fan_go(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    fan_ctx_t *c = state;
    (void)msg;
    for (size_t i = 0; i < c->count; i++) {
        uint64_t v = i;
        int rc = herd_cast(self, c->targets[i], &v, sizeof(v));
        if (rc) {
            c->errors++;
            stop_run(self);
            return 0;
        }
    }
    return 0;
}

static int fan_recv(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    fan_ctx_t *c = state;
    (void)msg;
    if (++c->received == c->stop_at)
        stop_run(self);
    return 0;
}

static const herd_behaviour_t fan_sender_beh = {
    .name = "bench_fan_sender",
    .init = init_ptr,
    .handle_cast = fan_go,
};

static const herd_behaviour_t fan_recv_beh = {
    .name = "bench_fan_receiver",
    .init = init_ptr,
    .handle_cast = fan_recv,
};

static void bench_fanout(size_t procs, int rounds)
{
    herd_node_t *node = node_make("bench-fanout");
    herd_pid_t *targets = malloc(procs * sizeof(*targets));
    if (targets == NULL)
        die("malloc", HERD_ENOMEM);
    fan_ctx_t ctx = {targets, procs, 0, 0, 0};
    for (size_t i = 0; i < procs; i++)
        targets[i] = spawn_with(node, &fan_recv_beh, &ctx);
    herd_pid_t sender = spawn_with(node, &fan_sender_beh, &ctx);

    double rate[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        ctx.received = 0;
        double t0 = now_s();
        for (int r = 0; r < rounds; r++) {
            ctx.stop_at = (uint64_t)(r + 1) * procs;
            int rc = herd_node_cast(node, sender, "go", 2);
            if (rc)
                die("herd_node_cast (fanout)", rc);
            run_until(node, &ctx.received, ctx.stop_at, &ctx.errors, "fanout");
            if (ctx.errors)
                die("herd_cast (fanout) failed", 0);
        }
        double t1 = now_s();
        rate[rep] = (double)ctx.received / (t1 - t0);
        fprintf(stderr, "%s: fanout rep %d: %llu msgs in %.3f s\n", prog, rep,
                (unsigned long long)ctx.received, t1 - t0);
    }
    printf("bench runtime fanout_msgs_per_s %.0f msg/s procs=%zu rounds=%d\n",
           median(rate, REPS), procs, rounds);
    fflush(stdout);
    herd_node_free(node);
    free(targets);
}

/* ---- calls -------------------------------------------------------------------- */

static int echo_call(herd_proc_t *self, void *state, const herd_msg_t *msg,
                     herd_from_t from)
{
    (void)state;
    return herd_reply(herd_proc_node(self), from, 0, msg->data, msg->len);
}

static const herd_behaviour_t echo_beh = {
    .name = "bench_echo",
    .handle_call = echo_call,
};

typedef struct client_ctx {
    herd_pid_t server;
    uint64_t done;  /* replies received */
    uint64_t total; /* calls to make */
    uint64_t ref;   /* of the call in flight */
    int errors;
    size_t size;    /* bytes per call (at least 8, at most 64); 0: 8 */
    double *rtt;    /* when not NULL: each call's round trip in us */
    double started; /* when the call in flight was made (rtt only) */
} client_ctx_t;

#define CLIENT_MAX_SIZE 64

static size_t client_size(const client_ctx_t *c)
{
    return c->size ? c->size : sizeof(uint64_t);
}

static int client_next(herd_proc_t *self, client_ctx_t *c)
{
    uint8_t buf[CLIENT_MAX_SIZE] = {0};
    uint64_t n = c->done;
    memcpy(buf, &n, sizeof(n));
    if (c->rtt)
        c->started = now_s();
    int rc = herd_call(self, c->server, buf, client_size(c), CALL_TIMEOUT_MS, &c->ref);
    if (rc) {
        c->errors++;
        c->total = c->done; /* end the run: the caller reports it */
        stop_run(self);
    }
    return 0;
}

/* A cast from outside starts a run of calls. */
static int client_start(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)msg;
    return client_next(self, state);
}

static int client_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    client_ctx_t *c = state;
    if (msg->kind != HERD_MSG_REPLY)
        return 0;
    if (msg->ref != c->ref || msg->status != 0 || msg->len != client_size(c) ||
        memcmp(msg->data, &c->done, sizeof(c->done)) != 0) {
        fprintf(stderr, "%s: call: bad reply (ref %llu, expected %llu, status %d, len %zu)\n",
                prog, (unsigned long long)msg->ref, (unsigned long long)c->ref, msg->status,
                msg->len);
        c->errors++;
        c->total = c->done;
        stop_run(self);
        return 0;
    }
    if (c->rtt)
        c->rtt[c->done] = (now_s() - c->started) * 1e6;
    if (++c->done >= c->total) {
        stop_run(self);
        return 0;
    }
    return client_next(self, c);
}

static const herd_behaviour_t client_beh = {
    .name = "bench_client",
    .init = init_ptr,
    .handle_cast = client_start,
    .handle_info = client_info,
};

static void bench_calls(uint64_t calls, uint64_t node_calls)
{
    herd_node_t *node = node_make("bench-call");
    herd_pid_t server;
    herd_spawn_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.behaviour = &echo_beh;
    int rc = herd_spawn(node, &opts, &server);
    if (rc)
        die("herd_spawn (server)", rc);
    client_ctx_t ctx = {server, 0, 0, 0, 0, 0, NULL, 0};
    herd_pid_t client = spawn_with(node, &client_beh, &ctx);

    /* process to process: herd_call, the reply arrives as HERD_MSG_REPLY */
    double ns[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        ctx.done = 0;
        ctx.total = calls;
        double t0 = now_s();
        rc = herd_node_cast(node, client, "start", 5);
        if (rc)
            die("herd_node_cast (call)", rc);
        run_until(node, &ctx.done, calls, &ctx.errors, "call");
        double t1 = now_s();
        if (ctx.errors)
            die("herd_call (call) failed", 0);
        ns[rep] = (t1 - t0) * 1e9 / (double)ctx.done;
        fprintf(stderr, "%s: call rep %d: %llu calls in %.3f s\n", prog, rep,
                (unsigned long long)ctx.done, t1 - t0);
    }
    printf("bench runtime call_roundtrip_ns %.1f ns calls=%llu\n", median(ns, REPS),
           (unsigned long long)calls);
    fflush(stdout);

    /* from outside: the blocking herd_node_call */
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now_s();
        double deadline = t0 + DEADLINE_S;
        uint64_t i;
        for (i = 0; i < node_calls; i++) {
            herd_reply_t reply;
            rc = herd_node_call(node, server, &i, sizeof(i), CALL_TIMEOUT_MS, &reply);
            if (rc)
                die("herd_node_call", rc);
            if (reply.status != 0 || reply.len != sizeof(i) ||
                memcmp(reply.data, &i, sizeof(i)) != 0)
                die("herd_node_call: bad reply", reply.status);
            herd_reply_free(&reply);
            if ((i & 4095) == 4095 && now_s() > deadline) {
                fprintf(stderr, "%s: node_call: over %.0f s at %llu of %llu\n", prog,
                        DEADLINE_S, (unsigned long long)i, (unsigned long long)node_calls);
                exit(1);
            }
        }
        double t1 = now_s();
        ns[rep] = (t1 - t0) * 1e9 / (double)node_calls;
        fprintf(stderr, "%s: node_call rep %d: %llu calls in %.3f s\n", prog, rep,
                (unsigned long long)node_calls, t1 - t0);
    }
    printf("bench runtime node_call_roundtrip_ns %.1f ns calls=%llu\n", median(ns, REPS),
           (unsigned long long)node_calls);
    fflush(stdout);
    herd_node_free(node);
}

/* ---- remote: two nodes in two OS processes, beside bare nanomsg ------------------ */

/*
 * The peer process is forked at the very start of main, before this process
 * or the peer uses nanomsg (nanomsg's worker thread does not survive a
 * fork). It runs node "bench-rb" (an echo server and a cast sink) and bare
 * nanomsg REP and PULL sockets, and obeys commands the parent writes on a
 * pipe; it answers on another. The parent runs node "bench-ra" and the
 * bare REQ and PUSH sockets. Each run measures bare nanomsg and herd back
 * to back, alternating, so that each pair shares the machine's moment; the
 * figures are medians over the runs. Both sides of each pair move the same
 * payload between the same two processes over TCP on 127.0.0.1.
 */
#define REMOTE_PAYLOAD 64        /* bytes per call, reply and cast, bare and herd */
#define REMOTE_WARMUP 200        /* round trips before the first timed run */
#define REMOTE_CAST_BURST 1024   /* casts a sending process queues per turn */
#define REMOTE_PEER_TIMEOUT_MS 30000
#define REMOTE_SECRET "bench-runtime-remote-secret-0123"

typedef struct remote_cmd {
    char op;    /* 'R' serve n REQ/REP round trips, 'P' take n PUSH messages,
                 * 'E' echo n PUSH messages back on a PUSH of its own,
                 * 'C' count n casts at the sink, 'Q' quit */
    uint64_t n;
} remote_cmd_t;

typedef struct remote_link {
    pid_t pid;         /* the peer process */
    int cmd, res;      /* pipes to and from it */
    char url_a[64], url_b[64], url_rep[64], url_pull[64], url_back[64];
} remote_link_t;

static void remote_write(int fd, const void *buf, size_t len)
{
    if (write(fd, buf, len) != (ssize_t)len)
        die("write to the peer pipe", 0);
}

/* Read exactly len bytes within REMOTE_PEER_TIMEOUT_MS, or die. */
static void remote_read(int fd, void *buf, size_t len, const char *what)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, REMOTE_PEER_TIMEOUT_MS) != 1) {
            fprintf(stderr, "%s: remote: no answer from the other process (%s)\n", prog, what);
            exit(1);
        }
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0) {
            fprintf(stderr, "%s: remote: the other process is gone (%s)\n", prog, what);
            exit(1);
        }
        got += (size_t)n;
    }
}

static herd_node_t *remote_node(const char *name, const char *listen, const char *seed)
{
    herd_node_config_t nc;
    memset(&nc, 0, sizeof(nc));
    nc.name = name;
    nc.mailbox_limit = 1u << 22; /* the sink takes whole streams of casts */
    herd_node_t *n = NULL;
    int rc = herd_node_new(&nc, &n);
    if (rc)
        die("herd_node_new (remote)", rc);
    herd_cluster_config_t cc;
    memset(&cc, 0, sizeof(cc));
    cc.listen = listen;
    cc.seeds = seed ? &seed : NULL;
    cc.seed_count = seed ? 1 : 0;
    cc.secret = REMOTE_SECRET;
    cc.secret_len = sizeof(REMOTE_SECRET) - 1;
    /* the nodes' loops stand still while the bare sockets are timed */
    cc.suspect_ms = 30000;
    cc.down_ms = 60000;
    rc = herd_cluster_start(n, &cc);
    if (rc) {
        fprintf(stderr, "%s: remote: cannot listen at %s: %s\n", prog, listen,
                herd_strerror(rc));
        exit(1);
    }
    return n;
}

static int remote_socket(int type, const char *url, int bind)
{
    int s = nn_socket(AF_SP, type), ms = REMOTE_PEER_TIMEOUT_MS;
    if (s < 0)
        die("nn_socket", 0);
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &ms, sizeof(ms));
    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &ms, sizeof(ms));
    if ((bind ? nn_bind(s, url) : nn_connect(s, url)) < 0) {
        fprintf(stderr, "%s: remote: nanomsg %s %s: %s\n", prog, bind ? "bind" : "connect",
                url, nn_strerror(nn_errno()));
        exit(1);
    }
    return s;
}

/* -- the peer process -- */

typedef struct remote_peer {
    herd_node_t *node;
    int cmd, res, rep, pull, back;
    uv_poll_t cmd_poll;
    uint64_t sink_count, sink_target;
} remote_peer_t;

static remote_peer_t the_peer;

static int sink_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    if (++the_peer.sink_count == the_peer.sink_target)
        remote_write(the_peer.res, "c", 1);
    return 0;
}

static const herd_behaviour_t sink_beh = {.name = "bench_sink", .handle_cast = sink_cast};

static void peer_serve_reqrep(remote_peer_t *p, uint64_t n)
{
    char buf[REMOTE_PAYLOAD];
    for (uint64_t i = 0; i < n; i++)
        if (nn_recv(p->rep, buf, sizeof(buf), 0) != REMOTE_PAYLOAD ||
            nn_send(p->rep, buf, sizeof(buf), 0) != REMOTE_PAYLOAD)
            die("the peer's REP socket", 0);
    remote_write(p->res, "r", 1);
}

static void peer_take_pushes(remote_peer_t *p, uint64_t n)
{
    char buf[REMOTE_PAYLOAD];
    remote_write(p->res, "k", 1);
    for (uint64_t i = 0; i < n; i++)
        if (nn_recv(p->pull, buf, sizeof(buf), 0) != REMOTE_PAYLOAD)
            die("the peer's PULL socket", 0);
    remote_write(p->res, "p", 1);
}

/* A round trip the way herd's transport makes one: two one-way sockets,
 * a TCP connection each way. */
static void peer_echo_pushes(remote_peer_t *p, uint64_t n)
{
    char buf[REMOTE_PAYLOAD];
    for (uint64_t i = 0; i < n; i++)
        if (nn_recv(p->pull, buf, sizeof(buf), 0) != REMOTE_PAYLOAD ||
            nn_send(p->back, buf, sizeof(buf), 0) != REMOTE_PAYLOAD)
            die("the peer's PULL/PUSH echo", 0);
    remote_write(p->res, "e", 1);
}

static void peer_on_cmd(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    remote_peer_t *p = h->data;
    remote_cmd_t c;
    ssize_t got = read(p->cmd, &c, sizeof(c));
    if (got != (ssize_t)sizeof(c) || c.op == 'Q') { /* told to, or the parent is gone */
        uv_poll_stop(h);
        uv_stop(herd_node_loop(p->node));
        return;
    }
    if (c.op == 'R') {
        peer_serve_reqrep(p, c.n);
    } else if (c.op == 'P') {
        peer_take_pushes(p, c.n);
    } else if (c.op == 'E') {
        peer_echo_pushes(p, c.n);
    } else if (c.op == 'C') {
        p->sink_count = 0;
        p->sink_target = c.n;
        remote_write(p->res, "k", 1);
    }
}

static void peer_close(uv_handle_t *h)
{
    (void)h;
}

static void remote_peer_main(remote_link_t *l)
{
    remote_peer_t *p = &the_peer;
    p->cmd = l->cmd;
    p->res = l->res;
    p->node = remote_node("bench-rb", l->url_b, l->url_a);
    p->rep = remote_socket(NN_REP, l->url_rep, 1);
    p->pull = remote_socket(NN_PULL, l->url_pull, 1);
    p->back = remote_socket(NN_PUSH, l->url_back, 0);
    herd_spawn_opts_t o;
    memset(&o, 0, sizeof(o));
    herd_pid_t pids[2];
    o.behaviour = &echo_beh;
    int rc = herd_spawn(p->node, &o, &pids[0]);
    o.behaviour = &sink_beh;
    if (rc == 0)
        rc = herd_spawn(p->node, &o, &pids[1]);
    if (rc)
        die("herd_spawn (peer)", rc);
    remote_write(p->res, pids, sizeof(pids));
    uv_poll_init(herd_node_loop(p->node), &p->cmd_poll, p->cmd);
    p->cmd_poll.data = p;
    uv_poll_start(&p->cmd_poll, UV_READABLE, peer_on_cmd);
    herd_node_run(p->node);
    uv_close((uv_handle_t *)&p->cmd_poll, peer_close);
    nn_close(p->rep);
    nn_close(p->pull);
    nn_close(p->back);
    herd_node_free(p->node);
}

/* Fork the peer process: the parent gets the link, the child runs the peer
 * and exits. Called before anything in this process uses nanomsg. */
static void remote_fork(remote_link_t *l)
{
    int port = 20000 + (int)((uint64_t)getpid() * 7919u + (uint64_t)time(NULL)) % 30000;
    snprintf(l->url_a, sizeof(l->url_a), "tcp://127.0.0.1:%d", port);
    snprintf(l->url_b, sizeof(l->url_b), "tcp://127.0.0.1:%d", port + 1);
    snprintf(l->url_rep, sizeof(l->url_rep), "tcp://127.0.0.1:%d", port + 2);
    snprintf(l->url_pull, sizeof(l->url_pull), "tcp://127.0.0.1:%d", port + 3);
    snprintf(l->url_back, sizeof(l->url_back), "tcp://127.0.0.1:%d", port + 4);
    int to_peer[2], from_peer[2];
    if (pipe(to_peer) != 0 || pipe(from_peer) != 0)
        die("pipe", 0);
    fflush(stdout);
    fflush(stderr);
    l->pid = fork();
    if (l->pid < 0)
        die("fork", 0);
    if (l->pid == 0) {
        close(to_peer[1]);
        close(from_peer[0]);
        l->cmd = to_peer[0];
        l->res = from_peer[1];
        remote_peer_main(l);
        _exit(0);
    }
    close(to_peer[0]);
    close(from_peer[1]);
    l->cmd = to_peer[1];
    l->res = from_peer[0];
}

static void remote_command(remote_link_t *l, char op, uint64_t n)
{
    remote_cmd_t c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    c.n = n;
    remote_write(l->cmd, &c, sizeof(c));
}

static void remote_expect(remote_link_t *l, char want, const char *what)
{
    char got;
    remote_read(l->res, &got, 1, what);
    if (got != want) {
        fprintf(stderr, "%s: remote: the other process said '%c', expected '%c' (%s)\n", prog,
                got, want, what);
        exit(1);
    }
}

static void remote_stop(remote_link_t *l)
{
    int status = 0;
    remote_command(l, 'Q', 0);
    if (waitpid(l->pid, &status, 0) != l->pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        die("the peer process's exit", 0);
    close(l->cmd);
    close(l->res);
}

/* -- the measuring process -- */

typedef struct remote_side {
    remote_link_t *link;
    herd_node_t *node;
    int req, push, back;
    herd_pid_t server, sink;
    uv_poll_t res_poll;
    int sink_done;
} remote_side_t;

static void side_on_res(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    remote_side_t *s = h->data;
    s->sink_done = 1;
    uv_poll_stop(h);
    uv_stop(herd_node_loop(s->node));
}

static void remote_join(remote_side_t *s)
{
    double deadline = now_s() + 15.0;
    for (;;) {
        herd_member_info_t m[3];
        int count = herd_cluster_members(s->node, m, 3);
        if (count == 2 && m[0].state == HERD_MEMBER_UP && m[1].state == HERD_MEMBER_UP)
            return;
        if (now_s() > deadline)
            die("the two nodes joining", 0);
        herd_node_run_for(s->node, 10);
    }
}

/* The median of n back-to-back round trips (rtt has room for n): the
 * median, not the mean, so that a moment when another program holds the
 * CPU does not decide the figure. */
static double bare_reqrep_us(remote_side_t *s, uint64_t n, double *rtt)
{
    char msg[REMOTE_PAYLOAD] = {0}, buf[REMOTE_PAYLOAD];
    remote_command(s->link, 'R', n);
    for (uint64_t i = 0; i < n; i++) {
        memcpy(msg, &i, sizeof(i));
        double t = now_s();
        if (nn_send(s->req, msg, sizeof(msg), 0) != REMOTE_PAYLOAD ||
            nn_recv(s->req, buf, sizeof(buf), 0) != REMOTE_PAYLOAD ||
            memcmp(buf, msg, sizeof(msg)) != 0)
            die("bare REQ/REP round trip", 0);
        rtt[i] = (now_s() - t) * 1e6;
    }
    remote_expect(s->link, 'r', "REQ/REP");
    return median(rtt, (size_t)n);
}

/* The same round trip over PUSH/PULL sockets, one each way (herd's shape). */
static double bare_pushpull_rtt_us(remote_side_t *s, uint64_t n, double *rtt)
{
    char msg[REMOTE_PAYLOAD] = {0}, buf[REMOTE_PAYLOAD];
    remote_command(s->link, 'E', n);
    for (uint64_t i = 0; i < n; i++) {
        memcpy(msg, &i, sizeof(i));
        double t = now_s();
        if (nn_send(s->push, msg, sizeof(msg), 0) != REMOTE_PAYLOAD ||
            nn_recv(s->back, buf, sizeof(buf), 0) != REMOTE_PAYLOAD ||
            memcmp(buf, msg, sizeof(msg)) != 0)
            die("bare PUSH/PULL round trip", 0);
        rtt[i] = (now_s() - t) * 1e6;
    }
    remote_expect(s->link, 'e', "PUSH/PULL echo");
    return median(rtt, (size_t)n);
}

static double herd_call_us(remote_side_t *s, client_ctx_t *ctx, herd_pid_t client, uint64_t n,
                           double *rtt)
{
    ctx->done = 0;
    ctx->total = n;
    ctx->rtt = rtt;
    int rc = herd_node_cast(s->node, client, "start", 5);
    if (rc)
        die("herd_node_cast (remote call)", rc);
    run_until(s->node, &ctx->done, n, &ctx->errors, "remote call");
    ctx->rtt = NULL;
    if (ctx->errors)
        die("herd_call (remote) failed", 0);
    return median(rtt, (size_t)n);
}

static double bare_pushpull_rate(remote_side_t *s, uint64_t n)
{
    char msg[REMOTE_PAYLOAD] = {0};
    remote_command(s->link, 'P', n);
    remote_expect(s->link, 'k', "PUSH/PULL start");
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++)
        if (nn_send(s->push, msg, sizeof(msg), 0) != REMOTE_PAYLOAD)
            die("bare PUSH", 0);
    remote_expect(s->link, 'p', "PUSH/PULL end");
    return (double)n / (now_s() - t0);
}

/* A process that streams casts to the sink: REMOTE_CAST_BURST per turn,
 * then a cast to itself for the next turn, so that the loop turns (and
 * flushes, and takes acknowledgements) between bursts, as a busy producer's
 * node does. A full stream (HERD_EFULL) waits for the next turn. */
typedef struct caster_ctx {
    herd_pid_t sink;
    uint64_t sent, total;
    int errors;
} caster_ctx_t;

static int caster_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    caster_ctx_t *c = state;
    char payload[REMOTE_PAYLOAD] = {0};
    (void)msg;
    for (int i = 0; i < REMOTE_CAST_BURST && c->sent < c->total; i++) {
        int rc = herd_cast(self, c->sink, payload, sizeof(payload));
        if (rc == HERD_EFULL)
            break;
        if (rc) {
            c->errors++;
            stop_run(self);
            return 0;
        }
        c->sent++;
    }
    if (c->sent < c->total && herd_cast(self, herd_self(self), "more", 4) != 0) {
        c->errors++;
        stop_run(self);
    }
    return 0;
}

static const herd_behaviour_t caster_beh = {
    .name = "bench_caster",
    .init = init_ptr,
    .handle_cast = caster_cast,
};

static double herd_cast_rate(remote_side_t *s, caster_ctx_t *ctx, herd_pid_t caster, uint64_t n)
{
    remote_command(s->link, 'C', n);
    remote_expect(s->link, 'k', "casts start");
    ctx->sent = 0;
    ctx->total = n;
    s->sink_done = 0;
    uv_poll_start(&s->res_poll, UV_READABLE, side_on_res);
    double t0 = now_s(), deadline = t0 + DEADLINE_S;
    int rc = herd_node_cast(s->node, caster, "go", 2);
    if (rc)
        die("herd_node_cast (remote casts)", rc);
    while (!s->sink_done && ctx->errors == 0) {
        herd_node_run_for(s->node, RUN_SLICE_MS);
        if (now_s() > deadline) {
            herd_cluster_stats_t cs;
            herd_stream_stats_t ss;
            memset(&cs, 0, sizeof(cs));
            memset(&ss, 0, sizeof(ss));
            herd_cluster_stats(s->node, &cs);
            herd_cluster_stream_stats(s->node, ctx->sink.node, &ss);
            fprintf(stderr, "%s: remote casts: over %.0f s, %llu sent; frames out %llu, "
                    "dropped by the transport %llu; stream sent %llu acked %llu resent %llu\n",
                    prog, DEADLINE_S, (unsigned long long)ctx->sent,
                    (unsigned long long)cs.frames_out, (unsigned long long)cs.dropped_out,
                    (unsigned long long)ss.sent_seq, (unsigned long long)ss.acked_seq,
                    (unsigned long long)ss.resent);
            exit(1);
        }
    }
    double t1 = now_s();
    if (ctx->errors)
        die("herd_cast (remote) failed", 0);
    remote_expect(s->link, 'c', "casts end");
    return (double)n / (t1 - t0);
}

static void bench_remote(remote_link_t *l, int calls_part, int casts_part, uint64_t calls,
                         uint64_t casts, int runs)
{
    remote_side_t s;
    memset(&s, 0, sizeof(s));
    s.link = l;
    s.node = remote_node("bench-ra", l->url_a, NULL);
    s.req = remote_socket(NN_REQ, l->url_rep, 0);
    s.push = remote_socket(NN_PUSH, l->url_pull, 0);
    s.back = remote_socket(NN_PULL, l->url_back, 1);
    herd_pid_t pids[2];
    remote_read(l->res, pids, sizeof(pids), "the peer's pids");
    s.server = pids[0];
    s.sink = pids[1];
    remote_join(&s);
    uv_poll_init(herd_node_loop(s.node), &s.res_poll, l->res);
    s.res_poll.data = &s;

    client_ctx_t cctx = {s.server, 0, 0, 0, 0, REMOTE_PAYLOAD, NULL, 0};
    herd_pid_t client = spawn_with(s.node, &client_beh, &cctx);
    caster_ctx_t kctx = {s.sink, 0, 0, 0};
    herd_pid_t caster = spawn_with(s.node, &caster_beh, &kctx);
    double *v = calloc((size_t)runs * 5, sizeof(double));
    double *rtt = calloc(calls > REMOTE_WARMUP ? calls : REMOTE_WARMUP, sizeof(double));
    if (v == NULL || rtt == NULL)
        die("calloc", HERD_ENOMEM);
    bare_reqrep_us(&s, REMOTE_WARMUP, rtt);
    bare_pushpull_rtt_us(&s, REMOTE_WARMUP, rtt);
    herd_call_us(&s, &cctx, client, REMOTE_WARMUP, rtt);

    double *bare_rtt = v, *herd_rtt = v + runs, *bare_rate = v + 2 * runs,
           *herd_rate = v + 3 * runs, *pair_rtt = v + 4 * runs;
    for (int run = 0; run < runs; run++) {
        if (calls_part) {
            /* alternate which goes first, so neither always follows the other */
            if (run % 2 == 0) {
                bare_rtt[run] = bare_reqrep_us(&s, calls, rtt);
                herd_rtt[run] = herd_call_us(&s, &cctx, client, calls, rtt);
            } else {
                herd_rtt[run] = herd_call_us(&s, &cctx, client, calls, rtt);
                bare_rtt[run] = bare_reqrep_us(&s, calls, rtt);
            }
            pair_rtt[run] = bare_pushpull_rtt_us(&s, calls, rtt);
            fprintf(stderr, "%s: remote call run %d: bare %.1f us herd %.1f us (bare over "
                    "push/pull %.1f us)\n", prog, run, bare_rtt[run], herd_rtt[run],
                    pair_rtt[run]);
        }
        if (casts_part) {
            if (run % 2 == 0) {
                bare_rate[run] = bare_pushpull_rate(&s, casts);
                herd_rate[run] = herd_cast_rate(&s, &kctx, caster, casts);
            } else {
                herd_rate[run] = herd_cast_rate(&s, &kctx, caster, casts);
                bare_rate[run] = bare_pushpull_rate(&s, casts);
            }
            fprintf(stderr, "%s: remote cast run %d: bare %.0f msg/s herd %.0f msg/s\n", prog,
                    run, bare_rate[run], herd_rate[run]);
        }
    }
    if (calls_part) {
        double b = median(bare_rtt, (size_t)runs), h = median(herd_rtt, (size_t)runs);
        printf("bench runtime remote_call_roundtrip_us %.1f us processes=2 bare_reqrep_us=%.1f "
               "ratio=%.2fx goal=1.1 bare_pushpull_rtt_us=%.1f of=median_per_call calls=%llu "
               "runs=%d size=%d\n",
               h, b, h / b, median(pair_rtt, (size_t)runs), (unsigned long long)calls, runs,
               REMOTE_PAYLOAD);
    }
    if (casts_part) {
        double b = median(bare_rate, (size_t)runs), h = median(herd_rate, (size_t)runs);
        printf("bench runtime remote_cast_msgs_per_s %.0f msg/s processes=2 "
               "bare_pushpull_msgs_per_s=%.0f ratio=%.2fx goal=1.5 msgs=%llu runs=%d size=%d "
               "burst=%d\n",
               h, b, h / b, (unsigned long long)casts, runs, REMOTE_PAYLOAD, REMOTE_CAST_BURST);
    }
    fflush(stdout);
    free(v);
    free(rtt);
    uv_close((uv_handle_t *)&s.res_poll, peer_close);
    nn_close(s.req);
    nn_close(s.push);
    nn_close(s.back);
    herd_node_free(s.node);
    remote_stop(l);
}

/* ---- main --------------------------------------------------------------------- */

static int part_known(const char *part)
{
    static const char *const parts[] = {"idle", "pingpong", "fanout", "calls",
                                        "remote_call", "remote_cast"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strcmp(part, parts[i]) == 0)
            return 1;
    return 0;
}

static int part_runs(const char *only, const char *part)
{
    return only == NULL || strcmp(only, part) == 0;
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *only = NULL;
    remote_link_t link;
    memset(&link, 0, sizeof(link));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && part_known(argv[i + 1])) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--only idle|pingpong|fanout|calls|"
                            "remote_call|remote_cast]\n", argv[0]);
            return 2;
        }
    }
    size_t idle_procs = quick ? 50000 : 1000000;
    uint64_t pingpong_msgs = quick ? 100000 : 2000000;
    size_t fan_procs = quick ? 5000 : 100000;
    int fan_rounds = 10;
    uint64_t calls = quick ? 50000 : 1000000;
    uint64_t node_calls = quick ? 10000 : 200000;
    uint64_t remote_calls = quick ? 1000 : 10000;
    uint64_t remote_casts = quick ? 20000 : 200000;
    int remote_runs = quick ? 3 : 7;
    int remote_calls_part = part_runs(only, "remote_call");
    int remote_casts_part = part_runs(only, "remote_cast");

    /* before anything uses nanomsg or the heap grows: the peer process */
    if (remote_calls_part || remote_casts_part)
        remote_fork(&link);

    /* first, while the heap is fresh: the RSS delta is the processes' alone */
    if (part_runs(only, "idle"))
        bench_idle(idle_procs);
    if (part_runs(only, "pingpong"))
        bench_pingpong(pingpong_msgs);
    if (part_runs(only, "fanout"))
        bench_fanout(fan_procs, fan_rounds);
    if (part_runs(only, "calls"))
        bench_calls(calls, node_calls);
    if (remote_calls_part || remote_casts_part)
        bench_remote(&link, remote_calls_part, remote_casts_part, remote_calls, remote_casts,
                     remote_runs);
    return 0;
}
