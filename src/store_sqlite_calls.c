#include "store_sqlite.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int outbox_insert(struct sqlite_store *st, int64_t alert_id, enum store_kind kind,
			 const char *message, int repeat, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s = sql_stmt(st, S_OUTBOX_ADD);

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_text(s, 2, kind == STORE_NOTIFY ? "notify" : "resolve", -1, SQLITE_STATIC);
	if (message)
		sqlite3_bind_text(s, 3, message, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int(s, 5, repeat);
	return sql_run(st, s, err, errlen, "enqueue call");
}

int sqlite_store_call_add(struct store *base, int64_t alert_id, enum store_kind kind,
			  const char *message, int64_t now, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_DROP_REPEATS);

	sqlite3_bind_int64(s, 1, alert_id);
	if (sql_run(st, s, err, errlen, "drop repeats") != 0)
		return -1;
	return outbox_insert(st, alert_id, kind, message, 0, now, err, errlen);
}

int sqlite_store_call_add_repeat(struct store *base, int64_t alert_id, const char *message,
				 int64_t now, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	assert(message != NULL);
	return outbox_insert(st, alert_id, STORE_NOTIFY, message, 1, now, err, errlen);
}

int sqlite_store_claim_calls(struct store *base, int64_t now, int64_t not_after, int64_t lease_ms,
			     int64_t token, struct store_call *out, size_t max, size_t *n,
			     char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s;
	size_t k = 0;
	int rc = SQLITE_DONE;

	*n = 0;
	if (sqlite_store_begin(&st->base, err, errlen) != 0)
		return -1;
	s = sql_stmt(st, S_CLAIM_CALLS);
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
		c->name = sql_column_strdup(s, 3);
		if (c->kind == STORE_NOTIFY)
			c->message = sql_column_strdup(s, 4);
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
		sql_fail(st, err, errlen, "claim calls");
		goto fail;
	}
	for (size_t i = 0; i < k; i++) {
		s = sql_stmt(st, S_LEASE_CALL);
		sqlite3_bind_int64(s, 1, out[i].id);
		sqlite3_bind_int64(s, 2, now + lease_ms);
		sqlite3_bind_int64(s, 3, token);
		if (sql_run(st, s, err, errlen, "lease call") != 0)
			goto fail;
	}
	if (sqlite_store_commit(&st->base, err, errlen) != 0)
		goto fail;
	*n = k;
	return 0;
fail:
	sqlite3_reset(st->stmt[S_CLAIM_CALLS]);
	sqlite_store_rollback(&st->base);
	for (size_t i = 0; i < k; i++)
		store_call_clear(&out[i]);
	return -1;
}

int sqlite_store_call_drop_superseded(struct store *base, const struct store_call *call,
				      int *dropped, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_DROP_SUPERSEDED);

	*dropped = 0;
	if (!call->repeat)
		return 0;
	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, call->lease_token);
	if (sql_run(st, s, err, errlen, "drop superseded repeat") != 0)
		return -1;
	*dropped = sqlite3_changes(st->db) > 0;
	return 0;
}

int sqlite_store_next_call(struct store *base, int64_t *at, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;

	return sql_run_int64(st, sql_stmt(st, S_NEXT_CALL), INT64_MAX, at, err, errlen,
			     "next call");
}

int sqlite_store_call_delivered(struct store *base, const struct store_call *call, int64_t at,
				enum store_outcome *outcome, char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_CALL_DELIVERED);

	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, at);
	sqlite3_bind_int64(s, 3, call->lease_token);
	if (sql_run(st, s, err, errlen, "mark call delivered") != 0)
		return -1;
	if (sqlite3_changes(st->db) == 0) {
		*outcome = STORE_CALL_LOST;
		return 0;
	}
	*outcome = STORE_CALL_DELIVERED;
	if (call->kind != STORE_NOTIFY)
		return 0;
	s = sql_stmt(st, S_LAST_NOTIFIED);
	sqlite3_bind_int64(s, 1, call->alert_id);
	sqlite3_bind_int64(s, 2, at);
	return sql_run(st, s, err, errlen, "write last notified");
}

int sqlite_store_call_failed(struct store *base, const struct store_call *call,
			     const struct store_failure *f, enum store_outcome *outcome, char *err,
			     size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_CALL_FAILED);
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
	if (f->not_before > 0)
		sqlite3_bind_int64(s, 9, f->not_before);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		*outcome = STORE_CALL_LOST;
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sql_fail(st, err, errlen, "mark call failed");
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
		return sql_fail(st, err, errlen, "mark call failed");
	if (*outcome != STORE_CALL_DEAD || call->kind != STORE_NOTIFY)
		return 0;
	s = sql_stmt(st, S_GAVE_UP_NOTIFY);
	sqlite3_bind_int64(s, 1, call->alert_id);
	sqlite3_bind_int64(s, 2, f->at);
	return sql_run(st, s, err, errlen, "write notify given up");
}

int sqlite_store_call_release(struct store *base, const struct store_call *call, int maybe_sent,
			      char *err, size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_CALL_RELEASE);

	sqlite3_bind_int64(s, 1, call->id);
	sqlite3_bind_int64(s, 2, call->lease_token);
	sqlite3_bind_int(s, 3, maybe_sent != 0);
	return sql_run(st, s, err, errlen, "release call");
}

int sqlite_store_calls_retry_now(struct store *base, int64_t at, int64_t *n, char *err,
				 size_t errlen)
{
	struct sqlite_store *st = (struct sqlite_store *)base;
	sqlite3_stmt *s = sql_stmt(st, S_RETRY_NOW);

	sqlite3_bind_int64(s, 1, at);
	if (sql_run(st, s, err, errlen, "retry calls now") != 0)
		return -1;
	*n = sqlite3_changes64(st->db);
	return 0;
}
