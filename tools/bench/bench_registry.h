/*
 * bench_registry.h - what the parts of bench_registry share besides
 * bench_nodes.h: the figures measured with one process a node
 * (bench_registry_procs.c).
 */
#ifndef HERD_BENCH_REGISTRY_H
#define HERD_BENCH_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "bench_nodes.h"
#include "herd_registry.h"

/* names[k] for node k: `total` names, as even a share each as can be. */
void make_node_names(names_t *names, size_t total);

/* A 1 ms repeating timer that keeps the largest gap between two of its
 * firings: how long the loop went without a turn. */
typedef struct stall_probe {
    uv_timer_t timer;
    uint64_t last_ns, max_gap_ns;
    uint64_t max_gap_end_ns; /* when the largest gap ended (uv_hrtime) */
} stall_probe_t;

void stall_start(stall_probe_t *p, uv_loop_t *loop);
/* The largest gap in ms, the one up to now included; closes the timer. */
double stall_stop(stall_probe_t *p);

/* One process a node (bench_registry_procs.c): each part forks its nodes'
 * processes, so it must run before this process uses nanomsg. */
void bench_converge_procs(size_t per_node, int runs);
void bench_join_procs(size_t total);

#endif
