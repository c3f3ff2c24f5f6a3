/*
 * handoff.c - moving a child to its new owner with its state, losing no
 * message (herd_dsup.h; ../shared/notes/handoff.md).
 *
 * Messages on the handoff stream (app 2), each u8 kind, u64 move id, str name:
 *   1 offer   + bytes spec, u8 has_state, bytes state, u64 first-registered time, u8 gen,
 *             u64 x 3 the spec's write (herd_spec_ref_t: node, incarnation, counter):
 *             the write of those spec bytes, which the new owner takes in when it
 *             never saw it (herd_spec_relay),
 *             u64 parted: 0, or the size of a state sent as parts ahead of it (the
 *             state field then empty), u64 version: the state's replication
 *             version (replicas.c; 0 when not replicated), u64 writer: the
 *             run that wrote it (replica_store.h; 0 when not replicated)
 *   2 accept  + u64 serial of the new (frozen) copy, u8 copies of its state held
 *             on the new owner's side (replicas.c; 1 when not replicated)
 *   3 reject  + u32 error code
 *   4 abort
 *   5 commit
 *   6 drain   (id 0, empty name) + u8 on
 *   7 part    + u64 offset, u64 total, bytes chunk (bigstate.c)
 *   8 ready   (id 0, empty name) + u8 flags (bit 0: ready), u32 n, n x (u64 member
 *             id, u64 incarnation): the member starts the sender synced with
 *             (readiness.c; n <= READY_MAX_MEMBERS)
 * The old node O coordinates. The stream is the same reliable, ordered
 * channel as process messages, so the messages O forwards to the new copy
 * arrive before O's commit.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "log.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "wire.h"

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

/* Send one protocol message; a refusal is counted and logged, and the
 * caller decides (a commit is retried; the rest are settled by timeouts). */
static int send_simple(dsup_t *d, uint64_t to, uint8_t kind, uint64_t id, const char *name,
                       uint64_t extra, int with_extra)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, kind);
    wire_put_u64(&w, id);
    wire_put_str(&w, name);
    if (with_extra)
        wire_put_u64(&w, extra);
    size_t len;
    uint8_t *buf = wire_writer_take(&w, &len);
    int rc = buf ? herd_cluster_send_app(d->node, to, HANDOFF_APP, buf, len) : HERD_ENOMEM;
    free(buf);
    if (rc) {
        d->stats.send_failed++;
        herd_log(HERD_LOG_WARN, "handoff", "'%s': message %u to %016llx not sent: %s", name,
                 kind, (unsigned long long)to, herd_strerror(rc));
    }
    return rc;
}

static void member_name(dsup_t *d, uint64_t id, char *out, size_t cap)
{
    herd_member_info_t m;
    if (herd_cluster_member(d->node, id, &m) != 0) {
        snprintf(out, cap, "%016llx", (unsigned long long)id);
        return;
    }
    size_t l = strnlen(m.name, cap - 1);
    memcpy(out, m.name, l);
    out[l] = '\0';
}

static void remember(dsup_t *d, const dchild_t *c, const char *phase, uint32_t forwarded)
{
    herd_handoff_view_t *v = &d->recent[d->recent_next];
    d->recent_next = (d->recent_next + 1) % HERD_HANDOFF_RECENT;
    if (d->recent_count < HERD_HANDOFF_RECENT)
        d->recent_count++;
    memset(v, 0, sizeof(*v));
    snprintf(v->name, sizeof(v->name), "%s", c->name);
    member_name(d, c->peer, v->target, sizeof(v->target));
    v->id = c->move_id;
    v->phase = phase;
    v->started_ms = herd_node_wall_ms(d->node) - (now_us() - c->froze_us) / 1000;
    v->freeze_to_commit_us = now_us() - c->froze_us;
    v->forwarded = forwarded;
}

static const uint32_t duration_bounds_ms[HERD_HANDOFF_DURATION_BOUNDS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};

uint32_t herd_handoff_duration_bound_ms(unsigned i)
{
    return i < HERD_HANDOFF_DURATION_BOUNDS ? duration_bounds_ms[i] : 0;
}

/* A committed move's freeze-to-commit time into the histogram. */
static void duration_record(dsup_t *d, uint64_t us)
{
    unsigned i = 0;
    while (i < HERD_HANDOFF_DURATION_BOUNDS && us > (uint64_t)duration_bounds_ms[i] * 1000)
        i++;
    d->stats.duration_buckets[i]++;
    d->stats.duration_us_sum += us;
}

/* ---- the old node ------------------------------------------------------------ */

/* The offer: spec, the stamp, and the state inline (or the size of the one
 * sent ahead in parts). */
static int send_offer(dsup_t *d, dchild_t *c, const uint8_t *state, size_t state_len,
                      uint64_t parted)
{
    herd_node_t *n = d->node;
    const herd_behaviour_t *b = dsup_behaviour(d, c->service);
    const uint8_t *spec;
    size_t spec_len;
    int rc = herd_spec_get(n, c->name, &spec, &spec_len);
    if (rc == 0) /* the write of those bytes: the new owner may not have it yet */
        rc = herd_spec_ref(n, c->name, &c->spec_ref);
    if (rc)
        return rc;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, HO_OFFER);
    wire_put_u64(&w, c->move_id);
    wire_put_str(&w, c->name);
    wire_put_bytes(&w, spec, spec_len);
    wire_put_u8(&w, b->handoff_out != NULL);
    wire_put_bytes(&w, state, state_len);
    wire_put_u64(&w, c->hlc);
    wire_put_u8(&w, c->gen);
    wire_put_u64(&w, c->spec_ref.node);
    wire_put_u64(&w, c->spec_ref.incarnation);
    wire_put_u64(&w, c->spec_ref.counter);
    wire_put_u64(&w, parted);
    wire_put_u64(&w, c->version);
    wire_put_u64(&w, c->lin.writer);
    rc = w.err ? HERD_ENOMEM : herd_cluster_send_app(n, c->peer, HANDOFF_APP, w.buf, w.len);
    wire_writer_fini(&w);
    if (rc)
        d->stats.send_failed++;
    return rc;
}

/* A state over the cap does not move: the child runs on here, measured
 * again after a while. */
static int refuse_too_big(dsup_t *d, dchild_t *c, const char *target, size_t len)
{
    c->peer = herd_node_id_of(target);
    c->move_id = ++d->next_move_id;
    c->froze_us = now_us();
    remember(d, c, "too_big", 0); /* `ringctl handoffs`; a drain lists it */
    herd_log(HERD_LOG_WARN, "handoff", "'%s' stays on this node: its state (%zu bytes) is over "
             "the %llu-byte limit for a move", c->name, len,
             (unsigned long long)d->cfg.max_state_bytes);
    d->stats.too_big++;
    c->move_after = herd_node_now(d->node) + DSUP_TOO_BIG_RETRY_MS;
    herd_thaw(d->node, c->pid, HERD_FREEZE_MOVE);
    return HERD_ETOOBIG;
}

int handoff_begin(dsup_t *d, dchild_t *c, const char *target)
{
    herd_node_t *n = d->node;
    const herd_behaviour_t *b = dsup_behaviour(d, c->service);
    const uint8_t *spec;
    size_t spec_len;
    herd_pid_t holder;
    int rc = herd_spec_get(n, c->name, &spec, &spec_len);
    if (rc == 0 && (herd_is_frozen(n, c->pid) & HERD_FREEZE_CONFLICT))
        rc = HERD_EBUSY; /* its state goes to a conflict's winner first */
    /* Only the copy that holds the name moves: a conflict's loser (or a copy
     * whose registration went missing) is settled here first, and a move
     * would keep it frozen for the conflict rule to pass it over. */
    if (rc == 0 && (herd_whereis(n, c->name, &holder, NULL) != 0 ||
                    !herd_pid_equal(holder, c->pid)))
        rc = HERD_EBUSY;
    if (rc == 0 && herd_has_queued(n, c->pid, HERD_MSG_MERGE))
        rc = HERD_EBUSY; /* a conflict loser's state, confirmed merged: merge it first */
    if (rc == 0)
        rc = herd_freeze(n, c->pid, HERD_FREEZE_MOVE);
    if (rc) /* HERD_EBUSY: a call of its own is out; the next reconcile retries */
        return rc;
    uint8_t *state = NULL;
    size_t state_len = 0;
    if (b->handoff_out && (rc = herd_state_out(n, c->pid, &state, &state_len)) != 0) {
        herd_thaw(n, c->pid, HERD_FREEZE_MOVE);
        return rc;
    }
    if (state_len > d->cfg.max_state_bytes) {
        free(state);
        return refuse_too_big(d, c, target, state_len);
    }
    if (c->copies > 1) /* the replies held so far go at the commit */
        c->version = repl_mark(d, c);
    uint64_t hlc = 0;
    uint8_t gen = 0;
    herd_registry_stamp(n, c->name, &hlc, &gen);
    herd_spec_ref(n, c->name, &c->spec_ref);
    c->move_id = ++d->next_move_id;
    c->peer = herd_node_id_of(target);
    c->peer_inc = herd_cluster_member_incarnation(n, c->peer);
    c->hlc = hlc;
    c->gen = gen;
    c->deadline = herd_node_now(n) + d->cfg.handoff_timeout_ms;
    if (state_len > BIGSTATE_INLINE) { /* parts first, the offer after the last */
        c->out = state;
        c->out_len = state_len;
        c->out_sent = 0;
        state = NULL;
        rc = bigstate_pump(d, c);
        if (rc == 0)
            rc = send_offer(d, c, NULL, 0, c->out_len);
        if (rc == HERD_EBUSY)
            rc = 0; /* the tick sends the rest */
    } else {
        rc = send_offer(d, c, state, state_len, 0);
    }
    free(state);
    if (rc) {
        bigstate_out_free(c);
        herd_thaw(n, c->pid, HERD_FREEZE_MOVE);
        return rc;
    }
    if (c->out && c->out_sent == c->out_len)
        bigstate_out_free(c); /* all out, offer sent */
    child_set_state(d, c, HERD_CHILD_MOVING);
    c->commit_due = 0;
    c->froze_us = now_us();
    d->stats.started++;
    return 0;
}

/* A large state's remaining parts, then its offer; an error aborts. */
static void offer_continue(dsup_t *d, dchild_t *c);

/* The move ends without commit: the registration comes back to the old
 * copy if it had switched, and the old copy takes its mailbox again. */
static void move_abort(dsup_t *d, dchild_t *c, const char *phase, int tell_peer)
{
    if (c->commit_due &&
        herd_registry_switch(d->node, c->name, c->moved_to, c->pid) != 0 &&
        herd_register_claim(d->node, c->name, c->pid, NULL, c->hlc, c->gen) != 0)
        herd_log(HERD_LOG_ERROR, "handoff", "'%s': registration not switched back", c->name);
    if (tell_peer)
        send_simple(d, c->peer, HO_ABORT, c->move_id, c->name, 0, 0);
    remember(d, c, phase, 0);
    bigstate_out_free(c);
    child_set_state(d, c, HERD_CHILD_RUNNING);
    c->commit_due = 0;
    herd_thaw(d->node, c->pid, HERD_FREEZE_MOVE);
    replicas_resume(d, c); /* its held replies wait for a put again */
}

static dchild_t *moving_child(dsup_t *d, const char *name, uint64_t id, uint64_t from)
{
    dchild_t *c = dsup_find(d, name);
    return c && c->state == HERD_CHILD_MOVING && c->move_id == id && c->peer == from ? c : NULL;
}

/* Forward, commit, stop: one step on the loop, so no message can reach the
 * old copy between the forward and its stop. A commit the cluster refuses
 * (its stream is full) leaves the old copy frozen with the registration
 * switched; the tick tries again (messages queued meanwhile are forwarded
 * first), and an abort switches the registration back. */
static void move_finish(dsup_t *d, dchild_t *c)
{
    herd_node_t *n = d->node;
    herd_pid_t old = c->pid, moved = c->moved_to;
    int forwarded = herd_forward_mailbox(n, old, moved);
    if (forwarded > 0)
        c->forwarded += (uint32_t)forwarded;
    if (send_simple(d, c->peer, HO_COMMIT, c->move_id, c->name, 0, 0) != 0) {
        c->commit_due = 1;
        return;
    }
    herd_redirect(n, old, moved, d->cfg.forward_grace_ms);
    remember(d, c, "committed", c->forwarded);
    duration_record(d, now_us() - c->froze_us);
    d->stats.committed++;
    d->stats.forwarded += c->forwarded;
    replicas_moved(d, c); /* the new owner's set holds the state: replies go */
    dsup_event(d, HERD_EV_CHILD_MOVED, c->name, moved, old, HERD_REASON_HANDOFF);
    dsup_forget(d, c); /* first: its exit is not a failure */
    herd_stop(n, old, HERD_REASON_HANDOFF);
    dsup_kick(d, 0);
}

/* The new copy accepted: switch the registration to it in one delta; the
 * tick then ships the registry's pending changes (one delta for every move
 * accepted meanwhile) and finishes the moves, so the switch leaves ahead of
 * the commit on the same ordered stream: a target that gets the commit has
 * the switch. */
static void on_accept(dsup_t *d, uint64_t from, uint64_t inc, uint64_t id, const char *name,
                      uint64_t serial, uint8_t copies)
{
    herd_node_t *n = d->node;
    dchild_t *c = moving_child(d, name, id, from);
    if (c == NULL) { /* aborted meanwhile: the new copy must go */
        send_simple(d, from, HO_ABORT, id, name, 0, 0);
        return;
    }
    if (c->commit_due)
        return; /* a duplicate accept: the commit is on its way */
    c->moved_to = (herd_pid_t){from, inc, serial};
    c->moved_copies = copies ? copies : 1;
    if (herd_registry_switch(n, name, c->pid, c->moved_to) != 0) {
        move_abort(d, c, "aborted", 1);
        d->stats.aborted++;
        return;
    }
    c->commit_due = 1; /* switched: an abort from here on switches back */
    c->forwarded = 0;
    dsup_kick(d, 0);
}

static void offer_continue(dsup_t *d, dchild_t *c)
{
    int rc = bigstate_pump(d, c);
    if (rc == HERD_EBUSY)
        return;
    if (rc == 0)
        rc = send_offer(d, c, NULL, 0, c->out_len);
    if (rc == 0) {
        bigstate_out_free(c);
        return;
    }
    move_abort(d, c, "aborted", 1);
    d->stats.aborted++;
}

static void on_reject(dsup_t *d, uint64_t from, uint64_t id, const char *name, uint64_t code)
{
    dchild_t *c = moving_child(d, name, id, from);
    if (c == NULL)
        return;
    if ((int)(int64_t)code == HERD_ETOOBIG) { /* over the new owner's cap */
        d->stats.too_big++;
        c->move_after = herd_node_now(d->node) + DSUP_TOO_BIG_RETRY_MS;
    } else if ((int)(int64_t)code == HERD_EEXIST) { /* its copy and ours: a conflict */
        c->move_after = herd_node_now(d->node) + DSUP_CONFLICT_RETRY_MS;
    }
    herd_log(HERD_LOG_INFO, "handoff", "'%s' refused by its new owner: %s", name,
             herd_strerror((int)(int64_t)code));
    move_abort(d, c, "rejected", 0);
    d->stats.rejected++;
}

/* ---- the new owner --------------------------------------------------------------- */

typedef struct offer {
    uint64_t id;
    char name[HERD_NAME_MAX + 1];
    const uint8_t *spec, *state;
    size_t spec_len, state_len;
    int has_state;
    uint64_t hlc;
    uint8_t gen;
    herd_spec_ref_t spec_ref;
    uint64_t parted; /* the size of a state that came ahead in parts, or 0 */
    uint64_t version; /* the state's replication version, or 0 */
    uint64_t writer;  /* the run that wrote it (replica_store.h), or 0 */
} offer_t;

static int offer_spawn(dsup_t *d, const offer_t *o, int *service, herd_restart_t *restart,
                       uint8_t *copies, int *strict, herd_pid_t *pid)
{
    dspec_t spec;
    if (dsup_find(d, o->name))
        return HERD_EEXIST; /* a copy runs here: the conflict rule decides */
    if (dspec_decode(o->spec, o->spec_len, &spec) != 0)
        return HERD_EBADFRAME;
    *service = dsup_service_index(d, spec.service);
    const herd_behaviour_t *b = dsup_behaviour(d, *service);
    if (b == NULL)
        return HERD_EINVAL;
    *restart = spec.restart;
    *copies = replicas_wanted(d, &spec, *service);
    *strict = (spec.flags & DSPEC_REFUSE_UNDERREPLICATED) != 0;
    herd_spawn_opts_t opts = {.behaviour = b, .arg = spec.arg, .arg_len = spec.arg_len};
    if (o->has_state && b->handoff_in) {
        opts.handoff_state = o->state ? o->state : (const uint8_t *)"";
        opts.handoff_len = o->state_len;
    }
    int rc = herd_spawn(d->node, &opts, pid);
    if (rc == 0 && (rc = herd_freeze(d->node, *pid, HERD_FREEZE_MOVE)) != 0)
        herd_stop(d->node, *pid, HERD_REASON_SHUTDOWN);
    return rc;
}

/* Whether this node is on its way out (draining, or left and lingering): a
 * copy it took now would go down with it. */
static int leaving(dsup_t *d)
{
    herd_member_info_t self;
    return herd_cluster_member(d->node, herd_node_id_of(herd_node_name(d->node)), &self) == 0 &&
           (self.state == HERD_MEMBER_DRAINING || self.state == HERD_MEMBER_LEFT);
}

static void spec_relay(dsup_t *d, const offer_t *o)
{
    int rc = herd_spec_relay(d->node, o->name, &o->spec_ref, o->spec, o->spec_len);
    if (rc == 1)
        d->stats.specs_relayed++;
    else if (rc < 0)
        herd_log(HERD_LOG_WARN, "handoff", "'%s': the spec that came with it not taken in: %s "
                 "(it comes with the registry's sync)", o->name, herd_strerror(rc));
}

static void on_offer(dsup_t *d, uint64_t from, uint64_t inc, offer_t *o)
{
    int service = -1;
    herd_restart_t restart = HERD_RESTART_PERMANENT;
    uint8_t copies = 1;
    int strict = 0;
    herd_pid_t pid;
    uint8_t *parted = NULL;
    int rc = 0;
    if (leaving(d)) /* an old node that has not heard of the drain yet: it keeps it */
        rc = HERD_EBUSY;
    else if (o->parted > d->cfg.max_state_bytes)
        rc = HERD_ETOOBIG;
    else if (o->parted && bigstate_take(d, from, o->id, o->parted, &parted) != 0)
        rc = HERD_EBADFRAME; /* parts missing: the old node aborts and tries again */
    if (parted) {
        o->state = parted;
        o->state_len = o->parted;
    }
    if (rc == 0)
        rc = offer_spawn(d, o, &service, &restart, &copies, &strict, &pid);
    dchild_t *c = rc ? NULL : dsup_child_new(o->name, service, restart);
    if (rc == 0 && c == NULL) {
        rc = HERD_ENOMEM;
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    }
    if (rc == 0) {
        c->pid = pid;
        c->move_id = o->id;
        c->peer = from;
        c->peer_inc = inc;
        c->hlc = o->hlc;
        c->gen = o->gen;
        c->spec_ref = o->spec_ref;
        /* its spec may not have reached us yet, and its writer and the
         * nodes that hold it may all go before it does: it is held here
         * with the child (nothing when this node saw that write) */
        spec_relay(d, o);
        c->copies = copies;
        c->strict = strict;
        c->deadline = herd_node_now(d->node) + 3ull * d->cfg.handoff_timeout_ms;
        rc = dsup_add(d, c, HERD_CHILD_ARRIVING); /* frees c on failure */
        if (rc)
            herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    }
    if (rc) {
        free(parted);
        send_simple(d, from, HO_REJECT, o->id, o->name, (uint64_t)(int64_t)rc, 1);
        return;
    }
    /* a replicated child is accepted once this node's replica set holds
     * the state it moves (replicas.c calls handoff_accept then) */
    int now = replicas_arrival(d, c, o->state, o->state_len, o->writer, o->version);
    free(parted);
    if (now)
        handoff_accept(d, c, 1);
}

void handoff_accept(dsup_t *d, dchild_t *c, unsigned copies)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, HO_ACCEPT);
    wire_put_u64(&w, c->move_id);
    wire_put_str(&w, c->name);
    wire_put_u64(&w, c->pid.serial);
    wire_put_u8(&w, (uint8_t)copies);
    int rc = w.err ? HERD_ENOMEM
                   : herd_cluster_send_app(d->node, c->peer, HANDOFF_APP, w.buf, w.len);
    wire_writer_fini(&w);
    if (rc) {
        d->stats.send_failed++;
        herd_log(HERD_LOG_WARN, "handoff", "'%s': accept to %016llx not sent: %s", c->name,
                 (unsigned long long)c->peer, herd_strerror(rc));
        herd_pid_t pid = c->pid; /* the old node times out and keeps its copy */
        dsup_forget(d, c);
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    }
}

static dchild_t *arriving_child(dsup_t *d, const char *name, uint64_t id, uint64_t from)
{
    dchild_t *c = dsup_find(d, name);
    return c && c->state == HERD_CHILD_ARRIVING && c->move_id == id && c->peer == from ? c
                                                                                        : NULL;
}

/* The copy goes live and holds the name in its own entry, with the stamp
 * the old node gave it (one more move): the switch made it the holder
 * already where it arrived, and where it did not (the old node died before
 * its delta left) this entry is the registration. */
static void arrival_live(dsup_t *d, dchild_t *c)
{
    herd_meta_t meta;
    dsup_meta(d, c->service, &meta);
    child_set_state(d, c, HERD_CHILD_RUNNING);
    c->gen = (uint8_t)(c->gen + 1);
    herd_thaw(d->node, c->pid, HERD_FREEZE_MOVE);
    if (!herd_registry_holds(d->node, c->name, c->pid)) {
        int rc = herd_register_claim(d->node, c->name, c->pid, &meta, c->hlc, c->gen);
        if (rc == 0)
            d->stats.claimed++;
        else
            herd_log(HERD_LOG_ERROR, "handoff", "'%s' not registered on arrival: %s", c->name,
                     herd_strerror(rc));
    }
}

static void on_commit(dsup_t *d, uint64_t from, uint64_t id, const char *name)
{
    dchild_t *c = arriving_child(d, name, id, from);
    if (c == NULL)
        return; /* duplicated or late: ignored by id */
    arrival_live(d, c);
    d->stats.received++;
}

static void on_abort(dsup_t *d, uint64_t from, uint64_t id, const char *name)
{
    bigstate_drop_move(d, from, id);
    dchild_t *c = arriving_child(d, name, id, from);
    if (c == NULL)
        return;
    herd_pid_t pid = c->pid;
    dsup_forget(d, c);
    herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
}

/* The old node died before its commit reached us: our copy holds the
 * latest state, so it takes the name over with its first-registration time.
 * Another copy that holds the name meanwhile (a restart from the spec) is
 * judged by the conflict rule, which merges the states: this copy is never
 * dropped here, as it may hold the only state. */
static void arrival_promote(dsup_t *d, dchild_t *c)
{
    arrival_live(d, c);
    d->stats.promoted++;
}

/* ---- receiving ------------------------------------------------------------------- */

static int read_offer(wire_reader_t *r, offer_t *o)
{
    o->spec_len = wire_get_bytes(r, &o->spec);
    o->has_state = wire_get_u8(r);
    o->state_len = wire_get_bytes(r, &o->state);
    o->hlc = wire_get_u64(r);
    o->gen = wire_get_u8(r);
    o->spec_ref.node = wire_get_u64(r);
    o->spec_ref.incarnation = wire_get_u64(r);
    o->spec_ref.counter = wire_get_u64(r);
    o->parted = wire_get_u64(r);
    o->version = wire_get_u64(r);
    o->writer = wire_get_u64(r);
    return wire_reader_done(r) || (o->parted && o->state_len);
}

void handoff_on_app(void *data, uint64_t node, uint64_t incarnation, const uint8_t *msg,
                    size_t len)
{
    dsup_t *d = data;
    if (msg == NULL) { /* arrived altered (the cluster logged it): the move times out */
        d->stats.malformed++;
        return;
    }
    wire_reader_t r;
    wire_reader_init(&r, msg, len);
    offer_t o = {0};
    uint8_t kind = wire_get_u8(&r);
    o.id = wire_get_u64(&r);
    wire_get_str(&r, o.name, sizeof(o.name));
    uint64_t extra = 0;
    uint8_t copies = 1;
    if (kind == HO_READY) {
        readiness_on_ready(d, node, incarnation, &r, o.id, o.name);
        return;
    }
    if (kind == HO_ACCEPT || kind == HO_REJECT)
        extra = wire_get_u64(&r);
    if (kind == HO_ACCEPT)
        copies = wire_get_u8(&r);
    if (kind == HO_PART) {
        uint64_t offset = wire_get_u64(&r), total = wire_get_u64(&r);
        const uint8_t *chunk;
        size_t clen = wire_get_bytes(&r, &chunk);
        if (wire_reader_done(&r) || !o.name[0]) {
            herd_log_limited(&d->log_bad, herd_node_now(d->node), HERD_LOG_WARN, "handoff",
                             "malformed state part from %016llx dropped",
                             (unsigned long long)node);
            d->stats.rejected_parts++;
            return;
        }
        bigstate_on_part(d, node, o.id, offset, total, chunk, clen);
        return;
    }
    int bad = kind == HO_OFFER ? read_offer(&r, &o)
              : kind == HO_DRAIN ? (extra = wire_get_u8(&r), wire_reader_done(&r))
                                 : wire_reader_done(&r);
    if (bad || (kind != HO_DRAIN && !o.name[0])) {
        herd_log_limited(&d->log_bad, herd_node_now(d->node), HERD_LOG_WARN, "handoff",
                         "malformed handoff message (kind %u) from %016llx dropped", kind,
                         (unsigned long long)node);
        d->stats.malformed++;
        return;
    }
    switch (kind) {
    case HO_OFFER: on_offer(d, node, incarnation, &o); break;
    case HO_ACCEPT: on_accept(d, node, incarnation, o.id, o.name, extra, copies); break;
    case HO_REJECT: on_reject(d, node, o.id, o.name, extra); break;
    case HO_ABORT: on_abort(d, node, o.id, o.name); break;
    case HO_COMMIT: on_commit(d, node, o.id, o.name); break;
    case HO_DRAIN: herd_cluster_set_draining(d->node, (int)extra); break;
    default:
        herd_log_limited(&d->log_bad, herd_node_now(d->node), HERD_LOG_WARN, "handoff",
                         "unknown handoff message %u from %016llx dropped", kind,
                         (unsigned long long)node);
        d->stats.malformed++;
    }
}

/* ---- time and membership ----------------------------------------------------------- */

/* Whether the start of member `id` that took part in a move (incarnation
 * `inc`) is gone: down, left, unknown, or restarted since (a new start knows
 * nothing of the move). */
static int member_gone(dsup_t *d, uint64_t id, uint64_t inc)
{
    herd_member_info_t m;
    return herd_cluster_member(d->node, id, &m) != 0 || m.state == HERD_MEMBER_DOWN ||
           m.state == HERD_MEMBER_LEFT || m.incarnation != inc;
}

/* Children in a move with `peer` (any when 0) whose deadline passed (any
 * when `now` is 0). */
static size_t collect_moves(dsup_t *d, uint64_t peer, uint64_t now, dchild_t ***out)
{
    size_t cap = d->moving + d->arriving, n = 0, cursor = 0;
    dchild_t **list = cap ? malloc(cap * sizeof(*list)) : NULL;
    if (list == NULL)
        return 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;)
        for (dchild_t *c = s->value; c && n < cap; c = c->twin)
            if ((c->state == HERD_CHILD_MOVING || c->state == HERD_CHILD_ARRIVING) &&
                (peer == 0 || c->peer == peer) && (now == 0 || c->deadline <= now))
                list[n++] = c;
    *out = list;
    return n;
}

static void settle_move(dsup_t *d, dchild_t *c)
{
    if (c->state == HERD_CHILD_MOVING) {
        move_abort(d, c, "aborted", 1);
        d->stats.aborted++;
    } else if (member_gone(d, c->peer, c->peer_inc)) {
        arrival_promote(d, c);
    } else { /* the old node lives and never committed: it aborted */
        herd_pid_t pid = c->pid;
        dsup_forget(d, c);
        herd_stop(d->node, pid, HERD_REASON_SHUTDOWN);
    }
}

void handoff_tick(dsup_t *d, uint64_t now)
{
    uint64_t stall = 3ull * d->cfg.handoff_timeout_ms;
    if (d->parts.count && now > stall)
        bigstate_expire(d, 0, now - stall); /* parts of a move that stopped coming */
    if (d->moving + d->arriving == 0)
        return;
    dchild_t **list = NULL;
    size_t n = collect_moves(d, 0, 0, &list);
    for (size_t i = 0; i < n; i++)
        if (list[i]->state == HERD_CHILD_MOVING && list[i]->commit_due) {
            herd_registry_flush(d->node); /* the switches, ahead of their commits */
            break;
        }
    for (size_t i = 0; i < n; i++) {
        dchild_t *c = list[i];
        if (c->state == HERD_CHILD_MOVING && c->out && c->deadline > now &&
            !member_gone(d, c->peer, c->peer_inc))
            offer_continue(d, c);
        else if (c->state == HERD_CHILD_MOVING && c->commit_due &&
            !member_gone(d, c->peer, c->peer_inc))
            move_finish(d, c); /* (again, if it was refused); no deadline applies */
        else if (c->deadline <= now || (c->state == HERD_CHILD_MOVING && c->commit_due))
            settle_move(d, c);
    }
    free(list);
}

void handoff_on_member(dsup_t *d, uint64_t id, herd_member_state_t state)
{
    if (state != HERD_MEMBER_DOWN && state != HERD_MEMBER_LEFT && state != HERD_MEMBER_ABSENT)
        return;
    bigstate_expire(d, id, 0);
    if (d->moving + d->arriving == 0)
        return;
    dchild_t **list = NULL;
    size_t n = collect_moves(d, id, 0, &list);
    for (size_t i = 0; i < n; i++)
        settle_move(d, list[i]);
    free(list);
}

void handoff_lost(dsup_t *d, dchild_t *c)
{
    if (c->state == HERD_CHILD_MOVING) {
        if (c->commit_due) /* the new copy holds the name now: it goes on alone */
            send_simple(d, c->peer, HO_COMMIT, c->move_id, c->name, 0, 0);
        else
            send_simple(d, c->peer, HO_ABORT, c->move_id, c->name, 0, 0);
        remember(d, c, "aborted", 0);
        d->stats.aborted++;
        child_set_state(d, c, HERD_CHILD_RUNNING);
    }
}

/* ---- the API ------------------------------------------------------------------------ */

int herd_handoff_stats(herd_node_t *n, herd_handoff_stats_t *out)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    *out = d->stats;
    out->in_flight = d->moving;
    return 0;
}

int herd_handoffs(herd_node_t *n, herd_handoff_fn fn, void *data)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    int visited = 0;
    size_t cursor = 0;
    for (u64map_slot_t *s; d->moving && (s = u64map_next(&d->by_hash, &cursor)) != NULL;) {
        for (dchild_t *c = s->value; c; c = c->twin) {
            if (c->state != HERD_CHILD_MOVING)
                continue;
            herd_handoff_view_t v = {.id = c->move_id, .phase = "offered"};
            snprintf(v.name, sizeof(v.name), "%s", c->name);
            member_name(d, c->peer, v.target, sizeof(v.target));
            v.started_ms = herd_node_wall_ms(n) - (now_us() - c->froze_us) / 1000;
            visited++;
            if (fn(data, &v))
                return visited;
        }
    }
    for (size_t i = 0; i < d->recent_count; i++) {
        size_t at = (d->recent_next + HERD_HANDOFF_RECENT - 1 - i) % HERD_HANDOFF_RECENT;
        visited++;
        if (fn(data, &d->recent[at]))
            break;
    }
    return visited;
}

typedef struct owed_ctx {
    herd_node_t *node;
    int live_owed, down_owed; /* members owed an acknowledgement, by state */
    int live_others;          /* members up (or suspect, draining) besides this one */
} owed_ctx_t;

static int owed_ack(void *data, const herd_member_info_t *m)
{
    owed_ctx_t *c = data;
    herd_stream_stats_t st;
    uint64_t id = herd_node_id_of(m->name);
    if (id == herd_node_id_of(herd_node_name(c->node)) || m->state == HERD_MEMBER_LEFT)
        return 0;
    int owed = herd_cluster_stream_stats(c->node, id, &st) == 0 && st.pending > 0;
    if (m->state == HERD_MEMBER_DOWN) {
        c->down_owed += owed;
    } else {
        c->live_others++;
        c->live_owed += owed;
    }
    return 0;
}

/* What this node sent must outlive it: every live member acknowledged it,
 * and either one of them stays to pass it on (a down member that returns
 * syncs its replica with them), or there is none, and then every member that
 * is down but not forgotten (it may only be cut off) must hold it too: a
 * node alone on its side of a partition does not leave with the only copy
 * of a terminate or a move's switch. */
int herd_dsup_drained(herd_node_t *n)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL || d->child_count || d->moving || d->arriving)
        return d == NULL ? 1 : 0;
    owed_ctx_t c = {n, 0, 0, 0};
    herd_cluster_foreach_member(n, owed_ack, &c);
    return c.live_owed == 0 && (c.live_others > 0 || c.down_owed == 0);
}

int herd_drain(herd_node_t *n, const char *name, int on)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    if (name == NULL || strcmp(name, herd_node_name(n)) == 0)
        return herd_cluster_set_draining(n, on);
    uint64_t id = herd_node_id_of(name);
    if (herd_cluster_member_incarnation(n, id) == 0)
        return HERD_ENOTCONN;
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, HO_DRAIN);
    wire_put_u64(&w, 0);
    wire_put_str(&w, "");
    wire_put_u8(&w, on ? 1 : 0);
    size_t len;
    uint8_t *buf = wire_writer_take(&w, &len);
    int rc = buf ? herd_cluster_send_app(n, id, HANDOFF_APP, buf, len) : HERD_ENOMEM;
    free(buf);
    return rc;
}
