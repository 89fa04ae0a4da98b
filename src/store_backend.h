#ifndef ALERT_EXEC_STORE_BACKEND_H
#define ALERT_EXEC_STORE_BACKEND_H

#include "store.h"

/*
 * What a backend of store.h provides (store.c dispatches to it): one
 * entry per function of store.h that works on a connection, and its
 * prepare and open. Each backend's connection embeds struct store first.
 */

struct store_ops {
	void (*close)(struct store *st);
	int (*begin)(struct store *st, char *err, size_t errlen);
	int (*commit)(struct store *st, char *err, size_t errlen);
	void (*rollback)(struct store *st);
	int (*release_leases)(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
			      size_t errlen);
	int (*count_alerts)(struct store *st, int64_t *active, int64_t *retired, char *err,
			    size_t errlen);
	int (*sync_defs)(struct store *st, const struct alert_def *defs, size_t n,
			 const char *const *keep, size_t nkeep, int64_t now, int due_now,
			 struct store_sync_stats *stats, char *err, size_t errlen);
	int (*pick_due)(struct store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
			void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
			char *err, size_t errlen);
	int (*next_pick)(struct store *st, int (*skip)(int64_t alert_id, void *arg), void *arg,
			 size_t in_flight, int64_t *at, char *err, size_t errlen);
	int (*eval_get)(struct store *st, const struct store_due *due, struct rules_state *s,
			int64_t *next_eval, enum store_eval_check *check, char *err, size_t errlen);
	int (*eval_stays_pass)(struct store *st, const struct store_due *due, double value,
			       int64_t at, int *written, char *err, size_t errlen);
	/* NULL: eval_stays_pass for each (an embedded database has no round
	 * trip to save). */
	int (*evals_stay_pass)(struct store *st, const struct store_pass *p, size_t n,
			       unsigned char *written, char *err, size_t errlen);
	int (*eval_put_ok)(struct store *st, int64_t alert_id, const struct rules_state *s,
			   double value, int64_t at, int64_t next_eval, char *err, size_t errlen);
	int (*eval_put_failed)(struct store *st, int64_t alert_id, int64_t at, const char *error,
			       int64_t next_eval, char *err, size_t errlen);
	int (*transition_add)(struct store *st, int64_t alert_id, int64_t at, enum rules_level from,
			      enum rules_level to, double value, char *err, size_t errlen);
	int (*call_add)(struct store *st, int64_t alert_id, enum store_kind kind,
			const char *message, int64_t now, char *err, size_t errlen);
	int (*call_add_repeat)(struct store *st, int64_t alert_id, const char *message, int64_t now,
			       char *err, size_t errlen);
	int (*claim_calls)(struct store *st, int64_t now, int64_t not_after, int64_t lease_ms,
			   int64_t token, struct store_call *out, size_t max, size_t *n, char *err,
			   size_t errlen);
	int (*call_drop_superseded)(struct store *st, const struct store_call *call, int *dropped,
				    char *err, size_t errlen);
	int (*next_call)(struct store *st, int64_t *at, char *err, size_t errlen);
	int (*call_delivered)(struct store *st, const struct store_call *call, int64_t at,
			      enum store_outcome *outcome, char *err, size_t errlen);
	int (*call_failed)(struct store *st, const struct store_call *call,
			   const struct store_failure *f, enum store_outcome *outcome, char *err,
			   size_t errlen);
	int (*call_release)(struct store *st, const struct store_call *call, int maybe_sent,
			    char *err, size_t errlen);
	int (*calls_retry_now)(struct store *st, int64_t at, int64_t *n, char *err, size_t errlen);
	int (*count_pending)(struct store *st, int64_t *n, char *err, size_t errlen);
	int (*prune)(struct store *st, int64_t cutoff, int64_t max_rows, int64_t *deleted,
		     char *err, size_t errlen);
	int (*shift_times)(struct store *st, int64_t delta, char *err, size_t errlen);
	/* NULL in a backend whose connection cannot be lost (SQLite). */
	int (*connection_lost)(const struct store *st);
	int (*reconnect)(struct store *st, char *err, size_t errlen);
	/* Shard leases: NULL in a backend whose database is one engine's. */
	int (*engine_beat)(struct store *st, const char *engine, enum store_beat beat,
			   int64_t live_ms, int64_t *live, char *err, size_t errlen);
	int (*shards_renew)(struct store *st, const char *engine, int64_t lease_ms,
			    struct store_shards *held, char *err, size_t errlen);
	int (*shards_claim)(struct store *st, const char *engine, int64_t lease_ms, size_t max,
			    struct store_shards *got, char *err, size_t errlen);
	int (*shards_release)(struct store *st, const char *engine,
			      const struct store_shards *which, char *err, size_t errlen);
	int (*limit_shards)(struct store *st, const struct store_shards *held, char *err,
			    size_t errlen);
	int (*fence)(struct store *st, const char *engine, const struct store_shards *want,
		     struct store_shards *valid, char *err, size_t errlen);
};

/* The part of a connection every backend shares: its table and what its
 * commits wrote (store_counters). */
struct store {
	const struct store_ops *ops;
	struct store_counters counters;
};

/* What a backend provides for reading for people (store.h's "Reading for
 * people"); each backend's reader embeds struct store_reader first. */
struct store_reader_ops {
	void (*close)(struct store_reader *r);
	int (*alerts)(struct store_reader *r, size_t max, struct store_alert_status **out,
		      size_t *n, size_t *total, char *err, size_t errlen);
	int (*state_counts)(struct store_reader *r, int64_t counts[3], char *err, size_t errlen);
	int (*outbox_totals)(struct store_reader *r, struct store_outbox_totals *out, char *err,
			     size_t errlen);
	int (*pending)(struct store_reader *r, size_t max, struct store_pending_call **out,
		       size_t *n, char *err, size_t errlen);
};

struct store_reader {
	const struct store_reader_ops *ops;
};

/* The hold of an engine on its database: SQLite's advisory lock file
 * (one engine per database); fd -1 when the backend takes none
 * (PostgreSQL lets several engines share a database). */
struct store_lock {
	int fd;
};

/* The SQLite backend (store_sqlite*.c): store_prepare and store_open for
 * a path. */
int store_sqlite_prepare(const char *path, int sync_full, struct store_lock **lock, char *err,
			 size_t errlen);
int store_sqlite_open(const char *path, int sync_full, struct store **out, char *err,
		      size_t errlen);
int store_sqlite_reader_open(const char *path, struct store_reader **out, char *err, size_t errlen);

struct def_cache;

/* For a backend's pick: the due takes its alert's entry e of the cache
 * c. When e is NULL (a miss) the backend read the definition into *def
 * (read: 0, or -1 with err set) with its version: it goes into the
 * cache. *def is cleared. -1 when it could not be read or kept. */
int store_due_from_cache(struct store_due *d, struct def_cache *c, struct def_entry *e, int read,
			 struct alert_def *def, int64_t version, char *err, size_t errlen);

#ifdef ALERT_EXEC_POSTGRES
/* The PostgreSQL backend (store_pg*.c): for a connection string. */
int store_pg_prepare(const char *conninfo, struct store_lock **lock, char *err, size_t errlen);
int store_pg_open(const char *conninfo, struct store **out, char *err, size_t errlen);
int store_pg_reader_open(const char *conninfo, struct store_reader **out, char *err, size_t errlen);
#endif

#endif
