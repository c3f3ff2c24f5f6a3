/*
 * fuzz_app.c - fuzz target for a layer's message bodies as a node receives
 * them from a member: the registry's sync messages (app 1: reg_on_sync's
 * DELTA, DIGEST, WANT, DOTS, CONTEXT, SUMMARY, UNREGISTER, MERGE, MERGED)
 * when built with FUZZ_APP=1, the handoff protocol's (app 2: OFFER, ACCEPT,
 * REJECT, ABORT, COMMIT, DRAIN, PART) with FUZZ_APP=2.
 *
 * One node "b" with a registry and a distributed supervisor runs over an
 * in-memory transport; "x" is made a member by a hand-made HELLO. Each input
 * is handed to b's handler of the app as a message from x, then b's loop
 * runs once, so what the message set off (sends, timers, settles) runs too.
 * Seeds are real messages: another node "x" with the same layers registers
 * and starts a few names and b's handler sees what x sent (captured from
 * x's transport and taken apart: frame, channel batch, message).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "frame.h"
#include "fuzz_seeds.h"
#include "herd.h"
#include "log.h"
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

/* A sent MSG frame: each message of its batch that goes to app FUZZ_APP. */
static int fz_send(void *impl, const char *address, const uint8_t *frame, size_t len)
{
    (void)address;
    fz_tr_t *t = impl;
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
                                .secret_len = sizeof secret - 1, .transport = &z->tr};
    if (herd_cluster_start(z->n, &cc) != 0 || herd_registry_start(z->n) != 0 ||
        herd_dsup_start(z->n, NULL) != 0)
        die("no cluster");
}

/* `from` heartbeats `to`, addressed to its start, as after the HELLO
 * handshake: `to` makes it a member. */
static void fz_hello(fz_node_t *from, fz_node_t *to)
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
    wire_put_u8(&w, 0);
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

static fz_node_t fz_b, fz_x;

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
