#include "store_pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int outbox_insert(struct pg_store *st, int64_t alert_id, enum store_kind kind,
			 const char *message, int repeat, int64_t now, char *err, size_t errlen)
{
	struct pg_params p = {0};

	pg_int(&p, alert_id);
	pg_text(&p, kind == STORE_NOTIFY ? "notify" : "resolve");
	pg_text(&p, message);
	pg_int(&p, now);
	pg_int(&p, repeat);
	return pg_run_changed(st, P_OUTBOX_ADD, &p, NULL, err, errlen, "enqueue call");
}

int pg_store_call_add(struct store *base, int64_t alert_id, enum store_kind kind,
		      const char *message, int64_t now, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};

	pg_int(&p, alert_id);
	if (pg_run_changed(st, P_DROP_REPEATS, &p, NULL, err, errlen, "drop repeats") != 0)
		return -1;
	return outbox_insert(st, alert_id, kind, message, 0, now, err, errlen);
}

int pg_store_call_add_repeat(struct store *base, int64_t alert_id, const char *message, int64_t now,
			     char *err, size_t errlen)
{
	assert(message != NULL);
	return outbox_insert((struct pg_store *)base, alert_id, STORE_NOTIFY, message, 1, now, err,
			     errlen);
}

/* Copies row i of a claim into *c. -1 when out of memory. */
static int read_call(const PGresult *r, int i, int64_t token, struct store_call *c)
{
	memset(c, 0, sizeof(*c));
	c->id = pg_get_int(r, i, 0);
	c->alert_id = pg_get_int(r, i, 1);
	c->kind = strcmp(PQgetvalue(r, i, 2), "notify") == 0 ? STORE_NOTIFY : STORE_RESOLVE;
	c->name = strdup(PQgetvalue(r, i, 3));
	if (c->kind == STORE_NOTIFY)
		c->message = strdup(PQgetvalue(r, i, 4));
	c->attempts = (int)pg_get_int(r, i, 5);
	c->created = pg_get_int(r, i, 6);
	c->repeat = pg_get_int(r, i, 7) != 0;
	c->lease_token = token;
	return !c->name || (c->kind == STORE_NOTIFY && !c->message) ? -1 : 0;
}

int pg_store_claim_calls(struct store *base, int64_t now, int64_t not_after, int64_t lease_ms,
			 int64_t token, struct store_call *out, size_t max, size_t *n, char *err,
			 size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	PGresult *r = NULL;
	size_t k = 0;

	*n = 0;
	pg_int(&p, not_after);
	pg_int(&p, now);
	pg_int(&p, (int64_t)max);
	pg_text(&p, st->limit);
	if (pg_store_begin(base, err, errlen) != 0)
		return -1;
	r = pg_run(st, P_CLAIM_CALLS, &p, err, errlen, "claim calls");
	if (r == NULL)
		goto fail;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		if (read_call(r, i, token, &out[k++]) != 0) {
			snprintf(err, errlen, "claim calls: out of memory");
			goto fail;
		}
	}
	for (size_t i = 0; i < k; i++) {
		struct pg_params q = {0};

		pg_int(&q, out[i].id);
		pg_int(&q, now + lease_ms);
		pg_int(&q, token);
		if (pg_run_changed(st, P_LEASE_CALL, &q, NULL, err, errlen, "lease call") != 0)
			goto fail;
	}
	PQclear(r);
	r = NULL;
	if (pg_store_commit(base, err, errlen) != 0)
		goto fail;
	*n = k;
	return 0;
fail:
	PQclear(r);
	pg_store_rollback(base);
	for (size_t i = 0; i < k; i++)
		store_call_clear(&out[i]);
	return -1;
}

int pg_store_call_drop_superseded(struct store *base, const struct store_call *call, int *dropped,
				  char *err, size_t errlen)
{
	struct pg_params p = {0};
	int64_t n = 0;

	*dropped = 0;
	if (!call->repeat)
		return 0;
	pg_int(&p, call->id);
	pg_int(&p, call->lease_token);
	if (pg_run_changed((struct pg_store *)base, P_DROP_SUPERSEDED, &p, &n, err, errlen,
			   "drop superseded repeat") != 0)
		return -1;
	*dropped = n > 0;
	return 0;
}

int pg_store_next_call(struct store *base, int64_t *at, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};

	pg_text(&p, st->limit);
	return pg_run_int64(st, P_NEXT_CALL, &p, INT64_MAX, at, err, errlen, "next call");
}

int pg_store_call_delivered(struct store *base, const struct store_call *call, int64_t at,
			    enum store_outcome *outcome, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	struct pg_params q = {0};
	int64_t n = 0;

	pg_int(&p, call->id);
	pg_int(&p, at);
	pg_int(&p, call->lease_token);
	if (pg_run_changed(st, P_CALL_DELIVERED, &p, &n, err, errlen, "mark call delivered") != 0)
		return -1;
	if (n == 0) {
		*outcome = STORE_CALL_LOST;
		return 0;
	}
	*outcome = STORE_CALL_DELIVERED;
	if (call->kind != STORE_NOTIFY)
		return 0;
	pg_int(&q, call->alert_id);
	pg_int(&q, at);
	return pg_run_changed(st, P_LAST_NOTIFIED, &q, NULL, err, errlen, "write last notified");
}

int pg_store_call_failed(struct store *base, const struct store_call *call,
			 const struct store_failure *f, enum store_outcome *outcome, char *err,
			 size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};
	struct pg_params q = {0};
	PGresult *r;

	pg_int(&p, call->id);
	pg_int(&p, call->lease_token);
	pg_int(&p, f->at);
	pg_int(&p, f->next_attempt);
	pg_text(&p, f->error);
	pg_int(&p, f->rejected != 0);
	pg_int(&p, f->give_up_ms);
	pg_int(&p, f->maybe_sent != 0);
	if (f->not_before > 0)
		pg_int(&p, f->not_before);
	else
		pg_text(&p, NULL);
	r = pg_run(st, P_CALL_FAILED, &p, err, errlen, "mark call failed");
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		*outcome = STORE_CALL_LOST;
		return 0;
	}
	st->rows_in_tx += PQntuples(r);
	*outcome = strcmp(PQgetvalue(r, 0, 0), "dead") == 0 ? STORE_CALL_DEAD : STORE_CALL_WAITS;
	PQclear(r);
	if (*outcome != STORE_CALL_DEAD || call->kind != STORE_NOTIFY)
		return 0;
	pg_int(&q, call->alert_id);
	pg_int(&q, f->at);
	return pg_run_changed(st, P_GAVE_UP_NOTIFY, &q, NULL, err, errlen, "write notify given up");
}

int pg_store_call_release(struct store *base, const struct store_call *call, int maybe_sent,
			  char *err, size_t errlen)
{
	struct pg_params p = {0};

	pg_int(&p, call->id);
	pg_int(&p, call->lease_token);
	pg_int(&p, maybe_sent != 0);
	return pg_run_changed((struct pg_store *)base, P_CALL_RELEASE, &p, NULL, err, errlen,
			      "release call");
}

int pg_store_calls_retry_now(struct store *base, int64_t at, int64_t *n, char *err, size_t errlen)
{
	struct pg_store *st = (struct pg_store *)base;
	struct pg_params p = {0};

	pg_int(&p, at);
	pg_text(&p, st->limit);
	return pg_run_changed(st, P_RETRY_NOW, &p, n, err, errlen, "retry calls now");
}
