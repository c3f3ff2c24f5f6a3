/*
 * bench_runtime.c - the runtime benchmark: memory per idle process, spawn
 * rate, message throughput (ping-pong and fan-out) and call round trips.
 *
 * Output is one figure per line (DESIGN.md, "Benchmark output"):
 *
 *     bench runtime <metric> <value> <unit> [key=value ...]
 *
 * Usage: bench_runtime [--quick] [--only idle|pingpong|fanout|calls]
 *   --quick: 10-20x smaller sizes, for a CI smoke run, also under sanitizers
 *   --only:  one part alone (tools/bench/ab_compare.sh runs two builds' parts
 *            in turn, so each pair of runs shares the machine's moment)
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
#include <unistd.h>

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
} client_ctx_t;

static int client_next(herd_proc_t *self, client_ctx_t *c)
{
    uint64_t n = c->done;
    int rc = herd_call(self, c->server, &n, sizeof(n), CALL_TIMEOUT_MS, &c->ref);
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
    if (msg->ref != c->ref || msg->status != 0 || msg->len != sizeof(uint64_t)) {
        fprintf(stderr, "%s: call: bad reply (ref %llu, expected %llu, status %d, len %zu)\n",
                prog, (unsigned long long)msg->ref, (unsigned long long)c->ref, msg->status,
                msg->len);
        c->errors++;
        c->total = c->done;
        stop_run(self);
        return 0;
    }
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
    client_ctx_t ctx = {server, 0, 0, 0, 0};
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

/* ---- main --------------------------------------------------------------------- */

static int part_known(const char *part)
{
    static const char *const parts[] = {"idle", "pingpong", "fanout", "calls"};
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
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && part_known(argv[i + 1])) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--only idle|pingpong|fanout|calls]\n", argv[0]);
            return 2;
        }
    }
    size_t idle_procs = quick ? 50000 : 1000000;
    uint64_t pingpong_msgs = quick ? 100000 : 2000000;
    size_t fan_procs = quick ? 5000 : 100000;
    int fan_rounds = 10;
    uint64_t calls = quick ? 50000 : 1000000;
    uint64_t node_calls = quick ? 10000 : 200000;

    /* first, while the heap is fresh: the RSS delta is the processes' alone */
    if (part_runs(only, "idle"))
        bench_idle(idle_procs);
    if (part_runs(only, "pingpong"))
        bench_pingpong(pingpong_msgs);
    if (part_runs(only, "fanout"))
        bench_fanout(fan_procs, fan_rounds);
    if (part_runs(only, "calls"))
        bench_calls(calls, node_calls);
    return 0;
}
