/*
 * test_nodeconf.c - configuring a node as herdd does (herd_nodeconf.h): the
 * cookie file's refusals (loose modes, too short, too long, missing, not a
 * regular file) and what it takes, the shape of addresses, and the failure
 * detector's timings derived from the heartbeat.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "herd_nodeconf.h"

static char g_dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/herd-nodeconf-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write `len` bytes of a pattern (and a newline if asked) to DIR/name with
 * `mode`; the path in out. */
static void write_cookie(const char *name, size_t len, int newline, mode_t mode, char *out,
                         size_t cap)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    for (size_t i = 0; i < len; i++)
        fputc('a' + (int)(i % 26), f);
    if (newline)
        fputc('\n', f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(out, mode), 0);
}

/* herd_cookie_read(path) fails with `want`, leaving *len 0, and says why
 * with `needle` in it. */
static void refused(const char *path, size_t cap, int want, const char *needle)
{
    uint8_t buf[HERD_COOKIE_MAX];
    size_t len = 99;
    char why[600] = "";
    assert_true(cap <= sizeof(buf));
    assert_int_equal(herd_cookie_read(path, buf, cap, &len, why, sizeof(why)), want);
    assert_int_equal(len, 0);
    if (strstr(why, needle) == NULL)
        fail_msg("'%s' does not say '%s'", why, needle);
}

static void test_nodeconf_cookie_taken(void **state)
{
    (void)state;
    char path[128];
    uint8_t buf[HERD_COOKIE_MAX];
    size_t len = 0;
    write_cookie("ok", 20, 1, 0600, path, sizeof(path));
    assert_int_equal(herd_cookie_read(path, buf, sizeof(buf), &len, NULL, 0), 0);
    assert_int_equal(len, 20); /* the trailing newline is not the secret's */
    assert_memory_equal(buf, "abcdefghijklmnopqrst", 20);
    /* the bounds themselves: 16 bytes, 4096 bytes (and its newline), 0400 */
    write_cookie("min", HERD_COOKIE_MIN, 0, 0400, path, sizeof(path));
    assert_int_equal(herd_cookie_read(path, buf, sizeof(buf), &len, NULL, 0), 0);
    assert_int_equal(len, HERD_COOKIE_MIN);
    write_cookie("max", HERD_COOKIE_MAX, 1, 0600, path, sizeof(path));
    assert_int_equal(herd_cookie_read(path, buf, sizeof(buf), &len, NULL, 0), 0);
    assert_int_equal(len, HERD_COOKIE_MAX);
}

static void test_nodeconf_cookie_loose_modes_refused(void **state)
{
    (void)state;
    static const mode_t loose[] = {0640, 0604, 0620, 0602, 0644, 0666};
    char path[128];
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        write_cookie("loose", 32, 1, loose[i], path, sizeof(path));
        char mode[16];
        snprintf(mode, sizeof(mode), "mode %03o", (unsigned)loose[i]);
        refused(path, HERD_COOKIE_MAX, HERD_EINSECURE, mode);
        refused(path, HERD_COOKIE_MAX, HERD_EINSECURE, "chmod 600");
    }
}

static void test_nodeconf_cookie_length_refused(void **state)
{
    (void)state;
    char path[128];
    write_cookie("short", HERD_COOKIE_MIN - 1, 1, 0600, path, sizeof(path));
    refused(path, HERD_COOKIE_MAX, HERD_ERANGE, "is 15 bytes; at least 16");
    write_cookie("empty", 0, 0, 0600, path, sizeof(path));
    refused(path, HERD_COOKIE_MAX, HERD_ERANGE, "is 0 bytes");
    /* over the limit: refused, not cut (two cookies differing past it
     * would form one cluster) */
    write_cookie("long", HERD_COOKIE_MAX + 1, 1, 0600, path, sizeof(path));
    refused(path, HERD_COOKIE_MAX, HERD_ETOOBIG, "longer than 4096 bytes");
    /* over the caller's buffer */
    write_cookie("cap", 64, 0, 0600, path, sizeof(path));
    refused(path, 32, HERD_ETOOBIG, "longer than 32 bytes");
}

static void test_nodeconf_cookie_missing_or_not_a_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/nope", g_dir);
    refused(path, HERD_COOKIE_MAX, HERD_ENOENT, "cannot read cookie file");
    refused(g_dir, HERD_COOKIE_MAX, HERD_EINVAL, "is a directory, not a regular file");
    snprintf(path, sizeof(path), "%s/fifo", g_dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    refused(path, HERD_COOKIE_MAX, HERD_EINVAL, "is a FIFO"); /* at once, no hang */
    uint8_t buf[32];
    size_t len;
    assert_int_equal(herd_cookie_read(NULL, buf, sizeof(buf), &len, NULL, 0), HERD_EINVAL);
    assert_int_equal(herd_cookie_read(path, NULL, sizeof(buf), &len, NULL, 0), HERD_EINVAL);
    assert_int_equal(herd_cookie_read(path, buf, sizeof(buf), NULL, NULL, 0), HERD_EINVAL);
}

static void test_nodeconf_addresses(void **state)
{
    (void)state;
    static const char *const good[] = {"tcp://127.0.0.1:7001", "tcp://host.example:1",
                                       "tcp://[::1]:80", "ipc:///tmp/herd.sock", "ipc://x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(herd_address_check(good[i]), 0);
    char too_long[300] = "tcp://";
    memset(too_long + 6, 'h', 250);
    strcpy(too_long + 256, ":1");
    static const char *const bad[] = {"", "tcp://", "tcp://host", "tcp://host:", "tcp://:80",
                                      "tcp://h:80x", "tcp://h:-1", "udp://h:1", "ipc://",
                                      "127.0.0.1:7001", "TCP://h:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (herd_address_check(bad[i]) != HERD_EINVAL)
            fail_msg("'%s' taken", bad[i]);
    assert_int_equal(herd_address_check(too_long), HERD_EINVAL);
    assert_int_equal(herd_address_check(NULL), HERD_EINVAL);
}

static void test_nodeconf_timing(void **state)
{
    (void)state;
    herd_cluster_config_t c = {0};
    assert_int_equal(herd_cluster_derive_timing(&c), 0); /* defaults: nothing to derive */
    assert_int_equal(c.suspect_ms, 0);
    c = (herd_cluster_config_t){.heartbeat_ms = 100, .down_ms = 199};
    assert_int_equal(herd_cluster_derive_timing(&c), HERD_ERANGE); /* under 2 beats */
    c = (herd_cluster_config_t){.down_ms = 399};                    /* default beat 200 */
    assert_int_equal(herd_cluster_derive_timing(&c), HERD_ERANGE);
    c = (herd_cluster_config_t){.down_ms = 500}; /* under 3 beats: suspect at half */
    assert_int_equal(herd_cluster_derive_timing(&c), 0);
    assert_int_equal(c.suspect_ms, 250);
    c = (herd_cluster_config_t){.heartbeat_ms = 100, .down_ms = 200};
    assert_int_equal(herd_cluster_derive_timing(&c), 0);
    assert_int_equal(c.suspect_ms, 100);
    c = (herd_cluster_config_t){.heartbeat_ms = 100, .down_ms = 250, .suspect_ms = 90};
    assert_int_equal(herd_cluster_derive_timing(&c), 0);
    assert_int_equal(c.suspect_ms, 90); /* given: kept */
    c = (herd_cluster_config_t){.heartbeat_ms = 100, .down_ms = 300};
    assert_int_equal(herd_cluster_derive_timing(&c), 0);
    assert_int_equal(c.suspect_ms, 0); /* the default suspicion comes first already */
    assert_int_equal(herd_cluster_derive_timing(NULL), HERD_EINVAL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_nodeconf_cookie_taken),
        T(test_nodeconf_cookie_loose_modes_refused),
        T(test_nodeconf_cookie_length_refused),
        T(test_nodeconf_cookie_missing_or_not_a_file),
        T(test_nodeconf_addresses),
        T(test_nodeconf_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
