/*
 * herd.h - the header a program that embeds herd includes: the runtime
 * (nodes, processes, the cluster), the ring, the registry and the
 * distributed supervisor, and the version (herd_version.h). Installed as
 * <herd/herd.h>. A node's control socket, which ringctl talks to, has its own
 * header, <herd/node_control.h> (it needs jansson's headers too).
 */
#ifndef HERD_H
#define HERD_H

#include "herd_dsup.h"
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
