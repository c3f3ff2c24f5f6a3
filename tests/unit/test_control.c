/*
 * test_control.c - unit tests for the control socket server (tools/control.h)
 * and its paged listings (tools/control_list.h), in one process: a server on
 * a libuv loop pumped by hand, REQ clients on an ipc:// path in a temporary
 * directory.
 *
 * - a deferred request holds up no other: a later request is answered
 *   first, the deferred one when control_finish comes;
 * - a request handed to control_serve is answered once through its
 *   callback, at once or by control_finish, with the id cache and the size
 *   limit of the socket;
 * - a request resent while deferred runs its command once and is answered
 *   once; an answer given before the command returned CONTROL_DEFERRED goes
 *   out; a stale token is ignored;
 * - a listing comes in sorted pages that hold every item once, a name gone
 *   since the snapshot is left out, an idle listing expires (HERD_ENOENT),
 *   bad limits and cursors are refused with HERD_EINVAL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <uv.h>

#include "control.h"
#include "control_list.h"
#include "herd_error.h"

#define WAIT_MS 5000

/* ---- a server with a deferring command ------------------------------------------------ */

typedef struct server {
    uv_loop_t loop;
    control_t *ctl;
    char dir[64], address[128];
    int waits;        /* "wait" commands run */
    uint64_t token;   /* the last one's */
    int finish_early; /* "wait" answers before it returns */
} server_t;

static server_t g_srv;

static int cmd_wait(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    (void)result;
    (void)msg;
    (void)cap;
    server_t *s = data;
    s->waits++;
    s->token = control_defer(s->ctl);
    if (s->finish_early)
        control_finish(s->ctl, s->token, 0, json_string("early"), NULL);
    return CONTROL_DEFERRED;
}

static int cmd_now(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)data;
    (void)args;
    (void)msg;
    (void)cap;
    *result = json_string("now");
    return 0;
}

static const control_command_t g_cmds[] = {{"wait", cmd_wait}, {"now", cmd_now}};

static int setup(void **state)
{
    memset(&g_srv, 0, sizeof(g_srv));
    snprintf(g_srv.dir, sizeof(g_srv.dir), "/tmp/herd-ctl-XXXXXX");
    assert_non_null(mkdtemp(g_srv.dir));
    snprintf(g_srv.address, sizeof(g_srv.address), "ipc://%s/c.ctl", g_srv.dir);
    assert_int_equal(uv_loop_init(&g_srv.loop), 0);
    assert_int_equal(control_start(&g_srv.loop, g_srv.address, g_cmds, 2, &g_srv, &g_srv.ctl), 0);
    *state = &g_srv;
    return 0;
}

static int teardown(void **state)
{
    server_t *s = *state;
    control_stop(s->ctl);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_loop_close(&s->loop);
    char path[160];
    snprintf(path, sizeof(path), "%s/c.ctl", s->dir);
    unlink(path);
    rmdir(s->dir);
    return 0;
}

static int client(const server_t *s)
{
    int sock = nn_socket(AF_SP, NN_REQ);
    assert_true(sock >= 0);
    assert_true(nn_connect(sock, s->address) >= 0);
    return sock;
}

static void send_req(int sock, const char *id, const char *cmd)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"cmd\":\"%s\"}", id, cmd);
    assert_true(nn_send(sock, buf, strlen(buf), 0) >= 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pump the server's loop until `sock` has an answer (NULL after
 * timeout_ms); returns the answer's "result" or error name as a string. */
static char *answer(server_t *s, int sock, int timeout_ms)
{
    for (uint64_t end = now_ms() + (uint64_t)timeout_ms; now_ms() < end;) {
        uv_run(&s->loop, UV_RUN_NOWAIT);
        void *m = NULL;
        int n = nn_recv(sock, &m, NN_MSG, NN_DONTWAIT);
        if (n < 0) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
            continue;
        }
        json_error_t err;
        json_t *a = json_loadb(m, (size_t)n, 0, &err);
        nn_freemsg(m);
        assert_non_null(a);
        json_t *r = json_object_get(a, json_is_true(json_object_get(a, "ok")) ? "result" : "error");
        char *out = strdup(json_string_value(r) ? json_string_value(r) : "?");
        json_decref(a);
        return out;
    }
    return NULL;
}

static void expect(server_t *s, int sock, const char *want, int timeout_ms)
{
    char *got = answer(s, sock, timeout_ms);
    if (want == NULL) {
        if (got)
            fail_msg("expected no answer, got %s", got);
        return;
    }
    if (got == NULL)
        fail_msg("expected %s, got no answer", want);
    assert_string_equal(got, want);
    free(got);
}

static void test_control_deferred_request_blocks_no_other(void **state)
{
    server_t *s = *state;
    int a = client(s), b = client(s);
    send_req(a, "a1", "wait");
    expect(s, a, NULL, 100);
    assert_int_equal(s->waits, 1);
    send_req(b, "b1", "now");
    expect(s, b, "now", WAIT_MS); /* while a1 waits */
    control_finish(s->ctl, s->token + 1000, 0, json_string("stale"), NULL); /* ignored */
    expect(s, a, NULL, 50);
    control_finish(s->ctl, s->token, 0, json_string("later"), NULL);
    expect(s, a, "later", WAIT_MS);
    control_finish(s->ctl, s->token, 0, json_string("twice"), NULL); /* answered: ignored */
    send_req(b, "b2", "now");
    expect(s, b, "now", WAIT_MS);
    nn_close(a);
    nn_close(b);
}

/* What control_serve's callback was given. */
typedef struct served {
    int count;
    char text[512];
} served_t;

static void on_served(void *data, const char *text, size_t len)
{
    served_t *v = data;
    v->count++;
    snprintf(v->text, sizeof(v->text), "%.*s", (int)len, text);
}

/* A request handed to control_serve is answered through its callback once:
 * at once, or (deferred) by control_finish; with the socket's id cache and
 * size limit. */
static void test_control_serve_answers_through_callback(void **state)
{
    server_t *s = *state;
    served_t now = {0}, later = {0}, again = {0}, big = {0};
    static const char req_now[] = "{\"id\":\"n1\",\"cmd\":\"now\"}";
    control_serve(s->ctl, req_now, sizeof req_now - 1, on_served, &now);
    assert_int_equal(now.count, 1);
    assert_string_equal(now.text, "{\"id\":\"n1\",\"ok\":true,\"result\":\"now\"}");
    static const char req_wait[] = "{\"cmd\":\"wait\"}";
    control_serve(s->ctl, req_wait, sizeof req_wait - 1, on_served, &later);
    assert_int_equal(later.count, 0);
    control_finish(s->ctl, s->token, 0, json_string("later"), NULL);
    assert_int_equal(later.count, 1);
    assert_non_null(strstr(later.text, "\"result\":\"later\""));
    control_serve(s->ctl, req_now, sizeof req_now - 1, on_served, &again); /* cached */
    assert_string_equal(again.text, now.text);
    size_t n = CONTROL_MAX_REQUEST + 1;
    char *pad = malloc(n);
    assert_non_null(pad);
    memset(pad, ' ', n);
    memcpy(pad, req_now, sizeof req_now - 1);
    control_serve(s->ctl, pad, n, on_served, &big);
    free(pad);
    assert_int_equal(big.count, 1);
    assert_non_null(strstr(big.text, "\"error\":\"ETOOBIG\""));
}

static void test_control_resent_while_deferred_runs_once(void **state)
{
    server_t *s = *state;
    int a = client(s), b = client(s);
    send_req(a, "same", "wait");
    expect(s, a, NULL, 100);
    send_req(b, "same", "wait"); /* as nanomsg resends it after a reconnect */
    expect(s, b, NULL, 100);
    assert_int_equal(s->waits, 1);
    control_finish(s->ctl, s->token, HERD_ETIMEDOUT, NULL, "took too long");
    expect(s, b, "ETIMEDOUT", WAIT_MS); /* where it came from last */
    send_req(a, "same", "wait"); /* once answered: from the cache */
    expect(s, a, "ETIMEDOUT", WAIT_MS);
    assert_int_equal(s->waits, 1);
    nn_close(a);
    nn_close(b);
}

static void test_control_finished_before_return_is_answered(void **state)
{
    server_t *s = *state;
    s->finish_early = 1;
    int a = client(s);
    send_req(a, "e1", "wait");
    expect(s, a, "early", WAIT_MS);
    send_req(a, "e2", "now");
    expect(s, a, "now", WAIT_MS);
    nn_close(a);
}

/* ---- listings ------------------------------------------------------------------------ */

#define ITEMS 2500

typedef struct fake {
    int gone;       /* items whose index is a multiple of gone are left out (0: none) */
    int fail;       /* fill fails with this */
    int empty;      /* fill adds nothing */
    int fills;
} fake_t;

static int fake_fill(void *data, control_snap_t *s)
{
    fake_t *f = data;
    f->fills++;
    if (f->fail)
        return f->fail;
    for (int i = f->empty ? -1 : ITEMS - 1; i >= 0; i--) { /* out of order: the listing sorts */
        char name[16];
        snprintf(name, sizeof(name), "n%05d", i);
        assert_int_equal(control_snap_add(s, name, 0), 0);
    }
    return 0;
}

static void fake_tag(void *data, control_snap_t *s)
{
    fake_t *f = data;
    assert_int_equal(control_snap_tag(s, "n00007", 7), f->empty ? HERD_ENOENT : 0);
    assert_int_equal(control_snap_tag(s, "absent", 1), HERD_ENOENT);
}

static json_t *fake_item(void *data, const char *name, int tag)
{
    fake_t *f = data;
    int i = atoi(name + 1);
    if (f->gone && i % f->gone == 0)
        return NULL;
    return json_pack("{s:s, s:i}", "name", name, "tag", tag);
}

static const control_list_ops_t fake_ops = {fake_fill, fake_tag, fake_item};

static json_t *page(control_lists_t *ls, uint64_t now, fake_t *f, json_t *args, int want_rc)
{
    json_t *res = NULL;
    char msg[256] = "";
    int rc = control_list_serve(ls, now, args, &fake_ops, f, &res, msg, sizeof(msg));
    json_decref(args);
    assert_int_equal(rc, want_rc);
    if (rc)
        assert_true(msg[0] != '\0');
    return res;
}

/* A listing with no items: one empty page, and tags of names it does not
 * hold are HERD_ENOENT (fuzz_control found a tag looked up in no table:
 * `children` of a node whose one child had lost its name). */
static void test_control_list_empty_listing_tags_nothing(void **state)
{
    (void)state;
    control_lists_t *ls = control_lists_new();
    fake_t f = {.empty = 1};
    json_t *res = page(ls, 1, &f, json_pack("{s:i}", "limit", 10), 0);
    assert_int_equal(json_integer_value(json_object_get(res, "total")), 0);
    assert_int_equal(json_array_size(json_object_get(res, "items")), 0);
    assert_null(json_object_get(res, "cursor"));
    json_decref(res);
    control_lists_free(ls);
}

static void test_control_list_pages_hold_every_item_once_sorted(void **state)
{
    (void)state;
    control_lists_t *ls = control_lists_new();
    fake_t f = {.gone = 10};
    json_t *res = page(ls, 1, &f, json_pack("{s:i}", "limit", 1000), 0);
    int seen = 0, prev = -1;
    for (;;) {
        assert_int_equal(json_integer_value(json_object_get(res, "total")), ITEMS);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(res, "items"), i, o)
        {
            int n = atoi(json_string_value(json_object_get(o, "name")) + 1);
            assert_true(n > prev);
            assert_true(n % 10 != 0);
            assert_int_equal(json_integer_value(json_object_get(o, "tag")), n == 7 ? 7 : 0);
            prev = n;
            seen++;
        }
        json_t *cursor = json_object_get(res, "cursor");
        if (cursor == NULL)
            break;
        json_t *args = json_pack("{s:i, s:O}", "limit", 1000, "cursor", cursor);
        json_decref(res);
        res = page(ls, 2, &f, args, 0);
    }
    json_decref(res);
    assert_int_equal(seen, ITEMS - ITEMS / 10);
    assert_int_equal(f.fills, 1);

    /* without a limit: every item as one array */
    f.gone = 0;
    res = page(ls, 3, &f, json_object(), 0);
    assert_int_equal(json_array_size(res), ITEMS);
    json_decref(res);
    control_lists_free(ls);
}

static void test_control_list_bad_pages_refused(void **state)
{
    (void)state;
    control_lists_t *ls = control_lists_new();
    fake_t f = {0};
    page(ls, 1, &f, json_pack("{s:i}", "limit", 0), HERD_EINVAL);
    page(ls, 1, &f, json_pack("{s:i}", "limit", CONTROL_LIST_PAGE_MAX + 1), HERD_EINVAL);
    page(ls, 1, &f, json_pack("{s:b}", "limit", 1), HERD_EINVAL);
    page(ls, 1, &f, json_pack("{s:i, s:s}", "limit", 5, "cursor", "1:"), HERD_EINVAL);
    page(ls, 1, &f, json_pack("{s:i, s:s}", "limit", 5, "cursor", "1:2x"), HERD_EINVAL);
    page(ls, 1, &f, json_pack("{s:i, s:s}", "limit", 5, "cursor", "99:0"), HERD_ENOENT);
    assert_int_equal(f.fills, 0);

    /* an idle listing expires */
    json_t *res = page(ls, 1000, &f, json_pack("{s:i}", "limit", 5), 0);
    json_t *cursor = json_incref(json_object_get(res, "cursor"));
    json_decref(res);
    res = page(ls, 1000 + CONTROL_LIST_IDLE_MS / 2, &f,
               json_pack("{s:i, s:O}", "limit", 5, "cursor", cursor), 0);
    json_decref(res);
    page(ls, 1001 + CONTROL_LIST_IDLE_MS * 2, &f,
         json_pack("{s:i, s:O}", "limit", 5, "cursor", cursor), HERD_ENOENT);
    json_decref(cursor);

    /* a fill that fails */
    f.fail = HERD_ENOMEM;
    page(ls, 1, &f, json_pack("{s:i}", "limit", 5), HERD_ENOMEM);
    control_lists_free(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_control_deferred_request_blocks_no_other, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_control_serve_answers_through_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_control_resent_while_deferred_runs_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_control_finished_before_return_is_answered, setup,
                                        teardown),
        cmocka_unit_test(test_control_list_pages_hold_every_item_once_sorted),
        cmocka_unit_test(test_control_list_empty_listing_tags_nothing),
        cmocka_unit_test(test_control_list_bad_pages_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
