/*
 * Shard leases on PostgreSQL (store.h, DESIGN.md 7): the engine table's
 * heartbeats, claims, renewals and releases of shards, the limit of a
 * connection's picks and claims to the shards its engine holds, and the
 * fence every write transaction for an alert passes.
 */
#include "store_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A shard set as two array literals: "{ids}" and "{epochs}" (NULL when
 * not wanted). Returns 0, -1 when out of memory. */
static int shard_arrays(const struct store_shards *s, char **ids, char **epochs)
{
	/* An id has at most 4 digits, an epoch at most 20; a comma each. */
	size_t cap = 3 + s->n * 22;
	char *a = malloc(cap);
	char *b = epochs ? malloc(cap) : NULL;
	size_t na = 0, nb = 0;

	if (a == NULL || (epochs && b == NULL)) {
		free(a);
		free(b);
		return -1;
	}
	a[na++] = '{';
	if (b)
		b[nb++] = '{';
	for (size_t i = 0; i < s->n; i++) {
		const char *sep = i > 0 ? "," : "";

		na += (size_t)snprintf(a + na, cap - na, "%s%d", sep, s->id[i]);
		if (b)
			nb += (size_t)snprintf(b + nb, cap - nb, "%s%" PRId64, sep, s->epoch[i]);
	}
	memcpy(a + na, "}", 2);
	if (b)
		memcpy(b + nb, "}", 2);
	*ids = a;
	if (epochs)
		*epochs = b;
	return 0;
}

/* The rows (id, epoch) of a result into *out, by id (RETURNING gives
 * them in no order). */
static void read_shards(const PGresult *r, struct store_shards *out)
{
	int64_t epoch[STORE_SHARDS] = {0};
	unsigned char in[STORE_SHARDS] = {0};

	for (int i = 0; i < PQntuples(r); i++) {
		int id = (int)pg_get_int(r, i, 0);

		if (id >= 0 && id < STORE_SHARDS) {
			in[id] = 1;
			epoch[id] = pg_get_int(r, i, 1);
		}
	}
	out->n = 0;
	for (int id = 0; id < STORE_SHARDS; id++) {
		if (!in[id])
			continue;
		out->id[out->n] = id;
		out->epoch[out->n++] = epoch[id];
	}
}

/* Runs id with $1 engine, then [$2 lease_ms], then the set's arrays, and
 * reads the shards it returns into *out (when not NULL). */
static int run_with_set(struct pg_store *st, enum pg_stmt_id id, const char *engine,
			const int64_t *lease_ms, const struct store_shards *set,
			struct store_shards *out, char *err, size_t errlen, const char *what)
{
	struct pg_params p = {0};
	char *ids = NULL, *epochs = NULL;
	PGresult *r;

	if (shard_arrays(set, &ids, &epochs) != 0) {
		snprintf(err, errlen, "%s: out of memory", what);
		return -1;
	}
	pg_text(&p, engine);
	if (lease_ms != NULL)
		pg_int(&p, *lease_ms);
	pg_text(&p, ids);
	pg_text(&p, epochs);
	r = pg_run(st, id, &p, err, errlen, what);
	free(ids);
	free(epochs);
	if (r == NULL)
		return -1;
	if (out != NULL)
		read_shards(r, out);
	PQclear(r);
	return 0;
}

int pg_store_engine_beat(struct store *base, const char *engine, enum store_beat beat,
			 int64_t live_ms, int64_t *live, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	struct pg_params q = {0};
	int rc;

	pg_text(&p, engine);
	if (beat == STORE_BEAT_STOPPED) {
		rc = pg_run_changed(st, P_ENGINE_STOPPED, &p, NULL, err, errlen, "engine stopped");
	} else {
		pg_int(&p, beat == STORE_BEAT_FIRST);
		rc = pg_run_changed(st, P_ENGINE_BEAT, &p, NULL, err, errlen, "engine heartbeat");
	}
	if (rc != 0 || live == NULL)
		return rc;
	pg_int(&q, live_ms);
	return pg_run_int64(st, P_ENGINE_LIVE, &q, 0, live, err, errlen, "count live engines");
}

int pg_store_shards_renew(struct store *base, const char *engine, int64_t lease_ms,
			  struct store_shards *held, char *err, size_t errlen)
{
	if (held->n == 0)
		return 0;
	return run_with_set((struct pg_store *)base, P_SHARD_RENEW, engine, &lease_ms, held, held,
			    err, errlen, "renew shards");
}

int pg_store_shards_claim(struct store *base, const char *engine, int64_t lease_ms, size_t max,
			  struct store_shards *got, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	struct pg_params q = {0};
	char *ids = NULL;
	PGresult *r;

	got->n = 0;
	if (max == 0)
		return 0;
	pg_text(&p, engine);
	pg_int(&p, lease_ms);
	pg_int(&p, (int64_t)max);
	if (pg_store_begin(base, err, errlen) != 0)
		return -1;
	r = pg_run(st, P_SHARD_CLAIM, &p, err, errlen, "claim shards");
	if (r == NULL)
		goto fail;
	read_shards(r, got);
	PQclear(r);
	if (got->n == 0)
		return pg_store_commit(base, err, errlen);
	/* The calls an earlier owner had claimed are the new owner's now:
	 * its own writes of them are fenced off by the epoch. */
	if (shard_arrays(got, &ids, NULL) != 0) {
		snprintf(err, errlen, "claim shards: out of memory");
		goto fail;
	}
	pg_text(&q, ids);
	if (pg_run_changed(st, P_SHARD_CALLS_FREE, &q, NULL, err, errlen,
			   "release the calls of claimed shards") != 0)
		goto fail;
	free(ids);
	if (pg_store_commit(base, err, errlen) == 0)
		return 0;
	got->n = 0;
	return -1;
fail:
	free(ids);
	got->n = 0;
	pg_store_rollback(base);
	return -1;
}

int pg_store_shards_release(struct store *base, const char *engine,
			    const struct store_shards *which, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};

	if (which == NULL) {
		pg_text(&p, engine);
		return pg_run_changed(st, P_SHARD_DISOWN, &p, NULL, err, errlen, "release shards");
	}
	if (which->n == 0)
		return 0;
	return run_with_set(st, P_SHARD_RELEASE, engine, NULL, which, NULL, err, errlen,
			    "release shards");
}

int pg_store_limit_shards(struct store *base, const struct store_shards *held, char *err,
			  size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	char *ids = NULL;

	if (held != NULL && shard_arrays(held, &ids, NULL) != 0) {
		snprintf(err, errlen, "limit shards: out of memory");
		return -1;
	}
	free(st->limit);
	st->limit = ids;
	return 0;
}

int pg_store_fence(struct store *base, const char *engine, const struct store_shards *want,
		   struct store_shards *valid, char *err, size_t errlen)
{
	if (want->n == 0) {
		valid->n = 0;
		return 0;
	}
	return run_with_set((struct pg_store *)base, P_FENCE, engine, NULL, want, valid, err,
			    errlen, "fence");
}
