#ifndef ALERT_EXEC_RULES_H
#define ALERT_EXEC_RULES_H

#include <stdint.h>

#include "alerts.h" /* struct alert_def */

/*
 * The pure state machine of one alert: no I/O, no clock, no allocation.
 * Every time is integer milliseconds (since the epoch in the engine; any
 * origin in tests). RULES_NEVER marks a time that has not happened.
 */

#define RULES_NEVER INT64_MIN

enum rules_level {
	LEVEL_PASS = 0,
	LEVEL_WARN = 1,
	LEVEL_CRITICAL = 2,
};

/* The stored state of one alert that the rules read and write. */
struct rules_state {
	enum rules_level state;
	int64_t warn_since;    /* start of the unbroken run of values > warn */
	int64_t crit_since;    /* start of the unbroken run of values > critical */
	int64_t last_ok;       /* time of the last successful evaluation */
	int64_t last_notified; /* time of the last DELIVERED notify */
	int notify_pending;    /* a notify of this alert waits in the outbox */
};

enum rules_call {
	RULES_CALL_NONE = 0,
	RULES_CALL_NOTIFY = 1,
	RULES_CALL_RESOLVE = 2,
};

struct rules_result {
	struct rules_state next;
	int changed; /* next.state != previous state */
	enum rules_call call;
	const char *message; /* for NOTIFY: borrowed from the definition */
};

/* Level of value v: CRITICAL if v > critical, else WARN if v > warn,
 * else PASS (strict >). With warn below critical that is PASS for
 * v <= warn, WARN for warn < v <= critical, CRITICAL above; with warn at or
 * above critical there is no WARN band: v > critical is CRITICAL. */
enum rules_level rules_level(const struct alert_def *def, double v);

/* One successful evaluation of value v at time now, from state *s.
 * Fills *out; never fails. Semantics (DESIGN.md section 2):
 * - the run clocks: a value above a threshold keeps that threshold's clock
 *   running (or starts it at now); a value at or below clears it; more than
 *   2 x interval since last_ok breaks every run (clocks restart at now);
 * - moving down (or staying) is immediate; moving up goes to the highest
 *   level at or below the observed one whose clock has run sustain_ms;
 * - entering WARN or CRITICAL from another state -> NOTIFY with its message;
 * - staying in WARN/CRITICAL -> NOTIFY again when no notify is pending and
 *   now - last_notified >= repeat_ms (or nothing was ever delivered);
 * - WARN/CRITICAL -> PASS -> RESOLVE.
 * next.last_ok = now; last_notified and notify_pending are copied (the
 * engine updates them when a notify is delivered or enqueued). */
void rules_step(const struct alert_def *def, const struct rules_state *s, double v, int64_t now,
		struct rules_result *out);

/* The state of an alert never evaluated: PASS, no clocks, nothing sent. */
void rules_state_init(struct rules_state *s);

/* Time of the first evaluation of a new alert: now plus a stable hash of
 * the name modulo interval_ms, so that many alerts spread over the
 * interval. Always in [now, now + interval_ms). */
int64_t rules_first_eval(const char *name, int64_t interval_ms, int64_t now);

/* Time of the next evaluation after one that was scheduled at
 * `scheduled` and ran at `now` (fixed rate, no drift): scheduled +
 * interval, unless that is not after now (the engine fell more than one
 * interval behind), then now + interval: missed runs are not replayed. */
int64_t rules_next_eval(int64_t scheduled, int64_t interval_ms, int64_t now);

const char *rules_level_name(enum rules_level level); /* "PASS" ... */
/* Parses "PASS"/"WARN"/"CRITICAL"; returns 0, or -1 when unknown. */
int rules_level_parse(const char *name, enum rules_level *out);

#endif
