#ifndef ALERT_EXEC_STORE_H
#define ALERT_EXEC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "rules.h"

/*
 * Every SQL statement of the engine. A struct store is one SQLite
 * connection with its prepared statements; each thread owns one. Functions
 * return 0 on success and -1 on failure with a message in err. Functions
 * marked "in a transaction" expect the caller to have called store_begin();
 * the others run their own transaction.
 */

struct store;

enum store_kind {
	STORE_NOTIFY = 1,
	STORE_RESOLVE = 2,
};

/* Opens a connection with db_open() (the schema must already be migrated)
 * and prepares the statements. */
int store_open(const char *path, int sync_full, struct store **out,
	       char *err, size_t errlen);
void store_close(struct store *st);
sqlite3 *store_db(struct store *st);

/* What this connection's transactions wrote: commits that changed at
 * least one row, and the rows they inserted, updated or deleted (the
 * benchmark's rows per commit). */
struct store_counters {
	int64_t commits;
	int64_t rows;
};
void store_counters(const struct store *st, struct store_counters *out);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. store_rollback never fails
 * visibly (a failed rollback leaves SQLite's own automatic one). */
int store_begin(struct store *st, char *err, size_t errlen);
int store_commit(struct store *st, char *err, size_t errlen);
void store_rollback(struct store *st);

/* Start-up: every lease left by a previous process is released; an
 * evaluation that was claimed but not written is due at once. Times that
 * lie ahead of `now` further than they can (the wall clock went back while
 * no engine ran) are brought back, so nothing stalls for the size of the
 * jump: a next_eval beyond now + interval to now + (the rest of it modulo
 * the interval, which keeps the alerts spread), a pending call's
 * next_attempt beyond now + max_wait_ms to that, and last_notified,
 * last_ok, last_eval, the sustain clocks and a pending call's created to
 * at most now. One transaction. */
int store_release_leases(struct store *st, int64_t now, int64_t max_wait_ms, char *err,
			 size_t errlen);

/* Number of alerts that are not retired. */
int store_count_alerts(struct store *st, int64_t *n, char *err, size_t errlen);

struct store_sync_stats {
	size_t added, changed, retired, revived, unchanged;
};

/* Makes the stored definitions equal to defs[0..n) in one transaction:
 * new alerts get a PASS state and a first evaluation (rules_first_eval, or
 * now when due_now); changed ones keep their state; alerts missing from
 * defs are retired (a firing one gets a resolve in the outbox and goes to
 * PASS); retired ones that come back are evaluated again. The alerts
 * named in keep[0..nkeep) (entries the server sent but that failed
 * validation) keep their stored definition and state. */
int store_sync_defs(struct store *st, const struct alert_def *defs, size_t n,
		    const char *const *keep, size_t nkeep,
		    int64_t now, int due_now, struct store_sync_stats *stats,
		    char *err, size_t errlen);

/* A claimed evaluation. def's strings are owned (store_due_clear). */
struct store_due {
	int64_t alert_id;
	int64_t scheduled;      /* the next_eval it was claimed at */
	struct alert_def def;
};
void store_due_clear(struct store_due *due);

/* The evaluation scheduler's claim, which writes nothing: up to max
 * alerts with next_eval <= now, earliest first, leaving out those for
 * which skip(alert_id, arg) is non-zero (the in_flight ones it holds;
 * skip may be NULL). An alert stays due until its evaluation is written
 * (store_eval_put_ok / _failed move next_eval on), so one picked but never
 * written is due at once at the next start. def's strings are owned. In
 * or out of a transaction. */
int store_pick_due(struct store *st, int64_t now,
		   int (*skip)(int64_t alert_id, void *arg), void *arg,
		   size_t in_flight, struct store_due *out, size_t max, size_t *n,
		   char *err, size_t errlen);

/* Earliest next_eval of an alert not skipped (INT64_MAX when none): when
 * the next pick falls due. in_flight as for store_pick_due. */
int store_next_pick(struct store *st, int (*skip)(int64_t alert_id, void *arg),
		    void *arg, size_t in_flight, int64_t *at, char *err, size_t errlen);

/* In a transaction: the current rules state of an alert, with
 * notify_pending read from the outbox when the state is WARN or CRITICAL
 * (0 in PASS, where the rules do not look at it), and its next_eval. *retired is set
 * when the alert was retired after it was picked (then nothing else
 * should be written). */
int store_eval_get(struct store *st, int64_t alert_id, struct rules_state *s,
		   int64_t *next_eval, int *retired, char *err, size_t errlen);

/* In a transaction: record a successful or a failed evaluation of a
 * picked alert (a failure keeps the state, counts it and stores the
 * error) and move next_eval on to next_eval. */
int store_eval_put_ok(struct store *st, int64_t alert_id,
		      const struct rules_state *s, double value, int64_t at,
		      int64_t next_eval, char *err, size_t errlen);
int store_eval_put_failed(struct store *st, int64_t alert_id, int64_t at,
			  const char *error, int64_t next_eval, char *err,
			  size_t errlen);

/* In a transaction: appends to the history of state changes. */
int store_transition_add(struct store *st, int64_t alert_id, int64_t at,
			 enum rules_level from, enum rules_level to, double value,
			 char *err, size_t errlen);

/* In a transaction: enqueues the call of a state change of the alert
 * (message NULL for a resolve). The alert's repeat notifies still pending
 * and not claimed are deleted first: they repeat a state the alert has
 * left, and the change's own call says what holds now. A claimed one may
 * be on its way to the server; its delivery worker deletes it with
 * store_call_drop_superseded unless it is sent or being sent. */
int store_outbox_add(struct store *st, int64_t alert_id, enum store_kind kind,
		     const char *message, int64_t now, char *err, size_t errlen);

/* In a transaction: enqueues a repeat notify of the alert's firing state. */
int store_outbox_add_repeat(struct store *st, int64_t alert_id, const char *message,
			    int64_t now, char *err, size_t errlen);

/* A claimed outbox row. name and message are owned (store_call_clear). */
struct store_call {
	int64_t id;
	int64_t alert_id;
	enum store_kind kind;
	char *name;
	char *message;      /* NULL for a resolve */
	int attempts;       /* attempts made before this one */
	int64_t created;
	int repeat;         /* a repeat notify: dropped once its state is over */
};
void store_call_clear(struct store_call *call);

/* Claims up to max deliverable rows in one transaction: each the oldest
 * pending row of its alert, with next_attempt <= not_after, not leased;
 * never two rows of one alert. Each gets lease_until = now + lease_ms. */
int store_claim_calls(struct store *st, int64_t now, int64_t not_after,
		      int64_t lease_ms, struct store_call *out, size_t max,
		      size_t *n, char *err, size_t errlen);

/* In a transaction: deletes a claimed repeat notify when a state change
 * of its alert was enqueued after it (*dropped 1): the state it repeats
 * is over. Called before sending it, and after an attempt that failed. */
int store_call_drop_superseded(struct store *st, const struct store_call *call,
			       int *dropped, char *err, size_t errlen);

/* Earliest next_attempt among the unleased heads of the alerts' queues
 * (INT64_MAX when none). */
int store_next_call(struct store *st, int64_t *at, char *err, size_t errlen);

/* In a transaction: the call was accepted at `at`: status delivered; a
 * notify also sets the alert's last_notified. */
int store_call_delivered(struct store *st, const struct store_call *call,
			 int64_t at, char *err, size_t errlen);

/* In a transaction: the attempt failed with error: attempts + 1, and
 * either due again at next_attempt, or dead when dead is set. */
int store_call_failed(struct store *st, const struct store_call *call,
		      int64_t next_attempt, int dead, const char *error,
		      char *err, size_t errlen);

/* In a transaction: gives a claimed call back without counting an
 * attempt. maybe_sent: the request was cut short and may have reached the
 * server, so a repeat is no longer dropped by a state change. */
int store_call_release(struct store *st, const struct store_call *call, int maybe_sent,
		       char *err, size_t errlen);

/* In a transaction: rows waiting in backoff after a server or transport
 * failure become due at `at` (the server answered again). Returns the
 * number of rows changed in *n. */
int store_calls_retry_now(struct store *st, int64_t at, int64_t *n,
			  char *err, size_t errlen);

/* Number of pending outbox rows. */
int store_count_pending(struct store *st, int64_t *n, char *err, size_t errlen);

/* Deletes delivered and dead rows and history older than cutoff, and
 * retired alerts retired before cutoff that have nothing pending. Pending
 * rows are never deleted. Sets *deleted. Own transaction. */
int store_prune(struct store *st, int64_t cutoff, int64_t *deleted,
		char *err, size_t errlen);

/* The wall clock jumped by delta ms: every stored time that schedules or
 * measures something (next evaluations, next attempts, last notify, run
 * clocks, leases) moves with it, so nothing fires early or stalls. Own
 * transaction. */
int store_shift_times(struct store *st, int64_t delta, char *err, size_t errlen);

#endif
