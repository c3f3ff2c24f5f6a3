/*
 * test_cast_many.c - unit tests for one message to many pids (herd_runtime.h:
 * herd_node_cast_many, herd_cast_many, herd_node_multi_call_async; the
 * network's side in runtime/remote_many.c, PROTOCOL.md cast_many).
 *
 * Casts: pids of this node and of two others in one call, one message per
 * other node (the multicast counters); the sender a process names; dead,
 * full, unknown and old-start targets skipped; a node that is down
 * skipped; payloads over the limits refused with nothing sent; a long
 * list cut into bounded messages, checked on the wire and delivered; and
 * malformed messages from a member refused, counted, delivering nothing.
 * Multi-calls: everyone answers; dead pids fail at once or by their node's
 * answer; one that never answers times out without holding the others;
 * none at all; the function's own errors; and the node freed while one
 * waits (the callback told inside herd_node_free, nothing leaked).
 *
 * The clusters are nodes of this one process on one shared loop over
 * tcp://127.0.0.1 (support.h, as test_remote.c); a member whose frames the
 * test writes by hand is played over the in-memory transport
 * (ts_fake_cluster). Every wait has a deadline; nothing depends on speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include <cmocka.h>

#include "herd_ring.h"  /* herd_ring_hash_key: a check sum of what arrived */
#include "remote_int.h" /* the cast_many message: its kind, bounds and decoder */
#include "wire.h"
#include "herd_runtime.h"
#include "support.h"

#define SECRET "test-cast-many-secret-0123456789"
#define WAIT_MS 10000u
#define WAIT_UNTIL(cond) TS_WAIT_UNTIL(cond, WAIT_MS)

/* ---- nodes ------------------------------------------------------------------- */

static const ts_timing_t NORMAL = {100, 1500, 3000, 0};
static const ts_timing_t FAST = {50, 150, 300, 0}; /* a node dies in the test */

static herd_node_t *plain_node(const char *name, uint32_t max_message)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop, .max_message = max_message};
    return ts_cluster_add(&cfg);
}

static herd_node_t *cluster_node(const char *name, const ts_timing_t *t, herd_node_t *seed,
                                 uint32_t max_message)
{
    herd_node_t *n = plain_node(name, max_message);
    ts_cluster_join(n, t, &seed, seed ? 1 : 0);
    return n;
}

typedef struct trio {
    herd_node_t *a, *b, *c;
} trio_t;

static trio_t form(int k, const ts_timing_t *t, uint32_t a_max_message)
{
    trio_t x = {0};
    x.a = cluster_node("a", t, NULL, a_max_message);
    x.b = cluster_node("b", t, x.a, 0);
    if (k == 3) x.c = cluster_node("c", t, x.a, 0);
    herd_node_t *all[3] = {x.a, x.b, x.c};
    WAIT_UNTIL(ts_cluster_all_up(all, k));
    return x;
}

static herd_pid_t outside_pid(herd_node_t *n)
{
    return (herd_pid_t){herd_node_id_of(herd_node_name(n)), herd_node_incarnation(n), 0};
}

static herd_cluster_stats_t stats(herd_node_t *n)
{
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    return st;
}

/* ---- rec: records the casts it gets; answers calls ----------------------------------- */

#define REC_MAX 10000

typedef struct rec {
    uint32_t casts;
    herd_pid_t from; /* of the last cast */
    size_t len;
    uint64_t sum;    /* herd_ring_hash_key of the last cast's bytes */
} rec_t;

static rec_t g_rec[REC_MAX]; /* by the slot each rec is spawned with */
static size_t g_nrec;

static int rec_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    uint32_t slot;
    if (len != sizeof(slot)) return HERD_EINVAL;
    memcpy(&slot, arg, sizeof(slot));
    *state = (void *)(uintptr_t)slot;
    return 0;
}

static int rec_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    rec_t *r = &g_rec[(uintptr_t)state];
    r->casts++;
    r->from = msg->from;
    r->len = msg->len;
    r->sum = herd_ring_hash_key(msg->data, msg->len);
    return 0;
}

/* "echo:X" answers X */
static int rec_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    if (msg->len >= 5 && memcmp(msg->data, "echo:", 5) == 0)
        return herd_reply(herd_proc_node(self), from, 0, msg->data + 5, msg->len - 5);
    return herd_reply(herd_proc_node(self), from, HERD_EINVAL, NULL, 0);
}

static const herd_behaviour_t rec = {
    .name = "rec", .init = rec_init, .handle_cast = rec_cast, .handle_call = rec_call};

/* answers every call with its own error */
static int grump_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state, (void)msg;
    return herd_reply(herd_proc_node(self), from, HERD_ERANGE, "why", 3);
}

static const herd_behaviour_t grump = {.name = "grump", .handle_call = grump_call};

/* never answers */
static int mute_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)self, (void)state, (void)msg, (void)from;
    return 0;
}

static const herd_behaviour_t mute = {.name = "mute", .handle_call = mute_call};

static herd_pid_t spawn_limit(herd_node_t *n, size_t *slot, uint32_t mailbox_limit)
{
    assert_true(g_nrec < REC_MAX);
    uint32_t s = (uint32_t)g_nrec++;
    herd_spawn_opts_t o = {.behaviour = &rec, .arg = &s, .arg_len = sizeof(s),
                           .mailbox_limit = mailbox_limit};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    if (slot) *slot = s;
    return p;
}

static herd_pid_t spawn_rec(herd_node_t *n, size_t *slot)
{
    return spawn_limit(n, slot, 0);
}

static herd_pid_t spawn_as(herd_node_t *n, const herd_behaviour_t *b)
{
    herd_spawn_opts_t o = {.behaviour = b};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

/* A process of `n` that is not alive any more. */
static herd_pid_t dead_pid(herd_node_t *n)
{
    herd_pid_t p = spawn_as(n, &mute);
    assert_int_equal(herd_exit(n, p, HERD_REASON_KILLED), 0);
    WAIT_UNTIL(herd_is_alive(n, p) == 0);
    return p;
}

/* Whether each of `count` slots got `casts` casts. */
static int all_got(const size_t *slots, size_t count, uint32_t casts)
{
    for (size_t i = 0; i < count; i++)
        if (g_rec[slots[i]].casts != casts) return 0;
    return 1;
}

static void assert_got(size_t slot, herd_pid_t from, const void *data, size_t len)
{
    const rec_t *r = &g_rec[slot];
    assert_int_equal(r->casts, 1);
    ts_assert_pid_eq(r->from, from);
    assert_int_equal(r->len, len);
    assert_int_equal(r->sum, herd_ring_hash_key(data, len));
}

/* caster: a cast "go" makes it cast g_targets to many, from itself */
static const herd_pid_t *g_targets;
static size_t g_ntargets;
static int g_caster_rc, g_caster_done;

static int caster_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)state, (void)msg;
    g_caster_rc = herd_cast_many(self, g_targets, g_ntargets, "from-proc", 9);
    g_caster_done++;
    return 0;
}

static const herd_behaviour_t caster = {.name = "caster", .handle_cast = caster_cast};

/* ---- multi-call answers ----------------------------------------------------------- */

#define MC_MAX 16

typedef struct mc_seen {
    herd_pid_t pid;
    int status;
    size_t len;
    char data[32];
} mc_seen_t;

static int g_mc_calls;    /* callbacks */
static int g_mc_inside;   /* of them, inside herd_node_multi_call_async */
static int g_mc_starting; /* herd_node_multi_call_async is on the stack */
static int g_mc_bad_data; /* a callback with another cbdata */
static size_t g_mc_n;
static mc_seen_t g_mc[MC_MAX];
static int g_mc_tag;

static void on_multi(void *cbdata, const herd_multi_reply_t *r, size_t n)
{
    g_mc_inside += g_mc_starting;
    g_mc_bad_data += cbdata != &g_mc_tag;
    g_mc_calls++;
    g_mc_n = n;
    for (size_t i = 0; i < n && i < MC_MAX; i++) {
        g_mc[i].pid = r[i].pid;
        g_mc[i].status = r[i].status;
        g_mc[i].len = r[i].len;
        memset(g_mc[i].data, 0, sizeof(g_mc[i].data));
        if (r[i].len && r[i].len < sizeof(g_mc[i].data))
            memcpy(g_mc[i].data, r[i].data, r[i].len);
    }
}

static int multi(herd_node_t *n, const herd_pid_t *to, size_t count, const char *req,
                 uint32_t timeout_ms)
{
    g_mc_starting = 1;
    int rc = herd_node_multi_call_async(n, to, count, req, strlen(req), timeout_ms, on_multi,
                                        &g_mc_tag);
    g_mc_starting = 0;
    return rc;
}

static void assert_answer(size_t i, herd_pid_t pid, int status, const char *data)
{
    ts_assert_pid_eq(g_mc[i].pid, pid);
    assert_int_equal(g_mc[i].status, status);
    assert_int_equal(g_mc[i].len, strlen(data));
    assert_string_equal(g_mc[i].data, data);
}

/* ---- setup and teardown -------------------------------------------------------- */

static void *g_scratch; /* a test's big buffer: teardown frees it, even after a failure */

static void *scratch(size_t len)
{
    free(g_scratch);
    g_scratch = calloc(1, len);
    assert_non_null(g_scratch);
    return g_scratch;
}

static int setup(void **state)
{
    memset(g_rec, 0, sizeof(g_rec));
    g_nrec = 0;
    g_caster_rc = g_caster_done = 0;
    g_mc_calls = g_mc_inside = g_mc_starting = g_mc_bad_data = 0;
    g_mc_n = 0;
    memset(g_mc, 0, sizeof(g_mc));
    return ts_cluster_setup(state);
}

static int teardown(void **state)
{
    int rc = ts_cluster_teardown(state);
    free(g_scratch);
    g_scratch = NULL;
    return rc;
}

/* ---- tests: casts ------------------------------------------------------------------ */

/* Pids of three nodes in one list, interleaved: each gets the cast once,
 * from the sender, intact; each other node got one message. */
static void test_cast_many_local_and_remote_one_message_per_node(void **state)
{
    (void)state;
    trio_t x = form(3, &NORMAL, 0);
    herd_node_t *nodes[3] = {x.a, x.b, x.c};
    herd_pid_t to[9];
    size_t slot[9];
    for (size_t i = 0; i < 9; i++)
        to[i] = spawn_rec(nodes[i % 3], &slot[i]);
    herd_cluster_stats_t a0 = stats(x.a), b0 = stats(x.b), c0 = stats(x.c);
    const char *msg = "hello, everyone";
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, to, 9, msg, strlen(msg)), 9);
    WAIT_UNTIL(all_got(slot, 9, 1));
    ts_cluster_run_ms(50); /* and nothing twice */
    for (size_t i = 0; i < 9; i++)
        assert_got(slot[i], outside_pid(x.a), msg, strlen(msg));
    herd_cluster_stats_t a1 = stats(x.a), b1 = stats(x.b), c1 = stats(x.c);
    assert_int_equal(a1.multicasts_out - a0.multicasts_out, 2); /* b and c, once each */
    assert_int_equal(b1.multicasts_in - b0.multicasts_in, 1);
    assert_int_equal(c1.multicasts_in - c0.multicasts_in, 1);
    assert_int_equal(b1.msgs_dropped, b0.msgs_dropped);
    assert_int_equal(b1.rejected[FRAME_REJECT_BODY] + c1.rejected[FRAME_REJECT_BODY], 0);
    /* an empty list sends nothing */
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, NULL, 0, msg, strlen(msg)), 0);
    ts_node_free(x.c);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* A process casting to many is the sender its receivers see, here and on
 * another node; herd_node_cast_many takes a pid of this node as sender and
 * refuses any other. */
static void test_cast_many_from_a_process_is_its_sender(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    size_t slot[3];
    herd_pid_t to[3] = {spawn_rec(x.b, &slot[0]), spawn_rec(x.a, &slot[1]),
                        spawn_rec(x.b, &slot[2])};
    herd_pid_t me = spawn_as(x.a, &caster);
    g_targets = to;
    g_ntargets = 3;
    assert_int_equal(herd_node_cast(x.a, me, "go", 2), 0);
    WAIT_UNTIL(g_caster_done == 1 && all_got(slot, 3, 1));
    assert_int_equal(g_caster_rc, 3);
    for (size_t i = 0; i < 3; i++)
        assert_got(slot[i], me, "from-proc", 9);

    herd_pid_t on_b = spawn_as(x.b, &mute);
    herd_pid_t other_start = me;
    other_start.incarnation ^= 1;
    assert_int_equal(herd_node_cast_many(x.a, on_b, to, 3, "x", 1), HERD_EINVAL);
    assert_int_equal(herd_node_cast_many(x.a, other_start, to, 3, "x", 1), HERD_EINVAL);
    assert_int_equal(herd_node_cast_many(x.a, me, to, 3, "x", 1), 3);
    WAIT_UNTIL(all_got(slot, 3, 2));
    ts_assert_pid_eq(g_rec[slot[0]].from, me);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* Targets that cannot take it are skipped and not counted, as single casts
 * fail: a local pid dead, never spawned or with a full mailbox, a pid of an
 * earlier start of its node. A remote dead pid is found dead where it
 * arrives: counted as sent, dropped and counted there; the others of its
 * message still get it. */
static void test_cast_many_dead_and_full_targets_skipped(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    size_t s_live_a, s_live_b, s_full;
    herd_pid_t live_a = spawn_rec(x.a, &s_live_a), live_b = spawn_rec(x.b, &s_live_b);
    herd_pid_t dead_a = dead_pid(x.a), dead_b = dead_pid(x.b);
    herd_pid_t old_b = live_b;
    old_b.incarnation--;
    herd_pid_t never = {live_a.node, live_a.incarnation, 999999};
    herd_pid_t full = spawn_limit(x.a, &s_full, 1);
    assert_int_equal(herd_node_cast(x.a, full, "first", 5), 0); /* its limit: 1 */
    herd_cluster_stats_t b0 = stats(x.b);

    herd_pid_t to[7] = {dead_a, live_b, never, old_b, full, dead_b, live_a};
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, to, 7, "many", 4), 3);
    size_t live[2] = {s_live_a, s_live_b};
    WAIT_UNTIL(all_got(live, 2, 1) && stats(x.b).msgs_dropped == b0.msgs_dropped + 1);
    ts_cluster_run_ms(50);
    assert_got(s_live_a, outside_pid(x.a), "many", 4);
    assert_got(s_live_b, outside_pid(x.a), "many", 4);
    assert_got(s_full, outside_pid(x.a), "first", 5); /* only the one before */
    herd_cluster_stats_t b1 = stats(x.b);
    assert_int_equal(b1.msgs_dropped - b0.msgs_dropped, 1); /* dead_b */
    assert_int_equal(b1.multicasts_in - b0.multicasts_in, 1);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* The pids of a node that is down, of one unknown, or of any other node
 * from a node in no cluster are skipped and not counted; the rest go. */
static void test_cast_many_down_node_skipped(void **state)
{
    (void)state;
    trio_t x = form(3, &FAST, 0);
    size_t s_a, s_b, s_c;
    herd_pid_t on_a = spawn_rec(x.a, &s_a), on_b = spawn_rec(x.b, &s_b);
    herd_pid_t on_c = spawn_rec(x.c, &s_c);
    ts_node_free(x.c); /* without a word, like a crash */
    x.c = NULL;
    WAIT_UNTIL(ts_cluster_member_state(x.a, "c") == HERD_MEMBER_DOWN);
    herd_pid_t ghost = {herd_node_id_of("ghost"), 12345, 1};
    herd_cluster_stats_t a0 = stats(x.a);
    herd_pid_t to[5] = {on_c, on_a, ghost, on_b, on_c};
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, to, 5, "up?", 3), 2);
    size_t got[2] = {s_a, s_b};
    WAIT_UNTIL(all_got(got, 2, 1));
    assert_int_equal(g_rec[s_c].casts, 0);
    assert_int_equal(stats(x.a).multicasts_out - a0.multicasts_out, 1); /* b's */

    herd_node_t *alone = plain_node("alone", 0);
    size_t s_l;
    herd_pid_t mine = spawn_rec(alone, &s_l);
    herd_pid_t to2[2] = {on_b, mine};
    assert_int_equal(herd_node_cast_many(alone, HERD_PID_NONE, to2, 2, "solo", 4), 1);
    WAIT_UNTIL(g_rec[s_l].casts == 1);
    assert_got(s_l, outside_pid(alone), "solo", 4);
    ts_cluster_run_ms(50);
    assert_int_equal(g_rec[s_b].casts, 1);
    ts_node_free(alone);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* b cut off from a (blocked both ways at a): a cast to many queued for b
 * while it still looked up is withdrawn when a declares b down, and b
 * never gets it after the heal; one made while b is down skips b's pids;
 * after the heal they go again. */
static void test_cast_many_withdrawn_when_node_lost(void **state)
{
    (void)state;
    trio_t x = form(2, &FAST, 0);
    size_t s;
    herd_pid_t on_b = spawn_rec(x.b, &s);
    uint64_t b_id = herd_node_id_of("b");
    herd_cluster_stats_t a0 = stats(x.a);
    assert_int_equal(herd_cluster_block(x.a, b_id, 1), 0);
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, &on_b, 1, "cut", 3), 1);
    WAIT_UNTIL(ts_cluster_member_state(x.a, "b") == HERD_MEMBER_DOWN);
    assert_true(stats(x.a).withdrawn > a0.withdrawn);
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, &on_b, 1, "down", 4), 0);
    assert_int_equal(herd_cluster_block(x.a, b_id, 0), 0);
    herd_node_t *both[2] = {x.a, x.b};
    WAIT_UNTIL(ts_cluster_all_up(both, 2));
    ts_cluster_run_ms(600); /* three resend periods of the stream */
    assert_int_equal(g_rec[s].casts, 0);
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, &on_b, 1, "after", 5), 1);
    WAIT_UNTIL(g_rec[s].casts == 1);
    assert_got(s, outside_pid(x.a), "after", 5);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* Over the node's max_message, or too big for one message between nodes
 * with a pid of another node listed: refused, and nothing sent (the local
 * target neither). The largest payload that fits goes, one serial per
 * message. */
static void test_cast_many_oversize_refused(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 4u << 20); /* a takes up to 4 MiB locally */
    size_t s_a, s_b[3];
    herd_pid_t on_a = spawn_rec(x.a, &s_a);
    herd_pid_t on_b[3] = {spawn_rec(x.b, &s_b[0]), spawn_rec(x.b, &s_b[1]),
                          spawn_rec(x.b, &s_b[2])};
    size_t big = 2u << 20;
    uint8_t *buf = scratch((4u << 20) + 1);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 7);
    herd_cluster_stats_t a0 = stats(x.a);
    herd_pid_t to[2] = {on_a, on_b[0]};
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, to, 2, buf, big), HERD_ETOOBIG);
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, to, 2, buf, (4u << 20) + 1),
                     HERD_ETOOBIG);
    assert_int_equal(herd_node_cast_many(x.b, HERD_PID_NONE, on_b, 1, buf, (1u << 20) + 1),
                     HERD_ETOOBIG); /* b's own max_message */
    /* one serial per message is the most this payload leaves room for */
    size_t most = FRAME_DEFAULT_MAX_BODY - REMOTE_OVERHEAD - REMOTE_MANY_HEAD - 8;
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, on_b, 3, buf, most + 1),
                     HERD_ETOOBIG);
    herd_cluster_stats_t a1 = stats(x.a);
    assert_true(a1.oversize_out > a0.oversize_out);
    assert_int_equal(a1.multicasts_out, a0.multicasts_out);
    ts_cluster_run_ms(50);
    assert_int_equal(g_rec[s_a].casts + g_rec[s_b[0]].casts, 0);

    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, on_b, 3, buf, most), 3);
    assert_int_equal(stats(x.a).multicasts_out - a1.multicasts_out, 3);
    WAIT_UNTIL(all_got(s_b, 3, 1));
    for (size_t i = 0; i < 3; i++)
        assert_got(s_b[i], outside_pid(x.a), buf, most);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* A list longer than one message holds is cut into REMOTE_MANY_MAX-serial
 * messages, every process of it gets the cast once. */
static void test_cast_many_long_list_split_and_delivered(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    size_t count = REMOTE_MANY_MAX + 9;
    herd_pid_t *to = scratch(count * sizeof(*to));
    size_t first = g_nrec;
    for (size_t i = 0; i < count - 1; i++)
        to[i] = spawn_rec(x.b, NULL);
    to[count - 1] = spawn_rec(x.a, NULL);
    herd_cluster_stats_t a0 = stats(x.a), b0 = stats(x.b);
    assert_int_equal(herd_node_cast_many(x.a, HERD_PID_NONE, to, count, "long", 4),
                     (int)count);
    WAIT_UNTIL(g_rec[first + count - 2].casts == 1);
    ts_cluster_run_ms(50);
    for (size_t i = 0; i < count; i++)
        assert_got(first + i, outside_pid(x.a), "long", 4);
    assert_int_equal(stats(x.a).multicasts_out - a0.multicasts_out, 2);
    herd_cluster_stats_t b1 = stats(x.b);
    assert_int_equal(b1.multicasts_in - b0.multicasts_in, 2);
    assert_int_equal(b1.msgs_dropped, b0.msgs_dropped);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* ---- tests: the wire --------------------------------------------------------------- */

/* A heartbeat of member `name` (frame `seq`), addressed to the node. */
static void heartbeat(ts_fake_tr_t *t, const char *name, uint64_t inc, uint64_t seq)
{
    size_t len;
    uint8_t *body = ts_fake_hello(name, &len);
    ts_fake_frame(t, name, inc, FRAME_HEARTBEAT, seq, body, len);
    free(body);
}

/* The cast_many messages `b` sent member `to` (frames kept by the fake
 * transport), in stream order, each message once (a resend repeats
 * sequence numbers). Appends their serials to serials[*nserials] and each
 * message's count to counts[*nmsgs]; checks each against the rest. */
typedef struct wire_seen {
    uint64_t top_seq;
    uint64_t *serials;
    size_t nserials, cap;
    uint32_t counts[64];
    size_t nmsgs;
} wire_seen_t;

static void read_sent(const ts_fake_tr_t *t, uint64_t to, uint64_t inc, herd_pid_t from,
                      const void *payload, size_t len, wire_seen_t *ws)
{
    for (size_t f = 0; f < t->kept_count; f++) {
        const ts_fake_sent_t *k = &t->kept[f];
        if (k->h.type != FRAME_MSG || k->h.receiver != to) continue;
        wire_reader_t r;
        wire_reader_init(&r, k->body, k->h.length);
        (void)wire_get_u64(&r); /* ack */
        uint64_t seq = wire_get_u64(&r);
        uint16_t n = wire_get_u16(&r);
        for (uint16_t i = 0; i < n; i++, seq++) {
            const uint8_t *m;
            size_t mlen = wire_get_bytes(&r, &m);
            assert_int_equal(r.err, 0);
            if (seq <= ws->top_seq) continue;
            ws->top_seq = seq;
            remote_msg_t msg;
            assert_int_equal(remote_decode(m, mlen, &msg), 0);
            assert_int_equal(msg.kind, REMOTE_CAST_MANY);
            assert_int_equal(msg.flags, 0);
            ts_assert_pid_eq(msg.from, from);
            assert_true(msg.len + REMOTE_OVERHEAD <= FRAME_DEFAULT_MAX_BODY);
            remote_many_t mm;
            assert_int_equal(remote_many_decode(msg.data, msg.len, &mm), 0);
            assert_int_equal(mm.incarnation, inc);
            assert_int_equal(mm.len, len);
            assert_memory_equal(mm.data, payload, len);
            assert_true(ws->nmsgs < 64 && ws->nserials + mm.count <= ws->cap);
            ws->counts[ws->nmsgs++] = mm.count;
            for (uint32_t j = 0; j < mm.count; j++)
                ws->serials[ws->nserials++] = remote_many_serial(&mm, j);
        }
        assert_int_equal(wire_reader_done(&r), 0);
    }
}

/* On the wire: 20000 serials with a small payload go as 8192 + 8192 +
 * 3616; with a payload of 1,000,000 bytes the frame bounds each message
 * first (6044 serials), and every serial is there once, in order. */
static void test_cast_many_long_list_split_on_the_wire(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    uint64_t xid = herd_node_id_of("x");
    size_t count = 20000;
    herd_pid_t *to = scratch(count * (sizeof(herd_pid_t) + sizeof(uint64_t)));
    for (size_t i = 0; i < count; i++)
        to[i] = (herd_pid_t){xid, 7, i + 1};
    wire_seen_t ws = {.serials = (uint64_t *)(to + count), .cap = count};

    ts_fake_forget_sent(&t);
    assert_int_equal(herd_node_cast_many(b, HERD_PID_NONE, to, count, "hello", 5), (int)count);
    assert_int_equal(stats(b).multicasts_out, 3);
    WAIT_UNTIL((read_sent(&t, xid, 7, outside_pid(b), "hello", 5, &ws), ws.nmsgs == 3));
    assert_int_equal(ws.counts[0], REMOTE_MANY_MAX);
    assert_int_equal(ws.counts[1], REMOTE_MANY_MAX);
    assert_int_equal(ws.counts[2], count - 2 * REMOTE_MANY_MAX);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(ws.serials[i], i + 1);

    heartbeat(&t, "x", 7, 50); /* x stays up however long this takes */
    size_t len = 1000000, n2 = 10000;
    uint8_t *payload = malloc(len);
    assert_non_null(payload);
    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(i * 13 + 1);
    size_t per = (FRAME_DEFAULT_MAX_BODY - REMOTE_OVERHEAD - REMOTE_MANY_HEAD - len) / 8;
    assert_int_equal(remote_many_fit(len), per);
    ts_fake_forget_sent(&t);
    ws.nserials = ws.nmsgs = 0;
    int rc = herd_node_cast_many(b, HERD_PID_NONE, to, n2, payload, len);
    assert_int_equal(rc, (int)n2);
    assert_int_equal(stats(b).multicasts_out, 5);
    uint64_t t0 = ts_mono_ms();
    while (ws.nmsgs < 2 && ts_mono_ms() - t0 < WAIT_MS) {
        ts_cluster_run_slice(5);
        read_sent(&t, xid, 7, outside_pid(b), payload, len, &ws);
    }
    free(payload);
    assert_int_equal(ws.nmsgs, 2);
    assert_int_equal(ws.counts[0], per);
    assert_int_equal(ws.counts[1], n2 - per);
    for (size_t i = 0; i < n2; i++)
        assert_int_equal(ws.serials[i], i + 1);
    ts_node_free(b);
}

/* A cast_many message from member `name`, as the `seq`th of its stream:
 * the envelope (remote.c) around `data` (dlen bytes). */
static void speak_many(ts_fake_tr_t *t, const char *name, uint64_t inc, uint64_t seq,
                       uint8_t flags, uint64_t to_serial, herd_pid_t from, const void *data,
                       size_t dlen)
{
    wire_writer_t m;
    wire_writer_init(&m);
    wire_put_u8(&m, REMOTE_CAST_MANY);
    wire_put_u8(&m, flags);
    wire_put_u64(&m, to_serial);
    wire_put_u64(&m, from.node);
    wire_put_u64(&m, from.incarnation);
    wire_put_u64(&m, from.serial);
    wire_put_u64(&m, 0); /* ref */
    wire_put_u32(&m, 0); /* status */
    wire_put_bytes(&m, data, dlen);
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, 0);
    wire_put_u64(&w, seq);
    wire_put_u16(&w, 1);
    wire_put_bytes(&w, m.buf, m.len);
    assert_int_equal(m.err | w.err, 0);
    ts_fake_frame(t, name, inc, FRAME_MSG, 100 + seq, w.buf, w.len);
    wire_writer_fini(&m);
    wire_writer_fini(&w);
}

/* A cast_many message's data: `count` as given, then the serials given
 * (nserials of them), then the payload unless plen is SIZE_MAX, then
 * `extra` zero bytes. */
static void many_data(wire_writer_t *w, uint64_t inc, uint32_t count, const uint64_t *serials,
                      size_t nserials, const char *payload, size_t plen, size_t extra)
{
    wire_writer_init(w);
    wire_put_u64(w, inc);
    wire_put_u32(w, count);
    for (size_t i = 0; i < nserials; i++)
        wire_put_u64(w, serials[i]);
    if (plen != SIZE_MAX)
        wire_put_bytes(w, payload, plen);
    for (size_t i = 0; i < extra; i++)
        wire_put_u8(w, 0);
    assert_int_equal(w->err, 0);
}

/* Malformed cast_many messages from a member are refused and counted as
 * `body` rejects (one claiming another sender as `sender`), and none of
 * their targets gets anything; the stream goes on, and well-formed ones
 * are delivered, a dead target of one dropped and counted. */
static void test_cast_many_malformed_refused_and_counted(void **state)
{
    (void)state;
    herd_node_t *b = plain_node("b", 0);
    ts_fake_tr_t t;
    ts_fake_cluster(b, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    ts_fake_join(&t, "y", 9, 1);
    size_t s1, s2;
    herd_pid_t p1 = spawn_rec(b, &s1), p2 = spawn_rec(b, &s2);
    uint64_t inc = herd_node_incarnation(b);
    herd_pid_t x = {herd_node_id_of("x"), 7, 3}, y = {herd_node_id_of("y"), 9, 4};
    uint64_t both[2] = {p1.serial, p2.serial};
    uint64_t *many = scratch((REMOTE_MANY_MAX + 1) * sizeof(uint64_t));
    for (size_t i = 0; i <= REMOTE_MANY_MAX; i++)
        many[i] = p1.serial;
    herd_cluster_stats_t s0 = stats(b);
    uint64_t seq = 1;
    wire_writer_t d;
#define SPEAK(flags, to_serial, from)                                                    \
    do {                                                                                 \
        speak_many(&t, "x", 7, seq++, flags, to_serial, from, d.buf, d.len);             \
        wire_writer_fini(&d);                                                            \
    } while (0)

    many_data(&d, inc, 2, both, 2, "ok", 2, 0);
    SPEAK(0, 0, x); /* fine */
    many_data(&d, inc, 3, both, 2, NULL, SIZE_MAX, 0);
    SPEAK(0, 0, x); /* the list cut short */
    many_data(&d, inc, 1, both, 2, "no", 2, 0);
    SPEAK(0, 0, x); /* the count disagrees with the length */
    many_data(&d, inc, 3, both, 2, "no", 2, 0);
    SPEAK(0, 0, x); /* the other way */
    many_data(&d, inc, 0, NULL, 0, "no", 2, 0);
    SPEAK(0, 0, x); /* nobody */
    many_data(&d, inc, REMOTE_MANY_MAX + 1, many, REMOTE_MANY_MAX + 1, "no", 2, 0);
    SPEAK(0, 0, x); /* over the bound */
    many_data(&d, inc + 1, 2, both, 2, "no", 2, 0);
    SPEAK(0, 0, x); /* another start's */
    many_data(&d, inc, 2, both, 2, "no", 2, 1);
    SPEAK(0, 0, x); /* a byte left over */
    many_data(&d, inc, 2, both, 2, NULL, SIZE_MAX, 0);
    wire_put_u32(&d, 100);
    wire_put_raw(&d, "no", 2);
    SPEAK(0, 0, x); /* a payload longer than what is there */
    many_data(&d, inc, 2, both, 2, "no", 2, 0);
    SPEAK(2, 0, x); /* flags: it is never passed on */
    many_data(&d, inc, 2, both, 2, "no", 2, 0);
    SPEAK(0, p1.serial, x); /* `to` set */
    many_data(&d, inc, 2, both, 2, "no", 2, 0);
    SPEAK(0, 0, y); /* speaks for y */
    many_data(&d, inc, 2, both, 2, "no", 2, 0);
    SPEAK(2, 0, y); /* passed on, claiming y: not a kind that is */
    uint64_t with_dead[2] = {999999, p1.serial};
    many_data(&d, inc, 2, with_dead, 2, "ok", 2, 0);
    SPEAK(0, 0, x); /* fine: one of its targets is not alive */
#undef SPEAK
    ts_cluster_run_ms(50);

    herd_cluster_stats_t s1st = stats(b);
    assert_int_equal(s1st.rejected[FRAME_REJECT_BODY] - s0.rejected[FRAME_REJECT_BODY], 10);
    assert_int_equal(s1st.rejected[FRAME_REJECT_SENDER] - s0.rejected[FRAME_REJECT_SENDER], 2);
    assert_int_equal(s1st.multicasts_in - s0.multicasts_in, 2);
    assert_int_equal(s1st.msgs_dropped - s0.msgs_dropped, 1);
    assert_int_equal(g_rec[s1].casts, 2);
    assert_int_equal(g_rec[s2].casts, 1);
    ts_assert_pid_eq(g_rec[s1].from, x);
    assert_int_equal(g_rec[s1].sum, herd_ring_hash_key("ok", 2));
    assert_int_equal(g_rec[s2].sum, herd_ring_hash_key("ok", 2));
    ts_node_free(b);
}

/* The decoder itself: a whole message reads; every shorter prefix of it,
 * and it with a byte more, do not; the bounds of a message's room. */
static void test_cast_many_decoder_refuses_every_cut(void **state)
{
    (void)state;
    uint64_t serials[3] = {1, 0x0102030405060708ull, UINT64_MAX};
    wire_writer_t d;
    many_data(&d, 42, 3, serials, 3, "payload", 7, 0);
    remote_many_t mm;
    assert_int_equal(remote_many_decode(d.buf, d.len, &mm), 0);
    assert_int_equal(mm.incarnation, 42);
    assert_int_equal(mm.count, 3);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(remote_many_serial(&mm, i), serials[i]);
    assert_int_equal(mm.len, 7);
    assert_memory_equal(mm.data, "payload", 7);
    for (size_t cut = 0; cut < d.len; cut++)
        assert_int_equal(remote_many_decode(d.buf, cut, &mm), HERD_EBADFRAME);
    wire_put_u8(&d, 0);
    assert_int_equal(remote_many_decode(d.buf, d.len, &mm), HERD_EBADFRAME);
    wire_writer_fini(&d);
    /* a count near UINT32_MAX with few bytes: refused, not multiplied into a wrap */
    many_data(&d, 42, UINT32_MAX, serials, 3, "p", 1, 0);
    assert_int_equal(remote_many_decode(d.buf, d.len, &mm), HERD_EBADFRAME);
    wire_writer_fini(&d);

    size_t room = FRAME_DEFAULT_MAX_BODY - REMOTE_OVERHEAD - REMOTE_MANY_HEAD;
    assert_int_equal(remote_many_fit(0), REMOTE_MANY_MAX);
    assert_int_equal(remote_many_fit(room - 8), 1);
    assert_int_equal(remote_many_fit(room - 7), 0);
    assert_int_equal(remote_many_fit(room), 0);
    assert_int_equal(remote_many_fit(SIZE_MAX), 0);
}

/* The function's own errors; n 0 is no error. */
static void test_cast_many_einval(void **state)
{
    (void)state;
    herd_node_t *a = plain_node("a", 0);
    size_t s;
    herd_pid_t p = spawn_rec(a, &s);
    assert_int_equal(herd_node_cast_many(a, HERD_PID_NONE, NULL, 1, "x", 1), HERD_EINVAL);
    assert_int_equal(herd_node_cast_many(a, HERD_PID_NONE, &p, 1, NULL, 1), HERD_EINVAL);
    assert_int_equal(herd_node_cast_many(a, HERD_PID_NONE, &p, (size_t)INT_MAX + 1, "x", 1),
                     HERD_EINVAL);
    assert_int_equal(herd_node_cast_many(a, HERD_PID_NONE, NULL, 0, NULL, 0), 0);
    assert_int_equal(herd_node_cast_many(a, HERD_PID_NONE, &p, 1, NULL, 0), 1);
    WAIT_UNTIL(g_rec[s].casts == 1);
    assert_int_equal(g_rec[s].len, 0);
    ts_node_free(a);
}

/* ---- tests: multi-calls ------------------------------------------------------------- */

/* Everyone answers: one callback, not inside the call, the answers in the
 * list's order with their bytes. */
static void test_multi_call_all_reply(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t to[4] = {spawn_rec(x.a, NULL), spawn_rec(x.b, NULL), spawn_rec(x.a, NULL),
                        spawn_rec(x.b, NULL)};
    assert_int_equal(multi(x.a, to, 4, "echo:hi", WAIT_MS), 0);
    assert_int_equal(g_mc_calls, 0);
    WAIT_UNTIL(g_mc_calls == 1);
    ts_cluster_run_ms(50);
    assert_int_equal(g_mc_calls, 1);
    assert_int_equal(g_mc_inside + g_mc_bad_data, 0);
    assert_int_equal(g_mc_n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_answer(i, to[i], 0, "hi");
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* Dead pids fail without holding the others: a local one at once, a remote
 * one when its node answers, one of an unknown node or an old start at
 * once; a callee's own error comes with its bytes. The timeout is far
 * beyond the wait: only the answers can have ended it. */
static void test_multi_call_some_dead(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t live_b = spawn_rec(x.b, NULL);
    herd_pid_t old_b = live_b;
    old_b.incarnation--;
    herd_pid_t to[7] = {spawn_rec(x.a, NULL),        dead_pid(x.a), live_b, dead_pid(x.b),
                        {herd_node_id_of("ghost"), 1, 1}, old_b,     spawn_as(x.b, &grump)};
    assert_int_equal(multi(x.a, to, 7, "echo:yo", 600000), 0);
    WAIT_UNTIL(g_mc_calls == 1);
    assert_int_equal(g_mc_inside + g_mc_bad_data, 0);
    assert_int_equal(g_mc_n, 7);
    assert_answer(0, to[0], 0, "yo");
    assert_answer(1, to[1], HERD_ENOPROC, "");
    assert_answer(2, to[2], 0, "yo");
    assert_answer(3, to[3], HERD_ENOPROC, "");
    assert_answer(4, to[4], HERD_ENOTCONN, "");
    assert_answer(5, to[5], HERD_ENOPROC, "");
    assert_answer(6, to[6], HERD_ERANGE, "why");
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* Those that never answer have HERD_ETIMEDOUT once the timeout passed;
 * the others their answers, all in the one callback. */
static void test_multi_call_silent_ones_time_out(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t to[4] = {spawn_rec(x.a, NULL), spawn_as(x.b, &mute), spawn_rec(x.b, NULL),
                        spawn_as(x.a, &mute)};
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(multi(x.a, to, 4, "echo:late", 300), 0);
    WAIT_UNTIL(g_mc_calls == 1);
    assert_true(ts_mono_ms() - t0 >= 200); /* it waited for the silent ones */
    assert_int_equal(g_mc_inside, 0);
    assert_int_equal(g_mc_n, 4);
    assert_answer(0, to[0], 0, "late");
    assert_answer(1, to[1], HERD_ETIMEDOUT, "");
    assert_answer(2, to[2], 0, "late");
    assert_answer(3, to[3], HERD_ETIMEDOUT, "");
    ts_cluster_run_ms(50);
    assert_int_equal(g_mc_calls, 1);
    ts_node_free(x.b);
    ts_node_free(x.a);
}

/* No pid, or none that could be called: the callback still comes, once,
 * from the loop and not from inside the call. */
static void test_multi_call_none_started_still_told_later(void **state)
{
    (void)state;
    herd_node_t *a = plain_node("a", 0);
    assert_int_equal(multi(a, NULL, 0, "echo:x", 1000), 0);
    assert_int_equal(g_mc_calls, 0);
    WAIT_UNTIL(g_mc_calls == 1);
    assert_int_equal(g_mc_n, 0);
    herd_pid_t to[2] = {dead_pid(a), {herd_node_id_of("elsewhere"), 1, 1}};
    assert_int_equal(multi(a, to, 2, "echo:x", 1000), 0);
    assert_int_equal(g_mc_calls, 1);
    WAIT_UNTIL(g_mc_calls == 2);
    assert_int_equal(g_mc_inside + g_mc_bad_data, 0);
    assert_int_equal(g_mc_n, 2);
    assert_answer(0, to[0], HERD_ENOPROC, "");
    assert_answer(1, to[1], HERD_ENOTCONN, ""); /* no cluster */
    ts_node_free(a);
}

/* The function's own errors: the callback is never called then. */
static void test_multi_call_errors(void **state)
{
    (void)state;
    herd_node_t *a = plain_node("a", 0);
    herd_pid_t p = spawn_rec(a, NULL);
    assert_int_equal(herd_node_multi_call_async(a, &p, 1, "x", 1, 100, NULL, NULL), HERD_EINVAL);
    assert_int_equal(herd_node_multi_call_async(a, &p, 1, "x", 1, 0, on_multi, &g_mc_tag),
                     HERD_EINVAL);
    assert_int_equal(herd_node_multi_call_async(a, NULL, 1, "x", 1, 100, on_multi, &g_mc_tag),
                     HERD_EINVAL);
    assert_int_equal(herd_node_multi_call_async(a, &p, 1, NULL, 1, 100, on_multi, &g_mc_tag),
                     HERD_EINVAL);
    uint8_t *big = scratch((1u << 20) + 1);
    assert_int_equal(
        herd_node_multi_call_async(a, &p, 1, big, (1u << 20) + 1, 100, on_multi, &g_mc_tag),
        HERD_ETOOBIG);
    assert_int_equal(herd_node_multi_call_async(a, (herd_pid_t *)(uintptr_t)1, SIZE_MAX, "x", 1,
                                                100, on_multi, &g_mc_tag),
                     HERD_ENOMEM); /* more than memory can hold: nothing read */
    ts_cluster_run_ms(150);
    assert_int_equal(g_mc_calls, 0);
    ts_node_free(a);
}

/* The node freed while a multi-call waits: the callback runs inside
 * herd_node_free, once, with the answers gathered so far and
 * HERD_ESHUTDOWN for the rest; the same for one that started nothing and
 * was not told yet. Nothing leaks (the sanitized build checks). */
static void test_multi_call_node_freed_while_pending(void **state)
{
    (void)state;
    trio_t x = form(2, &NORMAL, 0);
    herd_pid_t to[3] = {spawn_rec(x.a, NULL), spawn_as(x.b, &mute), spawn_as(x.a, &mute)};
    assert_int_equal(multi(x.a, to, 3, "echo:first", 120000), 0);
    ts_cluster_run_ms(100); /* the echo answers; the mutes do not */
    assert_int_equal(g_mc_calls, 0);
    ts_node_free(x.a);
    assert_int_equal(g_mc_calls, 1);
    assert_int_equal(g_mc_n, 3);
    assert_answer(0, to[0], 0, "first");
    assert_answer(1, to[1], HERD_ESHUTDOWN, "");
    assert_answer(2, to[2], HERD_ESHUTDOWN, "");

    /* freed before the loop ran at all: nothing was gathered */
    herd_node_t *c = plain_node("c", 0);
    herd_pid_t mine[2] = {spawn_rec(c, NULL), dead_pid(c)};
    assert_int_equal(multi(c, mine, 2, "echo:never", 120000), 0);
    assert_int_equal(multi(c, &mine[1], 1, "echo:never", 120000), 0); /* nothing started */
    assert_int_equal(multi(c, NULL, 0, "echo:never", 120000), 0);
    assert_int_equal(g_mc_calls, 1);
    ts_node_free(c);
    assert_int_equal(g_mc_calls, 4);
    assert_int_equal(g_mc_inside + g_mc_bad_data, 0);
    assert_int_equal(g_mc_n, 2); /* the last told: the one with a call under way */
    assert_answer(0, mine[0], HERD_ESHUTDOWN, "");
    assert_answer(1, mine[1], HERD_ENOPROC, "");
    ts_node_free(x.b);
}

int main(void)
{
    ts_cluster_init("test_cast_many", SECRET);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cast_many_local_and_remote_one_message_per_node),
        T(test_cast_many_from_a_process_is_its_sender),
        T(test_cast_many_dead_and_full_targets_skipped),
        T(test_cast_many_down_node_skipped),
        T(test_cast_many_withdrawn_when_node_lost),
        T(test_cast_many_oversize_refused),
        T(test_cast_many_long_list_split_and_delivered),
        T(test_cast_many_long_list_split_on_the_wire),
        T(test_cast_many_malformed_refused_and_counted),
        T(test_cast_many_decoder_refuses_every_cut),
        T(test_cast_many_einval),
        T(test_multi_call_all_reply),
        T(test_multi_call_some_dead),
        T(test_multi_call_silent_ones_time_out),
        T(test_multi_call_none_started_still_told_later),
        T(test_multi_call_errors),
        T(test_multi_call_node_freed_while_pending),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
