#include "store_sqlite.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_sqlite_db.h"

static const char *const sql_text[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_BEGIN_READ] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	/* A row leased when the engine stopped may have been on its way to the
	 * server: it is sent again, and no longer dropped as a stale repeat
	 * (that would leave the history without a call the server may have
	 * taken). */
	[S_RELEASE_OUTBOX] =
		"UPDATE outbox SET lease_until = NULL, lease_token = NULL, is_repeat = 0 "
		"WHERE lease_until IS NOT NULL",
	/* ?1 now, ?2 RETIRED_NEXT_EVAL. A row with nothing ahead of now is
	 * not written. */
	[S_CLAMP_STATE] =
		"UPDATE alert_state SET "
		"next_eval = CASE WHEN next_eval < ?2 AND next_eval > ?1 + "
		"  (SELECT interval_ms FROM alert a WHERE a.id = alert_id) "
		"  THEN ?1 + (next_eval - ?1) % (SELECT interval_ms FROM alert a WHERE a.id = alert_id) "
		"  ELSE next_eval END, "
		"last_notified = min(last_notified, ?1), last_ok = min(last_ok, ?1), "
		"last_eval = min(last_eval, ?1), warn_since = min(warn_since, ?1), "
		"crit_since = min(crit_since, ?1), notify_gave_up = min(notify_gave_up, ?1) "
		"WHERE (next_eval < ?2 AND next_eval > ?1 + "
		"  (SELECT interval_ms FROM alert a WHERE a.id = alert_id)) "
		"OR last_notified > ?1 OR last_ok > ?1 OR last_eval > ?1 OR warn_since > ?1 "
		"OR crit_since > ?1 OR notify_gave_up > ?1",
	/* ?1 now, ?2 now + the longest wait between attempts. */
	[S_CLAMP_OUTBOX] =
		"UPDATE outbox SET next_attempt = min(next_attempt, ?2), created = min(created, ?1) "
		"WHERE status = 'pending' AND (next_attempt > ?2 OR created > ?1)",
	[S_COUNT_ALERTS] = "SELECT count(*) FROM alert WHERE retired IS NULL",
	[S_COUNT_RETIRED] = "SELECT count(*) FROM alert WHERE retired IS NOT NULL",
	[S_DEF_BY_NAME] =
		"SELECT id, query, interval_ms, repeat_ms, sustain_ms, warn_value, warn_message, "
		"crit_value, crit_message, retired FROM alert WHERE name = ?1",
	[S_DEF_INSERT] =
		"INSERT INTO alert (name, query, interval_ms, repeat_ms, sustain_ms, warn_value, "
		"warn_message, crit_value, crit_message, created, updated) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
	/* ?1 id, ?2 first evaluation, ?3 the first slot of its phase (its
	 * first evaluation modulo its interval, times SLOT_PHASE): the row
	 * goes next to those of the alerts evaluated at the same moments. */
	[S_STATE_INSERT] = "INSERT INTO alert_state (slot, alert_id, next_eval) VALUES ("
			   "(SELECT coalesce(max(slot) + 1, ?3) FROM alert_state "
			   " WHERE slot >= ?3 AND slot < ?3 + 2097152), ?1, ?2)",
	[S_DEF_UPDATE] =
		"UPDATE alert SET query = ?2, interval_ms = ?3, repeat_ms = ?4, sustain_ms = ?5, "
		"warn_value = ?6, warn_message = ?7, crit_value = ?8, crit_message = ?9, "
		"updated = max(?10, updated + 1) WHERE id = ?1",
	[S_STATE_NEXT_MIN] =
		"UPDATE alert_state SET next_eval = min(next_eval, ?2) WHERE alert_id = ?1",
	[S_REVIVE_ALERT] =
		"UPDATE alert SET retired = NULL, updated = max(?2, updated + 1) WHERE id = ?1",
	[S_REVIVE_STATE] = "UPDATE alert_state SET next_eval = ?2, warn_since = NULL, "
			   "crit_since = NULL, last_ok = NULL WHERE alert_id = ?1",
	[S_SEEN_CLEAR] = "DELETE FROM temp.sync_seen",
	[S_SEEN_ADD] = "INSERT OR IGNORE INTO temp.sync_seen (id) VALUES (?1)",
	[S_UNSEEN] = "SELECT a.id, a.name, s.state, s.last_value FROM alert a "
		     "JOIN alert_state s ON s.alert_id = a.id "
		     "WHERE a.retired IS NULL AND a.id NOT IN (SELECT id FROM temp.sync_seen)",
	[S_RETIRE_ALERT] =
		"UPDATE alert SET retired = ?2, updated = max(?2, updated + 1) WHERE id = ?1",
	[S_RETIRE_STATE] =
		"UPDATE alert_state SET state = 'PASS', warn_since = NULL, crit_since = NULL, "
		"next_eval = ?2 WHERE alert_id = ?1",
	[S_STATE_GET] =
		"SELECT s.state, s.warn_since, s.crit_since, s.last_ok, s.last_notified, a.retired, "
		"s.next_eval, a.updated, s.notify_gave_up "
		"FROM alert_state s JOIN alert a ON a.id = s.alert_id "
		"WHERE s.alert_id = ?1",
	/* From the index alone: the alerts' rows are read only for those
	 * picked. */
	[S_DUE_IDS] = "SELECT alert_id, next_eval, slot FROM alert_state WHERE next_eval <= ?1 "
		      "ORDER BY next_eval LIMIT ?2",
	[S_NEXT_IDS] = "SELECT alert_id, next_eval FROM alert_state ORDER BY next_eval LIMIT ?1",
	[S_DEF_BY_ID] =
		"SELECT name, query, interval_ms, repeat_ms, sustain_ms, warn_value, warn_message, "
		"crit_value, crit_message, updated FROM alert WHERE id = ?1",
	[S_DEFS_VERSION] = "SELECT version FROM definitions",
	[S_DEFS_BUMP] = "UPDATE definitions SET version = version + 1",
	[S_EVAL_OK] =
		"UPDATE alert_state SET state = ?2, warn_since = ?3, crit_since = ?4, "
		"last_ok = ?5, last_eval = ?5, last_value = ?6, failures = 0, last_error = NULL, "
		"next_eval = ?7 WHERE alert_id = ?1",
	/* ?1 id, ?2 at, ?3 value, ?4 interval, ?5 the picked version, ?6
	 * the row (slot) the pick found. Only while the alert is in PASS
	 * with that definition, not retired; the next slot is
	 * rules_next_eval of the stored one. */
	[S_EVAL_STAYS_PASS] =
		"UPDATE alert_state SET warn_since = NULL, crit_since = NULL, last_ok = ?2, "
		"last_eval = ?2, last_value = ?3, failures = 0, last_error = NULL, "
		"next_eval = CASE WHEN next_eval + ?4 > ?2 THEN next_eval + ?4 ELSE ?2 + ?4 END "
		"WHERE slot = ?6 AND alert_id = ?1 AND state = 'PASS' "
		"AND (SELECT updated FROM alert WHERE id = ?1 AND retired IS NULL) = ?5",
	/* The same when no definition changed since the pick: the alert's
	 * row need not be read. */
	[S_EVAL_STAYS_PASS_SAME] =
		"UPDATE alert_state SET warn_since = NULL, crit_since = NULL, last_ok = ?2, "
		"last_eval = ?2, last_value = ?3, failures = 0, last_error = NULL, "
		"next_eval = CASE WHEN next_eval + ?4 > ?2 THEN next_eval + ?4 ELSE ?2 + ?4 END "
		"WHERE slot = ?6 AND alert_id = ?1 AND state = 'PASS'",
	[S_EVAL_FAILED] =
		"UPDATE alert_state SET last_eval = ?2, failures = failures + 1, last_error = ?3, "
		"next_eval = ?4 WHERE alert_id = ?1",
	[S_NOTIFY_PENDING] =
		"SELECT EXISTS (SELECT 1 FROM outbox WHERE alert_id = ?1 AND status = 'pending' "
		"AND kind = 'notify')",
	[S_TRANSITION_ADD] = "INSERT INTO transition (alert_id, at, from_state, to_state, value) "
			     "VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_OUTBOX_ADD] =
		"INSERT INTO outbox (alert_id, kind, message, created, next_attempt, is_repeat) "
		"VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
	[S_DROP_REPEATS] =
		"DELETE FROM outbox WHERE alert_id = ?1 AND status = 'pending' AND is_repeat = 1 "
		"AND lease_until IS NULL",
	[S_DROP_SUPERSEDED] =
		"DELETE FROM outbox WHERE id = ?1 AND lease_token = ?2 AND status = 'pending' "
		"AND is_repeat = 1 "
		"AND EXISTS (SELECT 1 FROM outbox n WHERE n.alert_id = outbox.alert_id "
		"AND n.id > outbox.id AND n.is_repeat = 0)",
	[S_CLAIM_CALLS] =
		"SELECT o.id, o.alert_id, o.kind, a.name, o.message, o.attempts, o.created, "
		"o.is_repeat "
		"FROM outbox o JOIN alert a ON a.id = o.alert_id "
		"WHERE o.status = 'pending' AND o.next_attempt <= ?1 "
		"AND (o.lease_until IS NULL OR o.lease_until < ?2) "
		"AND o.id = (SELECT min(p.id) FROM outbox p "
		"            WHERE p.alert_id = o.alert_id AND p.status = 'pending') "
		"ORDER BY o.next_attempt, o.id LIMIT ?3",
	[S_LEASE_CALL] = "UPDATE outbox SET lease_until = ?2, lease_token = ?3 WHERE id = ?1",
	[S_NEXT_CALL] = "SELECT min(o.next_attempt) FROM outbox o "
			"WHERE o.status = 'pending' AND o.lease_until IS NULL "
			"AND o.id = (SELECT min(p.id) FROM outbox p "
			"            WHERE p.alert_id = o.alert_id AND p.status = 'pending')",
	[S_CALL_DELIVERED] =
		"UPDATE outbox SET status = 'delivered', delivered = ?2, finished = ?2, "
		"attempts = attempts + 1, lease_until = NULL, lease_token = NULL "
		"WHERE id = ?1 AND lease_token = ?3",
	[S_LAST_NOTIFIED] = "UPDATE alert_state SET last_notified = ?2 WHERE alert_id = ?1",
	/* ?1 id, ?2 lease token, ?3 failed at, ?4 next attempt, ?5 error, ?6
	 * give up now, ?7 give-up age, ?8 maybe sent, ?9 the server's
	 * not-before or NULL. The age is measured here, against `created` as
	 * stored: both are in the timebase of the schedules, which a clock
	 * jump moves together. */
	[S_CALL_FAILED] =
		"UPDATE outbox SET attempts = attempts + 1, next_attempt = ?4, last_error = ?5, "
		"not_before = ?9, "
		"lease_until = NULL, lease_token = NULL, "
		"is_repeat = CASE WHEN ?8 THEN 0 ELSE is_repeat END, "
		"status = CASE WHEN ?6 OR ?3 - created >= ?7 THEN 'dead' ELSE 'pending' END, "
		"finished = CASE WHEN ?6 OR ?3 - created >= ?7 THEN ?3 END "
		"WHERE id = ?1 AND lease_token = ?2 RETURNING status",
	[S_GAVE_UP_NOTIFY] = "UPDATE alert_state SET notify_gave_up = ?2 WHERE alert_id = ?1",
	[S_CALL_RELEASE] = "UPDATE outbox SET lease_until = NULL, lease_token = NULL, "
			   "is_repeat = CASE WHEN ?3 THEN 0 ELSE is_repeat END "
			   "WHERE id = ?1 AND lease_token = ?2",
	[S_RETRY_NOW] =
		"UPDATE outbox SET next_attempt = ?1 WHERE status = 'pending' AND next_attempt > ?1 "
		"AND attempts > 0 AND lease_until IS NULL AND (not_before IS NULL OR not_before <= ?1)",
	[S_COUNT_PENDING] = "SELECT count(*) FROM outbox WHERE status = 'pending'",
	/* Through the indexes on finished and at, at most ?2 rows a time. */
	[S_PRUNE_OUTBOX] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
			   "WHERE status <> 'pending' AND finished < ?1 LIMIT ?2)",
	[S_PRUNE_TRANSITION] =
		"DELETE FROM transition WHERE id IN (SELECT id FROM transition WHERE at < ?1 "
		"LIMIT ?2)",
	[S_PRUNE_ALERTS] = "DELETE FROM alert WHERE retired IS NOT NULL AND retired < ?1 "
			   "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = alert.id "
			   "AND o.status = 'pending')",
	[S_SHIFT_STATE] =
		"UPDATE alert_state SET "
		"next_eval = CASE WHEN next_eval < ?2 THEN next_eval + ?1 ELSE next_eval END, "
		"last_notified = last_notified + ?1, last_ok = last_ok + ?1, "
		"warn_since = warn_since + ?1, crit_since = crit_since + ?1, "
		"notify_gave_up = notify_gave_up + ?1",
	/* created too: a call's age decides when it is given up. */
	[S_SHIFT_OUTBOX] =
		"UPDATE outbox SET next_attempt = next_attempt + ?1, lease_until = lease_until + ?1, "
		"created = created + ?1, not_before = not_before + ?1 WHERE status = 'pending'",
};

static const struct store_ops sqlite_ops = {
	.close = sqlite_store_close,
	.begin = sqlite_store_begin,
	.commit = sqlite_store_commit,
	.rollback = sqlite_store_rollback,
	.release_leases = sqlite_store_release_leases,
	.count_alerts = sqlite_store_count_alerts,
	.sync_defs = sqlite_store_sync_defs,
	.pick_due = sqlite_store_pick_due,
	.next_pick = sqlite_store_next_pick,
	.eval_get = sqlite_store_eval_get,
	.eval_stays_pass = sqlite_store_eval_stays_pass,
	.eval_put_ok = sqlite_store_eval_put_ok,
	.eval_put_failed = sqlite_store_eval_put_failed,
	.transition_add = sqlite_store_transition_add,
	.call_add = sqlite_store_call_add,
	.call_add_repeat = sqlite_store_call_add_repeat,
	.claim_calls = sqlite_store_claim_calls,
	.call_drop_superseded = sqlite_store_call_drop_superseded,
	.next_call = sqlite_store_next_call,
	.call_delivered = sqlite_store_call_delivered,
	.call_failed = sqlite_store_call_failed,
	.call_release = sqlite_store_call_release,
	.calls_retry_now = sqlite_store_calls_retry_now,
	.count_pending = sqlite_store_count_pending,
	.prune = sqlite_store_prune,
	.shift_times = sqlite_store_shift_times,
};

int sql_fail(struct sqlite_store *st, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

sqlite3_stmt *sql_stmt(struct sqlite_store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

void sql_bind_time(sqlite3_stmt *s, int i, int64_t t)
{
	if (t == RULES_NEVER)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, t);
}

int64_t sql_column_time(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return RULES_NEVER;
	return sqlite3_column_int64(s, i);
}

char *sql_column_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return strdup(t ? (const char *)t : "");
}

int sql_column_def(sqlite3_stmt *s, int first, struct alert_def *def, const char *what, char *err,
		   size_t errlen)
{
	def->name = sql_column_strdup(s, first);
	def->query = sql_column_strdup(s, first + 1);
	def->interval_ms = sqlite3_column_int64(s, first + 2);
	def->repeat_ms = sqlite3_column_int64(s, first + 3);
	def->sustain_ms = sqlite3_column_int64(s, first + 4);
	def->warn_value = sqlite3_column_double(s, first + 5);
	def->warn_message = sql_column_strdup(s, first + 6);
	def->crit_value = sqlite3_column_double(s, first + 7);
	def->crit_message = sql_column_strdup(s, first + 8);
	if (!def->name || !def->query || !def->warn_message || !def->crit_message) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -1;
	}
	if (def->interval_ms <= 0) {
		snprintf(err, errlen, "%s: alert %s has interval_ms %lld", what, def->name,
			 (long long)def->interval_ms);
		return -1;
	}
	return 0;
}

int sql_run(struct sqlite_store *st, sqlite3_stmt *s, char *err, size_t errlen, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE) {
		sql_fail(st, err, errlen, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

int sql_run_int64(struct sqlite_store *st, sqlite3_stmt *s, int64_t if_null, int64_t *out,
		  char *err, size_t errlen, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_ROW) {
		sql_fail(st, err, errlen, what);
		sqlite3_reset(s);
		return -1;
	}
	*out = sqlite3_column_type(s, 0) == SQLITE_NULL ? if_null : sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

int store_sqlite_open(const char *path, int sync_full, struct store **out, char *err, size_t errlen)
{
	struct sqlite_store *st = NULL;
	int ret = -1;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "open store: out of memory");
		goto out;
	}
	st->base.ops = &sqlite_ops;
	st->tx_defs_version = -1;
	if (def_cache_init(&st->defs) != 0) {
		snprintf(err, errlen, "open store: out of memory");
		goto out;
	}
	if (db_open(path, sync_full, &st->db, err, errlen) != DB_OK)
		goto out;
	if (sqlite3_exec(st->db,
			 "CREATE TEMP TABLE IF NOT EXISTS sync_seen (id INTEGER PRIMARY KEY)", NULL,
			 NULL, NULL) != SQLITE_OK) {
		sql_fail(st, err, errlen, "open store: temp table");
		goto out;
	}
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "prepare statement %d: %s", i,
				 sqlite3_errmsg(st->db));
			goto out;
		}
	}
	*out = &st->base;
	st = NULL;
	ret = 0;
out:
	if (st)
		sqlite_store_close(&st->base);
	return ret;
}

void sqlite_store_close(struct store *base)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	def_cache_free(&st->defs);
	free(st);
}

int store_sqlite_prepare(const char *location, int sync_full, struct store_lock **lock, char *err,
			 size_t errlen)
{
	struct store_lock *l = malloc(sizeof(*l));
	sqlite3 *db = NULL;
	char why[512];
	int rc;

	*lock = NULL;
	if (l == NULL) {
		snprintf(err, errlen, "database %s: out of memory", location);
		return STORE_ERR;
	}
	l->fd = db_lock(location, err, errlen);
	if (l->fd < 0) {
		rc = l->fd == DB_ERR_LOCKED ? STORE_ERR_LOCKED : STORE_ERR;
		free(l);
		return rc;
	}
	rc = db_open(location, sync_full, &db, err, errlen);
	if (rc == DB_OK) {
		/* A corrupt page is found now, not when a write first touches it. */
		rc = db_check(db, why, sizeof(why));
		if (rc == DB_OK)
			rc = db_migrate(db, 0, why, sizeof(why));
		if (rc != DB_OK)
			snprintf(err, errlen, "database %s: %s", location, why);
		sqlite3_close(db);
	}
	if (rc != DB_OK) {
		close(l->fd);
		free(l);
		return rc == DB_ERR_NEWER ? STORE_ERR_NEWER : STORE_ERR;
	}
	*lock = l;
	return STORE_OK;
}

int sqlite_store_begin(struct store *base, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	st->changes_at_begin = sqlite3_total_changes64(st->db);
	st->tx_defs_version = -1;
	return sql_run(st, sql_stmt(st, S_BEGIN), err, errlen, "begin transaction");
}

int sqlite_store_commit(struct store *base, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	int64_t rows;

	if (sql_run(st, sql_stmt(st, S_COMMIT), err, errlen, "commit") != 0) {
		sqlite_store_rollback(&st->base);
		return -1;
	}
	st->tx_defs_version = -1;
	rows = sqlite3_total_changes64(st->db) - st->changes_at_begin;
	if (rows > 0) {
		st->base.counters.commits++;
		st->base.counters.rows += rows;
	}
	return 0;
}

void sqlite_store_rollback(struct store *base)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	st->tx_defs_version = -1;
	if (sqlite3_get_autocommit(st->db))
		return;
	sqlite3_step(sql_stmt(st, S_ROLLBACK));
	sqlite3_reset(st->stmt[S_ROLLBACK]);
}

int sqlite_store_release_leases(struct store *base, int64_t now, int64_t max_wait_ms, char *err,
				size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s;

	assert(max_wait_ms >= 0);
	if (sqlite_store_begin(&st->base, err, errlen) != 0)
		return -1;
	if (sql_run(st, sql_stmt(st, S_RELEASE_OUTBOX), err, errlen, "release outbox leases") != 0)
		goto fail;
	s = sql_stmt(st, S_CLAMP_STATE);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, RETIRED_NEXT_EVAL);
	if (sql_run(st, s, err, errlen, "bring alert times back to now") != 0)
		goto fail;
	s = sql_stmt(st, S_CLAMP_OUTBOX);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, now + max_wait_ms);
	if (sql_run(st, s, err, errlen, "bring call times back to now") != 0)
		goto fail;
	return sqlite_store_commit(&st->base, err, errlen);
fail:
	sqlite_store_rollback(&st->base);
	return -1;
}

int sqlite_store_count_alerts(struct store *base, int64_t *active, int64_t *retired, char *err,
			      size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	if (sql_run_int64(st, sql_stmt(st, S_COUNT_ALERTS), 0, active, err, errlen,
			  "count alerts") != 0)
		return -1;
	if (retired == NULL)
		return 0;
	return sql_run_int64(st, sql_stmt(st, S_COUNT_RETIRED), 0, retired, err, errlen,
			     "count retired alerts");
}

int sqlite_store_count_pending(struct store *base, int64_t *n, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	return sql_run_int64(st, sql_stmt(st, S_COUNT_PENDING), 0, n, err, errlen,
			     "count pending calls");
}

int sqlite_store_prune(struct store *base, int64_t cutoff, int64_t max_rows, int64_t *deleted,
		       char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	static const enum stmt_id ids[] = {S_PRUNE_OUTBOX, S_PRUNE_TRANSITION, S_PRUNE_ALERTS};

	assert(max_rows > 0);
	*deleted = 0;
	if (sqlite_store_begin(&st->base, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		sqlite3_stmt *s = sql_stmt(st, ids[i]);

		sqlite3_bind_int64(s, 1, cutoff);
		if (ids[i] != S_PRUNE_ALERTS)
			sqlite3_bind_int64(s, 2, max_rows);
		if (sql_run(st, s, err, errlen, "prune") != 0) {
			sqlite_store_rollback(&st->base);
			return -1;
		}
		*deleted += sqlite3_changes64(st->db);
	}
	return sqlite_store_commit(&st->base, err, errlen);
}

int sqlite_store_shift_times(struct store *base, int64_t delta, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s;

	if (sqlite_store_begin(&st->base, err, errlen) != 0)
		return -1;
	s = sql_stmt(st, S_SHIFT_STATE);
	sqlite3_bind_int64(s, 1, delta);
	sqlite3_bind_int64(s, 2, RETIRED_NEXT_EVAL);
	if (sql_run(st, s, err, errlen, "shift alert times") != 0)
		goto fail;
	s = sql_stmt(st, S_SHIFT_OUTBOX);
	sqlite3_bind_int64(s, 1, delta);
	if (sql_run(st, s, err, errlen, "shift outbox times") != 0)
		goto fail;
	return sqlite_store_commit(&st->base, err, errlen);
fail:
	sqlite_store_rollback(&st->base);
	return -1;
}
