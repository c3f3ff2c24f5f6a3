/*
 * registry_notify.c - the registry's events (herd_events.h): a name
 * registered or unregistered, a group joined or left, as this node's
 * replica sees it, and a conflict this node resolved by stopping its local
 * loser.
 *
 * The map's observer sees entries come and go in the middle of a change,
 * when nobody may be called back. So it only notes each (key, pid) whose
 * entries changed (a name's key, or a membership's: registry_group.c), with the net count (+1 an entry added, -1 one removed),
 * and the events are told once the change is complete (reg_settle_touched):
 * a pid with no entry before and one after is "registered", the reverse
 * "unregistered" (for a group: joined, left). A metadata update, which
 * replaces an entry of the same pid, tells nothing. Only when some
 * subscriber wants the key's kind of events does any of this run.
 */
#include <stdlib.h>
#include <string.h>

#include "herd_events.h"
#include "herd_group.h"
#include "registry_int.h"
#include "runtime_layers.h"

typedef struct reg_note {
    herd_pid_t pid;
    int net;    /* entries added minus entries removed */
    int group;  /* a membership's key (else a name's) */
    char *name; /* the key, owned */
} reg_note_t;

/* Entries of `pid` under `name` now (visible or hidden). */
static int entries_of(const registry_t *g, const char *name, herd_pid_t pid)
{
    int n = 0;
    for (const awmap_entry_t *e = awmap_get(g->map, name, strlen(name)); e; e = awmap_next(e))
        n += herd_pid_equal(reg_value_decode(g->map, e, NULL).pid, pid);
    return n;
}

/* The notes are found by a hash of (name, pid): a join of a million names
 * notes as many. Two pairs with one hash (2^-64) would each be noted apart
 * and told by their own counts. */
static uint64_t note_hash(const char *key, size_t klen, herd_pid_t pid)
{
    uint64_t h = awmap_key_hash(key, klen) ^ (pid.node * 0x9e3779b97f4a7c15ull) ^
                 (pid.incarnation * 0xc2b2ae3d27d4eb4full) ^ (pid.serial * 0x165667b19e3779f9ull);
    return h ? h : 1; /* u64map keys are nonzero */
}

static reg_note_t *note_find(registry_t *g, uint64_t h, const char *key, size_t klen,
                             herd_pid_t pid)
{
    uintptr_t at = (uintptr_t)u64map_get(&g->note_index, h);
    if (at == 0)
        return NULL;
    reg_note_t *x = &REG_VEC_AT(&g->notes, reg_note_t, at - 1);
    if (herd_pid_equal(x->pid, pid) && strncmp(x->name, key, klen) == 0 && x->name[klen] == '\0')
        return x;
    return NULL;
}

void reg_notify_entry(registry_t *g, const char *key, size_t klen, const awmap_entry_t *e,
                      int delta)
{
    int group = reg_is_group_key(key, klen);
    if (klen == 0 || (!group && (unsigned char)key[0] < 0x20)) /* child specs */
        return;
    herd_event_kind_t in = group ? HERD_EV_GROUP_JOINED : HERD_EV_NAME_REGISTERED;
    herd_event_kind_t out = group ? HERD_EV_GROUP_LEFT : HERD_EV_NAME_UNREGISTERED;
    if (!herd_events_wanted(g->node, in) && !herd_events_wanted(g->node, out))
        return;
    herd_pid_t pid = reg_value_decode(g->map, e, NULL).pid;
    uint64_t h = note_hash(key, klen, pid);
    reg_note_t *x = note_find(g, h, key, klen, pid);
    if (x) {
        x->net += delta;
        return;
    }
    reg_note_t note = {.pid = pid, .net = delta, .group = group, .name = malloc(klen + 1)};
    if (note.name == NULL || reg_vec_push(&g->notes, &note, sizeof(note)) != 0) {
        free(note.name);
        reg_alloc_failed(g, "a name event", 0); /* logged and counted; the registry is whole */
        return;
    }
    memcpy(note.name, key, klen);
    note.name[klen] = '\0';
    if (u64map_get(&g->note_index, h) == NULL &&
        u64map_put(&g->note_index, h, (void *)(uintptr_t)g->notes.n) != 0)
        reg_alloc_failed(g, "a name event's index", 0); /* found by a later note: told apart */
}

/* One note's event, if its (key, pid) went from no entry to some or back. */
static void note_tell(registry_t *g, const reg_note_t *x)
{
    int after = x->net ? entries_of(g, x->name, x->pid) : 0;
    int before = after - x->net;
    herd_event_t ev = {.name = x->name, .pid = x->pid};
    char group[HERD_GROUP_MAX + 1];
    if (before == 0 && after > 0)
        ev.kind = x->group ? HERD_EV_GROUP_JOINED : HERD_EV_NAME_REGISTERED;
    else if (before > 0 && after == 0)
        ev.kind = x->group ? HERD_EV_GROUP_LEFT : HERD_EV_NAME_UNREGISTERED;
    if (ev.kind == 0)
        return;
    if (x->group) {
        if (reg_group_key_split(x->name, strlen(x->name), group, &ev.pid) != 0)
            return; /* a key no join writes (a peer's garbage): no membership */
        ev.name = group;
    }
    herd_event_emit(g->node, &ev);
}

/* Tell what the change left noted (the list is taken first: a subscriber
 * may change the registry, which notes a new list told after it). */
void reg_notify_deliver(registry_t *g)
{
    while (g->notes.n) {
        reg_vec_t list = g->notes;
        g->notes = (reg_vec_t){0};
        u64map_fini(&g->note_index);
        u64map_init(&g->note_index);
        for (size_t i = 0; i < list.n; i++) {
            reg_note_t *x = &REG_VEC_AT(&list, reg_note_t, i);
            note_tell(g, x);
            free(x->name);
        }
        reg_vec_free(&list);
    }
}

void reg_notify_conflict(registry_t *g, const char *name, herd_pid_t winner, herd_pid_t loser)
{
    herd_event_t ev = {.kind = HERD_EV_NAME_CONFLICT, .name = name, .pid = winner, .other = loser,
                       .reason = HERD_REASON_NAME_CONFLICT};
    herd_event_emit(g->node, &ev);
}

void reg_notify_free(registry_t *g)
{
    for (size_t i = 0; i < g->notes.n; i++)
        free(REG_VEC_AT(&g->notes, reg_note_t, i).name);
    reg_vec_free(&g->notes);
    u64map_fini(&g->note_index);
}
