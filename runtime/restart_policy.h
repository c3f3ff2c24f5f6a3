/*
 * restart_policy.h - whether a supervised child restarts, and when.
 *
 * herd has two supervisors: the local one (supervisor.c) and the
 * distributed one (handoff/restarts.c). Both judge an exit by the child's
 * strategy, count restarts against an intensity (max_restarts within
 * window_ms) and wait a doubling back-off between restarts; this is that
 * policy, as pure functions over a small struct, so the two cannot drift
 * apart. Each supervisor keeps its own numbers and its own window:
 * supervisor.c slides it over the time of each restart (a handful of stamps
 * per child), the distributed supervisor, which may run many thousands of
 * children, opens it at a failure and counts until window_ms has passed
 * (two fields per child). For internal use; users see herd_sup_config_t.
 */
#ifndef HERD_RESTART_POLICY_H
#define HERD_RESTART_POLICY_H

#include <stdint.h>

#include "herd_runtime.h"

typedef struct restart_policy {
    uint32_t max_restarts;   /* restarts allowed within window_ms */
    uint32_t window_ms;
    uint32_t backoff_ms;     /* the delay before the second restart in a window */
    uint32_t backoff_max_ms; /* the cap of the doubling delay */
} restart_policy_t;

typedef enum restart_verdict {
    RESTART_AGAIN,      /* a failure its strategy restarts */
    RESTART_ENDED,      /* its strategy ends it: temporary, or transient ending normally */
    RESTART_NO_FAILURE, /* herd moved or retired it (handoff, name conflict): no failure */
} restart_verdict_t;

/* How a child with strategy `restart` that exited for `reason` is judged. */
restart_verdict_t restart_verdict(herd_restart_t restart, int reason);

/* Whether one more restart, `prior` restarts already within the window,
 * goes over the intensity. */
int restart_over_limit(const restart_policy_t *p, uint32_t prior);

/* The delay before a restart, `prior` restarts already within the window:
 * the first at once, then backoff_ms doubling up to backoff_max_ms. */
uint64_t restart_backoff(const restart_policy_t *p, uint32_t prior);

/* A sliding window: keeps, in order, the restart times of `stamps` (oldest
 * first) that are less than window_ms before `now`; returns how many. */
uint32_t restart_window_slide(const restart_policy_t *p, uint64_t *stamps, uint32_t count,
                              uint64_t now);

/* A window opened at `opened` that has `counted` restarts: whether a
 * failure at `now` opens a new one (none counted yet, or more than
 * window_ms since it opened). */
int restart_window_reopens(const restart_policy_t *p, uint64_t opened, uint32_t counted,
                           uint64_t now);

#endif
