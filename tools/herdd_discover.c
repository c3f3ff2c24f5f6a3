/*
 * herdd_discover.c - herdd --discover on the node's loop (herdd_discover.h):
 * a timer that resolves the name (uv_getaddrinfo) or lists the range, the
 * seed list built from the answer (discover_spec.c) and handed on when it
 * changed.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_runtime.h"
#include "herdd_discover.h"
#include "log.h"

struct herdd_discover {
    uv_loop_t *loop;
    discover_spec_t spec;
    uint32_t interval_ms;
    /* this node: its listen address, or any local one (0.0.0.0, *) */
    int self_known, self_any;
    uint32_t self_ip;
    uint16_t self_port;
    herdd_discover_cb cb;
    void *data;
    uv_timer_t timer;
    uv_getaddrinfo_t req;
    int resolving, timer_closed, tried, stopping;
    seed_list_t seeds; /* owned: the list last handed on */
    herdd_discover_stats_t stats;
};

/* What the node listens on, from tcp://HOST:PORT; unknown for anything else
 * (ipc://, a host name): the runtime still drops its own frames then. */
static void self_from_listen(herdd_discover_t *dc, const char *listen)
{
    char err[160], buf[40];
    if (strncmp(listen, "tcp://", 6) != 0)
        return;
    const char *hp = listen + 6;
    if (strncmp(hp, "*:", 2) == 0) { /* nanomsg's "every interface" */
        snprintf(buf, sizeof(buf), "0.0.0.0%.20s", hp + 1);
        hp = buf;
    }
    dc->self_known = discover_parse_ipv4_port("--listen", hp, &dc->self_ip, &dc->self_port, err,
                                              sizeof(err)) == 0;
    dc->self_any = dc->self_known && dc->self_ip == 0;
}

/* The local IPv4 addresses (host byte order) for a node listening on all of
 * them; NULL (and *n 0) when getifaddrs fails, which is logged. */
static uint32_t *local_addrs(size_t *n)
{
    struct ifaddrs *ifs, *i;
    *n = 0;
    if (getifaddrs(&ifs) != 0) {
        herd_log(HERD_LOG_WARN, "discover", "cannot list this host's addresses (getifaddrs): "
                 "a seed may be this node itself (harmless: its own frames are dropped)");
        return NULL;
    }
    size_t cap = 0;
    for (i = ifs; i; i = i->ifa_next)
        cap += i->ifa_addr && i->ifa_addr->sa_family == AF_INET;
    uint32_t *a = malloc((cap ? cap : 1) * sizeof(*a));
    for (i = ifs; a && i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
            a[(*n)++] = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
    freeifaddrs(ifs);
    return a;
}

typedef struct self_check {
    const herdd_discover_t *dc;
    const uint32_t *local;
    size_t nlocal;
} self_check_t;

static int is_self(void *data, uint32_t ip, uint16_t port)
{
    const self_check_t *s = data;
    if (!s->dc->self_known || port != s->dc->self_port)
        return 0;
    if (!s->dc->self_any)
        return ip == s->dc->self_ip;
    if ((ip >> 24) == 127) /* all of 127/8 is this host's loopback */
        return 1;
    for (size_t i = 0; i < s->nlocal; i++)
        if (s->local[i] == ip)
            return 1;
    return 0;
}

static void log_change(void *data, const char *seed, int added)
{
    const herdd_discover_t *dc = data;
    herd_log(HERD_LOG_INFO, "discover", "%s: %s %s", dc->spec.kind == DISCOVER_DNS ? "dns" : "range",
             added ? "new seed" : "seed gone, dropped:", seed);
}

/* The addresses found: the new list, handed on if it changed (and after
 * the first attempt whatever it holds). */
static void found(herdd_discover_t *dc, const uint32_t *addrs, size_t n)
{
    size_t nlocal = 0;
    uint32_t *local = dc->self_any ? local_addrs(&nlocal) : NULL;
    self_check_t sc = {dc, local, nlocal};
    seed_list_t now;
    int rc = seed_list_build(addrs, n, dc->spec.port, is_self, &sc, &now);
    free(local);
    if (rc != 0) {
        dc->stats.failures++;
        herd_log(HERD_LOG_ERROR, "discover", "out of memory for %zu seeds; the list before "
                 "(%zu seeds) is kept, tried again in %u ms", n, dc->seeds.count, dc->interval_ms);
        return;
    }
    dc->stats.resolves++;
    size_t changes = seed_list_changes(&dc->seeds, &now, log_change, dc);
    dc->stats.changes += changes;
    if (changes == 0 && dc->tried) {
        seed_list_free(&now);
        return;
    }
    seed_list_free(&dc->seeds);
    dc->seeds = now;
    dc->stats.seeds = now.count;
    dc->tried = 1;
    dc->cb(dc->data, &dc->seeds);
}

static void failed(herdd_discover_t *dc, int status)
{
    dc->stats.failures++;
    herd_log(HERD_LOG_WARN, "discover", "%s does not resolve (%s); trying again in %u ms, "
             "keeping the %zu seeds found before (attempt %llu failed)", dc->spec.name,
             uv_strerror(status), dc->interval_ms, dc->seeds.count,
             (unsigned long long)(dc->stats.failures + dc->stats.resolves));
    if (!dc->tried) {
        dc->tried = 1;
        dc->cb(dc->data, &dc->seeds);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    herdd_discover_t *dc = req->data;
    dc->resolving = 0;
    if (dc->stopping) {
        uv_freeaddrinfo(res);
        return;
    }
    if (status < 0) {
        failed(dc, status);
        return;
    }
    size_t n = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        n += a->ai_family == AF_INET;
    uint32_t *addrs = malloc((n ? n : 1) * sizeof(*addrs));
    n = 0;
    for (struct addrinfo *a = res; addrs && a; a = a->ai_next)
        if (a->ai_family == AF_INET)
            addrs[n++] = ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr);
    uv_freeaddrinfo(res);
    if (addrs == NULL)
        failed(dc, UV_ENOMEM);
    else
        found(dc, addrs, n);
    free(addrs);
}

static void on_tick(uv_timer_t *t)
{
    herdd_discover_t *dc = t->data;
    if (dc->spec.kind == DISCOVER_RANGE) {
        size_t n;
        uint32_t *addrs = discover_range_addrs(&dc->spec, &n);
        if (addrs == NULL) {
            failed(dc, UV_ENOMEM);
            uv_timer_start(&dc->timer, on_tick, dc->interval_ms, 0); /* again, later */
            return;
        }
        found(dc, addrs, n);
        free(addrs);
        return;
    }
    if (dc->resolving) {
        herd_log(HERD_LOG_INFO, "discover", "%s: the resolution before is still under way",
                 dc->spec.name);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(dc->loop, &dc->req, on_resolved, dc->spec.name, NULL, &hints);
    if (rc < 0)
        failed(dc, rc);
    else
        dc->resolving = 1;
}

int herdd_discover_start(uv_loop_t *loop, const discover_spec_t *spec, uint32_t interval_ms,
                         const char *listen, herdd_discover_cb cb, void *data,
                         herdd_discover_t **out)
{
    if (loop == NULL || spec == NULL || cb == NULL || listen == NULL || interval_ms == 0)
        return HERD_EINVAL;
    herdd_discover_t *dc = calloc(1, sizeof(*dc));
    if (dc == NULL)
        return HERD_ENOMEM;
    dc->loop = loop;
    dc->spec = *spec;
    dc->interval_ms = interval_ms;
    dc->cb = cb;
    dc->data = data;
    self_from_listen(dc, listen);
    uv_timer_init(loop, &dc->timer);
    dc->timer.data = dc->req.data = dc;
    /* a range is listed once; a name is resolved again every interval */
    uv_timer_start(&dc->timer, on_tick, 0, spec->kind == DISCOVER_DNS ? interval_ms : 0);
    *out = dc;
    return 0;
}

int herdd_discover_tried(const herdd_discover_t *dc)
{
    return dc->tried;
}

void herdd_discover_stats(const herdd_discover_t *dc, herdd_discover_stats_t *out)
{
    *out = dc->stats;
}

static void on_timer_closed(uv_handle_t *h)
{
    ((herdd_discover_t *)h->data)->timer_closed = 1;
}

void herdd_discover_free(herdd_discover_t *dc)
{
    if (dc == NULL)
        return;
    dc->stopping = 1;
    uv_close((uv_handle_t *)&dc->timer, on_timer_closed);
    if (dc->resolving)
        uv_cancel((uv_req_t *)&dc->req); /* fails once it runs: then it is waited for */
    while (!dc->timer_closed || dc->resolving)
        uv_run(dc->loop, UV_RUN_ONCE);
    seed_list_free(&dc->seeds);
    free(dc);
}
