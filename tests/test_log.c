/* log: level names and log_quote, the writer of every value that comes
 * from outside (alert names, messages, targets, errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_level),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_quote_plain_and_quoted),
		cmocka_unit_test(test_quote_escapes_controls),
		cmocka_unit_test(test_quote_truncates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
