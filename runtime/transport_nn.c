/*
 * transport_nn.c - the nanomsg transport (see transport.h), after what
 * shared/notes/nanomsg.md measured:
 * - the sockets' NN_RCVFD / NN_SNDFD are level-triggered fds that signal by
 *   becoming readable; we watch the receive fd always, and a send fd only
 *   while that peer's outbox holds frames (it is readable whenever sending is
 *   possible, so watching it otherwise would spin);
 * - receives are drained with NN_DONTWAIT up to a budget per wake-up, and
 *   stop early once a lone frame gave the loop work ready to run: frames
 *   that arrived together are taken together (nn_on_pull);
 * - a frame goes straight to nn_send when nothing waits before it; only a
 *   frame nanomsg pushes back is copied into the outbox;
 * - a send to a peer that is down returns EAGAIN and queues nothing, so each
 *   peer has an outbox of its own, bounded: past it frames are dropped and
 *   counted (what must arrive is retransmitted by the protocol above);
 * - NN_RCVMAXSIZE is set explicitly (never -1), and poll handles are closed
 *   before their socket;
 * - a peer's link is judged from nanomsg's statistics alone (nn_link_lost):
 *   nanomsg reconnects a closed connection at once and, after a failure,
 *   every NN_PEER_RECONNECT_MS doubling up to NN_PEER_RECONNECT_MAX_MS, so a
 *   peer process that died is refused within a few milliseconds of its
 *   connection closing (its port closed with it).
 */
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <nanomsg/tcp.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "herd_error.h"
#include "log.h"
#include "u64map.h"

/* Frames taken per wakeup: at most NN_RECV_BUDGET, and none started after
 * NN_RECV_NS (a frame can hold a registry delta of thousands of names); the
 * rest wait in nanomsg, whose descriptor stays readable, for the loop's
 * next turn, so timers and other handles are not kept waiting. */
#define NN_RECV_BUDGET 256
#define NN_RECV_NS 2000000u
#define NN_OUTBOX_FRAMES 1024
#define NN_OUTBOX_BYTES (16u << 20)
#define NN_ADDR_MAX 255
/* Reconnect retries of a peer's link: the first soon, so that a dead peer's
 * refusal comes quickly even when the immediate reconnect raced its dying
 * port; at most every NN_PEER_RECONNECT_MAX_MS (nanomsg's default interval),
 * so a dead peer costs few connection attempts and a restarted one is
 * reached as soon as before. */
#define NN_PEER_RECONNECT_MS 10
#define NN_PEER_RECONNECT_MAX_MS 100

typedef struct nn_frame {
    struct nn_frame *next;
    size_t len;
    uint8_t data[];
} nn_frame_t;

typedef struct nn_peer {
    struct nn_peer *next;
    struct nn_tp *tp;
    char address[NN_ADDR_MAX + 1];
    int sock;
    uv_poll_t poll;
    int polling;
    nn_frame_t *head, *tail;
    size_t queued, queued_bytes;
    uint64_t key;  /* its address hashed: its key in nn_tp_t.by_address */
    int indexed;   /* found through by_address (else by the list alone) */
} nn_peer_t;

typedef struct nn_tp {
    uv_loop_t *loop;
    size_t max_frame;
    int pull;
    uv_poll_t pull_poll;
    int listening;
    transport_recv_cb cb;
    void *cb_data;
    nn_peer_t *peers;
    /* The peers by address hash, so that finding one (every send, every
     * link poll of every member) does not walk the list. A peer whose key
     * another holds, or that could not be put in the map, is unindexed and
     * found by walking the list. */
    u64map_t by_address;
    size_t unindexed;
    transport_stats_t stats;
    int closing; /* handles whose close callback has not run yet */
} nn_tp_t;

static int nn_fd_of(int sock, int option, int *fd)
{
    size_t sz = sizeof(*fd);
    return nn_getsockopt(sock, NN_SOL_SOCKET, option, fd, &sz) == 0 ? 0 : HERD_EIO;
}

/* ---- receiving ------------------------------------------------------------- */

/* Whether another frame waits in nanomsg now: its receive fd (the one
 * pull_poll watches) is readable (nanomsg clears it when a receive leaves
 * nothing ready). Asked of the descriptor, without nanomsg's lock. */
static int nn_frame_ready(const nn_tp_t *tp)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&tp->pull_poll, &fd) != 0)
        return 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

static void nn_on_pull(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    nn_tp_t *tp = h->data;
    uint64_t start = uv_hrtime();
    /* whether the loop had work ready before these frames (see below) */
    int was_busy = uv_backend_timeout(tp->loop) == 0;
    for (int i = 0; i < NN_RECV_BUDGET && uv_hrtime() - start < NN_RECV_NS; i++) {
        void *buf = NULL;
        int n = nn_recv(tp->pull, &buf, NN_MSG, NN_DONTWAIT);
        if (n < 0) {
            if (nn_errno() != EAGAIN)
                herd_log(HERD_LOG_WARN, "transport", "receive: %s", nn_strerror(nn_errno()));
            return;
        }
        tp->stats.frames_in++;
        tp->stats.bytes_in += (uint64_t)n;
        tp->cb(tp->cb_data, buf, (size_t)n);
        nn_freemsg(buf);
        /* The frame gave an idle loop work that is ready now (a process to
         * run, whose answer the peer may wait for) and no other frame is
         * there yet: that work goes first, and the next nn_recv, which takes
         * nanomsg's lock while its worker re-arms the connection, no longer
         * stands between a lone request and its answer (the fd is
         * level-triggered: a frame that comes meanwhile waits only for the
         * loop's next turn, which does not block). Frames that are there
         * already are taken now, so that the work they give goes in one
         * turn and its messages leave in one frame per peer: taken a turn
         * each, a node under load sent a frame a peer for every frame it
         * took, and its peers paid for each (bench_replicas: 1.6x the
         * increments a second with replicas 1). A loop that was busy
         * already takes its whole budget, as network input must not wait
         * one turn per frame behind local work. */
        if (!was_busy && uv_backend_timeout(tp->loop) == 0 && !nn_frame_ready(tp))
            return;
    }
}

static int nn_listen(void *impl, const char *address, transport_recv_cb cb, void *data)
{
    nn_tp_t *tp = impl;
    if (tp->listening || address == NULL)
        return HERD_EINVAL;
    int sock = nn_socket(AF_SP, NN_PULL);
    if (sock < 0)
        return HERD_EIO;
    int maxsize = (int)tp->max_frame, fd;
    if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize, sizeof(maxsize)) != 0 ||
        nn_bind(sock, address) < 0 || nn_fd_of(sock, NN_RCVFD, &fd) != 0) {
        int err = nn_errno();
        herd_log(HERD_LOG_ERROR, "transport", "cannot listen at %s: %s", address,
                 nn_strerror(err));
        nn_close(sock);
        /* a malformed address is the caller's mistake; anything else (in use,
         * not ours) is the system's answer */
        return err == EINVAL || err == ENODEV || err == EPROTONOSUPPORT ? HERD_EINVAL
                                                                          : HERD_EIO;
    }
    tp->pull = sock;
    tp->cb = cb;
    tp->cb_data = data;
    uv_poll_init(tp->loop, &tp->pull_poll, fd);
    tp->pull_poll.data = tp;
    uv_poll_start(&tp->pull_poll, UV_READABLE, nn_on_pull);
    tp->listening = 1;
    return 0;
}

/* ---- sending ----------------------------------------------------------------- */

static uint64_t nn_address_key(const char *address)
{
    uint64_t key = XXH3_64bits(address, strlen(address));
    return key ? key : 1; /* 0 is an empty slot */
}

static nn_peer_t *nn_find_peer(nn_tp_t *tp, const char *address)
{
    nn_peer_t *p = u64map_get(&tp->by_address, nn_address_key(address));
    if (p && strcmp(p->address, address) == 0)
        return p;
    if (tp->unindexed == 0)
        return NULL;
    for (p = tp->peers; p; p = p->next)
        if (strcmp(p->address, address) == 0)
            return p;
    return NULL;
}

/* Put a peer in the index, or count it as found by the list. */
static void nn_index_peer(nn_tp_t *tp, nn_peer_t *p)
{
    p->indexed = u64map_get(&tp->by_address, p->key) == NULL &&
                 u64map_put(&tp->by_address, p->key, p) == 0;
    if (!p->indexed)
        tp->unindexed++;
}

/* Take a closing peer out of the index; another peer of its key, unindexed
 * until now, takes its place. */
static void nn_unindex_peer(nn_tp_t *tp, nn_peer_t *p)
{
    if (!p->indexed) {
        tp->unindexed--;
        return;
    }
    u64map_del(&tp->by_address, p->key);
    for (nn_peer_t *q = tp->peers; q && tp->unindexed; q = q->next) {
        if (q != p && !q->indexed && q->key == p->key) {
            tp->unindexed--;
            nn_index_peer(tp, q);
            return;
        }
    }
}

static nn_peer_t *nn_open_peer(nn_tp_t *tp, const char *address)
{
    if (strlen(address) > NN_ADDR_MAX)
        return NULL;
    nn_peer_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    int linger = 0, nodelay = 1, fd;
    int reconnect = NN_PEER_RECONNECT_MS, reconnect_max = NN_PEER_RECONNECT_MAX_MS;
    p->sock = nn_socket(AF_SP, NN_PUSH);
    /* frames go as they are sent: with Nagle's algorithm a frame sent while
     * an earlier one waits for its TCP acknowledgement waits too, and a
     * stream of small frames (calls, replies, puts) pays the peer's delayed
     * acknowledgement over and over */
    if (p->sock >= 0) {
        nn_setsockopt(p->sock, NN_TCP, NN_TCP_NODELAY, &nodelay, sizeof(nodelay));
        if (nn_setsockopt(p->sock, NN_SOL_SOCKET, NN_RECONNECT_IVL, &reconnect,
                          sizeof(reconnect)) != 0 ||
            nn_setsockopt(p->sock, NN_SOL_SOCKET, NN_RECONNECT_IVL_MAX, &reconnect_max,
                          sizeof(reconnect_max)) != 0)
            herd_log(HERD_LOG_WARN, "transport", "%s: reconnects keep nanomsg's interval "
                     "(100 ms): %s; a killed peer is noticed later", address,
                     nn_strerror(nn_errno()));
    }
    if (p->sock < 0 || nn_connect(p->sock, address) < 0 ||
        nn_fd_of(p->sock, NN_SNDFD, &fd) != 0) {
        herd_log(HERD_LOG_WARN, "transport", "cannot connect to %s: %s", address,
                 nn_strerror(nn_errno()));
        if (p->sock >= 0)
            nn_close(p->sock);
        free(p);
        return NULL;
    }
    nn_setsockopt(p->sock, NN_SOL_SOCKET, NN_LINGER, &linger, sizeof(linger));
    strcpy(p->address, address);
    p->key = nn_address_key(address);
    p->tp = tp;
    uv_poll_init(tp->loop, &p->poll, fd);
    p->poll.data = p;
    p->next = tp->peers;
    tp->peers = p;
    nn_index_peer(tp, p);
    tp->stats.peers++;
    return p;
}

static void nn_on_peer_writable(uv_poll_t *h, int status, int events);

static void nn_watch(nn_peer_t *p);

/* Send what the outbox holds until nanomsg pushes back. */
static void nn_flush(nn_peer_t *p)
{
    nn_tp_t *tp = p->tp;
    while (p->head) {
        nn_frame_t *f = p->head;
        if (nn_send(p->sock, f->data, f->len, NN_DONTWAIT) < 0)
            break; /* EAGAIN: the send fd tells us when to go on */
        tp->stats.frames_out++;
        tp->stats.bytes_out += f->len;
        p->head = f->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->queued_bytes -= f->len;
        free(f);
    }
    nn_watch(p);
}

/* Watch the send fd exactly while the outbox holds frames. */
static void nn_watch(nn_peer_t *p)
{
    if (p->head && !p->polling) {
        uv_poll_start(&p->poll, UV_READABLE, nn_on_peer_writable);
        p->polling = 1;
    } else if (p->head == NULL && p->polling) {
        uv_poll_stop(&p->poll);
        p->polling = 0;
    }
}

static void nn_on_peer_writable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    nn_flush(h->data);
}

static int nn_send_frame(void *impl, const char *address, const uint8_t *frame, size_t len)
{
    nn_tp_t *tp = impl;
    if (address == NULL || len > tp->max_frame)
        return HERD_EINVAL;
    nn_peer_t *p = nn_find_peer(tp, address);
    if (p == NULL && (p = nn_open_peer(tp, address)) == NULL) {
        tp->stats.dropped_out++;
        return HERD_EINVAL;
    }
    if (p->head == NULL && nn_send(p->sock, frame, len, NN_DONTWAIT) >= 0) {
        /* the usual case: nothing waits before it, and nanomsg takes it */
        tp->stats.frames_out++;
        tp->stats.bytes_out += len;
        return 0;
    }
    if (p->queued >= NN_OUTBOX_FRAMES || p->queued_bytes + len > NN_OUTBOX_BYTES) {
        tp->stats.dropped_out++;
        return HERD_EFULL;
    }
    nn_frame_t *f = malloc(sizeof(*f) + len);
    if (f == NULL) {
        tp->stats.dropped_out++;
        return HERD_ENOMEM;
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->data, frame, len);
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->queued++;
    p->queued_bytes += len;
    nn_watch(p); /* nanomsg pushed back: go on when the send fd says so */
    return 0;
}

/* ---- closing ----------------------------------------------------------------- */

static void nn_on_peer_closed(uv_handle_t *h)
{
    nn_peer_t *p = h->data;
    nn_close(p->sock);
    for (nn_frame_t *f = p->head, *next; f; f = next) {
        next = f->next;
        free(f);
    }
    p->tp->closing--;
    free(p);
}

/* `p` is already out of the list. */
static void nn_close_peer(nn_tp_t *tp, nn_peer_t *p)
{
    nn_unindex_peer(tp, p);
    if (p->polling)
        uv_poll_stop(&p->poll);
    tp->stats.peers--;
    tp->closing++;
    uv_close((uv_handle_t *)&p->poll, nn_on_peer_closed);
}

static void nn_forget(void *impl, const char *address)
{
    nn_tp_t *tp = impl;
    for (nn_peer_t **pp = &tp->peers; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->address, address) == 0) {
            nn_peer_t *p = *pp;
            *pp = p->next;
            nn_close_peer(tp, p);
            return;
        }
    }
}

static void nn_stats(void *impl, transport_stats_t *out)
{
    *out = ((nn_tp_t *)impl)->stats;
}

static void nn_on_pull_closed(uv_handle_t *h)
{
    nn_tp_t *tp = h->data;
    nn_close(tp->pull);
    tp->closing--;
}

static void nn_close_all(void *impl)
{
    nn_tp_t *tp = impl;
    while (tp->peers) {
        nn_peer_t *p = tp->peers;
        tp->peers = p->next;
        nn_close_peer(tp, p);
    }
    if (tp->listening) {
        uv_poll_stop(&tp->pull_poll);
        tp->closing++;
        uv_close((uv_handle_t *)&tp->pull_poll, nn_on_pull_closed);
    }
    while (tp->closing > 0) /* sockets close only after their poll handles */
        uv_run(tp->loop, UV_RUN_NOWAIT);
    u64map_fini(&tp->by_address);
    free(tp);
}

/* nanomsg says nothing of connections but its statistics. A link that was
 * established and now has no connection lost its peer's end (CLOSED); when
 * its endpoint is also in error (NN_STAT_CURRENT_EP_ERRORS: the last connect
 * attempt failed; a successful one clears it), a reconnect since the close
 * was refused (REFUSED). Measured on loopback with a SIGKILLed peer: the
 * close shows within a millisecond, the refusal within ~1 ms (the immediate
 * reconnect) or one retry interval later (when that reconnect reached the
 * dying process's port). A live peer that dropped the connection is
 * reconnected within a millisecond, its endpoint never in error. A
 * statistic nanomsg cannot give (-1 as unsigned) says nothing. */
static int nn_link_lost(void *impl, const char *address)
{
    nn_peer_t *p = nn_find_peer(impl, address);
    if (p == NULL || nn_get_statistic(p->sock, NN_STAT_CURRENT_CONNECTIONS) != 0)
        return TRANSPORT_LINK_OK;
    uint64_t established = nn_get_statistic(p->sock, NN_STAT_ESTABLISHED_CONNECTIONS);
    if (established == 0 || established == UINT64_MAX)
        return TRANSPORT_LINK_OK;
    uint64_t errors = nn_get_statistic(p->sock, NN_STAT_CURRENT_EP_ERRORS);
    return errors > 0 && errors != UINT64_MAX ? TRANSPORT_LINK_REFUSED : TRANSPORT_LINK_CLOSED;
}

static const transport_ops_t nn_ops = {
    .listen = nn_listen,
    .send = nn_send_frame,
    .forget = nn_forget,
    .stats = nn_stats,
    .link_lost = nn_link_lost,
    .close = nn_close_all,
};

int transport_nn_new(uv_loop_t *loop, size_t max_frame, transport_t *out)
{
    if (loop == NULL || max_frame == 0 || max_frame > INT32_MAX)
        return HERD_EINVAL;
    nn_tp_t *tp = calloc(1, sizeof(*tp));
    if (tp == NULL)
        return HERD_ENOMEM;
    tp->loop = loop;
    tp->max_frame = max_frame;
    tp->pull = -1;
    u64map_init(&tp->by_address);
    out->ops = &nn_ops;
    out->impl = tp;
    return 0;
}
