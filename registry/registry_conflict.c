/*
 * registry_conflict.c - two live registrations of one name (after a
 * partition heals): every node sees the same entries and picks the same
 * winner (registry_value.c's order); each stops its own losers, whose state
 * first goes to the winner's resolve_conflict (a loser whose winner is on
 * another node is frozen until that node confirms the merge). And entries
 * of one pid, which are one registration: its node keeps the one that wins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_registry.h"
#include "log.h"
#include "registry_int.h"
#include "runtime_layers.h"

static void loser_stop(registry_t *g, herd_pid_t loser, herd_pid_t winner, const char *name)
{
    if (herd_stop(g->node, loser, HERD_REASON_NAME_CONFLICT) == 0) {
        g->stats.conflicts_resolved++;
        reg_notify_conflict(g, name, winner, loser);
        herd_log(HERD_LOG_INFO, "registry", "name '%s': a registration made earlier on node "
                 "%016llx wins; stopping the local copy", name, (unsigned long long)winner.node);
    }
}

/* A loser whose winner is on another node: frozen, its state goes to that
 * node, and it stops only once the node that holds the name confirms it ran
 * the merge (reg_merged); its messages then follow to the holder. Returns
 * nonzero when it does not stop now (waiting, or to be judged again later);
 * 0 to stop it at once (a behaviour without state to hand over). */
static int lose_remote(registry_t *g, const char *name, herd_pid_t loser, herd_pid_t winner)
{
    uint8_t *state = NULL;
    size_t len = 0;
    int rc = herd_freeze(g->node, loser, HERD_FREEZE_CONFLICT);
    if (rc == 0 && (rc = herd_state_out(g->node, loser, &state, &len)) == HERD_EINVAL) {
        herd_thaw(g->node, loser, HERD_FREEZE_CONFLICT);
        return 0; /* nothing to hand over */
    }
    uint64_t attempt = ++g->merge_attempts;
    if (rc == 0)
        rc = reg_send_merge(g, winner.node, name, loser.serial, attempt, state, len);
    free(state);
    reg_merging_t *m = rc ? NULL : calloc(1, sizeof(*m));
    if (m == NULL || u64map_put(&g->merging, loser.serial, m) != 0) {
        free(m);
        herd_thaw(g->node, loser, HERD_FREEZE_CONFLICT); /* judged again at the next check */
        g->resettle = 1;
        return 1;
    }
    m->deadline = herd_node_now(g->node) + REGISTRY_MERGE_WAIT_MS;
    m->attempt = attempt;
    snprintf(m->name, sizeof(m->name), "%s", name);
    return 1;
}

/* The loser was not merged where it sent its state: that node's holder is
 * on `holder.node` (it moved on). Send the state there, a bounded number of
 * times; 0 when sent. */
static int merge_redirect(registry_t *g, reg_merging_t *m, herd_pid_t loser, herd_pid_t holder)
{
    if (herd_pid_is_none(holder) || holder.node == g->self_node ||
        m->hops >= REGISTRY_MERGE_HOPS)
        return HERD_ENOENT;
    uint8_t *state = NULL;
    size_t len = 0;
    uint64_t attempt = ++g->merge_attempts;
    int rc = herd_state_out(g->node, loser, &state, &len);
    if (rc == 0)
        rc = reg_send_merge(g, holder.node, m->name, loser.serial, attempt, state, len);
    free(state);
    if (rc)
        return rc;
    m->attempt = attempt;
    m->hops++;
    m->deadline = herd_node_now(g->node) + REGISTRY_MERGE_WAIT_MS;
    g->stats.merges_redirected++;
    return u64map_put(&g->merging, loser.serial, m);
}

void reg_merged(registry_t *g, uint64_t serial, uint64_t attempt, int ok, herd_pid_t holder)
{
    reg_merging_t *m = u64map_get(&g->merging, serial);
    if (m && attempt && m->attempt != attempt) {
        /* the answer to an earlier attempt that timed out (a partition held
         * it back): the loser ran on since, so what that node merged is not
         * all of its state; only the current attempt's answer counts */
        g->stats.merges_stale++;
        return;
    }
    m = u64map_del(&g->merging, serial);
    herd_pid_t loser = {g->self_node, g->self_inc, serial};
    if (m == NULL || !herd_is_alive(g->node, loser) ||
        !(herd_is_frozen(g->node, loser) & HERD_FREEZE_CONFLICT)) {
        free(m);
        return;
    }
    if (!ok && merge_redirect(g, m, loser, holder) == 0)
        return; /* still frozen: the holder's node answers next */
    if (!ok || herd_pid_is_none(holder)) {
        /* not merged: it resumes, and the conflict is judged again */
        free(m);
        g->stats.merges_abandoned++;
        herd_thaw(g->node, loser, HERD_FREEZE_CONFLICT);
        g->resettle = 1;
        return;
    }
    herd_forward_mailbox(g->node, loser, holder);
    loser_stop(g, loser, holder, m->name);
    free(m);
}

/* In groups of 64 until none is due: each one answered leaves the map or
 * gets a later deadline, so the groups end. */
void reg_merging_expire(registry_t *g)
{
    uint64_t now = herd_node_now(g->node), due[64];
    size_t n;
    do {
        size_t cursor = 0;
        n = 0;
        for (u64map_slot_t *s; n < 64 && (s = u64map_next(&g->merging, &cursor)) != NULL;)
            if (((reg_merging_t *)s->value)->deadline <= now)
                due[n++] = s->key;
        for (size_t i = 0; i < n; i++)
            reg_merged(g, due[i], 0, 0, HERD_PID_NONE); /* attempt 0: whichever is current */
    } while (n == 64);
}

typedef int (*entry_order_fn)(const awmap_t *m, const reg_value_t *a, const awmap_entry_t *ea,
                              const reg_value_t *b, const awmap_entry_t *eb);

/* Whether another entry of e's pid wins over e. */
static int outranked(const registry_t *g, const awmap_entry_t *entries, const awmap_entry_t *e,
                     const reg_value_t *v, entry_order_fn wins)
{
    for (const awmap_entry_t *f = entries; f; f = awmap_next(f)) {
        if (f == e)
            continue;
        reg_value_t w = reg_value_decode(g->map, f, NULL);
        if (herd_pid_equal(w.pid, v->pid) && wins(g->map, &w, f, v, e))
            return 1;
    }
    return 0;
}

/* Entries of one pid are one registration: two of them meet when it was
 * written on two nodes at once (metadata updated on both, or one process
 * joined to a group on both). The pid's node removes every one but the
 * winner (by `wins`), so each node ends with one entry, the same everywhere. */
static void prune_same_pid(registry_t *g, const char *name, entry_order_fn wins)
{
    const awmap_entry_t *entries = awmap_get(g->map, name, strlen(name));
    awmap_dot_t buf[8];
    reg_vec_t dots = REG_VEC_ON(buf);
    for (const awmap_entry_t *e = entries; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (!reg_is_local(g, v.pid) || !outranked(g, entries, e, &v, wins))
            continue;
        if (reg_vec_push(&dots, &e->dot, sizeof(e->dot)) != 0) {
            reg_alloc_failed(g, "a registration's entries", 0);
            g->resettle = 1; /* pruned at the next check */
            break;
        }
    }
    if (dots.n)
        reg_local_change(g, name, NULL, 0, dots.items, dots.n, 0);
    reg_vec_free(&dots);
}

/* Every node sees the same entries and picks the same winner; each stops its
 * own losers, whose registrations then go with them (the exit hook). */
void reg_settle(registry_t *g, const char *name)
{
    herd_node_t *n = g->node;
    if (reg_is_group_key(name, strlen(name))) {
        /* a membership: its key names one pid, so its entries are never a
         * conflict and no process stops over one */
        prune_same_pid(g, name, reg_member_wins);
        return;
    }
    prune_same_pid(g, name, reg_value_wins);
    const awmap_entry_t *entries = awmap_get(g->map, name, strlen(name));
    reg_value_t win;
    if (reg_winner(g, entries, &win) == NULL)
        return;
    if (reg_draining(g, win.pid)) {
        /* the winner may have moved on already: judge once its node is done */
        g->resettle = 1;
        return;
    }
    for (const awmap_entry_t *e = entries; e; e = awmap_next(e)) {
        reg_value_t v = reg_value_decode(g->map, e, NULL);
        if (reg_hidden(g, v.pid) || herd_pid_equal(v.pid, win.pid))
            continue;
        if (!herd_is_alive(n, v.pid) || u64map_get(&g->merging, v.pid.serial))
            continue; /* gone, or frozen waiting for its winner's node */
        if (herd_is_frozen(n, v.pid) & HERD_FREEZE_MOVE) {
            g->resettle = 1; /* on its way to another node: judged once it arrives */
            continue;
        }
        if (win.pid.node != g->self_node && lose_remote(g, name, v.pid, win.pid) != 0)
            continue;
        /* a winner here: the loser's state goes to its resolve_conflict first */
        uint8_t *state = NULL;
        size_t len = 0;
        if (herd_state_out(n, v.pid, &state, &len) == 0)
            herd_merge_into(n, win.pid, state, len);
        free(state);
        loser_stop(g, v.pid, win.pid, name);
    }
}
