/*
 * libFuzzer target for alerts_parse(): the /alerts body comes from the
 * server and is untrusted. Besides what the sanitizers catch, every result
 * is checked against the contract in alerts.h; a broken invariant aborts, so
 * libFuzzer saves the input. The checks are explicit ifs, not assert():
 * they must hold in NDEBUG builds too.
 *
 * The kept definitions are also checked against the body as cJSON reads
 * it: they are entries of the top-level array, in array order, with the
 * same strings and times.
 */

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alerts.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MS (ALERTS_MAX_SECS * 1000)

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_alerts: invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Strict UTF-8, written apart from json.c's so that the two check each
 * other: the shortest form only, no surrogates, nothing above U+10FFFF. */
static int is_utf8(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (s[i] != '\0') {
		unsigned char c = s[i];
		unsigned char lo = 0x80;
		unsigned char hi = 0xbf;
		size_t more;

		if (c <= 0x7f) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0;      /* overlong */
			else if (c == 0xed)
				hi = 0x9f;      /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90;      /* overlong */
			else if (c == 0xf4)
				hi = 0x8f;      /* above U+10FFFF */
		} else {
			return 0;
		}
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t k = 2; k <= more; k++) {
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		}
		i += more + 1;
	}
	return 1;
}

static void check_text(size_t i, const char *field, const char *s,
		       size_t max, int nonempty)
{
	size_t len;

	if (s == NULL)
		fail("def %zu: %s is NULL", i, field);
	len = strlen(s);
	if (nonempty && len == 0)
		fail("def %zu: %s is empty", i, field);
	if (len > max)
		fail("def %zu: %s is %zu bytes, over %zu", i, field, len, max);
	if (!is_utf8(s))
		fail("def %zu: %s is not valid UTF-8", i, field);
}

static void check_ms(size_t i, const char *field, int64_t ms, int64_t min)
{
	if (ms < min || ms > MAX_MS)
		fail("def %zu: %s %lld out of [%lld, %lld]", i, field,
		     (long long)ms, (long long)min, (long long)MAX_MS);
	if (ms % 1000 != 0)
		fail("def %zu: %s %lld is not whole seconds", i, field,
		     (long long)ms);
}

/* The contract of one kept definition, on its own. */
static void check_def(size_t i, const struct alert_def *d)
{
	check_text(i, "name", d->name, ALERTS_MAX_NAME, 1);
	for (const char *p = d->name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			fail("def %zu: name has control byte 0x%02x", i, c);
	}
	check_text(i, "query", d->query, ALERTS_MAX_QUERY, 1);
	check_text(i, "warn.message", d->warn_message, ALERTS_MAX_MESSAGE, 0);
	check_text(i, "critical.message", d->crit_message, ALERTS_MAX_MESSAGE, 0);
	check_ms(i, "interval_ms", d->interval_ms, 1);
	check_ms(i, "repeat_ms", d->repeat_ms, 1);
	check_ms(i, "sustain_ms", d->sustain_ms, 0);
	if (!isfinite(d->warn_value) || !isfinite(d->crit_value))
		fail("def %zu: threshold not finite (%g, %g)", i, d->warn_value,
		     d->crit_value);
}

static const char *string_member(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static double number_member(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

static int same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Does entry (an element of the body's array) say what def says? */
static int entry_matches(const cJSON *entry, const struct alert_def *d)
{
	const cJSON *warn = cJSON_GetObjectItemCaseSensitive(entry, "warn");
	const cJSON *crit = cJSON_GetObjectItemCaseSensitive(entry, "critical");

	return cJSON_IsObject(entry) &&
	       same(string_member(entry, "name"), d->name) &&
	       same(string_member(entry, "query"), d->query) &&
	       number_member(entry, "intervalSecs") * 1000 ==
		       (double)d->interval_ms &&
	       same(string_member(warn, "message"), d->warn_message) &&
	       number_member(warn, "value") == d->warn_value &&
	       same(string_member(crit, "message"), d->crit_message) &&
	       number_member(crit, "value") == d->crit_value;
}

/* The kept definitions are a subsequence of the body's array. */
static void check_against_body(const uint8_t *data, size_t size,
			       const struct alert_def *defs, size_t n)
{
	char *copy = malloc(size + 1);
	cJSON *root = NULL;
	const cJSON *entry = NULL;

	if (copy == NULL)
		return;
	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';
	root = cJSON_ParseWithLength(copy, size);
	if (!cJSON_IsArray(root))
		fail("accepted a body that cJSON does not read as an array");
	entry = root->child;
	for (size_t i = 0; i < n; i++) {
		while (entry != NULL && !entry_matches(entry, &defs[i]))
			entry = entry->next;
		if (entry == NULL)
			fail("def %zu (%s) matches no entry of the body after "
			     "the previous def's", i, defs[i].name);
		entry = entry->next;
	}
	cJSON_Delete(root);
	free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Every skipped entry logs a warning: far too much noise. */
	log_set_level(LOG_CRITICAL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alert_def *defs = NULL;
	size_t n = 12345;
	char err[256];
	int rc;

	memset(err, 'x', sizeof(err));
	err[0] = '\0';
	rc = alerts_parse((const char *)data, size, &defs, &n, err, sizeof(err));
	if (rc == 0) {
		if (defs == NULL)
			fail("success with defs NULL");
		for (size_t i = 0; i < n; i++)
			check_def(i, &defs[i]);
		/* Names are unique. Quadratic, but max_len keeps n small. */
		for (size_t i = 0; i < n; i++) {
			for (size_t j = i + 1; j < n; j++) {
				if (strcmp(defs[i].name, defs[j].name) == 0)
					fail("defs %zu and %zu share name %s",
					     i, j, defs[i].name);
			}
		}
		check_against_body(data, size, defs, n);
	} else if (rc == -1) {
		if (defs != NULL || n != 0)
			fail("failure with defs %p, n %zu", (void *)defs, n);
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			fail("failure without a terminated message");
		if (strncmp(err, "alerts: ", 8) != 0)
			fail("message does not start with \"alerts: \": %s", err);
	} else {
		fail("returned %d", rc);
	}
	alert_defs_free(defs, n);
	return 0;
}
