/*
 * seeds.h - the seed driver the simulation tests share (simtest.h over the
 * simulator, regsim.h over real registry nodes): one cmocka test per case,
 * each running a scenario over many seeds.
 *
 * Environment: HERD_SIM_SEEDS (seeds per case), HERD_SIM_SEED=N (run seed N
 * alone, to replay a failure), HERD_SIM_TEST (a cmocka name filter),
 * HERD_SIM_LOG=info|debug (the runtime's log), HERD_SIM_KNOWN_BUGS=1 (run
 * the cases that pin known bugs).
 */
#ifndef HERD_SIM_SEEDS_H
#define HERD_SIM_SEEDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

/* Fail a scenario with a reason: `r` has a char why[]; the scenario returns
 * 0 (the driver prints the reason with the seed). */
#define SEEDS_CHECK(r, cond, ...)                                                        \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            snprintf((r)->why, sizeof((r)->why), __VA_ARGS__);                           \
            return 0;                                                                    \
        }                                                                                \
    } while (0)

/* Fail it unless `expr` (a herd_* call) returns 0. */
#define SEEDS_CHECK_OK(r, expr)                                                          \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        SEEDS_CHECK(r, rc_ == 0, "%s failed: %s", #expr, herd_strerror(rc_));            \
    } while (0)

/* Run one seed of a case: 1 passed, 0 failed (it printed why, with
 * seeds_print_failure). */
typedef int (*seeds_one_fn)(void *ctx, uint64_t seed);

/* Run the seeds of the case called `name`: HERD_SIM_SEEDS (else
 * default_seeds) from seed 1, or HERD_SIM_SEED alone. A known_bug case is
 * skipped (cmocka skip) unless HERD_SIM_KNOWN_BUGS is set. Returns the
 * failures; *count: the seeds run, *wall_s: how long they took. */
unsigned seeds_run(const char *name, int known_bug, unsigned default_seeds, seeds_one_fn one,
                   void *ctx, unsigned *count, double *wall_s);

/* "NAME: seed S FAILED at t=T ms: WHY" */
void seeds_print_failure(const char *name, uint64_t seed, uint64_t t_ms, const char *why);

/* Run `count` cases (an array of `size`-byte structs, each beginning with its
 * name, a const char *) as cmocka tests named PREFIX_NAME, each calling `run`
 * with its case as the state. The log level is HERD_SIM_LOG, else `level`.
 * Returns main's status (2: too many cases). */
int seeds_main(const char *prefix, const void *cases, size_t size, size_t count,
               void (*run)(void **state), herd_log_level_t level);

#endif
