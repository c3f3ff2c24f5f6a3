/*
 * discover_spec.c - herdd's --discover and --metrics specs and the seed
 * lists of a discovery (discover_spec.h): text in, values out, no I/O.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover_spec.h"
#include "herd_runtime.h"

#define HOST_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* 1-65535, digits only. */
static int parse_port(const char *s, uint16_t *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return -1;
    unsigned long v = strtoul(s, NULL, 10);
    if (v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* A dotted quad, strictly (inet_pton's AF_INET takes nothing else). */
static int parse_ipv4(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

/* A host name as DNS writes it: labels of the name characters between dots,
 * none empty, none starting or ending with '-'. */
static int host_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > DISCOVER_NAME_MAX || strspn(s, HOST_CHARS) != len)
        return 0;
    for (const char *label = s; label;) {
        const char *dot = strchr(label, '.');
        size_t l = dot ? (size_t)(dot - label) : strlen(label);
        if (l == 0 && !(dot == NULL && label != s)) /* "a." (rooted) is fine */
            return 0;
        if (l > 63 || (l && (label[0] == '-' || label[l - 1] == '-')))
            return 0;
        label = dot ? dot + 1 : NULL;
    }
    return 1;
}

int discover_parse_ipv4_port(const char *flag, const char *text, uint32_t *ip, uint16_t *port,
                             char *err, size_t cap)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    size_t hlen = colon ? (size_t)(colon - text) : 0;
    if (colon == NULL || hlen == 0 || hlen >= sizeof(host))
        return fail(err, cap, "%s wants IPV4:PORT (127.0.0.1:9100), got '%.300s'", flag, text);
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (parse_ipv4(host, ip) != 0)
        return fail(err, cap, "%s: '%s' is not an IPv4 address (want IPV4:PORT, "
                    "127.0.0.1:9100)", flag, host);
    if (parse_port(colon + 1, port) != 0)
        return fail(err, cap, "%s: port '%.20s' is not 1-65535", flag, colon + 1);
    return 0;
}

/* range:FIRST-LAST, the part before :PORT. */
static int parse_range(const char *flag, const char *r, discover_spec_t *out, char *err,
                       size_t cap)
{
    char first[64];
    const char *dash = strchr(r, '-');
    size_t flen = dash ? (size_t)(dash - r) : 0;
    if (dash == NULL || flen >= sizeof(first))
        return fail(err, cap, "%s: range wants FIRST-LAST (127.0.0.1-127.0.0.9), got '%.300s'",
                    flag, r);
    memcpy(first, r, flen);
    first[flen] = '\0';
    if (parse_ipv4(first, &out->first) != 0)
        return fail(err, cap, "%s: '%s' is not an IPv4 address", flag, first);
    if (parse_ipv4(dash + 1, &out->last) != 0)
        return fail(err, cap, "%s: '%.300s' is not an IPv4 address", flag, dash + 1);
    if (out->last < out->first)
        return fail(err, cap, "%s: the range %s-%s goes backwards; give the lower address "
                    "first", flag, first, dash + 1);
    uint64_t n = (uint64_t)out->last - out->first + 1;
    if (n > DISCOVER_RANGE_MAX)
        return fail(err, cap, "%s: the range %s-%s holds %llu addresses; at most %u (each "
                    "one is asked to join every heartbeat)", flag, first, dash + 1,
                    (unsigned long long)n, DISCOVER_RANGE_MAX);
    return 0;
}

int discover_spec_parse(const char *flag, const char *text, discover_spec_t *out, char *err,
                        size_t cap)
{
    memset(out, 0, sizeof(*out));
    const char *colon = strchr(text, ':'), *last = strrchr(text, ':');
    if (colon == NULL || colon == last)
        return fail(err, cap, "%s wants dns:NAME:PORT or range:FIRST-LAST:PORT, got '%.300s'",
                    flag, text);
    size_t klen = (size_t)(colon - text), mlen = (size_t)(last - colon - 1);
    char middle[DISCOVER_NAME_MAX + 1];
    if (mlen == 0 || mlen > DISCOVER_NAME_MAX)
        return fail(err, cap, "%s: %s in '%.300s'", flag,
                    mlen ? "the name is longer than 253 bytes" : "nothing between the colons",
                    text);
    memcpy(middle, colon + 1, mlen);
    middle[mlen] = '\0';
    if (parse_port(last + 1, &out->port) != 0)
        return fail(err, cap, "%s: port '%.20s' is not 1-65535", flag, last + 1);
    if (klen == 3 && strncmp(text, "dns", 3) == 0) {
        out->kind = DISCOVER_DNS;
        if (!host_name_ok(middle))
            return fail(err, cap, "%s: bad host name '%s': labels of A-Za-z0-9_- between "
                        "dots, 253 bytes at most", flag, middle);
        memcpy(out->name, middle, mlen + 1);
        return 0;
    }
    if (klen == 5 && strncmp(text, "range", 5) == 0) {
        out->kind = DISCOVER_RANGE;
        return parse_range(flag, middle, out, err, cap);
    }
    return fail(err, cap, "%s: unknown kind '%.*s': want dns:NAME:PORT or "
                "range:FIRST-LAST:PORT", flag, (int)(klen < 40 ? klen : 40), text);
}

/* ---- seed lists ------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int seed_list_build(const uint32_t *addrs, size_t n, uint16_t port, discover_self_fn is_self,
                    void *self_data, seed_list_t *out)
{
    *out = (seed_list_t){0};
    uint32_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
    out->items = malloc((n ? n : 1) * sizeof(*out->items));
    if (sorted == NULL || out->items == NULL) {
        free(sorted);
        seed_list_free(out);
        return HERD_ENOMEM;
    }
    if (n)
        memcpy(sorted, addrs, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_u32);
    for (size_t i = 0; i < n; i++) {
        uint32_t a = sorted[i];
        if ((i && a == sorted[i - 1]) || (is_self && is_self(self_data, a, port)))
            continue;
        snprintf(out->items[out->count++], DISCOVER_SEED_LEN, "tcp://%u.%u.%u.%u:%u", a >> 24,
                 (a >> 16) & 255, (a >> 8) & 255, a & 255, (unsigned)port);
    }
    free(sorted);
    return 0;
}

uint32_t *discover_range_addrs(const discover_spec_t *s, size_t *n)
{
    *n = (size_t)(s->last - s->first) + 1;
    uint32_t *a = malloc(*n * sizeof(*a));
    for (size_t i = 0; a && i < *n; i++)
        a[i] = s->first + (uint32_t)i;
    if (a == NULL)
        *n = 0;
    return a;
}

static int seed_in(const seed_list_t *l, const char *seed)
{
    for (size_t i = 0; l && i < l->count; i++)
        if (strcmp(l->items[i], seed) == 0)
            return 1;
    return 0;
}

size_t seed_list_changes(const seed_list_t *before, const seed_list_t *now, seed_change_fn fn,
                         void *data)
{
    size_t changes = 0;
    for (size_t i = 0; now && i < now->count; i++)
        if (!seed_in(before, now->items[i]) && ++changes)
            fn(data, now->items[i], 1);
    for (size_t i = 0; before && i < before->count; i++)
        if (!seed_in(now, before->items[i]) && ++changes)
            fn(data, before->items[i], 0);
    return changes;
}

void seed_list_free(seed_list_t *l)
{
    free(l->items);
    *l = (seed_list_t){0};
}
