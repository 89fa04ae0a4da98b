/* Tests of def_cache.c: hits and misses, the version that drops every
 * entry, entries that outlive their dropping while borrowed, and growth
 * past the first room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "def_cache.h"

static struct alert_def def_named(char *name, char *query)
{
	struct alert_def d = {
		.name = name,
		.query = query,
		.interval_ms = 1000,
		.repeat_ms = 3000,
		.warn_value = 1.5,
		.warn_message = "warning",
		.crit_value = 2.5,
		.crit_message = "critical",
	};
	return d;
}

/* A copy is kept, strings and numbers; the caller's def may go away. */
static void test_put_then_get(void **state)
{
	struct def_cache c;
	char name[] = "alert-1", query[] = "q-1";
	struct alert_def d = def_named(name, query);
	struct def_entry *e, *again;

	(void)state;
	assert_int_equal(def_cache_init(&c), 0);
	def_cache_check(&c, 0);
	assert_null(def_cache_get(&c, 1));
	e = def_cache_put(&c, 1, 42, &d);
	assert_non_null(e);
	memset(name, 'x', sizeof(name) - 1);
	memset(query, 'x', sizeof(query) - 1);
	assert_string_equal(e->def.name, "alert-1");
	assert_string_equal(e->def.query, "q-1");
	assert_string_equal(e->def.warn_message, "warning");
	assert_string_equal(e->def.crit_message, "critical");
	assert_int_equal(e->def.interval_ms, 1000);
	assert_true(e->def.crit_value == 2.5);
	assert_int_equal(e->version, 42);
	again = def_cache_get(&c, 1);
	assert_ptr_equal(again, e);
	assert_int_equal(e->refs, 3);
	assert_null(def_cache_get(&c, 2));
	/* the same version again changes nothing */
	def_cache_check(&c, 0);
	assert_int_equal(def_cache_size(&c), 1);
	def_entry_unref(again);
	def_entry_unref(e);
	def_entry_unref(NULL);
	def_cache_free(&c);
}

/* Another version drops every entry; one still borrowed lives on (ASan
 * would see a use after free) until its last reference goes. */
static void test_new_version_drops_all(void **state)
{
	struct def_cache c;
	struct alert_def d = def_named("alert-1", "q-old");
	struct def_entry *borrowed, *fresh;

	(void)state;
	assert_int_equal(def_cache_init(&c), 0);
	def_cache_check(&c, 3);
	borrowed = def_cache_put(&c, 1, 1, &d);
	def_entry_unref(def_cache_put(&c, 2, 1, &d));
	assert_int_equal(def_cache_size(&c), 2);
	def_cache_check(&c, 4);
	assert_int_equal(def_cache_size(&c), 0);
	assert_null(def_cache_get(&c, 1));
	assert_null(def_cache_get(&c, 2));
	assert_int_equal(borrowed->refs, 1);
	assert_string_equal(borrowed->def.query, "q-old");
	d.query = "q-new";
	fresh = def_cache_put(&c, 1, 2, &d);
	assert_string_equal(fresh->def.query, "q-new");
	assert_string_equal(borrowed->def.query, "q-old");
	def_entry_unref(borrowed);
	def_entry_unref(fresh);
	/* freed with the cache's references dropped, a borrowed one kept */
	borrowed = def_cache_get(&c, 1);
	def_cache_free(&c);
	assert_string_equal(borrowed->def.query, "q-new");
	def_entry_unref(borrowed);
}

/* Far more entries than the first room: every one stays findable. */
static void test_grows(void **state)
{
	enum { N = 5000 };
	struct def_cache c;
	char name[32];

	(void)state;
	assert_int_equal(def_cache_init(&c), 0);
	def_cache_check(&c, 0);
	for (int64_t id = 1; id <= N; id++) {
		struct alert_def d = def_named(name, "q");

		snprintf(name, sizeof(name), "alert-%lld", (long long)id);
		def_entry_unref(def_cache_put(&c, id, id, &d));
	}
	assert_int_equal(def_cache_size(&c), N);
	for (int64_t id = 1; id <= N; id++) {
		struct def_entry *e = def_cache_get(&c, id);

		assert_non_null(e);
		assert_int_equal(e->alert_id, id);
		assert_int_equal(e->version, id);
		snprintf(name, sizeof(name), "alert-%lld", (long long)id);
		assert_string_equal(e->def.name, name);
		def_entry_unref(e);
	}
	assert_null(def_cache_get(&c, N + 1));
	def_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_then_get),
		cmocka_unit_test(test_new_version_drops_all),
		cmocka_unit_test(test_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
