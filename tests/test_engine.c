/* Tests of the engine's scheduler and delivery with a clock and a server
 * of the test's own: the scheduler's picks and writes, and a delivery
 * worker's rounds, driven one step at a time on a real database. No
 * thread, no network, no sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_sqlite_db.h"
#include "deliver.h"
#include "engine_core.h"
#include "scheduler.h"
#include "store.h"

#define T0 INT64_C(1800000000000)
#define MAX_SENT 64

/* A clock the test moves: steady and wall time in ms. */
struct fake_clock {
	struct clock_source src;
	int64_t steady;
	int64_t wall;
};

static int64_t fake_steady(void *ctx)
{
	return ((struct fake_clock *)ctx)->steady;
}

static int64_t fake_wall(void *ctx)
{
	return ((struct fake_clock *)ctx)->wall;
}

/* Time passes. */
static void advance(struct fake_clock *c, int64_t ms)
{
	c->steady += ms;
	c->wall += ms;
}

/* A server whose answers the test scripts: the next answers to sends,
 * then 200 for every send. */
struct fake_server {
	int answers[MAX_SENT];       /* enum http_status of each send, in order */
	int maybe_sent[MAX_SENT];
	int64_t retry_after[MAX_SENT];
	size_t scripted, sent;
	int64_t sent_id[MAX_SENT];   /* outbox ids, in the order sent */
	int last;
};

static int fake_send(void *ctx, const struct store_call *c, char *err, size_t errlen)
{
	struct fake_server *s = ctx;
	size_t i = s->sent;

	assert_true(i < MAX_SENT);
	s->sent_id[s->sent++] = c->id;
	s->last = (int)i;
	snprintf(err, errlen, "scripted");
	return i < s->scripted ? s->answers[i] : HTTP_OK;
}

static int64_t fake_retry_after(void *ctx)
{
	struct fake_server *s = ctx;

	return (size_t)s->last < s->scripted ? s->retry_after[s->last] : 0;
}

static int fake_maybe_sent(void *ctx)
{
	struct fake_server *s = ctx;

	return (size_t)s->last < s->scripted ? s->maybe_sent[s->last] : 0;
}

/* Scripts the next answer. */
static void script(struct fake_server *s, int answer, int maybe_sent, int64_t retry_after)
{
	s->answers[s->scripted] = answer;
	s->maybe_sent[s->scripted] = maybe_sent;
	s->retry_after[s->scripted] = retry_after;
	s->scripted++;
}

struct fixture {
	char dir[64];
	char path[128];
	struct config cfg;
	struct fake_clock clock;
	struct fake_server server;
	struct sender sender;
	struct engine e;
	struct worker w;
	struct store *st;
	sqlite3 *db;             /* the test's look at the database */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	sqlite3 *db = NULL;
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_engine.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/a.db", f->dir);
	assert_int_equal(db_open(f->path, 0, &db, err, sizeof(err)), DB_OK);
	assert_int_equal(db_migrate(db, 0, err, sizeof(err)), DB_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, 0, &f->st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
	config_defaults(&f->cfg);
	f->cfg.db_path = f->path;
	f->clock = (struct fake_clock){{fake_steady, fake_wall, &f->clock}, 1000, T0};
	f->sender = (struct sender){fake_send, fake_retry_after, fake_maybe_sent, &f->server};
	assert_int_equal(engine_init(&f->e, &f->cfg, &f->clock.src), 0);
	f->w = (struct worker){.e = &f->e, .rng = 12345};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	engine_destroy(&f->e);
	store_close(f->st);
	sqlite3_close(f->db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int64_t query_int(struct fixture *f, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(f->db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Stores n alerts alert-1.. at interval_ms, all due now. */
static void define(struct fixture *f, size_t n, int64_t interval_ms)
{
	struct alert_def d[8];
	char names[8][32];
	struct store_sync_stats stats;
	char err[256];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "alert-%zu", i + 1);
		d[i] = (struct alert_def){.name = names[i], .query = "q", .interval_ms = interval_ms,
					  .repeat_ms = 3000, .warn_value = 100,
					  .warn_message = "warning", .crit_value = 200,
					  .crit_message = "critical"};
	}
	assert_int_equal(store_sync_defs(f->st, d, n, NULL, 0, engine_now(&f->e), 1, &stats, err,
					 sizeof(err)), 0);
}

/* One scheduler step: picks what is due now, the queries take latency_ms
 * and find value, and the evaluations are written. Returns how many. */
static long evaluate(struct fixture *f, int64_t latency_ms, double value)
{
	struct store_due due[8];
	struct eval evs[8];
	struct eval *ev[8];
	struct hash_set in_flight;
	char err[256];
	long n;

	assert_int_equal(hash_set_init(&in_flight, 8), 0);
	n = sched_pick(&f->e, f->st, &in_flight, due, 8, err, sizeof(err));
	assert_true(n >= 0);
	advance(&f->clock, latency_ms);
	for (long i = 0; i < n; i++) {
		evs[i] = (struct eval){.due = due[i], .ok = 1, .value = value,
				       .at_steady = f->clock.steady};
		ev[i] = &evs[i];
	}
	if (n > 0)
		assert_true(sched_write(&f->e, f->st, ev, (size_t)n) >= 0);
	for (long i = 0; i < n; i++)
		store_due_clear(&evs[i].due);
	hash_set_free(&in_flight);
	return n;
}

static int64_t next_eval(struct fixture *f)
{
	return query_int(f, "SELECT next_eval FROM alert_state WHERE alert_id = 1");
}

/* Evaluations come at a fixed rate: each is scheduled an interval after
 * the slot of the one before, whatever its query took. */
static void test_fixed_rate_without_drift(void **state)
{
	struct fixture *f = *state;
	int64_t first;

	define(f, 1, 1000);
	first = next_eval(f);
	assert_int_equal(first, T0);
	for (int k = 1; k <= 20; k++) {
		assert_int_equal(evaluate(f, 37, 50), 1);
		assert_int_equal(next_eval(f), first + k * 1000);
		/* nothing more is due until then */
		assert_int_equal(evaluate(f, 0, 50), 0);
		advance(&f->clock, next_eval(f) - engine_now(&f->e));
	}
}

/* After falling behind by many intervals, the alert is evaluated once and
 * carries on from now: missed evaluations are not replayed. */
static void test_missed_evaluations_not_replayed(void **state)
{
	struct fixture *f = *state;

	define(f, 1, 1000);
	assert_int_equal(evaluate(f, 5, 50), 1);
	advance(&f->clock, 10500);
	assert_int_equal(evaluate(f, 5, 50), 1);
	assert_int_equal(next_eval(f), engine_now(&f->e) + 1000);
	assert_int_equal(evaluate(f, 0, 50), 0);
}

/* Syncs alert-1 with warn_value warn from a connection of its own, as
 * the main thread's refresh does. */
static void refresh_warn(struct fixture *f, double warn)
{
	struct alert_def d = {.name = "alert-1", .query = "q", .interval_ms = 1000,
			      .repeat_ms = 3000, .warn_value = warn, .warn_message = "warning",
			      .crit_value = 200, .crit_message = "critical"};
	struct store_sync_stats stats;
	struct store *main_st = NULL;
	char err[256];

	assert_int_equal(store_open(f->path, 0, &main_st, err, sizeof(err)), 0);
	assert_int_equal(store_sync_defs(main_st, &d, 1, NULL, 0, engine_now(&f->e), 0, &stats,
					 err, sizeof(err)), 0);
	assert_int_equal(stats.changed, 1);
	store_close(main_st);
}

static int64_t count_calls(struct fixture *f, const char *kind)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE kind = '%s'", kind);
	return query_int(f, sql);
}

/* The scheduler keeps the definitions it picked, but a refresh written
 * by another connection is seen by its next pick: the thresholds of the
 * refresh decide the next evaluation. One picked before the refresh and
 * written after it is not written (its thresholds are the old ones); its
 * alert, still due, is picked again at once with the new ones. */
static void test_refresh_seen_by_the_next_pick(void **state)
{
	struct fixture *f = *state;
	struct hash_set in_flight;
	struct store_due due[1];
	struct eval ev, *evp = &ev;
	char err[256];

	define(f, 1, 1000);
	/* 150 is over warn 100: PASS -> WARN */
	assert_int_equal(evaluate(f, 5, 150), 1);
	assert_int_equal(count_calls(f, "notify"), 1);
	advance(&f->clock, next_eval(f) - engine_now(&f->e));
	/* the same definition: picked from the scheduler's cache, still WARN */
	assert_int_equal(evaluate(f, 5, 150), 1);
	assert_int_equal(count_calls(f, "resolve"), 0);
	/* warn goes up to 160: 150 now passes, and the next evaluation
	 * resolves */
	refresh_warn(f, 160);
	advance(&f->clock, next_eval(f) - engine_now(&f->e));
	assert_int_equal(evaluate(f, 5, 150), 1);
	assert_int_equal(count_calls(f, "resolve"), 1);
	assert_int_equal(query_int(f, "SELECT state = 'PASS' FROM alert_state"), 1);
	/* picked with warn 160; warn goes back to 100 while its query runs */
	advance(&f->clock, next_eval(f) - engine_now(&f->e));
	assert_int_equal(hash_set_init(&in_flight, 8), 0);
	assert_int_equal(sched_pick(&f->e, f->st, &in_flight, due, 1, err, sizeof(err)), 1);
	assert_true(due[0].def.warn_value == 160);
	refresh_warn(f, 100);
	advance(&f->clock, 5);
	ev = (struct eval){.due = due[0], .ok = 1, .value = 150, .at_steady = f->clock.steady};
	assert_true(sched_write(&f->e, f->st, &evp, 1) >= 0);
	assert_int_equal(ev.check, STORE_EVAL_CHANGED);
	store_due_clear(&ev.due);
	hash_set_free(&in_flight);
	assert_int_equal(query_int(f, "SELECT state = 'PASS' FROM alert_state"), 1);
	/* due still, and picked again at once with warn 100: WARN */
	assert_true(next_eval(f) <= engine_now(&f->e));
	assert_int_equal(evaluate(f, 5, 150), 1);
	assert_int_equal(query_int(f, "SELECT state = 'WARN' FROM alert_state"), 1);
	assert_int_equal(count_calls(f, "notify"), 2);
}

/* A write is due for a full batch, for one finished evaluation that
 * waited its few milliseconds, at a stop, or when nothing else can come;
 * the whole batch is one commit. */
static void test_write_batching(void **state)
{
	struct fixture *f = *state;
	struct store_counters before, after;

	assert_false(sched_write_due(0, 0, 100, 10, 10, 1));
	assert_false(sched_write_due(1, 100, 100, 10, 10, 0));
	assert_false(sched_write_due(127, 100, 104, 10, 10, 0));
	assert_true(sched_write_due(128, 100, 100, 10, 10, 0));
	assert_true(sched_write_due(1, 100, 105, 10, 10, 0));
	assert_true(sched_write_due(1, 100, 100, 10, 10, 1));
	assert_true(sched_write_due(3, 100, 100, 0, 0, 0));
	assert_false(sched_write_due(3, 100, 100, 0, 1, 0));
	define(f, 8, 1000);
	store_counters(f->st, &before);
	assert_int_equal(evaluate(f, 3, 150), 8);
	store_counters(f->st, &after);
	assert_int_equal(after.commits - before.commits, 1);
	/* 8 states, 8 transitions, 8 notifies */
	assert_int_equal(after.rows - before.rows, 24);
}

/* Enqueues a call of alert id through the store, as an evaluation would. */
static void enqueue(struct fixture *f, int64_t id, enum store_kind kind, int repeat)
{
	char err[256];

	assert_int_equal(store_begin(f->st, err, sizeof(err)), 0);
	if (repeat)
		assert_int_equal(store_call_add_repeat(f->st, id, "warning", engine_now(&f->e), err,
							 sizeof(err)), 0);
	else
		assert_int_equal(store_call_add(f->st, id, kind, kind == STORE_NOTIFY ? "warning"
										: NULL,
						  engine_now(&f->e), err, sizeof(err)), 0);
	assert_int_equal(store_commit(f->st, err, sizeof(err)), 0);
}

static int round_(struct fixture *f)
{
	int failures = 0;
	int n = deliver_round(&f->w, f->st, &f->sender, &failures);

	assert_true(n >= 0);
	return n;
}

/* The backoff doubles from 0.5 s and stops at 60 s, the upper half
 * jittered; a call that keeps failing is tried again on that schedule. */
static void test_backoff_doubles_to_its_cap(void **state)
{
	struct fixture *f = *state;
	uint64_t rng = 99;

	for (int a = 1; a <= 14; a++) {
		int64_t d = 500;
		int64_t lo = INT64_MAX, hi = 0;

		for (int i = 1; i < a && d < 60000; i++)
			d *= 2;
		if (d > 60000)
			d = 60000;
		for (int i = 0; i < 200; i++) {
			int64_t b = deliver_backoff_ms(a, &rng);

			lo = b < lo ? b : lo;
			hi = b > hi ? b : hi;
		}
		assert_true(lo >= d / 2 && hi <= d);
		assert_true(lo < d / 2 + d / 8 && hi > d - d / 8);
	}
	define(f, 1, 1000);
	enqueue(f, 1, STORE_RESOLVE, 0);
	for (int a = 1; a <= 10; a++) {
		int64_t d = a >= 8 ? 60000 : 500 << (a - 1);
		int64_t wait;

		script(&f->server, HTTP_ERR_SERVER, 0, 0);
		assert_int_equal(round_(f), 1);
		wait = query_int(f, "SELECT next_attempt FROM outbox") - engine_now(&f->e);
		assert_true(wait >= d / 2 && wait <= d);
		assert_int_equal(query_int(f, "SELECT attempts FROM outbox"), a);
		/* not before its time */
		advance(&f->clock, wait - 1);
		assert_int_equal(round_(f), 0);
		advance(&f->clock, 1);
	}
	assert_int_equal(round_(f), 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM outbox WHERE status = 'delivered'"), 1);
}

/* A server's Retry-After sets the wait when it is longer than the backoff. */
static void test_retry_after_is_honoured(void **state)
{
	struct fixture *f = *state;

	define(f, 1, 1000);
	enqueue(f, 1, STORE_NOTIFY, 0);
	script(&f->server, HTTP_ERR_SERVER, 0, 7000);
	assert_int_equal(round_(f), 1);
	assert_int_equal(query_int(f, "SELECT next_attempt FROM outbox") - engine_now(&f->e), 7000);
}

/* Puts the waiting calls of alerts 2 and 3 an hour ahead. */
static void wait_an_hour(struct fixture *f)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "UPDATE outbox SET attempts = 1, next_attempt = %lld "
		 "WHERE alert_id > 1", (long long)(engine_now(&f->e) + 3600000));
	assert_int_equal(sqlite3_exec(f->db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static int64_t waiting_due_now(struct fixture *f)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE alert_id > 1 AND "
		 "next_attempt <= %lld", (long long)engine_now(&f->e));
	return query_int(f, sql);
}

/* When a call that had failed goes through, the calls waiting in backoff
 * are retried at once; that retry of everything is itself backed off
 * (0.5 s doubling) while it keeps being triggered. */
static void test_retry_all_after_the_server_answers_again(void **state)
{
	struct fixture *f = *state;

	define(f, 3, 1000);
	for (int64_t id = 1; id <= 3; id++)
		enqueue(f, id, STORE_RESOLVE, 0);
	/* alert 1's call fails once, then goes through */
	script(&f->server, HTTP_ERR_SERVER, 0, 0);
	sqlite3_exec(f->db, "UPDATE outbox SET next_attempt = next_attempt + 3600000 "
		     "WHERE alert_id > 1", NULL, NULL, NULL);
	assert_int_equal(round_(f), 1);
	wait_an_hour(f);
	advance(&f->clock, 1000);
	assert_int_equal(round_(f), 1);
	assert_int_equal(query_int(f, "SELECT status = 'delivered' FROM outbox WHERE alert_id = 1"),
			 1);
	assert_int_equal(waiting_due_now(f), 2);
	/* triggered again at once: not allowed before 0.5 s */
	wait_an_hour(f);
	deliver_retry_waiting(&f->e, f->st);
	assert_int_equal(waiting_due_now(f), 0);
	advance(&f->clock, 500);
	deliver_retry_waiting(&f->e, f->st);
	assert_int_equal(waiting_due_now(f), 2);
	/* the gap doubled: 1 s */
	wait_an_hour(f);
	advance(&f->clock, 999);
	deliver_retry_waiting(&f->e, f->st);
	assert_int_equal(waiting_due_now(f), 0);
	advance(&f->clock, 1);
	deliver_retry_waiting(&f->e, f->st);
	assert_int_equal(waiting_due_now(f), 2);
	/* next allowed 2 s later; not asked for a whole gap after that (4 s):
	 * it starts over at 0.5 s */
	wait_an_hour(f);
	advance(&f->clock, 6000);
	deliver_retry_waiting(&f->e, f->st);
	assert_int_equal(waiting_due_now(f), 2);
	wait_an_hour(f);
	advance(&f->clock, 500);
	deliver_retry_waiting(&f->e, f->st);
	assert_int_equal(waiting_due_now(f), 2);
}

/* A jump of the wall clock moves the stored schedules and the engine's
 * clock together; a slew moves the clock alone. */
static void test_clock_jump_moves_schedules(void **state)
{
	struct fixture *f = *state;
	int64_t before;

	define(f, 1, 1000);
	assert_int_equal(evaluate(f, 5, 50), 1);
	before = next_eval(f);
	f->clock.wall += 7200 * 1000;
	assert_int_equal(engine_follow_clock(&f->e, f->st), 0);
	assert_int_equal(next_eval(f), before + 7200 * 1000);
	assert_int_equal(engine_now(&f->e), f->clock.wall);
	f->clock.wall += 50;
	assert_int_equal(engine_follow_clock(&f->e, f->st), 0);
	assert_int_equal(next_eval(f), before + 7200 * 1000);
	assert_int_equal(engine_now(&f->e), f->clock.wall);
	/* nothing due early, nothing stalled */
	assert_int_equal(evaluate(f, 0, 50), 0);
	advance(&f->clock, next_eval(f) - engine_now(&f->e));
	assert_int_equal(evaluate(f, 0, 50), 1);
}

/* The calls of one alert go out one at a time, oldest first, each only
 * once the one before was delivered. */
static void test_calls_of_an_alert_in_order(void **state)
{
	struct fixture *f = *state;
	int64_t prev = 0;

	define(f, 2, 1000);
	enqueue(f, 1, STORE_NOTIFY, 0);
	enqueue(f, 1, STORE_RESOLVE, 0);
	enqueue(f, 2, STORE_NOTIFY, 0);
	enqueue(f, 1, STORE_NOTIFY, 0);
	script(&f->server, HTTP_ERR_SERVER, 0, 0);  /* alert 1's first, once */
	for (int i = 0; i < 10 && query_int(f, "SELECT count(*) FROM outbox WHERE "
					   "status = 'pending'") > 0; i++) {
		round_(f);
		advance(&f->clock, 1000);
	}
	assert_int_equal(query_int(f, "SELECT count(*) FROM outbox WHERE status = 'delivered'"), 4);
	/* alert 1's rows (ids 1, 2, 4) were sent in id order, the first twice */
	for (size_t i = 0; i < f->server.sent; i++) {
		int64_t id = f->server.sent_id[i];

		if (id == 3)
			continue;
		assert_true(id >= prev);
		prev = id;
	}
	assert_int_equal(f->server.sent, 5);
}

/* A repeat still waiting when its alert changes state is dropped: it
 * would remind of a state that is over. Not one whose attempt may have
 * reached the server: that one goes out, still before the change's call. */
static void test_repeat_dropped_unless_maybe_sent(void **state)
{
	struct fixture *f = *state;

	define(f, 2, 1000);
	enqueue(f, 1, STORE_NOTIFY, 1);
	enqueue(f, 2, STORE_NOTIFY, 1);
	script(&f->server, HTTP_ERR_SERVER, 0, 0);     /* refused: not sent */
	script(&f->server, HTTP_ERR_TRANSPORT, 1, 0);  /* timed out: may have been */
	assert_int_equal(round_(f), 2);
	enqueue(f, 1, STORE_RESOLVE, 0);
	enqueue(f, 2, STORE_RESOLVE, 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM outbox WHERE kind = 'notify'"), 1);
	advance(&f->clock, 60000);
	round_(f);
	round_(f);
	/* alert 2's repeat went out again, then both resolves */
	assert_int_equal(query_int(f, "SELECT count(*) FROM outbox WHERE status = 'delivered'"), 3);
	assert_int_equal(f->server.sent, 5);
	assert_true(f->server.sent_id[2] == 2 || f->server.sent_id[3] == 2);
	assert_int_equal(query_int(f, "SELECT count(*) FROM outbox o WHERE alert_id = 2 AND "
				      "kind = 'notify' AND status = 'delivered' AND id < (SELECT id "
				      "FROM outbox WHERE alert_id = 2 AND kind = 'resolve')"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fixed_rate_without_drift, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_evaluations_not_replayed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refresh_seen_by_the_next_pick, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_write_batching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_doubles_to_its_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_is_honoured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_all_after_the_server_answers_again,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_jump_moves_schedules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calls_of_an_alert_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_dropped_unless_maybe_sent, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
