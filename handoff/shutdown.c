/*
 * shutdown.c - herd_node_shutdown: a node leaves its cluster without losing
 * what it runs (herd_dsup.h). herdd's SIGTERM and an embedding program's
 * both come here, so there is one way to leave.
 *
 * How it works
 * ------------
 * The node drains (herd_cluster_set_draining): it leaves the ring, and the
 * supervisor's reconcile moves each child to its new owner with its state.
 * A timer then checks every SHUTDOWN_CHECK_MS whether the node may leave
 * with nothing lost (herd_dsup_drained: no child left, no move in flight,
 * everything it sent acknowledged). Once it may, or once no other member is
 * up to take anything, or the deadline passed, the node leaves the cluster
 * (herd_cluster_leave) and lingers SHUTDOWN_LINGER_MS, so that the LEAVE
 * frames go out before the program stops the loop; then the callback runs.
 * The state hangs off the node (HERD_EXT_SHUTDOWN), so a node freed midway
 * tells the callback HERD_ESHUTDOWN and frees it.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "log.h"
#include "runtime_layers.h"

#define SHUTDOWN_CHECK_MS 50
#define SHUTDOWN_LINGER_MS 200

typedef enum shutdown_phase {
    SHUTDOWN_DRAINING, /* children moving off */
    SHUTDOWN_LINGERING, /* left: the LEAVE frames going out */
    SHUTDOWN_DONE,      /* called back */
} shutdown_phase_t;

typedef struct shutdown {
    herd_node_t *node;
    uv_timer_t timer;
    herd_shutdown_cb cb;
    void *data;
    uint64_t deadline; /* node clock */
    int status;
    shutdown_phase_t phase;
} shutdown_t;

static int other_up(void *data, const herd_member_info_t *m)
{
    return m->state == HERD_MEMBER_UP && strcmp(m->name, herd_node_name(data)) != 0;
}

/* Whether another member is up to take the children. */
static int others_up(herd_node_t *n)
{
    return herd_cluster_foreach_member(n, other_up, n) > 0;
}

static void shutdown_on_timer(uv_timer_t *t);

/* Leave now with `status`, then linger. */
static void shutdown_leave(shutdown_t *s, int status)
{
    herd_child_counts_t cc = {0};
    herd_count_children(s->node, &cc);
    if (cc.local > 0)
        herd_log(HERD_LOG_WARN, "handoff", "shutdown: %llu children still here (%s)",
                 (unsigned long long)cc.local, herd_err_name(status));
    herd_log(HERD_LOG_INFO, "handoff", "shutdown: leaving the cluster");
    s->status = status;
    s->phase = SHUTDOWN_LINGERING;
    herd_cluster_leave(s->node); /* HERD_ENOENT: in no cluster, nothing to leave */
    uv_timer_start(&s->timer, shutdown_on_timer, SHUTDOWN_LINGER_MS, 0);
}

static void shutdown_on_timer(uv_timer_t *t)
{
    shutdown_t *s = t->data;
    if (s->phase == SHUTDOWN_LINGERING) {
        uv_timer_stop(&s->timer);
        s->phase = SHUTDOWN_DONE;
        s->cb(s->data, s->status);
        return;
    }
    if (herd_dsup_drained(s->node))
        shutdown_leave(s, 0);
    else if (!others_up(s->node))
        shutdown_leave(s, HERD_ENOTCONN); /* nobody to move them to: waiting helps not */
    else if (herd_node_now(s->node) >= s->deadline)
        shutdown_leave(s, HERD_ETIMEDOUT);
}

static void shutdown_on_closed(uv_handle_t *h)
{
    free(h->data);
}

/* The node is freed (HERD_EXT_SHUTDOWN's free_fn). */
static void shutdown_free(void *p)
{
    shutdown_t *s = p;
    if (s->phase != SHUTDOWN_DONE) {
        s->phase = SHUTDOWN_DONE;
        s->cb(s->data, HERD_ESHUTDOWN);
    }
    uv_close((uv_handle_t *)&s->timer, shutdown_on_closed);
}

int herd_node_shutdown(herd_node_t *n, uint32_t timeout_ms, herd_shutdown_cb cb, void *data)
{
    if (cb == NULL)
        return HERD_EINVAL;
    if (herd_node_ext(n, HERD_EXT_SHUTDOWN))
        return HERD_ESHUTDOWN;
    shutdown_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HERD_ENOMEM;
    *s = (shutdown_t){.node = n, .cb = cb, .data = data, .phase = SHUTDOWN_DRAINING,
                      .deadline = herd_node_now(n) + timeout_ms};
    uv_timer_init(herd_node_loop(n), &s->timer);
    s->timer.data = s;
    herd_node_set_ext(n, HERD_EXT_SHUTDOWN, s, shutdown_free);
    if (timeout_ms == 0) {
        shutdown_leave(s, herd_dsup_drained(n) ? 0 : HERD_ETIMEDOUT);
        return 0;
    }
    if (herd_cluster_set_draining(n, 1) == 0)
        herd_log(HERD_LOG_INFO, "handoff", "shutdown: draining, then leaving the cluster");
    /* the first check on the loop: the callback never runs inside this call */
    uv_timer_start(&s->timer, shutdown_on_timer, 0, SHUTDOWN_CHECK_MS);
    return 0;
}

int herd_node_shutdown_now(herd_node_t *n)
{
    shutdown_t *s = herd_node_ext(n, HERD_EXT_SHUTDOWN);
    if (s == NULL || s->phase != SHUTDOWN_DRAINING)
        return HERD_ENOENT;
    uv_timer_stop(&s->timer);
    shutdown_leave(s, herd_dsup_drained(n) ? 0 : HERD_ETIMEDOUT);
    return 0;
}
