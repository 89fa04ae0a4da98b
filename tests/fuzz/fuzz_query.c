/*
 * libFuzzer target for alerts_parse_value(): the /query body comes from the
 * server and is untrusted. Besides what the sanitizers catch, the result
 * is checked against the contract in alerts.h; a broken invariant aborts, so
 * libFuzzer saves the input. The checks are explicit ifs, not assert():
 * they must hold in NDEBUG builds too.
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

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_query: invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* The value is the body's "value" member as cJSON reads it. */
static void check_against_body(const uint8_t *data, size_t size, double value)
{
	char *copy = malloc(size + 1);
	cJSON *root = NULL;
	const cJSON *v = NULL;

	if (copy == NULL)
		return;
	if (size > 0)
		memcpy(copy, data, size);
	copy[size] = '\0';
	root = cJSON_ParseWithLength(copy, size);
	if (!cJSON_IsObject(root))
		fail("accepted a body that cJSON does not read as an object");
	v = cJSON_GetObjectItemCaseSensitive(root, "value");
	if (!cJSON_IsNumber(v) || v->valuedouble != value)
		fail("value %.17g is not the body's \"value\"", value);
	cJSON_Delete(root);
	free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_CRITICAL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	double value = 0;
	char err[256];
	int rc;

	memset(err, 'x', sizeof(err));
	err[0] = '\0';
	rc = alerts_parse_value((const char *)data, size, &value, err, sizeof(err));
	if (rc == 0) {
		if (!isfinite(value))
			fail("value %g is not finite", value);
		check_against_body(data, size, value);
	} else if (rc == -1) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			fail("failure without a terminated message");
	} else {
		fail("returned %d", rc);
	}
	return 0;
}
