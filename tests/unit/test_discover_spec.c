/*
 * test_discover_spec.c - herdd's --discover and --metrics specs and the seed
 * lists of a discovery (tools/discover_spec.h), without I/O:
 * - dns:NAME:PORT and range:FIRST-LAST:PORT parse into their parts, at the
 *   edges (a 253-byte name, a 1024-address range, ports 1 and 65535);
 * - every bad spec is refused with a message that says what is wrong;
 * - IPV4:PORT parses; host names, IPv6, ports out of range are refused;
 * - a seed list is sorted, each address once, without this node's own;
 * - the changes between two lists name what came and what went.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "discover_spec.h"
#include "herd_runtime.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((c) << 8) | (d))

static void refused(const char *spec, const char *want)
{
    discover_spec_t s;
    char err[512] = "";
    if (discover_spec_parse("--discover", spec, &s, err, sizeof(err)) != -1 ||
        strstr(err, want) == NULL)
        fail_msg("spec '%s': message '%s', wanted '%s'", spec, err, want);
}

static void test_discover_spec_good(void **state)
{
    (void)state;
    discover_spec_t s;
    char err[512];
    assert_int_equal(discover_spec_parse("--discover", "dns:herd.svc.local:7001", &s, err,
                                         sizeof(err)), 0);
    assert_int_equal(s.kind, DISCOVER_DNS);
    assert_string_equal(s.name, "herd.svc.local");
    assert_int_equal(s.port, 7001);
    assert_int_equal(discover_spec_parse("--discover", "dns:localhost.:1", &s, err, sizeof(err)),
                     0); /* rooted */
    assert_int_equal(s.port, 1);
    assert_int_equal(discover_spec_parse("--discover", "range:10.0.0.1-10.0.0.9:65535", &s, err,
                                         sizeof(err)), 0);
    assert_int_equal(s.kind, DISCOVER_RANGE);
    assert_int_equal(s.first, IP(10, 0, 0, 1));
    assert_int_equal(s.last, IP(10, 0, 0, 9));
    assert_int_equal(s.port, 65535);
    /* a range of one, and one of exactly DISCOVER_RANGE_MAX across a boundary */
    assert_int_equal(discover_spec_parse("--discover", "range:127.0.0.2-127.0.0.2:9", &s, err,
                                         sizeof(err)), 0);
    assert_int_equal(discover_spec_parse("--discover", "range:10.0.0.0-10.0.3.255:9", &s, err,
                                         sizeof(err)), 0);
    size_t n;
    uint32_t *a = discover_range_addrs(&s, &n);
    assert_non_null(a);
    assert_int_equal(n, DISCOVER_RANGE_MAX);
    assert_int_equal(a[0], IP(10, 0, 0, 0));
    assert_int_equal(a[256], IP(10, 0, 1, 0));
    assert_int_equal(a[n - 1], IP(10, 0, 3, 255));
    free(a);
    /* a name of 253 bytes in labels of 63 */
    char spec[300], name[254];
    memset(name, 'a', 253);
    name[63] = name[127] = name[191] = '.';
    name[253] = '\0';
    snprintf(spec, sizeof(spec), "dns:%s:7", name);
    assert_int_equal(discover_spec_parse("--discover", spec, &s, err, sizeof(err)), 0);
    assert_string_equal(s.name, name);
}

static void test_discover_spec_bad(void **state)
{
    (void)state;
    refused("", "--discover wants dns:NAME:PORT or range:FIRST-LAST:PORT, got ''");
    refused("dns:herd", "wants dns:NAME:PORT");
    refused("herd.local:7001", "wants dns:NAME:PORT");
    refused("dns::7001", "nothing between the colons");
    refused("srv:herd:7001", "unknown kind 'srv'");
    refused("DNS:herd:7001", "unknown kind 'DNS'");
    refused("dns:herd:0", "port '0' is not 1-65535");
    refused("dns:herd:65536", "port '65536' is not 1-65535");
    refused("dns:herd:+7", "port '+7' is not 1-65535");
    refused("dns:herd:", "port '' is not 1-65535");
    refused("dns:he rd:7", "bad host name 'he rd'");
    refused("dns:a..b:7", "bad host name 'a..b'");
    refused("dns:.a:7", "bad host name '.a'");
    refused("dns:-a:7", "bad host name '-a'");
    refused("dns:fe80::1:7", "bad host name"); /* IPv6: colons in the name */
    char spec[400], label[80];
    memset(label, 'b', 64);
    label[64] = '\0';
    snprintf(spec, sizeof(spec), "dns:%s:7", label);
    refused(spec, "bad host name"); /* a 64-byte label */
    char big[300];
    memset(big, 'a', 254);
    for (int i = 50; i < 254; i += 50)
        big[i] = '.';
    big[254] = '\0';
    snprintf(spec, sizeof(spec), "dns:%s:7", big);
    refused(spec, "longer than 253 bytes");
    refused("range:10.0.0.1:7", "range wants FIRST-LAST");
    refused("range:10.0.0.1-:7", "'' is not an IPv4 address");
    refused("range:10.0.0-10.0.0.5:7", "'10.0.0' is not an IPv4 address");
    refused("range:10.0.0.1-10.0.0.256:7", "'10.0.0.256' is not an IPv4 address");
    refused("range:host-10.0.0.5:7", "'host' is not an IPv4 address");
    refused("range:10.0.0.9-10.0.0.1:7", "the range 10.0.0.9-10.0.0.1 goes backwards");
    refused("range:10.0.0.0-10.0.4.0:7", "holds 1025 addresses; at most 1024");
    refused("range:0.0.0.0-255.255.255.255:7", "holds 4294967296 addresses");
}

static void test_discover_ipv4_port(void **state)
{
    (void)state;
    uint32_t ip;
    uint16_t port;
    char err[512];
    assert_int_equal(discover_parse_ipv4_port("--metrics", "127.0.0.1:9100", &ip, &port, err,
                                              sizeof(err)), 0);
    assert_int_equal(ip, IP(127, 0, 0, 1));
    assert_int_equal(port, 9100);
    assert_int_equal(discover_parse_ipv4_port("--metrics", "0.0.0.0:1", &ip, &port, err,
                                              sizeof(err)), 0);
    assert_int_equal(ip, 0);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"9100", "--metrics wants IPV4:PORT (127.0.0.1:9100), got '9100'"},
        {":9100", "wants IPV4:PORT"},
        {"localhost:9100", "'localhost' is not an IPv4 address"},
        {"[::1]:9100", "'[::1]' is not an IPv4 address"},
        {"127.0.0.1:", "port '' is not 1-65535"},
        {"127.0.0.1:0", "port '0' is not 1-65535"},
        {"127.0.0.1:99999", "port '99999' is not 1-65535"},
        {"127.0.0.1:91a", "port '91a' is not 1-65535"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (discover_parse_ipv4_port("--metrics", bad[i].text, &ip, &port, err, sizeof(err)) !=
                -1 ||
            strstr(err, bad[i].want) == NULL)
            fail_msg("'%s': '%s', wanted '%s'", bad[i].text, err, bad[i].want);
    }
}

static int self_is_2(void *data, uint32_t ip, uint16_t port)
{
    (*(int *)data)++;
    return ip == IP(127, 0, 0, 2) && port == 7001;
}

static void test_discover_seed_list(void **state)
{
    (void)state;
    const uint32_t found[] = {IP(127, 0, 0, 3), IP(127, 0, 0, 2), IP(10, 1, 2, 3),
                              IP(127, 0, 0, 3), IP(255, 255, 255, 255)};
    seed_list_t l;
    int asked = 0;
    assert_int_equal(seed_list_build(found, 5, 7001, self_is_2, &asked, &l), 0);
    assert_true(asked >= 4);
    assert_int_equal(l.count, 3); /* the repeat once, this node never */
    assert_string_equal(l.items[0], "tcp://10.1.2.3:7001");
    assert_string_equal(l.items[1], "tcp://127.0.0.3:7001");
    assert_string_equal(l.items[2], "tcp://255.255.255.255:7001");
    seed_list_free(&l);
    assert_null(l.items);
    /* nothing found: an empty list, not an error; no self check given */
    assert_int_equal(seed_list_build(NULL, 0, 7001, NULL, NULL, &l), 0);
    assert_int_equal(l.count, 0);
    seed_list_free(&l);
}

typedef struct changes {
    char seen[8][DISCOVER_SEED_LEN + 2];
    int count;
} changes_t;

static void note(void *data, const char *seed, int added)
{
    changes_t *c = data;
    assert_true(c->count < 8);
    snprintf(c->seen[c->count++], sizeof(c->seen[0]), "%c%s", added ? '+' : '-', seed);
}

static void test_discover_seed_changes(void **state)
{
    (void)state;
    const uint32_t before[] = {IP(127, 0, 0, 1), IP(127, 0, 0, 2)};
    const uint32_t now[] = {IP(127, 0, 0, 2), IP(127, 0, 0, 3)};
    seed_list_t a, b;
    assert_int_equal(seed_list_build(before, 2, 9, NULL, NULL, &a), 0);
    assert_int_equal(seed_list_build(now, 2, 9, NULL, NULL, &b), 0);
    changes_t c = {.count = 0};
    assert_int_equal(seed_list_changes(&a, &b, note, &c), 2);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.seen[0], "+tcp://127.0.0.3:9");
    assert_string_equal(c.seen[1], "-tcp://127.0.0.1:9");
    c.count = 0;
    assert_int_equal(seed_list_changes(&b, &b, note, &c), 0);
    assert_int_equal(c.count, 0);
    seed_list_t empty = {0};
    assert_int_equal(seed_list_changes(&empty, &a, note, &c), 2); /* the first list: all new */
    seed_list_free(&a);
    seed_list_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discover_spec_good),
        cmocka_unit_test(test_discover_spec_bad),
        cmocka_unit_test(test_discover_ipv4_port),
        cmocka_unit_test(test_discover_seed_list),
        cmocka_unit_test(test_discover_seed_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
