/*
 * freeze.c - what the handoff needs of the runtime to move a process to
 * another node without losing a message: freeze it, forward its queued
 * messages (calls keep their caller and reference, so the new copy answers
 * them), and redirect late messages to the new copy for a grace period.
 * A call from another node that moves is the network's to move or forget
 * (the node's net ops, node.h).
 */
#include <stdlib.h>

#include "node.h"

typedef struct redirect {
    herd_pid_t to;
    uint64_t until; /* node clock, ms */
} redirect_t;

#define REDIRECT_PRUNE_EVERY 1024u

static herd_proc_t *proc_outside_handlers(herd_node_t *n, herd_pid_t pid, int *rc)
{
    herd_proc_t *p = proc_lookup(n, pid);
    *rc = p == NULL ? HERD_ENOPROC : (p->flags & PROC_RUNNING) ? HERD_EINVAL : 0;
    return *rc ? NULL : p;
}

/* Whether a call made by process `serial` still waits for its reply. */
static int has_outstanding_call(herd_node_t *n, uint64_t serial)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&n->calls, &cursor)) != NULL;)
        if (((pending_call_t *)s->value)->caller == serial)
            return 1;
    return 0;
}

static int one_holder(herd_freeze_holder_t holder)
{
    unsigned h = (unsigned)holder;
    return h != 0 && (h & (h - 1)) == 0 && h <= HERD_FREEZE_TEST;
}

int herd_freeze(herd_node_t *n, herd_pid_t pid, herd_freeze_holder_t holder)
{
    int rc;
    herd_proc_t *p = proc_outside_handlers(n, pid, &rc);
    if (p == NULL)
        return rc;
    if (!one_holder(holder))
        return HERD_EINVAL;
    if (p->frozen_by == 0 && n->calls.count && has_outstanding_call(n, p->serial))
        return HERD_EBUSY;
    p->frozen_by |= (uint8_t)holder;
    p->flags |= PROC_FROZEN;
    return 0;
}

int herd_thaw(herd_node_t *n, herd_pid_t pid, herd_freeze_holder_t holder)
{
    herd_proc_t *p = proc_lookup(n, pid);
    if (p == NULL)
        return HERD_ENOPROC;
    if (!one_holder(holder))
        return HERD_EINVAL;
    p->frozen_by &= (uint8_t)~holder;
    if (p->frozen_by)
        return 0; /* another holder keeps it frozen */
    p->flags &= (uint8_t)~PROC_FROZEN;
    if (p->ext)
        p->ext->fwd_tail = NULL;
    if (p->head && !(p->flags & PROC_RUNNING))
        node_schedule(n, p);
    return 0;
}

int herd_is_frozen(const herd_node_t *n, herd_pid_t pid)
{
    herd_proc_t *p = proc_lookup(n, pid);
    return p ? p->frozen_by : 0;
}

int herd_has_queued(const herd_node_t *n, herd_pid_t pid, herd_msg_kind_t kind)
{
    herd_proc_t *p = proc_lookup(n, pid);
    for (const mmsg_t *m = p ? p->head : NULL; m; m = m->next)
        if (m->kind == (uint8_t)kind)
            return 1;
    return 0;
}

/* A call queued for p now goes to `to`: p no longer answers it if it exits.
 * When `to` is another node's, that node records the call itself; when it
 * is this node's, the records follow it: a remote caller's inbound record,
 * a local caller's pending call, and the watch that answers ENOPROC if the
 * new copy exits first. */
static void move_call(herd_node_t *n, herd_proc_t *p, const mmsg_t *m, herd_pid_t to)
{
    if (p->ext)
        proc_unwatch(p, m->ref);
    herd_proc_t *t = node_is_local(n, to) ? proc_lookup(n, to) : NULL;
    if (!node_is_local(n, m->from)) {
        if (t)
            n->net->move_inbound(n, m->from, m->ref, to);
        else
            n->net->release_inbound(n, m->from, m->ref);
        return;
    }
    pending_call_t *pc = u64map_get(&n->calls, m->ref);
    if (pc && pc->caller == m->from.serial)
        pc->callee = to;
    if (t)
        proc_watch(t, m->ref, m->from, 1);
}

int herd_forward_mailbox(herd_node_t *n, herd_pid_t from, herd_pid_t to)
{
    int rc;
    herd_proc_t *p = proc_outside_handlers(n, from, &rc);
    if (p == NULL)
        return rc;
    if (!(p->flags & PROC_FROZEN) || herd_pid_equal(from, to))
        return HERD_EINVAL;
    int moved = 0;
    for (mmsg_t *m; (m = proc_pop(p)) != NULL; free(m)) {
        herd_msg_kind_t kind = (herd_msg_kind_t)m->kind;
        if (kind != HERD_MSG_CAST && kind != HERD_MSG_INFO && kind != HERD_MSG_CALL &&
            kind != HERD_MSG_MERGE)
            continue; /* p's own replies and notices: meaningless to the new copy */
        if (kind == HERD_MSG_CALL)
            move_call(n, p, m, to);
        int sent = proc_deliver_forwarded(n, to, m);
        if (sent == 0)
            moved++;
        else if (kind == HERD_MSG_CALL && node_is_local(n, m->from))
            /* its caller learns now */
            proc_complete_call(n, m->ref, sent, NULL, 0, REPLY_BY_RUNTIME);
    }
    return moved;
}

static void redirects_prune(herd_node_t *n, uint64_t now)
{
    size_t cursor = 0;
    uint64_t *expired = malloc(n->redirects.count * sizeof(uint64_t));
    size_t count = 0;
    if (expired == NULL)
        return;
    for (u64map_slot_t *s; (s = u64map_next(&n->redirects, &cursor)) != NULL;)
        if (((redirect_t *)s->value)->until <= now)
            expired[count++] = s->key;
    for (size_t i = 0; i < count; i++)
        free(u64map_del(&n->redirects, expired[i]));
    free(expired);
}

int herd_redirect(herd_node_t *n, herd_pid_t from, herd_pid_t to, uint64_t ms)
{
    if (!node_is_local(n, from) || from.serial == 0 || herd_pid_is_none(to) ||
        herd_pid_equal(from, to))
        return HERD_EINVAL;
    uint64_t now = herd_node_now(n);
    if (++n->redirect_puts % REDIRECT_PRUNE_EVERY == 0)
        redirects_prune(n, now);
    redirect_t *r = u64map_get(&n->redirects, from.serial);
    if (r == NULL) {
        if ((r = malloc(sizeof(*r))) == NULL)
            return HERD_ENOMEM;
        if (u64map_put(&n->redirects, from.serial, r) != 0) {
            free(r);
            return HERD_ENOMEM;
        }
    }
    r->to = to;
    r->until = now + ms;
    return 0;
}

herd_pid_t node_redirect_of(herd_node_t *n, uint64_t serial)
{
    redirect_t *r = u64map_get(&n->redirects, serial);
    if (r == NULL)
        return HERD_PID_NONE;
    if (r->until <= herd_node_now(n)) {
        free(u64map_del(&n->redirects, serial));
        return HERD_PID_NONE;
    }
    return r->to;
}

void node_redirects_free(herd_node_t *n)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&n->redirects, &cursor)) != NULL;)
        free(s->value);
    u64map_fini(&n->redirects);
}
