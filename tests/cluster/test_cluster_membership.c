/*
 * test_cluster_membership.c - membership and failure detection with real
 * herdd processes on 127.0.0.1, observed through their control sockets and
 * through ringctl, as the command-line contract (DESIGN.md) promises them.
 *
 * herdd runs with its default timings (heartbeat 200 ms, down after 1 s of
 * silence). Deadlines are generous: the suite runs on a loaded 2-core
 * machine, under ASan too; measured times are printed, not judged, except
 * the functional bound on failure detection.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>

#include "cluster_harness.h"
#include "frame.h"
#include "herd_runtime.h"

#define JOIN_MS 15000      /* three nodes see each other */
#define DOWN_BOUND_MS 4000 /* design target 2 s; slack for a loaded machine */
#define STATE_MS 8000      /* other state changes (left, up again) */

static const char *const states[] = {"up", "suspect", "draining", "down", "left"};

/* Start n1 (the seed), n2 and n3 joining through it, each with `extra`
 * options (NULL: none); wait until all see all up. */
static void start_three_with(cluster_t *c, cl_node_t *out[3], const char *const *extra)
{
    out[0] = cl_start(c, "n1", NULL, NULL, extra);
    out[1] = cl_start(c, "n2", out[0], NULL, extra);
    out[2] = cl_start(c, "n3", out[0], NULL, extra);
    long ms = cl_wait_all_up(out, 3, JOIN_MS);
    if (ms < 0)
        fail_msg("three nodes did not all see each other up within %d ms", JOIN_MS);
    print_message("cluster: three nodes all up after %ld ms\n", ms);
}

static void start_three(cluster_t *c, cl_node_t *out[3])
{
    start_three_with(c, out, NULL);
}

static int valid_state(const char *s)
{
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (s && strcmp(s, states[i]) == 0)
            return 1;
    return 0;
}

/* ---- 1. join -------------------------------------------------------------------- */

static void test_cluster_three_nodes_join_through_one_seed(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    for (size_t obs = 0; obs < 3; obs++) {
        json_t *list = cl_members(n[obs]);
        assert_non_null(list);
        assert_int_equal(json_array_size(list), 3);
        for (size_t k = 0; k < 3; k++) {
            json_t *m = cl_member(list, n[k]->name);
            if (m == NULL)
                fail_msg("%s does not list %s", n[obs]->name, n[k]->name);
            assert_true(json_is_string(json_object_get(m, "name")));
            assert_true(json_is_string(json_object_get(m, "address")));
            assert_string_equal(json_string_value(json_object_get(m, "address")),
                                n[k]->listen);
            assert_true(json_is_integer(json_object_get(m, "incarnation")));
            assert_true(json_integer_value(json_object_get(m, "incarnation")) > 0);
            const char *s = json_string_value(json_object_get(m, "state"));
            assert_true(valid_state(s));
            assert_string_equal(s, "up");
            json_t *heard = json_object_get(m, "last_heard_ms");
            assert_true(json_is_integer(heard));
            assert_true(json_integer_value(heard) >= 0);
            if (k == obs)
                assert_int_equal(json_integer_value(heard), 0);
        }
        json_decref(list);
    }
    /* Everybody agrees on everybody's incarnation. */
    for (size_t k = 0; k < 3; k++) {
        uint64_t inc[3];
        char s[32];
        for (size_t obs = 0; obs < 3; obs++)
            assert_non_null(cl_state(n[obs], n[k]->name, s, sizeof(s), &inc[obs]));
        assert_true(inc[0] == inc[1] && inc[1] == inc[2]);
    }
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 2. kill -9 ----------------------------------------------------------------- */

/* Kill `victim` with SIGKILL and wait until both survivors report it down.
 * Asserts that neither survivor ever reports the other down meanwhile (nor
 * in the second after). Returns the slower survivor's detection time. */
static long kill_and_detect(cl_node_t *victim, cl_node_t *a, cl_node_t *b)
{
    cl_node_t *surv[2] = {a, b};
    long seen[2] = {-1, -1};
    uint64_t t0 = cl_now_ms();
    cl_kill9(victim);
    uint64_t quiet_until = 0;
    int suspects = 0;
    for (;;) {
        uint64_t now = cl_now_ms();
        for (int i = 0; i < 2; i++) {
            char s[32];
            if (seen[i] < 0 && cl_state(surv[i], victim->name, s, sizeof(s), NULL) &&
                strcmp(s, "down") == 0)
                seen[i] = (long)(cl_now_ms() - t0);
            const char *other = surv[1 - i]->name;
            if (cl_state(surv[i], other, s, sizeof(s), NULL) == NULL)
                fail_msg("%s stopped answering its control socket", surv[i]->name);
            /* A suspicion on a loaded machine is allowed, a verdict is not. */
            if (strcmp(s, "suspect") == 0)
                suspects++;
            else if (strcmp(s, "up") != 0)
                fail_msg("%s reports the live %s as '%s' (%ld ms after the kill)",
                         surv[i]->name, other, s, (long)(cl_now_ms() - t0));
        }
        if (seen[0] >= 0 && seen[1] >= 0 && quiet_until == 0)
            quiet_until = cl_now_ms() + 1000;
        if (quiet_until && now > quiet_until)
            break;
        if (now - t0 > DOWN_BOUND_MS + 2000 && (seen[0] < 0 || seen[1] < 0))
            break;
        cl_sleep_ms(CL_POLL_MS);
    }
    print_message("cluster: %s killed; down at %s after %ld ms, at %s after %ld ms"
                  " (survivors briefly suspect of each other: %d polls)\n",
                  victim->name, a->name, seen[0], b->name, seen[1], suspects);
    for (int i = 0; i < 2; i++) {
        if (seen[i] < 0)
            fail_msg("%s never reported the killed %s down", surv[i]->name, victim->name);
        if (seen[i] > DOWN_BOUND_MS)
            fail_msg("%s reported the killed %s down after %ld ms (bound %d ms)",
                     surv[i]->name, victim->name, seen[i], DOWN_BOUND_MS);
    }
    return seen[0] > seen[1] ? seen[0] : seen[1];
}

/* A killed node's links close and its port refuses the reconnect: each
 * survivor declares it down from that (membership's log says so), straight
 * from up, before the 600 ms of silence that make a suspect could pass. */
static void test_cluster_kill9_is_detected_down(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    static const char *const verbose[] = {"--log-level", "warn,membership=info", NULL};
    start_three_with(c, n, verbose);
    char s[32], suspected[96];
    uint64_t inc = 0;
    assert_non_null(cl_state(n[1], "n1", s, sizeof(s), &inc));
    snprintf(suspected, sizeof(suspected), "n1 (incarnation %llu): up -> suspect",
             (unsigned long long)inc);
    /* The seed: n2 and n3 joined through it, and must not need it now. */
    kill_and_detect(n[0], n[1], n[2]);
    for (int i = 1; i < 3; i++) {
        if (!cl_log_has(n[i], "n1: its connection closed and reconnecting was refused"))
            fail_msg("%s did not declare the killed n1 down from its refused link (%s)",
                     n[i]->name, n[i]->log);
        if (cl_log_has(n[i], suspected))
            fail_msg("%s suspected the killed n1 before its link said it was dead (%s)",
                     n[i]->name, n[i]->log);
    }
    /* Down is not forgotten: it stays listed. */
    for (int i = 1; i < 3; i++) {
        assert_non_null(cl_state(n[i], "n1", s, sizeof(s), NULL));
        assert_string_equal(s, "down");
    }
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 3. restart ----------------------------------------------------------------- */

/* Wait until both observers report `name` up with an incarnation above
 * `before`; returns the new incarnation. */
static uint64_t wait_up_again(cl_node_t *a, cl_node_t *b, const char *name,
                              uint64_t before)
{
    cl_node_t *obs[2] = {a, b};
    uint64_t inc[2] = {0, 0};
    uint64_t t0 = cl_now_ms();
    char s[32];
    for (int i = 0; i < 2; i++) {
        for (;;) {
            if (cl_state(obs[i], name, s, sizeof(s), &inc[i]) && strcmp(s, "up") == 0 &&
                inc[i] > before)
                break;
            if (cl_now_ms() - t0 > STATE_MS)
                fail_msg("%s reports %s as '%s' incarnation %llu (before: %llu), want up "
                         "with a higher incarnation",
                         obs[i]->name, name, s, (unsigned long long)inc[i],
                         (unsigned long long)before);
            cl_sleep_ms(CL_POLL_MS);
        }
    }
    print_message("cluster: %s up again after %ld ms, incarnation %llu -> %llu\n", name,
                  (long)(cl_now_ms() - t0), (unsigned long long)before,
                  (unsigned long long)inc[0]);
    assert_true(inc[0] == inc[1]);
    return inc[0];
}

static void test_cluster_restart_comes_back_with_higher_incarnation(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    uint64_t inc1 = 0;
    char s[32];
    assert_non_null(cl_state(n[0], "n2", s, sizeof(s), &inc1));

    /* Killed, declared down, then started again at the same address. */
    kill_and_detect(n[1], n[0], n[2]);
    cl_restart(c, n[1]);
    uint64_t inc2 = wait_up_again(n[0], n[2], "n2", inc1);
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);

    /* Killed and started again at once, before anybody noticed. */
    cl_kill9(n[1]);
    cl_restart(c, n[1]);
    uint64_t inc3 = wait_up_again(n[0], n[2], "n2", inc2);
    assert_true(inc3 > inc2);
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);
    /* The restarted node itself agrees on its incarnation. */
    uint64_t self = 0;
    assert_non_null(cl_state(n[1], "n2", s, sizeof(s), &self));
    assert_true(self == inc3);

    /* The seed (which has no seed of its own) killed and started again at
     * once: the others find it again by heartbeating its address. */
    uint64_t seed1 = 0;
    assert_non_null(cl_state(n[1], "n1", s, sizeof(s), &seed1));
    cl_kill9(n[0]);
    cl_restart(c, n[0]);
    wait_up_again(n[1], n[2], "n1", seed1);
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);

    /* And the old incarnations are not listed anywhere any more. */
    for (int i = 0; i < 3; i++) {
        json_t *list = cl_members(n[i]);
        assert_non_null(list);
        assert_int_equal(json_array_size(list), 3);
        json_decref(list);
    }
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 4. SIGTERM ----------------------------------------------------------------- */

static void test_cluster_sigterm_leaves_cleanly(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    uint64_t t0 = cl_now_ms();
    cl_signal(n[2], SIGTERM);
    if (cl_wait_exit(n[2], 5000) != 0)
        fail_msg("herdd n3 still runs 5 s after SIGTERM");
    long exit_ms = (long)(cl_now_ms() - t0);
    if (!WIFEXITED(n[2]->status))
        fail_msg("herdd n3 did not exit after SIGTERM (killed by signal %d)",
                 WIFSIGNALED(n[2]->status) ? WTERMSIG(n[2]->status) : -1);
    assert_int_equal(WEXITSTATUS(n[2]->status), 0);

    /* Both others report it left, and never down: not now, nor after more
     * than a down-time of silence. */
    cl_node_t *obs[2] = {n[0], n[1]};
    long left_ms[2] = {-1, -1};
    uint64_t until = 0;
    for (;;) {
        for (int i = 0; i < 2; i++) {
            char s[32];
            if (cl_state(obs[i], "n3", s, sizeof(s), NULL) == NULL)
                fail_msg("%s stopped answering", obs[i]->name);
            if (strcmp(s, "down") == 0 || strcmp(s, "") == 0)
                fail_msg("%s reports n3, which left, as '%s' %ld ms after SIGTERM",
                         obs[i]->name, s, (long)(cl_now_ms() - t0));
            if (left_ms[i] < 0 && strcmp(s, "left") == 0)
                left_ms[i] = (long)(cl_now_ms() - t0);
        }
        if (left_ms[0] >= 0 && left_ms[1] >= 0 && until == 0)
            until = cl_now_ms() + 2500; /* > down_ms (1 s) plus slack */
        if (until && cl_now_ms() > until)
            break;
        if (until == 0 && cl_now_ms() - t0 > STATE_MS)
            fail_msg("n3 not reported left within %d ms (n1: %ld ms, n2: %ld ms)",
                     STATE_MS, left_ms[0], left_ms[1]);
        cl_sleep_ms(CL_POLL_MS);
    }
    print_message("cluster: n3 exited %ld ms after SIGTERM; left at n1 after %ld ms, "
                  "at n2 after %ld ms\n",
                  exit_ms, left_ms[0], left_ms[1]);
    /* n1 and n2 still see each other up. */
    assert_true(cl_wait_all_up(n, 2, 2000) >= 0);

    /* Started again, it is welcome back, with a new incarnation. */
    uint64_t before = 0;
    char s[32];
    assert_non_null(cl_state(n[0], "n3", s, sizeof(s), &before));
    cl_restart(c, n[2]);
    wait_up_again(n[0], n[1], "n3", before);
    assert_true(cl_wait_all_up(n, 3, JOIN_MS) >= 0);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 5. wrong secret ------------------------------------------------------------ */

static void test_cluster_wrong_secret_is_refused(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    long long mac0 = cl_stat(n[0], NULL, "mac");
    assert_true(mac0 >= 0);
    char other[300];
    cl_write_cookie(c, "other-cookie", 32, 0600, other, sizeof(other));
    cl_node_t *x = cl_start(c, "intruder", n[0], other, NULL);

    /* The seed counts the intruder's frames as failing the MAC. */
    uint64_t t0 = cl_now_ms();
    long long mac;
    while ((mac = cl_stat(n[0], NULL, "mac")) <= mac0) {
        if (cl_now_ms() - t0 > STATE_MS)
            fail_msg(
                "the seed's stats show rejected.mac %lld (before: %lld) %d ms after a "
                "node with another cookie joined it",
                mac, mac0, STATE_MS);
        cl_sleep_ms(CL_POLL_MS);
    }
    /* Nobody lists the intruder, and it lists nobody, for a while (it
     * keeps saying HELLO all along). */
    t0 = cl_now_ms();
    while (cl_now_ms() - t0 < 2000) {
        for (int i = 0; i < 3; i++) {
            json_t *list = cl_members(n[i]);
            assert_non_null(list);
            if (cl_member(list, "intruder"))
                fail_msg("%s lists the node with the wrong cookie", n[i]->name);
            assert_int_equal(json_array_size(list), 3);
            json_decref(list);
        }
        json_t *own = cl_members(x);
        assert_non_null(own);
        if (json_array_size(own) != 1)
            fail_msg("the node with the wrong cookie lists %zu members",
                     json_array_size(own));
        json_decref(own);
        cl_sleep_ms(4 * CL_POLL_MS);
    }
    mac = cl_stat(n[0], NULL, "mac");
    print_message("cluster: seed rejected %lld frames for their MAC\n", mac - mac0);
    assert_true(mac > mac0);
    assert_true(cl_alive(x));
    if (!cl_log_has(n[0], "wrong cluster secret"))
        fail_msg("the seed did not log the frames that failed their MAC");
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 6. ringctl against live nodes ---------------------------------------------- */

#define RINGCTL(c, r, ...)                                                                 \
    cl_run_prog((c), RINGCTL_PATH, (const char *const[]){__VA_ARGS__, NULL}, 10000, (r))

/* The registry's sync counters and causal context, in `crdt` and in `stats`
 * (registry.*), and a peer's in `crdt`. */
static const char *const registry_sync_keys[] = {
    "bytes_out",       "bytes_in",        "send_failed", "repairs",
    "pieces_split",    "context_trimmed", "contexts_joined",
    "cc_replicas",     "cc_cloud_dots",   "cc_cloud_max", "syncs_under_way", "longest_us", NULL};
static const char *const peer_sync_keys[] = {"bytes_out", "bytes_in", "send_failed",
                                             NULL};

static void assert_has_counters(json_t *obj, const char *const *keys)
{
    for (size_t k = 0; keys[k]; k++)
        if (!json_is_integer(json_object_get(obj, keys[k])))
            fail_msg("no counter '%s' in the answer", keys[k]);
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    if (doc == NULL)
        fail_msg("not JSON (%s): %s", e.text, text);
    return doc;
}

static void test_cluster_ringctl_live(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    static cl_run_t r; /* large: keep it off the stack */

    /* ring: the three members, default weight, shares summing to 1. */
    for (int i = 0; i < 3; i++) {
        RINGCTL(c, &r, "--json", "--node", n[i]->control, "ring");
        if (r.status != 0)
            fail_msg("ringctl ring at %s: exit %d: %s", n[i]->name, r.status, r.err);
        json_t *doc = parse_json(r.out);
        json_t *members = json_object_get(doc, "members");
        assert_true(json_is_array(members));
        assert_int_equal(json_array_size(members), 3);
        double total = 0;
        for (size_t k = 0; k < 3; k++) {
            json_t *m = json_array_get(members, k);
            assert_string_equal(json_string_value(json_object_get(m, "name")),
                                n[k]->name);
            assert_int_equal(json_integer_value(json_object_get(m, "weight")), 128);
            assert_int_equal(json_integer_value(json_object_get(m, "points")), 128);
            double share = json_real_value(json_object_get(m, "share"));
            assert_true(share > 0.0 && share < 1.0);
            total += share;
        }
        assert_float_equal(total, 1.0, 1e-9);
        json_decref(doc);
    }

    /* owner: the same answer on every node, and the same as the offline ring
     * of the same members. */
    static const char *const keys[] = {
        "counter-1", "counter-2", "orders",
        "",          "x",         "a much longer key with spaces and / slashes"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        RINGCTL(c, &r, "--json", "owner", keys[k], "--nodes", "n1,n2,n3");
        assert_int_equal(r.status, 0);
        json_t *doc = parse_json(r.out);
        char want[80];
        snprintf(want, sizeof(want), "%s",
                 json_string_value(json_object_get(doc, "owner")));
        json_decref(doc);
        for (int i = 0; i < 3; i++) {
            RINGCTL(c, &r, "--json", "--node", n[i]->control, "owner", keys[k]);
            if (r.status != 0)
                fail_msg("ringctl owner '%s' at %s: exit %d: %s", keys[k], n[i]->name,
                         r.status, r.err);
            doc = parse_json(r.out);
            assert_string_equal(json_string_value(json_object_get(doc, "key")), keys[k]);
            const char *owner = json_string_value(json_object_get(doc, "owner"));
            assert_non_null(owner);
            if (strcmp(owner, want) != 0)
                fail_msg("owner of '%s': %s says %s, the ring of n1,n2,n3 says %s",
                         keys[k], n[i]->name, owner, want);
            json_decref(doc);
        }
    }

    /* members through ringctl: the same view as the control socket, each
     * member with the services it announced (herdd hosts "counter"). */
    RINGCTL(c, &r, "--json", "--node", n[1]->control, "members");
    assert_int_equal(r.status, 0);
    json_t *doc = parse_json(r.out);
    assert_int_equal(json_array_size(doc), 3);
    for (size_t k = 0; k < 3; k++) {
        json_t *services = json_object_get(json_array_get(doc, k), "services");
        assert_true(json_is_array(services));
        assert_int_equal(json_array_size(services), 1);
        assert_string_equal(json_string_value(json_array_get(services, 0)), "counter");
    }
    json_decref(doc);
    RINGCTL(c, &r, "--node", n[1]->control, "members");
    assert_int_equal(r.status, 0);
    if (strstr(r.out, "SERVICES") == NULL || strstr(r.out, " counter\n") == NULL)
        fail_msg("ringctl members shows no services: %s", r.out);

    /* crdt: one entry per peer, whose stream has been used for the digest
     * syncs at join, with its sync traffic; the replica's sync counters and
     * causal context: nothing written yet, and the contexts the digest syncs
     * carried name every node start (3 replicas), with no cloud;
     * names/whereis of an empty registry. The last context may still be on
     * its way: polled until the deadline. */
    for (int tries = 0;; tries++) {
        RINGCTL(c, &r, "--json", "--node", n[0]->control, "crdt");
        assert_int_equal(r.status, 0);
        doc = parse_json(r.out);
        if (json_integer_value(json_object_get(doc, "cc_replicas")) == 3 || tries == 50)
            break;
        json_decref(doc);
        cl_sleep_ms(CL_POLL_MS);
    }
    json_t *peers = json_object_get(doc, "peers");
    assert_int_equal(json_array_size(peers), 2);
    for (size_t k = 0; k < 2; k++) {
        json_t *p = json_array_get(peers, k);
        assert_true(json_is_string(json_object_get(p, "node")));
        assert_true(json_integer_value(json_object_get(p, "digest_syncs")) >= 1);
        assert_true(json_integer_value(json_object_get(p, "acked_seq")) <=
                    json_integer_value(json_object_get(p, "sent_seq")));
        assert_has_counters(p, peer_sync_keys);
    }
    assert_int_equal(json_integer_value(json_object_get(doc, "names")), 0);
    assert_has_counters(doc, registry_sync_keys);
    assert_int_equal(json_integer_value(json_object_get(doc, "cc_replicas")), 3);
    assert_int_equal(json_integer_value(json_object_get(doc, "cc_cloud_dots")), 0);
    assert_int_equal(json_integer_value(json_object_get(doc, "cc_cloud_max")), 0);
    json_decref(doc);
    RINGCTL(c, &r, "--node", n[0]->control, "crdt");
    assert_int_equal(r.status, 0);
    if (strstr(r.out, "context: replicas 3, cloud dots 0 (largest 0)\n") == NULL ||
        strstr(r.out, "sync: bytes out ") == NULL || strstr(r.out, "SEND_FAILED") == NULL)
        fail_msg("ringctl crdt shows no causal context or sync traffic: %s", r.out);
    /* stats: the same counters under registry.* */
    RINGCTL(c, &r, "--json", "--node", n[0]->control, "stats");
    assert_int_equal(r.status, 0);
    doc = parse_json(r.out);
    assert_has_counters(json_object_get(doc, "registry"), registry_sync_keys);
    /* and what the node's memory is made of (herdd_memory.h) */
    json_t *mem = json_object_get(doc, "memory");
    assert_true(json_integer_value(json_object_get(mem, "rss_kb")) > 0);
#ifdef __SANITIZE_ADDRESS__
    /* the sanitizer's allocator gives mallinfo2 nothing: zeros */
    assert_true(json_integer_value(json_object_get(mem, "heap_in_use")) >= 0);
#else
    assert_true(json_integer_value(json_object_get(mem, "heap_in_use")) > 0);
#endif
    assert_true(json_is_integer(json_object_get(mem, "trims")));
    json_decref(doc);
    RINGCTL(c, &r, "--node", n[0]->control, "stats");
    assert_int_equal(r.status, 0);
    if (strstr(r.out, "\nmemory.rss_kb ") == NULL || strstr(r.out, "\nmemory.heap_in_use ") == NULL)
        fail_msg("ringctl stats shows no memory figures: %s", r.out);
    for (size_t k = 0; registry_sync_keys[k]; k++) {
        char line[64];
        snprintf(line, sizeof(line), "\nregistry.%s ", registry_sync_keys[k]);
        if (strstr(r.out, line) == NULL)
            fail_msg("ringctl stats shows no registry.%s: %s", registry_sync_keys[k],
                     r.out);
    }
    RINGCTL(c, &r, "--json", "--node", n[1]->control, "names");
    assert_int_equal(r.status, 0);
    doc = parse_json(r.out);
    assert_true(json_is_array(doc));
    json_decref(doc);
    RINGCTL(c, &r, "--json", "--node", n[1]->control, "whereis", "nobody-here");
    assert_int_equal(r.status, 1);
    doc = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "ENOENT");
    json_decref(doc);

    /* A node that does not exist: exit 1 within 3 s, a message on stderr. */
    char nobody[320];
    snprintf(nobody, sizeof(nobody), "ipc://%s/nobody.ctl", c->dir);
    RINGCTL(c, &r, "--node", nobody, "members");
    print_message("cluster: ringctl to nobody exited %d after %ld ms\n", r.status,
                  r.elapsed_ms);
    assert_int_equal(r.status, 1);
    assert_true(r.elapsed_ms < 3000);
    assert_true(strlen(r.err) > 0);
    assert_string_equal(r.out, "");
    RINGCTL(c, &r, "--json", "--node", nobody, "members");
    assert_int_equal(r.status, 1);
    assert_true(r.elapsed_ms < 3000);
    assert_true(strlen(r.err) > 0);
    doc = parse_json(r.out);
    assert_true(json_is_object(doc));
    assert_true(json_is_string(json_object_get(doc, "error")));
    assert_true(json_is_string(json_object_get(doc, "message")));
    assert_true(strlen(json_string_value(json_object_get(doc, "message"))) > 0);
    json_decref(doc);
    cl_stop_all(c);
    cl_pass(c);
}

/* ---- 7. herdd's bad input ------------------------------------------------------- */

/* Run herdd with argv; assert its exit code and that it never got ready. */
static void herdd_fails(cluster_t *c, int want, const char *must_say,
                        const char *const *args)
{
    const char *argv[32];
    size_t k = 0;
    argv[k++] = HERDD_PATH;
    for (size_t i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    static cl_run_t r;
    cl_run(c, argv, 10000, &r);
    char cmd[512] = "";
    for (size_t i = 0; args[i]; i++)
        snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", args[i]);
    if (r.status != want)
        fail_msg("herdd%s: exit %d, want %d; stderr: %s", cmd, r.status, want, r.err);
    if (strstr(r.err, "herdd: ready"))
        fail_msg("herdd%s got ready before failing: %s", cmd, r.err);
    if (strlen(r.err) == 0)
        fail_msg("herdd%s: exit %d without a message on stderr", cmd, r.status);
    if (must_say && strstr(r.err, must_say) == NULL)
        fail_msg("herdd%s: stderr does not mention '%s': %s", cmd, must_say, r.err);
}

#define HERDD_FAILS(c, want, say, ...)                                                   \
    herdd_fails((c), (want), (say), (const char *const[]){__VA_ARGS__, NULL})

static void test_cluster_herdd_rejects_bad_input(void **state)
{
    cluster_t *c = *state;
    char listen[64], loose[300], shortc[300], ctl[320];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d",
             20000 + (int)(cl_random(c) % 40001u));
    snprintf(ctl, sizeof(ctl), "ipc://%s/bad.ctl", c->dir);
    cl_write_cookie(c, "loose-cookie", 32, 0644, loose, sizeof(loose));
    cl_write_cookie(c, "short-cookie", 10, 0600, shortc, sizeof(shortc));

    /* usage errors: 2 */
    HERDD_FAILS(c, 2, NULL, "--listen", listen, "--cookie-file", c->cookie, "--control",
                ctl);
    HERDD_FAILS(c, 2, NULL, "--name", "a b", "--listen", listen, "--cookie-file",
                c->cookie, "--control", ctl);
    HERDD_FAILS(c, 2, NULL, "--name", "n1", "--listen", listen, "--cookie-file",
                c->cookie, "--control", ctl, "--frobnicate");
    HERDD_FAILS(c, 2, NULL, "--name", "n1", "--listen", listen, "--cookie-file",
                c->cookie, "--control", "tcp://127.0.0.1:9");
    /* failures: 1 */
    HERDD_FAILS(c, 1, "mode", "--name", "n1", "--listen", listen, "--cookie-file", loose,
                "--control", ctl);
    HERDD_FAILS(c, 1, NULL, "--name", "n1", "--listen", listen, "--cookie-file", shortc,
                "--control", ctl);
    /* a malformed address is a usage error; one that cannot be bound, a failure */
    HERDD_FAILS(c, 2, NULL, "--name", "n1", "--listen", "tcp://nope", "--cookie-file",
                c->cookie, "--control", ctl);
    HERDD_FAILS(c, 2, NULL, "--name", "n1", "--listen", listen, "--join", "garbage",
                "--cookie-file", c->cookie, "--control", ctl);
    int taken = nn_socket(AF_SP, NN_PULL); /* the port is in use */
    assert_true(taken >= 0 && nn_bind(taken, listen) >= 0);
    HERDD_FAILS(c, 1, "in use", "--name", "n1", "--listen", listen, "--cookie-file",
                c->cookie, "--control", ctl);
    nn_close(taken);
    cl_pass(c);
}

/* ---- 8. garbage on the wire ----------------------------------------------------- */

enum { R_SHORT, R_MAGIC, R_VERSION, R_LENGTH, R_RESERVED, R_MAC, R_COUNT };
static const char *const reason_names[R_COUNT] = {"short",  "magic",    "version",
                                                  "length", "reserved", "mac"};

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A frame that looks real: the header of a heartbeat from n1 to n2 with a
 * 32-byte body and a MAC made up by someone without the secret. */
static size_t fake_frame(cluster_t *c, uint8_t *f)
{
    memset(f, 0, 64);
    put_le(f + 0, 0x44524548u, 4); /* "HERD" */
    f[4] = FRAME_VERSION;          /* version */
    f[5] = 2;                      /* heartbeat */
    put_le(f + 8, herd_node_id_of("n1"), 8);
    put_le(f + 16, 1, 8);
    put_le(f + 24, herd_node_id_of("n2"), 8);
    put_le(f + 40, cl_now_ms(), 8);
    put_le(f + 48, 1, 8);
    put_le(f + 56, 32, 4);
    for (size_t i = 64; i < 64 + 32 + 16; i++)
        f[i] = (uint8_t)cl_random(c);
    return 64 + 32 + 16;
}

static void push(int sock, const void *buf, size_t len)
{
    if (nn_send(sock, buf, len, 0) != (int)len)
        fail_msg("nn_send of %zu bytes: %s", len, nn_strerror(nn_errno()));
}

static long long reject_total(const cl_node_t *n, long long out[R_COUNT])
{
    long long sum = 0;
    for (int i = 0; i < R_COUNT; i++) {
        out[i] = cl_stat(n, NULL, reason_names[i]);
        if (out[i] < 0)
            fail_msg("%s: stats has no rejected.%s (or it does not answer)", n->name,
                     reason_names[i]);
        sum += out[i];
    }
    return sum;
}

static void test_cluster_survives_garbage_frames(void **state)
{
    cluster_t *c = *state;
    cl_node_t *n[3];
    start_three(c, n);
    cl_node_t *target = n[1];
    long long before[R_COUNT], after[R_COUNT], want[R_COUNT] = {0};
    reject_total(target, before);

    int sock = nn_socket(AF_SP, NN_PUSH);
    assert_true(sock >= 0);
    int tmo = 5000;
    assert_int_equal(nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &tmo, sizeof(tmo)),
                     0);
    assert_true(nn_connect(sock, target->listen) >= 0);

    /* 1000 random byte strings, 0-299 bytes; the first byte is never 'H', so
     * the reason each is refused for is known. */
    uint8_t buf[512];
    for (int i = 0; i < 1000; i++) {
        size_t len = (size_t)(cl_random(c) % 300u);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)cl_random(c);
        if (len)
            buf[0] = (uint8_t)(buf[0] == 'H' ? 'h' : buf[0]);
        push(sock, buf, len);
        want[len < 80 ? R_SHORT : R_MAGIC]++;
    }
    /* Every truncation of a real-looking frame, then the whole of it. */
    size_t full = fake_frame(c, buf);
    for (size_t len = 0; len < full; len++) {
        push(sock, buf, len);
        want[len < 80 ? R_SHORT : R_LENGTH]++;
    }
    push(sock, buf, full);
    want[R_MAC]++;
    /* Longer than its length field says. */
    buf[full] = 0;
    push(sock, buf, full + 1);
    want[R_LENGTH]++;
    /* Another version; the reserved field set; an unknown type (the MAC is
     * checked first). */
    buf[4] = FRAME_VERSION + 1;
    push(sock, buf, full);
    want[R_VERSION]++;
    buf[4] = FRAME_VERSION - 1; /* the format before calls carried their deadline */
    push(sock, buf, full);
    want[R_VERSION]++;
    buf[4] = FRAME_VERSION;
    put_le(buf + 60, 1, 4);
    push(sock, buf, full);
    want[R_RESERVED]++;
    put_le(buf + 60, 0, 4);
    buf[5] = 200;
    push(sock, buf, full);
    want[R_MAC]++;

    long long sent = 0;
    for (int i = 0; i < R_COUNT; i++)
        sent += want[i];
    long long base = 0;
    for (int i = 0; i < R_COUNT; i++)
        base += before[i];
    /* Wait until all of them arrived (or more: that fails below). */
    uint64_t t0 = cl_now_ms();
    while (reject_total(target, after) - base < sent && cl_now_ms() - t0 < 15000)
        cl_sleep_ms(CL_POLL_MS);
    nn_close(sock);
    print_message("cluster: sent %lld bad frames; %s counted", sent, target->name);
    for (int i = 0; i < R_COUNT; i++)
        print_message(" %s=%lld/%lld", reason_names[i], after[i] - before[i], want[i]);
    print_message(" after %ld ms\n", (long)(cl_now_ms() - t0));
    for (int i = 0; i < R_COUNT; i++)
        if (after[i] - before[i] != want[i])
            fail_msg("%s counted %lld frames rejected for '%s', want %lld", target->name,
                     after[i] - before[i], reason_names[i], want[i]);

    /* It keeps running, and nobody ever thinks it down. */
    t0 = cl_now_ms();
    while (cl_now_ms() - t0 < 2000) {
        assert_true(cl_alive(target));
        for (int i = 0; i < 3; i += 2) {
            char s[32];
            assert_non_null(cl_state(n[i], target->name, s, sizeof(s), NULL));
            if (strcmp(s, "up") != 0 && strcmp(s, "suspect") != 0)
                fail_msg("%s reports %s as '%s' after the garbage", n[i]->name,
                         target->name, s);
        }
        cl_sleep_ms(4 * CL_POLL_MS);
    }
    assert_true(cl_wait_all_up(n, 3, 2000) >= 0);
    /* Dropped frames are logged, the unauthenticated ones at the default
     * level (warn). */
    assert_true(cl_log_has(target, "dropped a frame (mac)"));
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    unsetenv("HERD_NODE");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_three_nodes_join_through_one_seed,
                                        cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_kill9_is_detected_down, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_restart_comes_back_with_higher_incarnation, cl_setup,
            cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_sigterm_leaves_cleanly, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_wrong_secret_is_refused, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_ringctl_live, cl_setup, cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_herdd_rejects_bad_input, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_survives_garbage_frames, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
