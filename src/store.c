/*
 * store.h's functions: the backend is chosen by the database's location
 * (store_location_is_postgres), and every call on a connection goes to
 * the table of the backend that opened it.
 */
#include "store_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "def_cache.h"
#include "hash.h"

int store_location_is_postgres(const char *location)
{
	return strncmp(location, "postgresql://", 13) == 0 ||
	       strncmp(location, "postgres://", 11) == 0;
}

int store_postgres_built(void)
{
#ifdef ALERT_EXEC_POSTGRES
	return 1;
#else
	return 0;
#endif
}

/* Appends what of s[0..n) fits to out (of outlen, at *used). */
static void append(char *out, size_t outlen, size_t *used, const char *s, size_t n)
{
	if (*used + 1 >= outlen)
		return;
	if (n > outlen - 1 - *used)
		n = outlen - 1 - *used;
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
}

/* The '@' that ends the userinfo of the authority at p, or NULL: the
 * last one before the path or the parameters, so that an '@' in a
 * password hides more rather than less. */
static const char *userinfo_end(const char *p)
{
	const char *end = p + strcspn(p, "/?#");
	const char *at = NULL;

	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	return at;
}

/* The userinfo of a URI (user:password@) and the value of every
 * password= parameter are secrets: a SQLite path has neither. */
const char *store_redact_location(char *out, size_t outlen, const char *location)
{
	const char *p;
	const char *at;
	size_t used = 0;

	out[0] = '\0';
	if (!store_location_is_postgres(location)) {
		snprintf(out, outlen, "%s", location);
		return out;
	}
	p = strstr(location, "://") + 3;
	append(out, outlen, &used, location, (size_t)(p - location));
	at = userinfo_end(p);
	if (at != NULL) {
		append(out, outlen, &used, "***", 3);
		p = at;
	}
	while (*p != '\0') {
		const char *key = strstr(p, "password=");
		size_t n = key ? (size_t)(key - p) + 9 : strlen(p);

		/* p is past "://": key[-1] is inside location */
		append(out, outlen, &used, p, n);
		p += n;
		if (key != NULL && (key[-1] == '?' || key[-1] == '&')) {
			append(out, outlen, &used, "***", 3);
			p += strcspn(p, "&#");
		}
	}
	return out;
}

#ifndef ALERT_EXEC_POSTGRES
static int no_postgres(char *err, size_t errlen)
{
	snprintf(err, errlen, "alert-exec was built without PostgreSQL support (libpq)");
	return STORE_ERR;
}
#endif

int store_prepare(const char *location, int sync_full, struct store_lock **lock, char *err,
		  size_t errlen)
{
	if (!store_location_is_postgres(location))
		return store_sqlite_prepare(location, sync_full, lock, err, errlen);
#ifdef ALERT_EXEC_POSTGRES
	return store_pg_prepare(location, lock, err, errlen);
#else
	*lock = NULL;
	return no_postgres(err, errlen);
#endif
}

void store_unlock(struct store_lock *lock)
{
	if (lock == NULL)
		return;
	if (lock->fd >= 0)
		close(lock->fd);
	free(lock);
}

int store_open(const char *location, int sync_full, struct store **out, char *err, size_t errlen)
{
	if (!store_location_is_postgres(location))
		return store_sqlite_open(location, sync_full, out, err, errlen);
	*out = NULL;
#ifdef ALERT_EXEC_POSTGRES
	return store_pg_open(location, out, err, errlen);
#else
	no_postgres(err, errlen);
	return -1;
#endif
}

void store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

void store_counters(const struct store *st, struct store_counters *out)
{
	*out = st->counters;
}

void store_due_clear(struct store_due *due)
{
	if (due->entry != NULL)
		def_entry_unref(due->entry);
	else
		alert_def_clear(&due->def);
	memset(due, 0, sizeof(*due));
}

int store_due_from_cache(struct store_due *d, struct def_cache *c, struct def_entry *e, int read,
			 struct alert_def *def, int64_t version, char *err, size_t errlen)
{
	if (e == NULL && read == 0) {
		e = def_cache_put(c, d->alert_id, version, def);
		if (e == NULL)
			snprintf(err, errlen, "pick due alerts: out of memory");
	}
	alert_def_clear(def);
	if (e == NULL)
		return -1;
	d->entry = e;
	d->def = e->def;
	d->version = e->version;
	return 0;
}

void store_call_clear(struct store_call *call)
{
	free(call->name);
	free(call->message);
	memset(call, 0, sizeof(*call));
}

int store_begin(struct store *st, char *err, size_t errlen)
{
	return st->ops->begin(st, err, errlen);
}

int store_commit(struct store *st, char *err, size_t errlen)
{
	return st->ops->commit(st, err, errlen);
}

void store_rollback(struct store *st)
{
	st->ops->rollback(st);
}

int store_release_leases(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
			 size_t errlen)
{
	return st->ops->release_leases(st, now, max_wait_ms, err, errlen);
}

int store_count_alerts(struct store *st, int64_t *active, int64_t *retired, char *err,
		       size_t errlen)
{
	return st->ops->count_alerts(st, active, retired, err, errlen);
}

int store_sync_defs(struct store *st, const struct alert_def *defs, size_t n,
		    const char *const *keep, size_t nkeep, int64_t now, int due_now,
		    struct store_sync_stats *stats, char *err, size_t errlen)
{
	return st->ops->sync_defs(st, defs, n, keep, nkeep, now, due_now, stats, err, errlen);
}

int store_pick_due(struct store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
		   void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
		   char *err, size_t errlen)
{
	return st->ops->pick_due(st, now, skip, arg, in_flight, out, max, n, err, errlen);
}

int store_next_pick(struct store *st, int (*skip)(int64_t alert_id, void *arg), void *arg,
		    size_t in_flight, int64_t *at, char *err, size_t errlen)
{
	return st->ops->next_pick(st, skip, arg, in_flight, at, err, errlen);
}

int store_eval_get(struct store *st, const struct store_due *due, struct rules_state *s,
		   int64_t *next_eval, enum store_eval_check *check, char *err, size_t errlen)
{
	return st->ops->eval_get(st, due, s, next_eval, check, err, errlen);
}

int store_eval_stays_pass(struct store *st, const struct store_due *due, double value, int64_t at,
			  int *written, char *err, size_t errlen)
{
	return st->ops->eval_stays_pass(st, due, value, at, written, err, errlen);
}

int store_evals_stay_pass(struct store *st, const struct store_pass *p, size_t n,
			  unsigned char *written, char *err, size_t errlen)
{
	if (st->ops->evals_stay_pass != NULL)
		return st->ops->evals_stay_pass(st, p, n, written, err, errlen);
	for (size_t i = 0; i < n; i++) {
		int w = 0;

		if (st->ops->eval_stays_pass(st, p[i].due, p[i].value, p[i].at, &w, err, errlen) !=
		    0)
			return -1;
		written[i] = (unsigned char)w;
	}
	return 0;
}

int store_eval_put_ok(struct store *st, int64_t alert_id, const struct rules_state *s, double value,
		      int64_t at, int64_t next_eval, char *err, size_t errlen)
{
	return st->ops->eval_put_ok(st, alert_id, s, value, at, next_eval, err, errlen);
}

int store_eval_put_failed(struct store *st, int64_t alert_id, int64_t at, const char *error,
			  int64_t next_eval, char *err, size_t errlen)
{
	return st->ops->eval_put_failed(st, alert_id, at, error, next_eval, err, errlen);
}

int store_transition_add(struct store *st, int64_t alert_id, int64_t at, enum rules_level from,
			 enum rules_level to, double value, char *err, size_t errlen)
{
	return st->ops->transition_add(st, alert_id, at, from, to, value, err, errlen);
}

int store_call_add(struct store *st, int64_t alert_id, enum store_kind kind, const char *message,
		   int64_t now, char *err, size_t errlen)
{
	return st->ops->call_add(st, alert_id, kind, message, now, err, errlen);
}

int store_call_add_repeat(struct store *st, int64_t alert_id, const char *message, int64_t now,
			  char *err, size_t errlen)
{
	return st->ops->call_add_repeat(st, alert_id, message, now, err, errlen);
}

int store_claim_calls(struct store *st, int64_t now, int64_t not_after, int64_t lease_ms,
		      int64_t token, struct store_call *out, size_t max, size_t *n, char *err,
		      size_t errlen)
{
	return st->ops->claim_calls(st, now, not_after, lease_ms, token, out, max, n, err, errlen);
}

int store_call_drop_superseded(struct store *st, const struct store_call *call, int *dropped,
			       char *err, size_t errlen)
{
	return st->ops->call_drop_superseded(st, call, dropped, err, errlen);
}

int store_next_call(struct store *st, int64_t *at, char *err, size_t errlen)
{
	return st->ops->next_call(st, at, err, errlen);
}

int store_call_delivered(struct store *st, const struct store_call *call, int64_t at,
			 enum store_outcome *outcome, char *err, size_t errlen)
{
	return st->ops->call_delivered(st, call, at, outcome, err, errlen);
}

int store_call_failed(struct store *st, const struct store_call *call,
		      const struct store_failure *f, enum store_outcome *outcome, char *err,
		      size_t errlen)
{
	return st->ops->call_failed(st, call, f, outcome, err, errlen);
}

int store_call_release(struct store *st, const struct store_call *call, int maybe_sent, char *err,
		       size_t errlen)
{
	return st->ops->call_release(st, call, maybe_sent, err, errlen);
}

int store_calls_retry_now(struct store *st, int64_t at, int64_t *n, char *err, size_t errlen)
{
	return st->ops->calls_retry_now(st, at, n, err, errlen);
}

int store_count_pending(struct store *st, int64_t *n, char *err, size_t errlen)
{
	return st->ops->count_pending(st, n, err, errlen);
}

int store_prune(struct store *st, int64_t cutoff, int64_t max_rows, int64_t *deleted, char *err,
		size_t errlen)
{
	return st->ops->prune(st, cutoff, max_rows, deleted, err, errlen);
}

int store_shift_times(struct store *st, int64_t delta, char *err, size_t errlen)
{
	return st->ops->shift_times(st, delta, err, errlen);
}

int store_reader_open(const char *location, struct store_reader **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!store_location_is_postgres(location))
		return store_sqlite_reader_open(location, out, err, errlen);
#ifdef ALERT_EXEC_POSTGRES
	return store_pg_reader_open(location, out, err, errlen);
#else
	no_postgres(err, errlen);
	return -1;
#endif
}

void store_reader_close(struct store_reader *r)
{
	if (r != NULL)
		r->ops->close(r);
}

int store_read_alerts(struct store_reader *r, size_t max, struct store_alert_status **out,
		      size_t *n, size_t *total, char *err, size_t errlen)
{
	return r->ops->alerts(r, max, out, n, total, err, errlen);
}

int store_read_state_counts(struct store_reader *r, int64_t counts[3], char *err, size_t errlen)
{
	return r->ops->state_counts(r, counts, err, errlen);
}

int store_read_outbox_totals(struct store_reader *r, struct store_outbox_totals *out, char *err,
			     size_t errlen)
{
	return r->ops->outbox_totals(r, out, err, errlen);
}

int store_read_pending(struct store_reader *r, size_t max, struct store_pending_call **out,
		       size_t *n, char *err, size_t errlen)
{
	return r->ops->pending(r, max, out, n, err, errlen);
}

void store_alert_status_free(struct store_alert_status *a, size_t n)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].last_error);
	}
	free(a);
}

void store_pending_free(struct store_pending_call *c, size_t n)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(c[i].name);
		free(c[i].last_error);
	}
	free(c);
}

int store_shard_of(const char *name)
{
	return (int)(hash_str(name) % STORE_SHARDS);
}

int store_shared(const struct store *st)
{
	return st->ops->shards_claim != NULL;
}

/* The message of a lease function on a database that has none. */
static int unshared(const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: the database is one engine's: it has no shard leases", what);
	return -1;
}

int store_engine_beat(struct store *st, const char *engine, enum store_beat beat, int64_t lease_ms,
		      int64_t *live, char *err, size_t errlen)
{
	if (st->ops->engine_beat == NULL)
		return unshared("engine heartbeat", err, errlen);
	return st->ops->engine_beat(st, engine, beat, lease_ms, live, err, errlen);
}

int store_shards_renew(struct store *st, const char *engine, int64_t lease_ms,
		       struct store_shards *held, char *err, size_t errlen)
{
	if (st->ops->shards_renew == NULL)
		return unshared("renew shards", err, errlen);
	return st->ops->shards_renew(st, engine, lease_ms, held, err, errlen);
}

int store_shards_claim(struct store *st, const char *engine, int64_t lease_ms, size_t max,
		       struct store_shards *got, char *err, size_t errlen)
{
	if (st->ops->shards_claim == NULL)
		return unshared("claim shards", err, errlen);
	return st->ops->shards_claim(st, engine, lease_ms, max, got, err, errlen);
}

int store_shards_release(struct store *st, const char *engine, const struct store_shards *which,
			 char *err, size_t errlen)
{
	if (st->ops->shards_release == NULL)
		return unshared("release shards", err, errlen);
	return st->ops->shards_release(st, engine, which, err, errlen);
}

int store_limit_shards(struct store *st, const struct store_shards *held, char *err, size_t errlen)
{
	if (st->ops->limit_shards == NULL)
		return 0;
	return st->ops->limit_shards(st, held, err, errlen);
}

int store_fence(struct store *st, const char *engine, const struct store_shards *want,
		struct store_shards *valid, char *err, size_t errlen)
{
	if (st->ops->fence == NULL) {
		if (valid != want)
			memcpy(valid, want, sizeof(*valid));
		return 0;
	}
	return st->ops->fence(st, engine, want, valid, err, errlen);
}

int store_connection_lost(const struct store *st)
{
	return st->ops->connection_lost != NULL && st->ops->connection_lost(st);
}

int store_reconnect(struct store *st, char *err, size_t errlen)
{
	return st->ops->reconnect != NULL ? st->ops->reconnect(st, err, errlen) : 0;
}
