/*
 * mship_join.c - how membership answers a HELLO without believing it, and
 * how a node makes sure its name is its own before it joins (membership.h).
 *
 * How it works
 * ------------
 * Replay windows live in memory: a node that restarted has forgotten which
 * frames it saw, so a recording of any frame that names no receiver's start
 * (a HELLO to a seed, a HELLO to a silent member) would be new to it. Such a
 * frame therefore admits nobody and proves nothing: a HELLO only gets an
 * answer, a heartbeat addressed to the sender's start (its incarnation, in
 * the HELLO's authenticated header). Only a frame addressed to the
 * receiver's current start admits a member or proves it alive, and nobody
 * can have recorded one before that start (incarnations are new per start,
 * and the MAC covers the receiver fields). A recorded HELLO replayed to a
 * restarted node thus makes it send at most one answer per heartbeat_ms / 4
 * per sender name (hello_may_answer), to a start that is dead.
 *
 * The answer carries the answering node's view of the members. A joiner
 * reads it before it admits the answerer: when it says another start of the
 * joiner's own name is alive at another address, that start may be a live
 * node with the same name (a second herdd started with a live node's
 * --name), or the joiner's own previous start, killed before the cluster
 * noticed. The joiner asks it: a HELLO addressed to that incarnation, every
 * tick for probe_ms. A live start answers it (on_own_name_hello) with a
 * heartbeat addressed to the joiner's start, which proves it alive now: the
 * joiner is refused and joins nothing (its member tables elsewhere never
 * saw it, since nobody admits a HELLO). If the other start's address is the
 * joiner's own, the joiner could bind it, so that start is dead; silence for
 * probe_ms says the same. Either way the joiner admits the answerer with its
 * next HELLO's answer and its heartbeat back replaces the old start there.
 */
#include <string.h>

#include "herd_runtime.h"
#include "membership_int.h"

static const char *const identity_names[MSHIP_ID_COUNT] = {"unchecked", "probing",
                                                           "confirmed", "refused"};

const char *mship_identity_name(mship_identity_t id)
{
    return (unsigned)id < MSHIP_ID_COUNT ? identity_names[id] : "invalid";
}

/* The one place the identity changes: checks the transition and logs it. */
static void identity_set(mship_t *m, mship_identity_t to)
{
    static const unsigned char allowed[MSHIP_ID_COUNT][MSHIP_ID_COUNT] = {
        /*                     unchecked probing confirmed refused */
        [MSHIP_ID_UNCHECKED] = {0, 1, 1, 1},
        [MSHIP_ID_PROBING] = {1, 0, 0, 1},
        [MSHIP_ID_CONFIRMED] = {0, 0, 0, 1},
        [MSHIP_ID_REFUSED] = {0, 0, 0, 0},
    };
    if (m->identity == to)
        return;
    if (!allowed[m->identity][to]) {
        herd_log(HERD_LOG_ERROR, "membership", "refused identity transition of %s: %s -> %s",
                 m->self->name, mship_identity_name(m->identity), mship_identity_name(to));
        return;
    }
    herd_log(HERD_LOG_INFO, "membership", "the name %s: %s -> %s", m->self->name,
             mship_identity_name(m->identity), mship_identity_name(to));
    m->identity = to;
}

void mship__identity_init(mship_t *m)
{
    m->identity = m->cfg.seed_count ? MSHIP_ID_UNCHECKED : MSHIP_ID_CONFIRMED;
}

mship_identity_t mship_identity(const mship_t *m, uint64_t *holder_inc, char *holder_address,
                                size_t cap)
{
    int refused = m->identity == MSHIP_ID_REFUSED;
    const char *address = refused ? m->holder_address : m->probe.active ? m->probe.address : "";
    if (holder_inc)
        *holder_inc = refused ? m->holder_inc : m->probe.active ? m->probe.incarnation : 0;
    if (holder_address && cap) {
        size_t len = strlen(address) < cap - 1 ? strlen(address) : cap - 1;
        memcpy(holder_address, address, len);
        holder_address[len] = '\0';
    }
    return m->identity;
}

int mship__joining_paused(const mship_t *m)
{
    return m->identity == MSHIP_ID_PROBING;
}

/* ---- HELLO answers ---------------------------------------------------------- */

/* Whether a HELLO from node `id` may be answered now: at most once per
 * heartbeat_ms / 4 per sender, and for at most MSHIP_HELLO_SLOTS senders in
 * that time, so replayed HELLOs cannot make this node send without bound. */
static int hello_may_answer(mship_t *m, uint64_t id, uint64_t now)
{
    uint64_t gap = m->cfg.heartbeat_ms / 4 ? m->cfg.heartbeat_ms / 4 : 1;
    mship_hello_slot_t *free_slot = NULL;
    for (size_t i = 0; i < MSHIP_HELLO_SLOTS; i++) {
        mship_hello_slot_t *s = &m->hello[i];
        if (s->id == id) {
            if (now - s->at < gap)
                return 0;
            s->at = now;
            return 1;
        }
        if (free_slot == NULL && (s->id == 0 || now - s->at >= gap))
            free_slot = s;
    }
    if (free_slot == NULL)
        return 0;
    free_slot->id = id;
    free_slot->at = now;
    return 1;
}

/* The answer: this node's heartbeat, addressed to the sender's start. */
static int hello_answer(mship_t *m, uint64_t now, const frame_header_t *h,
                        const mship_beat_t *b, mship_effects_t *out, frame_reject_t *why)
{
    if (!hello_may_answer(m, h->sender, now)) {
        *why = FRAME_REJECT_RATE;
        return HERD_EBADFRAME;
    }
    return mship__send(m, out, b->address, h->sender, h->sender_inc, FRAME_HEARTBEAT);
}

int mship__on_hello(mship_t *m, uint64_t now, const frame_header_t *h, const mship_beat_t *b,
                    mship_effects_t *out, frame_reject_t *why)
{
    const mship_member_t *x = mship_find(m, b->name);
    if (x && h->sender_inc < x->incarnation) {
        *why = FRAME_REJECT_REPLAY; /* from a start that a newer one replaced */
        return HERD_EBADFRAME;
    }
    if (x && h->sender_inc > x->incarnation && x->state != MEMBER_DOWN &&
        x->state != MEMBER_LEFT && strcmp(x->address, b->address) != 0)
        herd_log_limited(&m->log_hello, now, HERD_LOG_WARN, "membership",
                         "%s at %s (incarnation %llu) says HELLO while %s at %s (incarnation "
                         "%llu) is %s here: a second node with that name, or a restart "
                         "elsewhere; it is not admitted unless it finds that one dead",
                         b->name, b->address, (unsigned long long)h->sender_inc, x->name,
                         x->address, (unsigned long long)x->incarnation,
                         mship_state_name(x->state));
    return hello_answer(m, now, h, b, out, why);
}

/* ---- frames from another start of this node's name ---------------------------- */

/* This node is refused: the start of `inc` at `address` is alive. */
static void identity_refuse(mship_t *m, uint64_t inc, const char *address)
{
    m->holder_inc = inc;
    strcpy(m->holder_address, address);
    m->probe.active = 0;
    herd_log(HERD_LOG_ERROR, "membership",
             "the name %s is taken: its start of incarnation %llu at %s is alive and "
             "answered; this node (incarnation %llu, at %s) joins nothing",
             m->self->name, (unsigned long long)inc, address,
             (unsigned long long)m->self->incarnation, m->self->address);
    identity_set(m, MSHIP_ID_REFUSED);
}

int mship__on_own_name(mship_t *m, uint64_t now, const frame_header_t *h,
                       const mship_beat_t *b, mship_effects_t *out, frame_reject_t *why)
{
    if (h->sender_inc == m->self->incarnation)
        return 0; /* this node's own frame, come back (a seed list naming it) */
    *why = FRAME_REJECT_NAME;
    if (h->type == FRAME_HELLO) {
        herd_log_limited(&m->log_second, now, HERD_LOG_WARN, "membership",
                         "a second node named %s (incarnation %llu, at %s) tried to join; "
                         "this node (incarnation %llu, at %s) is alive and tells it so",
                         b->name, (unsigned long long)h->sender_inc, b->address,
                         (unsigned long long)m->self->incarnation, m->self->address);
        hello_answer(m, now, h, b, out, why);
        *why = FRAME_REJECT_NAME;
        return HERD_EBADFRAME;
    }
    /* A heartbeat addressed to this start: the other start is alive now. An
     * older one, or any while this node is not admitted yet, holds the name. */
    if (m->identity != MSHIP_ID_CONFIRMED || h->sender_inc < m->self->incarnation) {
        identity_refuse(m, h->sender_inc, b->address);
        return 0;
    }
    herd_log_limited(&m->log_newer, now, HERD_LOG_WARN, "membership",
                     "a newer start of %s (incarnation %llu, at %s) is alive and talks to "
                     "this one (incarnation %llu): two nodes have this name",
                     b->name, (unsigned long long)h->sender_inc, b->address,
                     (unsigned long long)m->self->incarnation);
    return HERD_EBADFRAME;
}

/* ---- asking another start of this name ------------------------------------------ */

static int probe_cleared(const mship_t *m, uint64_t inc)
{
    for (size_t i = 0; i < MSHIP_CLEARED_MAX; i++)
        if (m->cleared[i] == inc)
            return 1;
    return 0;
}

static void probe_start(mship_t *m, uint64_t now, const mship_gossip_t *g, mship_effects_t *out)
{
    m->probe.active = 1;
    m->probe.incarnation = g->incarnation;
    m->probe.since = now;
    strcpy(m->probe.address, g->address);
    herd_log(HERD_LOG_WARN, "membership",
             "members say another start of %s (incarnation %llu, at %s) is alive; asking it "
             "for up to %u ms%s",
             m->self->name, (unsigned long long)g->incarnation, g->address, m->cfg.probe_ms,
             m->identity == MSHIP_ID_CONFIRMED ? "" : " before joining");
    if (m->identity == MSHIP_ID_UNCHECKED)
        identity_set(m, MSHIP_ID_PROBING);
    mship__send(m, out, g->address, m->self->id, g->incarnation, FRAME_HELLO);
}

void mship__own_gossip(mship_t *m, uint64_t now, const mship_gossip_t *g, mship_effects_t *out)
{
    uint64_t mine = m->self->incarnation;
    if (g->incarnation == mine || g->status != GOSSIP_ALIVE || m->probe.active ||
        m->identity == MSHIP_ID_REFUSED)
        return;
    if (strcmp(g->address, m->self->address) == 0 || probe_cleared(m, g->incarnation))
        return; /* this node listens there, or it did not answer: that start is dead */
    if (m->identity == MSHIP_ID_CONFIRMED && g->incarnation > mine) {
        herd_log_limited(&m->log_newer, now, HERD_LOG_WARN, "membership",
                         "members say a newer start of %s (incarnation %llu, at %s) is "
                         "alive: two nodes have this name",
                         m->self->name, (unsigned long long)g->incarnation, g->address);
        return;
    }
    probe_start(m, now, g, out);
}

void mship__probe_tick(mship_t *m, uint64_t now, mship_effects_t *out)
{
    mship_probe_t *p = &m->probe;
    if (!p->active)
        return;
    if (now - p->since < m->cfg.probe_ms) {
        mship__send(m, out, p->address, m->self->id, p->incarnation, FRAME_HELLO);
        return;
    }
    m->cleared[m->cleared_next] = p->incarnation;
    m->cleared_next = (m->cleared_next + 1) % MSHIP_CLEARED_MAX;
    p->active = 0;
    herd_log(HERD_LOG_WARN, "membership",
             "the start of %s of incarnation %llu at %s did not answer in %u ms: it is dead",
             m->self->name, (unsigned long long)p->incarnation, p->address, m->cfg.probe_ms);
    if (m->identity == MSHIP_ID_PROBING) {
        identity_set(m, MSHIP_ID_UNCHECKED);
        m->next_hello = now; /* ask the seeds again at once */
    }
}

int mship__may_admit(mship_t *m, uint64_t now, const char *name)
{
    if (m->identity != MSHIP_ID_PROBING)
        return 1;
    herd_log_limited(&m->log_waiting, now, HERD_LOG_INFO, "membership",
                     "not admitting %s yet: asking whether another start of %s is alive", name,
                     m->self->name);
    return 0;
}

void mship__admitted(mship_t *m, const char *name)
{
    if (m->identity != MSHIP_ID_UNCHECKED)
        return;
    herd_log(HERD_LOG_INFO, "membership", "%s admitted: no live start of %s in its view", name,
             m->self->name);
    identity_set(m, MSHIP_ID_CONFIRMED);
}
