/*
 * bench_handoff.h - what the parts of bench_handoff share: the counters'
 * names, a node with the layers every bench node runs (bench_handoff.c),
 * and the figures measured with one process a node
 * (bench_handoff_procs.c).
 */
#ifndef HERD_BENCH_HANDOFF_H
#define HERD_BENCH_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#include "herd_dsup.h"

/* The reference systems, measured on this machine (herd's issue 16),
 * printed beside herd's figures as ref= keys (ratio > 1: herd is better). */
#define FAILOVER_REF_S 2.93 /* Horde: SIGKILL of 1 of 3 nodes, 10,000 children */
#define JOIN_REF_S 2.96     /* Swarm: a 3rd node joins 2 x 10,000 workers */

/* The reference keys for a time `v` (s) of n children: " ref=... ratio=..."
 * at the references' REF_CHILDREN, "" at another size (a static buffer:
 * one line at a time). */
#define REF_CHILDREN 10000
const char *ref_keys(double ref_s, const char *system, double v, size_t n);

extern int verbose;   /* --verbose: each run's timeline on stderr */
extern int next_port; /* the next cluster port a node tries */

double now_s(void); /* CLOCK_MONOTONIC, in seconds: shared by all processes */
void die(const char *what, int rc);
double median(double *v, size_t n); /* sorts v */
size_t rand_below(uint64_t *s, size_t n);

/* The counters' names, "ctr-<i>", in one block. */
#define NAME_PREFIX "ctr-"

typedef struct names {
    char **at;
    char *text;
    size_t count;
} names_t;

names_t names_make(size_t count);
void names_free(names_t *ns);
/* The index of a name of ours (below count), or -1. */
long name_index(const char *name, size_t count);

/* A node `name` on `loop` at a free port (its address in addr), joining
 * `seed` unless NULL, with a registry, a distributed supervisor and the
 * counter service; lenient_detector: suspect after 30 s, down after 60 s. */
herd_node_t *handoff_node_start(uv_loop_t *loop, const char *name, const char *seed,
                                char *addr, size_t addr_cap, int lenient_detector);
/* What a node holds and what went through it, on stderr; names: how many
 * counters there are (0: leave their count out). */
void report_node(herd_node_t *n, size_t names);

/* ---- one process a node ---- */

#define NODES_MAX 3              /* node processes: bench-a, -b, -c */
#define VICTIM_NAME "bench-c"    /* the failover's victim */
#define CALL_TIMEOUT_MS 3000     /* an incr call's timeout */

/* A node's process (bench_handoff_node.c): arg points to the number of
 * counters (size_t); never returns. */
void handoff_node_main(int index, int cmd_fd, int rep_fd, void *arg);

/* The figures (bench_handoff_procs.c): each forks its nodes'
 * processes, so it must run before this process uses nanomsg. Both return
 * nonzero when a child was lost or duplicated, an increment lost, a lookup
 * failed at the end or the placement did not hold (the figures printed
 * first). */
int bench_failover_procs(size_t n, int runs, int replicas);
int bench_join_procs(size_t n, int runs);

#endif
