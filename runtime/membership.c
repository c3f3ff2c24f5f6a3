/*
 * membership.c - the membership state machine (see membership.h for how it
 * works): the member table, heartbeats, verdicts. HELLO answers and the
 * check of this node's own name are in mship_join.c. No I/O, no clock of
 * its own: `now` comes with every event.
 *
 * Body of HELLO and HEARTBEAT (wire.h encoding):
 *   str cluster, str name, str address, u32 weight, u8 state (up | draining),
 *   services (svclist.h: u8 count, count x str),
 *   u16 n, then n x { str name, str address, u64 incarnation, u32 weight,
 *   u8 status (0 alive, 1 left) }
 * A member's services, like its weight, are learned from the member itself,
 * never from gossip about it.
 * Body of LEAVE: str cluster, str name.
 */
#include "membership.h"

#include <stdlib.h>
#include <string.h>

#include "herd_runtime.h"
#include "log.h"
#include "membership_int.h"
#include "wire.h"

static const char *const state_names[] = {"up", "suspect", "draining", "down", "left", "absent"};

const char *mship_state_name(mship_state_t s)
{
    return (unsigned)s <= MEMBER_ABSENT ? state_names[s] : "invalid";
}

int mship_state_in_ring(mship_state_t s)
{
    return s == MEMBER_UP || s == MEMBER_SUSPECT;
}

/* ---- effects ---------------------------------------------------------------- */

void mship_effects_init(mship_effects_t *e)
{
    memset(e, 0, sizeof(*e));
}

void mship_effects_clear(mship_effects_t *e)
{
    for (size_t i = 0; i < e->count; i++)
        free(e->items[i].body);
    e->count = 0;
    e->ring_changed = 0;
    e->lost = 0;
}

void mship_effects_fini(mship_effects_t *e)
{
    mship_effects_clear(e);
    free(e->items);
    mship_effects_init(e);
}

static mship_effect_t *effect_push(mship_effects_t *e, mship_effect_kind_t kind)
{
    if (e->count == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        mship_effect_t *items = realloc(e->items, cap * sizeof(*items));
        if (items == NULL) {
            e->lost++;
            return NULL;
        }
        e->items = items;
        e->cap = cap;
    }
    mship_effect_t *x = &e->items[e->count++];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    return x;
}

/* ---- the member table ------------------------------------------------------- */

static long member_search(const mship_t *m, const char *name)
{
    size_t lo = 0, hi = m->member_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->members[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

const mship_member_t *mship_find(const mship_t *m, const char *name)
{
    long i = member_search(m, name);
    return i >= 0 ? m->members[i] : NULL;
}

const mship_member_t *mship_find_id(const mship_t *m, uint64_t id)
{
    return u64map_get(&m->by_id, id);
}

size_t mship_member_count(const mship_t *m)
{
    return m->member_count;
}

const mship_member_t *mship_member_at(const mship_t *m, size_t i)
{
    return i < m->member_count ? m->members[i] : NULL;
}

const mship_member_t *mship_self(const mship_t *m)
{
    return m->self;
}

static mship_member_t *member_insert(mship_t *m, const char *name, const char *address,
                                     uint64_t incarnation, uint32_t weight, uint64_t now)
{
    long pos = member_search(m, name);
    if (pos >= 0 || m->member_count >= MSHIP_MAX_MEMBERS)
        return NULL;
    if (m->member_count == m->member_cap) {
        size_t cap = m->member_cap ? m->member_cap * 2 : 8;
        mship_member_t **items = realloc(m->members, cap * sizeof(*items));
        if (items == NULL)
            return NULL;
        m->members = items;
        m->member_cap = cap;
    }
    mship_member_t *x = calloc(1, sizeof(*x));
    if (x == NULL || u64map_put(&m->by_id, herd_node_id_of(name), x) != 0) {
        free(x);
        return NULL;
    }
    size_t at = (size_t)(-pos - 1);
    memmove(&m->members[at + 1], &m->members[at], (m->member_count - at) * sizeof(x));
    m->members[at] = x;
    m->member_count++;
    strcpy(x->name, name);
    strcpy(x->address, address);
    x->id = herd_node_id_of(name);
    x->incarnation = incarnation;
    x->weight = weight;
    x->state = MEMBER_UP;
    x->last_heard = x->state_since = now;
    return x;
}

static void member_remove(mship_t *m, mship_member_t *x)
{
    long pos = member_search(m, x->name);
    if (pos < 0)
        return;
    u64map_del(&m->by_id, x->id);
    memmove(&m->members[pos], &m->members[pos + 1],
            (m->member_count - (size_t)pos - 1) * sizeof(x));
    m->member_count--;
    free(x);
}

static void emit_member(mship_effects_t *out, const mship_member_t *x, mship_state_t from,
                        mship_state_t to, mship_gone_t gone)
{
    /* the ring follows the table, whether or not the effect can be kept */
    if (mship_state_in_ring(from) != mship_state_in_ring(to))
        out->ring_changed = 1;
    mship_effect_t *e = effect_push(out, MSHIP_MEMBER);
    if (e == NULL)
        return;
    strcpy(e->name, x->name);
    strcpy(e->address, x->address);
    uint64_t incarnation = x->incarnation;
    e->incarnation = incarnation;
    e->old_state = from;
    e->new_state = to;
    e->gone = gone;
}

/* The one place a member's state changes: checks the transition and logs it. */
static void member_set_state(mship_member_t *x, mship_state_t to, uint64_t now,
                             mship_effects_t *out)
{
    static const unsigned char allowed[MEMBER_STATE_COUNT][MEMBER_STATE_COUNT] = {
        /*              up sus dra down left */
        [MEMBER_UP] = {0, 1, 1, 1, 1},
        [MEMBER_SUSPECT] = {1, 0, 1, 1, 1},
        [MEMBER_DRAINING] = {1, 1, 0, 1, 1},
        [MEMBER_DOWN] = {1, 0, 1, 0, 1},
        [MEMBER_LEFT] = {0, 0, 0, 0, 0},
    };
    if (x->state == to)
        return;
    if (!allowed[x->state][to]) {
        herd_log(HERD_LOG_ERROR, "membership", "refused transition of %s: %s -> %s", x->name,
                 mship_state_name(x->state), mship_state_name(to));
        return;
    }
    herd_log(HERD_LOG_INFO, "membership", "%s (incarnation %llu): %s -> %s", x->name,
             (unsigned long long)x->incarnation, mship_state_name(x->state),
             mship_state_name(to));
    emit_member(out, x, x->state, to, MSHIP_GONE_NONE);
    x->state = to;
    x->state_since = now;
}

static void member_forget(mship_t *m, mship_member_t *x, mship_gone_t why,
                          mship_effects_t *out)
{
    herd_log(HERD_LOG_INFO, "membership", "%s (incarnation %llu) is gone: %s", x->name,
             (unsigned long long)x->incarnation,
             why == MSHIP_GONE_RESTARTED ? "restarted" : "forgotten");
    emit_member(out, x, x->state, MEMBER_ABSENT, why);
    member_remove(m, x);
}

/* ---- candidates: names heard of, not heard from ---------------------------- */

static void candidate_drop(mship_t *m, const char *name)
{
    for (size_t i = 0; i < m->candidate_count; i++) {
        if (strcmp(m->candidates[i].name, name) == 0) {
            m->candidates[i] = m->candidates[--m->candidate_count];
            return;
        }
    }
}

/* Note a name heard of in gossip: the candidate, if it is news (a name
 * not noted yet, or a newer start of one), else NULL. */
static const mship_candidate_t *candidate_note(mship_t *m, const char *name,
                                               const char *address, uint64_t incarnation,
                                               uint64_t now)
{
    for (size_t i = 0; i < m->candidate_count; i++) {
        mship_candidate_t *c = &m->candidates[i];
        if (strcmp(c->name, name) == 0) {
            int newer = incarnation > c->incarnation;
            if (newer) {
                c->incarnation = incarnation;
                strcpy(c->address, address);
            }
            if (incarnation >= c->incarnation)
                c->since = now; /* still heard of: kept while members mention it */
            return newer ? c : NULL;
        }
    }
    if (m->candidate_count == MSHIP_MAX_CANDIDATES)
        return NULL;
    mship_candidate_t *c = &m->candidates[m->candidate_count++];
    strcpy(c->name, name);
    strcpy(c->address, address);
    c->incarnation = incarnation;
    c->since = now;
    return c;
}

/* ---- prompt heartbeats -------------------------------------------------------- */

/* Whether a prompt heartbeat may go out now: fewer than MSHIP_PROMPT_MAX
 * went out in the current window of heartbeat_ms. */
static int prompt_may_send(mship_t *m, uint64_t now)
{
    if (now - m->prompt_window >= m->cfg.heartbeat_ms) {
        m->prompt_window = now;
        m->prompt_in_window = 0;
    }
    return m->prompt_in_window < MSHIP_PROMPT_MAX;
}

/* A name newly heard of in gossip (alive there) is sent a heartbeat at once
 * rather than at the next periodic one: its answer admits it both ways.
 * Past the bound (or out of memory) the periodic heartbeat reaches it. */
static void prompt_candidate(mship_t *m, uint64_t now, const mship_candidate_t *c,
                             mship_effects_t *out)
{
    if (prompt_may_send(m, now) &&
        mship__send(m, out, c->address, herd_node_id_of(c->name), c->incarnation,
                    FRAME_HEARTBEAT) == 0) {
        m->prompt_in_window++;
        m->stats.prompt_beats++;
        return;
    }
    m->stats.prompt_deferred++;
}

void mship_stats(const mship_t *m, mship_stats_t *out)
{
    *out = m->stats;
}

/* ---- bodies ------------------------------------------------------------------ */

/* Every member goes out in gossip, down ones too (as down), so that a node
 * that joins while some members are cut off still knows they exist. */
static int gossip_counts(const mship_member_t *x)
{
    (void)x;
    return 1;
}

static uint8_t gossip_status(const mship_member_t *x)
{
    return x->state == MEMBER_LEFT ? GOSSIP_LEFT
           : x->state == MEMBER_DOWN ? GOSSIP_DOWN
                                     : GOSSIP_ALIVE;
}

static uint8_t *encode_beat(const mship_t *m, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, m->cluster);
    wire_put_str(&w, m->self->name);
    wire_put_str(&w, m->self->address);
    wire_put_u32(&w, m->self->weight);
    wire_put_u8(&w, (uint8_t)m->self->state);
    svclist_put(&w, &m->self->services);
    uint16_t n = 0;
    for (size_t i = 0; i < m->member_count; i++)
        n += (uint16_t)gossip_counts(m->members[i]);
    wire_put_u16(&w, n);
    for (size_t i = 0; i < m->member_count; i++) {
        const mship_member_t *x = m->members[i];
        if (!gossip_counts(x))
            continue;
        wire_put_str(&w, x->name);
        wire_put_str(&w, x->address);
        wire_put_u64(&w, x->incarnation);
        wire_put_u32(&w, x->weight);
        wire_put_u8(&w, gossip_status(x));
    }
    return wire_writer_take(&w, len);
}

int mship__send(const mship_t *m, mship_effects_t *out, const char *address, uint64_t to,
                uint64_t to_inc, uint8_t type)
{
    size_t len;
    uint8_t *body;
    if (type == FRAME_LEAVE) {
        wire_writer_t w;
        wire_writer_init(&w);
        wire_put_str(&w, m->cluster);
        wire_put_str(&w, m->self->name);
        body = wire_writer_take(&w, &len);
    } else {
        body = encode_beat(m, &len);
    }
    if (body == NULL) {
        out->lost++;
        return HERD_ENOMEM;
    }
    mship_effect_t *e = effect_push(out, MSHIP_SEND);
    if (e == NULL) {
        free(body);
        return HERD_ENOMEM;
    }
    strcpy(e->address, address);
    e->to = to;
    e->to_inc = to_inc;
    e->type = type;
    e->body = body;
    e->len = len;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

/* The seeds are copied: a list that changes at run time (herd_cluster_set_seeds,
 * discovery) owes the caller nothing after the call. All or nothing. */
static char **seeds_copy(const char *const *seeds, size_t count)
{
    char **copy = calloc(count + 1, sizeof(char *));
    for (size_t i = 0; copy && i < count; i++) {
        if ((copy[i] = strdup(seeds[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(copy[j]);
            free(copy);
            return NULL;
        }
    }
    return copy;
}

static void seeds_free(char **seeds, size_t count)
{
    for (size_t i = 0; seeds && i < count; i++)
        free(seeds[i]);
    free(seeds);
}

/* 0, or HERD_EINVAL for a NULL list with a count or a NULL, empty or
 * oversize address in it. */
static int seeds_check(const char *const *seeds, size_t count)
{
    if (count && seeds == NULL)
        return HERD_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (seeds[i] == NULL || strlen(seeds[i]) == 0 || strlen(seeds[i]) > MSHIP_ADDR_MAX)
            return HERD_EINVAL;
    return 0;
}

static int mship_check_config(const mship_config_t *cfg)
{
    if (cfg == NULL || cfg->cluster == NULL || cfg->address == NULL ||
        seeds_check(cfg->seeds, cfg->seed_count) != 0)
        return HERD_EINVAL;
    size_t clen = strlen(cfg->cluster), alen = strlen(cfg->address);
    if (clen == 0 || clen > MSHIP_CLUSTER_MAX || alen == 0 || alen > MSHIP_ADDR_MAX)
        return HERD_EINVAL;
    if (cfg->weight > HERD_RING_MAX_WEIGHT)
        return HERD_ERANGE;
    return herd_ring_check_name(cfg->name);
}

static void mship_defaults(mship_config_t *c)
{
    if (c->weight == 0)
        c->weight = HERD_RING_DEFAULT_WEIGHT;
    if (c->heartbeat_ms == 0)
        c->heartbeat_ms = 200;
    if (c->suspect_ms == 0)
        c->suspect_ms = 3 * c->heartbeat_ms;
    if (c->down_ms == 0)
        c->down_ms = 5 * c->heartbeat_ms;
    if (c->down_ms < c->suspect_ms)
        c->down_ms = c->suspect_ms;
    if (c->forget_ms == 0)
        c->forget_ms = 60000;
    if (c->probe_ms == 0)
        c->probe_ms = c->down_ms;
}

int mship_new(const mship_config_t *cfg, uint64_t now, mship_t **out)
{
    int rc = mship_check_config(cfg);
    if (rc)
        return rc;
    mship_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return HERD_ENOMEM;
    m->cfg = *cfg;
    mship_defaults(&m->cfg);
    strcpy(m->cluster, cfg->cluster);
    u64map_init(&m->by_id);
    m->seeds = seeds_copy(cfg->seeds, cfg->seed_count);
    m->cfg.seeds = (const char *const *)m->seeds;
    m->self = m->seeds ? member_insert(m, cfg->name, cfg->address, cfg->incarnation,
                                      m->cfg.weight, now)
                       : NULL;
    if (m->self == NULL) {
        mship_free(m);
        return HERD_ENOMEM;
    }
    m->next_heartbeat = m->next_hello = now;
    mship__identity_init(m);
    *out = m;
    return 0;
}

void mship_free(mship_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->member_count; i++)
        free(m->members[i]);
    free(m->members);
    seeds_free(m->seeds, m->cfg.seed_count);
    u64map_fini(&m->by_id);
    free(m);
}

int mship_set_seeds(mship_t *m, const char *const *seeds, size_t count)
{
    if (seeds_check(seeds, count) != 0)
        return HERD_EINVAL;
    char **copy = seeds_copy(seeds, count);
    if (copy == NULL)
        return HERD_ENOMEM;
    seeds_free(m->seeds, m->cfg.seed_count);
    m->seeds = copy;
    m->cfg.seeds = (const char *const *)copy;
    m->cfg.seed_count = count;
    m->next_hello = 0; /* a new seed hears HELLO at the next tick */
    return 0;
}

size_t mship_seed_count(const mship_t *m)
{
    return m->cfg.seed_count;
}

/* ---- time passes ------------------------------------------------------------ */

static void mship_judge(mship_t *m, uint64_t now, mship_effects_t *out)
{
    for (size_t i = 0; i < m->member_count;) {
        mship_member_t *x = m->members[i];
        uint64_t silent = now - x->last_heard;
        if (x == m->self) {
            i++;
            continue;
        }
        if ((x->state == MEMBER_DOWN || x->state == MEMBER_LEFT) &&
            now - x->state_since >= m->cfg.forget_ms) {
            member_forget(m, x, MSHIP_GONE_FORGOTTEN, out);
            continue; /* the next member moved into slot i */
        }
        /* a draining member already left the ring: no suspect stage for it */
        if (x->state == MEMBER_UP && silent >= m->cfg.suspect_ms)
            member_set_state(x, MEMBER_SUSPECT, now, out);
        if ((x->state == MEMBER_SUSPECT || x->state == MEMBER_DRAINING) &&
            silent >= m->cfg.down_ms)
            member_set_state(x, MEMBER_DOWN, now, out);
        i++;
    }
    for (size_t i = 0; i < m->candidate_count;) {
        if (now - m->candidates[i].since >= 2ull * m->cfg.down_ms)
            m->candidates[i] = m->candidates[--m->candidate_count];
        else
            i++;
    }
}

static int member_alive(const mship_member_t *x)
{
    return x->state == MEMBER_UP || x->state == MEMBER_SUSPECT || x->state == MEMBER_DRAINING;
}

void mship_link_report(mship_t *m, const char *name, mship_link_t link, uint64_t now,
                       mship_effects_t *out)
{
    long i = member_search(m, name);
    mship_member_t *x = i >= 0 ? m->members[i] : NULL;
    if (x == NULL || x == m->self)
        return;
    if (link == MSHIP_LINK_OK) {
        x->link_verdict_at = 0;
        return;
    }
    if (link == MSHIP_LINK_REFUSED && x->link_verdict_at == 0) {
        x->link_verdict_at = now ? now : 1;
        if (member_alive(x)) {
            herd_log(HERD_LOG_INFO, "membership",
                     "%s: its connection closed and reconnecting was refused", x->name);
            member_set_state(x, MEMBER_DOWN, now, out);
        }
        return;
    }
    if (member_alive(x) && now - x->last_heard >= 2ull * m->cfg.heartbeat_ms) {
        herd_log(HERD_LOG_INFO, "membership", "%s: its connection closed and it is silent",
                 x->name);
        member_set_state(x, MEMBER_DOWN, now, out);
    }
}

/* A seed is worth a HELLO while no live member answers at its address. */
static int seed_is_joined(const mship_t *m, const char *address)
{
    for (size_t i = 0; i < m->member_count; i++) {
        const mship_member_t *x = m->members[i];
        if (strcmp(x->address, address) == 0 &&
            (x == m->self || x->state == MEMBER_UP || x->state == MEMBER_DRAINING ||
             x->state == MEMBER_SUSPECT))
            return 1;
    }
    return 0;
}

static int mship_heartbeat(mship_t *m, mship_effects_t *out)
{
    int rc = 0;
    for (size_t i = 0; i < m->member_count && rc == 0; i++) {
        const mship_member_t *x = m->members[i];
        if (x == m->self || x->state == MEMBER_LEFT)
            continue;
        rc = mship__send(m, out, x->address, x->id, x->incarnation, FRAME_HEARTBEAT);
        /* A silent member may have restarted: it is also asked with a HELLO
         * to no incarnation in particular, which a new start at that
         * address answers too. */
        if (rc == 0 && (x->state == MEMBER_SUSPECT || x->state == MEMBER_DOWN))
            rc = mship__send(m, out, x->address, x->id, 0, FRAME_HELLO);
    }
    for (size_t i = 0; i < m->candidate_count && rc == 0; i++) {
        const mship_candidate_t *c = &m->candidates[i];
        rc = mship__send(m, out, c->address, herd_node_id_of(c->name), c->incarnation,
                       FRAME_HEARTBEAT);
    }
    return rc;
}

int mship_tick(mship_t *m, uint64_t now, mship_effects_t *out)
{
    if (m->self->state == MEMBER_LEFT || m->identity == MSHIP_ID_REFUSED)
        return 0;
    m->self->last_heard = now;
    mship_judge(m, now, out);
    mship__probe_tick(m, now, out);
    int rc = 0;
    if (now >= m->next_heartbeat) {
        m->next_heartbeat = now + m->cfg.heartbeat_ms;
        rc = mship_heartbeat(m, out);
    }
    /* A suspect is also asked directly, every tick: it answers a HELLO at once,
     * so a few lost heartbeats in a row do not turn into a false "down". */
    for (size_t i = 0; i < m->member_count && rc == 0; i++) {
        const mship_member_t *x = m->members[i];
        if (x->state == MEMBER_SUSPECT)
            rc = mship__send(m, out, x->address, x->id, 0, FRAME_HELLO);
    }
    if (rc == 0 && now >= m->next_hello && !mship__joining_paused(m)) {
        m->next_hello = now + m->cfg.heartbeat_ms;
        for (size_t i = 0; i < m->cfg.seed_count && rc == 0; i++)
            if (!seed_is_joined(m, m->seeds[i]))
                rc = mship__send(m, out, m->seeds[i], 0, 0, FRAME_HELLO);
    }
    return rc;
}

/* ---- frames arrive ---------------------------------------------------------- */

/* The sender part of a body; *why on failure. */
static int decode_sender(wire_reader_t *r, const frame_header_t *h, mship_beat_t *b, int full,
                         frame_reject_t *why)
{
    int services_bad = 0;
    wire_get_str(r, b->cluster, sizeof(b->cluster));
    wire_get_str(r, b->name, sizeof(b->name));
    if (full) {
        wire_get_str(r, b->address, sizeof(b->address));
        b->weight = wire_get_u32(r);
        b->state = wire_get_u8(r);
        if (r->err == 0)
            services_bad = svclist_get(r, &b->services) != 0;
    }
    *why = FRAME_REJECT_BODY;
    if ((r->err && !services_bad) || herd_ring_check_name(b->name) != 0 ||
        herd_node_id_of(b->name) != h->sender)
        return HERD_EBADFRAME;
    if (full && (b->address[0] == '\0' || b->weight == 0 || b->weight > HERD_RING_MAX_WEIGHT ||
                 (b->state != MEMBER_UP && b->state != MEMBER_DRAINING)))
        return HERD_EBADFRAME;
    if (services_bad) {
        *why = FRAME_REJECT_SERVICES; /* counted and logged by the caller */
        return HERD_EBADFRAME;
    }
    return 0;
}

/* What one gossip entry says about a member we may or may not know. */
static void mship_gossip_entry(mship_t *m, uint64_t now, const char *name, const char *address,
                               uint64_t incarnation, uint8_t status, mship_effects_t *out)
{
    if (strcmp(name, m->self->name) == 0)
        return;
    mship_member_t *x = (mship_member_t *)mship_find(m, name);
    if (x && incarnation < x->incarnation)
        return; /* old news */
    if (x && incarnation > x->incarnation) {
        /* it restarted: the incarnation we knew is dead */
        member_forget(m, x, MSHIP_GONE_RESTARTED, out);
        x = NULL;
    }
    if (status == GOSSIP_LEFT) {
        if (x)
            member_set_state(x, MEMBER_LEFT, now, out);
        return;
    }
    if (x != NULL)
        return;
    const mship_candidate_t *c = candidate_note(m, name, address, incarnation, now);
    if (c && status == GOSSIP_ALIVE)
        prompt_candidate(m, now, c, out);
}

/* The next gossip entry into *g: 0, or HERD_EBADFRAME when it does not
 * decode or breaks a rule (an empty address, an unknown status). */
static int gossip_next(wire_reader_t *r, mship_gossip_t *g)
{
    wire_get_str(r, g->name, sizeof(g->name));
    wire_get_str(r, g->address, sizeof(g->address));
    g->incarnation = wire_get_u64(r);
    wire_get_u32(r); /* weight: learned from the member itself */
    g->status = wire_get_u8(r);
    if (r->err || herd_ring_check_name(g->name) != 0 || g->address[0] == '\0' ||
        g->status > GOSSIP_DOWN)
        return HERD_EBADFRAME;
    return 0;
}

/* Check a whole gossip list before anything in it is used (r is a copy):
 * every entry decodes, nothing follows it, and the sender's own entry
 * agrees with its authenticated header (this start, alive): a body that
 * says its own sender restarted or left speaks for another start. *own
 * gets the entry about this node's name, if any (*has_own). */
static int gossip_check(const mship_t *m, const frame_header_t *h, const char *sender,
                        wire_reader_t r, mship_gossip_t *own, int *has_own,
                        frame_reject_t *why)
{
    mship_gossip_t g;
    uint16_t n = wire_get_u16(&r);
    *why = FRAME_REJECT_BODY;
    *has_own = 0;
    for (uint16_t i = 0; i < n; i++) {
        if (gossip_next(&r, &g) != 0)
            return HERD_EBADFRAME;
        if (strcmp(g.name, sender) == 0 &&
            (g.incarnation != h->sender_inc || g.status != GOSSIP_ALIVE)) {
            *why = FRAME_REJECT_SENDER;
            return HERD_EBADFRAME;
        }
        if (strcmp(g.name, m->self->name) == 0) {
            *own = g;
            *has_own = 1;
        }
    }
    return wire_reader_done(&r);
}

/* Take in a gossip list that gossip_check passed. */
static void mship_read_gossip(mship_t *m, uint64_t now, wire_reader_t *r, mship_effects_t *out)
{
    mship_gossip_t g;
    uint16_t n = wire_get_u16(r);
    for (uint16_t i = 0; i < n && gossip_next(r, &g) == 0; i++)
        mship_gossip_entry(m, now, g.name, g.address, g.incarnation, g.status, out);
}

/* A live frame from the member itself: it exists, at this incarnation.
 * *fresh: it was not in the table (and has been sent a heartbeat). */
static mship_member_t *mship_heard(mship_t *m, uint64_t now, const frame_header_t *h,
                                   const mship_beat_t *b, mship_effects_t *out, int *fresh)
{
    mship_member_t *x = (mship_member_t *)mship_find(m, b->name);
    if (x && h->sender_inc < x->incarnation)
        return NULL; /* a frame from an incarnation that is dead */
    if (x && h->sender_inc > x->incarnation) {
        member_forget(m, x, MSHIP_GONE_RESTARTED, out);
        x = NULL;
    }
    if (x == NULL) {
        x = member_insert(m, b->name, b->address, h->sender_inc, b->weight, now);
        if (x == NULL)
            return NULL;
        candidate_drop(m, b->name);
        x->state = (mship_state_t)b->state;
        x->services = b->services;
        x->last_seq = h->seq;
        emit_member(out, x, MEMBER_ABSENT, x->state, MSHIP_GONE_NONE);
        herd_log(HERD_LOG_INFO, "membership", "%s joined at %s (incarnation %llu)", x->name,
                 x->address, (unsigned long long)x->incarnation);
        mship__send(m, out, x->address, x->id, x->incarnation, FRAME_HEARTBEAT);
        *fresh = 1;
        return x;
    }
    if (x->state == MEMBER_LEFT)
        return NULL;
    x->last_heard = now;
    /* Frames may arrive reordered (the replay window accepts them): an older
     * frame proves liveness but must not undo what a newer one said. */
    if (h->seq <= x->last_seq)
        return x;
    x->last_seq = h->seq;
    strcpy(x->address, b->address);
    if (x->weight != b->weight) {
        x->weight = b->weight;
        out->ring_changed = 1;
        emit_member(out, x, x->state, x->state, MSHIP_GONE_NONE);
    }
    if (!svclist_equal(&x->services, &b->services)) {
        x->services = b->services;
        herd_log(HERD_LOG_INFO, "membership", "%s now provides %u services", x->name,
                 (unsigned)x->services.count);
        emit_member(out, x, x->state, x->state, MSHIP_GONE_NONE);
    }
    member_set_state(x, (mship_state_t)b->state, now, out);
    return x;
}

static int mship_on_leave(mship_t *m, uint64_t now, const frame_header_t *h, wire_reader_t *r,
                          mship_effects_t *out, frame_reject_t *why)
{
    mship_beat_t b = {0};
    if (decode_sender(r, h, &b, 0, why) || wire_reader_done(r))
        return HERD_EBADFRAME;
    if (strcmp(b.cluster, m->cluster) != 0) {
        *why = FRAME_REJECT_CLUSTER;
        return HERD_EBADFRAME;
    }
    mship_member_t *x = (mship_member_t *)mship_find(m, b.name);
    if (x && x != m->self && x->incarnation == h->sender_inc)
        member_set_state(x, MEMBER_LEFT, now, out);
    return 0;
}

/* A heartbeat (addressed to this start) from another node: it is alive
 * now, and what it says of itself and of the others is taken in, unless it
 * is new here while this node's own name is in question. */
static int mship_on_heartbeat(mship_t *m, uint64_t now, const frame_header_t *h,
                              const mship_beat_t *b, wire_reader_t *r, mship_effects_t *out,
                              frame_reject_t *why)
{
    mship_gossip_t own;
    int has_own;
    if (gossip_check(m, h, b->name, *r, &own, &has_own, why) != 0)
        return HERD_EBADFRAME;
    if (has_own)
        mship__own_gossip(m, now, &own, out);
    const mship_member_t *known = mship_find(m, b->name);
    if ((known == NULL || h->sender_inc > known->incarnation) &&
        !mship__may_admit(m, now, b->name))
        return 0;
    int fresh = 0;
    mship_heard(m, now, h, b, out, &fresh);
    if (fresh)
        mship__admitted(m, b->name);
    mship_read_gossip(m, now, r, out);
    return 0;
}

int mship_receive(mship_t *m, uint64_t now, const frame_header_t *h, const uint8_t *body,
                  size_t len, mship_effects_t *out, frame_reject_t *why)
{
    wire_reader_t r;
    wire_reader_init(&r, body, len);
    *why = FRAME_REJECT_BODY;
    if (m->self->state == MEMBER_LEFT || m->identity == MSHIP_ID_REFUSED)
        return 0;
    if (h->type == FRAME_LEAVE)
        return mship_on_leave(m, now, h, &r, out, why);
    if (h->type != FRAME_HELLO && h->type != FRAME_HEARTBEAT)
        return HERD_EBADFRAME;
    mship_beat_t b = {0};
    if (decode_sender(&r, h, &b, 1, why))
        return HERD_EBADFRAME;
    if (strcmp(b.cluster, m->cluster) != 0) {
        *why = FRAME_REJECT_CLUSTER;
        herd_log_limited(&m->log_cluster, now, HERD_LOG_WARN, "membership",
                         "refused %s from %s: cluster '%s', not '%s'",
                         frame_type_name(h->type), b.name, b.cluster, m->cluster);
        return HERD_EBADFRAME;
    }
    if (strcmp(b.name, m->self->name) == 0)
        return mship__on_own_name(m, now, h, &b, out, why);
    if (h->type == FRAME_HELLO)
        return mship__on_hello(m, now, h, &b, out, why);
    return mship_on_heartbeat(m, now, h, &b, &r, out, why);
}

/* ---- this node's own state --------------------------------------------------- */

int mship_set_draining(mship_t *m, int on, uint64_t now, mship_effects_t *out)
{
    if (m->self->state == MEMBER_LEFT)
        return HERD_EINVAL;
    mship_state_t to = on ? MEMBER_DRAINING : MEMBER_UP;
    if (m->self->state == to)
        return 0;
    member_set_state(m->self, to, now, out);
    out->ring_changed = 1;
    m->next_heartbeat = now; /* tell everybody at the next tick */
    return 0;
}

void mship_set_services(mship_t *m, const herd_service_list_t *l, uint64_t now,
                        mship_effects_t *out)
{
    if (svclist_equal(&m->self->services, l))
        return;
    m->self->services = *l;
    emit_member(out, m->self, m->self->state, m->self->state, MSHIP_GONE_NONE);
    m->next_heartbeat = now; /* tell everybody at the next tick */
}

int mship_leave(mship_t *m, uint64_t now, mship_effects_t *out)
{
    if (m->self->state == MEMBER_LEFT)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < m->member_count && rc == 0; i++) {
        const mship_member_t *x = m->members[i];
        if (x != m->self && x->state != MEMBER_LEFT)
            rc = mship__send(m, out, x->address, x->id, x->incarnation, FRAME_LEAVE);
    }
    member_set_state(m->self, MEMBER_LEFT, now, out);
    out->ring_changed = 1;
    return rc;
}

int mship_build_ring(const mship_t *m, herd_ring_t **out)
{
    herd_ring_t *r = herd_ring_new();
    if (r == NULL)
        return HERD_ENOMEM;
    for (size_t i = 0; i < m->member_count; i++) {
        const mship_member_t *x = m->members[i];
        if (!mship_state_in_ring(x->state))
            continue;
        int rc = herd_ring_add(r, x->name, x->weight);
        if (rc) {
            herd_ring_free(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

size_t mship_candidate_count(const mship_t *m)
{
    return m->candidate_count;
}

uint32_t mship_forget_ms(const mship_t *m)
{
    return m->cfg.forget_ms;
}
