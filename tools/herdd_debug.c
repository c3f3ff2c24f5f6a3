/*
 * herdd_debug.c - herdd's block / unblock / register / unregister control
 * commands (see herdd_debug.h).
 *
 * They exist so that the failures the registry is built for can be made on
 * purpose against real herdd processes: a netsplit (block each side's peers
 * on the other side), and names held by live processes on both sides of it.
 * A holder is the smallest such process: it runs until something stops it
 * (an unregister here, a lost name conflict, the node's end) or, checking
 * every HOLDER_CHECK_MS, finds its name let go of (an unregister on another
 * node): a name's holder never outlives the name.
 */
#include "herdd_debug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_group.h"
#include "herd_registry.h"
#include "herdd_children.h"
#include "log.h"

/* ---- holders ------------------------------------------------------------------- */

/* How often a holder checks that it still holds its name. */
#define HOLDER_CHECK_MS 1000

/* A holder's state: the list of the control socket that started it (NULL
 * once that socket stopped), its pid, the timer that checks it still holds
 * its name (or, a group holder, that it is still in a group), and the name. */
struct holder {
    holder_list_t *list;
    herd_pid_t pid;
    uint64_t timer;
    int kind; /* HOLDER_NAME or HOLDER_GROUP */
    char name[];
};

/* Whether `pid` is one of the holders in `l` (unregister stops only those). */
static int holder_find(const holder_list_t *l, herd_pid_t pid)
{
    for (size_t i = 0; i < l->count; i++)
        if (herd_pid_equal(l->items[i]->pid, pid))
            return (int)i;
    return -1;
}

static int holder_list_add(holder_list_t *l, holder_t *h)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        holder_t **items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return HERD_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = h;
    h->list = l;
    return 0;
}

void herdd_holders_orphan(holder_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        l->items[i]->list = NULL;
    free(l->items);
    *l = (holder_list_t){0};
}

/* arg: the holder list (a pointer: holders start on this node only), the
 * kind (one byte), then the name or group. */
static int holder_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    holder_list_t *list;
    if (len <= sizeof(list) + 1)
        return HERD_EINVAL;
    memcpy(&list, arg, sizeof(list));
    int kind = ((const uint8_t *)arg)[sizeof(list)];
    len -= sizeof(list) + 1;
    holder_t *st = malloc(sizeof(*st) + len + 1);
    if (st == NULL)
        return HERD_ENOMEM;
    memcpy(st->name, (const char *)arg + sizeof(list) + 1, len);
    st->name[len] = '\0';
    st->kind = kind;
    st->pid = herd_self(self);
    /* a name let go of from another node (its unregister reaches the
     * registry here, not this program) ends the holder at its next check */
    int rc = herd_send_interval(herd_proc_node(self), st->pid, HOLDER_CHECK_MS, NULL, 0,
                                &st->timer);
    if (rc == 0 && (rc = holder_list_add(list, st)) != 0)
        herd_cancel_timer(herd_proc_node(self), st->timer);
    if (rc) {
        free(st);
        return rc;
    }
    *state = st;
    return 0;
}

static int any_group(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)data;
    (void)group;
    (void)pid;
    (void)meta;
    return 1; /* one is enough */
}

int herdd_in_some_group(herd_node_t *n, herd_pid_t pid)
{
    return herd_group_which(n, pid, any_group, NULL) > 0;
}

/* The check: a holder whose name is let go of, or that is in no group any
 * more, has nothing left to do. */
static int holder_info(herd_proc_t *self, void *state, const herd_msg_t *msg)
{
    holder_t *st = state;
    if (msg->ref != st->timer)
        return 0;
    herd_node_t *n = herd_proc_node(self);
    int holds = st->kind == HOLDER_GROUP ? herdd_in_some_group(n, herd_self(self))
                                         : herd_registry_owns(n, st->name, herd_self(self));
    if (holds == 0)
        herd_exit(n, herd_self(self), HERD_REASON_NORMAL);
    return 0;
}

static void holder_terminate(herd_proc_t *self, void *state, int reason)
{
    (void)self;
    holder_t *st = state;
    holder_list_t *l = st->list;
    int i = l ? holder_find(l, st->pid) : -1;
    if (i >= 0)
        l->items[i] = l->items[--l->count];
    if (reason != HERD_REASON_SHUTDOWN && reason != HERD_REASON_NORMAL)
        herd_log(HERD_LOG_WARN, "herdd", "holder %llu of '%s' exited: %s",
                 (unsigned long long)st->pid.serial, st->name, herd_reason_name(reason));
    free(st);
}

static const herd_behaviour_t holder_behaviour = {
    .name = "holder",
    .init = holder_init,
    .handle_info = holder_info,
    .terminate = holder_terminate,
};

void herdd_holder_opts(void *data, int kind, const char *name, char arg[HOLDER_ARG_MAX],
                       herd_spawn_opts_t *out)
{
    holder_list_t *holders = herdd_holders(data);
    size_t len = strnlen(name, HERD_NAME_MAX);
    memcpy(arg, &holders, sizeof(holders));
    arg[sizeof(holders)] = (char)kind;
    memcpy(arg + sizeof(holders) + 1, name, len);
    *out = (herd_spawn_opts_t){.behaviour = &holder_behaviour, .arg = arg,
                               .arg_len = sizeof(holders) + 1 + len};
}

int herdd_holder_of(void *data, herd_pid_t pid)
{
    return holder_find(herdd_holders(data), pid) >= 0;
}

/* ---- helpers ------------------------------------------------------------------- */

/* The member called `name` as this node knows it. */
static int member_by_name(herd_node_t *n, const char *name, herd_member_info_t *out)
{
    int rc = herd_cluster_member(n, herd_node_id_of(name), out);
    return rc == 0 && strcmp(out->name, name) != 0 ? HERD_ENOENT : rc;
}

/* The name of the node `id` (this one, or a member), else "?HEX". */
static void node_name(herd_node_t *n, uint64_t id, char *out, size_t cap)
{
    herd_member_info_t m;
    if (id == herd_node_id_of(herd_node_name(n)))
        snprintf(out, cap, "%s", herd_node_name(n));
    else if (herd_cluster_member(n, id, &m) == 0)
        snprintf(out, cap, "%s", m.name);
    else
        snprintf(out, cap, "?%016llx", (unsigned long long)id);
}

/* "node/incarnation/serial", as herdd's whereis shows a pid. */
json_t *herdd_pid_json(herd_node_t *n, herd_pid_t pid, char *node, size_t cap)
{
    char text[200];
    node_name(n, pid.node, node, cap);
    snprintf(text, sizeof(text), "%s/%llu/%llu", node, (unsigned long long)pid.incarnation,
             (unsigned long long)pid.serial);
    return json_string(text);
}

static const char *name_arg(json_t *args)
{
    return json_string_value(json_object_get(args, "name"));
}

/* ---- block / unblock ------------------------------------------------------------ */

static int block(void *data, json_t *args, json_t **result, char *msg, size_t cap, int on)
{
    herd_node_t *n = herdd_node(data);
    const char *peer = json_string_value(json_object_get(args, "node"));
    if (peer == NULL)
        return snprintf(msg, cap, "%s needs a node", on ? "block" : "unblock"), HERD_EINVAL;
    if (strcmp(peer, herd_node_name(n)) == 0)
        return snprintf(msg, cap, "a node cannot %s itself", on ? "block" : "unblock"),
               HERD_EINVAL;
    herd_member_info_t m;
    int rc = member_by_name(n, peer, &m);
    if (rc == HERD_ENOENT)
        return snprintf(msg, cap, "'%.100s' is not a member known to %s", peer,
                        herd_node_name(n)),
               rc;
    if (rc == 0)
        rc = herd_cluster_block(n, herd_node_id_of(peer), on);
    herd_cluster_stats_t st;
    if (rc == 0)
        rc = herd_cluster_stats(n, &st);
    if (rc)
        return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
    *result = json_pack("{s:s, s:b, s:I, s:I, s:I}", "node", peer, "blocked", on,
                        "blocked_peers", (json_int_t)st.blocked_peers, "blocked_in",
                        (json_int_t)st.blocked_in, "blocked_out", (json_int_t)st.blocked_out);
    return 0;
}

int herdd_cmd_block(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    return block(data, args, result, msg, cap, 1);
}

int herdd_cmd_unblock(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    return block(data, args, result, msg, cap, 0);
}

/* ---- register / unregister ---------------------------------------------------- */

/* args.meta (absent or null: none) into *meta. */
int herdd_meta_from_json(json_t *obj, herd_meta_t *meta, char *msg, size_t cap)
{
    memset(meta, 0, sizeof(*meta));
    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return snprintf(msg, cap, "meta must be an object of strings"), HERD_EINVAL;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v))
            return snprintf(msg, cap, "meta '%.40s' is not a string", key), HERD_EINVAL;
        if (herd_meta_set(meta, key, json_string_value(v)) != 0)
            return snprintf(msg, cap,
                            "meta holds at most %u keys of 1-%u bytes with values of at most "
                            "%u bytes",
                            HERD_META_MAX, HERD_META_KEY_MAX, HERD_META_VALUE_MAX),
                   HERD_ERANGE;
    }
    return 0;
}

static int taken(herd_node_t *n, const char *name, herd_pid_t pid, char *msg, size_t cap)
{
    char node[80];
    json_t *p = herdd_pid_json(n, pid, node, sizeof(node));
    snprintf(msg, cap, "'%.200s' is registered already, to %s", name, json_string_value(p));
    json_decref(p);
    return HERD_EEXIST;
}

int herdd_cmd_register(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herd_node_t *n = herdd_node(data);
    const char *name = name_arg(args);
    if (name == NULL)
        return snprintf(msg, cap, "register needs a name"), HERD_EINVAL;
    herd_meta_t meta;
    int rc = herdd_check_name("the name", name, msg, cap);
    if (rc == 0)
        rc = herdd_meta_from_json(json_object_get(args, "meta"), &meta, msg, cap);
    if (rc)
        return rc;
    herd_pid_t pid;
    rc = herd_whereis(n, name, &pid, NULL);
    if (rc == 0)
        return taken(n, name, pid, msg, cap); /* nothing started for nothing */
    if (rc != HERD_ENOENT)
        return snprintf(msg, cap, "bad name: %s", herd_strerror(rc)), rc;
    size_t len = strlen(name);
    char arg[HOLDER_ARG_MAX];
    if (len > HERD_NAME_MAX)
        return snprintf(msg, cap, "the name is over %d bytes", HERD_NAME_MAX), HERD_ENAMETOOLONG;
    herd_spawn_opts_t so;
    herdd_holder_opts(data, HOLDER_NAME, name, arg, &so);
    /* the holder runs only if it got the name: a name taken meanwhile
     * starts nothing */
    rc = herd_spawn_named(n, name, &meta, &so, &pid);
    if (rc) {
        herd_pid_t other;
        if (rc == HERD_EEXIST && herd_whereis(n, name, &other, NULL) == 0)
            return taken(n, name, other, msg, cap);
        return snprintf(msg, cap, "cannot register '%.200s': %s", name, herd_strerror(rc)), rc;
    }
    char node[80];
    json_t *m = json_object();
    for (uint8_t i = 0; i < meta.count; i++)
        json_object_set_new(m, meta.kv[i].key, json_string(meta.kv[i].value));
    json_t *p = herdd_pid_json(n, pid, node, sizeof(node));
    *result = json_pack("{s:s, s:s, s:o, s:o}", "name", name, "node", node, "pid", p, "meta", m);
    return 0;
}

int herdd_cmd_unregister(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herd_node_t *n = herdd_node(data);
    const char *name = name_arg(args);
    if (name == NULL)
        return snprintf(msg, cap, "unregister needs a name"), HERD_EINVAL;
    herd_pid_t pid;
    int rc = herd_whereis(n, name, &pid, NULL);
    if (rc == 0)
        rc = herd_unregister(n, name);
    if (rc == HERD_ENOENT)
        return snprintf(msg, cap, "no process is registered as '%.200s'", name), rc;
    if (rc)
        return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
    /* a holder of this node goes with its name (it has nothing else to do) */
    int stopped = holder_find(herdd_holders(data), pid) >= 0 &&
                  herd_stop(n, pid, HERD_REASON_SHUTDOWN) == 0;
    char node[80];
    json_t *p = herdd_pid_json(n, pid, node, sizeof(node));
    *result = json_pack("{s:s, s:s, s:o, s:b}", "name", name, "node", node, "pid", p,
                        "stopped", stopped);
    return 0;
}
