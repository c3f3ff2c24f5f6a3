/*
 * simnet.c - the deterministic simulator (simnet.h).
 *
 * Determinism rests on three rules: the splitmix64 stream is the only source
 * of randomness and is drawn in event order; events are ordered by (time,
 * insertion sequence), never by pointer or hash-table order; and every
 * effect of an event is applied before the next event runs. Stale events
 * (a tick or a delivery for a life that has ended) carry the incarnation of
 * the life they belong to and are discarded when it no longer matches.
 */
#include "simnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_runtime.h"

#define SIM_DEFAULT_SECRET "herd-simulation-cluster-secret"
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

typedef enum sim_ev_kind { EV_TICK, EV_DELIVER, EV_ACTION } sim_ev_kind_t;

typedef struct sim_ev {
    uint64_t time, seq;
    sim_ev_kind_t kind;
    int node;      /* TICK: the node; DELIVER: the destination */
    int from;      /* DELIVER: the sender */
    uint64_t life; /* TICK, DELIVER: the node's incarnation when scheduled */
    uint8_t *buf;  /* DELIVER: owned frame */
    size_t len;
    sim_action_t *action; /* ACTION: owned */
} sim_ev_t;

typedef struct sim_recorded {
    uint8_t *buf;
    size_t len;
} sim_recorded_t;

struct simnet {
    simnet_config_t cfg;
    char cluster[MSHIP_CLUSTER_MAX + 1];
    frame_key_t key;
    uint64_t rng, now, next_seq;
    sim_ev_t *heap;
    size_t heap_count, heap_cap;
    sim_node_t nodes[SIM_MAX_NODES];
    int node_count;
    int partitioned;
    int err;
    sim_net_stats_t stats; /* and the trace hashes */
    sim_hooks_t hooks;     /* cfg.hooks */
    /* the recorder: frames node rec_from sent (owned copies) */
    int rec_from;
    sim_recorded_t *rec;
    size_t rec_count, rec_cap;
};

/* ---- randomness and hashing --------------------------------------------- */

uint64_t simnet_random(simnet_t *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t simnet_random_range(simnet_t *s, uint64_t lo, uint64_t hi)
{
    uint64_t r = simnet_random(s);
    return hi <= lo ? lo : lo + r % (hi - lo + 1);
}

static int chance(simnet_t *s, double p)
{
    if (p <= 0.0)
        return 0;
    return (double)(simnet_random(s) >> 11) * 0x1.0p-53 < p;
}

static void fnv_u64(uint64_t *h, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *h = (*h ^ ((v >> (8 * i)) & 0xff)) * FNV_PRIME;
}

static void fnv_str(uint64_t *h, const char *str)
{
    do {
        *h = (*h ^ (unsigned char)*str) * FNV_PRIME;
    } while (*str++);
}

static void note_error(simnet_t *s, int rc)
{
    if (rc < 0 && s->err == 0)
        s->err = rc;
}

/* An array of *cap items holding `count`, with room for one more (NULL when
 * out of memory; the old array is then still valid). */
static void *grow(void *items, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return items;
    size_t n = *cap ? *cap * 2 : 16;
    void *bigger = realloc(items, n * size);
    if (bigger)
        *cap = n;
    return bigger;
}

/* ---- the event queue: a binary heap on (time, seq) ---------------------- */

static int ev_before(const sim_ev_t *a, const sim_ev_t *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static int heap_push(simnet_t *s, sim_ev_t ev)
{
    sim_ev_t *heap = grow(s->heap, &s->heap_cap, s->heap_count, sizeof(*heap));
    if (heap == NULL)
        return HERD_ENOMEM;
    s->heap = heap;
    ev.seq = s->next_seq++;
    size_t i = s->heap_count++;
    while (i > 0 && ev_before(&ev, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = ev;
    return 0;
}

static sim_ev_t heap_pop(simnet_t *s)
{
    sim_ev_t top = s->heap[0];
    sim_ev_t last = s->heap[--s->heap_count];
    size_t i = 0, n = s->heap_count;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ev_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

static void ev_free(sim_ev_t *ev)
{
    free(ev->buf);
    free(ev->action);
}

/* ---- lifecycle ---------------------------------------------------------- */

int simnet_new(const simnet_config_t *cfg, simnet_t **out)
{
    const char *secret = cfg->secret ? cfg->secret : SIM_DEFAULT_SECRET;
    const char *cluster = cfg->cluster ? cfg->cluster : "sim";
    if (strlen(cluster) == 0 || strlen(cluster) > MSHIP_CLUSTER_MAX ||
        cfg->net.delay_max < cfg->net.delay_min)
        return HERD_EINVAL;
    simnet_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HERD_ENOMEM;
    int rc = frame_key_from_secret(&s->key, secret, strlen(secret));
    if (rc) {
        free(s);
        return rc;
    }
    s->cfg = *cfg;
    if (s->cfg.tick_ms == 0)
        s->cfg.tick_ms = 20;
    if (s->cfg.stop_after_leave_ms == 0)
        s->cfg.stop_after_leave_ms = 100;
    strcpy(s->cluster, cluster);
    s->cfg.cluster = s->cluster;
    s->cfg.secret = NULL;
    if (cfg->hooks)
        s->hooks = *cfg->hooks;
    s->cfg.hooks = NULL;
    s->rng = cfg->seed;
    s->rec_from = -1;
    s->stats.trace_hash = s->stats.net_hash = FNV_OFFSET;
    *out = s;
    return 0;
}

static void node_stop_life(simnet_t *s, int i)
{
    sim_node_t *n = &s->nodes[i];
    mship_free(n->mship);
    n->mship = NULL;
    n->peer_count = 0;
}

void simnet_free(simnet_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->heap_count; i++)
        ev_free(&s->heap[i]);
    free(s->heap);
    for (int i = 0; i < s->node_count; i++) {
        sim_node_t *n = &s->nodes[i];
        node_stop_life(s, i);
        free(n->peers);
        free(n->tracked);
        free(n->log);
    }
    simnet_record(s, -1);
    free(s);
}

/* ---- nodes -------------------------------------------------------------- */

int simnet_find(const simnet_t *s, const char *name)
{
    for (int i = 0; i < s->node_count; i++)
        if (strcmp(s->nodes[i].name, name) == 0)
            return i;
    return -1;
}

static int find_address(const simnet_t *s, const char *address)
{
    for (int i = 0; i < s->node_count; i++)
        if (strcmp(s->nodes[i].address, address) == 0)
            return i;
    return -1;
}

int simnet_add_node(simnet_t *s, const sim_node_config_t *cfg)
{
    int rc = herd_ring_check_name(cfg->name);
    if (rc)
        return rc;
    if (s->node_count == SIM_MAX_NODES)
        return HERD_ERANGE;
    if ((simnet_find(s, cfg->name) >= 0 && cfg->address == NULL) ||
        (cfg->address && (find_address(s, cfg->address) >= 0 ||
                          strlen(cfg->address) == 0 || strlen(cfg->address) > MSHIP_ADDR_MAX)))
        return HERD_EEXIST;
    const char *cluster = cfg->cluster ? cfg->cluster : s->cluster;
    if (strlen(cluster) == 0 || strlen(cluster) > MSHIP_CLUSTER_MAX ||
        cfg->seed_count > SIM_MAX_NODES)
        return HERD_EINVAL;
    for (size_t k = 0; k < cfg->seed_count; k++)
        if ((rc = herd_ring_check_name(cfg->seeds[k])) != 0)
            return rc;
    sim_node_t *n = &s->nodes[s->node_count];
    memset(n, 0, sizeof(*n));
    if (cfg->secret)
        rc = frame_key_from_secret(&n->key, cfg->secret, strlen(cfg->secret));
    else
        n->key = s->key;
    if (rc)
        return rc;
    for (size_t k = 0; k < cfg->seed_count; k++)
        snprintf(n->seeds[k], sizeof(n->seeds[k]), "%s%s", SIM_ADDR_PREFIX,
                 cfg->seeds[k]);
    n->seed_count = cfg->seed_count;
    strcpy(n->name, cfg->name);
    if (cfg->address)
        snprintf(n->address, sizeof(n->address), "%s", cfg->address);
    else
        snprintf(n->address, sizeof(n->address), "%s%s", SIM_ADDR_PREFIX, cfg->name);
    strcpy(n->cluster, cluster);
    n->id = herd_node_id_of(cfg->name);
    n->weight = cfg->weight;
    n->observed = 1;
    return s->node_count++;
}

int simnet_node_count(const simnet_t *s)
{
    return s->node_count;
}

sim_node_t *simnet_node(const simnet_t *s, int i)
{
    return i >= 0 && i < s->node_count ? (sim_node_t *)&s->nodes[i] : NULL;
}

static sim_peer_t *peer_get(sim_node_t *n, uint64_t id, int create)
{
    for (size_t i = 0; i < n->peer_count; i++)
        if (n->peers[i].id == id)
            return &n->peers[i];
    if (!create)
        return NULL;
    sim_peer_t *peers = grow(n->peers, &n->peer_cap, n->peer_count, sizeof(*peers));
    if (peers == NULL)
        return NULL;
    n->peers = peers;
    sim_peer_t *p = &n->peers[n->peer_count++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    return p;
}

static int is_running(const simnet_t *s, int i)
{
    return i >= 0 && i < s->node_count && s->nodes[i].status == SIM_NODE_RUNNING;
}

int simnet_live(const simnet_t *s, int i)
{
    return is_running(s, i) && mship_self(s->nodes[i].mship)->state != MEMBER_LEFT;
}

static int blocked(const simnet_t *s, int a, int b)
{
    return s->partitioned && s->nodes[a].group != s->nodes[b].group;
}

/* ---- the network -------------------------------------------------------- */

static void schedule_delivery(simnet_t *s, int from, int to, uint8_t *buf, size_t len)
{
    const sim_net_params_t *p = &s->cfg.net;
    sim_ev_t ev = {.kind = EV_DELIVER, .node = to, .from = from, .buf = buf, .len = len};
    ev.time = s->now + simnet_random_range(s, p->delay_min, p->delay_max);
    ev.life = s->nodes[to].incarnation;
    int rc = heap_push(s, ev);
    if (rc) {
        free(buf);
        note_error(s, rc);
    }
}

/* ---- links (simnet.h, Links) ------------------------------------------- */

/* A refusal comes 0-11 ms after the close: nanomsg's immediate reconnect,
 * or its first retry (10 ms) when that reconnect reached the dying port. */
static uint64_t refusal_time(simnet_t *s)
{
    uint64_t at = s->now + simnet_random_range(s, 0, 11);
    return at ? at : 1;
}

/* How a link stands now; a closed link whose reconnect is due is open again. */
static mship_link_t link_state(const simnet_t *s, sim_link_t *l)
{
    if (l->closed && l->reopen_at && s->now >= l->reopen_at) {
        l->closed = 0;
        l->refused_at = l->reopen_at = 0;
    }
    if (!l->established || !l->closed)
        return MSHIP_LINK_OK;
    return l->refused_at && s->now >= l->refused_at ? MSHIP_LINK_REFUSED : MSHIP_LINK_CLOSED;
}

mship_link_t simnet_link(simnet_t *s, int node, int peer)
{
    if (!is_running(s, node) || peer < 0 || peer >= s->node_count)
        return MSHIP_LINK_OK;
    return link_state(s, &s->nodes[node].links[peer]);
}

/* A killed node: the link of every running node to it closes, and is refused. */
static void links_close_to(simnet_t *s, int dead)
{
    for (int i = 0; i < s->node_count; i++) {
        sim_link_t *l = &s->nodes[i].links[dead];
        if (i == dead || !is_running(s, i) || !l->established)
            continue;
        l->closed = 1;
        l->refused_at = refusal_time(s);
        l->reopen_at = 0;
    }
}

/* A node starts: its own links are new, and those to it that wait for it
 * reconnect within nanomsg's longest retry interval. */
static void links_on_start(simnet_t *s, int node)
{
    memset(s->nodes[node].links, 0, sizeof(s->nodes[node].links));
    for (int i = 0; i < s->node_count; i++) {
        sim_link_t *l = &s->nodes[i].links[node];
        if (i != node && l->closed && l->reopen_at == 0)
            l->reopen_at = s->now + simnet_random_range(s, 1, 100);
    }
}

static int link_cut(simnet_t *s, const sim_action_t *a)
{
    if (!is_running(s, a->node) || a->peer < 0 || a->peer >= s->node_count ||
        a->peer == a->node)
        return HERD_EINVAL;
    sim_link_t *l = &s->nodes[a->node].links[a->peer];
    l->established = 1;
    l->closed = 1;
    l->refused_at = a->link_refused ? refusal_time(s) : 0;
    l->reopen_at = a->link_ms ? s->now + a->link_ms : 0;
    return 0;
}

/* Tell node i's membership how its link to each member stands. */
static void report_links(simnet_t *s, int i, mship_effects_t *fx)
{
    sim_node_t *n = &s->nodes[i];
    const mship_member_t *self = mship_self(n->mship);
    for (size_t k = 0; k < mship_member_count(n->mship); k++) {
        const mship_member_t *x = mship_member_at(n->mship, k);
        int peer = x == self || x->state == MEMBER_LEFT ? -1 : find_address(s, x->address);
        if (peer < 0)
            continue;
        char name[HERD_RING_NAME_MAX + 1];
        strcpy(name, x->name);
        mship_link_report(n->mship, name, link_state(s, &n->links[peer]), s->now, fx);
    }
}

/* A frame the network carries: dropped, or delivered in one or two copies. */
static void carry(simnet_t *s, int from, int to, uint8_t *buf, size_t len)
{
    if (chance(s, s->cfg.net.p_drop)) {
        s->stats.dropped++;
        free(buf);
        return;
    }
    if (chance(s, s->cfg.net.p_dup)) {
        uint8_t *copy = malloc(len);
        if (copy) {
            memcpy(copy, buf, len);
            s->stats.duplicated++;
            schedule_delivery(s, from, to, copy, len);
        }
    }
    schedule_delivery(s, from, to, buf, len);
}

/* The network's verdict on one frame: lost on the way, or carried. */
static void route(simnet_t *s, int from, const char *address, uint8_t *buf, size_t len)
{
    int to = find_address(s, address);
    if (to < 0) {
        s->stats.unroutable++;
    } else if (!is_running(s, to)) {
        s->stats.lost++;
        s->nodes[from].stats.sent_lost++;
    } else if (blocked(s, from, to)) {
        s->stats.blocked++;
    } else if (link_state(s, &s->nodes[from].links[to]) != MSHIP_LINK_OK) {
        s->stats.link_closed++;
    } else {
        s->nodes[from].links[to].established = 1;
        carry(s, from, to, buf, len);
        return;
    }
    free(buf);
}

/* Keep a copy of a frame for the recorder, if it records `from`. */
static void record(simnet_t *s, int from, const uint8_t *buf, size_t len)
{
    if (from != s->rec_from || s->rec_count == SIM_RECORD_MAX)
        return;
    sim_recorded_t *rec = grow(s->rec, &s->rec_cap, s->rec_count, sizeof(*rec));
    uint8_t *copy = rec ? malloc(len) : NULL;
    if (copy == NULL) {
        note_error(s, HERD_ENOMEM);
        return;
    }
    s->rec = rec;
    memcpy(copy, buf, len);
    s->rec[s->rec_count++] = (sim_recorded_t){copy, len};
}

int simnet_send(simnet_t *s, int from, const char *address, uint64_t to, uint64_t to_inc,
                uint8_t type, const uint8_t *body, size_t len)
{
    if (!is_running(s, from))
        return HERD_EINVAL;
    sim_node_t *n = &s->nodes[from];
    frame_header_t h = {.type = type,
                        .sender = n->id,
                        .sender_inc = n->incarnation,
                        .receiver = to,
                        .receiver_inc = to_inc,
                        .hlc = hlc_now(&n->hlc, s->now),
                        .seq = ++n->seq,
                        .length = (uint32_t)len};
    size_t cap = frame_size(len);
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return HERD_ENOMEM;
    int rc = frame_encode(&n->key, &h, body, len, buf, cap);
    if (rc) {
        free(buf);
        return rc;
    }
    n->stats.sent++;
    s->stats.sent++;
    record(s, from, buf, cap);
    route(s, from, address, buf, cap);
    return 0;
}

/* ---- the recorder ------------------------------------------------------- */

int simnet_record(simnet_t *s, int from)
{
    for (size_t i = 0; i < s->rec_count; i++)
        free(s->rec[i].buf);
    free(s->rec);
    s->rec = NULL;
    s->rec_count = s->rec_cap = 0;
    s->rec_from = -1;
    if (from < -1 || from >= s->node_count)
        return HERD_EINVAL;
    s->rec_from = from;
    return 0;
}

size_t simnet_recorded(const simnet_t *s, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < s->rec_count; i++)
        n += type == 0 || s->rec[i].buf[5] == type; /* the header's type byte */
    return n;
}

int simnet_replay(simnet_t *s, int to, uint64_t spread_ms)
{
    if (!is_running(s, to) || s->rec_from < 0)
        return HERD_EINVAL;
    for (size_t i = 0; i < s->rec_count; i++) {
        uint8_t *copy = malloc(s->rec[i].len);
        if (copy == NULL)
            return HERD_ENOMEM;
        memcpy(copy, s->rec[i].buf, s->rec[i].len);
        sim_ev_t ev = {.kind = EV_DELIVER, .node = to, .from = s->rec_from, .buf = copy,
                       .len = s->rec[i].len, .life = s->nodes[to].incarnation};
        ev.time = s->now + simnet_random_range(s, 0, spread_ms);
        int rc = heap_push(s, ev);
        if (rc) {
            free(copy);
            return rc;
        }
    }
    return (int)s->rec_count;
}

/* ---- effects ------------------------------------------------------------ */

static void log_member(simnet_t *s, int i, const mship_effect_t *e)
{
    sim_node_t *n = &s->nodes[i];
    sim_mevent_t *log = grow(n->log, &n->log_cap, n->log_count, sizeof(*log));
    if (log == NULL) {
        note_error(s, HERD_ENOMEM);
        return;
    }
    n->log = log;
    sim_mevent_t *ev = &n->log[n->log_count++];
    memset(ev, 0, sizeof(*ev));
    ev->time = s->now;
    ev->observer_inc = n->incarnation;
    strcpy(ev->name, e->name);
    ev->incarnation = e->incarnation;
    ev->old_state = e->old_state;
    ev->new_state = e->new_state;
    ev->gone = e->gone;
    const sim_peer_t *p = peer_get(n, herd_node_id_of(e->name), 0);
    ev->last_rx = p ? p->last_rx : 0;
    uint64_t *h = &s->stats.trace_hash;
    fnv_u64(h, (uint64_t)i);
    fnv_u64(h, ev->time);
    fnv_str(h, ev->name);
    fnv_u64(h, ev->incarnation);
    fnv_u64(h,
            ((uint64_t)ev->old_state << 16) | ((uint64_t)ev->new_state << 8) | ev->gone);
    if (s->hooks.on_member)
        s->hooks.on_member(s, i, ev, s->hooks.data);
}

/* Carry out and forget the effects a state machine call returned. */
static void apply_effects(simnet_t *s, int i, mship_effects_t *fx)
{
    simnet__check_call(s, i, fx);
    for (size_t k = 0; k < fx->count; k++) {
        const mship_effect_t *e = &fx->items[k];
        if (e->kind == MSHIP_SEND)
            note_error(s, simnet_send(s, i, e->address, e->to, e->to_inc, e->type,
                                      e->body, e->len));
        else
            log_member(s, i, e);
    }
    if (fx->ring_changed) {
        s->nodes[i].stats.ring_changes++;
        if (s->hooks.on_ring)
            s->hooks.on_ring(s, i, s->hooks.data);
    }
    mship_effects_clear(fx);
}

/* ---- delivery ----------------------------------------------------------- */

/* Run an accepted frame through the state machine it belongs to; 1 when the
 * state machine took it, 0 when it refused it (counted). */
static int dispatch_frame(simnet_t *s, int i, const frame_header_t *h,
                          const uint8_t *body)
{
    sim_node_t *n = &s->nodes[i];
    frame_reject_t why = FRAME_OK;
    int rc;
    if (h->type == FRAME_HELLO || h->type == FRAME_HEARTBEAT || h->type == FRAME_LEAVE) {
        mship_effects_t fx;
        mship_effects_init(&fx);
        rc = mship_receive(n->mship, s->now, h, body, h->length, &fx, &why);
        apply_effects(s, i, &fx);
        mship_effects_fini(&fx);
    } else if (s->hooks.on_frame) {
        rc = s->hooks.on_frame(s, i, h, body, h->length, &why, s->hooks.data);
    } else {
        rc = HERD_EBADFRAME;
        why = FRAME_REJECT_TYPE;
    }
    if (rc == HERD_EBADFRAME && why > FRAME_OK && why < FRAME_REJECT_COUNT)
        n->stats.rejects[why]++;
    else
        note_error(s, rc);
    return rc == 0;
}

/* As the transport adapter (runtime/cluster.c): a frame names this node at
 * its current incarnation, or it is a HELLO naming no incarnation (to a seed:
 * no receiver either). */
static int addressed_here(const simnet_t *s, const sim_node_t *n, const frame_header_t *h)
{
    if (h->receiver == n->id && (h->receiver_inc == n->incarnation || s->cfg.lenient_receiver))
        return 1;
    return h->type == FRAME_HELLO && h->receiver_inc == 0 &&
           (h->receiver == 0 || h->receiver == n->id);
}

/* The sender's replay window, as cluster.c: a HELLO never moves it to a new
 * incarnation. */
static int window_accepts(sim_peer_t *p, const frame_header_t *h)
{
    if (h->type == FRAME_HELLO)
        return replay_accept_hello(&p->window, h->sender_inc, h->seq);
    return replay_accept(&p->window, h->sender_inc, h->seq);
}

static void deliver(simnet_t *s, const sim_ev_t *ev)
{
    sim_node_t *n = &s->nodes[ev->node];
    if (!is_running(s, ev->node) || n->incarnation != ev->life) {
        s->stats.lost++;
        return;
    }
    if (blocked(s, ev->from, ev->node)) {
        s->stats.blocked++;
        return;
    }
    s->stats.delivered++;
    fnv_u64(&s->stats.net_hash, s->now);
    fnv_u64(&s->stats.net_hash, ((uint64_t)ev->from << 32) | (uint64_t)ev->node);
    fnv_u64(&s->stats.net_hash, ev->len);
    frame_header_t h;
    const uint8_t *body;
    frame_reject_t why = FRAME_OK;
    if (frame_decode(&n->key, ev->buf, ev->len, FRAME_DEFAULT_MAX_BODY, &h, &body,
                     &why)) {
        n->stats.rejects[why < FRAME_REJECT_COUNT ? why : FRAME_OK]++;
        return;
    }
    if (!addressed_here(s, n, &h)) {
        n->stats.misaddressed++; /* counted as a replay, as cluster.c does */
        n->stats.rejects[FRAME_REJECT_REPLAY]++;
        return;
    }
    sim_peer_t *p = peer_get(n, h.sender, 1);
    if (p == NULL) {
        note_error(s, HERD_ENOMEM);
        return;
    }
    if (!window_accepts(p, &h)) {
        n->stats.rejects[FRAME_REJECT_REPLAY]++;
        return;
    }
    hlc_observe(&n->hlc, s->now, h.hlc);
    n->stats.received++;
    /* hooks may send, which never touches peers, but look it up again */
    if (dispatch_frame(s, ev->node, &h, body) && (p = peer_get(n, h.sender, 0)) != NULL)
        p->last_rx = s->now;
}

static void tick(simnet_t *s, const sim_ev_t *ev)
{
    sim_node_t *n = &s->nodes[ev->node];
    if (!is_running(s, ev->node) || n->incarnation != ev->life)
        return;
    if (s->hooks.on_tick)
        s->hooks.on_tick(s, ev->node, s->hooks.data);
    if (!is_running(s, ev->node) || n->incarnation != ev->life)
        return;
    mship_effects_t fx;
    mship_effects_init(&fx);
    report_links(s, ev->node, &fx);
    apply_effects(s, ev->node, &fx);
    note_error(s, mship_tick(n->mship, s->now, &fx));
    apply_effects(s, ev->node, &fx);
    mship_effects_fini(&fx);
    sim_ev_t next = {.kind = EV_TICK, .node = ev->node, .life = ev->life};
    next.time = s->now + s->cfg.tick_ms;
    note_error(s, heap_push(s, next));
}

/* ---- actions ------------------------------------------------------------ */

static uint64_t next_incarnation(simnet_t *s, const sim_node_t *n)
{
    /* as herdd: start time plus random bits, and above any earlier life */
    uint64_t inc = ((s->now + 1) << 16) | (simnet_random(s) & 0xffff);
    return inc > n->incarnation ? inc : n->incarnation + 1;
}

static int node_start(simnet_t *s, int i)
{
    sim_node_t *n = &s->nodes[i];
    if (n->status == SIM_NODE_RUNNING)
        return HERD_EINVAL;
    uint64_t inc = next_incarnation(s, n);
    const char *seeds[SIM_MAX_NODES];
    for (size_t k = 0; k < n->seed_count; k++)
        seeds[k] = n->seeds[k];
    mship_config_t mc = {.cluster = n->cluster,
                         .name = n->name,
                         .address = n->address,
                         .incarnation = inc,
                         .weight = n->weight,
                         .seeds = seeds,
                         .seed_count = n->seed_count,
                         .heartbeat_ms = s->cfg.heartbeat_ms,
                         .suspect_ms = s->cfg.suspect_ms,
                         .down_ms = s->cfg.down_ms,
                         .forget_ms = s->cfg.forget_ms};
    int rc = mship_new(&mc, s->now, &n->mship);
    if (rc)
        return rc;
    n->incarnation = inc;
    n->status = SIM_NODE_RUNNING;
    n->seq = 0;
    n->hlc.last = 0;
    n->peer_count = 0;
    links_on_start(s, i);
    simnet__check_start(s, i);
    sim_ev_t ev = {.kind = EV_TICK, .node = i, .life = inc};
    ev.time = s->now + simnet_random_range(s, 0, s->cfg.tick_ms - 1);
    rc = heap_push(s, ev);
    if (rc == 0 && s->hooks.on_start)
        s->hooks.on_start(s, i, s->hooks.data);
    return rc;
}

static int node_end(simnet_t *s, int i, sim_node_status_t status)
{
    if (!is_running(s, i))
        return HERD_EINVAL;
    if (s->hooks.on_stop)
        s->hooks.on_stop(s, i, s->hooks.data);
    node_stop_life(s, i);
    s->nodes[i].status = status;
    return 0;
}

/* mship calls that change this node's own state */
static int node_self_change(simnet_t *s, int i, sim_action_kind_t kind)
{
    if (!is_running(s, i))
        return HERD_EINVAL;
    sim_node_t *n = &s->nodes[i];
    mship_effects_t fx;
    mship_effects_init(&fx);
    int rc;
    if (kind == SIM_ACT_LEAVE)
        rc = mship_leave(n->mship, s->now, &fx);
    else
        rc = mship_set_draining(n->mship, kind == SIM_ACT_DRAIN, s->now, &fx);
    apply_effects(s, i, &fx);
    mship_effects_fini(&fx);
    if (rc == 0 && kind == SIM_ACT_LEAVE) {
        sim_action_t stop = {.kind = SIM_ACT_STOP, .node = i, .life = n->incarnation};
        rc = simnet_schedule(s, s->now + s->cfg.stop_after_leave_ms, &stop);
    }
    return rc;
}

int simnet_apply(simnet_t *s, const sim_action_t *a)
{
    int node_action =
        a->kind != SIM_ACT_PARTITION && a->kind != SIM_ACT_HEAL && a->kind != SIM_ACT_NET;
    if (node_action && (a->node < 0 || a->node >= s->node_count))
        return HERD_EINVAL;
    switch (a->kind) {
    case SIM_ACT_START:
        return node_start(s, a->node);
    case SIM_ACT_CRASH:
        return node_end(s, a->node, SIM_NODE_CRASHED);
    case SIM_ACT_KILL: {
        int rc = node_end(s, a->node, SIM_NODE_CRASHED);
        if (rc == 0)
            links_close_to(s, a->node);
        return rc;
    }
    case SIM_ACT_LINK_CUT:
        return link_cut(s, a);
    case SIM_ACT_STOP:
        if (is_running(s, a->node) && s->nodes[a->node].incarnation == a->life)
            return node_end(s, a->node, SIM_NODE_STOPPED);
        return 0;
    case SIM_ACT_LEAVE:
    case SIM_ACT_DRAIN:
    case SIM_ACT_UNDRAIN:
        return node_self_change(s, a->node, a->kind);
    case SIM_ACT_PARTITION:
        for (int i = 0; i < s->node_count; i++)
            s->nodes[i].group = a->groups[i];
        s->partitioned = 1;
        return 0;
    case SIM_ACT_HEAL:
        s->partitioned = 0;
        return 0;
    case SIM_ACT_NET:
        if (a->net.delay_max < a->net.delay_min)
            return HERD_EINVAL;
        s->cfg.net = a->net;
        return 0;
    }
    return HERD_EINVAL;
}

int simnet_schedule(simnet_t *s, uint64_t at, const sim_action_t *a)
{
    if (at < s->now)
        return HERD_EINVAL;
    sim_action_t *copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return HERD_ENOMEM;
    *copy = *a;
    sim_ev_t ev = {.kind = EV_ACTION, .time = at, .action = copy};
    int rc = heap_push(s, ev);
    if (rc)
        free(copy);
    return rc;
}

/* ---- running ------------------------------------------------------------ */

int simnet_run_until(simnet_t *s, uint64_t t)
{
    while (s->heap_count > 0 && s->heap[0].time <= t) {
        sim_ev_t ev = heap_pop(s);
        s->now = ev.time;
        if (ev.kind == EV_TICK)
            tick(s, &ev);
        else if (ev.kind == EV_DELIVER)
            deliver(s, &ev);
        else
            note_error(s, simnet_apply(s, ev.action));
        ev_free(&ev);
    }
    if (t > s->now)
        s->now = t;
    return s->err;
}

int simnet_run_until_converged(simnet_t *s, uint64_t deadline, uint64_t step,
                               uint64_t *when)
{
    for (;;) {
        int rc = simnet_converged(s, NULL, 0);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (when)
                *when = s->now;
            return 1;
        }
        if (s->now >= deadline)
            return 0;
        uint64_t t = s->now + (step ? step : 1);
        rc = simnet_run_until(s, t < deadline ? t : deadline);
        if (rc)
            return rc;
    }
}

uint64_t simnet_now(const simnet_t *s)
{
    return s->now;
}

int simnet_error(const simnet_t *s)
{
    return s->err;
}

const sim_net_stats_t *simnet_net_stats(const simnet_t *s)
{
    return &s->stats;
}
