/*
 * Connecting to PostgreSQL and migrating its schema.
 */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds a connection attempt may take: libpq would otherwise wait on
 * an unreachable host for as long as TCP does. The location's own
 * connect_timeout wins (it comes later in the list). */
#define CONNECT_TIMEOUT "10"

/* A session whose transaction waits on its client this long is ended
 * by the server. An engine's transactions wait on nothing but their own
 * statements; a paused engine (SIGSTOP, a frozen VM) would otherwise keep
 * the row locks of the transaction it was in, its fence's on its shard
 * rows among them, and another engine's claim (SKIP LOCKED) could not
 * take those shards over until it woke. Below the shortest --lease (3 s),
 * so the locks are gone by the time the leases run out. Sent as a
 * connection option, so a reset connection keeps it; a location's own
 * options replace it. */
#define IDLE_IN_TX_OPTION "-c idle_in_transaction_session_timeout=2000"

/* Migrations of engines that start together run one after the other;
 * the key is 'aemi' in ASCII. */
#define MIGRATE_LOCK_KEY "1634037097"

int pg_connect(const char *conninfo, PGconn **out, char *err, size_t errlen)
{
	static const char *const keys[] = {"connect_timeout", "application_name", "options",
					   "dbname", NULL};
	const char *values[] = {CONNECT_TIMEOUT, "alert-exec", IDLE_IN_TX_OPTION, conninfo, NULL};
	char shown[512];
	char msg[400];
	PGconn *conn = PQconnectdbParams(keys, values, 1);

	*out = NULL;
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "database %s: %s",
			 store_redact_location(shown, sizeof(shown), conninfo),
			 pg_message(conn, msg, sizeof(msg)));
		PQfinish(conn);
		return -1;
	}
	*out = conn;
	return 0;
}

int pg_latest_version(void)
{
	int v = 0;

	for (size_t i = 0; i < pg_migration_count; i++)
		if (pg_migrations[i].version > v)
			v = pg_migrations[i].version;
	return v;
}

/* Runs sql (any number of statements); -1 with "<what>: ..." in err. */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	char msg[400];
	PGresult *r = PQexec(conn, sql);
	ExecStatusType s = PQresultStatus(r);

	PQclear(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return 0;
	snprintf(err, errlen, "%s: %s", what, pg_message(conn, msg, sizeof(msg)));
	return -1;
}

/* The schema's version: 0 for a database without schema_version. */
int pg_schema_version(PGconn *conn, int *out, char *err, size_t errlen)
{
	char msg[400];
	/* Two steps: a query naming a missing table fails as it is parsed. */
	PGresult *r = PQexec(conn, "SELECT to_regclass('schema_version') IS NOT NULL");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "read schema version: %s",
			 pg_message(conn, msg, sizeof(msg)));
		PQclear(r);
		return -1;
	}
	*out = 0;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		PQclear(r);
		return 0;
	}
	PQclear(r);
	r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_version");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "read schema version: %s",
			 pg_message(conn, msg, sizeof(msg)));
		PQclear(r);
		return -1;
	}
	*out = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* In the migration's transaction: the migrations above current. */
static int apply(PGconn *conn, int current, char *err, size_t errlen)
{
	for (size_t i = 0; i < pg_migration_count; i++) {
		const struct db_migration *m = &pg_migrations[i];
		char what[160];
		char version[16];
		const char *params[2] = {version, m->name};
		PGresult *r;
		ExecStatusType s;

		if (m->version <= current)
			continue;
		snprintf(what, sizeof(what), "migration %s", m->name);
		if (exec_ok(conn, m->sql, what, err, errlen) != 0)
			return -1;
		snprintf(version, sizeof(version), "%d", m->version);
		r = PQexecParams(conn, "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
				 2, NULL, params, NULL, NULL, 0);
		s = PQresultStatus(r);
		PQclear(r);
		if (s != PGRES_COMMAND_OK) {
			char msg[400];

			snprintf(err, errlen, "%s: record version: %s", what,
				 pg_message(conn, msg, sizeof(msg)));
			return -1;
		}
	}
	return 0;
}

int pg_migrate(PGconn *conn, char *err, size_t errlen)
{
	int current = 0;
	int latest = pg_latest_version();

	if (exec_ok(conn,
		    "BEGIN ISOLATION LEVEL READ COMMITTED; "
		    "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")",
		    "migrate", err, errlen) != 0)
		return STORE_ERR;
	if (pg_schema_version(conn, &current, err, errlen) != 0)
		goto fail;
	if (current > latest) {
		snprintf(err, errlen,
			 "database schema version %d is newer than this binary knows (%d): "
			 "upgrade alert-exec",
			 current, latest);
		PQclear(PQexec(conn, "ROLLBACK"));
		return STORE_ERR_NEWER;
	}
	if (apply(conn, current, err, errlen) != 0)
		goto fail;
	if (exec_ok(conn, "COMMIT", "commit migrations", err, errlen) != 0)
		goto fail;
	return STORE_OK;
fail:
	PQclear(PQexec(conn, "ROLLBACK"));
	return STORE_ERR;
}
