#ifndef ALERT_EXEC_SCHEDULER_H
#define ALERT_EXEC_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "engine_core.h"
#include "hash.h"
#include "rules.h"
#include "store.h"

/*
 * Evaluations. The scheduler (sched_thread) picks the alerts that are due
 * and hands them to the query thread (sched_query_thread), which keeps up
 * to -c queries in flight over keep-alive connections; the scheduler
 * writes what they found in batches, one transaction each. One thread
 * and one connection do every evaluation write, so a commit carries as
 * many evaluations as finished since the last one, and a pick writes
 * nothing: an alert stays due until its evaluation is written, so one
 * lost in a crash or cut off by a stop is evaluated at the next start.
 */

/* An evaluation in flight. */
struct eval {
	struct store_due due;
	int abandoned; /* not evaluated: give it back */
	int shard;     /* of its alert */
	int fenced;    /* its shard is no longer held: nothing was written */
	int passed;    /* written by store_evals_stay_pass */
	int ok;
	int rc; /* the query's enum http_status */
	double value;
	int64_t started_us; /* metrics_query_started; 0 when never started */
	int64_t at_steady;  /* engine_steady() when the answer came */
	int64_t at;         /* its wall time, set by the write */
	char error[256];
	/* outcome, filled by the write */
	enum store_eval_check check; /* not CURRENT: nothing was written */
	enum rules_level from;
	struct rules_result result;
};

/* The queue between the scheduler and the query thread, with room for
 * the evaluations of -c query slots. NULL when out of memory. */
struct eval_queue *sched_queue_new(int concurrency);
void sched_queue_free(struct eval_queue *q);

/* Starts the scheduler in w[0] and the query thread in w[1]
 * (EVAL_THREADS workers); -1 (logged) when one cannot be started. */
int sched_start(struct engine *e, struct worker *w);

/* The threads. */
void *sched_thread(void *worker);
void *sched_query_thread(void *worker);

/* Wakes the query thread from its wait on the network: at a stop it cuts
 * off the queries in flight at once. */
void sched_wake_queries(struct engine *e);

/* Whether the finished evaluations make a write due now: a full batch,
 * the oldest waited long enough, the engine stops, or the query thread
 * has nothing left while there is no room to pick more. */
int sched_write_due(size_t done, int64_t first_done, int64_t now_steady, size_t room, size_t todo,
		    int stop);

/* Picks up to max due alerts not in in_flight (a set of alert ids, see
 * sched_in_flight_*) into due[]. Returns how many, or -1 with a message. */
long sched_pick(struct engine *e, struct store *st, struct hash_set *in_flight,
		struct store_due *due, size_t max, char *err, size_t errlen);
void sched_in_flight_add(struct hash_set *set, int64_t id);
void sched_in_flight_remove(struct hash_set *set, int64_t id);

/* Writes the evaluations ev[0..n) in one transaction (engine_write: a
 * failure that persists is fatal) and logs what they did. Returns the
 * number of calls they enqueued, or -1 when nothing was written. */
long sched_write(struct engine *e, struct store *st, struct eval **ev, size_t n);

/* A query ended (rc an enum http_status): counts towards telling that the
 * server is back, see deliver_retry_waiting. */
void sched_query_answered(struct engine *e, int rc);

#endif
