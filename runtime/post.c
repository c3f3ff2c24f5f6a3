/*
 * post.c - herd_node_post: the one way into a node from another thread.
 *
 * Everything else in herd runs on the node's loop thread. A program with
 * threads of its own (a web server's workers, a GUI) hands the loop a
 * function instead: the post is queued under a mutex and a uv_async_t wakes
 * the loop, whose callback takes the whole queue and runs it in order.
 *
 * A thread may still hold the node's address when the node is freed, so a
 * post never touches the node: it looks the address up among the live
 * queues, under the same one lock that herd_node_free takes to unlist the
 * node's queue. One lock for the list and every queue is enough: posts are
 * not a hot path, and it leaves no moment where a post could meet a queue
 * half torn down. The queue is bounded (HERD_POST_MAX): a loop that does not
 * keep up makes posts fail with HERD_EFULL rather than grow without end.
 */
#include "node.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct post_item {
    struct post_item *next;
    herd_post_fn fn;
    void *data;
} post_item_t;

typedef struct node_posts {
    const herd_node_t *node; /* compared only: never dereferenced off the loop */
    uv_async_t async;
    post_item_t *head, *tail;
    size_t count;
    struct node_posts *next_live;
    /* loop thread only: who keeps the handle referenced (the loop alive):
     * herd_node_run for its run, a run that began with posts waiting */
    uint8_t run_ref, held;
} node_posts_t;

static pthread_mutex_t posts_mu = PTHREAD_MUTEX_INITIALIZER;
static node_posts_t *posts_live; /* the queues of the live nodes */

/* The queue of live node `n`, or NULL; under posts_mu. */
static node_posts_t *posts_find(const herd_node_t *n)
{
    node_posts_t *q = posts_live;
    while (q && q->node != n)
        q = q->next_live;
    return q;
}

/* Call every post of `list` with `status`, in order, and free it. */
static void posts_run(herd_node_t *n, post_item_t *list, int status)
{
    loop_frame_t f;
    node_loop_enter(n, &f); /* a post that blocks would nest the loop */
    while (list) {
        post_item_t *it = list;
        list = it->next;
        it->fn(it->data, status);
        free(it);
    }
    node_loop_leave(&f);
}

/* Reference the handle while someone wants the loop kept for posts. */
static void posts_update_ref(node_posts_t *q)
{
    if (q->run_ref || q->held)
        uv_ref((uv_handle_t *)&q->async);
    else
        uv_unref((uv_handle_t *)&q->async);
}

static void posts_on_async(uv_async_t *h)
{
    node_posts_t *q = h->data;
    if (q->held) { /* the run that waited for these goes on as before */
        q->held = 0;
        posts_update_ref(q);
    }
    pthread_mutex_lock(&posts_mu);
    post_item_t *list = q->head;
    q->head = q->tail = NULL;
    q->count = 0;
    pthread_mutex_unlock(&posts_mu);
    posts_run((herd_node_t *)q->node, list, 0);
}

int node_posts_init(herd_node_t *n)
{
    node_posts_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return HERD_ENOMEM;
    if (uv_async_init(n->loop, &q->async, posts_on_async) != 0) {
        free(q);
        return HERD_EIO;
    }
    q->async.data = q;
    q->node = n;
    /* an empty queue must not keep herd_node_run_for from ending early */
    uv_unref((uv_handle_t *)&q->async);
    pthread_mutex_lock(&posts_mu);
    q->next_live = posts_live;
    posts_live = q;
    pthread_mutex_unlock(&posts_mu);
    n->posts = q;
    return 0;
}

void node_posts_ref(herd_node_t *n, int on)
{
    if (n->posts == NULL)
        return;
    n->posts->run_ref = (uint8_t)(on != 0);
    posts_update_ref(n->posts);
}

void node_posts_hold(herd_node_t *n)
{
    node_posts_t *q = n->posts;
    if (q == NULL || q->held)
        return;
    pthread_mutex_lock(&posts_mu);
    q->held = q->count > 0;
    pthread_mutex_unlock(&posts_mu);
    if (q->held)
        posts_update_ref(q);
}

static void posts_on_closed(uv_handle_t *h)
{
    free(h->data);
}

void node_posts_free(herd_node_t *n)
{
    node_posts_t *q = n->posts;
    if (q == NULL)
        return;
    n->posts = NULL;
    pthread_mutex_lock(&posts_mu);
    node_posts_t **at = &posts_live;
    while (*at != q)
        at = &(*at)->next_live;
    *at = q->next_live;
    post_item_t *list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&posts_mu);
    posts_run(n, list, HERD_ESHUTDOWN); /* each post's data can be freed */
    uv_close((uv_handle_t *)&q->async, posts_on_closed);
}

int herd_node_post(herd_node_t *n, herd_post_fn fn, void *data)
{
    if (fn == NULL)
        return HERD_EINVAL;
    post_item_t *it = malloc(sizeof(*it));
    if (it == NULL)
        return HERD_ENOMEM;
    *it = (post_item_t){NULL, fn, data};
    int rc = 0;
    pthread_mutex_lock(&posts_mu);
    node_posts_t *q = posts_find(n);
    if (q == NULL)
        rc = HERD_ESHUTDOWN;
    else if (q->count >= HERD_POST_MAX)
        rc = HERD_EFULL;
    else if (uv_async_send(&q->async) != 0) /* before queuing: its callback waits for the lock */
        rc = HERD_EIO;
    if (rc == 0) {
        if (q->tail)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
        q->count++;
    }
    pthread_mutex_unlock(&posts_mu);
    if (rc)
        free(it);
    return rc;
}
