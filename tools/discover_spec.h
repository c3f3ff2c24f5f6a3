/*
 * discover_spec.h - what herdd's --discover and --metrics say, without I/O:
 * the parse of a discovery spec and of an IPV4:PORT, and the seed list made
 * from the addresses a discovery found (sorted, each once, never the
 * node's own). herdd_discover.h resolves and re-resolves on the loop;
 * tests/unit/test_discover_spec.c pins the parse and the list.
 *
 *   dns:NAME:PORT          every IPv4 address NAME resolves to, on PORT
 *   range:FIRST-LAST:PORT  every IPv4 address from FIRST to LAST, on PORT
 *
 * IPv4 only: herd's nanomsg transport connects over IPv4 (an IPv6 seed would
 * never answer).
 */
#ifndef HERD_DISCOVER_SPEC_H
#define HERD_DISCOVER_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define DISCOVER_NAME_MAX 253u    /* a DNS name's longest text form */
#define DISCOVER_RANGE_MAX 1024u  /* addresses a range may hold: HELLOs go to each */
#define DISCOVER_SEED_LEN 32u     /* "tcp://255.255.255.255:65535" and its NUL fit */

typedef enum discover_kind { DISCOVER_DNS, DISCOVER_RANGE } discover_kind_t;

typedef struct discover_spec {
    discover_kind_t kind;
    char name[DISCOVER_NAME_MAX + 1]; /* DNS: the name to resolve */
    uint32_t first, last;             /* RANGE: the addresses, host byte order */
    uint16_t port;
} discover_spec_t;

/* Parse `text` into *out: 0, or -1 with a message for the user in err (cap
 * bytes) naming `flag` ("--discover", or "discover" in a config file). */
int discover_spec_parse(const char *flag, const char *text, discover_spec_t *out, char *err,
                        size_t cap);

/* IPV4:PORT (127.0.0.1:9100; port 1-65535, digits only) into *ip (host byte
 * order) and *port: 0, or -1 with a message naming `flag` in err. */
int discover_parse_ipv4_port(const char *flag, const char *text, uint32_t *ip, uint16_t *port,
                             char *err, size_t cap);

/* A seed list: addresses as tcp://A.B.C.D:PORT, sorted by address, no two
 * equal. `items` is owned (seed_list_free). */
typedef struct seed_list {
    char (*items)[DISCOVER_SEED_LEN];
    size_t count;
} seed_list_t;

/* Whether address `ip` (host byte order) on `port` is this node itself. */
typedef int (*discover_self_fn)(void *data, uint32_t ip, uint16_t port);

/* *out = the seeds of `n` addresses (host byte order, any order, repeats
 * allowed) on `port`, less those `is_self` (may be NULL) says are this
 * node. 0, or HERD_ENOMEM (*out empty). */
int seed_list_build(const uint32_t *addrs, size_t n, uint16_t port, discover_self_fn is_self,
                    void *self_data, seed_list_t *out);
/* The addresses of a RANGE spec (host byte order) into a new array of
 * *n; NULL when out of memory. */
uint32_t *discover_range_addrs(const discover_spec_t *s, size_t *n);
/* Call `fn` for each seed of `now` not in `before` (added 1) and each of
 * `before` not in `now` (added 0); returns how many calls. */
typedef void (*seed_change_fn)(void *data, const char *seed, int added);
size_t seed_list_changes(const seed_list_t *before, const seed_list_t *now, seed_change_fn fn,
                         void *data);
void seed_list_free(seed_list_t *l);

#endif
