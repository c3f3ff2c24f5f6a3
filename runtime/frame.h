/*
 * frame.h - the cluster's wire frame: a fixed, versioned header, a body and a
 * MAC keyed by the cluster secret over both.
 *
 * PUSH/PULL sockets do not say which connection a frame came on, so proving
 * the secret once at HELLO would authenticate nothing after it: every frame
 * carries its own MAC, and sender, incarnation and sequence number sit in the
 * authenticated header so a recorded frame cannot be replayed (replay.h).
 *
 * Layout (little-endian), 64 bytes of header, pinned by static asserts in
 * frame.c and written down in PROTOCOL.md:
 *
 *   off size field
 *     0  4   magic        0x44524548, the bytes "HERD"
 *     4  1   version      FRAME_VERSION
 *     5  1   type         frame_type_t
 *     6  2   flags        per type; none defined yet, so 0
 *     8  8   sender       node id (herd_node_id_of(name))
 *    16  8   sender_inc   sender's incarnation
 *    24  8   receiver     node id, 0 when not known yet (HELLO to a seed)
 *    32  8   receiver_inc 0 when not known yet
 *    40  8   hlc          sender's hybrid logical clock (hlc.h)
 *    48  8   seq          per-sender frame number, from 1
 *    56  4   length       body bytes
 *    60  4   reserved     0
 *    64  length  body
 *    ..  16  mac          BLAKE2b-128 keyed by the cluster key over header+body
 */
#ifndef HERD_FRAME_H
#define HERD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "herd_error.h"

#define FRAME_MAGIC 0x44524548u
#define FRAME_VERSION 4u /* 2: members announce their services; 3: a body speaks for
                            * the header's sender, the registry sync carries contexts;
                            * 4: a HELLO admits nobody, only frames to the receiver's
                            * current start do; a call carries its deadline, requests
                            * are withdrawn */
#define FRAME_HEADER_SIZE 64u
#define FRAME_MAC_SIZE 16u
#define FRAME_KEY_SIZE 32u
#define FRAME_MIN_SECRET 16u /* bytes of cluster secret at least */
/* Largest body by default: the whole frame stays under nanomsg's receive
 * limit, which the transport sets to FRAME_DEFAULT_MAX_BODY + overhead. */
#define FRAME_DEFAULT_MAX_BODY ((1u << 20) - FRAME_HEADER_SIZE - FRAME_MAC_SIZE)

typedef enum frame_type {
    FRAME_HELLO = 1,     /* asks for an answer addressed to the sender's start */
    FRAME_HEARTBEAT = 2, /* liveness plus the member list (membership.h) */
    FRAME_LEAVE = 3,     /* graceful leave */
    FRAME_MSG = 4,       /* process messages between nodes */
    FRAME_ACK = 5,       /* acknowledges reliable frames */
    FRAME_TYPE_COUNT
} frame_type_t;

/* Why a frame was refused; counted per reason for `ringctl stats`. */
typedef enum frame_reject {
    FRAME_OK = 0,
    FRAME_REJECT_SHORT,    /* shorter than header + MAC */
    FRAME_REJECT_MAGIC,
    FRAME_REJECT_VERSION,
    FRAME_REJECT_LENGTH,   /* length field disagrees with the frame's size */
    FRAME_REJECT_OVERSIZE, /* body over the limit */
    FRAME_REJECT_RESERVED, /* reserved field, or a flag the type lacks, set */
    FRAME_REJECT_MAC,      /* wrong secret, or altered */
    FRAME_REJECT_TYPE,     /* unknown type (after the MAC held) */
    FRAME_REJECT_REPLAY,   /* seen before, or from an old incarnation */
    FRAME_REJECT_BODY,     /* the body did not decode */
    FRAME_REJECT_CLUSTER,  /* another cluster's name */
    FRAME_REJECT_SERVICES, /* a member's services list breaks its rules (svclist.h) */
    FRAME_REJECT_SENDER,   /* a body speaks for another node than the header's sender */
    FRAME_REJECT_RATE,     /* a HELLO from a sender answered too recently (membership.h) */
    FRAME_REJECT_NAME,     /* from another start of this node's own name */
    FRAME_REJECT_MEMORY,   /* no memory to take it in (the sender resends it) */
    FRAME_REJECT_COUNT
} frame_reject_t;

/* "short", "magic", ... for logs and stats. */
const char *frame_reject_name(frame_reject_t why);
/* "hello", "heartbeat", ...; "unknown" outside the enum. */
const char *frame_type_name(int type);

typedef struct frame_header {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint64_t sender, sender_inc;
    uint64_t receiver, receiver_inc;
    uint64_t hlc;
    uint64_t seq;
    uint32_t length;
} frame_header_t;

typedef struct frame_key {
    uint8_t bytes[FRAME_KEY_SIZE];
} frame_key_t;

/* Derive the MAC key from the cluster secret (at least FRAME_MIN_SECRET
 * bytes: HERD_ERANGE otherwise; HERD_EINVAL for NULL; HERD_EIO if libsodium
 * cannot start). The derivation is in PROTOCOL.md. */
int frame_key_from_secret(frame_key_t *key, const void *secret, size_t len);

/* The encoded size of a frame with a body of `body_len` bytes. */
static inline size_t frame_size(size_t body_len)
{
    return FRAME_HEADER_SIZE + body_len + FRAME_MAC_SIZE;
}

/* Encode header (its version, magic and length are filled in here) + body +
 * MAC into out[cap]. The body may already sit at out + FRAME_HEADER_SIZE.
 * HERD_ERANGE when cap < frame_size(len) or len > FRAME_DEFAULT_MAX_BODY (a
 * larger frame would be dropped silently by the receiver's nanomsg);
 * HERD_EINVAL for an unknown type, a flag the type does not define, or a
 * NULL pointer (body may be NULL when len is 0); HERD_EIO if libsodium
 * cannot start. */
int frame_encode(const frame_key_t *key, const frame_header_t *h, const void *body,
                 size_t len, uint8_t *out, size_t cap);

/* Validate and decode one frame: structure, size limit, MAC, type, flags (the
 * order is in PROTOCOL.md). On success fills *h, points *body into `buf`
 * (h->length bytes) and returns 0; otherwise returns HERD_EBADFRAME with
 * *why saying what was wrong and *body NULL. `why` may be NULL; a NULL key,
 * h or body is HERD_EINVAL. Reads nothing outside buf[0..len). */
int frame_decode(const frame_key_t *key, const uint8_t *buf, size_t len,
                 uint32_t max_body, frame_header_t *h, const uint8_t **body,
                 frame_reject_t *why);

#endif
