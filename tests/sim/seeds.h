/*
 * seeds.h - the seed driver the simulation tests share (simtest.h over the
 * simulator, regsim.h over real registry nodes): one cmocka test per case,
 * each running a scenario over many seeds.
 *
 * Environment: HERD_SIM_SEEDS (seeds per case), HERD_SIM_FIRST_SEED (the
 * first of them, default 1), HERD_SIM_SEED=N (run seed N alone, to replay a
 * failure), HERD_SIM_SEED_LIST=a,b,c (exactly those seeds, in that order:
 * the historical failing seeds a ctest entry replays; it wins over the
 * others), HERD_SIM_TEST (a cmocka name filter), HERD_SIM_LOG=info|debug
 * (the runtime's log), HERD_SIM_LIST=1 (print the cases' test names, one a
 * line, and run nothing), HERD_SIM_PROGRESS=1 ("seed S" on stderr before
 * each seed, so a run that dies says which seed killed it). A value that
 * is not a number fails the case; no case is ever skipped.
 *
 * Every case ends with one summary line:
 *   sim CASE seeds=N first=S failed=F wall_s=W [list=a,b,c] [more figures]
 * and every failing seed prints "CASE: seed S FAILED at t=T ms: WHY".
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

/* What a case's seeds did. */
typedef struct seeds_summary {
    unsigned count;  /* seeds run */
    uint64_t first;  /* the first of them */
    const char *list; /* HERD_SIM_SEED_LIST when it gave them, else NULL */
    unsigned failed; /* seeds that failed */
    double wall_s;   /* how long they took */
} seeds_summary_t;

/* Run the seeds of a case: HERD_SIM_SEED_LIST's, else HERD_SIM_SEED alone,
 * else HERD_SIM_SEEDS (else default_seeds) from HERD_SIM_FIRST_SEED (else
 * 1). Must run inside a cmocka test: an unreadable variable fails it. */
void seeds_run(unsigned default_seeds, seeds_one_fn one, void *ctx, seeds_summary_t *out);

/* "sim NAME seeds=N first=S failed=F wall_s=W", " list=a,b,c" for a seed
 * list, then `extra` (NULL: nothing),
 * e.g. " uncertain=3", and a newline. */
void seeds_print_summary(const char *name, const seeds_summary_t *s, const char *extra);

/* "NAME: seed S FAILED at t=T ms: WHY" */
void seeds_print_failure(const char *name, uint64_t seed, uint64_t t_ms, const char *why);

/* Run `count` cases (an array of `size`-byte structs, each beginning with its
 * name, a const char *) as cmocka tests named PREFIX_NAME, each calling `run`
 * with its case as the state. The log level is HERD_SIM_LOG, else `level`.
 * With HERD_SIM_LIST set, prints the test names instead. Returns main's
 * status (2: too many cases). */
int seeds_main(const char *prefix, const void *cases, size_t size, size_t count,
               void (*run)(void **state), herd_log_level_t level);

#endif
