/*
 * herdd_args.c - herdd's options (herdd_args.h): each flag's own checks are
 * here once, for the command line and for a --config file alike.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herdd_args.h"
#include "herd_nodeconf.h"
#include "herdd_config.h"
#include "herd_ring.h"

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

static const char *const opt_names[HERDD_OPT_COUNT] = {
    [HERDD_OPT_NAME] = "name",
    [HERDD_OPT_LISTEN] = "listen",
    [HERDD_OPT_JOIN] = "join",
    [HERDD_OPT_COOKIE_FILE] = "cookie-file",
    [HERDD_OPT_CONTROL] = "control",
    [HERDD_OPT_CLUSTER] = "cluster",
    [HERDD_OPT_WEIGHT] = "weight",
    [HERDD_OPT_HEARTBEAT_MS] = "heartbeat-ms",
    [HERDD_OPT_DOWN_MS] = "down-ms",
    [HERDD_OPT_FORGET_MS] = "forget-ms",
    [HERDD_OPT_LOG_LEVEL] = "log-level",
    [HERDD_OPT_METRICS] = "metrics",
    [HERDD_OPT_DISCOVER] = "discover",
    [HERDD_OPT_DISCOVER_INTERVAL_MS] = "discover-interval-ms",
    [HERDD_OPT_CONFIG] = "config",
};

const char *herdd_opt_name(int opt)
{
    return opt >= 0 && opt < HERDD_OPT_COUNT ? opt_names[opt] : NULL;
}

int herdd_opt_lookup(const char *name)
{
    for (int i = 0; i < HERDD_OPT_COUNT; i++)
        if (strcmp(opt_names[i], name) == 0)
            return i;
    return -1;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return HERDD_ARGS_USAGE;
}

static int parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out,
                     char *err, size_t cap)
{
    char *end;
    errno = 0;
    /* digits only: strtoul would take " 5" and "+5" */
    unsigned long v = strspn(s, "0123456789") == strlen(s) ? strtoul(s, &end, 10) : 0;
    if (*s == '\0' || strspn(s, "0123456789") != strlen(s) || errno || v < lo || v > hi)
        return fail(err, cap, "%s wants a whole number %u-%u (digits only), got '%s'", flag,
                    lo, hi, s);
    *out = (uint32_t)v;
    return 0;
}

int herdd_args_set(herdd_args_t *a, herdd_opt_t opt, const char *flag, const char *v,
                   char *err, size_t cap)
{
    int rc = 0;
    switch (opt) {
    case HERDD_OPT_NAME:
        if (herd_ring_check_name(v) != 0)
            return fail(err, cap, "bad %s '%s': use 1-64 of A-Za-z0-9_.-", flag, v);
        a->name = v;
        break;
    case HERDD_OPT_LISTEN:
        if (herd_address_check(v) != 0)
            return fail(err, cap, "%s wants tcp://HOST:PORT or ipc:///PATH, got '%s'", flag, v);
        a->listen = v;
        break;
    case HERDD_OPT_JOIN:
        if (a->seed_count == HERDD_MAX_SEEDS)
            return fail(err, cap, "at most %d %s addresses", HERDD_MAX_SEEDS, flag);
        if (herd_address_check(v) != 0)
            return fail(err, cap, "%s wants tcp://HOST:PORT or ipc:///PATH, got '%s'", flag, v);
        a->seeds[a->seed_count++] = v;
        break;
    case HERDD_OPT_COOKIE_FILE: a->cookie_file = v; break;
    case HERDD_OPT_CONTROL:
        if (strncmp(v, "ipc://", 6) != 0)
            return fail(err, cap, "%s must be an ipc:// address in this version (a TCP control "
                        "socket would need the cluster secret)", flag);
        a->control = v;
        break;
    case HERDD_OPT_CLUSTER:
        if (v[0] == '\0' || strlen(v) > 64 || strspn(v, NAME_CHARS) != strlen(v))
            return fail(err, cap, "bad %s '%s': use 1-64 of A-Za-z0-9_.-", flag, v);
        a->cluster = v;
        break;
    case HERDD_OPT_WEIGHT:
        rc = parse_u32(flag, v, 1, HERD_RING_MAX_WEIGHT, &a->weight, err, cap);
        break;
    case HERDD_OPT_HEARTBEAT_MS:
        rc = parse_u32(flag, v, 10, 60000, &a->heartbeat_ms, err, cap);
        break;
    case HERDD_OPT_DOWN_MS: rc = parse_u32(flag, v, 20, 600000, &a->down_ms, err, cap); break;
    case HERDD_OPT_FORGET_MS:
        rc = parse_u32(flag, v, 100, 86400000, &a->forget_ms, err, cap);
        break;
    case HERDD_OPT_LOG_LEVEL:
        a->log_spec = NULL;
        if (herd_log_parse_level(v, &a->log_level) == 0)
            break;
        if (herd_log_check_spec(v) != 0)
            return fail(err, cap, "%s wants error, warn, info or debug, or those with "
                        "subsystems' own (warn,replicas=debug), got '%s'", flag, v);
        a->log_spec = v;
        break;
    case HERDD_OPT_METRICS:
        if (discover_parse_ipv4_port(flag, v, &a->metrics_ip, &a->metrics_port, err, cap) != 0)
            return HERDD_ARGS_USAGE;
        a->metrics = v;
        break;
    case HERDD_OPT_DISCOVER:
        if (discover_spec_parse(flag, v, &a->discover_spec, err, cap) != 0)
            return HERDD_ARGS_USAGE;
        a->discover = v;
        break;
    case HERDD_OPT_DISCOVER_INTERVAL_MS:
        rc = parse_u32(flag, v, 100, 3600000, &a->discover_interval_ms, err, cap);
        break;
    case HERDD_OPT_CONFIG: a->config = v; break;
    default: return fail(err, cap, "unknown option %d", (int)opt);
    }
    if (rc == 0)
        a->given[opt]++;
    return rc;
}

int herdd_args_parse_argv(herdd_args_t *a, int argc, char **argv, char *err, size_t cap)
{
    enum { OPT_BASE = 256 }; /* past every character getopt_long returns */
    struct option opts[HERDD_OPT_COUNT + 3];
    for (int i = 0; i < HERDD_OPT_COUNT; i++)
        opts[i] = (struct option){opt_names[i], required_argument, NULL, OPT_BASE + i};
    opts[HERDD_OPT_COUNT] = (struct option){"help", no_argument, NULL, 'h'};
    opts[HERDD_OPT_COUNT + 1] = (struct option){"version", no_argument, NULL, 'V'};
    opts[HERDD_OPT_COUNT + 2] = (struct option){NULL, 0, NULL, 0};
    *a = (herdd_args_t){.log_level = HERD_LOG_WARN};
    optind = 0; /* a fresh scan, also when called again */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (opt >= OPT_BASE && opt < OPT_BASE + HERDD_OPT_COUNT) {
            int k = opt - OPT_BASE;
            char flag[32];
            snprintf(flag, sizeof(flag), "--%s", opt_names[k]);
            if (k != HERDD_OPT_JOIN && a->given[k])
                return fail(err, cap, "%s given twice; give it once", flag);
            if (herdd_args_set(a, (herdd_opt_t)k, flag, optarg, err, cap) != 0)
                return HERDD_ARGS_USAGE;
            continue;
        }
        switch (opt) {
        case 'h': return HERDD_ARGS_HELP;
        case 'V': return HERDD_ARGS_VERSION;
        case ':': return fail(err, cap, "%s needs a value", argv[optind - 1]);
        default: return fail(err, cap, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(err, cap, "unexpected argument '%s'", argv[optind]);
    return HERDD_ARGS_RUN;
}

void herdd_args_merge(herdd_args_t *out, const herdd_args_t *file, const herdd_args_t *cli)
{
    *out = *file;
    out->text = NULL;
    for (int k = 0; k < HERDD_OPT_COUNT; k++) {
        if (!cli->given[k])
            continue;
        out->given[k] = cli->given[k];
        out->line[k] = 0;
        switch ((herdd_opt_t)k) {
        case HERDD_OPT_NAME: out->name = cli->name; break;
        case HERDD_OPT_LISTEN: out->listen = cli->listen; break;
        case HERDD_OPT_JOIN:
            memcpy(out->seeds, cli->seeds, cli->seed_count * sizeof(cli->seeds[0]));
            out->seed_count = cli->seed_count;
            break;
        case HERDD_OPT_COOKIE_FILE: out->cookie_file = cli->cookie_file; break;
        case HERDD_OPT_CONTROL: out->control = cli->control; break;
        case HERDD_OPT_CLUSTER: out->cluster = cli->cluster; break;
        case HERDD_OPT_WEIGHT: out->weight = cli->weight; break;
        case HERDD_OPT_HEARTBEAT_MS: out->heartbeat_ms = cli->heartbeat_ms; break;
        case HERDD_OPT_DOWN_MS: out->down_ms = cli->down_ms; break;
        case HERDD_OPT_FORGET_MS: out->forget_ms = cli->forget_ms; break;
        case HERDD_OPT_LOG_LEVEL:
            out->log_level = cli->log_level;
            out->log_spec = cli->log_spec;
            break;
        case HERDD_OPT_METRICS:
            out->metrics = cli->metrics;
            out->metrics_ip = cli->metrics_ip;
            out->metrics_port = cli->metrics_port;
            break;
        case HERDD_OPT_DISCOVER:
            out->discover = cli->discover;
            out->discover_spec = cli->discover_spec;
            break;
        case HERDD_OPT_DISCOVER_INTERVAL_MS:
            out->discover_interval_ms = cli->discover_interval_ms;
            break;
        case HERDD_OPT_CONFIG: out->config = cli->config; break;
        default: break;
        }
    }
}

int herdd_args_check(const herdd_args_t *a, char *err, size_t cap)
{
    if (a->name == NULL || a->listen == NULL || a->cookie_file == NULL)
        return fail(err, cap, "--name, --listen and --cookie-file are required%s%s%s",
                    a->file ? " (on the command line or in " : "", a->file ? a->file : "",
                    a->file ? ")" : "");
    if (a->discover_interval_ms && a->discover == NULL)
        return fail(err, cap, "--discover-interval-ms is given without --discover; give "
                    "--discover dns:NAME:PORT (or leave the interval out)");
    herd_cluster_config_t timing = {.heartbeat_ms = a->heartbeat_ms, .down_ms = a->down_ms};
    uint32_t beat = a->heartbeat_ms ? a->heartbeat_ms : 200;
    if (herd_cluster_derive_timing(&timing) == HERD_ERANGE) {
        /* where the file gave one of the two, say which line */
        unsigned line = a->line[HERDD_OPT_DOWN_MS] ? a->line[HERDD_OPT_DOWN_MS]
                                                   : a->line[HERDD_OPT_HEARTBEAT_MS];
        char where[300] = "";
        if (line && a->file)
            snprintf(where, sizeof(where), "%.280s:%u: ", a->file, line);
        return fail(err, cap, "%s--down-ms %u is under two heartbeats (--heartbeat-ms %u): "
                    "every member would be declared down between heartbeats; give --down-ms "
                    "%u or more, or a shorter --heartbeat-ms", where, a->down_ms, beat,
                    2 * beat);
    }
    return 0;
}

int herdd_args_load(herdd_args_t *out, int argc, char **argv, char *err, size_t cap)
{
    herdd_args_t cli, file;
    *out = (herdd_args_t){.log_level = HERD_LOG_WARN};
    int rc = herdd_args_parse_argv(&cli, argc, argv, err, cap);
    if (rc != HERDD_ARGS_RUN)
        return rc;
    if (cli.config == NULL) {
        *out = cli;
    } else {
        if (herdd_config_load(cli.config, &file, err, cap) != 0)
            return HERDD_ARGS_USAGE;
        herdd_args_merge(out, &file, &cli);
        out->text = file.text; /* the values point into it */
    }
    return herdd_args_check(out, err, cap) != 0 ? HERDD_ARGS_USAGE : HERDD_ARGS_RUN;
}

void herdd_args_free(herdd_args_t *a)
{
    free(a->text);
    *a = (herdd_args_t){0};
}
