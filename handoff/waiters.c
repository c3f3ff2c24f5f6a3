/*
 * waiters.c - callers of herd_start_child_async waiting for the name.
 *
 * A start is answered once the name is registered anywhere: here, or on
 * the owner that the spec reached, which may be another node. So a waiter
 * waits on the registry, not on this node's children: each new registration
 * settles the waiters of its name hash, and the tick answers HERD_ETIMEDOUT
 * to those past their deadline.
 */
#include <stdlib.h>
#include <string.h>

#include "dsup_int.h"
#include "log.h"
#include "registry_layers.h"

int waiters_add(dsup_t *d, const char *name, uint32_t timeout_ms, herd_start_cb cb, void *data)
{
    start_waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->name = strdup(name)) == NULL) {
        free(w);
        return HERD_ENOMEM;
    }
    w->hash = herd_registry_name_hash(name);
    w->deadline = herd_node_now(d->node) + timeout_ms;
    w->cb = cb;
    w->data = data;
    w->next = u64map_get(&d->waiters, w->hash);
    if (u64map_put(&d->waiters, w->hash, w) != 0) {
        free(w->name);
        free(w);
        return HERD_ENOMEM;
    }
    d->waiter_count++;
    return 0;
}

/* Answer the waiters of one name hash that are done: registered, or (with
 * `now` nonzero) past their deadline. */
static void waiters_settle(dsup_t *d, uint64_t hash, uint64_t now)
{
    start_waiter_t *done = NULL, *keep = NULL;
    for (start_waiter_t *w = u64map_del(&d->waiters, hash), *next; w; w = next) {
        next = w->next;
        herd_pid_t pid;
        int found = herd_whereis(d->node, w->name, &pid, NULL) == 0;
        start_waiter_t **to = found || (now && now >= w->deadline) ? &done : &keep;
        w->next = *to;
        *to = w;
    }
    if (keep && u64map_put(&d->waiters, hash, keep) != 0)
        herd_log(HERD_LOG_ERROR, "dsup", "out of memory keeping start waiters");
    for (start_waiter_t *w = done, *next; w; w = next) { /* callbacks last: they may start */
        next = w->next;
        herd_start_result_t res = {0};
        if (herd_whereis(d->node, w->name, &res.pid, NULL) != 0)
            res.status = HERD_ETIMEDOUT;
        d->waiter_count--;
        w->cb(w->data, &res);
        free(w->name);
        free(w);
    }
}

void waiters_on_name_added(void *data, uint64_t hash)
{
    dsup_t *d = data;
    if (d->waiter_count && u64map_get(&d->waiters, hash))
        waiters_settle(d, hash, 0);
}

/* Deadlines: the tick looks at every waiter (a compare each). */
void waiters_expire(dsup_t *d, uint64_t now)
{
    uint64_t *due = malloc(d->waiter_count * sizeof(*due));
    size_t n = 0, cursor = 0;
    if (due == NULL)
        return;
    for (u64map_slot_t *s; (s = u64map_next(&d->waiters, &cursor)) != NULL;)
        for (start_waiter_t *w = s->value; w && n < d->waiter_count; w = w->next)
            if (now >= w->deadline) {
                due[n++] = s->key;
                break;
            }
    for (size_t i = 0; i < n; i++)
        waiters_settle(d, due[i], now);
    free(due);
}

/* With the supervisor: unanswered waiters go without a callback. */
void waiters_free(dsup_t *d)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&d->waiters, &cursor)) != NULL;) {
        for (start_waiter_t *w = s->value, *next; w; w = next) {
            next = w->next;
            free(w->name);
            free(w);
        }
    }
    u64map_fini(&d->waiters);
}
