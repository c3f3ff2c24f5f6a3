/*
 * nodeconf.c - configuring a node as herdd does (herd_nodeconf.h): the
 * cookie file's checks, the shape of addresses, the failure detector's
 * timings. They were herdd's own; an embedding program needs the same
 * refusals, so they live here once and herdd calls them.
 */
#include "herd_nodeconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_HEARTBEAT_MS 200u

__attribute__((format(printf, 4, 5))) static int refuse(int rc, char *why, size_t cap,
                                                        const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)                    ? "a directory"
           : S_ISFIFO(m)                 ? "a FIFO"
           : S_ISSOCK(m)                 ? "a socket"
           : S_ISCHR(m) || S_ISBLK(m)    ? "a device"
                                         : "not a file";
}

/* The secret must not linger in memory it does not belong to. */
static void wipe(void *p, size_t len)
{
    volatile unsigned char *b = p;
    while (len--)
        *b++ = 0;
}

/* Read all of fd (up to cap bytes; one more means "longer") into buf. */
static int read_all(int fd, unsigned char *buf, size_t cap, size_t *got)
{
    *got = 0;
    while (*got < cap) {
        ssize_t n = read(fd, buf + *got, cap - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

/* The checks of the open file `fd`: regular, owner only. */
static int cookie_check_fd(int fd, const char *path, char *why, size_t wcap)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return refuse(HERD_EIO, why, wcap, "cannot read cookie file %s: %s", path,
                      strerror(errno));
    if (!S_ISREG(st.st_mode))
        return refuse(HERD_EINVAL, why, wcap, "cookie file %s is %s, not a regular file", path,
                      file_kind(st.st_mode));
    if (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH))
        return refuse(HERD_EINSECURE, why, wcap,
                      "cookie file %s is open to group or others (mode %03o); chmod 600 it",
                      path, (unsigned)(st.st_mode & 0777));
    return 0;
}

int herd_cookie_read(const char *path, void *buf, size_t cap, size_t *len, char *why,
                     size_t wcap)
{
    if (len)
        *len = 0;
    if (path == NULL || buf == NULL || len == NULL)
        return refuse(HERD_EINVAL, why, wcap, "no cookie file, buffer or length given");
    /* O_NONBLOCK: nothing blocks before fstat has said what it is */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return refuse(errno == ENOENT ? HERD_ENOENT : HERD_EIO, why, wcap,
                      "cannot read cookie file %s: %s", path, strerror(errno));
    int rc = cookie_check_fd(fd, path, why, wcap);
    unsigned char tmp[HERD_COOKIE_MAX + 2]; /* the limit, a newline, one byte to see more */
    size_t got = 0;
    if (rc == 0 && read_all(fd, tmp, sizeof(tmp), &got) != 0)
        rc = refuse(HERD_EIO, why, wcap, "cannot read cookie file %s: %s", path,
                    strerror(errno));
    close(fd);
    if (rc == 0 && got && tmp[got - 1] == '\n')
        got--;
    size_t limit = cap < HERD_COOKIE_MAX ? cap : HERD_COOKIE_MAX;
    if (rc == 0 && got > limit)
        rc = refuse(HERD_ETOOBIG, why, wcap,
                    "cookie file %s is longer than %zu bytes; use a shorter secret", path, limit);
    else if (rc == 0 && got < HERD_COOKIE_MIN)
        rc = refuse(HERD_ERANGE, why, wcap, "the cookie in %s is %zu bytes; at least %d are needed",
                    path, got, HERD_COOKIE_MIN);
    if (rc == 0) {
        memcpy(buf, tmp, got);
        *len = got;
    }
    wipe(tmp, sizeof(tmp));
    return rc;
}

int herd_address_check(const char *a)
{
    if (a == NULL)
        return HERD_EINVAL;
    size_t len = strlen(a);
    if (len > 255)
        return HERD_EINVAL;
    if (strncmp(a, "ipc://", 6) == 0)
        return len > 6 ? 0 : HERD_EINVAL;
    if (strncmp(a, "tcp://", 6) != 0)
        return HERD_EINVAL;
    const char *colon = strrchr(a + 6, ':');
    int ok = colon && colon > a + 6 && colon[1] != '\0' &&
             strspn(colon + 1, "0123456789") == strlen(colon + 1);
    return ok ? 0 : HERD_EINVAL;
}

int herd_cluster_derive_timing(herd_cluster_config_t *cfg)
{
    if (cfg == NULL)
        return HERD_EINVAL;
    uint32_t beat = cfg->heartbeat_ms ? cfg->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    if (cfg->down_ms && cfg->down_ms < 2 * beat)
        return HERD_ERANGE;
    /* under the default suspicion (3 beats): suspect first, at half of it */
    if (cfg->down_ms && cfg->down_ms < 3 * beat && cfg->suspect_ms == 0)
        cfg->suspect_ms = cfg->down_ms / 2;
    return 0;
}
