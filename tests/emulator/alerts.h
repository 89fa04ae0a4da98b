/* alerts: the alert definitions the emulator serves on GET /alerts — a
 * generated profile (v2, latest) or a JSON file served byte for byte — and
 * the lookups the server and the validator need (by name, by query). */
#ifndef EMU_ALERTS_H
#define EMU_ALERTS_H

#include "buf.h"

#include <stddef.h>

enum level { LEVEL_PASS = 0, LEVEL_WARN = 1, LEVEL_CRITICAL = 2 };

struct alert {
	char *name;
	char *query;
	long interval_secs;
	long repeat_secs; /* effective value: missing or <= 0 became 300 */
	long sustain_secs;
	double warn_value;
	char *warn_message;
	double critical_value;
	char *critical_message;
	int next_same_query; /* next alert index with the same query, or -1 */
};

struct alerts {
	struct alert *items; /* the understood (valid) alerts */
	size_t count;
	char *body; /* the GET /alerts body, body_len bytes */
	size_t body_len;
	struct strmap *by_name;
	struct strmap *by_query; /* query -> first alert index */
};

/* Builds a generated profile: "v2" or "latest", count alerts named
 * alert-1..alert-count with queries test-query-1..test-query-count.
 * Returns 0 and sets *out (free with alerts_free), or -1 with the reason
 * in err (unknown profile, count out of 1..1000000, out of memory). */
int alerts_profile(struct alerts **out, const char *profile, long count,
		   char *err, size_t errlen);

/* Parses data (len bytes) read from the file named label: it must be a JSON
 * array; it is served as given. Valid entries are understood, invalid ones
 * are ignored with one line per entry appended to warnings (may be NULL),
 * e.g. "alerts a.json: entry 3 ignored: intervalSecs is not a positive
 * integer". Returns 0 and sets *out, or FILE_ERR_CONTENT with
 * "alerts LABEL: reason" in err. */
int alerts_parse(struct alerts **out, const char *label, const char *data,
		 size_t len, struct buf *warnings, char *err, size_t errlen);

/* Reads and parses the file at path (see alerts_parse). Returns 0,
 * FILE_ERR_READ or FILE_ERR_CONTENT with the reason in err. */
int alerts_load(struct alerts **out, const char *path, struct buf *warnings,
		char *err, size_t errlen);

/* Releases everything; alerts_free(NULL) is a no-op. */
void alerts_free(struct alerts *a);

/* Index of the alert called name, or -1. */
int alerts_by_name(const struct alerts *a, const char *name);

/* Index of the first alert whose query is query, or -1; follow
 * items[i].next_same_query for the others. */
int alerts_by_query(const struct alerts *a, const char *query);

/* The level of value v for alert a: CRITICAL if v > critical, else WARN if
 * v > warn, else PASS (strict comparisons). */
enum level alerts_level(const struct alert *a, double v);

/* The notify message alert a must send for a firing level (WARN or
 * CRITICAL). */
const char *alerts_message(const struct alert *a, enum level l);

/* "PASS", "WARN" or "CRITICAL". */
const char *level_name(enum level l);

#endif
