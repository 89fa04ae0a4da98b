#ifndef ALERT_EXEC_STORE_SQLITE_H
#define ALERT_EXEC_STORE_SQLITE_H

#include <sqlite3.h>

#include "def_cache.h"
#include "store_backend.h"

/*
 * The SQLite backend of store.h, internal to its files: store_sqlite.c
 * (connections, statements, transactions, start-up, pruning, clock
 * shifts), store_sqlite_alerts.c (definitions and evaluations) and
 * store_sqlite_calls.c (the outbox); store_sqlite_db.c is the database
 * file itself (pragmas, lock, migrations). Every SQL statement is in
 * the table of store_sqlite.c, prepared once per connection.
 */

/* next_eval of a retired alert: never due, and far from overflow when the
 * clock shifts. */
#define RETIRED_NEXT_EVAL (INT64_C(1) << 62)

/* alert_state's rows lie by the phase of their schedule: the first slot
 * of a phase is the phase in ms times this (so that many alerts may share
 * a phase; see migrations/sqlite/0003). */
#define SLOT_PHASE INT64_C(2097152)

enum stmt_id {
	S_BEGIN,
	S_BEGIN_READ,
	S_COMMIT,
	S_ROLLBACK,
	S_RELEASE_OUTBOX,
	S_CLAMP_STATE,
	S_CLAMP_OUTBOX,
	S_COUNT_ALERTS,
	S_COUNT_RETIRED,
	S_DEF_BY_NAME,
	S_DEF_INSERT,
	S_STATE_INSERT,
	S_DEF_UPDATE,
	S_STATE_NEXT_MIN,
	S_REVIVE_ALERT,
	S_REVIVE_STATE,
	S_SEEN_CLEAR,
	S_SEEN_ADD,
	S_UNSEEN,
	S_RETIRE_ALERT,
	S_RETIRE_STATE,
	S_STATE_GET,
	S_DUE_IDS,
	S_NEXT_IDS,
	S_DEF_BY_ID,
	S_DEFS_VERSION,
	S_DEFS_BUMP,
	S_EVAL_OK,
	S_EVAL_STAYS_PASS,
	S_EVAL_STAYS_PASS_SAME,
	S_EVAL_FAILED,
	S_NOTIFY_PENDING,
	S_TRANSITION_ADD,
	S_OUTBOX_ADD,
	S_DROP_REPEATS,
	S_DROP_SUPERSEDED,
	S_CLAIM_CALLS,
	S_LEASE_CALL,
	S_NEXT_CALL,
	S_CALL_DELIVERED,
	S_LAST_NOTIFIED,
	S_CALL_FAILED,
	S_GAVE_UP_NOTIFY,
	S_CALL_RELEASE,
	S_RETRY_NOW,
	S_COUNT_PENDING,
	S_PRUNE_OUTBOX,
	S_PRUNE_TRANSITION,
	S_PRUNE_ALERTS,
	S_SHIFT_STATE,
	S_SHIFT_OUTBOX,
	S_COUNT
};

struct sqlite_store {
	struct store base; /* first: a struct store * is one of these */
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	int64_t changes_at_begin; /* sqlite3_total_changes64 at BEGIN */
	struct def_cache defs;    /* what its picks read (store_pick_due) */
	/* The version of the definitions in the write transaction begun
	 * last, -1 until read (sqlite_store_eval_stays_pass). */
	int64_t tx_defs_version;
};

/* -1 with "<what>: <SQLite's message>" in err. */
int sql_fail(struct sqlite_store *st, char *err, size_t errlen, const char *what);

/* Resets and clears bindings; returns the statement ready to bind. */
sqlite3_stmt *sql_stmt(struct sqlite_store *st, enum stmt_id id);

/* A time, NULL for RULES_NEVER, and back. */
void sql_bind_time(sqlite3_stmt *s, int i, int64_t t);
int64_t sql_column_time(sqlite3_stmt *s, int i);

/* Copies a text column; "" for NULL. NULL when out of memory. */
char *sql_column_strdup(sqlite3_stmt *s, int i);

/* Reads a definition from the nine columns name, query, interval_ms,
 * repeat_ms, sustain_ms, warn_value, warn_message, crit_value,
 * crit_message starting at column first. Its strings are owned by *def
 * (also on failure: clear it). -1 with "<what>: ..." in err when out of
 * memory or the stored interval is not positive. */
int sql_column_def(sqlite3_stmt *s, int first, struct alert_def *def, const char *what, char *err,
		   size_t errlen);

/* Runs a statement that returns no row. */
int sql_run(struct sqlite_store *st, sqlite3_stmt *s, char *err, size_t errlen, const char *what);

/* Runs a statement that returns one integer (NULL -> if_null). */
int sql_run_int64(struct sqlite_store *st, sqlite3_stmt *s, int64_t if_null, int64_t *out,
		  char *err, size_t errlen, const char *what);

/* The entries of its struct store_ops (store_sqlite.c's table). */
void sqlite_store_close(struct store *st);
int sqlite_store_begin(struct store *st, char *err, size_t errlen);
int sqlite_store_commit(struct store *st, char *err, size_t errlen);
void sqlite_store_rollback(struct store *st);
int sqlite_store_release_leases(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
				size_t errlen);
int sqlite_store_count_alerts(struct store *st, int64_t *active, int64_t *retired, char *err,
			      size_t errlen);
int sqlite_store_sync_defs(struct store *st, const struct alert_def *defs, size_t n,
			   const char *const *keep, size_t nkeep, int64_t now, int due_now,
			   struct store_sync_stats *stats, char *err, size_t errlen);
int sqlite_store_pick_due(struct store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
			  void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
			  char *err, size_t errlen);
int sqlite_store_next_pick(struct store *st, int (*skip)(int64_t alert_id, void *arg), void *arg,
			   size_t in_flight, int64_t *at, char *err, size_t errlen);
int sqlite_store_eval_get(struct store *st, const struct store_due *due, struct rules_state *s,
			  int64_t *next_eval, enum store_eval_check *check, char *err,
			  size_t errlen);
int sqlite_store_eval_stays_pass(struct store *st, const struct store_due *due, double value,
				 int64_t at, int *written, char *err, size_t errlen);
int sqlite_store_eval_put_ok(struct store *st, int64_t alert_id, const struct rules_state *s,
			     double value, int64_t at, int64_t next_eval, char *err, size_t errlen);
int sqlite_store_eval_put_failed(struct store *st, int64_t alert_id, int64_t at, const char *error,
				 int64_t next_eval, char *err, size_t errlen);
int sqlite_store_transition_add(struct store *st, int64_t alert_id, int64_t at,
				enum rules_level from, enum rules_level to, double value, char *err,
				size_t errlen);
int sqlite_store_call_add(struct store *st, int64_t alert_id, enum store_kind kind,
			  const char *message, int64_t now, char *err, size_t errlen);
int sqlite_store_call_add_repeat(struct store *st, int64_t alert_id, const char *message,
				 int64_t now, char *err, size_t errlen);
int sqlite_store_claim_calls(struct store *st, int64_t now, int64_t not_after, int64_t lease_ms,
			     int64_t token, struct store_call *out, size_t max, size_t *n,
			     char *err, size_t errlen);
int sqlite_store_call_drop_superseded(struct store *st, const struct store_call *call, int *dropped,
				      char *err, size_t errlen);
int sqlite_store_next_call(struct store *st, int64_t *at, char *err, size_t errlen);
int sqlite_store_call_delivered(struct store *st, const struct store_call *call, int64_t at,
				enum store_outcome *outcome, char *err, size_t errlen);
int sqlite_store_call_failed(struct store *st, const struct store_call *call,
			     const struct store_failure *f, enum store_outcome *outcome, char *err,
			     size_t errlen);
int sqlite_store_call_release(struct store *st, const struct store_call *call, int maybe_sent,
			      char *err, size_t errlen);
int sqlite_store_calls_retry_now(struct store *st, int64_t at, int64_t *n, char *err,
				 size_t errlen);
int sqlite_store_count_pending(struct store *st, int64_t *n, char *err, size_t errlen);
int sqlite_store_prune(struct store *st, int64_t cutoff, int64_t max_rows, int64_t *deleted,
		       char *err, size_t errlen);
int sqlite_store_shift_times(struct store *st, int64_t delta, char *err, size_t errlen);

#endif
