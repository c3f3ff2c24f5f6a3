/*
 * test_replica_store.c - the copies a replica keeps (handoff/replica_store.h),
 * pure: no node, no I/O.
 *
 * What is covered:
 * - replica_rank_newer's rules: within one registration the higher version;
 *   the registration the registry shows wins either way round (even one
 *   older than the spec); failing that a registration of the current spec
 *   (hlc >= floor, the floor itself included) beats an older one; of two
 *   current ones the earlier wins, of two older ones the later; and
 *   replica_newer: any copy is newer than none;
 * - forks (two runs of one registration, told apart by their writers):
 *   replica_lineage_holds; a put whose run does not hold the copy (a fork)
 *   becomes the copy, even below its version, and the copy is kept as an
 *   other of the same registration until replica_drop_other; the run
 *   putting again takes its copy back from the others; what the run holds
 *   (the copy it started from, an older one of that writer) is replaced
 *   with no other; without mergeable, versions decide;
 * - replica_put's answers: 1 stored as the copy, 2 kept as an other, 0 not
 *   newer (and then nothing changed: owner, bytes, version);
 * - others: a losing copy of another registration is kept only when
 *   mergeable and of the current spec; the newest copy of each
 *   registration; a winning registration keeps the one it replaces as an
 *   other (mergeable and current) or drops it; at most REPLICA_OTHERS_MAX,
 *   the oldest registration's going (others_dropped counts);
 * - a put of a registration held as an other promotes it to the copy and
 *   removes that other;
 * - replica_drop with hlc 0 (everything), with a wrong hlc (nothing), with
 *   the copy's hlc and no others (the entry goes) and with others waiting
 *   (only the copy goes; the others stay until replica_drop_other);
 * - byte accounting after every step (a walk of the map against
 *   store.count and store.bytes), back to 0 once everything is dropped;
 * - twins: three names with one 64-bit hash (awmap_key_hash is XXH3_64bits;
 *   its inputs of 4 to 8 bytes are a bijective mix of the bytes, so a
 *   name of 8 and one of 7 bytes with the hash of a longer name come from
 *   inverting that mix: the test checks the hashes are equal first), put,
 *   found, dropped in every order with others on them; and 2,000 names put
 *   and dropped (the map growing and shrinking under the chains).
 *
 * TEST_REPLICA_STORE_FILTER / TEST_REPLICA_STORE_SKIP (cmocka patterns) run
 * or skip some cases; TEST_REPLICA_STORE_SKIP='*_found_*' skips the ones
 * below.
 *
 * Found (kept failing, see the report):
 * - test_replica_store_found_drop_other_last_leaves_nothing: once the copy was
 *   dropped with its hlc and the last other merged (replica_drop_other),
 *   an empty entry stays: store.count (herd_repl_stats' held) stays 1.
 * - test_replica_store_found_emptied_entry_takes_a_copy: an entry whose copy was
 *   dropped with its hlc (others waiting) holds no copy, yet with an
 *   unknown spec (floor 0) no put is newer than it (replica_rank_newer
 *   against hlc 0): not mergeable, a put is refused; mergeable, the owner's
 *   copy is kept as an other beside an empty copy.
 * - test_replica_store_found_promotion_keeps_the_newer_version: an other holds
 *   version 9 of a registration; a put of its version 5 that wins against
 *   the copy (visible now) replaces the copy and drops the other: version 9
 *   is gone.
 * - test_replica_store_found_promotion_with_others_full: with REPLICA_OTHERS_MAX
 *   others, promoting one of them drops the oldest other to make room for
 *   the replaced copy, then frees the promoted one's place.
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
#include "replica_store.h"

/* ---- helpers ------------------------------------------------------------------------- */

static const replica_rank_t NO_RANK = {0, 0};

/* A state of `len` bytes, each `fill`. */
static const uint8_t *bytes_of(uint8_t fill, size_t len)
{
    static uint8_t buf[4096];
    assert_true(len <= sizeof(buf));
    memset(buf, fill, len);
    return buf;
}

/* The cases below that do not say otherwise put copies of one run
 * (writer ONE_RUN) of each registration: versions alone order them. */
#define ONE_RUN 1

static int put(replica_store_t *s, const char *name, uint64_t owner, uint64_t hlc,
               uint64_t version, replica_rank_t rank, int mergeable, uint8_t fill, size_t len)
{
    replica_lineage_t lin = {ONE_RUN, 0, 0};
    replica_t *at = replica_find(s, name);
    int rc = replica_put(s, &at, name, owner, hlc, version, &lin, rank, mergeable,
                         bytes_of(fill, len), len);
    assert_ptr_equal(at, replica_find(s, name)); /* what it says it holds under the name */
    return rc;
}

/* A put by run `writer` that started from `base_writer`'s copy at
 * `base_version`. */
static int put_run(replica_store_t *s, const char *name, uint64_t hlc, uint64_t version,
                   uint64_t writer, uint64_t base_writer, uint64_t base_version, int mergeable,
                   uint8_t fill)
{
    replica_lineage_t lin = {writer, base_writer, base_version};
    replica_t *at = replica_find(s, name);
    int rc = replica_put(s, &at, name, writer, hlc, version, &lin, NO_RANK, mergeable,
                         bytes_of(fill, 8), 8);
    assert_ptr_equal(at, replica_find(s, name));
    return rc;
}

static int all_are(const uint8_t *b, size_t len, uint8_t fill)
{
    for (size_t i = 0; i < len; i++)
        if (b[i] != fill)
            return 0;
    return 1;
}

static const replica_other_t *other_by(const replica_t *r, uint64_t hlc, uint64_t writer)
{
    for (size_t i = 0; i < r->others_n; i++)
        if (r->others[i].hlc == hlc && r->others[i].writer == writer)
            return &r->others[i];
    return NULL;
}

static const replica_other_t *other_of(const replica_t *r, uint64_t hlc)
{
    return other_by(r, hlc, ONE_RUN);
}

/* Walk the map: every entry's hash is its slot's (a twin's too) and its
 * name's; count and bytes agree with the store's; others are distinct
 * registrations, at most REPLICA_OTHERS_MAX. */
static void check_store(const replica_store_t *s)
{
    size_t count = 0, cursor = 0;
    uint64_t bytes = 0;
    for (u64map_slot_t *sl; (sl = u64map_next(&s->by_hash, &cursor)) != NULL;)
        for (const replica_t *r = sl->value; r; r = r->twin) {
            count++;
            uint64_t h = awmap_key_hash(r->name, strlen(r->name));
            assert_int_equal(r->hash, h ? h : 1);
            assert_int_equal(r->hash, sl->key);
            assert_ptr_equal(replica_find(s, r->name), r);
            if (r->bytes)
                bytes += r->len;
            else
                assert_int_equal(r->len, 0);
            assert_true(r->others_n <= REPLICA_OTHERS_MAX);
            for (size_t i = 0; i < r->others_n; i++) {
                const replica_other_t *o = &r->others[i];
                assert_non_null(o->bytes);
                bytes += o->len;
                /* the copy's run is no other; others are distinct runs */
                assert_false(r->bytes && o->hlc == r->hlc && o->writer == r->writer);
                for (size_t j = i + 1; j < r->others_n; j++)
                    assert_false(o->hlc == r->others[j].hlc && o->writer == r->others[j].writer);
            }
        }
    assert_int_equal(count, s->count);
    assert_int_equal(bytes, s->bytes);
}

static void assert_copy(const replica_store_t *s, const char *name, uint64_t owner, uint64_t hlc,
                        uint64_t version, uint8_t fill, size_t len)
{
    const replica_t *r = replica_find(s, name);
    assert_non_null(r);
    assert_string_equal(r->name, name);
    assert_int_equal(r->owner, owner);
    assert_int_equal(r->hlc, hlc);
    assert_int_equal(r->version, version);
    assert_non_null(r->bytes);
    assert_int_equal(r->len, len);
    assert_true(all_are(r->bytes, len, fill));
}

static void assert_other(const replica_store_t *s, const char *name, uint64_t hlc,
                         uint64_t version, uint8_t fill, size_t len)
{
    const replica_t *r = replica_find(s, name);
    assert_non_null(r);
    const replica_other_t *o = other_of(r, hlc);
    if (o == NULL)
        fail_msg("'%s': no other of registration %llu", name, (unsigned long long)hlc);
    assert_int_equal(o->version, version);
    assert_int_equal(o->len, len);
    assert_true(all_are(o->bytes, len, fill));
}

/* ---- forks: two runs of one registration ------------------------------------------------ */

static void test_replica_store_lineage_holds(void **state)
{
    (void)state;
    replica_lineage_t l = {.writer = 20, .base_writer = 10, .base_version = 5};
    assert_true(replica_lineage_holds(&l, 20, 1));   /* its own */
    assert_true(replica_lineage_holds(&l, 20, 999)); /* its own, any version */
    assert_true(replica_lineage_holds(&l, 10, 5));   /* what it started from */
    assert_true(replica_lineage_holds(&l, 10, 4));   /* older, same writer */
    assert_false(replica_lineage_holds(&l, 10, 6));  /* the run it left went on */
    assert_false(replica_lineage_holds(&l, 30, 1));  /* another run */
    replica_lineage_t fresh = {.writer = 20};
    assert_false(replica_lineage_holds(&fresh, 10, 1));
    assert_true(replica_lineage_holds(&fresh, 20, 1));
}

/* Run 20 started from run 10's version 3, while run 10 went on to version
 * 5 (a partition hid it): 20's put becomes the copy, 10's version 5 is
 * kept as an other of the same registration to be merged. */
static void test_replica_store_fork_kept_to_merge(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    assert_int_equal(put_run(&s, "a", 100, 5, 10, 0, 0, 1, 0x10), 1);
    assert_int_equal(put_run(&s, "a", 100, 9, 20, 10, 3, 1, 0x20), 1);
    const replica_t *r = replica_find(&s, "a");
    assert_int_equal(r->writer, 20);
    assert_int_equal(r->version, 9);
    assert_int_equal(r->others_n, 1);
    const replica_other_t *o = other_by(r, 100, 10);
    assert_non_null(o);
    assert_int_equal(o->version, 5);
    assert_true(all_are(o->bytes, 8, 0x10));
    /* 20 goes on: its copy is replaced, the fork's other stays */
    assert_int_equal(put_run(&s, "a", 100, 10, 20, 10, 3, 1, 0x21), 1);
    assert_int_equal(r->version, 10);
    assert_non_null(other_by(r, 100, 10));
    check_store(&s);
    /* merged: it goes, not when the merge was of an older version of it */
    assert_int_equal(replica_drop_other(&s, "a", 100, 10, 4), 0);
    assert_int_equal(r->others_n, 1);
    assert_int_equal(replica_drop_other(&s, "a", 100, 20, UINT64_MAX), 0); /* the copy is no other */
    assert_int_equal(replica_drop_other(&s, "a", 100, 10, UINT64_MAX), 1);
    assert_int_equal(r->others_n, 0);
    assert_int_equal(s.bytes, 8);
    check_store(&s);
    replica_store_fini(&s);
}

/* A fork's put becomes the copy even below the held version (clocks of two
 * nodes): the run putting here is the one this node serves now. */
static void test_replica_store_fork_lower_version(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    assert_int_equal(put_run(&s, "a", 100, 50, 10, 0, 0, 1, 0x10), 1);
    assert_int_equal(put_run(&s, "a", 100, 9, 20, 10, 3, 1, 0x20), 1);
    const replica_t *r = replica_find(&s, "a");
    assert_int_equal(r->writer, 20);
    assert_int_equal(r->version, 9);
    assert_int_equal(other_by(r, 100, 10)->version, 50);
    /* run 10 puts again (it still runs across the partition): its copy
     * comes back from the others, 20's goes there */
    assert_int_equal(put_run(&s, "a", 100, 51, 10, 0, 0, 1, 0x11), 1);
    assert_int_equal(r->writer, 10);
    assert_int_equal(r->version, 51);
    assert_true(all_are(r->bytes, 8, 0x11));
    assert_int_equal(r->others_n, 1);
    assert_int_equal(other_by(r, 100, 20)->version, 9);
    check_store(&s);
    /* a late put of 10's, older than its copy: refused, nothing changes */
    assert_int_equal(put_run(&s, "a", 100, 40, 10, 0, 0, 1, 0x12), 0);
    assert_int_equal(r->version, 51);
    check_store(&s);
    replica_store_fini(&s);
}

/* What the putting run holds is replaced as before: the copy it started
 * from, an older one of that writer, its own. */
static void test_replica_store_lineage_replaces(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    assert_int_equal(put_run(&s, "a", 100, 5, 10, 0, 0, 1, 0x10), 1);
    assert_int_equal(put_run(&s, "a", 100, 9, 20, 10, 5, 1, 0x20), 1); /* moved at 5 */
    assert_int_equal(replica_find(&s, "a")->others_n, 0);
    assert_int_equal(put_run(&s, "b", 100, 4, 10, 0, 0, 1, 0x10), 1);
    assert_int_equal(put_run(&s, "b", 100, 9, 20, 10, 5, 1, 0x20), 1); /* a lagging copy */
    assert_int_equal(replica_find(&s, "b")->others_n, 0);
    assert_int_equal(s.bytes, 16);
    check_store(&s);
    replica_store_fini(&s);
}

/* Without a merge (no resolve_conflict) a fork cannot be kept for
 * anything: versions decide, as between copies of one run. */
static void test_replica_store_fork_not_mergeable(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    assert_int_equal(put_run(&s, "a", 100, 5, 10, 0, 0, 0, 0x10), 1);
    assert_int_equal(put_run(&s, "a", 100, 4, 20, 10, 3, 0, 0x20), 0);
    assert_int_equal(replica_find(&s, "a")->writer, 10);
    assert_int_equal(put_run(&s, "a", 100, 9, 20, 10, 3, 0, 0x20), 1);
    const replica_t *r = replica_find(&s, "a");
    assert_int_equal(r->writer, 20);
    assert_int_equal(r->others_n, 0);
    assert_int_equal(s.bytes, 8);
    check_store(&s);
    replica_store_fini(&s);
}

/* ---- replica_rank_newer ---------------------------------------------------------------- */

static void test_replica_store_rank_same_registration(void **state)
{
    (void)state;
    static const replica_rank_t ranks[] = {{0, 0}, {10, 5}, {99, 0}, {0, 100}, {10, 100}};
    for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
        replica_rank_t k = ranks[i];
        /* registration 10: before the floor in some ranks, visible in others */
        assert_true(replica_rank_newer(10, 3, 10, 4, k));
        assert_true(replica_rank_newer(10, 0, 10, 1, k));
        assert_false(replica_rank_newer(10, 4, 10, 4, k));
        assert_false(replica_rank_newer(10, 4, 10, 3, k));
        assert_true(replica_rank_newer(10, 4, 10, UINT64_MAX, k));
    }
}

static void test_replica_store_rank_visible_wins(void **state)
{
    (void)state;
    /* both current (floor 5), 10 is the earlier: it would win but 20 is visible */
    replica_rank_t k = {.visible = 20, .floor = 5};
    assert_true(replica_rank_newer(10, 9, 20, 1, k));
    assert_false(replica_rank_newer(20, 1, 10, 9, k));
    /* the visible one wins even when older than the spec */
    k = (replica_rank_t){.visible = 3, .floor = 5};
    assert_true(replica_rank_newer(10, 9, 3, 1, k));
    assert_false(replica_rank_newer(3, 1, 10, 9, k));
    /* neither is visible: the other rules decide (10 is the earlier current one) */
    k = (replica_rank_t){.visible = 30, .floor = 5};
    assert_true(replica_rank_newer(20, 9, 10, 1, k));
    assert_false(replica_rank_newer(10, 1, 20, 9, k));
}

static void test_replica_store_rank_current_beats_older(void **state)
{
    (void)state;
    replica_rank_t k = {.visible = 0, .floor = 100};
    /* 50 is older than the spec, 200 is current: 200 wins either way round */
    assert_true(replica_rank_newer(50, 9, 200, 1, k));
    assert_false(replica_rank_newer(200, 1, 50, 9, k));
    /* hlc == floor is current */
    assert_true(replica_rank_newer(99, 9, 100, 1, k));
    assert_false(replica_rank_newer(100, 1, 99, 9, k));
    /* versions do not matter between registrations */
    assert_true(replica_rank_newer(50, UINT64_MAX, 200, 1, k));
}

static void test_replica_store_rank_earlier_current_wins(void **state)
{
    (void)state;
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_true(replica_rank_newer(300, 1, 200, 1, k));
    assert_false(replica_rank_newer(200, 1, 300, 1, k));
    assert_true(replica_rank_newer(300, 1, 100, 1, k));
    /* no floor known (0): every registration is current */
    assert_true(replica_rank_newer(300, 1, 200, 1, NO_RANK));
    assert_false(replica_rank_newer(200, 9, 300, 1, NO_RANK));
    /* of two older than the spec, the later one */
    assert_true(replica_rank_newer(20, 1, 30, 1, k));
    assert_false(replica_rank_newer(30, 1, 20, 1, k));
    /* and none is newer than none */
    assert_true(replica_newer(NULL, 1, 1, k));
    assert_true(replica_newer(NULL, 1, 1, NO_RANK));
}

/* ---- replica_put ----------------------------------------------------------------------- */

static void test_replica_store_put_answers(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    assert_null(replica_find(&s, "a"));
    assert_int_equal(put(&s, "a", 7, 100, 1, NO_RANK, 0, 0xa1, 10), 1);
    assert_copy(&s, "a", 7, 100, 1, 0xa1, 10);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.bytes, 10);
    /* the same version again, and an older one: 0, nothing changed */
    assert_int_equal(put(&s, "a", 8, 100, 1, NO_RANK, 0, 0xb2, 20), 0);
    assert_int_equal(put(&s, "a", 8, 100, 1, NO_RANK, 1, 0xb2, 20), 0);
    assert_copy(&s, "a", 7, 100, 1, 0xa1, 10);
    assert_int_equal(s.bytes, 10);
    assert_int_equal(put(&s, "a", 7, 100, 2, NO_RANK, 0, 0xa2, 30), 1);
    assert_int_equal(put(&s, "a", 7, 100, 1, NO_RANK, 0, 0xa1, 10), 0);
    assert_copy(&s, "a", 7, 100, 2, 0xa2, 30);
    assert_int_equal(s.bytes, 30);
    /* a newer version from another owner (the child moved): taken, owner too */
    assert_int_equal(put(&s, "a", 9, 100, 3, NO_RANK, 0, 0xa3, 0), 1);
    assert_copy(&s, "a", 9, 100, 3, 0xa3, 0);
    assert_int_equal(s.bytes, 0);
    /* another name */
    assert_int_equal(put(&s, "b", 7, 50, 1, NO_RANK, 0, 0xb1, 5), 1);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.bytes, 5);
    assert_int_equal(s.others_dropped, 0);
    check_store(&s);
    replica_store_fini(&s);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.bytes, 0);
}

/* A losing copy of another registration: kept only when mergeable and of
 * the current spec. */
static void test_replica_store_put_keeps_losers_to_merge(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(put(&s, "a", 1, 200, 5, k, 1, 0xa0, 10), 1);
    /* 300 is current but later than 200: it loses */
    assert_int_equal(put(&s, "a", 2, 300, 9, k, 0, 0xb0, 20), 0); /* not mergeable */
    assert_int_equal(replica_find(&s, "a")->others_n, 0);
    assert_int_equal(s.bytes, 10);
    assert_int_equal(put(&s, "a", 2, 300, 9, k, 1, 0xb0, 20), 2);
    assert_copy(&s, "a", 1, 200, 5, 0xa0, 10);
    assert_other(&s, "a", 300, 9, 0xb0, 20);
    assert_int_equal(s.bytes, 30);
    assert_int_equal(s.count, 1);
    /* 50 is older than the spec: never kept, mergeable or not */
    assert_int_equal(put(&s, "a", 3, 50, 1, k, 1, 0xc0, 40), 0);
    assert_int_equal(replica_find(&s, "a")->others_n, 1);
    /* the newest copy of each registration: version 10 replaces 9, 8 does not */
    assert_int_equal(put(&s, "a", 2, 300, 10, k, 1, 0xb1, 25), 2);
    assert_other(&s, "a", 300, 10, 0xb1, 25);
    assert_int_equal(put(&s, "a", 2, 300, 8, k, 1, 0xb2, 99), 0);
    assert_int_equal(put(&s, "a", 2, 300, 10, k, 1, 0xb2, 99), 0);
    assert_other(&s, "a", 300, 10, 0xb1, 25);
    assert_int_equal(replica_find(&s, "a")->others_n, 1);
    assert_int_equal(s.bytes, 35);
    /* the copy's own registration never goes to the others */
    assert_int_equal(put(&s, "a", 1, 200, 4, k, 1, 0xa9, 1), 0);
    assert_null(other_of(replica_find(&s, "a"), 200));
    check_store(&s);
    replica_store_fini(&s);
}

/* A winning registration replaces the copy: the replaced one is kept as an
 * other when mergeable and current, else it goes. */
static void test_replica_store_put_winner_keeps_the_replaced(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    /* current and earlier: 200 beats 300 */
    assert_int_equal(put(&s, "m", 1, 300, 7, k, 1, 0x30, 30), 1);
    assert_int_equal(put(&s, "m", 2, 200, 1, k, 1, 0x20, 20), 1);
    assert_copy(&s, "m", 2, 200, 1, 0x20, 20);
    assert_other(&s, "m", 300, 7, 0x30, 30);
    assert_int_equal(s.bytes, 50);
    check_store(&s);
    /* not mergeable: the replaced copy goes */
    assert_int_equal(put(&s, "n", 1, 300, 7, k, 0, 0x30, 30), 1);
    assert_int_equal(put(&s, "n", 2, 200, 1, k, 0, 0x20, 20), 1);
    assert_copy(&s, "n", 2, 200, 1, 0x20, 20);
    assert_int_equal(replica_find(&s, "n")->others_n, 0);
    assert_int_equal(s.bytes, 70);
    /* the replaced one older than the spec: it goes, mergeable or not */
    assert_int_equal(put(&s, "o", 1, 50, 7, k, 1, 0x05, 5), 1);
    assert_int_equal(put(&s, "o", 2, 200, 1, k, 1, 0x20, 20), 1);
    assert_int_equal(replica_find(&s, "o")->others_n, 0);
    assert_int_equal(s.bytes, 90);
    /* a newer version of the same registration is no other registration */
    assert_int_equal(put(&s, "o", 2, 200, 2, k, 1, 0x21, 21), 1);
    assert_int_equal(replica_find(&s, "o")->others_n, 0);
    assert_int_equal(s.bytes, 91);
    /* an other's registration becomes visible: its put wins, the copy it
     * replaces is an other now */
    replica_rank_t v300 = {.visible = 300, .floor = 100};
    assert_int_equal(put(&s, "p", 1, 200, 1, k, 1, 0x20, 20), 1);
    assert_int_equal(put(&s, "p", 2, 300, 5, k, 1, 0x35, 35), 2);
    assert_int_equal(put(&s, "p", 2, 300, 6, v300, 1, 0x36, 36), 1); /* visible: wins */
    assert_copy(&s, "p", 2, 300, 6, 0x36, 36);
    assert_other(&s, "p", 200, 1, 0x20, 20);
    assert_null(other_of(replica_find(&s, "p"), 300));
    assert_int_equal(s.others_dropped, 0);
    check_store(&s);
    replica_store_fini(&s);
}

/* A put of a registration held as an other makes it the copy and removes
 * the other. */
static void test_replica_store_put_promotes_an_other(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(put(&s, "a", 1, 200, 3, k, 1, 0x20, 20), 1);
    assert_int_equal(put(&s, "a", 2, 300, 4, k, 1, 0x30, 30), 2);
    assert_int_equal(put(&s, "a", 3, 400, 4, k, 1, 0x40, 40), 2);
    assert_int_equal(s.bytes, 90);
    /* the registry shows 300 now: its next put wins */
    replica_rank_t v = {.visible = 300, .floor = 100};
    assert_int_equal(put(&s, "a", 2, 300, 5, v, 1, 0x31, 31), 1);
    assert_copy(&s, "a", 2, 300, 5, 0x31, 31);
    const replica_t *r = replica_find(&s, "a");
    assert_int_equal(r->others_n, 2);
    assert_null(other_of(r, 300));
    assert_other(&s, "a", 200, 3, 0x20, 20);
    assert_other(&s, "a", 400, 4, 0x40, 40);
    assert_int_equal(s.bytes, 91);
    check_store(&s);
    replica_store_fini(&s);
}

/* Found: an other holds version 9 of registration 300; a put of version 5
 * of it (a copy handed over by a draining member, say) wins against the
 * copy (300 is visible now) and takes its place: version 9, acknowledged
 * to its owner, is gone. Within one registration the higher version
 * should win. */
static void test_replica_store_found_promotion_keeps_the_newer_version(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    replica_rank_t v = {.visible = 300, .floor = 100};
    assert_int_equal(put(&s, "b", 1, 200, 3, k, 1, 0x20, 20), 1);
    assert_int_equal(put(&s, "b", 2, 300, 9, k, 1, 0x39, 39), 2);
    int rc = put(&s, "b", 2, 300, 5, v, 1, 0x35, 35);
    const replica_t *r = replica_find(&s, "b");
    const replica_other_t *o = other_of(r, 300);
    uint64_t newest = r->hlc == 300 ? r->version : 0;
    if (o && o->version > newest)
        newest = o->version;
    check_store(&s);
    replica_store_fini(&s);
    if (newest != 9)
        fail_msg("a put of version 5 of registration 300 (answered %d) left version %llu of it; "
                 "version 9 was held (as an other) and is gone", rc,
                 (unsigned long long)newest);
}

/* Found: the others are full and one of them is promoted to the copy: the
 * replaced copy needs a place among the others, and gets the promoted
 * one's, but the oldest other is dropped first (others_dropped 1), and
 * a place stays empty. */
static void test_replica_store_found_promotion_with_others_full(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(put(&s, "a", 1, 100, 1, k, 1, 0x10, 1), 1);
    for (uint64_t i = 0; i < REPLICA_OTHERS_MAX; i++)
        assert_int_equal(put(&s, "a", 2, 200 + 10 * i, 1, k, 1, (uint8_t)i, 1), 2);
    uint64_t last = 200 + 10 * (REPLICA_OTHERS_MAX - 1);
    replica_rank_t v = {.visible = last, .floor = 100};
    assert_int_equal(put(&s, "a", 2, last, 2, v, 1, 0x99, 1), 1);
    const replica_t *r = replica_find(&s, "a");
    assert_int_equal(r->hlc, last);
    size_t others = r->others_n;
    int kept_oldest = other_of(r, 200) != NULL, kept_replaced = other_of(r, 100) != NULL;
    uint64_t dropped = s.others_dropped;
    check_store(&s);
    replica_store_fini(&s);
    if (dropped != 0 || !kept_oldest || !kept_replaced)
        fail_msg("promoting one of %d others: %zu others left, the oldest (200) %s, the replaced "
                 "copy (100) %s, others_dropped %llu (room enough: nothing had to go)",
                 REPLICA_OTHERS_MAX, others, kept_oldest ? "kept" : "dropped",
                 kept_replaced ? "kept" : "dropped", (unsigned long long)dropped);
}

/* At most REPLICA_OTHERS_MAX others: with no room the oldest
 * registration's goes, counted. */
static void test_replica_store_others_max(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(put(&s, "a", 1, 100, 1, k, 1, 0xff, 1), 1); /* the earliest wins */
    uint64_t bytes = 1;
    for (uint64_t i = 0; i < REPLICA_OTHERS_MAX; i++) {
        assert_int_equal(put(&s, "a", 2, 200 + 10 * i, 1, k, 1, (uint8_t)i, 10 + i), 2);
        bytes += 10 + i;
    }
    assert_int_equal(replica_find(&s, "a")->others_n, REPLICA_OTHERS_MAX);
    assert_int_equal(s.others_dropped, 0);
    assert_int_equal(s.bytes, bytes);
    /* a newer version of one held needs no room */
    assert_int_equal(put(&s, "a", 2, 210, 2, k, 1, 0x77, 11), 2);
    assert_int_equal(s.others_dropped, 0);
    /* one more registration: 200 (the oldest) goes */
    assert_int_equal(put(&s, "a", 2, 900, 1, k, 1, 0x90, 90), 2);
    const replica_t *r = replica_find(&s, "a");
    assert_int_equal(r->others_n, REPLICA_OTHERS_MAX);
    assert_null(other_of(r, 200));
    assert_other(&s, "a", 210, 2, 0x77, 11);
    assert_other(&s, "a", 900, 1, 0x90, 90);
    assert_int_equal(s.others_dropped, 1);
    assert_int_equal(s.bytes, bytes - 10 + 90);
    check_store(&s);
    /* and again: 210 goes */
    assert_int_equal(put(&s, "a", 2, 950, 1, k, 1, 0x95, 5), 2);
    assert_null(other_of(replica_find(&s, "a"), 210));
    assert_int_equal(s.others_dropped, 2);
    check_store(&s);
    /* the copy stays what it was */
    assert_copy(&s, "a", 1, 100, 1, 0xff, 1);
    /* a winner whose replaced copy finds no room: the oldest other goes */
    assert_int_equal(put(&s, "a", 3, 100, 2, (replica_rank_t){.visible = 990, .floor = 100}, 1,
                         0x11, 1), 1);
    assert_int_equal(put(&s, "a", 4, 990, 1, (replica_rank_t){.visible = 990, .floor = 100}, 1,
                         0x99, 9), 1);
    r = replica_find(&s, "a");
    assert_int_equal(r->hlc, 990);
    assert_int_equal(r->others_n, REPLICA_OTHERS_MAX);
    assert_other(&s, "a", 100, 2, 0x11, 1); /* the replaced copy */
    assert_int_equal(s.others_dropped, 3);
    check_store(&s);
    replica_drop(&s, "a", 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.count, 0);
    replica_store_fini(&s);
}

/* ---- replica_drop, replica_drop_other ---------------------------------------------------- */

static void test_replica_store_drop(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(replica_drop(&s, "none", 0), 0);
    assert_int_equal(replica_drop(&s, "none", 5), 0);
    assert_int_equal(replica_drop_other(&s, "none", 5, ONE_RUN, UINT64_MAX), 0);
    /* no others: dropped with its hlc, the entry goes */
    assert_int_equal(put(&s, "a", 1, 200, 1, k, 1, 0xa0, 10), 1);
    assert_int_equal(replica_drop(&s, "a", 201), 0); /* another registration's drop */
    assert_int_equal(replica_drop_other(&s, "a", 200, ONE_RUN, UINT64_MAX), 0); /* the copy is no other */
    assert_non_null(replica_find(&s, "a"));
    assert_int_equal(replica_drop(&s, "a", 200), 1);
    assert_null(replica_find(&s, "a"));
    assert_int_equal(s.count, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(replica_drop(&s, "a", 200), 0);
    /* hlc 0: everything, others included */
    assert_int_equal(put(&s, "b", 1, 200, 1, k, 1, 0xb0, 10), 1);
    assert_int_equal(put(&s, "b", 2, 300, 1, k, 1, 0xb3, 30), 2);
    assert_int_equal(put(&s, "b", 2, 400, 1, k, 1, 0xb4, 40), 2);
    assert_int_equal(s.bytes, 80);
    assert_int_equal(replica_drop(&s, "b", 0), 1);
    assert_null(replica_find(&s, "b"));
    assert_int_equal(s.count, 0);
    assert_int_equal(s.bytes, 0);
    /* with its hlc and others waiting: only the copy goes */
    assert_int_equal(put(&s, "c", 1, 200, 1, k, 1, 0xc0, 10), 1);
    assert_int_equal(put(&s, "c", 2, 300, 1, k, 1, 0xc3, 30), 2);
    assert_int_equal(put(&s, "c", 2, 400, 1, k, 1, 0xc4, 40), 2);
    assert_int_equal(replica_drop(&s, "c", 300), 0); /* an other's hlc is not the copy's */
    assert_int_equal(replica_drop(&s, "c", 200), 1);
    const replica_t *r = replica_find(&s, "c");
    assert_non_null(r);
    assert_null(r->bytes);
    assert_int_equal(r->len, 0);
    assert_int_equal(r->others_n, 2);
    assert_other(&s, "c", 300, 1, 0xc3, 30);
    assert_other(&s, "c", 400, 1, 0xc4, 40);
    assert_int_equal(s.bytes, 70);
    check_store(&s);
    /* merged: the others go one by one */
    assert_int_equal(replica_drop_other(&s, "c", 300, ONE_RUN, UINT64_MAX), 1);
    assert_int_equal(replica_drop_other(&s, "c", 300, ONE_RUN, UINT64_MAX), 0);
    assert_int_equal(replica_drop_other(&s, "c", 999, ONE_RUN, UINT64_MAX), 0);
    assert_other(&s, "c", 400, 1, 0xc4, 40);
    assert_int_equal(s.bytes, 40);
    /* the entry still there: hlc 0 takes it */
    assert_int_equal(replica_drop(&s, "c", 0), 1);
    assert_null(replica_find(&s, "c"));
    assert_int_equal(s.count, 0);
    assert_int_equal(s.bytes, 0);
    /* drop_other while the copy is held: the copy stays */
    assert_int_equal(put(&s, "d", 1, 200, 1, k, 1, 0xd0, 10), 1);
    assert_int_equal(put(&s, "d", 2, 300, 1, k, 1, 0xd3, 30), 2);
    assert_int_equal(replica_drop_other(&s, "d", 300, ONE_RUN, UINT64_MAX), 1);
    assert_copy(&s, "d", 1, 200, 1, 0xd0, 10);
    assert_int_equal(replica_find(&s, "d")->others_n, 0);
    assert_int_equal(s.bytes, 10);
    check_store(&s);
    replica_store_fini(&s);
}

/* Found: the copy dropped with its hlc, the last other merged: nothing is
 * held, yet the entry stays (store.count, herd_repl_stats' held, is 1). */
static void test_replica_store_found_drop_other_last_leaves_nothing(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(put(&s, "c", 1, 200, 1, k, 1, 0xc0, 10), 1);
    assert_int_equal(put(&s, "c", 2, 300, 1, k, 1, 0xc3, 30), 2);
    assert_int_equal(replica_drop(&s, "c", 200), 1);
    assert_int_equal(replica_drop_other(&s, "c", 300, ONE_RUN, UINT64_MAX), 1);
    assert_int_equal(s.bytes, 0);
    check_store(&s);
    const replica_t *r = replica_find(&s, "c");
    size_t count = s.count;
    replica_store_fini(&s);
    if (r != NULL || count != 0)
        fail_msg("after the copy and its only other were dropped, the store still counts %zu "
                 "entr%s (an empty one: no copy, no other)", count, count == 1 ? "y" : "ies");
}

/* Found: an entry that holds no copy (dropped with its hlc, others
 * waiting) should take any copy ("any copy is newer than none"), whatever
 * the rank. */
static void test_replica_store_found_emptied_entry_takes_a_copy(void **state)
{
    (void)state;
    replica_store_t s;
    replica_store_init(&s);
    replica_rank_t k = {.visible = 0, .floor = 100};
    assert_int_equal(put(&s, "c", 1, 200, 1, k, 1, 0xc0, 10), 1);
    assert_int_equal(put(&s, "c", 2, 300, 1, k, 1, 0xc3, 30), 2);
    assert_int_equal(replica_drop(&s, "c", 200), 1);
    /* with the spec known, the owner's next put is the copy again */
    assert_int_equal(put(&s, "c", 1, 200, 2, k, 1, 0xc1, 11), 1);
    assert_copy(&s, "c", 1, 200, 2, 0xc1, 11);
    assert_int_equal(replica_drop(&s, "c", 200), 1);
    /* the spec not known here (floor 0), not mergeable then: refused */
    int rc = put(&s, "c", 1, 200, 3, NO_RANK, 0, 0xc2, 12);
    const replica_t *r = replica_find(&s, "c");
    int held = r && r->bytes && r->hlc == 200;
    int as_other = r && other_of(r, 200) != NULL;
    check_store(&s);
    replica_store_fini(&s);
    if (rc != 1 || !held)
        fail_msg("a put into an entry holding no copy (floor 0, not mergeable) answered %d "
                 "(1 expected); copy held: %d, kept as an other: %d", rc, held, as_other);
}

/* ---- twins ------------------------------------------------------------------------------- */

/* Three names with one XXH3_64bits hash, 0xa655920170c60db7: a name, and
 * the inputs of 8 and of 7 bytes its hash inverts to (XXH3's mix of 4 to 8
 * bytes is a bijection; 7 bytes overlap in one, which 1 in 256 hashes
 * allows). */
static const char TWIN_A[] = "replica-130881";
static const char TWIN_B[] = "W\xaf\xb5\xc6\x1c\xd6" "`>";
static const char TWIN_C[] = "<B'm2-L";

static void test_replica_store_twins_hash_alike(void **state)
{
    (void)state;
    assert_int_equal(strlen(TWIN_B), 8);
    assert_int_equal(strlen(TWIN_C), 7);
    uint64_t h = awmap_key_hash(TWIN_A, strlen(TWIN_A));
    assert_int_equal(h, 0xa655920170c60db7ull);
    assert_int_equal(awmap_key_hash(TWIN_B, strlen(TWIN_B)), h);
    assert_int_equal(awmap_key_hash(TWIN_C, strlen(TWIN_C)), h);
}

static void put_twins(replica_store_t *s, replica_rank_t k)
{
    assert_int_equal(put(s, TWIN_A, 1, 200, 1, k, 1, 0xa0, 10), 1);
    assert_null(replica_find(s, TWIN_B));
    assert_int_equal(put(s, TWIN_B, 2, 200, 1, k, 1, 0xb0, 20), 1);
    assert_null(replica_find(s, TWIN_C));
    assert_int_equal(put(s, TWIN_C, 3, 200, 1, k, 1, 0xc0, 30), 1);
    /* an other on each */
    assert_int_equal(put(s, TWIN_A, 4, 300, 1, k, 1, 0xa3, 1), 2);
    assert_int_equal(put(s, TWIN_B, 4, 300, 1, k, 1, 0xb3, 2), 2);
    assert_int_equal(put(s, TWIN_C, 4, 300, 1, k, 1, 0xc3, 3), 2);
    assert_int_equal(s->count, 3);
    assert_int_equal(s->bytes, 66);
    assert_int_equal(s->by_hash.count, 1); /* one slot: a chain of three */
    assert_copy(s, TWIN_A, 1, 200, 1, 0xa0, 10);
    assert_copy(s, TWIN_B, 2, 200, 1, 0xb0, 20);
    assert_copy(s, TWIN_C, 3, 200, 1, 0xc0, 30);
    assert_other(s, TWIN_A, 300, 1, 0xa3, 1);
    assert_other(s, TWIN_B, 300, 1, 0xb3, 2);
    assert_other(s, TWIN_C, 300, 1, 0xc3, 3);
    check_store(s);
}

static void test_replica_store_twins(void **state)
{
    (void)state;
    replica_rank_t k = {.visible = 0, .floor = 100};
    const char *names[3] = {TWIN_A, TWIN_B, TWIN_C};
    /* every order of dropping the three, by hlc 0 */
    static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                     {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int o = 0; o < 6; o++) {
        replica_store_t s;
        replica_store_init(&s);
        put_twins(&s, k);
        for (int i = 0; i < 3; i++) {
            const char *gone = names[orders[o][i]];
            assert_int_equal(replica_drop(&s, gone, 0), 1);
            assert_null(replica_find(&s, gone));
            assert_int_equal(replica_drop(&s, gone, 0), 0);
            for (int j = i + 1; j < 3; j++)
                assert_non_null(replica_find(&s, names[orders[o][j]]));
            assert_int_equal(s.count, 2 - i);
            check_store(&s);
        }
        assert_int_equal(s.bytes, 0);
        assert_int_equal(s.by_hash.count, 0);
        replica_store_fini(&s);
    }
    /* the same through the copy's hlc (others stay), drop_other and re-puts */
    for (int o = 0; o < 6; o++) {
        replica_store_t s;
        replica_store_init(&s);
        put_twins(&s, k);
        for (int i = 0; i < 3; i++) {
            const char *n = names[orders[o][i]];
            assert_int_equal(replica_drop(&s, n, 200), 1);
            assert_non_null(replica_find(&s, n));
            assert_null(replica_find(&s, n)->bytes);
            check_store(&s);
        }
        assert_int_equal(s.bytes, 6);
        /* the first one's copy comes back; the others' others are merged */
        const char *back = names[orders[o][0]];
        assert_int_equal(put(&s, back, 1, 200, 2, k, 1, 0x11, 4), 1);
        for (int i = 0; i < 3; i++)
            assert_int_equal(replica_drop_other(&s, names[i], 300, ONE_RUN, UINT64_MAX), 1);
        assert_int_equal(s.bytes, 4);
        check_store(&s);
        for (int i = 0; i < 3; i++)
            replica_drop(&s, names[orders[o][2 - i]], 0);
        assert_int_equal(s.count, 0);
        assert_int_equal(s.bytes, 0);
        replica_store_fini(&s);
    }
    /* the head of the chain dropped, then put again: found behind its twins */
    replica_store_t s;
    replica_store_init(&s);
    put_twins(&s, k);
    const replica_t *head = u64map_get(&s.by_hash, 0xa655920170c60db7ull);
    assert_non_null(head);
    char first[16];
    snprintf(first, sizeof(first), "%s", head->name);
    assert_int_equal(replica_drop(&s, first, 0), 1);
    assert_int_equal(put(&s, first, 9, 500, 1, k, 0, 0x55, 5), 1);
    assert_copy(&s, first, 9, 500, 1, 0x55, 5);
    for (int i = 0; i < 3; i++)
        assert_non_null(replica_find(&s, names[i]));
    assert_int_equal(s.count, 3);
    check_store(&s);
    replica_store_fini(&s); /* frees the chain (ASan: nothing leaks) */
}

/* Many names: the map grows and shrinks under them. */
static void test_replica_store_many_names(void **state)
{
    (void)state;
    enum { N = 2000 };
    replica_store_t s;
    replica_store_init(&s);
    char name[32];
    replica_rank_t k = {.visible = 0, .floor = 100};
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "child-%d", i);
        assert_int_equal(put(&s, name, 1, 200, 1, k, 1, (uint8_t)i, (size_t)(i % 7)), 1);
        if (i % 3 == 0)
            assert_int_equal(put(&s, name, 2, 300, 1, k, 1, (uint8_t)i, 3), 2);
    }
    assert_int_equal(s.count, N);
    check_store(&s);
    for (int i = 0; i < N; i += 2) {
        snprintf(name, sizeof(name), "child-%d", i);
        assert_int_equal(replica_drop(&s, name, 0), 1);
    }
    assert_int_equal(s.count, N / 2);
    check_store(&s);
    for (int i = 1; i < N; i += 2) {
        snprintf(name, sizeof(name), "child-%d", i);
        assert_non_null(replica_find(&s, name));
        assert_int_equal(replica_drop(&s, name, 0), 1);
    }
    assert_int_equal(s.count, 0);
    assert_int_equal(s.bytes, 0);
    replica_store_fini(&s);
}

int main(void)
{
    if (getenv("TEST_REPLICA_STORE_FILTER"))
        cmocka_set_test_filter(getenv("TEST_REPLICA_STORE_FILTER"));
    if (getenv("TEST_REPLICA_STORE_SKIP"))
        cmocka_set_skip_filter(getenv("TEST_REPLICA_STORE_SKIP"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_store_lineage_holds),
        cmocka_unit_test(test_replica_store_fork_kept_to_merge),
        cmocka_unit_test(test_replica_store_fork_lower_version),
        cmocka_unit_test(test_replica_store_lineage_replaces),
        cmocka_unit_test(test_replica_store_fork_not_mergeable),
        cmocka_unit_test(test_replica_store_rank_same_registration),
        cmocka_unit_test(test_replica_store_rank_visible_wins),
        cmocka_unit_test(test_replica_store_rank_current_beats_older),
        cmocka_unit_test(test_replica_store_rank_earlier_current_wins),
        cmocka_unit_test(test_replica_store_put_answers),
        cmocka_unit_test(test_replica_store_put_keeps_losers_to_merge),
        cmocka_unit_test(test_replica_store_put_winner_keeps_the_replaced),
        cmocka_unit_test(test_replica_store_put_promotes_an_other),
        cmocka_unit_test(test_replica_store_found_promotion_keeps_the_newer_version),
        cmocka_unit_test(test_replica_store_others_max),
        cmocka_unit_test(test_replica_store_found_promotion_with_others_full),
        cmocka_unit_test(test_replica_store_drop),
        cmocka_unit_test(test_replica_store_found_drop_other_last_leaves_nothing),
        cmocka_unit_test(test_replica_store_found_emptied_entry_takes_a_copy),
        cmocka_unit_test(test_replica_store_twins_hash_alike),
        cmocka_unit_test(test_replica_store_twins),
        cmocka_unit_test(test_replica_store_many_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
