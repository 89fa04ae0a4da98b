/* values: what GET /query serves for a target — the timeline's value when
 * the timeline scripts the target, else the default cycle when some alert
 * queries the target; other targets are unknown. */
#ifndef EMU_VALUES_H
#define EMU_VALUES_H

#include "alerts.h"
#include "timeline.h"

#include <stdint.h>

struct values {
	const struct alerts *alerts;     /* borrowed */
	const struct timeline *timeline; /* borrowed, may be NULL */
	uint64_t seed;                   /* of the default cycle */
};

/* Sets *value to the value of target at elapsed seconds since start and
 * returns 1, or returns 0 for an unknown target. */
int values_at(const struct values *v, const char *target, double elapsed,
	      double *value);

#endif
