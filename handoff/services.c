/*
 * services.c - what a child can be, and how its spec is written down.
 *
 * A node knows a fixed table of services (name -> behaviour), registered
 * before it runs children; a spec names its service by name, so two nodes
 * agree on a child without sharing pointers. The spec itself is the bytes
 * kept in the replicated spec map (its codec is here, its format in
 * dsup_int.h): every node decodes it the same way, and one that does not
 * know the service says so and starts nothing.
 */
#include <string.h>

#include "dsup_int.h"
#include "log.h"
#include "registry_layers.h"
#include "wire.h"

int dsup_service_index(const dsup_t *d, const char *service)
{
    for (size_t i = 0; i < d->service_count; i++)
        if (strcmp(d->services[i].name, service) == 0)
            return (int)i;
    return -1;
}

const herd_behaviour_t *dsup_behaviour(const dsup_t *d, int service)
{
    return service >= 0 && (size_t)service < d->service_count ? d->services[service].behaviour
                                                               : NULL;
}

int herd_service_register(herd_node_t *n, const char *service, const herd_behaviour_t *b)
{
    return herd_service_register_replicas(n, service, b, 1);
}

int herd_service_register_replicas(herd_node_t *n, const char *service,
                                   const herd_behaviour_t *b, uint8_t replicas)
{
    dsup_t *d = dsup_of(n);
    if (d == NULL)
        return HERD_ENOENT;
    if (service == NULL || !service[0] || strlen(service) > HERD_SERVICE_NAME_MAX || b == NULL ||
        replicas == 0 || replicas > HERD_MAX_REPLICAS)
        return HERD_EINVAL;
    if (dsup_service_index(d, service) >= 0)
        return HERD_EEXIST;
    if (d->service_count == HERD_MAX_SERVICES)
        return HERD_EFULL;
    strcpy(d->services[d->service_count].name, service);
    d->services[d->service_count].replicas = replicas;
    d->services[d->service_count++].behaviour = b;
    /* the members place this service's children here from now on */
    const char *names[HERD_MAX_SERVICES];
    for (size_t i = 0; i < d->service_count; i++)
        names[i] = d->services[i].name;
    int rc = herd_cluster_set_services(n, names, d->service_count);
    if (rc && rc != HERD_ENOENT)
        herd_log(HERD_LOG_ERROR, "dsup", "cannot announce service '%s': %s", service,
                 herd_strerror(rc));
    return 0;
}

void dsup_meta(dsup_t *d, int service, herd_meta_t *meta)
{
    memset(meta, 0, sizeof(*meta));
    if (service >= 0 && (size_t)service < d->service_count)
        herd_meta_set(meta, "service", d->services[service].name);
}

uint8_t *dspec_encode(const herd_child_req_t *req, uint64_t written, size_t *len)
{
    wire_writer_t w;
    wire_writer_init(&w);
    wire_put_u8(&w, 2);
    wire_put_str(&w, req->service);
    wire_put_u8(&w, (uint8_t)req->restart);
    wire_put_bytes(&w, req->arg, req->arg_len);
    wire_put_u64(&w, written);
    wire_put_u8(&w, req->replicas);
    wire_put_u8(&w, req->refuse_underreplicated ? DSPEC_REFUSE_UNDERREPLICATED : 0);
    return wire_writer_take(&w, len);
}

int dspec_decode(const uint8_t *buf, size_t len, dspec_t *out)
{
    wire_reader_t r;
    wire_reader_init(&r, buf, len);
    uint8_t version = wire_get_u8(&r);
    wire_get_str(&r, out->service, sizeof(out->service));
    uint8_t restart = wire_get_u8(&r);
    out->arg_len = wire_get_bytes(&r, &out->arg);
    out->written = wire_get_u64(&r);
    out->replicas = version >= 2 ? wire_get_u8(&r) : 1;
    out->flags = version >= 2 ? wire_get_u8(&r) : 0;
    if (wire_reader_done(&r) || version < 1 || version > 2 || restart > HERD_RESTART_TEMPORARY ||
        out->replicas > HERD_MAX_REPLICAS || (out->flags & ~DSPEC_REFUSE_UNDERREPLICATED))
        return HERD_EBADFRAME;
    out->restart = (herd_restart_t)restart;
    return 0;
}

/* The spec of `name` from the replicated map, decoded. */
static int dspec_get(herd_node_t *n, const char *name, dspec_t *spec)
{
    const uint8_t *buf;
    size_t len;
    int rc = herd_spec_get(n, name, &buf, &len);
    return rc ? rc : dspec_decode(buf, len, spec);
}

int dspec_of(dsup_t *d, const char *name, dspec_t *spec, int *service)
{
    int rc = dspec_get(d->node, name, spec);
    if (rc)
        return rc;
    *service = dsup_service_index(d, spec->service);
    if (*service < 0) {
        herd_log(HERD_LOG_WARN, "dsup", "child '%s': service '%s' is unknown here", name,
                 spec->service);
        return HERD_EINVAL;
    }
    return 0;
}

int herd_child_spec_get(herd_node_t *n, const char *name, herd_child_spec_view_t *out)
{
    dspec_t spec;
    int rc = dspec_get(n, name, &spec);
    if (rc)
        return rc;
    memcpy(out->service, spec.service, sizeof(out->service));
    out->restart = spec.restart;
    out->arg_len = spec.arg_len;
    return 0;
}
