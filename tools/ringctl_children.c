/*
 * ringctl_children.c - ringctl's commands for children started by name, and
 * for rehearsing faults: start, call, stop, children, handoffs, drain,
 * block, unblock, register, unregister (the node side: herdd_children.h and
 * herdd_debug.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringctl.h"

#define WAIT_START_MS 8000 /* the node waits 5 s for a registration */
#define WAIT_CALL_MS 8000
#define WAIT_STOP_MS 8000 /* the node waits 5 s for every member to hold it */
#define DRAIN_POLL_MS 100

typedef struct child_cmd {
    const char *name;
    int min_args, max_args; /* positional, after the command; -1: any */
    const char *help;
} child_cmd_t;

static const child_cmd_t child_cmds[] = {
    {"start", 2, 3,
     "usage: ringctl [--json] [--node ADDR] start SERVICE NAME [ARG] [--replicas N]\n"
     "       [--refuse-underreplicated]\n\n"
     "Start a child by name: the owner of NAME among the members that provide\n"
     "SERVICE (see `members`) runs it under its supervisor and registers NAME.\n"
     "A NAME that runs already is answered with its pid; a SERVICE that no\n"
     "member provides fails at once (ENOSERVICE). Services of herdd: counter.\n"
     "--replicas N: the copies of its state, the running one included, 1-5\n"
     "(default: the service's; herdd's counter keeps 2). A reply leaves only once\n"
     "the owner's ring successors hold the state it reflects, so a crash of fewer\n"
     "than N nodes loses no answered change. A NAME that runs already keeps the\n"
     "copies it has. --refuse-underreplicated: while fewer members than N can\n"
     "keep a copy, its calls are refused (EUNAVAILABLE, nothing applied) instead\n"
     "of answered with fewer copies. The answer says where the state is kept: the owner, then\n"
     "its replicas (as many as the members allow).\n"
     "JSON: {\"name\",\"node\",\"pid\",\"service\",\"already_started\":BOOL,\n"
     "\"replica_nodes\":[OWNER,REPLICA...]}\n"},
    {"call", 2, -1,
     "usage: ringctl [--json] [--node ADDR] call NAME REQUEST...\n\n"
     "Call the process registered as NAME with REQUEST (the words joined by\n"
     "spaces). The counter takes: incr [N] | decr [N] | get | reset, and answers\n"
     "its value after the operation. N is 1..2^62 (4611686018427387904); a step\n"
     "that would take the value outside -2^63..2^63-1 is refused (ERANGE) and\n"
     "changes nothing.\n"
     "JSON: {\"name\",\"node\",\"pid\",\"reply\",\"value\":INT,\"replicated\":N} (value\n"
     "when the reply is a whole number; replicated when the child's state is\n"
     "replicated: how many copies held the state the reply reflects, the running\n"
     "one included, fewer than asked when not enough members could hold one).\n"
     "Unknown NAME: exit 1.\n"
     "A failure says whether the request took effect: exit 1 when it did not (e.g.\n"
     "ENOTCONN, the callee's node is down: the request was not applied and never\n"
     "will be); exit 3 when nobody can know (EUNCERTAIN: the callee's node went\n"
     "down after the request left; ETIMEDOUT: no answer within 5 s; or no answer\n"
     "from the asked node after the request was sent): it may have been applied.\n"},
    {"stop", 1, 1,
     "usage: ringctl [--json] [--node ADDR] stop NAME\n\n"
     "Terminate the child NAME: its spec is removed, so nothing restarts it.\n"
     "Exit 0 once every member (down ones included) holds the removal; exit 3\n"
     "(EUNCERTAIN, outcome unknown) when some member did not acknowledge it\n"
     "within 5 s: the removal keeps spreading, but a crash of the asked node\n"
     "before it reaches them may bring NAME back.\n"
     "JSON: {\"name\",\"stopped\":true}. Unknown child: exit 1.\n"},
    {"children", 0, 1,
     "usage: ringctl [--json] [--node ADDR] children [NODE]\n\n"
     "Every child the cluster must run (those NODE runs, when given): where it\n"
     "runs and its state: running, restarting, moving, arriving (the asked node's\n"
     "own), running (registered elsewhere) or missing (no registration yet).\n"
     "For the children the asked node runs, their replication: the copies of\n"
     "the state asked for (COPIES), the last version put (VERSION), and each\n"
     "member of the replica set with the version it acknowledged (REPLICAS,\n"
     "NODE@VERSION); \"under-replicated\" ends the line of a child whose answered\n"
     "state fewer than COPIES live copies hold. Only a child's node knows these:\n"
     "\"-\" for the others (ask their node: ringctl --node ITS_ADDR children NODE).\n"
     "JSON: [{\"name\",\"node\",\"pid\",\"service\",\"state\",\"copies\",\n"
     "\"replicas\":[{\"node\",\"acked\"}],\"version\",\"released\",\n"
     "\"under_replicated\":BOOL}], sorted by name; released is the highest version\n"
     "whose replies went; copies to under_replicated are null for a child the\n"
     "asked node does not run.\n"},
    {"handoffs", 0, 0,
     "usage: ringctl [--json] [--node ADDR] handoffs\n\n"
     "The moves this node coordinated: in flight first, then the recent ones.\n"
     "JSON: [{\"name\",\"target\",\"id\",\"phase\",\"started_ms\",\n"
     "        \"freeze_to_commit_ms\",\"forwarded\"}]; phase is offered (in flight),\n"
     "committed, aborted, rejected, or too_big (its state is over the size limit\n"
     "for a move: it stays); forwarded counts the messages that were\n"
     "queued during the move and went to the new copy.\n"},
    {"drain", 1, 1,
     "usage: ringctl [--json] [--node ADDR] drain NODE [--off] [--timeout S]\n\n"
     "Drain NODE: it leaves the ring and every child it runs moves to its new\n"
     "owner with its state; NODE stays a member and may then leave with nothing\n"
     "lost. Waits until NODE runs no child (at most S seconds, default 60;\n"
     "exit 1 when some remain, listing them on stderr with why when the asked\n"
     "node knows, e.g. a state over the size limit). --off ends a drain.\n"
     "JSON: {\"node\",\"draining\":BOOL,\"moved\":N,\"remaining\":N}\n"},
    {"block", 1, 1,
     "usage: ringctl [--json] [--node ADDR] block NODE\n\n"
     "Fault injection: the asked node drops every frame to and from NODE, as one\n"
     "side of a netsplit. JSON: {\"node\",\"blocked\",\"blocked_peers\",...}\n"},
    {"unblock", 1, 1,
     "usage: ringctl [--json] [--node ADDR] unblock NODE\n\n"
     "Let frames to and from NODE flow again (see block).\n"},
    {"register", 1, 9,
     "usage: ringctl [--json] [--node ADDR] register NAME [KEY=VALUE...]\n\n"
     "Start a holder process on the asked node (it does nothing until stopped)\n"
     "and register it as NAME with the metadata given. Taken NAME: exit 1.\n"
     "JSON: {\"name\",\"node\",\"pid\",\"meta\":{...}}\n"},
    {"unregister", 1, 1,
     "usage: ringctl [--json] [--node ADDR] unregister NAME\n\n"
     "Remove NAME's registration (a holder made by register on that node stops).\n"
     "JSON: {\"name\",\"node\",\"pid\",\"stopped\":BOOL}\n"},
};

#define CHILD_CMD_COUNT (sizeof(child_cmds) / sizeof(child_cmds[0]))

static const child_cmd_t *find_cmd(const char *cmd)
{
    for (size_t i = 0; i < CHILD_CMD_COUNT; i++)
        if (strcmp(child_cmds[i].name, cmd) == 0)
            return &child_cmds[i];
    return NULL;
}

const char *ctl_children_help(const char *cmd)
{
    const child_cmd_t *k = find_cmd(cmd);
    return k ? k->help : NULL;
}

#define REPLICAS_MAX 5 /* HERD_MAX_REPLICAS: herdd refuses more as well */

typedef struct child_args {
    const char *pos[16];
    int count;
    int off;
    long timeout_s;
    int replicas; /* start --replicas; 0: the service's default */
    int strict;   /* start --refuse-underreplicated */
} child_args_t;

/* start's --replicas N (N or =N): 1..REPLICAS_MAX. */
static int parse_replicas(const ctl_t *c, const char *v, int *out)
{
    char *end = NULL;
    long n = v && *v >= '0' && *v <= '9' ? strtol(v, &end, 10) : 0;
    if (end == NULL || *end || n < 1 || n > REPLICAS_MAX)
        return ctl_usage(c, "--replicas wants a whole number 1-%d (copies of the child's "
                         "state, the running one included), got '%.40s'", REPLICAS_MAX,
                         v ? v : "");
    *out = (int)n;
    return 0;
}

static int parse(const ctl_t *c, const child_cmd_t *k, int argc, char **argv, child_args_t *a,
                 int *help)
{
    a->timeout_s = 60;
    int seen_timeout = 0, rc;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (strcmp(k->name, "start") == 0 &&
            (strcmp(s, "--replicas") == 0 || strncmp(s, "--replicas=", 11) == 0)) {
            if (a->replicas)
                return ctl_usage(c, "--replicas given twice; give it once");
            if (s[10] == '\0' && i + 1 >= argc)
                return ctl_usage(c, "--replicas needs a value");
            if ((rc = parse_replicas(c, s[10] == '=' ? s + 11 : argv[++i], &a->replicas)))
                return rc;
        } else if (strcmp(k->name, "start") == 0 && strcmp(s, "--refuse-underreplicated") == 0) {
            if (a->strict++)
                return ctl_usage(c, "--refuse-underreplicated given twice; give it once");
        } else if (strcmp(k->name, "drain") == 0 && strcmp(s, "--off") == 0) {
            if (a->off++)
                return ctl_usage(c, "--off given twice; give it once");
        } else if (strcmp(k->name, "drain") == 0 && strcmp(s, "--timeout") == 0) {
            if (seen_timeout++)
                return ctl_usage(c, "--timeout given twice; give it once");
            char *end = NULL;
            a->timeout_s = i + 1 < argc ? strtol(argv[++i], &end, 10) : -1;
            if (end == NULL || *end || a->timeout_s < 1 || a->timeout_s > 3600)
                return ctl_usage(c, "--timeout takes 1..3600 seconds");
        } else if (s[0] == '-' && s[1] == '-' && strcmp(k->name, "call") != 0) {
            return ctl_usage(c, "unknown option '%s'", s);
        } else if (a->count < 16) {
            a->pos[a->count++] = s;
        } else {
            return ctl_usage(c, "too many arguments");
        }
    }
    if (a->count < k->min_args)
        return ctl_usage(c, "missing argument");
    if (k->max_args >= 0 && a->count > k->max_args)
        return ctl_usage(c, "unexpected argument '%s'", a->pos[k->max_args]);
    return 0;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* ---- each command -------------------------------------------------------------- */

/* "a,b,c" of a JSON list of strings into out ("-" for none or not a list). */
static const char *join_names(json_t *list, char *out, size_t cap)
{
    size_t used = 0, i;
    json_t *v;
    snprintf(out, cap, "-");
    json_array_foreach(list, i, v)
    {
        int n = snprintf(out + used, cap - used, "%s%s", i ? "," : "",
                         json_string_value(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    return out;
}

static int run_start(const ctl_t *c, const child_args_t *a)
{
    int rc = 0;
    json_t *args = json_pack("{s:s, s:s, s:s?}", "service", a->pos[0], "name", a->pos[1],
                             "arg", a->count > 2 ? a->pos[2] : NULL);
    if (a->replicas)
        json_object_set_new(args, "replicas", json_integer(a->replicas));
    if (a->strict)
        json_object_set_new(args, "refuse_underreplicated", json_true());
    json_t *res = ctl_live_wait(c, "start", args, WAIT_START_MS, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    char nodes[400];
    printf("%s %s on %s (pid %s); state kept on %s\n", str(res, "name"),
           json_is_true(json_object_get(res, "already_started")) ? "was already running"
                                                                 : "started",
           str(res, "node"), str(res, "pid"),
           join_names(json_object_get(res, "replica_nodes"), nodes, sizeof(nodes)));
    json_decref(res);
    return 0;
}

static int run_call(const ctl_t *c, const child_args_t *a)
{
    char request[4096] = "";
    size_t used = 0;
    for (int i = 1; i < a->count; i++) {
        int n = snprintf(request + used, sizeof(request) - used, "%s%s", i > 1 ? " " : "",
                         a->pos[i]);
        if (n < 0 || (size_t)n >= sizeof(request) - used)
            return ctl_usage(c, "request too long");
        used += (size_t)n;
    }
    int rc = 0;
    json_t *args = json_pack("{s:s, s:s}", "name", a->pos[0], "request", request);
    json_t *res = ctl_live_change(c, "call", args, WAIT_CALL_MS, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%s\n", str(res, "reply"));
    json_decref(res);
    return 0;
}

static int run_simple(const ctl_t *c, const child_cmd_t *k, const child_args_t *a)
{
    int rc = 0;
    json_t *args = json_object();
    int by_node = strcmp(k->name, "block") == 0 || strcmp(k->name, "unblock") == 0;
    json_object_set_new(args, by_node ? "node" : "name", json_string(a->pos[0]));
    if (strcmp(k->name, "register") == 0) {
        json_t *meta = json_object();
        for (int i = 1; i < a->count; i++) {
            const char *eq = strchr(a->pos[i], '=');
            if (eq == NULL || eq == a->pos[i]) {
                json_decref(meta);
                json_decref(args);
                return ctl_usage(c, "metadata '%s' is not KEY=VALUE", a->pos[i]);
            }
            char key[64];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - a->pos[i]), a->pos[i]);
            json_object_set_new(meta, key, json_string(eq + 1));
        }
        json_object_set_new(args, "meta", meta);
    }
    /* a stop waits until every member holds it (the node answers by 5 s) */
    json_t *res = strcmp(k->name, "stop") == 0 ? ctl_live_wait(c, k->name, args, WAIT_STOP_MS, &rc)
                                               : ctl_live_args(c, k->name, args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    if (by_node)
        printf("%s: %s\n", str(res, "node"),
               json_is_true(json_object_get(res, "blocked")) ? "blocked" : "unblocked");
    else if (strcmp(k->name, "register") == 0)
        printf("%s registered on %s (pid %s)\n", str(res, "name"), str(res, "node"),
               str(res, "pid"));
    else
        printf("%s: %s\n", str(res, "name"),
               strcmp(k->name, "stop") == 0 ? "stopped" : "unregistered");
    json_decref(res);
    return 0;
}

/* "n2@7,n3@6": each member of a replica set with the version it
 * acknowledged; "none" for an empty set, "-" when not known. */
static void replicas_text(json_t *set, char *out, size_t cap)
{
    size_t used = 0, i;
    json_t *r;
    snprintf(out, cap, "%s", !json_is_array(set) ? "-" : json_array_size(set) ? "" : "none");
    json_array_foreach(set, i, r)
    {
        int n = snprintf(out + used, cap - used, "%s%s@%lld", i ? "," : "", str(r, "node"),
                         (long long)json_integer_value(json_object_get(r, "acked")));
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

static int run_children(const ctl_t *c, const child_args_t *a)
{
    int rc = 0;
    json_t *args = json_pack("{s:s?}", "node", a->count ? a->pos[0] : NULL);
    json_t *res = ctl_live_args(c, "children", args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%-32s %-16s %-10s %-11s %6s %8s %-24s %s\n", "NAME", "NODE", "SERVICE", "STATE",
           "COPIES", "VERSION", "REPLICAS", "PID");
    size_t i, under = 0, unknown = 0;
    json_t *o;
    json_array_foreach(res, i, o)
    {
        char copies[8] = "-", version[24] = "-", set[400];
        json_t *cp = json_object_get(o, "copies");
        if (json_is_integer(cp)) {
            snprintf(copies, sizeof(copies), "%lld", (long long)json_integer_value(cp));
            snprintf(version, sizeof(version), "%lld",
                     (long long)json_integer_value(json_object_get(o, "version")));
        }
        replicas_text(json_object_get(o, "replicas"), set, sizeof(set));
        int is_under = json_is_true(json_object_get(o, "under_replicated"));
        under += (size_t)is_under;
        unknown += !json_is_integer(cp);
        printf("%-32s %-16s %-10s %-11s %6s %8s %-24s %s%s\n", str(o, "name"), str(o, "node"),
               str(o, "service"), str(o, "state"), copies, version, set, str(o, "pid"),
               is_under ? "  under-replicated" : "");
    }
    /* "N children" first: scripts take the line's second word for the end */
    printf("%zu children", json_array_size(res));
    if (under || unknown) {
        printf(" (");
        if (under)
            printf("%zu under-replicated%s", under, unknown ? "; " : "");
        if (unknown)
            printf("%zu run by other nodes: \"-\", ask their node for their replicas",
                   unknown);
        putchar(')');
    }
    putchar('\n');
    json_decref(res);
    return 0;
}

static int run_handoffs(const ctl_t *c)
{
    int rc = 0;
    json_t *res = ctl_live_args(c, "handoffs", NULL, &rc);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%-32s %-16s %-10s %14s %9s\n", "NAME", "TARGET", "PHASE", "FREEZE->COMMIT", "FORWARDED");
    size_t i;
    json_t *o;
    json_array_foreach(res, i, o)
    {
        printf("%-32s %-16s %-10s %11.3f ms %9lld\n", str(o, "name"), str(o, "target"),
               str(o, "phase"), json_number_value(json_object_get(o, "freeze_to_commit_ms")),
               (long long)json_integer_value(json_object_get(o, "forwarded")));
    }
    json_decref(res);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How many children NODE runs, as the asked node sees it; -1 on failure. */
static long children_of(const ctl_t *c, const char *node, int *rc)
{
    json_t *args = json_pack("{s:s}", "node", node);
    json_t *res = ctl_live_args(c, "children", args, rc);
    json_decref(args);
    long n = res ? (long)json_array_size(res) : -1;
    json_decref(res);
    return n;
}

/* The last phase the asked node's handoffs show for `name` ("too_big":
 * its state is over the size limit for a move), or NULL. */
static const char *last_phase(json_t *handoffs, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach(handoffs, i, h)
        if (strcmp(str(h, "name"), name) == 0)
            return str(h, "phase");
    return NULL;
}

/* On stderr: each child still on `node`, with why when the asked node knows
 * (its handoffs: in flight first, then the most recent). */
static void list_remaining(const ctl_t *c, const char *node)
{
    int rc = 0;
    json_t *args = json_pack("{s:s}", "node", node);
    json_t *kids = ctl_live_args(c, "children", args, &rc);
    json_decref(args);
    json_t *handoffs = kids ? ctl_live_args(c, "handoffs", NULL, &rc) : NULL;
    size_t i;
    json_t *k;
    json_array_foreach(kids, i, k)
    {
        const char *phase = last_phase(handoffs, str(k, "name"));
        fprintf(stderr, "  %s: %s\n", str(k, "name"),
                phase == NULL                      ? "not moved yet"
                : strcmp(phase, "too_big") == 0    ? "its state is over the size limit for a move"
                : strcmp(phase, "offered") == 0    ? "moving"
                                                   : phase);
    }
    json_decref(handoffs);
    json_decref(kids);
}

static int run_drain(const ctl_t *c, const child_args_t *a)
{
    int rc = 0;
    const char *node = a->pos[0];
    long before = a->off ? 0 : children_of(c, node, &rc);
    if (before < 0)
        return rc;
    json_t *args = json_pack("{s:s, s:b}", "node", node, "on", !a->off);
    json_t *res = ctl_live_args(c, "drain", args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    json_decref(res);
    long left = 0;
    for (long waited = 0; !a->off && waited <= a->timeout_s * 1000; waited += DRAIN_POLL_MS) {
        if ((left = children_of(c, node, &rc)) <= 0)
            break;
        sleep_ms(DRAIN_POLL_MS);
    }
    if (left < 0)
        return rc;
    json_t *out = json_pack("{s:s, s:b, s:i, s:i}", "node", node, "draining", !a->off, "moved",
                            (int)(before - left), "remaining", (int)left);
    if (left > 0) {
        list_remaining(c, node);
        ctl_fail(c, 1, "ETIMEDOUT", "%ld children still on %s after %ld s", left, node,
                 a->timeout_s);
    }
    if (c->json && left == 0)
        return ctl_print_json(out);
    if (left == 0)
        printf(a->off ? "%s: drain ended\n" : "%s: drained, %d children moved off\n", node,
               (int)(before - left));
    json_decref(out);
    return left > 0 ? 1 : 0;
}

int ctl_children_main(const ctl_t *c, int argc, char **argv)
{
    const child_cmd_t *k = find_cmd(argv[0]);
    child_args_t a = {0};
    int help = 0;
    int rc = parse(c, k, argc, argv, &a, &help);
    if (rc)
        return rc;
    if (help)
        return fputs(k->help, stdout), 0;
    if (strcmp(k->name, "start") == 0)
        return run_start(c, &a);
    if (strcmp(k->name, "call") == 0)
        return run_call(c, &a);
    if (strcmp(k->name, "children") == 0)
        return run_children(c, &a);
    if (strcmp(k->name, "handoffs") == 0)
        return run_handoffs(c);
    if (strcmp(k->name, "drain") == 0)
        return run_drain(c, &a);
    return run_simple(c, k, &a);
}
