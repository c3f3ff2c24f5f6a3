/*
 * fuzz_app.c - fuzz target for a layer's message bodies as a node receives
 * them from a member: the registry's sync messages (app 1: reg_on_sync's
 * DELTA, DIGEST, WANT, DOTS, CONTEXT, SUMMARY, UNREGISTER, MERGE, MERGED)
 * when built with FUZZ_APP=1, the handoff protocol's (app 2: OFFER, ACCEPT,
 * REJECT, ABORT, COMMIT, DRAIN, PART) with FUZZ_APP=2, the replication
 * stream's (app 3: replicas_on_app's PUT, ACK, DROP, QUERY, HAVE, MERGE,
 * MERGED) with FUZZ_APP=3.
 *
 * One node "b" with a registry and a distributed supervisor runs over an
 * in-memory transport; "x" is made a member by a hand-made HELLO. Each input
 * is handed to b's handler of the app as a message from x, then b's loop
 * runs once, so what the message set off (sends, timers, settles) runs too.
 * Seeds are real messages: another node "x" with the same layers registers
 * and starts a few names and b's handler sees what x sent (captured from
 * x's transport and taken apart: frame, channel batch, message).
 *
 * FUZZ_APP=3: b and x both provide the counter service and, while the
 * target sets up (so that a finding replays against the same b), the
 * transport delivers their frames to each other: x starts six counters
 * keeping 2 copies (some owned by b, some by x) and increments each, so x
 * sends puts, acks, queries and answers to queries, captured as seeds;
 * hand-made ones add drops, merges, merged and copies of other
 * registrations (have with has 2) for the real children. Then delivery
 * stops, and a heartbeat from x made by hand every 100 ms (announcing the
 * counter service) keeps x up, in b's replica sets, as b sees it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#if FUZZ_APP == 3
#include "counter.h"
#include "herd_dsup.h"
#include "replicas_int.h"
#endif
#include "frame.h"
#include "fuzz_seeds.h"
#include "herd_dsup.h" /* the layers it drives; not herd.h: no control socket here */
#include "herd_registry.h"
#include "herd_ring.h"
#include "herd_runtime.h"
#include "log.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "wire.h"

#ifndef FUZZ_APP
#define FUZZ_APP 1
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzzing secret, 32 bytes long!!";

/* ---- an in-memory transport that keeps what is sent ---------------------- */

typedef struct fz_tr {
    transport_recv_cb cb;
    void *data;
    fuzz_seed_t *kept; /* app FUZZ_APP payloads taken from sent frames */
    size_t nkept, cap;
    int keep;
} fz_tr_t;

static int fz_listen(void *impl, const char *address, transport_recv_cb cb, void *data)
{
    (void)address;
    fz_tr_t *t = impl;
    t->cb = cb;
    t->data = data;
    return 0;
}

static void fz_keep(fz_tr_t *t, const uint8_t *msg, size_t len)
{
    if (t->nkept == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        fuzz_seed_t *more = realloc(t->kept, cap * sizeof(*more));
        if (more == NULL)
            return;
        t->kept = more;
        t->cap = cap;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return;
    memcpy(copy, msg, len);
    t->kept[t->nkept++] = (fuzz_seed_t){copy, len};
}

#if FUZZ_APP == 3
static void fz_enqueue(const char *address, const uint8_t *frame, size_t len);
#endif

/* A sent MSG frame: each message of its batch that goes to app FUZZ_APP. */
static int fz_send(void *impl, const char *address, const uint8_t *frame, size_t len)
{
    (void)address;
    fz_tr_t *t = impl;
#if FUZZ_APP == 3
    fz_enqueue(address, frame, len);
#endif
    frame_key_t key;
    frame_header_t h;
    const uint8_t *body;
    if (!t->keep || frame_key_from_secret(&key, secret, sizeof secret - 1) != 0 ||
        frame_decode(&key, frame, len, FRAME_DEFAULT_MAX_BODY, &h, &body, NULL) != 0 ||
        h.type != FRAME_MSG)
        return 0;
    wire_reader_t r;
    wire_reader_init(&r, body, h.length);
    wire_get_u64(&r), wire_get_u64(&r);
    uint16_t count = wire_get_u16(&r);
    for (uint16_t i = 0; i < count && r.err == 0; i++) {
        const uint8_t *m;
        size_t mlen = wire_get_bytes(&r, &m);
        wire_reader_t q;
        wire_reader_init(&q, m, mlen);
        uint8_t kind = wire_get_u8(&q);
        wire_get_u8(&q);
        uint64_t to = wire_get_u64(&q);
        for (int k = 0; k < 4; k++)
            wire_get_u64(&q);
        wire_get_u32(&q);
        const uint8_t *payload;
        size_t plen = wire_get_bytes(&q, &payload);
        if (q.err == 0 && kind == 34 /* remote.c's app kind */ && to == FUZZ_APP)
            fz_keep(t, payload, plen);
    }
    return 0;
}

static void fz_forget(void *impl, const char *address)
{
    (void)impl, (void)address;
}

static void fz_stats(void *impl, transport_stats_t *out)
{
    (void)impl;
    memset(out, 0, sizeof(*out));
}

static void fz_close(void *impl)
{
    (void)impl;
}

static const transport_ops_t fz_ops = {fz_listen, fz_send, fz_forget, fz_stats, NULL, fz_close};

/* ---- nodes ------------------------------------------------------------------ */

typedef struct fz_node {
    herd_node_t *n;
    fz_tr_t t;
    transport_t tr;
    uint64_t seq;
} fz_node_t;

static uv_loop_t fz_loop;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_app: %s\n", what);
    abort();
}

static void fz_node_start(fz_node_t *z, const char *name)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "tcp://%s:1", name);
    herd_node_config_t cfg = {.name = name, .loop = &fz_loop};
    if (herd_node_new(&cfg, &z->n) != 0)
        die("no node");
    z->tr = (transport_t){&fz_ops, &z->t};
    herd_cluster_config_t cc = {.listen = listen, .secret = secret,
                                .secret_len = sizeof secret - 1};
    if (herd_cluster_start_with(z->n, &cc, &z->tr) != 0 || herd_registry_start(z->n) != 0 ||
        herd_dsup_start(z->n, NULL) != 0)
        die("no cluster");
}

/* `from` heartbeats `to`, addressed to its start, as after the HELLO
 * handshake: `to` makes it a member; it provides `service` (NULL: none). */
static void fz_beat(fz_node_t *from, fz_node_t *to, const char *service)
{
    const char *name = herd_node_name(from->n);
    char address[64];
    snprintf(address, sizeof(address), "tcp://%s:1", name);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, "herd");
    wire_put_str(&w, name);
    wire_put_str(&w, address);
    wire_put_u32(&w, 128);
    wire_put_u8(&w, 0);
    wire_put_u8(&w, service ? 1 : 0);
    if (service)
        wire_put_str(&w, service);
    wire_put_u16(&w, 0);
    frame_key_t key;
    frame_header_t h = {.type = FRAME_HEARTBEAT, .sender = herd_node_id_of(name),
                        .sender_inc = herd_node_incarnation(from->n),
                        .receiver = herd_node_id_of(herd_node_name(to->n)),
                        .receiver_inc = herd_node_incarnation(to->n), .seq = ++from->seq};
    uint8_t frame[512];
    if (w.err || frame_key_from_secret(&key, secret, sizeof secret - 1) != 0 ||
        frame_encode(&key, &h, w.buf, w.len, frame, sizeof frame) != 0)
        die("no hello");
    to->t.cb(to->t.data, frame, frame_size(w.len));
    wire_writer_fini(&w);
}

static void fz_hello(fz_node_t *from, fz_node_t *to)
{
    fz_beat(from, to, NULL);
}

static fz_node_t fz_b, fz_x;

#if FUZZ_APP == 3
/* ---- app 3: a replicated pair, set up over a transport that delivers ------- */

typedef struct fz_frame {
    struct fz_frame *next;
    fz_tr_t *to;
    size_t len;
    uint8_t data[];
} fz_frame_t;

static fz_frame_t *fz_queue, **fz_queue_tail = &fz_queue;
static int fz_delivering;
static uv_timer_t fz_pump;
static uint64_t fz_last_beat;

static void fz_on_pump(uv_timer_t *t)
{
    (void)t;
    fz_frame_t *f = fz_queue;
    fz_queue = NULL;
    fz_queue_tail = &fz_queue;
    while (f) {
        fz_frame_t *next = f->next;
        if (fz_delivering && f->to->cb)
            f->to->cb(f->to->data, f->data, f->len);
        free(f);
        f = next;
    }
}

/* While the pair is set up, what one sends the other gets (on the next
 * turn of the loop, never inside the send). */
static void fz_enqueue(const char *address, const uint8_t *frame, size_t len)
{
    fz_tr_t *to = strcmp(address, "tcp://b:1") == 0   ? &fz_b.t
                  : strcmp(address, "tcp://x:1") == 0 ? &fz_x.t
                                                      : NULL;
    if (!fz_delivering || to == NULL)
        return;
    fz_frame_t *f = malloc(sizeof(*f) + len);
    if (f == NULL)
        return;
    f->next = NULL;
    f->to = to;
    f->len = len;
    memcpy(f->data, frame, len);
    *fz_queue_tail = f;
    fz_queue_tail = &f->next;
    if (!uv_is_active((uv_handle_t *)&fz_pump))
        uv_timer_start(&fz_pump, fz_on_pump, 0, 0);
}

static const char *const fz_counters[] = {"r0", "r1", "r2", "r3", "r4", "r5"};
#define FZ_COUNTERS (sizeof fz_counters / sizeof fz_counters[0])

/* b and x provide the counter service; x starts counters keeping 2 copies
 * and increments them (captured: what x sends on app 3); then delivery
 * stops. */
static void fz_replicated_pair(void)
{
    uv_timer_init(&fz_loop, &fz_pump);
    fz_delivering = 1;
    fz_x.t.keep = 1;
    if (herd_service_register(fz_b.n, "counter", &counter_behaviour) != 0 ||
        herd_service_register(fz_x.n, "counter", &counter_behaviour) != 0)
        die("no counter service");
    herd_node_run_for(fz_x.n, 700); /* heartbeats carry the services both ways */
    size_t started = 0;
    for (size_t i = 0; i < FZ_COUNTERS; i++) {
        herd_child_req_t req = {.name = fz_counters[i], .service = "counter",
                                .restart = HERD_RESTART_PERMANENT, .replicas = 2};
        herd_start_result_t res;
        started += herd_start_child(fz_x.n, &req, 5000, &res) == 0 && res.status == 0;
    }
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < FZ_COUNTERS; i++) {
            herd_reply_t reply;
            if (herd_node_call_name(fz_x.n, fz_counters[i], "incr", 4, 3000, &reply) == 0)
                herd_reply_free(&reply);
        }
    herd_node_run_for(fz_x.n, 300);
    fz_x.t.keep = 0;
    fz_delivering = 0;
    uv_timer_stop(&fz_pump);
    fz_on_pump(&fz_pump); /* frees what is left */
    herd_repl_stats_t sb, sx;
    if (started != FZ_COUNTERS || herd_repl_stats(fz_b.n, &sb) != 0 ||
        herd_repl_stats(fz_x.n, &sx) != 0 || sb.held == 0 || sx.held == 0 ||
        fz_x.t.nkept == 0)
        die("the pair did not replicate");
    /* from now on x's heartbeats are made by hand, far past its own sequence */
    fz_x.seq = 1ull << 40;
    fz_beat(&fz_x, &fz_b, "counter");
    fz_last_beat = herd_node_now(fz_b.n);
}

/* A copy message as replicas.c writes it (query: a have), written by a
 * run (writer 77) no real child is. */
static void fz_keep_copy(uint8_t kind, const char *name, const uint64_t *query, uint8_t has,
                         uint64_t hlc, uint64_t version, const uint8_t *bytes, size_t len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    replica_lineage_t lin = repl_copy_lineage(77, version);
    repl_put_copy(&w, kind, name, query, has, hlc, version, &lin, bytes, len);
    size_t n;
    uint8_t *b = wire_writer_take(&w, &n);
    if (b)
        fz_keep(&fz_x.t, b, n);
    free(b);
}

/* A message of `n` u64 fields after its name. */
static void fz_keep_u64(uint8_t kind, const char *name, uint64_t v, size_t fields)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, kind);
    wire_put_str(&w, name);
    for (size_t i = 0; i < fields; i++)
        wire_put_u64(&w, v);
    size_t n;
    uint8_t *b = wire_writer_take(&w, &n);
    if (b)
        fz_keep(&fz_x.t, b, n);
    free(b);
}

/* Hand-made messages for what the quiet pair did not send: drops, merges
 * (a counter's state of another registration), merged, queries and their
 * answers with copies of other registrations, for each real child. */
static void fz_replication_made(void)
{
    static const uint8_t other[] = {9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* copy 9, 1 slot */
                                    9, 0, 0, 0, 0, 0, 0, 0,             /* its id */
                                    100, 0, 0, 0, 0, 0, 0, 0,           /* incr */
                                    0, 0, 0, 0, 0, 0, 0, 0};            /* decr */
    for (size_t i = 0; i < FZ_COUNTERS; i++) {
        const char *name = fz_counters[i];
        uint64_t hlc = 0, q = 1;
        if (herd_registry_time(fz_b.n, name, &hlc) != 0)
            continue;
        fz_keep_u64(REPL_DROP, name, hlc, 1);
        fz_keep_u64(REPL_QUERY, name, 1, 1);
        fz_keep_u64(REPL_MERGED, name, hlc + 1, 3);
        fz_keep_copy(REPL_MERGE, name, NULL, 0, hlc + 1, 7, other, sizeof other);
        fz_keep_copy(REPL_MERGE, name, NULL, 0, hlc, 7, other, sizeof other); /* a fork */
        fz_keep_copy(REPL_PUT, name, NULL, 0, hlc + 1, 7, other, sizeof other);
        fz_keep_copy(REPL_PUT, name, NULL, 0, hlc, 7, other, sizeof other); /* a fork */
        fz_keep_copy(REPL_HAVE, name, &q, 2, hlc + 1, 7, other, sizeof other);
        fz_keep_copy(REPL_HAVE, name, &q, 1, hlc, 7, other, sizeof other);
        fz_keep_copy(REPL_HAVE, name, &q, 0, 0, 0, NULL, 0);
    }
}
#endif

static void fz_setup(void)
{
    static int ready;
    if (ready)
        return;
    ready = 1;
    herd_log_set_level(HERD_LOG_ERROR);
    uv_loop_init(&fz_loop);
    fz_node_start(&fz_b, "b");
    fz_node_start(&fz_x, "x");
    fz_hello(&fz_x, &fz_b);
    fz_hello(&fz_b, &fz_x);
    if (herd_cluster_member_incarnation(fz_b.n, herd_node_id_of("x")) == 0 ||
        herd_cluster_member_incarnation(fz_x.n, herd_node_id_of("b")) == 0)
        die("no members");
#if FUZZ_APP == 3
    fz_replicated_pair();
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_setup();
    herd_cluster_t *c = fz_b.n->cluster;
    if (c->apps[FUZZ_APP].cb == NULL)
        die("no handler");
    c->apps[FUZZ_APP].cb(c->apps[FUZZ_APP].data, herd_node_id_of("x"),
                         herd_node_incarnation(fz_x.n), data, size);
    uv_run(&fz_loop, UV_RUN_NOWAIT);
#if FUZZ_APP == 3
    if (herd_node_now(fz_b.n) - fz_last_beat >= 100) { /* x stays up, as b sees it */
        fz_beat(&fz_x, &fz_b, "counter");
        fz_last_beat = herd_node_now(fz_b.n);
    }
#endif
    return 0;
}

/* ---- seeds --------------------------------------------------------------- */

static int fz_idle(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self, (void)state, (void)msg;
    return 0;
}

static const herd_behaviour_t fz_proc = {.name = "fz", .handle_cast = fz_idle};

size_t fuzz_seeds(fuzz_seed_t **out)
{
    fz_setup();
#if FUZZ_APP == 3
    fz_replication_made(); /* beside what fz_setup captured */
    *out = fz_x.t.kept;
    size_t kept = fz_x.t.nkept;
    fz_x.t.kept = NULL;
    fz_x.t.nkept = fz_x.t.cap = 0;
    return kept;
#endif
    fz_x.t.keep = 1;
    static const char *const names[] = {"alpha", "beta", "gamma", "delta"};
    herd_spawn_opts_t o = {.behaviour = &fz_proc};
    for (size_t i = 0; i < 4; i++) {
        herd_pid_t p;
        if (herd_spawn(fz_x.n, &o, &p) == 0)
            herd_register(fz_x.n, names[i], p, NULL);
        if (i == 2)
            herd_unregister(fz_x.n, names[0]);
        herd_node_run_for(fz_x.n, 30);
    }
    herd_node_run_for(fz_x.n, 300);
    fz_x.t.keep = 0;
    /* hand-made ones for what a quiet pair does not send */
    static const uint8_t made[][24] = {
        {1, 1, 0, 0, 0, 0, 0, 0, 0, 5, 'a', 'l', 'p', 'h', 'a'}, /* kind, id, name */
        {2, 1, 0, 0, 0, 0, 0, 0, 0, 5, 'a', 'l', 'p', 'h', 'a', 9, 0, 0, 0, 0, 0, 0, 0},
        {6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
        {7, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++)
        fz_keep(&fz_x.t, made[i], sizeof made[i]);
    *out = fz_x.t.kept;
    size_t n = fz_x.t.nkept;
    fz_x.t.kept = NULL;
    fz_x.t.nkept = fz_x.t.cap = 0;
    return n;
}

void fuzz_seeds_free(fuzz_seed_t *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(seeds[i].data);
    free(seeds);
}
