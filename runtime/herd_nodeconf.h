/*
 * herd_nodeconf.h - configuring a node as herdd does: the cluster secret
 * from a cookie file (with herdd's checks), the shape of a listen or join
 * address, and the failure detector's timings from the heartbeat. herdd
 * calls these; a program that embeds a node calls them to take the same
 * files and options with the same refusals. Installed as
 * <herd/herd_nodeconf.h>, included by <herd/herd.h>.
 *
 * None touches a node: they may be called from any thread (the cookie
 * reader does blocking file I/O: not on a running loop's thread).
 */
#ifndef HERD_NODECONF_H
#define HERD_NODECONF_H

#include "herd_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

#define HERD_COOKIE_MIN 16   /* bytes of secret, as herd_cluster_start wants */
#define HERD_COOKIE_MAX 4096 /* longer is refused, not cut (two cookies that
                              * differed past it would form one cluster) */

/* Read the cluster secret from the cookie file `path`: its bytes less one
 * trailing newline, into buf[cap], their count in *len. Refused as Erlang
 * refuses a loose cookie: HERD_EINSECURE when group or others may read or
 * write it; HERD_EINVAL when it is not a regular file (a FIFO would block
 * the open, which is non-blocking, so nothing hangs), or for a NULL
 * argument; HERD_ENOENT when it does not exist; HERD_EIO when it cannot be
 * opened or read otherwise (permission denied...); HERD_ERANGE when the
 * secret is under HERD_COOKIE_MIN bytes; HERD_ETOOBIG when it is over
 * HERD_COOKIE_MAX or over `cap`. On error *len is 0, buf holds nothing of
 * the secret, and `why` (may be NULL; why_cap bytes) says what is wrong
 * in a sentence naming the file, e.g. "cookie file /etc/herd/c is open to
 * group or others (mode 644); chmod 600 it". */
int herd_cookie_read(const char *path, void *buf, size_t cap, size_t *len, char *why,
                     size_t why_cap);

/* 0 when `address` has the shape of an address herd listens on or joins
 * through: tcp://HOST:PORT (PORT digits) or ipc://PATH (not empty), 255
 * bytes at most; HERD_EINVAL otherwise (NULL too). Whether it works (the
 * host resolves, the port is free) is for herd_cluster_start to find out. */
int herd_address_check(const char *address);

/* The failure detector's timings as herdd derives them from
 * cfg->heartbeat_ms (0: 200) and cfg->down_ms (0: 5 heartbeats): a
 * down_ms under two heartbeats is refused with HERD_ERANGE (every member
 * would be declared down between two heartbeats); a down_ms under the
 * default suspicion (3 heartbeats) sets suspect_ms to half of it, unless
 * cfg->suspect_ms is set already, so a member is suspected before it is
 * declared down. Call it before herd_cluster_start. HERD_EINVAL for NULL. */
int herd_cluster_derive_timing(herd_cluster_config_t *cfg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
