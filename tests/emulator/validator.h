/* validator: checks the notify/resolve calls the emulator accepts against
 * the levels it served each alert, like the real alerts server does.
 *
 * Model (per alert, sustainSecs == 0 only; others are counted, not judged):
 * the served level starts at PASS. Each served value whose level differs
 * from the previous served level expects one call within T = intervalSecs
 * + 2 s: a notify with the new level's message when entering WARN or
 * CRITICAL, a resolve when returning to PASS. While the level stays firing,
 * a value served at least repeatIntervalSecs + 2 s after the last accepted
 * notify of this firing episode expects a repeat notify within T (and no
 * sooner than repeatIntervalSecs + intervalSecs + T after that notify).
 * Deadlines that overlap a declared outage (--down) move to the outage's
 * end plus the larger of T and the outage's length. Every
 * accepted call must match an expectation, or be a repeat of the current
 * level's message at least repeatIntervalSecs (minus 50 ms) after the
 * previous notify; anything else is an error (wrong message, duplicate,
 * early repeat, resolve while PASS, unknown alert). An expectation whose
 * deadline passes is an error (missing notify/resolve, late repeat); a
 * call that arrives later still consumes it without a second error.
 *
 * Times are milliseconds on any monotonic clock (the server uses ms since
 * start), passed in by the caller, so the validator is testable without
 * HTTP or sleeping. Thread-safe: per-alert state behind striped locks,
 * O(1) work per served value or call; validator_tick is O(alerts). */
#ifndef EMU_VALIDATOR_H
#define EMU_VALIDATOR_H

#include "alerts.h"

#include <stdint.h>
#include <stdio.h>

struct validator;

/* Creates a validator for alerts (borrowed, must outlive it) that writes
 * its ERROR lines (one per violation, starting with "ERROR ") and summaries
 * to out. Returns NULL when out of memory. */
struct validator *validator_new(const struct alerts *alerts, FILE *out);

/* Releases the validator; validator_free(NULL) is a no-op. */
void validator_free(struct validator *v);

/* Declares an outage [from_ms, to_ms) during which the server answers
 * nothing; call before any other use. Returns 0, or -1 when full (64) or
 * empty. */
int validator_outage(struct validator *v, int64_t from_ms, int64_t to_ms);

/* Records that value was served (HTTP 200) for query target at now_ms; it
 * counts for every alert whose query is target. */
void validator_served(struct validator *v, const char *target, double value,
		      int64_t now_ms);

/* Records an accepted notify (alert name, message) that arrived at now_ms
 * (request arrival, so an injected latency does not count against the
 * caller). */
void validator_notify(struct validator *v, const char *alert,
		      const char *message, int64_t now_ms);

/* Records an accepted resolve of alert that arrived at now_ms. */
void validator_resolve(struct validator *v, const char *alert,
		       int64_t now_ms);

/* Reports every expectation whose deadline is before now_ms as an ERROR.
 * Call about once per second, and once more before the final summary. */
void validator_tick(struct validator *v, int64_t now_ms);

/* Writes the summary at now_ms: per-alert lines (for active alerts; when
 * there are more than 100, only those with errors or calls in flight) and
 * a totals line, each starting with "SUMMARY ". */
void validator_summary(struct validator *v, int64_t now_ms);

/* Number of ERROR lines written so far. */
unsigned long validator_errors(const struct validator *v);

#endif
