/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "herd_error.h"

static herd_log_level_t log_level = HERD_LOG_WARN;
static const char *const log_names[] = {"error", "warn", "info", "debug"};

void herd_log_set_level(herd_log_level_t level)
{
    log_level = level;
}

herd_log_level_t herd_log_get_level(void)
{
    return log_level;
}

int herd_log_parse_level(const char *text, herd_log_level_t *out)
{
    for (int i = 0; i <= HERD_LOG_DEBUG; i++) {
        if (text && strcmp(text, log_names[i]) == 0) {
            *out = (herd_log_level_t)i;
            return 0;
        }
    }
    return HERD_EINVAL;
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

static void log_line(herd_log_level_t level, const char *component, const char *fmt,
                     va_list ap, uint64_t held)
{
    char line[1024], safe[1024 * 2];
    vsnprintf(line, sizeof(line), fmt, ap);
    herd_log_escape(line, safe, sizeof(safe));
    if (held)
        fprintf(stderr, "herd %s %s: %s (%llu more like it not logged)\n", log_names[level],
                component, safe, (unsigned long long)held);
    else
        fprintf(stderr, "herd %s %s: %s\n", log_names[level], component, safe);
}

void herd_log(herd_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level > log_level)
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
    if (level > log_level)
        return 1;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, component, fmt, ap, held);
    va_end(ap);
    return 1;
}
