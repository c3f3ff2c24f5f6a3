/*
 * svcring.c - the rings that place children, one per service (svcring.h).
 */
#include "registry_layers.h"
#include "svcring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct svcring_entry {
    char service[HERD_SERVICE_NAME_MAX + 1];
    herd_ring_t *ring; /* owned */
} svcring_entry_t;

/* Entries are only ever added until the membership moves: a ring handed out
 * stays valid through a whole reconcile, however many services its children
 * name. There are as many as services named by specs and starts, each an
 * empty ring when nobody provides it. */
struct svcring {
    uint64_t generation; /* of the membership the rings were built from */
    size_t local_count;  /* services of this node then */
    svcring_entry_t *items;
    size_t count, cap;
    size_t last; /* the entry found last: children come in runs of one service */
};

static void svcring_clear(struct svcring *s)
{
    for (size_t i = 0; i < s->count; i++)
        herd_ring_free(s->items[i].ring);
    s->count = s->last = 0;
}

void svcring_free(struct svcring *s)
{
    if (s == NULL)
        return;
    svcring_clear(s);
    free(s->items);
    free(s);
}

/* The members of the cluster ring that provide `service`, with their
 * weights; in no cluster, this node if it provides it. */
static herd_ring_t *svcring_build(dsup_t *d, const char *service)
{
    herd_ring_t *r = herd_ring_new();
    if (r == NULL)
        return NULL;
    const herd_ring_t *base = herd_cluster_ring(d->node);
    int rc = 0;
    if (base == NULL) {
        if (dsup_service_index(d, service) >= 0)
            rc = herd_ring_add(r, herd_node_name(d->node), 1);
    } else {
        herd_ring_member_info_t m;
        for (size_t i = 0; rc == 0 && herd_ring_member_at(base, i, &m) == 0; i++)
            if (herd_cluster_member_provides(d->node, herd_node_id_of(m.name), service) == 1)
                rc = herd_ring_add(r, m.name, m.weight);
    }
    if (rc) {
        herd_ring_free(r);
        return NULL;
    }
    return r;
}

const herd_ring_t *svcring_get(dsup_t *d, const char *service)
{
    if (service == NULL || strlen(service) > HERD_SERVICE_NAME_MAX)
        return NULL;
    struct svcring *s = d->rings;
    if (s == NULL && (s = d->rings = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    uint64_t gen = herd_cluster_generation(d->node);
    if (s->generation != gen || s->local_count != d->service_count) {
        svcring_clear(s);
        s->generation = gen;
        s->local_count = d->service_count;
    }
    if (s->last < s->count && strcmp(s->items[s->last].service, service) == 0)
        return s->items[s->last].ring;
    for (size_t i = 0; i < s->count; i++) {
        if (strcmp(s->items[i].service, service) == 0) {
            s->last = i;
            return s->items[i].ring;
        }
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        svcring_entry_t *items = realloc(s->items, cap * sizeof(*items));
        if (items == NULL)
            return NULL;
        s->items = items;
        s->cap = cap;
    }
    herd_ring_t *r = svcring_build(d, service);
    if (r == NULL)
        return NULL;
    strcpy(s->items[s->count].service, service);
    s->items[s->count].ring = r;
    s->last = s->count++;
    return r;
}

/* The service of child `name`: its spec's, else the copy's running here. */
static int child_service(dsup_t *d, const char *name, char *out, size_t cap)
{
    const uint8_t *buf;
    size_t len;
    dspec_t spec;
    if (herd_spec_get(d->node, name, &buf, &len) == 0 && dspec_decode(buf, len, &spec) == 0) {
        snprintf(out, cap, "%s", spec.service);
        return 0;
    }
    const dchild_t *c = dsup_find(d, name);
    const herd_behaviour_t *b = c ? dsup_behaviour(d, c->service) : NULL;
    if (b == NULL)
        return HERD_ENOENT;
    snprintf(out, cap, "%s", d->services[c->service].name);
    return 0;
}

void svcring_assign(dsup_t *d, hoff_child_t *children, size_t n)
{
    char service[HERD_SERVICE_NAME_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        children[i].ring = NULL;
        if (children[i].spec_exists &&
            child_service(d, children[i].name, service, sizeof(service)) == 0)
            children[i].ring = svcring_get(d, service);
    }
}
