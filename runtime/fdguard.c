/*
 * fdguard.c - the I/O side of the cluster port's guard (fdguard.h): counts
 * and scans the process's descriptors, sheds what connguard.c decides.
 */
#define _GNU_SOURCE /* getdents64, dup3, struct tcp_info */
#include "fdguard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cluster.h"
#include "connguard.h"
#include "log.h"

/* Descriptors listed at most per check: far above any limit it raises to. */
#define FDGUARD_MAX_FDS (1u << 22)

struct fdguard {
    herd_node_t *node;
    uv_timer_t timer;
    int timer_closed;
    uint16_t port;
    uint64_t active_ms;
    int dir_fd;   /* /proc/self/fd, open while the guard runs */
    int spare_fd; /* ours: a connection to shed is dup3'ed here, checked, shut */
    uint64_t last_scan_ms;
    size_t last_count; /* descriptors at the last scan */
    int shed_last;     /* the last scan shed: scan again soon */
    int *fds;          /* the descriptors of the last check */
    size_t nfds, fds_cap;
    connguard_conn_t *conns, *prev; /* this scan's; the last one's, by inode */
    size_t nconns, nprev, conns_cap, prev_cap;
    herd_conn_stats_t st;
    herd_log_limit_t log_per_addr, log_total, log_limit, log_error;
};

/* ---- counting descriptors ------------------------------------------------------- */

static int fdguard_push_fd(fdguard_t *g, int fd)
{
    if (g->nfds == g->fds_cap) {
        size_t cap = g->fds_cap ? 2 * g->fds_cap : 256;
        int *fds = realloc(g->fds, cap * sizeof(*fds));
        if (fds == NULL)
            return HERD_ENOMEM;
        g->fds = fds;
        g->fds_cap = cap;
    }
    g->fds[g->nfds++] = fd;
    return 0;
}

/* The descriptor a /proc/self/fd entry names, or -1 ("." and ".."). */
static int fd_of_name(const char *name)
{
    long v = 0;
    if (*name == '\0')
        return -1;
    for (const char *p = name; *p; p++) {
        if (*p < '0' || *p > '9' || v > (long)FDGUARD_MAX_FDS * 16)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return (int)v;
}

/* List the process's open descriptors into g->fds (those of the guard
 * itself left out). Reads the directory it keeps open: no new descriptor. */
static int fdguard_list(fdguard_t *g)
{
    char buf[8192] __attribute__((aligned(8)));
    g->nfds = 0;
    if (lseek(g->dir_fd, 0, SEEK_SET) < 0)
        return HERD_EIO;
    while (g->nfds < FDGUARD_MAX_FDS) {
        ssize_t got = getdents64(g->dir_fd, buf, sizeof(buf));
        if (got < 0)
            return HERD_EIO;
        if (got == 0)
            return 0;
        for (ssize_t off = 0; off < got;) {
            const struct dirent64 *e = (const struct dirent64 *)(buf + off);
            off += e->d_reclen;
            int fd = fd_of_name(e->d_name);
            if (fd >= 0 && fd != g->dir_fd && fd != g->spare_fd && fdguard_push_fd(g, fd))
                return HERD_ENOMEM;
        }
    }
    return 0;
}

/* ---- finding the inbound connections -------------------------------------------- */

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -1;
}

/* When the last scan first saw socket `inode`; `now` for a new one. */
static uint64_t fdguard_first_seen(const fdguard_t *g, uint64_t inode, uint64_t now)
{
    size_t lo = 0, hi = g->nprev;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->prev[mid].inode == inode)
            return g->prev[mid].first_seen_ms;
        if (g->prev[mid].inode < inode)
            lo = mid + 1;
        else
            hi = mid;
    }
    return now;
}

/* 1 with *c filled when `fd` is an established TCP connection bound to the
 * cluster port with a peer (one nanomsg accepted); 0 for anything else. */
static int fdguard_probe(const fdguard_t *g, int fd, uint64_t now, connguard_conn_t *c)
{
    struct stat st;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || sockaddr_port(&ss) != g->port)
        return 0;
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0 ||
        ti.tcpi_state != TCP_ESTABLISHED)
        return 0; /* the listening socket, or one closing */
    len = sizeof(ss);
    memset(c, 0, sizeof(*c));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
        connguard_addr_from((const struct sockaddr *)&ss, len, &c->remote) != 0)
        return 0;
    c->inode = (uint64_t)st.st_ino;
    c->fd = fd;
    c->idle_ms = ti.tcpi_last_data_recv;
    c->first_seen_ms = fdguard_first_seen(g, c->inode, now);
    return 1;
}

static int fdguard_room(fdguard_t *g, size_t n)
{
    if (n <= g->conns_cap)
        return 0;
    connguard_conn_t *c = realloc(g->conns, n * sizeof(*c));
    if (c == NULL)
        return HERD_ENOMEM;
    g->conns = c;
    g->conns_cap = n;
    return 0;
}

/* ---- shedding ------------------------------------------------------------------- */

/* Shut connection `c` down unless its descriptor no longer holds it: 1 when
 * shut, 0 when it was gone. */
static int fdguard_shut(fdguard_t *g, const connguard_conn_t *c)
{
    struct stat st;
    if (dup3(c->fd, g->spare_fd, O_CLOEXEC) < 0)
        return 0; /* closed meanwhile */
    if (fstat(g->spare_fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        (uint64_t)st.st_ino != c->inode)
        return 0; /* the number holds another file now */
    return shutdown(g->spare_fd, SHUT_RDWR) == 0;
}

static void fdguard_log_shed(fdguard_t *g, herd_log_limit_t *lim, const char *what,
                             uint32_t limit, size_t n, const connguard_addr_t *from,
                             uint64_t so_far)
{
    char addr[64];
    herd_log_limited(lim, herd_node_now(g->node), HERD_LOG_WARN, "fdguard",
                     "shut down %zu inbound connections on cluster port %u (from %s and "
                     "perhaps others): over %u %s; %llu so far; open files %u of %llu",
                     n, g->port, connguard_addr_text(from, addr, sizeof(addr)), limit, what,
                     (unsigned long long)so_far, g->st.fds_open,
                     (unsigned long long)g->st.fd_limit);
}

/* Shut what connguard_decide marked, count and log it. */
static void fdguard_shed(fdguard_t *g, const connguard_limits_t *lim)
{
    size_t shed[3] = {0}, missed = 0;
    const connguard_addr_t *first[3] = {NULL};
    for (size_t i = 0; i < g->nconns; i++) {
        connguard_conn_t *c = &g->conns[i];
        if (c->verdict == CONNGUARD_KEEP)
            continue;
        if (!fdguard_shut(g, c)) {
            missed++;
            continue;
        }
        shed[c->verdict]++;
        if (first[c->verdict] == NULL)
            first[c->verdict] = &c->remote;
    }
    dup3(g->dir_fd, g->spare_fd, O_CLOEXEC); /* let go of the last socket shut */
    g->st.shed_per_addr += shed[CONNGUARD_SHED_PER_ADDR];
    g->st.shed_total += shed[CONNGUARD_SHED_TOTAL];
    g->st.shed_missed += missed;
    if (shed[CONNGUARD_SHED_PER_ADDR])
        fdguard_log_shed(g, &g->log_per_addr, "per remote address", lim->per_addr,
                         shed[CONNGUARD_SHED_PER_ADDR], first[CONNGUARD_SHED_PER_ADDR],
                         g->st.shed_per_addr);
    if (shed[CONNGUARD_SHED_TOTAL])
        fdguard_log_shed(g, &g->log_total, "in all", lim->total, shed[CONNGUARD_SHED_TOTAL],
                         first[CONNGUARD_SHED_TOTAL], g->st.shed_total);
    g->shed_last = shed[1] + shed[2] + missed > 0;
}

/* ---- scanning ------------------------------------------------------------------- */

static uint64_t fdguard_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > FDGUARD_MAX_FDS)
        return FDGUARD_MAX_FDS;
    return (uint64_t)rl.rlim_cur;
}

static int conn_by_inode(const void *x, const void *y)
{
    const connguard_conn_t *a = x, *b = y;
    return a->inode < b->inode ? -1 : a->inode > b->inode;
}

/* Keep this scan's connections (by inode) for the next one's ages. */
static void fdguard_remember(fdguard_t *g)
{
    qsort(g->conns, g->nconns, sizeof(*g->conns), conn_by_inode);
    connguard_conn_t *t = g->prev;
    size_t cap = g->prev_cap;
    g->prev = g->conns;
    g->prev_cap = g->conns_cap;
    g->nprev = g->nconns;
    g->conns = t;
    g->conns_cap = cap;
    g->nconns = 0;
}

static void fdguard_scan(fdguard_t *g, uint64_t now)
{
    g->st.scans++;
    g->last_scan_ms = now;
    g->last_count = g->nfds;
    if (fdguard_room(g, g->nfds) != 0) {
        herd_log_limited(&g->log_error, now, HERD_LOG_WARN, "fdguard",
                         "out of memory for a scan of %zu descriptors; cluster port %u "
                         "unguarded for now", g->nfds, g->port);
        return;
    }
    g->nconns = 0;
    for (size_t i = 0; i < g->nfds; i++)
        g->nconns += (size_t)fdguard_probe(g, g->fds[i], now, &g->conns[g->nconns]);
    int members = g->node->cluster ? herd_cluster_members(g->node, NULL, 0) : 1;
    size_t others = g->nfds + 2 - g->nconns; /* the guard's own two included */
    connguard_limits_t lim;
    connguard_limits_for(g->st.fd_limit, others, members > 0 ? (uint32_t)members : 1,
                         g->active_ms, &lim);
    connguard_result_t r;
    connguard_decide(g->conns, g->nconns, &lim, &r);
    g->st.inbound = (uint32_t)r.kept;
    g->st.limit_per_addr = lim.per_addr;
    g->st.limit_total = lim.total;
    fdguard_shed(g, &lim);
    fdguard_remember(g);
}

/* Count the descriptors; scan when the count moved, a second passed or the
 * last scan shed. */
static void fdguard_check(fdguard_t *g)
{
    uint64_t now = herd_node_now(g->node);
    g->st.checks++;
    g->st.fd_limit = fdguard_fd_limit();
    if (fdguard_list(g) != 0) {
        herd_log_limited(&g->log_error, now, HERD_LOG_WARN, "fdguard",
                         "cannot list /proc/self/fd: %s; cluster port %u unguarded for now",
                         strerror(errno), g->port);
        g->shed_last = 0; /* back to the slow pace */
        return;
    }
    g->st.fds_open = (uint32_t)(g->nfds + 2); /* with the guard's own two */
    if (g->st.fds_open + 2 >= g->st.fd_limit)
        herd_log_limited(&g->log_limit, now, HERD_LOG_WARN, "fdguard",
                         "open files at the limit (%u of %llu): new connections and files "
                         "fail until some close",
                         g->st.fds_open, (unsigned long long)g->st.fd_limit);
    int moved = g->nfds != g->last_count;
    if (g->shed_last || moved || now - g->last_scan_ms >= FDGUARD_FULL_MS)
        fdguard_scan(g, now);
}

static void fdguard_on_tick(uv_timer_t *h)
{
    fdguard_t *g = h->data;
    fdguard_check(g);
    /* after a shed, look again soon: more may wait in the accept queue */
    uint64_t next = g->shed_last ? FDGUARD_RESCAN_MS : FDGUARD_TICK_MS;
    uv_timer_start(&g->timer, fdguard_on_tick, next, 0);
}

/* ---- lifecycle ------------------------------------------------------------------ */

/* The port of a tcp://HOST:PORT address (nanomsg's form: the port follows
 * the last colon); -1 for anything else. */
static int listen_port(const char *listen)
{
    if (listen == NULL || strncmp(listen, "tcp://", 6) != 0)
        return -1;
    const char *colon = strrchr(listen, ':');
    long port = 0;
    if (colon == NULL || colon < listen + 6 || colon[1] == '\0')
        return -1;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535)
            return -1;
    }
    return port > 0 ? (int)port : -1;
}

static void fdguard_close_fds(fdguard_t *g)
{
    if (g->dir_fd >= 0)
        close(g->dir_fd);
    if (g->spare_fd >= 0)
        close(g->spare_fd);
}

int fdguard_start(herd_node_t *node, const char *listen, uint64_t active_ms,
                  fdguard_t **out)
{
    int port = listen_port(listen);
    if (port < 0)
        return HERD_EINVAL;
    fdguard_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return HERD_ENOMEM;
    g->node = node;
    g->port = (uint16_t)port;
    g->active_ms = active_ms;
    g->dir_fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    g->spare_fd = g->dir_fd >= 0 ? fcntl(g->dir_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (g->dir_fd < 0 || g->spare_fd < 0) {
        herd_log(HERD_LOG_WARN, "fdguard",
                 "cannot open /proc/self/fd: %s; cluster port %d not guarded against "
                 "running out of file descriptors", strerror(errno), port);
        fdguard_close_fds(g);
        free(g);
        return HERD_EIO;
    }
    uv_timer_init(herd_node_loop(node), &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, fdguard_on_tick, FDGUARD_TICK_MS, 0);
    uv_unref((uv_handle_t *)&g->timer);
    g->st.fd_limit = fdguard_fd_limit();
    herd_log(HERD_LOG_INFO, "fdguard", "guarding cluster port %d: open files limit %llu",
             port, (unsigned long long)g->st.fd_limit);
    *out = g;
    return 0;
}

static void fdguard_on_closed(uv_handle_t *h)
{
    ((fdguard_t *)h->data)->timer_closed = 1;
}

void fdguard_free(fdguard_t *g)
{
    if (g == NULL)
        return;
    uv_close((uv_handle_t *)&g->timer, fdguard_on_closed);
    while (!g->timer_closed)
        uv_run(herd_node_loop(g->node), UV_RUN_NOWAIT);
    fdguard_close_fds(g);
    free(g->fds);
    free(g->conns);
    free(g->prev);
    free(g);
}

void fdguard_stats(const fdguard_t *g, herd_conn_stats_t *out)
{
    *out = g->st;
}

int herd_cluster_conn_stats(herd_node_t *node, herd_conn_stats_t *out)
{
    herd_cluster_t *c = node->cluster;
    if (c == NULL || c->guard == NULL)
        return HERD_ENOENT;
    fdguard_stats(c->guard, out);
    return 0;
}

uint64_t fdguard_raise_nofile(uint64_t cap)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        herd_log(HERD_LOG_WARN, "fdguard", "cannot read the open files limit: %s",
                 strerror(errno));
        return 0;
    }
    uint64_t was = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    uint64_t hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
    uint64_t want = hard < cap ? hard : cap, now = was;
    if (want > was) {
        rl.rlim_cur = (rlim_t)want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            now = want;
    }
    int low = now < FDGUARD_NOFILE_LOW;
    herd_log(low ? HERD_LOG_WARN : HERD_LOG_INFO, "fdguard",
             "open files limit %llu (was %llu, hard %llu)%s", (unsigned long long)now,
             (unsigned long long)was, (unsigned long long)hard,
             low ? ": low; the cluster port takes fewer connections" : "");
    return now;
}
