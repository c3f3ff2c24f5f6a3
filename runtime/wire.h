/*
 * wire.h - bounds-checked little-endian encoding of frame bodies.
 *
 * Every body that crosses the network is built with a wire_writer and read
 * with a wire_reader. Errors are sticky: after the first short read or bad
 * length every later get fails too and returns zeroes, so a decoder can read
 * all its fields and check `r.err` once at the end, and can never read past
 * the buffer whatever the input.
 *
 * Layout: integers little-endian, fixed width. A string is a u8 length then
 * that many bytes (no NUL); bytes are a u32 length then the bytes.
 */
#ifndef HERD_WIRE_H
#define HERD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "herd_error.h"

typedef struct wire_writer {
    uint8_t *buf; /* owned, malloc'ed; grows as needed */
    size_t len, cap;
    int err; /* 0, or HERD_ENOMEM / HERD_ERANGE (a string over 255 bytes,
                bytes over UINT32_MAX) / HERD_EINVAL (NULL string or data) */
} wire_writer_t;

void wire_writer_init(wire_writer_t *w);
void wire_writer_fini(wire_writer_t *w);
/* Hand over the buffer (the caller frees it): *len gets its length; the
 * writer is left as after wire_writer_init. NULL, *len 0 (and nothing to
 * free) when the writer had an error or, for an empty writer, malloc failed:
 * NULL always means an error. */
uint8_t *wire_writer_take(wire_writer_t *w, size_t *len);
/* Room for n more bytes at once, exactly (a writer that knows what it will
 * hold skips growing step by step, a copy each step); past it the writer
 * grows as ever. An error (no memory) is the writer's, as for a put. */
void wire_writer_reserve(wire_writer_t *w, size_t n);
void wire_put_u8(wire_writer_t *w, uint8_t v);
void wire_put_u16(wire_writer_t *w, uint16_t v);
void wire_put_u32(wire_writer_t *w, uint32_t v);
void wire_put_u64(wire_writer_t *w, uint64_t v);
void wire_put_raw(wire_writer_t *w, const void *data, size_t len);
void wire_put_str(wire_writer_t *w, const char *s);                 /* u8 length */
void wire_put_bytes(wire_writer_t *w, const void *data, size_t len); /* u32 length */

typedef struct wire_reader {
    const uint8_t *p;
    size_t len, off;
    int err; /* 0, or HERD_EBADFRAME once anything did not fit */
} wire_reader_t;

void wire_reader_init(wire_reader_t *r, const void *data, size_t len);
uint8_t wire_get_u8(wire_reader_t *r);
uint16_t wire_get_u16(wire_reader_t *r);
uint32_t wire_get_u32(wire_reader_t *r);
uint64_t wire_get_u64(wire_reader_t *r);
/* A string into out[cap] (NUL-terminated); a string of cap bytes or more, or
 * one with a NUL byte inside, is an error. Returns its length (0 on error,
 * out[0] then '\0' when cap > 0). */
size_t wire_get_str(wire_reader_t *r, char *out, size_t cap);
/* Bytes by reference into the reader's buffer (no copy); returns their
 * length. *data NULL (and 0) on error, never NULL on success. */
size_t wire_get_bytes(wire_reader_t *r, const uint8_t **data);
/* 0 when everything was read without error and nothing is left over, else
 * HERD_EBADFRAME. */
int wire_reader_done(const wire_reader_t *r);

#endif
