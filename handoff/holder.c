/*
 * holder.c - a restarting child keeps its name.
 *
 * Between a child's abnormal exit and its restart (a back-off of up to a
 * second) the name must neither vanish (lookups would fail, another node
 * could start a copy) nor lose its seniority (a restart registering anew
 * would lose a later conflict it should win). So the exit puts a holder in
 * the child's place: a process that is frozen from birth, registered with
 * the child's first-registration time, taking every message and call sent
 * to the name. The restart switches the registration from the holder to the
 * new copy in one delta and forwards what the holder queued, in order (calls
 * keep their callers: the new copy answers them), as a move does.
 */
#include "dsup_int.h"
#include "log.h"
#include "registry_layers.h"
#include "runtime_layers.h"

static const herd_behaviour_t holder_behaviour = {.name = "name-holder"};

void holder_hold(dsup_t *d, dchild_t *c)
{
    herd_node_t *n = d->node;
    herd_spawn_opts_t o = {.behaviour = &holder_behaviour};
    herd_meta_t meta;
    herd_pid_t pid = HERD_PID_NONE;
    c->holder = HERD_PID_NONE;
    if (c->hlc == 0)
        return; /* never registered: nothing to keep */
    dsup_meta(d, c->service, &meta);
    int rc = herd_spawn(n, &o, &pid);
    if (rc == 0 && (rc = herd_freeze(n, pid, HERD_FREEZE_HOLD)) == 0 &&
        (rc = herd_register_claim(n, c->name, pid, &meta, c->hlc, c->gen)) == 0) {
        c->holder = pid;
        return;
    }
    if (!herd_pid_is_none(pid))
        herd_stop(n, pid, HERD_REASON_SHUTDOWN);
    herd_log(HERD_LOG_WARN, "dsup", "'%s' has no holder while it restarts: %s", c->name,
             herd_strerror(rc));
}

int holder_pass(dsup_t *d, dchild_t *c, herd_pid_t to)
{
    herd_node_t *n = d->node;
    herd_pid_t h = c->holder;
    c->holder = HERD_PID_NONE;
    if (herd_pid_is_none(h) || !herd_is_alive(n, h))
        return HERD_ENOPROC; /* it lost the name meanwhile (a conflict) */
    int rc = herd_registry_switch(n, c->name, h, to);
    if (rc == 0)
        herd_forward_mailbox(n, h, to);
    herd_stop(n, h, HERD_REASON_SHUTDOWN);
    return rc;
}

void holder_drop(dsup_t *d, dchild_t *c)
{
    herd_pid_t h = c->holder;
    c->holder = HERD_PID_NONE;
    if (!herd_pid_is_none(h))
        herd_stop(d->node, h, HERD_REASON_SHUTDOWN);
}
