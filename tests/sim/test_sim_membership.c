/*
 * test_sim_membership.c - the membership state machine (runtime/membership.c)
 * in deterministic multi-node simulations (simnet.h): join through one seed,
 * simultaneous start, crash detection, restart, partitions with and without
 * forgetting, graceful leave, a node with the wrong secret, a lossy network,
 * determinism of the simulator itself, draining, random chaos, recorded
 * frames replayed to a restarted node, a second node with a live member's
 * name, and a restart at another address.
 *
 * Each case runs its scenario over many seeds (simtest.h: HERD_SIM_SEEDS,
 * HERD_SIM_FIRST_SEED, HERD_SIM_SEED=N to replay one, HERD_SIM_TEST,
 * HERD_SIM_VERBOSE, HERD_SIM_LOG, HERD_SIM_LIST), and every
 * run must also keep the simulator's invariants (simnet_check.c: the member
 * events replay to the table, ring_changed never missed). Figures such as
 * convergence and detection times or suspects under loss are printed per case
 * as "sim CASE METRIC mean=... min=... max=..." lines.
 *
 * Timings are the defaults scaled for short runs: heartbeat 200 ms, suspect
 * 600, down 1200, forget 5000, ticks every 20 ms, delays 1-20 ms.
 *
 * reordered_drain pins a fixed bug: a heartbeat that arrived after a newer one
 * used to set the sender's state back. replay_after_restart pins another
 * (issue 12, item 4): frames recorded from a node, replayed to a restarted
 * node after the recorded one died, used to bring it up there.
 * duplicate_name (item 2): a second node started with a live member's name
 * used to replace it everywhere; now it is refused before anybody admits
 * it. restart_elsewhere: a node restarted at another address asks its old
 * start, and joins once that stays silent.
 *
 * kill_detection: a killed node (its links close, reconnects are refused)
 * is down at every survivor within a tick of the refusal, without a
 * suspect stage, while a node crashed silently at the same moment still
 * takes down_ms of silence; the killed node restarts and rejoins.
 * bad_link: one node's link to a live member is closed and refused for a
 * while: that node alone declares it down, once, and up again when it is
 * next heard; nobody else ever suspects it. chaos_links: chaos with kills
 * and cut links among the faults.
 */
#include <stdint.h>
#include <string.h>

#include "simtest.h"

#define NODES 5
/* a crash is seen within: silence for down_ms, the last heartbeat's age,
 * its delay, and the tick that judges */
#define DETECT_MS (SIM_DOWN + SIM_HB + SIM_DELAY_MAX + SIM_TICK)

/* Five nodes joining through node1 from t=0, converged. */
static int converged_cluster(sim_run_t *r, uint32_t forget_ms)
{
    if (!sim_make_net(r, NULL, forget_ms) || !sim_add_nodes(r, NODES, 0) ||
        !sim_start_spread(r, NODES, 200))
        return 0;
    return sim_converge_by(r, SIM_CONVERGE_MS, NULL);
}

/* Two more seconds change nothing, and nobody ever failed. */
static int stays_converged(sim_run_t *r)
{
    SIM_CHECK_OK(r, simnet_run_for(r->s, 2000));
    return sim_converged_now(r, "later") && sim_none_failed(r, NODES, -1, 0);
}

/* ---- 1. join through one seed ------------------------------------------- */

static int scen_join(sim_run_t *r)
{
    uint64_t when;
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, NODES, 0) ||
        !sim_start_spread(r, NODES, 200) || !sim_converge_by(r, SIM_CONVERGE_MS, &when))
        return 0;
    sim_stat_add(&r->figures[0], when);
    return stays_converged(r);
}

/* ---- 2. simultaneous start ---------------------------------------------- */

static int scen_simultaneous(sim_run_t *r)
{
    uint64_t when;
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, NODES, 1))
        return 0;
    for (int i = 0; i < NODES; i++)
        SIM_CHECK_OK(r, simnet_start(r->s, i));
    if (!sim_converge_by(r, SIM_CONVERGE_MS, &when))
        return 0;
    sim_stat_add(&r->figures[0], when);
    return stays_converged(r);
}

/* ---- 3. crash detection ------------------------------------------------- */

/* Every survivor suspects then downs `victim` in time and never too early. */
static int check_detection(sim_run_t *r, int victim, uint64_t tc)
{
    const char *vname = sim_names[victim];
    for (int i = 0; i < NODES; i++) {
        if (i == victim)
            continue;
        const sim_mevent_t *down = sim_find_event(r->s, i, vname, MEMBER_DOWN, tc);
        const sim_mevent_t *sus = sim_find_event(r->s, i, vname, MEMBER_SUSPECT, tc);
        SIM_CHECK(r, down != NULL, "%s never marked %s down", sim_names[i], vname);
        SIM_CHECK(r, down->time - tc <= DETECT_MS,
                  "%s marked %s down %llu ms after the crash", sim_names[i], vname,
                  (unsigned long long)(down->time - tc));
        SIM_CHECK(r, down->time >= down->last_rx + SIM_DOWN,
                  "%s marked %s down at t=%llu, its last frame came at t=%llu",
                  sim_names[i], vname, (unsigned long long)down->time,
                  (unsigned long long)down->last_rx);
        SIM_CHECK(r, sus != NULL && sus->time <= down->time,
                  "%s never suspected %s first", sim_names[i], vname);
        SIM_CHECK(r, sus->time >= sus->last_rx + SIM_SUSPECT,
                  "%s suspected %s at t=%llu, its last frame came at t=%llu",
                  sim_names[i], vname, (unsigned long long)sus->time,
                  (unsigned long long)sus->last_rx);
        sim_stat_add(&r->figures[0], down->time - tc);
        sim_stat_add(&r->figures[1], sus->time - tc);
    }
    return sim_none_failed(r, NODES, victim, 0);
}

/* Converge, crash a random node at a random moment; returns the crash time. */
static int crash_one(sim_run_t *r, int *victim, uint64_t *tc)
{
    if (!converged_cluster(r, SIM_FORGET))
        return 0;
    *victim = (int)simnet_random_range(r->s, 0, NODES - 1);
    *tc = simnet_now(r->s) + simnet_random_range(r->s, 0, SIM_HB - 1);
    SIM_CHECK_OK(r, simnet_run_until(r->s, *tc));
    SIM_CHECK_OK(r, simnet_crash(r->s, *victim));
    return 1;
}

static int scen_crash(sim_run_t *r)
{
    int victim;
    uint64_t tc;
    if (!crash_one(r, &victim, &tc))
        return 0;
    SIM_CHECK_OK(r, simnet_run_until(r->s, tc + DETECT_MS + 100));
    if (!check_detection(r, victim, tc))
        return 0;
    return sim_converged_now(r, "among the survivors");
}

/* ---- 4. restart --------------------------------------------------------- */

/* Every node but the victim and `skip` (-1: none) logged the victim's old
 * start gone (restarted) and its new start up since tr. */
static int check_restart_events(sim_run_t *r, int victim, uint64_t old_inc, uint64_t tr,
                                int skip)
{
    const char *vname = sim_names[victim];
    uint64_t new_inc = simnet_node(r->s, victim)->incarnation;
    SIM_CHECK(r, new_inc > old_inc, "incarnation %llu after %llu",
              (unsigned long long)new_inc, (unsigned long long)old_inc);
    for (int i = 0; i < NODES; i++) {
        const sim_mevent_t *gone = NULL;
        if (i == victim || i == skip)
            continue;
        sim_scan(r->s, i, (sim_match_t){vname, SIM_ANY_STATE, MEMBER_ABSENT, 0, old_inc},
                 &gone);
        SIM_CHECK(r, gone && gone->gone == MSHIP_GONE_RESTARTED,
                  "%s never logged %s %llu gone (restarted)", sim_names[i], vname,
                  (unsigned long long)old_inc);
        SIM_CHECK(r,
                  sim_scan(r->s, i,
                           (sim_match_t){vname, MEMBER_ABSENT, MEMBER_UP, tr, new_inc},
                           NULL),
                  "%s never logged %s %llu up", sim_names[i], vname,
                  (unsigned long long)new_inc);
    }
    return 1;
}

static int scen_restart(sim_run_t *r)
{
    int victim;
    uint64_t tc, when;
    if (!crash_one(r, &victim, &tc))
        return 0;
    uint64_t old_inc = simnet_node(r->s, victim)->incarnation;
    uint64_t tr = tc + simnet_random_range(r->s, 50, 3000);
    SIM_CHECK_OK(r, simnet_run_until(r->s, tr));
    SIM_CHECK_OK(r, simnet_start(r->s, victim));
    if (!sim_converge_by(r, tr + 4000, &when))
        return 0;
    sim_stat_add(&r->figures[0], when - tr);
    SIM_CHECK_OK(r, simnet_run_for(r->s, 500));
    if (!check_restart_events(r, victim, old_inc, tr, -1))
        return 0;
    return sim_none_failed(r, NODES, victim, 0);
}

/* ---- 5. partition and heal ---------------------------------------------- */

#define PARTITION_MS 5000

static int side_of(int i)
{
    return i < 2 ? 0 : 1; /* {node1, node2} | {node3, node4, node5} */
}

/* Every node logged, since `since`, an event from `from` (SIM_ANY_STATE: any)
 * to `to` about each node of the other side, at its current incarnation. */
static int cross_events(sim_run_t *r, mship_state_t to, mship_state_t from,
                        uint64_t since)
{
    for (int i = 0; i < NODES; i++) {
        for (int j = 0; j < NODES; j++) {
            if (side_of(i) == side_of(j))
                continue;
            sim_match_t m = {sim_names[j], from, to, since,
                             simnet_node(r->s, j)->incarnation};
            SIM_CHECK(r, sim_scan(r->s, i, m, NULL),
                      "%s never logged %s %s -> %s since t=%llu", sim_names[i],
                      sim_names[j], from == SIM_ANY_STATE ? "*" : mship_state_name(from),
                      mship_state_name(to), (unsigned long long)since);
        }
    }
    return 1;
}

static int no_same_side_failures(sim_run_t *r)
{
    for (int i = 0; i < NODES; i++) {
        for (int j = 0; j < NODES; j++) {
            if (i == j || side_of(i) != side_of(j))
                continue;
            const sim_mevent_t *ev =
                sim_find_event(r->s, i, sim_names[j], MEMBER_SUSPECT, 0);
            if (ev == NULL)
                ev = sim_find_event(r->s, i, sim_names[j], MEMBER_DOWN, 0);
            SIM_CHECK(r, ev == NULL, "%s marked %s (same side) %s at t=%llu",
                      sim_names[i], sim_names[j], mship_state_name(ev->new_state),
                      (unsigned long long)ev->time);
        }
    }
    return 1;
}

static int scen_partition(sim_run_t *r, uint32_t forget_ms, int forgets)
{
    uint8_t groups[NODES];
    uint64_t when;
    if (!converged_cluster(r, forget_ms))
        return 0;
    uint64_t tp = simnet_now(r->s) + simnet_random_range(r->s, 0, SIM_HB - 1);
    uint64_t th = tp + PARTITION_MS;
    for (int i = 0; i < NODES; i++)
        groups[i] = (uint8_t)side_of(i);
    SIM_CHECK_OK(r, simnet_run_until(r->s, tp));
    SIM_CHECK_OK(r, simnet_partition(r->s, groups, NODES));
    SIM_CHECK_OK(r, simnet_run_until(r->s, th));
    if (!cross_events(r, MEMBER_DOWN, SIM_ANY_STATE, tp))
        return 0;
    if (forgets && !cross_events(r, MEMBER_ABSENT, SIM_ANY_STATE, tp))
        return 0;
    SIM_CHECK_OK(r, simnet_heal(r->s));
    if (!sim_converge_by(r, th + SIM_CONVERGE_MS, &when))
        return 0;
    sim_stat_add(&r->figures[0], when - th);
    SIM_CHECK_OK(r, simnet_run_for(r->s, 1000));
    if (!sim_converged_now(r, "later"))
        return 0;
    if (!cross_events(r, MEMBER_UP, forgets ? MEMBER_ABSENT : MEMBER_DOWN, th))
        return 0;
    for (int i = 0; i < NODES && !forgets; i++) {
        const sim_mevent_t *ev = sim_find_event(r->s, i, NULL, MEMBER_ABSENT, 0);
        SIM_CHECK(r, ev == NULL, "%s logged %s gone at t=%llu, forget_ms is %u",
                  sim_names[i], ev->name, (unsigned long long)ev->time, forget_ms);
    }
    return no_same_side_failures(r);
}

static int scen_partition_remembered(sim_run_t *r)
{
    return scen_partition(r, PARTITION_MS + 3000, 0);
}

static int scen_partition_forgotten(sim_run_t *r)
{
    return scen_partition(r, 2000, 1);
}

/* ---- 6. graceful leave -------------------------------------------------- */

static int check_left_at_once(sim_run_t *r, int leaver)
{
    const char *lname = sim_names[leaver];
    for (int i = 0; i < NODES; i++) {
        if (i == leaver)
            continue;
        const mship_member_t *x = simnet_member(r->s, i, lname);
        SIM_CHECK(r, x != NULL && x->state == MEMBER_LEFT, "%s sees %s %s", sim_names[i],
                  lname, x ? mship_state_name(x->state) : "absent");
        SIM_CHECK(r, sim_in_ring(r->s, i, lname) == 0, "%s's ring still has %s",
                  sim_names[i], lname);
    }
    return sim_converged_now(r, "after the leave");
}

static int check_forgotten(sim_run_t *r, int leaver)
{
    const char *lname = sim_names[leaver];
    for (int i = 0; i < NODES; i++) {
        if (i == leaver)
            continue;
        const sim_mevent_t *left = sim_find_event(r->s, i, lname, MEMBER_LEFT, 0);
        const sim_mevent_t *gone = sim_find_event(r->s, i, lname, MEMBER_ABSENT, 0);
        SIM_CHECK(r, left != NULL, "%s never logged %s left", sim_names[i], lname);
        SIM_CHECK(r, gone != NULL && gone->gone == MSHIP_GONE_FORGOTTEN,
                  "%s never forgot %s", sim_names[i], lname);
        SIM_CHECK(r, gone->time >= left->time + SIM_FORGET,
                  "%s forgot %s %llu ms after it left", sim_names[i], lname,
                  (unsigned long long)(gone->time - left->time));
        SIM_CHECK(r, simnet_member(r->s, i, lname) == NULL, "%s still lists %s",
                  sim_names[i], lname);
        sim_stat_add(&r->figures[0], gone->time - left->time);
    }
    return sim_never_failed(r, lname, 0, 0);
}

static int scen_leave(sim_run_t *r)
{
    if (!converged_cluster(r, SIM_FORGET))
        return 0;
    int leaver = (int)simnet_random_range(r->s, 0, NODES - 1);
    uint64_t tl = simnet_now(r->s) + simnet_random_range(r->s, 0, SIM_HB - 1);
    SIM_CHECK_OK(r, simnet_run_until(r->s, tl));
    SIM_CHECK_OK(r, simnet_leave(r->s, leaver));
    SIM_CHECK_OK(r, simnet_run_until(r->s, tl + SIM_DELAY_MAX + 1));
    if (!check_left_at_once(r, leaver))
        return 0;
    SIM_CHECK_OK(r, simnet_run_until(r->s, tl + SIM_FORGET + 2 * SIM_HB + SIM_DELAY_MAX));
    SIM_CHECK(r, simnet_node(r->s, leaver)->status == SIM_NODE_STOPPED,
              "the leaver still runs");
    if (!check_forgotten(r, leaver))
        return 0;
    if (!sim_none_failed(r, NODES, leaver, 0))
        return 0;
    return sim_converged_now(r, "at the check");
}

/* ---- 7. wrong secret ---------------------------------------------------- */

static int scen_wrong_secret(sim_run_t *r)
{
    const char *seed = sim_names[0];
    sim_node_config_t intruder = {.name = sim_names[NODES],
                                  .seeds = &seed,
                                  .seed_count = 1,
                                  .secret = "not-the-cluster-secret-at-all"};
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, NODES, 0))
        return 0;
    int x = simnet_add_node(r->s, &intruder);
    SIM_CHECK(r, x == NODES, "add intruder: %d", x);
    simnet_node(r->s, x)->observed = 0;
    if (!sim_start_spread(r, NODES + 1, 200) ||
        !sim_converge_by(r, SIM_CONVERGE_MS, NULL))
        return 0;
    SIM_CHECK_OK(r, simnet_run_until(r->s, 5000));
    if (!sim_converged_now(r, "at the check"))
        return 0;
    for (int i = 0; i < NODES; i++) {
        const sim_node_t *n = simnet_node(r->s, i);
        SIM_CHECK(r, sim_find_event(r->s, i, intruder.name, SIM_ANY_STATE, 0) == NULL,
                  "%s logged an event about the intruder", n->name);
        SIM_CHECK(r, i == 0 || n->stats.rejects[FRAME_REJECT_MAC] == 0,
                  "%s rejected %llu frames by MAC", n->name,
                  (unsigned long long)n->stats.rejects[FRAME_REJECT_MAC]);
    }
    const sim_node_t *seed_node = simnet_node(r->s, 0), *xn = simnet_node(r->s, x);
    SIM_CHECK(r,
              seed_node->stats.rejects[FRAME_REJECT_MAC] > 0 &&
                  seed_node->stats.rejects[FRAME_REJECT_MAC] <= xn->stats.sent,
              "node1 rejected %llu frames by MAC, the intruder sent %llu",
              (unsigned long long)seed_node->stats.rejects[FRAME_REJECT_MAC],
              (unsigned long long)xn->stats.sent);
    SIM_CHECK(r, xn->log_count == 0 && xn->stats.received == 0,
              "the intruder accepted %llu frames",
              (unsigned long long)xn->stats.received);
    sim_stat_add(&r->figures[0], seed_node->stats.rejects[FRAME_REJECT_MAC]);
    return 1;
}

/* ---- 8. lossy network --------------------------------------------------- */

#define LOSSY_MS 30000

static const sim_net_params_t lossy_net = {
    .p_drop = 0.10, .p_dup = 0.05, .delay_min = 1, .delay_max = 50};

static unsigned all_events(simnet_t *s, mship_state_t to)
{
    unsigned c = 0;
    for (int i = 0; i < simnet_node_count(s); i++)
        c += sim_count_events(s, i, NULL, to, 0);
    return c;
}

static int scen_lossy(sim_run_t *r)
{
    uint64_t when;
    if (!sim_make_net(r, &lossy_net, SIM_FORGET) || !sim_add_nodes(r, NODES, 0) ||
        !sim_start_spread(r, NODES, 200) || !sim_converge_by(r, 5000, &when))
        return 0;
    sim_stat_add(&r->figures[0], when);
    SIM_CHECK_OK(r, simnet_run_until(r->s, LOSSY_MS));
    if (!sim_converge_by(r, LOSSY_MS + SIM_CONVERGE_MS, NULL))
        return 0;
    sim_stat_add(&r->figures[1], all_events(r->s, MEMBER_SUSPECT));
    uint64_t replays = 0;
    for (int i = 0; i < NODES; i++)
        replays += simnet_node(r->s, i)->stats.rejects[FRAME_REJECT_REPLAY];
    sim_stat_add(&r->figures[2], replays);
    return sim_none_failed(r, NODES, -1, 1);
}

/* ---- 9. determinism ----------------------------------------------------- */

typedef sim_net_stats_t trace_t;

/* A lossy run with a crash, a restart and a partition, for its hashes. */
static int traced_run(sim_run_t *r, trace_t *t)
{
    uint8_t groups[NODES] = {0, 0, 1, 1, 1};
    sim_action_t crash = {.kind = SIM_ACT_CRASH, .node = 3};
    sim_action_t start = {.kind = SIM_ACT_START, .node = 3};
    sim_action_t part = {.kind = SIM_ACT_PARTITION}, heal = {.kind = SIM_ACT_HEAL};
    memcpy(part.groups, groups, sizeof(groups));
    if (!sim_make_net(r, &lossy_net, SIM_FORGET) || !sim_add_nodes(r, NODES, 0) ||
        !sim_start_spread(r, NODES, 200))
        return 0;
    SIM_CHECK_OK(r, simnet_schedule(r->s, 3000, &crash));
    SIM_CHECK_OK(r, simnet_schedule(r->s, 4500, &start));
    SIM_CHECK_OK(r, simnet_schedule(r->s, 7000, &part));
    SIM_CHECK_OK(r, simnet_schedule(r->s, 9000, &heal));
    SIM_CHECK_OK(r, simnet_run_until(r->s, 12000));
    *t = *simnet_net_stats(r->s);
    return 1;
}

static int scen_determinism(sim_run_t *r)
{
    trace_t a, b, c;
    sim_run_t again = {.seed = r->seed}, other = {.seed = r->seed + 1000000};
    if (!traced_run(r, &a))
        return 0;
    int ok = traced_run(&again, &b) && traced_run(&other, &c);
    simnet_free(again.s);
    simnet_free(other.s);
    SIM_CHECK(r, ok, "a run failed: %.300s%.300s", again.why, other.why);
    SIM_CHECK(r, a.trace_hash == b.trace_hash && a.net_hash == b.net_hash,
              "the same seed gave traces %016llx/%016llx and %016llx/%016llx",
              (unsigned long long)a.trace_hash, (unsigned long long)a.net_hash,
              (unsigned long long)b.trace_hash, (unsigned long long)b.net_hash);
    SIM_CHECK(r, memcmp(&a, &b, sizeof(a)) == 0,
              "the same seed gave other network figures");
    SIM_CHECK(r, a.trace_hash != c.trace_hash && a.net_hash != c.net_hash,
              "seeds %llu and %llu gave the same trace %016llx",
              (unsigned long long)r->seed, (unsigned long long)other.seed,
              (unsigned long long)a.trace_hash);
    sim_stat_add(&r->figures[0], a.delivered);
    /* and after all that, the cluster heals */
    return sim_converge_by(r, simnet_now(r->s) + SIM_CONVERGE_MS, NULL);
}

/* ---- 10. draining ------------------------------------------------------- */

/* a change of the node's own state is heard once its next tick's heartbeat
 * has been delivered */
#define SEEN_MS (SIM_TICK + SIM_DELAY_MAX + 1)

/* Everybody sees `d` in `want` state, in or out of every ring. */
static int check_drain_seen(sim_run_t *r, int d, mship_state_t want)
{
    for (int i = 0; i < NODES; i++) {
        const mship_member_t *x = simnet_member(r->s, i, sim_names[d]);
        SIM_CHECK(r, x != NULL && x->state == want, "%s sees %s %s, not %s", sim_names[i],
                  sim_names[d], x ? mship_state_name(x->state) : "absent",
                  mship_state_name(want));
        SIM_CHECK(r, sim_in_ring(r->s, i, sim_names[d]) == (want != MEMBER_DRAINING),
                  "%s's ring %s %s", sim_names[i],
                  want == MEMBER_DRAINING ? "still has" : "lacks", sim_names[d]);
    }
    return sim_converged_now(r, "at the check");
}

/* Each node logged exactly `want` state changes of node d since `since`: one
 * per drain or undrain, none from stale frames. */
static int no_flaps(sim_run_t *r, int d, uint64_t since, unsigned want)
{
    for (int i = 0; i < NODES; i++) {
        unsigned c = sim_count_events(r->s, i, sim_names[d], SIM_ANY_STATE, since);
        SIM_CHECK(r, c == want, "%s logged %u state changes of %s for %u drain toggles",
                  sim_names[i], c, sim_names[d], want);
    }
    return 1;
}

static int scen_drain(sim_run_t *r)
{
    if (!converged_cluster(r, SIM_FORGET))
        return 0;
    int d = (int)simnet_random_range(r->s, 0, NODES - 1);
    /* after the millisecond the cluster converged in: a member heard of
     * then (its join) is no change the drain made */
    uint64_t td = simnet_now(r->s) + 1 + simnet_random_range(r->s, 0, SIM_HB - 1);
    SIM_CHECK_OK(r, simnet_run_until(r->s, td));
    SIM_CHECK_OK(r, simnet_set_draining(r->s, d, 1));
    SIM_CHECK_OK(r, simnet_run_until(r->s, td + SEEN_MS));
    if (!check_drain_seen(r, d, MEMBER_DRAINING))
        return 0;
    SIM_CHECK_OK(r, simnet_run_for(r->s, 3000));
    if (!check_drain_seen(r, d, MEMBER_DRAINING))
        return 0;
    uint64_t tu = simnet_now(r->s);
    SIM_CHECK_OK(r, simnet_set_draining(r->s, d, 0));
    SIM_CHECK_OK(r, simnet_run_until(r->s, tu + SEEN_MS));
    if (!check_drain_seen(r, d, MEMBER_UP) || !no_flaps(r, d, td, 2))
        return 0;
    return sim_none_failed(r, NODES, -1, 0);
}

/* ---- 11. known bug: state from a reordered frame ------------------------ */

/* Toggle draining while heartbeats reorder (delays up to 250 ms with a
 * heartbeat every 200): a peer must not apply an older frame's state over
 * a newer one's, so it sees exactly one change per toggle. */
static int scen_reordered_drain(sim_run_t *r)
{
    const sim_net_params_t jitter = {.delay_min = 1, .delay_max = 250};
    const unsigned toggles = 8;
    if (!converged_cluster(r, SIM_FORGET))
        return 0;
    SIM_CHECK_OK(r, simnet_set_net(r->s, &jitter));
    SIM_CHECK_OK(r, simnet_run_for(r->s, 1000));
    int d = (int)simnet_random_range(r->s, 0, NODES - 1);
    uint64_t t0 = simnet_now(r->s);
    for (unsigned k = 0; k < toggles; k++) {
        SIM_CHECK_OK(r, simnet_set_draining(r->s, d, (k & 1) == 0));
        SIM_CHECK_OK(r, simnet_run_for(r->s, simnet_random_range(r->s, 600, 1000)));
    }
    return no_flaps(r, d, t0, toggles);
}

/* ---- 12. chaos ---------------------------------------------------------- */

#define CHAOS_NODES 6

/* One random fault (or repair) on a random node; with `links`, kills and
 * cut links (refused or not, each reopening within 3 s) too. */
static int chaos_step(sim_run_t *r, int links)
{
    simnet_t *s = r->s;
    int i = (int)simnet_random_range(s, 0, CHAOS_NODES - 1), running = 0;
    for (int k = 0; k < CHAOS_NODES; k++)
        running += simnet_live(s, k);
    int live = simnet_live(s, i);
    sim_net_params_t net = {.p_drop = (double)simnet_random_range(s, 0, 20) / 100.0,
                            .p_dup = 0.05,
                            .delay_min = 1,
                            .delay_max = (uint32_t)simnet_random_range(s, 5, 80)};
    uint8_t groups[CHAOS_NODES];
    switch (simnet_random_range(s, 0, links ? 8 : 6)) {
    case 0:
        return live && running > 2 ? simnet_crash(s, i) : 0;
    case 1:
        return live && running > 2 && simnet_random_range(s, 0, 3) == 0
                   ? simnet_leave(s, i)
                   : 0;
    case 2:
        return simnet_node(s, i)->status != SIM_NODE_RUNNING ? simnet_start(s, i) : 0;
    case 3:
        return live ? simnet_set_draining(s, i, (int)simnet_random_range(s, 0, 1)) : 0;
    case 4:
        for (int k = 0; k < CHAOS_NODES; k++)
            groups[k] = (uint8_t)simnet_random_range(s, 0, 1);
        return simnet_partition(s, groups, CHAOS_NODES);
    case 5:
        return simnet_heal(s);
    case 7:
        return live && running > 2 ? simnet_kill(s, i) : 0;
    case 8: {
        int peer = (i + 1 + (int)simnet_random_range(s, 0, CHAOS_NODES - 2)) % CHAOS_NODES;
        return simnet_node(s, i)->status == SIM_NODE_RUNNING
                   ? simnet_cut_link(s, i, peer, (uint32_t)simnet_random_range(s, 1, 3000),
                                     (int)simnet_random_range(s, 0, 1))
                   : 0;
    }
    default:
        return simnet_set_net(s, &net);
    }
}

/* Random crashes, restarts, leaves, drains, partitions and loss (with
 * `links`: kills and cut links) for 40 s; then repair everything: the
 * cluster must converge. */
static int chaos(sim_run_t *r, int links)
{
    const sim_net_params_t calm = {.delay_min = 1, .delay_max = SIM_DELAY_MAX};
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, CHAOS_NODES, 1) ||
        !sim_start_spread(r, CHAOS_NODES, 200))
        return 0;
    while (simnet_now(r->s) < 40000) {
        SIM_CHECK_OK(r, simnet_run_for(r->s, simnet_random_range(r->s, 100, 1500)));
        SIM_CHECK_OK(r, chaos_step(r, links));
    }
    SIM_CHECK_OK(r, simnet_heal(r->s));
    SIM_CHECK_OK(r, simnet_set_net(r->s, &calm));
    for (int i = 0; i < CHAOS_NODES; i++) {
        if (simnet_node(r->s, i)->status != SIM_NODE_RUNNING)
            SIM_CHECK_OK(r, simnet_start(r->s, i));
        else if (simnet_live(r->s, i))
            SIM_CHECK_OK(r, simnet_set_draining(r->s, i, 0));
    }
    uint64_t t0 = simnet_now(r->s), when;
    if (!sim_converge_by(r, t0 + 2 * SIM_DOWN + SIM_CONVERGE_MS, &when))
        return 0;
    sim_stat_add(&r->figures[0], when - t0);
    return 1;
}

static int scen_chaos(sim_run_t *r)
{
    return chaos(r, 0);
}

static int scen_chaos_links(sim_run_t *r)
{
    return chaos(r, 1);
}

/* ---- 13. recorded frames replayed to a restarted node ------------------ */

#define REPLAY_SPREAD_MS 1000
#define REPLAY_AFTER_MS 2000

/* What a replayed frame may have made node a send to b's dead start: at most
 * one HELLO answer per SIM_HB / 4, plus a's own heartbeats and HELLOs to b
 * (a candidate, or a member down) once per SIM_HB, in `ms`. */
static uint64_t replay_sends_bound(uint64_t ms)
{
    return ms / (SIM_HB / 4) + 2 * (ms / SIM_HB) + 4;
}

/* Cut b off, so that it asks every member with HELLOs to no incarnation,
 * then heal. */
static int isolate_for_a_while(sim_run_t *r, int b)
{
    uint8_t groups[NODES] = {0};
    groups[b] = 1;
    SIM_CHECK_OK(r, simnet_partition(r->s, groups, NODES));
    SIM_CHECK_OK(r, simnet_run_for(r->s, SIM_DOWN + 300));
    SIM_CHECK_OK(r, simnet_heal(r->s));
    return sim_converge_by(r, simnet_now(r->s) + SIM_CONVERGE_MS, NULL);
}

/* Everything node b sent in its life (its HELLOs to the seed, to silent
 * members, its heartbeats), recorded and replayed to node a after b died
 * and a restarted, twice (spread out, then all at once): a never lists b,
 * and what the HELLOs make it send to b's dead start stays bounded. */
static int scen_replay_after_restart(sim_run_t *r)
{
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, NODES, 0))
        return 0;
    int b = (int)simnet_random_range(r->s, 0, NODES - 1);
    int a = (b + (int)simnet_random_range(r->s, 1, NODES - 1)) % NODES;
    SIM_CHECK_OK(r, simnet_record(r->s, b));
    if (!sim_start_spread(r, NODES, 200) || !sim_converge_by(r, SIM_CONVERGE_MS, NULL) ||
        !isolate_for_a_while(r, b))
        return 0;
    SIM_CHECK(r, simnet_recorded(r->s, FRAME_HELLO) > 0, "no HELLO of %s recorded",
              sim_names[b]);
    SIM_CHECK_OK(r, simnet_crash(r->s, b));
    SIM_CHECK_OK(r, simnet_run_for(r->s, simnet_random_range(r->s, 0, SIM_DOWN)));
    SIM_CHECK_OK(r, simnet_crash(r->s, a));
    SIM_CHECK_OK(r, simnet_run_for(r->s, simnet_random_range(r->s, 1, 500)));
    SIM_CHECK_OK(r, simnet_start(r->s, a));
    uint64_t ta = simnet_now(r->s);
    const sim_node_t *an = simnet_node(r->s, a);
    uint64_t lost0 = an->stats.sent_lost, rate0 = an->stats.rejects[FRAME_REJECT_RATE];
    int replayed = simnet_replay(r->s, a, REPLAY_SPREAD_MS);
    SIM_CHECK(r, replayed > 0, "replay: %d", replayed);
    SIM_CHECK_OK(r, simnet_run_for(r->s, REPLAY_SPREAD_MS));
    SIM_CHECK(r, simnet_replay(r->s, a, 0) == replayed, "the second replay");
    SIM_CHECK_OK(r, simnet_run_for(r->s, REPLAY_AFTER_MS));

    const sim_mevent_t *ev = NULL;
    sim_scan(r->s, a, (sim_match_t){sim_names[b], SIM_ANY_STATE, SIM_ANY_STATE, ta, 0}, &ev);
    SIM_CHECK(r, ev == NULL, "%s restarted at t=%llu and logged dead %s %s at t=%llu",
              sim_names[a], (unsigned long long)ta, sim_names[b],
              mship_state_name(ev->new_state), (unsigned long long)ev->time);
    SIM_CHECK(r, simnet_member(r->s, a, sim_names[b]) == NULL, "%s lists dead %s",
              sim_names[a], sim_names[b]);
    uint64_t lost = an->stats.sent_lost - lost0;
    uint64_t bound = replay_sends_bound(REPLAY_SPREAD_MS + REPLAY_AFTER_MS);
    SIM_CHECK(r, lost <= bound, "%s sent %llu frames to dead %s (bound %llu) for %d replayed",
              sim_names[a], (unsigned long long)lost, sim_names[b],
              (unsigned long long)bound, 2 * replayed);
    SIM_CHECK(r, an->stats.rejects[FRAME_REJECT_RATE] > rate0,
              "%s answered every replayed HELLO", sim_names[a]);
    sim_stat_add(&r->figures[0], (uint64_t)replayed);
    sim_stat_add(&r->figures[1], lost);
    return sim_converge_by(r, simnet_now(r->s) + SIM_CONVERGE_MS, NULL);
}

/* ---- 14. a second node with a live member's name ----------------------- */

/* A second node named like live node k, at another address, joining
 * through a random node (k itself too): it is refused, nobody ever lists
 * it, and k never looks failed. */
static int scen_duplicate_name(sim_run_t *r)
{
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, NODES, 0))
        return 0;
    int k = (int)simnet_random_range(r->s, 0, NODES - 1);
    const char *seed = sim_names[simnet_random_range(r->s, 0, NODES - 1)];
    sim_node_config_t twin = {.name = sim_names[k], .seeds = &seed, .seed_count = 1,
                              .address = SIM_ADDR_PREFIX "twin"};
    int x = simnet_add_node(r->s, &twin);
    SIM_CHECK(r, x == NODES, "add the second %s: %d", sim_names[k], x);
    simnet_node(r->s, x)->observed = 0;
    if (!sim_start_spread(r, NODES, 200) || !sim_converge_by(r, SIM_CONVERGE_MS, NULL))
        return 0;
    SIM_CHECK_OK(r, simnet_run_for(r->s, simnet_random_range(r->s, 0, SIM_HB)));
    SIM_CHECK_OK(r, simnet_start(r->s, x));
    const sim_node_t *xn = simnet_node(r->s, x), *orig = simnet_node(r->s, k);
    uint64_t t0 = simnet_now(r->s), holder = 0;
    while (mship_identity(xn->mship, &holder, NULL, 0) != MSHIP_ID_REFUSED) {
        SIM_CHECK(r, simnet_now(r->s) < t0 + SIM_DOWN, "the second %s is %s after %llu ms",
                  sim_names[k], mship_identity_name(mship_identity(xn->mship, NULL, NULL, 0)),
                  (unsigned long long)(simnet_now(r->s) - t0));
        SIM_CHECK_OK(r, simnet_run_for(r->s, 5));
    }
    sim_stat_add(&r->figures[0], simnet_now(r->s) - t0);
    SIM_CHECK(r, holder == orig->incarnation, "refused by incarnation %llu, not %llu",
              (unsigned long long)holder, (unsigned long long)orig->incarnation);
    uint64_t sent = xn->stats.sent;
    SIM_CHECK_OK(r, simnet_run_for(r->s, 2000));
    SIM_CHECK(r, xn->stats.sent == sent, "refused, it sent %llu more frames",
              (unsigned long long)(xn->stats.sent - sent));
    SIM_CHECK(r, mship_member_count(xn->mship) == 1, "refused, it lists %zu members",
              mship_member_count(xn->mship));
    for (int i = 0; i < NODES; i++)
        SIM_CHECK(r,
                  sim_scan(r->s, i,
                           (sim_match_t){sim_names[k], SIM_ANY_STATE, SIM_ANY_STATE, 0,
                                         xn->incarnation},
                           NULL) == 0,
                  "%s logged an event about the second %s", sim_names[i], sim_names[k]);
    SIM_CHECK(r, orig->stats.rejects[FRAME_REJECT_NAME] > 0, "%s was never asked",
              sim_names[k]);
    return sim_converged_now(r, "after the refusal") && sim_none_failed(r, NODES, -1, 0);
}

/* ---- 15. a restart at another address ----------------------------------- */

/* Node k killed, started again at another address before or after the
 * others noticed: it asks its old start, hears nothing, and joins; every
 * node then lists the new start. */
static int scen_restart_elsewhere(sim_run_t *r)
{
    if (!sim_make_net(r, NULL, SIM_FORGET) || !sim_add_nodes(r, NODES, 0))
        return 0;
    int k = (int)simnet_random_range(r->s, 0, NODES - 1);
    const char *seed = sim_names[(k + (int)simnet_random_range(r->s, 1, NODES - 1)) % NODES];
    sim_node_config_t moved = {.name = sim_names[k], .seeds = &seed, .seed_count = 1,
                               .address = SIM_ADDR_PREFIX "moved"};
    int x = simnet_add_node(r->s, &moved);
    SIM_CHECK(r, x == NODES, "add the moved %s: %d", sim_names[k], x);
    if (!sim_start_spread(r, NODES, 200) || !sim_converge_by(r, SIM_CONVERGE_MS, NULL))
        return 0;
    SIM_CHECK_OK(r, simnet_crash(r->s, k));
    SIM_CHECK_OK(r, simnet_run_for(r->s, simnet_random_range(r->s, 0, SIM_DOWN + SIM_HB)));
    SIM_CHECK_OK(r, simnet_start(r->s, x));
    uint64_t ts = simnet_now(r->s), when;
    if (!sim_converge_by(r, ts + SIM_DOWN + SIM_CONVERGE_MS, &when))
        return 0;
    sim_stat_add(&r->figures[0], when - ts);
    const sim_node_t *xn = simnet_node(r->s, x);
    SIM_CHECK(r, mship_identity(xn->mship, NULL, NULL, 0) == MSHIP_ID_CONFIRMED,
              "the moved %s is %s", sim_names[k],
              mship_identity_name(mship_identity(xn->mship, NULL, NULL, 0)));
    return 1;
}

/* ---- 17. kill: the links close and refuse ------------------------------- */

/* A killed node's links are refused at most 11 ms after the kill, and the
 * next tick reports them. */
#define KILL_DETECT_MS (12 + SIM_TICK)

static int scen_kill(sim_run_t *r)
{
    if (!converged_cluster(r, SIM_FORGET))
        return 0;
    int victim = (int)simnet_random_range(r->s, 0, NODES - 1);
    /* in every other run, another node's host goes silent at the same time */
    int silent = simnet_random_range(r->s, 0, 1)
                     ? (victim + 1 + (int)simnet_random_range(r->s, 0, NODES - 2)) % NODES
                     : -1;
    uint64_t tk = simnet_now(r->s) + simnet_random_range(r->s, 0, SIM_HB - 1);
    SIM_CHECK_OK(r, simnet_run_until(r->s, tk));
    SIM_CHECK_OK(r, simnet_kill(r->s, victim));
    if (silent >= 0)
        SIM_CHECK_OK(r, simnet_crash(r->s, silent));
    SIM_CHECK_OK(r, simnet_run_until(r->s, tk + DETECT_MS + 100));
    const char *vname = sim_names[victim];
    for (int i = 0; i < NODES; i++) {
        if (i == victim || i == silent)
            continue;
        const sim_mevent_t *down = sim_find_event(r->s, i, vname, MEMBER_DOWN, tk);
        SIM_CHECK(r, down != NULL, "%s never marked the killed %s down", sim_names[i], vname);
        SIM_CHECK(r, down->time - tk <= KILL_DETECT_MS,
                  "%s marked the killed %s down %llu ms after the kill", sim_names[i], vname,
                  (unsigned long long)(down->time - tk));
        SIM_CHECK(r, down->old_state == MEMBER_UP, "%s marked the killed %s down from %s",
                  sim_names[i], vname, mship_state_name(down->old_state));
        sim_stat_add(&r->figures[0], down->time - tk);
        if (silent < 0)
            continue;
        down = sim_find_event(r->s, i, sim_names[silent], MEMBER_DOWN, tk);
        SIM_CHECK(r, down != NULL && down->time >= down->last_rx + SIM_DOWN,
                  "%s marked the silent %s down at t=%llu (last frame t=%llu)", sim_names[i],
                  sim_names[silent], down ? (unsigned long long)down->time : 0ull,
                  down ? (unsigned long long)down->last_rx : 0ull);
        sim_stat_add(&r->figures[1], down->time - tk);
    }
    for (int i = 0; i < NODES; i++)
        if (i != victim && i != silent && !sim_never_failed(r, sim_names[i], 0, 0))
            return 0;
    if (!sim_converged_now(r, "among the survivors"))
        return 0;
    /* the killed node starts again: the links to it reconnect */
    uint64_t old_inc = simnet_node(r->s, victim)->incarnation, when;
    uint64_t tr = simnet_now(r->s) + simnet_random_range(r->s, 0, 3000);
    SIM_CHECK_OK(r, simnet_run_until(r->s, tr));
    SIM_CHECK_OK(r, simnet_start(r->s, victim));
    if (!sim_converge_by(r, tr + SIM_DOWN + SIM_CONVERGE_MS, &when))
        return 0;
    sim_stat_add(&r->figures[2], when - tr);
    SIM_CHECK_OK(r, simnet_run_for(r->s, 500));
    for (int i = 0; i < NODES; i++) {
        if (i == silent)
            continue;
        SIM_CHECK(r, simnet_link(r->s, i, victim) == MSHIP_LINK_OK,
                  "%s's link to the restarted %s is still %s", sim_names[i], vname,
                  simnet_link(r->s, i, victim) == MSHIP_LINK_REFUSED ? "refused" : "closed");
    }
    if (!check_restart_events(r, victim, old_inc, tr, silent))
        return 0;
    return sim_converged_now(r, "after the restart");
}

/* ---- 18. one bad link --------------------------------------------------- */

static int scen_bad_link(sim_run_t *r)
{
    if (!converged_cluster(r, SIM_FORGET))
        return 0;
    int a = (int)simnet_random_range(r->s, 0, NODES - 1);
    int b = (a + 1 + (int)simnet_random_range(r->s, 0, NODES - 2)) % NODES;
    /* short enough that b, whose frames from a are lost meanwhile, does not
     * suspect a: a's last frame before the cut, the cut, a's next
     * heartbeat after it and its delay stay under suspect_ms; long enough
     * that a tick sees it refused */
    uint32_t cut_ms = (uint32_t)simnet_random_range(r->s, 12 + SIM_TICK + 8, 150);
    uint64_t tc = simnet_now(r->s) + simnet_random_range(r->s, 0, SIM_HB - 1);
    SIM_CHECK_OK(r, simnet_run_until(r->s, tc));
    SIM_CHECK_OK(r, simnet_cut_link(r->s, a, b, cut_ms, 1));
    SIM_CHECK_OK(r, simnet_run_until(r->s, tc + cut_ms + SIM_CONVERGE_MS));
    const char *bname = sim_names[b];
    const sim_mevent_t *down = sim_find_event(r->s, a, bname, MEMBER_DOWN, tc);
    SIM_CHECK(r, down != NULL && down->time - tc <= KILL_DETECT_MS,
              "%s never declared %s down from its refused link in time", sim_names[a], bname);
    SIM_CHECK(r, sim_count_events(r->s, a, bname, MEMBER_DOWN, 0) == 1,
              "%s declared %s down %u times", sim_names[a], bname,
              sim_count_events(r->s, a, bname, MEMBER_DOWN, 0));
    const sim_mevent_t *up = sim_find_event(r->s, a, bname, MEMBER_UP, down->time);
    SIM_CHECK(r, up != NULL && up->time - down->time <= SIM_HB + SIM_DELAY_MAX + SIM_TICK,
              "%s did not take %s back up when it was next heard", sim_names[a], bname);
    sim_stat_add(&r->figures[0], up->time - down->time);
    for (int i = 0; i < NODES; i++) {
        if (i == a)
            continue;
        const sim_mevent_t *ev = sim_find_event(r->s, i, bname, MEMBER_DOWN, 0);
        if (ev == NULL)
            ev = sim_find_event(r->s, i, bname, MEMBER_SUSPECT, 0);
        SIM_CHECK(r, ev == NULL, "%s marked %s %s at t=%llu: %s's bad link convinced it",
                  sim_names[i], bname, mship_state_name(ev->new_state),
                  (unsigned long long)ev->time, sim_names[a]);
    }
    if (!sim_none_failed(r, NODES, b, 0))
        return 0;
    SIM_CHECK(r, simnet_link(r->s, a, b) == MSHIP_LINK_OK, "the cut link never reopened");
    return sim_converged_now(r, "after the bad link");
}

/* ---- the cases ---------------------------------------------------------- */

static const sim_case_t cases[] = {
    {"join", scen_join, {"converge_ms"}},
    {"simultaneous_start", scen_simultaneous, {"converge_ms"}},
    {"crash_detection", scen_crash, {"down_after_crash_ms", "suspect_after_crash_ms"}},
    {"restart", scen_restart, {"rejoin_ms"}},
    {"partition_heal", scen_partition_remembered, {"converge_after_heal_ms"}},
    {"partition_forgotten", scen_partition_forgotten, {"converge_after_heal_ms"}},
    {"graceful_leave", scen_leave, {"forgotten_after_left_ms"}},
    {"wrong_secret", scen_wrong_secret, {"mac_rejects_at_seed"}},
    {"lossy_network",
     scen_lossy,
     {"converge_ms", "suspects_per_run", "replay_rejects_per_run"}},
    {"determinism", scen_determinism, {"deliveries_per_run"}},
    {"draining", scen_drain, {NULL}},
    {"chaos", scen_chaos, {"converge_after_repair_ms"}},
    {"reordered_drain", scen_reordered_drain, {NULL}},
    {"replay_after_restart",
     scen_replay_after_restart,
     {"frames_replayed", "frames_to_the_dead_node"}},
    {"duplicate_name", scen_duplicate_name, {"refused_after_ms"}},
    {"restart_elsewhere", scen_restart_elsewhere, {"rejoin_ms"}},
    {"kill_detection",
     scen_kill,
     {"down_after_kill_ms", "down_after_silent_crash_ms", "rejoin_ms"}},
    {"bad_link", scen_bad_link, {"up_again_after_verdict_ms"}},
    {"chaos_links", scen_chaos_links, {"converge_after_repair_ms"}},
};

int main(void)
{
    return sim_main("sim_membership", cases, sizeof(cases) / sizeof(cases[0]));
}
