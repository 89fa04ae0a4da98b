#ifndef ALERT_EXEC_STORE_PG_H
#define ALERT_EXEC_STORE_PG_H

#include <libpq-fe.h>

#include "def_cache.h"
#include "store_backend.h"
#include "store_sqlite_db.h" /* struct db_migration */

/*
 * The PostgreSQL backend of store.h, internal to its files: store_pg.c
 * (statements, transactions, start-up, pruning, clock shifts),
 * store_pg_alerts.c (definitions and evaluations), store_pg_calls.c (the
 * outbox) and store_pg_db.c (connecting, migrations). Every SQL statement
 * is in the table of store_pg.c, prepared once per connection.
 * Parameters and results go as text.
 */

/* The embedded migrations/postgresql/ (generated). */
extern const struct db_migration pg_migrations[];
extern const size_t pg_migration_count;

/* Number of shards the alerts are split into: an alert's is
 * hash_str(name) % PG_SHARDS. */
#define PG_SHARDS STORE_SHARDS

/* next_eval of a retired alert, as on SQLite. */
#define PG_RETIRED_NEXT_EVAL (INT64_C(1) << 62)

enum pg_stmt_id {
	P_RELEASE_OUTBOX,
	P_CLAMP_STATE,
	P_CLAMP_OUTBOX,
	P_COUNT_ALERTS,
	P_COUNT_RETIRED,
	P_SYNC_LOCK,
	P_DEFS_BUMP,
	P_DEF_BY_NAME,
	P_DEF_INSERT,
	P_STATE_INSERT,
	P_DEF_UPDATE,
	P_STATE_NEXT_MIN,
	P_REVIVE_ALERT,
	P_REVIVE_STATE,
	P_UNSEEN,
	P_RETIRE_ALERT,
	P_RETIRE_STATE,
	P_STATE_GET,
	P_DUE,
	P_NEXT_IDS,
	P_EVAL_OK,
	P_EVAL_STAYS_PASS,
	P_EVALS_STAY_PASS,
	P_EVAL_FAILED,
	P_NOTIFY_PENDING,
	P_TRANSITION_ADD,
	P_OUTBOX_ADD,
	P_DROP_REPEATS,
	P_DROP_SUPERSEDED,
	P_CLAIM_CALLS,
	P_LEASE_CALL,
	P_NEXT_CALL,
	P_CALL_DELIVERED,
	P_LAST_NOTIFIED,
	P_CALL_FAILED,
	P_GAVE_UP_NOTIFY,
	P_CALL_RELEASE,
	P_RETRY_NOW,
	P_COUNT_PENDING,
	P_PRUNE_OUTBOX,
	P_PRUNE_TRANSITION,
	P_PRUNE_ALERTS,
	P_PRUNE_ENGINES,
	P_SHIFT_STATE,
	P_SHIFT_OUTBOX,
	P_ENGINE_BEAT,
	P_ENGINE_STOPPED,
	P_ENGINE_LIVE,
	P_SHARD_RENEW,
	P_SHARD_CLAIM,
	P_SHARD_CALLS_FREE,
	P_SHARD_RELEASE,
	P_SHARD_DISOWN,
	P_FENCE,
	P_COUNT
};

struct pg_store {
	struct store base; /* first: a struct store * is one of these */
	PGconn *conn;
	int64_t rows_in_tx; /* rows the open transaction's statements changed */
	/* store_limit_shards: the shard ids as an array literal, NULL for
	 * every alert. */
	char *limit;
	int unprepared;        /* a reconnect could not prepare the statements */
	struct def_cache defs; /* what its picks read (store_pick_due) */
};

/* The text parameters of one statement. A value is NULL for SQL NULL. */
#define PG_MAX_PARAMS 12
struct pg_params {
	int n;
	const char *v[PG_MAX_PARAMS];
	char buf[PG_MAX_PARAMS][32];
};

void pg_int(struct pg_params *p, int64_t x);
void pg_time(struct pg_params *p, int64_t t); /* NULL for RULES_NEVER */
void pg_double(struct pg_params *p, double x);
void pg_text(struct pg_params *p, const char *s); /* NULL: SQL NULL */

/* Runs a prepared statement. Returns its result (PQclear it) or NULL
 * with "<what>: <the server's message>" (one line) in err. */
PGresult *pg_run(struct pg_store *st, enum pg_stmt_id id, const struct pg_params *p, char *err,
		 size_t errlen, const char *what);

/* Runs a statement and forgets its result; *changed (may be NULL) gets
 * the rows it inserted, updated or deleted. */
int pg_run_changed(struct pg_store *st, enum pg_stmt_id id, const struct pg_params *p,
		   int64_t *changed, char *err, size_t errlen, const char *what);

/* Runs a statement that returns one integer (NULL -> if_null). */
int pg_run_int64(struct pg_store *st, enum pg_stmt_id id, const struct pg_params *p,
		 int64_t if_null, int64_t *out, char *err, size_t errlen, const char *what);

/* Columns of a result, as numbers; a time is RULES_NEVER when NULL. */
int64_t pg_get_int(const PGresult *r, int row, int col);
int64_t pg_get_time(const PGresult *r, int row, int col);
double pg_get_double(const PGresult *r, int row, int col);

/* Reads a definition from the nine columns name, query, interval_ms,
 * repeat_ms, sustain_ms, warn_value, warn_message, crit_value,
 * crit_message starting at column first (as sql_column_def). */
int pg_get_def(const PGresult *r, int row, int first, struct alert_def *def, const char *what,
	       char *err, size_t errlen);

/* libpq's message of conn on one line: newlines and tabs become spaces,
 * "FATAL:  " or "ERROR:  " prefixes go. */
const char *pg_message(PGconn *conn, char *out, size_t outlen);

/* Connects to conninfo (store_pg_db.c): one line in err on failure,
 * naming the location redacted. */
int pg_connect(const char *conninfo, PGconn **out, char *err, size_t errlen);

/* Applies the migrations newer than the database's schema_version, all
 * in one transaction under an advisory lock (engines starting together
 * migrate once). STORE_OK, STORE_ERR_NEWER or STORE_ERR. */
int pg_migrate(PGconn *conn, char *err, size_t errlen);

/* The newest schema version this binary knows, and a database's (0 when
 * it has none). */
int pg_latest_version(void);
int pg_schema_version(PGconn *conn, int *out, char *err, size_t errlen);

/* The entries of its struct store_ops. */
void pg_store_close(struct store *st);
int pg_store_begin(struct store *st, char *err, size_t errlen);
int pg_store_commit(struct store *st, char *err, size_t errlen);
void pg_store_rollback(struct store *st);
int pg_store_release_leases(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
			    size_t errlen);
int pg_store_count_alerts(struct store *st, int64_t *active, int64_t *retired, char *err,
			  size_t errlen);
int pg_store_sync_defs(struct store *st, const struct alert_def *defs, size_t n,
		       const char *const *keep, size_t nkeep, int64_t now, int due_now,
		       struct store_sync_stats *stats, char *err, size_t errlen);
int pg_store_pick_due(struct store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
		      void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
		      char *err, size_t errlen);
int pg_store_next_pick(struct store *st, int (*skip)(int64_t alert_id, void *arg), void *arg,
		       size_t in_flight, int64_t *at, char *err, size_t errlen);
int pg_store_eval_get(struct store *st, const struct store_due *due, struct rules_state *s,
		      int64_t *next_eval, enum store_eval_check *check, char *err, size_t errlen);
int pg_store_evals_stay_pass(struct store *st, const struct store_pass *p, size_t n,
			     unsigned char *written, char *err, size_t errlen);
int pg_store_eval_stays_pass(struct store *st, const struct store_due *due, double value,
			     int64_t at, int *written, char *err, size_t errlen);
int pg_store_eval_put_ok(struct store *st, int64_t alert_id, const struct rules_state *s,
			 double value, int64_t at, int64_t next_eval, char *err, size_t errlen);
int pg_store_eval_put_failed(struct store *st, int64_t alert_id, int64_t at, const char *error,
			     int64_t next_eval, char *err, size_t errlen);
int pg_store_transition_add(struct store *st, int64_t alert_id, int64_t at, enum rules_level from,
			    enum rules_level to, double value, char *err, size_t errlen);
int pg_store_call_add(struct store *st, int64_t alert_id, enum store_kind kind, const char *message,
		      int64_t now, char *err, size_t errlen);
int pg_store_call_add_repeat(struct store *st, int64_t alert_id, const char *message, int64_t now,
			     char *err, size_t errlen);
int pg_store_claim_calls(struct store *st, int64_t now, int64_t not_after, int64_t lease_ms,
			 int64_t token, struct store_call *out, size_t max, size_t *n, char *err,
			 size_t errlen);
int pg_store_call_drop_superseded(struct store *st, const struct store_call *call, int *dropped,
				  char *err, size_t errlen);
int pg_store_next_call(struct store *st, int64_t *at, char *err, size_t errlen);
int pg_store_call_delivered(struct store *st, const struct store_call *call, int64_t at,
			    enum store_outcome *outcome, char *err, size_t errlen);
int pg_store_call_failed(struct store *st, const struct store_call *call,
			 const struct store_failure *f, enum store_outcome *outcome, char *err,
			 size_t errlen);
int pg_store_call_release(struct store *st, const struct store_call *call, int maybe_sent,
			  char *err, size_t errlen);
int pg_store_calls_retry_now(struct store *st, int64_t at, int64_t *n, char *err, size_t errlen);
int pg_store_count_pending(struct store *st, int64_t *n, char *err, size_t errlen);
int pg_store_prune(struct store *st, int64_t cutoff, int64_t max_rows, int64_t *deleted, char *err,
		   size_t errlen);
int pg_store_shift_times(struct store *st, int64_t delta, char *err, size_t errlen);
int pg_store_connection_lost(const struct store *st);
int pg_store_reconnect(struct store *st, char *err, size_t errlen);
int pg_store_engine_beat(struct store *st, const char *engine, enum store_beat beat,
			 int64_t live_ms, int64_t *live, char *err, size_t errlen);
int pg_store_shards_renew(struct store *st, const char *engine, int64_t lease_ms,
			  struct store_shards *held, char *err, size_t errlen);
int pg_store_shards_claim(struct store *st, const char *engine, int64_t lease_ms, size_t max,
			  struct store_shards *got, char *err, size_t errlen);
int pg_store_shards_release(struct store *st, const char *engine, const struct store_shards *which,
			    char *err, size_t errlen);
int pg_store_limit_shards(struct store *st, const struct store_shards *held, char *err,
			  size_t errlen);
int pg_store_fence(struct store *st, const char *engine, const struct store_shards *want,
		   struct store_shards *valid, char *err, size_t errlen);

#endif
