/*
 * metrics_http.c - libmicrohttpd driven by a libuv loop (metrics_http.h).
 *
 * How it works
 * ------------
 * The daemon runs in MHD's "external polling" mode with epoll
 * (MHD_USE_EPOLL, no MHD_USE_INTERNAL_POLLING_THREAD): MHD keeps its
 * listening socket and connections in one epoll set of its own, whose
 * descriptor becomes readable when any of them has work. A uv_poll watches
 * that descriptor; when it fires, MHD_run does the work (accepts, reads,
 * calls on_request, writes) without blocking. MHD must also run within the
 * timeout MHD_get_timeout gives after each run (connection timeouts, data
 * it has buffered), which a one-shot uv_timer does; with no timeout asked
 * for, the timer still runs it every second, so nothing can stall unseen.
 * Everything, on_request included, thus runs on the loop thread.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_runtime.h"
#include "log.h"
#include "metrics_http.h"

#define HTTP_CONN_LIMIT 32      /* scrapers at once; more are refused by MHD */
#define HTTP_CONN_TIMEOUT_S 10  /* an idle or slow client is closed after it */
#define HTTP_IDLE_RUN_MS 1000   /* MHD runs at least this often */

struct metrics_http {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int closed;
    metrics_http_page_fn page;
    void *data;
    metrics_http_stats_t stats;
    char last_error[256]; /* MHD's last log line: why a start failed */
};

static const char not_found_body[] = "not found: herdd serves /metrics only\n";
static const char not_allowed_body[] = "method not allowed: GET or HEAD /metrics\n";
static const char failed_body[] = "the metrics could not be made (see herdd's log)\n";

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    metrics_http_t *h = cls;
    vsnprintf(h->last_error, sizeof(h->last_error), fmt, ap);
    size_t n = strlen(h->last_error);
    while (n && h->last_error[n - 1] == '\n')
        h->last_error[--n] = '\0';
    herd_log(HERD_LOG_WARN, "metrics", "http: %s", h->last_error);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body,
                               size_t len, enum MHD_ResponseMemoryMode mode,
                               const char *content_type, metrics_http_t *h)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free((void *)body);
        h->stats.failed++;
        herd_log(HERD_LOG_ERROR, "metrics", "http: no memory for a response; connection closed");
        return MHD_NO;
    }
    int ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES;
    if (ok && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES;
    enum MHD_Result rc = ok ? MHD_queue_response(c, status, r) : MHD_NO;
    MHD_destroy_response(r);
    if (rc != MHD_YES) {
        h->stats.failed++;
        herd_log(HERD_LOG_WARN, "metrics", "http: a response could not be queued; connection "
                 "closed");
    }
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text,
                                    metrics_http_t *h)
{
    return respond(c, status, text, strlen(text), MHD_RESPMEM_PERSISTENT,
                   "text/plain; charset=utf-8", h);
}

/* MHD calls this first when the headers are in (*state NULL), then with
 * the body in pieces (to be consumed), then once more to have a response. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    metrics_http_t *h = cls;
    static int seen;
    if (*state == NULL) {
        *state = &seen;
        return MHD_YES;
    }
    if (*upload_size) { /* a body nobody reads: consumed, then answered 405 or 404 */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        h->stats.not_allowed++;
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed_body, h);
    }
    if (strcmp(url, "/metrics") != 0) {
        h->stats.not_found++;
        return respond_text(c, MHD_HTTP_NOT_FOUND, not_found_body, h);
    }
    char *body = NULL;
    size_t len = 0;
    int rc = h->page(h->data, &body, &len);
    if (rc != 0) {
        h->stats.failed++;
        herd_log(HERD_LOG_ERROR, "metrics", "the metrics page failed: %s", herd_strerror(rc));
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, failed_body, h);
    }
    h->stats.served++;
    return respond(c, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE,
                   "text/plain; version=0.0.4; charset=utf-8", h);
}

static void on_timer(uv_timer_t *t);

/* After every run: the next one within MHD's timeout. */
static void run_mhd(metrics_http_t *h)
{
    MHD_run(h->mhd);
    MHD_UNSIGNED_LONG_LONG ms = HTTP_IDLE_RUN_MS;
    if (MHD_get_timeout(h->mhd, &ms) != MHD_YES || ms > HTTP_IDLE_RUN_MS)
        ms = HTTP_IDLE_RUN_MS;
    uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)events;
    metrics_http_t *h = p->data;
    if (status < 0)
        herd_log(HERD_LOG_ERROR, "metrics", "http: polling MHD's descriptor: %s",
                 uv_strerror(status));
    run_mhd(h);
}

int metrics_http_start(uv_loop_t *loop, uint32_t ip, uint16_t port, metrics_http_page_fn page,
                       void *data, metrics_http_t **out, char *err, size_t cap)
{
    metrics_http_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return snprintf(err, cap, "out of memory"), HERD_ENOMEM;
    h->loop = loop;
    h->page = page;
    h->data = data;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(ip)};
    h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, port, NULL, NULL, on_request, h,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, /* first: MHD asks */
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_LIMIT,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
                              MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (info == NULL) {
        snprintf(err, cap, "%s", h->last_error[0] ? h->last_error : "cannot start the server");
        if (h->mhd)
            MHD_stop_daemon(h->mhd);
        free(h);
        return HERD_EIO;
    }
    uv_poll_init(loop, &h->poll, info->epoll_fd);
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    uv_timer_start(&h->timer, on_timer, 0, 0);
    *out = h;
    return 0;
}

void metrics_http_stats(const metrics_http_t *h, metrics_http_stats_t *out)
{
    *out = h->stats;
}

static void on_closed(uv_handle_t *handle)
{
    ((metrics_http_t *)handle->data)->closed++;
}

void metrics_http_free(metrics_http_t *h)
{
    if (h == NULL)
        return;
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->timer, on_closed);
    while (h->closed < 2)
        uv_run(h->loop, UV_RUN_NOWAIT);
    MHD_stop_daemon(h->mhd); /* after the poll let go of its epoll descriptor */
    free(h);
}
