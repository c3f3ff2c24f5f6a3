/*
 * test_seeds.c - seeds that change while a node runs (mship_set_seeds,
 * herd_cluster_set_seeds), as herdd --discover finds them:
 * - a node started without seeds says HELLO to a seed given later, at the
 *   next tick, and joins its cluster through it; its name stays confirmed;
 * - a seed dropped from the list is said HELLO no more, a kept one still is;
 *   members joined through a dropped seed stay;
 * - a bad list (NULL with a count, a NULL, empty or oversize address) is
 *   refused with HERD_EINVAL and the list before it stays;
 * - through a whole node: HERD_ENOENT outside a cluster, then the HELLO
 *   reaches the transport at the next poll.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "herd_runtime.h"
#include "membership.h"
#include "runtime_layers.h"
#include "support.h"

#define SECRET "test-seeds-secret-0123456789abcdef"

static mship_t *mnode(const char *name, const char *address, uint64_t inc)
{
    mship_config_t cfg = {.cluster = "herd", .name = name, .address = address,
                          .incarnation = inc};
    mship_t *m;
    assert_int_equal(mship_new(&cfg, 0, &m), 0);
    return m;
}

/* How many HELLOs to `address` among the effects, and the last one. */
static const mship_effect_t *hellos_to(const mship_effects_t *fx, const char *address,
                                       size_t *count)
{
    const mship_effect_t *last = NULL;
    *count = 0;
    for (size_t i = 0; i < fx->count; i++) {
        const mship_effect_t *e = &fx->items[i];
        if (e->kind == MSHIP_SEND && e->type == FRAME_HELLO && strcmp(e->address, address) == 0) {
            last = e;
            (*count)++;
        }
    }
    return last;
}

/* The first frame of `type` to `address` among the effects. */
static const mship_effect_t *frame_to(const mship_effects_t *fx, uint8_t type,
                                      const char *address)
{
    for (size_t i = 0; i < fx->count; i++) {
        const mship_effect_t *e = &fx->items[i];
        if (e->kind == MSHIP_SEND && e->type == type && strcmp(e->address, address) == 0)
            return e;
    }
    return NULL;
}

/* Hand `m` the frame effect `e` as node `from` at `inc` sent it. */
static void take(mship_t *m, uint64_t now, const mship_effect_t *e, const char *from,
                 uint64_t inc, uint64_t seq, mship_effects_t *out)
{
    assert_non_null(e);
    frame_header_t h = {.type = e->type, .sender = herd_node_id_of(from), .sender_inc = inc,
                        .receiver = e->to, .receiver_inc = e->to_inc, .seq = seq};
    frame_reject_t why = FRAME_OK;
    assert_int_equal(mship_receive(m, now, &h, e->body, e->len, out, &why), 0);
}

static void test_seeds_given_later_joins(void **state)
{
    (void)state;
    mship_t *a = mnode("a", "tcp://a:1", 3), *b = mnode("b", "tcp://b:1", 5);
    mship_effects_t fa, fb;
    mship_effects_init(&fa);
    mship_effects_init(&fb);
    size_t n;
    assert_int_equal(mship_seed_count(a), 0);
    assert_int_equal(mship_tick(a, 10, &fa), 0);
    assert_null(hellos_to(&fa, "tcp://b:1", &n)); /* no seed, no HELLO */
    mship_effects_clear(&fa);

    const char *seeds[] = {"tcp://b:1"};
    assert_int_equal(mship_set_seeds(a, seeds, 1), 0);
    assert_int_equal(mship_seed_count(a), 1);
    assert_int_equal(mship_tick(a, 11, &fa), 0); /* at once, not a heartbeat later */
    take(b, 11, hellos_to(&fa, "tcp://b:1", &n), "a", 3, 1, &fb);
    assert_int_equal(n, 1);
    mship_effects_clear(&fa);
    take(a, 12, frame_to(&fb, FRAME_HEARTBEAT, "tcp://a:1"), "b", 5, 1, &fa);
    mship_effects_clear(&fb);
    take(b, 12, frame_to(&fa, FRAME_HEARTBEAT, "tcp://b:1"), "a", 3, 2, &fb);
    assert_non_null(mship_find(a, "b"));
    assert_non_null(mship_find(b, "a"));
    assert_int_equal(mship_identity(a, NULL, NULL, 0), MSHIP_ID_CONFIRMED);

    /* the list emptied: b stays a member, and is heartbeaten, not HELLO'd */
    assert_int_equal(mship_set_seeds(a, NULL, 0), 0);
    mship_effects_clear(&fa);
    assert_int_equal(mship_tick(a, 500, &fa), 0);
    assert_null(hellos_to(&fa, "tcp://b:1", &n));
    assert_non_null(frame_to(&fa, FRAME_HEARTBEAT, "tcp://b:1"));
    assert_int_equal(mship_find(a, "b")->state, MEMBER_UP);
    mship_effects_fini(&fa);
    mship_effects_fini(&fb);
    mship_free(a);
    mship_free(b);
}

static void test_seeds_dropped_not_asked(void **state)
{
    (void)state;
    mship_t *a = mnode("a", "tcp://a:1", 3);
    mship_effects_t fx;
    mship_effects_init(&fx);
    size_t n;
    const char *two[] = {"tcp://x:1", "tcp://y:1"};
    assert_int_equal(mship_set_seeds(a, two, 2), 0);
    assert_int_equal(mship_tick(a, 1, &fx), 0);
    assert_non_null(hellos_to(&fx, "tcp://x:1", &n));
    assert_non_null(hellos_to(&fx, "tcp://y:1", &n));
    mship_effects_clear(&fx);

    char y[] = "tcp://y:1", z[] = "tcp://z:1"; /* the list is copied: the caller's may go */
    const char *next[] = {y, z};
    assert_int_equal(mship_set_seeds(a, next, 2), 0);
    memset(y, 'q', sizeof(y) - 1);
    memset(z, 'q', sizeof(z) - 1);
    assert_int_equal(mship_tick(a, 2, &fx), 0);
    assert_null(hellos_to(&fx, "tcp://x:1", &n));
    assert_non_null(hellos_to(&fx, "tcp://y:1", &n));
    assert_non_null(hellos_to(&fx, "tcp://z:1", &n));
    mship_effects_clear(&fx);
    /* unjoined seeds are asked again every heartbeat, no sooner */
    assert_int_equal(mship_tick(a, 3, &fx), 0);
    assert_null(hellos_to(&fx, "tcp://y:1", &n));
    assert_int_equal(mship_tick(a, 2 + 200, &fx), 0);
    assert_non_null(hellos_to(&fx, "tcp://y:1", &n));
    mship_effects_fini(&fx);
    mship_free(a);
}

static void test_seeds_bad_lists_refused(void **state)
{
    (void)state;
    mship_t *a = mnode("a", "tcp://a:1", 3);
    const char *good[] = {"tcp://g:1"};
    assert_int_equal(mship_set_seeds(a, good, 1), 0);
    char big[MSHIP_ADDR_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *oversize[] = {"tcp://h:1", big};
    const char *empty[] = {"tcp://h:1", ""};
    const char *null_one[] = {NULL};
    assert_int_equal(mship_set_seeds(a, NULL, 1), HERD_EINVAL);
    assert_int_equal(mship_set_seeds(a, oversize, 2), HERD_EINVAL);
    assert_int_equal(mship_set_seeds(a, empty, 2), HERD_EINVAL);
    assert_int_equal(mship_set_seeds(a, null_one, 1), HERD_EINVAL);
    /* the good list stands */
    assert_int_equal(mship_seed_count(a), 1);
    mship_effects_t fx;
    mship_effects_init(&fx);
    size_t n;
    assert_int_equal(mship_tick(a, 1, &fx), 0);
    assert_non_null(hellos_to(&fx, "tcp://g:1", &n));
    assert_null(hellos_to(&fx, "tcp://h:1", &n));
    /* 255 bytes is the edge, and is taken */
    big[MSHIP_ADDR_MAX] = '\0';
    const char *edge[] = {big};
    assert_int_equal(mship_set_seeds(a, edge, 1), 0);
    mship_effects_fini(&fx);
    mship_free(a);
}

/* Whether the fake transport kept a HELLO to `address`. */
static int kept_hello(const ts_fake_tr_t *t, const char *address)
{
    for (size_t i = 0; i < t->kept_count; i++)
        if (t->kept[i].h.type == FRAME_HELLO && strcmp(t->kept[i].address, address) == 0)
            return 1;
    return 0;
}

static void test_seeds_through_node(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("a", &ts_vclock, 1);
    const char *seeds[] = {"tcp://s1:1", "tcp://s2:1"};
    assert_int_equal(herd_cluster_set_seeds(n, seeds, 2), HERD_ENOENT);
    ts_fake_tr_t impl;
    ts_fake_cluster(n, &impl, SECRET);
    assert_int_equal(herd_cluster_set_seeds(n, NULL, 2), HERD_EINVAL);
    ts_fake_forget_sent(&impl);
    assert_int_equal(herd_cluster_set_seeds(n, seeds, 2), 0);
    ts_vnow += 100;
    assert_int_equal(herd_cluster_poll(n), 0);
    assert_true(kept_hello(&impl, "tcp://s1:1"));
    assert_true(kept_hello(&impl, "tcp://s2:1"));
    assert_int_equal(herd_cluster_identity(n, NULL, NULL, 0), HERD_IDENTITY_CONFIRMED);
    ts_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_given_later_joins),
        cmocka_unit_test(test_seeds_dropped_not_asked),
        cmocka_unit_test(test_seeds_bad_lists_refused),
        cmocka_unit_test_setup_teardown(test_seeds_through_node, ts_setup, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
