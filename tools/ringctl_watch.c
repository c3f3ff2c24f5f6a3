/*
 * ringctl_watch.c - `ringctl watch`: a node's events as they happen, read
 * with the node's `events` command (tools/control_events.h) in long polls:
 * each request names the last seq printed and waits up to WATCH_WAIT_MS
 * for more. It outlives the node: while the node does not answer it asks
 * again every WATCH_RETRY_MS, and a node that answers with another
 * incarnation restarted meanwhile (its answer then starts from its oldest
 * event held). It ends on SIGINT or SIGTERM, or after --timeout-ms.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "ringctl.h"

#define WATCH_WAIT_MS 2000  /* each request's wait for events */
#define WATCH_SLACK_MS 1500 /* how much longer its answer may take */
#define WATCH_RETRY_MS 500  /* between tries while the node does not answer */
#define WATCH_TIMEOUT_MAX_MS 2147483647L

const char ctl_watch_help[] =
    "usage: ringctl [--json] [--node ADDR] watch [--timeout-ms N]\n"
    "\n"
    "Stream the node's events as they happen, one line each (with --json, one\n"
    "JSON object a line), each flushed as it is written: names registered,\n"
    "unregistered and in conflict, group joins and leaves, children started,\n"
    "moved, restarted, given up on and terminated, members up, suspect,\n"
    "draining, down and left. It runs until interrupted (SIGINT or SIGTERM:\n"
    "exit 0), or for N milliseconds with --timeout-ms (then exit 0).\n"
    "When the node stops answering, watch says so once on stderr, asks again\n"
    "every 500 ms and says when it answers again; a node that restarted\n"
    "meanwhile is told by a node_restarted line, then its events since its\n"
    "start. Events the node no longer held when asked (it keeps its last 4096)\n"
    "are told by an events_lost line with their count: none is skipped unsaid.\n"
    "Line: TIME KIND NAME [pid=PID node=NODE] [other=PID] [reason=REASON]\n"
    "      [incarnation=N state=OLD->NEW [gone]]   (TIME in UTC, NAME - for none)\n"
    "JSON: {\"seq\",\"kind\",\"time\",\"time_ms\",\"name\",\"pid\",\"node\",\"other\",\n"
    "\"reason\",\"incarnation\",\"old_state\",\"new_state\",\"gone\"} (those that\n"
    "apply); {\"kind\":\"node_restarted\",\"time\",\"incarnation\",\n"
    "\"previous_incarnation\"}; {\"kind\":\"events_lost\",\"time\",\"count\"}.\n"
    "A node that refuses (one without the events command): exit 1.\n";

/* A signal sets watch_stop, checked between requests; one that comes while
 * watch waits (a request, the pause between tries), when every line written
 * is flushed already, ends the process there: a signal just before the
 * request's system call would otherwise wait out the request. */
static volatile sig_atomic_t watch_stop, watch_waiting;

static void watch_on_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
    if (watch_waiting)
        _exit(0);
}

/* About to wait: nonzero when a signal came already (the handler sees
 * watch_waiting set, or this sees watch_stop: never neither). */
static int watch_wait_begins(void)
{
    watch_waiting = 1;
    if (watch_stop)
        watch_waiting = 0;
    return watch_stop;
}

typedef struct watch {
    const ctl_t *c;
    uint64_t since;
    json_int_t incarnation;
    int has_incarnation;
    int away; /* the node did not answer the last request */
} watch_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep up to ms, less when a signal comes. */
static void watch_sleep(int64_t ms)
{
    if (ms <= 0 || watch_stop)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* This host's time now, as the node writes an event's. */
static void now_iso(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    char base[32] = "?";
    clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm))
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03ldZ", base, ts.tv_nsec / 1000000L);
}

/* One line written and flushed: 0, or 1 when stdout fails. */
static int watch_flush(void)
{
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

/* A string of the node's for a line: "-" for none, control bytes as '?'
 * (a name cannot forge a line). */
static void put_text(const char *s)
{
    if (s == NULL || *s == '\0') {
        fputs("-", stdout);
        return;
    }
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static void put_field(json_t *o, const char *key, const char *label)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v) {
        printf(" %s=", label);
        put_text(v);
    }
}

static int print_event(const watch_t *w, json_t *e)
{
    if (w->c->json) {
        json_dumpf(e, stdout, JSON_COMPACT);
        putchar('\n');
        return watch_flush();
    }
    put_text(json_string_value(json_object_get(e, "time")));
    putchar(' ');
    put_text(json_string_value(json_object_get(e, "kind")));
    putchar(' ');
    put_text(json_string_value(json_object_get(e, "name")));
    put_field(e, "pid", "pid");
    put_field(e, "node", "node");
    put_field(e, "other", "other");
    put_field(e, "reason", "reason");
    if (json_object_get(e, "old_state")) {
        printf(" incarnation=%lld state=",
               (long long)json_integer_value(json_object_get(e, "incarnation")));
        put_text(json_string_value(json_object_get(e, "old_state")));
        fputs("->", stdout);
        put_text(json_string_value(json_object_get(e, "new_state")));
        if (json_is_true(json_object_get(e, "gone")))
            fputs(" gone", stdout);
    }
    putchar('\n');
    return watch_flush();
}

static int print_restarted(const watch_t *w, json_int_t now)
{
    char when[48];
    now_iso(when, sizeof(when));
    if (w->c->json)
        printf("{\"kind\":\"node_restarted\",\"time\":\"%s\",\"incarnation\":%lld,"
               "\"previous_incarnation\":%lld}\n",
               when, (long long)now, (long long)w->incarnation);
    else
        printf("%s node_restarted - incarnation=%lld previous=%lld\n", when, (long long)now,
               (long long)w->incarnation);
    return watch_flush();
}

static int print_lost(const watch_t *w, json_int_t count)
{
    char when[48];
    now_iso(when, sizeof(when));
    if (w->c->json)
        printf("{\"kind\":\"events_lost\",\"time\":\"%s\",\"count\":%lld}\n", when,
               (long long)count);
    else
        printf("%s events_lost - count=%lld (the node no longer held them)\n", when,
               (long long)count);
    return watch_flush();
}

/* An answer: {"events": [...], "seq", "incarnation", "lost"}. */
static int watch_take(watch_t *w, json_t *res)
{
    json_t *events = json_object_get(res, "events"), *seq = json_object_get(res, "seq"),
           *inc = json_object_get(res, "incarnation"), *lost = json_object_get(res, "lost");
    if (!json_is_array(events) || !json_is_integer(seq) || json_integer_value(seq) < 0 ||
        !json_is_integer(inc) || !json_is_integer(lost))
        return ctl_fail(w->c, 1, "EBADFRAME", "the node's answer to events is malformed");
    int rc = 0;
    if (w->has_incarnation && json_integer_value(inc) != w->incarnation)
        rc = print_restarted(w, json_integer_value(inc));
    w->incarnation = json_integer_value(inc);
    w->has_incarnation = 1;
    if (rc == 0 && json_integer_value(lost) > 0)
        rc = print_lost(w, json_integer_value(lost));
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (rc == 0 && json_is_object(e))
            rc = print_event(w, e);
    }
    w->since = (uint64_t)json_integer_value(seq);
    return rc;
}

/* The node did not answer (or stops): said once, until it answers again. */
static void watch_away(watch_t *w, const char *why)
{
    if (!w->away)
        fprintf(stderr, "ringctl: watch: lost the node at %s: %s; asking again every %d ms\n",
                w->c->node, why, WATCH_RETRY_MS);
    w->away = 1;
}

static int watch_run(const ctl_t *c, long timeout_ms)
{
    watch_t w = {.c = c};
    int64_t end = timeout_ms ? mono_ms() + timeout_ms : 0;
    for (;;) {
        int64_t left = end ? end - mono_ms() : WATCH_WAIT_MS;
        if (watch_stop || left <= 0)
            return 0;
        int wait = left < WATCH_WAIT_MS ? (int)left : WATCH_WAIT_MS;
        json_t *args = json_pack("{s:I, s:i}", "since", (json_int_t)w.since, "wait_ms", wait);
        if (args && w.has_incarnation)
            json_object_set_new(args, "incarnation", json_integer(w.incarnation));
        control_reply_t r = {0};
        if (!watch_wait_begins())
            control_request(c->node, "events", args, wait + WATCH_SLACK_MS, &r);
        watch_waiting = 0;
        json_decref(args);
        if (watch_stop) {
            json_decref(r.result);
            return 0;
        }
        if (r.outcome == CONTROL_UNREACHABLE ||
            (r.outcome == CONTROL_REFUSED && strcmp(r.code, "ESHUTDOWN") == 0)) {
            watch_away(&w, r.message);
            left = end ? end - mono_ms() : WATCH_RETRY_MS;
            if (!watch_wait_begins())
                watch_sleep(left < WATCH_RETRY_MS ? left : WATCH_RETRY_MS);
            watch_waiting = 0;
            continue;
        }
        if (r.outcome == CONTROL_REFUSED)
            return ctl_fail(c, 1, r.code, "%s", r.message);
        if (w.away)
            fprintf(stderr, "ringctl: watch: the node at %s answers again\n", c->node);
        w.away = 0;
        int rc = watch_take(&w, r.result);
        json_decref(r.result);
        if (rc)
            return rc;
    }
}

/* --timeout-ms N (or =N): 1..WATCH_TIMEOUT_MAX_MS. */
static int parse_timeout(const ctl_t *c, const char *v, long *out)
{
    char *end = NULL;
    errno = 0;
    long n = v && *v >= '0' && *v <= '9' ? strtol(v, &end, 10) : 0;
    if (end == NULL || *end || errno || n < 1 || n > WATCH_TIMEOUT_MAX_MS)
        return ctl_usage(c, "--timeout-ms wants a whole number of milliseconds 1-%ld, got "
                         "'%.40s'", WATCH_TIMEOUT_MAX_MS, v ? v : "");
    *out = n;
    return 0;
}

int ctl_watch_main(const ctl_t *c, int argc, char **argv)
{
    long timeout_ms = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)
            return fputs(ctl_watch_help, stdout), 0;
        if (strcmp(s, "--timeout-ms") == 0 || strncmp(s, "--timeout-ms=", 13) == 0) {
            if (timeout_ms)
                return ctl_usage(c, "--timeout-ms given twice; give it once");
            if (s[12] == '\0' && i + 1 >= argc)
                return ctl_usage(c, "--timeout-ms needs a value");
            if ((rc = parse_timeout(c, s[12] == '=' ? s + 13 : argv[++i], &timeout_ms)))
                return rc;
        } else if (s[0] == '-') {
            return ctl_usage(c, "unknown option '%s'", s);
        } else {
            return ctl_usage(c, "unexpected argument '%s'", s);
        }
    }
    if (c->node == NULL)
        return ctl_usage(c, "no node to ask: give --node ADDR or set HERD_NODE");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = watch_on_signal; /* no SA_RESTART: a waiting request ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return watch_run(c, timeout_ms);
}
