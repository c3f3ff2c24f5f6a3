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

static const char *call(herd_node_t *n, herd_pid_t p, const char *cmd, char *out, size_t cap)
{
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, p, cmd, strlen(cmd), 2000, &r), 0);
    if (r.status != 0) {
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
    assert_string_equal(call(n, p, "nonsense", buf, sizeof(buf)), "error -1");
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
        cmocka_unit_test(test_counter_move_keeps_state_and_identity),
        cmocka_unit_test(test_counter_merge_counts_the_base_once),
        cmocka_unit_test(test_counter_as_a_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
