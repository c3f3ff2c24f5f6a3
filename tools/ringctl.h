/*
 * ringctl.h - what ringctl's command files share: the global options, how
 * failures are reported, and asking the node.
 */
#ifndef HERD_RINGCTL_H
#define HERD_RINGCTL_H

#include <jansson.h>

#define EXIT_USAGE 2
#define EXIT_APP 4 /* the service answered with an error of its own */

typedef struct ctl {
    int json;
    const char *node;        /* --node or HERD_NODE: live commands */
    const char *cookie_file; /* only for a TCP control address */
    const char *cmd;
} ctl_t;

/* Say what went wrong on stderr (and as JSON on stdout with --json); returns
 * `code` so callers can `return ctl_fail(...)`. */
int ctl_fail(const ctl_t *c, int code, const char *err_name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A service's own error (EXIT_APP), its code in the JSON as app_code. */
int ctl_fail_app(const ctl_t *c, int app_code, const char *message);
/* A usage error (exit 2). */
int ctl_usage(const ctl_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a document (and drop it); 0, or 1 when stdout fails. */
int ctl_print_json(json_t *doc);
/* Ask the node; on failure say why (*rc = 1) and return NULL. */
json_t *ctl_live_args(const ctl_t *c, const char *cmd, json_t *args, int *rc);
json_t *ctl_live_wait(const ctl_t *c, const char *cmd, json_t *args, int timeout_ms, int *rc);
/* The same for a command that changes something (a call): a request that
 * left but got no answer within timeout_ms may have taken effect, so that
 * is exit 3 (EUNCERTAIN), like the node's own "outcome unknown" answers. */
json_t *ctl_live_change(const ctl_t *c, const char *cmd, json_t *args, int timeout_ms,
                        int *rc);

/* ringctl_children.c: start, call, stop, children, handoffs, drain, block,
 * unblock, register, unregister. The help text of such a command, or NULL. */
const char *ctl_children_help(const char *cmd);
/* Run one of them; argv[0] is the command. Returns the exit code. */
int ctl_children_main(const ctl_t *c, int argc, char **argv);

/* ringctl_watch.c: watch, the node's events as they happen. */
extern const char ctl_watch_help[];
/* argv[0] is "watch". Returns the exit code (0 on SIGINT or SIGTERM). */
int ctl_watch_main(const ctl_t *c, int argc, char **argv);

/* ringctl_groups.c: groups, members GROUP, publish, join, leave. */
const char *ctl_groups_help(const char *cmd);
int ctl_groups_main(const ctl_t *c, int argc, char **argv);

#endif
