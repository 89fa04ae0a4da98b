/* Tests of metrics.c: the text exposition (HELP and TYPE before each
 * family, label escaping, cumulative histogram buckets ending with +Inf,
 * _count equal to the +Inf bucket) and the counters the engine's
 * single-line calls move (failure reasons, transitions, calls by kind,
 * missed schedule slots). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "metrics.h"

/* The value of the sample line that starts with `series ` (name and
 * labels as written), or -1 when there is none. */
static double sample(const char *page, const char *series)
{
	size_t n = strlen(series);
	const char *p = page;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == page || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static void test_families_have_help_and_type(void **state)
{
	struct metrics m;
	struct metrics_db db = {.ok = 1};
	struct strbuf b = {0};
	char *copy, *line, *save = NULL;
	char typed[64][128];
	int ntyped = 0;

	(void)state;
	metrics_init(&m);
	metrics_write(&m, &db, &b);
	assert_false(b.failed);
	copy = strdup(b.data);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%127s", typed[ntyped]), 1);
			for (int i = 0; i < ntyped; i++) /* one TYPE per family */
				assert_string_not_equal(typed[i], typed[ntyped]);
			ntyped++;
			continue;
		}
		if (line[0] == '#')
			continue;
		assert_int_equal(sscanf(line, "%127[a-z_]", name), 1);
		assert_true(strncmp(name, "alert_exec_", 11) == 0);
		/* The sample belongs to the family typed last. */
		assert_true(ntyped > 0);
		assert_true(strncmp(name, typed[ntyped - 1], strlen(typed[ntyped - 1])) == 0);
	}
	free(copy);
	assert_true(sample(b.data, "alert_exec_build_info{version=\"" ALERT_EXEC_VERSION "\"}") ==
		    1);
	strbuf_free(&b);
}

static void test_histogram_is_cumulative(void **state)
{
	struct metrics m;
	struct metrics_db db = {0};
	struct strbuf b = {0};

	(void)state;
	metrics_init(&m);
	metrics_observe(&m.query_duration, 500);      /* <= 0.001 s */
	metrics_observe(&m.query_duration, 1000);     /* == 0.001: in the le=0.001 bucket */
	metrics_observe(&m.query_duration, 30000);    /* <= 0.05 */
	metrics_observe(&m.query_duration, 99000000); /* above every bound */
	metrics_write(&m, &db, &b);
	assert_true(sample(b.data, "alert_exec_query_duration_seconds_bucket{le=\"0.001\"}") == 2);
	assert_true(sample(b.data, "alert_exec_query_duration_seconds_bucket{le=\"0.025\"}") == 2);
	assert_true(sample(b.data, "alert_exec_query_duration_seconds_bucket{le=\"0.05\"}") == 3);
	assert_true(sample(b.data, "alert_exec_query_duration_seconds_bucket{le=\"10\"}") == 3);
	assert_true(sample(b.data, "alert_exec_query_duration_seconds_bucket{le=\"+Inf\"}") == 4);
	assert_true(sample(b.data, "alert_exec_query_duration_seconds_count") == 4);
	assert_float_equal(sample(b.data, "alert_exec_query_duration_seconds_sum"), 99.0315, 1e-6);
	/* The database's gauges are left out when it could not be read. */
	assert_true(sample(b.data, "alert_exec_database_up") == 0);
	assert_null(strstr(b.data, "alert_exec_alerts{"));
	strbuf_free(&b);
}

static void test_counters_by_label(void **state)
{
	struct metrics m;
	struct metrics_db db = {
		.ok = 1, .alerts = {3, 2, 1}, .pending = 4, .oldest_pending_s = 2.5};
	struct strbuf b = {0};

	(void)state;
	metrics_init(&m);
	metrics_eval_failed(&m, HTTP_ERR_SERVER);
	metrics_eval_failed(&m, HTTP_ERR_SERVER);
	metrics_eval_failed(&m, HTTP_ERR_BODY);
	metrics_eval_failed(&m, HTTP_ERR_TRANSPORT);
	metrics_transition(&m, LEVEL_PASS, LEVEL_CRITICAL);
	metrics_transition(&m, LEVEL_CRITICAL, LEVEL_PASS);
	metrics_delivered(&m, STORE_NOTIFY, 120);
	metrics_delivered(&m, STORE_RESOLVE, 80);
	metrics_call_failed(&m, STORE_RESOLVE, 0);
	metrics_call_failed(&m, STORE_NOTIFY, 1);
	metrics_evaluated(&m, 1000, 100, 1050); /* on time */
	metrics_evaluated(&m, 1000, 100, 1350); /* three slots late */
	metrics_refresh(&m, 1, 1700000000123);
	metrics_refresh(&m, 0, 0);
	metrics_write(&m, &db, &b);
	assert_true(sample(b.data,
			   "alert_exec_evaluation_failures_total{reason=\"server_error\"}") == 2);
	assert_true(sample(b.data, "alert_exec_evaluation_failures_total{reason=\"bad_answer\"}") ==
		    1);
	assert_true(sample(b.data, "alert_exec_evaluation_failures_total{reason=\"transport\"}") ==
		    1);
	assert_true(sample(b.data, "alert_exec_transitions_total{from=\"pass\",to=\"critical\"}") ==
		    1);
	assert_true(sample(b.data, "alert_exec_transitions_total{from=\"critical\",to=\"pass\"}") ==
		    1);
	assert_true(sample(b.data, "alert_exec_transitions_total{from=\"pass\",to=\"warn\"}") == 0);
	assert_true(sample(b.data, "alert_exec_calls_delivered_total{kind=\"notify\"}") == 1);
	assert_true(sample(b.data, "alert_exec_calls_delivered_total{kind=\"resolve\"}") == 1);
	assert_true(sample(b.data, "alert_exec_call_attempts_failed_total{kind=\"resolve\"}") == 1);
	assert_true(sample(b.data, "alert_exec_calls_dead_total{kind=\"notify\"}") == 1);
	assert_true(sample(b.data, "alert_exec_calls_dead_total{kind=\"resolve\"}") == 0);
	assert_true(sample(b.data, "alert_exec_evaluations_total") == 2);
	assert_true(sample(b.data, "alert_exec_missed_evaluations_total") == 3);
	assert_true(sample(b.data, "alert_exec_definitions_refresh_total{result=\"success\"}") ==
		    1);
	assert_true(sample(b.data, "alert_exec_definitions_refresh_total{result=\"failure\"}") ==
		    1);
	assert_float_equal(sample(b.data, "alert_exec_definitions_last_success_timestamp_seconds"),
			   1700000000.123, 1e-3);
	assert_true(sample(b.data, "alert_exec_alerts{state=\"pass\"}") == 3);
	assert_true(sample(b.data, "alert_exec_alerts{state=\"critical\"}") == 1);
	assert_true(sample(b.data, "alert_exec_outbox_pending") == 4);
	assert_float_equal(sample(b.data, "alert_exec_outbox_oldest_pending_age_seconds"), 2.5,
			   1e-9);
	assert_true(sample(b.data, "alert_exec_detection_to_delivery_seconds_count") == 2);
	assert_int_equal(metrics_eval_failures(&m), 4);
	assert_int_equal(metrics_calls_dead(&m), 1);
	strbuf_free(&b);
}

static void test_missed_slots(void **state)
{
	(void)state;
	assert_int_equal(metrics_missed_slots(1000, 100, 1000), 0);
	assert_int_equal(metrics_missed_slots(1000, 100, 1099), 0);
	assert_int_equal(metrics_missed_slots(1000, 100, 1100), 1); /* the next slot came */
	assert_int_equal(metrics_missed_slots(1000, 100, 1999), 9);
	assert_int_equal(metrics_missed_slots(0, 100, 5000), 0); /* unknown slot */
}

static void test_label_value_escaping(void **state)
{
	struct strbuf b = {0};

	(void)state;
	metrics_label_value(&b, "a\\b\"c\nd");
	assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families_have_help_and_type),
		cmocka_unit_test(test_histogram_is_cumulative),
		cmocka_unit_test(test_counters_by_label),
		cmocka_unit_test(test_missed_slots),
		cmocka_unit_test(test_label_value_escaping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
