/*
 * herd_posix.h - what herd's public headers need of the C library before
 * any other header: libuv's uv.h needs POSIX.1-2008 (pthread_rwlock_t,
 * ...). A program compiled with -std=c11 and no feature macro of its own
 * gets it here, as long as no system header came before herd's; one that
 * did is told so, rather than failing deep inside uv.h.
 */
#ifndef HERD_POSIX_H
#define HERD_POSIX_H

#if defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) &&  \
    !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE) && !defined(_BSD_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <stdint.h>
#if defined(__GLIBC__) && !defined(__USE_XOPEN2K)
#error "herd needs POSIX.1-2008 for libuv's uv.h: include herd's headers before \
any system header, or compile with -D_POSIX_C_SOURCE=200809L"
#endif

#endif
