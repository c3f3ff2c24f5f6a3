/*
 * connguard.c - which inbound connections on the cluster port to shed
 * (connguard.h): the limits and the ranking, free of I/O.
 */
#include "connguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "herd_error.h"

/* ---- addresses ------------------------------------------------------------------ */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int connguard_addr_from(const struct sockaddr *sa, size_t len, connguard_addr_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL)
        return HERD_EINVAL;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->family = 4;
        memcpy(out->bytes, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        if (memcmp(b, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            out->family = 4; /* ::ffff:a.b.c.d is the IPv4 peer a.b.c.d */
            memcpy(out->bytes, b + 12, 4);
        } else {
            out->family = 6;
            memcpy(out->bytes, b, 16);
        }
        return 0;
    }
    return HERD_EINVAL;
}

int connguard_addr_equal(const connguard_addr_t *a, const connguard_addr_t *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

char *connguard_addr_text(const connguard_addr_t *a, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    int af = a->family == 4 ? AF_INET : a->family == 6 ? AF_INET6 : -1;
    if (af < 0 || inet_ntop(af, a->bytes, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "?");
    return out;
}

/* ---- limits --------------------------------------------------------------------- */

void connguard_limits_for(uint64_t fd_limit, uint64_t other_fds, uint32_t members,
                          uint64_t active_ms, connguard_limits_t *out)
{
    if (members == 0)
        members = 1;
    uint64_t reserve = other_fds + (uint64_t)CONNGUARD_FDS_PER_PEER * members +
                       CONNGUARD_SPARE_FDS;
    uint64_t total = fd_limit > reserve ? (fd_limit - reserve) / 2 : 0;
    if (total > UINT32_MAX)
        total = UINT32_MAX;
    if (total < members)
        total = members; /* one link from every member, whatever the limit */
    uint64_t per_addr = 2ull * members;
    if (per_addr < CONNGUARD_PER_ADDR_MIN)
        per_addr = CONNGUARD_PER_ADDR_MIN;
    if (per_addr > total)
        per_addr = total;
    out->total = (uint32_t)total;
    out->per_addr = (uint32_t)per_addr;
    out->active_ms = active_ms;
}

/* ---- the ranking ---------------------------------------------------------------- */

/* Rank order: active before idle, older before newer, lower inode first. */
static int rank_cmp(const connguard_conn_t *a, const connguard_conn_t *b)
{
    if (a->active != b->active)
        return a->active ? -1 : 1;
    if (a->first_seen_ms != b->first_seen_ms)
        return a->first_seen_ms < b->first_seen_ms ? -1 : 1;
    if (a->inode != b->inode)
        return a->inode < b->inode ? -1 : 1;
    return 0;
}

static int by_rank(const void *x, const void *y)
{
    return rank_cmp(x, y);
}

/* Grouped by remote address, each group in rank order. */
static int by_addr_then_rank(const void *x, const void *y)
{
    const connguard_conn_t *a = x, *b = y;
    if (a->remote.family != b->remote.family)
        return a->remote.family < b->remote.family ? -1 : 1;
    int c = memcmp(a->remote.bytes, b->remote.bytes, sizeof(a->remote.bytes));
    if (c != 0)
        return c;
    return rank_cmp(a, b);
}

/* Shed, per remote address, the connections ranked past per_addr. */
static void shed_per_addr(connguard_conn_t *conns, size_t n, uint32_t per_addr,
                          connguard_result_t *out)
{
    qsort(conns, n, sizeof(*conns), by_addr_then_rank);
    size_t in_group = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || !connguard_addr_equal(&conns[i].remote, &conns[i - 1].remote)) {
            in_group = 0;
            out->addresses++;
        }
        if (++in_group > per_addr) {
            conns[i].verdict = CONNGUARD_SHED_PER_ADDR;
            out->shed_per_addr++;
        }
    }
}

/* Of those still kept, shed the ones ranked past total. */
static void shed_total(connguard_conn_t *conns, size_t n, uint32_t total,
                       connguard_result_t *out)
{
    qsort(conns, n, sizeof(*conns), by_rank);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (conns[i].verdict != CONNGUARD_KEEP)
            continue;
        if (++kept > total) {
            conns[i].verdict = CONNGUARD_SHED_TOTAL;
            out->shed_total++;
        }
    }
    out->kept = kept < total ? kept : total;
}

void connguard_decide(connguard_conn_t *conns, size_t n, const connguard_limits_t *lim,
                      connguard_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (conns == NULL || n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        conns[i].verdict = CONNGUARD_KEEP;
        conns[i].active = conns[i].idle_ms < lim->active_ms;
    }
    shed_per_addr(conns, n, lim->per_addr ? lim->per_addr : 1, out);
    shed_total(conns, n, lim->total ? lim->total : 1, out);
}
