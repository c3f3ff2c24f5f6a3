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
 *
 * And the join handshake (mship_join.c):
 * - a HELLO admits nobody: it is answered with a heartbeat addressed to the
 *   sender's start, and the heartbeat that answer brings back admits; the
 *   answers are rate-limited per sender and in all;
 * - a second node with a live member's name is refused after asking it, and
 *   nobody admits it; a restart at the old address joins at once, one
 *   elsewhere after the old start stayed silent for probe_ms;
 * - frames recorded from a node and replayed to a restarted node do not
 *   bring the recorded node up there (the bug of issue 12, item 4);
 * - a HELLO from another start of a node's own name is counted as "name".
 *
 * And prompt heartbeats (membership.h):
 * - a joiner that the seed admits sends a heartbeat at once to each member
 *   the seed's answer names, and that member's answer admits it both ways:
 *   three nodes see each other up without a single tick; the same name in
 *   later gossip gets none, and a name heard of never becomes a member
 *   until it answers itself;
 * - they are bounded: 16 per heartbeat period however many names one frame
 *   or many frames bring (the rest counted as deferred and reached by the
 *   periodic heartbeat), none for a name gossiped down, 16 again in the
 *   next period; the counts reach herd_cluster_stats.
 *
 * And the verdicts of a node's own links (mship_link_report):
 * - a link that closed and whose reconnect was refused declares its member
 *   down at once, one verdict per closing of the link;
 * - a link that closed and reconnects gives no verdict, and a closed one
 *   only with 2 heartbeats of silence;
 * - a member silent behind a link that stays connected (a partition) takes
 *   suspect_ms and down_ms;
 * - a live member wrongly reported refused is up again as soon as it is
 *   heard, is not declared down again while it talks, and is never down at
 *   another node, which the verdict's gossip does not convince;
 * - out of memory for the effects, the verdict still holds in the table and
 *   the ring, and the effect lost is counted for the caller to report.
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

/* test_membership links with --wrap=realloc (tests/CMakeLists.txt): armed,
 * the next reallocation fails, once. */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
static int g_fail_next_realloc;

void *__wrap_realloc(void *p, size_t n)
{
    if (g_fail_next_realloc) {
        g_fail_next_realloc = 0;
        return NULL;
    }
    return __real_realloc(p, n);
}

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
    wire_put_u32(&w, HERD_RING_DEFAULT_WEIGHT);
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
    wire_put_u32(&w, HERD_RING_DEFAULT_WEIGHT);
    wire_put_u8(&w, MEMBER_UP);
    wire_put_u8(&w, 0);
    wire_put_u16(&w, 1);
    wire_put_str(&w, name);
    wire_put_str(&w, "tcp://elsewhere:1");
    wire_put_u64(&w, inc);
    wire_put_u32(&w, HERD_RING_DEFAULT_WEIGHT);
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

/* ---- the handshake (mship_join.c) ---------------------------------------------- */

/* A state machine `name` listening at `address`, start `inc`, joining
 * through `seed` (NULL: none); asks other starts of its name for 300 ms. */
static mship_t *mjoiner(const char *name, const char *address, uint64_t inc, const char *seed)
{
    mship_config_t cfg = {.cluster = "herd", .name = name, .address = address,
                          .incarnation = inc, .probe_ms = 300};
    if (seed) {
        cfg.seeds = &seed;
        cfg.seed_count = 1;
    }
    mship_t *m;
    assert_int_equal(mship_new(&cfg, 0, &m), 0);
    return m;
}

/* The last frame of `type` among the effects for `address`, or NULL. */
static const mship_effect_t *sent(const mship_effects_t *fx, uint8_t type, const char *address)
{
    const mship_effect_t *last = NULL;
    for (size_t i = 0; i < fx->count; i++) {
        const mship_effect_t *e = &fx->items[i];
        if (e->kind == MSHIP_SEND && e->type == type && strcmp(e->address, address) == 0)
            last = e;
    }
    return last;
}

static size_t sends(const mship_effects_t *fx)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->count; i++)
        n += fx->items[i].kind == MSHIP_SEND;
    return n;
}

/* Hand `m` the frame effect `e` as node `from` at `from_inc` sent it. */
static int take(mship_t *m, uint64_t now, const mship_effect_t *e, const char *from,
                uint64_t from_inc, uint64_t seq, mship_effects_t *out, frame_reject_t *why)
{
    assert_non_null(e);
    frame_header_t h = {.type = e->type, .sender = herd_node_id_of(from), .sender_inc = from_inc,
                        .receiver = e->to, .receiver_inc = e->to_inc, .seq = seq};
    frame_reject_t ignored;
    return mship_receive(m, now, &h, e->body, e->len, out, why ? why : &ignored);
}

static mship_identity_t identity(const mship_t *m)
{
    return mship_identity(m, NULL, NULL, 0);
}

/* `j` (name, start jinc, at jaddr) joins `s` (sname at saddr, start sinc)
 * at time `now` through the whole handshake; both then list each other. */
static void handshake(mship_t *j, const char *jname, uint64_t jinc, const char *jaddr,
                      mship_t *s, const char *sname, uint64_t sinc, const char *saddr,
                      uint64_t now)
{
    mship_effects_t a, b;
    mship_effects_init(&a);
    mship_effects_init(&b);
    assert_int_equal(mship_tick(j, now, &a), 0);
    assert_int_equal(take(s, now, sent(&a, FRAME_HELLO, saddr), jname, jinc, now + 1, &b, NULL), 0);
    mship_effects_clear(&a);
    assert_int_equal(take(j, now, sent(&b, FRAME_HEARTBEAT, jaddr), sname, sinc, now + 1, &a, NULL),
                     0);
    mship_effects_clear(&b);
    assert_int_equal(take(s, now, sent(&a, FRAME_HEARTBEAT, saddr), jname, jinc, now + 2, &b, NULL),
                     0);
    assert_non_null(mship_find(j, sname));
    assert_non_null(mship_find(s, jname));
    mship_effects_fini(&a);
    mship_effects_fini(&b);
}

/* A HELLO admits nobody: it is answered with a heartbeat addressed to the
 * sender's start, and only the heartbeat that comes back admits the joiner;
 * the answer admits the seed at the joiner. */
static void test_membership_hello_admits_nobody(void **state)
{
    (void)state;
    mship_t *b = mjoiner("b", "tcp://b:1", 5, NULL);
    mship_t *a = mjoiner("a", "tcp://a:1", 7, "tcp://b:1");
    assert_int_equal(identity(b), MSHIP_ID_CONFIRMED); /* no seeds: nobody to ask */
    assert_int_equal(identity(a), MSHIP_ID_UNCHECKED);
    mship_effects_t fa, fb;
    mship_effects_init(&fa);
    mship_effects_init(&fb);
    assert_int_equal(mship_tick(a, 0, &fa), 0);
    const mship_effect_t *hello = sent(&fa, FRAME_HELLO, "tcp://b:1");
    assert_non_null(hello);
    assert_true(hello->to == 0 && hello->to_inc == 0);

    frame_reject_t why = FRAME_OK;
    assert_int_equal(take(b, 0, hello, "a", 7, 1, &fb, &why), 0);
    assert_null(mship_find(b, "a"));
    assert_int_equal(mship_member_count(b), 1);
    assert_int_equal(member_events(&fb, "a"), 0);
    assert_int_equal(mship_candidate_count(b), 0);
    const mship_effect_t *answer = sent(&fb, FRAME_HEARTBEAT, "tcp://a:1");
    assert_non_null(answer);
    assert_true(answer->to == herd_node_id_of("a") && answer->to_inc == 7);
    assert_int_equal(sends(&fb), 1);

    /* the same HELLO at once (a retry, or a replay) is not answered again */
    mship_effects_t again;
    mship_effects_init(&again);
    assert_int_equal(take(b, 10, hello, "a", 7, 2, &again, &why), HERD_EBADFRAME);
    assert_int_equal(why, FRAME_REJECT_RATE);
    assert_int_equal(again.count, 0);
    /* a quarter of a heartbeat (200 ms) later it is */
    assert_int_equal(take(b, 50, hello, "a", 7, 3, &again, &why), 0);
    assert_non_null(sent(&again, FRAME_HEARTBEAT, "tcp://a:1"));
    assert_null(mship_find(b, "a"));
    mship_effects_fini(&again);

    /* the answer admits b at a, and a's heartbeat back admits a at b */
    mship_effects_clear(&fa);
    assert_int_equal(take(a, 51, answer, "b", 5, 1, &fa, &why), 0);
    const mship_member_t *x = mship_find(a, "b");
    assert_non_null(x);
    assert_int_equal(x->state, MEMBER_UP);
    assert_int_equal(identity(a), MSHIP_ID_CONFIRMED);
    const mship_effect_t *back = sent(&fa, FRAME_HEARTBEAT, "tcp://b:1");
    assert_non_null(back);
    assert_true(back->to == herd_node_id_of("b") && back->to_inc == 5);
    mship_effects_clear(&fb);
    assert_int_equal(take(b, 52, back, "a", 7, 4, &fb, &why), 0);
    x = mship_find(b, "a");
    assert_non_null(x);
    assert_int_equal(x->state, MEMBER_UP);
    assert_true(x->incarnation == 7);
    assert_int_equal(member_events(&fb, "a"), 1);
    mship_effects_fini(&fa);
    mship_effects_fini(&fb);
    mship_free(a);
    mship_free(b);
}

/* HELLO answers are bounded: one per sender per heartbeat_ms / 4, and at
 * most 64 senders in that time, however many HELLOs arrive. */
static void test_membership_hello_answers_bounded(void **state)
{
    (void)state;
    mship_t *b = mjoiner("b", "tcp://b:1", 5, NULL);
    size_t len;
    uint8_t *body = ts_fake_hello("x", &len);
    mship_effects_t fx;
    mship_effects_init(&fx);
    frame_reject_t why;
    size_t answered = 0, rate = 0;
    for (uint64_t t = 0; t < 1000; t++) { /* one HELLO per ms for a second */
        frame_header_t h = {.type = FRAME_HELLO, .sender = herd_node_id_of("x"),
                            .sender_inc = 7, .seq = t + 1};
        int rc = mship_receive(b, t, &h, body, len, &fx, &why);
        rate += rc == HERD_EBADFRAME && why == FRAME_REJECT_RATE;
        answered += rc == 0;
    }
    assert_int_equal(sends(&fx), answered);
    assert_int_equal(answered, 20); /* every 50 ms */
    assert_int_equal(rate, 980);
    free(body);
    mship_effects_clear(&fx);

    /* 200 senders in the same millisecond: 64 answered */
    char name[16];
    answered = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        body = ts_fake_hello(name, &len);
        frame_header_t h = {.type = FRAME_HELLO, .sender = herd_node_id_of(name),
                            .sender_inc = 7, .seq = 1};
        answered += mship_receive(b, 5000, &h, body, len, &fx, &why) == 0;
        free(body);
    }
    assert_int_equal(answered, 64);
    assert_int_equal(sends(&fx), 64);
    assert_int_equal(mship_member_count(b), 1);
    mship_effects_fini(&fx);
    mship_free(b);
}

/* A second node with a live member's name (at another address) hears of the
 * member in the seed's answer, asks it, is answered and refused: nobody
 * ever admitted it. */
static void test_membership_duplicate_name_refused(void **state)
{
    (void)state;
    mship_t *s = mjoiner("s", "tcp://s:1", 3, NULL);
    mship_t *orig = mjoiner("b", "tcp://b:1", 5, "tcp://s:1");
    handshake(orig, "b", 5, "tcp://b:1", s, "s", 3, "tcp://s:1", 0);
    mship_t *imp = mjoiner("b", "tcp://b2:1", 9, "tcp://s:1");
    mship_effects_t fi, fs, fo;
    mship_effects_init(&fi);
    mship_effects_init(&fs);
    mship_effects_init(&fo);
    assert_int_equal(mship_tick(imp, 100, &fi), 0);
    assert_int_equal(take(s, 100, sent(&fi, FRAME_HELLO, "tcp://s:1"), "b", 9, 1, &fs, NULL), 0);
    assert_true(mship_find(s, "b")->incarnation == 5); /* the seed did not switch */
    mship_effects_clear(&fi);

    /* the seed's answer names b@5 alive elsewhere: ask it, admit nobody */
    assert_int_equal(take(imp, 101, sent(&fs, FRAME_HEARTBEAT, "tcp://b2:1"), "s", 3, 10, &fi,
                          NULL),
                     0);
    assert_int_equal(identity(imp), MSHIP_ID_PROBING);
    assert_int_equal(mship_member_count(imp), 1);
    assert_null(sent(&fi, FRAME_HEARTBEAT, "tcp://s:1"));
    const mship_effect_t *probe = sent(&fi, FRAME_HELLO, "tcp://b:1");
    assert_non_null(probe);
    assert_true(probe->to == herd_node_id_of("b") && probe->to_inc == 5);
    uint64_t inc = 0;
    char address[64];
    assert_int_equal(mship_identity(imp, &inc, address, sizeof(address)), MSHIP_ID_PROBING);
    assert_true(inc == 5);
    assert_string_equal(address, "tcp://b:1");

    /* the live one answers (and counts the HELLO as from its own name) */
    frame_reject_t why = FRAME_OK;
    assert_int_equal(take(orig, 102, probe, "b", 9, 2, &fo, &why), HERD_EBADFRAME);
    assert_int_equal(why, FRAME_REJECT_NAME);
    assert_int_equal(identity(orig), MSHIP_ID_CONFIRMED);
    const mship_effect_t *answer = sent(&fo, FRAME_HEARTBEAT, "tcp://b2:1");
    assert_non_null(answer);
    assert_true(answer->to == herd_node_id_of("b") && answer->to_inc == 9);
    mship_effects_clear(&fi);
    assert_int_equal(take(imp, 103, answer, "b", 5, 11, &fi, NULL), 0);
    assert_int_equal(mship_identity(imp, &inc, address, sizeof(address)), MSHIP_ID_REFUSED);
    assert_true(inc == 5);
    assert_string_equal(address, "tcp://b:1");

    /* refused, it sends nothing and takes nothing in */
    mship_effects_clear(&fi);
    assert_int_equal(mship_tick(imp, 400, &fi), 0);
    assert_int_equal(mship_tick(imp, 2000, &fi), 0);
    assert_int_equal(fi.count, 0);
    assert_int_equal(take(imp, 2001, sent(&fs, FRAME_HEARTBEAT, "tcp://b2:1"), "s", 3, 12, &fi,
                          NULL),
                     0);
    assert_int_equal(mship_member_count(imp), 1);
    assert_true(mship_find(s, "b")->incarnation == 5);
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    mship_effects_fini(&fi);
    mship_effects_fini(&fs);
    mship_effects_fini(&fo);
    mship_free(imp);
    mship_free(orig);
    mship_free(s);
}

/* A restart at the old start's address needs no question: the node could
 * bind it, so the old start is dead, and the seed's answer admits at once. */
static void test_membership_restart_same_address_joins_at_once(void **state)
{
    (void)state;
    mship_t *s = mjoiner("s", "tcp://s:1", 3, NULL);
    mship_t *old = mjoiner("b", "tcp://b:1", 5, "tcp://s:1");
    handshake(old, "b", 5, "tcp://b:1", s, "s", 3, "tcp://s:1", 0);
    mship_free(old); /* killed: s still lists it up */
    mship_t *b = mjoiner("b", "tcp://b:1", 9, "tcp://s:1");
    mship_effects_t fx;
    mship_effects_init(&fx);
    handshake(b, "b", 9, "tcp://b:1", s, "s", 3, "tcp://s:1", 100);
    assert_int_equal(identity(b), MSHIP_ID_CONFIRMED);
    const mship_member_t *x = mship_find(s, "b");
    assert_true(x->incarnation == 9 && x->state == MEMBER_UP);
    mship_effects_fini(&fx);
    mship_free(b);
    mship_free(s);
}

/* A restart at another address asks the old start; silence for probe_ms
 * says it is dead, and the join goes on: the seed replaces the old start. */
static void test_membership_restart_elsewhere_after_silence(void **state)
{
    (void)state;
    mship_t *s = mjoiner("s", "tcp://s:1", 3, NULL);
    mship_t *old = mjoiner("b", "tcp://b:1", 5, "tcp://s:1");
    handshake(old, "b", 5, "tcp://b:1", s, "s", 3, "tcp://s:1", 0);
    mship_free(old);
    mship_t *b = mjoiner("b", "tcp://b3:1", 9, "tcp://s:1");
    mship_effects_t fb, fs;
    mship_effects_init(&fb);
    mship_effects_init(&fs);
    assert_int_equal(mship_tick(b, 100, &fb), 0);
    assert_int_equal(take(s, 100, sent(&fb, FRAME_HELLO, "tcp://s:1"), "b", 9, 1, &fs, NULL), 0);
    mship_effects_clear(&fb);
    assert_int_equal(take(b, 101, sent(&fs, FRAME_HEARTBEAT, "tcp://b3:1"), "s", 3, 10, &fb,
                          NULL),
                     0);
    assert_int_equal(identity(b), MSHIP_ID_PROBING);
    uint64_t t = 101;
    for (; identity(b) == MSHIP_ID_PROBING && t < 1000; t += 50) {
        mship_effects_clear(&fb);
        assert_int_equal(mship_tick(b, t, &fb), 0);
        if (identity(b) == MSHIP_ID_PROBING) { /* asked again, no seed bothered */
            assert_non_null(sent(&fb, FRAME_HELLO, "tcp://b:1"));
            assert_null(sent(&fb, FRAME_HELLO, "tcp://s:1"));
        }
    }
    assert_int_equal(identity(b), MSHIP_ID_UNCHECKED);
    assert_true(t - 50 >= 100 + 300); /* not before probe_ms */
    assert_true(mship_find(s, "b")->incarnation == 5);
    /* the seed is asked again at once; its answer now admits it */
    const mship_effect_t *hello = sent(&fb, FRAME_HELLO, "tcp://s:1");
    mship_effects_clear(&fs);
    assert_int_equal(take(s, t, hello, "b", 9, 2, &fs, NULL), 0);
    mship_effects_t fb2;
    mship_effects_init(&fb2);
    assert_int_equal(take(b, t, sent(&fs, FRAME_HEARTBEAT, "tcp://b3:1"), "s", 3, 11, &fb2,
                          NULL),
                     0);
    assert_int_equal(identity(b), MSHIP_ID_CONFIRMED);
    mship_effects_clear(&fs);
    assert_int_equal(take(s, t, sent(&fb2, FRAME_HEARTBEAT, "tcp://s:1"), "b", 9, 3, &fs, NULL),
                     0);
    const mship_member_t *x = mship_find(s, "b");
    assert_true(x->incarnation == 9 && x->state == MEMBER_UP);
    assert_string_equal(x->address, "tcp://b3:1");
    int restarted = 0;
    for (size_t i = 0; i < fs.count; i++)
        restarted |= fs.items[i].kind == MSHIP_MEMBER && fs.items[i].gone == MSHIP_GONE_RESTARTED;
    assert_true(restarted);
    mship_effects_fini(&fb);
    mship_effects_fini(&fb2);
    mship_effects_fini(&fs);
    mship_free(b);
    mship_free(s);
}

/* ---- verdicts of a node's own links (mship_link_report) ------------------------- */

/* Events about `name` among the effects into to[cap] (their new states);
 * returns how many. */
static size_t member_states(const mship_effects_t *fx, const char *name, mship_state_t *to,
                            size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->count; i++) {
        const mship_effect_t *e = &fx->items[i];
        if (e->kind == MSHIP_MEMBER && strcmp(e->name, name) == 0 && n < cap)
            to[n++] = e->new_state;
    }
    return n;
}

/* s (start 3) and b (start 5) know each other, at time 0. */
static void link_pair(mship_t **s, mship_t **b)
{
    *s = mjoiner("s", "tcp://s:1", 3, NULL);
    *b = mjoiner("b", "tcp://b:1", 5, "tcp://s:1");
    handshake(*b, "b", 5, "tcp://b:1", *s, "s", 3, "tcp://s:1", 0);
    assert_true(mship_find(*s, "b")->state == MEMBER_UP);
}

/* b's heartbeat to s at `now` (b's frame `seq`): s hears b. */
static void beat_to(mship_t *b, mship_t *s, uint64_t now, uint64_t seq, mship_effects_t *fs)
{
    mship_effects_t fb;
    mship_effects_init(&fb);
    /* b's next heartbeat is due: tick it until it sends one to s */
    assert_int_equal(mship_tick(b, now, &fb), 0);
    const mship_effect_t *e = sent(&fb, FRAME_HEARTBEAT, "tcp://s:1");
    assert_non_null(e);
    assert_int_equal(take(s, now, e, "b", 5, seq, fs, NULL), 0);
    mship_effects_fini(&fb);
}

/* A refused reconnect after the close: down at once, the member heard a
 * moment ago (no silence asked for); the closed link alone said nothing. */
static void test_membership_link_refused_is_down_at_once(void **state)
{
    (void)state;
    mship_t *s, *b;
    link_pair(&s, &b);
    mship_effects_t fx;
    mship_effects_init(&fx);
    mship_state_t to[4];
    mship_link_report(s, "b", MSHIP_LINK_CLOSED, 5, &fx);
    assert_int_equal(fx.count, 0);
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    mship_link_report(s, "b", MSHIP_LINK_REFUSED, 10, &fx);
    assert_int_equal(member_states(&fx, "b", to, 4), 1);
    assert_int_equal(to[0], MEMBER_DOWN);
    assert_true(fx.ring_changed);
    assert_true(mship_find(s, "b")->state == MEMBER_DOWN);
    /* said once: more reports of the same closing add nothing */
    mship_effects_clear(&fx);
    for (uint64_t t = 20; t < 2000; t += 10)
        mship_link_report(s, "b", MSHIP_LINK_REFUSED, t, &fx);
    assert_int_equal(member_events(&fx, "b"), 0);
    /* reports about itself or a stranger change nothing */
    mship_link_report(s, "s", MSHIP_LINK_REFUSED, 2000, &fx);
    mship_link_report(s, "nobody", MSHIP_LINK_REFUSED, 2000, &fx);
    assert_int_equal(fx.count, 0);
    assert_true(mship_self(s)->state == MEMBER_UP);
    mship_effects_fini(&fx);
    mship_free(b);
    mship_free(s);
}

/* The effects cannot grow (out of memory): the member is down in the table
 * all the same, the ring is to be rebuilt, and the lost effect is counted
 * (cluster_apply logs and counts it); clearing the effects resets it. */
static void test_membership_effect_lost_counted(void **state)
{
    (void)state;
    mship_t *s, *b;
    link_pair(&s, &b);
    mship_effects_t fx;
    mship_effects_init(&fx); /* no room yet: the first effect allocates */
    g_fail_next_realloc = 1;
    mship_link_report(s, "b", MSHIP_LINK_REFUSED, 10, &fx);
    assert_int_equal(g_fail_next_realloc, 0); /* the effect did ask for room */
    assert_int_equal(fx.count, 0);
    assert_int_equal(fx.lost, 1);
    assert_true(fx.ring_changed);
    assert_true(mship_find(s, "b")->state == MEMBER_DOWN);
    mship_effects_clear(&fx);
    assert_int_equal(fx.lost, 0);
    assert_false(fx.ring_changed);
    /* with memory again, the next change is an effect as before */
    beat_to(b, s, 500, 100, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    assert_int_equal(member_events(&fx, "b"), 1);
    assert_int_equal(fx.lost, 0);
    mship_effects_fini(&fx);
    mship_free(b);
    mship_free(s);
}

/* A link that closed and reconnected (a live peer dropped the connection)
 * gives no verdict; a closed link gives one only with 2 heartbeats (400 ms)
 * of silence. */
static void test_membership_link_closed_reconnected_no_verdict(void **state)
{
    (void)state;
    mship_t *s, *b;
    link_pair(&s, &b);
    mship_effects_t fx;
    mship_effects_init(&fx);
    uint64_t seq = 10;
    for (uint64_t t = 10; t <= 3000; t += 10) {
        /* closed for 30 ms of every 100, heard every heartbeat */
        mship_link_t link = t % 100 < 30 ? MSHIP_LINK_CLOSED : MSHIP_LINK_OK;
        mship_link_report(s, "b", link, t, &fx);
        if (t % 200 == 0)
            beat_to(b, s, t, ++seq, &fx);
        assert_int_equal(mship_tick(s, t, &fx), 0);
        assert_int_equal(member_events(&fx, "b"), 0);
        mship_effects_clear(&fx);
    }
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    /* closed, and silent since 3000: not before 3400 */
    for (uint64_t t = 3010; t < 3400; t += 10)
        mship_link_report(s, "b", MSHIP_LINK_CLOSED, t, &fx);
    assert_int_equal(fx.count, 0);
    mship_link_report(s, "b", MSHIP_LINK_CLOSED, 3400, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_DOWN);
    mship_effects_fini(&fx);
    mship_free(b);
    mship_free(s);
}

/* Silence behind a link that stays connected (a partition, a hung node):
 * suspect at suspect_ms (600), down at down_ms (1000), not sooner. */
static void test_membership_link_silent_takes_timeouts(void **state)
{
    (void)state;
    mship_t *s, *b;
    link_pair(&s, &b);
    mship_effects_t fx;
    mship_effects_init(&fx);
    uint64_t suspect_at = 0, down_at = 0;
    for (uint64_t t = 10; t <= 1500 && down_at == 0; t += 10) {
        mship_link_report(s, "b", MSHIP_LINK_OK, t, &fx);
        assert_int_equal(mship_tick(s, t, &fx), 0);
        mship_state_t to[4];
        size_t n = member_states(&fx, "b", to, 4);
        for (size_t i = 0; i < n; i++) {
            if (to[i] == MEMBER_SUSPECT && suspect_at == 0)
                suspect_at = t;
            if (to[i] == MEMBER_DOWN)
                down_at = t;
        }
        mship_effects_clear(&fx);
    }
    assert_true(suspect_at >= 600 && suspect_at < 650);
    assert_true(down_at >= 1000 && down_at < 1050);
    mship_effects_fini(&fx);
    mship_free(b);
    mship_free(s);
}

/* b's link at s is refused though b lives (one bad link): s declares b down
 * once, b is up again at s with its next heartbeat, and not declared down
 * again while it talks; c, told by s's gossip that b is down at s, keeps b
 * up. Once the link is reported connected, its next refusal is a verdict
 * again; a member revived whose link stays refused is judged on silence. */
static void test_membership_link_one_bad_link_no_false_verdict(void **state)
{
    (void)state;
    mship_t *s, *b;
    link_pair(&s, &b);
    mship_t *c = mjoiner("c", "tcp://c:1", 4, "tcp://s:1");
    handshake(c, "c", 4, "tcp://c:1", s, "s", 3, "tcp://s:1", 0);
    /* c meets b: b is a candidate in s's gossip, c heartbeats it, b admits
     * c and answers, c admits b */
    mship_effects_t fx, fc, fb;
    mship_effects_init(&fx);
    mship_effects_init(&fc);
    mship_effects_init(&fb);
    assert_int_equal(mship_tick(s, 200, &fx), 0);
    assert_int_equal(take(c, 200, sent(&fx, FRAME_HEARTBEAT, "tcp://c:1"), "s", 3, 20, &fc,
                          NULL),
                     0);
    mship_effects_clear(&fx);
    assert_int_equal(mship_candidate_count(c), 1);
    mship_effects_clear(&fc);
    assert_int_equal(mship_tick(c, 400, &fc), 0);
    assert_int_equal(take(b, 400, sent(&fc, FRAME_HEARTBEAT, "tcp://b:1"), "c", 4, 21, &fb,
                          NULL),
                     0);
    mship_effects_clear(&fc);
    assert_int_equal(take(c, 400, sent(&fb, FRAME_HEARTBEAT, "tcp://c:1"), "b", 5, 22, &fc,
                          NULL),
                     0);
    assert_true(mship_find(c, "b")->state == MEMBER_UP);
    mship_effects_clear(&fb);
    mship_effects_clear(&fc);

    /* the bad link: s declares b down */
    mship_link_report(s, "b", MSHIP_LINK_REFUSED, 450, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_DOWN);
    mship_effects_clear(&fx);
    /* s's gossip says b is down at s; c keeps b up */
    assert_int_equal(mship_tick(s, 500, &fx), 0);
    assert_int_equal(take(c, 500, sent(&fx, FRAME_HEARTBEAT, "tcp://c:1"), "s", 3, 30, &fc,
                          NULL),
                     0);
    assert_int_equal(member_events(&fc, "b"), 0);
    assert_true(mship_find(c, "b")->state == MEMBER_UP);
    mship_effects_clear(&fx);
    /* b talks: up again at s, and not down again while the link stays
     * refused and b keeps talking */
    uint64_t seq = 40;
    for (uint64_t t = 600; t <= 3000; t += 10) {
        mship_link_report(s, "b", MSHIP_LINK_REFUSED, t, &fx);
        if (t % 200 == 0)
            beat_to(b, s, t, ++seq, &fx);
        assert_int_equal(mship_tick(s, t, &fx), 0);
        if (t == 600)
            assert_true(mship_find(s, "b")->state == MEMBER_UP);
        else
            assert_int_equal(member_events(&fx, "b"), 0);
        mship_effects_clear(&fx);
    }
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    /* revived behind a link still refused, then silent: down after 2
     * heartbeats of silence, as a closed link judges */
    mship_link_report(s, "b", MSHIP_LINK_REFUSED, 3390, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    mship_link_report(s, "b", MSHIP_LINK_REFUSED, 3400, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_DOWN);
    mship_effects_clear(&fx);
    /* heard again, the link connected again: its next refusal is a verdict
     * at once */
    beat_to(b, s, 3410, ++seq, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_UP);
    mship_link_report(s, "b", MSHIP_LINK_OK, 3420, &fx);
    mship_link_report(s, "b", MSHIP_LINK_REFUSED, 3430, &fx);
    assert_true(mship_find(s, "b")->state == MEMBER_DOWN);
    mship_effects_fini(&fx);
    mship_effects_fini(&fc);
    mship_effects_fini(&fb);
    mship_free(c);
    mship_free(b);
    mship_free(s);
}

/* ---- recorded frames replayed to a restarted node -------------------------------- */

/* A frame as a recorder on the wire keeps it (malloc'ed, *size bytes). */
static uint8_t *recorded(const char *name, uint64_t inc, uint8_t type, uint64_t seq,
                         uint64_t receiver, uint64_t receiver_inc, size_t *size)
{
    size_t len;
    uint8_t *body = ts_fake_hello(name, &len);
    frame_key_t key;
    assert_int_equal(frame_key_from_secret(&key, SECRET, strlen(SECRET)), 0);
    frame_header_t h = {.type = type, .sender = herd_node_id_of(name), .sender_inc = inc,
                        .receiver = receiver, .receiver_inc = receiver_inc, .seq = seq};
    *size = frame_size(len);
    uint8_t *frame = malloc(*size);
    assert_non_null(frame);
    assert_int_equal(frame_encode(&key, &h, body, len, frame, *size), 0);
    free(body);
    return frame;
}

static herd_node_t *fz_node(uint64_t incarnation)
{
    herd_node_config_t cfg = {.name = "fzA", .clock = &ts_vclock, .seed = 1,
                              .incarnation = incarnation};
    return ts_node_new(&cfg);
}

/* Frames of fzB recorded while fzA (start 100) ran, replayed to fzA's next
 * start (200): fzB must not come up there. The HELLOs (to nobody, and to
 * fzA at no incarnation) are answered, a few times, to fzB's dead start;
 * the heartbeats to the old start, or to no start, are refused. */
static void test_membership_replayed_hello_after_restart(void **state)
{
    (void)state;
    enum { KINDS = 4 };
    uint64_t a = herd_node_id_of("fzA"), b = herd_node_id_of("fzB");
    uint8_t *rec[KINDS];
    size_t size[KINDS];
    rec[0] = recorded("fzB", 9, FRAME_HELLO, 1, 0, 0, &size[0]);    /* to a seed */
    rec[1] = recorded("fzB", 9, FRAME_HELLO, 2, a, 0, &size[1]);    /* to a suspect */
    rec[2] = recorded("fzB", 9, FRAME_HEARTBEAT, 3, a, 100, &size[2]);
    rec[3] = recorded("fzB", 9, FRAME_HEARTBEAT, 4, a, 0, &size[3]); /* to no start */

    ts_vnow = 1000;
    herd_node_t *n = fz_node(100);
    ts_fake_tr_t t;
    ts_fake_cluster(n, &t, SECRET);
    for (int k = 0; k < KINDS; k++)
        t.cb(t.data, rec[k], size[k]);
    assert_int_equal(herd_cluster_member_incarnation(n, b), 9); /* it was a member then */
    ts_node_free(n);

    ts_vnow = 5000;
    n = fz_node(200);
    ts_fake_cluster(n, &t, SECRET);
    for (int round = 0; round < 5; round++)
        for (int k = 0; k < KINDS; k++)
            t.cb(t.data, rec[k], size[k]);
    herd_member_info_t info;
    assert_int_equal(herd_cluster_member(n, b, &info), HERD_ENOENT);
    assert_int_equal(herd_cluster_members(n, NULL, 0), 1);
    assert_int_equal(herd_cluster_unconfirmed(n), 0);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_REPLAY], 10); /* the heartbeats, 5 x 2 */
    assert_int_equal(st.rejected[FRAME_REJECT_RATE], 9);    /* all HELLOs but the first */
    size_t answers;
    const ts_fake_sent_t *answer = ts_fake_sent_to(&t, FRAME_HEARTBEAT, b, &answers);
    assert_int_equal(answers, 1);
    assert_true(answer->h.receiver_inc == 9); /* to the dead start */
    assert_string_equal(answer->address, "tcp://fzB:1");

    /* a quarter heartbeat later a replay is answered once more, and no more */
    ts_vnow += 50;
    for (int k = 0; k < KINDS; k++)
        t.cb(t.data, rec[k], size[k]);
    ts_fake_sent_to(&t, FRAME_HEARTBEAT, b, &answers);
    assert_int_equal(answers, 2);
    assert_int_equal(herd_cluster_member(n, b, &info), HERD_ENOENT);

    /* fzB's real next start, answering fzA's current start, is admitted */
    size_t len;
    uint8_t *body = ts_fake_hello("fzB", &len);
    ts_fake_frame(&t, "fzB", 10, FRAME_HEARTBEAT, 1, body, len);
    free(body);
    assert_int_equal(herd_cluster_member_incarnation(n, b), 10);
    ts_node_free(n);
    for (int k = 0; k < KINDS; k++)
        free(rec[k]);
}

/* Through a whole node: a HELLO from another start of its own name is
 * answered and counted ("name"); a newer start's heartbeat to a node whose
 * name is confirmed is counted too and refuses nothing (the newer one is
 * the second node; test_membership_duplicate_name_refused refuses it). */
static void test_membership_own_name_counted_and_refusing(void **state)
{
    (void)state;
    ts_vnow = 1000;
    herd_node_t *n = fz_node(100);
    ts_fake_tr_t t;
    ts_fake_cluster(n, &t, SECRET);
    assert_int_equal(herd_cluster_identity(n, NULL, NULL, 0), HERD_IDENTITY_CONFIRMED);
    size_t len;
    uint8_t *body = ts_fake_hello("fzA", &len);
    ts_fake_frame(&t, "fzA", 300, FRAME_HELLO, 1, body, len);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_NAME], 1);
    size_t answers;
    const ts_fake_sent_t *answer =
        ts_fake_sent_to(&t, FRAME_HEARTBEAT, herd_node_id_of("fzA"), &answers);
    assert_int_equal(answers, 1);
    assert_true(answer->h.receiver_inc == 300 && answer->h.sender_inc == 100);
    /* a newer start talking to this confirmed one does not refuse it */
    ts_fake_frame(&t, "fzA", 300, FRAME_HEARTBEAT, 2, body, len);
    assert_int_equal(herd_cluster_identity(n, NULL, NULL, 0), HERD_IDENTITY_CONFIRMED);
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.rejected[FRAME_REJECT_NAME], 2);
    assert_string_equal(herd_cluster_reject_name(FRAME_REJECT_NAME), "name");
    assert_string_equal(herd_cluster_reject_name(FRAME_REJECT_RATE), "rate");
    assert_int_equal(herd_cluster_members(n, NULL, 0), 1);
    free(body);
    ts_node_free(n);
}

/* ---- prompt heartbeats ------------------------------------------------------------ */

static mship_stats_t mstats(const mship_t *m)
{
    mship_stats_t st;
    mship_stats(m, &st);
    return st;
}

/* c joins b through seed a, b being a's member already: the answer a sends
 * names b, and c heartbeats b at once; b's answer admits c at b and b at c.
 * No tick runs between the frames: nobody waits for a heartbeat period. */
static void test_membership_prompt_heartbeat_reaches_news(void **state)
{
    (void)state;
    mship_t *a = mjoiner("a", "tcp://a:1", 5, NULL);
    mship_t *b = mjoiner("b", "tcp://b:1", 6, "tcp://a:1");
    mship_t *c = mjoiner("c", "tcp://c:1", 7, "tcp://a:1");
    handshake(b, "b", 6, "tcp://b:1", a, "a", 5, "tcp://a:1", 0);
    mship_effects_t fa, fb, fc;
    mship_effects_init(&fa);
    mship_effects_init(&fb);
    mship_effects_init(&fc);
    /* 50 ms later (the next periodic heartbeats are due at 200), c says HELLO */
    assert_int_equal(mship_tick(a, 50, &fa), 0);
    assert_int_equal(mship_tick(b, 50, &fb), 0);
    mship_effects_clear(&fa);
    mship_effects_clear(&fb);
    assert_int_equal(mship_tick(c, 50, &fc), 0);
    assert_int_equal(take(a, 51, sent(&fc, FRAME_HELLO, "tcp://a:1"), "c", 7, 1, &fa, NULL), 0);
    mship_effects_clear(&fc);
    /* a's answer admits a at c, and c heartbeats b at once */
    assert_int_equal(take(c, 52, sent(&fa, FRAME_HEARTBEAT, "tcp://c:1"), "a", 5, 10, &fc,
                          NULL),
                     0);
    assert_non_null(mship_find(c, "a"));
    assert_null(mship_find(c, "b")); /* heard of, not from */
    assert_int_equal(mship_candidate_count(c), 1);
    const mship_effect_t *prompt = sent(&fc, FRAME_HEARTBEAT, "tcp://b:1");
    assert_non_null(prompt);
    assert_true(prompt->to == herd_node_id_of("b") && prompt->to_inc == 6);
    assert_int_equal(mstats(c).prompt_beats, 1);
    assert_int_equal(mstats(c).prompt_deferred, 0);
    mship_effects_clear(&fa); /* c's heartbeat back admits c at a */
    assert_int_equal(take(a, 52, sent(&fc, FRAME_HEARTBEAT, "tcp://a:1"), "c", 7, 2, &fa, NULL),
                     0);
    /* b takes it: c is up at b, and b's answer makes b up at c */
    assert_int_equal(take(b, 53, prompt, "c", 7, 3, &fb, NULL), 0);
    const mship_member_t *x = mship_find(b, "c");
    assert_non_null(x);
    assert_int_equal(x->state, MEMBER_UP);
    mship_effects_clear(&fc);
    assert_int_equal(take(c, 54, sent(&fb, FRAME_HEARTBEAT, "tcp://c:1"), "b", 6, 20, &fc,
                          NULL),
                     0);
    x = mship_find(c, "b");
    assert_non_null(x);
    assert_int_equal(x->state, MEMBER_UP);
    assert_int_equal(mship_candidate_count(c), 0);
    /* all three know each other at 54 ms, before any periodic heartbeat */
    mship_effects_clear(&fa);
    mship_effects_clear(&fb);
    assert_int_equal(mship_member_count(a), 3);
    assert_int_equal(mship_member_count(b), 3);
    assert_int_equal(mship_member_count(c), 3);
    /* the same news again sends nothing more */
    mship_t *d = mjoiner("d", "tcp://d:1", 8, "tcp://a:1");
    assert_int_equal(mship_tick(d, 60, &fc), 0);
    mship_effects_clear(&fa);
    assert_int_equal(take(a, 61, sent(&fc, FRAME_HELLO, "tcp://a:1"), "d", 8, 3, &fa, NULL), 0);
    const mship_effect_t *answer = sent(&fa, FRAME_HEARTBEAT, "tcp://d:1");
    mship_effects_t fd;
    mship_effects_init(&fd);
    assert_int_equal(take(d, 62, answer, "a", 5, 11, &fd, NULL), 0);
    assert_int_equal(mstats(d).prompt_beats, 2); /* b and c, a being the sender */
    assert_non_null(sent(&fd, FRAME_HEARTBEAT, "tcp://b:1"));
    assert_non_null(sent(&fd, FRAME_HEARTBEAT, "tcp://c:1"));
    mship_effects_clear(&fd);
    assert_int_equal(take(d, 63, answer, "a", 5, 12, &fd, NULL), 0); /* a repeat */
    assert_int_equal(mstats(d).prompt_beats, 2);
    assert_null(sent(&fd, FRAME_HEARTBEAT, "tcp://b:1"));
    assert_null(sent(&fd, FRAME_HEARTBEAT, "tcp://c:1"));
    assert_null(mship_find(d, "b")); /* gossip never admits */
    assert_int_equal(mship_candidate_count(d), 2);
    mship_effects_fini(&fa);
    mship_effects_fini(&fb);
    mship_effects_fini(&fc);
    mship_effects_fini(&fd);
    mship_free(a);
    mship_free(b);
    mship_free(c);
    mship_free(d);
}

/* A heartbeat from `from` (address tcp://FROM:1) whose gossip lists `count`
 * names prefix0.. (at tcp://NAME:1, start 3) with `status`, and `from`. */
static uint8_t *beat_listing(const char *from, const char *prefix, unsigned first,
                             unsigned count, uint8_t status, size_t *len)
{
    char name[32], address[64];
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_str(&w, "herd");
    wire_put_str(&w, from);
    snprintf(address, sizeof(address), "tcp://%s:1", from);
    wire_put_str(&w, address);
    wire_put_u32(&w, HERD_RING_DEFAULT_WEIGHT);
    wire_put_u8(&w, MEMBER_UP);
    wire_put_u8(&w, 0);
    wire_put_u16(&w, (uint16_t)count);
    for (unsigned i = first; i < first + count; i++) {
        snprintf(name, sizeof(name), "%s%u", prefix, i);
        snprintf(address, sizeof(address), "tcp://%s:1", name);
        wire_put_str(&w, name);
        wire_put_str(&w, address);
        wire_put_u64(&w, 3);
        wire_put_u32(&w, HERD_RING_DEFAULT_WEIGHT);
        wire_put_u8(&w, status);
    }
    uint8_t *body = wire_writer_take(&w, len);
    assert_non_null(body);
    return body;
}

/* Heartbeats to names in `fx` whose name starts with `prefix` (by address). */
static size_t beats_to_prefix(const mship_effects_t *fx, const char *prefix)
{
    char want[64];
    snprintf(want, sizeof(want), "tcp://%s", prefix);
    size_t n = 0;
    for (size_t i = 0; i < fx->count; i++) {
        const mship_effect_t *e = &fx->items[i];
        n += e->kind == MSHIP_SEND && e->type == FRAME_HEARTBEAT &&
             strncmp(e->address, want, strlen(want)) == 0;
    }
    return n;
}

static void receive_beat(mship_t *m, uint64_t now, const char *from, uint64_t seq,
                         const uint8_t *body, size_t len, mship_effects_t *fx)
{
    frame_header_t h = header_from(from, FRAME_HEARTBEAT, seq);
    frame_reject_t why = FRAME_OK;
    assert_int_equal(mship_receive(m, now, &h, body, len, fx, &why), 0);
}

/* However many names arrive at once, at most MSHIP_PROMPT_MAX prompt
 * heartbeats go out per heartbeat period (200 ms); the rest are counted
 * deferred and reached by the periodic heartbeat. */
static void test_membership_prompt_heartbeats_bounded(void **state)
{
    (void)state;
    mship_t *m = mnode("m", "tcp://m:1"); /* no seeds: admits at once */
    mship_effects_t fx;
    mship_effects_init(&fx);
    assert_int_equal(mship_tick(m, 0, &fx), 0);
    mship_effects_clear(&fx);
    size_t len;
    /* 40 names in one frame: 16 heartbeats at once, 24 deferred */
    uint8_t *body = beat_listing("x", "n", 0, 40, 0, &len);
    receive_beat(m, 10, "x", 1, body, len, &fx);
    free(body);
    assert_int_equal(mship_candidate_count(m), 40);
    assert_int_equal(beats_to_prefix(&fx, "n"), MSHIP_PROMPT_MAX);
    assert_int_equal(mstats(m).prompt_beats, MSHIP_PROMPT_MAX);
    assert_int_equal(mstats(m).prompt_deferred, 40 - MSHIP_PROMPT_MAX);
    mship_effects_clear(&fx);
    /* more news from many senders in the same period: nothing more at once */
    char from[16];
    for (unsigned k = 0; k < 10; k++) {
        snprintf(from, sizeof(from), "s%u", k);
        body = beat_listing(from, "p", k * 5, 5, 0, &len);
        receive_beat(m, 20 + k, from, 1, body, len, &fx);
        free(body);
    }
    assert_int_equal(beats_to_prefix(&fx, "p"), 0);
    assert_int_equal(beats_to_prefix(&fx, "n"), 0);
    assert_int_equal(mstats(m).prompt_beats, MSHIP_PROMPT_MAX);
    assert_int_equal(mstats(m).prompt_deferred, 40 - MSHIP_PROMPT_MAX + 50);
    mship_effects_clear(&fx);
    /* names gossiped down get none, and are not counted as deferred */
    body = beat_listing("x", "q", 0, 3, 2, &len);
    receive_beat(m, 30, "x", 2, body, len, &fx);
    free(body);
    assert_int_equal(beats_to_prefix(&fx, "q"), 0);
    assert_int_equal(mstats(m).prompt_deferred, 40 - MSHIP_PROMPT_MAX + 50);
    mship_effects_clear(&fx);
    /* the periodic heartbeat reaches every candidate, deferred ones too */
    assert_int_equal(mship_tick(m, 200, &fx), 0);
    assert_int_equal(beats_to_prefix(&fx, "n"), 40);
    assert_int_equal(beats_to_prefix(&fx, "p"), 50);
    assert_int_equal(beats_to_prefix(&fx, "q"), 3);
    mship_effects_clear(&fx);
    /* the next period (from the first prompt, at 10 ms) has room again */
    body = beat_listing("x", "r", 0, 20, 0, &len);
    receive_beat(m, 210, "x", 3, body, len, &fx);
    free(body);
    assert_int_equal(beats_to_prefix(&fx, "r"), MSHIP_PROMPT_MAX);
    assert_int_equal(mstats(m).prompt_beats, 2 * MSHIP_PROMPT_MAX);
    /* a second of news at a steady stream: at most 16 per 200 ms */
    mship_effects_clear(&fx);
    uint64_t before = mstats(m).prompt_beats;
    for (unsigned t = 0; t < 100; t++) {
        body = beat_listing("x", "t", t * 2, 2, 0, &len);
        receive_beat(m, 500 + t * 10, "x", 10 + t, body, len, &fx);
        free(body);
    }
    assert_true(mstats(m).prompt_beats - before <= 5 * MSHIP_PROMPT_MAX + MSHIP_PROMPT_MAX);
    assert_int_equal(beats_to_prefix(&fx, "t"), mstats(m).prompt_beats - before);
    mship_effects_fini(&fx);
    mship_free(m);
}

/* Through a whole node, the counts reach herd_cluster_stats. */
static void test_membership_prompt_counted_by_node(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("b", NULL, 1);
    ts_fake_tr_t t;
    ts_fake_cluster(n, &t, SECRET);
    ts_fake_join(&t, "x", 7, 1);
    size_t len;
    uint8_t *body = beat_listing("x", "n", 0, MSHIP_PROMPT_MAX + 3, 0, &len);
    ts_fake_frame(&t, "x", 7, FRAME_HEARTBEAT, 10, body, len);
    free(body);
    herd_cluster_stats_t st;
    assert_int_equal(herd_cluster_stats(n, &st), 0);
    assert_int_equal(st.prompt_beats, MSHIP_PROMPT_MAX);
    assert_int_equal(st.prompt_beats_deferred, 3);
    size_t to_n0;
    assert_non_null(ts_fake_sent_to(&t, FRAME_HEARTBEAT, herd_node_id_of("n0"), &to_n0));
    assert_int_equal(to_n0, 1);
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
        cmocka_unit_test(test_membership_hello_admits_nobody),
        cmocka_unit_test(test_membership_hello_answers_bounded),
        cmocka_unit_test(test_membership_duplicate_name_refused),
        cmocka_unit_test(test_membership_restart_same_address_joins_at_once),
        cmocka_unit_test(test_membership_restart_elsewhere_after_silence),
        cmocka_unit_test(test_membership_link_refused_is_down_at_once),
        cmocka_unit_test(test_membership_effect_lost_counted),
        cmocka_unit_test(test_membership_link_closed_reconnected_no_verdict),
        cmocka_unit_test(test_membership_link_silent_takes_timeouts),
        cmocka_unit_test(test_membership_link_one_bad_link_no_false_verdict),
        cmocka_unit_test_setup_teardown(test_membership_replayed_hello_after_restart, ts_setup,
                                        ts_teardown),
        cmocka_unit_test(test_membership_prompt_heartbeat_reaches_news),
        cmocka_unit_test(test_membership_prompt_heartbeats_bounded),
        cmocka_unit_test_setup_teardown(test_membership_prompt_counted_by_node, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_membership_own_name_counted_and_refusing,
                                        ts_setup, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
