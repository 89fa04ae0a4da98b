/*
 * Reading for people (store.h, "Reading for people"): the SQLite side of
 * the status page, /metrics and `alert-exec status`. A connection of its
 * own, opened without SQLITE_OPEN_CREATE and set query_only, so it can
 * neither create a database nor write one (nor checkpoint it at close),
 * and never touches the engine's lock file. (SQLITE_OPEN_READONLY is not
 * used: a read-only connection to a WAL database cannot open when its
 * -shm file is missing, as it is while no engine runs.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store_backend.h"
#include "store_sqlite_db.h"

#define READ_BUSY_TIMEOUT_MS 2000

struct sqlite_reader {
	struct store_reader base; /* first */
	sqlite3 *db;
};

static int reader_fail(struct sqlite_reader *r, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, sqlite3_errmsg(r->db));
	return -1;
}

/* The schema must be the one this binary writes. */
static int check_version(struct sqlite_reader *r, const char *location, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int version = -1;

	if (sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return reader_fail(r, "read database", err, errlen);
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version < 0)
		return reader_fail(r, "read database", err, errlen);
	if (version == 0) {
		snprintf(err, errlen, "database %s: not an alert-exec database (empty schema)",
			 location);
		return -1;
	}
	if (version != db_latest_version()) {
		snprintf(err, errlen, "database %s: schema version %d, this binary reads %d (%s)",
			 location, version, db_latest_version(),
			 version < db_latest_version() ? "start the daemon to migrate it"
						       : "written by a newer version");
		return -1;
	}
	return 0;
}

static void reader_close(struct store_reader *base)
{
	struct sqlite_reader *r = (struct sqlite_reader *)base;

	sqlite3_close(r->db);
	free(r);
}

static const struct store_reader_ops sqlite_reader_ops;

int store_sqlite_reader_open(const char *location, struct store_reader **out, char *err,
			     size_t errlen)
{
	struct sqlite_reader *r = calloc(1, sizeof(*r));
	struct stat sb;

	*out = NULL;
	if (r == NULL) {
		snprintf(err, errlen, "database %s: out of memory", location);
		return -1;
	}
	r->base.ops = &sqlite_reader_ops;
	if (stat(location, &sb) != 0) {
		snprintf(err, errlen, "database %s: %s", location, strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(location, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "database %s: %s", location,
			 r->db ? sqlite3_errmsg(r->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(r->db, READ_BUSY_TIMEOUT_MS);
	/* The last connection to close would checkpoint the WAL into the
	 * database file: a reader leaves that to the engine. */
	sqlite3_db_config(r->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (sqlite3_exec(r->db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK) {
		reader_fail(r, "open database", err, errlen);
		goto fail;
	}
	if (check_version(r, location, err, errlen) != 0)
		goto fail;
	*out = &r->base;
	return 0;
fail:
	reader_close(&r->base);
	return -1;
}

static char *column_strdup(sqlite3_stmt *s, int i, int *oom)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	char *copy;

	if (t == NULL)
		return NULL;
	copy = strdup((const char *)t);
	if (copy == NULL)
		*oom = 1;
	return copy;
}

static enum rules_level level_of(const unsigned char *text)
{
	if (text && strcmp((const char *)text, "CRITICAL") == 0)
		return LEVEL_CRITICAL;
	if (text && strcmp((const char *)text, "WARN") == 0)
		return LEVEL_WARN;
	return LEVEL_PASS;
}

static int64_t column_time(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, i);
}

/* One value of a query of one row. */
static int read_count(struct sqlite_reader *r, const char *sql, int64_t *out, char *err,
		      size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK)
		return reader_fail(r, "read database", err, errlen);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : reader_fail(r, "read database", err, errlen);
}

static void alert_row(sqlite3_stmt *s, struct store_alert_status *a, int *oom)
{
	a->name = column_strdup(s, 0, oom);
	a->state = level_of(sqlite3_column_text(s, 1));
	a->has_value = sqlite3_column_type(s, 2) != SQLITE_NULL;
	a->last_value = sqlite3_column_double(s, 2);
	a->last_eval = column_time(s, 3);
	a->next_eval = column_time(s, 4);
	a->last_notified = column_time(s, 5);
	a->failures = sqlite3_column_int64(s, 6);
	a->last_error = column_strdup(s, 7, oom);
	a->pending = sqlite3_column_int64(s, 8);
	a->retired = sqlite3_column_int(s, 9);
}

static int read_alerts(struct store_reader *base, size_t max, struct store_alert_status **out,
		       size_t *n, size_t *total, char *err, size_t errlen)
{
	struct sqlite_reader *r = (struct sqlite_reader *)base;
	static const char sql[] =
		"SELECT a.name, s.state, s.last_value, s.last_eval, s.next_eval, "
		"s.last_notified, s.failures, s.last_error, "
		"(SELECT count(*) FROM outbox o WHERE o.alert_id = a.id AND o.status = 'pending'), "
		"a.retired IS NOT NULL "
		"FROM alert a JOIN alert_state s ON s.alert_id = a.id "
		"ORDER BY CASE s.state WHEN 'CRITICAL' THEN 0 WHEN 'WARN' THEN 1 ELSE 2 END, a.name "
		"LIMIT ?1";
	struct store_alert_status *a = NULL;
	sqlite3_stmt *s = NULL;
	int64_t count = 0;
	size_t k = 0;
	int rc = SQLITE_DONE, oom = 0;

	*out = NULL;
	*n = 0;
	if (read_count(r, "SELECT count(*) FROM alert_state", &count, err, errlen) != 0)
		return -1;
	*total = (size_t)count;
	if (max > *total)
		max = *total;
	a = calloc(max ? max : 1, sizeof(*a));
	if (a == NULL || sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK) {
		free(a);
		return a ? reader_fail(r, "read alerts", err, errlen)
			 : (snprintf(err, errlen, "read alerts: out of memory"), -1);
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW)
		alert_row(s, &a[k++], &oom);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		reader_fail(r, "read alerts", err, errlen);
	else if (oom)
		snprintf(err, errlen, "read alerts: out of memory");
	sqlite3_finalize(s);
	if (oom || (rc != SQLITE_ROW && rc != SQLITE_DONE)) {
		store_alert_status_free(a, k);
		return -1;
	}
	*out = a;
	*n = k;
	return 0;
}

static int read_state_counts(struct store_reader *base, int64_t counts[3], char *err, size_t errlen)
{
	struct sqlite_reader *r = (struct sqlite_reader *)base;
	static const char sql[] = "SELECT s.state, count(*) FROM alert_state s "
				  "JOIN alert a ON a.id = s.alert_id "
				  "WHERE a.retired IS NULL GROUP BY s.state";
	sqlite3_stmt *s = NULL;
	int rc;

	counts[0] = counts[1] = counts[2] = 0;
	if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK)
		return reader_fail(r, "count alerts", err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		counts[level_of(sqlite3_column_text(s, 0))] += sqlite3_column_int64(s, 1);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : reader_fail(r, "count alerts", err, errlen);
}

static int read_outbox_totals(struct store_reader *base, struct store_outbox_totals *out, char *err,
			      size_t errlen)
{
	struct sqlite_reader *r = (struct sqlite_reader *)base;
	static const char sql[] =
		"SELECT count(*), min(created) FROM outbox WHERE status = 'pending'";
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK)
		return reader_fail(r, "read outbox", err, errlen);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->pending = sqlite3_column_int64(s, 0);
		out->oldest_created = column_time(s, 1);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return reader_fail(r, "read outbox", err, errlen);
	return read_count(r, "SELECT count(*) FROM outbox WHERE status = 'dead'", &out->dead, err,
			  errlen);
}

static int read_pending(struct store_reader *base, size_t max, struct store_pending_call **out,
			size_t *n, char *err, size_t errlen)
{
	struct sqlite_reader *r = (struct sqlite_reader *)base;
	static const char sql[] = "SELECT o.id, a.name, o.kind, o.attempts, o.created, "
				  "o.next_attempt, o.last_error FROM outbox o "
				  "JOIN alert a ON a.id = o.alert_id "
				  "WHERE o.status = 'pending' ORDER BY o.id LIMIT ?1";
	struct store_pending_call *c = calloc(max ? max : 1, sizeof(*c));
	sqlite3_stmt *s = NULL;
	size_t k = 0;
	int rc = SQLITE_DONE, oom = 0;

	*out = NULL;
	*n = 0;
	if (c == NULL) {
		snprintf(err, errlen, "read outbox: out of memory");
		return -1;
	}
	if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK) {
		free(c);
		return reader_fail(r, "read outbox", err, errlen);
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_pending_call *p = &c[k++];
		const unsigned char *kind = sqlite3_column_text(s, 2);

		p->id = sqlite3_column_int64(s, 0);
		p->name = column_strdup(s, 1, &oom);
		p->kind = kind && strcmp((const char *)kind, "resolve") == 0 ? STORE_RESOLVE
									     : STORE_NOTIFY;
		p->attempts = sqlite3_column_int64(s, 3);
		p->created = column_time(s, 4);
		p->next_attempt = column_time(s, 5);
		p->last_error = column_strdup(s, 6, &oom);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		reader_fail(r, "read outbox", err, errlen);
	else if (oom)
		snprintf(err, errlen, "read outbox: out of memory");
	sqlite3_finalize(s);
	if (oom || (rc != SQLITE_ROW && rc != SQLITE_DONE)) {
		store_pending_free(c, k);
		return -1;
	}
	*out = c;
	*n = k;
	return 0;
}

static const struct store_reader_ops sqlite_reader_ops = {
	.close = reader_close,
	.alerts = read_alerts,
	.state_counts = read_state_counts,
	.outbox_totals = read_outbox_totals,
	.pending = read_pending,
};
