/*
 * multi_call.c - herd_node_multi_call_async: one request to a list of
 * pids, their answers gathered into one callback (a group's multi-call,
 * herd_group.h).
 *
 * How it works. Each pid gets its own herd_node_call_async, all with the
 * same timeout, armed in the same loop turn; every one of them is answered
 * exactly once, on the loop (a reply, the runtime's error, its timeout, or
 * HERD_ESHUTDOWN when the node is freed: call_async.c), so counting the
 * answers down to zero is enough to know when all are in, and no pid can
 * hold the others up past the timeout. The last answer runs the user's
 * callback from the done list's turn, never inside the start. When no call
 * started at all (n 0, or each pid failed at once), a waiter of the same
 * done list with no call behind it brings the callback to the next turn,
 * and herd_node_free tells it as it tells the calls.
 */
#include "node.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct multi_call multi_call_t;

/* The callback data of one pid's call: which gathering it answers. */
typedef struct mc_slot {
    multi_call_t *mc;
} mc_slot_t;

struct multi_call {
    herd_multi_call_cb cb;
    void *cbdata;
    size_t n;
    size_t waiting;              /* calls started and not answered yet */
    herd_multi_reply_t *replies; /* n, in the list's order; each data owned */
    mc_slot_t *slots;            /* n, beside replies in the same allocation */
};

_Static_assert(sizeof(multi_call_t) % _Alignof(herd_multi_reply_t) == 0 &&
                   sizeof(herd_multi_reply_t) % _Alignof(mc_slot_t) == 0,
               "the replies and the slots follow the header, aligned");

/* The gathering of n answers, replies and slots in one allocation. */
static multi_call_t *mc_new(size_t n)
{
    size_t each = sizeof(herd_multi_reply_t) + sizeof(mc_slot_t);
    if (n > (SIZE_MAX - sizeof(multi_call_t)) / each)
        return NULL;
    multi_call_t *mc = calloc(1, sizeof(*mc) + n * each);
    if (mc == NULL)
        return NULL;
    mc->n = n;
    mc->replies = (herd_multi_reply_t *)(mc + 1);
    mc->slots = (mc_slot_t *)(mc->replies + n);
    return mc;
}

/* Every answer is in: the user's callback, then everything goes. */
static void mc_finish(multi_call_t *mc)
{
    mc->cb(mc->cbdata, mc->replies, mc->n);
    for (size_t i = 0; i < mc->n; i++)
        free(mc->replies[i].data);
    free(mc);
}

/* One pid's call is answered (herd_call_cb). */
static void mc_answered(void *data, int rc, herd_reply_t *reply)
{
    mc_slot_t *s = data;
    multi_call_t *mc = s->mc;
    herd_multi_reply_t *r = &mc->replies[s - mc->slots];
    r->status = rc ? rc : reply->status;
    if (rc == 0) { /* take the bytes: they live until mc_finish */
        r->data = reply->data;
        r->len = reply->len;
        reply->data = NULL;
        reply->len = 0;
    }
    if (--mc->waiting == 0)
        mc_finish(mc);
}

/* No call started: the done list's waiter brings the callback (herd_call_cb). */
static void mc_nothing_started(void *data, int rc, herd_reply_t *reply)
{
    (void)rc, (void)reply;
    mc_finish(data);
}

int herd_node_multi_call_async(herd_node_t *n, const herd_pid_t *to, size_t count,
                               const void *data, size_t len, uint32_t timeout_ms,
                               herd_multi_call_cb cb, void *cbdata)
{
    if (cb == NULL || timeout_ms == 0 || (to == NULL && count > 0) ||
        (data == NULL && len > 0))
        return HERD_EINVAL;
    if (len > n->max_message)
        return HERD_ETOOBIG;
    multi_call_t *mc = mc_new(count);
    if (mc == NULL)
        return HERD_ENOMEM;
    mc->cb = cb;
    mc->cbdata = cbdata;
    for (size_t i = 0; i < count; i++) {
        mc->replies[i].pid = to[i];
        mc->slots[i].mc = mc;
        int rc = herd_node_call_async(n, to[i], data, len, timeout_ms, mc_answered,
                                      &mc->slots[i]);
        if (rc == 0)
            mc->waiting++; /* answered later, never inside this call */
        else
            mc->replies[i].status = rc;
    }
    if (mc->waiting > 0)
        return 0;
    call_waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        free(mc); /* no call started: nothing refers to it */
        return HERD_ENOMEM;
    }
    w->cb = mc_nothing_started;
    w->cbdata = mc;
    node_call_done(n, w);
    return 0;
}
