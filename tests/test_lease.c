/* Tests of shard leases: the fair share and the local view of the held
 * set (lease.h), and, run as "test_lease postgresql" on the scratch
 * server (ALERT_EXEC_PG_URI_FILE), the store's claims, renewals,
 * releases, fences and the limit of picks and outbox claims to held
 * shards, with two connections standing for two engines, and that two
 * engines syncing at once retire a firing alert with one resolve. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lease.h"
#include "store.h"

#define T0 INT64_C(1800000000000)

static void test_fair_share(void **state)
{
	(void)state;
	assert_int_equal(lease_fair_share(1), 1024);
	assert_int_equal(lease_fair_share(0), 1024);
	assert_int_equal(lease_fair_share(2), 512);
	assert_int_equal(lease_fair_share(3), 342);
	assert_int_equal(lease_fair_share(1000), 2);
	assert_int_equal(lease_fair_share(2000), 1);
}

/* The held set: a shard counts while held, before the local deadline,
 * and for new work only while it is not being given back. */
static void test_held_set_deadline(void **state)
{
	struct lease l;
	struct store_shards *set = malloc(sizeof(*set));
	int64_t epoch = 0;

	(void)state;
	lease_init(&l, 0);
	l.epoch[7] = 3;
	l.epoch[9] = 1;
	l.leaving[9] = 1;
	l.held = 2;
	l.valid_until = 1000;
	assert_true(lease_holds(&l, 7, 999, 1, &epoch));
	assert_int_equal(epoch, 3);
	assert_false(lease_holds(&l, 7, 1000, 0, NULL));
	assert_false(lease_holds(&l, 8, 10, 0, NULL));
	assert_true(lease_holds(&l, 9, 10, 0, NULL));
	assert_false(lease_holds(&l, 9, 10, 1, NULL));
	lease_work_set(&l, 10, set);
	assert_int_equal(set->n, 1);
	assert_int_equal(set->id[0], 7);
	assert_int_equal(set->epoch[0], 3);
	lease_work_set(&l, 1000, set);
	assert_int_equal(set->n, 0);
	lease_destroy(&l);
	/* One engine's database: everything is held, for good. */
	lease_init(&l, 1);
	assert_true(lease_holds(&l, 5, INT64_MAX - 1, 1, NULL));
	lease_destroy(&l);
	free(set);
}

#ifdef ALERT_EXEC_POSTGRES
#include <libpq-fe.h>

static char admin_uri[512];

struct fx {
	char name[64];
	char uri[600];
	struct store_lock *lock;
	struct store *a, *b; /* two engines' connections */
	struct store_shards *s, *t;
	PGconn *look;
};

static void admin(const char *sql)
{
	PGconn *c = PQconnectdb(admin_uri);
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static int64_t look_int(struct fx *f, const char *sql)
{
	PGresult *r = PQexec(f->look, sql);
	int64_t v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(f->look));
	v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static int pg_setup(void **state)
{
	static int cases;
	struct fx *f = calloc(1, sizeof(*f));
	const char *q = strchr(admin_uri, '?');
	char sql[128], err[512];

	snprintf(f->name, sizeof(f->name), "lease_%ld_%d", (long)getpid(), ++cases);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->name);
	admin(sql);
	snprintf(f->uri, sizeof(f->uri), "postgresql:///%s%s", f->name, q ? q : "");
	if (store_prepare(f->uri, 0, &f->lock, err, sizeof(err)) != STORE_OK ||
	    store_open(f->uri, 0, &f->a, err, sizeof(err)) != 0 ||
	    store_open(f->uri, 0, &f->b, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	f->look = PQconnectdb(f->uri);
	f->s = calloc(1, sizeof(*f->s));
	f->t = calloc(1, sizeof(*f->t));
	assert_int_equal(
		store_engine_beat(f->a, "a", STORE_BEAT_FIRST, 15000, NULL, err, sizeof(err)), 0);
	assert_int_equal(
		store_engine_beat(f->b, "b", STORE_BEAT_FIRST, 15000, NULL, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int pg_teardown(void **state)
{
	struct fx *f = *state;
	char sql[160];

	store_close(f->a);
	store_close(f->b);
	store_unlock(f->lock);
	PQfinish(f->look);
	snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->name);
	admin(sql);
	free(f->s);
	free(f->t);
	free(f);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Claims take free shards, lowest first, each at its epoch + 1; a
 * renewal keeps what is held; two engines never get the same shard. */
static void test_pg_claim_renew(void **state)
{
	struct fx *f = *state;
	char err[512];

	assert_true(store_shared(f->a));
	assert_int_equal(store_shards_claim(f->a, "a", 15000, 10, f->s, err, sizeof(err)), 0);
	assert_int_equal(f->s->n, 10);
	for (size_t i = 0; i < 10; i++) {
		assert_int_equal(f->s->id[i], (int)i);
		assert_int_equal(f->s->epoch[i], 1);
	}
	assert_int_equal(store_shards_claim(f->b, "b", 15000, 10, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, 10);
	for (size_t i = 0; i < 10; i++)
		assert_true(f->t->id[i] >= 10);
	assert_int_equal(store_shards_renew(f->a, "a", 15000, f->s, err, sizeof(err)), 0);
	assert_int_equal(f->s->n, 10);
	assert_int_equal(look_int(f, "SELECT count(*) FROM shard WHERE owner = 'a'"), 10);
	assert_int_equal(look_int(f, "SELECT count(*) FROM shard WHERE owner = 'b'"), 10);
}

/* A lease that ran out is claimed by another engine at the next epoch:
 * the old holder's fence passes nothing and its renewal keeps nothing. */
static void test_pg_expired_shard_stolen_and_fenced(void **state)
{
	struct fx *f = *state;
	char err[512];

	assert_int_equal(store_shards_claim(f->a, "a", 200, 3, f->s, err, sizeof(err)), 0);
	assert_int_equal(f->s->n, 3);
	/* Valid: the fence passes all three. */
	assert_int_equal(store_begin(f->a, err, sizeof(err)), 0);
	assert_int_equal(store_fence(f->a, "a", f->s, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, 3);
	assert_int_equal(store_commit(f->a, err, sizeof(err)), 0);
	sleep_ms(400);
	assert_int_equal(store_shards_claim(f->b, "b", 15000, 2, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, 2);
	assert_int_equal(f->t->id[0], 0);
	assert_int_equal(f->t->epoch[0], 2);
	/* a's fence now passes nothing: shards 0 and 1 are b's, 2 ran out. */
	assert_int_equal(store_begin(f->a, err, sizeof(err)), 0);
	assert_int_equal(store_fence(f->a, "a", f->s, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, 0);
	store_rollback(f->a);
	assert_int_equal(store_shards_renew(f->a, "a", 15000, f->s, err, sizeof(err)), 0);
	assert_int_equal(f->s->n, 0);
}

/* An engine paused inside a write transaction (SIGSTOP between its fence
 * and its commit) holds its shard rows locked: the server ends that idle
 * transaction, so once the leases ran out another engine's claim (SKIP
 * LOCKED) takes the shards, and the paused one's connection is gone when
 * it wakes. */
static void test_pg_paused_transaction_does_not_hold_shards(void **state)
{
	struct fx *f = *state;
	char err[512];

	/* a holds every shard, so b can only have one of a's. */
	assert_int_equal(store_shards_claim(f->a, "a", 300, STORE_SHARDS, f->s, err, sizeof(err)),
			 0);
	assert_int_equal(f->s->n, STORE_SHARDS);
	assert_int_equal(store_begin(f->a, err, sizeof(err)), 0);
	assert_int_equal(store_fence(f->a, "a", f->s, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, STORE_SHARDS);
	/* a stays in its transaction, paused, past its leases and the
	 * server's patience with an idle transaction (2 s). */
	sleep_ms(2600);
	assert_int_equal(store_shards_claim(f->b, "b", 15000, 3, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, 3);
	assert_int_equal(store_commit(f->a, err, sizeof(err)), -1);
	assert_true(store_connection_lost(f->a));
}

/* A fence names the epoch: the same owner at an older epoch (an earlier
 * process of the same id) does not pass. */
static void test_pg_fence_needs_epoch(void **state)
{
	struct fx *f = *state;
	char err[512];

	assert_int_equal(store_shards_claim(f->a, "a", 15000, 1, f->s, err, sizeof(err)), 0);
	assert_int_equal(store_shards_release(f->a, "a", NULL, err, sizeof(err)), 0);
	assert_int_equal(store_shards_claim(f->a, "a", 15000, 1, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->epoch[0], f->s->epoch[0] + 1);
	assert_int_equal(store_begin(f->a, err, sizeof(err)), 0);
	assert_int_equal(store_fence(f->a, "a", f->s, f->s, err, sizeof(err)), 0);
	assert_int_equal(f->s->n, 0);
	assert_int_equal(store_fence(f->a, "a", f->t, f->s, err, sizeof(err)), 0);
	assert_int_equal(f->s->n, 1);
	assert_int_equal(store_commit(f->a, err, sizeof(err)), 0);
}

/* A release gives the shards back at once (others claim them without
 * waiting for the lease); one naming an old epoch changes nothing. */
static void test_pg_release(void **state)
{
	struct fx *f = *state;
	char err[512];

	assert_int_equal(store_shards_claim(f->a, "a", 15000, 4, f->s, err, sizeof(err)), 0);
	f->s->epoch[3] = 99; /* not the held epoch */
	assert_int_equal(store_shards_release(f->a, "a", f->s, err, sizeof(err)), 0);
	assert_int_equal(look_int(f, "SELECT count(*) FROM shard WHERE owner = 'a'"), 1);
	assert_int_equal(store_shards_claim(f->b, "b", 15000, 5, f->t, err, sizeof(err)), 0);
	assert_int_equal(f->t->n, 5);
	assert_int_equal(f->t->id[0], 0);
	assert_int_equal(f->t->epoch[0], 2);
	assert_int_equal(f->t->id[3], 4); /* 3 is still a's */
	assert_int_equal(look_int(f, "SELECT count(*) FROM shard WHERE owner = 'a'"), 1);
}

/* Heartbeats: live engines are those with a recent one that did not
 * stop. */
static void test_pg_heartbeat_live(void **state)
{
	struct fx *f = *state;
	char err[512];
	int64_t live = 0;

	assert_int_equal(
		store_engine_beat(f->a, "a", STORE_BEAT_ALIVE, 15000, &live, err, sizeof(err)), 0);
	assert_int_equal(live, 2);
	assert_int_equal(
		store_engine_beat(f->b, "b", STORE_BEAT_STOPPED, 15000, NULL, err, sizeof(err)), 0);
	assert_int_equal(
		store_engine_beat(f->a, "a", STORE_BEAT_ALIVE, 15000, &live, err, sizeof(err)), 0);
	assert_int_equal(live, 1);
	sleep_ms(300);
	assert_int_equal(
		store_engine_beat(f->b, "b", STORE_BEAT_ALIVE, 200, &live, err, sizeof(err)), 0);
	/* a's beat is older than a 200 ms lease. */
	assert_int_equal(live, 1);
}

/* Pruning deletes the engines whose last heartbeat is older than the
 * cutoff and that own no shard, and keeps the others. */
static void test_pg_prune_engines(void **state)
{
	struct fx *f = *state;
	char err[512];
	int64_t deleted = 0;
	int64_t now_ms = look_int(f, "SELECT (extract(epoch FROM now()) * 1000)::bigint");
	PGresult *r;

	assert_int_equal(store_shards_claim(f->a, "a", 15000, 10, f->s, err, sizeof(err)), 0);
	assert_int_equal(store_engine_beat(f->a, "c", STORE_BEAT_FIRST, 15000, NULL, err,
					   sizeof(err)),
			 0);
	r = PQexec(f->look, "UPDATE engine SET heartbeat = now() - interval '2 days' "
			    "WHERE id IN ('a', 'b')");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(store_prune(f->a, now_ms - 86400000, 100, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 1);
	/* b is gone; a owns shards; c beat just now. */
	assert_int_equal(look_int(f, "SELECT count(*) FROM engine WHERE id = 'b'"), 0);
	assert_int_equal(look_int(f, "SELECT count(*) FROM engine WHERE id IN ('a', 'c')"), 2);
}

static void def_of(struct alert_def *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->name = (char *)name;
	d->query = "q";
	d->interval_ms = 1000;
	d->repeat_ms = 60000;
	d->warn_value = 1;
	d->warn_message = "w";
	d->crit_value = 2;
	d->crit_message = "c";
}

/* Picks and outbox claims see only the alerts of the shards a connection
 * is limited to; a claim of a shard frees its alerts' calls an earlier
 * owner had claimed. */
static void test_pg_pick_and_claim_limited(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"};
	struct alert_def defs[8];
	struct store_sync_stats stats;
	struct store_due due[8];
	struct store_call calls[8];
	char err[512];
	size_t n = 0;
	int64_t at;

	for (int i = 0; i < 8; i++)
		def_of(&defs[i], names[i]);
	assert_int_equal(store_sync_defs(f->a, defs, 8, NULL, 0, T0, 1, &stats, err, sizeof(err)),
			 0);
	/* a holds the shards of n0..n3 only. */
	f->s->n = 0;
	for (int i = 0; i < 4; i++) {
		f->s->id[f->s->n] = store_shard_of(names[i]);
		f->s->epoch[f->s->n++] = 1;
	}
	assert_int_equal(store_limit_shards(f->a, f->s, err, sizeof(err)), 0);
	assert_int_equal(store_pick_due(f->a, T0, NULL, NULL, 0, due, 8, &n, err, sizeof(err)), 0);
	assert_true(n >= 4);
	for (size_t i = 0; i < n; i++) {
		int mine = 0;

		for (size_t j = 0; j < f->s->n; j++)
			mine |= store_shard_of(due[i].def.name) == f->s->id[j];
		assert_true(mine);
		store_due_clear(&due[i]);
	}
	/* Nothing held: nothing due, nothing to claim. */
	f->t->n = 0;
	assert_int_equal(store_limit_shards(f->b, f->t, err, sizeof(err)), 0);
	assert_int_equal(store_pick_due(f->b, T0, NULL, NULL, 0, due, 8, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_next_pick(f->b, NULL, NULL, 0, &at, err, sizeof(err)), 0);
	assert_true(at == INT64_MAX);
	/* A call of n5's alert: not claimable by a, claimable when b holds
	 * its shard. */
	assert_int_equal(store_begin(f->a, err, sizeof(err)), 0);
	assert_int_equal(store_call_add(f->a, look_int(f, "SELECT id FROM alert WHERE name = 'n5'"),
					STORE_RESOLVE, NULL, T0, err, sizeof(err)),
			 0);
	assert_int_equal(store_commit(f->a, err, sizeof(err)), 0);
	/* Pending calls are counted in the shards held: b holds none. */
	assert_int_equal(store_count_pending(f->b, &at, err, sizeof(err)), 0);
	assert_int_equal(at, 0);
	n = 9;
	assert_int_equal(store_claim_calls(f->a, T0, T0, 60000, 1, calls, 8, &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, (size_t)0 + (store_shard_of("n5") == f->s->id[0] ||
					 store_shard_of("n5") == f->s->id[1] ||
					 store_shard_of("n5") == f->s->id[2] ||
					 store_shard_of("n5") == f->s->id[3]));
	for (size_t i = 0; i < n; i++)
		store_call_clear(&calls[i]);
	assert_int_equal(store_limit_shards(f->a, NULL, err, sizeof(err)), 0);
	assert_int_equal(store_count_pending(f->a, &at, err, sizeof(err)), 0);
	assert_int_equal(at, 1);
	assert_int_equal(store_claim_calls(f->a, T0, T0, 60000, 2, calls, 8, &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 1);
	store_call_clear(&calls[0]);
	/* a's claim of the call is let go when its shard is claimed. */
	assert_int_equal(look_int(f, "SELECT count(*) FROM outbox WHERE lease_token = 2"), 1);
	{
		char sql[160];
		PGresult *r;

		snprintf(sql, sizeof(sql),
			 "UPDATE shard SET owner = NULL, lease_until = NULL WHERE id = %d",
			 store_shard_of("n5"));
		r = PQexec(f->look, sql);
		assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
	}
	assert_int_equal(store_shards_claim(f->b, "b", 15000, 1024, f->t, err, sizeof(err)), 0);
	assert_int_equal(look_int(f, "SELECT count(*) FROM outbox WHERE lease_token IS NOT NULL"),
			 0);
}

struct sync_job {
	struct store *st;
	const struct alert_def *defs;
	size_t n;
	int rc;
};

static void *sync_thread(void *arg)
{
	struct sync_job *j = arg;
	struct store_sync_stats stats;
	char err[512];

	j->rc = store_sync_defs(j->st, j->defs, j->n, NULL, 0, T0 + 1000, 0, &stats, err,
				sizeof(err));
	return NULL;
}

/* Two engines sync the same definitions at once, in which a firing alert
 * is gone: it is retired once, with one resolve (the sync's advisory
 * lock). */
static void test_pg_concurrent_retire_one_resolve(void **state)
{
	struct fx *f = *state;
	struct alert_def defs[2];
	struct store_sync_stats stats;
	struct sync_job a, b;
	pthread_t ta, tb;
	PGresult *r;
	char err[512];

	def_of(&defs[0], "stays");
	def_of(&defs[1], "goes");
	assert_int_equal(store_sync_defs(f->a, defs, 2, NULL, 0, T0, 1, &stats, err, sizeof(err)),
			 0);
	r = PQexec(f->look, "UPDATE alert_state SET state = 'CRITICAL' WHERE alert_id = "
			    "(SELECT id FROM alert WHERE name = 'goes')");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	a = (struct sync_job){f->a, defs, 1, -1};
	b = (struct sync_job){f->b, defs, 1, -1};
	assert_int_equal(pthread_create(&ta, NULL, sync_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, sync_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_int_equal(look_int(f, "SELECT count(*) FROM outbox WHERE kind = 'resolve'"), 1);
	assert_int_equal(look_int(f, "SELECT count(*) FROM transition"), 1);
	assert_int_equal(look_int(f, "SELECT count(*) FROM alert WHERE retired IS NOT NULL"), 1);
}

static int run_on_postgres(void)
{
	const struct CMUnitTest cases[] = {
		cmocka_unit_test_setup_teardown(test_pg_claim_renew, pg_setup, pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_expired_shard_stolen_and_fenced, pg_setup,
						pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_paused_transaction_does_not_hold_shards,
						pg_setup, pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_fence_needs_epoch, pg_setup, pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_release, pg_setup, pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_heartbeat_live, pg_setup, pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_prune_engines, pg_setup, pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_pick_and_claim_limited, pg_setup,
						pg_teardown),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_retire_one_resolve, pg_setup,
						pg_teardown),
	};
	const char *file = getenv("ALERT_EXEC_PG_URI_FILE");
	FILE *fp = file ? fopen(file, "r") : NULL;

	if (fp == NULL || fgets(admin_uri, sizeof(admin_uri), fp) == NULL) {
		fprintf(stderr, "test_lease postgresql: ALERT_EXEC_PG_URI_FILE names no URI\n");
		if (fp)
			fclose(fp);
		return 1;
	}
	fclose(fp);
	admin_uri[strcspn(admin_uri, "\n")] = '\0';
	return cmocka_run_group_tests_name("leases on PostgreSQL", cases, NULL, NULL);
}
#endif

int main(int argc, char **argv)
{
	const struct CMUnitTest cases[] = {
		cmocka_unit_test(test_fair_share),
		cmocka_unit_test(test_held_set_deadline),
	};

	if (argc > 1 && strcmp(argv[1], "postgresql") == 0) {
#ifdef ALERT_EXEC_POSTGRES
		return run_on_postgres();
#else
		fprintf(stderr, "test_lease: built without PostgreSQL\n");
		return 1;
#endif
	}
	return cmocka_run_group_tests_name("leases", cases, NULL, NULL);
}
