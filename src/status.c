#include "status.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "engine.h"
#include "rules.h"

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta http-equiv=\"refresh\" content=\"10\">\n<title>alert-exec</title>\n<style>\n"
	"body{font-family:sans-serif;margin:1.5em;color:#222}\n"
	"table{border-collapse:collapse;margin-bottom:1.5em}\n"
	"th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\n"
	"th{background:#eee}\n"
	"tr.critical td.state{background:#f4b6b6;font-weight:bold}\n"
	"tr.warn td.state{background:#f7e3a1}\n"
	"tr.pass td.state{background:#cfeccf}\n"
	"td.error{color:#a00}\n"
	"</style>\n</head>\n<body>\n";

static const char *const level_class[3] = {"pass", "warn", "critical"};

static void cell_time(struct strbuf *out, int64_t ms)
{
	strbuf_append(out, "<td>");
	strbuf_time(out, ms, "-");
	strbuf_append(out, "</td>");
}

static void alert_row(struct strbuf *out, const struct store_alert_status *a)
{
	strbuf_printf(out, "<tr class=\"%s\"><td class=\"name\">", level_class[a->state]);
	strbuf_html(out, a->name);
	strbuf_printf(out, "</td><td class=\"state\">%s%s</td>", rules_level_name(a->state),
		      a->retired ? " (retired)" : "");
	if (a->has_value)
		strbuf_printf(out, "<td class=\"value\">%.5g</td>", a->last_value);
	else
		strbuf_append(out, "<td class=\"value\">-</td>");
	cell_time(out, a->last_eval);
	cell_time(out, a->last_notified);
	strbuf_printf(out, "<td class=\"pending\">%lld</td><td class=\"error\">",
		      (long long)a->pending);
	strbuf_html(out, a->last_error ? a->last_error : "");
	strbuf_append(out, "</td></tr>\n");
}

static int alerts_table(struct store_reader *r, struct strbuf *out, char *err, size_t errlen)
{
	struct store_alert_status *a = NULL;
	size_t n = 0, total = 0;

	if (store_read_alerts(r, STATUS_PAGE_ALERTS, &a, &n, &total, err, errlen) != 0)
		return -1;
	strbuf_printf(out, "<h2>Alerts (%zu)</h2>\n", total);
	strbuf_append(out, "<table id=\"alerts\">\n<thead><tr><th>Name</th><th>State</th>"
			   "<th>Last value</th><th>Last evaluation</th><th>Last notified</th>"
			   "<th>Pending calls</th><th>Last error</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++)
		alert_row(out, &a[i]);
	strbuf_append(out, "</tbody>\n</table>\n");
	if (total > n)
		strbuf_printf(out, "<p id=\"not-shown\">%zu more alerts not shown.</p>\n",
			      total - n);
	store_alert_status_free(a, n);
	return 0;
}

static int calls_table(struct store_reader *r, struct strbuf *out, char *err, size_t errlen)
{
	struct store_pending_call *c = NULL;
	size_t n = 0;

	if (store_read_pending(r, STATUS_PAGE_CALLS, &c, &n, err, errlen) != 0)
		return -1;
	strbuf_printf(out, "<h2>Oldest pending calls (%d at most)</h2>\n", STATUS_PAGE_CALLS);
	strbuf_append(out, "<table id=\"calls\">\n<thead><tr><th>Id</th><th>Alert</th>"
			   "<th>Kind</th><th>Created</th><th>Attempts</th><th>Next attempt</th>"
			   "<th>Last error</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++) {
		strbuf_printf(out, "<tr><td>%lld</td><td class=\"name\">", (long long)c[i].id);
		strbuf_html(out, c[i].name);
		strbuf_printf(out, "</td><td>%s</td>",
			      c[i].kind == STORE_RESOLVE ? "resolve" : "notify");
		cell_time(out, c[i].created);
		strbuf_printf(out, "<td>%lld</td>", (long long)c[i].attempts);
		cell_time(out, c[i].next_attempt);
		strbuf_append(out, "<td class=\"error\">");
		strbuf_html(out, c[i].last_error ? c[i].last_error : "");
		strbuf_append(out, "</td></tr>\n");
	}
	strbuf_append(out, "</tbody>\n</table>\n");
	store_pending_free(c, n);
	return 0;
}

int status_page(struct store_reader *r, int64_t now, struct strbuf *out, char *err, size_t errlen)
{
	struct store_outbox_totals t;
	int64_t counts[3];

	if (store_read_state_counts(r, counts, err, errlen) != 0 ||
	    store_read_outbox_totals(r, &t, err, errlen) != 0)
		return -1;
	strbuf_append(out, page_head);
	strbuf_append(out, "<h1>alert-exec</h1>\n<p id=\"summary\">Version ");
	strbuf_html(out, ALERT_EXEC_VERSION);
	strbuf_append(out, ", as of ");
	strbuf_time(out, now, "-");
	strbuf_printf(out,
		      ". Active alerts: %lld critical, %lld warn, %lld pass. Outbox: %lld "
		      "pending, %lld dead, oldest pending %.0f s old.</p>\n",
		      (long long)counts[LEVEL_CRITICAL], (long long)counts[LEVEL_WARN],
		      (long long)counts[LEVEL_PASS], (long long)t.pending, (long long)t.dead,
		      t.oldest_created > 0 && now > t.oldest_created
			      ? (double)(now - t.oldest_created) / 1e3
			      : 0.0);
	if (alerts_table(r, out, err, errlen) != 0 || calls_table(r, out, err, errlen) != 0)
		return -1;
	strbuf_append(out, "</body>\n</html>\n");
	return 0;
}

/* A value of the table: control characters (a newline in a name) would
 * break its lines. */
static void table_text(char *dst, size_t n, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 1 < n; s++)
		dst[i++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	dst[i] = '\0';
}

static void time_text(char *dst, size_t n, int64_t ms)
{
	struct strbuf t = {0};

	strbuf_time(&t, ms, "-");
	snprintf(dst, n, "%s", t.failed ? "?" : t.data);
	strbuf_free(&t);
}

#define COLUMNS 8

/* The cells of one alert's line (each NUL-terminated in cell[i]). */
static void table_cells(const struct store_alert_status *a, char cell[COLUMNS][512])
{
	table_text(cell[0], 512, a->name);
	snprintf(cell[1], 512, "%s%s", rules_level_name(a->state), a->retired ? "(retired)" : "");
	if (a->has_value)
		snprintf(cell[2], 512, "%.5g", a->last_value);
	else
		snprintf(cell[2], 512, "-");
	time_text(cell[3], 512, a->last_eval);
	time_text(cell[4], 512, a->last_notified);
	snprintf(cell[5], 512, "%lld", (long long)a->pending);
	snprintf(cell[6], 512, "%lld", (long long)a->failures);
	table_text(cell[7], 512, a->last_error ? a->last_error : "");
}

static void print_table(const struct store_alert_status *a, size_t n)
{
	static const char *const head[COLUMNS] = {"NAME",      "STATE",         "VALUE",
						  "LAST_EVAL", "LAST_NOTIFIED", "PENDING",
						  "FAILURES",  "LAST_ERROR"};
	static char cell[COLUMNS][512];
	int width[COLUMNS];

	for (int c = 0; c < COLUMNS; c++)
		width[c] = (int)strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		table_cells(&a[i], cell);
		for (int c = 0; c < COLUMNS; c++)
			if ((int)strlen(cell[c]) > width[c])
				width[c] = (int)strlen(cell[c]);
	}
	for (int c = 0; c < COLUMNS - 1; c++)
		printf("%-*s  ", width[c], head[c]);
	printf("%s\n", head[COLUMNS - 1]);
	for (size_t i = 0; i < n; i++) {
		table_cells(&a[i], cell);
		for (int c = 0; c < COLUMNS - 1; c++)
			printf("%-*s  ", width[c], cell[c]);
		printf("%s\n", cell[COLUMNS - 1]);
	}
}

static void json_time(cJSON *o, const char *key, int64_t ms)
{
	struct strbuf t = {0};

	strbuf_time(&t, ms, "");
	if (ms > 0 && !t.failed)
		cJSON_AddStringToObject(o, key, t.data);
	else
		cJSON_AddNullToObject(o, key);
	strbuf_free(&t);
}

/* The alerts as a JSON array; NULL when out of memory. */
static char *json_alerts(const struct store_alert_status *a, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	char *text = NULL;

	for (size_t i = 0; arr && i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL || !cJSON_AddItemToArray(arr, o))
			goto out;
		cJSON_AddStringToObject(o, "name", a[i].name);
		cJSON_AddStringToObject(o, "state", rules_level_name(a[i].state));
		if (a[i].has_value)
			cJSON_AddNumberToObject(o, "last_value", a[i].last_value);
		else
			cJSON_AddNullToObject(o, "last_value");
		json_time(o, "last_eval", a[i].last_eval);
		json_time(o, "next_eval", a[i].next_eval);
		json_time(o, "last_notified", a[i].last_notified);
		cJSON_AddNumberToObject(o, "failures", (double)a[i].failures);
		cJSON_AddNumberToObject(o, "pending_calls", (double)a[i].pending);
		if (a[i].last_error)
			cJSON_AddStringToObject(o, "last_error", a[i].last_error);
		else
			cJSON_AddNullToObject(o, "last_error");
		cJSON_AddBoolToObject(o, "retired", a[i].retired);
	}
	text = cJSON_PrintUnformatted(arr);
out:
	cJSON_Delete(arr);
	return text;
}

static const char status_usage[] =
	"usage: alert-exec status [--db PATH] [--json]\n"
	"\n"
	"Prints every alert of the database, firing first, and a line of outbox\n"
	"totals; reads the database only, beside a running daemon or without one.\n"
	"\n"
	"  --db PATH   database file (default ./alert-exec.db)\n"
	"  --json      the alerts as a JSON array on stdout (the totals line goes to stderr)\n"
	"  -h, --help  this text\n";

/* Parses the command's options: 0 to run, 1 after --help, -1 on a usage
 * error (printed). */
static int status_options(int argc, char **argv, const char **db, int *json)
{
	static const struct option longopts[] = {
		{"db", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'd' && *optarg) {
			*db = optarg;
		} else if (c == 'j') {
			*json = 1;
		} else if (c == 'h') {
			fputs(status_usage, stdout);
			return 1;
		} else {
			fprintf(stderr, "alert-exec status: %s %s (see --help)\n",
				c == ':'   ? "needs a value:"
				: c == 'd' ? "empty path:"
					   : "bad option",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "alert-exec status: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

int status_main(int argc, char **argv)
{
	const char *db = "./alert-exec.db";
	struct store_reader *r = NULL;
	struct store_alert_status *a = NULL;
	struct store_outbox_totals t;
	size_t n = 0, total = 0;
	char err[600], *text = NULL;
	int json = 0, rc = status_options(argc, argv, &db, &json);
	int64_t now = clock_wall_ms();

	if (rc != 0)
		return rc > 0 ? ENGINE_EXIT_OK : ENGINE_EXIT_USAGE;
	if (store_reader_open(db, &r, err, sizeof(err)) != 0 ||
	    store_read_alerts(r, (size_t)-1, &a, &n, &total, err, sizeof(err)) != 0 ||
	    store_read_outbox_totals(r, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "alert-exec status: %s\n", err);
		rc = ENGINE_EXIT_DB;
		goto out;
	}
	if (json && (text = json_alerts(a, n)) == NULL) {
		fprintf(stderr, "alert-exec status: out of memory\n");
		rc = ENGINE_EXIT_OSERR;
		goto out;
	}
	if (json)
		printf("%s\n", text);
	else
		print_table(a, n);
	fprintf(json ? stderr : stdout, "outbox: pending=%lld dead=%lld oldest_pending_age=%.1fs\n",
		(long long)t.pending, (long long)t.dead,
		t.oldest_created > 0 && now > t.oldest_created
			? (double)(now - t.oldest_created) / 1e3
			: 0.0);
	rc = ENGINE_EXIT_OK;
out:
	free(text);
	store_alert_status_free(a, n);
	store_reader_close(r);
	return rc;
}
