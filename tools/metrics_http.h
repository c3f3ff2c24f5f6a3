/*
 * metrics_http.h - one page over HTTP on a libuv loop: GET (or HEAD)
 * /metrics answers the page its callback makes; any other path is 404, any
 * other method 405. libmicrohttpd does the HTTP, with no thread of its own:
 * its epoll descriptor is watched by a uv_poll and its timeouts by a
 * uv_timer, and MHD_run runs on the loop thread, so the page's callback
 * reads the node's state where every other reader does, without a lock.
 */
#ifndef HERD_METRICS_HTTP_H
#define HERD_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct metrics_http metrics_http_t;

/* The page, on the loop thread: 0 with *body malloc'ed (*len bytes; the
 * server frees it), or a negative HERD_E* code (the client gets a 500). */
typedef int (*metrics_http_page_fn)(void *data, char **body, size_t *len);

/* What the server did, counted as it works. */
typedef struct metrics_http_stats {
    uint64_t served, not_found, not_allowed, failed;
} metrics_http_stats_t;

/* Serve on ip:port (host byte order). 0, or HERD_EIO (cannot bind: why in
 * err, cap bytes) or HERD_ENOMEM. */
int metrics_http_start(uv_loop_t *loop, uint32_t ip, uint16_t port, metrics_http_page_fn page,
                       void *data, metrics_http_t **out, char *err, size_t cap);
void metrics_http_stats(const metrics_http_t *h, metrics_http_stats_t *out);
/* Stop serving and free; runs the loop until its handles are closed. NULL
 * is fine. */
void metrics_http_free(metrics_http_t *h);

#endif
