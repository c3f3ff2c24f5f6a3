/*
 * dsup.c - the distributed supervisor on one node (see herd_dsup.h):
 * services, the children this node runs, reconcile, local restarts and the
 * public API. The move protocol is handoff.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "dsup_int.h"
#include "log.h"
#include "planner.h"
#include "ring.h"
#include "svcring.h"
#include "wire.h"

#define DSUP_TICK_MS 20
#define DSUP_BACKOFF_FIRST_MS 10
#define DSUP_BACKOFF_MAX_MS 1000
#define DSUP_TOO_BIG_RETRY_MS 10000 /* a state too big to move is measured again then */

static void dsup_update_ref(dsup_t *d);

dsup_t *dsup_of(herd_node_t *n)
{
    return herd_node_ext(n, HERD_EXT_HANDOFF);
}

const char *herd_child_state_name(herd_child_state_t s)
{
    static const char *names[] = {"running", "restarting", "moving", "arriving"};
    return (unsigned)s < 4 ? names[s] : "?";
}

/* ---- services and specs ------------------------------------------------------- */

int dsup_service_index(const dsup_t *d, const char *service)
{
    for (size_t i = 0; i < d->service_count; i++)
        if (strcmp(d->services[i].name, service) == 0)
            return (int)i;
    return -1;
}

const herd_behaviour_t *dsup_behaviour(const dsup_t *d, int service)
{
    return service >= 0 && (size_t)service < d->service_count ? d->services[service].behaviour
                                                               : NULL;
}

int herd_service_register(herd_node_t *n, const char *service, const herd_behaviour_t *b)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    if (service == NULL || !service[0] || strlen(service) > HERD_SERVICE_NAME_MAX || b == NULL)
        return HERD_EINVAL;
    if (dsup_service_index(d, service) >= 0)
        return HERD_EEXIST;
    if (d->service_count == HERD_MAX_SERVICES)
        return HERD_EFULL;
    strcpy(d->services[d->service_count].name, service);
    d->services[d->service_count++].behaviour = b;
    /* the members place this service's children here from now on */
    const char *names[HERD_MAX_SERVICES];
    for (size_t i = 0; i < d->service_count; i++)
        names[i] = d->services[i].name;
    int rc = herd_cluster_set_services(n, names, d->service_count);
    if (rc && rc != HERD_ENOENT)
        herd_log(HERD_LOG_ERROR, "dsup", "cannot announce service '%s': %s", service,
                 herd_strerror(rc));
    return 0;
}

void dsup_meta(dsup_t *d, int service, herd_meta_t *meta)
{
    memset(meta, 0, sizeof(*meta));
    if (service >= 0 && (size_t)service < d->service_count)
        herd_meta_set(meta, "service", d->services[service].name);
}

static uint8_t *dspec_encode(const herd_child_req_t *req, uint64_t written, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, 1);
    wire_put_str(&w, req->service);
    wire_put_u8(&w, (uint8_t)req->restart);
    wire_put_bytes(&w, req->arg, req->arg_len);
    wire_put_u64(&w, written);
    return wire_writer_take(&w, len);
}

int dspec_decode(const uint8_t *buf, size_t len, dspec_t *out)
{
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    uint8_t version = wire_get_u8(&r);
    wire_get_str(&r, out->service, sizeof(out->service));
    uint8_t restart = wire_get_u8(&r);
    out->arg_len = wire_get_bytes(&r, &out->arg);
    out->written = wire_get_u64(&r);
    if (wire_reader_done(&r) || version != 1 || restart > HERD_RESTART_TEMPORARY)
        return HERD_EBADFRAME;
    out->restart = (herd_restart_t)restart;
    return 0;
}

/* ---- the child table ---------------------------------------------------------- */

dchild_t *dsup_find(dsup_t *d, const char *name)
{
    dchild_t *c = u64map_get(&d->by_hash, awmap_key_hash(name, strlen(name)));
    while (c && strcmp(c->name, name) != 0)
        c = c->twin;
    return c;
}

int dsup_add(dsup_t *d, dchild_t *c)
{
    c->hash = awmap_key_hash(c->name, strlen(c->name));
    dchild_t *first = u64map_get(&d->by_hash, c->hash);
    if (first) {
        c->twin = first->twin;
        first->twin = c;
    } else if (u64map_put(&d->by_hash, c->hash, c) != 0) {
        return HERD_ENOMEM;
    }
    if (!herd_pid_is_none(c->pid) && u64map_put(&d->by_serial, c->pid.serial, c) != 0) {
        dsup_forget(d, c);
        return HERD_ENOMEM;
    }
    d->child_count++;
    return 0;
}

static void unlink_hash(dsup_t *d, dchild_t *c)
{
    dchild_t *first = u64map_get(&d->by_hash, c->hash);
    if (first == c) {
        u64map_del(&d->by_hash, c->hash);
        if (c->twin && u64map_put(&d->by_hash, c->hash, c->twin) != 0)
            herd_log(HERD_LOG_ERROR, "dsup", "out of memory relinking a child");
        return;
    }
    for (dchild_t *p = first; p; p = p->twin) {
        if (p->twin == c) {
            p->twin = c->twin;
            return;
        }
    }
}

void dsup_forget(dsup_t *d, dchild_t *c)
{
    holder_drop(d, c);
    bigstate_out_free(c);
    unlink_hash(d, c);
    if (!herd_pid_is_none(c->pid) && u64map_get(&d->by_serial, c->pid.serial) == c)
        u64map_del(&d->by_serial, c->pid.serial);
    if (c->state == HERD_CHILD_RESTARTING)
        d->restarting--;
    if (c->state == HERD_CHILD_MOVING)
        d->moving--;
    if (c->state == HERD_CHILD_ARRIVING)
        d->arriving--;
    d->child_count--;
    free(c->name);
    free(c);
}

static dchild_t *child_new(const char *name, int service, herd_restart_t restart)
{
    dchild_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(name)) == NULL) {
        free(c);
        return NULL;
    }
    c->service = service;
    c->restart = restart;
    return c;
}

/* ---- starting, stopping, restarting -------------------------------------------- */

/* Spawn the spec's process and register the name. */
static int spawn_registered(dsup_t *d, const char *name, const dspec_t *spec, int service,
                            herd_pid_t *out)
{
    herd_spawn_opts_t o = {.behaviour = dsup_behaviour(d, service),
                           .arg = spec->arg,
                           .arg_len = spec->arg_len};
    herd_pid_t pid;
    int rc = herd_spawn(d->node, &o, &pid);
    if (rc)
        return rc;
    herd_meta_t meta;
    dsup_meta(d, service, &meta);
    rc = herd_register(d->node, name, pid, &meta);
    if (rc) { /* someone else holds it now */
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return rc;
    }
    *out = pid;
    return 0;
}

static int spec_of(dsup_t *d, const char *name, dspec_t *spec, int *service)
{
    const uint8_t *buf;
    size_t len;
    int rc = herd_spec_get(d->node, name, &buf, &len);
    if (rc == 0)
        rc = dspec_decode(buf, len, spec);
    if (rc)
        return rc;
    *service = dsup_service_index(d, spec->service);
    if (*service < 0) {
        herd_log(HERD_LOG_WARN, "dsup", "child '%s': service '%s' is unknown here", name,
                 spec->service);
        return HERD_EINVAL;
    }
    return 0;
}

/* Start `name` here. Within the join grace (`held`), only children asked
 * for after this node started: older ones run somewhere already, as far as
 * this node's replica, still filling, can tell yet. */
static void child_start(dsup_t *d, const char *name, int held)
{
    dspec_t spec;
    int service;
    herd_pid_t pid;
    if (dsup_find(d, name) || spec_of(d, name, &spec, &service))
        return;
    if (held && spec.written <= d->started_hlc) {
        d->grace_pending = 1;
        return;
    }
    if (spawn_registered(d, name, &spec, service, &pid))
        return;
    dchild_t *c = child_new(name, service, spec.restart);
    if (c == NULL) {
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return;
    }
    c->pid = pid;
    c->state = HERD_CHILD_RUNNING;
    herd_registry_stamp(d->node, name, &c->hlc, &c->gen);
    herd_spec_ref(d->node, name, &c->spec_ref);
    if (dsup_add(d, c) != 0) {
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return;
    }
    d->stats.starts++;
}

static void child_stop(dsup_t *d, dchild_t *c)
{
    herd_pid_t pid = c->pid;
    dsup_forget(d, c); /* first: its exit is not a failure */
    if (!herd_pid_is_none(pid))
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    d->stats.stops++;
}

/* The new copy takes the name from the holder (holder.c), keeping its
 * first-registration time and the messages sent meanwhile. */
static void child_restart(dsup_t *d, dchild_t *c)
{
    dspec_t spec;
    int service;
    herd_pid_t pid;
    char *name = c->name;
    if (spec_of(d, name, &spec, &service) != 0) {
        dsup_forget(d, c); /* its spec went meanwhile */
        return;
    }
    herd_spawn_opts_t o = {.behaviour = dsup_behaviour(d, service),
                           .arg = spec.arg,
                           .arg_len = spec.arg_len};
    int rc = herd_spawn(d->node, &o, &pid);
    if (rc == 0 && holder_pass(d, c, pid) != 0) { /* no holder: register anew */
        herd_meta_t meta;
        dsup_meta(d, service, &meta);
        rc = c->hlc ? herd_register_at(d->node, name, pid, &meta, c->hlc)
                    : herd_register(d->node, name, pid, &meta);
        if (rc)
            herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    }
    if (rc) {
        herd_log(HERD_LOG_WARN, "dsup", "child '%s' not restarted: %s", name, herd_strerror(rc));
        dsup_forget(d, c);
        return;
    }
    d->restarting--;
    c->state = HERD_CHILD_RUNNING;
    c->pid = pid;
    herd_registry_stamp(d->node, name, &c->hlc, &c->gen);
    herd_spec_ref(d->node, name, &c->spec_ref);
    if (u64map_put(&d->by_serial, pid.serial, c) != 0) {
        dsup_forget(d, c);
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return;
    }
    d->stats.restarts++;
}

static void restarts_due(dsup_t *d, uint64_t now)
{
    if (d->restarting == 0)
        return;
    dchild_t **due = malloc(d->restarting * sizeof(*due));
    size_t n = 0, cursor = 0;
    if (due == NULL)
        return;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c && n < d->restarting; c = c->twin)
            if (c->state == HERD_CHILD_RESTARTING && c->restart_at <= now)
                due[n++] = c;
    for (size_t i = 0; i < n; i++)
        child_restart(d, due[i]);
    free(due);
}

/* Whether the exit ends the child for good by its strategy. */
static int exit_is_final(herd_restart_t restart, int reason)
{
    if (restart == HERD_RESTART_TEMPORARY)
        return 1;
    return restart == HERD_RESTART_TRANSIENT &&
           (reason == HERD_REASON_NORMAL || reason == HERD_REASON_SHUTDOWN);
}

static void child_gone_for_good(dsup_t *d, dchild_t *c, const char *why)
{
    herd_log(HERD_LOG_INFO, "dsup", "child '%s' %s: its spec is removed", c->name, why);
    herd_spec_remove(d->node, c->name);
    dsup_forget(d, c);
}

static void on_exit(void *data, herd_pid_t pid, int reason)
{
    dsup_t *d = data;
    dchild_t *c = u64map_get(&d->by_serial, pid.serial);
    if (c == NULL || !herd_pid_equal(c->pid, pid))
        return;
    u64map_del(&d->by_serial, pid.serial);
    if (c->state == HERD_CHILD_MOVING || c->state == HERD_CHILD_ARRIVING) {
        handoff_lost(d, c);
        if (c->state == HERD_CHILD_ARRIVING) {
            dsup_forget(d, c);
            return;
        }
    }
    if (reason == HERD_REASON_NAME_CONFLICT || reason == HERD_REASON_HANDOFF) {
        dsup_forget(d, c);
        return;
    }
    if (exit_is_final(c->restart, reason)) {
        child_gone_for_good(d, c, "ended");
        return;
    }
    uint64_t now = herd_node_now(d->node);
    if (c->restarts == 0 || now - c->window_start > d->cfg.window_ms) {
        c->window_start = now;
        c->restarts = 0;
        c->backoff_ms = 0;
    }
    if (++c->restarts > d->cfg.max_restarts) {
        herd_log(HERD_LOG_ERROR, "dsup", "child '%s' exited %u times within %u ms (last: %s)",
                 c->name, c->restarts, d->cfg.window_ms, herd_reason_name(reason));
        child_gone_for_good(d, c, "gave up");
        return;
    }
    /* the first restart at once, then a doubling back-off */
    c->restart_at = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : DSUP_BACKOFF_FIRST_MS;
    if (c->backoff_ms > DSUP_BACKOFF_MAX_MS)
        c->backoff_ms = DSUP_BACKOFF_MAX_MS;
    c->pid = HERD_PID_NONE;
    c->state = HERD_CHILD_RESTARTING;
    d->restarting++;
    holder_hold(d, c);
    dsup_update_ref(d);
    dsup_kick(d, 0);
}

/* ---- reconcile ------------------------------------------------------------------ */

typedef struct plan_input {
    dsup_t *d;
    hoff_child_t *children;
    char **names; /* owned copies */
    size_t count, cap;
} plan_input_t;

static int input_add(plan_input_t *in, const char *name)
{
    if (in->count == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        hoff_child_t *c = realloc(in->children, cap * sizeof(*c));
        if (c)
            in->children = c;
        char **n = realloc(in->names, cap * sizeof(*n));
        if (n)
            in->names = n;
        if (c == NULL || n == NULL)
            return HERD_ENOMEM;
        in->cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return HERD_ENOMEM;
    dsup_t *d = in->d;
    const uint8_t *spec;
    size_t len;
    dchild_t *c = dsup_find(d, name);
    in->names[in->count] = copy;
    in->children[in->count] = (hoff_child_t){
        .name = copy,
        .spec_exists = herd_spec_get(d->node, name, &spec, &len) == 0 ||
                       (c && !herd_spec_ref_seen(d->node, &c->spec_ref)),
        .running_here = c != NULL,
        .running_visible = c != NULL || herd_whereis(d->node, name, NULL, NULL) == 0,
    };
    in->count++;
    return 0;
}

static int add_spec_name(void *data, const char *name, const uint8_t *spec, size_t len)
{
    (void)spec;
    (void)len;
    plan_input_t *in = data;
    return dsup_find(in->d, name) ? 0 : input_add(in, name); /* local ones come after */
}

static void input_free(plan_input_t *in)
{
    for (size_t i = 0; i < in->count; i++)
        free(in->names[i]);
    free(in->names);
    free(in->children);
}

/* The owner's view when the node is in no cluster: a ring of itself. */
static ring_t *solo_ring(dsup_t *d)
{
    ring_t *r = ring_new();
    if (r && ring_add(r, herd_node_name(d->node), 1) != 0) {
        ring_free(r);
        r = NULL;
    }
    return r;
}

/* Whether a member has been up here long enough to take children. */
static int target_ready(dsup_t *d, const char *target, uint64_t now)
{
    uint64_t *since = u64map_get(&d->up_since, herd_node_id_of(target));
    return since == NULL || now - *since >= d->cfg.target_grace_ms;
}

/* A node that just joined others waits before starting children. */
static int may_start(dsup_t *d, uint64_t now)
{
    const ring_t *ring = herd_cluster_ring(d->node);
    return ring == NULL || ring_member_count(ring) < 2 ||
           now - d->started_at >= d->cfg.join_grace_ms;
}

static void act(dsup_t *d, const hoff_action_t *a, const hoff_child_t *ch, uint64_t now)
{
    dchild_t *c = dsup_find(d, ch->name);
    switch (a->kind) {
    case HOFF_START:
        child_start(d, ch->name, !may_start(d, now));
        break;
    case HOFF_STOP:
        if (c && c->state != HERD_CHILD_MOVING && c->state != HERD_CHILD_ARRIVING)
            child_stop(d, c);
        break;
    case HOFF_HANDOFF:
        if (c == NULL || c->state != HERD_CHILD_RUNNING ||
            (c->too_big_at && now - c->too_big_at < DSUP_TOO_BIG_RETRY_MS))
            break;
        if (d->moving < d->cfg.max_moves && target_ready(d, a->target, now))
            handoff_begin(d, c, a->target);
        else
            d->more_moves = 1; /* the next full reconcile comes sooner */
        break;
    }
}

static void run_plan(dsup_t *d, plan_input_t *in)
{
    const ring_t *ring = herd_cluster_ring(d->node);
    ring_t *solo = ring ? NULL : solo_ring(d);
    hoff_plan_t plan;
    svcring_assign(d, in->children, in->count); /* each child: its service's ring */
    if ((ring || solo) &&
        hoff_plan(NULL, ring ? ring : solo, herd_node_name(d->node), in->children, in->count,
                  &plan) == 0) {
        uint64_t now = herd_node_now(d->node);
        for (size_t i = 0; i < plan.count; i++)
            act(d, &plan.actions[i], &in->children[plan.actions[i].child], now);
        hoff_plan_free(&plan);
    }
    ring_free(solo);
}

/* A child that runs here but has no entry of its own (its registration was
 * lost: a delta that never left a node that died, a removal by a node that
 * thought it gone) registers itself again with its stamp, so lookups find
 * it and, if another copy holds the name, the conflict rule judges the two. */
static void claim_unnamed(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;) {
        for (dchild_t *c = s->value; c; c = c->twin) {
            if (c->state != HERD_CHILD_RUNNING || herd_pid_is_none(c->pid) ||
                herd_is_frozen(d->node, c->pid) || !herd_is_alive(d->node, c->pid) ||
                herd_registry_holds(d->node, c->name, c->pid))
                continue;
            herd_meta_t meta;
            dsup_meta(d, c->service, &meta);
            if (c->hlc == 0)
                c->hlc = herd_node_hlc_now(d->node);
            if (herd_register_claim(d->node, c->name, c->pid, &meta, c->hlc, c->gen) == 0) {
                d->stats.claimed++;
                herd_log(HERD_LOG_INFO, "dsup", "child '%s' ran without a registration: "
                         "registered again", c->name);
            }
        }
    }
}

static void reconcile_all(dsup_t *d)
{
    claim_unnamed(d);
    plan_input_t in = {.d = d};
    herd_spec_foreach(d->node, add_spec_name, &in);
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c; c = c->twin)
            input_add(&in, c->name);
    run_plan(d, &in);
    input_free(&in);
    d->last_reconcile = herd_node_now(d->node);
}

void dsup_reconcile_dirty(dsup_t *d)
{
    char **names = d->dirty;
    size_t n = d->dirty_n;
    d->dirty = NULL;
    d->dirty_n = d->dirty_cap = 0;
    plan_input_t in = {.d = d};
    for (size_t i = 0; i < n; i++) {
        input_add(&in, names[i]);
        free(names[i]);
    }
    free(names);
    run_plan(d, &in);
    input_free(&in);
}

/* ---- start waiters ---------------------------------------------------------------- */

/* Answer the waiters of one name hash that are done: registered, or (with
 * `now` nonzero) past their deadline. */
static void waiters_settle(dsup_t *d, uint64_t hash, uint64_t now)
{
    start_waiter_t *done = NULL, *keep = NULL;
    for (start_waiter_t *w = u64map_del(&d->waiters, hash), *next; w; w = next) {
        next = w->next;
        herd_pid_t pid;
        int found = herd_whereis(d->node, w->name, &pid, NULL) == 0;
        start_waiter_t **to = found || (now && now >= w->deadline) ? &done : &keep;
        w->next = *to;
        *to = w;
    }
    if (keep && u64map_put(&d->waiters, hash, keep) != 0)
        herd_log(HERD_LOG_ERROR, "dsup", "out of memory keeping start waiters");
    for (start_waiter_t *w = done, *next; w; w = next) { /* callbacks last: they may start */
        next = w->next;
        herd_start_result_t res = {0};
        if (herd_whereis(d->node, w->name, &res.pid, NULL) != 0)
            res.status = HERD_ETIMEDOUT;
        d->waiter_count--;
        w->cb(w->data, &res);
        free(w->name);
        free(w);
    }
}

static void on_name_added(void *data, uint64_t hash)
{
    dsup_t *d = data;
    if (d->waiter_count && u64map_get(&d->waiters, hash))
        waiters_settle(d, hash, 0);
}

/* Deadlines: the tick looks at every waiter (a compare each). */
static void waiters_expire(dsup_t *d, uint64_t now)
{
    uint64_t *due = malloc(d->waiter_count * sizeof(*due));
    size_t n = 0, cursor = 0;
    if (due == NULL)
        return;
    for (u64map_slot_t *s; (s = u64map_next(&d->waiters, &cursor)) != NULL;)
        for (start_waiter_t *w = s->value; w && n < d->waiter_count; w = w->next)
            if (now >= w->deadline) {
                due[n++] = s->key;
                break;
            }
    for (size_t i = 0; i < n; i++)
        waiters_settle(d, due[i], now);
    free(due);
}

/* ---- the loop's work ------------------------------------------------------------------ */

static void dsup_work(dsup_t *d)
{
    uint64_t now = herd_node_now(d->node);
    if (d->full_due || now - d->last_reconcile >= d->cfg.reconcile_ms) {
        d->full_due = 0;
        for (size_t i = 0; i < d->dirty_n; i++) /* a full pass covers them */
            free(d->dirty[i]);
        free(d->dirty);
        d->dirty = NULL;
        d->dirty_n = d->dirty_cap = 0;
        reconcile_all(d);
    } else if (d->dirty_n) {
        dsup_reconcile_dirty(d);
    }
    restarts_due(d, now);
    handoff_tick(d, now);
    if (d->waiter_count)
        waiters_expire(d, now);
    if (d->term_count)
        terminate_tick(d, now);
    if (d->grace_pending && now - d->started_at >= d->cfg.join_grace_ms) {
        d->grace_pending = 0; /* what the grace held back starts now */
        d->full_due = 1;
    }
    if (d->more_moves && d->moving <= d->cfg.max_moves / 2) {
        d->more_moves = 0; /* room again, or a target's grace passed */
        d->full_due = 1;
    }
    dsup_update_ref(d);
}

/* The tick keeps the loop alive only while something waits for it (a
 * restart, a start waiter, a move): a node in no cluster has nothing else
 * to keep herd_node_run_for running. */
static void dsup_update_ref(dsup_t *d)
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

static void on_spec(void *data, const char *name)
{
    dsup_t *d = data;
    if (d->dirty_n == d->dirty_cap) {
        size_t cap = d->dirty_cap ? d->dirty_cap * 2 : 64;
        char **n = realloc(d->dirty, cap * sizeof(*n));
        if (n == NULL) {
            dsup_kick(d, 1);
            return;
        }
        d->dirty = n;
        d->dirty_cap = cap;
    }
    if ((d->dirty[d->dirty_n] = strdup(name)) != NULL)
        d->dirty_n++;
    dsup_kick(d, 0);
}

static void on_member(void *data, const char *name, uint64_t incarnation,
                      herd_member_state_t old_state, herd_member_state_t new_state, int gone)
{
    (void)incarnation;
    (void)old_state;
    (void)gone;
    dsup_t *d = data;
    uint64_t id = herd_node_id_of(name);
    if (new_state == HERD_MEMBER_UP && old_state != HERD_MEMBER_UP &&
        old_state != HERD_MEMBER_SUSPECT) {
        uint64_t *since = u64map_get(&d->up_since, id);
        if (since == NULL && (since = malloc(sizeof(*since))) != NULL &&
            u64map_put(&d->up_since, id, since) != 0) {
            free(since);
            since = NULL;
        }
        if (since)
            *since = herd_node_now(d->node);
    } else if (new_state != HERD_MEMBER_UP && new_state != HERD_MEMBER_SUSPECT) {
        free(u64map_del(&d->up_since, id));
    }
    handoff_on_member(d, id, new_state);
    dsup_kick(d, 1);
}

int herd_dsup_poll(herd_node_t *n)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    dsup_work(d);
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
    herd_cluster_off_change(d->node, on_member, d);
    herd_registry_watch_added(d->node, NULL, NULL);
    herd_cluster_on_app(d->node, HANDOFF_APP, NULL, NULL);
    herd_spec_watch(d->node, NULL, NULL);
    if (d->h) {
        d->h->d = NULL;
        uv_close((uv_handle_t *)&d->h->tick, on_handle_closed);
        uv_close((uv_handle_t *)&d->h->kick, on_handle_closed);
    }
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;) {
        for (dchild_t *c = s->value, *next; c; c = next) {
            next = c->twin;
            bigstate_out_free(c);
            free(c->name);
            free(c);
        }
    }
    u64map_fini(&d->by_hash);
    u64map_fini(&d->by_serial);
    for (size_t i = 0; i < d->dirty_n; i++)
        free(d->dirty[i]);
    free(d->dirty);
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->waiters, &cursor)) != NULL;) {
        for (start_waiter_t *w = s->value, *next; w; w = next) {
            next = w->next;
            free(w->name);
            free(w);
        }
    }
    u64map_fini(&d->waiters);
    terminate_free(d);
    bigstate_free(d);
    cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->up_since, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&d->up_since);
    svcring_free(d->rings);
    free(d);
}

static void config_defaults(herd_dsup_config_t *c)
{
    if (!c->reconcile_ms)
        c->reconcile_ms = 1000;
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
    if (!c->join_grace_ms)
        c->join_grace_ms = 1000;
    if (!c->target_grace_ms)
        c->target_grace_ms = 500;
    if (!c->max_state_bytes)
        c->max_state_bytes = 64ull << 20;
}

static int dsup_hook_up(dsup_t *d)
{
    herd_node_t *n = d->node;
    int rc = herd_spec_watch(n, on_spec, d);
    if (rc == 0)
        rc = herd_registry_watch_added(n, on_name_added, d);
    if (rc == 0)
        rc = herd_node_on_exit(n, on_exit, d);
    if (rc == 0 && herd_cluster_ring(n) != NULL) {
        rc = herd_cluster_on_change(n, on_member, d);
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
    u64map_init(&d->up_since);
    u64map_init(&d->parts);
    d->last_reconcile = d->started_at = herd_node_now(n);
    d->started_hlc = herd_node_hlc_now(n);
    h->d = d;
    h->open = 2;
    uv_timer_init(herd_node_loop(n), &h->tick);
    uv_timer_init(herd_node_loop(n), &h->kick);
    h->tick.data = h->kick.data = h;
    uv_timer_start(&h->tick, on_tick, DSUP_TICK_MS, DSUP_TICK_MS);
    uv_unref((uv_handle_t *)&h->tick);
    uv_unref((uv_handle_t *)&h->kick);
    d->h = h;
    int rc = dsup_hook_up(d);
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
        (unsigned)req->restart > HERD_RESTART_TEMPORARY)
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
    const ring_t *owners = svcring_get(d, req->service);
    if (owners && ring_member_count(owners) == 0) {
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
            dsup_reconcile_dirty(d);
    }
    if (herd_whereis(n, req->name, &res.pid, NULL) == 0) { /* started here just now */
        cb(data, &res);
        return 0;
    }
    start_waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->name = strdup(req->name)) == NULL) {
        free(w);
        return HERD_ENOMEM;
    }
    w->hash = herd_registry_name_hash(req->name);
    w->deadline = herd_node_now(n) + timeout_ms;
    w->cb = cb;
    w->data = data;
    w->next = u64map_get(&d->waiters, w->hash);
    if (u64map_put(&d->waiters, w->hash, w) != 0) {
        free(w->name);
        free(w);
        return HERD_ENOMEM;
    }
    d->waiter_count++;
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
    /* Inside a process the loop cannot run (herd_node_run_for refuses, and
     * the node's clock stands still): refuse before a spec is written or a
     * waiter points at this stack frame. */
    if (herd_node_in_process(n))
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
            herd_child_view_t v = {c->name, d->services[c->service].name, c->pid, c->state,
                                   c->restart, c->restarts};
            visited++;
            if (fn && fn(data, &v))
                return visited;
        }
    }
    return visited;
}

int herd_child_spec(herd_node_t *n, const char *name, herd_child_spec_view_t *out)
{
    const uint8_t *buf;
    size_t len;
    dspec_t spec;
    int rc = herd_spec_get(n, name, &buf, &len);
    if (rc == 0)
        rc = dspec_decode(buf, len, &spec);
    if (rc)
        return rc;
    memcpy(out->service, spec.service, sizeof(out->service));
    out->restart = spec.restart;
    out->arg_len = spec.arg_len;
    return 0;
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
