/*
 * dsup_layers.h - what herd's simulations use of the distributed supervisor
 * and programs do not. Not installed, and hidden in libherd.so.
 */
#ifndef HERD_DSUP_LAYERS_H
#define HERD_DSUP_LAYERS_H

#include "herd_dsup.h"

/* Under a virtual clock: what the loop's timers would do by now
 * (reconcile, restarts, handoff timeouts). */
int herd_dsup_poll(herd_node_t *node);

#endif
