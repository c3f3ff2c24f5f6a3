/*
 * net_local.c - the net ops of a node in no cluster (node_net_local,
 * node.h): no other node is reachable, and no call from one can be
 * waiting. Sends and monitors of another node's pids fail with
 * HERD_ENOTCONN, a reply to a caller there finds no call (HERD_ENOPROC, a
 * late reply), the rest has nothing to do. herd_cluster_start replaces
 * the table; its free puts this one back.
 */
#include "node.h"

static int local_send(herd_node_t *n, herd_pid_t to, herd_msg_kind_t kind, herd_pid_t from,
                      uint64_t ref, int status, const void *data, size_t len, unsigned flags)
{
    (void)n, (void)to, (void)kind, (void)from, (void)ref, (void)status, (void)data, (void)len,
        (void)flags;
    return HERD_ENOTCONN;
}

static int local_send_call(herd_node_t *n, herd_pid_t to, herd_pid_t from, uint64_t ref,
                           uint64_t deadline, const void *data, size_t len, unsigned flags)
{
    (void)n, (void)to, (void)from, (void)ref, (void)deadline, (void)data, (void)len,
        (void)flags;
    return HERD_ENOTCONN;
}

static int local_send_many(herd_node_t *n, uint64_t node, uint64_t incarnation, herd_pid_t from,
                           const uint64_t *serials, size_t count, const void *data, size_t len)
{
    (void)n, (void)node, (void)incarnation, (void)from, (void)serials, (void)count, (void)data,
        (void)len;
    return HERD_ENOTCONN;
}

static int local_reply(herd_node_t *n, herd_from_t from, int status, const void *data,
                       size_t len, unsigned copies)
{
    (void)n, (void)from, (void)status, (void)data, (void)len, (void)copies;
    return HERD_ENOPROC;
}

static int local_callee_gone(herd_node_t *n, herd_from_t from, int status)
{
    (void)n, (void)from, (void)status;
    return HERD_ENOPROC;
}

static int local_monitor(herd_proc_t *self, herd_pid_t target, uint64_t ref)
{
    (void)self, (void)target, (void)ref;
    return HERD_ENOTCONN;
}

static void local_demonitor(herd_node_t *n, herd_pid_t watcher, herd_pid_t target,
                            uint64_t ref)
{
    (void)n, (void)watcher, (void)target, (void)ref;
}

static void local_release_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref)
{
    (void)n, (void)caller, (void)ref;
}

static void local_move_inbound(herd_node_t *n, herd_pid_t caller, uint64_t ref, herd_pid_t to)
{
    (void)n, (void)caller, (void)ref, (void)to;
}

static void local_close(herd_node_t *n)
{
    (void)n;
}

const node_net_ops_t node_net_local = {
    .send = local_send,
    .send_call = local_send_call,
    .send_many = local_send_many,
    .reply = local_reply,
    .callee_gone = local_callee_gone,
    .monitor = local_monitor,
    .demonitor = local_demonitor,
    .move_inbound = local_move_inbound,
    .release_inbound = local_release_inbound,
    .close = local_close,
};

void node_net_attach(herd_node_t *n, const node_net_ops_t *ops)
{
    n->net = ops;
}

void node_net_detach(herd_node_t *n)
{
    n->net = &node_net_local;
}
