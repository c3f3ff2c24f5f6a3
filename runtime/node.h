/*
 * node.h - the node's internals, shared by the runtime's process core
 * (node.c, proc.c, timer.c, supervisor.c, freeze.c, gate.c, post.c,
 * call_async.c, cast_many.c, multi_call.c). Users include herd_runtime.h only.
 *
 * The runtime has two layers. The process core is a whole node on its
 * own: processes, mailboxes, calls, monitors, timers, supervision, moves
 * (net_local.c: what it does with another node's pid without a cluster).
 * The network (cluster.c, remote.c, remote_lost.c, membership*.c,
 * channel.c, transport_nn.c, ...) sits on top of it and uses node.h; the
 * core reaches other nodes only through the node's net ops below, never a
 * network header or function by name (a ctest, check_layers, holds it to
 * that).
 */
#ifndef HERD_NODE_H
#define HERD_NODE_H

#include "herd_ring.h"
#include "herd_runtime.h"
#include "hlc.h"
#include "runtime_layers.h"
#include "u64map.h"

/* A queued message: herd_msg_t's fields plus the mailbox link, one allocation
 * with the payload inline. */
typedef struct mmsg {
    struct mmsg *next;
    herd_pid_t from;
    uint64_t ref;
    int32_t status;
    uint8_t kind; /* herd_msg_kind_t */
    uint8_t copies; /* a reply's herd_msg_t.copies */
    uint32_t len;
    /* a call's: the caller's HLC timestamp at which it stops waiting (0:
     * none); it travels with the call when a move forwards it */
    uint64_t deadline;
    uint8_t data[];
} mmsg_t;

/* One side of a monitor or a call's watch: `ref` and the other process. */
typedef struct proc_watch {
    uint64_t ref;
    herd_pid_t pid;
    uint8_t is_call; /* a caller waiting for a reply, not a monitor */
} proc_watch_t;

typedef struct watch_list {
    proc_watch_t *items;
    uint32_t count, cap;
} watch_list_t;

/* What most processes never need, allocated on first use. */
typedef struct proc_gate proc_gate_t; /* gate.c */

typedef struct proc_ext {
    herd_pid_t *links;
    uint32_t link_count, link_cap;
    watch_list_t watchers; /* who watches me: monitors of me, callers of me */
    watch_list_t watching; /* my monitors of others */
    uint64_t *timers;      /* timers aimed at me: sends, my calls' timeouts */
    uint32_t timer_count, timer_cap;
    /* While frozen: the last forwarded message in the mailbox. Forwarded
     * messages queue ahead of those sent directly, so a moved process takes
     * its old copy's messages first. */
    struct mmsg *fwd_tail;
    proc_gate_t *gate; /* its replies wait for replication (gate.c), or NULL */
} proc_ext_t;

enum {
    PROC_QUEUED = 1 << 0,  /* in the run queue */
    PROC_EXITING = 1 << 1, /* exit decided, not yet carried out */
    PROC_TRAP = 1 << 2,    /* linked exits arrive as messages */
    PROC_RUNNING = 1 << 3, /* a handler of it is on the stack */
    /* 1 << 4: PROC_DEAD, proc.c's own */
    PROC_FROZEN = 1 << 5,  /* takes nothing from its mailbox (handoff, freeze.c) */
    /* herd_spawn_prepare'd, its init not run: never scheduled until started */
    PROC_PREPARED = 1 << 6,
};

struct herd_proc {
    uint64_t serial;
    herd_node_t *node;
    const herd_behaviour_t *beh;
    void *state;
    mmsg_t *head, *tail; /* mailbox, FIFO */
    struct herd_proc *run_next;
    proc_ext_t *ext;
    uint32_t mbox_len, mbox_limit;
    int32_t exit_reason;
    uint8_t flags;
    uint8_t frozen_by; /* herd_freeze_holder_t bits; PROC_FROZEN while nonzero */
};

/* A call made on this node that waits for its reply. */
typedef struct pending_call {
    uint64_t ref;
    uint64_t caller;    /* serial on this node; 0: code outside processes */
    herd_pid_t callee;
    uint64_t timer;     /* its timeout */
    struct call_waiter *waiter; /* for herd_node_call */
} pending_call_t;

typedef struct call_waiter {
    int done;
    int runtime_error; /* HERD_ETIMEDOUT/HERD_ENOPROC made by the runtime, else 0 */
    herd_reply_t reply;
    /* herd_node_call_async's (call_async.c): malloc'ed, told through the
     * node's done list once answered; NULL for herd_node_call's, on its stack */
    herd_call_cb cb;
    void *cbdata;
    struct call_waiter *next; /* in the done list */
} call_waiter_t;

/* A run of a node's loop on this thread (node.c): herd_node_run_for, a
 * blocking call, or herd calling a program's callback (a post, an
 * asynchronous call's answer). Blocking calls refuse while one of the
 * node's loop is on the stack (herd_node_in_loop). */
typedef struct loop_frame {
    const uv_loop_t *loop;
    struct loop_frame *up;
} loop_frame_t;

typedef struct timer_heap {
    struct htimer **items;
    size_t count, cap;
} timer_heap_t;

/* ---- the network, as the core sees it ----------------------------------------
 *
 * What the core asks of other nodes, as nng's transports do: a small table
 * of function pointers, which the cluster installs when it starts
 * (herd_cluster_start) and takes back when it is freed. Until then
 * node_net_local's is in place, and other nodes are unreachable: sends and
 * monitors fail with HERD_ENOTCONN, replies to remote callers with
 * HERD_ENOPROC, the rest does nothing. One indirect call on the remote
 * send path, nothing looked up or allocated by the table itself.
 *
 * Every hook runs on the node's loop thread, from inside the core (often
 * inside a process's handler), and never blocks or runs the loop, except
 * `close`. Payloads (`data`, `len`) are borrowed for the call: a hook copies
 * what it keeps. The core owns its processes, pending calls and watch
 * lists; the network owns its own records of calls from other nodes
 * (inbound calls) and of monitors of remote pids, and frees them.
 */

/* A message's `flags` (send, send_call): REPLY_BY_RUNTIME (below), this,
 * and a reply's REPLY_COPIES bits; they travel on the wire (PROTOCOL.md). */
#define NET_FORWARDED 2u /* forwarded from a moved process's old copy */

typedef struct node_net_ops {
    /* Queue a message of `kind` from `from` for `to`, a pid of another
     * node; it leaves batched at the end of the loop iteration. Errors:
     * HERD_ENOTCONN (its node is down, left or unknown, or no cluster;
     * nothing was queued), HERD_ENOPROC (not that node's current start),
     * HERD_ETOOBIG, HERD_EFULL (too much unacknowledged for that node),
     * HERD_ENOMEM. */
    int (*send)(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                uint64_t ref, int status, const void *data, size_t len, unsigned flags);
    /* The same for a call's request: `deadline` is the caller's HLC
     * timestamp at which it stops waiting (0: none). The caller's pending
     * call stays the core's. */
    int (*send_call)(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                     uint64_t deadline, const void *data, size_t len, unsigned flags);
    /* A cast of `data` from `from` (a pid of this node) to each of the
     * `count` processes `serials` of start `incarnation` of node `node`
     * (another node): the data once per message with the list, in as few
     * messages as their bound allows (PROTOCOL.md, cast_many). Returns how
     * many of the serials were queued, the first ones in order (a later
     * message may find the stream full or memory short), or an error when
     * none was: as send's; HERD_ETOOBIG when `len` leaves no room for one
     * serial in a message. */
    int (*send_many)(herd_node_t *n, uint64_t node, uint64_t incarnation, herd_pid_t from,
                     const uint64_t *serials, size_t count, const void *data, size_t len);
    /* Answer `from`, a call that came from another node, saying `copies`
     * (0: not said) hold the state the reply reflects; the network drops
     * its record of the call and the callee's watch of it. HERD_ENOPROC:
     * that call is not (or no longer) waiting; HERD_ENOTCONN: its node is
     * unreachable. */
    int (*reply)(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len,
                 unsigned copies);
    /* The callee of `from`, a call from another node, exited (it has left
     * the process table) without answering: the caller gets `status`, as
     * from the runtime (HERD_ENOPROC; HERD_EUNCERTAIN for a call applied
     * whose reply its gate held). Errors as reply's; the core ignores them. */
    int (*callee_gone)(herd_node_t *n, herd_from_t from, int status);
    /* `self` monitors `target`, a pid of another node, under `ref` (already
     * in self's watching list, which stays the core's); the network keeps
     * its own record until the DOWN or demonitor. Nonzero: the monitor
     * fires at once, HERD_ENOTCONN (unreachable, no cluster) or HERD_ENOPROC
     * (a dead start), or HERD_ENOMEM. */
    int (*monitor)(herd_proc_t *self, herd_pid_t target, uint64_t ref);
    /* The monitor `ref` of local `watcher` on remote `target` is gone
     * (demonitored, or the watcher exited): forget it, tell target's node. */
    void (*demonitor)(herd_node_t *n, herd_pid_t watcher, herd_pid_t target, uint64_t ref);
    /* A call from another node queued for a local process was forwarded
     * (freeze.c) to `to`, another process of this node: it answers now. */
    void (*move_inbound)(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t to);
    /* ... or to another node's: forget it without answering (the process
     * it went to answers). */
    void (*release_inbound)(herd_node_t *n, herd_pid_t caller, uint64_t ref);
    /* herd_node_free, after the upper layers' extensions and before the
     * processes go: send what is queued, free the cluster and detach. The
     * one hook that runs the loop (until the cluster's handles close). */
    void (*close)(herd_node_t *n);
} node_net_ops_t;

/* events.c */
void node_events_free(herd_node_t *n);

/* net_local.c */
/* A node without a cluster: no other node is reachable. */
extern const node_net_ops_t node_net_local;
/* The cluster attaches its table to `n` (herd_cluster_start); detach puts
 * node_net_local's back (the cluster freed). */
void node_net_attach(herd_node_t *n, const node_net_ops_t *ops);
void node_net_detach(herd_node_t *n);

struct herd_node {
    char name[HERD_RING_NAME_MAX + 1];
    uint64_t id, incarnation;
    uv_loop_t *loop;
    int own_loop;
    herd_clock_t clock; /* now_ms NULL: the loop's clock */
    uint64_t rng;
    hlc_t hlc; /* this node's events and what its cluster told it */
    uint32_t mailbox_limit, max_message;

    u64map_t procs;   /* serial -> herd_proc */
    uint64_t next_serial;
    uint64_t next_ref; /* monitors, calls, timers */
    herd_proc_t *runq_head, *runq_tail;
    struct herd_cluster *cluster; /* the network's (cluster.c): NULL without */
    struct {
        herd_exit_hook cb;
        void *data;
    } exit_hooks[HERD_MAX_HOOKS];
    int exit_hook_count;
    struct {
        void *ptr;
        void (*free_fn)(void *);
    } ext[HERD_EXT_COUNT];
    herd_proc_t *current; /* whose handler runs now; NULL: code outside */
    int depth; /* handlers on the stack: herd_node_call refuses inside one */
    int stopping;
    herd_node_stats_t stats;
    uint64_t forward_log_next; /* node clock, ms: failed forwards log once a second */
    uint64_t forward_unlogged; /* failures since the last line */

    u64map_t calls; /* ref -> pending_call */
    u64map_t redirects; /* serial of a moved process -> redirect_t (freeze.c) */
    uint64_t redirect_puts;
    u64map_t timers; /* id -> htimer */
    timer_heap_t heap;
    uint64_t armed_deadline; /* of uv_timer; UINT64_MAX when unarmed */

    uv_idle_t idle;   /* active while the run queue is not empty */
    uv_timer_t tick;  /* wakes the loop for the earliest node timer */
    uv_timer_t limit; /* ends herd_node_run_for */
    int closed_handles;

    struct node_events *events; /* the event bus (events.c); NULL until a subscriber */
    struct node_posts *posts; /* herd_node_post's queue (post.c); NULL once freeing */
    call_waiter_t *done_head, *done_tail; /* async calls answered, callbacks due */
    /* how the core reaches other nodes: never NULL (node_net_local until
     * herd_cluster_start); the core calls it and never looks inside the
     * cluster. Last, after the fields the local paths use. */
    const node_net_ops_t *net;
};

/* node.c */
uint64_t node_new_ref(herd_node_t *n);
herd_pid_t node_outside_pid(const herd_node_t *n);
int node_is_local(const herd_node_t *n, herd_pid_t pid);
/* Queue p to run (not a PROC_PREPARED one: herd_spawn_start queues it). */
void node_schedule(herd_node_t *n, herd_proc_t *p);
/* Have the idle handle run soon: the run queue, the answered async calls. */
void node_kick(herd_node_t *n);
void node_timers_changed(herd_node_t *n);
int node_wait(herd_node_t *n, call_waiter_t *w);
/* Note that `n`'s loop runs on this thread until node_loop_leave (frames
 * nest, innermost last). */
void node_loop_enter(herd_node_t *n, loop_frame_t *f);
void node_loop_leave(loop_frame_t *f);

/* post.c */
/* Make the node's post queue (herd_node_new): HERD_ENOMEM, HERD_EIO. */
int node_posts_init(herd_node_t *n);
/* Refuse further posts (HERD_ESHUTDOWN), call the queued ones with
 * HERD_ESHUTDOWN, close the queue's handle (first thing in herd_node_free). */
void node_posts_free(herd_node_t *n);
/* Whether the queue's handle keeps the loop alive (herd_node_run). */
void node_posts_ref(herd_node_t *n, int on);
/* Posts wait: keep the loop alive until they ran (herd_node_run_for, which
 * else could end before their wake-up is seen). */
void node_posts_hold(herd_node_t *n);

/* call_async.c */
/* An async call's answer is in `w`: its callback runs from the loop soon,
 * never inside the code that answered. */
void node_call_done(herd_node_t *n, call_waiter_t *w);
/* Run the callbacks of the answered async calls (from the idle handle and
 * herd_node_poll); returns how many ran. */
int node_run_done(herd_node_t *n);
/* Node freed: every async call not told yet is told HERD_ESHUTDOWN. */
void node_calls_cancel(herd_node_t *n);

/* freeze.c */
/* Where messages for the moved local process `serial` go now; NONE if none. */
herd_pid_t node_redirect_of(herd_node_t *n, uint64_t serial);
void node_redirects_free(herd_node_t *n);

/* proc.c */
herd_proc_t *proc_lookup(const herd_node_t *n, herd_pid_t pid); /* NULL unless alive */
/* Queue a message for `to`. `force`: ignore the mailbox limit (replies, DOWN,
 * EXIT, timers). Errors: HERD_ENOPROC, HERD_EFULL, HERD_ETOOBIG, HERD_ENOMEM. */
int proc_deliver(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                 uint64_t ref, int status, const void *data, size_t len, int force);
/* Queue a call's request: as proc_deliver (not forced), with the caller's
 * `deadline` (an HLC timestamp, 0: none). `relayed`: it arrived forwarded
 * from another node (as proc_deliver_relayed). */
int proc_deliver_call(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                      uint64_t deadline, const void *data, size_t len, int relayed);
/* The deadline of a call made now that waits `timeout_ms`. */
uint64_t proc_call_deadline(herd_node_t *n, uint32_t timeout_ms);
/* The same for a message forwarded from a moved process's old copy (a
 * call's `deadline` with it): never refused for a full mailbox, and queued
 * ahead of direct messages while the receiver is frozen. A failure is never
 * silent: it is counted in the node's stats (forward_dropped,
 * forward_failed_calls) and logged (at most once a second), and a call's
 * caller gets the error as its reply at once (here, or sent to its node).
 * The error is returned too. */
int proc_deliver_forwarded(herd_node_t *n, herd_pid_t to, const mmsg_t *m);
/* The same for a message that arrived forwarded from another node: counted
 * and logged as above, but a call is answered by the receiver (remote.c). */
int proc_deliver_relayed(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind,
                         herd_pid_t from, uint64_t ref, int status, const void *data,
                         size_t len);
/* p's mailbox head, taken off (NULL when empty). */
mmsg_t *proc_pop(herd_proc_t *p);
proc_ext_t *proc_ext_of(herd_proc_t *p);
/* Handle up to `budget` messages of `p`; carries out a decided exit. Returns
 * the number handled. */
int proc_run(herd_proc_t *p, int budget);
/* Decide that `p` exits with `reason` (carried out by the scheduler). */
void proc_mark_exit(herd_proc_t *p, int reason);
/* Free every process without notifications (node shutdown). */
void proc_free_all(herd_node_t *n);
/* How a call ended (proc_complete_call's `how`): the runtime made the
 * answer (HERD_ETIMEDOUT, HERD_ENOPROC, ...), and in bits 5-7 how many
 * copies hold the state the reply reflects (a gated callee, gate.c; 0 not
 * said). The same bits as a reply's flags on the wire (node_net_ops_t). */
#define REPLY_BY_RUNTIME 1u
#define REPLY_COPIES_SHIFT 5
#define REPLY_COPIES_MASK (7u << REPLY_COPIES_SHIFT)
#define REPLY_COPIES(how) (((how) & REPLY_COPIES_MASK) >> REPLY_COPIES_SHIFT)
/* The call `ref` made on this node ends: a reply arrived, or the runtime
 * ends it (REPLY_BY_RUNTIME in `how`) with HERD_ETIMEDOUT or HERD_ENOPROC. */
int proc_complete_call(herd_node_t *n, uint64_t ref, int status, const void *data,
                       size_t len, unsigned how);
/* Start a call from code outside processes whose answer goes to `w`
 * (herd_node_call's on its stack, herd_node_call_async's malloc'ed): the
 * errors herd_call gives at once, `w` untouched then. *ref (may be NULL)
 * names the call. */
int proc_node_call_start(herd_node_t *n, herd_pid_t to, const void *data, size_t len,
                         uint32_t timeout_ms, call_waiter_t *w, uint64_t *ref);
/* Watch lists: `pid` watches `p` under `ref` (a monitor, or a caller waiting
 * for p's reply); unwatch removes that entry; forget_monitor removes p's own
 * record of a monitor it holds. */
int proc_watch(herd_proc_t *p, uint64_t ref, herd_pid_t pid, int is_call);
void proc_unwatch(herd_proc_t *p, uint64_t ref);
void proc_forget_monitor(herd_proc_t *p, uint64_t ref);
/* Timers aimed at a process: noted so that its exit can drop them. */
int proc_note_timer(herd_node_t *n, herd_pid_t pid, uint64_t id);
void proc_forget_timer(herd_node_t *n, herd_pid_t pid, uint64_t id);

/* Send a reply now (herd_reply without the gate), saying `copies` (0: not
 * said) hold the state it reflects. */
int proc_reply_now(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len,
                   unsigned copies);

/* gate.c */
/* Hold a reply that the running process sends, when it is gated: 1 held,
 * 0 not gated (send it now), HERD_EINVAL (a local call of another caller),
 * HERD_ENOMEM. */
int gate_hold(herd_node_t *n, herd_from_t from, int status, const void *data, size_t len);
/* The status calls to p are refused with (herd_gate_refuse_calls), or 0. */
int gate_refuses(const herd_proc_t *p);
/* The merge message `ref` (herd_merge_into_local) was handled by p: its
 * confirmation waits as a reply would. */
void gate_merge_handled(herd_proc_t *p, uint64_t ref);
/* After a run of p's handlers that took `handled` messages. */
void gate_after_run(herd_proc_t *p, int handled);
/* The callee of call `from` exited without answering it: the caller gets
 * `status` as from the runtime (proc.c). */
void proc_callee_gone(herd_node_t *n, herd_from_t from, int status);
/* p exits: the calls whose replies its gate holds are answered
 * HERD_EUNCERTAIN (applied, their state's fate unknown), before its exit
 * answers its other callers HERD_ENOPROC. */
void gate_exit(herd_node_t *n, herd_proc_t *p);
/* Free a gate with what it still holds (merges: told HERD_ENOPROC). */
void gate_free(herd_node_t *n, proc_gate_t *g);

/* timer.c */
typedef enum timer_kind { TIMER_SEND, TIMER_CALL } timer_kind_t;
int timer_arm(herd_node_t *n, timer_kind_t kind, herd_pid_t to, uint64_t ms,
              uint64_t interval, const void *data, size_t len, uint64_t ref, uint64_t *id);
int timer_cancel(herd_node_t *n, uint64_t id);
/* Its target exited: cancel a send, end a call (HERD_ENOPROC). */
void timer_drop_for_exit(herd_node_t *n, uint64_t id);
uint64_t timer_next_deadline(const herd_node_t *n); /* UINT64_MAX: none */
/* Fire every timer due at `now`; returns how many fired. */
int timer_fire_due(herd_node_t *n, uint64_t now);
void timer_free_all(herd_node_t *n);

#endif
