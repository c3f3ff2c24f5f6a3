/*
 * regsim.c - full-stack registry simulations (regsim.h).
 */
#include "regsim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "log.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "transport.h"

#define RS_SECRET "regsim-cluster-secret-0123456789"
#define RS_REASONS 8

typedef struct rs_frame {
    uint64_t at, seq;
    int from, to;
    size_t len;
    uint8_t data[];
} rs_frame_t;

typedef struct rs_tp {
    regsim_t *rs;
    int idx;
    transport_stats_t st;
} rs_tp_t;

typedef struct rs_slot {
    regsim_t *rs;
    int idx;
    char name[16];
    char addr[32];
    herd_node_t *node;
    int up, started;
    int group;
    uint32_t blocked_to; /* bit j: frames to node j are dropped */
    int paused;          /* its loop does not run; frames to it wait */
    uint64_t inc;
    unsigned starts;
    rs_tp_t *tp;             /* the transport of the current life */
    transport_recv_cb cb;    /* set by listen */
    void *cb_data;
} rs_slot_t;

struct regsim {
    regsim_config_t cfg;
    regsim_hooks_t hooks;
    uint64_t now;
    uint64_t rng;
    herd_clock_t clock;
    rs_slot_t slots[RS_MAX_NODES];
    /* the event queue: a min-heap by (at, seq) */
    rs_frame_t **heap;
    size_t heap_n, heap_cap;
    uint64_t seq;
    uint64_t trace, shape, delivered;
    rs_proc_t procs[RS_MAX_PROCS];
    int nprocs;
    unsigned exits[RS_REASONS + 1]; /* by reason; [RS_REASONS]: crashes (< 0) */
    regsim_send_hook send_hook;     /* NULL: none */
    void *hook_data;
    int hook_from;
};

/* ---- randomness and hashing ------------------------------------------------- */

uint64_t regsim_random(regsim_t *rs)
{
    uint64_t z = (rs->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t regsim_range(regsim_t *rs, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + regsim_random(rs) % (hi - lo + 1);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_INIT 0xcbf29ce484222325ull

/* ---- the event queue -------------------------------------------------------------- */

static int frame_before(const rs_frame_t *a, const rs_frame_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(regsim_t *rs, rs_frame_t *f)
{
    if (rs->heap_n == rs->heap_cap) {
        size_t cap = rs->heap_cap ? rs->heap_cap * 2 : 256;
        rs_frame_t **h = realloc(rs->heap, cap * sizeof(*h));
        if (h == NULL)
            return HERD_ENOMEM;
        rs->heap = h;
        rs->heap_cap = cap;
    }
    size_t i = rs->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!frame_before(f, rs->heap[p]))
            break;
        rs->heap[i] = rs->heap[p];
        i = p;
    }
    rs->heap[i] = f;
    return 0;
}

static rs_frame_t *heap_pop(regsim_t *rs)
{
    rs_frame_t *top = rs->heap[0];
    rs_frame_t *last = rs->heap[--rs->heap_n];
    size_t i = 0, n = rs->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && frame_before(rs->heap[c + 1], rs->heap[c]))
            c++;
        if (!frame_before(rs->heap[c], last))
            break;
        rs->heap[i] = rs->heap[c];
        i = c;
    }
    if (n > 0)
        rs->heap[i] = last;
    return top;
}

/* ---- the transport ------------------------------------------------------------------ */

static int slot_by_addr(const regsim_t *rs, const char *address)
{
    for (int i = 0; i < rs->cfg.nodes; i++)
        if (strcmp(rs->slots[i].addr, address) == 0)
            return i;
    return -1;
}

static int tp_listen(void *impl, const char *address, transport_recv_cb cb, void *data)
{
    rs_tp_t *tp = impl;
    rs_slot_t *s = &tp->rs->slots[tp->idx];
    if (strcmp(address, s->addr) != 0)
        return HERD_EINVAL;
    s->cb = cb;
    s->cb_data = data;
    return 0;
}

static int enqueue(regsim_t *rs, int from, int to, const uint8_t *frame, size_t len)
{
    rs_frame_t *f = malloc(sizeof(*f) + len);
    if (f == NULL)
        return HERD_ENOMEM;
    f->at = rs->now + regsim_range(rs, rs->cfg.delay_min, rs->cfg.delay_max);
    f->seq = rs->seq++;
    f->from = from;
    f->to = to;
    f->len = len;
    memcpy(f->data, frame, len);
    int rc = heap_push(rs, f);
    if (rc)
        free(f);
    return rc;
}

static int tp_send(void *impl, const char *address, const uint8_t *frame, size_t len)
{
    rs_tp_t *tp = impl;
    regsim_t *rs = tp->rs;
    rs_slot_t *s = &rs->slots[tp->idx];
    int to = slot_by_addr(rs, address);
    if (to < 0)
        return HERD_EINVAL;
    tp->st.frames_out++;
    tp->st.bytes_out += len;
    if (!s->up || s->tp != tp) { /* crashed: nothing leaves any more */
        tp->st.dropped_out++;
        return 0;
    }
    if (rs->slots[to].group != s->group || (s->blocked_to & (1u << to)))
        return 0;
    if (regsim_range(rs, 0, 999) < rs->cfg.drop_pm)
        return 0;
    size_t swapped_len = 0;
    uint8_t *swapped = rs->send_hook && rs->hook_from == tp->idx
                           ? rs->send_hook(rs->hook_data, tp->idx, to, frame, len, &swapped_len)
                           : NULL;
    if (swapped) { /* what the hostile member sends instead */
        frame = swapped;
        len = swapped_len;
    }
    int rc = enqueue(rs, tp->idx, to, frame, len);
    if (rc == 0 && regsim_range(rs, 0, 999) < rs->cfg.dup_pm)
        rc = enqueue(rs, tp->idx, to, frame, len);
    free(swapped);
    return rc;
}

static void tp_forget(void *impl, const char *address)
{
    (void)impl;
    (void)address;
}

static void tp_stats(void *impl, transport_stats_t *out)
{
    rs_tp_t *tp = impl;
    *out = tp->st;
}

static void tp_close(void *impl)
{
    rs_tp_t *tp = impl;
    rs_slot_t *s = &tp->rs->slots[tp->idx];
    if (s->tp == tp) {
        s->cb = NULL;
        s->cb_data = NULL;
        s->tp = NULL;
    }
    free(tp);
}

static const transport_ops_t rs_tp_ops = {
    .listen = tp_listen, .send = tp_send, .forget = tp_forget, .stats = tp_stats,
    .close = tp_close};

/* ---- lifecycle -------------------------------------------------------------------- */

static uint64_t rs_clock(void *data)
{
    return ((regsim_t *)data)->now;
}

int regsim_new(const regsim_config_t *cfg, regsim_t **out)
{
    if (cfg->nodes < 1 || cfg->nodes > RS_MAX_NODES)
        return HERD_EINVAL;
    regsim_t *rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return HERD_ENOMEM;
    rs->cfg = *cfg;
    if (cfg->hooks)
        rs->hooks = *cfg->hooks;
    rs->cfg.hooks = &rs->hooks;
    regsim_config_t *c = &rs->cfg;
    if (!c->tick_ms)
        c->tick_ms = 5;
    if (!c->heartbeat_ms)
        c->heartbeat_ms = 50;
    if (!c->suspect_ms)
        c->suspect_ms = 3 * c->heartbeat_ms;
    if (!c->down_ms)
        c->down_ms = 6 * c->heartbeat_ms;
    if (!c->forget_ms)
        c->forget_ms = 3000;
    if (!c->delay_max) {
        c->delay_min = 1;
        c->delay_max = 15;
    }
    rs->rng = cfg->seed;
    rs->now = 1000;
    rs->clock = (herd_clock_t){.now_ms = rs_clock, .data = rs, .wall_ms = rs_clock};
    rs->trace = rs->shape = FNV_INIT;
    for (int i = 0; i < c->nodes; i++) {
        rs_slot_t *s = &rs->slots[i];
        s->rs = rs;
        s->idx = i;
        snprintf(s->name, sizeof(s->name), "node%d", i + 1);
        snprintf(s->addr, sizeof(s->addr), "sim://%s", s->name);
    }
    *out = rs;
    return 0;
}

void regsim_free(regsim_t *rs)
{
    if (rs == NULL)
        return;
    for (int i = 0; i < rs->cfg.nodes; i++)
        if (rs->slots[i].node)
            regsim_crash(rs, i);
    while (rs->heap_n)
        free(heap_pop(rs));
    free(rs->heap);
    free(rs);
}

uint64_t regsim_now(const regsim_t *rs)
{
    return rs->now;
}

int regsim_node_count(const regsim_t *rs)
{
    return rs->cfg.nodes;
}

const char *regsim_name(const regsim_t *rs, int i)
{
    return rs->slots[i].name;
}

herd_node_t *regsim_node(regsim_t *rs, int i)
{
    return rs->slots[i].up ? rs->slots[i].node : NULL;
}

int regsim_is_up(const regsim_t *rs, int i)
{
    return rs->slots[i].up;
}

static rs_proc_t *proc_by_pid(regsim_t *rs, herd_pid_t pid)
{
    for (int k = 0; k < rs->nprocs; k++)
        if (herd_pid_equal(rs->procs[k].pid, pid))
            return &rs->procs[k];
    return NULL;
}

static void on_exit_hook(void *data, herd_pid_t pid, int reason)
{
    rs_slot_t *s = data;
    regsim_t *rs = s->rs;
    rs_proc_t *p = proc_by_pid(rs, pid);
    if (reason >= 0 && reason < RS_REASONS)
        rs->exits[reason]++;
    else
        rs->exits[RS_REASONS]++;
    if (getenv("HERD_SIM_TRACE"))
        fprintf(stderr, "t=%llu exit proc %d on %s: %s\n", (unsigned long long)rs->now,
                p ? (int)(p - rs->procs) : -1, s->name, herd_reason_name(reason));
    if (p) {
        p->alive = 0;
        p->reason = reason;
    }
}

int regsim_start(regsim_t *rs, int i)
{
    rs_slot_t *s = &rs->slots[i];
    if (s->node)
        return HERD_EEXIST;
    s->starts++;
    s->inc = ((uint64_t)s->starts << 40) | (regsim_random(rs) & ((1ull << 40) - 1));
    herd_node_config_t nc = {.name = s->name,
                             .clock = &rs->clock,
                             .seed = regsim_random(rs) | 1,
                             .incarnation = s->inc};
    int rc = herd_node_new(&nc, &s->node);
    if (rc)
        return rc;
    rc = herd_node_on_exit(s->node, on_exit_hook, s);
    rs_tp_t *tp = calloc(1, sizeof(*tp));
    if (tp == NULL) {
        herd_node_free(s->node);
        s->node = NULL;
        return HERD_ENOMEM;
    }
    tp->rs = rs;
    tp->idx = i;
    s->tp = tp;
    s->up = 1;
    s->started = 1;
    const char *seeds[RS_MAX_NODES];
    size_t ns = 0;
    for (int j = 0; j < rs->cfg.nodes; j++)
        if (j != i)
            seeds[ns++] = rs->slots[j].addr;
    transport_t t = {.ops = &rs_tp_ops, .impl = tp};
    herd_cluster_config_t cc = {.cluster = "regsim",
                                .listen = s->addr,
                                .seeds = seeds,
                                .seed_count = ns,
                                .secret = RS_SECRET,
                                .secret_len = strlen(RS_SECRET),
                                .heartbeat_ms = rs->cfg.heartbeat_ms,
                                .suspect_ms = rs->cfg.suspect_ms,
                                .down_ms = rs->cfg.down_ms,
                                .forget_ms = rs->cfg.forget_ms};
    if (rc == 0)
        rc = herd_cluster_start_with(s->node, &cc, &t);
    else
        tp_close(tp);
    if (rc == 0)
        rc = herd_registry_start(s->node);
    if (rc == 0 && rs->hooks.on_start)
        rc = rs->hooks.on_start(rs, i, s->node, rs->hooks.data);
    if (rc) {
        regsim_crash(rs, i);
        return rc;
    }
    return 0;
}

int regsim_leave(regsim_t *rs, int i)
{
    herd_node_t *n = regsim_node(rs, i);
    return n ? herd_cluster_leave(n) : HERD_ENOENT;
}

int regsim_crash(regsim_t *rs, int i)
{
    rs_slot_t *s = &rs->slots[i];
    if (s->node == NULL)
        return HERD_ENOENT;
    s->up = 0; /* from here on its frames are dropped */
    s->paused = 0;
    for (int k = 0; k < rs->nprocs; k++) {
        rs_proc_t *p = &rs->procs[k];
        if (p->node == i && p->alive && p->pid.incarnation == s->inc) {
            p->alive = 0;
            p->reason = -1000; /* crashed with its node */
        }
    }
    herd_node_t *n = s->node;
    s->node = NULL;
    herd_node_free(n);
    s->cb = NULL;
    s->cb_data = NULL;
    return 0;
}

void regsim_set_group(regsim_t *rs, int i, int group)
{
    rs->slots[i].group = group;
}

void regsim_heal(regsim_t *rs)
{
    for (int i = 0; i < rs->cfg.nodes; i++)
        rs->slots[i].group = 0;
}

void regsim_set_loss(regsim_t *rs, uint32_t drop_pm, uint32_t dup_pm)
{
    rs->cfg.drop_pm = drop_pm;
    rs->cfg.dup_pm = dup_pm;
}

void regsim_block(regsim_t *rs, int from, int to, int on)
{
    if (on)
        rs->slots[from].blocked_to |= 1u << to;
    else
        rs->slots[from].blocked_to &= ~(1u << to);
}

void regsim_set_send_hook(regsim_t *rs, int from, regsim_send_hook hook, void *data)
{
    rs->send_hook = hook;
    rs->hook_data = data;
    rs->hook_from = from;
}

const char *regsim_secret(void)
{
    return RS_SECRET;
}

void regsim_pause(regsim_t *rs, int i, int on)
{
    rs->slots[i].paused = on;
}

void regsim_unblock_all(regsim_t *rs)
{
    for (int i = 0; i < rs->cfg.nodes; i++)
        rs->slots[i].blocked_to = 0;
}

/* ---- running ------------------------------------------------------------------------ */

/* Frames to a paused node wait in its socket: they are delivered, in the
 * order sent, once it runs again. */
static void hold_for_paused(regsim_t *rs, rs_frame_t **held, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        held[i]->at = rs->now + rs->cfg.tick_ms;
        held[i]->seq = rs->seq++;
        if (heap_push(rs, held[i]) != 0)
            free(held[i]); /* out of memory: lost like a dropped frame */
    }
}

static void deliver_due(regsim_t *rs)
{
    rs_frame_t *held[64];
    size_t n_held = 0;
    while (rs->heap_n && rs->heap[0]->at <= rs->now) {
        rs_frame_t *f = heap_pop(rs);
        rs_slot_t *d = &rs->slots[f->to];
        if (d->up && d->paused) {
            held[n_held++] = f;
            if (n_held == sizeof(held) / sizeof(held[0])) {
                hold_for_paused(rs, held, n_held);
                n_held = 0;
            }
            continue;
        }
        if (d->up && d->cb && d->group == rs->slots[f->from].group &&
            !(rs->slots[f->from].blocked_to & (1u << f->to))) {
            uint64_t hdr[4] = {f->at, (uint64_t)f->from, (uint64_t)f->to, f->len};
            rs->trace = fnv(fnv(rs->trace, hdr, sizeof(hdr)), f->data, f->len);
            rs->shape = fnv(rs->shape, hdr, sizeof(hdr));
            rs->delivered++;
            if (d->tp) {
                d->tp->st.frames_in++;
                d->tp->st.bytes_in += f->len;
            }
            d->cb(d->cb_data, f->data, f->len);
        }
        free(f);
    }
    hold_for_paused(rs, held, n_held);
}

int regsim_step(regsim_t *rs)
{
    rs->now += rs->cfg.tick_ms;
    deliver_due(rs);
    for (int i = 0; i < rs->cfg.nodes; i++) {
        herd_node_t *n = regsim_node(rs, i);
        if (n == NULL || rs->slots[i].paused)
            continue;
        int rc = herd_node_poll(n);
        if (rc < 0)
            return rc;
        if ((rc = herd_cluster_poll(n)) != 0)
            return rc;
        if ((rc = herd_registry_poll(n)) != 0)
            return rc;
        if (rs->hooks.on_poll && (rc = rs->hooks.on_poll(rs, i, n, rs->hooks.data)) != 0)
            return rc;
    }
    return 0;
}

int regsim_run_until(regsim_t *rs, uint64_t t)
{
    while (rs->now + rs->cfg.tick_ms <= t) {
        int rc = regsim_step(rs);
        if (rc)
            return rc;
    }
    return 0;
}

int regsim_run_for(regsim_t *rs, uint64_t ms)
{
    return regsim_run_until(rs, rs->now + ms);
}

int regsim_members_converged(regsim_t *rs, char *why, size_t cap)
{
    herd_member_info_t info[RS_MAX_NODES * 2];
    for (int i = 0; i < rs->cfg.nodes; i++) {
        herd_node_t *n = regsim_node(rs, i);
        if (n == NULL)
            continue;
        int m = herd_cluster_members(n, info, RS_MAX_NODES * 2);
        if (m < 0) {
            snprintf(why, cap, "%s: members: %s", rs->slots[i].name, herd_strerror(m));
            return 0;
        }
        for (int j = 0; j < rs->cfg.nodes; j++) {
            const rs_slot_t *s = &rs->slots[j];
            const herd_member_info_t *e = NULL;
            for (int k = 0; k < m && k < RS_MAX_NODES * 2; k++)
                if (strcmp(info[k].name, s->name) == 0)
                    e = &info[k];
            if (s->up && (e == NULL || e->state != HERD_MEMBER_UP || e->incarnation != s->inc)) {
                snprintf(why, cap, "%s sees %s %s", rs->slots[i].name, s->name,
                         e ? herd_member_state_name(e->state) : "absent");
                return 0;
            }
            if (!s->up && s->started && e && e->state == HERD_MEMBER_UP &&
                e->incarnation == s->inc) {
                snprintf(why, cap, "%s sees crashed %s up", rs->slots[i].name, s->name);
                return 0;
            }
        }
    }
    return 1;
}

int regsim_run_until_members(regsim_t *rs, uint64_t deadline)
{
    char why[128];
    while (!regsim_members_converged(rs, why, sizeof(why))) {
        if (rs->now >= deadline)
            return HERD_ETIMEDOUT;
        int rc = regsim_run_for(rs, 20);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- processes and the model ------------------------------------------------------- */

static const herd_behaviour_t idle_behaviour = {.name = "idle"};

int regsim_spawn(regsim_t *rs, int i)
{
    herd_node_t *n = regsim_node(rs, i);
    if (n == NULL || rs->nprocs == RS_MAX_PROCS)
        return HERD_EINVAL;
    herd_spawn_opts_t o = {.behaviour = &idle_behaviour};
    rs_proc_t *p = &rs->procs[rs->nprocs];
    memset(p, 0, sizeof(*p));
    int rc = herd_spawn(n, &o, &p->pid);
    if (rc)
        return rc;
    p->node = i;
    p->alive = 1;
    p->born = rs->now;
    return rs->nprocs++;
}

int regsim_proc_count(const regsim_t *rs)
{
    return rs->nprocs;
}

rs_proc_t *regsim_proc(regsim_t *rs, int k)
{
    return &rs->procs[k];
}

static int proc_name_index(const rs_proc_t *p, const char *name)
{
    for (int j = 0; j < p->nnames; j++)
        if (strcmp(p->names[j].name, name) == 0)
            return j;
    return -1;
}

int regsim_register(regsim_t *rs, int k, const char *name, const herd_meta_t *meta)
{
    rs_proc_t *p = &rs->procs[k];
    herd_node_t *n = regsim_node(rs, p->node);
    if (n == NULL || !p->alive)
        return HERD_ENOPROC;
    int j = proc_name_index(p, name);
    if (j < 0 && p->nnames == 16)
        return HERD_EFULL;
    /* The model let go of the name (another node unregistered it) but its
     * node still holds the entry: the unregister is on its way, and this
     * register is a metadata update of the registration it removes. */
    int doomed = j < 0 && herd_registry_holds(n, name, p->pid);
    int rc = herd_register(n, name, p->pid, meta);
    if (getenv("HERD_SIM_TRACE"))
        fprintf(stderr, "t=%llu register %s proc %d on %s: %d%s\n", (unsigned long long)rs->now,
                name, k, rs->slots[p->node].name, rc, doomed ? " (an update, unregistered)" : "");
    if (rc || doomed)
        return rc;
    if (j < 0) {
        j = p->nnames++;
        snprintf(p->names[j].name, RS_NAME_LEN, "%s", name);
        p->names[j].at = rs->now;
    }
    if (meta)
        p->names[j].meta = *meta;
    else
        memset(&p->names[j].meta, 0, sizeof(herd_meta_t));
    return 0;
}

int regsim_unregister(regsim_t *rs, int k, const char *name, int via)
{
    rs_proc_t *p = &rs->procs[k];
    herd_node_t *n = regsim_node(rs, via);
    int j = proc_name_index(p, name);
    if (n == NULL || j < 0)
        return HERD_EINVAL;
    /* Removes are per registration: another node that still sees an older
     * registration of the process (it let go and registered again since)
     * removes that one, and the newer stays. */
    herd_node_t *own = regsim_node(rs, p->node);
    uint64_t t_via = 0, t_own = 0;
    herd_pid_t who;
    int stale = via != p->node && own && herd_whereis(n, name, &who, NULL) == 0 &&
                herd_pid_equal(who, p->pid) && herd_registry_time(n, name, &t_via) == 0 &&
                herd_whereis(own, name, &who, NULL) == 0 && herd_pid_equal(who, p->pid) &&
                herd_registry_time(own, name, &t_own) == 0 && t_via != t_own;
    int rc = herd_unregister_pid(n, name, p->pid); /* ENOENT: that node has not seen it */
    if (getenv("HERD_SIM_TRACE"))
        fprintf(stderr, "t=%llu unregister %s proc %d (of %s) via %s: %d%s\n",
                (unsigned long long)rs->now, name, k, rs->slots[p->node].name,
                rs->slots[via].name, rc, stale ? " (an older registration: the newer stays)" : "");
    if (rc || stale)
        return rc;
    p->names[j] = p->names[--p->nnames];
    return 0;
}

int regsim_stop(regsim_t *rs, int k, int reason)
{
    rs_proc_t *p = &rs->procs[k];
    herd_node_t *n = regsim_node(rs, p->node);
    if (n == NULL || !p->alive)
        return HERD_ENOPROC;
    return herd_stop(n, p->pid, reason);
}

unsigned regsim_exits(const regsim_t *rs, int reason)
{
    if (reason >= 0 && reason < RS_REASONS)
        return rs->exits[reason];
    return rs->exits[RS_REASONS];
}

/* ---- reading replicas ---------------------------------------------------------------- */

typedef struct list_acc {
    rs_entry_t *v;
    size_t n, cap;
    int err;
} list_acc_t;

static int acc_add(list_acc_t *a, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        rs_entry_t *v = realloc(a->v, cap * sizeof(*v));
        if (v == NULL) {
            a->err = HERD_ENOMEM;
            return 1;
        }
        a->v = v;
        a->cap = cap;
    }
    rs_entry_t *e = &a->v[a->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->pid = pid;
    if (meta)
        e->meta = *meta;
    return 0;
}

static int list_fn(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    return acc_add(data, name, pid, meta);
}

static int entry_cmp(const void *a, const void *b)
{
    const rs_entry_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->pid.node != y->pid.node)
        return x->pid.node < y->pid.node ? -1 : 1;
    if (x->pid.incarnation != y->pid.incarnation)
        return x->pid.incarnation < y->pid.incarnation ? -1 : 1;
    if (x->pid.serial != y->pid.serial)
        return x->pid.serial < y->pid.serial ? -1 : 1;
    return 0;
}

int regsim_list(regsim_t *rs, int i, rs_entry_t **out, size_t *count)
{
    herd_node_t *n = regsim_node(rs, i);
    list_acc_t a = {0};
    if (n == NULL)
        return HERD_ENOENT;
    int rc = herd_registry_list(n, NULL, list_fn, &a);
    if (rc < 0 || a.err) {
        free(a.v);
        return rc < 0 ? rc : a.err;
    }
    if (a.n)
        qsort(a.v, a.n, sizeof(*a.v), entry_cmp);
    *out = a.v;
    *count = a.n;
    return 0;
}

static int meta_equal(const herd_meta_t *a, const herd_meta_t *b)
{
    if (a->count != b->count)
        return 0;
    for (int k = 0; k < a->count; k++) {
        const char *v = herd_meta_get(b, a->kv[k].key);
        if (v == NULL || strcmp(v, a->kv[k].value) != 0)
            return 0;
    }
    return 1;
}

static void pid_text(herd_pid_t p, char *buf, size_t cap)
{
    snprintf(buf, cap, "<%llx.%llx.%llu>", (unsigned long long)(p.node & 0xffff),
             (unsigned long long)(p.incarnation >> 40), (unsigned long long)p.serial);
}

/* Compare two sorted lists; 1 if equal, else why. */
static int lists_equal(const rs_entry_t *a, size_t na, const rs_entry_t *b, size_t nb,
                       const char *la, const char *lb, char *why, size_t cap)
{
    size_t i = 0, j = 0;
    char p1[64], p2[64];
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].name, b[j].name);
        if (c < 0) {
            pid_text(a[i].pid, p1, sizeof(p1));
            snprintf(why, cap, "%s has %s=%s, %s has not (%zu vs %zu names)", la, a[i].name,
                     p1, lb, na, nb);
            return 0;
        }
        if (c > 0) {
            pid_text(b[j].pid, p2, sizeof(p2));
            snprintf(why, cap, "%s has %s=%s, %s has not (%zu vs %zu names)", lb, b[j].name,
                     p2, la, nb, na);
            return 0;
        }
        if (!herd_pid_equal(a[i].pid, b[j].pid) || !meta_equal(&a[i].meta, &b[j].meta)) {
            pid_text(a[i].pid, p1, sizeof(p1));
            pid_text(b[j].pid, p2, sizeof(p2));
            snprintf(why, cap, "%s: %s has %s (%u meta), %s has %s (%u meta)", a[i].name, la,
                     p1, a[i].meta.count, lb, p2, b[j].meta.count);
            return 0;
        }
        i++;
        j++;
    }
    return 1;
}

static int model_list(regsim_t *rs, rs_entry_t **out, size_t *count)
{
    list_acc_t a = {0};
    for (int k = 0; k < rs->nprocs; k++) {
        rs_proc_t *p = &rs->procs[k];
        for (int j = 0; p->alive && j < p->nnames; j++)
            acc_add(&a, p->names[j].name, p->pid, &p->names[j].meta);
    }
    if (a.err) {
        free(a.v);
        return a.err;
    }
    if (a.n)
        qsort(a.v, a.n, sizeof(*a.v), entry_cmp);
    *out = a.v;
    *count = a.n;
    return 0;
}

/* Keep the entries of v[0..*n) that keep() keeps (all when it is NULL). */
static void filter(rs_entry_t *v, size_t *n, regsim_keep_fn keep, void *data)
{
    size_t kept = 0;
    for (size_t k = 0; keep && k < *n; k++)
        if (keep(data, &v[k]))
            v[kept++] = v[k];
    if (keep)
        *n = kept;
}

int regsim_replicas_agree(regsim_t *rs, int check_model, char *why, size_t cap)
{
    return regsim_replicas_agree_on(rs, UINT32_MAX, NULL, NULL, check_model, why, cap);
}

int regsim_replicas_agree_on(regsim_t *rs, uint32_t mask, regsim_keep_fn keep, void *data,
                             int check_model, char *why, size_t cap)
{
    rs_entry_t *first = NULL, *cur = NULL;
    size_t nfirst = 0, ncur = 0;
    int first_idx = -1, ok = 1;
    for (int i = 0; i < rs->cfg.nodes && ok; i++) {
        if (!rs->slots[i].up || !(mask & (1u << i)))
            continue;
        int rc = regsim_list(rs, i, &cur, &ncur);
        if (rc) {
            snprintf(why, cap, "list on %s: %s", rs->slots[i].name, herd_strerror(rc));
            ok = 0;
            break;
        }
        /* the count kept as entries come and go is what a listing finds */
        int counted = herd_registry_count(rs->slots[i].node, NULL);
        if (counted < 0 || (size_t)counted != ncur) {
            snprintf(why, cap, "%s counts %d names, lists %zu", rs->slots[i].name, counted, ncur);
            free(cur);
            free(first);
            return 0;
        }
        filter(cur, &ncur, keep, data);
        if (first_idx < 0) {
            first = cur;
            nfirst = ncur;
            first_idx = i;
            cur = NULL;
            continue;
        }
        ok = lists_equal(first, nfirst, cur, ncur, rs->slots[first_idx].name,
                         rs->slots[i].name, why, cap);
        free(cur);
        cur = NULL;
    }
    if (ok && check_model && first_idx >= 0) {
        int rc = model_list(rs, &cur, &ncur);
        if (rc) {
            snprintf(why, cap, "model: %s", herd_strerror(rc));
            ok = 0;
        } else {
            filter(cur, &ncur, keep, data);
            /* a name held twice in the model: two live registrations */
            for (size_t k = 1; k < ncur && ok; k++)
                if (strcmp(cur[k].name, cur[k - 1].name) == 0) {
                    snprintf(why, cap, "name %s held by two live processes", cur[k].name);
                    ok = 0;
                }
            if (ok)
                ok = lists_equal(first, nfirst, cur, ncur, rs->slots[first_idx].name,
                                 "the model", why, cap);
        }
        free(cur);
    }
    free(first);
    return ok;
}

int regsim_run_until_agree(regsim_t *rs, int check_model, uint64_t deadline, char *why,
                           size_t cap)
{
    while (!regsim_replicas_agree(rs, check_model, why, cap)) {
        if (rs->now >= deadline)
            return HERD_ETIMEDOUT;
        int rc = regsim_run_for(rs, 50);
        if (rc)
            return rc;
    }
    return 0;
}

uint64_t regsim_state_hash(regsim_t *rs)
{
    uint64_t h = FNV_INIT;
    for (int i = 0; i < rs->cfg.nodes; i++) {
        rs_entry_t *v = NULL;
        size_t n = 0;
        if (regsim_list(rs, i, &v, &n) != 0)
            continue;
        h = fnv(h, &i, sizeof(i));
        for (size_t k = 0; k < n; k++) {
            h = fnv(h, v[k].name, strlen(v[k].name));
            h = fnv(h, &v[k].pid, sizeof(v[k].pid));
            h = fnv(h, &v[k].meta.count, 1);
            for (int m = 0; m < v[k].meta.count; m++) {
                h = fnv(h, v[k].meta.kv[m].key, strlen(v[k].meta.kv[m].key));
                h = fnv(h, v[k].meta.kv[m].value, strlen(v[k].meta.kv[m].value));
            }
        }
        free(v);
    }
    return h;
}

uint64_t regsim_trace_hash(const regsim_t *rs)
{
    return rs->trace;
}

uint64_t regsim_shape_hash(const regsim_t *rs)
{
    return rs->shape;
}

uint64_t regsim_delivered(const regsim_t *rs)
{
    return rs->delivered;
}

/* ---- the seed driver (seeds.h) ------------------------------------------------------------ */

_Static_assert(offsetof(rs_case_t, name) == 0, "seeds_main: a case begins with its name");

/* What the seeds of one case share. */
typedef struct case_run {
    const rs_case_t *c;
    unsigned long long uncertain;
} case_run_t;

int regsim_make_cluster(rs_run_t *r, int nodes, uint32_t forget, uint32_t drop, uint32_t dup)
{
    regsim_config_t cfg = {.seed = r->seed,
                           .nodes = nodes,
                           .tick_ms = 5,
                           .heartbeat_ms = 50,
                           .suspect_ms = 150,
                           .down_ms = 300,
                           .forget_ms = forget,
                           .delay_min = 1,
                           .delay_max = 15,
                           .drop_pm = drop,
                           .dup_pm = dup};
    RS_CHECK_OK(r, regsim_new(&cfg, &r->rs));
    for (int i = 0; i < nodes; i++) {
        RS_CHECK_OK(r, regsim_start(r->rs, i));
        RS_CHECK_OK(r, regsim_run_for(r->rs, regsim_range(r->rs, 0, 30)));
    }
    RS_CHECK_OK(r, regsim_run_until_members(r->rs, regsim_now(r->rs) + 5000));
    return 1;
}

static int run_one(void *ctx, uint64_t seed)
{
    case_run_t *cr = ctx;
    rs_run_t r = {.seed = seed};
    int ok = cr->c->fn(&r);
    if (!ok)
        seeds_print_failure(cr->c->name, r.seed, r.rs ? regsim_now(r.rs) : 0, r.why);
    cr->uncertain += r.uncertain;
    regsim_free(r.rs);
    return ok;
}

static void run_case(void **state)
{
    case_run_t cr = {.c = *state};
    seeds_summary_t sum;
    char extra[48];
    seeds_run(cr.c->default_seeds, run_one, &cr, &sum);
    snprintf(extra, sizeof(extra), " uncertain=%llu", cr.uncertain);
    seeds_print_summary(cr.c->name, &sum, extra);
    assert_int_equal(sum.failed, 0);
}

int regsim_main(const char *prefix, const rs_case_t *cases, size_t count)
{
    return seeds_main(prefix, cases, sizeof(cases[0]), count, run_case, HERD_LOG_ERROR);
}
