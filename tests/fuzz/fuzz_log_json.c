/*
 * libFuzzer target for log_json_line(): the free text and values of a log
 * line carry what the server sent (names, queries, messages, errors). Two
 * kinds of line are made of the input: the input as the text after the
 * head, and the input as a value written by log_quote. Either way the
 * output must be one JSON object on one line with time, level and msg
 * first and only string members; a value of printable ASCII must come
 * back unchanged. The checks are explicit ifs: they hold in NDEBUG
 * builds too.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD "2026-11-27T19:07:38.951Z WARN "
#define LINE_MAX_LEN 4095 /* log_msg's longest line but its newline */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_log_json: invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Converts line and checks the object; returns it (cJSON_Delete). */
static cJSON *convert(const char *line, size_t len)
{
	static char out[LOG_JSON_MAX(LINE_MAX_LEN) + 1];
	const char *head[] = {"time", "level", "msg"};
	size_t n = log_json_line(out, sizeof(out), line, len);
	const cJSON *m;
	cJSON *obj;
	int i = 0;

	if (n != strlen(out) || memchr(out, '\n', n) != NULL)
		fail("length %zu, strlen %zu, or a raw newline", n, strlen(out));
	obj = cJSON_ParseWithLength(out, n);
	if (!cJSON_IsObject(obj))
		fail("not a JSON object: %s", out);
	cJSON_ArrayForEach(m, obj)
	{
		if (!cJSON_IsString(m))
			fail("member %s is not a string: %s", m->string, out);
		if (i < 3 && strcmp(m->string, head[i]) != 0)
			fail("member %d is %s, not %s: %s", i, m->string, head[i], out);
		i++;
	}
	if (i < 3)
		fail("fewer than 3 members: %s", out);
	return obj;
}

static int printable_ascii(const char *s)
{
	for (; *s; s++)
		if (*s < ' ' || *s > '~')
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[LINE_MAX_LEN + 1];
	static char text[LINE_MAX_LEN + 1];
	static char quoted[LINE_MAX_LEN];
	size_t len = 0;
	const cJSON *v;
	cJSON *obj;

	/* A log line never holds a NUL: vsnprintf stops a %s at one. */
	for (size_t i = 0; i < size && len < sizeof(text) - 1 - strlen(HEAD); i++)
		if (data[i] != 0)
			text[len++] = (char)data[i];
	text[len] = '\0';

	len = (size_t)snprintf(line, sizeof(line), HEAD "%s", text);
	cJSON_Delete(convert(line, len < sizeof(line) ? len : sizeof(line) - 1));

	if (strlen(text) > 900)
		return 0; /* room for the quoted value: no truncation */
	len = (size_t)snprintf(line, sizeof(line), HEAD "query failed alert=%s k=1",
			       log_quote(quoted, sizeof(quoted), text));
	obj = convert(line, len);
	v = cJSON_GetObjectItemCaseSensitive(obj, "alert");
	if (!cJSON_IsString(v))
		fail("no alert member: %s", line);
	if (printable_ascii(text) && strcmp(v->valuestring, text) != 0)
		fail("alert %s came back as %s", text, v->valuestring);
	cJSON_Delete(obj);
	return 0;
}
