/*
 * test_sim_registry.c - the global name registry in full-stack deterministic
 * simulations (regsim.h): the real node, cluster and registry code of 3-5
 * nodes in one process, one virtual clock, one seeded random stream, an
 * in-memory transport that delays, reorders, drops, duplicates and
 * partitions.
 *
 * Cases (each over many seeds; HERD_SIM_SEEDS, HERD_SIM_FIRST_SEED,
 * HERD_SIM_SEED=N to replay one, HERD_SIM_TEST, HERD_SIM_LOG, HERD_SIM_LIST
 * (seeds.h), HERD_SIM_VERBOSE=1 for figures, HERD_SIM_TRACE=1 for every
 * register/unregister/exit, HERD_SIM_EXPLORE=1: churn goes on to its exit
 * check after a failed settle):
 * - churn: 3-5 nodes, random spawns, registers from a shared pool of names
 *   (so concurrent conflicts happen too; some with metadata), metadata
 *   updates, unregisters and exits under 5% loss, 2% duplicates and 1-15 ms
 *   delays; after quiescence every replica equals the model (the names live
 *   processes hold, pids, metadata): replicas identical, no name with two live
 *   holders, every name found from every node; then every process exits and
 *   every name goes.
 * - churn_remote_unregister: the same with a quarter of the unregisters made
 *   on another node than the owner's. (Pins a fixed bug: a remote unregister
 *   racing a metadata update on the owner left the newer entry for ever; the
 *   owner now removes every entry of that pid for the name.)
 * - partition_conflict: {1,2} | {3,4} register the same names on both sides,
 *   then heal: one live process per name, the loser exited name_conflict,
 *   replicas equal the model.
 * - conflict_earlier_wins: the same, and the winner must be the
 *   registration made earlier in virtual time. (Pins a fixed bug: times came
 *   from the real clock and a registry-local HLC; they now come from the
 *   node's HLC, fed by its cluster and read from its own, virtual, clock.)
 * - crash_restart: a node holding names crashes: hidden (not removed) on the
 *   survivors once it is down, removed after forget_ms (or at once when it
 *   restarts first), a restart with a new incarnation registers afresh.
 * - long_partition: a partition longer than forget_ms: the other side's names
 *   are removed, and after heal the live processes' names come back.
 * - concurrent_meta: one process's name gets new metadata on two nodes at
 *   once, in rounds: during a short partition (shorter than the failure
 *   detector's suspicion turning into down) or only a few milliseconds apart
 *   with the usual delays; after each round every node reports the same
 *   metadata, the later write's (when the two were made in different
 *   milliseconds), and one entry a name. (Pins a fixed bug: two entries of
 *   one pid had no order between them, so nodes disagreed for good.)
 * - determinism: a conflict-free churn twice with one seed: the same final
 *   state and the same deliveries (times, ends, lengths).
 * - determinism_bytes: and the same frame bytes (every timestamp comes
 *   from the node's virtual clock).
 *
 * Timings: ticks of 5 ms, heartbeat 50 ms, suspect 150, down 300, forget 5000
 * (1500 for crash_restart, 1000 for long_partition); settling up to 15 s,
 * then 4.5 s more (two registry check periods) before the final checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regsim.h"

#define HB 50
#define DOWN_MS 300
#define SETTLE_MS 15000 /* quiescence deadline after the last fault */

static int make(rs_run_t *r, int nodes, uint32_t forget, uint32_t drop, uint32_t dup)
{
    return regsim_make_cluster(r, nodes, forget, drop, dup);
}

static void random_meta(regsim_t *rs, herd_meta_t *m)
{
    char v[16];
    memset(m, 0, sizeof(*m));
    snprintf(v, sizeof(v), "v%llu", (unsigned long long)regsim_range(rs, 0, 999));
    herd_meta_set(m, "ver", v);
    if (regsim_range(rs, 0, 1))
        herd_meta_set(m, "zone", regsim_range(rs, 0, 1) ? "a" : "b");
}

/* A random live process of node i (or any node when i < 0), or -1. */
static int random_proc(regsim_t *rs, int i)
{
    int live[RS_MAX_PROCS], n = 0;
    for (int k = 0; k < regsim_proc_count(rs); k++) {
        rs_proc_t *p = regsim_proc(rs, k);
        if (p->alive && (i < 0 || p->node == i) && regsim_is_up(rs, p->node))
            live[n++] = k;
    }
    return n ? live[regsim_range(rs, 0, (uint64_t)n - 1)] : -1;
}

/* Settled: replicas equal the model now and after two more check periods of
 * the registry (so re-registration and late conflicts would show), and every
 * name the model holds is found from every live node. */
static int settled(rs_run_t *r, const char *what)
{
    char why[512] = "";
    int rc = regsim_run_until_agree(r->rs, 1, regsim_now(r->rs) + SETTLE_MS, why, sizeof(why));
    RS_CHECK(r, rc == 0, "%s: no agreement by the deadline: %s", what, why);
    RS_CHECK_OK(r, regsim_run_for(r->rs, 4500));
    RS_CHECK(r, regsim_replicas_agree(r->rs, 1, why, sizeof(why)), "%s: later: %s", what, why);
    for (int k = 0; k < regsim_proc_count(r->rs); k++) {
        rs_proc_t *p = regsim_proc(r->rs, k);
        for (int j = 0; p->alive && j < p->nnames; j++)
            for (int i = 0; i < regsim_node_count(r->rs); i++) {
                herd_node_t *n = regsim_node(r->rs, i);
                herd_pid_t who;
                if (n == NULL)
                    continue;
                RS_CHECK(r, herd_whereis(n, p->names[j].name, &who, NULL) == 0 &&
                                herd_pid_equal(who, p->pid),
                         "%s: %s not found on %s", what, p->names[j].name,
                         regsim_name(r->rs, i));
            }
    }
    return 1;
}

/* ---- 1. churn ------------------------------------------------------------------ */

#define CH_REMOTE_UNREG 1 /* some unregisters are made on another node than the owner's */
#define CH_DISJOINT 2     /* each node its own names: no conflicts */

static int churn_ops(rs_run_t *r, uint64_t duration, int flags)
{
    regsim_t *rs = r->rs;
    int nodes = regsim_node_count(rs);
    for (int i = 0; i < nodes; i++)
        for (int k = 0; k < 3; k++)
            RS_CHECK(r, regsim_spawn(rs, i) >= 0, "spawn on %s", regsim_name(rs, i));
    uint64_t end = regsim_now(rs) + duration;
    while (regsim_now(rs) < end) {
        RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 5, 40)));
        int node = (int)regsim_range(rs, 0, (uint64_t)nodes - 1);
        uint64_t op = regsim_range(rs, 0, 99);
        int k = random_proc(rs, node);
        char name[RS_NAME_LEN];
        herd_meta_t meta;
        if (flags & CH_DISJOINT)
            snprintf(name, sizeof(name), "n%d.svc%llu", node,
                     (unsigned long long)regsim_range(rs, 0, 9));
        else
            snprintf(name, sizeof(name), "svc%llu", (unsigned long long)regsim_range(rs, 0, 29));
        if (op < 10 || k < 0) {
            RS_CHECK(r, regsim_spawn(rs, node) >= 0, "spawn");
        } else if (op < 60) {
            int with_meta = regsim_range(rs, 0, 2) == 0;
            if (with_meta)
                random_meta(rs, &meta);
            int rc = regsim_register(rs, k, name, with_meta ? &meta : NULL);
            RS_CHECK(r, rc == 0 || rc == HERD_EEXIST || rc == HERD_EFULL, "register %s: %s",
                     name, herd_strerror(rc));
        } else if (op < 72) {
            rs_proc_t *p = regsim_proc(rs, k);
            if (p->nnames) { /* a metadata update by registering again */
                random_meta(rs, &meta);
                int j = (int)regsim_range(rs, 0, (uint64_t)p->nnames - 1);
                snprintf(name, sizeof(name), "%s", p->names[j].name);
                int rc = regsim_register(rs, k, name, &meta);
                RS_CHECK(r, rc == 0, "re-register %s: %s", name, herd_strerror(rc));
            }
        } else if (op < 90) {
            rs_proc_t *p = regsim_proc(rs, k);
            if (p->nnames) {
                int j = (int)regsim_range(rs, 0, (uint64_t)p->nnames - 1);
                int via = p->node;
                if ((flags & CH_REMOTE_UNREG) && regsim_range(rs, 0, 3) == 0)
                    via = (int)regsim_range(rs, 0, (uint64_t)nodes - 1);
                snprintf(name, sizeof(name), "%s", p->names[j].name);
                int rc = regsim_unregister(rs, k, name, via);
                RS_CHECK(r, rc == 0 || (via != p->node && rc == HERD_ENOENT),
                         "unregister %s via %s: %s", name, regsim_name(rs, via),
                         herd_strerror(rc));
            }
        } else {
            int reason = regsim_range(rs, 0, 1) ? HERD_REASON_NORMAL : HERD_REASON_KILLED;
            RS_CHECK_OK(r, regsim_stop(rs, k, reason));
        }
    }
    return 1;
}

/* Every live process exits: every name goes, everywhere. */
static int all_exit(rs_run_t *r)
{
    char why[512] = "";
    for (int k = 0; k < regsim_proc_count(r->rs); k++)
        if (regsim_proc(r->rs, k)->alive)
            RS_CHECK_OK(r, regsim_stop(r->rs, k, HERD_REASON_SHUTDOWN));
    RS_CHECK_OK(r, regsim_run_for(r->rs, 50));
    int rc = regsim_run_until_agree(r->rs, 1, regsim_now(r->rs) + SETTLE_MS, why, sizeof(why));
    RS_CHECK(r, rc == 0, "after every process exited: %s", why);
    for (int i = 0; i < regsim_node_count(r->rs); i++)
        RS_CHECK(r, regsim_node(r->rs, i) == NULL ||
                        herd_registry_count(regsim_node(r->rs, i), NULL) == 0,
                 "names left on %s after every process exited", regsim_name(r->rs, i));
    return 1;
}

static int churn_run(rs_run_t *r, int flags)
{
    int nodes = (int)(3 + r->seed % 3);
    if (!make(r, nodes, 5000, 50, 20) || !churn_ops(r, 3000, flags))
        return 0;
    if (!settled(r, "after churn")) {
        if (getenv("HERD_SIM_EXPLORE") == NULL)
            return 0;
        printf("seed %llu: %s; now every process exits\n", (unsigned long long)r->seed, r->why);
    }
    if (!all_exit(r))
        return 0;
    if (getenv("HERD_SIM_VERBOSE")) {
        herd_registry_stats_t st;
        herd_registry_stats(regsim_node(r->rs, 0), &st);
        printf("seed %llu: %d nodes, %d processes, %d names, %llu frames, %u conflicts, "
               "deltas in %llu, full syncs in %llu, reregistered %llu\n",
               (unsigned long long)r->seed, nodes, regsim_proc_count(r->rs),
               herd_registry_count(regsim_node(r->rs, 0), NULL),
               (unsigned long long)regsim_delivered(r->rs),
               regsim_exits(r->rs, HERD_REASON_NAME_CONFLICT), (unsigned long long)st.deltas_in,
               (unsigned long long)st.full_syncs_in, (unsigned long long)st.reregistered);
    }
    return 1;
}

static int scen_churn(rs_run_t *r)
{
    return churn_run(r, 0);
}

static int scen_churn_remote_unregister(rs_run_t *r)
{
    return churn_run(r, CH_REMOTE_UNREG);
}

/* ---- 2. partition and conflicts -------------------------------------------------- */

/* Whether node i sees node j in state st. */
static int sees(regsim_t *rs, int i, int j, herd_member_state_t st)
{
    herd_member_info_t info[RS_MAX_NODES * 2];
    herd_node_t *n = regsim_node(rs, i);
    int m = n ? herd_cluster_members(n, info, RS_MAX_NODES * 2) : -1;
    for (int k = 0; k < m; k++)
        if (strcmp(info[k].name, regsim_name(rs, j)) == 0)
            return info[k].state == st;
    return st == HERD_MEMBER_ABSENT;
}

/* Run until every node of side a sees every node of side b (and back) in
 * state st; groups: node i is on side group[i]. */
static int run_until_sides_see(rs_run_t *r, const int *group, herd_member_state_t st,
                               uint64_t deadline)
{
    int n = regsim_node_count(r->rs);
    for (;;) {
        int all = 1;
        for (int i = 0; i < n && all; i++)
            for (int j = 0; j < n && all; j++)
                if (group[i] != group[j] && regsim_is_up(r->rs, i) && regsim_is_up(r->rs, j))
                    all = sees(r->rs, i, j, st);
        if (all)
            return 1;
        RS_CHECK(r, regsim_now(r->rs) < deadline, "the sides never saw each other %s",
                 herd_member_state_name(st));
        RS_CHECK_OK(r, regsim_run_for(r->rs, 10));
    }
}

/* Register some names everywhere and settle. */
static int baseline_names(rs_run_t *r, int procs_per_node, int names_per_proc)
{
    regsim_t *rs = r->rs;
    int n = regsim_node_count(rs);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < procs_per_node; k++) {
            int p = regsim_spawn(rs, i);
            RS_CHECK(r, p >= 0, "spawn");
            for (int j = 0; j < names_per_proc; j++) {
                char name[RS_NAME_LEN];
                herd_meta_t meta;
                random_meta(rs, &meta);
                snprintf(name, sizeof(name), "base.%d.%d.%d", i, k, j);
                RS_CHECK_OK(r, regsim_register(rs, p, name, j ? &meta : NULL));
            }
        }
    char why[512] = "";
    RS_CHECK(r, regsim_run_until_agree(rs, 1, regsim_now(rs) + SETTLE_MS, why, sizeof(why)) == 0,
             "baseline: %s", why);
    return 1;
}

#define CONFLICTS 6

static int conflict_run(rs_run_t *r, int check_order)
{
    static const int group[4] = {1, 1, 2, 2};
    if (!make(r, 4, 5000, 10, 10) || !baseline_names(r, 1, 2))
        return 0;
    regsim_t *rs = r->rs;
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, group[i]);
    if (!run_until_sides_see(r, group, HERD_MEMBER_DOWN, regsim_now(rs) + 3000))
        return 0;
    int first_side = (int)regsim_range(rs, 1, 2);
    int early[CONFLICTS], late[CONFLICTS];
    for (int side = 0; side < 2; side++) {
        int g = side == 0 ? first_side : 3 - first_side;
        for (int c = 0; c < CONFLICTS; c++) {
            char name[RS_NAME_LEN];
            int node = (g == 1 ? 0 : 2) + (int)regsim_range(rs, 0, 1);
            int k = regsim_spawn(rs, node);
            RS_CHECK(r, k >= 0, "spawn");
            snprintf(name, sizeof(name), "dup%d", c);
            herd_meta_t meta;
            random_meta(rs, &meta);
            RS_CHECK_OK(r, regsim_register(rs, k, name, regsim_range(rs, 0, 1) ? &meta : NULL));
            (side == 0 ? early : late)[c] = k;
            RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 5, 30)));
        }
        /* a name of this side alone */
        int k = random_proc(rs, g == 1 ? 0 : 2);
        char name[RS_NAME_LEN];
        snprintf(name, sizeof(name), "only%d", g);
        if (k >= 0)
            RS_CHECK_OK(r, regsim_register(rs, k, name, NULL));
        RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 20, 300)));
    }
    unsigned before = regsim_exits(rs, HERD_REASON_NAME_CONFLICT);
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 500)));
    regsim_heal(rs);
    if (!settled(r, "after heal"))
        return 0;
    RS_CHECK(r, regsim_exits(rs, HERD_REASON_NAME_CONFLICT) - before == CONFLICTS,
             "%u name_conflict exits, %d conflicts",
             regsim_exits(rs, HERD_REASON_NAME_CONFLICT) - before, CONFLICTS);
    for (int c = 0; c < CONFLICTS; c++) {
        rs_proc_t *a = regsim_proc(rs, early[c]), *b = regsim_proc(rs, late[c]);
        RS_CHECK(r, a->alive + b->alive == 1, "dup%d: %d processes alive", c,
                 a->alive + b->alive);
        rs_proc_t *loser = a->alive ? b : a;
        RS_CHECK(r, loser->reason == HERD_REASON_NAME_CONFLICT, "dup%d: the loser exited %s", c,
                 herd_reason_name(loser->reason));
        if (check_order)
            RS_CHECK(r, a->alive, "dup%d: the later registration (t=%llu on %s) beat the earlier "
                                  "one (t=%llu on %s)",
                     c, (unsigned long long)b->names[0].at, regsim_name(rs, b->node),
                     (unsigned long long)a->names[0].at, regsim_name(rs, a->node));
    }
    return 1;
}

static int scen_partition_conflict(rs_run_t *r)
{
    return conflict_run(r, 0);
}

static int scen_conflict_earlier_wins(rs_run_t *r)
{
    return conflict_run(r, 1);
}

/* ---- 3. crash and restart --------------------------------------------------------- */

static int entries_of(rs_run_t *r, int i, uint64_t *entries)
{
    herd_registry_stats_t st;
    RS_CHECK_OK(r, herd_registry_stats(regsim_node(r->rs, i), &st));
    *entries = st.entries;
    return 1;
}

#define CR_FORGET 1500

static int scen_crash_restart(rs_run_t *r)
{
    if (!make(r, 4, CR_FORGET, 20, 10) || !baseline_names(r, 2, 2))
        return 0;
    regsim_t *rs = r->rs;
    int victim = (int)regsim_range(rs, 0, 3);
    int victim_names = 4;
    uint64_t tc = regsim_now(rs) + regsim_range(rs, 0, HB);
    RS_CHECK_OK(r, regsim_run_until(rs, tc));
    RS_CHECK_OK(r, regsim_crash(rs, victim));
    /* down: hidden everywhere (the model holds the dead processes' names no more) */
    for (int i = 0; i < 4; i++)
        if (i != victim)
            for (;;) {
                if (sees(rs, i, victim, HERD_MEMBER_DOWN))
                    break;
                RS_CHECK(r, regsim_now(rs) < tc + DOWN_MS + 10 * HB, "%s never saw %s down",
                         regsim_name(rs, i), regsim_name(rs, victim));
                RS_CHECK_OK(r, regsim_run_for(rs, 5));
            }
    RS_CHECK_OK(r, regsim_run_for(rs, 20));
    char why[512] = "";
    RS_CHECK(r, regsim_replicas_agree(rs, 1, why, sizeof(why)), "once down: %s", why);
    RS_CHECK(r, regsim_now(rs) < tc + CR_FORGET, "down too late to check hiding");
    for (int i = 0; i < 4; i++) {
        uint64_t entries;
        if (i == victim)
            continue;
        if (!entries_of(r, i, &entries))
            return 0;
        int visible = herd_registry_count(regsim_node(rs, i), NULL);
        RS_CHECK(r, entries >= (uint64_t)visible + (uint64_t)victim_names,
                 "%s: %llu entries, %d visible: %s's names were removed, not hidden",
                 regsim_name(rs, i), (unsigned long long)entries, visible,
                 regsim_name(rs, victim));
    }
    int early = regsim_range(rs, 0, 2) == 0;
    if (!early) {
        /* past forget_ms: removed */
        RS_CHECK_OK(r, regsim_run_until(rs, tc + DOWN_MS + CR_FORGET + 10 * HB));
        for (int i = 0; i < 4; i++) {
            uint64_t entries;
            if (i == victim)
                continue;
            if (!entries_of(r, i, &entries))
                return 0;
            int visible = herd_registry_count(regsim_node(rs, i), NULL);
            RS_CHECK(r, entries == (uint64_t)visible,
                     "%s: %llu entries, %d visible, %llu ms after the crash",
                     regsim_name(rs, i), (unsigned long long)entries, visible,
                     (unsigned long long)(regsim_now(rs) - tc));
        }
    }
    RS_CHECK_OK(r, regsim_start(rs, victim));
    RS_CHECK_OK(r, regsim_run_until_members(rs, regsim_now(rs) + 5000));
    for (int k = 0; k < 2; k++) {
        int p = regsim_spawn(rs, victim);
        RS_CHECK(r, p >= 0, "spawn after restart");
        for (int j = 0; j < 2; j++) {
            char name[RS_NAME_LEN];
            /* the old names again, or new ones */
            if (regsim_range(rs, 0, 1))
                snprintf(name, sizeof(name), "base.%d.%d.%d", victim, k, j);
            else
                snprintf(name, sizeof(name), "fresh.%d.%d", k, j);
            RS_CHECK_OK(r, regsim_register(rs, p, name, NULL));
        }
    }
    return settled(r, early ? "after an early restart" : "after restart");
}

/* ---- 4. a partition longer than forget_ms ------------------------------------------ */

#define LP_FORGET 1000

static int scen_long_partition(rs_run_t *r)
{
    static const int group[4] = {1, 1, 2, 2};
    if (!make(r, 4, LP_FORGET, 10, 10) || !baseline_names(r, 2, 2))
        return 0;
    regsim_t *rs = r->rs;
    for (int i = 0; i < 4; i++)
        regsim_set_group(rs, i, group[i]);
    uint64_t tp = regsim_now(rs);
    /* new names on each side during the partition */
    for (int i = 0; i < 4; i++) {
        int k = random_proc(rs, i);
        char name[RS_NAME_LEN];
        snprintf(name, sizeof(name), "during.%d", i);
        RS_CHECK(r, k >= 0, "no process on %s", regsim_name(rs, i));
        RS_CHECK_OK(r, regsim_register(rs, k, name, NULL));
    }
    RS_CHECK_OK(r, regsim_run_until(rs, tp + DOWN_MS + LP_FORGET + 20 * HB));
    /* each side holds its own names only, and nothing hidden */
    for (int i = 0; i < 4; i++) {
        rs_entry_t *v = NULL;
        size_t n = 0;
        uint64_t entries;
        RS_CHECK_OK(r, regsim_list(rs, i, &v, &n));
        int foreign = 0;
        for (size_t e = 0; e < n; e++)
            for (int j = 0; j < 4; j++)
                if (group[j] != group[i] && v[e].pid.node == herd_node_id_of(regsim_name(rs, j)))
                    foreign++;
        free(v);
        RS_CHECK(r, foreign == 0, "%s still shows %d names of the other side", regsim_name(rs, i),
                 foreign);
        if (!entries_of(r, i, &entries))
            return 0;
        RS_CHECK(r, entries == n, "%s: %llu entries, %zu visible: the other side's not removed",
                 regsim_name(rs, i), (unsigned long long)entries, n);
        RS_CHECK(r, n == 2 * 2 * 2 + 2, "%s: %zu names visible on its side, 10 expected",
                 regsim_name(rs, i), n);
    }
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 1000)));
    regsim_heal(rs);
    RS_CHECK(r, regsim_run_until_members(rs, regsim_now(rs) + 10000) == 0,
             "members did not converge after the heal");
    return settled(r, "after the long partition");
}

/* ---- 5. concurrent metadata updates --------------------------------------------------- */

#define CM_NAMES 3
#define CM_ROUNDS 3
#define CM_PARTITION_MAX 200 /* ms: below DOWN_MS, so every name stays visible */

typedef struct cm_write {
    int node;
    uint64_t at;
    herd_meta_t meta;
} cm_write_t;

/* Update name c's metadata on node w->node now. */
static int cm_update(rs_run_t *r, int c, int round, cm_write_t *w)
{
    char name[RS_NAME_LEN], ver[32];
    snprintf(name, sizeof(name), "cm%d", c);
    snprintf(ver, sizeof(ver), "r%d.%s.%llu", round, regsim_name(r->rs, w->node),
             (unsigned long long)regsim_range(r->rs, 0, 999));
    memset(&w->meta, 0, sizeof(w->meta));
    herd_meta_set(&w->meta, "ver", ver);
    w->at = regsim_now(r->rs);
    RS_CHECK_OK(r, herd_update_meta(regsim_node(r->rs, w->node), name, &w->meta));
    return 1;
}

/* Each name's process, after a round: every node shows the same metadata,
 * the later write's when the two differ in time (the model takes it, so
 * that `settled` checks the rest), and once settled one entry a name. */
static int cm_check(rs_run_t *r, const int *procs, cm_write_t (*w)[2])
{
    regsim_t *rs = r->rs;
    char why[512] = "";
    int rc = regsim_run_until_agree(rs, 0, regsim_now(rs) + SETTLE_MS, why, sizeof(why));
    RS_CHECK(r, rc == 0, "replicas disagree after concurrent updates: %s", why);
    for (int c = 0; c < CM_NAMES; c++) {
        char name[RS_NAME_LEN];
        herd_meta_t got;
        snprintf(name, sizeof(name), "cm%d", c);
        RS_CHECK_OK(r, herd_whereis(regsim_node(rs, 0), name, NULL, &got));
        const cm_write_t *later = w[c][0].at > w[c][1].at   ? &w[c][0]
                                  : w[c][1].at > w[c][0].at ? &w[c][1]
                                                            : NULL;
        const char *v = herd_meta_get(&got, "ver");
        RS_CHECK(r, v != NULL, "%s: no metadata", name);
        if (later)
            RS_CHECK(r, strcmp(v, herd_meta_get(&later->meta, "ver")) == 0,
                     "%s: %s won over the later write %s (t=%llu vs %llu)", name, v,
                     herd_meta_get(&later->meta, "ver"), (unsigned long long)w[c][0].at,
                     (unsigned long long)w[c][1].at);
        regsim_proc(rs, procs[c])->names[0].meta = got;
    }
    if (!settled(r, "after concurrent updates"))
        return 0;
    for (int i = 0; i < regsim_node_count(rs); i++) {
        herd_registry_stats_t st;
        RS_CHECK_OK(r, herd_registry_stats(regsim_node(rs, i), &st));
        RS_CHECK(r, st.entries == CM_NAMES && st.names == CM_NAMES,
                 "%s: %llu entries of %llu names, one each expected", regsim_name(rs, i),
                 (unsigned long long)st.entries, (unsigned long long)st.names);
    }
    return 1;
}

/* One round: each name updated on two different nodes, within a short
 * partition between them or a few milliseconds apart. */
static int cm_round(rs_run_t *r, int round, cm_write_t (*w)[2])
{
    regsim_t *rs = r->rs;
    int nodes = regsim_node_count(rs);
    int partition = regsim_range(rs, 0, 1) == 0;
    for (int c = 0; c < CM_NAMES; c++) {
        w[c][0].node = (int)regsim_range(rs, 0, (uint64_t)nodes - 1);
        w[c][1].node = (w[c][0].node + 1 + (int)regsim_range(rs, 0, (uint64_t)nodes - 2)) % nodes;
    }
    if (partition) /* the first writers of every name apart from the second ones */
        for (int i = 0; i < nodes; i++)
            regsim_set_group(rs, i, i == w[0][1].node ? 2 : i == w[0][0].node ? 1
                                                            : (int)regsim_range(rs, 1, 2));
    uint64_t t0 = regsim_now(rs);
    for (int c = 0; c < CM_NAMES; c++)
        for (int k = 0; k < 2; k++) {
            if (!cm_update(r, c, round, &w[c][k]))
                return 0;
            RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, partition ? 30 : 8)));
        }
    if (partition) {
        uint64_t end = t0 + regsim_range(rs, regsim_now(rs) - t0, CM_PARTITION_MAX);
        RS_CHECK_OK(r, regsim_run_until(rs, end));
        regsim_heal(rs);
    }
    return 1;
}

static int scen_concurrent_meta(rs_run_t *r)
{
    int nodes = (int)(3 + r->seed % 2);
    if (!make(r, nodes, 5000, 20, 10))
        return 0;
    regsim_t *rs = r->rs;
    int procs[CM_NAMES];
    for (int c = 0; c < CM_NAMES; c++) {
        char name[RS_NAME_LEN];
        herd_meta_t meta;
        random_meta(rs, &meta);
        snprintf(name, sizeof(name), "cm%d", c);
        procs[c] = regsim_spawn(rs, (int)regsim_range(rs, 0, (uint64_t)nodes - 1));
        RS_CHECK(r, procs[c] >= 0, "spawn");
        RS_CHECK_OK(r, regsim_register(rs, procs[c], name, &meta));
    }
    if (!settled(r, "baseline"))
        return 0;
    for (int round = 0; round < CM_ROUNDS; round++) {
        cm_write_t w[CM_NAMES][2];
        if (!cm_round(r, round, w) || !cm_check(r, procs, w))
            return 0;
    }
    return all_exit(r);
}

/* ---- 6. determinism ------------------------------------------------------------------- */

typedef struct det_result {
    uint64_t state, trace, shape, delivered, now;
} det_result_t;

static int det_once(rs_run_t *r, det_result_t *out)
{
    int nodes = (int)(3 + r->seed % 3);
    if (!make(r, nodes, 5000, 50, 20) || !churn_ops(r, 2000, CH_DISJOINT))
        return 0;
    RS_CHECK_OK(r, regsim_run_for(r->rs, 3000));
    out->state = regsim_state_hash(r->rs);
    out->trace = regsim_trace_hash(r->rs);
    out->shape = regsim_shape_hash(r->rs);
    out->delivered = regsim_delivered(r->rs);
    out->now = regsim_now(r->rs);
    return 1;
}

static int det_run(rs_run_t *r, int check_bytes)
{
    det_result_t a, b;
    if (!det_once(r, &a))
        return 0;
    regsim_free(r->rs);
    r->rs = NULL;
    if (!det_once(r, &b))
        return 0;
    RS_CHECK(r, a.delivered == b.delivered && a.shape == b.shape,
             "deliveries differ: %llu vs %llu frames, shape %016llx vs %016llx",
             (unsigned long long)a.delivered, (unsigned long long)b.delivered,
             (unsigned long long)a.shape, (unsigned long long)b.shape);
    RS_CHECK(r, a.state == b.state, "final states differ");
    if (check_bytes)
        RS_CHECK(r, a.trace == b.trace,
                 "same deliveries, different frame bytes: trace %016llx vs %016llx",
                 (unsigned long long)a.trace, (unsigned long long)b.trace);
    return 1;
}

static int scen_determinism(rs_run_t *r)
{
    return det_run(r, 0);
}

static int scen_determinism_bytes(rs_run_t *r)
{
    return det_run(r, 1);
}

int main(void)
{
    static const rs_case_t cases[] = {
        {"churn", scen_churn, 300},
        {"churn_remote_unregister", scen_churn_remote_unregister, 300},
        {"partition_conflict", scen_partition_conflict, 200},
        {"conflict_earlier_wins", scen_conflict_earlier_wins, 200},
        {"crash_restart", scen_crash_restart, 200},
        {"long_partition", scen_long_partition, 200},
        {"concurrent_meta", scen_concurrent_meta, 200},
        {"determinism", scen_determinism, 100},
        {"determinism_bytes", scen_determinism_bytes, 100},
    };
    return regsim_main("sim_registry", cases, sizeof(cases) / sizeof(cases[0]));
}
