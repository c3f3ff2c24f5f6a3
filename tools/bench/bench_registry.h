/*
 * bench_registry.h - what the parts of bench_registry share: names, nodes
 * on a loop, the stall probe (bench_registry.c), and the figures measured
 * with one process a node (bench_registry_procs.c).
 */
#ifndef HERD_BENCH_REGISTRY_H
#define HERD_BENCH_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "herd_registry.h"

#define NODES 3

extern int verbose;          /* --verbose: each run's figures on stderr */
extern int default_timeouts; /* --default-timeouts: the default failure detector */
extern int next_port;        /* the next cluster port make_node tries */
extern const herd_behaviour_t bench_idle;

double now_s(void); /* CLOCK_MONOTONIC, in seconds */
void die(const char *what, int rc);
double median(double *v, size_t n);

/* `count` distinct names "<prefix>-worker-<i>" in one block: the caller's
 * memory, made before any clock or RSS reading. */
typedef struct names {
    char **at;
    char *text;
    size_t count, total_len;
} names_t;

names_t names_make(const char *prefix, size_t count);
void names_free(names_t *ns);
/* names[k] for node k: `total` names, as even a share each as can be. */
void make_node_names(names_t *names, size_t total);
void spawn_idle(herd_node_t *n, herd_pid_t *pids, size_t count);

/* A node on `loop` in a cluster at a free port (its address in `listen`),
 * joining `seed` unless NULL, with the registry started. */
herd_node_t *make_node(uv_loop_t *loop, const char *name, const char *seed, char *listen,
                       size_t listen_cap);
/* Whether `n` sees exactly `want` members, all up. */
int all_up(herd_node_t *n, int want);
uint64_t entries_of(herd_node_t *n);

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
