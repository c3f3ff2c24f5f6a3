/*
 * herdd_groups.c - herdd's control commands for process groups (see
 * herdd_groups.h). Listings are paged (control_list.h): `groups` snapshots
 * the group names, `group_members` the members' pids as text, and each
 * page reads them again as they are now.
 */
#include "herdd_groups.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_list.h"
#include "herd_group.h"
#include "herdd_children.h"
#include "herdd_debug.h"

#define PID_TEXT_MAX 128

static int group_arg(json_t *args, const char **group, char *msg, size_t cap)
{
    *group = json_string_value(json_object_get(args, "group"));
    size_t len = *group ? strlen(*group) : 0;
    if (len == 0 || len > HERD_GROUP_MAX)
        return snprintf(msg, cap, "want a group of 1..%u bytes", HERD_GROUP_MAX), HERD_EINVAL;
    return 0;
}

/* "NODE/INCARNATION/SERIAL" (NODE a member's name, or "?HEX" for a node
 * this one does not know) into *pid. */
static int pid_parse(const char *text, herd_pid_t *pid)
{
    const char *slash = text ? strchr(text, '/') : NULL;
    char node[80];
    if (slash == NULL || slash == text || (size_t)(slash - text) >= sizeof(node))
        return HERD_EINVAL;
    memcpy(node, text, (size_t)(slash - text));
    node[slash - text] = '\0';
    uint64_t inc, serial;
    char tail;
    if (sscanf(slash + 1, "%" SCNu64 "/%" SCNu64 "%c", &inc, &serial, &tail) != 2 ||
        serial == 0)
        return HERD_EINVAL;
    if (node[0] == '?') {
        char *end = NULL;
        pid->node = strtoull(node + 1, &end, 16);
        if (end == node + 1 || *end)
            return HERD_EINVAL;
    } else {
        pid->node = herd_node_id_of(node);
    }
    pid->incarnation = inc;
    pid->serial = serial;
    return 0;
}

static json_t *meta_json(const herd_meta_t *meta)
{
    json_t *m = json_object();
    for (uint8_t i = 0; meta && i < meta->count; i++)
        json_object_set_new(m, meta->kv[i].key, json_string(meta->kv[i].value));
    return m;
}

/* ---- groups ------------------------------------------------------------------------ */

typedef struct groups_list {
    void *d;
    const char *prefix;
    control_snap_t *snap;
    int rc;
} groups_list_t;

static int add_group(void *data, const char *group, size_t members)
{
    (void)members;
    groups_list_t *l = data;
    l->rc = control_snap_add(l->snap, group, 0);
    return l->rc != 0;
}

static int groups_fill(void *data, control_snap_t *s)
{
    groups_list_t *l = data;
    l->snap = s;
    l->rc = 0;
    int rc = herd_group_list(herdd_node(l->d), l->prefix, add_group, l);
    return rc < 0 ? rc : l->rc;
}

static json_t *groups_item(void *data, const char *group, int tag)
{
    (void)tag;
    groups_list_t *l = data;
    int count = herd_group_count(herdd_node(l->d), group);
    if (count <= 0)
        return NULL; /* no member any more */
    return json_pack("{s:s, s:i}", "group", group, "members", count);
}

static const control_list_ops_t groups_ops = {groups_fill, NULL, groups_item};

int herdd_cmd_groups(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    json_t *jprefix = json_object_get(args, "prefix");
    if (jprefix && !json_is_null(jprefix) && !json_is_string(jprefix))
        return snprintf(msg, cap, "prefix must be a string"), HERD_EINVAL;
    groups_list_t l = {data, json_string_value(jprefix), NULL, 0};
    return herdd_list_serve(data, args, &groups_ops, &l, result, msg, cap);
}

/* ---- a group's members -------------------------------------------------------------- */

typedef struct members_list {
    void *d;
    const char *group;
    control_snap_t *snap;
    int rc;
} members_list_t;

static int add_member(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)group;
    (void)meta;
    members_list_t *l = data;
    char text[PID_TEXT_MAX], node[80];
    json_t *p = herdd_pid_json(herdd_node(l->d), pid, node, sizeof(node));
    snprintf(text, sizeof(text), "%s", p ? json_string_value(p) : "");
    json_decref(p);
    l->rc = control_snap_add(l->snap, text, 0);
    return l->rc != 0;
}

static int members_fill(void *data, control_snap_t *s)
{
    members_list_t *l = data;
    l->snap = s;
    l->rc = 0;
    int rc = herd_group_members(herdd_node(l->d), l->group, add_member, l);
    return rc < 0 ? rc : l->rc;
}

static json_t *members_item(void *data, const char *pid_text, int tag)
{
    (void)tag;
    members_list_t *l = data;
    herd_node_t *n = herdd_node(l->d);
    herd_pid_t pid;
    herd_meta_t meta;
    if (pid_parse(pid_text, &pid) != 0 || herd_group_member(n, l->group, pid, &meta) != 1)
        return NULL; /* left since the snapshot */
    char node[80];
    json_t *p = herdd_pid_json(n, pid, node, sizeof(node));
    return json_pack("{s:o, s:s, s:o}", "pid", p, "node", node, "meta", meta_json(&meta));
}

static const control_list_ops_t members_ops = {members_fill, NULL, members_item};

int herdd_cmd_group_members(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    const char *group;
    int rc = group_arg(args, &group, msg, cap);
    if (rc)
        return rc;
    members_list_t l = {data, group, NULL, 0};
    return herdd_list_serve(data, args, &members_ops, &l, result, msg, cap);
}

/* ---- publish, join, leave ---------------------------------------------------------- */

int herdd_cmd_publish(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    const char *group;
    int rc = group_arg(args, &group, msg, cap);
    if (rc)
        return rc;
    const char *text = json_string_value(json_object_get(args, "message"));
    if (text == NULL)
        return snprintf(msg, cap, "publish needs a message (a string)"), HERD_EINVAL;
    rc = herd_group_publish(herdd_node(data), NULL, group, text, strlen(text));
    if (rc < 0)
        return snprintf(msg, cap, "cannot publish to '%.200s': %s", group, herd_strerror(rc)),
               rc;
    *result = json_pack("{s:s, s:i}", "group", group, "reached", rc);
    return 0;
}

int herdd_cmd_join(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herd_node_t *n = herdd_node(data);
    const char *group;
    herd_meta_t meta;
    int rc = group_arg(args, &group, msg, cap);
    if (rc == 0)
        rc = herdd_meta_from_json(json_object_get(args, "meta"), &meta, msg, cap);
    if (rc)
        return rc;
    char arg[HOLDER_ARG_MAX];
    herd_spawn_opts_t so;
    herdd_holder_opts(data, HOLDER_GROUP, group, arg, &so);
    herd_pid_t pid;
    if ((rc = herd_spawn(n, &so, &pid)) != 0)
        return snprintf(msg, cap, "cannot start a holder: %s", herd_strerror(rc)), rc;
    if ((rc = herd_group_join(n, group, pid, &meta)) != 0) {
        herd_stop(n, pid, HERD_REASON_SHUTDOWN);
        return snprintf(msg, cap, "cannot join '%.200s': %s", group, herd_strerror(rc)), rc;
    }
    char node[80];
    json_t *p = herdd_pid_json(n, pid, node, sizeof(node));
    *result = json_pack("{s:s, s:s, s:o, s:o}", "group", group, "node", node, "pid", p, "meta",
                        meta_json(&meta));
    return 0;
}

int herdd_cmd_leave(void *data, json_t *args, json_t **result, char *msg, size_t cap)
{
    herd_node_t *n = herdd_node(data);
    const char *group;
    int rc = group_arg(args, &group, msg, cap);
    if (rc)
        return rc;
    const char *text = json_string_value(json_object_get(args, "pid"));
    herd_pid_t pid;
    if (pid_parse(text, &pid) != 0)
        return snprintf(msg, cap, "want a pid as NODE/INCARNATION/SERIAL (as members shows it)"),
               HERD_EINVAL;
    rc = herd_group_leave(n, group, pid);
    if (rc == HERD_ENOENT)
        return snprintf(msg, cap, "%.100s is not a member of '%.200s'", text, group), rc;
    if (rc)
        return snprintf(msg, cap, "cannot leave '%.200s': %s", group, herd_strerror(rc)), rc;
    /* a holder this socket started, now in no group, has nothing left to do */
    int stopped = herdd_holder_of(data, pid) && !herdd_in_some_group(n, pid) &&
                  herd_stop(n, pid, HERD_REASON_SHUTDOWN) == 0;
    *result = json_pack("{s:s, s:s, s:b}", "group", group, "pid", text, "stopped", stopped);
    return 0;
}
