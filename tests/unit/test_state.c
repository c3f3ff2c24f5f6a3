/*
 * test_state.c - moving a process's state out (herd_state_out) and merging a
 * losing copy's state into the winner (herd_merge_into -> resolve_conflict).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_runtime.h"

typedef struct counter {
    int64_t value;
    int merges;
} counter_t;

static int ctr_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    counter_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return HERD_ENOMEM;
    if (len == sizeof(int64_t))
        memcpy(&c->value, arg, sizeof(int64_t));
    *state = c;
    return 0;
}

static void ctr_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    free(state);
}

static int ctr_out(herd_proc_t *self, void *state, uint8_t **out, size_t *len)
{
    (void)self;
    *out = malloc(sizeof(int64_t));
    if (*out == NULL)
        return HERD_ENOMEM;
    memcpy(*out, &((counter_t *)state)->value, sizeof(int64_t));
    *len = sizeof(int64_t);
    return 0;
}

static int ctr_merge(herd_proc_t *self, void *state, const uint8_t *other, size_t len)
{
    (void)self;
    if (len != sizeof(int64_t))
        return HERD_EINVAL; /* a malformed state crashes the winner: visible */
    int64_t v;
    memcpy(&v, other, sizeof(v));
    ((counter_t *)state)->value += v;
    ((counter_t *)state)->merges++;
    return 0;
}

/* "get" answers the value and the number of merges */
static int ctr_call(herd_proc_t *self, void *state, const herd_msg_t *m, herd_from_t from)
{
    (void)m;
    counter_t *c = state;
    int64_t ans[2] = {c->value, c->merges};
    return herd_reply(herd_proc_node(self), from, 0, ans, sizeof(ans));
}

static const herd_behaviour_t mergeable = {.name = "mergeable",
                                           .init = ctr_init,
                                           .handle_call = ctr_call,
                                           .terminate = ctr_terminate,
                                           .handoff_out = ctr_out,
                                           .resolve_conflict = ctr_merge};

static const herd_behaviour_t plain = {.name = "plain",
                                       .init = ctr_init,
                                       .handle_call = ctr_call,
                                       .terminate = ctr_terminate};

static herd_pid_t spawn_with(herd_node_t *n, const herd_behaviour_t *b, int64_t v)
{
    herd_spawn_opts_t o = {.behaviour = b, .arg = &v, .arg_len = sizeof(v)};
    herd_pid_t p;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

static void get(herd_node_t *n, herd_pid_t p, int64_t *value, int64_t *merges)
{
    herd_reply_t r;
    assert_int_equal(herd_node_call(n, p, "get", 3, 2000, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, 2 * sizeof(int64_t));
    int64_t ans[2];
    memcpy(ans, r.data, sizeof(ans));
    herd_reply_free(&r);
    *value = ans[0];
    *merges = ans[1];
}

static herd_node_t *node(void)
{
    herd_node_config_t c = {.name = "st", .seed = 7};
    herd_node_t *n;
    assert_int_equal(herd_node_new(&c, &n), 0);
    return n;
}

static void test_state_out_and_merge(void **state)
{
    (void)state;
    herd_node_t *n = node();
    herd_pid_t loser = spawn_with(n, &mergeable, 5), winner = spawn_with(n, &mergeable, 7);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(herd_state_out(n, loser, &bytes, &len), 0);
    assert_int_equal(len, sizeof(int64_t));
    assert_int_equal(herd_merge_into(n, winner, bytes, len), 0);
    free(bytes);
    int64_t v, merges;
    get(n, winner, &v, &merges);
    assert_int_equal(v, 12);
    assert_int_equal(merges, 1);
    get(n, loser, &v, &merges); /* the loser is untouched until it is stopped */
    assert_int_equal(v, 5);
    herd_node_free(n);
}

static void test_state_bad_paths(void **state)
{
    (void)state;
    herd_node_t *n = node();
    herd_pid_t p = spawn_with(n, &plain, 3), m = spawn_with(n, &mergeable, 1);
    uint8_t *bytes = NULL;
    size_t len = 0;
    /* no handoff_out */
    assert_int_equal(herd_state_out(n, p, &bytes, &len), HERD_EINVAL);
    /* a winner without resolve_conflict ignores the merge, and lives on */
    int64_t two = 2, v, merges;
    assert_int_equal(herd_merge_into(n, p, (const uint8_t *)&two, sizeof(two)), 0);
    get(n, p, &v, &merges);
    assert_int_equal(v, 3);
    assert_true(herd_is_alive(n, p));
    /* a malformed state crashes the winner's resolve_conflict: it exits */
    assert_int_equal(herd_merge_into(n, m, (const uint8_t *)"x", 1), 0);
    herd_node_run_for(n, 50);
    assert_false(herd_is_alive(n, m));
    /* dead pids */
    assert_int_equal(herd_state_out(n, m, &bytes, &len), HERD_ENOPROC);
    assert_int_equal(herd_merge_into(n, m, (const uint8_t *)&two, sizeof(two)), HERD_ENOPROC);
    herd_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_out_and_merge),
        cmocka_unit_test(test_state_bad_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
