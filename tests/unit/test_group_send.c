/*
 * test_group_send.c - messages to a process group (herd_group_publish,
 * herd_group_multi_call) and the group events (group_joined, group_left),
 * on two nodes over tcp loopback in this one process:
 *
 * - publish reaches every member on both nodes, once each, and the other
 *   node gets one message a publish (multicasts_in); an empty or unknown
 *   group reaches none without an error; a bad group and an oversize
 *   message are refused; a process publishing is the sender its members see;
 * - multi-call gathers every member's answer in one callback; a member
 *   that exited meanwhile fails (not hanging the rest), a silent one times
 *   out; an empty group calls back with none; bad arguments are refused;
 * - group_joined and group_left are told on both nodes, a metadata update
 *   tells nothing, an exit tells left;
 * - herd_group_member looks one membership up, hidden ones not seen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_events.h"
#include "herd_group.h"
#include "herd_registry.h"
#include "log.h"
#include "support.h"

#define SECRET "test-group-send-secret-0123456789"
#define WAIT_MS 15000u

/* ---- members that count what they get ------------------------------------------ */

typedef struct tally {
    int casts;
    herd_pid_t last_from;
    int calls;
    int silent; /* calls are not answered */
} tally_t;

static int tally_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    if (len != sizeof(void *))
        return HERD_EINVAL;
    memcpy(state, arg, sizeof(void *));
    return 0;
}

static int tally_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    tally_t *t = state;
    if (ts_detached())
        return 0;
    t->casts++;
    t->last_from = msg->from;
    return 0;
}

static int tally_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    tally_t *t = state;
    if (ts_detached())
        return 0;
    t->calls++;
    if (t->silent)
        return 0;
    return herd_reply(herd_proc_node(self), from, 0, msg->data, msg->len);
}

static const herd_behaviour_t tally_beh = {
    .name = "tally", .init = tally_init, .handle_cast = tally_cast, .handle_call = tally_call};

static herd_pid_t spawn_tally(herd_node_t *n, tally_t *t)
{
    return ts_spawn(n, &tally_beh, &t, sizeof(t));
}

static void pair(herd_node_t **a, herd_node_t **b)
{
    static const ts_timing_t calm = {100, 1500, 3000, 60000};
    herd_node_config_t ca = {.name = "a", .loop = &ts_loop}, cb = {.name = "b", .loop = &ts_loop};
    *a = ts_cluster_add(&ca);
    ts_cluster_join(*a, &calm, NULL, 0);
    assert_int_equal(herd_registry_start(*a), 0);
    *b = ts_cluster_add(&cb);
    ts_cluster_join(*b, &calm, a, 1);
    assert_int_equal(herd_registry_start(*b), 0);
    herd_node_t *both[2] = {*a, *b};
    TS_WAIT_UNTIL(ts_cluster_all_up(both, 2), WAIT_MS);
}

static uint64_t multicasts_in(herd_node_t *n)
{
    herd_cluster_stats_t s;
    assert_int_equal(herd_cluster_stats(n, &s), 0);
    return s.multicasts_in;
}

/* ---- publish ---------------------------------------------------------------------- */

static void test_group_publish_reaches_every_member(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    tally_t ta[3] = {{0}}, tb[4] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(herd_group_join(a, "chat", spawn_tally(a, &ta[i]), NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(herd_group_join(b, "chat", spawn_tally(b, &tb[i]), NULL), 0);
    TS_WAIT_UNTIL(herd_group_count(a, "chat") == 7 && herd_group_count(b, "chat") == 7,
                  WAIT_MS);

    uint64_t before = multicasts_in(b);
    assert_int_equal(herd_group_publish(a, NULL, "chat", "hi", 2), 7);
    assert_int_equal(herd_group_publish(a, NULL, "chat", "again", 5), 7);
    TS_WAIT_UNTIL(tb[0].casts == 2 && tb[1].casts == 2 && tb[2].casts == 2 && tb[3].casts == 2,
                  WAIT_MS);
    ts_cluster_run_ms(50);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ta[i].casts, 2);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tb[i].casts, 2); /* once each, never twice */
    assert_int_equal(multicasts_in(b) - before, 2); /* one message a publish */

    /* empty and unknown groups: none reached, no error */
    assert_int_equal(herd_group_publish(a, NULL, "nobody", "x", 1), 0);
    /* refused: a bad group, an oversize message */
    assert_int_equal(herd_group_publish(a, NULL, "", "x", 1), HERD_EINVAL);
    assert_int_equal(herd_group_publish(a, NULL, NULL, "x", 1), HERD_EINVAL);
    static uint8_t big[(1u << 20) + 1];
    assert_int_equal(herd_group_publish(a, NULL, "chat", big, sizeof(big)), HERD_ETOOBIG);
    assert_int_equal(herd_group_publish(a, NULL, "nobody", big, sizeof(big)), HERD_ETOOBIG);
    ts_cluster_run_ms(50);
    assert_int_equal(tb[0].casts, 2);
    ts_node_free(b);
    ts_node_free(a);
}

/* A process publishing is the sender its members see. */
typedef struct publisher {
    int published;
} publisher_t;

static int pub_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)msg;
    publisher_t *p = state;
    p->published = herd_group_publish(herd_proc_node(self), self, "chat", "from-me", 7);
    return 0;
}

static const herd_behaviour_t pub_beh = {
    .name = "publisher", .init = tally_init, .handle_cast = pub_cast};

static void test_group_publish_from_a_process(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    tally_t t = {0};
    herd_pid_t member = spawn_tally(b, &t);
    assert_int_equal(herd_group_join(b, "chat", member, NULL), 0);
    TS_WAIT_UNTIL(herd_group_count(a, "chat") == 1, WAIT_MS);
    publisher_t p = {0}, *pp = &p;
    herd_pid_t pub = ts_spawn(a, &pub_beh, &pp, sizeof(pp));
    assert_int_equal(herd_node_cast(a, pub, "go", 2), 0);
    TS_WAIT_UNTIL(t.casts == 1, WAIT_MS);
    assert_int_equal(p.published, 1);
    ts_assert_pid_eq(t.last_from, pub);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- multi-call ---------------------------------------------------------------------- */

typedef struct gathered {
    int calls_back;
    size_t n, ok, timedout, noproc;
    int echo_ok;
} gathered_t;

static void gather(void *data, const herd_group_reply_t *replies, size_t n)
{
    gathered_t *g = data;
    if (ts_detached())
        return;
    g->calls_back++;
    g->n = n;
    g->echo_ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (replies[i].status == 0) {
            g->ok++;
            g->echo_ok &= replies[i].len == 4 && memcmp(replies[i].data, "ping", 4) == 0;
        }
        g->timedout += replies[i].status == HERD_ETIMEDOUT;
        g->noproc += replies[i].status == HERD_ENOPROC;
    }
}

static void test_group_multi_call_gathers_answers(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    tally_t ta[2] = {{0}}, tb[3] = {{0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(herd_group_join(a, "svc", spawn_tally(a, &ta[i]), NULL), 0);
    herd_pid_t pb[3];
    for (int i = 0; i < 3; i++) {
        pb[i] = spawn_tally(b, &tb[i]);
        assert_int_equal(herd_group_join(b, "svc", pb[i], NULL), 0);
    }
    TS_WAIT_UNTIL(herd_group_count(a, "svc") == 5, WAIT_MS);

    gathered_t g = {0};
    assert_int_equal(herd_group_multi_call(a, "svc", "ping", 4, 5000, gather, &g), 5);
    assert_int_equal(g.calls_back, 0); /* never inside the call */
    TS_WAIT_UNTIL(g.calls_back == 1, WAIT_MS);
    assert_int_equal(g.n, 5);
    assert_int_equal(g.ok, 5);
    assert_true(g.echo_ok);

    /* one member silent, and a node's view that still lists an exited one:
     * the silent one times out, the rest answer, one callback */
    tb[1].silent = 1;
    gathered_t h = {0};
    uint64_t t0 = ts_mono_ms();
    assert_int_equal(herd_group_multi_call(a, "svc", "ping", 4, 300, gather, &h), 5);
    TS_WAIT_UNTIL(h.calls_back == 1, WAIT_MS);
    assert_true(ts_mono_ms() - t0 >= 250);
    assert_int_equal(h.ok, 4);
    assert_int_equal(h.timedout, 1);
    ts_cluster_run_ms(400);
    assert_int_equal(h.calls_back, 1);

    /* an empty group: called back with none, at the loop's next turn */
    gathered_t e = {0};
    assert_int_equal(herd_group_multi_call(a, "nobody", "ping", 4, 1000, gather, &e), 0);
    assert_int_equal(e.calls_back, 0);
    TS_WAIT_UNTIL(e.calls_back == 1, WAIT_MS);
    assert_int_equal(e.n, 0);

    /* refused, and nothing called back */
    gathered_t r = {0};
    assert_int_equal(herd_group_multi_call(a, "", "ping", 4, 1000, gather, &r), HERD_EINVAL);
    assert_int_equal(herd_group_multi_call(a, "svc", "ping", 4, 0, gather, &r), HERD_EINVAL);
    assert_int_equal(herd_group_multi_call(a, "svc", "ping", 4, 1000, NULL, &r), HERD_EINVAL);
    ts_cluster_run_ms(50);
    assert_int_equal(r.calls_back, 0);
    ts_node_free(b);
    ts_node_free(a);
}

/* ---- group events and one membership's lookup ---------------------------------------- */

#define EV_MAX 32
typedef struct evs {
    int n;
    herd_event_kind_t kind[EV_MAX];
    char name[EV_MAX][64];
    herd_pid_t pid[EV_MAX];
} evs_t;

static void on_event(void *data, const herd_event_t *ev)
{
    evs_t *r = data;
    if (ts_detached() || r->n >= EV_MAX)
        return;
    r->kind[r->n] = ev->kind;
    snprintf(r->name[r->n], sizeof(r->name[0]), "%s", ev->name);
    r->pid[r->n] = ev->pid;
    r->n++;
}

static int told(const evs_t *r, herd_event_kind_t kind, const char *group, herd_pid_t pid)
{
    int k = 0;
    for (int i = 0; i < r->n; i++)
        k += r->kind[i] == kind && strcmp(r->name[i], group) == 0 && herd_pid_equal(r->pid[i], pid);
    return k;
}

static void test_group_events_and_member_lookup(void **state)
{
    (void)state;
    herd_node_t *a, *b;
    pair(&a, &b);
    static evs_t ea, eb;
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));
    assert_int_equal(herd_events_subscribe(a, HERD_EV_GROUPS, on_event, &ea, NULL), 0);
    assert_int_equal(herd_events_subscribe(b, HERD_EV_GROUPS, on_event, &eb, NULL), 0);
    tally_t t = {0};
    herd_pid_t p = spawn_tally(a, &t);
    herd_meta_t m = {0};
    assert_int_equal(herd_meta_set(&m, "role", "x"), 0);
    assert_int_equal(herd_group_join(a, "team:one", p, &m), 0);
    assert_int_equal(told(&ea, HERD_EV_GROUP_JOINED, "team:one", p), 1);
    TS_WAIT_UNTIL(told(&eb, HERD_EV_GROUP_JOINED, "team:one", p) == 1, WAIT_MS);

    herd_meta_t got = {0};
    assert_int_equal(herd_group_member(b, "team:one", p, &got), 1);
    assert_string_equal(herd_meta_get(&got, "role"), "x");
    assert_int_equal(herd_group_member(b, "team:two", p, NULL), 0);
    assert_int_equal(herd_group_member(b, "", p, NULL), HERD_EINVAL);

    /* joining again updates the metadata: no event */
    assert_int_equal(herd_meta_set(&m, "role", "y"), 0);
    assert_int_equal(herd_group_join(a, "team:one", p, &m), 0);
    TS_WAIT_UNTIL(herd_group_member(b, "team:one", p, &got) == 1 &&
                      strcmp(herd_meta_get(&got, "role"), "y") == 0,
                  WAIT_MS);
    assert_int_equal(ea.n, 1);
    assert_int_equal(eb.n, 1);

    /* leave, then join again and exit: told left each time */
    assert_int_equal(herd_group_leave(b, "team:one", p), 0);
    assert_int_equal(told(&eb, HERD_EV_GROUP_LEFT, "team:one", p), 1);
    TS_WAIT_UNTIL(told(&ea, HERD_EV_GROUP_LEFT, "team:one", p) == 1, WAIT_MS);
    assert_int_equal(herd_group_join(a, "team:one", p, NULL), 0);
    TS_WAIT_UNTIL(told(&eb, HERD_EV_GROUP_JOINED, "team:one", p) == 2, WAIT_MS);
    assert_int_equal(herd_exit(a, p, HERD_REASON_SHUTDOWN), 0);
    TS_WAIT_UNTIL(told(&ea, HERD_EV_GROUP_LEFT, "team:one", p) == 2 &&
                      told(&eb, HERD_EV_GROUP_LEFT, "team:one", p) == 2,
                  WAIT_MS);
    assert_int_equal(herd_group_member(b, "team:one", p, NULL), 0);
    ts_node_free(b);
    ts_node_free(a);
}

static int setup(void **state)
{
    return ts_cluster_setup(state);
}

int main(void)
{
    ts_cluster_init("test_group_send", SECRET);
    if (getenv("HERD_TEST_LOG") == NULL)
        herd_log_set_level(HERD_LOG_WARN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_group_publish_reaches_every_member),
        T(test_group_publish_from_a_process),
        T(test_group_multi_call_gathers_answers),
        T(test_group_events_and_member_lookup),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
