/*
 * simtest.h - the seed driver and helpers shared by the simulation tests
 * (tests/sim/test_sim_*.c), on top of the simulator (simnet.h).
 *
 * A simulation test is a table of cases; each case is a scenario run over
 * many seeds (the seed driver: seeds.h). A scenario returns 1, or 0 with a reason (SIM_CHECK); the
 * driver prints every failing seed with its reason and virtual time, checks
 * the simulator's invariants after every run, frees the simulation, and
 * fails the case at the end, after all its seeds ran.
 *
 * Environment: HERD_SIM_SEEDS (seeds per case, default SIM_DEFAULT_SEEDS),
 * HERD_SIM_FIRST_SEED (the first of them, default 1), HERD_SIM_SEED=N (run
 * seed N alone, to replay a failure), HERD_SIM_TEST (a cmocka name filter,
 * e.g. '*restart*'), HERD_SIM_VERBOSE=1 (every node's view on failure),
 * HERD_SIM_LOG=info|debug (the runtime's log), HERD_SIM_LIST=1 (print the
 * test names and run nothing). The summary line (seeds.h) adds
 * spurious_ring_changes=K.
 */
#ifndef HERD_SIMTEST_H
#define HERD_SIMTEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "seeds.h"
#include "simnet.h"

#define SIM_DEFAULT_SEEDS 200

/* The membership defaults, scaled for short runs. */
#define SIM_HB 200
#define SIM_SUSPECT 600
#define SIM_DOWN 1200
#define SIM_FORGET 5000
#define SIM_TICK 20
#define SIM_DELAY_MAX 20 /* delays are 1..SIM_DELAY_MAX ms */
#define SIM_CONVERGE_MS 3000

#define SIM_NAMES 8
extern const char *const sim_names[SIM_NAMES]; /* "node1" ... "node8" */

typedef struct sim_stat {
    uint64_t n, sum, min, max;
} sim_stat_t;

typedef struct sim_run {
    uint64_t seed;
    simnet_t *s;         /* made by the scenario, freed by the driver */
    sim_stat_t *figures; /* [SIM_FIGURES]: what the case's metrics measure */
    char why[768];       /* why the scenario failed */
} sim_run_t;

#define SIM_FIGURES 3

/* Fail the scenario with a reason (the driver prints it with the seed). */
#define SIM_CHECK(r, cond, ...) SEEDS_CHECK(r, cond, __VA_ARGS__)
#define SIM_CHECK_OK(r, expr) SEEDS_CHECK_OK(r, expr)

typedef int (*sim_scenario_fn)(sim_run_t *r);

typedef struct sim_case {
    const char *name; /* the test is PREFIX_NAME */
    sim_scenario_fn fn;
    const char *metric[SIM_FIGURES]; /* names of r->figures[k]; NULL: unused */
} sim_case_t;

/* Run the cases as cmocka tests named PREFIX_NAME; returns main's status. */
int sim_main(const char *prefix, const sim_case_t *cases, size_t count);

void sim_stat_add(sim_stat_t *st, uint64_t v);

/* ---- building clusters (1: done, 0: r->why says why) -------------------- */

/* A simulation with the scaled timings; net NULL: no loss, 1-20 ms. */
int sim_make_net(sim_run_t *r, const sim_net_params_t *net, uint32_t forget_ms);
/* Nodes sim_names[0..n): all join through node1, which has no seeds, or,
 * with `full`, each has every other as a seed. */
int sim_add_nodes(sim_run_t *r, int n, int full);
/* Start nodes [0, n) at random times within `spread` ms; run until all did. */
int sim_start_spread(sim_run_t *r, int n, uint64_t spread);
/* Run until converged (*when: the time) or fail at `deadline`. */
int sim_converge_by(sim_run_t *r, uint64_t deadline, uint64_t *when);
/* Converged now; `what` names the moment in the failure. */
int sim_converged_now(sim_run_t *r, const char *what);

/* ---- reading the member events ------------------------------------------ */

#define SIM_ANY_STATE ((mship_state_t)-1)

typedef struct sim_match {
    const char *name;       /* NULL: any member */
    mship_state_t from, to; /* SIM_ANY_STATE: any */
    uint64_t since;         /* at or after */
    uint64_t inc;           /* 0: any incarnation */
} sim_match_t;

/* How many events at node i match; the first in *first (when not NULL). */
unsigned sim_scan(simnet_t *s, int i, sim_match_t m, const sim_mevent_t **first);
/* The first event at node i about `name` (NULL: anybody) entering `to`
 * (SIM_ANY_STATE: any) at or after `since`; NULL if none. */
const sim_mevent_t *sim_find_event(simnet_t *s, int i, const char *name, mship_state_t to,
                                   uint64_t since);
unsigned sim_count_events(simnet_t *s, int i, const char *name, mship_state_t to,
                          uint64_t since);
/* No node marked `name` down, nor, unless suspect_ok, suspect, since `since`. */
int sim_never_failed(sim_run_t *r, const char *name, uint64_t since, int suspect_ok);
/* The same for every node of [0, n) but `except` (-1: none), since 0. */
int sim_none_failed(sim_run_t *r, int n, int except, int suspect_ok);
/* Whether `name` is in the ring node `viewer` builds (-1: error). */
int sim_in_ring(simnet_t *s, int viewer, const char *name);

#endif
