/*
 * test_planner.c - the handoff planner: only what the ring moved is handed
 * off, crash restarts start where the name is owned, removed specs stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "planner.h"

static herd_ring_t *ring_of(const char *const *names, size_t n)
{
    herd_ring_t *r = herd_ring_new();
    assert_non_null(r);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(herd_ring_add(r, names[i], HERD_RING_DEFAULT_WEIGHT), 0);
    return r;
}

static const char *owner_of(const herd_ring_t *r, const char *name)
{
    const char *o;
    assert_int_equal(herd_ring_owner(r, name, strlen(name), &o), 0);
    return o;
}

#define NCHILD 6000

typedef struct fleet {
    char names[NCHILD][24];
    hoff_child_t c[NCHILD];
} fleet_t;

/* Children as node `self` sees them when every child runs on its owner of
 * ring `r`. */
static void fleet_on(fleet_t *f, const herd_ring_t *r, const char *self)
{
    for (size_t i = 0; i < NCHILD; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "counter-%zu", i);
        f->c[i] = (hoff_child_t){f->names[i], 1,
                                 strcmp(owner_of(r, f->names[i]), self) == 0, 1, NULL};
    }
}

static void test_planner_join_moves_only_what_the_ring_moved(void **state)
{
    (void)state;
    static fleet_t f;
    const char *abc[] = {"a", "b", "c"}, *abcd[] = {"a", "b", "c", "d"};
    herd_ring_t *old = ring_of(abc, 3), *cur = ring_of(abcd, 4);
    fleet_on(&f, old, "a");
    hoff_plan_t p;
    assert_int_equal(hoff_plan(old, cur, "a", f.c, NCHILD, &p), 0);
    size_t expected = 0, running = 0;
    for (size_t i = 0; i < NCHILD; i++) {
        running += f.c[i].running_here;
        expected += f.c[i].running_here && strcmp(owner_of(cur, f.names[i]), "a") != 0;
    }
    assert_int_equal(p.count, expected);
    for (size_t k = 0; k < p.count; k++) {
        assert_int_equal(p.actions[k].kind, HOFF_HANDOFF);
        assert_string_equal(p.actions[k].target, "d"); /* a join moves keys to it only */
        assert_true(f.c[p.actions[k].child].running_here);
    }
    /* about a quarter of a's children move, and far from all were looked at */
    assert_true(p.count > running / 8 && p.count < running / 2);
    assert_true(p.considered < NCHILD / 2);
    hoff_plan_free(&p);

    /* the same plan without the old ring (a periodic reconcile) */
    hoff_plan_t q;
    assert_int_equal(hoff_plan(NULL, cur, "a", f.c, NCHILD, &q), 0);
    assert_int_equal(q.count, expected);
    assert_int_equal(q.considered, NCHILD);
    hoff_plan_free(&q);
    herd_ring_free(old);
    herd_ring_free(cur);
}

static void test_planner_crash_restarts_where_owned(void **state)
{
    (void)state;
    static fleet_t f;
    const char *abc[] = {"a", "b", "c"}, *ab[] = {"a", "b"};
    herd_ring_t *old = ring_of(abc, 3), *cur = ring_of(ab, 2);
    /* c crashed: its children run nowhere visible any more */
    fleet_on(&f, old, "a");
    size_t orphans_for_a = 0;
    for (size_t i = 0; i < NCHILD; i++) {
        if (strcmp(owner_of(old, f.names[i]), "c") == 0) {
            f.c[i].running_visible = 0;
            orphans_for_a += strcmp(owner_of(cur, f.names[i]), "a") == 0;
        }
    }
    hoff_plan_t p;
    assert_int_equal(hoff_plan(old, cur, "a", f.c, NCHILD, &p), 0);
    assert_int_equal(p.count, orphans_for_a); /* a starts exactly its share of c's */
    for (size_t k = 0; k < p.count; k++) {
        const hoff_child_t *c = &f.c[p.actions[k].child];
        assert_int_equal(p.actions[k].kind, HOFF_START);
        assert_false(c->running_visible);
        assert_string_equal(owner_of(cur, c->name), "a");
    }
    assert_true(orphans_for_a > 0);
    hoff_plan_free(&p);
    herd_ring_free(old);
    herd_ring_free(cur);
}

static void test_planner_removed_spec_stops_and_others_stay(void **state)
{
    (void)state;
    const char *ab[] = {"a", "b"};
    herd_ring_t *r = ring_of(ab, 2);
    hoff_child_t c[4] = {
        {"gone", 0, 1, 1, NULL},   /* running here, spec removed: stop */
        {"ghost", 0, 0, 0, NULL},  /* spec removed, not running: nothing */
        {"elsewhere", 1, 0, 1, NULL},
        {"x", 1, 1, 1, NULL},
    };
    hoff_plan_t p;
    assert_int_equal(hoff_plan(NULL, r, "a", c, 4, &p), 0);
    size_t stops = 0;
    for (size_t k = 0; k < p.count; k++) {
        if (p.actions[k].kind == HOFF_STOP) {
            stops++;
            assert_int_equal(p.actions[k].child, 0);
        }
        assert_true(p.actions[k].child != 1 && p.actions[k].child != 2);
    }
    assert_int_equal(stops, 1);
    hoff_plan_free(&p);
    herd_ring_free(r);
}

static void test_planner_bad_input(void **state)
{
    (void)state;
    herd_ring_t *empty = herd_ring_new();
    const char *a[] = {"a"};
    herd_ring_t *r = ring_of(a, 1);
    hoff_child_t c = {"x", 1, 1, 1, NULL}, bad = {NULL, 1, 1, 1, NULL};
    hoff_plan_t p;
    assert_int_equal(hoff_plan(NULL, empty, "a", &c, 1, &p), HERD_EEMPTY);
    assert_int_equal(p.count, 0);
    assert_int_equal(hoff_plan(NULL, NULL, "a", &c, 1, &p), HERD_EINVAL);
    assert_int_equal(hoff_plan(NULL, r, NULL, &c, 1, &p), HERD_EINVAL);
    assert_int_equal(hoff_plan(NULL, r, "a", NULL, 1, &p), HERD_EINVAL);
    assert_int_equal(hoff_plan(NULL, r, "a", &bad, 1, &p), HERD_EINVAL);
    assert_null(p.actions);
    assert_int_equal(hoff_plan(empty, r, "a", &c, 1, &p), 0); /* no old ring: all */
    assert_int_equal(p.count, 0); /* x runs here and is owned here */
    hoff_plan_free(&p);
    herd_ring_free(empty);
    herd_ring_free(r);
}

/* A child with a ring of its own (its service's providers) is placed by it:
 * a node outside that ring never starts it and hands its copy to the owner
 * in that ring, even where the whole ring's diff moved nothing; an empty
 * ring (nobody provides it) starts and moves nothing. */
static void test_planner_child_ring_places_it(void **state)
{
    (void)state;
    const char *abc[] = {"a", "b", "c"}, *bc[] = {"b", "c"};
    herd_ring_t *all = ring_of(abc, 3), *providers = ring_of(bc, 2), *nobody = herd_ring_new();
    assert_non_null(nobody);
    /* names a owns on the whole ring */
    static char names[3][24];
    size_t k = 0;
    for (int i = 0; k < 3; i++) {
        snprintf(names[k], sizeof(names[k]), "svc-%d", i);
        if (strcmp(owner_of(all, names[k]), "a") == 0)
            k++;
    }
    hoff_child_t c[3] = {
        {names[0], 1, 0, 0, providers}, /* not running: b or c starts it, not a */
        {names[1], 1, 1, 1, providers}, /* runs on a: goes to its provider owner */
        {names[2], 1, 0, 0, nobody},    /* nobody provides it: nothing */
    };
    hoff_plan_t p;
    /* the same ring before and after: the diff moved nothing */
    assert_int_equal(hoff_plan(all, all, "a", c, 3, &p), 0);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.actions[0].kind, HOFF_HANDOFF);
    assert_int_equal(p.actions[0].child, 1);
    assert_string_equal(p.actions[0].target, owner_of(providers, names[1]));
    hoff_plan_free(&p);
    /* on the provider that owns names[0], it starts */
    const char *o = owner_of(providers, names[0]);
    assert_int_equal(hoff_plan(NULL, all, o, c, 1, &p), 0);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.actions[0].kind, HOFF_START);
    hoff_plan_free(&p);
    /* a removed spec still stops whatever the ring */
    hoff_child_t gone = {names[2], 0, 1, 1, nobody};
    assert_int_equal(hoff_plan(NULL, all, "a", &gone, 1, &p), 0);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.actions[0].kind, HOFF_STOP);
    hoff_plan_free(&p);
    herd_ring_free(all);
    herd_ring_free(providers);
    herd_ring_free(nobody);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planner_join_moves_only_what_the_ring_moved),
        cmocka_unit_test(test_planner_crash_restarts_where_owned),
        cmocka_unit_test(test_planner_removed_spec_stops_and_others_stay),
        cmocka_unit_test(test_planner_bad_input),
        cmocka_unit_test(test_planner_child_ring_places_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
