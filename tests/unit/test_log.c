/*
 * test_log.c - herd's log settings (herd_runtime.h, "logging"; runtime/log.c):
 * the program's handler gets each line (level, subsystem, the message
 * escaped); the default level and subsystems' own; a spec of levels applied
 * whole or not at all; bad names, levels and specs refused with nothing
 * changed; at most 32 subsystems (HERD_EFULL); lines held back by
 * herd_log_limited noted on the next; without a handler, stderr gets
 * "TIME herd LEVEL SUBSYSTEM: MESSAGE" with TIME in UTC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "herd_runtime.h"
#include "log.h"

typedef struct seen {
    int lines;
    herd_log_level_t level;
    char subsystem[32], message[4096];
} seen_t;

static void on_line(void *data, herd_log_level_t level, const char *subsystem,
                    const char *message)
{
    seen_t *s = data;
    s->lines++;
    s->level = level;
    snprintf(s->subsystem, sizeof(s->subsystem), "%s", subsystem);
    snprintf(s->message, sizeof(s->message), "%s", message);
}

static seen_t seen;

static int setup(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof(seen));
    herd_log_set_handler(on_line, &seen);
    herd_log_set_level(HERD_LOG_WARN);
    herd_log_clear_subsystem_levels();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    herd_log_set_handler(NULL, NULL);
    herd_log_set_level(HERD_LOG_WARN);
    herd_log_clear_subsystem_levels();
    return 0;
}

static void test_log_handler_gets_lines(void **state)
{
    (void)state;
    herd_log(HERD_LOG_WARN, "cluster", "peer %s said %d", "n1", 7);
    assert_int_equal(seen.lines, 1);
    assert_int_equal(seen.level, HERD_LOG_WARN);
    assert_string_equal(seen.subsystem, "cluster");
    assert_string_equal(seen.message, "peer n1 said 7");
    herd_log(HERD_LOG_ERROR, "cluster", "a\nforged line\\");
    assert_string_equal(seen.message, "a\\x0aforged line\\\\"); /* escaped */
    herd_log(HERD_LOG_INFO, "cluster", "below the level");
    assert_int_equal(seen.lines, 2);
    herd_log_set_level(HERD_LOG_INFO);
    herd_log(HERD_LOG_INFO, "cluster", "now kept");
    assert_int_equal(seen.lines, 3);
    assert_int_equal(herd_log_get_level(), HERD_LOG_INFO);
}

static void test_log_subsystem_levels(void **state)
{
    (void)state;
    assert_int_equal(herd_log_set_subsystem_level("replicas", HERD_LOG_DEBUG), 0);
    assert_int_equal(herd_log_set_subsystem_level("quiet", HERD_LOG_ERROR), 0);
    herd_log(HERD_LOG_DEBUG, "replicas", "kept");
    assert_int_equal(seen.lines, 1);
    herd_log(HERD_LOG_DEBUG, "cluster", "dropped: the default level, warn");
    herd_log(HERD_LOG_WARN, "quiet", "dropped: its own level, error");
    assert_int_equal(seen.lines, 1);
    herd_log(HERD_LOG_WARN, "cluster", "kept");
    assert_int_equal(seen.lines, 2);
    assert_int_equal(herd_log_set_subsystem_level("replicas", HERD_LOG_ERROR), 0); /* again */
    herd_log(HERD_LOG_WARN, "replicas", "dropped");
    assert_int_equal(seen.lines, 2);
    herd_log_clear_subsystem_levels();
    herd_log(HERD_LOG_WARN, "quiet", "kept: the default again");
    assert_int_equal(seen.lines, 3);
}

static void test_log_bad_settings(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "Replicas", "a b", "a=b", "x.y",
                                      "abcdefghijklmnopqrstuvwx"}; /* 24 bytes */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(herd_log_set_subsystem_level(bad[i], HERD_LOG_DEBUG), HERD_EINVAL);
    assert_int_equal(herd_log_set_subsystem_level(NULL, HERD_LOG_DEBUG), HERD_EINVAL);
    assert_int_equal(herd_log_set_subsystem_level("ok", (herd_log_level_t)9), HERD_EINVAL);
    assert_int_equal(herd_log_set_subsystem_level("abcdefghijklmnopqrstuvw", HERD_LOG_INFO), 0);
    herd_log_level_t l = HERD_LOG_ERROR;
    assert_int_equal(herd_log_parse_level("loud", &l), HERD_EINVAL);
    assert_int_equal(herd_log_parse_level(NULL, &l), HERD_EINVAL);
    assert_int_equal(l, HERD_LOG_ERROR);
    assert_int_equal(herd_log_parse_level("debug", &l), 0);
    assert_int_equal(l, HERD_LOG_DEBUG);
}

static void test_log_at_most_32_subsystems(void **state)
{
    (void)state;
    char name[16];
    for (int i = 0; i < 32; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(herd_log_set_subsystem_level(name, HERD_LOG_DEBUG), 0);
    }
    assert_int_equal(herd_log_set_subsystem_level("one-more", HERD_LOG_DEBUG), HERD_EFULL);
    assert_int_equal(herd_log_set_subsystem_level("s5", HERD_LOG_INFO), 0); /* known: fine */
    assert_int_equal(herd_log_apply_spec("info,another=debug"), HERD_EFULL);
    assert_int_equal(herd_log_get_level(), HERD_LOG_WARN); /* nothing of it applied */
    herd_log(HERD_LOG_DEBUG, "s31", "kept");
    assert_int_equal(seen.lines, 1);
}

static void test_log_specs(void **state)
{
    (void)state;
    assert_int_equal(herd_log_check_spec("info,replicas=debug"), 0);
    assert_int_equal(herd_log_get_level(), HERD_LOG_WARN); /* a check changes nothing */
    herd_log(HERD_LOG_DEBUG, "replicas", "dropped");
    assert_int_equal(seen.lines, 0);
    assert_int_equal(herd_log_apply_spec("info,replicas=debug,cluster=error"), 0);
    assert_int_equal(herd_log_get_level(), HERD_LOG_INFO);
    herd_log(HERD_LOG_DEBUG, "replicas", "kept");
    herd_log(HERD_LOG_WARN, "cluster", "dropped");
    herd_log(HERD_LOG_INFO, "registry", "kept");
    assert_int_equal(seen.lines, 2);
    assert_int_equal(herd_log_apply_spec("cluster=debug"), 0); /* alone: the default stays */
    assert_int_equal(herd_log_get_level(), HERD_LOG_INFO);
    static const char *const bad[] = {"",           "loud",          "warn,",
                                      ",warn",      "warn,,info",    "a=",
                                      "=debug",     "A=debug",       "replicas=loud",
                                      "warn;x=info", "warn,replicas=debug,x=nope"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(herd_log_check_spec(bad[i]), HERD_EINVAL);
        assert_int_equal(herd_log_apply_spec(bad[i]), HERD_EINVAL);
    }
    assert_int_equal(herd_log_apply_spec(NULL), HERD_EINVAL);
    /* nothing of the refused ones applied: replicas still debug, default info */
    assert_int_equal(herd_log_get_level(), HERD_LOG_INFO);
    herd_log(HERD_LOG_DEBUG, "replicas", "kept");
    assert_int_equal(seen.lines, 3);
}

static void test_log_limited_notes_what_it_held(void **state)
{
    (void)state;
    herd_log_limit_t lim = {0};
    assert_int_equal(herd_log_limited(&lim, 1000, HERD_LOG_WARN, "cluster", "bad frame"), 1);
    assert_string_equal(seen.message, "bad frame");
    for (int i = 0; i < 5; i++)
        assert_int_equal(herd_log_limited(&lim, 1100, HERD_LOG_WARN, "cluster", "bad frame"), 0);
    assert_int_equal(seen.lines, 1);
    assert_int_equal(herd_log_limited(&lim, 2000, HERD_LOG_WARN, "cluster", "bad frame"), 1);
    assert_string_equal(seen.message, "bad frame (5 more like it not logged)");
    /* a line as long as the buffer still carries its note whole */
    char big[1500];
    memset(big, '\n', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 3; i++)
        herd_log_limited(&lim, 2100, HERD_LOG_WARN, "cluster", "%s", big);
    herd_log_limited(&lim, 3100, HERD_LOG_WARN, "cluster", "%s", big);
    const char *note = strstr(seen.message, " (3 more like it not logged)");
    assert_non_null(note);
    assert_string_equal(note, " (3 more like it not logged)");
}

static void test_log_default_goes_to_stderr(void **state)
{
    (void)state;
    herd_log_set_handler(NULL, NULL);
    char path[] = "/tmp/herd-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    herd_log(HERD_LOG_WARN, "cluster", "to stderr");
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    char buf[256] = {0};
    assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
    close(fd);
    unlink(path);
    /* 2026-12-07T04:12:00.123Z herd warn cluster: to stderr\n */
    assert_true(strlen(buf) == 24 + strlen(" herd warn cluster: to stderr\n"));
    assert_string_equal(buf + 24, " herd warn cluster: to stderr\n");
    for (int i = 0; i < 24; i++) {
        const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (shape[i] == 'd')
            assert_true(buf[i] >= '0' && buf[i] <= '9');
        else
            assert_int_equal(buf[i], shape[i]);
    }
    assert_int_equal(seen.lines, 0); /* the handler was let go */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_log_handler_gets_lines),      T(test_log_subsystem_levels),
        T(test_log_bad_settings),            T(test_log_at_most_32_subsystems),
        T(test_log_specs),                   T(test_log_limited_notes_what_it_held),
        T(test_log_default_goes_to_stderr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
