/*
 * ringctl - inspect and plan a herd ring.
 *
 * This version has the offline planning commands (ring, owner, diff), which
 * work on a member list given with --nodes and need no running cluster. Output
 * is a human table by default and one JSON document with --json, in the shapes
 * of the command-line contract (DESIGN.md). Exit codes: 0 done, 1 failed,
 * 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ring.h"

#define EXIT_USAGE 2

typedef struct ctl {
    int json;
    const char *node;        /* --node or HERD_NODE: live commands (later) */
    const char *cookie_file; /* only for a TCP control address */
    const char *cmd;
} ctl_t;

/* Say what went wrong on stderr (and as JSON on stdout with --json); returns
 * `code` so callers can `return ctl_fail(...)`. */
static int ctl_fail(const ctl_t *c, int code, const char *err_name, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ringctl: %s%s%s\n", c->cmd ? c->cmd : "", c->cmd ? ": " : "", msg);
    if (c->json) {
        json_t *doc = json_pack("{s:s, s:s}", "error", err_name, "message", msg);
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    }
    return code;
}

static int ctl_usage(const ctl_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ctl_fail(c, EXIT_USAGE, "EUSAGE", "%s (see ringctl %s%s--help)", msg,
                    c->cmd ? c->cmd : "", c->cmd ? " " : "");
}

static int ctl_print_json(json_t *doc)
{
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(doc);
    return rc == 0 ? 0 : 1;
}

/* ---- member lists: "a,b:256,c" --------------------------------------------- */

/* Parse "NAME[:WEIGHT]" into name (buffer of RING_NAME_MAX+1) and weight. */
static int ctl_parse_member(const ctl_t *c, const char *spec, size_t len, char *name,
                            uint32_t *weight)
{
    const char *colon = memchr(spec, ':', len);
    size_t nlen = colon ? (size_t)(colon - spec) : len;
    if (nlen > RING_NAME_MAX)
        return ctl_usage(c, "member name '%.*s' is longer than %u bytes", (int)nlen, spec,
                         RING_NAME_MAX);
    memcpy(name, spec, nlen);
    name[nlen] = '\0';
    if (ring_check_name(name) != 0)
        return ctl_usage(c, "bad member name '%s': use 1-%u of A-Za-z0-9_.-", name,
                         RING_NAME_MAX);
    *weight = RING_DEFAULT_WEIGHT;
    if (colon == NULL)
        return 0;
    char digits[16];
    size_t dlen = len - nlen - 1;
    if (dlen == 0 || dlen >= sizeof(digits) || strspn(colon + 1, "0123456789") < dlen)
        return ctl_usage(c, "bad weight in '%.*s': want a whole number 1-%u", (int)len, spec,
                         RING_MAX_WEIGHT);
    memcpy(digits, colon + 1, dlen);
    digits[dlen] = '\0';
    unsigned long w = strtoul(digits, NULL, 10);
    if (w == 0 || w > RING_MAX_WEIGHT)
        return ctl_usage(c, "weight %s of '%s' is out of range 1-%u", digits, name,
                         RING_MAX_WEIGHT);
    *weight = (uint32_t)w;
    return 0;
}

/* Add every member of a comma-separated list to `r`. */
static int ctl_add_members(const ctl_t *c, ring_t *r, const char *list)
{
    const char *p = list;
    if (*p == '\0')
        return ctl_usage(c, "--nodes is empty");
    for (;;) {
        size_t len = strcspn(p, ",");
        char name[RING_NAME_MAX + 1];
        uint32_t weight;
        if (len == 0)
            return ctl_usage(c, "empty member in list '%s'", list);
        int rc = ctl_parse_member(c, p, len, name, &weight);
        if (rc)
            return rc;
        rc = ring_add(r, name, weight);
        if (rc == HERD_EEXIST)
            return ctl_usage(c, "member '%s' is listed twice", name);
        if (rc)
            return ctl_fail(c, 1, herd_err_name(rc), "cannot add '%s': %s", name,
                            herd_strerror(rc));
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

/* The ring of --nodes, or an error exit code in *rc. Live rings come with the
 * cluster: until then a command without --nodes is a usage error. */
static ring_t *ctl_ring_from_nodes(const ctl_t *c, const char *nodes, int *rc)
{
    if (nodes == NULL) {
        *rc = ctl_usage(c, "--nodes is required (asking a live node is not available yet)");
        return NULL;
    }
    ring_t *r = ring_new();
    if (r == NULL) {
        *rc = ctl_fail(c, 1, "ENOMEM", "out of memory");
        return NULL;
    }
    *rc = ctl_add_members(c, r, nodes);
    if (*rc) {
        ring_free(r);
        return NULL;
    }
    return r;
}

/* ---- ring ------------------------------------------------------------------- */

static const char ring_help[] =
    "usage: ringctl [--json] ring --nodes NAME[:WEIGHT],...\n"
    "\n"
    "Show the ring of the given members: weight, points and the share of the key\n"
    "space each owns. Weight defaults to 128 points per member (1-4096).\n"
    "JSON: {\"members\":[{\"name\",\"weight\",\"points\",\"share\"}]}, share a fraction of 1.\n";

static int ctl_print_ring(const ctl_t *c, const ring_t *r)
{
    ring_member_info_t m;
    if (c->json) {
        json_t *members = json_array();
        for (size_t i = 0; ring_member_at(r, i, &m) == 0; i++)
            json_array_append_new(members, json_pack("{s:s, s:I, s:I, s:f}", "name", m.name,
                                                     "weight", (json_int_t)m.weight, "points",
                                                     (json_int_t)m.points, "share", m.share));
        return ctl_print_json(json_pack("{s:o}", "members", members));
    }
    printf("%-24s %7s %7s %8s\n", "MEMBER", "WEIGHT", "POINTS", "SHARE");
    for (size_t i = 0; ring_member_at(r, i, &m) == 0; i++)
        printf("%-24s %7u %7u %7.2f%%\n", m.name, m.weight, m.points, m.share * 100.0);
    printf("%zu members, %zu points\n", ring_member_count(r), ring_point_count(r));
    return 0;
}

/* ---- owner ------------------------------------------------------------------ */

static const char owner_help[] =
    "usage: ringctl [--json] owner KEY --nodes NAME[:WEIGHT],... [--replicas N]\n"
    "\n"
    "Show which member owns KEY (the name of a process). With --replicas N, also\n"
    "its successors: N distinct members counting the owner first, at most the\n"
    "member count.\n"
    "JSON: {\"key\",\"owner\",\"replicas\":[...]} with replicas starting with the owner.\n";

static int ctl_print_owner(const ctl_t *c, const ring_t *r, const char *key,
                           unsigned long replicas)
{
    const char **names = calloc(replicas, sizeof(char *));
    if (names == NULL)
        return ctl_fail(c, 1, "ENOMEM", "out of memory");
    int n = ring_owners(r, key, strlen(key), names, replicas);
    if (n < 0) {
        free(names);
        return ctl_fail(c, 1, herd_err_name(n), "%s", herd_strerror(n));
    }
    int rc = 0;
    if (c->json) {
        json_t *list = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(list, json_string(names[i]));
        rc = ctl_print_json(json_pack("{s:s, s:s, s:o}", "key", key, "owner", names[0],
                                      "replicas", list));
    } else {
        printf("owner: %s\n", names[0]);
        if (replicas > 1) {
            printf("replicas:");
            for (int i = 0; i < n; i++)
                printf(" %s", names[i]);
            printf("\n");
        }
    }
    free(names);
    return rc;
}

/* ---- diff ------------------------------------------------------------------- */

static const char diff_help[] =
    "usage: ringctl [--json] diff --nodes NAME[:WEIGHT],... CHANGE...\n"
    "  CHANGE: --add NAME[:WEIGHT] | --remove NAME | --weight NAME:WEIGHT (repeatable)\n"
    "\n"
    "Show which share of the key space changes owner when the ring of --nodes\n"
    "changes as given, and from whom to whom.\n"
    "JSON: {\"moved_share\",\"moves\":[{\"from\",\"to\",\"share\"}]}; from/to is null\n"
    "where a side has no members.\n";

typedef struct ctl_change {
    int kind; /* 'a' add, 'r' remove, 'w' weight */
    const char *spec;
} ctl_change_t;

static int ctl_apply_change(const ctl_t *c, ring_t *r, const ctl_change_t *ch)
{
    char name[RING_NAME_MAX + 1];
    uint32_t weight;
    int rc = ctl_parse_member(c, ch->spec, strlen(ch->spec), name, &weight);
    if (rc)
        return rc;
    if (ch->kind == 'a')
        rc = ring_add(r, name, weight);
    else if (ch->kind == 'r')
        rc = ring_remove(r, name);
    else if (strchr(ch->spec, ':') == NULL)
        return ctl_usage(c, "--weight wants NAME:WEIGHT, got '%s'", ch->spec);
    else
        rc = ring_set_weight(r, name, weight);
    if (rc == HERD_EEXIST)
        return ctl_usage(c, "cannot add '%s': already a member", name);
    if (rc == HERD_ENOENT)
        return ctl_usage(c, "'%s' is not a member", name);
    if (rc)
        return ctl_fail(c, 1, herd_err_name(rc), "%s: %s", name, herd_strerror(rc));
    return 0;
}

static json_t *ctl_name_or_null(const ring_diff_t *d, uint32_t i)
{
    return i == RING_NONE ? json_null() : json_string(d->names[i]);
}

static int ctl_print_diff(const ctl_t *c, const ring_diff_t *d)
{
    if (c->json) {
        json_t *moves = json_array();
        for (size_t i = 0; i < d->total_count; i++) {
            const ring_move_total_t *t = &d->totals[i];
            json_array_append_new(moves, json_pack("{s:o, s:o, s:f}", "from",
                                                   ctl_name_or_null(d, t->from), "to",
                                                   ctl_name_or_null(d, t->to), "share",
                                                   t->share));
        }
        return ctl_print_json(
            json_pack("{s:f, s:o}", "moved_share", d->moved_share, "moves", moves));
    }
    printf("moved: %.2f%% of the key space in %zu ranges\n", d->moved_share * 100.0,
           d->move_count);
    if (d->total_count == 0)
        return 0;
    printf("%-24s %-24s %8s\n", "FROM", "TO", "SHARE");
    for (size_t i = 0; i < d->total_count; i++) {
        const ring_move_total_t *t = &d->totals[i];
        printf("%-24s %-24s %7.2f%%\n", t->from == RING_NONE ? "-" : d->names[t->from],
               t->to == RING_NONE ? "-" : d->names[t->to], t->share * 100.0);
    }
    return 0;
}

/* ---- command dispatch ------------------------------------------------------- */

typedef struct ctl_args {
    const char *nodes;
    const char *key;
    unsigned long replicas;
    ctl_change_t changes[64];
    size_t change_count;
    int help;
} ctl_args_t;

static int ctl_parse_replicas(const ctl_t *c, const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || n == 0 || n > RING_MAX_MEMBERS || *s == '-')
        return ctl_usage(c, "--replicas wants a whole number 1-%u, got '%s'",
                         RING_MAX_MEMBERS, s);
    *out = n;
    return 0;
}

/* Parse one command's options; positional KEY for `owner`. */
static int ctl_parse_args(const ctl_t *c, int argc, char **argv, ctl_args_t *a)
{
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'},  {"replicas", required_argument, NULL, 'R'},
        {"add", required_argument, NULL, 'a'},    {"remove", required_argument, NULL, 'r'},
        {"weight", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int is_diff = strcmp(c->cmd, "diff") == 0, opt, rc, idx = -1;
    optind = 0; /* re-initialise getopt for the command's own arguments */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
        if (opt == 'h') {
            a->help = 1;
        } else if (opt == 'n') {
            a->nodes = optarg;
        } else if (opt == 'R' && strcmp(c->cmd, "owner") == 0) {
            if ((rc = ctl_parse_replicas(c, optarg, &a->replicas)))
                return rc;
        } else if ((opt == 'a' || opt == 'r' || opt == 'w') && is_diff) {
            if (a->change_count == sizeof(a->changes) / sizeof(a->changes[0]))
                return ctl_usage(c, "too many changes (at most 64)");
            a->changes[a->change_count++] = (ctl_change_t){opt, optarg};
        } else if (opt == ':') {
            return ctl_usage(c, "%s needs a value", argv[optind - 1]);
        } else if (opt != '?') {
            return ctl_usage(c, "option '--%s' does not apply to %s", opts[idx].name, c->cmd);
        } else {
            return ctl_usage(c, "unknown option '%s'", argv[optind - 1]);
        }
        idx = -1;
    }
    int want_key = strcmp(c->cmd, "owner") == 0;
    if (a->help)
        return 0;
    if (want_key && optind < argc)
        a->key = argv[optind++];
    if (want_key && a->key == NULL)
        return ctl_usage(c, "missing KEY");
    if (optind < argc)
        return ctl_usage(c, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int ctl_run(const ctl_t *c, const ctl_args_t *a)
{
    int rc = 0;
    if (strcmp(c->cmd, "diff") == 0 && a->change_count == 0)
        return ctl_usage(c, "give at least one --add, --remove or --weight");
    ring_t *r = ctl_ring_from_nodes(c, a->nodes, &rc);
    if (r == NULL)
        return rc;
    if (strcmp(c->cmd, "ring") == 0) {
        rc = ctl_print_ring(c, r);
    } else if (strcmp(c->cmd, "owner") == 0) {
        rc = ctl_print_owner(c, r, a->key, a->replicas ? a->replicas : 1);
    } else {
        ring_t *next = ring_clone(r);
        ring_diff_t d;
        for (size_t i = 0; next && rc == 0 && i < a->change_count; i++)
            rc = ctl_apply_change(c, next, &a->changes[i]);
        if (next == NULL)
            rc = ctl_fail(c, 1, "ENOMEM", "out of memory");
        else if (rc == 0 && (rc = ring_diff(r, next, &d)) != 0)
            rc = ctl_fail(c, 1, herd_err_name(rc), "%s", herd_strerror(rc));
        else if (rc == 0)
            rc = ctl_print_diff(c, &d), ring_diff_free(&d);
        ring_free(next);
    }
    ring_free(r);
    return rc;
}

static const char main_help[] =
    "usage: ringctl [--json] [--node ADDR] [--cookie-file FILE] COMMAND [ARGS]\n"
    "\n"
    "Offline planning commands (no running cluster needed):\n"
    "  ring  --nodes a,b:256,c            members, points and ownership share\n"
    "  owner KEY --nodes a,b,c [--replicas N]   the owner of KEY and its successors\n"
    "  diff  --nodes a,b,c --add d        which share of the key space moves\n"
    "\n"
    "Global options:\n"
    "  --json              one JSON document on stdout\n"
    "  --node ADDR         a node's control address (also HERD_NODE)\n"
    "  --cookie-file FILE  the cluster secret, for a TCP control address\n"
    "  --help              this text; 'ringctl COMMAND --help' for a command\n"
    "\n"
    "Exit codes: 0 done, 1 failed, 2 usage error.\n";

static const char *ctl_command_help(const char *cmd)
{
    if (strcmp(cmd, "ring") == 0)
        return ring_help;
    if (strcmp(cmd, "owner") == 0)
        return owner_help;
    if (strcmp(cmd, "diff") == 0)
        return diff_help;
    return NULL;
}

/* Global options, up to the command name. Returns -1 to go on, else an exit code. */
static int ctl_parse_global(ctl_t *c, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"node", required_argument, NULL, 'N'},
                                         {"cookie-file", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
        if (opt == 'j')
            c->json = 1;
        else if (opt == 'N')
            c->node = optarg;
        else if (opt == 'c')
            c->cookie_file = optarg;
        else if (opt == 'h')
            return fputs(main_help, stdout), 0;
        else if (opt == ':')
            return ctl_usage(c, "%s needs a value", argv[optind - 1]);
        else
            return ctl_usage(c, "unknown option '%s'", argv[optind - 1]);
    }
    return -1;
}

int main(int argc, char **argv)
{
    ctl_t c = {0};
    c.node = getenv("HERD_NODE");
    int rc = ctl_parse_global(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return ctl_usage(&c, "missing COMMAND");
    const char *cmd = argv[optind];
    if (strcmp(cmd, "help") == 0) {
        const char *h = optind + 1 < argc ? ctl_command_help(argv[optind + 1]) : main_help;
        fputs(h ? h : main_help, stdout);
        return 0;
    }
    const char *help = ctl_command_help(cmd);
    if (help == NULL)
        return ctl_usage(&c, "unknown command '%s'", cmd);
    c.cmd = cmd;
    ctl_args_t a = {0};
    rc = ctl_parse_args(&c, argc - optind, argv + optind, &a);
    if (rc)
        return rc;
    if (a.help)
        return fputs(help, stdout), 0;
    return ctl_run(&c, &a);
}
