/*
 * support.c - the runtime tests' shared support (support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

#include <stdlib.h>

#include "herd_ring.h"
#include "runtime_layers.h"
#include "wire.h"

/* ---- node lifecycle ------------------------------------------------------ */

static herd_node_t *g_nodes[TS_MAX_NODES];
static int g_detached;

herd_node_t *ts_track(herd_node_t *n)
{
    for (int i = 0; i < TS_MAX_NODES; i++) {
        if (g_nodes[i] == NULL) {
            g_nodes[i] = n;
            return n;
        }
    }
    fail_msg("too many nodes");
    return n;
}

herd_node_t *ts_node_new(const herd_node_config_t *cfg)
{
    herd_node_t *n = NULL;
    assert_int_equal(herd_node_new(cfg, &n), 0);
    ts_track(n);
    assert_non_null(n);
    return n;
}

herd_node_t *ts_node(const char *name, const herd_clock_t *clock, uint64_t seed)
{
    herd_node_config_t cfg = {.name = name, .clock = clock, .seed = seed};
    return ts_node_new(&cfg);
}

int ts_live_nodes(void)
{
    int k = 0;
    for (int i = 0; i < TS_MAX_NODES; i++)
        k += g_nodes[i] != NULL;
    return k;
}

void ts_node_free(herd_node_t *n)
{
    int found = 0;
    for (int i = 0; i < TS_MAX_NODES; i++) {
        if (n != NULL && g_nodes[i] == n) {
            g_nodes[i] = NULL;
            found = 1;
        }
    }
    if (!found) fail_msg("freeing a node the test does not have");
    herd_node_free(n);
}

int ts_detached(void)
{
    return g_detached;
}

int ts_setup(void **state)
{
    (void)state;
    g_detached = 0;
    for (int i = 0; i < TS_MAX_NODES; i++)
        g_nodes[i] = NULL;
    return 0;
}

/* Free every tracked node, newest slot first. */
static void free_left(void)
{
    g_detached = 1;
    for (int i = TS_MAX_NODES - 1; i >= 0; i--) {
        if (g_nodes[i] != NULL) {
            herd_node_t *n = g_nodes[i];
            g_nodes[i] = NULL;
            herd_node_free(n);
        }
    }
    g_detached = 0;
}

int ts_teardown(void **state)
{
    (void)state;
    free_left();
    return 0;
}

/* ---- virtual clock ------------------------------------------------------- */

uint64_t ts_vnow;

static uint64_t vclock_now(void *data)
{
    assert_ptr_equal(data, &ts_vnow);
    return ts_vnow;
}

const herd_clock_t ts_vclock = {.now_ms = vclock_now, .data = &ts_vnow};

/* ---- the loop ------------------------------------------------------------ */

void ts_run_for(herd_node_t *n, uint64_t ms)
{
    assert_true(herd_node_run_for(n, ms) >= 0);
}

void ts_run(herd_node_t *n)
{
    ts_run_for(n, 3000);
}

int ts_drain(herd_node_t *n)
{
    int total = 0;
    for (int i = 0; i < 100; i++) {
        int rc = herd_node_poll(n);
        assert_true(rc >= 0);
        if (rc == 0) return total;
        total += rc;
    }
    fail_msg("poll never ran dry");
    return total;
}

double ts_ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- processes ----------------------------------------------------------- */

herd_pid_t ts_spawn(herd_node_t *n, const herd_behaviour_t *b, const void *arg,
                    size_t len)
{
    herd_spawn_opts_t o = {.behaviour = b, .arg = arg, .arg_len = len};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

int ts_alive(herd_node_t *n, herd_pid_t pid)
{
    int a = herd_is_alive(n, pid);
    assert_true(a == 0 || a == 1);
    return a;
}

void ts_assert_pid_eq(herd_pid_t a, herd_pid_t b)
{
    assert_int_equal(a.node, b.node);
    assert_int_equal(a.incarnation, b.incarnation);
    assert_int_equal(a.serial, b.serial);
    assert_true(herd_pid_equal(a, b));
}

/* ---- clusters on one shared loop ------------------------------------------ */

uv_loop_t ts_loop;
static char g_addr[TS_MAX_NODES][64]; /* per slot of g_nodes */
static const char *g_secret = "";
static uint64_t g_port_rng;

void ts_cluster_init(const char *prog, const char *secret)
{
    uint64_t seed = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    g_port_rng = seed;
    g_secret = secret;
    fprintf(stderr, "%s: port seed %llu\n", prog, (unsigned long long)seed);
}

int ts_cluster_setup(void **state)
{
    ts_setup(state);
    return uv_loop_init(&ts_loop) == 0 ? 0 : -1;
}

int ts_cluster_teardown(void **state)
{
    (void)state;
    free_left();
    for (int i = 0; i < 100 && uv_run(&ts_loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    int rc = uv_loop_close(&ts_loop);
    if (rc != 0)
        fprintf(stderr, "teardown: the shared loop still has handles: %s\n", uv_strerror(rc));
    return rc == 0 ? 0 : -1;
}

uint64_t ts_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int node_slot(const herd_node_t *n)
{
    for (int i = 0; i < TS_MAX_NODES; i++)
        if (g_nodes[i] == n && n != NULL) return i;
    fail_msg("not a node of this test");
    return -1;
}

herd_node_t *ts_cluster_add(const herd_node_config_t *cfg)
{
    herd_node_t *n = ts_node_new(cfg);
    g_addr[node_slot(n)][0] = '\0';
    return n;
}

void ts_cluster_join(herd_node_t *n, const ts_timing_t *t, herd_node_t *const *seeds,
                     size_t nseeds)
{
    int slot = node_slot(n);
    const char *addrs[TS_MAX_NODES];
    assert_true(nseeds <= TS_MAX_NODES);
    for (size_t i = 0; i < nseeds; i++)
        addrs[i] = g_addr[node_slot(seeds[i])];
    int rc = -1;
    for (int attempt = 0; attempt < 40 && rc != 0; attempt++) {
        unsigned port = 20000u + (unsigned)(rng_next(&g_port_rng) % 40001u);
        snprintf(g_addr[slot], sizeof(g_addr[slot]), "tcp://127.0.0.1:%u", port);
        herd_cluster_config_t cfg = {.listen = g_addr[slot],
                                     .seeds = nseeds ? addrs : NULL,
                                     .seed_count = nseeds,
                                     .secret = g_secret,
                                     .secret_len = strlen(g_secret),
                                     .heartbeat_ms = t->heartbeat_ms,
                                     .suspect_ms = t->suspect_ms,
                                     .down_ms = t->down_ms,
                                     .forget_ms = t->forget_ms};
        rc = herd_cluster_start(n, &cfg); /* a port in use: try another */
    }
    assert_int_equal(rc, 0);
}

const char *ts_cluster_addr(const herd_node_t *n)
{
    return g_addr[node_slot(n)];
}

int ts_cluster_member_state(herd_node_t *n, const char *name)
{
    herd_member_info_t info[TS_MAX_NODES + 2];
    int count = herd_cluster_members(n, info, TS_MAX_NODES + 2);
    for (int i = 0; i < count && i < TS_MAX_NODES + 2; i++)
        if (strcmp(info[i].name, name) == 0) return (int)info[i].state;
    return -1;
}

int ts_cluster_all_up(herd_node_t *const *nodes, int k)
{
    for (int i = 0; i < k; i++) {
        herd_member_info_t info[TS_MAX_NODES + 2];
        int count = herd_cluster_members(nodes[i], info, TS_MAX_NODES + 2);
        if (count != k) return 0;
        for (int j = 0; j < k; j++) {
            const char *name = herd_node_name(nodes[j]);
            int found = 0;
            for (int m = 0; m < count; m++)
                found |= strcmp(info[m].name, name) == 0 && info[m].state == HERD_MEMBER_UP &&
                         info[m].incarnation == herd_node_incarnation(nodes[j]);
            if (!found) return 0;
        }
    }
    return 1;
}

void ts_cluster_run_slice(uint64_t ms)
{
    for (int i = 0; i < TS_MAX_NODES; i++) {
        if (g_nodes[i]) {
            assert_int_equal(herd_node_run_for(g_nodes[i], ms), 0);
            return;
        }
    }
    fail_msg("no node to run the loop");
}

void ts_cluster_run_ms(uint64_t ms)
{
    uint64_t t0 = ts_mono_ms();
    while (ts_mono_ms() - t0 < ms)
        ts_cluster_run_slice(5);
}

/* ---- one node, frames made by hand ------------------------------------- */

static int fake_listen(void *impl, const char *address, transport_recv_cb cb, void *data)
{
    (void)address;
    ts_fake_tr_t *t = impl;
    t->cb = cb;
    t->data = data;
    return 0;
}

void ts_fake_forget_sent(ts_fake_tr_t *t)
{
    for (size_t i = 0; i < t->kept_count; i++)
        free(t->kept[i].body);
    t->kept_count = 0;
}

/* Keep a decoded copy of a frame the node sent (the oldest goes when full). */
static void fake_keep(ts_fake_tr_t *t, const char *address, const uint8_t *frame, size_t len)
{
    frame_key_t key;
    frame_header_t h;
    const uint8_t *body;
    assert_int_equal(frame_key_from_secret(&key, t->secret, strlen(t->secret)), 0);
    assert_int_equal(frame_decode(&key, frame, len, FRAME_DEFAULT_MAX_BODY, &h, &body, NULL), 0);
    if (t->kept_count == TS_FAKE_KEEP) {
        free(t->kept[0].body);
        memmove(&t->kept[0], &t->kept[1], (TS_FAKE_KEEP - 1) * sizeof(t->kept[0]));
        t->kept_count--;
    }
    ts_fake_sent_t *k = &t->kept[t->kept_count++];
    snprintf(k->address, sizeof(k->address), "%s", address);
    k->h = h;
    k->body = malloc(h.length ? h.length : 1);
    assert_non_null(k->body);
    memcpy(k->body, body, h.length);
}

static int fake_send(void *impl, const char *address, const uint8_t *frame, size_t len)
{
    ts_fake_tr_t *t = impl;
    if (ts_detached())
        return 0; /* t lived in the stack frame of a test that ended early */
    if (t->refuse) {
        t->refused++;
        return HERD_EFULL;
    }
    t->sent++;
    fake_keep(t, address, frame, len);
    return 0;
}

const ts_fake_sent_t *ts_fake_sent_to(const ts_fake_tr_t *t, uint8_t type, uint64_t to,
                                      size_t *count)
{
    const ts_fake_sent_t *last = NULL;
    size_t n = 0;
    for (size_t i = 0; i < t->kept_count; i++) {
        if (t->kept[i].h.type == type && t->kept[i].h.receiver == to) {
            last = &t->kept[i];
            n++;
        }
    }
    if (count)
        *count = n;
    return last;
}

static void fake_forget(void *impl, const char *address)
{
    (void)impl, (void)address;
}

static void fake_stats(void *impl, transport_stats_t *out)
{
    (void)impl;
    memset(out, 0, sizeof(*out));
}

static void fake_close(void *impl)
{
    if (!ts_detached()) /* else impl lived in a test's abandoned stack frame */
        ts_fake_forget_sent(impl);
}

static const transport_ops_t fake_ops = {fake_listen, fake_send, fake_forget, fake_stats, NULL,
                                         fake_close};

void ts_fake_cluster(herd_node_t *n, ts_fake_tr_t *t, const char *secret)
{
    char listen[300];
    snprintf(listen, sizeof(listen), "tcp://%s:1", herd_node_name(n));
    memset(t, 0, sizeof(*t));
    t->tr = (transport_t){&fake_ops, t};
    t->secret = secret;
    t->node = n;
    herd_cluster_config_t cfg = {.listen = listen, .secret = secret,
                                 .secret_len = strlen(secret)};
    assert_int_equal(herd_cluster_start_with(n, &cfg, &t->tr), 0);
    assert_non_null(t->cb);
}

/* A frame with every header field given, delivered to the node. */
static void fake_frame_full(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                            uint64_t seq, uint64_t receiver, uint64_t receiver_inc,
                            uint64_t hlc, const void *body, size_t len)
{
    frame_key_t key;
    assert_int_equal(frame_key_from_secret(&key, t->secret, strlen(t->secret)), 0);
    frame_header_t h = {.type = type, .sender = herd_node_id_of(name), .sender_inc = inc,
                        .receiver = receiver, .receiver_inc = receiver_inc, .hlc = hlc,
                        .seq = seq};
    size_t size = frame_size(len);
    uint8_t *frame = malloc(size);
    assert_non_null(frame);
    assert_int_equal(frame_encode(&key, &h, body, len, frame, size), 0);
    t->cb(t->data, frame, size);
    free(frame);
}

void ts_fake_frame_to(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                      uint64_t seq, uint64_t receiver, uint64_t receiver_inc,
                      const void *body, size_t len)
{
    fake_frame_full(t, name, inc, type, seq, receiver, receiver_inc, 0, body, len);
}

/* A HELLO goes to nobody's start in particular; anything else to the
 * node's current one. */
void ts_fake_frame_at(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                      uint64_t seq, uint64_t hlc, const void *body, size_t len)
{
    int hello = type == FRAME_HELLO;
    fake_frame_full(t, name, inc, type, seq,
                    hello ? 0 : herd_node_id_of(herd_node_name(t->node)),
                    hello ? 0 : herd_node_incarnation(t->node), hlc, body, len);
}

void ts_fake_frame(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                   uint64_t seq, const void *body, size_t len)
{
    ts_fake_frame_at(t, name, inc, type, seq, 0, body, len);
}

void ts_fake_join(ts_fake_tr_t *t, const char *name, uint64_t inc, uint64_t seq)
{
    size_t len;
    uint8_t *body = ts_fake_hello(name, &len);
    ts_fake_frame(t, name, inc, FRAME_HELLO, seq, body, len);
    ts_fake_frame(t, name, inc, FRAME_HEARTBEAT, seq + 1, body, len);
    free(body);
}

uint8_t *ts_fake_hello(const char *name, size_t *len)
{
    char address[300];
    snprintf(address, sizeof(address), "tcp://%s:1", name);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, "herd");
    wire_put_str(&w, name);
    wire_put_str(&w, address);
    wire_put_u32(&w, HERD_RING_DEFAULT_WEIGHT);
    wire_put_u8(&w, HERD_MEMBER_UP);
    wire_put_u8(&w, 0);
    wire_put_u16(&w, 0);
    uint8_t *body = wire_writer_take(&w, len);
    assert_non_null(body);
    return body;
}
