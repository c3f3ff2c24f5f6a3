/*
 * bench_nodes.h - what herd's cluster benchmarks (bench_registry,
 * bench_groups) share: clocks, medians and RSS, names, idle processes, and
 * NODES nodes clustered on one loop in this one process (bench_nodes.c).
 */
#ifndef HERD_BENCH_NODES_H
#define HERD_BENCH_NODES_H

#include <stddef.h>
#include <stdint.h>

#include "herd_registry.h"

#define NODES 3

extern const char *bench_prog; /* the program's name, for die's message */
extern int verbose;          /* --verbose: each run's figures on stderr */
extern int default_timeouts; /* --default-timeouts: the default failure detector */
extern int next_port;        /* the next cluster port make_node tries */
extern const herd_behaviour_t bench_idle;

double now_s(void); /* CLOCK_MONOTONIC, in seconds */
void die(const char *what, int rc);
int cmp_double(const void *a, const void *b); /* qsort of doubles */
double median(double *v, size_t n); /* sorts v */
size_t rss_bytes(void);                /* the process's resident set */
/* Its anonymous part (resident less file-backed pages): the memory a
 * structure takes, without the program's code pages that its first use
 * faults in (64 KB or so for the registry's, which at 50,000 names would
 * read as 1.3 bytes a name). */
size_t rss_anon_bytes(void);

/* `count` distinct names "<prefix>-worker-<i>" in one block: the caller's
 * memory, made before any clock or RSS reading. */
typedef struct names {
    char **at;
    char *text;
    size_t count, total_len;
} names_t;

names_t names_make(const char *prefix, size_t count);
void names_free(names_t *ns);
void spawn_idle(herd_node_t *n, herd_pid_t *pids, size_t count);
/* A node in no cluster, on its own loop, with the registry started. */
herd_node_t *solo_registry_node(const char *name);

/* A node on `loop` in a cluster at a free port (its address in `listen`),
 * joining `seed` unless NULL, with the registry started. */
herd_node_t *make_node(uv_loop_t *loop, const char *name, const char *seed, char *listen,
                       size_t listen_cap);
/* Whether `n` sees exactly `want` members, all up. */
int all_up(herd_node_t *n, int want);
uint64_t entries_of(herd_node_t *n);
/* NODES nodes on `loop` that all see each other up; `first` gets the first
 * one's address (bench-a), the seed of anyone joining later. */
void make_cluster(uv_loop_t *loop, herd_node_t **nodes, char *first, size_t first_cap);
/* Free the nodes, newest first, and close the loop. */
void free_cluster(uv_loop_t *loop, herd_node_t **nodes, int count);
/* What a node holds and what went through it, on stderr: why a run did
 * not converge. */
void report_node(herd_node_t *n);

#endif
