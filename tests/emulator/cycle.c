#include "cycle.h"

#include "rng.h"
#include "strmap.h"

#include <math.h>

/* Positions within the cycle where each band starts. */
#define CRITICAL_FROM 30.0
#define WARN_FROM (CRITICAL_FROM + CYCLE_FIRING_SECS)
#define PASS_FROM (WARN_FROM + CYCLE_FIRING_SECS)

static uint64_t target_key(uint64_t seed, const char *target)
{
	return rng_mix(seed * 0x9e3779b97f4a7c15ULL ^ strmap_hash(target));
}

double cycle_phase(uint64_t seed, const char *target)
{
	return (double)(target_key(seed, target) % (CYCLE_SECS * 1000ULL)) /
	       1000.0;
}

double cycle_value(uint64_t seed, const char *target, double elapsed)
{
	uint64_t key = target_key(seed, target);
	double t = elapsed + (double)(key % (CYCLE_SECS * 1000ULL)) / 1000.0;
	double pos = fmod(t, CYCLE_SECS);
	double noise = rng_unit(key ^ (uint64_t)floor(t));

	if (pos < CRITICAL_FROM || pos >= PASS_FROM)
		return 20.0 + 70.0 * noise; /* PASS: (20, 90) */
	if (pos < WARN_FROM)
		return 210.0 + 80.0 * noise; /* CRITICAL: (210, 290) */
	return 110.0 + 80.0 * noise; /* WARN: (110, 190) */
}
