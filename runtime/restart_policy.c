/*
 * restart_policy.c - the restart policy both supervisors share
 * (restart_policy.h).
 */
#include "restart_policy.h"

restart_verdict_t restart_verdict(herd_restart_t restart, int reason)
{
    if (reason == HERD_REASON_NAME_CONFLICT || reason == HERD_REASON_HANDOFF)
        return RESTART_NO_FAILURE;
    switch (restart) {
    case HERD_RESTART_PERMANENT:
        return RESTART_AGAIN;
    case HERD_RESTART_TRANSIENT:
        return reason == HERD_REASON_NORMAL || reason == HERD_REASON_SHUTDOWN ? RESTART_ENDED
                                                                              : RESTART_AGAIN;
    default:
        return RESTART_ENDED;
    }
}

int restart_over_limit(const restart_policy_t *p, uint32_t prior)
{
    return prior >= p->max_restarts;
}

uint64_t restart_backoff(const restart_policy_t *p, uint32_t prior)
{
    if (prior == 0)
        return 0;
    uint64_t delay = p->backoff_ms;
    for (uint32_t i = 1; i < prior && delay < p->backoff_max_ms; i++)
        delay *= 2;
    return delay < p->backoff_max_ms ? delay : p->backoff_max_ms;
}

uint32_t restart_window_slide(const restart_policy_t *p, uint64_t *stamps, uint32_t count,
                              uint64_t now)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < count; i++)
        if (stamps[i] + p->window_ms > now)
            stamps[keep++] = stamps[i];
    return keep;
}

int restart_window_reopens(const restart_policy_t *p, uint64_t opened, uint32_t counted,
                           uint64_t now)
{
    return counted == 0 || now - opened > p->window_ms;
}
