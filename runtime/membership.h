/*
 * membership.h - cluster membership and failure detection, free of I/O.
 *
 * The state machine takes events (a frame arrived, time is now T, leave) and
 * returns effects (send this body to that address, a member changed state).
 * The node's transport adapter and the simulator in tests/sim/ both drive it,
 * so what the simulations prove is what runs.
 *
 * How it works
 * ------------
 * Every node heartbeats every member it knows each heartbeat_ms, and each
 * heartbeat carries the sender's view of the members (name, address,
 * incarnation, weight, alive or left), and the sender's own record carries
 * the services it provides (svclist.h). A silent member (suspect or down) is
 * also sent a HELLO to no incarnation in particular, which a new start at
 * its address answers too.
 *
 * Joining is a challenge and an answer. A HELLO admits nobody and proves
 * nothing: it may be a recording (a restarted receiver has forgotten which
 * frames it saw), so its receiver only answers it, with a heartbeat addressed
 * to the sender's start (its incarnation, fresh per start and covered by the
 * MAC), at most once per heartbeat_ms / 4 per sender. A member is admitted,
 * or heard alive, only from a heartbeat addressed to the receiver's current
 * start, which nobody can have recorded before that start. So a node that
 * knows one seed learns everybody: HELLO to the seed, the seed's answer
 * (which the node takes: the seed is admitted), the node's heartbeat back
 * (the seed admits the node), and the names in the seed's gossip become
 * candidates that the node heartbeats until each answers directly.
 *
 * Gossip makes news travel faster than the heartbeat period: a name that
 * first appears in a heartbeat's gossip (alive there) is sent a heartbeat
 * of this node's at once, a prompt heartbeat, rather than at the next
 * periodic one, and its answer admits it both ways. So a joiner that the
 * seed admits reaches every member the seed lists within a round trip, and
 * a member that hears of the joiner first does the same. Prompt heartbeats
 * are bounded: once per name newly heard of, and at most MSHIP_PROMPT_MAX
 * per heartbeat_ms in all, so many nodes joining at once cost each
 * node at most that many frames a period beyond its periodic ones; a
 * candidate past the bound waits for the periodic heartbeat (both counted,
 * mship_stats). They change no verdict: only silence and a node's own
 * links do.
 *
 * Before a node admits anybody it checks its own name (mship_join.c): when
 * the gossip it is about to take says another start of its name is alive at
 * another address, it asks that start (a HELLO addressed to its
 * incarnation) for probe_ms and admits nobody meanwhile. An answer means the
 * name is taken: the node is refused (mship_identity) and joins nothing. No
 * answer, or the other start's address being this node's own (which it could
 * bind), means that start is dead, and the join goes on.
 *
 * Liveness is judged only from what a node sees itself: silence for
 * suspect_ms makes a member suspect, for down_ms down; and its own link to a
 * member (mship_link_report): a member whose connection closed and whose
 * port then refused the reconnect (a killed process: its kernel closed both)
 * is down at once, without waiting for silence. Gossip never declares
 * anybody down, so one node's bad link cannot talk the others into a false
 * verdict, and a member declared down that is heard from again is up again
 * at that node; gossip only spreads existence, restarts (a higher
 * incarnation proves the old one dead) and graceful leaves. A down member stays known,
 * so the registry can hide its names rather than delete them; after
 * forget_ms it is forgotten (gone). The ring is built from the members that
 * are up or suspect, plus this node unless it drains.
 */
#ifndef HERD_MEMBERSHIP_H
#define HERD_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "herd_ring.h"
#include "svclist.h"

#define MSHIP_ADDR_MAX 255u
#define MSHIP_CLUSTER_MAX 64u
#define MSHIP_MAX_MEMBERS HERD_RING_MAX_MEMBERS
#define MSHIP_PROMPT_MAX 16u /* prompt heartbeats per heartbeat_ms, at most */

typedef enum mship_state {
    MEMBER_UP,
    MEMBER_SUSPECT,
    MEMBER_DRAINING,
    MEMBER_DOWN,
    MEMBER_LEFT,
    MEMBER_STATE_COUNT,
    MEMBER_ABSENT = MEMBER_STATE_COUNT, /* in events: not in the table (before/after) */
} mship_state_t;

/* "up", "suspect", "draining", "down", "left", "absent". */
const char *mship_state_name(mship_state_t s);
/* Whether a member in this state owns a part of the ring. */
int mship_state_in_ring(mship_state_t s);

/* Why a member left the table (events whose new state is MEMBER_ABSENT). */
typedef enum mship_gone {
    MSHIP_GONE_NONE,
    MSHIP_GONE_RESTARTED, /* a higher incarnation appeared: the old one is dead */
    MSHIP_GONE_FORGOTTEN, /* down or left for longer than forget_ms */
} mship_gone_t;

typedef struct mship_config {
    const char *cluster; /* 1-64 bytes; frames of another cluster are refused */
    const char *name;    /* this node */
    const char *address; /* where peers reach this node, 1-255 bytes */
    uint64_t incarnation;
    uint32_t weight; /* 0: HERD_RING_DEFAULT_WEIGHT */
    const char *const *seeds; /* addresses to join through */
    size_t seed_count;
    uint32_t heartbeat_ms; /* 0: 200 */
    uint32_t suspect_ms;   /* 0: 3 heartbeats */
    uint32_t down_ms;      /* 0: 5 heartbeats (a silent node is down within ~1.3 s;
                            * a killed one sooner: mship_link_report) */
    uint32_t forget_ms;    /* 0: 60000 */
    uint32_t probe_ms;     /* asking another start of this name; 0: down_ms */
} mship_config_t;

typedef struct mship_member {
    char name[HERD_RING_NAME_MAX + 1];
    char address[MSHIP_ADDR_MAX + 1];
    uint64_t id, incarnation;
    uint32_t weight;
    mship_state_t state;
    uint64_t last_heard; /* ms, the node's clock; for self: now */
    uint64_t state_since;
    uint64_t last_seq; /* of the newest frame whose state was applied */
    /* when its refused link declared it down (or found it down); 0: not
     * since the link was last reported connected (mship_link_report) */
    uint64_t link_verdict_at;
    herd_service_list_t services; /* what it announced itself (svclist.h) */
} mship_member_t;

typedef enum mship_effect_kind {
    MSHIP_SEND,   /* send body to address as a frame of `type` */
    MSHIP_MEMBER, /* a member changed state (or weight) */
} mship_effect_kind_t;

typedef struct mship_effect {
    mship_effect_kind_t kind;
    /* MSHIP_SEND: where to; MSHIP_MEMBER: the member's address */
    char address[MSHIP_ADDR_MAX + 1];
    uint64_t to, to_inc; /* the receiver's id and incarnation, 0 when unknown */
    uint8_t type;        /* FRAME_HELLO, FRAME_HEARTBEAT or FRAME_LEAVE */
    uint8_t *body;       /* owned by the effect list */
    size_t len;
    /* MSHIP_MEMBER */
    char name[HERD_RING_NAME_MAX + 1];
    uint64_t incarnation;
    mship_state_t old_state, new_state;
    mship_gone_t gone;
} mship_effect_t;

typedef struct mship_effects {
    mship_effect_t *items;
    size_t count, cap;
    int ring_changed; /* the set of ring members or a weight changed */
    /* effects that could not be recorded for want of memory (a frame not
     * sent, a member's change its hooks never hear of): the member table
     * and the ring still changed; the caller reports and counts them */
    size_t lost;
} mship_effects_t;

void mship_effects_init(mship_effects_t *e);
/* Free bodies and forget the effects (keeps the array for reuse). */
void mship_effects_clear(mship_effects_t *e);
void mship_effects_fini(mship_effects_t *e);

typedef struct mship mship_t;

/* What membership sent beyond its periodic heartbeats. */
typedef struct mship_stats {
    uint64_t prompt_beats;    /* heartbeats sent at once to a newly heard-of name */
    uint64_t prompt_deferred; /* ones past the bound: left to the periodic heartbeat */
} mship_stats_t;

/* Whether this node may use its name in the cluster. */
typedef enum mship_identity {
    MSHIP_ID_UNCHECKED, /* nobody has answered yet (a node with seeds) */
    MSHIP_ID_PROBING,   /* another start of the name is said alive: asking it */
    MSHIP_ID_CONFIRMED, /* admitted a member with no live start of the name in
                         * its gossip, or started without seeds */
    MSHIP_ID_REFUSED,   /* a live start of the name answered: joins nothing */
    MSHIP_ID_COUNT,
} mship_identity_t;

/* "unchecked", "probing", "confirmed", "refused". */
const char *mship_identity_name(mship_identity_t id);

/* Errors: HERD_EINVAL (missing cluster/address, bad lengths), HERD_EBADNAME,
 * HERD_ENAMETOOLONG, HERD_ERANGE (weight), HERD_ENOMEM. */
int mship_new(const mship_config_t *cfg, uint64_t now, mship_t **out);
void mship_free(mship_t *m);

/* Replace the seeds (copied; all or nothing): the node says HELLO to each
 * new one at the next tick, and no more to one that is gone from the list.
 * Members already joined stay: a seed list is only a way in. The name check
 * (mship_join.c) is not started again: a node that began without seeds is
 * the first of its cluster, and others join it. Errors: HERD_EINVAL (NULL
 * list with a count, a NULL, empty or oversize address), HERD_ENOMEM. */
int mship_set_seeds(mship_t *m, const char *const *seeds, size_t count);
size_t mship_seed_count(const mship_t *m);

/* Time passes: heartbeats, HELLOs to seeds and silent members, probes of
 * another start of this name, suspect/down/forget verdicts. */
int mship_tick(mship_t *m, uint64_t now, mship_effects_t *out);

/* A frame of type HELLO, HEARTBEAT or LEAVE arrived (its MAC and replay
 * window already checked; a HEARTBEAT or LEAVE addressed to this start, a
 * HELLO to it or to nobody in particular). Returns 0, or HERD_EBADFRAME
 * with *why set (FRAME_REJECT_BODY, FRAME_REJECT_CLUSTER,
 * FRAME_REJECT_SERVICES, FRAME_REJECT_SENDER, FRAME_REJECT_RATE: a HELLO
 * not answered, its sender was answered too recently; FRAME_REJECT_NAME: from
 * another start of this node's name) for a frame to count; effects may
 * still have been added (the answer to another start of the name). */
int mship_receive(mship_t *m, uint64_t now, const frame_header_t *h, const uint8_t *body,
                  size_t len, mship_effects_t *out, frame_reject_t *why);

/* How this node's own link to a member stands, as its transport sees it
 * (transport.h's transport_link_t has the same values). */
typedef enum mship_link {
    MSHIP_LINK_OK,      /* connected, or never connected */
    MSHIP_LINK_CLOSED,  /* was connected, has no connection now */
    MSHIP_LINK_REFUSED, /* closed, and a reconnect since was refused */
} mship_link_t;

/* The transport's report on the link to member `name`, asked every few
 * milliseconds (cluster.c):
 * - REFUSED, the first time since the link was last OK: a member up,
 *   suspect or draining is declared down now. Its process died: the kernel
 *   closed its connection and its port with it. One verdict per closing of
 *   the link: a member heard from again afterwards is up again (as after
 *   any verdict), and the same closed link then judges it as CLOSED does.
 * - CLOSED: a member also silent for 2 heartbeats is declared down (the
 *   reconnect may still be under way).
 * - OK: nothing; the link may give a verdict again when it next closes.
 * Silent failures (a hung node, a netsplit, a host gone) close nothing and
 * still take suspect_ms and down_ms. The verdict is this node's alone: it
 * is not gossiped, and other nodes judge the member by their own links. */
void mship_link_report(mship_t *m, const char *name, mship_link_t link, uint64_t now,
                       mship_effects_t *out);

/* This node drains (leaves the ring, keeps running) or stops draining. */
int mship_set_draining(mship_t *m, int on, uint64_t now, mship_effects_t *out);
/* What this node announces it provides (checked by the caller:
 * svclist_set). A change is a member event for this node (state unchanged)
 * and goes out with a heartbeat at the next tick. */
void mship_set_services(mship_t *m, const herd_service_list_t *l, uint64_t now,
                        mship_effects_t *out);
/* Graceful leave: LEAVE to every member; no heartbeats after it. */
int mship_leave(mship_t *m, uint64_t now, mship_effects_t *out);

/* Members in name order, this node included. */
size_t mship_member_count(const mship_t *m);
/* Names heard of in gossip (up or down there) but not heard from yet. */
size_t mship_candidate_count(const mship_t *m);
/* How long a member stays down before it is forgotten (its config's, the
 * default filled in). */
uint32_t mship_forget_ms(const mship_t *m);
const mship_member_t *mship_member_at(const mship_t *m, size_t i);
const mship_member_t *mship_find(const mship_t *m, const char *name);
const mship_member_t *mship_find_id(const mship_t *m, uint64_t id);
const mship_member_t *mship_self(const mship_t *m);

/* The counts since mship_new. */
void mship_stats(const mship_t *m, mship_stats_t *out);

/* Where this node stands with its name; *holder_inc and holder_address
 * (cap bytes; either may be NULL) get the other start's incarnation and
 * address when REFUSED (the live one) or PROBING (the one asked). */
mship_identity_t mship_identity(const mship_t *m, uint64_t *holder_inc, char *holder_address,
                                size_t cap);

/* A new ring of the members that own a share (up, suspect; self unless it
 * drains or left). */
int mship_build_ring(const mship_t *m, herd_ring_t **out);

#endif
