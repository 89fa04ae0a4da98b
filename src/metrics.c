#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http.h"

#define RELAXED memory_order_relaxed

/* Bucket bounds in microseconds. */
static const int64_t lag_bounds[] = {5000,    10000,   25000,   50000,    100000,   250000,  500000,
				     1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
static const int64_t query_bounds[] = {1000,   2500,   5000,    10000,   25000,   50000,   100000,
				       250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const int64_t delivery_bounds[] = {10000,    50000,     100000,     250000,    500000,
					  1000000,  2500000,   5000000,    10000000,  30000000,
					  60000000, 300000000, 1800000000, 3600000000};
static const int64_t commit_bounds[] = {100,   250,   500,   1000,   2500,   5000,
					10000, 25000, 50000, 100000, 250000, 1000000};

#define NBOUNDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void histogram_init(struct metrics_histogram *h, const int64_t *bounds, int n)
{
	h->bounds_us = bounds;
	h->nbounds = n;
	for (int i = 0; i <= METRICS_BUCKETS_MAX; i++)
		atomic_init(&h->counts[i], 0);
	atomic_init(&h->sum_us, 0);
}

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	histogram_init(&m->schedule_lag, lag_bounds, NBOUNDS(lag_bounds));
	histogram_init(&m->query_duration, query_bounds, NBOUNDS(query_bounds));
	histogram_init(&m->detect_to_deliver, delivery_bounds, NBOUNDS(delivery_bounds));
	histogram_init(&m->commit_duration, commit_bounds, NBOUNDS(commit_bounds));
}

int64_t metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void metrics_observe(struct metrics_histogram *h, int64_t us)
{
	int i = 0;

	if (us < 0)
		us = 0;
	while (i < h->nbounds && us > h->bounds_us[i])
		i++;
	atomic_fetch_add_explicit(&h->counts[i], 1, RELAXED);
	atomic_fetch_add_explicit(&h->sum_us, us, RELAXED);
}

int64_t metrics_query_started(struct metrics *m, int64_t scheduled, int64_t now)
{
	if (scheduled > 0)
		metrics_observe(&m->schedule_lag, (now - scheduled) * 1000);
	return metrics_now_us();
}

void metrics_query_done(struct metrics *m, int64_t started_us)
{
	if (started_us > 0)
		metrics_observe(&m->query_duration, metrics_now_us() - started_us);
}

void metrics_defs_stored(struct metrics *m)
{
	atomic_store_explicit(&m->defs_loaded, 1, RELAXED);
}

long metrics_eval_failures(struct metrics *m)
{
	long n = 0;

	for (int r = 0; r < METRICS_REASONS; r++)
		n += atomic_load_explicit(&m->eval_failures[r], RELAXED);
	return n;
}

long metrics_calls_dead(struct metrics *m)
{
	return atomic_load_explicit(&m->dead[0], RELAXED) +
	       atomic_load_explicit(&m->dead[1], RELAXED);
}

void metrics_eval_failed(struct metrics *m, int rc)
{
	enum metrics_reason r = METRICS_REASON_INTERNAL;

	if (rc == HTTP_ERR_TRANSPORT)
		r = METRICS_REASON_TRANSPORT;
	else if (rc == HTTP_ERR_SERVER)
		r = METRICS_REASON_SERVER;
	else if (rc == HTTP_ERR_CLIENT)
		r = METRICS_REASON_CLIENT;
	else if (rc == HTTP_ERR_BODY)
		r = METRICS_REASON_BAD_ANSWER;
	atomic_fetch_add_explicit(&m->eval_failures[r], 1, RELAXED);
}

void metrics_transition(struct metrics *m, enum rules_level from, enum rules_level to)
{
	atomic_fetch_add_explicit(&m->transitions[from][to], 1, RELAXED);
}

int64_t metrics_missed_slots(int64_t scheduled, int64_t interval_ms, int64_t at)
{
	if (interval_ms <= 0 || scheduled <= 0 || at < scheduled + interval_ms)
		return 0;
	return (at - scheduled) / interval_ms;
}

void metrics_evaluated(struct metrics *m, int64_t scheduled, int64_t interval_ms, int64_t at)
{
	int64_t missed = metrics_missed_slots(scheduled, interval_ms, at);

	atomic_fetch_add_explicit(&m->evaluations, 1, RELAXED);
	if (missed > 0)
		atomic_fetch_add_explicit(&m->missed, (long)missed, RELAXED);
}

void metrics_delivered(struct metrics *m, enum store_kind kind, int64_t detection_ms)
{
	atomic_fetch_add_explicit(&m->delivered[kind == STORE_RESOLVE], 1, RELAXED);
	metrics_observe(&m->detect_to_deliver, detection_ms * 1000);
}

void metrics_call_failed(struct metrics *m, enum store_kind kind, int dead)
{
	atomic_fetch_add_explicit(&m->attempts_failed[kind == STORE_RESOLVE], 1, RELAXED);
	if (dead)
		atomic_fetch_add_explicit(&m->dead[kind == STORE_RESOLVE], 1, RELAXED);
}

void metrics_refresh(struct metrics *m, int ok, int64_t at)
{
	if (!ok) {
		atomic_fetch_add_explicit(&m->refresh_failed, 1, RELAXED);
		return;
	}
	atomic_store_explicit(&m->refresh_last_ok_ms, at, RELAXED);
	atomic_store_explicit(&m->defs_loaded, 1, RELAXED);
	atomic_fetch_add_explicit(&m->refresh_ok, 1, RELAXED);
}

void metrics_tick(struct metrics *m, int64_t now_ms)
{
	atomic_store_explicit(&m->scheduler_tick, now_ms, RELAXED);
}

void metrics_label_value(struct strbuf *out, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'   ? "\\\\"
				  : *s == '"'  ? "\\\""
				  : *s == '\n' ? "\\n"
					       : NULL;

		if (esc == NULL)
			continue;
		strbuf_append_n(out, run, (size_t)(s - run));
		strbuf_append(out, esc);
		run = s + 1;
	}
	strbuf_append(out, run);
}

static void family(struct strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_printf(out, "# HELP alert_exec_%s %s\n# TYPE alert_exec_%s %s\n", name, help, name,
		      type);
}

static long load(atomic_long *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void histogram(struct strbuf *out, const char *name, const char *help,
		      struct metrics_histogram *h)
{
	long total = 0;

	family(out, name, "histogram", help);
	for (int i = 0; i <= h->nbounds; i++) {
		total += load(&h->counts[i]);
		if (i < h->nbounds)
			strbuf_printf(out, "alert_exec_%s_bucket{le=\"%g\"} %ld\n", name,
				      (double)h->bounds_us[i] / 1e6, total);
		else
			strbuf_printf(out, "alert_exec_%s_bucket{le=\"+Inf\"} %ld\n", name, total);
	}
	strbuf_printf(out, "alert_exec_%s_sum %.6f\nalert_exec_%s_count %ld\n", name,
		      (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
		      total);
}

static const char *const level_label[3] = {"pass", "warn", "critical"};
static const char *const kind_label[2] = {"notify", "resolve"};
static const char *const reason_label[METRICS_REASONS] = {"transport", "server_error",
							  "client_error", "bad_answer", "internal"};

static void write_evaluations(struct metrics *m, struct strbuf *out)
{
	family(out, "evaluations_total", "counter", "Evaluations written, failed ones included.");
	strbuf_printf(out, "alert_exec_evaluations_total %ld\n", load(&m->evaluations));
	family(out, "evaluation_failures_total", "counter",
	       "Evaluations whose query failed, by reason.");
	for (int r = 0; r < METRICS_REASONS; r++)
		strbuf_printf(out, "alert_exec_evaluation_failures_total{reason=\"%s\"} %ld\n",
			      reason_label[r], load(&m->eval_failures[r]));
	family(out, "missed_evaluations_total", "counter",
	       "Schedule slots skipped: an evaluation came an interval or more late "
	       "(they are never replayed).");
	strbuf_printf(out, "alert_exec_missed_evaluations_total %ld\n", load(&m->missed));
	family(out, "transitions_total", "counter", "State changes of alerts, by from and to.");
	for (int f = 0; f < 3; f++)
		for (int t = 0; t < 3; t++)
			if (f != t)
				strbuf_printf(
					out,
					"alert_exec_transitions_total{from=\"%s\",to=\"%s\"} %ld\n",
					level_label[f], level_label[t],
					load(&m->transitions[f][t]));
}

static void write_calls(struct metrics *m, struct strbuf *out)
{
	static const struct {
		const char *name, *help;
		size_t field;
	} counters[] = {
		{"calls_delivered_total", "Calls the server accepted, by kind.",
		 offsetof(struct metrics, delivered)},
		{"call_attempts_failed_total", "Attempts of calls that failed, by kind.",
		 offsetof(struct metrics, attempts_failed)},
		{"calls_dead_total", "Calls given up (refused for good, or too old), by kind.",
		 offsetof(struct metrics, dead)},
	};

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		atomic_long *v = (atomic_long *)((char *)m + counters[i].field);

		family(out, counters[i].name, "counter", counters[i].help);
		for (int k = 0; k < 2; k++)
			strbuf_printf(out, "alert_exec_%s{kind=\"%s\"} %ld\n", counters[i].name,
				      kind_label[k], load(&v[k]));
	}
}

static void write_refresh(struct metrics *m, struct strbuf *out)
{
	family(out, "definitions_refresh_total", "counter",
	       "Fetches of the alert definitions, by result.");
	strbuf_printf(out, "alert_exec_definitions_refresh_total{result=\"success\"} %ld\n",
		      load(&m->refresh_ok));
	strbuf_printf(out, "alert_exec_definitions_refresh_total{result=\"failure\"} %ld\n",
		      load(&m->refresh_failed));
	family(out, "definitions_last_success_timestamp_seconds", "gauge",
	       "When the definitions were last fetched (0: not in this run).");
	strbuf_printf(out, "alert_exec_definitions_last_success_timestamp_seconds %.3f\n",
		      (double)atomic_load_explicit(&m->refresh_last_ok_ms, memory_order_relaxed) /
			      1e3);
}

static void write_db(const struct metrics_db *db, struct strbuf *out)
{
	family(out, "database_up", "gauge", "Whether the last read of the database worked.");
	strbuf_printf(out, "alert_exec_database_up %d\n", db->ok ? 1 : 0);
	if (!db->ok)
		return;
	family(out, "alerts", "gauge", "Active alerts by state.");
	for (int l = 0; l < 3; l++)
		strbuf_printf(out, "alert_exec_alerts{state=\"%s\"} %lld\n", level_label[l],
			      (long long)db->alerts[l]);
	family(out, "outbox_pending", "gauge", "Calls waiting in the outbox.");
	strbuf_printf(out, "alert_exec_outbox_pending %lld\n", (long long)db->pending);
	family(out, "outbox_dead", "gauge", "Calls given up, kept until --retention.");
	strbuf_printf(out, "alert_exec_outbox_dead %lld\n", (long long)db->dead);
	family(out, "outbox_oldest_pending_age_seconds", "gauge",
	       "Age of the oldest pending call (0 when none).");
	strbuf_printf(out, "alert_exec_outbox_oldest_pending_age_seconds %.3f\n",
		      db->oldest_pending_s);
}

void metrics_write(struct metrics *m, const struct metrics_db *db, struct strbuf *out)
{
	family(out, "build_info", "gauge", "The version of alert-exec, as a label.");
	strbuf_append(out, "alert_exec_build_info{version=\"");
	metrics_label_value(out, ALERT_EXEC_VERSION);
	strbuf_append(out, "\"} 1\n");
	write_evaluations(m, out);
	write_calls(m, out);
	write_refresh(m, out);
	write_db(db, out);
	histogram(out, "schedule_lag_seconds",
		  "From the slot an evaluation was scheduled for to its query's start.",
		  &m->schedule_lag);
	histogram(out, "query_duration_seconds",
		  "Queries of the alerts server, answered or failed.", &m->query_duration);
	histogram(out, "detection_to_delivery_seconds",
		  "From a call's creation to its acceptance by the server.", &m->detect_to_deliver);
	histogram(out, "db_commit_duration_seconds", "Commits of the engine's write transactions.",
		  &m->commit_duration);
}
