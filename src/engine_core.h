#ifndef ALERT_EXEC_ENGINE_CORE_H
#define ALERT_EXEC_ENGINE_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "clock.h"
#include "config.h"
#include "sdnotify.h"
#include "metrics.h"
#include "lease.h"
#include "store.h"

/*
 * What the engine's threads share: the engine's state, its clock, the
 * wake-ups between threads, and the write lock with the wrapper every
 * write transaction goes through. engine.c runs the threads; sched.c
 * evaluates, deliver.c delivers. Internal to the engine (and its unit
 * tests); the rest of the program sees engine.h.
 *
 * Threads: the evaluation scheduler and the query thread (scheduler.c), one
 * or more delivery workers (deliver.c), the signal thread and the main
 * thread (engine.c). Each thread that touches the database owns its own
 * store connection; write transactions are serialised by write_lock, so
 * no thread waits in SQLite's busy handler.
 */

#define BACKOFF_FIRST_MS 500   /* the first wait of a backoff ... */
#define BACKOFF_CAP_MS 60000   /* ... doubling up to this */
#define DB_WRITE_ATTEMPTS 4    /* a failing write is tried this often, then fatal */
#define EVAL_THREADS 2         /* the evaluation scheduler and the query thread */
#define RECONNECT_FIRST_MS 500 /* a lost database connection: the first wait ... */
#define RECONNECT_CAP_MS 10000 /* ... doubling up to this */

struct eval_queue;

struct engine {
	const struct config *cfg;
	const struct clock_source *clock;
	atomic_int stop;
	atomic_int fatal;           /* exit status of a fatal error, 0 if none */
	pthread_mutex_t write_lock; /* serialises write transactions */
	pthread_mutex_t wake_lock;
	pthread_cond_t eval_cond;
	pthread_cond_t deliver_cond;
	pthread_cond_t main_cond;  /* wakes the main loop (a signal, a stop) */
	unsigned long eval_gen;    /* bumped to wake the scheduler */
	unsigned long deliver_gen; /* bumped to wake delivery workers */
	unsigned long main_gen;
	int64_t once_cutoff; /* --once: nothing later than this is claimed */
	atomic_int reload;   /* SIGHUP: re-fetch the definitions */
	atomic_llong claims; /* outbox claims made: each one's lease token */
	/* The engine's wall clock is the steady clock + clock_offset
	 * (engine_now). It follows the wall clock, but a jump of the wall
	 * clock reaches it only together with the shift of the stored times,
	 * under write_lock: a time taken under write_lock is always in the
	 * database's timebase. Times measured outside it are steady stamps
	 * turned into wall times under it (engine_wall). */
	atomic_llong clock_offset;
	/* Queries that failed in a row, and whether the server answered one
	 * again after SERVER_DOWN_QUERIES of them: then the calls waiting in
	 * backoff are retried at once. */
	atomic_int failing_queries;
	atomic_int server_back;
	/* Connections to the database lost and not back yet: the first
	 * logs the episode's start, the last its end. */
	atomic_int db_lost;
	/* Retrying every waiting call at once is itself backed off (under
	 * wake_lock): not before retry_all_at, then retry_all_gap later. */
	int64_t retry_all_at; /* engine_steady() */
	int64_t retry_all_gap;
	struct metrics metrics; /* counters: evaluations, calls, ... (metrics.h) */
	/* Commits that wrote rows, and the rows: of the evaluation scheduler
	 * and of the delivery workers. */
	atomic_long eval_commits, eval_rows, call_commits, call_rows;
	struct eval_queue *queue; /* between the scheduler and the query thread */
	/* systemd's notify socket (READY, WATCHDOG from the scheduler, ...);
	 * NULL with --once and in unit tests: nothing is sent. */
	const struct sdnotify *notify;
	struct lease lease; /* the shards held (lease.h) */
};

/* One thread of the engine. */
struct worker {
	struct engine *e;
	int index;
	pthread_t thread;
	int started;
	uint64_t rng; /* the backoff's jitter */
};

/* Sets up an engine for cfg reading time from clock (clock_system, or a
 * test's). -1 when out of memory. */
int engine_init(struct engine *e, const struct config *cfg, const struct clock_source *clock);
void engine_destroy(struct engine *e);

/* Steady time (ms; counts a suspend), the wall clock as it is, the
 * engine's wall clock (steady + offset), and the engine's wall time of a
 * steady stamp (call under write_lock). */
int64_t engine_steady(const struct engine *e);
int64_t engine_wall_clock(const struct engine *e);
int64_t engine_now(struct engine *e);
int64_t engine_wall(struct engine *e, int64_t steady);

void engine_sleep_ms(int64_t ms);
int engine_stopping(struct engine *e);

/* Stops the engine (fatal: the exit status of a fatal error, or 0) and
 * wakes every thread. */
void engine_stop(struct engine *e, int fatal);

/* Stops the engine after a fatal error, to exit with `status`. The first
 * fatal error is the one line logged at CRITICAL; those that follow while
 * the engine stops (other workers meeting the same fault) are errors. */
void engine_fatal(struct engine *e, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Wake-ups: each waiter notes a generation, then waits until it moves. */
void engine_wake(struct engine *e, int eval, int deliver);
void engine_wake_main(struct engine *e);
unsigned long engine_generation(struct engine *e, const unsigned long *gen);
void engine_wait(struct engine *e, pthread_cond_t *cond, const unsigned long *gen,
		 unsigned long seen, int64_t wait_ms);

/* A write transaction: fn runs between BEGIN IMMEDIATE and COMMIT under the
 * engine's write lock; it must only read and write the database (it may
 * run more than once). */
typedef int (*engine_write_fn)(struct store *st, void *arg, char *err, size_t errlen);

/* Runs fn under the write lock, retrying a failure a few times: fn runs
 * between BEGIN IMMEDIATE and COMMIT, or, with own_tx, fn is a store
 * function that is a transaction of its own. When it keeps failing the
 * engine stops with exit status 74 and -1 is returned: the caller must not
 * act as if it had been written. */
int engine_write(struct engine *e, struct store *st, engine_write_fn fn, void *arg, int own_tx,
		 const char *what);
/* engine_write of fn in a transaction. */
int engine_write_tx(struct engine *e, struct store *st, engine_write_fn fn, void *arg,
		    const char *what);

/* After a failure on st whose connection was lost: reconnects, waiting
 * RECONNECT_FIRST_MS doubling to RECONNECT_CAP_MS between attempts,
 * until it is back (0) or the engine stops (-1). The first connection of
 * the engine lost logs one line, the last one back another. */
int engine_reconnect(struct engine *e, struct store *st, const char *what, const char *err);

/* Reports a failed claim on st; stops the engine when they keep failing,
 * unless the connection was lost: then it reconnects. */
void engine_claim_failed(struct engine *e, struct store *st, int *failures, const char *what,
			 const char *err);

/* Adds a worker's write counters to the engine's, and closes its store. */
void engine_close_store(struct store *st, atomic_long *commits, atomic_long *rows);

/* The options of a client of the alerts server: the configured timeouts
 * and attempts, and the engine's stop flag. */
struct http_opts engine_http_opts(struct engine *e);
struct http *engine_http_new(struct engine *e, char *err, size_t errlen);

/* Starts n threads running fn on w[0..n), indexes from first_index; -1
 * (logged) when one cannot be started. */
int engine_start_workers(struct engine *e, struct worker *w, int n, void *(*fn)(void *),
			 int first_index);
void engine_join_workers(struct worker *w, int n);

/* Names the calling thread (as top -H and perf show it). */
void engine_name_thread(const char *name);

/* Follows the wall clock (clock.h): a step moves every stored schedule
 * and the engine's clock together, so nothing stalls, bursts, fires
 * early or is given up for the size of the jump; a slew moves the clock
 * alone, and so does a step on a shared database (PostgreSQL), whose
 * times are every engine's. -1 when the shift could not be written (the engine stops). */
int engine_follow_clock(struct engine *e, struct store *st);

#endif
