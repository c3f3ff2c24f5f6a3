/*
 * simnet_check.c - what the simulator checks at every step, and what tests
 * ask it about the cluster (simnet.h).
 *
 * Upper layers trust two things of membership that no single scenario
 * states, so they are checked after every state machine call of every node:
 *
 *  - ring_changed is set whenever the ring's input changed (the members in a
 *    ring state, with their weights): a missed flag means a registry or a
 *    handoff planner keeps an old ring. A flag without a change is only
 *    counted (a rebuild for nothing).
 *  - the member events are a faithful stream: each event starts from the
 *    state the previous one left (absent at first) with the same
 *    incarnation, and replaying them gives the member table. The registry
 *    hides and removes names from these events alone.
 *
 * The queries compare what the nodes believe with the truth the simulator
 * knows: which nodes live, at which incarnation, draining or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simnet.h"

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* ---- invariants --------------------------------------------------------- */

static void violation(sim_node_t *n, uint64_t now, const char *what, const char *name)
{
    n->stats.violations++;
    if (n->violation[0] == '\0')
        snprintf(n->violation, sizeof(n->violation), "%s at t=%llu: %s (member %s)",
                 n->name, (unsigned long long)now, what, name);
}

/* The ring is a pure function of this: members in a ring state and weights. */
static uint64_t ring_signature(const mship_t *m)
{
    uint64_t h = FNV_OFFSET;
    for (size_t k = 0; k < mship_member_count(m); k++) {
        const mship_member_t *x = mship_member_at(m, k);
        if (!mship_state_in_ring(x->state))
            continue;
        for (const char *c = x->name;; c++) {
            h = (h ^ (unsigned char)*c) * FNV_PRIME;
            if (*c == '\0')
                break;
        }
        h = (h ^ x->weight) * FNV_PRIME;
    }
    return h;
}

static sim_tracked_t *tracked_find(sim_node_t *n, const char *name)
{
    for (size_t k = 0; k < n->tracked_count; k++)
        if (strcmp(n->tracked[k].name, name) == 0)
            return &n->tracked[k];
    return NULL;
}

static int tracked_add(sim_node_t *n, const char *name, uint64_t inc, mship_state_t state)
{
    if (n->tracked_count == n->tracked_cap) {
        size_t cap = n->tracked_cap ? n->tracked_cap * 2 : 16;
        sim_tracked_t *t = realloc(n->tracked, cap * sizeof(*t));
        if (t == NULL)
            return HERD_ENOMEM;
        n->tracked = t;
        n->tracked_cap = cap;
    }
    sim_tracked_t *t = &n->tracked[n->tracked_count++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->incarnation = inc;
    t->state = state;
    return 0;
}

void simnet__check_start(simnet_t *s, int node)
{
    sim_node_t *n = simnet_node(s, node);
    const mship_t *m = n->mship;
    n->tracked_count = 0;
    for (size_t k = 0; k < mship_member_count(m); k++) {
        const mship_member_t *x = mship_member_at(m, k);
        if (tracked_add(n, x->name, x->incarnation, x->state) != 0)
            violation(n, simnet_now(s), "out of memory while tracking", x->name);
    }
    n->ring_sig = ring_signature(m);
}

/* Replay one member event on the tracked table. */
static void track_event(simnet_t *s, sim_node_t *n, const mship_effect_t *e)
{
    sim_tracked_t *t = tracked_find(n, e->name);
    mship_state_t was = t ? t->state : MEMBER_ABSENT;
    if (e->old_state != was)
        violation(n, simnet_now(s),
                  "an event starts from another state than the last left", e->name);
    else if (t && t->incarnation != e->incarnation && e->old_state != MEMBER_ABSENT)
        violation(n, simnet_now(s), "an event names another incarnation", e->name);
    if (e->new_state == MEMBER_ABSENT && t)
        *t = n->tracked[--n->tracked_count];
    else if (e->new_state != MEMBER_ABSENT && t) {
        t->state = e->new_state;
        t->incarnation = e->incarnation;
    } else if (e->new_state != MEMBER_ABSENT &&
               tracked_add(n, e->name, e->incarnation, e->new_state) != 0)
        violation(n, simnet_now(s), "out of memory while tracking", e->name);
}

/* The tracked table and the state machine's own table are the same. */
static void compare_tables(simnet_t *s, sim_node_t *n)
{
    const mship_t *m = n->mship;
    if (mship_member_count(m) != n->tracked_count)
        violation(n, simnet_now(s), "the events left another number of members", "*");
    for (size_t k = 0; k < mship_member_count(m); k++) {
        const mship_member_t *x = mship_member_at(m, k);
        const sim_tracked_t *t = tracked_find(n, x->name);
        if (t == NULL || t->state != x->state || t->incarnation != x->incarnation)
            violation(n, simnet_now(s), "the table disagrees with the events", x->name);
    }
}

void simnet__check_call(simnet_t *s, int node, const mship_effects_t *fx)
{
    sim_node_t *n = simnet_node(s, node);
    if (n->mship == NULL)
        return;
    for (size_t k = 0; k < fx->count; k++)
        if (fx->items[k].kind == MSHIP_MEMBER)
            track_event(s, n, &fx->items[k]);
    compare_tables(s, n);
    uint64_t sig = ring_signature(n->mship);
    if (sig != n->ring_sig && !fx->ring_changed) {
        n->stats.ring_missed++;
        violation(n, simnet_now(s), "the ring changed without ring_changed", "*");
    } else if (sig == n->ring_sig && fx->ring_changed) {
        n->stats.ring_spurious++;
    }
    n->ring_sig = sig;
}

int simnet_invariants_hold(simnet_t *s, char *why, size_t cap)
{
    for (int i = 0; i < simnet_node_count(s); i++) {
        const sim_node_t *n = simnet_node(s, i);
        if (n->stats.violations) {
            if (why)
                snprintf(why, cap, "%s (%llu in all)", n->violation,
                         (unsigned long long)n->stats.violations);
            return 0;
        }
    }
    return 1;
}

/* ---- queries ------------------------------------------------------------ */

const mship_t *simnet_view(const simnet_t *s, int node)
{
    const sim_node_t *n = simnet_node(s, node);
    return n && n->status == SIM_NODE_RUNNING ? n->mship : NULL;
}

const mship_member_t *simnet_member(const simnet_t *s, int node, const char *name)
{
    const mship_t *m = simnet_view(s, node);
    return m ? mship_find(m, name) : NULL;
}

char *simnet_ring_text(const simnet_t *s, int node)
{
    const mship_t *m = simnet_view(s, node);
    herd_ring_t *r = NULL;
    if (m == NULL || mship_build_ring(m, &r) != 0)
        return NULL;
    size_t len = herd_ring_dump_text(r, NULL, 0);
    char *text = malloc(len + 1);
    if (text)
        herd_ring_dump_text(r, text, len + 1);
    herd_ring_free(r);
    return text;
}

size_t simnet_view_text(const simnet_t *s, int node, char *buf, size_t cap)
{
    const mship_t *m = simnet_view(s, node);
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    if (m == NULL)
        return (size_t)snprintf(buf, cap, "(not running)");
    for (size_t k = 0; k < mship_member_count(m); k++) {
        const mship_member_t *x = mship_member_at(m, k);
        int w = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0,
                         "%s%s %s %llu", k ? " | " : "", x->name,
                         mship_state_name(x->state), (unsigned long long)x->incarnation);
        if (w > 0)
            len += (size_t)w;
    }
    return len;
}

static int observed_live(const simnet_t *s, int i)
{
    return simnet_live(s, i) && simnet_node(s, i)->observed;
}

/* The observed live node called `name` (a name may be taken by a second
 * node, or by a node restarted elsewhere), else the first of that name. */
static int live_named(const simnet_t *s, const char *name)
{
    for (int j = 0; j < simnet_node_count(s); j++)
        if (observed_live(s, j) && strcmp(simnet_node(s, j)->name, name) == 0)
            return j;
    return simnet_find(s, name);
}

/* Does node i see exactly the observed live nodes, in their own states? */
static int view_matches(const simnet_t *s, int i, char *why, size_t cap)
{
    const sim_node_t *n = simnet_node(s, i);
    int expected = 0, seen = 0;
    for (int j = 0; j < simnet_node_count(s); j++)
        expected += observed_live(s, j);
    for (size_t k = 0; k < mship_member_count(n->mship); k++) {
        const mship_member_t *x = mship_member_at(n->mship, k);
        if (!mship_state_in_ring(x->state) && x->state != MEMBER_DRAINING)
            continue;
        int j = live_named(s, x->name);
        const sim_node_t *o = simnet_node(s, j);
        if (j < 0 || !observed_live(s, j) || x->incarnation != o->incarnation ||
            x->state != mship_self(o->mship)->state) {
            if (why)
                snprintf(why, cap, "%s sees %s %s incarnation %llu", n->name, x->name,
                         mship_state_name(x->state), (unsigned long long)x->incarnation);
            return 0;
        }
        seen++;
    }
    if (seen != expected && why)
        snprintf(why, cap, "%s sees %d of %d live nodes", n->name, seen, expected);
    return seen == expected;
}

int simnet_converged(simnet_t *s, char *why, size_t cap)
{
    char *first = NULL;
    int ok = 1;
    for (int i = 0; i < simnet_node_count(s) && ok; i++) {
        if (!observed_live(s, i))
            continue;
        ok = view_matches(s, i, why, cap);
        char *ring = ok ? simnet_ring_text(s, i) : NULL;
        if (ok && ring == NULL) {
            free(first);
            return HERD_ENOMEM;
        }
        if (ok && first && strcmp(first, ring) != 0) {
            ok = 0;
            if (why)
                snprintf(why, cap, "%s builds another ring", simnet_node(s, i)->name);
        }
        if (first == NULL)
            first = ring;
        else
            free(ring);
    }
    free(first);
    return ok;
}
