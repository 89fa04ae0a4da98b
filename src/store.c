#include "store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

/* next_eval of a retired alert: never due, and far from overflow when the
 * clock shifts. */
#define RETIRED_NEXT_EVAL (INT64_C(1) << 62)

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_RELEASE_ALERTS,
	S_RELEASE_OUTBOX,
	S_CLAMP_STATE,
	S_CLAMP_OUTBOX,
	S_COUNT_ALERTS,
	S_COUNT_RETIRED,
	S_DEF_BY_NAME,
	S_DEF_INSERT,
	S_STATE_INSERT,
	S_DEF_UPDATE,
	S_STATE_NEXT_MIN,
	S_REVIVE_ALERT,
	S_REVIVE_STATE,
	S_SEEN_CLEAR,
	S_SEEN_ADD,
	S_UNSEEN,
	S_RETIRE_ALERT,
	S_RETIRE_STATE,
	S_STATE_GET,
	S_DUE_IDS,
	S_NEXT_IDS,
	S_DEF_BY_ID,
	S_EVAL_OK,
	S_EVAL_FAILED,
	S_NOTIFY_PENDING,
	S_TRANSITION_ADD,
	S_OUTBOX_ADD,
	S_DROP_REPEATS,
	S_DROP_SUPERSEDED,
	S_CLAIM_CALLS,
	S_LEASE_CALL,
	S_NEXT_CALL,
	S_CALL_DELIVERED,
	S_LAST_NOTIFIED,
	S_CALL_FAILED,
	S_GAVE_UP_NOTIFY,
	S_CALL_RELEASE,
	S_RETRY_NOW,
	S_COUNT_PENDING,
	S_PRUNE_OUTBOX,
	S_PRUNE_TRANSITION,
	S_PRUNE_ALERTS,
	S_SHIFT_STATE,
	S_SHIFT_OUTBOX,
	S_COUNT
};

static const char *const sql_text[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_RELEASE_ALERTS] =
		"UPDATE alert_state SET lease_until = NULL, next_eval = min(next_eval, ?1) "
		"WHERE lease_until IS NOT NULL",
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
	[S_STATE_INSERT] = "INSERT INTO alert_state (alert_id, next_eval) VALUES (?1, ?2)",
	[S_DEF_UPDATE] =
		"UPDATE alert SET query = ?2, interval_ms = ?3, repeat_ms = ?4, sustain_ms = ?5, "
		"warn_value = ?6, warn_message = ?7, crit_value = ?8, crit_message = ?9, "
		"updated = max(?10, updated + 1) WHERE id = ?1",
	[S_STATE_NEXT_MIN] =
		"UPDATE alert_state SET next_eval = min(next_eval, ?2) WHERE alert_id = ?1",
	[S_REVIVE_ALERT] =
		"UPDATE alert SET retired = NULL, updated = max(?2, updated + 1) WHERE id = ?1",
	[S_REVIVE_STATE] =
		"UPDATE alert_state SET next_eval = ?2, lease_until = NULL, warn_since = NULL, "
		"crit_since = NULL, last_ok = NULL WHERE alert_id = ?1",
	[S_SEEN_CLEAR] = "DELETE FROM temp.sync_seen",
	[S_SEEN_ADD] = "INSERT OR IGNORE INTO temp.sync_seen (id) VALUES (?1)",
	[S_UNSEEN] =
		"SELECT a.id, a.name, s.state, s.last_value FROM alert a "
		"JOIN alert_state s ON s.alert_id = a.id "
		"WHERE a.retired IS NULL AND a.id NOT IN (SELECT id FROM temp.sync_seen)",
	[S_RETIRE_ALERT] =
		"UPDATE alert SET retired = ?2, updated = max(?2, updated + 1) WHERE id = ?1",
	[S_RETIRE_STATE] =
		"UPDATE alert_state SET state = 'PASS', warn_since = NULL, crit_since = NULL, "
		"next_eval = ?2, lease_until = NULL WHERE alert_id = ?1",
	[S_STATE_GET] =
		"SELECT s.state, s.warn_since, s.crit_since, s.last_ok, s.last_notified, a.retired, "
		"s.next_eval, a.updated, s.notify_gave_up "
		"FROM alert_state s JOIN alert a ON a.id = s.alert_id "
		"WHERE s.alert_id = ?1",
	/* From the index alone: the alerts' rows are read only for those
	 * picked. */
	[S_DUE_IDS] =
		"SELECT alert_id, next_eval FROM alert_state WHERE next_eval <= ?1 "
		"ORDER BY next_eval LIMIT ?2",
	[S_NEXT_IDS] = "SELECT alert_id, next_eval FROM alert_state ORDER BY next_eval LIMIT ?1",
	[S_DEF_BY_ID] =
		"SELECT name, query, interval_ms, repeat_ms, sustain_ms, warn_value, warn_message, "
		"crit_value, crit_message, updated FROM alert WHERE id = ?1",
	[S_EVAL_OK] =
		"UPDATE alert_state SET state = ?2, warn_since = ?3, crit_since = ?4, "
		"last_ok = ?5, last_eval = ?5, last_value = ?6, failures = 0, last_error = NULL, "
		"next_eval = ?7, lease_until = NULL WHERE alert_id = ?1",
	[S_EVAL_FAILED] =
		"UPDATE alert_state SET last_eval = ?2, failures = failures + 1, last_error = ?3, "
		"next_eval = ?4, lease_until = NULL WHERE alert_id = ?1",
	[S_NOTIFY_PENDING] =
		"SELECT EXISTS (SELECT 1 FROM outbox WHERE alert_id = ?1 AND status = 'pending' "
		"AND kind = 'notify')",
	[S_TRANSITION_ADD] =
		"INSERT INTO transition (alert_id, at, from_state, to_state, value) "
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
	[S_NEXT_CALL] =
		"SELECT min(o.next_attempt) FROM outbox o "
		"WHERE o.status = 'pending' AND o.lease_until IS NULL "
		"AND o.id = (SELECT min(p.id) FROM outbox p "
		"            WHERE p.alert_id = o.alert_id AND p.status = 'pending')",
	[S_CALL_DELIVERED] =
		"UPDATE outbox SET status = 'delivered', delivered = ?2, finished = ?2, "
		"attempts = attempts + 1, lease_until = NULL, lease_token = NULL "
		"WHERE id = ?1 AND lease_token = ?3",
	[S_LAST_NOTIFIED] = "UPDATE alert_state SET last_notified = ?2 WHERE alert_id = ?1",
	/* ?1 id, ?2 lease token, ?3 failed at, ?4 next attempt, ?5 error, ?6
	 * give up now, ?7 give-up age, ?8 maybe sent. The age is measured
	 * here, against `created` as stored: both are in the timebase of the
	 * schedules, which a clock jump moves together. */
	[S_CALL_FAILED] =
		"UPDATE outbox SET attempts = attempts + 1, next_attempt = ?4, last_error = ?5, "
		"lease_until = NULL, lease_token = NULL, "
		"is_repeat = CASE WHEN ?8 THEN 0 ELSE is_repeat END, "
		"status = CASE WHEN ?6 OR ?3 - created >= ?7 THEN 'dead' ELSE 'pending' END, "
		"finished = CASE WHEN ?6 OR ?3 - created >= ?7 THEN ?3 END "
		"WHERE id = ?1 AND lease_token = ?2 RETURNING status",
	[S_GAVE_UP_NOTIFY] = "UPDATE alert_state SET notify_gave_up = ?2 WHERE alert_id = ?1",
	[S_CALL_RELEASE] =
		"UPDATE outbox SET lease_until = NULL, lease_token = NULL, "
		"is_repeat = CASE WHEN ?3 THEN 0 ELSE is_repeat END "
		"WHERE id = ?1 AND lease_token = ?2",
	[S_RETRY_NOW] =
		"UPDATE outbox SET next_attempt = ?1 WHERE status = 'pending' AND next_attempt > ?1 "
		"AND attempts > 0 AND lease_until IS NULL",
	[S_COUNT_PENDING] = "SELECT count(*) FROM outbox WHERE status = 'pending'",
	/* Through the indexes on finished and at, at most ?2 rows a time. */
	[S_PRUNE_OUTBOX] =
		"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
		"WHERE status <> 'pending' AND finished < ?1 LIMIT ?2)",
	[S_PRUNE_TRANSITION] =
		"DELETE FROM transition WHERE id IN (SELECT id FROM transition WHERE at < ?1 "
		"LIMIT ?2)",
	[S_PRUNE_ALERTS] =
		"DELETE FROM alert WHERE retired IS NOT NULL AND retired < ?1 "
		"AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = alert.id "
		"AND o.status = 'pending')",
	[S_SHIFT_STATE] =
		"UPDATE alert_state SET "
		"next_eval = CASE WHEN next_eval < ?2 THEN next_eval + ?1 ELSE next_eval END, "
		"last_notified = last_notified + ?1, last_ok = last_ok + ?1, "
		"warn_since = warn_since + ?1, crit_since = crit_since + ?1, "
		"notify_gave_up = notify_gave_up + ?1, lease_until = lease_until + ?1",
	/* created too: a call's age decides when it is given up. */
	[S_SHIFT_OUTBOX] =
		"UPDATE outbox SET next_attempt = next_attempt + ?1, lease_until = lease_until + ?1, "
		"created = created + ?1 WHERE status = 'pending'",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	int64_t changes_at_begin;  /* sqlite3_total_changes64 at BEGIN */
	struct store_counters counters;
};

static int fail(struct store *st, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

/* Resets and clears bindings; returns the statement ready to bind. */
static sqlite3_stmt *stmt(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static void bind_time(sqlite3_stmt *s, int i, int64_t t)
{
	if (t == RULES_NEVER)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, t);
}

static int64_t column_time(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return RULES_NEVER;
	return sqlite3_column_int64(s, i);
}

/* Copies a text column; "" for NULL. NULL when out of memory. */
static char *column_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return strdup(t ? (const char *)t : "");
}

/* Reads a definition from the nine columns name, query, interval_ms,
 * repeat_ms, sustain_ms, warn_value, warn_message, crit_value,
 * crit_message starting at column first. Its strings are owned by *def
 * (also on failure: clear it). -1 with "<what>: ..." in err when out of
 * memory or the stored interval is not positive. */
static int column_def(sqlite3_stmt *s, int first, struct alert_def *def, const char *what,
		      char *err, size_t errlen)
{
	def->name = column_strdup(s, first);
	def->query = column_strdup(s, first + 1);
	def->interval_ms = sqlite3_column_int64(s, first + 2);
	def->repeat_ms = sqlite3_column_int64(s, first + 3);
	def->sustain_ms = sqlite3_column_int64(s, first + 4);
	def->warn_value = sqlite3_column_double(s, first + 5);
	def->warn_message = column_strdup(s, first + 6);
	def->crit_value = sqlite3_column_double(s, first + 7);
	def->crit_message = column_strdup(s, first + 8);
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

/* Runs a statement that returns no row. */
static int run(struct store *st, sqlite3_stmt *s, char *err, size_t errlen, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE) {
		fail(st, err, errlen, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/* Runs a statement that returns one integer (NULL -> if_null). */
static int run_int64(struct store *st, sqlite3_stmt *s, int64_t if_null, int64_t *out,
		     char *err, size_t errlen, const char *what)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_ROW) {
		fail(st, err, errlen, what);
		sqlite3_reset(s);
		return -1;
	}
	*out = sqlite3_column_type(s, 0) == SQLITE_NULL ? if_null : sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

int store_open(const char *path, int sync_full, struct store **out, char *err, size_t errlen)
{
	struct store *st = NULL;
	int ret = -1;

	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "open store: out of memory");
		goto out;
	}
	if (db_open(path, sync_full, &st->db, err, errlen) != DB_OK)
		goto out;
	if (sqlite3_exec(st->db, "CREATE TEMP TABLE IF NOT EXISTS sync_seen (id INTEGER PRIMARY KEY)",
			 NULL, NULL, NULL) != SQLITE_OK) {
		fail(st, err, errlen, "open store: temp table");
		goto out;
	}
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "prepare statement %d: %s", i, sqlite3_errmsg(st->db));
			goto out;
		}
	}
	*out = st;
	st = NULL;
	ret = 0;
out:
	store_close(st);
	return ret;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st);
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

void store_counters(const struct store *st, struct store_counters *out)
{
	*out = st->counters;
}

int store_begin(struct store *st, char *err, size_t errlen)
{
	st->changes_at_begin = sqlite3_total_changes64(st->db);
	return run(st, stmt(st, S_BEGIN), err, errlen, "begin transaction");
}

int store_commit(struct store *st, char *err, size_t errlen)
{
	int64_t rows;

	if (run(st, stmt(st, S_COMMIT), err, errlen, "commit") != 0) {
		store_rollback(st);
		return -1;
	}
	rows = sqlite3_total_changes64(st->db) - st->changes_at_begin;
	if (rows > 0) {
		st->counters.commits++;
		st->counters.rows += rows;
	}
	return 0;
}

void store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return;
	sqlite3_step(stmt(st, S_ROLLBACK));
	sqlite3_reset(st->stmt[S_ROLLBACK]);
}

int store_release_leases(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
			 size_t errlen)
{
	sqlite3_stmt *s;

	assert(max_wait_ms >= 0);
	if (store_begin(st, err, errlen) != 0)
		return -1;
	s = stmt(st, S_RELEASE_ALERTS);
	sqlite3_bind_int64(s, 1, now);
	if (run(st, s, err, errlen, "release alert leases") != 0 ||
	    run(st, stmt(st, S_RELEASE_OUTBOX), err, errlen, "release outbox leases") != 0)
		goto fail;
	s = stmt(st, S_CLAMP_STATE);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, RETIRED_NEXT_EVAL);
	if (run(st, s, err, errlen, "bring alert times back to now") != 0)
		goto fail;
	s = stmt(st, S_CLAMP_OUTBOX);
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, now + max_wait_ms);
	if (run(st, s, err, errlen, "bring call times back to now") != 0)
		goto fail;
	return store_commit(st, err, errlen);
fail:
	store_rollback(st);
	return -1;
}

int store_count_alerts(struct store *st, int64_t *active, int64_t *retired, char *err,
		       size_t errlen)
{
	if (run_int64(st, stmt(st, S_COUNT_ALERTS), 0, active, err, errlen, "count alerts") != 0)
		return -1;
	if (retired == NULL)
		return 0;
	return run_int64(st, stmt(st, S_COUNT_RETIRED), 0, retired, err, errlen,
			 "count retired alerts");
}

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

/* In a transaction: inserts or updates one definition. */
static int sync_one(struct store *st, const struct alert_def *d, int64_t now, int due_now,
		    struct store_sync_stats *stats, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_DEF_BY_NAME);
	int64_t id;
	int64_t first = due_now ? now : rules_first_eval(d->name, d->interval_ms, now);
	int rc;
	int same, retired;

	sqlite3_bind_text(s, 1, d->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		s = stmt(st, S_DEF_INSERT);
		sqlite3_bind_text(s, 1, d->name, -1, SQLITE_STATIC);
		bind_def(s, d, now);
		if (run(st, s, err, errlen, "insert alert") != 0)
			return -1;
		id = sqlite3_last_insert_rowid(st->db);
		s = stmt(st, S_STATE_INSERT);
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, first);
		if (run(st, s, err, errlen, "insert alert state") != 0)
			return -1;
		stats->added++;
		goto seen;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return fail(st, err, errlen, "read alert");
	}
	id = sqlite3_column_int64(s, 0);
	same = def_same(s, d);
	retired = sqlite3_column_type(s, 9) != SQLITE_NULL;
	sqlite3_reset(s);
	if (!same) {
		s = stmt(st, S_DEF_UPDATE);
		sqlite3_bind_int64(s, 1, id);
		bind_def(s, d, now);
		if (run(st, s, err, errlen, "update alert") != 0)
			return -1;
		/* A shorter interval takes effect at once, not after the old one. */
		s = stmt(st, S_STATE_NEXT_MIN);
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, now + d->interval_ms);
		if (run(st, s, err, errlen, "update alert schedule") != 0)
			return -1;
	}
	if (retired) {
		s = stmt(st, S_REVIVE_ALERT);
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, now);
		if (run(st, s, err, errlen, "revive alert") != 0)
			return -1;
		s = stmt(st, S_REVIVE_STATE);
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, first);
		if (run(st, s, err, errlen, "revive alert state") != 0)
			return -1;
		stats->revived++;
	} else if (same) {
		stats->unchanged++;
	} else {
		stats->changed++;
	}
seen:
	s = stmt(st, S_SEEN_ADD);
	sqlite3_bind_int64(s, 1, id);
	return run(st, s, err, errlen, "mark alert seen");
}

/* In a transaction: retires every active alert not marked seen. */
static int retire_unseen(struct store *st, int64_t now, struct store_sync_stats *stats,
			 char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_UNSEEN);
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
		fail(st, err, errlen, "find retired alerts");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i].state != LEVEL_PASS) {
			if (store_outbox_add(st, v[i].id, STORE_RESOLVE, NULL, now, err, errlen) != 0 ||
			    store_transition_add(st, v[i].id, now, v[i].state, LEVEL_PASS, v[i].value,
						 err, errlen) != 0)
				goto out;
		}
		s = stmt(st, S_RETIRE_ALERT);
		sqlite3_bind_int64(s, 1, v[i].id);
		sqlite3_bind_int64(s, 2, now);
		if (run(st, s, err, errlen, "retire alert") != 0)
			goto out;
		s = stmt(st, S_RETIRE_STATE);
		sqlite3_bind_int64(s, 1, v[i].id);
		sqlite3_bind_int64(s, 2, RETIRED_NEXT_EVAL);
		if (run(st, s, err, errlen, "retire alert state") != 0)
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
static int keep_one(struct store *st, const char *name, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_DEF_BY_NAME);
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
		return fail(st, err, errlen, "read alert");
	}
	id = sqlite3_column_int64(s, 0);
	rc = sqlite3_column_type(s, 9) != SQLITE_NULL; /* retired */
	sqlite3_reset(s);
	if (rc)
		return 0;
	s = stmt(st, S_SEEN_ADD);
	sqlite3_bind_int64(s, 1, id);
	return run(st, s, err, errlen, "mark alert seen");
}

int store_sync_defs(struct store *st, const struct alert_def *defs, size_t n,
		    const char *const *keep, size_t nkeep, int64_t now,
		    int due_now, struct store_sync_stats *stats, char *err, size_t errlen)
{
	memset(stats, 0, sizeof(*stats));
	if (store_begin(st, err, errlen) != 0)
		return -1;
	if (run(st, stmt(st, S_SEEN_CLEAR), err, errlen, "sync alerts") != 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (sync_one(st, &defs[i], now, due_now, stats, err, errlen) != 0)
			goto fail;
	for (size_t i = 0; i < nkeep; i++)
		if (keep_one(st, keep[i], err, errlen) != 0)
			goto fail;
	if (retire_unseen(st, now, stats, err, errlen) != 0)
		goto fail;
	if (run(st, stmt(st, S_SEEN_CLEAR), err, errlen, "sync alerts") != 0)
		goto fail;
	return store_commit(st, err, errlen);
fail:
	store_rollback(st);
	return -1;
}

void store_due_clear(struct store_due *due)
{
	alert_def_clear(&due->def);
	memset(due, 0, sizeof(*due));
}

int store_pick_due(struct store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
		   void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
		   char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_DUE_IDS);
	size_t k = 0;
	int rc = SQLITE_DONE;

	*n = 0;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(max + in_flight));
	while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);

		if (skip != NULL && skip(id, arg))
			continue;
		memset(&out[k], 0, sizeof(out[k]));
		out[k].alert_id = id;
		k++;
	}
	sqlite3_reset(s);
	if (k < max && rc != SQLITE_DONE) {
		fail(st, err, errlen, "pick due alerts");
		return -1;
	}
	for (size_t i = 0; i < k; i++) {
		struct store_due *d = &out[i];

		s = stmt(st, S_DEF_BY_ID);
		sqlite3_bind_int64(s, 1, d->alert_id);
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW) {
			if (rc == SQLITE_DONE)
				snprintf(err, errlen, "pick due alerts: alert %lld has no definition",
					 (long long)d->alert_id);
			else
				fail(st, err, errlen, "pick due alerts");
			sqlite3_reset(s);
			goto fail;
		}
		rc = column_def(s, 0, &d->def, "pick due alerts", err, errlen);
		d->version = sqlite3_column_int64(s, 9);
		sqlite3_reset(s);
		if (rc != 0)
			goto fail;
	}
	*n = k;
	return 0;
fail:
	for (size_t i = 0; i < k; i++)
		store_due_clear(&out[i]);
	return -1;
}

int store_next_pick(struct store *st, int (*skip)(int64_t alert_id, void *arg), void *arg,
		    size_t in_flight, int64_t *at, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_NEXT_IDS);
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
		return fail(st, err, errlen, "next due");
	if (*at >= RETIRED_NEXT_EVAL)
		*at = INT64_MAX;
	return 0;
}

int store_eval_get(struct store *st, const struct store_due *due, struct rules_state *out,
		   int64_t *next_eval, enum store_eval_check *check, char *err, size_t errlen)
{
	int64_t alert_id = due->alert_id;
	int64_t gave_up;
	sqlite3_stmt *s = stmt(st, S_STATE_GET);
	int64_t pending = 0;
	int rc;

	sqlite3_bind_int64(s, 1, alert_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			snprintf(err, errlen, "read alert state %lld: no such alert",
				 (long long)alert_id);
		else
			fail(st, err, errlen, "read alert state");
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
	out->warn_since = column_time(s, 1);
	out->crit_since = column_time(s, 2);
	out->last_ok = column_time(s, 3);
	out->last_notified = column_time(s, 4);
	*next_eval = sqlite3_column_int64(s, 6);
	if (sqlite3_column_type(s, 5) != SQLITE_NULL)
		*check = STORE_EVAL_RETIRED;
	else if (sqlite3_column_int64(s, 7) != due->version)
		*check = STORE_EVAL_CHANGED;
	else
		*check = STORE_EVAL_CURRENT;
	/* A notify given up holds the next repeat back as a delivered one
	 * does: the rules see the later of the two. */
	gave_up = column_time(s, 8);
	if (gave_up > out->last_notified)
		out->last_notified = gave_up;
	sqlite3_reset(s);
	/* Only a firing alert's rules look at it (no repeat while a notify
	 * waits); most alerts pass most of the time. */
	if (out->state == LEVEL_PASS)
		return 0;
	s = stmt(st, S_NOTIFY_PENDING);
	sqlite3_bind_int64(s, 1, alert_id);
	if (run_int64(st, s, 0, &pending, err, errlen, "read pending notify") != 0)
		return -1;
	out->notify_pending = pending != 0;
	return 0;
}

int store_eval_put_ok(struct store *st, int64_t alert_id, const struct rules_state *r,
		      double value, int64_t at, int64_t next_eval, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_EVAL_OK);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_text(s, 2, rules_level_name(r->state), -1, SQLITE_STATIC);
	bind_time(s, 3, r->warn_since);
	bind_time(s, 4, r->crit_since);
	sqlite3_bind_int64(s, 5, at);
	sqlite3_bind_double(s, 6, value);
	sqlite3_bind_int64(s, 7, next_eval);
	return run(st, s, err, errlen, "write alert state");
}

int store_eval_put_failed(struct store *st, int64_t alert_id, int64_t at, const char *error,
			  int64_t next_eval, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_EVAL_FAILED);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, next_eval);
	return run(st, s, err, errlen, "write alert failure");
}

int store_transition_add(struct store *st, int64_t alert_id, int64_t at, enum rules_level from,
			 enum rules_level to, double value, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_TRANSITION_ADD);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_text(s, 3, rules_level_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, rules_level_name(to), -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, value);
	return run(st, s, err, errlen, "write transition");
}

static int outbox_insert(struct store *st, int64_t alert_id, enum store_kind kind,
			 const char *message, int repeat, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_OUTBOX_ADD);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_text(s, 2, kind == STORE_NOTIFY ? "notify" : "resolve", -1, SQLITE_STATIC);
	if (message)
		sqlite3_bind_text(s, 3, message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int(s, 5, repeat);
	return run(st, s, err, errlen, "enqueue call");
}

int store_outbox_add(struct store *st, int64_t alert_id, enum store_kind kind,
		     const char *message, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_DROP_REPEATS);

	sqlite3_bind_int64(s, 1, alert_id);
	if (run(st, s, err, errlen, "drop repeats") != 0)
		return -1;
	return outbox_insert(st, alert_id, kind, message, 0, now, err, errlen);
}

int store_outbox_add_repeat(struct store *st, int64_t alert_id, const char *message,
			    int64_t now, char *err, size_t errlen)
{
	assert(message != NULL);
	return outbox_insert(st, alert_id, STORE_NOTIFY, message, 1, now, err, errlen);
}

void store_call_clear(struct store_call *call)
{
	free(call->name);
	free(call->message);
	memset(call, 0, sizeof(*call));
}

int store_claim_calls(struct store *st, int64_t now, int64_t not_after, int64_t lease_ms,
		      int64_t token, struct store_call *out, size_t max, size_t *n, char *err,
		      size_t errlen)
{
	sqlite3_stmt *s;
	size_t k = 0;
	int rc = SQLITE_DONE;

	*n = 0;
	if (store_begin(st, err, errlen) != 0)
		return -1;
	s = stmt(st, S_CLAIM_CALLS);
	sqlite3_bind_int64(s, 1, not_after);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_call *c = &out[k];
		const unsigned char *kind = sqlite3_column_text(s, 2);

		memset(c, 0, sizeof(*c));
		c->id = sqlite3_column_int64(s, 0);
		c->alert_id = sqlite3_column_int64(s, 1);
		c->kind = kind && strcmp((const char *)kind, "notify") == 0 ? STORE_NOTIFY
									   : STORE_RESOLVE;
		c->name = column_strdup(s, 3);
		if (c->kind == STORE_NOTIFY)
			c->message = column_strdup(s, 4);
		c->attempts = sqlite3_column_int(s, 5);
		c->created = sqlite3_column_int64(s, 6);
		c->repeat = sqlite3_column_int(s, 7) != 0;
		c->lease_token = token;
		k++;
		if (!c->name || (c->kind == STORE_NOTIFY && !c->message)) {
			snprintf(err, errlen, "claim calls: out of memory");
			goto fail;
		}
	}
	sqlite3_reset(s);
	if (k < max && rc != SQLITE_DONE) {
		fail(st, err, errlen, "claim calls");
		goto fail;
	}
	for (size_t i = 0; i < k; i++) {
		s = stmt(st, S_LEASE_CALL);
		sqlite3_bind_int64(s, 1, out[i].id);
		sqlite3_bind_int64(s, 2, now + lease_ms);
		sqlite3_bind_int64(s, 3, token);
		if (run(st, s, err, errlen, "lease call") != 0)
			goto fail;
	}
	if (store_commit(st, err, errlen) != 0)
		goto fail;
	*n = k;
	return 0;
fail:
	sqlite3_reset(st->stmt[S_CLAIM_CALLS]);
	store_rollback(st);
	for (size_t i = 0; i < k; i++)
		store_call_clear(&out[i]);
	return -1;
}

int store_call_drop_superseded(struct store *st, const struct store_call *call, int *dropped,
			       char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_DROP_SUPERSEDED);

	*dropped = 0;
	if (!call->repeat)
		return 0;
	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, call->lease_token);
	if (run(st, s, err, errlen, "drop superseded repeat") != 0)
		return -1;
	*dropped = sqlite3_changes(st->db) > 0;
	return 0;
}

int store_next_call(struct store *st, int64_t *at, char *err, size_t errlen)
{
	return run_int64(st, stmt(st, S_NEXT_CALL), INT64_MAX, at, err, errlen, "next call");
}

int store_call_delivered(struct store *st, const struct store_call *call, int64_t at,
			 enum store_outcome *outcome, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_CALL_DELIVERED);

	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_int64(s, 3, call->lease_token);
	if (run(st, s, err, errlen, "mark call delivered") != 0)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		*outcome = STORE_CALL_LOST;
		return 0;
	}
	*outcome = STORE_CALL_DELIVERED;
	if (call->kind != STORE_NOTIFY)
		return 0;
	s = stmt(st, S_LAST_NOTIFIED);
	sqlite3_bind_int64(s, 1, call->alert_id);
	sqlite3_bind_int64(s, 2, at);
	return run(st, s, err, errlen, "write last notified");
}

int store_call_failed(struct store *st, const struct store_call *call,
		      const struct store_failure *f, enum store_outcome *outcome, char *err,
		      size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_CALL_FAILED);
	const unsigned char *status;
	int rc;

	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, call->lease_token);
	sqlite3_bind_int64(s, 3, f->at);
	sqlite3_bind_int64(s, 4, f->next_attempt);
	sqlite3_bind_text(s, 5, f->error, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, f->rejected != 0);
	sqlite3_bind_int64(s, 7, f->give_up_ms);
	sqlite3_bind_int(s, 8, f->maybe_sent != 0);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		*outcome = STORE_CALL_LOST;
		return 0;
	}
	if (rc != SQLITE_ROW) {
		fail(st, err, errlen, "mark call failed");
		sqlite3_reset(s);
		return -1;
	}
	status = sqlite3_column_text(s, 0);
	*outcome = status && strcmp((const char *)status, "dead") == 0 ? STORE_CALL_DEAD
								      : STORE_CALL_WAITS;
	/* RETURNING rows are all computed at the first step; this one ends it. */
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fail(st, err, errlen, "mark call failed");
	if (*outcome != STORE_CALL_DEAD || call->kind != STORE_NOTIFY)
		return 0;
	s = stmt(st, S_GAVE_UP_NOTIFY);
	sqlite3_bind_int64(s, 1, call->alert_id);
	sqlite3_bind_int64(s, 2, f->at);
	return run(st, s, err, errlen, "write notify given up");
}

int store_call_release(struct store *st, const struct store_call *call, int maybe_sent,
		       char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_CALL_RELEASE);

	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, call->lease_token);
	sqlite3_bind_int(s, 3, maybe_sent != 0);
	return run(st, s, err, errlen, "release call");
}

int store_calls_retry_now(struct store *st, int64_t at, int64_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *s = stmt(st, S_RETRY_NOW);

	sqlite3_bind_int64(s, 1, at);
	if (run(st, s, err, errlen, "retry calls now") != 0)
		return -1;
	*n = sqlite3_changes64(st->db);
	return 0;
}

int store_count_pending(struct store *st, int64_t *n, char *err, size_t errlen)
{
	return run_int64(st, stmt(st, S_COUNT_PENDING), 0, n, err, errlen, "count pending calls");
}

int store_prune(struct store *st, int64_t cutoff, int64_t max_rows, int64_t *deleted,
		char *err, size_t errlen)
{
	static const enum stmt_id ids[] = {S_PRUNE_OUTBOX, S_PRUNE_TRANSITION, S_PRUNE_ALERTS};

	assert(max_rows > 0);
	*deleted = 0;
	if (store_begin(st, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		sqlite3_stmt *s = stmt(st, ids[i]);

		sqlite3_bind_int64(s, 1, cutoff);
		if (ids[i] != S_PRUNE_ALERTS)
			sqlite3_bind_int64(s, 2, max_rows);
		if (run(st, s, err, errlen, "prune") != 0) {
			store_rollback(st);
			return -1;
		}
		*deleted += sqlite3_changes64(st->db);
	}
	return store_commit(st, err, errlen);
}

int store_shift_times(struct store *st, int64_t delta, char *err, size_t errlen)
{
	sqlite3_stmt *s;

	if (store_begin(st, err, errlen) != 0)
		return -1;
	s = stmt(st, S_SHIFT_STATE);
	sqlite3_bind_int64(s, 1, delta);
	sqlite3_bind_int64(s, 2, RETIRED_NEXT_EVAL);
	if (run(st, s, err, errlen, "shift alert times") != 0)
		goto fail;
	s = stmt(st, S_SHIFT_OUTBOX);
	sqlite3_bind_int64(s, 1, delta);
	if (run(st, s, err, errlen, "shift outbox times") != 0)
		goto fail;
	return store_commit(st, err, errlen);
fail:
	store_rollback(st);
	return -1;
}
