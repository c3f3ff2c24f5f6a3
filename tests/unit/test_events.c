/*
 * test_events.c - the node's event bus (herd_events.h): callbacks and
 * processes as subscribers, masks, unsubscribing while being told, herd's
 * own tier first and out of programs' reach, event messages and their
 * decoding (bad bytes included), member events of a real two-node cluster
 * and herd_cluster_on_change on top of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "herd_events.h"
#include "runtime_layers.h"
#include "support.h"

#define SECRET "test-events-secret-0123456789"
#define MAX_SEEN 64

typedef struct seen {
    int n;
    herd_event_kind_t kinds[MAX_SEEN];
    uint64_t seqs[MAX_SEEN];
    char names[MAX_SEEN][HERD_EVENT_NAME_MAX + 1];
    int order[MAX_SEEN]; /* the tag of the subscriber told, in order, shared */
    int *log;            /* where tags go (NULL: nowhere) */
    int *log_n;
    int tag;
    herd_node_t *node;
    uint64_t unsub; /* a subscription to end when told (0: none) */
} seen_t;

static void record(void *data, const herd_event_t *ev)
{
    seen_t *s = data;
    if (ts_detached())
        return;
    if (s->n < MAX_SEEN) {
        s->kinds[s->n] = ev->kind;
        s->seqs[s->n] = ev->seq;
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", ev->name);
    }
    s->n++;
    if (s->log && *s->log_n < MAX_SEEN)
        s->log[(*s->log_n)++] = s->tag;
    if (s->unsub) {
        assert_int_equal(herd_events_unsubscribe(s->node, s->unsub), 0);
        s->unsub = 0;
    }
}

static void emit(herd_node_t *n, herd_event_kind_t kind, const char *name)
{
    herd_event_t ev = {.kind = kind, .name = name, .pid = {1, 2, 3}};
    herd_event_emit(n, &ev);
}

static void test_events_callbacks_and_masks(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("ev1", NULL, 1);
    seen_t names = {0}, all = {0};
    uint64_t id_names = 0, id_all = 0;
    assert_int_equal(herd_events_subscribe(n, HERD_EV_NAMES, record, &names, &id_names), 0);
    assert_int_equal(herd_events_subscribe(n, HERD_EV_ALL, record, &all, &id_all), 0);
    assert_true(id_names != 0 && id_all != 0 && id_names != id_all);
    assert_true(herd_events_wanted(n, HERD_EV_GROUP_JOINED));

    emit(n, HERD_EV_NAME_REGISTERED, "alpha");
    emit(n, HERD_EV_GROUP_JOINED, "team");
    assert_int_equal(names.n, 1);
    assert_int_equal(names.kinds[0], HERD_EV_NAME_REGISTERED);
    assert_string_equal(names.names[0], "alpha");
    assert_int_equal(all.n, 2);
    assert_true(all.seqs[1] == all.seqs[0] + 1);

    assert_int_equal(herd_events_unsubscribe(n, id_all), 0);
    assert_int_equal(herd_events_unsubscribe(n, id_all), HERD_ENOENT);
    emit(n, HERD_EV_GROUP_JOINED, "team");
    assert_int_equal(all.n, 2);
    assert_false(herd_events_wanted(n, HERD_EV_GROUP_JOINED));

    herd_events_stats_t st;
    assert_int_equal(herd_events_stats(n, &st), 0);
    assert_int_equal(st.subscribers, 1);
    assert_int_equal(st.delivered, 3);
    ts_node_free(n);
}

static void test_events_bad_arguments(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("ev2", NULL, 1);
    seen_t s = {0};
    assert_int_equal(herd_events_subscribe(n, HERD_EV_ALL, NULL, &s, NULL), HERD_EINVAL);
    assert_int_equal(herd_events_subscribe(n, 0, record, &s, NULL), HERD_EINVAL);
    assert_int_equal(herd_events_subscribe(n, 1u << 31, record, &s, NULL), HERD_EINVAL);
    assert_int_equal(herd_events_subscribe_proc(n, HERD_EV_ALL, (herd_pid_t){1, 2, 3}, NULL),
                     HERD_EINVAL); /* another node's pid */
    herd_pid_t gone = {herd_node_id_of("ev2"), herd_node_incarnation(n), 999};
    assert_int_equal(herd_events_subscribe_proc(n, HERD_EV_ALL, gone, NULL), HERD_ENOPROC);
    assert_int_equal(herd_events_unsubscribe(n, 12345), HERD_ENOENT);
    /* a name over the bound is not told (and logged) */
    assert_int_equal(herd_events_subscribe(n, HERD_EV_ALL, record, &s, NULL), 0);
    char big[HERD_EVENT_NAME_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    emit(n, HERD_EV_NAME_REGISTERED, big);
    assert_int_equal(s.n, 0);
    big[HERD_EVENT_NAME_MAX] = '\0'; /* exactly the bound: told */
    emit(n, HERD_EV_NAME_REGISTERED, big);
    assert_int_equal(s.n, 1);
    ts_node_free(n);
}

/* herd's own tier is told first and no program's call removes it; a
 * subscriber removed while an event is told is not told again. */
static void test_events_tiers_and_removal_while_telling(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("ev3", NULL, 1);
    int log[MAX_SEEN], log_n = 0;
    seen_t user1 = {.tag = 1, .log = log, .log_n = &log_n, .node = n};
    seen_t user2 = {.tag = 2, .log = log, .log_n = &log_n, .node = n};
    seen_t own = {.tag = 9, .log = log, .log_n = &log_n, .node = n};
    uint64_t id2 = 0;
    assert_int_equal(herd_events_subscribe(n, HERD_EV_ALL, record, &user1, NULL), 0);
    assert_int_equal(herd_events_subscribe(n, HERD_EV_ALL, record, &user2, &id2), 0);
    assert_int_equal(herd_events_subscribe_internal(n, HERD_EV_MEMBERS, record, &own), 0);

    user1.unsub = id2; /* user1 ends user2's subscription while the event is told */
    emit(n, HERD_EV_MEMBER_UP, "peer");
    assert_int_equal(log_n, 2);
    assert_int_equal(log[0], 9); /* herd's own first */
    assert_int_equal(log[1], 1);
    assert_int_equal(user2.n, 0);

    /* a program cannot remove herd's own: no id of it is valid for them */
    for (uint64_t id = 0; id < 16; id++)
        herd_events_unsubscribe(n, id);
    emit(n, HERD_EV_MEMBER_DOWN, "peer");
    assert_int_equal(own.n, 2);
    herd_events_unsubscribe_internal(n, record, &own);
    emit(n, HERD_EV_MEMBER_DOWN, "peer");
    assert_int_equal(own.n, 2);
    ts_node_free(n);
}

/* ---- process subscribers ------------------------------------------------------- */

typedef struct inbox {
    int n, bad;
    herd_event_kind_t kind;
    char name[HERD_EVENT_NAME_MAX + 1];
    herd_pid_t pid;
    uint64_t seq;
} inbox_t;

static int box_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self;
    if (len != sizeof(void *))
        return HERD_EINVAL;
    memcpy(state, arg, sizeof(void *)); /* the spawner's record */
    return 0;
}

static int box_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    inbox_t *b = state;
    herd_event_t ev;
    if (herd_event_decode(msg->data, msg->len, &ev, b->name, sizeof(b->name)) != 0) {
        b->bad++;
        return 0;
    }
    b->n++;
    b->kind = ev.kind;
    b->pid = ev.pid;
    b->seq = ev.seq;
    return 0;
}

static const herd_behaviour_t box_beh = {
    .name = "inbox", .init = box_init, .handle_info = box_info};

static void test_events_process_subscriber(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("ev4", NULL, 1);
    inbox_t box = {0}, *bp = &box;
    herd_pid_t p = ts_spawn(n, &box_beh, &bp, sizeof(bp));
    uint64_t id = 0;
    assert_int_equal(herd_events_subscribe_proc(n, HERD_EV_CHILDREN, p, &id), 0);
    emit(n, HERD_EV_CHILD_STARTED, "worker-7");
    emit(n, HERD_EV_NAME_REGISTERED, "not-wanted");
    ts_run(n);
    assert_int_equal(box.n, 1);
    assert_int_equal(box.bad, 0);
    assert_int_equal(box.kind, HERD_EV_CHILD_STARTED);
    assert_string_equal(box.name, "worker-7");
    ts_assert_pid_eq(box.pid, (herd_pid_t){1, 2, 3});

    /* its exit ends the subscription */
    herd_events_stats_t st;
    assert_int_equal(herd_events_stats(n, &st), 0);
    assert_int_equal(st.subscribers, 1);
    assert_int_equal(herd_exit(n, p, HERD_REASON_SHUTDOWN), 0);
    ts_run(n);
    assert_int_equal(herd_events_stats(n, &st), 0);
    assert_int_equal(st.subscribers, 0);
    assert_int_equal(herd_events_unsubscribe(n, id), HERD_ENOENT);
    emit(n, HERD_EV_CHILD_STARTED, "worker-8");
    assert_int_equal(herd_events_stats(n, &st), 0);
    assert_int_equal(st.dropped, 0);
    ts_node_free(n);
}

/* A full mailbox drops the event, counted; the subscription stays. */
static void test_events_full_mailbox_dropped(void **state)
{
    (void)state;
    herd_node_config_t cfg = {.name = "ev5", .mailbox_limit = 2};
    herd_node_t *n = ts_node_new(&cfg);
    inbox_t box = {0}, *bp = &box;
    herd_pid_t p = ts_spawn(n, &box_beh, &bp, sizeof(bp));
    assert_int_equal(herd_events_subscribe_proc(n, HERD_EV_ALL, p, NULL), 0);
    for (int i = 0; i < 5; i++)
        emit(n, HERD_EV_GROUP_LEFT, "g");
    herd_events_stats_t st;
    assert_int_equal(herd_events_stats(n, &st), 0);
    assert_int_equal(st.delivered, 2);
    assert_int_equal(st.dropped, 3);
    ts_run(n);
    assert_int_equal(box.n, 2);
    emit(n, HERD_EV_GROUP_LEFT, "g");
    ts_run(n);
    assert_int_equal(box.n, 3);
    ts_node_free(n);
}

/* Bytes that are not an event are refused: a process subscriber that also
 * gets other messages tells them apart. */
static void test_events_decode_refuses_bad_bytes(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("ev6", NULL, 1);
    inbox_t box = {0}, *bp = &box;
    herd_pid_t p = ts_spawn(n, &box_beh, &bp, sizeof(bp));
    assert_int_equal(herd_events_subscribe_proc(n, HERD_EV_ALL, p, NULL), 0);
    emit(n, HERD_EV_NAME_CONFLICT, "contested");
    assert_int_equal(herd_node_send(n, p, "hello", 5), 0); /* not an event */
    ts_run(n);
    assert_int_equal(box.n, 1);
    assert_int_equal(box.bad, 1);

    herd_event_t ev;
    char name[HERD_EVENT_NAME_MAX + 1];
    uint8_t junk[HERD_EVENT_MSG_MAX] = {0};
    assert_int_equal(herd_event_decode(junk, sizeof(junk), &ev, name, sizeof(name)), HERD_EINVAL);
    assert_int_equal(herd_event_decode("HEV1", 4, &ev, name, sizeof(name)), HERD_EINVAL);
    assert_int_equal(herd_event_decode(NULL, 0, &ev, name, sizeof(name)), HERD_EINVAL);
    ts_node_free(n);
}

/* Encoding round trip with every field, and each corruption refused. */
static uint8_t last_msg[HERD_EVENT_MSG_MAX];
static size_t last_len;

static int copy_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    (void)self;
    (void)state;
    if (msg->len <= sizeof(last_msg)) {
        memcpy(last_msg, msg->data, msg->len);
        last_len = msg->len;
    }
    return 0;
}

static const herd_behaviour_t copy_beh = {.name = "copy", .init = box_init, .handle_info = copy_info};

static void test_events_message_round_trip(void **state)
{
    (void)state;
    herd_node_t *n = ts_node("ev7", NULL, 1);
    void *none = NULL;
    herd_pid_t p = ts_spawn(n, &copy_beh, &none, sizeof(none));
    assert_int_equal(herd_events_subscribe_proc(n, HERD_EV_ALL, p, NULL), 0);
    herd_event_t in = {.kind = HERD_EV_MEMBER_DOWN,
                       .name = "node-b",
                       .pid = {11, 12, 13},
                       .other = {21, 22, 23},
                       .reason = -7,
                       .node = 0x1122334455667788ull,
                       .incarnation = 99,
                       .old_state = HERD_MEMBER_SUSPECT,
                       .new_state = HERD_MEMBER_DOWN,
                       .gone = 1};
    last_len = 0;
    herd_event_emit(n, &in);
    ts_run(n);
    assert_true(last_len > 0 && last_len <= HERD_EVENT_MSG_MAX);
    herd_event_t out;
    char name[HERD_EVENT_NAME_MAX + 1];
    assert_int_equal(herd_event_decode(last_msg, last_len, &out, name, sizeof(name)), 0);
    assert_int_equal(out.kind, HERD_EV_MEMBER_DOWN);
    assert_string_equal(out.name, "node-b");
    ts_assert_pid_eq(out.pid, in.pid);
    ts_assert_pid_eq(out.other, in.other);
    assert_int_equal(out.reason, -7);
    assert_true(out.node == in.node);
    assert_int_equal(out.incarnation, 99);
    assert_int_equal(out.old_state, HERD_MEMBER_SUSPECT);
    assert_int_equal(out.new_state, HERD_MEMBER_DOWN);
    assert_int_equal(out.gone, 1);
    assert_true(out.seq >= 1);

    /* every truncation refused, as are a longer buffer and a small name cap */
    for (size_t cut = 0; cut < last_len; cut++)
        assert_int_equal(herd_event_decode(last_msg, cut, &out, name, sizeof(name)), HERD_EINVAL);
    assert_int_equal(herd_event_decode(last_msg, last_len + 1, &out, name, sizeof(name)),
                     HERD_EINVAL);
    assert_int_equal(herd_event_decode(last_msg, last_len, &out, name, 3), HERD_EINVAL);
    uint8_t bad[HERD_EVENT_MSG_MAX];
    memcpy(bad, last_msg, last_len);
    bad[4] = 0; /* kind 0 */
    assert_int_equal(herd_event_decode(bad, last_len, &out, name, sizeof(name)), HERD_EINVAL);
    bad[4] = HERD_EV_KIND_END;
    assert_int_equal(herd_event_decode(bad, last_len, &out, name, sizeof(name)), HERD_EINVAL);
    memcpy(bad, last_msg, last_len);
    bad[6] = 200; /* a state that is none */
    assert_int_equal(herd_event_decode(bad, last_len, &out, name, sizeof(name)), HERD_EINVAL);
    memcpy(bad, last_msg, last_len);
    bad[0] = 'X';
    assert_int_equal(herd_event_decode(bad, last_len, &out, name, sizeof(name)), HERD_EINVAL);
    assert_string_equal(herd_event_kind_name(HERD_EV_MEMBER_DOWN), "member_down");
    assert_string_equal(herd_event_kind_name((herd_event_kind_t)0), "unknown");
    assert_string_equal(herd_event_kind_name(HERD_EV_KIND_END), "unknown");
    ts_node_free(n);
}

/* ---- member events of a real cluster ---------------------------------------------- */

typedef struct hook_seen {
    int up, left;
} hook_seen_t;

static void on_change(void *data, const char *name, uint64_t incarnation,
                      herd_member_state_t old_state, herd_member_state_t new_state, int gone)
{
    (void)incarnation;
    (void)old_state;
    (void)gone;
    hook_seen_t *h = data;
    if (ts_detached() || strcmp(name, "evb") != 0)
        return;
    h->up += new_state == HERD_MEMBER_UP;
    h->left += new_state == HERD_MEMBER_LEFT;
}

static void test_events_member_events_of_a_cluster(void **state)
{
    (void)state;
    herd_node_config_t ca = {.name = "eva", .loop = &ts_loop};
    herd_node_config_t cb = {.name = "evb", .loop = &ts_loop};
    herd_node_t *a = ts_cluster_add(&ca);
    herd_node_t *b = ts_cluster_add(&cb);
    seen_t members = {0};
    const ts_timing_t t = {0}; /* the default timings */
    ts_cluster_join(a, &t, NULL, 0);
    assert_int_equal(herd_events_subscribe(a, HERD_EV_MEMBERS, record, &members, NULL), 0);
    /* more hooks than the old fixed table held: none is refused */
    hook_seen_t hooks[12] = {{0}};
    for (int i = 0; i < 12; i++)
        assert_int_equal(herd_cluster_on_change(a, on_change, &hooks[i]), 0);
    herd_cluster_off_change(a, on_change, &hooks[11]);
    ts_cluster_join(b, &t, &a, 1);
    herd_node_t *both[2] = {a, b};
    TS_WAIT_UNTIL(ts_cluster_all_up(both, 2), 10000);
    TS_WAIT_UNTIL(members.n >= 1, 2000);
    int up_at = -1;
    for (int i = 0; i < members.n && i < MAX_SEEN; i++)
        if (members.kinds[i] == HERD_EV_MEMBER_UP && strcmp(members.names[i], "evb") == 0)
            up_at = i;
    assert_true(up_at >= 0);
    for (int i = 0; i < 11; i++)
        assert_int_equal(hooks[i].up, 1);
    assert_int_equal(hooks[11].up, 0);

    assert_int_equal(herd_cluster_leave(b), 0);
    TS_WAIT_UNTIL(hooks[0].left == 1, 10000);
    int left_at = -1;
    for (int i = 0; i < members.n && i < MAX_SEEN; i++)
        if (members.kinds[i] == HERD_EV_MEMBER_LEFT && strcmp(members.names[i], "evb") == 0)
            left_at = i;
    assert_true(left_at > up_at);
    ts_node_free(b);
    ts_node_free(a);
}

int main(void)
{
    ts_cluster_init("test_events", SECRET);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_callbacks_and_masks, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_bad_arguments, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_tiers_and_removal_while_telling, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_process_subscriber, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_full_mailbox_dropped, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_decode_refuses_bad_bytes, ts_setup,
                                        ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_message_round_trip, ts_setup, ts_teardown),
        cmocka_unit_test_setup_teardown(test_events_member_events_of_a_cluster,
                                        ts_cluster_setup, ts_cluster_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
