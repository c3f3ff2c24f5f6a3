/*
 * test_transport_nn.c - the nanomsg transport's view of its links
 * (transport_nn.c, link_lost), on real sockets over 127.0.0.1 in one
 * process:
 * - a link never connected says nothing (OK), even while its connects fail;
 * - a connected link is OK; when its peer drops the connection and takes
 *   the reconnect (a live peer), it is never REFUSED and is OK again;
 * - when the peer's socket closes (its port with it, as in a killed
 *   process), the link is REFUSED;
 * - peers are found again by address after others are forgotten (the
 *   address index), and an address never used has no link;
 * - frames that are there together are taken in one turn before the work
 *   they give runs; a lone frame's work runs before the next frame is taken.
 * Every wait is bounded (WAIT_MS) and fails with what it saw.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>

#include "herd_error.h"
#include "transport.h"

#define WAIT_MS 3000
#define MAX_FRAME 4096

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A PULL socket bound on a free port of 127.0.0.1 (its address in addr),
 * taking frames up to `max` bytes. */
static int bind_pull(char *addr, size_t cap, int max)
{
    int sock = nn_socket(AF_SP, NN_PULL);
    assert_true(sock >= 0);
    assert_int_equal(nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &max, sizeof(max)), 0);
    for (int attempt = 0; attempt < 50; attempt++) {
        int port = 21000 + (int)((now_ms() * 7919u + (uint64_t)getpid() * 31u +
                                  (uint64_t)attempt * 104729u) % 20000u);
        snprintf(addr, cap, "tcp://127.0.0.1:%d", port);
        if (nn_bind(sock, addr) >= 0)
            return sock;
    }
    fail_msg("no free port to bind");
    return -1;
}

/* Turn the loop and take what `pull` received, for up to `ms`; returns
 * how many frames came. */
static int pump(uv_loop_t *loop, int pull, uint64_t ms)
{
    int got = 0;
    uint64_t end = now_ms() + ms;
    do {
        uv_run(loop, UV_RUN_NOWAIT);
        void *buf;
        while (pull >= 0 && nn_recv(pull, &buf, NN_MSG, NN_DONTWAIT) >= 0) {
            nn_freemsg(buf);
            got++;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    } while (now_ms() < end);
    return got;
}

/* Send one frame of `len` bytes and wait until `pull` has it. */
static void send_and_receive(transport_t *t, uv_loop_t *loop, const char *addr, int pull,
                             size_t len)
{
    uint8_t frame[MAX_FRAME] = {0};
    assert_int_equal(t->ops->send(t->impl, addr, frame, len), 0);
    uint64_t end = now_ms() + WAIT_MS;
    while (pump(loop, pull, 5) == 0)
        if (now_ms() > end)
            fail_msg("a frame to %s did not arrive within %d ms", addr, WAIT_MS);
}

static int link_of(transport_t *t, const char *addr)
{
    return t->ops->link_lost(t->impl, addr);
}

/* What the receive test saw, in order: 'F' a frame (its first byte
 * after), 'W' the work the first frame of a turn made ready (an idle
 * handle, as a process to run is). */
typedef struct order {
    uv_idle_t work;
    char seen[32];
    size_t n;
} order_t;

static void order_note(order_t *o, char c)
{
    if (o->n + 1 < sizeof(o->seen))
        o->seen[o->n++] = c;
}

static void order_work(uv_idle_t *h)
{
    order_note(h->data, 'W');
    uv_idle_stop(h);
}

static void order_frame(void *data, const uint8_t *frame, size_t len)
{
    order_t *o = data;
    order_note(o, 'F');
    order_note(o, len ? (char)frame[0] : '?');
    if (!uv_is_active((uv_handle_t *)&o->work))
        uv_idle_start(&o->work, order_work);
}

typedef struct fixture {
    uv_loop_t loop;
    transport_t t;
    order_t order; /* the receive test's, closed by teardown when used */
    int order_used;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(transport_nn_new(&f->loop, MAX_FRAME, &f->t), 0);
    assert_non_null(f->t.ops->link_lost);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->order_used) {
        uv_idle_stop(&f->order.work);
        uv_close((uv_handle_t *)&f->order.work, NULL);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    f->t.ops->close(f->t.impl);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* Nothing listens there: the connects fail, but a link never connected
 * gives no verdict. */
static void test_transport_nn_never_connected_says_nothing(void **state)
{
    fixture_t *f = *state;
    char addr[64];
    int pull = bind_pull(addr, sizeof(addr), MAX_FRAME);
    nn_close(pull); /* the port is free again, and nobody listens */
    uint8_t frame[16] = {0};
    assert_int_equal(f->t.ops->send(f->t.impl, addr, frame, sizeof(frame)), 0);
    uint64_t end = now_ms() + 200;
    while (now_ms() < end) {
        pump(&f->loop, -1, 5);
        assert_int_equal(link_of(&f->t, addr), TRANSPORT_LINK_OK);
    }
    assert_int_equal(link_of(&f->t, "tcp://127.0.0.1:1"), TRANSPORT_LINK_OK); /* no link */
}

/* A live peer drops the connection (an oversize frame) and takes the
 * reconnect: the link is never REFUSED and frames flow again. */
static void test_transport_nn_live_drop_is_no_refusal(void **state)
{
    fixture_t *f = *state;
    char addr[64];
    int pull = bind_pull(addr, sizeof(addr), 256);
    send_and_receive(&f->t, &f->loop, addr, pull, 64);
    assert_int_equal(link_of(&f->t, addr), TRANSPORT_LINK_OK);
    uint8_t big[1024] = {0};
    assert_int_equal(f->t.ops->send(f->t.impl, addr, big, sizeof(big)), 0);
    int closed = 0;
    uint64_t end = now_ms() + 300;
    while (now_ms() < end) {
        pump(&f->loop, pull, 1);
        int link = link_of(&f->t, addr);
        assert_int_not_equal(link, TRANSPORT_LINK_REFUSED);
        closed |= link == TRANSPORT_LINK_CLOSED;
    }
    print_message("transport: the live peer's drop was %sseen as closed\n", closed ? "" : "not ");
    send_and_receive(&f->t, &f->loop, addr, pull, 64);
    assert_int_equal(link_of(&f->t, addr), TRANSPORT_LINK_OK);
    /* the peer did drop the first connection and take a second one */
    assert_true(nn_get_statistic(pull, NN_STAT_ACCEPTED_CONNECTIONS) >= 2);
    nn_close(pull);
}

/* The peer's socket closes, its port with it (a killed process): the link
 * is refused. */
static void test_transport_nn_closed_port_is_refused(void **state)
{
    fixture_t *f = *state;
    char addr[64];
    int pull = bind_pull(addr, sizeof(addr), MAX_FRAME);
    send_and_receive(&f->t, &f->loop, addr, pull, 64);
    assert_int_equal(link_of(&f->t, addr), TRANSPORT_LINK_OK);
    uint64_t t0 = now_ms();
    nn_close(pull);
    int link = TRANSPORT_LINK_OK;
    while (link != TRANSPORT_LINK_REFUSED && now_ms() - t0 < WAIT_MS) {
        pump(&f->loop, -1, 1);
        link = link_of(&f->t, addr);
    }
    if (link != TRANSPORT_LINK_REFUSED)
        fail_msg("the link to a closed port is %d after %d ms, not refused", link, WAIT_MS);
    print_message("transport: refused %llu ms after the peer closed\n",
                  (unsigned long long)(now_ms() - t0));
    /* forgotten, the address has no link, and says nothing */
    f->t.ops->forget(f->t.impl, addr);
    assert_int_equal(link_of(&f->t, addr), TRANSPORT_LINK_OK);
}

/* Peers by address: each address one link, found again after others are
 * forgotten; a forgotten one is opened anew. */
static void test_transport_nn_peers_by_address(void **state)
{
    fixture_t *f = *state;
    enum { PEERS = 48 };
    char addr[PEERS][64];
    uint8_t frame[8] = {0};
    transport_stats_t st;
    for (int i = 0; i < PEERS; i++) {
        /* ports nobody listens on: the links stay unconnected */
        snprintf(addr[i], sizeof(addr[i]), "tcp://127.0.0.1:%d", 1 + i);
        assert_int_equal(f->t.ops->send(f->t.impl, addr[i], frame, sizeof(frame)), 0);
    }
    f->t.ops->stats(f->t.impl, &st);
    assert_int_equal(st.peers, PEERS);
    for (int i = 0; i < PEERS; i += 2)
        f->t.ops->forget(f->t.impl, addr[i]);
    f->t.ops->forget(f->t.impl, "tcp://127.0.0.1:65000"); /* never used: nothing */
    f->t.ops->stats(f->t.impl, &st);
    assert_int_equal(st.peers, PEERS / 2);
    for (int i = 1; i < PEERS; i += 2)
        assert_int_equal(f->t.ops->send(f->t.impl, addr[i], frame, sizeof(frame)), 0);
    f->t.ops->stats(f->t.impl, &st);
    assert_int_equal(st.peers, PEERS / 2); /* found, not opened again */
    assert_int_equal(f->t.ops->send(f->t.impl, addr[0], frame, sizeof(frame)), 0);
    f->t.ops->stats(f->t.impl, &st);
    assert_int_equal(st.peers, PEERS / 2 + 1);
    pump(&f->loop, -1, 5);
}

/* Push `count` one-byte frames, `first`, `first` + 1, ..., into the
 * transport's PULL socket at addr, and give them time to arrive. */
static void push_frames(int push, char first, int count)
{
    for (int i = 0; i < count; i++) {
        char c = (char)(first + i);
        assert_int_equal(nn_send(push, &c, 1, 0), 1);
    }
    nanosleep(&(struct timespec){0, 100 * 1000000}, NULL);
}

static void test_transport_nn_frames_there_together_taken_together(void **state)
{
    fixture_t *f = *state;
    char addr[64];
    nn_close(bind_pull(addr, sizeof(addr), MAX_FRAME)); /* a free port */
    order_t *o = &f->order;
    uv_idle_init(&f->loop, &o->work);
    o->work.data = o;
    f->order_used = 1;
    assert_int_equal(f->t.ops->listen(f->t.impl, addr, order_frame, o), 0);
    int push = nn_socket(AF_SP, NN_PUSH), ms = WAIT_MS;
    assert_true(push >= 0);
    assert_int_equal(nn_setsockopt(push, NN_SOL_SOCKET, NN_SNDTIMEO, &ms, sizeof(ms)), 0);
    assert_true(nn_connect(push, addr) >= 0);

    /* three frames there at once: all taken, then their work */
    push_frames(push, 'a', 3);
    uint64_t end = now_ms() + WAIT_MS;
    while (o->n < 7 && now_ms() < end)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    o->seen[o->n] = '\0';
    assert_string_equal(o->seen, "FaFbFcW");

    /* a lone frame: its work first, then the frame that came after it */
    o->n = 0;
    push_frames(push, 'x', 1);
    end = now_ms() + WAIT_MS;
    while (o->n < 2 && now_ms() < end) /* the frame, and not yet its work */
        uv_run(&f->loop, UV_RUN_NOWAIT);
    push_frames(push, 'y', 1);
    end = now_ms() + WAIT_MS;
    while (o->n < 5 && now_ms() < end)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    o->seen[o->n] = '\0';
    assert_string_equal(o->seen, "FxWFy");
    nn_close(push);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transport_nn_never_connected_says_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transport_nn_live_drop_is_no_refusal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transport_nn_closed_port_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transport_nn_peers_by_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_nn_frames_there_together_taken_together,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
