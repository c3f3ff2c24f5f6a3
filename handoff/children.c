/*
 * children.c - the table of the children this node runs.
 *
 * A child is found by name (by_hash: the name's hash, with children whose
 * names share a hash chained as twins) and by the serial of its process
 * (by_serial: an exit names only the pid). Whatever state a child is in -
 * running, restarting, moving away, arriving - it stays in the table, so a
 * name is never started twice here; it leaves only through dsup_forget.
 */
#include <stdlib.h>
#include <string.h>

#include "awmap.h"
#include "dsup_int.h"
#include "log.h"

const char *herd_child_state_name(herd_child_state_t s)
{
    static const char *names[] = {"running", "restarting", "moving", "arriving"};
    return (unsigned)s < 4 ? names[s] : "?";
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

int dsup_add(dsup_t *d, dchild_t *c)
{
    c->hash = awmap_key_hash(c->name, strlen(c->name));
    dchild_t *first = u64map_get(&d->by_hash, c->hash);
    if (first) {
        c->twin = first->twin;
        first->twin = c;
    } else if (u64map_put(&d->by_hash, c->hash, c) != 0) {
        return HERD_ENOMEM;
    }
    if (!herd_pid_is_none(c->pid) && u64map_put(&d->by_serial, c->pid.serial, c) != 0) {
        dsup_forget(d, c);
        return HERD_ENOMEM;
    }
    d->child_count++;
    return 0;
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
    if (c->state == HERD_CHILD_RESTARTING)
        d->restarting--;
    if (c->state == HERD_CHILD_MOVING)
        d->moving--;
    if (c->state == HERD_CHILD_ARRIVING)
        d->arriving--;
    d->child_count--;
    free(c->name);
    free(c);
}

void children_free(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->by_hash, &cursor)) != NULL;) {
        for (dchild_t *c = s->value, *next; c; c = next) {
            next = c->twin;
            bigstate_out_free(c);
            free(c->name);
            free(c);
        }
    }
    u64map_fini(&d->by_hash);
    u64map_fini(&d->by_serial);
}
