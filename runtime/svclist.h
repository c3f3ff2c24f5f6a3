/*
 * svclist.h - the list of services a member announces with its membership
 * (herd_service_list_t of herd_runtime.h): its rules and its wire form.
 *
 * The runtime gives the names no meaning; the supervisor above places a
 * child only on members whose list holds the child's service. The list is
 * bounded so that a heartbeat stays small whatever a peer sends:
 *
 *   u8 count (0..HERD_MEMBER_SERVICES_MAX), then count strings (wire.h: u8
 *   length, bytes), each 1..HERD_MEMBER_SERVICE_NAME_MAX bytes, no NUL, no
 *   two equal: at most 1 + 32 * 64 = 2049 bytes.
 */
#ifndef HERD_SVCLIST_H
#define HERD_SVCLIST_H

#include <stddef.h>

#include "herd_runtime.h"
#include "wire.h"

/* The most bytes svclist_put writes. */
#define SVCLIST_WIRE_MAX (1u + HERD_MEMBER_SERVICES_MAX * (1u + HERD_MEMBER_SERVICE_NAME_MAX))

/* Check `names` against the rules and copy them into *out (untouched on
 * error). Errors: HERD_EINVAL (NULL names with a count, a NULL, empty or
 * oversize name, a name twice), HERD_ERANGE (too many). */
int svclist_set(herd_service_list_t *out, const char *const *names, size_t count);
/* Whether the list holds `name` (NULL: no). */
int svclist_has(const herd_service_list_t *l, const char *name);
/* Same names in the same order. */
int svclist_equal(const herd_service_list_t *a, const herd_service_list_t *b);

void svclist_put(wire_writer_t *w, const herd_service_list_t *l);
/* Read a list; HERD_EBADFRAME when it breaks a rule or is cut short (*out
 * is then partly written). */
int svclist_get(wire_reader_t *r, herd_service_list_t *out);

#endif
