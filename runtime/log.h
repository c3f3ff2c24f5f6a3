/*
 * log.h - herd's log: one line per event, with level and component (the
 * subsystem), to stderr or the program's handler. The settings are
 * process-wide (herd_runtime.h, "logging": levels, handler).
 */
#ifndef HERD_LOG_H
#define HERD_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "herd_runtime.h"

/* Every line is escaped as it is written: a byte outside printable ASCII
 * (a control character, a newline, anything >= 0x7f) appears as \xNN, and a
 * backslash as \\, so a name or address learnt from the network can neither
 * forge log lines nor reach a terminal raw. */
void herd_log(herd_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs about bad input from the network go through one of these, one per
 * kind of complaint (zeroed before first use): at most one line per
 * HERD_LOG_LIMIT_MS of the caller's clock; the lines held back meanwhile are
 * counted and the next line that goes out says how many. */
#define HERD_LOG_LIMIT_MS 1000u
typedef struct herd_log_limit {
    uint64_t last_ms; /* when the last line went out */
    uint64_t held;    /* lines held back since */
    int used;
} herd_log_limit_t;

/* Log like herd_log unless `lim` logged less than HERD_LOG_LIMIT_MS before
 * `now_ms`. Returns 1 if the line went out, 0 if it was held back. */
int herd_log_limited(herd_log_limit_t *lim, uint64_t now_ms, herd_log_level_t level,
                     const char *component, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Copy `in` into `out` (cap bytes, cap > 0, always NUL-terminated) escaped
 * as herd_log escapes its lines, cut short if it does not fit. Returns out. */
char *herd_log_escape(const char *in, char *out, size_t cap);

#endif
