/*
 * transport.h - how a node's frames reach other nodes: an ops table, so the
 * simulator can put an in-memory network where the real one uses nanomsg.
 *
 * A transport moves whole frames, unreliably and without saying where a
 * frame came from: it may lose frames (a peer restarts, an outbox
 * overflows), never alters or splits one. Everything above it that must not
 * be lost carries its own sequence numbers and acknowledgements.
 */
#ifndef HERD_TRANSPORT_H
#define HERD_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Called on the loop thread for every frame received; `frame` is valid only
 * during the call. */
typedef void (*transport_recv_cb)(void *data, const uint8_t *frame, size_t len);

typedef struct transport_stats {
    uint64_t frames_out, frames_in;
    uint64_t bytes_out, bytes_in;
    uint64_t dropped_out; /* refused: outbox full, peer unreachable */
    uint32_t peers;       /* open outgoing links */
} transport_stats_t;

/* What a transport knows of its link to one address (transport_ops.link_lost).
 * Only the transport's own view: the verdict is membership's
 * (mship_link_report). */
typedef enum transport_link {
    TRANSPORT_LINK_OK = 0, /* connected, or never connected: nothing to say */
    TRANSPORT_LINK_CLOSED, /* was connected, has no connection now: reconnecting */
    TRANSPORT_LINK_REFUSED, /* closed, and a reconnect since then failed: the
                             * peer's host said nothing listens there any more */
} transport_link_t;

typedef struct transport_ops {
    /* Bind `address` and start delivering received frames to cb(data, ...).
     * Errors: HERD_EINVAL (bad address), HERD_EIO. Never blocks. */
    int (*listen)(void *impl, const char *address, transport_recv_cb cb, void *data);
    /* Queue a copy of `frame` for `address`, connecting on first use. Returns
     * 0, or HERD_EFULL when the peer's outbox is full (the frame is dropped and
     * counted), HERD_EINVAL for an address that cannot be used. Never blocks. */
    int (*send)(void *impl, const char *address, const uint8_t *frame, size_t len);
    /* Close the link to `address` and drop what is queued for it. */
    void (*forget)(void *impl, const char *address);
    void (*stats)(void *impl, transport_stats_t *out);
    /* Optional (NULL: no hints). How the link to `address` stands, as a
     * transport_link_t: a peer process that died closed its end (CLOSED),
     * and its port, gone with it, refuses the reconnect (REFUSED); a live
     * peer whose connection dropped is reconnected (OK again). Cheap enough
     * to be asked for every member every few milliseconds. */
    int (*link_lost)(void *impl, const char *address);
    /* Stop and free everything; `impl` is invalid afterwards. Runs the loop
     * briefly if handles must close first. */
    void (*close)(void *impl);
} transport_ops_t;

typedef struct transport {
    const transport_ops_t *ops;
    void *impl;
} transport_t;

/* The nanomsg transport: one PULL socket for what arrives, one PUSH socket per
 * peer, their fds watched by the node's loop. `max_frame` bounds what it
 * accepts (nanomsg's NN_RCVMAXSIZE). */
int transport_nn_new(uv_loop_t *loop, size_t max_frame, transport_t *out);

#endif
