#include "engine_core.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "engine.h"
#include "log.h"
#include "scheduler.h"

int64_t engine_steady(const struct engine *e)
{
	return e->clock->steady_ms(e->clock->ctx);
}

int64_t engine_wall_clock(const struct engine *e)
{
	return e->clock->wall_ms(e->clock->ctx);
}

int64_t engine_now(struct engine *e)
{
	return engine_steady(e) + atomic_load(&e->clock_offset);
}

int64_t engine_wall(struct engine *e, int64_t steady)
{
	return steady + atomic_load(&e->clock_offset);
}

void engine_sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int engine_stopping(struct engine *e)
{
	return atomic_load(&e->stop);
}

void engine_wake(struct engine *e, int eval, int deliver)
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
void engine_wake_main(struct engine *e)
{
	pthread_mutex_lock(&e->wake_lock);
	e->main_gen++;
	pthread_cond_broadcast(&e->main_cond);
	pthread_mutex_unlock(&e->wake_lock);
}

void engine_stop(struct engine *e, int fatal)
{
	if (fatal) {
		int none = 0;

		atomic_compare_exchange_strong(&e->fatal, &none, fatal);
	}
	atomic_store(&e->stop, 1);
	engine_wake(e, 1, 1);
	engine_wake_main(e);
	sched_wake_queries(e);
}

void engine_fatal(struct engine *e, int status, const char *fmt, ...)
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

unsigned long engine_generation(struct engine *e, const unsigned long *gen)
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
void engine_wait(struct engine *e, pthread_cond_t *cond, const unsigned long *gen,
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

/* store_commit, its duration counted (the fsync of a commit is most of a
 * write's time). */
static int commit_timed(struct engine *e, struct store *st, char *err, size_t errlen)
{
	int64_t t0 = metrics_now_us();
	int rc = store_commit(st, err, errlen);

	if (rc == 0)
		metrics_observe(&e->metrics.commit_duration, metrics_now_us() - t0);
	return rc;
}

int engine_reconnect(struct engine *e, struct store *st, const char *what, const char *err)
{
	char quoted[1100], why[512];
	int64_t wait = RECONNECT_FIRST_MS;

	/* On PostgreSQL the lease thread logs the episode (lease.c): a
	 * worker's connection finds out when it next needs it, which would
	 * split one episode into several. */
	if (atomic_fetch_add(&e->db_lost, 1) == 0)
		log_msg(e->lease.all ? LOG_WARN : LOG_DEBUG,
			"database connection lost, reconnecting what=%s error=%s", what,
			log_quote(quoted, sizeof(quoted), err));
	while (!engine_stopping(e)) {
		unsigned long seen = engine_generation(e, &e->main_gen);

		engine_wait(e, &e->main_cond, &e->main_gen, seen, wait);
		if (store_reconnect(st, why, sizeof(why)) == 0) {
			if (atomic_fetch_sub(&e->db_lost, 1) == 1)
				log_msg(e->lease.all ? LOG_INFO : LOG_DEBUG,
					"database connection back what=%s", what);
			return 0;
		}
		wait = wait * 2 > RECONNECT_CAP_MS ? RECONNECT_CAP_MS : wait * 2;
	}
	atomic_fetch_sub(&e->db_lost, 1);
	return -1;
}

int engine_write(struct engine *e, struct store *st, engine_write_fn fn, void *arg, int own_tx,
		 const char *what)
{
	char err[512] = "";
	char quoted[1100];

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
					rc = commit_timed(e, st, err, sizeof(err));
				else
					store_rollback(st);
			}
		}
		pthread_mutex_unlock(&e->write_lock);
		if (rc == 0)
			return 0;
		/* Not the database's answer: wait for it, however long. */
		if (store_connection_lost(st)) {
			if (engine_reconnect(e, st, what, err) != 0)
				return -1;
			attempt--;
			continue;
		}
		log_msg(LOG_ERROR, "database write failed what=%s attempt=%d error=%s", what,
			attempt, log_quote(quoted, sizeof(quoted), err));
		/* After a fatal error, retrying only delays the exit. */
		if (atomic_load(&e->fatal))
			break;
		if (attempt < DB_WRITE_ATTEMPTS)
			engine_sleep_ms(100 * attempt);
	}
	engine_fatal(e, ENGINE_EXIT_DB, "database write keeps failing, stopping what=%s error=%s",
		     what, log_quote(quoted, sizeof(quoted), err));
	return -1;
}

int engine_write_tx(struct engine *e, struct store *st, engine_write_fn fn, void *arg,
		    const char *what)
{
	return engine_write(e, st, fn, arg, 0, what);
}

void engine_claim_failed(struct engine *e, struct store *st, int *failures, const char *what,
			 const char *err)
{
	char quoted[1100];

	if (store_connection_lost(st)) {
		*failures = 0;
		engine_reconnect(e, st, what, err);
		return;
	}
	log_quote(quoted, sizeof(quoted), err);
	log_msg(LOG_ERROR, "database claim failed what=%s error=%s", what, quoted);
	if (++*failures >= DB_WRITE_ATTEMPTS) {
		engine_fatal(e, ENGINE_EXIT_DB,
			     "database claims keep failing, stopping what=%s "
			     "error=%s",
			     what, quoted);
		return;
	}
	engine_sleep_ms(100 * *failures);
}

void engine_close_store(struct store *st, atomic_long *commits, atomic_long *rows)
{
	struct store_counters c;

	if (st == NULL)
		return;
	store_counters(st, &c);
	atomic_fetch_add(commits, (long)c.commits);
	atomic_fetch_add(rows, (long)c.rows);
	store_close(st);
}

struct http_opts engine_http_opts(struct engine *e)
{
	const struct config *cfg = e->cfg;
	struct http_opts opts = {
		.base_url = cfg->server,
		.connect_timeout_ms = (long)cfg->connect_timeout_ms,
		.timeout_ms = (long)cfg->timeout_ms,
		.attempts = cfg->attempts,
		.stop = &e->stop,
		.engine_id = cfg->engine_id,
	};

	return opts;
}

struct http *engine_http_new(struct engine *e, char *err, size_t errlen)
{
	struct http_opts opts = engine_http_opts(e);

	return http_new(&opts, err, errlen);
}

int engine_start_workers(struct engine *e, struct worker *w, int n, void *(*fn)(void *),
			 int first_index)
{
	for (int i = 0; i < n; i++) {
		int rc;

		w[i].e = e;
		w[i].index = first_index + i;
		w[i].rng = (uint64_t)engine_steady(e) * 2654435761u +
			   (uint64_t)(first_index + i) * 97 + 1;
		rc = pthread_create(&w[i].thread, NULL, fn, &w[i]);
		if (rc != 0) {
			log_msg(LOG_CRITICAL, "start worker %d: %s", first_index + i, strerror(rc));
			return -1;
		}
		w[i].started = 1;
	}
	return 0;
}

void engine_name_thread(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

void engine_join_workers(struct worker *w, int n)
{
	for (int i = 0; i < n; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
}

int engine_init(struct engine *e, const struct config *cfg, const struct clock_source *clock)
{
	pthread_condattr_t ca;

	memset(e, 0, sizeof(*e));
	e->cfg = cfg;
	e->clock = clock;
	atomic_init(&e->stop, 0);
	atomic_init(&e->fatal, 0);
	atomic_init(&e->reload, 0);
	atomic_init(&e->claims, 0);
	metrics_init(&e->metrics);
	atomic_init(&e->clock_offset, engine_wall_clock(e) - engine_steady(e));
	atomic_init(&e->failing_queries, 0);
	atomic_init(&e->server_back, 0);
	atomic_init(&e->db_lost, 0);
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
	lease_init(&e->lease, !store_location_is_postgres(cfg->db_path));
	e->queue = sched_queue_new(cfg->concurrency);
	return e->queue != NULL ? 0 : -1;
}

void engine_destroy(struct engine *e)
{
	sched_queue_free(e->queue);
	lease_destroy(&e->lease);
	pthread_cond_destroy(&e->eval_cond);
	pthread_cond_destroy(&e->deliver_cond);
	pthread_cond_destroy(&e->main_cond);
	pthread_mutex_destroy(&e->write_lock);
	pthread_mutex_destroy(&e->wake_lock);
}
