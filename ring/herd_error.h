/*
 * herd_error.h - herd's one error space.
 *
 * Every herd function that can fail returns 0 or a negative HERD_E* code. The
 * codes come from one X-macro table, so herd_strerror() and herd_err_name()
 * can never drift from the enum. The table lives in the ring, the leaf layer,
 * because every other layer may depend on the ring and none on anything else
 * below it.
 */
#ifndef HERD_ERROR_H
#define HERD_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* libherd exports what its public headers declare, and nothing else */
#pragma GCC visibility push(default)

/* X(NAME, value, message) */
#define HERD_ERRNO_MAP(X)                                                     \
    X(EINVAL, -1, "invalid argument")                                         \
    X(ENOMEM, -2, "out of memory")                                            \
    X(EEXIST, -3, "already exists")                                           \
    X(ENOENT, -4, "no such entry")                                            \
    X(EEMPTY, -5, "ring has no members")                                      \
    X(ENAMETOOLONG, -6, "name too long")                                      \
    X(ERANGE, -7, "value out of range")                                       \
    X(EBADNAME, -8, "name is empty or has characters outside A-Za-z0-9_.-")    \
    X(ENOPROC, -9, "no such process")                                         \
    X(ETIMEDOUT, -10, "timed out")                                            \
    X(EFULL, -11, "mailbox full")                                             \
    X(ETOOBIG, -12, "message too big")                                        \
    X(EDEADLK, -13, "blocking call from inside the node's loop (a process or a loop callback)") \
    X(EIO, -14, "I/O error")                                                  \
    X(EBADFRAME, -15, "malformed or unauthenticated frame")                   \
    X(ENOTCONN, -16, "node down or unknown")                                  \
    X(EBUSY, -17, "busy: try again later")                                   \
    X(EUNCERTAIN, -18, "outcome unknown: it may or may not take effect")      \
    X(ENOSERVICE, -19, "no live member provides the service")                 \
    X(EUNAVAILABLE, -20, "too few copies of its state can be kept: refused, nothing applied") \
    X(ESHUTDOWN, -21, "node shut down or being freed")                        \
    X(EINSECURE, -22, "file open to group or others: make it readable by its owner only")

typedef enum {
#define HERD_ERR_ENUM(name, value, msg) HERD_##name = value,
    HERD_ERRNO_MAP(HERD_ERR_ENUM)
#undef HERD_ERR_ENUM
} herd_errno_t;

/* Application errors: a service's own error codes, kept apart from herd's.
 * A reply (herd_reply_error) carries code 1..HERD_APP_ERROR_MAX in its
 * status as HERD_APP_ERROR_BASE - code, below every HERD_E* code, so a
 * caller tells "the service said no" from "herd could not deliver". */
#define HERD_APP_ERROR_MAX 0xFFFFFF
#define HERD_APP_ERROR_BASE (-0x1000000)
/* The status that carries application error `code`, or HERD_EINVAL when
 * `code` is outside 1..HERD_APP_ERROR_MAX. */
int herd_app_error(int code);
/* The application error code a status carries, or 0 when it carries none
 * (0, or one of herd's codes). */
int herd_app_error_code(int status);

/* A human message for `err` ("success" for 0, "the service's own error"
 * for an application error, "unknown error" otherwise). */
const char *herd_strerror(int err);
/* The code's name without the HERD_ prefix, e.g. "EINVAL"; "EAPP" for an
 * application error. */
const char *herd_err_name(int err);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
