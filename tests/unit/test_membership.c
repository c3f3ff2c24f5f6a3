/*
 * test_membership.c - the services a member announces with its membership
 * (svclist.h, membership.c, herd_cluster_set_services):
 * - the list a node sets reaches a peer's member table in its HELLO, and a
 *   change reaches it with the next heartbeat as a member event whose state
 *   is unchanged;
 * - the limits hold at their edges: 32 names of 63 bytes are accepted;
 * - a HELLO whose list breaks a rule (33 names, a 64-byte name, an empty
 *   name, a name twice, a list cut short) is refused with the reason
 *   "services" and leaves no trace in the member table;
 * - through a whole node (an in-memory transport), such a frame is counted
 *   in herd_cluster_stats under "services" and the node keeps running; a
 *   good one makes a member whose list herd_cluster_member_services and
 *   herd_cluster_member_provides read;
 * - herd_cluster_set_services refuses bad lists with the exact code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "herd_runtime.h"
#include "membership.h"
#include "svclist.h"
#include "support.h"
#include "transport.h"
#include "wire.h"

#define SECRET "test-membership-secret-0123456789"

/* ---- the state machine alone ---------------------------------------------------- */

static mship_t *mnode(const char *name, const char *address)
{
    mship_config_t cfg = {.cluster = "herd", .name = name, .address = address,
                          .incarnation = 7};
    mship_t *m;
    assert_int_equal(mship_new(&cfg, 0, &m), 0);
    return m;
}

static frame_header_t header_from(const char *name, uint8_t type, uint64_t seq)
{
    frame_header_t h = {.type = type, .sender = herd_node_id_of(name), .sender_inc = 7,
                        .seq = seq};
    return h;
}

/* The first HELLO or HEARTBEAT body among the effects, copied. */
static uint8_t *first_beat(mship_effects_t *fx, size_t *len)
{
    for (size_t i = 0; i < fx->count; i++) {
        mship_effect_t *e = &fx->items[i];
        if (e->kind == MSHIP_SEND && e->type != FRAME_LEAVE) {
            uint8_t *copy = malloc(e->len);
            assert_non_null(copy);
            memcpy(copy, e->body, e->len);
            *len = e->len;
            return copy;
        }
    }
    fail_msg("no heartbeat among the effects");
    return NULL;
}

static size_t member_events(const mship_effects_t *fx, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->count; i++)
        n += fx->items[i].kind == MSHIP_MEMBER && strcmp(fx->items[i].name, name) == 0;
    return n;
}

static void test_membership_services_reach_peers(void **state)
{
    (void)state;
    mship_t *a = mnode("a", "tcp://a:1");
    mship_t *b = mnode("b", "tcp://b:1");
    mship_effects_t fx;
    mship_effects_init(&fx);
    static const char *const two[] = {"counter", "cache"};
    herd_service_list_t l;
    assert_int_equal(svclist_set(&l, two, 2), 0);
    mship_set_services(a, &l, 0, &fx);
    assert_int_equal(member_events(&fx, "a"), 1); /* this node's own event */
    mship_set_services(a, &l, 0, &fx);
    assert_int_equal(member_events(&fx, "a"), 1); /* unchanged: no event */
    mship_effects_clear(&fx);

    /* a's heartbeat to b carries the list */
    mship_t *seeded;
    const char *seed = "tcp://b:1";
    mship_config_t cfg = {.cluster = "herd", .name = "a", .address = "tcp://a:1",
                          .incarnation = 7, .seeds = &seed, .seed_count = 1};
    assert_int_equal(mship_new(&cfg, 0, &seeded), 0);
    mship_set_services(seeded, &l, 0, &fx);
    mship_effects_clear(&fx);
    assert_int_equal(mship_tick(seeded, 0, &fx), 0);
    size_t len;
    uint8_t *body = first_beat(&fx, &len);
    mship_effects_clear(&fx);
    /* as the heartbeat a sends once b answered its HELLO (a HELLO admits
     * nobody: test_membership_hello_admits_nobody) */
    frame_header_t h = header_from("a", FRAME_HEARTBEAT, 1);
    frame_reject_t why;
    assert_int_equal(mship_receive(b, 1, &h, body, len, &fx, &why), 0);
    free(body);
    const mship_member_t *x = mship_find(b, "a");
    assert_non_null(x);
    assert_int_equal(x->services.count, 2);
    assert_string_equal(x->services.names[0], "counter");
    assert_string_equal(x->services.names[1], "cache");
    mship_effects_clear(&fx);

    /* a drops one: its next beat (a HELLO again: it has not heard b) says
     * so, and b sees an event with the same state */
    assert_int_equal(svclist_set(&l, two, 1), 0);
    mship_set_services(seeded, &l, 300, &fx);
    mship_effects_clear(&fx);
    assert_int_equal(mship_tick(seeded, 300, &fx), 0);
    body = first_beat(&fx, &len);
    mship_effects_clear(&fx);
    h = header_from("a", FRAME_HEARTBEAT, 2);
    assert_int_equal(mship_receive(b, 11, &h, body, len, &fx, &why), 0);
    free(body);
    assert_int_equal(x->services.count, 1);
    assert_true(svclist_has(&x->services, "counter"));
    assert_false(svclist_has(&x->services, "cache"));
    assert_int_equal(member_events(&fx, "a"), 1);
    for (size_t i = 0; i < fx.count; i++)
        if (fx.items[i].kind == MSHIP_MEMBER)
            assert_int_equal(fx.items[i].old_state, fx.items[i].new_state);
    assert_false(fx.ring_changed);

    mship_effects_fini(&fx);
    mship_free(seeded);
    mship_free(a);
    mship_free(b);
}

/* A HELLO from "x" at tcp://x:1 with `count` in the list's count byte and
 * then `names` (n of them) as strings, then an empty gossip list. */
static uint8_t *hello_with(unsigned count, const char *const *names, size_t n, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, "herd");
    wire_put_str(&w, "x");
    wire_put_str(&w, "tcp://x:1");
    wire_put_u32(&w, RING_DEFAULT_WEIGHT);
    wire_put_u8(&w, MEMBER_UP);
    wire_put_u8(&w, (uint8_t)count);
    for (size_t i = 0; i < n; i++)
        wire_put_str(&w, names[i]);
    wire_put_u16(&w, 0);
    uint8_t *body = wire_writer_take(&w, len);
    assert_non_null(body);
    return body;
}

/* The body as a heartbeat from x (a HELLO would admit nobody either way). */
static int receive_hello(mship_t *m, const uint8_t *body, size_t len, frame_reject_t *why)
{
    mship_effects_t fx;
    mship_effects_init(&fx);
    frame_header_t h = header_from("x", FRAME_HEARTBEAT, 1);
    int rc = mship_receive(m, 1, &h, body, len, &fx, why);
    mship_effects_fini(&fx);
    return rc;
}

/* names[i] = i-th name of `len` bytes, distinct */
static void make_names(char (*buf)[256], const char **names, size_t n, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        memset(buf[i], 's', len);
        buf[i][len] = '\0';
        buf[i][0] = (char)('A' + i % 26);
        buf[i][len > 1 ? 1 : 0] = (char)('a' + i / 26);
        names[i] = buf[i];
    }
}

static void test_membership_services_limits_accepted(void **state)
{
    (void)state;
    static char buf[HERD_MEMBER_SERVICES_MAX][256];
    const char *names[HERD_MEMBER_SERVICES_MAX];
    make_names(buf, names, HERD_MEMBER_SERVICES_MAX, HERD_MEMBER_SERVICE_NAME_MAX);
    size_t len;
    uint8_t *body = hello_with(HERD_MEMBER_SERVICES_MAX, names, HERD_MEMBER_SERVICES_MAX, &len);
    assert_true(len <= 64 + SVCLIST_WIRE_MAX);
    mship_t *m = mnode("b", "tcp://b:1");
    frame_reject_t why;
    assert_int_equal(receive_hello(m, body, len, &why), 0);
    const mship_member_t *x = mship_find(m, "x");
    assert_non_null(x);
    assert_int_equal(x->services.count, HERD_MEMBER_SERVICES_MAX);
    assert_string_equal(x->services.names[31], names[31]);
    free(body);
    mship_free(m);
}

static void expect_refused(unsigned count, const char *const *names, size_t n)
{
    size_t len;
    uint8_t *body = hello_with(count, names, n, &len);
    mship_t *m = mnode("b", "tcp://b:1");
    frame_reject_t why = FRAME_OK;
    assert_int_equal(receive_hello(m, body, len, &why), HERD_EBADFRAME);
    assert_int_equal(why, FRAME_REJECT_SERVICES);
    assert_null(mship_find(m, "x"));
    assert_int_equal(mship_member_count(m), 1);
    free(body);
    mship_free(m);
}

static void test_membership_services_malformed_refused(void **state)
{
    (void)state;
    static char buf[HERD_MEMBER_SERVICES_MAX + 1][256];
    const char *names[HERD_MEMBER_SERVICES_MAX + 1];
    /* too many */
    make_names(buf, names, HERD_MEMBER_SERVICES_MAX + 1, 8);
    expect_refused(HERD_MEMBER_SERVICES_MAX + 1, names, HERD_MEMBER_SERVICES_MAX + 1);
    expect_refused(255, names, HERD_MEMBER_SERVICES_MAX + 1);
    /* a name one byte too long, and a much longer one */
    make_names(buf, names, 2, HERD_MEMBER_SERVICE_NAME_MAX + 1);
    expect_refused(1, names, 1);
    make_names(buf, names, 1, 255);
    expect_refused(1, names, 1);
    /* an empty name, alone or after a good one */
    static const char *const empty[] = {""};
    expect_refused(1, empty, 1);
    static const char *const good_then_empty[] = {"counter", ""};
    expect_refused(2, good_then_empty, 2);
    /* a name twice */
    static const char *const twice[] = {"counter", "cache", "counter"};
    expect_refused(3, twice, 3);
    /* the count promises more names than follow (the gossip count's two
     * zero bytes read as one empty name, then nothing) */
    static const char *const one[] = {"counter"};
    expect_refused(3, one, 1);
}

/* A list cut inside a name: the body ends in the middle of it. */
static void test_membership_services_cut_short_refused(void **state)
{
    (void)state;
    static const char *const one[] = {"counter"};
    size_t len;
    uint8_t *body = hello_with(1, one, 1, &len);
    mship_t *m = mnode("b", "tcp://b:1");
    frame_reject_t why = FRAME_OK;
    /* without the gossip count and the name's last 3 bytes */
    assert_int_equal(receive_hello(m, body, len - 5, &why), HERD_EBADFRAME);
    assert_int_equal(why, FRAME_REJECT_SERVICES);
    /* a body cut before the list is a plain body error */
    assert_int_equal(receive_hello(m, body, 4, &why), HERD_EBADFRAME);
    assert_int_equal(why, FRAME_REJECT_BODY);
    assert_null(mship_find(m, "x"));
    free(body);
    mship_free(m);
}

/* ---- through a whole node --------------------------------------------------------- */

/* Deliver `body` to the node as a heartbeat from "x" with sequence number
 * seq, addressed to the node's start. */
static void deliver(ts_fake_tr_t *t, const uint8_t *body, size_t len, uint64_t seq)
{
    ts_fake_frame(t, "x", 7, FRAME_HEARTBEAT, seq, body, len);
}

static void test_membership_services_rejects_counted_by_node(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("b", NULL, 1);
    ts_fake_tr_t impl;
    ts_fake_cluster(n, &impl, SECRET);

    static const char *const twice[] = {"counter", "counter"};
    size_t len;
    uint8_t *body = hello_with(2, twice, 2, &len);
    deliver(&impl, body, len, 1);
    deliver(&impl, body, len, 2);
    free(body);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_SERVICES], 2);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 0);
    assert_string_equal(herd_cluster_reject_name(FRAME_REJECT_SERVICES), "services");
    assert_int_equal(herd_cluster_members(n, NULL, 0), 1);
    assert_int_equal(herd_cluster_member_provides(n, herd_node_id_of("x"), "counter"),
                     HERD_ENOENT);

    /* a good list makes a member, whose services read back */
    uint64_t gen = herd_cluster_generation(n);
    static const char *const good[] = {"counter", "cache"};
    body = hello_with(2, good, 2, &len);
    deliver(&impl, body, len, 3);
    free(body);
    assert_int_equal(herd_cluster_members(n, NULL, 0), 2);
    assert_true(herd_cluster_generation(n) > gen);
    herd_service_list_t l;
    assert_int_equal(herd_cluster_member_services(n, herd_node_id_of("x"), &l), 0);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.names[0], "counter");
    assert_string_equal(l.names[1], "cache");
    assert_int_equal(herd_cluster_member_provides(n, herd_node_id_of("x"), "cache"), 1);
    assert_int_equal(herd_cluster_member_provides(n, herd_node_id_of("x"), "other"), 0);
    assert_int_equal(herd_cluster_member_services(n, 12345, &l), HERD_ENOENT);

    /* this node's own list */
    assert_int_equal(herd_cluster_member_provides(n, herd_node_id_of("b"), "counter"), 0);
    gen = herd_cluster_generation(n);
    static const char *const mine[] = {"counter"};
    assert_int_equal(herd_cluster_set_services(n, mine, 1), 0);
    assert_true(herd_cluster_generation(n) > gen);
    assert_int_equal(herd_cluster_member_provides(n, herd_node_id_of("b"), "counter"), 1);
    ts_node_free(n);
}

/* A HEARTBEAT from "x" at incarnation 7 whose gossip has one entry. */
static uint8_t *beat_gossiping(const char *name, uint64_t inc, uint8_t status, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, "herd");
    wire_put_str(&w, "x");
    wire_put_str(&w, "tcp://x:1");
    wire_put_u32(&w, RING_DEFAULT_WEIGHT);
    wire_put_u8(&w, MEMBER_UP);
    wire_put_u8(&w, 0);
    wire_put_u16(&w, 1);
    wire_put_str(&w, name);
    wire_put_str(&w, "tcp://elsewhere:1");
    wire_put_u64(&w, inc);
    wire_put_u32(&w, RING_DEFAULT_WEIGHT);
    wire_put_u8(&w, status);
    uint8_t *body = wire_writer_take(&w, len);
    assert_non_null(body);
    return body;
}

/* A member may gossip about others, but not report its own start as another
 * one, or as gone: the header's (sender, incarnation) is the authority. */
static void test_membership_gossip_claiming_its_sender_refused(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("b", NULL, 1);
    ts_fake_tr_t impl;
    ts_fake_cluster(n, &impl, SECRET);
    size_t len;
    uint8_t *body;
    ts_fake_join(&impl, "x", 7, 1);
    herd_member_info_t info;
    assert_int_equal(herd_cluster_member(n, herd_node_id_of("x"), &info), 0);
    assert_int_equal(info.incarnation, 7);

    static const struct {
        uint64_t inc;
        uint8_t status;
    } lies[] = {{8, 0}, {6, 0}, {7, 1}, {7, 2}, {UINT64_MAX, 1}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        body = beat_gossiping("x", lies[i].inc, lies[i].status, &len);
        ts_fake_frame(&impl, "x", 7, FRAME_HEARTBEAT, 10 + i, body, len);
        free(body);
    }
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_SENDER], 5);
    assert_string_equal(herd_cluster_reject_name(FRAME_REJECT_SENDER), "sender");
    assert_int_equal(herd_cluster_member(n, herd_node_id_of("x"), &info), 0);
    assert_int_equal(info.incarnation, 7);
    assert_int_equal(info.state, HERD_MEMBER_UP);

    /* its own entry as it is, and news of a member unknown here, are fine */
    body = beat_gossiping("x", 7, 0, &len);
    ts_fake_frame(&impl, "x", 7, FRAME_HEARTBEAT, 20, body, len);
    free(body);
    body = beat_gossiping("y", 3, 0, &len);
    ts_fake_frame(&impl, "x", 7, FRAME_HEARTBEAT, 21, body, len);
    free(body);
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_SENDER], 5);
    assert_int_equal(st.rejected[FRAME_REJECT_BODY], 0);
    assert_int_equal(herd_cluster_unconfirmed(n), 1); /* y: heard of, not from */
    ts_node_free(n);
}

static void test_membership_set_services_errors(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("b", NULL, 1);
    static const char *const one[] = {"counter"};
    assert_int_equal(herd_cluster_set_services(n, one, 1), HERD_ENOENT);
    assert_int_equal(herd_cluster_generation(n), 0);
    ts_fake_tr_t impl;
    ts_fake_cluster(n, &impl, SECRET);

    static char buf[HERD_MEMBER_SERVICES_MAX + 1][256];
    const char *names[HERD_MEMBER_SERVICES_MAX + 1];
    make_names(buf, names, HERD_MEMBER_SERVICES_MAX + 1, 4);
    assert_int_equal(herd_cluster_set_services(n, names, HERD_MEMBER_SERVICES_MAX + 1),
                     HERD_ERANGE);
    assert_int_equal(herd_cluster_set_services(n, NULL, 1), HERD_EINVAL);
    static const char *const empty[] = {""};
    assert_int_equal(herd_cluster_set_services(n, empty, 1), HERD_EINVAL);
    static const char *const null_name[] = {NULL};
    assert_int_equal(herd_cluster_set_services(n, null_name, 1), HERD_EINVAL);
    static const char *const twice[] = {"a", "a"};
    assert_int_equal(herd_cluster_set_services(n, twice, 2), HERD_EINVAL);
    make_names(buf, names, 1, HERD_MEMBER_SERVICE_NAME_MAX + 1);
    assert_int_equal(herd_cluster_set_services(n, names, 1), HERD_EINVAL);
    /* nothing of those was taken */
    herd_service_list_t l;
    assert_int_equal(herd_cluster_member_services(n, herd_node_id_of("b"), &l), 0);
    assert_int_equal(l.count, 0);
    /* the edges are fine, and an empty list clears it */
    make_names(buf, names, HERD_MEMBER_SERVICES_MAX, HERD_MEMBER_SERVICE_NAME_MAX);
    assert_int_equal(herd_cluster_set_services(n, names, HERD_MEMBER_SERVICES_MAX), 0);
    assert_int_equal(herd_cluster_member_services(n, herd_node_id_of("b"), &l), 0);
    assert_int_equal(l.count, HERD_MEMBER_SERVICES_MAX);
    assert_int_equal(herd_cluster_set_services(n, NULL, 0), 0);
    assert_int_equal(herd_cluster_member_services(n, herd_node_id_of("b"), &l), 0);
    assert_int_equal(l.count, 0);
    ts_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_membership_services_reach_peers),
        cmocka_unit_test(test_membership_services_limits_accepted),
        cmocka_unit_test(test_membership_services_malformed_refused),
        cmocka_unit_test(test_membership_services_cut_short_refused),
        cmocka_unit_test_setup_teardown(test_membership_services_rejects_counted_by_node,
                                        ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_membership_gossip_claiming_its_sender_refused,
                                        ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_membership_set_services_errors, ts_setup,
                                        ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
