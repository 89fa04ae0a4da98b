#include "validator.h"

#include "buf.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64
#define MAX_EXPECT 8
#define TOLERANCE_EXTRA_MS 2000   /* T = intervalSecs + 2 s */
#define REPEAT_EARLY_SLACK_MS 50  /* a repeat may come this much early */
#define REPEAT_EXPECT_SLACK_MS 2000 /* a repeat is expected this much late */
#define MAX_OUTAGES 64
#define DUPLICATE_MS 1000         /* closer repeats are called duplicates */
#define SUMMARY_ALL_LIMIT 100

enum kind { KIND_NOTIFY, KIND_RESOLVE };

struct expect {
	int64_t since; /* when the value that caused it was served */
	int64_t due;   /* deadline */
	unsigned char kind;
	unsigned char level;   /* for notifies */
	unsigned char repeat;  /* a repeat notify, not a change */
	unsigned char expired; /* reported already; kept to absorb a late call */
};

struct state {
	int64_t level_since; /* when the current level was first served */
	int64_t last_notify; /* time of the last accepted notify, or -1 */
	unsigned char level; /* last served level */
	unsigned char last_notify_level;
	unsigned char queried;
	unsigned char ever_fired;
	unsigned char nexpect;
	struct expect expect[MAX_EXPECT];
	unsigned notify_expected;
	unsigned notify_received;
	unsigned resolve_expected;
	unsigned resolve_received;
	unsigned errors;
};

struct validator {
	const struct alerts *alerts;
	FILE *out;
	struct state *states;
	pthread_mutex_t locks[STRIPES];
	atomic_ulong errors;
	atomic_ulong unknown_calls;
	int64_t outage_from[MAX_OUTAGES]; /* set before serving, then read-only */
	int64_t outage_to[MAX_OUTAGES];
	size_t noutages;
};

struct validator *validator_new(const struct alerts *alerts, FILE *out)
{
	struct validator *v = NULL;
	size_t i;

	assert(alerts != NULL && out != NULL);
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->states = calloc(alerts->count + 1, sizeof(*v->states));
	if (v->states == NULL) {
		free(v);
		return NULL;
	}
	for (i = 0; i < alerts->count; i++)
		v->states[i].last_notify = -1;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&v->locks[i], NULL);
	v->alerts = alerts;
	v->out = out;
	atomic_init(&v->errors, 0);
	atomic_init(&v->unknown_calls, 0);
	return v;
}

void validator_free(struct validator *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&v->locks[i]);
	free(v->states);
	free(v);
}

unsigned long validator_errors(const struct validator *v)
{
	return atomic_load(&v->errors);
}

int validator_outage(struct validator *v, int64_t from_ms, int64_t to_ms)
{
	if (v->noutages == MAX_OUTAGES || to_ms <= from_ms)
		return -1;
	v->outage_from[v->noutages] = from_ms;
	v->outage_to[v->noutages] = to_ms;
	v->noutages++;
	return 0;
}

/* Pushes a deadline past the outages that overlap (since, due]: to the
 * outage's end plus the larger of the tolerance and the outage's length,
 * room for a client's backoff to come round. */
static int64_t extend_due(const struct validator *v, int64_t since,
			  int64_t due, int64_t tol)
{
	int changed = 1;
	size_t i;

	while (changed) {
		changed = 0;
		for (i = 0; i < v->noutages; i++) {
			int64_t len = v->outage_to[i] - v->outage_from[i];
			int64_t d = v->outage_to[i] + (len > tol ? len : tol);

			if (v->outage_from[i] < due && v->outage_to[i] > since &&
			    d > due) {
				due = d;
				changed = 1;
			}
		}
	}
	return due;
}

static pthread_mutex_t *lock_of(struct validator *v, int idx)
{
	return &v->locks[(unsigned)idx % STRIPES];
}

static int64_t tolerance_ms(const struct alert *al)
{
	return (int64_t)al->interval_secs * 1000 + TOLERANCE_EXTRA_MS;
}

static double secs(int64_t ms)
{
	return (double)ms / 1000.0;
}

/* Writes one ERROR line about alert name (may be NULL for unknown ones) and
 * counts it; st may be NULL. */
__attribute__((format(printf, 4, 5)))
static void report(struct validator *v, struct state *st, const char *name,
		   const char *fmt, ...)
{
	struct buf line;
	va_list ap;

	buf_init(&line);
	buf_puts(&line, "ERROR alert=");
	buf_puts(&line, name);
	buf_puts(&line, ": ");
	va_start(ap, fmt);
	buf_vprintf(&line, fmt, ap);
	va_end(ap);
	buf_puts(&line, "\n");
	if (!line.failed) {
		fputs(line.data, v->out);
		fflush(v->out);
	}
	buf_free(&line);
	atomic_fetch_add(&v->errors, 1);
	if (st != NULL)
		st->errors++;
}

static void remove_expect(struct state *st, unsigned i)
{
	assert(i < st->nexpect);
	memmove(&st->expect[i], &st->expect[i + 1],
		(st->nexpect - i - 1) * sizeof(st->expect[0]));
	st->nexpect--;
}

static void describe_expect(struct buf *b, const struct alert *al,
			    const struct expect *e)
{
	if (e->kind == KIND_RESOLVE) {
		buf_printf(b, "resolve (PASS served at %.3f s)", secs(e->since));
		return;
	}
	buf_printf(b, "%s notify \"%s\" (%s served at %.3f s)",
		   e->repeat ? "repeat" : "change",
		   alerts_message(al, (enum level)e->level),
		   level_name((enum level)e->level), secs(e->since));
}

/* Adds an expectation; when the queue is full the oldest entry goes (an
 * error if it was still pending). */
static void add_expect(struct validator *v, struct state *st,
		       const struct alert *al, struct expect e)
{
	if (st->nexpect == MAX_EXPECT) {
		unsigned drop = 0;
		unsigned i;

		for (i = 0; i < st->nexpect; i++) {
			if (st->expect[i].expired) {
				drop = i;
				break;
			}
		}
		if (!st->expect[drop].expired) {
			struct buf what;

			buf_init(&what);
			describe_expect(&what, al, &st->expect[drop]);
			report(v, st, al->name,
			       "more than %d calls outstanding; gave up on %s",
			       MAX_EXPECT, what.failed ? "?" : what.data);
			buf_free(&what);
		}
		remove_expect(st, drop);
	}
	st->expect[st->nexpect++] = e;
}

static int has_notify_expect(const struct state *st)
{
	unsigned i;

	for (i = 0; i < st->nexpect; i++) {
		if (st->expect[i].kind == KIND_NOTIFY)
			return 1;
	}
	return 0;
}

static void served_one(struct validator *v, int idx, double value,
		       int64_t now)
{
	const struct alert *al = &v->alerts->items[idx];
	struct state *st = &v->states[idx];
	enum level l = alerts_level(al, value);
	struct expect e;

	if (al->sustain_secs > 0) {
		st->queried = 1;
		return;
	}
	if (!st->queried) {
		st->queried = 1;
		st->level = LEVEL_PASS;
		st->level_since = now;
	}
	memset(&e, 0, sizeof(e));
	e.since = now;
	e.due = extend_due(v, now, now + tolerance_ms(al), tolerance_ms(al));
	if ((unsigned char)l != st->level) {
		if (l == LEVEL_PASS) {
			e.kind = KIND_RESOLVE;
			st->resolve_expected++;
		} else {
			e.kind = KIND_NOTIFY;
			e.level = (unsigned char)l;
			st->notify_expected++;
			st->ever_fired = 1;
		}
		add_expect(v, st, al, e);
		st->level = (unsigned char)l;
		st->level_since = now;
		return;
	}
	if (l == LEVEL_PASS || has_notify_expect(st))
		return;
	/* Still firing: a repeat is due once the episode was notified and the
	 * repeat interval has passed since that notify. */
	if (st->last_notify < st->level_since ||
	    st->last_notify_level != (unsigned char)l)
		return;
	if (now - st->last_notify <
	    al->repeat_secs * 1000 + REPEAT_EXPECT_SLACK_MS)
		return;
	e.kind = KIND_NOTIFY;
	e.level = (unsigned char)l;
	e.repeat = 1;
	/* Never less than the longest allowed spacing of repeats. */
	if (e.due < st->last_notify + (al->repeat_secs + al->interval_secs) *
					      1000 + tolerance_ms(al))
		e.due = extend_due(v, now,
				   st->last_notify + (al->repeat_secs +
						      al->interval_secs) * 1000 +
					   tolerance_ms(al),
				   tolerance_ms(al));
	st->notify_expected++;
	add_expect(v, st, al, e);
}

void validator_served(struct validator *v, const char *target, double value,
		      int64_t now_ms)
{
	int idx = alerts_by_query(v->alerts, target);

	for (; idx >= 0; idx = v->alerts->items[idx].next_same_query) {
		pthread_mutex_t *lock = lock_of(v, idx);

		pthread_mutex_lock(lock);
		served_one(v, idx, value, now_ms);
		pthread_mutex_unlock(lock);
	}
}

/* Index of the first expectation of kind (and, for notifies, whose level's
 * message is message), or -1. */
static int find_expect(const struct state *st, const struct alert *al,
		       enum kind kind, const char *message)
{
	unsigned i;

	for (i = 0; i < st->nexpect; i++) {
		const struct expect *e = &st->expect[i];

		if (e->kind != kind)
			continue;
		if (kind == KIND_NOTIFY &&
		    strcmp(alerts_message(al, (enum level)e->level), message) != 0)
			continue;
		return (int)i;
	}
	return -1;
}

static void notify_one(struct validator *v, int idx, const char *message,
		       int64_t now)
{
	const struct alert *al = &v->alerts->items[idx];
	struct state *st = &v->states[idx];
	enum level cur = (enum level)st->level;
	int i;
	unsigned k;

	st->notify_received++;
	if (al->sustain_secs > 0)
		return;
	i = find_expect(st, al, KIND_NOTIFY, message);
	if (i >= 0) {
		st->last_notify = now;
		st->last_notify_level = st->expect[i].level;
		remove_expect(st, (unsigned)i);
		return;
	}
	for (k = 0; k < st->nexpect; k++) {
		const struct expect *e = &st->expect[k];

		if (e->kind == KIND_NOTIFY && !e->expired) {
			report(v, st, al->name,
			       "wrong message: expected notify \"%s\" (%s served "
			       "at %.3f s), came notify \"%s\" at %.3f s",
			       alerts_message(al, (enum level)e->level),
			       level_name((enum level)e->level), secs(e->since),
			       message, secs(now));
			return;
		}
	}
	if (!st->queried || cur == LEVEL_PASS) {
		report(v, st, al->name,
		       "unexpected notify \"%s\" at %.3f s: served level is "
		       "PASS%s", message, secs(now),
		       st->queried ? "" : " (never queried)");
		return;
	}
	if (strcmp(message, alerts_message(al, cur)) != 0) {
		report(v, st, al->name,
		       "wrong message: served level %s expects notify \"%s\", "
		       "came notify \"%s\" at %.3f s", level_name(cur),
		       alerts_message(al, cur), message, secs(now));
		return;
	}
	if (st->last_notify >= st->level_since &&
	    st->last_notify_level == (unsigned char)cur) {
		int64_t gap = now - st->last_notify;

		if (gap < al->repeat_secs * 1000 - REPEAT_EARLY_SLACK_MS)
			report(v, st, al->name,
			       "%s notify \"%s\" at %.3f s, %.3f s after the "
			       "previous one; expected no notify before the "
			       "repeat interval of %ld s",
			       gap < DUPLICATE_MS ? "duplicate" : "early repeat",
			       message, secs(now), secs(gap), al->repeat_secs);
	}
	/* Otherwise a repeat that came before the validator expected it, or a
	 * change notify so late that its expectation was already dropped. */
	st->last_notify = now;
	st->last_notify_level = (unsigned char)cur;
}

void validator_notify(struct validator *v, const char *alert,
		      const char *message, int64_t now_ms)
{
	int idx = alerts_by_name(v->alerts, alert);
	pthread_mutex_t *lock;

	if (idx < 0) {
		atomic_fetch_add(&v->unknown_calls, 1);
		report(v, NULL, alert,
		       "unknown alert: expected no call, came notify \"%s\" at "
		       "%.3f s", message, secs(now_ms));
		return;
	}
	lock = lock_of(v, idx);
	pthread_mutex_lock(lock);
	notify_one(v, idx, message, now_ms);
	pthread_mutex_unlock(lock);
}

static void resolve_one(struct validator *v, int idx, int64_t now)
{
	const struct alert *al = &v->alerts->items[idx];
	struct state *st = &v->states[idx];
	int i;

	st->resolve_received++;
	if (al->sustain_secs > 0)
		return;
	i = find_expect(st, al, KIND_RESOLVE, NULL);
	if (i >= 0) {
		remove_expect(st, (unsigned)i);
		return;
	}
	if (!st->ever_fired)
		report(v, st, al->name,
		       "unexpected resolve at %.3f s: the served level never "
		       "left PASS", secs(now));
	else if (st->level == LEVEL_PASS)
		report(v, st, al->name,
		       "duplicate resolve at %.3f s: PASS since %.3f s was "
		       "already resolved", secs(now), secs(st->level_since));
	else
		report(v, st, al->name,
		       "unexpected resolve at %.3f s: served level is %s",
		       secs(now), level_name((enum level)st->level));
}

void validator_resolve(struct validator *v, const char *alert,
		       int64_t now_ms)
{
	int idx = alerts_by_name(v->alerts, alert);
	pthread_mutex_t *lock;

	if (idx < 0) {
		atomic_fetch_add(&v->unknown_calls, 1);
		report(v, NULL, alert,
		       "unknown alert: expected no call, came resolve at %.3f s",
		       secs(now_ms));
		return;
	}
	lock = lock_of(v, idx);
	pthread_mutex_lock(lock);
	resolve_one(v, idx, now_ms);
	pthread_mutex_unlock(lock);
}

static void tick_one(struct validator *v, int idx, int64_t now)
{
	const struct alert *al = &v->alerts->items[idx];
	struct state *st = &v->states[idx];
	unsigned i = 0;

	while (i < st->nexpect) {
		struct expect *e = &st->expect[i];

		if (e->expired && now > e->due + tolerance_ms(al)) {
			/* Long overdue: stop waiting for a late call. */
			remove_expect(st, i);
			continue;
		}
		if (!e->expired && now > e->due) {
			struct buf what;

			buf_init(&what);
			describe_expect(&what, al, e);
			report(v, st, al->name, "%s: expected %s by %.3f s, none came",
			       e->kind == KIND_RESOLVE ? "missing resolve"
			       : e->repeat ? "late repeat notify"
					   : "missing notify",
			       what.failed ? "?" : what.data, secs(e->due));
			buf_free(&what);
			e->expired = 1;
		}
		i++;
	}
}

void validator_tick(struct validator *v, int64_t now_ms)
{
	size_t i;

	for (i = 0; i < v->alerts->count; i++) {
		pthread_mutex_t *lock = lock_of(v, (int)i);

		pthread_mutex_lock(lock);
		if (v->states[i].nexpect > 0)
			tick_one(v, (int)i, now_ms);
		pthread_mutex_unlock(lock);
	}
}

static unsigned in_flight(const struct state *st)
{
	unsigned n = 0;
	unsigned i;

	for (i = 0; i < st->nexpect; i++)
		n += !st->expect[i].expired;
	return n;
}

static int active(const struct state *st)
{
	return st->queried || st->notify_received || st->resolve_received;
}

void validator_summary(struct validator *v, int64_t now_ms)
{
	unsigned long notify_expected = 0, notify_received = 0;
	unsigned long resolve_expected = 0, resolve_received = 0;
	unsigned long flight = 0, queried = 0, not_judged = 0, nactive = 0;
	unsigned long listed = 0, unlisted = 0;
	size_t i;
	int pass;

	/* Pass 0 counts, pass 1 prints. Locks are taken per alert, so the
	 * totals are a near-consistent snapshot while the server runs. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < v->alerts->count; i++) {
			const struct alert *al = &v->alerts->items[i];
			pthread_mutex_t *lock = lock_of(v, (int)i);
			struct state st;
			unsigned fl;

			pthread_mutex_lock(lock);
			st = v->states[i];
			pthread_mutex_unlock(lock);
			if (!active(&st))
				continue;
			fl = in_flight(&st);
			if (pass == 0) {
				nactive++;
				queried += st.queried;
				not_judged += al->sustain_secs > 0;
				notify_expected += st.notify_expected;
				notify_received += st.notify_received;
				resolve_expected += st.resolve_expected;
				resolve_received += st.resolve_received;
				flight += fl;
				continue;
			}
			if (nactive > SUMMARY_ALL_LIMIT && st.errors == 0 &&
			    fl == 0)
				continue;
			if (listed == SUMMARY_ALL_LIMIT) {
				unlisted++;
				continue;
			}
			listed++;
			if (al->sustain_secs > 0) {
				fprintf(v->out,
					"SUMMARY alert=%s not judged (sustainSecs "
					"%ld > 0): notify received %u, resolve "
					"received %u\n", al->name,
					al->sustain_secs, st.notify_received,
					st.resolve_received);
				continue;
			}
			fprintf(v->out,
				"SUMMARY alert=%s notify expected %u received "
				"%u, resolve expected %u received %u, in "
				"flight %u, errors %u\n", al->name,
				st.notify_expected, st.notify_received,
				st.resolve_expected, st.resolve_received, fl,
				st.errors);
		}
	}
	if (unlisted > 0)
		fprintf(v->out, "SUMMARY %lu more alerts with errors or calls in "
			"flight not listed\n", unlisted);
	fprintf(v->out,
		"SUMMARY total at %.3f s: alerts %zu, active %lu, queried %lu, "
		"not judged (sustainSecs > 0) %lu; notify expected %lu "
		"received %lu, resolve expected %lu received %lu, in flight "
		"%lu, unknown-alert calls %lu, errors %lu\n",
		secs(now_ms), v->alerts->count, nactive, queried, not_judged,
		notify_expected, notify_received, resolve_expected,
		resolve_received, flight, atomic_load(&v->unknown_calls),
		atomic_load(&v->errors));
	fflush(v->out);
}
