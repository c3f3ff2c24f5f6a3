/*
 * support.h - what the runtime's cmocka tests (test_proc, test_call,
 * test_timer, test_monitor, test_supervisor) share: the lifecycle of the
 * nodes a test makes, a virtual clock, and helpers that run a node's loop.
 *
 * Node lifecycle. Every node a test makes is tracked until the test frees it
 * with ts_node_free. When an assertion ends a test early, ts_teardown frees
 * what is still tracked, so one failure does not leak into the sanitizer's
 * report of the whole program. While it does, ts_detached() is 1: callbacks
 * that write into records living in the test's (now abandoned) stack frame
 * check it and write nothing.
 *
 * Every helper fails the running test (cmocka) on an unexpected result.
 * Nothing here is thread-safe; the tests run on one thread.
 */
#ifndef HERD_TEST_SUPPORT_H
#define HERD_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "herd_runtime.h"

/* ---- node lifecycle ------------------------------------------------------ */

/* How many nodes one test may have made and not freed at once. */
#define TS_MAX_NODES 8

/* Make a node from `cfg` (fails the test unless herd_node_new succeeds) and
 * track it. */
herd_node_t *ts_node_new(const herd_node_config_t *cfg);
/* The same from a name, a clock (NULL: the loop's) and a seed. */
herd_node_t *ts_node(const char *name, const herd_clock_t *clock, uint64_t seed);
/* Track a node the test made itself with herd_node_new; returns it. Fails the
 * test when TS_MAX_NODES are tracked already. */
herd_node_t *ts_track(herd_node_t *n);
/* How many nodes are tracked (made and not freed yet). */
int ts_live_nodes(void);
/* Forget a tracked node and free it (herd_node_free). Fails the test, freeing
 * nothing, when `n` is not tracked. */
void ts_node_free(herd_node_t *n);
/* 1 while ts_teardown frees the nodes of a test that ended early. */
int ts_detached(void);

/* cmocka setup and teardown for every test that makes nodes. ts_setup starts
 * with no node tracked; ts_teardown frees what the test left behind. */
int ts_setup(void **state);
int ts_teardown(void **state);

/* ---- virtual clock ------------------------------------------------------- */

/* A clock for herd_node_config_t.clock that reads ts_vnow: the test moves
 * time by hand and drives the node with ts_drain or herd_node_poll. */
extern uint64_t ts_vnow;
extern const herd_clock_t ts_vclock;

/* ---- the loop ------------------------------------------------------------ */

/* herd_node_run_for(n, ms), which must not fail. */
void ts_run_for(herd_node_t *n, uint64_t ms);
/* Run until idle: herd_node_run_for returns early once nothing is left to do
 * and no timer is armed; 3 s is the bound. */
void ts_run(herd_node_t *n);
/* Poll until nothing is left to handle (virtual-clock tests); returns the
 * messages handled. Fails the test if 100 polls never run dry. */
int ts_drain(herd_node_t *n);
/* Milliseconds of CLOCK_MONOTONIC since *t0. */
double ts_ms_since(const struct timespec *t0);

/* ---- processes ----------------------------------------------------------- */

/* Spawn `b` with the argument `arg` (len bytes); fails the test unless the
 * spawn succeeds. */
herd_pid_t ts_spawn(herd_node_t *n, const herd_behaviour_t *b, const void *arg,
                    size_t len);
/* herd_is_alive, which must answer 0 or 1. */
int ts_alive(herd_node_t *n, herd_pid_t pid);
/* Field by field, then herd_pid_equal. */
void ts_assert_pid_eq(herd_pid_t a, herd_pid_t b);

#endif
