/*
 * control_list.h - long answers of the control socket (`names`, `children`),
 * served page by page.
 *
 * A listing of 100,000 names built as one JSON answer keeps the node's loop
 * busy for the whole of it and makes an answer of megabytes. So the first
 * request of a listing takes a snapshot: only the names, sorted (a pass over
 * the registry and a sort, no JSON); each request after it turns the next
 * `limit` names of the snapshot into JSON as they are now (a name gone since
 * is left out). The loop does at most a page of work per request.
 *
 *   args    {"limit": 1..CONTROL_LIST_PAGE_MAX, "cursor": C?, ...}
 *   answer  {"items": [...], "total": N, "cursor": C}   (no "cursor": last page)
 *
 * A request without "limit" gets every item as one array, as before paging.
 * A cursor is good while its listing is used: a listing not asked for
 * CONTROL_LIST_IDLE_MS is dropped, as is the oldest of more than
 * CONTROL_LIST_OPEN; its cursor then gives HERD_ENOENT.
 */
#ifndef HERD_CONTROL_LIST_H
#define HERD_CONTROL_LIST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CONTROL_LIST_PAGE_MAX 10000
#define CONTROL_LIST_IDLE_MS 60000
#define CONTROL_LIST_OPEN 16

typedef struct control_lists control_lists_t; /* the open listings of a socket */
typedef struct control_snap control_snap_t;   /* one snapshot being filled */

/* Add `name` to a snapshot being filled, with a small `tag` for the item
 * function (e.g. a state). HERD_ENOMEM. */
int control_snap_add(control_snap_t *s, const char *name, int tag);
/* Set the tag of `name` in a sorted snapshot (after fill); HERD_ENOENT when
 * the snapshot does not hold it. O(log n). */
int control_snap_tag(control_snap_t *s, const char *name, int tag);
/* The same, and attach `extra` (from malloc) to `name`: what the tag pass
 * saw of it beyond a small number (a child's replica set), for the item
 * function (control_list_extra). Takes `extra` on success (the snapshot
 * frees it with itself, or when another is attached); on error
 * (HERD_ENOENT) the caller still owns it. */
int control_snap_tag_extra(control_snap_t *s, const char *name, int tag, void *extra);
/* While an item function runs: what control_snap_tag_extra attached to the
 * name it is making (NULL: nothing; outside an item function, NULL). */
const void *control_list_extra(void);

typedef struct control_list_ops {
    /* Add every name (control_snap_add); 0 or a negative HERD_E* code. */
    int (*fill)(void *data, control_snap_t *s);
    /* Called once after the snapshot is sorted (may be NULL): set tags with
     * control_snap_tag. */
    void (*tag)(void *data, control_snap_t *s);
    /* The JSON item of `name` now (a new reference), or NULL to leave it
     * out (it is gone). */
    json_t *(*item)(void *data, const char *name, int tag);
} control_list_ops_t;

control_lists_t *control_lists_new(void);
void control_lists_free(control_lists_t *ls);

/* Serve one request of a listing (see above) at time now_ms; on success
 * *result is the answer (a new reference). Errors: HERD_EINVAL (limit or
 * cursor malformed), HERD_ENOENT (the cursor's listing is gone), HERD_ENOMEM,
 * or what fill returned; msg says which. */
int control_list_serve(control_lists_t *ls, uint64_t now_ms, json_t *args,
                       const control_list_ops_t *ops, void *data, json_t **result, char *msg,
                       size_t cap);

#endif
