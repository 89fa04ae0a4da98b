#include "api.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "log.h"

#ifndef ALERT_EXEC_VERSION
#define ALERT_EXEC_VERSION "unknown"
#endif

/* Seconds used when repeatIntervalSecs is missing or <= 0 (DESIGN.md 1). */
#define DEFAULT_REPEAT_SECS 300
/* Size of the response buffer a new client starts with. */
#define INITIAL_BUF 4096
/* Room for a quoted target or name in an error message. */
#define WHAT_MAX 160

struct api {
	CURL *curl;
	struct curl_slist *json_headers; /* Content-Type, empty Expect */
	char *base_url;                  /* without trailing '/' */
	size_t base_len;
	int attempts;
	const atomic_int *stop;
	int cut_on_stop;                 /* the stop flag ends the transfer in flight */
	int64_t retry_after_ms;          /* Retry-After of the last answer, 0: none */
	int maybe_sent;                  /* the last attempt failed after the request
					  * may have reached the server */
	size_t alerts_max_body;
	char **skipped;                  /* invalid entries of the last /alerts */
	size_t nskipped;

	char *url;                       /* reused: base + path + query */
	size_t url_cap;

	/* The response body of the current transfer, NUL-terminated. The
	 * buffer is kept between calls; it grows up to the largest cap used. */
	char *buf;
	size_t len;
	size_t cap;
	size_t limit;                    /* body cap of this transfer */
	int keep_body;                   /* 0: the body is counted, not kept */
	int over;                        /* the body went over limit */
	int oom;                         /* growing buf failed */
	char curl_err[CURL_ERROR_SIZE];
};

struct request;

/* Validates a 2xx body in api->buf; 0, or -1 with a message in err. */
typedef int (*body_check)(struct api *api, const struct request *req,
			  char *err, size_t errlen);

struct request {
	const char *what;      /* context of messages: "alerts", "query x" */
	const char *path;      /* "/alerts" ... */
	const char *target;    /* for /query: appended URL-encoded, else NULL */
	const char *post;      /* JSON body of a POST, NULL for GET */
	size_t limit;          /* body cap; 0: the body is discarded */
	body_check check;      /* NULL: any 2xx body is fine */
	void *ctx;             /* for check */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Appends to the message already in err. */
static void append_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	if (err == NULL || errlen == 0)
		return;
	used = strnlen(err, errlen);
	if (used + 1 >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

/* ---- validation helpers ------------------------------------------------ */

static const char *json_type(const cJSON *j)
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

/* Strict UTF-8: no overlong forms, surrogates or code points over
 * U+10FFFF. The strings are sent back to the server in JSON and stored. */
static int utf8_valid(const char *str)
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

static int has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

/* Writes a short, quoted start of body into out, for error messages. */
static const char *snippet(char *out, size_t outlen, const char *body,
			   size_t len)
{
	char head[41];
	size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;

	memcpy(head, body, n);
	head[n] = '\0';
	return log_quote(out, outlen, head);
}

/* The first raw byte below 0x20 inside a string of the JSON text
 * b[0..len), or -1 when there is none. RFC 8259 forbids them, but cJSON
 * copies them into the string: a raw NUL would end the C string there
 * and "alert-x<NUL>evil" would read as alert-x. */
static int raw_control(const char *b, size_t len)
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

/* Parses body[0..len) as one JSON value with nothing but whitespace after
 * it. body[len] must be '\0': cJSON before 1.7.16 reads one byte past
 * the given length on a string that ends in a backslash (CVE-2023-53154;
 * Debian patched it, other builds may not have). Returns NULL
 * with the reason in why. (cJSON does not tell running out of memory from
 * bad input: both read "not JSON".) */
static cJSON *parse_json(const char *body, size_t len, char *why,
			 size_t whylen)
{
	const char *end = NULL;
	cJSON *root = NULL;
	char snip[64];
	int c;

	assert(body[len] == '\0');
	if (len == 0) {
		set_err(why, whylen, "body is empty");
		return NULL;
	}
	c = raw_control(body, len);
	if (c >= 0) {
		set_err(why, whylen, "body is not JSON (a string holds the raw control byte "
			"0x%02x)", (unsigned)c);
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root != NULL) {
		for (; end < body + len; end++) {
			if (*end != ' ' && *end != '\t' && *end != '\n' &&
			    *end != '\r')
				break;
		}
		if (end == body + len)
			return root;
		cJSON_Delete(root);
		root = NULL;
	}
	set_err(why, whylen, "body is not JSON (starts with %s)",
		snippet(snip, sizeof(snip), body, len));
	return NULL;
}

/* Copies body into a NUL-terminated buffer (see parse_json). */
static char *copy_body(const char *body, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	if (len > 0)
		memcpy(copy, body, len);
	copy[len] = '\0';
	return copy;
}

/* ---- /query body --------------------------------------------------------- */

/* body[len] == '\0'. The message is bare ("body is empty"); callers put
 * the context in front. */
static int parse_value_z(const char *body, size_t len, double *value,
			 char *err, size_t errlen)
{
	cJSON *root = NULL;
	const cJSON *v = NULL;
	int rc = -1;

	root = parse_json(body, len, err, errlen);
	if (root == NULL)
		goto out;
	if (!cJSON_IsObject(root)) {
		set_err(err, errlen, "body is not a JSON object (it is %s)",
			json_type(root));
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "value");
	if (v == NULL) {
		set_err(err, errlen, "body has no \"value\"");
		goto out;
	}
	if (!cJSON_IsNumber(v)) {
		set_err(err, errlen, "value is not a number (it is %s)",
			json_type(v));
		goto out;
	}
	/* cJSON rejects NaN/Infinity literals, but 1e999 parses to inf. */
	if (!isfinite(v->valuedouble)) {
		set_err(err, errlen, "value is not finite");
		goto out;
	}
	*value = v->valuedouble;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

int api_parse_value(const char *body, size_t len, double *value,
		    char *err, size_t errlen)
{
	char *copy = NULL;
	int rc;

	assert(body != NULL || len == 0);
	assert(value != NULL);
	copy = copy_body(len > 0 ? body : "", len);
	if (copy == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	rc = parse_value_z(copy, len, value, err, errlen);
	free(copy);
	return rc;
}

/* ---- /alerts body -------------------------------------------------------- */

#define STR_NONEMPTY 1
#define STR_NOCONTROL 2

/* Checks the string member key of obj (shown as label). Returns 0 with
 * *out borrowed from obj, or -1 with the reason in why. */
static int check_string(const cJSON *obj, const char *key, const char *label,
			size_t max, int flags, const char **out, char *why,
			size_t whylen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	size_t len;

	if (item == NULL) {
		set_err(why, whylen, "%s is missing", label);
		return -1;
	}
	if (!cJSON_IsString(item) || item->valuestring == NULL) {
		set_err(why, whylen, "%s is not a string (it is %s)", label,
			json_type(item));
		return -1;
	}
	len = strlen(item->valuestring);
	if ((flags & STR_NONEMPTY) && len == 0) {
		set_err(why, whylen, "%s is empty", label);
		return -1;
	}
	if (len > max) {
		set_err(why, whylen, "%s is longer than %zu bytes", label, max);
		return -1;
	}
	if ((flags & STR_NOCONTROL) && has_control(item->valuestring)) {
		set_err(why, whylen, "%s has a control character", label);
		return -1;
	}
	if (!utf8_valid(item->valuestring)) {
		set_err(why, whylen, "%s is not valid UTF-8", label);
		return -1;
	}
	*out = item->valuestring;
	return 0;
}

/* Checks an integer-valued number of seconds <= API_MAX_SECS (the sign
 * is the caller's business). An optional member may be missing or null.
 * A value over the limit is invalid, or, when clamped is not NULL,
 * brought down to API_MAX_SECS with *clamped set to the value sent (left
 * alone otherwise). Returns 0 with
 * *secs, 1 when an optional member is absent, or -1 with the reason in
 * why. */
static int check_secs(const cJSON *obj, const char *key, int optional,
		      double *clamped, double *secs, char *why, size_t whylen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	double d;

	if (item == NULL || (optional && cJSON_IsNull(item))) {
		if (optional)
			return 1;
		set_err(why, whylen, "%s is missing", key);
		return -1;
	}
	if (!cJSON_IsNumber(item)) {
		set_err(why, whylen, "%s is not a number (it is %s)", key,
			json_type(item));
		return -1;
	}
	d = item->valuedouble;
	if (!isfinite(d) || d != floor(d)) {
		set_err(why, whylen, "%s is not an integer (%g)", key, d);
		return -1;
	}
	if (d > (double)API_MAX_SECS && clamped != NULL) {
		*clamped = d;
		d = (double)API_MAX_SECS;
	}
	if (d > (double)API_MAX_SECS) {
		set_err(why, whylen, "%s is over %lld (%g)", key,
			(long long)API_MAX_SECS, d);
		return -1;
	}
	*secs = d;
	return 0;
}

/* Checks the level object key ("warn" / "critical"). */
static int check_level(const cJSON *entry, const char *key, double *value,
		       const char **message, char *why, size_t whylen)
{
	const cJSON *level = cJSON_GetObjectItemCaseSensitive(entry, key);
	const cJSON *v = NULL;
	char label[32];

	if (level == NULL) {
		set_err(why, whylen, "%s is missing", key);
		return -1;
	}
	if (!cJSON_IsObject(level)) {
		set_err(why, whylen, "%s is not an object (it is %s)", key,
			json_type(level));
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(level, "value");
	if (v == NULL) {
		set_err(why, whylen, "%s.value is missing", key);
		return -1;
	}
	if (!cJSON_IsNumber(v)) {
		set_err(why, whylen, "%s.value is not a number (it is %s)", key,
			json_type(v));
		return -1;
	}
	if (!isfinite(v->valuedouble)) {
		set_err(why, whylen, "%s.value is not finite", key);
		return -1;
	}
	*value = v->valuedouble;
	snprintf(label, sizeof(label), "%s.message", key);
	/* An empty message is accepted: see api.h. */
	return check_string(level, "message", label, API_MAX_MESSAGE, 0,
			    message, why, whylen);
}

/* The fields of one valid entry, borrowed from the cJSON tree. */
struct entry {
	const char *name;
	const char *query;
	double interval;
	double repeat;
	double sustain;
	double warn_value;
	const char *warn_message;
	double crit_value;
	const char *crit_message;
	double repeat_sent;     /* > API_MAX_SECS when repeat was clamped, else 0 */
	double sustain_sent;    /* likewise for sustain */
};

/* Validates one array element. On success fills *e and returns 0; on
 * failure returns -1 with the reason in why; e->name is set as soon as
 * the name is known to be usable, so that the warning can show it. */
static int check_entry(const cJSON *item, struct entry *e, char *why,
		       size_t whylen)
{
	int r;

	e->name = NULL;
	e->repeat_sent = 0;
	e->sustain_sent = 0;
	if (!cJSON_IsObject(item)) {
		set_err(why, whylen, "entry is not an object (it is %s)",
			json_type(item));
		return -1;
	}
	if (check_string(item, "name", "name", API_MAX_NAME,
			 STR_NONEMPTY | STR_NOCONTROL, &e->name, why,
			 whylen) != 0)
		return -1;
	if (check_string(item, "query", "query", API_MAX_QUERY, STR_NONEMPTY,
			 &e->query, why, whylen) != 0)
		return -1;

	if (check_secs(item, "intervalSecs", 0, NULL, &e->interval, why,
		       whylen) != 0)
		return -1;
	if (e->interval <= 0) {
		set_err(why, whylen,
			"intervalSecs is not a positive integer (%g)",
			e->interval);
		return -1;
	}

	/* A server may send a huge repeat or sustain to mean "never": the
	 * alert is kept with the longest one accepted. */
	r = check_secs(item, "repeatIntervalSecs", 1, &e->repeat_sent, &e->repeat,
		       why, whylen);
	if (r < 0)
		return -1;
	if (r > 0 || e->repeat <= 0)
		e->repeat = DEFAULT_REPEAT_SECS;

	r = check_secs(item, "sustainSecs", 1, &e->sustain_sent, &e->sustain, why,
		       whylen);
	if (r < 0)
		return -1;
	if (r > 0)
		e->sustain = 0;
	if (e->sustain < 0) {
		set_err(why, whylen, "sustainSecs is negative (%g)",
			e->sustain);
		return -1;
	}

	if (check_level(item, "warn", &e->warn_value, &e->warn_message, why,
			whylen) != 0)
		return -1;
	if (check_level(item, "critical", &e->crit_value, &e->crit_message,
			why, whylen) != 0)
		return -1;
	return 0;
}

static uint64_t hash_name(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The names accepted so far: open addressing over indexes into defs. It
 * grows with the definitions kept, not with the entries sent. */
struct name_set {
	size_t *slots;          /* index + 1 of a def, 0 = empty */
	size_t mask;
};

/* Returns the index of the def named name, or (size_t)-1 with *slot set
 * to the free slot where it belongs. */
static size_t name_set_find(const struct name_set *set,
			    const struct alert_def *defs, const char *name,
			    size_t *slot)
{
	size_t i = (size_t)hash_name(name) & set->mask;

	while (set->slots[i] != 0) {
		size_t idx = set->slots[i] - 1;

		if (strcmp(defs[idx].name, name) == 0)
			return idx;
		i = (i + 1) & set->mask;
	}
	*slot = i;
	return (size_t)-1;
}

/* Makes room for one more name beside the kept ones: the table stays at
 * most half full. 0, or -1 when out of memory (the set is unchanged). */
static int name_set_reserve(struct name_set *set, const struct alert_def *defs,
			    size_t kept)
{
	struct name_set grown;
	size_t size = set->slots != NULL ? set->mask + 1 : 8;

	if (set->slots != NULL && (kept + 1) * 2 <= size)
		return 0;
	while ((kept + 1) * 2 > size)
		size *= 2;
	grown.slots = calloc(size, sizeof(*grown.slots));
	if (grown.slots == NULL)
		return -1;
	grown.mask = size - 1;
	for (size_t idx = 0; idx < kept; idx++) {
		size_t slot = 0;

		name_set_find(&grown, defs, defs[idx].name, &slot);
		grown.slots[slot] = idx + 1;
	}
	free(set->slots);
	*set = grown;
	return 0;
}

static int def_from_entry(struct alert_def *def, const struct entry *e)
{
	memset(def, 0, sizeof(*def));
	def->name = strdup(e->name);
	def->query = strdup(e->query);
	def->warn_message = strdup(e->warn_message);
	def->crit_message = strdup(e->crit_message);
	if (def->name == NULL || def->query == NULL ||
	    def->warn_message == NULL || def->crit_message == NULL) {
		api_def_clear(def);
		return -1;
	}
	/* Every seconds value is integral and <= API_MAX_SECS: exact. */
	def->interval_ms = (int64_t)e->interval * 1000;
	def->repeat_ms = (int64_t)e->repeat * 1000;
	def->sustain_ms = (int64_t)e->sustain * 1000;
	def->warn_value = e->warn_value;
	def->crit_value = e->crit_value;
	return 0;
}

/* Whether a JSON text holds the escape \u0000 inside a string. cJSON
 * decodes it to a NUL byte, which would silently cut a name short (and
 * make "a\u0000b" the alert "a"), so such a body is refused. */
static int has_nul_escape(const char *body, size_t len)
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

/* A /alerts body is parsed one array element at a time: a cJSON tree of
 * the whole body takes about seven times the body's size (some 150 MB for
 * 100 000 alerts), one element's tree a few hundred bytes. The array's
 * own syntax is checked here the way cJSON checks it; each element is
 * parsed by cJSON. A body that does not start as an array is parsed
 * whole, for its error message. */

/* cJSON's whitespace: every byte up to ' ', NUL included. */
static size_t skip_space(const char *b, size_t i, size_t len)
{
	while (i < len && (unsigned char)b[i] <= ' ')
		i++;
	return i;
}

/* Index just after the '[' that opens body as a JSON array (after a
 * UTF-8 BOM and whitespace, as cJSON skips them), or 0 when the body does
 * not start as an array. */
static size_t array_start(const char *body, size_t len)
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

/* Called on each element: its tree and its text raw[0..rawlen). */
typedef int (*element_fn)(const cJSON *item, const char *raw, size_t rawlen, void *arg);

/* Parses the elements of the array whose '[' ends at body[open - 1] and
 * calls fn on each, in order; stops early when fn returns non-zero.
 * Returns 0, fn's non-zero result, or -1 when the body is not JSON (an
 * element, a separator, or what follows the ']' is wrong; only JSON
 * whitespace may follow the array, as parse_json allows). */
static int for_each_element(const char *body, size_t len, size_t open, element_fn fn,
			    void *arg)
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

		if (i >= len || body[i] == '\0' ||
		    strchr("{[\"-0123456789tfn", body[i]) == NULL)
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

/* Result of count_element past API_MAX_ALERTS. */
#define TOO_MANY 2

static int count_element(const cJSON *item, const char *raw, size_t rawlen, void *arg)
{
	size_t *count = arg;

	(void)item;
	(void)raw;
	(void)rawlen;
	/* A body this long is refused whole: no need to read the rest. */
	return ++*count > API_MAX_ALERTS ? TOO_MANY : 0;
}

struct alerts_parse {
	struct alert_def *list;
	size_t cap;             /* room in list */
	struct name_set names;
	size_t kept;
	size_t index;
	char **skipped;         /* names of invalid entries */
	size_t nskipped;
	size_t skipped_cap;
	int want_skipped;       /* 0: skipped names are not collected */
	size_t warnings;        /* warnings about entries, logged or not */
	size_t nskips;          /* entries skipped */
	size_t nclamps;         /* values clamped */
};

/* Logs a warning about entry index unless API_MAX_ENTRY_WARNINGS were
 * logged already: a body of a million bad entries must not write a
 * million lines at every refresh (parse_alerts_z sums up the rest). */
static void warn_entry(struct alerts_parse *p, size_t index, const char *name,
		       const char *what, const char *why)
{
	char quoted[WHAT_MAX];

	if (p->warnings++ >= API_MAX_ENTRY_WARNINGS)
		return;
	if (name != NULL)
		log_msg(LOG_WARN, "alerts: %s entry %zu (%s): %s", what, index,
			log_quote(quoted, sizeof(quoted), name), why);
	else
		log_msg(LOG_WARN, "alerts: %s entry %zu: %s", what, index, why);
}

static void warn_skip(struct alerts_parse *p, size_t index, const char *name,
		      const char *why)
{
	p->nskips++;
	warn_entry(p, index, name, "skipping", why);
}

/* Warns about each value of a kept entry that was brought down to
 * API_MAX_SECS. */
static void warn_clamps(struct alerts_parse *p, size_t index, const struct entry *e)
{
	const struct {
		const char *key;
		double sent;
	} v[] = {{"repeatIntervalSecs", e->repeat_sent}, {"sustainSecs", e->sustain_sent}};
	char why[128];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i].sent <= 0)
			continue;
		p->nclamps++;
		snprintf(why, sizeof(why), "%s %g is over %lld, using %lld", v[i].key,
			 v[i].sent, (long long)API_MAX_SECS, (long long)API_MAX_SECS);
		warn_entry(p, index, e->name, "keeping", why);
	}
}

/* Remembers the name of an invalid entry. 0, or -1 when out of memory. */
static int note_skipped(struct alerts_parse *p, const char *name)
{
	char *copy = NULL;

	if (p->nskipped == p->skipped_cap) {
		size_t cap = p->skipped_cap > 0 ? p->skipped_cap * 2 : 16;
		char **grown = realloc(p->skipped, cap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		p->skipped = grown;
		p->skipped_cap = cap;
	}
	copy = strdup(name);
	if (copy == NULL)
		return -1;
	p->skipped[p->nskipped++] = copy;
	return 0;
}

/* Makes room in p->list and p->names for one more definition. */
static int reserve_def(struct alerts_parse *p)
{
	if (p->kept == p->cap) {
		size_t cap = p->cap > 0 ? p->cap * 2 : 16;
		struct alert_def *grown = realloc(p->list, cap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		p->list = grown;
		p->cap = cap;
	}
	return name_set_reserve(&p->names, p->list, p->kept);
}

/* Keeps one valid entry, or warns and skips it. 1 when out of memory. */
static int keep_element(const cJSON *item, const char *raw, size_t rawlen, void *arg)
{
	struct alerts_parse *p = arg;
	struct entry e;
	size_t slot = 0;
	char why[256];
	size_t index = p->index++;
	int c = raw_control(raw, rawlen);

	if (c >= 0) {
		/* Which string holds it is not known: the name is not trusted. */
		snprintf(why, sizeof(why), "a string holds the raw control byte 0x%02x "
			 "(not JSON)", (unsigned)c);
		warn_skip(p, index, NULL, why);
		return 0;
	}
	if (check_entry(item, &e, why, sizeof(why)) != 0) {
		warn_skip(p, index, e.name, why);
		if (p->want_skipped && e.name != NULL && note_skipped(p, e.name) != 0)
			return 1;
		return 0;
	}
	if (reserve_def(p) != 0)
		return 1;
	if (name_set_find(&p->names, p->list, e.name, &slot) != (size_t)-1) {
		warn_skip(p, index, e.name, "name is a duplicate");
		return 0;
	}
	if (def_from_entry(&p->list[p->kept], &e) != 0)
		return 1;
	p->kept++;
	p->names.slots[slot] = p->kept; /* index + 1 */
	warn_clamps(p, index, &e);
	return 0;
}

/* Checks the whole body before a single entry is taken or warned about:
 * API_OK, or API_ERR_BODY with the message in err. */
static int check_alerts_body(const char *body, size_t len, size_t *open, char *err,
			     size_t errlen)
{
	size_t count = 0;
	char why[256];
	char snip[64];
	int rc;

	*open = array_start(body, len);
	if (*open == 0) {
		cJSON *root = parse_json(body, len, why, sizeof(why));

		if (root == NULL)
			set_err(err, errlen, "alerts: %s", why);
		else
			set_err(err, errlen, "alerts: body is not a JSON array (it is %s)",
				json_type(root));
		cJSON_Delete(root);
		return API_ERR_BODY;
	}
	rc = for_each_element(body, len, *open, count_element, &count);
	if (rc == TOO_MANY) {
		set_err(err, errlen, "alerts: body has more than %d entries", API_MAX_ALERTS);
		return API_ERR_BODY;
	}
	if (rc != 0) {
		set_err(err, errlen, "alerts: body is not JSON (starts with %s)",
			snippet(snip, sizeof(snip), body, len));
		return API_ERR_BODY;
	}
	if (has_nul_escape(body, len)) {
		set_err(err, errlen, "alerts: body holds a \\u0000 escape (a NUL byte in a string)");
		return API_ERR_BODY;
	}
	return API_OK;
}

/* body[len] == '\0'. Returns API_OK, API_ERR_BODY or API_ERR_INTERNAL. */
static int parse_alerts_z(const char *body, size_t len,
			  struct alert_def **defs, size_t *n, char ***skipped,
			  size_t *nskipped, char *err, size_t errlen)
{
	struct alerts_parse p = {.want_skipped = skipped != NULL};
	size_t open = 0;
	int rc;

	*defs = NULL;
	*n = 0;
	rc = check_alerts_body(body, len, &open, err, errlen);
	if (rc != API_OK)
		goto out;
	rc = API_ERR_INTERNAL;
	/* Never NULL on success, even for an empty array. */
	p.list = malloc(sizeof(*p.list));
	p.cap = 1;
	if (p.list == NULL || for_each_element(body, len, open, keep_element, &p) != 0) {
		set_err(err, errlen, "alerts: out of memory");
		goto out;
	}
	if (p.warnings > API_MAX_ENTRY_WARNINGS)
		log_msg(LOG_WARN, "alerts: and %zu more warnings not logged (in all: "
			"entries skipped=%zu values clamped=%zu)",
			p.warnings - API_MAX_ENTRY_WARNINGS, p.nskips, p.nclamps);
	*defs = p.list;
	*n = p.kept;
	p.list = NULL;
	if (skipped != NULL) {
		*skipped = p.skipped;
		*nskipped = p.nskipped;
		p.skipped = NULL;
	}
	rc = API_OK;
out:
	api_defs_free(p.list, p.kept);
	api_names_free(p.skipped, p.nskipped);
	free(p.names.slots);
	return rc;
}

void api_names_free(char **names, size_t n)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int api_parse_alerts(const char *body, size_t len, struct alert_def **defs,
		     size_t *n, char *err, size_t errlen)
{
	return api_parse_alerts_full(body, len, defs, n, NULL, NULL, err, errlen);
}

int api_parse_alerts_full(const char *body, size_t len, struct alert_def **defs,
			  size_t *n, char ***skipped, size_t *nskipped,
			  char *err, size_t errlen)
{
	char *copy = NULL;
	int rc;

	assert(body != NULL || len == 0);
	assert(defs != NULL && n != NULL);
	assert((skipped == NULL) == (nskipped == NULL));
	*defs = NULL;
	*n = 0;
	if (skipped != NULL) {
		*skipped = NULL;
		*nskipped = 0;
	}
	copy = copy_body(len > 0 ? body : "", len);
	if (copy == NULL) {
		set_err(err, errlen, "alerts: out of memory");
		return -1;
	}
	rc = parse_alerts_z(copy, len, defs, n, skipped, nskipped, err, errlen);
	free(copy);
	return rc == API_OK ? 0 : -1;
}

/* ---- definitions ---------------------------------------------------------- */

void api_def_clear(struct alert_def *def)
{
	if (def == NULL)
		return;
	free(def->name);
	free(def->query);
	free(def->warn_message);
	free(def->crit_message);
	def->name = NULL;
	def->query = NULL;
	def->warn_message = NULL;
	def->crit_message = NULL;
}

void api_defs_free(struct alert_def *defs, size_t n)
{
	if (defs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		api_def_clear(&defs[i]);
	free(defs);
}

static char *dup_or_null(const char *s, int *failed)
{
	char *copy;

	if (s == NULL)
		return NULL;
	copy = strdup(s);
	if (copy == NULL)
		*failed = 1;
	return copy;
}

int api_def_copy(struct alert_def *dst, const struct alert_def *src)
{
	int failed = 0;

	assert(dst != NULL && src != NULL && dst != src);
	*dst = *src;
	dst->name = dup_or_null(src->name, &failed);
	dst->query = dup_or_null(src->query, &failed);
	dst->warn_message = dup_or_null(src->warn_message, &failed);
	dst->crit_message = dup_or_null(src->crit_message, &failed);
	if (failed) {
		api_def_clear(dst);
		return -1;
	}
	return 0;
}

/* ---- transport ------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct api *api = userdata;
	size_t n = size * nmemb; /* size is always 1 */

	if (!api->keep_body)
		return n;
	if (n > api->limit - api->len) {
		api->over = 1;
		return 0; /* != n: curl aborts with CURLE_WRITE_ERROR */
	}
	if (api->len + n + 1 > api->cap) {
		size_t cap = api->cap * 2;
		char *grown;

		if (cap < api->len + n + 1)
			cap = api->len + n + 1;
		if (cap > api->limit + 1)
			cap = api->limit + 1;
		grown = realloc(api->buf, cap);
		if (grown == NULL) {
			api->oom = 1;
			return 0;
		}
		api->buf = grown;
		api->cap = cap;
	}
	memcpy(api->buf + api->len, data, n);
	api->len += n;
	api->buf[api->len] = '\0';
	return n;
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* Builds base + path [+ "?target=" + percent-encoded target] in api->url.
 * Every byte but the RFC 3986 unreserved ones is encoded, so the server
 * decodes the original bytes whatever they are. */
static int build_url(struct api *api, const char *path, const char *target)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char param[] = "?target=";
	size_t plen = strlen(path);
	size_t tlen = target != NULL ? strlen(target) : 0;
	size_t need;
	char *p;

	if (tlen > (SIZE_MAX - api->base_len - plen - sizeof(param)) / 3)
		return -1;
	need = api->base_len + plen + sizeof(param) + 3 * tlen;
	if (need > api->url_cap) {
		char *grown = realloc(api->url, need);

		if (grown == NULL)
			return -1;
		api->url = grown;
		api->url_cap = need;
	}
	p = api->url;
	memcpy(p, api->base_url, api->base_len);
	p += api->base_len;
	memcpy(p, path, plen);
	p += plen;
	if (target != NULL) {
		memcpy(p, param, sizeof(param) - 1);
		p += sizeof(param) - 1;
		for (const unsigned char *t = (const unsigned char *)target;
		     *t != '\0'; t++) {
			if (is_unreserved(*t)) {
				*p++ = (char)*t;
			} else {
				*p++ = '%';
				*p++ = hex[*t >> 4];
				*p++ = hex[*t & 0x0f];
			}
		}
	}
	*p = '\0';
	return 0;
}

static int stopped(const struct api *api)
{
	/* Other threads set the flag: read it atomically. */
	return api->stop != NULL &&
	       atomic_load(api->stop) != 0;
}

/* libcurl calls this during a transfer, about once a second at the
 * least, also while nothing arrives. A GET of a blocking call is ended
 * once the stop flag is set: nothing is lost by cutting it off, and a
 * stop must not wait out a slow /alerts. A POST runs to its end (or its
 * timeout): cut off, it might have been taken or not, and a graceful stop
 * must know which. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	const struct api *api = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return api->cut_on_stop && stopped(api);
}

/* The Retry-After of the answer just received, in ms (0: none, invalid,
 * or a date in the past). */
static int64_t retry_after(CURL *curl)
{
	curl_off_t secs = 0;

	if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &secs) != CURLE_OK || secs <= 0)
		return 0;
	return secs > INT64_MAX / 1000 ? INT64_MAX / 1000 * 1000 : (int64_t)secs * 1000;
}

/* Readies the handle's buffers for an attempt. */
static void attempt_begin(struct api *api)
{
	api->retry_after_ms = 0;
	api->maybe_sent = 0;
	api->len = 0;
	api->buf[0] = '\0';
	api->over = 0;
	api->oom = 0;
	api->curl_err[0] = '\0';
}

/* The outcome of an answer with the non-2xx status code. Sets *retry
 * when another attempt at once may succeed. */
static int status_error(const struct api *api, const struct request *req, long code,
			int *retry, char *err, size_t errlen)
{
	set_err(err, errlen, "%s: HTTP %ld", req->what, code);
	if (code == 408 || code == 429) {
		/* Not a refusal of the request but of its moment: worth another
		 * try, though not at once, which would ignore the server's pace
		 * (the caller has api_retry_after_ms). */
		if (api->retry_after_ms > 0)
			append_err(err, errlen, " (retry after %lld ms)",
				   (long long)api->retry_after_ms);
		return API_ERR_SERVER;
	}
	if (code >= 400 && code <= 499)
		return API_ERR_CLIENT;
	*retry = 1;
	return API_ERR_SERVER;
}

/* The outcome of an attempt that ended with cc. Sets *retry when another
 * attempt may succeed. */
static int attempt_end(struct api *api, const struct request *req, CURLcode cc,
		       int *retry, char *err, size_t errlen)
{
	long code = 0;
	int over;

	*retry = 0;
	if (curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &code) !=
	    CURLE_OK)
		code = 0;
	over = api->over || cc == CURLE_FILESIZE_EXCEEDED;
	if (code != 0)
		api->retry_after_ms = retry_after(api->curl);

	if (api->oom) {
		set_err(err, errlen, "%s: out of memory", req->what);
		return API_ERR_INTERNAL;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		set_err(err, errlen, "%s: stopped", req->what);
		return API_ERR_TRANSPORT;
	}
	if (cc != CURLE_OK && !over) {
		/* A notify or resolve may have reached the server unless the
		 * connection was never made: sending it again at once would
		 * multiply it at a slow server. Its delivery's backoff retries
		 * it. A GET is safe to repeat. */
		int unsent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
			     cc == CURLE_COULDNT_RESOLVE_PROXY;

		*retry = req->post == NULL || unsent;
		api->maybe_sent = !unsent;
		set_err(err, errlen, "%s: transport error: %s", req->what,
			api->curl_err[0] != '\0' ? api->curl_err
						 : curl_easy_strerror(cc));
		return API_ERR_TRANSPORT;
	}
	if ((code >= 200 && code <= 299) || (over && code == 0)) {
		if (over) {
			/* A body that big comes back as big: no retry. */
			set_err(err, errlen, "%s: body over %zu bytes",
				req->what, req->limit);
			return API_ERR_BODY;
		}
		if (req->check != NULL && req->check(api, req, err, errlen) != 0) {
			/* A bad body can be a transient fault of the server. */
			*retry = 1;
			return API_ERR_BODY;
		}
		return API_OK;
	}
	/* Not 2xx: the status decides, whatever happened to the body. */
	return status_error(api, req, code, retry, err, errlen);
}

/* Sets up the handle for req. */
static int request_setup(struct api *api, const struct request *req, char *err,
			 size_t errlen)
{
	CURLcode cc = CURLE_OK;

	if (build_url(api, req->path, req->target) != 0) {
		set_err(err, errlen, "%s: out of memory", req->what);
		return API_ERR_INTERNAL;
	}
	api->limit = req->limit;
	api->keep_body = req->limit > 0;
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_URL, api->url);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_MAXFILESIZE_LARGE,
				      (curl_off_t)req->limit);
	if (req->post != NULL) {
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER,
					      api->json_headers);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(api->curl,
					      CURLOPT_POSTFIELDSIZE_LARGE,
					      (curl_off_t)strlen(req->post));
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS,
					      req->post);
	} else {
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER,
					      (struct curl_slist *)NULL);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(api->curl, CURLOPT_HTTPGET, 1L);
	}
	if (cc != CURLE_OK) {
		set_err(err, errlen, "%s: curl setup: %s", req->what,
			curl_easy_strerror(cc));
		return API_ERR_INTERNAL;
	}
	return API_OK;
}

/* Sets up the handle for req and makes up to api->attempts attempts. */
static int call(struct api *api, const struct request *req, char *err,
		size_t errlen)
{
	int rc = request_setup(api, req, err, errlen);
	int made = 0;

	if (rc != API_OK)
		return rc;
	api->retry_after_ms = 0;
	api->maybe_sent = 0;
	api->cut_on_stop = req->post == NULL;
	for (made = 0; made < api->attempts; made++) {
		int retry = 0;

		if (stopped(api)) {
			if (made == 0) {
				set_err(err, errlen, "%s: stopped", req->what);
				rc = API_ERR_TRANSPORT;
			}
			break;
		}
		attempt_begin(api);
		rc = attempt_end(api, req, curl_easy_perform(api->curl), &retry, err, errlen);
		if (rc == API_OK || !retry) {
			made++;
			break;
		}
	}
	api->cut_on_stop = 0;
	if (rc != API_OK && made > 1)
		append_err(err, errlen, " (%d attempts)", made);
	/* The POST body is the caller's: leave no pointer to it behind. */
	if (req->post != NULL)
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, (char *)NULL);
	return rc;
}

/* ---- the server's URL ------------------------------------------------------ */

/* The end (exclusive) of the userinfo of url to hide: the last '@' of the
 * authority, or, when curl cannot read url, the last '@' before any query
 * or fragment (a password holding a '/' makes the URL invalid, and must
 * not show either). 0 when there is nothing to hide. */
static size_t userinfo_end(const char *url)
{
	const char *sep = strstr(url, "://");
	size_t start = sep != NULL ? (size_t)(sep - url) + 3 : 0;
	const char *stops = "?#";
	CURLU *u = curl_url();
	char *user = NULL;
	char *pass = NULL;
	size_t end = 0;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_USER, &user, 0);
		curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
		if (user == NULL && pass == NULL)
			start = strlen(url); /* a valid URL without userinfo */
		stops = "/?#";
	}
	for (size_t i = start; url[i] != '\0' && strchr(stops, url[i]) == NULL; i++)
		if (url[i] == '@')
			end = i + 1;
	curl_free(user);
	curl_free(pass);
	curl_url_cleanup(u);
	return end;
}

const char *api_redact_url(char *out, size_t outlen, const char *url)
{
	size_t end;
	const char *sep;
	int scheme_len;

	assert(out != NULL && outlen > 0 && url != NULL);
	end = userinfo_end(url);
	if (end == 0) {
		snprintf(out, outlen, "%s", url);
		return out;
	}
	sep = strstr(url, "://");
	scheme_len = sep != NULL && (size_t)(sep - url) < end ? (int)(sep - url) + 3 : 0;
	snprintf(out, outlen, "%.*s***@%s", scheme_len, url, url + end);
	return out;
}

/* curl's message with a lowercase first letter, as messages here are. */
static void lower_first(char *s)
{
	if (s[0] >= 'A' && s[0] <= 'Z')
		s[0] = (char)(s[0] - 'A' + 'a');
}

int api_check_url(const char *url, char *err, size_t errlen)
{
	char shown[WHAT_MAX];
	char why[128];
	CURLU *u = NULL;
	char *port = NULL;
	char *extra = NULL;
	CURLUcode uc;
	int rc = -1;

	assert(url != NULL);
	api_redact_url(shown, sizeof(shown), url);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		set_err(err, errlen, "'%s' is not an http:// or https:// URL", shown);
		return -1;
	}
	u = curl_url();
	if (u == NULL) {
		set_err(err, errlen, "'%s': out of memory", shown);
		return -1;
	}
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		snprintf(why, sizeof(why), "%s", curl_url_strerror(uc));
		lower_first(why);
		set_err(err, errlen, "'%s' is not a valid URL: %s", shown, why);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && strcmp(port, "0") == 0) {
		set_err(err, errlen, "'%s' is not a valid URL: port 0", shown);
		goto out;
	}
	/* Paths are appended to the URL as it is written. */
	if (curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
		set_err(err, errlen, "'%s' has a query or fragment; the server's base URL "
			"takes none", shown);
		goto out;
	}
	rc = 0;
out:
	curl_free(port);
	curl_free(extra);
	curl_url_cleanup(u);
	return rc;
}

/* The response buffer and the headers of a POST. 0, or -1 when out of
 * memory (api_free releases what was taken). */
static int alloc_buffers(struct api *api)
{
	struct curl_slist *more = NULL;

	api->cap = INITIAL_BUF;
	api->buf = malloc(api->cap);
	if (api->buf == NULL)
		return -1;
	api->buf[0] = '\0';
	api->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (api->json_headers == NULL)
		return -1;
	/* No "Expect: 100-continue" round trip before a POST. */
	more = curl_slist_append(api->json_headers, "Expect:");
	if (more == NULL)
		return -1;
	api->json_headers = more;
	return 0;
}

/* The options of a new client's handle that stay for all its calls. */
static CURLcode setup_handle(struct api *api, const struct api_opts *opts)
{
	CURLcode cc;

	cc = curl_easy_setopt(api->curl, CURLOPT_NOSIGNAL, 1L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_CONNECTTIMEOUT_MS,
				      opts->connect_timeout_ms);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_TIMEOUT_MS,
				      opts->timeout_ms);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_PROTOCOLS_STR,
				      "http,https");
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_USERAGENT,
				      "alert-exec/" ALERT_EXEC_VERSION);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_ERRORBUFFER,
				      api->curl_err);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, on_body);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, api);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_XFERINFODATA, api);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(api->curl, CURLOPT_NOPROGRESS, 0L);
	return cc;
}

struct api *api_new(const struct api_opts *opts, char *err, size_t errlen)
{
	struct api *api = NULL;
	struct api *ret = NULL;
	char why[256];
	CURLcode cc = CURLE_OK;

	assert(opts != NULL);
	if (opts->base_url == NULL || opts->base_url[0] == '\0') {
		set_err(err, errlen, "api: server URL is empty");
		goto out;
	}
	if (opts->attempts < 1) {
		set_err(err, errlen, "api: attempts is %d, must be at least 1",
			opts->attempts);
		goto out;
	}
	if (opts->connect_timeout_ms < 0 || opts->timeout_ms < 0) {
		set_err(err, errlen, "api: timeouts must not be negative");
		goto out;
	}
	if (api_check_url(opts->base_url, why, sizeof(why)) != 0) {
		set_err(err, errlen, "api: server URL %s", why);
		goto out;
	}

	api = calloc(1, sizeof(*api));
	if (api == NULL)
		goto oom;
	api->attempts = opts->attempts;
	api->stop = opts->stop;
	api->alerts_max_body = opts->alerts_max_body ? opts->alerts_max_body
						    : API_ALERTS_MAX_BODY;
	api->base_url = strdup(opts->base_url);
	if (api->base_url == NULL)
		goto oom;
	api->base_len = strlen(api->base_url);
	while (api->base_len > 0 && api->base_url[api->base_len - 1] == '/')
		api->base_url[--api->base_len] = '\0';
	if (alloc_buffers(api) != 0)
		goto oom;
	api->curl = curl_easy_init();
	if (api->curl == NULL) {
		set_err(err, errlen, "api: curl_easy_init failed");
		goto out;
	}

	cc = setup_handle(api, opts);
	if (cc != CURLE_OK) {
		set_err(err, errlen, "api: curl setup: %s",
			curl_easy_strerror(cc));
		goto out;
	}
	ret = api;
	api = NULL;
	goto out;
oom:
	set_err(err, errlen, "api: out of memory");
out:
	api_free(api);
	return ret;
}

void api_free(struct api *api)
{
	if (api == NULL)
		return;
	if (api->curl != NULL)
		curl_easy_cleanup(api->curl);
	curl_slist_free_all(api->json_headers);
	free(api->base_url);
	free(api->url);
	free(api->buf);
	api_names_free(api->skipped, api->nskipped);
	free(api);
}

/* ---- calls ---------------------------------------------------------------- */

struct alerts_out {
	struct alert_def **defs;
	size_t *n;
};

static int check_alerts(struct api *api, const struct request *req,
			char *err, size_t errlen)
{
	struct alerts_out *o = req->ctx;
	char **skipped = NULL;
	size_t nskipped = 0;
	int rc;

	rc = parse_alerts_z(api->buf, api->len, o->defs, o->n, &skipped, &nskipped, err,
			    errlen);
	if (rc != API_OK)
		return -1;
	api_names_free(api->skipped, api->nskipped);
	api->skipped = skipped;
	api->nskipped = nskipped;
	return 0;
}

int64_t api_retry_after_ms(const struct api *api)
{
	assert(api != NULL);
	return api->retry_after_ms;
}

int api_maybe_sent(const struct api *api)
{
	assert(api != NULL);
	return api->maybe_sent;
}

void api_skipped_names(const struct api *api, const char *const **names, size_t *n)
{
	*names = (const char *const *)api->skipped;
	*n = api->nskipped;
}

int api_fetch_alerts(struct api *api, struct alert_def **defs, size_t *n,
		     char *err, size_t errlen)
{
	struct alerts_out o = {defs, n};
	struct request req = {
		.what = "alerts",
		.path = "/alerts",
		.limit = api->alerts_max_body,
		.check = check_alerts,
		.ctx = &o,
	};

	assert(api != NULL && defs != NULL && n != NULL);
	*defs = NULL;
	*n = 0;
	return call(api, &req, err, errlen);
}

static int check_value(struct api *api, const struct request *req,
		       char *err, size_t errlen)
{
	char why[160];

	if (parse_value_z(api->buf, api->len, req->ctx, why, sizeof(why)) != 0) {
		set_err(err, errlen, "%s: %s", req->what, why);
		return -1;
	}
	return 0;
}

/* The request of a query of target; what (WHAT_MAX bytes) holds its
 * context. */
static struct request query_request(char *what, const char *target, double *value)
{
	char quoted[WHAT_MAX - 8];
	struct request req = {
		.what = what,
		.path = "/query",
		.target = target,
		.limit = API_MAX_BODY,
		.check = check_value,
		.ctx = value,
	};

	snprintf(what, WHAT_MAX, "query %s", log_quote(quoted, sizeof(quoted), target));
	return req;
}

int api_query(struct api *api, const char *target, double *value,
	      char *err, size_t errlen)
{
	char what[WHAT_MAX];
	struct request req;

	assert(api != NULL && target != NULL && value != NULL);
	req = query_request(what, target, value);
	return call(api, &req, err, errlen);
}

/* POSTs {"alertName": name[, "message": message]} to path. */
static int post_alert(struct api *api, const char *path, const char *verb,
		      const char *name, const char *message, char *err,
		      size_t errlen)
{
	char what[WHAT_MAX];
	char quoted[WHAT_MAX - 8];
	cJSON *root = NULL;
	char *body = NULL;
	int rc = API_ERR_INTERNAL;
	struct request req = {
		.what = what,
		.path = path,
		.limit = 0, /* any 2xx will do: the body is not read */
	};

	snprintf(what, sizeof(what), "%s %s", verb,
		 log_quote(quoted, sizeof(quoted), name));
	root = cJSON_CreateObject();
	if (root == NULL || cJSON_AddStringToObject(root, "alertName", name) == NULL)
		goto oom;
	if (message != NULL &&
	    cJSON_AddStringToObject(root, "message", message) == NULL)
		goto oom;
	body = cJSON_PrintUnformatted(root);
	if (body == NULL)
		goto oom;
	req.post = body;
	rc = call(api, &req, err, errlen);
	goto out;
oom:
	set_err(err, errlen, "%s: out of memory", what);
out:
	cJSON_free(body);
	cJSON_Delete(root);
	return rc;
}

int api_notify(struct api *api, const char *name, const char *message,
	       char *err, size_t errlen)
{
	assert(api != NULL && name != NULL && message != NULL);
	return post_alert(api, "/notify", "notify", name, message, err, errlen);
}

int api_resolve(struct api *api, const char *name, char *err, size_t errlen)
{
	assert(api != NULL && name != NULL);
	return post_alert(api, "/resolve", "resolve", name, NULL, err, errlen);
}

/* ---- many queries from one thread ----------------------------------------- */

struct query_slot {
	struct api *api;        /* its handle, buffers and connection */
	int busy;
	int made;               /* attempts made */
	void *tag;
	double value;
	struct request req;
	char what[WHAT_MAX];
	char err[API_ERR_MAX];
};

struct api_multi {
	CURLM *multi;
	struct query_slot *slot;
	size_t n;
	size_t busy;
	int attempts;
	const atomic_int *stop;
};

struct api_multi *api_multi_new(const struct api_opts *opts, size_t n, char *err,
				size_t errlen)
{
	struct api_multi *m;

	assert(opts != NULL);
	if (n < 1) {
		set_err(err, errlen, "api: a multi client needs at least one slot");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->slot = calloc(n, sizeof(*m->slot))) == NULL) {
		free(m);
		set_err(err, errlen, "api: out of memory");
		return NULL;
	}
	m->n = n;
	m->attempts = opts->attempts;
	m->stop = opts->stop;
	m->multi = curl_multi_init();
	if (m->multi == NULL) {
		set_err(err, errlen, "api: curl_multi_init failed");
		api_multi_free(m);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		m->slot[i].api = api_new(opts, err, errlen);
		if (m->slot[i].api == NULL ||
		    curl_easy_setopt(m->slot[i].api->curl, CURLOPT_PRIVATE,
				     (void *)&m->slot[i]) != CURLE_OK) {
			if (m->slot[i].api != NULL)
				set_err(err, errlen, "api: curl setup failed");
			api_multi_free(m);
			return NULL;
		}
	}
	return m;
}

void api_multi_free(struct api_multi *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		if (m->slot[i].api == NULL)
			continue;
		if (m->slot[i].busy)
			curl_multi_remove_handle(m->multi, m->slot[i].api->curl);
		api_free(m->slot[i].api);
	}
	if (m->multi != NULL)
		curl_multi_cleanup(m->multi);
	free(m->slot);
	free(m);
}

size_t api_multi_idle(const struct api_multi *m)
{
	return m->n - m->busy;
}

size_t api_multi_busy(const struct api_multi *m)
{
	return m->busy;
}

/* Adds the slot's handle to the multi for one more attempt. */
static int slot_attempt(struct api_multi *m, struct query_slot *q)
{
	CURLMcode mc;

	attempt_begin(q->api);
	q->made++;
	mc = curl_multi_add_handle(m->multi, q->api->curl);
	if (mc != CURLM_OK) {
		set_err(q->err, sizeof(q->err), "%s: curl: %s", q->what, curl_multi_strerror(mc));
		return API_ERR_INTERNAL;
	}
	return API_OK;
}

int api_multi_start(struct api_multi *m, const char *target, void *tag, char *err,
		    size_t errlen)
{
	struct query_slot *q = NULL;
	int rc;

	assert(m != NULL && target != NULL);
	for (size_t i = 0; i < m->n && q == NULL; i++)
		if (!m->slot[i].busy)
			q = &m->slot[i];
	if (q == NULL) {
		set_err(err, errlen, "api: no idle slot");
		return API_ERR_INTERNAL;
	}
	q->req = query_request(q->what, target, &q->value);
	q->made = 0;
	q->tag = tag;
	q->err[0] = '\0';
	rc = request_setup(q->api, &q->req, err, errlen);
	q->req.target = NULL;   /* the caller's; the URL holds it now */
	if (rc == API_OK && m->stop != NULL && atomic_load(m->stop) != 0) {
		set_err(err, errlen, "%s: stopped", q->what);
		rc = API_ERR_TRANSPORT;
	}
	if (rc == API_OK && (rc = slot_attempt(m, q)) != API_OK)
		set_err(err, errlen, "%s", q->err);
	if (rc != API_OK)
		return rc;
	q->busy = 1;
	m->busy++;
	return API_OK;
}

/* Ends the slot's query with rc: done is told, the slot is idle again. */
static void slot_done(struct api_multi *m, struct query_slot *q, int rc, api_done_fn done,
		      void *arg)
{
	if (rc != API_OK && q->made > 1)
		append_err(q->err, sizeof(q->err), " (%d attempts)", q->made);
	q->busy = 0;
	m->busy--;
	done(q->tag, rc, q->value, rc == API_OK ? "" : q->err, arg);
}

int api_multi_run(struct api_multi *m, int timeout_ms, api_done_fn done, void *arg)
{
	CURLMsg *msg;
	CURLMcode mc;
	int running = 0;
	int left = 0;

	mc = curl_multi_poll(m->multi, NULL, 0, timeout_ms, NULL);
	if (mc == CURLM_OK)
		mc = curl_multi_perform(m->multi, &running);
	if (mc != CURLM_OK) {
		log_msg(LOG_ERROR, "queries: curl: %s", curl_multi_strerror(mc));
		return -1;
	}
	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		struct query_slot *q = NULL;
		CURLcode cc;
		int retry = 0;
		int rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		cc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		curl_multi_remove_handle(m->multi, msg->easy_handle);
		rc = attempt_end(q->api, &q->req, cc, &retry, q->err, sizeof(q->err));
		if (rc != API_OK && retry && q->made < m->attempts &&
		    !(m->stop != NULL && atomic_load(m->stop) != 0) &&
		    slot_attempt(m, q) == API_OK)
			continue;
		slot_done(m, q, rc, done, arg);
	}
	return 0;
}

void api_multi_wakeup(struct api_multi *m)
{
	curl_multi_wakeup(m->multi);
}

void api_multi_cancel(struct api_multi *m, api_done_fn done, void *arg)
{
	for (size_t i = 0; i < m->n; i++) {
		struct query_slot *q = &m->slot[i];

		if (!q->busy)
			continue;
		curl_multi_remove_handle(m->multi, q->api->curl);
		set_err(q->err, sizeof(q->err), "%s: stopped", q->what);
		slot_done(m, q, API_ERR_TRANSPORT, done, arg);
	}
}
