/*
 * herdd_discover.h - herdd --discover: the seeds of a node found at run
 * time, as libcluster's strategies find Elixir nodes. A dns: spec is
 * resolved on the loop (uv_getaddrinfo, in libuv's thread pool) at once and
 * again every interval; a range: spec is its addresses, once. Each time the
 * list changes, the callback gets it: new addresses are seeds, gone ones
 * are dropped (herd_cluster_set_seeds). A name that does not resolve is
 * logged and tried again at the next interval, the last list kept; it is
 * never fatal. The node's own address (its --listen, or every local
 * address when it listens on 0.0.0.0 or *) is never a seed.
 */
#ifndef HERD_HERDD_DISCOVER_H
#define HERD_HERDD_DISCOVER_H

#include <stdint.h>
#include <uv.h>

#include "discover_spec.h"

#define HERDD_DISCOVER_INTERVAL_MS 5000u

typedef struct herdd_discover herdd_discover_t;

/* Told on the loop thread after the first attempt (even with an empty list
 * or a failure) and after every change of the list; `seeds` is valid for
 * the call only. */
typedef void (*herdd_discover_cb)(void *data, const seed_list_t *seeds);

/* Figures for the metrics (herdd_metrics.h). */
typedef struct herdd_discover_stats {
    uint64_t resolves;  /* attempts that found addresses (a range: 1) */
    uint64_t failures;  /* attempts that did not (logged each time) */
    uint64_t changes;   /* seeds added or dropped */
    uint64_t seeds;     /* seeds now */
} herdd_discover_stats_t;

/* Start on `loop`: the first attempt runs on the loop, never inside this
 * call. `listen` is the node's own address (copied). Errors: HERD_ENOMEM,
 * HERD_EINVAL. */
int herdd_discover_start(uv_loop_t *loop, const discover_spec_t *spec, uint32_t interval_ms,
                         const char *listen, herdd_discover_cb cb, void *data,
                         herdd_discover_t **out);
/* Whether the first attempt has finished (found something or failed). */
int herdd_discover_tried(const herdd_discover_t *dc);
void herdd_discover_stats(const herdd_discover_t *dc, herdd_discover_stats_t *out);
/* Stop and free: runs the loop until the timer is closed and a resolution
 * in flight has returned (one in libuv's thread pool cannot be stopped
 * halfway). NULL is fine. No callback after this. */
void herdd_discover_free(herdd_discover_t *dc);

#endif
