/*
 * call_async.c - herd_node_call_async: a call from code outside processes
 * whose answer comes to a callback instead of a loop run nested in the
 * caller.
 *
 * It is herd_node_call's call with a waiter of its own on the heap instead
 * of the stack (proc_node_call_start, proc_complete_call): the answer is
 * written into the waiter wherever it arrives (a local reply inside the
 * callee's handler, a remote reply, the call's timer, the callee's exit).
 * The callback must not run there: the callee's handler is still on the
 * stack, and a callback that started another call would run inside it. So
 * the answered waiter joins the node's done list, which the node's idle
 * handle runs on the loop (herd_node_poll too, under a virtual clock), in
 * the order the answers came.
 */
#include "node.h"
#include "runtime_layers.h"

#include <stdlib.h>

int herd_node_call_async(herd_node_t *n, herd_pid_t to, const void *data, size_t len,
                         uint32_t timeout_ms, herd_call_cb cb, void *cbdata)
{
    if (cb == NULL)
        return HERD_EINVAL;
    call_waiter_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return HERD_ENOMEM;
    w->cb = cb;
    w->cbdata = cbdata;
    int rc = proc_node_call_start(n, to, data, len, timeout_ms, w, NULL);
    if (rc)
        free(w);
    return rc;
}

void node_call_done(herd_node_t *n, call_waiter_t *w)
{
    w->next = NULL;
    if (n->done_tail)
        n->done_tail->next = w;
    else
        n->done_head = w;
    n->done_tail = w;
    node_kick(n);
}

/* Take the done list and call each callback with its answer, or with
 * `forced_rc` and no reply when that is nonzero. Answers that arrive
 * meanwhile wait for the next turn. */
static int done_run(herd_node_t *n, int forced_rc)
{
    call_waiter_t *w = n->done_head;
    n->done_head = n->done_tail = NULL;
    int ran = 0;
    loop_frame_t f;
    node_loop_enter(n, &f); /* a callback that blocks would nest the loop */
    while (w) {
        call_waiter_t *next = w->next;
        if (forced_rc) {
            herd_reply_free(&w->reply);
            w->reply.status = forced_rc;
        }
        w->cb(w->cbdata, forced_rc ? forced_rc : w->runtime_error, &w->reply);
        herd_reply_free(&w->reply); /* unless the callback took it */
        free(w);
        w = next;
        ran++;
    }
    node_loop_leave(&f);
    return ran;
}

int node_run_done(herd_node_t *n)
{
    return done_run(n, 0);
}

void node_calls_cancel(herd_node_t *n)
{
    size_t cursor = 0;
    for (u64map_slot_t *s; (s = u64map_next(&n->calls, &cursor)) != NULL;) {
        pending_call_t *pc = s->value;
        if (pc->waiter && pc->waiter->cb) {
            node_call_done(n, pc->waiter);
            pc->waiter = NULL;
        }
    }
    done_run(n, HERD_ESHUTDOWN);
}
