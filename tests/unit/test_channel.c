/*
 * test_channel.c - unit tests for the reliable ordered channel
 * (runtime/channel.h), free of I/O.
 *
 * Two channel_t endpoints A and B are wired by this file through a simulated
 * medium that drops, duplicates and reorders frames under a seeded PRNG; the
 * time is a plain counter the tests move past rto to drive resends. The
 * claims checked: every message is delivered exactly once and in order,
 * acknowledgements free the sender's buffer, a full buffer refuses without
 * queueing, a new peer incarnation restarts both directions, malformed
 * bodies are refused whole, the reorder window is bounded, batches respect
 * max_body, the counters count, at most a window of bytes is in flight,
 * allocations that fail refuse a message or drop an early one counted, a
 * frame the transport refused is taken back, and a resend goes back to the
 * oldest unacknowledged message and sends the window again.
 *
 * The frame bodies are decoded here by hand from the layout channel.h
 * documents (u64 ack, u64 first_seq, u16 count, then count x (u32 length,
 * bytes), little-endian), independently of wire.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel.h"

#define RTO 100u

/* test_channel links with --wrap=malloc (tests/CMakeLists.txt): armed,
 * the next allocation fails, once. */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static int g_fail_next_malloc;

void *__wrap_malloc(size_t n)
{
    if (g_fail_next_malloc) {
        g_fail_next_malloc = 0;
        return NULL;
    }
    return __real_malloc(n);
}

/* ---- little-endian helpers and a decoder for FRAME_MSG bodies ------------- */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#define HDR 18u /* ack, first_seq, count */

typedef struct parsed {
    uint64_t ack, first;
    uint16_t count;
    size_t off[1100], len[1100]; /* of each message in the body */
} parsed_t;

/* Decode a FRAME_MSG body; fails the test unless it is well formed. */
static void parse_body(const uint8_t *b, size_t len, parsed_t *out)
{
    assert_true(len >= HDR);
    out->ack = le64(b);
    out->first = le64(b + 8);
    out->count = (uint16_t)(b[16] | b[17] << 8);
    assert_true(out->count <= 1100);
    size_t off = HDR;
    for (uint16_t i = 0; i < out->count; i++) {
        assert_true(off + 4 <= len);
        size_t n = le32(b + off);
        assert_true(off + 4 + n <= len);
        out->off[i] = off + 4;
        out->len[i] = n;
        off += 4 + n;
    }
    assert_int_equal(off, len);
}

/* A body built by hand: header then `count_written` messages "m<i>". */
typedef struct body {
    uint8_t buf[1024];
    size_t len;
} body_t;

static void body_start(body_t *b, uint64_t ack, uint64_t first, uint16_t count)
{
    put_le(b->buf, ack, 8);
    put_le(b->buf + 8, first, 8);
    put_le(b->buf + 16, count, 2);
    b->len = HDR;
}

static void body_add(body_t *b, const void *data, size_t n)
{
    assert_true(b->len + 4 + n <= sizeof(b->buf));
    put_le(b->buf + b->len, n, 4);
    memcpy(b->buf + b->len + 4, data, n);
    b->len += 4 + n;
}

/* ---- what a receiver saw ---------------------------------------------------- */

#define REC_MAX 8192

typedef struct rec {
    size_t n;
    uint8_t len[REC_MAX];
    char data[REC_MAX][16];
} rec_t;

static void rec_deliver(void *data, const uint8_t *msg, size_t len)
{
    rec_t *r = data;
    assert_true(r->n < REC_MAX);
    assert_true(len < 16);
    r->len[r->n] = (uint8_t)len;
    memcpy(r->data[r->n], msg, len);
    r->data[r->n][len] = '\0';
    r->n++;
}

/* Only the lengths, for larger messages. */
typedef struct lens {
    size_t n;
    size_t len[2048];
} lens_t;

static void lens_deliver(void *data, const uint8_t *msg, size_t len)
{
    lens_t *l = data;
    (void)msg;
    assert_true(l->n < 2048);
    l->len[l->n++] = len;
}

static void assert_rec(const rec_t *r, size_t i, const char *text)
{
    assert_true(i < r->n);
    assert_int_equal(r->len[i], strlen(text));
    assert_string_equal(r->data[i], text);
}

static void queue_str(channel_t *ch, const char *s)
{
    assert_int_equal(channel_queue(ch, s, strlen(s)), 0);
}

/* The next frame (must exist); the caller frees it. */
static uint8_t *next_frame(channel_t *ch, int resend, size_t max_body, uint64_t now,
                           size_t *len)
{
    uint8_t *body = NULL;
    assert_int_equal(channel_next_frame(ch, resend, max_body, now, &body, len), 0);
    assert_non_null(body);
    return body;
}

static void assert_no_frame(channel_t *ch, int resend, uint64_t now)
{
    uint8_t *body = (uint8_t *)"sentinel";
    size_t len = 99;
    assert_int_equal(channel_next_frame(ch, resend, 1 << 20, now, &body, &len), 0);
    assert_null(body);
    assert_int_equal(len, 0);
}

/* ---- the simulated medium ---------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

typedef struct sim_frame {
    int to; /* 0: A, 1: B */
    int is_ack;
    uint8_t *body;
    size_t len;
} sim_frame_t;

typedef struct medium {
    uint64_t rng;
    unsigned drop_pct, dup_pct;
    sim_frame_t q[4096];
    size_t n;
    uint64_t frames, dropped;
} medium_t;

static void medium_put(medium_t *m, int to, int is_ack, uint8_t *body, size_t len)
{
    m->frames++;
    if (rng_below(&m->rng, 100) < m->drop_pct) {
        m->dropped++;
        free(body);
        return;
    }
    int copies = rng_below(&m->rng, 100) < m->dup_pct ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        assert_true(m->n < sizeof(m->q) / sizeof(m->q[0]));
        uint8_t *b = body;
        if (c == 1) {
            b = malloc(len);
            assert_non_null(b);
            memcpy(b, body, len);
        }
        m->q[m->n++] = (sim_frame_t){to, is_ack, b, len};
    }
}

/* Take a random frame out (reordering). */
static sim_frame_t medium_take(medium_t *m)
{
    size_t i = rng_below(&m->rng, (unsigned)m->n);
    sim_frame_t f = m->q[i];
    m->q[i] = m->q[--m->n];
    return f;
}

static void medium_clear(medium_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->q[i].body);
    m->n = 0;
}

/* One side of a conversation: it sends `total` numbered messages and checks
 * that the other side's arrive exactly once and in order. */
typedef struct endpoint {
    channel_t ch;
    uint32_t queued;   /* messages queued so far */
    uint32_t received; /* from the peer, in order */
    uint32_t total;
    int id;
} endpoint_t;

/* Message k of endpoint `id`: its number, then filler that depends on both. */
static size_t make_msg(int id, uint32_t k, uint8_t *out)
{
    size_t n = 4 + (k * 7u + (unsigned)id * 13u) % 37u;
    put_le(out, k, 4);
    for (size_t i = 4; i < n; i++)
        out[i] = (uint8_t)(k * 31u + i + (unsigned)id);
    return n;
}

static int g_peer_of_receiver; /* set by the sim before delivering to a side */

static void sim_deliver(void *data, const uint8_t *msg, size_t len)
{
    endpoint_t *e = data;
    uint8_t want[64];
    size_t n = make_msg(g_peer_of_receiver, e->received, want);
    assert_int_equal(len, n);          /* its own length, */
    assert_memory_equal(msg, want, n); /* bytes, and place in order */
    e->received++;
}

/* The sender's bookkeeping agrees with its queue: `unsent` is the first
 * message at or after next_send, inflight_bytes the bytes before it, and
 * send_ready says whether the window lets it go. */
static void assert_sender_consistent(const channel_t *ch)
{
    const channel_msg_t *first = NULL;
    size_t inflight = 0;
    for (const channel_msg_t *q = ch->head; q; q = q->next) {
        if (q->seq < ch->next_send)
            inflight += q->len;
        else if (first == NULL)
            first = q;
    }
    assert_ptr_equal(ch->unsent, first);
    assert_int_equal(ch->inflight_bytes, inflight);
    assert_int_equal(channel_send_ready(ch),
                     first != NULL && (inflight == 0 || inflight + first->len <= ch->window));
}

static void sim_pump(endpoint_t *e, int to, medium_t *m, size_t max_body, uint64_t now)
{
    uint8_t *body;
    size_t len;
    assert_sender_consistent(&e->ch);
    for (int guard = 0; guard < 1000; guard++) {
        assert_int_equal(channel_next_frame(&e->ch, 0, max_body, now, &body, &len), 0);
        assert_sender_consistent(&e->ch);
        if (body == NULL) break;
        medium_put(m, to, 0, body, len);
    }
    if (channel_resend_due(&e->ch, now)) {
        assert_int_equal(channel_next_frame(&e->ch, 1, max_body, now, &body, &len), 0);
        assert_non_null(body);
        assert_sender_consistent(&e->ch);
        medium_put(m, to, 0, body, len);
    }
    if (e->ch.ack_due) {
        assert_int_equal(channel_ack_frame(&e->ch, &body, &len), 0);
        assert_non_null(body);
        assert_int_equal(len, 8);
        assert_int_equal(e->ch.ack_due, 0);
        medium_put(m, to, 1, body, len);
    }
}

typedef struct sim_result {
    uint64_t frames, dropped;
    uint64_t iterations;
} sim_result_t;

/* A and B each send `total` messages to the other through the medium. */
static sim_result_t run_sim(uint64_t seed, unsigned drop_pct, unsigned dup_pct,
                            uint32_t total, size_t max_body)
{
    static medium_t m; /* large: not on the stack */
    endpoint_t ep[2];
    medium_clear(&m);
    memset(&m, 0, sizeof(m));
    m.rng = seed;
    m.drop_pct = drop_pct;
    m.dup_pct = dup_pct;
    for (int i = 0; i < 2; i++) {
        memset(&ep[i], 0, sizeof(ep[i]));
        channel_init(&ep[i].ch, RTO, 0);
        channel_set_peer(&ep[i].ch, 100 + (uint64_t)(1 - i));
        /* a window of a few frames: the sender waits for acks, too */
        ep[i].ch.window = 3 * max_body;
        ep[i].total = total;
        ep[i].id = i;
    }
    uint64_t now = 1000;
    uint64_t it = 0;
    for (; it < 200000; it++) {
        int done = 1;
        for (int i = 0; i < 2; i++)
            done &= ep[i].received == total && ep[1 - i].ch.unacked_bytes == 0 &&
                    ep[1 - i].ch.head == NULL && ep[1 - i].queued == total;
        if (done) break;
        for (int i = 0; i < 2; i++) {
            unsigned burst = rng_below(&m.rng, 4);
            for (unsigned k = 0; k < burst && ep[i].queued < total; k++) {
                uint8_t msg[64];
                size_t n = make_msg(i, ep[i].queued, msg);
                assert_int_equal(channel_queue(&ep[i].ch, msg, n), 0);
                ep[i].queued++;
            }
            sim_pump(&ep[i], 1 - i, &m, max_body, now);
        }
        unsigned take = m.n ? 1 + rng_below(&m.rng, (unsigned)m.n) : 0;
        for (unsigned k = 0; k < take; k++) {
            sim_frame_t f = medium_take(&m);
            endpoint_t *dst = &ep[f.to];
            int rc;
            if (f.is_ack) {
                rc = channel_on_ack(&dst->ch, f.body, f.len, now);
            } else {
                g_peer_of_receiver = 1 - f.to;
                rc = channel_on_msg(&dst->ch, f.body, f.len, now, sim_deliver, dst);
            }
            assert_int_equal(rc, 0);
            free(f.body);
        }
        now += rng_below(&m.rng, 40);
    }
    sim_result_t res = {m.frames, m.dropped, it};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ep[i].received, total);
        assert_int_equal(ep[i].ch.delivered, total);
        assert_int_equal(ep[i].ch.unacked_bytes, 0);
        assert_null(ep[i].ch.head);
        assert_int_equal(ep[i].ch.early_count, 0);
        assert_int_equal(ep[i].ch.next_seq, total + 1);
        assert_int_equal(ep[i].ch.expected, total + 1);
        if (drop_pct > 0 || dup_pct > 0)
            assert_true(ep[i].ch.duplicates > 0 || ep[1 - i].ch.resent > 0);
        if (drop_pct > 0) assert_true(ep[i].ch.resent > 0);
        if (dup_pct == 0) /* without copies in the medium, only resends repeat */
            assert_true(ep[i].ch.duplicates <= ep[1 - i].ch.resent);
        channel_fini(&ep[i].ch);
    }
    medium_clear(&m);
    return res;
}

/* ---- tests: the lossy medium ----------------------------------------------- */

static void test_channel_perfect_medium_delivers_in_order(void **state)
{
    (void)state;
    sim_result_t r = run_sim(1, 0, 0, 2000, 256);
    assert_int_equal(r.dropped, 0);
}

static void test_channel_lossy_medium_exactly_once_in_order(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        sim_result_t r = run_sim(seed * 7919, 30, 10, 1500, 64 + 37 * (size_t)seed);
        assert_true(r.dropped > 0);
    }
}

static void test_channel_very_lossy_medium_still_completes(void **state)
{
    (void)state;
    run_sim(424242, 60, 20, 500, 128);
    run_sim(5, 0, 50, 800, 1 << 16); /* duplicates and reordering only */
}

/* ---- tests: one step at a time ---------------------------------------------- */

static void test_channel_init_defaults(void **state)
{
    (void)state;
    channel_t ch;
    channel_init(&ch, 0, 0);
    assert_int_equal(ch.rto_ms, CHANNEL_DEFAULT_RTO_MS);
    assert_int_equal(ch.max_unacked, CHANNEL_DEFAULT_MAX_UNACKED);
    assert_int_equal(ch.next_seq, 1);
    assert_int_equal(ch.expected, 1);
    assert_int_equal(ch.unacked_bytes, 0);
    assert_false(channel_resend_due(&ch, 1000000));
    assert_no_frame(&ch, 0, 0);
    assert_no_frame(&ch, 1, 0);
    channel_fini(&ch);
    channel_fini(&ch); /* twice is harmless */
}

static void test_channel_frame_layout_and_ack(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    queue_str(&a, "one");
    queue_str(&a, "");
    queue_str(&a, "three");
    assert_int_equal(a.unacked_bytes, 8);
    size_t len;
    uint8_t *f = next_frame(&a, 0, 1 << 20, 10, &len);
    parsed_t p;
    parse_body(f, len, &p);
    assert_int_equal(p.ack, 0); /* nothing received yet */
    assert_int_equal(p.first, 1);
    assert_int_equal(p.count, 3);
    assert_int_equal(p.len[0], 3);
    assert_memory_equal(f + p.off[0], "one", 3);
    assert_int_equal(p.len[1], 0);
    assert_int_equal(p.len[2], 5);
    assert_memory_equal(f + p.off[2], "three", 5);
    assert_no_frame(&a, 0, 10); /* all sent once */

    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 20, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 3);
    assert_rec(&r, 0, "one");
    assert_rec(&r, 1, "");
    assert_rec(&r, 2, "three");
    assert_int_equal(b.delivered, 3);
    assert_int_equal(b.ack_due, 1);

    uint8_t *ack;
    assert_int_equal(channel_ack_frame(&b, &ack, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(le64(ack), 3);
    assert_int_equal(b.ack_due, 0);
    assert_int_equal(a.unacked_bytes, 8);
    assert_int_equal(channel_on_ack(&a, ack, len, 30), 0);
    free(ack);
    assert_int_equal(a.unacked_bytes, 0);
    assert_null(a.head);
    assert_false(channel_resend_due(&a, 100000));

    /* the next data frame from b carries the same ack, piggybacked */
    queue_str(&b, "back");
    f = next_frame(&b, 0, 1 << 20, 40, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.ack, 3);
    assert_int_equal(p.first, 1);
    free(f);
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_piggybacked_ack_frees_sender(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    queue_str(&a, "ping");
    size_t len;
    uint8_t *f = next_frame(&a, 0, 1 << 20, 0, &len);
    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    free(f);
    queue_str(&b, "pong");
    f = next_frame(&b, 0, 1 << 20, 0, &len);
    assert_int_equal(b.ack_due, 0); /* the data frame carried the ack */
    rec_t ra = {0};
    assert_int_equal(channel_on_msg(&a, f, len, 0, rec_deliver, &ra), 0);
    free(f);
    assert_rec(&ra, 0, "pong");
    assert_int_equal(a.unacked_bytes, 0);
    assert_null(a.head);
    assert_int_equal(b.unacked_bytes, 4); /* a has not acked "pong" yet */
    channel_fini(&a);
    channel_fini(&b);
}

/* channel_next_frame_at builds the very body channel_next_frame does, after
 * `headroom` bytes and with `tailroom` bytes of room behind it (written
 * over here: the sanitizer build catches a buffer too short), and moves the
 * stream on alike. */
static void test_channel_next_frame_at_room_around_body(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    char big[5000];
    memset(big, 'q', sizeof(big));
    for (channel_t *ch = &a; ch; ch = ch == &a ? &b : NULL) {
        queue_str(ch, "m1");
        assert_int_equal(channel_queue(ch, big, sizeof(big)), 0);
    }
    size_t len_a, len_b;
    uint8_t *plain = next_frame(&a, 0, 1 << 20, 10, &len_a);
    uint8_t *framed = NULL;
    assert_int_equal(channel_next_frame_at(&b, 0, 1 << 20, 10, 64, 16, &framed, &len_b), 0);
    assert_non_null(framed);
    assert_int_equal(len_b, len_a);
    assert_memory_equal(framed + 64, plain, len_a);
    memset(framed, 0xee, 64);               /* a header goes here */
    memset(framed + 64 + len_b, 0xdd, 16); /* and a MAC here */
    assert_int_equal(a.next_send, b.next_send);
    assert_int_equal(a.inflight_bytes, b.inflight_bytes);
    free(plain);
    free(framed);
    /* nothing left: NULL and 0, as channel_next_frame */
    framed = (uint8_t *)"sentinel";
    assert_int_equal(channel_next_frame_at(&b, 0, 1 << 20, 10, 64, 16, &framed, &len_b), 0);
    assert_null(framed);
    assert_int_equal(len_b, 0);
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_resend_after_rto_go_back_n(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    queue_str(&a, "m1");
    queue_str(&a, "m2");
    queue_str(&a, "m3");
    assert_false(channel_resend_due(&a, 5000)); /* nothing sent yet */
    size_t len;
    free(next_frame(&a, 0, 1 << 20, 1000, &len)); /* lost */
    assert_false(channel_resend_due(&a, 1000));
    assert_false(channel_resend_due(&a, 1000 + RTO - 1));
    assert_true(channel_resend_due(&a, 1000 + RTO));
    assert_no_frame(&a, 0, 1000 + RTO); /* a plain flush sends nothing again */

    uint8_t *f = next_frame(&a, 1, 1 << 20, 1000 + RTO, &len);
    parsed_t p;
    parse_body(f, len, &p);
    assert_int_equal(p.first, 1);
    assert_int_equal(p.count, 3);
    assert_int_equal(a.resent, 3);
    assert_false(channel_resend_due(&a, 1000 + RTO)); /* a new rto from now */
    assert_true(channel_resend_due(&a, 1000 + 2 * RTO));

    /* only m1 arrives (b gets a truncated copy of the batch: first message) */
    body_t one;
    body_start(&one, 0, 1, 1);
    body_add(&one, "m1", 2);
    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, one.buf, one.len, 0, rec_deliver, &r), 0);
    free(f);
    uint8_t *ack;
    assert_int_equal(channel_ack_frame(&b, &ack, &len), 0);
    assert_int_equal(channel_on_ack(&a, ack, len, 1000 + RTO + 50), 0);
    free(ack);
    assert_int_equal(a.unacked_bytes, 4);
    /* acknowledged progress restarts the timer for the new oldest */
    assert_false(channel_resend_due(&a, 1000 + 2 * RTO));
    assert_true(channel_resend_due(&a, 1000 + RTO + 50 + RTO));

    /* go back to the oldest unacknowledged: m2 and m3 */
    f = next_frame(&a, 1, 1 << 20, 1000 + 2 * RTO + 50, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.ack, 0);
    assert_int_equal(p.first, 2);
    assert_int_equal(p.count, 2);
    assert_int_equal(a.resent, 5);
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 3);
    assert_rec(&r, 1, "m2");
    assert_rec(&r, 2, "m3");
    assert_int_equal(b.delivered, 3);
    assert_int_equal(b.duplicates, 0);
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_duplicates_counted_not_delivered(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    queue_str(&a, "x");
    queue_str(&a, "y");
    size_t len;
    uint8_t *f = next_frame(&a, 0, 1 << 20, 0, &len);
    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    uint8_t *ack;
    size_t ack_len;
    assert_int_equal(channel_ack_frame(&b, &ack, &ack_len), 0);
    free(ack);
    assert_int_equal(b.ack_due, 0);
    /* the same frame again: counted, not delivered, and acknowledged again */
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 2);
    assert_int_equal(b.delivered, 2);
    assert_int_equal(b.duplicates, 4);
    assert_int_equal(b.ack_due, 1); /* so that a lost ack is repaired */
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_reordered_frames_held_then_delivered(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    queue_str(&a, "1");
    queue_str(&a, "2");
    size_t l1, l2, l3;
    uint8_t *f1 = next_frame(&a, 0, HDR + 4 + 1 + 4 + 1, 0, &l1);
    queue_str(&a, "3");
    queue_str(&a, "4");
    uint8_t *f2 = next_frame(&a, 0, 1 << 20, 0, &l2);
    queue_str(&a, "5");
    uint8_t *f3 = next_frame(&a, 0, 1 << 20, 0, &l3);
    parsed_t p;
    parse_body(f2, l2, &p);
    assert_int_equal(p.first, 3);
    assert_int_equal(p.count, 2);

    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, f3, l3, 0, rec_deliver, &r), 0);
    assert_int_equal(channel_on_msg(&b, f2, l2, 0, rec_deliver, &r), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(b.early_count, 3);
    assert_int_equal(b.expected, 1);
    /* an early one arriving twice is a duplicate, held once */
    assert_int_equal(channel_on_msg(&b, f2, l2, 0, rec_deliver, &r), 0);
    assert_int_equal(b.early_count, 3);
    assert_int_equal(b.duplicates, 2);
    /* the gap fills: everything held comes out, in order */
    assert_int_equal(channel_on_msg(&b, f1, l1, 0, rec_deliver, &r), 0);
    assert_int_equal(r.n, 5);
    for (size_t i = 0; i < 5; i++) {
        char s[2] = {(char)('1' + i), 0};
        assert_rec(&r, i, s);
    }
    assert_int_equal(b.early_count, 0);
    assert_null(b.early);
    assert_int_equal(b.expected, 6);
    assert_int_equal(b.delivered, 5);
    free(f1);
    free(f2);
    free(f3);
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_reorder_window_bounded(void **state)
{
    (void)state;
    const uint32_t total = CHANNEL_REORDER_WINDOW + 900;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    for (uint32_t i = 1; i <= total; i++) {
        char s[16];
        snprintf(s, sizeof(s), "%u", i);
        queue_str(&a, s);
    }
    /* the first frame (seq 1 and a few after it) is late: all the rest arrive first */
    size_t len;
    size_t first_len;
    uint8_t *first = next_frame(&a, 0, 64, 0, &first_len);
    parsed_t p;
    parse_body(first, first_len, &p);
    uint64_t lost_upto = p.first + p.count - 1;
    rec_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    for (int guard = 0; guard < 100000; guard++) {
        uint8_t *f;
        assert_int_equal(channel_next_frame(&a, 0, 64, 0, &f, &len), 0);
        if (f == NULL) break;
        assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, r), 0);
        free(f);
    }
    assert_int_equal(r->n, 0);
    assert_int_equal(b.early_count, CHANNEL_REORDER_WINDOW);
    assert_int_equal(b.dropped_early, total - lost_upto - CHANNEL_REORDER_WINDOW);
    /* the lost frame arrives: the window comes out, the rest waits for resend */
    assert_int_equal(channel_on_msg(&b, first, first_len, 0, rec_deliver, r), 0);
    free(first);
    assert_int_equal(r->n, lost_upto + CHANNEL_REORDER_WINDOW);
    assert_int_equal(b.early_count, 0);
    uint8_t *ack;
    assert_int_equal(channel_ack_frame(&b, &ack, &len), 0);
    assert_int_equal(channel_on_ack(&a, ack, len, 10), 0);
    free(ack);
    for (int guard = 0; guard < 1000 && r->n < total; guard++) {
        uint8_t *f = next_frame(&a, 1, 1 << 20, 10 + (uint64_t)guard * RTO, &len);
        assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, r), 0);
        free(f);
    }
    assert_int_equal(r->n, total);
    for (uint32_t i = 0; i < total; i++) {
        char s[16];
        snprintf(s, sizeof(s), "%u", i + 1);
        assert_rec(r, i, s);
    }
    free(r);
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_full_refuses_without_queueing(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 100);
    channel_init(&b, RTO, 0);
    uint8_t buf[128];
    memset(buf, 'z', sizeof(buf));
    assert_int_equal(channel_queue(&a, buf, 60), 0);
    assert_int_equal(channel_queue(&a, buf, 41), HERD_EFULL);
    assert_int_equal(a.unacked_bytes, 60);
    assert_int_equal(a.next_seq, 2); /* no sequence number was used */
    assert_ptr_equal(a.head, a.tail);
    assert_int_equal(channel_queue(&a, buf, 40), 0); /* exactly at the limit */
    assert_int_equal(a.unacked_bytes, 100);
    assert_int_equal(channel_queue(&a, buf, 1), HERD_EFULL);
    assert_int_equal(channel_queue(&a, buf, 0), 0);   /* an empty one still fits */
    assert_int_equal(channel_queue(&b, buf, 101), 0); /* b's limit is the default */
    assert_int_equal(b.unacked_bytes, 101);

    /* the receiver sees seq 1, 2, 3 with no gap; its ack frees a's buffer */
    channel_t c;
    channel_init(&c, RTO, 0);
    size_t len;
    uint8_t *f = next_frame(&a, 0, 1 << 20, 0, &len);
    parsed_t p;
    parse_body(f, len, &p);
    assert_int_equal(p.first, 1);
    assert_int_equal(p.count, 3);
    lens_t got = {0};
    assert_int_equal(channel_on_msg(&c, f, len, 0, lens_deliver, &got), 0);
    free(f);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.len[0], 60);
    assert_int_equal(got.len[1], 40);
    assert_int_equal(got.len[2], 0);
    uint8_t *ack;
    size_t alen;
    assert_int_equal(channel_ack_frame(&c, &ack, &alen), 0);
    assert_int_equal(le64(ack), 3);
    assert_int_equal(channel_on_ack(&a, ack, alen, 5), 0);
    free(ack);
    assert_int_equal(a.unacked_bytes, 0);
    assert_int_equal(channel_queue(&a, buf, 100), 0); /* room again */
    assert_int_equal(a.next_seq, 5);
    channel_fini(&a);
    channel_fini(&b);
    channel_fini(&c);
}

static void test_channel_counters(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    for (int i = 0; i < 4; i++)
        queue_str(&a, "c");
    size_t len;
    free(next_frame(&a, 0, 1 << 20, 0, &len)); /* lost */
    assert_int_equal(a.resent, 0);
    uint8_t *f = next_frame(&a, 1, 1 << 20, RTO, &len);
    assert_int_equal(a.resent, 4);
    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(b.delivered, 4);
    assert_int_equal(b.duplicates, 4);
    assert_int_equal(b.dropped_early, 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(a.delivered, 0);
    assert_int_equal(b.resent, 0);
    channel_fini(&a);
    channel_fini(&b);
}

static void test_channel_new_incarnation_restarts_both_directions(void **state)
{
    (void)state;
    channel_t a, b; /* a: node A's stream to B; b: node B's stream to A */
    channel_init(&a, RTO, 1000);
    channel_init(&b, RTO, 0);
    assert_int_equal(channel_set_peer(&a, 7), 0);
    assert_int_equal(channel_set_peer(&b, 1), 0);
    queue_str(&a, "a1");
    queue_str(&a, "a2");
    queue_str(&a, "a3");
    assert_int_equal(channel_set_peer(&a, 7), 0); /* the same start: nothing changes */
    assert_int_equal(a.next_seq, 4);
    assert_int_equal(a.unacked_bytes, 6);

    size_t len;
    uint8_t *f = next_frame(&a, 0, 1 << 20, 0, &len);
    rec_t rb = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &rb), 0);
    free(f);
    assert_int_equal(rb.n, 3);
    queue_str(&a, "a4");
    queue_str(&a, "a5");
    free(next_frame(&a, 0, 1 << 20, 0, &len)); /* lost */
    queue_str(&b, "b1");
    f = next_frame(&b, 0, 1 << 20, 0, &len);
    rec_t ra = {0};
    assert_int_equal(channel_on_msg(&a, f, len, 0, rec_deliver, &ra), 0);
    free(f);
    assert_int_equal(a.unacked_bytes, 4); /* b's ack of a1..a3 came with b1 */
    assert_int_equal(a.expected, 2);
    /* something early held by b, from A's first start */
    body_t early;
    body_start(&early, 0, 9, 1);
    body_add(&early, "a9", 2);
    assert_int_equal(channel_on_msg(&b, early.buf, early.len, 0, rec_deliver, &rb), 0);
    assert_int_equal(b.early_count, 1);

    /* B restarts (incarnation 8): a drops what was queued for the dead start */
    assert_int_equal(channel_set_peer(&a, 8), 2);
    assert_int_equal(a.peer_inc, 8);
    assert_int_equal(a.unacked_bytes, 0);
    assert_null(a.head);
    assert_int_equal(a.next_seq, 1);
    assert_int_equal(a.expected, 1);
    assert_int_equal(a.rto_ms, RTO);
    assert_int_equal(a.max_unacked, 1000);
    assert_false(channel_resend_due(&a, 1000000));
    assert_no_frame(&a, 0, 0);
    assert_no_frame(&a, 1, 1000000);
    queue_str(&a, "new");
    f = next_frame(&a, 0, 1 << 20, 0, &len);
    parsed_t p;
    parse_body(f, len, &p);
    assert_int_equal(p.first, 1); /* the stream starts again from 1 */
    assert_int_equal(p.ack, 0);   /* and so does the other direction */
    channel_t b2;                 /* B's new start */
    channel_init(&b2, RTO, 0);
    assert_int_equal(channel_set_peer(&b2, 1), 0);
    rec_t rb2 = {0};
    assert_int_equal(channel_on_msg(&b2, f, len, 0, rec_deliver, &rb2), 0);
    free(f);
    assert_int_equal(rb2.n, 1);
    assert_rec(&rb2, 0, "new");

    /* the receiver side: A restarts (incarnation 2) as seen from old b */
    assert_int_equal(channel_set_peer(&b, 2), 1); /* b1 was never acked */
    assert_int_equal(b.expected, 1);
    assert_int_equal(b.early_count, 0);
    assert_null(b.early);
    body_t again;
    body_start(&again, 0, 1, 1);
    body_add(&again, "x1", 2);
    size_t before = rb.n;
    assert_int_equal(channel_on_msg(&b, again.buf, again.len, 0, rec_deliver, &rb), 0);
    assert_int_equal(rb.n, before + 1); /* seq 1 again is new, not a duplicate */
    assert_rec(&rb, before, "x1");
    assert_int_equal(b.duplicates, 0);
    channel_fini(&a);
    channel_fini(&b);
    channel_fini(&b2);
}

/* A malformed body must be refused whole: nothing delivered, held, or acked. */
static void expect_bad(channel_t *b, const uint8_t *buf, size_t len)
{
    rec_t r = {0};
    uint64_t expected = b->expected, delivered = b->delivered;
    size_t early = b->early_count, unacked = b->unacked_bytes;
    assert_int_equal(channel_on_msg(b, buf, len, 0, rec_deliver, &r), HERD_EBADFRAME);
    assert_int_equal(r.n, 0);
    assert_int_equal(b->expected, expected);
    assert_int_equal(b->delivered, delivered);
    assert_int_equal(b->early_count, early);
    assert_int_equal(b->unacked_bytes, unacked);
    assert_int_equal(b->ack_due, 0);
}

static void test_channel_malformed_bodies_refused_whole(void **state)
{
    (void)state;
    channel_t b;
    channel_init(&b, RTO, 0);
    /* b has sent two messages, so that an ack in a bad body could free them */
    queue_str(&b, "s1");
    queue_str(&b, "s2");
    size_t len;
    free(next_frame(&b, 0, 1 << 20, 0, &len));
    assert_int_equal(b.unacked_bytes, 4);

    body_t x;
    body_start(&x, 2, 1, 2);
    body_add(&x, "m1", 2);
    body_add(&x, "m2", 2);
    for (size_t cut = 0; cut < x.len; cut++) /* truncated anywhere */
        expect_bad(&b, x.buf, cut);

    body_start(&x, 2, 1, 3); /* count larger than what is there */
    body_add(&x, "m1", 2);
    body_add(&x, "m2", 2);
    expect_bad(&b, x.buf, x.len);

    body_start(&x, 2, 1, 2); /* trailing bytes */
    body_add(&x, "m1", 2);
    body_add(&x, "m2", 2);
    x.buf[x.len++] = 0;
    expect_bad(&b, x.buf, x.len);

    body_start(&x, 2, 0, 1); /* first_seq 0 */
    body_add(&x, "m1", 2);
    expect_bad(&b, x.buf, x.len);
    body_start(&x, 2, 0, 0);
    expect_bad(&b, x.buf, x.len);

    body_start(&x, 2, 1, 2); /* the second message's length runs past the end */
    body_add(&x, "m1", 2);
    put_le(x.buf + x.len, 100, 4);
    memcpy(x.buf + x.len + 4, "m2", 2);
    x.len += 6;
    expect_bad(&b, x.buf, x.len);

    body_start(&x, 2, 5, 2); /* early messages, trailing byte: not held either */
    body_add(&x, "m5", 2);
    body_add(&x, "m6", 2);
    x.buf[x.len++] = 0;
    expect_bad(&b, x.buf, x.len);

    /* the channel is unharmed: a good body delivers, and takes its ack */
    body_start(&x, 2, 1, 2);
    body_add(&x, "m1", 2);
    body_add(&x, "m2", 2);
    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, x.buf, x.len, 0, rec_deliver, &r), 0);
    assert_int_equal(r.n, 2);
    assert_rec(&r, 0, "m1");
    assert_rec(&r, 1, "m2");
    assert_int_equal(b.unacked_bytes, 0);
    assert_int_equal(b.ack_due, 1);

    /* a body with no messages is an ack carrier: valid, nothing to ack back */
    channel_t c;
    channel_init(&c, RTO, 0);
    queue_str(&c, "q");
    free(next_frame(&c, 0, 1 << 20, 0, &len));
    body_start(&x, 1, 1, 0);
    assert_int_equal(channel_on_msg(&c, x.buf, x.len, 0, rec_deliver, &r), 0);
    assert_int_equal(c.unacked_bytes, 0);
    assert_int_equal(c.ack_due, 0);
    channel_fini(&b);
    channel_fini(&c);
}

static void test_channel_malformed_ack_refused(void **state)
{
    (void)state;
    channel_t a;
    channel_init(&a, RTO, 0);
    queue_str(&a, "m");
    size_t len;
    free(next_frame(&a, 0, 1 << 20, 0, &len));
    uint8_t ack[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(channel_on_ack(&a, ack, 7, 0), HERD_EBADFRAME);
    assert_int_equal(channel_on_ack(&a, ack, 9, 0), HERD_EBADFRAME);
    assert_int_equal(channel_on_ack(&a, ack, 0, 0), HERD_EBADFRAME);
    assert_int_equal(a.unacked_bytes, 1);
    /* an ack of a seq never sent frees only what was sent */
    queue_str(&a, "n");
    ack[0] = 2;
    assert_int_equal(channel_on_ack(&a, ack, 8, 0), 0);
    assert_int_equal(a.unacked_bytes, 1);
    assert_non_null(a.head);
    assert_int_equal(a.head->seq, 2);
    uint8_t *f = next_frame(&a, 0, 1 << 20, 0, &len); /* "n" still goes out */
    parsed_t p;
    parse_body(f, len, &p);
    assert_int_equal(p.first, 2);
    assert_int_equal(p.count, 1);
    free(f);
    /* an old (smaller) ack changes nothing */
    ack[0] = 1;
    assert_int_equal(channel_on_ack(&a, ack, 8, 0), 0);
    assert_int_equal(a.unacked_bytes, 1);
    channel_fini(&a);
}

/* Frames out of one channel for queued messages of lengths lens[]: each holds
 * consecutive messages, never exceeds max_body unless it holds one message
 * that alone does, and holds as many as fit. */
static void check_batches(channel_t *a, int resend, const size_t *lens, uint64_t from,
                          uint64_t upto, size_t max_body)
{
    uint64_t next = from;
    while (next <= upto) {
        size_t len;
        uint8_t *f = next_frame(a, resend, max_body, 0, &len);
        parsed_t *p = malloc(sizeof(*p));
        assert_non_null(p);
        parse_body(f, len, p);
        assert_int_equal(p->first, next);
        assert_true(p->count >= 1);
        size_t want = HDR;
        for (uint16_t i = 0; i < p->count; i++) {
            size_t n = lens[p->first + i];
            assert_int_equal(p->len[i], n);
            for (size_t k = 0; k < n; k++)
                assert_int_equal(f[p->off[i] + k], (uint8_t)(p->first + i + k));
            want += 4 + n;
        }
        assert_int_equal(len, want);
        if (p->count > 1) assert_true(len <= max_body);
        if (len > max_body) {
            assert_int_equal(p->count, 1);
            assert_true(HDR + 4 + lens[p->first] > max_body);
        }
        uint64_t after = p->first + p->count;
        if (after <= upto) /* the next one would not have fit */
            assert_true(len + 4 + lens[after] > max_body);
        next = after;
        free(p);
        free(f);
        if (resend) break; /* one window per resend */
    }
}

static void test_channel_batches_respect_max_body(void **state)
{
    (void)state;
    enum { N = 1500 };
    static size_t lens[N + 1];
    uint64_t rng = 99;
    const size_t max_body = 1000;
    channel_t a;
    channel_init(&a, RTO, 0);
    uint8_t buf[3000];
    for (uint64_t seq = 1; seq <= N; seq++) {
        unsigned pick = rng_below(&rng, 100);
        size_t n = pick < 5    ? 900 + rng_below(&rng, 2000) /* some alone too big */
                   : pick < 10 ? 0
                               : rng_below(&rng, 300);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)(seq + k);
        lens[seq] = n;
        assert_int_equal(channel_queue(&a, buf, n), 0);
    }
    check_batches(&a, 0, lens, 1, N, max_body);
    assert_no_frame(&a, 0, 0);
    /* a resend window obeys the same rule */
    check_batches(&a, 1, lens, 1, N, max_body);

    /* exactly at the limit: two messages that fill max_body go together */
    channel_t c;
    channel_init(&c, RTO, 0);
    memset(buf, 1, 10);
    assert_int_equal(channel_queue(&c, buf, 10), 0);
    assert_int_equal(channel_queue(&c, buf, 10), 0);
    assert_int_equal(channel_queue(&c, buf, 10), 0);
    size_t len;
    uint8_t *f = next_frame(&c, 0, HDR + 2 * (4 + 10), 0, &len);
    parsed_t *p = malloc(sizeof(*p));
    assert_non_null(p);
    parse_body(f, len, p);
    assert_int_equal(p->count, 2);
    assert_int_equal(len, HDR + 2 * (4 + 10));
    free(f);
    f = next_frame(&c, 0, HDR + 2 * (4 + 10), 0, &len);
    parse_body(f, len, p);
    assert_int_equal(p->first, 3);
    assert_int_equal(p->count, 1);
    free(f);
    free(p);
    channel_fini(&a);
    channel_fini(&c);
}

/* ---- the window, taking a frame back, going back --------------------------- */

/* At most `window` bytes are in flight: the rest waits, unsent, and goes
 * as acknowledgements open the window; channel_send_ready says when. A
 * lone message larger than the window goes when nothing is in flight. */
static void test_channel_window_holds_back_until_acked(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    assert_int_equal(a.window, CHANNEL_DEFAULT_WINDOW);
    a.window = 10;
    assert_false(channel_send_ready(&a));
    queue_str(&a, "m1aa"); /* 4 bytes */
    queue_str(&a, "m2aa");
    queue_str(&a, "m3aa");
    queue_str(&a, "m4aa");
    assert_true(channel_send_ready(&a));
    size_t len;
    parsed_t p;
    uint8_t *f = next_frame(&a, 0, 1 << 20, 0, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 1);
    assert_int_equal(p.count, 2); /* 8 bytes; a third would make 12 > 10 */
    assert_int_equal(a.inflight_bytes, 8);
    assert_false(channel_send_ready(&a));
    assert_no_frame(&a, 0, 0);
    assert_int_equal(a.sent_upto, 2);

    rec_t r = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    free(f);
    uint8_t *ack;
    assert_int_equal(channel_ack_frame(&b, &ack, &len), 0);
    assert_int_equal(channel_on_ack(&a, ack, len, 5), 0);
    free(ack);
    assert_int_equal(a.inflight_bytes, 0);
    assert_true(channel_send_ready(&a));
    f = next_frame(&a, 0, 1 << 20, 5, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 3);
    assert_int_equal(p.count, 2);
    assert_int_equal(channel_on_msg(&b, f, len, 5, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 4);
    assert_rec(&r, 3, "m4aa");

    /* larger than the window: alone, and only with nothing in flight */
    queue_str(&a, "small");
    queue_str(&a, "a-message-larger-than-ten");
    assert_false(channel_send_ready(&a)); /* m3, m4 in flight: 8 + 5 > 10 */
    assert_no_frame(&a, 0, 6);
    assert_int_equal(channel_ack_frame(&b, &ack, &len), 0); /* acks m4 */
    assert_int_equal(channel_on_ack(&a, ack, len, 7), 0);
    free(ack);
    f = next_frame(&a, 0, 1 << 20, 7, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 5);
    assert_int_equal(p.count, 1); /* "small" (5) + 25 > 10 */
    free(f);
    assert_false(channel_send_ready(&a)); /* "small" is still in flight */
    body_t up_to_5;
    body_start(&up_to_5, 0, 5, 0); /* b's empty batch acking nothing new */
    put_le(up_to_5.buf, 5, 8);    /* ... but its ack field says 5 */
    rec_t none = {0};
    assert_int_equal(channel_on_msg(&a, up_to_5.buf, up_to_5.len, 8, rec_deliver, &none), 0);
    assert_true(channel_send_ready(&a));
    f = next_frame(&a, 0, 1 << 20, 8, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 6);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.len[0], 25);
    assert_int_equal(a.inflight_bytes, 25);
    free(f);
    channel_fini(&a);
    channel_fini(&b);
}

/* A frame the transport refused is taken back: its messages count as never
 * sent (a verdict on a lost member says "not applied" for them), are not
 * due for a resend, and go again, the same, in the next frame; the ack the
 * frame carried is due again. */
static void test_channel_unsend_takes_the_frame_back(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    /* b receives something, so a's frame carries an ack */
    queue_str(&b, "hello");
    size_t len;
    uint8_t *f = next_frame(&b, 0, 1 << 20, 0, &len);
    rec_t r = {0};
    assert_int_equal(channel_on_msg(&a, f, len, 0, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(a.ack_due, 1);

    queue_str(&a, "x1");
    queue_str(&a, "x2");
    f = next_frame(&a, 0, 1 << 20, 10, &len);
    free(f);
    assert_int_equal(a.sent_upto, 2);
    assert_int_equal(a.ack_due, 0);
    channel_unsend(&a);
    assert_int_equal(a.sent_upto, 0);
    assert_int_equal(a.inflight_bytes, 0);
    assert_int_equal(a.ack_due, 1);
    assert_false(channel_msg_sent(&a, a.head));
    assert_false(channel_resend_due(&a, 10 + 10 * RTO));
    assert_true(channel_send_ready(&a));

    /* the next frame: the same messages, with the ack */
    f = next_frame(&a, 0, 1 << 20, 20, &len);
    parsed_t p;
    parse_body(f, len, &p);
    assert_int_equal(p.ack, 1);
    assert_int_equal(p.first, 1);
    assert_int_equal(p.count, 2);
    assert_int_equal(a.resent, 0);
    assert_true(channel_msg_sent(&a, a.head));
    rec_t rb = {0};
    assert_int_equal(channel_on_msg(&b, f, len, 20, rec_deliver, &rb), 0);
    free(f);
    assert_int_equal(b.unacked_bytes, 0); /* "hello" acknowledged */
    assert_int_equal(rb.n, 2);
    assert_rec(&rb, 1, "x2");

    /* a resend taken back leaves the messages sent (they went once) */
    assert_true(channel_resend_due(&a, 20 + RTO));
    free(next_frame(&a, 1, 1 << 20, 20 + RTO, &len));
    channel_unsend(&a);
    assert_int_equal(a.sent_upto, 2);
    assert_true(channel_msg_sent(&a, a.head));
    channel_fini(&a);
    channel_fini(&b);
}

/* A resend goes back to the oldest unacknowledged message and sends the
 * window again from there, frame after frame; an ack for messages of the
 * first pass moves the next frame past them. */
static void test_channel_go_back_sends_the_window_again(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    for (int i = 0; i < 6; i++)
        queue_str(&a, "msg");
    size_t len;
    parsed_t p;
    /* three frames of two, all lost */
    for (int i = 0; i < 3; i++) {
        uint8_t *f = next_frame(&a, 0, HDR + 2 * (4 + 3), 0, &len);
        parse_body(f, len, &p);
        assert_int_equal(p.first, (uint64_t)(1 + 2 * i));
        free(f);
    }
    assert_no_frame(&a, 0, 0);
    assert_true(channel_resend_due(&a, RTO));
    uint8_t *f = next_frame(&a, 1, HDR + 2 * (4 + 3), RTO, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 1);
    assert_int_equal(p.count, 2);
    free(f);
    assert_true(channel_send_ready(&a)); /* the rest of the window follows */
    f = next_frame(&a, 0, HDR + 2 * (4 + 3), RTO, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 3);
    rec_t r = {0};
    /* b got the first pass's frame 3..4 only, held early; then an ack of 4
     * after b also gets 1..2 from the resend */
    assert_int_equal(channel_on_msg(&b, f, len, RTO, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 0);
    body_t first;
    body_start(&first, 0, 1, 2);
    body_add(&first, "msg", 3);
    body_add(&first, "msg", 3);
    assert_int_equal(channel_on_msg(&b, first.buf, first.len, RTO, rec_deliver, &r), 0);
    assert_int_equal(r.n, 4);
    uint8_t *ack;
    assert_int_equal(channel_ack_frame(&b, &ack, &len), 0);
    assert_int_equal(le64(ack), 4);
    /* a went back once more before the ack came: it is at 1 again */
    assert_true(channel_resend_due(&a, 3 * RTO));
    size_t again_len;
    free(next_frame(&a, 1, HDR + 2 * (4 + 3), 3 * RTO, &again_len)); /* 1..2 again */
    assert_int_equal(channel_on_ack(&a, ack, len, 3 * RTO), 0);
    free(ack);
    assert_int_equal(a.head->seq, 5);
    assert_int_equal(a.inflight_bytes, 0);
    f = next_frame(&a, 0, HDR + 2 * (4 + 3), 3 * RTO, &len);
    parse_body(f, len, &p);
    assert_int_equal(p.first, 5); /* not 3: acknowledged meanwhile */
    assert_int_equal(p.count, 2);
    assert_int_equal(channel_on_msg(&b, f, len, 3 * RTO, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 6);
    assert_int_equal(b.duplicates, 0);
    channel_fini(&a);
    channel_fini(&b);
}

/* Out of memory on both ends: a message that cannot be queued is refused
 * (HERD_ENOMEM, nothing queued), and one that arrives early and cannot be
 * held is dropped and counted, then delivered once its resend comes. */
static void test_channel_out_of_memory_refused_or_counted(void **state)
{
    (void)state;
    channel_t a, b;
    channel_init(&a, RTO, 0);
    channel_init(&b, RTO, 0);
    g_fail_next_malloc = 1;
    assert_int_equal(channel_queue(&a, "x", 1), HERD_ENOMEM);
    assert_int_equal(a.next_seq, 1);
    assert_null(a.head);
    queue_str(&a, "m1");
    queue_str(&a, "m2");
    size_t len;
    uint8_t *f1 = next_frame(&a, 0, HDR + 4 + 2, 0, &len); /* m1 alone: lost */
    free(f1);
    uint8_t *f2 = next_frame(&a, 0, 1 << 20, 0, &len); /* m2: early at b */
    rec_t r = {0};
    g_fail_next_malloc = 1; /* holding m2 fails */
    assert_int_equal(channel_on_msg(&b, f2, len, 0, rec_deliver, &r), 0);
    free(f2);
    assert_int_equal(r.n, 0);
    assert_int_equal(b.early_count, 0);
    assert_int_equal(b.dropped_early, 1);
    /* the go back brings both, in order */
    uint8_t *f = next_frame(&a, 1, 1 << 20, RTO, &len);
    assert_int_equal(channel_on_msg(&b, f, len, 0, rec_deliver, &r), 0);
    free(f);
    assert_int_equal(r.n, 2);
    assert_rec(&r, 0, "m1");
    assert_rec(&r, 1, "m2");
    channel_fini(&a);
    channel_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_init_defaults),
        cmocka_unit_test(test_channel_frame_layout_and_ack),
        cmocka_unit_test(test_channel_piggybacked_ack_frees_sender),
        cmocka_unit_test(test_channel_next_frame_at_room_around_body),
        cmocka_unit_test(test_channel_resend_after_rto_go_back_n),
        cmocka_unit_test(test_channel_duplicates_counted_not_delivered),
        cmocka_unit_test(test_channel_reordered_frames_held_then_delivered),
        cmocka_unit_test(test_channel_reorder_window_bounded),
        cmocka_unit_test(test_channel_out_of_memory_refused_or_counted),
        cmocka_unit_test(test_channel_full_refuses_without_queueing),
        cmocka_unit_test(test_channel_counters),
        cmocka_unit_test(test_channel_new_incarnation_restarts_both_directions),
        cmocka_unit_test(test_channel_malformed_bodies_refused_whole),
        cmocka_unit_test(test_channel_malformed_ack_refused),
        cmocka_unit_test(test_channel_batches_respect_max_body),
        cmocka_unit_test(test_channel_window_holds_back_until_acked),
        cmocka_unit_test(test_channel_unsend_takes_the_frame_back),
        cmocka_unit_test(test_channel_go_back_sends_the_window_again),
        cmocka_unit_test(test_channel_perfect_medium_delivers_in_order),
        cmocka_unit_test(test_channel_lossy_medium_exactly_once_in_order),
        cmocka_unit_test(test_channel_very_lossy_medium_still_completes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
