#include "clock.h"

#include <time.h>

static int64_t read_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_steady_ms(void)
{
	return read_ms(CLOCK_BOOTTIME);
}

int64_t clock_wall_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

static int64_t system_steady(void *ctx)
{
	(void)ctx;
	return clock_steady_ms();
}

static int64_t system_wall(void *ctx)
{
	(void)ctx;
	return clock_wall_ms();
}

const struct clock_source clock_system = {system_steady, system_wall, NULL};

enum clock_move clock_compare(int64_t wall, int64_t engine, int64_t *drift)
{
	int64_t d = wall - engine;
	int64_t size = d < 0 ? -d : d;

	*drift = d;
	if (size <= CLOCK_TOLERANCE_MS)
		return CLOCK_STEADY;
	if (size < CLOCK_STEP_MS)
		return CLOCK_FOLLOW;
	return CLOCK_STEP;
}
