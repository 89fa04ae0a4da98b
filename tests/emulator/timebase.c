#include "timebase.h"

void timebase_init(struct timebase *tb)
{
	clock_gettime(CLOCK_MONOTONIC, &tb->start);
}

static int64_t since_start_ns(const struct timebase *tb)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - tb->start.tv_sec) * 1000000000 +
	       (now.tv_nsec - tb->start.tv_nsec);
}

double timebase_secs(const struct timebase *tb)
{
	return (double)since_start_ns(tb) / 1e9;
}

int64_t timebase_ms(const struct timebase *tb)
{
	return since_start_ns(tb) / 1000000;
}

int64_t timebase_epoch_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}
