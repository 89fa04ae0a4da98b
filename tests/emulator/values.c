#include "values.h"

#include "cycle.h"

#include <assert.h>

int values_at(const struct values *v, const char *target, double elapsed,
	      double *value)
{
	assert(v != NULL && target != NULL);
	if (timeline_value(v->timeline, target, elapsed, value))
		return 1;
	if (alerts_by_query(v->alerts, target) < 0)
		return 0;
	*value = cycle_value(v->seed, target, elapsed);
	return 1;
}
