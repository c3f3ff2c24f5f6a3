/*
 * soak_node.h - one real herdd for bench_soak: started with its ready line
 * awaited, killed with SIGKILL and started again at the same address, its
 * RSS read from /proc. Processes are stopped by pid only and always reaped;
 * each dies with the bench (PR_SET_PDEATHSIG), so an aborted run leaves no
 * node behind.
 */
#ifndef HERD_SOAK_NODE_H
#define HERD_SOAK_NODE_H

#include <stdint.h>
#include <sys/types.h>

typedef struct soak_node {
    char name[16];
    char listen[64];   /* tcp://127.0.0.1:PORT */
    char control[320]; /* ipc://DIR/NAME.ctl */
    char log[320];     /* DIR/NAME.log: stdout and stderr of every start, appended */
    const char *herdd; /* the program */
    const char *cookie;
    const char *seed; /* --join address, NULL for none */
    pid_t pid;        /* 0 when not running */
    int starts;
    uint64_t started_ms; /* soak_now_ms() of the last start */
} soak_node_t;

uint64_t soak_now_ms(void);
void soak_sleep_ms(int ms);

/* Start n and wait up to ready_ms for its ready line. With `port` nonzero it
 * listens there (a first start); with 0 at its current address (a restart).
 * Returns 0 once ready, -1 if it exited first or was not ready in time (then
 * it is killed). */
int soak_node_start(soak_node_t *n, int port, int ready_ms);
/* Whether n still runs (reaps it if it exited; *status gets the wait status
 * if status is not NULL). */
int soak_node_alive(soak_node_t *n, int *status);
/* SIGKILL and reap. */
void soak_node_kill9(soak_node_t *n);
/* VmRSS of a running process in KiB, 0 if unknown. */
long soak_rss_kb(pid_t pid);

#endif
