/*
 * consumer - a program built out of herd's tree against an installed herd
 * (tests/install/install_consumer.sh): it starts a node with its cluster,
 * registry, supervisor and control socket, starts a child of its own service
 * by name and calls it, and prints herd_version().
 * Usage: consumer LISTEN_ADDR CONTROL_ADDR
 */
#include <herd/herd.h>
#include <herd/herd_control.h> /* also in herd.h: each public header stands alone */

#include <stdio.h>
#include <string.h>

static int echo_call(herd_proc_t *self, void *state, const herd_msg_t *msg, herd_from_t from)
{
    (void)state;
    return herd_reply(herd_proc_node(self), from, 0, msg->data, msg->len);
}

static const herd_behaviour_t echo = {.name = "echo", .handle_call = echo_call};

static int fail(const char *what, int rc)
{
    fprintf(stderr, "consumer: %s: %s\n", what, herd_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: consumer LISTEN_ADDR CONTROL_ADDR\n"), 2;
    if (strcmp(herd_version(), HERD_VERSION_STRING) != 0)
        return fprintf(stderr, "consumer: library %s, headers %s\n", herd_version(),
                       HERD_VERSION_STRING), 1;
    printf("herd_version %s (%d.%d.%d)\n", herd_version(), HERD_VERSION_MAJOR,
           HERD_VERSION_MINOR, HERD_VERSION_PATCH);

    int checked = herd_address_check(argv[1]); /* herd_nodeconf.h, through herd.h */
    if (checked)
        return fail("herd_address_check", checked);
    const char *secret = "install-consumer-secret-of-32-by";
    herd_node_config_t nc = {.name = "consumer"};
    herd_cluster_config_t cc = {.listen = argv[1], .secret = secret,
                                .secret_len = strlen(secret)};
    herd_node_t *node;
    herd_control_t *ctl;
    int rc = herd_node_new(&nc, &node);
    if (rc)
        return fail("herd_node_new", rc);
    if ((rc = herd_cluster_start(node, &cc)) || (rc = herd_registry_start(node)) ||
        (rc = herd_dsup_start(node, NULL)) || (rc = herd_service_register(node, "echo", &echo)))
        return fail("starting the node", rc);
    if ((rc = herd_control_start(node, argv[2], &ctl)))
        return fail("herd_control_start", rc);

    herd_child_req_t req = {.name = "hello", .service = "echo"};
    herd_start_result_t started;
    if ((rc = herd_start_child(node, &req, 5000, &started)) || (rc = started.status))
        return fail("herd_start_child", rc);
    herd_reply_t reply;
    if ((rc = herd_node_call_name(node, "hello", "hi", 2, 5000, &reply)) || (rc = reply.status))
        return fail("herd_node_call_name", rc);
    int same = reply.len == 2 && memcmp(reply.data, "hi", 2) == 0;
    herd_reply_free(&reply);
    if (!same)
        return fprintf(stderr, "consumer: hello answered something else\n"), 1;

    herd_ring_t *ring = herd_ring_new();
    const char *owner = NULL;
    if (ring == NULL || herd_ring_add(ring, herd_node_name(node), 128) != 0 ||
        herd_ring_owner(ring, "hello", 5, &owner) != 0 || owner == NULL)
        return fprintf(stderr, "consumer: ring\n"), 1;
    printf("node %s: child hello answered, ring owner %s\n", herd_node_name(node), owner);
    herd_ring_free(ring);

    herd_control_stop(ctl);
    herd_node_free(node);
    return 0;
}
