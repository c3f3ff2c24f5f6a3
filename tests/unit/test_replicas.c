/*
 * test_replicas.c - the replication stream's bad paths (handoff/replicas.c,
 * replica_serve.c, replica_query.c) with real nodes: three full nodes
 * (node, cluster, registry, distributed supervisor) of the simulation
 * harness (tests/sim/regsim.h) on a virtual clock over an in-memory
 * transport, each providing the counter service and "blob" (a state of any
 * size), each with a client process that makes calls and books the replies
 * (status, value, herd_msg_t.copies). Crafted messages are handed to a
 * node's app 3 handler (replicas_on_app) as from another member.
 *
 * What is covered:
 * - malformed: every kind (put, ack, drop, query, have, merge, merged, and
 *   unknown kinds), every strict prefix of each, a byte too many, state
 *   lengths over and under what follows, an empty name, a name with a NUL,
 *   a missing message (NULL), version 0 (put, merge), has > 2 (have),
 *   stored > 3 (ack), writer 0, a change on a version not below its own
 *   (batch of puts): each counted once in herd_repl_stats().malformed on
 *   the node that got it, nothing stored changed (the replica's copy, the
 *   owner's acknowledged versions, nothing merged), also once the cluster
 *   ran on; a well-formed put after them is taken (the control);
 * - too big: a blob child's state over REPL_STATE_MAX is not put (too_big,
 *   unreplicated count it), the reply still goes, saying copies 1, and the
 *   replica keeps the last state that fitted; once the state fits again
 *   the replies say copies 2 again;
 * - refused: a replica holding a newer version of the child's registration
 *   (put by hand) refuses the owner's puts (ack stored 0: `refused`), the
 *   owner puts again until its versions pass it, and only then the reply
 *   goes, with copies 2;
 * - a replica that dies mid-update (crashed as the owner's put is on its
 *   way): the owner's reply waits (its stats say 1 child lagging, for as
 *   long as it waited) until its membership has the replica down, then
 *   goes with copies 2, the new replica holding the state, no lag left;
 * - replies of a replicated counter say copies == 2 on a 3-node cluster
 *   (from every node's client, values exact); an unreplicated one's say 0;
 * - terminate deletes every copy on every node (held and held_bytes back
 *   to 0), copies 2 and 3;
 * - changes: a replicated counter puts its changes (deltas_out, deltas_in,
 *   36 bytes each), and its replica's copy holds the exact value; a gap (the
 *   replica's copy another version of the run's, or gone) is answered
 *   "whole state wanted" (delta_gaps) and the whole state goes, the reply
 *   still saying 2 copies; a change whose bytes do not read changes
 *   nothing kept;
 * - no room: a replica over max_replica_bytes refuses puts (no_room) and
 *   keeps what it had; its owner's replies go at once saying 1 copy
 *   (members_full once, unreplicated), the child under-replicated; with
 *   room again the owner's next put is taken, replies say 2, settled;
 * - forks: copies of the child's own registration by a run the owner's
 *   never saw, one at its replica (kept as an other at the owner's next
 *   put, whatever its version) and one at the node outside its set (an
 *   orphan), are both merged once (merged_in, the counter's value), then
 *   go from both nodes; the replica keeps the owner's copy alone;
 * - one batch in flight: with a replica's acknowledgements held back, the
 *   owner's next put waits for the batch in flight (puts_waited) until
 *   REPL_INFLIGHT_MS passed (inflight_expired), no reply goes unacknowledged,
 *   and both replies go, exact, once the acknowledgements pass again.
 *
 * Everything runs on the virtual clock; every wait has a deadline.
 * HERD_TEST_LOG=LEVEL shows the library's logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counter.h"
#include "dsup_int.h"
#include "dsup_layers.h"
#include "herd_dsup.h"
#include "herd_registry.h"
#include "log.h"
#include "regsim.h"
#include "replicas_int.h"
#include "wire.h"

#define NODES 3
#define CALL_MS 10000u
#define MAX_CALLS 256

/* ---- the client: calls by name, replies booked ---------------------------------------- */

typedef struct call {
    int used, done, status;
    int64_t value;
    uint8_t copies;
    uint64_t ref, done_at;
    herd_pid_t client;
} call_t;

typedef struct creq {
    uint32_t k; /* index in g.calls */
    char name[32];
    char cmd[48];
} creq_t;

typedef struct world {
    regsim_t *rs;
    herd_pid_t client[NODES];
    call_t calls[MAX_CALLS];
    int ncalls;
    int start_status, term_status[8];
} world_t;

static world_t g;

static int client_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state;
    if (msg->kind == HERD_MSG_INFO && msg->len == sizeof(creq_t)) {
        creq_t q;
        memcpy(&q, msg->data, sizeof(q));
        call_t *c = &g.calls[q.k];
        int rc = herd_call_name(self, q.name, q.cmd, strlen(q.cmd), CALL_MS, &c->ref);
        if (rc) {
            c->done = 1;
            c->status = rc;
        }
        return 0;
    }
    if (msg->kind != HERD_MSG_REPLY)
        return 0;
    for (int k = 0; k < g.ncalls; k++) {
        call_t *c = &g.calls[k];
        if (c->used && !c->done && c->ref == msg->ref &&
            herd_pid_equal(c->client, herd_self(self))) {
            c->done = 1;
            c->status = msg->status;
            c->copies = msg->copies;
            c->done_at = regsim_now(g.rs);
            char text[32];
            size_t l = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
            memcpy(text, msg->data, l);
            text[l] = '\0';
            c->value = strtoll(text, NULL, 10);
        }
    }
    return 0;
}

static const herd_behaviour_t client_behaviour = {.name = "client", .handle_info = client_info};

/* ---- blob: a state of any size ---------------------------------------------------------- */

typedef struct blob {
    size_t size;
} blob_t;

static int blob_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self, (void)arg, (void)len;
    blob_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return HERD_ENOMEM;
    b->size = 16;
    *state = b;
    return 0;
}

/* "grow N": the state is N bytes from now on; answers N. */
static int blob_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    blob_t *b = state;
    char text[32];
    size_t l = msg->len < sizeof(text) - 1 ? msg->len : sizeof(text) - 1;
    memcpy(text, msg->data, l);
    text[l] = '\0';
    if (strncmp(text, "grow ", 5) == 0)
        b->size = (size_t)strtoull(text + 5, NULL, 10);
    int n = snprintf(text, sizeof(text), "%zu", b->size);
    return herd_reply(herd_proc_node(self), from, 0, text, (size_t)n);
}

static int blob_out(herd_proc_t *self, void *state, uint8_t **out, size_t *len)
{
    (void)self;
    blob_t *b = state;
    *out = malloc(b->size ? b->size : 1);
    if (*out == NULL)
        return HERD_ENOMEM;
    memset(*out, 'b', b->size);
    *len = b->size;
    return 0;
}

static int blob_in(herd_proc_t *self, const uint8_t *data, size_t len, void **state)
{
    (void)self, (void)data;
    blob_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return HERD_ENOMEM;
    b->size = len;
    *state = b;
    return 0;
}

static void blob_end(herd_proc_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    free(state);
}

static const herd_behaviour_t blob_behaviour = {.name = "blob",
                                                .init = blob_init,
                                                .handle_call = blob_call,
                                                .terminate = blob_end,
                                                .handoff_out = blob_out,
                                                .handoff_in = blob_in};

/* ---- the world -------------------------------------------------------------------------- */

/* Full reconciles and the walks over the copies kept (orphans offered,
 * unwanted copies collected) go 2 keys or copies a loop turn: every test
 * here runs them spread over many turns (test_dsup's, in one). */
static const herd_dsup_config_t DCFG = {.reconcile_ms = 300, .handoff_timeout_ms = 2000,
                                        .reconcile_slice = 2};

static int hook_start(regsim_t *rs, int i, herd_node_t *n, void *data)
{
    (void)rs, (void)data;
    int rc = herd_dsup_start(n, &DCFG);
    if (rc == 0)
        rc = herd_service_register(n, "counter", &counter_behaviour);
    if (rc == 0)
        rc = herd_service_register(n, "blob", &blob_behaviour);
    herd_spawn_opts_t o = {.behaviour = &client_behaviour};
    if (rc == 0)
        rc = herd_spawn(n, &o, &g.client[i]);
    return rc;
}

static int hook_poll(regsim_t *rs, int i, herd_node_t *n, void *data)
{
    (void)rs, (void)i, (void)data;
    return herd_dsup_poll(n);
}

static const regsim_hooks_t HOOKS = {.on_start = hook_start, .on_poll = hook_poll};

static int setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof(g));
    regsim_config_t cfg = {.seed = 7,
                           .nodes = NODES,
                           .tick_ms = 5,
                           .heartbeat_ms = 50,
                           .suspect_ms = 150,
                           .down_ms = 300,
                           .forget_ms = 4000,
                           .delay_min = 1,
                           .delay_max = 10,
                           .hooks = &HOOKS};
    if (regsim_new(&cfg, &g.rs) != 0)
        return -1;
    for (int i = 0; i < NODES; i++)
        if (regsim_start(g.rs, i) != 0 || regsim_run_for(g.rs, 10) != 0)
            return -1;
    return regsim_run_until_members(g.rs, regsim_now(g.rs) + 5000) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    regsim_free(g.rs);
    g.rs = NULL;
    return 0;
}

static herd_node_t *node(int i)
{
    herd_node_t *n = regsim_node(g.rs, i);
    assert_non_null(n);
    return n;
}

static uint64_t id_of(int i)
{
    return herd_node_id_of(regsim_name(g.rs, i));
}

static int index_of(uint64_t id)
{
    for (int i = 0; i < NODES; i++)
        if (id_of(i) == id)
            return i;
    fail_msg("no node with id %016llx", (unsigned long long)id);
    return -1;
}

static dsup_t *dsup(int i)
{
    dsup_t *d = dsup_of(node(i));
    assert_non_null(d);
    assert_non_null(d->repl);
    return d;
}

static herd_repl_stats_t stats(int i)
{
    herd_repl_stats_t s;
    assert_int_equal(herd_repl_stats(node(i), &s), 0);
    return s;
}

static void run_ms(uint64_t ms)
{
    assert_int_equal(regsim_run_for(g.rs, ms), 0);
}

#define RUN_UNTIL(cond, ms)                                                              \
    do {                                                                                 \
        uint64_t until_ = regsim_now(g.rs) + (ms);                                       \
        while (!(cond)) {                                                                \
            if (regsim_now(g.rs) >= until_)                                              \
                fail_msg("%s:%d: no %s within %u ms (virtual)", __FILE__, __LINE__, #cond, \
                         (unsigned)(ms));                                                \
            assert_int_equal(regsim_step(g.rs), 0);                                      \
        }                                                                                \
    } while (0)

/* ---- children --------------------------------------------------------------------------- */

typedef struct view {
    int found;
    const char *name;
    herd_child_view_t v;
} view_t;

static int view_visit(void *data, const herd_child_view_t *c)
{
    view_t *w = data;
    if (strcmp(c->name, w->name) != 0 || c->state != HERD_CHILD_RUNNING)
        return 0;
    w->found = 1;
    w->v = *c;
    w->v.name = w->v.service = NULL; /* valid during the visit only */
    return 1;
}

/* The node running `name` (-1: none), its view in *out. */
static int owner_of(const char *name, herd_child_view_t *out)
{
    int at = -1;
    for (int i = 0; i < NODES; i++) {
        if (!regsim_is_up(g.rs, i))
            continue;
        view_t w = {.name = name};
        herd_which_children(node(i), view_visit, &w);
        if (w.found) {
            assert_int_equal(at, -1); /* one copy runs */
            at = i;
            if (out)
                *out = w.v;
        }
    }
    return at;
}

static void start_cb(void *data, const herd_start_result_t *res)
{
    *(int *)data = res->status;
}

/* Whether every node finds `name` in the registry. */
static int seen_everywhere(const char *name)
{
    for (int i = 0; i < NODES; i++) {
        herd_pid_t pid;
        if (regsim_is_up(g.rs, i) && herd_whereis(node(i), name, &pid, NULL) != 0)
            return 0;
    }
    return 1;
}

static void start(int via, const char *name, const char *service, uint8_t replicas)
{
    herd_child_req_t req = {.name = name, .service = service,
                            .restart = HERD_RESTART_PERMANENT, .replicas = replicas};
    g.start_status = 1;
    assert_int_equal(herd_start_child_async(node(via), &req, 5000, start_cb, &g.start_status),
                     0);
    RUN_UNTIL(g.start_status != 1, 6000);
    assert_int_equal(g.start_status, 0);
    RUN_UNTIL(owner_of(name, NULL) >= 0 && seen_everywhere(name), 3000);
}

/* Ask node i's client to call `name` with `cmd`; returns the call's index. */
static int call(int i, const char *name, const char *cmd)
{
    assert_true(g.ncalls < MAX_CALLS);
    int k = g.ncalls++;
    call_t *c = &g.calls[k];
    memset(c, 0, sizeof(*c));
    c->used = 1;
    c->client = g.client[i];
    creq_t q = {.k = (uint32_t)k};
    snprintf(q.name, sizeof(q.name), "%s", name);
    snprintf(q.cmd, sizeof(q.cmd), "%s", cmd);
    assert_int_equal(herd_node_send(node(i), g.client[i], &q, sizeof(q)), 0);
    return k;
}

/* The call's reply, which must come within ms and be a success. */
static call_t *answered(int k, uint64_t ms)
{
    RUN_UNTIL(g.calls[k].done, ms);
    if (g.calls[k].status != 0)
        fail_msg("call %d answered %s", k, herd_strerror(g.calls[k].status));
    return &g.calls[k];
}

/* Whether every node has its replication settled. */
static int all_settled(void)
{
    for (int i = 0; i < NODES; i++)
        if (regsim_is_up(g.rs, i) && !herd_repl_settled(node(i)))
            return 0;
    return 1;
}

/* Start a counter with 2 copies, increment it `incr` times (each reply
 * saying 2 copies), settled; its owner and replica in *o and *r, the third
 * node in *t. */
static void counter_up(const char *name, int incr, int *o, int *r, int *t)
{
    start(0, name, "counter", 2);
    for (int i = 0; i < incr; i++) {
        call_t *c = answered(call(i % NODES, name, "incr"), CALL_MS);
        assert_int_equal(c->value, i + 1);
        assert_int_equal(c->copies, 2);
    }
    RUN_UNTIL(all_settled(), 3000);
    herd_child_view_t v;
    *o = owner_of(name, &v);
    assert_true(*o >= 0);
    assert_int_equal(v.copies, 2);
    assert_int_equal(v.replica_count, 1);
    *r = index_of(v.replicas[0]);
    assert_int_not_equal(*r, *o);
    *t = NODES - *o - *r;
    RUN_UNTIL(replica_find(&dsup(*r)->repl->store, name) != NULL, 2000);
}

/* ---- messages made by hand ------------------------------------------------------------------ */

typedef struct msg {
    uint8_t *b;
    size_t n;
} msg_t;

static msg_t msg_take(wire_writer_t *w)
{
    msg_t m;
    m.b = wire_writer_take(w, &m.n);
    assert_non_null(m.b);
    return m;
}

static void msg_head(wire_writer_t *w, uint8_t kind, const char *name)
{
    wire_writer_init(w);
    wire_put_u8(w, kind);
    wire_put_str(w, name);
}

/* The run copy messages made by hand say wrote them (m_copy): one no
 * real child is, unless a case sets it. */
static uint64_t m_writer = 77;
/* The token of the puts in batches made by hand (the owner's process
 * serial of the child, echoed by the acks): any but 0 is taken. */
static uint64_t m_token = 5;

static msg_t m_copy(uint8_t kind, const char *name, const uint64_t *query, uint8_t has,
                    uint64_t hlc, uint64_t version, const void *bytes, size_t len)
{
    wire_writer_t w;
    msg_head(&w, kind, name);
    if (query) {
        wire_put_u64(&w, *query);
        wire_put_u8(&w, has);
    }
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, version);
    wire_put_u64(&w, m_writer); /* lineage: the writer, as its own base */
    wire_put_u64(&w, m_writer);
    wire_put_u64(&w, version);
    wire_put_bytes(&w, bytes, len);
    return msg_take(&w);
}

/* A batch of puts with one entry: the whole state (on 0) or a change on
 * version `on`, by run m_writer. */
static msg_t m_puts(const char *name, uint64_t hlc, uint64_t version, uint64_t on,
                    const void *bytes, size_t len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, REPL_PUTS);
    wire_put_str(&w, name);
    wire_put_u64(&w, m_token);
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, version);
    wire_put_u64(&w, on);
    wire_put_u64(&w, m_writer);
    wire_put_u64(&w, m_writer);
    wire_put_u64(&w, version);
    wire_put_bytes(&w, bytes, len);
    return msg_take(&w);
}

/* A batch of acks with one entry, for the put of token `token`. */
static msg_t m_acks(uint64_t token, uint64_t hlc, uint64_t version, uint8_t stored)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, REPL_ACKS);
    wire_put_u64(&w, token);
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, version);
    wire_put_u8(&w, stored);
    return msg_take(&w);
}

static msg_t m_ack(const char *name, uint64_t hlc, uint64_t version, uint8_t stored)
{
    wire_writer_t w;
    msg_head(&w, REPL_ACK, name);
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, version);
    wire_put_u8(&w, stored);
    return msg_take(&w);
}

static msg_t m_u64(uint8_t kind, const char *name, uint64_t v)
{
    wire_writer_t w;
    msg_head(&w, kind, name);
    wire_put_u64(&w, v);
    return msg_take(&w);
}

static msg_t m_merged(const char *name, uint64_t hlc, uint64_t writer)
{
    wire_writer_t w;
    msg_head(&w, REPL_MERGED, name);
    wire_put_u64(&w, hlc);
    wire_put_u64(&w, writer);
    wire_put_u64(&w, UINT64_MAX); /* every version */
    return msg_take(&w);
}

/* Hand node `at` a replication message as from node `from`. */
static void inject(int at, int from, const uint8_t *b, size_t n)
{
    uint64_t inc = herd_cluster_member_incarnation(node(at), id_of(from));
    assert_int_not_equal(inc, 0);
    replicas_on_app(dsup(at), id_of(from), inc, b, n);
}

/* What a node holds of `name`, to compare before and after. */
typedef struct held {
    int found;
    uint64_t hlc, version, owner;
    size_t len, others_n;
    uint8_t bytes[256];
    size_t count;
    uint64_t total;
} held_t;

static held_t held_of(int i, const char *name)
{
    held_t h;
    memset(&h, 0, sizeof(h));
    const replica_store_t *s = &dsup(i)->repl->store;
    const replica_t *r = replica_find(s, name);
    h.count = s->count;
    h.total = s->bytes;
    if (r) {
        h.found = 1;
        h.hlc = r->hlc;
        h.version = r->version;
        h.owner = r->owner;
        h.len = r->len;
        h.others_n = r->others_n;
        if (r->bytes)
            memcpy(h.bytes, r->bytes, r->len < sizeof(h.bytes) ? r->len : sizeof(h.bytes));
    }
    return h;
}

static void assert_held_same(const held_t *a, const held_t *b, const char *what)
{
    if (a->found != b->found || a->hlc != b->hlc || a->version != b->version ||
        a->owner != b->owner || a->len != b->len || a->others_n != b->others_n ||
        a->count != b->count || a->total != b->total ||
        memcmp(a->bytes, b->bytes, sizeof(a->bytes)) != 0)
        fail_msg("%s changed what the replica holds: version %llu -> %llu, hlc %llu -> %llu, "
                 "%zu -> %zu bytes, %zu -> %zu copies held", what,
                 (unsigned long long)a->version, (unsigned long long)b->version,
                 (unsigned long long)a->hlc, (unsigned long long)b->hlc, a->len, b->len,
                 a->count, b->count);
}

/* The owner's view of the child: what each member acknowledged. */
static void assert_view_same(const herd_child_view_t *a, const herd_child_view_t *b,
                             const char *what)
{
    if (a->replica_count != b->replica_count || a->replica_acked[0] != b->replica_acked[0] ||
        a->version != b->version || a->released != b->released)
        fail_msg("%s changed the owner's view: acked %llu -> %llu, version %llu -> %llu, "
                 "released %llu -> %llu", what, (unsigned long long)a->replica_acked[0],
                 (unsigned long long)b->replica_acked[0], (unsigned long long)a->version,
                 (unsigned long long)b->version, (unsigned long long)a->released,
                 (unsigned long long)b->released);
}

/* ---- malformed messages ------------------------------------------------------------------ */

typedef struct bad_ctx {
    const char *name;
    int o, r, t;
    held_t held;             /* the replica's, before */
    herd_child_view_t view;  /* the owner's, before */
    uint64_t merged_in;      /* the owner's, before */
    unsigned sent;
} bad_ctx_t;

/* Hand `at` one malformed message: counted once as malformed, nothing held
 * or acknowledged changed. */
static void bad_one(bad_ctx_t *x, int at, int from, const uint8_t *b, size_t n,
                    const char *what)
{
    uint64_t before = stats(at).malformed;
    inject(at, from, b, n);
    uint64_t after = stats(at).malformed;
    if (after != before + 1)
        fail_msg("%s (%zu bytes) to %s: malformed %llu -> %llu (one more expected)", what, n,
                 regsim_name(g.rs, at), (unsigned long long)before,
                 (unsigned long long)after);
    held_t h = held_of(x->r, x->name);
    assert_held_same(&x->held, &h, what);
    herd_child_view_t v;
    assert_int_equal(owner_of(x->name, &v), x->o);
    assert_view_same(&x->view, &v, what);
    assert_int_equal(stats(x->o).merged_in, x->merged_in);
    x->sent++;
}

/* Every strict prefix of m, and m with a byte more. */
static void bad_cuts(bad_ctx_t *x, int at, int from, msg_t m, const char *what)
{
    char label[96];
    for (size_t n = 0; n < m.n; n++) {
        uint8_t *cut = malloc(n ? n : 1); /* exact size: ASan sees an overread */
        assert_non_null(cut);
        memcpy(cut, m.b, n);
        snprintf(label, sizeof(label), "%s cut to %zu of %zu bytes", what, n, m.n);
        bad_one(x, at, from, cut, n, label);
        free(cut);
    }
    uint8_t *more = malloc(m.n + 1);
    assert_non_null(more);
    memcpy(more, m.b, m.n);
    more[m.n] = 0;
    snprintf(label, sizeof(label), "%s with a byte too many", what);
    bad_one(x, at, from, more, m.n + 1, label);
    free(more);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A copy message's state length (its u32 just before the state) set to
 * `len` instead. */
static void bad_length(bad_ctx_t *x, int at, int from, msg_t m, size_t state_len,
                       uint32_t len, const char *what)
{
    uint8_t *b = malloc(m.n);
    assert_non_null(b);
    memcpy(b, m.b, m.n);
    put_le32(b + m.n - state_len - 4, len);
    char label[96];
    snprintf(label, sizeof(label), "%s with a state length of %u for %zu bytes", what, len,
             state_len);
    bad_one(x, at, from, b, m.n, label);
    free(b);
}

static void test_replicas_malformed(void **state)
{
    (void)state;
    bad_ctx_t x = {.name = "ctr"};
    counter_up(x.name, 5, &x.o, &x.r, &x.t);
    x.held = held_of(x.r, x.name);
    assert_true(x.held.found);
    assert_true(x.held.version > 0);
    assert_int_equal(owner_of(x.name, &x.view), x.o);
    x.merged_in = stats(x.o).merged_in;
    const char *name = x.name;
    uint64_t hlc = x.held.hlc, newer = x.held.version + 1, qid = 1;
    static const uint8_t st[] = "a state";
    size_t sl = sizeof(st);

    /* no message, an empty one, a kind alone, a bad name, unknown kinds */
    bad_one(&x, x.r, x.o, NULL, 0, "no message");
    static const uint8_t empty[1];
    bad_one(&x, x.r, x.o, empty, 0, "an empty message");
    msg_t m = m_copy(REPL_PUT, "", NULL, 0, hlc, newer, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a put with an empty name");
    free(m.b);
    m = m_copy(REPL_PUT, "ctr", NULL, 0, hlc, newer, st, sl);
    m.b[3] = '\0'; /* "c\0r" */
    bad_one(&x, x.r, x.o, m.b, m.n, "a put with a NUL in its name");
    m.b[1] = 200; /* a name longer than the message */
    bad_one(&x, x.r, x.o, m.b, m.n, "a put whose name runs past the end");
    free(m.b);
    static const uint8_t kinds[] = {0, REPL_ACKS + 1, 0x7f, 0xff};
    for (size_t i = 0; i < sizeof(kinds); i++) {
        m = m_copy(kinds[i], name, NULL, 0, hlc, newer, st, sl);
        bad_one(&x, x.r, x.o, m.b, m.n, "an unknown kind");
        free(m.b);
    }

    /* put (to the replica): a well-formed one would be taken (newer) */
    m = m_copy(REPL_PUT, name, NULL, 0, hlc, newer, st, sl);
    bad_cuts(&x, x.r, x.o, m, "a put");
    bad_length(&x, x.r, x.o, m, sl, (uint32_t)sl + 1, "a put");
    bad_length(&x, x.r, x.o, m, sl, (uint32_t)sl - 1, "a put");
    bad_length(&x, x.r, x.o, m, sl, UINT32_MAX, "a put");
    bad_length(&x, x.r, x.o, m, sl, 0, "a put");
    free(m.b);
    m = m_copy(REPL_PUT, name, NULL, 0, hlc, 0, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a put of version 0");
    free(m.b);
    m_writer = 0; /* every run has a writer */
    m = m_copy(REPL_PUT, name, NULL, 0, hlc, newer, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a put of writer 0");
    free(m.b);
    m = m_puts(name, hlc, newer, 0, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a batch of puts of writer 0");
    free(m.b);
    m = m_copy(REPL_MERGE, name, NULL, 0, hlc + 1, newer, st, sl);
    bad_one(&x, x.o, x.r, m.b, m.n, "a merge of writer 0");
    free(m.b);
    m_writer = 77;

    /* a batch of puts (to the replica): one entry, well-formed it would be
     * taken; every cut of it (the kind alone: an empty batch) is refused */
    m = m_puts(name, hlc, newer, 0, st, sl);
    bad_cuts(&x, x.r, x.o, m, "a batch of puts");
    bad_length(&x, x.r, x.o, m, sl, (uint32_t)sl + 1, "a batch of puts");
    free(m.b);
    m = m_puts(name, hlc, 0, 0, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a batch of puts with version 0");
    free(m.b);
    m_token = 0; /* the owner names every put's child */
    m = m_puts(name, hlc, newer, 0, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a batch of puts of token 0");
    free(m.b);
    m_token = 5;
    m = m_puts(name, hlc, newer, newer, st, sl); /* a change follows an older version */
    bad_one(&x, x.r, x.o, m.b, m.n, "a change on its own version");
    free(m.b);
    m = m_puts(name, hlc, newer, newer + 1, st, sl);
    bad_one(&x, x.r, x.o, m.b, m.n, "a change on a later version");
    free(m.b);

    /* ack (to the owner, from its replica): well-formed, it would count */
    m = m_ack(name, hlc, x.view.version + 100, 1);
    bad_cuts(&x, x.o, x.r, m, "an ack");
    free(m.b);
    static const uint8_t bad_stored[] = {4, 5, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad_stored); i++) {
        m = m_ack(name, hlc, x.view.version + 100, bad_stored[i]);
        bad_one(&x, x.o, x.r, m.b, m.n, "an ack with stored > 3");
        free(m.b);
        m = m_acks(x.view.pid.serial, hlc, x.view.version + 100, bad_stored[i]);
        bad_one(&x, x.o, x.r, m.b, m.n, "a batch of acks with stored > 3");
        free(m.b);
    }
    m = m_acks(x.view.pid.serial, hlc, x.view.version + 100, 1);
    bad_cuts(&x, x.o, x.r, m, "a batch of acks");
    free(m.b);
    m = m_acks(0, hlc, x.view.version + 100, 1); /* no put has token 0 */
    bad_one(&x, x.o, x.r, m.b, m.n, "a batch of acks of token 0");
    free(m.b);

    /* drop (to the replica): well-formed, it would drop the copy */
    m = m_u64(REPL_DROP, name, hlc);
    bad_cuts(&x, x.r, x.o, m, "a drop");
    free(m.b);

    /* query (to the replica) */
    m = m_u64(REPL_QUERY, name, qid);
    bad_cuts(&x, x.r, x.o, m, "a query");
    free(m.b);

    /* have (to the replica: no query under way; and to the owner) */
    m = m_copy(REPL_HAVE, name, &qid, 1, hlc, newer, st, sl);
    bad_cuts(&x, x.r, x.t, m, "a have");
    bad_length(&x, x.r, x.t, m, sl, (uint32_t)sl + 1, "a have");
    bad_length(&x, x.r, x.t, m, sl, UINT32_MAX, "a have");
    free(m.b);
    static const uint8_t bad_has[] = {3, 4, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad_has); i++) {
        m = m_copy(REPL_HAVE, name, &qid, bad_has[i], hlc, newer, st, sl);
        bad_one(&x, x.r, x.t, m.b, m.n, "a have with has > 2");
        bad_one(&x, x.o, x.t, m.b, m.n, "a have with has > 2");
        free(m.b);
    }

    /* merge (to the owner, a copy of another registration): well-formed,
     * it would be merged in */
    uint8_t *other = NULL;
    size_t other_len = 0;
    counter_state_t *cs;
    static const uint8_t blank[12] = {9}; /* copy id 9, no slots */
    assert_int_equal(counter_decode(blank, sizeof(blank), &cs), 0);
    int64_t v;
    assert_int_equal(counter_apply(cs, "incr 1000", 9, &v), 0);
    assert_int_equal(counter_encode(cs, &other, &other_len), 0);
    counter_free(cs);
    m = m_copy(REPL_MERGE, name, NULL, 0, hlc + 1, 1, other, other_len);
    bad_cuts(&x, x.o, x.r, m, "a merge");
    bad_length(&x, x.o, x.r, m, other_len, (uint32_t)other_len + 1, "a merge");
    bad_length(&x, x.o, x.r, m, other_len, (uint32_t)other_len - 1, "a merge");
    free(m.b);
    m = m_copy(REPL_MERGE, name, NULL, 0, hlc + 1, 0, other, other_len);
    bad_one(&x, x.o, x.r, m.b, m.n, "a merge of version 0");
    free(m.b);

    /* merged (to the replica) */
    m = m_merged(name, hlc, 77);
    bad_cuts(&x, x.r, x.o, m, "a merged");
    free(m.b);

    /* the cluster runs on: still nothing changed, nothing merged */
    run_ms(1000);
    held_t h = held_of(x.r, name);
    assert_held_same(&x.held, &h, "the malformed messages, a second later,");
    assert_int_equal(stats(x.o).merged_in, x.merged_in);
    call_t *c = answered(call(x.t, name, "get"), CALL_MS);
    assert_int_equal(c->value, 5);
    print_message("%u malformed messages, each counted once, nothing changed\n", x.sent);

    /* the control: the merge and the put well-formed are taken */
    uint64_t bad = stats(x.r).malformed;
    newer = held_of(x.r, name).version + 1;
    m = m_copy(REPL_PUT, name, NULL, 0, hlc, newer, st, sl);
    inject(x.r, x.t, m.b, m.n);
    free(m.b);
    assert_int_equal(stats(x.r).malformed, bad);
    h = held_of(x.r, name);
    assert_int_equal(h.version, newer);
    assert_int_equal(h.len, sl);
    bad = stats(x.o).malformed;
    m = m_copy(REPL_MERGE, name, NULL, 0, hlc + 1, 1, other, other_len);
    inject(x.o, x.r, m.b, m.n);
    free(m.b);
    free(other);
    assert_int_equal(stats(x.o).malformed, bad);
    assert_int_equal(stats(x.o).merged_in, x.merged_in + 1);
    c = answered(call(x.t, name, "get"), CALL_MS);
    assert_int_equal(c->value, 1005);
}

/* ---- too big ------------------------------------------------------------------------------ */

static void test_replicas_too_big(void **state)
{
    (void)state;
    start(1, "big", "blob", 2);
    call_t *c = answered(call(0, "big", "grow 100"), CALL_MS);
    assert_int_equal(c->copies, 2);
    RUN_UNTIL(all_settled(), 3000);
    herd_child_view_t v;
    int o = owner_of("big", &v);
    int r = index_of(v.replicas[0]);
    held_t before = held_of(r, "big");
    assert_int_equal(before.len, 100);
    herd_repl_stats_t s0 = stats(o);
    uint64_t puts_in = stats(r).puts_in;

    /* over REPL_STATE_MAX: not put, the reply goes with one copy */
    char cmd[48];
    snprintf(cmd, sizeof(cmd), "grow %u", REPL_STATE_MAX + 1);
    c = answered(call(o, "big", cmd), CALL_MS);
    assert_int_equal(c->value, REPL_STATE_MAX + 1);
    assert_int_equal(c->copies, 1);
    herd_repl_stats_t s1 = stats(o);
    assert_int_equal(s1.too_big, s0.too_big + 1);
    assert_int_equal(s1.unreplicated, s0.unreplicated + 1);
    assert_int_equal(s1.puts_out, s0.puts_out);
    c = answered(call((o + 1) % NODES, "big", "get"), CALL_MS); /* from another node too */
    assert_int_equal(c->copies, 1);
    run_ms(500);
    held_t h = held_of(r, "big");
    assert_held_same(&before, &h, "a state too big");
    assert_int_equal(stats(r).puts_in, puts_in); /* nothing arrived */
    assert_true(stats(o).too_big >= s1.too_big + 1);

    /* fits again: put, replies with 2 copies */
    c = answered(call(o, "big", "grow 10"), CALL_MS);
    assert_int_equal(c->copies, 2);
    RUN_UNTIL(held_of(r, "big").len == 10, 1000);
    herd_repl_stats_t s2 = stats(o);
    assert_true(s2.puts_out > s1.puts_out);
    c = answered(call(r, "big", "get"), CALL_MS);
    assert_int_equal(c->value, 10);
    assert_int_equal(c->copies, 2);
}

/* ---- refused ------------------------------------------------------------------------------ */

static void test_replicas_refused_puts_again(void **state)
{
    (void)state;
    int o, r, t;
    counter_up("ctr", 3, &o, &r, &t);
    held_t h0 = held_of(r, "ctr");
    herd_repl_stats_t so = stats(o);
    assert_int_equal(so.refused, 0);
    /* the replica gets a version of the registration 300 ms ahead of the
     * owner's clock (from the third node: its ack goes there) */
    uint64_t ahead = herd_node_hlc_now(node(o)) + ((uint64_t)300 << 16);
    static const uint8_t st[] = "ahead";
    m_writer = replica_find(&dsup(r)->repl->store, "ctr")->writer; /* the owner's run */
    msg_t m = m_copy(REPL_PUT, "ctr", NULL, 0, h0.hlc, ahead, st, sizeof(st));
    m_writer = 77;
    inject(r, t, m.b, m.n);
    free(m.b);
    assert_int_equal(held_of(r, "ctr").version, ahead);
    uint64_t t0 = regsim_now(g.rs);
    int k = call(o, "ctr", "incr");
    /* the owner's puts are older: refused, put again until they pass it */
    RUN_UNTIL(stats(o).refused > 0, 1000);
    assert_false(g.calls[k].done);
    call_t *c = answered(k, 3000);
    assert_int_equal(c->value, 4);
    assert_int_equal(c->copies, 2);
    herd_repl_stats_t s1 = stats(o);
    assert_true(s1.refused >= 1);
    assert_true(s1.puts_out >= so.puts_out + 2);
    if (c->done_at - t0 < 250)
        fail_msg("the reply went %llu ms after the call: before the owner's versions passed "
                 "the one the replica held", (unsigned long long)(c->done_at - t0));
    held_t h1 = held_of(r, "ctr");
    assert_true(h1.version > ahead);
    assert_int_equal(h1.hlc, h0.hlc);
    assert_int_equal(h1.owner, id_of(o));
    print_message("refused %llu puts, answered after %llu ms\n",
                  (unsigned long long)s1.refused, (unsigned long long)(c->done_at - t0));
}

/* ---- a replica dies mid-update ------------------------------------------------------------- */

static void test_replicas_replica_dies_mid_update(void **state)
{
    (void)state;
    int o, r, t;
    counter_up("ctr", 3, &o, &r, &t);
    uint64_t puts = stats(o).puts_out;
    int k = call(o, "ctr", "incr");
    /* the put is on its way: the replica crashes before it arrives */
    RUN_UNTIL(stats(o).puts_out > puts, 1000);
    assert_false(g.calls[k].done);
    assert_int_equal(regsim_crash(g.rs, r), 0);
    uint64_t crashed = regsim_now(g.rs);
    herd_member_info_t m;
    uint64_t deadline = crashed + 3000;
    run_ms(100);
    herd_repl_stats_t lag = stats(o); /* the put waits for the crashed replica */
    assert_int_equal(lag.lagging, 1);
    assert_true(lag.lag_ms >= 100);
    while (!g.calls[k].done) {
        assert_true(regsim_now(g.rs) < deadline);
        assert_int_equal(regsim_step(g.rs), 0);
        herd_child_view_t v;
        assert_int_equal(owner_of("ctr", &v), o);
        assert_int_equal(herd_cluster_member(node(o), id_of(r), &m), 0);
        if (!g.calls[k].done)
            continue;
        /* it went: the owner had the replica down, and the new set holds it */
        if (m.state != HERD_MEMBER_DOWN)
            fail_msg("the reply went %llu ms after the replica crashed, the owner seeing it %s",
                     (unsigned long long)(regsim_now(g.rs) - crashed),
                     herd_member_state_name(m.state));
        assert_int_equal(v.replica_count, 1);
        assert_int_equal(v.replicas[0], id_of(t));
    }
    call_t *c = &g.calls[k];
    assert_int_equal(c->status, 0);
    assert_int_equal(c->value, 4);
    assert_int_equal(c->copies, 2);
    held_t h = held_of(t, "ctr");
    assert_true(h.found);
    herd_child_view_t v;
    assert_int_equal(owner_of("ctr", &v), o);
    assert_true(h.version >= v.released);
    RUN_UNTIL(stats(o).lagging == 0, 2000);
    assert_int_equal(stats(o).lag_ms, 0);
    print_message("answered %llu ms after the replica's crash\n",
                  (unsigned long long)(c->done_at - crashed));
    /* and on with the new set */
    c = answered(call(t, "ctr", "incr"), CALL_MS);
    assert_int_equal(c->value, 5);
    assert_int_equal(c->copies, 2);
}

/* ---- copies in replies ----------------------------------------------------------------------- */

static void test_replicas_replies_say_two_copies(void **state)
{
    (void)state;
    static const char *const names[] = {"c0", "c1", "c2", "c3"};
    for (int i = 0; i < 4; i++)
        start(i % NODES, names[i], "counter", 2);
    start(0, "plain", "counter", 1);
    int64_t want[4] = {0};
    for (int round = 0; round < 6; round++) {
        int k[4];
        for (int i = 0; i < 4; i++)
            k[i] = call((round + i) % NODES, names[i], "incr");
        for (int i = 0; i < 4; i++) {
            call_t *c = answered(k[i], CALL_MS);
            assert_int_equal(c->value, ++want[i]);
            if (c->copies != 2)
                fail_msg("%s: incr %lld answered with copies %u", names[i],
                         (long long)c->value, (unsigned)c->copies);
        }
    }
    /* the replica sets: each counter's copy on the member after its owner */
    RUN_UNTIL(all_settled(), 3000);
    uint64_t held = 0;
    for (int i = 0; i < NODES; i++)
        held += stats(i).held;
    assert_int_equal(held, 4);
    call_t *c = answered(call(1, "plain", "incr"), CALL_MS);
    assert_int_equal(c->value, 1);
    assert_int_equal(c->copies, 0); /* not gated: says nothing */
}

/* ---- terminate ----------------------------------------------------------------------------- */

static void term_cb(void *data, int status)
{
    *(int *)data = status;
}

static void test_replicas_terminate_deletes_copies(void **state)
{
    (void)state;
    static const char *const names[] = {"t0", "t1", "t2", "t3"};
    static const uint8_t copies[] = {2, 2, 3, 3};
    for (int i = 0; i < 4; i++) {
        start(i % NODES, names[i], "counter", copies[i]);
        for (int j = 0; j <= i; j++) {
            call_t *c = answered(call(j % NODES, names[i], "incr"), CALL_MS);
            assert_int_equal(c->copies, copies[i]);
        }
    }
    RUN_UNTIL(all_settled(), 3000);
    uint64_t held = 0;
    for (int i = 0; i < NODES; i++) {
        herd_repl_stats_t s = stats(i);
        held += s.held;
            assert_true(s.held_bytes > 0 || s.held == 0);
    }
    assert_int_equal(held, 1 + 1 + 2 + 2);
    for (int i = 0; i < 4; i++) {
        g.term_status[i] = 1;
        assert_int_equal(herd_terminate_child_async(node((i + 1) % NODES), names[i], 3000,
                                                    term_cb, &g.term_status[i]), 0);
    }
    RUN_UNTIL(g.term_status[0] != 1 && g.term_status[1] != 1 && g.term_status[2] != 1 &&
                  g.term_status[3] != 1, 4000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g.term_status[i], 0);
    uint64_t left = 0;
    uint64_t until = regsim_now(g.rs) + 3000;
    for (;;) {
        left = 0;
        for (int i = 0; i < NODES; i++) {
            herd_repl_stats_t s = stats(i);
            left += s.held + s.held_bytes;
        }
        if (left == 0 || regsim_now(g.rs) >= until)
            break;
        assert_int_equal(regsim_step(g.rs), 0);
    }
    for (int i = 0; i < NODES; i++) {
        herd_repl_stats_t s = stats(i);
        if (s.held || s.held_bytes)
            fail_msg("%s still holds %llu copies (%llu bytes) 3 s after the terminates",
                     regsim_name(g.rs, i), (unsigned long long)s.held,
                     (unsigned long long)s.held_bytes);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(owner_of(names[i], NULL), -1);
}

/* ---- changes (delta_out, delta_apply) ---------------------------------------------------- */

/* The value of the counter copy node i keeps of `name` (-1: none). */
static int64_t held_value(int i, const char *name)
{
    const replica_t *r = replica_find(&dsup(i)->repl->store, name);
    counter_state_t *c;
    if (r == NULL || r->bytes == NULL || counter_decode(r->bytes, r->len, &c) != 0)
        return -1;
    int64_t v = counter_value(c);
    counter_free(c);
    return v;
}

/* The counter puts its changes, not its whole state, once its replica has
 * a copy; a change that does not follow the copy kept (a gap: the copy is
 * another version, or gone) is answered "whole state wanted", and the
 * owner puts the whole state: the reply still goes with 2 copies, the
 * replica's copy exact. A change the behaviour cannot apply (bytes it
 * cannot read) changes nothing kept. */
static void test_replicas_deltas(void **state)
{
    (void)state;
    int o, r, t;
    counter_up("dl", 3, &o, &r, &t);
    herd_repl_stats_t so = stats(o), sr = stats(r);
    for (int i = 0; i < 5; i++) {
        call_t *c = answered(call(o, "dl", "incr"), CALL_MS);
        assert_int_equal(c->value, 4 + i);
        assert_int_equal(c->copies, 2);
    }
    RUN_UNTIL(held_value(r, "dl") == 8, 2000);
    herd_repl_stats_t so1 = stats(o), sr1 = stats(r);
    assert_true(so1.deltas_out >= so.deltas_out + 5);
    assert_true(sr1.deltas_in >= sr.deltas_in + 5);
    assert_int_equal(so1.delta_gaps, so.delta_gaps);
    /* a change carries the one slot that changed: 36 bytes, the state 12
     * plus 24 a slot (this counter has one slot per copy it was) */
    assert_true(so1.delta_bytes_out - so.delta_bytes_out <=
                (so1.deltas_out - so.deltas_out) * 36);

    /* a gap: the replica's copy is another version of the run's */
    const replica_t *kept = replica_find(&dsup(r)->repl->store, "dl");
    m_writer = kept->writer;
    msg_t m = m_copy(REPL_PUT, "dl", NULL, 0, kept->hlc, kept->version + 1, kept->bytes,
                     kept->len);
    m_writer = 77;
    inject(r, t, m.b, m.n); /* its ack goes to t, which ignores it */
    free(m.b);
    call_t *c = answered(call(o, "dl", "incr"), CALL_MS);
    assert_int_equal(c->value, 9);
    assert_int_equal(c->copies, 2);
    assert_int_equal(stats(o).delta_gaps, so1.delta_gaps + 1);
    RUN_UNTIL(held_value(r, "dl") == 9, 2000);

    /* a gap: the copy is gone */
    assert_int_equal(replica_drop(&dsup(r)->repl->store, "dl", 0), 1);
    c = answered(call(t, "dl", "incr"), CALL_MS);
    assert_int_equal(c->value, 10);
    assert_int_equal(c->copies, 2);
    assert_int_equal(stats(o).delta_gaps, so1.delta_gaps + 2);
    RUN_UNTIL(held_value(r, "dl") == 10, 2000);

    /* a change whose bytes do not read: refused, the copy unchanged */
    run_ms(500);
    kept = replica_find(&dsup(r)->repl->store, "dl");
    held_t before = held_of(r, "dl");
    m_writer = kept->writer;
    static const uint8_t junk[] = {1, 2, 3};
    m = m_puts("dl", kept->hlc, kept->version + 1, kept->version, junk, sizeof(junk));
    m_writer = 77;
    inject(r, t, m.b, m.n);
    free(m.b);
    held_t after = held_of(r, "dl");
    assert_held_same(&before, &after, "a change that does not read");
    assert_int_equal(held_value(r, "dl"), 10);
}

/* ---- no room ---------------------------------------------------------------------------- */

/* A replica with no room for a put (max_replica_bytes) refuses it and keeps
 * what it had; the owner's reply goes at once saying 1 copy (not held
 * until the replica has room: that may never come), counted, and the
 * child shows under-replicated; once the replica has room again the owner's
 * next put (within REPL_ACK_WAIT_MS) is taken and replies say 2 again. */
static void test_replicas_no_room(void **state)
{
    (void)state;
    int o, r, t;
    counter_up("nr", 2, &o, &r, &t);
    herd_repl_stats_t so = stats(o), sr = stats(r);
    uint64_t limit = dsup(r)->cfg.max_replica_bytes;
    held_t before = held_of(r, "nr");
    dsup(r)->cfg.max_replica_bytes = 1;
    call_t *c = answered(call(t, "nr", "incr"), CALL_MS);
    assert_int_equal(c->value, 3);
    assert_int_equal(c->copies, 1);
    assert_true(stats(r).no_room > sr.no_room);
    assert_int_equal(stats(o).members_full, so.members_full + 1);
    assert_true(stats(o).unreplicated > so.unreplicated);
    herd_child_view_t v;
    assert_int_equal(owner_of("nr", &v), o);
    assert_true(v.under_replicated);
    held_t after = held_of(r, "nr");
    assert_held_same(&before, &after, "a put with no room");
    c = answered(call(o, "nr", "incr"), CALL_MS); /* still no room: at once again */
    assert_int_equal(c->copies, 1);
    assert_int_equal(stats(o).members_full, so.members_full + 1); /* counted once */

    dsup(r)->cfg.max_replica_bytes = limit;
    RUN_UNTIL(held_value(r, "nr") == 4, REPL_ACK_WAIT_MS * 2);
    c = answered(call(t, "nr", "incr"), CALL_MS);
    assert_int_equal(c->value, 5);
    assert_int_equal(c->copies, 2);
    RUN_UNTIL(all_settled(), 2000);
    assert_int_equal(owner_of("nr", &v), o);
    assert_false(v.under_replicated);
    assert_int_equal(held_value(r, "nr"), 5);
}

/* ---- one batch in flight ------------------------------------------------------------------ */

/* At most one batch of puts is in flight to a member: with the replica's
 * acknowledgements held back, a second increment waits for the first
 * batch (puts_waited) and goes only once REPL_INFLIGHT_MS has passed
 * (inflight_expired); no reply goes before its version is acknowledged,
 * and once the acknowledgements pass again both replies go, exact, saying
 * 2 copies, the replica holding the last value. */
static void test_replicas_one_batch_in_flight(void **state)
{
    (void)state;
    int o, r, t;
    counter_up("bf", 1, &o, &r, &t);
    herd_repl_stats_t s0 = stats(o);
    regsim_block(g.rs, r, o, 1); /* r's acknowledgements do not reach o */
    int k1 = call(o, "bf", "incr");
    RUN_UNTIL(stats(o).batches_out == s0.batches_out + 1, 1000);
    uint64_t sent_at = regsim_now(g.rs);
    int k2 = call(o, "bf", "incr");
    RUN_UNTIL(stats(o).puts_waited > s0.puts_waited, REPL_INFLIGHT_MS);
    assert_true(regsim_now(g.rs) - sent_at < REPL_INFLIGHT_MS);
    assert_int_equal(stats(o).batches_out, s0.batches_out + 1); /* the second waits */
    RUN_UNTIL(stats(o).batches_out == s0.batches_out + 2, REPL_INFLIGHT_MS * 3);
    assert_true(regsim_now(g.rs) - sent_at >= REPL_INFLIGHT_MS);
    assert_int_equal(stats(o).inflight_expired, s0.inflight_expired + 1);
    run_ms(50);
    assert_false(g.calls[k1].done); /* nothing acknowledged: no reply */
    assert_false(g.calls[k2].done);
    regsim_block(g.rs, r, o, 0);
    call_t *c1 = answered(k1, CALL_MS), *c2 = answered(k2, CALL_MS);
    assert_int_equal(c1->value, 2);
    assert_int_equal(c2->value, 3);
    assert_int_equal(c1->copies, 2);
    assert_int_equal(c2->copies, 2);
    RUN_UNTIL(all_settled(), 3000);
    assert_int_equal(held_value(r, "bf"), 3);
}

/* ---- forks ------------------------------------------------------------------------------ */

/* A counter state of copy `id` alone, incremented `by`. */
static msg_t counter_bytes(uint64_t id, int64_t by)
{
    uint8_t blank[12] = {0};
    for (int i = 0; i < 8; i++)
        blank[i] = (uint8_t)(id >> (8 * i));
    counter_state_t *cs;
    assert_int_equal(counter_decode(blank, sizeof(blank), &cs), 0);
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "incr %lld", (long long)by);
    int64_t v;
    assert_int_equal(counter_apply(cs, cmd, id, &v), 0);
    msg_t m;
    assert_int_equal(counter_encode(cs, &m.b, &m.n), 0);
    counter_free(cs);
    return m;
}

/* Copies another run of the child's own registration wrote (a fork: it
 * started from an older copy while a partition hid the newest) reach the
 * owner's run and are merged, never replaced: one the replica of its set
 * holds (the owner's next put keeps it as an other, offered to merge), and
 * one a node outside the set holds (offered as an orphan). Each goes once
 * the owner said it merged it; the counter counts both runs' increments. */
static void test_replicas_fork_merged(void **state)
{
    (void)state;
    int o, r, t;
    counter_up("fk", 3, &o, &r, &t);
    uint64_t hlc = held_of(r, "fk").hlc, merged0 = stats(o).merged_in;
    msg_t a = counter_bytes(9, 1000), b = counter_bytes(10, 20);
    m_writer = 77; /* a run the owner's never saw, its clock an hour ahead */
    uint64_t ahead = herd_node_hlc_now(node(o)) + ((uint64_t)3600 * 1000 << 16);
    msg_t m = m_copy(REPL_PUT, "fk", NULL, 0, hlc, ahead, a.b, a.n);
    inject(r, t, m.b, m.n);
    free(m.b);
    m_writer = 78;
    m = m_copy(REPL_PUT, "fk", NULL, 0, hlc, 5, b.b, b.n); /* an old version: still kept */
    inject(t, r, m.b, m.n);
    free(m.b);
    m_writer = 77;
    free(a.b);
    free(b.b);
    assert_int_equal(replica_find(&dsup(r)->repl->store, "fk")->writer, 77);
    assert_int_equal(replica_find(&dsup(t)->repl->store, "fk")->writer, 78);
    /* the owner's next put meets the fork at r: it becomes the copy though
     * its version is lower, the fork is kept as an other */
    call_t *c = answered(call(o, "fk", "incr"), CALL_MS);
    assert_int_equal(c->copies, 2);
    RUN_UNTIL(stats(o).merged_in >= merged0 + 2, 4000);
    RUN_UNTIL(replica_find(&dsup(t)->repl->store, "fk") == NULL, 4000);
    RUN_UNTIL(replica_find(&dsup(r)->repl->store, "fk")->others_n == 0, 4000);
    c = answered(call(t, "fk", "get"), CALL_MS);
    assert_int_equal(c->value, 4 + 1000 + 20);
    /* offered again later (the orphan pass): never merged twice */
    run_ms(3000);
    assert_int_equal(stats(o).merged_in, merged0 + 2);
    c = answered(call(r, "fk", "get"), CALL_MS);
    assert_int_equal(c->value, 1024);
    const replica_t *kept = replica_find(&dsup(r)->repl->store, "fk");
    assert_int_equal(kept->owner, id_of(o));
    assert_int_equal(kept->others_n, 0);
}

int main(void)
{
    herd_log_level_t level = HERD_LOG_ERROR;
    if (getenv("HERD_TEST_LOG") && herd_log_parse_level(getenv("HERD_TEST_LOG"), &level) != 0)
        level = HERD_LOG_ERROR;
    herd_log_set_level(level);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_replicas_malformed),
        T(test_replicas_too_big),
        T(test_replicas_refused_puts_again),
        T(test_replicas_replica_dies_mid_update),
        T(test_replicas_replies_say_two_copies),
        T(test_replicas_terminate_deletes_copies),
        T(test_replicas_fork_merged),
        T(test_replicas_deltas),
        T(test_replicas_no_room),
        T(test_replicas_one_batch_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
