/* Tests of the listener (web.c), the status page (status.c) and the
 * buffer they write into (strbuf.c): HTML escaping, the health and
 * readiness decisions with a fake clock and fake stamps, the --listen
 * address syntax, and the real listener on an ephemeral port answering
 * each path (200, 503, 404, 405) over a real database whose one alert has
 * a hostile name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <sqlite3.h>

#include "config.h"
#include "engine.h"
#include "status.h"
#include "store.h"
#include "strbuf.h"
#include "web.h"

#define HOSTILE "<script>alert(1)</script> \"q\" 'a' & co"
#define HOSTILE_ESCAPED "&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &#39;a&#39; &amp; co"

static void test_html_escaping(void **state)
{
	struct strbuf b = {0};

	(void)state;
	strbuf_html(&b, HOSTILE);
	assert_string_equal(b.data, HOSTILE_ESCAPED);
	strbuf_html(&b, NULL);
	strbuf_html(&b, "");
	assert_string_equal(b.data, HOSTILE_ESCAPED);
	strbuf_free(&b);
	strbuf_time(&b, 1700000000123, "-");
	assert_string_equal(b.data, "2023-11-14T22:13:20.123Z");
	strbuf_free(&b);
	strbuf_time(&b, 0, "never");
	assert_string_equal(b.data, "never");
	strbuf_free(&b);
}

static void test_health_decisions(void **state)
{
	char why[200];

	(void)state;
	assert_int_equal(web_healthy(10000, 0, 5000, why, sizeof(why)), 0);
	assert_string_equal(why, "the scheduler has not started");
	assert_int_equal(web_healthy(10000, 5000, 5000, why, sizeof(why)), 1);
	assert_int_equal(web_healthy(10001, 5000, 5000, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "last turned 5001 ms ago"));
	assert_int_equal(web_ready(NULL, 1, why, sizeof(why)), 1);
	assert_int_equal(web_ready(NULL, 0, why, sizeof(why)), 0);
	assert_string_equal(why, "alert definitions not loaded yet");
	assert_int_equal(web_ready("disk I/O error", 1, why, sizeof(why)), 0);
	assert_string_equal(why, "database not readable: disk I/O error");
}

static void test_listen_syntax(void **state)
{
	static const char *const good[] = {"127.0.0.1:9097", "0.0.0.0:0", "[::1]:65535", "[::]:80"};
	static const char *const bad[] = {"127.0.0.1",    "127.0.0.1:",   "127.0.0.1:65536",
					  "127.0.0.1:-1", "localhost:80", "::1:80",
					  "[::1]:x",      ":80",          "127.0.0.1: 80"};
	struct sockaddr_storage sa;
	socklen_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(config_parse_listen(good[i], &sa, &len), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (config_parse_listen(bad[i], &sa, &len) == 0)
			fail_msg("accepted --listen %s", bad[i]);
	}
}

/* A temporary database with two alerts: a hostile name in CRITICAL and
 * "calm" in PASS. */
struct fixture {
	char dir[64];
	char db[128];
	struct store_lock *lock;
};

static void make_db(struct fixture *f)
{
	struct alert_def d[2] = {
		{(char *)"calm", (char *)"q1", 1000, 1000, 0, 1, (char *)"w", 2, (char *)"c"},
		{(char *)HOSTILE, (char *)"q2", 1000, 1000, 0, 1, (char *)"w", 2, (char *)"c"},
	};
	struct store_sync_stats stats;
	struct store *st = NULL;
	sqlite3 *db = NULL;
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_web.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/a.db", f->dir);
	assert_int_equal(store_prepare(f->db, 0, &f->lock, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_open(f->db, 0, &st, err, sizeof(err)), 0);
	assert_int_equal(store_sync_defs(st, d, 2, NULL, 0, 1000, 1, &stats, err, sizeof(err)), 0);
	store_close(st);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "UPDATE alert_state SET state = 'CRITICAL', last_value = 5 "
			     "WHERE alert_id = (SELECT id FROM alert WHERE name <> 'calm')",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
}

static void drop_db(struct fixture *f)
{
	char cmd[160];

	store_unlock(f->lock);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

static void test_status_page(void **state)
{
	struct fixture f;
	struct store_reader *r = NULL;
	struct strbuf b = {0};
	char err[512];
	const char *hostile, *calm;

	(void)state;
	make_db(&f);
	assert_int_equal(store_reader_open(f.db, &r, err, sizeof(err)), 0);
	assert_int_equal(status_page(r, 1700000000000, &b, err, sizeof(err)), 0);
	assert_false(b.failed);
	hostile = strstr(b.data, "<td class=\"name\">" HOSTILE_ESCAPED "</td>");
	calm = strstr(b.data, "<td class=\"name\">calm</td>");
	assert_non_null(hostile);
	assert_non_null(calm);
	assert_true(hostile < calm); /* firing first */
	assert_null(strstr(b.data, "<script>"));
	assert_non_null(strstr(b.data, "1 critical, 0 warn, 1 pass"));
	strbuf_free(&b);
	store_reader_close(r);
	drop_db(&f);
	/* A missing database is an error, and is not created. */
	assert_int_equal(store_reader_open(f.db, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(access(f.db, F_OK), -1);
}

/* The page lists the first STATUS_PAGE_ALERTS alerts and says how many
 * it leaves out. */
static void test_status_page_cap(void **state)
{
	enum { N = STATUS_PAGE_ALERTS + 5 };
	struct alert_def *d = calloc(N, sizeof(*d));
	char(*names)[16] = calloc(N, sizeof(*names));
	struct store_sync_stats stats;
	struct store_reader *r = NULL;
	struct store *st = NULL;
	struct strbuf b = {0};
	struct fixture f;
	char err[512];
	size_t rows = 0;
	const char *calls;

	(void)state;
	make_db(&f);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "n%05d", i);
		d[i] = (struct alert_def){names[i], (char *)"q", 1000, 1000,       0,
					  1,        (char *)"w", 2,    (char *)"c"};
	}
	assert_int_equal(store_open(f.db, 0, &st, err, sizeof(err)), 0);
	assert_int_equal(store_sync_defs(st, d, N, NULL, 0, 2000, 1, &stats, err, sizeof(err)), 0);
	store_close(st);
	assert_int_equal(store_reader_open(f.db, &r, err, sizeof(err)), 0);
	assert_int_equal(status_page(r, 1700000000000, &b, err, sizeof(err)), 0);
	/* make_db's two alerts are retired (kept) by this sync: N + 2 in all. */
	calls = strstr(b.data, "<table id=\"calls\">");
	assert_non_null(calls);
	for (const char *p = b.data; (p = strstr(p, "<td class=\"name\">")) != NULL && p < calls;
	     p++)
		rows++;
	assert_int_equal(rows, STATUS_PAGE_ALERTS);
	assert_non_null(strstr(b.data, "<p id=\"not-shown\">7 more alerts not shown.</p>"));
	strbuf_free(&b);
	store_reader_close(r);
	drop_db(&f);
	free(names);
	free(d);
}

/* A clock the test sets (the listener's thread reads it). */
static _Atomic int64_t fake_steady, fake_wall = 1700000000000;
static int64_t read_steady(void *ctx)
{
	(void)ctx;
	return fake_steady;
}
static int64_t read_wall(void *ctx)
{
	(void)ctx;
	return fake_wall;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	strbuf_append_n(arg, data, size * n);
	return size * n;
}

/* The status of a request to the listener; its body in body. */
static long request(const char *addr, const char *method, const char *path, struct strbuf *body)
{
	CURL *c = curl_easy_init();
	char url[200];
	long status = 0;

	snprintf(url, sizeof(url), "http://%s%s", addr, path);
	strbuf_free(body);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

static void test_listener(void **state)
{
	struct fixture f;
	struct metrics m;
	struct clock_source clock = {read_steady, read_wall, NULL};
	struct web_source src = {&m, &clock, NULL, 5000};
	struct web *w = NULL, *second = NULL;
	struct strbuf body = {0};
	char addr[80], addr2[80], err[512];

	(void)state;
	make_db(&f);
	metrics_init(&m);
	src.db_path = f.db;
	fake_steady = 100000;
	assert_int_equal(web_start(&src, "127.0.0.1:0", &w, addr, sizeof(addr), err, sizeof(err)),
			 ENGINE_EXIT_OK);
	assert_true(strncmp(addr, "127.0.0.1:", 10) == 0 && strcmp(addr, "127.0.0.1:0") != 0);

	/* Health with a fake stamp: never, fresh, too old. */
	assert_int_equal(request(addr, "GET", "/-/healthy", &body), 503);
	assert_string_equal(body.data, "the scheduler has not started\n");
	metrics_tick(&m, fake_steady);
	assert_int_equal(request(addr, "GET", "/-/healthy", &body), 200);
	fake_steady += 5001;
	assert_int_equal(request(addr, "GET", "/-/healthy", &body), 503);
	assert_non_null(strstr(body.data, "last turned 5001 ms ago"));

	assert_int_equal(request(addr, "GET", "/-/ready", &body), 503);
	assert_string_equal(body.data, "alert definitions not loaded yet\n");
	metrics_refresh(&m, 1, fake_wall);
	assert_int_equal(request(addr, "GET", "/-/ready", &body), 200);

	assert_int_equal(request(addr, "GET", "/", &body), 200);
	assert_non_null(strstr(body.data, HOSTILE_ESCAPED));
	assert_int_equal(request(addr, "GET", "/metrics", &body), 200);
	assert_non_null(strstr(body.data, "\nalert_exec_alerts{state=\"critical\"} 1\n"));
	assert_int_equal(request(addr, "GET", "/nope", &body), 404);
	assert_int_equal(request(addr, "POST", "/", &body), 405);
	assert_int_equal(request(addr, "DELETE", "/metrics", &body), 405);

	/* The same address again: in use, exit 71. */
	assert_int_equal(web_start(&src, addr, &second, addr2, sizeof(addr2), err, sizeof(err)),
			 ENGINE_EXIT_OSERR);
	assert_null(second);
	assert_non_null(strstr(err, "Address already in use"));
	web_stop(w);
	strbuf_free(&body);
	drop_db(&f);
	/* No database: exit 74. */
	assert_int_equal(web_start(&src, "127.0.0.1:0", &w, addr, sizeof(addr), err, sizeof(err)),
			 ENGINE_EXIT_DB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_html_escaping),   cmocka_unit_test(test_health_decisions),
		cmocka_unit_test(test_listen_syntax),   cmocka_unit_test(test_status_page),
		cmocka_unit_test(test_status_page_cap), cmocka_unit_test(test_listener),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
