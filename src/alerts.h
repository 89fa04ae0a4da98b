#ifndef ALERT_EXEC_ALERTS_H
#define ALERT_EXEC_ALERTS_H

#include <stddef.h>
#include <stdint.h>

/*
 * The server's JSON (DESIGN.md section 1): the /alerts body, which defines
 * the alerts, and the /query answer, which gives a value. Everything the
 * server sends is validated here before the engine sees it. Pure: no
 * network, no clock; the only output but the results is the warnings
 * about skipped entries (log_msg). Fuzzed (tests/fuzz/).
 *
 * Errors: the parsers return 0, or -1 with a one-line, lowercase message
 * in err; err may be NULL or errlen 0 when the message is not wanted.
 */

/* An alert definition as the server sent it, validated. Owned strings:
 * release them with alert_def_clear. */
struct alert_def {
	char *name;
	char *query;
	int64_t interval_ms; /* > 0 */
	int64_t repeat_ms;   /* > 0 (300 s when the server sent <= 0) */
	int64_t sustain_ms;  /* >= 0 */
	double warn_value;
	char *warn_message;
	double crit_value;
	char *crit_message;
};

/* Frees one definition's strings (not the struct) and sets them to NULL,
 * so a second call is harmless; NULL is a no-op. */
void alert_def_clear(struct alert_def *def);
/* Frees an array of n definitions and their strings; NULL is a no-op. */
void alert_defs_free(struct alert_def *defs, size_t n);

/* Limits on strings of a definition; longer ones make the entry invalid. */
#define ALERTS_MAX_NAME 256
#define ALERTS_MAX_QUERY 4096
#define ALERTS_MAX_MESSAGE 4096
/* Largest accepted intervalSecs; a larger repeatIntervalSecs or
 * sustainSecs is brought down to it. */
#define ALERTS_MAX_SECS (366LL * 24 * 3600)
/* Most entries of a /alerts body, ten times the 100 000 alerts the
 * benchmark runs; a body with more is refused whole. */
#define ALERTS_MAX_ENTRIES 1000000
/* Warnings about entries of one /alerts body that are logged one by one
 * (enough for every kind of bad entry at once); the rest are counted in
 * one line. */
#define ALERTS_MAX_ENTRY_WARNINGS 50

/* Parses and validates a /alerts body of len bytes. body need not be
 * NUL-terminated; it is copied first. Returns 0 with *defs (never NULL,
 * free with alert_defs_free) and *n (possibly 0), or -1 with a message in
 * err ("alerts: body is not a JSON array (it is an object)", not JSON, a
 * \u0000 escape anywhere, more than ALERTS_MAX_ENTRIES entries, out of
 * memory) and *defs NULL. Memory grows with the entries kept, not with
 * the entries sent.
 *
 * An entry is kept when it is an object with:
 *   name      a string, non-empty, <= ALERTS_MAX_NAME bytes, UTF-8, no
 *             control characters, not the name of an entry kept before it;
 *   query     a string, non-empty, <= ALERTS_MAX_QUERY bytes, UTF-8;
 *   intervalSecs  an integer-valued number in [1, ALERTS_MAX_SECS];
 *   repeatIntervalSecs  optional: missing, null or <= 0 means 300 s; if
 *             present a number, integer-valued; above ALERTS_MAX_SECS it
 *             is ALERTS_MAX_SECS (a server may send 2^31-1 for "never");
 *   sustainSecs  optional: missing or null means 0; if present a number,
 *             integer-valued, >= 0; above ALERTS_MAX_SECS it is
 *             ALERTS_MAX_SECS;
 *   warn, critical  objects with "value" a finite number and "message" a
 *             UTF-8 string <= ALERTS_MAX_MESSAGE bytes. An empty message
 *             is accepted: the server defines the text and its validator
 *             expects it back; dropping the alert would be worse;
 * and when no string of it (key or value) holds a raw byte below 0x20,
 * which JSON does not allow (cJSON keeps a raw NUL, and the C string
 * "alert-x<NUL>evil" reads as alert-x); the name of such an entry is not
 * trusted, so it is not among the skipped names of alerts_parse_full.
 * Other members are ignored. Every other entry is skipped with exactly one
 * warning naming its 0-based index, its name when that is usable, and the
 * field: "alerts: skipping entry 3 (alert-7): intervalSecs is not a
 * positive integer (0)". A value brought down to ALERTS_MAX_SECS gives
 * one warning naming the entry and the field ("alerts: keeping entry 4
 * (alert-8): sustainSecs 2.14748e+09 is over 31622400, using 31622400").
 * Only the first ALERTS_MAX_ENTRY_WARNINGS such warnings of a body are
 * logged; one more line counts the rest ("alerts: and 999950 more
 * warnings not logged (in all: entries skipped=1000000 values
 * clamped=0)"). Of entries with the same name the first kept one wins.
 * Times come out in ms. */
int alerts_parse(const char *body, size_t len, struct alert_def **defs, size_t *n, char *err,
		 size_t errlen);

/* alerts_parse, also returning in *skipped (malloc'd, free with
 * alerts_names_free) the *nskipped names of the entries that were skipped
 * as invalid although their name was usable. An entry that turns invalid
 * says nothing about whether its alert still fires: the engine keeps that
 * alert's stored definition rather than retiring it. */
int alerts_parse_full(const char *body, size_t len, struct alert_def **defs, size_t *n,
		      char ***skipped, size_t *nskipped, char *err, size_t errlen);

/* alerts_parse_full of a body the caller has NUL-terminated
 * (body[len] == '\0'): it is not copied, which spares a second copy of a
 * body of tens of megabytes. */
int alerts_parse_full_z(const char *body, size_t len, struct alert_def **defs, size_t *n,
			char ***skipped, size_t *nskipped, char *err, size_t errlen);

/* One problem with an entry of a /alerts body: its 0-based index, its
 * name (NULL when not usable: not a string, or the entry holds a raw
 * control byte), whether the entry is skipped (invalid) or kept with a
 * value brought down to ALERTS_MAX_SECS, and why, as the warning says it
 * ("intervalSecs is not a positive integer (0)"). Borrowed for the call. */
struct alerts_problem {
	size_t index;
	const char *name;
	int skipped;
	const char *why;
};
typedef void (*alerts_problem_fn)(const struct alerts_problem *problem, void *arg);

/* alerts_parse_full_z that hands every problem of an entry to report
 * (all of them, in the order of the entries) instead of logging it; the
 * definitions kept are the same. For `alert-exec check`, which must name
 * every problem the engine would skip an entry for. */
int alerts_parse_report_z(const char *body, size_t len, struct alert_def **defs, size_t *n,
			  char ***skipped, size_t *nskipped, alerts_problem_fn report,
			  void *report_arg, char *err, size_t errlen);

void alerts_names_free(char **names, size_t n);

/* Parses a /query body {"value": <number>} (other members are ignored).
 * body need not be NUL-terminated; it is copied first. Returns 0 with a
 * finite *value, or -1 with a bare reason in err that the caller prefixes
 * with its context: "body is empty", "body is not JSON (starts with
 * <html>)", "body is not a JSON object (it is an array)", "body has no
 * \"value\"", "value is not a number (it is null)", "value is not finite"
 * (1e999), "body is not JSON (a string holds the raw control byte 0x00)"
 * (cJSON would read the key "value<NUL>x" as "value"). */
int alerts_parse_value(const char *body, size_t len, double *value, char *err, size_t errlen);

/* alerts_parse_value of a body the caller has NUL-terminated
 * (body[len] == '\0'): it is not copied. */
int alerts_parse_value_z(const char *body, size_t len, double *value, char *err, size_t errlen);

#endif
