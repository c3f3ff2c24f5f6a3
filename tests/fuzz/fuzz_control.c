/*
 * fuzz_control.c - fuzz target for the control socket's request handling:
 * each input is one request to herdd's command table (node_control.c:
 * register, start, call, stop, names, children, stats, block, drain, ...),
 * parsed, cached by id, dispatched, deferred and answered by the real code.
 *
 * The node: "node1" of a two-node cluster (regsim.h: real nodes with their
 * cluster, registry, distributed supervisor and herdd's counter service, on
 * a virtual clock over an in-memory transport), so that `block`, `drain`,
 * `children node2` and starts owned by the other node have a member to act
 * on, and waits (a start's 5 s timeout, a call's timeout_ms) cost no real
 * time. Its control socket is served with herd_control_start at an ipc://
 * path in a mkdtemp directory; each input goes to control_serve, the entry
 * point the socket's own reads go through, and the nodes run (virtual
 * 5 ms steps) until the answer comes, at most FZ_WAIT_MS of virtual time.
 * herdd's table has no command that ends the node (leaving is herdd's
 * signals' job), so nothing is filtered out.
 *
 * Every input must get exactly one answer: a JSON object with "ok" true and
 * a "result", or false with a known error name ("error") and a "message";
 * its "id" is the request's (when the request is an object with a string id
 * of at most 64 bytes) or null. Anything else aborts, so the driver keeps
 * the input. An input whose first byte is 0 is sent as its other bytes
 * padded with spaces to over CONTROL_MAX_REQUEST (by its second byte) and
 * must be refused with ETOOBIG unparsed (README: "answers a larger one with
 * ETOOBIG"); a first byte 1 pads to exactly the limit, which is served; a
 * first byte 2 makes the input a script of requests (fz_script).
 *
 * The cluster is made anew every FZ_RESET inputs, so what inputs leave
 * behind (names, children, blocks, drains, open listings) stays bounded and
 * the teardown runs with it in place.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "control.h"
#include "counter_cluster.h"
#include "fuzz_seeds.h"
#include "herd.h"
#include "log.h"
#include "node_control.h"
#include "regsim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_RESET 4096
#define FZ_WAIT_MS (600000u + 10000u) /* the longest call timeout, and some */
#define FZ_ID_MAX 64                  /* control.c's CONTROL_ID_MAX */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_control: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* ---- the cluster ---------------------------------------------------------------- */

static struct {
    regsim_t *rs;
    herd_control_t *nc;
    char dir[64], path[128];
    unsigned inputs; /* since the cluster was made */
    int atexit_set;
} fz;

static void fz_teardown(void)
{
    herd_control_stop(fz.nc); /* before the node it serves */
    fz.nc = NULL;
    regsim_free(fz.rs);
    fz.rs = NULL;
    if (fz.dir[0]) {
        unlink(fz.path);
        rmdir(fz.dir);
        fz.dir[0] = '\0';
    }
}

static void fz_setup(void)
{
    herd_log_set_level(HERD_LOG_ERROR);
    regsim_config_t cfg = {.seed = 1, .nodes = 2, .hooks = &counter_cluster_hooks};
    if (regsim_new(&cfg, &fz.rs) != 0 || regsim_start(fz.rs, 0) != 0 ||
        regsim_start(fz.rs, 1) != 0 ||
        regsim_run_until_members(fz.rs, regsim_now(fz.rs) + 5000) != 0)
        die("no cluster", NULL);
    snprintf(fz.dir, sizeof(fz.dir), "/tmp/herd-fuzz-ctl-XXXXXX");
    if (mkdtemp(fz.dir) == NULL)
        die("no temporary directory", NULL);
    snprintf(fz.path, sizeof(fz.path), "%s/ctl", fz.dir);
    char address[160];
    snprintf(address, sizeof(address), "ipc://%s", fz.path);
    if (herd_control_start(regsim_node(fz.rs, 0), address, &fz.nc) != 0)
        die("no control socket", address);
    fz.inputs = 0;
    if (!fz.atexit_set++)
        atexit(fz_teardown);
}

/* ---- answers ---------------------------------------------------------------------- */

typedef struct fz_answer {
    uint64_t seq; /* the request it is for */
    int count;
    json_t *doc;
} fz_answer_t;

static fz_answer_t fz_ans;

static void on_answer(void *data, const char *text, size_t len)
{
    if ((uint64_t)(uintptr_t)data != fz_ans.seq)
        die("an answer for an earlier request", text);
    if (fz_ans.count++)
        die("a second answer", text);
    if (getenv("FUZZ_CONTROL_TRACE")) /* each answer on stderr */
        fprintf(stderr, "%.*s\n", len > 300 ? 300 : (int)len, text);
    json_error_t err;
    fz_ans.doc = json_loadb(text, len, 0, &err);
    if (fz_ans.doc == NULL || !json_is_object(fz_ans.doc))
        die("the answer is not a JSON object", text);
}

static int known_error(const char *name)
{
    if (strcmp(name, "EAPP") == 0) /* a service's own error: checked with its app_code */
        return 1;
    for (int code = -1; code > -64; code--)
        if (strcmp(herd_err_name(code), "EUNKNOWN") != 0 && strcmp(herd_err_name(code), name) == 0)
            return 1;
    return 0;
}

/* The request's id as the server takes it: a string of at most FZ_ID_MAX
 * bytes in a JSON object, else none (NULL). *copy is freed by the caller. */
static const char *request_id(const char *buf, size_t len, json_t **copy)
{
    json_error_t err;
    *copy = len <= CONTROL_MAX_REQUEST ? json_loadb(buf, len, 0, &err) : NULL;
    const char *id = json_is_object(*copy) ? json_string_value(json_object_get(*copy, "id"))
                                           : NULL;
    return id && strlen(id) <= FZ_ID_MAX ? id : NULL;
}

/* The answer's shape; `oversize`: it must be the size refusal. */
static void check_answer(const char *buf, size_t len, int oversize)
{
    json_t *a = fz_ans.doc, *req;
    char *text = json_dumps(a, JSON_COMPACT);
    json_t *ok = json_object_get(a, "ok");
    const char *err = json_string_value(json_object_get(a, "error"));
    const char *msg = json_string_value(json_object_get(a, "message"));
    if (!json_is_boolean(ok))
        die("no \"ok\" boolean", text);
    if (json_is_true(ok) && json_object_get(a, "result") == NULL)
        die("ok without a result", text);
    if (json_is_false(ok) && (err == NULL || !known_error(err) || msg == NULL || !msg[0]))
        die("an error without a known name and a message", text);
    /* a service's own error (a call answered with herd_reply_error) says
     * its code; none of herd's does */
    json_t *app = json_object_get(a, "app_code");
    int is_app = err && strcmp(err, "EAPP") == 0;
    if (is_app != (app != NULL) ||
        (app && (!json_is_integer(app) || json_integer_value(app) < 1 ||
                 json_integer_value(app) > HERD_APP_ERROR_MAX)))
        die("an EAPP error without its app_code, or an app_code on another error", text);
    if (oversize && (json_is_true(ok) || strcmp(err, "ETOOBIG") != 0))
        die("a request over the limit was not refused with ETOOBIG", text);
    if (!oversize && json_is_false(ok) && strncmp(msg, "request of ", 11) == 0)
        die("a request within the limit was refused for its size", text);
    const char *id = request_id(buf, len, &req);
    json_t *aid = json_object_get(a, "id");
    if (id ? !json_is_string(aid) || strcmp(json_string_value(aid), id) != 0
           : aid != NULL && !json_is_null(aid))
        die("the answer's id is not the request's", text);
    json_decref(req);
    free(text);
}

/* ---- one request ----------------------------------------------------------------- */

/* Serve buf and run the nodes until it is answered (FZ_WAIT_MS at most). */
static void fz_request(const char *buf, size_t len, int oversize)
{
    fz_ans.seq++;
    fz_ans.count = 0;
    control_serve(node_control_socket(fz.nc), buf, len, on_answer,
                  (void *)(uintptr_t)fz_ans.seq);
    uint64_t end = regsim_now(fz.rs) + FZ_WAIT_MS;
    while (fz_ans.count == 0 && regsim_now(fz.rs) < end)
        if (regsim_step(fz.rs) != 0)
            die("a node failed while a request waited", NULL);
    if (fz_ans.count == 0)
        die("no answer within the wait", NULL);
    check_answer(buf, len, oversize);
    json_decref(fz_ans.doc);
    fz_ans.doc = NULL;
    if (regsim_step(fz.rs) != 0) /* the cluster lives on between requests */
        die("a node failed after a request", NULL);
}

/* First byte 0: the rest padded to over the limit; 1: to exactly it. */
static void fz_padded(const uint8_t *data, size_t size)
{
    size_t want = data[0] == 0 ? CONTROL_MAX_REQUEST + 1 + (size > 1 ? data[1] : 0)
                               : CONTROL_MAX_REQUEST;
    size_t keep = size - 1 < want ? size - 1 : want;
    char *buf = malloc(want);
    if (buf == NULL)
        die("out of memory", NULL);
    memcpy(buf, data + 1, keep);
    memset(buf + keep, ' ', want - keep);
    fz_request(buf, want, data[0] == 0);
    free(buf);
}

/* First byte 2: the rest is several requests separated by NUL bytes (no
 * JSON text holds one), served in order on a fresh cluster: what one request
 * leaves behind (a child, a name gone, a listing) can be found by the next,
 * and a finding that needs them replays from one file. */
static void fz_script(const uint8_t *data, size_t size)
{
    fz_teardown();
    fz_setup();
    const uint8_t *at = data + 1, *end = data + size;
    while (at <= end) {
        const uint8_t *nul = memchr(at, 0, (size_t)(end - at));
        const uint8_t *stop = nul ? nul : end;
        fz_request((const char *)at, (size_t)(stop - at), 0);
        at = stop + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz.rs == NULL || fz.inputs == FZ_RESET) {
        if (fz.rs)
            fz_teardown();
        fz_setup();
    }
    fz.inputs++;
    if (size > 0 && data[0] <= 1) {
        fz_padded(data, size);
        return 0;
    }
    if (size > 0 && data[0] == 2) {
        fz_script(data, size);
        return 0;
    }
    fz_request((const char *)data, size, 0); /* as a socket read gives it: no NUL after */
    return 0;
}

/* ---- seeds: every command, with typical and boundary arguments -------------------- */

typedef struct seed_list {
    fuzz_seed_t *s;
    size_t n, cap;
} seed_list_t;

static void seed_add(seed_list_t *l, const char *text, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->s = realloc(l->s, l->cap * sizeof(*l->s));
        if (l->s == NULL)
            die("out of memory", NULL);
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        die("out of memory", NULL);
    memcpy(copy, text, len);
    l->s[l->n++] = (fuzz_seed_t){copy, len};
}

/* printf-made seeds; each command once with an id and once without. */
static void seed_cmd(seed_list_t *l, const char *cmd, const char *args)
{
    char b[2048];
    int n = snprintf(b, sizeof(b), "{\"cmd\":\"%s\"%s%s}", cmd, args ? ",\"args\":" : "",
                     args ? args : "");
    seed_add(l, b, (size_t)n);
    n = snprintf(b, sizeof(b), "{\"id\":\"seed-%zu\",\"cmd\":\"%s\"%s%s}", l->n, cmd,
                 args ? ",\"args\":" : "", args ? args : "");
    seed_add(l, b, (size_t)n);
}

/* A string of n copies of c, for names and ids at their limits. */
static const char *run_of(char c, size_t n)
{
    static char b[4][1024];
    static int k;
    char *out = b[k++ % 4];
    memset(out, c, n);
    out[n] = '\0';
    return out;
}

static void seeds_names(seed_list_t *l)
{
    char a[1400];
    seed_cmd(l, "register", "{\"name\":\"alpha\"}");
    seed_cmd(l, "register", "{\"name\":\"beta\",\"meta\":{\"zone\":\"eu\",\"k\":\"v\"}}");
    seed_cmd(l, "register", "{\"name\":\"x\",\"meta\":null}");
    seed_cmd(l, "register", "{\"name\":\"\"}");
    seed_cmd(l, "register", "{\"name\":\"tab\\there\"}");
    seed_cmd(l, "register", "{\"name\":\"m\",\"meta\":{\"k\":1}}");
    snprintf(a, sizeof(a), "{\"name\":\"%s\"}", run_of('n', HERD_NAME_MAX - 1));
    seed_cmd(l, "register", a);
    snprintf(a, sizeof(a), "{\"name\":\"%s\"}", run_of('n', HERD_NAME_MAX));
    seed_cmd(l, "register", a);
    snprintf(a, sizeof(a),
             "{\"name\":\"meta8\",\"meta\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\","
             "\"d\":\"4\",\"e\":\"5\",\"f\":\"6\",\"g\":\"7\",\"%s\":\"%s\"}}",
             run_of('k', HERD_META_KEY_MAX), run_of('v', HERD_META_VALUE_MAX));
    seed_cmd(l, "register", a);
    snprintf(a, sizeof(a), "{\"name\":\"meta9\",\"meta\":{\"%s\":\"%s\"}}",
             run_of('k', HERD_META_KEY_MAX + 1), run_of('v', HERD_META_VALUE_MAX + 1));
    seed_cmd(l, "register", a);
    seed_cmd(l, "unregister", "{\"name\":\"alpha\"}");
    seed_cmd(l, "unregister", "{\"name\":\"c1\"}");
    seed_cmd(l, "whereis", "{\"name\":\"beta\"}");
    seed_cmd(l, "whereis", "{\"name\":\"nobody\"}");
    seed_cmd(l, "whereis", "{}");
    seed_cmd(l, "names", NULL);
    seed_cmd(l, "names", "{\"prefix\":\"a\"}");
    seed_cmd(l, "names", "{\"limit\":1}");
    seed_cmd(l, "names", "{\"limit\":10000}");
    seed_cmd(l, "names", "{\"limit\":10001}");
    seed_cmd(l, "names", "{\"limit\":0}");
    seed_cmd(l, "names", "{\"limit\":2,\"cursor\":\"1:2\"}");
    seed_cmd(l, "names", "{\"limit\":2,\"cursor\":\"ffffffffffffffff:18446744073709551615\"}");
}

static void seeds_children(seed_list_t *l)
{
    char a[4200];
    seed_cmd(l, "start", "{\"service\":\"counter\",\"name\":\"c1\"}");
    seed_cmd(l, "start", "{\"service\":\"counter\",\"name\":\"c2\",\"arg\":\"hello\"}");
    seed_cmd(l, "start", "{\"service\":\"nosuch\",\"name\":\"c3\"}");
    seed_cmd(l, "start", "{\"service\":\"counter\",\"name\":\"beta\"}");
    snprintf(a, sizeof(a), "{\"service\":\"counter\",\"name\":\"%s\"}",
             run_of('c', HERD_NAME_MAX - 1));
    seed_cmd(l, "start", a);
    snprintf(a, sizeof(a), "{\"service\":\"%s\",\"name\":\"c4\"}",
             run_of('s', HERD_SERVICE_NAME_MAX + 1));
    seed_cmd(l, "start", a);
    seed_cmd(l, "call", "{\"name\":\"c1\",\"request\":\"incr\"}");
    seed_cmd(l, "call", "{\"name\":\"c1\",\"request\":\"incr 4611686018427387904\"}");
    seed_cmd(l, "call", "{\"name\":\"c2\",\"request\":\"decr 1\",\"timeout_ms\":1}");
    seed_cmd(l, "call", "{\"name\":\"c1\",\"request\":\"get\",\"timeout_ms\":600000}");
    seed_cmd(l, "call", "{\"name\":\"c1\",\"request\":\"reset\",\"timeout_ms\":0}");
    seed_cmd(l, "call", "{\"name\":\"alpha\",\"request\":\"get\"}");
    seed_cmd(l, "call", "{\"name\":\"nobody\",\"request\":\"get\"}");
    seed_cmd(l, "stop", "{\"name\":\"c2\"}");
    seed_cmd(l, "stop", "{\"name\":\"nobody\"}");
    seed_cmd(l, "children", NULL);
    seed_cmd(l, "children", "{\"node\":\"node2\",\"limit\":5}");
    seed_cmd(l, "children", "{\"node\":\"node9\"}");
    seed_cmd(l, "handoffs", NULL);
    seed_cmd(l, "drain", "{\"node\":\"node2\"}");
    seed_cmd(l, "drain", "{\"node\":\"node2\",\"on\":false}");
    seed_cmd(l, "drain", "{\"node\":\"node1\",\"on\":true}");
    seed_cmd(l, "drain", "{\"node\":\"node1\",\"on\":0}");
}

static void seeds_cluster(seed_list_t *l)
{
    char a[200];
    seed_cmd(l, "members", NULL);
    seed_cmd(l, "members", "{}");
    seed_cmd(l, "ring", NULL);
    seed_cmd(l, "stats", "null");
    seed_cmd(l, "crdt", NULL);
    seed_cmd(l, "block", "{\"node\":\"node2\"}");
    seed_cmd(l, "unblock", "{\"node\":\"node2\"}");
    seed_cmd(l, "block", "{\"node\":\"node1\"}");
    seed_cmd(l, "unblock", "{\"node\":\"node7\"}");
    seed_cmd(l, "nosuch", NULL);
    seed_cmd(l, "events", NULL);
    seed_cmd(l, "events", "{\"since\":0,\"wait_ms\":1}");
    seed_cmd(l, "events", "{\"since\":3,\"wait_ms\":10000,\"incarnation\":1}");
    seed_cmd(l, "events", "{\"since\":18446744073709551615}");
    seed_cmd(l, "events", "{\"since\":-1,\"wait_ms\":0}");
    snprintf(a, sizeof(a), "{\"id\":\"%s\",\"cmd\":\"stats\"}", run_of('i', FZ_ID_MAX));
    seed_add(l, a, strlen(a));
    snprintf(a, sizeof(a), "{\"id\":\"%s\",\"cmd\":\"stats\"}", run_of('i', FZ_ID_MAX + 1));
    seed_add(l, a, strlen(a));
    static const char *const odd[] = {"", "{}", "[]", "\"stats\"", "{\"cmd\":42}",
                                      "{\"id\":7,\"cmd\":\"ring\"}", "{\"cmd\":\"ring\",\"args\":[1]}"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        seed_add(l, odd[i], strlen(odd[i]));
    static const char big[] = "\0{\"cmd\":\"stats\"}", edge[] = "\1{\"cmd\":\"stats\"}";
    seed_add(l, big, sizeof big - 1); /* padded over the limit */
    seed_add(l, edge, sizeof edge - 1); /* padded to exactly the limit */
}

/* Scripts (first byte 2): requests in a row on a fresh cluster. */
static void seeds_scripts(seed_list_t *l)
{
    static const char children[] = /* a child whose name went, listed by its node */
        "\2{\"cmd\":\"start\",\"args\":{\"service\":\"counter\",\"name\":\"c1\"}}"
        "\0{\"cmd\":\"unregister\",\"args\":{\"name\":\"c1\"}}"
        "\0{\"cmd\":\"children\",\"args\":{\"node\":\"node1\",\"limit\":2}}";
    static const char pages[] = /* a listing paged after its names changed */
        "\2{\"cmd\":\"register\",\"args\":{\"name\":\"a\"}}"
        "\0{\"cmd\":\"register\",\"args\":{\"name\":\"b\"}}"
        "\0{\"cmd\":\"names\",\"args\":{\"limit\":1}}"
        "\0{\"cmd\":\"unregister\",\"args\":{\"name\":\"b\"}}"
        "\0{\"cmd\":\"names\",\"args\":{\"limit\":1,\"cursor\":\"1:1\"}}";
    static const char moves[] = /* children moved off a drained node, then called */
        "\2{\"cmd\":\"start\",\"args\":{\"service\":\"counter\",\"name\":\"c1\"}}"
        "\0{\"cmd\":\"drain\",\"args\":{\"node\":\"node1\"}}"
        "\0{\"cmd\":\"call\",\"args\":{\"name\":\"c1\",\"request\":\"incr\"}}"
        "\0{\"cmd\":\"handoffs\"}\0{\"cmd\":\"stop\",\"args\":{\"name\":\"c1\"}}";
    static const char events[] = /* a name's events, after a wait that ended empty */
        "\2{\"cmd\":\"events\",\"args\":{\"wait_ms\":50}}"
        "\0{\"cmd\":\"register\",\"args\":{\"name\":\"a\"}}"
        "\0{\"cmd\":\"events\",\"args\":{\"since\":0,\"incarnation\":1}}"
        "\0{\"cmd\":\"events\",\"args\":{\"since\":1,\"wait_ms\":20}}";
    seed_add(l, events, sizeof events - 1);
    seed_add(l, children, sizeof children - 1);
    seed_add(l, pages, sizeof pages - 1);
    seed_add(l, moves, sizeof moves - 1);
}

size_t fuzz_seeds(fuzz_seed_t **out)
{
    seed_list_t l = {0};
    seeds_names(&l);
    seeds_children(&l);
    seeds_cluster(&l);
    seeds_scripts(&l);
    *out = l.s;
    return l.n;
}

void fuzz_seeds_free(fuzz_seed_t *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(seeds[i].data);
    free(seeds);
}
