/*
 * herd.h - the header a program that embeds herd includes: the runtime
 * (nodes, processes, the cluster), the ring, the registry and the
 * distributed supervisor.
 */
#ifndef HERD_H
#define HERD_H

#include "herd_dsup.h"
#include "herd_registry.h"
#include "herd_runtime.h"
#include "ring.h"

#endif
