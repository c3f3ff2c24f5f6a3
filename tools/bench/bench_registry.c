/*
 * bench_registry - what herd's global name registry costs.
 *
 * The workload Horde 0.10 and syn 3.4 were measured with:
 * - convergence: 3 nodes on loopback (one program, one shared loop), each
 *   registering its own idle processes under distinct names at the same
 *   time (TURN_BATCH names on each node in turn, the loop not run in
 *   between); the clock runs from the first register until every node holds
 *   every name (its entry count, which is O(1) to read). The processes are
 *   spawned and the names formatted before the clock; every run has fresh
 *   nodes. register_s is the registering alone.
 * - whereis of random existing names on a node holding 100,000 names. The
 *   names to look up are laid out one after another beforehand, so the
 *   caller's side is a sequential read and what is timed is the lookup.
 * - memory per registration: RSS after spawning the processes, then after
 *   registering them; the difference over the count. Measured first, while
 *   the heap is fresh.
 *
 *   bench registry <metric> <value> <unit> [key=value ...]
 *
 * --quick divides every size by 10 and runs each figure once (the ctest
 * smoke run); --verbose prints each run on stderr; --only single|converge|
 * converge_large runs one part. The cluster's failure detector is made
 * lenient (see make_node); --default-timeouts keeps its defaults. Every wait
 * has a deadline: a registry that stops converging fails the run (with each
 * node's counters) instead of hanging it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herd_registry.h"

#define NODES 3
#define TURN_BATCH 1000 /* names registered on one node per turn */
#define CONVERGE_DEADLINE_S 20.0
#define JOIN_DEADLINE_S 15.0

static int verbose;          /* --verbose: each run's figures on stderr */
static int default_timeouts; /* --default-timeouts: the default failure detector */

static const herd_behaviour_t idle = {.name = "bench-idle"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_registry: %s failed (%d: %s)\n", what, rc,
            rc < 0 ? herd_strerror(rc) : "-");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%lu %lu", &size, &resident) != 2)
        die("reading /proc/self/statm", 0);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- names ---------------------------------------------------------------------- */

/* `count` distinct names "<prefix>-worker-<i>" in one block: the caller's
 * memory, made before any clock or RSS reading. */
typedef struct names {
    char **at;
    char *text;
    size_t count, total_len;
} names_t;

static names_t names_make(const char *prefix, size_t count)
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

static void names_free(names_t *ns)
{
    free(ns->at);
    free(ns->text);
}

static void spawn_idle(herd_node_t *n, herd_pid_t *pids, size_t count)
{
    herd_spawn_opts_t o = {.behaviour = &idle};
    for (size_t i = 0; i < count; i++) {
        int rc = herd_spawn(n, &o, &pids[i]);
        if (rc != 0)
            die("herd_spawn", rc);
    }
}

/* ---- a cluster of three nodes on one loop --------------------------------------- */

static int next_port;

static herd_node_t *make_node(uv_loop_t *loop, const char *name, const char *seed,
                              char *listen, size_t listen_cap)
{
    static const char secret[] = "bench-registry-secret-0123456789";
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

static int all_up(herd_node_t *n)
{
    herd_member_info_t m[NODES + 1];
    int count = herd_cluster_members(n, m, NODES + 1);
    if (count != NODES)
        return 0;
    for (int i = 0; i < count; i++)
        if (m[i].state != HERD_MEMBER_UP)
            return 0;
    return 1;
}

static void make_cluster(uv_loop_t *loop, herd_node_t **nodes)
{
    char first[64], other[64];
    nodes[0] = make_node(loop, "bench-a", NULL, first, sizeof(first));
    for (int k = 1; k < NODES; k++) {
        char name[16];
        snprintf(name, sizeof(name), "bench-%c", 'a' + k);
        nodes[k] = make_node(loop, name, first, other, sizeof(other));
    }
    double deadline = now_s() + JOIN_DEADLINE_S;
    for (;;) {
        int up = 1;
        for (int k = 0; k < NODES; k++)
            up = up && all_up(nodes[k]);
        if (up)
            break;
        if (now_s() > deadline)
            die("the three nodes joining", 0);
        herd_node_run_for(nodes[0], 10);
    }
    herd_node_run_for(nodes[0], 50); /* the (empty) state syncs of the joins */
}

static void free_cluster(uv_loop_t *loop, herd_node_t **nodes)
{
    for (int k = NODES - 1; k >= 0; k--)
        herd_node_free(nodes[k]);
    for (int i = 0; i < 1000 && uv_loop_close(loop) == UV_EBUSY; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

static uint64_t entries_of(herd_node_t *n)
{
    herd_registry_stats_t st;
    int rc = herd_registry_stats(n, &st);
    if (rc != 0)
        die("herd_registry_stats", rc);
    return st.entries;
}

/* What a node holds and what went through it: why a run did not converge. */
static void report_node(herd_node_t *n)
{
    herd_registry_stats_t st;
    herd_cluster_stats_t cs;
    if (herd_registry_stats(n, &st) != 0 || herd_cluster_stats(n, &cs) != 0)
        return;
    fprintf(stderr, "  %s: entries %llu names %llu deltas out %llu in %llu full syncs out %llu "
            "in %llu rejected %llu | frames out %llu in %llu dropped_out %llu",
            herd_node_name(n), (unsigned long long)st.entries, (unsigned long long)st.names,
            (unsigned long long)st.deltas_out, (unsigned long long)st.deltas_in,
            (unsigned long long)st.full_syncs_out, (unsigned long long)st.full_syncs_in,
            (unsigned long long)st.rejected, (unsigned long long)cs.frames_out,
            (unsigned long long)cs.frames_in, (unsigned long long)cs.dropped_out);
    for (int i = 0; i < 16; i++)
        if (cs.rejected[i] && herd_cluster_reject_name(i))
            fprintf(stderr, " rejected[%s] %llu", herd_cluster_reject_name(i),
                    (unsigned long long)cs.rejected[i]);
    fputc('\n', stderr);
}

/* ---- convergence ------------------------------------------------------------------ */

typedef struct converge_result {
    double register_s, converge_s;
} converge_result_t;

/* One run on fresh nodes: every node registers names[k] for its own processes,
 * a batch per node in turn; then the loop runs until each node holds all. */
static converge_result_t converge_run(names_t *names, size_t per_node)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        die("uv_loop_init", 0);
    herd_node_t *nodes[NODES];
    make_cluster(&loop, nodes);
    herd_pid_t *pids[NODES];
    for (int k = 0; k < NODES; k++) {
        if ((pids[k] = malloc(per_node * sizeof(herd_pid_t))) == NULL)
            die("allocating pids", HERD_ENOMEM);
        spawn_idle(nodes[k], pids[k], per_node);
    }
    herd_node_run_for(nodes[0], 10);
    const uint64_t total = (uint64_t)per_node * NODES;

    converge_result_t r;
    double t0 = now_s();
    for (size_t off = 0; off < per_node; off += TURN_BATCH) {
        size_t end = off + TURN_BATCH < per_node ? off + TURN_BATCH : per_node;
        for (int k = 0; k < NODES; k++)
            for (size_t i = off; i < end; i++) {
                int rc = herd_register(nodes[k], names[k].at[i], pids[k][i], NULL);
                if (rc != 0)
                    die("herd_register", rc);
            }
    }
    double t1 = now_s();
    r.register_s = t1 - t0;
    double deadline = t1 + CONVERGE_DEADLINE_S;
    for (;;) {
        int done = 1;
        for (int k = 0; k < NODES && done; k++)
            done = entries_of(nodes[k]) == total;
        if (done)
            break;
        if (now_s() > deadline) {
            fprintf(stderr, "bench_registry: no convergence after %.0f s (%llu names)\n",
                    CONVERGE_DEADLINE_S, (unsigned long long)total);
            for (int k = 0; k < NODES; k++)
                report_node(nodes[k]);
            exit(1);
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    r.converge_s = now_s() - t0;
    if (verbose)
        fprintf(stderr, "  run: names=%llu register_s %.3f converge_s %.3f\n",
                (unsigned long long)total, r.register_s, r.converge_s);

    /* every node finds a sample of every node's names, at the right pid */
    for (int k = 0; k < NODES; k++)
        for (size_t i = 0; i < per_node; i += per_node / 97 + 1)
            for (int at = 0; at < NODES; at++) {
                herd_pid_t p;
                int rc = herd_whereis(nodes[at], names[k].at[i], &p, NULL);
                if (rc != 0 || !herd_pid_equal(p, pids[k][i]))
                    die("whereis after convergence", rc);
            }
    free_cluster(&loop, nodes);
    for (int k = 0; k < NODES; k++)
        free(pids[k]);
    return r;
}

static void bench_converge(size_t per_node, int runs)
{
    names_t names[NODES];
    for (int k = 0; k < NODES; k++) {
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "%c", 'a' + k);
        names[k] = names_make(prefix, per_node);
    }
    double reg[8], conv[8];
    for (int i = 0; i < runs; i++) {
        converge_result_t r = converge_run(names, per_node);
        reg[i] = r.register_s;
        conv[i] = r.converge_s;
    }
    size_t total = per_node * NODES;
    printf("bench registry converge_s %.3f s nodes=%d names=%zu runs=%d\n",
           median(conv, (size_t)runs), NODES, total, runs);
    printf("bench registry register_s %.3f s nodes=%d names=%zu runs=%d\n",
           median(reg, (size_t)runs), NODES, total, runs);
    fflush(stdout);
    for (int k = 0; k < NODES; k++)
        names_free(&names[k]);
}

/* ---- one node: memory per registration, then whereis ----------------------------- */

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The same lookups through herd_whereis_many, BATCH names a call. */
static void bench_batch(herd_node_t *n, const char *stream, size_t lookups, size_t count,
                        int runs)
{
    enum { BATCH = 256 };
    const char **names = malloc(lookups * sizeof(*names));
    herd_pid_t pids[BATCH];
    int status[BATCH];
    double rate[8];
    if (names == NULL)
        die("allocating the batch", HERD_ENOMEM);
    for (size_t i = 0, off = 0; i < lookups; i++, off += strlen(stream + off) + 1)
        names[i] = stream + off;
    for (int r = 0; r < runs; r++) {
        size_t found = 0;
        double t0 = now_s();
        for (size_t i = 0; i < lookups; i += BATCH) {
            size_t k = lookups - i < BATCH ? lookups - i : BATCH;
            found += (size_t)herd_whereis_many(n, names + i, k, pids, status);
        }
        rate[r] = (double)lookups / (now_s() - t0);
        if (found != lookups)
            die("herd_whereis_many", HERD_ENOENT);
    }
    free(names);
    printf("bench registry whereis_batch_per_s %.0f lookups/s names=%zu lookups=%zu batch=%d "
           "runs=%d\n", median(rate, (size_t)runs), count, lookups, BATCH, runs);
    fflush(stdout);
}

static void bench_single(size_t count, size_t lookups, int runs)
{
    names_t ns = names_make("s", count);
    herd_pid_t *pids = malloc(count * sizeof(herd_pid_t));
    if (pids == NULL)
        die("allocating pids", HERD_ENOMEM);
    herd_node_t *n;
    herd_node_config_t nc = {.name = "bench-single"};
    int rc = herd_node_new(&nc, &n);
    if (rc != 0 || (rc = herd_registry_start(n)) != 0)
        die("single node", rc);
    spawn_idle(n, pids, count);
    herd_node_run_for(n, 5);

    size_t rss0 = rss_bytes();
    for (size_t i = 0; i < count; i++)
        if ((rc = herd_register(n, ns.at[i], pids[i], NULL)) != 0)
            die("herd_register", rc);
    herd_node_run_for(n, 5); /* the last pending delta goes */
    size_t rss1 = rss_bytes();
    printf("bench registry registration_bytes %.0f B names=%zu name_len=%.1f\n",
           ((double)rss1 - (double)rss0) / (double)count, count,
           (double)ns.total_len / (double)count);
    fflush(stdout);

    /* The lookups, in order: random existing names copied one after another,
     * so the caller's side is a sequential read (a name it has in hand), and
     * what is timed is the registry's lookup. */
    size_t stream_cap = lookups * (ns.total_len / count + 8), off = 0;
    char *stream = malloc(stream_cap);
    if (stream == NULL)
        die("allocating the lookup stream", HERD_ENOMEM);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < lookups; i++) {
        const char *name = ns.at[((xorshift64(&seed) >> 32) * (uint64_t)count) >> 32];
        size_t len = strlen(name) + 1;
        if (off + len > stream_cap)
            die("sizing the lookup stream", 0);
        memcpy(stream + off, name, len);
        off += len;
    }
    double rate[8];
    uint64_t check = 0;
    for (int r = 0; r < runs; r++) {
        const char *name = stream;
        double t0 = now_s();
        for (size_t i = 0; i < lookups; i++) {
            herd_pid_t p;
            if ((rc = herd_whereis(n, name, &p, NULL)) != 0)
                die("herd_whereis", rc);
            check += p.serial;
            name += strlen(name) + 1;
        }
        rate[r] = (double)lookups / (now_s() - t0);
        if (verbose)
            fprintf(stderr, "  run: whereis_per_s %.0f\n", rate[r]);
    }
    if (check == 0)
        die("whereis results", 0);
    printf("bench registry whereis_per_s %.0f lookups/s names=%zu lookups=%zu runs=%d\n",
           median(rate, (size_t)runs), count, lookups, runs);
    fflush(stdout);
    bench_batch(n, stream, lookups, count, runs);
    free(stream);
    herd_node_free(n);
    free(pids);
    names_free(&ns);
}

int main(int argc, char **argv)
{
    int quick = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--default-timeouts") == 0) {
            default_timeouts = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_registry [--quick] [--verbose] [--default-timeouts] "
                            "[--only single|converge|converge_large]\n");
            return 2;
        }
    }
    size_t scale = quick ? 10 : 1;
    int runs = quick ? 1 : 3;
    next_port = 20000 + (int)(((uint64_t)(now_s() * 1000) ^ ((uint64_t)getpid() << 7)) % 30000);

    /* first, while the heap is fresh: freed memory of earlier figures would
     * hide the registry's growth from RSS */
    if (only == NULL || strcmp(only, "single") == 0)
        bench_single(100000 / scale, 2000000 / scale, runs);
    if (only == NULL || strcmp(only, "converge") == 0)
        bench_converge(10000 / scale, runs);
    if (only == NULL || strcmp(only, "converge_large") == 0)
        bench_converge(100000 / scale, 1);
    return 0;
}
