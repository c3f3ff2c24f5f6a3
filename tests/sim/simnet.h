/*
 * simnet.h - a deterministic in-memory cluster for simulation tests.
 *
 * Several herd nodes run in one process over a simulated network, driven by a
 * virtual clock in milliseconds. The protocol code is the real one (sans-I/O
 * state machines, real frames with MACs, real replay windows and hybrid
 * logical clocks); only time and the network are simulated. One seeded
 * splitmix64 stream is the only randomness, and events run in (time,
 * insertion order), so a seed replays the same run bit for bit.
 *
 * The event queue holds node ticks (every tick_ms, with a random phase per
 * node life), frame deliveries and scripted actions. A frame sent by a node is
 * encoded with the sender's key; the network then drops it (p_drop),
 * duplicates it (p_dup), delays each copy uniformly in [delay_min, delay_max]
 * (so frames reorder), blocks it across a partition, and loses it when the
 * destination is not running, or has restarted, by delivery time. A delivered
 * frame goes through what the transport adapter (runtime/cluster.c) does:
 * frame_decode with the receiver's key, the receiver check (no receiver named,
 * or this node at no incarnation or its current one; else a replay reject),
 * the per-sender replay window, the HLC merge, then the state machine.
 * Rejects are counted per node and reason.
 *
 * Every member event (MSHIP_MEMBER effect) is appended to its node's log and
 * folded into a trace hash; every delivery is folded into a network hash.
 * After every state machine call simnet_check.c checks invariants (the events
 * replay to the member table; ring_changed is never missed). Upper state
 * machines (registry, handoff) can ride on the same nodes through sim_hooks_t
 * and the per-node ext slots.
 *
 * Links. Each node keeps, per other node, the link its transport would hold
 * (a nanomsg PUSH socket in herd): established by the first frame that
 * reaches a running node, reported to membership before every tick
 * (mship_link_report, as cluster.c's link poll does). A kill (SIM_ACT_KILL,
 * a process killed on a live host) closes every link to the node, and each
 * is refused 0-11 ms later (nanomsg's immediate reconnect, or its first retry
 * after reaching the dying port), until the node starts again and each link
 * reconnects within 100 ms (nanomsg's longest retry interval). A crash
 * (SIM_ACT_CRASH, a host gone silent) and a partition close nothing.
 * SIM_ACT_LINK_CUT closes one node's link to a running one, refused or not,
 * for a while: a bad link that must not talk anybody into a false verdict. A recorder (simnet_record, simnet_replay)
 * plays an attacker who keeps a node's frames and sends them again later.
 */
#ifndef HERD_SIMNET_H
#define HERD_SIMNET_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "hlc.h"
#include "membership.h"
#include "replay.h"

#define SIM_MAX_NODES 32
#define SIM_EXT_SLOTS 4
#define SIM_ADDR_PREFIX "sim://"

typedef struct simnet simnet_t;

typedef struct sim_net_params {
    double p_drop, p_dup;          /* probabilities per frame, 0..1 */
    uint32_t delay_min, delay_max; /* ms, uniform; delay_max >= delay_min */
} sim_net_params_t;

typedef struct sim_hooks sim_hooks_t;

typedef struct simnet_config {
    uint64_t seed;
    const char *cluster;          /* NULL: "sim" */
    const char *secret;           /* NULL: a fixed test secret (>= 16 bytes) */
    uint32_t tick_ms;             /* 0: 20 */
    uint32_t stop_after_leave_ms; /* a leaving node stops this much later; 0: 100 */
    /* membership timings, passed to mship_config_t (0: its defaults) */
    uint32_t heartbeat_ms, suspect_ms, down_ms, forget_ms;
    sim_net_params_t net;
    /* Accept frames addressed to another incarnation of the receiver (by
     * default they are refused, as a replay across a restart would be). */
    int lenient_receiver;
    const sim_hooks_t *hooks; /* NULL: none; copied */
} simnet_config_t;

typedef struct sim_node_config {
    const char *name;
    const char *const *seeds; /* node names (sim://NAME), at most SIM_MAX_NODES */
    size_t seed_count;
    const char *secret;  /* NULL: the simnet's */
    const char *cluster; /* NULL: the simnet's */
    uint32_t weight;     /* 0: the ring default */
    /* NULL: sim://NAME. Another address lets the node take a name already
     * used (a second node of that name, or one restarted elsewhere);
     * simnet_find then finds the first node of the name. */
    const char *address;
} sim_node_config_t;

typedef enum sim_node_status {
    SIM_NODE_NEW,     /* added, never started */
    SIM_NODE_RUNNING, /* includes a node that left and has not stopped yet */
    SIM_NODE_CRASHED,
    SIM_NODE_STOPPED, /* stopped after a graceful leave */
} sim_node_status_t;

/* One member event seen by a node (an MSHIP_MEMBER effect). */
typedef struct sim_mevent {
    uint64_t time;
    uint64_t observer_inc; /* the observing node's incarnation then */
    char name[HERD_RING_NAME_MAX + 1];
    uint64_t incarnation;
    mship_state_t old_state, new_state;
    mship_gone_t gone;
    uint64_t last_rx; /* when the observer last accepted a frame from it; 0: never */
} sim_mevent_t;

typedef struct sim_node_stats {
    uint64_t sent, received; /* frames sent, frames accepted */
    uint64_t rejects[FRAME_REJECT_COUNT];
    uint64_t misaddressed; /* for another node or another incarnation of this one */
    uint64_t sent_lost;    /* frames it sent to a node not running then */
    uint64_t ring_changes; /* effects lists with ring_changed set */
    /* invariants (simnet_check.c) */
    uint64_t ring_missed;   /* the ring's members changed, ring_changed unset */
    uint64_t ring_spurious; /* ring_changed set, the ring's members did not change */
    uint64_t violations;    /* member events that disagree with the table */
} sim_node_stats_t;

/* A member as the node's own events describe it (simnet_check.c). */
typedef struct sim_tracked {
    char name[HERD_RING_NAME_MAX + 1];
    uint64_t incarnation;
    mship_state_t state;
} sim_tracked_t;

typedef struct sim_net_stats {
    uint64_t sent, delivered, dropped, duplicated, blocked, lost, unroutable;
    uint64_t link_closed; /* not sent: the sender's link to the node is closed */
    uint64_t trace_hash; /* FNV-1a over every member event, in order */
    uint64_t net_hash;   /* FNV-1a over every delivery (time, pair, size) */
} sim_net_stats_t;

typedef struct sim_peer {
    uint64_t id;
    replay_window_t window;
    uint64_t last_rx; /* virtual ms of the last accepted frame; 0: never */
} sim_peer_t;

/* One node's link to another node (by index), as its transport sees it. */
typedef struct sim_link {
    int established;     /* a frame reached the other node over it */
    int closed;          /* no connection now */
    uint64_t refused_at; /* closed: when a reconnect is refused; 0: never */
    uint64_t reopen_at;  /* closed: when it reconnects; 0: not while the peer is dead */
} sim_link_t;

typedef struct sim_node {
    char name[HERD_RING_NAME_MAX + 1];
    char address[MSHIP_ADDR_MAX + 1];
    char cluster[MSHIP_CLUSTER_MAX + 1];
    uint64_t id; /* herd_node_id_of(name) */
    uint32_t weight;
    frame_key_t key;
    char seeds[SIM_MAX_NODES][MSHIP_ADDR_MAX + 1]; /* addresses */
    size_t seed_count;
    sim_node_status_t status;
    uint64_t incarnation; /* of the current (or last) life; 0 before the first */
    uint64_t seq;         /* last frame sequence number used in this life */
    hlc_t hlc;
    sim_peer_t *peers; /* owned; replay windows, reset at every start */
    size_t peer_count, peer_cap;
    mship_t *mship;    /* owned; NULL unless running */
    uint8_t group;     /* partition group */
    int observed;      /* takes part in simnet_converged (default 1) */
    sim_mevent_t *log; /* owned; across all lives */
    size_t log_count, log_cap;
    sim_node_stats_t stats;
    sim_tracked_t *tracked; /* owned; this life's table, rebuilt from events */
    size_t tracked_count, tracked_cap;
    uint64_t ring_sig;        /* what the ring is built from, hashed */
    char violation[256];      /* the first invariant broken, "" if none */
    void *ext[SIM_EXT_SLOTS]; /* upper state machines' per-node state */
    sim_link_t links[SIM_MAX_NODES]; /* this life's links, by the other node's index */
} sim_node_t;

/* Hooks for state machines layered on the nodes; every hook is optional and
 * runs inside the simulation at the current virtual time. */
struct sim_hooks {
    void *data;
    void (*on_start)(simnet_t *s, int node, void *data); /* a life began */
    void (*on_stop)(simnet_t *s, int node, void *data);  /* crashed or stopped */
    void (*on_tick)(simnet_t *s, int node, void *data);  /* before mship_tick */
    void (*on_member)(simnet_t *s, int node, const sim_mevent_t *ev, void *data);
    void (*on_ring)(simnet_t *s, int node, void *data); /* the ring changed */
    /* A frame of a type membership does not handle (MAC, receiver and replay
     * checked). Return 0, or HERD_EBADFRAME with *why set to count a reject. */
    int (*on_frame)(simnet_t *s, int node, const frame_header_t *h, const uint8_t *body,
                    size_t len, frame_reject_t *why, void *data);
};

typedef enum sim_action_kind {
    SIM_ACT_START, /* start, or restart with a higher incarnation */
    SIM_ACT_CRASH,
    SIM_ACT_LEAVE, /* graceful: mship_leave, stop later */
    SIM_ACT_STOP,  /* internal: the end of a leave (only in the life `life`) */
    SIM_ACT_DRAIN,
    SIM_ACT_UNDRAIN,
    SIM_ACT_PARTITION, /* groups[i]: the side of node i */
    SIM_ACT_HEAL,
    SIM_ACT_NET, /* new network parameters */
    SIM_ACT_KILL, /* a killed process: as CRASH, and every link to it closes
                   * and is refused (see Links above) */
    SIM_ACT_LINK_CUT, /* node's link to `peer` closes for link_ms (0: until
                       * the peer starts again), refused if link_refused */
} sim_action_kind_t;

typedef struct sim_action {
    sim_action_kind_t kind;
    int node;
    uint64_t life;
    uint8_t groups[SIM_MAX_NODES];
    sim_net_params_t net;
    /* SIM_ACT_LINK_CUT */
    int peer;
    uint32_t link_ms;
    int link_refused;
} sim_action_t;

/* Lifecycle. Errors: HERD_EINVAL (bad parameters), HERD_ERANGE (short
 * secret), HERD_ENOMEM. simnet_free frees every node and pending event. */
int simnet_new(const simnet_config_t *cfg, simnet_t **out);
void simnet_free(simnet_t *s);

/* A node, not started yet. Returns its index (>= 0) or an error:
 * HERD_ERANGE past SIM_MAX_NODES, HERD_EEXIST for a name taken, HERD_EBADNAME. */
int simnet_add_node(simnet_t *s, const sim_node_config_t *cfg);
int simnet_node_count(const simnet_t *s);
sim_node_t *simnet_node(const simnet_t *s, int i);    /* NULL out of range */
int simnet_find(const simnet_t *s, const char *name); /* index or -1 */

/* Actions now, or at virtual time `at` (>= now; the action is copied).
 * HERD_EINVAL for a node out of range, a start of a running node, a crash,
 * leave or drain of a node that does not run. */
int simnet_apply(simnet_t *s, const sim_action_t *a);
int simnet_schedule(simnet_t *s, uint64_t at, const sim_action_t *a);

static inline int simnet_act(simnet_t *s, sim_action_kind_t kind, int node)
{
    sim_action_t a = {.kind = kind, .node = node};
    return simnet_apply(s, &a);
}

/* Start, or restart with a higher incarnation. */
static inline int simnet_start(simnet_t *s, int node)
{
    return simnet_act(s, SIM_ACT_START, node);
}

static inline int simnet_crash(simnet_t *s, int node)
{
    return simnet_act(s, SIM_ACT_CRASH, node);
}

static inline int simnet_kill(simnet_t *s, int node)
{
    return simnet_act(s, SIM_ACT_KILL, node);
}

/* Node's link to `peer` closes for link_ms (0: until the peer starts
 * again); a reconnect is refused meanwhile if `refused`. */
static inline int simnet_cut_link(simnet_t *s, int node, int peer, uint32_t link_ms,
                                  int refused)
{
    sim_action_t a = {.kind = SIM_ACT_LINK_CUT, .node = node, .peer = peer,
                      .link_ms = link_ms, .link_refused = refused};
    return simnet_apply(s, &a);
}

/* How node's link to `peer` stands now, as its membership is told. */
mship_link_t simnet_link(simnet_t *s, int node, int peer);

static inline int simnet_leave(simnet_t *s, int node)
{
    return simnet_act(s, SIM_ACT_LEAVE, node);
}

static inline int simnet_set_draining(simnet_t *s, int node, int on)
{
    return simnet_act(s, on ? SIM_ACT_DRAIN : SIM_ACT_UNDRAIN, node);
}

static inline int simnet_heal(simnet_t *s)
{
    return simnet_act(s, SIM_ACT_HEAL, 0);
}

/* groups[i]: the side of node i, for the first n nodes (the others: side 0). */
static inline int simnet_partition(simnet_t *s, const uint8_t *groups, size_t n)
{
    sim_action_t a = {.kind = SIM_ACT_PARTITION};
    if (n > SIM_MAX_NODES)
        return HERD_EINVAL;
    for (size_t i = 0; i < n; i++)
        a.groups[i] = groups[i];
    return simnet_apply(s, &a);
}

static inline int simnet_set_net(simnet_t *s, const sim_net_params_t *net)
{
    sim_action_t a = {.kind = SIM_ACT_NET, .net = *net};
    return simnet_apply(s, &a);
}

/* Send a frame from a running node, through the simulated network. */
int simnet_send(simnet_t *s, int from, const char *address, uint64_t to, uint64_t to_inc,
                uint8_t type, const uint8_t *body, size_t len);

/* A recorder on the wire (it needs no key): from now on keep a copy of
 * every frame node `from` sends, to any address, at most SIM_RECORD_MAX
 * (-1: stop; a new recording drops the old one). */
#define SIM_RECORD_MAX 8192
int simnet_record(simnet_t *s, int from);
/* How many frames of `type` (0: any) the recorder holds. */
size_t simnet_recorded(const simnet_t *s, uint8_t type);
/* Deliver every recorded frame, as recorded, to node `to` (which must be
 * running), each at a random time within `spread_ms` from now. Returns how
 * many were scheduled, or an error. */
int simnet_replay(simnet_t *s, int to, uint64_t spread_ms);

/* Run every event due at or before `t`, then set the clock to t. */
int simnet_run_until(simnet_t *s, uint64_t t);
/* Run until simnet_converged holds (checked every `step` ms) or `deadline`
 * passes: 1 and *when set if it held, 0 if not, or an error. */
int simnet_run_until_converged(simnet_t *s, uint64_t deadline, uint64_t step,
                               uint64_t *when);
uint64_t simnet_now(const simnet_t *s);

static inline int simnet_run_for(simnet_t *s, uint64_t ms)
{
    return simnet_run_until(s, simnet_now(s) + ms);
}
/* The first error a state machine returned (sticky), or 0. */
int simnet_error(const simnet_t *s);

/* Queries. A node is live while it runs and has not left. */
int simnet_live(const simnet_t *s, int node);
const mship_t *simnet_view(const simnet_t *s, int node); /* NULL unless running */
/* Node i's entry for member `name`, NULL when it is not running or does not know it. */
const mship_member_t *simnet_member(const simnet_t *s, int node, const char *name);
/* 1 when no invariant was broken so far: ring_changed never missed a change
 * of the ring, and every node's member events replay to its member table.
 * Otherwise 0 and the first violation in why[cap]. */
int simnet_invariants_hold(simnet_t *s, char *why, size_t cap);

/* Internal, for simnet.c: a life began; a state machine call returned fx. */
void simnet__check_start(simnet_t *s, int node);
void simnet__check_call(simnet_t *s, int node, const mship_effects_t *fx);

/* Observed live nodes agree: each sees exactly the observed live nodes, at
 * their current incarnations, up (or draining when they drain), among its
 * up/suspect/draining members, and all build the same ring. 1 or 0 (with a
 * reason in why[cap] when why is not NULL), or an error. */
int simnet_converged(simnet_t *s, char *why, size_t cap);
/* "node1 up 1234 | node2 suspect 99 ..." into buf (snprintf-like). */
size_t simnet_view_text(const simnet_t *s, int node, char *buf, size_t cap);
/* Node i's ring as herd_ring_dump_text (malloc'ed; NULL when not running or on error). */
char *simnet_ring_text(const simnet_t *s, int node);

/* Network figures and the two trace hashes (a seed replays them exactly). */
const sim_net_stats_t *simnet_net_stats(const simnet_t *s);
/* The next value of the simulation's random stream (for scripts). */
uint64_t simnet_random(simnet_t *s);
/* Uniform in [lo, hi]. */
uint64_t simnet_random_range(simnet_t *s, uint64_t lo, uint64_t hi);

#endif
