/* faults: the injected failures — a seeded HTTP 500 rate per endpoint, a
 * seeded HTTP 400 rate for well-formed notify/resolve calls (a server that
 * rejects a call), down windows answered 503, and a fixed latency. Configured once at start;
 * afterwards only the per-endpoint draw counters change (atomically), so
 * any thread may call faults_fail. */
#ifndef EMU_FAULTS_H
#define EMU_FAULTS_H

#include "endpoint.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FAULTS_MAX_DOWN 64

struct faults {
	uint64_t seed;
	double fail_rate[EP_COUNT]; /* probability of a 500, in [0, 1] */
	double reject_rate[EP_COUNT]; /* of a 400 (notify, resolve), [0, 1] */
	long latency_ms;
	long query_latency_ms; /* for /query instead of latency_ms; -1: same */
	double down_from[FAULTS_MAX_DOWN]; /* [from, to) seconds since start */
	double down_to[FAULTS_MAX_DOWN];
	size_t down_count;
	atomic_uint_fast64_t draws[EP_COUNT];
	atomic_uint_fast64_t reject_draws[EP_COUNT];
};

/* Initialises f: no failures, no latency, no down windows. */
void faults_init(struct faults *f, uint64_t seed);

/* Parses a fail rate ("0.2") into *rate. Returns 0, or -1 with the reason
 * in err when it is not a number in [0, 1]. */
int faults_parse_rate(const char *text, double *rate, char *err,
		      size_t errlen);

/* Adds a down window "FROM:TO" (seconds since start, FROM < TO). Returns 0,
 * or -1 with the reason in err (malformed, or too many windows). */
int faults_add_down(struct faults *f, const char *spec, char *err,
		    size_t errlen);

/* How long a request to ep waits before it is answered, in ms. */
long faults_latency_ms(const struct faults *f, enum endpoint ep);

/* The longest latency of any endpoint, in ms. */
long faults_max_latency_ms(const struct faults *f);

/* Whether elapsed seconds since start lie in a down window. */
int faults_down(const struct faults *f, double elapsed);

/* Draws whether this request to ep fails with HTTP 500. The n-th draw for
 * an endpoint is a pure function of (seed, endpoint, n). */
int faults_fail(struct faults *f, enum endpoint ep);

/* Draws whether a well-formed call to ep is rejected with HTTP 400. The
 * n-th draw for an endpoint is a pure function of (seed, endpoint, n),
 * independent of the draws of faults_fail. */
int faults_reject(struct faults *f, enum endpoint ep);

#endif
