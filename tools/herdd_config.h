/*
 * herdd_config.h - herdd's --config FILE.
 *
 * One `key = value` a line, where key is one of herdd's long flags without
 * its dashes (name, listen, join, cookie-file, control, cluster, weight,
 * heartbeat-ms, down-ms, forget-ms, log-level); spaces and tabs around key
 * and value are dropped, as is a CR before the newline. A line whose first
 * non-blank character is `#` is a comment, and blank lines are skipped; a
 * `#` after a value belongs to the value. `join` may repeat; any other key is
 * given once. Each value goes through its flag's own checks
 * (herdd_args_set). Refused, with FILE:LINE and why: an unknown key (config
 * too: one file only), a line without `=` or without a key or a value, a key
 * given twice, a value its flag refuses, a line over HERDD_CONFIG_LINE_MAX
 * bytes, a NUL byte; and a file that cannot be read, is not a regular file
 * or is over HERDD_CONFIG_SIZE_MAX bytes.
 */
#ifndef HERD_HERDD_CONFIG_H
#define HERD_HERDD_CONFIG_H

#include <stddef.h>

#include "herdd_args.h"

#define HERDD_CONFIG_LINE_MAX 1024  /* bytes of a line, its newline (and CR) not counted */
#define HERDD_CONFIG_SIZE_MAX 65536 /* bytes of a whole file */

/* Parse the `len` bytes of `text`, a config file's (`file` names it in
 * messages and in out->file), into `out` (reset first). No I/O: out->text
 * gets a copy of the text that out's values point into (herdd_args_free).
 * 0, or -1 with "FILE:LINE: why" in err (cap bytes) and nothing owned. */
int herdd_config_parse(const char *file, const char *text, size_t len, herdd_args_t *out,
                       char *err, size_t cap);

/* Read the file at `path` and parse it (herdd_config_parse). 0, or -1 with
 * why in err and nothing owned. */
int herdd_config_load(const char *path, herdd_args_t *out, char *err, size_t cap);

#endif
