/*
 * node_control.h - herd's own side of a node's control socket
 * (herd_control.h is the public one): the control socket a
 * herd_control_t serves, for tests and fuzzing that hand it requests
 * directly (control_serve), and the events it keeps for `events`.
 */
#ifndef HERD_NODE_CONTROL_H
#define HERD_NODE_CONTROL_H

#include "control.h"
#include "control_events.h"
#include "herd_control.h"

/* The control socket it serves. */
control_t *node_control_socket(herd_control_t *nc);
/* The events it keeps for `events` (control_events.h). */
control_events_t *node_control_events(herd_control_t *nc);

#endif
