/*
 * control.h - a node's control socket: what ringctl talks to.
 *
 * Requests and answers are JSON documents over nanomsg REQ/REP:
 *   request  {"id": "RUN-COUNTER", "cmd": "members", "args": {...}}
 *   answer   {"id": ..., "ok": true, "result": ...}
 *         or {"id": ..., "ok": false, "error": "ENOENT", "message": "..."}
 * The server's socket is a raw REP socket, so requests are served as they
 * come: one that waits for another node (a `call`) does not hold up the
 * others. nanomsg's REQ resends a request on its own (after a reconnect, or
 * after NN_REQ_RESEND_IVL), so the server remembers the answers to the last
 * CONTROL_CACHE ids and answers a repeated id from there: a resent `incr` or
 * `drain` is never applied twice (nor started twice while it waits). The
 * default address is a local ipc:// path created with 0600 permissions.
 */
#ifndef HERD_CONTROL_H
#define HERD_CONTROL_H

#include "herd_posix.h" /* first: before any system header */

#include <jansson.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONTROL_CACHE 256

/* A command: on success set *result (a new reference) and return 0; on
 * failure return a negative HERD_E* code and write a message into msg. */
typedef int (*control_fn)(void *data, json_t *args, json_t **result, char *msg, size_t cap);

typedef struct control_command {
    const char *name;
    control_fn fn;
} control_command_t;

typedef struct control control_t;

/* A command that answers later (it waits for another node) calls
 * control_defer, keeps the token and returns CONTROL_DEFERRED; the answer
 * goes with control_finish. Other requests are served meanwhile; at most
 * 256 wait at once (then a request is refused with HERD_EBUSY). A token is
 * never 0 (0: control_defer called outside a command). */
#define CONTROL_DEFERRED 1
uint64_t control_defer(control_t *c);
/* Answer the deferred request `token` as a command would have (rc 0 with
 * `result`, a reference that is taken over, or an error with `msg`). A token
 * of no waiting request is ignored (result freed). */
void control_finish(control_t *c, uint64_t token, int rc, json_t *result, const char *msg);

/* The largest request served: a larger one is answered HERD_ETOOBIG
 * ("request of N bytes is over the control socket's limit") unparsed. */
#define CONTROL_MAX_REQUEST (64u << 10)

/* Where an answer goes for a request given to control_serve: `text` is the
 * answer document (len bytes and a NUL), valid during the call. */
typedef void (*control_answer_cb)(void *data, const char *text, size_t len);
/* Serve one request `buf` (len bytes) as if it came from the socket: the
 * same parsing, id cache, commands and deferral, its answer handed to `cb`
 * instead of sent (during this call, or later by control_finish for a
 * deferred command; exactly once, unless control_stop drops it waiting). For
 * tests and fuzzing; runs on c's loop thread. */
void control_serve(control_t *c, const char *buf, size_t len, control_answer_cb cb, void *data);

/* Serve `cmds` at `address` on `loop`. Errors: HERD_EINVAL (address), HERD_EIO. */
int control_start(uv_loop_t *loop, const char *address, const control_command_t *cmds,
                  size_t count, void *data, control_t **out);
/* Stop serving and free; runs the loop briefly to close its handle. */
void control_stop(control_t *c);

#ifdef __cplusplus
}
#endif

#endif
