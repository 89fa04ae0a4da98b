#include "store_sqlite_db.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000

int db_latest_version(void)
{
	int v = 0;

	for (size_t i = 0; i < db_migration_count; i++)
		if (db_migrations[i].version > v)
			v = db_migrations[i].version;
	return v;
}

static int exec(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return DB_ERR;
	}
	return DB_OK;
}

/* Creates path with mode 0600 unless something is there already. SQLite
 * would create it 0644 under the usual umask, and the database holds the
 * alerts and what they say; its -wal and -shm files take the mode of the
 * database file. An existing file keeps the mode its owner gave it. A
 * failure is left for sqlite3_open_v2 to report. */
static void create_private(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd >= 0)
		close(fd);
}

int db_open(const char *path, int sync_full, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc;
	int ret = DB_ERR;
	char pragmas[256];

	assert(path && out);
	*out = NULL;
	create_private(path);
	rc = sqlite3_open_v2(
		path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "open database %s: %s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto out;
	}
	if (sqlite3_db_readonly(db, "main") == 1) {
		snprintf(err, errlen, "open database %s: file is read-only", path);
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	/* journal_mode reads the header first: a file that is not a
	 * database fails here. */
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;",
		 sync_full ? "FULL" : "NORMAL");
	if (exec(db, pragmas, "open database", err, errlen) != DB_OK) {
		size_t n = strlen(err);
		snprintf(err + n, errlen > n ? errlen - n : 0, " (%s)", path);
		goto out;
	}
	*out = db;
	db = NULL;
	ret = DB_OK;
out:
	sqlite3_close(db);
	return ret;
}

static int user_version(sqlite3 *db, int *version, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "read schema version: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return DB_ERR;
	}
	*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return DB_OK;
}

int db_check(sqlite3 *db, char *err, size_t errlen)
{
	static const char prefix[] = "*** in database main ***\n";
	sqlite3_stmt *st = NULL;
	const char *text = NULL;
	int rc;
	int ret = DB_ERR;

	assert(db);
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = sqlite3_errcode(db) & 0xff;
		snprintf(err, errlen, "%s: %s",
			 rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? "file is corrupt"
								     : "check database",
			 sqlite3_errmsg(db));
		goto out;
	}
	text = (const char *)sqlite3_column_text(st, 0);
	if (text && strcmp(text, "ok") == 0) {
		ret = DB_OK;
		goto out;
	}
	if (text && strncmp(text, prefix, sizeof(prefix) - 1) == 0)
		text += sizeof(prefix) - 1;
	snprintf(err, errlen, "file is corrupt: %s", text ? text : "quick_check failed");
	/* One line: quick_check separates its findings with newlines. */
	for (char *p = err; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
out:
	sqlite3_finalize(st);
	return ret;
}

int db_migrate(sqlite3 *db, int target_version, char *err, size_t errlen)
{
	int current = 0;
	int latest = db_latest_version();
	int target = target_version > 0 ? target_version : latest;

	assert(db);
	if (user_version(db, &current, err, errlen) != DB_OK)
		return DB_ERR;
	if (current > latest) {
		snprintf(err, errlen,
			 "database schema version %d is newer than this binary knows (%d): "
			 "upgrade alert-exec",
			 current, latest);
		return DB_ERR_NEWER;
	}
	for (size_t i = 0; i < db_migration_count; i++) {
		const struct db_migration *m = &db_migrations[i];
		char what[128];
		char setv[64];

		if (m->version <= current || m->version > target)
			continue;
		snprintf(what, sizeof(what), "migration %s", m->name);
		if (exec(db, "BEGIN IMMEDIATE", what, err, errlen) != DB_OK)
			return DB_ERR;
		snprintf(setv, sizeof(setv), "PRAGMA user_version=%d", m->version);
		if (exec(db, m->sql, what, err, errlen) != DB_OK ||
		    exec(db, setv, what, err, errlen) != DB_OK ||
		    exec(db, "COMMIT", what, err, errlen) != DB_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return DB_ERR;
		}
		current = m->version;
	}
	return DB_OK;
}

/* Opens (creating it 0600) the lock file. In a shared directory someone
 * else may have put a symbolic link or a hard link there, to have the pid
 * written over a file of their choosing: only a plain file of one link
 * is used. Returns the fd, or -1 with a message in err. */
static int open_lock_file(const char *lockpath, char *err, size_t errlen)
{
	struct stat sb;
	int fd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);

	if (fd < 0 && errno == ELOOP) {
		snprintf(err, errlen, "lock database: %s is a symbolic link; not following it",
			 lockpath);
		return -1;
	}
	if (fd < 0) {
		snprintf(err, errlen, "lock database: open %s: %s", lockpath, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0) {
		snprintf(err, errlen, "lock database: stat %s: %s", lockpath, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		snprintf(err, errlen,
			 "lock database: %s is not a plain file of one link; not "
			 "using it",
			 lockpath);
		close(fd);
		return -1;
	}
	return fd;
}

int db_lock(const char *path, char *err, size_t errlen)
{
	char lockpath[4096];
	char buf[32];
	int fd;
	ssize_t n;

	assert(path);
	if ((size_t)snprintf(lockpath, sizeof(lockpath), "%s.lock", path) >= sizeof(lockpath)) {
		snprintf(err, errlen, "lock database: path too long");
		return DB_ERR;
	}
	fd = open_lock_file(lockpath, err, errlen);
	if (fd < 0)
		return DB_ERR;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e == EWOULDBLOCK) {
			n = pread(fd, buf, sizeof(buf) - 1, 0);
			buf[n > 0 ? n : 0] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(err, errlen,
				 "database %s is in use by another alert-exec (pid %s)", path,
				 buf[0] ? buf : "unknown");
			close(fd);
			return DB_ERR_LOCKED;
		}
		snprintf(err, errlen, "lock database: flock %s: %s", lockpath, strerror(e));
		close(fd);
		return DB_ERR;
	}
	/* Only the holder of the lock writes to the file. */
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		snprintf(err, errlen, "lock database: write %s: %s", lockpath, strerror(errno));
		close(fd);
		return DB_ERR;
	}
	return fd;
}
