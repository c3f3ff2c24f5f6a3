/*
 * control_list.c - snapshots of long listings, served page by page (see
 * control_list.h).
 */
#include "control_list.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd_error.h"

typedef struct snap_entry {
    char *name; /* owned */
    int tag;
    void *extra; /* owned: control_snap_tag_extra, or NULL */
} snap_entry_t;

struct control_snap {
    uint64_t id;
    const control_list_ops_t *ops; /* the listing it was taken for */
    uint64_t used_ms;
    snap_entry_t *e; /* owned */
    size_t count, cap;
    struct control_snap *next;
};

struct control_lists {
    control_snap_t *open; /* owned, most recently used first */
    size_t count;
    uint64_t next_id;
};

control_lists_t *control_lists_new(void)
{
    return calloc(1, sizeof(control_lists_t));
}

static void snap_free(control_snap_t *s)
{
    for (size_t i = 0; s && i < s->count; i++) {
        free(s->e[i].name);
        free(s->e[i].extra);
    }
    if (s)
        free(s->e);
    free(s);
}

void control_lists_free(control_lists_t *ls)
{
    if (ls == NULL)
        return;
    while (ls->open) {
        control_snap_t *s = ls->open;
        ls->open = s->next;
        snap_free(s);
    }
    free(ls);
}

int control_snap_add(control_snap_t *s, const char *name, int tag)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        snap_entry_t *e = realloc(s->e, cap * sizeof(*e));
        if (e == NULL)
            return HERD_ENOMEM;
        s->e = e;
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return HERD_ENOMEM;
    s->e[s->count++] = (snap_entry_t){copy, tag, NULL};
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const snap_entry_t *)a)->name, ((const snap_entry_t *)b)->name);
}

static snap_entry_t *snap_find(control_snap_t *s, const char *name)
{
    snap_entry_t key = {(char *)name, 0, NULL};
    if (s->count == 0) /* no table yet (s->e NULL): bsearch may not be given one */
        return NULL;
    return bsearch(&key, s->e, s->count, sizeof(snap_entry_t), entry_cmp);
}

int control_snap_tag(control_snap_t *s, const char *name, int tag)
{
    snap_entry_t *e = snap_find(s, name);
    if (e == NULL)
        return HERD_ENOENT;
    e->tag = tag;
    return 0;
}

int control_snap_tag_extra(control_snap_t *s, const char *name, int tag, void *extra)
{
    snap_entry_t *e = snap_find(s, name);
    if (e == NULL)
        return HERD_ENOENT;
    free(e->extra);
    e->tag = tag;
    e->extra = extra;
    return 0;
}

/* Drop listings idle too long, and the least recently used beyond the cap. */
static void lists_expire(control_lists_t *ls, uint64_t now_ms)
{
    size_t kept = 0;
    for (control_snap_t **p = &ls->open; *p;) {
        control_snap_t *s = *p;
        if (kept + 1 >= CONTROL_LIST_OPEN || now_ms - s->used_ms > CONTROL_LIST_IDLE_MS) {
            *p = s->next;
            ls->count--;
            snap_free(s);
        } else {
            kept++;
            p = &s->next;
        }
    }
}

/* Take the listing `id` out of the open list; NULL when it is gone. */
static control_snap_t *lists_take(control_lists_t *ls, uint64_t id)
{
    for (control_snap_t **p = &ls->open; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            control_snap_t *s = *p;
            *p = s->next;
            ls->count--;
            return s;
        }
    }
    return NULL;
}

/* Keep s open (first: the most recently used), last used at used_ms. */
static void lists_put(control_lists_t *ls, control_snap_t *s, uint64_t used_ms)
{
    s->used_ms = used_ms;
    s->next = ls->open;
    ls->open = s;
    ls->count++;
}

static int snap_take(control_lists_t *ls, const control_list_ops_t *ops, void *data,
                     control_snap_t **out)
{
    control_snap_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return HERD_ENOMEM;
    int rc = ops->fill(data, s);
    if (rc < 0) {
        snap_free(s);
        return rc;
    }
    if (s->count > 1)
        qsort(s->e, s->count, sizeof(*s->e), entry_cmp);
    if (ops->tag)
        ops->tag(data, s);
    s->id = ++ls->next_id;
    s->ops = ops;
    *out = s;
    return 0;
}

/* The attachment of the entry whose item is being made: the loop thread
 * serves one request at a time, and the item functions' signature stays
 * that of the listings without attachments. */
static const void *g_item_extra;

const void *control_list_extra(void)
{
    return g_item_extra;
}

/* The items [from, from + limit) of s that still exist, as a JSON array;
 * *next is the offset after the last one looked at. */
static json_t *snap_items(control_snap_t *s, size_t from, size_t limit,
                          const control_list_ops_t *ops, void *data, size_t *next)
{
    json_t *items = json_array();
    size_t i = from;
    for (; i < s->count && i - from < limit; i++) {
        g_item_extra = s->e[i].extra;
        json_t *o = ops->item(data, s->e[i].name, s->e[i].tag);
        g_item_extra = NULL;
        if (o)
            json_array_append_new(items, o);
    }
    *next = i;
    return items;
}

static int parse_cursor(const char *text, uint64_t *id, size_t *offset)
{
    unsigned long long a, b;
    char tail;
    if (text == NULL || sscanf(text, "%llx:%llu%c", &a, &b, &tail) != 2)
        return HERD_EINVAL;
    *id = a;
    *offset = (size_t)b;
    return 0;
}

int control_list_serve(control_lists_t *ls, uint64_t now_ms, json_t *args,
                       const control_list_ops_t *ops, void *data, json_t **result, char *msg,
                       size_t cap)
{
    json_t *jlimit = json_object_get(args, "limit");
    json_t *jcursor = json_object_get(args, "cursor");
    lists_expire(ls, now_ms);
    if (jlimit == NULL && jcursor == NULL) { /* every item at once */
        control_snap_t *s;
        int rc = snap_take(ls, ops, data, &s);
        if (rc)
            return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
        size_t next;
        *result = snap_items(s, 0, s->count, ops, data, &next);
        snap_free(s);
        return 0;
    }
    json_int_t limit = json_integer_value(jlimit);
    if (!json_is_integer(jlimit) || limit < 1 || limit > CONTROL_LIST_PAGE_MAX)
        return snprintf(msg, cap, "limit must be 1..%d", CONTROL_LIST_PAGE_MAX), HERD_EINVAL;
    control_snap_t *s = NULL;
    size_t offset = 0;
    if (jcursor) {
        uint64_t id;
        if (parse_cursor(json_string_value(jcursor), &id, &offset) != 0)
            return snprintf(msg, cap, "malformed cursor"), HERD_EINVAL;
        if ((s = lists_take(ls, id)) == NULL)
            return snprintf(msg, cap, "the listing of this cursor is gone (unused for %d s, "
                                      "or too many listings): start again",
                            CONTROL_LIST_IDLE_MS / 1000),
                   HERD_ENOENT;
    } else {
        int rc = snap_take(ls, ops, data, &s);
        if (rc)
            return snprintf(msg, cap, "%s", herd_strerror(rc)), rc;
    }
    size_t next;
    if (s->ops != ops) { /* a cursor of another command's listing: it stays open */
        lists_put(ls, s, s->used_ms);
        return snprintf(msg, cap, "the cursor is of another listing"), HERD_EINVAL;
    }
    json_t *items = snap_items(s, offset, (size_t)limit, ops, data, &next);
    *result = json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)s->count);
    if (next >= s->count) { /* the last page: the listing is done */
        snap_free(s);
        return 0;
    }
    char cursor[64];
    snprintf(cursor, sizeof(cursor), "%" PRIx64 ":%zu", s->id, next);
    json_object_set_new(*result, "cursor", json_string(cursor));
    lists_put(ls, s, now_ms);
    return 0;
}
