/*
 * support.h - what the runtime's cmocka tests (test_proc, test_call,
 * test_timer, test_monitor, test_supervisor, test_remote, test_registry)
 * share: the lifecycle of the nodes a test makes, a virtual clock, helpers
 * that run a node's loop, and clusters of nodes in this one process on one
 * shared uv loop over tcp loopback.
 *
 * Node lifecycle. Every node a test makes is tracked until the test frees it
 * with ts_node_free. When an assertion ends a test early, ts_teardown frees
 * what is still tracked, so one failure does not leak into the sanitizer's
 * report of the whole program. While it does, ts_detached() is 1: callbacks
 * that write into records living in the test's (now abandoned) stack frame
 * check it and write nothing.
 *
 * Every helper fails the running test (cmocka) on an unexpected result.
 * Nothing here is thread-safe; the tests run on one thread.
 */
#ifndef HERD_TEST_SUPPORT_H
#define HERD_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "frame.h"
#include "herd_runtime.h"
#include "runtime_layers.h"
#include "transport.h"

/* ---- node lifecycle ------------------------------------------------------ */

/* How many nodes one test may have made and not freed at once. */
#define TS_MAX_NODES 8

/* Make a node from `cfg` (fails the test unless herd_node_new succeeds) and
 * track it. */
herd_node_t *ts_node_new(const herd_node_config_t *cfg);
/* The same from a name, a clock (NULL: the loop's) and a seed. */
herd_node_t *ts_node(const char *name, const herd_clock_t *clock, uint64_t seed);
/* Track a node the test made itself with herd_node_new; returns it. Fails the
 * test when TS_MAX_NODES are tracked already. */
herd_node_t *ts_track(herd_node_t *n);
/* How many nodes are tracked (made and not freed yet). */
int ts_live_nodes(void);
/* Forget a tracked node and free it (herd_node_free). Fails the test, freeing
 * nothing, when `n` is not tracked. */
void ts_node_free(herd_node_t *n);
/* 1 while ts_teardown frees the nodes of a test that ended early. */
int ts_detached(void);

/* cmocka setup and teardown for every test that makes nodes. ts_setup starts
 * with no node tracked; ts_teardown frees what the test left behind. */
int ts_setup(void **state);
int ts_teardown(void **state);

/* ---- virtual clock ------------------------------------------------------- */

/* A clock for herd_node_config_t.clock that reads ts_vnow: the test moves
 * time by hand and drives the node with ts_drain or herd_node_poll. */
extern uint64_t ts_vnow;
extern const herd_clock_t ts_vclock;

/* ---- the loop ------------------------------------------------------------ */

/* herd_node_run_for(n, ms), which must not fail. */
void ts_run_for(herd_node_t *n, uint64_t ms);
/* Run until idle: herd_node_run_for returns early once nothing is left to do
 * and no timer is armed; 3 s is the bound. */
void ts_run(herd_node_t *n);
/* Poll until nothing is left to handle (virtual-clock tests); returns the
 * messages handled. Fails the test if 100 polls never run dry. */
int ts_drain(herd_node_t *n);
/* Milliseconds of CLOCK_MONOTONIC since *t0. */
double ts_ms_since(const struct timespec *t0);

/* ---- processes ----------------------------------------------------------- */

/* Spawn `b` with the argument `arg` (len bytes); fails the test unless the
 * spawn succeeds. */
herd_pid_t ts_spawn(herd_node_t *n, const herd_behaviour_t *b, const void *arg,
                    size_t len);
/* herd_is_alive, which must answer 0 or 1. */
int ts_alive(herd_node_t *n, herd_pid_t pid);
/* Field by field, then herd_pid_equal. */
void ts_assert_pid_eq(herd_pid_t a, herd_pid_t b);

/* ---- clusters on one shared loop ---------------------------------------- */

/* Nodes made with ts_cluster_add are tracked like ts_node's (ts_node_free
 * frees one). Clustered nodes listen on tcp://127.0.0.1 at ports picked at
 * random per run (another port on a bind failure) and share one secret. */

/* The loop the cluster tests share (ts_cluster_setup makes it). */
extern uv_loop_t ts_loop;

/* Once, from main: the secret every clustered node uses, and the seed of
 * the port picks (from the time and the pid), printed as "PROG: port seed N". */
void ts_cluster_init(const char *prog, const char *secret);
/* cmocka setup and teardown of every cluster test: ts_cluster_setup is
 * ts_setup and a fresh ts_loop; ts_cluster_teardown frees what the test left
 * (after a failure, or on purpose), newest first, then checks that the
 * shared loop has nothing left open (-1 if it has). */
int ts_cluster_setup(void **state);
int ts_cluster_teardown(void **state);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t ts_mono_ms(void);

/* Failure-detector timings (0: the default). */
typedef struct ts_timing {
    uint32_t heartbeat_ms, suspect_ms, down_ms, forget_ms;
} ts_timing_t;

/* Make a node from `cfg` and track it (not in a cluster yet). */
herd_node_t *ts_cluster_add(const herd_node_config_t *cfg);
/* Start the cluster on `n` with timings `t`, listening on a fresh random
 * port, joining through `seeds` (none: it starts a cluster of its own). */
void ts_cluster_join(herd_node_t *n, const ts_timing_t *t, herd_node_t *const *seeds,
                     size_t nseeds);
/* The address a clustered node listens on. */
const char *ts_cluster_addr(const herd_node_t *n);
/* The state in which `n` sees the member called `name`; -1 if it does not. */
int ts_cluster_member_state(herd_node_t *n, const char *name);
/* Whether each of `nodes` sees all of them (and nothing else) up. */
int ts_cluster_all_up(herd_node_t *const *nodes, int k);

/* Run the shared loop for a few milliseconds (through any live node). */
void ts_cluster_run_slice(uint64_t ms);
/* Run for `ms` (for "nothing more happens" checks that another event bounds). */
void ts_cluster_run_ms(uint64_t ms);
/* Run the shared loop in 5 ms slices until `cond`; fail the test after
 * `wait_ms`. */
#define TS_WAIT_UNTIL(cond, wait_ms)                                                     \
    do {                                                                                 \
        uint64_t t0_ = ts_mono_ms();                                                     \
        while (!(cond)) {                                                                \
            if (ts_mono_ms() - t0_ > (wait_ms))                                          \
                fail_msg("%s:%d: no %s within %u ms", __FILE__, __LINE__, #cond,         \
                         (unsigned)(wait_ms));                                           \
            ts_cluster_run_slice(5);                                                     \
        }                                                                                \
    } while (0)


/* ---- one node, frames made by hand ------------------------------------- */

/* An in-memory transport that records the node's receive callback and
 * keeps (and drops) what the node sends: a test plays every other member by
 * building authenticated frames itself (ts_fake_frame), and reads the
 * node's answers from `kept`. */
#define TS_FAKE_KEEP 32
typedef struct ts_fake_sent {
    char address[300];
    frame_header_t h; /* decoded with the test's secret */
    uint8_t *body;    /* a copy, h.length bytes; freed with the transport */
} ts_fake_sent_t;

typedef struct ts_fake_tr {
    transport_recv_cb cb;
    void *data;
    size_t sent;
    transport_t tr;
    const char *secret;
    herd_node_t *node;
    ts_fake_sent_t kept[TS_FAKE_KEEP]; /* the last frames sent, oldest first */
    size_t kept_count;
    int refuse;     /* while nonzero, sends are refused (HERD_EFULL), as by a full outbox */
    size_t refused; /* sends refused so */
} ts_fake_tr_t;

/* Start the cluster on `n` (listening at "tcp://NAME:1") over `t`, with
 * `secret`. */
void ts_fake_cluster(herd_node_t *n, ts_fake_tr_t *t, const char *secret);
/* Hand the node a frame of `type` from the member `name` at incarnation
 * `inc` with sequence number `seq`, MAC'd with t's secret: a HELLO
 * addressed to nobody (as to a seed), anything else to the node's current
 * start (as a member that knows it sends). */
void ts_fake_frame(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                   uint64_t seq, const void *body, size_t len);
/* The same with the receiver fields given. */
void ts_fake_frame_to(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                      uint64_t seq, uint64_t receiver, uint64_t receiver_inc,
                      const void *body, size_t len);
/* The same with the header's HLC timestamp `hlc` (ts_fake_frame: 0). */
void ts_fake_frame_at(ts_fake_tr_t *t, const char *name, uint64_t inc, uint8_t type,
                      uint64_t seq, uint64_t hlc, const void *body, size_t len);
/* A HELLO body from `name` (cluster "herd", address tcp://NAME:1, up, no
 * services, no gossip); malloc'ed. The same body serves as a heartbeat. */
uint8_t *ts_fake_hello(const char *name, size_t *len);
/* Make `name` at `inc` a member as a real node joins: its HELLO (sequence
 * `seq`), then its heartbeat (`seq` + 1) addressed to the node's start. */
void ts_fake_join(ts_fake_tr_t *t, const char *name, uint64_t inc, uint64_t seq);
/* The newest frame of `type` the node sent to node id `to` since the last
 * ts_fake_forget_sent (NULL: none), and how many such frames there are. */
const ts_fake_sent_t *ts_fake_sent_to(const ts_fake_tr_t *t, uint8_t type, uint64_t to,
                                      size_t *count);
void ts_fake_forget_sent(ts_fake_tr_t *t);

#endif
