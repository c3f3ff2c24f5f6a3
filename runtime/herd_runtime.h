/*
 * herd_runtime.h - the public API of herd's runtime: nodes, lightweight
 * processes, messages, calls, timers, monitors, links and local supervision.
 *
 * The model is Erlang/OTP's, in C:
 * - A node is a value (several can live in one program), with its own clock,
 *   random source and libuv loop (its own or one it is given).
 * - A process runs a behaviour (a table of callbacks) over its own state. It
 *   handles one message at a time, each handler to completion, on the node's
 *   loop thread. A handler that returns a negative code crashes its process:
 *   terminate runs, links and monitors fire, its supervisor reacts; no other
 *   process is disturbed.
 * - Messages are bytes, copied on send, delivered in order between any pair of
 *   processes. Nothing blocks inside a process: a call made by a process comes
 *   back to it as a HERD_MSG_REPLY message carrying the call's reference (the
 *   reply, or HERD_ETIMEDOUT). Code outside processes (tests, tools, an
 *   embedding program) uses herd_node_call_async, whose callback the loop
 *   runs with the reply, or herd_node_call, which runs the loop until the
 *   reply (not from the loop's own callbacks: HERD_EDEADLK there).
 * - Pids are values, never pointers: a send to a pid that has exited returns
 *   HERD_ENOPROC. A pid is never reused: serials only grow, and a restarted node
 *   has a new incarnation.
 *
 * All functions return 0 (or a count) on success and a negative HERD_E* code on
 * failure (herd_error.h).
 *
 * Threads. Everything here must be called on the node's loop thread (the one
 * that runs its loop; before the loop runs, the one that made the node),
 * except herd_node_post, the one thread-safe entry: another thread hands it
 * a function that the loop thread then runs (herd_strerror, herd_err_name,
 * herd_reason_name, herd_node_id_of and herd_pid_equal are pure and safe
 * anywhere too). The log settings are process-wide and not thread-safe.
 */
#ifndef HERD_RUNTIME_H
#define HERD_RUNTIME_H

#include "herd_posix.h" /* first: before any system header */

#include <uv.h>

#include "herd_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

/* ---- pids and exit reasons ---------------------------------------------------- */

typedef struct herd_pid {
    uint64_t node;        /* the node's id: herd_node_id_of(name) */
    uint64_t incarnation; /* the node's start: unique per start */
    uint64_t serial;      /* per process; 0 names "code outside processes" */
} herd_pid_t;

#define HERD_PID_NONE ((herd_pid_t){0, 0, 0})

int herd_pid_equal(herd_pid_t a, herd_pid_t b);
int herd_pid_is_none(herd_pid_t p);

/* Exit reasons: >= 0 are the kinds below, < 0 is a crash with that error code
 * (a handler's negative return, or init's failure). */
enum {
    HERD_REASON_NORMAL = 0,        /* finished; links are not triggered */
    HERD_REASON_SHUTDOWN = 1,      /* stopped by its supervisor or node */
    HERD_REASON_KILLED = 2,        /* herd_exit(..., KILLED): cannot be trapped */
    HERD_REASON_NOPROC = 3,        /* DOWN for a monitor of a pid that was not alive */
    HERD_REASON_NOCONNECTION = 4,  /* its node was declared down */
    HERD_REASON_NAME_CONFLICT = 5, /* lost a name conflict */
    HERD_REASON_HANDOFF = 6,       /* moved to another node */
    HERD_REASON_MAX_RESTARTS = 7,  /* its supervisor gave up restarting it */
};
/* "normal", "shutdown", ..., or the error name of a crash ("crash:ETIMEDOUT"). */
const char *herd_reason_name(int reason);

/* ---- messages ------------------------------------------------------------------- */

typedef enum herd_msg_kind {
    HERD_MSG_CAST = 1, /* herd_cast: to handle_cast */
    HERD_MSG_INFO,     /* herd_send, timers: to handle_info */
    HERD_MSG_CALL,     /* herd_call: to handle_call; answer with herd_reply */
    HERD_MSG_REPLY,    /* the answer to a call this process made (handle_info) */
    HERD_MSG_DOWN,     /* a monitored process exited (handle_info) */
    HERD_MSG_EXIT,     /* a linked process exited and this one traps exits */
    HERD_MSG_MERGE,    /* the state of a copy that lost a name conflict: given to
                          resolve_conflict, never to handle_info */
} herd_msg_kind_t;

/* A message as a handler sees it. Valid only during the handler call. */
typedef struct herd_msg {
    herd_msg_kind_t kind;
    /* CAST/INFO/CALL: the sender (serial 0 for code outside processes);
     * REPLY: the callee; DOWN/EXIT: the process that exited. */
    herd_pid_t from;
    /* CALL/REPLY: the call's reference; DOWN: the monitor's; INFO from a timer:
     * the timer's; 0 otherwise. */
    uint64_t ref;
    /* REPLY: 0, or the call's error (HERD_ETIMEDOUT, HERD_ENOPROC,
     * HERD_ENOTCONN, HERD_EUNCERTAIN: herd_call; or what the callee
     * replied, herd_app_error_code telling the service's own error codes
     * of herd_reply_error); DOWN/EXIT: the exit reason. */
    int status;
    size_t len;
    const uint8_t *data;
    /* REPLY from a gated callee (herd_gate_open: its state is replicated):
     * how many copies held the state the reply reflects when it left, the
     * callee's own included; 0 when the callee does not say. */
    uint8_t copies;
} herd_msg_t;

/* Who to answer: kept by handle_call for a deferred reply (GenServer.reply). */
typedef struct herd_from {
    herd_pid_t pid;
    uint64_t ref;
} herd_from_t;

/* ---- behaviours ----------------------------------------------------------------- */

typedef struct herd_node herd_node_t;
typedef struct herd_proc herd_proc_t; /* given to a process's own callbacks only */

/* The callbacks of a kind of process. Every callback runs on the loop thread,
 * and may send, call, spawn, arm timers and monitor. A negative return crashes
 * the process with that code. NULL callbacks: a cast or info with no handler
 * is dropped, a call with no handle_call is answered HERD_EINVAL at once,
 * init's absence leaves state NULL. */
typedef struct herd_behaviour {
    const char *name;
    /* Set *state from the spawn argument. A failure makes spawn fail with it. */
    int (*init)(herd_proc_t *self, const void *arg, size_t len, void **state);
    /* Answer now or later with herd_reply(self, from, ...). */
    int (*handle_call)(herd_proc_t *self, void *state, const herd_msg_t *msg,
                       herd_from_t from);
    int (*handle_cast)(herd_proc_t *self, void *state, const herd_msg_t *msg);
    int (*handle_info)(herd_proc_t *self, void *state, const herd_msg_t *msg);
    /* Always called once when the process exits (not after a failed init);
     * frees the state. */
    void (*terminate)(herd_proc_t *self, void *state, int reason);
    /* Serialize the state for a move: *out is malloc'ed, the runtime frees it. */
    int (*handoff_out)(herd_proc_t *self, void *state, uint8_t **out, size_t *len);
    /* Build state from handoff_out's bytes (instead of init). */
    int (*handoff_in)(herd_proc_t *self, const uint8_t *data, size_t len, void **state);
    /* Optional: merge the state of a conflicting copy that lost into this one. */
    int (*resolve_conflict)(herd_proc_t *self, void *state, const uint8_t *other,
                            size_t len);
    /* Optional, with delta_apply, for large states (replication sends the
     * change instead of the whole state, handoff/REPLICATION.md): the change
     * since the last call (the first: since the process began), such that
     * delta_apply turns the bytes handoff_out wrote at that call into those
     * it would write now. *out is malloc'ed (may be NULL with *len 0: no
     * change), the runtime frees it. A failure makes the whole state go. */
    int (*delta_out)(herd_proc_t *self, void *state, uint8_t **out, size_t *len);
    /* Optional, pure (a replica keeps bytes, not a process): the state bytes
     * `state` with `delta` applied, into a malloc'ed *out. HERD_EBADFRAME for
     * bytes it cannot read: the replica then asks for the whole state. */
    int (*delta_apply)(const uint8_t *state, size_t len, const uint8_t *delta, size_t delta_len,
                       uint8_t **out, size_t *out_len);
} herd_behaviour_t;

/* ---- logging ---------------------------------------------------------------------- */

/* herd logs one line per event, with a level and the subsystem it comes
 * from ("cluster", "registry", "replicas", ...). The settings are process-wide
 * (every node of a program shares them): make them before starting nodes;
 * they are not thread-safe. */
typedef enum herd_log_level {
    HERD_LOG_ERROR,
    HERD_LOG_WARN,
    HERD_LOG_INFO,
    HERD_LOG_DEBUG,
} herd_log_level_t;

/* Where lines go: `message` is escaped (a byte outside printable ASCII
 * appears as \xNN, a backslash as \\), under 2 KiB plus a note of lines
 * held back. NULL (the default): stderr, each line "TIME herd LEVEL SUBSYSTEM: MESSAGE", TIME in UTC
 * (2026-12-07T04:12:00.123Z). */
typedef void (*herd_log_handler_fn)(void *data, herd_log_level_t level, const char *subsystem,
                                    const char *message);
void herd_log_set_handler(herd_log_handler_fn fn, void *data);
/* The level of every subsystem without one of its own (default: warn). */
void herd_log_set_level(herd_log_level_t level);
herd_log_level_t herd_log_get_level(void);
/* A subsystem's own level (name: 1-23 of a-z0-9_-). HERD_EINVAL for a bad
 * name or level, HERD_EFULL past 32 subsystems. */
int herd_log_set_subsystem_level(const char *subsystem, herd_log_level_t level);
/* Forget every subsystem's own level. */
void herd_log_clear_subsystem_levels(void);
/* Parse "error" | "warn" | "info" | "debug"; HERD_EINVAL otherwise. */
int herd_log_parse_level(const char *text, herd_log_level_t *out);
/* Apply "LEVEL", "SUBSYSTEM=LEVEL" or a comma-separated list of those
 * ("warn,replicas=debug,cluster=info"): all of it, or nothing and
 * HERD_EINVAL (HERD_EFULL: too many subsystems). */
int herd_log_apply_spec(const char *spec);
/* Whether herd_log_apply_spec would take `spec` (0), changing nothing. */
int herd_log_check_spec(const char *spec);

/* ---- nodes ------------------------------------------------------------------------ */

typedef struct herd_clock {
    uint64_t (*now_ms)(void *data);  /* monotonic milliseconds */
    void *data;
    /* Wall-clock milliseconds for timestamps (the HLC); NULL: the real time.
     * A simulation sets it to its virtual time to stay deterministic. */
    uint64_t (*wall_ms)(void *data);
} herd_clock_t;

typedef struct herd_node_config {
    const char *name;        /* 1-64 of A-Za-z0-9_.- */
    uv_loop_t *loop;         /* NULL: the node makes and owns its own */
    const herd_clock_t *clock; /* NULL: the loop's clock */
    uint64_t seed;           /* random source; 0: from time and pid */
    uint64_t incarnation;    /* 0: start time in ms and random bits */
    uint32_t mailbox_limit;  /* default per process; 0: HERD_DEFAULT_MAILBOX_LIMIT */
    uint32_t max_message;    /* largest payload in bytes; 0: HERD_DEFAULT_MAX_MESSAGE */
} herd_node_config_t;

#define HERD_DEFAULT_MAILBOX_LIMIT 100000u
#define HERD_DEFAULT_MAX_MESSAGE (1u << 20)

/* Make a node. *out is set on success. Errors: HERD_EBADNAME,
 * HERD_ENAMETOOLONG, HERD_ENOMEM, or a libuv failure as HERD_EIO. */
int herd_node_new(const herd_node_config_t *cfg, herd_node_t **out);
/* Stop every process (terminate with HERD_REASON_SHUTDOWN, no link or monitor
 * traffic), close the node's handles and free it. What still waits is told,
 * inside this call, with HERD_ESHUTDOWN (it must not use the node then): the
 * queued posts (herd_node_post), the asynchronous calls not answered yet, a
 * shutdown in progress (herd_node_shutdown). Call it on the loop thread
 * after the loop stopped, never from one of the loop's callbacks (it runs
 * the loop to close the node's handles). */
void herd_node_free(herd_node_t *node);

uint64_t herd_node_id_of(const char *name);
const char *herd_node_name(const herd_node_t *node);
uint64_t herd_node_incarnation(const herd_node_t *node);
uint64_t herd_node_now(const herd_node_t *node);  /* ms, from the node's clock */
/* Wall-clock ms: herd_clock_t.wall_ms when the node's clock has one, else the
 * real time. */
uint64_t herd_node_wall_ms(const herd_node_t *node);
/* A hybrid logical clock timestamp (hlc.h) for an event on this node: greater
 * than every timestamp the node made or received from its cluster. */
uint64_t herd_node_hlc_now(herd_node_t *node);
uint64_t herd_node_random(herd_node_t *node);     /* next value of its random source */
uv_loop_t *herd_node_loop(herd_node_t *node);
size_t herd_node_process_count(const herd_node_t *node);

/* What the node's runtime dropped, counted as it happens (ringctl stats). */
typedef struct herd_node_stats {
    /* replies that found their call no longer waiting (the caller timed out
     * or exited, or the call was answered already): herd_reply's here, and
     * replies from other nodes to calls made here */
    uint64_t late_replies;
    /* messages forwarded after a move (herd_forward_mailbox, herd_redirect)
     * that could not be delivered where they went: casts and infos dropped,
     * and calls whose caller got the error as its reply */
    uint64_t forward_dropped, forward_failed_calls;
    /* replies held by gated processes (herd_gate_open) still held at their
     * exit: each caller got HERD_EUNCERTAIN instead */
    uint64_t gate_dropped;
} herd_node_stats_t;
void herd_node_stats(const herd_node_t *node, herd_node_stats_t *out);

/* Nonzero while a process's callback runs on this node (code inside a
 * process), 0 for code outside processes. */
int herd_node_in_process(const herd_node_t *node);
/* Nonzero while the node's loop runs on this thread, under the caller: code
 * inside a process, or a callback of the loop while herd runs it
 * (herd_node_run, herd_node_run_for, a blocking call) or while herd calls a
 * program's callback (a post, an asynchronous call's answer); loops shared
 * by several nodes count for each. The blocking helpers of every layer
 * (herd_node_run_for, herd_node_run, herd_node_call, herd_node_call_name,
 * herd_start_child, herd_terminate_child) would run that loop nested in
 * itself, and refuse there with HERD_EDEADLK, doing nothing: use the
 * asynchronous forms. herd cannot see a loop the program runs with uv_run
 * itself: run it with herd_node_run. */
int herd_node_in_loop(const herd_node_t *node);
/* Run the loop for at most `ms` milliseconds of real time (returns early once
 * nothing is left to do and no timer is armed). HERD_EDEADLK from the loop
 * (herd_node_in_loop). */
int herd_node_run_for(herd_node_t *node, uint64_t ms);
/* Run the loop until uv_stop (a signal handler's, or a herd_node_shutdown
 * callback's): the way an embedding program runs it (uv_run(loop,
 * UV_RUN_DEFAULT) would do, but then herd cannot tell the loop's callbacks
 * from code outside the loop: herd_node_in_loop). Posts keep it running.
 * 0, or HERD_EDEADLK from the loop. */
int herd_node_run(herd_node_t *node);
/* ---- from other threads ------------------------------------------------------- */

/* `fn(data, 0)` runs on the node's loop thread, in the order posted, soon
 * after this returns (never inside it, even on the loop thread). THE ONE
 * THREAD-SAFE FUNCTION: any thread may call it, also while the node is
 * being freed or after (see below). Errors (fn is never called then):
 * HERD_EINVAL (fn NULL), HERD_ENOMEM, HERD_EFULL (HERD_POST_MAX posts wait
 * already: the loop is not keeping up, or not running), HERD_ESHUTDOWN
 * (herd_node_free has begun or is done: a node is checked against the live
 * ones by address, never touched; a program that makes a new node after
 * freeing one must stop its threads posting to the old first, for malloc
 * may give the new the same address). Posts queued when herd_node_free
 * begins are called there, on the loop thread, with HERD_ESHUTDOWN, so
 * `data` can be freed: none is lost silently. herd_node_run waits for
 * posts; herd_node_run_for runs those queued when it starts, but returns
 * early (nothing else to do) without waiting for more. */
typedef void (*herd_post_fn)(void *data, int status);
int herd_node_post(herd_node_t *node, herd_post_fn fn, void *data);
#define HERD_POST_MAX 65536u

/* ---- processes ----------------------------------------------------------------- */

typedef struct herd_spawn_opts {
    const herd_behaviour_t *behaviour;
    const void *arg; /* copied into init's view only for the call */
    size_t arg_len;
    herd_pid_t link;        /* link to this pid as part of the spawn; NONE: no link */
    uint32_t mailbox_limit; /* 0: the node's default */
    int trap_exit;          /* linked exits arrive as HERD_MSG_EXIT */
    /* When set, the state comes from handoff_in(handoff_state) instead of init. */
    const uint8_t *handoff_state;
    size_t handoff_len;
} herd_spawn_opts_t;

/* Start a process; its init runs before this returns. Errors: HERD_EINVAL,
 * HERD_ENOMEM, HERD_ENOPROC (link to a dead pid), or init's own failure. */
int herd_spawn(herd_node_t *node, const herd_spawn_opts_t *opts, herd_pid_t *out);

/* The process's own view, for use inside its callbacks. */
herd_pid_t herd_self(const herd_proc_t *self);
herd_node_t *herd_proc_node(const herd_proc_t *self);
void herd_set_trap_exit(herd_proc_t *self, int on);

/* Make `pid` exit with `reason`. A process exiting itself does so when its
 * handler returns. Another process gets an exit signal: killed always, normal
 * only if it is the target itself, others unless it traps exits (then it gets a
 * HERD_MSG_EXIT). HERD_ENOPROC when the pid is not alive. `node` is the node
 * the call is made on. */
int herd_exit(herd_node_t *node, herd_pid_t pid, int reason);
/* Stop a process with `reason` whatever it traps (as a supervisor stops a
 * child, or the registry the loser of a name conflict). HERD_ENOPROC when the
 * pid is not alive here. */
int herd_stop(herd_node_t *node, herd_pid_t pid, int reason);
int herd_is_alive(const herd_node_t *node, herd_pid_t pid);

/* ---- messages and calls -------------------------------------------------------- */

/* Asynchronous sends from a process, to a pid on this node or another.
 * Errors: HERD_ENOPROC (dead or unknown pid), HERD_ENOTCONN (the pid's node is
 * down, left or unknown), HERD_EFULL (the receiver's mailbox is at its limit:
 * nothing was queued, try later; for another node: too much is waiting to be
 * acknowledged by it), HERD_ETOOBIG (over the node's max_message).
 * Messages to another node travel in a reliable ordered channel: between one
 * pair of processes they arrive in order and once, unless a node dies; a cast
 * that reaches a full mailbox or a dead pid there is dropped (at most once,
 * as in Erlang). */
int herd_cast(herd_proc_t *self, herd_pid_t to, const void *data, size_t len);
int herd_send(herd_proc_t *self, herd_pid_t to, const void *data, size_t len);

/* Call `to` from a process: *ref names the call; its answer arrives later as a
 * HERD_MSG_REPLY with that ref, status 0 and the reply's bytes, or status
 * HERD_ETIMEDOUT after timeout_ms, or HERD_ENOPROC if the callee exits first.
 * If the callee's node goes down first: HERD_ENOTCONN when the request had
 * not left yet (it is withdrawn: never applied, even if the node comes
 * back), HERD_EUNCERTAIN when it had (it may or may not have been applied).
 * A call to a local pid that is not alive fails at once with HERD_ENOPROC,
 * and one to a node that is down or unknown with HERD_ENOTCONN (nothing is
 * queued); a dead pid on a live remote node is found out there, so that
 * answer comes back as a reply. The request carries its deadline (now +
 * timeout_ms, as a hybrid logical clock timestamp): a copy sent after it (a
 * resend once a partition heals) is dropped unapplied where it arrives. */
int herd_call(herd_proc_t *self, herd_pid_t to, const void *data, size_t len,
              uint32_t timeout_ms, uint64_t *ref);

/* Answer a call, now or later; `status` 0 or an error for the caller. A late
 * reply is not an error of the process that replies, so a handler may
 * `return herd_reply(...)`: a reply whose call no longer waits (the caller
 * timed out or exited, its node restarted or is unreachable, or the call was
 * answered already) is dropped, counted in herd_node_stats' late_replies,
 * and returns 0. A caller on another node drops a late reply itself (this
 * node cannot know it gave up) and counts it there. Errors: HERD_ETOOBIG,
 * HERD_EINVAL (`from` names a call of another caller), and for a caller on
 * another node HERD_EFULL or HERD_ENOMEM (the reply could not be queued; the
 * caller's call ends by its timeout). */
int herd_reply(herd_node_t *node, herd_from_t from, int status, const void *data,
               size_t len);
/* Answer a call with the service's own error `code` (1..HERD_APP_ERROR_MAX,
 * herd_error.h) and `data` saying why: the caller's reply has status
 * herd_app_error(code) (herd_err_name: "EAPP"; herd_app_error_code gives
 * `code` back), never one of herd's codes, so callers tell the service's
 * refusal from a failed delivery. HERD_EINVAL for a code out of range;
 * otherwise as herd_reply. */
int herd_reply_error(herd_node_t *node, herd_from_t from, int code, const void *data,
                     size_t len);

/* The same from code outside processes (sender serial 0). */
int herd_node_cast(herd_node_t *node, herd_pid_t to, const void *data, size_t len);
int herd_node_send(herd_node_t *node, herd_pid_t to, const void *data, size_t len);

/* The answer to a blocking call: status as for HERD_MSG_REPLY; data malloc'ed,
 * free with herd_reply_free. */
typedef struct herd_reply {
    int status;
    uint8_t *data;
    size_t len;
    uint8_t copies; /* as herd_msg_t.copies */
} herd_reply_t;
void herd_reply_free(herd_reply_t *r);

/* A blocking call for code outside processes: runs the loop until the reply
 * or the timeout. Returns 0 with *out filled (out->status may carry the
 * callee's error), or the runtime's error as herd_call's reply would carry
 * it (HERD_ENOPROC, HERD_ETIMEDOUT, HERD_ENOTCONN, HERD_EUNCERTAIN), or
 * HERD_EDEADLK (called from the node's loop, herd_node_in_loop: inside a
 * process or a loop callback, where it would run the loop nested in itself;
 * nothing is sent). out->data is the caller's: herd_reply_free. */
int herd_node_call(herd_node_t *node, herd_pid_t to, const void *data, size_t len,
                   uint32_t timeout_ms, herd_reply_t *out);

/* The answer to herd_node_call_async: `rc` and `*reply` as herd_node_call
 * returns them, or rc HERD_ESHUTDOWN (reply empty) when the node is freed
 * before (cb then runs inside herd_node_free and must not use the node).
 * `reply` is herd's and valid during the callback only: copy what you
 * keep, or take reply->data (then set it to NULL; free it with free()). */
typedef void (*herd_call_cb)(void *data, int rc, herd_reply_t *reply);
/* herd_node_call without blocking, from anywhere on the loop thread (code
 * outside processes, a loop callback, a process): `cb(cbdata, ...)` runs
 * once on the loop thread, never inside this call (nor inside the handler
 * that replies). The errors herd_node_call gives at once are returned at
 * once, and cb is never called then: HERD_ENOPROC (a local pid not alive),
 * HERD_ENOTCONN, HERD_EFULL, HERD_ETOOBIG, HERD_ENOMEM, HERD_EINVAL (cb
 * NULL). The blocking herd_node_call shares its start and completion. */
int herd_node_call_async(herd_node_t *node, herd_pid_t to, const void *data, size_t len,
                         uint32_t timeout_ms, herd_call_cb cb, void *cbdata);

/* ---- one message to many pids --------------------------------------------------- */

/* Cast `data` to each of the `n` pids of `to`, here or on other nodes, as
 * herd_node_cast (or herd_cast) would one by one, from `from`: HERD_PID_NONE
 * for code outside processes (receivers see serial 0 of this node, as from
 * herd_node_cast), or a pid of this node (herd_cast_many gives the
 * process's own). The pids of this node get it at once. For each other node
 * the bytes travel once, with the list of that node's pids listed here, in
 * one message between the nodes (several only when the list is too long
 * for one: PROTOCOL.md, cast_many), in the order of that node's stream
 * (after what was sent to it before); the receiving node casts it to each
 * of them. A pid listed twice gets it twice.
 *
 * Returns how many pids it was sent to: a local mailbox took it, or the
 * message for a remote pid's node was queued. Casts are at most once: a
 * remote pid that is dead or whose mailbox is full when the message
 * arrives misses it, counted there in herd_cluster_stats' msgs_dropped,
 * as for herd_node_cast. Skipped, and not counted: a local pid not alive
 * or whose mailbox is full; a pid of a node that is down, left or unknown
 * (or of any other node without a cluster), of another start of its node
 * than the current one, or of a node with too much unacknowledged
 * (HERD_EFULL for herd_node_cast), or whose message found memory short. A
 * node declared down withdraws what was queued for it, as it does casts.
 * Errors, nothing sent: HERD_EINVAL (`to`
 * NULL with n > 0, `data` NULL with len > 0, n over INT_MAX, `from` neither
 * none nor of this node), HERD_ETOOBIG (len over the node's max_message, or
 * a pid of another node is listed and len leaves no room in one message
 * between nodes for the list's first pid: just under 1 MiB, as for
 * herd_node_cast), HERD_ENOMEM. */
int herd_node_cast_many(herd_node_t *node, herd_pid_t from, const herd_pid_t *to, size_t n,
                        const void *data, size_t len);
/* herd_node_cast_many from a process (in its callbacks): from = herd_self(self). */
int herd_cast_many(herd_proc_t *self, const herd_pid_t *to, size_t n, const void *data,
                   size_t len);

/* One pid's answer to herd_node_multi_call_async. */
typedef struct herd_multi_reply {
    herd_pid_t pid;
    /* 0 (data holds the reply), the callee's own error (herd_reply's
     * status, with its data), or the call's: what herd_node_call_async
     * returns at once or gives its callback as `rc` (HERD_ENOPROC,
     * HERD_ENOTCONN, HERD_ETIMEDOUT, HERD_EUNCERTAIN, HERD_EFULL,
     * HERD_ETOOBIG, HERD_ENOMEM, HERD_ESHUTDOWN) */
    int status;
    uint8_t *data; /* herd's: valid during the callback only */
    size_t len;
} herd_multi_reply_t;
/* `replies[i]` answers the i-th pid of the list given; all of it is herd's
 * and valid during the callback only. */
typedef void (*herd_multi_call_cb)(void *cbdata, const herd_multi_reply_t *replies, size_t n);
/* Call each of the `n` pids of `to` with `data`, as herd_node_call_async
 * each (from code outside processes: serial 0 of this node), all at once,
 * and gather the answers: cb(cbdata, replies, n) runs once, on the loop
 * thread, never inside this call (with n 0 too: at the loop's next turn),
 * when every pid answered or failed, and so at the latest about timeout_ms
 * after this call (every call has that timeout; one not answered by then
 * has HERD_ETIMEDOUT). A pid that cannot be called fails at once (a local
 * one not alive: HERD_ENOPROC; of a node down or unknown: HERD_ENOTCONN),
 * a dead pid on another node when its node answers so or by the timeout:
 * none holds the others up. When the node is freed first, cb runs inside
 * herd_node_free (it must not use the node then) and the pids whose
 * answer had not been gathered yet have HERD_ESHUTDOWN. Returns 0, or an
 * error and cb is never called: HERD_EINVAL (cb NULL, timeout_ms 0, `to`
 * NULL with n > 0, `data` NULL with len > 0), HERD_ETOOBIG (len over the
 * node's max_message), HERD_ENOMEM. */
int herd_node_multi_call_async(herd_node_t *node, const herd_pid_t *to, size_t n,
                               const void *data, size_t len, uint32_t timeout_ms,
                               herd_multi_call_cb cb, void *cbdata);

/* ---- timers --------------------------------------------------------------------- */

/* Deliver `data` to `to` as a HERD_MSG_INFO (ref = *timer) after `ms`, and with
 * herd_send_interval every `ms` after that until cancelled or `to` exits.
 * Timer messages are accepted when armed and do not count against the
 * mailbox limit when they fire. */
int herd_send_after(herd_node_t *node, herd_pid_t to, uint64_t ms, const void *data,
                    size_t len, uint64_t *timer);
int herd_send_interval(herd_node_t *node, herd_pid_t to, uint64_t ms, const void *data,
                       size_t len, uint64_t *timer);
/* HERD_ENOENT when the timer already fired (one-shot) or was cancelled. */
int herd_cancel_timer(herd_node_t *node, uint64_t timer);

/* ---- monitors and links --------------------------------------------------------- */

/* Watch `target`, here or on another node: when it exits, self gets a
 * HERD_MSG_DOWN with *ref, from = target and status = its reason. Monitoring a
 * pid that is not alive delivers DOWN with HERD_REASON_NOPROC at once; when
 * the target's node is declared down (or cannot be reached), the reason is
 * HERD_REASON_NOCONNECTION. */
int herd_monitor(herd_proc_t *self, herd_pid_t target, uint64_t *ref);
/* HERD_ENOENT when there is no such monitor (fired or removed). */
int herd_demonitor(herd_proc_t *self, uint64_t ref);

/* Link self and `other` (on this node; HERD_EINVAL for a remote pid in this
 * version: monitor it instead): when either exits with a reason other than normal,
 * the other exits too, or gets a HERD_MSG_EXIT if it traps exits.
 * HERD_ENOPROC when `other` is not alive. */
int herd_link(herd_proc_t *self, herd_pid_t other);
int herd_unlink(herd_proc_t *self, herd_pid_t other);

/* ---- local supervision ---------------------------------------------------------- */

typedef enum herd_restart {
    HERD_RESTART_PERMANENT, /* always restarted */
    HERD_RESTART_TRANSIENT, /* restarted unless it exits normally or by shutdown */
    HERD_RESTART_TEMPORARY, /* never restarted */
} herd_restart_t;

typedef struct herd_child_spec {
    const herd_behaviour_t *behaviour;
    const void *arg; /* copied: each restart's init sees the same bytes */
    size_t arg_len;
    herd_restart_t restart;
} herd_child_spec_t;

typedef struct herd_child_info {
    uint64_t id;          /* stable across restarts */
    herd_pid_t pid;       /* the current copy; HERD_PID_NONE while waiting to restart */
    uint32_t restarts;    /* within the current window */
    herd_restart_t restart;
} herd_child_info_t;

typedef struct herd_sup_config {
    uint32_t max_restarts;   /* per child within window_ms; 0: 3 */
    uint32_t window_ms;      /* 0: 5000 */
    uint32_t backoff_ms;     /* delay before the 2nd restart in a window; 0: 10 */
    uint32_t backoff_max_ms; /* cap of the doubling delay; 0: 1000 */
    /* Told when a child restarts (new pid), and when one is gone for good:
     * given up after too many restarts (HERD_REASON_MAX_RESTARTS), or ended and
     * not restarted by its strategy (its exit reason). Either may be NULL. */
    void (*on_child_restart)(void *data, uint64_t id, herd_pid_t old_pid, herd_pid_t pid);
    void (*on_child_gone)(void *data, uint64_t id, herd_pid_t last_pid, int reason);
    void *data;
} herd_sup_config_t;

/* Start a dynamic supervisor process on `node`. When the supervisor exits, its
 * children are shut down. */
int herd_sup_start(herd_node_t *node, const herd_sup_config_t *cfg, herd_pid_t *sup);
/* Start a child under a local supervisor `sup` on `node`. Its init runs before
 * this returns, and its failure is returned (nothing is kept). A restart gives
 * the child a new pid under the same id. Errors also: HERD_ENOPROC (no such
 * supervisor), HERD_EINVAL. */
int herd_sup_start_child(herd_node_t *node, herd_pid_t sup, const herd_child_spec_t *spec,
                         uint64_t *id, herd_pid_t *pid);
/* Stop a child (terminate with shutdown) and forget it. HERD_ENOENT if `id`
 * is not a child of `sup`. */
int herd_sup_terminate_child(herd_node_t *node, herd_pid_t sup, uint64_t id);
/* Fills up to `cap` entries in start order and returns the number of children. */
int herd_sup_which_children(herd_node_t *node, herd_pid_t sup, herd_child_info_t *out,
                            size_t cap);

/* ---- state transfer (handoff, conflicts) ------------------------------------------ */

/* Serialize the state of a live process of this node with its behaviour's
 * handoff_out (outside its own handlers: not while one of them runs). *out is
 * malloc'ed. Errors: HERD_ENOPROC, HERD_EINVAL (no handoff_out, or called
 * from the process itself), or handoff_out's own failure. */
int herd_state_out(herd_node_t *node, herd_pid_t pid, uint8_t **out, size_t *len);
/* Send `state` to `winner` (here or on another node) to be merged by its
 * behaviour's resolve_conflict, as a HERD_MSG_MERGE in its mailbox order. A
 * winner without resolve_conflict ignores it. */
int herd_merge_into(herd_node_t *node, herd_pid_t winner, const uint8_t *state, size_t len);
/* ---- the cluster ------------------------------------------------------------------ */

/* Member states as herd_cluster_members reports them (membership.h). */
typedef enum herd_member_state {
    HERD_MEMBER_UP,
    HERD_MEMBER_SUSPECT,
    HERD_MEMBER_DRAINING,
    HERD_MEMBER_DOWN,
    HERD_MEMBER_LEFT,
    HERD_MEMBER_ABSENT, /* in change events: not (or no longer) a member */
} herd_member_state_t;

typedef struct herd_cluster_config {
    const char *cluster;        /* cluster name; NULL: "herd" */
    const char *listen;         /* nanomsg URL, e.g. tcp://127.0.0.1:7001 */
    const char *const *seeds;   /* addresses of nodes to join through */
    size_t seed_count;
    const void *secret;         /* the cluster secret, at least 16 bytes */
    size_t secret_len;
    uint32_t weight;            /* ring points; 0: 128 */
    uint32_t heartbeat_ms;      /* 0: 200 */
    uint32_t suspect_ms;        /* 0: 3 heartbeats */
    uint32_t down_ms;           /* 0: 5 heartbeats */
    uint32_t forget_ms;         /* 0: 60000 */
} herd_cluster_config_t;

/* Told on the loop thread after every change of a member's state; `gone` is
 * nonzero when the member left the table (1 restarted, 2 forgotten). The ring
 * is already rebuilt when this runs. */
typedef void (*herd_member_cb)(void *data, const char *name, uint64_t incarnation,
                               herd_member_state_t old_state, herd_member_state_t new_state,
                               int gone);

/* Join `node` to a cluster: listen, say HELLO to the seeds, heartbeat, detect
 * failures. The node's name and incarnation are its identity in the cluster.
 * Errors: HERD_EINVAL (bad config or address), HERD_ERANGE (secret under 16
 * bytes), HERD_EEXIST (already started), HERD_ENOMEM. */
int herd_cluster_start(herd_node_t *node, const herd_cluster_config_t *cfg);
/* Graceful leave: tell every member, stop heartbeating. */
int herd_cluster_leave(herd_node_t *node);
/* Drain: leave the ring (processes move off), stay a member. */
int herd_cluster_set_draining(herd_node_t *node, int on);
/* Replace the seeds (copied, all or nothing), for seeds found at run time
 * (herdd --discover): a new one is said HELLO at the next tick, one gone
 * from the list is asked no more; members already joined stay. A node that
 * started without seeds does not check its name again (it was the first of
 * its cluster). Errors: HERD_ENOENT (not in a cluster), HERD_EINVAL (NULL
 * list with a count; a NULL, empty or over-255-byte address), HERD_ENOMEM. */
int herd_cluster_set_seeds(herd_node_t *node, const char *const *seeds, size_t count);
int herd_cluster_on_change(herd_node_t *node, herd_member_cb cb, void *data);
/* Remove a hook added with herd_cluster_on_change (same cb and data). */
void herd_cluster_off_change(herd_node_t *node, herd_member_cb cb, void *data);

typedef struct herd_member_info {
    char name[65];
    char address[256];
    uint64_t incarnation;
    herd_member_state_t state;
    uint32_t weight;
    uint64_t last_heard_ms; /* ms since last heard; 0 for this node */
} herd_member_info_t;

/* Fills up to `cap` members in name order (this node included); returns the
 * member count, or HERD_ENOENT when the node is not in a cluster. */
int herd_cluster_members(herd_node_t *node, herd_member_info_t *out, size_t cap);
/* Member `id` (herd_node_id_of its name; this node too). HERD_ENOENT when it
 * is not a member, or the node is in no cluster. */
int herd_cluster_member(herd_node_t *node, uint64_t id, herd_member_info_t *out);
/* Visit the members in name order (this node included); stop when fn
 * returns nonzero (positive) and return that; 0 once all are visited;
 * HERD_ENOENT when the node is in no cluster. fn must not change the
 * membership. */
typedef int (*herd_member_fn)(void *data, const herd_member_info_t *m);
int herd_cluster_foreach_member(herd_node_t *node, herd_member_fn fn, void *data);
const char *herd_member_state_name(herd_member_state_t s);

/* Nodes this one heard of from other members (up or down there) but has not
 * heard from itself yet: members it cannot count on knowing of. */
size_t herd_cluster_unconfirmed(herd_node_t *node);
/* The current ring (valid until the next membership change), or NULL. */
const struct herd_ring *herd_cluster_ring(herd_node_t *node);
/* A number that changes whenever the ring or any member's state, weight or
 * services change: a layer above caches what it derives from the members
 * (e.g. one ring per service) and rebuilds it when this moves. 0 when the
 * node is in no cluster. */
uint64_t herd_cluster_generation(herd_node_t *node);

/* ---- what each member provides ---------------------------------------------------- */

/* Each member announces, with its membership (PROTOCOL.md), a list of the
 * services it provides: names the layers above give meaning to (the
 * supervisor's service names), opaque to the runtime. At most
 * HERD_MEMBER_SERVICES_MAX names, each 1..HERD_MEMBER_SERVICE_NAME_MAX bytes,
 * no two equal; a frame whose list breaks these rules is dropped and counted
 * (reject reason "services"). */
#define HERD_MEMBER_SERVICES_MAX 32u
#define HERD_MEMBER_SERVICE_NAME_MAX 63u

typedef struct herd_service_list {
    uint32_t count;
    char names[HERD_MEMBER_SERVICES_MAX][HERD_MEMBER_SERVICE_NAME_MAX + 1];
} herd_service_list_t;

/* Replace what this node announces (copied); members learn it with its
 * next heartbeat, which is sent at the next tick, and a change is an event
 * for herd_cluster_on_change hooks here and on every member (old and new
 * state equal). Errors: HERD_ENOENT (no cluster), HERD_EINVAL (NULL names
 * with a count, an empty or oversize name, a name twice), HERD_ERANGE (more
 * than HERD_MEMBER_SERVICES_MAX). */
int herd_cluster_set_services(herd_node_t *node, const char *const *names, size_t count);
/* Whether member `id` (this node too) announced `service`: 1 or 0;
 * HERD_ENOENT when it is not a member or the node is in no cluster. */
int herd_cluster_member_provides(herd_node_t *node, uint64_t id, const char *service);
/* Copy member `id`'s list into *out (in the order it announced them).
 * HERD_ENOENT as above. */
int herd_cluster_member_services(herd_node_t *node, uint64_t id, herd_service_list_t *out);

/* Room for the reasons a frame is rejected for (herd_cluster_reject_name
 * names those there are, 1 up; more may come). */
#define HERD_CLUSTER_REJECT_MAX 32

typedef struct herd_cluster_stats {
    uint64_t frames_in, frames_out, bytes_in, bytes_out, dropped_out;
    /* process messages from other nodes dropped on arrival: their process
     * is gone or its mailbox full (casts are at most once) */
    uint64_t msgs_dropped;
    /* replies to callers this node could not reach, sent on through the node
     * that forwarded the call here (a moved process's old node) */
    uint64_t replies_relayed;
    /* requests (calls, casts, sends, monitors) queued for a member when it
     * was declared down (or left, or restarted), withdrawn from its stream:
     * never delivered, even if it comes back */
    uint64_t withdrawn;
    /* calls of this node (and forwarded ones) ended by a lost member:
     * not_applied with HERD_ENOTCONN (the request never left: it will never
     * be applied), uncertain with HERD_EUNCERTAIN (it had left: it may or
     * may not have been applied) */
    uint64_t calls_not_applied, calls_uncertain;
    /* calls from other nodes dropped unapplied on arrival: expired were
     * sent after their caller's deadline (the caller gave up: a resend after
     * a partition healed); duplicate were a second copy of a call still
     * being answered here */
    uint64_t calls_expired, calls_duplicate;
    uint64_t rejected[HERD_CLUSTER_REJECT_MAX]; /* by reason; names: herd_cluster_reject_name */
    uint32_t peers;
    /* fault injection (herd_cluster_block): frames dropped to and from
     * blocked peers, and how many peers are blocked now */
    uint64_t blocked_in, blocked_out;
    uint32_t blocked_peers;
    /* frames (and remote messages) refused on the way out as over the 1 MiB
     * frame limit: nanomsg drops such a frame on receipt, closing the
     * connection without telling herd, so the receiver cannot count it */
    uint64_t oversize_out;
    /* frames out that carried only an acknowledgement of a peer's messages
     * (nothing else was queued for it when the loop flushed) */
    uint64_t ack_frames_out;
    /* periods of 5 s with seeds to join and no authenticated frame from
     * anyone: seeds down, or a different cookie or cluster name (logged) */
    uint64_t seeds_silent;
    /* herd_node_cast_many's messages between nodes (one per node and list
     * of its pids, PROTOCOL.md cast_many): queued for other nodes, and
     * taken from them (a refused one is a `body` reject instead; each
     * target it misses on arrival is counted in msgs_dropped) */
    uint64_t multicasts_out, multicasts_in;
    /* membership's prompt heartbeats (membership.h): sent at once to a name
     * newly heard of in gossip, and deferred to the periodic heartbeat as
     * over the bound of 16 per heartbeat period */
    uint64_t prompt_beats, prompt_beats_deferred;
    /* membership's effects lost for want of memory: heartbeats not sent and
     * members' changes the layers above never heard of (the member table and
     * the ring changed all the same); logged as errors */
    uint64_t membership_effects_lost;
} herd_cluster_stats_t;
int herd_cluster_stats(herd_node_t *node, herd_cluster_stats_t *out);

/* The guard of the cluster port against running out of file descriptors
 * (a node on the nanomsg transport listening on tcp://): the inbound
 * connections it found and kept, its limits (from the open-files limit,
 * per remote address and in all), and the connections it shut down as over
 * them. Counted as it works; read at `ringctl stats` (connections.*). */
typedef struct herd_conn_stats {
    uint32_t inbound;        /* inbound connections kept at the last scan */
    uint32_t limit_per_addr; /* limits at the last scan */
    uint32_t limit_total;
    uint32_t fds_open;       /* the process's open descriptors at the last check */
    uint64_t fd_limit;       /* its soft RLIMIT_NOFILE */
    uint64_t shed_per_addr;  /* shut: over the limit of their remote address */
    uint64_t shed_total;     /* shut: over the limit in all */
    uint64_t shed_missed;    /* to shed, but closed (or replaced) before it */
    uint64_t checks, scans;  /* cheap counts of descriptors, and full scans */
} herd_conn_stats_t;
/* HERD_ENOENT when the node is in no cluster or its port is not guarded
 * (ipc://, a simulated transport, no /proc). */
int herd_cluster_conn_stats(herd_node_t *node, herd_conn_stats_t *out);
/* "mac", "short", ...; NULL past the last reason. */
const char *herd_cluster_reject_name(int reason);

/* Streams between the same layer on two nodes (app 1-255): reliable and in
 * order between a pair of node starts, batched with the node's other
 * messages. The handler runs on the loop thread for each message from node
 * (id, incarnation); a NULL cb removes it. send: HERD_ENOTCONN when that node
 * is not a member or left; to a member that is down the message is queued
 * (bounded, HERD_EFULL past it), for it may come back from a partition.
 * Each message carries a check sum of its body: one that arrives altered
 * (a member's bug between its layer and the wire) is refused (a `body`
 * reject) and the handler is called with msg NULL and len 0: what that
 * node sent is missing from the stream, and the layer repairs it. */
typedef void (*herd_app_cb)(void *data, uint64_t node, uint64_t incarnation,
                            const uint8_t *msg, size_t len);
int herd_cluster_on_app(herd_node_t *node, uint8_t app, herd_app_cb cb, void *data);
int herd_cluster_send_app(herd_node_t *node, uint64_t to_node, uint8_t app, const void *msg,
                          size_t len);
/* The reliable stream to node `id`: what was sent and acknowledged. */
typedef struct herd_stream_stats {
    uint64_t sent_seq;    /* highest sequence number sent */
    uint64_t queued_seq;  /* highest sequence number given to a message (maybe unsent) */
    uint64_t acked_seq;   /* everything up to it acknowledged */
    uint64_t pending;     /* messages waiting for an acknowledgement */
    uint64_t pending_bytes;
    uint64_t resent, received, duplicates;
} herd_stream_stats_t;
/* HERD_ENOENT when there is no stream to that node (yet). */
int herd_cluster_stream_stats(herd_node_t *node, uint64_t id, herd_stream_stats_t *out);

/* This node's id and a member's id: herd_node_id_of(name). The current
 * incarnation of member `id`, or 0 when it is not a member. */
uint64_t herd_cluster_member_incarnation(herd_node_t *node, uint64_t id);

/* Whether this node may use its name in the cluster (membership.h): a node
 * with seeds checks, before it admits any member, that no live start of its
 * name is in the cluster. */
typedef enum herd_identity {
    HERD_IDENTITY_UNCHECKED, /* no member has answered yet */
    HERD_IDENTITY_PROBING,   /* another start of the name is said alive: asking it */
    HERD_IDENTITY_CONFIRMED, /* joined with the name checked, or started without seeds */
    HERD_IDENTITY_REFUSED,   /* a live start of the name answered: this node joins
                              * nothing (herdd exits 1) */
} herd_identity_t;
/* This node's herd_identity_t, or HERD_ENOENT when it is in no cluster.
 * REFUSED: *holder_inc and holder_address[cap] (either may be NULL) get the
 * live start's incarnation and address; PROBING: the asked one's. */
int herd_cluster_identity(herd_node_t *node, uint64_t *holder_inc, char *holder_address,
                          size_t cap);

/* Fault injection, for tests and for people rehearsing a netsplit: while
 * `on`, every frame to and from node `peer_id` is dropped at this node, both
 * directions, before any protocol sees it (counted in herd_cluster_stats as
 * blocked_in / blocked_out). The failure detector then declares the peer
 * down as it would across a real partition; `on` = 0 heals, and the peer
 * comes back up with its next heartbeat. Blocking a peer that is not a
 * member (yet) is allowed: it is matched by id. Idempotent. Errors:
 * HERD_ENOENT (not in a cluster), HERD_EINVAL (0 or this node's own id),
 * HERD_ENOMEM. */
int herd_cluster_block(herd_node_t *node, uint64_t peer_id, int on);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
