/*
 * Tests of alerts.c (and json.c beneath it): the pure parsers of the
 * /alerts and /query bodies, the lifetime of a definition, and the fuzz
 * seed corpus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#include "alerts.h"
#include "capture.h"
#include "log.h"

/* ---- helpers ------------------------------------------------------------- */

/* Parses body; returns the log text written meanwhile (malloc'd). */
static char *parse_logged(const char *body, struct alert_def **defs,
			  size_t *n, int *rc, char *err, size_t errlen)
{
	struct capture c;

	capture_begin(&c);
	*rc = alerts_parse(body, strlen(body), defs, n, err, errlen);
	return capture_end(&c);
}

/* ---- /alerts parsing ------------------------------------------------------- */

#define WC "\"warn\":{\"value\":100,\"message\":\"w\"}," \
	   "\"critical\":{\"value\":200,\"message\":\"c\"}"

/* The body of test_parse_good_alerts. */
static const char good_body[] =
	"[\n"
	" {\"name\":\"alert-1\",\"query\":\"test-query-1\","
	"\"intervalSecs\":15,\"repeatIntervalSecs\":100,\"sustainSecs\":0,"
	"\"warn\":{\"value\":100,\"message\":\"warning\"},"
	"\"critical\":{\"value\":200,\"message\":\"critical\"}},\n"
	/* escapes, UTF-8 both raw and \u, extra members, float-typed
	 * integers, empty message, negative threshold */
	" {\"name\":\"disk \\\"root\\\" \xc3\xbc\\u00fc\","
	"\"query\":\"cpu load & mem #1 \xc3\xbc+x\","
	"\"intervalSecs\":60.0,\"sustainSecs\":30,\"extra\":[1,{}],"
	"\"warn\":{\"value\":-5.5,\"message\":\"line1\\nline2 \\\"q\\\"\"},"
	"\"critical\":{\"value\":1e3,\"message\":\"\"}},\n"
	/* limits: the largest interval, repeat 0 -> 300 s, null sustain */
	" {\"name\":\"alert-3\",\"query\":\"q3\",\"intervalSecs\":31622400,"
	"\"repeatIntervalSecs\":0,\"sustainSecs\":null,"
	"\"warn\":{\"value\":0,\"message\":\"w3\"},"
	"\"critical\":{\"value\":179.26082,\"message\":\"c3\"}}\n"
	"]\n";

static void test_parse_good_alerts(void **state)
{
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged(good_body, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(log, "");
	assert_int_equal(n, 3);

	assert_string_equal(defs[0].name, "alert-1");
	assert_string_equal(defs[0].query, "test-query-1");
	assert_int_equal(defs[0].interval_ms, 15000);
	assert_int_equal(defs[0].repeat_ms, 100000);
	assert_int_equal(defs[0].sustain_ms, 0);
	assert_true(defs[0].warn_value == 100.0);
	assert_string_equal(defs[0].warn_message, "warning");
	assert_true(defs[0].crit_value == 200.0);
	assert_string_equal(defs[0].crit_message, "critical");

	assert_string_equal(defs[1].name, "disk \"root\" \xc3\xbc\xc3\xbc");
	assert_string_equal(defs[1].query, "cpu load & mem #1 \xc3\xbc+x");
	assert_int_equal(defs[1].interval_ms, 60000);
	assert_int_equal(defs[1].repeat_ms, 300000);
	assert_int_equal(defs[1].sustain_ms, 30000);
	assert_true(defs[1].warn_value == -5.5);
	assert_string_equal(defs[1].warn_message, "line1\nline2 \"q\"");
	assert_true(defs[1].crit_value == 1000.0);
	assert_string_equal(defs[1].crit_message, "");

	assert_string_equal(defs[2].name, "alert-3");
	assert_string_equal(defs[2].query, "q3");
	assert_int_equal(defs[2].interval_ms, ALERTS_MAX_SECS * 1000);
	assert_int_equal(defs[2].repeat_ms, 300000);
	assert_int_equal(defs[2].sustain_ms, 0);
	assert_true(defs[2].warn_value == 0.0);
	assert_string_equal(defs[2].warn_message, "w3");
	assert_true(defs[2].crit_value == 179.26082);
	assert_string_equal(defs[2].crit_message, "c3");

	alert_defs_free(defs, n);
	free(log);
}

/* Each bad entry sits between two good ones and must be the only one
 * skipped, with exactly one warning that contains want. */
static const struct {
	const char *entry;
	const char *want;
} bad_entries[] = {
	{"{\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is missing"},
	{"{\"name\":\"\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is empty"},
	{"{\"name\":7,\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not a string (it is a number)"},
	{"{\"name\":null,\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not a string (it is null)"},
	{"{\"name\":\"a\\tb\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name has a control character"},
	{"{\"name\":\"bad\\u007f\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name has a control character"},
	{"{\"name\":\"bad\xff\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not valid UTF-8"},
	{"{\"name\":\"bad\xc0\xaf\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not valid UTF-8"},
	{"{\"name\":\"good-a\",\"query\":\"other\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (good-a): name is a duplicate"},
	{"{\"name\":\"bad\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (bad): query is missing"},
	{"{\"name\":\"bad\",\"query\":\"\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (bad): query is empty"},
	{"{\"name\":\"bad\",\"query\":[\"q\"],\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (bad): query is not a string (it is an array)"},
	{"{\"name\":\"bad\",\"query\":\"q\"," WC "}",
	 "skipping entry 1 (bad): intervalSecs is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":\"10\"," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a number (it is a string)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":null," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a number (it is null)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":1.5," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not an integer (1.5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":0," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a positive integer (0)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":-5," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a positive integer (-5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":31622401," WC "}",
	 "skipping entry 1 (bad): intervalSecs is over 31622400"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":1e300," WC "}",
	 "skipping entry 1 (bad): intervalSecs is over 31622400"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":1e999," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not an integer (inf)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"repeatIntervalSecs\":\"100\"," WC "}",
	 "skipping entry 1 (bad): repeatIntervalSecs is not a number (it is a string)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"repeatIntervalSecs\":2.5," WC "}",
	 "skipping entry 1 (bad): repeatIntervalSecs is not an integer (2.5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"sustainSecs\":-1," WC "}",
	 "skipping entry 1 (bad): sustainSecs is negative (-1)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"sustainSecs\":0.5," WC "}",
	 "skipping entry 1 (bad): sustainSecs is not an integer (0.5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"sustainSecs\":true," WC "}",
	 "skipping entry 1 (bad): sustainSecs is not a number (it is a boolean)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,\"warn\":100,"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn is not an object (it is a number)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":\"100\",\"message\":\"w\"},"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn.value is not a number (it is a string)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"message\":\"w\"},"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn.value is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":100,\"message\":\"w\"},"
	 "\"critical\":{\"value\":-1e999,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): critical.value is not finite"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":100,\"message\":\"w\"},"
	 "\"critical\":{\"value\":200}}",
	 "skipping entry 1 (bad): critical.message is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":100,\"message\":\"w\"},"
	 "\"critical\":{\"value\":200,\"message\":false}}",
	 "skipping entry 1 (bad): critical.message is not a string (it is a boolean)"},
	{"42", "skipping entry 1: entry is not an object (it is a number)"},
	{"[]", "skipping entry 1: entry is not an object (it is an array)"},
	{"null", "skipping entry 1: entry is not an object (it is null)"},
};

static void check_one_bad(const char *entry, const char *want)
{
	static const char good_a[] =
		"{\"name\":\"good-a\",\"query\":\"qa\",\"intervalSecs\":10," WC "}";
	static const char good_b[] =
		"{\"name\":\"good-b\",\"query\":\"qb\",\"intervalSecs\":20," WC "}";
	size_t len = strlen(good_a) + strlen(entry) + strlen(good_b) + 8;
	char *body = malloc(len);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	assert_non_null(body);
	snprintf(body, len, "[%s,%s,%s]", good_a, entry, good_b);
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	if (rc != 0 || n != 2 || count_of(log, "WARN") != 1 ||
	    count_of(log, want) != 1)
		fail_msg("entry %s: rc %d, n %zu, want one warning \"%s\", "
			 "log:\n%s", entry, rc, n, want, log);
	assert_string_equal(defs[0].name, "good-a");
	assert_string_equal(defs[0].query, "qa");
	assert_string_equal(defs[1].name, "good-b");
	assert_int_equal(defs[1].interval_ms, 20000);
	assert_non_null(strstr(log, "WARN alerts: skipping entry 1"));
	alert_defs_free(defs, n);
	free(log);
	free(body);
}

static void test_parse_bad_entries(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++)
		check_one_bad(bad_entries[i].entry, bad_entries[i].want);
}

static void test_parse_long_strings(void **state)
{
	size_t big = ALERTS_MAX_MESSAGE + 64;
	char *name = malloc(big);
	char *entry = malloc(2 * big);

	(void)state;
	assert_non_null(name);
	assert_non_null(entry);

	/* ALERTS_MAX_NAME bytes is fine, one more is not. */
	memset(name, 'n', ALERTS_MAX_NAME + 1);
	name[ALERTS_MAX_NAME + 1] = '\0';
	snprintf(entry, 2 * big,
		 "{\"name\":\"%s\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
		 name);
	check_one_bad(entry, "skipping entry 1: name is longer than 256 bytes");

	/* An over-long message: the name is usable and shown. */
	memset(name, 'm', ALERTS_MAX_MESSAGE + 1);
	name[ALERTS_MAX_MESSAGE + 1] = '\0';
	snprintf(entry, 2 * big,
		 "{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
		 "\"warn\":{\"value\":1,\"message\":\"%s\"},"
		 "\"critical\":{\"value\":2,\"message\":\"c\"}}",
		 name);
	check_one_bad(entry,
		      "skipping entry 1 (bad): warn.message is longer than 4096 bytes");

	/* Exactly at the limits: kept. */
	{
		struct alert_def *defs = NULL;
		size_t n = 0;
		char err[256];
		char nm[ALERTS_MAX_NAME + 1];
		char *log;
		int rc;

		memset(nm, 'n', ALERTS_MAX_NAME);
		nm[ALERTS_MAX_NAME] = '\0';
		name[ALERTS_MAX_MESSAGE] = '\0';
		snprintf(entry, 2 * big,
			 "[{\"name\":\"%s\",\"query\":\"q\",\"intervalSecs\":10,"
			 "\"warn\":{\"value\":1,\"message\":\"%s\"},"
			 "\"critical\":{\"value\":2,\"message\":\"c\"}}]",
			 nm, name);
		log = parse_logged(entry, &defs, &n, &rc, err, sizeof(err));
		assert_int_equal(rc, 0);
		assert_int_equal(n, 1);
		assert_string_equal(log, "");
		assert_int_equal(strlen(defs[0].name), ALERTS_MAX_NAME);
		assert_int_equal(strlen(defs[0].warn_message), ALERTS_MAX_MESSAGE);
		alert_defs_free(defs, n);
		free(log);
	}
	free(entry);
	free(name);
}

static void test_parse_all_bad_at_once(void **state)
{
	size_t nbad = sizeof(bad_entries) / sizeof(bad_entries[0]);
	size_t len = 64;
	char *body;
	char *p;
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	for (size_t i = 0; i < nbad; i++)
		len += strlen(bad_entries[i].entry) + 1;
	len += 2 * 200;
	body = malloc(len);
	assert_non_null(body);
	p = body;
	p += snprintf(p, len, "[{\"name\":\"good-a\",\"query\":\"qa\","
		      "\"intervalSecs\":10," WC "}");
	for (size_t i = 0; i < nbad; i++)
		p += snprintf(p, len - (size_t)(p - body), ",%s",
			      bad_entries[i].entry);
	snprintf(p, len - (size_t)(p - body),
		 ",{\"name\":\"good-b\",\"query\":\"qb\",\"intervalSecs\":20," WC "}]");

	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 2);
	assert_string_equal(defs[0].name, "good-a");
	assert_string_equal(defs[1].name, "good-b");
	assert_int_equal(count_of(log, "WARN"), (int)nbad);
	/* The last bad one is at index nbad. */
	{
		char want[64];

		snprintf(want, sizeof(want), "skipping entry %zu:", nbad);
		assert_non_null(strstr(log, want));
	}
	alert_defs_free(defs, n);
	free(log);
	free(body);
}

static void test_parse_optional_fields(void **state)
{
	static const struct {
		const char *fields;
		int64_t repeat_ms;
		int64_t sustain_ms;
	} cases[] = {
		{"", 300000, 0},
		{"\"repeatIntervalSecs\":0,", 300000, 0},
		{"\"repeatIntervalSecs\":-1,", 300000, 0},
		{"\"repeatIntervalSecs\":-1e300,", 300000, 0},
		{"\"repeatIntervalSecs\":null,\"sustainSecs\":null,", 300000, 0},
		{"\"repeatIntervalSecs\":1,\"sustainSecs\":0,", 1000, 0},
		{"\"repeatIntervalSecs\":31622400,\"sustainSecs\":31622400,",
		 31622400000LL, 31622400000LL},
		{"\"repeatIntervalSecs\":1e2,\"sustainSecs\":45,", 100000, 45000},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[512];
		struct alert_def *defs = NULL;
		size_t n = 0;
		char err[256] = "";
		char *log;
		int rc;

		snprintf(body, sizeof(body),
			 "[{\"name\":\"a\",\"query\":\"q\",\"intervalSecs\":5,%s" WC "}]",
			 cases[i].fields);
		log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
		if (rc != 0 || n != 1)
			fail_msg("%s: rc %d n %zu log %s", body, rc, n, log);
		assert_string_equal(log, "");
		assert_int_equal(defs[0].interval_ms, 5000);
		assert_int_equal(defs[0].repeat_ms, cases[i].repeat_ms);
		assert_int_equal(defs[0].sustain_ms, cases[i].sustain_ms);
		alert_defs_free(defs, n);
		free(log);
	}
}

static void test_parse_bad_bodies(void **state)
{
	static const struct {
		const char *body;
		const char *err;
	} cases[] = {
		{"", "alerts: body is empty"},
		{"not json", "alerts: body is not JSON (starts with \"not json\")"},
		{"<html><body>502 Bad Gateway</body></html>",
		 "alerts: body is not JSON (starts with \"<html><body>502 Bad Gateway</body></html\")"},
		{"{}", "alerts: body is not a JSON array (it is an object)"},
		{"{\"alerts\":[]}", "alerts: body is not a JSON array (it is an object)"},
		{"\"[]\"", "alerts: body is not a JSON array (it is a string)"},
		{"null", "alerts: body is not a JSON array (it is null)"},
		{"17", "alerts: body is not a JSON array (it is a number)"},
		{"[{\"name\":\"a\"", "alerts: body is not JSON (starts with"},
		{"[] []", "alerts: body is not JSON (starts with"},
		{"[1,]", "alerts: body is not JSON (starts with"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct alert_def sentinel;
		struct alert_def *defs = &sentinel;
		size_t n = 99;
		char err[256] = "";
		char *log;
		int rc;

		log = parse_logged(cases[i].body, &defs, &n, &rc, err,
				   sizeof(err));
		if (rc != -1 || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("body %s: rc %d err \"%s\" want \"%s\"",
				 cases[i].body, rc, err, cases[i].err);
		assert_null(defs);
		assert_int_equal(n, 0);
		assert_string_equal(log, "");
		free(log);
	}
}

static void test_parse_empty_array(void **state)
{
	static const char *const bodies[] = {"[]", " \n[ ]\r\n\t"};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct alert_def *defs = NULL;
		size_t n = 99;
		char err[64] = "";

		assert_int_equal(alerts_parse(bodies[i], strlen(bodies[i]),
						  &defs, &n, err, sizeof(err)),
				 0);
		assert_int_equal(n, 0);
		assert_non_null(defs);
		alert_defs_free(defs, n);
	}
}

/* The parser uses only len bytes: what follows is not read. */
static void test_parse_not_nul_terminated(void **state)
{
	static const char body[] = "[]garbage";
	char *exact = malloc(2);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[64];

	(void)state;
	assert_int_equal(alerts_parse(body, 2, &defs, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	alert_defs_free(defs, n);

	/* Under ASan a read past the end of exact would be reported. */
	assert_non_null(exact);
	memcpy(exact, "[\"", 2);
	assert_int_equal(alerts_parse(exact, 2, &defs, &n, err, sizeof(err)), -1);
	free(exact);
}

static void test_parse_many(void **state)
{
	size_t count = 5000;
	size_t len = count * 256 + 16;
	char *body = malloc(len);
	char *p = body;
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[64];
	char *log;
	int rc;

	(void)state;
	assert_non_null(body);
	*p++ = '[';
	for (size_t i = 0; i < count; i++)
		p += snprintf(p, len - (size_t)(p - body),
			      "%s{\"name\":\"alert-%zu\",\"query\":\"q\","
			      "\"intervalSecs\":10," WC "}",
			      i > 0 ? "," : "", i % 4000);
	snprintf(p, len - (size_t)(p - body), "]");
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 4000);
	/* 1000 duplicates: the first ones named, the rest counted. */
	assert_int_equal(count_of(log, "name is a duplicate"), ALERTS_MAX_ENTRY_WARNINGS);
	assert_int_equal(count_of(log, "WARN"), ALERTS_MAX_ENTRY_WARNINGS + 1);
	assert_non_null(strstr(log, "alerts: more warnings not logged more=950 "
				    "entries_skipped=1000 values_clamped=0"));
	assert_string_equal(defs[3999].name, "alert-3999");
	alert_defs_free(defs, n);
	free(log);
	free(body);
}

/* A definition's strings go, the struct stays; a second clear, a NULL
 * definition and a NULL array are harmless. */
static void test_def_clear(void **state)
{
	struct alert_def def = {
		.name = strdup("alert-1"),
		.query = strdup("q"),
		.interval_ms = 15000,
		.warn_message = strdup("w"),
		.crit_message = strdup("c"),
	};
	struct alert_def *defs = calloc(2, sizeof(*defs));

	(void)state;
	alert_def_clear(&def);
	assert_null(def.name);
	assert_null(def.query);
	assert_null(def.warn_message);
	assert_null(def.crit_message);
	assert_int_equal(def.interval_ms, 15000);
	alert_def_clear(&def); /* idempotent */
	alert_def_clear(NULL);
	assert_non_null(defs);
	defs[1].name = strdup("alert-2");
	alert_defs_free(defs, 2);
	alert_defs_free(NULL, 3);
}

/* ---- /query parsing -------------------------------------------------------- */

static void test_parse_value_good(void **state)
{
	static const struct {
		const char *body;
		double value;
	} cases[] = {
		{"{\"value\": 179.26082}", 179.26082},
		{"{\"value\":0}", 0.0},
		{"{\"value\":0.0}", 0.0},
		{"{\"value\":-5}", -5.0},
		{"{\"value\":150}", 150.0},
		{"{\"value\":1e308}", 1e308},
		{" {\"target\":\"x\",\"value\":2.5}\n", 2.5},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -12345;
		char err[128] = "";

		if (alerts_parse_value(cases[i].body, strlen(cases[i].body), &v, err,
				    sizeof(err)) != 0)
			fail_msg("%s: %s", cases[i].body, err);
		assert_true(v == cases[i].value);
	}
}

static void test_parse_value_bad(void **state)
{
	static const struct {
		const char *body;
		const char *err;
	} cases[] = {
		{"<html><body>Internal error</body></html>",
		 "body is not JSON (starts with \"<html><body>Internal error</body></html>\")"},
		{"<html>\n<body>\n\n\nInternal server error, please retry later</body></html>",
		 "body is not JSON (starts with \"<html>\\n<body>\\n\\n\\nInternal server error, p\")"},
		{"", "body is empty"},
		{"   ", "body is not JSON"},
		{"{\"value\":\"1\"}", "value is not a number (it is a string)"},
		{"{\"value\":null}", "value is not a number (it is null)"},
		{"{\"value\":true}", "value is not a number (it is a boolean)"},
		{"{\"value\":[1]}", "value is not a number (it is an array)"},
		{"{}", "body has no \"value\""},
		{"{\"Value\":1}", "body has no \"value\""},
		{"[]", "body is not a JSON object (it is an array)"},
		{"1", "body is not a JSON object (it is a number)"},
		{"NaN", "body is not JSON"},
		{"{\"value\": NaN}", "body is not JSON"},
		{"{\"value\": Infinity}", "body is not JSON"},
		{"{\"value\": -Infinity}", "body is not JSON"},
		{"{\"value\": 1e999}", "value is not finite"},
		{"{\"value\": -1e999}", "value is not finite"},
		{"{\"value\": 17", "body is not JSON"},
		{"{\"value\": 17}}", "body is not JSON"},
		{"{\"value\": 0x10}", "body is not JSON"},
		{"{\"value\": 1} trailing", "body is not JSON"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = 42;
		char err[128] = "";
		int rc = alerts_parse_value(cases[i].body, strlen(cases[i].body), &v,
					 err, sizeof(err));

		if (rc != -1 || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("%s: rc %d err \"%s\" want \"%s\"", cases[i].body,
				 rc, err, cases[i].err);
		assert_true(v == 42);
	}
}

static void test_parse_value_length(void **state)
{
	static const char body[] = "{\"value\":12}345";
	double v = 0;
	char err[64];

	(void)state;
	assert_int_equal(alerts_parse_value(body, 12, &v, err, sizeof(err)), 0);
	assert_true(v == 12.0);
	/* A tiny err buffer is truncated, not overrun; NULL is allowed. */
	assert_int_equal(alerts_parse_value("x", 1, &v, err, 4), -1);
	assert_string_equal(err, "bod");
	assert_int_equal(alerts_parse_value("x", 1, &v, NULL, 0), -1);
}

/* ---- the fuzz seed corpus ---------------------------------------------------- */

/* Reads path into an exact-size buffer, so that ASan sees any read past
 * the end. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long size;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	data = malloc(size > 0 ? (size_t)size : 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len = (size_t)size;
	return data;
}

/* Every seed goes through its parser; seeds named good_* must pass. */
static void run_corpus(const char *dir, int alerts)
{
	char path[1024];
	DIR *d;
	const struct dirent *ent;
	int files = 0;

	snprintf(path, sizeof(path), "%s/tests/fuzz/%s", SOURCE_DIR, dir);
	d = opendir(path);
	assert_non_null(d);
	for (ent = readdir(d); ent != NULL; ent = readdir(d)) {
		int good = strncmp(ent->d_name, "good_", 5) == 0;
		struct capture cap;
		char err[256] = "";
		size_t len = 0;
		char *data;
		char *log;
		int rc;

		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/tests/fuzz/%s/%s", SOURCE_DIR,
			 dir, ent->d_name);
		data = read_file(path, &len);
		capture_begin(&cap);
		if (alerts) {
			struct alert_def *defs = NULL;
			size_t n = 0;

			rc = alerts_parse(data, len, &defs, &n, err, sizeof(err));
			if (good && n == 0)
				rc = -2;
			alert_defs_free(defs, n);
		} else {
			double v = 0;

			rc = alerts_parse_value(data, len, &v, err, sizeof(err));
		}
		log = capture_end(&cap);
		if (rc < -1 || (good && (rc != 0 || log[0] != '\0')))
			fail_msg("%s: rc %d err \"%s\" log %s", path, rc, err, log);
		free(log);
		free(data);
		files++;
	}
	closedir(d);
	assert_true(files >= 5);
}

static void test_corpus(void **state)
{
	(void)state;
	run_corpus("corpus_alerts", 1);
	run_corpus("corpus_query", 0);
}



/* cJSON turns \u0000 into a NUL byte, which would cut "a\u0000b" to the
 * alert "a": such a body is refused whole; an escaped backslash before
 * "u0000" is ordinary text. */
static void test_parse_nul_escape_refused(void **state)
{
	static const char bad[] =
		"[{\"name\":\"a\\u0000b\",\"query\":\"q\",\"intervalSecs\":1," WC "}]";
	static const char fine[] =
		"[{\"name\":\"a\\\\u0000b\",\"query\":\"q\",\"intervalSecs\":1," WC "}]";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";

	(void)state;
	assert_int_equal(alerts_parse(bad, strlen(bad), &defs, &n, err, sizeof(err)), -1);
	assert_null(defs);
	assert_string_equal(err, "alerts: body holds a \\u0000 escape (a NUL byte in a string)");
	assert_int_equal(alerts_parse(fine, strlen(fine), &defs, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(defs[0].name, "a\\u0000b");
	alert_defs_free(defs, n);
}

/* Counts the lines of text. */
static int lines_of(const char *text)
{
	return count_of(text, "\n");
}

/* Parses body[0..len) (it may hold NUL bytes); returns the log text. */
static char *parse_logged_len(const char *body, size_t len, struct alert_def **defs,
			      size_t *n, int *rc, char *err, size_t errlen)
{
	struct capture c;

	capture_begin(&c);
	*rc = alerts_parse(body, len, defs, n, err, errlen);
	return capture_end(&c);
}

/* A raw NUL inside a JSON string (invalid JSON) must not cut the string
 * short: "alert-x<NUL>evil" coming first would otherwise take the place of
 * the real alert-x. Other raw control bytes are refused alike, in any
 * string of the entry, keys included. */
static void test_parse_raw_control_refused(void **state)
{
	static const char body[] =
		"[{\"name\":\"alert-x\0evil\",\"query\":\"evil\",\"intervalSecs\":1," WC "},"
		"{\"name\":\"alert-y\",\"query\":\"line\nbreak\",\"intervalSecs\":1," WC "},"
		"{\"name\0junk\":\"alert-z\",\"name\":\"alert-w\",\"query\":\"q\","
		"\"intervalSecs\":1," WC "},"
		"{\"name\":\"alert-v\",\"query\":\"q\",\"intervalSecs\":1,"
		"\"warn\":{\"value\":1,\"message\":\"tab\there\"},"
		"\"critical\":{\"value\":2,\"message\":\"c\"}},"
		"{\"name\":\"alert-x\",\"query\":\"real\",\"intervalSecs\":1," WC "}]";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged_len(body, sizeof(body) - 1, &defs, &n, &rc, err, sizeof(err));
	if (rc != 0 || n != 1)
		fail_msg("rc %d n %zu err %s log %s", rc, n, err, log);
	assert_string_equal(defs[0].name, "alert-x");
	assert_string_equal(defs[0].query, "real");
	assert_int_equal(count_of(log, "WARN"), 4);
	assert_int_equal(lines_of(log), 4);
	assert_int_equal(count_of(log, "skipping entry 0: a string holds the raw control "
				       "byte 0x00 (not JSON)"), 1);
	assert_int_equal(count_of(log, "skipping entry 1: a string holds the raw control "
				       "byte 0x0a"), 1);
	assert_int_equal(count_of(log, "skipping entry 2: a string holds the raw control "
				       "byte 0x00"), 1);
	assert_int_equal(count_of(log, "skipping entry 3: a string holds the raw control "
				       "byte 0x09"), 1);
	alert_defs_free(defs, n);
	free(log);
}

/* A /query answer with a raw control byte in a string is not JSON: the
 * key "value<NUL>x" must not be read as "value". */
static void test_parse_value_raw_control(void **state)
{
	static const struct {
		const char *body;
		size_t len;
	} cases[] = {
		{"{\"value\0x\": 5, \"value\": 7}", 26},
		{"{\"value\0\": 5}", 13},
		{"{\"note\": \"a\nb\", \"value\": 5}", 27},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -1;
		char err[128] = "";

		if (alerts_parse_value(cases[i].body, cases[i].len, &v, err, sizeof(err)) != -1)
			fail_msg("case %zu: read %g", i, v);
		assert_non_null(strstr(err, "body is not JSON (a string holds the raw control byte"));
	}
}

/* Writes a /alerts body of count entries, each entry (a JSON text), into
 * a malloc'd buffer; *len gets its length. */
static char *repeated_body(const char *entry, size_t count, size_t *len)
{
	size_t elen = strlen(entry);
	char *body = malloc(count * (elen + 1) + 2);
	char *p = body;

	assert_non_null(body);
	*p++ = '[';
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, entry, elen);
		p += elen;
	}
	*p++ = ']';
	*len = (size_t)(p - body);
	return body;
}

/* Thousands of bad entries give ALERTS_MAX_ENTRY_WARNINGS lines and one that
 * counts the rest, not a line each. */
static void test_parse_warnings_summarised(void **state)
{
	size_t len = 0;
	char *body = repeated_body("42", 5000, &len);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged_len(body, len, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 0);
	assert_int_equal(lines_of(log), ALERTS_MAX_ENTRY_WARNINGS + 1);
	assert_int_equal(count_of(log, "entry is not an object"), ALERTS_MAX_ENTRY_WARNINGS);
	assert_non_null(strstr(log, "skipping entry 49: entry is not an object"));
	assert_null(strstr(log, "skipping entry 50:"));
	assert_non_null(strstr(log, "WARN alerts: more warnings not logged more=4950 "
				    "entries_skipped=5000 values_clamped=0\n"));
	alert_defs_free(defs, n);
	free(log);
	free(body);
}

/* A body with more than ALERTS_MAX_ENTRIES entries is refused whole, before
 * a single entry is taken or warned about; ALERTS_MAX_ENTRIES are fine. */
static void test_parse_too_many_entries(void **state)
{
	size_t len = 0;
	char *body = repeated_body("0", ALERTS_MAX_ENTRIES + 1, &len);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged_len(body, len, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, -1);
	assert_null(defs);
	assert_string_equal(err, "alerts: body has more than 1000000 entries");
	assert_string_equal(log, "");
	free(log);
	free(body);

	body = repeated_body("0", ALERTS_MAX_ENTRIES, &len);
	log = parse_logged_len(body, len, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 0);
	assert_int_equal(lines_of(log), ALERTS_MAX_ENTRY_WARNINGS + 1);
	alert_defs_free(defs, n);
	free(log);
	free(body);
}

/* A repeatIntervalSecs or sustainSecs over ALERTS_MAX_SECS (2^31-1 meaning
 * "never") keeps the alert with ALERTS_MAX_SECS and one warning per field;
 * an intervalSecs over it still makes the entry invalid. */
static void test_parse_huge_secs_clamped(void **state)
{
	static const char body[] =
		"[{\"name\":\"a\",\"query\":\"q\",\"intervalSecs\":5,"
		"\"repeatIntervalSecs\":2147483647," WC "},"
		"{\"name\":\"b\",\"query\":\"q\",\"intervalSecs\":5,"
		"\"repeatIntervalSecs\":1e300,\"sustainSecs\":2147483647," WC "},"
		"{\"name\":\"c\",\"query\":\"q\",\"intervalSecs\":2147483647,"
		"\"repeatIntervalSecs\":2147483647," WC "}]";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	if (rc != 0 || n != 2)
		fail_msg("rc %d n %zu log %s", rc, n, log);
	assert_string_equal(defs[0].name, "a");
	assert_int_equal(defs[0].repeat_ms, ALERTS_MAX_SECS * 1000);
	assert_int_equal(defs[0].sustain_ms, 0);
	assert_string_equal(defs[1].name, "b");
	assert_int_equal(defs[1].repeat_ms, ALERTS_MAX_SECS * 1000);
	assert_int_equal(defs[1].sustain_ms, ALERTS_MAX_SECS * 1000);
	assert_int_equal(lines_of(log), 4);
	assert_int_equal(count_of(log, "WARN alerts: keeping entry 0 (a): repeatIntervalSecs "
				       "2.14748e+09 is over 31622400, using 31622400"), 1);
	assert_int_equal(count_of(log, "WARN alerts: keeping entry 1 (b): repeatIntervalSecs "
				       "1e+300 is over 31622400, using 31622400"), 1);
	assert_int_equal(count_of(log, "WARN alerts: keeping entry 1 (b): sustainSecs "
				       "2.14748e+09 is over 31622400, using 31622400"), 1);
	assert_int_equal(count_of(log, "WARN alerts: skipping entry 2 (c): intervalSecs is "
				       "over 31622400"), 1);
	alert_defs_free(defs, n);
	free(log);
}

/* Invalid entries whose name is usable are reported, so that the engine
 * keeps those alerts instead of retiring them. */
static void test_parse_reports_skipped_names(void **state)
{
	static const char body[] =
		"[{\"name\":\"ok\",\"query\":\"q\",\"intervalSecs\":1," WC "},"
		"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":\"x\"," WC "},"
		"{\"query\":\"q\",\"intervalSecs\":1," WC "},"
		"{\"name\":\"ok\",\"query\":\"q\",\"intervalSecs\":2," WC "}]";
	struct alert_def *defs = NULL;
	char **skipped = NULL;
	size_t n = 0, nskipped = 0;
	char err[256] = "";

	(void)state;
	assert_int_equal(alerts_parse_full(body, strlen(body), &defs, &n, &skipped,
					       &nskipped, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(defs[0].name, "ok");
	/* the nameless entry cannot be kept; the duplicate is not invalid */
	assert_int_equal(nskipped, 1);
	assert_string_equal(skipped[0], "bad");
	alert_defs_free(defs, n);
	alerts_names_free(skipped, nskipped);
}

static int group_setup(void **state)
{
	(void)state;
	log_set_level(LOG_INFO);
	return 0;
}

/* What alerts_parse_report_z handed over. */
struct reported {
	size_t n, skipped, clamped;
	size_t last_index;
	char first_name[64];
	char first_why[128];
};

static void collect(const struct alerts_problem *problem, void *arg)
{
	struct reported *r = arg;

	if (r->n++ == 0) {
		snprintf(r->first_name, sizeof(r->first_name), "%s",
			 problem->name ? problem->name : "(none)");
		snprintf(r->first_why, sizeof(r->first_why), "%s", problem->why);
	}
	if (problem->skipped)
		r->skipped++;
	else
		r->clamped++;
	r->last_index = problem->index;
}

/* `alert-exec check`'s view: every problem, past the cap of the log, goes
 * to the callback, none to the log; the definitions kept are the same. */
static void test_parse_report_every_problem(void **state)
{
	size_t len = 0;
	char *body = repeated_body("42", 5000, &len);
	const char *mixed = "[{\"name\":\"a\",\"query\":\"q\",\"intervalSecs\":0," WC "},"
			    "{\"name\":\"b\",\"query\":\"q\",\"intervalSecs\":1,"
			    "\"sustainSecs\":1e10," WC "},"
			    "{\"name\":\"c\",\"query\":\"q\",\"intervalSecs\":1," WC "}]";
	struct reported r = {0};
	struct alert_def *defs = NULL;
	size_t n = 0;
	struct capture c;
	char *log;
	char err[256] = "";

	(void)state;
	capture_begin(&c);
	assert_int_equal(alerts_parse_report_z(body, len, &defs, &n, NULL, NULL, collect, &r, err,
					       sizeof(err)),
			 0);
	log = capture_end(&c);
	assert_string_equal(log, "");
	assert_int_equal(n, 0);
	assert_int_equal(r.n, 5000);
	assert_int_equal(r.skipped, 5000);
	assert_int_equal(r.last_index, 4999);
	assert_string_equal(r.first_name, "(none)");
	assert_string_equal(r.first_why, "entry is not an object (it is a number)");
	alert_defs_free(defs, n);
	free(log);
	free(body);

	memset(&r, 0, sizeof(r));
	assert_int_equal(alerts_parse_report_z(mixed, strlen(mixed), &defs, &n, NULL, NULL,
					       collect, &r, err, sizeof(err)),
			 0);
	assert_int_equal(n, 2); /* b (clamped) and c kept */
	assert_int_equal(r.skipped, 1);
	assert_int_equal(r.clamped, 1);
	assert_string_equal(r.first_name, "a");
	assert_non_null(strstr(r.first_why, "intervalSecs"));
	alert_defs_free(defs, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good_alerts),
		cmocka_unit_test(test_parse_bad_entries),
		cmocka_unit_test(test_parse_long_strings),
		cmocka_unit_test(test_parse_all_bad_at_once),
		cmocka_unit_test(test_parse_nul_escape_refused),
		cmocka_unit_test(test_parse_raw_control_refused),
		cmocka_unit_test(test_parse_value_raw_control),
		cmocka_unit_test(test_parse_warnings_summarised),
		cmocka_unit_test(test_parse_too_many_entries),
		cmocka_unit_test(test_parse_huge_secs_clamped),
		cmocka_unit_test(test_parse_reports_skipped_names),
		cmocka_unit_test(test_parse_optional_fields),
		cmocka_unit_test(test_parse_bad_bodies),
		cmocka_unit_test(test_parse_empty_array),
		cmocka_unit_test(test_parse_not_nul_terminated),
		cmocka_unit_test(test_parse_many),
		cmocka_unit_test(test_def_clear),
		cmocka_unit_test(test_parse_value_good),
		cmocka_unit_test(test_parse_value_bad),
		cmocka_unit_test(test_parse_value_length),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_parse_report_every_problem),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
