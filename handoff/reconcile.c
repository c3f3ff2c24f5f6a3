/*
 * reconcile.c - bringing what runs here in line with the specs and the ring.
 *
 * The planner (planner.c) is pure: given the names this pass looks at -
 * whether each has a spec, runs here, runs anywhere visible - and the
 * ring, it says what to start, stop and hand off. This file gathers that
 * input and carries the actions out. A full pass (after a membership
 * change, and every reconcile_ms) looks at every spec and every local
 * child; between full passes only the names whose spec changed (the dirty
 * names, collected as spec deltas arrive) are looked at, so one start_child
 * does not cost a walk over every spec.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "herd_ring.h"
#include "log.h"
#include "planner.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "svcring.h"


/* ---- starting and stopping ---------------------------------------------------- */

/* Spawn the spec's process (from `found`'s copy of its state when there is
 * one) and register the name (with the copy's first-registration time). */
static int spawn_registered(dsup_t *d, const char *name, const dspec_t *spec, int service,
                            const repl_found_t *found, herd_pid_t *out)
{
    herd_spawn_opts_t o = {.behaviour = dsup_behaviour(d, service),
                           .arg = spec->arg,
                           .arg_len = spec->arg_len};
    if (found->found) {
        o.handoff_state = found->bytes ? found->bytes : (const uint8_t *)"";
        o.handoff_len = found->len;
    }
    herd_pid_t pid;
    int rc = herd_spawn(d->node, &o, &pid);
    if (rc)
        return rc;
    herd_meta_t meta;
    dsup_meta(d, service, &meta);
    rc = found->found ? herd_register_at(d->node, name, pid, &meta, found->hlc)
                      : herd_register(d->node, name, pid, &meta);
    if (rc) { /* someone else holds it now */
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return rc;
    }
    *out = pid;
    return 0;
}

/* Copies of other registrations, or of other runs of its own, the query
 * found (two ran at once, across a partition) are merged into the new
 * process before it takes a message. */
static void merge_others(dsup_t *d, const char *name, herd_pid_t pid, const repl_found_t *f)
{
    for (size_t i = 0; i < f->others_n; i++) {
        int rc = herd_state_merge(d->node, pid, f->others[i].bytes, f->others[i].len);
        if (rc == 0)
            d->repl_stats.merged_in++;
        else
            herd_log(HERD_LOG_WARN, "dsup", "'%s': a copy of another registration not merged "
                     "as it started: %s", name, herd_strerror(rc));
    }
}

/* Start `name` here. Until this node is ready (`held`: readiness.c), only
 * children asked for after this node started: older ones run somewhere
 * already, as far as this node's replica, still filling, can tell yet. A
 * replicated child first asks the members for the newest copy of its state
 * (replica_query.c): it starts once they answered. */
static void child_start(dsup_t *d, const char *name, int held)
{
    dspec_t spec;
    int service;
    herd_pid_t pid;
    if (dsup_find(d, name) || dspec_of(d, name, &spec, &service))
        return;
    if (held && spec.written <= d->started_hlc) {
        d->grace_pending = 1;
        return;
    }
    uint8_t copies = replicas_wanted(d, &spec, service);
    repl_found_t found = {0};
    if (copies > 1 && replica_query_start(d, name, spec.service, &found) != 1)
        return; /* asking, or out of memory: a later reconcile comes back */
    int rc = spawn_registered(d, name, &spec, service, &found, &pid);
    if (rc == 0)
        merge_others(d, name, pid, &found);
    int promoted = found.found;
    uint64_t version = found.version, base_writer = found.writer;
    repl_found_free(&found);
    if (rc)
        return;
    dchild_t *c = dsup_child_new(name, service, spec.restart);
    if (c == NULL) {
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return;
    }
    c->pid = pid;
    c->copies = copies;
    c->strict = (spec.flags & DSPEC_REFUSE_UNDERREPLICATED) != 0;
    herd_registry_stamp(d->node, name, &c->hlc, &c->gen);
    herd_spec_ref(d->node, name, &c->spec_ref);
    if (dsup_add(d, c, HERD_CHILD_RUNNING) != 0) {
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return;
    }
    if (promoted) {
        d->repl_stats.promoted++;
        replica_drop_local(d, name); /* runs here now: the copy kept here is spent */
    }
    replicas_gate(d, c, base_writer, version, version);
    d->stats.starts++;
    dsup_event(d, HERD_EV_CHILD_STARTED, name, pid, HERD_PID_NONE, 0);
}

static void child_stop(dsup_t *d, dchild_t *c)
{
    herd_pid_t pid = c->pid;
    dsup_event(d, HERD_EV_CHILD_TERMINATED, c->name, pid, HERD_PID_NONE, HERD_REASON_SHUTDOWN);
    dsup_forget(d, c); /* first: its exit is not a failure */
    if (!herd_pid_is_none(pid))
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    d->stats.stops++;
}

/* ---- the planner's input --------------------------------------------------------- */

typedef struct plan_input {
    dsup_t *d;
    hoff_child_t *children;
    char **names; /* owned copies */
    size_t count, cap;
    int full; /* a full pass's: the children it looks at are marked (pass_gen) */
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
    if (c && in->full)
        c->pass_gen = d->pass_gen;
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
    return input_add(data, name);
}

static void input_free(plan_input_t *in)
{
    for (size_t i = 0; i < in->count; i++)
        free(in->names[i]);
    free(in->names);
    free(in->children);
}

/* ---- the plan and its actions --------------------------------------------------- */

/* The owner's view when the node is in no cluster: a ring of itself. */
static herd_ring_t *solo_ring(dsup_t *d)
{
    herd_ring_t *r = herd_ring_new();
    if (r && herd_ring_add(r, herd_node_name(d->node), 1) != 0) {
        herd_ring_free(r);
        r = NULL;
    }
    return r;
}

static void act(dsup_t *d, const hoff_action_t *a, const hoff_child_t *ch, uint64_t now)
{
    dchild_t *c = dsup_find(d, ch->name);
    switch (a->kind) {
    case HOFF_START: /* a node that joined others first syncs with them (readiness.c) */
        child_start(d, ch->name, !readiness_may_start(d));
        break;
    case HOFF_STOP:
        if (c && c->state != HERD_CHILD_MOVING && c->state != HERD_CHILD_ARRIVING)
            child_stop(d, c);
        break;
    case HOFF_HANDOFF:
        if (c == NULL || c->state != HERD_CHILD_RUNNING || now < c->move_after)
            break;
        if (!readiness_target(d, a->target, now))
            break; /* its announcement (or the fallback) reconciles again */
        if (d->moving < d->cfg.max_moves)
            handoff_begin(d, c, a->target);
        else
            d->more_moves = 1; /* the next full reconcile comes sooner */
        break;
    }
}

static void run_plan(dsup_t *d, plan_input_t *in)
{
    const herd_ring_t *ring = herd_cluster_ring(d->node);
    herd_ring_t *solo = ring ? NULL : solo_ring(d);
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
    herd_ring_free(solo);
}

/* A child that runs here but has no entry of its own (its registration was
 * lost: a delta that never left a node that died, a removal by a node that
 * thought it gone) registers itself again with its stamp, so lookups find
 * it and, if another copy holds the name, the conflict rule judges the two. */
static void claim_unnamed(dsup_t *d, dchild_t *c)
{
    if (c->state != HERD_CHILD_RUNNING || herd_pid_is_none(c->pid) ||
        herd_is_frozen(d->node, c->pid) || !herd_is_alive(d->node, c->pid) ||
        herd_registry_holds(d->node, c->name, c->pid))
        return;
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

/* The children of a full pass's slice that run here are claimed before it
 * is planned (a claim changes the registry, which the slice's walk must
 * not). Each is found again by name: a claim may end another. */
static void claim_slice(dsup_t *d, const plan_input_t *in)
{
    for (size_t i = 0; i < in->count; i++) {
        dchild_t *c = in->children[i].running_here ? dsup_find(d, in->names[i]) : NULL;
        if (c)
            claim_unnamed(d, c);
    }
}

/* At the end of a full pass, the children running here it did not come to
 * by their spec (none, or one written after the walk passed its place):
 * a stop is due for those without one. */
static int add_unseen_locals(plan_input_t *in)
{
    dsup_t *d = in->d;
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c; c = c->twin)
            if (c->pass_gen != d->pass_gen && input_add(in, c->name) != 0)
                return HERD_ENOMEM;
    return 0;
}

/* ---- passes ------------------------------------------------------------------------ */

static void dirty_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Positions of the registry's order: a whole circle. */
#define PASS_CIRCLE (UINT64_C(1) << 32)

/* A full pass walks the registry's order a slice a loop turn, from where
 * the last one stopped, until it has covered a whole circle since it began
 * (again: the membership changing under it begins the circle anew where
 * it is, so no position waits for a pass to be started over and over).
 * The specs present throughout are each looked at once after it began;
 * one written meanwhile is a dirty name (reconcile_on_spec). */
void reconcile_full(dsup_t *d)
{
    dirty_free(d->dirty, d->dirty_n); /* the circle ahead covers them */
    d->dirty = NULL;
    d->dirty_n = d->dirty_cap = 0;
    d->stats.full_restarts += (uint64_t)d->pass_active;
    d->pass_active = 1;
    d->pass_left = PASS_CIRCLE;
    d->pass_gen++; /* every child is to be looked at again */
    reconcile_continue(d);
}

static void pass_end(dsup_t *d)
{
    d->pass_active = 0;
    d->last_reconcile = herd_node_now(d->node);
    d->stats.full_passes++;
}

void reconcile_continue(dsup_t *d)
{
    if (!d->pass_active)
        return;
    plan_input_t in = {.d = d, .full = 1};
    uint64_t from = d->pass_pos;
    int rc = herd_spec_foreach_slice(d->node, &d->pass_pos, d->cfg.reconcile_slice,
                                     add_spec_name, &in);
    if (rc < 0) { /* out of memory: the pass ends here, the next one is due as usual */
        herd_log(HERD_LOG_ERROR, "dsup", "a full reconcile stopped: %s", herd_strerror(rc));
        input_free(&in);
        pass_end(d);
        return;
    }
    uint64_t covered = (rc == 1 ? PASS_CIRCLE : d->pass_pos) - from;
    if (rc == 1)
        d->pass_pos = 0; /* round the circle */
    d->pass_left = covered >= d->pass_left ? 0 : d->pass_left - covered;
    d->stats.full_slices++;
    if (d->pass_left == 0 && add_unseen_locals(&in) != 0)
        herd_log(HERD_LOG_ERROR, "dsup", "a full reconcile missed children running here: "
                 "out of memory (the next pass looks again)");
    claim_slice(d, &in);
    run_plan(d, &in);
    input_free(&in);
    if (d->pass_left == 0)
        pass_end(d);
    else
        dsup_more(d); /* the next slice at the loop's next turn */
}

void reconcile_dirty(dsup_t *d)
{
    char **names = d->dirty;
    size_t n = d->dirty_n;
    d->dirty = NULL;
    d->dirty_n = d->dirty_cap = 0;
    plan_input_t in = {.d = d};
    for (size_t i = 0; i < n; i++)
        input_add(&in, names[i]);
    dirty_free(names, n);
    run_plan(d, &in);
    input_free(&in);
}

void reconcile_more(dsup_t *d)
{
    if (d->dirty_n)
        reconcile_dirty(d);
    reconcile_continue(d); /* nothing when no pass is under way */
}

void reconcile_on_spec(void *data, const char *name)
{
    dsup_t *d = data;
    const uint8_t *spec;
    size_t len;
    if (herd_spec_get(d->node, name, &spec, &len) != 0)
        replica_drop_local(d, name); /* terminated: its copies go */
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

void reconcile_free(dsup_t *d)
{
    dirty_free(d->dirty, d->dirty_n);
    d->dirty = NULL;
    d->dirty_n = d->dirty_cap = 0;
}
