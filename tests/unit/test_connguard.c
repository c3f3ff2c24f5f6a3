/*
 * test_connguard.c - unit tests for the cluster port's shedding rules
 * (runtime/connguard.h): the limits drawn from the open-files limit, the
 * ranking (active before idle, older before newer, inode last), the
 * per-address limit before the total one, remote addresses (IPv4-mapped
 * IPv6 counts as IPv4), degenerate input, and a randomized comparison with
 * a plain quadratic model of the rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "connguard.h"
#include "herd_error.h"

#define ACTIVE_MS 1000

/* A connection from 10.0.0.`host` (host 0: ::1), seen first at `seen`,
 * idle for `idle` ms, with inode `inode`. */
static connguard_conn_t conn(int host, uint64_t seen, uint64_t idle, uint64_t inode)
{
    connguard_conn_t c = {.inode = inode, .fd = (int)inode, .first_seen_ms = seen,
                          .idle_ms = idle};
    if (host == 0) {
        c.remote.family = 6;
        c.remote.bytes[15] = 1;
    } else {
        c.remote.family = 4;
        c.remote.bytes[0] = 10;
        c.remote.bytes[3] = (uint8_t)host;
    }
    return c;
}

/* The verdict of the connection with `inode` (decide reorders the array). */
static int verdict_of(const connguard_conn_t *c, size_t n, uint64_t inode)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].inode == inode)
            return c[i].verdict;
    fail_msg("no connection with inode %llu", (unsigned long long)inode);
    return -1;
}

static const connguard_limits_t LIM_3_5 = {.per_addr = 3, .total = 5, .active_ms = ACTIVE_MS};

static void test_connguard_under_limits_keeps_all(void **state)
{
    (void)state;
    connguard_conn_t c[5] = {conn(1, 10, 5000, 1), conn(1, 20, 5000, 2), conn(2, 30, 0, 3),
                             conn(3, 40, 0, 4), conn(1, 50, 0, 5)};
    connguard_result_t r;
    connguard_decide(c, 5, &LIM_3_5, &r);
    assert_int_equal(r.kept, 5);
    assert_int_equal(r.shed_per_addr, 0);
    assert_int_equal(r.shed_total, 0);
    assert_int_equal(r.addresses, 3);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(c[i].verdict, CONNGUARD_KEEP);
}

/* All idle: per address, the oldest per_addr stay and the newer are shed. */
static void test_connguard_per_addr_sheds_newest(void **state)
{
    (void)state;
    connguard_conn_t c[6];
    for (int i = 0; i < 6; i++) /* inodes 1..6, seen in reverse order: 6 is the oldest */
        c[i] = conn(7, (uint64_t)(100 - i), 5000, (uint64_t)i + 1);
    connguard_limits_t lim = {.per_addr = 2, .total = 100, .active_ms = ACTIVE_MS};
    connguard_result_t r;
    connguard_decide(c, 6, &lim, &r);
    assert_int_equal(r.kept, 2);
    assert_int_equal(r.shed_per_addr, 4);
    assert_int_equal(r.shed_total, 0);
    assert_int_equal(verdict_of(c, 6, 6), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 6, 5), CONNGUARD_KEEP);
    for (uint64_t inode = 1; inode <= 4; inode++)
        assert_int_equal(verdict_of(c, 6, inode), CONNGUARD_SHED_PER_ADDR);
}

/* A member's link joins after a flood of idle connections from the same
 * host (every test node runs on 127.0.0.1): it carries heartbeats, so it
 * stays, and an idle one goes in its place. */
static void test_connguard_active_outranks_older_idle(void **state)
{
    (void)state;
    connguard_conn_t c[4] = {conn(1, 10, 4000, 1), conn(1, 11, 4000, 2), conn(1, 12, 4000, 3),
                             conn(1, 5000, 150, 4)};
    connguard_result_t r;
    connguard_decide(c, 4, &LIM_3_5, &r);
    assert_int_equal(r.shed_per_addr, 1);
    assert_int_equal(verdict_of(c, 4, 4), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 4, 3), CONNGUARD_SHED_PER_ADDR); /* the newest idle one */
    assert_int_equal(verdict_of(c, 4, 1), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 4, 2), CONNGUARD_KEEP);
    /* exactly active_ms idle is idle */
    connguard_conn_t d[2] = {conn(1, 10, ACTIVE_MS, 1), conn(1, 20, ACTIVE_MS - 1, 2)};
    connguard_limits_t one = {.per_addr = 1, .total = 1, .active_ms = ACTIVE_MS};
    connguard_decide(d, 2, &one, &r);
    assert_int_equal(verdict_of(d, 2, 2), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(d, 2, 1), CONNGUARD_SHED_PER_ADDR);
}

/* After the per-address limit, the total one takes the lowest ranked of
 * what is left, from any address; connections already shed per address do
 * not use up the total. */
static void test_connguard_total_after_per_addr(void **state)
{
    (void)state;
    connguard_conn_t c[9] = {
        /* host 1: four, idle; the newest is over per_addr 3 */
        conn(1, 10, 5000, 1), conn(1, 20, 5000, 2), conn(1, 30, 5000, 3), conn(1, 40, 5000, 4),
        /* host 2: two active, new */
        conn(2, 900, 10, 5), conn(2, 901, 10, 6),
        /* host 3: three idle, the oldest of all */
        conn(3, 1, 5000, 7), conn(3, 2, 5000, 8), conn(3, 3, 5000, 9)};
    connguard_result_t r;
    connguard_decide(c, 9, &LIM_3_5, &r);
    assert_int_equal(r.addresses, 3);
    assert_int_equal(r.shed_per_addr, 1);
    assert_int_equal(verdict_of(c, 9, 4), CONNGUARD_SHED_PER_ADDR);
    /* left: 5, 6 (active), then idle by age 7, 8, 9, 1, 2, 3: keep 5 of 8 */
    assert_int_equal(r.shed_total, 3);
    assert_int_equal(r.kept, 5);
    assert_int_equal(verdict_of(c, 9, 5), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 9, 6), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 9, 7), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 9, 8), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 9, 9), CONNGUARD_KEEP);
    assert_int_equal(verdict_of(c, 9, 1), CONNGUARD_SHED_TOTAL);
    assert_int_equal(verdict_of(c, 9, 2), CONNGUARD_SHED_TOTAL);
    assert_int_equal(verdict_of(c, 9, 3), CONNGUARD_SHED_TOTAL);
    /* the array comes back in rank order */
    assert_true(c[0].inode == 5 && c[1].inode == 6 && c[2].inode == 7);
}

/* Equal activity and age: the lower inode stays, whatever the input order. */
static void test_connguard_ties_broken_by_inode(void **state)
{
    (void)state;
    connguard_limits_t lim = {.per_addr = 2, .total = 2, .active_ms = ACTIVE_MS};
    for (int order = 0; order < 2; order++) {
        connguard_conn_t c[4];
        for (int i = 0; i < 4; i++)
            c[i] = conn(5, 77, 0, order ? (uint64_t)(40 - 10 * i) : (uint64_t)(10 + 10 * i));
        connguard_result_t r;
        connguard_decide(c, 4, &lim, &r);
        assert_int_equal(verdict_of(c, 4, 10), CONNGUARD_KEEP);
        assert_int_equal(verdict_of(c, 4, 20), CONNGUARD_KEEP);
        assert_int_equal(verdict_of(c, 4, 30), CONNGUARD_SHED_PER_ADDR);
        assert_int_equal(verdict_of(c, 4, 40), CONNGUARD_SHED_PER_ADDR);
    }
}

static void test_connguard_degenerate_input(void **state)
{
    (void)state;
    connguard_result_t r;
    memset(&r, 0xff, sizeof(r));
    connguard_decide(NULL, 0, &LIM_3_5, &r);
    assert_int_equal(r.kept + r.shed_per_addr + r.shed_total + r.addresses, 0);
    connguard_conn_t c[3] = {conn(1, 1, 0, 1), conn(1, 2, 0, 2), conn(2, 3, 0, 3)};
    connguard_decide(c, 0, &LIM_3_5, &r); /* n = 0: nothing read, nothing set */
    assert_int_equal(r.kept, 0);
    /* limits of 0 count as 1: one per address, one in all */
    connguard_limits_t zero = {0};
    c[0].verdict = c[1].verdict = c[2].verdict = 99;
    connguard_decide(c, 3, &zero, &r);
    assert_int_equal(r.kept, 1);
    assert_int_equal(r.shed_per_addr, 1);
    assert_int_equal(r.shed_total, 1);
    assert_int_equal(verdict_of(c, 3, 1), CONNGUARD_KEEP);
    /* an unknown family is one more address, not a crash */
    connguard_conn_t u[2] = {conn(1, 1, 0, 1), conn(1, 2, 0, 2)};
    memset(&u[1].remote, 0, sizeof(u[1].remote));
    connguard_decide(u, 2, &LIM_3_5, &r);
    assert_int_equal(r.addresses, 2);
    assert_int_equal(r.kept, 2);
}

static void test_connguard_addr_from_and_text(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    connguard_addr_t a, b;
    char text[64];
    assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &in.sin_addr), 1);
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr), 1);
    assert_int_equal(connguard_addr_from((struct sockaddr *)&in, sizeof(in), &a), 0);
    assert_int_equal(connguard_addr_from((struct sockaddr *)&in6, sizeof(in6), &b), 0);
    assert_int_equal(a.family, 4);
    assert_true(connguard_addr_equal(&a, &b)); /* the mapped form is the same peer */
    assert_string_equal(connguard_addr_text(&b, text, sizeof(text)), "192.0.2.7");
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr), 1);
    assert_int_equal(connguard_addr_from((struct sockaddr *)&in6, sizeof(in6), &b), 0);
    assert_int_equal(b.family, 6);
    assert_false(connguard_addr_equal(&a, &b));
    assert_string_equal(connguard_addr_text(&b, text, sizeof(text)), "2001:db8::1");
    /* other families and short lengths are refused */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(connguard_addr_from((struct sockaddr *)&un, sizeof(un), &a), HERD_EINVAL);
    assert_int_equal(a.family, 0);
    assert_string_equal(connguard_addr_text(&a, text, sizeof(text)), "?");
    assert_int_equal(connguard_addr_from((struct sockaddr *)&in, sizeof(in) - 1, &a),
                     HERD_EINVAL);
    assert_int_equal(connguard_addr_from(NULL, 0, &a), HERD_EINVAL);
    assert_string_equal(connguard_addr_text(&b, text, 4), "?"); /* too small: "?" */
}

static void test_connguard_limits_for(void **state)
{
    (void)state;
    connguard_limits_t l;
    /* herdd at 200 open files with 36 others, 2 members: (200 - 36 - 6 - 16) / 2 */
    connguard_limits_for(200, 36, 2, 900, &l);
    assert_int_equal(l.total, 71);
    assert_int_equal(l.per_addr, CONNGUARD_PER_ADDR_MIN);
    assert_int_equal(l.active_ms, 900);
    /* many members on one host: 2 per member */
    connguard_limits_for(65536, 100, 20, 900, &l);
    assert_int_equal(l.per_addr, 40);
    assert_int_equal(l.total, (65536 - 100 - 60 - 16) / 2);
    /* a limit below what is needed: still one link from each member */
    connguard_limits_for(10, 50, 3, 900, &l);
    assert_int_equal(l.total, 3);
    assert_int_equal(l.per_addr, 3); /* at most the total */
    /* 0 members count as one; a tight limit caps per_addr at total */
    connguard_limits_for(60, 20, 0, 900, &l);
    assert_int_equal(l.total, (60 - 20 - 3 - 16) / 2);
    assert_int_equal(l.per_addr, 10);
    /* an enormous limit does not overflow */
    connguard_limits_for(UINT64_MAX, 0, 1, 900, &l);
    assert_int_equal(l.total, UINT32_MAX);
}

/* ---- against a model ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Whether a ranks before b (the rules of connguard.h, written plainly). */
static int model_before(const connguard_conn_t *a, const connguard_conn_t *b, uint64_t active)
{
    int aa = a->idle_ms < active, ba = b->idle_ms < active;
    if (aa != ba)
        return aa;
    if (a->first_seen_ms != b->first_seen_ms)
        return a->first_seen_ms < b->first_seen_ms;
    return a->inode < b->inode;
}

/* The model's verdicts, quadratic: shed per address when per_addr of the
 * same address rank before it; then shed in all when total of those kept
 * per address rank before it. */
static void model(const connguard_conn_t *c, size_t n, const connguard_limits_t *lim,
                  int *verdict)
{
    for (size_t i = 0; i < n; i++) {
        size_t before = 0;
        for (size_t k = 0; k < n; k++)
            before += k != i && connguard_addr_equal(&c[k].remote, &c[i].remote) &&
                      model_before(&c[k], &c[i], lim->active_ms);
        verdict[i] = before >= lim->per_addr ? CONNGUARD_SHED_PER_ADDR : CONNGUARD_KEEP;
    }
    int kept_pa[256];
    memcpy(kept_pa, verdict, n * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        if (kept_pa[i] != CONNGUARD_KEEP)
            continue;
        size_t before = 0;
        for (size_t k = 0; k < n; k++)
            before += k != i && kept_pa[k] == CONNGUARD_KEEP &&
                      model_before(&c[k], &c[i], lim->active_ms);
        if (before >= lim->total)
            verdict[i] = CONNGUARD_SHED_TOTAL;
    }
}

static void test_connguard_random_against_model(void **state)
{
    (void)state;
    uint64_t seed = 12;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rng_next(&seed) % 200);
        connguard_conn_t c[256];
        int want[256];
        for (size_t i = 0; i < n; i++) /* few hosts, few ages: many ties */
            c[i] = conn((int)(rng_next(&seed) % 5), rng_next(&seed) % 8,
                        rng_next(&seed) % 2 ? 0 : 5000, i + 1);
        connguard_limits_t lim = {.per_addr = 1 + (uint32_t)(rng_next(&seed) % 40),
                                  .total = 1 + (uint32_t)(rng_next(&seed) % 120),
                                  .active_ms = ACTIVE_MS};
        model(c, n, &lim, want);
        connguard_conn_t got[256];
        memcpy(got, c, n * sizeof(c[0]));
        connguard_result_t r;
        connguard_decide(got, n, &lim, &r);
        size_t counts[3] = {0};
        for (size_t i = 0; i < n; i++) {
            int v = verdict_of(got, n, c[i].inode);
            if (v != want[i])
                fail_msg("round %d: inode %llu: verdict %d, model %d", round,
                         (unsigned long long)c[i].inode, v, want[i]);
            counts[v]++;
        }
        assert_int_equal(r.kept, counts[CONNGUARD_KEEP]);
        assert_int_equal(r.shed_per_addr, counts[CONNGUARD_SHED_PER_ADDR]);
        assert_int_equal(r.shed_total, counts[CONNGUARD_SHED_TOTAL]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connguard_under_limits_keeps_all),
        cmocka_unit_test(test_connguard_per_addr_sheds_newest),
        cmocka_unit_test(test_connguard_active_outranks_older_idle),
        cmocka_unit_test(test_connguard_total_after_per_addr),
        cmocka_unit_test(test_connguard_ties_broken_by_inode),
        cmocka_unit_test(test_connguard_degenerate_input),
        cmocka_unit_test(test_connguard_addr_from_and_text),
        cmocka_unit_test(test_connguard_limits_for),
        cmocka_unit_test(test_connguard_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
