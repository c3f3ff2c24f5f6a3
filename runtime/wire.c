/*
 * wire.c - bounds-checked little-endian encoding of frame bodies (wire.h).
 *
 * Bodies come from the network, so the reader is written for hostile input:
 * every length is compared with what remains by subtraction (never `off + n`,
 * which could wrap), and the first failure is sticky so a decoder can read all
 * its fields and check once. The writer's errors are sticky the same way, so
 * an encoder can put every field and check once at wire_writer_take.
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#define WIRE_MIN_CAP 64u

/* What a successful zero-length wire_get_bytes points at when the reader has
 * no buffer: callers may tell success from error by *data alone. */
static const uint8_t wire_empty[1];

/* ---- writer -------------------------------------------------------------- */

void wire_writer_init(wire_writer_t *w)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->err = 0;
}

void wire_writer_fini(wire_writer_t *w)
{
    free(w->buf);
    wire_writer_init(w);
}

uint8_t *wire_writer_take(wire_writer_t *w, size_t *len)
{
    uint8_t *buf = w->buf;
    *len = 0;
    if (w->err != 0) {
        free(buf);
        buf = NULL;
    } else if (buf == NULL) {
        buf = malloc(1); /* an empty body is not an error: never NULL */
    } else {
        *len = w->len;
    }
    wire_writer_init(w);
    return buf;
}

/* Room for `n` more bytes; 0 or sets the sticky error. */
static int wire_reserve(wire_writer_t *w, size_t n)
{
    if (w->err != 0)
        return w->err;
    if (n <= w->cap - w->len)
        return 0;
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = HERD_ENOMEM;
        return w->err;
    }
    size_t want = w->len + n;
    size_t cap = w->cap ? w->cap : WIRE_MIN_CAP;
    while (cap < want)
        cap *= 2;
    uint8_t *buf = realloc(w->buf, cap);
    if (buf == NULL) {
        w->err = HERD_ENOMEM;
        return w->err;
    }
    w->buf = buf;
    w->cap = cap;
    return 0;
}

void wire_writer_reserve(wire_writer_t *w, size_t n)
{
    if (w->err != 0 || n <= w->cap - w->len)
        return;
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = HERD_ENOMEM;
        return;
    }
    uint8_t *buf = realloc(w->buf, w->len + n);
    if (buf == NULL) {
        w->err = HERD_ENOMEM;
        return;
    }
    w->buf = buf;
    w->cap = w->len + n;
}

/* Little-endian, whatever the host's order. */
static void wire_put_le(wire_writer_t *w, uint64_t v, size_t n)
{
    if (wire_reserve(w, n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        w->buf[w->len + i] = (uint8_t)(v >> (8 * i));
    w->len += n;
}

void wire_put_u8(wire_writer_t *w, uint8_t v)
{
    wire_put_le(w, v, 1);
}

void wire_put_u16(wire_writer_t *w, uint16_t v)
{
    wire_put_le(w, v, 2);
}

void wire_put_u32(wire_writer_t *w, uint32_t v)
{
    wire_put_le(w, v, 4);
}

void wire_put_u64(wire_writer_t *w, uint64_t v)
{
    wire_put_le(w, v, 8);
}

void wire_put_raw(wire_writer_t *w, const void *data, size_t len)
{
    if (w->err != 0 || len == 0)
        return;
    if (data == NULL) {
        w->err = HERD_EINVAL;
        return;
    }
    if (wire_reserve(w, len) != 0)
        return;
    memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void wire_put_str(wire_writer_t *w, const char *s)
{
    if (w->err != 0)
        return;
    if (s == NULL) {
        w->err = HERD_EINVAL;
        return;
    }
    size_t n = strlen(s);
    if (n > UINT8_MAX) {
        w->err = HERD_ERANGE;
        return;
    }
    wire_put_u8(w, (uint8_t)n);
    wire_put_raw(w, s, n);
}

void wire_put_bytes(wire_writer_t *w, const void *data, size_t len)
{
    if (w->err != 0)
        return;
    if (len > UINT32_MAX) {
        w->err = HERD_ERANGE;
        return;
    }
    wire_put_u32(w, (uint32_t)len);
    wire_put_raw(w, data, len);
}

/* ---- reader -------------------------------------------------------------- */

void wire_reader_init(wire_reader_t *r, const void *data, size_t len)
{
    r->p = data;
    r->len = data ? len : 0;
    r->off = 0;
    r->err = 0;
}

/* The next `n` bytes, consumed; NULL (and the sticky error) when fewer
 * remain. n == 0 gives a non-NULL pointer only if the reader has a buffer. */
static const uint8_t *wire_take(wire_reader_t *r, size_t n)
{
    if (r->err != 0)
        return NULL;
    if (n > r->len - r->off) {
        r->err = HERD_EBADFRAME;
        return NULL;
    }
    const uint8_t *p = r->p ? r->p + r->off : NULL;
    r->off += n;
    return p;
}

static uint64_t wire_get_le(wire_reader_t *r, size_t n)
{
    const uint8_t *p = wire_take(r, n);
    uint64_t v = 0;
    if (p == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint8_t wire_get_u8(wire_reader_t *r)
{
    return (uint8_t)wire_get_le(r, 1);
}

uint16_t wire_get_u16(wire_reader_t *r)
{
    return (uint16_t)wire_get_le(r, 2);
}

uint32_t wire_get_u32(wire_reader_t *r)
{
    return (uint32_t)wire_get_le(r, 4);
}

uint64_t wire_get_u64(wire_reader_t *r)
{
    return wire_get_le(r, 8);
}

size_t wire_get_str(wire_reader_t *r, char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    size_t n = wire_get_u8(r);
    if (r->err != 0)
        return 0;
    if (n >= cap) {
        r->err = HERD_EBADFRAME;
        return 0;
    }
    const uint8_t *p = wire_take(r, n);
    if (p == NULL && n > 0)
        return 0;
    /* An embedded NUL would make the C string disagree with its length. */
    if (n > 0 && memchr(p, '\0', n) != NULL) {
        r->err = HERD_EBADFRAME;
        return 0;
    }
    if (n > 0)
        memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

size_t wire_get_bytes(wire_reader_t *r, const uint8_t **data)
{
    *data = NULL;
    size_t n = wire_get_u32(r);
    if (r->err != 0)
        return 0;
    const uint8_t *p = wire_take(r, n);
    if (r->err != 0)
        return 0;
    /* Success always gives a non-NULL pointer, even for zero bytes. */
    *data = p ? p : wire_empty;
    return n;
}

int wire_reader_done(const wire_reader_t *r)
{
    return (r->err == 0 && r->off == r->len) ? 0 : HERD_EBADFRAME;
}
