/* Tests of the alerts-server emulator: its modules directly (parsing,
 * values, faults, options, validator) and the real binary over HTTP. */
#include "alerts.h"
#include "buf.h"
#include "cycle.h"
#include "faults.h"
#include "file.h"
#include "options.h"
#include "timeline.h"
#include "validator.h"
#include "values.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char tmpdir[256];

/* Emulators started and not yet reaped, killed at the end should a test
 * fail half-way. */
static pid_t live[64];
static size_t nlive;

static void live_add(pid_t pid)
{
	if (nlive < sizeof(live) / sizeof(live[0]))
		live[nlive++] = pid;
}

static void live_remove(pid_t pid)
{
	size_t i;

	for (i = 0; i < nlive; i++) {
		if (live[i] == pid) {
			live[i] = live[--nlive];
			return;
		}
	}
}

static void live_kill_all(void)
{
	while (nlive > 0) {
		pid_t pid = live[--nlive];

		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* ---- helpers ---------------------------------------------------------- */

static void path_in_tmp(char *out, size_t n, const char *name)
{
	int r = snprintf(out, n, "%s/%s", tmpdir, name);

	assert_true(r > 0 && (size_t)r < n);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	char err[256];

	if (file_read(path, &data, &len, err, sizeof(err)) != 0)
		return NULL;
	return data;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static double now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_timeline(struct timeline **t, const char *text, double cycle,
			  char *err, size_t errlen)
{
	return timeline_parse(t, "t.json", text, strlen(text), cycle, err,
			      errlen);
}

/* ---- timeline --------------------------------------------------------- */

static void test_timeline_values(void **state)
{
	struct timeline *t = NULL;
	char err[256];
	double v = -1;

	(void)state;
	assert_int_equal(parse_timeline(&t,
		"{\"a\": [[10, 1.5], [20, 250], [30, 0]], \"b\": [[0, 7]]}",
		0, err, sizeof(err)), 0);
	assert_int_equal(timeline_count(t), 2);
	/* Before the first step: the first value. */
	assert_int_equal(timeline_value(t, "a", 0, &v), 1);
	assert_true(v == 1.5);
	assert_int_equal(timeline_value(t, "a", 9.999, &v), 1);
	assert_true(v == 1.5);
	/* Exactly at a step: that step's value. */
	timeline_value(t, "a", 20, &v);
	assert_true(v == 250);
	timeline_value(t, "a", 19.999, &v);
	assert_true(v == 1.5);
	timeline_value(t, "a", 30, &v);
	assert_true(v == 0);
	/* After the last step the last value holds (no cycle). */
	timeline_value(t, "a", 1e6, &v);
	assert_true(v == 0);
	timeline_value(t, "b", 5, &v);
	assert_true(v == 7);
	assert_int_equal(timeline_value(t, "c", 5, &v), 0);
	assert_int_equal(timeline_value(NULL, "a", 5, &v), 0);
	timeline_free(t);
}

static void test_timeline_cycle(void **state)
{
	struct timeline *t = NULL;
	char err[256];
	double v = -1;

	(void)state;
	assert_int_equal(parse_timeline(&t,
		"{\"a\": [[0, 50], [10, 150], [20, 250]]}", 30, err,
		sizeof(err)), 0);
	timeline_value(t, "a", 5, &v);
	assert_true(v == 50);
	timeline_value(t, "a", 25, &v);
	assert_true(v == 250);
	timeline_value(t, "a", 30, &v); /* wraps to 0 */
	assert_true(v == 50);
	timeline_value(t, "a", 40, &v); /* 10 into the second round */
	assert_true(v == 150);
	timeline_value(t, "a", 89.5, &v);
	assert_true(v == 250);
	timeline_value(t, "a", 3000 + 12, &v);
	assert_true(v == 150);
	timeline_free(t);
}

static void expect_timeline_error(const char *text, double cycle,
				  const char *message)
{
	struct timeline *t = NULL;
	char err[256] = "";

	assert_int_equal(parse_timeline(&t, text, cycle, err, sizeof(err)),
			 FILE_ERR_CONTENT);
	assert_null(t);
	if (strstr(err, message) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, message);
}

static void test_timeline_bad(void **state)
{
	struct timeline *t = NULL;
	char err[256] = "";
	char path[300];

	(void)state;
	expect_timeline_error("{\"x\": [[0, 1], [5, \"a\"]]}", 0,
			      "timeline t.json: target \"x\": step 2: value is "
			      "not a number");
	expect_timeline_error("{\"x\": [[0, 1]", 0, "timeline t.json: not valid JSON");
	expect_timeline_error("[[0, 1]]", 0, "timeline t.json: not a JSON object");
	expect_timeline_error("{\"x\": 5}", 0, "target \"x\": not an array");
	expect_timeline_error("{\"x\": []}", 0, "target \"x\": no steps");
	expect_timeline_error("{\"x\": [[0, 1, 2]]}", 0,
			      "target \"x\": step 1: not a [seconds, value] pair");
	expect_timeline_error("{\"x\": [[\"0\", 1]]}", 0,
			      "step 1: seconds is not a number");
	expect_timeline_error("{\"x\": [[-1, 1]]}", 0, "step 1: seconds is negative");
	expect_timeline_error("{\"x\": [[5, 1], [5, 2]]}", 0,
			      "step 2: seconds 5 not after step 1 (5)");
	expect_timeline_error("{\"x\": [[5, 1], [40, 2]]}", 30,
			      "step 2: seconds 40 not before the cycle length 30");
	expect_timeline_error("{\"x\": [[0, 1]], \"x\": [[0, 2]]}", 0,
			      "target \"x\": duplicate target");

	path_in_tmp(path, sizeof(path), "no-such-timeline.json");
	assert_int_equal(timeline_load(&t, path, 0, err, sizeof(err)),
			 FILE_ERR_READ);
	assert_non_null(strstr(err, "cannot read"));
	assert_non_null(strstr(err, "no-such-timeline.json"));
}

/* ---- alerts ----------------------------------------------------------- */

static const char alerts_file[] =
	"[ {\"name\":\"a1\",\"query\":\"q1\",\"intervalSecs\":10,"
	"\"repeatIntervalSecs\":60,\"sustainSecs\":0,"
	"\"warn\":{\"value\":100,\"message\":\"w\"},"
	"\"critical\":{\"value\":200,\"message\":\"c\"}},\n"
	"  {\"name\":\"bad\",\"query\":\"q2\",\"intervalSecs\":\"10\","
	"\"warn\":{\"value\":1,\"message\":\"w\"},"
	"\"critical\":{\"value\":2,\"message\":\"c\"}},\n"
	"  {\"name\":\"a2\",\"query\":\"q1\",\"intervalSecs\":5,"
	"\"warn\":{\"value\":10.5,\"message\":\"w2\"},"
	"\"critical\":{\"value\":20,\"message\":\"c2\"}},\n"
	"  {\"name\":\"a1\",\"query\":\"q9\",\"intervalSecs\":5,"
	"\"warn\":{\"value\":1,\"message\":\"w\"},"
	"\"critical\":{\"value\":2,\"message\":\"c\"}},\n"
	"  42,\n"
	"  {\"name\":\"a3\",\"query\":\"q3\",\"intervalSecs\":5,"
	"\"repeatIntervalSecs\":-1,\"sustainSecs\":30,"
	"\"warn\":{\"value\":1,\"message\":\"w\"},"
	"\"critical\":{\"value\":2}} ]\n";

static void test_alerts_file(void **state)
{
	struct alerts *a = NULL;
	struct buf warnings;
	char err[256];
	int i;

	(void)state;
	buf_init(&warnings);
	assert_int_equal(alerts_parse(&a, "a.json", alerts_file,
				      strlen(alerts_file), &warnings, err,
				      sizeof(err)), 0);
	/* Served byte for byte. */
	assert_int_equal(a->body_len, strlen(alerts_file));
	assert_memory_equal(a->body, alerts_file, a->body_len);
	/* Understood: a1 and a2; bad, duplicate a1, 42 and a3 ignored. */
	assert_int_equal(a->count, 2);
	assert_non_null(warnings.data);
	assert_non_null(strstr(warnings.data, "alerts a.json: entry 2 ignored: "
				"intervalSecs is not a number"));
	assert_non_null(strstr(warnings.data,
				"entry 4 ignored: duplicate name \"a1\""));
	assert_non_null(strstr(warnings.data, "entry 5 ignored: not an object"));
	assert_non_null(strstr(warnings.data,
				"entry 6 ignored: critical.message is missing"));
	i = alerts_by_name(a, "a2");
	assert_int_equal(i, 1);
	assert_int_equal(a->items[i].interval_secs, 5);
	assert_int_equal(a->items[i].repeat_secs, 300); /* missing: 300 */
	assert_int_equal(a->items[i].sustain_secs, 0);
	assert_true(a->items[i].warn_value == 10.5);
	assert_int_equal(alerts_by_name(a, "bad"), -1);
	/* Both alerts query q1, in file order. */
	i = alerts_by_query(a, "q1");
	assert_int_equal(i, 0);
	assert_int_equal(a->items[i].next_same_query, 1);
	assert_int_equal(a->items[1].next_same_query, -1);
	assert_int_equal(alerts_by_query(a, "q9"), -1);
	assert_int_equal(alerts_level(&a->items[0], 100), LEVEL_PASS);
	assert_int_equal(alerts_level(&a->items[0], 100.001), LEVEL_WARN);
	assert_int_equal(alerts_level(&a->items[0], 200), LEVEL_WARN);
	assert_int_equal(alerts_level(&a->items[0], 200.5), LEVEL_CRITICAL);
	assert_int_equal(alerts_level(&a->items[0], 0), LEVEL_PASS);
	alerts_free(a);
	buf_free(&warnings);
}

static void test_alerts_file_bad(void **state)
{
	struct alerts *a = NULL;
	char err[256] = "";
	char path[300];

	(void)state;
	assert_int_equal(alerts_parse(&a, "a.json", "{\"name\":1}", 10, NULL,
				      err, sizeof(err)), FILE_ERR_CONTENT);
	assert_string_equal(err, "alerts a.json: not a JSON array");
	assert_int_equal(alerts_parse(&a, "a.json", "[{", 2, NULL, err,
				      sizeof(err)), FILE_ERR_CONTENT);
	assert_string_equal(err, "alerts a.json: not valid JSON");
	assert_null(a);
	path_in_tmp(path, sizeof(path), "no-such-alerts.json");
	assert_int_equal(alerts_load(&a, path, NULL, err, sizeof(err)),
			 FILE_ERR_READ);
	assert_non_null(strstr(err, "cannot read"));
	/* An empty array is valid: nothing to understand. */
	assert_int_equal(alerts_parse(&a, "a.json", "[]", 2, NULL, err,
				      sizeof(err)), 0);
	assert_int_equal(a->count, 0);
	alerts_free(a);
}

static void test_alerts_profiles(void **state)
{
	struct alerts *a = NULL;
	cJSON *root;
	const cJSON *e;
	char err[256];

	(void)state;
	assert_int_equal(alerts_profile(&a, "v2", 3, err, sizeof(err)), 0);
	root = cJSON_ParseWithLength(a->body, a->body_len);
	assert_non_null(root);
	assert_int_equal(cJSON_GetArraySize(root), 3);
	e = cJSON_GetArrayItem(root, 2);
	assert_string_equal(cJSON_GetObjectItem(e, "name")->valuestring, "alert-3");
	assert_string_equal(cJSON_GetObjectItem(e, "query")->valuestring,
			    "test-query-3");
	assert_int_equal(cJSON_GetObjectItem(e, "intervalSecs")->valueint, 15);
	assert_int_equal(cJSON_GetObjectItem(e, "repeatIntervalSecs")->valueint,
			 100);
	assert_int_equal(cJSON_GetObjectItem(e, "sustainSecs")->valueint, 0);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "warn"),
						"message")->valuestring,
			    "warning");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "critical"),
					     "value")->valueint, 200);
	cJSON_Delete(root);
	alerts_free(a);

	assert_int_equal(alerts_profile(&a, "latest", 2, err, sizeof(err)), 0);
	assert_int_equal(a->items[1].interval_secs, 30);
	assert_int_equal(a->items[1].repeat_secs, 300);
	assert_string_equal(a->items[1].warn_message, "alert-2-warning");
	assert_string_equal(a->items[1].critical_message, "alert-2-critical");
	assert_non_null(strstr(a->body, "\"message\":\"alert-2-critical\""));
	alerts_free(a);

	/* 100000 alerts: built once, a few MB, every name findable. */
	assert_int_equal(alerts_profile(&a, "v2", 100000, err, sizeof(err)), 0);
	assert_true(a->body_len > 1000000);
	assert_int_equal(alerts_by_name(a, "alert-100000"), 99999);
	assert_int_equal(alerts_by_query(a, "test-query-77777"), 77776);
	alerts_free(a);

	assert_int_equal(alerts_profile(&a, "v3", 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown profile \"v3\""));
	assert_int_equal(alerts_profile(&a, "v2", 0, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "count out of range"));
}

/* ---- default cycle and values ----------------------------------------- */

static enum level v2_level(double v)
{
	return v > 200 ? LEVEL_CRITICAL : v > 100 ? LEVEL_WARN : LEVEL_PASS;
}

static void check_cycle(uint64_t seed, const char *target)
{
	int seen[3] = { 0, 0, 0 };
	int pass_to_critical = 0, critical_to_warn = 0;
	double dwell_start = 0, max_dwell[3] = { 0, 0, 0 };
	enum level prev = v2_level(cycle_value(seed, target, 0));
	double t;

	/* Two cycles sampled every 100 ms. */
	for (t = 0.1; t < 2 * CYCLE_SECS; t += 0.1) {
		double v = cycle_value(seed, target, t);
		enum level l = v2_level(v);

		assert_true(v != 100 && v != 200);
		assert_true(fabs(v - 100) > 5 && fabs(v - 200) > 5);
		seen[l] = 1;
		if (l != prev) {
			if (t - dwell_start > max_dwell[prev])
				max_dwell[prev] = t - dwell_start;
			pass_to_critical |= prev == LEVEL_PASS &&
					    l == LEVEL_CRITICAL;
			critical_to_warn |= prev == LEVEL_CRITICAL &&
					    l == LEVEL_WARN;
			dwell_start = t;
			prev = l;
		}
	}
	assert_true(seen[LEVEL_PASS] && seen[LEVEL_WARN] &&
		    seen[LEVEL_CRITICAL]);
	assert_true(pass_to_critical);
	assert_true(critical_to_warn);
	assert_true(max_dwell[LEVEL_WARN] > 100);
	assert_true(max_dwell[LEVEL_CRITICAL] > 100);
	/* Deterministic. */
	assert_true(cycle_value(seed, target, 123.4) ==
		    cycle_value(seed, target, 123.4));
}

static void test_cycle(void **state)
{
	(void)state;
	check_cycle(1, "test-query-1");
	check_cycle(1, "test-query-2");
	check_cycle(1, "test-query-9999");
	check_cycle(42, "test-query-1");
	check_cycle(7, "a target with spaces");
	/* Phases differ between targets and seeds. */
	assert_true(cycle_phase(1, "test-query-1") !=
		    cycle_phase(1, "test-query-2"));
	assert_true(cycle_phase(1, "test-query-1") !=
		    cycle_phase(2, "test-query-1"));
}

static void test_values(void **state)
{
	struct alerts *a = NULL;
	struct timeline *t = NULL;
	struct values vals;
	char err[256];
	double v = 0;

	(void)state;
	assert_int_equal(alerts_profile(&a, "v2", 2, err, sizeof(err)), 0);
	assert_int_equal(parse_timeline(&t,
		"{\"test-query-1\": [[0, 150]], \"free\": [[0, 3]]}", 0, err,
		sizeof(err)), 0);
	vals.alerts = a;
	vals.timeline = t;
	vals.seed = 1;
	assert_int_equal(values_at(&vals, "test-query-1", 10, &v), 1);
	assert_true(v == 150);
	assert_int_equal(values_at(&vals, "free", 10, &v), 1);
	assert_true(v == 3);
	assert_int_equal(values_at(&vals, "test-query-2", 10, &v), 1);
	assert_true(v == cycle_value(1, "test-query-2", 10));
	assert_int_equal(values_at(&vals, "test-query-3", 10, &v), 0);
	vals.timeline = NULL;
	assert_int_equal(values_at(&vals, "test-query-1", 10, &v), 1);
	assert_true(v == cycle_value(1, "test-query-1", 10));
	timeline_free(t);
	alerts_free(a);
}

/* ---- faults and options ----------------------------------------------- */

static void test_faults(void **state)
{
	struct faults f;
	char err[256];
	double rate = -1;
	int fails = 0, i;

	(void)state;
	faults_init(&f, 1);
	assert_int_equal(faults_parse_rate("0.25", &rate, err, sizeof(err)), 0);
	assert_true(rate == 0.25);
	assert_int_equal(faults_parse_rate("1.5", &rate, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad fail rate \"1.5\""));
	assert_int_equal(faults_parse_rate("x", &rate, err, sizeof(err)), -1);
	assert_int_equal(faults_add_down(&f, "5:7.5", err, sizeof(err)), 0);
	assert_int_equal(faults_add_down(&f, "7:5", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad --down \"7:5\""));
	assert_int_equal(faults_add_down(&f, "7", err, sizeof(err)), -1);
	assert_int_equal(faults_down(&f, 4.99), 0);
	assert_int_equal(faults_down(&f, 5), 1);
	assert_int_equal(faults_down(&f, 7.49), 1);
	assert_int_equal(faults_down(&f, 7.5), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(faults_add_down(&f, "100:200", err, sizeof(err)), 0);

	f.fail_rate[EP_QUERY] = 0.2;
	for (i = 0; i < 10000; i++)
		fails += faults_fail(&f, EP_QUERY);
	assert_true(fails > 1800 && fails < 2200);
	assert_int_equal(faults_fail(&f, EP_ALERTS), 0);

	/* Rejections: their own rate and draws, 0 and 1 exact. */
	assert_int_equal(faults_reject(&f, EP_NOTIFY), 0);
	f.reject_rate[EP_NOTIFY] = 1;
	for (i = 0; i < 100; i++)
		assert_int_equal(faults_reject(&f, EP_NOTIFY), 1);
	assert_int_equal(faults_reject(&f, EP_RESOLVE), 0);
	f.reject_rate[EP_RESOLVE] = 0.5;
	fails = 0;
	for (i = 0; i < 10000; i++)
		fails += faults_reject(&f, EP_RESOLVE);
	assert_true(fails > 4700 && fails < 5300);
}

static int parse_args(struct options *o, const char *const *args, char *err,
		      size_t errlen)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"alerts-emulator";
	for (; *args != NULL; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return options_parse(o, argc, argv, err, errlen);
}

static void test_options(void **state)
{
	struct options o;
	char err[256];
	const char *good[] = { "--port", "0", "--profile=latest", "--count",
			       "5", "--fail-rate", "0.1", "--fail-rate-query",
			       "0.5", "--down", "1:2", "--down=3:4",
			       "--validate", "--seed", "9", NULL };
	const char *unknown[] = { "--bogus", NULL };
	const char *noval[] = { "--port", NULL };
	const char *badport[] = { "--port", "70000", NULL };
	const char *conflict[] = { "--alerts", "a.json", "--count", "5", NULL };
	const char *cycle[] = { "--cycle", "30", NULL };
	const char *reject[] = { "--reject-rate-notify", "1",
				 "--reject-rate-resolve=0.25", "--request-log",
				 "r.jsonl", NULL };
	const char *badreject[] = { "--reject-rate-notify", "2", NULL };

	(void)state;
	assert_int_equal(parse_args(&o, reject, err, sizeof(err)), 0);
	assert_true(o.faults.reject_rate[EP_NOTIFY] == 1);
	assert_true(o.faults.reject_rate[EP_RESOLVE] == 0.25);
	assert_true(o.faults.reject_rate[EP_QUERY] == 0);
	assert_true(o.faults.fail_rate[EP_NOTIFY] == 0);
	assert_string_equal(o.request_log_path, "r.jsonl");
	assert_int_equal(faults_latency_ms(&o.faults, EP_QUERY), 0);
	{
		const char *lat[] = { "--latency-ms", "10",
				      "--query-latency-ms", "300", NULL };

		assert_int_equal(parse_args(&o, lat, err, sizeof(err)), 0);
		assert_int_equal(faults_latency_ms(&o.faults, EP_QUERY), 300);
		assert_int_equal(faults_latency_ms(&o.faults, EP_ALERTS), 10);
		assert_int_equal(faults_max_latency_ms(&o.faults), 300);
	}
	assert_int_equal(parse_args(&o, badreject, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad fail rate \"2\""));
	assert_int_equal(parse_args(&o, good, err, sizeof(err)), 0);
	assert_int_equal(o.port, 0);
	assert_string_equal(o.profile, "latest");
	assert_int_equal(o.count, 5);
	assert_int_equal(o.validate, 1);
	assert_true(o.faults.fail_rate[EP_ALERTS] == 0.1);
	assert_true(o.faults.fail_rate[EP_QUERY] == 0.5);
	assert_true(o.faults.fail_rate[EP_STATS] == 0);
	assert_int_equal(o.faults.down_count, 2);
	assert_true(o.faults.seed == 9);
	assert_int_equal(parse_args(&o, unknown, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown option --bogus");
	assert_int_equal(parse_args(&o, noval, err, sizeof(err)), -1);
	assert_string_equal(err, "--port needs a value");
	assert_int_equal(parse_args(&o, badport, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad --port \"70000\""));
	assert_int_equal(parse_args(&o, conflict, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--alerts conflicts with --count"));
	assert_int_equal(parse_args(&o, cycle, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--cycle needs --timeline"));
}

/* ---- validator -------------------------------------------------------- */

/* A v2 profile (interval 15 s, repeat 100 s, T = 17 s) validated into a
 * memory stream. */
struct vfix {
	struct alerts *alerts;
	struct validator *v;
	FILE *out;
	char *text;
	size_t len;
};

static int vfix_setup(void **state)
{
	struct vfix *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL || alerts_profile(&f->alerts, "v2", 3, err, sizeof(err)))
		return -1;
	f->out = open_memstream(&f->text, &f->len);
	if (f->out == NULL)
		return -1;
	f->v = validator_new(f->alerts, f->out);
	if (f->v == NULL)
		return -1;
	*state = f;
	return 0;
}

static int vfix_teardown(void **state)
{
	struct vfix *f = *state;

	validator_free(f->v);
	fclose(f->out);
	free(f->text);
	alerts_free(f->alerts);
	free(f);
	return 0;
}

static const char *vfix_output(struct vfix *f)
{
	fflush(f->out);
	return f->text != NULL ? f->text : "";
}

static void expect_error(struct vfix *f, const char *what)
{
	const char *out = vfix_output(f);

	if (validator_errors(f->v) == 0 || strstr(out, what) == NULL)
		fail_msg("expected an ERROR with \"%s\", output:\n%s", what, out);
	assert_non_null(strstr(out, "ERROR alert=alert-1: "));
}

static void expect_output(struct vfix *f, const char *what)
{
	const char *out = vfix_output(f);

	if (strstr(out, what) == NULL)
		fail_msg("expected \"%s\" in the output:\n%s", what, out);
}

static void expect_no_error(struct vfix *f)
{
	if (validator_errors(f->v) != 0)
		fail_msg("unexpected errors:\n%s", vfix_output(f));
}

#define S(x) ((int64_t)((x) * 1000))

/* Serves test-query-1 every 15 s from `from` to `to` (inclusive) with v. */
static void serve_span(struct vfix *f, double from, double to, double v)
{
	double t;

	for (t = from; t <= to + 1e-9; t += 15)
		validator_served(f->v, "test-query-1", v, S(t));
}

static void test_validator_correct(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 50);                   /* PASS */
	serve_span(f, 15, 15, 150);                /* PASS -> WARN */
	validator_notify(f->v, "alert-1", "warning", S(15.4));
	serve_span(f, 30, 105, 150);               /* stays WARN */
	serve_span(f, 120, 120, 160);              /* 104.6 s since notify */
	validator_notify(f->v, "alert-1", "warning", S(120.3)); /* repeat */
	serve_span(f, 135, 135, 250);              /* WARN -> CRITICAL */
	validator_notify(f->v, "alert-1", "critical", S(135.2));
	serve_span(f, 150, 150, 150);              /* CRITICAL -> WARN */
	validator_notify(f->v, "alert-1", "warning", S(150.1));
	serve_span(f, 165, 165, 20);               /* WARN -> PASS */
	validator_resolve(f->v, "alert-1", S(165.3));
	serve_span(f, 180, 180, 300);              /* PASS -> CRITICAL */
	validator_notify(f->v, "alert-1", "critical", S(181));
	validator_tick(f->v, S(400));
	/* A repeat sent a little before the validator expected one is fine. */
	serve_span(f, 195, 270, 300);
	validator_notify(f->v, "alert-1", "critical", S(281.5));
	serve_span(f, 285, 285, 300);
	serve_span(f, 300, 300, 0);
	validator_resolve(f->v, "alert-1", S(300.2));
	validator_tick(f->v, S(1000));
	expect_no_error(f);
	validator_summary(f->v, S(1000));
	expect_output(f, "SUMMARY alert=alert-1 notify expected 5 received 6, "
			 "resolve expected 2 received 2, in flight 0, errors 0");
	expect_output(f, "SUMMARY total");
}

static void test_validator_missing_notify(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 15, 150);
	validator_tick(f->v, S(31)); /* deadline 0 + 17 s passed */
	expect_error(f, "missing notify: expected change notify \"warning\"");
	/* A late arrival consumes the expectation without a second error. */
	validator_notify(f->v, "alert-1", "warning", S(32));
	assert_int_equal(validator_errors(f->v), 1);
}

static void test_validator_wrong_message(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 150);
	validator_notify(f->v, "alert-1", "critical", S(1));
	expect_error(f, "wrong message: expected notify \"warning\"");
}

static void test_validator_duplicate(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 250);
	validator_notify(f->v, "alert-1", "critical", S(1));
	validator_notify(f->v, "alert-1", "critical", S(1.2));
	expect_error(f, "duplicate notify \"critical\"");
}

static void test_validator_early_repeat(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 45, 150);
	validator_notify(f->v, "alert-1", "warning", S(0.5));
	validator_notify(f->v, "alert-1", "warning", S(50));
	expect_error(f, "early repeat notify \"warning\" at 50.000 s, 49.500 s "
			"after the previous one");
}

static void test_validator_late_repeat(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 150);
	validator_notify(f->v, "alert-1", "warning", S(0.5));
	serve_span(f, 15, 150, 150);  /* repeat expected from the 105 s query */
	/* Due 0.5 + repeat 100 + interval 15 + T 17 = 132.5 s. */
	validator_tick(f->v, S(132.4));
	expect_no_error(f);
	validator_tick(f->v, S(132.6));
	expect_error(f, "late repeat notify: expected repeat notify \"warning\"");
}

static void test_validator_outage(void **state)
{
	struct vfix *f = *state;
	struct validator *v;

	/* A fresh validator: outages are declared before anything is served. */
	v = validator_new(f->alerts, f->out);
	assert_int_equal(validator_outage(v, S(20), S(30)), 0);
	validator_served(v, "test-query-1", 150, S(15));
	/* Due 32 s overlaps the outage: moved to 30 + max(T 17, 10) = 47 s. */
	validator_tick(v, S(46));
	assert_int_equal(validator_errors(v), 0);
	validator_notify(v, "alert-1", "warning", S(45));
	validator_served(v, "test-query-1", 250, S(100));
	validator_tick(v, S(118)); /* unaffected by the outage: 117 s */
	assert_int_equal(validator_errors(v), 1);
	validator_free(v);
	expect_output(f, "missing notify: expected change notify \"critical\"");
}

static void test_validator_missing_resolve(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 150);
	validator_notify(f->v, "alert-1", "warning", S(0.5));
	serve_span(f, 15, 15, 50);
	validator_tick(f->v, S(33));
	expect_error(f, "missing resolve: expected resolve (PASS served at "
			"15.000 s)");
}

static void test_validator_unexpected_resolve(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 30, 50);
	validator_resolve(f->v, "alert-1", S(31));
	expect_error(f, "unexpected resolve at 31.000 s: the served level never "
			"left PASS");
}

static void test_validator_duplicate_resolve(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 150);
	validator_notify(f->v, "alert-1", "warning", S(0.5));
	serve_span(f, 15, 15, 50);
	validator_resolve(f->v, "alert-1", S(15.5));
	expect_no_error(f);
	validator_resolve(f->v, "alert-1", S(16));
	expect_error(f, "duplicate resolve");
}

static void test_validator_notify_while_pass(void **state)
{
	struct vfix *f = *state;

	serve_span(f, 0, 0, 50);
	validator_notify(f->v, "alert-1", "warning", S(1));
	expect_error(f, "unexpected notify \"warning\" at 1.000 s: served level "
			"is PASS");
}

static void test_validator_unknown_and_in_flight(void **state)
{
	struct vfix *f = *state;

	validator_notify(f->v, "nope", "warning", S(1));
	assert_int_equal(validator_errors(f->v), 1);
	assert_non_null(strstr(vfix_output(f), "ERROR alert=nope: unknown alert"));
	/* An expectation whose deadline has not passed is in flight. */
	validator_served(f->v, "test-query-2", 250, S(10));
	validator_tick(f->v, S(20));
	validator_summary(f->v, S(20));
	assert_int_equal(validator_errors(f->v), 1);
	expect_output(f, "SUMMARY alert=alert-2 notify expected 1 received 0, "
			 "resolve expected 0 received 0, in flight 1, errors 0");
	expect_output(f, "unknown-alert calls 1, errors 1");
}

static void test_validator_shared_target_and_sustain(void **state)
{
	static const char text[] =
		"[{\"name\":\"x\",\"query\":\"q\",\"intervalSecs\":10,"
		"\"warn\":{\"value\":1,\"message\":\"xw\"},"
		"\"critical\":{\"value\":2,\"message\":\"xc\"}},"
		"{\"name\":\"y\",\"query\":\"q\",\"intervalSecs\":10,"
		"\"warn\":{\"value\":1,\"message\":\"yw\"},"
		"\"critical\":{\"value\":2,\"message\":\"yc\"}},"
		"{\"name\":\"z\",\"query\":\"q\",\"intervalSecs\":10,"
		"\"sustainSecs\":20,"
		"\"warn\":{\"value\":1,\"message\":\"zw\"},"
		"\"critical\":{\"value\":2,\"message\":\"zc\"}}]";
	struct alerts *a = NULL;
	struct validator *v;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	char err[256];

	(void)state;
	assert_int_equal(alerts_parse(&a, "s.json", text, strlen(text), NULL,
				      err, sizeof(err)), 0);
	v = validator_new(a, f);
	validator_served(v, "q", 1.5, S(0));
	validator_notify(v, "x", "xw", S(1));
	validator_tick(v, S(100));
	/* y was served the same value and never notified; z is not judged. */
	assert_int_equal(validator_errors(v), 1);
	validator_summary(v, S(100));
	fflush(f);
	assert_non_null(strstr(out, "ERROR alert=y: missing notify"));
	assert_non_null(strstr(out, "SUMMARY alert=z not judged (sustainSecs 20"));
	assert_null(strstr(out, "ERROR alert=x"));
	validator_free(v);
	fclose(f);
	free(out);
	alerts_free(a);
}

/* A model engine following DESIGN.md section 2 (no faults) evaluates three
 * v2 alerts against the default cycle for 40 simulated minutes; the
 * validator must find nothing wrong, and must have seen repeats. */
static void test_validator_model_engine(void **state)
{
	struct vfix *f = *state;
	enum level level[3];
	double next_eval[3], last_notify[3];
	int notifies = 0, resolves = 0;
	int i;
	int ms;

	for (i = 0; i < 3; i++) {
		level[i] = LEVEL_PASS;
		next_eval[i] = 1.0 + 4.3 * i; /* spread start times */
		last_notify[i] = -1e9;
	}
	for (ms = 0; ms <= 2400 * 1000; ms += 50) {
		double t = ms / 1000.0;

		for (i = 0; i < 3; i++) {
			const struct alert *al = &f->alerts->items[i];
			double v;
			enum level l;

			if (t < next_eval[i])
				continue;
			next_eval[i] += al->interval_secs;
			v = cycle_value(1, al->query, t);
			validator_served(f->v, al->query, v, S(t));
			l = alerts_level(al, v);
			if (l != level[i] && l != LEVEL_PASS) {
				validator_notify(f->v, al->name,
						 alerts_message(al, l), S(t + 0.2));
				last_notify[i] = t + 0.25;
				notifies++;
			} else if (l != level[i]) {
				validator_resolve(f->v, al->name, S(t + 0.2));
				resolves++;
			} else if (l != LEVEL_PASS &&
				   t - last_notify[i] >= al->repeat_secs) {
				validator_notify(f->v, al->name,
						 alerts_message(al, l), S(t + 0.2));
				last_notify[i] = t + 0.25;
				notifies++;
			}
			level[i] = l;
		}
		if (ms % 1000 == 0)
			validator_tick(f->v, S(t));
	}
	validator_tick(f->v, S(2500));
	expect_no_error(f);
	/* 8 cycles of 300 s x 3 alerts: 2 changes and >= 1 repeat each. */
	assert_true(notifies >= 3 * 7 * 3);
	assert_true(resolves >= 3 * 7);
}

/* ---- the binary over HTTP --------------------------------------------- */

struct emu {
	pid_t pid;
	unsigned port;
	char errpath[300];
	char base[64];
};

/* Starts the emulator with args (NULL-terminated) and --port 0, stderr
 * into a file; reads the port from the first stdout line. */
static void emu_start(struct emu *e, const char *const *args)
{
	static int serial;
	char *argv[48];
	posix_spawn_file_actions_t fa;
	char line[128];
	int fds[2];
	int argc = 0;
	FILE *out;

	memset(e, 0, sizeof(*e));
	snprintf(e->errpath, sizeof(e->errpath), "%s/emu-%d.err", tmpdir,
		 ++serial);
	argv[argc++] = (char *)EMULATOR_PATH;
	argv[argc++] = (char *)"--port";
	argv[argc++] = (char *)"0";
	for (; *args != NULL; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, e->errpath,
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(posix_spawn(&e->pid, EMULATOR_PATH, &fa, NULL, argv,
				     environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	live_add(e->pid);
	close(fds[1]);
	out = fdopen(fds[0], "r");
	assert_non_null(out);
	if (fgets(line, sizeof(line), out) == NULL ||
	    sscanf(line, "listening on 127.0.0.1:%u", &e->port) != 1) {
		char *err = read_text(e->errpath);

		fail_msg("emulator did not start: %s", err ? err : "?");
	}
	fclose(out);
	snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%u", e->port);
}

/* Waits up to 10 s for the emulator to exit; returns its exit status (or
 * 128 + signal). */
static int emu_wait(struct emu *e)
{
	int status = 0;
	int i;

	for (i = 0; i < 1000; i++) {
		pid_t r = waitpid(e->pid, &status, WNOHANG);

		if (r == e->pid) {
			live_remove(e->pid);
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : 128 + WTERMSIG(status);
		}
		sleep_ms(10);
	}
	kill(e->pid, SIGKILL);
	waitpid(e->pid, &status, 0);
	live_remove(e->pid);
	fail_msg("emulator did not exit within 10 s");
	return -1;
}

static int emu_stop(struct emu *e)
{
	kill(e->pid, SIGTERM);
	return emu_wait(e);
}

/* Runs the binary with args to completion (for start-up errors) and
 * returns its exit status; stderr goes to errpath. */
static int emu_run(struct emu *e, const char *const *args)
{
	static int serial;
	char *argv[32];
	posix_spawn_file_actions_t fa;
	int argc = 0;

	memset(e, 0, sizeof(*e));
	snprintf(e->errpath, sizeof(e->errpath), "%s/run-%d.err", tmpdir,
		 ++serial);
	argv[argc++] = (char *)EMULATOR_PATH;
	for (; *args != NULL; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
					 O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, e->errpath,
					 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(posix_spawn(&e->pid, EMULATOR_PATH, &fa, NULL, argv,
				     environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	live_add(e->pid);
	return emu_wait(e);
}

struct reply {
	long status;
	struct buf body;
	char content_type[128];
};

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
	struct reply *r = userdata;

	if (buf_append(&r->body, data, size * n) != 0)
		return 0;
	return size * n;
}

/* Sends one request on handle h (reused: keep-alive). body NULL means GET;
 * content_type NULL sends no Content-Type at all. */
static void http(CURL *h, const char *url, const char *body,
		 const char *content_type, struct reply *r)
{
	struct curl_slist *headers = NULL;
	char header[160];
	char *ct = NULL;
	CURLcode rc;

	buf_free(&r->body);
	buf_init(&r->body);
	r->status = 0;
	r->content_type[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		snprintf(header, sizeof(header), "Content-Type:%s%s",
			 content_type != NULL ? " " : "",
			 content_type != NULL ? content_type : "");
		headers = curl_slist_append(headers, header);
		headers = curl_slist_append(headers, "Expect:");
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
		fail_msg("request %s failed: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
	if (ct != NULL)
		snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (r->body.data == NULL)
		buf_append(&r->body, "", 0);
}

static void get(CURL *h, const struct emu *e, const char *path,
		struct reply *r)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", e->base, path);
	http(h, url, NULL, NULL, r);
}

static void post(CURL *h, const struct emu *e, const char *path,
		 const char *body, const char *content_type, struct reply *r)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", e->base, path);
	http(h, url, body, content_type, r);
}

/* Asserts r is status with a JSON {"error": "..."} body. */
static void assert_error_reply(const struct reply *r, long status)
{
	cJSON *j;

	if (r->status != status)
		fail_msg("expected %ld, got %ld: %s", status, r->status,
			 r->body.data);
	j = cJSON_Parse(r->body.data);
	assert_non_null(j);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
	cJSON_Delete(j);
}

/* The raw number text after each "key": in json must be an integer. */
static int raw_integers(const char *json, const char *key)
{
	char pat[64];
	const char *p = json;
	int found = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	while ((p = strstr(p, pat)) != NULL) {
		p += strlen(pat);
		while (*p == ' ')
			p++;
		if (*p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.' || *p == 'e' || *p == 'E')
			return -1;
		found++;
	}
	return found;
}

static void test_http_alerts_and_query(void **state)
{
	const char *args[] = { NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	cJSON *j;
	const cJSON *a;
	int i;

	(void)state;
	buf_init(&r.body);
	emu_start(&e, args);
	get(h, &e, "/alerts", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.content_type, "application/json"));
	j = cJSON_Parse(r.body.data);
	assert_true(cJSON_IsArray(j));
	assert_int_equal(cJSON_GetArraySize(j), 10);
	cJSON_ArrayForEach(a, j) {
		assert_true(cJSON_IsNumber(cJSON_GetObjectItem(a, "intervalSecs")));
		assert_true(cJSON_IsNumber(cJSON_GetObjectItem(a, "sustainSecs")));
		assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "name")));
	}
	cJSON_Delete(j);
	/* Integers on the wire, no fractions. */
	assert_int_equal(raw_integers(r.body.data, "intervalSecs"), 10);
	assert_int_equal(raw_integers(r.body.data, "repeatIntervalSecs"), 10);
	assert_int_equal(raw_integers(r.body.data, "sustainSecs"), 10);
	assert_int_equal(raw_integers(r.body.data, "value"), 20);

	for (i = 1; i <= 10; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/query?target=test-query-%d", i);
		get(h, &e, path, &r);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.content_type, "application/json"));
		assert_non_null(strchr(r.body.data, '.'));
		j = cJSON_Parse(r.body.data);
		assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "value")));
		cJSON_Delete(j);
	}
	get(h, &e, "/query?target=no-such-query", &r);
	assert_error_reply(&r, 404);
	assert_non_null(strstr(r.body.data, "no-such-query"));
	get(h, &e, "/query", &r);
	assert_error_reply(&r, 400);
	get(h, &e, "/nope", &r);
	assert_error_reply(&r, 404);
	post(h, &e, "/alerts", "{}", "application/json", &r);
	assert_error_reply(&r, 405);
	get(h, &e, "/notify", &r);
	assert_error_reply(&r, 405);

	get(h, &e, "/stats", &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body.data);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "query"),
					     "200")->valueint, 10);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "query"),
					     "404")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "alerts"),
					     "405")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "other"),
					     "404")->valueint, 1);
	assert_non_null(cJSON_GetObjectItem(j, "resolve"));
	cJSON_Delete(j);

	assert_int_equal(emu_stop(&e), 0);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

static void test_http_calls_and_record(void **state)
{
	char record[300], qlog[300];
	const char *args[] = { "--record", record, "--query-log", qlog, NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	char *text;
	char *line;
	char *save = NULL;
	char *big;
	int lines = 0;

	(void)state;
	path_in_tmp(record, sizeof(record), "record.jsonl");
	path_in_tmp(qlog, sizeof(qlog), "query.jsonl");
	unlink(record);
	unlink(qlog);
	buf_init(&r.body);
	emu_start(&e, args);

	/* No Content-Type, form-urlencoded, JSON: all read as JSON. */
	post(h, &e, "/notify", "{\"alertName\": \"alert-1\", \"message\": "
	     "\"warning\"}", NULL, &r);
	assert_int_equal(r.status, 200);
	/* Recorded and flushed before the 200. */
	text = read_text(record);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"kind\":\"notify\",\"alert\":\"alert-1\","
				     "\"message\":\"warning\""));
	free(text);
	post(h, &e, "/notify", "{\"alertName\": \"alert-2\", \"message\": "
	     "\"critical\"}", "application/x-www-form-urlencoded", &r);
	assert_int_equal(r.status, 200);
	post(h, &e, "/resolve", "{\"alertName\": \"alert-1\"}",
	     "application/json", &r);
	assert_int_equal(r.status, 200);
	/* Unknown alerts are still accepted. */
	post(h, &e, "/resolve", "{\"alertName\": \"who\"}", NULL, &r);
	assert_int_equal(r.status, 200);

	post(h, &e, "/notify", "not json", NULL, &r);
	assert_error_reply(&r, 400);
	post(h, &e, "/notify", "[1]", NULL, &r);
	assert_error_reply(&r, 400);
	post(h, &e, "/notify", "{\"message\": \"m\"}", NULL, &r);
	assert_error_reply(&r, 400);
	assert_non_null(strstr(r.body.data, "alertName is missing"));
	post(h, &e, "/notify", "{\"alertName\": 5, \"message\": \"m\"}", NULL, &r);
	assert_error_reply(&r, 400);
	post(h, &e, "/notify", "{\"alertName\": \"\", \"message\": \"m\"}", NULL,
	     &r);
	assert_error_reply(&r, 400);
	post(h, &e, "/notify", "{\"alertName\": \"a\"}", NULL, &r);
	assert_error_reply(&r, 400);
	assert_non_null(strstr(r.body.data, "message is missing"));
	post(h, &e, "/notify", "{\"alertName\": \"a\", \"message\": 1}", NULL, &r);
	assert_error_reply(&r, 400);
	post(h, &e, "/resolve", "", NULL, &r);
	assert_error_reply(&r, 400);
	big = malloc(70000);
	assert_non_null(big);
	memset(big, 'x', 69999);
	big[69999] = '\0';
	post(h, &e, "/notify", big, NULL, &r);
	assert_error_reply(&r, 413);
	free(big);
	get(h, &e, "/query?target=test-query-3", &r);
	assert_int_equal(r.status, 200);
	get(h, &e, "/query?target=test%2Dquery%2D4", &r); /* URL-encoded */
	assert_int_equal(r.status, 200);

	assert_int_equal(emu_stop(&e), 0);

	text = read_text(record);
	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);
		const cJSON *t = cJSON_GetObjectItem(j, "t");
		const char *kind;

		assert_non_null(j);
		assert_true(cJSON_IsNumber(t) && t->valuedouble > 1.6e12);
		kind = cJSON_GetObjectItem(j, "kind")->valuestring;
		assert_true(strcmp(kind, "notify") == 0 ||
			    strcmp(kind, "resolve") == 0);
		assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "alert")));
		assert_int_equal(strcmp(kind, "notify") == 0,
				 cJSON_GetObjectItem(j, "message") != NULL);
		cJSON_Delete(j);
		lines++;
	}
	assert_int_equal(lines, 4); /* only accepted calls */
	free(text);
	text = read_text(qlog);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"target\":\"test-query-3\""));
	assert_non_null(strstr(text, "\"target\":\"test-query-4\""));
	assert_non_null(strstr(text, "\"us\":"));
	free(text);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

/* Counts the lines of text holding needle. */
static int lines_with(const char *text, const char *needle)
{
	const char *p = text;
	int n = 0;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		const char *hit = strstr(p, needle);

		if (hit != NULL && hit < p + len)
			n++;
		p = end != NULL ? end + 1 : NULL;
	}
	return n;
}

/* --reject-rate-notify 1: every well-formed notify is a 400 and is neither
 * recorded nor given to the validator; resolves still pass. The request
 * log has one line per answer (not /stats) with its status. */
static void test_http_reject_and_request_log(void **state)
{
	char record[300], rlog[300];
	const char *args[] = { "--record", record, "--request-log", rlog,
			       "--reject-rate-notify", "1", NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	char *text;
	int i;

	(void)state;
	path_in_tmp(record, sizeof(record), "reject-record.jsonl");
	path_in_tmp(rlog, sizeof(rlog), "reject-requests.jsonl");
	unlink(record);
	unlink(rlog);
	buf_init(&r.body);
	emu_start(&e, args);
	for (i = 0; i < 3; i++) {
		post(h, &e, "/notify", "{\"alertName\": \"alert-1\", "
		     "\"message\": \"warning\"}", NULL, &r);
		assert_error_reply(&r, 400);
		assert_non_null(strstr(r.body.data, "rejected notify"));
	}
	post(h, &e, "/resolve", "{\"alertName\": \"alert-1\"}", NULL, &r);
	assert_int_equal(r.status, 200);
	get(h, &e, "/query?target=test-query-2", &r);
	assert_int_equal(r.status, 200);
	get(h, &e, "/stats", &r);
	assert_int_equal(r.status, 200);
	/* Flushed before the answer went out. */
	text = read_text(rlog);
	assert_non_null(text);
	assert_int_equal(lines_with(text, "\"us\":"), 5);
	assert_int_equal(lines_with(text, "\"ep\":\"notify\",\"status\":400,"
				    "\"alert\":\"alert-1\""), 3);
	assert_int_equal(lines_with(text, "\"ep\":\"resolve\",\"status\":200,"
				    "\"alert\":\"alert-1\""), 1);
	assert_int_equal(lines_with(text, "\"ep\":\"query\",\"status\":200,"
				    "\"target\":\"test-query-2\""), 1);
	assert_int_equal(lines_with(text, "stats"), 0);
	free(text);
	text = read_text(record);
	assert_non_null(text);
	assert_int_equal(lines_with(text, "\"kind\":\"notify\""), 0);
	assert_int_equal(lines_with(text, "\"kind\":\"resolve\""), 1);
	free(text);
	assert_int_equal(emu_stop(&e), 0);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

static void test_http_fail_rate(void **state)
{
	const char *args[] = { "--fail-rate", "0.2", "--seed", "1", NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	int fails = 0;
	int i;

	(void)state;
	buf_init(&r.body);
	emu_start(&e, args);
	for (i = 0; i < 2000; i++) {
		get(h, &e, "/query?target=test-query-1", &r);
		assert_true(r.status == 200 || r.status == 500);
		fails += r.status == 500;
	}
	assert_true(fails >= 300 && fails <= 500);
	/* /stats is never failed. */
	for (i = 0; i < 50; i++) {
		get(h, &e, "/stats", &r);
		assert_int_equal(r.status, 200);
	}
	assert_int_equal(emu_stop(&e), 0);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

static void test_http_down_window(void **state)
{
	const char *args[] = { "--down", "0:2", NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	double start = now_secs();

	(void)state;
	buf_init(&r.body);
	emu_start(&e, args);
	get(h, &e, "/alerts", &r);
	assert_error_reply(&r, 503);
	get(h, &e, "/stats", &r);
	assert_int_equal(r.status, 200);
	/* Poll until it recovers; bounded. */
	do {
		assert_true(now_secs() - start < 8);
		sleep_ms(100);
		get(h, &e, "/query?target=test-query-1", &r);
		assert_true(r.status == 503 || r.status == 200);
	} while (r.status == 503);
	assert_true(now_secs() - start >= 1.5);
	get(h, &e, "/alerts", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(emu_stop(&e), 0);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

static void test_http_latency_concurrent(void **state)
{
	const char *args[] = { "--latency-ms", "400", NULL };
	struct emu e;
	CURLM *m = curl_multi_init();
	CURL *hs[6];
	char url[128];
	double start;
	int running = 0;
	int i;

	(void)state;
	emu_start(&e, args);
	snprintf(url, sizeof(url), "%s/query?target=test-query-1", e.base);
	for (i = 0; i < 6; i++) {
		hs[i] = curl_easy_init();
		curl_easy_setopt(hs[i], CURLOPT_URL, url);
		curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, NULL);
		curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, stderr);
		curl_easy_setopt(hs[i], CURLOPT_NOBODY, 1L);
		curl_multi_add_handle(m, hs[i]);
	}
	start = now_secs();
	do {
		curl_multi_perform(m, &running);
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running > 0 && now_secs() - start < 10);
	/* Six 400 ms answers in parallel, not 2.4 s in a row. */
	assert_true(now_secs() - start >= 0.35);
	assert_true(now_secs() - start < 2.0);
	for (i = 0; i < 6; i++) {
		long status = 0;

		curl_easy_getinfo(hs[i], CURLINFO_RESPONSE_CODE, &status);
		assert_int_equal(status, 200);
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
	}
	curl_multi_cleanup(m);
	assert_int_equal(emu_stop(&e), 0);
}

static void test_http_timeline_and_validate(void **state)
{
	char timeline[300];
	const char *args[] = { "--timeline", timeline, "--validate", NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	char *err;

	(void)state;
	path_in_tmp(timeline, sizeof(timeline), "timeline.json");
	write_file(timeline, "{\"test-query-1\": [[0, 150]], "
			     "\"free\": [[0, 0]]}");
	buf_init(&r.body);
	emu_start(&e, args);
	get(h, &e, "/query?target=test-query-1", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "150.00000"));
	get(h, &e, "/query?target=free", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body.data, "0.00000"));
	/* WARN was served: a critical notify is wrong. */
	post(h, &e, "/notify", "{\"alertName\": \"alert-1\", \"message\": "
	     "\"critical\"}", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(emu_stop(&e), 1);
	err = read_text(e.errpath);
	assert_non_null(err);
	assert_non_null(strstr(err, "ERROR alert=alert-1: wrong message"));
	assert_non_null(strstr(err, "SUMMARY total"));
	free(err);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

static void test_http_validate_clean_exit(void **state)
{
	char timeline[300];
	const char *args[] = { "--timeline", timeline, "--validate", NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();
	char *err;

	(void)state;
	path_in_tmp(timeline, sizeof(timeline), "timeline2.json");
	write_file(timeline, "{\"test-query-1\": [[0, 250]]}");
	buf_init(&r.body);
	emu_start(&e, args);
	get(h, &e, "/query?target=test-query-1", &r);
	post(h, &e, "/notify", "{\"alertName\": \"alert-1\", \"message\": "
	     "\"critical\"}", "application/json", &r);
	assert_int_equal(r.status, 200);
	get(h, &e, "/query?target=test-query-2", &r); /* in flight at exit */
	assert_int_equal(emu_stop(&e), 0);
	err = read_text(e.errpath);
	assert_non_null(err);
	assert_null(strstr(err, "ERROR"));
	assert_non_null(strstr(err, "in flight 1"));
	free(err);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

static void test_bad_invocations(void **state)
{
	char bad[300], missing[300], alerts[300];
	const char *help[] = { "--help", NULL };
	const char *usage[] = { "--bogus", NULL };
	const char *rate[] = { "--fail-rate", "2", NULL };
	const char *nofile[] = { "--timeline", missing, NULL };
	const char *badfile[] = { "--timeline", bad, NULL };
	const char *badalerts[] = { "--alerts", alerts, NULL };
	struct emu e;
	char *err;

	(void)state;
	path_in_tmp(bad, sizeof(bad), "bad-timeline.json");
	path_in_tmp(missing, sizeof(missing), "missing.json");
	path_in_tmp(alerts, sizeof(alerts), "bad-alerts.json");
	write_file(bad, "{\"x\": [[0, 1], [3, \"high\"]]}");
	write_file(alerts, "{\"not\": \"an array\"}");
	assert_int_equal(emu_run(&e, help), 0);
	assert_int_equal(emu_run(&e, usage), 64);
	err = read_text(e.errpath);
	assert_non_null(strstr(err, "unknown option --bogus"));
	free(err);
	assert_int_equal(emu_run(&e, rate), 64);
	assert_int_equal(emu_run(&e, nofile), 66);
	assert_int_equal(emu_run(&e, badfile), 65);
	err = read_text(e.errpath);
	assert_non_null(strstr(err, "target \"x\": step 2: value is not a number"));
	assert_non_null(strstr(err, "bad-timeline.json"));
	free(err);
	assert_int_equal(emu_run(&e, badalerts), 65);
	err = read_text(e.errpath);
	assert_non_null(strstr(err, "not a JSON array"));
	free(err);
}

static void test_sigint_and_alerts_file(void **state)
{
	char alerts[300];
	const char *args[] = { "--alerts", alerts, NULL };
	struct emu e;
	struct reply r;
	CURL *h = curl_easy_init();

	(void)state;
	path_in_tmp(alerts, sizeof(alerts), "alerts.json");
	write_file(alerts, alerts_file);
	buf_init(&r.body);
	emu_start(&e, args);
	get(h, &e, "/alerts", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, alerts_file);
	get(h, &e, "/query?target=q1", &r);
	assert_int_equal(r.status, 200);
	get(h, &e, "/query?target=q2", &r); /* only an invalid entry has it */
	assert_int_equal(r.status, 404);
	kill(e.pid, SIGINT);
	assert_int_equal(emu_wait(&e), 0);
	curl_easy_cleanup(h);
	buf_free(&r.body);
}

/* ---- main ------------------------------------------------------------- */

static int remove_tmp(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeline_values),
		cmocka_unit_test(test_timeline_cycle),
		cmocka_unit_test(test_timeline_bad),
		cmocka_unit_test(test_alerts_file),
		cmocka_unit_test(test_alerts_file_bad),
		cmocka_unit_test(test_alerts_profiles),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_options),
		cmocka_unit_test_setup_teardown(test_validator_correct,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_missing_notify,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_wrong_message,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_duplicate,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_early_repeat,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_late_repeat,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_outage,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_missing_resolve,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_unexpected_resolve,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_duplicate_resolve,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(test_validator_notify_while_pass,
						vfix_setup, vfix_teardown),
		cmocka_unit_test_setup_teardown(
			test_validator_unknown_and_in_flight, vfix_setup,
			vfix_teardown),
		cmocka_unit_test(test_validator_shared_target_and_sustain),
		cmocka_unit_test_setup_teardown(test_validator_model_engine,
						vfix_setup, vfix_teardown),
		cmocka_unit_test(test_http_alerts_and_query),
		cmocka_unit_test(test_http_calls_and_record),
		cmocka_unit_test(test_http_fail_rate),
		cmocka_unit_test(test_http_reject_and_request_log),
		cmocka_unit_test(test_http_down_window),
		cmocka_unit_test(test_http_latency_concurrent),
		cmocka_unit_test(test_http_timeline_and_validate),
		cmocka_unit_test(test_http_validate_clean_exit),
		cmocka_unit_test(test_bad_invocations),
		cmocka_unit_test(test_sigint_and_alerts_file),
	};
	int failed;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_emulator.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	live_kill_all();
	curl_global_cleanup();
	if (failed == 0 && remove_tmp() != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return failed;
}
