/* counter_cluster.c - see counter_cluster.h. */
#include "counter_cluster.h"

#include "counter.h"
#include "dsup_layers.h"
#include "herd_dsup.h"

static int on_start(regsim_t *rs, int i, herd_node_t *n, void *data)
{
    (void)rs, (void)i, (void)data;
    int rc = herd_dsup_start(n, NULL);
    return rc ? rc : herd_service_register(n, "counter", &counter_behaviour);
}

static int on_poll(regsim_t *rs, int i, herd_node_t *n, void *data)
{
    (void)rs, (void)i, (void)data;
    return herd_dsup_poll(n);
}

const regsim_hooks_t counter_cluster_hooks = {.on_start = on_start, .on_poll = on_poll};
