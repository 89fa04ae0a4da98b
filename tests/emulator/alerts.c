#include "alerts.h"

#include "file.h"
#include "strmap.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROFILE_COUNT 1000000L
#define DEFAULT_REPEAT_SECS 300

const char *level_name(enum level l)
{
	switch (l) {
	case LEVEL_WARN: return "WARN";
	case LEVEL_CRITICAL: return "CRITICAL";
	default: return "PASS";
	}
}

enum level alerts_level(const struct alert *a, double v)
{
	assert(a != NULL);
	if (v > a->critical_value)
		return LEVEL_CRITICAL;
	if (v > a->warn_value)
		return LEVEL_WARN;
	return LEVEL_PASS;
}

const char *alerts_message(const struct alert *a, enum level l)
{
	assert(a != NULL && l != LEVEL_PASS);
	return l == LEVEL_CRITICAL ? a->critical_message : a->warn_message;
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void alert_clear(struct alert *al)
{
	free(al->name);
	free(al->query);
	free(al->warn_message);
	free(al->critical_message);
}

void alerts_free(struct alerts *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->count; i++)
		alert_clear(&a->items[i]);
	free(a->items);
	free(a->body);
	strmap_free(a->by_name);
	strmap_free(a->by_query);
	free(a);
}

int alerts_by_name(const struct alerts *a, const char *name)
{
	return strmap_get(a->by_name, name);
}

int alerts_by_query(const struct alerts *a, const char *query)
{
	return strmap_get(a->by_query, query);
}

/* Builds the name and query indexes over a->items; each query chain lists
 * its alerts in file order. Duplicate names were filtered out by the
 * callers. Returns 0 or -1 (out of memory). */
static int build_index(struct alerts *a)
{
	int *tail = NULL;
	size_t i;
	int rc = -1;

	a->by_name = strmap_new(a->count);
	a->by_query = strmap_new(a->count);
	tail = malloc((a->count + 1) * sizeof(*tail));
	if (a->by_name == NULL || a->by_query == NULL || tail == NULL)
		goto out;
	for (i = 0; i < a->count; i++) {
		struct alert *al = &a->items[i];
		int head = strmap_get(a->by_query, al->query);

		al->next_same_query = -1;
		if (strmap_put(a->by_name, al->name, (int)i) < 0)
			goto out;
		if (head < 0) {
			if (strmap_put(a->by_query, al->query, (int)i) < 0)
				goto out;
			tail[i] = (int)i;
		} else {
			a->items[tail[head]].next_same_query = (int)i;
			tail[head] = (int)i;
		}
	}
	rc = 0;
out:
	free(tail);
	return rc;
}

static int append_alert_json(struct buf *b, const struct alert *al)
{
	buf_puts(b, "{\"name\":");
	buf_json_string(b, al->name, strlen(al->name));
	buf_puts(b, ",\"query\":");
	buf_json_string(b, al->query, strlen(al->query));
	buf_printf(b,
		   ",\"intervalSecs\":%ld,\"repeatIntervalSecs\":%ld,"
		   "\"sustainSecs\":%ld,\"warn\":{\"value\":%.0f,\"message\":",
		   al->interval_secs, al->repeat_secs, al->sustain_secs,
		   al->warn_value);
	buf_json_string(b, al->warn_message, strlen(al->warn_message));
	buf_printf(b, "},\"critical\":{\"value\":%.0f,\"message\":",
		   al->critical_value);
	buf_json_string(b, al->critical_message, strlen(al->critical_message));
	return buf_puts(b, "}}");
}

int alerts_profile(struct alerts **out, const char *profile, long count,
		   char *err, size_t errlen)
{
	struct alerts *a = NULL;
	struct buf body;
	int latest;
	long i;
	int rc = -1;

	buf_init(&body);
	*out = NULL;
	if (strcmp(profile, "v2") == 0) {
		latest = 0;
	} else if (strcmp(profile, "latest") == 0) {
		latest = 1;
	} else {
		fmt_err(err, errlen,
			"unknown profile \"%s\" (expected v2 or latest)", profile);
		goto out;
	}
	if (count < 1 || count > MAX_PROFILE_COUNT) {
		fmt_err(err, errlen, "count out of range: %ld (1..%ld)", count,
			MAX_PROFILE_COUNT);
		goto out;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto oom;
	a->items = calloc((size_t)count, sizeof(*a->items));
	if (a->items == NULL)
		goto oom;
	buf_puts(&body, "[");
	for (i = 1; i <= count; i++) {
		struct alert *al = &a->items[i - 1];
		char text[64];

		a->count++;
		snprintf(text, sizeof(text), "alert-%ld", i);
		al->name = dup_str(text);
		snprintf(text, sizeof(text), "test-query-%ld", i);
		al->query = dup_str(text);
		al->interval_secs = latest ? 30 : 15;
		al->repeat_secs = latest ? 300 : 100;
		al->sustain_secs = 0;
		al->warn_value = 100;
		al->critical_value = 200;
		if (latest)
			snprintf(text, sizeof(text), "alert-%ld-warning", i);
		al->warn_message = dup_str(latest ? text : "warning");
		if (latest)
			snprintf(text, sizeof(text), "alert-%ld-critical", i);
		al->critical_message = dup_str(latest ? text : "critical");
		if (al->name == NULL || al->query == NULL ||
		    al->warn_message == NULL || al->critical_message == NULL)
			goto oom;
		if (i > 1)
			buf_puts(&body, ",");
		append_alert_json(&body, al);
	}
	if (buf_puts(&body, "]") != 0)
		goto oom;
	a->body_len = body.len;
	a->body = buf_take(&body);
	if (build_index(a) != 0)
		goto oom;
	*out = a;
	a = NULL;
	rc = 0;
	goto out;
oom:
	fmt_err(err, errlen, "profile %s: out of memory", profile);
out:
	buf_free(&body);
	alerts_free(a);
	return rc;
}

/* Reads the integral number o[key] into *v. A missing or null member gives
 * *v = dflt when optional, else an error. Returns 0 or -1 with why. */
static int get_integer(const cJSON *o, const char *key, int optional,
		       long dflt, long *v, char *why, size_t whylen)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
	double d;

	if (m == NULL || cJSON_IsNull(m)) {
		if (optional) {
			*v = dflt;
			return 0;
		}
		fmt_err(why, whylen, "%s is missing", key);
		return -1;
	}
	if (!cJSON_IsNumber(m)) {
		fmt_err(why, whylen, "%s is not a number", key);
		return -1;
	}
	d = m->valuedouble;
	if (d != floor(d) || d < -1e9 || d > 1e9) {
		fmt_err(why, whylen, "%s is not an integer", key);
		return -1;
	}
	*v = (long)d;
	return 0;
}

static int get_string(const cJSON *o, const char *key, const char *where,
		      char **v, char *why, size_t whylen)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);

	if (m == NULL) {
		fmt_err(why, whylen, "%s%s is missing", where, key);
		return -1;
	}
	if (!cJSON_IsString(m)) {
		fmt_err(why, whylen, "%s%s is not a string", where, key);
		return -1;
	}
	*v = dup_str(m->valuestring);
	if (*v == NULL) {
		fmt_err(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

static int get_threshold(const cJSON *o, const char *key, double *value,
			 char **message, char *why, size_t whylen)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, key);
	const cJSON *v;
	char where[32];

	if (!cJSON_IsObject(t)) {
		fmt_err(why, whylen, "%s is %s", key,
			t == NULL ? "missing" : "not an object");
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(t, "value");
	if (!cJSON_IsNumber(v)) {
		fmt_err(why, whylen, "%s.value is %s", key,
			v == NULL ? "missing" : "not a number");
		return -1;
	}
	*value = v->valuedouble;
	snprintf(where, sizeof(where), "%s.", key);
	return get_string(t, "message", where, message, why, whylen);
}

/* Understands one entry of an alerts file. Returns 0, or -1 with the
 * reason in why; al is filled as far as it got (alert_clear releases). */
static int parse_entry(const cJSON *e, struct alert *al, char *why,
		       size_t whylen)
{
	if (!cJSON_IsObject(e)) {
		fmt_err(why, whylen, "not an object");
		return -1;
	}
	if (get_string(e, "name", "", &al->name, why, whylen) != 0 ||
	    get_string(e, "query", "", &al->query, why, whylen) != 0)
		return -1;
	if (al->name[0] == '\0') {
		fmt_err(why, whylen, "name is empty");
		return -1;
	}
	if (al->query[0] == '\0') {
		fmt_err(why, whylen, "query is empty");
		return -1;
	}
	if (get_integer(e, "intervalSecs", 0, 0, &al->interval_secs, why,
			whylen) != 0)
		return -1;
	if (al->interval_secs <= 0) {
		fmt_err(why, whylen, "intervalSecs is not positive");
		return -1;
	}
	if (get_integer(e, "repeatIntervalSecs", 1, DEFAULT_REPEAT_SECS,
			&al->repeat_secs, why, whylen) != 0)
		return -1;
	if (al->repeat_secs <= 0)
		al->repeat_secs = DEFAULT_REPEAT_SECS;
	if (get_integer(e, "sustainSecs", 1, 0, &al->sustain_secs, why,
			whylen) != 0)
		return -1;
	if (al->sustain_secs < 0) {
		fmt_err(why, whylen, "sustainSecs is negative");
		return -1;
	}
	if (get_threshold(e, "warn", &al->warn_value, &al->warn_message, why,
			  whylen) != 0 ||
	    get_threshold(e, "critical", &al->critical_value,
			  &al->critical_message, why, whylen) != 0)
		return -1;
	return 0;
}

int alerts_parse(struct alerts **out, const char *label, const char *data,
		 size_t len, struct buf *warnings, char *err, size_t errlen)
{
	struct alerts *a = NULL;
	cJSON *root = NULL;
	const cJSON *e;
	size_t n;
	size_t entry = 0;
	int rc = FILE_ERR_CONTENT;

	*out = NULL;
	root = cJSON_ParseWithLength(data, len);
	if (root == NULL) {
		fmt_err(err, errlen, "alerts %s: not valid JSON", label);
		goto out;
	}
	if (!cJSON_IsArray(root)) {
		fmt_err(err, errlen, "alerts %s: not a JSON array", label);
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(root);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		goto oom;
	a->items = calloc(n + 1, sizeof(*a->items));
	a->body = malloc(len + 1);
	if (a->items == NULL || a->body == NULL)
		goto oom;
	memcpy(a->body, data, len);
	a->body[len] = '\0';
	a->body_len = len;
	a->by_name = strmap_new(n);
	if (a->by_name == NULL)
		goto oom;
	cJSON_ArrayForEach(e, root) {
		struct alert *al = &a->items[a->count];
		char why[256];
		int dup;

		entry++;
		memset(al, 0, sizeof(*al));
		if (parse_entry(e, al, why, sizeof(why)) != 0) {
			alert_clear(al);
			if (warnings != NULL)
				buf_printf(warnings,
					   "alerts %s: entry %zu ignored: %s\n",
					   label, entry, why);
			continue;
		}
		dup = strmap_put(a->by_name, al->name, (int)a->count);
		if (dup < 0) {
			alert_clear(al);
			goto oom;
		}
		if (dup > 0) {
			if (warnings != NULL)
				buf_printf(warnings,
					   "alerts %s: entry %zu ignored: "
					   "duplicate name \"%s\"\n",
					   label, entry, al->name);
			alert_clear(al);
			continue;
		}
		a->count++;
	}
	/* by_name was only used to find duplicates; build_index redoes it. */
	strmap_free(a->by_name);
	a->by_name = NULL;
	if (build_index(a) != 0)
		goto oom;
	*out = a;
	a = NULL;
	rc = 0;
	goto out;
oom:
	fmt_err(err, errlen, "alerts %s: out of memory", label);
out:
	cJSON_Delete(root);
	alerts_free(a);
	return rc;
}

int alerts_load(struct alerts **out, const char *path, struct buf *warnings,
		char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = file_read(path, &data, &len, err, errlen);
	if (rc == 0)
		rc = alerts_parse(out, path, data, len, warnings, err, errlen);
	free(data);
	return rc;
}
