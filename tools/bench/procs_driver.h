/*
 * procs_driver.h - herd's benchmarks with one OS process a node
 * (bench_registry_procs.c, bench_handoff_procs.c): the parent forks every
 * node's process first (nanomsg must not be running in a process that
 * forks), then drives each over a pair of pipes, one command a line, one
 * answer a line.
 *
 * The parent's side keeps every child it forked: procs_kill stops one
 * (SIGKILL, then waited for), procs_end_all asks the rest to exit and waits
 * for each by PID (SIGKILL past a deadline), and a failure (procs_fail, or
 * any exit of the parent) kills the ones still running by PID. Every wait
 * for an answer has a deadline: past it the run fails loudly (exit 1).
 */
#ifndef HERD_BENCH_PROCS_DRIVER_H
#define HERD_BENCH_PROCS_DRIVER_H

#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#define PROCS_MAX 16           /* node processes at once */
#define PROCS_CMD_MAX 512      /* a command line, its newline included */
#define PROCS_REPLY_DEADLINE_S 120.0 /* the default wait for one answer */

/* ---- a node's process ------------------------------------------------------------ */

/* Called with each command line (its newline gone). */
typedef void (*procs_line_fn)(void *data, char *line);

typedef struct procs_serve {
    uv_poll_t poll;
    int cmd_fd, rep_fd;
    char buf[PROCS_CMD_MAX];
    size_t buf_n;
    procs_line_fn fn;
    void *data;
    const char *who; /* for messages: "bench_registry: node 1" */
} procs_serve_t;

/* Read commands from cmd_fd on `loop`, each line to fn(data, line). The
 * process ends (_exit 0) when the parent closes the pipe. */
void procs_serve_start(procs_serve_t *s, uv_loop_t *loop, int cmd_fd, int rep_fd,
                       procs_line_fn fn, void *data, const char *who);
/* One answer line (the newline is added), of any length. */
void procs_reply(procs_serve_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the parent's side ----------------------------------------------------------- */

typedef struct procs_child {
    pid_t pid; /* 0 once stopped */
    int cmd, rep;
    int index;
    char in[4096]; /* answer bytes read ahead */
    size_t in_n;
} procs_child_t;

/* The node process's work: never returns (it _exits). */
typedef void (*procs_main_fn)(int index, int cmd_fd, int rep_fd, void *arg);

/* The program's name for messages; call first. */
void procs_init(const char *prog);
/* Fork a node process running main(index, ...); NULL never (fails loudly). */
procs_child_t *procs_fork(procs_main_fn main, int index, void *arg);
void procs_send(procs_child_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One answer line into out (cap bytes, NUL included), within deadline_s. */
void procs_read(procs_child_t *c, char *out, size_t cap, double deadline_s);
/* procs_send, then procs_read within PROCS_REPLY_DEADLINE_S. */
void procs_ask(procs_child_t *c, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The next answer must be `want`. */
void procs_expect(procs_child_t *c, const char *want);
/* SIGKILL, then wait for it: its sockets are closed when this returns. */
void procs_kill(procs_child_t *c);
/* "exit" to every running child, each waited for by PID (SIGKILL after
 * 10 s); every child is forgotten. */
void procs_end_all(void);
/* Print "<prog>: <message>", kill every child by PID, exit 1. */
void procs_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
