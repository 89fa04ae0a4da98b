/* Tests of clock.c: the steady clock and how a difference between the
 * wall clock and the engine's clock is read (a slew, a step, a suspend). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

/* The engine's clock is steady + offset, set from the wall clock. */
struct sim {
	int64_t wall;
	int64_t steady;
	int64_t offset;
};

static enum clock_move check(struct sim *s, int64_t *drift)
{
	return clock_compare(s->wall, s->steady + s->offset, drift);
}

static void test_in_step_is_steady(void **state)
{
	struct sim s = {.wall = 1000000, .steady = 50, .offset = 1000000 - 50};
	int64_t drift;

	(void)state;
	for (int i = 0; i < 100; i++) {
		s.wall += 250;
		s.steady += 250;
		assert_int_equal(check(&s, &drift), CLOCK_STEADY);
		assert_int_equal(drift, 0);
	}
	s.wall += CLOCK_TOLERANCE_MS;
	assert_int_equal(check(&s, &drift), CLOCK_STEADY);
}

/* A suspend or a paused VM: CLOCK_BOOTTIME goes on counting, so the wall
 * and the steady clock move together and nothing is shifted. */
static void test_suspend_is_not_a_jump(void **state)
{
	struct sim s = {.wall = 1000000, .steady = 50, .offset = 1000000 - 50};
	int64_t drift;

	(void)state;
	s.wall += 3600 * 1000;
	s.steady += 3600 * 1000;
	assert_int_equal(check(&s, &drift), CLOCK_STEADY);
	assert_int_equal(drift, 0);
}

/* A step of the wall clock, forward or back, of CLOCK_STEP_MS or more
 * moves the stored times; a 2 s step too (it used to be followed without
 * moving them, so a repeat went out up to 2 s early). */
static void test_steps_move_stored_times(void **state)
{
	static const int64_t steps[] = {CLOCK_STEP_MS, 500, 1999, 2000, 7200 * 1000,
					-CLOCK_STEP_MS, -1500, -86400 * 1000};
	int64_t drift;

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct sim s = {.wall = 1000000, .steady = 50, .offset = 1000000 - 50};

		s.wall += steps[i];
		assert_int_equal(check(&s, &drift), CLOCK_STEP);
		assert_int_equal(drift, steps[i]);
	}
}

/* A slew (NTP adjusting the rate) is followed as it goes. */
static void test_slew_is_followed(void **state)
{
	struct sim s = {.wall = 1000000, .steady = 50, .offset = 1000000 - 50};
	int64_t drift;

	(void)state;
	s.wall += CLOCK_TOLERANCE_MS + 1;
	assert_int_equal(check(&s, &drift), CLOCK_FOLLOW);
	assert_int_equal(drift, CLOCK_TOLERANCE_MS + 1);
	s.wall -= 2 * (CLOCK_TOLERANCE_MS + 1);
	assert_int_equal(check(&s, &drift), CLOCK_FOLLOW);
	s.wall = 1000000 + CLOCK_STEP_MS - 1;
	assert_int_equal(check(&s, &drift), CLOCK_FOLLOW);
}

/* The steady clock is CLOCK_BOOTTIME, which counts a suspend. */
static void test_steady_clock_is_boottime(void **state)
{
	struct timespec ts;
	int64_t before, after, boot;

	(void)state;
	before = clock_steady_ms();
	clock_gettime(CLOCK_BOOTTIME, &ts);
	boot = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	after = clock_steady_ms();
	assert_true(before <= boot && boot <= after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_step_is_steady),
		cmocka_unit_test(test_suspend_is_not_a_jump),
		cmocka_unit_test(test_steps_move_stored_times),
		cmocka_unit_test(test_slew_is_followed),
		cmocka_unit_test(test_steady_clock_is_boottime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
