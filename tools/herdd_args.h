/*
 * herdd_args.h - herdd's options: its long flags, each flag's own checks,
 * the checks across flags, and the command line with --config FILE (whose
 * format is herdd_config.h's). No I/O but reading the --config file: a
 * usage error is a message in the caller's buffer, for herdd to print.
 */
#ifndef HERD_HERDD_ARGS_H
#define HERD_HERDD_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "discover_spec.h"
#include "log.h"

#define HERDD_MAX_SEEDS 64

/* One per long flag that takes a value; the flag's name without its dashes
 * is also its key in a config file (config itself excepted). */
typedef enum herdd_opt {
    HERDD_OPT_NAME,
    HERDD_OPT_LISTEN,
    HERDD_OPT_JOIN,
    HERDD_OPT_COOKIE_FILE,
    HERDD_OPT_CONTROL,
    HERDD_OPT_CLUSTER,
    HERDD_OPT_WEIGHT,
    HERDD_OPT_HEARTBEAT_MS,
    HERDD_OPT_DOWN_MS,
    HERDD_OPT_FORGET_MS,
    HERDD_OPT_LOG_LEVEL,
    HERDD_OPT_METRICS,
    HERDD_OPT_DISCOVER,
    HERDD_OPT_DISCOVER_INTERVAL_MS,
    HERDD_OPT_CONFIG,
    HERDD_OPT_COUNT
} herdd_opt_t;

/* The flag's name without dashes ("cookie-file"); NULL out of range. */
const char *herdd_opt_name(int opt);
/* The option whose flag is `name` without dashes, or -1. */
int herdd_opt_lookup(const char *name);

typedef struct herdd_args {
    const char *name, *listen, *cookie_file, *control, *cluster, *config;
    const char *seeds[HERDD_MAX_SEEDS];
    size_t seed_count;
    uint32_t weight, heartbeat_ms, down_ms, forget_ms; /* 0: the default */
    herd_log_level_t log_level; /* HERD_LOG_WARN unless given */
    const char *log_spec; /* --log-level with subsystems' levels (applied after log_level) */
    const char *metrics;  /* --metrics IPV4:PORT, parsed into metrics_ip/port */
    uint32_t metrics_ip;
    uint16_t metrics_port;
    const char *discover; /* --discover SPEC, parsed into discover_spec */
    discover_spec_t discover_spec;
    uint32_t discover_interval_ms; /* 0: HERDD_DISCOVER_INTERVAL_MS */
    unsigned given[HERDD_OPT_COUNT]; /* times given (join: addresses) */
    unsigned line[HERDD_OPT_COUNT];  /* from a config file: the line (join: the first) */
    const char *file; /* the config file of those lines (herdd_config_parse) */
    char *text;       /* owned: a config file's text, which its values point into */
} herdd_args_t;

/* Set option `opt` to `value` after that flag's own checks (a number's
 * range, an address's shape, a name's characters...). `flag` is the flag
 * as the user wrote it, for the message ("--weight", or "weight" in a
 * file). 0, or -1 with why in err (cap bytes). */
int herdd_args_set(herdd_args_t *a, herdd_opt_t opt, const char *flag, const char *value,
                   char *err, size_t cap);

/* Results of herdd_args_parse_argv and herdd_args_load. */
#define HERDD_ARGS_RUN 0
#define HERDD_ARGS_HELP 1    /* --help: print the help, exit 0 */
#define HERDD_ARGS_VERSION 2 /* --version */
#define HERDD_ARGS_USAGE (-1) /* a usage error, said in err: exit 2 */

/* The command line alone (getopt_long over argv; `a` is reset first). */
int herdd_args_parse_argv(herdd_args_t *a, int argc, char **argv, char *err, size_t cap);

/* `out` = the file's options with the command line's over them: every
 * option the command line gives replaces the file's, and its --join list
 * replaces the file's list. out's values point into cli's and file's (out
 * owns no text). */
void herdd_args_merge(herdd_args_t *out, const herdd_args_t *file, const herdd_args_t *cli);

/* The checks across options, once all are in: the required ones, --down-ms
 * against --heartbeat-ms, --discover-interval-ms only with --discover. 0,
 * or -1 with why in err. */
int herdd_args_check(const herdd_args_t *a, char *err, size_t cap);

/* herdd's options: the command line, the --config file it names (read,
 * parsed, every value checked), the one over the other, then checked.
 * Returns a HERDD_ARGS_* result; `out` owns the file's text either way:
 * herdd_args_free it. */
int herdd_args_load(herdd_args_t *out, int argc, char **argv, char *err, size_t cap);

/* Free what `a` owns (a config file's text); `a` is zeroed. */
void herdd_args_free(herdd_args_t *a);

#endif
