/* timebase: the emulator's clocks — elapsed time since start on the
 * monotonic clock (timelines, cycles, down windows, validator) and
 * wall-clock epoch time (record file, query log). */
#ifndef EMU_TIMEBASE_H
#define EMU_TIMEBASE_H

#include <stdint.h>
#include <time.h>

struct timebase {
	struct timespec start; /* CLOCK_MONOTONIC at start */
};

/* Sets the start to now. */
void timebase_init(struct timebase *tb);

/* Seconds since start. */
double timebase_secs(const struct timebase *tb);

/* Milliseconds since start. */
int64_t timebase_ms(const struct timebase *tb);

/* Microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t timebase_epoch_us(void);

#endif
