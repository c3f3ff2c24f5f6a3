/*
 * gate.c - holding a process's replies until the state they reflect is
 * held elsewhere (herd_runtime.h, "holding replies").
 *
 * A gated process has a proc_gate_t in its proc_ext: the last version
 * marked and its held replies in the order it sent them, each tagged with
 * the version the state that answered it gets at the next mark. Release
 * sends from the head while the tag is covered, so replies keep their
 * order.
 */
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "runtime_layers.h"

/* A held reply, or (done set) a merge's confirmation held the same way. */
typedef struct held_reply {
    struct held_reply *next;
    herd_from_t from;
    int status;
    uint64_t version;
    herd_merge_done_fn done; /* a merge's: told instead of a reply sent */
    void *done_data;
    size_t len;
    uint8_t data[];
} held_reply_t;

/* A merge sent to the gated process, not handled yet (its message's ref). */
typedef struct pending_merge {
    struct pending_merge *next;
    uint64_t ref;
    herd_merge_done_fn done;
    void *data;
} pending_merge_t;

struct proc_gate {
    herd_gate_dirty_fn dirty;
    void *data;
    uint64_t version; /* the last version marked */
    int refuse;       /* calls answered with it, not run (herd_gate_refuse_calls) */
    held_reply_t *head, *tail;
    size_t held;
    pending_merge_t *pending;
    uint64_t merge_refs;
};

static proc_gate_t *gate_of(const herd_node_t *n, herd_pid_t pid)
{
    herd_proc_t *p = node_is_local(n, pid) ? proc_lookup(n, pid) : NULL;
    return p && p->ext ? p->ext->gate : NULL;
}

int herd_gate_open(herd_node_t *n, herd_pid_t pid, uint64_t version, herd_gate_dirty_fn dirty,
                   void *data)
{
    herd_proc_t *p = node_is_local(n, pid) ? proc_lookup(n, pid) : NULL;
    if (p == NULL)
        return HERD_ENOPROC;
    proc_ext_t *x = proc_ext_of(p);
    if (x == NULL)
        return HERD_ENOMEM;
    if (x->gate == NULL) {
        x->gate = calloc(1, sizeof(*x->gate));
        if (x->gate == NULL)
            return HERD_ENOMEM;
        x->gate->version = version;
    }
    x->gate->dirty = dirty;
    x->gate->data = data;
    return 0;
}

uint64_t herd_gate_mark(herd_node_t *n, herd_pid_t pid)
{
    return herd_gate_mark_after(n, pid, 0);
}

uint64_t herd_gate_mark_after(herd_node_t *n, herd_pid_t pid, uint64_t at_least)
{
    proc_gate_t *g = gate_of(n, pid);
    if (g == NULL)
        return 0;
    g->version = g->version + 1 > at_least ? g->version + 1 : at_least;
    return g->version;
}

int herd_gate_release(herd_node_t *n, herd_pid_t pid, uint64_t version, unsigned copies)
{
    proc_gate_t *g = gate_of(n, pid);
    if (g == NULL)
        return HERD_ENOPROC;
    int sent = 0;
    while (g->head && g->head->version <= version) {
        held_reply_t *h = g->head;
        g->head = h->next;
        if (g->head == NULL)
            g->tail = NULL;
        g->held--;
        if (h->done) /* a merge: its state is held as the replies' */
            h->done(h->done_data, 0);
        else /* the caller may be gone meanwhile: proc_reply_now counts that */
            proc_reply_now(n, h->from, h->status, h->data, h->len, copies > 7 ? 7 : copies);
        free(h);
        sent++;
    }
    return sent;
}

size_t herd_gate_held(const herd_node_t *n, herd_pid_t pid)
{
    proc_gate_t *g = gate_of(n, pid);
    return g ? g->held : 0;
}

int herd_gate_refuse_calls(herd_node_t *n, herd_pid_t pid, int status)
{
    proc_gate_t *g = gate_of(n, pid);
    if (g == NULL)
        return HERD_ENOPROC;
    g->refuse = status;
    return 0;
}

int gate_refuses(const herd_proc_t *p)
{
    return p->ext && p->ext->gate ? p->ext->gate->refuse : 0;
}

/* Append h to g's held list, tagged with the next version. */
static void held_append(proc_gate_t *g, held_reply_t *h)
{
    h->version = g->version + 1;
    if (g->tail)
        g->tail->next = h;
    else
        g->head = h;
    g->tail = h;
    g->held++;
}

int herd_merge_into_local(herd_node_t *n, herd_pid_t winner, const uint8_t *state, size_t len,
                          herd_merge_done_fn done, void *data)
{
    herd_proc_t *p = node_is_local(n, winner) ? proc_lookup(n, winner) : NULL;
    if (p == NULL)
        return HERD_ENOPROC;
    proc_gate_t *g = p->ext ? p->ext->gate : NULL;
    if (g == NULL) { /* nothing waits: merged as far as anyone can tell */
        int rc = herd_merge_into(n, winner, state, len);
        if (rc == 0)
            done(data, 0);
        return rc;
    }
    pending_merge_t *m = malloc(sizeof(*m));
    if (m == NULL)
        return HERD_ENOMEM;
    *m = (pending_merge_t){.ref = ++g->merge_refs, .done = done, .data = data};
    /* forced: a merge must not be lost to a full mailbox */
    int rc = proc_deliver(n, winner, HERD_MSG_MERGE, node_outside_pid(n), m->ref, 0, state, len, 1);
    if (rc) {
        free(m);
        return rc;
    }
    m->next = g->pending;
    g->pending = m;
    return 0;
}

void gate_merge_handled(herd_proc_t *p, uint64_t ref)
{
    proc_gate_t *g = p->ext ? p->ext->gate : NULL;
    pending_merge_t **at = g ? &g->pending : NULL;
    while (at && *at && (*at)->ref != ref)
        at = &(*at)->next;
    if (at == NULL || *at == NULL)
        return;
    pending_merge_t *m = *at;
    *at = m->next;
    held_reply_t *h = malloc(sizeof(*h));
    if (h == NULL) { /* cannot wait for the copies: said not merged */
        m->done(m->data, HERD_ENOMEM);
        free(m);
        return;
    }
    *h = (held_reply_t){.done = m->done, .done_data = m->data};
    free(m);
    held_append(g, h);
}

int gate_hold(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len)
{
    herd_proc_t *p = n->current;
    if (p == NULL || !(p->flags & PROC_RUNNING) || p->ext == NULL || p->ext->gate == NULL)
        return 0;
    proc_gate_t *g = p->ext->gate;
    /* herd_reply's HERD_EINVAL (a call of another caller) now, as ungated:
     * held, it would be lost without an error */
    if (node_is_local(n, from.pid)) {
        const pending_call_t *pc = u64map_get(&n->calls, from.ref);
        if (pc && pc->caller != from.pid.serial)
            return HERD_EINVAL;
    }
    held_reply_t *h = malloc(sizeof(*h) + len);
    if (h == NULL)
        return HERD_ENOMEM;
    *h = (held_reply_t){.from = from, .status = status, .len = len};
    if (len)
        memcpy(h->data, data, len);
    held_append(g, h);
    return 1;
}

void gate_after_run(herd_proc_t *p, int handled)
{
    if (handled > 0 && p->ext && p->ext->gate && p->ext->gate->dirty &&
        !(p->flags & PROC_EXITING))
        p->ext->gate->dirty(p->ext->gate->data, herd_self(p));
}

void gate_exit(herd_node_t *n, herd_proc_t *p)
{
    proc_gate_t *g = p->ext ? p->ext->gate : NULL;
    if (g == NULL)
        return;
    held_reply_t **at = &g->head, *last = NULL;
    while (*at) {
        held_reply_t *h = *at;
        if (h->done) { /* a merge: gate_free tells it */
            last = h;
            at = &h->next;
            continue;
        }
        *at = h->next;
        g->held--;
        n->stats.gate_dropped++;
        proc_callee_gone(n, h->from, HERD_EUNCERTAIN);
        free(h);
    }
    g->tail = last;
}

void gate_free(herd_node_t *n, proc_gate_t *g)
{
    if (g == NULL)
        return;
    for (held_reply_t *h = g->head, *next; h; h = next) {
        next = h->next;
        if (h->done)
            h->done(h->done_data, HERD_ENOPROC); /* its state went with the process */
        else /* a process freed without its exit (the node's shutdown) */
            n->stats.gate_dropped++;
        free(h);
    }
    for (pending_merge_t *m = g->pending, *next; m; m = next) {
        next = m->next;
        m->done(m->data, HERD_ENOPROC);
        free(m);
    }
    free(g);
}
