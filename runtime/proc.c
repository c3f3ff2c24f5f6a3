/*
 * proc.c - processes: spawn, mailboxes, handlers, exits, links and monitors.
 *
 * A process is found by its serial in the node's table, so a pid that has
 * exited is simply not found (HERD_ENOPROC), never a dangling pointer. Exits
 * are decided (proc_mark_exit) wherever they happen and carried out by the
 * scheduler (proc_run), never in the middle of another process's handler:
 * terminate runs, the process leaves the table, then its watchers get DOWN
 * (or, for callers waiting on it, a HERD_ENOPROC reply) and its links get the
 * exit signal. A process freed while still in the run queue is only marked
 * dead and freed when the queue reaches it.
 *
 * A pid of another node is reached through the node's net ops (node.h):
 * sends, calls, replies to remote callers and remote monitors go to the
 * cluster's table when there is one, and fail as unreachable without it.
 */
#include "node.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

#define PROC_DEAD (1 << 4) /* exited while queued: free when popped */
#define FORWARD_LOG_MS 1000 /* at most one line a second about failed forwards */

herd_pid_t herd_self(const herd_proc_t *self)
{
    const herd_node_t *n = self->node;
    return (herd_pid_t){n->id, n->incarnation, self->serial};
}

herd_node_t *herd_proc_node(const herd_proc_t *self)
{
    return self->node;
}

void herd_set_trap_exit(herd_proc_t *self, int on)
{
    if (on)
        self->flags |= PROC_TRAP;
    else
        self->flags &= (uint8_t)~PROC_TRAP;
}

herd_proc_t *proc_lookup(const herd_node_t *n, herd_pid_t pid)
{
    if (!node_is_local(n, pid) || pid.serial == 0 || n->stopping)
        return NULL;
    herd_proc_t *p = u64map_get(&n->procs, pid.serial);
    return (p && !(p->flags & PROC_EXITING)) ? p : NULL;
}

int herd_is_alive(const herd_node_t *n, herd_pid_t pid)
{
    return proc_lookup(n, pid) != NULL;
}

/* ---- watch lists and links ------------------------------------------------- */

static proc_ext_t *proc_ext(herd_proc_t *p)
{
    if (p->ext == NULL)
        p->ext = calloc(1, sizeof(proc_ext_t));
    return p->ext;
}

static int watch_add(watch_list_t *l, uint64_t ref, herd_pid_t pid, int is_call)
{
    if (l->count == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 2;
        proc_watch_t *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return HERD_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = (proc_watch_t){ref, pid, (uint8_t)is_call};
    return 0;
}

/* Remove the entry with `ref`; fills *removed when given. HERD_ENOENT if absent. */
static int watch_remove(watch_list_t *l, uint64_t ref, proc_watch_t *removed)
{
    for (uint32_t i = 0; i < l->count; i++) {
        if (l->items[i].ref == ref) {
            if (removed)
                *removed = l->items[i];
            l->items[i] = l->items[--l->count];
            return 0;
        }
    }
    return HERD_ENOENT;
}

static int link_add(herd_proc_t *p, herd_pid_t other)
{
    proc_ext_t *x = proc_ext(p);
    if (x == NULL)
        return HERD_ENOMEM;
    for (uint32_t i = 0; i < x->link_count; i++)
        if (herd_pid_equal(x->links[i], other))
            return 0;
    if (x->link_count == x->link_cap) {
        uint32_t cap = x->link_cap ? x->link_cap * 2 : 2;
        herd_pid_t *links = realloc(x->links, cap * sizeof(*links));
        if (links == NULL)
            return HERD_ENOMEM;
        x->links = links;
        x->link_cap = cap;
    }
    x->links[x->link_count++] = other;
    return 0;
}

static void link_remove(herd_proc_t *p, herd_pid_t other)
{
    proc_ext_t *x = p->ext;
    for (uint32_t i = 0; x && i < x->link_count; i++) {
        if (herd_pid_equal(x->links[i], other)) {
            x->links[i] = x->links[--x->link_count];
            return;
        }
    }
}

int proc_watch(herd_proc_t *p, uint64_t ref, herd_pid_t pid, int is_call)
{
    proc_ext_t *x = proc_ext(p);
    return x ? watch_add(&x->watchers, ref, pid, is_call) : HERD_ENOMEM;
}

void proc_unwatch(herd_proc_t *p, uint64_t ref)
{
    if (p->ext)
        watch_remove(&p->ext->watchers, ref, NULL);
}

void proc_forget_monitor(herd_proc_t *p, uint64_t ref)
{
    if (p->ext)
        watch_remove(&p->ext->watching, ref, NULL);
}

static void proc_ext_free(herd_node_t *n, proc_ext_t *x)
{
    if (x == NULL)
        return;
    gate_free(n, x->gate);
    free(x->links);
    free(x->watchers.items);
    free(x->watching.items);
    free(x->timers);
    free(x);
}

int proc_note_timer(herd_node_t *n, herd_pid_t pid, uint64_t id)
{
    herd_proc_t *p = proc_lookup(n, pid);
    proc_ext_t *x = p ? proc_ext(p) : NULL;
    if (p == NULL)
        return 0; /* code outside processes: nothing exits */
    if (x == NULL)
        return HERD_ENOMEM;
    if (x->timer_count == x->timer_cap) {
        uint32_t cap = x->timer_cap ? x->timer_cap * 2 : 2;
        uint64_t *t = realloc(x->timers, cap * sizeof(*t));
        if (t == NULL)
            return HERD_ENOMEM;
        x->timers = t;
        x->timer_cap = cap;
    }
    x->timers[x->timer_count++] = id;
    return 0;
}

void proc_forget_timer(herd_node_t *n, herd_pid_t pid, uint64_t id)
{
    herd_proc_t *p = proc_lookup(n, pid);
    proc_ext_t *x = p ? p->ext : NULL;
    for (uint32_t i = 0; x && i < x->timer_count; i++) {
        if (x->timers[i] == id) {
            x->timers[i] = x->timers[--x->timer_count];
            return;
        }
    }
}

/* ---- delivery ---------------------------------------------------------------- */

/* deliver's `how`: forced past the mailbox limit, forwarded after a move,
 * and a reply's copies in REPLY_COPIES_MASK's bits */
enum { DELIVER_FORCE = 1, DELIVER_FORWARDED = 2 };

/* Link m into p's mailbox: at the end, or after the forwarded messages. */
static void proc_enqueue(herd_proc_t *p, mmsg_t *m, int forwarded)
{
    if (forwarded && (p->flags & PROC_FROZEN) && proc_ext(p)) {
        mmsg_t *after = p->ext->fwd_tail;
        m->next = after ? after->next : p->head;
        if (after)
            after->next = m;
        else
            p->head = m;
        if (p->tail == after)
            p->tail = m;
        p->ext->fwd_tail = m;
    } else {
        if (p->tail)
            p->tail->next = m;
        else
            p->head = m;
        p->tail = m;
    }
    p->mbox_len++;
}

mmsg_t *proc_pop(herd_proc_t *p)
{
    mmsg_t *m = p->head;
    if (m == NULL)
        return NULL;
    p->head = m->next;
    if (p->head == NULL)
        p->tail = NULL;
    if (p->ext && p->ext->fwd_tail == m)
        p->ext->fwd_tail = NULL;
    p->mbox_len--;
    return m;
}

proc_ext_t *proc_ext_of(herd_proc_t *p)
{
    return proc_ext(p);
}

/* Where a message for `to` goes: `to`, or the new copy of a process that
 * moved away from here while it is redirected (freeze.c), as forwarded: a
 * remote caller's node then learns where its call went. */
static herd_pid_t deliver_route(herd_node_t *n, herd_pid_t to, int *how)
{
    for (int hop = 0; hop < 4 && n->redirects.count && node_is_local(n, to); hop++) {
        if (proc_lookup(n, to) != NULL)
            break;
        herd_pid_t moved = node_redirect_of(n, to.serial);
        if (herd_pid_is_none(moved) || herd_pid_equal(moved, to))
            break;
        to = moved;
        *how |= DELIVER_FORWARDED;
    }
    return to;
}

static int deliver_local(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind,
                         herd_pid_t from, uint64_t ref, int status, uint64_t deadline,
                         const void *data, size_t len, int how)
{
    herd_proc_t *p = proc_lookup(n, to);
    if (p == NULL)
        return HERD_ENOPROC;
    if (!(how & DELIVER_FORCE) && p->mbox_len >= p->mbox_limit)
        return HERD_EFULL;
    mmsg_t *m = malloc(sizeof(*m) + len);
    if (m == NULL)
        return HERD_ENOMEM;
    m->next = NULL;
    m->from = from;
    m->ref = ref;
    m->status = status;
    m->kind = (uint8_t)kind;
    m->copies = (uint8_t)REPLY_COPIES((unsigned)how);
    m->len = (uint32_t)len;
    m->deadline = deadline;
    if (len)
        memcpy(m->data, data, len);
    proc_enqueue(p, m, how & DELIVER_FORWARDED);
    if (!(p->flags & (PROC_RUNNING | PROC_FROZEN)))
        node_schedule(n, p);
    return 0;
}

static const char *kind_name(herd_msg_kind_t kind)
{
    switch (kind) {
    case HERD_MSG_CAST:
        return "cast";
    case HERD_MSG_CALL:
        return "call";
    case HERD_MSG_MERGE:
        return "merge";
    default:
        return "info";
    }
}

/* A message forwarded after a move could not be delivered where it went:
 * counted, and logged at most once a second per node (with how many went
 * unlogged since), so a flood of failures cannot flood the log. */
static void forward_failed(herd_node_t *n, herd_msg_kind_t kind, herd_pid_t to, int rc)
{
    if (kind == HERD_MSG_CALL)
        n->stats.forward_failed_calls++;
    else
        n->stats.forward_dropped++;
    n->forward_unlogged++;
    uint64_t now = herd_node_now(n);
    if (now < n->forward_log_next)
        return;
    herd_log(HERD_LOG_WARN, "proc",
             "%s: %llu forwarded message(s) not delivered; the last, a %s to "
             "%016llx/%llu/%llu: %s",
             n->name, (unsigned long long)n->forward_unlogged, kind_name(kind),
             (unsigned long long)to.node, (unsigned long long)to.incarnation,
             (unsigned long long)to.serial, herd_err_name(rc));
    n->forward_unlogged = 0;
    n->forward_log_next = now + FORWARD_LOG_MS;
}

/* A message for a process of another node; a call with its deadline. */
static int deliver_remote(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind,
                          herd_pid_t from, uint64_t ref, int status, uint64_t deadline,
                          const void *data, size_t len, int how)
{
    unsigned flags = (how & DELIVER_FORWARDED ? NET_FORWARDED : 0) |
                     ((unsigned)how & REPLY_COPIES_MASK);
    if (kind == HERD_MSG_CALL)
        return n->net->send_call(n, to, from, ref, deadline, data, len, flags);
    return n->net->send(n, to, kind, from, ref, status, data, len, flags);
}

static int deliver(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                   uint64_t ref, int status, uint64_t deadline, const void *data, size_t len,
                   int how)
{
    if (len > n->max_message)
        return HERD_ETOOBIG;
    if (len > 0 && data == NULL)
        return HERD_EINVAL;
    to = deliver_route(n, to, &how);
    int rc;
    if (node_is_local(n, to))
        rc = deliver_local(n, to, kind, from, ref, status, deadline, data, len, how);
    else if (to.node == n->id) /* an earlier start of this node: long dead */
        rc = HERD_ENOPROC;
    else
        rc = deliver_remote(n, to, kind, from, ref, status, deadline, data, len, how);
    if (rc && (how & DELIVER_FORWARDED))
        forward_failed(n, kind, to, rc);
    return rc;
}

int proc_deliver(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                 uint64_t ref, int status, const void *data, size_t len, int force)
{
    return deliver(n, to, kind, from, ref, status, 0, data, len, force ? DELIVER_FORCE : 0);
}

int proc_deliver_call(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                      uint64_t deadline, const void *data, size_t len, int relayed)
{
    return deliver(n, to, HERD_MSG_CALL, from, ref, 0, deadline, data, len,
                   relayed ? DELIVER_FORCE | DELIVER_FORWARDED : 0);
}

uint64_t proc_call_deadline(herd_node_t *n, uint32_t timeout_ms)
{
    return herd_node_hlc_now(n) + ((uint64_t)timeout_ms << HLC_LOGICAL_BITS);
}

/* A forwarded call that could not be delivered: its caller learns now,
 * with the error as the runtime's reply, rather than by its timeout. The
 * forwarder let go of the call (freeze.c's move_call), so this is the one
 * answer. A caller on an unreachable node is answered by its own node. */
static void forward_answer_call(herd_node_t *n, herd_pid_t caller, uint64_t ref,
                                herd_pid_t callee, int rc)
{
    if (node_is_local(n, caller)) {
        proc_complete_call(n, ref, rc, NULL, 0, REPLY_BY_RUNTIME);
        return;
    }
    int sent = n->net->send(n, caller, HERD_MSG_REPLY, callee, ref, rc, NULL, 0,
                            REPLY_BY_RUNTIME | NET_FORWARDED); /* callee: elsewhere */
    if (sent)
        herd_log(HERD_LOG_DEBUG, "proc", "%s: no error reply to a forwarded call: %s",
                 n->name, herd_err_name(sent));
}

int proc_deliver_forwarded(herd_node_t *n, herd_pid_t to, const mmsg_t *m)
{
    herd_msg_kind_t kind = (herd_msg_kind_t)m->kind;
    int rc = deliver(n, to, kind, m->from, m->ref, m->status, m->deadline, m->data, m->len,
                     DELIVER_FORCE | DELIVER_FORWARDED);
    if (rc && kind == HERD_MSG_CALL)
        forward_answer_call(n, m->from, m->ref, to, rc);
    return rc;
}

int proc_deliver_relayed(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind,
                         herd_pid_t from, uint64_t ref, int status, const void *data,
                         size_t len)
{
    return deliver(n, to, kind, from, ref, status, 0, data, len,
                   DELIVER_FORCE | DELIVER_FORWARDED);
}

int herd_cast(herd_proc_t *self, herd_pid_t to, const void *data, size_t len)
{
    return proc_deliver(self->node, to, HERD_MSG_CAST, herd_self(self), 0, 0, data, len, 0);
}

int herd_send(herd_proc_t *self, herd_pid_t to, const void *data, size_t len)
{
    return proc_deliver(self->node, to, HERD_MSG_INFO, herd_self(self), 0, 0, data, len, 0);
}

int herd_node_cast(herd_node_t *n, herd_pid_t to, const void *data, size_t len)
{
    return proc_deliver(n, to, HERD_MSG_CAST, node_outside_pid(n), 0, 0, data, len, 0);
}

int herd_node_send(herd_node_t *n, herd_pid_t to, const void *data, size_t len)
{
    return proc_deliver(n, to, HERD_MSG_INFO, node_outside_pid(n), 0, 0, data, len, 0);
}

/* ---- exits ------------------------------------------------------------------- */

void proc_mark_exit(herd_proc_t *p, int reason)
{
    if (p->flags & PROC_EXITING)
        return;
    p->flags |= PROC_EXITING;
    p->exit_reason = reason;
    if (!(p->flags & PROC_RUNNING))
        node_schedule(p->node, p);
}

/* An exit signal from `from` reaches `t`. `explicit_kill`: herd_exit(KILLED),
 * which no trap stops. */
static void proc_signal(herd_proc_t *t, herd_pid_t from, int reason, int explicit_kill)
{
    if (explicit_kill)
        proc_mark_exit(t, HERD_REASON_KILLED);
    else if (t->flags & PROC_TRAP)
        proc_deliver(t->node, herd_self(t), HERD_MSG_EXIT, from, 0, reason, NULL, 0, 1);
    else if (reason != HERD_REASON_NORMAL)
        proc_mark_exit(t, reason);
}

int herd_exit(herd_node_t *n, herd_pid_t pid, int reason)
{
    herd_proc_t *t = proc_lookup(n, pid);
    if (t == NULL)
        return HERD_ENOPROC;
    if (t == n->current) {
        proc_mark_exit(t, reason);
        return 0;
    }
    herd_pid_t from = n->current ? herd_self(n->current) : node_outside_pid(n);
    proc_signal(t, from, reason, reason == HERD_REASON_KILLED);
    return 0;
}

int herd_stop(herd_node_t *n, herd_pid_t pid, int reason)
{
    herd_proc_t *t = proc_lookup(n, pid);
    if (t == NULL)
        return HERD_ENOPROC;
    proc_mark_exit(t, reason);
    return 0;
}

static void proc_free_mailbox(herd_proc_t *p)
{
    for (mmsg_t *m = p->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    p->head = p->tail = NULL;
    p->mbox_len = 0;
}

/* Tell everyone who watched or was linked to the exiting `p`. */
void proc_callee_gone(herd_node_t *n, herd_from_t from, int status)
{
    if (!node_is_local(n, from.pid)) /* a caller on another node */
        n->net->callee_gone(n, from, status);
    else /* HERD_ENOPROC: it ended already (timed out, answered, its caller gone) */
        proc_complete_call(n, from.ref, status, NULL, 0, REPLY_BY_RUNTIME);
}

static void proc_notify_exit(herd_node_t *n, herd_proc_t *p, herd_pid_t self, int reason)
{
    proc_ext_t *x = p->ext;
    if (x == NULL)
        return;
    /* timers aimed at it can never deliver; its own calls can never be answered */
    for (uint32_t i = 0; i < x->timer_count; i++)
        timer_drop_for_exit(n, x->timers[i]);
    x->timer_count = 0;
    for (uint32_t i = 0; i < x->watchers.count; i++) {
        proc_watch_t *w = &x->watchers.items[i];
        if (w->is_call) {
            proc_callee_gone(n, (herd_from_t){w->pid, w->ref}, HERD_ENOPROC);
            continue;
        }
        herd_proc_t *watcher = proc_lookup(n, w->pid);
        if (watcher && watcher->ext) /* the monitor has fired: it is gone */
            watch_remove(&watcher->ext->watching, w->ref, NULL);
        proc_deliver(n, w->pid, HERD_MSG_DOWN, self, w->ref, reason, NULL, 0, 1);
    }
    for (uint32_t i = 0; i < x->watching.count; i++) {
        if (!node_is_local(n, x->watching.items[i].pid)) {
            n->net->demonitor(n, self, x->watching.items[i].pid, x->watching.items[i].ref);
            continue;
        }
        herd_proc_t *t = proc_lookup(n, x->watching.items[i].pid);
        if (t && t->ext)
            watch_remove(&t->ext->watchers, x->watching.items[i].ref, NULL);
    }
    for (uint32_t i = 0; i < x->link_count; i++) {
        herd_proc_t *t = proc_lookup(n, x->links[i]);
        if (t == NULL)
            continue;
        link_remove(t, self);
        proc_signal(t, self, reason, 0);
    }
}

static void proc_release(herd_proc_t *p)
{
    proc_free_mailbox(p);
    proc_ext_free(p->node, p->ext);
    p->ext = NULL;
    if (p->flags & PROC_QUEUED)
        p->flags |= PROC_DEAD; /* the run queue frees it */
    else
        free(p);
}

/* Carry out p's exit: terminate (unless init failed), leave the table, notify. */
static void proc_do_exit(herd_proc_t *p, int call_terminate)
{
    herd_node_t *n = p->node;
    herd_pid_t self = herd_self(p);
    int reason = p->exit_reason;
    u64map_del(&n->procs, p->serial);
    if (call_terminate && p->beh->terminate) {
        herd_proc_t *saved = n->current;
        n->current = p;
        n->depth++;
        p->beh->terminate(p, p->state, reason);
        n->depth--;
        n->current = saved;
    }
    p->state = NULL;
    gate_exit(n, p); /* before its exit answers the other calls HERD_ENOPROC */
    proc_notify_exit(n, p, self, reason);
    proc_release(p);
    for (int i = 0; i < n->exit_hook_count; i++)
        n->exit_hooks[i].cb(n->exit_hooks[i].data, self, reason);
}

/* ---- running handlers ------------------------------------------------------- */

static int proc_dispatch(herd_proc_t *p, const mmsg_t *m)
{
    const herd_behaviour_t *b = p->beh;
    herd_msg_t msg = {(herd_msg_kind_t)m->kind, m->from, m->ref, m->status, m->len, m->data,
                      m->copies};
    switch (m->kind) {
    case HERD_MSG_CAST:
        return b->handle_cast ? b->handle_cast(p, p->state, &msg) : 0;
    case HERD_MSG_CALL:
        if (gate_refuses(p)) { /* nothing applied: said at once, never held */
            proc_reply_now(p->node, (herd_from_t){m->from, m->ref}, gate_refuses(p), NULL, 0, 0);
            return 0;
        }
        if (b->handle_call)
            return b->handle_call(p, p->state, &msg, (herd_from_t){m->from, m->ref});
        herd_reply(p->node, (herd_from_t){m->from, m->ref}, HERD_EINVAL, NULL, 0);
        return 0;
    case HERD_MSG_MERGE: {
        int rc = b->resolve_conflict ? b->resolve_conflict(p, p->state, m->data, m->len) : 0;
        if (m->ref)
            gate_merge_handled(p, m->ref); /* confirmed once its state is held */
        return rc;
    }
    default:
        return b->handle_info ? b->handle_info(p, p->state, &msg) : 0;
    }
}

/* Run a state writer of p's behaviour as p (outside its own handlers). */
static int state_write(herd_node_t *n, herd_proc_t *p,
                       int (*write)(herd_proc_t *, void *, uint8_t **, size_t *), uint8_t **out,
                       size_t *len)
{
    herd_proc_t *saved = n->current;
    n->current = p;
    n->depth++;
    *out = NULL;
    *len = 0;
    int rc = write(p, p->state, out, len);
    n->depth--;
    n->current = saved;
    return rc;
}

int herd_state_out(herd_node_t *n, herd_pid_t pid, uint8_t **out, size_t *len)
{
    herd_proc_t *p = proc_lookup(n, pid);
    if (p == NULL)
        return HERD_ENOPROC;
    if (p->beh->handoff_out == NULL || (p->flags & PROC_RUNNING))
        return HERD_EINVAL;
    return state_write(n, p, p->beh->handoff_out, out, len);
}

int herd_state_delta_out(herd_node_t *n, herd_pid_t pid, uint8_t **out, size_t *len)
{
    herd_proc_t *p = proc_lookup(n, pid);
    if (p == NULL)
        return HERD_ENOPROC;
    if (p->beh->delta_out == NULL || p->beh->delta_apply == NULL || (p->flags & PROC_RUNNING))
        return HERD_EINVAL;
    return state_write(n, p, p->beh->delta_out, out, len);
}

int herd_state_merge(herd_node_t *n, herd_pid_t pid, const uint8_t *state, size_t len)
{
    herd_proc_t *p = node_is_local(n, pid) ? proc_lookup(n, pid) : NULL;
    if (p == NULL || (p->flags & PROC_EXITING))
        return HERD_ENOPROC;
    if (p->beh->resolve_conflict == NULL || (p->flags & PROC_RUNNING))
        return HERD_EINVAL;
    if (p->flags & PROC_FROZEN)
        return HERD_EBUSY;
    herd_proc_t *saved = n->current;
    n->current = p;
    n->depth++;
    int rc = p->beh->resolve_conflict(p, p->state, state, len);
    n->depth--;
    n->current = saved;
    return rc;
}

int herd_merge_into(herd_node_t *n, herd_pid_t winner, const uint8_t *state, size_t len)
{
    /* forced: a merge must not be lost to a full mailbox */
    return proc_deliver(n, winner, HERD_MSG_MERGE, node_outside_pid(n), 0, 0, state, len, 1);
}

int proc_run(herd_proc_t *p, int budget)
{
    herd_node_t *n = p->node;
    if (p->flags & PROC_DEAD) {
        free(p);
        return 0;
    }
    int handled = 0;
    herd_proc_t *saved = n->current;
    n->current = p;
    n->depth++;
    p->flags |= PROC_RUNNING;
    while (p->head && handled < budget && !(p->flags & (PROC_EXITING | PROC_FROZEN))) {
        mmsg_t *m = proc_pop(p);
        int rc = proc_dispatch(p, m);
        free(m);
        handled++;
        if (rc < 0)
            proc_mark_exit(p, rc);
    }
    p->flags &= (uint8_t)~PROC_RUNNING;
    n->depth--;
    n->current = saved;
    gate_after_run(p, handled);
    if (p->flags & PROC_EXITING)
        proc_do_exit(p, 1);
    else if (p->head && !(p->flags & PROC_FROZEN))
        node_schedule(n, p);
    return handled;
}

/* ---- spawn -------------------------------------------------------------------- */

static int proc_init_state(herd_proc_t *p, const herd_spawn_opts_t *o)
{
    const herd_behaviour_t *b = p->beh;
    herd_node_t *n = p->node;
    herd_proc_t *saved = n->current;
    int rc = 0;
    n->current = p;
    n->depth++;
    if (o->handoff_state)
        rc = b->handoff_in ? b->handoff_in(p, o->handoff_state, o->handoff_len, &p->state)
                           : HERD_EINVAL;
    else if (b->init)
        rc = b->init(p, o->arg, o->arg_len, &p->state);
    n->depth--;
    n->current = saved;
    return rc;
}

/* The process of a spawn, in the table, its init not run yet. */
static int spawn_make(herd_node_t *n, const herd_spawn_opts_t *o, herd_proc_t **out)
{
    if (o == NULL || o->behaviour == NULL || (o->arg_len && o->arg == NULL) || n->stopping)
        return HERD_EINVAL;
    if (!herd_pid_is_none(o->link) && proc_lookup(n, o->link) == NULL)
        return HERD_ENOPROC;
    herd_proc_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return HERD_ENOMEM;
    p->serial = ++n->next_serial;
    p->node = n;
    p->beh = o->behaviour;
    p->mbox_limit = o->mailbox_limit ? o->mailbox_limit : n->mailbox_limit;
    p->flags = o->trap_exit ? PROC_TRAP : 0;
    if (u64map_put(&n->procs, p->serial, p) != 0) {
        free(p);
        return HERD_ENOMEM;
    }
    *out = p;
    return 0;
}

/* Run p's init and make its link; on failure p exits (terminate only if
 * init succeeded) and the error is returned. */
static int spawn_init(herd_node_t *n, herd_proc_t *p, const herd_spawn_opts_t *o)
{
    herd_proc_t *linked = NULL;
    int rc = proc_init_state(p, o);
    int inited = rc == 0;
    /* init may have linked the target away or killed it: look it up again */
    if (rc == 0 && !herd_pid_is_none(o->link) && (linked = proc_lookup(n, o->link)) == NULL)
        rc = HERD_ENOPROC;
    if (rc == 0 && linked && (link_add(p, o->link) || link_add(linked, herd_self(p))))
        rc = HERD_ENOMEM;
    if (rc < 0) {
        p->flags |= PROC_EXITING;
        p->exit_reason = rc;
        proc_do_exit(p, inited);
    }
    return rc < 0 ? rc : 0;
}

int herd_spawn(herd_node_t *n, const herd_spawn_opts_t *o, herd_pid_t *out)
{
    herd_proc_t *p;
    int rc = spawn_make(n, o, &p);
    if (rc == 0)
        rc = spawn_init(n, p, o);
    if (rc == 0 && out)
        *out = herd_self(p);
    return rc;
}

int herd_spawn_prepare(herd_node_t *n, const herd_spawn_opts_t *o, herd_pid_t *out)
{
    herd_proc_t *p;
    int rc = spawn_make(n, o, &p);
    if (rc)
        return rc;
    p->flags |= PROC_PREPARED; /* node_schedule passes it over */
    *out = herd_self(p);
    return 0;
}

/* The prepared process `pid`, exiting or not; NULL when there is none. */
static herd_proc_t *prepared(const herd_node_t *n, herd_pid_t pid)
{
    if (!node_is_local(n, pid) || pid.serial == 0)
        return NULL;
    herd_proc_t *p = u64map_get(&n->procs, pid.serial);
    return p && (p->flags & PROC_PREPARED) ? p : NULL;
}

int herd_spawn_start(herd_node_t *n, herd_pid_t pid, const herd_spawn_opts_t *o)
{
    herd_proc_t *p = prepared(n, pid);
    if (p == NULL)
        return HERD_ENOPROC;
    if (o == NULL || o->behaviour != p->beh || (o->arg_len && o->arg == NULL))
        return HERD_EINVAL;
    p->flags &= (uint8_t)~PROC_PREPARED;
    if (p->flags & PROC_EXITING) { /* stopped before it started: init never runs */
        proc_do_exit(p, 0);
        return HERD_ENOPROC;
    }
    int rc = spawn_init(n, p, o);
    if (rc == 0 && p->head && !(p->flags & PROC_FROZEN))
        node_schedule(n, p); /* what reached it before it started */
    return rc;
}

int herd_spawn_discard(herd_node_t *n, herd_pid_t pid, int reason)
{
    herd_proc_t *p = prepared(n, pid);
    if (p == NULL)
        return HERD_ENOPROC;
    p->flags &= (uint8_t)~PROC_PREPARED;
    if (p->ext == NULL && p->head == NULL) { /* nothing knows of it: it never was */
        u64map_del(&n->procs, p->serial);
        proc_release(p);
        return 0;
    }
    if (!(p->flags & PROC_EXITING))
        p->exit_reason = reason;
    p->flags |= PROC_EXITING;
    proc_do_exit(p, 0); /* as after a failed init: those that know of it are told */
    return 1;
}

/* ---- monitors and links ------------------------------------------------------ */

int herd_monitor(herd_proc_t *self, herd_pid_t target, uint64_t *ref)
{
    herd_node_t *n = self->node;
    uint64_t r = node_new_ref(n);
    if (!node_is_local(n, target) && target.node != n->id) {
        proc_ext_t *sx = proc_ext(self);
        if (sx == NULL || watch_add(&sx->watching, r, target, 0))
            return HERD_ENOMEM;
        *ref = r;
        int rc = n->net->monitor(self, target, r);
        if (rc == 0)
            return 0;
        /* unreachable node or dead incarnation: DOWN at once */
        watch_remove(&sx->watching, r, NULL);
        return proc_deliver(n, herd_self(self), HERD_MSG_DOWN, target, r,
                            rc == HERD_ENOPROC ? HERD_REASON_NOPROC
                                               : HERD_REASON_NOCONNECTION,
                            NULL, 0, 1);
    }
    herd_proc_t *t = proc_lookup(n, target);
    if (t == NULL) {
        *ref = r;
        return proc_deliver(n, herd_self(self), HERD_MSG_DOWN, target, r,
                            HERD_REASON_NOPROC, NULL, 0, 1);
    }
    proc_ext_t *tx = proc_ext(t), *sx = proc_ext(self);
    if (tx == NULL || sx == NULL || watch_add(&sx->watching, r, target, 0))
        return HERD_ENOMEM;
    if (watch_add(&tx->watchers, r, herd_self(self), 0)) {
        watch_remove(&sx->watching, r, NULL);
        return HERD_ENOMEM;
    }
    *ref = r;
    return 0;
}

int herd_demonitor(herd_proc_t *self, uint64_t ref)
{
    proc_watch_t w;
    if (self->ext == NULL || watch_remove(&self->ext->watching, ref, &w) != 0)
        return HERD_ENOENT;
    if (!node_is_local(self->node, w.pid)) {
        self->node->net->demonitor(self->node, herd_self(self), w.pid, ref);
        return 0;
    }
    herd_proc_t *t = proc_lookup(self->node, w.pid);
    if (t && t->ext)
        watch_remove(&t->ext->watchers, ref, NULL);
    return 0;
}

int herd_link(herd_proc_t *self, herd_pid_t other)
{
    if (!node_is_local(self->node, other) && other.node != self->node->id)
        return HERD_EINVAL; /* links are local in this version; monitor instead */
    herd_proc_t *t = proc_lookup(self->node, other);
    if (t == NULL)
        return HERD_ENOPROC;
    if (t == self)
        return 0;
    if (link_add(self, other) || link_add(t, herd_self(self)))
        return HERD_ENOMEM;
    return 0;
}

int herd_unlink(herd_proc_t *self, herd_pid_t other)
{
    link_remove(self, other);
    herd_proc_t *t = proc_lookup(self->node, other);
    if (t)
        link_remove(t, herd_self(self));
    return 0;
}

/* ---- calls ------------------------------------------------------------------ */

/* Register a call `ref` from `caller` (serial, 0 = outside) to `callee`, whose
 * CALL message is already queued. */
static int proc_track_call(herd_node_t *n, uint64_t ref, uint64_t caller, herd_pid_t to,
                           uint32_t timeout_ms, call_waiter_t *waiter)
{
    /* a remote callee is watched by its own node (remote.c); a moved one
     * (freeze.c's redirect) is watched where the call went */
    herd_proc_t *callee = proc_lookup(n, to);
    if (callee == NULL && node_is_local(n, to) && n->redirects.count) {
        herd_pid_t moved = node_redirect_of(n, to.serial);
        if (!herd_pid_is_none(moved)) {
            to = moved;
            callee = proc_lookup(n, to);
        }
    }
    pending_call_t *pc = calloc(1, sizeof(*pc));
    proc_ext_t *cx = callee ? proc_ext(callee) : NULL;
    if (pc == NULL || (callee && cx == NULL))
        goto fail_alloc;
    pc->ref = ref;
    pc->caller = caller;
    pc->callee = to;
    pc->waiter = waiter;
    herd_pid_t caller_pid = {n->id, n->incarnation, caller};
    if (cx && watch_add(&cx->watchers, ref, caller_pid, 1))
        goto fail_alloc;
    if (u64map_put(&n->calls, ref, pc))
        goto fail_watch;
    if (timer_arm(n, TIMER_CALL, caller_pid, timeout_ms, 0, NULL, 0, ref, &pc->timer))
        goto fail_map;
    return 0;
fail_map:
    u64map_del(&n->calls, ref);
fail_watch:
    if (cx)
        watch_remove(&cx->watchers, ref, NULL);
fail_alloc:
    free(pc);
    return HERD_ENOMEM;
}

int herd_call(herd_proc_t *self, herd_pid_t to, const void *data, size_t len,
              uint32_t timeout_ms, uint64_t *ref)
{
    herd_node_t *n = self->node;
    uint64_t r = node_new_ref(n);
    int rc = proc_deliver_call(n, to, herd_self(self), r, proc_call_deadline(n, timeout_ms),
                               data, len, 0);
    if (rc == 0)
        rc = proc_track_call(n, r, self->serial, to, timeout_ms, NULL);
    if (rc == 0)
        *ref = r;
    return rc;
}

int proc_node_call_start(herd_node_t *n, herd_pid_t to, const void *data, size_t len,
                         uint32_t timeout_ms, call_waiter_t *w, uint64_t *ref)
{
    uint64_t r = node_new_ref(n);
    int rc = proc_deliver_call(n, to, node_outside_pid(n), r, proc_call_deadline(n, timeout_ms),
                               data, len, 0);
    if (rc == 0)
        rc = proc_track_call(n, r, 0, to, timeout_ms, w);
    if (rc == 0 && ref)
        *ref = r;
    return rc;
}

int herd_node_call(herd_node_t *n, herd_pid_t to, const void *data, size_t len,
                   uint32_t timeout_ms, herd_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    if (herd_node_in_loop(n))
        return HERD_EDEADLK;
    call_waiter_t w = {0};
    uint64_t r;
    int rc = proc_node_call_start(n, to, data, len, timeout_ms, &w, &r);
    if (rc)
        return rc;
    if (node_wait(n, &w) != 0)
        proc_complete_call(n, r, HERD_ETIMEDOUT, NULL, 0, REPLY_BY_RUNTIME);
    *out = w.reply;
    return w.runtime_error;
}

void herd_reply_free(herd_reply_t *r)
{
    free(r->data);
    memset(r, 0, sizeof(*r));
}

int proc_complete_call(herd_node_t *n, uint64_t ref, int status, const void *data,
                       size_t len, unsigned how)
{
    pending_call_t *pc = u64map_del(&n->calls, ref);
    if (pc == NULL)
        return HERD_ENOPROC;
    timer_cancel(n, pc->timer);
    herd_proc_t *callee = proc_lookup(n, pc->callee);
    if (callee && callee->ext)
        watch_remove(&callee->ext->watchers, ref, NULL);
    int rc = 0;
    if (pc->waiter) {
        call_waiter_t *w = pc->waiter;
        w->reply.status = status;
        w->reply.copies = (uint8_t)REPLY_COPIES(how);
        w->runtime_error = (how & REPLY_BY_RUNTIME) ? status : 0;
        if (len && (w->reply.data = malloc(len)) != NULL) {
            memcpy(w->reply.data, data, len);
            w->reply.len = len;
        } else if (len) {
            w->reply.status = w->runtime_error = HERD_ENOMEM; /* the answer is lost */
        }
        w->done = 1;
        if (w->cb)
            node_call_done(n, w);
    } else {
        herd_pid_t caller = {n->id, n->incarnation, pc->caller};
        rc = deliver(n, caller, HERD_MSG_REPLY, pc->callee, ref, status, 0, data, len,
                     DELIVER_FORCE | (int)(how & REPLY_COPIES_MASK));
    }
    free(pc);
    return rc;
}

static int local_reply(herd_node_t *n, herd_from_t from, int status, const void *data,
                       size_t len, unsigned copies)
{
    pending_call_t *pc = u64map_get(&n->calls, from.ref);
    if (pc == NULL)
        return HERD_ENOPROC; /* ended: timed out, its caller exited, answered */
    if (pc->caller != from.pid.serial)
        return HERD_EINVAL;
    return proc_complete_call(n, from.ref, status, data, len,
                              (copies << REPLY_COPIES_SHIFT) & REPLY_COPIES_MASK);
}

/* A reply nobody waits for any more (HERD_ENOPROC: the call ended, or its
 * caller, or the caller's node start, is gone; HERD_ENOTCONN: the caller's
 * node is down or left, and ends the call itself) is dropped and counted:
 * the callee did nothing wrong, as when a caller on another node gave up. */
int herd_reply(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len)
{
    if (len > n->max_message)
        return HERD_ETOOBIG;
    int held = gate_hold(n, from, status, data, len);
    return held < 0 ? held : held ? 0 : proc_reply_now(n, from, status, data, len, 0);
}

int herd_reply_error(herd_node_t *n, herd_from_t from, int code, const void *data, size_t len)
{
    int status = herd_app_error(code);
    return status == HERD_EINVAL ? HERD_EINVAL : herd_reply(n, from, status, data, len);
}

int proc_reply_now(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len,
                   unsigned copies)
{
    int rc = node_is_local(n, from.pid) ? local_reply(n, from, status, data, len, copies)
                                        : n->net->reply(n, from, status, data, len, copies);
    if (rc != HERD_ENOPROC && rc != HERD_ENOTCONN)
        return rc;
    n->stats.late_replies++;
    return 0;
}

/* ---- node shutdown ----------------------------------------------------------- */

void proc_free_all(herd_node_t *n)
{
    /* the dead waiting in the run queue */
    for (herd_proc_t *p = n->runq_head, *next; p; p = next) {
        next = p->run_next;
        p->flags &= (uint8_t)~PROC_QUEUED;
        if (p->flags & PROC_DEAD)
            free(p);
    }
    n->runq_head = n->runq_tail = NULL;
    /* Take every live process out of the table first: terminate callbacks then
     * see a node where nothing is alive and can neither send nor signal. */
    size_t count = n->procs.count, i = 0, cursor = 0;
    herd_proc_t **all = malloc((count + 1) * sizeof(*all));
    for (u64map_slot_t *s; all && (s = u64map_next(&n->procs, &cursor)) != NULL;)
        all[i++] = s->value;
    u64map_fini(&n->procs);
    for (size_t k = 0; k < i; k++) {
        herd_proc_t *p = all[k];
        int reason = (p->flags & PROC_EXITING) ? p->exit_reason : HERD_REASON_SHUTDOWN;
        if (p->beh->terminate && !(p->flags & PROC_PREPARED)) { /* its init never ran */
            n->current = p;
            n->depth++;
            p->beh->terminate(p, p->state, reason);
            n->depth--;
            n->current = NULL;
        }
        proc_free_mailbox(p);
        proc_ext_free(n, p->ext);
        free(p);
    }
    free(all);
}
