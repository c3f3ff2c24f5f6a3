/*
 * herdd_metrics.h - herdd --metrics: a node's figures in Prometheus' text
 * exposition format (version 0.0.4). The figures are the ones `ringctl
 * stats` shows, read from the same sources (herd_cluster_stats,
 * herd_registry_stats, herd_handoff_stats, herd_repl_stats, ...) into a
 * snapshot on the loop thread (herdd_metrics_collect); the text is a pure
 * function of a snapshot (herdd_metrics_format, pinned by
 * tests/unit/test_herdd_metrics.c). metrics_http.h serves it.
 *
 * The registry has no groups (only unique names), so no group figure is
 * given rather than a zero that would look like a measure.
 */
#ifndef HERD_HERDD_METRICS_H
#define HERD_HERDD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "herd_dsup.h"
#include "herd_registry.h"
#include "herd_runtime.h"
#include "herdd_discover.h"

/* ---- the loop's lag ------------------------------------------------------------ */

/* How late a timer due every HERDD_LAG_EVERY_MS fires: the time the loop
 * spent in callbacks that did not yield (a lag of 100 ms means a frame,
 * a call or a heartbeat waited that long). Bucket bounds in µs. */
#define HERDD_LAG_EVERY_MS 100u
#define HERDD_LAG_BOUNDS 8u

typedef struct herdd_lag_figures {
    uint64_t last_us;                        /* the newest sample */
    uint64_t buckets[HERDD_LAG_BOUNDS + 1];  /* per bucket, not cumulative; last: over all */
    uint64_t count, sum_us;
} herdd_lag_figures_t;

typedef struct herdd_lag {
    uv_timer_t timer;
    uint64_t due_ns;
    herdd_lag_figures_t fig;
    int closed;
} herdd_lag_t;

/* The bound of lag bucket `i` in µs, 0 past the last. */
uint64_t herdd_lag_bound_us(unsigned i);
/* Start sampling on `loop` (`l` lives until herdd_lag_stop's close is done:
 * l->closed). */
void herdd_lag_start(herdd_lag_t *l, uv_loop_t *loop);
void herdd_lag_stop(herdd_lag_t *l);
/* Add one sample (the timer does; tests too). */
void herdd_lag_record(herdd_lag_figures_t *f, uint64_t lag_us);

/* ---- the snapshot and its text ------------------------------------------------- */

#define HERDD_MEMBER_STATES 5 /* HERD_MEMBER_UP .. HERD_MEMBER_LEFT */

typedef struct herdd_metrics_snapshot {
    const char *name, *version;
    int in_cluster; /* the rest of the cluster figures are valid */
    herd_cluster_stats_t cluster;
    uint64_t members[HERDD_MEMBER_STATES]; /* by herd_member_state_t */
    uint64_t unconfirmed;
    uint64_t processes;
    herd_node_stats_t node;
    int have_registry;
    herd_registry_stats_t registry;
    int have_dsup; /* a supervisor runs: children, handoffs, replication */
    uint64_t children[HERD_CHILD_STATE_COUNT];
    herd_child_counts_t child_counts;
    herd_handoff_stats_t handoff;
    herd_repl_stats_t repl;
    int repl_settled;
    herdd_lag_figures_t lag;
    int have_discover;
    herdd_discover_stats_t discover;
} herdd_metrics_snapshot_t;

/* Read the node's figures into *s (loop thread; zeroed first). The lag and
 * discovery parts are the caller's to fill. */
void herdd_metrics_collect(herd_node_t *node, herdd_metrics_snapshot_t *s);

/* The exposition text of `s`: *out (malloc'ed, NUL-terminated, *len bytes
 * without the NUL) is the caller's. 0, or HERD_ENOMEM (*out NULL). */
int herdd_metrics_format(const herdd_metrics_snapshot_t *s, char **out, size_t *len);

#endif
