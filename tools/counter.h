/*
 * counter.h - the counter service: herdd's built-in example, a counter
 * process started by name.
 *
 * Calls take a text command and answer the counter's value as decimal text:
 *   "incr" | "incr N" | "decr" | "decr N" | "get" | "reset"
 * (N a whole number 1..2^62 = 4611686018427387904, the largest step). A bad
 * command is answered with the counter's own error COUNTER_EBADCMD
 * (herd_reply_error; the reply's text lists the commands) and changes
 * nothing.
 *
 * The value is an int64_t: INT64_MIN..INT64_MAX. An `incr` or `decr` that
 * would take it outside is refused with the counter's error COUNTER_ERANGE
 * (the reply's text says why) before anything changes; the counter never wraps or saturates on its
 * own. `reset` works from any value. Only a merge of copies that counted
 * apart can leave a sum outside the range: `get` then answers the nearest
 * limit, `incr`/`decr` that do not bring it back are refused, `reset` does.
 *
 * Its state is a PN-counter keyed by copy: each copy (one running process:
 * a moved or restarted one is a new copy, carrying what it was given) counts
 * its own increments and decrements, and the value is the sum over copies. Merging two copies
 * that diverged from a common base after a split takes, per copy, the larger
 * count on each side, so the base is counted once and every increment made on
 * either side counts. `reset` adds the value it sees to its own decrements
 * (or its negation to its increments). A copy's count stays below 2^63, the
 * most a decoder takes: when its slot is full, the copy goes on counting in
 * a new slot under a fresh id, so every state it writes moves (handoff_in
 * takes every state handoff_out writes).
 *
 * Replicated (herd_child_req_t.replicas > 1), it sends its replicas the
 * slots that changed since the last put (delta_out, delta_apply) instead
 * of every slot: a counter that moved or restarted many times keeps a slot
 * for each copy it was.
 */
#ifndef HERD_COUNTER_H
#define HERD_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "herd_runtime.h"

extern const herd_behaviour_t counter_behaviour;

/* The counter's own error codes in its replies (herd_app_error_code of the
 * reply's status; `ringctl call` prints them as the service's error). */
enum { COUNTER_EBADCMD = 1, COUNTER_ERANGE = 2 };

/* The pure state, for tests and tools. */
typedef struct counter_slot {
    uint64_t copy;
    uint64_t incr, decr;
    int changed; /* since the last counter_delta: it goes in the next one */
} counter_slot_t;

typedef struct counter_state {
    uint64_t self; /* this copy's id */
    counter_slot_t *slots;
    size_t count, cap;
} counter_state_t;

/* The value; a sum beyond the int64_t range (after a merge) gives the nearest limit. */
int64_t counter_value(const counter_state_t *c);
/* Apply one command; *value gets the value after it. HERD_EINVAL for a bad
 * command, HERD_ERANGE when the value would leave the int64_t range (or the
 * state would need more than 65536 slots); on error nothing changed. */
int counter_apply(counter_state_t *c, const char *cmd, size_t len, int64_t *value);
/* Merge another copy's state (encoded) into c: per copy, the larger counts. */
int counter_merge(counter_state_t *c, const uint8_t *data, size_t len);
/* The change since the last call (or since c was made): the slots that
 * changed, encoded as a state (its `self` c's); merging it into the state
 * encoded then gives c's (counter_delta_apply). Counts only grow, so the
 * change of a slot is its counts now. */
int counter_delta(counter_state_t *c, uint8_t **out, size_t *len);
/* An encoded state with an encoded change merged in, `self` the change's. */
int counter_delta_apply(const uint8_t *state, size_t len, const uint8_t *delta,
                        size_t delta_len, uint8_t **out, size_t *out_len);
int counter_encode(const counter_state_t *c, uint8_t **out, size_t *len);
/* Decode into a fresh state (its `self` is the encoded one; the behaviour
 * gives a moved copy its own). HERD_EBADFRAME on malformed input. */
int counter_decode(const uint8_t *data, size_t len, counter_state_t **out);
void counter_free(counter_state_t *c);

#endif
