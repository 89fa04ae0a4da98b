/*
 * Reading for people (store.h, "Reading for people"): the PostgreSQL side
 * of the status page, /metrics and `alert-exec status`. A connection of
 * its own whose transactions are read-only, so it can write nothing; a
 * connection that broke (the server restarted) is reset before the next
 * read, so a listener that runs for months keeps working.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

struct pg_reader {
	struct store_reader base; /* first */
	PGconn *conn;
};

static const struct store_reader_ops pg_reader_ops;

static void reader_close(struct store_reader *base)
{
	struct pg_reader *r = (struct pg_reader *)base;

	PQfinish(r->conn);
	free(r);
}

/* The schema must be the one this binary writes. */
static int check_version(struct pg_reader *r, const char *shown, char *err, size_t errlen)
{
	int version = 0;

	if (pg_schema_version(r->conn, &version, err, errlen) != 0)
		return -1;
	if (version == 0) {
		snprintf(err, errlen, "database %s: not an alert-exec database (empty schema)",
			 shown);
		return -1;
	}
	if (version != pg_latest_version()) {
		snprintf(err, errlen, "database %s: schema version %d, this binary reads %d (%s)",
			 shown, version, pg_latest_version(),
			 version < pg_latest_version() ? "start the daemon to migrate it"
						       : "written by a newer version");
		return -1;
	}
	return 0;
}

int store_pg_reader_open(const char *conninfo, struct store_reader **out, char *err, size_t errlen)
{
	struct pg_reader *r = calloc(1, sizeof(*r));
	char shown[512];
	PGresult *res;

	*out = NULL;
	if (r == NULL) {
		snprintf(err, errlen, "database: out of memory");
		return -1;
	}
	r->base.ops = &pg_reader_ops;
	if (pg_connect(conninfo, &r->conn, err, errlen) != 0)
		goto fail;
	res = PQexec(r->conn, "SET default_transaction_read_only = on");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		char msg[400];

		snprintf(err, errlen, "open database: %s", pg_message(r->conn, msg, sizeof(msg)));
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (check_version(r, store_redact_location(shown, sizeof(shown), conninfo), err, errlen) !=
	    0)
		goto fail;
	*out = &r->base;
	return 0;
fail:
	reader_close(&r->base);
	return -1;
}

/* Runs a query of up to two integer parameters; NULL (err set) when it
 * fails. A broken connection is reset first (the setting of a read-only
 * session goes with it, so it is sent again). */
static PGresult *query(struct pg_reader *r, const char *sql, int nparams, int64_t p1,
		       const char *what, char *err, size_t errlen)
{
	char buf[32], msg[400];
	const char *values[1] = {buf};
	PGresult *res;

	if (PQstatus(r->conn) != CONNECTION_OK) {
		PQreset(r->conn);
		PQclear(PQexec(r->conn, "SET default_transaction_read_only = on"));
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)p1);
	res = PQexecParams(r->conn, sql, nparams, NULL, nparams ? values : NULL, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	snprintf(err, errlen, "%s: %s", what, pg_message(r->conn, msg, sizeof(msg)));
	PQclear(res);
	return NULL;
}

static char *text_dup(const PGresult *res, int row, int col, int *oom)
{
	char *copy;

	if (PQgetisnull(res, row, col))
		return NULL;
	copy = strdup(PQgetvalue(res, row, col));
	if (copy == NULL)
		*oom = 1;
	return copy;
}

static enum rules_level level_of(const char *text)
{
	if (strcmp(text, "CRITICAL") == 0)
		return LEVEL_CRITICAL;
	if (strcmp(text, "WARN") == 0)
		return LEVEL_WARN;
	return LEVEL_PASS;
}

/* A time column; 0 when never (NULL). */
static int64_t time_of(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : pg_get_int(res, row, col);
}

static void alert_row(const PGresult *res, int i, struct store_alert_status *a, int *oom)
{
	a->name = text_dup(res, i, 0, oom);
	a->state = level_of(PQgetvalue(res, i, 1));
	a->has_value = !PQgetisnull(res, i, 2);
	a->last_value = a->has_value ? pg_get_double(res, i, 2) : 0;
	a->last_eval = time_of(res, i, 3);
	a->next_eval = time_of(res, i, 4);
	a->last_notified = time_of(res, i, 5);
	a->failures = pg_get_int(res, i, 6);
	a->last_error = text_dup(res, i, 7, oom);
	a->pending = pg_get_int(res, i, 8);
	a->retired = pg_get_int(res, i, 9) != 0;
}

static int read_alerts(struct store_reader *base, size_t max, struct store_alert_status **out,
		       size_t *n, size_t *total, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT a.name, s.state, s.last_value, s.last_eval, s.next_eval, "
		"s.last_notified, s.failures, s.last_error, "
		"(SELECT count(*) FROM outbox o WHERE o.alert_id = a.id AND o.status = 'pending'), "
		"CASE WHEN a.retired IS NULL THEN 0 ELSE 1 END, count(*) OVER () "
		"FROM alert a JOIN alert_state s ON s.alert_id = a.id "
		"ORDER BY CASE s.state WHEN 'CRITICAL' THEN 0 WHEN 'WARN' THEN 1 ELSE 2 END, a.name "
		"LIMIT $1";
	struct pg_reader *r = (struct pg_reader *)base;
	struct store_alert_status *a;
	PGresult *res;
	int rows, oom = 0;

	*out = NULL;
	*n = 0;
	*total = 0;
	/* LIMIT takes a bigint: (size_t)-1, "all", is capped. */
	res = query(r, sql, 1, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max, "read alerts",
		    err, errlen);
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	a = calloc(rows ? (size_t)rows : 1, sizeof(*a));
	for (int i = 0; a != NULL && i < rows; i++)
		alert_row(res, i, &a[i], &oom);
	/* The count of all rows rides on each row; with none shown, count. */
	*total = rows ? (size_t)pg_get_int(res, 0, 10) : 0;
	PQclear(res);
	if (a == NULL || oom) {
		store_alert_status_free(a, a ? (size_t)rows : 0);
		snprintf(err, errlen, "read alerts: out of memory");
		return -1;
	}
	if (rows == 0 && max == 0) {
		res = query(r, "SELECT count(*) FROM alert_state", 0, 0, "read alerts", err,
			    errlen);
		if (res == NULL) {
			free(a);
			return -1;
		}
		*total = (size_t)pg_get_int(res, 0, 0);
		PQclear(res);
	}
	*out = a;
	*n = (size_t)rows;
	return 0;
}

static int read_state_counts(struct store_reader *base, int64_t counts[3], char *err, size_t errlen)
{
	static const char sql[] = "SELECT s.state, count(*) FROM alert_state s "
				  "JOIN alert a ON a.id = s.alert_id "
				  "WHERE a.retired IS NULL GROUP BY s.state";
	PGresult *res = query((struct pg_reader *)base, sql, 0, 0, "count alerts", err, errlen);

	counts[0] = counts[1] = counts[2] = 0;
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		counts[level_of(PQgetvalue(res, i, 0))] += pg_get_int(res, i, 1);
	PQclear(res);
	return 0;
}

static int read_outbox_totals(struct store_reader *base, struct store_outbox_totals *out, char *err,
			      size_t errlen)
{
	static const char sql[] = "SELECT count(*) FILTER (WHERE status = 'pending'), "
				  "min(created) FILTER (WHERE status = 'pending'), "
				  "count(*) FILTER (WHERE status = 'dead') FROM outbox";
	PGresult *res = query((struct pg_reader *)base, sql, 0, 0, "read outbox", err, errlen);

	memset(out, 0, sizeof(*out));
	if (res == NULL)
		return -1;
	out->pending = pg_get_int(res, 0, 0);
	out->oldest_created = time_of(res, 0, 1);
	out->dead = pg_get_int(res, 0, 2);
	PQclear(res);
	return 0;
}

static int read_pending(struct store_reader *base, size_t max, struct store_pending_call **out,
			size_t *n, char *err, size_t errlen)
{
	static const char sql[] = "SELECT o.id, a.name, o.kind, o.attempts, o.created, "
				  "o.next_attempt, o.last_error FROM outbox o "
				  "JOIN alert a ON a.id = o.alert_id "
				  "WHERE o.status = 'pending' ORDER BY o.id LIMIT $1";
	struct store_pending_call *c;
	PGresult *res;
	int rows, oom = 0;

	*out = NULL;
	*n = 0;
	res = query((struct pg_reader *)base, sql, 1,
		    max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max, "read outbox", err, errlen);
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	c = calloc(rows ? (size_t)rows : 1, sizeof(*c));
	for (int i = 0; c != NULL && i < rows; i++) {
		c[i].id = pg_get_int(res, i, 0);
		c[i].name = text_dup(res, i, 1, &oom);
		c[i].kind = strcmp(PQgetvalue(res, i, 2), "resolve") == 0 ? STORE_RESOLVE
									  : STORE_NOTIFY;
		c[i].attempts = pg_get_int(res, i, 3);
		c[i].created = time_of(res, i, 4);
		c[i].next_attempt = time_of(res, i, 5);
		c[i].last_error = text_dup(res, i, 6, &oom);
	}
	PQclear(res);
	if (c == NULL || oom) {
		store_pending_free(c, c ? (size_t)rows : 0);
		snprintf(err, errlen, "read outbox: out of memory");
		return -1;
	}
	*out = c;
	*n = (size_t)rows;
	return 0;
}

static const struct store_reader_ops pg_reader_ops = {
	.close = reader_close,
	.alerts = read_alerts,
	.state_counts = read_state_counts,
	.outbox_totals = read_outbox_totals,
	.pending = read_pending,
};
