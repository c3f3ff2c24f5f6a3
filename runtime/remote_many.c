/*
 * remote_many.c - one cast to several processes of another node
 * (herd_node_cast_many, a group's publish): the network's side, the net op
 * send_many (node.h) and the REMOTE_CAST_MANY message it sends.
 *
 * The message travels in the receiver's stream like any cast, so it keeps
 * its place among the sender's other messages to that node, is withdrawn
 * like a cast when the receiver is declared down (remote_lost.c), and is
 * refused for a receiver that is down. Its data (PROTOCOL.md, cast_many):
 *
 *     u64 incarnation, u32 count, count x u64 serial, bytes payload
 *
 * `incarnation` is the receiver's start the serials are of; the envelope's
 * `to`, `ref` and `status` are 0, its flags 0 (it is never passed on). The
 * payload goes once per message; a list longer than one message holds is
 * cut into several (REMOTE_MANY_MAX serials, and the frame's bytes, bound
 * each). The receiver reads the whole message before it delivers anything:
 * one that does not read exactly, or names another start, is refused and
 * counted as a `body` reject, and none of its targets gets anything.
 */
#include "remote_int.h"

#include <string.h>

#include "wire.h"

size_t remote_many_fit(size_t len)
{
    size_t room = FRAME_DEFAULT_MAX_BODY - REMOTE_OVERHEAD - REMOTE_MANY_HEAD;
    if (len >= room)
        return 0;
    size_t k = (room - len) / sizeof(uint64_t);
    return k < REMOTE_MANY_MAX ? k : REMOTE_MANY_MAX;
}

int remote_many_decode(const uint8_t *buf, size_t len, remote_many_t *out)
{
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    memset(out, 0, sizeof(*out));
    uint64_t inc = wire_get_u64(&r);
    uint32_t count = wire_get_u32(&r);
    /* by subtraction: count * 8 cannot wrap, count being bounded first */
    if (r.err || count == 0 || count > REMOTE_MANY_MAX ||
        r.len - r.off < (size_t)count * sizeof(uint64_t))
        return HERD_EBADFRAME;
    const uint8_t *serials = r.p + r.off;
    r.off += (size_t)count * sizeof(uint64_t);
    const uint8_t *data;
    size_t data_len = wire_get_bytes(&r, &data);
    if (wire_reader_done(&r) != 0)
        return HERD_EBADFRAME;
    *out = (remote_many_t){inc, count, serials, data, data_len};
    return 0;
}

uint64_t remote_many_serial(const remote_many_t *m, uint32_t i)
{
    const uint8_t *p = m->serials + (size_t)i * sizeof(uint64_t);
    uint64_t v = 0;
    for (int b = 7; b >= 0; b--)
        v = v << 8 | p[b];
    return v;
}

/* One message with `k` serials, in remote_encode's layout (a message whose
 * data is the list and the payload), queued in p's stream. */
static int many_queue(herd_cluster_t *c, cluster_peer_t *p, uint64_t incarnation,
                      herd_pid_t from, const uint64_t *serials, size_t k, const void *data,
                      size_t len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, REMOTE_CAST_MANY);
    wire_put_u8(&w, 0); /* flags */
    wire_put_u64(&w, 0); /* to: the serials are in the data */
    wire_put_u64(&w, from.node);
    wire_put_u64(&w, from.incarnation);
    wire_put_u64(&w, from.serial);
    wire_put_u64(&w, 0); /* ref */
    wire_put_u32(&w, 0); /* status */
    wire_put_u32(&w, (uint32_t)(REMOTE_MANY_HEAD + k * sizeof(uint64_t) + len)); /* bytes */
    wire_put_u64(&w, incarnation);
    wire_put_u32(&w, (uint32_t)k);
    for (size_t i = 0; i < k; i++)
        wire_put_u64(&w, serials[i]);
    wire_put_bytes(&w, data, len);
    int rc = w.err ? w.err : remote_enqueue(c, p, w.buf, w.len);
    wire_writer_fini(&w);
    if (rc == 0)
        c->multicasts_out++;
    return rc;
}

int remote_send_many(herd_node_t *n, uint64_t node, uint64_t incarnation, herd_pid_t from,
                     const uint64_t *serials, size_t count, const void *data, size_t len)
{
    herd_cluster_t *c = n->cluster;
    if (c == NULL)
        return HERD_ENOTCONN;
    if (count == 0)
        return 0;
    size_t per = remote_many_fit(len);
    if (per == 0) {
        cluster_oversize_out(c, REMOTE_OVERHEAD + REMOTE_MANY_HEAD + sizeof(uint64_t) + len);
        return HERD_ETOOBIG;
    }
    herd_pid_t to = {node, incarnation, 0};
    size_t first = count < per ? count : per;
    cluster_peer_t *p;
    int rc = remote_admit(n, to, REMOTE_CAST_MANY, 0,
                          REMOTE_MANY_HEAD + first * sizeof(uint64_t) + len, &p);
    size_t queued = 0;
    while (rc == 0 && queued < count) {
        size_t k = count - queued < per ? count - queued : per;
        rc = many_queue(c, p, incarnation, from, serials + queued, k, data, len);
        if (rc == 0)
            queued += k;
    }
    return queued ? (int)queued : rc;
}

void remote_on_cast_many(herd_cluster_t *c, const remote_msg_t *m)
{
    herd_node_t *n = c->node;
    remote_many_t mm;
    if (m->flags != 0 || m->to.serial != 0 || m->ref != 0 || m->status != 0 ||
        remote_many_decode(m->data, m->len, &mm) != 0) {
        cluster_refuse(c, FRAME_REJECT_BODY,
                       "a cast to many (%zu bytes of data) from %s: it does not read whole",
                       m->len, remote_sender_name(c));
        return;
    }
    if (mm.incarnation != n->incarnation) {
        cluster_refuse(c, FRAME_REJECT_BODY,
                       "a cast to %u processes of start %llu of this node from %s (this is "
                       "start %llu)",
                       (unsigned)mm.count, (unsigned long long)mm.incarnation,
                       remote_sender_name(c), (unsigned long long)n->incarnation);
        return;
    }
    c->multicasts_in++;
    for (uint32_t i = 0; i < mm.count; i++) {
        herd_pid_t to = {n->id, n->incarnation, remote_many_serial(&mm, i)};
        if (proc_deliver(n, to, HERD_MSG_CAST, m->from, 0, 0, mm.data, mm.len, 0) != 0)
            c->msgs_dropped++; /* gone or full: at most once, as remote_on_cast */
    }
}
