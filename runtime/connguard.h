/*
 * connguard.h - which inbound connections on the cluster port a node sheds
 * to keep file descriptors for its own work: pure functions, free of I/O, so
 * that every rule is tested on plain values (tests/unit/test_connguard.c).
 * fdguard.c finds the connections and sheds them.
 *
 * nanomsg accepts every connection to a bound TCP socket, with no hook on
 * accept and no limit, and spins on accept() when the process is out of
 * file descriptors. So a local user holding a few hundred connections to
 * the cluster port can starve the node of descriptors: its control socket
 * stops accepting, and nanomsg's worker runs at 100 % CPU. The guard keeps
 * inbound connections under two limits, one per remote address and one in
 * all, both derived from the process's open-files limit (connguard_limits_for).
 *
 * How it decides (connguard_decide): connections are ranked by how much
 * they look like a member's link. A member sends a heartbeat on its link
 * every heartbeat, so a connection that received data within `active_ms`
 * (the failure detector's down time) ranks above an idle one; among equals
 * the older ranks above the newer (a flood of fresh connections does not
 * push out an established link); the inode breaks the last ties, so the
 * verdicts are deterministic. Per remote address, those ranked past
 * `per_addr` are shed (reason "per address"); of the rest, those ranked
 * past `total` in all are shed (reason "total").
 *
 * What it cannot do: nanomsg does not say which connection carried an
 * authenticated frame, so an attacker that keeps sending well-formed (if
 * unauthenticated) messages on old connections ranks with the members; the
 * limits still bound what it holds. The cluster port belongs on a trusted
 * network.
 */
#ifndef HERD_CONNGUARD_H
#define HERD_CONNGUARD_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Fewest connections one remote address may hold, whatever the members:
 * every node of a test cluster runs on 127.0.0.1. */
#define CONNGUARD_PER_ADDR_MIN 16u
/* Descriptors kept free beyond what the process uses for other things:
 * control clients, files, connections accepted between two scans. */
#define CONNGUARD_SPARE_FDS 16u
/* Descriptors a member's outbound link takes (a nanomsg PUSH socket's two
 * eventfds and its TCP connection). */
#define CONNGUARD_FDS_PER_PEER 3u

/* A remote address; IPv4-mapped IPv6 addresses are given as IPv4, so a
 * peer counts once whichever family the listener has. */
typedef struct connguard_addr {
    uint8_t family;    /* 4 or 6; 0: unknown */
    uint8_t bytes[16]; /* network order; the first 4 for IPv4 */
} connguard_addr_t;

/* Fill `out` from a socket address (AF_INET or AF_INET6). HERD_EINVAL for
 * another family or a length too short for it. */
int connguard_addr_from(const struct sockaddr *sa, size_t len, connguard_addr_t *out);
int connguard_addr_equal(const connguard_addr_t *a, const connguard_addr_t *b);
/* The address as text ("127.0.0.1", "::1", "?"), always NUL-terminated. */
char *connguard_addr_text(const connguard_addr_t *a, char *out, size_t cap);

typedef enum connguard_verdict {
    CONNGUARD_KEEP,
    CONNGUARD_SHED_PER_ADDR, /* over the limit of its remote address */
    CONNGUARD_SHED_TOTAL,    /* over the limit in all */
} connguard_verdict_t;

/* One inbound connection on the cluster port. */
typedef struct connguard_conn {
    uint64_t inode;         /* the socket's inode: the tie-break of the ranking */
    int fd;                 /* the I/O side's; connguard_decide does not read it */
    connguard_addr_t remote;
    uint64_t first_seen_ms; /* when the guard first saw it: its age */
    uint64_t idle_ms;       /* since data last arrived on it */
    uint8_t verdict;        /* out: connguard_verdict_t */
    uint8_t active;         /* out: data within active_ms */
} connguard_conn_t;

typedef struct connguard_limits {
    uint32_t per_addr;  /* at most this many from one remote address */
    uint32_t total;     /* at most this many in all */
    uint64_t active_ms; /* data within this: a member's link (ranks first) */
} connguard_limits_t;

/* The limits for a process whose open-files limit is `fd_limit`, that has
 * `other_fds` descriptors open besides its inbound cluster connections, in a
 * cluster of `members` (this node included; 0 counts as 1): in all, half of
 * what is left after the other descriptors, room for an outbound link to
 * every member and CONNGUARD_SPARE_FDS (the other half stays free for the
 * rest of the process); per address max(CONNGUARD_PER_ADDR_MIN,
 * 2 x members). Neither is under `members` (one link from each), and
 * per_addr is at most total. */
void connguard_limits_for(uint64_t fd_limit, uint64_t other_fds, uint32_t members,
                          uint64_t active_ms, connguard_limits_t *out);

typedef struct connguard_result {
    size_t kept, shed_per_addr, shed_total;
    size_t addresses; /* distinct remote addresses */
} connguard_result_t;

/* Set every conns[i].verdict (see the file head) and count them in *out.
 * conns is reordered into rank order. Limits of 0 count as 1. Never
 * allocates. */
void connguard_decide(connguard_conn_t *conns, size_t n, const connguard_limits_t *lim,
                      connguard_result_t *out);

#endif
