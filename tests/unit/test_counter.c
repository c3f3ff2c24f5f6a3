/*
 * test_counter.c - the counter service: commands, its PN-counter state, a
 * move with its state, and the merge of two copies that diverged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counter.h"

static int64_t apply(counter_state_t *c, const char *cmd)
{
    int64_t v;
    assert_int_equal(counter_apply(c, cmd, strlen(cmd), &v), 0);
    return v;
}

static counter_state_t *fresh(uint64_t self)
{
    /* an empty encoded state with this copy id */
    uint8_t enc[12] = {0};
    for (int i = 0; i < 8; i++)
        enc[i] = (uint8_t)(self >> (8 * i));
    counter_state_t *c;
    assert_int_equal(counter_decode(enc, sizeof(enc), &c), 0);
    return c;
}

/* The change since the last counter_delta, applied to the state encoded
 * then, gives the state now: own steps, a reset, another copy merged in;
 * slots that did not change are not in it; no change is an empty one; a
 * change that does not read is refused. */
static void test_counter_delta(void **state)
{
    (void)state;
    counter_state_t *c = fresh(7), *other = fresh(9);
    apply(c, "incr 5");
    apply(other, "incr 100");
    uint8_t *o_enc, *base, *delta, *out;
    size_t o_len, base_len, delta_len, out_len;
    assert_int_equal(counter_encode(other, &o_enc, &o_len), 0);
    assert_int_equal(counter_merge(c, o_enc, o_len), 0);
    free(o_enc);
    assert_int_equal(counter_delta(c, &delta, &delta_len), 0); /* everything so far */
    free(delta);
    assert_int_equal(counter_encode(c, &base, &base_len), 0);
    assert_int_equal(counter_delta(c, &delta, &delta_len), 0);
    assert_int_equal(delta_len, 12); /* nothing changed: no slot */
    free(delta);
    apply(c, "incr 3");
    apply(c, "reset"); /* own decrements grow */
    apply(c, "incr 2");
    apply(other, "incr 1");
    assert_int_equal(counter_encode(other, &o_enc, &o_len), 0);
    assert_int_equal(counter_merge(c, o_enc, o_len), 0);
    free(o_enc);
    assert_int_equal(counter_delta(c, &delta, &delta_len), 0);
    assert_int_equal(delta_len, 12 + 2 * 24); /* its own slot and copy 9's */
    assert_int_equal(counter_delta_apply(base, base_len, delta, delta_len, &out, &out_len), 0);
    counter_state_t *back;
    assert_int_equal(counter_decode(out, out_len, &back), 0);
    assert_int_equal(counter_value(back), counter_value(c));
    assert_int_equal(counter_value(back), 2 + 1); /* the reset took 108 */
    assert_int_equal(back->self, c->self);
    assert_int_equal(back->count, c->count);
    counter_free(back);
    free(out);
    static const uint8_t junk[] = {1, 2, 3};
    assert_int_equal(counter_delta_apply(base, base_len, junk, sizeof(junk), &out, &out_len),
                     HERD_EBADFRAME);
    assert_int_equal(counter_delta_apply(junk, sizeof(junk), delta, delta_len, &out, &out_len),
                     HERD_EBADFRAME);
    free(delta);
    free(base);
    counter_free(c);
    counter_free(other);
}

static void test_counter_commands(void **state)
{
    (void)state;
    counter_state_t *c = fresh(7);
    assert_int_equal(apply(c, "get"), 0);
    assert_int_equal(apply(c, "incr"), 1);
    assert_int_equal(apply(c, "incr 41"), 42);
    assert_int_equal(apply(c, "decr 50"), -8);
    assert_int_equal(apply(c, "reset"), 0);
    assert_int_equal(apply(c, "decr"), -1);
    assert_int_equal(apply(c, "reset"), 0); /* a negative value resets too */
    assert_int_equal(apply(c, "incr 3"), 3);
    const char *bad[] = {"", "inc", "incr -1", "incr 0", "incr x", "incr 5x", "get 3",
                         "reset 1", "incr ", "decr 4611686018427387905", "INCR"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 99;
        assert_int_equal(counter_apply(c, bad[i], strlen(bad[i]), &v), HERD_EINVAL);
    }
    assert_int_equal(apply(c, "get"), 3); /* bad commands changed nothing */
    counter_free(c);
}

static void test_counter_move_keeps_state_and_identity(void **state)
{
    (void)state;
    counter_state_t *c = fresh(11);
    apply(c, "incr 10");
    uint8_t *enc;
    size_t len;
    assert_int_equal(counter_encode(c, &enc, &len), 0);
    counter_state_t *moved;
    assert_int_equal(counter_decode(enc, len, &moved), 0);
    assert_int_equal(moved->self, 11);
    assert_int_equal(apply(moved, "incr 5"), 15);
    assert_int_equal(moved->count, 1); /* still one copy counting */
    /* malformed encodings */
    counter_state_t *x = NULL;
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(counter_decode(enc, cut, &x), HERD_EBADFRAME);
    assert_null(x);
    free(enc);
    counter_free(c);
    counter_free(moved);
}

/* Two copies diverge from a base of 10 (a partition): a adds 5, b adds 7 and
 * subtracts 2. Merged either way: 10 + 5 + 7 - 2 = 20, the base once. */
static void test_counter_merge_counts_the_base_once(void **state)
{
    (void)state;
    counter_state_t *base = fresh(1);
    apply(base, "incr 10");
    uint8_t *enc;
    size_t len;
    assert_int_equal(counter_encode(base, &enc, &len), 0);
    counter_state_t *a, *b;
    assert_int_equal(counter_decode(enc, len, &a), 0);
    assert_int_equal(counter_decode(enc, len, &b), 0);
    free(enc);
    b->self = 2; /* a restarted copy on the other side counts as itself */
    apply(a, "incr 5");
    apply(b, "incr 7");
    apply(b, "decr 2");
    uint8_t *ea, *eb;
    size_t la, lb;
    assert_int_equal(counter_encode(a, &ea, &la), 0);
    assert_int_equal(counter_encode(b, &eb, &lb), 0);
    assert_int_equal(counter_merge(a, eb, lb), 0);
    assert_int_equal(counter_merge(b, ea, la), 0);
    assert_int_equal(counter_value(a), 20);
    assert_int_equal(counter_value(b), 20);
    assert_int_equal(counter_merge(a, eb, lb), 0); /* merging again changes nothing */
    assert_int_equal(counter_value(a), 20);
    assert_int_equal(counter_merge(a, eb, lb - 1), HERD_EBADFRAME);
    assert_int_equal(counter_value(a), 20); /* a bad merge leaves the state */
    free(ea);
    free(eb);
    counter_free(base);
    counter_free(a);
    counter_free(b);
}

/* Encode and decode: handoff_in must take every state handoff_out writes. */
static counter_state_t *move(counter_state_t *c, uint64_t new_self)
{
    uint8_t *enc;
    size_t len;
    assert_int_equal(counter_encode(c, &enc, &len), 0);
    counter_state_t *m = NULL;
    assert_int_equal(counter_decode(enc, len, &m), 0);
    free(enc);
    m->self = new_self;
    counter_free(c);
    return m;
}

static int try_apply(counter_state_t *c, const char *cmd)
{
    int64_t v = 12345;
    int rc = counter_apply(c, cmd, strlen(cmd), &v);
    if (rc)
        assert_int_equal(v, 12345); /* an error gives no value */
    return rc;
}

/* The largest step is 2^62; step by step to INT64_MAX, then one more is
 * refused and changes nothing, before and after a move (which used to wrap
 * to INT64_MIN). */
static void test_counter_incr_stops_at_int64_max(void **state)
{
    (void)state;
    counter_state_t *c = fresh(21);
    assert_int_equal(apply(c, "incr 4611686018427387904"), 4611686018427387904ll);
    assert_int_equal(try_apply(c, "incr 4611686018427387905"), HERD_EINVAL);
    c = move(c, 22);
    assert_int_equal(apply(c, "incr 4611686018427387902"), INT64_MAX - 1);
    assert_int_equal(apply(c, "incr"), INT64_MAX);
    assert_int_equal(try_apply(c, "incr"), HERD_ERANGE);
    assert_int_equal(try_apply(c, "incr 4611686018427387904"), HERD_ERANGE);
    assert_int_equal(apply(c, "get"), INT64_MAX);
    c = move(c, 23); /* a second move, then over the limit again */
    assert_int_equal(try_apply(c, "incr"), HERD_ERANGE);
    assert_int_equal(apply(c, "decr"), INT64_MAX - 1);
    assert_int_equal(apply(c, "incr"), INT64_MAX);
    c = move(c, 24);
    assert_int_equal(apply(c, "get"), INT64_MAX);
    counter_free(c);
}

/* Down to INT64_MIN, one below is refused, and reset there works (it used to
 * negate INT64_MIN) and leaves a state that moves. */
static void test_counter_reset_at_int64_min(void **state)
{
    (void)state;
    counter_state_t *c = fresh(31);
    apply(c, "decr 4611686018427387904");
    c = move(c, 32);
    assert_int_equal(apply(c, "decr 4611686018427387904"), INT64_MIN);
    assert_int_equal(try_apply(c, "decr"), HERD_ERANGE);
    assert_int_equal(apply(c, "get"), INT64_MIN);
    c = move(c, 33);
    assert_int_equal(apply(c, "reset"), 0);
    c = move(c, 34);
    assert_int_equal(apply(c, "get"), 0);
    assert_int_equal(apply(c, "incr"), 1);
    assert_int_equal(apply(c, "decr 2"), -1);
    /* reset from the very bottom with no move in between */
    counter_state_t *d = fresh(35);
    apply(d, "decr 4611686018427387904");
    apply(d, "decr 4611686018427387904");
    assert_int_equal(apply(d, "get"), INT64_MIN);
    assert_int_equal(apply(d, "reset"), 0);
    d = move(d, 36);
    assert_int_equal(apply(d, "decr"), -1);
    counter_free(c);
    counter_free(d);
}

/* After a reset of a value near +-2^63, steps of 1 both ways still work
 * (they used to fail "value out of range": the copy's counts were full). */
static void test_counter_steps_after_reset_near_the_limits(void **state)
{
    (void)state;
    const char *fill[][2] = {{"incr 4611686018427387904", "incr 4611686018427387903"},
                             {"decr 4611686018427387904", "decr 4611686018427387904"}};
    for (int sign = 0; sign < 2; sign++) {
        counter_state_t *c = fresh(41 + (uint64_t)sign);
        for (int round = 0; round < 4; round++) {
            apply(c, fill[sign][0]);
            apply(c, fill[sign][1]); /* INT64_MAX, INT64_MIN */
            assert_int_equal(apply(c, "reset"), 0);
            assert_int_equal(apply(c, "incr"), 1);
            assert_int_equal(apply(c, "decr"), 0);
            assert_int_equal(apply(c, "decr"), -1);
            assert_int_equal(apply(c, "incr"), 0);
            c = move(c, 50 + (uint64_t)round);
        }
        for (size_t i = 0; i < c->count; i++) { /* no count past what decoding takes */
            assert_true(c->slots[i].incr <= UINT64_MAX / 2);
            assert_true(c->slots[i].decr <= UINT64_MAX / 2);
        }
        counter_free(c);
    }
}

/* Two copies that counted apart near the top merge to a sum beyond INT64_MAX:
 * get answers the limit, incr is refused, reset brings it back, and the state
 * still moves. */
static void test_counter_merge_beyond_the_range(void **state)
{
    (void)state;
    counter_state_t *a = fresh(61), *b = fresh(62);
    apply(a, "incr 4611686018427387904");
    apply(a, "incr 4611686018427387903");
    apply(b, "incr 4611686018427387904");
    apply(b, "incr 4611686018427387903");
    uint8_t *eb;
    size_t lb;
    assert_int_equal(counter_encode(b, &eb, &lb), 0);
    assert_int_equal(counter_merge(a, eb, lb), 0);
    free(eb);
    assert_int_equal(counter_value(a), INT64_MAX);
    assert_int_equal(try_apply(a, "incr"), HERD_ERANGE);
    assert_int_equal(try_apply(a, "decr"), HERD_ERANGE); /* still above the range */
    a = move(a, 63);
    assert_int_equal(apply(a, "reset"), 0);
    a = move(a, 64);
    assert_int_equal(apply(a, "incr 7"), 7);
    counter_free(a);
    counter_free(b);
}

static const char *call(herd_node_t *n, herd_pid_t p, const char *cmd, char *out, size_t cap)
{
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, p, cmd, strlen(cmd), 2000, &r), 0);
    if (r.status != 0) { /* the counter's own codes, or herd's */
        if (herd_app_error_code(r.status))
            snprintf(out, cap, "counter error %d", herd_app_error_code(r.status));
        else
            snprintf(out, cap, "error %d", r.status);
        herd_reply_free(&r);
        return out;
    }
    snprintf(out, cap, "%.*s", (int)r.len, (const char *)r.data);
    herd_reply_free(&r);
    return out;
}

static void test_counter_as_a_process(void **state)
{
    (void)state;
    herd_node_config_t cfg = {.name = "ct", .seed = 3};
    herd_node_t *n;
    assert_int_equal(herd_node_new(&cfg, &n), 0);
    herd_spawn_opts_t o = {.behaviour = &counter_behaviour};
    herd_pid_t p, q;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    char buf[64];
    assert_string_equal(call(n, p, "incr 5", buf, sizeof(buf)), "5");
    assert_string_equal(call(n, p, "nonsense", buf, sizeof(buf)), "counter error 1");
    assert_string_equal(call(n, p, "get", buf, sizeof(buf)), "5");
    /* a move: state out, a new process from it, counting on */
    uint8_t *st;
    size_t len;
    assert_int_equal(herd_state_out(n, p, &st, &len), 0);
    herd_spawn_opts_t m = {.behaviour = &counter_behaviour, .handoff_state = st,
                           .handoff_len = len};
    assert_int_equal(herd_spawn(n, &m, &q), 0);
    assert_string_equal(call(n, q, "incr", buf, sizeof(buf)), "6");
    /* the old copy went on counting meanwhile (a split): the merge counts both */
    assert_string_equal(call(n, p, "incr 10", buf, sizeof(buf)), "15");
    free(st);
    assert_int_equal(herd_state_out(n, p, &st, &len), 0);
    assert_int_equal(herd_merge_into(n, q, st, len), 0);
    free(st);
    assert_string_equal(call(n, q, "get", buf, sizeof(buf)), "16");
    herd_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_commands),
        cmocka_unit_test(test_counter_delta),
        cmocka_unit_test(test_counter_move_keeps_state_and_identity),
        cmocka_unit_test(test_counter_merge_counts_the_base_once),
        cmocka_unit_test(test_counter_as_a_process),
        cmocka_unit_test(test_counter_incr_stops_at_int64_max),
        cmocka_unit_test(test_counter_reset_at_int64_min),
        cmocka_unit_test(test_counter_steps_after_reset_near_the_limits),
        cmocka_unit_test(test_counter_merge_beyond_the_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
