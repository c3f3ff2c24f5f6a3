/*
 * channel.c - reliable ordered delivery to one peer (see channel.h).
 */
#include "channel.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define CHANNEL_MAX_BATCH 1024u /* messages per frame */
#define CHANNEL_MSG_OVERHEAD 4u /* the u32 length of each message */
#define CHANNEL_BODY_HEADER 18u /* ack, first_seq, count */

static void channel_free_list(channel_msg_t *m)
{
    while (m) {
        channel_msg_t *next = m->next;
        free(m);
        m = next;
    }
}

void channel_init(channel_t *ch, uint32_t rto_ms, size_t max_unacked)
{
    memset(ch, 0, sizeof(*ch));
    ch->next_seq = 1;
    ch->next_send = 1;
    ch->expected = 1;
    ch->window = CHANNEL_DEFAULT_WINDOW;
    ch->rto_ms = rto_ms ? rto_ms : CHANNEL_DEFAULT_RTO_MS;
    ch->max_unacked = max_unacked ? max_unacked : CHANNEL_DEFAULT_MAX_UNACKED;
}

void channel_fini(channel_t *ch)
{
    channel_free_list(ch->head);
    channel_free_list(ch->early);
    ch->head = ch->tail = ch->early = ch->unsent = NULL;
}

size_t channel_set_peer(channel_t *ch, uint64_t inc)
{
    if (ch->peer_inc == inc)
        return 0;
    size_t dropped = 0;
    for (channel_msg_t *m = ch->head; m; m = m->next)
        dropped++;
    uint32_t rto = ch->rto_ms;
    size_t max = ch->max_unacked;
    channel_fini(ch);
    channel_init(ch, rto, max);
    ch->peer_inc = inc;
    return ch->peer_inc == 0 ? 0 : dropped;
}

int channel_queue(channel_t *ch, const void *data, size_t len)
{
    if (ch->unacked_bytes + len > ch->max_unacked)
        return HERD_EFULL;
    channel_msg_t *m = malloc(sizeof(*m) + len);
    if (m == NULL)
        return HERD_ENOMEM;
    m->next = NULL;
    m->seq = ch->next_seq++;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    if (ch->tail)
        ch->tail->next = m;
    else
        ch->head = m;
    ch->tail = m;
    if (ch->unsent == NULL)
        ch->unsent = m; /* everything before it was sent */
    ch->unacked_bytes += len;
    return 0;
}

int channel_rewrite(channel_t *ch, channel_msg_t *m, const void *data, size_t len)
{
    if (len > m->len)
        return HERD_EINVAL; /* it was allocated for its first length */
    memmove(m->data, data, len);
    ch->unacked_bytes -= m->len - len;
    if (m->seq < ch->next_send)
        ch->inflight_bytes -= m->len - len;
    m->len = len;
    return 0;
}

int channel_resend_due(const channel_t *ch, uint64_t now)
{
    return ch->head && ch->head->seq < ch->next_send && now - ch->last_send_ms >= ch->rto_ms;
}

/* Whether message m (the next to send) may go with `inflight` bytes in
 * flight: within the window, or alone. */
static int channel_window_lets(const channel_t *ch, size_t inflight, const channel_msg_t *m)
{
    return inflight == 0 || inflight + m->len <= ch->window;
}

int channel_send_ready(const channel_t *ch)
{
    return ch->unsent != NULL && channel_window_lets(ch, ch->inflight_bytes, ch->unsent);
}

void channel_unsend(channel_t *ch)
{
    ch->next_send = ch->undo_next_send;
    ch->sent_upto = ch->undo_sent_upto;
    ch->inflight_bytes = ch->undo_inflight;
    ch->unsent = ch->undo_unsent;
    ch->ack_due |= ch->undo_ack_due;
    ch->ack_due_bytes += ch->undo_ack_due_bytes;
}

int channel_next_frame(channel_t *ch, int resend, size_t max_body, uint64_t now,
                       uint8_t **body, size_t *len)
{
    return channel_next_frame_at(ch, resend, max_body, now, 0, 0, body, len);
}

int channel_next_frame_at(channel_t *ch, int resend, size_t max_body, uint64_t now,
                          size_t headroom, size_t tailroom, uint8_t **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    ch->undo_next_send = ch->next_send;
    ch->undo_sent_upto = ch->sent_upto;
    ch->undo_inflight = ch->inflight_bytes;
    ch->undo_ack_due = ch->ack_due;
    ch->undo_ack_due_bytes = ch->ack_due_bytes;
    ch->undo_unsent = ch->unsent;
    if (resend && ch->head) { /* go back to the oldest unacknowledged */
        ch->next_send = ch->head->seq;
        ch->inflight_bytes = 0;
        ch->unsent = ch->head;
    }
    channel_msg_t *first = ch->unsent;
    if (first == NULL || !channel_window_lets(ch, ch->inflight_bytes, first))
        return 0;
    wire_writer_t w;
    wire_writer_init(&w);
    /* a large message often goes alone: its frame's room at once */
    wire_writer_reserve(&w, headroom + CHANNEL_BODY_HEADER + CHANNEL_MSG_OVERHEAD + first->len +
                                tailroom);
    for (size_t i = 0; i < headroom; i++)
        wire_put_u8(&w, 0); /* the caller's, written over */
    wire_put_u64(&w, ch->expected - 1);
    wire_put_u64(&w, first->seq);
    size_t count_at = w.len, size = CHANNEL_BODY_HEADER;
    wire_put_u16(&w, 0);
    uint16_t count = 0;
    uint16_t again = 0; /* messages of this frame sent before */
    channel_msg_t *m;
    for (m = first; m && count < CHANNEL_MAX_BATCH; m = m->next) {
        if (count > 0 && (size + CHANNEL_MSG_OVERHEAD + m->len > max_body ||
                          !channel_window_lets(ch, ch->inflight_bytes, m)))
            break; /* a lone message bigger than max_body still goes: the caller checks */
        wire_put_bytes(&w, m->data, m->len);
        size += CHANNEL_MSG_OVERHEAD + m->len;
        count++;
        ch->inflight_bytes += m->len;
        ch->next_send = m->seq + 1;
        if (m->seq > ch->sent_upto)
            ch->sent_upto = m->seq;
        else
            again++;
    }
    ch->unsent = m;
    wire_writer_reserve(&w, tailroom);
    if (w.err == 0) {
        w.buf[count_at] = (uint8_t)count;
        w.buf[count_at + 1] = (uint8_t)(count >> 8);
    }
    if (first == ch->head)
        ch->last_send_ms = now;
    ch->resent += again;
    ch->ack_due = 0; /* the frame carries our ack */
    ch->ack_due_bytes = 0;
    *body = wire_writer_take(&w, len);
    if (*body == NULL) {
        channel_unsend(ch); /* nothing left: the messages wait */
        *len = 0;
        return HERD_ENOMEM;
    }
    *len -= headroom;
    return 0;
}

int channel_ack_frame(channel_t *ch, uint8_t **body, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u64(&w, ch->expected - 1);
    ch->ack_due = 0;
    ch->ack_due_bytes = 0;
    *body = wire_writer_take(&w, len);
    return *body ? 0 : HERD_ENOMEM;
}

/* Everything up to `ack` arrived: forget it. */
static void channel_take_ack(channel_t *ch, uint64_t ack, uint64_t now)
{
    int progressed = 0;
    while (ch->head && ch->head->seq <= ack && ch->head->seq <= ch->sent_upto) {
        channel_msg_t *m = ch->head;
        ch->head = m->next;
        ch->unacked_bytes -= m->len;
        if (m->seq < ch->next_send)
            ch->inflight_bytes -= m->len;
        if (ch->unsent == m)
            ch->unsent = m->next;
        free(m);
        progressed = 1;
    }
    if (ch->head == NULL)
        ch->tail = NULL;
    /* after a go back, the peer may acknowledge messages of the first pass
     * not sent again yet: the next frame starts after them */
    uint64_t oldest = ch->head ? ch->head->seq : ch->next_seq;
    if (ch->next_send < oldest)
        ch->next_send = oldest;
    if (progressed)
        ch->last_send_ms = now; /* the new oldest gets a full rto from now */
}

/* Hold a message that arrived ahead of its turn (sorted, no duplicates). */
static void channel_hold(channel_t *ch, uint64_t seq, const uint8_t *data, size_t len)
{
    channel_msg_t **at = &ch->early;
    while (*at && (*at)->seq < seq)
        at = &(*at)->next;
    if ((*at && (*at)->seq == seq) || ch->early_count >= CHANNEL_REORDER_WINDOW) {
        ch->duplicates += (*at && (*at)->seq == seq);
        ch->dropped_early += !(*at && (*at)->seq == seq);
        return; /* dropped early ones come again by resend */
    }
    channel_msg_t *m = malloc(sizeof(*m) + len);
    if (m == NULL) {
        ch->dropped_early++; /* it comes again by resend */
        return;
    }
    m->seq = seq;
    m->len = len;
    memcpy(m->data, data, len);
    m->next = *at;
    *at = m;
    ch->early_count++;
}

static void channel_accept(channel_t *ch, uint64_t seq, const uint8_t *data, size_t len,
                           channel_deliver_fn deliver, void *ud)
{
    if (seq < ch->expected) {
        ch->duplicates++;
        return;
    }
    if (seq > ch->expected) {
        channel_hold(ch, seq, data, len);
        return;
    }
    ch->expected++;
    ch->delivered++;
    deliver(ud, data, len);
    while (ch->early && ch->early->seq == ch->expected) {
        channel_msg_t *m = ch->early;
        ch->early = m->next;
        ch->early_count--;
        ch->expected++;
        ch->delivered++;
        deliver(ud, m->data, m->len);
        free(m);
    }
}

int channel_on_msg(channel_t *ch, const uint8_t *body, size_t len, uint64_t now,
                   channel_deliver_fn deliver, void *ud)
{
    wire_reader_t r;
    wire_reader_init(&r, body, len);
    uint64_t ack = wire_get_u64(&r), first = wire_get_u64(&r);
    uint16_t count = wire_get_u16(&r);
    if (r.err || first == 0)
        return HERD_EBADFRAME;
    /* validate the whole batch before delivering any of it */
    wire_reader_t scan = r;
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *d;
        wire_get_bytes(&scan, &d);
    }
    if (wire_reader_done(&scan) != 0)
        return HERD_EBADFRAME;
    channel_take_ack(ch, ack, now);
    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *d;
        size_t n = wire_get_bytes(&r, &d);
        channel_accept(ch, first + i, d, n, deliver, ud);
    }
    if (count) {
        ch->ack_due = 1;
        ch->ack_due_bytes += len;
    }
    return 0;
}

int channel_on_ack(channel_t *ch, const uint8_t *body, size_t len, uint64_t now)
{
    wire_reader_t r;
    wire_reader_init(&r, body, len);
    uint64_t ack = wire_get_u64(&r);
    if (wire_reader_done(&r) != 0)
        return HERD_EBADFRAME;
    channel_take_ack(ch, ack, now);
    return 0;
}
