/*
 * dsup.c - the distributed supervisor on one node (see herd_dsup.h): its
 * lifecycle, the tick that drives it, and the public API.
 *
 * The work is spread over one file per job: services.c (the service table
 * and the spec codec), children.c (the child table and each child's state),
 * restarts.c (exits and restarts), reconcile.c (what to start, stop and
 * move), waiters.c (start callers waiting for a name), handoff.c with
 * bigstate.c (the move protocol), holder.c (a restarting child's name) and
 * terminate.c (ending a child for good). The tick calls into each.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "dsup_layers.h"
#include "herd_ring.h"
#include "log.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "svcring.h"

#define DSUP_TICK_MS 20

dsup_t *dsup_of(herd_node_t *n)
{
    return herd_node_ext(n, HERD_EXT_HANDOFF);
}

/* ---- the loop's work ------------------------------------------------------------------ */

static void dsup_work(dsup_t *d)
{
    uint64_t now = herd_node_now(d->node);
    readiness_tick(d, now); /* the join grace's end, announcements, fallbacks */
    if (d->more_moves && d->moving <= d->cfg.max_moves / 2) {
        d->more_moves = 0; /* room again: the moves that waited for it go now */
        d->full_due = 1;
    }
    if (d->full_due || (!d->pass_active && now - d->last_reconcile >= d->cfg.reconcile_ms)) {
        d->full_due = 0;
        reconcile_full(d);
    } else {
        reconcile_more(d);
    }
    restarts_due(d, now);
    handoff_tick(d, now);
    if (d->waiter_count)
        waiters_expire(d, now);
    if (d->term_count)
        terminate_tick(d, now);
    replicas_tick(d, now);
    replica_query_tick(d, now);
    replica_gc(d, now);
    replica_orphans(d, now);
    dsup_update_ref(d);
}

/* The tick keeps the loop alive only while something waits for it (a
 * restart, a start waiter, a move): a node in no cluster has nothing else
 * to keep herd_node_run_for running. */
void dsup_update_ref(dsup_t *d)
{
    if (d->h == NULL)
        return;
    if (d->restarting || d->waiter_count || d->term_count || d->moving || d->arriving)
        uv_ref((uv_handle_t *)&d->h->tick);
    else
        uv_unref((uv_handle_t *)&d->h->tick);
}

static void on_tick(uv_timer_t *t)
{
    dsup_handles_t *h = t->data;
    if (h->d)
        dsup_work(h->d);
}

void dsup_kick(dsup_t *d, int full)
{
    if (full)
        d->full_due = 1;
    if (d->h && !uv_is_active((uv_handle_t *)&d->h->kick))
        uv_timer_start(&d->h->kick, on_tick, 0, 0);
}

static void on_more(uv_idle_t *h)
{
    dsup_handles_t *hs = h->data;
    dsup_t *d = hs->d;
    if (d)
        reconcile_more(d);
    if (d == NULL || !d->pass_active)
        uv_idle_stop(h);
}

void dsup_more(dsup_t *d)
{
    if (d->h && !uv_is_active((uv_handle_t *)&d->h->more))
        uv_idle_start(&d->h->more, on_more);
}

static void on_member(void *data, const char *name, uint64_t incarnation,
                      herd_member_state_t old_state, herd_member_state_t new_state, int gone)
{
    dsup_t *d = data;
    uint64_t id = herd_node_id_of(name);
    readiness_on_member(d, id, incarnation, old_state, new_state);
    if (new_state == HERD_MEMBER_DOWN || new_state == HERD_MEMBER_LEFT ||
        new_state == HERD_MEMBER_ABSENT || gone)
        replica_query_member_gone(d, id); /* it will not answer */
    if (id == herd_node_id_of(herd_node_name(d->node)) && new_state != old_state &&
        (new_state == HERD_MEMBER_DRAINING || new_state == HERD_MEMBER_LEFT))
        replica_handover(d); /* out of the ring: its copies go to those in it */
    handoff_on_member(d, id, new_state);
    replicas_on_member(d);
    dsup_kick(d, 1);
}

void dsup_event(dsup_t *d, herd_event_kind_t kind, const char *name, herd_pid_t pid,
                herd_pid_t other, int reason)
{
    if (!herd_events_wanted(d->node, kind))
        return;
    herd_event_t ev = {.kind = kind, .name = name, .pid = pid, .other = other, .reason = reason};
    herd_event_emit(d->node, &ev);
}

/* Member events come from the node's event bus, in herd's own tier. */
static void on_member_event(void *data, const herd_event_t *ev)
{
    on_member(data, ev->name, ev->incarnation, ev->old_state, ev->new_state, ev->gone);
}

int herd_dsup_poll(herd_node_t *n)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    dsup_work(d);
    replicas_flush(d);
    return 0;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    dsup_handles_t *hs = h->data;
    if (--hs->open == 0)
        free(hs);
}

static void dsup_free(void *p)
{
    dsup_t *d = p;
    herd_events_unsubscribe_internal(d->node, on_member_event, d);
    herd_registry_unwatch_added(d->node, waiters_on_name_added, d);
    herd_cluster_on_app(d->node, HANDOFF_APP, NULL, NULL);
    herd_spec_watch(d->node, NULL, NULL);
    if (d->h) {
        d->h->d = NULL;
        uv_close((uv_handle_t *)&d->h->tick, on_handle_closed);
        uv_close((uv_handle_t *)&d->h->kick, on_handle_closed);
        uv_close((uv_handle_t *)&d->h->more, on_handle_closed);
    }
    replicas_free(d);
    children_free(d);
    reconcile_free(d);
    waiters_free(d);
    terminate_free(d);
    bigstate_free(d);
    readiness_free(d);
    svcring_free(d->rings);
    free(d);
}

static void config_defaults(herd_dsup_config_t *c)
{
    if (!c->reconcile_ms)
        c->reconcile_ms = 1000;
    if (!c->reconcile_slice)
        c->reconcile_slice = 4096;
    if (!c->handoff_timeout_ms)
        c->handoff_timeout_ms = 2000;
    if (!c->forward_grace_ms)
        c->forward_grace_ms = 5000;
    if (!c->max_moves)
        c->max_moves = 1024;
    if (!c->max_restarts)
        c->max_restarts = 3;
    if (!c->window_ms)
        c->window_ms = 5000;
    if (!c->join_grace_ms) /* fallbacks only: readiness.c */
        c->join_grace_ms = 1000;
    if (!c->target_grace_ms)
        c->target_grace_ms = 500;
    if (!c->max_state_bytes)
        c->max_state_bytes = 64ull << 20;
    if (!c->max_replica_bytes)
        c->max_replica_bytes = 1ull << 30;
}

static int dsup_hook_up(dsup_t *d)
{
    herd_node_t *n = d->node;
    int rc = herd_spec_watch(n, reconcile_on_spec, d);
    if (rc == 0)
        rc = herd_registry_watch_added(n, waiters_on_name_added, d);
    if (rc == 0)
        rc = herd_node_on_exit(n, restarts_on_exit, d);
    if (rc == 0 && herd_cluster_ring(n) != NULL) {
        rc = herd_events_subscribe_internal(n, HERD_EV_MEMBERS, on_member_event, d);
        if (rc == 0)
            rc = herd_cluster_on_app(n, HANDOFF_APP, handoff_on_app, d);
    }
    return rc;
}

int herd_dsup_start(herd_node_t *n, const herd_dsup_config_t *cfg)
{
    if (herd_node_ext(n, HERD_EXT_REGISTRY) == NULL)
        return HERD_ENOENT;
    if (dsup_of(n))
        return HERD_EEXIST;
    dsup_t *d = calloc(1, sizeof(*d));
    dsup_handles_t *h = calloc(1, sizeof(*h));
    if (d == NULL || h == NULL) {
        free(d);
        free(h);
        return HERD_ENOMEM;
    }
    d->node = n;
    if (cfg)
        d->cfg = *cfg;
    config_defaults(&d->cfg);
    u64map_init(&d->by_hash);
    u64map_init(&d->by_serial);
    u64map_init(&d->waiters);
    u64map_init(&d->peers);
    d->self_id = herd_node_id_of(herd_node_name(n));
    u64map_init(&d->parts);
    d->last_reconcile = d->started_at = herd_node_now(n);
    d->started_hlc = herd_node_hlc_now(n);
    h->d = d;
    h->open = 3;
    uv_timer_init(herd_node_loop(n), &h->tick);
    uv_timer_init(herd_node_loop(n), &h->kick);
    uv_idle_init(herd_node_loop(n), &h->more);
    h->tick.data = h->kick.data = h->more.data = h;
    uv_timer_start(&h->tick, on_tick, DSUP_TICK_MS, DSUP_TICK_MS);
    uv_unref((uv_handle_t *)&h->tick);
    uv_unref((uv_handle_t *)&h->kick);
    uv_unref((uv_handle_t *)&h->more);
    d->h = h;
    int rc = replicas_init(d);
    if (rc == 0)
        rc = dsup_hook_up(d);
    if (rc) {
        dsup_free(d);
        return rc;
    }
    herd_node_set_ext(n, HERD_EXT_HANDOFF, d, dsup_free);
    return 0;
}

/* ---- the API ------------------------------------------------------------------------ */

static int check_request(const herd_child_req_t *req)
{
    size_t len = req && req->name ? strlen(req->name) : 0;
    if (len == 0 || len >= HERD_NAME_MAX || req->service == NULL ||
        (req->arg_len && req->arg == NULL) || req->arg_len > HERD_SPEC_MAX - 80 ||
        (unsigned)req->restart > HERD_RESTART_TEMPORARY || req->replicas > HERD_MAX_REPLICAS)
        return HERD_EINVAL;
    size_t slen = strlen(req->service);
    return slen == 0 || slen > HERD_SERVICE_NAME_MAX ? HERD_EINVAL : 0;
}

int herd_start_child_async(herd_node_t *n, const herd_child_req_t *req, uint32_t timeout_ms,
                           herd_start_cb cb, void *data)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    int rc = check_request(req);
    if (rc || cb == NULL)
        return rc ? rc : HERD_EINVAL;
    herd_start_result_t res = {0};
    const uint8_t *old;
    size_t old_len;
    if (herd_whereis(n, req->name, &res.pid, NULL) == 0) {
        res.already_started = 1;
        cb(data, &res);
        return 0;
    }
    const herd_ring_t *owners = svcring_get(d, req->service);
    if (owners && herd_ring_member_count(owners) == 0) {
        herd_log(HERD_LOG_INFO, "dsup", "not starting '%s': no member provides service '%s'",
                 req->name, req->service);
        return HERD_ENOSERVICE;
    }
    if (herd_spec_get(n, req->name, &old, &old_len) != 0) {
        size_t len;
        uint8_t *spec = dspec_encode(req, herd_node_hlc_now(n), &len);
        rc = spec ? herd_spec_put(n, req->name, spec, len) : HERD_ENOMEM;
        free(spec);
        if (rc)
            return rc;
        if (d->dirty_n) /* an owner of the name starts it before answering */
            reconcile_dirty(d);
    }
    if (herd_whereis(n, req->name, &res.pid, NULL) == 0) { /* started here just now */
        cb(data, &res);
        return 0;
    }
    if ((rc = waiters_add(d, req->name, timeout_ms, cb, data)) != 0)
        return rc;
    dsup_update_ref(d);
    return 0;
}

typedef struct start_wait {
    int done;
    herd_start_result_t res;
} start_wait_t;

static void start_done(void *data, const herd_start_result_t *res)
{
    start_wait_t *w = data;
    w->res = *res;
    w->done = 1;
}

int herd_start_child(herd_node_t *n, const herd_child_req_t *req, uint32_t timeout_ms,
                     herd_start_result_t *out)
{
    /* Inside the loop (a process, a loop callback) the loop cannot run
     * (herd_node_run_for refuses): refuse before a spec is written or a
     * waiter points at this stack frame. */
    if (herd_node_in_loop(n))
        return HERD_EDEADLK;
    start_wait_t w = {0};
    int rc = herd_start_child_async(n, req, timeout_ms, start_done, &w);
    if (rc)
        return rc;
    /* bounded: the waiter answers by its deadline */
    for (uint64_t end = herd_node_now(n) + timeout_ms + 1000; !w.done && herd_node_now(n) < end;)
        if ((rc = herd_node_run_for(n, DSUP_TICK_MS)) != 0)
            return rc;
    if (!w.done)
        return HERD_ETIMEDOUT;
    *out = w.res;
    return w.res.status;
}

int herd_which_children(herd_node_t *n, herd_child_fn fn, void *data)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    int visited = 0;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;) {
        for (dchild_t *c = s->value; c; c = c->twin) {
            herd_child_view_t v = {.name = c->name,
                                   .service = d->services[c->service].name,
                                   .pid = c->pid,
                                   .state = c->state,
                                   .restart = c->restart,
                                   .restarts = c->restarts};
            replicas_view(d, c, &v);
            visited++;
            if (fn && fn(data, &v))
                return visited;
        }
    }
    return visited;
}

typedef struct count_ctx {
    herd_node_t *node;
    herd_child_counts_t *out;
} count_ctx_t;

static int count_spec(void *data, const char *name, const uint8_t *spec, size_t len)
{
    (void)spec;
    (void)len;
    count_ctx_t *c = data;
    c->out->specs++;
    if (herd_whereis(c->node, name, NULL, NULL) == 0)
        c->out->running++;
    return 0;
}

int herd_count_children(herd_node_t *n, herd_child_counts_t *out)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    memset(out, 0, sizeof(*out));
    out->local = d->child_count;
    count_ctx_t c = {n, out};
    herd_spec_foreach(n, count_spec, &c);
    return 0;
}
