#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "clock.h"
#include "db.h"
#include "hash.h"
#include "log.h"
#include "rules.h"
#include "store.h"

#define EVAL_POOL 512            /* evaluations picked and not yet written, at most */
#define WRITE_BATCH 128          /* finished evaluations that make a write due at once */
#define WRITE_DELAY_MS 5         /* the longest a finished evaluation waits for its write */
#define CALL_BATCH 8             /* outbox rows claimed per delivery claim */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_CAP_MS 60000
#define CLIENT_ERROR_ATTEMPTS 3  /* a 4xx is dead after this many attempts */
#define DB_WRITE_ATTEMPTS 4      /* a failing write is tried this often, then fatal */
#define PRUNE_EVERY_MS (3600 * 1000)
#define PRUNE_BATCH 5000         /* rows per table per prune transaction */
#define RETRY_AFTER_CAP_MS 600000 /* the longest Retry-After honoured */
#define SIGNAL_POLL_MS 250       /* the main loop's tick */
#define FETCH_RETRY_FIRST_MS 1000
#define SERVER_DOWN_QUERIES 3    /* failed queries in a row that mean the server is down */
#define EVAL_THREADS 2           /* the evaluation scheduler and the query thread */
#define QUERY_POLL_MS 100        /* the longest the query thread waits for the network */

struct engine {
	const struct config *cfg;
	atomic_int stop;
	atomic_int fatal;                /* exit status of a fatal error, 0 if none */
	pthread_mutex_t write_lock;      /* serialises write transactions */
	pthread_mutex_t wake_lock;
	pthread_cond_t eval_cond;
	pthread_cond_t deliver_cond;
	unsigned long eval_gen;          /* bumped to wake evaluation workers */
	unsigned long deliver_gen;       /* bumped to wake delivery workers */
	int64_t once_cutoff;             /* --once: nothing later than this is claimed */
	pthread_cond_t main_cond;        /* wakes the main loop (a signal, a stop) */
	unsigned long main_gen;
	atomic_int reload;               /* SIGHUP: re-fetch the definitions */
	atomic_llong claims;             /* outbox claims made: each one's lease token */
	/* The engine's wall clock is clock_steady_ms() + clock_offset
	 * (engine_now). It follows CLOCK_REALTIME, but a jump of the real
	 * clock reaches it only together with the shift of the stored times,
	 * under write_lock: a time taken under write_lock is always in the
	 * database's timebase. Times measured outside it are monotonic stamps
	 * turned into wall times under it (engine_wall). */
	atomic_llong clock_offset;
	/* Queries (any evaluation worker) that failed in a row, and whether
	 * the server answered one again after SERVER_DOWN_QUERIES of them:
	 * then the calls waiting in backoff are retried at once. */
	atomic_int failing_queries;
	atomic_int server_back;
	/* Retrying every waiting call at once is itself backed off (under
	 * wake_lock): not before retry_all_at, then retry_all_gap later. */
	int64_t retry_all_at;            /* mono_ms() */
	int64_t retry_all_gap;
	atomic_long evaluated, failed, notified, resolved, dead;
	/* Commits that wrote rows, and the rows: of the evaluation scheduler
	 * (evaluations) and of the delivery workers. */
	atomic_long eval_commits, eval_rows, call_commits, call_rows;
	struct eval_queue *queue;        /* between the scheduler and the query thread */
};

struct worker {
	struct engine *e;
	int index;
	pthread_t thread;
	int started;
	uint64_t rng;
};

static int64_t wall_ms(void)
{
	return clock_wall_ms();
}

/* Steady time: every interval the engine measures, and the base of its
 * wall clock (clock.h: it counts a suspend). */
static int64_t mono_ms(void)
{
	return clock_steady_ms();
}

/* The engine's wall clock, in ms since the epoch. */
static int64_t engine_now(struct engine *e)
{
	return mono_ms() + atomic_load(&e->clock_offset);
}

/* The engine's wall time of a mono_ms() stamp; call under write_lock. */
static int64_t engine_wall(struct engine *e, int64_t mono)
{
	return mono + atomic_load(&e->clock_offset);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int stopping(struct engine *e)
{
	return atomic_load(&e->stop);
}

static void wake(struct engine *e, int eval, int deliver)
{
	pthread_mutex_lock(&e->wake_lock);
	if (eval) {
		e->eval_gen++;
		pthread_cond_broadcast(&e->eval_cond);
	}
	if (deliver) {
		e->deliver_gen++;
		pthread_cond_broadcast(&e->deliver_cond);
	}
	pthread_mutex_unlock(&e->wake_lock);
}

/* Wakes the main thread's loop (a stop, a SIGHUP). */
static void wake_main(struct engine *e)
{
	pthread_mutex_lock(&e->wake_lock);
	e->main_gen++;
	pthread_cond_broadcast(&e->main_cond);
	pthread_mutex_unlock(&e->wake_lock);
}

static void wake_queries(struct engine *e);

static void engine_stop(struct engine *e, int fatal)
{
	if (fatal) {
		int none = 0;

		atomic_compare_exchange_strong(&e->fatal, &none, fatal);
	}
	atomic_store(&e->stop, 1);
	wake(e, 1, 1);
	wake_main(e);
	wake_queries(e);
}

/* Stops the engine after a fatal error, to exit with `status`. The first
 * fatal error is the one line logged at CRITICAL; those that follow while
 * the engine stops (other workers meeting the same fault) are errors. */
static void engine_fatal(struct engine *e, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void engine_fatal(struct engine *e, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int none = 0;
	int first;

	assert(status != 0);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	first = atomic_compare_exchange_strong(&e->fatal, &none, status);
	log_msg(first ? LOG_CRITICAL : LOG_ERROR, "%s", msg);
	engine_stop(e, status);
}

static unsigned long generation(struct engine *e, const unsigned long *gen)
{
	unsigned long g;

	pthread_mutex_lock(&e->wake_lock);
	g = *gen;
	pthread_mutex_unlock(&e->wake_lock);
	return g;
}

/* Sleeps up to wait_ms, until *gen moves past seen. A stop moves every
 * generation on (engine_stop), so it ends the wait too; a thread that
 * waits on after the stop (the scheduler, for the evaluations the query
 * thread hands back) sleeps until woken rather than spinning. */
static void wait_for(struct engine *e, pthread_cond_t *cond, const unsigned long *gen,
		     unsigned long seen, int64_t wait_ms)
{
	struct timespec deadline;
	int64_t ns;

	if (wait_ms <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	ns = deadline.tv_nsec + (wait_ms % 1000) * 1000000L;
	deadline.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000L);
	deadline.tv_nsec = (long)(ns % 1000000000L);
	pthread_mutex_lock(&e->wake_lock);
	while (*gen == seen)
		if (pthread_cond_timedwait(cond, &e->wake_lock, &deadline) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&e->wake_lock);
}

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

/* Delay before attempt number `attempts` + 1: exponential from
 * BACKOFF_FIRST_MS, capped, with the upper half jittered. */
static int64_t backoff_ms(int attempts, uint64_t *rng)
{
	int64_t d = BACKOFF_FIRST_MS;

	for (int i = 1; i < attempts && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	return d / 2 + (int64_t)(next_random(rng) % (uint64_t)(d / 2 + 1));
}

/* A write transaction: fn runs between BEGIN IMMEDIATE and COMMIT under the
 * engine's write lock; it must only read and write the database (it may
 * run more than once). */
typedef int (*write_fn)(struct store *st, void *arg, char *err, size_t errlen);

/* Runs fn under the write lock, retrying a failure a few times: fn runs
 * between BEGIN IMMEDIATE and COMMIT, or, with own_tx, fn is a store
 * function that is a transaction of its own. When it keeps failing the
 * engine stops with exit status 74 and -1 is returned: the caller must not
 * act as if it had been written. */
static int write_retry(struct engine *e, struct store *st, write_fn fn, void *arg, int own_tx,
		       const char *what)
{
	char err[512] = "";

	for (int attempt = 1; attempt <= DB_WRITE_ATTEMPTS; attempt++) {
		int rc;

		pthread_mutex_lock(&e->write_lock);
		if (own_tx) {
			rc = fn(st, arg, err, sizeof(err));
		} else {
			rc = store_begin(st, err, sizeof(err));
			if (rc == 0) {
				rc = fn(st, arg, err, sizeof(err));
				if (rc == 0)
					rc = store_commit(st, err, sizeof(err));
				else
					store_rollback(st);
			}
		}
		pthread_mutex_unlock(&e->write_lock);
		if (rc == 0)
			return 0;
		log_msg(LOG_ERROR, "database write failed what=%s attempt=%d error=\"%s\"", what,
			attempt, err);
		/* After a fatal error, retrying only delays the exit. */
		if (atomic_load(&e->fatal))
			break;
		if (attempt < DB_WRITE_ATTEMPTS)
			sleep_ms(100 * attempt);
	}
	engine_fatal(e, ENGINE_EXIT_DB, "database write keeps failing what=%s error=\"%s\": stopping",
		     what, err);
	return -1;
}

/* write_retry of fn in a transaction. */
static int write_tx(struct engine *e, struct store *st, write_fn fn, void *arg, const char *what)
{
	return write_retry(e, st, fn, arg, 0, what);
}

/* Reports a failed claim; stops the engine when they keep failing. */
static void claim_failed(struct engine *e, int *failures, const char *what, const char *err)
{
	log_msg(LOG_ERROR, "database claim failed what=%s error=\"%s\"", what, err);
	if (++*failures >= DB_WRITE_ATTEMPTS) {
		engine_fatal(e, ENGINE_EXIT_DB,
			     "database claims keep failing what=%s error=\"%s\": stopping", what, err);
		return;
	}
	sleep_ms(100 * *failures);
}

/* Adds a worker's write counters to the engine's (commits and rows), and
 * closes its store. */
static void close_worker_store(struct store *st, atomic_long *commits, atomic_long *rows)
{
	struct store_counters c;

	if (st == NULL)
		return;
	store_counters(st, &c);
	atomic_fetch_add(commits, (long)c.commits);
	atomic_fetch_add(rows, (long)c.rows);
	store_close(st);
}

/* Notes the outcome of a query. Queries run every interval whatever the
 * outbox holds, so they are the first to see a server come back: one it
 * answers (even with a 4xx or a bad body) after SERVER_DOWN_QUERIES in a
 * row that it did not (5xx, transport error) ends an outage, and the
 * delivery workers then retry the calls waiting in backoff at once rather
 * than each waiting out its own delay. Only queries count: a server that
 * answers queries but refuses calls leaves the calls backing off. */
static void query_answered(struct engine *e, int rc)
{
	if (rc == HTTP_ERR_TRANSPORT || rc == HTTP_ERR_SERVER) {
		if (!stopping(e))
			atomic_fetch_add(&e->failing_queries, 1);
		return;
	}
	if (rc == HTTP_ERR_INTERNAL)
		return;
	if (atomic_exchange(&e->failing_queries, 0) >= SERVER_DOWN_QUERIES) {
		atomic_store(&e->server_back, 1);
		wake(e, 0, 1);
	}
}

/* The configured timeouts and attempts, and the engine's stop flag (no
 * retry once the engine stops). */
static struct http_opts engine_api_opts(struct engine *e)
{
	const struct config *cfg = e->cfg;
	struct http_opts opts = {
		.base_url = cfg->server,
		.connect_timeout_ms = (long)cfg->connect_timeout_ms,
		.timeout_ms = (long)cfg->timeout_ms,
		.attempts = cfg->attempts,
		.stop = &e->stop,
	};

	return opts;
}

/* A client of the alerts server for one thread. */
static struct http *engine_api_new(struct engine *e, char *err, size_t errlen)
{
	struct http_opts opts = engine_api_opts(e);

	return http_new(&opts, err, errlen);
}

/* ---- evaluation ---- */

struct eval {
	struct store_due due;
	int abandoned;          /* not evaluated: give it back */
	int ok;
	double value;
	int64_t at_mono;        /* mono_ms() when the answer came */
	int64_t at;             /* its wall time, set by the write */
	char error[256];
	/* outcome, filled by the write */
	enum store_eval_check check;    /* not CURRENT: nothing was written */
	enum rules_level from;
	struct rules_result result;
};

/* Evaluations in flight. The scheduler picks due alerts and puts them in
 * todo; the query thread takes them, queries (-c at a time), and puts
 * them in done; the scheduler writes the done ones in one transaction.
 * One thread and one connection do every evaluation write, so a commit
 * carries as many evaluations as finished since the last one, and an
 * evaluation writes its alert's row once: a pick writes nothing (the
 * scheduler remembers what it holds), the write moves next_eval on. */
struct eval_queue {
	pthread_mutex_t lock;
	pthread_cond_t work;             /* the idle query thread waits for todo */
	struct http_multi *queries;      /* the query thread's, woken when todo grows */
	struct eval **todo;              /* ring of cap: picked, not yet queried */
	size_t todo_head, todo_len;
	struct eval **done;              /* cap: queried or abandoned, not yet written */
	size_t done_len;
	int64_t first_done;              /* mono_ms() when done last became non-empty */
	size_t cap;
	int closed;                      /* the scheduler has finished: the query thread exits */
};

static struct eval_queue *eval_queue_new(size_t cap)
{
	struct eval_queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->cap = cap;
	q->todo = calloc(cap, sizeof(*q->todo));
	q->done = calloc(cap, sizeof(*q->done));
	if (q->todo == NULL || q->done == NULL) {
		free(q->todo);
		free(q->done);
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	return q;
}

static void eval_queue_free(struct eval_queue *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->lock);
	free(q->todo);
	free(q->done);
	free(q);
}

/* Wakes the query thread from its wait on the network: at a stop it cuts
 * off the queries in flight at once. */
static void wake_queries(struct engine *e)
{
	struct eval_queue *q = e->queue;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	if (q->queries != NULL)
		http_multi_wakeup(q->queries);
	pthread_mutex_unlock(&q->lock);
}

/* Under q->lock. */
static void push_done(struct eval_queue *q, struct eval *x, int64_t now_mono)
{
	assert(q->done_len < q->cap);
	if (q->done_len == 0)
		q->first_done = now_mono;
	q->done[q->done_len++] = x;
}

struct eval_batch {
	struct engine *e;
	struct eval **ev;
	size_t n;
};

/* Writes finished evaluations: each moves its alert's next_eval on from
 * the slot it was picked for (the stored one: a clock shift since the
 * pick is kept), so an evaluation abandoned at a stop, or lost in a
 * crash, leaves its alert due. One whose definition changed while its
 * query ran is written as abandoned: its alert, still due, is evaluated
 * again at once with the new definition (thresholds, messages, interval). */
static int write_evals(struct store *st, void *arg, char *err, size_t errlen)
{
	struct eval_batch *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		struct eval *ev = b->ev[i];
		struct rules_state s;
		struct rules_result *r = &ev->result;
		int64_t next;

		ev->at = engine_wall(b->e, ev->at_mono);
		ev->check = STORE_EVAL_CURRENT;
		memset(r, 0, sizeof(*r));
		if (ev->abandoned)
			continue;
		if (store_eval_get(st, &ev->due, &s, &next, &ev->check, err, errlen) != 0)
			return -1;
		if (ev->check != STORE_EVAL_CURRENT)
			continue;
		next = rules_next_eval(next, ev->due.def.interval_ms, ev->at);
		if (!ev->ok) {
			if (store_eval_put_failed(st, ev->due.alert_id, ev->at, ev->error, next, err,
						  errlen) != 0)
				return -1;
			continue;
		}
		ev->from = s.state;
		rules_step(&ev->due.def, &s, ev->value, ev->at, r);
		if (store_eval_put_ok(st, ev->due.alert_id, &r->next, ev->value, ev->at, next, err,
				      errlen) != 0)
			return -1;
		if (r->changed && store_transition_add(st, ev->due.alert_id, ev->at, s.state,
						       r->next.state, ev->value, err, errlen) != 0)
			return -1;
		if (r->call == RULES_CALL_NOTIFY && r->changed &&
		    store_outbox_add(st, ev->due.alert_id, STORE_NOTIFY, r->message, ev->at, err,
				     errlen) != 0)
			return -1;
		if (r->call == RULES_CALL_NOTIFY && !r->changed &&
		    store_outbox_add_repeat(st, ev->due.alert_id, r->message, ev->at, err,
					    errlen) != 0)
			return -1;
		if (r->call == RULES_CALL_RESOLVE &&
		    store_outbox_add(st, ev->due.alert_id, STORE_RESOLVE, NULL, ev->at, err,
				     errlen) != 0)
			return -1;
	}
	return 0;
}

/* Logs what a committed batch did; returns the number of calls enqueued. */
static size_t report_evals(struct engine *e, const struct eval_batch *b)
{
	size_t calls = 0;

	for (size_t i = 0; i < b->n; i++) {
		const struct eval *ev = b->ev[i];
		char name[300];

		if (ev->abandoned)
			continue;
		if (ev->check == STORE_EVAL_CHANGED) {
			log_msg(LOG_DEBUG, "evaluation discarded alert=%s: the definition changed "
				"while its query ran", log_quote(name, sizeof(name), ev->due.def.name));
			continue;
		}
		atomic_fetch_add(&e->evaluated, 1);
		if (!ev->ok) {
			atomic_fetch_add(&e->failed, 1);
			log_msg(LOG_WARN, "query failed alert=%s error=\"%s\"",
				log_quote(name, sizeof(name), ev->due.def.name), ev->error);
			continue;
		}
		if (ev->check == STORE_EVAL_RETIRED)
			continue;
		if (ev->result.changed)
			log_msg(LOG_INFO, "transition alert=%s from=%s to=%s value=%.5f",
				log_quote(name, sizeof(name), ev->due.def.name),
				rules_level_name(ev->from), rules_level_name(ev->result.next.state),
				ev->value);
		else if (log_enabled(LOG_DEBUG))
			log_msg(LOG_DEBUG, "evaluated alert=%s state=%s value=%.5f",
				log_quote(name, sizeof(name), ev->due.def.name),
				rules_level_name(ev->result.next.state), ev->value);
		if (ev->result.call != RULES_CALL_NONE) {
			calls++;
			if (log_enabled(LOG_DEBUG))
				log_msg(LOG_DEBUG, "enqueued kind=%s alert=%s",
					ev->result.call == RULES_CALL_NOTIFY ? "notify" : "resolve",
					log_quote(name, sizeof(name), ev->due.def.name));
		}
	}
	return calls;
}

/* The alerts picked and not yet written, by id. */
static int in_flight_has(int64_t id, void *arg)
{
	const struct hash_set *set = arg;

	return hash_set_has(set, hash_u64((uint64_t)id), (uint64_t)id);
}

static void in_flight_add(struct hash_set *set, int64_t id)
{
	hash_set_add(set, hash_u64((uint64_t)id), (uint64_t)id);
}

static void in_flight_remove(struct hash_set *set, int64_t id)
{
	hash_set_remove(set, hash_u64((uint64_t)id), (uint64_t)id);
}

/* Picks up to max due alerts that are not in flight into due[]. A pick
 * writes nothing: it runs under the write lock only so that its now and
 * the stored times are in the same timebase (a clock shift moves both).
 * Returns the number picked, or -1 with a message in err. */
static long pick_due(struct engine *e, struct store *st, struct hash_set *in_flight,
		     struct store_due *due, size_t max, char *err, size_t errlen)
{
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&e->write_lock);
	rc = store_pick_due(st, e->once_cutoff ? e->once_cutoff : engine_now(e), in_flight_has,
			    in_flight, in_flight->n, due, max, &n, err, errlen);
	pthread_mutex_unlock(&e->write_lock);
	return rc == 0 ? (long)n : -1;
}

/* Moves every evaluation not yet taken by the query thread to done,
 * abandoned (the engine stops). */
static void abandon_todo(struct eval_queue *q)
{
	int64_t now = mono_ms();

	pthread_mutex_lock(&q->lock);
	while (q->todo_len > 0) {
		struct eval *x = q->todo[q->todo_head];

		q->todo_head = (q->todo_head + 1) % q->cap;
		q->todo_len--;
		x->abandoned = 1;
		push_done(q, x, now);
	}
	pthread_mutex_unlock(&q->lock);
}

/* The evaluation scheduler: picks due alerts for the query thread and
 * writes what they found, WRITE_BATCH at a time or after WRITE_DELAY_MS,
 * whichever comes first, in one transaction. Leaves when the
 * engine stops (once every evaluation in flight is written or abandoned)
 * or, with --once, when nothing due is left. */
static void *eval_scheduler(void *arg)
{
	struct worker *w = arg;
	struct engine *e = w->e;
	const struct config *cfg = e->cfg;
	struct eval_queue *q = e->queue;
	struct store *st = NULL;
	struct eval *pool = NULL;
	struct eval **free_list = NULL;
	struct eval **batch = NULL;
	struct store_due *due = NULL;
	struct hash_set in_flight = {0};
	size_t cap = q->cap;
	size_t nfree = 0;
	int once_done = 0;
	int pick_failures = 0;
	char err[512];

	pool = calloc(cap, sizeof(*pool));
	free_list = calloc(cap, sizeof(*free_list));
	batch = calloc(cap, sizeof(*batch));
	due = calloc(cap, sizeof(*due));
	if (!pool || !free_list || !batch || !due || hash_set_init(&in_flight, cap) != 0) {
		engine_fatal(e, ENGINE_EXIT_DB, "evaluation scheduler: out of memory");
		goto out;
	}
	for (size_t i = 0; i < cap; i++)
		free_list[nfree++] = &pool[i];
	if (store_open(cfg->db_path, cfg->sync_full, &st, err, sizeof(err)) != 0) {
		engine_fatal(e, ENGINE_EXIT_DB, "evaluation scheduler: %s", err);
		goto out;
	}
	for (;;) {
		unsigned long seen = generation(e, &e->eval_gen);
		int stop = stopping(e);
		int64_t now_mono = mono_ms();
		int64_t next = INT64_MAX, now, wait;
		size_t done_len, todo_len;
		int64_t first_done;
		int busy = 0;

		if (stop)
			abandon_todo(q);
		pthread_mutex_lock(&q->lock);
		done_len = q->done_len;
		todo_len = q->todo_len;
		first_done = q->first_done;
		pthread_mutex_unlock(&q->lock);
		/* Write what is done: a full batch, or when the oldest waited
		 * long enough, or when the query thread has nothing left and
		 * there is no room to pick more. */
		if (done_len > 0 && (stop || done_len >= WRITE_BATCH ||
				     now_mono - first_done >= WRITE_DELAY_MS ||
				     (nfree == 0 && todo_len == 0))) {
			struct eval_batch b = {e, batch, 0};
			size_t calls = 0;

			pthread_mutex_lock(&q->lock);
			memcpy(batch, q->done, q->done_len * sizeof(*batch));
			b.n = q->done_len;
			q->done_len = 0;
			pthread_mutex_unlock(&q->lock);
			/* After a fatal error nothing more is written. */
			if (!atomic_load(&e->fatal) &&
			    write_tx(e, st, write_evals, &b, "evaluations") == 0)
				calls = report_evals(e, &b);
			for (size_t i = 0; i < b.n; i++) {
				in_flight_remove(&in_flight, batch[i]->due.alert_id);
				store_due_clear(&batch[i]->due);
				free_list[nfree++] = batch[i];
			}
			if (calls > 0)
				wake(e, 0, 1);
			busy = 1;
			done_len = 0;
		}
		/* Pick what is due, as far as there is room. */
		if (!stop && !once_done && nfree > 0 && !atomic_load(&e->fatal)) {
			int due_now = e->once_cutoff != 0;

			if (!due_now) {
				if (store_next_pick(st, in_flight_has, &in_flight, in_flight.n, &next, err,
						    sizeof(err)) != 0) {
					log_msg(LOG_ERROR, "next due: %s", err);
					next = INT64_MAX;
				}
				due_now = next <= engine_now(e);
			}
			if (due_now) {
				long n = pick_due(e, st, &in_flight, due, nfree, err, sizeof(err));

				if (n < 0)
					claim_failed(e, &pick_failures, "evaluations", err);
				else
					pick_failures = 0;
				if (n == 0 && e->once_cutoff)
					once_done = 1;
				if (n > 0) {
					pthread_mutex_lock(&q->lock);
					for (long i = 0; i < n; i++) {
						struct eval *x = free_list[--nfree];

						memset(x, 0, sizeof(*x));
						x->due = due[i];
						in_flight_add(&in_flight, x->due.alert_id);
						q->todo[(q->todo_head + q->todo_len++) % cap] = x;
					}
					pthread_cond_broadcast(&q->work);
					if (q->queries != NULL)
						http_multi_wakeup(q->queries);
					pthread_mutex_unlock(&q->lock);
					busy = 1;
				}
			}
		}
		if (busy)
			continue;
		if ((stop || once_done || atomic_load(&e->fatal)) && nfree == cap)
			break;
		/* Nothing to do now: sleep until the next alert falls due, the
		 * oldest finished evaluation is due for its write, or a query
		 * worker or the engine wakes us. */
		now = engine_now(e);
		wait = cfg->resolution_ms;
		if (!stop && !once_done && nfree > 0 && next != INT64_MAX && next - now < wait)
			wait = next - now;
		if (done_len > 0 && first_done + WRITE_DELAY_MS - now_mono < wait)
			wait = first_done + WRITE_DELAY_MS - now_mono;
		if (wait < 1)
			wait = 1;
		wait_for(e, &e->eval_cond, &e->eval_gen, seen, wait);
	}
out:
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	hash_set_free(&in_flight);
	free(due);
	free(batch);
	free(free_list);
	free(pool);
	close_worker_store(st, &e->eval_commits, &e->eval_rows);
	return NULL;
}

/* A query ended: its evaluation is done. */
static void query_done(void *tag, int rc, double value, const char *error, void *arg)
{
	struct engine *e = arg;
	struct eval_queue *q = e->queue;
	struct eval *x = tag;
	int signal;

	x->ok = rc == HTTP_OK;
	x->value = value;
	snprintf(x->error, sizeof(x->error), "%s", error);
	query_answered(e, rc);
	if (!x->ok && stopping(e))
		x->abandoned = 1; /* cut short by the stop, not a failure */
	x->at_mono = mono_ms();
	pthread_mutex_lock(&q->lock);
	push_done(q, x, x->at_mono);
	/* The scheduler is woken for the first one (it then sleeps until
	 * WRITE_DELAY_MS later), for a full batch, and when the queries run
	 * out of work. */
	signal = q->done_len == 1 || q->done_len == WRITE_BATCH ||
		 (q->todo_len == 0 && q->done_len > 1);
	pthread_mutex_unlock(&q->lock);
	if (signal)
		wake(e, 1, 0);
}

/* The query thread: keeps up to -c queries of picked evaluations in
 * flight, each slot over its own keep-alive connection, from one thread
 * (no thread per connection sleeping and waking for every request). At a
 * stop the queries in flight are cut off: their alerts stay due. */
static void *query_thread(void *arg)
{
	struct worker *w = arg;
	struct engine *e = w->e;
	struct eval_queue *q = e->queue;
	struct http_opts opts = engine_api_opts(e);
	struct http_multi *m;
	struct eval **taken = NULL;
	char err[HTTP_ERR_MAX];

	m = http_multi_new(&opts, (size_t)e->cfg->concurrency, err, sizeof(err));
	taken = calloc((size_t)e->cfg->concurrency, sizeof(*taken));
	if (m == NULL || taken == NULL) {
		engine_fatal(e, ENGINE_EXIT_DB, "query thread: %s", m ? "out of memory" : err);
		http_multi_free(m);
		free(taken);
		return NULL;
	}
	pthread_mutex_lock(&q->lock);
	q->queries = m;
	pthread_mutex_unlock(&q->lock);
	for (;;) {
		size_t n = 0, idle = http_multi_idle(m);
		int leave;

		pthread_mutex_lock(&q->lock);
		while (http_multi_busy(m) == 0 && q->todo_len == 0 && !q->closed)
			pthread_cond_wait(&q->work, &q->lock);
		leave = q->closed && q->todo_len == 0 && http_multi_busy(m) == 0;
		while (n < idle && q->todo_len > 0) {
			taken[n++] = q->todo[q->todo_head];
			q->todo_head = (q->todo_head + 1) % q->cap;
			q->todo_len--;
		}
		if (leave)
			q->queries = NULL;
		pthread_mutex_unlock(&q->lock);
		if (leave)
			break;
		for (size_t i = 0; i < n; i++) {
			struct eval *x = taken[i];
			int rc;

			if (stopping(e))
				query_done(x, HTTP_ERR_TRANSPORT, 0, "stopped", e); /* abandoned */
			else if ((rc = http_multi_start(m, x->due.def.query, x, err, sizeof(err))) != HTTP_OK)
				query_done(x, rc, 0, err, e);
		}
		if (stopping(e))
			http_multi_cancel(m, query_done, e);
		else if (http_multi_busy(m) > 0 && http_multi_run(m, QUERY_POLL_MS, query_done, e) != 0)
			sleep_ms(QUERY_POLL_MS); /* logged; do not spin */
	}
	http_multi_free(m);
	free(taken);
	return NULL;
}

/* ---- delivery ---- */

struct delivery {
	struct engine *e;
	const struct store_call *call;
	int rc;                 /* an enum http_status */
	int dropped;            /* a failed repeat whose state is over: deleted */
	int64_t at_mono;        /* mono_ms() when the answer came */
	int64_t retry_in;       /* backoff before the next attempt */
	struct store_failure failure;
	enum store_outcome outcome;
};

static int write_delivery(struct store *st, void *arg, char *err, size_t errlen)
{
	struct delivery *d = arg;
	int64_t at = engine_wall(d->e, d->at_mono);

	if (d->rc == HTTP_OK)
		return store_call_delivered(st, d->call, at, &d->outcome, err, errlen);
	/* A repeat that may have reached the server stays: the history must
	 * not lack a call the server may have taken. */
	if (!d->failure.maybe_sent &&
	    store_call_drop_superseded(st, d->call, &d->dropped, err, errlen) != 0)
		return -1;
	if (d->dropped)
		return 0;
	d->failure.at = at;
	d->failure.next_attempt = at + d->retry_in;
	return store_call_failed(st, d->call, &d->failure, &d->outcome, err, errlen);
}

struct release {
	const struct store_call *call;
	int maybe_sent;
};

static int write_release(struct store *st, void *arg, char *err, size_t errlen)
{
	struct release *r = arg;

	return store_call_release(st, r->call, r->maybe_sent, err, errlen);
}

struct superseded {
	const struct store_call *call;
	int dropped;
};

static int write_drop_superseded(struct store *st, void *arg, char *err, size_t errlen)
{
	struct superseded *s = arg;

	return store_call_drop_superseded(st, s->call, &s->dropped, err, errlen);
}

struct retry_now {
	struct engine *e;
	int64_t n;
};

static int write_retry_now(struct store *st, void *arg, char *err, size_t errlen)
{
	struct retry_now *r = arg;

	return store_calls_retry_now(st, engine_now(r->e), &r->n, err, errlen);
}

/* Makes the calls waiting in backoff due now: the server answers again.
 * A server that fails most calls answers some, and each would set every
 * waiting call going again: so this runs at most once per gap, the gap
 * doubling from BACKOFF_FIRST_MS to BACKOFF_CAP_MS while it keeps being
 * asked for, and starting over once it was not asked for a whole gap. */
static void retry_waiting(struct engine *e, struct store *st)
{
	struct retry_now r = {.e = e};
	int64_t now = mono_ms();
	int allowed = 0;

	pthread_mutex_lock(&e->wake_lock);
	if (now >= e->retry_all_at) {
		if (now >= e->retry_all_at + e->retry_all_gap)
			e->retry_all_gap = BACKOFF_FIRST_MS;
		e->retry_all_at = now + e->retry_all_gap;
		e->retry_all_gap = e->retry_all_gap * 2 < BACKOFF_CAP_MS ? e->retry_all_gap * 2
									 : BACKOFF_CAP_MS;
		allowed = 1;
	}
	pthread_mutex_unlock(&e->wake_lock);
	if (!allowed)
		return;
	if (write_tx(e, st, write_retry_now, &r, "retry calls") == 0 && r.n > 0)
		log_msg(LOG_INFO, "server answers again: retrying calls=%lld now", (long long)r.n);
}

/* The wait before the next attempt of a call that failed: its backoff,
 * or longer when the server asked for it (Retry-After, capped). */
static int64_t retry_delay(struct worker *w, struct http *api, int attempts)
{
	int64_t d = backoff_ms(attempts, &w->rng);
	int64_t asked = http_retry_after_ms(api);

	if (asked > RETRY_AFTER_CAP_MS)
		asked = RETRY_AFTER_CAP_MS;
	return asked > d ? asked : d;
}

/* Logs the outcome of a delivery that was written. Returns 1 when the
 * call was delivered. */
static int report_delivery(struct engine *e, const struct delivery *d, const char *error)
{
	const struct store_call *c = d->call;
	const char *kind = c->kind == STORE_NOTIFY ? "notify" : "resolve";
	char name[300], quoted[600];

	log_quote(name, sizeof(name), c->name);
	log_quote(quoted, sizeof(quoted), error);
	if (d->dropped) {
		log_msg(LOG_INFO, "dropped repeat alert=%s after a failed attempt: the state "
			"changed error=%s", name, quoted);
		return 0;
	}
	switch (d->outcome) {
	case STORE_CALL_DELIVERED:
		atomic_fetch_add(c->kind == STORE_NOTIFY ? &e->notified : &e->resolved, 1);
		if (c->kind == STORE_NOTIFY)
			log_msg(LOG_INFO, "delivered kind=notify alert=%s message=%s attempts=%d",
				name, log_quote(quoted, sizeof(quoted), c->message),
				c->attempts + 1);
		else
			log_msg(LOG_INFO, "delivered kind=resolve alert=%s attempts=%d", name,
				c->attempts + 1);
		return 1;
	case STORE_CALL_DEAD:
		atomic_fetch_add(&e->dead, 1);
		log_msg(LOG_ERROR, "gave up kind=%s alert=%s attempts=%d reason=%s error=%s",
			kind, name, c->attempts + 1, d->failure.rejected ? "rejected" : "too-old",
			quoted);
		return 0;
	case STORE_CALL_LOST:
		log_msg(LOG_WARN, "lease lost kind=%s alert=%s: the call was claimed again "
			"while this worker stalled; its outcome is not written", kind, name);
		return 0;
	case STORE_CALL_WAITS:
		break;
	}
	log_msg(LOG_WARN, "delivery failed kind=%s alert=%s attempts=%d retry_in_ms=%lld "
		"error=%s", kind, name, c->attempts + 1, (long long)d->retry_in, quoted);
	return 0;
}

/* Attempts one claimed call and records the outcome. Returns 1 when it
 * was delivered, 0 when not, -1 when the outcome could not be written. */
static int deliver_one(struct worker *w, struct store *st, struct http *api,
		       const struct store_call *c)
{
	struct engine *e = w->e;
	struct delivery d = {.e = e, .call = c};
	char error[512] = "";
	char name[300];

	/* A repeat claimed in a batch may have been superseded by a state
	 * change of its alert since: the state it repeats is over. */
	if (c->repeat) {
		struct superseded sup = {.call = c};

		if (write_tx(e, st, write_drop_superseded, &sup, "drop repeat") != 0)
			return -1;
		if (sup.dropped) {
			log_msg(LOG_DEBUG, "dropped repeat alert=%s: the state changed",
				log_quote(name, sizeof(name), c->name));
			return 0;
		}
	}
	if (c->kind == STORE_NOTIFY)
		d.rc = http_notify(api, c->name, c->message, error, sizeof(error));
	else
		d.rc = http_resolve(api, c->name, error, sizeof(error));
	d.at_mono = mono_ms();
	if (stopping(e) && d.rc == HTTP_ERR_TRANSPORT) {
		/* Cut short by the stop: not an attempt, but it may have
		 * reached the server. */
		struct release rel = {.call = c, .maybe_sent = 1};

		return write_tx(e, st, write_release, &rel, "release call") == 0 ? 0 : -1;
	}
	if (d.rc != HTTP_OK) {
		d.failure.error = error;
		d.failure.give_up_ms = e->cfg->give_up_ms;
		d.failure.rejected = d.rc == HTTP_ERR_CLIENT && c->attempts + 1 >= CLIENT_ERROR_ATTEMPTS;
		d.failure.maybe_sent = http_maybe_sent(api);
		d.retry_in = retry_delay(w, api, c->attempts + 1);
	}
	if (write_tx(e, st, write_delivery, &d, "delivery") != 0)
		return -1;
	return report_delivery(e, &d, error);
}

/* Claims the next batch of deliverable calls; -1 when the claim failed
 * (reported). */
static int claim_batch(struct engine *e, struct store *st, int64_t lease_ms,
		       struct store_call *calls, size_t *n, int *failures)
{
	char err[512];
	int64_t token = atomic_fetch_add(&e->claims, 1) + 1;
	int64_t now;
	int rc;

	pthread_mutex_lock(&e->write_lock);
	now = engine_now(e);
	rc = store_claim_calls(st, now, e->once_cutoff ? e->once_cutoff : now, lease_ms, token,
			       calls, CALL_BATCH, n, err, sizeof(err));
	pthread_mutex_unlock(&e->write_lock);
	if (rc != 0) {
		claim_failed(e, failures, "calls", err);
		return -1;
	}
	*failures = 0;
	return 0;
}

/* Sleeps until the next call falls due (at most -i), or a wake-up. */
static void wait_for_calls(struct engine *e, struct store *st, unsigned long seen)
{
	const struct config *cfg = e->cfg;
	char err[512];
	int64_t next, now = engine_now(e);

	if (store_next_call(st, &next, err, sizeof(err)) != 0) {
		log_msg(LOG_ERROR, "next call: %s", err);
		next = now + cfg->resolution_ms;
	}
	now = engine_now(e);
	if (next - now > cfg->resolution_ms)
		next = now + cfg->resolution_ms;
	wait_for(e, &e->deliver_cond, &e->deliver_gen, seen, next - now);
}

/* Delivers a claimed batch one call after the other, and gives back what
 * it did not get to: the engine stops, a write failed, or the lease of
 * the batch would run out before the next call could end (the worker
 * stalled, on the network or on the write lock: another worker may
 * claim the rest). Returns whether a call that had failed before went
 * through. */
static int deliver_batch(struct worker *w, struct store *st, struct http *api,
			 struct store_call *calls, size_t n, int64_t claimed, int64_t lease_ms)
{
	struct engine *e = w->e;
	const struct config *cfg = e->cfg;
	int64_t one_call = (cfg->timeout_ms + 1000) * cfg->attempts;
	int recovered = 0;
	size_t i;

	for (i = 0; i < n && !stopping(e); i++) {
		int r;

		if (mono_ms() + one_call >= claimed + lease_ms)
			break;
		r = deliver_one(w, st, api, &calls[i]);
		if (r < 0)
			break;
		/* A call that had failed before went through: the server is
		 * back, so the rows waiting in backoff need not wait longer.
		 * They drain at the delivery workers' pace. */
		if (r == 1 && calls[i].attempts > 0)
			recovered = 1;
	}
	for (; i < n; i++) {
		struct release rel = {.call = &calls[i]};

		write_tx(e, st, write_release, &rel, "release call");
	}
	return recovered;
}

static void *delivery_worker(void *arg)
{
	struct worker *w = arg;
	struct engine *e = w->e;
	const struct config *cfg = e->cfg;
	struct store *st = NULL;
	struct http *api = NULL;
	int64_t lease_ms = (cfg->timeout_ms + 1000) * cfg->attempts * CALL_BATCH + 30000;
	char err[512];
	int claim_failures = 0;

	if (store_open(cfg->db_path, cfg->sync_full, &st, err, sizeof(err)) != 0) {
		engine_fatal(e, ENGINE_EXIT_DB, "delivery worker %d: %s", w->index, err);
		goto out;
	}
	api = engine_api_new(e, err, sizeof(err));
	if (!api) {
		engine_fatal(e, ENGINE_EXIT_DB, "delivery worker %d: %s", w->index, err);
		goto out;
	}
	while (!stopping(e)) {
		struct store_call calls[CALL_BATCH];
		unsigned long seen = generation(e, &e->deliver_gen);
		int64_t claimed = mono_ms();
		size_t n = 0;

		if (atomic_exchange(&e->server_back, 0))
			retry_waiting(e, st);
		if (claim_batch(e, st, lease_ms, calls, &n, &claim_failures) != 0)
			continue;
		if (n == 0) {
			if (e->once_cutoff)
				break;
			wait_for_calls(e, st, seen);
			continue;
		}
		if (deliver_batch(w, st, api, calls, n, claimed, lease_ms))
			retry_waiting(e, st);
		for (size_t i = 0; i < n; i++)
			store_call_clear(&calls[i]);
		/* Rows of the same alert queued behind the ones just done. */
		wake(e, 0, 1);
	}
out:
	http_free(api);
	close_worker_store(st, &e->call_commits, &e->call_rows);
	return NULL;
}

/* ---- definitions ---- */

struct sync_arg {
	struct engine *e;
	const struct alert_def *defs;
	size_t n;
	const char *const *keep;  /* invalid entries: keep their stored definitions */
	size_t nkeep;
	int64_t now;
	int due_now;
	struct store_sync_stats stats;
};

static int write_sync(struct store *st, void *arg, char *err, size_t errlen)
{
	struct sync_arg *a = arg;

	a->now = engine_now(a->e);
	return store_sync_defs(st, a->defs, a->n, a->keep, a->nkeep, a->now, a->due_now,
			       &a->stats, err, errlen);
}

/* Fetches the definitions and stores them. Returns 0, -1 when the server
 * did not give them (stored ones stay), -2 on a database failure (the
 * engine is stopping). */
static int refresh_defs(struct engine *e, struct store *st, struct http *api, int due_now)
{
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[512];
	struct sync_arg a = {0};
	int ret = -1;

	if (http_fetch_alerts(api, &defs, &n, err, sizeof(err)) != HTTP_OK) {
		if (!stopping(e))
			log_msg(LOG_WARN, "fetch alerts failed: %s", err);
		goto out;
	}
	a.e = e;
	a.defs = defs;
	a.n = n;
	http_skipped_names(api, &a.keep, &a.nkeep);
	a.due_now = due_now;
	if (write_retry(e, st, write_sync, &a, 1, "definitions") != 0) {
		ret = -2;
		goto out;
	}
	ret = 0;
	log_msg(LOG_INFO, "definitions loaded alerts=%zu added=%zu changed=%zu retired=%zu "
		"revived=%zu", n, a.stats.added, a.stats.changed, a.stats.retired,
		a.stats.revived);
	wake(e, 1, a.stats.retired > 0);
out:
	alert_defs_free(defs, n);
	return ret;
}

struct shift_arg {
	struct engine *e;
	int64_t drift;
};

/* Moves the stored times and the engine's clock by the same drift, under
 * the write lock: no write sees one moved without the other. */
static int write_shift(struct store *st, void *arg, char *err, size_t errlen)
{
	struct shift_arg *a = arg;

	if (store_shift_times(st, a->drift, err, errlen) != 0)
		return -1;
	atomic_fetch_add(&a->e->clock_offset, a->drift);
	return 0;
}

/* ---- threads ---- */

static int start_workers(struct engine *e, struct worker *w, int n, void *(*fn)(void *),
			 int first_index)
{
	for (int i = 0; i < n; i++) {
		int rc;

		w[i].e = e;
		w[i].index = first_index + i;
		w[i].rng = (uint64_t)mono_ms() * 2654435761u + (uint64_t)(first_index + i) * 97 + 1;
		rc = pthread_create(&w[i].thread, NULL, fn, &w[i]);
		if (rc != 0) {
			log_msg(LOG_CRITICAL, "start worker %d: %s", first_index + i, strerror(rc));
			return -1;
		}
		w[i].started = 1;
	}
	return 0;
}

static void join_workers(struct worker *w, int n)
{
	for (int i = 0; i < n; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
}

/* Starts the evaluation side: the scheduler in w[0] and the query thread
 * in w[1] (EVAL_THREADS workers). */
static int start_evaluation(struct engine *e, struct worker *w)
{
	if (start_workers(e, w, 1, eval_scheduler, 0) != 0)
		return -1;
	return start_workers(e, w + 1, 1, query_thread, 1);
}

/* The signals, taken by a thread of their own so that they are seen
 * whatever the main thread is doing (fetching definitions, --once):
 * SIGTERM and SIGINT stop the engine, SIGHUP asks the main loop to
 * re-fetch the definitions. Every thread has them blocked (main.c). */
struct signals {
	struct engine *e;
	pthread_t thread;
	int started;
	atomic_int done;        /* set before the thread is sent a signal to end */
};

static void *signal_thread(void *arg)
{
	struct signals *sg = arg;
	struct engine *e = sg->e;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);

		if (atomic_load(&sg->done))
			break;
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping(e))
				log_msg(LOG_INFO, "stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
			engine_stop(e, 0);
		} else if (sig == SIGHUP && !e->cfg->once) {
			atomic_store(&e->reload, 1);
			wake_main(e);
		}
	}
	return NULL;
}

static void signals_start(struct engine *e, struct signals *sg)
{
	int rc;

	sg->e = e;
	atomic_init(&sg->done, 0);
	rc = pthread_create(&sg->thread, NULL, signal_thread, sg);
	if (rc != 0)
		log_msg(LOG_ERROR, "start signal thread: %s: SIGTERM, SIGINT and SIGHUP are ignored",
			strerror(rc));
	sg->started = rc == 0;
}

static void signals_stop(struct signals *sg)
{
	if (!sg->started)
		return;
	atomic_store(&sg->done, 1);
	pthread_kill(sg->thread, SIGHUP);
	pthread_join(sg->thread, NULL);
}

static int engine_init(struct engine *e, const struct config *cfg)
{
	pthread_condattr_t ca;

	memset(e, 0, sizeof(*e));
	e->cfg = cfg;
	atomic_init(&e->stop, 0);
	atomic_init(&e->fatal, 0);
	atomic_init(&e->reload, 0);
	atomic_init(&e->claims, 0);
	atomic_init(&e->evaluated, 0);
	atomic_init(&e->failed, 0);
	atomic_init(&e->notified, 0);
	atomic_init(&e->resolved, 0);
	atomic_init(&e->dead, 0);
	atomic_init(&e->clock_offset, wall_ms() - mono_ms());
	atomic_init(&e->failing_queries, 0);
	atomic_init(&e->server_back, 0);
	e->retry_all_at = 0;
	e->retry_all_gap = BACKOFF_FIRST_MS;
	atomic_init(&e->eval_commits, 0);
	atomic_init(&e->eval_rows, 0);
	atomic_init(&e->call_commits, 0);
	atomic_init(&e->call_rows, 0);
	pthread_mutex_init(&e->write_lock, NULL);
	pthread_mutex_init(&e->wake_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->eval_cond, &ca);
	pthread_cond_init(&e->deliver_cond, &ca);
	pthread_cond_init(&e->main_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Room for every query slot to have a few evaluations waiting. */
	e->queue = eval_queue_new((size_t)cfg->concurrency * 4 > EVAL_POOL
					  ? (size_t)cfg->concurrency * 4 : EVAL_POOL);
	return e->queue != NULL ? 0 : -1;
}

static void engine_destroy(struct engine *e)
{
	eval_queue_free(e->queue);
	pthread_cond_destroy(&e->eval_cond);
	pthread_cond_destroy(&e->deliver_cond);
	pthread_cond_destroy(&e->main_cond);
	pthread_mutex_destroy(&e->write_lock);
	pthread_mutex_destroy(&e->wake_lock);
}

/* Opens, locks, checks and migrates the database; releases old leases. */
static int prepare_db(const struct config *cfg, int *lock_fd, struct store **st)
{
	char err[512];
	sqlite3 *db = NULL;
	int rc;

	*lock_fd = db_lock(cfg->db_path, err, sizeof(err));
	if (*lock_fd == DB_ERR_LOCKED) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_TEMPFAIL;
	}
	if (*lock_fd < 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	if (db_open(cfg->db_path, cfg->sync_full, &db, err, sizeof(err)) != DB_OK) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	/* A corrupt page is found now, not when a write first touches it. */
	rc = db_check(db, err, sizeof(err));
	if (rc == DB_OK)
		rc = db_migrate(db, 0, err, sizeof(err));
	sqlite3_close(db);
	if (rc != DB_OK) {
		log_msg(LOG_CRITICAL, "database %s: %s", cfg->db_path, err);
		return ENGINE_EXIT_DB;
	}
	if (store_open(cfg->db_path, cfg->sync_full, st, err, sizeof(err)) != 0 ||
	    store_release_leases(*st, wall_ms(), BACKOFF_CAP_MS, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "database %s: %s", cfg->db_path, err);
		return ENGINE_EXIT_DB;
	}
	return ENGINE_EXIT_OK;
}

/* Deletes what is older than --retention, PRUNE_BATCH rows of a table per
 * transaction, so that a large backlog never holds the write lock long. */
static void prune(struct engine *e, struct store *st)
{
	char err[512];
	int64_t total = 0, deleted;
	int rc;

	do {
		pthread_mutex_lock(&e->write_lock);
		rc = store_prune(st, engine_now(e) - e->cfg->retention_ms, PRUNE_BATCH, &deleted,
				 err, sizeof(err));
		pthread_mutex_unlock(&e->write_lock);
		if (rc != 0) {
			log_msg(LOG_ERROR, "prune failed: %s", err);
			break;
		}
		total += deleted;
	} while (deleted >= PRUNE_BATCH && !stopping(e));
	if (total > 0)
		log_msg(LOG_INFO, "pruned rows=%lld", (long long)total);
}

/* --once: evaluates what is due, then delivers what is deliverable. */
static void once_round(struct engine *e, struct store *st, struct worker *w, int evaluate)
{
	int nw = e->cfg->deliverers;
	struct retry_now r = {.e = e};

	e->once_cutoff = engine_now(e);
	if (evaluate && start_evaluation(e, w) != 0)
		engine_stop(e, ENGINE_EXIT_DB);
	join_workers(w, EVAL_THREADS);
	if (stopping(e))
		return;
	/* Cron mode: each run is one round of attempts, so a call waiting
	 * out the backoff of an earlier run is tried now; one that fails
	 * in this run waits for the next. */
	if (write_retry(e, st, write_retry_now, &r, 0, "retry calls") == 0 && r.n > 0)
		log_msg(LOG_INFO, "retrying calls=%lld left by an earlier run", (long long)r.n);
	e->once_cutoff = engine_now(e);
	if (start_workers(e, w + EVAL_THREADS, nw, delivery_worker, EVAL_THREADS) != 0)
		engine_stop(e, ENGINE_EXIT_DB);
	join_workers(w + EVAL_THREADS, nw);
}

/* Cron mode. The calls are delivered before the exit status is decided,
 * so a resolve enqueued by retiring the last alert goes out in the run
 * that retired it. 75 while calls wait (the next run goes on), else 69
 * when the server gave no alert, else 0. A stop (SIGTERM) ends the
 * round early: 75 or 0 by what is left. */
static int run_once(struct engine *e, struct store *st, struct http *api)
{
	int64_t alerts = 0, retired = 0, pending = 0;
	struct worker *w;
	char err[512];

	if (refresh_defs(e, st, api, 1) == -2)
		return ENGINE_EXIT_DB;
	if (store_count_alerts(st, &alerts, &retired, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	if (alerts == 0 && retired == 0 && !stopping(e)) {
		log_msg(LOG_ERROR, "no alert definitions: the server gave none and none are stored");
		return ENGINE_EXIT_NO_ALERTS;
	}
	w = calloc((size_t)(EVAL_THREADS + e->cfg->deliverers), sizeof(*w));
	if (!w) {
		log_msg(LOG_CRITICAL, "out of memory");
		return ENGINE_EXIT_DB;
	}
	once_round(e, st, w, alerts > 0);
	free(w);
	if (atomic_load(&e->fatal))
		return atomic_load(&e->fatal);
	if (!stopping(e))
		prune(e, st);
	if (store_count_pending(st, &pending, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	fprintf(stdout, "evaluated=%ld notified=%ld resolved=%ld failed=%ld pending=%lld\n",
		atomic_load(&e->evaluated), atomic_load(&e->notified), atomic_load(&e->resolved),
		atomic_load(&e->failed), (long long)pending);
	fflush(stdout);
	if (pending > 0)
		return ENGINE_EXIT_TEMPFAIL;
	if (alerts == 0 && !stopping(e)) {
		log_msg(LOG_ERROR, "no alert definitions: the server gave none (retired alerts "
			"stored=%lld, nothing left to deliver for them)", (long long)retired);
		return ENGINE_EXIT_NO_ALERTS;
	}
	return ENGINE_EXIT_OK;
}

/* Follows the wall clock (clock.h): a step moves every stored schedule
 * and the engine's clock together, so nothing stalls, bursts, fires
 * early or is given up for the size of the jump. -1 when the shift could
 * not be written (the engine stops). */
static int follow_clock(struct engine *e, struct store *st)
{
	int64_t drift;
	enum clock_move move = clock_compare(wall_ms(), engine_now(e), &drift);

	if (move == CLOCK_STEP) {
		struct shift_arg shift = {e, drift};

		log_msg(LOG_WARN, "wall clock jumped by %lld ms: moving schedules with it",
			(long long)drift);
		if (write_retry(e, st, write_shift, &shift, 1, "shift schedules") != 0)
			return -1;
		wake(e, 1, 1);
	} else if (move == CLOCK_FOLLOW) {
		pthread_mutex_lock(&e->write_lock);
		atomic_fetch_add(&e->clock_offset, drift);
		pthread_mutex_unlock(&e->write_lock);
	}
	return 0;
}

/* When definitions are fetched next, after a fetch that gave them
 * (loaded 0) or not; *retry_ms is the backoff of failed fetches. */
static int64_t next_fetch(const struct config *cfg, int loaded, int64_t *retry_ms)
{
	int64_t wait = cfg->refresh_ms;

	if (loaded == 0) {
		*retry_ms = FETCH_RETRY_FIRST_MS;
	} else {
		/* Retry sooner than the refresh period, backing off. */
		if (*retry_ms < wait)
			wait = *retry_ms;
		*retry_ms *= 2;
	}
	return mono_ms() + wait;
}

/* Starts the daemon's workers and loads the definitions. Returns when
 * the definitions are fetched next (mono_ms), or -1 after a fatal error. */
static int64_t daemon_start(struct engine *e, struct store *st, struct http *api,
			    struct worker *w, int64_t *retry_ms)
{
	const struct config *cfg = e->cfg;
	int64_t alerts = 0;
	char err[512];
	int loaded;

	/* With stored definitions the workers start at once; the server's
	 * current ones are fetched meanwhile. */
	if (store_count_alerts(st, &alerts, NULL, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		engine_stop(e, ENGINE_EXIT_DB);
		return -1;
	}
	if (start_evaluation(e, w) != 0 ||
	    start_workers(e, w + EVAL_THREADS, cfg->deliverers, delivery_worker,
			  EVAL_THREADS) != 0)
		engine_stop(e, ENGINE_EXIT_DB);
	log_msg(LOG_INFO, "started db=%s server=%s stored_alerts=%lld evaluators=%d "
		"deliverers=%d", cfg->db_path, cfg->server_redacted, (long long)alerts,
		cfg->concurrency, cfg->deliverers);
	loaded = refresh_defs(e, st, api, 0);
	if (loaded == -2)
		engine_stop(e, ENGINE_EXIT_DB);
	else if (loaded == -1 && stopping(e))
		;
	else if (loaded == -1 && alerts > 0)
		log_msg(LOG_WARN, "alerts server unreachable: using stored definitions alerts=%lld",
			(long long)alerts);
	else if (loaded == -1)
		log_msg(LOG_ERROR, "no alert definitions yet: retrying in %lld ms",
			(long long)*retry_ms);
	return next_fetch(cfg, loaded, retry_ms);
}

static int run_daemon(struct engine *e, struct store *st, struct http *api)
{
	const struct config *cfg = e->cfg;
	int nworkers = EVAL_THREADS + cfg->deliverers;
	struct worker *w = calloc((size_t)nworkers, sizeof(*w));
	int64_t next_refresh, next_prune, fetch_retry = FETCH_RETRY_FIRST_MS;

	if (!w) {
		log_msg(LOG_CRITICAL, "out of memory");
		return ENGINE_EXIT_DB;
	}
	next_refresh = daemon_start(e, st, api, w, &fetch_retry);
	next_prune = mono_ms();
	while (!stopping(e)) {
		unsigned long seen = generation(e, &e->main_gen);
		int64_t now_mono = mono_ms();

		if (follow_clock(e, st) != 0)
			break;
		if (atomic_exchange(&e->reload, 0)) {
			log_msg(LOG_INFO, "reloading definitions signal=HUP");
			next_refresh = now_mono;
		}
		if (now_mono >= next_refresh) {
			int loaded = refresh_defs(e, st, api, 0);

			if (loaded == -2) {
				engine_stop(e, ENGINE_EXIT_DB);
				break;
			}
			next_refresh = next_fetch(cfg, loaded, &fetch_retry);
		}
		if (now_mono >= next_prune) {
			prune(e, st);
			next_prune = now_mono + PRUNE_EVERY_MS;
		}
		wait_for(e, &e->main_cond, &e->main_gen, seen, SIGNAL_POLL_MS);
	}
	join_workers(w, nworkers);
	free(w);
	if (atomic_load(&e->fatal))
		return atomic_load(&e->fatal);
	log_msg(LOG_INFO, "stopped evaluated=%ld notified=%ld resolved=%ld failed=%ld dead=%ld "
		"eval_commits=%ld eval_rows=%ld call_commits=%ld call_rows=%ld",
		atomic_load(&e->evaluated), atomic_load(&e->notified), atomic_load(&e->resolved),
		atomic_load(&e->failed), atomic_load(&e->dead), atomic_load(&e->eval_commits),
		atomic_load(&e->eval_rows), atomic_load(&e->call_commits),
		atomic_load(&e->call_rows));
	return ENGINE_EXIT_OK;
}

int engine_run(const struct config *cfg)
{
	struct engine e;
	struct signals sg = {0};
	struct store *st = NULL;
	struct http *api = NULL;
	char err[512];
	int lock_fd = -1;
	int status;

	if (engine_init(&e, cfg) != 0) {
		log_msg(LOG_CRITICAL, "out of memory");
		status = ENGINE_EXIT_DB;
		goto out;
	}
	signals_start(&e, &sg);
	status = prepare_db(cfg, &lock_fd, &st);
	if (status != ENGINE_EXIT_OK)
		goto out;
	api = engine_api_new(&e, err, sizeof(err));
	if (!api) {
		log_msg(LOG_CRITICAL, "%s", err);
		status = ENGINE_EXIT_DB;
		goto out;
	}
	status = cfg->once ? run_once(&e, st, api) : run_daemon(&e, st, api);
out:
	signals_stop(&sg);
	http_free(api);
	store_close(st);
	engine_destroy(&e);
	if (lock_fd >= 0)
		close(lock_fd);
	return status;
}
