/*
 * test_proc.c - unit tests for nodes and processes (runtime/herd_runtime.h):
 * spawning, pids, casts and sends, crashes, exits and exit signals, mailbox
 * limits, message size limits, node names, node shutdown and several nodes in
 * one program.
 *
 * One test behaviour ("rec") drives almost everything. Its messages are
 * commands (cmd_t): record the message, crash, exit itself, send an exit
 * signal, forward messages to another process, spawn a child. Every callback
 * appends an event to a global log, which the tests read back to check what
 * ran, in which order, with which sender, state and reason. The tests assert
 * the documented behaviour of the header, not what the implementation happens
 * to do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "herd_runtime.h"
#include "support.h"

/* ---- the log ------------------------------------------------------------ */

#define STATE_MAGIC 0x5ee7ab1eu
#define MAX_EVENTS 20000
#define TEXT_MAX 24

typedef struct ev {
    char what;     /* 'i' init, 'C' cast, 'I' info, 'T' terminate */
    uint64_t self; /* serial of the process */
    herd_pid_t from;
    int kind;
    uint64_t ref;
    int status;
    int reason; /* 'T' */
    void *state;
    size_t len;
    char text[TEXT_MAX];
} ev_t;

static ev_t g_ev[MAX_EVENTS];
static size_t g_nev;
static size_t g_terms;          /* terminate calls */
static size_t g_terms_shutdown; /* ... with HERD_REASON_SHUTDOWN */
static size_t g_inits;
#define MAX_RC 4096
static int g_rc[MAX_RC]; /* results of actions taken inside handlers */
static size_t g_nrc;
static herd_pid_t g_spawned;     /* 's' command's child */
static herd_node_t *g_free_node; /* node whose terminates may send (node free test) */

static void reset(void)
{
    memset(g_ev, 0, sizeof(g_ev));
    g_nev = 0;
    g_terms = g_terms_shutdown = g_inits = 0;
    memset(g_rc, 0, sizeof(g_rc));
    g_nrc = 0;
    g_spawned = HERD_PID_NONE;
    g_free_node = NULL;
}

static ev_t *log_ev(char what, const herd_proc_t *self)
{
    assert_true(g_nev < MAX_EVENTS);
    ev_t *e = &g_ev[g_nev++];
    memset(e, 0, sizeof(*e));
    e->what = what;
    e->self = herd_self(self).serial;
    return e;
}

static void log_rc(int rc)
{
    assert_true(g_nrc < MAX_RC);
    g_rc[g_nrc++] = rc;
}

static size_t count_ev(char what, uint64_t serial)
{
    size_t n = 0;
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].what == what && (serial == 0 || g_ev[i].self == serial)) n++;
    return n;
}

static const ev_t *find_ev(char what, uint64_t serial)
{
    for (size_t i = 0; i < g_nev; i++)
        if (g_ev[i].what == what && g_ev[i].self == serial) return &g_ev[i];
    return NULL;
}

/* ---- the "rec" behaviour ------------------------------------------------ */

typedef struct tstate {
    uint32_t magic;
    size_t arg_len;
    uint8_t arg[64];
    herd_pid_t pid;
    int handled;
} tstate_t;

typedef struct cmd {
    char op;        /* 'r' record, 'c' crash, 'x' exit self, 'k' exit other,
                       'f' forward, 's' spawn, 't' set trap_exit */
    int reason;     /* 'c': the crash code; 'x', 'k': the exit reason */
    herd_pid_t pid; /* 'k', 'f': the target */
    int count;      /* 'f': how many casts and sends, interleaved */
    char text[TEXT_MAX];
} cmd_t;

static const herd_behaviour_t rec_beh;

static int rec_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    g_inits++;
    ev_t *e = log_ev('i', self);
    e->len = len;
    if (len > 0) {
        assert_non_null(arg);
        memcpy(e->text, arg, len < TEXT_MAX ? len : TEXT_MAX);
    }
    if (len >= 4 && memcmp(arg, "fail", 4) == 0) {
        if (len >= 9 && memcmp(arg, "failtimer", 9) == 0) {
            uint64_t t;
            log_rc(
                herd_send_after(herd_proc_node(self), herd_self(self), 5, "boo", 3, &t));
        }
        return HERD_ERANGE;
    }
    tstate_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->magic = STATE_MAGIC;
    s->arg_len = len < sizeof(s->arg) ? len : sizeof(s->arg);
    if (len > 0) memcpy(s->arg, arg, s->arg_len);
    s->pid = herd_self(self);
    if (len == 4 && memcmp(arg, "trap", 4) == 0) herd_set_trap_exit(self, 1);
    e->state = s;
    *state = s;
    return 0;
}

static int rec_handle(herd_proc_t *self, void *state, const herd_msg_t *msg, char what)
{
    tstate_t *s = state;
    assert_non_null(s);
    assert_int_equal(s->magic, STATE_MAGIC);
    assert_true(herd_pid_equal(s->pid, herd_self(self)));
    s->handled++;

    ev_t *e = log_ev(what, self);
    e->from = msg->from;
    e->kind = (int)msg->kind;
    e->ref = msg->ref;
    e->status = msg->status;
    e->state = state;
    e->len = msg->len;
    if (msg->kind != HERD_MSG_CAST && msg->kind != HERD_MSG_INFO)
        return 0; /* EXIT, DOWN, REPLY: recorded only */
    if (msg->len != sizeof(cmd_t)) {
        memcpy(e->text, msg->data, msg->len < TEXT_MAX ? msg->len : TEXT_MAX);
        return 0;
    }
    cmd_t c;
    memcpy(&c, msg->data, sizeof(c));
    memcpy(e->text, c.text, TEXT_MAX);
    herd_node_t *node = herd_proc_node(self);
    switch (c.op) {
    case 'c':
        return c.reason;
    case 'x':
        log_rc(herd_exit(node, herd_self(self), c.reason));
        return 0;
    case 'k':
        log_rc(herd_exit(node, c.pid, c.reason));
        return 0;
    case 'f':
        for (int i = 0; i < c.count; i++) {
            cmd_t m = {.op = 'r'};
            snprintf(m.text, TEXT_MAX, "c%d", i);
            log_rc(herd_cast(self, c.pid, &m, sizeof(m)));
            snprintf(m.text, TEXT_MAX, "s%d", i);
            log_rc(herd_send(self, c.pid, &m, sizeof(m)));
        }
        return 0;
    case 's': {
        herd_spawn_opts_t o = {.behaviour = &rec_beh, .arg = "child", .arg_len = 5};
        log_rc(herd_spawn(node, &o, &g_spawned));
        return 0;
    }
    case 't':
        herd_set_trap_exit(self, c.reason);
        return 0;
    default:
        return 0;
    }
}

static int rec_cast(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    assert_int_equal(msg->kind, HERD_MSG_CAST);
    return rec_handle(self, state, msg, 'C');
}

static int rec_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    assert_true(msg->kind != HERD_MSG_CAST && msg->kind != HERD_MSG_CALL);
    return rec_handle(self, state, msg, 'I');
}

static void rec_terminate(herd_proc_t *self, void *state, int reason)
{
    tstate_t *s = state;
    assert_non_null(s);
    assert_int_equal(s->magic, STATE_MAGIC);
    ev_t *e = log_ev('T', self);
    e->reason = reason;
    e->state = state;
    g_terms++;
    if (reason == HERD_REASON_SHUTDOWN) g_terms_shutdown++;
    if (g_free_node != NULL) {
        /* While the node shuts down, send to the process spawned right
         * before this one: it may already be gone, which must be an error,
         * not a use of freed memory. */
        herd_pid_t other = s->pid;
        other.serial = other.serial > 1 ? other.serial - 1 : other.serial + 1;
        cmd_t m = {.op = 'r', .text = "bye"};
        int rc = herd_cast(self, other, &m, sizeof(m));
        assert_true(rc == 0 || rc == HERD_ENOPROC);
    }
    s->magic = 0;
    free(s);
}

static const herd_behaviour_t rec_beh = {
    .name = "rec",
    .init = rec_init,
    .handle_cast = rec_cast,
    .handle_info = rec_info,
    .terminate = rec_terminate,
};

/* ---- helpers ------------------------------------------------------------ */

/* Nodes come from the shared support (support.h); this file's default seed. */
static herd_node_t *mknode_cfg(herd_node_config_t cfg)
{
    if (cfg.seed == 0) cfg.seed = 12345;
    return ts_node_new(&cfg);
}

static herd_node_t *mknode(const char *name)
{
    return mknode_cfg((herd_node_config_t){.name = name});
}

static herd_pid_t spawn_arg(herd_node_t *n, const char *arg)
{
    herd_pid_t p = ts_spawn(n, &rec_beh, arg, arg ? strlen(arg) : 0);
    assert_false(herd_pid_is_none(p));
    return p;
}

static herd_pid_t spawn_rec(herd_node_t *n)
{
    return spawn_arg(n, "x");
}

static cmd_t mk(char op, const char *text)
{
    cmd_t c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    if (text) snprintf(c.text, TEXT_MAX, "%s", text);
    return c;
}

static void cast_cmd(herd_node_t *n, herd_pid_t to, cmd_t c)
{
    assert_int_equal(herd_node_cast(n, to, &c, sizeof(c)), 0);
}

static void send_cmd(herd_node_t *n, herd_pid_t to, cmd_t c)
{
    assert_int_equal(herd_node_send(n, to, &c, sizeof(c)), 0);
}

/* ---- pids and names ----------------------------------------------------- */

static void test_proc_pid_helpers(void **st)
{
    (void)st;
    herd_pid_t a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 9, 3}, e = {7, 2, 3};
    assert_true(herd_pid_equal(a, b));
    assert_false(herd_pid_equal(a, c));
    assert_false(herd_pid_equal(a, d));
    assert_false(herd_pid_equal(a, e));
    assert_true(herd_pid_is_none(HERD_PID_NONE));
    assert_false(herd_pid_is_none(a));
    assert_false(herd_pid_is_none((herd_pid_t){0, 0, 1}));
}

static void test_proc_node_new_bad_names(void **st)
{
    (void)st;
    static const char *const bad[] = {"",          "a b",   "a/b", "a:b",
                                      "n\xc3\xbc", "tab\t", "a@b", "x\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        herd_node_t *n = NULL;
        herd_node_config_t cfg = {.name = bad[i]};
        assert_int_equal(herd_node_new(&cfg, &n), HERD_EBADNAME);
    }
    char name[80];
    memset(name, 'a', sizeof(name));
    name[65] = '\0'; /* 65 characters */
    herd_node_t *n = NULL;
    herd_node_config_t cfg = {.name = name};
    assert_int_equal(herd_node_new(&cfg, &n), HERD_ENAMETOOLONG);
    name[64] = '\0'; /* 64 characters: the longest valid name */
    assert_int_equal(herd_node_new(&cfg, &n), 0);
    ts_track(n);
    assert_string_equal(herd_node_name(n), name);
    ts_node_free(n);
    /* every allowed character */
    cfg.name = "AZaz09_.-";
    n = NULL;
    assert_int_equal(herd_node_new(&cfg, &n), 0);
    ts_track(n);
    assert_string_equal(herd_node_name(n), "AZaz09_.-");
    ts_node_free(n);
    cfg.name = "z";
    n = NULL;
    assert_int_equal(herd_node_new(&cfg, &n), 0);
    ts_track(n);
    ts_node_free(n);
}

static void test_proc_node_identity(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode_cfg((herd_node_config_t){.name = "t1", .incarnation = 777});
    assert_string_equal(herd_node_name(n), "t1");
    assert_int_equal(herd_node_incarnation(n), 777);
    assert_int_equal(herd_node_id_of("t1"), herd_node_id_of("t1"));
    assert_true(herd_node_id_of("t1") != herd_node_id_of("t2"));
    assert_non_null(herd_node_loop(n));
    assert_int_equal(herd_node_process_count(n), 0);
    uint64_t a = herd_node_now(n), b = herd_node_now(n);
    assert_true(b >= a);
    herd_pid_t p = spawn_rec(n);
    assert_int_equal(p.node, herd_node_id_of("t1"));
    assert_int_equal(p.incarnation, 777);
    assert_true(p.serial != 0);
    ts_node_free(n);
}

/* Without one given, the incarnation is made up (start time and random bits)
 * and unique per start: two nodes of one name alive at once, or a node freed
 * and started again at once, never share one, or old pids would name new
 * processes. Seed 0: the random source comes from time and pid. */
static void test_proc_node_incarnation_unique_per_start(void **st)
{
    (void)st;
    herd_node_config_t cfg = {.name = "t1"};
    herd_node_t *n1 = NULL, *n2 = NULL;
    assert_int_equal(herd_node_new(&cfg, &n1), 0);
    ts_track(n1);
    assert_int_equal(herd_node_new(&cfg, &n2), 0);
    ts_track(n2);
    assert_true(herd_node_incarnation(n1) != 0);
    assert_true(herd_node_incarnation(n1) != herd_node_incarnation(n2));
    ts_node_free(n1);
    ts_node_free(n2);

    /* restarts in quick succession */
    enum { STARTS = 20 };
    uint64_t inc[STARTS];
    for (int i = 0; i < STARTS; i++) {
        herd_node_t *n = NULL;
        assert_int_equal(herd_node_new(&cfg, &n), 0);
        ts_track(n);
        inc[i] = herd_node_incarnation(n);
        ts_node_free(n);
        assert_true(inc[i] != 0);
        for (int j = 0; j < i; j++)
            assert_true(inc[j] != inc[i]);
    }
}

static void test_proc_node_random_is_seeded(void **st)
{
    (void)st;
    herd_node_t *a = mknode_cfg((herd_node_config_t){.name = "t1", .seed = 99});
    herd_node_t *b = mknode_cfg((herd_node_config_t){.name = "t2", .seed = 99});
    herd_node_t *c = mknode_cfg((herd_node_config_t){.name = "t3", .seed = 100});
    int differs = 0, varies = 0;
    uint64_t prev = 0;
    for (int i = 0; i < 16; i++) {
        uint64_t x = herd_node_random(a), y = herd_node_random(b),
                 z = herd_node_random(c);
        assert_int_equal(x, y);
        differs |= x != z;
        varies |= i > 0 && x != prev;
        prev = x;
    }
    assert_true(differs);
    assert_true(varies);
    ts_node_free(a);
    ts_node_free(b);
    ts_node_free(c);
}

static void test_proc_reason_name(void **st)
{
    (void)st;
    assert_string_equal(herd_reason_name(HERD_REASON_NORMAL), "normal");
    assert_string_equal(herd_reason_name(HERD_REASON_SHUTDOWN), "shutdown");
    assert_string_equal(herd_reason_name(HERD_REASON_KILLED), "killed");
    assert_string_equal(herd_reason_name(HERD_REASON_NOPROC), "noproc");
    assert_string_equal(herd_reason_name(HERD_REASON_NOCONNECTION), "noconnection");
    assert_string_equal(herd_reason_name(HERD_REASON_NAME_CONFLICT), "name_conflict");
    assert_string_equal(herd_reason_name(HERD_REASON_HANDOFF), "handoff");
    assert_string_equal(herd_reason_name(HERD_REASON_MAX_RESTARTS), "max_restarts");
    assert_string_equal(herd_reason_name(HERD_ETIMEDOUT), "crash:ETIMEDOUT");
    assert_string_equal(herd_reason_name(HERD_EIO), "crash:EIO");
    assert_string_equal(herd_reason_name(HERD_ENOPROC), "crash:ENOPROC");
    assert_non_null(herd_reason_name(1000));
    assert_non_null(herd_reason_name(-1000));
}

/* ---- spawning ----------------------------------------------------------- */

static void test_proc_spawn_init_sees_arg_and_state(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    static const uint8_t arg[] = {'h', 'i', 0, 'y', 'o', 0xff, 0};
    herd_spawn_opts_t o = {.behaviour = &rec_beh, .arg = arg, .arg_len = sizeof(arg)};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    /* init ran before spawn returned, as this process, with the arg bytes */
    assert_int_equal(g_inits, 1);
    assert_int_equal(g_ev[0].what, 'i');
    assert_int_equal(g_ev[0].self, p.serial);
    assert_int_equal(g_ev[0].len, sizeof(arg));
    assert_memory_equal(g_ev[0].text, arg, sizeof(arg));
    tstate_t *s = g_ev[0].state;
    assert_memory_equal(s->arg, arg, sizeof(arg));
    assert_true(herd_pid_equal(s->pid, p));
    assert_true(herd_is_alive(n, p));
    assert_int_equal(herd_node_process_count(n), 1);

    /* the handlers get init's state */
    cast_cmd(n, p, mk('r', "one"));
    send_cmd(n, p, mk('r', "two"));
    ts_run(n);
    assert_int_equal(g_nev, 3);
    assert_ptr_equal(g_ev[1].state, s);
    assert_ptr_equal(g_ev[2].state, s);
    assert_int_equal(s->handled, 2);

    /* an empty arg */
    herd_spawn_opts_t o2 = {.behaviour = &rec_beh};
    herd_pid_t q = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o2, &q), 0);
    assert_int_equal(g_ev[3].what, 'i');
    assert_int_equal(g_ev[3].len, 0);
    assert_int_equal(((tstate_t *)g_ev[3].state)->arg_len, 0);
    assert_int_equal(herd_node_process_count(n), 2);

    /* terminate gets the same state too (node free: shutdown) */
    ts_node_free(n);
    const ev_t *t = find_ev('T', p.serial);
    assert_non_null(t);
    assert_ptr_equal(t->state, s);
    assert_int_equal(t->reason, HERD_REASON_SHUTDOWN);
    assert_int_equal(g_terms, 2);
}

static void test_proc_spawn_bad_args(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, NULL, &p), HERD_EINVAL);
    herd_spawn_opts_t o = {.behaviour = NULL};
    assert_int_equal(herd_spawn(n, &o, &p), HERD_EINVAL);
    assert_int_equal(herd_node_process_count(n), 0);
    assert_int_equal(g_inits, 0);

    /* a link to a pid that is not alive */
    herd_pid_t dead = spawn_rec(n);
    assert_int_equal(herd_exit(n, dead, HERD_REASON_KILLED), 0);
    ts_run(n);
    assert_false(herd_is_alive(n, dead));
    herd_spawn_opts_t ol = {
        .behaviour = &rec_beh, .arg = "x", .arg_len = 1, .link = dead};
    assert_int_equal(herd_spawn(n, &ol, &p), HERD_ENOPROC);
    assert_int_equal(herd_node_process_count(n), 0);
    assert_int_equal(g_terms, 1); /* only the killed one */
    ts_node_free(n);
}

/* A behaviour without handlers: messages are dropped, state stays NULL. */
static const herd_behaviour_t bare_beh = {.name = "bare"};

static void test_proc_missing_handlers_drop_messages(void **st)
{
    (void)st;
    herd_node_t *n = mknode("t1");
    herd_spawn_opts_t o = {.behaviour = &bare_beh};
    herd_pid_t p;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    assert_int_equal(herd_node_cast(n, p, "a", 1), 0);
    assert_int_equal(herd_node_send(n, p, "b", 1), 0);
    ts_run(n);
    assert_true(herd_is_alive(n, p));
    assert_int_equal(herd_exit(n, p, HERD_REASON_SHUTDOWN), 0);
    ts_run(n);
    assert_false(herd_is_alive(n, p));
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
}

static void test_proc_init_failure_leaves_nothing(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t keep = spawn_rec(n);
    size_t before = herd_node_process_count(n);
    assert_int_equal(before, 1);

    herd_spawn_opts_t o = {.behaviour = &rec_beh, .arg = "fail", .arg_len = 4};
    herd_pid_t p = HERD_PID_NONE;
    assert_int_equal(herd_spawn(n, &o, &p), HERD_ERANGE);
    assert_int_equal(herd_node_process_count(n), before);
    assert_int_equal(g_inits, 2);
    /* the pid init saw is not alive, and never gets terminate */
    uint64_t failed = g_ev[1].self;
    assert_true(failed != 0);
    herd_pid_t fp = keep;
    fp.serial = failed;
    assert_false(herd_is_alive(n, fp));
    assert_int_equal(herd_node_send(n, fp, "z", 1), HERD_ENOPROC);

    /* an init that armed a timer to itself before failing: nothing fires,
     * nothing breaks */
    herd_spawn_opts_t o2 = {.behaviour = &rec_beh, .arg = "failtimer", .arg_len = 9};
    assert_int_equal(herd_spawn(n, &o2, &p), HERD_ERANGE);
    assert_int_equal(g_nrc, 1);
    assert_int_equal(g_rc[0], 0);
    assert_int_equal(herd_node_process_count(n), before);
    assert_true(herd_node_run_for(n, 100) >= 0);
    assert_int_equal(g_terms, 0);
    assert_int_equal(g_nev, 3); /* three inits, nothing else */

    /* the node still works */
    cast_cmd(n, keep, mk('r', "ok"));
    ts_run(n);
    assert_int_equal(count_ev('C', keep.serial), 1);
    ts_node_free(n);
    assert_int_equal(g_terms, 1);
}

static void test_proc_pids_never_reused(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    enum { ROUNDS = 20, BATCH = 100 };
    static herd_pid_t all[ROUNDS * BATCH];
    uint64_t last = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++) {
            herd_pid_t p = spawn_rec(n);
            assert_true(p.serial > last); /* serials only grow */
            last = p.serial;
            all[r * BATCH + i] = p;
        }
        /* half exit by themselves, half are killed */
        for (int i = 0; i < BATCH; i++) {
            herd_pid_t p = all[r * BATCH + i];
            if (i % 2)
                cast_cmd(n, p, mk('x', NULL));
            else
                assert_int_equal(herd_exit(n, p, HERD_REASON_KILLED), 0);
        }
        ts_run(n);
        assert_int_equal(herd_node_process_count(n), 0);
    }
    assert_int_equal(g_terms, ROUNDS * BATCH);
    for (int i = 0; i < ROUNDS * BATCH; i++) {
        assert_false(herd_is_alive(n, all[i]));
        assert_int_equal(herd_node_send(n, all[i], "z", 1), HERD_ENOPROC);
    }
    ts_node_free(n);
}

static void test_proc_spawn_from_handler(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t p = spawn_rec(n);
    cast_cmd(n, p, mk('s', NULL));
    ts_run(n);
    assert_int_equal(g_nrc, 1);
    assert_int_equal(g_rc[0], 0);
    assert_true(g_spawned.serial > p.serial);
    assert_true(herd_is_alive(n, g_spawned));
    assert_int_equal(herd_node_process_count(n), 2);
    cast_cmd(n, g_spawned, mk('r', "hi"));
    ts_run(n);
    assert_int_equal(count_ev('C', g_spawned.serial), 1);
    ts_node_free(n);
    assert_int_equal(g_terms, 2);
}

/* ---- messages ----------------------------------------------------------- */

static void test_proc_cast_and_send_in_order(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t p = spawn_rec(n);
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        char t[TEXT_MAX];
        snprintf(t, sizeof(t), "m%d", i);
        if (i % 3 == 0)
            send_cmd(n, p, mk('r', t));
        else
            cast_cmd(n, p, mk('r', t));
    }
    /* nothing runs before the loop does */
    assert_int_equal(g_nev, 1);
    ts_run(n);
    assert_int_equal(g_nev, 1 + N);
    for (int i = 0; i < N; i++) {
        const ev_t *e = &g_ev[1 + i];
        char t[TEXT_MAX];
        snprintf(t, sizeof(t), "m%d", i);
        assert_string_equal(e->text, t);
        assert_int_equal(e->self, p.serial);
        assert_int_equal(e->what, i % 3 == 0 ? 'I' : 'C');
        assert_int_equal(e->kind, i % 3 == 0 ? HERD_MSG_INFO : HERD_MSG_CAST);
        assert_int_equal(e->from.serial, 0); /* code outside processes */
        assert_int_equal(e->ref, 0);
        assert_int_equal(e->status, 0);
        assert_int_equal(e->len, sizeof(cmd_t));
    }
    ts_node_free(n);
}

static void test_proc_process_to_process_order_and_sender(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t a = spawn_rec(n), b = spawn_rec(n);
    cmd_t f = mk('f', NULL);
    f.pid = b;
    f.count = 30;
    cast_cmd(n, a, f);
    ts_run(n);
    assert_int_equal(g_nrc, 60);
    for (size_t i = 0; i < g_nrc; i++)
        assert_int_equal(g_rc[i], 0);
    /* b got c0 s0 c1 s1 ... in order, each from a */
    int k = 0;
    for (size_t i = 0; i < g_nev; i++) {
        const ev_t *e = &g_ev[i];
        if (e->self != b.serial || (e->what != 'C' && e->what != 'I')) continue;
        char t[TEXT_MAX];
        snprintf(t, sizeof(t), "%c%d", k % 2 ? 's' : 'c', k / 2);
        assert_string_equal(e->text, t);
        assert_int_equal(e->what, k % 2 ? 'I' : 'C');
        assert_true(herd_pid_equal(e->from, a));
        k++;
    }
    assert_int_equal(k, 60);
    ts_node_free(n);
}

static void test_proc_send_to_dead_or_unknown_pid(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t a = spawn_rec(n), dead = spawn_rec(n);
    assert_int_equal(herd_exit(n, dead, HERD_REASON_KILLED), 0);
    ts_run(n);
    assert_false(herd_is_alive(n, dead));
    cmd_t c = mk('r', "z");
    assert_int_equal(herd_node_send(n, dead, &c, sizeof(c)), HERD_ENOPROC);
    assert_int_equal(herd_node_cast(n, dead, &c, sizeof(c)), HERD_ENOPROC);

    herd_pid_t never = a;
    never.serial = 1000000;
    assert_int_equal(herd_node_send(n, never, &c, sizeof(c)), HERD_ENOPROC);
    assert_int_equal(herd_node_cast(n, never, &c, sizeof(c)), HERD_ENOPROC);
    assert_false(herd_is_alive(n, never));

    /* a's serial, but another incarnation or another node: not a */
    herd_pid_t other_inc = a, other_node = a;
    other_inc.incarnation ^= 1;
    other_node.node = herd_node_id_of("elsewhere");
    assert_int_equal(herd_node_send(n, other_inc, &c, sizeof(c)), HERD_ENOPROC);
    /* another node, and this one is in no cluster: that node is unreachable */
    assert_int_equal(herd_node_cast(n, other_node, &c, sizeof(c)), HERD_ENOTCONN);
    assert_false(herd_is_alive(n, other_inc));
    assert_false(herd_is_alive(n, other_node));

    /* the same from inside a process */
    cmd_t f = mk('f', NULL);
    f.pid = dead;
    f.count = 1;
    cast_cmd(n, a, f);
    f.pid = never;
    cast_cmd(n, a, f);
    ts_run(n);
    assert_int_equal(g_nrc, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g_rc[i], HERD_ENOPROC);
    /* a got only its two commands */
    assert_int_equal(count_ev('C', a.serial), 2);
    assert_int_equal(count_ev('I', a.serial), 0);
    ts_node_free(n);
}

static void test_proc_mailbox_full(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_spawn_opts_t o = {
        .behaviour = &rec_beh, .arg = "x", .arg_len = 1, .mailbox_limit = 3};
    herd_pid_t p;
    assert_int_equal(herd_spawn(n, &o, &p), 0);
    send_cmd(n, p, mk('r', "m0"));
    cast_cmd(n, p, mk('r', "m1"));
    send_cmd(n, p, mk('r', "m2"));
    cmd_t over = mk('r', "over");
    assert_int_equal(herd_node_send(n, p, &over, sizeof(over)), HERD_EFULL);
    assert_int_equal(herd_node_cast(n, p, &over, sizeof(over)), HERD_EFULL);
    assert_int_equal(herd_node_send(n, p, &over, sizeof(over)), HERD_EFULL);
    ts_run(n);
    assert_int_equal(g_nev, 4);
    assert_string_equal(g_ev[1].text, "m0");
    assert_string_equal(g_ev[2].text, "m1");
    assert_string_equal(g_ev[3].text, "m2");
    assert_true(herd_is_alive(n, p)); /* a full mailbox is not a crash */

    /* drained: sends succeed again, up to the limit */
    send_cmd(n, p, mk('r', "m3"));
    send_cmd(n, p, mk('r', "m4"));
    cast_cmd(n, p, mk('r', "m5"));
    assert_int_equal(herd_node_cast(n, p, &over, sizeof(over)), HERD_EFULL);
    ts_run(n);
    assert_int_equal(g_nev, 7);
    assert_string_equal(g_ev[4].text, "m3");
    assert_string_equal(g_ev[5].text, "m4");
    assert_string_equal(g_ev[6].text, "m5");
    for (size_t i = 0; i < g_nev; i++)
        assert_string_not_equal(g_ev[i].text, "over");
    ts_node_free(n);
}

/* A process that sends to a full mailbox gets HERD_EFULL: the receiver
 * cannot run while the sender's handler is on the stack. */
static void test_proc_mailbox_full_from_process(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t a = spawn_rec(n);
    herd_spawn_opts_t o = {
        .behaviour = &rec_beh, .arg = "x", .arg_len = 1, .mailbox_limit = 4};
    herd_pid_t b;
    assert_int_equal(herd_spawn(n, &o, &b), 0);
    cmd_t f = mk('f', NULL);
    f.pid = b;
    f.count = 3; /* c0 s0 c1 s1 c2 s2: the last two do not fit */
    cast_cmd(n, a, f);
    ts_run(n);
    assert_int_equal(g_nrc, 6);
    assert_int_equal(g_rc[0], 0);
    assert_int_equal(g_rc[1], 0);
    assert_int_equal(g_rc[2], 0);
    assert_int_equal(g_rc[3], 0);
    assert_int_equal(g_rc[4], HERD_EFULL);
    assert_int_equal(g_rc[5], HERD_EFULL);
    assert_int_equal(count_ev('C', b.serial) + count_ev('I', b.serial), 4);
    ts_node_free(n);
}

/* The node's default limit applies when the spawn gives none. */
static void test_proc_mailbox_node_default_limit(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode_cfg((herd_node_config_t){.name = "t1", .mailbox_limit = 2});
    herd_pid_t p = spawn_rec(n);
    send_cmd(n, p, mk('r', "a"));
    send_cmd(n, p, mk('r', "b"));
    cmd_t c = mk('r', "c");
    assert_int_equal(herd_node_send(n, p, &c, sizeof(c)), HERD_EFULL);
    ts_run(n);
    assert_int_equal(count_ev('I', p.serial), 2);
    ts_node_free(n);
}

static void test_proc_message_too_big(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode_cfg((herd_node_config_t){.name = "t1", .max_message = 100});
    herd_pid_t p = spawn_rec(n);
    uint8_t buf[101];
    memset(buf, 'q', sizeof(buf));
    assert_int_equal(herd_node_send(n, p, buf, 101), HERD_ETOOBIG);
    assert_int_equal(herd_node_cast(n, p, buf, 101), HERD_ETOOBIG);
    assert_int_equal(herd_node_send(n, p, buf, 100), 0);
    assert_int_equal(herd_node_cast(n, p, buf, 1), 0);
    assert_int_equal(herd_node_send(n, p, NULL, 0), 0); /* empty messages are fine */
    ts_run(n);
    assert_int_equal(count_ev('I', p.serial), 2);
    assert_int_equal(count_ev('C', p.serial), 1);
    assert_int_equal(g_ev[1].len, 100);
    assert_int_equal(g_ev[2].len, 1);
    assert_int_equal(g_ev[3].len, 0);
    ts_node_free(n);

    /* the default limit */
    reset();
    n = mknode("t2");
    p = spawn_rec(n);
    uint8_t *big = calloc(1, HERD_DEFAULT_MAX_MESSAGE + 1);
    assert_non_null(big);
    assert_int_equal(herd_node_send(n, p, big, HERD_DEFAULT_MAX_MESSAGE + 1),
                     HERD_ETOOBIG);
    assert_int_equal(herd_node_send(n, p, big, HERD_DEFAULT_MAX_MESSAGE), 0);
    ts_run(n);
    assert_int_equal(count_ev('I', p.serial), 1);
    assert_int_equal(g_ev[1].len, HERD_DEFAULT_MAX_MESSAGE);
    free(big);
    ts_node_free(n);
}

/* ---- crashes and exits -------------------------------------------------- */

static void test_proc_handler_error_crashes_process(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t a = spawn_rec(n), b = spawn_rec(n), c = spawn_rec(n);
    cmd_t crash = mk('c', "boom");
    crash.reason = HERD_EIO;
    cast_cmd(n, a, mk('r', "before"));
    cast_cmd(n, a, crash);
    cast_cmd(n, a, mk('r', "after")); /* queued behind the crash: never handled */
    cast_cmd(n, b, mk('r', "b1"));
    cmd_t crash2 = mk('c', "boom2");
    crash2.reason = HERD_ETIMEDOUT;
    send_cmd(n, c, crash2); /* from handle_info */
    cast_cmd(n, b, mk('r', "b2"));
    ts_run(n);

    const ev_t *t = find_ev('T', a.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_EIO);
    assert_int_equal(count_ev('T', a.serial), 1);
    assert_int_equal(count_ev('C', a.serial), 2); /* before, boom */
    assert_false(herd_is_alive(n, a));
    cmd_t r = mk('r', "late");
    assert_int_equal(herd_node_cast(n, a, &r, sizeof(r)), HERD_ENOPROC);

    t = find_ev('T', c.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_ETIMEDOUT);
    assert_false(herd_is_alive(n, c));

    /* b is not disturbed */
    assert_true(herd_is_alive(n, b));
    assert_int_equal(count_ev('C', b.serial), 2);
    assert_int_equal(count_ev('T', b.serial), 0);
    assert_int_equal(herd_node_process_count(n), 1);
    cast_cmd(n, b, mk('r', "b3"));
    ts_run(n);
    assert_int_equal(count_ev('C', b.serial), 3);
    ts_node_free(n);
    assert_int_equal(g_terms, 3);
}

static void test_proc_exit_self(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t a = spawn_rec(n), b = spawn_rec(n);
    cmd_t x = mk('x', "bye");
    x.reason = HERD_REASON_NORMAL;
    cast_cmd(n, a, x);
    cast_cmd(n, a, mk('r', "after")); /* exits when the handler returns */
    x.reason = HERD_REASON_SHUTDOWN;
    send_cmd(n, b, x);
    ts_run(n);
    assert_int_equal(g_nrc, 2);
    assert_int_equal(g_rc[0], 0);
    assert_int_equal(g_rc[1], 0);
    const ev_t *t = find_ev('T', a.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_REASON_NORMAL);
    assert_int_equal(count_ev('C', a.serial), 1);
    t = find_ev('T', b.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_REASON_SHUTDOWN);
    assert_false(herd_is_alive(n, a));
    assert_false(herd_is_alive(n, b));
    assert_int_equal(herd_node_process_count(n), 0);
    ts_node_free(n);
    assert_int_equal(g_terms, 2);
}

static void test_proc_exit_other_from_outside(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t plain = spawn_rec(n), trap = spawn_arg(n, "trap"), normal = spawn_rec(n);
    herd_pid_t crashy = spawn_rec(n);
    herd_spawn_opts_t o = {
        .behaviour = &rec_beh, .arg = "x", .arg_len = 1, .trap_exit = 1};
    herd_pid_t trap2;
    assert_int_equal(herd_spawn(n, &o, &trap2), 0);

    assert_int_equal(herd_exit(n, plain, HERD_REASON_SHUTDOWN), 0);
    assert_int_equal(herd_exit(n, trap, HERD_REASON_SHUTDOWN), 0);
    assert_int_equal(herd_exit(n, trap2, HERD_REASON_SHUTDOWN), 0);
    assert_int_equal(herd_exit(n, normal, HERD_REASON_NORMAL), 0);
    assert_int_equal(herd_exit(n, crashy, HERD_EIO), 0);
    ts_run(n);

    /* not trapping: exits with the signal's reason */
    const ev_t *t = find_ev('T', plain.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_REASON_SHUTDOWN);
    assert_false(herd_is_alive(n, plain));
    t = find_ev('T', crashy.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_EIO);
    assert_false(herd_is_alive(n, crashy));

    /* trapping (set in init, or by the spawn option): a message instead */
    herd_pid_t traps[2] = {trap, trap2};
    for (int i = 0; i < 2; i++) {
        assert_true(herd_is_alive(n, traps[i]));
        assert_int_equal(count_ev('T', traps[i].serial), 0);
        const ev_t *e = find_ev('I', traps[i].serial);
        assert_non_null(e);
        assert_int_equal(e->kind, HERD_MSG_EXIT);
        assert_int_equal(e->status, HERD_REASON_SHUTDOWN);
    }

    /* normal does not kill another process */
    assert_true(herd_is_alive(n, normal));
    assert_int_equal(count_ev('T', normal.serial), 0);
    cast_cmd(n, normal, mk('r', "still here"));
    ts_run(n);
    assert_int_equal(count_ev('C', normal.serial), 1);

    /* killed cannot be trapped */
    assert_int_equal(herd_exit(n, trap, HERD_REASON_KILLED), 0);
    ts_run(n);
    t = find_ev('T', trap.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_REASON_KILLED);
    assert_false(herd_is_alive(n, trap));

    /* dead and unknown pids */
    assert_int_equal(herd_exit(n, plain, HERD_REASON_KILLED), HERD_ENOPROC);
    herd_pid_t never = plain;
    never.serial = 999999;
    assert_int_equal(herd_exit(n, never, HERD_REASON_KILLED), HERD_ENOPROC);
    assert_int_equal(herd_node_process_count(n), 2); /* normal, trap2 */
    ts_node_free(n);
    assert_int_equal(g_terms, 5);
}

/* herd_set_trap_exit works from a handler too, and can be turned off. */
static void test_proc_set_trap_exit_from_handler(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t on = spawn_rec(n), off = spawn_rec(n);
    cmd_t t = mk('t', NULL);
    t.reason = 1;
    cast_cmd(n, on, t);
    cast_cmd(n, off, t);
    t.reason = 0;
    cast_cmd(n, off, t);
    ts_run(n);
    assert_int_equal(herd_exit(n, on, HERD_REASON_SHUTDOWN), 0);
    assert_int_equal(herd_exit(n, off, HERD_REASON_SHUTDOWN), 0);
    ts_run(n);
    assert_true(herd_is_alive(n, on));
    const ev_t *e = find_ev('I', on.serial);
    assert_non_null(e);
    assert_int_equal(e->kind, HERD_MSG_EXIT);
    assert_int_equal(e->status, HERD_REASON_SHUTDOWN);
    assert_false(herd_is_alive(n, off));
    e = find_ev('T', off.serial);
    assert_non_null(e);
    assert_int_equal(e->reason, HERD_REASON_SHUTDOWN);
    ts_node_free(n);
    assert_int_equal(g_terms, 2);
}

static void test_proc_exit_other_from_process(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    herd_pid_t a = spawn_rec(n), b = spawn_rec(n), c = spawn_rec(n), d = spawn_rec(n);
    cmd_t k = mk('k', NULL);
    k.pid = b;
    k.reason = HERD_REASON_KILLED;
    cast_cmd(n, a, k);
    k.pid = c;
    k.reason = HERD_REASON_NORMAL;
    cast_cmd(n, a, k);
    k.pid = d;
    k.reason = HERD_REASON_SHUTDOWN;
    cast_cmd(n, a, k);
    ts_run(n);
    assert_int_equal(g_nrc, 3);
    assert_int_equal(g_rc[0], 0);
    assert_int_equal(g_rc[1], 0);
    assert_int_equal(g_rc[2], 0);
    const ev_t *t = find_ev('T', b.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_REASON_KILLED);
    t = find_ev('T', d.serial);
    assert_non_null(t);
    assert_int_equal(t->reason, HERD_REASON_SHUTDOWN);
    assert_true(herd_is_alive(n, a)); /* the sender is unaffected */
    assert_true(herd_is_alive(n, c)); /* normal from another: ignored */
    assert_false(herd_is_alive(n, b));
    assert_false(herd_is_alive(n, d));
    assert_int_equal(count_ev('T', a.serial), 0);
    assert_int_equal(count_ev('T', c.serial), 0);

    /* an exit signal to a dead pid from a process */
    k.pid = b;
    k.reason = HERD_REASON_KILLED;
    cast_cmd(n, a, k);
    ts_run(n);
    assert_int_equal(g_nrc, 4);
    assert_int_equal(g_rc[3], HERD_ENOPROC);
    ts_node_free(n);
    assert_int_equal(g_terms, 4);
}

/* ---- nodes -------------------------------------------------------------- */

static void test_proc_node_free_terminates_every_process(void **st)
{
    (void)st;
    reset();
    enum { N = 5000 };
    herd_node_t *n = mknode("t1");
    herd_pid_t prev = HERD_PID_NONE;
    for (int i = 0; i < N; i++) {
        herd_spawn_opts_t o = {
            .behaviour = &rec_beh, .arg = "x", .arg_len = 1, .trap_exit = i % 7 == 0};
        herd_pid_t p;
        assert_int_equal(herd_spawn(n, &o, &p), 0);
        /* leave work behind: queued messages and armed timers */
        if (i % 3 == 0) cast_cmd(n, p, mk('r', "queued"));
        if (i % 5 == 0) {
            uint64_t t;
            assert_int_equal(herd_send_after(n, p, 60000, "late", 4, &t), 0);
        }
        if (i % 11 == 0 && !herd_pid_is_none(prev)) {
            cmd_t k = mk('k', NULL); /* queued: an exit signal never sent */
            k.pid = prev;
            k.reason = HERD_REASON_KILLED;
            send_cmd(n, p, k);
        }
        prev = p;
    }
    assert_int_equal(herd_node_process_count(n), N);
    size_t events_before = g_nev;
    ts_node_free(n);
    assert_int_equal(g_terms, N);
    assert_int_equal(g_terms_shutdown, N);
    /* only terminates ran: no queued message was handled on the way out */
    assert_int_equal(g_nev, events_before + N);
}

/* terminate may send while the node shuts down; the other process may be
 * gone already: an error, never a use of freed memory (ASan). */
static void test_proc_node_free_terminate_may_send(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    for (int i = 0; i < 200; i++)
        spawn_rec(n);
    g_free_node = n;
    ts_node_free(n);
    g_free_node = NULL;
    assert_int_equal(g_terms, 200);
}

static void test_proc_two_nodes_are_independent(void **st)
{
    (void)st;
    reset();
    herd_node_t *na = mknode("ta"), *nb = mknode("tb");
    assert_true(herd_node_loop(na) != herd_node_loop(nb));
    herd_pid_t pa = spawn_rec(na), pb = spawn_rec(nb);
    assert_int_equal(pa.node, herd_node_id_of("ta"));
    assert_int_equal(pb.node, herd_node_id_of("tb"));
    assert_true(pa.node != pb.node);

    /* a pid of one node is not a process of the other, and without a
     * cluster the other node cannot be reached */
    cmd_t c = mk('r', "foreign");
    assert_int_equal(herd_node_send(nb, pa, &c, sizeof(c)), HERD_ENOTCONN);
    assert_int_equal(herd_node_cast(na, pb, &c, sizeof(c)), HERD_ENOTCONN);
    assert_false(herd_is_alive(nb, pa));
    assert_false(herd_is_alive(na, pb));
    assert_int_equal(herd_exit(nb, pa, HERD_REASON_KILLED), HERD_ENOPROC);

    /* each runs on its own loop */
    cast_cmd(na, pa, mk('r', "to-a"));
    cast_cmd(nb, pb, mk('r', "to-b"));
    ts_run(na);
    assert_int_equal(count_ev('C', 0), 1);
    assert_string_equal(g_ev[g_nev - 1].text, "to-a");
    ts_run(nb);
    assert_int_equal(count_ev('C', 0), 2);
    assert_string_equal(g_ev[g_nev - 1].text, "to-b");
    assert_int_equal(herd_node_process_count(na), 1);
    assert_int_equal(herd_node_process_count(nb), 1);

    ts_node_free(na);
    assert_int_equal(g_terms, 1);
    assert_true(herd_is_alive(nb, pb)); /* b survives a's end */
    cast_cmd(nb, pb, mk('r', "after"));
    ts_run(nb);
    assert_int_equal(count_ev('C', 0), 3);
    ts_node_free(nb);
    assert_int_equal(g_terms, 2);
}

/* Same name, another incarnation (a restarted node): the old pid, although
 * its serial exists on the new node, names no process there. */
static void test_proc_restarted_node_rejects_old_pids(void **st)
{
    (void)st;
    reset();
    herd_node_t *n1 = mknode_cfg((herd_node_config_t){.name = "tsame", .incarnation = 1});
    herd_node_t *n2 = mknode_cfg((herd_node_config_t){.name = "tsame", .incarnation = 2});
    herd_pid_t p1 = spawn_rec(n1), p2 = spawn_rec(n2);
    assert_int_equal(p1.node, p2.node);
    assert_true(p1.incarnation != p2.incarnation);
    herd_pid_t old = p2;
    old.incarnation = 1; /* p2's serial, n1's incarnation */
    cmd_t c = mk('r', "stale");
    assert_int_equal(herd_node_send(n2, old, &c, sizeof(c)), HERD_ENOPROC);
    assert_int_equal(herd_node_send(n2, p1, &c, sizeof(c)), HERD_ENOPROC);
    assert_false(herd_is_alive(n2, p1));
    ts_run(n2);
    assert_int_equal(count_ev('I', p2.serial), 0);
    ts_node_free(n1);
    ts_node_free(n2);
    assert_int_equal(g_terms, 2);
}

static void test_proc_run_for_returns_early_when_idle(void **st)
{
    (void)st;
    reset();
    herd_node_t *n = mknode("t1");
    struct timespec t0;

    /* an empty node */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);

    /* idle processes are nothing to do */
    herd_pid_t p = spawn_rec(n);
    spawn_rec(n);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);

    /* messages are handled, then it returns */
    for (int i = 0; i < 10; i++)
        cast_cmd(n, p, mk('r', "m"));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    assert_int_equal(count_ev('C', p.serial), 10);

    /* an armed timer keeps it running until the timer fired */
    uint64_t t;
    assert_int_equal(herd_send_after(n, p, 30, "tick", 4, &t), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 3000) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    assert_int_equal(count_ev('I', p.serial), 1);

    /* and a short run ends at its limit even with a far timer armed */
    assert_int_equal(herd_send_after(n, p, 60000, "far", 3, &t), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(herd_node_run_for(n, 20) >= 0);
    assert_true(ts_ms_since(&t0) < 2000);
    assert_int_equal(count_ev('I', p.serial), 1);
    assert_int_equal(herd_cancel_timer(n, t), 0);
    ts_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_proc_pid_helpers, ts_teardown),
        cmocka_unit_test_teardown(test_proc_node_new_bad_names, ts_teardown),
        cmocka_unit_test_teardown(test_proc_node_identity, ts_teardown),
        cmocka_unit_test_teardown(test_proc_node_incarnation_unique_per_start,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_proc_node_random_is_seeded, ts_teardown),
        cmocka_unit_test_teardown(test_proc_reason_name, ts_teardown),
        cmocka_unit_test_teardown(test_proc_spawn_init_sees_arg_and_state, ts_teardown),
        cmocka_unit_test_teardown(test_proc_spawn_bad_args, ts_teardown),
        cmocka_unit_test_teardown(test_proc_missing_handlers_drop_messages, ts_teardown),
        cmocka_unit_test_teardown(test_proc_init_failure_leaves_nothing, ts_teardown),
        cmocka_unit_test_teardown(test_proc_pids_never_reused, ts_teardown),
        cmocka_unit_test_teardown(test_proc_spawn_from_handler, ts_teardown),
        cmocka_unit_test_teardown(test_proc_cast_and_send_in_order, ts_teardown),
        cmocka_unit_test_teardown(test_proc_process_to_process_order_and_sender,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_proc_send_to_dead_or_unknown_pid, ts_teardown),
        cmocka_unit_test_teardown(test_proc_mailbox_full, ts_teardown),
        cmocka_unit_test_teardown(test_proc_mailbox_full_from_process, ts_teardown),
        cmocka_unit_test_teardown(test_proc_mailbox_node_default_limit, ts_teardown),
        cmocka_unit_test_teardown(test_proc_message_too_big, ts_teardown),
        cmocka_unit_test_teardown(test_proc_handler_error_crashes_process, ts_teardown),
        cmocka_unit_test_teardown(test_proc_exit_self, ts_teardown),
        cmocka_unit_test_teardown(test_proc_exit_other_from_outside, ts_teardown),
        cmocka_unit_test_teardown(test_proc_set_trap_exit_from_handler, ts_teardown),
        cmocka_unit_test_teardown(test_proc_exit_other_from_process, ts_teardown),
        cmocka_unit_test_teardown(test_proc_node_free_terminates_every_process,
                                  ts_teardown),
        cmocka_unit_test_teardown(test_proc_node_free_terminate_may_send, ts_teardown),
        cmocka_unit_test_teardown(test_proc_two_nodes_are_independent, ts_teardown),
        cmocka_unit_test_teardown(test_proc_restarted_node_rejects_old_pids, ts_teardown),
        cmocka_unit_test_teardown(test_proc_run_for_returns_early_when_idle, ts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
