#include "store_pg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same statements as SQLite's (store_sqlite.c says why each is as it
 * is), in PostgreSQL's dialect: $n parameters, CASE where SQLite's
 * two-argument min() keeps a NULL that least() would not. */
static const char *const sql_text[P_COUNT] = {
	/* Other engines may be delivering: only the calls of shards no
	 * engine holds are let go. */
	[P_RELEASE_OUTBOX] =
		"UPDATE outbox SET lease_until = NULL, lease_token = NULL, is_repeat = 0 "
		"WHERE lease_until IS NOT NULL AND alert_id IN (SELECT a.id FROM alert a "
		"JOIN shard sh ON sh.id = a.shard "
		"WHERE sh.owner IS NULL OR sh.lease_until IS NULL OR sh.lease_until <= now())",
	/* $1 now, $2 PG_RETIRED_NEXT_EVAL. */
	[P_CLAMP_STATE] =
		"UPDATE alert_state s SET "
		"next_eval = CASE WHEN s.next_eval < $2::bigint AND s.next_eval > $1::bigint + "
		"  a.interval_ms THEN $1::bigint + (s.next_eval - $1::bigint) % a.interval_ms "
		"  ELSE s.next_eval END, "
		"last_notified = CASE WHEN last_notified > $1 THEN $1 ELSE last_notified END, "
		"last_ok = CASE WHEN last_ok > $1 THEN $1 ELSE last_ok END, "
		"last_eval = CASE WHEN last_eval > $1 THEN $1 ELSE last_eval END, "
		"warn_since = CASE WHEN warn_since > $1 THEN $1 ELSE warn_since END, "
		"crit_since = CASE WHEN crit_since > $1 THEN $1 ELSE crit_since END, "
		"notify_gave_up = CASE WHEN notify_gave_up > $1 THEN $1 ELSE notify_gave_up END "
		"FROM alert a WHERE a.id = s.alert_id AND ("
		"(s.next_eval < $2::bigint AND s.next_eval > $1::bigint + a.interval_ms) "
		"OR last_notified > $1 OR last_ok > $1 OR last_eval > $1 OR warn_since > $1 "
		"OR crit_since > $1 OR notify_gave_up > $1)",
	/* $1 now, $2 now + the longest wait between attempts. */
	[P_CLAMP_OUTBOX] =
		"UPDATE outbox SET next_attempt = least(next_attempt, $2::bigint), "
		"created = least(created, $1::bigint) "
		"WHERE status = 'pending' AND (next_attempt > $2::bigint OR created > $1::bigint)",
	[P_COUNT_ALERTS] = "SELECT count(*) FROM alert WHERE retired IS NULL",
	[P_COUNT_RETIRED] = "SELECT count(*) FROM alert WHERE retired IS NOT NULL",
	/* Engines that sync at once take turns (DESIGN.md 7); the key is
	 * 'aesy' in ASCII. */
	[P_SYNC_LOCK] = "SELECT pg_advisory_xact_lock(1634038137)",
	[P_DEFS_BUMP] = "UPDATE definitions SET version = version + 1",
	[P_DEF_BY_NAME] =
		"SELECT id, query, interval_ms, repeat_ms, sustain_ms, warn_value, warn_message, "
		"crit_value, crit_message, retired FROM alert WHERE name = $1",
	/* $11 the shard. */
	[P_DEF_INSERT] =
		"INSERT INTO alert (name, query, interval_ms, repeat_ms, sustain_ms, warn_value, "
		"warn_message, crit_value, crit_message, created, updated, shard) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id",
	[P_STATE_INSERT] = "INSERT INTO alert_state (alert_id, next_eval) VALUES ($1, $2)",
	[P_DEF_UPDATE] =
		"UPDATE alert SET query = $2, interval_ms = $3, repeat_ms = $4, sustain_ms = $5, "
		"warn_value = $6, warn_message = $7, crit_value = $8, crit_message = $9, "
		"updated = greatest($10::bigint, updated + 1) WHERE id = $1",
	[P_STATE_NEXT_MIN] =
		"UPDATE alert_state SET next_eval = least(next_eval, $2::bigint) WHERE alert_id = $1",
	[P_REVIVE_ALERT] = "UPDATE alert SET retired = NULL, updated = greatest($2::bigint, "
			   "updated + 1) WHERE id = $1",
	[P_REVIVE_STATE] = "UPDATE alert_state SET next_eval = $2, warn_since = NULL, "
			   "crit_since = NULL, last_ok = NULL WHERE alert_id = $1",
	/* $1 the ids seen, as an array. */
	[P_UNSEEN] = "SELECT a.id, s.state, s.last_value FROM alert a "
		     "JOIN alert_state s ON s.alert_id = a.id "
		     "WHERE a.retired IS NULL AND NOT (a.id = ANY ($1::bigint[]))",
	[P_RETIRE_ALERT] = "UPDATE alert SET retired = $2, updated = greatest($2::bigint, "
			   "updated + 1) WHERE id = $1",
	[P_RETIRE_STATE] =
		"UPDATE alert_state SET state = 'PASS', warn_since = NULL, crit_since = NULL, "
		"next_eval = $2 WHERE alert_id = $1",
	[P_STATE_GET] =
		"SELECT s.state, s.warn_since, s.crit_since, s.last_ok, s.last_notified, a.retired, "
		"s.next_eval, a.updated, s.notify_gave_up "
		"FROM alert_state s JOIN alert a ON a.id = s.alert_id "
		"WHERE s.alert_id = $1",
	/* The due alerts with their definitions and the version of the
	 * definitions in one statement: one snapshot, no transaction. */
	[P_DUE] = "SELECT s.alert_id, a.name, a.query, a.interval_ms, a.repeat_ms, a.sustain_ms, "
		  "a.warn_value, a.warn_message, a.crit_value, a.crit_message, a.updated, "
		  "s.next_eval, (SELECT version FROM definitions) "
		  "FROM alert_state s JOIN alert a ON a.id = s.alert_id "
		  "WHERE s.next_eval <= $1 AND ($3::int[] IS NULL OR a.shard = ANY ($3::int[])) "
		  "ORDER BY s.next_eval LIMIT $2",
	/* $2 the shards (store_limit_shards), NULL: all; so in the others. */
	[P_NEXT_IDS] = "SELECT s.alert_id, s.next_eval FROM alert_state s "
		       "JOIN alert a ON a.id = s.alert_id "
		       "WHERE $2::int[] IS NULL OR a.shard = ANY ($2::int[]) "
		       "ORDER BY s.next_eval LIMIT $1",
	[P_EVAL_OK] =
		"UPDATE alert_state SET state = $2, warn_since = $3, crit_since = $4, "
		"last_ok = $5, last_eval = $5, last_value = $6, failures = 0, last_error = NULL, "
		"next_eval = $7 WHERE alert_id = $1",
	/* $1 id, $2 at, $3 value, $4 interval, $5 the picked version. */
	[P_EVAL_STAYS_PASS] =
		"UPDATE alert_state SET warn_since = NULL, crit_since = NULL, last_ok = $2, "
		"last_eval = $2, last_value = $3, failures = 0, last_error = NULL, "
		"next_eval = CASE WHEN next_eval + $4::bigint > $2::bigint "
		"  THEN next_eval + $4::bigint ELSE $2::bigint + $4::bigint END "
		"WHERE alert_id = $1 AND state = 'PASS' "
		"AND (SELECT updated FROM alert WHERE id = $1 AND retired IS NULL) = $5",
	/* The same for a batch: $1..$5 arrays of alert ids, times, values,
	 * intervals and versions; the rows written come back. */
	[P_EVALS_STAY_PASS] =
		"UPDATE alert_state s SET warn_since = NULL, crit_since = NULL, last_ok = v.at, "
		"last_eval = v.at, last_value = v.value, failures = 0, last_error = NULL, "
		"next_eval = CASE WHEN s.next_eval + v.iv > v.at "
		"  THEN s.next_eval + v.iv ELSE v.at + v.iv END "
		"FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::bigint[], $5::bigint[]) "
		"  AS v(id, at, value, iv, version) "
		"WHERE s.alert_id = v.id AND s.state = 'PASS' "
		"AND (SELECT updated FROM alert WHERE id = v.id AND retired IS NULL) = v.version "
		"RETURNING s.alert_id",
	[P_EVAL_FAILED] =
		"UPDATE alert_state SET last_eval = $2, failures = failures + 1, last_error = $3, "
		"next_eval = $4 WHERE alert_id = $1",
	[P_NOTIFY_PENDING] =
		"SELECT EXISTS (SELECT 1 FROM outbox WHERE alert_id = $1 AND status = 'pending' "
		"AND kind = 'notify')::integer",
	[P_TRANSITION_ADD] = "INSERT INTO transition (alert_id, at, from_state, to_state, value) "
			     "VALUES ($1, $2, $3, $4, $5)",
	[P_OUTBOX_ADD] =
		"INSERT INTO outbox (alert_id, kind, message, created, next_attempt, is_repeat) "
		"VALUES ($1, $2, $3, $4, $4, $5)",
	[P_DROP_REPEATS] =
		"DELETE FROM outbox WHERE alert_id = $1 AND status = 'pending' AND is_repeat = 1 "
		"AND lease_until IS NULL",
	[P_DROP_SUPERSEDED] =
		"DELETE FROM outbox WHERE id = $1 AND lease_token = $2 AND status = 'pending' "
		"AND is_repeat = 1 "
		"AND EXISTS (SELECT 1 FROM outbox n WHERE n.alert_id = outbox.alert_id "
		"AND n.id > outbox.id AND n.is_repeat = 0)",
	/* The heads of the queues; a row another claim holds locked is
	 * skipped (it is being leased), not waited for. */
	[P_CLAIM_CALLS] =
		"SELECT o.id, o.alert_id, o.kind, a.name, o.message, o.attempts, o.created, "
		"o.is_repeat "
		"FROM outbox o JOIN alert a ON a.id = o.alert_id "
		"WHERE o.status = 'pending' AND o.next_attempt <= $1 "
		"AND (o.lease_until IS NULL OR o.lease_until < $2) "
		"AND ($4::int[] IS NULL OR a.shard = ANY ($4::int[])) "
		"AND o.id = (SELECT min(p.id) FROM outbox p "
		"            WHERE p.alert_id = o.alert_id AND p.status = 'pending') "
		"ORDER BY o.next_attempt, o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED",
	[P_LEASE_CALL] = "UPDATE outbox SET lease_until = $2, lease_token = $3 WHERE id = $1",
	[P_NEXT_CALL] =
		"SELECT min(o.next_attempt) FROM outbox o JOIN alert a ON a.id = o.alert_id "
		"WHERE o.status = 'pending' AND o.lease_until IS NULL "
		"AND ($1::int[] IS NULL OR a.shard = ANY ($1::int[])) "
		"AND o.id = (SELECT min(p.id) FROM outbox p "
		"            WHERE p.alert_id = o.alert_id AND p.status = 'pending')",
	[P_CALL_DELIVERED] =
		"UPDATE outbox SET status = 'delivered', delivered = $2, finished = $2, "
		"attempts = attempts + 1, lease_until = NULL, lease_token = NULL "
		"WHERE id = $1 AND lease_token = $3",
	[P_LAST_NOTIFIED] = "UPDATE alert_state SET last_notified = $2 WHERE alert_id = $1",
	/* $1 id, $2 lease token, $3 failed at, $4 next attempt, $5 error, $6
	 * give up now (0/1), $7 give-up age, $8 maybe sent (0/1), $9 the
	 * server's not-before or NULL. */
	[P_CALL_FAILED] =
		"UPDATE outbox SET attempts = attempts + 1, next_attempt = $4, last_error = $5, "
		"not_before = $9, lease_until = NULL, lease_token = NULL, "
		"is_repeat = CASE WHEN $8::integer <> 0 THEN 0 ELSE is_repeat END, "
		"status = CASE WHEN $6::integer <> 0 OR $3::bigint - created >= $7::bigint "
		"  THEN 'dead' ELSE 'pending' END, "
		"finished = CASE WHEN $6::integer <> 0 OR $3::bigint - created >= $7::bigint "
		"  THEN $3::bigint END "
		"WHERE id = $1 AND lease_token = $2 RETURNING status",
	[P_GAVE_UP_NOTIFY] = "UPDATE alert_state SET notify_gave_up = $2 WHERE alert_id = $1",
	[P_CALL_RELEASE] = "UPDATE outbox SET lease_until = NULL, lease_token = NULL, "
			   "is_repeat = CASE WHEN $3::integer <> 0 THEN 0 ELSE is_repeat END "
			   "WHERE id = $1 AND lease_token = $2",
	/* $2 the shards (store_limit_shards): another engine's calls are
	 * its own to retry. */
	[P_RETRY_NOW] = "UPDATE outbox SET next_attempt = $1 WHERE status = 'pending' "
			"AND next_attempt > $1 AND attempts > 0 AND lease_until IS NULL "
			"AND (not_before IS NULL OR not_before <= $1) "
			"AND ($2::int[] IS NULL OR alert_id IN "
			"     (SELECT id FROM alert WHERE shard = ANY ($2::int[])))",
	[P_COUNT_PENDING] = "SELECT count(*) FROM outbox o JOIN alert a ON a.id = o.alert_id "
			    "WHERE o.status = 'pending' "
			    "AND ($1::int[] IS NULL OR a.shard = ANY ($1::int[]))",
	[P_PRUNE_OUTBOX] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
			   "WHERE status <> 'pending' AND finished < $1 LIMIT $2)",
	[P_PRUNE_TRANSITION] = "DELETE FROM transition WHERE id IN (SELECT id FROM transition "
			       "WHERE at < $1 LIMIT $2)",
	[P_PRUNE_ALERTS] = "DELETE FROM alert WHERE retired IS NOT NULL AND retired < $1 "
			   "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alert_id = alert.id "
			   "AND o.status = 'pending')",
	/* An engine that has not beaten since the cutoff and owns no shard:
	 * with the default id (host:pid) every restart leaves one row. */
	[P_PRUNE_ENGINES] =
		"DELETE FROM engine WHERE heartbeat < to_timestamp($1::bigint / 1000.0) "
		"AND NOT EXISTS (SELECT 1 FROM shard WHERE shard.owner = engine.id)",
	[P_SHIFT_STATE] =
		"UPDATE alert_state SET "
		"next_eval = CASE WHEN next_eval < $2::bigint THEN next_eval + $1::bigint "
		"  ELSE next_eval END, "
		"last_notified = last_notified + $1::bigint, "
		"last_ok = last_ok + $1::bigint, warn_since = warn_since + $1::bigint, "
		"crit_since = crit_since + $1::bigint, "
		"notify_gave_up = notify_gave_up + $1::bigint",
	[P_SHIFT_OUTBOX] =
		"UPDATE outbox SET next_attempt = next_attempt + $1::bigint, "
		"lease_until = lease_until + $1::bigint, created = created + $1::bigint, "
		"not_before = not_before + $1::bigint WHERE status = 'pending'",
	/* Shard leases (store_pg_shards.c): $1 the engine, lease times from
	 * the database's clock, shard sets as two arrays, ids and epochs.
	 * Every statement that locks several shards locks them by id (the
	 * sub-select's ORDER BY under its FOR UPDATE, the fence's under FOR
	 * SHARE): in any other order a renewal and a fence on another
	 * connection could each wait for the other. */
	[P_ENGINE_BEAT] = "INSERT INTO engine (id, started, heartbeat) VALUES ($1, now(), now()) "
			  "ON CONFLICT (id) DO UPDATE SET heartbeat = now(), stopped = NULL, "
			  "started = CASE WHEN $2::integer = 1 THEN now() ELSE engine.started END",
	[P_ENGINE_STOPPED] = "UPDATE engine SET stopped = now() WHERE id = $1",
	[P_ENGINE_LIVE] = "SELECT count(*) FROM engine WHERE stopped IS NULL "
			  "AND heartbeat > now() - $1::bigint * interval '1 millisecond'",
	[P_SHARD_RENEW] =
		"UPDATE shard s SET lease_until = now() + $2::bigint * interval '1 millisecond' "
		"FROM (SELECT k.id FROM shard k "
		"      JOIN unnest($3::int[], $4::bigint[]) AS h (id, epoch) "
		"      ON k.id = h.id AND k.epoch = h.epoch "
		"      WHERE k.owner = $1 AND k.lease_until > now() "
		"      ORDER BY k.id FOR UPDATE OF k) AS l "
		"WHERE s.id = l.id RETURNING s.id, s.epoch",
	[P_SHARD_CLAIM] =
		"UPDATE shard SET owner = $1, epoch = epoch + 1, "
		"lease_until = now() + $2::bigint * interval '1 millisecond' "
		"WHERE id IN (SELECT id FROM shard WHERE owner IS NULL OR lease_until IS NULL "
		"OR lease_until <= now() ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) "
		"RETURNING id, epoch",
	[P_SHARD_CALLS_FREE] =
		"UPDATE outbox SET lease_until = NULL, lease_token = NULL, is_repeat = 0 "
		"WHERE status = 'pending' AND lease_until IS NOT NULL "
		"AND alert_id IN (SELECT id FROM alert WHERE shard = ANY ($1::int[]))",
	[P_SHARD_RELEASE] = "UPDATE shard s SET owner = NULL, lease_until = now() "
			    "FROM (SELECT k.id FROM shard k "
			    "      JOIN unnest($2::int[], $3::bigint[]) AS h (id, epoch) "
			    "      ON k.id = h.id AND k.epoch = h.epoch WHERE k.owner = $1 "
			    "      ORDER BY k.id FOR UPDATE OF k) AS l "
			    "WHERE s.id = l.id",
	[P_SHARD_DISOWN] = "UPDATE shard s SET owner = NULL, lease_until = now() "
			   "FROM (SELECT id FROM shard WHERE owner = $1 ORDER BY id FOR UPDATE) "
			   "AS l WHERE s.id = l.id",
	[P_FENCE] = "SELECT s.id, s.epoch FROM shard s "
		    "JOIN unnest($2::int[], $3::bigint[]) AS h (id, epoch) "
		    "ON s.id = h.id AND s.epoch = h.epoch "
		    "WHERE s.owner = $1 AND s.lease_until > now() ORDER BY s.id FOR SHARE OF s",
};

static const struct store_ops pg_ops = {
	.close = pg_store_close,
	.begin = pg_store_begin,
	.commit = pg_store_commit,
	.rollback = pg_store_rollback,
	.release_leases = pg_store_release_leases,
	.count_alerts = pg_store_count_alerts,
	.sync_defs = pg_store_sync_defs,
	.pick_due = pg_store_pick_due,
	.next_pick = pg_store_next_pick,
	.eval_get = pg_store_eval_get,
	.eval_stays_pass = pg_store_eval_stays_pass,
	.evals_stay_pass = pg_store_evals_stay_pass,
	.eval_put_ok = pg_store_eval_put_ok,
	.eval_put_failed = pg_store_eval_put_failed,
	.transition_add = pg_store_transition_add,
	.call_add = pg_store_call_add,
	.call_add_repeat = pg_store_call_add_repeat,
	.claim_calls = pg_store_claim_calls,
	.call_drop_superseded = pg_store_call_drop_superseded,
	.next_call = pg_store_next_call,
	.call_delivered = pg_store_call_delivered,
	.call_failed = pg_store_call_failed,
	.call_release = pg_store_call_release,
	.calls_retry_now = pg_store_calls_retry_now,
	.count_pending = pg_store_count_pending,
	.prune = pg_store_prune,
	.shift_times = pg_store_shift_times,
	.connection_lost = pg_store_connection_lost,
	.reconnect = pg_store_reconnect,
	.engine_beat = pg_store_engine_beat,
	.shards_renew = pg_store_shards_renew,
	.shards_claim = pg_store_shards_claim,
	.shards_release = pg_store_shards_release,
	.limit_shards = pg_store_limit_shards,
	.fence = pg_store_fence,
};

void pg_int(struct pg_params *p, int64_t x)
{
	assert(p->n < PG_MAX_PARAMS);
	snprintf(p->buf[p->n], sizeof(p->buf[0]), "%" PRId64, x);
	p->v[p->n] = p->buf[p->n];
	p->n++;
}

void pg_time(struct pg_params *p, int64_t t)
{
	if (t == RULES_NEVER)
		pg_text(p, NULL);
	else
		pg_int(p, t);
}

void pg_double(struct pg_params *p, double x)
{
	assert(p->n < PG_MAX_PARAMS);
	/* 17 digits give back the same double ("inf" and "nan" are read too). */
	snprintf(p->buf[p->n], sizeof(p->buf[0]), "%.17g", x);
	p->v[p->n] = p->buf[p->n];
	p->n++;
}

void pg_text(struct pg_params *p, const char *s)
{
	assert(p->n < PG_MAX_PARAMS);
	p->v[p->n++] = s;
}

const char *pg_message(PGconn *conn, char *out, size_t outlen)
{
	const char *m = conn ? PQerrorMessage(conn) : "out of memory";
	size_t k = 0;

	while (strncmp(m, "FATAL:  ", 8) == 0 || strncmp(m, "ERROR:  ", 8) == 0)
		m += 8;
	/* One line: runs of newlines, tabs and spaces become one space. */
	for (; *m != '\0' && k + 1 < outlen; m++) {
		char c = *m == '\n' || *m == '\t' || *m == '\r' ? ' ' : *m;

		if (c == ' ' && (k == 0 || out[k - 1] == ' '))
			continue;
		out[k++] = c;
	}
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
	return out;
}

PGresult *pg_run(struct pg_store *st, enum pg_stmt_id id, const struct pg_params *p, char *err,
		 size_t errlen, const char *what)
{
	char name[16];
	char msg[400];
	PGresult *r;
	ExecStatusType s;

	snprintf(name, sizeof(name), "s%d", (int)id);
	r = PQexecPrepared(st->conn, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
	s = PQresultStatus(r);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s: %s", what, pg_message(st->conn, msg, sizeof(msg)));
		PQclear(r);
		return NULL;
	}
	return r;
}

/* Rows a statement's result says it inserted, updated or deleted. */
static int64_t changed_rows(PGresult *r)
{
	const char *tag = PQcmdStatus(r);

	if (strncmp(tag, "INSERT", 6) != 0 && strncmp(tag, "UPDATE", 6) != 0 &&
	    strncmp(tag, "DELETE", 6) != 0)
		return 0;
	return strtoll(PQcmdTuples(r), NULL, 10);
}

int pg_run_changed(struct pg_store *st, enum pg_stmt_id id, const struct pg_params *p,
		   int64_t *changed, char *err, size_t errlen, const char *what)
{
	PGresult *r = pg_run(st, id, p, err, errlen, what);
	int64_t n;

	if (r == NULL)
		return -1;
	n = changed_rows(r);
	st->rows_in_tx += n;
	if (changed != NULL)
		*changed = n;
	PQclear(r);
	return 0;
}

int pg_run_int64(struct pg_store *st, enum pg_stmt_id id, const struct pg_params *p,
		 int64_t if_null, int64_t *out, char *err, size_t errlen, const char *what)
{
	PGresult *r = pg_run(st, id, p, err, errlen, what);

	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "%s: %d rows for one", what, PQntuples(r));
		PQclear(r);
		return -1;
	}
	*out = PQgetisnull(r, 0, 0) ? if_null : pg_get_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int64_t pg_get_int(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int64_t pg_get_time(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? RULES_NEVER : pg_get_int(r, row, col);
}

double pg_get_double(const PGresult *r, int row, int col)
{
	return strtod(PQgetvalue(r, row, col), NULL);
}

int pg_get_def(const PGresult *r, int row, int first, struct alert_def *def, const char *what,
	       char *err, size_t errlen)
{
	def->name = strdup(PQgetvalue(r, row, first));
	def->query = strdup(PQgetvalue(r, row, first + 1));
	def->interval_ms = pg_get_int(r, row, first + 2);
	def->repeat_ms = pg_get_int(r, row, first + 3);
	def->sustain_ms = pg_get_int(r, row, first + 4);
	def->warn_value = pg_get_double(r, row, first + 5);
	def->warn_message = strdup(PQgetvalue(r, row, first + 6));
	def->crit_value = pg_get_double(r, row, first + 7);
	def->crit_message = strdup(PQgetvalue(r, row, first + 8));
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

/* Runs one SQL command that is not in the table (BEGIN, COMMIT, ...). */
static int pg_exec(struct pg_store *st, const char *sql, const char *tag, char *err, size_t errlen,
		   const char *what)
{
	char msg[400];
	PGresult *r = PQexec(st->conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	/* A COMMIT of a failed transaction "succeeds" as a ROLLBACK. */
	if (ok && tag != NULL && strcmp(PQcmdStatus(r), tag) != 0) {
		snprintf(err, errlen, "%s: the transaction was rolled back", what);
		PQclear(r);
		return -1;
	}
	if (!ok)
		snprintf(err, errlen, "%s: %s", what, pg_message(st->conn, msg, sizeof(msg)));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Prepares every statement of the table on the connection (a session's
 * prepared statements end with it). */
static int prepare_all(struct pg_store *st, char *err, size_t errlen)
{
	char msg[400];

	for (int i = 0; i < P_COUNT; i++) {
		char name[16];
		PGresult *r;

		snprintf(name, sizeof(name), "s%d", i);
		r = PQprepare(st->conn, name, sql_text[i], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "prepare statement %d: %s", i,
				 pg_message(st->conn, msg, sizeof(msg)));
			PQclear(r);
			return -1;
		}
		PQclear(r);
	}
	return 0;
}

int store_pg_open(const char *conninfo, struct store **out, char *err, size_t errlen)
{
	struct pg_store *st = calloc(1, sizeof(*st));

	*out = NULL;
	if (st == NULL) {
		snprintf(err, errlen, "open store: out of memory");
		return -1;
	}
	st->base.ops = &pg_ops;
	if (def_cache_init(&st->defs) != 0) {
		snprintf(err, errlen, "open store: out of memory");
		free(st);
		return -1;
	}
	if (pg_connect(conninfo, &st->conn, err, errlen) != 0) {
		def_cache_free(&st->defs);
		free(st);
		return -1;
	}
	if (prepare_all(st, err, errlen) != 0) {
		pg_store_close(&st->base);
		return -1;
	}
	*out = &st->base;
	return 0;
}

int pg_store_connection_lost(const struct store *base)
{
	const struct pg_store *st = (const struct pg_store *)base;

	return st->unprepared || PQstatus(st->conn) == CONNECTION_BAD;
}

int pg_store_reconnect(struct store *base, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	char msg[400];

	st->rows_in_tx = 0;
	PQreset(st->conn);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "reconnect: %s", pg_message(st->conn, msg, sizeof(msg)));
		return -1;
	}
	st->unprepared = prepare_all(st, err, errlen) != 0;
	return st->unprepared ? -1 : 0;
}

void pg_store_close(struct store *base)
{
	struct pg_store *st = (struct pg_store *)base;

	PQfinish(st->conn);
	free(st->limit);
	def_cache_free(&st->defs);
	free(st);
}

int store_pg_prepare(const char *conninfo, struct store_lock **lock, char *err, size_t errlen)
{
	struct store_lock *l = malloc(sizeof(*l));
	PGconn *conn = NULL;
	char shown[512];
	char why[400];
	int rc;

	*lock = NULL;
	if (l == NULL) {
		snprintf(err, errlen, "prepare database: out of memory");
		return STORE_ERR;
	}
	/* No lock: engines may share the database. */
	l->fd = -1;
	if (pg_connect(conninfo, &conn, err, errlen) != 0) {
		free(l);
		return STORE_ERR;
	}
	rc = pg_migrate(conn, why, sizeof(why));
	PQfinish(conn);
	if (rc != STORE_OK) {
		snprintf(err, errlen, "database %s: %s",
			 store_redact_location(shown, sizeof(shown), conninfo), why);
		free(l);
		return rc;
	}
	*lock = l;
	return STORE_OK;
}

int pg_store_begin(struct store *base, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;

	st->rows_in_tx = 0;
	return pg_exec(st, "BEGIN ISOLATION LEVEL READ COMMITTED", NULL, err, errlen,
		       "begin transaction");
}

int pg_store_commit(struct store *base, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;

	if (pg_exec(st, "COMMIT", "COMMIT", err, errlen, "commit") != 0) {
		pg_store_rollback(base);
		return -1;
	}
	if (st->rows_in_tx > 0) {
		st->base.counters.commits++;
		st->base.counters.rows += st->rows_in_tx;
	}
	st->rows_in_tx = 0;
	return 0;
}

void pg_store_rollback(struct store *base)
{
	struct pg_store *st = (struct pg_store *)base;
	char ignored[8];

	st->rows_in_tx = 0;
	if (PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		return;
	pg_exec(st, "ROLLBACK", NULL, ignored, sizeof(ignored), "rollback");
}

int pg_store_release_leases(struct store *base, int64_t now, int64_t max_wait_ms, char *err,
			    size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	struct pg_params q = {0};

	assert(max_wait_ms >= 0);
	pg_int(&p, now);
	pg_int(&p, PG_RETIRED_NEXT_EVAL);
	pg_int(&q, now);
	pg_int(&q, now + max_wait_ms);
	if (pg_store_begin(base, err, errlen) != 0)
		return -1;
	if (pg_run_changed(st, P_RELEASE_OUTBOX, NULL, NULL, err, errlen,
			   "release outbox leases") != 0 ||
	    pg_run_changed(st, P_CLAMP_STATE, &p, NULL, err, errlen,
			   "bring alert times back to now") != 0 ||
	    pg_run_changed(st, P_CLAMP_OUTBOX, &q, NULL, err, errlen,
			   "bring call times back to now") != 0) {
		pg_store_rollback(base);
		return -1;
	}
	return pg_store_commit(base, err, errlen);
}

int pg_store_count_alerts(struct store *base, int64_t *active, int64_t *retired, char *err,
			  size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;

	if (pg_run_int64(st, P_COUNT_ALERTS, NULL, 0, active, err, errlen, "count alerts") != 0)
		return -1;
	if (retired == NULL)
		return 0;
	return pg_run_int64(st, P_COUNT_RETIRED, NULL, 0, retired, err, errlen,
			    "count retired alerts");
}

int pg_store_count_pending(struct store *base, int64_t *n, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};

	pg_text(&p, st->limit);
	return pg_run_int64(st, P_COUNT_PENDING, &p, 0, n, err, errlen, "count pending calls");
}

int pg_store_prune(struct store *base, int64_t cutoff, int64_t max_rows, int64_t *deleted,
		   char *err, size_t errlen)
{
	static const enum pg_stmt_id ids[] = {P_PRUNE_OUTBOX, P_PRUNE_TRANSITION, P_PRUNE_ALERTS,
					      P_PRUNE_ENGINES};
	struct pg_store *st = (struct pg_store *)base;

	assert(max_rows > 0);
	*deleted = 0;
	if (pg_store_begin(base, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct pg_params p = {0};
		int64_t n = 0;

		pg_int(&p, cutoff);
		if (ids[i] == P_PRUNE_OUTBOX || ids[i] == P_PRUNE_TRANSITION)
			pg_int(&p, max_rows);
		if (pg_run_changed(st, ids[i], &p, &n, err, errlen, "prune") != 0) {
			pg_store_rollback(base);
			return -1;
		}
		*deleted += n;
	}
	return pg_store_commit(base, err, errlen);
}

int pg_store_shift_times(struct store *base, int64_t delta, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	struct pg_params q = {0};

	pg_int(&p, delta);
	pg_int(&p, PG_RETIRED_NEXT_EVAL);
	pg_int(&q, delta);
	if (pg_store_begin(base, err, errlen) != 0)
		return -1;
	if (pg_run_changed(st, P_SHIFT_STATE, &p, NULL, err, errlen, "shift alert times") != 0 ||
	    pg_run_changed(st, P_SHIFT_OUTBOX, &q, NULL, err, errlen, "shift outbox times") != 0) {
		pg_store_rollback(base);
		return -1;
	}
	return pg_store_commit(base, err, errlen);
}
