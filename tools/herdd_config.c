/*
 * herdd_config.c - herdd's --config FILE (herdd_config.h): lines to
 * options; every value is checked by its flag's own checks (herdd_args.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herdd_config.h"

#define BLANKS " \t\r\v\f"

__attribute__((format(printf, 5, 6))) static int fail_at(char *err, size_t cap,
                                                         const char *file, unsigned line,
                                                         const char *fmt, ...)
{
    char msg[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
        snprintf(err, cap, "%s:%u: %s", file, line, msg);
    else
        snprintf(err, cap, "%s: %s", file, msg);
    return -1;
}

/* `s` without the blanks at both ends (s is changed: NUL at the end). */
static char *trim(char *s)
{
    s += strspn(s, BLANKS);
    size_t n = strlen(s);
    while (n > 0 && strchr(BLANKS, s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line (NUL-terminated, no newline) into `out`. */
static int parse_line(const char *file, unsigned lineno, char *line, herdd_args_t *out,
                      char *err, size_t cap)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return fail_at(err, cap, file, lineno, "no '=' in '%.80s': want key = value", s);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (*key == '\0')
        return fail_at(err, cap, file, lineno, "no key before '='");
    int opt = herdd_opt_lookup(key);
    if (opt < 0)
        return fail_at(err, cap, file, lineno, "unknown key '%.80s'%s", key,
                       key[0] == '-' ? " (a key is a flag without its dashes: name, not --name)"
                                     : "");
    if (opt == HERDD_OPT_CONFIG)
        return fail_at(err, cap, file, lineno,
                       "config cannot be given in a config file (one file only)");
    if (*value == '\0')
        return fail_at(err, cap, file, lineno, "%s has no value", key);
    if (opt != HERDD_OPT_JOIN && out->given[opt])
        return fail_at(err, cap, file, lineno, "%s given twice (first on line %u); give it once",
                       key, out->line[opt]);
    char why[1200];
    if (herdd_args_set(out, (herdd_opt_t)opt, key, value, why, sizeof(why)) != 0)
        return fail_at(err, cap, file, lineno, "%s", why);
    if (out->line[opt] == 0)
        out->line[opt] = lineno;
    return 0;
}

int herdd_config_parse(const char *file, const char *text, size_t len, herdd_args_t *out,
                       char *err, size_t cap)
{
    *out = (herdd_args_t){.log_level = HERD_LOG_WARN, .file = file};
    if (len > HERDD_CONFIG_SIZE_MAX)
        return fail_at(err, cap, file, 0, "larger than %d bytes", HERDD_CONFIG_SIZE_MAX);
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return fail_at(err, cap, file, 0, "out of memory");
    if (len)
        memcpy(buf, text, len);
    buf[len] = '\0';
    out->text = buf;
    char *p = buf, *end = buf + len;
    int rc = 0;
    for (unsigned lineno = 1; rc == 0 && p < end; lineno++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        size_t n = (size_t)(eol - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (memchr(p, '\0', n))
            rc = fail_at(err, cap, file, lineno, "a NUL byte: not a text file");
        else if (n > HERDD_CONFIG_LINE_MAX)
            rc = fail_at(err, cap, file, lineno, "line longer than %d bytes",
                         HERDD_CONFIG_LINE_MAX);
        else {
            p[n] = '\0';
            rc = parse_line(file, lineno, p, out, err, cap);
        }
        p = nl ? nl + 1 : end;
    }
    if (rc != 0)
        herdd_args_free(out);
    return rc;
}

/* Opened O_NONBLOCK and looked at with fstat before it is read, like the
 * cookie file: a FIFO would block the read, a directory has no lines. */
int herdd_config_load(const char *path, herdd_args_t *out, char *err, size_t cap)
{
    *out = (herdd_args_t){.log_level = HERD_LOG_WARN};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail_at(err, cap, path, 0, "cannot read config file: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail_at(err, cap, path, 0, "not a regular file; want a config file");
    }
    char *buf = malloc(HERDD_CONFIG_SIZE_MAX + 1); /* the limit and one byte to see more */
    size_t got = 0;
    int e = 0;
    while (buf && got < HERDD_CONFIG_SIZE_MAX + 1) {
        ssize_t n = read(fd, buf + got, HERDD_CONFIG_SIZE_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            e = errno;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    int rc = buf == NULL ? fail_at(err, cap, path, 0, "out of memory")
             : e         ? fail_at(err, cap, path, 0, "cannot read config file: %s", strerror(e))
                         : herdd_config_parse(path, buf, got, out, err, cap);
    free(buf);
    return rc;
}
