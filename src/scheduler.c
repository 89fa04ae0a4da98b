#include "scheduler.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hash.h"
#include "log.h"
#include "rules.h"

#define EVAL_POOL 512         /* evaluations picked and not yet written, at most */
#define WRITE_BATCH 128       /* finished evaluations that make a write due at once */
#define WRITE_DELAY_MS 5      /* the longest a finished evaluation waits for its write */
#define SERVER_DOWN_QUERIES 3 /* failed queries in a row that mean the server is down */
#define QUERY_POLL_MS 100     /* the longest the query thread waits for the network */
/* The shortest time between two picks: alerts that fall due within it
 * are picked together, up to this much after their slot. Each pick is a
 * read transaction, a wake-up of the query thread and a round of the
 * scheduler; with alerts due every millisecond, picking each
 * millisecond's cost as much as the queries' own work. */
#define PICK_GAP_MS 2

/* Notes the outcome of a query. Queries run every interval whatever the
 * outbox holds, so they are the first to see a server come back: one it
 * answers (even with a 4xx or a bad body) after SERVER_DOWN_QUERIES in a
 * row that it did not (5xx, transport error) ends an outage, and the
 * delivery workers then retry the calls waiting in backoff at once rather
 * than each waiting out its own delay. Only queries count: a server that
 * answers queries but refuses calls leaves the calls backing off. */
void sched_query_answered(struct engine *e, int rc)
{
	if (rc == HTTP_ERR_TRANSPORT || rc == HTTP_ERR_SERVER) {
		if (!engine_stopping(e))
			atomic_fetch_add(&e->failing_queries, 1);
		return;
	}
	if (rc == HTTP_ERR_INTERNAL)
		return;
	if (atomic_exchange(&e->failing_queries, 0) >= SERVER_DOWN_QUERIES) {
		atomic_store(&e->server_back, 1);
		engine_wake(e, 0, 1);
	}
}

/* Evaluations in flight. The scheduler picks due alerts and puts them in
 * todo; the query thread takes them, queries (-c at a time), and puts
 * them in done; the scheduler writes the done ones in one transaction. */
struct eval_queue {
	pthread_mutex_t lock;
	pthread_cond_t work;        /* the idle query thread waits for todo */
	struct http_multi *queries; /* the query thread's, woken when todo grows */
	struct eval **todo;         /* ring of cap: picked, not yet queried */
	size_t todo_head, todo_len;
	struct eval **done; /* cap: queried or abandoned, not yet written */
	size_t done_len;
	size_t querying;    /* taken from todo by the query thread, not yet done */
	int64_t first_done; /* engine_steady() when done last became non-empty */
	size_t cap;
	int closed; /* the scheduler has finished: the query thread exits */
};

struct eval_queue *sched_queue_new(int concurrency)
{
	struct eval_queue *q = calloc(1, sizeof(*q));
	/* Room for every query slot to have a few evaluations waiting. */
	size_t cap = (size_t)concurrency * 4 > EVAL_POOL ? (size_t)concurrency * 4 : EVAL_POOL;

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

void sched_queue_free(struct eval_queue *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->lock);
	free(q->todo);
	free(q->done);
	free(q);
}

void sched_wake_queries(struct engine *e)
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
static void push_done(struct eval_queue *q, struct eval *x, int64_t now_steady)
{
	assert(q->done_len < q->cap);
	if (q->done_len == 0)
		q->first_done = now_steady;
	q->done[q->done_len++] = x;
}

/* Writes one finished evaluation: it moves its alert's next_eval on from
 * the slot it was picked for (the stored one: a clock shift since the
 * pick is kept), so an evaluation abandoned at a stop, or lost in a
 * crash, leaves its alert due. One whose definition changed while its
 * query ran is written as abandoned: its alert, still due, is evaluated
 * again at once with the new definition (thresholds, messages, interval). */
static int write_eval(struct store *st, struct eval *ev, char *err, size_t errlen)
{
	struct rules_result *r = &ev->result;
	int64_t id = ev->due.alert_id;
	struct rules_state s;
	int64_t next;

	if (ev->abandoned || ev->fenced || ev->passed)
		return 0;
	if (store_eval_get(st, &ev->due, &s, &next, &ev->check, err, errlen) != 0)
		return -1;
	if (ev->check != STORE_EVAL_CURRENT)
		return 0;
	next = rules_next_eval(next, ev->due.def.interval_ms, ev->at);
	if (!ev->ok)
		return store_eval_put_failed(st, id, ev->at, ev->error, next, err, errlen);
	ev->from = s.state;
	rules_step(&ev->due.def, &s, ev->value, ev->at, r);
	if (store_eval_put_ok(st, id, &r->next, ev->value, ev->at, next, err, errlen) != 0)
		return -1;
	if (r->changed && store_transition_add(st, id, ev->at, s.state, r->next.state, ev->value,
					       err, errlen) != 0)
		return -1;
	if (r->call == RULES_CALL_NOTIFY && r->changed)
		return store_call_add(st, id, STORE_NOTIFY, r->message, ev->at, err, errlen);
	if (r->call == RULES_CALL_NOTIFY)
		return store_call_add_repeat(st, id, r->message, ev->at, err, errlen);
	if (r->call == RULES_CALL_RESOLVE)
		return store_call_add(st, id, STORE_RESOLVE, NULL, ev->at, err, errlen);
	return 0;
}

struct eval_batch {
	struct engine *e;
	struct eval **ev;
	size_t n;
};

/* The fence of a batch: the evaluations of shards this engine no longer
 * holds are not written (their alerts, still due, are the new owner's);
 * the others are, under the fence's lock. */
static int fence_evals(struct eval_batch *b, struct store *st, char *err, size_t errlen)
{
	int *shards = malloc(b->n * sizeof(*shards) + 1);
	unsigned char *ok = malloc(b->n + 1);
	int rc = -1;

	if (shards == NULL || ok == NULL) {
		snprintf(err, errlen, "fence: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		shards[i] = b->ev[i]->shard;
	rc = lease_fence(b->e, st, shards, b->n, ok, err, errlen);
	for (size_t i = 0; rc == 0 && i < b->n; i++)
		b->ev[i]->fenced = !ok[i];
out:
	free(shards);
	free(ok);
	return rc;
}

/* The evaluations of a batch that find PASS, written in one go where
 * nothing else follows from them (store_evals_stay_pass); the others
 * take write_eval's full path. */
static int write_passes(struct eval_batch *b, struct store *st, char *err, size_t errlen)
{
	struct store_pass *p = malloc(b->n * sizeof(*p) + 1);
	struct eval **of = malloc(b->n * sizeof(*of) + 1);
	unsigned char *written = malloc(b->n + 1);
	size_t n = 0;
	int rc = -1;

	if (p == NULL || of == NULL || written == NULL) {
		snprintf(err, errlen, "write evaluations: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct eval *ev = b->ev[i];

		if (ev->abandoned || ev->fenced || !ev->ok ||
		    rules_level(&ev->due.def, ev->value) != LEVEL_PASS)
			continue;
		p[n] = (struct store_pass){&ev->due, ev->value, ev->at};
		of[n++] = ev;
	}
	rc = store_evals_stay_pass(st, p, n, written, err, errlen);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		of[i]->passed = written[i];
		if (written[i]) {
			of[i]->result.next.state = LEVEL_PASS;
			of[i]->from = LEVEL_PASS;
		}
	}
out:
	free(p);
	free(of);
	free(written);
	return rc;
}

static int write_evals(struct store *st, void *arg, char *err, size_t errlen)
{
	struct eval_batch *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		struct eval *ev = b->ev[i];

		ev->at = engine_wall(b->e, ev->at_steady);
		ev->check = STORE_EVAL_CURRENT;
		ev->passed = 0;
		memset(&ev->result, 0, sizeof(ev->result));
	}
	if (fence_evals(b, st, err, errlen) != 0 || write_passes(b, st, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < b->n; i++)
		if (write_eval(st, b->ev[i], err, errlen) != 0)
			return -1;
	return 0;
}

/* Logs what one written evaluation did; 1 when it enqueued a call. */
static int report_eval(struct engine *e, const struct eval *ev)
{
	char name[300], quoted[600];
	const char *state = rules_level_name(ev->result.next.state);
	int quiet;

	if (ev->abandoned || ev->fenced)
		return 0;
	if (ev->check != STORE_EVAL_CHANGED)
		metrics_evaluated(&e->metrics, ev->due.scheduled, ev->due.def.interval_ms, ev->at);
	if (ev->ok && ev->check == STORE_EVAL_RETIRED)
		return 0;
	/* Most evaluations change nothing and log nothing but at debug:
	 * their name is not quoted for a line that is not written. */
	quiet = ev->ok && ev->check == STORE_EVAL_CURRENT && !ev->result.changed &&
		ev->result.call == RULES_CALL_NONE;
	if (quiet && !log_enabled(LOG_DEBUG))
		return 0;
	log_quote(name, sizeof(name), ev->due.def.name);
	if (ev->check == STORE_EVAL_CHANGED) {
		log_msg(LOG_DEBUG,
			"evaluation discarded, the definition changed while its query "
			"ran alert=%s",
			name);
		return 0;
	}
	if (!ev->ok) {
		metrics_eval_failed(&e->metrics, ev->rc);
		log_msg(LOG_WARN, "query failed alert=%s error=%s", name,
			log_quote(quoted, sizeof(quoted), ev->error));
		return 0;
	}
	if (ev->result.changed) {
		metrics_transition(&e->metrics, ev->from, ev->result.next.state);
		log_msg(LOG_INFO, "transition alert=%s from=%s to=%s value=%.5f", name,
			rules_level_name(ev->from), state, ev->value);
	} else {
		log_msg(LOG_DEBUG, "evaluated alert=%s state=%s value=%.5f", name, state,
			ev->value);
	}
	if (ev->result.call == RULES_CALL_NONE)
		return 0;
	log_msg(LOG_DEBUG, "enqueued kind=%s alert=%s",
		ev->result.call == RULES_CALL_NOTIFY ? "notify" : "resolve", name);
	return 1;
}

long sched_write(struct engine *e, struct store *st, struct eval **ev, size_t n)
{
	struct eval_batch b = {e, ev, n};
	long calls = 0;

	if (engine_write_tx(e, st, write_evals, &b, "evaluations") != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		calls += report_eval(e, ev[i]);
	return calls;
}

/* The alerts picked and not yet written, by id. */
static int in_flight_has(int64_t id, void *arg)
{
	const struct hash_set *set = arg;

	return hash_set_has(set, hash_u64((uint64_t)id), (uint64_t)id);
}

void sched_in_flight_add(struct hash_set *set, int64_t id)
{
	hash_set_add(set, hash_u64((uint64_t)id), (uint64_t)id);
}

void sched_in_flight_remove(struct hash_set *set, int64_t id)
{
	hash_set_remove(set, hash_u64((uint64_t)id), (uint64_t)id);
}

/* A pick writes nothing: it runs under the write lock only so that its
 * now and the stored times are in the same timebase (a clock shift moves
 * both). */
long sched_pick(struct engine *e, struct store *st, struct hash_set *in_flight,
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

int sched_write_due(size_t done, int64_t first_done, int64_t now_steady, size_t room, size_t todo,
		    int stop)
{
	if (done == 0)
		return 0;
	return stop || done >= WRITE_BATCH || now_steady - first_done >= WRITE_DELAY_MS ||
	       (room == 0 && todo == 0);
}

/* Moves every evaluation not yet taken by the query thread to done,
 * abandoned (the engine stops). */
static void abandon_todo(struct eval_queue *q, int64_t now_steady)
{
	pthread_mutex_lock(&q->lock);
	while (q->todo_len > 0) {
		struct eval *x = q->todo[q->todo_head];

		q->todo_head = (q->todo_head + 1) % q->cap;
		q->todo_len--;
		x->abandoned = 1;
		push_done(q, x, now_steady);
	}
	pthread_mutex_unlock(&q->lock);
}

/* The scheduler's own state. */
struct scheduler {
	struct engine *e;
	struct eval_queue *q;
	struct store *st;
	struct eval *pool;       /* q->cap evaluations ... */
	struct eval **free_list; /* ... nfree of them not in flight */
	size_t nfree;
	struct eval **batch;       /* the one being written */
	struct store_due *due;     /* the one being picked */
	struct hash_set in_flight; /* ids of the alerts in flight */
	int64_t next;              /* when the next alert falls due */
	int64_t pick_at;           /* engine_steady() before which nothing is picked */
	int once_done;             /* --once: nothing due is left */
	int pick_failures;
	int64_t next_watchdog; /* engine_steady() of the next WATCHDOG=1 */
};

static int scheduler_open(struct scheduler *s, struct engine *e)
{
	size_t cap = e->queue->cap;
	char err[512];

	memset(s, 0, sizeof(*s));
	s->e = e;
	s->q = e->queue;
	s->pool = calloc(cap, sizeof(*s->pool));
	s->free_list = calloc(cap, sizeof(*s->free_list));
	s->batch = calloc(cap, sizeof(*s->batch));
	s->due = calloc(cap, sizeof(*s->due));
	if (!s->pool || !s->free_list || !s->batch || !s->due ||
	    hash_set_init(&s->in_flight, cap) != 0) {
		engine_fatal(e, ENGINE_EXIT_OSERR, "evaluation scheduler: out of memory");
		return -1;
	}
	for (size_t i = 0; i < cap; i++)
		s->free_list[s->nfree++] = &s->pool[i];
	if (store_open(e->cfg->db_path, e->cfg->sync_full, &s->st, err, sizeof(err)) != 0) {
		engine_fatal(e, ENGINE_EXIT_DB, "evaluation scheduler: %s", err);
		return -1;
	}
	return 0;
}

static void scheduler_close(struct scheduler *s)
{
	struct eval_queue *q = s->q;

	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->work);
	pthread_mutex_unlock(&q->lock);
	hash_set_free(&s->in_flight);
	free(s->due);
	free(s->batch);
	free(s->free_list);
	free(s->pool);
	engine_close_store(s->st, &s->e->eval_commits, &s->e->eval_rows);
}

/* Writes what the query thread finished, in one transaction, and takes
 * the evaluations back. After a fatal error nothing more is written. */
static void write_done(struct scheduler *s)
{
	struct engine *e = s->e;
	struct eval_queue *q = s->q;
	size_t n;
	long calls = 0;

	pthread_mutex_lock(&q->lock);
	memcpy(s->batch, q->done, q->done_len * sizeof(*s->batch));
	n = q->done_len;
	q->done_len = 0;
	pthread_mutex_unlock(&q->lock);
	if (!atomic_load(&e->fatal))
		calls = sched_write(e, s->st, s->batch, n);
	for (size_t i = 0; i < n; i++) {
		sched_in_flight_remove(&s->in_flight, s->batch[i]->due.alert_id);
		store_due_clear(&s->batch[i]->due);
		s->free_list[s->nfree++] = s->batch[i];
	}
	if (calls > 0)
		engine_wake(e, 0, 1);
}

/* Hands n picked alerts to the query thread. */
static void hand_out(struct scheduler *s, long n)
{
	struct eval_queue *q = s->q;

	pthread_mutex_lock(&q->lock);
	for (long i = 0; i < n; i++) {
		struct eval *x = s->free_list[--s->nfree];

		memset(x, 0, sizeof(*x));
		x->due = s->due[i];
		x->shard = store_shard_of(x->due.def.name);
		sched_in_flight_add(&s->in_flight, x->due.alert_id);
		q->todo[(q->todo_head + q->todo_len++) % q->cap] = x;
	}
	pthread_cond_broadcast(&q->work);
	if (q->queries != NULL)
		http_multi_wakeup(q->queries);
	pthread_mutex_unlock(&q->lock);
}

/* Picks what is due, as far as there is room; 1 when it picked any. */
static int pick_more(struct scheduler *s)
{
	struct engine *e = s->e;
	char err[512];
	long n;

	s->next = INT64_MAX;
	/* The steady clock: a step of the wall clock does not hold picks. */
	if (e->once_cutoff == 0 && engine_steady(e) < s->pick_at)
		return 0;
	if (lease_limit(e, s->st, err, sizeof(err)) != 0) {
		engine_claim_failed(e, s->st, &s->pick_failures, "evaluations", err);
		return 0;
	}
	if (e->once_cutoff == 0) {
		if (store_next_pick(s->st, in_flight_has, &s->in_flight, s->in_flight.n, &s->next,
				    err, sizeof(err)) != 0) {
			/* A lost connection is waited out here: nothing is
			 * picked meanwhile. */
			if (store_connection_lost(s->st))
				engine_claim_failed(e, s->st, &s->pick_failures, "evaluations",
						    err);
			else
				log_msg(LOG_ERROR, "next due: %s", err);
			s->next = INT64_MAX;
			return 0;
		}
		if (s->next > engine_now(e))
			return 0;
	}
	n = sched_pick(e, s->st, &s->in_flight, s->due, s->nfree, err, sizeof(err));
	if (n < 0)
		engine_claim_failed(e, s->st, &s->pick_failures, "evaluations", err);
	else
		s->pick_failures = 0;
	if (n == 0 && e->once_cutoff)
		s->once_done = 1;
	if (n <= 0)
		return 0;
	s->pick_at = engine_steady(e) + PICK_GAP_MS;
	hand_out(s, n);
	return 1;
}

/* Tells systemd's watchdog that the scheduler loop turns, every half of
 * WatchdogSec: a loop stuck (a write that never returns, a deadlock) goes
 * silent and systemd restarts the daemon. */
static void tick_watchdog(struct scheduler *s, int64_t now_steady)
{
	int64_t every = sdnotify_watchdog_ms(s->e->notify);

	if (every <= 0 || now_steady < s->next_watchdog)
		return;
	sdnotify_send(s->e->notify, "WATCHDOG=1");
	/* From now, not from when it was due: a late tick does not make
	 * the next ones come in a burst. */
	s->next_watchdog = now_steady + every;
}

/* How long the scheduler may sleep: until the next alert falls due (or,
 * within PICK_GAP_MS of the last pick, until that has passed), the
 * oldest finished evaluation is due for its write, the watchdog's next
 * tick, or -i. */
static int64_t idle_wait(const struct scheduler *s, int stop, size_t done, int64_t first_done,
			 int64_t now_steady)
{
	int64_t now = engine_now(s->e);
	int64_t wait = s->e->cfg->resolution_ms;

	if (sdnotify_watchdog_ms(s->e->notify) > 0 && s->next_watchdog - now_steady < wait)
		wait = s->next_watchdog - now_steady;
	if (!stop && !s->once_done && s->nfree > 0 && s->pick_at > now_steady) {
		if (s->pick_at - now_steady < wait)
			wait = s->pick_at - now_steady;
	} else if (!stop && !s->once_done && s->nfree > 0 && s->next != INT64_MAX &&
		   s->next - now < wait) {
		wait = s->next - now;
	}
	if (done > 0 && first_done + WRITE_DELAY_MS - now_steady < wait)
		wait = first_done + WRITE_DELAY_MS - now_steady;
	return wait < 1 ? 1 : wait;
}

/* The evaluation scheduler: picks due alerts for the query thread and
 * writes what they found, WRITE_BATCH at a time or after WRITE_DELAY_MS,
 * whichever comes first, in one transaction. Leaves when the engine
 * stops (once every evaluation in flight is written or abandoned) or,
 * with --once, when nothing due is left. */
void *sched_thread(void *arg)
{
	struct worker *w = arg;
	struct engine *e = w->e;
	struct scheduler s;

	engine_name_thread("scheduler");
	if (scheduler_open(&s, e) != 0)
		goto out;
	for (;;) {
		unsigned long seen = engine_generation(e, &e->eval_gen);
		int stop = engine_stopping(e);
		int64_t now_steady = engine_steady(e);
		size_t done, todo;
		int64_t first_done;
		int busy = 0;

		tick_watchdog(&s, now_steady);
		metrics_tick(&e->metrics, now_steady);
		if (stop)
			abandon_todo(s.q, now_steady);
		pthread_mutex_lock(&s.q->lock);
		done = s.q->done_len;
		todo = s.q->todo_len;
		first_done = s.q->first_done;
		pthread_mutex_unlock(&s.q->lock);
		if (sched_write_due(done, first_done, now_steady, s.nfree, todo, stop)) {
			write_done(&s);
			busy = 1;
			done = 0;
		}
		s.next = INT64_MAX;
		if (!stop && !s.once_done && s.nfree > 0 && !atomic_load(&e->fatal))
			busy |= pick_more(&s);
		if (busy)
			continue;
		if ((stop || s.once_done || atomic_load(&e->fatal)) && s.nfree == s.q->cap)
			break;
		engine_wait(e, &e->eval_cond, &e->eval_gen, seen,
			    idle_wait(&s, stop, done, first_done, now_steady));
	}
out:
	scheduler_close(&s);
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
	x->rc = rc;
	metrics_query_done(&e->metrics, x->started_us);
	x->value = value;
	snprintf(x->error, sizeof(x->error), "%s", error);
	sched_query_answered(e, rc);
	if (!x->ok && engine_stopping(e))
		x->abandoned = 1; /* cut short by the stop, not a failure */
	x->at_steady = engine_steady(e);
	pthread_mutex_lock(&q->lock);
	push_done(q, x, x->at_steady);
	q->querying--;
	/* The scheduler is woken for the first one (it then sleeps until
	 * WRITE_DELAY_MS later), for a full batch, and when the queries run
	 * out of work: nothing waits and nothing is in flight (then it may
	 * have no room to pick more until it writes). Not for every answer
	 * that comes while the last ones are in flight: each such wake-up
	 * found no write due and nothing to pick. */
	signal = q->done_len == 1 || q->done_len == WRITE_BATCH ||
		 (q->todo_len == 0 && q->querying == 0 && q->done_len > 1);
	pthread_mutex_unlock(&q->lock);
	if (signal)
		engine_wake(e, 1, 0);
}

/* Starts the queries of n evaluations taken from todo (at a stop, they
 * are abandoned instead). */
static void start_queries(struct engine *e, struct http_multi *m, struct eval **taken, size_t n)
{
	char err[HTTP_ERR_MAX];

	for (size_t i = 0; i < n; i++) {
		struct eval *x = taken[i];
		int rc;

		if (engine_stopping(e)) {
			query_done(x, HTTP_ERR_TRANSPORT, 0, "stopped", e); /* abandoned */
			continue;
		}
		x->started_us = metrics_query_started(&e->metrics, x->due.scheduled, engine_now(e));
		if ((rc = http_multi_start(m, x->due.def.query, x, err, sizeof(err))) != HTTP_OK)
			query_done(x, rc, 0, err, e);
	}
}

/* The query thread: keeps up to -c queries of picked evaluations in
 * flight, each slot over its own keep-alive connection, from one thread
 * (no thread per connection sleeping and waking for every request). At a
 * stop the queries in flight are cut off: their alerts stay due. */
void *sched_query_thread(void *arg)
{
	struct worker *w = arg;
	struct engine *e = w->e;
	struct eval_queue *q = e->queue;
	struct http_opts opts = engine_http_opts(e);
	struct http_multi *m;
	struct eval **taken = NULL;
	char err[HTTP_ERR_MAX];

	engine_name_thread("queries");
	m = http_multi_new(&opts, (size_t)e->cfg->concurrency, err, sizeof(err));
	taken = calloc((size_t)e->cfg->concurrency, sizeof(*taken));
	if (m == NULL || taken == NULL) {
		engine_fatal(e, ENGINE_EXIT_OSERR, "query thread: %s", m ? "out of memory" : err);
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
			q->querying++;
		}
		if (leave)
			q->queries = NULL;
		pthread_mutex_unlock(&q->lock);
		if (leave)
			break;
		start_queries(e, m, taken, n);
		if (engine_stopping(e))
			http_multi_cancel(m, query_done, e);
		else if (http_multi_busy(m) > 0 &&
			 http_multi_run(m, QUERY_POLL_MS, query_done, e) != 0)
			engine_sleep_ms(QUERY_POLL_MS); /* logged; do not spin */
	}
	http_multi_free(m);
	free(taken);
	return NULL;
}

int sched_start(struct engine *e, struct worker *w)
{
	if (engine_start_workers(e, w, 1, sched_thread, 0) != 0)
		return -1;
	return engine_start_workers(e, w + 1, 1, sched_query_thread, 1);
}
