/*
 * svclist.c - the services a member announces (svclist.h): one set of rules
 * for what this node sets and for what a peer's frame carries.
 */
#include "svclist.h"

#include <string.h>

/* The name at `i` is well formed and differs from the ones before it. */
static int name_ok(const herd_service_list_t *l, uint32_t i)
{
    const char *s = l->names[i];
    if (s[0] == '\0')
        return 0;
    for (uint32_t k = 0; k < i; k++)
        if (strcmp(l->names[k], s) == 0)
            return 0;
    return 1;
}

int svclist_set(herd_service_list_t *out, const char *const *names, size_t count)
{
    if (count > HERD_MEMBER_SERVICES_MAX)
        return HERD_ERANGE;
    if (count && names == NULL)
        return HERD_EINVAL;
    herd_service_list_t l;
    l.count = (uint32_t)count;
    for (uint32_t i = 0; i < l.count; i++) {
        if (names[i] == NULL || strlen(names[i]) > HERD_MEMBER_SERVICE_NAME_MAX)
            return HERD_EINVAL;
        strcpy(l.names[i], names[i]);
        if (!name_ok(&l, i))
            return HERD_EINVAL;
    }
    out->count = l.count;
    memcpy(out->names, l.names, l.count * sizeof(l.names[0]));
    return 0;
}

int svclist_has(const herd_service_list_t *l, const char *name)
{
    for (uint32_t i = 0; name && i < l->count; i++)
        if (strcmp(l->names[i], name) == 0)
            return 1;
    return 0;
}

int svclist_equal(const herd_service_list_t *a, const herd_service_list_t *b)
{
    if (a->count != b->count)
        return 0;
    for (uint32_t i = 0; i < a->count; i++)
        if (strcmp(a->names[i], b->names[i]) != 0)
            return 0;
    return 1;
}

void svclist_put(wire_writer_t *w, const herd_service_list_t *l)
{
    wire_put_u8(w, (uint8_t)l->count);
    for (uint32_t i = 0; i < l->count; i++)
        wire_put_str(w, l->names[i]);
}

int svclist_get(wire_reader_t *r, herd_service_list_t *out)
{
    uint8_t n = wire_get_u8(r);
    out->count = 0;
    if (r->err || n > HERD_MEMBER_SERVICES_MAX)
        return HERD_EBADFRAME;
    for (uint32_t i = 0; i < n; i++) {
        wire_get_str(r, out->names[i], sizeof(out->names[i]));
        if (r->err || !name_ok(out, i))
            return HERD_EBADFRAME;
        out->count = i + 1;
    }
    return 0;
}
