/*
 * children.c - the table of the children this node runs.
 *
 * A child is found by name (by_hash: the name's hash, with children whose
 * names share a hash chained as twins) and by the serial of its process
 * (by_serial: an exit names only the pid). Whatever state a child is in -
 * running, restarting, moving away, arriving - it stays in the table, so a
 * name is never started twice here; it leaves only through dsup_forget.
 *
 * A child's state changes only through child_set_state (and its entry and
 * exit, dsup_add and dsup_forget), which checks the change against the
 * table below, logs it, and keeps the supervisor's counts of restarting,
 * moving and arriving children: the tick and the loop's reference rely on
 * those counts, so they follow from the states, never kept beside them.
 */
#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "dsup_int.h"
#include "log.h"

const char *herd_child_state_name(herd_child_state_t s)
{
    static const char *names[HERD_CHILD_STATE_COUNT] = {
        [HERD_CHILD_RUNNING] = "running",
        [HERD_CHILD_RESTARTING] = "restarting",
        [HERD_CHILD_MOVING] = "moving",
        [HERD_CHILD_ARRIVING] = "arriving",
    };
    return (unsigned)s < HERD_CHILD_STATE_COUNT ? names[s] : "?";
}

/* ---- the state machine ---------------------------------------------------------- */

/* Outside the table: before dsup_add, after dsup_forget. */
#define CHILD_NONE HERD_CHILD_STATE_COUNT

/* Which state may follow which. A child enters the table running (started
 * here) or arriving (a move's new copy), and may leave it from any state.
 * A running child exits into restarting or freezes into moving; each of
 * those, and an arrival that commits or is promoted, ends in running. */
static const unsigned char legal[CHILD_NONE + 1][CHILD_NONE + 1] = {
    /*                      running restarting moving arriving none */
    [HERD_CHILD_RUNNING] = {0, 1, 1, 0, 1},
    [HERD_CHILD_RESTARTING] = {1, 0, 0, 0, 1},
    [HERD_CHILD_MOVING] = {1, 0, 0, 0, 1},
    [HERD_CHILD_ARRIVING] = {1, 0, 0, 0, 1},
    [CHILD_NONE] = {1, 0, 0, 1, 0},
};

static const char *state_name(unsigned s)
{
    return s == CHILD_NONE ? "none" : herd_child_state_name((herd_child_state_t)s);
}

static size_t *count_of(dsup_t *d, unsigned s)
{
    switch (s) {
    case HERD_CHILD_RESTARTING: return &d->restarting;
    case HERD_CHILD_MOVING: return &d->moving;
    case HERD_CHILD_ARRIVING: return &d->arriving;
    default: return NULL;
    }
}

/* An illegal change is logged and made all the same: its caller acts on
 * the new state next, and the counts follow the state either way. */
static void transition(dsup_t *d, dchild_t *c, unsigned from, unsigned to)
{
    if (from > CHILD_NONE || !legal[from][to])
        herd_log(HERD_LOG_ERROR, "dsup", "child '%s': illegal change %s -> %s", c->name,
                 state_name(from), state_name(to));
    else
        herd_log(HERD_LOG_DEBUG, "dsup", "child '%s': %s -> %s", c->name, state_name(from),
                 state_name(to));
    size_t *was = count_of(d, from), *now = count_of(d, to);
    if (was)
        --*was;
    if (now)
        ++*now;
    if (to != CHILD_NONE)
        c->state = (herd_child_state_t)to;
}

void child_set_state(dsup_t *d, dchild_t *c, herd_child_state_t to)
{
    if ((unsigned)to >= HERD_CHILD_STATE_COUNT) { /* no state: nothing to count it in */
        herd_log(HERD_LOG_ERROR, "dsup", "child '%s': no state %d", c->name, (int)to);
        return;
    }
    transition(d, c, c->state, to);
}

dchild_t *dsup_child_new(const char *name, int service, herd_restart_t restart)
{
    dchild_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(name)) == NULL) {
        free(c);
        return NULL;
    }
    c->service = service;
    c->restart = restart;
    return c;
}

dchild_t *dsup_find(dsup_t *d, const char *name)
{
    dchild_t *c = u64map_get(&d->by_hash, awmap_key_hash(name, strlen(name)));
    while (c && strcmp(c->name, name) != 0)
        c = c->twin;
    return c;
}

static void child_free(dchild_t *c)
{
    bigstate_out_free(c);
    free(c->name);
    free(c);
}

static void unlink_hash(dsup_t *d, dchild_t *c);

int dsup_add(dsup_t *d, dchild_t *c, herd_child_state_t state)
{
    c->hash = awmap_key_hash(c->name, strlen(c->name));
    dchild_t *first = u64map_get(&d->by_hash, c->hash);
    if (first) {
        c->twin = first->twin;
        first->twin = c;
    } else if (u64map_put(&d->by_hash, c->hash, c) != 0) {
        goto fail_free;
    }
    if (!herd_pid_is_none(c->pid) && u64map_put(&d->by_serial, c->pid.serial, c) != 0)
        goto fail_unlink;
    d->child_count++;
    transition(d, c, CHILD_NONE, state);
    return 0;

fail_unlink:
    unlink_hash(d, c);
fail_free:
    child_free(c);
    return HERD_ENOMEM;
}

static void unlink_hash(dsup_t *d, dchild_t *c)
{
    dchild_t *first = u64map_get(&d->by_hash, c->hash);
    if (first == c) {
        u64map_del(&d->by_hash, c->hash);
        if (c->twin && u64map_put(&d->by_hash, c->hash, c->twin) != 0)
            herd_log(HERD_LOG_ERROR, "dsup", "out of memory relinking a child");
        return;
    }
    for (dchild_t *p = first; p; p = p->twin) {
        if (p->twin == c) {
            p->twin = c->twin;
            return;
        }
    }
}

void dsup_forget(dsup_t *d, dchild_t *c)
{
    holder_drop(d, c);
    bigstate_out_free(c);
    unlink_hash(d, c);
    if (!herd_pid_is_none(c->pid) && u64map_get(&d->by_serial, c->pid.serial) == c)
        u64map_del(&d->by_serial, c->pid.serial);
    transition(d, c, c->state, CHILD_NONE);
    d->child_count--;
    child_free(c);
}

void children_free(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;) {
        for (dchild_t *c = s->value, *next; c; c = next) {
            next = c->twin;
            child_free(c);
        }
    }
    u64map_fini(&d->by_hash);
    u64map_fini(&d->by_serial);
}
