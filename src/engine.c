#include "engine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "engine_core.h"
#include "log.h"
#include "scheduler.h"
#include "web.h"

#define PRUNE_EVERY_MS (3600 * 1000)
#define PRUNE_BATCH 5000 /* rows per table per prune transaction */
#define FETCH_RETRY_FIRST_MS 1000
#define SIGNAL_POLL_MS 250 /* the main loop's tick */

struct sync_arg {
	struct engine *e;
	const struct alert_def *defs;
	size_t n;
	const char *const *keep; /* invalid entries: keep their stored definitions */
	size_t nkeep;
	int64_t now;
	int due_now;
	struct store_sync_stats stats;
};

static int write_sync(struct store *st, void *arg, char *err, size_t errlen)
{
	struct sync_arg *a = arg;

	a->now = engine_now(a->e);
	return store_sync_defs(st, a->defs, a->n, a->keep, a->nkeep, a->now, a->due_now, &a->stats,
			       err, errlen);
}

/* Fetches the definitions and stores them. Returns 0, -1 when the server
 * did not give them (stored ones stay), -2 on a database failure (the
 * engine is stopping). */
static int refresh_defs(struct engine *e, struct store *st, struct http *client, int due_now)
{
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[512], quoted[1100];
	struct sync_arg a = {0};
	int ret = -1;

	if (http_fetch_alerts(client, &defs, &n, err, sizeof(err)) != HTTP_OK) {
		metrics_refresh(&e->metrics, 0, 0);
		if (!engine_stopping(e))
			log_msg(LOG_WARN, "fetch alerts failed error=%s",
				log_quote(quoted, sizeof(quoted), err));
		goto out;
	}
	a.e = e;
	a.defs = defs;
	a.n = n;
	http_skipped_names(client, &a.keep, &a.nkeep);
	a.due_now = due_now;
	if (engine_write(e, st, write_sync, &a, 1, "definitions") != 0) {
		metrics_refresh(&e->metrics, 0, 0);
		ret = -2;
		goto out;
	}
	ret = 0;
	metrics_refresh(&e->metrics, 1, a.now);
	log_msg(LOG_INFO,
		"definitions loaded alerts=%zu added=%zu changed=%zu retired=%zu "
		"revived=%zu",
		n, a.stats.added, a.stats.changed, a.stats.retired, a.stats.revived);
	engine_wake(e, 1, a.stats.retired > 0);
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

/* The signals, taken by a thread of their own so that they are seen
 * whatever the main thread is doing (fetching definitions, --once):
 * SIGTERM and SIGINT stop the engine, SIGHUP asks the main loop to
 * re-fetch the definitions. Every thread has them blocked (main.c). */
struct signals {
	struct engine *e;
	pthread_t thread;
	int started;
	atomic_int done; /* set before the thread is sent a signal to end */
};

static void *signal_thread(void *arg)
{
	struct signals *sg = arg;
	struct engine *e = sg->e;
	sigset_t set;

	engine_name_thread("signals");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);

		if (atomic_load(&sg->done))
			break;
		if (sig == SIGTERM || sig == SIGINT) {
			if (!engine_stopping(e))
				log_msg(LOG_INFO, "stopping signal=%s",
					sig == SIGTERM ? "TERM" : "INT");
			engine_stop(e, 0);
		} else if (sig == SIGHUP && !e->cfg->once) {
			atomic_store(&e->reload, 1);
			engine_wake_main(e);
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
		log_msg(LOG_ERROR,
			"start signal thread: %s: SIGTERM, SIGINT and SIGHUP are ignored",
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

/* The operator's listener (web.h), once the database is migrated: not
 * with --once, nor with --listen off. The scheduler must have turned
 * within three of its longest sleeps (-i), and never less than 5 s, to
 * be healthy. */
static int start_web(struct engine *e, struct web **web)
{
	const struct config *cfg = e->cfg;
	struct web_source src = {&e->metrics, e->clock, cfg->db_path, 3 * cfg->resolution_ms};
	char addr[80], err[700];
	int rc;

	if (cfg->once || cfg->listen == NULL)
		return ENGINE_EXIT_OK;
	if (src.health_window_ms < 5000)
		src.health_window_ms = 5000;
	rc = web_start(&src, cfg->listen, web, addr, sizeof(addr), err, sizeof(err));
	if (rc != ENGINE_EXIT_OK)
		log_msg(LOG_CRITICAL, "%s", err);
	else
		log_msg(LOG_INFO, "listening addr=%s", addr);
	return rc;
}

/* Opens, locks, checks and migrates the database; releases old leases. */
static int prepare_db(struct engine *e, struct store_lock **lock, struct store **st)
{
	const struct config *cfg = e->cfg;
	char err[600];
	int rc = store_prepare(cfg->db_path, cfg->sync_full, lock, err, sizeof(err));

	if (rc != STORE_OK) {
		log_msg(LOG_CRITICAL, "%s", err);
		return rc == STORE_ERR_LOCKED ? ENGINE_EXIT_TEMPFAIL : ENGINE_EXIT_DB;
	}
	if (store_open(cfg->db_path, cfg->sync_full, st, err, sizeof(err)) != 0 ||
	    store_release_leases(*st, engine_wall_clock(e), BACKOFF_CAP_MS, err, sizeof(err)) !=
		    0) {
		char shown[512];

		log_msg(LOG_CRITICAL, "database %s: %s",
			store_redact_location(shown, sizeof(shown), cfg->db_path), err);
		return ENGINE_EXIT_DB;
	}
	return ENGINE_EXIT_OK;
}

/* Deletes what is older than --retention, PRUNE_BATCH rows of a table per
 * transaction, so that a large backlog never holds the write lock long. */
static void prune(struct engine *e, struct store *st)
{
	char err[512], quoted[1100];
	int64_t total = 0, deleted;
	int rc;

	do {
		pthread_mutex_lock(&e->write_lock);
		rc = store_prune(st, engine_now(e) - e->cfg->retention_ms, PRUNE_BATCH, &deleted,
				 err, sizeof(err));
		pthread_mutex_unlock(&e->write_lock);
		if (rc != 0) {
			log_msg(LOG_ERROR, "prune failed error=%s",
				log_quote(quoted, sizeof(quoted), err));
			break;
		}
		total += deleted;
	} while (deleted >= PRUNE_BATCH && !engine_stopping(e));
	if (total > 0)
		log_msg(LOG_INFO, "pruned rows=%lld", (long long)total);
}

/* --once: evaluates what is due, then delivers what is deliverable. */
static void once_round(struct engine *e, struct store *st, struct worker *w, int evaluate)
{
	int nw = e->cfg->deliverers;
	int64_t n = 0;
	char err[512];

	e->once_cutoff = engine_now(e);
	if (evaluate && sched_start(e, w) != 0)
		engine_stop(e, ENGINE_EXIT_OSERR);
	engine_join_workers(w, EVAL_THREADS);
	if (engine_stopping(e))
		return;
	/* Cron mode: each run is one round of attempts, so a call waiting
	 * out the backoff of an earlier run is tried now; one that fails
	 * in this run waits for the next. */
	if (lease_limit(e, st, err, sizeof(err)) == 0 && deliver_retry_now(e, st, &n) == 0 && n > 0)
		log_msg(LOG_INFO, "retrying the calls an earlier run left calls=%lld",
			(long long)n);
	e->once_cutoff = engine_now(e);
	if (engine_start_workers(e, w + EVAL_THREADS, nw, deliver_thread, EVAL_THREADS) != 0)
		engine_stop(e, ENGINE_EXIT_OSERR);
	engine_join_workers(w + EVAL_THREADS, nw);
}

/* Cron mode. The calls are delivered before the exit status is decided,
 * so a resolve enqueued by retiring the last alert goes out in the run
 * that retired it. 75 while calls wait (the next run goes on), else 69
 * when the server gave no alert, else 0. A stop (SIGTERM) ends the
 * round early: 75 or 0 by what is left. */
static int run_once(struct engine *e, struct store *st, struct http *client)
{
	int64_t alerts = 0, retired = 0, pending = 0;
	struct worker *w;
	char err[512];

	if (refresh_defs(e, st, client, 1) == -2)
		return ENGINE_EXIT_DB;
	if (store_count_alerts(st, &alerts, &retired, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	if (alerts == 0 && retired == 0 && !engine_stopping(e)) {
		log_msg(LOG_ERROR,
			"no alert definitions: the server gave none and none are stored");
		return ENGINE_EXIT_NO_ALERTS;
	}
	w = calloc((size_t)(EVAL_THREADS + e->cfg->deliverers), sizeof(*w));
	if (!w) {
		log_msg(LOG_CRITICAL, "out of memory");
		return ENGINE_EXIT_OSERR;
	}
	once_round(e, st, w, alerts > 0);
	free(w);
	if (atomic_load(&e->fatal))
		return atomic_load(&e->fatal);
	if (!engine_stopping(e))
		prune(e, st);
	/* The calls of the shards this run held: on a shared database the
	 * others' pending calls are their engines' business. */
	if (lease_limit(e, st, err, sizeof(err)) != 0 ||
	    store_count_pending(st, &pending, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	fprintf(stdout, "evaluated=%ld notified=%ld resolved=%ld failed=%ld pending=%lld\n",
		atomic_load(&e->metrics.evaluations), atomic_load(&e->metrics.delivered[0]),
		atomic_load(&e->metrics.delivered[1]), metrics_eval_failures(&e->metrics),
		(long long)pending);
	fflush(stdout);
	if (pending > 0)
		return ENGINE_EXIT_TEMPFAIL;
	if (alerts == 0 && !engine_stopping(e)) {
		log_msg(LOG_ERROR,
			"no alert definitions: the server gave none, and the calls of "
			"the retired alerts are delivered retired_alerts=%lld",
			(long long)retired);
		return ENGINE_EXIT_NO_ALERTS;
	}
	return ENGINE_EXIT_OK;
}

/* Follows the wall clock (clock.h): a step moves every stored schedule
 * and the engine's clock together, so nothing stalls, bursts, fires
 * early or is given up for the size of the jump; on a shared database
 * (PostgreSQL) a step is followed as a slew is, since the stored times
 * are every engine's. -1 when the shift could not be written (the engine
 * stops). */
int engine_follow_clock(struct engine *e, struct store *st)
{
	int64_t drift;
	enum clock_move move = clock_compare(engine_wall_clock(e), engine_now(e), &drift);

	/* A shared database's times are every engine's: one host's clock
	 * step must not move them (the others' clocks did not jump). */
	if (move == CLOCK_STEP && !e->lease.all) {
		log_msg(LOG_WARN,
			"wall clock jumped by %lld ms: following it, the shared database's "
			"schedules stay",
			(long long)drift);
		move = CLOCK_FOLLOW;
	}
	if (move == CLOCK_STEP) {
		struct shift_arg shift = {e, drift};

		log_msg(LOG_WARN, "wall clock jumped by %lld ms: moving schedules with it",
			(long long)drift);
		if (engine_write(e, st, write_shift, &shift, 1, "shift schedules") != 0)
			return -1;
		engine_wake(e, 1, 1);
	} else if (move == CLOCK_FOLLOW) {
		pthread_mutex_lock(&e->write_lock);
		atomic_fetch_add(&e->clock_offset, drift);
		pthread_mutex_unlock(&e->write_lock);
	}
	return 0;
}

/* When definitions are fetched next, after a fetch that gave them
 * (loaded 0) or not; *retry_ms is the backoff of failed fetches. */
static int64_t next_fetch(struct engine *e, int loaded, int64_t *retry_ms)
{
	int64_t wait = e->cfg->refresh_ms;

	if (loaded == 0) {
		*retry_ms = FETCH_RETRY_FIRST_MS;
	} else {
		/* Retry sooner than the refresh period, backing off. */
		if (*retry_ms < wait)
			wait = *retry_ms;
		*retry_ms *= 2;
	}
	return engine_steady(e) + wait;
}

/* Starts the daemon's workers and loads the definitions. Returns when
 * the definitions are fetched next (engine_steady), or -1 after a fatal error. */
static int64_t daemon_start(struct engine *e, struct store *st, struct http *client,
			    struct worker *w, int64_t *retry_ms, int *ready)
{
	const struct config *cfg = e->cfg;
	int64_t alerts = 0;
	char err[512];
	char shown[1024];
	char db[2048];
	char server[2 * CONFIG_SERVER_REDACTED_MAX];
	char id[300];
	int loaded;

	/* With stored definitions the workers start at once; the server's
	 * current ones are fetched meanwhile. */
	if (store_count_alerts(st, &alerts, NULL, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		engine_stop(e, ENGINE_EXIT_DB);
		return -1;
	}
	if (alerts > 0)
		metrics_defs_stored(&e->metrics);
	if (sched_start(e, w) != 0 || engine_start_workers(e, w + EVAL_THREADS, cfg->deliverers,
							   deliver_thread, EVAL_THREADS) != 0)
		engine_stop(e, ENGINE_EXIT_OSERR);
	log_msg(LOG_INFO,
		"started engine=%s db=%s server=%s stored_alerts=%lld concurrency=%d "
		"deliverers=%d",
		log_quote(id, sizeof(id), cfg->engine_id),
		log_quote(db, sizeof(db),
			  store_redact_location(shown, sizeof(shown), cfg->db_path)),
		log_quote(server, sizeof(server), cfg->server_redacted), (long long)alerts,
		cfg->concurrency, cfg->deliverers);
	loaded = refresh_defs(e, st, client, 0);
	if (loaded == -2)
		engine_stop(e, ENGINE_EXIT_DB);
	else if (loaded == -1 && engine_stopping(e))
		;
	else if (loaded == -1 && alerts > 0)
		log_msg(LOG_WARN, "alerts server unreachable: using stored definitions alerts=%lld",
			(long long)alerts);
	else if (loaded == -1)
		log_msg(LOG_ERROR, "no alert definitions yet: retrying in %lld ms",
			(long long)*retry_ms);
	/* Ready for systemd once there are definitions to evaluate: the
	 * server's, or the stored ones when it cannot be reached. */
	*ready = !engine_stopping(e) && (loaded == 0 || alerts > 0);
	if (*ready)
		sdnotify_send(e->notify, "READY=1");
	return next_fetch(e, loaded, retry_ms);
}

/* When the main loop fetches the definitions, and what it told systemd. */
struct refresh_plan {
	int64_t next;     /* engine_steady() of the next fetch */
	int64_t retry_ms; /* backoff of failed fetches */
	int ready;        /* READY=1 was sent: definitions are in use */
	int reloading;    /* RELOADING=1 was sent: READY=1 after the fetch */
};

/* A SIGHUP or the time for --refresh: fetches the definitions. -1 when
 * the database failed (the engine stops). */
static int main_refresh(struct engine *e, struct store *st, struct http *client,
			struct refresh_plan *plan, int64_t now_mono)
{
	int loaded;

	if (atomic_exchange(&e->reload, 0)) {
		log_msg(LOG_INFO, "reloading definitions signal=HUP");
		plan->next = now_mono;
		if (plan->ready && sdnotify_reloading(e->notify) == 0)
			plan->reloading = 1;
	}
	if (now_mono < plan->next)
		return 0;
	loaded = refresh_defs(e, st, client, 0);
	if (loaded == -2) {
		engine_stop(e, ENGINE_EXIT_DB);
		return -1;
	}
	plan->next = next_fetch(e, loaded, &plan->retry_ms);
	/* After a reload, whatever it found (the definitions in use stay),
	 * or at the first definitions. */
	if (plan->reloading || (!plan->ready && loaded == 0))
		sdnotify_send(e->notify, "READY=1");
	plan->reloading = 0;
	plan->ready |= loaded == 0;
	return 0;
}

static int run_daemon(struct engine *e, struct store *st, struct http *client)
{
	const struct config *cfg = e->cfg;
	int nworkers = EVAL_THREADS + cfg->deliverers;
	struct worker *w = calloc((size_t)nworkers, sizeof(*w));
	struct refresh_plan plan = {.retry_ms = FETCH_RETRY_FIRST_MS};
	int64_t next_prune;

	if (!w) {
		log_msg(LOG_CRITICAL, "out of memory");
		return ENGINE_EXIT_OSERR;
	}
	plan.next = daemon_start(e, st, client, w, &plan.retry_ms, &plan.ready);
	next_prune = engine_steady(e);
	while (!engine_stopping(e)) {
		unsigned long seen = engine_generation(e, &e->main_gen);
		int64_t now_mono = engine_steady(e);

		if (engine_follow_clock(e, st) != 0)
			break;
		if (main_refresh(e, st, client, &plan, now_mono) != 0)
			break;
		if (now_mono >= next_prune) {
			prune(e, st);
			next_prune = now_mono + PRUNE_EVERY_MS;
		}
		engine_wait(e, &e->main_cond, &e->main_gen, seen, SIGNAL_POLL_MS);
	}
	sdnotify_send(e->notify, "STOPPING=1");
	engine_join_workers(w, nworkers);
	free(w);
	if (atomic_load(&e->fatal))
		return atomic_load(&e->fatal);
	log_msg(LOG_INFO,
		"stopped evaluated=%ld notified=%ld resolved=%ld failed=%ld dead=%ld "
		"eval_commits=%ld eval_rows=%ld call_commits=%ld call_rows=%ld",
		atomic_load(&e->metrics.evaluations), atomic_load(&e->metrics.delivered[0]),
		atomic_load(&e->metrics.delivered[1]), metrics_eval_failures(&e->metrics),
		metrics_calls_dead(&e->metrics), atomic_load(&e->eval_commits),
		atomic_load(&e->eval_rows), atomic_load(&e->call_commits),
		atomic_load(&e->call_rows));
	return ENGINE_EXIT_OK;
}

int engine_run(const struct config *cfg)
{
	struct engine e;
	struct signals sg = {0};
	struct store *st = NULL;
	struct http *client = NULL;
	char err[512];
	struct store_lock *lock = NULL;
	struct sdnotify notify;
	struct web *web = NULL;
	int status;

	/* A --once run is a cron job or a Type=oneshot service: it tells
	 * systemd nothing. */
	memset(&notify, 0, sizeof(notify));
	notify.fd = -1;
	if (!cfg->once && sdnotify_open(&notify, err, sizeof(err)) != 0) {
		char quoted[1100];

		log_msg(LOG_WARN, "systemd notification off error=%s",
			log_quote(quoted, sizeof(quoted), err));
	}
	if (engine_init(&e, cfg, &clock_system) != 0) {
		log_msg(LOG_CRITICAL, "out of memory");
		status = ENGINE_EXIT_OSERR;
		goto out;
	}
	e.notify = &notify;
	signals_start(&e, &sg);
	status = prepare_db(&e, &lock, &st);
	if (status == ENGINE_EXIT_OK)
		status = start_web(&e, &web);
	if (status != ENGINE_EXIT_OK)
		goto out;
	client = engine_http_new(&e, err, sizeof(err));
	if (!client) {
		log_msg(LOG_CRITICAL, "%s", err);
		status = ENGINE_EXIT_OSERR;
		goto out;
	}
	if (lease_start(&e) != 0) {
		status = ENGINE_EXIT_OSERR;
		goto out;
	}
	status = cfg->once ? run_once(&e, st, client) : run_daemon(&e, st, client);
	lease_stop(&e);
out:
	web_stop(web);
	signals_stop(&sg);
	http_free(client);
	store_close(st);
	engine_destroy(&e);
	store_unlock(lock);
	sdnotify_close(&notify);
	return status;
}
