#include "faults.h"

#include "buf.h"
#include "rng.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void faults_init(struct faults *f, uint64_t seed)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	f->seed = seed;
	f->query_latency_ms = -1;
	for (i = 0; i < EP_COUNT; i++) {
		atomic_init(&f->draws[i], 0);
		atomic_init(&f->reject_draws[i], 0);
	}
}

/* Parses a whole string as a finite double. Returns 0 or -1. */
static int parse_double(const char *text, double *out)
{
	char *end = NULL;
	double d;

	errno = 0;
	d = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

int faults_parse_rate(const char *text, double *rate, char *err,
		      size_t errlen)
{
	double d;

	if (parse_double(text, &d) != 0 || d < 0 || d > 1) {
		fmt_err(err, errlen, "bad fail rate \"%s\": expected a number in "
			"[0, 1]", text);
		return -1;
	}
	*rate = d;
	return 0;
}

int faults_add_down(struct faults *f, const char *spec, char *err,
		    size_t errlen)
{
	char from[64];
	const char *colon = strchr(spec, ':');
	size_t n;
	double a;
	double b;

	if (f->down_count == FAULTS_MAX_DOWN) {
		fmt_err(err, errlen, "too many --down windows (at most %d)",
			FAULTS_MAX_DOWN);
		return -1;
	}
	n = colon != NULL ? (size_t)(colon - spec) : 0;
	if (colon == NULL || n >= sizeof(from)) {
		fmt_err(err, errlen, "bad --down \"%s\": expected FROM:TO", spec);
		return -1;
	}
	memcpy(from, spec, n);
	from[n] = '\0';
	if (parse_double(from, &a) != 0 || parse_double(colon + 1, &b) != 0 ||
	    a < 0 || b <= a) {
		fmt_err(err, errlen, "bad --down \"%s\": expected FROM:TO seconds "
			"with 0 <= FROM < TO", spec);
		return -1;
	}
	f->down_from[f->down_count] = a;
	f->down_to[f->down_count] = b;
	f->down_count++;
	return 0;
}

long faults_latency_ms(const struct faults *f, enum endpoint ep)
{
	if (ep == EP_QUERY && f->query_latency_ms >= 0)
		return f->query_latency_ms;
	return f->latency_ms;
}

long faults_max_latency_ms(const struct faults *f)
{
	return f->query_latency_ms > f->latency_ms ? f->query_latency_ms
						   : f->latency_ms;
}

int faults_down(const struct faults *f, double elapsed)
{
	size_t i;

	for (i = 0; i < f->down_count; i++) {
		if (elapsed >= f->down_from[i] && elapsed < f->down_to[i])
			return 1;
	}
	return 0;
}

int faults_fail(struct faults *f, enum endpoint ep)
{
	uint64_t n;

	assert(ep < EP_COUNT);
	if (f->fail_rate[ep] <= 0)
		return 0;
	n = atomic_fetch_add_explicit(&f->draws[ep], 1, memory_order_relaxed);
	return rng_unit(rng_mix(f->seed ^ ((uint64_t)ep << 56)) + n) <
	       f->fail_rate[ep];
}

int faults_reject(struct faults *f, enum endpoint ep)
{
	uint64_t n;

	assert(ep < EP_COUNT);
	if (f->reject_rate[ep] <= 0)
		return 0;
	n = atomic_fetch_add_explicit(&f->reject_draws[ep], 1,
				      memory_order_relaxed);
	return rng_unit(rng_mix(f->seed ^ ((uint64_t)(ep + 16) << 56)) + n) <
	       f->reject_rate[ep];
}
