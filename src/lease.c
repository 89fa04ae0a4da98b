#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_core.h"
#include "log.h"

/* A renewal's valid time is cut by lease / LEASE_MARGIN_DIV, so that the
 * engine stops before the database could let another engine claim. */
#define LEASE_MARGIN_DIV 5
/* An engine gives shards back only above its fair share + this, so that
 * engines do not hand shards to and fro over rounding. */
#define LEASE_SLACK 2
/* Between rounds an engine below its fair share looks for shards given
 * back (a graceful stop) this often, so that they change hands within
 * about a second whatever the lease. */
#define LEASE_POLL_MS 1000
/* ... and this often while it found fewer than it has room for: the
 * shards of an engine that died are taken soon after their leases run
 * out. */
#define LEASE_HUNGRY_POLL_MS 250

void lease_init(struct lease *l, int all)
{
	pthread_condattr_t ca;

	memset(l, 0, sizeof(*l));
	l->all = all;
	atomic_init(&l->quit, 0);
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
}

void lease_destroy(struct lease *l)
{
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
}

size_t lease_fair_share(int64_t live)
{
	if (live < 1)
		live = 1;
	return (size_t)((STORE_SHARDS + live - 1) / live);
}

int lease_holds(struct lease *l, int shard, int64_t now_steady, int work, int64_t *epoch)
{
	int held;

	if (l->all) {
		if (epoch)
			*epoch = 0;
		return 1;
	}
	if (shard < 0 || shard >= STORE_SHARDS)
		return 0;
	pthread_mutex_lock(&l->lock);
	held = l->epoch[shard] != 0 && now_steady < l->valid_until && !(work && l->leaving[shard]);
	if (epoch)
		*epoch = l->epoch[shard];
	pthread_mutex_unlock(&l->lock);
	return held;
}

void lease_work_set(struct lease *l, int64_t now_steady, struct store_shards *out)
{
	out->n = 0;
	pthread_mutex_lock(&l->lock);
	if (now_steady < l->valid_until) {
		for (int i = 0; i < STORE_SHARDS; i++) {
			if (l->epoch[i] == 0 || l->leaving[i])
				continue;
			out->id[out->n] = i;
			out->epoch[out->n] = l->epoch[i];
			out->n++;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

int lease_limit(struct engine *e, struct store *st, char *err, size_t errlen)
{
	struct store_shards *set;
	int rc;

	if (e->lease.all)
		return 0;
	set = malloc(sizeof(*set));
	if (set == NULL) {
		snprintf(err, errlen, "limit shards: out of memory");
		return -1;
	}
	lease_work_set(&e->lease, engine_steady(e), set);
	rc = store_limit_shards(st, set, err, errlen);
	free(set);
	return rc;
}

int lease_fence(struct engine *e, struct store *st, const int *shards, size_t n, unsigned char *ok,
		char *err, size_t errlen)
{
	struct store_shards *want;
	unsigned char seen[STORE_SHARDS] = {0};
	int64_t now = engine_steady(e);
	int rc;

	memset(ok, e->lease.all ? 1 : 0, n);
	if (e->lease.all || n == 0)
		return 0;
	want = malloc(sizeof(*want));
	if (want == NULL) {
		snprintf(err, errlen, "fence: out of memory");
		return -1;
	}
	want->n = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t epoch;

		if (seen[shards[i]] || !lease_holds(&e->lease, shards[i], now, 0, &epoch))
			continue;
		seen[shards[i]] = 1;
		want->id[want->n] = shards[i];
		want->epoch[want->n++] = epoch;
	}
	rc = store_fence(st, e->cfg->engine_id, want, want, err, errlen);
	if (rc == 0) {
		memset(seen, 0, sizeof(seen));
		for (size_t i = 0; i < want->n; i++)
			seen[want->id[i]] = 1;
		for (size_t i = 0; i < n; i++)
			ok[i] = seen[shards[i]];
	}
	free(want);
	return rc;
}

/* The lease thread's own state. */
struct leaser {
	struct engine *e;
	struct store *st; /* NULL while the database is unreachable */
	struct store_shards held, got;
	int64_t next_round;   /* engine_steady(): the next renewal */
	int64_t reconnect_at; /* engine_steady() */
	int64_t reconnect_ms;
	int hungry;  /* the last claim found fewer shards than there was room for */
	int down;    /* the database is unreachable: logged once */
	int expired; /* the local deadline passed: logged once */
};

static void log_shards(struct engine *e, const char *what, size_t n, size_t held)
{
	char id[300];

	log_msg(LOG_INFO, "%s engine=%s shards=%zu held=%zu", what,
		log_quote(id, sizeof(id), e->cfg->engine_id), n, held);
}

/* Renews what is held (*renewed: it went through) and drops what was
 * lost. The deadline of a success counts from t0, taken before. */
static int renew(struct leaser *s, int64_t t0, char *err, size_t errlen)
{
	struct engine *e = s->e;
	struct lease *l = &e->lease;
	int64_t lease_ms = e->cfg->lease_ms;
	size_t before, lost = 0;

	pthread_mutex_lock(&l->lock);
	s->held.n = 0;
	for (int i = 0; i < STORE_SHARDS; i++) {
		if (l->epoch[i] == 0)
			continue;
		s->held.id[s->held.n] = i;
		s->held.epoch[s->held.n++] = l->epoch[i];
	}
	pthread_mutex_unlock(&l->lock);
	before = s->held.n;
	if (store_shards_renew(s->st, e->cfg->engine_id, lease_ms, &s->held, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&l->lock);
	{
		unsigned char kept[STORE_SHARDS] = {0};

		for (size_t i = 0; i < s->held.n; i++)
			kept[s->held.id[i]] = 1;
		for (int i = 0; i < STORE_SHARDS; i++) {
			if (l->epoch[i] != 0 && !kept[i]) {
				l->epoch[i] = 0;
				l->leaving[i] = 0;
				lost++;
			}
		}
		l->held = s->held.n;
		l->valid_until = t0 + lease_ms - lease_ms / LEASE_MARGIN_DIV;
	}
	pthread_mutex_unlock(&l->lock);
	if (lost > 0)
		log_shards(e, "lost shards", lost, before - lost);
	s->expired = 0;
	return 0;
}

/* Gives back the shards marked leaving a round ago (their work in flight
 * had a round to be written), then marks the excess over fair + slack. */
static int give_back(struct leaser *s, size_t fair, char *err, size_t errlen)
{
	struct engine *e = s->e;
	struct lease *l = &e->lease;
	size_t excess = 0;
	size_t over;

	s->got.n = 0;
	pthread_mutex_lock(&l->lock);
	/* No more than are over the fair share now (engines come and go):
	 * the rest are kept, not given back to be claimed again. */
	over = l->held > fair ? l->held - fair : 0;
	for (int i = 0; i < STORE_SHARDS; i++) {
		if (l->epoch[i] == 0 || !l->leaving[i])
			continue;
		if (s->got.n == over) {
			l->leaving[i] = 0;
			continue;
		}
		s->got.id[s->got.n] = i;
		s->got.epoch[s->got.n++] = l->epoch[i];
	}
	pthread_mutex_unlock(&l->lock);
	if (s->got.n > 0) {
		if (store_shards_release(s->st, e->cfg->engine_id, &s->got, err, errlen) != 0)
			return -1;
		pthread_mutex_lock(&l->lock);
		for (size_t i = 0; i < s->got.n; i++) {
			l->epoch[s->got.id[i]] = 0;
			l->leaving[s->got.id[i]] = 0;
		}
		l->held -= s->got.n;
		pthread_mutex_unlock(&l->lock);
		log_shards(e, "gave back shards", s->got.n, l->held);
	}
	pthread_mutex_lock(&l->lock);
	if (l->held > fair + LEASE_SLACK)
		excess = l->held - fair;
	/* The highest first: claims take the lowest free ids. */
	for (int i = STORE_SHARDS - 1; i >= 0 && excess > 0; i--) {
		if (l->epoch[i] != 0 && !l->leaving[i]) {
			l->leaving[i] = 1;
			excess--;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return 0;
}

/* Claims up to fair - held shards. */
static int claim(struct leaser *s, size_t fair, char *err, size_t errlen)
{
	struct engine *e = s->e;
	struct lease *l = &e->lease;
	size_t held;

	pthread_mutex_lock(&l->lock);
	held = l->held;
	pthread_mutex_unlock(&l->lock);
	s->hungry = 0;
	if (held >= fair)
		return 0;
	if (store_shards_claim(s->st, e->cfg->engine_id, e->cfg->lease_ms, fair - held, &s->got,
			       err, errlen) != 0)
		return -1;
	s->hungry = s->got.n < fair - held;
	if (s->got.n == 0)
		return 0;
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < s->got.n; i++) {
		l->epoch[s->got.id[i]] = s->got.epoch[i];
		l->leaving[s->got.id[i]] = 0;
	}
	l->held += s->got.n;
	held = l->held;
	pthread_mutex_unlock(&l->lock);
	log_shards(e, "claimed shards", s->got.n, held);
	engine_wake(e, 1, 1);
	return 0;
}

/* One round: heartbeat, renewal, give-back, claims. */
static int lease_round(struct leaser *s, int full, char *err, size_t errlen)
{
	struct engine *e = s->e;
	int64_t t0 = engine_steady(e);
	int64_t live = 1;
	size_t fair;

	/* A --once run counts for nobody's fair share: it takes only what
	 * no live engine holds. An engine whose heartbeat missed a round
	 * counts no more: by the time its leases run out, the others' fair
	 * shares have room for its shards (with the whole lease as the
	 * window, a dead engine would hold their shares down a round longer
	 * than its leases). */
	if (store_engine_beat(s->st, e->cfg->engine_id,
			      e->cfg->once ? STORE_BEAT_STOPPED : STORE_BEAT_ALIVE,
			      e->cfg->lease_ms * 2 / 3, &live, err, errlen) != 0 ||
	    (full && renew(s, t0, err, errlen) != 0))
		return -1;
	/* --once takes whatever nobody holds. */
	fair = e->cfg->once ? STORE_SHARDS : lease_fair_share(live);
	if (full && give_back(s, fair, err, errlen) != 0)
		return -1;
	return engine_stopping(e) ? 0 : claim(s, fair, err, errlen);
}

/* The local deadline passed without a renewal: every shard is dropped
 * before its lease can run out in the database. */
static void expire(struct leaser *s)
{
	struct engine *e = s->e;
	struct lease *l = &e->lease;
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->held;
	if (engine_steady(e) < l->valid_until || n == 0) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	memset(l->epoch, 0, sizeof(l->epoch));
	memset(l->leaving, 0, sizeof(l->leaving));
	l->held = 0;
	pthread_mutex_unlock(&l->lock);
	if (!s->expired) {
		char id[300];

		log_msg(LOG_WARN,
			"lease not renewed in time, stopping work on every shard engine=%s "
			"shards=%zu",
			log_quote(id, sizeof(id), e->cfg->engine_id), n);
	}
	s->expired = 1;
}

/* Opens the thread's connection and says the engine started, releasing
 * what an earlier process of the same id held. */
static int connect_db(struct leaser *s, int first, char *err, size_t errlen)
{
	struct engine *e = s->e;

	if (store_open(e->cfg->db_path, e->cfg->sync_full, &s->st, err, errlen) != 0)
		return -1;
	if (!first)
		return 0;
	if (store_engine_beat(s->st, e->cfg->engine_id, STORE_BEAT_FIRST, e->cfg->lease_ms, NULL,
			      err, errlen) != 0 ||
	    store_shards_release(s->st, e->cfg->engine_id, NULL, err, errlen) != 0) {
		store_close(s->st);
		s->st = NULL;
		return -1;
	}
	return 0;
}

/* A round failed. An error of the database (a deadlock, a timeout) is
 * logged and the next round tries again. A lost connection is opened
 * again with backoff: the lease thread, which uses its connection every
 * lease/3, speaks for the engine's connections (each of the others
 * reconnects quietly when it next needs to): one line when the database
 * goes away, one when it is back. */
static void round_failed(struct leaser *s, const char *err)
{
	struct engine *e = s->e;
	char quoted[1100];

	if (s->st != NULL && !store_connection_lost(s->st)) {
		log_msg(LOG_ERROR, "shard lease round failed error=%s",
			log_quote(quoted, sizeof(quoted), err));
		return;
	}
	if (!s->down) {
		log_msg(LOG_WARN,
			"database connection lost, shard leases not renewed: reconnecting error=%s",
			log_quote(quoted, sizeof(quoted), err));
		s->reconnect_ms = RECONNECT_FIRST_MS;
	}
	s->down = 1;
	store_close(s->st);
	s->st = NULL;
	s->reconnect_at = engine_steady(e) + s->reconnect_ms;
	s->reconnect_ms = s->reconnect_ms * 2 > RECONNECT_CAP_MS ? RECONNECT_CAP_MS
								 : s->reconnect_ms * 2;
}

/* One turn of the thread: (re)connects when due, then a round: a full
 * one (renewals, give-backs) every lease/3, else a heartbeat and claims. */
static void lease_turn(struct leaser *s)
{
	char err[512];
	int64_t now = engine_steady(s->e);
	int full = now >= s->next_round;

	if (s->st == NULL) {
		if (engine_steady(s->e) < s->reconnect_at)
			return;
		if (connect_db(s, 0, err, sizeof(err)) != 0) {
			s->reconnect_at = now + s->reconnect_ms;
			s->reconnect_ms = s->reconnect_ms * 2 > RECONNECT_CAP_MS
						  ? RECONNECT_CAP_MS
						  : s->reconnect_ms * 2;
			return;
		}
		full = 1;
	}
	if (full)
		s->next_round = now + s->e->cfg->lease_ms / 3;
	if (lease_round(s, full, err, sizeof(err)) != 0) {
		/* The renewal is tried again in a moment. */
		if (full)
			s->next_round = now + LEASE_POLL_MS;
		round_failed(s, err);
		return;
	}
	if (s->down)
		log_msg(LOG_INFO, "database connection back, shard leases renewed");
	s->down = 0;
}

static void *lease_thread(void *arg)
{
	struct leaser *s = arg;
	struct engine *e = s->e;
	struct lease *l = &e->lease;

	engine_name_thread("lease");
	while (!atomic_load(&l->quit)) {
		unsigned long seen = engine_generation(e, &l->gen);
		int64_t wait;

		lease_turn(s);
		expire(s);
		/* Until the next renewal or reconnection, but a look for
		 * free shards at least every LEASE_POLL_MS, or every
		 * LEASE_HUNGRY_POLL_MS while there is room for more. */
		wait = (s->st == NULL ? s->reconnect_at : s->next_round) - engine_steady(e);
		if (wait > (s->hungry ? LEASE_HUNGRY_POLL_MS : LEASE_POLL_MS))
			wait = s->hungry ? LEASE_HUNGRY_POLL_MS : LEASE_POLL_MS;
		engine_wait(e, &l->cond, &l->gen, seen, wait < 1 ? 1 : wait);
	}
	return NULL;
}

int lease_start(struct engine *e)
{
	struct leaser *s;
	char err[512], quoted[1100];
	int rc;

	if (e->lease.all)
		return 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_msg(LOG_CRITICAL, "lease thread: out of memory");
		return -1;
	}
	s->e = e;
	s->next_round = engine_steady(e) + e->cfg->lease_ms / 3;
	if (connect_db(s, 1, err, sizeof(err)) != 0 || lease_round(s, 1, err, sizeof(err)) != 0) {
		log_msg(LOG_ERROR, "first shard claims failed, retrying error=%s",
			log_quote(quoted, sizeof(quoted), err));
		if (s->st != NULL)
			round_failed(s, err);
		s->reconnect_ms = RECONNECT_FIRST_MS;
	}
	rc = pthread_create(&e->lease.thread, NULL, lease_thread, s);
	if (rc != 0) {
		log_msg(LOG_CRITICAL, "start lease thread: %s", strerror(rc));
		store_close(s->st);
		free(s);
		return -1;
	}
	e->lease.started = 1;
	e->lease.leaser = s;
	return 0;
}

void lease_stop(struct engine *e)
{
	struct leaser *s = e->lease.leaser;
	struct lease *l = &e->lease;
	char err[512], quoted[1100];

	if (!l->started)
		return;
	atomic_store(&l->quit, 1);
	pthread_mutex_lock(&e->wake_lock);
	l->gen++;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&e->wake_lock);
	pthread_join(l->thread, NULL);
	l->started = 0;
	l->leaser = NULL;
	if (s->st == NULL && connect_db(s, 0, err, sizeof(err)) != 0)
		goto out;
	if (store_shards_release(s->st, e->cfg->engine_id, NULL, err, sizeof(err)) != 0 ||
	    store_engine_beat(s->st, e->cfg->engine_id, STORE_BEAT_STOPPED, e->cfg->lease_ms, NULL,
			      err, sizeof(err)) != 0)
		goto out;
	pthread_mutex_lock(&l->lock);
	log_shards(e, "gave back shards", l->held, 0);
	memset(l->epoch, 0, sizeof(l->epoch));
	l->held = 0;
	pthread_mutex_unlock(&l->lock);
	store_close(s->st);
	free(s);
	return;
out:
	log_msg(LOG_WARN,
		"shards not given back at the stop: others take them when the lease "
		"runs out error=%s",
		log_quote(quoted, sizeof(quoted), err));
	store_close(s->st);
	free(s);
}
