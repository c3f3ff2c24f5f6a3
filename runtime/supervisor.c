/*
 * supervisor.c - the local dynamic supervisor.
 *
 * A supervisor is a process that traps exits and is linked to each child it
 * starts. A child's exit arrives as HERD_MSG_EXIT and is judged by the child's
 * restart strategy. Restart intensity is counted per child over a sliding
 * window, not per supervisor: a dynamic supervisor holds many independent
 * named children, and one crash-looping child must not take its thousand
 * healthy siblings down with it. A child over its limit is given up (logged,
 * reported through on_child_gone with HERD_REASON_MAX_RESTARTS) and the
 * supervisor carries on. The first restart in a window is immediate; later
 * ones wait backoff_ms, doubling up to backoff_max_ms (restart_policy.h, the
 * policy the distributed supervisor shares).
 */
#include "node.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "restart_policy.h"

typedef struct sup_child {
    uint64_t id;
    const herd_behaviour_t *behaviour;
    herd_restart_t restart;
    uint8_t *arg;
    size_t arg_len;
    herd_pid_t pid;      /* HERD_PID_NONE while waiting to restart */
    herd_pid_t last_pid; /* the copy that exited last */
    uint64_t timer;      /* the pending back-off, 0 if none */
    uint64_t *stamps;    /* restart times within the window, oldest first */
    uint32_t stamp_count;
} sup_child_t;

typedef struct sup_state {
    herd_sup_config_t cfg;
    restart_policy_t policy; /* from cfg */
    u64map_t by_id;     /* child id -> sup_child */
    u64map_t by_serial; /* serial of the live copy -> sup_child */
    uint64_t next_id;
} sup_state_t;

static const herd_behaviour_t sup_behaviour;

static void sup_child_free(sup_child_t *c)
{
    free(c->arg);
    free(c->stamps);
    free(c);
}

static sup_state_t *sup_state_of(herd_node_t *n, herd_pid_t sup)
{
    herd_proc_t *p = proc_lookup(n, sup);
    return (p && p->beh == &sup_behaviour) ? p->state : NULL;
}

/* The child is finished for good: forget it and say so. */
static void sup_child_gone(sup_state_t *s, sup_child_t *c, int reason)
{
    u64map_del(&s->by_id, c->id);
    if (s->cfg.on_child_gone)
        s->cfg.on_child_gone(s->cfg.data, c->id, c->last_pid, reason);
    sup_child_free(c);
}

static int sup_spawn_child(herd_proc_t *self, sup_state_t *s, sup_child_t *c)
{
    herd_spawn_opts_t o = {.behaviour = c->behaviour, .arg = c->arg, .arg_len = c->arg_len,
                           .link = herd_self(self)};
    herd_pid_t pid;
    int rc = herd_spawn(self->node, &o, &pid);
    if (rc)
        return rc;
    if (u64map_put(&s->by_serial, pid.serial, c) != 0) {
        herd_unlink(self, pid);
        herd_exit(self->node, pid, HERD_REASON_KILLED);
        return HERD_ENOMEM;
    }
    c->pid = pid;
    return 0;
}

static void sup_child_exited(herd_proc_t *self, sup_state_t *s, sup_child_t *c, int reason);

static void sup_restart_now(herd_proc_t *self, sup_state_t *s, sup_child_t *c)
{
    c->timer = 0;
    int rc = sup_spawn_child(self, s, c);
    if (rc != 0) { /* init failed: another crash of this child */
        sup_child_exited(self, s, c, rc);
        return;
    }
    if (s->cfg.on_child_restart)
        s->cfg.on_child_restart(s->cfg.data, c->id, c->last_pid, c->pid);
}

/* Count a restart in the sliding window; HERD_ERANGE when over the limit,
 * else the back-off delay in ms. */
static int64_t sup_next_delay(sup_state_t *s, sup_child_t *c, uint64_t now)
{
    uint32_t keep = restart_window_slide(&s->policy, c->stamps, c->stamp_count, now);
    c->stamp_count = keep;
    if (restart_over_limit(&s->policy, keep))
        return HERD_ERANGE;
    if (c->stamps == NULL &&
        (c->stamps = malloc(s->cfg.max_restarts * sizeof(uint64_t))) == NULL)
        return HERD_ENOMEM;
    c->stamps[c->stamp_count++] = now;
    return (int64_t)restart_backoff(&s->policy, keep);
}

static void sup_child_exited(herd_proc_t *self, sup_state_t *s, sup_child_t *c, int reason)
{
    if (!herd_pid_is_none(c->pid))
        c->last_pid = c->pid;
    c->pid = HERD_PID_NONE;
    if (restart_verdict(c->restart, reason) != RESTART_AGAIN) {
        sup_child_gone(s, c, reason);
        return;
    }
    int64_t delay = sup_next_delay(s, c, herd_node_now(self->node));
    if (delay < 0) {
        herd_log(HERD_LOG_WARN, "supervisor",
                 "giving up child %llu (%s) after %u restarts in %u ms; last exit: %s",
                 (unsigned long long)c->id, c->behaviour->name ? c->behaviour->name : "?",
                 s->cfg.max_restarts, s->cfg.window_ms, herd_reason_name(reason));
        sup_child_gone(s, c, HERD_REASON_MAX_RESTARTS);
        return;
    }
    if (delay == 0) {
        sup_restart_now(self, s, c);
        return;
    }
    uint64_t id = c->id;
    if (herd_send_after(self->node, herd_self(self), (uint64_t)delay, &id, sizeof(id),
                        &c->timer) != 0)
        sup_restart_now(self, s, c);
}

/* ---- the supervisor's behaviour ---------------------------------------------- */

static int sup_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    if (len != sizeof(herd_sup_config_t))
        return HERD_EINVAL;
    sup_state_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HERD_ENOMEM;
    s->cfg = *(const herd_sup_config_t *)arg;
    if (s->cfg.max_restarts == 0)
        s->cfg.max_restarts = 3;
    if (s->cfg.window_ms == 0)
        s->cfg.window_ms = 5000;
    if (s->cfg.backoff_ms == 0)
        s->cfg.backoff_ms = 10;
    if (s->cfg.backoff_max_ms == 0)
        s->cfg.backoff_max_ms = 1000;
    s->policy = (restart_policy_t){s->cfg.max_restarts, s->cfg.window_ms, s->cfg.backoff_ms,
                                   s->cfg.backoff_max_ms};
    u64map_init(&s->by_id);
    u64map_init(&s->by_serial);
    *state = s;
    return 0;
}

static int sup_handle_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    sup_state_t *s = state;
    if (msg->kind == HERD_MSG_EXIT) {
        if (!node_is_local(self->node, msg->from))
            return 0;
        sup_child_t *c = u64map_del(&s->by_serial, msg->from.serial);
        if (c)
            sup_child_exited(self, s, c, msg->status);
        else if (msg->status != HERD_REASON_NORMAL)
            herd_exit(self->node, herd_self(self), msg->status); /* told to stop */
        return 0;
    }
    if (msg->kind == HERD_MSG_INFO && msg->len == sizeof(uint64_t)) {
        uint64_t id;
        memcpy(&id, msg->data, sizeof(id));
        sup_child_t *c = u64map_get(&s->by_id, id);
        if (c && c->timer == msg->ref)
            sup_restart_now(self, s, c);
    }
    return 0;
}

static void sup_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)reason;
    sup_state_t *s = state;
    size_t cursor = 0;
    for (u64map_slot_t *slot; (slot = u64map_next(&s->by_id, &cursor)) != NULL;) {
        sup_child_t *c = slot->value;
        if (c->timer)
            herd_cancel_timer(self->node, c->timer);
        herd_proc_t *p = proc_lookup(self->node, c->pid);
        if (p)
            proc_mark_exit(p, HERD_REASON_SHUTDOWN);
        sup_child_free(c);
    }
    u64map_fini(&s->by_id);
    u64map_fini(&s->by_serial);
    free(s);
}

static const herd_behaviour_t sup_behaviour = {
    .name = "supervisor",
    .init = sup_init,
    .handle_info = sup_handle_info,
    .terminate = sup_terminate,
};

/* ---- the API ------------------------------------------------------------------- */

int herd_sup_start(herd_node_t *n, const herd_sup_config_t *cfg, herd_pid_t *sup)
{
    herd_sup_config_t defaults = {0};
    herd_spawn_opts_t o = {.behaviour = &sup_behaviour,
                           .arg = cfg ? cfg : &defaults,
                           .arg_len = sizeof(herd_sup_config_t),
                           .trap_exit = 1};
    return herd_spawn(n, &o, sup);
}

int herd_sup_start_child(herd_node_t *n, herd_pid_t sup, const herd_child_spec_t *spec,
                         uint64_t *id, herd_pid_t *pid)
{
    if (spec == NULL || spec->behaviour == NULL || (spec->arg_len && spec->arg == NULL) ||
        spec->restart > HERD_RESTART_TEMPORARY)
        return HERD_EINVAL;
    sup_state_t *s = sup_state_of(n, sup);
    if (s == NULL)
        return HERD_ENOPROC;
    sup_child_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (spec->arg_len && (c->arg = malloc(spec->arg_len)) == NULL)) {
        free(c);
        return HERD_ENOMEM;
    }
    if (spec->arg_len)
        memcpy(c->arg, spec->arg, spec->arg_len);
    c->arg_len = spec->arg_len;
    c->behaviour = spec->behaviour;
    c->restart = spec->restart;
    c->id = ++s->next_id;
    herd_proc_t *sup_proc = u64map_get(&n->procs, sup.serial);
    int rc = sup_spawn_child(sup_proc, s, c);
    if (rc == 0 && (rc = u64map_put(&s->by_id, c->id, c)) != 0) {
        u64map_del(&s->by_serial, c->pid.serial);
        herd_unlink(sup_proc, c->pid);
        herd_exit(n, c->pid, HERD_REASON_KILLED);
    }
    if (rc) {
        sup_child_free(c);
        return rc;
    }
    if (id)
        *id = c->id;
    if (pid)
        *pid = c->pid;
    return 0;
}

int herd_sup_terminate_child(herd_node_t *n, herd_pid_t sup, uint64_t id)
{
    sup_state_t *s = sup_state_of(n, sup);
    if (s == NULL)
        return HERD_ENOPROC;
    sup_child_t *c = u64map_del(&s->by_id, id);
    if (c == NULL)
        return HERD_ENOENT;
    if (c->timer)
        herd_cancel_timer(n, c->timer);
    if (!herd_pid_is_none(c->pid)) {
        u64map_del(&s->by_serial, c->pid.serial);
        herd_proc_t *p = proc_lookup(n, c->pid);
        /* unlinked first: its exit must not come back as a signal to us */
        herd_unlink(u64map_get(&n->procs, sup.serial), c->pid);
        if (p)
            proc_mark_exit(p, HERD_REASON_SHUTDOWN);
    }
    sup_child_free(c);
    return 0;
}

static int sup_info_cmp(const void *a, const void *b)
{
    uint64_t x = ((const herd_child_info_t *)a)->id, y = ((const herd_child_info_t *)b)->id;
    return (x > y) - (x < y);
}

int herd_sup_which_children(herd_node_t *n, herd_pid_t sup, herd_child_info_t *out,
                            size_t cap)
{
    sup_state_t *s = sup_state_of(n, sup);
    if (s == NULL)
        return HERD_ENOPROC;
    size_t total = s->by_id.count, i = 0, cursor = 0;
    herd_child_info_t *all = calloc(total + 1, sizeof(*all));
    if (all == NULL)
        return HERD_ENOMEM;
    for (u64map_slot_t *slot; (slot = u64map_next(&s->by_id, &cursor)) != NULL;) {
        sup_child_t *c = slot->value;
        all[i++] = (herd_child_info_t){c->id, c->pid, c->stamp_count, c->restart};
    }
    qsort(all, total, sizeof(*all), sup_info_cmp);
    if (out)
        memcpy(out, all, (cap < total ? cap : total) * sizeof(*all));
    free(all);
    return (int)total;
}
