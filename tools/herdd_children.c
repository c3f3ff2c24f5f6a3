/*
 * herdd_children.c - herdd's supervisor commands (see herdd_children.h).
 *
 * `start` and `call` wait for other nodes, so they answer later through
 * control_defer/control_finish: `start` through herd_start_child_async's
 * callback, `call` through herd_node_call_async's, when the reply (or its
 * timeout) comes.
 */
#include "herdd_children.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_dsup.h"
#include "herdd_debug.h"
#include "log.h"
#include "registry_layers.h"

#define START_TIMEOUT_MS 5000
#define START_ARG_MAX ((int)HERD_SPEC_MAX - 80) /* what herd_start_child takes */
#define CALL_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000
#define CALL_MAX 4096

/* ---- start ---------------------------------------------------------------------- */

typedef struct start_req {
    void *data;
    uint64_t token;
    char name[HERD_NAME_MAX + 1];
    char service[HERD_SERVICE_NAME_MAX + 1];
} start_req_t;

/* Where `name`'s state is kept: [OWNER, REPLICA...] (herd_child_replica_nodes),
 * or null when it is no child this node can place. */
json_t *herdd_replica_nodes_json(void *data, const char *name)
{
    char nodes[HERD_MAX_REPLICAS][65];
    int n = herd_child_replica_nodes(herdd_node(data), name, nodes, HERD_MAX_REPLICAS);
    if (n <= 0)
        return json_null();
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, json_string(nodes[i]));
    return list;
}

static void start_done(void *arg, const herd_start_result_t *res)
{
    start_req_t *r = arg;
    json_t *out = NULL;
    if (res->status == 0) {
        out = herdd_name_json(r->data, r->name, res->pid, NULL);
        json_object_del(out, "meta");
        json_object_set_new(out, "service", json_string(r->service));
        json_object_set_new(out, "already_started", json_boolean(res->already_started));
        /* what its spec asks for: a child that ran already keeps its own */
        json_object_set_new(out, "replica_nodes", herdd_replica_nodes_json(r->data, r->name));
    }
    char msg[300];
    snprintf(msg, sizeof(msg), "'%s' was not registered within %d ms", r->name,
             START_TIMEOUT_MS);
    control_finish(herdd_control(r->data), r->token, res->status, out, msg);
    free(r);
}

int herdd_check_name(const char *what, const char *name, char *msg, size_t cap)
{
    size_t len = strlen(name);
    if (len == 0 || len >= HERD_NAME_MAX)
        return snprintf(msg, cap, "%s is %zu bytes: want 1..%u", what, len,
                        HERD_NAME_MAX - 1), HERD_EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return snprintf(msg, cap, "%s contains a control character (byte 0x%02x at "
                            "offset %zu): names are printable", what,
                            (unsigned char)name[i], i), HERD_EINVAL;
    return 0;
}

/* start's optional "replicas": the copies of the child's state, the running
 * one included (absent: the service's default). */
static int start_replicas(json_t *j, uint8_t *out, char *msg, size_t cap)
{
    if (j == NULL)
        return 0;
    if (json_is_integer(j) && json_integer_value(j) >= 1 &&
        json_integer_value(j) <= HERD_MAX_REPLICAS) {
        *out = (uint8_t)json_integer_value(j);
        return 0;
    }
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(msg, cap, "replicas must be a whole number 1..%d (copies of the child's state, "
             "the running one included), not %.40s", HERD_MAX_REPLICAS, text ? text : "that");
    free(text);
    return HERD_EINVAL;
}

int herdd_cmd_start(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)result;
    const char *service = json_string_value(json_object_get(args, "service"));
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *arg = json_string_value(json_object_get(args, "arg"));
    if (service == NULL || name == NULL)
        return snprintf(msg, cap, "start needs a service and a name"), HERD_EINVAL;
    int rc = herdd_check_name("the name", name, msg, cap);
    if (rc)
        return rc;
    if ((rc = herdd_check_name("the service", service, msg, cap)) != 0)
        return rc;
    if (strlen(service) > HERD_SERVICE_NAME_MAX)
        return snprintf(msg, cap, "the service name is over %d bytes",
                        (int)HERD_SERVICE_NAME_MAX), HERD_EINVAL;
    uint8_t replicas = 0;
    if ((rc = start_replicas(json_object_get(args, "replicas"), &replicas, msg, cap)) != 0)
        return rc;
    json_t *strict = json_object_get(args, "refuse_underreplicated");
    if (strict && !json_is_boolean(strict))
        return snprintf(msg, cap, "refuse_underreplicated must be true or false"), HERD_EINVAL;
    if (arg && strlen(arg) > START_ARG_MAX)
        return snprintf(msg, cap, "the argument is %zu bytes, over the limit of %d",
                        strlen(arg), START_ARG_MAX), HERD_ETOOBIG;
    start_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HERD_ENOMEM;
    r->data = data;
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->service, sizeof(r->service), "%s", service);
    herd_child_req_t req = {.name = name, .service = service, .arg = arg,
                            .arg_len = arg ? strlen(arg) : 0,
                            .restart = HERD_RESTART_PERMANENT, .replicas = replicas,
                            .refuse_underreplicated = strict && json_is_true(strict)};
    r->token = control_defer(herdd_control(data));
    rc = herd_start_child_async(herdd_node(data), &req, START_TIMEOUT_MS, start_done, r);
    if (rc) {
        free(r);
        if (rc == HERD_EINVAL)
            snprintf(msg, cap, "cannot start '%.255s': bad service '%.63s' or a bad name",
                     name, service);
        else if (rc == HERD_ENOSERVICE)
            snprintf(msg, cap, "cannot start '%.255s': no member provides service '%.63s'",
                     name, service);
        return rc;
    }
    return CONTROL_DEFERRED;
}

/* ---- call -------------------------------------------------------------------------- */

/*
 * A `call` waits for its reply without holding up other requests: it is
 * made with herd_node_call_async and answered (control_finish) from the
 * callback. The calls a control socket waits for are its own (call_list_t,
 * in the socket's instance: nothing is shared between sockets); at most
 * CALL_PENDING_MAX wait at once. When the socket stops first, each waits
 * for its callback alone (orphaned) and is freed there, unanswered.
 */

#define CALL_PENDING_MAX 64

struct call_req {
    void *data;        /* the control socket's instance; NULL once orphaned */
    call_list_t *list; /* the same */
    uint64_t control;  /* control_defer's token for the answer */
    struct call_req *next;
    herd_pid_t callee;
    char name[HERD_NAME_MAX + 1];
};

static void call_forget(call_req_t *r)
{
    for (call_req_t **p = &r->list->pending; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            r->list->count--;
            return;
        }
    }
}

void herdd_calls_orphan(call_list_t *l)
{
    for (call_req_t *r = l->pending; r; r = r->next)
        r->data = NULL, r->list = NULL;
    l->pending = NULL;
    l->count = 0;
}

/* What a failed call's error says of its request, for the people who read
 * the message: ENOTCONN promises it was not applied (runtime/PROTOCOL.md,
 * "Calls and lost members"); ETIMEDOUT does not know (EUNCERTAIN's own
 * message says so). */
static const char *call_verdict(int rc)
{
    if (rc == HERD_ENOTCONN)
        return " (the request was not applied)";
    if (rc == HERD_ETIMEDOUT)
        return " (the request may or may not have been applied)";
    return "";
}

/* `copies`: how many copies held the state the reply reflects (0: the
 * callee does not say: its state is not replicated). */
static void call_finish(call_req_t *r, int rc, const uint8_t *reply, size_t len,
                        unsigned copies)
{
    json_t *out = NULL;
    char msg[640] = "";
    if (rc == 0) {
        char *text = strndup((const char *)reply, len);
        out = herdd_name_json(r->data, r->name, r->callee, NULL);
        json_object_del(out, "meta");
        json_object_set_new(out, "reply", json_string(text ? text : ""));
        char *end = NULL;
        long long v = text && text[0] ? strtoll(text, &end, 10) : 0;
        if (end && *end == '\0')
            json_object_set_new(out, "value", json_integer(v));
        if (copies)
            json_object_set_new(out, "replicated", json_integer(copies));
        free(text);
    } else if (herd_app_error_code(rc)) { /* the service said no: its own words */
        snprintf(msg, sizeof(msg), "'%.255s' answered with its service's error %d%s%.*s",
                 r->name, herd_app_error_code(rc), len ? ": " : "", (int)(len < 320 ? len : 320),
                 reply ? (const char *)reply : "");
    } else {
        snprintf(msg, sizeof(msg), "call to '%.255s' failed: %s%s%s%.*s", r->name,
                 herd_strerror(rc), call_verdict(rc), len ? ": " : "",
                 (int)(len < 160 ? len : 160),
                 reply ? (const char *)reply : ""); /* the process's own reason */
    }
    call_forget(r);
    control_finish(herdd_control(r->data), r->control, rc, out, msg);
    free(r);
}

/* The call's end: its reply, or why there is none (herd_call_cb). */
static void call_done(void *data, int rc, herd_reply_t *reply)
{
    call_req_t *r = data;
    if (r->data == NULL) { /* its control socket stopped: nobody to answer */
        free(r);
        return;
    }
    if (rc == 0)
        call_finish(r, reply->status, reply->data, reply->len, reply->copies);
    else
        call_finish(r, rc, NULL, 0, 0);
}

int herdd_cmd_call(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)result;
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *request = json_string_value(json_object_get(args, "request"));
    json_t *t = json_object_get(args, "timeout_ms");
    if (name == NULL || request == NULL || strlen(name) > HERD_NAME_MAX)
        return snprintf(msg, cap, "call needs a name and a request"), HERD_EINVAL;
    size_t len = strlen(request);
    if (len > CALL_MAX)
        return snprintf(msg, cap, "request over %d bytes", CALL_MAX), HERD_ETOOBIG;
    if (t && (!json_is_integer(t) || json_integer_value(t) < 1 ||
              json_integer_value(t) > 600000))
        return snprintf(msg, cap, "timeout_ms must be 1..600000"), HERD_EINVAL;
    herd_node_t *node = herdd_node(data);
    call_list_t *calls = herdd_calls(data);
    herd_pid_t pid;
    if (herd_whereis(node, name, &pid, NULL) != 0)
        return snprintf(msg, cap, "no process is registered as '%.255s'", name), HERD_ENOENT;
    if (calls->count >= CALL_PENDING_MAX)
        return snprintf(msg, cap, "%d calls are waiting already", CALL_PENDING_MAX), HERD_EBUSY;
    call_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HERD_ENOMEM;
    r->data = data;
    r->list = calls;
    r->callee = pid;
    snprintf(r->name, sizeof(r->name), "%s", name);
    uint32_t timeout = t ? (uint32_t)json_integer_value(t) : CALL_TIMEOUT_MS;
    int rc = herd_node_call_async(node, pid, request, len, timeout, call_done, r);
    if (rc) { /* not sent: never applied */
        free(r);
        return snprintf(msg, cap, "call to '%.255s' failed: %s%s", name, herd_strerror(rc),
                        call_verdict(rc)),
               rc;
    }
    r->control = control_defer(herdd_control(data));
    r->next = calls->pending;
    calls->pending = r;
    calls->count++;
    return CONTROL_DEFERRED;
}

/* ---- stop, children, handoffs, drain ------------------------------------------------ */

typedef struct stop_req {
    void *data;
    uint64_t token;
    char name[HERD_NAME_MAX + 1];
} stop_req_t;

static void stop_done(void *arg, int status)
{
    stop_req_t *r = arg;
    json_t *out = status ? NULL : json_pack("{s:s, s:b}", "name", r->name, "stopped", 1);
    char msg[800];
    snprintf(msg, sizeof(msg), "'%s' is stopped here, but not every member acknowledged its "
             "removal within %d ms (some are down or cut off): it keeps spreading; if this "
             "node crashes first, '%s' may come back", r->name, STOP_TIMEOUT_MS, r->name);
    control_finish(herdd_control(r->data), r->token, status, out, msg);
    free(r);
}

int herdd_cmd_stop(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)result;
    const char *name = json_string_value(json_object_get(args, "name"));
    if (name == NULL)
        return snprintf(msg, cap, "stop needs a name"), HERD_EINVAL;
    stop_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HERD_ENOMEM;
    r->data = data;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->token = control_defer(herdd_control(data));
    int rc = herd_terminate_child_async(herdd_node(data), name, STOP_TIMEOUT_MS, stop_done, r);
    if (rc) {
        free(r);
        if (rc == HERD_ENOENT)
            snprintf(msg, cap, "no child is named '%.255s'", name);
        return rc;
    }
    return CONTROL_DEFERRED;
}

/*
 * children: a snapshot of the spec names (of NODE's registered children
 * when NODE is given), sorted, with the state and replication of this
 * node's own children as tags and attachments (one pass over them, a binary
 * search each); each page then looks up the registration and spec of its
 * names. Linear in the children, a page of JSON per request. Only the
 * owner knows a child's replica set and what each member acknowledged, so
 * a child of another node shows null there.
 */
#define STATE_NONE (-1)

typedef struct children_ctx {
    void *data;
    herd_node_t *node;
    const char *only; /* node name, or NULL */
    control_snap_t *snap;
    int rc;
} children_ctx_t;

static int child_add(void *arg, const char *name, const uint8_t *spec, size_t len)
{
    (void)spec;
    (void)len;
    children_ctx_t *c = arg;
    herd_pid_t pid;
    if (c->only && (herd_whereis(c->node, name, &pid, NULL) != 0 ||
                    pid.node != herd_node_id_of(c->only)))
        return 0;
    c->rc = control_snap_add(c->snap, name, STATE_NONE);
    return c->rc != 0;
}

static int children_fill(void *arg, control_snap_t *s)
{
    children_ctx_t *c = arg;
    c->snap = s;
    c->rc = 0;
    int rc = herd_spec_foreach(c->node, child_add, c);
    return rc < 0 ? rc : c->rc;
}

/* A child's replication as the tag pass saw it (herd_child_view_t). */
typedef struct child_repl {
    uint64_t version, released;
    uint8_t copies, count, under;
    struct {
        uint64_t node, acked;
    } set[]; /* count */
} child_repl_t;

static int local_state(void *arg, const herd_child_view_t *v)
{
    children_ctx_t *c = arg;
    size_t n = v->replica_count < HERD_MAX_REPLICAS ? v->replica_count : HERD_MAX_REPLICAS - 1;
    child_repl_t *r = malloc(sizeof(*r) + n * sizeof(r->set[0]));
    if (r) {
        *r = (child_repl_t){v->version, v->released, v->copies, (uint8_t)n,
                            v->under_replicated != 0};
        for (size_t i = 0; i < n; i++) {
            r->set[i].node = v->replicas[i];
            r->set[i].acked = v->replica_acked[i];
        }
    }
    if (r == NULL || control_snap_tag_extra(c->snap, v->name, (int)v->state, r) != 0) {
        free(r); /* out of memory: the state alone, its replication null */
        control_snap_tag(c->snap, v->name, (int)v->state);
    }
    return 0;
}

/* copies, replicas [{node, acked}], version, released, under_replicated:
 * null for a child this node does not run (its owner knows them). */
static json_t *repl_json(void *data, const child_repl_t *r)
{
    if (r == NULL)
        return json_pack("{s:n, s:n, s:n, s:n, s:n}", "copies", "replicas", "version",
                         "released", "under_replicated");
    json_t *set = json_array();
    for (size_t i = 0; i < r->count; i++) {
        char node[80];
        herdd_member_name(data, r->set[i].node, node, sizeof(node));
        json_array_append_new(set, json_pack("{s:s, s:I}", "node", node, "acked",
                                             (json_int_t)r->set[i].acked));
    }
    return json_pack("{s:i, s:o, s:I, s:I, s:b}", "copies", (int)r->copies, "replicas", set,
                     "version", (json_int_t)r->version, "released", (json_int_t)r->released,
                     "under_replicated", (int)r->under);
}

static void children_tag(void *arg, control_snap_t *s)
{
    children_ctx_t *c = arg;
    c->snap = s;
    if (c->only == NULL || strcmp(c->only, herd_node_name(c->node)) == 0)
        herd_which_children(c->node, local_state, c);
}

static json_t *children_item(void *arg, const char *name, int state)
{
    children_ctx_t *c = arg;
    herd_pid_t pid = HERD_PID_NONE;
    int registered = herd_whereis(c->node, name, &pid, NULL) == 0;
    json_t *o = registered ? herdd_name_json(c->data, name, pid, NULL)
                           : json_pack("{s:s, s:n, s:n}", "name", name, "node", "pid");
    json_object_del(o, "meta");
    herd_child_spec_view_t sv;
    json_object_set_new(o, "service", json_string(herd_child_spec_get(c->node, name, &sv) == 0
                                                      ? sv.service
                                                      : ""));
    const char *st = state != STATE_NONE ? herd_child_state_name((herd_child_state_t)state)
                     : registered        ? "running"
                                         : "missing";
    json_object_set_new(o, "state", json_string(st));
    json_object_update_new(o, repl_json(c->data, control_list_extra()));
    return o;
}

static const control_list_ops_t children_ops = {children_fill, children_tag, children_item};

int herdd_cmd_children(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    const char *only = json_string_value(json_object_get(args, "node"));
    herd_node_t *n = herdd_node(data);
    if (only && strcmp(only, herd_node_name(n)) != 0 &&
        herd_cluster_member_incarnation(n, herd_node_id_of(only)) == 0)
        return snprintf(msg, cap, "'%.64s' is not a member", only), HERD_ENOENT;
    children_ctx_t c = {data, n, only, NULL, 0};
    return herdd_list_serve(data, args, &children_ops, &c, result, msg, cap);
}

static int handoff_json(void *arg, const herd_handoff_view_t *h)
{
    json_array_append_new(
        arg, json_pack("{s:s, s:s, s:I, s:s, s:I, s:f, s:i}", "name", h->name, "target",
                       h->target, "id", (json_int_t)h->id, "phase", h->phase, "started_ms",
                       (json_int_t)h->started_ms, "freeze_to_commit_ms",
                       h->freeze_to_commit_us / 1000.0, "forwarded", (int)h->forwarded));
    return 0;
}

int herdd_cmd_handoffs(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    (void)args;
    (void)msg;
    (void)cap;
    json_t *list = json_array();
    herd_handoffs(herdd_node(data), handoff_json, list);
    *result = list;
    return 0;
}

int herdd_cmd_drain(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    const char *node = json_string_value(json_object_get(args, "node"));
    json_t *on = json_object_get(args, "on");
    if (node == NULL || (on && !json_is_boolean(on)))
        return snprintf(msg, cap, "drain needs a node (and \"on\" a boolean)"), HERD_EINVAL;
    int rc = herd_drain(herdd_node(data), node, on ? json_is_true(on) : 1);
    if (rc == HERD_ENOTCONN)
        return snprintf(msg, cap, "'%.64s' is not a member", node), HERD_ENOENT;
    if (rc)
        return rc;
    *result = json_pack("{s:s, s:b}", "node", node, "draining", on ? json_is_true(on) : 1);
    return 0;
}
