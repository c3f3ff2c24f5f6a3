/* log.c - see log.h and herd_runtime.h ("logging"). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "herd_error.h"

#define LOG_SUBSYSTEMS_MAX 32
#define LOG_SUBSYSTEM_NAME_MAX 23

static herd_log_level_t log_level = HERD_LOG_WARN;
static const char *const log_names[] = {"error", "warn", "info", "debug"};
static struct {
    char name[LOG_SUBSYSTEM_NAME_MAX + 1];
    herd_log_level_t level;
} log_subs[LOG_SUBSYSTEMS_MAX];
static size_t log_subs_n;
static herd_log_handler_fn log_handler;
static void *log_handler_data;

void herd_log_set_handler(herd_log_handler_fn fn, void *data)
{
    log_handler = fn;
    log_handler_data = fn ? data : NULL;
}

void herd_log_set_level(herd_log_level_t level)
{
    log_level = level;
}

herd_log_level_t herd_log_get_level(void)
{
    return log_level;
}

static int level_valid(herd_log_level_t level)
{
    return (int)level >= HERD_LOG_ERROR && level <= HERD_LOG_DEBUG;
}

static int subsystem_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > LOG_SUBSYSTEM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_' || name[i] == '-'))
            return 0;
    return 1;
}

/* The slot of subsystem name[0..len), or -1. */
static int subsystem_at(const char *name, size_t len)
{
    for (size_t i = 0; i < log_subs_n; i++)
        if (strlen(log_subs[i].name) == len && memcmp(log_subs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int subsystem_set(const char *name, size_t len, herd_log_level_t level)
{
    if (!subsystem_name_valid(name, len) || !level_valid(level))
        return HERD_EINVAL;
    int at = subsystem_at(name, len);
    if (at < 0) {
        if (log_subs_n == LOG_SUBSYSTEMS_MAX)
            return HERD_EFULL;
        at = (int)log_subs_n++;
        memcpy(log_subs[at].name, name, len);
        log_subs[at].name[len] = '\0';
    }
    log_subs[at].level = level;
    return 0;
}

int herd_log_set_subsystem_level(const char *subsystem, herd_log_level_t level)
{
    return subsystem ? subsystem_set(subsystem, strlen(subsystem), level) : HERD_EINVAL;
}

void herd_log_clear_subsystem_levels(void)
{
    log_subs_n = 0;
}

/* The level `component`'s lines are kept up to. */
static herd_log_level_t level_of(const char *component)
{
    if (log_subs_n == 0 || component == NULL)
        return log_level;
    int at = subsystem_at(component, strlen(component));
    return at >= 0 ? log_subs[at].level : log_level;
}

/* A level's name in text[0..len). */
static int parse_level_n(const char *text, size_t len, herd_log_level_t *out)
{
    for (int i = 0; i <= HERD_LOG_DEBUG; i++) {
        if (strlen(log_names[i]) == len && memcmp(text, log_names[i], len) == 0) {
            *out = (herd_log_level_t)i;
            return 0;
        }
    }
    return HERD_EINVAL;
}

int herd_log_parse_level(const char *text, herd_log_level_t *out)
{
    return text ? parse_level_n(text, strlen(text), out) : HERD_EINVAL;
}

/* One item of a spec, text[0..len): "LEVEL" or "NAME=LEVEL" (applied only
 * with `apply`). */
static int spec_item(const char *text, size_t len, int apply, int *subsystems)
{
    const char *eq = memchr(text, '=', len);
    herd_log_level_t level;
    if (eq == NULL) {
        if (parse_level_n(text, len, &level) != 0)
            return HERD_EINVAL;
        if (apply)
            log_level = level;
        return 0;
    }
    size_t nlen = (size_t)(eq - text);
    if (!subsystem_name_valid(text, nlen) || parse_level_n(eq + 1, len - nlen - 1, &level) != 0)
        return HERD_EINVAL;
    if (!apply && subsystem_at(text, nlen) < 0)
        (*subsystems)++;
    return apply ? subsystem_set(text, nlen, level) : 0;
}

/* Each item of a spec; with `apply`, applied. */
static int spec_walk(const char *spec, int apply, int *subsystems)
{
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = spec_item(p, len, apply, subsystems);
        if (rc)
            return rc;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

int herd_log_check_spec(const char *spec)
{
    int fresh = 0;
    if (spec == NULL || spec_walk(spec, 0, &fresh) != 0)
        return HERD_EINVAL;
    if (log_subs_n + (size_t)fresh > LOG_SUBSYSTEMS_MAX)
        return HERD_EFULL; /* a name given twice counts twice here: refused, never cut */
    return 0;
}

int herd_log_apply_spec(const char *spec)
{
    int fresh = 0, rc = herd_log_check_spec(spec);
    return rc ? rc : spec_walk(spec, 1, &fresh);
}

char *herd_log_escape(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int plain = *p >= 0x20 && *p < 0x7f && *p != '\\';
        size_t need = plain ? 1 : *p == '\\' ? 2 : 4;
        if (o + need >= cap)
            break;
        if (plain) {
            out[o++] = (char)*p;
        } else if (*p == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* "2026-12-07T04:12:00.123Z" into out[32]. */
static void utc_stamp(char *out)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void log_line(herd_log_level_t level, const char *component, const char *fmt,
                     va_list ap, uint64_t held)
{
    char line[1024], safe[2048 + 64]; /* the escaped line, room for what follows */
    vsnprintf(line, sizeof(line), fmt, ap);
    herd_log_escape(line, safe, 2048);
    size_t n = strlen(safe);
    if (held) /* under 64 bytes: "(18446744073709551615 more like it not logged)" */
        snprintf(safe + n, sizeof(safe) - n, " (%llu more like it not logged)",
                 (unsigned long long)held);
    if (log_handler) {
        log_handler(log_handler_data, level, component, safe);
        return;
    }
    char stamp[32];
    utc_stamp(stamp);
    fprintf(stderr, "%s herd %s %s: %s\n", stamp, log_names[level], component, safe);
}

void herd_log(herd_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level > level_of(component))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, component, fmt, ap, 0);
    va_end(ap);
}

int herd_log_limited(herd_log_limit_t *lim, uint64_t now_ms, herd_log_level_t level,
                     const char *component, const char *fmt, ...)
{
    if (lim->used && now_ms >= lim->last_ms && now_ms - lim->last_ms < HERD_LOG_LIMIT_MS) {
        lim->held++;
        return 0;
    }
    uint64_t held = lim->held;
    lim->used = 1;
    lim->last_ms = now_ms;
    lim->held = 0;
    if (level > level_of(component))
        return 1;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, component, fmt, ap, held);
    va_end(ap);
    return 1;
}
