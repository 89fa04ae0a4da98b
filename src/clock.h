#ifndef ALERT_EXEC_CLOCK_H
#define ALERT_EXEC_CLOCK_H

#include <stdint.h>

/*
 * The engine's clocks. Stored times are wall-clock milliseconds since the
 * epoch; the engine measures them with a steady clock plus an offset, so
 * that a jump of the wall clock reaches the engine only together with a
 * shift of every stored time (engine.c does that shift).
 *
 * The steady clock is CLOCK_BOOTTIME: it never jumps, and unlike
 * CLOCK_MONOTONIC it keeps counting while the machine is suspended or
 * the VM paused. After a resume the wall clock and the steady clock have
 * both moved by the time slept, so a suspend is not mistaken for a jump:
 * the evaluations it made miss are missed (sustain runs break, repeats
 * are due), as for an engine that was down.
 */

/* Steady time in ms (CLOCK_BOOTTIME). */
int64_t clock_steady_ms(void);

/* Wall time in ms since the epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

/* Where the engine reads time: the machine's clocks (clock_system), or a
 * clock a test moves by hand. */
struct clock_source {
	int64_t (*steady_ms)(void *ctx);
	int64_t (*wall_ms)(void *ctx);
	void *ctx;
};

/* clock_steady_ms and clock_wall_ms. */
extern const struct clock_source clock_system;

/* Drift between the wall clock and the engine's clock, in ms, at or below
 * which the engine's clock is left alone (reading the two clocks is not
 * atomic), and at or above which it is a step that stored times follow. */
#define CLOCK_TOLERANCE_MS 10
#define CLOCK_STEP_MS 100

enum clock_move {
	CLOCK_STEADY = 0, /* nothing to do */
	CLOCK_FOLLOW,     /* a slew: move the engine's clock by the drift */
	CLOCK_STEP,       /* a jump: move the stored times and the clock by it */
};

/* Compares a wall-clock reading with the engine's clock read at the same
 * moment; sets *drift = wall - engine. A step is anything of
 * CLOCK_STEP_MS or more, so a schedule is never off by more than that
 * (a repeat never goes out more than CLOCK_STEP_MS early). */
enum clock_move clock_compare(int64_t wall, int64_t engine, int64_t *drift);

#endif
