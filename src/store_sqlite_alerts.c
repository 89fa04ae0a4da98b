#include "store_sqlite.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void bind_def(sqlite3_stmt *s, const struct alert_def *d, int64_t now)
{
	sqlite3_bind_text(s, 2, d->query, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, d->interval_ms);
	sqlite3_bind_int64(s, 4, d->repeat_ms);
	sqlite3_bind_int64(s, 5, d->sustain_ms);
	sqlite3_bind_double(s, 6, d->warn_value);
	sqlite3_bind_text(s, 7, d->warn_message, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 8, d->crit_value);
	sqlite3_bind_text(s, 9, d->crit_message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 10, now);
}

static int text_eq(sqlite3_stmt *s, int i, const char *v)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t && strcmp((const char *)t, v) == 0;
}

/* Whether the stored row (S_DEF_BY_NAME) equals d. */
static int def_same(sqlite3_stmt *s, const struct alert_def *d)
{
	return text_eq(s, 1, d->query) && sqlite3_column_int64(s, 2) == d->interval_ms &&
	       sqlite3_column_int64(s, 3) == d->repeat_ms &&
	       sqlite3_column_int64(s, 4) == d->sustain_ms &&
	       sqlite3_column_double(s, 5) == d->warn_value && text_eq(s, 6, d->warn_message) &&
	       sqlite3_column_double(s, 7) == d->crit_value && text_eq(s, 8, d->crit_message);
}

/* In a transaction: a new alert with its PASS state, first evaluated at
 * first. Sets *id. */
static int insert_def(struct sqlite_store *st, const struct alert_def *d, int64_t now,
		      int64_t first, int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_DEF_INSERT);

	sqlite3_bind_text(s, 1, d->name, -1, SQLITE_STATIC);
	bind_def(s, d, now);
	if (sql_run(st, s, err, errlen, "insert alert") != 0)
		return -1;
	*id = sqlite3_last_insert_rowid(st->db);
	s = sql_stmt(st, S_STATE_INSERT);
	sqlite3_bind_int64(s, 1, *id);
	sqlite3_bind_int64(s, 2, first);
	sqlite3_bind_int64(s, 3, (first % d->interval_ms) * SLOT_PHASE);
	return sql_run(st, s, err, errlen, "insert alert state");
}

/* In a transaction: a stored alert gets definition d. A shorter interval
 * takes effect at once, not after the old one. */
static int update_def(struct sqlite_store *st, int64_t id, const struct alert_def *d, int64_t now,
		      char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_DEF_UPDATE);

	sqlite3_bind_int64(s, 1, id);
	bind_def(s, d, now);
	if (sql_run(st, s, err, errlen, "update alert") != 0)
		return -1;
	s = sql_stmt(st, S_STATE_NEXT_MIN);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now + d->interval_ms);
	return sql_run(st, s, err, errlen, "update alert schedule");
}

/* In a transaction: a retired alert comes back, evaluated at first with
 * fresh sustain clocks. */
static int revive_def(struct sqlite_store *st, int64_t id, int64_t now, int64_t first, char *err,
		      size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_REVIVE_ALERT);

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	if (sql_run(st, s, err, errlen, "revive alert") != 0)
		return -1;
	s = sql_stmt(st, S_REVIVE_STATE);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, first);
	return sql_run(st, s, err, errlen, "revive alert state");
}

/* In a transaction: inserts or updates one definition. */
static int sync_one(struct sqlite_store *st, const struct alert_def *d, int64_t now, int due_now,
		    struct store_sync_stats *stats, char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_DEF_BY_NAME);
	int64_t id;
	int64_t first = due_now ? now : rules_first_eval(d->name, d->interval_ms, now);
	int rc;
	int same, retired;

	sqlite3_bind_text(s, 1, d->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		if (insert_def(st, d, now, first, &id, err, errlen) != 0)
			return -1;
		stats->added++;
		goto seen;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sql_fail(st, err, errlen, "read alert");
	}
	id = sqlite3_column_int64(s, 0);
	same = def_same(s, d);
	retired = sqlite3_column_type(s, 9) != SQLITE_NULL;
	sqlite3_reset(s);
	if (!same && update_def(st, id, d, now, err, errlen) != 0)
		return -1;
	if (retired && revive_def(st, id, now, first, err, errlen) != 0)
		return -1;
	if (retired)
		stats->revived++;
	else if (same)
		stats->unchanged++;
	else
		stats->changed++;
seen:
	s = sql_stmt(st, S_SEEN_ADD);
	sqlite3_bind_int64(s, 1, id);
	return sql_run(st, s, err, errlen, "mark alert seen");
}

/* In a transaction: retires every active alert not marked seen. */
static int retire_unseen(struct sqlite_store *st, int64_t now, struct store_sync_stats *stats,
			 char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_UNSEEN);
	struct victim {
		int64_t id;
		enum rules_level state;
		double value;
	} *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	int ret = -1;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct victim *nv = realloc(v, ncap * sizeof(*v));

			if (!nv) {
				snprintf(err, errlen, "retire alerts: out of memory");
				sqlite3_reset(s);
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		v[n].id = sqlite3_column_int64(s, 0);
		if (rules_level_parse((const char *)sqlite3_column_text(s, 2), &v[n].state) != 0)
			v[n].state = LEVEL_PASS;
		v[n].value = sqlite3_column_double(s, 3);
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		sql_fail(st, err, errlen, "find retired alerts");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].state != LEVEL_PASS) {
			if (sqlite_store_call_add(&st->base, v[i].id, STORE_RESOLVE, NULL, now, err,
						  errlen) != 0 ||
			    sqlite_store_transition_add(&st->base, v[i].id, now, v[i].state,
							LEVEL_PASS, v[i].value, err, errlen) != 0)
				goto out;
		}
		s = sql_stmt(st, S_RETIRE_ALERT);
		sqlite3_bind_int64(s, 1, v[i].id);
		sqlite3_bind_int64(s, 2, now);
		if (sql_run(st, s, err, errlen, "retire alert") != 0)
			goto out;
		s = sql_stmt(st, S_RETIRE_STATE);
		sqlite3_bind_int64(s, 1, v[i].id);
		sqlite3_bind_int64(s, 2, RETIRED_NEXT_EVAL);
		if (sql_run(st, s, err, errlen, "retire alert state") != 0)
			goto out;
		stats->retired++;
	}
	ret = 0;
out:
	free(v);
	return ret;
}

/* In a transaction: marks the stored, active alert called name as seen,
 * so it is not retired; nothing when there is none. */
static int keep_one(struct sqlite_store *st, const char *name, char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_DEF_BY_NAME);
	int64_t id;
	int rc;

	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return sql_fail(st, err, errlen, "read alert");
	}
	id = sqlite3_column_int64(s, 0);
	rc = sqlite3_column_type(s, 9) != SQLITE_NULL; /* retired */
	sqlite3_reset(s);
	if (rc)
		return 0;
	s = sql_stmt(st, S_SEEN_ADD);
	sqlite3_bind_int64(s, 1, id);
	return sql_run(st, s, err, errlen, "mark alert seen");
}

int sqlite_store_sync_defs(struct store *base, const struct alert_def *defs, size_t n,
			   const char *const *keep, size_t nkeep, int64_t now, int due_now,
			   struct store_sync_stats *stats, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	memset(stats, 0, sizeof(*stats));
	if (sqlite_store_begin(&st->base, err, errlen) != 0)
		return -1;
	if (sql_run(st, sql_stmt(st, S_SEEN_CLEAR), err, errlen, "sync alerts") != 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (sync_one(st, &defs[i], now, due_now, stats, err, errlen) != 0)
			goto fail;
	for (size_t i = 0; i < nkeep; i++)
		if (keep_one(st, keep[i], err, errlen) != 0)
			goto fail;
	if (retire_unseen(st, now, stats, err, errlen) != 0)
		goto fail;
	if (sql_run(st, sql_stmt(st, S_SEEN_CLEAR), err, errlen, "sync alerts") != 0)
		goto fail;
	/* The picks' caches learn of the change from this (store_pick_due). */
	if (stats->added + stats->changed + stats->retired + stats->revived > 0 &&
	    sql_run(st, sql_stmt(st, S_DEFS_BUMP), err, errlen, "sync alerts") != 0)
		goto fail;
	return sqlite_store_commit(&st->base, err, errlen);
fail:
	sqlite_store_rollback(&st->base);
	return -1;
}

/* The definition of a picked alert: its entry in the cache, or, when the
 * cache has none, its row read into a new one. */
static int pick_def(struct sqlite_store *st, struct store_due *d, char *err, size_t errlen)
{
	struct def_entry *e = def_cache_get(&st->defs, d->alert_id);
	struct alert_def def = {0};
	sqlite3_stmt *s;
	int64_t version = 0;
	int rc = 0;

	if (e == NULL) {
		s = sql_stmt(st, S_DEF_BY_ID);
		sqlite3_bind_int64(s, 1, d->alert_id);
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW) {
			if (rc == SQLITE_DONE)
				snprintf(err, errlen,
					 "pick due alerts: alert %lld has no definition",
					 (long long)d->alert_id);
			else
				sql_fail(st, err, errlen, "pick due alerts");
			sqlite3_reset(s);
			return -1;
		}
		rc = sql_column_def(s, 0, &def, "pick due alerts", err, errlen);
		version = sqlite3_column_int64(s, 9);
		sqlite3_reset(s);
	}
	return store_due_from_cache(d, &st->defs, e, rc, &def, version, err, errlen);
}

static int pick_due(struct sqlite_store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
		    void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
		    char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_DEFS_VERSION);
	int64_t version;
	size_t k = 0;
	int rc = SQLITE_DONE;

	*n = 0;
	/* In the pick's snapshot: the cache drops what an earlier version
	 * of the definitions read. */
	if (sql_run_int64(st, s, 0, &version, err, errlen, "pick due alerts") != 0)
		return -1;
	def_cache_check(&st->defs, version);
	s = sql_stmt(st, S_DUE_IDS);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(max + in_flight));
	while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);

		if (skip != NULL && skip(id, arg))
			continue;
		memset(&out[k], 0, sizeof(out[k]));
		out[k].alert_id = id;
		out[k].scheduled = sqlite3_column_int64(s, 1);
		out[k].row = sqlite3_column_int64(s, 2);
		k++;
	}
	sqlite3_reset(s);
	if (k < max && rc != SQLITE_DONE) {
		sql_fail(st, err, errlen, "pick due alerts");
		return -1;
	}
	for (size_t i = 0; i < k; i++)
		if (pick_def(st, &out[i], err, errlen) != 0)
			goto fail;
	*n = k;
	return 0;
fail:
	for (size_t i = 0; i < k; i++)
		store_due_clear(&out[i]);
	return -1;
}

/* The pick's statements in one read transaction: one snapshot, and the
 * locks of one transaction rather than of one per statement. */
int sqlite_store_pick_due(struct store *base, int64_t now, int (*skip)(int64_t alert_id, void *arg),
			  void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
			  char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	int own = sqlite3_get_autocommit(st->db);
	int rc;

	if (own && sql_run(st, sql_stmt(st, S_BEGIN_READ), err, errlen, "begin pick") != 0)
		return -1;
	rc = pick_due(st, now, skip, arg, in_flight, out, max, n, err, errlen);
	if (!own)
		return rc;
	/* Ends the read: no row was written, nothing for the counters. */
	if (rc == 0 && sql_run(st, sql_stmt(st, S_COMMIT), err, errlen, "end pick") != 0) {
		sqlite_store_rollback(&st->base);
		for (size_t i = 0; i < *n; i++)
			store_due_clear(&out[i]);
		*n = 0;
		return -1;
	}
	if (rc != 0)
		sqlite_store_rollback(&st->base);
	return rc;
}

int sqlite_store_next_pick(struct store *base, int (*skip)(int64_t alert_id, void *arg), void *arg,
			   size_t in_flight, int64_t *at, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_NEXT_IDS);
	int rc;

	*at = INT64_MAX;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)in_flight + 1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (skip != NULL && skip(sqlite3_column_int64(s, 0), arg))
			continue;
		*at = sqlite3_column_int64(s, 1);
		break;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_fail(st, err, errlen, "next due");
	if (*at >= RETIRED_NEXT_EVAL)
		*at = INT64_MAX;
	return 0;
}

int sqlite_store_eval_get(struct store *base, const struct store_due *due, struct rules_state *out,
			  int64_t *next_eval, enum store_eval_check *check, char *err,
			  size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	int64_t alert_id = due->alert_id;
	int64_t gave_up;
	sqlite3_stmt *s = sql_stmt(st, S_STATE_GET);
	int64_t pending = 0;
	int rc;

	sqlite3_bind_int64(s, 1, alert_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			snprintf(err, errlen, "read alert state %lld: no such alert",
				 (long long)alert_id);
		else
			sql_fail(st, err, errlen, "read alert state");
		sqlite3_reset(s);
		return -1;
	}
	rules_state_init(out);
	if (rules_level_parse((const char *)sqlite3_column_text(s, 0), &out->state) != 0) {
		snprintf(err, errlen, "read alert state %lld: bad state '%s'", (long long)alert_id,
			 (const char *)sqlite3_column_text(s, 0));
		sqlite3_reset(s);
		return -1;
	}
	out->warn_since = sql_column_time(s, 1);
	out->crit_since = sql_column_time(s, 2);
	out->last_ok = sql_column_time(s, 3);
	out->last_notified = sql_column_time(s, 4);
	*next_eval = sqlite3_column_int64(s, 6);
	if (sqlite3_column_type(s, 5) != SQLITE_NULL)
		*check = STORE_EVAL_RETIRED;
	else if (sqlite3_column_int64(s, 7) != due->version)
		*check = STORE_EVAL_CHANGED;
	else
		*check = STORE_EVAL_CURRENT;
	/* A notify given up holds the next repeat back as a delivered one
	 * does: the rules see the later of the two. */
	gave_up = sql_column_time(s, 8);
	if (gave_up > out->last_notified)
		out->last_notified = gave_up;
	sqlite3_reset(s);
	/* Only a firing alert's rules look at it (no repeat while a notify
	 * waits); most alerts pass most of the time. */
	if (out->state == LEVEL_PASS)
		return 0;
	s = sql_stmt(st, S_NOTIFY_PENDING);
	sqlite3_bind_int64(s, 1, alert_id);
	if (sql_run_int64(st, s, 0, &pending, err, errlen, "read pending notify") != 0)
		return -1;
	out->notify_pending = pending != 0;
	return 0;
}

int sqlite_store_eval_put_ok(struct store *base, int64_t alert_id, const struct rules_state *r,
			     double value, int64_t at, int64_t next_eval, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_EVAL_OK);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_text(s, 2, rules_level_name(r->state), -1, SQLITE_STATIC);
	sql_bind_time(s, 3, r->warn_since);
	sql_bind_time(s, 4, r->crit_since);
	sqlite3_bind_int64(s, 5, at);
	sqlite3_bind_double(s, 6, value);
	sqlite3_bind_int64(s, 7, next_eval);
	return sql_run(st, s, err, errlen, "write alert state");
}

/* Whether no definition changed since due was picked: the version of
 * the definitions its entry was read at is the one of this write
 * transaction, which no sync can move before it commits (it holds the
 * write lock). Outside a transaction, or for a due without an entry, 0. */
static int defs_same_since_pick(struct sqlite_store *st, const struct store_due *due, int *same,
				char *err, size_t errlen)
{
	*same = 0;
	if (due->entry == NULL || sqlite3_get_autocommit(st->db))
		return 0;
	if (st->tx_defs_version < 0 &&
	    sql_run_int64(st, sql_stmt(st, S_DEFS_VERSION), -1, &st->tx_defs_version, err, errlen,
			  "read the version of the definitions") != 0)
		return -1;
	*same = st->tx_defs_version == due->entry->defs_version;
	return 0;
}

int sqlite_store_eval_stays_pass(struct store *base, const struct store_due *due, double value,
				 int64_t at, int *written, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s;
	int same;

	/* The definition is checked against the alert's row only when one
	 * may have changed: most batches see none. */
	if (defs_same_since_pick(st, due, &same, err, errlen) != 0)
		return -1;
	s = sql_stmt(st, same ? S_EVAL_STAYS_PASS_SAME : S_EVAL_STAYS_PASS);
	sqlite3_bind_int64(s, 1, due->alert_id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_double(s, 3, value);
	sqlite3_bind_int64(s, 4, due->def.interval_ms);
	if (!same)
		sqlite3_bind_int64(s, 5, due->version);
	sqlite3_bind_int64(s, 6, due->row);
	if (sql_run(st, s, err, errlen, "write alert state") != 0)
		return -1;
	*written = sqlite3_changes(st->db) > 0;
	return 0;
}

int sqlite_store_eval_put_failed(struct store *base, int64_t alert_id, int64_t at,
				 const char *error, int64_t next_eval, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_EVAL_FAILED);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, next_eval);
	return sql_run(st, s, err, errlen, "write alert failure");
}

int sqlite_store_transition_add(struct store *base, int64_t alert_id, int64_t at,
				enum rules_level from, enum rules_level to, double value, char *err,
				size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_TRANSITION_ADD);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_text(s, 3, rules_level_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, rules_level_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, value);
	return sql_run(st, s, err, errlen, "write transition");
}
