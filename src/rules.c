/*
 * The pure state machine of one alert (see rules.h and DESIGN.md section 2).
 *
 * Nothing here touches I/O, the clock or the heap: the engine passes in the
 * value and the time and stores what comes out, which is what lets every
 * transition be a line in tests/test_rules.c.
 *
 * Times come from the database, so they are treated as untrusted integers:
 * every difference and sum is saturated instead of being allowed to
 * overflow.
 */
#include "rules.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "hash.h"

/* later - earlier, saturated to the int64_t range. */
static int64_t elapsed(int64_t later, int64_t earlier)
{
	if (earlier < 0 && later > INT64_MAX + earlier)
		return INT64_MAX;
	if (earlier > 0 && later < INT64_MIN + earlier)
		return INT64_MIN;
	return later - earlier;
}

/* t + d for d >= 0, saturated at INT64_MAX. */
static int64_t add_saturated(int64_t t, int64_t d)
{
	assert(d >= 0);
	if (t > INT64_MAX - d)
		return INT64_MAX;
	return t + d;
}

enum rules_level rules_level(const struct alert_def *def, double v)
{
	assert(def != NULL);

	if (v > def->crit_value)
		return LEVEL_CRITICAL;
	if (v > def->warn_value)
		return LEVEL_WARN;
	return LEVEL_PASS;
}

/*
 * A missed evaluation breaks every run. The first evaluation (last_ok
 * never set) also starts the clocks afresh, whatever was stored.
 * "More than 2 x interval" is tested as gap - interval > interval so that
 * a huge interval cannot overflow the doubling.
 */
static int run_broken(const struct alert_def *def, int64_t last_ok, int64_t now)
{
	int64_t gap;

	if (last_ok == RULES_NEVER)
		return 1;
	gap = elapsed(now, last_ok);
	return gap > def->interval_ms && gap - def->interval_ms > def->interval_ms;
}

/* The run clock of one threshold after this evaluation. */
static int64_t run_clock(int above, int64_t since, int broken, int64_t now)
{
	if (!above)
		return RULES_NEVER;
	if (broken || since == RULES_NEVER)
		return now;
	return since;
}

/* Has the run that started at `since` lasted sustain_ms by now? */
static int sustained(int64_t since, int64_t sustain_ms, int64_t now)
{
	if (since == RULES_NEVER)
		return 0;
	/* Without sustain a running clock is enough, even if the wall clock
	 * stepped back behind `since`. */
	if (sustain_ms == 0)
		return 1;
	return elapsed(now, since) >= sustain_ms;
}

static const char *level_message(const struct alert_def *def, enum rules_level level)
{
	switch (level) {
	case LEVEL_WARN:
		return def->warn_message;
	case LEVEL_CRITICAL:
		return def->crit_message;
	case LEVEL_PASS:
		break;
	}
	return NULL;
}

/* The level reached from prev with the run clocks of next: down (or the
 * same) at once; up to the highest level above the current one whose
 * run has lasted sustain_ms (warn_since is RULES_NEVER unless v > warn,
 * so WARN also requires the value above warn). */
static enum rules_level next_level(const struct alert_def *def, enum rules_level prev,
				   enum rules_level observed, const struct rules_state *next,
				   int64_t now)
{
	if (observed <= prev)
		return observed;
	for (enum rules_level level = observed; level > prev; level--) {
		int64_t since = level == LEVEL_CRITICAL ? next->crit_since : next->warn_since;

		if (sustained(since, def->sustain_ms, now))
			return level;
	}
	return prev;
}

/* The call of a step from prev to next. */
static void decide_call(const struct alert_def *def, const struct rules_state *prev, int64_t now,
			struct rules_result *out)
{
	const struct rules_state *next = &out->next;

	out->call = RULES_CALL_NONE;
	out->message = NULL;
	if (out->changed && next->state == LEVEL_PASS) {
		out->call = RULES_CALL_RESOLVE;
		return;
	}
	if (!out->changed && (next->state == LEVEL_PASS || prev->notify_pending))
		return;
	if (!out->changed && prev->last_notified != RULES_NEVER &&
	    elapsed(now, prev->last_notified) < def->repeat_ms)
		return;
	out->call = RULES_CALL_NOTIFY;
	out->message = level_message(def, next->state);
}

void rules_step(const struct alert_def *def, const struct rules_state *s, double v, int64_t now,
		struct rules_result *out)
{
	struct rules_state prev;
	struct rules_state next;
	int broken;

	assert(def != NULL);
	assert(s != NULL);
	assert(out != NULL);
	assert(def->interval_ms > 0);
	assert(def->repeat_ms > 0);
	assert(def->sustain_ms >= 0);
	assert(s->state == LEVEL_PASS || s->state == LEVEL_WARN || s->state == LEVEL_CRITICAL);

	/* Copy first: the caller may pass &out->next as s. */
	prev = *s;
	next = prev;
	broken = run_broken(def, prev.last_ok, now);
	next.warn_since = run_clock(v > def->warn_value, prev.warn_since, broken, now);
	next.crit_since = run_clock(v > def->crit_value, prev.crit_since, broken, now);
	next.last_ok = now;
	next.state = next_level(def, prev.state, rules_level(def, v), &next, now);
	out->next = next;
	out->changed = next.state != prev.state;
	decide_call(def, &prev, now, out);
}

void rules_state_init(struct rules_state *s)
{
	assert(s != NULL);

	s->state = LEVEL_PASS;
	s->warn_since = RULES_NEVER;
	s->crit_since = RULES_NEVER;
	s->last_ok = RULES_NEVER;
	s->last_notified = RULES_NEVER;
	s->notify_pending = 0;
}

int64_t rules_first_eval(const char *name, int64_t interval_ms, int64_t now)
{
	int64_t offset;

	assert(name != NULL);
	assert(interval_ms > 0);

	offset = (int64_t)(hash_str(name) % (uint64_t)interval_ms);
	return add_saturated(now, offset);
}

int64_t rules_next_eval(int64_t scheduled, int64_t interval_ms, int64_t now)
{
	int64_t next;

	assert(interval_ms > 0);

	next = add_saturated(scheduled, interval_ms);
	if (next <= now)
		next = add_saturated(now, interval_ms);
	return next;
}

const char *rules_level_name(enum rules_level level)
{
	switch (level) {
	case LEVEL_PASS:
		return "PASS";
	case LEVEL_WARN:
		return "WARN";
	case LEVEL_CRITICAL:
		return "CRITICAL";
	}
	assert(!"unknown rules_level");
	return "UNKNOWN";
}

int rules_level_parse(const char *name, enum rules_level *out)
{
	assert(name != NULL);
	assert(out != NULL);

	if (strcmp(name, "PASS") == 0)
		*out = LEVEL_PASS;
	else if (strcmp(name, "WARN") == 0)
		*out = LEVEL_WARN;
	else if (strcmp(name, "CRITICAL") == 0)
		*out = LEVEL_CRITICAL;
	else
		return -1;
	return 0;
}
