/*
 * control.c - the control socket server (see control.h).
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

#define CONTROL_MAX_REQUEST (64u << 10)
/* What the socket reads: larger than a request may be, so that a request
 * over CONTROL_MAX_REQUEST is answered with an error instead of dropped by
 * nanomsg unanswered (which happens only above this). */
#define CONTROL_MAX_RECEIVE (16u << 20)
#define CONTROL_ID_MAX 64

typedef struct control_answer {
    char id[CONTROL_ID_MAX + 1];
    char *text; /* owned */
} control_answer_t;

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
    /* the request a command deferred (control_defer) */
    char later_id[CONTROL_ID_MAX + 1];
    int later_has_id, deferring, waiting;
    uint64_t later_token;
    /* control_finish called before the command returned CONTROL_DEFERRED */
    int early;
    int early_rc;
    json_t *early_result;
    char early_msg[512];
};

void control_default_address(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "ipc:///tmp/herd-%s.ctl", name);
}

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

static json_t *control_error(const char *id, int code, const char *message)
{
    return json_pack("{s:s?, s:b, s:s, s:s}", "id", id, "ok", 0, "error",
                     code == 0 ? "EINVAL" : herd_err_name(code), "message", message);
}

/* Run one request; returns the answer document. */
static json_t *control_dispatch(control_t *c, json_t *req, const char *id)
{
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
        if (rc == CONTROL_DEFERRED && c->deferring && c->early) { /* answered already */
            c->early = 0;
            rc = c->early_rc;
            result = c->early_result;
            snprintf(msg, sizeof(msg), "%s", c->early_msg);
        } else if (rc == CONTROL_DEFERRED && c->deferring) {
            return NULL; /* control_finish answers */
        }
        if (rc)
            return control_error(id, rc, msg[0] ? msg : herd_strerror(rc));
        return json_pack("{s:s?, s:b, s:o}", "id", id, "ok", 1, "result",
                         result ? result : json_null());
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "unknown command '%.64s'", cmd);
    return control_error(id, HERD_EINVAL, msg);
}

static void control_answer(control_t *c, const char *text)
{
    if (nn_send(c->sock, text, strlen(text), NN_DONTWAIT) < 0)
        herd_log(HERD_LOG_WARN, "control", "cannot answer: %s", nn_strerror(nn_errno()));
}

static void control_send_answer(control_t *c, const char *id, json_t *ans);

static void control_handle(control_t *c, const char *buf, size_t len)
{
    if (len > CONTROL_MAX_REQUEST) { /* not parsed: refused, and said so */
        char msg[128];
        snprintf(msg, sizeof(msg), "request of %zu bytes is over the control socket's "
                 "limit of %u bytes", len, CONTROL_MAX_REQUEST);
        control_send_answer(c, NULL, control_error(NULL, HERD_ETOOBIG, msg));
        return;
    }
    json_error_t err;
    json_t *req = json_loadb(buf, len, 0, &err);
    const char *id = req ? json_string_value(json_object_get(req, "id")) : NULL;
    const char *cached = id ? control_cached(c, id) : NULL;
    if (cached) { /* a resent request: the same answer, applied once */
        control_answer(c, cached);
        json_decref(req);
        return;
    }
    c->deferring = 0;
    json_t *ans = req && json_is_object(req)
                      ? control_dispatch(c, req, id)
                      : control_error(NULL, HERD_EINVAL, "request is not a JSON object");
    c->deferring = 0; /* a token finished from now on must be the one waiting */
    if (c->early) {   /* finished early by a command that then failed anyway */
        c->early = 0;
        json_decref(c->early_result);
        c->early_result = NULL;
    }
    if (ans == NULL) { /* deferred: no new request until it is answered */
        c->later_has_id = id && strlen(id) <= CONTROL_ID_MAX;
        snprintf(c->later_id, sizeof(c->later_id), "%s", c->later_has_id ? id : "");
        c->waiting = 1;
        uv_poll_stop(&c->poll);
        json_decref(req);
        return;
    }
    control_send_answer(c, id, ans);
    json_decref(req);
}

uint64_t control_defer(control_t *c)
{
    c->deferring = 1;
    return ++c->later_token;
}

static void control_on_readable(uv_poll_t *h, int status, int events);

void control_finish(control_t *c, uint64_t token, int rc, json_t *result, const char *msg)
{
    if (c && c->deferring && !c->waiting && token == c->later_token && !c->early) {
        c->early = 1; /* still inside the command: control_dispatch answers */
        c->early_rc = rc;
        c->early_result = rc ? (json_decref(result), NULL) : result;
        snprintf(c->early_msg, sizeof(c->early_msg), "%s", msg ? msg : "");
        return;
    }
    if (c == NULL || !c->waiting || token != c->later_token) {
        json_decref(result);
        return;
    }
    const char *id = c->later_has_id ? c->later_id : NULL;
    json_t *ans = rc ? control_error(id, rc, msg && msg[0] ? msg : herd_strerror(rc))
                     : json_pack("{s:s?, s:b, s:o}", "id", id, "ok", 1, "result",
                                 result ? result : json_null());
    if (rc)
        json_decref(result);
    c->waiting = 0;
    control_send_answer(c, id, ans);
    if (!c->closed)
        uv_poll_start(&c->poll, UV_READABLE, control_on_readable);
}

static void control_send_answer(control_t *c, const char *id, json_t *ans)
{
    char *text = json_dumps(ans, JSON_COMPACT);
    if (text) {
        if (id && strlen(id) <= CONTROL_ID_MAX)
            control_remember(c, id, text);
        control_answer(c, text);
    }
    free(text);
    json_decref(ans);
}

static void control_on_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    control_t *c = h->data;
    for (int i = 0; i < 64 && !c->waiting; i++) {
        void *buf = NULL;
        int n = nn_recv(c->sock, &buf, NN_MSG, NN_DONTWAIT);
        if (n < 0)
            return;
        control_handle(c, buf, (size_t)n);
        nn_freemsg(buf);
    }
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
    c->sock = nn_socket(AF_SP, NN_REP);
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
    for (size_t i = 0; i < CONTROL_CACHE; i++)
        free(c->cache[i].text);
    free(c);
}
