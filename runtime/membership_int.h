/*
 * membership_int.h - what membership.c (the member table, heartbeats,
 * verdicts) and mship_join.c (HELLO answers, the check of this node's own
 * name) share: the state machine's struct and a few helpers. Internal to
 * those two files.
 */
#ifndef HERD_MEMBERSHIP_INT_H
#define HERD_MEMBERSHIP_INT_H

#include "log.h"
#include "membership.h"
#include "u64map.h"

#define GOSSIP_ALIVE 0
#define GOSSIP_LEFT 1
#define GOSSIP_DOWN 2 /* down here, not forgotten: maybe only cut off */
#define MSHIP_MAX_CANDIDATES 256
#define MSHIP_HELLO_SLOTS 64 /* senders whose last HELLO answer is timed */
#define MSHIP_CLEARED_MAX 8  /* other starts of this name found dead */

typedef struct mship_candidate {
    char name[HERD_RING_NAME_MAX + 1];
    char address[MSHIP_ADDR_MAX + 1];
    uint64_t incarnation;
    uint64_t since;
} mship_candidate_t;

/* The sender part of a HELLO or HEARTBEAT body. */
typedef struct mship_beat {
    char cluster[MSHIP_CLUSTER_MAX + 1];
    char name[HERD_RING_NAME_MAX + 1];
    char address[MSHIP_ADDR_MAX + 1];
    uint32_t weight;
    uint8_t state;
    herd_service_list_t services;
} mship_beat_t;

/* One entry of a body's gossip. */
typedef struct mship_gossip {
    char name[HERD_RING_NAME_MAX + 1];
    char address[MSHIP_ADDR_MAX + 1];
    uint64_t incarnation;
    uint8_t status; /* GOSSIP_* */
} mship_gossip_t;

/* When a sender's HELLO was last answered (id 0: a free slot). */
typedef struct mship_hello_slot {
    uint64_t id, at;
} mship_hello_slot_t;

/* Another start of this node's name, said to be alive, being asked. */
typedef struct mship_probe {
    int active;
    uint64_t incarnation, since;
    char address[MSHIP_ADDR_MAX + 1];
} mship_probe_t;

struct mship {
    mship_config_t cfg; /* strings below are our own copies */
    char cluster[MSHIP_CLUSTER_MAX + 1];
    char **seeds;
    mship_member_t **members; /* sorted by name; self included */
    size_t member_count, member_cap;
    u64map_t by_id;
    mship_member_t *self;
    mship_candidate_t candidates[MSHIP_MAX_CANDIDATES];
    size_t candidate_count;
    uint64_t next_heartbeat, next_hello;
    /* prompt heartbeats (membership.c): the current window of heartbeat_ms,
     * how many went out in it, and the counts since the start */
    uint64_t prompt_window;
    uint32_t prompt_in_window;
    mship_stats_t stats;
    /* the name check and HELLO answers (mship_join.c) */
    mship_identity_t identity;
    mship_probe_t probe;
    uint64_t holder_inc; /* REFUSED: the live start that answered */
    char holder_address[MSHIP_ADDR_MAX + 1];
    uint64_t cleared[MSHIP_CLEARED_MAX]; /* incarnations asked that did not answer */
    size_t cleared_next;
    mship_hello_slot_t hello[MSHIP_HELLO_SLOTS];
    /* bad-input and identity logs, rate-limited */
    herd_log_limit_t log_cluster, log_second, log_hello, log_waiting, log_newer;
};

/* membership.c: queue a frame of `type` (HELLO, HEARTBEAT: this node's beat;
 * LEAVE) for `address`, to node `to` at `to_inc` (0: unknown). HERD_ENOMEM. */
int mship__send(const mship_t *m, mship_effects_t *out, const char *address, uint64_t to,
                uint64_t to_inc, uint8_t type);

/* mship_join.c */
/* The identity a new state machine starts with (CONFIRMED without seeds). */
void mship__identity_init(mship_t *m);
/* A HELLO from another node: answer it (rate-limited); admits nobody. */
int mship__on_hello(mship_t *m, uint64_t now, const frame_header_t *h, const mship_beat_t *b,
                    mship_effects_t *out, frame_reject_t *why);
/* A HELLO or HEARTBEAT whose sender has this node's name. */
int mship__on_own_name(mship_t *m, uint64_t now, const frame_header_t *h,
                       const mship_beat_t *b, mship_effects_t *out, frame_reject_t *why);
/* A heartbeat's gossip says `g` of this node's name: maybe ask that start. */
void mship__own_gossip(mship_t *m, uint64_t now, const mship_gossip_t *g, mship_effects_t *out);
/* Whether a heartbeat from `name`, not a member yet, may admit it now. */
int mship__may_admit(mship_t *m, uint64_t now, const char *name);
/* A member was admitted: the name is confirmed if it was unchecked. */
void mship__admitted(mship_t *m, const char *name);
/* Time passes for a probe: ask again, or give up on an answer. */
void mship__probe_tick(mship_t *m, uint64_t now, mship_effects_t *out);
/* Whether this node is waiting for a probe's answer before it joins. */
int mship__joining_paused(const mship_t *m);

#endif
