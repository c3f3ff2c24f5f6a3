/*
 * bench_registry_procs.c - bench_registry's figures with one process a
 * node, as a cluster runs: each node's loop is its own, the nodes work side
 * by side (on as many cores as the machine gives), and a stall is one
 * node's own.
 *
 * The parent forks every node's process first (nanomsg must not be running
 * in a process that forks) and drives them over pipes, one command a line:
 *
 *   start SEED      make the node (SEED "-": the first), spawn its idle
 *                   processes; answers "started ADDRESS"
 *   target N M      done once it holds N entries and sees M members up:
 *                   the time it first was (CLOCK_MONOTONIC, shared by all
 *                   processes) is kept; answers "ok"
 *   register        registers its share of names at once; answers "ok"
 *   probe           starts a 1 ms timer and keeps its largest gap, and
 *                   notes the registry's bytes sent; answers "ok"
 *   report          answers "report DONE_AT REGISTERED_AT ENTRIES STALL_MS
 *                   BYTES STALL_END" (0 for what has not happened)
 *   exit            the process ends at once (its memory goes with it)
 *
 * converge_procs: three nodes, each registering per_node names of its own at
 * the same moment; the time from the commands to the last node holding all.
 * join_procs: three nodes hold `total` names, converged before the clock;
 * a fourth starts and joins; join_procs_converge_s runs from its start
 * command until it holds every name and sees every member up; the stall is
 * the largest gap of a 1 ms timer on each existing node's own loop, from
 * before the newcomer starts until the traffic is quiet.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_registry.h"

#define CMD_MAX 256
#define REPLY_DEADLINE_S 120.0 /* a node that does not answer by then: the run fails */
#define POLL_MS 5              /* the parent asks for reports this often */
#define QUIET_BYTES 16384 /* registry bytes sent in 100 ms when the traffic is quiet */

/* ---- a node's process ------------------------------------------------------------ */

typedef struct node_proc {
    uv_loop_t loop;
    herd_node_t *node;
    int index;
    size_t share; /* names this node registers */
    names_t names;
    herd_pid_t *pids;
    uint64_t want_entries;
    int want_members;
    int targeted; /* a target was set: done_at is kept */
    double done_at, registered_at;
    stall_probe_t probe;
    int probing;
    uint64_t bytes0;
    uv_poll_t cmd_poll;
    uv_check_t check;
    int cmd_fd, rep_fd;
    char buf[CMD_MAX];
    size_t buf_n;
} node_proc_t;

static void proc_reply(node_proc_t *p, const char *fmt, ...)
{
    char line[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1) die("a report too long", 0);
    line[n++] = '\n';
    if (write(p->rep_fd, line, (size_t)n) != n) die("writing a report", 0);
}

static uint64_t registry_bytes_out(herd_node_t *n)
{
    herd_registry_stats_t st;
    int rc = herd_registry_stats(n, &st);
    if (rc != 0) die("herd_registry_stats", rc);
    return st.bytes_out;
}

static void proc_start(node_proc_t *p, const char *seed)
{
    char name[16], listen[64];
    snprintf(name, sizeof(name), "bench-%c", 'a' + p->index);
    p->node = make_node(&p->loop, name, strcmp(seed, "-") == 0 ? NULL : seed, listen,
                        sizeof(listen));
    p->pids = malloc((p->share ? p->share : 1) * sizeof(*p->pids));
    if (p->pids == NULL) die("allocating pids", HERD_ENOMEM);
    spawn_idle(p->node, p->pids, p->share);
    proc_reply(p, "started %s", listen);
}

static void proc_register(node_proc_t *p)
{
    for (size_t i = 0; i < p->share; i++) {
        int rc = herd_register(p->node, p->names.at[i], p->pids[i], NULL);
        if (rc != 0) die("herd_register", rc);
    }
    p->registered_at = now_s();
    proc_reply(p, "ok");
}

static void proc_report(node_proc_t *p)
{
    double stall = 0;
    if (p->probing) {
        uint64_t gap = uv_hrtime() - p->probe.last_ns;
        stall = (double)(gap > p->probe.max_gap_ns ? gap : p->probe.max_gap_ns) / 1e6;
    }
    proc_reply(
        p, "report %.6f %.6f %llu %.3f %llu %.6f", p->done_at, p->registered_at,
        (unsigned long long)(p->node ? entries_of(p->node) : 0), stall,
        (unsigned long long)(p->node ? registry_bytes_out(p->node) - p->bytes0 : 0),
        (double)p->probe.max_gap_end_ns / 1e9);
}

static void proc_command(node_proc_t *p, char *line)
{
    char arg[CMD_MAX];
    unsigned long long n;
    int m;
    if (sscanf(line, "start %255s", arg) == 1 && p->node == NULL) {
        proc_start(p, arg);
    } else if (sscanf(line, "target %llu %d", &n, &m) == 2) {
        p->want_entries = n;
        p->want_members = m;
        p->targeted = 1;
        p->done_at = 0;
        proc_reply(p, "ok");
    } else if (strcmp(line, "register") == 0 && p->node) {
        proc_register(p);
    } else if (strcmp(line, "probe") == 0 && p->node && !p->probing) {
        stall_start(&p->probe, &p->loop);
        p->probing = 1;
        p->bytes0 = registry_bytes_out(p->node);
        proc_reply(p, "ok");
    } else if (strcmp(line, "report") == 0) {
        proc_report(p);
    } else if (strcmp(line, "exit") == 0) {
        _exit(0); /* a million names need no freeing one by one */
    } else {
        fprintf(stderr, "bench_registry: node %d: bad command '%s'\n", p->index, line);
        _exit(1);
    }
}

static void proc_on_cmd(uv_poll_t *h, int status, int events)
{
    (void)events;
    node_proc_t *p = h->data;
    ssize_t got = status < 0
                      ? -1
                      : read(p->cmd_fd, p->buf + p->buf_n, sizeof(p->buf) - 1 - p->buf_n);
    if (got <= 0) _exit(got == 0 ? 0 : 1); /* the parent is gone */
    p->buf_n += (size_t)got;
    char *nl;
    while ((nl = memchr(p->buf, '\n', p->buf_n)) != NULL) {
        *nl = '\0';
        proc_command(p, p->buf);
        size_t used = (size_t)(nl + 1 - p->buf);
        memmove(p->buf, nl + 1, p->buf_n - used);
        p->buf_n -= used;
    }
    if (p->buf_n == sizeof(p->buf) - 1) die("a command too long", 0);
}

/* After every turn of the loop: done yet? */
static void proc_on_check(uv_check_t *h)
{
    node_proc_t *p = h->data;
    if (p->node && p->targeted && p->done_at == 0 &&
        entries_of(p->node) == p->want_entries && all_up(p->node, p->want_members))
        p->done_at = now_s();
}

static void node_proc_main(int index, size_t share, int cmd_fd, int rep_fd)
{
    node_proc_t *p = calloc(1, sizeof(*p));
    if (p == NULL || uv_loop_init(&p->loop) != 0) die("a node process's loop", 0);
    p->index = index;
    p->share = share;
    p->cmd_fd = cmd_fd;
    p->rep_fd = rep_fd;
    char prefix[8];
    snprintf(prefix, sizeof(prefix), "%c", 'a' + index);
    p->names = names_make(prefix, share);
    next_port += 97 * index; /* each process tries its own ports first */
    p->cmd_poll.data = p->check.data = p;
    if (uv_poll_init(&p->loop, &p->cmd_poll, cmd_fd) != 0 ||
        uv_poll_start(&p->cmd_poll, UV_READABLE, proc_on_cmd) != 0 ||
        uv_check_init(&p->loop, &p->check) != 0 ||
        uv_check_start(&p->check, proc_on_check) != 0)
        die("a node process's handles", 0);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* ---- the parent's side ----------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int cmd, rep;
} child_t;

typedef struct report {
    double done_at, registered_at, stall_ms;
    unsigned long long entries, bytes;
    double stall_end; /* when the largest gap ended (monotonic s) */
} report_t;

static child_t fork_node(int index, size_t share)
{
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0) die("pipe", 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork", 0);
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        node_proc_main(index, share, down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    return (child_t){pid, down[1], up[0]};
}

static void send_cmd(const child_t *c, const char *fmt, ...)
{
    char line[CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    if (write(c->cmd, line, (size_t)n) != n) die("writing a command", 0);
}

/* One line from c, within REPLY_DEADLINE_S (a node doing a long
 * registration answers when it is through). */
static void read_reply(const child_t *c, char *out, size_t cap)
{
    size_t n = 0;
    double deadline = now_s() + REPLY_DEADLINE_S;
    while (n + 1 < cap) {
        struct pollfd pf = {c->rep, POLLIN, 0};
        int left = (int)((deadline - now_s()) * 1000);
        if (left <= 0 || poll(&pf, 1, left) <= 0) die("a node process did not answer", 0);
        ssize_t got = read(c->rep, out + n, 1);
        if (got <= 0) die("a node process ended", 0);
        if (out[n] == '\n') {
            out[n] = '\0';
            return;
        }
        n++;
    }
    die("a reply too long", 0);
}

static void expect_ok(const child_t *c)
{
    char line[CMD_MAX];
    read_reply(c, line, sizeof(line));
    if (strcmp(line, "ok") != 0) die("a node process refused a command", 0);
}

static report_t ask_report(const child_t *c)
{
    char line[CMD_MAX];
    report_t r;
    send_cmd(c, "report");
    read_reply(c, line, sizeof(line));
    if (sscanf(line, "report %lf %lf %llu %lf %llu %lf", &r.done_at, &r.registered_at,
               &r.entries, &r.stall_ms, &r.bytes, &r.stall_end) != 6)
        die("a bad report", 0);
    return r;
}

/* Start the nodes in order, each after the first joining it; seed (64
 * bytes) gets the first's address. */
static void start_nodes(const child_t *c, int count, char *seed)
{
    char line[CMD_MAX];
    for (int k = 0; k < count; k++) {
        send_cmd(&c[k], "start %s", k == 0 ? "-" : seed);
        read_reply(&c[k], line, sizeof(line));
        if (k == 0 && sscanf(line, "started %63s", seed) != 1)
            die("the first node's address", 0);
    }
}

static void set_target(const child_t *c, int count, uint64_t entries, int members)
{
    for (int k = 0; k < count; k++) {
        send_cmd(&c[k], "target %llu %d", (unsigned long long)entries, members);
        expect_ok(&c[k]);
    }
}

/* Ask until every one of c[0..count) is done; the latest done_at. */
static double wait_done(const child_t *c, int count, double deadline_s)
{
    double deadline = now_s() + deadline_s, last = 0;
    for (int k = 0; k < count; k++)
        for (;;) {
            report_t r = ask_report(&c[k]);
            if (r.done_at > 0) {
                last = r.done_at > last ? r.done_at : last;
                break;
            }
            if (now_s() > deadline) die("the nodes did not converge by the deadline", 0);
            usleep(POLL_MS * 1000);
        }
    return last;
}

static void end_nodes(child_t *c, int count)
{
    for (int k = 0; k < count; k++) {
        send_cmd(&c[k], "exit");
        close(c[k].cmd);
        close(c[k].rep);
        int st;
        waitpid(c[k].pid, &st, 0);
    }
}

/* ---- the figures ----------------------------------------------------------------- */

static void converge_procs_run(size_t per_node, double *register_s, double *converge_s)
{
    child_t c[NODES];
    char seed[64];
    for (int k = 0; k < NODES; k++)
        c[k] = fork_node(k, per_node);
    start_nodes(c, NODES, seed);
    set_target(c, NODES, 0, NODES); /* all up, nothing held yet */
    wait_done(c, NODES, 15.0);
    uint64_t total = (uint64_t)per_node * NODES;
    set_target(c, NODES, total, NODES);
    double t0 = now_s();
    for (int k = 0; k < NODES; k++)
        send_cmd(&c[k], "register");
    double registered = 0;
    for (int k = 0; k < NODES; k++) {
        expect_ok(&c[k]);
        report_t r = ask_report(&c[k]);
        registered = r.registered_at > registered ? r.registered_at : registered;
    }
    double done = wait_done(c, NODES, 60.0);
    *register_s = registered - t0;
    *converge_s = done - t0;
    end_nodes(c, NODES);
}

void bench_converge_procs(size_t per_node, int runs)
{
    double reg[8], conv[8];
    for (int i = 0; i < runs && i < 8; i++)
        converge_procs_run(per_node, &reg[i], &conv[i]);
    size_t total = per_node * NODES;
    printf("bench registry converge_procs_s %.3f s nodes=%d names=%zu procs=%d runs=%d\n",
           median(conv, (size_t)runs), NODES, total, NODES, runs);
    printf("bench registry register_procs_s %.3f s nodes=%d names=%zu procs=%d runs=%d\n",
           median(reg, (size_t)runs), NODES, total, NODES, runs);
    fflush(stdout);
}

/* Until the existing nodes send under QUIET_BYTES in 100 ms (bounded). */
static void wait_quiet_procs(const child_t *c, int count)
{
    unsigned long long before = 0;
    for (int k = 0; k < count; k++)
        before += ask_report(&c[k]).bytes;
    for (int round = 0; round < 600; round++) {
        usleep(100 * 1000);
        unsigned long long after = 0;
        for (int k = 0; k < count; k++)
            after += ask_report(&c[k]).bytes;
        if (after - before < QUIET_BYTES) return;
        before = after;
    }
    die("join traffic still flowing after 60 s", 0);
}

void bench_join_procs(size_t total)
{
    child_t c[NODES + 1];
    char seed[64];
    for (int k = 0; k <= NODES; k++)
        c[k] = fork_node(k, k < NODES ? total / NODES + ((size_t)k < total % NODES) : 0);
    start_nodes(c, NODES, seed);
    set_target(c, NODES, 0, NODES);
    wait_done(c, NODES, 15.0);
    set_target(c, NODES, total, NODES);
    for (int k = 0; k < NODES; k++)
        send_cmd(&c[k], "register");
    for (int k = 0; k < NODES; k++)
        expect_ok(&c[k]);
    wait_done(c, NODES, 120.0);
    wait_quiet_procs(c, NODES);
    for (int k = 0; k < NODES; k++) {
        send_cmd(&c[k], "probe");
        expect_ok(&c[k]);
    }
    set_target(&c[NODES], 1, total, NODES + 1);
    double t0 = now_s();
    send_cmd(&c[NODES], "start %s", seed);
    char line[CMD_MAX];
    read_reply(&c[NODES], line, sizeof(line));
    send_cmd(&c[NODES], "probe");
    expect_ok(&c[NODES]);
    double done = wait_done(&c[NODES], 1, 120.0);
    wait_quiet_procs(c, NODES);
    double worst = 0;
    unsigned long long bytes = 0;
    int worst_k = 0;
    for (int k = 0; k < NODES; k++) {
        report_t r = ask_report(&c[k]);
        if (verbose)
            fprintf(stderr,
                    "  bench-%c (pid %d): stall %.1f ms, ended %.6f (monotonic s), "
                    "%.3f s after the newcomer's start\n",
                    'a' + k, (int)c[k].pid, r.stall_ms, r.stall_end, r.stall_end - t0);
        bytes += r.bytes;
        if (r.stall_ms > worst) worst = r.stall_ms, worst_k = k;
    }
    report_t newcomer = ask_report(&c[NODES]);
    printf("bench registry join_procs_converge_s %.3f s nodes=%d names=%zu procs=%d "
           "goal_s=2\n",
           done - t0, NODES + 1, total, NODES + 1);
    printf("bench registry join_procs_stall_ms %.1f ms nodes=%d names=%zu of=existing "
           "node=bench-%c timer_ms=1 until=quiet goal_ms=20\n",
           worst, NODES + 1, total, 'a' + worst_k);
    printf("bench registry join_procs_newcomer_stall_ms %.1f ms nodes=%d names=%zu "
           "timer_ms=1 "
           "until=quiet\n",
           newcomer.stall_ms, NODES + 1, total);
    printf("bench registry join_procs_bytes %llu B nodes=%d names=%zu per_name=%.1f "
           "of=registry_bytes_out senders=existing until=quiet\n",
           bytes, NODES + 1, total, (double)bytes / (double)total);
    fflush(stdout);
    end_nodes(c, NODES + 1);
}
