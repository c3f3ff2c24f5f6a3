/*
 * registry_group_send.c - messages to a process group (herd_group.h):
 * publish casts to every visible member, multi-call calls them all. Both
 * take the members this node sees now and hand the list to the runtime
 * (herd_node_cast_many: the bytes go once to each other node;
 * herd_node_multi_call_async: the answers come back in one callback).
 */
#include <stdlib.h>
#include <string.h>

#include "herd_group.h"

typedef struct member_list {
    herd_pid_t *pids;
    size_t n, cap;
    int err;
} member_list_t;

static int member_add(void *data, const char *group, herd_pid_t pid, const herd_meta_t *meta)
{
    (void)group;
    (void)meta;
    member_list_t *l = data;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        herd_pid_t *pids = realloc(l->pids, cap * sizeof(*pids));
        if (pids == NULL) {
            l->err = HERD_ENOMEM;
            return 1; /* stop: the list is not whole */
        }
        l->pids = pids;
        l->cap = cap;
    }
    l->pids[l->n++] = pid;
    return 0;
}

/* The group's visible members now: 0, or an error (nothing to free then). */
static int members_of(herd_node_t *node, const char *group, member_list_t *l)
{
    *l = (member_list_t){0};
    int rc = herd_group_members(node, group, member_add, l);
    if (rc < 0 || l->err) {
        free(l->pids);
        *l = (member_list_t){0};
        return rc < 0 ? rc : l->err;
    }
    return 0;
}

int herd_group_publish(herd_node_t *node, herd_proc_t *self, const char *group,
                       const void *data, size_t len)
{
    member_list_t l;
    int rc = members_of(node, group, &l);
    if (rc != 0)
        return rc;
    /* with no member too: the runtime still refuses an oversize message */
    rc = self ? herd_cast_many(self, l.pids, l.n, data, len)
              : herd_node_cast_many(node, HERD_PID_NONE, l.pids, l.n, data, len);
    free(l.pids);
    return rc;
}

int herd_group_multi_call(herd_node_t *node, const char *group, const void *data, size_t len,
                          uint32_t timeout_ms, herd_group_multi_cb cb, void *cbdata)
{
    member_list_t l;
    int rc = members_of(node, group, &l);
    if (rc != 0)
        return rc;
    rc = herd_node_multi_call_async(node, l.pids, l.n, data, len, timeout_ms, cb, cbdata);
    free(l.pids); /* the runtime keeps its own copy */
    return rc == 0 ? (int)l.n : rc;
}
