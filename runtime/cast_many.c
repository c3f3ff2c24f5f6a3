/*
 * cast_many.c - herd_node_cast_many: one cast to a list of pids, whose
 * bytes travel to each other node once rather than once per pid (a
 * group's publish, herd_group.h).
 *
 * How it works. The pids of other nodes are sorted by node and start, and
 * each run of one start goes to the network in one call of the node's
 * send_many net op with the run's serials, which packs them with one copy
 * of the data into as few messages as their bound allows (PROTOCOL.md,
 * cast_many); the receiving node casts to each. Those go first: a payload
 * too large for a message between nodes shows at the first run, before
 * anything was sent, so HERD_ETOOBIG means that nothing went. Then each pid
 * of this node gets it as herd_node_cast would give it (a moved process's
 * redirect included).
 *
 * This is the process core: other nodes only through n->net (node.h).
 */
#include "node.h"

#include <limits.h>
#include <stdlib.h>

/* Whether `p` is a pid of another node (not of any start of this one). */
static int is_remote(const herd_node_t *n, herd_pid_t p)
{
    return p.node != n->id;
}

static int by_start(const void *a, const void *b)
{
    const herd_pid_t *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    if (x->incarnation != y->incarnation)
        return x->incarnation < y->incarnation ? -1 : 1;
    return 0;
}

/* The pids of other nodes, one net op per start. Returns how many were
 * sent, or HERD_ENOMEM / HERD_ETOOBIG when nothing was. */
static int cast_remote(herd_node_t *n, herd_pid_t from, const herd_pid_t *to, size_t count,
                       size_t remote, const void *data, size_t len)
{
    herd_pid_t *pids = malloc(remote * sizeof(*pids));
    uint64_t *serials = malloc(remote * sizeof(*serials));
    int sent = 0;
    if (pids == NULL || serials == NULL) {
        sent = HERD_ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (is_remote(n, to[i]))
            pids[k++] = to[i];
    qsort(pids, remote, sizeof(*pids), by_start);
    for (size_t i = 0, run; i < remote; i += run) {
        for (run = 0; i + run < remote && by_start(&pids[i], &pids[i + run]) == 0; run++)
            serials[run] = pids[i + run].serial;
        int rc = n->net->send_many(n, pids[i].node, pids[i].incarnation, from, serials, run,
                                   data, len);
        if (rc == HERD_ETOOBIG && sent == 0) {
            sent = rc; /* the data does not fit a message: it fits none */
            goto out;
        }
        if (rc > 0)
            sent += rc; /* a node down, unknown, full: its pids skipped */
    }
out:
    free(serials);
    free(pids);
    return sent;
}

int herd_node_cast_many(herd_node_t *n, herd_pid_t from, const herd_pid_t *to, size_t count,
                        const void *data, size_t len)
{
    if ((to == NULL && count > 0) || (data == NULL && len > 0) || count > INT_MAX)
        return HERD_EINVAL;
    if (herd_pid_is_none(from))
        from = node_outside_pid(n);
    else if (!node_is_local(n, from))
        return HERD_EINVAL;
    if (len > n->max_message)
        return HERD_ETOOBIG;
    size_t remote = 0;
    for (size_t i = 0; i < count; i++)
        remote += is_remote(n, to[i]);
    int sent = remote ? cast_remote(n, from, to, count, remote, data, len) : 0;
    if (sent < 0)
        return sent;
    for (size_t i = 0; i < count; i++)
        if (!is_remote(n, to[i]) &&
            proc_deliver(n, to[i], HERD_MSG_CAST, from, 0, 0, data, len, 0) == 0)
            sent++;
    return sent;
}

int herd_cast_many(herd_proc_t *self, const herd_pid_t *to, size_t count, const void *data,
                   size_t len)
{
    return herd_node_cast_many(self->node, herd_self(self), to, count, data, len);
}
