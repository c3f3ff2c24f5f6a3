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

void herd_log(herd_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "herd %s %s: %s\n", log_names[level], component, line);
}
