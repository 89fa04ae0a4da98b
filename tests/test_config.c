/* Tests of config.c: defaults, every option, and a clear error for every
 * bad value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static int parse(struct config *cfg, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	char *a;

	argv[argc++] = "alert-exec";
	va_start(ap, errlen);
	while ((a = va_arg(ap, char *)) != NULL && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	config_defaults(cfg);
	err[0] = '\0';
	return config_parse(cfg, argc, argv, err, errlen);
}

static void test_defaults(void **state)
{
	struct config c;
	char err[256];

	(void)state;
	assert_int_equal(parse(&c, err, sizeof(err), NULL), CONFIG_OK);
	assert_string_equal(c.server, "http://localhost:9001");
	assert_string_equal(c.db_path, "./alert-exec.db");
	assert_int_equal(c.once, 0);
	assert_int_equal(c.concurrency, 4);
	assert_int_equal(c.deliverers, 1);
	assert_int_equal(c.attempts, 3);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.log_format, LOG_FORMAT_LOGFMT);
	assert_int_equal(c.refresh_ms, 60000);
	assert_int_equal(c.give_up_ms, 86400000);
	assert_int_equal(c.retention_ms, INT64_C(7) * 86400000);
	assert_int_equal(c.connect_timeout_ms, 2000);
	assert_int_equal(c.timeout_ms, 5000);
	assert_int_equal(c.sync_full, 0);
}

static void test_every_option(void **state)
{
	struct config c;
	char err[256];

	(void)state;
	assert_int_equal(parse(&c, err, sizeof(err), "--server", "http://127.0.0.1:1234", "--db",
			       "/tmp/x.db", "--once", "-c", "8", "-i", "0.5", "-r", "5", "-l",
			       "WARNING", "--refresh", "2m", "--give-up-after", "1h", "--retention",
			       "3d", "--connect-timeout", "250ms", "--timeout", "1", "--sync",
			       "full", "--deliverers", "3", NULL),
			 CONFIG_OK);
	assert_string_equal(c.server, "http://127.0.0.1:1234");
	assert_string_equal(c.db_path, "/tmp/x.db");
	assert_int_equal(c.once, 1);
	assert_int_equal(c.concurrency, 8);
	assert_int_equal(c.resolution_ms, 500);
	assert_int_equal(c.attempts, 5);
	assert_int_equal(c.log_level, LOG_WARN);
	assert_int_equal(c.refresh_ms, 120000);
	assert_int_equal(c.give_up_ms, 3600000);
	assert_int_equal(c.retention_ms, INT64_C(3) * 86400000);
	assert_int_equal(c.connect_timeout_ms, 250);
	assert_int_equal(c.timeout_ms, 1000);
	assert_int_equal(c.sync_full, 1);
	assert_int_equal(c.deliverers, 3);
	assert_int_equal(parse(&c, err, sizeof(err), "--concurrency=2", "--log=debug",
			       "--retry=1", "--log-format=json", NULL), CONFIG_OK);
	assert_int_equal(c.log_format, LOG_FORMAT_JSON);
	assert_int_equal(c.concurrency, 2);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.attempts, 1);
}

static void test_bad_values(void **state)
{
	static const struct {
		const char *opt, *value, *expect;
	} cases[] = {
		{"-c", "0", "-c/--concurrency: '0'"},
		{"-c", "-3", "-c/--concurrency: '-3'"},
		{"-c", "4x", "-c/--concurrency: '4x'"},
		{"-r", "abc", "-r/--retry: 'abc'"},
		{"-r", "0", "-r/--retry: '0'"},
		{"-l", "loud", "-l/--log: unknown level 'loud'"},
		{"-i", "soon", "-i/--interval: 'soon' is not a duration"},
		{"-i", "-1", "-i/--interval: '-1' is not a duration"},
		{"--refresh", "0", "--refresh: '0' is below the minimum"},
		{"--timeout", "5 years", "--timeout: '5 years' is not a duration"},
		{"--give-up-after", "nan", "--give-up-after: 'nan' is not a duration"},
		{"--server", "localhost:9001", "--server: 'localhost:9001' is not an http"},
		{"--sync", "sometimes", "--sync: 'sometimes' is not normal or full"},
		{"--db", "", "--db: empty path"},
		{"--log-format", "xml", "--log-format: 'xml' is not logfmt or json"},
	};
	struct config c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(&c, err, sizeof(err), cases[i].opt, cases[i].value, NULL);

		if (rc != CONFIG_USAGE || strstr(err, cases[i].expect) != err)
			fail_msg("%s %s: rc %d, err '%s', want '%s...'", cases[i].opt,
				 cases[i].value, rc, err, cases[i].expect);
	}
	assert_int_equal(parse(&c, err, sizeof(err), "--bogus", NULL), CONFIG_USAGE);
	assert_non_null(strstr(err, "unknown option --bogus"));
	assert_int_equal(parse(&c, err, sizeof(err), "-x", NULL), CONFIG_USAGE);
	assert_non_null(strstr(err, "unknown option -x"));
	assert_int_equal(parse(&c, err, sizeof(err), "-c", NULL), CONFIG_USAGE);
	assert_non_null(strstr(err, "-c: needs a value"));
	assert_int_equal(parse(&c, err, sizeof(err), "stray", NULL), CONFIG_USAGE);
	assert_non_null(strstr(err, "unexpected argument 'stray'"));
}

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		int ok;
		int64_t ms;
	} cases[] = {
		{"1", 1, 1000},    {"1.5", 1, 1500},     {"250ms", 1, 250},    {"2s", 1, 2000},
		{"3m", 1, 180000}, {"24h", 1, 86400000}, {"7d", 1, 604800000}, {"0", 1, 0},
		{"", 0, 0},        {"-1", 0, 0},         {"1x", 0, 0},         {"s", 0, 0},
		{"inf", 0, 0},     {"1e300", 0, 0},      {" 1", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;
		int rc = config_parse_duration(cases[i].text, &ms);

		if ((rc == 0) != cases[i].ok || (cases[i].ok && ms != cases[i].ms))
			fail_msg("duration '%s': rc %d ms %lld", cases[i].text, rc, (long long)ms);
	}
}

static void test_connect_timeout_not_above_timeout(void **state)
{
	struct config c;
	char err[256];

	(void)state;
	assert_int_equal(parse(&c, err, sizeof(err), "--timeout", "500ms", NULL), CONFIG_OK);
	assert_int_equal(c.connect_timeout_ms, 500);
}

/* A --server that starts well but is no URL libcurl can use is a usage
 * error at parsing, before anything touches the disk. */
static void test_bad_server_urls(void **state)
{
	static const struct {
		const char *url, *expect;
	} cases[] = {
		{"http://[::1", "--server: 'http://[::1' is not a valid URL: bad IPv6 address"},
		{"http://", "--server: 'http://' is not a valid URL: no host part in the URL"},
		{"http://host:99999", "--server: 'http://host:99999' is not a valid URL: port "},
		{"http://host:0", "--server: 'http://host:0' is not a valid URL: port 0"},
		{"http://a b", "--server: 'http://a b' is not a valid URL: bad hostname"},
		{"http://:80", "--server: 'http://:80' is not a valid URL: no host part"},
		{"ftp://x", "--server: 'ftp://x' is not an http:// or https:// URL"},
		{"HTTP//x", "--server: 'HTTP//x' is not an http:// or https:// URL"},
		{"http://h/?a=1", "--server: 'http://h/?a=1' has a query or fragment"},
		{"http://h/#top", "--server: 'http://h/#top' has a query or fragment"},
		/* The password is not repeated in the message. */
		{"http://u:secret@[::1", "--server: 'http://***@[::1' is not a valid URL"},
		{"http://u:sec/ret@h", "--server: 'http://***@h' is not a valid URL"},
	};
	struct config c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(&c, err, sizeof(err), "--server", cases[i].url, NULL);

		if (rc != CONFIG_USAGE || strstr(err, cases[i].expect) != err ||
		    strstr(err, "secret") != NULL || strstr(err, "sec/ret") != NULL)
			fail_msg("--server %s: rc %d, err '%s', want '%s...'", cases[i].url, rc,
				 err, cases[i].expect);
	}
	assert_int_equal(parse(&c, err, sizeof(err), "--server", "https://[::1]:8443/base/", NULL),
			 CONFIG_OK);
	assert_string_equal(c.server, "https://[::1]:8443/base/");
}

/* The server as logs show it: userinfo hidden, the rest as written. */
/* --engine-id: host:pid by default; printable, no spaces, 1 to 128
 * bytes. --lease: 15 s by default, at least 3 s. */
static void test_engine_id_and_lease(void **state)
{
	struct config c;
	char err[256];
	char id[140], want[32];

	(void)state;
	assert_int_equal(parse(&c, err, sizeof(err), NULL), CONFIG_OK);
	snprintf(want, sizeof(want), ":%ld", (long)getpid());
	assert_non_null(strstr(c.engine_id, want));
	assert_int_equal(c.lease_ms, 15000);
	assert_int_equal(
		parse(&c, err, sizeof(err), "--engine-id", "db-1:a", "--lease", "3s", NULL),
		CONFIG_OK);
	assert_string_equal(c.engine_id, "db-1:a");
	assert_int_equal(c.lease_ms, 3000);
	assert_int_equal(parse(&c, err, sizeof(err), "--lease", "2999ms", NULL), CONFIG_USAGE);
	assert_non_null(strstr(err, "--lease"));
	assert_int_equal(parse(&c, err, sizeof(err), "--engine-id", "a b", NULL), CONFIG_USAGE);
	assert_non_null(strstr(err, "--engine-id"));
	assert_int_equal(parse(&c, err, sizeof(err), "--engine-id", "", NULL), CONFIG_USAGE);
	assert_int_equal(parse(&c, err, sizeof(err), "--engine-id", "a\x01", NULL), CONFIG_USAGE);
	memset(id, 'x', 128);
	id[128] = '\0';
	assert_int_equal(parse(&c, err, sizeof(err), "--engine-id", id, NULL), CONFIG_OK);
	id[128] = 'x';
	id[129] = '\0';
	assert_int_equal(parse(&c, err, sizeof(err), "--engine-id", id, NULL), CONFIG_USAGE);
}

static void test_server_redacted(void **state)
{
	static const struct {
		const char *url, *shown;
	} cases[] = {
		{"http://user:pass@host:9001", "http://***@host:9001"},
		{"https://token@host/base", "https://***@host/base"},
		{"http://u:p%40ss@10.0.0.1:80/a@b", "http://***@10.0.0.1:80/a@b"},
		{"http://:pw@host", "http://***@host"},
		{"http://host:9001/p@x", "http://host:9001/p@x"},
		{"http://127.0.0.1:9001", "http://127.0.0.1:9001"},
	};
	struct config c;
	char err[256];

	(void)state;
	assert_int_equal(parse(&c, err, sizeof(err), NULL), CONFIG_OK);
	assert_string_equal(c.server_redacted, "http://localhost:9001");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(&c, err, sizeof(err), "--server", cases[i].url, NULL) != CONFIG_OK)
			fail_msg("--server %s: %s", cases[i].url, err);
		assert_string_equal(c.server, cases[i].url);
		assert_string_equal(c.server_redacted, cases[i].shown);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_option),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_connect_timeout_not_above_timeout),
		cmocka_unit_test(test_bad_server_urls),
		cmocka_unit_test(test_engine_id_and_lease),
		cmocka_unit_test(test_server_redacted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
