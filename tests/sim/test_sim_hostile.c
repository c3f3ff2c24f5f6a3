/*
 * test_sim_hostile.c - a member that sends garbage: full-stack simulations
 * (regsim.h) of 4 nodes with the registry, the distributed supervisor and
 * the counter service, where node4's outgoing application messages
 * (registry sync, app 1, and handoff, app 2) are mutated with some
 * probability per message after its layers wrote them and before its
 * frames are signed (regsim_set_send_hook: the frame is decoded, its batch
 * rewritten and signed again): authenticated frames from a member whose bug
 * alters messages on their way to the wire. The check sum each message
 * carries (runtime/PROTOCOL.md) is left as the layer wrote it, so receivers
 * can tell. (A compromised member could write check sums for what it makes
 * up: that would be taken as true, and no check here could tell.) The
 * mutations are the fuzz driver's (fuzz_mutate.h: bit flips, random bytes,
 * boundary values in length fields, insertions, deletions, repeats,
 * truncation), 1-8 a message, on a stream seeded by the sim seed.
 *
 * Case hostile_member (HERD_SIM_* as in seeds.h; HERD_SIM_HOSTILE_DEBUG=1
 * prints each node's stats and children when agreement does not come, and
 * HERD_SIM_HOSTILE_NAME=N the entries of name N with their dots):
 * - 3 s of churn on every node under 5% loss and 2% duplicates: spawns,
 *   registers of per-node names (some with metadata), metadata updates,
 *   unregisters, exits; children of the counter service started and stopped
 *   from any node, nodes drained and undrained, so children move (handoff
 *   messages) to and from node4; node4 sends a mutated body with a
 *   per-seed probability of 10-50% a message.
 * - with the mutation still on and the churn over: no node crashed, the
 *   healthy nodes count what they refused (registry `rejected`, handoff
 *   `malformed` and `rejected_parts`: some once 30 messages were mutated),
 *   and within SETTLE_MS the healthy nodes agree with each other on every
 *   name whose process runs on a healthy node.
 * - the mutation stops, drains end: within SETTLE_MS every replica (node4's
 *   too) holds the same names and the registered names of the churn equal
 *   the model (the names live processes hold); 4.5 s later the churn's
 *   names still do, and the children's agree again within SETTLE_MS (a move
 *   that failed is tried again later); then every churn process exits and
 *   every one of their names goes everywhere.
 *
 * Pins fixed bugs (the replayed seeds in tests/CMakeLists.txt): an altered
 * registry message was joined as true (two contents under one dot: replicas
 * differed for good); after a refused piece of a sync answer, the answer's
 * context was joined (claiming entries that never arrived: they were never
 * sent again); a pull from the member whose message was refused hung for
 * REGISTRY_PULL_MS; a node repaired only with the member that kept sending
 * garbage; a member whose digest was refused waited for its answer while
 * the other side's ordinary deltas kept that pull alive, holding back the
 * pulls of the others in a ring of waits (1402206); two nodes each pulling
 * from the other put off each other's digests for 10 s at a time (1800536).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "counter_cluster.h"
#include "frame.h"
#include "fuzz_mutate.h"
#include "herd_dsup.h"
#include "registry_int.h"
#include "regsim.h"
#include "wire.h"

#define NODES 4
#define BAD 3 /* node4 */
#define SETTLE_MS 15000
#define CHURN_MS 3000
#define REMOTE_APP 34 /* remote.c's message kind for an app's messages */
#define MUTATE_ROOM 1024
#define MIN_MUTATED 30 /* mutated messages after which some must be refused */

/* ---- the hostile sender ------------------------------------------------------------ */

typedef struct hostile {
    int on;
    uint32_t pm; /* per mille of app 1 and 2 messages mutated */
    fuzz_rng_t rng;
    frame_key_t key;
    uint64_t mutated; /* messages sent mutated */
} hostile_t;

static hostile_t g_h;

/* The payload p (len bytes) mutated 1-8 times into w's next message body. */
static void put_mutated(hostile_t *h, wire_writer_t *w, const uint8_t *p, size_t len)
{
    size_t cap = len + MUTATE_ROOM, n = len;
    uint8_t *b = malloc(cap);
    if (b == NULL) {
        wire_put_bytes(w, p, len);
        return;
    }
    memcpy(b, p, len);
    for (int k = 1 + (int)(fuzz_rng_next(&h->rng) % 8); k > 0; k--)
        fuzz_mutate_once(&h->rng, b, &n, cap, NULL, 0);
    wire_put_bytes(w, b, n);
    free(b);
    h->mutated++;
}

/* One message of a channel batch into w: as it was, or (an app 1 or 2
 * message, by chance) with its payload mutated. 1 if it was mutated. */
static int copy_message(hostile_t *h, wire_writer_t *w, const uint8_t *m, size_t mlen)
{
    wire_reader_t q;
    wire_reader_init(&q, m, mlen);
    uint8_t kind = wire_get_u8(&q), flags = wire_get_u8(&q);
    uint64_t f[5];
    for (int k = 0; k < 5; k++) /* to, from node, incarnation, serial, ref */
        f[k] = wire_get_u64(&q);
    uint32_t status = wire_get_u32(&q);
    const uint8_t *payload;
    size_t plen = wire_get_bytes(&q, &payload);
    if (q.err || kind != REMOTE_APP || (f[0] != 1 && f[0] != 2) ||
        fuzz_rng_next(&h->rng) % 1000 >= h->pm) {
        wire_put_bytes(w, m, mlen);
        return 0;
    }
    wire_writer_t x;
    wire_writer_init(&x);
    wire_put_u8(&x, kind);
    wire_put_u8(&x, flags);
    for (int k = 0; k < 5; k++)
        wire_put_u64(&x, f[k]);
    wire_put_u32(&x, status);
    put_mutated(h, &x, payload, plen);
    wire_put_bytes(w, x.buf, x.len);
    wire_writer_fini(&x);
    return 1;
}

/* A MSG frame's batch rewritten; NULL when nothing in it was mutated. */
static uint8_t *rewrite(hostile_t *h, const frame_header_t *hd, const uint8_t *body,
                        size_t *out_len)
{
    wire_reader_t r;
    wire_reader_init(&r, body, hd->length);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, wire_get_u64(&r)); /* ack */
    wire_put_u64(&w, wire_get_u64(&r)); /* first seq */
    uint16_t count = wire_get_u16(&r);
    wire_put_u16(&w, count);
    int changed = 0;
    for (uint16_t i = 0; i < count && r.err == 0; i++) {
        const uint8_t *m;
        size_t mlen = wire_get_bytes(&r, &m);
        if (r.err == 0)
            changed += copy_message(h, &w, m, mlen);
    }
    uint8_t *out = NULL;
    frame_header_t nh = *hd;
    nh.length = (uint32_t)w.len;
    if (changed && r.err == 0 && w.err == 0 && (out = malloc(frame_size(w.len))) != NULL &&
        frame_encode(&h->key, &nh, w.buf, w.len, out, frame_size(w.len)) != 0) {
        free(out);
        out = NULL;
    }
    *out_len = frame_size(w.len);
    wire_writer_fini(&w);
    return out;
}

static uint8_t *hostile_send(void *data, int from, int to, const uint8_t *frame, size_t len,
                             size_t *out_len)
{
    (void)from, (void)to;
    hostile_t *h = data;
    frame_header_t hd;
    const uint8_t *body;
    if (!h->on || frame_decode(&h->key, frame, len, FRAME_DEFAULT_MAX_BODY, &hd, &body, NULL) ||
        hd.type != FRAME_MSG)
        return NULL;
    return rewrite(h, &hd, body, out_len);
}

/* ---- the cluster ------------------------------------------------------------------- */

static int make(rs_run_t *r)
{
    regsim_config_t cfg = {.seed = r->seed, .nodes = NODES, .tick_ms = 5, .heartbeat_ms = 50,
                           .suspect_ms = 150, .down_ms = 300, .forget_ms = 5000,
                           .delay_min = 1, .delay_max = 15, .drop_pm = 50, .dup_pm = 20,
                           .hooks = &counter_cluster_hooks};
    RS_CHECK_OK(r, regsim_new(&cfg, &r->rs));
    for (int i = 0; i < NODES; i++) {
        RS_CHECK_OK(r, regsim_start(r->rs, i));
        RS_CHECK_OK(r, regsim_run_for(r->rs, regsim_range(r->rs, 0, 30)));
    }
    RS_CHECK_OK(r, regsim_run_until_members(r->rs, regsim_now(r->rs) + 5000));
    memset(&g_h, 0, sizeof(g_h));
    g_h.rng.state = r->seed * 0x9e3779b97f4a7c15ull + 12;
    g_h.pm = (uint32_t)regsim_range(r->rs, 100, 500);
    const char *secret = regsim_secret();
    RS_CHECK_OK(r, frame_key_from_secret(&g_h.key, secret, strlen(secret)));
    regsim_set_send_hook(r->rs, BAD, hostile_send, &g_h);
    return 1;
}

/* ---- churn ------------------------------------------------------------------------- */

static void random_meta(regsim_t *rs, herd_meta_t *m)
{
    char v[16];
    memset(m, 0, sizeof(*m));
    snprintf(v, sizeof(v), "v%llu", (unsigned long long)regsim_range(rs, 0, 999));
    herd_meta_set(m, "ver", v);
}

/* A random live process of node i, or -1. */
static int random_proc(regsim_t *rs, int i)
{
    int live[RS_MAX_PROCS], n = 0;
    for (int k = 0; k < regsim_proc_count(rs); k++) {
        rs_proc_t *p = regsim_proc(rs, k);
        if (p->alive && p->node == i)
            live[n++] = k;
    }
    return n ? live[regsim_range(rs, 0, (uint64_t)n - 1)] : -1;
}

/* A register (new name, or new metadata for one the process holds), an
 * unregister or an exit of process k on its node. Names are per node
 * ("nI.sK"): only what node4 says of them can make two nodes claim one. */
static int name_op(rs_run_t *r, int k, uint64_t op)
{
    regsim_t *rs = r->rs;
    rs_proc_t *p = regsim_proc(rs, k);
    char name[RS_NAME_LEN];
    herd_meta_t meta;
    random_meta(rs, &meta);
    if (op < 50 || p->nnames == 0) {
        snprintf(name, sizeof(name), "n%d.s%llu", p->node,
                 (unsigned long long)regsim_range(rs, 0, 9));
        int rc = regsim_register(rs, k, name, regsim_range(rs, 0, 2) ? NULL : &meta);
        RS_CHECK(r, rc == 0 || rc == HERD_EEXIST || rc == HERD_EFULL, "register %s: %s", name,
                 herd_strerror(rc));
        return 1;
    }
    snprintf(name, sizeof(name), "%s", p->names[regsim_range(rs, 0, p->nnames - 1)].name);
    if (op < 65) {
        int rc = regsim_register(rs, k, name, &meta);
        RS_CHECK(r, rc == 0 || rc == HERD_EEXIST, "re-register %s: %s", name, herd_strerror(rc));
    } else if (op < 85) {
        int rc = regsim_unregister(rs, k, name, p->node);
        RS_CHECK(r, rc == 0 || rc == HERD_ENOENT, "unregister %s: %s", name, herd_strerror(rc));
    } else {
        RS_CHECK_OK(r, regsim_stop(rs, k, regsim_range(rs, 0, 1) ? HERD_REASON_NORMAL
                                                                  : HERD_REASON_KILLED));
    }
    return 1;
}

static void start_done(void *data, const herd_start_result_t *res)
{
    (void)data, (void)res; /* the outcome shows in the registry */
}

static void stop_done(void *data, int status)
{
    (void)data, (void)status;
}

/* Start or stop a child "cK" from node i, or drain or undrain a node. */
static void child_op(regsim_t *rs, int i, uint64_t op)
{
    herd_node_t *n = regsim_node(rs, i);
    char name[16];
    snprintf(name, sizeof(name), "c%llu", (unsigned long long)regsim_range(rs, 0, 15));
    if (op < 60) {
        herd_child_req_t req = {.name = name, .service = "counter",
                                .restart = HERD_RESTART_PERMANENT};
        herd_start_child_async(n, &req, 2000, start_done, NULL);
    } else if (op < 85) {
        herd_terminate_child_async(n, name, 2000, stop_done, NULL);
    } else {
        int target = (int)regsim_range(rs, 0, NODES - 1);
        herd_drain(n, regsim_name(rs, target), (int)regsim_range(rs, 0, 1));
    }
}

static int churn(rs_run_t *r)
{
    regsim_t *rs = r->rs;
    for (int i = 0; i < NODES; i++)
        for (int k = 0; k < 3; k++)
            RS_CHECK(r, regsim_spawn(rs, i) >= 0, "spawn on %s", regsim_name(rs, i));
    for (uint64_t end = regsim_now(rs) + CHURN_MS; regsim_now(rs) < end;) {
        RS_CHECK_OK(r, regsim_run_for(rs, regsim_range(rs, 5, 40)));
        int node = (int)regsim_range(rs, 0, NODES - 1);
        uint64_t op = regsim_range(rs, 0, 99);
        int k = random_proc(rs, node);
        if (op < 10 || k < 0)
            RS_CHECK(r, regsim_spawn(rs, node) >= 0, "spawn on %s", regsim_name(rs, node));
        else if (op < 75 && !name_op(r, k, regsim_range(rs, 0, 99)))
            return 0;
        else if (op >= 75)
            child_op(rs, node, regsim_range(rs, 0, 99));
    }
    return 1;
}

/* ---- checks ------------------------------------------------------------------------ */

/* An entry whose process runs on a healthy node. */
static int on_healthy(void *data, const rs_entry_t *e)
{
    regsim_t *rs = data;
    for (int i = 0; i < NODES; i++)
        if (i != BAD && e->pid.node == herd_node_id_of(regsim_name(rs, i)))
            return 1;
    return 0;
}

/* A name of the churn (the model's kind), not a child's. */
static int churn_name(void *data, const rs_entry_t *e)
{
    (void)data;
    return e->name[0] == 'n';
}

/* What the healthy nodes refused of what they were sent. */
static uint64_t refused(regsim_t *rs)
{
    uint64_t sum = 0;
    for (int i = 0; i < NODES; i++) {
        herd_registry_stats_t st;
        herd_handoff_stats_t hs;
        herd_node_t *n = regsim_node(rs, i);
        if (i == BAD || n == NULL)
            continue;
        if (herd_registry_stats(n, &st) == 0)
            sum += st.rejected;
        if (herd_handoff_stats(n, &hs) == 0)
            sum += hs.malformed + hs.rejected_parts;
    }
    return sum;
}

static int all_up(rs_run_t *r)
{
    for (int i = 0; i < NODES; i++)
        RS_CHECK(r, regsim_is_up(r->rs, i), "%s is down", regsim_name(r->rs, i));
    return 1;
}

static int print_child(void *data, const herd_child_view_t *v)
{
    (void)data;
    printf("    child %s pid %04llx.%llu state %s\n", v->name,
           (unsigned long long)(v->pid.node & 0xffff), (unsigned long long)v->pid.serial,
           herd_child_state_name(v->state));
    return 0;
}

/* The entries of `name` on node n with their dots. */
static void print_entries(herd_node_t *n, const char *name)
{
    registry_t *g = reg_of(n);
    const awmap_entry_t *e = g ? awmap_get(g->map, name, strlen(name)) : NULL;
    for (; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        awmap_replica_id_t r = awmap_replica_id(g->map, e->dot.replica);
        printf("    %s: dot %04llx/%llu pid %04llx.%llu\n", name,
               (unsigned long long)(r.node & 0xffff), (unsigned long long)e->dot.counter,
               (unsigned long long)(v.pid.node & 0xffff), (unsigned long long)v.pid.serial);
    }
}

/* HERD_SIM_HOSTILE_DEBUG=1: each node's id, stats and children on stdout,
 * and the entries of HERD_SIM_HOSTILE_NAME. */
static void debug_dump(regsim_t *rs)
{
    if (getenv("HERD_SIM_HOSTILE_DEBUG") == NULL)
        return;
    for (int i = 0; i < NODES; i++) {
        herd_node_t *n = regsim_node(rs, i);
        herd_registry_stats_t st = {0};
        herd_handoff_stats_t hs = {0};
        if (n == NULL)
            continue;
        herd_registry_stats(n, &st);
        herd_handoff_stats(n, &hs);
        printf("%s = %04llx: rejected %llu contexts_joined %llu malformed %llu aborted %llu\n",
               regsim_name(rs, i), (unsigned long long)(herd_node_id_of(regsim_name(rs, i)) & 0xffff),
               (unsigned long long)st.rejected, (unsigned long long)st.contexts_joined,
               (unsigned long long)hs.malformed, (unsigned long long)hs.aborted);
        registry_t *g = reg_of(n);
        printf("  pulling %04llx for %llu ms, repairs %llu, full syncs in %llu, checks %u\n",
               (unsigned long long)(g->pulling & 0xffff),
               (unsigned long long)(herd_node_now(n) - g->pull_started),
               (unsigned long long)st.repairs, (unsigned long long)st.full_syncs_in, g->checks);
        herd_which_children(n, print_child, NULL);
        if (getenv("HERD_SIM_HOSTILE_NAME"))
            print_entries(n, getenv("HERD_SIM_HOSTILE_NAME"));
    }
}

/* Run until agree_on(mask, keep, model) holds, SETTLE_MS at most. */
static int until_agree(rs_run_t *r, uint32_t mask, regsim_keep_fn keep, int model,
                       const char *what)
{
    char why[512] = "";
    uint64_t end = regsim_now(r->rs) + SETTLE_MS;
    while (!regsim_replicas_agree_on(r->rs, mask, keep, r->rs, model, why, sizeof(why))) {
        if (regsim_now(r->rs) >= end)
            debug_dump(r->rs);
        RS_CHECK(r, regsim_now(r->rs) < end, "%s: no agreement by the deadline: %s", what, why);
        RS_CHECK_OK(r, regsim_run_for(r->rs, 50));
    }
    return 1;
}

/* Every replica the same, and the churn's names equal the model. */
static int all_agree(rs_run_t *r, const char *what)
{
    char why[512] = "";
    int same = regsim_replicas_agree_on(r->rs, UINT32_MAX, NULL, r->rs, 0, why, sizeof(why));
    RS_CHECK(r, same, "%s: replicas differ: %s", what, why);
    RS_CHECK(r, regsim_replicas_agree_on(r->rs, UINT32_MAX, churn_name, r->rs, 1, why,
                                         sizeof(why)),
             "%s: not the model: %s", what, why);
    return 1;
}

/* The churn's names still equal the model everywhere (children may be
 * moving: a move that failed is tried again later, so theirs are checked
 * with until_all_agree). */
static int still_model(rs_run_t *r)
{
    char why[512] = "";
    RS_CHECK(r, regsim_replicas_agree_on(r->rs, UINT32_MAX, churn_name, r->rs, 1, why,
                                         sizeof(why)),
             "4.5 s after: not the model: %s", why);
    return 1;
}

static int until_all_agree(rs_run_t *r, const char *what)
{
    uint64_t end = regsim_now(r->rs) + SETTLE_MS;
    while (!all_agree(r, what)) { /* r->why says how they differ */
        if (regsim_now(r->rs) >= end) {
            debug_dump(r->rs);
            return 0;
        }
        RS_CHECK_OK(r, regsim_run_for(r->rs, 50));
    }
    return 1;
}

/* Every churn process exits: none of their names is left anywhere. */
static int all_exit(rs_run_t *r)
{
    for (int k = 0; k < regsim_proc_count(r->rs); k++)
        if (regsim_proc(r->rs, k)->alive)
            RS_CHECK_OK(r, regsim_stop(r->rs, k, HERD_REASON_SHUTDOWN));
    RS_CHECK_OK(r, regsim_run_for(r->rs, 50));
    return until_agree(r, UINT32_MAX, churn_name, 1, "after every churn process exited");
}

static int scen_hostile_member(rs_run_t *r)
{
    uint32_t healthy = ((1u << NODES) - 1) & ~(1u << BAD);
    if (!make(r))
        return 0;
    g_h.on = 1;
    if (!churn(r) || !all_up(r))
        return 0;
    if (!until_agree(r, healthy, on_healthy, 0, "healthy nodes, mutation on") || !all_up(r))
        return 0;
    uint64_t refusals = refused(r->rs);
    RS_CHECK(r, g_h.mutated < MIN_MUTATED || refusals > 0,
             "%llu messages mutated, none refused", (unsigned long long)g_h.mutated);
    g_h.on = 0;
    for (int i = 0; i < NODES; i++)
        herd_drain(regsim_node(r->rs, 0), regsim_name(r->rs, i), 0);
    if (!until_all_agree(r, "mutation over"))
        return 0;
    RS_CHECK_OK(r, regsim_run_for(r->rs, 4500));
    if (!still_model(r) || !until_all_agree(r, "4.5 s after") || !all_exit(r))
        return 0;
    if (getenv("HERD_SIM_VERBOSE"))
        printf("seed %llu: %u per mille, %llu mutated, %llu refused\n",
               (unsigned long long)r->seed, g_h.pm, (unsigned long long)g_h.mutated,
               (unsigned long long)refusals);
    return 1;
}

int main(void)
{
    static const rs_case_t cases[] = {
        {"hostile_member", scen_hostile_member, 100},
    };
    return regsim_main("sim_hostile", cases, sizeof(cases) / sizeof(cases[0]));
}
