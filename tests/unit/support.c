/*
 * support.c - the runtime tests' shared support (support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "support.h"

/* ---- node lifecycle ------------------------------------------------------ */

static herd_node_t *g_nodes[TS_MAX_NODES];
static int g_detached;

herd_node_t *ts_track(herd_node_t *n)
{
    for (int i = 0; i < TS_MAX_NODES; i++) {
        if (g_nodes[i] == NULL) {
            g_nodes[i] = n;
            return n;
        }
    }
    fail_msg("too many nodes");
    return n;
}

herd_node_t *ts_node_new(const herd_node_config_t *cfg)
{
    herd_node_t *n = NULL;
    assert_int_equal(herd_node_new(cfg, &n), 0);
    ts_track(n);
    assert_non_null(n);
    return n;
}

herd_node_t *ts_node(const char *name, const herd_clock_t *clock, uint64_t seed)
{
    herd_node_config_t cfg = {.name = name, .clock = clock, .seed = seed};
    return ts_node_new(&cfg);
}

int ts_live_nodes(void)
{
    int k = 0;
    for (int i = 0; i < TS_MAX_NODES; i++)
        k += g_nodes[i] != NULL;
    return k;
}

void ts_node_free(herd_node_t *n)
{
    int found = 0;
    for (int i = 0; i < TS_MAX_NODES; i++) {
        if (n != NULL && g_nodes[i] == n) {
            g_nodes[i] = NULL;
            found = 1;
        }
    }
    if (!found) fail_msg("freeing a node the test does not have");
    herd_node_free(n);
}

int ts_detached(void)
{
    return g_detached;
}

int ts_setup(void **state)
{
    (void)state;
    g_detached = 0;
    for (int i = 0; i < TS_MAX_NODES; i++)
        g_nodes[i] = NULL;
    return 0;
}

int ts_teardown(void **state)
{
    (void)state;
    g_detached = 1;
    for (int i = 0; i < TS_MAX_NODES; i++) {
        if (g_nodes[i] != NULL) {
            herd_node_t *n = g_nodes[i];
            g_nodes[i] = NULL;
            herd_node_free(n);
        }
    }
    g_detached = 0;
    return 0;
}

/* ---- virtual clock ------------------------------------------------------- */

uint64_t ts_vnow;

static uint64_t vclock_now(void *data)
{
    assert_ptr_equal(data, &ts_vnow);
    return ts_vnow;
}

const herd_clock_t ts_vclock = {.now_ms = vclock_now, .data = &ts_vnow};

/* ---- the loop ------------------------------------------------------------ */

void ts_run_for(herd_node_t *n, uint64_t ms)
{
    assert_true(herd_node_run_for(n, ms) >= 0);
}

void ts_run(herd_node_t *n)
{
    ts_run_for(n, 3000);
}

int ts_drain(herd_node_t *n)
{
    int total = 0;
    for (int i = 0; i < 100; i++) {
        int rc = herd_node_poll(n);
        assert_true(rc >= 0);
        if (rc == 0) return total;
        total += rc;
    }
    fail_msg("poll never ran dry");
    return total;
}

double ts_ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- processes ----------------------------------------------------------- */

herd_pid_t ts_spawn(herd_node_t *n, const herd_behaviour_t *b, const void *arg,
                    size_t len)
{
    herd_spawn_opts_t o = {.behaviour = b, .arg = arg, .arg_len = len};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    return p;
}

int ts_alive(herd_node_t *n, herd_pid_t pid)
{
    int a = herd_is_alive(n, pid);
    assert_true(a == 0 || a == 1);
    return a;
}

void ts_assert_pid_eq(herd_pid_t a, herd_pid_t b)
{
    assert_int_equal(a.node, b.node);
    assert_int_equal(a.incarnation, b.incarnation);
    assert_int_equal(a.serial, b.serial);
    assert_true(herd_pid_equal(a, b));
}
