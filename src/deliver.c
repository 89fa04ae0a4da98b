#include "deliver.h"

#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "log.h"

#define CALL_BATCH 8              /* outbox rows claimed per delivery claim */
#define CLIENT_ERROR_ATTEMPTS 3   /* a 4xx is dead after this many attempts */
#define RETRY_AFTER_CAP_MS 600000 /* the longest Retry-After honoured */

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

int64_t deliver_backoff_ms(int attempts, uint64_t *rng)
{
	int64_t d = BACKOFF_FIRST_MS;

	for (int i = 1; i < attempts && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	return d / 2 + (int64_t)(next_random(rng) % (uint64_t)(d / 2 + 1));
}

struct delivery {
	struct engine *e;
	const struct store_call *call;
	int rc;            /* the client's status */
	int dropped;       /* a failed repeat whose state is over: deleted */
	int64_t at_steady; /* engine_steady(e) when the answer came */
	int64_t retry_in;  /* backoff before the next attempt */
	int asked;         /* the server asked for the wait (Retry-After) */
	struct store_failure failure;
	enum store_outcome outcome;
};

/* In a write transaction: whether the shard of call's alert is still
 * this engine's (the fence). When it is not, nothing is written: the
 * new owner sends the call again. */
static int call_fenced_off(struct engine *e, struct store *st, const struct store_call *call,
			   int *off, char *err, size_t errlen)
{
	int shard = store_shard_of(call->name);
	unsigned char ok = 0;

	if (lease_fence(e, st, &shard, 1, &ok, err, errlen) != 0)
		return -1;
	*off = !ok;
	return 0;
}

static int write_delivery(struct store *st, void *arg, char *err, size_t errlen)
{
	struct delivery *d = arg;
	int64_t at = engine_wall(d->e, d->at_steady);
	int off = 0;

	d->dropped = 0;
	if (call_fenced_off(d->e, st, d->call, &off, err, errlen) != 0)
		return -1;
	if (off) {
		d->outcome = STORE_CALL_LOST;
		return 0;
	}
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
	d->failure.not_before = d->asked ? d->failure.next_attempt : 0;
	return store_call_failed(st, d->call, &d->failure, &d->outcome, err, errlen);
}

struct release {
	struct engine *e;
	const struct store_call *call;
	int maybe_sent;
};

static int write_release(struct store *st, void *arg, char *err, size_t errlen)
{
	struct release *r = arg;
	int off = 0;

	if (call_fenced_off(r->e, st, r->call, &off, err, errlen) != 0)
		return -1;
	if (off)
		return 0;
	return store_call_release(st, r->call, r->maybe_sent, err, errlen);
}

struct superseded {
	struct engine *e;
	const struct store_call *call;
	int dropped;
};

static int write_drop_superseded(struct store *st, void *arg, char *err, size_t errlen)
{
	struct superseded *s = arg;
	int off = 0;

	s->dropped = 0;
	if (call_fenced_off(s->e, st, s->call, &off, err, errlen) != 0)
		return -1;
	if (off)
		return 0;
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

int deliver_retry_now(struct engine *e, struct store *st, int64_t *n)
{
	struct retry_now r = {.e = e};
	int rc = engine_write_tx(e, st, write_retry_now, &r, "retry calls");

	*n = r.n;
	return rc;
}

/* Makes the calls waiting in backoff due now: the server answers again.
 * A server that fails most calls answers some, and each would set every
 * waiting call going again: so this runs at most once per gap, the gap
 * doubling from BACKOFF_FIRST_MS to BACKOFF_CAP_MS while it keeps being
 * asked for, and starting over once it was not asked for a whole gap. */
void deliver_retry_waiting(struct engine *e, struct store *st)
{
	struct retry_now r = {.e = e};
	int64_t now = engine_steady(e);
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
	if (engine_write_tx(e, st, write_retry_now, &r, "retry calls") == 0 && r.n > 0)
		log_msg(LOG_INFO, "server answers again: retrying calls=%lld now", (long long)r.n);
}

/* The wait before the next attempt of a call that failed: its backoff,
 * or longer when the server asked for it (Retry-After, capped). */
static int64_t retry_delay(struct worker *w, struct sender *sn, int attempts)
{
	int64_t d = deliver_backoff_ms(attempts, &w->rng);
	int64_t asked = sn->retry_after_ms(sn->ctx);

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
	if (d->dropped || d->outcome == STORE_CALL_WAITS)
		metrics_call_failed(&e->metrics, c->kind, 0);
	if (d->dropped) {
		log_msg(LOG_INFO,
			"dropped repeat after a failed attempt, the state changed "
			"alert=%s error=%s",
			name, quoted);
		return 0;
	}
	switch (d->outcome) {
	case STORE_CALL_DELIVERED:
		metrics_delivered(&e->metrics, c->kind, engine_wall(e, d->at_steady) - c->created);
		if (c->kind == STORE_NOTIFY)
			log_msg(LOG_INFO, "delivered kind=notify alert=%s message=%s attempts=%d",
				name, log_quote(quoted, sizeof(quoted), c->message),
				c->attempts + 1);
		else
			log_msg(LOG_INFO, "delivered kind=resolve alert=%s attempts=%d", name,
				c->attempts + 1);
		return 1;
	case STORE_CALL_DEAD:
		metrics_call_failed(&e->metrics, c->kind, 1);
		log_msg(LOG_ERROR, "gave up kind=%s alert=%s attempts=%d reason=%s error=%s", kind,
			name, c->attempts + 1, d->failure.rejected ? "rejected" : "too-old",
			quoted);
		return 0;
	case STORE_CALL_LOST:
		log_msg(LOG_WARN,
			"lease lost, the call was claimed again while this worker "
			"stalled or its shard changed hands: its outcome is not written "
			"kind=%s alert=%s",
			kind, name);
		return 0;
	case STORE_CALL_WAITS:
		break;
	}
	log_msg(LOG_WARN,
		"delivery failed kind=%s alert=%s attempts=%d retry_in_ms=%lld "
		"error=%s",
		kind, name, c->attempts + 1, (long long)d->retry_in, quoted);
	return 0;
}

/* Attempts one claimed call and records the outcome. Returns 1 when it
 * was delivered, 0 when not, -1 when the outcome could not be written. */
static int deliver_one(struct worker *w, struct store *st, struct sender *sn,
		       const struct store_call *c)
{
	struct engine *e = w->e;
	struct delivery d = {.e = e, .call = c};
	char error[512] = "";
	char name[300];

	/* The shard was lost since the claim (or is being given back): the
	 * call is the next owner's, which may send it at once. */
	if (!lease_holds(&e->lease, store_shard_of(c->name), engine_steady(e), 0, NULL))
		return 0;
	/* A repeat claimed in a batch may have been superseded by a state
	 * change of its alert since: the state it repeats is over. */
	if (c->repeat) {
		struct superseded sup = {.e = e, .call = c};

		if (engine_write_tx(e, st, write_drop_superseded, &sup, "drop repeat") != 0)
			return -1;
		if (sup.dropped) {
			log_msg(LOG_DEBUG, "dropped repeat, the state changed alert=%s",
				log_quote(name, sizeof(name), c->name));
			return 0;
		}
	}
	d.rc = sn->send(sn->ctx, c, error, sizeof(error));
	d.at_steady = engine_steady(e);
	if (engine_stopping(e) && d.rc == HTTP_ERR_TRANSPORT) {
		/* Cut short by the stop: not an attempt, but it may have
		 * reached the server. */
		struct release rel = {.e = e, .call = c, .maybe_sent = 1};

		return engine_write_tx(e, st, write_release, &rel, "release call") == 0 ? 0 : -1;
	}
	if (d.rc != HTTP_OK) {
		d.failure.error = error;
		d.failure.give_up_ms = e->cfg->give_up_ms;
		d.failure.rejected = d.rc == HTTP_ERR_CLIENT &&
				     c->attempts + 1 >= CLIENT_ERROR_ATTEMPTS;
		d.failure.maybe_sent = sn->maybe_sent(sn->ctx);
		d.asked = sn->retry_after_ms(sn->ctx) > 0;
		d.retry_in = retry_delay(w, sn, c->attempts + 1);
	}
	if (engine_write_tx(e, st, write_delivery, &d, "delivery") != 0)
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

	if (lease_limit(e, st, err, sizeof(err)) != 0) {
		engine_claim_failed(e, st, failures, "calls", err);
		return -1;
	}
	pthread_mutex_lock(&e->write_lock);
	now = engine_now(e);
	rc = store_claim_calls(st, now, e->once_cutoff ? e->once_cutoff : now, lease_ms, token,
			       calls, CALL_BATCH, n, err, sizeof(err));
	pthread_mutex_unlock(&e->write_lock);
	if (rc != 0) {
		engine_claim_failed(e, st, failures, "calls", err);
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
		if (store_connection_lost(st)) {
			engine_reconnect(e, st, "calls", err);
			return;
		}
		log_msg(LOG_ERROR, "next call: %s", err);
		next = now + cfg->resolution_ms;
	}
	now = engine_now(e);
	if (next - now > cfg->resolution_ms)
		next = now + cfg->resolution_ms;
	engine_wait(e, &e->deliver_cond, &e->deliver_gen, seen, next - now);
}

/* Delivers a claimed batch one call after the other, and gives back what
 * it did not get to: the engine stops, a write failed, or the lease of
 * the batch would run out before the next call could end (the worker
 * stalled, on the network or on the write lock: another worker may
 * claim the rest). Returns whether a call that had failed before went
 * through. */
static int deliver_batch(struct worker *w, struct store *st, struct sender *sn,
			 struct store_call *calls, size_t n, int64_t claimed, int64_t lease_ms)
{
	struct engine *e = w->e;
	const struct config *cfg = e->cfg;
	int64_t one_call = (cfg->timeout_ms + 1000) * cfg->attempts;
	int recovered = 0;
	size_t i;

	for (i = 0; i < n && !engine_stopping(e); i++) {
		int r;

		if (engine_steady(e) + one_call >= claimed + lease_ms)
			break;
		r = deliver_one(w, st, sn, &calls[i]);
		if (r < 0)
			break;
		/* A call that had failed before went through: the server is
		 * back, so the rows waiting in backoff need not wait longer.
		 * They drain at the delivery workers' pace. */
		if (r == 1 && calls[i].attempts > 0)
			recovered = 1;
	}
	for (; i < n; i++) {
		struct release rel = {.e = e, .call = &calls[i]};

		engine_write_tx(e, st, write_release, &rel, "release call");
	}
	return recovered;
}

/* The lease of a claimed batch: long enough for every call of it to use
 * all its attempts. */
static int64_t batch_lease_ms(const struct config *cfg)
{
	return (cfg->timeout_ms + 1000) * cfg->attempts * CALL_BATCH + 30000;
}

int deliver_round(struct worker *w, struct store *st, struct sender *sn, int *claim_failures)
{
	struct engine *e = w->e;
	struct store_call calls[CALL_BATCH];
	int64_t lease_ms = batch_lease_ms(e->cfg);
	int64_t claimed = engine_steady(e);
	size_t n = 0;

	if (atomic_exchange(&e->server_back, 0))
		deliver_retry_waiting(e, st);
	if (claim_batch(e, st, lease_ms, calls, &n, claim_failures) != 0)
		return -1;
	if (n == 0)
		return 0;
	if (deliver_batch(w, st, sn, calls, n, claimed, lease_ms))
		deliver_retry_waiting(e, st);
	for (size_t i = 0; i < n; i++)
		store_call_clear(&calls[i]);
	/* Rows of the same alert queued behind the ones just done. */
	engine_wake(e, 0, 1);
	return (int)n;
}

/* The sender of a worker: the alerts server's client. */
static int server_send(void *ctx, const struct store_call *c, char *err, size_t errlen)
{
	if (c->kind == STORE_NOTIFY)
		return http_notify(ctx, c->name, c->message, err, errlen);
	return http_resolve(ctx, c->name, err, errlen);
}

static int64_t server_retry_after(void *ctx)
{
	return http_retry_after_ms(ctx);
}

static int server_maybe_sent(void *ctx)
{
	return http_maybe_sent(ctx);
}

void *deliver_thread(void *arg)
{
	struct worker *w = arg;
	struct engine *e = w->e;
	const struct config *cfg = e->cfg;
	struct store *st = NULL;
	struct sender sn = {server_send, server_retry_after, server_maybe_sent, NULL};
	char err[512];
	int claim_failures = 0;

	engine_name_thread("deliver");
	if (store_open(cfg->db_path, cfg->sync_full, &st, err, sizeof(err)) != 0) {
		engine_fatal(e, ENGINE_EXIT_DB, "delivery worker %d: %s", w->index, err);
		goto out;
	}
	sn.ctx = engine_http_new(e, err, sizeof(err));
	if (sn.ctx == NULL) {
		engine_fatal(e, ENGINE_EXIT_OSERR, "delivery worker %d: %s", w->index, err);
		goto out;
	}
	while (!engine_stopping(e)) {
		unsigned long seen = engine_generation(e, &e->deliver_gen);
		int n = deliver_round(w, st, &sn, &claim_failures);

		if (n == 0 && e->once_cutoff)
			break;
		if (n == 0)
			wait_for_calls(e, st, seen);
	}
out:
	http_free(sn.ctx);
	engine_close_store(st, &e->call_commits, &e->call_rows);
	return NULL;
}
