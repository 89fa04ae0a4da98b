#include "store_pg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "strbuf.h"

/* The ids sync_defs saw (kept or written), sent as one array parameter
 * to find the ones to retire. */
struct seen {
	char *text; /* "{1,2,...}" */
	size_t len, cap;
};

static int seen_add(struct seen *s, int64_t id)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%s%lld", s->len > 1 ? "," : "", (long long)id);

	if (s->len + (size_t)n + 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		char *t;

		while (ncap < s->len + (size_t)n + 2)
			ncap *= 2;
		t = realloc(s->text, ncap);
		if (t == NULL)
			return -1;
		if (s->text == NULL) {
			t[0] = '{';
			s->len = 1;
		}
		s->text = t;
		s->cap = ncap;
	}
	memcpy(s->text + s->len, num, (size_t)n);
	s->len += (size_t)n;
	s->text[s->len] = '}';
	s->text[s->len + 1] = '\0';
	return 0;
}

static void bind_def(struct pg_params *p, const struct alert_def *d, int64_t now)
{
	pg_text(p, d->query);
	pg_int(p, d->interval_ms);
	pg_int(p, d->repeat_ms);
	pg_int(p, d->sustain_ms);
	pg_double(p, d->warn_value);
	pg_text(p, d->warn_message);
	pg_double(p, d->crit_value);
	pg_text(p, d->crit_message);
	pg_int(p, now);
}

/* Whether the stored row (P_DEF_BY_NAME) equals d. */
static int def_same(const PGresult *r, const struct alert_def *d)
{
	return strcmp(PQgetvalue(r, 0, 1), d->query) == 0 &&
	       pg_get_int(r, 0, 2) == d->interval_ms && pg_get_int(r, 0, 3) == d->repeat_ms &&
	       pg_get_int(r, 0, 4) == d->sustain_ms && pg_get_double(r, 0, 5) == d->warn_value &&
	       strcmp(PQgetvalue(r, 0, 6), d->warn_message) == 0 &&
	       pg_get_double(r, 0, 7) == d->crit_value &&
	       strcmp(PQgetvalue(r, 0, 8), d->crit_message) == 0;
}

/* In a transaction: a new alert in its shard with its PASS state, first
 * evaluated at first. Sets *id. */
static int insert_def(struct pg_store *st, const struct alert_def *d, int64_t now, int64_t first,
		      int64_t *id, char *err, size_t errlen)
{
	struct pg_params p = {0};
	struct pg_params q = {0};
	PGresult *r;

	pg_text(&p, d->name);
	bind_def(&p, d, now);
	pg_int(&p, (int64_t)(hash_str(d->name) % PG_SHARDS));
	r = pg_run(st, P_DEF_INSERT, &p, err, errlen, "insert alert");
	if (r == NULL)
		return -1;
	*id = pg_get_int(r, 0, 0);
	PQclear(r);
	st->rows_in_tx++;
	pg_int(&q, *id);
	pg_int(&q, first);
	return pg_run_changed(st, P_STATE_INSERT, &q, NULL, err, errlen, "insert alert state");
}

/* In a transaction: a stored alert gets definition d. A shorter interval
 * takes effect at once, not after the old one. */
static int update_def(struct pg_store *st, int64_t id, const struct alert_def *d, int64_t now,
		      char *err, size_t errlen)
{
	struct pg_params p = {0};
	struct pg_params q = {0};

	pg_int(&p, id);
	bind_def(&p, d, now);
	pg_int(&q, id);
	pg_int(&q, now + d->interval_ms);
	if (pg_run_changed(st, P_DEF_UPDATE, &p, NULL, err, errlen, "update alert") != 0)
		return -1;
	return pg_run_changed(st, P_STATE_NEXT_MIN, &q, NULL, err, errlen, "update alert schedule");
}

/* In a transaction: a retired alert comes back, evaluated at first with
 * fresh sustain clocks. */
static int revive_def(struct pg_store *st, int64_t id, int64_t now, int64_t first, char *err,
		      size_t errlen)
{
	struct pg_params p = {0};
	struct pg_params q = {0};

	pg_int(&p, id);
	pg_int(&p, now);
	pg_int(&q, id);
	pg_int(&q, first);
	if (pg_run_changed(st, P_REVIVE_ALERT, &p, NULL, err, errlen, "revive alert") != 0)
		return -1;
	return pg_run_changed(st, P_REVIVE_STATE, &q, NULL, err, errlen, "revive alert state");
}

/* In a transaction: inserts or updates one definition. */
static int sync_one(struct pg_store *st, const struct alert_def *d, int64_t now, int due_now,
		    struct store_sync_stats *stats, struct seen *seen, char *err, size_t errlen)
{
	struct pg_params p = {0};
	int64_t id;
	int64_t first = due_now ? now : rules_first_eval(d->name, d->interval_ms, now);
	int same, retired;
	PGresult *r;

	pg_text(&p, d->name);
	r = pg_run(st, P_DEF_BY_NAME, &p, err, errlen, "read alert");
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		if (insert_def(st, d, now, first, &id, err, errlen) != 0)
			return -1;
		stats->added++;
		goto seen;
	}
	id = pg_get_int(r, 0, 0);
	same = def_same(r, d);
	retired = !PQgetisnull(r, 0, 9);
	PQclear(r);
	if (!same && update_def(st, id, d, now, err, errlen) != 0)
		return -1;
	if (retired && revive_def(st, id, now, first, err, errlen) != 0)
		return -1;
	if (retired)
		stats->revived++;
	else if (same)
		stats->unchanged++;
	else
		stats->changed++;
seen:
	if (seen_add(seen, id) != 0) {
		snprintf(err, errlen, "sync alerts: out of memory");
		return -1;
	}
	return 0;
}

/* In a transaction: retires one active alert (a firing one resolves). */
static int retire_one(struct pg_store *st, const PGresult *r, int row, int64_t now, char *err,
		      size_t errlen)
{
	int64_t id = pg_get_int(r, row, 0);
	enum rules_level state;
	struct pg_params p = {0};
	struct pg_params q = {0};

	if (rules_level_parse(PQgetvalue(r, row, 1), &state) != 0)
		state = LEVEL_PASS;
	if (state != LEVEL_PASS) {
		double value = PQgetisnull(r, row, 2) ? 0 : pg_get_double(r, row, 2);

		if (pg_store_call_add(&st->base, id, STORE_RESOLVE, NULL, now, err, errlen) != 0 ||
		    pg_store_transition_add(&st->base, id, now, state, LEVEL_PASS, value, err,
					    errlen) != 0)
			return -1;
	}
	pg_int(&p, id);
	pg_int(&p, now);
	pg_int(&q, id);
	pg_int(&q, PG_RETIRED_NEXT_EVAL);
	if (pg_run_changed(st, P_RETIRE_ALERT, &p, NULL, err, errlen, "retire alert") != 0)
		return -1;
	return pg_run_changed(st, P_RETIRE_STATE, &q, NULL, err, errlen, "retire alert state");
}

/* In a transaction: retires every active alert not seen. */
static int retire_unseen(struct pg_store *st, const struct seen *seen, int64_t now,
			 struct store_sync_stats *stats, char *err, size_t errlen)
{
	struct pg_params p = {0};
	PGresult *r;
	int ret = 0;

	pg_text(&p, seen->text ? seen->text : "{}");
	r = pg_run(st, P_UNSEEN, &p, err, errlen, "find retired alerts");
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r) && ret == 0; i++) {
		ret = retire_one(st, r, i, now, err, errlen);
		if (ret == 0)
			stats->retired++;
	}
	PQclear(r);
	return ret;
}

/* In a transaction: marks the stored, active alert called name as seen,
 * so it is not retired; nothing when there is none. */
static int keep_one(struct pg_store *st, const char *name, struct seen *seen, char *err,
		    size_t errlen)
{
	struct pg_params p = {0};
	PGresult *r;
	int rc = 0;

	pg_text(&p, name);
	r = pg_run(st, P_DEF_BY_NAME, &p, err, errlen, "read alert");
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1 && PQgetisnull(r, 0, 9) && seen_add(seen, pg_get_int(r, 0, 0)) != 0) {
		snprintf(err, errlen, "sync alerts: out of memory");
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int pg_store_sync_defs(struct store *base, const struct alert_def *defs, size_t n,
		       const char *const *keep, size_t nkeep, int64_t now, int due_now,
		       struct store_sync_stats *stats, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct seen seen = {0};

	memset(stats, 0, sizeof(*stats));
	if (pg_store_begin(base, err, errlen) != 0)
		return -1;
	if (pg_run_changed(st, P_SYNC_LOCK, NULL, NULL, err, errlen, "sync alerts") != 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (sync_one(st, &defs[i], now, due_now, stats, &seen, err, errlen) != 0)
			goto fail;
	for (size_t i = 0; i < nkeep; i++)
		if (keep_one(st, keep[i], &seen, err, errlen) != 0)
			goto fail;
	if (retire_unseen(st, &seen, now, stats, err, errlen) != 0)
		goto fail;
	/* Every engine's picks learn of the change from this
	 * (store_pick_due). */
	if (stats->added + stats->changed + stats->retired + stats->revived > 0 &&
	    pg_run_changed(st, P_DEFS_BUMP, NULL, NULL, err, errlen, "sync alerts") != 0)
		goto fail;
	free(seen.text);
	return pg_store_commit(base, err, errlen);
fail:
	free(seen.text);
	pg_store_rollback(base);
	return -1;
}

/* The definition of row i of a pick: its entry in the cache, or, when
 * the cache has none, the row's columns in a new one. */
static int pick_def(struct pg_store *st, const PGresult *r, int i, struct store_due *d, char *err,
		    size_t errlen)
{
	struct def_entry *e = def_cache_get(&st->defs, d->alert_id);
	struct alert_def def = {0};
	int64_t version = 0;
	int rc = 0;

	if (e == NULL) {
		rc = pg_get_def(r, i, 1, &def, "pick due alerts", err, errlen);
		version = pg_get_int(r, i, 10);
	}
	return store_due_from_cache(d, &st->defs, e, rc, &def, version, err, errlen);
}

int pg_store_pick_due(struct store *base, int64_t now, int (*skip)(int64_t alert_id, void *arg),
		      void *arg, size_t in_flight, struct store_due *out, size_t max, size_t *n,
		      char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	size_t k = 0;
	PGresult *r;

	*n = 0;
	pg_int(&p, now);
	pg_int(&p, (int64_t)(max + in_flight));
	pg_text(&p, st->limit);
	r = pg_run(st, P_DUE, &p, err, errlen, "pick due alerts");
	if (r == NULL)
		return -1;
	/* The version of every row's snapshot: the cache drops what an
	 * earlier version of the definitions read. */
	if (PQntuples(r) > 0)
		def_cache_check(&st->defs, pg_get_int(r, 0, 12));
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		struct store_due *d = &out[k];
		int64_t id = pg_get_int(r, i, 0);

		if (skip != NULL && skip(id, arg))
			continue;
		memset(d, 0, sizeof(*d));
		d->alert_id = id;
		d->scheduled = pg_get_int(r, i, 11);
		k++;
		if (pick_def(st, r, i, d, err, errlen) != 0) {
			for (size_t j = 0; j < k; j++)
				store_due_clear(&out[j]);
			PQclear(r);
			return -1;
		}
	}
	PQclear(r);
	*n = k;
	return 0;
}

int pg_store_next_pick(struct store *base, int (*skip)(int64_t alert_id, void *arg), void *arg,
		       size_t in_flight, int64_t *at, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	PGresult *r;

	*at = INT64_MAX;
	pg_int(&p, (int64_t)in_flight + 1);
	pg_text(&p, st->limit);
	r = pg_run(st, P_NEXT_IDS, &p, err, errlen, "next due");
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		if (skip != NULL && skip(pg_get_int(r, i, 0), arg))
			continue;
		*at = pg_get_int(r, i, 1);
		break;
	}
	PQclear(r);
	if (*at >= PG_RETIRED_NEXT_EVAL)
		*at = INT64_MAX;
	return 0;
}

int pg_store_eval_get(struct store *base, const struct store_due *due, struct rules_state *out,
		      int64_t *next_eval, enum store_eval_check *check, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	int64_t pending = 0;
	int64_t gave_up;
	PGresult *r;

	pg_int(&p, due->alert_id);
	r = pg_run(st, P_STATE_GET, &p, err, errlen, "read alert state");
	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "read alert state %lld: no such alert",
			 (long long)due->alert_id);
		PQclear(r);
		return -1;
	}
	rules_state_init(out);
	if (rules_level_parse(PQgetvalue(r, 0, 0), &out->state) != 0) {
		snprintf(err, errlen, "read alert state %lld: bad state '%s'",
			 (long long)due->alert_id, PQgetvalue(r, 0, 0));
		PQclear(r);
		return -1;
	}
	out->warn_since = pg_get_time(r, 0, 1);
	out->crit_since = pg_get_time(r, 0, 2);
	out->last_ok = pg_get_time(r, 0, 3);
	out->last_notified = pg_get_time(r, 0, 4);
	*next_eval = pg_get_int(r, 0, 6);
	if (!PQgetisnull(r, 0, 5))
		*check = STORE_EVAL_RETIRED;
	else if (pg_get_int(r, 0, 7) != due->version)
		*check = STORE_EVAL_CHANGED;
	else
		*check = STORE_EVAL_CURRENT;
	/* A notify given up holds the next repeat back as a delivered one
	 * does: the rules see the later of the two. */
	gave_up = pg_get_time(r, 0, 8);
	if (gave_up > out->last_notified)
		out->last_notified = gave_up;
	PQclear(r);
	if (out->state == LEVEL_PASS)
		return 0;
	if (pg_run_int64(st, P_NOTIFY_PENDING, &p, 0, &pending, err, errlen,
			 "read pending notify") != 0)
		return -1;
	out->notify_pending = pending != 0;
	return 0;
}

int pg_store_eval_put_ok(struct store *base, int64_t alert_id, const struct rules_state *s,
			 double value, int64_t at, int64_t next_eval, char *err, size_t errlen)
{
	struct pg_params p = {0};

	pg_int(&p, alert_id);
	pg_text(&p, rules_level_name(s->state));
	pg_time(&p, s->warn_since);
	pg_time(&p, s->crit_since);
	pg_int(&p, at);
	pg_double(&p, value);
	pg_int(&p, next_eval);
	return pg_run_changed((struct pg_store *)base, P_EVAL_OK, &p, NULL, err, errlen,
			      "write alert state");
}

int pg_store_eval_stays_pass(struct store *base, const struct store_due *due, double value,
			     int64_t at, int *written, char *err, size_t errlen)
{
	struct pg_params p = {0};
	int64_t n = 0;

	pg_int(&p, due->alert_id);
	pg_int(&p, at);
	pg_double(&p, value);
	pg_int(&p, due->def.interval_ms);
	pg_int(&p, due->version);
	if (pg_run_changed((struct pg_store *)base, P_EVAL_STAYS_PASS, &p, &n, err, errlen,
			   "write alert state") != 0)
		return -1;
	*written = n > 0;
	return 0;
}

/* The five arrays of a batch of PASS evaluations, as array literals. */
static void pass_arrays(const struct store_pass *p, size_t n, struct strbuf a[5])
{
	for (size_t i = 0; i < n; i++) {
		const char *sep = i == 0 ? "{" : ",";

		strbuf_printf(&a[0], "%s%" PRId64, sep, p[i].due->alert_id);
		strbuf_printf(&a[1], "%s%" PRId64, sep, p[i].at);
		/* 17 digits give back the same double. */
		strbuf_printf(&a[2], "%s%.17g", sep, p[i].value);
		strbuf_printf(&a[3], "%s%" PRId64, sep, p[i].due->def.interval_ms);
		strbuf_printf(&a[4], "%s%" PRId64, sep, p[i].due->version);
	}
	for (int k = 0; k < 5; k++)
		strbuf_append(&a[k], "}");
}

int pg_store_evals_stay_pass(struct store *base, const struct store_pass *p, size_t n,
			     unsigned char *written, char *err, size_t errlen)
{
	struct strbuf a[5] = {{0}};
	struct pg_params q = {0};
	PGresult *r = NULL;
	int rc = -1;

	memset(written, 0, n);
	if (n == 0)
		return 0;
	pass_arrays(p, n, a);
	for (int k = 0; k < 5; k++)
		pg_text(&q, a[k].data);
	if (a[0].failed || a[1].failed || a[2].failed || a[3].failed || a[4].failed)
		snprintf(err, errlen, "write alert states: out of memory");
	else
		r = pg_run((struct pg_store *)base, P_EVALS_STAY_PASS, &q, err, errlen,
			   "write alert states");
	for (int row = 0; r != NULL && row < PQntuples(r); row++) {
		int64_t id = pg_get_int(r, row, 0);

		for (size_t i = 0; i < n; i++)
			if (p[i].due->alert_id == id)
				written[i] = 1;
	}
	if (r != NULL)
		rc = 0;
	PQclear(r);
	for (int k = 0; k < 5; k++)
		strbuf_free(&a[k]);
	return rc;
}

int pg_store_eval_put_failed(struct store *base, int64_t alert_id, int64_t at, const char *error,
			     int64_t next_eval, char *err, size_t errlen)
{
	struct pg_params p = {0};

	pg_int(&p, alert_id);
	pg_int(&p, at);
	pg_text(&p, error);
	pg_int(&p, next_eval);
	return pg_run_changed((struct pg_store *)base, P_EVAL_FAILED, &p, NULL, err, errlen,
			      "write alert failure");
}

int pg_store_transition_add(struct store *base, int64_t alert_id, int64_t at, enum rules_level from,
			    enum rules_level to, double value, char *err, size_t errlen)
{
	struct pg_params p = {0};

	pg_int(&p, alert_id);
	pg_int(&p, at);
	pg_text(&p, rules_level_name(from));
	pg_text(&p, rules_level_name(to));
	pg_double(&p, value);
	return pg_run_changed((struct pg_store *)base, P_TRANSITION_ADD, &p, NULL, err, errlen,
			      "write transition");
}
