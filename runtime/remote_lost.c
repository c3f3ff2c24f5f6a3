/*
 * remote_lost.c - what becomes of the messages between nodes when a member
 * goes away: declared down (it may only be cut off, and come back with the
 * same start), left, or restarted.
 *
 * How it works. A message queued for a member stays in its channel until
 * the member acknowledges it, and the channel outlives a partition (both
 * ends' sequence numbers must still agree when the member comes back). Left
 * alone, a call whose caller was told "node down" would be resent after the
 * heal and applied: a failure that took effect. So when a member is lost:
 *
 * 1. The requests still queued for it are withdrawn: every call (a moved
 *    process's forwarded ones too), direct casts (to one process or to
 *    many) and sends, and monitor requests are rewritten in place as
 *    REMOTE_WITHDRAWN messages. They keep
 *    their sequence numbers, so the stream stays whole, and whatever is sent
 *    after the heal delivers nothing. Kept: replies, DOWN notices,
 *    demonitors, merges, a moved process's forwarded casts and sends (they
 *    exist nowhere else), and the layers' streams: nobody gave up on them,
 *    and their late arrival does what they were sent for. While the member
 *    is down, remote.c refuses the kinds withdrawn here (HERD_ENOTCONN).
 * 2. Each call of this node waiting on that member ends: with HERD_ENOTCONN
 *    ("not applied") when its request was withdrawn before it ever left in
 *    a frame, since no copy of it exists anywhere then; with
 *    HERD_EUNCERTAIN ("outcome unknown") when it had left: it may have been
 *    applied, or a copy may still be on its way (the receiver drops one that
 *    comes after the caller's deadline: remote.c). A forwarded call withdrawn
 *    here (its caller is on another node) gets the same answer at its
 *    caller's node.
 * 3. Monitors of its processes fire DOWN with HERD_REASON_NOCONNECTION.
 * 4. A member declared down has its transport link closed: frames the
 *    transport still holds for it are dropped rather than delivered at the
 *    heal (the next frame to it opens a new link).
 * 5. Its stream is dropped when it left or restarted.
 * Everything withdrawn or ended is counted (ringctl stats) and logged at
 * most once a second (herd_log_limited).
 */
#include "remote_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A forwarded call withdrawn from a lost member's stream: its caller, on
 * another node, is told. */
typedef struct lost_call {
    herd_pid_t caller, callee;
    uint64_t ref;
    int sent; /* its request left in a frame at least once */
} lost_call_t;

/* What withdrawing found. */
typedef struct lost {
    u64map_t unsent;   /* ref -> (void *)1: calls of this node that never left */
    lost_call_t *fwd;  /* forwarded calls withdrawn */
    size_t nfwd, cap;
    size_t withdrawn;  /* requests withdrawn */
    size_t not_applied, uncertain; /* calls ended (here and forwarded) */
} lost_t;

/* Whether a message queued for a lost member is a request to withdraw. */
static int lost_withdraws(const remote_msg_t *m)
{
    if (m->kind == HERD_MSG_CALL || m->kind == REMOTE_MONITOR)
        return 1;
    return (m->kind == HERD_MSG_CAST || m->kind == HERD_MSG_INFO ||
            m->kind == REMOTE_CAST_MANY) &&
           !(m->flags & REMOTE_FORWARDED);
}

/* Book a withdrawn call: this node's (its pending call ends below), or a
 * forwarded one (its caller is told). */
static void lost_note_call(herd_node_t *n, lost_t *l, const remote_msg_t *m,
                           herd_pid_t callee, int sent)
{
    if (node_is_local(n, m->from)) {
        if (!sent && u64map_put(&l->unsent, m->ref, (void *)1) != 0)
            herd_log(HERD_LOG_WARN, "remote", "out of memory: a withdrawn call is "
                     "reported with its outcome unknown");
        return;
    }
    if (l->nfwd == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        lost_call_t *more = realloc(l->fwd, cap * sizeof(*more));
        if (more == NULL)
            return; /* its caller's timeout answers */
        l->fwd = more;
        l->cap = cap;
    }
    l->fwd[l->nfwd++] = (lost_call_t){m->from, callee, m->ref, sent};
}

/* Rewrite queued message `q` as REMOTE_WITHDRAWN: no data, from this node. */
static void lost_rewrite(herd_node_t *n, channel_t *ch, channel_msg_t *q)
{
    remote_msg_t t = {.kind = REMOTE_WITHDRAWN, .from = {n->id, n->incarnation, 0}};
    wire_writer_t w;
    wire_writer_init(&w);
    remote_encode(&w, &t);
    if (w.err || channel_rewrite(ch, q, w.buf, w.len) != 0)
        herd_log(HERD_LOG_ERROR, "remote", "a request could not be withdrawn");
    wire_writer_fini(&w);
}

/* Step 1: withdraw the requests queued for member `id`. */
static void lost_withdraw(herd_cluster_t *c, uint64_t id, lost_t *l)
{
    herd_node_t *n = c->node;
    cluster_peer_t *p = u64map_get(&c->peers, id);
    if (p == NULL)
        return;
    for (channel_msg_t *q = p->ch.head; q; q = q->next) {
        remote_msg_t m;
        if (remote_decode(q->data, q->len, &m) != 0 || !lost_withdraws(&m))
            continue;
        int sent = channel_msg_sent(&p->ch, q);
        if (m.kind == HERD_MSG_CALL) {
            herd_pid_t callee = {id, p->ch.peer_inc, m.to.serial};
            lost_note_call(n, l, &m, callee, sent);
        }
        lost_rewrite(n, &p->ch, q); /* m's pointers die here */
        l->withdrawn++;
    }
}

/* Step 2: this node's calls waiting on member `id` end, "not applied" only
 * when their request was withdrawn before it left. The refs are collected
 * first: ending a call changes the map walked. */
static void lost_end_calls(herd_cluster_t *c, uint64_t id, lost_t *l)
{
    herd_node_t *n = c->node;
    uint64_t *refs = n->calls.count ? malloc(n->calls.count * sizeof(*refs)) : NULL;
    size_t count = 0, cursor = 0;
    for (u64map_slot_t *s; refs && (s = u64map_next(&n->calls, &cursor)) != NULL;)
        if (((pending_call_t *)s->value)->callee.node == id)
            refs[count++] = s->key;
    for (size_t i = 0; i < count; i++) {
        int unsent = u64map_get(&l->unsent, refs[i]) != NULL;
        if (proc_complete_call(n, refs[i], unsent ? HERD_ENOTCONN : HERD_EUNCERTAIN, NULL,
                               0, REPLY_BY_RUNTIME) == 0) {
            l->not_applied += unsent;
            l->uncertain += !unsent;
        }
    }
    free(refs); /* out of memory: every call is settled by its own timeout */
}

/* Step 2, forwarded calls: their callers' nodes are told. A caller that
 * cannot be reached either is settled by its own node. */
static void lost_answer_forwarded(herd_cluster_t *c, lost_t *l)
{
    for (size_t i = 0; i < l->nfwd; i++) {
        const lost_call_t *f = &l->fwd[i];
        int status = f->sent ? HERD_EUNCERTAIN : HERD_ENOTCONN;
        if (remote_send(c->node, f->caller, HERD_MSG_REPLY, f->callee, f->ref, status, NULL,
                        0, REMOTE_BY_RUNTIME | REMOTE_FORWARDED) != 0)
            continue;
        l->not_applied += !f->sent;
        l->uncertain += f->sent;
    }
}

/* Step 3: monitors of member `id`'s processes fire. The refs are collected
 * first: firing them changes the map walked. */
static void lost_fire_monitors(herd_cluster_t *c, uint64_t id)
{
    herd_node_t *n = c->node;
    size_t cap = c->remote_watches.count, count = 0, cursor = 0;
    uint64_t *refs = cap ? malloc(cap * sizeof(*refs)) : NULL;
    for (u64map_slot_t *s; refs && (s = u64map_next(&c->remote_watches, &cursor)) != NULL;)
        if (((remote_watch_t *)s->value)->target.node == id)
            refs[count++] = s->key;
    for (size_t i = 0; i < count; i++) {
        remote_watch_t *w = u64map_del(&c->remote_watches, refs[i]);
        herd_pid_t watcher = {n->id, n->incarnation, w->watcher};
        herd_proc_t *p = proc_lookup(n, watcher);
        if (p)
            proc_forget_monitor(p, refs[i]);
        proc_deliver(n, watcher, HERD_MSG_DOWN, w->target, refs[i], HERD_REASON_NOCONNECTION,
                     NULL, 0, 1);
        free(w);
    }
    free(refs); /* out of memory: those monitors fire when the member is forgotten */
}

static void lost_log(herd_cluster_t *c, const mship_effect_t *e, const lost_t *l)
{
    if (l->withdrawn == 0 && l->not_applied == 0 && l->uncertain == 0)
        return;
    c->withdrawn += l->withdrawn;
    c->calls_not_applied += l->not_applied;
    c->calls_uncertain += l->uncertain;
    herd_log_limited(&c->lost_log, herd_node_now(c->node), HERD_LOG_WARN, "remote",
                     "%s is %s: %zu request(s) queued for it withdrawn, never delivered; "
                     "%zu call(s) end not applied (ENOTCONN), %zu with their outcome "
                     "unknown (EUNCERTAIN); %llu, %llu and %llu so far",
                     e->name, mship_state_name(e->new_state), l->withdrawn, l->not_applied,
                     l->uncertain, (unsigned long long)c->withdrawn,
                     (unsigned long long)c->calls_not_applied,
                     (unsigned long long)c->calls_uncertain);
}

/* Steps 1-4 for member `id`, which was reachable until now. */
static void lost_member(herd_cluster_t *c, uint64_t id, const mship_effect_t *e)
{
    lost_t l = {0};
    u64map_init(&l.unsent);
    lost_withdraw(c, id, &l);
    lost_end_calls(c, id, &l);
    lost_answer_forwarded(c, &l);
    lost_fire_monitors(c, id);
    lost_log(c, e, &l);
    u64map_fini(&l.unsent);
    free(l.fwd);
    if (e->new_state == MEMBER_DOWN)
        c->transport.ops->forget(c->transport.impl, e->address);
}

void remote_on_member(herd_cluster_t *c, const mship_effect_t *e)
{
    int lost = e->new_state == MEMBER_DOWN || e->new_state == MEMBER_LEFT ||
               e->new_state == MEMBER_ABSENT;
    int was_reachable = e->old_state != MEMBER_DOWN && e->old_state != MEMBER_LEFT;
    uint64_t id = herd_node_id_of(e->name);
    if (lost && was_reachable)
        lost_member(c, id, e);
    cluster_peer_t *p = u64map_get(&c->peers, id);
    /* Gone for good (left, or restarted: a new start has a new stream): drop
     * its stream. A member only forgotten after a long silence may come back
     * with the same start from a partition, and both ends' sequence numbers
     * must still agree then: its stream stays (its queue is bounded). */
    if (p && (e->new_state == MEMBER_LEFT ||
              (e->new_state == MEMBER_ABSENT && e->gone != MSHIP_GONE_FORGOTTEN))) {
        u64map_del(&c->peers, id);
        channel_fini(&p->ch);
        free(p);
    }
}
