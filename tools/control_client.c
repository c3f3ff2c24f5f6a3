/*
 * control_client.c - see control_client.h.
 */
#include "control_client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "herd_error.h"

static void control_new_id(char *out, size_t cap)
{
    static uint64_t run, counter;
    if (run == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        run = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    snprintf(out, cap, "%016llx-%llu", (unsigned long long)run,
             (unsigned long long)++counter);
}

static void control_unreachable(control_reply_t *r, const char *address, const char *why)
{
    r->outcome = CONTROL_UNREACHABLE;
    snprintf(r->message, sizeof(r->message), "node at %s does not answer (%s)", address, why);
}

/* An ipc:// address is looked at first: nanomsg's connect is asynchronous,
 * so a missing socket, one the user may not open, or one nobody serves would
 * all end as the same timeout. 0 when the socket accepts a connection (or
 * the address is not ipc://); -1 after filling r with the reason. */
static int control_ipc_check(const char *address, control_reply_t *r)
{
    if (strncmp(address, "ipc://", 6) != 0)
        return 0;
    const char *path = address + 6;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    const char *why = NULL;
    if (strlen(path) >= sizeof(sa.sun_path))
        why = "the path is too long for a unix socket";
    else if (stat(path, &st) != 0)
        why = errno == ENOENT ? "no such socket: is the node running, and is this its "
                                "control address?"
                              : strerror(errno);
    else if (!S_ISSOCK(st.st_mode))
        why = "not a socket";
    if (why == NULL) {
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (rc != 0 && (err == EACCES || err == EPERM))
            why = "permission denied: the socket belongs to another user (it is 0600)";
        else if (rc != 0 && err == ECONNREFUSED)
            why = "nobody serves this socket: its node stopped";
    }
    if (why == NULL)
        return 0;
    r->outcome = CONTROL_UNREACHABLE;
    snprintf(r->message, sizeof(r->message), "cannot reach the node at %s: %s", address, why);
    return -1;
}

static void control_read_answer(control_reply_t *r, const char *buf, size_t len)
{
    json_error_t err;
    json_t *ans = json_loadb(buf, len, 0, &err);
    if (ans == NULL || !json_is_object(ans)) {
        r->outcome = CONTROL_REFUSED;
        snprintf(r->code, sizeof(r->code), "EBADFRAME");
        snprintf(r->message, sizeof(r->message), "the node's answer is not JSON");
    } else if (json_is_true(json_object_get(ans, "ok"))) {
        r->outcome = CONTROL_OK;
        r->result = json_incref(json_object_get(ans, "result"));
    } else {
        const char *code = json_string_value(json_object_get(ans, "error"));
        const char *msg = json_string_value(json_object_get(ans, "message"));
        json_t *app = json_object_get(ans, "app_code");
        r->outcome = CONTROL_REFUSED;
        r->app_code = json_is_integer(app) && json_integer_value(app) >= 1 &&
                              json_integer_value(app) <= HERD_APP_ERROR_MAX
                          ? (int)json_integer_value(app)
                          : 0;
        snprintf(r->code, sizeof(r->code), "%s", code ? code : "EINVAL");
        snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "refused");
    }
    json_decref(ans);
}

void control_request(const char *address, const char *cmd, json_t *args, int timeout_ms,
                     control_reply_t *reply)
{
    memset(reply, 0, sizeof(*reply));
    char id[64];
    control_new_id(id, sizeof(id));
    json_t *req = json_pack("{s:s, s:s, s:O?}", "id", id, "cmd", cmd, "args", args);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (text && strlen(text) > CONTROL_MAX_REQUEST_BYTES) {
        reply->outcome = CONTROL_REFUSED;
        snprintf(reply->code, sizeof(reply->code), "ETOOBIG");
        snprintf(reply->message, sizeof(reply->message),
                 "the request is %zu bytes, over the node's limit of %u; nothing was sent",
                 strlen(text), CONTROL_MAX_REQUEST_BYTES);
        free(text);
        return;
    }
    if (control_ipc_check(address, reply) != 0) {
        free(text);
        return;
    }
    int sock = nn_socket(AF_SP, NN_REQ), maxsize = CONTROL_ANSWER_MAX;
    if (text == NULL || sock < 0) {
        control_unreachable(reply, address, "out of resources");
    } else if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout_ms, sizeof(int)) ||
               nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize, sizeof(int)) ||
               nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof(int)) ||
               nn_connect(sock, address) < 0) {
        control_unreachable(reply, address, nn_strerror(nn_errno()));
    } else if (nn_send(sock, text, strlen(text), 0) < 0) {
        control_unreachable(reply, address, nn_strerror(nn_errno()));
    } else {
        reply->sent = 1;
        void *buf = NULL;
        int n = nn_recv(sock, &buf, NN_MSG, 0);
        if (n < 0)
            control_unreachable(reply, address, nn_strerror(nn_errno()));
        else
            control_read_answer(reply, buf, (size_t)n);
        if (buf)
            nn_freemsg(buf);
    }
    if (sock >= 0)
        nn_close(sock);
    free(text);
}

/* Whether a page answer is well formed: {"items": [...], "cursor": C?}. */
static int control_page_ok(json_t *page)
{
    json_t *cursor = json_object_get(page, "cursor");
    return json_is_array(json_object_get(page, "items")) &&
           (cursor == NULL || json_is_string(cursor));
}

void control_request_list(const char *address, const char *cmd, json_t *args, int timeout_ms,
                          control_reply_t *reply)
{
    json_t *all = json_array();
    json_t *page_args = args ? json_deep_copy(args) : json_object();
    json_object_set_new(page_args, "limit", json_integer(CONTROL_LIST_LIMIT));
    for (;;) {
        control_request(address, cmd, page_args, timeout_ms, reply);
        if (reply->outcome != CONTROL_OK)
            break;
        json_t *page = reply->result;
        if (!control_page_ok(page)) {
            json_decref(page);
            reply->result = NULL;
            reply->outcome = CONTROL_REFUSED;
            snprintf(reply->code, sizeof(reply->code), "EBADFRAME");
            snprintf(reply->message, sizeof(reply->message), "the node's page is malformed");
            break;
        }
        json_array_extend(all, json_object_get(page, "items"));
        json_t *cursor = json_object_get(page, "cursor");
        if (cursor == NULL) {
            json_decref(page);
            reply->result = all;
            all = NULL;
            break;
        }
        json_object_set(page_args, "cursor", cursor);
        json_decref(page);
        reply->result = NULL;
    }
    json_decref(page_args);
    json_decref(all);
}
