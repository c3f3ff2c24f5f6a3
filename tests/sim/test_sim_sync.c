/*
 * test_sim_sync.c - the registry's sync layer (registry/PROTOCOL.md) in
 * full-stack deterministic simulations (regsim.h): what a long-running
 * cluster does to it, checked on the replicas' whole maps (entries, hidden
 * ones included, and causal contexts), not only on what lookups show.
 *
 * Cases (HERD_SIM_SEEDS, HERD_SIM_FIRST_SEED, HERD_SIM_SEED, HERD_SIM_TEST,
 * HERD_SIM_LOG, HERD_SIM_LIST: seeds.h):
 * - digest_context: while one node is down (crashed, or cut off by a
 *   partition), the others register and unregister names: dots added and
 *   removed that the absent node never sees. It comes back (restarted, or
 *   healed; before or after the others forget it). After quiescence every
 *   node's map equals every other's, causal contexts included, no context
 *   has a cloud (the digest sync carried the context), and the replica
 *   tables hold only the live node starts (a restarted node's old start is
 *   pruned once no member holds an entry of it).
 * - big_delta: 1,200 names registered in one loop iteration, each with 8
 *   metadata values of 100 bytes (a delta of about 1.2 MB): they reach every
 *   node, in messages split below the bound, with no send refused.
 * - return_after_140k_ops: a node is forgotten (crashed and restarted, or cut
 *   off past forget_ms and healed) while another makes 140,000 register and
 *   unregister operations; it returns and converges, maps and contexts equal,
 *   clouds empty, no send refused; and 20,000 operations later still.
 * - small_diff (below): a digest sync after a few changes carries about
 *   what changed, not the map.
 *
 * Timings: ticks of 5 ms, heartbeat 50 ms, down 300 ms, forget 1000 ms.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regsim.h"
#include "registry_int.h"

#define HB 50
#define DOWN_MS 300
#define FORGET_MS 1000
#define SETTLE_MS 20000

static int make(rs_run_t *r, int nodes, uint32_t drop, uint32_t dup)
{
    return regsim_make_cluster(r, nodes, FORGET_MS, drop, dup);
}

static const awmap_t *map_of(regsim_t *rs, int i)
{
    return reg_of(regsim_node(rs, i))->map;
}

/* Every live node's map equals the first live node's, contexts included,
 * no context holds a cloud, and the replica tables hold the live node starts
 * only (a restarted node's old start was pruned: no entry of it is left). */
static int maps_agree(regsim_t *rs, char *why, size_t cap)
{
    int first = -1;
    size_t live = 0;
    for (int i = 0; i < regsim_node_count(rs); i++)
        live += regsim_is_up(rs, i) != 0;
    for (int i = 0; i < regsim_node_count(rs); i++) {
        if (!regsim_is_up(rs, i))
            continue;
        if (awmap_replica_count(map_of(rs, i)) != live) {
            snprintf(why, cap, "%s: %zu replicas in the table, %zu node starts live",
                     regsim_name(rs, i), awmap_replica_count(map_of(rs, i)), live);
            return 0;
        }
        uint64_t cloud;
        awmap_cloud_stats(map_of(rs, i), &cloud, NULL);
        if (cloud) {
            snprintf(why, cap, "%s: %llu dots in clouds", regsim_name(rs, i),
                     (unsigned long long)cloud);
            return 0;
        }
        if (first < 0)
            first = i;
        else if (!awmap_equal(map_of(rs, first), map_of(rs, i))) {
            snprintf(why, cap, "%s and %s: maps differ (%zu/%zu keys, %zu/%zu entries)",
                     regsim_name(rs, first), regsim_name(rs, i),
                     awmap_key_count(map_of(rs, first)), awmap_key_count(map_of(rs, i)),
                     awmap_entry_count(map_of(rs, first)), awmap_entry_count(map_of(rs, i)));
            return 0;
        }
    }
    return 1;
}

/* No live node had a sync message refused. */
static int no_send_failed(rs_run_t *r)
{
    for (int i = 0; i < regsim_node_count(r->rs); i++) {
        herd_registry_stats_t st;
        if (!regsim_is_up(r->rs, i))
            continue;
        RS_CHECK_OK(r, herd_registry_stats(regsim_node(r->rs, i), &st));
        RS_CHECK(r, st.send_failed == 0, "%s: %llu sync messages refused", regsim_name(r->rs, i),
                 (unsigned long long)st.send_failed);
    }
    return 1;
}

/* Replicas agree with the model, then the whole maps agree, and still do
 * two check periods later. */
static int converged(rs_run_t *r, const char *what)
{
    char why[512] = "";
    uint64_t deadline = regsim_now(r->rs) + SETTLE_MS;
    int rc = regsim_run_until_agree(r->rs, 1, deadline, why, sizeof(why));
    RS_CHECK(r, rc == 0, "%s: replicas never agreed: %s", what, why);
    while (!maps_agree(r->rs, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(r->rs) < deadline, "%s: maps never agreed: %s", what, why);
        RS_CHECK_OK(r, regsim_run_for(r->rs, 50));
    }
    RS_CHECK_OK(r, regsim_run_for(r->rs, 4500));
    RS_CHECK(r, regsim_replicas_agree(r->rs, 1, why, sizeof(why)), "%s: later: %s", what, why);
    RS_CHECK(r, maps_agree(r->rs, why, sizeof(why)), "%s: later: %s", what, why);
    if (getenv("HERD_SIM_VERBOSE"))
        printf("%s: converged at %llu ms, %zu keys\n", what,
               (unsigned long long)regsim_now(r->rs), awmap_key_count(map_of(r->rs, 0)));
    return 1;
}

/* Take node `away` out: crashed, or cut off by a partition. */
static int go_away(rs_run_t *r, int away, int crash)
{
    if (crash)
        RS_CHECK_OK(r, regsim_crash(r->rs, away));
    else
        regsim_set_group(r->rs, away, 1);
    return 1;
}

static int come_back(rs_run_t *r, int away, int crash)
{
    if (crash)
        RS_CHECK_OK(r, regsim_start(r->rs, away));
    else
        regsim_heal(r->rs);
    RS_CHECK_OK(r, regsim_run_until_members(r->rs, regsim_now(r->rs) + 10000));
    return 1;
}

/* Register `name` for a process of node i and, with `keep` false, take it
 * back again: one dot added and one removed. */
static int churn_one(rs_run_t *r, int k, const char *name, int keep)
{
    int rc = regsim_register(r->rs, k, name, NULL);
    RS_CHECK(r, rc == 0 || rc == HERD_EEXIST, "register %s: %d", name, rc);
    if (!keep && rc == 0)
        RS_CHECK_OK(r, regsim_unregister(r->rs, k, name, regsim_proc(r->rs, k)->node));
    return 1;
}

static int scen_digest_context(rs_run_t *r)
{
    if (!make(r, 3, 20, 10))
        return 0;
    regsim_t *rs = r->rs;
    int away = (int)regsim_range(rs, 0, 2), crash = (int)regsim_range(rs, 0, 1);
    int procs[2], np = 0;
    for (int i = 0; i < 3; i++)
        if (i != away && (procs[np] = regsim_spawn(rs, i)) >= 0)
            np++;
    RS_CHECK(r, np == 2, "spawn");
    if (!go_away(r, away, crash))
        return 0;
    unsigned ops = (unsigned)regsim_range(rs, 20, 200);
    for (unsigned i = 0; i < ops; i++) {
        char name[RS_NAME_LEN];
        int who = (int)regsim_range(rs, 0, 1); /* names of its own: no conflicts here */
        snprintf(name, sizeof(name), "n%d.%u", who, (unsigned)regsim_range(rs, 0, 12));
        /* the last few stay: the returning node must get those too */
        if (!churn_one(r, procs[who], name, i + 4 >= ops))
            return 0;
        RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 20)));
    }
    /* back before or after the others forget it */
    RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 2) ? DOWN_MS : DOWN_MS + 2 * FORGET_MS));
    if (!come_back(r, away, crash))
        return 0;
    if (!converged(r, "after the return"))
        return 0;
    return no_send_failed(r);
}

#define BIG_NAMES 1200
#define BIG_PER_PROC 16

static int scen_big_delta(rs_run_t *r)
{
    if (!make(r, 2 + (int)(r->seed % 2), 0, 0))
        return 0;
    regsim_t *rs = r->rs;
    int from = (int)regsim_range(rs, 0, (uint64_t)regsim_node_count(rs) - 1);
    herd_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    for (int j = 0; j < 8; j++) {
        char key[8], value[101];
        snprintf(key, sizeof(key), "k%d", j);
        memset(value, 'a' + j, 100);
        value[100] = '\0';
        RS_CHECK_OK(r, herd_meta_set(&meta, key, value));
    }
    int k = -1;
    for (int i = 0; i < BIG_NAMES; i++) { /* one loop iteration: no step between */
        char name[RS_NAME_LEN];
        if (i % BIG_PER_PROC == 0)
            RS_CHECK(r, (k = regsim_spawn(rs, from)) >= 0, "spawn");
        snprintf(name, sizeof(name), "big%04d", i);
        RS_CHECK_OK(r, regsim_register(rs, k, name, &meta));
    }
    if (!converged(r, "after the big delta"))
        return 0;
    herd_registry_stats_t st;
    RS_CHECK_OK(r, herd_registry_stats(regsim_node(rs, from), &st));
    RS_CHECK(r, st.pieces_split > 0, "1.2 MB of changes went in one message");
    for (int i = 0; i < regsim_node_count(rs); i++)
        RS_CHECK(r, herd_registry_count(regsim_node(rs, i), "big") == BIG_NAMES,
                 "%s holds %d names", regsim_name(rs, i),
                 herd_registry_count(regsim_node(rs, i), "big"));
    return no_send_failed(r);
}

#define LONG_OPS 140000
#define OPS_PER_STEP 1000

/* `ops` register and unregister operations by process k, OPS_PER_STEP per
 * loop iteration, on names that end up free. */
static int churn_many(rs_run_t *r, int k, unsigned ops)
{
    rs_proc_t *p = regsim_proc(r->rs, k);
    herd_node_t *n = regsim_node(r->rs, p->node);
    for (unsigned op = 0; op < ops; op += 2) {
        char name[RS_NAME_LEN];
        snprintf(name, sizeof(name), "c%u", (op / 2) % 64);
        RS_CHECK_OK(r, herd_register(n, name, p->pid, NULL));
        RS_CHECK_OK(r, herd_unregister_pid(n, name, p->pid));
        if ((op + 2) % OPS_PER_STEP == 0)
            RS_CHECK_OK(r, regsim_step(r->rs));
    }
    return 1;
}

static int scen_return_after_140k_ops(rs_run_t *r)
{
    if (!make(r, 3, 10, 5))
        return 0;
    regsim_t *rs = r->rs;
    int away = (int)regsim_range(rs, 1, 2), crash = (int)regsim_range(rs, 0, 1);
    int k = regsim_spawn(rs, 0);
    RS_CHECK(r, k >= 0, "spawn");
    if (!go_away(r, away, crash))
        return 0;
    RS_CHECK_OK(r, regsim_run_for(rs, DOWN_MS + FORGET_MS + 10 * HB)); /* forgotten */
    if (!churn_many(r, k, LONG_OPS))
        return 0;
    for (int i = 0; i < 3; i++) { /* and a few that stay */
        char name[RS_NAME_LEN];
        snprintf(name, sizeof(name), "kept%d", i);
        RS_CHECK_OK(r, regsim_register(rs, k, name, NULL));
    }
    if (!come_back(r, away, crash))
        return 0;
    if (!converged(r, "after the return"))
        return 0;
    /* the writer goes on: its dots must not pile up in the returner's cloud */
    if (!churn_many(r, k, LONG_OPS / 7) || !converged(r, "after more operations"))
        return 0;
    return no_send_failed(r);
}

#define SMALL_BASE 20000 /* names both nodes hold */
#define SMALL_CHANGES 200 /* made on one side while the other is cut off */
#define SMALL_BYTES_MAX 150000

static uint64_t sync_bytes_out(regsim_t *rs)
{
    uint64_t sum = 0;
    for (int i = 0; i < regsim_node_count(rs); i++) {
        herd_registry_stats_t st;
        if (regsim_is_up(rs, i) && herd_registry_stats(regsim_node(rs, i), &st) == 0)
            sum += st.bytes_out;
    }
    return sum;
}

/* Run until every live node's whole map equals the others' (no model: the
 * names here are made through the API directly). */
static int maps_converge(rs_run_t *r, const char *what)
{
    char why[512] = "";
    uint64_t deadline = regsim_now(r->rs) + SETTLE_MS;
    while (!maps_agree(r->rs, why, sizeof(why))) {
        RS_CHECK(r, regsim_now(r->rs) < deadline, "%s: maps never agreed: %s", what, why);
        RS_CHECK_OK(r, regsim_run_for(r->rs, 50));
    }
    return 1;
}

/* - small_diff: two nodes hold 20,000 names; one is cut off until the other
 *   declares it down, meanwhile the other registers and unregisters 200
 *   names; after the heal the digest sync carries about what changed, not
 *   the map (the cells of the buckets that differ narrow the dots sent):
 *   under SMALL_BYTES_MAX sync bytes from both, where the dots of the
 *   differing buckets alone were about 330 KB. */
static int scen_small_diff(rs_run_t *r)
{
    if (!make(r, 2, 0, 0))
        return 0;
    regsim_t *rs = r->rs;
    int k = regsim_spawn(rs, 0);
    RS_CHECK(r, k >= 0, "spawn");
    rs_proc_t *p = regsim_proc(rs, k);
    herd_node_t *n = regsim_node(rs, 0);
    for (int i = 0; i < SMALL_BASE; i++) {
        char name[RS_NAME_LEN];
        snprintf(name, sizeof(name), "base%05d", i);
        RS_CHECK_OK(r, herd_register(n, name, p->pid, NULL));
        if (i % 1000 == 999)
            RS_CHECK_OK(r, regsim_step(rs));
    }
    if (!maps_converge(r, "the base names"))
        return 0;
    regsim_set_group(rs, 1, 1);
    RS_CHECK_OK(r, regsim_run_for(rs, DOWN_MS + 10 * HB)); /* declared down */
    for (int i = 0; i < SMALL_CHANGES; i++) {
        char name[RS_NAME_LEN];
        int gone = (int)regsim_range(rs, 0, 1);
        if (gone) { /* one of the base names goes */
            snprintf(name, sizeof(name), "base%05d", (int)regsim_range(rs, 0, SMALL_BASE - 1));
            int rc = herd_unregister_pid(n, name, p->pid);
            RS_CHECK(r, rc == 0 || rc == HERD_ENOENT, "unregister %s: %d", name, rc);
        } else {
            snprintf(name, sizeof(name), "new%05d", i);
            RS_CHECK_OK(r, herd_register(n, name, p->pid, NULL));
        }
        RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 0, 5)));
    }
    uint64_t before = sync_bytes_out(rs);
    regsim_heal(rs);
    RS_CHECK_OK(r, regsim_run_until_members(rs, regsim_now(rs) + 10000));
    if (!maps_converge(r, "after the heal"))
        return 0;
    uint64_t bytes = sync_bytes_out(rs) - before;
    if (getenv("HERD_SIM_VERBOSE"))
        printf("small_diff: %llu sync bytes after the heal\n", (unsigned long long)bytes);
    RS_CHECK(r, bytes < SMALL_BYTES_MAX,
             "%llu sync bytes to mend %d changes in %d names: the sync grew with the map",
             (unsigned long long)bytes, SMALL_CHANGES, SMALL_BASE);
    return no_send_failed(r);
}

int main(void)
{
    static const rs_case_t cases[] = {
        {"digest_context", scen_digest_context, 300},
        {"big_delta", scen_big_delta, 100},
        {"return_after_140k_ops", scen_return_after_140k_ops, 100},
        {"small_diff", scen_small_diff, 50},
    };
    return regsim_main("sim_sync", cases, sizeof(cases) / sizeof(cases[0]));
}
