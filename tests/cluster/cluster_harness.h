/*
 * cluster_harness.h - real herdd processes on 127.0.0.1 for the cluster tests.
 *
 * One `cluster_t` per test (made by cl_setup, destroyed by cl_teardown, the
 * cmocka fixtures): a mkdtemp directory holding the cookie file, one stderr
 * log per node and the nodes' ipc:// control sockets. Nodes listen on
 * tcp://127.0.0.1:PORT with ports drawn at random from 20000-60000 (a node
 * that cannot bind is started again on another port). Nodes are stopped by
 * pid only and always reaped; teardown SIGKILLs whatever a test left running,
 * also when an assertion failed, and then prints the nodes' logs if the test
 * did not reach cl_pass().
 *
 * Every wait is bounded: the helpers poll the control socket every
 * CL_POLL_MS until a deadline.
 */
#ifndef HERD_CLUSTER_HARNESS_H
#define HERD_CLUSTER_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define CL_MAX_NODES 8
#define CL_POLL_MS 50
#define CL_READY_MS 20000 /* herdd's "ready" line; generous for ASan on 2 cores */
#define CL_CONTROL_MS 1000

typedef struct cl_node {
    char name[65];
    int port;
    char listen[64];
    char control[300]; /* ipc://DIR/NAME.ctl */
    char log[300];     /* DIR/NAME.log, stderr of every start, appended */
    char cookie[300];  /* the cookie file it was started with */
    char seed[64];     /* --join address, "" for none */
    pid_t pid;         /* 0 when not running */
    int status;        /* waitpid status of its last exit */
    int starts;
} cl_node_t;

typedef struct cluster {
    char dir[256];
    char cookie[300];
    cl_node_t node[CL_MAX_NODES];
    size_t count;
    uint64_t rng;
    int passed;
} cluster_t;

/* cmocka fixtures: *state becomes a cluster_t. */
int cl_setup(void **state);
int cl_teardown(void **state);
/* The test got to its end: teardown need not print the logs. */
void cl_pass(cluster_t *c);

uint64_t cl_now_ms(void);
void cl_sleep_ms(int ms);
uint64_t cl_random(cluster_t *c);

/* Write a cookie file DIR/FILE with `bytes` random printable bytes (plus a
 * newline) and `mode`; returns its path in out. */
void cl_write_cookie(cluster_t *c, const char *file, size_t bytes, mode_t mode, char *out,
                     size_t cap);

/* Start herdd NAME joining through `seed` (NULL: none) with `cookie` (NULL:
 * the cluster's), plus `extra` arguments (NULL-terminated, or NULL), and wait
 * for its ready line. Fails the test if it does not get ready. */
cl_node_t *cl_start(cluster_t *c, const char *name, const cl_node_t *seed,
                    const char *cookie, const char *const *extra);
/* Start `n` again as a new process with the same name, address, control
 * address, seed and cookie. Fails the test if it does not get ready. */
void cl_restart(cluster_t *c, cl_node_t *n);
/* Send a signal to a running node (by pid). */
void cl_signal(cl_node_t *n, int sig);
/* Wait up to timeout_ms for the node to exit; returns 0 and sets n->status
 * when it did, -1 otherwise (it keeps running). */
int cl_wait_exit(cl_node_t *n, int timeout_ms);
/* Whether the node's process is still running (reaps it if it exited). */
int cl_alive(cl_node_t *n);
/* SIGKILL and reap. */
void cl_kill9(cl_node_t *n);

/* The end of a test: SIGTERM every node still running and assert that each
 * exits 0 within 10 s (under ASan that includes no leak), and that no
 * node's log ever showed a sanitizer report. */
void cl_stop_all(cluster_t *c);
/* Whether a node's log (all of its starts) contains `needle`. */
int cl_log_has(const cl_node_t *n, const char *needle);

/* Ask a node's control socket; returns the result (a new reference) or NULL
 * when it is unreachable or refuses (the reason in why, if given). */
json_t *cl_ask(const cl_node_t *n, const char *cmd, char *why, size_t cap);
/* `members` as a JSON array, NULL when the node does not answer. */
json_t *cl_members(const cl_node_t *n);
/* The entry for `name` in a members list, or NULL. */
json_t *cl_member(json_t *members, const char *name);
/* The state `observer` reports for `name` ("" when it does not list it,
 * NULL when the observer does not answer) and its incarnation. The string
 * is copied into state[cap]. */
const char *cl_state(const cl_node_t *observer, const char *name, char *state, size_t cap,
                     uint64_t *incarnation);
/* Poll until `observer` reports `name` in `state`; returns the elapsed ms,
 * or -1 at the deadline. */
long cl_wait_state(const cl_node_t *observer, const char *name, const char *state,
                   int timeout_ms);
/* Poll until each of the nodes nodes[0..n) reports all of them "up"; returns
 * elapsed ms or -1. */
long cl_wait_all_up(cl_node_t *const *nodes, size_t n, int timeout_ms);
/* A stats counter: stats.rejected.REASON when reason is given, else
 * stats.FIELD. -1 when the node does not answer. */
long long cl_stat(const cl_node_t *n, const char *field, const char *reason);

/* Run a program to completion with stdout/stderr captured (killed after
 * timeout_ms: status -1). */
typedef struct cl_run {
    int status; /* exit code, -1 timed out, -2 killed by a signal */
    long elapsed_ms;
    char out[65536];
    char err[8192];
} cl_run_t;
void cl_run(cluster_t *c, const char *const *argv, int timeout_ms, cl_run_t *r);
/* The same for program `prog` with `args` (NULL-terminated, after the
 * program's name; at most 30). */
void cl_run_prog(cluster_t *c, const char *prog, const char *const *args, int timeout_ms,
                 cl_run_t *r);

/* Print a node's log (the last `tail` bytes) on stderr. */
void cl_dump_log(const cl_node_t *n, size_t tail);

/* Ask a node's control socket `cmd` with `args` (stolen; NULL: none),
 * waiting up to CL_ASK_ARGS_MS (commands that change things: a slow answer
 * on a loaded machine must not pass for no answer). Returns the result (a
 * new reference), or NULL with the error's name in code ("ENOENT", ...; ""
 * when the node did not answer) and the message in why (either may be
 * NULL). */
#define CL_ASK_ARGS_MS 5000
json_t *cl_ask_args(const cl_node_t *n, const char *cmd, json_t *args, char *code,
                    size_t code_cap, char *why, size_t why_cap);
/* As cl_restart, with the `extra` arguments (NULL-terminated) of cl_start. */
void cl_restart_args(cluster_t *c, cl_node_t *n, const char *const *extra);

/* ringctl call NAME incr through `n`: the counter's new value (fails the
 * test on any other outcome). */
long long cl_ringctl_incr(cluster_t *c, const cl_node_t *n, const char *name);
/* x and y stop hearing each other (each blocks the other), or hear again. */
void cl_split(const cl_node_t *x, const cl_node_t *y, int on);

#endif
