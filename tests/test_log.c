/* log: level names and log_quote, the writer of every value that comes
 * from outside (alert names, messages, targets, errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "capture.h"
#include "log.h"

static void test_parse_level(void **state)
{
	enum log_level l = LOG_INFO;

	(void)state;
	assert_int_equal(log_parse_level("critical", &l), 0);
	assert_int_equal(l, LOG_CRITICAL);
	assert_int_equal(log_parse_level("WARNING", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_parse_level("Debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_parse_level("verbose", &l), -1);
	assert_int_equal(log_parse_level("", &l), -1);
	assert_int_equal(l, LOG_DEBUG);
}

static void test_threshold(void **state)
{
	(void)state;
	log_set_level(LOG_WARN);
	assert_true(log_enabled(LOG_ERROR));
	assert_true(log_enabled(LOG_WARN));
	assert_false(log_enabled(LOG_INFO));
	log_set_level(LOG_INFO);
}

static void expect_quote(const char *in, const char *want)
{
	char buf[128];

	assert_string_equal(log_quote(buf, sizeof(buf), in), want);
}

static void test_quote_plain_and_quoted(void **state)
{
	(void)state;
	expect_quote("alert-1", "alert-1");
	expect_quote("caf\xc3\xa9", "caf\xc3\xa9");     /* UTF-8 stays as is */
	expect_quote("", "\"\"");
	expect_quote("two words", "\"two words\"");
	expect_quote("a=b", "\"a=b\"");
	expect_quote("say \"hi\"", "\"say \\\"hi\\\"\"");
	expect_quote("back\\slash", "\"back\\\\slash\"");
}

/* Control characters never reach the log raw: a name cannot forge a line
 * or drive the terminal. */
static void test_quote_escapes_controls(void **state)
{
	(void)state;
	expect_quote("x\nINFO delivered", "\"x\\nINFO delivered\"");
	expect_quote("bell\a", "\"bell\\x07\"");
	expect_quote("\x1b[31mred", "\"\\x1b[31mred\"");
	expect_quote("del\x7f", "\"del\\x7f\"");
	/* C1: U+009B (CSI) and U+0085 (NEL) */
	expect_quote("\xc2\x9b" "31m", "\"\\u009b31m\"");
	expect_quote("a\xc2\x85" "b", "\"a\\u0085b\"");
	/* U+00A0 (no-break space) is printable: left alone */
	expect_quote("a\xc2\xa0" "b", "a\xc2\xa0" "b");
	/* a lone lead byte at the end is not read past */
	expect_quote("end\xc2", "end\xc2");
}

static void test_quote_truncates(void **state)
{
	char small[8];
	char buf[16];
	char longname[64];

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_string_equal(log_quote(buf, sizeof(buf), longname), "aaaaaaaaaaaa...");
	longname[3] = ' ';
	log_quote(buf, sizeof(buf), longname);
	assert_true(strlen(buf) < sizeof(buf));
	assert_memory_equal(buf, "\"aaa a", 6);
	assert_string_equal(buf + strlen(buf) - 4, "...\"");
	/* an escape is never cut in half */
	log_quote(buf, sizeof(buf), "aaaaaaa\xc2\x9b\xc2\x9b");
	assert_string_equal(buf, "\"aaaaaaa...\"");
	assert_string_equal(log_quote(small, 4, "ab cd"), "");
	assert_ptr_equal(log_quote(small, 0, "x"), small);
}

/* The JSON form of line, parsed by cJSON: must be one valid object on
 * one line. Free with cJSON_Delete. */
static cJSON *json_of(const char *line)
{
	static char out[LOG_JSON_MAX(4096)];
	size_t len = strlen(line), n;
	cJSON *obj;

	assert_true(len <= 4096);
	n = log_json_line(out, sizeof(out), line, len);
	assert_int_equal(n, strlen(out));
	assert_null(strchr(out, '\n'));
	obj = cJSON_Parse(out);
	if (obj == NULL)
		fail_msg("not JSON: %s", out);
	assert_true(cJSON_IsObject(obj));
	return obj;
}

static void expect_member(const cJSON *obj, const char *key, const char *want)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsString(m))
		fail_msg("no string member %s", key);
	assert_string_equal(m->valuestring, want);
}

#define HEAD "2026-11-27T19:07:38.951Z INFO "

static void test_json_fields(void **state)
{
	cJSON *o;
	const cJSON *m;
	const char *order[] = {"time", "level", "msg", "kind", "alert", "attempts"};
	size_t i = 0;

	(void)state;
	o = json_of(HEAD "delivered kind=notify alert=alert-1 attempts=1");
	expect_member(o, "time", "2026-11-27T19:07:38.951Z");
	expect_member(o, "level", "INFO");
	expect_member(o, "msg", "delivered");
	expect_member(o, "kind", "notify");
	expect_member(o, "attempts", "1"); /* values are strings, numbers too */
	cJSON_ArrayForEach(m, o)
	{
		assert_true(i < 6);
		assert_string_equal(m->string, order[i++]);
	}
	assert_int_equal(i, 6);
	cJSON_Delete(o);
	/* no pairs at all; free text with a quote and '=' stays the msg */
	o = json_of(HEAD "no alert definitions: the server gave none");
	expect_member(o, "msg", "no alert definitions: the server gave none");
	assert_int_equal(cJSON_GetArraySize(o), 3);
	cJSON_Delete(o);
	o = json_of("2026-11-27T19:07:38.951Z CRITICAL database \"/x a=b\": locked what=x c=");
	expect_member(o, "level", "CRITICAL");
	expect_member(o, "msg", "database \"/x a=b\": locked");
	expect_member(o, "what", "x");
	expect_member(o, "c", "");
	cJSON_Delete(o);
	/* keys that would shadow the head's fields */
	o = json_of(HEAD "x msg=hi level=3 time=now");
	expect_member(o, "msg", "x");
	expect_member(o, "_msg", "hi");
	expect_member(o, "_level", "3");
	expect_member(o, "_time", "now");
	cJSON_Delete(o);
}

/* A value quoted by log_quote comes back as the bytes it was made of. */
static void test_json_round_trip(void **state)
{
	const char *values[] = {
		"disk \"C:\\\" full", "two\nlines", "bell\a esc\x1b[31m del\x7f",
		"C1 \xc2\x9b and \xc2\x85", "ends with \\", "", "caf\xc3\xa9 a=b",
	};
	char quoted[256], line[512];

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		cJSON *o;

		snprintf(line, sizeof(line), HEAD "query failed alert=%s error=x",
			 log_quote(quoted, sizeof(quoted), values[i]));
		o = json_of(line);
		expect_member(o, "msg", "query failed");
		expect_member(o, "alert", values[i]);
		expect_member(o, "error", "x");
		cJSON_Delete(o);
	}
}

static void test_json_invalid_bytes(void **state)
{
	cJSON *o;

	(void)state;
	/* raw controls in free text (a path in an error) and invalid UTF-8:
	 * a lone continuation, an overlong '/', a surrogate, a cut sequence */
	o = json_of(HEAD "bad\x01\x1b \x80 \xc0\xaf \xed\xa0\x80 end\xe2\x82 k=\xff");
	expect_member(o, "msg", "bad\x01\x1b \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
				"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end\xef\xbf\xbd\xef\xbf\xbd");
	expect_member(o, "k", "\xef\xbf\xbd");
	cJSON_Delete(o);
	/* a line cut by log_msg inside a quoted value */
	o = json_of(HEAD "delivered alert=\"a b c...");
	expect_member(o, "alert", "a b c...");
	cJSON_Delete(o);
}

/* The longest line, every byte a control character: the worst growth
 * fits in LOG_JSON_MAX (ASan checks the bounds). */
static void test_json_worst_case(void **state)
{
	char line[4096];
	cJSON *o;

	(void)state;
	memset(line, '\x01', sizeof(line) - 1);
	memcpy(line, HEAD, strlen(HEAD));
	line[sizeof(line) - 1] = '\0';
	o = json_of(line);
	cJSON_Delete(o);
	memset(line + strlen(HEAD), '\xff', sizeof(line) - 1 - strlen(HEAD));
	o = json_of(line);
	cJSON_Delete(o);
}

/* log_msg with --log-format json: one object per line on stderr. */
static void test_json_log_msg(void **state)
{
	struct capture c;
	char quoted[64];
	char *text;
	cJSON *o;
	enum log_format f = LOG_FORMAT_LOGFMT;

	(void)state;
	assert_int_equal(log_parse_format("json", &f), 0);
	assert_int_equal(f, LOG_FORMAT_JSON);
	assert_int_equal(log_parse_format("xml", &f), -1);
	log_set_format(LOG_FORMAT_JSON);
	capture_begin(&c);
	log_msg(LOG_WARN, "query failed alert=%s", log_quote(quoted, sizeof(quoted), "a\"b\nc"));
	log_msg(LOG_DEBUG, "not written");
	text = capture_end(&c);
	log_set_format(LOG_FORMAT_LOGFMT);
	assert_int_equal(count_of(text, "\n"), 1);
	o = cJSON_Parse(text);
	assert_non_null(o);
	expect_member(o, "level", "WARN");
	expect_member(o, "msg", "query failed");
	expect_member(o, "alert", "a\"b\nc");
	cJSON_Delete(o);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_level),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_quote_plain_and_quoted),
		cmocka_unit_test(test_quote_escapes_controls),
		cmocka_unit_test(test_quote_truncates),
		cmocka_unit_test(test_json_fields),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_invalid_bytes),
		cmocka_unit_test(test_json_worst_case),
		cmocka_unit_test(test_json_log_msg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
