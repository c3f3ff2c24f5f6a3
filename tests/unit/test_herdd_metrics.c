/*
 * test_herdd_metrics.c - the Prometheus text of a snapshot
 * (herdd_metrics_format, tools/herdd_metrics.h), without HTTP or a node:
 * - each figure of the snapshot is its sample, with its labels;
 * - every family has one HELP and one TYPE line, before its samples, and no
 *   family comes twice; every sample line belongs to a family;
 * - histograms are cumulative, with +Inf, _sum and _count;
 * - parts the node does not have (no cluster, no supervisor, no discovery)
 *   are left out, not shown as zeros; the registry has no groups, so there
 *   is no group figure;
 * - label values are escaped;
 * - the lag sampler's buckets, and the handoff duration bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "herdd_metrics.h"

static char *format(const herdd_metrics_snapshot_t *s)
{
    char *text;
    size_t len;
    assert_int_equal(herdd_metrics_format(s, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    assert_true(len > 0 && text[len - 1] == '\n');
    return text;
}

/* `line` is a whole line of `text`. */
static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("no line '%s' in:\n%s", line, text);
}

static void lacks(const char *text, const char *what)
{
    if (strstr(text, what))
        fail_msg("'%s' should not be in:\n%s", what, text);
}

/* The family a sample line belongs to: its name less a histogram suffix. */
static void family_of(const char *line, char *out, size_t cap)
{
    size_t n = strcspn(line, "{ ");
    snprintf(out, cap, "%.*s", (int)n, line);
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(out), sl = strlen(suffixes[i]);
        if (l > sl && strcmp(out + l - sl, suffixes[i]) == 0 &&
            strstr(line, "_seconds") != NULL) /* only histograms here end so */
            out[l - sl] = '\0';
    }
}

/* The format's rules over the whole text: HELP then TYPE then samples of
 * that family, each family once. Returns the number of families. */
static int check_structure(char *text)
{
    char families[256][96];
    int nf = 0;
    char current[96] = "";
    char *save = NULL;
    char *copy = strdup(text);
    assert_non_null(copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[96];
        if (strncmp(line, "# HELP ", 7) == 0) {
            family_of(line + 7, name, sizeof(name));
            for (int i = 0; i < nf; i++)
                if (strcmp(families[i], name) == 0)
                    fail_msg("family %s twice", name);
            assert_true(nf < 256);
            snprintf(families[nf++], sizeof(families[0]), "%s", name);
            snprintf(current, sizeof(current), "%s", name);
            char *type = strtok_r(NULL, "\n", &save);
            char want[140];
            assert_non_null(type);
            int k = snprintf(want, sizeof(want), "# TYPE %s ", name);
            if (strncmp(type, want, (size_t)k) != 0)
                fail_msg("HELP of %s not followed by its TYPE: '%s'", name, type);
            const char *t = type + k;
            assert_true(strcmp(t, "counter") == 0 || strcmp(t, "gauge") == 0 ||
                        strcmp(t, "histogram") == 0);
            if (strcmp(t, "counter") == 0 && strstr(name, "_total") == NULL)
                fail_msg("counter %s without _total", name);
            continue;
        }
        assert_true(line[0] != '#');
        assert_true(strncmp(line, "herd_", 5) == 0);
        family_of(line, name, sizeof(name));
        if (strcmp(name, current) != 0)
            fail_msg("sample '%s' outside its family (in %s)", line, current);
    }
    free(copy);
    return nf;
}

/* A snapshot of nothing but a name and a version. */
static herdd_metrics_snapshot_t bare_snapshot(const char *name, const char *version)
{
    herdd_metrics_snapshot_t s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.version = version;
    return s;
}

static herdd_metrics_snapshot_t full_snapshot(void)
{
    herdd_metrics_snapshot_t s = bare_snapshot("n1", "0.1.0");
    s.in_cluster = 1;
    s.cluster.frames_in = 12;
    s.cluster.frames_out = 34;
    s.cluster.rejected[1] = 5;  /* "short" */
    s.cluster.rejected[2] = 6;
    s.members[HERD_MEMBER_UP] = 3;
    s.members[HERD_MEMBER_DOWN] = 1;
    s.processes = 42;
    s.have_registry = 1;
    s.registry.names = 1000;
    s.registry.deltas_out = 7;
    s.registry.deltas_in = 8;
    s.registry.full_syncs_out = 2;
    s.registry.full_syncs_in = 3;
    s.have_dsup = 1;
    s.children[HERD_CHILD_RUNNING] = 9;
    s.children[HERD_CHILD_MOVING] = 1;
    s.handoff.started = 5;
    s.handoff.committed = 4;
    s.handoff.aborted = 1;
    s.handoff.restarts = 2;
    s.handoff.duration_buckets[0] = 1;  /* <= 1 ms */
    s.handoff.duration_buckets[3] = 2;  /* (5, 10] ms */
    s.handoff.duration_buckets[HERD_HANDOFF_DURATION_BOUNDS] = 1; /* over 5 s */
    s.handoff.duration_us_sum = 6020500;
    s.repl.puts_out = 11;
    s.repl.puts_in = 13;
    s.repl.lag_ms = 1500;
    s.repl_settled = 1;
    herdd_lag_record(&s.lag, 200);
    herdd_lag_record(&s.lag, 30000);
    s.have_discover = 1;
    s.discover.seeds = 2;
    s.discover.failures = 4;
    return s;
}

static void test_herdd_metrics_samples(void **state)
{
    (void)state;
    herdd_metrics_snapshot_t s = full_snapshot();
    char *t = format(&s);
    has_line(t, "# TYPE herd_frames_in_total counter");
    has_line(t, "herd_frames_in_total 12");
    has_line(t, "herd_frames_out_total 34");
    has_line(t, "herd_frames_rejected_total{reason=\"short\"} 5");
    has_line(t, "herd_frames_rejected_total{reason=\"mac\"} 0");
    has_line(t, "herd_members{state=\"up\"} 3");
    has_line(t, "herd_members{state=\"down\"} 1");
    has_line(t, "herd_members{state=\"suspect\"} 0");
    has_line(t, "herd_processes 42");
    has_line(t, "herd_names 1000");
    has_line(t, "herd_registry_deltas_total{direction=\"out\"} 7");
    has_line(t, "herd_registry_deltas_total{direction=\"in\"} 8");
    has_line(t, "herd_registry_digest_syncs_total{direction=\"out\"} 2");
    has_line(t, "herd_children{state=\"running\"} 9");
    has_line(t, "herd_children{state=\"moving\"} 1");
    has_line(t, "herd_handoffs_started_total 5");
    has_line(t, "herd_handoffs_committed_total 4");
    has_line(t, "herd_handoffs_aborted_total 1");
    has_line(t, "herd_child_restarts_total 2");
    has_line(t, "# TYPE herd_handoff_duration_seconds histogram");
    has_line(t, "herd_handoff_duration_seconds_bucket{le=\"0.001\"} 1");
    has_line(t, "herd_handoff_duration_seconds_bucket{le=\"0.005\"} 1");
    has_line(t, "herd_handoff_duration_seconds_bucket{le=\"0.01\"} 3");
    has_line(t, "herd_handoff_duration_seconds_bucket{le=\"5\"} 3");
    has_line(t, "herd_handoff_duration_seconds_bucket{le=\"+Inf\"} 4");
    has_line(t, "herd_handoff_duration_seconds_sum 6.020500");
    has_line(t, "herd_handoff_duration_seconds_count 4");
    has_line(t, "herd_replication_puts_total{direction=\"out\"} 11");
    has_line(t, "herd_replication_puts_total{direction=\"in\"} 13");
    has_line(t, "herd_replication_lag_seconds 1.500");
    has_line(t, "herd_replication_settled 1");
    has_line(t, "herd_loop_lag_last_seconds 0.030000");
    has_line(t, "herd_loop_lag_seconds_bucket{le=\"0.001\"} 1");
    has_line(t, "herd_loop_lag_seconds_bucket{le=\"0.01\"} 1");
    has_line(t, "herd_loop_lag_seconds_bucket{le=\"0.05\"} 2");
    has_line(t, "herd_loop_lag_seconds_count 2");
    has_line(t, "herd_discover_seeds 2");
    has_line(t, "herd_discover_failures_total 4");
    has_line(t, "herd_node_info{name=\"n1\",version=\"0.1.0\"} 1");
    lacks(t, "group"); /* the registry has none */
    assert_true(check_structure(t) > 60);
    free(t);
}

/* A node in no cluster, without a supervisor or discovery: those parts are
 * not there at all, and the rest still follows the format. */
static void test_herdd_metrics_parts_left_out(void **state)
{
    (void)state;
    herdd_metrics_snapshot_t s = bare_snapshot("solo", "0.1.0");
    char *t = format(&s);
    has_line(t, "herd_processes 0");
    has_line(t, "herd_loop_lag_seconds_count 0");
    has_line(t, "herd_loop_lag_seconds_bucket{le=\"+Inf\"} 0");
    lacks(t, "herd_frames_in_total");
    lacks(t, "herd_members");
    lacks(t, "herd_names");
    lacks(t, "herd_children");
    lacks(t, "herd_handoff");
    lacks(t, "herd_replication");
    lacks(t, "herd_discover");
    assert_true(check_structure(t) >= 5);
    free(t);
}

static void test_herdd_metrics_label_escaped(void **state)
{
    (void)state;
    herdd_metrics_snapshot_t s = bare_snapshot("a\"b\\c\nd", "v");
    char *t = format(&s);
    has_line(t, "herd_node_info{name=\"a\\\"b\\\\c\\nd\",version=\"v\"} 1");
    free(t);
}

static void test_herdd_metrics_bounds(void **state)
{
    (void)state;
    assert_int_equal(herd_handoff_duration_bound_ms(0), 1);
    assert_int_equal(herd_handoff_duration_bound_ms(HERD_HANDOFF_DURATION_BOUNDS - 1), 5000);
    assert_int_equal(herd_handoff_duration_bound_ms(HERD_HANDOFF_DURATION_BOUNDS), 0);
    for (unsigned i = 1; i < HERD_HANDOFF_DURATION_BOUNDS; i++)
        assert_true(herd_handoff_duration_bound_ms(i) > herd_handoff_duration_bound_ms(i - 1));
    herdd_lag_figures_t f;
    memset(&f, 0, sizeof(f));
    herdd_lag_record(&f, 1000);    /* on a bound: in it */
    herdd_lag_record(&f, 1001);    /* just over: the next */
    herdd_lag_record(&f, 9000000); /* past every bound */
    assert_int_equal(f.buckets[0], 1);
    assert_int_equal(f.buckets[1], 1);
    assert_int_equal(f.buckets[HERDD_LAG_BOUNDS], 1);
    assert_int_equal(f.count, 3);
    assert_int_equal(f.sum_us, 9002001);
    assert_int_equal(f.last_us, 9000000);
    assert_int_equal(herdd_lag_bound_us(HERDD_LAG_BOUNDS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_herdd_metrics_samples),
        cmocka_unit_test(test_herdd_metrics_parts_left_out),
        cmocka_unit_test(test_herdd_metrics_label_escaped),
        cmocka_unit_test(test_herdd_metrics_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
