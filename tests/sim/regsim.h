/*
 * regsim.h - full-stack registry simulations: N complete herd nodes (node +
 * cluster + registry, the real code) in one process, driven deterministically.
 *
 * - One virtual clock: every node's herd_clock_t returns the sim's time.
 * - One seeded splitmix64 stream is the only randomness the harness uses: the
 *   nodes' seeds and incarnations come from it, the cluster secret is fixed.
 * - An in-memory transport (transport.h): listen registers "sim://NAME" and
 *   its receive callback; send copies the frame into the sim's event queue
 *   with a random delay, maybe drops or duplicates it, blocks it across a
 *   partition (checked at send and at delivery), and loses it when the
 *   destination is down at delivery time. Deliveries run in (time, insertion)
 *   order and are folded into a trace hash.
 * - A step advances the clock by tick_ms, delivers what is due, then for each
 *   live node calls herd_node_poll, herd_cluster_poll, herd_registry_poll,
 *   and the on_poll hook if the config gives one (regsim_hooks_t: layers
 *   above the registry, such as the distributed supervisor, start in
 *   on_start and poll there).
 * - One-way blocks (regsim_block) drop what one node sends another, at send
 *   and at delivery, to steer a protocol's messages; frames already queued
 *   when a block is lifted get through.
 *   Each node has its own uv loop that is never run (herd_node_free runs it
 *   only to close handles).
 * - A crash marks the node down (its frames are dropped from then on) and
 *   frees it without leaving; a restart makes a new node with the same name
 *   and a higher incarnation.
 *
 * The harness also keeps a model: the processes it spawned, whether they are
 * alive (an exit hook per node), how they exited, and the names (and
 * metadata) each holds by the successful register calls it made.
 *
 * The seed driver (regsim_main) reads HERD_SIM_SEEDS, HERD_SIM_FIRST_SEED,
 * HERD_SIM_SEED, HERD_SIM_TEST, HERD_SIM_LOG and HERD_SIM_LIST (seeds.h).
 * Its summary line adds uncertain=K: the checks its seeds could not make
 * exactly (rs_run_t.uncertain; the case says which).
 */
#ifndef HERD_REGSIM_H
#define HERD_REGSIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "herd_registry.h"
#include "herd_runtime.h"
#include "registry_layers.h"
#include "runtime_layers.h"
#include "seeds.h"

#define RS_MAX_NODES 8
#define RS_MAX_PROCS 512
#define RS_NAME_LEN 24

typedef struct regsim regsim_t;

/* Optional hooks for layers above the registry (e.g. the distributed
 * supervisor): every hook is optional; `data` is passed back. */
typedef struct regsim_hooks {
    void *data;
    /* Node i's life began: its cluster and registry run. Nonzero fails
     * regsim_start (the node is then freed). */
    int (*on_start)(regsim_t *rs, int i, herd_node_t *node, void *data);
    /* Every step, for every live node, after herd_registry_poll (e.g.
     * herd_dsup_poll). Nonzero ends the step with that error. */
    int (*on_poll)(regsim_t *rs, int i, herd_node_t *node, void *data);
} regsim_hooks_t;

typedef struct regsim_config {
    uint64_t seed;
    int nodes;                     /* 1..RS_MAX_NODES: "node1" ... */
    uint32_t tick_ms;              /* 0: 5 */
    uint32_t heartbeat_ms;         /* 0: 50 */
    uint32_t suspect_ms, down_ms;  /* 0: 3 and 6 heartbeats */
    uint32_t forget_ms;            /* 0: 3000 */
    uint32_t delay_min, delay_max; /* ms; 0: 1..15 */
    uint32_t drop_pm, dup_pm;      /* per mille */
    const regsim_hooks_t *hooks;   /* NULL: none; copied */
} regsim_config_t;

/* One process spawned by the harness, and what the model says of it. */
typedef struct rs_proc {
    herd_pid_t pid;
    int node;   /* index */
    int alive;
    int reason; /* exit reason once dead */
    uint64_t born;
    int nnames;
    struct {
        char name[RS_NAME_LEN];
        herd_meta_t meta;
        uint64_t at; /* virtual time of the first successful register */
    } names[16];
} rs_proc_t;

/* One visible registration as herd_registry_list gives it. */
typedef struct rs_entry {
    char name[RS_NAME_LEN];
    herd_pid_t pid;
    herd_meta_t meta;
} rs_entry_t;

int regsim_new(const regsim_config_t *cfg, regsim_t **out);
void regsim_free(regsim_t *rs);

uint64_t regsim_now(const regsim_t *rs);
uint64_t regsim_random(regsim_t *rs);
/* Uniform in [lo, hi]. */
uint64_t regsim_range(regsim_t *rs, uint64_t lo, uint64_t hi);
int regsim_node_count(const regsim_t *rs);
const char *regsim_name(const regsim_t *rs, int i);
/* NULL when node i is down. */
herd_node_t *regsim_node(regsim_t *rs, int i);
int regsim_is_up(const regsim_t *rs, int i);

/* Start node i (new node, cluster with every other node as a seed, registry).
 * A node that ran before gets a higher incarnation. */
int regsim_start(regsim_t *rs, int i);
int regsim_crash(regsim_t *rs, int i);
/* Graceful leave: herd_cluster_leave on node i (it stays up and keeps
 * polling; free it with regsim_crash once the leave has gone out). */
int regsim_leave(regsim_t *rs, int i);

/* Partition: nodes in different groups cannot talk. regsim_heal: one group. */
void regsim_set_group(regsim_t *rs, int i, int group);
void regsim_heal(regsim_t *rs);
void regsim_set_loss(regsim_t *rs, uint32_t drop_pm, uint32_t dup_pm);
/* One-way block: while on, frames from node `from` to node `to` are dropped
 * (at send and at delivery), as a partition does in both directions.
 * regsim_heal does not lift blocks; regsim_unblock_all does. */
void regsim_block(regsim_t *rs, int from, int to, int on);
void regsim_unblock_all(regsim_t *rs);
/* Pause node i's loop (a stopped process: SIGSTOP) or let it run again:
 * while paused it polls nothing and frames sent to it wait for it. */
void regsim_pause(regsim_t *rs, int i, int on);

/* A hostile member: while set, every frame node `from` sends (after loss,
 * before delay and duplication) is passed to `hook`, which returns either
 * NULL (the frame goes as it is) or a replacement, malloc'ed and taken over
 * by the sim, of *out_len bytes. NULL hook: none. */
typedef uint8_t *(*regsim_send_hook)(void *data, int from, int to, const uint8_t *frame,
                                     size_t len, size_t *out_len);
void regsim_set_send_hook(regsim_t *rs, int from, regsim_send_hook hook, void *data);
/* The cluster secret of every sim node (a hook signs what it rewrites). */
const char *regsim_secret(void);

int regsim_step(regsim_t *rs);
int regsim_run_for(regsim_t *rs, uint64_t ms);
int regsim_run_until(regsim_t *rs, uint64_t t);

/* Every live node sees every live node UP with its current incarnation, and
 * no other member that is not down/left... (strict: exactly the live set UP). */
int regsim_members_converged(regsim_t *rs, char *why, size_t cap);
/* Run until members converge; 0 on success, HERD_ETIMEDOUT past deadline. */
int regsim_run_until_members(regsim_t *rs, uint64_t deadline);

/* ---- processes and the model ---------------------------------------------- */

/* Spawn an idle process on node i; returns its index in the model or < 0. */
int regsim_spawn(regsim_t *rs, int i);
int regsim_proc_count(const regsim_t *rs);
rs_proc_t *regsim_proc(regsim_t *rs, int k);
/* Register `name` for proc k on its node; on success the model records it,
 * unless another node's unregister of that registration is still on its way
 * (the register then only updates the registration the unregister removes:
 * removes are per registration, metadata updates included). Returns
 * herd_register's result. */
int regsim_register(regsim_t *rs, int k, const char *name, const herd_meta_t *meta);
/* Unregister `name` (held by proc k in the model) on node `via`; the model
 * keeps the name when `via` sees an older registration of it than proc k's
 * node holds (the unregister removes that one only). */
int regsim_unregister(regsim_t *rs, int k, const char *name, int via);
/* herd_stop the process with `reason` (its exit is carried out at the next poll). */
int regsim_stop(regsim_t *rs, int k, int reason);
/* Exits observed with this reason (by the exit hooks). */
unsigned regsim_exits(const regsim_t *rs, int reason);

/* Node i's visible registrations, sorted by name; malloc'ed into *out. */
int regsim_list(regsim_t *rs, int i, rs_entry_t **out, size_t *count);
/* Every live node has the same list, and it equals the model: exactly the
 * names live processes hold, with their pids and metadata. */
int regsim_replicas_agree(regsim_t *rs, int check_model, char *why, size_t cap);
/* The same over the live nodes in `mask` (bit i: node i) only, on the
 * entries `keep` keeps (NULL: all), in the replicas and in the model. */
typedef int (*regsim_keep_fn)(void *data, const rs_entry_t *e);
int regsim_replicas_agree_on(regsim_t *rs, uint32_t mask, regsim_keep_fn keep, void *data,
                             int check_model, char *why, size_t cap);
/* Run (checking every 50 ms) until regsim_replicas_agree or the deadline. */
int regsim_run_until_agree(regsim_t *rs, int check_model, uint64_t deadline, char *why,
                           size_t cap);
/* A hash of the final state: every live node's sorted list. */
uint64_t regsim_state_hash(regsim_t *rs);
/* The hash of every delivered frame (time, from, to, bytes), and of the
 * frames' shape only (time, from, to, length). */
uint64_t regsim_trace_hash(const regsim_t *rs);
uint64_t regsim_shape_hash(const regsim_t *rs);
uint64_t regsim_delivered(const regsim_t *rs);

/* ---- the seed driver (seeds.h) ----------------------------------------------- */

typedef struct rs_run rs_run_t;
/* The registry cases' cluster: `nodes` nodes on the seed's stream with ticks
 * of 5 ms, heartbeats of 50, suspect after 150, down after 300 and the given
 * forget time, 1-15 ms delays and the given loss and duplication (per
 * mille), started 0-30 ms apart; into r->rs once every member sees every
 * other. 1, or 0 with r->why set. */
int regsim_make_cluster(rs_run_t *r, int nodes, uint32_t forget, uint32_t drop, uint32_t dup);

struct rs_run {
    uint64_t seed;
    regsim_t *rs;       /* made by the scenario, freed by the driver */
    unsigned uncertain; /* checks this seed could only bound, or not make */
    char why[768];
};

#define RS_CHECK(r, cond, ...) SEEDS_CHECK(r, cond, __VA_ARGS__)
#define RS_CHECK_OK(r, expr) SEEDS_CHECK_OK(r, expr)

typedef int (*rs_scenario_fn)(rs_run_t *r);

typedef struct rs_case {
    const char *name;
    rs_scenario_fn fn;
    unsigned default_seeds; /* when HERD_SIM_SEEDS is unset */
} rs_case_t;

int regsim_main(const char *prefix, const rs_case_t *cases, size_t count);

#endif
