/*
 * control.c - the control socket server (see control.h).
 *
 * The socket is a raw REP socket (AF_SP_RAW): nanomsg hands over each
 * request with its backtrace (the SP header naming the client's pipe and
 * request id), and an answer sent with that header reaches that client. So
 * requests need not be answered in order: a deferred one (a `call` waiting
 * for its callee) keeps its header in the pending list while the socket
 * goes on serving `stats` and the rest.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "herd_error.h"
#include "log.h"

/* What the socket reads: larger than a request may be, so that a request
 * over CONTROL_MAX_REQUEST is answered with an error instead of dropped by
 * nanomsg unanswered (which happens only above this). */
#define CONTROL_MAX_RECEIVE (16u << 20)
#define CONTROL_ID_MAX 64
#define CONTROL_HDR_MAX 256     /* a backtrace: 4 bytes a hop, 8 hops at most */
#define CONTROL_PENDING_MAX 256 /* deferred requests waiting at once */
#define CONTROL_BATCH 64        /* requests served per loop iteration, at most */
#define CONTROL_BUDGET_NS 20000000ull /* and for about this long: the loop has more to do */

typedef struct control_answer {
    char id[CONTROL_ID_MAX + 1];
    char *text; /* owned */
} control_answer_t;

/* A request being served, or deferred and waiting for control_finish. */
typedef struct control_req {
    uint64_t token;
    char id[CONTROL_ID_MAX + 1];
    int has_id;
    unsigned char hdr[CONTROL_HDR_MAX]; /* the request's control data (backtrace) */
    size_t hdrlen;
    control_answer_cb cb; /* NULL: the answer goes to the socket with hdr */
    void *cb_data;
    /* control_finish called before the command returned CONTROL_DEFERRED */
    int early;
    int early_rc;
    json_t *early_result; /* owned */
    char early_msg[512];
    struct control_req *next;
} control_req_t;

struct control {
    uv_loop_t *loop;
    int sock;
    uv_poll_t poll;
    int closed;
    const control_command_t *cmds;
    size_t count;
    void *data;
    control_answer_t cache[CONTROL_CACHE];
    size_t cache_next;
    control_req_t *current; /* the request a command runs for, or NULL */
    int deferring;          /* the current command called control_defer */
    control_req_t *pending; /* owned: deferred requests */
    size_t pending_count;
    uint64_t next_token;
};

static const char *control_cached(const control_t *c, const char *id)
{
    for (size_t i = 0; i < CONTROL_CACHE; i++)
        if (c->cache[i].text && strcmp(c->cache[i].id, id) == 0)
            return c->cache[i].text;
    return NULL;
}

static void control_remember(control_t *c, const char *id, const char *text)
{
    control_answer_t *a = &c->cache[c->cache_next];
    c->cache_next = (c->cache_next + 1) % CONTROL_CACHE;
    free(a->text);
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->text = strdup(text);
}

/* The error answer; a service's own error (herd_reply_error) is "EAPP"
 * with its code as "app_code". */
static json_t *control_error(const char *id, int code, const char *message)
{
    json_t *e = json_pack("{s:s?, s:b, s:s, s:s}", "id", id, "ok", 0, "error",
                          code == 0 ? "EINVAL" : herd_err_name(code), "message", message);
    int app = herd_app_error_code(code);
    if (e && app)
        json_object_set_new(e, "app_code", json_integer(app));
    return e;
}

static json_t *control_ok(const char *id, json_t *result)
{
    return json_pack("{s:s?, s:b, s:o}", "id", id, "ok", 1, "result",
                     result ? result : json_null());
}

/* Send `text` to the client whose request carried r's header (or to the
 * callback of a request given to control_serve). */
static void control_answer(control_t *c, const control_req_t *r, const char *text)
{
    if (r->cb) {
        r->cb(r->cb_data, text, strlen(text));
        return;
    }
    struct nn_iovec iov = {(void *)text, strlen(text)};
    struct nn_msghdr hdr = {0};
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = (void *)r->hdr;
    hdr.msg_controllen = r->hdrlen;
    if (nn_sendmsg(c->sock, &hdr, NN_DONTWAIT) < 0)
        herd_log(HERD_LOG_WARN, "control", "cannot answer: %s", nn_strerror(nn_errno()));
}

/* Answer r with `ans` (taken) and remember it under r's id. */
static void control_send_answer(control_t *c, const control_req_t *r, json_t *ans)
{
    char *text = json_dumps(ans, JSON_COMPACT);
    if (text) {
        if (r->has_id)
            control_remember(c, r->id, text);
        control_answer(c, r, text);
    }
    free(text);
    json_decref(ans);
}

static void control_req_free(control_req_t *r)
{
    if (r) {
        json_decref(r->early_result);
        free(r);
    }
}

static control_req_t *control_pending_take(control_t *c, uint64_t token)
{
    for (control_req_t **p = &c->pending; *p; p = &(*p)->next) {
        if ((*p)->token == token) {
            control_req_t *r = *p;
            *p = r->next;
            c->pending_count--;
            return r;
        }
    }
    return NULL;
}

static control_req_t *control_pending_by_id(control_t *c, const char *id)
{
    for (control_req_t *r = c->pending; r; r = r->next)
        if (r->has_id && strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

/* Run one request; returns the answer document, or NULL when the command
 * deferred it (r then waits in the pending list). */
static json_t *control_dispatch(control_t *c, control_req_t *r, json_t *req)
{
    const char *id = r->has_id ? r->id : NULL;
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    json_t *args = json_object_get(req, "args");
    if (cmd == NULL)
        return control_error(id, HERD_EINVAL, "request without \"cmd\"");
    for (size_t i = 0; i < c->count; i++) {
        if (strcmp(c->cmds[i].name, cmd) != 0)
            continue;
        json_t *result = NULL;
        char msg[512] = "";
        int rc = c->cmds[i].fn(c->data, args, &result, msg, sizeof(msg));
        if (rc == CONTROL_DEFERRED && c->deferring && r->early) { /* answered already */
            rc = r->early_rc;
            result = r->early_result;
            r->early_result = NULL;
            snprintf(msg, sizeof(msg), "%s", r->early_msg);
        } else if (rc == CONTROL_DEFERRED && c->deferring) {
            return NULL; /* control_finish answers */
        } else if (rc == CONTROL_DEFERRED) {
            rc = HERD_EINVAL; /* a command that deferred without control_defer */
        }
        if (rc)
            return control_error(id, rc, msg[0] ? msg : herd_strerror(rc));
        return control_ok(id, result);
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "unknown command '%.64s'", cmd);
    return control_error(id, HERD_EINVAL, msg);
}

/* Serve one request; takes r. */
static void control_handle(control_t *c, control_req_t *r, const char *buf, size_t len)
{
    if (len > CONTROL_MAX_REQUEST) { /* not parsed: refused, and said so */
        char msg[128];
        snprintf(msg, sizeof(msg), "request of %zu bytes is over the control socket's "
                 "limit of %u bytes", len, CONTROL_MAX_REQUEST);
        control_send_answer(c, r, control_error(NULL, HERD_ETOOBIG, msg));
        control_req_free(r);
        return;
    }
    json_error_t err;
    json_t *req = json_loadb(buf, len, 0, &err);
    const char *id = req ? json_string_value(json_object_get(req, "id")) : NULL;
    r->has_id = id && strlen(id) <= CONTROL_ID_MAX;
    snprintf(r->id, sizeof(r->id), "%s", r->has_id ? id : "");
    const char *cached = r->has_id ? control_cached(c, r->id) : NULL;
    control_req_t *waiting = r->has_id ? control_pending_by_id(c, r->id) : NULL;
    if (cached) { /* a resent request: the same answer, applied once */
        control_answer(c, r, cached);
    } else if (waiting) { /* resent while deferred: answer where it came from last */
        memcpy(waiting->hdr, r->hdr, r->hdrlen);
        waiting->hdrlen = r->hdrlen;
        waiting->cb = r->cb;
        waiting->cb_data = r->cb_data;
    } else if (req == NULL || !json_is_object(req)) {
        control_send_answer(c, r, control_error(NULL, HERD_EINVAL, "request is not a JSON object"));
    } else {
        r->token = ++c->next_token;
        c->current = r;
        c->deferring = 0;
        json_t *ans = control_dispatch(c, r, req);
        c->current = NULL;
        c->deferring = 0;
        json_decref(r->early_result); /* finished early by a command that then failed */
        r->early_result = NULL;
        r->early = 0;
        if (ans == NULL) { /* deferred: control_finish answers */
            r->next = c->pending;
            c->pending = r;
            c->pending_count++;
            r = NULL;
        } else {
            control_send_answer(c, r, ans);
        }
    }
    json_decref(req);
    control_req_free(r);
}

uint64_t control_defer(control_t *c)
{
    if (c == NULL || c->current == NULL)
        return 0; /* not inside a command: control_finish ignores token 0 */
    c->deferring = 1;
    return c->current->token;
}

void control_finish(control_t *c, uint64_t token, int rc, json_t *result, const char *msg)
{
    if (c == NULL || token == 0) {
        json_decref(result);
        return;
    }
    control_req_t *r = c->current;
    if (r && c->deferring && token == r->token && !r->early) {
        r->early = 1; /* still inside the command: control_dispatch answers */
        r->early_rc = rc;
        r->early_result = rc ? (json_decref(result), NULL) : result;
        snprintf(r->early_msg, sizeof(r->early_msg), "%s", msg ? msg : "");
        return;
    }
    r = control_pending_take(c, token);
    if (r == NULL) {
        json_decref(result);
        return;
    }
    const char *id = r->has_id ? r->id : NULL;
    json_t *ans = rc ? control_error(id, rc, msg && msg[0] ? msg : herd_strerror(rc))
                     : control_ok(id, result);
    if (rc)
        json_decref(result);
    control_send_answer(c, r, ans);
    control_req_free(r);
}

/* Serve one request that came in (takes r), unless too many wait already. */
static void control_take(control_t *c, control_req_t *r, const char *buf, size_t len)
{
    if (c->pending_count >= CONTROL_PENDING_MAX) {
        control_send_answer(c, r, control_error(NULL, HERD_EBUSY,
                                                "too many requests are waiting"));
        control_req_free(r);
        return;
    }
    control_handle(c, r, buf, len);
}

/* Receive one request with its header; 0, or -1 when none is waiting. */
static int control_recv(control_t *c, control_req_t *r, void **body, int *len)
{
    struct nn_iovec iov = {body, NN_MSG};
    struct nn_msghdr hdr = {0};
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = r->hdr;
    hdr.msg_controllen = sizeof(r->hdr);
    *len = nn_recvmsg(c->sock, &hdr, NN_DONTWAIT);
    if (*len < 0)
        return -1;
    r->hdrlen = sizeof(r->hdr);
    return 0;
}

static void control_on_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    control_t *c = h->data;
    uint64_t start = uv_hrtime();
    for (int i = 0; i < CONTROL_BATCH && uv_hrtime() - start < CONTROL_BUDGET_NS; i++) {
        control_req_t *r = calloc(1, sizeof(*r));
        void *body = NULL;
        int n;
        if (r == NULL || control_recv(c, r, &body, &n) != 0) {
            free(r);
            return;
        }
        control_take(c, r, body, (size_t)n);
        nn_freemsg(body);
    }
}

void control_serve(control_t *c, const char *buf, size_t len, control_answer_cb cb, void *data)
{
    control_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL) { /* said, as the socket says a failed answer */
        herd_log(HERD_LOG_WARN, "control", "cannot serve a request: out of memory");
        return;
    }
    r->cb = cb;
    r->cb_data = data;
    control_take(c, r, buf, len);
}

/* Bind with a umask that keeps an ipc socket file private (0600) from its
 * first moment, then make sure of it with chmod. */
static int control_bind(int sock, const char *address)
{
    mode_t old = umask(077);
    int rc = nn_bind(sock, address);
    umask(old);
    if (rc < 0)
        return HERD_EINVAL;
    if (strncmp(address, "ipc://", 6) == 0 && chmod(address + 6, 0600) != 0)
        return HERD_EIO;
    return 0;
}

int control_start(uv_loop_t *loop, const char *address, const control_command_t *cmds,
                  size_t count, void *data, control_t **out)
{
    control_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HERD_ENOMEM;
    int fd, maxsize = CONTROL_MAX_RECEIVE;
    size_t sz = sizeof(fd);
    c->sock = nn_socket(AF_SP_RAW, NN_REP);
    int rc = c->sock < 0 ? HERD_EIO : control_bind(c->sock, address);
    if (rc == 0 && (nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize,
                                  sizeof(maxsize)) != 0 ||
                    nn_getsockopt(c->sock, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) != 0))
        rc = HERD_EIO;
    if (rc) {
        herd_log(HERD_LOG_ERROR, "control", "cannot serve at %s: %s", address,
                 nn_strerror(nn_errno()));
        if (c->sock >= 0)
            nn_close(c->sock);
        free(c);
        return rc;
    }
    c->loop = loop;
    c->cmds = cmds;
    c->count = count;
    c->data = data;
    uv_poll_init(loop, &c->poll, fd);
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, control_on_readable);
    *out = c;
    return 0;
}

static void control_on_closed(uv_handle_t *h)
{
    control_t *c = h->data;
    c->closed = 1;
}

void control_stop(control_t *c)
{
    if (c == NULL)
        return;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, control_on_closed);
    while (!c->closed)
        uv_run(c->loop, UV_RUN_NOWAIT);
    nn_close(c->sock);
    while (c->pending) { /* dropped unanswered: the node stops */
        control_req_t *r = c->pending;
        c->pending = r->next;
        control_req_free(r);
    }
    for (size_t i = 0; i < CONTROL_CACHE; i++)
        free(c->cache[i].text);
    free(c);
}
