/*
 * herdd - one herd node in the foreground.
 *
 *   herdd --name NAME --listen ADDR [--join ADDR]... --cookie-file FILE
 *         [--control ADDR] [--cluster NAME] [--weight N] [--heartbeat-ms N]
 *         [--down-ms N] [--log-level LEVEL]
 *
 * Logs go to stderr; once it serves it prints one line
 * `herdd: ready name=N listen=ADDR control=ADDR`. It hosts the `counter`
 * service (counter.h) under a distributed supervisor (herd_dsup.h). SIGTERM
 * drains it (every child moves off with its state, HERDD_DRAIN_MS at most),
 * then it leaves the cluster and exits 0; SIGINT (or a second signal) leaves
 * at once. It exits 1 on failure and 2 on usage errors (DESIGN.md,
 * command-line contract).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "herd_registry.h"
#include "herd_runtime.h"
#include "counter.h"
#include "herd_dsup.h"
#include "herdd_children.h"
#include "herdd_debug.h"
#include "log.h"
#include "ring.h"

#define HERDD_MAX_SEEDS 64
#define HERDD_SECRET_MAX 4096
#define EXIT_USAGE 2
#define HERDD_DRAIN_MS 30000 /* SIGTERM: the longest wait for children to move off */

typedef struct herdd {
    const char *name, *listen, *cookie_file, *control, *cluster;
    const char *seeds[HERDD_MAX_SEEDS];
    size_t seed_count;
    uint32_t weight, heartbeat_ms, down_ms;
    herd_log_level_t log_level;
    char control_buf[300];
    uint8_t secret[HERDD_SECRET_MAX];
    size_t secret_len;
    herd_node_t *node;
    control_t *ctl;
    uv_signal_t sigint, sigterm;
    uv_timer_t linger; /* lets the LEAVE frames go out before the loop stops */
    uv_timer_t drain;  /* SIGTERM: waits for the children to move off */
    uint64_t drain_deadline;
    int handles_on;
    int stopping;
} herdd_t;

static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "herdd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see herdd --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static const char help_text[] =
    "usage: herdd --name NAME --listen ADDR [--join ADDR]... --cookie-file FILE\n"
    "             [--control ADDR] [--cluster NAME] [--weight N] [--heartbeat-ms N]\n"
    "             [--down-ms N] [--log-level error|warn|info|debug]\n"
    "\n"
    "Runs one herd node in the foreground. Addresses are nanomsg URLs\n"
    "(tcp://HOST:PORT, ipc:///path). The cookie file holds the cluster secret\n"
    "(at least 16 bytes; a trailing newline is dropped) and must not be readable\n"
    "by group or others. --control defaults to ipc:///tmp/herd-NAME.ctl (0600).\n"
    "Hosts the `counter` service. SIGTERM: drain (children move to other nodes\n"
    "with their state), then leave the cluster and exit 0. SIGINT: leave at once.\n";

static int parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno || v < lo || v > hi)
        return usage("%s wants a whole number %u-%u, got '%s'", flag, lo, hi, s);
    *out = (uint32_t)v;
    return 0;
}

/* The shape of a nanomsg address herd uses: tcp://HOST:PORT or ipc://PATH.
 * (Whether it works is for the transport to find out.) */
static int address_looks_usable(const char *a)
{
    size_t len = strlen(a);
    if (len > 255)
        return 0;
    if (strncmp(a, "ipc://", 6) == 0)
        return len > 6;
    if (strncmp(a, "tcp://", 6) != 0)
        return 0;
    const char *colon = strrchr(a + 6, ':');
    return colon && colon > a + 6 && colon[1] != '\0' &&
           strspn(colon + 1, "0123456789") == strlen(colon + 1);
}

static int parse_args(herdd_t *d, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},       {"listen", required_argument, NULL, 'l'},
        {"join", required_argument, NULL, 'j'},       {"cookie-file", required_argument, NULL, 'c'},
        {"control", required_argument, NULL, 'C'},    {"cluster", required_argument, NULL, 'k'},
        {"weight", required_argument, NULL, 'w'},     {"heartbeat-ms", required_argument, NULL, 'H'},
        {"down-ms", required_argument, NULL, 'D'},    {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    int opt, rc = 0;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (opt) {
        case 'n': d->name = optarg; break;
        case 'l': d->listen = optarg; break;
        case 'c': d->cookie_file = optarg; break;
        case 'C': d->control = optarg; break;
        case 'k': d->cluster = optarg; break;
        case 'j':
            if (d->seed_count == HERDD_MAX_SEEDS)
                return usage("at most %d --join addresses", HERDD_MAX_SEEDS);
            d->seeds[d->seed_count++] = optarg;
            break;
        case 'w': rc = parse_u32("--weight", optarg, 1, RING_MAX_WEIGHT, &d->weight); break;
        case 'H': rc = parse_u32("--heartbeat-ms", optarg, 10, 60000, &d->heartbeat_ms); break;
        case 'D': rc = parse_u32("--down-ms", optarg, 20, 600000, &d->down_ms); break;
        case 'L':
            if (herd_log_parse_level(optarg, &d->log_level) != 0)
                return usage("--log-level wants error, warn, info or debug, got '%s'", optarg);
            break;
        case 'h': fputs(help_text, stdout); return -1;
        case ':': return usage("%s needs a value", argv[optind - 1]);
        default: return usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return usage("unexpected argument '%s'", argv[optind]);
    if (d->name == NULL || d->listen == NULL || d->cookie_file == NULL)
        return usage("--name, --listen and --cookie-file are required");
    if (ring_check_name(d->name) != 0)
        return usage("bad --name '%s': use 1-64 of A-Za-z0-9_.-", d->name);
    for (size_t i = 0; i < d->seed_count; i++)
        if (!address_looks_usable(d->seeds[i]))
            return usage("--join wants tcp://HOST:PORT or ipc:///PATH, got '%s'", d->seeds[i]);
    if (!address_looks_usable(d->listen))
        return usage("--listen wants tcp://HOST:PORT or ipc:///PATH, got '%s'", d->listen);
    if (d->control && strncmp(d->control, "ipc://", 6) != 0)
        return usage("--control must be an ipc:// address in this version (a TCP control "
                     "socket would need the cluster secret)");
    return 0;
}

/* The secret: the file's bytes less one trailing newline. Refused when the
 * file is readable by group or others, as Erlang refuses a loose cookie. */
static int read_cookie(herdd_t *d)
{
    int fd = open(d->cookie_file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "herdd: cannot read cookie file %s: %s\n", d->cookie_file,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)) {
        fprintf(stderr, "herdd: cookie file %s is open to group or others (mode %03o); "
                        "chmod 600 it\n", d->cookie_file, (unsigned)(st.st_mode & 0777));
        close(fd);
        return 1;
    }
    ssize_t n = read(fd, d->secret, sizeof(d->secret));
    close(fd);
    if (n < 0)
        return fprintf(stderr, "herdd: cannot read %s\n", d->cookie_file), 1;
    d->secret_len = (size_t)n;
    if (d->secret_len && d->secret[d->secret_len - 1] == '\n')
        d->secret_len--;
    if (d->secret_len < 16) {
        fprintf(stderr, "herdd: the cookie in %s is %zu bytes; at least 16 are needed\n",
                d->cookie_file, d->secret_len);
        return 1;
    }
    return 0;
}

/* The members as this node knows them, to name the nodes of pids. */
typedef struct member_names {
    herd_member_info_t *info;
    int count;
} member_names_t;

static void member_names_load(herdd_t *d, member_names_t *m)
{
    int n = herd_cluster_members(d->node, NULL, 0);
    m->info = n > 0 ? calloc((size_t)n, sizeof(*m->info)) : NULL;
    m->count = m->info ? herd_cluster_members(d->node, m->info, (size_t)n) : 0;
    if (m->count > n)
        m->count = n;
}

static void node_name_of(const member_names_t *m, uint64_t id, char *out, size_t cap)
{
    for (int i = 0; i < m->count; i++) {
        if (herd_node_id_of(m->info[i].name) == id) {
            snprintf(out, cap, "%.64s", m->info[i].name);
            return;
        }
    }
    snprintf(out, cap, "?%016llx", (unsigned long long)id);
}

/* ---- control commands -------------------------------------------------------- */

static int cmd_members(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herdd_t *d = data;
    member_names_t mn;
    member_names_load(d, &mn);
    herd_member_info_t *info = mn.info;
    int n = mn.count;
    if (info == NULL)
        return snprintf(msg, cap, "not in a cluster"), HERD_ENOENT;
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "name", info[i].name, "address",
                            info[i].address, "incarnation", (json_int_t)info[i].incarnation,
                            "state", herd_member_state_name(info[i].state), "weight",
                            (json_int_t)info[i].weight, "last_heard_ms",
                            (json_int_t)info[i].last_heard_ms));
    free(info);
    *result = list;
    return 0;
}

/* The live ring's members and weights: ringctl builds the same ring from them. */
static int cmd_ring(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herdd_t *d = data;
    const ring_t *r = herd_cluster_ring(d->node);
    if (r == NULL)
        return snprintf(msg, cap, "not in a cluster"), HERD_ENOENT;
    json_t *list = json_array();
    ring_member_info_t m;
    for (size_t i = 0; ring_member_at(r, i, &m) == 0; i++)
        json_array_append_new(list, json_pack("{s:s, s:I}", "name", m.name, "weight",
                                              (json_int_t)m.weight));
    *result = json_pack("{s:o}", "members", list);
    return 0;
}

static int cmd_stats(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herdd_t *d = data;
    herd_cluster_stats_t s;
    int rc = herd_cluster_stats(d->node, &s);
    if (rc)
        return snprintf(msg, cap, "not in a cluster"), rc;
    json_t *rejected = json_object();
    for (int i = 1; herd_cluster_reject_name(i); i++)
        json_object_set_new(rejected, herd_cluster_reject_name(i),
                            json_integer((json_int_t)s.rejected[i]));
    int members = herd_cluster_members(d->node, NULL, 0);
    *result = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:o}", "name", d->name,
                        "frames_in", (json_int_t)s.frames_in, "frames_out",
                        (json_int_t)s.frames_out, "bytes_in", (json_int_t)s.bytes_in,
                        "bytes_out", (json_int_t)s.bytes_out, "dropped_out",
                        (json_int_t)s.dropped_out, "peers", (json_int_t)s.peers, "members",
                        members, "processes",
                        (json_int_t)herd_node_process_count(d->node), "rejected", rejected);
    return 0;
}

static json_t *name_json(const member_names_t *mn, const char *name, herd_pid_t pid,
                         const herd_meta_t *meta)
{
    char node[80], pidtext[160];
    node_name_of(mn, pid.node, node, sizeof(node));
    snprintf(pidtext, sizeof(pidtext), "%s/%llu/%llu", node,
             (unsigned long long)pid.incarnation, (unsigned long long)pid.serial);
    json_t *m = json_object();
    for (uint8_t i = 0; meta && i < meta->count; i++)
        json_object_set_new(m, meta->kv[i].key, json_string(meta->kv[i].value));
    return json_pack("{s:s, s:s, s:s, s:o}", "name", name, "node", node, "pid", pidtext, "meta",
                     m);
}

static int cmd_whereis(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herdd_t *d = data;
    const char *name = json_string_value(json_object_get(args, "name"));
    if (name == NULL)
        return snprintf(msg, cap, "whereis needs a name"), HERD_EINVAL;
    herd_pid_t pid;
    herd_meta_t meta;
    int rc = herd_whereis(d->node, name, &pid, &meta);
    if (rc == HERD_ENOENT)
        return snprintf(msg, cap, "no process is registered as '%.200s'", name), rc;
    if (rc)
        return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
    member_names_t mn;
    member_names_load(d, &mn);
    *result = name_json(&mn, name, pid, &meta);
    free(mn.info);
    return 0;
}

typedef struct names_ctx {
    member_names_t mn;
    json_t *list;
} names_ctx_t;

static int add_name(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    names_ctx_t *c = data;
    json_array_append_new(c->list, name_json(&c->mn, name, pid, meta));
    return json_array_size(c->list) >= 100000; /* a bound on one answer */
}

static int cmd_names(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herdd_t *d = data;
    const char *prefix = json_string_value(json_object_get(args, "prefix"));
    names_ctx_t c = {{NULL, 0}, json_array()};
    member_names_load(d, &c.mn);
    int rc = herd_registry_list(d->node, prefix, add_name, &c);
    free(c.mn.info);
    if (rc < 0) {
        json_decref(c.list);
        return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
    }
    *result = c.list;
    return 0;
}

/* Per peer: the registry's exchanges and the stream under them. */
static int cmd_crdt(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    herdd_t *d = data;
    herd_registry_stats_t rs;
    int rc = herd_registry_stats(d->node, &rs);
    if (rc)
        return snprintf(msg, cap, "no registry"), rc;
    member_names_t mn;
    member_names_load(d, &mn);
    json_t *peers = json_array();
    uint64_t now = herd_node_wall_ms(d->node), self = herd_node_id_of(d->name);
    for (int i = 0; i < mn.count; i++) {
        uint64_t id = herd_node_id_of(mn.info[i].name);
        if (id == self)
            continue;
        herd_registry_peer_t p;
        herd_stream_stats_t st = {0};
        herd_registry_peer_stats(d->node, id, &p);
        herd_cluster_stream_stats(d->node, id, &st);
        json_array_append_new(
            peers, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "node",
                             mn.info[i].name, "acked_seq", (json_int_t)st.acked_seq, "sent_seq",
                             (json_int_t)st.sent_seq, "pending", (json_int_t)st.pending,
                             "pending_bytes", (json_int_t)st.pending_bytes, "deltas_out",
                             (json_int_t)p.deltas_out, "deltas_in", (json_int_t)p.deltas_in,
                             "digest_syncs", (json_int_t)p.digest_syncs, "last_sync_ms_ago",
                             p.last_sync_ms ? (json_int_t)(now - p.last_sync_ms) : (json_int_t)-1));
    }
    free(mn.info);
    *result = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "names", (json_int_t)rs.names,
                        "entries", (json_int_t)rs.entries, "conflicts_resolved",
                        (json_int_t)rs.conflicts_resolved, "reregistered",
                        (json_int_t)rs.reregistered, "rejected", (json_int_t)rs.rejected,
                        "peers", peers);
    return 0;
}

/* herdd_debug.c's way to the node (herdd_debug.h). */
herd_node_t *herdd_node(void *data)
{
    return ((herdd_t *)data)->node;
}

control_t *herdd_control(void *data)
{
    return ((herdd_t *)data)->ctl;
}

json_t *herdd_name_json(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    member_names_t mn;
    member_names_load(data, &mn);
    json_t *o = name_json(&mn, name, pid, meta);
    free(mn.info);
    return o;
}

static const control_command_t commands[] = {
    {"start", herdd_cmd_start},       /* herdd_children.h */
    {"call", herdd_cmd_call},         /* herdd_children.h */
    {"stop", herdd_cmd_stop},         /* herdd_children.h */
    {"children", herdd_cmd_children}, /* herdd_children.h */
    {"handoffs", herdd_cmd_handoffs}, /* herdd_children.h */
    {"drain", herdd_cmd_drain},       /* herdd_children.h */
    {"block", herdd_cmd_block},           /* herdd_debug.h */
    {"unblock", herdd_cmd_unblock},       /* herdd_debug.h */
    {"register", herdd_cmd_register},     /* herdd_debug.h */
    {"unregister", herdd_cmd_unregister}, /* herdd_debug.h */
    {"crdt", cmd_crdt},
    {"whereis", cmd_whereis},
    {"names", cmd_names},
    {"members", cmd_members},
    {"ring", cmd_ring},
    {"stats", cmd_stats},
};

/* ---- running ------------------------------------------------------------------ */

static void on_linger_done(uv_timer_t *h)
{
    uv_stop(h->loop);
}

static void leave_now(herdd_t *d)
{
    uv_timer_stop(&d->drain);
    herd_cluster_leave(d->node);
    uv_timer_start(&d->linger, on_linger_done, 200, 0);
}

/* Whether another member is up to take the children. */
static int others_up(herdd_t *d)
{
    member_names_t mn;
    member_names_load(d, &mn);
    int up = 0;
    for (int i = 0; i < mn.count; i++)
        up |= mn.info[i].state == HERD_MEMBER_UP && strcmp(mn.info[i].name, d->name) != 0;
    free(mn.info);
    return up;
}

static void on_drain_check(uv_timer_t *h)
{
    herdd_t *d = h->data;
    herd_child_counts_t cc;
    herd_count_children(d->node, &cc);
    int late = herd_node_now(d->node) >= d->drain_deadline;
    if (cc.local > 0 && !late && others_up(d))
        return;
    if (cc.local > 0)
        herd_log(HERD_LOG_WARN, "herdd", "drain: %llu children still here after %d ms",
                 (unsigned long long)cc.local, HERDD_DRAIN_MS);
    herd_log(HERD_LOG_WARN, "herdd", "drained: leaving the cluster");
    leave_now(d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    herdd_t *d = h->data;
    if (d->stopping++) {
        if (d->stopping == 2 && uv_is_active((uv_handle_t *)&d->drain))
            leave_now(d); /* a second signal: no more waiting */
        return;
    }
    if (signum == SIGTERM) {
        herd_log(HERD_LOG_WARN, "herdd", "SIGTERM: draining, then leaving the cluster");
        herd_cluster_set_draining(d->node, 1);
        d->drain_deadline = herd_node_now(d->node) + HERDD_DRAIN_MS;
        uv_timer_start(&d->drain, on_drain_check, 0, 50);
        return;
    }
    herd_log(HERD_LOG_WARN, "herdd", "signal %d: leaving the cluster", signum);
    leave_now(d);
}

/* The supervisor, its services and the call proxy. */
static int start_services(herdd_t *d)
{
    int rc = herd_dsup_start(d->node, NULL);
    if (rc == 0)
        rc = herd_service_register(d->node, "counter", &counter_behaviour);
    if (rc == 0)
        rc = herdd_children_start(d);
    return rc;
}

static int start(herdd_t *d)
{
    herd_node_config_t nc = {.name = d->name};
    int rc = herd_node_new(&nc, &d->node);
    if (rc)
        return fprintf(stderr, "herdd: cannot make node: %s\n", herd_strerror(rc)), 1;
    herd_cluster_config_t cc = {.cluster = d->cluster, .listen = d->listen,
                                .seeds = d->seeds, .seed_count = d->seed_count,
                                .secret = d->secret, .secret_len = d->secret_len,
                                .weight = d->weight, .heartbeat_ms = d->heartbeat_ms,
                                .down_ms = d->down_ms};
    if (d->down_ms && d->heartbeat_ms == 0 && d->down_ms < 600)
        cc.suspect_ms = d->down_ms / 2;
    rc = herd_cluster_start(d->node, &cc);
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
    if (d->control == NULL) {
        control_default_address(d->name, d->control_buf, sizeof(d->control_buf));
        d->control = d->control_buf;
        if (strncmp(d->control, "ipc://", 6) == 0)
            unlink(d->control + 6); /* a stale socket file of an earlier run */
    }
    rc = control_start(herd_node_loop(d->node), d->control, commands,
                       sizeof(commands) / sizeof(commands[0]), d, &d->ctl);
    if (rc)
        return fprintf(stderr, "herdd: cannot serve control at %s\n", d->control), 1;
    uv_loop_t *loop = herd_node_loop(d->node);
    uv_signal_init(loop, &d->sigint);
    uv_signal_init(loop, &d->sigterm);
    uv_timer_init(loop, &d->linger);
    uv_timer_init(loop, &d->drain);
    d->drain.data = d;
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

int main(int argc, char **argv)
{
    herdd_t d = {.log_level = HERD_LOG_WARN};
    int rc = parse_args(&d, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    herd_log_set_level(d.log_level);
    if (read_cookie(&d) != 0)
        return 1;
    rc = start(&d);
    if (rc == 0) {
        fprintf(stderr, "herdd: ready name=%s listen=%s control=%s\n", d.name, d.listen,
                d.control);
        uv_run(herd_node_loop(d.node), UV_RUN_DEFAULT);
    }
    if (d.handles_on) {
        uv_close((uv_handle_t *)&d.sigint, on_closed);
        uv_close((uv_handle_t *)&d.sigterm, on_closed);
        uv_close((uv_handle_t *)&d.linger, on_closed);
        uv_close((uv_handle_t *)&d.drain, on_closed);
    }
    control_stop(d.ctl);
    d.ctl = NULL;
    herd_node_free(d.node);
    if (strncmp(d.control ? d.control : "", "ipc:///tmp/herd-", 16) == 0)
        unlink(d.control + 6);
    return rc;
}
