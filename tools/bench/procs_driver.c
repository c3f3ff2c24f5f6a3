/*
 * procs_driver.c - forking node processes and talking to them over pipes
 * (procs_driver.h).
 */
#define _DEFAULT_SOURCE /* usleep */
#include "procs_driver.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define END_DEADLINE_S 10.0 /* a child asked to exit is killed after this */

static const char *prog = "bench";
static procs_child_t children[PROCS_MAX];
static int nchildren;
static pid_t parent_pid; /* the process that forked them: only it stops them */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a node's process ------------------------------------------------------------ */

static void serve_on_cmd(uv_poll_t *h, int status, int events)
{
    (void)events;
    procs_serve_t *s = h->data;
    ssize_t got =
        status < 0 ? -1 : read(s->cmd_fd, s->buf + s->buf_n, sizeof(s->buf) - 1 - s->buf_n);
    if (got < 0 && errno == EINTR)
        return;
    if (got <= 0)
        _exit(got == 0 ? 0 : 1); /* the parent is gone */
    s->buf_n += (size_t)got;
    char *nl;
    while ((nl = memchr(s->buf, '\n', s->buf_n)) != NULL) {
        *nl = '\0';
        s->fn(s->data, s->buf);
        size_t used = (size_t)(nl + 1 - s->buf);
        memmove(s->buf, nl + 1, s->buf_n - used);
        s->buf_n -= used;
    }
    if (s->buf_n == sizeof(s->buf) - 1) {
        fprintf(stderr, "%s: a command longer than %d bytes\n", s->who, PROCS_CMD_MAX - 1);
        _exit(1);
    }
}

void procs_serve_start(procs_serve_t *s, uv_loop_t *loop, int cmd_fd, int rep_fd,
                       procs_line_fn fn, void *data, const char *who)
{
    memset(s, 0, sizeof(*s));
    s->cmd_fd = cmd_fd;
    s->rep_fd = rep_fd;
    s->fn = fn;
    s->data = data;
    s->who = who;
    s->poll.data = s;
    if (uv_poll_init(loop, &s->poll, cmd_fd) != 0 ||
        uv_poll_start(&s->poll, UV_READABLE, serve_on_cmd) != 0) {
        fprintf(stderr, "%s: watching the command pipe failed\n", who);
        _exit(1);
    }
}

void procs_reply(procs_serve_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *line = n >= 0 ? malloc((size_t)n + 2) : NULL;
    if (line == NULL) {
        fprintf(stderr, "%s: formatting an answer failed\n", s->who);
        _exit(1);
    }
    va_start(ap, fmt);
    vsnprintf(line, (size_t)n + 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(s->rep_fd, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1); /* the parent is gone */
        off += (size_t)w;
    }
    free(line);
}

/* ---- the parent's side ----------------------------------------------------------- */

static void reap(procs_child_t *c, int kill_it)
{
    if (c->pid <= 0)
        return;
    if (kill_it)
        kill(c->pid, SIGKILL);
    int st;
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
        ;
    close(c->cmd);
    close(c->rep);
    c->pid = 0;
}

/* At the parent's exit, whatever the reason: no node process outlives it. */
static void kill_leftovers(void)
{
    if (getpid() != parent_pid)
        return; /* a node process ending: its siblings are not its own */
    for (int k = 0; k < nchildren; k++)
        reap(&children[k], 1);
    nchildren = 0;
}

void procs_init(const char *name)
{
    static int registered;
    prog = name;
    parent_pid = getpid();
    signal(SIGPIPE, SIG_IGN); /* a dead child's pipe: a failed write, reported */
    if (!registered && atexit(kill_leftovers) == 0)
        registered = 1;
}

void procs_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    kill_leftovers();
    exit(1);
}

procs_child_t *procs_fork(procs_main_fn main_fn, int index, void *arg)
{
    if (nchildren == PROCS_MAX)
        procs_fail("more than %d node processes", PROCS_MAX);
    int down[2], up[2];
    if (pipe(down) != 0)
        procs_fail("pipe: %s", strerror(errno));
    if (pipe(up) != 0)
        procs_fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        procs_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        for (int k = 0; k < nchildren; k++) /* the siblings' pipes are not ours */
            if (children[k].pid > 0) {
                close(children[k].cmd);
                close(children[k].rep);
            }
        nchildren = 0;
        main_fn(index, down[0], up[1], arg);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    procs_child_t *c = &children[nchildren++];
    memset(c, 0, sizeof(*c));
    c->pid = pid;
    c->cmd = down[1];
    c->rep = up[0];
    c->index = index;
    return c;
}

void procs_send(procs_child_t *c, const char *fmt, ...)
{
    char line[PROCS_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        procs_fail("a command longer than %d bytes", PROCS_CMD_MAX - 1);
    line[n++] = '\n';
    if (write(c->cmd, line, (size_t)n) != n)
        procs_fail("writing a command to node process %d (pid %d): %s", c->index,
                   (int)c->pid, strerror(errno));
}

/* The first line in c's read-ahead into out; 1 if there was one. */
static int take_line(procs_child_t *c, char *out, size_t cap, size_t *taken)
{
    char *nl = memchr(c->in, '\n', c->in_n);
    size_t len = nl ? (size_t)(nl - c->in) : c->in_n;
    if (*taken + len + 1 > cap)
        procs_fail("an answer of node process %d longer than %zu bytes", c->index, cap - 1);
    memcpy(out + *taken, c->in, len);
    *taken += len;
    size_t used = nl ? len + 1 : len;
    memmove(c->in, c->in + used, c->in_n - used);
    c->in_n -= used;
    out[*taken] = '\0';
    return nl != NULL;
}

void procs_read(procs_child_t *c, char *out, size_t cap, double deadline_s)
{
    double deadline = mono_s() + deadline_s;
    size_t taken = 0;
    for (;;) {
        if (c->in_n > 0 && take_line(c, out, cap, &taken))
            return;
        struct pollfd pf = {c->rep, POLLIN, 0};
        int left = (int)((deadline - mono_s()) * 1000);
        if (left <= 0)
            procs_fail("node process %d (pid %d) did not answer within %.0f s", c->index,
                       (int)c->pid, deadline_s);
        int ready = poll(&pf, 1, left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            procs_fail("poll: %s", strerror(errno));
        if (ready == 0)
            continue; /* the deadline is checked above */
        ssize_t got = read(c->rep, c->in, sizeof(c->in));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            procs_fail("node process %d (pid %d) ended before answering", c->index,
                       (int)c->pid);
        c->in_n = (size_t)got;
    }
}

void procs_ask(procs_child_t *c, char *out, size_t cap, const char *fmt, ...)
{
    char line[PROCS_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        procs_fail("a command longer than %d bytes", PROCS_CMD_MAX - 1);
    procs_send(c, "%s", line);
    procs_read(c, out, cap, PROCS_REPLY_DEADLINE_S);
}

void procs_expect(procs_child_t *c, const char *want)
{
    char line[PROCS_CMD_MAX];
    procs_read(c, line, sizeof(line), PROCS_REPLY_DEADLINE_S);
    if (strcmp(line, want) != 0)
        procs_fail("node process %d answered '%s', not '%s'", c->index, line, want);
}

void procs_kill(procs_child_t *c)
{
    reap(c, 1);
}

void procs_end_all(void)
{
    for (int k = 0; k < nchildren; k++)
        if (children[k].pid > 0 && write(children[k].cmd, "exit\n", 5) != 5)
            kill(children[k].pid, SIGKILL);
    double deadline = mono_s() + END_DEADLINE_S;
    for (int k = 0; k < nchildren; k++) {
        procs_child_t *c = &children[k];
        if (c->pid <= 0)
            continue;
        int st;
        pid_t w;
        while ((w = waitpid(c->pid, &st, WNOHANG)) == 0 && mono_s() < deadline)
            usleep(1000);
        if (w == c->pid) { /* it ended: its PID is free, signal it no more */
            close(c->cmd);
            close(c->rep);
            c->pid = 0;
        } else {
            reap(c, 1); /* past the deadline */
        }
    }
    nchildren = 0;
}
