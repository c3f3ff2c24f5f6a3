/*
 * herdd - one herd node in the foreground.
 *
 *   herdd --name NAME --listen ADDR [--join ADDR]... --cookie-file FILE
 *         [--control ADDR] [--cluster NAME] [--weight N] [--heartbeat-ms N]
 *         [--down-ms N] [--forget-ms N] [--log-level LEVEL[,SUBSYSTEM=LEVEL]...]
 *   herdd --config FILE [any of the flags above]
 *
 * --config FILE reads the flags from FILE, one `key = value` a line with the
 * flag's name as key (herdd_config.h); flags on the command line win, and
 * its --join list replaces the file's. The options and their checks are
 * herdd_args.c's.
 *
 * Logs go to stderr; once it serves it prints one line
 * `herdd: ready name=N listen=ADDR control=ADDR`. It hosts the `counter`
 * service (counter.h) under a distributed supervisor (herd_dsup.h). SIGTERM
 * drains it (every child moves off with its state, HERDD_DRAIN_MS at most),
 * then it leaves the cluster and exits 0; SIGINT (or a second signal) leaves
 * at once. It exits 1 on failure and 2 on usage errors (DESIGN.md,
 * command-line contract). Before its ready line it waits (HERDD_NAME_CHECK_MS
 * at most while nobody answers) until the cluster has checked its name: it
 * exits 1 when a live node of the cluster has the same name (mship_join.c),
 * then or later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "counter.h"
#include "fdguard.h"
#include "herd.h"
#include "herdd_args.h"
#include "herdd_discover.h"
#include "herdd_metrics.h"
#include "log.h"
#include "metrics_http.h"
#include "node_control.h"

#define EXIT_USAGE 2
#define HERDD_DRAIN_MS 30000 /* SIGTERM: the longest wait for children to move off */
#define HERDD_NAME_CHECK_MS 3000 /* before "ready": the longest wait for a first answer */
#define HERDD_NAME_CHECK_MAX_MS 30000 /* ... and for asking other starts of the name */
#define HERDD_NAME_WATCH_MS 200 /* after "ready": how often the name's verdict is read */
#define HERDD_DISCOVER_FIRST_MS 3000 /* before joining: the longest wait for a first answer */

typedef struct herdd {
    const char *name, *listen, *cookie_file, *control, *cluster;
    const char *const *seeds; /* the options' (herdd_args_t) */
    size_t seed_count;
    uint32_t weight, heartbeat_ms, down_ms, forget_ms;
    herd_log_level_t log_level;
    const herdd_args_t *args; /* --metrics, --discover */
    herdd_discover_t *discover;
    seed_list_t found; /* owned: the seeds --discover found last */
    const char **seed_buf; /* owned: --join's seeds, then those found */
    int cluster_on;
    metrics_http_t *http;
    herdd_lag_t lag;
    int lag_on;
    char control_buf[300];
    uint8_t secret[HERD_COOKIE_MAX];
    size_t secret_len;
    herd_node_t *node;
    herd_control_t *ctl;
    uv_signal_t sigint, sigterm;
    uv_timer_t name_watch; /* a live node of this name may still answer later */
    int exit_code;
    int handles_on;
    int stopping;
    int leaving; /* herd_node_shutdown has not called back yet */
    int control_bound; /* this process serves d->control: its socket file is ours */
} herdd_t;

static const char help_text[] =
    "usage: herdd --name NAME --listen ADDR [--join ADDR]... --cookie-file FILE\n"
    "             [--control ADDR] [--cluster NAME] [--weight N] [--heartbeat-ms N]\n"
    "             [--down-ms N] [--forget-ms N] [--log-level LEVEL[,SUBSYSTEM=LEVEL]...]\n"
    "             [--metrics IPV4:PORT] [--discover dns:NAME:PORT|range:FIRST-LAST:PORT]\n"
    "             [--discover-interval-ms N]\n"
    "       herdd --config FILE [any option above]\n"
    "       herdd --help | --version\n"
    "\n"
    "Runs one herd node in the foreground. Addresses are nanomsg URLs\n"
    "(tcp://HOST:PORT, ipc:///path). The cookie file holds the cluster secret\n"
    "(16 to 4096 bytes; a trailing newline is dropped): a regular file, not\n"
    "readable by group or others. --control defaults to ipc:///tmp/herd-CLUSTER-NAME.ctl\n"
    "(0600). Each option but --join is given at most once.\n"
    "herdd does not start on an ipc:// path that a live process serves or that\n"
    "holds anything but a socket; a socket nobody serves is replaced, nor when\n"
    "a live node of the cluster has its --name (it exits 1 naming that node).\n"
    "Failure detector: a member silent for --down-ms (default 5 heartbeats of\n"
    "--heartbeat-ms, default 200) is down, sooner when its connection closed;\n"
    "--down-ms under two heartbeats is refused;\n"
    "down for --forget-ms (default 60000) it is gone and its names are removed.\n"
    "Hosts the `counter` service. SIGTERM: drain (children move to other nodes\n"
    "with their state), then leave the cluster and exit 0. SIGINT: leave at once.\n"
    "--config FILE: the options from FILE, one `key = value` a line, key an\n"
    "option's name without its dashes (cookie-file = /etc/herd/n1.cookie), `#`\n"
    "comments, blank lines; join may repeat. Options on the command line win\n"
    "(their --join list replaces the file's). An error names FILE:LINE (exit 2).\n"
    "--log-level: error, warn (the default), info or debug, and subsystems' own\n"
    "levels after it (warn,replicas=debug,cluster=info). Log lines go to stderr:\n"
    "TIME herd LEVEL SUBSYSTEM: MESSAGE.\n"
    "--metrics IPV4:PORT: serve Prometheus metrics at http://IPV4:PORT/metrics.\n"
    "--discover dns:NAME:PORT: join every IPv4 address NAME resolves to, resolved\n"
    "again every --discover-interval-ms (100 to 3600000, default 5000): new ones\n"
    "are seeds, gone ones are dropped; a name that does not resolve is logged and\n"
    "tried again. --discover range:FIRST-LAST:PORT: every IPv4 address from FIRST\n"
    "to LAST (1024 at most). Never this node's own --listen address.\n"
    "See man herdd.\n";

/* The secret, with the library's checks (herd_cookie_read): a regular
 * file, not open to group or others, 16 to 4096 bytes. */
static int read_cookie(herdd_t *d)
{
    char why[600];
    if (herd_cookie_read(d->cookie_file, d->secret, sizeof(d->secret), &d->secret_len, why,
                         sizeof(why)) == 0)
        return 0;
    fprintf(stderr, "herdd: %s\n", why);
    return 1;
}

/* ---- ipc socket files ---------------------------------------------------------- */

/*
 * nanomsg's ipc bind removes whatever is at the path when a connect to it is
 * refused, and a connect to a regular file is refused too; herdd itself used
 * to remove its default control path before binding. So before anything is
 * bound, each ipc:// path herdd would bind is checked here: nothing there is
 * fine; a socket that accepts a connection belongs to a live process (another
 * herdd, perhaps of the same name), and herdd refuses to start; a socket
 * that refuses one is left over from a process that died, and is removed;
 * anything else (a file, a directory, a symbolic link) is not herdd's to
 * remove, and herdd refuses to start. (A process could still bind the path
 * between this check and herdd's bind; then the bind fails, "in use".)
 */

/* 0: the socket at `path` accepts a connection; 1: it refuses one; -1 with
 * errno otherwise. */
static int socket_refuses(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
        return 0; /* accepted, or its backlog is full: someone serves it */
    if (err == ECONNREFUSED)
        return 1;
    errno = err;
    return -1;
}

/* 0 when herdd may bind `address` (an ipc:// path now free, or not ipc at
 * all); 1 after saying why not. */
static int ipc_path_free(const char *flag, const char *address)
{
    if (strncmp(address, "ipc://", 6) != 0)
        return 0;
    const char *path = address + 6;
    struct stat st;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "herdd: %s path %s is too long for a unix socket\n", flag, path);
        return 1;
    }
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "herdd: cannot check %s path %s: %s\n", flag, path, strerror(errno));
        return 1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "herdd: %s exists and is not a socket; not starting (%s)\n", path,
                flag);
        return 1;
    }
    int refuses = socket_refuses(path);
    if (refuses == 0) {
        fprintf(stderr, "herdd: %s is served by a live process (another herdd?); not "
                        "starting (%s)\n", path, flag);
        return 1;
    }
    if (refuses < 0) {
        fprintf(stderr, "herdd: cannot check %s path %s: %s\n", flag, path, strerror(errno));
        return 1;
    }
    if (unlink(path) != 0 && errno != ENOENT) { /* a dead process's socket */
        fprintf(stderr, "herdd: cannot remove the stale socket %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- running ------------------------------------------------------------------ */

/* The node left (herd_node_shutdown): stop the loop. */
static void on_left(void *data, int status)
{
    herdd_t *d = data;
    d->leaving = 0;
    if (status == HERD_ESHUTDOWN)
        return; /* freed first: the loop is not running */
    if (status == HERD_ENOTCONN)
        herd_log(HERD_LOG_WARN, "herdd", "left the cluster: no other member up to take its "
                 "children");
    else if (status)
        herd_log(HERD_LOG_WARN, "herdd", "left the cluster before every child moved off (%s)",
                 herd_strerror(status));
    else
        herd_log(HERD_LOG_WARN, "herdd", "drained: left the cluster");
    uv_stop(herd_node_loop(d->node));
}

/* SIGTERM drains (HERDD_DRAIN_MS at most), then leaves; SIGINT, or a second
 * signal while the drain waits, leaves at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    herdd_t *d = h->data;
    if (d->stopping++) {
        if (d->stopping == 2 && herd_node_shutdown_now(d->node) == 0)
            herd_log(HERD_LOG_WARN, "herdd", "signal %d again: leaving without waiting", signum);
        return;
    }
    if (signum == SIGTERM)
        herd_log(HERD_LOG_WARN, "herdd", "SIGTERM: draining, then leaving the cluster");
    else
        herd_log(HERD_LOG_WARN, "herdd", "signal %d: leaving the cluster", signum);
    int rc = herd_node_shutdown(d->node, signum == SIGTERM ? HERDD_DRAIN_MS : 0, on_left, d);
    if (rc) {
        herd_log(HERD_LOG_ERROR, "herdd", "cannot leave the cluster: %s", herd_strerror(rc));
        uv_stop(h->loop);
        return;
    }
    d->leaving = 1;
}

/* ---- the name ------------------------------------------------------------------ */

/* 1 (and says so) when a live node of the cluster has this node's name. */
static int name_taken(herdd_t *d)
{
    char address[256];
    uint64_t inc;
    if (herd_cluster_identity(d->node, &inc, address, sizeof(address)) != HERD_IDENTITY_REFUSED)
        return 0;
    fprintf(stderr,
            "herdd: not starting: the cluster already has a live node named %s "
            "(incarnation %llu, at %s); choose another --name, or stop that node first\n",
            d->name, (unsigned long long)inc, address);
    return 1;
}

/* Run the loop until the cluster has checked this node's name: 0 when it
 * may serve (checked, or nobody answered within HERDD_NAME_CHECK_MS: the
 * check goes on, watched by on_name_watch), 1 when the name is taken, -1
 * when a signal stopped it meanwhile. */
static int check_name(herdd_t *d)
{
    uint64_t t0 = herd_node_now(d->node), deadline = t0 + HERDD_NAME_CHECK_MS;
    for (;;) {
        int id = herd_cluster_identity(d->node, NULL, NULL, 0);
        uint64_t now = herd_node_now(d->node);
        if (name_taken(d))
            return 1;
        if (d->stopping) {
            while (d->leaving) /* bounded: HERDD_DRAIN_MS and the linger */
                herd_node_run_for(d->node, 20);
            return -1;
        }
        if (id == HERD_IDENTITY_CONFIRMED)
            return 0;
        if (id == HERD_IDENTITY_PROBING && deadline < now + 500)
            deadline = now + 500 < t0 + HERDD_NAME_CHECK_MAX_MS ? now + 500
                                                                : t0 + HERDD_NAME_CHECK_MAX_MS;
        if (now >= deadline) {
            herd_log(HERD_LOG_WARN, "herdd", "no member answered within %llu ms; the name %s "
                     "is checked once one does", (unsigned long long)(now - t0), d->name);
            return 0;
        }
        herd_node_run_for(d->node, 20);
    }
}

static void on_name_watch(uv_timer_t *h)
{
    herdd_t *d = h->data;
    if (d->exit_code == 0 && name_taken(d)) {
        d->exit_code = 1;
        uv_stop(h->loop);
    }
}

/* ---- seeds found, metrics -------------------------------------------------------- */

/* The seeds: --join's, then those --discover found that --join does not
 * name. Into d->seed_buf (*n of them); HERD_ENOMEM. */
static int seeds_gather(herdd_t *d, size_t *n)
{
    const char **buf = realloc(d->seed_buf, (d->seed_count + d->found.count + 1) * sizeof(*buf));
    if (buf == NULL)
        return HERD_ENOMEM;
    d->seed_buf = buf;
    *n = 0;
    for (size_t i = 0; i < d->seed_count; i++)
        buf[(*n)++] = d->seeds[i];
    for (size_t i = 0; i < d->found.count; i++) {
        size_t j = 0;
        while (j < d->seed_count && strcmp(d->seeds[j], d->found.items[i]) != 0)
            j++;
        if (j == d->seed_count)
            buf[(*n)++] = d->found.items[i];
    }
    return 0;
}

/* A new list from --discover: kept, and the running node's seeds replaced. */
static void on_discovered(void *data, const seed_list_t *seeds)
{
    herdd_t *d = data;
    seed_list_t copy = {.items = malloc((seeds->count ? seeds->count : 1) * sizeof(*copy.items)),
                        .count = seeds->count};
    size_t n;
    int rc = copy.items ? 0 : HERD_ENOMEM;
    if (rc == 0) {
        if (seeds->count) /* an empty list's items may be NULL */
            memcpy(copy.items, seeds->items, seeds->count * sizeof(*copy.items));
        seed_list_free(&d->found);
        d->found = copy;
        rc = seeds_gather(d, &n);
    }
    if (rc == 0 && d->cluster_on)
        rc = herd_cluster_set_seeds(d->node, d->seed_buf, n);
    if (rc)
        herd_log(HERD_LOG_ERROR, "discover", "the %zu seeds found are not taken: %s; the next "
                 "change tries again", seeds->count, herd_strerror(rc));
}

/* --discover: started before the cluster, whose first seeds wait for its
 * first answer (HERDD_DISCOVER_FIRST_MS at most: a slow resolver delays
 * nothing longer; what it finds later is taken then). */
static int discover_first(herdd_t *d)
{
    const herdd_args_t *a = d->args;
    uint32_t every = a->discover_interval_ms ? a->discover_interval_ms
                                             : HERDD_DISCOVER_INTERVAL_MS;
    int rc = herdd_discover_start(herd_node_loop(d->node), &a->discover_spec, every, d->listen,
                                  on_discovered, d, &d->discover);
    if (rc)
        return fprintf(stderr, "herdd: cannot start --discover: %s\n", herd_strerror(rc)), 1;
    uint64_t deadline = herd_node_now(d->node) + HERDD_DISCOVER_FIRST_MS;
    while (!herdd_discover_tried(d->discover) && herd_node_now(d->node) < deadline)
        herd_node_run_for(d->node, 20);
    if (!herdd_discover_tried(d->discover))
        herd_log(HERD_LOG_WARN, "discover", "%s: no answer within %d ms; joining with what "
                 "comes later", a->discover, HERDD_DISCOVER_FIRST_MS);
    return 0;
}

/* The metrics page: the node's figures, the loop's lag, discovery's. */
static int metrics_page(void *data, char **body, size_t *len)
{
    herdd_t *d = data;
    herdd_metrics_snapshot_t *snap = malloc(sizeof(*snap));
    if (snap == NULL)
        return HERD_ENOMEM;
    herdd_metrics_collect(d->node, snap);
    snap->lag = d->lag.fig;
    snap->have_discover = d->discover != NULL;
    if (d->discover)
        herdd_discover_stats(d->discover, &snap->discover);
    int rc = herdd_metrics_format(snap, body, len);
    free(snap);
    return rc;
}

static int metrics_start(herdd_t *d)
{
    const herdd_args_t *a = d->args;
    char err[300];
    uv_loop_t *loop = herd_node_loop(d->node);
    herdd_lag_start(&d->lag, loop);
    d->lag_on = 1;
    if (metrics_http_start(loop, a->metrics_ip, a->metrics_port, metrics_page, d, &d->http, err,
                           sizeof(err)) != 0)
        return fprintf(stderr, "herdd: cannot serve --metrics at %s: %s\n", a->metrics, err), 1;
    herd_log(HERD_LOG_INFO, "herdd", "metrics at http://%s/metrics", a->metrics);
    return 0;
}

static void ops_stop(herdd_t *d)
{
    metrics_http_free(d->http);
    d->http = NULL;
    if (d->lag_on) {
        herdd_lag_stop(&d->lag);
        while (!d->lag.closed)
            uv_run(herd_node_loop(d->node), UV_RUN_NOWAIT);
        d->lag_on = 0;
    }
    herdd_discover_free(d->discover);
    d->discover = NULL;
    seed_list_free(&d->found);
    free(d->seed_buf);
    d->seed_buf = NULL;
}

/* Copies of each counter's state by default: a crash of its node loses no
 * acknowledged increment (`ringctl start counter NAME --replicas N`
 * changes it per counter). */
#define HERDD_COUNTER_REPLICAS 2

/* The supervisor, its services and the call proxy. */
static int start_services(herdd_t *d)
{
    int rc = herd_dsup_start(d->node, NULL);
    if (rc == 0)
        rc = herd_service_register_replicas(d->node, "counter", &counter_behaviour,
                                            HERDD_COUNTER_REPLICAS);
    return rc;
}

static int start(herdd_t *d)
{
    herd_node_config_t nc = {.name = d->name};
    int rc = herd_node_new(&nc, &d->node);
    if (rc)
        return fprintf(stderr, "herdd: cannot make node: %s\n", herd_strerror(rc)), 1;
    size_t seed_count = d->seed_count;
    if (d->args->discover && discover_first(d) != 0)
        return 1;
    if (seeds_gather(d, &seed_count) != 0)
        return fprintf(stderr, "herdd: out of memory\n"), 1;
    herd_cluster_config_t cc = {.cluster = d->cluster, .listen = d->listen,
                                .seeds = d->seed_buf, .seed_count = seed_count,
                                .secret = d->secret, .secret_len = d->secret_len,
                                .weight = d->weight, .heartbeat_ms = d->heartbeat_ms,
                                .down_ms = d->down_ms, .forget_ms = d->forget_ms};
    rc = herd_cluster_derive_timing(&cc); /* checked with the options already */
    if (rc == 0)
        rc = herd_cluster_start(d->node, &cc);
    d->cluster_on = rc == 0;
    if (rc == 0)
        rc = herd_registry_start(d->node);
    if (rc == 0 && (rc = start_services(d)) != 0)
        return fprintf(stderr, "herdd: cannot start the supervisor: %s\n", herd_strerror(rc)),
               1;
    if (rc)
        return fprintf(stderr, "herdd: cannot listen at %s: %s\n", d->listen,
                       rc == HERD_EIO ? "address in use or not available here"
                                      : herd_strerror(rc)),
               1;
    rc = herd_control_start(d->node, d->control, &d->ctl);
    if (rc)
        return fprintf(stderr, "herdd: cannot serve control at %s\n", d->control), 1;
    d->control_bound = 1;
    if (d->args->metrics && metrics_start(d) != 0)
        return 1;
    uv_loop_t *loop = herd_node_loop(d->node);
    uv_signal_init(loop, &d->sigint);
    uv_signal_init(loop, &d->sigterm);
    uv_timer_init(loop, &d->name_watch);
    d->name_watch.data = d;
    d->handles_on = 1;
    d->sigint.data = d->sigterm.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Run the node of options `a` until it stops; the exit code. */
static int run(const herdd_args_t *a)
{
    herdd_t d = {.name = a->name, .listen = a->listen, .cookie_file = a->cookie_file,
                 .control = a->control, .cluster = a->cluster, .seeds = a->seeds,
                 .seed_count = a->seed_count, .weight = a->weight,
                 .heartbeat_ms = a->heartbeat_ms, .down_ms = a->down_ms,
                 .forget_ms = a->forget_ms, .log_level = a->log_level, .args = a};
    int rc;
    herd_log_set_level(d.log_level);
    if (a->log_spec && herd_log_apply_spec(a->log_spec) != 0) /* checked as it was read */
        return 1;
    fdguard_raise_nofile(FDGUARD_NOFILE_CAP); /* room for the cluster port's guard */
    if (read_cookie(&d) != 0)
        return 1;
    if (d.control == NULL) {
        rc = herd_control_default_address(d.cluster, d.name, d.control_buf,
                                          sizeof(d.control_buf));
        if (rc)
            return fprintf(stderr, "herdd: no default --control for '%s': %s\n", d.name,
                           herd_strerror(rc)),
                   1;
        d.control = d.control_buf;
    }
    if (ipc_path_free("--listen", d.listen) != 0 || ipc_path_free("--control", d.control) != 0)
        return 1;
    rc = start(&d);
    int named = rc == 0 ? check_name(&d) : -1;
    if (named > 0)
        rc = 1;
    if (named == 0) {
        fprintf(stderr, "herdd: ready name=%s listen=%s control=%s\n", d.name, d.listen,
                d.control);
        uv_timer_start(&d.name_watch, on_name_watch, HERDD_NAME_WATCH_MS, HERDD_NAME_WATCH_MS);
        herd_node_run(d.node);
        rc = d.exit_code;
    }
    if (d.handles_on) {
        uv_close((uv_handle_t *)&d.sigint, on_closed);
        uv_close((uv_handle_t *)&d.sigterm, on_closed);
        uv_close((uv_handle_t *)&d.name_watch, on_closed);
    }
    if (d.node)
        ops_stop(&d);
    herd_control_stop(d.ctl);
    d.ctl = NULL;
    herd_node_free(d.node);
    if (d.control_bound && strncmp(d.control, "ipc:///tmp/herd-", 16) == 0)
        unlink(d.control + 6); /* the default place: no stale file for the next start */
    return rc;
}

int main(int argc, char **argv)
{
    herdd_args_t args;
    char err[2048];
    int rc = herdd_args_load(&args, argc, argv, err, sizeof(err));
    if (rc == HERDD_ARGS_HELP)
        fputs(help_text, stdout);
    else if (rc == HERDD_ARGS_VERSION)
        printf("herdd %s\n", herd_version());
    else if (rc == HERDD_ARGS_USAGE)
        fprintf(stderr, "herdd: %s (see herdd --help)\n", err);
    rc = rc == HERDD_ARGS_RUN ? run(&args) : rc == HERDD_ARGS_USAGE ? EXIT_USAGE : 0;
    herdd_args_free(&args); /* after run: the options point into a config file's text */
    return rc;
}
