/*
 * Tests of db.c's files: the modes of the database, its -wal and -shm
 * files and the lock file, and the lock file's refusal of links planted
 * in its place.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store_sqlite_db.h"

struct fixture {
	char dir[256];
	char path[320];         /* the database */
	char lock[340];         /* its lock file */
	mode_t umask_before;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/alert-exec-test-db.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/a.db", f->dir);
	snprintf(f->lock, sizeof(f->lock), "%s.lock", f->path);
	/* The usual umask: files created without a mode of their own get 0644. */
	f->umask_before = umask(022);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];

	umask(f->umask_before);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static mode_t mode_of(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) != 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	return sb.st_mode & 07777;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void assert_file_is(const char *path, const char *text)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
}

/* A new database and its -wal and -shm files are readable by their owner
 * only, with umask 022. */
static void test_new_database_is_private(void **state)
{
	struct fixture *f = *state;
	char wal[400];
	char shm[400];
	char err[256] = "";
	sqlite3 *db = NULL;

	assert_int_equal(db_open(f->path, 0, &db, err, sizeof(err)), DB_OK);
	assert_int_equal(db_migrate(db, 0, err, sizeof(err)), DB_OK);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	snprintf(shm, sizeof(shm), "%s-shm", f->path);
	assert_int_equal(mode_of(f->path), 0600);
	assert_int_equal(mode_of(wal), 0600);
	assert_int_equal(mode_of(shm), 0600);
	sqlite3_close(db);
}

/* An existing database keeps the mode its owner gave it. */
static void test_existing_database_keeps_its_mode(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	sqlite3 *db = NULL;

	write_file(f->path, "", 0640);
	assert_int_equal(db_open(f->path, 0, &db, err, sizeof(err)), DB_OK);
	assert_int_equal(db_migrate(db, 0, err, sizeof(err)), DB_OK);
	assert_int_equal(mode_of(f->path), 0640);
	sqlite3_close(db);
}

/* The lock file is created 0600 and holds the pid. */
static void test_lock_file_is_private(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	char want[32];
	int fd = db_lock(f->path, err, sizeof(err));

	if (fd < 0)
		fail_msg("db_lock: %s", err);
	assert_int_equal(mode_of(f->lock), 0600);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_file_is(f->lock, want);
	close(fd);
}

/* A symbolic link planted as the lock file is refused, and the file it
 * points to is neither truncated nor written. */
static void test_lock_refuses_symlink(void **state)
{
	struct fixture *f = *state;
	char target[400];
	char err[256] = "";

	snprintf(target, sizeof(target), "%s/precious", f->dir);
	write_file(target, "keep me\n", 0644);
	assert_int_equal(symlink(target, f->lock), 0);
	assert_int_equal(db_lock(f->path, err, sizeof(err)), DB_ERR);
	assert_non_null(strstr(err, "is a symbolic link"));
	assert_non_null(strstr(err, f->lock));
	assert_file_is(target, "keep me\n");

	/* A dangling one is not followed to create its target either. */
	assert_int_equal(unlink(target), 0);
	assert_int_equal(db_lock(f->path, err, sizeof(err)), DB_ERR);
	assert_int_equal(access(target, F_OK), -1);
}

/* A hard link to another file, or something that is no file, is refused. */
static void test_lock_refuses_other_files(void **state)
{
	struct fixture *f = *state;
	char target[400];
	char err[256] = "";

	snprintf(target, sizeof(target), "%s/precious", f->dir);
	write_file(target, "keep me\n", 0644);
	assert_int_equal(link(target, f->lock), 0);
	assert_int_equal(db_lock(f->path, err, sizeof(err)), DB_ERR);
	assert_non_null(strstr(err, "is not a plain file of one link"));
	assert_file_is(target, "keep me\n");

	assert_int_equal(unlink(f->lock), 0);
	assert_int_equal(mkfifo(f->lock, 0600), 0);
	assert_int_equal(db_lock(f->path, err, sizeof(err)), DB_ERR);
	assert_non_null(strstr(err, "is not a plain file of one link"));
}

/* A second engine that finds the lock held leaves the holder's pid as it
 * is: the file is written only by the one that holds the lock. */
static void test_lock_held_is_not_truncated(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	char want[32];
	int fd = db_lock(f->path, err, sizeof(err));

	assert_true(fd >= 0);
	assert_int_equal(db_lock(f->path, err, sizeof(err)), DB_ERR_LOCKED);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_file_is(f->lock, want);
	close(fd);
}

#define FILE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FILE_TEST(test_new_database_is_private),
		FILE_TEST(test_existing_database_keeps_its_mode),
		FILE_TEST(test_lock_file_is_private),
		FILE_TEST(test_lock_refuses_symlink),
		FILE_TEST(test_lock_refuses_other_files),
		FILE_TEST(test_lock_held_is_not_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
