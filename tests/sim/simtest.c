/*
 * simtest.c - the seed driver and helpers of the simulation tests (simtest.h).
 */
#include "simtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "log.h"

const char *const sim_names[SIM_NAMES] = {"node1", "node2", "node3", "node4",
                                          "node5", "node6", "node7", "node8"};

/* ---- figures ------------------------------------------------------------ */

void sim_stat_add(sim_stat_t *st, uint64_t v)
{
    if (st->n == 0 || v < st->min)
        st->min = v;
    if (v > st->max)
        st->max = v;
    st->sum += v;
    st->n++;
}

static void stat_print(const char *test, const char *metric, const sim_stat_t *st)
{
    if (st->n == 0)
        return;
    print_message("sim %s %s mean=%.1f min=%llu max=%llu n=%llu\n", test, metric,
                  (double)st->sum / (double)st->n, (unsigned long long)st->min,
                  (unsigned long long)st->max, (unsigned long long)st->n);
}

/* ---- the seed driver (seeds.h) ------------------------------------------ */

_Static_assert(offsetof(sim_case_t, name) == 0, "seeds_main: a case begins with its name");

static void dump_views(const sim_run_t *r)
{
    char buf[2048];
    if (r->s == NULL || getenv("HERD_SIM_VERBOSE") == NULL)
        return;
    for (int i = 0; i < simnet_node_count(r->s); i++) {
        simnet_view_text(r->s, i, buf, sizeof(buf));
        print_message("    %s: %s\n", simnet_node(r->s, i)->name, buf);
    }
}

/* Ring rebuilds for nothing (ring_changed without a change), over a run. */
static uint64_t spurious_rings(const simnet_t *s)
{
    uint64_t c = 0;
    for (int i = 0; s && i < simnet_node_count(s); i++)
        c += simnet_node(s, i)->stats.ring_spurious;
    return c;
}

/* What the seeds of one case share. */
typedef struct case_run {
    const sim_case_t *c;
    sim_stat_t *figures;
    uint64_t spurious;
} case_run_t;

/* Run one seed: the scenario, then the simulator's invariants. */
static int run_one(void *ctx, uint64_t seed)
{
    case_run_t *cr = ctx;
    sim_run_t r = {.seed = seed, .figures = cr->figures};
    int ok = cr->c->fn(&r);
    if (ok && r.s && !simnet_invariants_hold(r.s, r.why, sizeof(r.why)))
        ok = 0;
    if (!ok) {
        seeds_print_failure(cr->c->name, r.seed, r.s ? simnet_now(r.s) : 0, r.why);
        dump_views(&r);
    }
    cr->spurious += spurious_rings(r.s);
    simnet_free(r.s);
    return ok;
}

static void run_case(void **state)
{
    const sim_case_t *c = *state;
    sim_stat_t figures[SIM_FIGURES] = {{0}};
    case_run_t cr = {.c = c, .figures = figures};
    seeds_summary_t sum;
    char extra[48];
    seeds_run(SIM_DEFAULT_SEEDS, run_one, &cr, &sum);
    snprintf(extra, sizeof(extra), " spurious_ring_changes=%llu", (unsigned long long)cr.spurious);
    seeds_print_summary(c->name, &sum, extra);
    for (int k = 0; k < SIM_FIGURES; k++)
        if (c->metric[k])
            stat_print(c->name, c->metric[k], &figures[k]);
    assert_int_equal(sum.failed, 0);
}

int sim_main(const char *prefix, const sim_case_t *cases, size_t count)
{
    return seeds_main(prefix, cases, sizeof(cases[0]), count, run_case, HERD_LOG_WARN);
}

/* ---- building clusters -------------------------------------------------- */

int sim_make_net(sim_run_t *r, const sim_net_params_t *net, uint32_t forget_ms)
{
    simnet_config_t cfg = {.seed = r->seed,
                           .tick_ms = SIM_TICK,
                           .heartbeat_ms = SIM_HB,
                           .suspect_ms = SIM_SUSPECT,
                           .down_ms = SIM_DOWN,
                           .forget_ms = forget_ms};
    sim_net_params_t dflt = {.delay_min = 1, .delay_max = SIM_DELAY_MAX};
    cfg.net = net ? *net : dflt;
    SIM_CHECK_OK(r, simnet_new(&cfg, &r->s));
    return 1;
}

int sim_add_nodes(sim_run_t *r, int n, int full)
{
    const char *seeds[SIM_NAMES];
    SIM_CHECK(r, n <= SIM_NAMES, "%d nodes: at most %d", n, SIM_NAMES);
    for (int i = 0; i < n; i++) {
        sim_node_config_t nc = {.name = sim_names[i], .seeds = seeds};
        for (int j = 0; j < n && full; j++)
            if (j != i)
                seeds[nc.seed_count++] = sim_names[j];
        if (!full && i > 0)
            seeds[nc.seed_count++] = sim_names[0];
        int idx = simnet_add_node(r->s, &nc);
        SIM_CHECK(r, idx == i, "add %s: %d", sim_names[i], idx);
    }
    return 1;
}

int sim_start_spread(sim_run_t *r, int n, uint64_t spread)
{
    uint64_t t0 = simnet_now(r->s);
    for (int i = 0; i < n; i++) {
        sim_action_t a = {.kind = SIM_ACT_START, .node = i};
        uint64_t at = t0 + simnet_random_range(r->s, 0, spread);
        SIM_CHECK_OK(r, simnet_schedule(r->s, at, &a));
    }
    SIM_CHECK_OK(r, simnet_run_until(r->s, t0 + spread));
    return 1;
}

int sim_converge_by(sim_run_t *r, uint64_t deadline, uint64_t *when)
{
    uint64_t t = 0;
    int rc = simnet_run_until_converged(r->s, deadline, 10, &t);
    if (rc != 1) {
        char why[256] = "";
        simnet_converged(r->s, why, sizeof(why));
        SIM_CHECK(r, 0, "no convergence by t=%llu (rc %d, error %d): %s",
                  (unsigned long long)deadline, rc, simnet_error(r->s), why);
    }
    if (when)
        *when = t;
    return 1;
}

int sim_converged_now(sim_run_t *r, const char *what)
{
    char why[256] = "";
    int rc = simnet_converged(r->s, why, sizeof(why));
    SIM_CHECK(r, rc == 1, "not converged %s: %s", what, why);
    return 1;
}

/* ---- reading the member events ------------------------------------------ */

unsigned sim_scan(simnet_t *s, int i, sim_match_t m, const sim_mevent_t **first)
{
    const sim_node_t *n = simnet_node(s, i);
    unsigned c = 0;
    for (size_t k = 0; k < n->log_count; k++) {
        const sim_mevent_t *ev = &n->log[k];
        if (ev->time < m.since || (m.name && strcmp(ev->name, m.name) != 0) ||
            (m.from != SIM_ANY_STATE && ev->old_state != m.from) ||
            (m.to != SIM_ANY_STATE && ev->new_state != m.to) ||
            (m.inc && ev->incarnation != m.inc))
            continue;
        if (c++ == 0 && first)
            *first = ev;
    }
    return c;
}

const sim_mevent_t *sim_find_event(simnet_t *s, int i, const char *name, mship_state_t to,
                                   uint64_t since)
{
    const sim_mevent_t *ev = NULL;
    sim_scan(s, i, (sim_match_t){name, SIM_ANY_STATE, to, since, 0}, &ev);
    return ev;
}

unsigned sim_count_events(simnet_t *s, int i, const char *name, mship_state_t to,
                          uint64_t since)
{
    return sim_scan(s, i, (sim_match_t){name, SIM_ANY_STATE, to, since, 0}, NULL);
}

int sim_never_failed(sim_run_t *r, const char *name, uint64_t since, int suspect_ok)
{
    for (int i = 0; i < simnet_node_count(r->s); i++) {
        const sim_mevent_t *ev = sim_find_event(r->s, i, name, MEMBER_DOWN, since);
        if (ev == NULL && !suspect_ok)
            ev = sim_find_event(r->s, i, name, MEMBER_SUSPECT, since);
        SIM_CHECK(r, ev == NULL, "%s marked %s %s at t=%llu (last frame t=%llu)",
                  simnet_node(r->s, i)->name, ev->name, mship_state_name(ev->new_state),
                  (unsigned long long)ev->time, (unsigned long long)ev->last_rx);
    }
    return 1;
}

int sim_none_failed(sim_run_t *r, int n, int except, int suspect_ok)
{
    for (int i = 0; i < n; i++)
        if (i != except &&
            !sim_never_failed(r, simnet_node(r->s, i)->name, 0, suspect_ok))
            return 0;
    return 1;
}

int sim_in_ring(simnet_t *s, int viewer, const char *name)
{
    herd_ring_t *ring = NULL;
    herd_ring_member_info_t info;
    const mship_t *m = simnet_view(s, viewer);
    if (m == NULL || mship_build_ring(m, &ring) != 0)
        return -1;
    int found = herd_ring_member_find(ring, name, &info) == 0;
    herd_ring_free(ring);
    return found;
}
