/*
 * runtime_layers.h - what the layers above the runtime (the registry, the
 * distributed supervisor, herd's tools and tests) use of it and programs do
 * not: freezing and forwarding a process (the handoff), holding replies
 * until their state is replicated (the gate), exit hooks and layer slots,
 * merges and changes of a process's state, a simulation's clock-driven
 * polls and transport. Not installed, and hidden in libherd.so (only the
 * public headers' declarations are exported).
 */
#ifndef HERD_RUNTIME_LAYERS_H
#define HERD_RUNTIME_LAYERS_H

#include "herd_events.h"
#include "herd_runtime.h"

struct transport;

/* herd_cluster_start over `transport` (transport.h; NULL: nanomsg), taken
 * over by the node (closed with it): simulations pass an in-memory one. */
int herd_cluster_start_with(herd_node_t *node, const herd_cluster_config_t *cfg,
                            const struct transport *transport);

/* Run everything that is ready now: due timers and every queued message,
 * without waiting for I/O. Returns how many messages were handled. For
 * simulations that drive the clock themselves. */
int herd_node_poll(herd_node_t *node);

/* The same with the behaviour's delta_out: the change since its last call.
 * HERD_EINVAL also when the behaviour has no delta_out and delta_apply. */
int herd_state_delta_out(herd_node_t *node, herd_pid_t pid, uint8_t **out, size_t *len);

/* herd_merge_into for a process of this node, told when the merge holds:
 * `done(data, 0)` at once (before this returns) when the process is not
 * gated; when it is (herd_gate_open), once it handled the merge and the
 * state that includes it was released as its replies are (replicated);
 * `done(data, HERD_ENOPROC)` if it exits first. Errors as herd_merge_into
 * (`done` not called). */
typedef void (*herd_merge_done_fn)(void *data, int status);
int herd_merge_into_local(herd_node_t *node, herd_pid_t winner, const uint8_t *state, size_t len,
                          herd_merge_done_fn done, void *data);
/* Merge `state` into a live process of this node now, with its behaviour's
 * resolve_conflict (outside its own handlers, as herd_state_out): once this
 * returns 0, the state herd_state_out writes includes it. Errors:
 * HERD_ENOPROC, HERD_EINVAL (no resolve_conflict, or called from the
 * process itself), HERD_EBUSY (frozen: its state is on its way elsewhere),
 * or resolve_conflict's own failure. */
int herd_state_merge(herd_node_t *node, herd_pid_t pid, const uint8_t *state, size_t len);

/* ---- spawning in two steps -------------------------------------------------------- */

/* For a spawn that must happen only if something else holds (the registry's
 * herd_spawn_named: only if its name is free). herd_spawn_prepare makes the
 * process without running init: its pid is alive (herd_is_alive, a
 * registration may name it) and messages to it queue, but it runs nothing
 * (herd_node_free frees it without terminate) until exactly one of:
 * - herd_spawn_start runs init with the same opts (and makes the link), as
 *   herd_spawn would; its errors are herd_spawn's (the process exits as
 *   after a failed init), or HERD_ENOPROC when it was stopped meanwhile
 *   (init never runs);
 * - herd_spawn_discard drops it: if nothing reached it (no message,
 *   monitor or link), as if it never existed (no terminate, no exit hook,
 *   no DOWN or exit signal) and returns 0; else it exits with `reason` as
 *   after a failed init (no terminate; those that know of it are told) and
 *   returns 1.
 * Errors: herd_spawn_prepare as herd_spawn before init (HERD_EINVAL,
 * HERD_ENOMEM, HERD_ENOPROC: a dead link target); start and discard
 * HERD_ENOPROC for a pid that is not a prepared process, start HERD_EINVAL
 * for opts of another behaviour. */
int herd_spawn_prepare(herd_node_t *node, const herd_spawn_opts_t *opts, herd_pid_t *out);
int herd_spawn_start(herd_node_t *node, herd_pid_t pid, const herd_spawn_opts_t *opts);
int herd_spawn_discard(herd_node_t *node, herd_pid_t pid, int reason);

/* ---- moving a process to another node (the handoff) -------------------------------- */

/* Who holds a process frozen. A move and a name conflict's merge each freeze
 * and thaw on their own: a thaw by one leaves the other's freeze in place. */
typedef enum herd_freeze_holder {
    HERD_FREEZE_MOVE = 1 << 0,     /* the handoff moves it to another node */
    HERD_FREEZE_CONFLICT = 1 << 1, /* it lost a name conflict; its state goes to the winner */
    HERD_FREEZE_HOLD = 1 << 2,     /* it holds a restarting child's name and messages */
    HERD_FREEZE_TEST = 1 << 3,     /* tests and tools */
} herd_freeze_holder_t;

/* Freeze a process of this node for `holder`: it finishes nothing new;
 * messages keep queuing (the mailbox limit still applies to ordinary sends).
 * Errors: HERD_ENOPROC, HERD_EINVAL (called from its own handler, or not one
 * holder bit), HERD_EBUSY (a call it made is still outstanding: its reply
 * would be orphaned; try later). Freezing again for the same holder is a
 * no-op. */
int herd_freeze(herd_node_t *node, herd_pid_t pid, herd_freeze_holder_t holder);
/* Drop `holder`'s freeze; the process takes its mailbox again, in order,
 * once no holder keeps it frozen. */
int herd_thaw(herd_node_t *node, herd_pid_t pid, herd_freeze_holder_t holder);
/* The holders that keep it frozen (herd_freeze_holder_t bits), 0 if none. */
int herd_is_frozen(const herd_node_t *node, herd_pid_t pid);
/* Whether a message of `kind` waits in the mailbox of a process of this
 * node (a conflict loser's state not merged yet: the handoff does not move
 * a process before it has merged it). */
int herd_has_queued(const herd_node_t *node, herd_pid_t pid, herd_msg_kind_t kind);
/* Move every message queued for the frozen process `from` to `to` (another
 * node's process, or one of this node), in order, keeping each message's
 * kind, sender and call reference: `to` answers the calls. Replies, DOWN and
 * EXIT messages meant for `from` itself are dropped. While `to` is frozen
 * the messages queue ahead of those sent to it directly. Returns the number
 * moved, or HERD_ENOPROC / HERD_EINVAL (not frozen). */
int herd_forward_mailbox(herd_node_t *node, herd_pid_t from, herd_pid_t to);
/* For `ms` after `from` exits, messages and calls sent to it go to `to`
 * instead (a sender that has not seen the move yet). */
int herd_redirect(herd_node_t *node, herd_pid_t from, herd_pid_t to, uint64_t ms);

/* ---- holding replies until the state they reflect is replicated ------------------- */

/* A gated process's replies wait until the state they reflect is held
 * elsewhere (the distributed supervisor's replication). While it runs a
 * handler, each herd_reply it sends is held, tagged with the version its
 * state will have at the next herd_gate_mark; herd_gate_release(v) sends,
 * in order, every held reply tagged v or lower. After each run of its
 * handlers that took at least one message, `dirty` is told once (on the loop
 * thread, outside the handler): the state may have changed. Replies sent
 * from outside its handlers (init, terminate, other code) are not held. A
 * gated process that exits answers the calls whose replies it still holds
 * with HERD_EUNCERTAIN (counted in herd_node_stats' gate_dropped): each
 * was applied, and whether the state it left outlives the process is not
 * known; never HERD_ENOPROC, which says a call was not applied. */
typedef void (*herd_gate_dirty_fn)(void *data, herd_pid_t pid);
/* Gate a live local process; the versions start after `version` (a state
 * that continues one replicated elsewhere keeps counting from it). Gating
 * again replaces the callback and keeps what is held. HERD_ENOPROC,
 * HERD_ENOMEM. */
int herd_gate_open(herd_node_t *node, herd_pid_t pid, uint64_t version, herd_gate_dirty_fn dirty,
                   void *data);
/* The state as it is now gets the next version: returns it (0: not gated
 * or not alive). Replies held so far are tagged at most that. */
uint64_t herd_gate_mark(herd_node_t *node, herd_pid_t pid);
/* The same, the version being at least `at_least` (a clock reading: copies
 * of a state that went two ways, across a partition, then compare by when
 * they were written). */
uint64_t herd_gate_mark_after(herd_node_t *node, herd_pid_t pid, uint64_t at_least);
/* Send the held replies tagged `version` or lower, each saying that
 * `copies` copies hold its state (herd_msg_t.copies; 1..7); returns how
 * many went. HERD_ENOPROC when not gated. */
int herd_gate_release(herd_node_t *node, herd_pid_t pid, uint64_t version, unsigned copies);
/* How many replies it holds now (0 when not gated). */
size_t herd_gate_held(const herd_node_t *node, herd_pid_t pid);
/* While `status` is nonzero, calls to the gated process are answered
 * `status` at once, without running its handler (nothing applied): e.g.
 * HERD_EUNAVAILABLE while too few copies of its state can be kept. Casts
 * and other messages run as before. 0 takes calls again. HERD_ENOPROC when
 * not gated. */
int herd_gate_refuse_calls(herd_node_t *node, herd_pid_t pid, int status);

/* ---- hooks for the layers above (registry, handoff) ----------------------------------- */

/* Told after every process exit on the node (terminate has run). At most
 * HERD_MAX_HOOKS per node. */
typedef void (*herd_exit_hook)(void *data, herd_pid_t pid, int reason);
int herd_node_on_exit(herd_node_t *node, herd_exit_hook cb, void *data);
#define HERD_MAX_HOOKS 8

/* ---- the event bus (herd_events.h) -------------------------------------------------- */

/* Tell the subscribers of ev->kind (seq and time_ms are filled in; a NULL
 * name is ""). A name over HERD_EVENT_NAME_MAX bytes is logged, not told. */
void herd_event_emit(herd_node_t *node, const herd_event_t *ev);
/* Whether some subscriber wants `kind`: an emitter may skip building an
 * event nobody wants. */
int herd_events_wanted(const herd_node_t *node, herd_event_kind_t kind);
/* herd's own layers subscribe here: told before every program's
 * subscriber, in the order subscribed, and removed only by
 * herd_events_unsubscribe_internal (same fn and data). */
int herd_events_subscribe_internal(herd_node_t *node, uint32_t mask, herd_event_fn fn,
                                   void *data);
void herd_events_unsubscribe_internal(herd_node_t *node, herd_event_fn fn, void *data);

/* One pointer per upper layer, freed (free_fn) first thing in herd_node_free. */
enum { HERD_EXT_REGISTRY, HERD_EXT_HANDOFF, HERD_EXT_SHUTDOWN, HERD_EXT_COUNT };
int herd_node_set_ext(herd_node_t *node, int slot, void *ptr, void (*free_fn)(void *));
void *herd_node_ext(const herd_node_t *node, int slot);

/* How long the cluster keeps a member that is down before it takes it for
 * gone (herd_cluster_config_t.forget_ms, the default filled in); 0 when the
 * node is in no cluster. */
uint32_t herd_cluster_forget_ms(herd_node_t *node);

/* Under a virtual clock (herd_node_config_t.clock), the cluster's timers do
 * not fire by themselves: a simulation calls this after advancing the clock.
 * It runs the membership tick and resends that are due, then sends what is
 * queued. Harmless under the real clock. */
int herd_cluster_poll(herd_node_t *node);

/* Send what the streams hold now, as the loop's turn would before it waits:
 * for a layer that queued a large message in the middle of long work (the
 * registry's piece of a burst of registrations), so that it leaves while
 * the work goes on. HERD_ENOENT when the node is in no cluster. */
int herd_cluster_flush(herd_node_t *node);

#endif
