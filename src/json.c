#include "json.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

const char *json_type(const cJSON *j)
{
	if (cJSON_IsObject(j))
		return "an object";
	if (cJSON_IsArray(j))
		return "an array";
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsNumber(j))
		return "a number";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsNull(j))
		return "null";
	return "invalid";
}

int json_utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s != '\0') {
		unsigned long cp;
		unsigned long min;
		size_t more;

		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0) {
			more = 1;
			cp = *s & 0x1f;
			min = 0x80;
		} else if ((*s & 0xf0) == 0xe0) {
			more = 2;
			cp = *s & 0x0f;
			min = 0x800;
		} else if ((*s & 0xf8) == 0xf0) {
			more = 3;
			cp = *s & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		/* A NUL fails the continuation test, so this stops at the end. */
		for (size_t i = 1; i <= more; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += more + 1;
	}
	return 1;
}

int json_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

const char *json_snippet(char *out, size_t outlen, const char *body, size_t len)
{
	char head[41];
	size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;

	memcpy(head, body, n);
	head[n] = '\0';
	return log_quote(out, outlen, head);
}

int json_raw_control(const char *b, size_t len)
{
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)b[i];

		if (!in_string) {
			in_string = c == '"';
			continue;
		}
		if (c == '\\' && i + 1 < len) {
			c = (unsigned char)b[++i]; /* the escaped character */
			if (c < 0x20)
				return c;
		} else if (c == '"') {
			in_string = 0;
		} else if (c < 0x20) {
			return c;
		}
	}
	return -1;
}

int json_has_nul_escape(const char *body, size_t len)
{
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		if (!in_string) {
			in_string = body[i] == '"';
			continue;
		}
		if (body[i] == '"') {
			in_string = 0;
		} else if (body[i] == '\\' && i + 1 < len) {
			if (body[i + 1] == 'u' && len - i >= 6 &&
			    memcmp(body + i + 2, "0000", 4) == 0)
				return 1;
			i++; /* the escaped character */
		}
	}
	return 0;
}

cJSON *json_parse(const char *body, size_t len, char *why, size_t whylen)
{
	const char *end = NULL;
	cJSON *root = NULL;
	char snip[64];
	int c;

	assert(body[len] == '\0');
	assert(why != NULL && whylen > 0);
	if (len == 0) {
		snprintf(why, whylen, "body is empty");
		return NULL;
	}
	c = json_raw_control(body, len);
	if (c >= 0) {
		snprintf(why, whylen,
			 "body is not JSON (a string holds the raw control byte "
			 "0x%02x)",
			 (unsigned)c);
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root != NULL) {
		for (; end < body + len; end++) {
			if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')
				break;
		}
		if (end == body + len)
			return root;
		cJSON_Delete(root);
		root = NULL;
	}
	snprintf(why, whylen, "body is not JSON (starts with %s)",
		 json_snippet(snip, sizeof(snip), body, len));
	return NULL;
}

char *json_copy(const char *body, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	if (len > 0)
		memcpy(copy, body, len);
	copy[len] = '\0';
	return copy;
}

/* cJSON's whitespace: every byte up to ' ', NUL included. */
static size_t skip_space(const char *b, size_t i, size_t len)
{
	while (i < len && (unsigned char)b[i] <= ' ')
		i++;
	return i;
}

size_t json_array_start(const char *body, size_t len)
{
	size_t i = 0;

	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	i = skip_space(body, i, len);
	return i < len && body[i] == '[' ? i + 1 : 0;
}

/* End (exclusive) of the JSON value starting at b[i], found by its
 * strings and brackets (cJSON validates it). SIZE_MAX when it does not
 * end before len or nests deeper than cJSON accepts inside an array. */
static size_t value_end(const char *b, size_t i, size_t len)
{
	size_t depth = 0;

	if (b[i] != '{' && b[i] != '[' && b[i] != '"') {
		while (i < len && b[i] != ',' && b[i] != ']' && (unsigned char)b[i] > ' ')
			i++;
		return i;
	}
	for (; i < len; i++) {
		if (b[i] == '"') {
			for (i++; i < len && b[i] != '"'; i++)
				if (b[i] == '\\')
					i++;
			if (i >= len)
				return SIZE_MAX;
			if (depth == 0)
				return i + 1;
		} else if (b[i] == '{' || b[i] == '[') {
			/* The enclosing array is one level of cJSON's limit. */
			if (++depth >= CJSON_NESTING_LIMIT)
				return SIZE_MAX;
		} else if (b[i] == '}' || b[i] == ']') {
			if (--depth == 0)
				return i + 1;
		}
	}
	return SIZE_MAX;
}

int json_for_each_element(const char *body, size_t len, size_t open, json_element_fn fn, void *arg)
{
	size_t i = skip_space(body, open, len);

	if (i < len && body[i] == ']') {
		i++;
		goto tail;
	}
	for (;;) {
		const char *end = NULL;
		cJSON *item = NULL;
		size_t stop;
		int rc;

		if (i >= len || body[i] == '\0' || strchr("{[\"-0123456789tfn", body[i]) == NULL)
			return -1;
		stop = value_end(body, i, len);
		if (stop == SIZE_MAX)
			return -1;
		item = cJSON_ParseWithLengthOpts(body + i, stop - i, &end, 0);
		if (item == NULL || end != body + stop) {
			cJSON_Delete(item);
			return -1;
		}
		rc = fn(item, body + i, stop - i, arg);
		cJSON_Delete(item);
		if (rc != 0)
			return rc;
		i = skip_space(body, stop, len);
		if (i < len && body[i] == ',') {
			i = skip_space(body, i + 1, len);
			continue;
		}
		if (i < len && body[i] == ']') {
			i++;
			break;
		}
		return -1;
	}
tail:
	for (; i < len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' && body[i] != '\r')
			return -1;
	return 0;
}
