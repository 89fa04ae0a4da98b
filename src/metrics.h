#ifndef ALERT_EXEC_METRICS_H
#define ALERT_EXEC_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "rules.h"
#include "store.h"
#include "strbuf.h"

/*
 * The engine's counters and histograms, and their Prometheus text
 * exposition (/metrics). Every update is a relaxed atomic add: the
 * evaluation and delivery paths take no lock for them, and a scrape reads
 * each value on its own (a page may mix values a few microseconds apart,
 * which Prometheus allows; a counter never goes back).
 *
 * A histogram keeps one count per bucket (not cumulative) and the sum in
 * microseconds; the writer adds the buckets up, and takes _count as that
 * total, so _count always equals the +Inf bucket.
 */

#define METRICS_BUCKETS_MAX 16

struct metrics_histogram {
	const int64_t *bounds_us; /* ascending upper bounds, +Inf not included */
	int nbounds;
	atomic_long counts[METRICS_BUCKETS_MAX + 1]; /* the last one: above every bound */
	atomic_llong sum_us;
};

/* Why an evaluation failed: the query's enum http_status. */
enum metrics_reason {
	METRICS_REASON_TRANSPORT = 0, /* connect, timeout, reset */
	METRICS_REASON_SERVER,        /* HTTP 5xx, 408, 429 */
	METRICS_REASON_CLIENT,        /* HTTP 4xx */
	METRICS_REASON_BAD_ANSWER,    /* 2xx whose body is not a value */
	METRICS_REASON_INTERNAL,      /* out of memory, curl */
	METRICS_REASONS,
};

struct metrics {
	atomic_long evaluations; /* written evaluations, failed ones included */
	atomic_long eval_failures[METRICS_REASONS];
	atomic_long transitions[3][3]; /* [from][to], enum rules_level */
	atomic_long missed;            /* schedule slots skipped: the engine was behind */
	/* Calls by kind: [0] notify, [1] resolve. */
	atomic_long delivered[2], attempts_failed[2], dead[2];
	atomic_long refresh_ok, refresh_failed;
	atomic_llong refresh_last_ok_ms; /* wall time of the last definitions loaded */
	atomic_int defs_loaded;          /* definitions fetched, or stored ones in use */
	atomic_llong scheduler_tick;     /* steady ms of the scheduler loop's last turn */
	struct metrics_histogram schedule_lag, query_duration, detect_to_deliver, commit_duration;
};

void metrics_init(struct metrics *m);

/* A monotonic clock in microseconds, for durations. */
int64_t metrics_now_us(void);

void metrics_observe(struct metrics_histogram *h, int64_t us);

/* A query starts for an evaluation scheduled at `scheduled` (wall ms),
 * at wall time now: counts the lag; returns the start for
 * metrics_query_done (metrics_now_us). */
int64_t metrics_query_started(struct metrics *m, int64_t scheduled, int64_t now);
void metrics_query_done(struct metrics *m, int64_t started_us);

/* The evaluation path. rc an enum http_status (not HTTP_OK). */
void metrics_eval_failed(struct metrics *m, int rc);
void metrics_transition(struct metrics *m, enum rules_level from, enum rules_level to);

/* Schedule slots skipped by an evaluation of an alert scheduled at
 * `scheduled` (ms) with the given interval, whose answer came at `at`:
 * the slots that fell due before it was written, beyond its own one. The
 * scheduler never replays them (rules_next_eval). */
int64_t metrics_missed_slots(int64_t scheduled, int64_t interval_ms, int64_t at);
void metrics_evaluated(struct metrics *m, int64_t scheduled, int64_t interval_ms, int64_t at);

/* The delivery path: detection_ms is from the call's creation to its
 * acceptance. */
void metrics_delivered(struct metrics *m, enum store_kind kind, int64_t detection_ms);
void metrics_call_failed(struct metrics *m, enum store_kind kind, int dead);

/* A fetch of the definitions: ok, and when (wall ms). */
void metrics_refresh(struct metrics *m, int ok, int64_t at);

/* The engine has definitions to evaluate without a fetch: stored ones
 * (the server was not reached at start). */
void metrics_defs_stored(struct metrics *m);

/* Sums for the engine's summary lines. */
long metrics_eval_failures(struct metrics *m);
long metrics_calls_dead(struct metrics *m);

/* The scheduler's loop turned at steady time now_ms. */
void metrics_tick(struct metrics *m, int64_t now_ms);

/* What /metrics reads from the database at each scrape. */
struct metrics_db {
	int ok;            /* 0: the read failed, the gauges below are left out */
	int64_t alerts[3]; /* active alerts by enum rules_level */
	int64_t pending, dead;
	double oldest_pending_s; /* age of the oldest pending call; 0 when none */
};

/* Appends the whole exposition to out: HELP and TYPE before each family,
 * names prefixed alert_exec_. */
void metrics_write(struct metrics *m, const struct metrics_db *db, struct strbuf *out);

/* Appends s as a label value: backslash, double quote and newline
 * escaped as the text format wants them. */
void metrics_label_value(struct strbuf *out, const char *s);

#endif
