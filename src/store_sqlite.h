#ifndef ALERT_EXEC_STORE_SQLITE_H
#define ALERT_EXEC_STORE_SQLITE_H

#include <sqlite3.h>

#include "store.h"

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
 * a phase; see migrations/0003). */
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
	S_EVAL_OK,
	S_EVAL_STAYS_PASS,
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

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	int64_t changes_at_begin; /* sqlite3_total_changes64 at BEGIN */
	struct store_counters counters;
};

/* -1 with "<what>: <SQLite's message>" in err. */
int sql_fail(struct store *st, char *err, size_t errlen, const char *what);

/* Resets and clears bindings; returns the statement ready to bind. */
sqlite3_stmt *sql_stmt(struct store *st, enum stmt_id id);

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
int sql_run(struct store *st, sqlite3_stmt *s, char *err, size_t errlen, const char *what);

/* Runs a statement that returns one integer (NULL -> if_null). */
int sql_run_int64(struct store *st, sqlite3_stmt *s, int64_t if_null, int64_t *out, char *err,
		  size_t errlen, const char *what);

#endif
