/*
 * herd.h - the header a program that embeds herd includes, the whole API:
 * the runtime (nodes, processes, the cluster, events), the ring, the registry
 * and its process groups (herd_group.h), the distributed supervisor, a
 * node's control socket (what ringctl talks to: herd_control.h), configuring
 * a node as herdd does (herd_nodeconf.h) and the version (herd_version.h).
 * Installed as <herd/herd.h>.
 */
#ifndef HERD_H
#define HERD_H

#include "herd_control.h"
#include "herd_dsup.h"
#include "herd_events.h"
#include "herd_group.h"
#include "herd_nodeconf.h"
#include "herd_registry.h"
#include "herd_runtime.h"
#include "herd_version.h"
#include "herd_ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* (Every declaration is in the headers above.) */

#ifdef __cplusplus
}
#endif

#endif
