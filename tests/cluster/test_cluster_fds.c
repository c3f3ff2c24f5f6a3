/*
 * test_cluster_fds.c - herdd's cluster port against running out of file
 * descriptors (runtime/fdguard.h), with real herdd processes on 127.0.0.1:
 *
 * 1. a node whose open-files limit is 200 (set on the running process with
 *    prlimit(2), as `prlimit --nofile=200` would) gets 281 TCP connections
 *    to its cluster port from this test, each sending nanomsg's protocol
 *    header (so nanomsg holds them indefinitely) and then nothing, 141
 *    from 127.0.0.1 and 140 from ten other loopback addresses. Without the
 *    guard the node hits its limit, nanomsg's accept() spins on EMFILE and
 *    the control socket stops answering. With it: within seconds `stats`
 *    answers, again and again, each within CL_CONTROL_MS; it shows
 *    connections shut over the per-address limit and over the limit in all
 *    (in ringctl's text and JSON); the node's CPU use over 2 s stays far
 *    below a core; a second node joins it and both see each other up while
 *    the connections are held, its link kept in their place; once the test
 *    closes its connections the node holds only that link.
 * 2. a three-node cluster with the default limits: the guard sheds none of
 *    the members' links.
 *
 * Every wait is bounded; the first case takes about 15 s.
 */
#define _GNU_SOURCE /* prlimit */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster_harness.h"

#define FD_LIMIT 200
#define ATTACK_CONNS 281
#define ATTACK_FROM_ONE 141     /* from 127.0.0.1, the rest from 127.0.0.2-11 */
#define ATTACK_OTHER_HOSTS 10
#define CONNECT_MS 8000         /* SYNs dropped while the accept queue is full are resent */
#define SHED_MS 5000            /* the guard's answer to the attack */
#define STATS_ROUNDS 10
#define CPU_WINDOW_MS 2000
#define CPU_MAX_SHARE 0.5       /* of one core, over CPU_WINDOW_MS */
#define JOIN_MS 10000

/* nanomsg's protocol header for a PUSH peer of the node's PULL socket. */
static const unsigned char SP_HEADER[8] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};

typedef struct attack {
    int fd[ATTACK_CONNS];
    int host[ATTACK_CONNS]; /* last byte of its 127.0.0.x source */
    int sent[ATTACK_CONNS]; /* the header went out */
    size_t connected;
} attack_t;

/* ---- helpers ---------------------------------------------------------------------- */

/* stats.connections.FIELD, -1 when the node does not answer. */
static long long conn_stat(const cl_node_t *n, const char *field)
{
    json_t *st = cl_ask(n, "stats", NULL, 0);
    if (st == NULL)
        return -1;
    json_t *v = json_object_get(json_object_get(st, "connections"), field);
    long long out = json_is_integer(v) ? (long long)json_integer_value(v) : -2;
    json_decref(st);
    return out;
}

/* utime + stime of a process, in clock ticks. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    assert_non_null(p);
    long long utime = 0, stime = 0;
    /* after ") ": state, then fields 4..13, then utime (14) and stime (15) */
    int got = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime,
                     &stime);
    assert_int_equal(got, 2);
    return utime + stime;
}

/* One non-blocking connection from 127.0.0.`host` to 127.0.0.1:port. */
static int attack_open(int port, int host)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)host);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    int rc = connect(fd, (struct sockaddr *)&dst, sizeof(dst));
    assert_true(rc == 0 || errno == EINPROGRESS);
    return fd;
}

/* Open every connection, then send the header on each as it connects,
 * until all did or CONNECT_MS passed. */
static void attack_start(attack_t *a, int port)
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < ATTACK_CONNS; i++) {
        a->host[i] = i < ATTACK_FROM_ONE ? 1 : 2 + (i - ATTACK_FROM_ONE) % ATTACK_OTHER_HOSTS;
        a->fd[i] = attack_open(port, a->host[i]);
    }
    uint64_t deadline = cl_now_ms() + CONNECT_MS;
    struct pollfd pfd[ATTACK_CONNS];
    while (a->connected < ATTACK_CONNS && cl_now_ms() < deadline) {
        nfds_t n = 0;
        int which[ATTACK_CONNS];
        for (int i = 0; i < ATTACK_CONNS; i++)
            if (!a->sent[i]) {
                pfd[n] = (struct pollfd){.fd = a->fd[i], .events = POLLOUT};
                which[n++] = i;
            }
        if (poll(pfd, n, 100) <= 0)
            continue;
        for (nfds_t k = 0; k < n; k++) {
            if (!(pfd[k].revents & POLLOUT) || (pfd[k].revents & (POLLERR | POLLHUP)))
                continue;
            int i = which[k];
            a->sent[i] = send(a->fd[i], SP_HEADER, sizeof(SP_HEADER), MSG_NOSIGNAL) ==
                         (ssize_t)sizeof(SP_HEADER);
            a->connected += (size_t)a->sent[i];
        }
    }
}

/* Connections of the attack the node has not closed: *from_one of them from
 * 127.0.0.1. */
static size_t attack_alive(attack_t *a, size_t *from_one)
{
    size_t alive = 0;
    *from_one = 0;
    for (int i = 0; i < ATTACK_CONNS; i++) {
        if (!a->sent[i])
            continue;
        struct pollfd p = {.fd = a->fd[i], .events = POLLIN | POLLRDHUP};
        char buf[64];
        int closed = poll(&p, 1, 0) > 0 &&
                     ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
                      recv(a->fd[i], buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK) == 0);
        /* nanomsg's own header is readable on a live one: drain it */
        if (!closed && (p.revents & POLLIN))
            while (recv(a->fd[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
        alive += !closed;
        *from_one += !closed && a->host[i] == 1;
    }
    return alive;
}

static void attack_close(attack_t *a)
{
    for (int i = 0; i < ATTACK_CONNS; i++)
        if (a->fd[i] >= 0)
            close(a->fd[i]);
}

/* Wait until the node says it shut connections down for both reasons;
 * returns the ms it took. Fails saying whether it answered at all. */
static long wait_shed(const cl_node_t *n, int timeout_ms)
{
    uint64_t start = cl_now_ms();
    int answers = 0, asks = 0;
    while (cl_now_ms() - start < (uint64_t)timeout_ms) {
        long long per_addr = conn_stat(n, "shed_per_addr");
        asks++;
        answers += per_addr != -1;
        if (per_addr > 0 && conn_stat(n, "shed_total") > 0)
            return (long)(cl_now_ms() - start);
        cl_sleep_ms(CL_POLL_MS);
    }
    fail_msg("%s: no connections shed for both reasons within %d ms; its control socket "
             "answered %d of %d requests", n->name, timeout_ms, answers, asks);
    return -1;
}

/* `stats` STATS_ROUNDS times; fails unless each answers. Returns the
 * slowest answer in ms. */
static long stats_rounds(const cl_node_t *n)
{
    long slowest = 0;
    for (int i = 0; i < STATS_ROUNDS; i++) {
        char why[200] = "";
        uint64_t t0 = cl_now_ms();
        json_t *st = cl_ask(n, "stats", why, sizeof(why));
        long took = (long)(cl_now_ms() - t0);
        if (st == NULL)
            fail_msg("%s: stats round %d got no answer in %ld ms (%s)", n->name, i, took, why);
        json_decref(st);
        slowest = took > slowest ? took : slowest;
        cl_sleep_ms(50);
    }
    return slowest;
}

/* ringctl stats, text and JSON, name the connections shut. */
static void assert_ringctl_shows_sheds(cluster_t *c, const cl_node_t *n)
{
    cl_run_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    cl_run_prog(c, RINGCTL_PATH, (const char *const[]){"--node", n->control, "stats", NULL},
                10000, r);
    assert_int_equal(r->status, 0);
    const char *line = strstr(r->out, "\nconnections.shed_per_addr ");
    assert_non_null(line);
    assert_true(atoll(line + strlen("\nconnections.shed_per_addr ")) > 0);
    assert_non_null(strstr(r->out, "\nconnections.shed_total "));
    cl_run_prog(c, RINGCTL_PATH,
                (const char *const[]){"--json", "--node", n->control, "stats", NULL}, 10000,
                r);
    assert_int_equal(r->status, 0);
    json_t *st = json_loads(r->out, 0, NULL);
    assert_non_null(st);
    json_t *conns = json_object_get(st, "connections");
    assert_true(json_integer_value(json_object_get(conns, "shed_total")) > 0);
    assert_int_equal(json_integer_value(json_object_get(conns, "fd_limit")), FD_LIMIT);
    json_decref(st);
    free(r);
}

/* The open-files limit herdd runs with, as its guard reports it: the soft
 * limit it inherits from this test, raised to the hard one up to 65536
 * (FDGUARD_NOFILE_CAP), reported at most 2^22. */
static long long raised_limit(void)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    unsigned long long soft = rl.rlim_cur, hard = rl.rlim_max, cap = 65536;
    unsigned long long want = hard < cap ? hard : cap, most = 1ull << 22;
    unsigned long long limit = soft > want ? soft : want;
    return (long long)(limit > most ? most : limit); /* the guard's FDGUARD_MAX_FDS */
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_cluster_fds_held_connections_are_shed(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "a", NULL, NULL, NULL);
    struct rlimit rl = {FD_LIMIT, FD_LIMIT};
    assert_int_equal(prlimit(a->pid, RLIMIT_NOFILE, &rl, NULL), 0);
    uint64_t t0 = cl_now_ms();
    while (conn_stat(a, "fd_limit") != FD_LIMIT && cl_now_ms() - t0 < 3000)
        cl_sleep_ms(CL_POLL_MS); /* the guard reads the limit at every check */
    assert_int_equal(conn_stat(a, "fd_limit"), FD_LIMIT);

    static attack_t atk;
    uint64_t attack_at = cl_now_ms();
    attack_start(&atk, a->port);
    long connect_ms = (long)(cl_now_ms() - attack_at);
    fprintf(stderr, "fds: %zu of %d connections established in %ld ms\n", atk.connected,
            ATTACK_CONNS, connect_ms);
    assert_true(atk.connected > FD_LIMIT); /* more than the node could ever hold */

    long shed_ms = wait_shed(a, SHED_MS);
    assert_true(shed_ms >= 0);
    long slowest = stats_rounds(a);
    long long per_addr = conn_stat(a, "shed_per_addr"), total = conn_stat(a, "shed_total");
    long long limit_total = conn_stat(a, "limit_total"), inbound = conn_stat(a, "inbound");
    long long limit_per_addr = conn_stat(a, "limit_per_addr");
    fprintf(stderr, "fds: stats show sheds %ld ms after the connections; slowest of %d "
            "answers %ld ms; shed %lld per address, %lld in all; %lld inbound kept (limits "
            "%lld per address, %lld in all)\n", shed_ms, STATS_ROUNDS, slowest, per_addr,
            total, inbound, limit_per_addr, limit_total);
    assert_true(inbound >= limit_per_addr && inbound <= limit_total);
    assert_ringctl_shows_sheds(c, a);

    long long cpu0 = cpu_ticks(a->pid);
    cl_sleep_ms(CPU_WINDOW_MS);
    long long cpu1 = cpu_ticks(a->pid);
    double share = (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) /
                   (CPU_WINDOW_MS / 1000.0);
    fprintf(stderr, "fds: CPU over %d ms under the held connections: %.1f %% of a core\n",
            CPU_WINDOW_MS, 100.0 * share);
    assert_true(share < CPU_MAX_SHARE);

    /* A second node joins while the connections are held. */
    uint64_t b_at = cl_now_ms();
    cl_node_t *b = cl_start(c, "b", a, NULL, NULL);
    cl_node_t *both[] = {a, b};
    long join_ms = cl_wait_all_up(both, 2, JOIN_MS);
    fprintf(stderr, "fds: b started and joined a in %ld ms while the connections were held\n",
            (long)(cl_now_ms() - b_at));
    assert_true(join_ms >= 0);
    /* b's link takes a place of the test's, at a's next scans, under the
     * limits a has now (one more member, more descriptors of its own) */
    size_t from_one = 0, alive = 0;
    t0 = cl_now_ms();
    for (int settled = 0; !settled && cl_now_ms() - t0 < 3000; cl_sleep_ms(100)) {
        limit_total = conn_stat(a, "limit_total");
        limit_per_addr = conn_stat(a, "limit_per_addr");
        alive = attack_alive(&atk, &from_one);
        settled = alive + 1 <= (size_t)limit_total && from_one + 1 <= (size_t)limit_per_addr;
    }
    fprintf(stderr, "fds: the test's connections a kept: %zu, %zu of them from 127.0.0.1 "
            "(limits %lld in all, %lld per address)\n", alive, from_one, limit_total,
            limit_per_addr);
    assert_true(alive + 1 <= (size_t)limit_total);
    assert_true(from_one + 1 <= (size_t)limit_per_addr);
    assert_true(alive > 0); /* shed down to the limits, not beyond */
    assert_true(cl_wait_all_up(both, 2, JOIN_MS) >= 0);

    attack_close(&atk);
    t0 = cl_now_ms();
    while (conn_stat(a, "inbound") != 1 && cl_now_ms() - t0 < 5000)
        cl_sleep_ms(CL_POLL_MS);
    assert_int_equal(conn_stat(a, "inbound"), 1); /* b's link alone */
    assert_true(cl_wait_all_up(both, 2, JOIN_MS) >= 0);
    assert_true(cl_log_has(a, "over 16 per remote address"));
    cl_stop_all(c);
    cl_pass(c);
}

static void test_cluster_fds_member_links_never_shed(void **state)
{
    cluster_t *c = *state;
    cl_node_t *a = cl_start(c, "a", NULL, NULL, NULL);
    cl_node_t *b = cl_start(c, "b", a, NULL, NULL);
    cl_node_t *d = cl_start(c, "d", a, NULL, NULL);
    cl_node_t *all[] = {a, b, d};
    assert_true(cl_wait_all_up(all, 3, JOIN_MS) >= 0);
    for (size_t i = 0; i < 3; i++) {
        uint64_t t0 = cl_now_ms();
        while (conn_stat(all[i], "inbound") != 2 && cl_now_ms() - t0 < 5000)
            cl_sleep_ms(CL_POLL_MS);
        assert_int_equal(conn_stat(all[i], "inbound"), 2);
        assert_int_equal(conn_stat(all[i], "shed_per_addr"), 0);
        assert_int_equal(conn_stat(all[i], "shed_total"), 0);
        assert_true(conn_stat(all[i], "scans") > 0);
        assert_int_equal(conn_stat(all[i], "fd_limit"), raised_limit());
    }
    cl_stop_all(c);
    cl_pass(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_fds_held_connections_are_shed, cl_setup,
                                        cl_teardown),
        cmocka_unit_test_setup_teardown(test_cluster_fds_member_links_never_shed, cl_setup,
                                        cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
