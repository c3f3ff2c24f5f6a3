/*
 * counter_cluster.h - regsim hooks for a cluster of distributed supervisors
 * that provide the counter service (tools/counter.h): what the simulations,
 * fuzzers and tests that start counters by name all need.
 */
#ifndef HERD_COUNTER_CLUSTER_H
#define HERD_COUNTER_CLUSTER_H

#include "regsim.h"

/* on_start: herd_dsup_start, then the counter service; on_poll:
 * herd_dsup_poll (the supervisor's timers under the virtual clock). */
extern const regsim_hooks_t counter_cluster_hooks;

#endif
