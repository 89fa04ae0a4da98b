#ifndef ALERT_EXEC_LEASE_H
#define ALERT_EXEC_LEASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * The shards this engine holds (DESIGN.md 7), shared by the evaluation
 * scheduler, the delivery workers and the lease thread, which claims,
 * renews and gives them back on a connection of its own. On a SQLite
 * database the engine holds everything, for good, and no thread runs.
 *
 * A shard is worked on (its alerts picked, its calls claimed and sent)
 * while it is held, not being given back, and the local deadline has not
 * passed: a renewal sent at steady time t0 that succeeds keeps the shards
 * valid until t0 + lease - lease/5, by this engine's monotonic clock,
 * which ends before the lease can run out in the database. A write for
 * an alert is made only when its shard passes the fence in the write's
 * own transaction (lease_fence).
 */

struct engine;
struct leaser;

struct lease {
	pthread_mutex_t lock;
	int all;                             /* one engine's database: all held */
	int64_t epoch[STORE_SHARDS];         /* of the claim; 0: not held */
	unsigned char leaving[STORE_SHARDS]; /* being given back: no new work */
	size_t held;
	int64_t valid_until; /* engine_steady(): the local deadline */
	/* The thread. */
	pthread_t thread;
	int started;
	atomic_int quit;   /* lease_stop: the thread ends */
	unsigned long gen; /* under the engine's wake_lock: wakes the thread */
	pthread_cond_t cond;
	struct leaser *leaser; /* the thread's own state */
};

/* all: the database is one engine's. */
void lease_init(struct lease *l, int all);
void lease_destroy(struct lease *l);

/* Whether shard is held with the local deadline not passed at now_steady
 * (work = 1: also not being given back); *epoch (may be NULL) gets the
 * epoch of its claim. */
int lease_holds(struct lease *l, int shard, int64_t now_steady, int work, int64_t *epoch);

/* The shards to work on at now_steady. */
void lease_work_set(struct lease *l, int64_t now_steady, struct store_shards *out);

/* Limits the picks and claims of st to the shards to work on now
 * (nothing on a SQLite database). -1 with a message. */
int lease_limit(struct engine *e, struct store *st, char *err, size_t errlen);

/* In a write transaction of st, before its writes: ok[i] = 1 when
 * shards[i] is held (locally and by the fence in the database), else 0:
 * nothing may be written for its alerts. */
int lease_fence(struct engine *e, struct store *st, const int *shards, size_t n, unsigned char *ok,
		char *err, size_t errlen);

/* Starts the lease thread on a shared database, after a first round
 * (heartbeat, claims) made at once; 0 on a SQLite database. -1 (logged)
 * when the thread cannot start. */
int lease_start(struct engine *e);

/* Stops the lease thread, gives back every shard held and marks the
 * engine stopped, so that others take its shards at once. Call after
 * the workers ended (their work is written). */
void lease_stop(struct engine *e);

/* Fair share of shards with live engines. */
size_t lease_fair_share(int64_t live);

#endif
