/*
 * sqlite_ceiling: the bare SQLite ceiling of the benchmark (workload 1c).
 *
 * Runs the engine's own evaluation statements (store.c, on a connection
 * opened with the engine's pragmas) in a loop with no HTTP and no threads,
 * as the evaluation scheduler does: pick a batch of due alerts (a read),
 * then write each one's evaluation (read its state, step the rules, write
 * the state and its next evaluation) in one transaction. Time is virtual: when
 * nothing is due the clock moves on by one interval, so the loop never
 * waits. Values are below the warn threshold, so no transition or outbox
 * row is written: this is the steady-state cost of one evaluation.
 *
 * Prints one JSON line:
 *   {"batch":64,"alerts":10000,"evaluations":500000,"commits":15625,
 *    "rows_per_commit":64.0,"seconds":5.0,"evals_per_s":100000.0,
 *    "cpu_s":4.9,"cpu_us_per_eval":9.8}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store_sqlite_db.h"
#include "rules.h"
#include "store.h"

#define INTERVAL_MS 1000
#define MAX_BATCH 4096
#define VALUE 50.0

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Creates the schema and `count` alerts like the benchmark's. */
static int populate(const char *path, long count, int64_t now, struct store **st, char *err,
		    size_t errlen)
{
	struct alert_def *defs = calloc((size_t)count, sizeof(*defs));
	struct store_sync_stats stats;
	sqlite3 *db = NULL;
	int rc = -1;

	if (defs == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (db_open(path, 0, &db, err, errlen) != DB_OK || db_migrate(db, 0, err, errlen) != DB_OK)
		goto out;
	if (store_open(path, 0, st, err, errlen) != 0)
		goto out;
	for (long i = 0; i < count; i++) {
		char name[32], query[32];

		snprintf(name, sizeof(name), "a-%ld", i + 1);
		snprintf(query, sizeof(query), "q-%ld", i + 1);
		defs[i].name = strdup(name);
		defs[i].query = strdup(query);
		defs[i].warn_message = strdup("warning");
		defs[i].crit_message = strdup("critical");
		defs[i].interval_ms = INTERVAL_MS;
		defs[i].repeat_ms = 100000;
		defs[i].warn_value = 100;
		defs[i].crit_value = 200;
		if (!defs[i].name || !defs[i].query || !defs[i].warn_message ||
		    !defs[i].crit_message) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	rc = store_sync_defs(*st, defs, (size_t)count, NULL, 0, now, 0, &stats, err, errlen);
out:
	if (defs != NULL)
		for (long i = 0; i < count; i++) {
			free(defs[i].name);
			free(defs[i].query);
			free(defs[i].warn_message);
			free(defs[i].crit_message);
		}
	free(defs);
	sqlite3_close(db);
	return rc;
}

/* The write transaction of one picked batch, as the engine's
 * write_evals does for successful queries. */
static int write_batch(struct store *st, struct store_due *due, size_t n, int64_t at,
		       char *err, size_t errlen)
{
	if (store_begin(st, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct rules_state s;
		struct rules_result r;
		int64_t next = 0;
		enum store_eval_check check;
		int written = 0;

		if (rules_level(&due[i].def, VALUE) == LEVEL_PASS &&
		    store_eval_stays_pass(st, &due[i], VALUE, at, &written, err, errlen) != 0)
			goto fail;
		if (written)
			continue;
		if (store_eval_get(st, &due[i], &s, &next, &check, err, errlen) != 0)
			goto fail;
		next = rules_next_eval(next, due[i].def.interval_ms, at);
		rules_step(&due[i].def, &s, VALUE, at, &r);
		if (store_eval_put_ok(st, due[i].alert_id, &r.next, VALUE, at, next, err,
				      errlen) != 0)
			goto fail;
	}
	return store_commit(st, err, errlen);
fail:
	store_rollback(st);
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sqlite_ceiling --db PATH [--alerts N] [--batch B] [--seconds S]\n"
		   "Runs the engine's pick and evaluation-write statements in batches of B\n"
		   "on a fresh database of N alerts for S seconds; prints one JSON line.\n");
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	long count = 10000;
	long batch = 64;
	double seconds = 5;
	struct store *st = NULL;
	struct store_due *due = NULL;
	int64_t vnow = INT64_C(1700000000000);
	long evals = 0, commits = 0;
	double t0, c0, t1, c1;
	char err[512];
	int status = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (v == NULL) {
			usage(stderr);
			return 64;
		}
		i++;
		if (strcmp(a, "--db") == 0)
			path = v;
		else if (strcmp(a, "--alerts") == 0)
			count = strtol(v, NULL, 10);
		else if (strcmp(a, "--batch") == 0)
			batch = strtol(v, NULL, 10);
		else if (strcmp(a, "--seconds") == 0)
			seconds = strtod(v, NULL);
		else {
			usage(stderr);
			return 64;
		}
	}
	if (path == NULL || count < 1 || batch < 1 || batch > MAX_BATCH || seconds <= 0) {
		usage(stderr);
		return 64;
	}
	unlink(path);
	due = calloc((size_t)batch, sizeof(*due));
	if (due == NULL || populate(path, count, vnow, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "sqlite_ceiling: %s\n", due ? err : "out of memory");
		goto out;
	}
	t0 = now_s();
	c0 = cpu_s();
	while (now_s() - t0 < seconds) {
		size_t n = 0;

		if (store_pick_due(st, vnow, NULL, NULL, 0, due, (size_t)batch, &n, err,
				   sizeof(err)) != 0) {
			fprintf(stderr, "sqlite_ceiling: %s\n", err);
			goto out;
		}
		if (n == 0) {
			vnow += INTERVAL_MS;
			continue;
		}
		if (write_batch(st, due, n, vnow, err, sizeof(err)) != 0) {
			fprintf(stderr, "sqlite_ceiling: %s\n", err);
			goto out;
		}
		commits++;
		evals += (long)n;
		for (size_t i = 0; i < n; i++)
			store_due_clear(&due[i]);
	}
	t1 = now_s();
	c1 = cpu_s();
	/* Each evaluation writes one row, its state, in its batch's commit. */
	printf("{\"batch\":%ld,\"alerts\":%ld,\"evaluations\":%ld,\"commits\":%ld,"
	       "\"rows_per_commit\":%.1f,\"seconds\":%.3f,\"evals_per_s\":%.1f,"
	       "\"cpu_s\":%.3f,\"cpu_us_per_eval\":%.2f}\n",
	       batch, count, evals, commits, commits ? (double)evals / (double)commits : 0.0,
	       t1 - t0, (double)evals / (t1 - t0), c1 - c0,
	       evals ? (c1 - c0) * 1e6 / (double)evals : 0.0);
	status = evals > 0 ? 0 : 1;
out:
	free(due);
	store_close(st);
	return status;
}
