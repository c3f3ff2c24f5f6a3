/*
 * restarts.c - a child's exit on its owner, and its restart.
 *
 * The owner judges an exit by the child's strategy: a permanent child (or a
 * transient one that failed) is restarted here with back-off while its name
 * stays held (holder.c), marked restarting, so no other node starts a copy
 * meanwhile; an exit that ends the child by its strategy, or one restart
 * too many within the window, removes its spec for good. An exit for a
 * name conflict or a handoff is no failure and restarts nothing. The policy
 * is the runtime's (restart_policy.h); its window here opens at a failure
 * and counts for window_ms, two fields per child.
 */
#include <stdlib.h>

#include "dsup_int.h"
#include "log.h"
#include "registry_layers.h"
#include "restart_policy.h"
#include "runtime_layers.h"

/* The first restart at once, then 10 ms doubling up to a second. */
#define DSUP_BACKOFF_FIRST_MS 10
#define DSUP_BACKOFF_MAX_MS 1000

/* The new copy takes the name from the holder (holder.c), keeping its
 * first-registration time and the messages sent meanwhile. */
/* Restart c. A replicated child restarts from the newest copy of its state
 * (what its replies acknowledged: replica_query.c), so a crash of its
 * process loses no more than a crash of its node would; while the members
 * answer, it waits (the next tick comes back). */
static void child_restart(dsup_t *d, dchild_t *c)
{
    dspec_t spec;
    int service;
    herd_pid_t pid;
    char *name = c->name;
    if (dspec_of(d, name, &spec, &service) != 0) {
        dsup_forget(d, c); /* its spec went meanwhile */
        return;
    }
    repl_found_t found = {0};
    if (c->copies > 1 && replica_query_start(d, name, spec.service, &found) != 1)
        return; /* asking (or out of memory): the next tick tries again */
    herd_spawn_opts_t o = {.behaviour = dsup_behaviour(d, service),
                           .arg = spec.arg,
                           .arg_len = spec.arg_len};
    if (found.found) {
        o.handoff_state = found.bytes ? found.bytes : (const uint8_t *)"";
        o.handoff_len = found.len;
    }
    int rc = herd_spawn(d->node, &o, &pid);
    for (size_t i = 0; rc == 0 && i < found.others_n; i++)
        if (herd_state_merge(d->node, pid, found.others[i].bytes, found.others[i].len) == 0)
            d->repl_stats.merged_in++;
    /* versions go on above both the copy it starts from and what the run
     * that died put; it holds what that copy holds, no more */
    uint64_t version = found.found && found.version > c->version ? found.version : c->version;
    uint64_t base_writer = found.found ? found.writer : 0;
    uint64_t base_version = found.found ? found.version : 0;
    repl_found_free(&found);
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
    child_set_state(d, c, HERD_CHILD_RUNNING);
    c->pid = pid;
    herd_registry_stamp(d->node, name, &c->hlc, &c->gen);
    herd_spec_ref(d->node, name, &c->spec_ref);
    if (u64map_put(&d->by_serial, pid.serial, c) != 0) {
        dsup_forget(d, c);
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
        return;
    }
    c->repl_dirty = 0; /* the old process's: the new one is put afresh */
    c->strict = (spec.flags & DSPEC_REFUSE_UNDERREPLICATED) != 0;
    replicas_gate(d, c, base_writer, base_version, version);
    d->stats.restarts++;
    dsup_event(d, HERD_EV_CHILD_RESTARTED, name, pid, c->last_pid, 0);
}

void restarts_due(dsup_t *d, uint64_t now)
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

static void child_gone_for_good(dsup_t *d, dchild_t *c, const char *why)
{
    herd_log(HERD_LOG_INFO, "dsup", "child '%s' %s: its spec is removed", c->name, why);
    herd_spec_remove(d->node, c->name);
    dsup_forget(d, c);
}

void restarts_on_exit(void *data, herd_pid_t pid, int reason)
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
    switch (restart_verdict(c->restart, reason)) {
    case RESTART_NO_FAILURE:
        dsup_event(d, HERD_EV_CHILD_TERMINATED, c->name, pid, HERD_PID_NONE, reason);
        dsup_forget(d, c);
        return;
    case RESTART_ENDED:
        dsup_event(d, HERD_EV_CHILD_TERMINATED, c->name, pid, HERD_PID_NONE, reason);
        child_gone_for_good(d, c, "ended");
        return;
    case RESTART_AGAIN:
        break;
    }
    const restart_policy_t policy = {d->cfg.max_restarts, d->cfg.window_ms,
                                     DSUP_BACKOFF_FIRST_MS, DSUP_BACKOFF_MAX_MS};
    uint64_t now = herd_node_now(d->node);
    if (restart_window_reopens(&policy, c->window_start, c->restarts, now)) {
        c->window_start = now;
        c->restarts = 0;
    }
    uint32_t prior = c->restarts++;
    if (restart_over_limit(&policy, prior)) {
        herd_log(HERD_LOG_ERROR, "dsup", "child '%s' exited %u times within %u ms (last: %s)",
                 c->name, c->restarts, d->cfg.window_ms, herd_reason_name(reason));
        dsup_event(d, HERD_EV_CHILD_GAVE_UP, c->name, HERD_PID_NONE, pid, reason);
        child_gone_for_good(d, c, "gave up");
        return;
    }
    c->restart_at = now + restart_backoff(&policy, prior);
    c->last_pid = pid;
    c->pid = HERD_PID_NONE;
    child_set_state(d, c, HERD_CHILD_RESTARTING);
    holder_hold(d, c);
    dsup_update_ref(d);
    dsup_kick(d, 0);
}
