#ifndef ALERT_EXEC_STORE_H
#define ALERT_EXEC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/*
 * The storage the engine sees: definitions, evaluation state, the outbox
 * of calls and the history, behind one interface that a backend fills
 * (store_sqlite*.c: SQLite, the embedded default; store_pg*.c:
 * PostgreSQL, when built with libpq). store.c picks the backend by the
 * database's location. Nothing of the backend shows through: no
 * connection type, no SQL.
 *
 * A struct store is one connection of one thread, with what it prepared.
 * Functions return 0 on success and -1 on failure with a message in err.
 * Functions marked "in a transaction" expect the caller to have called
 * store_begin(); the others run their own transaction.
 */

struct store;

/* What store_prepare found. */
enum store_status {
	STORE_OK = 0,
	STORE_ERR = -1,        /* cannot open, corrupt, I/O, read-only */
	STORE_ERR_NEWER = -2,  /* written by a newer version */
	STORE_ERR_LOCKED = -3, /* another engine holds it: the message names it */
};

/* The hold of one engine on its database, from store_prepare to
 * store_unlock (or the process's end). */
struct store_lock;

/* Whether location names a PostgreSQL database: a postgresql:// or
 * postgres:// URI (libpq's URI form, parameters included). Anything
 * else is the path of a SQLite file. */
int store_location_is_postgres(const char *location);

/* Whether this binary was built with the PostgreSQL backend (libpq). */
int store_postgres_built(void);

/* Writes location into out (outlen > 0, truncated to fit) with what may
 * be secret hidden: a URI's userinfo and its password= parameters.
 * Returns out. For logs and messages. */
const char *store_redact_location(char *out, size_t outlen, const char *location);

/* Readies the database at location for this engine and migrates it to
 * the schema this binary knows. SQLite: takes its lock (one engine per
 * database), creates the file when missing (readable by its owner only)
 * and checks that it is not corrupt. PostgreSQL: takes no lock (engines
 * may share a database); the database must exist, and a server that
 * cannot be reached, refuses the login or has no such database is
 * STORE_ERR. An enum store_status, the message in err (the location
 * redacted); on STORE_OK *lock is set. A PostgreSQL location in a build
 * without libpq is STORE_ERR. */
int store_prepare(const char *location, int sync_full, struct store_lock **lock, char *err,
		  size_t errlen);
void store_unlock(struct store_lock *lock);

enum store_kind {
	STORE_NOTIFY = 1,
	STORE_RESOLVE = 2,
};

/* Opens a connection to a database store_prepare readied. */
int store_open(const char *location, int sync_full, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* Whether the connection to the database server was lost (PostgreSQL
 * restarted, the connection cut): then every call fails until
 * store_reconnect succeeds. Never for SQLite, whose file is opened once.
 * A failure of a lost connection is not the database's answer: the
 * caller waits and reconnects rather than giving up. */
int store_connection_lost(const struct store *st);

/* Connects again (the open transaction is gone with the connection).
 * 0, or -1 with a message while the server cannot be reached. */
int store_reconnect(struct store *st, char *err, size_t errlen);

/* What this connection's transactions wrote: commits that changed at
 * least one row, and the rows they inserted, updated or deleted (the
 * benchmark's rows per commit). */
struct store_counters {
	int64_t commits;
	int64_t rows;
};
void store_counters(const struct store *st, struct store_counters *out);

/* Begins a write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ
 * COMMITTED), commits it or rolls it back. store_rollback never fails
 * visibly (a failed rollback leaves the database's own automatic one). */
int store_begin(struct store *st, char *err, size_t errlen);
int store_commit(struct store *st, char *err, size_t errlen);
void store_rollback(struct store *st);

/* Start-up: every call a previous process had claimed is released (it may
 * have reached the server: a repeat among them is no longer dropped by a
 * state change). An evaluation picked but not written is due already (a
 * pick writes nothing). Times that
 * lie ahead of `now` further than they can (the wall clock went back while
 * no engine ran) are brought back, so nothing stalls for the size of the
 * jump: a next_eval beyond now + interval to now + (the rest of it modulo
 * the interval, which keeps the alerts spread), a pending call's
 * next_attempt beyond now + max_wait_ms to that, and last_notified,
 * last_ok, last_eval, the sustain clocks and a pending call's created to
 * at most now. One transaction. */
int store_release_leases(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
			 size_t errlen);

/* Number of alerts that are not retired in *active and, when retired is
 * not NULL, of those kept retired (their history and calls may still be
 * due) in *retired. */
int store_count_alerts(struct store *st, int64_t *active, int64_t *retired, char *err,
		       size_t errlen);

struct store_sync_stats {
	size_t added, changed, retired, revived, unchanged;
};

/* Makes the stored definitions equal to defs[0..n) in one transaction:
 * new alerts get a PASS state and a first evaluation (rules_first_eval, or
 * now when due_now); changed ones keep their state; alerts missing from
 * defs are retired (a firing one gets a resolve in the outbox and goes to
 * PASS); retired ones that come back are evaluated again. The alerts
 * named in keep[0..nkeep) (entries the server sent but that failed
 * validation) keep their stored definition and state. A sync that changes
 * any definition moves the version of the definitions (store_pick_due). */
int store_sync_defs(struct store *st, const struct alert_def *defs, size_t n,
		    const char *const *keep, size_t nkeep, int64_t now, int due_now,
		    struct store_sync_stats *stats, char *err, size_t errlen);

struct def_entry;

/* A picked evaluation. def's strings are borrowed from entry, of which
 * the due holds a reference (def_cache.h), or, when entry is NULL, owned;
 * store_due_clear releases either. */
struct store_due {
	int64_t alert_id;
	int64_t scheduled; /* the next_eval it was picked at */
	int64_t version;   /* of the definition: it changes with every change of it */
	struct alert_def def;
	struct def_entry *entry;
	int64_t row; /* the backend's handle of the alert's state row, 0 when none */
};
void store_due_clear(struct store_due *due);

/* The evaluation scheduler's claim, which writes nothing: up to max
 * alerts with next_eval <= now, earliest first, leaving out those for
 * which skip(alert_id, arg) is non-zero (the in_flight ones it holds;
 * skip may be NULL). An alert stays due until its evaluation is written
 * (store_eval_put_ok / _failed move next_eval on), so one picked but never
 * written is due at once at the next start. The definitions come from the
 * connection's cache (def_cache.h), read from the database when the
 * version of the definitions moved since the last pick or the alert was
 * not picked since: a refresh's changes are seen by the next pick. Each
 * due holds a reference (store_due_clear). In or out of a transaction. */
int store_pick_due(struct store *st, int64_t now, int (*skip)(int64_t alert_id, void *arg),
		   void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
		   char *err, size_t errlen);

/* Earliest next_eval of an alert not skipped (INT64_MAX when none): when
 * the next pick falls due. in_flight as for store_pick_due. */
int store_next_pick(struct store *st, int (*skip)(int64_t alert_id, void *arg), void *arg,
		    size_t in_flight, int64_t *at, char *err, size_t errlen);

/* Whether a picked evaluation may still be written: its alert was
 * retired since the pick, or its definition changed (an evaluation made
 * with the old thresholds, messages or interval says nothing about the
 * new one: it is written as if abandoned, and the alert, still due, is
 * picked again with its new definition). */
enum store_eval_check {
	STORE_EVAL_CURRENT = 0,
	STORE_EVAL_RETIRED,
	STORE_EVAL_CHANGED,
};

/* In a transaction: the current rules state of a picked alert, with
 * notify_pending read from the outbox when the state is WARN or CRITICAL
 * (0 in PASS, where the rules do not look at it), its next_eval, and in
 * *check whether the pick is still current (nothing should be written
 * when it is not). The rules' last_notified is the later of the last
 * delivered notify and the last one given up: a call the server refuses
 * for good holds the next repeat back like a delivered one. */
int store_eval_get(struct store *st, const struct store_due *due, struct rules_state *s,
		   int64_t *next_eval, enum store_eval_check *check, char *err, size_t errlen);

/* In a transaction: the evaluation of a picked alert whose value is PASS
 * (at or below both thresholds, rules_level), written in one statement
 * when the alert is in PASS, not retired, and its definition is the one
 * picked: then nothing else follows from it (no transition, no call) and
 * *written is 1. Otherwise nothing is written and *written is 0: the
 * caller takes the full path (store_eval_get, rules_step, ...). Most
 * evaluations of most alerts are this one. */
int store_eval_stays_pass(struct store *st, const struct store_due *due, double value, int64_t at,
			  int *written, char *err, size_t errlen);

/* One evaluation for store_evals_stay_pass. */
struct store_pass {
	const struct store_due *due;
	double value;
	int64_t at;
};

/* In a transaction: store_eval_stays_pass for n evaluations of distinct
 * alerts, written[i] set to 1 or 0 for each. On PostgreSQL one statement
 * for them all: a round trip per evaluation would bound the engine by the
 * server's latency. */
int store_evals_stay_pass(struct store *st, const struct store_pass *p, size_t n,
			  unsigned char *written, char *err, size_t errlen);

/* In a transaction: record a successful or a failed evaluation of a
 * picked alert (a failure keeps the state, counts it and stores the
 * error) and move next_eval on to next_eval. */
int store_eval_put_ok(struct store *st, int64_t alert_id, const struct rules_state *s, double value,
		      int64_t at, int64_t next_eval, char *err, size_t errlen);
int store_eval_put_failed(struct store *st, int64_t alert_id, int64_t at, const char *error,
			  int64_t next_eval, char *err, size_t errlen);

/* In a transaction: appends to the history of state changes. */
int store_transition_add(struct store *st, int64_t alert_id, int64_t at, enum rules_level from,
			 enum rules_level to, double value, char *err, size_t errlen);

/* In a transaction: enqueues the call of a state change of the alert
 * (message NULL for a resolve). The alert's repeat notifies still pending
 * and not claimed are deleted first: they repeat a state the alert has
 * left, and the change's own call says what holds now. A claimed one may
 * be on its way to the server; its delivery worker deletes it with
 * store_call_drop_superseded unless it is sent or being sent. */
int store_call_add(struct store *st, int64_t alert_id, enum store_kind kind, const char *message,
		   int64_t now, char *err, size_t errlen);

/* In a transaction: enqueues a repeat notify of the alert's firing state. */
int store_call_add_repeat(struct store *st, int64_t alert_id, const char *message, int64_t now,
			  char *err, size_t errlen);

/* A claimed outbox row. name and message are owned (store_call_clear). */
struct store_call {
	int64_t id;
	int64_t alert_id;
	enum store_kind kind;
	char *name;
	char *message; /* NULL for a resolve */
	int attempts;  /* attempts made before this one */
	int64_t created;
	int repeat;          /* a repeat notify: dropped once its state is over */
	int64_t lease_token; /* the claim's: every write of the outcome names it */
};
void store_call_clear(struct store_call *call);

/* Claims up to max deliverable rows in one transaction: each the oldest
 * pending row of its alert, with next_attempt <= not_after, not leased
 * (or its lease ran out before now); never two rows of one alert. Each
 * gets lease_until = now + lease_ms and the claim's token, which must
 * differ from every other claim's of the process (a counter will do: the
 * tokens of an earlier process are cleared at start). */
int store_claim_calls(struct store *st, int64_t now, int64_t not_after, int64_t lease_ms,
		      int64_t token, struct store_call *out, size_t max, size_t *n, char *err,
		      size_t errlen);

/* In a transaction: deletes a claimed repeat notify when a state change
 * of its alert was enqueued after it (*dropped 1): the state it repeats
 * is over. Called before sending it, and after an attempt that failed.
 * Nothing is deleted once the claim's lease is lost. */
int store_call_drop_superseded(struct store *st, const struct store_call *call, int *dropped,
			       char *err, size_t errlen);

/* Earliest next_attempt among the unleased heads of the alerts' queues
 * (INT64_MAX when none). */
int store_next_call(struct store *st, int64_t *at, char *err, size_t errlen);

/* What became of a call whose outcome was written. A claim whose lease
 * ran out (its worker stalled) and whose row was claimed again since is
 * LOST: its write changes nothing, so it cannot undo the newer claim's. */
enum store_outcome {
	STORE_CALL_DELIVERED = 0,
	STORE_CALL_WAITS, /* due again at its next attempt */
	STORE_CALL_DEAD,  /* given up */
	STORE_CALL_LOST,  /* the lease was lost: nothing written */
};

/* In a transaction: the call was accepted at `at`: status delivered; a
 * notify also sets the alert's last_notified. DELIVERED or LOST. */
int store_call_delivered(struct store *st, const struct store_call *call, int64_t at,
			 enum store_outcome *outcome, char *err, size_t errlen);

/* An attempt that failed. */
struct store_failure {
	int64_t at;           /* when it failed */
	int64_t next_attempt; /* when it is due again, unless given up */
	int64_t give_up_ms;   /* given up when created this long before at */
	int rejected;         /* given up now: the server refused it for good */
	int maybe_sent;       /* it may have reached the server: a repeat is no
				 * longer dropped by a state change */
	int64_t not_before;   /* the server asked for no attempt before this
				 * (Retry-After), 0 when it did not */
	const char *error;
};

/* In a transaction: attempts + 1 and the error; the call waits for
 * next_attempt or, when rejected or too old, is dead (a dead notify holds
 * the alert's next repeat back, see store_eval_get). The age is measured
 * against the stored created, in the database's timebase. WAITS, DEAD or
 * LOST. */
int store_call_failed(struct store *st, const struct store_call *call,
		      const struct store_failure *f, enum store_outcome *outcome, char *err,
		      size_t errlen);

/* In a transaction: gives a claimed call back without counting an
 * attempt. maybe_sent: the request was cut short and may have reached the
 * server, so a repeat is no longer dropped by a state change. */
int store_call_release(struct store *st, const struct store_call *call, int maybe_sent, char *err,
		       size_t errlen);

/* In a transaction: rows waiting in backoff after a server or transport
 * failure become due at `at` (the server answered again), but for those
 * the server asked to wait longer (store_failure.not_before). Returns the
 * number of rows changed in *n. Limited as store_limit_shards says. */
int store_calls_retry_now(struct store *st, int64_t at, int64_t *n, char *err, size_t errlen);

/* Number of pending outbox rows. Limited as store_limit_shards says. */
int store_count_pending(struct store *st, int64_t *n, char *err, size_t errlen);

/* Deletes up to max_rows delivered or dead calls that finished before
 * cutoff and up to max_rows transitions before cutoff, and the retired
 * alerts retired before cutoff that have nothing pending; on a shared
 * database also the engines whose last heartbeat came before cutoff and
 * that own no shard. Pending rows are never deleted. Sets *deleted; call
 * again while it is max_rows or more. Own transaction. */
int store_prune(struct store *st, int64_t cutoff, int64_t max_rows, int64_t *deleted, char *err,
		size_t errlen);

/* The wall clock jumped by delta ms: every stored time that schedules or
 * measures something (next evaluations, next attempts, last notify, run
 * clocks, leases, the creation of pending calls, whose age decides when
 * they are given up) moves with it, so nothing fires early, stalls or is
 * given up for the size of the jump. Own transaction. */
int store_shift_times(struct store *st, int64_t delta, char *err, size_t errlen);

/* ---- Reading for people: the status page, /metrics, `alert-exec status` ----
 *
 * A reader is a connection of its own that never writes and takes no
 * lock of the engine's: it may run beside a running daemon (or none).
 * Times are ms since the epoch, 0 when never. */
struct store_reader;

/* Opens the existing database at location for reading. A missing
 * database is an error (nothing is created), and so is one whose schema
 * is not the one this binary knows (older: the daemon migrates it at its
 * next start; newer). */
int store_reader_open(const char *location, struct store_reader **out, char *err, size_t errlen);
void store_reader_close(struct store_reader *r);

/* One alert as people look at it. Strings are owned. */
struct store_alert_status {
	char *name;
	enum rules_level state;
	int has_value;
	double last_value;
	int64_t last_eval, next_eval, last_notified;
	int64_t failures, pending;
	char *last_error; /* NULL when the last evaluation worked */
	int retired;
};

/* Up to max alerts, firing first (CRITICAL, then WARN, then PASS), then
 * by name; *total is the number of alerts there are. Free *out with
 * store_alert_status_free. */
int store_read_alerts(struct store_reader *r, size_t max, struct store_alert_status **out,
		      size_t *n, size_t *total, char *err, size_t errlen);
void store_alert_status_free(struct store_alert_status *a, size_t n);

/* Active alerts by state ([enum rules_level]). */
int store_read_state_counts(struct store_reader *r, int64_t counts[3], char *err, size_t errlen);

/* The outbox in three numbers; oldest_created 0 when nothing is pending. */
struct store_outbox_totals {
	int64_t pending, dead, oldest_created;
};
int store_read_outbox_totals(struct store_reader *r, struct store_outbox_totals *out, char *err,
			     size_t errlen);

/* A pending call as people look at it. Strings are owned. */
struct store_pending_call {
	int64_t id;
	char *name;
	enum store_kind kind;
	int64_t attempts, created, next_attempt;
	char *last_error;
};

/* Up to max pending calls, oldest first. Free with store_pending_free. */
int store_read_pending(struct store_reader *r, size_t max, struct store_pending_call **out,
		       size_t *n, char *err, size_t errlen);
void store_pending_free(struct store_pending_call *c, size_t n);

/* ---- end of reading for people ---- */

/*
 * Shards and their leases (DESIGN.md 7). A PostgreSQL database may be
 * shared by several engines: its alerts are split into STORE_SHARDS
 * shards by store_shard_of, and an engine works only on the alerts of
 * the shards it holds a lease on, each at the epoch of its claim. Lease
 * times are the database's clock. A SQLite database is one engine's,
 * which holds every alert: store_shared is 0, store_limit_shards does
 * nothing, store_fence passes every shard and the other functions of this
 * part fail.
 */
#define STORE_SHARDS 1024

/* The shard of an alert: hash_str(name) % STORE_SHARDS. */
int store_shard_of(const char *name);

/* A set of shards, each at an epoch (of a claim). */
struct store_shards {
	size_t n;
	int id[STORE_SHARDS];
	int64_t epoch[STORE_SHARDS];
};

/* Whether engines share the database and take leases on its shards. */
int store_shared(const struct store *st);

/* The engine's row in the engine table: a heartbeat at the database's
 * now() (first: also its start, which clears a stop), or, with stopped,
 * the mark that it stopped for good. *live (may be NULL) gets the
 * number of engines, this one included, whose heartbeat is younger than
 * live_ms and that did not stop. Own transaction. */
enum store_beat {
	STORE_BEAT_FIRST,
	STORE_BEAT_ALIVE,
	STORE_BEAT_STOPPED,
};
int store_engine_beat(struct store *st, const char *engine, enum store_beat beat, int64_t live_ms,
		      int64_t *live, char *err, size_t errlen);

/* Extends by lease_ms (from the database's now()) the leases of the
 * shards in *held that engine still holds at their epoch with a lease
 * not run out; *held keeps those alone (the others are lost). */
int store_shards_renew(struct store *st, const char *engine, int64_t lease_ms,
		       struct store_shards *held, char *err, size_t errlen);

/* Claims up to max shards that nobody holds or whose lease ran out, in
 * one transaction: each gets owner engine, its epoch + 1 and a lease of
 * lease_ms; the outbox claims of their alerts' calls (an earlier owner's)
 * are released (a call so released may have reached the server). *got
 * gets them. Shards a transaction of another engine has locked are
 * skipped. */
int store_shards_claim(struct store *st, const char *engine, int64_t lease_ms, size_t max,
		       struct store_shards *got, char *err, size_t errlen);

/* Gives back the shards of which that engine holds at their epoch (NULL:
 * every shard owned by engine, whatever the epoch: what an earlier
 * process of the same id left), so that others may claim them at once. */
int store_shards_release(struct store *st, const char *engine, const struct store_shards *which,
			 char *err, size_t errlen);

/* Limits this connection's store_pick_due, store_next_pick,
 * store_claim_calls, store_next_call, store_calls_retry_now and
 * store_count_pending to the
 * alerts of the shards in
 * *held (their epochs do not matter); NULL: every alert (the default). */
int store_limit_shards(struct store *st, const struct store_shards *held, char *err, size_t errlen);

/* In a transaction, before its writes: which shards of *want the engine
 * still holds at their epoch, with a lease that has not run out by the
 * database's clock, into *valid. Those stay locked against a claim
 * until the transaction ends, so every write of the transaction for
 * their alerts is the holder's: the fence. */
int store_fence(struct store *st, const char *engine, const struct store_shards *want,
		struct store_shards *valid, char *err, size_t errlen);

#endif
