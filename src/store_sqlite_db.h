#ifndef ALERT_EXEC_STORE_SQLITE_DB_H
#define ALERT_EXEC_STORE_SQLITE_DB_H

#include <stddef.h>

#include <sqlite3.h>

/*
 * The database file: opening connections with the project's pragmas, the
 * advisory lock that keeps one engine per database, and migrations.
 */

/* One embedded migration (generated from migrations/sqlite/NNNN_name.sql). */
struct db_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct db_migration db_migrations[];
extern const size_t db_migration_count;

/* Results of the functions below. */
enum db_status {
	DB_OK = 0,
	DB_ERR = -1,        /* cannot open, corrupt, I/O, read-only: exit 74 */
	DB_ERR_NEWER = -2,  /* written by a newer version: exit 74 */
	DB_ERR_LOCKED = -3, /* another engine holds the lock: exit 75 */
};

/* Version the newest embedded migration brings the schema to. */
int db_latest_version(void);

/* Opens path (creating it) with WAL, synchronous NORMAL (FULL when
 * sync_full), foreign_keys ON and a busy timeout. A new database file is
 * created with mode 0600 whatever the umask, and so are its -wal and -shm
 * files (SQLite gives them the database file's mode); an existing file's
 * mode is left alone. Returns DB_OK with *out set (close with
 * sqlite3_close), or DB_ERR with a message in err. */
int db_open(const char *path, int sync_full, sqlite3 **out, char *err, size_t errlen);

/* Brings the schema of db to db_latest_version(), each migration in one
 * transaction together with PRAGMA user_version. Also checks that the
 * file is a database at all. Migrations up to target_version only when
 * target_version > 0 (for tests of older versions). Returns DB_OK,
 * DB_ERR_NEWER when user_version is above what this binary knows, or DB_ERR. */
int db_migrate(sqlite3 *db, int target_version, char *err, size_t errlen);

/* Checks that db is not corrupt (PRAGMA quick_check: every page and
 * b-tree readable and well-formed; O(size of the file)). Returns DB_OK, or
 * DB_ERR with "file is corrupt: <first problem>" (one line) in err. */
int db_check(sqlite3 *db, char *err, size_t errlen);

/* Takes the advisory lock of the database at path: an exclusive flock on
 * "<path>.lock" (created with mode 0600), holding the owner's pid, which
 * is written only once the lock is held. A lock path that is a symbolic
 * link, not a regular file, or a file with other hard links is refused
 * (DB_ERR), so a link planted in a shared directory cannot make the
 * engine overwrite another file. Returns the lock's fd (>= 0; the lock
 * lasts until close or exit), DB_ERR_LOCKED with the holder's pid in err,
 * or DB_ERR. */
int db_lock(const char *path, char *err, size_t errlen);

#endif
