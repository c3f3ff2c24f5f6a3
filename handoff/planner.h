/*
 * planner.h - what a node must do with its children after the ring changes,
 * or on a periodic reconcile: free of I/O, a function of its inputs.
 *
 * For each child spec the node knows (replicated: every node knows every
 * spec), the planner looks at who owns the name on the new ring and where the
 * child runs:
 * - owned here, running nowhere visible        -> START here (a crash restart
 *                                                  is this rule after its node
 *                                                  was declared down);
 * - running here, owned elsewhere now          -> HANDOFF to the new owner;
 * - running here, spec removed                 -> STOP.
 * A child that runs elsewhere, or here and is owned here, is left alone: a
 * membership change never re-places every process. With the previous ring
 * given, only names in the key ranges that changed owner (ring_diff) are even
 * considered for a handoff, so the work is proportional to what moved; a
 * child placed by a ring of its own (hoff_child_t.ring) is always considered,
 * for the diff of the whole rings does not describe its ring.
 */
#ifndef HERD_PLANNER_H
#define HERD_PLANNER_H

#include <stddef.h>
#include <stdint.h>

#include "herd_ring.h"

typedef struct hoff_child {
    const char *name;
    int spec_exists;     /* its spec is in the replicated child list */
    int running_here;    /* a live copy runs on this node */
    int running_visible; /* a live copy runs somewhere (here or elsewhere) */
    /* The ring that places this child: the members that provide its service
     * (svcring.h). NULL: new_ring. An empty one: nobody may run it, so it is
     * neither started nor moved (a copy running here stays). */
    const herd_ring_t *ring;
} hoff_child_t;

typedef enum hoff_action_kind { HOFF_START, HOFF_HANDOFF, HOFF_STOP } hoff_action_kind_t;

typedef struct hoff_action {
    hoff_action_kind_t kind;
    size_t child;       /* index into the children given */
    const char *target; /* HOFF_HANDOFF: the new owner (valid while new_ring is) */
} hoff_action_t;

typedef struct hoff_plan {
    hoff_action_t *actions; /* owned */
    size_t count, cap;
    size_t considered; /* children looked at closely (ring diff filter) */
} hoff_plan_t;

/* Plan for node `self`. `old_ring` may be NULL (a periodic reconcile: every
 * child is considered). Errors: HERD_EINVAL, HERD_EEMPTY (new ring empty: do
 * nothing rather than stop everything), HERD_ENOMEM. */
int hoff_plan(const herd_ring_t *old_ring, const herd_ring_t *new_ring, const char *self,
              const hoff_child_t *children, size_t n, hoff_plan_t *out);
void hoff_plan_free(hoff_plan_t *p);

#endif
