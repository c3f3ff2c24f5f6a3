/*
 * test_group.c - unit tests for process groups (registry/herd_group.h):
 * join, leave, members, local members, count, which and list.
 *
 * On one node (not in a cluster): the calls and their error codes, a
 * second join of the same pid is one membership with the new metadata, a
 * process's memberships go with its exit, names and groups of the same
 * string do not meet (nor do the name count, list and stats see groups),
 * keys of groups whose names are prefixes of others or end like a pid's
 * part stay apart, callbacks may join and leave, a group of a thousand
 * members, and the set under the index (registry/hset.h).
 *
 * In clusters: three nodes of the simulation harness (tests/sim/regsim.h:
 * the real node, cluster and registry code on a virtual clock over an
 * in-memory transport): memberships written on any node for any node's
 * process are seen alike everywhere; a leave made on another node than the
 * process's stays done; a node that is down has its processes' memberships
 * hidden (counts drop, entries stay) and shown again when it comes back;
 * removed once it is forgotten or restarts; put back by the process's node
 * after a partition longer than the forget time, and with its newest
 * metadata when it had joined again just before; two joins of one process
 * made at once on two nodes end as one entry with the later metadata. And
 * two real nodes over tcp loopback (tests/unit/support.h).
 *
 * HERD_TEST_LOG=LEVEL shows the library's logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herd_group.h"
#include "herd_registry.h"
#include "hset.h"
#include "log.h"
#include "regsim.h"
#include "registry_int.h" /* the entries of group keys, hidden or not */
#include "registry_layers.h"
#include "support.h"

#define SECRET "test-group-secret-0123456789abcdef"
#define WAIT_MS 15000u

/* ---- helpers ------------------------------------------------------------------ */

static const herd_behaviour_t idle = {.name = "idle"};

static herd_pid_t spawn_idle(herd_node_t *n)
{
    return ts_spawn(n, &idle, NULL, 0);
}

/* A node with a registry, not in a cluster, on the shared loop. */
static herd_node_t *solo_node(const char *name)
{
    herd_node_config_t cfg = {.name = name, .loop = &ts_loop};
    herd_node_t *n = ts_cluster_add(&cfg);
    assert_int_equal(herd_registry_start(n), 0);
    return n;
}

static herd_meta_t meta1(const char *key, const char *value)
{
    herd_meta_t m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(herd_meta_set(&m, key, value), 0);
    return m;
}

#define SEEN_MAX 64
typedef struct seen {
    int n;
    int stop_after; /* 0: never stop */
    struct {
        char group[HERD_GROUP_MAX + 1];
        herd_pid_t pid;
        herd_meta_t meta;
    } m[SEEN_MAX];
} seen_t;

static int collect(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    seen_t *s = data;
    assert_true(s->n < SEEN_MAX);
    snprintf(s->m[s->n].group, sizeof(s->m[s->n].group), "%s", group);
    s->m[s->n].pid = pid;
    assert_non_null(meta);
    s->m[s->n].meta = *meta;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

/* The index in s of (group, pid), or -1. */
static int seen_at(const seen_t *s, const char *group, herd_pid_t pid)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->m[i].group, group) == 0 && herd_pid_equal(s->m[i].pid, pid))
            return i;
    return -1;
}

static seen_t members(herd_node_t *n, const char *group)
{
    seen_t s;
    memset(&s, 0, sizeof(s));
    int rc = herd_group_members(n, group, collect, &s);
    assert_int_equal(rc, s.n);
    return s;
}

static seen_t which(herd_node_t *n, herd_pid_t pid)
{
    seen_t s;
    memset(&s, 0, sizeof(s));
    int rc = herd_group_which(n, pid, collect, &s);
    assert_int_equal(rc, s.n);
    return s;
}

/* Whether pid is a visible member of group on n, with meta "v" = v (NULL:
 * any metadata). */
static int is_member(herd_node_t *n, const char *group, herd_pid_t pid, const char *v)
{
    seen_t s = members(n, group);
    int i = seen_at(&s, group, pid);
    if (i < 0)
        return 0;
    const char *got = herd_meta_get(&s.m[i].meta, "v");
    return v == NULL || (got && strcmp(got, v) == 0);
}

typedef struct listed {
    int n;
    int stop_after;
    char group[SEEN_MAX][HERD_GROUP_MAX + 1];
    size_t members[SEEN_MAX];
} listed_t;

static int list_one(void *data, const char *group, size_t members)
{
    listed_t *l = data;
    assert_true(l->n < SEEN_MAX);
    snprintf(l->group[l->n], sizeof(l->group[l->n]), "%s", group);
    l->members[l->n++] = members;
    return l->stop_after && l->n >= l->stop_after;
}

/* The members `group` has in the list of n (-1: not listed). */
static long listed_members(herd_node_t *n, const char *group)
{
    listed_t l;
    memset(&l, 0, sizeof(l));
    int rc = herd_group_list(n, NULL, list_one, &l);
    assert_int_equal(rc, l.n);
    for (int i = 0; i < l.n; i++)
        if (strcmp(l.group[i], group) == 0)
            return (long)l.members[i];
    return -1;
}

static uint64_t group_entries(herd_node_t *n)
{
    return reg_of(n)->group_entries;
}

static herd_registry_stats_t stats_of(herd_node_t *n)
{
    herd_registry_stats_t s;
    assert_int_equal(herd_registry_stats(n, &s), 0);
    return s;
}

/* Exit pid and run the loop until its exit is carried out. */
static void exit_and_wait(herd_node_t *n, herd_pid_t pid)
{
    assert_int_equal(herd_exit(n, pid, HERD_REASON_KILLED), 0);
    TS_WAIT_UNTIL(herd_group_which(n, pid, NULL, NULL) == 0 &&
                      pidx_get(&reg_of(n)->by_pid, pid.serial, NULL, 0) == 0,
                  WAIT_MS);
}

static int setup(void **state)
{
    return ts_cluster_setup(state);
}

/* ---- one node --------------------------------------------------------------------- */

static void test_group_join_members_count_leave(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p[3];
    for (int i = 0; i < 3; i++) {
        char v[8];
        snprintf(v, sizeof(v), "%d", i);
        herd_meta_t m = meta1("v", v);
        p[i] = spawn_idle(a);
        assert_int_equal(herd_group_join(a, "workers", p[i], &m), 0);
    }
    assert_int_equal(herd_group_join(a, "other", p[0], NULL), 0);
    /* read-your-writes, with the metadata of each */
    assert_int_equal(herd_group_count(a, "workers"), 3);
    assert_int_equal(herd_group_count(a, "other"), 1);
    assert_int_equal(herd_group_count(a, "nobody"), 0);
    seen_t s = members(a, "workers");
    assert_int_equal(s.n, 3);
    for (int i = 0; i < 3; i++) {
        int at = seen_at(&s, "workers", p[i]);
        char v[8];
        snprintf(v, sizeof(v), "%d", i);
        assert_true(at >= 0);
        assert_string_equal(herd_meta_get(&s.m[at].meta, "v"), v);
    }
    assert_int_equal(herd_group_members(a, "workers", NULL, NULL), 3);
    assert_int_equal(herd_group_local_members(a, "workers", NULL, NULL), 3);
    assert_int_equal(herd_group_members(a, "nobody", collect, &s), 0);
    /* which: the groups of a pid, with its metadata there */
    s = which(a, p[0]);
    assert_int_equal(s.n, 2);
    assert_true(seen_at(&s, "workers", p[0]) >= 0);
    assert_true(seen_at(&s, "other", p[0]) >= 0);
    assert_int_equal(s.m[seen_at(&s, "other", p[0])].meta.count, 0);
    assert_int_equal(which(a, p[2]).n, 1);
    /* list */
    assert_int_equal(listed_members(a, "workers"), 3);
    assert_int_equal(listed_members(a, "other"), 1);
    assert_int_equal(herd_group_list(a, NULL, NULL, NULL), 2);
    /* leave */
    assert_int_equal(herd_group_leave(a, "workers", p[1]), 0);
    assert_int_equal(herd_group_count(a, "workers"), 2);
    assert_false(is_member(a, "workers", p[1], NULL));
    assert_int_equal(herd_group_leave(a, "workers", p[1]), HERD_ENOENT);
    assert_int_equal(herd_group_leave(a, "other", p[1]), HERD_ENOENT);
    assert_int_equal(herd_group_leave(a, "nobody", p[1]), HERD_ENOENT);
    assert_int_equal(herd_group_leave(a, "other", p[0]), 0);
    assert_int_equal(herd_group_count(a, "other"), 0);
    assert_int_equal(listed_members(a, "other"), -1);
    assert_int_equal(herd_group_list(a, NULL, NULL, NULL), 1);
    assert_int_equal(which(a, p[0]).n, 1);
    /* a group that emptied can be joined again */
    assert_int_equal(herd_group_join(a, "other", p[1], NULL), 0);
    assert_int_equal(herd_group_count(a, "other"), 1);
    assert_int_equal(group_entries(a), 3);
    ts_node_free(a);
}

static void test_group_join_again_replaces_meta(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_idle(a);
    herd_meta_t m1 = meta1("v", "1"), m2 = meta1("v", "2");
    assert_int_equal(herd_meta_set(&m1, "only", "first"), 0);
    assert_int_equal(herd_group_join(a, "g", p, &m1), 0);
    assert_int_equal(herd_group_join(a, "g", p, &m2), 0);
    assert_int_equal(herd_group_count(a, "g"), 1);
    seen_t s = members(a, "g");
    assert_int_equal(s.n, 1);
    assert_string_equal(herd_meta_get(&s.m[0].meta, "v"), "2");
    assert_null(herd_meta_get(&s.m[0].meta, "only"));
    assert_int_equal(group_entries(a), 1);
    assert_int_equal(reg_of(a)->group_keys, 1);
    /* and again without metadata */
    assert_int_equal(herd_group_join(a, "g", p, NULL), 0);
    s = which(a, p);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.m[0].meta.count, 0);
    /* the supersede left nothing to put back: still one entry later */
    ts_cluster_run_ms(2 * REGISTRY_CHECK_MS + 200);
    assert_int_equal(group_entries(a), 1);
    assert_int_equal(herd_group_count(a, "g"), 1);
    ts_node_free(a);
}

static void test_group_exit_removes_memberships(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_idle(a), q = spawn_idle(a);
    const char *groups[3] = {"g1", "g2", "g3"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(herd_group_join(a, groups[i], p, NULL), 0);
        assert_int_equal(herd_group_join(a, groups[i], q, NULL), 0);
    }
    assert_int_equal(herd_register(a, "p-name", p, NULL), 0);
    exit_and_wait(a, p);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(herd_group_count(a, groups[i]), 1);
        assert_false(is_member(a, groups[i], p, NULL));
        assert_true(is_member(a, groups[i], q, NULL));
    }
    assert_int_equal(herd_whereis(a, "p-name", NULL, NULL), HERD_ENOENT);
    assert_int_equal(group_entries(a), 3);
    assert_int_equal(herd_group_which(a, p, NULL, NULL), 0);
    /* a dead pid joins nothing */
    assert_int_equal(herd_group_join(a, "g1", p, NULL), HERD_ENOPROC);
    exit_and_wait(a, q);
    for (int i = 0; i < 3; i++)
        assert_int_equal(herd_group_count(a, groups[i]), 0);
    assert_int_equal(herd_group_list(a, NULL, NULL, NULL), 0);
    assert_int_equal(group_entries(a), 0);
    assert_int_equal(stats_of(a).entries, 0);
    ts_node_free(a);
}

static int name_listed(void *data, const char *name, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)pid;
    (void)meta;
    int *n = data;
    assert_string_equal(name, "svc");
    (*n)++;
    return 0;
}

static void test_group_names_and_groups_apart(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_idle(a), q = spawn_idle(a);
    assert_int_equal(herd_register(a, "svc", p, NULL), 0);
    assert_int_equal(herd_group_join(a, "svc", q, NULL), 0);
    assert_int_equal(herd_group_join(a, "svc", p, NULL), 0);
    assert_int_equal(herd_group_join(a, "other", q, NULL), 0);
    herd_pid_t who;
    assert_int_equal(herd_whereis(a, "svc", &who, NULL), 0);
    ts_assert_pid_eq(who, p);
    assert_int_equal(herd_group_count(a, "svc"), 2);
    /* names see no group */
    assert_int_equal(herd_registry_count(a, NULL), 1);
    assert_int_equal(herd_registry_count(a, "s"), 1);
    assert_int_equal(herd_registry_count(a, "\x02"), 0);
    int listed = 0;
    assert_int_equal(herd_registry_list(a, NULL, name_listed, &listed), 1);
    assert_int_equal(listed, 1);
    herd_registry_stats_t st = stats_of(a);
    assert_int_equal(st.names, 1);
    assert_int_equal(st.entries, 1);
    assert_int_equal(group_entries(a), 3);
    /* a name can take no group's key, nor a spec's */
    assert_int_equal(herd_register(a, "\x02svc", q, NULL), HERD_EINVAL);
    assert_int_equal(herd_whereis(a, "\x02svc", NULL, NULL), HERD_EINVAL);
    assert_int_equal(herd_spec_put(a, "\x02svc", "x", 1), HERD_EINVAL);
    /* either goes without the other */
    assert_int_equal(herd_unregister(a, "svc"), 0);
    assert_int_equal(herd_group_count(a, "svc"), 2);
    assert_int_equal(herd_register(a, "svc", q, NULL), 0);
    assert_int_equal(herd_group_leave(a, "svc", q), 0);
    assert_int_equal(herd_whereis(a, "svc", &who, NULL), 0);
    ts_assert_pid_eq(who, q);
    assert_int_equal(herd_group_count(a, "svc"), 1);
    assert_int_equal(herd_registry_count(a, NULL), 1);
    ts_node_free(a);
}

static void test_group_bad_input(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_idle(a);
    char longest[HERD_GROUP_MAX + 2];
    memset(longest, 'x', sizeof(longest));
    longest[HERD_GROUP_MAX] = '\0';
    assert_int_equal(herd_group_join(a, longest, p, NULL), 0);
    assert_int_equal(herd_group_count(a, longest), 1);
    longest[HERD_GROUP_MAX] = 'x';
    longest[HERD_GROUP_MAX + 1] = '\0';
    const char *bad[3] = {NULL, "", longest};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(herd_group_join(a, bad[i], p, NULL), HERD_EINVAL);
        assert_int_equal(herd_group_leave(a, bad[i], p), HERD_EINVAL);
        assert_int_equal(herd_group_members(a, bad[i], NULL, NULL), HERD_EINVAL);
        assert_int_equal(herd_group_local_members(a, bad[i], NULL, NULL), HERD_EINVAL);
        assert_int_equal(herd_group_count(a, bad[i]), HERD_EINVAL);
    }
    assert_int_equal(herd_group_join(a, "g", HERD_PID_NONE, NULL), HERD_EINVAL);
    assert_int_equal(herd_group_leave(a, "g", HERD_PID_NONE), HERD_EINVAL);
    assert_int_equal(herd_group_which(a, HERD_PID_NONE, NULL, NULL), HERD_EINVAL);
    herd_meta_t over;
    memset(&over, 0, sizeof(over));
    over.count = HERD_META_MAX + 1;
    assert_int_equal(herd_group_join(a, "g", p, &over), HERD_EINVAL);
    /* local pids that are not alive: never spawned, of another start */
    herd_pid_t never = p, earlier = p;
    never.serial += 1000;
    earlier.incarnation ^= 1;
    assert_int_equal(herd_group_join(a, "g", never, NULL), HERD_ENOPROC);
    assert_int_equal(herd_group_join(a, "g", earlier, NULL), HERD_ENOPROC);
    assert_int_equal(herd_group_leave(a, "g", never), HERD_ENOENT);
    assert_int_equal(herd_group_which(a, earlier, NULL, NULL), 0);
    assert_int_equal(herd_group_count(a, "g"), 0);
    assert_int_equal(group_entries(a), 1);
    /* no registry */
    herd_node_config_t cfg = {.name = "bare", .loop = &ts_loop};
    herd_node_t *b = ts_cluster_add(&cfg);
    herd_pid_t pb = spawn_idle(b);
    assert_int_equal(herd_group_join(b, "g", pb, NULL), HERD_ENOENT);
    assert_int_equal(herd_group_leave(b, "g", pb), HERD_ENOENT);
    assert_int_equal(herd_group_members(b, "g", NULL, NULL), HERD_ENOENT);
    assert_int_equal(herd_group_local_members(b, "g", NULL, NULL), HERD_ENOENT);
    assert_int_equal(herd_group_count(b, "g"), HERD_ENOENT);
    assert_int_equal(herd_group_which(b, pb, NULL, NULL), HERD_ENOENT);
    assert_int_equal(herd_group_list(b, NULL, NULL, NULL), HERD_ENOENT);
    ts_node_free(b);
    ts_node_free(a);
}

/* Group names that are prefixes of each other, end like the pid's part of
 * a key (a separator and 32 base64url characters), hold the separator or
 * bytes of the prefixes: each its own membership. */
static void test_group_keys_never_collide(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_idle(a), q = spawn_idle(a);
    static const char *groups[] = {
        "g", "g:", "g:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "g:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:",
        ":", "::", "\x01", "\x02", "\x02g", "\xff\xfe", "g\x02", "a b\tc\n",
    };
    const size_t n = sizeof(groups) / sizeof(groups[0]);
    for (size_t i = 0; i < n; i++) {
        char v[8];
        snprintf(v, sizeof(v), "%zu", i);
        herd_meta_t m = meta1("v", v);
        assert_int_equal(herd_group_join(a, groups[i], p, &m), 0);
        if (i % 2)
            assert_int_equal(herd_group_join(a, groups[i], q, &m), 0);
    }
    for (size_t i = 0; i < n; i++) {
        char v[8];
        snprintf(v, sizeof(v), "%zu", i);
        assert_int_equal(herd_group_count(a, groups[i]), i % 2 ? 2 : 1);
        assert_true(is_member(a, groups[i], p, v));
        assert_int_equal(is_member(a, groups[i], q, v), (int)(i % 2));
    }
    seen_t s = which(a, p);
    assert_int_equal(s.n, (int)n);
    for (size_t i = 0; i < n; i++)
        assert_true(seen_at(&s, groups[i], p) >= 0);
    assert_int_equal(herd_group_list(a, NULL, NULL, NULL), (int)n);
    assert_int_equal(herd_group_list(a, "g", NULL, NULL), 5);
    assert_int_equal(herd_group_list(a, "\x02", NULL, NULL), 2);
    assert_int_equal(herd_registry_count(a, NULL), 0);
    for (size_t i = 0; i < n; i += 2)
        assert_int_equal(herd_group_leave(a, groups[i], p), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(herd_group_count(a, groups[i]), i % 2 ? 2 : 0);
    ts_node_free(a);
}

static void test_group_list_prefix_and_stop(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    herd_pid_t p = spawn_idle(a), q = spawn_idle(a);
    assert_int_equal(herd_group_join(a, "a.1", p, NULL), 0);
    assert_int_equal(herd_group_join(a, "a.1", q, NULL), 0);
    assert_int_equal(herd_group_join(a, "a.2", p, NULL), 0);
    assert_int_equal(herd_group_join(a, "b.1", q, NULL), 0);
    listed_t l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(herd_group_list(a, "a.", list_one, &l), 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(l.members[i], strcmp(l.group[i], "a.1") == 0 ? 2 : 1);
    assert_int_equal(herd_group_list(a, "", NULL, NULL), 3);
    assert_int_equal(herd_group_list(a, "b.1", NULL, NULL), 1);
    assert_int_equal(herd_group_list(a, "b.1.", NULL, NULL), 0);
    assert_int_equal(herd_group_list(a, "c", NULL, NULL), 0);
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    assert_int_equal(herd_group_list(a, NULL, list_one, &l), 1);
    seen_t s;
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(herd_group_members(a, "a.1", collect, &s), 1);
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(herd_group_which(a, p, collect, &s), 1);
    ts_node_free(a);
}

typedef struct churner {
    herd_node_t *node;
    herd_pid_t extra;
    int calls;
} churner_t;

/* Leaves the member it is told of, and joins another process elsewhere. */
static int leave_each(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)meta;
    churner_t *c = data;
    c->calls++;
    assert_int_equal(herd_group_leave(c->node, group, pid), 0);
    char other[32];
    snprintf(other, sizeof(other), "other-%d", c->calls);
    assert_int_equal(herd_group_join(c->node, other, c->extra, NULL), 0);
    return 0;
}

/* Only leaves. */
static int leave_only(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)meta;
    churner_t *c = data;
    c->calls++;
    assert_int_equal(herd_group_leave(c->node, group, pid), 0);
    return 0;
}

static int leave_listed(void *data, const char *group, size_t members)
{
    churner_t *c = data;
    (void)members;
    c->calls++;
    seen_t s;
    memset(&s, 0, sizeof(s));
    herd_group_members(c->node, group, collect, &s);
    for (int i = 0; i < s.n; i++)
        assert_int_equal(herd_group_leave(c->node, group, s.m[i].pid), 0);
    return 0;
}

static void test_group_callbacks_may_join_and_leave(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    churner_t c = {a, spawn_idle(a), 0};
    herd_pid_t p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = spawn_idle(a);
        assert_int_equal(herd_group_join(a, "big", p[i], NULL), 0);
    }
    assert_int_equal(herd_group_members(a, "big", leave_each, &c), 40);
    assert_int_equal(c.calls, 40);
    assert_int_equal(herd_group_count(a, "big"), 0);
    assert_int_equal(which(a, c.extra).n, 40);
    c.calls = 0;
    assert_int_equal(herd_group_list(a, "other-", leave_listed, &c), 40);
    assert_int_equal(herd_group_list(a, NULL, NULL, NULL), 0);
    assert_int_equal(which(a, c.extra).n, 0);
    for (int i = 0; i < 10; i++) {
        char g[16];
        snprintf(g, sizeof(g), "w%d", i);
        assert_int_equal(herd_group_join(a, g, p[i], NULL), 0);
    }
    for (int i = 0; i < 10; i++) {
        c.calls = 0;
        assert_int_equal(herd_group_which(a, p[i], leave_only, &c), 1);
        assert_int_equal(which(a, p[i]).n, 0);
    }
    assert_int_equal(group_entries(a), 0);
    ts_node_free(a);
}

/* More members than a visit keeps on the stack, the set grown and shrunk. */
static void test_group_many_members(void **state)
{
    (void)state;
    herd_node_t *a = solo_node("a");
    enum { N = 1000 };
    static herd_pid_t p[N];
    for (int i = 0; i < N; i++) {
        p[i] = spawn_idle(a);
        assert_int_equal(herd_group_join(a, "many", p[i], NULL), 0);
        assert_int_equal(herd_group_join(a, i % 2 ? "odd" : "even", p[i], NULL), 0);
    }
    assert_int_equal(herd_group_count(a, "many"), N);
    assert_int_equal(herd_group_members(a, "many", NULL, NULL), N);
    assert_int_equal(herd_group_local_members(a, "odd", NULL, NULL), N / 2);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(herd_group_leave(a, "many", p[i]), 0);
    assert_int_equal(herd_group_count(a, "many"), N / 2);
    assert_int_equal(herd_group_members(a, "many", NULL, NULL), N / 2);
    assert_int_equal(group_entries(a), N / 2 + N);
    assert_int_equal(herd_group_list(a, NULL, NULL, NULL), 3);
    ts_node_free(a);
}

/* ---- the set under the index ---------------------------------------------------- */

static void test_group_hset(void **state)
{
    (void)state;
    hset_t s;
    hset_init(&s);
    const uint64_t low = UINT64_C(1) << (64 - AWMAP_HASH_BITS); /* the least bit kept */
    assert_int_equal(hset_has(&s, 0), 0);
    assert_int_equal(hset_del(&s, 0), 0);
    /* 0 is a hash like any other; bits below the kept ones do not count */
    assert_int_equal(hset_add(&s, 0), 0);
    assert_true(hset_has(&s, 0));
    assert_true(hset_has(&s, low - 1));
    assert_false(hset_has(&s, low));
    assert_int_equal(hset_add(&s, 5), 0);
    assert_int_equal(hset_count(&s), 1);
    enum { N = 5000 };
    for (uint64_t i = 1; i <= N; i++)
        assert_int_equal(hset_add(&s, i * low * UINT64_C(0x9e3779b1)), 0);
    assert_int_equal(hset_count(&s), N + 1);
    for (uint64_t i = 1; i <= N; i += 2)
        assert_int_equal(hset_del(&s, i * low * UINT64_C(0x9e3779b1)), 1);
    for (uint64_t i = 1; i <= N; i++)
        assert_int_equal(hset_has(&s, i * low * UINT64_C(0x9e3779b1)), (int)(i % 2 == 0));
    assert_int_equal(hset_count(&s), N / 2 + 1);
    size_t cursor = 0, walked = 0;
    for (uint64_t h; hset_next(&s, &cursor, &h);) {
        assert_int_equal(h & (low - 1), 0);
        assert_true(hset_has(&s, h));
        walked++;
    }
    assert_int_equal(walked, N / 2 + 1);
    uint64_t few[4];
    assert_int_equal(hset_get(&s, few, 4), N / 2 + 1);
    for (int i = 0; i < 4; i++)
        assert_true(hset_has(&s, few[i]));
    hset_fini(&s);
    assert_int_equal(hset_count(&s), 0);
    assert_false(hset_has(&s, 0));
}

/* ---- simulated clusters ----------------------------------------------------------- */

#define SIM_FORGET 3000u

static regsim_t *sim_cluster(uint64_t seed, int nodes, uint32_t forget)
{
    regsim_config_t cfg = {.seed = seed, .nodes = nodes, .tick_ms = 5, .heartbeat_ms = 50,
                           .suspect_ms = 150, .down_ms = 300, .forget_ms = forget,
                           .delay_min = 1, .delay_max = 15};
    regsim_t *rs;
    assert_int_equal(regsim_new(&cfg, &rs), 0);
    for (int i = 0; i < nodes; i++)
        assert_int_equal(regsim_start(rs, i), 0);
    assert_int_equal(regsim_run_until_members(rs, regsim_now(rs) + 5000), 0);
    return rs;
}

/* Run rs until cond holds; fail after ms of virtual time. */
#define SIM_UNTIL(rs, cond, ms)                                                          \
    do {                                                                                 \
        uint64_t d_ = regsim_now(rs) + (ms);                                             \
        while (!(cond)) {                                                                \
            if (regsim_now(rs) >= d_)                                                    \
                fail_msg("%s:%d: no %s within %u ms (virtual)", __FILE__, __LINE__,      \
                         #cond, (unsigned)(ms));                                         \
            assert_int_equal(regsim_run_for(rs, 10), 0);                                 \
        }                                                                                \
    } while (0)

static herd_pid_t sim_spawn(regsim_t *rs, int i)
{
    int k = regsim_spawn(rs, i);
    assert_true(k >= 0);
    return regsim_proc(rs, k)->pid;
}

/* Whether every up node counts `count` visible members of group. */
static int all_count(regsim_t *rs, const char *group, int count)
{
    for (int i = 0; i < regsim_node_count(rs); i++)
        if (regsim_node(rs, i) && herd_group_count(regsim_node(rs, i), group) != count)
            return 0;
    return 1;
}

/* Whether every up node sees pid in group with meta "v" = v (NULL: any). */
static int all_see(regsim_t *rs, const char *group, herd_pid_t pid, const char *v)
{
    for (int i = 0; i < regsim_node_count(rs); i++) {
        herd_node_t *n = regsim_node(rs, i);
        if (n && !is_member(n, group, pid, v))
            return 0;
    }
    return 1;
}

static int all_entries(regsim_t *rs, uint64_t entries)
{
    for (int i = 0; i < regsim_node_count(rs); i++)
        if (regsim_node(rs, i) && group_entries(regsim_node(rs, i)) != entries)
            return 0;
    return 1;
}

static void test_group_cluster_seen_alike_everywhere(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(1, 3, SIM_FORGET);
    herd_pid_t p[3][2];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            p[i][k] = sim_spawn(rs, i);
            char v[8];
            snprintf(v, sizeof(v), "%d.%d", i, k);
            herd_meta_t m = meta1("v", v);
            assert_int_equal(herd_group_join(regsim_node(rs, i), "all", p[i][k], &m), 0);
        }
    /* a node joins another node's process, and a name of the same string */
    herd_meta_t mr = meta1("v", "remote");
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "remote", p[2][1], &mr), 0);
    assert_int_equal(herd_register(regsim_node(rs, 1), "all", p[1][0], NULL), 0);
    SIM_UNTIL(rs, all_count(rs, "all", 6) && all_count(rs, "remote", 1), 5000);
    for (int j = 0; j < 3; j++) {
        herd_node_t *n = regsim_node(rs, j);
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 2; k++) {
                char v[8];
                snprintf(v, sizeof(v), "%d.%d", i, k);
                assert_true(is_member(n, "all", p[i][k], v));
            }
        assert_true(is_member(n, "remote", p[2][1], "remote"));
        assert_int_equal(herd_group_local_members(n, "all", NULL, NULL), 2);
        seen_t s;
        memset(&s, 0, sizeof(s));
        assert_int_equal(herd_group_local_members(n, "all", collect, &s), 2);
        for (int i = 0; i < 2; i++)
            assert_int_equal(s.m[i].pid.node, herd_node_id_of(regsim_name(rs, j)));
        /* which: by the pid index on its node, by a pass elsewhere */
        s = which(n, p[2][1]);
        assert_int_equal(s.n, 2);
        assert_true(seen_at(&s, "remote", p[2][1]) >= 0);
        assert_true(seen_at(&s, "all", p[2][1]) >= 0);
        assert_int_equal(which(n, p[0][0]).n, 1);
        assert_int_equal(listed_members(n, "all"), 6);
        assert_int_equal(herd_group_list(n, NULL, NULL, NULL), 2);
        /* names apart */
        herd_pid_t who;
        SIM_UNTIL(rs, herd_whereis(n, "all", &who, NULL) == 0, 5000);
        ts_assert_pid_eq(who, p[1][0]);
        assert_int_equal(herd_registry_count(n, NULL), 1);
        herd_registry_stats_t st = stats_of(n);
        assert_int_equal(st.names, 1);
        assert_int_equal(st.entries, 1);
        assert_int_equal(group_entries(n), 7);
    }
    /* the pid's node put the remote join in its index: the exit takes it */
    assert_int_equal(herd_stop(regsim_node(rs, 2), p[2][1], HERD_REASON_NORMAL), 0);
    SIM_UNTIL(rs, all_count(rs, "all", 5) && all_count(rs, "remote", 0) && all_entries(rs, 5),
              5000);
    for (int j = 0; j < 3; j++)
        assert_int_equal(herd_group_which(regsim_node(rs, j), p[2][1], NULL, NULL), 0);
    regsim_free(rs);
}

static void test_group_cluster_leave_elsewhere_stays_done(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(2, 3, SIM_FORGET);
    herd_pid_t p = sim_spawn(rs, 1), q = sim_spawn(rs, 1);
    herd_meta_t m = meta1("v", "1");
    assert_int_equal(herd_group_join(regsim_node(rs, 1), "g", p, &m), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 1), "g", q, &m), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 2), "h", p, &m), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 2) && all_count(rs, "h", 1), 5000);
    /* left on a node that is not the process's */
    assert_int_equal(herd_group_leave(regsim_node(rs, 0), "g", p), 0);
    assert_int_equal(herd_group_leave(regsim_node(rs, 0), "h", p), 0);
    assert_int_equal(herd_group_count(regsim_node(rs, 0), "g"), 1);
    assert_int_equal(herd_group_leave(regsim_node(rs, 0), "g", p), HERD_ENOENT);
    SIM_UNTIL(rs, all_count(rs, "g", 1) && all_count(rs, "h", 0), 5000);
    /* and its node does not put it back: three checks later, still gone */
    assert_int_equal(regsim_run_for(rs, 3 * REGISTRY_CHECK_MS + 500), 0);
    assert_true(all_count(rs, "g", 1) && all_count(rs, "h", 0) && all_entries(rs, 1));
    assert_true(all_see(rs, "g", q, "1"));
    assert_int_equal(herd_group_which(regsim_node(rs, 1), p, NULL, NULL), 0);
    assert_int_equal(stats_of(regsim_node(rs, 1)).reregistered, 0);
    /* the process joins again: a new membership, seen everywhere */
    assert_int_equal(herd_group_join(regsim_node(rs, 1), "g", p, NULL), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 2), 5000);
    regsim_free(rs);
}

static void test_group_cluster_down_hides_up_shows(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(3, 3, SIM_FORGET);
    herd_pid_t p0 = sim_spawn(rs, 0), p2 = sim_spawn(rs, 2), p2b = sim_spawn(rs, 2);
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "g", p0, NULL), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 2), "g", p2, NULL), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "g", p2b, NULL), 0); /* written by 0 */
    assert_int_equal(herd_group_join(regsim_node(rs, 2), "only2", p2, NULL), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 3) && all_count(rs, "only2", 1), 5000);
    /* node 2 goes away (a partition shorter than the forget time) */
    regsim_set_group(rs, 2, 1);
    herd_node_t *a = regsim_node(rs, 0), *b = regsim_node(rs, 1), *c = regsim_node(rs, 2);
    SIM_UNTIL(rs, herd_group_count(a, "g") == 1 && herd_group_count(b, "g") == 1, 2000);
    for (int j = 0; j < 2; j++) {
        herd_node_t *n = regsim_node(rs, j);
        assert_false(is_member(n, "g", p2, NULL));
        assert_false(is_member(n, "g", p2b, NULL));
        assert_true(is_member(n, "g", p0, NULL));
        assert_int_equal(herd_group_count(n, "only2"), 0);
        assert_int_equal(listed_members(n, "only2"), -1);
        assert_int_equal(herd_group_which(n, p2, NULL, NULL), 0);
        assert_int_equal(herd_group_leave(n, "g", p2), HERD_ENOENT);
        assert_int_equal(group_entries(n), 4); /* hidden, not removed */
    }
    /* the far side sees the others hidden too */
    SIM_UNTIL(rs, herd_group_count(c, "g") == 2, 2000);
    assert_int_equal(herd_group_local_members(c, "g", NULL, NULL), 2);
    regsim_heal(rs);
    SIM_UNTIL(rs, all_count(rs, "g", 3) && all_count(rs, "only2", 1), 3000);
    assert_true(all_entries(rs, 4));
    assert_true(all_see(rs, "g", p2b, NULL));
    regsim_free(rs);
}

static void test_group_cluster_gone_node_removed(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(4, 3, SIM_FORGET);
    herd_pid_t p0 = sim_spawn(rs, 0), p1 = sim_spawn(rs, 1), p2 = sim_spawn(rs, 2);
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "g", p0, NULL), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 1), "g", p1, NULL), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 2), "g", p2, NULL), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "h", p2, NULL), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 3) && all_count(rs, "h", 1), 5000);
    /* a crash: hidden at once, removed once forgotten */
    assert_int_equal(regsim_crash(rs, 2), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 2) && all_count(rs, "h", 0), 2000);
    assert_true(all_entries(rs, 4));
    SIM_UNTIL(rs, all_entries(rs, 2), SIM_FORGET + 2000);
    assert_int_equal(herd_group_list(regsim_node(rs, 0), NULL, NULL, NULL), 1);
    /* a restart (new incarnation) before the forget time: removed at once */
    herd_pid_t p1b = sim_spawn(rs, 1);
    assert_int_equal(herd_group_join(regsim_node(rs, 1), "h", p1b, NULL), 0);
    assert_int_equal(regsim_start(rs, 2), 0);
    assert_int_equal(regsim_run_until_members(rs, regsim_now(rs) + 5000), 0);
    herd_pid_t p2n = sim_spawn(rs, 2);
    assert_int_equal(herd_group_join(regsim_node(rs, 2), "g", p2n, NULL), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 3) && all_count(rs, "h", 1), 5000);
    uint64_t t = regsim_now(rs);
    assert_int_equal(regsim_crash(rs, 1), 0);
    assert_int_equal(regsim_run_for(rs, 100), 0);
    assert_int_equal(regsim_start(rs, 1), 0);
    SIM_UNTIL(rs, all_entries(rs, 2) && all_count(rs, "g", 2) && all_count(rs, "h", 0), 5000);
    assert_true(regsim_now(rs) - t < SIM_FORGET);
    regsim_free(rs);
}

/* A partition longer than the forget time: each side removes the other's
 * memberships; after the heal every process's node puts its own back. */
static void test_group_cluster_forgotten_put_back(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(5, 3, 1000);
    herd_pid_t p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = sim_spawn(rs, i);
        herd_meta_t m = meta1("v", regsim_name(rs, i));
        assert_int_equal(herd_group_join(regsim_node(rs, i), "g", p[i], &m), 0);
    }
    /* one written by another node than the process's */
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "h", p[2], NULL), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 3) && all_count(rs, "h", 1), 5000);
    regsim_set_group(rs, 2, 1);
    herd_node_t *a = regsim_node(rs, 0), *c = regsim_node(rs, 2);
    SIM_UNTIL(rs, group_entries(a) == 2 && group_entries(c) == 2, 5000);
    regsim_heal(rs);
    assert_int_equal(regsim_run_until_members(rs, regsim_now(rs) + 10000), 0);
    SIM_UNTIL(rs, all_count(rs, "g", 3) && all_count(rs, "h", 1) && all_entries(rs, 4), 10000);
    for (int i = 0; i < 3; i++)
        assert_true(all_see(rs, "g", p[i], regsim_name(rs, i)));
    regsim_free(rs);
}

/* A process joined again with new metadata, and its new entry then went
 * missing on its node (as a node that forgot this one removes it) before
 * the next check: its node puts back the new metadata, in place of the
 * entry that went, not the entry the join replaced (both went since the
 * last check). */
static void test_group_cluster_put_back_is_the_newest_join(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(7, 3, SIM_FORGET);
    herd_pid_t p = sim_spawn(rs, 2);
    herd_node_t *c = regsim_node(rs, 2);
    registry_t *g = reg_of(c);
    herd_meta_t old = meta1("v", "old"), now = meta1("v", "new");
    assert_int_equal(herd_group_join(c, "g", p, &old), 0);
    SIM_UNTIL(rs, all_see(rs, "g", p, "old") && all_entries(rs, 1), 5000);
    assert_int_equal(herd_group_join(c, "g", p, &now), 0);
    char key[REG_GROUP_KEY_MAX + 1];
    size_t klen = reg_group_key("g", 1, p, key);
    const awmap_entry_t *e = awmap_get(g->map, key, klen);
    assert_non_null(e);
    assert_null(awmap_next(e));
    awmap_dot_t dot = e->dot;
    assert_int_equal(reg_local_drop(g, key, klen, &dot, 1), 0);
    assert_int_equal(herd_group_count(c, "g"), 0);
    SIM_UNTIL(rs, all_see(rs, "g", p, "new") && all_entries(rs, 1), 3 * REGISTRY_CHECK_MS);
    assert_int_equal(stats_of(c).reregistered, 1);
    /* and it stays so */
    assert_int_equal(regsim_run_for(rs, 2 * REGISTRY_CHECK_MS + 500), 0);
    assert_true(all_see(rs, "g", p, "new") && all_entries(rs, 1) && all_count(rs, "g", 1));
    assert_int_equal(stats_of(c).reregistered, 1);
    regsim_free(rs);
}

/* One process joined on two nodes at once with different metadata: one
 * entry everywhere once settled, the later join's. */
static void test_group_cluster_joins_at_once_later_wins(void **state)
{
    (void)state;
    regsim_t *rs = sim_cluster(6, 3, SIM_FORGET);
    herd_pid_t p = sim_spawn(rs, 2);
    regsim_block(rs, 0, 1, 1);
    regsim_block(rs, 1, 0, 1);
    herd_meta_t first = meta1("v", "first"), later = meta1("v", "later");
    assert_int_equal(herd_group_join(regsim_node(rs, 1), "g", p, &first), 0);
    assert_int_equal(regsim_run_for(rs, 20), 0);
    assert_int_equal(herd_group_join(regsim_node(rs, 0), "g", p, &later), 0);
    assert_int_equal(regsim_run_for(rs, 40), 0);
    regsim_unblock_all(rs);
    SIM_UNTIL(rs, all_see(rs, "g", p, "later") && all_entries(rs, 1), 5000);
    assert_true(all_count(rs, "g", 1));
    /* and a leave of it now takes it from every node */
    assert_int_equal(herd_group_leave(regsim_node(rs, 1), "g", p), 0);
    SIM_UNTIL(rs, all_entries(rs, 0) && all_count(rs, "g", 0), 5000);
    assert_int_equal(regsim_run_for(rs, 2 * REGISTRY_CHECK_MS + 500), 0);
    assert_true(all_entries(rs, 0));
    regsim_free(rs);
}

/* ---- two nodes over tcp loopback ------------------------------------------------------ */

static void test_group_tcp_cluster(void **state)
{
    (void)state;
    static const ts_timing_t calm = {100, 1500, 3000, 60000};
    herd_node_config_t ca = {.name = "a", .loop = &ts_loop}, cb = {.name = "b", .loop = &ts_loop};
    herd_node_t *a = ts_cluster_add(&ca);
    ts_cluster_join(a, &calm, NULL, 0);
    assert_int_equal(herd_registry_start(a), 0);
    herd_node_t *b = ts_cluster_add(&cb);
    ts_cluster_join(b, &calm, &a, 1);
    assert_int_equal(herd_registry_start(b), 0);
    herd_node_t *both[2] = {a, b};
    TS_WAIT_UNTIL(ts_cluster_all_up(both, 2), WAIT_MS);
    herd_pid_t pa = spawn_idle(a), pb = spawn_idle(b);
    herd_meta_t m = meta1("v", "a");
    assert_int_equal(herd_group_join(a, "g", pa, &m), 0);
    assert_int_equal(herd_group_join(a, "g", pb, NULL), 0);
    TS_WAIT_UNTIL(herd_group_count(b, "g") == 2, WAIT_MS);
    assert_true(is_member(b, "g", pa, "a"));
    assert_int_equal(herd_group_local_members(b, "g", NULL, NULL), 1);
    assert_int_equal(which(b, pb).n, 1);
    assert_int_equal(which(b, pa).n, 1);
    exit_and_wait(a, pa);
    TS_WAIT_UNTIL(herd_group_count(b, "g") == 1 && group_entries(b) == 1, WAIT_MS);
    assert_int_equal(herd_group_leave(a, "g", pb), 0);
    TS_WAIT_UNTIL(herd_group_count(b, "g") == 0 && group_entries(b) == 0, WAIT_MS);
    ts_node_free(b);
    ts_node_free(a);
}

int main(void)
{
    ts_cluster_init("test_group", SECRET);
    if (getenv("HERD_TEST_LOG") == NULL)
        herd_log_set_level(HERD_LOG_WARN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, ts_cluster_teardown)
    const struct CMUnitTest tests[] = {
        T(test_group_join_members_count_leave),
        T(test_group_join_again_replaces_meta),
        T(test_group_exit_removes_memberships),
        T(test_group_names_and_groups_apart),
        T(test_group_bad_input),
        T(test_group_keys_never_collide),
        T(test_group_list_prefix_and_stop),
        T(test_group_callbacks_may_join_and_leave),
        T(test_group_many_members),
        cmocka_unit_test(test_group_hset),
        cmocka_unit_test(test_group_cluster_seen_alike_everywhere),
        cmocka_unit_test(test_group_cluster_leave_elsewhere_stays_done),
        cmocka_unit_test(test_group_cluster_down_hides_up_shows),
        cmocka_unit_test(test_group_cluster_gone_node_removed),
        cmocka_unit_test(test_group_cluster_forgotten_put_back),
        cmocka_unit_test(test_group_cluster_put_back_is_the_newest_join),
        cmocka_unit_test(test_group_cluster_joins_at_once_later_wins),
        T(test_group_tcp_cluster),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
