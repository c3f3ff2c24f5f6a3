/*
 * bigstate.c - a moved child's state larger than one message.
 *
 * A frame carries at most 1 MiB, and a peer's stream holds at most 64 MiB
 * unacknowledged. An offer whose state is larger than BIGSTATE_INLINE goes
 * as parts first (HO_PART: offset, total, up to BIGSTATE_PART bytes each),
 * then the offer itself naming the total. The old node sends parts only
 * while what the peer has not acknowledged stays under BIGSTATE_WINDOW, and
 * the rest at later ticks, so a large state neither fills the stream nor
 * holds the loop. The stream is ordered, so the new owner has every part
 * when the offer arrives; it keeps them per (old node, move id), bounded by
 * max_state_bytes, and drops them on an abort, when the old node goes, or
 * when no part came for a while. A state over max_state_bytes does not move:
 * the move fails with HERD_ETOOBIG and the child runs on where it is.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "log.h"
#include "wire.h"

#define BIGSTATE_WINDOW (8u << 20) /* unacknowledged bytes before more parts wait */

typedef struct parts_in {
    uint64_t from, id;
    uint8_t *buf;
    size_t len, total;
    uint64_t last; /* node clock of the last part */
} parts_in_t;

static uint64_t parts_key(uint64_t from, uint64_t id)
{
    return (from * 0x9e3779b97f4a7c15ull) ^ id ^ 1;
}

/* ---- the old node -------------------------------------------------------------- */

/* Send parts of c's pending state while the window allows. Returns 0 when
 * every part is out (the offer may follow), HERD_EBUSY when some wait for
 * the window, or the send's error. */
int bigstate_pump(dsup_t *d, dchild_t *c)
{
    herd_node_t *n = d->node;
    while (c->out_sent < c->out_len) {
        herd_stream_stats_t st;
        if (herd_cluster_stream_stats(n, c->peer, &st) == 0 &&
            st.pending_bytes >= BIGSTATE_WINDOW)
            return HERD_EBUSY;
        size_t chunk = c->out_len - c->out_sent;
        if (chunk > BIGSTATE_PART)
            chunk = BIGSTATE_PART;
        wire_writer_t w;
        wire_writer_init(&w);
        wire_put_u8(&w, HO_PART);
        wire_put_u64(&w, c->move_id);
        wire_put_str(&w, c->name);
        wire_put_u64(&w, c->out_sent);
        wire_put_u64(&w, c->out_len);
        wire_put_bytes(&w, c->out + c->out_sent, chunk);
        int rc = w.err ? HERD_ENOMEM
                       : herd_cluster_send_app(n, c->peer, HANDOFF_APP, w.buf, w.len);
        wire_writer_fini(&w);
        if (rc) {
            d->stats.send_failed++;
            return rc;
        }
        c->out_sent += chunk;
        c->deadline = herd_node_now(n) + d->cfg.handoff_timeout_ms; /* progress */
    }
    return 0;
}

void bigstate_out_free(dchild_t *c)
{
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_sent = 0;
}

/* ---- the new owner ------------------------------------------------------------- */

static void parts_drop(dsup_t *d, uint64_t key)
{
    parts_in_t *p = u64map_del(&d->parts, key);
    if (p) {
        free(p->buf);
        free(p);
    }
}

/* A part: appended when it continues what came before; anything else (a
 * gap, a total that changed or is over the cap) drops the move's parts and
 * the offer is then refused. */
void bigstate_on_part(dsup_t *d, uint64_t from, uint64_t id, uint64_t offset, uint64_t total,
                      const uint8_t *chunk, size_t len)
{
    uint64_t key = parts_key(from, id);
    parts_in_t *p = u64map_get(&d->parts, key);
    if (p == NULL && offset == 0 && total <= d->cfg.max_state_bytes) {
        if ((p = calloc(1, sizeof(*p))) == NULL || (p->buf = malloc(total)) == NULL ||
            u64map_put(&d->parts, key, p) != 0) {
            if (p)
                free(p->buf);
            free(p);
            herd_log(HERD_LOG_ERROR, "handoff", "out of memory for a %llu-byte state",
                     (unsigned long long)total);
            return; /* the offer finds no parts and is refused: the move aborts */
        }
        p->from = from;
        p->id = id;
        p->total = total;
    }
    if (p == NULL || offset != p->len || total != p->total || len > total - p->len) {
        herd_log_limited(&d->log_bad, herd_node_now(d->node), HERD_LOG_WARN, "handoff",
                         "state part out of order or over %llu bytes (offset %llu of %llu): "
                         "the move's parts are dropped",
                         (unsigned long long)d->cfg.max_state_bytes,
                         (unsigned long long)offset, (unsigned long long)total);
        d->stats.rejected_parts++;
        parts_drop(d, key);
        return;
    }
    memcpy(p->buf + p->len, chunk, len);
    p->len += len;
    p->last = herd_node_now(d->node);
}

/* Take the whole state of move (from, id): 0 with *out malloc'ed, or
 * HERD_ENOENT when it is missing or incomplete (the parts are dropped). */
int bigstate_take(dsup_t *d, uint64_t from, uint64_t id, uint64_t total, uint8_t **out)
{
    uint64_t key = parts_key(from, id);
    parts_in_t *p = u64map_get(&d->parts, key);
    if (p == NULL || p->len != p->total || p->total != total) {
        parts_drop(d, key);
        return HERD_ENOENT;
    }
    u64map_del(&d->parts, key);
    *out = p->buf;
    free(p);
    return 0;
}

void bigstate_drop_move(dsup_t *d, uint64_t from, uint64_t id)
{
    if (d->parts.count)
        parts_drop(d, parts_key(from, id));
}

/* Parts of a peer that went (`from`, any when 0), or that stalled since
 * `stale_before` (node clock; 0: not by age). */
void bigstate_expire(dsup_t *d, uint64_t from, uint64_t stale_before)
{
    if (d->parts.count == 0)
        return;
    uint64_t *keys = malloc(d->parts.count * sizeof(*keys));
    size_t k = 0, cursor = 0;
    if (keys == NULL)
        return; /* tried again at the next tick */
    for (u64map_slot_t *s; (s = u64map_next(&d->parts, &cursor)) != NULL;) {
        parts_in_t *p = s->value;
        if ((from && p->from == from) || (stale_before && p->last < stale_before))
            keys[k++] = s->key;
    }
    for (size_t i = 0; i < k; i++)
        parts_drop(d, keys[i]);
    free(keys);
}

void bigstate_free(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->parts, &cursor)) != NULL;) {
        parts_in_t *p = s->value;
        free(p->buf);
        free(p);
    }
    u64map_fini(&d->parts);
}
