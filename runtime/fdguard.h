/*
 * fdguard.h - keeps a node's file descriptors from running out through its
 * cluster port: a timer on the node's loop finds the inbound connections on
 * the port among the process's own descriptors, asks connguard.h which to
 * shed, and shuts those down (cluster.c starts one per node it listens for).
 *
 * How it works. nanomsg owns the connections and says nothing of them, so
 * the guard looks at the process from outside, as /proc shows it:
 * - Every FDGUARD_TICK_MS it counts the entries of /proc/self/fd (a
 *   directory it keeps open, so counting needs no new descriptor even when
 *   the process is at its limit). When the count moved, or a second passed,
 *   or the last scan shed, it scans: each descriptor that is a TCP socket
 *   bound to the cluster port, established, with a peer, is an inbound
 *   connection; TCP_INFO says how long since data last arrived on it.
 *   The cost is a few system calls per descriptor of this process, nothing
 *   per socket of the host.
 * - connguard_decide ranks them and says which to shed, under limits drawn
 *   from the open-files limit at each scan (connguard_limits_for).
 * - A connection is shed with shutdown(SHUT_RDWR), never close(): the
 *   descriptor is nanomsg's, which then sees the connection end and closes
 *   it itself. Between the scan and the shutdown nanomsg may have closed
 *   the descriptor and the number may hold another file, so the guard first
 *   dup3()s it onto a slot of its own (a descriptor it holds for this, so
 *   no new one is needed), checks there that it is still the same socket
 *   (inode), and shuts that; a descriptor gone meanwhile is counted as
 *   missed, not shut.
 * - After a scan that shed, the next comes within FDGUARD_RESCAN_MS: when
 *   the process was at its limit, nanomsg's accept() failed with EMFILE and
 *   retried at once, over and over (its worker thread at 100 % CPU), and
 *   takes more connections as soon as descriptors free up; the guard sheds
 *   those too until the backlog is empty.
 * Every shed is counted by reason (herd_cluster_conn_stats, `ringctl
 * stats`) and logged, at most once a second per reason.
 */
#ifndef HERD_FDGUARD_H
#define HERD_FDGUARD_H

#include <stdint.h>

#include "herd_runtime.h"

#define FDGUARD_TICK_MS 250
#define FDGUARD_FULL_MS 1000  /* a scan at least this often while anything is open */
#define FDGUARD_RESCAN_MS 20  /* after a scan that shed */
/* herdd raises its soft open-files limit to the hard one, at most this. */
#define FDGUARD_NOFILE_CAP 65536u
/* An open-files limit under this is logged as a warning. */
#define FDGUARD_NOFILE_LOW 1024u

typedef struct fdguard fdguard_t;

/* Guard the node's cluster port: `listen` is its tcp://HOST:PORT address,
 * `active_ms` the down time of its failure detector (a member's link
 * carries data more often). Runs on the node's loop; its timer does not
 * keep the loop alive. Errors: HERD_EINVAL (not a tcp:// address with a
 * port), HERD_EIO (/proc/self/fd cannot be opened), HERD_ENOMEM. */
int fdguard_start(herd_node_t *node, const char *listen, uint64_t active_ms,
                  fdguard_t **out);
/* Stop and free (NULL is fine). Runs the loop until the timer is closed. */
void fdguard_free(fdguard_t *g);
void fdguard_stats(const fdguard_t *g, herd_conn_stats_t *out);

/* Raise the process's soft RLIMIT_NOFILE to its hard limit, at most `cap`
 * (never lower it), and log the limit in use (a warning when it is under
 * FDGUARD_NOFILE_LOW). Returns the soft limit in use. */
uint64_t fdguard_raise_nofile(uint64_t cap);

#endif
