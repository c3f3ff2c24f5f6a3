/*
 * bench_groups - what herd's process groups cost (herd_group.h).
 *
 * - membership_bytes: one node, no cluster: MEMBERSHIPS idle processes
 *   joined to GROUPS groups (as many in each); the RSS growth over the
 *   memberships (the group names' bytes are in it). Measured first, while
 *   the heap is fresh.
 * - join: 3 nodes on loopback (one program, one shared loop), each joining
 *   JOINS of its own idle processes to one group at the same time (TURN
 *   joins on each node in turn, the loop not run in between); join_converge_s
 *   runs from the first join until every node counts every member
 *   (herd_group_count, O(1)); join_s is the joining alone. Fresh nodes each
 *   run; the median of RUNS.
 * - publish: PUBLISH_MEMBERS counting processes spread evenly over the 3
 *   nodes in one group; node a publishes PUBLISH_MSGS messages of 64 bytes
 *   (PUBLISH_BATCH at a time, the loop run between batches); from the first
 *   publish until every member counted every message: deliveries per
 *   second (messages x members / time). Each other node gets one message
 *   a publish (herd_node_cast_many), which carries the bytes once.
 * - multi_call: CALL_MEMBERS answering processes spread over the 3 nodes;
 *   from herd_group_multi_call until its callback has every answer; the
 *   median of RUNS.
 *
 *   bench groups <metric> <value> <unit> [key=value ...]
 *
 * --quick divides every size by 10 and runs each figure once (the ctest
 * smoke run); --only membership|join|publish|multi_call runs one part.
 * Every wait has a deadline: a run that stops making progress fails with
 * what each node holds instead of hanging.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_nodes.h"
#include "herd_group.h"

#define MEMBERSHIPS 100000
#define GROUPS 100
#define JOINS 10000 /* per node */
#define TURN 1000
#define PUBLISH_MEMBERS 10000
#define PUBLISH_MSGS 200
#define PUBLISH_BATCH 10
#define CALL_MEMBERS 1000
#define CALL_TIMEOUT_MS 10000u
#define DEADLINE_S 60.0

static int quick;
static size_t scale = 1;
static int runs = 3;

/* ---- membership bytes ---------------------------------------------------------- */

static void bench_membership(size_t count, size_t groups)
{
    herd_node_t *n = solo_registry_node("bench-mem");
    int rc;
    herd_pid_t *pids = malloc(count * sizeof(*pids));
    char(*names)[32] = malloc(groups * sizeof(*names));
    if (pids == NULL || names == NULL)
        die("allocating", HERD_ENOMEM);
    size_t name_bytes = 0;
    for (size_t g = 0; g < groups; g++)
        name_bytes += (size_t)snprintf(names[g], sizeof(names[g]), "bench-group-%zu", g);
    spawn_idle(n, pids, count);
    herd_node_run_for(n, 5);
    size_t rss0 = rss_bytes();
    for (size_t i = 0; i < count; i++)
        if ((rc = herd_group_join(n, names[i % groups], pids[i], NULL)) != 0)
            die("herd_group_join", rc);
    herd_node_run_for(n, 5);
    size_t rss1 = rss_bytes();
    for (size_t g = 0; g < groups; g++)
        if (herd_group_count(n, names[g]) != (int)(count / groups))
            die("a group's count after the joins", herd_group_count(n, names[g]));
    printf("bench groups membership_bytes %.0f B memberships=%zu groups=%zu group_len=%.1f\n",
           ((double)rss1 - (double)rss0) / (double)count, count, groups,
           (double)name_bytes / (double)groups);
    herd_node_free(n);
    free(pids);
    free(names);
}

/* ---- the cluster's figures ------------------------------------------------------ */

static int counts_reach(herd_node_t **nodes, const char *group, int want)
{
    for (int k = 0; k < NODES; k++)
        if (herd_group_count(nodes[k], group) != want)
            return 0;
    return 1;
}

static void wait_counts(herd_node_t **nodes, const char *group, int want)
{
    double deadline = now_s() + DEADLINE_S;
    while (!counts_reach(nodes, group, want)) {
        if (now_s() > deadline) {
            for (int k = 0; k < NODES; k++) {
                fprintf(stderr, "  %s counts %d of %d\n", herd_node_name(nodes[k]),
                        herd_group_count(nodes[k], group), want);
                report_node(nodes[k]);
            }
            die("the group's members reaching every node", 0);
        }
        herd_node_run_for(nodes[0], 1);
    }
}

static void spawn_each(herd_node_t **nodes, herd_pid_t **pids, size_t per_node,
                       const herd_behaviour_t *b)
{
    herd_spawn_opts_t o = {.behaviour = b};
    for (int k = 0; k < NODES; k++) {
        pids[k] = malloc(per_node * sizeof(herd_pid_t));
        if (pids[k] == NULL)
            die("allocating", HERD_ENOMEM);
        for (size_t i = 0; i < per_node; i++) {
            int rc = herd_spawn(nodes[k], &o, &pids[k][i]);
            if (rc != 0)
                die("herd_spawn", rc);
        }
    }
}

static void join_each(herd_node_t **nodes, herd_pid_t **pids, size_t per_node, const char *g)
{
    for (size_t from = 0; from < per_node; from += TURN)
        for (int k = 0; k < NODES; k++)
            for (size_t i = from; i < from + TURN && i < per_node; i++) {
                int rc = herd_group_join(nodes[k], g, pids[k][i], NULL);
                if (rc != 0)
                    die("herd_group_join", rc);
            }
}

static void free_pids(herd_pid_t **pids)
{
    for (int k = 0; k < NODES; k++)
        free(pids[k]);
}

static void bench_join(size_t per_node)
{
    double conv[3], join[3];
    for (int r = 0; r < runs; r++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        herd_node_t *nodes[NODES];
        herd_pid_t *pids[NODES];
        char first[64];
        make_cluster(&loop, nodes, first, sizeof(first));
        spawn_each(nodes, pids, per_node, &bench_idle);
        herd_node_run_for(nodes[0], 5);
        double t0 = now_s();
        join_each(nodes, pids, per_node, "bench-room");
        join[r] = now_s() - t0;
        wait_counts(nodes, "bench-room", (int)(per_node * NODES));
        conv[r] = now_s() - t0;
        if (verbose)
            fprintf(stderr, "  join run %d: converge %.3f s, join %.3f s\n", r, conv[r], join[r]);
        free_cluster(&loop, nodes, NODES);
        free_pids(pids);
    }
    printf("bench groups join_converge_s %.3f s nodes=%d joins=%zu runs=%d\n",
           median(conv, (size_t)runs), NODES, per_node * NODES, runs);
    printf("bench groups join_s %.3f s nodes=%d joins=%zu runs=%d\n", median(join, (size_t)runs),
           NODES, per_node * NODES, runs);
}

/* ---- publish -------------------------------------------------------------------- */

static uint64_t delivered; /* casts the counting processes got, every node */

static int count_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    delivered++;
    return 0;
}

static const herd_behaviour_t counting = {.name = "bench-count", .handle_cast = count_cast};

static void bench_publish(size_t members, size_t msgs)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    herd_node_t *nodes[NODES];
    herd_pid_t *pids[NODES];
    char first[64];
    size_t per_node = members / NODES + 1;
    make_cluster(&loop, nodes, first, sizeof(first));
    spawn_each(nodes, pids, per_node, &counting);
    size_t total = 0;
    for (int k = 0; k < NODES; k++)
        for (size_t i = 0; i < per_node && total < members; i++, total++) {
            int rc = herd_group_join(nodes[k], "bench-topic", pids[k][i], NULL);
            if (rc != 0)
                die("herd_group_join", rc);
        }
    wait_counts(nodes, "bench-topic", (int)members);
    uint8_t payload[64];
    memset(payload, 'p', sizeof(payload));
    delivered = 0;
    uint64_t want = (uint64_t)msgs * members;
    double t0 = now_s(), deadline = t0 + DEADLINE_S;
    for (size_t sent = 0; sent < msgs;) {
        for (int b = 0; b < PUBLISH_BATCH && sent < msgs; b++, sent++) {
            int rc = herd_group_publish(nodes[0], NULL, "bench-topic", payload, sizeof(payload));
            if (rc != (int)members)
                die("herd_group_publish reaching every member", rc);
        }
        herd_node_run_for(nodes[0], 1);
    }
    while (delivered < want) {
        if (now_s() > deadline) {
            fprintf(stderr, "  delivered %llu of %llu\n", (unsigned long long)delivered,
                    (unsigned long long)want);
            die("every publish reaching every member", 0);
        }
        herd_node_run_for(nodes[0], 1);
    }
    double s = now_s() - t0;
    printf("bench groups publish_deliveries_per_s %.0f deliveries/s members=%zu nodes=%d "
           "msgs=%zu size=%zu\n",
           (double)want / s, members, NODES, msgs, sizeof(payload));
    free_cluster(&loop, nodes, NODES);
    free_pids(pids);
}

/* ---- multi-call ------------------------------------------------------------------ */

static int answer_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    (void)msg;
    return herd_reply(herd_proc_node(self), from, 0, "pong", 4);
}

static const herd_behaviour_t answering = {.name = "bench-answer", .handle_call = answer_call};

typedef struct gathered {
    int done;
    size_t n, ok;
} gathered_t;

static void on_replies(void *data, const herd_group_reply_t *replies, size_t n)
{
    gathered_t *g = data;
    g->done = 1;
    g->n = n;
    for (size_t i = 0; i < n; i++)
        g->ok += replies[i].status == 0 && replies[i].len == 4 &&
                 memcmp(replies[i].data, "pong", 4) == 0;
}

static void bench_multi_call(size_t members)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    herd_node_t *nodes[NODES];
    herd_pid_t *pids[NODES];
    char first[64];
    size_t per_node = members / NODES + 1, total = 0;
    make_cluster(&loop, nodes, first, sizeof(first));
    spawn_each(nodes, pids, per_node, &answering);
    for (int k = 0; k < NODES; k++)
        for (size_t i = 0; i < per_node && total < members; i++, total++) {
            int rc = herd_group_join(nodes[k], "bench-callees", pids[k][i], NULL);
            if (rc != 0)
                die("herd_group_join", rc);
        }
    wait_counts(nodes, "bench-callees", (int)members);
    double t[3];
    for (int r = 0; r < runs; r++) {
        gathered_t g = {0};
        double t0 = now_s(), deadline = t0 + DEADLINE_S;
        int rc = herd_group_multi_call(nodes[0], "bench-callees", "ping", 4, CALL_TIMEOUT_MS,
                                       on_replies, &g);
        if (rc != (int)members)
            die("herd_group_multi_call calling every member", rc);
        while (!g.done) {
            if (now_s() > deadline)
                die("the multi-call's callback", 0);
            herd_node_run_for(nodes[0], 1);
        }
        t[r] = now_s() - t0;
        if (g.n != members || g.ok != members) {
            fprintf(stderr, "  %zu answers, %zu pong, of %zu\n", g.n, g.ok, members);
            die("every member answering", 0);
        }
    }
    printf("bench groups multi_call_ms %.2f ms members=%zu nodes=%d runs=%d\n",
           median(t, (size_t)runs) * 1000.0, members, NODES, runs);
    free_cluster(&loop, nodes, NODES);
    free_pids(pids);
}

/* ---- main --------------------------------------------------------------------------- */

static int part_known(const char *part)
{
    static const char *const parts[] = {"membership", "join", "publish", "multi_call"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcmp(part, parts[i]) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    bench_prog = "bench_groups";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && part_known(argv[i + 1])) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_groups [--quick] [--verbose] "
                            "[--only membership|join|publish|multi_call]\n");
            return 2;
        }
    }
    if (quick) {
        scale = 10;
        runs = 1;
    }
    next_port = 20000 + (int)(((uint64_t)(now_s() * 1000) ^ ((uint64_t)getpid() << 7)) % 30000);
    /* first, while the heap is fresh: the RSS growth is the memberships' */
    if (only == NULL || strcmp(only, "membership") == 0)
        bench_membership(MEMBERSHIPS / scale, GROUPS);
    if (only == NULL || strcmp(only, "join") == 0)
        bench_join(JOINS / scale);
    if (only == NULL || strcmp(only, "publish") == 0)
        bench_publish(PUBLISH_MEMBERS / scale, PUBLISH_MSGS / (quick ? 4 : 1));
    if (only == NULL || strcmp(only, "multi_call") == 0)
        bench_multi_call(CALL_MEMBERS / scale);
    return 0;
}
