/*
 * test_sim_groups.c - process groups (registry/herd_group.h) in full-stack
 * deterministic simulations (regsim.h): 3-5 real nodes (node, cluster,
 * registry) in one process on a virtual clock over an in-memory transport
 * with 1-15 ms delays, 2% loss and 1% duplicates.
 *
 * A run does 3 s of random operations, one every 5-40 ms: spawns (half of
 * them registering a name of their own, beside a name "svc" that is also a
 * group's), joins (half with metadata, a token unique to the join) and
 * leaves made on the process's own node, joins and leaves of a process made
 * on another node, and exits; and, by case, faults: partitions of the
 * members in two sides, shorter than the failure detector's down time,
 * longer (hidden), or longer than the forget time (removed, then put back
 * by the process's node); crashes with restarts before or after the forget
 * time, and (at the end) a node left crashed for good.
 *
 * The model is the set of (group, process, metadata) of live processes
 * whose last join was not undone by a leave. It is exact because the
 * harness never makes two changes of one membership that a node could see
 * at once: a change made on another node than the process's waits for a
 * healthy cluster (no partition, no node down, members converged) and for
 * every node to agree on that membership, and the membership is then
 * pending until every node agrees again; faults wait for no membership to
 * be pending. (A join written by a node that crashes or is cut off before
 * its delta left may be lost: that is add-wins, not a bug, and the harness
 * does not make it.)
 *
 * After the last fault: heal, restart the crashed nodes but perhaps one,
 * members converge, and then within 15 s every live node holds exactly the
 * model: for each group its members (pids and metadata), count (the O(1)
 * one) and local members; the list of groups with their counts; for every
 * process the groups `which` gives (by the pid index on its node, by a
 * pass elsewhere), none for a dead one; one entry per membership and no
 * hidden one left; the names (regsim's model: groups change nothing of
 * them, nor of their count and stats). The same 4.5 s later (two checks:
 * nothing put back twice, nothing lost). Then every process exits and
 * every node ends with no membership.
 *
 * Cases: churn (no faults), partitions, crashes, mixed (both); 300 seeds
 * each by default (HERD_SIM_CI_SEEDS in ctest), a few seconds a case.
 * HERD_SIM_VERBOSE=1 prints each seed's figures; HERD_SIM_TRACE=1 every
 * group operation and fault; HERD_SIM_DEBUG=1 with a failure, the entries
 * behind it on every node (seeds.h and regsim.h for the rest).
 *
 * Registry behaviour this found, fixed, and pins (names as much as groups;
 * the seeds replay in ctest, tests/CMakeLists.txt):
 * - entries of a node start that no live member ever knew (all that knew
 *   it went before forgetting it; a restarted peer got its entries by a
 *   sync) stayed hidden for ever: now a start older than one its node has
 *   here is dead, and one unknown here for the forget time is gone
 *   (crashes 2160074, 2160092, 2160117, 2160632; mixed 2160220, 2160599,
 *   2161167);
 * - a removal made because a start was forgotten reached, by a delta queued
 *   for them, members beyond a healed partition, but not the forgotten
 *   start's node, which then neither knew nor put back its live entry (a
 *   name missing on some nodes for 10 s and more): such removals are no
 *   longer shipped, every member makes its own (partitions 2161790);
 * - an entry put back after going missing stood beside the old one on the
 *   nodes that had not heard of the removal: it now supersedes it
 *   (partitions 2160488, 2161234);
 * - a process that joined again with new metadata, whose new entry then went
 *   missing before the next check, was put back with its old metadata: the
 *   entry its own join had replaced was still a candidate beside the newer
 *   one, and went back first. Now only the newest write of a process and
 *   group (or name) goes back, in place of that entry (partitions 227, with
 *   lazy channel acknowledgements).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "herd_group.h"
#include "regsim.h"
#include "registry_int.h" /* the entries of group keys, hidden or not */

#define GROUPS 6
#define OPS_MS 3000
#define FORGET_MS 1500
#define SETTLE_MS 15000
#define PROCS_MAX 400 /* below RS_MAX_PROCS */
#define TOKEN_MAX 16

enum { F_PARTITIONS = 1, F_CRASHES = 2 };

static char group_name[GROUPS][HERD_GROUP_MAX + 1];

typedef struct gsim {
    rs_run_t *r;
    regsim_t *rs;
    int flags;
    /* the model, by process (regsim's index) and group */
    uint8_t member[RS_MAX_PROCS][GROUPS];
    char token[RS_MAX_PROCS][GROUPS][TOKEN_MAX]; /* "": joined without metadata */
    uint8_t pending[RS_MAX_PROCS][GROUPS]; /* changed on another node: not agreed yet */
    uint8_t stopped[RS_MAX_PROCS];
    uint64_t heal_at;                 /* a partition until then (0: none) */
    uint64_t restart_at[RS_MAX_NODES]; /* a crashed node restarts then (0: not crashed) */
    unsigned tokens;
    unsigned joins, leaves, remote_joins, remote_leaves, exits, partitions, crashes;
} gsim_t;

static void names_init(void)
{
    for (int j = 0; j < 4; j++)
        snprintf(group_name[j], sizeof(group_name[j]), "g%d", j);
    snprintf(group_name[4], sizeof(group_name[4]), "svc"); /* a name too */
    memset(group_name[5], 'L', HERD_GROUP_MAX);          /* the longest */
    group_name[5][HERD_GROUP_MAX] = '\0';
}

static void trace_fault(gsim_t *gs, const char *what, int i)
{
    if (getenv("HERD_SIM_TRACE"))
        fprintf(stderr, "t=%llu %s %s\n", (unsigned long long)regsim_now(gs->rs), what,
                i >= 0 ? regsim_name(gs->rs, i) : "");
}

static void trace(gsim_t *gs, const char *what, int k, int j, int via, int rc)
{
    if (getenv("HERD_SIM_TRACE"))
        fprintf(stderr, "t=%llu %s proc %d (%s) group %d via %s: %d\n",
                (unsigned long long)regsim_now(gs->rs), what, k,
                regsim_name(gs->rs, regsim_proc(gs->rs, k)->node), j,
                regsim_name(gs->rs, via), rc);
}

/* ---- the model ------------------------------------------------------------------ */

static int alive(gsim_t *gs, int k)
{
    return regsim_proc(gs->rs, k)->alive;
}

/* A live process on a node that is up, not being stopped, or -1. */
static int random_proc(gsim_t *gs)
{
    int live[RS_MAX_PROCS], n = 0;
    for (int k = 0; k < regsim_proc_count(gs->rs); k++) {
        rs_proc_t *p = regsim_proc(gs->rs, k);
        if (p->alive && !gs->stopped[k] && regsim_is_up(gs->rs, p->node))
            live[n++] = k;
    }
    return n ? live[regsim_range(gs->rs, 0, (uint64_t)n - 1)] : -1;
}

static int random_up_node(gsim_t *gs, int except)
{
    int up[RS_MAX_NODES], n = 0;
    for (int i = 0; i < regsim_node_count(gs->rs); i++)
        if (regsim_is_up(gs->rs, i) && i != except)
            up[n++] = i;
    return n ? up[regsim_range(gs->rs, 0, (uint64_t)n - 1)] : -1;
}

/* The model's metadata of a membership (count 0 for a join without). */
static void model_meta(gsim_t *gs, int k, int j, herd_meta_t *m)
{
    memset(m, 0, sizeof(*m));
    if (gs->token[k][j][0])
        herd_meta_set(m, "v", gs->token[k][j]);
}

static int meta_is(const herd_meta_t *m, const char *token)
{
    if (token[0] == '\0')
        return m->count == 0;
    const char *v = herd_meta_get(m, "v");
    return m->count == 1 && v && strcmp(v, token) == 0;
}

/* What one node shows of one process's memberships. */
typedef struct view {
    int n;
    int found[GROUPS];
    herd_meta_t meta[GROUPS];
    int unknown; /* groups that are none of ours */
} view_t;

static int view_one(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)pid;
    view_t *v = data;
    v->n++;
    for (int j = 0; j < GROUPS; j++)
        if (strcmp(group, group_name[j]) == 0) {
            v->found[j]++;
            v->meta[j] = *meta;
            return 0;
        }
    v->unknown++;
    return 0;
}

/* What node i shows of process k's memberships: `which`, the pid index on
 * the process's node, a pass over the groups elsewhere. 0, or an error. */
static int view_of(gsim_t *gs, int i, int k, view_t *v)
{
    memset(v, 0, sizeof(*v));
    herd_node_t *n = regsim_node(gs->rs, i);
    int rc = n ? herd_group_which(n, regsim_proc(gs->rs, k)->pid, view_one, v) : HERD_ENOENT;
    return rc < 0 ? rc : rc != v->n ? HERD_ERANGE : 0;
}

/* Whether view v shows membership (k, j) as the model has it. */
static int view_shows(gsim_t *gs, const view_t *v, int k, int j)
{
    int want = alive(gs, k) && gs->member[k][j];
    if (v->found[j] != want)
        return 0;
    return !want || meta_is(&v->meta[j], gs->token[k][j]);
}

static int shows(gsim_t *gs, int i, int k, int j)
{
    view_t v;
    return view_of(gs, i, k, &v) == 0 && view_shows(gs, &v, k, j);
}

/* Whether node i holds the same entries of membership (k, j) as node f:
 * the same writes, not only the same metadata (two joins without any look
 * alike). */
static int same_entries(gsim_t *gs, int f, int i, int k, int j)
{
    char key[REG_GROUP_KEY_MAX + 1];
    size_t klen = reg_group_key(group_name[j], strlen(group_name[j]),
                                regsim_proc(gs->rs, k)->pid, key);
    const awmap_t *mf = reg_of(regsim_node(gs->rs, f))->map;
    const awmap_t *mi = reg_of(regsim_node(gs->rs, i))->map;
    size_t nf = 0, ni = 0;
    for (const awmap_entry_t *e = awmap_get(mi, key, klen); e; e = awmap_next(e))
        ni++;
    for (const awmap_entry_t *e = awmap_get(mf, key, klen); e; e = awmap_next(e)) {
        awmap_replica_id_t w = awmap_replica_id(mf, e->dot.replica);
        int found = 0;
        for (const awmap_entry_t *x = awmap_get(mi, key, klen); x && !found; x = awmap_next(x)) {
            awmap_replica_id_t v = awmap_replica_id(mi, x->dot.replica);
            found = v.node == w.node && v.incarnation == w.incarnation &&
                    x->dot.counter == e->dot.counter;
        }
        if (!found)
            return 0;
        nf++;
    }
    return nf == ni;
}

/* Every up node shows (k, j) as the model has it, from the same writes. */
static int agreed(gsim_t *gs, int k, int j)
{
    int first = -1;
    for (int i = 0; i < regsim_node_count(gs->rs); i++) {
        if (!regsim_is_up(gs->rs, i))
            continue;
        if (!shows(gs, i, k, j) || (first >= 0 && !same_entries(gs, first, i, k, j)))
            return 0;
        if (first < 0)
            first = i;
    }
    return 1;
}

static int any_pending(gsim_t *gs)
{
    for (int k = 0; k < regsim_proc_count(gs->rs); k++)
        for (int j = 0; j < GROUPS; j++)
            if (gs->pending[k][j])
                return 1;
    return 0;
}

static void clear_pending(gsim_t *gs)
{
    for (int k = 0; k < regsim_proc_count(gs->rs); k++)
        for (int j = 0; j < GROUPS; j++)
            if (gs->pending[k][j] && (!alive(gs, k) || agreed(gs, k, j)))
                gs->pending[k][j] = 0;
}

/* No partition, every node up, members converged: a change made on another
 * node than the process's reaches it (and every other) for sure. */
static int healthy(gsim_t *gs)
{
    char why[128];
    if (gs->heal_at)
        return 0;
    for (int i = 0; i < regsim_node_count(gs->rs); i++)
        if (!regsim_is_up(gs->rs, i))
            return 0;
    return regsim_members_converged(gs->rs, why, sizeof(why));
}

/* ---- operations ----------------------------------------------------------------- */

/* A join's metadata: a token no other join has, or none (never for a join
 * made on another node: its token is how the harness sees it arrive). */
static void new_token(gsim_t *gs, int k, int j, int remote)
{
    if (remote || regsim_range(gs->rs, 0, 1))
        snprintf(gs->token[k][j], TOKEN_MAX, "j%u", ++gs->tokens);
    else
        gs->token[k][j][0] = '\0';
}

static int op_spawn(gsim_t *gs)
{
    rs_run_t *r = gs->r;
    int node = random_up_node(gs, -1);
    if (node < 0 || regsim_proc_count(gs->rs) >= PROCS_MAX)
        return 1;
    int k = regsim_spawn(gs->rs, node);
    RS_CHECK(r, k >= 0, "spawn on %s", regsim_name(gs->rs, node));
    if (regsim_range(gs->rs, 0, 1)) {
        char name[RS_NAME_LEN];
        snprintf(name, sizeof(name), "p%d", k);
        RS_CHECK_OK(r, regsim_register(gs->rs, k, name, NULL));
    }
    return 1;
}

/* A join (remote: made on another node than the process's). */
static int op_join(gsim_t *gs, int remote)
{
    rs_run_t *r = gs->r;
    int k = random_proc(gs), j = (int)regsim_range(gs->rs, 0, GROUPS - 1);
    if (k < 0 || gs->pending[k][j] || (remote && !agreed(gs, k, j)))
        return 1;
    rs_proc_t *p = regsim_proc(gs->rs, k);
    int via = remote ? random_up_node(gs, p->node) : p->node;
    if (via < 0)
        return 1;
    new_token(gs, k, j, remote);
    herd_meta_t meta;
    model_meta(gs, k, j, &meta);
    int rc = herd_group_join(regsim_node(gs->rs, via), group_name[j], p->pid,
                             gs->token[k][j][0] ? &meta : NULL);
    trace(gs, remote ? "join (remote)" : "join", k, j, via, rc);
    RS_CHECK(r, rc == 0, "join of proc %d to group %d via %s: %s", k, j,
             regsim_name(gs->rs, via), herd_strerror(rc));
    gs->member[k][j] = 1;
    gs->pending[k][j] = (uint8_t)remote;
    if (remote)
        gs->remote_joins++;
    else
        gs->joins++;
    return 1;
}

/* A leave, of a membership mostly. */
static int op_leave(gsim_t *gs, int remote)
{
    rs_run_t *r = gs->r;
    int k = random_proc(gs), j = (int)regsim_range(gs->rs, 0, GROUPS - 1);
    if (k < 0)
        return 1;
    for (int t = 0; t < GROUPS && !gs->member[k][j]; t++)
        j = (j + 1) % GROUPS;
    if (gs->pending[k][j] || (remote && !agreed(gs, k, j)))
        return 1;
    rs_proc_t *p = regsim_proc(gs->rs, k);
    int via = remote ? random_up_node(gs, p->node) : p->node;
    if (via < 0)
        return 1;
    int rc = herd_group_leave(regsim_node(gs->rs, via), group_name[j], p->pid);
    trace(gs, remote ? "leave (remote)" : "leave", k, j, via, rc);
    /* On its own node a membership another node removed (after a partition
     * longer than the forget time) may be missing until its node's next
     * check puts it back: the leave then says HERD_ENOENT and it is put
     * back no more. Elsewhere the membership was agreed: it is there. */
    int ok = gs->member[k][j] ? rc == 0 || (!remote && rc == HERD_ENOENT) : rc == HERD_ENOENT;
    RS_CHECK(r, ok, "leave of proc %d from group %d (%s) via %s: %s", k, j,
             gs->member[k][j] ? "a member" : "no member", regsim_name(gs->rs, via),
             herd_strerror(rc));
    gs->pending[k][j] = (uint8_t)(remote && gs->member[k][j]);
    gs->member[k][j] = 0;
    if (remote)
        gs->remote_leaves++;
    else
        gs->leaves++;
    return 1;
}

static int op_exit(gsim_t *gs)
{
    int k = random_proc(gs);
    if (k < 0)
        return 1;
    int reason = regsim_range(gs->rs, 0, 1) ? HERD_REASON_NORMAL : HERD_REASON_KILLED;
    RS_CHECK_OK(gs->r, regsim_stop(gs->rs, k, reason));
    gs->stopped[k] = 1;
    gs->exits++;
    return 1;
}

/* ---- faults --------------------------------------------------------------------- */

/* Below the down time, between it and the forget time, or past forget. */
static uint64_t fault_length(gsim_t *gs)
{
    switch (regsim_range(gs->rs, 0, 2)) {
    case 0:
        return regsim_range(gs->rs, 50, 250);
    case 1:
        return regsim_range(gs->rs, 400, FORGET_MS - 300);
    default:
        return regsim_range(gs->rs, FORGET_MS + 300, FORGET_MS + 2000);
    }
}

static void partition(gsim_t *gs)
{
    int n = regsim_node_count(gs->rs), side[RS_MAX_NODES], ones = 0;
    for (int i = 0; i < n; i++)
        ones += side[i] = (int)regsim_range(gs->rs, 0, 1);
    if (ones == 0 || ones == n)
        side[regsim_range(gs->rs, 0, (uint64_t)n - 1)] ^= 1;
    for (int i = 0; i < n; i++)
        regsim_set_group(gs->rs, i, 1 + side[i]);
    gs->heal_at = regsim_now(gs->rs) + fault_length(gs);
    gs->partitions++;
    if (getenv("HERD_SIM_TRACE")) {
        fprintf(stderr, "t=%llu partition until %llu:", (unsigned long long)regsim_now(gs->rs),
                (unsigned long long)gs->heal_at);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %s=%d", regsim_name(gs->rs, i), side[i]);
        fprintf(stderr, "\n");
    }
}

static int crash(gsim_t *gs)
{
    int up = 0;
    for (int i = 0; i < regsim_node_count(gs->rs); i++)
        up += regsim_is_up(gs->rs, i);
    if (up < 2)
        return 1;
    int i = random_up_node(gs, -1);
    RS_CHECK_OK(gs->r, regsim_crash(gs->rs, i));
    gs->restart_at[i] = regsim_now(gs->rs) + fault_length(gs);
    trace_fault(gs, "crash", i);
    gs->crashes++;
    return 1;
}

static int fault(gsim_t *gs)
{
    if (any_pending(gs))
        return 1;
    int can_part = (gs->flags & F_PARTITIONS) && gs->heal_at == 0;
    int can_crash = (gs->flags & F_CRASHES) != 0;
    if (can_part && (!can_crash || regsim_range(gs->rs, 0, 1)))
        partition(gs);
    else if (can_crash)
        return crash(gs);
    return 1;
}

/* Heal and restarts that are due. */
static int due(gsim_t *gs)
{
    uint64_t now = regsim_now(gs->rs);
    if (gs->heal_at && now >= gs->heal_at) {
        regsim_heal(gs->rs);
        gs->heal_at = 0;
        trace_fault(gs, "heal", -1);
    }
    for (int i = 0; i < regsim_node_count(gs->rs); i++)
        if (gs->restart_at[i] && now >= gs->restart_at[i]) {
            gs->restart_at[i] = 0;
            RS_CHECK_OK(gs->r, regsim_start(gs->rs, i));
            trace_fault(gs, "restart", i);
        }
    return 1;
}

static int ops(gsim_t *gs)
{
    regsim_t *rs = gs->rs;
    uint64_t end = regsim_now(rs) + OPS_MS;
    while (regsim_now(rs) < end) {
        RS_CHECK_OK(gs->r, regsim_run_for(rs, regsim_range(rs, 5, 40)));
        if (!due(gs))
            return 0;
        clear_pending(gs);
        uint64_t op = regsim_range(rs, 0, 99);
        int ok, remote = healthy(gs);
        if (op < 8)
            ok = op_spawn(gs);
        else if (op < 45)
            ok = op_join(gs, 0);
        else if (op < 60)
            ok = op_leave(gs, 0);
        else if (op < 72)
            ok = op_join(gs, remote);
        else if (op < 80)
            ok = op_leave(gs, remote);
        else if (op < 88)
            ok = op_exit(gs);
        else if (op < 94 && gs->flags)
            ok = fault(gs);
        else
            ok = op_join(gs, 0);
        if (!ok)
            return 0;
    }
    return 1;
}

/* ---- the checks ------------------------------------------------------------------- */

typedef struct member_list {
    int n;
    herd_pid_t pid[RS_MAX_PROCS];
    herd_meta_t meta[RS_MAX_PROCS];
} member_list_t;

static int list_member(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)group;
    member_list_t *l = data;
    if (l->n < RS_MAX_PROCS) {
        l->pid[l->n] = pid;
        l->meta[l->n] = *meta;
    }
    l->n++;
    return 0;
}

typedef struct group_list {
    int n;
    int count[GROUPS];
    int unknown;
} group_list_t;

static int list_group(void *data, const char *group, size_t members)
{
    group_list_t *l = data;
    l->n++;
    for (int j = 0; j < GROUPS; j++)
        if (strcmp(group, group_name[j]) == 0) {
            l->count[j] = (int)members;
            return 0;
        }
    l->unknown++;
    return 0;
}

#define WHY(...)                                                                         \
    do {                                                                                 \
        snprintf(why, cap, __VA_ARGS__);                                                 \
        return 0;                                                                        \
    } while (0)

/* A hidden membership, to say why one is left. */
typedef struct hidden {
    gsim_t *gs;
    registry_t *g;
    int n;
    herd_pid_t pid;
} hidden_t;

static int find_hidden(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    hidden_t *h = data;
    if (!reg_is_group_key(key, klen))
        return 0;
    for (; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(h->g->map, e, NULL);
        if (reg_hidden(h->g, v.pid) && h->n++ == 0)
            h->pid = v.pid;
    }
    return 0;
}

static const char *node_of(gsim_t *gs, uint64_t id)
{
    for (int i = 0; i < regsim_node_count(gs->rs); i++)
        if (herd_node_id_of(regsim_name(gs->rs, i)) == id)
            return regsim_name(gs->rs, i);
    return "?";
}

static const char *member_state(herd_node_t *n, const char *name)
{
    herd_member_info_t info[RS_MAX_NODES * 2];
    int m = herd_cluster_members(n, info, RS_MAX_NODES * 2);
    for (int k = 0; k < m; k++)
        if (strcmp(info[k].name, name) == 0)
            return herd_member_state_name(info[k].state);
    return "absent";
}

/* For a failure's report (HERD_SIM_DEBUG=1, once the deadline passed). */
static int dumping;

static void dump_entry(gsim_t *gs, const registry_t *g, const awmap_entry_t *e)
{
    herd_meta_t meta;
    reg_value_t v = reg_value_decode(g->map, e, &meta);
    awmap_replica_id_t w = awmap_replica_id(g->map, e->dot.replica);
    const char *token = herd_meta_get(&meta, "v");
    fprintf(stderr, "  entry by %s/%llx #%llu: pid %s/%llx/%llu, hlc %llu, written %llu, "
            "metadata %s%s\n",
            node_of(gs, w.node), (unsigned long long)w.incarnation,
            (unsigned long long)e->dot.counter, node_of(gs, v.pid.node),
            (unsigned long long)v.pid.incarnation, (unsigned long long)v.pid.serial,
            (unsigned long long)v.hlc, (unsigned long long)v.written, token ? token : "(none)",
            reg_hidden(g, v.pid) ? " (hidden)" : "");
}

/* The entries of membership (k, j) on every node. */
static void dump_membership(gsim_t *gs, int k, int j)
{
    char key[REG_GROUP_KEY_MAX + 1];
    size_t klen = reg_group_key(group_name[j], strlen(group_name[j]),
                                regsim_proc(gs->rs, k)->pid, key);
    for (int i = 0; i < regsim_node_count(gs->rs); i++) {
        herd_node_t *n = regsim_node(gs->rs, i);
        if (n == NULL)
            continue;
        fprintf(stderr, "%s, proc %d in group %d:\n", regsim_name(gs->rs, i), k, j);
        for (const awmap_entry_t *e = awmap_get(reg_of(n)->map, key, klen); e; e = awmap_next(e))
            dump_entry(gs, reg_of(n), e);
    }
}

/* Every key of one node with two entries or more. */
typedef struct dump_ctx {
    gsim_t *gs;
    const registry_t *g;
} dump_ctx_t;

static int dump_multi(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    dump_ctx_t *c = data;
    if (e == NULL || awmap_next(e) == NULL)
        return 0;
    fprintf(stderr, " key %.*s:\n", (int)klen, key);
    for (; e; e = awmap_next(e))
        dump_entry(c->gs, c->g, e);
    return 0;
}

/* Group j on node i as the model has it. */
static int group_as_model(gsim_t *gs, int i, int j, member_list_t *l, char *why, size_t cap)
{
    regsim_t *rs = gs->rs;
    herd_node_t *n = regsim_node(rs, i);
    const char *name = regsim_name(rs, i);
    int want = 0, want_local = 0;
    for (int k = 0; k < regsim_proc_count(rs); k++)
        if (alive(gs, k) && gs->member[k][j]) {
            want++;
            want_local += regsim_proc(rs, k)->node == i;
        }
    l->n = 0;
    int rc = herd_group_members(n, group_name[j], list_member, l);
    if (l->n > RS_MAX_PROCS)
        WHY("%s: group %d has %d members", name, j, l->n);
    for (int k = 0; k < regsim_proc_count(rs); k++) {
        int at = 0;
        while (at < l->n && !herd_pid_equal(regsim_proc(rs, k)->pid, l->pid[at]))
            at++;
        if (((at < l->n) != (alive(gs, k) && gs->member[k][j])) && dumping)
            dump_membership(gs, k, j);
        if ((at < l->n) != (alive(gs, k) && gs->member[k][j]))
            WHY("%s: group %d %s proc %d (of %s, %s), the model %s", name, j,
                at < l->n ? "has" : "lacks", k, regsim_name(rs, regsim_proc(rs, k)->node),
                alive(gs, k) ? "alive" : "dead", gs->member[k][j] ? "a member" : "no member");
    }
    if (rc != want || l->n != want)
        WHY("%s: group %d has %d members (returned %d), the model %d", name, j, l->n, rc, want);
    int counted = herd_group_count(n, group_name[j]);
    if (counted != want)
        WHY("%s: group %d counts %d members, the model %d", name, j, counted, want);
    int local = herd_group_local_members(n, group_name[j], NULL, NULL);
    if (local != want_local)
        WHY("%s: group %d has %d local members, the model %d", name, j, local, want_local);
    for (int m = 0; m < l->n; m++) {
        int k = 0;
        while (k < regsim_proc_count(rs) && !herd_pid_equal(regsim_proc(rs, k)->pid, l->pid[m]))
            k++;
        if (k == regsim_proc_count(rs) || !alive(gs, k) || !gs->member[k][j])
            WHY("%s: group %d lists a process that is no member (proc %d)", name, j, k);
        if (!meta_is(&l->meta[m], gs->token[k][j]) && dumping)
            dump_membership(gs, k, j);
        if (!meta_is(&l->meta[m], gs->token[k][j]))
            WHY("%s: group %d, proc %d: metadata %s, the model's \"%s\"", name, j, k,
                herd_meta_get(&l->meta[m], "v") ? herd_meta_get(&l->meta[m], "v") : "(none)",
                gs->token[k][j]);
    }
    return 1;
}

/* Node i as the model has it. */
static int node_as_model(gsim_t *gs, int i, member_list_t *l, char *why, size_t cap)
{
    regsim_t *rs = gs->rs;
    herd_node_t *n = regsim_node(rs, i);
    const char *name = regsim_name(rs, i);
    uint64_t total = 0;
    group_list_t gl;
    memset(&gl, 0, sizeof(gl));
    int listed = herd_group_list(n, NULL, list_group, &gl), want_listed = 0;
    for (int j = 0; j < GROUPS; j++) {
        if (!group_as_model(gs, i, j, l, why, cap))
            return 0;
        total += (uint64_t)l->n;
        want_listed += l->n > 0;
        if (gl.count[j] != l->n)
            WHY("%s: the list gives group %d %d members, not %d", name, j, gl.count[j], l->n);
    }
    if (listed != want_listed || gl.unknown)
        WHY("%s: %d groups listed (%d unknown), %d have members", name, listed, gl.unknown,
            want_listed);
    for (int k = 0; k < regsim_proc_count(rs); k++) {
        view_t v;
        int rc = view_of(gs, i, k, &v);
        if (rc || v.unknown)
            WHY("%s: which of proc %d: %s (%d unknown groups)", name, k, herd_strerror(rc),
                v.unknown);
        for (int j = 0; j < GROUPS; j++)
            if (!view_shows(gs, &v, k, j))
                WHY("%s: which of proc %d (%s, %s) differs from the model in group %d", name,
                    k, regsim_name(rs, regsim_proc(rs, k)->node), alive(gs, k) ? "alive" : "dead",
                    j);
    }
    registry_t *g = reg_of(n);
    if (g->group_entries != total || g->group_keys != total) {
        hidden_t h = {gs, g, 0, HERD_PID_NONE};
        awmap_foreach(g->map, find_hidden, &h);
        if (dumping) {
            dump_ctx_t c = {gs, g};
            awmap_foreach(g->map, dump_multi, &c);
        }
        if (h.n)
            WHY("%s: %llu entries of %llu memberships, the model %llu: %d hidden, e.g. of %s "
                "start %llx (%s here)",
                name, (unsigned long long)g->group_entries, (unsigned long long)g->group_keys,
                (unsigned long long)total, h.n, node_of(gs, h.pid.node),
                (unsigned long long)h.pid.incarnation, member_state(n, node_of(gs, h.pid.node)));
        WHY("%s: %llu entries of %llu memberships, the model %llu: none hidden (two entries "
            "of one membership)",
            name, (unsigned long long)g->group_entries, (unsigned long long)g->group_keys,
            (unsigned long long)total);
    }
    herd_registry_stats_t st;
    herd_registry_stats(n, &st);
    int names = herd_registry_count(n, NULL);
    if ((st.names != (uint64_t)names || st.entries != (uint64_t)names) && dumping) {
        dump_ctx_t c = {gs, reg_of(n)};
        awmap_foreach(c.g->map, dump_multi, &c);
    }
    if (st.names != (uint64_t)names || st.entries != (uint64_t)names)
        WHY("%s: the stats say %llu names, %llu entries; %d names counted", name,
            (unsigned long long)st.names, (unsigned long long)st.entries, names);
    return 1;
}

static int all_as_model(gsim_t *gs, char *why, size_t cap)
{
    static member_list_t l; /* large: one for the whole program */
    for (int i = 0; i < regsim_node_count(gs->rs); i++)
        if (regsim_is_up(gs->rs, i) && !node_as_model(gs, i, &l, why, cap))
            return 0;
    return regsim_replicas_agree(gs->rs, 1, why, cap); /* the names */
}

static int run_until_model(gsim_t *gs, const char *what)
{
    char why[512] = "";
    uint64_t deadline = regsim_now(gs->rs) + SETTLE_MS;
    while (!all_as_model(gs, why, sizeof(why))) {
        if (regsim_now(gs->rs) >= deadline) {
            dumping = getenv("HERD_SIM_DEBUG") != NULL; /* the same check, told */
            all_as_model(gs, why, sizeof(why));
            dumping = 0;
        }
        RS_CHECK(gs->r, regsim_now(gs->rs) < deadline, "%s: no agreement with the model: %s",
                 what, why);
        RS_CHECK_OK(gs->r, regsim_run_for(gs->rs, 50));
    }
    return 1;
}

/* ---- the runs --------------------------------------------------------------------- */

static int run(rs_run_t *r, int flags)
{
    static gsim_t gs; /* large: one for the whole program */
    int nodes = (int)(3 + r->seed % 3);
    if (group_name[0][0] == '\0')
        names_init();
    if (!regsim_make_cluster(r, nodes, FORGET_MS, 20, 10))
        return 0;
    memset(&gs, 0, sizeof(gs));
    gs.r = r;
    gs.rs = r->rs;
    gs.flags = flags;
    for (int i = 0; i < nodes; i++)
        for (int k = 0; k < 2; k++)
            RS_CHECK(r, regsim_spawn(gs.rs, i) >= 0, "spawn");
    RS_CHECK_OK(r, regsim_register(gs.rs, 0, "svc", NULL)); /* a group's string */
    if (!ops(&gs))
        return 0;
    /* the end of the faults: heal, restart, maybe one node down for good */
    regsim_heal(gs.rs);
    gs.heal_at = 0;
    int keep_down = (flags & F_CRASHES) && regsim_range(gs.rs, 0, 2) == 0;
    for (int i = 0; i < nodes; i++)
        if (gs.restart_at[i]) {
            gs.restart_at[i] = 0;
            if (keep_down) {
                keep_down = 0;
                trace_fault(&gs, "kept down", i);
            } else {
                RS_CHECK_OK(r, regsim_start(gs.rs, i));
                trace_fault(&gs, "restart", i);
            }
        }
    RS_CHECK(r, regsim_run_until_members(gs.rs, regsim_now(gs.rs) + 10000) == 0,
             "members did not converge after the faults");
    if (!run_until_model(&gs, "after the operations"))
        return 0;
    RS_CHECK_OK(r, regsim_run_for(gs.rs, 4500));
    char why[512] = "";
    RS_CHECK(r, all_as_model(&gs, why, sizeof(why)), "4.5 s later: %s", why);
    /* every process exits: no membership left anywhere */
    for (int k = 0; k < regsim_proc_count(gs.rs); k++) {
        if (alive(&gs, k) && !gs.stopped[k])
            RS_CHECK_OK(r, regsim_stop(gs.rs, k, HERD_REASON_SHUTDOWN));
        memset(gs.member[k], 0, sizeof(gs.member[k])); /* its exit is carried out next */
    }
    if (!run_until_model(&gs, "after every process exited"))
        return 0;
    for (int i = 0; i < nodes; i++)
        RS_CHECK(r, !regsim_is_up(gs.rs, i) || reg_of(regsim_node(gs.rs, i))->group_entries == 0,
                 "%s keeps memberships after every process exited", regsim_name(gs.rs, i));
    if (getenv("HERD_SIM_VERBOSE"))
        printf("seed %llu: %d nodes, %d processes, joins %u (remote %u), leaves %u (remote "
               "%u), exits %u, partitions %u, crashes %u\n",
               (unsigned long long)r->seed, nodes, regsim_proc_count(gs.rs), gs.joins,
               gs.remote_joins, gs.leaves, gs.remote_leaves, gs.exits, gs.partitions,
               gs.crashes);
    return 1;
}

static int scen_churn(rs_run_t *r)
{
    return run(r, 0);
}

static int scen_partitions(rs_run_t *r)
{
    return run(r, F_PARTITIONS);
}

static int scen_crashes(rs_run_t *r)
{
    return run(r, F_CRASHES);
}

static int scen_mixed(rs_run_t *r)
{
    return run(r, F_PARTITIONS | F_CRASHES);
}

int main(void)
{
    static const rs_case_t cases[] = {
        {"churn", scen_churn, 300},
        {"partitions", scen_partitions, 300},
        {"crashes", scen_crashes, 300},
        {"mixed", scen_mixed, 300},
    };
    return regsim_main("sim_groups", cases, sizeof(cases) / sizeof(cases[0]));
}
