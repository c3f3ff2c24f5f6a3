/*
 * bench_soak - three real herdd under churn, kills and partitions for a
 * bounded time: does their memory stay flat, and do their replicas agree
 * once the churn stops?
 *
 * The bench starts herdd hx1, hx2 and hx3 on 127.0.0.1 (random ports, ipc://
 * control sockets in a mkdtemp directory) and, for --seconds, drives them
 * only through their control sockets, at --rate operations per second, each
 * sent to a random node that runs:
 *   - names: `register` / `unregister` of a pool of names (each held by a
 *     small holder process of the node that registered it);
 *   - counters: `start` of the counter service under a pool of names, `call`
 *     "incr" on them, `stop`.
 * Meanwhile:
 *   - every --kill-every seconds hx3 is killed with SIGKILL and, 2 s later,
 *     started again at the same address (a new incarnation);
 *   - every --partition-every seconds one node (hx1, hx2, hx3 in turn) is cut
 *     off from the two others with the `block` control command on both sides,
 *     for a quarter of the period (at most 10 s), then healed with `unblock`.
 * A fault waits while the previous one is still settling (a node down, a
 * partition, members not all up again), and none starts in the last 10 s.
 * Faults are made between two operations, so one may start or end up to an
 * operation's time late (start, call and stop wait up to 5 s in herdd); the
 * fault timeline goes to stderr.
 * Then the churn stops, whatever fault is on is undone, and the bench waits
 * (bounded) until every node lists the same names and the same children
 * (name and pid). The whole run is bounded by an alarm.
 *
 * Figures, one line each (DESIGN.md, "Benchmark output"):
 *   bench soak rss_growth_pct G % node=N after_s=A life_s=L
 *       RSS (VmRSS) at the end against RSS when that process was A seconds
 *       old (L at the end): taken --settle s into the churn (120 s, at most a
 *       third of --seconds) for a node never restarted; a third of
 *       --kill-every (at most --settle) after hx3's last restart.
 *   bench soak heap_growth_pct G % node=N   the same for the allocator's
 *       bytes in use (`stats` memory.heap_in_use): what the node holds, apart
 *       from pages the allocator keeps free (herdd gives those back every
 *       30 s, herdd_memory.h)
 *   bench soak rss_kb / rss_max_kb       at the end / largest seen, per node
 *   bench soak cloud_max / cloud_dots_max   the registry's causal context,
 *                                        largest seen, per node: the largest
 *                                        one replica's cloud (cc_cloud_max)
 *                                        and all clouds' dots (cc_cloud_dots)
 *   bench soak replicas                  largest replica table seen, per node
 *                                        (cc_replicas)
 *   bench soak cloud_dots_end            per node, at quiescence
 *   bench soak max_entries / max_names   largest registry seen on any node
 *   bench soak max_pending               largest count of unacknowledged
 *                                        frames to one peer (`crdt` peers)
 *   bench soak entries_end, pending_end  the same at quiescence
 *   bench soak ops, ops_per_s, failed_ops, kills, partitions
 *   bench soak restart_max_s             hx3 started again -> its ready line
 *   bench soak rejoin_max_s              a restart or an unblock -> every
 *                                        node sees every node up
 *   bench soak converge_s                churn stopped -> replicas agree
 *                                        (on two polls 0.5 s apart)
 *   bench soak children_missing          children hx1 lists that no node runs
 *   bench soak replicas_agree 1|0 bool
 *   bench soak clouds_empty yes|no       every node's clouds empty once the
 *                                        replicas agree (waited for up to
 *                                        CLOUDS_MS, as a sync may be on its way)
 *   bench soak shutdown_s                SIGTERM (drain and leave) -> all exited
 * The registry figures are sampled from `crdt` with the RSS, every SAMPLE_MS.
 * Goals: RSS growth under 5 %, replicas agree (exit 1 when they do not, once
 * every figure is printed), clouds empty at quiescence (printed, not checked:
 * the goal is the issue's).
 *
 * Usage: bench_soak [--seconds N] [--kill-every S] [--partition-every S]
 *                   [--settle S] [--rate OPS] [--seed N] [--herdd PATH] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control_client.h"
#include "soak_node.h"

#ifndef HERDD_PATH
#define HERDD_PATH "herdd"
#endif

#define NODES 3
#define VICTIM 2        /* hx3: the node killed every --kill-every */
#define NAME_POOL 48    /* soak.n.0 .. */
#define COUNTER_POOL 16 /* soak.c.0 .. */
#define READY_MS 20000  /* herdd's ready line */
#define FAST_MS 3000    /* register, unregister, names, crdt, ... */
#define SLOW_MS 7000    /* start, call, stop: herdd waits up to 5 s */
#define DOWN_MS 2000    /* a killed node stays down this long */
#define REJOIN_MS 60000 /* a fault's end -> every member up again */
#define END_REJOIN_MS 30000
#define CONVERGE_MS 45000
#define STOP_MS 35000   /* SIGTERM -> exit: a drain waits up to 30 s */
#define QUIET_TAIL_S 10 /* no fault starts this close to the end */
#define SAMPLE_MS 1000  /* RSS and `crdt` */
#define CHECK_MS 200
#define CLOUDS_MS 5000 /* replicas agree -> clouds empty everywhere */

typedef soak_node_t node_t;

/* A node's RSS: the baseline of its current start, the largest seen. */
typedef struct rss {
    long base_kb;
    int base_start; /* the start the baseline belongs to, 0: none */
    double base_after_s;
    long max_kb;
    long long base_heap; /* the allocator's bytes in use at the baseline (-1: unknown) */
} rss_t;

/* What one `crdt` answer says of a node's replica. */
typedef struct crdt_sample {
    long long entries, names, pending; /* pending: the longest peer queue */
    long long cc_replicas, cc_cloud_dots, cc_cloud_max;
} crdt_sample_t;

/* A node's causal context, the largest seen over all its starts. */
typedef struct context_max {
    long long cloud_max, cloud_dots, replicas;
} context_max_t;

typedef struct opts {
    int seconds, kill_every, partition_every, settle, rate, keep;
    uint64_t seed;
    const char *herdd;
} opts_t;

enum { OP_REGISTER, OP_UNREGISTER, OP_START, OP_INCR, OP_STOP, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"register", "unregister", "start", "incr",
                                               "stop"};

typedef enum fault { FAULT_NONE, FAULT_KILLED, FAULT_SPLIT, FAULT_REJOIN } fault_t;

typedef struct soak {
    opts_t o;
    char dir[256];
    char cookie[300];
    node_t node[NODES];
    rss_t rss[NODES];
    context_max_t cc[NODES];
    uint64_t rng;
    /* churn: what the bench believes of its pools */
    unsigned char name_held[NAME_POOL], counter_on[COUNTER_POOL];
    uint64_t ok[OP_COUNT], failed[OP_COUNT], timeouts;
    struct {
        char code[32];
        uint64_t count;
    } codes[16]; /* why operations failed: "OP:CODE", "OP:none" for no answer */
    int ncodes;
    /* faults */
    fault_t fault;
    uint64_t fault_at_ms, heal_at_ms, healed_ms, check_ms, next_kill_ms, next_split_ms;
    int isolated, kills, splits, rejoin_timeouts, healed_kill;
    double rejoin_max_s, restart_max_s;
    /* registry figures */
    long long max_entries, max_names, max_pending;
    char max_entries_node[16];
} soak_t;

static uint64_t rnd(soak_t *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dull;
}

/* A first start on a random port (another one if it cannot bind), or a
 * restart at the same address (tried again while the port is briefly
 * taken). */
static int start_node(soak_t *s, node_t *n, int first)
{
    for (int attempt = 0; attempt < 6; attempt++) {
        int port = first ? 20000 + (int)(rnd(s) % 40001u) : 0;
        if (soak_node_start(n, port, READY_MS) == 0) return 0;
        soak_sleep_ms(300);
    }
    fprintf(stderr, "bench_soak: herdd %s did not get ready (log %s)\n", n->name, n->log);
    return -1;
}

/* ---- asking nodes ------------------------------------------------------------------ */

/* The node's answer (a new reference), or NULL with code "" (no answer) or
 * the error's name. `args` is stolen. */
static json_t *ask(soak_t *s, const node_t *n, const char *cmd, json_t *args,
                   int timeout_ms, char *code, size_t cap)
{
    control_reply_t r;
    control_request(n->control, cmd, args, timeout_ms, &r);
    json_decref(args);
    if (code) snprintf(code, cap, "%s", r.outcome == CONTROL_REFUSED ? r.code : "");
    if (r.outcome == CONTROL_UNREACHABLE) s->timeouts++;
    return r.outcome == CONTROL_OK ? r.result : NULL;
}

/* Whether n lists every node as up. */
static int sees_all_up(soak_t *s, const node_t *n)
{
    json_t *m = ask(s, n, "members", NULL, FAST_MS, NULL, 0);
    int up = 0;
    size_t i;
    json_t *e;
    json_array_foreach(m, i, e)
    {
        const char *state = json_string_value(json_object_get(e, "state"));
        up += state && strcmp(state, "up") == 0;
    }
    json_decref(m);
    return up == NODES;
}

static int all_up(soak_t *s)
{
    for (int i = 0; i < NODES; i++)
        if (!soak_node_alive(&s->node[i], NULL) || !sees_all_up(s, &s->node[i])) return 0;
    return 1;
}

/* x and y stop hearing each other, or hear each other again. */
static void cut(soak_t *s, int x, int y, int on)
{
    const char *cmd = on ? "block" : "unblock";
    json_decref(ask(s, &s->node[x], cmd, json_pack("{s:s}", "node", s->node[y].name),
                    FAST_MS, NULL, 0));
    json_decref(ask(s, &s->node[y], cmd, json_pack("{s:s}", "node", s->node[x].name),
                    FAST_MS, NULL, 0));
}

/* ---- churn ------------------------------------------------------------------------- */

static node_t *random_live(soak_t *s)
{
    int start = (int)(rnd(s) % NODES);
    for (int k = 0; k < NODES; k++) {
        node_t *n = &s->node[(start + k) % NODES];
        if (n->pid > 0) return n;
    }
    return NULL;
}

static void count(soak_t *s, int op, json_t *res, const char *code)
{
    if (res) {
        s->ok[op]++;
        json_decref(res);
        return;
    }
    s->failed[op]++;
    char key[32];
    snprintf(key, sizeof(key), "%s:%s", op_names[op], code[0] ? code : "none");
    int i = 0;
    while (i < s->ncodes && strcmp(s->codes[i].code, key) != 0)
        i++;
    if (i == s->ncodes && s->ncodes < (int)(sizeof(s->codes) / sizeof(s->codes[0])))
        snprintf(s->codes[s->ncodes++].code, sizeof(s->codes[0].code), "%s", key);
    if (i < s->ncodes) s->codes[i].count++;
}

static void churn_name(soak_t *s, node_t *n)
{
    int k = (int)(rnd(s) % NAME_POOL);
    char name[32], code[32];
    snprintf(name, sizeof(name), "soak.n.%d", k);
    int op = s->name_held[k] ? OP_UNREGISTER : OP_REGISTER;
    json_t *res = ask(s, n, op_names[op], json_pack("{s:s}", "name", name), FAST_MS, code,
                      sizeof(code));
    if (res || strcmp(code, "EEXIST") == 0)
        s->name_held[k] = op == OP_REGISTER;
    else if (strcmp(code, "ENOENT") == 0)
        s->name_held[k] = 0; /* its holder went with a killed node */
    count(s, op, res, code);
}

static void churn_counter(soak_t *s, node_t *n)
{
    int k = (int)(rnd(s) % COUNTER_POOL);
    char name[32], code[32];
    snprintf(name, sizeof(name), "soak.c.%d", k);
    int op = !s->counter_on[k] ? OP_START : rnd(s) % 8 == 0 ? OP_STOP : OP_INCR;
    json_t *args =
        op == OP_START  ? json_pack("{s:s, s:s}", "service", "counter", "name", name)
        : op == OP_INCR ? json_pack("{s:s, s:s}", "name", name, "request", "incr")
                        : json_pack("{s:s}", "name", name);
    const char *cmd = op == OP_START ? "start" : op == OP_INCR ? "call" : "stop";
    json_t *res = ask(s, n, cmd, args, SLOW_MS, code, sizeof(code));
    if (res)
        s->counter_on[k] = op != OP_STOP;
    else if (op == OP_STOP && strcmp(code, "ENOENT") == 0)
        s->counter_on[k] = 0;
    count(s, op, res, code);
}

/* ---- samples ----------------------------------------------------------------------- */

/* The allocator's bytes in use in a node (`stats`' memory.heap_in_use), or
 * -1 when it does not say. */
static long long heap_in_use(soak_t *s, node_t *n)
{
    json_t *st = ask(s, n, "stats", NULL, FAST_MS, NULL, 0);
    json_t *v = st ? json_object_get(json_object_get(st, "memory"), "heap_in_use") : NULL;
    long long bytes = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(st);
    return bytes;
}

static void sample_rss(soak_t *s, uint64_t t0)
{
    for (int i = 0; i < NODES; i++) {
        node_t *n = &s->node[i];
        rss_t *r = &s->rss[i];
        if (!soak_node_alive(n, NULL)) continue;
        long kb = soak_rss_kb(n->pid);
        if (kb > r->max_kb) r->max_kb = kb;
        /* the baseline: settle s into the run for a first start, less for
         * a restarted node (it lives about one kill period) */
        double after = n->starts == 1 ? s->o.settle : s->o.kill_every / 3.0;
        if (after > s->o.settle) after = s->o.settle;
        uint64_t from = n->starts == 1 ? t0 : n->started_ms, now = soak_now_ms();
        if (r->base_start != n->starts && kb > 0 &&
            now >= from + (uint64_t)(after * 1000)) {
            r->base_kb = kb;
            r->base_heap = heap_in_use(s, n);
            r->base_start = n->starts;
            r->base_after_s = (double)(now - n->started_ms) / 1000.0;
        }
    }
}

/* One node's `crdt`; -1 if it does not answer. */
static int crdt_of(soak_t *s, node_t *n, crdt_sample_t *out)
{
    json_t *c = ask(s, n, "crdt", NULL, FAST_MS, NULL, 0);
    if (c == NULL) return -1;
    out->entries = json_integer_value(json_object_get(c, "entries"));
    out->names = json_integer_value(json_object_get(c, "names"));
    out->cc_replicas = json_integer_value(json_object_get(c, "cc_replicas"));
    out->cc_cloud_dots = json_integer_value(json_object_get(c, "cc_cloud_dots"));
    out->cc_cloud_max = json_integer_value(json_object_get(c, "cc_cloud_max"));
    out->pending = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "peers"), i, p)
    {
        long long q = json_integer_value(json_object_get(p, "pending"));
        if (q > out->pending) out->pending = q;
    }
    json_decref(c);
    return 0;
}

static void keep_max(long long *max, long long v)
{
    if (v > *max) *max = v;
}

static void sample_crdt(soak_t *s)
{
    for (int i = 0; i < NODES; i++) {
        node_t *n = &s->node[i];
        crdt_sample_t c;
        if (n->pid <= 0 || crdt_of(s, n, &c) != 0) continue;
        if (c.entries > s->max_entries) {
            s->max_entries = c.entries;
            snprintf(s->max_entries_node, sizeof(s->max_entries_node), "%s", n->name);
        }
        keep_max(&s->max_names, c.names);
        keep_max(&s->max_pending, c.pending);
        keep_max(&s->cc[i].cloud_max, c.cc_cloud_max);
        keep_max(&s->cc[i].cloud_dots, c.cc_cloud_dots);
        keep_max(&s->cc[i].replicas, c.cc_replicas);
    }
}

/* Whether every node's clouds are empty, waiting up to CLOUDS_MS (a digest
 * sync may still be on its way once the names agree). */
static int clouds_empty(soak_t *s)
{
    for (uint64_t deadline = soak_now_ms() + CLOUDS_MS;; soak_sleep_ms(200)) {
        int empty = 0;
        crdt_sample_t c;
        for (int i = 0; i < NODES; i++)
            empty += crdt_of(s, &s->node[i], &c) == 0 && c.cc_cloud_dots == 0;
        if (empty == NODES) return 1;
        if (soak_now_ms() >= deadline) return 0;
    }
}

/* ---- faults ------------------------------------------------------------------------ */

/* One step of the fault schedule at t ms into the churn. */
static void faults_step(soak_t *s, uint64_t t, uint64_t end)
{
    uint64_t now = soak_now_ms();
    switch (s->fault) {
    case FAULT_NONE:
        if (t + QUIET_TAIL_S * 1000u > end) return;
        if (t >= s->next_kill_ms) {
            soak_node_kill9(&s->node[VICTIM]);
            s->kills++;
            fprintf(stderr, "bench_soak: %6.1f s: SIGKILL %s\n", (double)t / 1000.0,
                    s->node[VICTIM].name);
            s->fault = FAULT_KILLED;
            s->fault_at_ms = now;
            s->next_kill_ms += (uint64_t)s->o.kill_every * 1000u;
        } else if (t >= s->next_split_ms) {
            s->isolated = s->splits % NODES;
            for (int i = 0; i < NODES; i++)
                if (i != s->isolated) cut(s, s->isolated, i, 1);
            s->splits++;
            fprintf(stderr, "bench_soak: %6.1f s: %s cut off\n", (double)t / 1000.0,
                    s->node[s->isolated].name);
            s->fault = FAULT_SPLIT;
            s->fault_at_ms = now;
            uint64_t hold = (uint64_t)s->o.partition_every * 1000u / 4;
            s->heal_at_ms = now + (hold > 10000 ? 10000 : hold);
            s->next_split_ms += (uint64_t)s->o.partition_every * 1000u;
        }
        return;
    case FAULT_KILLED:
        if (now >= s->fault_at_ms + DOWN_MS) {
            if (start_node(s, &s->node[VICTIM], 0) != 0) s->rejoin_timeouts++;
            s->fault = FAULT_REJOIN;
            s->healed_ms = soak_now_ms();
            s->healed_kill = 1;
            double took = (double)(s->healed_ms - now) / 1000.0;
            if (took > s->restart_max_s) s->restart_max_s = took;
        }
        return;
    case FAULT_SPLIT:
        if (now >= s->heal_at_ms) {
            for (int i = 0; i < NODES; i++)
                if (i != s->isolated) cut(s, s->isolated, i, 0);
            s->fault = FAULT_REJOIN;
            s->healed_ms = soak_now_ms();
            s->healed_kill = 0;
        }
        return;
    case FAULT_REJOIN: {
        if (now < s->check_ms) return; /* asking members: at most every CHECK_MS */
        s->check_ms = now + CHECK_MS;
        int up = all_up(s);
        double took = (double)(soak_now_ms() - s->healed_ms) / 1000.0;
        if (up && took > s->rejoin_max_s) s->rejoin_max_s = took;
        if (!up && now - s->healed_ms > REJOIN_MS) {
            s->rejoin_timeouts++;
            fprintf(stderr, "bench_soak: members not all up %.0f s after a fault\n",
                    took);
            up = 1;
        }
        if (up) {
            fprintf(stderr, "bench_soak: %6.1f s: all up again, %.1f s after the %s\n",
                    (double)t / 1000.0, took, s->healed_kill ? "restart" : "heal");
            s->fault = FAULT_NONE;
        }
        return;
    }
    }
}

/* Undo whatever fault is on and wait (bounded) for every member to be up. */
static int faults_end(soak_t *s)
{
    if (s->fault == FAULT_SPLIT)
        for (int i = 0; i < NODES; i++)
            if (i != s->isolated) cut(s, s->isolated, i, 0);
    for (int i = 0; i < NODES; i++)
        if (!soak_node_alive(&s->node[i], NULL) && start_node(s, &s->node[i], 0) != 0)
            return -1;
    s->fault = FAULT_NONE;
    for (uint64_t deadline = soak_now_ms() + END_REJOIN_MS; soak_now_ms() < deadline;
         soak_sleep_ms(200))
        if (all_up(s)) return 0;
    return -1;
}

/* ---- agreement --------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A node's list (`names` or `children`) as one canonical string of sorted
 * "name pid" lines (malloc'd), NULL when the node does not answer. */
static char *canonical(soak_t *s, node_t *n, const char *cmd)
{
    json_t *list = ask(s, n, cmd, NULL, FAST_MS, NULL, 0);
    if (!json_is_array(list)) {
        json_decref(list);
        return NULL;
    }
    size_t count = json_array_size(list), total = 1;
    char **lines = calloc(count + 1, sizeof(*lines));
    for (size_t i = 0; lines && i < count; i++) {
        json_t *e = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *pid = json_string_value(json_object_get(e, "pid"));
        size_t len = strlen(name ? name : "?") + strlen(pid ? pid : "-") + 3;
        if ((lines[i] = malloc(len)) != NULL)
            snprintf(lines[i], len, "%s %s\n", name ? name : "?", pid ? pid : "-");
        total += lines[i] ? len : 0;
    }
    char *out = lines ? malloc(total) : NULL;
    if (out) {
        out[0] = '\0';
        qsort(lines, count, sizeof(*lines), cmp_str);
        for (size_t i = 0; i < count; i++)
            if (lines[i]) strcat(out, lines[i]);
    }
    for (size_t i = 0; lines && i < count; i++)
        free(lines[i]);
    free(lines);
    json_decref(list);
    return out;
}

/* Whether every node's list `cmd` is the same. */
static int lists_agree(soak_t *s, const char *cmd)
{
    char *first = canonical(s, &s->node[0], cmd);
    int same = first != NULL;
    for (int i = 1; same && i < NODES; i++) {
        char *other = canonical(s, &s->node[i], cmd);
        same = other && strcmp(first, other) == 0;
        free(other);
    }
    free(first);
    return same;
}

/* Poll until names and children agree everywhere on two polls in a row
 * (not a passing moment); 0 then, -1 at the deadline. */
static int wait_agree(soak_t *s)
{
    int streak = 0;
    for (uint64_t deadline = soak_now_ms() + CONVERGE_MS; soak_now_ms() < deadline;
         soak_sleep_ms(500)) {
        streak = lists_agree(s, "names") && lists_agree(s, "children") ? streak + 1 : 0;
        if (streak == 2) return 0;
    }
    return -1;
}

/* Children that hx1 lists with no registration (no node runs them). */
static long children_missing(soak_t *s)
{
    json_t *list = ask(s, &s->node[0], "children", NULL, FAST_MS, NULL, 0);
    long missing = list ? 0 : -1;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) missing +=
        json_string_value(json_object_get(e, "pid")) == NULL;
    json_decref(list);
    return missing;
}

/* ---- the run ------------------------------------------------------------------------
 */

static int setup(soak_t *s)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/herd-soak-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL)
        return fprintf(stderr, "bench_soak: mkdtemp: %s\n", strerror(errno)), -1;
    snprintf(s->cookie, sizeof(s->cookie), "%s/cookie", s->dir);
    int fd = open(s->cookie, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char secret[33];
    for (int i = 0; i < 32; i++)
        secret[i] = (char)('a' + rnd(s) % 26);
    secret[32] = '\n';
    if (fd < 0 || write(fd, secret, sizeof(secret)) != (ssize_t)sizeof(secret))
        return fprintf(stderr, "bench_soak: cannot write %s\n", s->cookie), -1;
    close(fd);
    for (int i = 0; i < NODES; i++) {
        node_t *n = &s->node[i];
        snprintf(n->name, sizeof(n->name), "hx%d", i + 1);
        snprintf(n->control, sizeof(n->control), "ipc://%s/%s.ctl", s->dir, n->name);
        snprintf(n->log, sizeof(n->log), "%s/%s.log", s->dir, n->name);
        n->herdd = s->o.herdd;
        n->cookie = s->cookie;
        /* hx1 seeds the others; a restart of hx1 would join through hx2 */
        n->seed = i == 0 ? NULL : s->node[0].listen;
        if (start_node(s, n, 1) != 0) return -1;
    }
    s->node[0].seed = s->node[1].listen;
    for (uint64_t end = soak_now_ms() + END_REJOIN_MS; soak_now_ms() < end;
         soak_sleep_ms(200))
        if (all_up(s)) return 0;
    fprintf(stderr, "bench_soak: the three nodes did not all see each other up\n");
    return -1;
}

static void churn(soak_t *s)
{
    uint64_t t0 = soak_now_ms(), end = (uint64_t)s->o.seconds * 1000u;
    uint64_t next_sample = 0, gap = 1000u / (uint64_t)s->o.rate;
    s->next_kill_ms = (uint64_t)s->o.kill_every * 1000u;
    s->next_split_ms = (uint64_t)s->o.partition_every * 1000u;
    for (uint64_t t = 0; t < end; t = soak_now_ms() - t0) {
        uint64_t tick = soak_now_ms();
        faults_step(s, t, end);
        node_t *n = random_live(s);
        if (n && rnd(s) % 2 == 0)
            churn_name(s, n);
        else if (n)
            churn_counter(s, n);
        if (t >= next_sample) {
            sample_rss(s, t0);
            sample_crdt(s);
            next_sample = t + SAMPLE_MS;
        }
        uint64_t spent = soak_now_ms() - tick;
        if (spent < gap) soak_sleep_ms((int)(gap - spent));
    }
}

/* SIGTERM every node (herdd drains, then leaves) and reap them; a node
 * still running after STOP_MS is killed. */
static void stop_all(soak_t *s)
{
    uint64_t start = soak_now_ms(), deadline = start + STOP_MS;
    int clean = 0;
    for (int i = 0; i < NODES; i++)
        if (s->node[i].pid > 0) kill(s->node[i].pid, SIGTERM);
    for (int i = 0; i < NODES; i++) {
        node_t *n = &s->node[i];
        int st = -1;
        if (n->pid <= 0) continue;
        while (soak_node_alive(n, &st) && soak_now_ms() < deadline)
            soak_sleep_ms(50);
        if (n->pid == 0) {
            clean += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        } else {
            fprintf(stderr, "bench_soak: %s still runs %d s after SIGTERM: killed\n",
                    n->name, STOP_MS / 1000);
            soak_node_kill9(n);
        }
    }
    printf("bench soak shutdown_s %.1f s clean_exits=%d nodes=%d\n",
           (double)(soak_now_ms() - start) / 1000.0, clean, NODES);
}

static void remove_dir(soak_t *s)
{
    char path[400];
    for (int i = 0; i < NODES; i++) {
        unlink(s->node[i].log);
        snprintf(path, sizeof(path), "%s/%s.ctl", s->dir, s->node[i].name);
        unlink(path);
    }
    unlink(s->cookie);
    rmdir(s->dir);
}

static void report(soak_t *s, double converge_s, int agree, int empty, double churn_s)
{
    for (int i = 0; i < NODES; i++) {
        node_t *n = &s->node[i];
        rss_t *r = &s->rss[i];
        long end = n->pid > 0 ? soak_rss_kb(n->pid) : 0;
        if (end > r->max_kb) r->max_kb = end;
        double life = (double)(soak_now_ms() - n->started_ms) / 1000.0;
        if (r->base_kb > 0 && r->base_start == n->starts)
            printf("bench soak rss_growth_pct %.1f %% node=%s after_s=%.0f life_s=%.0f\n",
                   100.0 * (double)(end - r->base_kb) / (double)r->base_kb, n->name,
                   r->base_after_s, life);
        else
            fprintf(stderr, "bench_soak: %s: no RSS baseline in its last life (%.0f s)\n",
                    n->name, life);
        long long heap = r->base_heap > 0 && r->base_start == n->starts ? heap_in_use(s, n) : -1;
        if (heap >= 0)
            printf("bench soak heap_growth_pct %.1f %% node=%s heap_kb=%lld base_kb=%lld\n",
                   100.0 * (double)(heap - r->base_heap) / (double)r->base_heap, n->name,
                   heap / 1024, r->base_heap / 1024);
        printf("bench soak rss_kb %ld KiB node=%s starts=%d\n", end, n->name, n->starts);
        printf("bench soak rss_max_kb %ld KiB node=%s\n", r->max_kb, n->name);
        crdt_sample_t c;
        if (crdt_of(s, n, &c) == 0) {
            keep_max(&s->cc[i].cloud_max, c.cc_cloud_max);
            keep_max(&s->cc[i].cloud_dots, c.cc_cloud_dots);
            keep_max(&s->cc[i].replicas, c.cc_replicas);
            printf("bench soak entries_end %lld entries node=%s names=%lld "
                   "pending_end=%lld\n",
                   c.entries, n->name, c.names, c.pending);
            printf("bench soak cloud_dots_end %lld dots node=%s cloud_max_end=%lld "
                   "replicas_end=%lld\n",
                   c.cc_cloud_dots, n->name, c.cc_cloud_max, c.cc_replicas);
        }
        printf("bench soak cloud_max %lld dots node=%s\n", s->cc[i].cloud_max, n->name);
        printf("bench soak cloud_dots_max %lld dots node=%s\n", s->cc[i].cloud_dots,
               n->name);
        printf("bench soak replicas %lld replicas node=%s starts=%d\n", s->cc[i].replicas,
               n->name, n->starts);
    }
    printf("bench soak max_entries %lld entries node=%s\n", s->max_entries,
           s->max_entries_node);
    printf("bench soak max_names %lld names\n", s->max_names);
    printf("bench soak max_pending %lld frames\n", s->max_pending);
    uint64_t ok = 0, failed = 0;
    for (int op = 0; op < OP_COUNT; op++)
        ok += s->ok[op], failed += s->failed[op];
    printf("bench soak ops %llu ops register=%llu unregister=%llu start=%llu incr=%llu "
           "stop=%llu\n",
           (unsigned long long)ok, (unsigned long long)s->ok[OP_REGISTER],
           (unsigned long long)s->ok[OP_UNREGISTER], (unsigned long long)s->ok[OP_START],
           (unsigned long long)s->ok[OP_INCR], (unsigned long long)s->ok[OP_STOP]);
    printf("bench soak ops_per_s %.1f ops/s seconds=%.0f\n", (double)ok / churn_s,
           churn_s);
    printf("bench soak failed_ops %llu ops register=%llu unregister=%llu start=%llu "
           "incr=%llu stop=%llu unanswered=%llu\n",
           (unsigned long long)failed, (unsigned long long)s->failed[OP_REGISTER],
           (unsigned long long)s->failed[OP_UNREGISTER],
           (unsigned long long)s->failed[OP_START],
           (unsigned long long)s->failed[OP_INCR], (unsigned long long)s->failed[OP_STOP],
           (unsigned long long)s->timeouts);
    for (int i = 0; i < s->ncodes; i++)
        fprintf(stderr, "bench_soak: failed %s x%llu\n", s->codes[i].code,
                (unsigned long long)s->codes[i].count);
    printf("bench soak kills %d kills node=%s every_s=%d\n", s->kills,
           s->node[VICTIM].name, s->o.kill_every);
    printf("bench soak partitions %d partitions every_s=%d\n", s->splits,
           s->o.partition_every);
    printf("bench soak restart_max_s %.1f s node=%s\n", s->restart_max_s,
           s->node[VICTIM].name);
    printf("bench soak rejoin_max_s %.1f s timeouts=%d\n", s->rejoin_max_s,
           s->rejoin_timeouts);
    printf("bench soak converge_s %.1f s\n", converge_s);
    printf("bench soak children_missing %ld children node=%s\n", children_missing(s),
           s->node[0].name);
    printf("bench soak replicas_agree %d bool nodes=%d\n", agree, NODES);
    printf("bench soak clouds_empty %s bool nodes=%d\n", empty ? "yes" : "no", NODES);
    fflush(stdout);
}

static int usage(const char *why)
{
    fprintf(stderr,
            "bench_soak: %s\n"
            "usage: bench_soak [--seconds N] [--kill-every S] [--partition-every S]\n"
            "                  [--settle S] [--rate OPS] [--seed N] [--herdd PATH] "
            "[--keep]\n",
            why);
    return 2;
}

static int parse(int argc, char **argv, opts_t *o)
{
    static const struct option longs[] = {
        {"seconds", required_argument, NULL, 's'},
        {"kill-every", required_argument, NULL, 'k'},
        {"partition-every", required_argument, NULL, 'p'},
        {"settle", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'x'},
        {"herdd", required_argument, NULL, 'h'},
        {"keep", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    *o = (opts_t){600, 60, 120, 120, 40, 0, 0, HERDD_PATH};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        char *end = NULL;
        long v = optarg && c != 'h' ? strtol(optarg, &end, 10) : 0;
        if (end && (*end != '\0' || v < 1 || v > 86400))
            return usage("a number from 1 to 86400 wanted");
        switch (c) {
        case 's':
            o->seconds = (int)v;
            break;
        case 'k':
            o->kill_every = (int)v;
            break;
        case 'p':
            o->partition_every = (int)v;
            break;
        case 'S':
            o->settle = (int)v;
            break;
        case 'r':
            o->rate = v > 1000 ? 1000 : (int)v;
            break;
        case 'x':
            o->seed = (uint64_t)v;
            break;
        case 'h':
            o->herdd = optarg;
            break;
        case 'K':
            o->keep = 1;
            break;
        default:
            return usage("unknown option");
        }
    }
    if (optind != argc) return usage("no positional arguments");
    if (o->settle * 3 > o->seconds) o->settle = o->seconds / 3 > 0 ? o->seconds / 3 : 1;
    return 0;
}

int main(int argc, char **argv)
{
    soak_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return 1;
    int rc = parse(argc, argv, &s->o);
    if (rc) return rc;
    if (s->o.seed == 0) s->o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s->rng = s->o.seed | 1;
    signal(SIGPIPE, SIG_IGN);
    /* the whole run is bounded: churn, the end's waits, the shutdown */
    alarm((unsigned)s->o.seconds + 240u);
    fprintf(stderr,
            "bench_soak: seed %llu, %d s, kill every %d s, partition every %d s\n",
            (unsigned long long)s->o.seed, s->o.seconds, s->o.kill_every,
            s->o.partition_every);
    if (setup(s) != 0) {
        for (int i = 0; i < NODES; i++)
            soak_node_kill9(&s->node[i]);
        fprintf(stderr, "bench_soak: setup failed; logs in %s\n", s->dir);
        return 1;
    }
    uint64_t t0 = soak_now_ms();
    churn(s);
    double churn_s = (double)(soak_now_ms() - t0) / 1000.0;
    int agree = 0;
    if (faults_end(s) != 0)
        fprintf(stderr, "bench_soak: members not all up after the churn\n");
    else
        agree = wait_agree(s) == 0;
    double converge_s = agree ? (double)(soak_now_ms() - t0) / 1000.0 - churn_s : -1;
    /* the clouds at quiescence: a figure, not a verdict (exit follows agree) */
    int empty = agree && clouds_empty(s);
    report(s, converge_s, agree, empty, churn_s);
    stop_all(s);
    if (agree && !s->o.keep)
        remove_dir(s);
    else
        fprintf(stderr, "bench_soak: logs kept in %s\n", s->dir);
    free(s);
    return agree ? 0 : 1;
}
