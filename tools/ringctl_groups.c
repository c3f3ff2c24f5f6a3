/*
 * ringctl_groups.c - ringctl's commands for process groups: groups,
 * members GROUP, publish, join, leave (the node side: herdd_groups.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringctl.h"

#define GROUP_ARGS_MAX 1024 /* words: a longer command line is refused, not cut */
#define MESSAGE_MAX 65536

typedef struct group_cmd {
    const char *name;
    int min_args, max_args; /* positional, after the command; -1: any */
    const char *help;
} group_cmd_t;

static const group_cmd_t group_cmds[] = {
    {"groups", 0, 1,
     "usage: ringctl [--json] [--node ADDR] groups [PREFIX]\n\n"
     "The process groups with a member the asked node sees (starting with\n"
     "PREFIX), and how many members each has.\n"
     "JSON: [{\"group\",\"members\":N}], sorted by group.\n"},
    {"members", 1, 1,
     "usage: ringctl [--json] [--node ADDR] members GROUP\n\n"
     "The members of GROUP the asked node sees: pid, node and metadata (an\n"
     "unknown or empty group lists none). Without GROUP, `members` lists the\n"
     "cluster's members instead.\n"
     "JSON: [{\"pid\",\"node\",\"meta\":{...}}], sorted by pid.\n"},
    {"publish", 2, -1,
     "usage: ringctl [--json] [--node ADDR] publish GROUP MESSAGE...\n\n"
     "Cast MESSAGE (the words joined by spaces) to every member of GROUP, on\n"
     "every node: each other node gets it in one message. Says how many\n"
     "members it went to (0 for an empty or unknown group: not an error).\n"
     "JSON: {\"group\",\"reached\":N}\n"},
    {"join", 1, 9,
     "usage: ringctl [--json] [--node ADDR] join GROUP [KEY=VALUE...]\n\n"
     "Start a holder process on the asked node (it does nothing, and runs\n"
     "while it is in some group) and join it to GROUP with the metadata given.\n"
     "JSON: {\"group\",\"node\",\"pid\",\"meta\":{...}}\n"},
    {"leave", 2, 2,
     "usage: ringctl [--json] [--node ADDR] leave GROUP PID\n\n"
     "Take PID (NODE/INCARNATION/SERIAL, as members shows it) out of GROUP. A\n"
     "holder that join started on the asked node stops once it is in no group.\n"
     "Not a member: exit 1.\n"
     "JSON: {\"group\",\"pid\",\"stopped\":BOOL}\n"},
};

#define GROUP_CMD_COUNT (sizeof(group_cmds) / sizeof(group_cmds[0]))

static const group_cmd_t *find_cmd(const char *cmd)
{
    for (size_t i = 0; i < GROUP_CMD_COUNT; i++)
        if (strcmp(group_cmds[i].name, cmd) == 0)
            return &group_cmds[i];
    return NULL;
}

const char *ctl_groups_help(const char *cmd)
{
    const group_cmd_t *k = find_cmd(cmd);
    return k ? k->help : NULL;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* "k=v,k2=v2" of a metadata object ("-" for none). */
static void meta_text(json_t *meta, char *out, size_t cap)
{
    size_t used = 0;
    const char *key;
    json_t *v;
    snprintf(out, cap, "-");
    json_object_foreach(meta, key, v)
    {
        int n = snprintf(out + used, cap - used, "%s%s=%s", used ? "," : "", key,
                         json_string_value(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

static int run_groups(const ctl_t *c, int argc, const char **pos)
{
    int rc = 0;
    json_t *args = json_pack("{s:s?}", "prefix", argc ? pos[0] : NULL);
    json_t *res = ctl_live_args(c, "groups", args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%-40s %s\n", "GROUP", "MEMBERS");
    size_t i;
    json_t *o;
    json_array_foreach(res, i, o)
        printf("%-40s %lld\n", str(o, "group"),
               (long long)json_integer_value(json_object_get(o, "members")));
    json_decref(res);
    return 0;
}

static int run_members(const ctl_t *c, const char **pos)
{
    int rc = 0;
    json_t *args = json_pack("{s:s}", "group", pos[0]);
    json_t *res = ctl_live_args(c, "group_members", args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%-40s %-16s %s\n", "PID", "NODE", "META");
    size_t i;
    json_t *o;
    json_array_foreach(res, i, o)
    {
        char meta[512];
        meta_text(json_object_get(o, "meta"), meta, sizeof(meta));
        printf("%-40s %-16s %s\n", str(o, "pid"), str(o, "node"), meta);
    }
    json_decref(res);
    return 0;
}

static int run_publish(const ctl_t *c, int argc, const char **pos)
{
    char *message = malloc(MESSAGE_MAX);
    size_t used = 0;
    if (message == NULL)
        return ctl_fail(c, 1, "ENOMEM", "out of memory");
    message[0] = '\0';
    for (int i = 1; i < argc; i++) {
        int n = snprintf(message + used, MESSAGE_MAX - used, "%s%s", i > 1 ? " " : "", pos[i]);
        if (n < 0 || (size_t)n >= MESSAGE_MAX - used) {
            free(message);
            return ctl_usage(c, "message over %d bytes", MESSAGE_MAX - 1);
        }
        used += (size_t)n;
    }
    int rc = 0;
    json_t *args = json_pack("{s:s, s:s}", "group", pos[0], "message", message);
    free(message);
    json_t *res = ctl_live_change(c, "publish", args, 5000, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%s: published to %lld members\n", str(res, "group"),
           (long long)json_integer_value(json_object_get(res, "reached")));
    json_decref(res);
    return 0;
}

static int run_join(const ctl_t *c, int argc, const char **pos)
{
    json_t *meta = json_object();
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(pos[i], '=');
        if (eq == NULL || eq == pos[i]) {
            json_decref(meta);
            return ctl_usage(c, "metadata '%s' is not KEY=VALUE", pos[i]);
        }
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - pos[i]), pos[i]);
        json_object_set_new(meta, key, json_string(eq + 1));
    }
    int rc = 0;
    json_t *args = json_pack("{s:s, s:o}", "group", pos[0], "meta", meta);
    json_t *res = ctl_live_args(c, "join", args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%s joined %s on %s\n", str(res, "pid"), str(res, "group"), str(res, "node"));
    json_decref(res);
    return 0;
}

static int run_leave(const ctl_t *c, const char **pos)
{
    int rc = 0;
    json_t *args = json_pack("{s:s, s:s}", "group", pos[0], "pid", pos[1]);
    json_t *res = ctl_live_args(c, "leave", args, &rc);
    json_decref(args);
    if (res == NULL)
        return rc;
    if (c->json)
        return ctl_print_json(res);
    printf("%s left %s%s\n", str(res, "pid"), str(res, "group"),
           json_is_true(json_object_get(res, "stopped")) ? " (its holder stopped)" : "");
    json_decref(res);
    return 0;
}

int ctl_groups_main(const ctl_t *c, int argc, char **argv)
{
    const group_cmd_t *k = find_cmd(argv[0]);
    const char *pos[GROUP_ARGS_MAX];
    int count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return fputs(k->help, stdout), 0;
        if (argv[i][0] == '-' && argv[i][1] == '-' && strcmp(k->name, "publish") != 0)
            return ctl_usage(c, "unknown option '%s'", argv[i]);
        if (count == GROUP_ARGS_MAX)
            return ctl_usage(c, "too many arguments");
        pos[count++] = argv[i];
    }
    if (count < k->min_args)
        return ctl_usage(c, "missing argument");
    if (k->max_args >= 0 && count > k->max_args)
        return ctl_usage(c, "unexpected argument '%s'", pos[k->max_args]);
    if (strcmp(k->name, "groups") == 0)
        return run_groups(c, count, pos);
    if (strcmp(k->name, "members") == 0)
        return run_members(c, pos);
    if (strcmp(k->name, "publish") == 0)
        return run_publish(c, count, pos);
    if (strcmp(k->name, "join") == 0)
        return run_join(c, count, pos);
    return run_leave(c, pos);
}
