/*
 * log.h - herd's log: one line per event on stderr, with level and component.
 * The level is process-wide: nodes of one program share their stderr.
 */
#ifndef HERD_LOG_H
#define HERD_LOG_H

typedef enum herd_log_level {
    HERD_LOG_ERROR,
    HERD_LOG_WARN,
    HERD_LOG_INFO,
    HERD_LOG_DEBUG,
} herd_log_level_t;

void herd_log_set_level(herd_log_level_t level);
herd_log_level_t herd_log_get_level(void);
/* Parse "error" | "warn" | "info" | "debug"; HERD_EINVAL otherwise. */
int herd_log_parse_level(const char *text, herd_log_level_t *out);
void herd_log(herd_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
