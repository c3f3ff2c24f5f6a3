/*
 * svcring.h - one ring per service: the owner of a child is the owner of
 * its name among the ring members that provide the child's service.
 *
 * A member announces what it provides with its membership
 * (herd_cluster_set_services, called by herd_service_register), so every
 * node filters the same cluster ring by the same lists and computes the
 * same owner. A member that provides no service of a child never owns it:
 * it is never started there and never offered there. Where every member
 * provides a service, its ring equals the cluster ring, point for point.
 *
 * The rings are cached per service name and thrown away whenever the
 * membership moves (herd_cluster_generation) or this node registers a
 * service; a node in no cluster places a service's children on itself
 * when it provides the service.
 */
#ifndef HERD_SVCRING_H
#define HERD_SVCRING_H

#include "dsup_int.h"
#include "planner.h"
#include "herd_ring.h"

/* The ring of `service` (an empty ring when no member in the ring provides
 * it), valid until the membership changes or this node registers a service
 * (other svcring calls leave it alone). NULL only when out of memory or for
 * a name over HERD_SERVICE_NAME_MAX. */
const herd_ring_t *svcring_get(dsup_t *d, const char *service);
/* Set children[i].ring to the ring of each child's service (from its spec,
 * or from the copy running here); left NULL when the service is not known
 * (no spec: nothing to place) or memory ran out (the cluster ring). */
void svcring_assign(dsup_t *d, hoff_child_t *children, size_t n);
/* Free the cache (from the supervisor's free). */
void svcring_free(struct svcring *s);

#endif
