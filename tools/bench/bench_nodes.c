/*
 * bench_nodes.c - what herd's cluster benchmarks share (bench_nodes.h):
 * clocks and medians, RSS, names, idle processes, and clusters of nodes on
 * one loop in this one process, with a lenient failure detector.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_nodes.h"

#define JOIN_DEADLINE_S 15.0 /* make_cluster: the nodes see each other up by then */

const char *bench_prog = "bench";
int verbose;          /* --verbose: each run's figures on stderr */
int default_timeouts; /* --default-timeouts: the default failure detector */

const herd_behaviour_t bench_idle = {.name = "bench-idle"};

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s failed (%d: %s)\n", bench_prog, what, rc,
            rc < 0 ? herd_strerror(rc) : "-");
    exit(1);
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2)
        die("reading /proc/self/statm", 0);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

size_t rss_anon_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0, shared = 0;
    if (f == NULL || fscanf(f, "%lu %lu %lu", &size, &resident, &shared) != 3)
        die("reading /proc/self/statm", 0);
    fclose(f);
    return (size_t)(resident > shared ? resident - shared : 0) * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- names ---------------------------------------------------------------------- */

names_t names_make(const char *prefix, size_t count)
{
    names_t ns = {.count = count};
    size_t cap = count * (strlen(prefix) + 24);
    ns.at = malloc(count * sizeof(char *));
    ns.text = malloc(cap);
    if (ns.at == NULL || ns.text == NULL)
        die("allocating names", HERD_ENOMEM);
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        int len = snprintf(ns.text + off, cap - off, "%s-worker-%zu", prefix, i);
        ns.at[i] = ns.text + off;
        ns.total_len += (size_t)len;
        off += (size_t)len + 1;
    }
    return ns;
}

void names_free(names_t *ns)
{
    free(ns->at);
    free(ns->text);
}

void spawn_idle(herd_node_t *n, herd_pid_t *pids, size_t count)
{
    herd_spawn_opts_t o = {.behaviour = &bench_idle};
    for (size_t i = 0; i < count; i++) {
        int rc = herd_spawn(n, &o, &pids[i]);
        if (rc != 0)
            die("herd_spawn", rc);
    }
}

herd_node_t *solo_registry_node(const char *name)
{
    herd_node_t *n;
    herd_node_config_t nc = {.name = name};
    int rc = herd_node_new(&nc, &n);
    if (rc != 0 || (rc = herd_registry_start(n)) != 0)
        die("a node with a registry", rc);
    return n;
}

/* ---- a cluster of three nodes on one loop --------------------------------------- */

int next_port;

herd_node_t *make_node(uv_loop_t *loop, const char *name, const char *seed,
                              char *listen, size_t listen_cap)
{
    static const char secret[] = "bench-cluster-secret-0123456789";
    for (int attempt = 0; attempt < 20; attempt++) {
        herd_node_t *n;
        herd_node_config_t nc = {.name = name, .loop = loop};
        int rc = herd_node_new(&nc, &n);
        if (rc != 0)
            die("herd_node_new", rc);
        snprintf(listen, listen_cap, "tcp://127.0.0.1:%d", next_port++);
        if (next_port > 60000)
            next_port = 20000;
        herd_cluster_config_t cc = {.listen = listen, .secret = secret,
                                    .secret_len = sizeof(secret) - 1,
                                    .seeds = seed ? &seed : NULL,
                                    .seed_count = seed ? 1 : 0};
        if (!default_timeouts) {
            /* The three nodes share one thread, and the registrations hold it
             * without a break (seconds at 300,000 names): with the default
             * detector (down after 1 s) they declare each other down
             * meanwhile, which is not what this figure measures. */
            cc.suspect_ms = 30000;
            cc.down_ms = 60000;
        }
        rc = herd_cluster_start(n, &cc);
        if (rc == 0) {
            if ((rc = herd_registry_start(n)) != 0)
                die("herd_registry_start", rc);
            return n;
        }
        herd_node_free(n); /* most likely the port is taken: try the next */
        if (rc != HERD_EIO)
            die("herd_cluster_start", rc);
    }
    die("finding a free port", 0);
    return NULL;
}

/* Whether `n` sees exactly `want` members, all up. */
int all_up(herd_node_t *n, int want)
{
    herd_member_info_t m[NODES + 2];
    int count = herd_cluster_members(n, m, NODES + 2);
    if (count != want)
        return 0;
    for (int i = 0; i < count; i++)
        if (m[i].state != HERD_MEMBER_UP)
            return 0;
    return 1;
}

/* NODES nodes that all see each other up; `first` gets the first one's
 * address, the seed of anyone joining later. */
void make_cluster(uv_loop_t *loop, herd_node_t **nodes, char *first, size_t first_cap)
{
    char other[64];
    nodes[0] = make_node(loop, "bench-a", NULL, first, first_cap);
    for (int k = 1; k < NODES; k++) {
        char name[16];
        snprintf(name, sizeof(name), "bench-%c", 'a' + k);
        nodes[k] = make_node(loop, name, first, other, sizeof(other));
    }
    double deadline = now_s() + JOIN_DEADLINE_S;
    for (;;) {
        int up = 1;
        for (int k = 0; k < NODES; k++)
            up = up && all_up(nodes[k], NODES);
        if (up)
            break;
        if (now_s() > deadline)
            die("the three nodes joining", 0);
        herd_node_run_for(nodes[0], 10);
    }
    herd_node_run_for(nodes[0], 50); /* the (empty) state syncs of the joins */
}

void free_cluster(uv_loop_t *loop, herd_node_t **nodes, int count)
{
    for (int k = count - 1; k >= 0; k--)
        herd_node_free(nodes[k]);
    for (int i = 0; i < 1000 && uv_loop_close(loop) == UV_EBUSY; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

uint64_t entries_of(herd_node_t *n)
{
    herd_registry_stats_t st;
    int rc = herd_registry_stats(n, &st);
    if (rc != 0)
        die("herd_registry_stats", rc);
    return st.entries;
}

/* What a node holds and what went through it: why a run did not converge. */
void report_node(herd_node_t *n)
{
    herd_registry_stats_t st;
    herd_cluster_stats_t cs;
    herd_member_info_t m[NODES + 2];
    if (herd_registry_stats(n, &st) != 0 || herd_cluster_stats(n, &cs) != 0)
        return;
    uint64_t resent = 0;
    int count = herd_cluster_members(n, m, NODES + 2);
    for (int i = 0; i < count && i < NODES + 2; i++) {
        herd_stream_stats_t ss;
        if (herd_cluster_stream_stats(n, herd_node_id_of(m[i].name), &ss) == 0)
            resent += ss.resent;
    }
    fprintf(stderr, "  %s: entries %llu names %llu deltas out %llu in %llu full syncs out %llu "
            "in %llu rejected %llu | frames out %llu in %llu dropped_out %llu bytes out %llu "
            "resent %llu",
            herd_node_name(n), (unsigned long long)st.entries, (unsigned long long)st.names,
            (unsigned long long)st.deltas_out, (unsigned long long)st.deltas_in,
            (unsigned long long)st.full_syncs_out, (unsigned long long)st.full_syncs_in,
            (unsigned long long)st.rejected, (unsigned long long)cs.frames_out,
            (unsigned long long)cs.frames_in, (unsigned long long)cs.dropped_out,
            (unsigned long long)cs.bytes_out, (unsigned long long)resent);
    for (int i = 0; i < 16; i++)
        if (cs.rejected[i] && herd_cluster_reject_name(i))
            fprintf(stderr, " rejected[%s] %llu", herd_cluster_reject_name(i),
                    (unsigned long long)cs.rejected[i]);
    fputc('\n', stderr);
}
