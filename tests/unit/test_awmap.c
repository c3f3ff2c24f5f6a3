/*
 * test_awmap.c - unit tests for the add-wins map under the registry
 * (registry/awmap.h).
 *
 * Each "replica" here is its own map with its own replica id interned, as the
 * registry will run them; deltas travel between them by awmap_join. The
 * tests pin the CRDT's rules one at a time (per-dot removes, supersede,
 * add-wins, a remove that arrives before its add, idempotence, intervals,
 * causal-context folding, observers), a join that runs out of memory at
 * every one of its allocations in turn, then the wire codec: round trips of
 * states and deltas, and hostile input. Malformed encodings are written by a
 * small builder that test_builder_matches_encoder checks against
 * awmap_encode, so the bad-input cases differ from a valid encoding in exactly
 * the field they name. Every decode reads a heap buffer of exactly the input's
 * size, so the sanitizer build catches a read past it, and LeakSanitizer
 * catches a decoder that leaks on the error path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "awmap.h"
#include "herd_error.h"
#include "recmem.h"
#include "wire.h"

/* ---- helpers ---------------------------------------------------------------- */

static awmap_replica_id_t rid(uint64_t node, uint64_t inc)
{
    return (awmap_replica_id_t){node, inc};
}

/* A state map with replica `id` interned (as index 0). */
static awmap_t *replica_new(awmap_replica_id_t id)
{
    awmap_t *m = awmap_new();
    assert_non_null(m);
    uint32_t idx = 99;
    assert_int_equal(awmap_replica(m, id, &idx), 0);
    assert_int_equal(idx, 0);
    return m;
}

static awmap_t *delta_new(void)
{
    awmap_t *d = awmap_new_delta();
    assert_non_null(d);
    return d;
}

/* The index of `id` in `m`, which must know it. */
static uint32_t index_of(const awmap_t *m, awmap_replica_id_t id)
{
    for (uint32_t i = 0; i < awmap_replica_count(m); i++) {
        awmap_replica_id_t x = awmap_replica_id(m, i);
        if (x.node == id.node && x.incarnation == id.incarnation)
            return i;
    }
    fail_msg("replica (%llu, %llu) unknown", (unsigned long long)id.node,
             (unsigned long long)id.incarnation);
    return UINT32_MAX;
}

/* Add key=value (strings) under replica index `r`; returns the new dot. */
static awmap_dot_t add_s(awmap_t *m, uint32_t r, const char *key, const char *value,
                         const awmap_dot_t *sup, size_t n, awmap_t *delta,
                         const awmap_observer_t *obs)
{
    awmap_dot_t dot = {AWMAP_REPLICAS_MAX - 1, 0};
    assert_int_equal(awmap_add(m, r, key, strlen(key), value, strlen(value), sup, n, delta, obs,
                               &dot),
                     0);
    assert_int_not_equal(dot.counter, 0);
    return dot;
}

static void remove_s(awmap_t *m, const char *key, const awmap_dot_t *dots, size_t n,
                     awmap_t *delta, const awmap_observer_t *obs)
{
    assert_int_equal(awmap_remove(m, key, strlen(key), dots, n, delta, obs), 0);
}

static size_t count_entries(const awmap_entry_t *e)
{
    size_t n = 0;
    for (; e; e = awmap_next(e))
        n++;
    return n;
}

/* The entry of `key` in `m` with dot (id, counter), or NULL. */
static const awmap_entry_t *find_entry(const awmap_t *m, const char *key,
                                       awmap_replica_id_t id, uint64_t counter)
{
    for (const awmap_entry_t *e = awmap_get(m, key, strlen(key)); e; e = awmap_next(e)) {
        awmap_replica_id_t x = awmap_replica_id(m, e->dot.replica);
        if (x.node == id.node && x.incarnation == id.incarnation && e->dot.counter == counter)
            return e;
    }
    return NULL;
}

static void assert_entry(const awmap_t *m, const char *key, awmap_replica_id_t id,
                         uint64_t counter, const char *value)
{
    const awmap_entry_t *e = find_entry(m, key, id, counter);
    if (e == NULL)
        fail_msg("no entry %s/(%llu,%llu):%llu", key, (unsigned long long)id.node,
                 (unsigned long long)id.incarnation, (unsigned long long)counter);
    assert_int_equal(e->len, strlen(value));
    assert_memory_equal(e->value, value, e->len);
}

/* A fresh map of the same kind holding what `m` holds (join into empty). */
static awmap_t *clone_state(const awmap_t *m)
{
    awmap_t *c = awmap_new();
    assert_non_null(c);
    assert_int_equal(awmap_join_full(c, m, NULL), 0);
    return c;
}

static awmap_t *clone_delta(const awmap_t *d)
{
    awmap_t *c = delta_new();
    assert_int_equal(awmap_join(c, d, NULL), 0);
    return c;
}

/* Listed keys (including a delta's empty ones), as one sorted '|'-joined
 * string, for comparing key sets. */
typedef struct keylist {
    char *names[64];
    size_t n;
} keylist_t;

static int collect_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)e;
    keylist_t *kl = data;
    assert_true(kl->n < 64);
    char *s = malloc(klen + 1);
    assert_non_null(s);
    memcpy(s, key, klen);
    s[klen] = '\0';
    kl->names[kl->n++] = s;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keys_string(const awmap_t *m, char *out, size_t cap)
{
    keylist_t kl = {.n = 0};
    assert_int_equal(awmap_foreach(m, collect_key, &kl), 0);
    qsort(kl.names, kl.n, sizeof(char *), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < kl.n; i++) {
        strncat(out, kl.names[i], cap - strlen(out) - 1);
        strncat(out, "|", cap - strlen(out) - 1);
        free(kl.names[i]);
    }
}

/* ---- observers ---------------------------------------------------------------- */

typedef struct event {
    char kind; /* '+' or '-' */
    char key[AWMAP_KEY_MAX + 1];
    awmap_replica_id_t id;
    uint64_t counter;
    char value[32];
} event_t;

typedef struct recorder {
    const awmap_t *m; /* the map whose entries the events name */
    event_t ev[32];
    size_t n;
} recorder_t;

static void record(recorder_t *r, char kind, const char *key, size_t klen, const awmap_entry_t *e)
{
    assert_true(r->n < 32);
    event_t *ev = &r->ev[r->n++];
    ev->kind = kind;
    assert_true(klen <= AWMAP_KEY_MAX);
    memcpy(ev->key, key, klen);
    ev->key[klen] = '\0';
    ev->id = awmap_replica_id(r->m, e->dot.replica);
    ev->counter = e->dot.counter;
    assert_true(e->len < sizeof(ev->value));
    memcpy(ev->value, e->value, e->len);
    ev->value[e->len] = '\0';
}

static void on_added(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    record(data, '+', key, klen, e);
}

static void on_removed(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    record(data, '-', key, klen, e);
}

static awmap_observer_t observer_for(recorder_t *r, const awmap_t *m)
{
    memset(r, 0, sizeof(*r));
    r->m = m;
    return (awmap_observer_t){on_added, on_removed, r};
}

static void assert_event(const recorder_t *r, size_t i, char kind, const char *key,
                         awmap_replica_id_t id, uint64_t counter, const char *value)
{
    assert_true(i < r->n);
    const event_t *ev = &r->ev[i];
    if (ev->kind != kind || strcmp(ev->key, key) != 0 || ev->id.node != id.node ||
        ev->id.incarnation != id.incarnation || ev->counter != counter ||
        strcmp(ev->value, value) != 0)
        fail_msg("event %zu: got %c %s (%llu,%llu):%llu=%s, want %c %s (%llu,%llu):%llu=%s", i,
                 ev->kind, ev->key, (unsigned long long)ev->id.node,
                 (unsigned long long)ev->id.incarnation, (unsigned long long)ev->counter,
                 ev->value, kind, key, (unsigned long long)id.node,
                 (unsigned long long)id.incarnation, (unsigned long long)counter, value);
}

/* ---- allocation failures --------------------------------------------------------- */

/* test_awmap links with --wrap for the allocator (tests/CMakeLists.txt), so
 * every allocation of the map goes through here. Armed, the n-th allocation
 * from now fails, and with `g_fail.sticky` every one after it too. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);

static struct {
    long left; /* allocations that succeed before the failure; -1: disarmed */
    int sticky, fired;
} g_fail = {-1, 0, 0};

static int alloc_fails(void)
{
    if (g_fail.left < 0)
        return 0;
    if (g_fail.left > 0) {
        g_fail.left--;
        return 0;
    }
    g_fail.fired = 1;
    if (!g_fail.sticky)
        g_fail.left = -1;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    return alloc_fails() ? NULL : __real_aligned_alloc(align, n);
}

static void fail_alloc_after(long n, int sticky)
{
    g_fail.left = n;
    g_fail.sticky = sticky;
    g_fail.fired = 0;
}

static void fail_alloc_off(void)
{
    g_fail.left = -1;
}

/* ---- wire helpers ---------------------------------------------------------------- */

/* awmap_encode into a heap buffer of exactly the encoding's size. */
static uint8_t *encode(const awmap_t *m, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    awmap_encode(m, &w);
    assert_int_equal(w.err, 0);
    uint8_t *buf = wire_writer_take(&w, len);
    assert_non_null(buf);
    uint8_t *exact = malloc(*len ? *len : 1);
    assert_non_null(exact);
    memcpy(exact, buf, *len);
    free(buf);
    return exact;
}

/* Decode `len` bytes from an exact heap copy; *consumed gets the reader's
 * offset. On error *out must stay as it was. */
static int decode_n(const uint8_t *data, size_t len, awmap_t **out, size_t *consumed)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    wire_reader_t r;
    wire_reader_init(&r, copy, len);
    awmap_t *sentinel = (awmap_t *)(uintptr_t)0x5a5a;
    *out = sentinel;
    int rc = awmap_decode(&r, out);
    if (rc != 0)
        assert_ptr_equal(*out, sentinel);
    else
        assert_ptr_not_equal(*out, sentinel);
    if (consumed)
        *consumed = r.off;
    free(copy);
    return rc;
}

/* Encode, decode, and check the copy: equal entries and context, same kind,
 * same listed keys, the whole encoding read. Returns the copy. */
static awmap_t *round_trip(const awmap_t *m)
{
    size_t len, used;
    uint8_t *buf = encode(m, &len);
    awmap_t *c = NULL;
    int rc = decode_n(buf, len, &c, &used);
    if (rc != 0)
        fail_msg("decode of a valid encoding (%zu bytes) failed: %d", len, rc);
    assert_int_equal(used, len);
    assert_true(awmap_equal(m, c));
    assert_true(awmap_equal(c, m));
    assert_int_equal(awmap_key_count(c), awmap_key_count(m));
    assert_int_equal(awmap_entry_count(c), awmap_entry_count(m));
    char ka[2048], kb[2048];
    keys_string(m, ka, sizeof ka);
    keys_string(c, kb, sizeof kb);
    assert_string_equal(ka, kb);
    /* the kind survives: re-encoding starts with the same byte */
    size_t len2;
    uint8_t *buf2 = encode(c, &len2);
    assert_int_equal(len2, len);
    assert_int_equal(buf2[0], buf[0]);
    free(buf2);
    free(buf);
    return c;
}

/* A writer for hand-made encodings (layout pinned by
 * test_builder_matches_encoder): u8 is_delta; u32 replicas; per replica u64
 * node, u64 incarnation, u64 vv, u32 cloud count, u64 cloud...; u32 keys; per
 * key bytes name, u16 entries; per entry u32 replica, u64 counter, bytes value. */
static void b_head(wire_writer_t *w, uint8_t is_delta, uint32_t replicas)
{
    wire_writer_init(w);
    wire_put_u8(w, is_delta);
    wire_put_u32(w, replicas);
}

static void b_replica(wire_writer_t *w, uint64_t node, uint64_t inc, uint64_t vv, uint32_t cn,
                      const uint64_t *cloud)
{
    wire_put_u64(w, node);
    wire_put_u64(w, inc);
    wire_put_u64(w, vv);
    wire_put_u32(w, cn);
    for (uint32_t i = 0; i < cn; i++)
        wire_put_u64(w, cloud[i]);
}

static void b_key(wire_writer_t *w, const char *name, size_t klen, uint16_t entries)
{
    wire_put_bytes(w, name, klen);
    wire_put_u16(w, entries);
}

static void b_entry(wire_writer_t *w, uint32_t replica, uint64_t counter, const char *value)
{
    wire_put_u32(w, replica);
    wire_put_u64(w, counter);
    wire_put_bytes(w, value, strlen(value));
}

/* Decode the builder's bytes; expect `want`. */
static void expect_decode(wire_writer_t *w, int want, const char *what)
{
    assert_int_equal(w->err, 0);
    size_t len;
    uint8_t *buf = wire_writer_take(w, &len);
    assert_non_null(buf);
    awmap_t *m = NULL;
    int rc = decode_n(buf, len, &m, NULL);
    if (rc == 0)
        awmap_free(m);
    free(buf);
    if (rc != want)
        fail_msg("%s: decode gave %d, want %d", what, rc, want);
}

/* ---- replicas ------------------------------------------------------------------- */

static void test_replica_interning(void **state)
{
    (void)state;
    awmap_t *m = awmap_new();
    assert_non_null(m);
    assert_int_equal(awmap_replica_count(m), 0);
    uint32_t a, b, c, again;
    assert_int_equal(awmap_replica(m, rid(1, 1), &a), 0);
    assert_int_equal(awmap_replica(m, rid(1, 2), &b), 0); /* new incarnation: new replica */
    assert_int_equal(awmap_replica(m, rid(2, 1), &c), 0);
    assert_int_equal(awmap_replica(m, rid(1, 2), &again), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(c, 2);
    assert_int_equal(again, b);
    assert_int_equal(awmap_replica_count(m), 3);
    /* more than the first table's capacity */
    for (uint64_t i = 10; i < 40; i++)
        assert_int_equal(awmap_replica(m, rid(i, 7), &again), 0);
    assert_int_equal(awmap_replica_count(m), 33);
    assert_int_equal(index_of(m, rid(1, 2)), 1);
    assert_int_equal(index_of(m, rid(39, 7)), 32);
    awmap_replica_id_t x = awmap_replica_id(m, 1);
    assert_int_equal(x.node, 1);
    assert_int_equal(x.incarnation, 2);
    x = awmap_replica_id(m, 33); /* out of range */
    assert_int_equal(x.node, 0);
    assert_int_equal(x.incarnation, 0);
    /* replicas alone are not content */
    assert_true(awmap_is_empty(m));
    assert_int_equal(awmap_vv(m, rid(1, 1), NULL), 0);
    size_t cloud = 5;
    assert_int_equal(awmap_vv(m, rid(77, 1), &cloud), 0);
    assert_int_equal(cloud, 0);
    assert_false(awmap_seen(m, rid(77, 1), 1));
    awmap_free(m);
    awmap_free(NULL);
}

/* The index by id stays in step with the table as it grows: many
 * incarnations of few nodes, and ids that differ only in one field. */
static void test_replica_index_many(void **state)
{
    (void)state;
    awmap_t *m = awmap_new();
    assert_non_null(m);
    uint32_t idx;
    for (uint32_t i = 0; i < 3000; i++) {
        assert_int_equal(awmap_replica(m, rid(i % 7, i / 7 + 1), &idx), 0);
        assert_int_equal(idx, i);
    }
    assert_int_equal(awmap_replica(m, rid(1ull << 40, 1), &idx), 0);
    assert_int_equal(awmap_replica(m, rid(1, 1ull << 40), &idx), 0);
    assert_int_equal(awmap_replica_count(m), 3002);
    for (uint32_t i = 0; i < 3000; i += 37) {
        assert_int_equal(awmap_replica(m, rid(i % 7, i / 7 + 1), &idx), 0);
        assert_int_equal(idx, i);
    }
    assert_int_equal(awmap_replica(m, rid(1, 1ull << 40), &idx), 0);
    assert_int_equal(idx, 3001);
    assert_int_equal(awmap_replica_count(m), 3002);
    assert_int_equal(awmap_vv(m, rid(9, 9), NULL), 0);
    awmap_free(m);
}

/* ---- mutators ------------------------------------------------------------------- */

static void test_add_get_remove(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(10, 1);
    awmap_t *m = replica_new(A);
    awmap_t *d = delta_new();
    assert_true(awmap_is_empty(m));
    assert_null(awmap_get(m, "alpha", 5));

    awmap_dot_t d1 = add_s(m, 0, "alpha", "v1", NULL, 0, d, NULL);
    assert_int_equal(d1.replica, 0);
    assert_int_equal(d1.counter, 1);
    const awmap_entry_t *e = awmap_get(m, "alpha", 5);
    assert_non_null(e);
    assert_null(awmap_next(e));
    assert_int_equal(e->dot.replica, 0);
    assert_int_equal(e->dot.counter, 1);
    assert_int_equal(e->len, 2);
    assert_memory_equal(e->value, "v1", 2);
    assert_int_equal(awmap_key_count(m), 1);
    assert_int_equal(awmap_entry_count(m), 1);
    assert_false(awmap_is_empty(m));
    assert_true(awmap_seen(m, A, 1));
    assert_false(awmap_seen(m, A, 2));
    assert_int_equal(awmap_vv(m, A, NULL), 1);
    /* the delta holds exactly the new entry and its dot */
    assert_int_equal(awmap_entry_count(d), 1);
    assert_int_equal(awmap_key_count(d), 1);
    assert_true(awmap_seen(d, A, 1));
    assert_entry(d, "alpha", A, 1, "v1");

    /* a second key, then an empty key name and an empty value */
    awmap_dot_t d2 = add_s(m, 0, "beta", "v2", NULL, 0, NULL, NULL);
    assert_int_equal(d2.counter, 2);
    awmap_dot_t d3 = add_s(m, 0, "", "", NULL, 0, NULL, NULL);
    assert_int_equal(d3.counter, 3);
    e = awmap_get(m, "", 0);
    assert_non_null(e);
    assert_int_equal(e->len, 0);
    assert_int_equal(awmap_key_count(m), 3);
    assert_int_equal(awmap_entry_count(m), 3);
    /* a lookup with a prefix or a longer name finds nothing */
    assert_null(awmap_get(m, "alph", 4));
    assert_null(awmap_get(m, "alphaa", 6));

    /* remove alpha's only entry: the key goes from the state */
    awmap_t *rd = delta_new();
    remove_s(m, "alpha", &d1, 1, rd, NULL);
    assert_null(awmap_get(m, "alpha", 5));
    assert_int_equal(awmap_key_count(m), 2);
    assert_int_equal(awmap_entry_count(m), 2);
    assert_true(awmap_seen(m, A, 1)); /* the removed dot stays seen */
    /* the remove delta: key alpha listed with no entries, context {d1} */
    assert_int_equal(awmap_entry_count(rd), 0);
    assert_int_equal(awmap_key_count(rd), 1);
    assert_null(awmap_get(rd, "alpha", 5));
    assert_true(awmap_seen(rd, A, 1));
    assert_false(awmap_seen(rd, A, 2));
    assert_false(awmap_is_empty(rd));

    /* removing it again, or removing nothing, changes nothing */
    awmap_t *before = clone_state(m);
    remove_s(m, "alpha", &d1, 1, NULL, NULL);
    remove_s(m, "beta", NULL, 0, NULL, NULL);
    assert_true(awmap_equal(m, before));
    assert_int_equal(awmap_key_count(m), 2);

    /* remove of a dot of an absent key: no key appears in a state */
    awmap_dot_t future = {0, 9};
    remove_s(m, "gamma", &future, 1, NULL, NULL);
    assert_null(awmap_get(m, "gamma", 5));
    assert_int_equal(awmap_key_count(m), 2);
    assert_true(awmap_seen(m, A, 9));
    /* the next dot of A comes after everything A's context holds */
    awmap_dot_t d10 = add_s(m, 0, "delta", "x", NULL, 0, NULL, NULL);
    assert_int_equal(d10.counter, 10);

    awmap_free(before);
    awmap_free(rd);
    awmap_free(d);
    awmap_free(m);
}

static void test_add_bad_arguments(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    awmap_dot_t first = add_s(m, 0, "k", "v", NULL, 0, NULL, NULL);
    awmap_t *snap = clone_state(m);
    awmap_t *d = delta_new();
    awmap_dot_t nd = {7, 7};
    char big[AWMAP_KEY_MAX + 2];
    memset(big, 'k', sizeof big);

    /* replica index out of range */
    assert_int_equal(awmap_add(m, 1, "k", 1, "v", 1, NULL, 0, d, NULL, &nd), HERD_EINVAL);
    assert_int_equal(awmap_add(m, UINT32_MAX, "k", 1, "v", 1, NULL, 0, d, NULL, &nd),
                     HERD_EINVAL);
    /* key one byte over the limit */
    assert_int_equal(awmap_add(m, 0, big, AWMAP_KEY_MAX + 1, "v", 1, NULL, 0, d, NULL, &nd),
                     HERD_EINVAL);
    /* value one byte over the limit (never read) */
    static uint8_t value[AWMAP_VALUE_MAX + 1];
    assert_int_equal(awmap_add(m, 0, "k", 1, value, AWMAP_VALUE_MAX + 1, NULL, 0, d, NULL, &nd),
                     HERD_EINVAL);
    /* a length without data */
    assert_int_equal(awmap_add(m, 0, "k", 1, NULL, 3, NULL, 0, d, NULL, &nd), HERD_EINVAL);
    assert_int_equal(awmap_add(m, 0, "k", 1, "v", 1, NULL, 2, d, NULL, &nd), HERD_EINVAL);

    /* nothing changed: not the map, not the delta, not *new_dot */
    assert_true(awmap_equal(m, snap));
    assert_true(awmap_is_empty(d));
    assert_int_equal(awmap_key_count(d), 0);
    assert_int_equal(nd.replica, 7);
    assert_int_equal(nd.counter, 7);
    /* and the next add still gets the next dot */
    awmap_dot_t second = add_s(m, 0, "k", "w", NULL, 0, NULL, NULL);
    assert_int_equal(second.counter, first.counter + 1);

    awmap_free(d);
    awmap_free(snap);
    awmap_free(m);
}

/* awmap_remove refuses a dot whose replica index is not in the map's table;
 * awmap_add's `supersede` dots are the same kind of input and must be refused
 * the same way, not looked up in the table. The index used here is within
 * the table's allocation but past its used part, so the test fails cleanly
 * instead of tripping the sanitizer. */
static void test_add_supersede_dot_out_of_range_is_einval(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    add_s(m, 0, "k", "v", NULL, 0, NULL, NULL);
    awmap_t *snap = clone_state(m);
    awmap_t *d = delta_new();
    awmap_dot_t bad = {1, 1}; /* only replica 0 exists */
    assert_int_equal(awmap_remove(m, "k", 1, &bad, 1, d, NULL), HERD_EINVAL);
    int rc = awmap_add(m, 0, "k", 1, "w", 1, &bad, 1, d, NULL, NULL);
    /* read everything, free, then judge (no leak report from a failure) */
    int unchanged = awmap_equal(m, snap), delta_empty = awmap_is_empty(d);
    size_t replicas = awmap_replica_count(m);
    awmap_free(d);
    awmap_free(snap);
    awmap_free(m);
    if (rc != HERD_EINVAL || !unchanged || replicas != 1 || !delta_empty)
        fail_msg("awmap_add with a supersede dot of replica index 1 in a 1-replica map: rc %d "
                 "(want %d), map unchanged %d, replicas %zu, delta empty %d",
                 rc, HERD_EINVAL, unchanged, replicas, delta_empty);
}

static void test_remove_bad_arguments(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    awmap_dot_t dot = add_s(m, 0, "k", "v", NULL, 0, NULL, NULL);
    awmap_t *snap = clone_state(m);
    awmap_t *d = delta_new();
    char big[AWMAP_KEY_MAX + 1];
    memset(big, 'k', sizeof big);
    awmap_dot_t bad[2] = {dot, {5, 1}};

    assert_int_equal(awmap_remove(m, big, AWMAP_KEY_MAX + 1, &dot, 1, d, NULL), HERD_EINVAL);
    assert_int_equal(awmap_remove(m, "k", 1, NULL, 1, d, NULL), HERD_EINVAL);
    /* one bad dot among good ones: nothing is removed */
    assert_int_equal(awmap_remove(m, "k", 1, bad, 2, d, NULL), HERD_EINVAL);
    bad[1].replica = AWMAP_REPLICAS_MAX - 1;
    assert_int_equal(awmap_remove(m, "k", 1, bad, 2, d, NULL), HERD_EINVAL);
    assert_true(awmap_equal(m, snap));
    assert_non_null(awmap_get(m, "k", 1));
    assert_true(awmap_is_empty(d));
    assert_int_equal(awmap_key_count(d), 0);
    awmap_free(d);
    awmap_free(snap);
    awmap_free(m);
}

static void test_key_and_value_limits(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    char key[AWMAP_KEY_MAX + 1];
    memset(key, 'n', sizeof key);
    uint8_t *value = malloc(AWMAP_VALUE_MAX + 1);
    assert_non_null(value);
    for (size_t i = 0; i <= AWMAP_VALUE_MAX; i++)
        value[i] = (uint8_t)(i * 31);

    /* exactly at the limits: fine, and kept whole */
    awmap_dot_t dot;
    assert_int_equal(
        awmap_add(m, 0, key, AWMAP_KEY_MAX, value, AWMAP_VALUE_MAX, NULL, 0, NULL, NULL, &dot), 0);
    const awmap_entry_t *e = awmap_get(m, key, AWMAP_KEY_MAX);
    assert_non_null(e);
    assert_int_equal(e->len, AWMAP_VALUE_MAX);
    assert_memory_equal(e->value, value, AWMAP_VALUE_MAX);
    /* a longest key and value survive the wire too */
    awmap_t *c = round_trip(m);
    awmap_free(c);

    /* one over: refused */
    assert_int_equal(
        awmap_add(m, 0, key, AWMAP_KEY_MAX + 1, value, 1, NULL, 0, NULL, NULL, NULL), HERD_EINVAL);
    assert_int_equal(
        awmap_add(m, 0, "k", 1, value, AWMAP_VALUE_MAX + 1, NULL, 0, NULL, NULL, NULL),
        HERD_EINVAL);
    assert_int_equal(awmap_remove(m, key, AWMAP_KEY_MAX + 1, &dot, 1, NULL, NULL), HERD_EINVAL);
    assert_int_equal(awmap_entry_count(m), 1);
    /* remove at the key limit works */
    assert_int_equal(awmap_remove(m, key, AWMAP_KEY_MAX, &dot, 1, NULL, NULL), 0);
    assert_int_equal(awmap_entry_count(m), 0);
    free(value);
    awmap_free(m);
}

/* Removes are per dot: removing one entry of a key leaves its other entries. */
static void test_remove_removes_only_given_dots(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    awmap_t *da = delta_new(), *db = delta_new();
    awmap_dot_t a1 = add_s(a, 0, "k", "from-a", NULL, 0, da, NULL);
    add_s(b, 0, "k", "from-b", NULL, 0, db, NULL);
    add_s(a, 0, "other", "o", NULL, 0, da, NULL);
    assert_int_equal(awmap_join(a, db, NULL), 0);
    assert_int_equal(awmap_join(b, da, NULL), 0);
    assert_int_equal(count_entries(awmap_get(a, "k", 1)), 2);
    assert_true(awmap_equal(a, b));

    /* A removes its own entry only */
    awmap_t *rd = delta_new();
    remove_s(a, "k", &a1, 1, rd, NULL);
    assert_int_equal(count_entries(awmap_get(a, "k", 1)), 1);
    assert_entry(a, "k", B, 1, "from-b");
    assert_null(find_entry(a, "k", A, 1));
    assert_non_null(awmap_get(a, "other", 5));
    /* and on B, the delta removes exactly that dot */
    assert_int_equal(awmap_join(b, rd, NULL), 0);
    assert_int_equal(count_entries(awmap_get(b, "k", 1)), 1);
    assert_entry(b, "k", B, 1, "from-b");
    assert_entry(b, "other", A, 2, "o");
    assert_true(awmap_equal(a, b));

    /* one remove of two dots of the key, given by the remover's indices */
    awmap_t *c = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(c, da, NULL), 0);
    assert_int_equal(awmap_join(c, db, NULL), 0);
    awmap_dot_t both[2] = {{index_of(c, A), 1}, {index_of(c, B), 1}};
    remove_s(c, "k", both, 2, NULL, NULL);
    assert_null(awmap_get(c, "k", 1));
    assert_non_null(awmap_get(c, "other", 5));

    awmap_free(c);
    awmap_free(rd);
    awmap_free(da);
    awmap_free(db);
    awmap_free(a);
    awmap_free(b);
}

/* A supersede replaces an entry in one delta: the new entry plus the old dot
 * in the context, so a replica holding the old entry switches in one join. */
static void test_supersede_replaces_in_one_delta(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    awmap_t *d1 = delta_new(), *d2 = delta_new();
    awmap_dot_t v1 = add_s(a, 0, "name", "meta-1", NULL, 0, d1, NULL);
    assert_int_equal(awmap_join(b, d1, NULL), 0);

    awmap_dot_t v2 = add_s(a, 0, "name", "meta-2", &v1, 1, d2, NULL);
    assert_int_equal(v2.counter, 2);
    assert_int_equal(count_entries(awmap_get(a, "name", 4)), 1);
    assert_entry(a, "name", A, 2, "meta-2");
    /* the delta: one entry, context {1, 2} */
    assert_int_equal(awmap_entry_count(d2), 1);
    assert_entry(d2, "name", A, 2, "meta-2");
    assert_true(awmap_seen(d2, A, 1));
    assert_true(awmap_seen(d2, A, 2));

    recorder_t rec;
    awmap_observer_t obs = observer_for(&rec, b);
    assert_int_equal(awmap_join(b, d2, &obs), 0);
    assert_int_equal(count_entries(awmap_get(b, "name", 4)), 1);
    assert_entry(b, "name", A, 2, "meta-2");
    assert_int_equal(rec.n, 2);
    /* order of the two events is the join's: removed first, then added */
    assert_event(&rec, 0, '-', "name", A, 1, "meta-1");
    assert_event(&rec, 1, '+', "name", A, 2, "meta-2");
    assert_true(awmap_equal(a, b));

    /* a third replica that never saw v1 gets only v2, and a late v1 stays out */
    awmap_t *c = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(c, d2, NULL), 0);
    assert_int_equal(awmap_join(c, d1, NULL), 0);
    assert_true(awmap_equal(a, c));

    /* supersede of a dot from another replica, plus a second update */
    awmap_t *d3 = delta_new();
    awmap_dot_t on_b = {index_of(b, A), 2};
    awmap_dot_t v3 = add_s(b, 0, "name", "meta-3", &on_b, 1, d3, NULL);
    assert_int_equal(awmap_join(a, d3, NULL), 0);
    assert_int_equal(count_entries(awmap_get(a, "name", 4)), 1);
    assert_entry(a, "name", B, v3.counter, "meta-3");
    assert_true(awmap_equal(a, b));

    awmap_free(c);
    awmap_free(d1);
    awmap_free(d2);
    awmap_free(d3);
    awmap_free(a);
    awmap_free(b);
}

/* Concurrent adds to one key on two replicas: after exchanging deltas both
 * entries are there, on both sides (add-wins keeps both, the registry's
 * conflict rule then picks a winner). */
static void test_concurrent_adds_both_survive(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    awmap_t *da = delta_new(), *db = delta_new();
    add_s(a, 0, "svc", "on-a", NULL, 0, da, NULL);
    add_s(b, 0, "svc", "on-b", NULL, 0, db, NULL);
    assert_int_equal(awmap_join(a, db, NULL), 0);
    assert_int_equal(awmap_join(b, da, NULL), 0);
    assert_int_equal(count_entries(awmap_get(a, "svc", 3)), 2);
    assert_int_equal(count_entries(awmap_get(b, "svc", 3)), 2);
    assert_entry(a, "svc", A, 1, "on-a");
    assert_entry(a, "svc", B, 1, "on-b");
    assert_entry(b, "svc", A, 1, "on-a");
    assert_entry(b, "svc", B, 1, "on-b");
    assert_true(awmap_equal(a, b));

    /* add-wins: A removes its entry while B concurrently supersedes it;
     * A's remove only names A's dot, B's new entry is concurrent with it */
    awmap_t *ra = delta_new(), *sb = delta_new();
    awmap_dot_t a1 = {0, 1};
    remove_s(a, "svc", &a1, 1, ra, NULL);
    awmap_dot_t b_sees_a1 = {index_of(b, A), 1};
    add_s(b, 0, "svc", "on-b-2", &b_sees_a1, 1, sb, NULL);
    assert_int_equal(awmap_join(a, sb, NULL), 0);
    assert_int_equal(awmap_join(b, ra, NULL), 0);
    assert_true(awmap_equal(a, b));
    assert_int_equal(count_entries(awmap_get(a, "svc", 3)), 2);
    assert_entry(a, "svc", B, 1, "on-b");
    assert_entry(a, "svc", B, 2, "on-b-2");

    awmap_free(ra);
    awmap_free(sb);
    awmap_free(da);
    awmap_free(db);
    awmap_free(a);
    awmap_free(b);
}

static int count_replica(void *data, awmap_replica_id_t id, uint64_t vv, size_t cloud,
                         uint64_t held)
{
    (void)id;
    (void)vv;
    (void)cloud;
    uint64_t *c = data;
    c[0]++;
    c[1] += held;
    return 0;
}

/* A gone node start's replica is pruned once the map holds no entry of it:
 * the table shrinks, its dots count as unseen again, the free slot is reused
 * by the next replica, and a pruned map still encodes, copies and joins. */
static void test_prune_replica(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1), C = rid(3, 1), D = rid(4, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B), *db = delta_new();
    add_s(b, 0, "b1", "v1", NULL, 0, db, NULL);
    add_s(b, 0, "b2", "v2", NULL, 0, db, NULL);
    assert_int_equal(awmap_join(a, db, NULL), 0);
    awmap_t *dc = delta_new(), *c = replica_new(C);
    add_s(c, 0, "c1", "w", NULL, 0, dc, NULL);
    assert_int_equal(awmap_join(a, dc, NULL), 0);
    assert_int_equal(awmap_replica_count(a), 3);
    uint64_t counts[2] = {0, 0};
    awmap_foreach_replica(a, count_replica, counts);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 3);

    /* B's entries still held: refused */
    assert_int_equal(awmap_prune_replica(a, B), HERD_EBUSY);
    assert_int_equal(awmap_prune_replica(a, D), HERD_ENOENT);
    awmap_dot_t dots[2] = {{index_of(a, B), 1}, {index_of(a, B), 2}};
    remove_s(a, "b1", &dots[0], 1, NULL, NULL);
    remove_s(a, "b2", &dots[1], 1, NULL, NULL);
    assert_true(awmap_seen(a, B, 2));
    assert_int_equal(awmap_prune_replica(a, B), 0);
    assert_int_equal(awmap_replica_count(a), 2);
    assert_false(awmap_seen(a, B, 1));
    assert_int_equal(awmap_vv(a, B, NULL), 0);
    assert_int_equal(awmap_prune_replica(a, B), HERD_ENOENT);

    /* it encodes without the free slot, entries keep their replicas */
    awmap_t *copy = round_trip(a);
    assert_true(awmap_equal(a, copy));
    assert_int_equal(awmap_replica_count(copy), 2);
    assert_entry(copy, "c1", C, 1, "w");
    /* contexts copied from it leave the free slot out */
    awmap_t *ctx = delta_new();
    assert_int_equal(awmap_copy_context(ctx, a), 0);
    assert_int_equal(awmap_replica_count(ctx), 2);
    /* and it joins into another map, and takes joins */
    awmap_t *other = awmap_new();
    assert_int_equal(awmap_join_full(other, a, NULL), 0);
    assert_true(awmap_equal(other, a));

    /* the free slot goes to the next replica */
    uint32_t idx;
    assert_int_equal(awmap_replica(a, D, &idx), 0);
    assert_int_equal(idx, dots[0].replica);
    assert_int_equal(awmap_replica_count(a), 3);
    awmap_t *d = replica_new(D), *dd = delta_new();
    add_s(d, 0, "d1", "x", NULL, 0, dd, NULL);
    assert_int_equal(awmap_join(a, dd, NULL), 0);
    assert_entry(a, "d1", D, 1, "x");
    assert_entry(a, "c1", C, 1, "w");

    awmap_free(dd);
    awmap_free(d);
    awmap_free(other);
    awmap_free(ctx);
    awmap_free(copy);
    awmap_free(dc);
    awmap_free(c);
    awmap_free(db);
    awmap_free(b);
    awmap_free(a);
}

/* A remove that arrives before the add it removes wins: the late add is
 * stale (its dot is already in the context) and does not resurrect. */
static void test_stale_add_does_not_resurrect(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B), *c = replica_new(rid(3, 1));
    awmap_t *add = delta_new(), *rm = delta_new();
    add_s(a, 0, "k", "v", NULL, 0, add, NULL);
    assert_int_equal(awmap_join(b, add, NULL), 0);
    awmap_dot_t on_b = {index_of(b, A), 1};
    remove_s(b, "k", &on_b, 1, rm, NULL);

    recorder_t rec;
    awmap_observer_t obs = observer_for(&rec, c);
    assert_int_equal(awmap_join(c, rm, &obs), 0);
    assert_null(awmap_get(c, "k", 1));
    assert_true(awmap_seen(c, A, 1));
    assert_int_equal(awmap_join(c, add, &obs), 0);
    assert_null(awmap_get(c, "k", 1));
    assert_int_equal(rec.n, 0); /* never added, never removed */
    assert_int_equal(awmap_key_count(c), 0);
    assert_true(awmap_equal(b, c));

    /* the same with the remove and the add in one interval */
    awmap_t *iv = delta_new();
    assert_int_equal(awmap_join(iv, rm, NULL), 0);
    assert_int_equal(awmap_join(iv, add, NULL), 0);
    assert_int_equal(awmap_entry_count(iv), 0);
    assert_int_equal(awmap_key_count(iv), 1); /* "k" listed as removed */
    awmap_t *e = replica_new(rid(4, 1));
    assert_int_equal(awmap_join(e, iv, NULL), 0);
    assert_true(awmap_equal(b, e));
    /* and A, which holds the entry, loses it to the interval */
    assert_int_equal(awmap_join(a, iv, NULL), 0);
    assert_null(awmap_get(a, "k", 1));
    assert_true(awmap_equal(a, b));

    awmap_free(e);
    awmap_free(iv);
    awmap_free(add);
    awmap_free(rm);
    awmap_free(a);
    awmap_free(b);
    awmap_free(c);
}

static void test_delta_applied_twice_changes_nothing(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1);
    awmap_t *a = replica_new(A), *b = replica_new(rid(2, 1));
    awmap_t *d1 = delta_new(), *d2 = delta_new(), *d3 = delta_new();
    awmap_dot_t x = add_s(a, 0, "x", "1", NULL, 0, d1, NULL);
    add_s(a, 0, "y", "2", NULL, 0, d2, NULL);
    remove_s(a, "x", &x, 1, d3, NULL);

    recorder_t rec;
    awmap_observer_t obs = observer_for(&rec, b);
    const awmap_t *seq[] = {d1, d2, d3};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(awmap_join(b, seq[i], &obs), 0);
        awmap_t *snap = clone_state(b);
        size_t events = rec.n;
        assert_int_equal(awmap_join(b, seq[i], &obs), 0);
        assert_int_equal(awmap_join_full(b, seq[i], &obs), 0);
        assert_true(awmap_equal(b, snap));
        assert_int_equal(rec.n, events);
        awmap_free(snap);
    }
    assert_true(awmap_equal(a, b));
    /* applying an earlier delta again, after later ones, changes nothing */
    assert_int_equal(awmap_join(b, d1, &obs), 0);
    assert_true(awmap_equal(a, b));
    assert_int_equal(rec.n, 3); /* +x, +y, -x */
    /* joining a map into itself changes nothing */
    assert_int_equal(awmap_join(b, b, NULL), 0);
    assert_int_equal(awmap_join_full(b, b, NULL), 0);
    assert_true(awmap_equal(a, b));

    awmap_free(d1);
    awmap_free(d2);
    awmap_free(d3);
    awmap_free(a);
    awmap_free(b);
}

/* Mutators given the same delta map accumulate their deltas in it (an
 * interval), and that interval is the join of the single deltas: applied to
 * a fresh replica it gives what applying them one by one gives. */
static void test_interval_accumulates(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1);
    /* two identical replicas: one writes single deltas, one an interval */
    awmap_t *a = replica_new(A), *a2 = replica_new(A);
    awmap_t *single[6], *interval = delta_new();
    for (int i = 0; i < 6; i++)
        single[i] = delta_new();

    awmap_dot_t k1 = add_s(a, 0, "k1", "a", NULL, 0, single[0], NULL);
    awmap_dot_t k2 = add_s(a, 0, "k2", "b", NULL, 0, single[1], NULL);
    awmap_dot_t k1b = add_s(a, 0, "k1", "c", &k1, 1, single[2], NULL);
    remove_s(a, "k2", &k2, 1, single[3], NULL);
    add_s(a, 0, "k3", "d", NULL, 0, single[4], NULL);
    remove_s(a, "k1", &k1b, 1, single[5], NULL);

    awmap_dot_t j1 = add_s(a2, 0, "k1", "a", NULL, 0, interval, NULL);
    awmap_dot_t j2 = add_s(a2, 0, "k2", "b", NULL, 0, interval, NULL);
    awmap_dot_t j1b = add_s(a2, 0, "k1", "c", &j1, 1, interval, NULL);
    remove_s(a2, "k2", &j2, 1, interval, NULL);
    add_s(a2, 0, "k3", "d", NULL, 0, interval, NULL);
    remove_s(a2, "k1", &j1b, 1, interval, NULL);
    assert_true(awmap_equal(a, a2));

    /* the interval: only k3's entry, all four dots (removes make none), the
     * removed keys listed */
    assert_int_equal(awmap_entry_count(interval), 1);
    assert_entry(interval, "k3", A, 4, "d");
    assert_int_equal(awmap_vv(interval, A, NULL), 4);
    char keys[256];
    keys_string(interval, keys, sizeof keys);
    assert_string_equal(keys, "k1|k2|k3|");

    /* the same as joining the single deltas into one delta map */
    awmap_t *joined = delta_new();
    for (int i = 0; i < 6; i++)
        assert_int_equal(awmap_join(joined, single[i], NULL), 0);
    assert_true(awmap_equal(joined, interval));
    char keys2[256];
    keys_string(joined, keys2, sizeof keys2);
    assert_string_equal(keys, keys2);
    /* and a delta joined into an empty delta is a copy, hints included */
    awmap_t *copy = clone_delta(interval);
    assert_true(awmap_equal(copy, interval));
    keys_string(copy, keys2, sizeof keys2);
    assert_string_equal(keys, keys2);
    awmap_free(copy);

    /* a fresh replica: the interval gives what the singles give one by one */
    awmap_t *one = replica_new(rid(2, 1)), *each = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(one, interval, NULL), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(awmap_join(each, single[i], NULL), 0);
    assert_true(awmap_equal(one, each));
    assert_true(awmap_equal(one, a));

    /* a replica that already holds k1 and k2 from the first two deltas */
    awmap_t *mid = replica_new(rid(4, 1));
    assert_int_equal(awmap_join(mid, single[0], NULL), 0);
    assert_int_equal(awmap_join(mid, single[1], NULL), 0);
    assert_int_equal(awmap_entry_count(mid), 2);
    assert_int_equal(awmap_join(mid, interval, NULL), 0);
    assert_true(awmap_equal(mid, a));

    /* a later interval (deltas 3..6) on a replica that has 1..2 */
    awmap_t *late = delta_new(), *mid2 = replica_new(rid(5, 1));
    for (int i = 2; i < 6; i++)
        assert_int_equal(awmap_join(late, single[i], NULL), 0);
    assert_int_equal(awmap_join(mid2, single[0], NULL), 0);
    assert_int_equal(awmap_join(mid2, single[1], NULL), 0);
    assert_int_equal(awmap_join(mid2, late, NULL), 0);
    assert_true(awmap_equal(mid2, a));

    for (int i = 0; i < 6; i++)
        awmap_free(single[i]);
    awmap_free(late);
    awmap_free(mid2);
    awmap_free(mid);
    awmap_free(one);
    awmap_free(each);
    awmap_free(joined);
    awmap_free(interval);
    awmap_free(a);
    awmap_free(a2);
}

/* The causal context folds: dots received out of order wait in the cloud
 * and move into the version vector as the gaps fill. */
static void test_cc_folding(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1);
    awmap_t *a = replica_new(A), *b = replica_new(rid(2, 1));
    awmap_t *d[7];
    char key[8];
    for (int i = 0; i < 7; i++) {
        d[i] = delta_new();
        snprintf(key, sizeof key, "k%d", i + 1);
        awmap_dot_t dot = add_s(a, 0, key, "v", NULL, 0, d[i], NULL);
        assert_int_equal(dot.counter, (uint64_t)i + 1);
    }
    size_t cloud = 99;
    assert_int_equal(awmap_vv(a, A, &cloud), 7);
    assert_int_equal(cloud, 0);

    /* order 3, 5, 2, 7, 1, 4, 6 */
    static const struct {
        int which;
        uint64_t vv;
        size_t cloud;
    } steps[] = {{3, 0, 1}, {5, 0, 2}, {2, 0, 3}, {7, 0, 4}, {1, 3, 2}, {4, 5, 1}, {6, 7, 0}};
    int have[8] = {0};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        assert_int_equal(awmap_join(b, d[steps[s].which - 1], NULL), 0);
        have[steps[s].which] = 1;
        assert_int_equal(awmap_vv(b, A, &cloud), steps[s].vv);
        assert_int_equal(cloud, steps[s].cloud);
        for (int c = 1; c <= 7; c++)
            assert_int_equal(awmap_seen(b, A, (uint64_t)c), have[c]);
        assert_false(awmap_seen(b, A, 8));
    }
    assert_true(awmap_equal(a, b));

    /* a version vector arriving over a cloud swallows it (state join) */
    awmap_t *c = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(c, d[5], NULL), 0); /* 6 */
    assert_int_equal(awmap_join(c, d[2], NULL), 0); /* 3 */
    assert_int_equal(awmap_vv(c, A, &cloud), 0);
    assert_int_equal(cloud, 2);
    assert_int_equal(awmap_join_full(c, a, NULL), 0);
    assert_int_equal(awmap_vv(c, A, &cloud), 7);
    assert_int_equal(cloud, 0);
    assert_true(awmap_equal(a, c));

    /* a vector that reaches just below a cloud folds the cloud in */
    awmap_t *e = replica_new(rid(4, 1)), *upto3 = replica_new(rid(5, 1));
    for (int i = 0; i < 3; i++)
        assert_int_equal(awmap_join(upto3, d[i], NULL), 0);
    assert_int_equal(awmap_join(e, d[4], NULL), 0); /* 5 */
    assert_int_equal(awmap_join(e, d[3], NULL), 0); /* 4 */
    assert_int_equal(awmap_vv(e, A, &cloud), 0);
    assert_int_equal(cloud, 2);
    assert_int_equal(awmap_join_full(e, upto3, NULL), 0);
    assert_int_equal(awmap_vv(e, A, &cloud), 5);
    assert_int_equal(cloud, 0);

    for (int i = 0; i < 7; i++)
        awmap_free(d[i]);
    awmap_free(upto3);
    awmap_free(e);
    awmap_free(c);
    awmap_free(a);
    awmap_free(b);
}

/* Observers hear exactly the entries that come and go, from mutators and
 * from joins (and nothing from joins that change nothing). */
static void test_observers(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    recorder_t ra, rb;
    awmap_observer_t oa = observer_for(&ra, a), ob = observer_for(&rb, b);
    awmap_t *d1 = delta_new(), *d2 = delta_new(), *d3 = delta_new(), *d4 = delta_new();

    awmap_dot_t x1 = add_s(a, 0, "x", "1", NULL, 0, d1, &oa);
    assert_int_equal(ra.n, 1);
    assert_event(&ra, 0, '+', "x", A, 1, "1");
    awmap_dot_t x2 = add_s(a, 0, "x", "2", &x1, 1, d2, &oa);
    assert_int_equal(ra.n, 3);
    assert_event(&ra, 1, '-', "x", A, 1, "1");
    assert_event(&ra, 2, '+', "x", A, 2, "2");
    add_s(a, 0, "y", "3", NULL, 0, d3, &oa);
    remove_s(a, "x", &x2, 1, d4, &oa);
    assert_int_equal(ra.n, 5);
    assert_event(&ra, 3, '+', "y", A, 3, "3");
    assert_event(&ra, 4, '-', "x", A, 2, "2");
    /* a remove of nothing tells nothing */
    remove_s(a, "x", &x2, 1, NULL, &oa);
    remove_s(a, "nope", NULL, 0, NULL, &oa);
    assert_int_equal(ra.n, 5);

    /* B gets them out of order: 3, 1, 4 (removes x2 before it came), 2 */
    assert_int_equal(awmap_join(b, d3, &ob), 0);
    assert_int_equal(awmap_join(b, d1, &ob), 0);
    assert_int_equal(rb.n, 2);
    assert_event(&rb, 0, '+', "y", A, 3, "3");
    assert_event(&rb, 1, '+', "x", A, 1, "1");
    assert_int_equal(awmap_join(b, d4, &ob), 0);
    assert_int_equal(rb.n, 2); /* x2 never here: nothing to tell */
    assert_int_equal(awmap_join(b, d2, &ob), 0);
    assert_int_equal(rb.n, 3);
    assert_event(&rb, 2, '-', "x", A, 1, "1"); /* superseded, and x2 stale */
    assert_true(awmap_equal(a, b));

    /* join_full tells removals of keys the other side does not list */
    awmap_t *c = replica_new(rid(3, 1));
    recorder_t rc;
    awmap_observer_t oc = observer_for(&rc, c);
    assert_int_equal(awmap_join(c, d1, &oc), 0);
    assert_int_equal(awmap_join_full(c, a, &oc), 0);
    assert_int_equal(rc.n, 3);
    assert_event(&rc, 0, '+', "x", A, 1, "1");
    /* order within one join follows the map's layout: check as a set */
    int saw_minus_x = 0, saw_plus_y = 0;
    for (size_t i = 1; i < 3; i++) {
        if (rc.ev[i].kind == '-' && strcmp(rc.ev[i].key, "x") == 0 && rc.ev[i].counter == 1)
            saw_minus_x = 1;
        if (rc.ev[i].kind == '+' && strcmp(rc.ev[i].key, "y") == 0 && rc.ev[i].counter == 3)
            saw_plus_y = 1;
    }
    assert_true(saw_minus_x && saw_plus_y);
    /* an observer with no callbacks, or only one, is fine */
    awmap_observer_t half = {NULL, on_removed, &rc};
    awmap_t *e = replica_new(rid(4, 1));
    rc.m = e;
    rc.n = 0;
    assert_int_equal(awmap_join(e, d1, &half), 0);
    assert_int_equal(awmap_join(e, d2, &half), 0);
    assert_int_equal(rc.n, 1);
    assert_event(&rc, 0, '-', "x", A, 1, "1");
    awmap_observer_t none = {NULL, NULL, NULL};
    assert_int_equal(awmap_join(e, d4, &none), 0);

    awmap_free(e);
    awmap_free(c);
    awmap_free(d1);
    awmap_free(d2);
    awmap_free(d3);
    awmap_free(d4);
    awmap_free(a);
    awmap_free(b);
}

/* awmap_join looks only at the keys its argument lists: fine for deltas,
 * which list their removals, but a *state* does not list the keys whose
 * entries it removed. awmap_join_full is the join for arbitrary maps. */
static void test_join_full_sees_unlisted_keys(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1);
    awmap_t *a = replica_new(A), *b = replica_new(rid(2, 1));
    awmap_t *d1 = delta_new(), *d2 = delta_new();
    awmap_dot_t g = add_s(a, 0, "gone", "1", NULL, 0, d1, NULL);
    add_s(a, 0, "stays", "2", NULL, 0, d2, NULL);
    assert_int_equal(awmap_join(b, d1, NULL), 0);
    assert_int_equal(awmap_join(b, d2, NULL), 0);
    remove_s(a, "gone", &g, 1, NULL, NULL);
    assert_int_equal(awmap_key_count(a), 1); /* the state dropped "gone" */

    awmap_t *hinted = clone_state(b), *full = clone_state(b);
    assert_int_equal(awmap_join(hinted, a, NULL), 0);
    assert_int_equal(awmap_join_full(full, a, NULL), 0);
    assert_non_null(awmap_get(hinted, "gone", 4)); /* missed: documented */
    assert_null(awmap_get(full, "gone", 4));
    assert_true(awmap_equal(full, a));
    /* and the other way round join_full keeps what the other side has not seen */
    awmap_t *a2 = clone_state(a);
    assert_int_equal(awmap_join_full(a2, b, NULL), 0);
    assert_true(awmap_equal(a2, a));

    awmap_free(a2);
    awmap_free(hinted);
    awmap_free(full);
    awmap_free(d1);
    awmap_free(d2);
    awmap_free(a);
    awmap_free(b);
}

static void test_equal(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    awmap_t *da = delta_new(), *db = delta_new();
    add_s(a, 0, "k", "x", NULL, 0, da, NULL);
    add_s(b, 0, "k", "y", NULL, 0, db, NULL);
    /* joined in opposite orders: replica tables ordered differently */
    assert_int_equal(awmap_join(a, db, NULL), 0);
    assert_int_equal(awmap_join(b, da, NULL), 0);
    assert_int_not_equal(index_of(a, A), index_of(b, A));
    assert_true(awmap_equal(a, b));
    assert_true(awmap_equal(b, a));
    assert_true(awmap_equal(a, a));

    /* a replica known with an empty context does not matter */
    awmap_t *c = clone_state(a);
    uint32_t idx;
    assert_int_equal(awmap_replica(c, rid(9, 9), &idx), 0);
    assert_true(awmap_equal(a, c));
    assert_true(awmap_equal(c, a));

    /* same context, one entry missing */
    awmap_t *e = awmap_new();
    assert_int_equal(awmap_join_full(e, a, NULL), 0);
    awmap_dot_t bdot = {index_of(e, B), 1};
    awmap_t *ctx_only = clone_state(e);
    remove_s(e, "k", &bdot, 1, NULL, NULL);
    assert_false(awmap_equal(a, e));
    assert_false(awmap_equal(e, a));

    /* same entries, a bigger context */
    awmap_t *f = clone_state(a);
    awmap_dot_t far = {index_of(f, A), 10};
    remove_s(f, "zzz", &far, 1, NULL, NULL);
    assert_false(awmap_equal(a, f));
    assert_false(awmap_equal(f, a));

    /* same entries, plus a dot of a replica the other map never heard of */
    awmap_t *f2 = clone_state(a);
    uint32_t cidx;
    assert_int_equal(awmap_replica(f2, rid(9, 9), &cidx), 0);
    awmap_dot_t cdot = {cidx, 1};
    remove_s(f2, "zzz", &cdot, 1, NULL, NULL);
    assert_false(awmap_equal(f2, a));
    assert_false(awmap_equal(a, f2));
    awmap_free(f2);

    /* same dots, another value */
    awmap_t *g1 = replica_new(A), *g2 = replica_new(A);
    add_s(g1, 0, "k", "one", NULL, 0, NULL, NULL);
    add_s(g2, 0, "k", "two", NULL, 0, NULL, NULL);
    assert_false(awmap_equal(g1, g2));
    /* same dot and value, another key */
    awmap_t *h1 = replica_new(A), *h2 = replica_new(A);
    add_s(h1, 0, "k1", "v", NULL, 0, NULL, NULL);
    add_s(h2, 0, "k2", "v", NULL, 0, NULL, NULL);
    assert_false(awmap_equal(h1, h2));
    /* empty maps */
    awmap_t *z1 = awmap_new(), *z2 = awmap_new_delta();
    assert_true(awmap_equal(z1, z2));
    assert_false(awmap_equal(z1, a));

    awmap_free(ctx_only);
    awmap_free(z1);
    awmap_free(z2);
    awmap_free(h1);
    awmap_free(h2);
    awmap_free(g1);
    awmap_free(g2);
    awmap_free(f);
    awmap_free(e);
    awmap_free(c);
    awmap_free(da);
    awmap_free(db);
    awmap_free(a);
    awmap_free(b);
}

static int count_visit(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key;
    (void)klen;
    size_t *n = data;
    n[0]++;
    n[1] += count_entries(e);
    return 0;
}

static int stop_at_second(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key;
    (void)klen;
    (void)e;
    int *n = data;
    return ++*n == 2 ? 42 : 0;
}

#define RANGE_KEYS 3000

static int mark_visit(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)e;
    unsigned *seen = data;
    char buf[16];
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    seen[atoi(buf + 1)]++;
    return 0;
}

/* A walk over successive position ranges visits every key once on a quiet
 * map, and every key present throughout it at least once while keys come
 * and go between the ranges (the table grows and deletes shift keys). */
static void test_foreach_range(void **state)
{
    (void)state;
    static unsigned seen[2 * RANGE_KEYS];
    awmap_t *m = replica_new(rid(1, 1));
    awmap_dot_t dots[2 * RANGE_KEYS];
    char key[16];
    for (int i = 0; i < RANGE_KEYS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        dots[i] = add_s(m, 0, key, "v", NULL, 0, NULL, NULL);
    }
    memset(seen, 0, sizeof seen);
    uint64_t step = (1ull << 32) / 37;
    for (uint64_t lo = 0; lo < (1ull << 32); lo += step)
        awmap_foreach_range(m, (uint32_t)lo, lo + step < (1ull << 32) ? lo + step : 1ull << 32,
                            mark_visit, seen);
    for (int i = 0; i < RANGE_KEYS; i++)
        assert_int_equal(seen[i], 1);

    /* again, removing every third old key and adding new ones as it goes */
    memset(seen, 0, sizeof seen);
    int next = RANGE_KEYS, removed = 0;
    for (uint64_t lo = 0; lo < (1ull << 32); lo += step) {
        awmap_foreach_range(m, (uint32_t)lo, lo + step < (1ull << 32) ? lo + step : 1ull << 32,
                            mark_visit, seen);
        for (int j = 0; j < 60 && next < 2 * RANGE_KEYS; j++, next++) {
            snprintf(key, sizeof key, "k%d", next);
            dots[next] = add_s(m, 0, key, "v", NULL, 0, NULL, NULL);
        }
        for (int j = 0; j < 30 && removed < RANGE_KEYS; j++, removed += 3) {
            snprintf(key, sizeof key, "k%d", removed);
            remove_s(m, key, &dots[removed], 1, NULL, NULL);
        }
    }
    for (int i = 0; i < RANGE_KEYS; i++)
        if (i % 3 != 0 || i >= removed)
            assert_true(seen[i] >= 1);
    for (int i = 0; i < 2 * RANGE_KEYS; i++)
        assert_true(seen[i] <= 1);
    assert_int_equal(awmap_foreach_range(m, 5, 5, mark_visit, seen), 0);
    awmap_free(m);
}

/* One range over the whole order visits every key once at every fill of
 * the table: a probe run that goes round the table's end into its first
 * buckets (keys homed in the last ones) has those buckets walked once, not
 * again after the last. */
static void test_foreach_range_whole_order_once(void **state)
{
    (void)state;
    static unsigned seen[RANGE_KEYS];
    char key[16];
    for (int n = 1; n <= 700; n += 3) {
        awmap_t *m = replica_new(rid(1, 1));
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "k%d", i);
            add_s(m, 0, key, "v", NULL, 0, NULL, NULL);
        }
        memset(seen, 0, sizeof seen);
        awmap_foreach_range(m, 0, 1ull << 32, mark_visit, seen);
        for (int i = 0; i < n; i++)
            assert_int_equal(seen[i], 1);
        awmap_free(m);
    }
}

static void test_foreach_and_counts(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    char key[16];
    awmap_dot_t dots[100];
    /* enough keys to grow the table several times, then drop most */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        dots[i] = add_s(m, 0, key, "v", NULL, 0, NULL, NULL);
        if (i % 3 == 0)
            add_s(m, 0, key, "w", NULL, 0, NULL, NULL);
    }
    assert_int_equal(awmap_key_count(m), 100);
    assert_int_equal(awmap_entry_count(m), 134);
    size_t n[2] = {0, 0};
    assert_int_equal(awmap_foreach(m, count_visit, n), 0);
    assert_int_equal(n[0], 100);
    assert_int_equal(n[1], 134);
    int stops = 0;
    assert_int_equal(awmap_foreach(m, stop_at_second, &stops), 42);
    assert_int_equal(stops, 2);

    for (int i = 0; i < 100; i++) {
        if (i % 3 == 0)
            continue;
        snprintf(key, sizeof key, "key-%d", i);
        remove_s(m, key, &dots[i], 1, NULL, NULL);
    }
    assert_int_equal(awmap_key_count(m), 34);
    assert_int_equal(awmap_entry_count(m), 68);
    /* every remaining key is still found after the deletions moved slots */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(awmap_get(m, key, strlen(key)) != NULL, i % 3 == 0);
    }
    n[0] = n[1] = 0;
    assert_int_equal(awmap_foreach(m, count_visit, n), 0);
    assert_int_equal(n[0], 34);
    assert_int_equal(n[1], 68);
    awmap_free(m);
}

/* ---- the key table's seed ------------------------------------------------------ */

/* Keys in the order awmap_foreach visits them, as one '|'-joined string. */
static int order_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)e;
    char *out = data;
    strncat(out, key, klen);
    strcat(out, "|");
    return 0;
}

/* A state of replica (1, 1) with keys key-0..key-(n-1), seeded unless
 * seed is 0. */
static awmap_t *seeded_with_keys(uint64_t seed, int n)
{
    awmap_t *m = awmap_new();
    uint32_t idx;
    char key[16];
    assert_non_null(m);
    if (seed)
        assert_int_equal(awmap_set_seed(m, seed), 0);
    assert_int_equal(awmap_replica(m, rid(1, 1), &idx), 0);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        add_s(m, idx, key, "v", NULL, 0, NULL, NULL);
    }
    return m;
}

/* The seed decides the layout, not the content: other seeds, other orders;
 * the same seed (or none, twice) the same order; seeding a map that holds a
 * key is HERD_EBUSY, and allowed again once the map is empty. */
static void test_awmap_seed_orders_keys(void **state)
{
    (void)state;
    static char o1[8192], o1b[8192], o2[8192], d1[8192], d2[8192];
    awmap_t *a = seeded_with_keys(1, 200), *a2 = seeded_with_keys(1, 200);
    awmap_t *b = seeded_with_keys(2, 200);
    awmap_t *u = seeded_with_keys(0, 200), *u2 = seeded_with_keys(0, 200);
    awmap_foreach(a, order_key, o1);
    awmap_foreach(a2, order_key, o1b);
    awmap_foreach(b, order_key, o2);
    awmap_foreach(u, order_key, d1);
    awmap_foreach(u2, order_key, d2);
    assert_string_equal(o1, o1b);
    assert_string_not_equal(o1, o2);
    assert_string_equal(d1, d2);
    assert_string_not_equal(d1, o1);
    assert_true(awmap_equal(a, b));
    assert_true(awmap_equal(a, u));

    assert_int_equal(awmap_set_seed(a, 3), HERD_EBUSY);
    awmap_t *one = seeded_with_keys(0, 1);
    assert_int_equal(awmap_set_seed(one, 3), HERD_EBUSY);
    awmap_dot_t dot = {0, 1};
    remove_s(one, "key-0", &dot, 1, NULL, NULL);
    assert_int_equal(awmap_key_count(one), 0);
    assert_int_equal(awmap_set_seed(one, 3), 0);
    add_s(one, 0, "key-0", "v", NULL, 0, NULL, NULL);
    assert_non_null(awmap_get(one, "key-0", 5));

    awmap_free(one);
    awmap_free(u2);
    awmap_free(u);
    awmap_free(b);
    awmap_free(a2);
    awmap_free(a);
}

static int count_hash_hit(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key;
    (void)klen;
    (void)e;
    ++*(int *)data;
    return 0;
}

/* Lookups by name and by hash (whole, or its top AWMAP_HASH_BITS), and
 * deletion's backward shift, agree with the seeded home bucket as the table
 * grows and keys go. */
static void test_awmap_seed_lookups_after_drops(void **state)
{
    (void)state;
    awmap_t *m = seeded_with_keys(77, 3000);
    char key[16];
    for (int i = 0; i < 3000; i++) {
        if (i % 3 == 0)
            continue;
        snprintf(key, sizeof key, "key-%d", i);
        awmap_dot_t dot = {0, (uint64_t)i + 1};
        remove_s(m, key, &dot, 1, NULL, NULL);
    }
    assert_int_equal(awmap_key_count(m), 1000);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        uint64_t h = awmap_key_hash(key, strlen(key));
        int hits = 0;
        assert_int_equal(awmap_foreach_hash(m, h, count_hash_hit, &hits), 0);
        assert_int_equal(hits, i % 3 == 0);
        /* the top AWMAP_HASH_BITS are enough (what the pid index keeps) */
        uint64_t top = h >> (64 - AWMAP_HASH_BITS) << (64 - AWMAP_HASH_BITS);
        assert_int_equal(awmap_foreach_hash(m, top, count_hash_hit, &hits), 0);
        assert_int_equal(hits, 2 * (i % 3 == 0));
        assert_int_equal(awmap_get(m, key, strlen(key)) != NULL, i % 3 == 0);
        assert_int_equal(awmap_get_hashed(m, key, strlen(key), h) != NULL, i % 3 == 0);
    }
    awmap_free(m);
}

/* ---- key storage: record blocks (recmem.h) and the key table ------------------- */

/* Blocks of every small size and some big ones: 8-aligned, named by their
 * reference, kept whole while others come and go; a freed block is the
 * next one of its size (a big block's chunk slot is taken again). */
static void test_recmem_blocks_and_refs(void **state)
{
    (void)state;
    enum { N = 3000 };
    static uint32_t refs[N];
    static uint8_t *ptrs[N];
    static size_t sizes[N];
    recmem_t r;
    recmem_init(&r);
    for (size_t i = 0; i < N; i++) {
        sizes[i] = 1 + (i * 37) % 700; /* up to 700: past RECMEM_SMALL too */
        ptrs[i] = recmem_alloc(&r, sizes[i], &refs[i]);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % 8, 0);
        memset(ptrs[i], (int)(i & 0xff), sizes[i]);
    }
    for (size_t i = 0; i < N; i += 2) {
        recmem_free(&r, refs[i], sizes[i]);
        uint32_t again;
        uint8_t *p = recmem_alloc(&r, sizes[i], &again);
        assert_non_null(p);
        assert_int_equal(again, refs[i]); /* the block just freed */
        ptrs[i] = p;
        memset(p, (int)(i & 0xff), sizes[i]);
    }
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(recmem_ptr(&r, refs[i]), ptrs[i]);
        for (size_t b = 0; b < sizes[i]; b++)
            if (ptrs[i][b] != (uint8_t)i)
                fail_msg("block %zu (%zu bytes) changed at byte %zu", i, sizes[i], b);
    }
    for (size_t i = 1; i < N; i += 2)
        recmem_free(&r, refs[i], sizes[i]);
    assert_int_equal(r.lost, 0);
    recmem_fini(&r);
}

/* Out of memory: recmem_alloc says so (NULL) and stays usable. */
static void test_recmem_alloc_failure(void **state)
{
    (void)state;
    recmem_t r;
    recmem_init(&r);
    uint32_t ref;
    for (long at = 0; at < 3; at++) { /* the chunk, the slot table, ... */
        fail_alloc_after(at, 0);
        void *p = recmem_alloc(&r, 600, &ref); /* a block of its own */
        int fired = g_fail.fired;
        fail_alloc_off();
        if (fired)
            assert_null(p);
        else
            recmem_free(&r, ref, 600);
    }
    fail_alloc_after(0, 1);
    assert_null(recmem_alloc(&r, 40, &ref));
    fail_alloc_off();
    uint8_t *p = recmem_alloc(&r, 40, &ref);
    assert_non_null(p);
    memset(p, 7, 40);
    assert_ptr_equal(recmem_ptr(&r, ref), p);
    recmem_fini(&r);
}

/* Key i of test_key_table_*: lengths 0..AWMAP_KEY_MAX in turn, any bytes
 * (NUL too), distinct: three bytes of i lead each key of 3 bytes or more. */
static size_t table_key(size_t i, char *out)
{
    size_t len = i % (AWMAP_KEY_MAX + 1);
    if (len < 3 && i > AWMAP_KEY_MAX)
        len = 3 + i % (AWMAP_KEY_MAX - 2);
    for (size_t b = 0; b < len; b++)
        out[b] = (char)(b < 3 ? (i >> (8 * b)) & 0xff : (i * 7 + b) & 0xff);
    if (len && len < 3)
        out[0] = (char)i; /* i < 256 here */
    return len;
}

static size_t table_value(size_t i, char *out)
{
    size_t len = i % 41;
    for (size_t b = 0; b < len; b++)
        out[b] = (char)(i + b);
    return len;
}

typedef struct table_ctx {
    const awmap_t *m;
    size_t visits;
} table_ctx_t;

static int table_visit(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    table_ctx_t *c = data;
    c->visits++;
    return awmap_get(c->m, key, klen) == e ? 0 : 1;
}

/* Whether key i holds its one entry (with its value), or none. */
static void table_check(const awmap_t *m, size_t n, const uint8_t *gone)
{
    char key[AWMAP_KEY_MAX], value[64];
    for (size_t i = 0; i < n; i++) {
        size_t klen = table_key(i, key), vlen = table_value(i, value);
        const awmap_entry_t *e = awmap_get(m, key, klen);
        if (gone[i]) {
            if (e != NULL)
                fail_msg("key %zu (%zu bytes) is back", i, klen);
            continue;
        }
        if (e == NULL)
            fail_msg("key %zu (%zu bytes) is missing", i, klen);
        assert_null(awmap_next(e));
        assert_int_equal(e->len, vlen);
        assert_memory_equal(e->value, value, vlen);
        assert_ptr_equal(awmap_get_hashed(m, key, klen, awmap_key_hash(key, klen)), e);
    }
}

/* Keys of every length past many growths of the table, then a third of
 * them removed (each drop shifts its probe run back), then put back: every
 * lookup finds what it should, and a walk over positions visits each key
 * once. */
static void test_key_table_growth_and_drops(void **state)
{
    (void)state;
    enum { N = 20000 };
    static awmap_dot_t dots[N];
    static uint8_t gone[N];
    memset(gone, 0, sizeof gone);
    awmap_t *m = replica_new(rid(1, 1));
    char key[AWMAP_KEY_MAX], value[64];
    for (size_t i = 0; i < N; i++) {
        size_t klen = table_key(i, key), vlen = table_value(i, value);
        assert_int_equal(awmap_add(m, 0, key, klen, value, vlen, NULL, 0, NULL, NULL, &dots[i]),
                         0);
        if (i % 2500 == 0)
            table_check(m, i + 1, gone);
    }
    assert_int_equal(awmap_key_count(m), N);
    table_check(m, N, gone);
    for (size_t i = 0; i < N; i += 3) {
        size_t klen = table_key(i, key);
        assert_int_equal(awmap_remove(m, key, klen, &dots[i], 1, NULL, NULL), 0);
        gone[i] = 1;
    }
    assert_int_equal(awmap_key_count(m), N - (N + 2) / 3);
    table_check(m, N, gone);
    table_ctx_t c = {m, 0};
    const uint64_t end = 1ull << 32, step = end / 7 + 1;
    for (uint64_t lo = 0; lo < end; lo += step)
        assert_int_equal(awmap_foreach_range(m, (uint32_t)lo, lo + step < end ? lo + step : end,
                                             table_visit, &c),
                         0);
    assert_int_equal(c.visits, awmap_key_count(m));
    for (size_t i = 0; i < N; i += 3) { /* back, in the blocks the drops freed */
        size_t klen = table_key(i, key), vlen = table_value(i, value);
        assert_int_equal(awmap_add(m, 0, key, klen, value, vlen, NULL, 0, NULL, NULL, &dots[i]),
                         0);
        gone[i] = 0;
    }
    table_check(m, N, gone);
    size_t len, used;
    uint8_t *buf = encode(m, &len);
    awmap_t *c2 = NULL;
    assert_int_equal(decode_n(buf, len, &c2, &used), 0);
    assert_true(awmap_equal(m, c2));
    table_check(c2, N, gone);
    awmap_free(c2);
    free(buf);
    awmap_free(m);
}

/* A key's value grows and shrinks (its record moves to a block of the new
 * size, one of its own past RECMEM_SMALL), and its first entry goes unused
 * while a second one stays, then is used again. */
static void test_record_value_resizes(void **state)
{
    (void)state;
    awmap_t *a = replica_new(rid(1, 1)), *b = replica_new(rid(2, 1));
    static char value[2000];
    const size_t lens[] = {3, 100, 600, 0, 1500, 5, 5, 40};
    awmap_dot_t dot = {0, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        memset(value, 'a' + (int)i, lens[i]);
        assert_int_equal(awmap_add(a, 0, "key", 3, value, lens[i], &dot, i ? 1 : 0, NULL, NULL,
                                   &dot),
                         0);
        const awmap_entry_t *e = awmap_get(a, "key", 3);
        assert_non_null(e);
        assert_null(awmap_next(e));
        assert_int_equal(e->len, lens[i]);
        assert_memory_equal(e->value, value, lens[i]);
    }
    /* b's concurrent entry joins in: two entries, a's first (inline) one
     * is removed, b's stays; then a writes again */
    awmap_t *d = delta_new();
    awmap_dot_t bdot;
    assert_int_equal(awmap_add(b, 0, "key", 3, "from-b", 6, NULL, 0, d, NULL, &bdot), 0);
    assert_int_equal(awmap_join(a, d, NULL), 0);
    assert_int_equal(count_entries(awmap_get(a, "key", 3)), 2);
    assert_int_equal(awmap_multi_key_count(a), 1);
    assert_int_equal(awmap_remove(a, "key", 3, &dot, 1, NULL, NULL), 0);
    const awmap_entry_t *e = awmap_get(a, "key", 3);
    assert_non_null(e);
    assert_null(awmap_next(e));
    assert_int_equal(e->len, 6);
    assert_memory_equal(e->value, "from-b", 6);
    assert_int_equal(awmap_multi_key_count(a), 0);
    assert_int_equal(awmap_add(a, 0, "key", 3, "again", 5, NULL, 0, NULL, NULL, &dot), 0);
    assert_int_equal(count_entries(awmap_get(a, "key", 3)), 2);
    assert_int_equal(awmap_get(a, "key", 3)->len, 5);
    assert_memory_equal(awmap_get(a, "key", 3)->value, "again", 5);
    awmap_t *c = round_trip(a);
    awmap_free(c);
    awmap_free(d);
    awmap_free(a);
    awmap_free(b);
}

/* What a key costs (awmap_memory): a 14-byte name with a 19-byte value
 * (a registration) is one 48-byte record, no link; a second entry makes the
 * record 8 bytes longer (its link) and puts the first on the heap with a
 * link of its own; when the key is back to one entry and is written again,
 * the record sheds its link. The entries read the same throughout. */
static void test_record_sizes_and_links(void **state)
{
    (void)state;
    awmap_t *a = replica_new(rid(1, 1)), *b = replica_new(rid(2, 1));
    const char *name = "fill-000000001"; /* 14 bytes */
    char value[19];
    memset(value, 'v', sizeof value);
    awmap_dot_t dot;
    awmap_memory_t mem;
    assert_int_equal(awmap_add(a, 0, name, 14, value, 19, NULL, 0, NULL, NULL, &dot), 0);
    awmap_memory(a, &mem);
    assert_int_equal(mem.records, 48);
    assert_int_equal(mem.entries, 0);
    assert_null(awmap_next(awmap_get(a, name, 14)));
    /* b's concurrent entry: two entries, the newest inline */
    awmap_t *d = delta_new();
    awmap_dot_t bdot;
    assert_int_equal(awmap_add(b, 0, name, 14, value, 19, NULL, 0, d, NULL, &bdot), 0);
    assert_int_equal(awmap_join(a, d, NULL), 0);
    awmap_memory(a, &mem);
    assert_int_equal(mem.records, 56);
    assert_int_equal(mem.entries, 40); /* 13 + 19 bytes, rounded to 8, and a link */
    const awmap_entry_t *e = awmap_get(a, name, 14);
    assert_non_null(e);
    assert_non_null(awmap_next(e));
    assert_null(awmap_next(awmap_next(e)));
    assert_int_equal(count_entries(e), 2);
    /* the inline entry (b's) goes: a's heap entry stays, linked from it */
    assert_int_equal(awmap_remove(a, name, 14, &(awmap_dot_t){1, bdot.counter}, 1, NULL, NULL),
                     0);
    e = awmap_get(a, name, 14);
    assert_non_null(e);
    assert_null(awmap_next(e));
    assert_int_equal(e->dot.replica, 0);
    assert_int_equal(e->dot.counter, dot.counter);
    /* a writes again, superseding its entry: one entry, the record 48 again */
    assert_int_equal(awmap_add(a, 0, name, 14, value, 19, &dot, 1, NULL, NULL, &dot), 0);
    awmap_memory(a, &mem);
    assert_int_equal(mem.records, 48);
    assert_int_equal(mem.entries, 0);
    assert_int_equal(count_entries(awmap_get(a, name, 14)), 1);
    assert_int_equal(awmap_multi_key_count(a), 0);
    awmap_free(d);
    awmap_free(a);
    awmap_free(b);
}

/* A new key's record cannot be had: the add says HERD_ENOMEM and changes
 * nothing; once memory is back the same add works. */
static void test_key_add_alloc_failure(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    char key[32];
    size_t added = 0;
    int rc = 0;
    fail_alloc_after(0, 1);
    for (size_t i = 0; i < 10000 && rc == 0; i++) {
        snprintf(key, sizeof key, "name-%zu", i);
        rc = awmap_add(m, 0, key, strlen(key), "v", 1, NULL, 0, NULL, NULL, NULL);
        added += rc == 0;
    }
    fail_alloc_off();
    assert_int_equal(rc, HERD_ENOMEM);
    assert_int_equal(awmap_key_count(m), added);
    assert_int_equal(awmap_entry_count(m), added);
    snprintf(key, sizeof key, "name-%zu", added);
    assert_null(awmap_get(m, key, strlen(key)));
    assert_int_equal(awmap_add(m, 0, key, strlen(key), "v", 1, NULL, 0, NULL, NULL, NULL), 0);
    assert_non_null(awmap_get(m, key, strlen(key)));
    awmap_free(m);
}

/* A dot's bounds: a counter up to AWMAP_COUNTER_MAX is an entry's (and
 * travels), past it the add is refused and a map on the wire is too;
 * AWMAP_REPLICAS_MAX replicas fit, one more does not until one is pruned. */
static void test_dot_bounds(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(1, 1));
    awmap_t *d = delta_new();
    assert_int_equal(awmap_note_removed(d, "x", 1, rid(1, 1), AWMAP_COUNTER_MAX - 1), 0);
    assert_int_equal(awmap_join(m, d, NULL), 0);
    awmap_dot_t dot;
    assert_int_equal(awmap_add(m, 0, "k", 1, "v", 1, NULL, 0, NULL, NULL, &dot), 0);
    assert_true(dot.counter == AWMAP_COUNTER_MAX);
    assert_int_equal(awmap_get(m, "k", 1)->dot.counter, AWMAP_COUNTER_MAX);
    awmap_t *c = round_trip(m);
    awmap_free(c);
    assert_int_equal(awmap_add(m, 0, "k2", 2, "v", 1, NULL, 0, NULL, NULL, NULL), HERD_ERANGE);
    assert_null(awmap_get(m, "k2", 2));
    assert_int_equal(awmap_entry_count(m), 1);
    awmap_free(d);
    awmap_free(m);

    wire_writer_t w;
    b_head(&w, 0, 1);
    b_replica(&w, 1, 1, AWMAP_COUNTER_MAX, 0, NULL);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, AWMAP_COUNTER_MAX, "v");
    expect_decode(&w, 0, "an entry at the largest counter");
    b_head(&w, 0, 1);
    b_replica(&w, 1, 1, AWMAP_COUNTER_MAX + 1, 0, NULL);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, AWMAP_COUNTER_MAX + 1, "v");
    expect_decode(&w, HERD_EBADFRAME, "an entry past the largest counter");

    m = awmap_new();
    assert_non_null(m);
    uint32_t idx;
    for (uint32_t i = 0; i < AWMAP_REPLICAS_MAX; i++)
        assert_int_equal(awmap_replica(m, rid(7, i + 1), &idx), 0);
    assert_int_equal(awmap_replica(m, rid(8, 1), &idx), HERD_ENOMEM);
    assert_int_equal(awmap_replica(m, rid(7, 1), &idx), 0); /* known ones still are */
    assert_int_equal(idx, 0);
    assert_int_equal(awmap_prune_replica(m, rid(7, 5)), 0);
    assert_int_equal(awmap_replica(m, rid(8, 1), &idx), 0);
    assert_int_equal(idx, 4);
    awmap_free(m);
}

/* Pieces of a map in its own bucket order, as a joining node receives
 * them: their dots come in no counter order, the receiver's cloud grows
 * and, with the last piece, folds into its version vector. */
typedef struct pieces {
    const awmap_t *src;
    awmap_t *at[64];
    size_t n;
} pieces_t;

static int piece_key(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)e;
    pieces_t *p = data;
    if (p->n == 0 || awmap_key_count(p->at[p->n - 1]) == 100) {
        assert_true(p->n < 64);
        p->at[p->n++] = delta_new();
    }
    assert_int_equal(awmap_copy_key(p->at[p->n - 1], p->src, key, klen), 0);
    return 0;
}

static void test_awmap_join_pieces_in_bucket_order(void **state)
{
    (void)state;
    awmap_t *a = seeded_with_keys(5, 3000);
    pieces_t p = {.src = a};
    awmap_foreach(a, piece_key, &p);
    assert_int_equal(p.n, 30);
    for (int reverse = 0; reverse < 2; reverse++) {
        awmap_t *b = replica_new(rid(2, 1));
        size_t cloud = 0, most = 0;
        for (size_t i = 0; i < p.n; i++) {
            assert_int_equal(awmap_join(b, p.at[reverse ? p.n - 1 - i : i], NULL), 0);
            awmap_vv(b, rid(1, 1), &cloud);
            most = cloud > most ? cloud : most;
        }
        assert_true(most > 100); /* the merge path ran */
        assert_int_equal(awmap_vv(b, rid(1, 1), &cloud), 3000);
        assert_int_equal(cloud, 0);
        assert_true(awmap_equal(a, b));
        /* again: nothing changes */
        for (size_t i = 0; i < p.n; i++)
            assert_int_equal(awmap_join(b, p.at[i], NULL), 0);
        assert_true(awmap_equal(a, b));
        awmap_free(b);
    }
    for (size_t i = 0; i < p.n; i++)
        awmap_free(p.at[i]);
    awmap_free(a);
}

/* ---- pieces of a map (state sync) ---------------------------------------------------- */

/* copy_key / copy_entry take entries with their own dots and nothing else of
 * the source's context; copy_context takes the context alone; note_removed
 * lists "this dot of this key is gone". Joined into a replica, the pieces do
 * what they say. */
static void test_copy_pieces(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    awmap_t *db = delta_new();
    add_s(a, 0, "k", "a1", NULL, 0, NULL, NULL);                   /* A:1 */
    awmap_dot_t gone = add_s(a, 0, "j", "a2", NULL, 0, NULL, NULL); /* A:2 */
    add_s(a, 0, "other", "a3", NULL, 0, NULL, NULL);               /* A:3 */
    add_s(b, 0, "k", "b1", NULL, 0, db, NULL);                     /* B:1 */
    assert_int_equal(awmap_join(a, db, NULL), 0);
    awmap_t *r = clone_state(a); /* a replica that still holds j */
    remove_s(a, "j", &gone, 1, NULL, NULL);

    /* copy_key: k's two entries, their two dots, nothing else */
    awmap_t *piece = delta_new();
    assert_int_equal(awmap_copy_key(piece, a, "k", 1), 0);
    assert_int_equal(awmap_entry_count(piece), 2);
    assert_int_equal(awmap_key_count(piece), 1);
    assert_entry(piece, "k", A, 1, "a1");
    assert_entry(piece, "k", B, 1, "b1");
    assert_true(awmap_seen(piece, A, 1));
    assert_true(awmap_seen(piece, B, 1));
    assert_false(awmap_seen(piece, A, 2));
    assert_false(awmap_seen(piece, A, 3));
    /* copying again changes nothing; an absent key is HERD_ENOENT */
    assert_int_equal(awmap_copy_key(piece, a, "k", 1), 0);
    assert_int_equal(awmap_entry_count(piece), 2);
    assert_int_equal(awmap_copy_key(piece, a, "j", 1), HERD_ENOENT);
    assert_int_equal(awmap_copy_key(piece, a, "nope", 4), HERD_ENOENT);
    assert_int_equal(awmap_key_count(piece), 1);
    /* a fresh replica gets exactly k */
    awmap_t *fresh = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(fresh, piece, NULL), 0);
    assert_int_equal(awmap_entry_count(fresh), 2);
    assert_null(awmap_get(fresh, "other", 5));

    /* copy_entry without the value: a digest's list of live dots */
    awmap_t *dig = delta_new();
    const awmap_entry_t *e = awmap_get(a, "other", 5);
    assert_non_null(e);
    assert_int_equal(awmap_copy_entry(dig, a, "other", 5, e, 0), 0);
    const awmap_entry_t *x = awmap_get(dig, "other", 5);
    assert_non_null(x);
    assert_null(awmap_next(x));
    assert_int_equal(x->len, 0);
    assert_int_equal(x->dot.counter, 3);
    assert_true(awmap_seen(dig, A, 3));
    assert_false(awmap_seen(dig, A, 1));
    /* and with it */
    assert_int_equal(awmap_copy_entry(dig, a, "k", 1, awmap_get(a, "k", 1), 1), 0);
    assert_int_equal(awmap_entry_count(dig), 2);

    /* note_removed: j's dot is gone; r, which holds it, drops it */
    awmap_t *rm = delta_new();
    assert_int_equal(awmap_note_removed(rm, "j", 1, A, 2), 0);
    assert_int_equal(awmap_key_count(rm), 1);
    assert_int_equal(awmap_entry_count(rm), 0);
    assert_true(awmap_seen(rm, A, 2));
    assert_false(awmap_seen(rm, A, 1));
    assert_non_null(awmap_get(r, "j", 1));
    assert_int_equal(awmap_join(r, rm, NULL), 0);
    assert_null(awmap_get(r, "j", 1));
    assert_true(awmap_equal(r, a));

    /* copy_context: the whole context, no keys */
    awmap_t *ctx = delta_new();
    assert_int_equal(awmap_copy_context(ctx, a), 0);
    assert_int_equal(awmap_key_count(ctx), 0);
    assert_int_equal(awmap_entry_count(ctx), 0);
    assert_false(awmap_is_empty(ctx)); /* a context alone is content */
    assert_int_equal(awmap_vv(ctx, A, NULL), 3);
    assert_int_equal(awmap_vv(ctx, B, NULL), 1);
    /* pieces + context = the state */
    assert_int_equal(awmap_copy_key(ctx, a, "k", 1), 0);
    assert_int_equal(awmap_copy_key(ctx, a, "other", 5), 0);
    awmap_t *rebuilt = replica_new(rid(4, 1));
    assert_int_equal(awmap_join_full(rebuilt, ctx, NULL), 0);
    assert_true(awmap_equal(rebuilt, a));

    awmap_free(rebuilt);
    awmap_free(ctx);
    awmap_free(rm);
    awmap_free(dig);
    awmap_free(fresh);
    awmap_free(piece);
    awmap_free(r);
    awmap_free(db);
    awmap_free(a);
    awmap_free(b);
}

/* Caller errors get HERD_EINVAL, as from the mutators: a key over the limit,
 * and note_removed on a state (which cannot hold a removal hint). */
static void test_copy_pieces_bad_arguments(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1);
    awmap_t *a = replica_new(A);
    add_s(a, 0, "k", "v", NULL, 0, NULL, NULL);
    char big[AWMAP_KEY_MAX + 1];
    memset(big, 'k', sizeof big);
    awmap_t *d = delta_new(), *st = awmap_new();
    assert_non_null(st);
    int rc[4];
    rc[0] = awmap_note_removed(st, "k", 1, A, 1);
    rc[1] = awmap_note_removed(d, big, sizeof big, A, 1);
    rc[2] = awmap_copy_entry(d, a, big, sizeof big, awmap_get(a, "k", 1), 1);
    rc[3] = awmap_copy_key(d, a, big, sizeof big); /* no such key: ENOENT is fine too */
    int st_empty = awmap_is_empty(st), d_keys = (int)awmap_key_count(d);
    awmap_free(st);
    awmap_free(d);
    awmap_free(a);
    if (rc[0] != HERD_EINVAL || rc[1] != HERD_EINVAL || rc[2] != HERD_EINVAL ||
        (rc[3] != HERD_EINVAL && rc[3] != HERD_ENOENT) || !st_empty || d_keys != 0)
        fail_msg("note_removed on a state %d, with a 256-byte key %d; copy_entry with a 256-byte "
                 "key %d; copy_key %d (want %d = EINVAL); state untouched %d, delta keys %d",
                 rc[0], rc[1], rc[2], rc[3], HERD_EINVAL, st_empty, d_keys);
}

/* note_entry: one write passed on by a node that is not its writer. A map
 * that never saw its dot takes it in; one that removed it keeps it removed;
 * one that holds it is unchanged. Bad arguments change nothing. */
static void test_note_entry_passes_one_write_on(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), C = rid(3, 1);
    awmap_t *a = replica_new(A);
    add_s(a, 0, "k", "v1", NULL, 0, NULL, NULL);                    /* A:1 */
    awmap_dot_t dot = add_s(a, 0, "j", "v2", NULL, 0, NULL, NULL); /* A:2 */
    awmap_t *gone = clone_state(a);
    remove_s(gone, "j", &dot, 1, NULL, NULL);

    awmap_t *d = delta_new();
    assert_int_equal(awmap_note_entry(d, "j", 1, A, 2, "v2", 2), 0);
    assert_int_equal(awmap_note_entry(d, "j", 1, A, 2, "v2", 2), 0); /* twice: one entry */
    assert_int_equal(awmap_key_count(d), 1);
    assert_int_equal(awmap_entry_count(d), 1);
    assert_entry(d, "j", A, 2, "v2");
    assert_true(awmap_seen(d, A, 2));
    assert_false(awmap_seen(d, A, 1)); /* only that write */

    awmap_t *c = replica_new(C); /* never saw A's writes */
    assert_int_equal(awmap_join(c, d, NULL), 0);
    assert_entry(c, "j", A, 2, "v2");
    assert_null(awmap_get(c, "k", 1));
    assert_false(awmap_seen(c, A, 1));

    awmap_t *before = clone_state(gone); /* removed it: stays removed */
    assert_int_equal(awmap_join(gone, d, NULL), 0);
    assert_null(awmap_get(gone, "j", 1));
    assert_true(awmap_equal(gone, before));
    awmap_t *held = clone_state(a); /* holds it: unchanged */
    assert_int_equal(awmap_join(held, d, NULL), 0);
    assert_true(awmap_equal(held, a));

    awmap_t *st = awmap_new(), *e = delta_new();
    assert_non_null(st);
    char big[AWMAP_KEY_MAX + 1];
    memset(big, 'k', sizeof big);
    assert_int_equal(awmap_note_entry(st, "j", 1, A, 2, "v2", 2), HERD_EINVAL); /* a state */
    assert_int_equal(awmap_note_entry(e, big, sizeof big, A, 2, "v2", 2), HERD_EINVAL);
    assert_int_equal(awmap_note_entry(e, "j", 1, A, 0, "v2", 2), HERD_EINVAL);
    assert_int_equal(awmap_note_entry(e, "j", 1, A, AWMAP_COUNTER_MAX + 1, "v2", 2), HERD_EINVAL);
    assert_int_equal(awmap_note_entry(e, "j", 1, A, 2, NULL, 2), HERD_EINVAL);
    assert_int_equal(awmap_note_entry(e, "j", 1, A, 2, "v2", AWMAP_VALUE_MAX + 1), HERD_EINVAL);
    assert_true(awmap_is_empty(st));
    assert_true(awmap_is_empty(e));
    awmap_free(e);
    awmap_free(st);
    awmap_free(held);
    awmap_free(before);
    awmap_free(c);
    awmap_free(d);
    awmap_free(gone);
    awmap_free(a);
}

/* ---- join out of memory ----------------------------------------------------------- */

/* Counts what observers are told, to check it against the map. */
static void count_added(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key, (void)klen, (void)e;
    ++*(long *)data;
}

static void count_removed(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key, (void)klen, (void)e;
    --*(long *)data;
}

typedef struct held_ctx {
    const awmap_t *m;
    int bad;
} held_ctx_t;

/* Every entry's dot is in the map's context, and a state lists no empty key. */
static int check_held(void *data, const char *key, size_t klen, const awmap_entry_t *e)
{
    (void)key, (void)klen;
    held_ctx_t *c = data;
    if (e == NULL)
        c->bad = 1;
    for (; e; e = awmap_next(e))
        if (!awmap_seen(c->m, awmap_replica_id(c->m, e->dot.replica), e->dot.counter))
            c->bad = 1;
    return 0;
}

/* Join d into a copy of m with the allocation `at` failing (and, sticky, all
 * after it): the join either succeeds and gives `want`, or says HERD_ENOMEM
 * and leaves a valid state that holds nothing `want` does not, that its
 * observer described, and from which the same join, retried, gives `want`.
 * Returns whether the failure fired (else `at` is past the join's last
 * allocation). */
static int join_failing_at(const awmap_t *m, const awmap_t *d, int full, const awmap_t *want,
                           long at, int sticky)
{
    awmap_t *c = clone_state(m);
    long net = 0;
    awmap_observer_t obs = {count_added, count_removed, &net};
    size_t before = awmap_entry_count(c);
    fail_alloc_after(at, sticky);
    int rc = full ? awmap_join_full(c, d, &obs) : awmap_join(c, d, &obs);
    int fired = g_fail.fired;
    fail_alloc_off();
    if (!fired)
        assert_int_equal(rc, 0);
    if (rc != 0)
        assert_int_equal(rc, HERD_ENOMEM);
    assert_int_equal((long)awmap_entry_count(c), (long)before + net);
    held_ctx_t h = {c, 0};
    awmap_foreach(c, check_held, &h);
    if (h.bad)
        fail_msg("allocation %ld (%s): an entry's dot missing from the context", at,
                 sticky ? "and after" : "once");
    awmap_t *above = clone_state(want); /* c holds nothing beyond want */
    assert_int_equal(awmap_join_full(above, c, NULL), 0);
    assert_true(awmap_equal(above, want));
    if (rc != 0)
        assert_int_equal(full ? awmap_join_full(c, d, &obs) : awmap_join(c, d, &obs), 0);
    if (!awmap_equal(c, want))
        fail_msg("allocation %ld (%s): rc %d, and the join (retried) is not m join d", at,
                 sticky ? "and after" : "once", rc);
    assert_int_equal((long)awmap_entry_count(c), (long)before + net);
    awmap_free(above);
    awmap_free(c);
    return fired;
}

/* A target and a delta that make a join allocate in every way it can: new
 * keys past the key table's growth, second entries of a key (heap entries),
 * longer values than a record holds, new replicas past the table's growth,
 * and clouds in both contexts. */
static void oom_fixture(awmap_t **mp, awmap_t **dp, awmap_t **statep)
{
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1), C = rid(3, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B), *c = replica_new(C);
    awmap_t *da = delta_new(), *db = delta_new(), *dc[6];
    char key[16];
    awmap_dot_t ad[12];
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ad[i] = add_s(a, 0, key, "a", NULL, 0, da, NULL);
    }
    assert_int_equal(awmap_join(b, da, NULL), 0);
    uint32_t ai = index_of(b, A);
    for (int i = 0; i < 4; i++) { /* B supersedes k0..k3 with longer values */
        awmap_dot_t sup = {ai, ad[i].counter};
        snprintf(key, sizeof key, "k%d", i);
        add_s(b, 0, key, "a longer value from b", &sup, 1, db, NULL);
    }
    for (int i = 4; i < 6; i++) { /* and removes k4, k5 */
        awmap_dot_t rm = {ai, ad[i].counter};
        snprintf(key, sizeof key, "k%d", i);
        remove_s(b, key, &rm, 1, db, NULL);
    }
    add_s(b, 0, "k6", "b's own k6", NULL, 0, db, NULL); /* a second entry of k6 */
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "b%d", i);
        add_s(b, 0, key, "b", NULL, 0, db, NULL);
    }
    for (int i = 0; i < 6; i++) { /* C's deltas reach B with gaps: a cloud */
        dc[i] = delta_new();
        snprintf(key, sizeof key, "c%d", i);
        add_s(c, 0, key, "c", NULL, 0, dc[i], NULL);
    }
    for (int i = 1; i < 6; i += 2)
        assert_int_equal(awmap_join(b, dc[i], NULL), 0);
    for (uint64_t n = 0; n < 24; n++) { /* replicas A has never heard of */
        awmap_t *x = replica_new(rid(100 + n, 3)), *dx = delta_new();
        snprintf(key, sizeof key, "x%llu", (unsigned long long)n);
        add_s(x, 0, key, "x", NULL, 0, dx, NULL);
        add_s(x, 0, key, "x2", NULL, 0, dx, NULL);
        awmap_t *skip = delta_new(); /* and a gap in each */
        add_s(x, 0, key, "x3", NULL, 0, skip, NULL);
        awmap_free(skip);
        add_s(x, 0, key, "x4", NULL, 0, dx, NULL);
        assert_int_equal(awmap_join(b, dx, NULL), 0);
        assert_int_equal(awmap_join(db, dx, NULL), 0);
        awmap_free(dx);
        awmap_free(x);
    }
    /* A meanwhile: a concurrent second entry of k0, k7 removed, a cloud of C */
    add_s(a, 0, "k0", "a again", NULL, 0, NULL, NULL);
    awmap_dot_t rm7 = ad[7];
    remove_s(a, "k7", &rm7, 1, NULL, NULL);
    assert_int_equal(awmap_join(a, dc[4], NULL), 0);
    /* the delta: everything B did and learned since da, as one interval */
    awmap_t *d = delta_new();
    assert_int_equal(awmap_join(d, db, NULL), 0);
    for (int i = 1; i < 6; i += 2)
        assert_int_equal(awmap_join(d, dc[i], NULL), 0);
    for (int i = 0; i < 6; i++)
        awmap_free(dc[i]);
    awmap_free(da);
    awmap_free(db);
    awmap_free(c);
    *mp = a;
    *dp = d;
    *statep = b;
}

static void test_join_out_of_memory_is_undone_or_retried(void **state)
{
    (void)state;
    awmap_t *a, *d, *b;
    oom_fixture(&a, &d, &b);
    /* the delta through join, and B's whole state through join_full */
    for (int full = 0; full < 2; full++) {
        const awmap_t *src = full ? b : d;
        awmap_t *want = clone_state(a);
        assert_int_equal(full ? awmap_join_full(want, src, NULL) : awmap_join(want, src, NULL),
                         0);
        assert_true(awmap_entry_count(want) > 60);
        for (int sticky = 0; sticky < 2; sticky++) {
            long at = 0;
            while (join_failing_at(a, src, full, want, at, sticky))
                at++;
            assert_true(at > 20); /* the fixture made it allocate */
        }
        awmap_free(want);
    }
    awmap_free(a);
    awmap_free(b);
    awmap_free(d);
}

/* ---- wire: round trips ------------------------------------------------------------ */

/* The builder writes what awmap_encode writes (a one-key map has one order). */
static void test_builder_matches_encoder(void **state)
{
    (void)state;
    awmap_t *m = replica_new(rid(7, 3));
    add_s(m, 0, "k", "val", NULL, 0, NULL, NULL);
    size_t len;
    uint8_t *enc = encode(m, &len);

    wire_writer_t w;
    b_head(&w, 0, 1);
    b_replica(&w, 7, 3, 1, 0, NULL);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 1, "val");
    size_t blen;
    uint8_t *built = wire_writer_take(&w, &blen);
    assert_non_null(built);
    assert_int_equal(blen, len);
    assert_memory_equal(built, enc, len);
    free(built);
    free(enc);
    awmap_free(m);
}

static void test_round_trip_states_and_deltas(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 5), A2 = rid(1, 2);
    /* empty state and empty delta */
    awmap_t *s0 = awmap_new(), *d0 = awmap_new_delta();
    awmap_t *c = round_trip(s0);
    awmap_free(c);
    c = round_trip(d0);
    awmap_free(c);

    /* a state with entries from three replicas (one a restarted node) and a
     * cloud with gaps */
    awmap_t *a = replica_new(A), *b = replica_new(B), *a2 = replica_new(A2);
    awmap_t *da = delta_new(), *db[5], *da2 = delta_new();
    add_s(a, 0, "svc", "on-a", NULL, 0, da, NULL);
    add_s(a, 0, "other", "", NULL, 0, da, NULL);
    for (int i = 0; i < 5; i++) {
        db[i] = delta_new();
        char key[8];
        snprintf(key, sizeof key, "b%d", i);
        add_s(b, 0, key, "bee", NULL, 0, db[i], NULL);
    }
    add_s(a2, 0, "svc", "on-a2", NULL, 0, da2, NULL);
    awmap_t *s = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(s, da, NULL), 0);
    assert_int_equal(awmap_join(s, da2, NULL), 0);
    assert_int_equal(awmap_join(s, db[2], NULL), 0); /* B: cloud {3, 5} */
    assert_int_equal(awmap_join(s, db[4], NULL), 0);
    size_t cloud;
    assert_int_equal(awmap_vv(s, B, &cloud), 0);
    assert_int_equal(cloud, 2);
    c = round_trip(s);
    assert_int_equal(awmap_vv(c, B, &cloud), 0);
    assert_int_equal(cloud, 2);
    assert_entry(c, "svc", A, 1, "on-a");
    assert_entry(c, "svc", A2, 1, "on-a2");
    awmap_free(c);

    /* a delta with a removed key (listed, no entries) and a live one */
    awmap_t *d = delta_new();
    awmap_dot_t first = {0, 1};
    remove_s(a, "svc", &first, 1, d, NULL);
    add_s(a, 0, "new", "n", NULL, 0, d, NULL);
    assert_int_equal(awmap_key_count(d), 2);
    c = round_trip(d);
    assert_null(awmap_get(c, "svc", 3));
    assert_int_equal(awmap_key_count(c), 2);
    /* the decoded delta still removes svc's entry on a replica */
    awmap_t *r = clone_state(s);
    assert_int_equal(awmap_join(r, c, NULL), 0);
    assert_null(find_entry(r, "svc", A, 1));
    assert_non_null(find_entry(r, "svc", A2, 1));
    awmap_free(r);
    awmap_free(c);

    /* a delta that only removes */
    awmap_t *rm = delta_new();
    awmap_dot_t other = {0, 2};
    remove_s(a, "other", &other, 1, rm, NULL);
    c = round_trip(rm);
    assert_int_equal(awmap_key_count(c), 1);
    assert_int_equal(awmap_entry_count(c), 0);
    awmap_free(c);

    /* decoding leaves the reader just after the map: a caller can put more
     * after it, or check wire_reader_done */
    size_t len;
    uint8_t *buf = encode(s, &len);
    uint8_t *more = malloc(len + 3);
    assert_non_null(more);
    memcpy(more, buf, len);
    memcpy(more + len, "xyz", 3);
    wire_reader_t rd;
    wire_reader_init(&rd, more, len + 3);
    awmap_t *m = NULL;
    assert_int_equal(awmap_decode(&rd, &m), 0);
    assert_int_equal(rd.off, len);
    assert_int_equal(wire_reader_done(&rd), HERD_EBADFRAME);
    awmap_free(m);
    free(more);
    free(buf);

    for (int i = 0; i < 5; i++)
        awmap_free(db[i]);
    awmap_free(rm);
    awmap_free(d);
    awmap_free(s);
    awmap_free(da);
    awmap_free(da2);
    awmap_free(a);
    awmap_free(b);
    awmap_free(a2);
    awmap_free(s0);
    awmap_free(d0);
}

/* A cloud may hold consecutive counters: here a replica saw B's dots 2 and 3
 * but not 1, so its context for B is vv 0, cloud {2, 3}. That state, and the
 * delta of a second metadata update (supersede dot 2 by dot 3: context
 * {2, 3}), are valid maps and must survive the wire. */
static void test_round_trip_cloud_with_consecutive_counters(void **state)
{
    (void)state;
    awmap_replica_id_t B = rid(2, 1);
    awmap_t *b = replica_new(B);
    awmap_t *d[3];
    for (int i = 0; i < 3; i++)
        d[i] = delta_new();
    awmap_dot_t v1 = add_s(b, 0, "name", "m1", NULL, 0, d[0], NULL);
    awmap_dot_t v2 = add_s(b, 0, "name", "m2", &v1, 1, d[1], NULL);
    add_s(b, 0, "name", "m3", &v2, 1, d[2], NULL);
    /* the third delta: context {2, 3} */
    size_t cloud;
    assert_int_equal(awmap_vv(d[2], B, &cloud), 0);
    assert_int_equal(cloud, 2);
    /* a state that got only the third delta: it saw dots 2 and 3 of B */
    awmap_t *s = replica_new(rid(3, 1));
    assert_int_equal(awmap_join(s, d[2], NULL), 0);
    assert_int_equal(awmap_vv(s, B, &cloud), 0);
    assert_int_equal(cloud, 2);

    const awmap_t *maps[2] = {d[2], s};
    int rc[2], eq[2];
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *buf = encode(maps[i], &len);
        awmap_t *c = NULL;
        rc[i] = decode_n(buf, len, &c, NULL);
        eq[i] = rc[i] == 0 && awmap_equal(c, maps[i]);
        if (rc[i] == 0)
            awmap_free(c);
        free(buf);
    }
    for (int i = 0; i < 3; i++)
        awmap_free(d[i]);
    awmap_free(s);
    awmap_free(b);
    if (rc[0] != 0 || rc[1] != 0)
        fail_msg("valid maps whose context for a replica is vv 0, cloud {2,3} do not decode: "
                 "the delta of a second supersede gave %d, a state that saw dots 2 and 3 gave %d",
                 rc[0], rc[1]);
    assert_true(eq[0] && eq[1]);
}

/* ---- wire: hostile input ----------------------------------------------------------- */

/* Every proper prefix of a valid encoding is refused (and read within its
 * bounds: each prefix is its own heap buffer). */
static void test_decode_truncated_every_offset(void **state)
{
    (void)state;
    awmap_replica_id_t A = rid(1, 1), B = rid(2, 1);
    awmap_t *a = replica_new(A), *b = replica_new(B);
    awmap_t *db[3], *d = delta_new();
    add_s(a, 0, "alpha", "value-a", NULL, 0, NULL, NULL);
    add_s(a, 0, "", "", NULL, 0, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        db[i] = delta_new();
        char key[8];
        snprintf(key, sizeof key, "b%d", i);
        add_s(b, 0, key, "bv", NULL, 0, db[i], NULL);
    }
    assert_int_equal(awmap_join(a, db[0], NULL), 0);
    assert_int_equal(awmap_join(a, db[2], NULL), 0); /* cloud {3} for B */
    /* the delta: alpha's dot 1 removed and a new alpha entry (dot 3), and
     * the empty key's dot 2 removed (listed with no entries) */
    awmap_dot_t gone[2] = {{index_of(a, A), 1}, {index_of(a, A), 2}};
    remove_s(a, "alpha", &gone[0], 1, d, NULL);
    remove_s(a, "", &gone[1], 1, d, NULL);
    add_s(a, 0, "alpha", "again", NULL, 0, d, NULL);
    assert_int_equal(awmap_key_count(d), 2);
    assert_int_equal(awmap_entry_count(d), 1);

    const awmap_t *maps[] = {a, d};
    for (int which = 0; which < 2; which++) {
        size_t len;
        uint8_t *buf = encode(maps[which], &len);
        for (size_t cut = 0; cut < len; cut++) {
            awmap_t *m = NULL;
            int rc = decode_n(buf, cut, &m, NULL);
            if (rc != HERD_EBADFRAME)
                fail_msg("%s cut to %zu of %zu bytes: decode gave %d", which ? "delta" : "state",
                         cut, len, rc);
        }
        awmap_t *m = NULL;
        assert_int_equal(decode_n(buf, len, &m, NULL), 0);
        assert_true(awmap_equal(m, maps[which]));
        awmap_free(m);
        free(buf);
    }
    for (int i = 0; i < 3; i++)
        awmap_free(db[i]);
    awmap_free(d);
    awmap_free(a);
    awmap_free(b);
}

/* A valid two-replica state as the builder writes it, with hooks for one bad
 * field at a time. */
static void valid_prefix(wire_writer_t *w, uint8_t is_delta)
{
    static const uint64_t cloud[] = {5};
    b_head(w, is_delta, 2);
    b_replica(w, 1, 1, 2, 0, NULL);  /* A: 1..2 */
    b_replica(w, 2, 1, 0, 1, cloud); /* B: {5} */
}

static void test_decode_malformed(void **state)
{
    (void)state;
    wire_writer_t w;

    /* the reference: valid, as a state and as a delta */
    for (uint8_t kind = 0; kind < 2; kind++) {
        valid_prefix(&w, kind);
        wire_put_u32(&w, 2);
        b_key(&w, "k", 1, 2);
        b_entry(&w, 0, 1, "a1");
        b_entry(&w, 1, 5, "b5");
        b_key(&w, "j", 1, 1);
        b_entry(&w, 0, 2, "a2");
        expect_decode(&w, 0, "valid reference");
    }

    /* kind byte other than 0 or 1 */
    b_head(&w, 2, 0);
    wire_put_u32(&w, 0);
    expect_decode(&w, HERD_EBADFRAME, "kind 2");

    /* an entry whose dot is not in the context */
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 3, "a3"); /* A's vv is 2 */
    expect_decode(&w, HERD_EBADFRAME, "dot above the vector");
    valid_prefix(&w, 1);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 1, 4, "b4"); /* B: only 5 */
    expect_decode(&w, HERD_EBADFRAME, "dot in a cloud gap (delta)");

    /* replica index out of range */
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 2, 1, "x");
    expect_decode(&w, HERD_EBADFRAME, "replica index 2 of 2");
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, UINT32_MAX, 1, "x");
    expect_decode(&w, HERD_EBADFRAME, "replica index UINT32_MAX");

    /* duplicate key */
    valid_prefix(&w, 0);
    wire_put_u32(&w, 2);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 1, "a1");
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 2, "a2");
    expect_decode(&w, HERD_EBADFRAME, "duplicate key");
    valid_prefix(&w, 1);
    wire_put_u32(&w, 2);
    b_key(&w, "k", 1, 0);
    b_key(&w, "k", 1, 0);
    expect_decode(&w, HERD_EBADFRAME, "duplicate empty key in a delta");

    /* duplicate dot within a key */
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 2);
    b_entry(&w, 0, 1, "a1");
    b_entry(&w, 0, 1, "a1");
    expect_decode(&w, HERD_EBADFRAME, "duplicate dot");

    /* counter 0 */
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 0, "zero");
    expect_decode(&w, HERD_EBADFRAME, "counter 0");

    /* duplicate replica id */
    b_head(&w, 0, 2);
    b_replica(&w, 1, 1, 2, 0, NULL);
    b_replica(&w, 1, 1, 3, 0, NULL);
    wire_put_u32(&w, 0);
    expect_decode(&w, HERD_EBADFRAME, "duplicate replica");

    /* clouds: unsorted, repeated, overlapping the vector, continuing the
     * vector (not folded), counter 0 */
    static const struct {
        uint64_t vv;
        uint32_t n;
        uint64_t c[3];
        const char *what;
    } clouds[] = {
        {0, 2, {7, 5}, "cloud not sorted"},
        {0, 2, {5, 5}, "cloud repeats a counter"},
        {4, 1, {3}, "cloud below the vector"},
        {4, 1, {4}, "cloud equal to the vector"},
        {4, 1, {5}, "cloud continues the vector (not folded)"},
        {0, 1, {0}, "cloud counter 0"},
        {0, 1, {1}, "cloud counter 1 over vector 0 (not folded)"},
        {2, 3, {5, 9, 8}, "cloud unsorted at the end"},
    };
    for (size_t i = 0; i < sizeof clouds / sizeof clouds[0]; i++) {
        b_head(&w, 0, 1);
        b_replica(&w, 1, 1, clouds[i].vv, clouds[i].n, clouds[i].c);
        wire_put_u32(&w, 0);
        expect_decode(&w, HERD_EBADFRAME, clouds[i].what);
    }

    /* absurd counts */
    b_head(&w, 0, UINT32_MAX);
    b_replica(&w, 1, 1, 1, 0, NULL);
    wire_put_u32(&w, 0);
    expect_decode(&w, HERD_EBADFRAME, "replica count UINT32_MAX");
    b_head(&w, 0, 1);
    wire_put_u64(&w, 1);
    wire_put_u64(&w, 1);
    wire_put_u64(&w, 0);
    wire_put_u32(&w, UINT32_MAX);
    wire_put_u64(&w, 5);
    wire_put_u32(&w, 0);
    expect_decode(&w, HERD_EBADFRAME, "cloud count UINT32_MAX");
    valid_prefix(&w, 0);
    wire_put_u32(&w, UINT32_MAX);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 1, "a1");
    expect_decode(&w, HERD_EBADFRAME, "key count UINT32_MAX");
    valid_prefix(&w, 1);
    wire_put_u32(&w, 1000);
    for (int i = 0; i < 3; i++) {
        char key[4] = {'k', (char)('0' + i), 0, 0};
        b_key(&w, key, 2, 0);
    }
    expect_decode(&w, HERD_EBADFRAME, "key count 1000, 3 keys there");
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, UINT16_MAX);
    b_entry(&w, 0, 1, "a1");
    expect_decode(&w, HERD_EBADFRAME, "entry count 65535, one there");
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    b_key(&w, "k", 1, 1);
    wire_put_u32(&w, 0);
    wire_put_u64(&w, 1);
    wire_put_u32(&w, UINT32_MAX); /* value length */
    wire_put_raw(&w, "abc", 3);
    expect_decode(&w, HERD_EBADFRAME, "value length UINT32_MAX");
    valid_prefix(&w, 0);
    wire_put_u32(&w, 1);
    wire_put_u32(&w, UINT32_MAX); /* key length */
    wire_put_raw(&w, "k", 1);
    expect_decode(&w, HERD_EBADFRAME, "key length UINT32_MAX");

    /* a key of 256 bytes (255 is fine) */
    char big[AWMAP_KEY_MAX + 1];
    memset(big, 'x', sizeof big);
    for (int over = 0; over < 2; over++) {
        valid_prefix(&w, 0);
        wire_put_u32(&w, 1);
        b_key(&w, big, AWMAP_KEY_MAX + (size_t)over, 1);
        b_entry(&w, 0, 1, "a1");
        expect_decode(&w, over ? HERD_EBADFRAME : 0, over ? "key of 256 bytes" : "key of 255");
    }

    /* a value over AWMAP_VALUE_MAX (the limit itself is fine) */
    char *value = malloc(AWMAP_VALUE_MAX + 2);
    assert_non_null(value);
    for (int over = 0; over < 2; over++) {
        memset(value, 'v', AWMAP_VALUE_MAX + 1);
        value[AWMAP_VALUE_MAX + (size_t)over] = '\0';
        valid_prefix(&w, 0);
        wire_put_u32(&w, 1);
        b_key(&w, "k", 1, 1);
        b_entry(&w, 0, 1, value);
        expect_decode(&w, over ? HERD_EBADFRAME : 0, over ? "value over the limit" : "value at it");
    }
    free(value);

    /* a state key with no entries (a delta's is a removal hint: fine) */
    for (uint8_t kind = 0; kind < 2; kind++) {
        valid_prefix(&w, kind);
        wire_put_u32(&w, 2);
        b_key(&w, "k", 1, 1);
        b_entry(&w, 0, 1, "a1");
        b_key(&w, "empty", 5, 0);
        expect_decode(&w, kind ? 0 : HERD_EBADFRAME, kind ? "delta empty key" : "state empty key");
    }

    /* a bad entry after many good keys: everything before it is freed (the
     * sanitizer build's leak check sees it) */
    b_head(&w, 0, 1);
    b_replica(&w, 1, 1, 100, 0, NULL);
    wire_put_u32(&w, 40);
    for (int i = 0; i < 39; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        b_key(&w, key, strlen(key), 1);
        b_entry(&w, 0, (uint64_t)i + 1, "v");
    }
    b_key(&w, "last", 4, 1);
    b_entry(&w, 0, 0, "bad");
    expect_decode(&w, HERD_EBADFRAME, "bad last entry after 39 keys");
}

/* A dot names one write, of one key; the same dot under two keys cannot come
 * from any map and would leave an entry no per-key remove can reach. */
static void test_decode_rejects_dot_under_two_keys(void **state)
{
    (void)state;
    wire_writer_t w;
    valid_prefix(&w, 0);
    wire_put_u32(&w, 2);
    b_key(&w, "k", 1, 1);
    b_entry(&w, 0, 1, "a1");
    b_key(&w, "j", 1, 1);
    b_entry(&w, 0, 1, "a1");
    expect_decode(&w, HERD_EBADFRAME, "the same dot under two keys");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_interning),
        cmocka_unit_test(test_replica_index_many),
        cmocka_unit_test(test_add_get_remove),
        cmocka_unit_test(test_add_bad_arguments),
        cmocka_unit_test(test_add_supersede_dot_out_of_range_is_einval),
        cmocka_unit_test(test_remove_bad_arguments),
        cmocka_unit_test(test_key_and_value_limits),
        cmocka_unit_test(test_remove_removes_only_given_dots),
        cmocka_unit_test(test_supersede_replaces_in_one_delta),
        cmocka_unit_test(test_concurrent_adds_both_survive),
        cmocka_unit_test(test_stale_add_does_not_resurrect),
        cmocka_unit_test(test_prune_replica),
        cmocka_unit_test(test_delta_applied_twice_changes_nothing),
        cmocka_unit_test(test_interval_accumulates),
        cmocka_unit_test(test_cc_folding),
        cmocka_unit_test(test_observers),
        cmocka_unit_test(test_join_full_sees_unlisted_keys),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_foreach_and_counts),
        cmocka_unit_test(test_foreach_range),
        cmocka_unit_test(test_foreach_range_whole_order_once),
        cmocka_unit_test(test_awmap_seed_orders_keys),
        cmocka_unit_test(test_awmap_seed_lookups_after_drops),
        cmocka_unit_test(test_recmem_blocks_and_refs),
        cmocka_unit_test(test_recmem_alloc_failure),
        cmocka_unit_test(test_key_table_growth_and_drops),
        cmocka_unit_test(test_record_value_resizes),
        cmocka_unit_test(test_record_sizes_and_links),
        cmocka_unit_test(test_key_add_alloc_failure),
        cmocka_unit_test(test_dot_bounds),
        cmocka_unit_test(test_awmap_join_pieces_in_bucket_order),
        cmocka_unit_test(test_copy_pieces),
        cmocka_unit_test(test_copy_pieces_bad_arguments),
        cmocka_unit_test(test_note_entry_passes_one_write_on),
        cmocka_unit_test(test_join_out_of_memory_is_undone_or_retried),
        cmocka_unit_test(test_builder_matches_encoder),
        cmocka_unit_test(test_round_trip_states_and_deltas),
        cmocka_unit_test(test_round_trip_cloud_with_consecutive_counters),
        cmocka_unit_test(test_decode_truncated_every_offset),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_rejects_dot_under_two_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
