/*
 * test_herdd_config.c - herdd's options without a node: the --config file
 * format (tools/herdd_config.h), the flags' own checks it shares with the
 * command line (tools/herdd_args.h), and which of the two wins.
 *
 * Every refusal is checked for its FILE:LINE and its reason, and for owning
 * nothing afterwards. HERDD_EXAMPLE_CONF is tools/systemd/example.conf: the
 * installed example must stay a file herdd takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "herdd_args.h"
#include "herdd_config.h"

#define ERR_CAP 2048

static char dir[64]; /* a directory of this run's files (setup/teardown) */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/herd-config-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

/* Remove what the tests made in `dir`, then `dir`. */
static int teardown(void **state)
{
    (void)state;
    static const char *const names[] = {"a.conf", "big.conf", "fifo", "sub", "max.conf"};
    char path[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (unlink(path) != 0)
            rmdir(path);
    }
    return rmdir(dir);
}

/* `name` in `dir` with `text` (len bytes); its path in `path`. */
static void write_file(const char *name, const char *text, size_t len, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int parse(const char *text, herdd_args_t *out, char *err)
{
    err[0] = '\0';
    return herdd_config_parse("f.conf", text, strlen(text), out, err, ERR_CAP);
}

/* `text` is refused with `want` in the message; nothing is left owned. */
static void refused(const char *text, const char *want)
{
    herdd_args_t a;
    char err[ERR_CAP];
    int rc = parse(text, &a, err);
    if (rc != -1 || strstr(err, want) == NULL)
        fail_msg("config '%s': rc %d, message '%s', wanted '%s'", text, rc, err, want);
    assert_null(a.text);
    assert_null(a.name);
}

/* ---- the format ---------------------------------------------------------------- */

static void test_config_every_key(void **state)
{
    (void)state;
    const char *text = "# a node\n"
                       "\n"
                       "name = n1\n"
                       "  listen\t=\ttcp://127.0.0.1:7001  \n"
                       "join = tcp://127.0.0.1:7002\r\n"
                       "   # indented comment\n"
                       "join=ipc:///tmp/x.sock\n"
                       "cookie-file = /etc/herd/my cookie#1\n"
                       "control = ipc:///run/herd/n1/herdd.ctl\n"
                       "cluster = prod.eu-1\n"
                       "weight = 4096\n"
                       "heartbeat-ms = 10\n"
                       "down-ms = 600000\n"
                       "forget-ms = 86400000\n"
                       "log-level = debug\n"
                       "metrics = 127.0.0.1:9100\n"
                       "discover = dns:herd.local:7001\n"
                       "discover-interval-ms = 250"; /* no newline at the end */
    herdd_args_t a;
    char err[ERR_CAP];
    assert_int_equal(parse(text, &a, err), 0);
    assert_string_equal(a.name, "n1");
    assert_string_equal(a.listen, "tcp://127.0.0.1:7001");
    assert_int_equal(a.seed_count, 2);
    assert_string_equal(a.seeds[0], "tcp://127.0.0.1:7002"); /* CR dropped */
    assert_string_equal(a.seeds[1], "ipc:///tmp/x.sock");
    assert_string_equal(a.cookie_file, "/etc/herd/my cookie#1"); /* inner blanks and # kept */
    assert_string_equal(a.control, "ipc:///run/herd/n1/herdd.ctl");
    assert_string_equal(a.cluster, "prod.eu-1");
    assert_int_equal(a.weight, 4096);
    assert_int_equal(a.heartbeat_ms, 10);
    assert_int_equal(a.down_ms, 600000);
    assert_int_equal(a.forget_ms, 86400000);
    assert_int_equal(a.log_level, HERD_LOG_DEBUG);
    assert_string_equal(a.metrics, "127.0.0.1:9100");
    assert_int_equal(a.metrics_ip, 0x7f000001);
    assert_int_equal(a.metrics_port, 9100);
    assert_string_equal(a.discover, "dns:herd.local:7001");
    assert_int_equal(a.discover_spec.kind, DISCOVER_DNS);
    assert_string_equal(a.discover_spec.name, "herd.local");
    assert_int_equal(a.discover_spec.port, 7001);
    assert_int_equal(a.discover_interval_ms, 250);
    assert_int_equal(a.line[HERDD_OPT_DISCOVER_INTERVAL_MS], 18);
    assert_int_equal(a.line[HERDD_OPT_NAME], 3);
    assert_int_equal(a.line[HERDD_OPT_JOIN], 5); /* the first join */
    assert_int_equal(a.given[HERDD_OPT_JOIN], 2);
    assert_int_equal(a.line[HERDD_OPT_LOG_LEVEL], 15);
    assert_int_equal(a.given[HERDD_OPT_CONFIG], 0);
    assert_string_equal(a.file, "f.conf");
    assert_non_null(a.text);
    herdd_args_free(&a);
    assert_null(a.text);

    /* nothing but comments and blanks, and nothing at all: no option given */
    assert_int_equal(parse("# only\n\n   \n\t# this\n", &a, err), 0);
    for (int k = 0; k < HERDD_OPT_COUNT; k++)
        assert_int_equal(a.given[k], 0);
    assert_int_equal(a.log_level, HERD_LOG_WARN);
    herdd_args_free(&a);
    assert_int_equal(parse("", &a, err), 0);
    assert_null(a.name);
    herdd_args_free(&a);
}

/* Every key of the file is a flag of herdd's and the other way round. */
static void test_config_keys_are_the_flags(void **state)
{
    (void)state;
    static const char *const flags[] = {"name",    "listen",       "join",    "cookie-file",
                                        "control", "cluster",      "weight",  "heartbeat-ms",
                                        "down-ms", "forget-ms",    "log-level",
                                        "metrics", "discover",     "discover-interval-ms"};
    assert_int_equal(sizeof(flags) / sizeof(flags[0]) + 1, HERDD_OPT_COUNT); /* + config */
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        int k = herdd_opt_lookup(flags[i]);
        assert_true(k >= 0);
        assert_string_equal(herdd_opt_name(k), flags[i]);
    }
    assert_int_equal(herdd_opt_lookup("config"), HERDD_OPT_CONFIG);
    assert_int_equal(herdd_opt_lookup("help"), -1);
    assert_int_equal(herdd_opt_lookup("Name"), -1);
    assert_null(herdd_opt_name(-1));
    assert_null(herdd_opt_name(HERDD_OPT_COUNT));
}

static void test_config_bad_lines(void **state)
{
    (void)state;
    refused("name = n1\nwieght = 3\n", "f.conf:2: unknown key 'wieght'");
    refused("--name = n1\n", "f.conf:1: unknown key '--name' (a key is a flag without its dashes");
    refused("help = 1\n", "f.conf:1: unknown key 'help'");
    refused("version = 1\n", "f.conf:1: unknown key 'version'");
    refused("# c\nname n1\n", "f.conf:2: no '=' in 'name n1': want key = value");
    refused("name = n1\n= n2\n", "f.conf:2: no key before '='");
    refused("name =   \n", "f.conf:1: name has no value");
    refused("\n\nname = a\nweight = 3\nname = b\n",
            "f.conf:5: name given twice (first on line 3); give it once");
    refused("config = /etc/herd/other.conf\n", "f.conf:1: config cannot be given in a config file");
}

/* A value its flag's own checks refuse: the message herdd gives for the
 * flag, under the key's name, at its line. */
static void test_config_bad_values(void **state)
{
    (void)state;
    refused("\nweight = 0\n", "f.conf:2: weight wants a whole number 1-4096 (digits only), got '0'");
    refused("weight = 4097\n", "f.conf:1: weight wants a whole number 1-4096");
    refused("weight = 5x\n", "got '5x'");
    refused("weight = +5\n", "digits only");
    refused("weight = 99999999999999999999999\n", "f.conf:1: weight wants");
    refused("heartbeat-ms = 9\n", "f.conf:1: heartbeat-ms wants a whole number 10-60000");
    refused("down-ms = 19\n", "f.conf:1: down-ms wants a whole number 20-600000");
    refused("forget-ms = 86400001\n", "f.conf:1: forget-ms wants a whole number 100-86400000");
    refused("log-level = loud\n", "f.conf:1: log-level wants error, warn, info or debug, or "
                                   "those with subsystems' own (warn,replicas=debug), got 'loud'");
    refused("log-level = warn,replicas=loud\n", "f.conf:1: log-level wants");
    refused("log-level = warn,Replicas=debug\n", "f.conf:1: log-level wants");
    refused("log-level = warn,\n", "f.conf:1: log-level wants");
    refused("name = a b\n", "f.conf:1: bad name 'a b': use 1-64 of A-Za-z0-9_.-");
    refused("name = "
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "f.conf:1: bad name"); /* 65 bytes */
    refused("cluster = a/b\n", "f.conf:1: bad cluster 'a/b'");
    refused("listen = tcp://nope\n", "f.conf:1: listen wants tcp://HOST:PORT or ipc:///PATH");
    refused("listen = ipc://\n", "f.conf:1: listen wants");
    refused("join = tcp://a:1\njoin = garbage\n", "f.conf:2: join wants tcp://HOST:PORT");
    refused("control = tcp://127.0.0.1:9\n", "f.conf:1: control must be an ipc:// address");
    refused("metrics = localhost:9100\n", "f.conf:1: metrics: 'localhost' is not an IPv4 address");
    refused("metrics = 9100\n", "f.conf:1: metrics wants IPV4:PORT (127.0.0.1:9100), got '9100'");
    refused("discover = srv:herd:7001\n", "f.conf:1: discover: unknown kind 'srv'");
    refused("discover = range:10.0.0.0-10.0.8.0:7\n", "f.conf:1: discover: the range "
                                                      "10.0.0.0-10.0.8.0 holds 2049 addresses");
    refused("discover-interval-ms = 99\n", "f.conf:1: discover-interval-ms wants a whole number "
                                            "100-3600000");

    /* 64 joins are taken, the 65th is refused at its line */
    char text[4096];
    size_t used = 0;
    for (int i = 0; i < 65; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "join = tcp://h%d:1\n", i);
    herdd_args_t a;
    char err[ERR_CAP];
    assert_int_equal(herdd_config_parse("f.conf", text, used, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "f.conf:65: at most 64 join addresses"));
    const char *line65 = strstr(text, "join = tcp://h64:1");
    assert_int_equal(herdd_config_parse("f.conf", text, (size_t)(line65 - text), &a, err,
                                        sizeof(err)),
                     0);
    assert_int_equal(a.seed_count, 64);
    assert_string_equal(a.seeds[63], "tcp://h63:1");
    herdd_args_free(&a);
}

static void test_config_line_bounds(void **state)
{
    (void)state;
    char text[3 * HERDD_CONFIG_LINE_MAX];
    herdd_args_t a;
    char err[ERR_CAP];
    /* a line of exactly HERDD_CONFIG_LINE_MAX bytes, CR LF after it: taken */
    const char *key = "cookie-file = /";
    size_t klen = strlen(key);
    memcpy(text, key, klen);
    memset(text + klen, 'c', HERDD_CONFIG_LINE_MAX - klen);
    memcpy(text + HERDD_CONFIG_LINE_MAX, "\r\nname = n1\n", 12);
    assert_int_equal(herdd_config_parse("f.conf", text, HERDD_CONFIG_LINE_MAX + 12, &a, err,
                                        sizeof(err)),
                     0);
    assert_int_equal(strlen(a.cookie_file), HERDD_CONFIG_LINE_MAX - klen + 1);
    assert_string_equal(a.name, "n1");
    herdd_args_free(&a);
    /* one byte more, on line 2: refused there, even as a comment */
    memcpy(text, "name = n1\n", 10);
    memset(text + 10, '#', HERDD_CONFIG_LINE_MAX + 1);
    assert_int_equal(herdd_config_parse("f.conf", text, 10 + HERDD_CONFIG_LINE_MAX + 1, &a, err,
                                        sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "f.conf:2: line longer than 1024 bytes"));
    assert_null(a.text);
    /* a NUL byte in a line */
    assert_int_equal(herdd_config_parse("f.conf", "name = n1\nlisten\0 = x\n", 22, &a, err,
                                        sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "f.conf:2: a NUL byte"));
    /* a text over the size limit is refused before any line is read */
    char *big = malloc(HERDD_CONFIG_SIZE_MAX + 1);
    assert_non_null(big);
    memset(big, '\n', HERDD_CONFIG_SIZE_MAX + 1);
    assert_int_equal(herdd_config_parse("f.conf", big, HERDD_CONFIG_SIZE_MAX + 1, &a, err,
                                        sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "f.conf: larger than 65536 bytes"));
    assert_int_equal(herdd_config_parse("f.conf", big, HERDD_CONFIG_SIZE_MAX, &a, err,
                                        sizeof(err)),
                     0);
    herdd_args_free(&a);
    free(big);
}

/* ---- the file -------------------------------------------------------------------- */

static void test_config_file_errors(void **state)
{
    (void)state;
    herdd_args_t a;
    char err[ERR_CAP], path[128];
    /* missing */
    snprintf(path, sizeof(path), "%s/none.conf", dir);
    assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot read config file: No such file or directory"));
    /* a directory */
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "sub: not a regular file"));
    /* a FIFO nobody writes: refused at once, not a hang */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "fifo: not a regular file"));
    /* unreadable (as anyone but root) */
    write_file("a.conf", "name = n1\n", strlen("name = n1\n"), path, sizeof(path));
    if (geteuid() != 0) {
        assert_int_equal(chmod(path, 0), 0);
        assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "cannot read config file: Permission denied"));
        assert_int_equal(chmod(path, 0600), 0);
    }
    /* a bad line names the file as given and its line */
    const char *bad = "name = n1\n\nlisten = tcp://x\n";
    write_file("a.conf", bad, strlen(bad), path, sizeof(path));
    assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), -1);
    char want[200];
    snprintf(want, sizeof(want), "%s:3: listen wants", path);
    assert_non_null(strstr(err, want));
    assert_null(a.text);
    /* one byte over the size limit, and the limit itself */
    char *big = malloc(HERDD_CONFIG_SIZE_MAX + 1);
    assert_non_null(big);
    memset(big, '\n', HERDD_CONFIG_SIZE_MAX + 1);
    memcpy(big, "name = n9\n", 10);
    write_file("big.conf", big, HERDD_CONFIG_SIZE_MAX + 1, path, sizeof(path));
    assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "big.conf: larger than 65536 bytes"));
    write_file("max.conf", big, HERDD_CONFIG_SIZE_MAX, path, sizeof(path));
    assert_int_equal(herdd_config_load(path, &a, err, sizeof(err)), 0);
    assert_string_equal(a.name, "n9");
    assert_string_equal(a.file, path);
    herdd_args_free(&a);
    free(big);
}

/* The example installed with herdd@.service is a file herdd takes. */
static void test_config_example_conf(void **state)
{
    (void)state;
    herdd_args_t a;
    char err[ERR_CAP];
    if (herdd_config_load(HERDD_EXAMPLE_CONF, &a, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_string_equal(a.name, "n1");
    assert_non_null(a.listen);
    assert_int_equal(a.seed_count, 2);
    assert_string_equal(a.control, "ipc:///run/herd/n1/herdd.ctl"); /* the unit's RuntimeDirectory */
    assert_string_equal(a.cookie_file, "/etc/herd/n1.cookie");
    herdd_args_free(&a);
}

/* ---- the command line, and which wins -------------------------------------------- */

#define ARGV(...) ((char *[]){"herdd", __VA_ARGS__, NULL})

/* herdd_args_load on argv (NULL-terminated): its result, the options in *a
 * (freed by the caller). */
static int load(herdd_args_t *a, char **argv, char *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    err[0] = '\0';
    return herdd_args_load(a, argc, argv, err, ERR_CAP);
}

static void load_refused(char **argv, const char *want)
{
    herdd_args_t a;
    char err[ERR_CAP];
    int rc = load(&a, argv, err);
    if (rc != HERDD_ARGS_USAGE || strstr(err, want) == NULL)
        fail_msg("herdd_args_load: %d, '%s'; wanted a usage error with '%s'", rc, err, want);
    herdd_args_free(&a);
}

static void test_args_command_line(void **state)
{
    (void)state;
    herdd_args_t a;
    char err[ERR_CAP];
    char **v = ARGV("--name", "n1", "--listen", "tcp://127.0.0.1:7001", "--cookie-file", "c",
                    "--join", "tcp://127.0.0.1:7002", "--join=tcp://127.0.0.1:7003");
    assert_int_equal(load(&a, v, err), HERDD_ARGS_RUN);
    assert_string_equal(a.name, "n1");
    assert_int_equal(a.seed_count, 2);
    assert_string_equal(a.seeds[1], "tcp://127.0.0.1:7003");
    assert_int_equal(a.log_level, HERD_LOG_WARN); /* the default */
    assert_int_equal(a.weight, 0);
    assert_null(a.file);
    assert_null(a.text);
    herdd_args_free(&a);
    char **h = ARGV("--name", "n1", "--help");
    assert_int_equal(load(&a, h, err), HERDD_ARGS_HELP);
    char **ver = ARGV("--version");
    assert_int_equal(load(&a, ver, err), HERDD_ARGS_VERSION);
    /* the messages herdd always gave */
    char **twice = ARGV("--weight", "5", "--weight", "6");
    load_refused(twice, "--weight given twice; give it once");
    char **spaced = ARGV("--weight", " 5");
    load_refused(spaced, "--weight wants a whole number 1-4096 (digits only), got ' 5'");
    char **cluster = ARGV("--cluster", "");
    load_refused(cluster, "bad --cluster ''");
    char **unknown = ARGV("--frobnicate");
    load_refused(unknown, "unknown option '--frobnicate'");
    char **novalue = ARGV("--name");
    load_refused(novalue, "--name needs a value");
    char **extra = ARGV("--name", "n1", "stray");
    load_refused(extra, "unexpected argument 'stray'");
    char **missing = ARGV("--name", "n1", "--listen", "tcp://127.0.0.1:1");
    load_refused(missing, "--name, --listen and --cookie-file are required");
    char **down = ARGV("--name", "n", "--listen", "tcp://h:1", "--cookie-file", "c",
                       "--down-ms", "20", "--heartbeat-ms", "1000");
    load_refused(down, "--down-ms 20 is under two heartbeats (--heartbeat-ms 1000)");
    char **ctl = ARGV("--control", "tcp://127.0.0.1:9");
    load_refused(ctl, "--control must be an ipc:// address");
    char **config2 = ARGV("--config", "a", "--config", "b");
    load_refused(config2, "--config given twice");
}

static void test_args_command_line_wins(void **state)
{
    (void)state;
    char path[128], err[ERR_CAP];
    const char *text = "name = file-node\n"
                       "listen = tcp://127.0.0.1:7001\n"
                       "cookie-file = /etc/herd/file.cookie\n"
                       "join = tcp://127.0.0.1:7101\n"
                       "join = tcp://127.0.0.1:7102\n"
                       "weight = 7\n"
                       "log-level = info\n";
    write_file("a.conf", text, strlen(text), path, sizeof(path));
    herdd_args_t a;
    /* the file alone */
    char **only = ARGV("--config", path);
    assert_int_equal(load(&a, only, err), HERDD_ARGS_RUN);
    assert_string_equal(a.name, "file-node");
    assert_int_equal(a.seed_count, 2);
    assert_int_equal(a.weight, 7);
    assert_int_equal(a.log_level, HERD_LOG_INFO);
    assert_string_equal(a.config, path);
    assert_int_equal(a.line[HERDD_OPT_WEIGHT], 6);
    herdd_args_free(&a);
    /* flags given win, before or after --config; their joins replace the file's */
    char **over = ARGV("--name", "cli-node", "--config", path, "--join", "tcp://127.0.0.1:7201",
                       "--log-level", "error", "--weight=9");
    assert_int_equal(load(&a, over, err), HERDD_ARGS_RUN);
    assert_string_equal(a.name, "cli-node");
    assert_int_equal(a.line[HERDD_OPT_NAME], 0); /* not the file's any more */
    assert_int_equal(a.seed_count, 1);
    assert_string_equal(a.seeds[0], "tcp://127.0.0.1:7201");
    assert_int_equal(a.log_level, HERD_LOG_ERROR);
    assert_null(a.log_spec);
    assert_int_equal(a.weight, 9);
    assert_string_equal(a.listen, "tcp://127.0.0.1:7001"); /* the rest: the file's */
    assert_string_equal(a.cookie_file, "/etc/herd/file.cookie");
    assert_int_equal(a.line[HERDD_OPT_LISTEN], 2);
    herdd_args_free(&a);
    /* subsystems' own levels: kept as given, the command line's winning */
    char **spec = ARGV("--config", path, "--log-level", "info,replicas=debug");
    assert_int_equal(load(&a, spec, err), HERDD_ARGS_RUN);
    assert_string_equal(a.log_spec, "info,replicas=debug");
    herdd_args_free(&a);
    /* a flag the file does not give is added; no --join: the file's list stays */
    char **add = ARGV("--config", path, "--cluster", "c2");
    assert_int_equal(load(&a, add, err), HERDD_ARGS_RUN);
    assert_string_equal(a.cluster, "c2");
    assert_int_equal(a.seed_count, 2);
    assert_string_equal(a.seeds[1], "tcp://127.0.0.1:7102");
    herdd_args_free(&a);
    /* a flag given twice on the command line is still refused */
    char **twice = ARGV("--config", path, "--weight", "1", "--weight", "2");
    load_refused(twice, "--weight given twice");
    /* the file is checked whole: a bad line is refused even if a flag overrides it */
    const char *bad = "name = n1\nweight = 0\n";
    write_file("a.conf", bad, strlen(bad), path, sizeof(path));
    char **fix = ARGV("--config", path, "--weight", "3");
    char want[200];
    snprintf(want, sizeof(want), "%s:2: weight wants a whole number", path);
    load_refused(fix, want);
    /* an unreadable file is a usage error too */
    char none[160];
    snprintf(none, sizeof(none), "%s/none.conf", dir);
    char **missing = ARGV("--config", none);
    load_refused(missing, "cannot read config file");
}

/* The checks across options see both, and say where the file's value is. */
static void test_args_checks_across(void **state)
{
    (void)state;
    char path[128], err[ERR_CAP], want[300];
    const char *text = "name = n1\nlisten = tcp://h:1\n\ndown-ms = 500\n";
    write_file("a.conf", text, strlen(text), path, sizeof(path));
    /* the file's down-ms against the command line's heartbeat */
    char **hb = ARGV("--config", path, "--cookie-file", "c", "--heartbeat-ms", "500");
    snprintf(want, sizeof(want), "%s:4: --down-ms 500 is under two heartbeats (--heartbeat-ms 500)",
             path);
    load_refused(hb, want);
    /* fine with the default heartbeat (200) */
    herdd_args_t a;
    char **ok = ARGV("--config", path, "--cookie-file", "c");
    assert_int_equal(load(&a, ok, err), HERDD_ARGS_RUN);
    assert_int_equal(a.down_ms, 500);
    herdd_args_free(&a);
    /* the command line's down-ms overrides the file's, and is the one judged */
    char **down = ARGV("--config", path, "--cookie-file", "c", "--down-ms", "100");
    load_refused(down, "--down-ms 100 is under two heartbeats (--heartbeat-ms 200)");
    /* required: neither gives the cookie */
    char **req = ARGV("--config", path);
    snprintf(want, sizeof(want),
             "--name, --listen and --cookie-file are required (on the command line or in %s)",
             path);
    load_refused(req, want);
    /* an interval with nothing to discover */
    char **lone = ARGV("--config", path, "--cookie-file", "c", "--discover-interval-ms", "500");
    load_refused(lone, "--discover-interval-ms is given without --discover");
    /* the command line's --discover and --metrics win over the file's */
    const char *both = "name = n1\nlisten = tcp://h:1\ncookie-file = c\n"
                       "discover = dns:file.local:1\nmetrics = 127.0.0.1:1\n";
    write_file("a.conf", both, strlen(both), path, sizeof(path));
    char **cli = ARGV("--config", path, "--discover", "range:127.0.0.1-127.0.0.3:7", "--metrics",
                      "0.0.0.0:9100");
    assert_int_equal(load(&a, cli, err), HERDD_ARGS_RUN);
    assert_int_equal(a.discover_spec.kind, DISCOVER_RANGE);
    assert_int_equal(a.discover_spec.port, 7);
    assert_int_equal(a.metrics_ip, 0);
    assert_int_equal(a.metrics_port, 9100);
    herdd_args_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_every_key),
        cmocka_unit_test(test_config_keys_are_the_flags),
        cmocka_unit_test(test_config_bad_lines),
        cmocka_unit_test(test_config_bad_values),
        cmocka_unit_test(test_config_line_bounds),
        cmocka_unit_test(test_config_file_errors),
        cmocka_unit_test(test_config_example_conf),
        cmocka_unit_test(test_args_command_line),
        cmocka_unit_test(test_args_command_line_wins),
        cmocka_unit_test(test_args_checks_across),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
