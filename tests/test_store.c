/* Tests of the store: the same contract cases against SQLite and, when
 * built with libpq and run as "test_store postgresql", against PostgreSQL
 * (the scratch server tests/pg/pg-scratch.sh started, its URI in the file
 * ALERT_EXEC_PG_URI_FILE names; each case in a database of its own).
 * Cases about one backend's own machinery (SQLite's file, lock, pages and
 * query plans; PostgreSQL's connection errors) are named for it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifdef ALERT_EXEC_POSTGRES
#include <libpq-fe.h>
#endif

#include "hash.h"
#include "store_sqlite_db.h"
#include "rules.h"
#include "store.h"
#ifdef ALERT_EXEC_POSTGRES
#include "store_pg.h"
#endif

#define T0 INT64_C(1800000000000)

/* The backend under test: 0 SQLite, 1 PostgreSQL (the server's URI in
 * pg_admin_uri, a database of it every case can create others from). */
static int on_pg;
static char pg_admin_uri[512];

struct fixture {
	char dir[64];
	char path[128];
	char location[600]; /* what --db would be: path, or a database's URI */
	char pg_name[64];   /* the case's own database on PostgreSQL */
	sqlite3 *db;        /* the test's own look at the database */
#ifdef ALERT_EXEC_POSTGRES
	PGconn *pg;
#endif
};

#ifdef ALERT_EXEC_POSTGRES
static PGconn *pg_connect_or_fail(const char *uri)
{
	PGconn *c = PQconnectdb(uri);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", uri, PQerrorMessage(c));
	return c;
}

static void pg_admin(const char *sql)
{
	PGconn *c = pg_connect_or_fail(pg_admin_uri);
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* The URI of database name on the scratch server: its admin URI with
 * the database's name in place of "postgres". */
static void pg_uri_of(const char *name, char *out, size_t outlen)
{
	const char *q = strchr(pg_admin_uri, '?');

	snprintf(out, outlen, "postgresql:///%s%s", name, q ? q : "");
}
#endif

static int setup(void **state)
{
	static int cases;
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/a.db", f->dir);
	snprintf(f->location, sizeof(f->location), "%s", f->path);
#ifdef ALERT_EXEC_POSTGRES
	if (on_pg) {
		char sql[128];

		snprintf(f->pg_name, sizeof(f->pg_name), "store_%ld_%d", (long)getpid(), ++cases);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->pg_name);
		pg_admin(sql);
		pg_uri_of(f->pg_name, f->location, sizeof(f->location));
	}
#endif
	(void)cases;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	sqlite3_close(f->db);
#ifdef ALERT_EXEC_POSTGRES
	PQfinish(f->pg);
	if (on_pg) {
		snprintf(cmd, sizeof(cmd), "DROP DATABASE %s WITH (FORCE)", f->pg_name);
		pg_admin(cmd);
	}
#endif
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static sqlite3 *open_migrated(const char *path, int version)
{
	sqlite3 *db = NULL;
	char err[256];

	assert_int_equal(db_open(path, 0, &db, err, sizeof(err)), DB_OK);
	if (db_migrate(db, version, err, sizeof(err)) != DB_OK)
		fail_msg("migrate: %s", err);
	return db;
}

/* A connection to the database at location, readied (migrated) as the
 * engine does at start. */
static struct store *open_store(const char *location)
{
	struct store_lock *lock = NULL;
	struct store *st = NULL;
	char err[256];

	if (store_prepare(location, 0, &lock, err, sizeof(err)) != STORE_OK)
		fail_msg("store_prepare: %s", err);
	store_unlock(lock);
	if (store_open(location, 0, &st, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	return st;
}

/* Lease tokens of the claims the tests make (one thread at a time; the
 * four-thread test has its own). */
static int64_t test_token;

/* Writes a delivery as the delivery worker does; returns the outcome. */
static enum store_outcome deliver_call(struct store *st, const struct store_call *c, int64_t at)
{
	enum store_outcome o = STORE_CALL_WAITS;
	char err[256];

	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_delivered(st, c, at, &o, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	return o;
}

/* Writes a failed attempt (a 5xx unless rejected); returns the outcome. */
static enum store_outcome fail_call(struct store *st, const struct store_call *c, int64_t at,
				    int64_t give_up_ms, int rejected, int maybe_sent)
{
	struct store_failure f = {.at = at, .next_attempt = at + 500, .give_up_ms = give_up_ms,
				  .rejected = rejected, .maybe_sent = maybe_sent,
				  .error = "HTTP 500"};
	enum store_outcome o = STORE_CALL_DELIVERED;
	char err[256];

	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_failed(st, c, &f, &o, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	return o;
}

/* A connection of the test's own to the database of the fixture: what
 * the store wrote is read (and set up) with SQL, as a person would. The
 * SQL of the contract cases is the same on both backends. */
static struct fixture *inspect(struct fixture *f)
{
#ifdef ALERT_EXEC_POSTGRES
	if (on_pg) {
		if (f->pg == NULL)
			f->pg = pg_connect_or_fail(f->location);
		return f;
	}
#endif
	if (f->db == NULL)
		assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
	return f;
}

/* One value of a SQLite connection's query, as an integer. */
static int64_t sqlite_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Runs sql (any number of statements) on the test's own connection;
 * 0 when it ran. */
static int exec_sql(struct fixture *f, const char *sql)
{
#ifdef ALERT_EXEC_POSTGRES
	if (on_pg) {
		PGresult *r = PQexec(inspect(f)->pg, sql);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

		if (!ok)
			print_error("%s: %s", sql, PQerrorMessage(f->pg));
		PQclear(r);
		return ok ? 0 : -1;
	}
#endif
	return sqlite3_exec(inspect(f)->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* The first column of the one row of sql, as text (owned by the caller). */
static char *query_text(struct fixture *f, const char *sql)
{
	char *v;

#ifdef ALERT_EXEC_POSTGRES
	if (on_pg) {
		PGresult *r = PQexec(inspect(f)->pg, sql);

		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
			fail_msg("%s: %s", sql, PQerrorMessage(f->pg));
		v = strdup(PQgetvalue(r, 0, 0));
		PQclear(r);
		return v;
	}
#endif
	{
		sqlite3_stmt *s = NULL;

		if (sqlite3_prepare_v2(inspect(f)->db, sql, -1, &s, NULL) != SQLITE_OK)
			fail_msg("%s: %s", sql, sqlite3_errmsg(f->db));
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		v = strdup(sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
						     : "");
		sqlite3_finalize(s);
	}
	return v;
}

/* The first column of the one row of sql, as an integer (a real is
 * truncated, as SQLite's column_int64 does). */
static int64_t query_int(struct fixture *f, const char *sql)
{
	char *t = query_text(f, sql);
	int64_t v = strchr(t, '.') ? (int64_t)strtod(t, NULL) : strtoll(t, NULL, 10);

	free(t);
	return v;
}

/* The schema as SQLite keeps it, one line per object, sorted. */
static char *schema_of(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);

	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, '') "
		"FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
		-1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		size_t n = strlen(t);

		assert_true(len + n + 2 < cap);
		memcpy(out + len, t, n);
		len += n;
		out[len++] = '\n';
	}
	sqlite3_finalize(s);
	return out;
}

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (!fp)
		fail_msg("open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return buf;
}

static void test_sqlite_schema_file_matches_migrations(void **state)
{
	struct fixture *f = *state;
	char path2[160];
	sqlite3 *a = open_migrated(f->path, 0);
	sqlite3 *b = NULL;
	char *sql = read_file(SOURCE_DIR "/schema/sqlite.sql");
	char *sa, *sb;

	assert_int_equal(sqlite_int(a, "PRAGMA user_version"), db_latest_version());
	snprintf(path2, sizeof(path2), "%s/b.db", f->dir);
	assert_int_equal(sqlite3_open(path2, &b), SQLITE_OK);
	assert_int_equal(sqlite3_exec(b, sql, NULL, NULL, NULL), SQLITE_OK);
	sa = schema_of(a);
	sb = schema_of(b);
	assert_string_equal(sa, sb);
	assert_non_null(strstr(sa, "table alert_state"));
	free(sa);
	free(sb);
	free(sql);
	sqlite3_close(a);
	sqlite3_close(b);
}

/* Rows written at each older version, in that version's schema. Every
 * migration added later must keep them. */
static const struct {
	int version;
	const char *sql;
	const char *count_sql;
	int64_t count;
} old_rows[] = {
	{1,
	 "INSERT INTO alert (id, name, query, interval_ms, repeat_ms, sustain_ms, warn_value,"
	 " warn_message, crit_value, crit_message, created, updated)"
	 " VALUES (1, 'a', 'q', 1000, 3000, 0, 1, 'w', 2, 'c', 0, 0);"
	 "INSERT INTO alert_state (alert_id, state, next_eval, last_notified)"
	 " VALUES (1, 'WARN', 5, 4);"
	 "INSERT INTO outbox (alert_id, kind, message, created, next_attempt)"
	 " VALUES (1, 'notify', 'w', 1, 1);"
	 "INSERT INTO transition (alert_id, at, from_state, to_state, value)"
	 " VALUES (1, 1, 'PASS', 'WARN', 1.5);",
	 "SELECT (SELECT count(*) FROM alert) + (SELECT count(*) FROM alert_state WHERE state = 'WARN')"
	 " + (SELECT count(*) FROM outbox WHERE status = 'pending')"
	 " + (SELECT count(*) FROM transition)",
	 4},
	{2,
	 "INSERT INTO alert (id, name, query, interval_ms, repeat_ms, sustain_ms, warn_value,"
	 " warn_message, crit_value, crit_message, created, updated)"
	 " VALUES (1, 'a', 'q', 1000, 3000, 0, 1, 'w', 2, 'c', 0, 0);"
	 "INSERT INTO alert_state (alert_id, state, next_eval, last_notified, lease_until)"
	 " VALUES (1, 'WARN', 9999999999999, 4, 9999999999999);"
	 "INSERT INTO outbox (alert_id, kind, message, created, next_attempt, is_repeat)"
	 " VALUES (1, 'notify', 'w', 1, 1, 1);"
	 "INSERT INTO outbox (alert_id, kind, message, created, next_attempt, status, delivered)"
	 " VALUES (1, 'notify', 'w', 1, 1, 'delivered', 9), (1, 'resolve', NULL, 1, 7, 'dead', NULL);",
	 /* version 3 dates the end of a finished call: when it was delivered,
	  * or given up (its last next_attempt) */
	 "SELECT (SELECT count(*) FROM alert) + (SELECT count(*) FROM outbox WHERE is_repeat = 1)"
	 " + (SELECT count(*) FROM outbox WHERE status = 'delivered' AND finished = 9)"
	 " + (SELECT count(*) FROM outbox WHERE status = 'dead' AND finished = 7)"
	 " + (SELECT count(*) FROM outbox WHERE status = 'pending' AND finished IS NULL)"
	 /* an evaluation an older version leased and moved on is due now */
	 " + (SELECT count(*) FROM alert_state WHERE next_eval < 9999999999999)"
	 /* and its row lies by the phase of its old schedule */
	 " + (SELECT count(*) FROM alert_state WHERE slot = 999 * 2097152 + 1)",
	 7},
	{3,
	 "INSERT INTO alert (id, name, query, interval_ms, repeat_ms, sustain_ms, warn_value,"
	 " warn_message, crit_value, crit_message, created, updated)"
	 " VALUES (1, 'a', 'q', 1000, 3000, 0, 1, 'w', 2, 'c', 0, 0);"
	 "INSERT INTO alert_state (alert_id, state, next_eval, notify_gave_up)"
	 " VALUES (1, 'WARN', 5, 4);"
	 "INSERT INTO outbox (alert_id, kind, message, created, next_attempt, lease_until,"
	 " lease_token) VALUES (1, 'notify', 'w', 1, 1, 2, 3);",
	 "SELECT (SELECT count(*) FROM alert_state WHERE notify_gave_up = 4)"
	 " + (SELECT count(*) FROM outbox WHERE lease_token = 3)"
	 /* version 4 keeps the version of the definitions, from 0 */
	 " + (SELECT count(*) FROM definitions WHERE version = 0)",
	 3},
	{4,
	 "INSERT INTO alert (id, name, query, interval_ms, repeat_ms, sustain_ms, warn_value,"
	 " warn_message, crit_value, crit_message, created, updated)"
	 " VALUES (1, 'a', 'q', 1000, 3000, 0, 1, 'w', 2, 'c', 0, 0);"
	 "INSERT INTO alert_state (alert_id, state, next_eval) VALUES (1, 'PASS', 5);"
	 "UPDATE definitions SET version = 7;",
	 "SELECT (SELECT count(*) FROM alert_state) + (SELECT version FROM definitions)",
	 8},
};

static void test_sqlite_migrate_every_older_version(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(sizeof(old_rows) / sizeof(old_rows[0]), (size_t)db_latest_version());
	for (size_t i = 0; i < sizeof(old_rows) / sizeof(old_rows[0]); i++) {
		char path[160];
		sqlite3 *db;
		char err[256];
		char *latest;
		sqlite3 *ref;

		snprintf(path, sizeof(path), "%s/v%d.db", f->dir, old_rows[i].version);
		db = open_migrated(path, old_rows[i].version);
		assert_int_equal(sqlite_int(db, "PRAGMA user_version"), old_rows[i].version);
		assert_int_equal(sqlite3_exec(db, old_rows[i].sql, NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(db_migrate(db, 0, err, sizeof(err)), DB_OK);
		assert_int_equal(sqlite_int(db, "PRAGMA user_version"), db_latest_version());
		assert_int_equal(sqlite_int(db, old_rows[i].count_sql), old_rows[i].count);
		/* and the result has the current schema */
		ref = open_migrated(f->path, 0);
		latest = schema_of(ref);
		char *mine = schema_of(db);
		assert_string_equal(mine, latest);
		free(mine);
		free(latest);
		sqlite3_close(ref);
		sqlite3_close(db);
	}
}

static void test_sqlite_newer_version_refused(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = open_migrated(f->path, 0);
	char err[256] = "";
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", db_latest_version() + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(db_migrate(db, 0, err, sizeof(err)), DB_ERR_NEWER);
	assert_non_null(strstr(err, "newer"));
	sqlite3_close(db);
}

static void test_sqlite_garbage_file_refused(void **state)
{
	struct fixture *f = *state;
	FILE *fp = fopen(f->path, "wb");
	sqlite3 *db = NULL;
	char err[256] = "";

	for (int i = 0; i < 4096; i++)
		fputc((i * 7919) & 0xff, fp);
	fclose(fp);
	assert_int_equal(db_open(f->path, 0, &db, err, sizeof(err)), DB_ERR);
	assert_null(db);
	assert_non_null(strstr(err, "not a database"));
}

static void test_sqlite_corrupt_page_refused(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->path);
	struct alert_def d[200];
	char names[200][16];
	struct store_sync_stats stats;
	sqlite3 *db = NULL;
	char err[256] = "";
	FILE *fp;
	int64_t pages;

	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "alert-%d", i);
		d[i] = (struct alert_def){.name = names[i], .query = "q", .interval_ms = 1000,
					  .repeat_ms = 1000, .warn_message = "w",
					  .crit_message = "c"};
	}
	assert_int_equal(store_sync_defs(st, d, 200, NULL, 0, T0, 1, &stats, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_exec(inspect(f)->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
				      NULL), SQLITE_OK);
	pages = sqlite_int(inspect(f)->db, "PRAGMA page_count");
	assert_true(pages > 8);
	store_close(st);
	assert_int_equal(db_open(f->path, 0, &db, err, sizeof(err)), DB_OK);
	assert_int_equal(db_check(db, err, sizeof(err)), DB_OK);
	sqlite3_close(db);
	/* garbage over a page in the middle: the header is fine, so the file
	 * opens; the check finds it */
	fp = fopen(f->path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)(pages / 2) * 4096, SEEK_SET), 0);
	for (int i = 0; i < 4096; i++)
		fputc((i * 7919 + 13) & 0xff, fp);
	fclose(fp);
	assert_int_equal(db_open(f->path, 0, &db, err, sizeof(err)), DB_OK);
	assert_int_equal(db_check(db, err, sizeof(err)), DB_ERR);
	assert_non_null(strstr(err, "file is corrupt: "));
	assert_null(strchr(err, '\n'));
	sqlite3_close(db);
}

static void test_sqlite_lock_is_exclusive(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	int fd = db_lock(f->path, err, sizeof(err));
	char want[64];

	assert_true(fd >= 0);
	/* flock locks belong to the open file description: a second open in
	 * this process conflicts like another process would. */
	assert_int_equal(db_lock(f->path, err, sizeof(err)), DB_ERR_LOCKED);
	snprintf(want, sizeof(want), "pid %ld", (long)getpid());
	assert_non_null(strstr(err, want));
	close(fd);
	fd = db_lock(f->path, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

static struct alert_def make_def(char *name, int64_t interval_ms)
{
	struct alert_def d = {
		.name = name,
		.query = "q",
		.interval_ms = interval_ms,
		.repeat_ms = 3000,
		.sustain_ms = 0,
		.warn_value = 100,
		.warn_message = "warning",
		.crit_value = 200,
		.crit_message = "critical",
	};
	return d;
}

#define MANY 400

struct defs {
	struct alert_def d[MANY];
	char names[MANY][32];
};

static void make_defs(struct defs *ds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(ds->names[i], sizeof(ds->names[i]), "alert-%zu", i + 1);
		ds->d[i] = make_def(ds->names[i], 1000);
	}
}

static void sync_defs(struct store *st, const struct alert_def *d, size_t n, int64_t now, int due_now,
		 struct store_sync_stats *stats)
{
	char err[256];
	struct store_sync_stats ignored;

	if (store_sync_defs(st, d, n, NULL, 0, now, due_now, stats ? stats : &ignored, err,
			    sizeof(err)) != 0)
		fail_msg("sync: %s", err);
}

static void test_sync_add_change_retire(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct store_sync_stats s;
	struct fixture *db = inspect(f);
	char err[256];

	make_defs(ds, 3);
	sync_defs(st, ds->d, 3, T0, 0, &s);
	assert_int_equal(s.added, 3);
	/* alert-2 fires */
	assert_int_equal(exec_sql(db, "UPDATE alert_state SET state = 'CRITICAL' "
				      "WHERE alert_id = (SELECT id FROM alert WHERE name = 'alert-2')"), 0);
	ds->d[0].warn_value = 50;  /* alert-1 changes */
	sync_defs(st, ds->d, 1, T0 + 10, 0, &s);  /* alert-2 and alert-3 disappear */
	assert_int_equal(s.changed, 1);
	assert_int_equal(s.retired, 2);
	assert_int_equal(query_int(db, "SELECT warn_value FROM alert WHERE name = 'alert-1'"), 50);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox o JOIN alert a ON a.id = o.alert_id "
				   "WHERE a.name = 'alert-2' AND o.kind = 'resolve'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_status WHERE state <> 'PASS'"), 0);
	int64_t n = 0, retired = 0;
	assert_int_equal(store_count_alerts(st, &n, &retired, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(retired, 2);
	/* a retired alert is never due: the live one sets the next pick, and a
	 * pick a hundred years on hands out only the live one */
	int64_t next = 0;
	int64_t live_next = query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = "
				      "(SELECT id FROM alert WHERE name = 'alert-1')");
	assert_int_equal(store_next_pick(st, NULL, NULL, 0, &next, err, sizeof(err)), 0);
	assert_int_equal(next, live_next);
	struct store_due due[4];
	size_t picked = 9;
	memset(due, 0, sizeof(due));
	assert_int_equal(store_pick_due(st, T0 + INT64_C(100) * 365 * 86400000, NULL, NULL, 0, due,
					4, &picked, err, sizeof(err)), 0);
	assert_int_equal(picked, 1);
	assert_string_equal(due[0].def.name, "alert-1");
	store_due_clear(&due[0]);
	/* it comes back */
	sync_defs(st, ds->d, 3, T0 + 20, 1, &s);
	assert_int_equal(s.revived, 2);
	assert_int_equal(s.unchanged, 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert WHERE retired IS NULL"), 3);
	free(ds);
	store_close(st);
}

/* An entry that turns invalid keeps its alert: a firing one is not resolved. */
static void test_sync_keeps_invalid_entries(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct store_sync_stats s;
	struct fixture *db = inspect(f);
	const char *keep[] = {"alert-2", "never-stored"};
	char err[256];

	make_defs(ds, 3);
	sync_defs(st, ds->d, 3, T0, 0, &s);
	assert_int_equal(exec_sql(db, "UPDATE alert_state SET state = 'WARN' "
				      "WHERE alert_id = (SELECT id FROM alert WHERE name = 'alert-2')"), 0);
	assert_int_equal(store_sync_defs(st, ds->d, 1, keep, 2, T0 + 10, 0, &s, err, sizeof(err)), 0);
	assert_int_equal(s.retired, 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert WHERE retired IS NULL"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_status WHERE name = 'alert-2' "
				   "AND state = 'WARN' AND retired = 0"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert WHERE name = 'never-stored'"), 0);
	free(ds);
	store_close(st);
}

struct in_flight {
	char held[MANY + 1];
	size_t n;
};

static int held(int64_t alert_id, void *arg)
{
	const struct in_flight *f = arg;

	return alert_id >= 1 && alert_id <= MANY && f->held[alert_id];
}

/* Picks up to max due alerts at now, checks none is held, and holds them. */
static size_t pick(struct store *st, int64_t now, struct in_flight *f, struct store_due *due,
		   size_t max)
{
	size_t n = 0;
	char err[256];

	assert_int_equal(store_pick_due(st, now, held, f, f->n, due, max, &n, err, sizeof(err)),
			 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(due[i].alert_id >= 1 && due[i].alert_id <= MANY);
		assert_int_equal(f->held[due[i].alert_id], 0);
		assert_non_null(due[i].def.name);
		assert_true(due[i].version > 0);
		f->held[due[i].alert_id] = 1;
		f->n++;
	}
	return n;
}

/* Writes the evaluation of a picked alert as the scheduler does, and
 * lets go of it. */
static void write_eval(struct store *st, struct in_flight *f, struct store_due *d, int64_t at)
{
	struct rules_state s;
	struct rules_result r;
	int64_t next = 0;
	enum store_eval_check check = STORE_EVAL_RETIRED;
	char err[256];

	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_eval_get(st, d, &s, &next, &check, err, sizeof(err)), 0);
	assert_int_equal(check, STORE_EVAL_CURRENT);
	assert_true(next <= at);
	next = rules_next_eval(next, d->def.interval_ms, at);
	rules_step(&d->def, &s, 1.0, at, &r);
	assert_int_equal(store_eval_put_ok(st, d->alert_id, &r.next, 1.0, at, next, err,
					   sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	f->held[d->alert_id] = 0;
	f->n--;
}

/* The evaluation scheduler's pick writes nothing: it leaves out the alerts
 * it holds (in flight), never hands one out twice, and an alert picked
 * but never written stays due, so a crash leaves it due at the next start. */
static void test_pick_never_hands_out_an_alert_in_flight(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct in_flight *fl = calloc(1, sizeof(*fl));
	struct store_due *due = calloc(MANY, sizeof(*due));
	size_t n, got = 0;
	int64_t next = 0;
	char err[256];

	make_defs(ds, MANY);
	sync_defs(st, ds->d, MANY, T0, 1, NULL);
	/* batches of 7 until everything due is held */
	while ((n = pick(st, T0 + 500, fl, due + got, 7)) > 0)
		got += n;
	assert_int_equal(got, MANY);
	assert_int_equal(fl->n, MANY);
	assert_int_equal(store_next_pick(st, held, fl, fl->n, &next, err, sizeof(err)), 0);
	assert_int_equal(next, INT64_MAX);
	/* picking wrote nothing */
	assert_int_equal(query_int(inspect(f), "SELECT count(*) FROM alert_state "
				   "WHERE next_eval <= 1800000000500"), MANY);
	/* the first 100 are written: due again an interval later, not before */
	for (size_t i = 0; i < 100; i++)
		write_eval(st, fl, &due[i], T0 + 600);
	assert_int_equal(pick(st, T0 + 700, fl, due + MANY - 1, 1), 0);
	assert_int_equal(store_next_pick(st, held, fl, fl->n, &next, err, sizeof(err)), 0);
	assert_true(next > T0 + 700);
	/* the process dies holding the other 300: a new one finds them due,
	 * and only them */
	for (size_t i = 0; i < MANY; i++)
		store_due_clear(&due[i]);
	memset(fl, 0, sizeof(*fl));
	store_close(st);
	st = open_store(f->location);
	got = 0;
	while ((n = pick(st, T0 + 700, fl, due + got, 64)) > 0)
		got += n;
	assert_int_equal(got, MANY - 100);
	for (size_t i = 0; i < got; i++)
		store_due_clear(&due[i]);
	free(due);
	free(fl);
	free(ds);
	store_close(st);
}

#define Q_ALERTS 20
#define Q_ROWS 10

struct deliverer {
	const char *path;
	pthread_mutex_t *mu;
	int *in_flight;              /* per alert */
	int64_t *last_delivered;     /* per alert: last delivered outbox id */
	int *order_violations;
	int *overlaps;
	int failed;
	unsigned seed;
};

static void *deliver_thread(void *arg)
{
	struct deliverer *d = arg;
	struct store *st = NULL;
	char err[256];
	int idle = 0;
	int64_t token = (int64_t)d->seed << 32;

	if (store_open(d->path, 0, &st, err, sizeof(err)) != 0) {
		d->failed = 1;
		return NULL;
	}
	while (idle < 200) {
		struct store_call calls[3];
		size_t n = 0;

		if (store_claim_calls(st, T0, T0, 60000, ++token, calls, 3, &n, err,
				      sizeof(err)) != 0) {
			d->failed = 1;
			break;
		}
		if (n == 0) {
			int64_t left = 0;

			if (store_count_pending(st, &left, err, sizeof(err)) != 0 || left == 0)
				break;
			idle++;
			usleep(1000);
			continue;
		}
		idle = 0;
		for (size_t i = 0; i < n; i++) {
			struct store_call *c = &calls[i];
			int fail_now = rand_r(&d->seed) % 4 == 0;
			struct store_failure failure = {.at = T0, .next_attempt = T0,
							.give_up_ms = INT64_C(86400000),
							.error = "HTTP 500"};
			enum store_outcome o;

			pthread_mutex_lock(d->mu);
			if (d->in_flight[c->alert_id]++)
				(*d->overlaps)++;
			pthread_mutex_unlock(d->mu);
			usleep(100);
			pthread_mutex_lock(d->mu);
			d->in_flight[c->alert_id]--;
			if (!fail_now) {
				if (c->id <= d->last_delivered[c->alert_id])
					(*d->order_violations)++;
				d->last_delivered[c->alert_id] = c->id;
			}
			pthread_mutex_unlock(d->mu);
			if (store_begin(st, err, sizeof(err)) != 0 ||
			    (fail_now ? store_call_failed(st, c, &failure, &o, err, sizeof(err))
				      : store_call_delivered(st, c, T0, &o, err, sizeof(err))) != 0 ||
			    store_commit(st, err, sizeof(err)) != 0 ||
			    o != (fail_now ? STORE_CALL_WAITS : STORE_CALL_DELIVERED))
				d->failed = 1;
			store_call_clear(c);
		}
	}
	store_close(st);
	return NULL;
}

static void test_outbox_order_under_four_threads(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct deliverer d[4];
	pthread_t t[4];
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	int in_flight[Q_ALERTS + 1] = {0};
	int64_t last[Q_ALERTS + 1] = {0};
	int violations = 0, overlaps = 0;
	char err[256];
	struct fixture *db = inspect(f);

	make_defs(ds, Q_ALERTS);
	sync_defs(st, ds->d, Q_ALERTS, T0 - 1000, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int r = 0; r < Q_ROWS; r++)
		for (int64_t a = 1; a <= Q_ALERTS; a++)
			assert_int_equal(store_call_add(st, a, r % 2 ? STORE_RESOLVE : STORE_NOTIFY,
							  r % 2 ? NULL : "warning", T0 - 1000 + r,
							  err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++) {
		d[i] = (struct deliverer){.path = f->location, .mu = &mu, .in_flight = in_flight,
					  .last_delivered = last, .order_violations = &violations,
					  .overlaps = &overlaps, .seed = (unsigned)i + 1};
		assert_int_equal(pthread_create(&t[i], NULL, deliver_thread, &d[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++)
		assert_false(d[i].failed);
	assert_int_equal(violations, 0);
	assert_int_equal(overlaps, 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE status = 'delivered'"),
			 Q_ALERTS * Q_ROWS);
	/* a delivered notify sets last_notified */
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE last_notified = 1800000000000"),
			 Q_ALERTS);
	store_close(st);
	free(ds);
}

static void test_leases_released_at_start(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct store_call calls[10];
	size_t m = 0;
	char err[256];
	struct fixture *db = inspect(f);

	make_defs(ds, 10);
	sync_defs(st, ds->d, 10, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "m", T0, err,
					  sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(store_claim_calls(st, T0, T0, 60000, ++test_token, calls, 10, &m, err, sizeof(err)), 0);
	assert_int_equal(m, 1);
	/* a second claim sees nothing: all leased */
	size_t k = 0;
	assert_int_equal(store_claim_calls(st, T0 + 1, T0 + 1, 60000, ++test_token, calls + 1, 9, &k, err,
					   sizeof(err)), 0);
	assert_int_equal(k, 0);
	/* the process dies; the next one starts */
	assert_int_equal(store_release_leases(st, T0 + 200, 60000, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE lease_until IS NOT NULL"), 0);
	assert_int_equal(store_claim_calls(st, T0 + 300, T0 + 300, 60000, ++test_token, calls + 1, 9, &k, err,
					   sizeof(err)), 0);
	assert_int_equal(k, 1);
	assert_int_equal(calls[1].id, calls[0].id);
	store_call_clear(&calls[0]);
	store_call_clear(&calls[1]);
	free(ds);
	store_close(st);
}

/* Claims up to max calls due at `at`, as a delivery worker does; returns
 * how many. */
static size_t claim_calls_at(struct store *st, int64_t at, struct store_call *calls, size_t max)
{
	size_t m = 0;
	char err[256];

	assert_int_equal(store_claim_calls(st, at, at, 60000, ++test_token, calls, max, &m, err, sizeof(err)), 0);
	return m;
}

/* A delivery worker's look at a claimed repeat: 1 when it was dropped. */
static int drop_if_superseded(struct store *st, const struct store_call *c)
{
	int dropped = -1;
	char err[256];

	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_drop_superseded(st, c, &dropped, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	return dropped;
}

/* A state change drops the alert's repeats still waiting: they repeat a
 * state the alert has left. A claimed one may be on its way to the
 * server, so the change leaves it; its delivery worker drops it before
 * sending, or after a failed attempt, but not once it went out. Change
 * calls stay, and so do other alerts' repeats. */
static void test_state_change_drops_waiting_repeats(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct store_call calls[4];
	size_t m = 0;
	char err[256];
	struct fixture *db = inspect(f);

	make_defs(ds, 3);
	sync_defs(st, ds->d, 3, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	/* alert 1: went CRITICAL (delivered), then a repeat; alerts 2, 3: a repeat */
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "c", T0, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(exec_sql(db, "UPDATE outbox SET status = 'delivered'"), 0);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add_repeat(st, 1, "c", T0 + 3000, err, sizeof(err)), 0);
	assert_int_equal(store_call_add_repeat(st, 2, "c", T0 + 3000, err, sizeof(err)), 0);
	assert_int_equal(store_call_add_repeat(st, 3, "c", T0 + 3000, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	/* the repeats of alerts 1 and 2 claimed by a delivery worker */
	m = claim_calls_at(st, T0 + 3000, calls, 2);
	assert_int_equal(m, 2);
	assert_true(calls[0].repeat && calls[1].repeat);
	assert_int_equal(calls[0].alert_id + calls[1].alert_id, 3);
	/* all three alerts change state before the worker gets to them */
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "w", T0 + 3100, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 2, STORE_NOTIFY, "w", T0 + 3100, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 3, STORE_NOTIFY, "w", T0 + 3100, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	/* the unclaimed repeat (alert 3) is gone, the claimed ones are not */
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 3 AND "
				       "message = 'c'"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE message = 'c' AND "
				       "status = 'pending'"), 2);
	for (size_t i = 0; i < m; i++) {
		struct store_call *c = &calls[i];

		if (c->alert_id == 1) {
			/* the worker looks before sending: superseded, dropped */
			assert_int_equal(drop_if_superseded(st, c), 1);
		} else {
			/* alert 2's went out before the change: delivered, kept */
			assert_int_equal(deliver_call(st, c, T0 + 3150), STORE_CALL_DELIVERED);
		}
		store_call_clear(c);
	}
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 1 AND "
				       "message = 'c'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 2 AND "
				       "message = 'c' AND status = 'delivered'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE status = 'pending' AND "
				       "message = 'w' AND is_repeat = 0"), 3);
	/* a change call is never dropped, by a later change or by the worker */
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_RESOLVE, NULL, T0 + 4000, err, sizeof(err)),
			 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0 + 4000, calls, 1), 1);
	assert_false(calls[0].repeat);
	assert_int_equal(drop_if_superseded(st, &calls[0]), 0);
	store_call_clear(&calls[0]);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE status = 'pending'"), 4);
	free(ds);
	store_close(st);
}

/* A repeat that failed and waits in backoff when its state changes is
 * dropped by the change if unclaimed, and by its worker after an attempt
 * that failed while the change came. A repeat that was claimed when the
 * engine stopped, or whose attempt a stop cut short, may have reached the
 * server: it is sent again and no longer dropped. */
static void test_repeats_that_may_have_gone_out_stay(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct store_call calls[4];
	size_t m = 0;
	char err[256];
	struct fixture *db = inspect(f);

	make_defs(ds, 3);
	sync_defs(st, ds->d, 3, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int64_t id = 1; id <= 3; id++)
		assert_int_equal(store_call_add_repeat(st, id, "c", T0, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	m = claim_calls_at(st, T0, calls, 4);
	assert_int_equal(m, 3);
	for (size_t i = 0; i < m; i++) {
		struct store_call *c = &calls[i];

		if (c->alert_id == 1) {
			/* refused with a 5xx: it did not go through, waits in backoff */
			assert_int_equal(fail_call(st, c, T0, INT64_C(86400000), 0, 0),
					 STORE_CALL_WAITS);
		} else if (c->alert_id == 2) {
			/* cut short by a stop */
			assert_int_equal(store_begin(st, err, sizeof(err)), 0);
			assert_int_equal(store_call_release(st, c, 1, err, sizeof(err)), 0);
			assert_int_equal(store_commit(st, err, sizeof(err)), 0);
		}
		/* alert 3: still leased when the engine dies */
		store_call_clear(c);
	}
	store_close(st);
	st = open_store(f->location);
	db = inspect(f);
	assert_int_equal(store_release_leases(st, T0 + 100, 60000, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE is_repeat = 1"), 1);
	/* all three change state */
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int64_t id = 1; id <= 3; id++)
		assert_int_equal(store_call_add(st, id, STORE_RESOLVE, NULL, T0 + 200, err,
						  sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	/* alert 1's failed repeat is gone; the other two go out first */
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 1 AND "
				       "kind = 'notify'"), 0);
	m = claim_calls_at(st, T0 + 600, calls, 4);
	assert_int_equal(m, 3);
	for (size_t i = 0; i < m; i++) {
		struct store_call *c = &calls[i];

		assert_int_equal(c->kind, c->alert_id == 1 ? STORE_RESOLVE : STORE_NOTIFY);
		assert_false(c->repeat);
		store_call_clear(c);
	}
	/* a repeat whose attempt fails after a change came: dropped with it */
	assert_int_equal(exec_sql(db, "UPDATE outbox SET lease_until = NULL; "
				      "DELETE FROM outbox"), 0);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add_repeat(st, 1, "c", T0 + 1000, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0 + 1000, calls, 4), 1);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_RESOLVE, NULL, T0 + 1100, err, sizeof(err)),
			 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	/* its attempt failed meanwhile: the worker drops it */
	assert_int_equal(drop_if_superseded(st, &calls[0]), 1);
	store_call_clear(&calls[0]);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox"), 1);
	free(ds);
	store_close(st);
}

/* The wall clock went back a day while no engine ran: every stored time is
 * a day ahead. The start brings them back so nothing waits a day. */
static void test_start_after_clock_went_back(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	const int64_t day = INT64_C(86400000);
	int64_t retired_next;
	struct store_counters before, after;
	char err[256];

	make_defs(ds, 4);
	ds->d[1].interval_ms = 15000;
	sync_defs(st, ds->d, 4, T0, 1, NULL);
	/* alert-4 is retired */
	sync_defs(st, ds->d, 3, T0, 1, NULL);
	retired_next = query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 4");
	/* 1 and 2: a day ahead; 3: a normal schedule, left alone */
	assert_int_equal(exec_sql(db, "UPDATE alert_state SET next_eval = 1800086400700, last_notified = 1800086400000, "
		"  last_ok = 1800086399000, last_eval = 1800086399000, warn_since = 1800086390000, "
		"  crit_since = 1800086395000, state = 'CRITICAL' WHERE alert_id = 1;"
		"UPDATE alert_state SET next_eval = 1800086412345, last_notified = NULL "
		"  WHERE alert_id = 2;"
		"UPDATE alert_state SET next_eval = 1800000000400, last_notified = 1799999990000, "
		"  last_ok = 1799999999000 WHERE alert_id = 3;"
		"INSERT INTO outbox (alert_id, kind, message, created, next_attempt, attempts) VALUES "
		"  (1, 'notify', 'critical', 1800086390000, 1800086420000, 3),"
		"  (3, 'notify', 'critical', 1799999990000, 1800000030000, 5);"), 0);
	assert_int_equal(store_release_leases(st, T0, 60000, err, sizeof(err)), 0);
	/* within the next interval, at the same phase */
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 1"),
			 T0 + (day + 700) % 1000);
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 2"),
			 T0 + (day + 12345) % 15000);
	assert_int_equal(query_int(db, "SELECT last_notified FROM alert_state WHERE alert_id = 1"), T0);
	assert_int_equal(query_int(db, "SELECT last_ok FROM alert_state WHERE alert_id = 1"), T0);
	assert_int_equal(query_int(db, "SELECT last_eval FROM alert_state WHERE alert_id = 1"), T0);
	assert_int_equal(query_int(db, "SELECT warn_since FROM alert_state WHERE alert_id = 1"), T0);
	assert_int_equal(query_int(db, "SELECT crit_since FROM alert_state WHERE alert_id = 1"), T0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE alert_id = 2 "
				       "AND last_notified IS NULL"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE alert_id = 1 "
				       "AND state = 'CRITICAL'"), 1);
	/* untouched */
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 3"),
			 T0 + 400);
	assert_int_equal(query_int(db, "SELECT last_notified FROM alert_state WHERE alert_id = 3"),
			 T0 - 10000);
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 4"),
			 retired_next);
	/* a pending call waits at most the longest backoff; its age is not
	 * in the future */
	assert_int_equal(query_int(db, "SELECT next_attempt FROM outbox WHERE alert_id = 1"),
			 T0 + 60000);
	assert_int_equal(query_int(db, "SELECT created FROM outbox WHERE alert_id = 1"), T0);
	assert_int_equal(query_int(db, "SELECT attempts FROM outbox WHERE alert_id = 1"), 3);
	assert_int_equal(query_int(db, "SELECT next_attempt FROM outbox WHERE alert_id = 3"),
			 T0 + 30000);
	assert_int_equal(query_int(db, "SELECT created FROM outbox WHERE alert_id = 3"), T0 - 10000);
	/* a second start changes nothing: its commit writes no row */
	store_counters(st, &before);
	assert_int_equal(store_release_leases(st, T0, 60000, err, sizeof(err)), 0);
	store_counters(st, &after);
	assert_int_equal(after.rows, before.rows);
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 1"),
			 T0 + 700);
	free(ds);
	store_close(st);
}

static void test_prune_keeps_pending(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	int64_t deleted = 0;
	char err[256];

	make_defs(ds, 2);
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(exec_sql(db, "INSERT INTO outbox (alert_id, kind, created, next_attempt, status, delivered) VALUES"
		" (1, 'resolve', 100, 100, 'delivered', 150),"
		" (1, 'resolve', 100, 100, 'dead', NULL),"
		" (1, 'resolve', 100, 100, 'pending', NULL),"
		" (2, 'resolve', 1800000000000, 1800000000000, 'delivered', 1800000000000);"
		"INSERT INTO transition (alert_id, at, from_state, to_state) VALUES"
		" (1, 100, 'PASS', 'WARN'), (1, 1800000000000, 'WARN', 'PASS');"), 0);
	assert_int_equal(exec_sql(db, "UPDATE outbox SET finished = coalesce(delivered, 120) "
				      "WHERE status <> 'pending'"), 0);
	assert_int_equal(store_prune(st, T0 - 1000, 100, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE status = 'pending'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM transition"), 1);
	free(ds);
	store_close(st);
}

/* Calls are pruned by when they finished (delivered or given up), not by
 * when they were created, through the index on that time, a batch at a
 * time. */
static void test_prune_goes_by_finished(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	struct store_call c;
	const int64_t day = INT64_C(86400000);
	int64_t deleted = 0;
	sqlite3_stmt *plan = NULL;
	int uses_index = 0;
	char err[256];

	make_defs(ds, 2);
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	/* created six days before it was delivered, a day ago */
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "w", T0 - 7 * day, err,
					  sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0 - day, &c, 1), 1);
	assert_int_equal(deliver_call(st, &c, T0 - day), STORE_CALL_DELIVERED);
	store_call_clear(&c);
	/* given up a day ago, after waiting a week */
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 2, STORE_RESOLVE, NULL, T0 - 8 * day, err,
					  sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0 - day, &c, 1), 1);
	assert_int_equal(fail_call(st, &c, T0 - day, 7 * day, 0, 0), STORE_CALL_DEAD);
	store_call_clear(&c);
	/* a retention of two days keeps both */
	assert_int_equal(store_prune(st, T0 - 2 * day, 100, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox"), 2);
	/* half a day: both go, one per batch of 1 */
	assert_int_equal(store_prune(st, T0 - day / 2, 1, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 1);
	assert_int_equal(store_prune(st, T0 - day / 2, 1, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox"), 0);
	/* the finished calls are found through their index (SQLite's plan;
	 * PostgreSQL's planner scans a table this small whatever its indexes) */
	if (!on_pg) {
		assert_int_equal(sqlite3_prepare_v2(db->db, "EXPLAIN QUERY PLAN SELECT id FROM "
						    "outbox WHERE status <> 'pending' AND "
						    "finished < 5 LIMIT 10", -1, &plan, NULL),
				 SQLITE_OK);
		while (sqlite3_step(plan) == SQLITE_ROW)
			if (strstr((const char *)sqlite3_column_text(plan, 3), "outbox_finished"))
				uses_index = 1;
		sqlite3_finalize(plan);
		assert_true(uses_index);
	}
	free(ds);
	store_close(st);
}

/* A worker that stalled past its lease, while another claimed the same
 * call again, writes nothing: the newer claim's outcome stands. */
static void test_lease_token_fences_outcomes(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	struct store_call first, second;
	size_t n = 0;
	char err[256];

	make_defs(ds, 1);
	sync_defs(st, ds->d, 1, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "w", T0, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(store_claim_calls(st, T0, T0, 1000, 11, &first, 1, &n, err,
					   sizeof(err)), 0);
	assert_int_equal(n, 1);
	/* the lease ran out: another claim takes the same row */
	assert_int_equal(store_claim_calls(st, T0 + 1001, T0 + 1001, 1000, 12, &second, 1, &n,
					   err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(second.id, first.id);
	/* the stalled worker's outcomes, whatever they are, change nothing */
	assert_int_equal(fail_call(st, &first, T0 + 1100, INT64_C(86400000), 1, 0),
			 STORE_CALL_LOST);
	assert_int_equal(deliver_call(st, &first, T0 + 1100), STORE_CALL_LOST);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_release(st, &first, 1, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE status = 'pending' "
				       "AND attempts = 0 AND lease_token = 12"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state "
				       "WHERE last_notified IS NULL"), 1);
	/* the holder's outcome is written */
	assert_int_equal(deliver_call(st, &second, T0 + 1200), STORE_CALL_DELIVERED);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE status = 'delivered' "
				       "AND attempts = 1 AND lease_token IS NULL"), 1);
	store_call_clear(&first);
	store_call_clear(&second);
	free(ds);
	store_close(st);
}

/* A call's age is measured on the clock of its schedule: a jump of the
 * wall clock moves `created` with the rest, so a fresh call is not given
 * up as old after a jump forward. Rejected calls and old ones die. */
static void test_give_up_age_follows_clock_jumps(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	const int64_t hour = INT64_C(3600000);
	struct store_call c;
	char err[256];

	make_defs(ds, 2);
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int64_t id = 1; id <= 2; id++)
		assert_int_equal(store_call_add(st, id, STORE_RESOLVE, NULL, T0, err,
						  sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	/* the wall clock jumps two hours forward, 2.5 s after the calls came */
	assert_int_equal(store_shift_times(st, 2 * hour, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0 + 2 * hour + 2500, &c, 1), 1);
	assert_int_equal(c.alert_id, 1);
	assert_int_equal(fail_call(st, &c, T0 + 2 * hour + 2500, hour, 0, 0), STORE_CALL_WAITS);
	store_call_clear(&c);
	/* a rejected one dies whatever its age */
	assert_int_equal(claim_calls_at(st, T0 + 2 * hour + 2600, &c, 1), 1);
	assert_int_equal(c.alert_id, 2);
	assert_int_equal(fail_call(st, &c, T0 + 2 * hour + 2600, hour, 1, 0), STORE_CALL_DEAD);
	store_call_clear(&c);
	/* an hour after it came, alert 1's is given up */
	assert_int_equal(claim_calls_at(st, T0 + 3 * hour, &c, 1), 1);
	assert_int_equal(c.alert_id, 1);
	assert_int_equal(fail_call(st, &c, T0 + 3 * hour, hour, 0, 0), STORE_CALL_DEAD);
	store_call_clear(&c);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 1 AND "
				       "status = 'dead' AND finished = 1800010800000 AND "
				       "attempts = 2"), 1);
	free(ds);
	store_close(st);
}

/* A repeat whose attempt failed in a way that may have reached the
 * server (a timeout) is no longer dropped by a state change; one the
 * server refused (5xx) still is. */
static void test_failed_repeat_that_may_have_gone_out_stays(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	struct store_call calls[2];
	char err[256];

	make_defs(ds, 2);
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int64_t id = 1; id <= 2; id++)
		assert_int_equal(store_call_add_repeat(st, id, "c", T0, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0, calls, 2), 2);
	for (int i = 0; i < 2; i++) {
		/* alert 1: timed out; alert 2: HTTP 500 */
		assert_int_equal(fail_call(st, &calls[i], T0 + 100, INT64_C(86400000), 0,
					   calls[i].alert_id == 1), STORE_CALL_WAITS);
		store_call_clear(&calls[i]);
	}
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int64_t id = 1; id <= 2; id++)
		assert_int_equal(store_call_add(st, id, STORE_RESOLVE, NULL, T0 + 200, err,
						  sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 1 AND "
				       "kind = 'notify' AND is_repeat = 0"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM outbox WHERE alert_id = 2 AND "
				       "kind = 'notify'"), 0);
	free(ds);
	store_close(st);
}

/* Reads the rules state of alert 1 as the scheduler does before an
 * evaluation written at `at`, and steps the rules with a WARN value. */
static enum rules_call eval_warn(struct store *st, struct store_due *due, int64_t at)
{
	struct rules_state s;
	struct rules_result r;
	enum store_eval_check check;
	int64_t next;
	char err[256];

	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_eval_get(st, due, &s, &next, &check, err, sizeof(err)), 0);
	assert_int_equal(check, STORE_EVAL_CURRENT);
	rules_step(&due->def, &s, 150, at, &r);
	assert_int_equal(store_eval_put_ok(st, due->alert_id, &r.next, 150, at,
					   at + due->def.interval_ms, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	return r.call;
}

/* A notify that was given up holds the next repeat back for
 * repeatIntervalSecs, as a delivered one would: against a server that
 * refuses notifies, the engine does not queue a repeat (and write a dead
 * row) on every evaluation. */
static void test_given_up_notify_holds_repeats_back(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct in_flight *fl = calloc(1, sizeof(*fl));
	struct store_due due;
	struct store_call c;
	char err[256];

	make_defs(ds, 1);
	ds->d[0].warn_value = 100;
	ds->d[0].crit_value = 200;
	ds->d[0].repeat_ms = 60000;
	sync_defs(st, ds->d, 1, T0, 1, NULL);
	assert_int_equal(pick(st, T0, fl, &due, 1), 1);
	/* PASS -> WARN: the notify of the change */
	assert_int_equal(eval_warn(st, &due, T0), RULES_CALL_NOTIFY);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "w", T0, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	/* the server rejects it for good */
	assert_int_equal(claim_calls_at(st, T0 + 10, &c, 1), 1);
	assert_int_equal(fail_call(st, &c, T0 + 10, INT64_C(86400000), 1, 0), STORE_CALL_DEAD);
	store_call_clear(&c);
	/* evaluations in WARN within repeatIntervalSecs of the give-up: no repeat */
	for (int64_t t = T0 + 1000; t < T0 + 10 + 60000; t += 5000)
		assert_int_equal(eval_warn(st, &due, t), RULES_CALL_NONE);
	/* then one */
	assert_int_equal(eval_warn(st, &due, T0 + 10 + 60000), RULES_CALL_NOTIFY);
	store_due_clear(&due);
	free(fl);
	free(ds);
	store_close(st);
}

/* An evaluation picked with one definition is not written when the
 * definition changed (or the alert was retired) while its query ran. */
static void test_pick_goes_stale_when_its_definition_changes(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct in_flight *fl = calloc(1, sizeof(*fl));
	struct store_due due;
	struct rules_state s;
	enum store_eval_check check;
	int64_t next;
	char err[256];

	make_defs(ds, 2);
	ds->d[0].interval_ms = 3600000;
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(pick(st, T0, fl, &due, 1), 1);
	assert_int_equal(due.alert_id, 1);
	/* the same definitions again, in the same millisecond: still current */
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(store_eval_get(st, &due, &s, &next, &check, err, sizeof(err)), 0);
	assert_int_equal(check, STORE_EVAL_CURRENT);
	/* the interval shortens, in the same millisecond as the pick */
	ds->d[0].interval_ms = 10000;
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(store_eval_get(st, &due, &s, &next, &check, err, sizeof(err)), 0);
	assert_int_equal(check, STORE_EVAL_CHANGED);
	/* still due: picked again at once, with the new interval */
	assert_true(next <= T0);
	/* retired */
	sync_defs(st, ds->d + 1, 1, T0 + 1, 1, NULL);
	assert_int_equal(store_eval_get(st, &due, &s, &next, &check, err, sizeof(err)), 0);
	assert_int_equal(check, STORE_EVAL_RETIRED);
	store_due_clear(&due);
	free(fl);
	free(ds);
	store_close(st);
}

/* The version of the definitions, as stored. */
static int64_t defs_version(struct fixture *f)
{
	return query_int(inspect(f), "SELECT version FROM definitions");
}

/* Picks every alert due at now (none held) into due[0..2). */
static size_t pick_all(struct store *st, int64_t now, struct store_due *due)
{
	size_t n = 0;
	char err[256];

	assert_int_equal(store_pick_due(st, now, NULL, NULL, 0, due, 2, &n, err, sizeof(err)), 0);
	return n;
}

/* The scheduler keeps the definitions its picks read; a change written
 * by another connection (the refresher's, another engine's) is seen by
 * its next pick, an alert retired is no longer picked, and an evaluation
 * in flight keeps the definition it was picked with. A sync that changes
 * nothing leaves the version of the definitions, and the cache, as they
 * were. */
static void test_pick_sees_a_refresh_at_once(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct store *refresher = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct store_due due[2], again[2];
	int64_t v0;

	make_defs(ds, 2);
	sync_defs(refresher, ds->d, 2, T0, 1, NULL);
	v0 = defs_version(f);
	assert_int_equal(pick_all(st, T0, due), 2);
	assert_int_equal(due[0].alert_id, 1);
	assert_string_equal(due[0].def.query, "q");
	/* nothing written: both still due, picked from the cache */
	assert_int_equal(pick_all(st, T0, again), 2);
	assert_ptr_equal(again[0].def.query, due[0].def.query);
	assert_ptr_equal(again[1].def.name, due[1].def.name);
	store_due_clear(&again[0]);
	store_due_clear(&again[1]);
	/* the same definitions again: the version stays */
	sync_defs(refresher, ds->d, 2, T0, 1, NULL);
	assert_int_equal(defs_version(f), v0);
	/* alert-1's query changes, in the same millisecond */
	ds->d[0].query = "q-changed";
	sync_defs(refresher, ds->d, 2, T0, 1, NULL);
	assert_true(defs_version(f) > v0);
	assert_int_equal(pick_all(st, T0, again), 2);
	assert_string_equal(again[0].def.query, "q-changed");
	assert_true(again[0].version != due[0].version);
	assert_int_equal(again[1].version, due[1].version);
	assert_string_equal(again[1].def.crit_message, "critical");
	/* the evaluation in flight keeps what it was picked with */
	assert_string_equal(due[0].def.query, "q");
	store_due_clear(&due[0]);
	store_due_clear(&due[1]);
	store_due_clear(&again[0]);
	store_due_clear(&again[1]);
	/* alert-1 retired: no longer picked, even a hundred years on */
	sync_defs(refresher, ds->d + 1, 1, T0 + 1, 1, NULL);
	assert_int_equal(pick_all(st, T0 + INT64_C(100) * 365 * 86400000, due), 1);
	assert_int_equal(due[0].alert_id, 2);
	/* held past the close of the connection that picked it */
	store_close(st);
	assert_string_equal(due[0].def.name, "alert-2");
	store_due_clear(&due[0]);
	free(ds);
	store_close(refresher);
}

/* When the server answers again, the calls waiting in backoff become due
 * at once, but for one the server itself asked to wait (Retry-After). */
static void test_retry_now_keeps_the_servers_wait(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	struct store_call calls[2];
	int64_t n = 0;
	char err[256];

	make_defs(ds, 2);
	sync_defs(st, ds->d, 2, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	for (int64_t id = 1; id <= 2; id++)
		assert_int_equal(store_call_add(st, id, STORE_RESOLVE, NULL, T0, err, sizeof(err)),
				 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(claim_calls_at(st, T0, calls, 2), 2);
	for (int i = 0; i < 2; i++) {
		struct store_failure fl = {.at = T0, .next_attempt = T0 + 10000,
					   .give_up_ms = INT64_C(86400000), .error = "HTTP 429"};
		enum store_outcome o;

		/* alert 1's: the server asked for 10 s; alert 2's: a backoff */
		fl.not_before = calls[i].alert_id == 1 ? T0 + 10000 : 0;
		assert_int_equal(store_begin(st, err, sizeof(err)), 0);
		assert_int_equal(store_call_failed(st, &calls[i], &fl, &o, err, sizeof(err)), 0);
		assert_int_equal(store_commit(st, err, sizeof(err)), 0);
		assert_int_equal(o, STORE_CALL_WAITS);
		store_call_clear(&calls[i]);
	}
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_calls_retry_now(st, T0 + 100, &n, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(query_int(db, "SELECT next_attempt FROM outbox WHERE alert_id = 1"),
			 T0 + 10000);
	assert_int_equal(query_int(db, "SELECT next_attempt FROM outbox WHERE alert_id = 2"),
			 T0 + 100);
	free(ds);
	store_close(st);
}

/* An evaluation that finds a PASS value for an alert in PASS is one
 * UPDATE with the same outcome as the full path: clocks cleared, the
 * next slot an interval on (missed ones not replayed). It writes nothing
 * when the alert is not in PASS, or its definition changed or it was
 * retired since the pick: the full path decides those. */
static void test_eval_stays_pass(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct in_flight *fl = calloc(1, sizeof(*fl));
	struct fixture *db = inspect(f);
	struct store_due due[3];
	int written = -1;
	char err[256];

	make_defs(ds, 3);
	sync_defs(st, ds->d, 3, T0, 1, NULL);
	assert_int_equal(pick(st, T0, fl, due, 3), 3);
	assert_int_equal(exec_sql(db, "UPDATE alert_state SET warn_since = 5, crit_since = 6, "
				      "failures = 2, last_error = 'x' WHERE alert_id = 1; "
				      "UPDATE alert_state SET state = 'WARN' WHERE alert_id = 2"), 0);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_eval_stays_pass(st, &due[0], 7.5, T0 + 40, &written, err,
					       sizeof(err)), 0);
	assert_int_equal(written, 1);
	assert_int_equal(store_eval_stays_pass(st, &due[1], 7.5, T0 + 40, &written, err,
					       sizeof(err)), 0);
	assert_int_equal(written, 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE alert_id = 1 AND "
				       "state = 'PASS' AND warn_since IS NULL AND crit_since IS NULL "
				       "AND failures = 0 AND last_error IS NULL AND last_value = 7.5 "
				       "AND last_ok = 1800000000040 AND last_eval = 1800000000040 "
				       "AND next_eval = 1800000001000"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE alert_id = 2 AND "
				       "state = 'WARN' AND last_eval IS NULL"), 1);
	/* ten intervals late: the next slot is an interval from now */
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_eval_stays_pass(st, &due[0], 1, T0 + 10500, &written, err,
					       sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(written, 1);
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 1"),
			 T0 + 11500);
	/* alert 3's definition changes under its pick, then it is retired */
	ds->d[2].warn_value = 42;
	sync_defs(st, ds->d, 3, T0 + 50, 0, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_eval_stays_pass(st, &due[2], 1, T0 + 60, &written, err,
					       sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(written, 0);
	due[2].version = query_int(db, "SELECT updated FROM alert WHERE id = 3");
	sync_defs(st, ds->d, 2, T0 + 70, 0, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_eval_stays_pass(st, &due[2], 1, T0 + 80, &written, err,
					       sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(written, 0);
	for (int i = 0; i < 3; i++)
		store_due_clear(&due[i]);
	free(fl);
	free(ds);
	store_close(st);
}

/* The batch form: each evaluation written or not as store_eval_stays_pass
 * would, in one call; written[] says which. */
static void test_evals_stay_pass(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct in_flight *fl = calloc(1, sizeof(*fl));
	struct fixture *db = inspect(f);
	struct store_due due[4];
	struct store_pass p[4];
	unsigned char written[4];
	char err[256];

	make_defs(ds, 4);
	sync_defs(st, ds->d, 4, T0, 1, NULL);
	assert_int_equal(pick(st, T0, fl, due, 4), 4);
	/* 2 is in WARN; 3's definition changes under its pick */
	assert_int_equal(exec_sql(db, "UPDATE alert_state SET state = 'WARN' WHERE alert_id = 2"),
			 0);
	ds->d[2].warn_value = 42;
	sync_defs(st, ds->d, 4, T0 + 10, 0, NULL);
	for (int i = 0; i < 4; i++)
		p[i] = (struct store_pass){&due[i], 1.5 + i, T0 + 40};
	p[3].at = T0 + 10500; /* ten intervals late */
	memset(written, 7, sizeof(written));
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_evals_stay_pass(st, p, 4, written, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	assert_int_equal(written[0], 1);
	assert_int_equal(written[1], 0);
	assert_int_equal(written[2], 0);
	assert_int_equal(written[3], 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE alert_id = 1 AND "
				       "last_value = 1.5 AND last_eval = 1800000000040 "
				       "AND next_eval = 1800000001000"),
			 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_state WHERE alert_id IN (2, 3) "
				       "AND last_eval IS NULL"),
			 2);
	assert_int_equal(query_int(db, "SELECT next_eval FROM alert_state WHERE alert_id = 4"),
			 T0 + 11500);
	/* none: nothing to write */
	assert_int_equal(store_evals_stay_pass(st, p, 0, written, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		store_due_clear(&due[i]);
	free(fl);
	free(ds);
	store_close(st);
}

/* alert_state's rows lie in the order the alerts are evaluated (the
 * phase of their schedule), whatever order the server sent them in: the
 * evaluations written together change neighbouring pages. */
static void test_sqlite_rows_lie_in_evaluation_order(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);

	make_defs(ds, 300);
	for (int i = 0; i < 300; i++)
		ds->d[i].interval_ms = i % 3 ? 1000 : 10000;
	sync_defs(st, ds->d, 300, T0 + 123, 0, NULL);
	/* rows in slot order have non-decreasing phases */
	assert_int_equal(query_int(db, "SELECT count(*) FROM (SELECT s.next_eval % a.interval_ms "
				       "AS ph, lag(s.next_eval % a.interval_ms) OVER (ORDER BY s.slot) "
				       "AS prev FROM alert_state s JOIN alert a ON a.id = s.alert_id) "
				       "WHERE ph < prev"), 0);
	/* and the phases are spread, not all one */
	assert_true(query_int(db, "SELECT count(DISTINCT s.next_eval % a.interval_ms) FROM "
				  "alert_state s JOIN alert a ON a.id = s.alert_id") > 200);
	free(ds);
	store_close(st);
}

/* The views for people show ISO-8601 times in UTC. */
static void test_views_show_iso_times(void **state)
{
	char err[256];
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);
	char *row;

	make_defs(ds, 1);
	sync_defs(st, ds->d, 1, T0, 1, NULL);
	assert_int_equal(store_begin(st, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(st, 1, STORE_NOTIFY, "w", T0 + 1, err, sizeof(err)), 0);
	assert_int_equal(store_commit(st, err, sizeof(err)), 0);
	row = query_text(db, "SELECT name || ' ' || state || ' ' || next_eval || ' ' || "
			     "pending_calls || ' ' || retired FROM alert_status");
	assert_string_equal(row, "alert-1 PASS 2027-01-15T08:00:00.000Z 1 0");
	free(row);
	row = query_text(db, "SELECT name || ' ' || kind || ' ' || message || ' ' || created || "
			     "' ' || next_attempt || ' ' || attempts FROM outbox_pending");
	assert_string_equal(row, "alert-1 notify w 2027-01-15T08:00:00.001Z "
				 "2027-01-15T08:00:00.001Z 0");
	free(row);
	/* a retired alert is never due: no time to show */
	sync_defs(st, ds->d, 0, T0 + 2, 1, NULL);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_status WHERE retired = 1 AND "
				       "next_eval IS NULL AND last_eval IS NULL"), 1);
	free(ds);
	store_close(st);
}

/* Which --db is PostgreSQL, and what of it a log line may show. */
static void test_location_kind_and_redaction(void **state)
{
	static const struct {
		const char *location, *shown;
		int pg;
	} cases[] = {
		{"/var/lib/alert-exec/a.db", "/var/lib/alert-exec/a.db", 0},
		{"./postgresql://x.db", "./postgresql://x.db", 0},
		{"host=db dbname=alerts", "host=db dbname=alerts", 0},
		{"postgresql://db.example/alerts", "postgresql://db.example/alerts", 1},
		{"postgresql://ae:s3cret@db.example:5433/alerts?sslmode=require",
		 "postgresql://***@db.example:5433/alerts?sslmode=require", 1},
		{"postgres://ae@db/alerts", "postgres://***@db/alerts", 1},
		{"postgresql://a:p@ss@db/alerts", "postgresql://***@db/alerts", 1},
		{"postgresql:///alerts?host=/run/pg&password=s3cret&sslmode=disable",
		 "postgresql:///alerts?host=/run/pg&password=***&sslmode=disable", 1},
		{"postgresql:///alerts?password=s3cret", "postgresql:///alerts?password=***", 1},
		{"postgresql:///alerts?app_password=x", "postgresql:///alerts?app_password=x", 1},
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(store_location_is_postgres(cases[i].location), cases[i].pg);
		assert_string_equal(store_redact_location(out, sizeof(out), cases[i].location),
				    cases[i].shown);
	}
	/* cut to fit, still without the secret */
	assert_string_equal(store_redact_location(out, 20, cases[4].location),
			    "postgresql://***@db");
}

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
/* The contract: every case here runs on both backends. */
#define CONTRACT_CASES                                                                 \
	CASE(test_sync_add_change_retire), CASE(test_sync_keeps_invalid_entries),      \
		CASE(test_pick_never_hands_out_an_alert_in_flight),                    \
		CASE(test_outbox_order_under_four_threads),                            \
		CASE(test_leases_released_at_start),                                   \
		CASE(test_state_change_drops_waiting_repeats),                         \
		CASE(test_repeats_that_may_have_gone_out_stay),                        \
		CASE(test_start_after_clock_went_back), CASE(test_prune_keeps_pending), \
		CASE(test_prune_goes_by_finished), CASE(test_lease_token_fences_outcomes), \
		CASE(test_give_up_age_follows_clock_jumps),                            \
		CASE(test_failed_repeat_that_may_have_gone_out_stays),                 \
		CASE(test_given_up_notify_holds_repeats_back),                         \
		CASE(test_pick_goes_stale_when_its_definition_changes),                \
		CASE(test_pick_sees_a_refresh_at_once),                                \
		CASE(test_retry_now_keeps_the_servers_wait), CASE(test_eval_stays_pass), \
		CASE(test_evals_stay_pass),                                            \
		CASE(test_views_show_iso_times)

#ifdef ALERT_EXEC_POSTGRES
/* A PostgreSQL schema described from the catalogue, one line per column,
 * constraint, index, view and function, sorted. */
static char *pg_schema_of(struct fixture *f)
{
	return query_text(
		f, "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
		   "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' "
		   "|| is_nullable || ' ' || coalesce(column_default, '') "
		   "FROM information_schema.columns WHERE table_schema = 'public' "
		   "UNION ALL SELECT 'index ' || indexdef FROM pg_indexes "
		   "WHERE schemaname = 'public' "
		   "UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' "
		   "|| pg_get_constraintdef(oid) FROM pg_constraint "
		   "WHERE connamespace = 'public'::regnamespace "
		   "UNION ALL SELECT 'view ' || viewname || ' ' || definition FROM pg_views "
		   "WHERE schemaname = 'public' "
		   "UNION ALL SELECT 'function ' || pg_get_functiondef(p.oid) FROM pg_proc p "
		   "WHERE pronamespace = 'public'::regnamespace) s(x)");
}

/* schema/postgresql.sql is what migrating an empty database gives. */
static void test_pg_schema_file_matches_migrations(void **state)
{
	struct fixture *f = *state;
	struct fixture *other = NULL;
	struct store *st = open_store(f->location);
	char *sql = read_file(SOURCE_DIR "/schema/postgresql.sql");
	char *mine, *theirs;
	char version[16];

	store_close(st);
	snprintf(version, sizeof(version), "%d", pg_migrations[pg_migration_count - 1].version);
	mine = query_text(inspect(f), "SELECT max(version) FROM schema_version");
	assert_string_equal(mine, version);
	free(mine);
	assert_int_equal(setup((void **)&other), 0);
	assert_int_equal(exec_sql(other, sql), 0);
	mine = pg_schema_of(f);
	theirs = pg_schema_of(other);
	assert_string_equal(mine, theirs);
	assert_non_null(strstr(mine, "column alert.shard integer NO"));
	assert_non_null(strstr(mine, "view alert_status"));
	free(mine);
	free(theirs);
	free(sql);
	assert_int_equal(teardown((void **)&other), 0);
}

static void test_pg_newer_version_refused(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct store_lock *lock = NULL;
	char err[512] = "";

	store_close(st);
	assert_int_equal(exec_sql(inspect(f), "INSERT INTO schema_version (version, name) "
					      "VALUES (9999, '9999_future.sql')"), 0);
	assert_int_equal(store_prepare(f->location, 0, &lock, err, sizeof(err)), STORE_ERR_NEWER);
	assert_null(lock);
	assert_non_null(strstr(err, "schema version 9999 is newer than this binary knows"));
	assert_null(strchr(err, '\n'));
}

/* A missing database, a wrong password and a server that is not there:
 * STORE_ERR with one line, which never shows a password of the location. */
static void test_pg_connection_errors_are_one_line(void **state)
{
	struct fixture *f = *state;
	struct store_lock *lock = NULL;
	struct store *st = NULL;
	const char *host = strstr(pg_admin_uri, "host=");
	char uri[700];
	char err[512] = "";

	assert_non_null(host);
	snprintf(uri, sizeof(uri), "postgresql://someone:s3cret@/no_such_db_%s?%s&password=s3cret",
		 f->pg_name, host);
	assert_int_equal(store_prepare(uri, 0, &lock, err, sizeof(err)), STORE_ERR);
	assert_non_null(strstr(err, "does not exist"));
	assert_null(strstr(err, "s3cret"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(store_open(uri, 0, &st, err, sizeof(err)), -1);
	assert_null(st);
	assert_null(strstr(err, "s3cret"));
	/* the scratch server's role with a password (pg-scratch.sh) */
	snprintf(uri, sizeof(uri), "postgresql://alert_exec_pw:wr0ng@/%s?%s", f->pg_name, host);
	assert_int_equal(store_prepare(uri, 0, &lock, err, sizeof(err)), STORE_ERR);
	assert_non_null(strstr(err, "password authentication failed"));
	assert_null(strstr(err, "wr0ng"));
	assert_null(strchr(err, '\n'));
	snprintf(uri, sizeof(uri), "postgresql:///postgres?host=%s/nothing-here", f->dir);
	assert_int_equal(store_prepare(uri, 0, &lock, err, sizeof(err)), STORE_ERR);
	assert_non_null(strstr(err, "nothing-here"));
	assert_null(strchr(err, '\n'));
}

/* Every alert lies in its shard, hash_str(name) mod 1024; the 1024
 * shards exist and, with one engine, none has an owner. */
static void test_pg_alerts_lie_in_their_shards(void **state)
{
	struct fixture *f = *state;
	struct store *st = open_store(f->location);
	struct defs *ds = calloc(1, sizeof(*ds));
	struct fixture *db = inspect(f);

	make_defs(ds, 50);
	sync_defs(st, ds->d, 50, T0, 1, NULL);
	for (int i = 0; i < 50; i++) {
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT shard FROM alert WHERE name = '%s'",
			 ds->names[i]);
		assert_int_equal(query_int(db, sql), (int64_t)(hash_str(ds->names[i]) % 1024));
	}
	assert_true(query_int(db, "SELECT count(DISTINCT shard) FROM alert") > 40);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), 1024);
	assert_int_equal(query_int(db, "SELECT count(*) FROM alert_status WHERE owner IS NULL"),
			 50);
	free(ds);
	store_close(st);
}

static int run_on_postgres(void)
{
	const char *file = getenv("ALERT_EXEC_PG_URI_FILE");
	const struct CMUnitTest pg_cases[] = {
		CASE(test_pg_schema_file_matches_migrations),
		CASE(test_pg_newer_version_refused),
		CASE(test_pg_connection_errors_are_one_line),
		CASE(test_pg_alerts_lie_in_their_shards),
		CONTRACT_CASES,
	};
	FILE *fp = file ? fopen(file, "r") : NULL;

	if (fp == NULL || fgets(pg_admin_uri, sizeof(pg_admin_uri), fp) == NULL) {
		fprintf(stderr, "test_store: no scratch server's URI in ALERT_EXEC_PG_URI_FILE "
				"(%s): tests/pg/pg-scratch.sh start FILE\n",
			file ? file : "unset");
		return 1;
	}
	fclose(fp);
	pg_admin_uri[strcspn(pg_admin_uri, "\n")] = '\0';
	on_pg = 1;
	return cmocka_run_group_tests_name("store on PostgreSQL", pg_cases, NULL, NULL);
}
#else
static int run_on_postgres(void)
{
	fprintf(stderr, "test_store: built without PostgreSQL support (libpq)\n");
	return 1;
}
#endif

int main(int argc, char **argv)
{
	const struct CMUnitTest sqlite_cases[] = {
		CASE(test_sqlite_schema_file_matches_migrations),
		CASE(test_sqlite_migrate_every_older_version),
		CASE(test_sqlite_newer_version_refused),
		CASE(test_sqlite_garbage_file_refused),
		CASE(test_sqlite_corrupt_page_refused),
		CASE(test_sqlite_lock_is_exclusive),
		CASE(test_sqlite_rows_lie_in_evaluation_order),
		cmocka_unit_test(test_location_kind_and_redaction),
		CONTRACT_CASES,
	};

	if (argc > 1 && strcmp(argv[1], "postgresql") == 0)
		return run_on_postgres();
	return cmocka_run_group_tests_name("store on SQLite", sqlite_cases, NULL, NULL);
}
