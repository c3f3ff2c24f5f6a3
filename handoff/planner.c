/*
 * planner.c - the handoff planner (see planner.h).
 */
#include "planner.h"

#include <stdlib.h>
#include <string.h>

static int plan_push(hoff_plan_t *p, hoff_action_kind_t kind, size_t child, const char *target)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        hoff_action_t *a = realloc(p->actions, cap * sizeof(*a));
        if (a == NULL)
            return HERD_ENOMEM;
        p->actions = a;
        p->cap = cap;
    }
    p->actions[p->count++] = (hoff_action_t){kind, child, target};
    return 0;
}

/* Whether a key hash lies in one of the diff's moved ranges (sorted by lo). */
static int hash_moved(const herd_ring_diff_t *d, uint64_t h)
{
    size_t lo = 0, hi = d->move_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->moves[mid].hi < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < d->move_count && d->moves[lo].lo <= h;
}

/* One child: what, if anything, must happen to it. */
static int plan_child(const herd_ring_t *ring, const char *self, const hoff_child_t *c, size_t i,
                      int may_have_moved, hoff_plan_t *out)
{
    if (c->running_here && !c->spec_exists)
        return plan_push(out, HOFF_STOP, i, NULL);
    if (!c->spec_exists)
        return 0;
    if (c->ring) {
        if (herd_ring_member_count(c->ring) == 0)
            return 0; /* no member provides its service */
        ring = c->ring;
    }
    const char *owner;
    int rc = herd_ring_owner(ring, c->name, strlen(c->name), &owner);
    if (rc)
        return rc;
    int mine = strcmp(owner, self) == 0;
    if (mine && !c->running_visible)
        return plan_push(out, HOFF_START, i, NULL);
    if (!mine && c->running_here && may_have_moved)
        return plan_push(out, HOFF_HANDOFF, i, owner);
    return 0;
}

int hoff_plan(const herd_ring_t *old_ring, const herd_ring_t *new_ring, const char *self,
              const hoff_child_t *children, size_t n, hoff_plan_t *out)
{
    memset(out, 0, sizeof(*out));
    if (new_ring == NULL || self == NULL || (n && children == NULL))
        return HERD_EINVAL;
    if (herd_ring_member_count(new_ring) == 0)
        return HERD_EEMPTY;
    herd_ring_diff_t diff = {0};
    int have_diff = old_ring != NULL && herd_ring_member_count(old_ring) > 0;
    int rc = have_diff ? herd_ring_compare(old_ring, new_ring, &diff) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const hoff_child_t *c = &children[i];
        if (c->name == NULL) {
            rc = HERD_EINVAL;
            break;
        }
        /* a handoff can only be due where the owner changed; starts and stops
         * do not depend on the diff (a crash, a removed spec) */
        int moved = !have_diff || c->ring != NULL ||
                    hash_moved(&diff, herd_ring_hash_key(c->name, strlen(c->name)));
        if (moved || !c->running_visible || !c->spec_exists) {
            out->considered++;
            rc = plan_child(new_ring, self, c, i, moved, out);
        }
    }
    if (have_diff)
        herd_ring_diff_free(&diff);
    if (rc)
        hoff_plan_free(out);
    return rc;
}

void hoff_plan_free(hoff_plan_t *p)
{
    free(p->actions);
    memset(p, 0, sizeof(*p));
}
