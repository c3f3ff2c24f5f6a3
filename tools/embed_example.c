/*
 * embed_example - a program that embeds herd: a full cluster member with a
 * service of its own ("greeter": counts the greetings it answered, and the
 * count moves with it), controllable with ringctl. Each instance starts the
 * child "welcome" from its own code (one starts it, the others find it
 * running). SIGTERM or SIGINT moves its children to the other members with
 * their state, then it leaves the cluster and exits 0 (herd_node_shutdown);
 * a second signal leaves without waiting. Usage: README, "Embedding herd".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd.h"
#include "node_control.h"

static int greeter_init(herd_proc_t *self, const void *arg, size_t len, void **state)
{
    (void)self, (void)arg, (void)len;
    return (*state = calloc(1, sizeof(uint64_t))) ? 0 : HERD_ENOMEM;
}

static int greeter_call(herd_proc_t *self, void *state, const herd_msg_t *msg,
                        herd_from_t from)
{
    char out[512];
    int n = snprintf(out, sizeof(out), "%.*s, greeting #%llu from %s", (int)msg->len,
                     (const char *)msg->data, (unsigned long long)++*(uint64_t *)state,
                     herd_node_name(herd_proc_node(self)));
    return herd_reply(herd_proc_node(self), from, 0, out, (size_t)n);
}

static int greeter_out(herd_proc_t *self, void *state, uint8_t **out, size_t *len)
{
    (void)self;
    *len = sizeof(uint64_t);
    return (*out = malloc(*len)) ? (memcpy(*out, state, *len), 0) : HERD_ENOMEM;
}

static int greeter_in(herd_proc_t *self, const uint8_t *data, size_t len, void **state)
{
    int rc = len == sizeof(uint64_t) ? greeter_init(self, NULL, 0, state) : HERD_EINVAL;
    return rc ? rc : (memcpy(*state, data, len), 0);
}

static void greeter_end(herd_proc_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    free(state);
}

static const herd_behaviour_t greeter = {.name = "greeter", .init = greeter_init,
                                         .handle_call = greeter_call, .terminate = greeter_end,
                                         .handoff_out = greeter_out, .handoff_in = greeter_in};

static void started(void *node, const herd_start_result_t *r)
{
    printf("%s: welcome: %s\n", herd_node_name(node), r->status ? herd_strerror(r->status)
                                   : r->already_started ? "already runs" : "started");
}

static void start_welcome(uv_timer_t *t)
{
    herd_child_req_t req = {.name = "welcome", .service = "greeter"};
    herd_start_child_async(t->data, &req, 5000, started, t->data);
}

static void left(void *node, int status)
{
    printf("%s: left the cluster: %s\n", herd_node_name(node),
           status ? herd_strerror(status) : "every child moved off");
    if (status != HERD_ESHUTDOWN)
        uv_stop(herd_node_loop(node));
}

static void on_signal(uv_signal_t *h, int signum)
{
    printf("%s: signal %d: moving the children off, then leaving\n", herd_node_name(h->data),
           signum);
    if (herd_node_shutdown(h->data, 30000, left, h->data) == HERD_ESHUTDOWN)
        herd_node_shutdown_now(h->data); /* a second signal: no more waiting */
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

int main(int argc, char **argv)
{
    const char *cookie = getenv("HERD_COOKIE"), *cookie_file = getenv("HERD_COOKIE_FILE");
    char secret[HERD_COOKIE_MAX], why[600];
    size_t secret_len = cookie ? strlen(cookie) : 0;
    if (cookie_file && herd_cookie_read(cookie_file, secret, sizeof(secret), &secret_len, why,
                                        sizeof(why)) != 0)
        return fprintf(stderr, "embed_example: %s\n", why), 1;
    if (argc < 3 || (cookie_file == NULL && (cookie == NULL || secret_len < HERD_COOKIE_MIN)))
        return fprintf(stderr, "usage: HERD_COOKIE=SECRET embed_example NAME PORT [SEED_PORT]\n"
                               "   or: HERD_COOKIE_FILE=FILE embed_example ...\n"), 2;
    char listen[64], seed[64], control[300];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%s", argv[2]);
    snprintf(seed, sizeof(seed), "tcp://127.0.0.1:%s", argc > 3 ? argv[3] : argv[2]);
    const char *seeds[] = {seed};
    herd_node_t *node;
    herd_control_t *ctl;
    herd_node_config_t nc = {.name = argv[1]};
    herd_cluster_config_t cc = {.listen = listen, .seeds = seeds, .seed_count = argc > 3,
                                .secret = cookie_file ? secret : cookie,
                                .secret_len = secret_len};
    int rc = herd_control_default_address(NULL, argv[1], control, sizeof(control));
    if (rc == 0)
        rc = herd_node_new(&nc, &node);
    if (rc == 0 && (rc = herd_cluster_start(node, &cc)) == 0 &&
        (rc = herd_registry_start(node)) == 0 && (rc = herd_dsup_start(node, NULL)) == 0 &&
        (rc = herd_service_register(node, "greeter", &greeter)) == 0)
        rc = herd_control_start(node, control, &ctl);
    if (rc)
        return fprintf(stderr, "embed_example: %s\n", herd_strerror(rc)), 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a file */
    uv_timer_t timer; /* the cluster forms meanwhile */
    uv_signal_t sig[2];
    uv_timer_init(herd_node_loop(node), &timer);
    timer.data = sig[0].data = sig[1].data = node;
    uv_timer_start(&timer, start_welcome, 1000, 0);
    for (int i = 0; i < 2; i++) {
        uv_signal_init(herd_node_loop(node), &sig[i]);
        uv_signal_start(&sig[i], on_signal, i ? SIGINT : SIGTERM);
    }
    herd_node_run(node); /* until left() stops it */
    uv_close((uv_handle_t *)&timer, on_closed);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&sig[i], on_closed);
    herd_control_stop(ctl);
    herd_node_free(node);
    return 0;
}
