/* stats: request counters per endpoint and HTTP status, updated atomically
 * by the server threads and rendered as JSON for GET /stats. */
#ifndef EMU_STATS_H
#define EMU_STATS_H

#include "endpoint.h"

#include <stdatomic.h>

#define STATS_MAX_STATUS 600

struct stats {
	atomic_ulong count[EP_COUNT][STATS_MAX_STATUS];
};

/* Zeroes all counters. */
void stats_init(struct stats *s);

/* Counts one answer with status (100..599) for ep. */
void stats_count(struct stats *s, enum endpoint ep, unsigned status);

/* Returns the counters as a JSON object, e.g.
 * {"alerts": {"200": 3, "500": 1}, "query": {}, "notify": {}, "resolve": {},
 *  "stats": {"200": 1}, "other": {"404": 2}}
 * (every endpoint present, only non-zero statuses listed). The caller frees
 * the string; NULL when out of memory. */
char *stats_json(struct stats *s);

#endif
