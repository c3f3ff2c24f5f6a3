/*
 * cluster_harness.c - see cluster_harness.h.
 */
#include "cluster_harness.h"

#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control_client.h"

#define CL_START_TRIES 6

uint64_t cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t cl_random(cluster_t *c)
{
    /* xorshift64* */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545f4914f6cdd1dull;
}

static int cl_port(cluster_t *c)
{
    return 20000 + (int)(cl_random(c) % 40001u);
}

/* ---- fixtures ------------------------------------------------------------------- */

int cl_setup(void **state)
{
    cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->rng =
        ((uint64_t)ts.tv_nsec << 24) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    if (c->rng == 0)
        c->rng = 0x9e3779b97f4a7c15ull;
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof(c->dir), "%s/herd-cluster-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(c->dir) == NULL) {
        fprintf(stderr, "cluster: mkdtemp %s: %s\n", c->dir, strerror(errno));
        free(c);
        return -1;
    }
    cl_write_cookie(c, "cookie", 32, 0600, c->cookie, sizeof(c->cookie));
    *state = c;
    return 0;
}

static void cl_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int cl_teardown(void **state)
{
    cluster_t *c = *state;
    if (c == NULL)
        return 0;
    for (size_t i = 0; i < c->count; i++)
        if (c->node[i].pid > 0)
            cl_kill9(&c->node[i]);
    if (!c->passed)
        for (size_t i = 0; i < c->count; i++)
            cl_dump_log(&c->node[i], 6000);
    if (getenv("HERD_CLUSTER_KEEP"))
        fprintf(stderr, "cluster: kept %s\n", c->dir);
    else
        cl_remove_dir(c->dir);
    free(c);
    *state = NULL;
    return 0;
}

void cl_pass(cluster_t *c)
{
    c->passed = 1;
}

void cl_write_cookie(cluster_t *c, const char *file, size_t bytes, mode_t mode, char *out,
                     size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    snprintf(out, cap, "%s/%s", c->dir, file);
    unlink(out);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    char buf[256];
    assert_true(bytes < sizeof(buf));
    for (size_t i = 0; i < bytes; i++)
        buf[i] = alphabet[cl_random(c) % (sizeof(alphabet) - 1)];
    buf[bytes] = '\n';
    assert_int_equal(write(fd, buf, bytes + 1), (ssize_t)(bytes + 1));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* ---- processes ------------------------------------------------------------------ */

void cl_dump_log(const cl_node_t *n, size_t tail)
{
    FILE *f = fopen(n->log, "r");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)tail ? size - (long)tail : 0;
    fseek(f, from, SEEK_SET);
    fprintf(stderr, "----- %s (pid %d, last %ld bytes of %ld) -----\n", n->log,
            (int)n->pid, size - from, size);
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, got, stderr);
    fprintf(stderr, "----- end of %s -----\n", n->name);
    fclose(f);
}

static long cl_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Whether `path` from offset `from` on contains `needle` (read in chunks
 * that overlap by the needle's length, so no match is split). */
static int cl_file_has(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    fseek(f, from, SEEK_SET);
    static char buf[1 << 16];
    size_t keep = 0, overlap = strlen(needle) - 1, got;
    int found = 0;
    while (!found && (got = fread(buf + keep, 1, sizeof(buf) - 1 - keep, f)) > 0) {
        size_t total = keep + got;
        buf[total] = '\0';
        found = strstr(buf, needle) != NULL;
        keep = total < overlap ? total : overlap;
        memmove(buf, buf + (total - keep), keep);
    }
    fclose(f);
    return found;
}

/* Fork and exec argv with stdout and stderr appended to the files out_path
 * and err_path (which may be the same), stdin from /dev/null. The child
 * dies with the test process (PR_SET_PDEATHSIG), so an aborted run leaves no
 * node behind. */
static pid_t cl_spawn(const char *const *argv, const char *out_path, const char *err_path)
{
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int err = strcmp(out_path, err_path) == 0
                  ? dup(out)
                  : open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open("/dev/null", O_RDONLY);
    assert_true(out >= 0 && err >= 0 && null >= 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(null, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out);
    close(err);
    close(null);
    return pid;
}

/* One start of `n` at its current port. Returns 0 once it printed its ready
 * line, 1 when it exited before (n->status set). Fails the test when it is
 * neither ready nor gone by the deadline. */
static int cl_start_once(cl_node_t *n, const char *const *extra)
{
    const char *argv[64];
    size_t k = 0;
    argv[k++] = HERDD_PATH;
    argv[k++] = "--name";
    argv[k++] = n->name;
    argv[k++] = "--listen";
    argv[k++] = n->listen;
    argv[k++] = "--cookie-file";
    argv[k++] = n->cookie;
    int own_control = 0; /* herdd takes each option once: extra's --control wins */
    for (size_t i = 0; extra && extra[i]; i++)
        own_control |= strcmp(extra[i], "--control") == 0;
    if (!own_control) {
        argv[k++] = "--control";
        argv[k++] = n->control;
    }
    if (n->seed[0]) {
        argv[k++] = "--join";
        argv[k++] = n->seed;
    }
    for (size_t i = 0; extra && extra[i] && k < 63; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;

    char ready[200];
    snprintf(ready, sizeof(ready), "herdd: ready name=%s listen=%s ", n->name, n->listen);
    long from = cl_file_size(n->log);
    n->pid = cl_spawn(argv, n->log, n->log);
    n->starts++;
    uint64_t deadline = cl_now_ms() + CL_READY_MS;
    for (;;) {
        if (cl_file_has(n->log, from, ready))
            return 0;
        if (!cl_alive(n))
            return 1;
        if (cl_now_ms() > deadline)
            break;
        cl_sleep_ms(20);
    }
    cl_kill9(n);
    cl_dump_log(n, 4000);
    fail_msg("herdd %s did not get ready within %d ms", n->name, CL_READY_MS);
    return -1;
}

static void cl_set_port(cl_node_t *n, int port)
{
    n->port = port;
    snprintf(n->listen, sizeof(n->listen), "tcp://127.0.0.1:%d", port);
}

/* A bounded string copy (the source may live in the same cluster_t). */
static void cl_copy(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len >= cap)
        len = cap - 1;
    memmove(dst, src, len);
    dst[len] = '\0';
}

/* ---- a crash in the test process ------------------------------------------------- */

static struct sigaction cl_cmocka_segv; /* cmocka's handler, set for the running test */

/* Print where the test process crashed (cmocka's own handler reports only
 * the signal), then let cmocka's handler fail the test. */
static void cl_on_segv(int sig, siginfo_t *info, void *ctx)
{
    static const char head[] = "cluster: the test process crashed; its stack:\n";
    void *frames[64];
    (void)info;
    (void)ctx;
    if (write(2, head, sizeof(head) - 1) < 0)
        _exit(139);
    backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
    if (cl_cmocka_segv.sa_flags & SA_SIGINFO)
        cl_cmocka_segv.sa_sigaction(sig, info, ctx);
    else if (cl_cmocka_segv.sa_handler != SIG_DFL && cl_cmocka_segv.sa_handler != SIG_IGN)
        cl_cmocka_segv.sa_handler(sig);
    else
        _exit(139);
}

/* Chain our crash report in front of whatever handler the running test has
 * (cmocka sets its own around each test). */
static void cl_report_crashes(void)
{
    struct sigaction sa, old;
    if (sigaction(SIGSEGV, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO &&
                                                old.sa_sigaction == cl_on_segv))
        return;
    cl_cmocka_segv = old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = cl_on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

cl_node_t *cl_start(cluster_t *c, const char *name, const cl_node_t *seed,
                    const char *cookie, const char *const *extra)
{
    cl_report_crashes();
    assert_true(c->count < CL_MAX_NODES);
    cl_node_t *n = &c->node[c->count++];
    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", name);
    char path[sizeof(n->control)];
    snprintf(path, sizeof(path), "ipc://%s/%s.ctl", c->dir, name);
    cl_copy(n->control, sizeof(n->control), path);
    snprintf(path, sizeof(path), "%s/%s.log", c->dir, name);
    cl_copy(n->log, sizeof(n->log), path);
    cl_copy(n->cookie, sizeof(n->cookie), cookie ? cookie : c->cookie);
    if (seed)
        cl_copy(n->seed, sizeof(n->seed), seed->listen);
    for (int attempt = 1;; attempt++) {
        cl_set_port(n, cl_port(c));
        if (cl_start_once(n, extra) == 0)
            return n;
        /* Most likely the port was taken: try another one. */
        if (attempt == CL_START_TRIES) {
            cl_dump_log(n, 4000);
            fail_msg("herdd %s exited before getting ready %d times (last status 0x%x)",
                     n->name, attempt, (unsigned)n->status);
        }
        fprintf(stderr,
                "cluster: %s could not start on port %d (status 0x%x); another port\n",
                n->name, n->port, (unsigned)n->status);
    }
}

void cl_restart(cluster_t *c, cl_node_t *n)
{
    (void)c;
    assert_int_equal(n->pid, 0);
    /* Same address: if the port is briefly unavailable, try it again. */
    for (int attempt = 1;; attempt++) {
        if (cl_start_once(n, NULL) == 0)
            return;
        if (attempt == CL_START_TRIES) {
            cl_dump_log(n, 4000);
            fail_msg("herdd %s did not restart at %s (last status 0x%x)", n->name,
                     n->listen, (unsigned)n->status);
        }
        cl_sleep_ms(300);
    }
}

void cl_signal(cl_node_t *n, int sig)
{
    assert_true(n->pid > 0);
    assert_int_equal(kill(n->pid, sig), 0);
}

int cl_alive(cl_node_t *n)
{
    if (n->pid <= 0)
        return 0;
    int st;
    pid_t got = waitpid(n->pid, &st, WNOHANG);
    if (got == 0)
        return 1;
    if (got == n->pid)
        n->status = st;
    n->pid = 0;
    return 0;
}

int cl_wait_exit(cl_node_t *n, int timeout_ms)
{
    uint64_t deadline = cl_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (!cl_alive(n))
            return 0;
        if (cl_now_ms() > deadline)
            return -1;
        cl_sleep_ms(10);
    }
}

void cl_kill9(cl_node_t *n)
{
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGKILL);
    int st;
    while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
        ;
    n->status = st;
    n->pid = 0;
}

void cl_stop_all(cluster_t *c)
{
    int running[CL_MAX_NODES] = {0};
    for (size_t i = 0; i < c->count; i++)
        if ((running[i] = cl_alive(&c->node[i])))
            cl_signal(&c->node[i], SIGTERM);
    for (size_t i = 0; i < c->count; i++) {
        cl_node_t *n = &c->node[i];
        if (!running[i])
            continue;
        if (cl_wait_exit(n, 10000) != 0)
            fail_msg("herdd %s still runs 10 s after SIGTERM", n->name);
        if (!WIFEXITED(n->status) || WEXITSTATUS(n->status) != 0) {
            cl_dump_log(n, 6000);
            fail_msg("herdd %s: SIGTERM, then %s %d, want exit 0", n->name,
                     WIFEXITED(n->status) ? "exit" : "signal",
                     WIFEXITED(n->status) ? WEXITSTATUS(n->status) : WTERMSIG(n->status));
        }
    }
    for (size_t i = 0; i < c->count; i++) {
        cl_node_t *n = &c->node[i];
        static const char *const reports[] = {"AddressSanitizer", "LeakSanitizer",
                                              "runtime error:"};
        for (size_t k = 0; k < sizeof(reports) / sizeof(reports[0]); k++)
            if (cl_log_has(n, reports[k]))
                fail_msg("herdd %s: a sanitizer report (%s) in %s", n->name, reports[k],
                         n->log);
    }
}

int cl_log_has(const cl_node_t *n, const char *needle)
{
    return cl_file_has(n->log, 0, needle);
}

/* ---- asking nodes --------------------------------------------------------------- */

json_t *cl_ask(const cl_node_t *n, const char *cmd, char *why, size_t cap)
{
    control_reply_t r;
    control_request(n->control, cmd, NULL, CL_CONTROL_MS, &r);
    if (r.outcome == CONTROL_OK)
        return r.result;
    if (why)
        snprintf(why, cap, "%s%s%s", r.code, r.code[0] ? ": " : "", r.message);
    return NULL;
}

json_t *cl_members(const cl_node_t *n)
{
    json_t *m = cl_ask(n, "members", NULL, 0);
    if (m && !json_is_array(m)) {
        json_decref(m);
        fail_msg("%s: members is not a JSON array", n->name);
    }
    return m;
}

json_t *cl_member(json_t *members, const char *name)
{
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        const char *s = json_string_value(json_object_get(m, "name"));
        if (s && strcmp(s, name) == 0)
            return m;
    }
    return NULL;
}

const char *cl_state(const cl_node_t *observer, const char *name, char *state, size_t cap,
                     uint64_t *incarnation)
{
    json_t *list = cl_members(observer);
    if (list == NULL)
        return NULL;
    json_t *m = cl_member(list, name);
    const char *s = m ? json_string_value(json_object_get(m, "state")) : "";
    snprintf(state, cap, "%s", s ? s : "?");
    if (incarnation)
        *incarnation =
            m ? (uint64_t)json_integer_value(json_object_get(m, "incarnation")) : 0;
    json_decref(list);
    return state;
}

long cl_wait_state(const cl_node_t *observer, const char *name, const char *state,
                   int timeout_ms)
{
    uint64_t start = cl_now_ms();
    char s[32];
    for (;;) {
        if (cl_state(observer, name, s, sizeof(s), NULL) && strcmp(s, state) == 0)
            return (long)(cl_now_ms() - start);
        if (cl_now_ms() - start > (uint64_t)timeout_ms)
            return -1;
        cl_sleep_ms(CL_POLL_MS);
    }
}

/* Whether `observer` lists every node in nodes[0..n) as up. */
static int cl_sees_all_up(const cl_node_t *observer, cl_node_t *const *nodes, size_t n)
{
    json_t *list = cl_members(observer);
    if (list == NULL)
        return 0;
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *m = cl_member(list, nodes[i]->name);
        const char *s = m ? json_string_value(json_object_get(m, "state")) : NULL;
        ok = s && strcmp(s, "up") == 0;
    }
    json_decref(list);
    return ok;
}

long cl_wait_all_up(cl_node_t *const *nodes, size_t n, int timeout_ms)
{
    uint64_t start = cl_now_ms();
    for (;;) {
        size_t ok = 0;
        while (ok < n && cl_sees_all_up(nodes[ok], nodes, n))
            ok++;
        if (ok == n)
            return (long)(cl_now_ms() - start);
        if (cl_now_ms() - start > (uint64_t)timeout_ms)
            return -1;
        cl_sleep_ms(CL_POLL_MS);
    }
}

long long cl_stat(const cl_node_t *n, const char *field, const char *reason)
{
    json_t *st = cl_ask(n, "stats", NULL, 0);
    if (st == NULL)
        return -1;
    json_t *v = reason ? json_object_get(json_object_get(st, "rejected"), reason)
                       : json_object_get(st, field);
    long long out = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(st);
    return out;
}

/* ---- other programs ------------------------------------------------------------- */

static void cl_slurp(const char *path, char *buf, size_t cap)
{
    size_t n = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    unlink(path);
}

void cl_run_prog(cluster_t *c, const char *prog, const char *const *args, int timeout_ms,
                 cl_run_t *r)
{
    const char *argv[32];
    size_t k = 0;
    argv[k++] = prog;
    for (size_t i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    cl_run(c, argv, timeout_ms, r);
}

void cl_run(cluster_t *c, const char *const *argv, int timeout_ms, cl_run_t *r)
{
    char out[320], err[320];
    static unsigned runs;
    runs++;
    snprintf(out, sizeof(out), "%s/run%u.out", c->dir, runs);
    snprintf(err, sizeof(err), "%s/run%u.err", c->dir, runs);
    uint64_t start = cl_now_ms();
    cl_node_t proc = {.pid = cl_spawn(argv, out, err)};
    r->status = -1;
    if (cl_wait_exit(&proc, timeout_ms) != 0)
        cl_kill9(&proc);
    else if (WIFEXITED(proc.status))
        r->status = WEXITSTATUS(proc.status);
    else
        r->status = -2;
    r->elapsed_ms = (long)(cl_now_ms() - start);
    cl_slurp(out, r->out, sizeof(r->out));
    cl_slurp(err, r->err, sizeof(r->err));
}

/* ---- asking with arguments, restarting with arguments ----------------------------- */

json_t *cl_ask_args(const cl_node_t *n, const char *cmd, json_t *args, char *code,
                    size_t code_cap, char *why, size_t why_cap)
{
    control_reply_t r;
    control_request(n->control, cmd, args, CL_ASK_ARGS_MS, &r);
    json_decref(args);
    if (r.outcome == CONTROL_OK)
        return r.result;
    if (code)
        snprintf(code, code_cap, "%s", r.outcome == CONTROL_REFUSED ? r.code : "");
    if (why)
        snprintf(why, why_cap, "%s%s%s", r.code, r.code[0] ? ": " : "", r.message);
    return NULL;
}

void cl_restart_args(cluster_t *c, cl_node_t *n, const char *const *extra)
{
    (void)c;
    assert_int_equal(n->pid, 0);
    for (int attempt = 1;; attempt++) {
        if (cl_start_once(n, extra) == 0)
            return;
        if (attempt == CL_START_TRIES) {
            cl_dump_log(n, 4000);
            fail_msg("herdd %s did not restart at %s (last status 0x%x)", n->name,
                     n->listen, (unsigned)n->status);
        }
        cl_sleep_ms(300);
    }
}

/* ---- counters and splits ----------------------------------------------------------- */

long long cl_ringctl_incr(cluster_t *c, const cl_node_t *n, const char *name)
{
    const char *argv[] = {RINGCTL_PATH, "--json", "--node", n->control, "call", name,
                          "incr", NULL};
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    cl_run(c, argv, 20000, r);
    if (r->status != 0)
        fail_msg("ringctl call %s incr: exit %d\n%s%s", name, r->status, r->out, r->err);
    json_t *doc = json_loads(r->out, 0, NULL);
    assert_non_null(doc);
    json_t *v = json_object_get(doc, "value");
    assert_true(json_is_integer(v));
    long long out = (long long)json_integer_value(v);
    json_decref(doc);
    free(r);
    return out;
}

void cl_split(const cl_node_t *x, const cl_node_t *y, int on)
{
    char code[32], why[600];
    for (int i = 0; i < 2; i++) {
        const cl_node_t *at = i ? y : x, *peer = i ? x : y;
        json_t *r = cl_ask_args(at, on ? "block" : "unblock",
                                json_pack("{s:s}", "node", peer->name), code, sizeof(code), why,
                                sizeof(why));
        if (r == NULL)
            fail_msg("%s %s at %s: %s", on ? "block" : "unblock", peer->name, at->name, why);
        json_decref(r);
    }
}
