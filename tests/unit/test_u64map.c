/*
 * test_u64map.c - unit tests for the runtime's open-addressing map
 * (runtime/u64map.h).
 *
 * Besides the plain operations, the map's one hard part is deletion by
 * backward shifting: a wrong shift leaves an entry behind a hole where lookups
 * stop, so the entry silently disappears. The churn tests run hundreds of
 * thousands of random puts and deletes against a plain array model and check
 * every answer, the count and a full iteration at regular points, over a key
 * space small enough that the table stays crowded and probe runs wrap around.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_error.h"
#include "u64map.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A distinct non-NULL pointer value for (key, generation). */
static void *val_of(uint64_t key, uint64_t gen)
{
    return (void *)(uintptr_t)(((key * 1315423911u) ^ (gen << 1)) | 1u);
}

static size_t capacity(const u64map_t *m)
{
    return m->slots ? m->mask + 1 : 0;
}

static void assert_shape(const u64map_t *m)
{
    if (m->slots == NULL) {
        assert_int_equal(m->count, 0);
        return;
    }
    size_t cap = capacity(m);
    assert_true(cap >= 1);
    assert_int_equal(cap & (cap - 1), 0); /* a power of two */
    assert_true(m->count < cap);          /* at least one empty slot */
    size_t used = 0;
    for (size_t i = 0; i < cap; i++)
        used += m->slots[i].key != 0;
    assert_int_equal(used, m->count);
}

/* ---- plain operations --------------------------------------------------- */

static void test_u64map_empty(void **st)
{
    (void)st;
    u64map_t m;
    u64map_init(&m);
    assert_int_equal(m.count, 0);
    assert_null(u64map_get(&m, 1));
    assert_null(u64map_get(&m, UINT64_MAX));
    assert_null(u64map_del(&m, 1));
    size_t cur = 0;
    assert_null(u64map_next(&m, &cur));
    assert_null(u64map_next(&m, &cur));
    u64map_fini(&m);
    u64map_fini(&m); /* fini leaves an empty map: again is harmless */
    assert_int_equal(m.count, 0);
}

static void test_u64map_put_get(void **st)
{
    (void)st;
    u64map_t m;
    u64map_init(&m);
    for (uint64_t k = 1; k <= 100; k++) {
        assert_int_equal(u64map_put(&m, k, val_of(k, 0)), 0);
        assert_int_equal(m.count, k);
    }
    for (uint64_t k = 1; k <= 100; k++)
        assert_ptr_equal(u64map_get(&m, k), val_of(k, 0));
    assert_null(u64map_get(&m, 101));
    assert_null(u64map_get(&m, 1000000));
    /* extreme keys */
    assert_int_equal(u64map_put(&m, UINT64_MAX, val_of(7, 7)), 0);
    assert_int_equal(u64map_put(&m, 1ull << 63, val_of(8, 8)), 0);
    assert_ptr_equal(u64map_get(&m, UINT64_MAX), val_of(7, 7));
    assert_ptr_equal(u64map_get(&m, 1ull << 63), val_of(8, 8));
    assert_int_equal(m.count, 102);
    assert_shape(&m);
    u64map_fini(&m);
}

static void test_u64map_replace_keeps_count(void **st)
{
    (void)st;
    u64map_t m;
    u64map_init(&m);
    assert_int_equal(u64map_put(&m, 42, val_of(42, 0)), 0);
    assert_int_equal(u64map_put(&m, 43, val_of(43, 0)), 0);
    assert_int_equal(u64map_put(&m, 42, val_of(42, 1)), 0);
    assert_int_equal(m.count, 2);
    assert_ptr_equal(u64map_get(&m, 42), val_of(42, 1));
    assert_ptr_equal(u64map_get(&m, 43), val_of(43, 0));
    /* replacing many times never grows the count */
    for (uint64_t g = 2; g < 1000; g++)
        assert_int_equal(u64map_put(&m, 42, val_of(42, g)), 0);
    assert_int_equal(m.count, 2);
    assert_ptr_equal(u64map_get(&m, 42), val_of(42, 999));
    assert_ptr_equal(u64map_del(&m, 42), val_of(42, 999));
    assert_int_equal(m.count, 1);
    assert_null(u64map_get(&m, 42));
    u64map_fini(&m);
}

static void test_u64map_del(void **st)
{
    (void)st;
    u64map_t m;
    u64map_init(&m);
    for (uint64_t k = 1; k <= 64; k++)
        assert_int_equal(u64map_put(&m, k, val_of(k, 0)), 0);
    /* delete the odd keys */
    for (uint64_t k = 1; k <= 64; k += 2) {
        assert_ptr_equal(u64map_del(&m, k), val_of(k, 0));
        assert_null(u64map_get(&m, k));
        assert_null(u64map_del(&m, k)); /* twice: absent */
    }
    assert_int_equal(m.count, 32);
    for (uint64_t k = 2; k <= 64; k += 2)
        assert_ptr_equal(u64map_get(&m, k), val_of(k, 0));
    assert_null(u64map_del(&m, 9999)); /* never present */
    assert_int_equal(m.count, 32);
    assert_shape(&m);
    u64map_fini(&m);
}

static void test_u64map_key_zero_rejected(void **st)
{
    (void)st;
    u64map_t m;
    u64map_init(&m);
    assert_int_equal(u64map_put(&m, 0, val_of(0, 0)), HERD_EINVAL);
    assert_int_equal(m.count, 0);
    assert_null(u64map_get(&m, 0));
    assert_null(u64map_del(&m, 0));
    for (uint64_t k = 1; k <= 20; k++)
        assert_int_equal(u64map_put(&m, k, val_of(k, 0)), 0);
    assert_int_equal(u64map_put(&m, 0, val_of(0, 1)), HERD_EINVAL);
    assert_int_equal(m.count, 20);
    assert_null(u64map_get(&m, 0));
    assert_null(u64map_del(&m, 0));
    assert_int_equal(m.count, 20);
    for (uint64_t k = 1; k <= 20; k++)
        assert_ptr_equal(u64map_get(&m, k), val_of(k, 0));
    assert_shape(&m);
    u64map_fini(&m);
}

static void test_u64map_iterate_each_once(void **st)
{
    (void)st;
    enum { N = 1000 };
    u64map_t m;
    u64map_init(&m);
    uint64_t seed = 7;
    uint64_t *keys = calloc(N, sizeof(*keys));
    assert_non_null(keys);
    for (size_t i = 0; i < N; i++) {
        keys[i] = rng_next(&seed) | 1; /* non-zero, random 64-bit */
        assert_int_equal(u64map_put(&m, keys[i], val_of(keys[i], i)), 0);
    }
    assert_int_equal(m.count, N);

    /* every key exactly once, with its value */
    uint8_t *seen = calloc(N, 1);
    assert_non_null(seen);
    size_t cur = 0, n = 0;
    u64map_slot_t *s;
    while ((s = u64map_next(&m, &cur)) != NULL) {
        size_t idx = N;
        for (size_t i = 0; i < N; i++)
            if (keys[i] == s->key) idx = i;
        assert_true(idx < N);
        assert_int_equal(seen[idx], 0);
        seen[idx] = 1;
        assert_ptr_equal(s->value, val_of(keys[idx], idx));
        n++;
    }
    assert_int_equal(n, N);
    assert_null(u64map_next(&m, &cur)); /* stays at the end */

    /* after deleting every other key the iteration shows exactly the rest */
    for (size_t i = 0; i < N; i += 2)
        assert_ptr_equal(u64map_del(&m, keys[i]), val_of(keys[i], i));
    memset(seen, 0, N);
    cur = 0;
    n = 0;
    while ((s = u64map_next(&m, &cur)) != NULL) {
        size_t idx = N;
        for (size_t i = 1; i < N; i += 2)
            if (keys[i] == s->key) idx = i;
        assert_true(idx < N);
        assert_int_equal(seen[idx], 0);
        seen[idx] = 1;
        n++;
    }
    assert_int_equal(n, N / 2);
    assert_int_equal(m.count, N / 2);

    /* the iteration's slot values may be updated in place */
    cur = 0;
    while ((s = u64map_next(&m, &cur)) != NULL)
        s->value = val_of(s->key, 12345);
    for (size_t i = 1; i < N; i += 2)
        assert_ptr_equal(u64map_get(&m, keys[i]), val_of(keys[i], 12345));

    free(seen);
    free(keys);
    u64map_fini(&m);
}

static void test_u64map_growth(void **st)
{
    (void)st;
    enum { N = 100000 };
    u64map_t m;
    u64map_init(&m);
    size_t last_cap = 0, grows = 0;
    for (uint64_t k = 1; k <= N; k++) {
        assert_int_equal(u64map_put(&m, k, val_of(k, 0)), 0);
        size_t cap = capacity(&m);
        assert_true(cap >= last_cap); /* never shrinks on insert */
        if (cap != last_cap) grows++;
        last_cap = cap;
        assert_true(m.count < cap);
        /* spot-check an early key survives every rehash */
        assert_ptr_equal(u64map_get(&m, 1), val_of(1, 0));
    }
    assert_int_equal(m.count, N);
    assert_true(capacity(&m) > N);
    assert_true(grows >= 10); /* it grew geometrically from a small table */
    assert_shape(&m);
    for (uint64_t k = 1; k <= N; k++)
        assert_ptr_equal(u64map_get(&m, k), val_of(k, 0));
    assert_null(u64map_get(&m, N + 1));

    /* empty it completely, then reuse */
    for (uint64_t k = N; k >= 1; k--)
        assert_ptr_equal(u64map_del(&m, k), val_of(k, 0));
    assert_int_equal(m.count, 0);
    size_t cur = 0;
    assert_null(u64map_next(&m, &cur));
    for (uint64_t k = 1; k <= 100; k++)
        assert_null(u64map_get(&m, k));
    assert_int_equal(u64map_put(&m, 5, val_of(5, 1)), 0);
    assert_ptr_equal(u64map_get(&m, 5), val_of(5, 1));
    assert_int_equal(m.count, 1);
    u64map_fini(&m);
}

/* ---- churn against a model ---------------------------------------------- */

/* Model: keys are keyspace[i] for i < nkeys; model[i] is the value or NULL. */
static void check_full(const u64map_t *m, const uint64_t *keyspace, void *const *model,
                       size_t nkeys)
{
    size_t live = 0;
    for (size_t i = 0; i < nkeys; i++) {
        assert_ptr_equal(u64map_get(m, keyspace[i]), model[i]);
        live += model[i] != NULL;
    }
    assert_int_equal(m->count, live);
    assert_shape(m);
    /* the iteration yields exactly the live keys, each once */
    size_t cur = 0, n = 0;
    u64map_slot_t *s;
    while ((s = u64map_next(m, &cur)) != NULL) {
        size_t idx = nkeys;
        for (size_t i = 0; i < nkeys; i++)
            if (keyspace[i] == s->key) idx = i;
        assert_true(idx < nkeys);
        assert_ptr_equal(s->value, model[idx]);
        n++;
    }
    assert_int_equal(n, live);
}

/* `ops` random operations over `nkeys` keys; sequential keys when `dense`. */
static void churn(uint64_t seed, size_t nkeys, size_t ops, int dense, size_t full_every)
{
    uint64_t *keyspace = calloc(nkeys, sizeof(*keyspace));
    void **model = calloc(nkeys, sizeof(*model));
    assert_non_null(keyspace);
    assert_non_null(model);
    uint64_t ks = seed ^ 0xabcdef;
    for (size_t i = 0; i < nkeys; i++) {
        if (dense) {
            keyspace[i] = i + 1;
        } else {
            uint64_t k;
            int dup;
            do {
                k = rng_next(&ks);
                dup = k == 0;
                for (size_t j = 0; j < i && !dup; j++)
                    dup = keyspace[j] == k;
            } while (dup);
            keyspace[i] = k;
        }
    }

    u64map_t m;
    u64map_init(&m);
    uint64_t s = seed;
    for (size_t op = 0; op < ops; op++) {
        uint64_t r = rng_next(&s);
        size_t i = (size_t)((r >> 8) % nkeys);
        uint64_t key = keyspace[i];
        unsigned what = (unsigned)(r & 0xff);
        if (what < 120) { /* put (insert or replace) */
            void *v = val_of(key, op);
            assert_int_equal(u64map_put(&m, key, v), 0);
            model[i] = v;
        } else if (what < 220) { /* delete */
            assert_ptr_equal(u64map_del(&m, key), model[i]);
            model[i] = NULL;
        } else { /* lookup */
            assert_ptr_equal(u64map_get(&m, key), model[i]);
        }
        if ((op + 1) % full_every == 0) check_full(&m, keyspace, model, nkeys);
    }
    check_full(&m, keyspace, model, nkeys);

    /* drain in random order, checking the rest after each batch */
    size_t left = m.count;
    while (left > 0) {
        size_t i = (size_t)(rng_next(&s) % nkeys);
        if (model[i] == NULL) continue;
        assert_ptr_equal(u64map_del(&m, keyspace[i]), model[i]);
        model[i] = NULL;
        left--;
        if (left % 64 == 0) check_full(&m, keyspace, model, nkeys);
    }
    assert_int_equal(m.count, 0);
    u64map_fini(&m);
    free(model);
    free(keyspace);
}

/* A tiny key space: the table stays at 16-64 slots, crowded, and the probe
 * runs wrap around the end of the slot array all the time. */
static void test_u64map_churn_small_table(void **st)
{
    (void)st;
    churn(1, 12, 50000, 1, 97);
    churn(2, 24, 50000, 0, 101);
    churn(3, 47, 50000, 0, 103);
}

/* 200k random operations over 2,000 random 64-bit keys. */
static void test_u64map_churn_random_keys(void **st)
{
    (void)st;
    churn(42, 2000, 200000, 0, 20000);
}

/* 200k random operations over sequential keys, like process serials. */
static void test_u64map_churn_sequential_keys(void **st)
{
    (void)st;
    churn(4242, 3000, 200000, 1, 25000);
}

/* Serials only grow: a sliding window of live keys, as the process table sees
 * while processes are spawned and exit. The table must not fill up with
 * leftovers (no tombstones), so its capacity stays bounded. */
static void test_u64map_sliding_window_stays_small(void **st)
{
    (void)st;
    enum { WINDOW = 500, TOTAL = 300000 };
    u64map_t m;
    u64map_init(&m);
    size_t max_cap = 0;
    for (uint64_t k = 1; k <= TOTAL; k++) {
        assert_int_equal(u64map_put(&m, k, val_of(k, 0)), 0);
        if (k > WINDOW) {
            assert_ptr_equal(u64map_del(&m, k - WINDOW), val_of(k - WINDOW, 0));
            assert_null(u64map_get(&m, k - WINDOW));
        }
        if (capacity(&m) > max_cap) max_cap = capacity(&m);
    }
    assert_int_equal(m.count, WINDOW);
    assert_true(max_cap <= 4 * WINDOW);
    for (uint64_t k = TOTAL - WINDOW + 1; k <= TOTAL; k++)
        assert_ptr_equal(u64map_get(&m, k), val_of(k, 0));
    assert_shape(&m);
    u64map_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64map_empty),
        cmocka_unit_test(test_u64map_put_get),
        cmocka_unit_test(test_u64map_replace_keeps_count),
        cmocka_unit_test(test_u64map_del),
        cmocka_unit_test(test_u64map_key_zero_rejected),
        cmocka_unit_test(test_u64map_iterate_each_once),
        cmocka_unit_test(test_u64map_growth),
        cmocka_unit_test(test_u64map_churn_small_table),
        cmocka_unit_test(test_u64map_churn_random_keys),
        cmocka_unit_test(test_u64map_churn_sequential_keys),
        cmocka_unit_test(test_u64map_sliding_window_stays_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
