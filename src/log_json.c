/*
 * The JSON form of a log line. The logfmt line log_msg builds is the one
 * source of every field; with --log-format json it is turned into one JSON
 * object, so no call site writes its fields twice and both formats carry
 * the same ones:
 *
 *   2026-11-27T19:07:38.951Z INFO delivered kind=notify alert="a b"
 *   {"time":"2026-11-27T19:07:38.951Z","level":"INFO","msg":"delivered",
 *    "kind":"notify","alert":"a b"}
 *
 * The pairs are the longest run of key=value tokens that ends the line
 * (free text before it is the msg, whatever it holds). Values are strings:
 * the line does not say which were numbers.
 */
#include "log.h"

#include <assert.h>
#include <string.h>

/* An output buffer sized by LOG_JSON_MAX: writes past its end are
 * dropped (they cannot happen with that size; the check keeps memory
 * safe if they did). */
struct out {
	char *buf;
	size_t cap;
	size_t n;
};

static void put(struct out *o, const char *s, size_t len)
{
	if (o->n + len >= o->cap)
		len = o->n + 1 < o->cap ? o->cap - o->n - 1 : 0;
	memcpy(o->buf + o->n, s, len);
	o->n += len;
}

static void put_escape(struct out *o, unsigned cp)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = {
		'\\',        'u', hex[(cp >> 12) & 15], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15],
		hex[cp & 15]};

	put(o, esc, sizeof(esc));
}

/* Length of the UTF-8 sequence at p (n bytes left), or 0 when it is not
 * valid UTF-8 (overlong, a surrogate, above U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	cp = p[0] & (0x7fu >> len); /* the lead byte's payload bits */
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Writes bytes s[0..len) as the inside of a JSON string: quotes and
 * backslashes escaped, C0, DEL and C1 controls as \uXXXX, each byte of
 * invalid UTF-8 as U+FFFD. */
static void put_text(struct out *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t k = utf8_len(p + i, len - i);

		if (k == 0) {
			put_escape(o, 0xfffd);
			i++;
		} else if (k == 2 && p[i] == 0xc2 && p[i + 1] <= 0x9f) {
			put_escape(o, p[i + 1]); /* C1 */
			i += 2;
		} else if (k > 1) {
			put(o, s + i, k);
			i += k;
		} else if (p[i] == '"' || p[i] == '\\') {
			put(o, "\\", 1);
			put(o, s + i++, 1);
		} else if (p[i] == '\n') {
			put(o, "\\n", 2);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			put_escape(o, p[i++]);
		} else {
			put(o, s + i++, 1);
		}
	}
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte of the escape \xHH or \u00HH at s (len bytes), or -1. */
static int hex_escape(const char *s, size_t len, size_t *used)
{
	size_t at = s[0] == 'x' ? 1 : 3;
	int hi, lo;

	if (len < at + 2 || (s[0] == 'u' && (s[1] != '0' || s[2] != '0')))
		return -1;
	hi = hex_value(s[at]);
	lo = hex_value(s[at + 1]);
	if (hi < 0 || lo < 0)
		return -1;
	*used = at + 2;
	return hi * 16 + lo;
}

/* Writes a logfmt value (plain, or quoted as log_quote writes it; a value
 * cut by the line's "..." may lack its closing quote) as a JSON string. */
static void put_value(struct out *o, const char *v, size_t len)
{
	size_t i = 1;

	put(o, "\"", 1);
	if (len == 0 || v[0] != '"') {
		put_text(o, v, len);
		put(o, "\"", 1);
		return;
	}
	while (i < len && v[i] != '"') {
		size_t start = i, used = 0;
		int b;

		while (i < len && v[i] != '\\' && v[i] != '"')
			i++;
		put_text(o, v + start, i - start);
		if (i + 1 >= len || v[i] == '"')
			break;
		i++; /* past the backslash */
		b = (v[i] == 'x' || v[i] == 'u') ? hex_escape(v + i, len - i, &used) : -1;
		if (b >= 0) {
			/* A control character: C0, DEL or C1 alike. */
			put_escape(o, (unsigned)b);
			i += used;
		} else {
			put_text(o, v[i] == 'n' ? "\n" : v + i, 1);
			i++;
		}
	}
	put(o, "\"", 1);
}

/* The end of the token at s[i] (len bytes): the next space outside
 * double quotes, a backslash escaping the byte after it inside them. */
static size_t token_end(const char *s, size_t len, size_t i)
{
	int quoted = 0;

	for (; i < len; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == ' ' && !quoted)
			break;
	}
	return i < len ? i : len;
}

/* Length of the key of a key=value token (s, len), 0 when it is not one:
 * a key is [A-Za-z_][A-Za-z0-9_.-]*, a value plain (no quote) or quoted. */
static size_t pair_key(const char *s, size_t len)
{
	size_t k = 0;

	while (k < len &&
	       (s[k] == '_' || (s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
		(k > 0 && ((s[k] >= '0' && s[k] <= '9') || s[k] == '.' || s[k] == '-'))))
		k++;
	if (k == 0 || k >= len || s[k] != '=')
		return 0;
	if (k + 1 < len && s[k + 1] == '"')
		return k;
	return memchr(s + k + 1, '"', len - k - 1) == NULL ? k : 0;
}

/* Where the trailing run of key=value tokens of rest starts (len when
 * there is none). */
static size_t pairs_start(const char *rest, size_t len)
{
	size_t i = 0, start = len;

	while (i < len) {
		size_t end = token_end(rest, len, i);

		if (pair_key(rest + i, end - i) == 0)
			start = len;
		else if (start == len)
			start = i;
		i = end;
		while (i < len && rest[i] == ' ')
			i++;
	}
	return start;
}

/* Writes "key":value pairs of rest[from..len). */
static void put_pairs(struct out *o, const char *rest, size_t len, size_t from)
{
	size_t i = from;

	while (i < len) {
		size_t end = token_end(rest, len, i);
		size_t k = pair_key(rest + i, end - i);

		put(o, ",\"", 2);
		/* A key that would shadow a field of the line's head. */
		if ((k == 4 && memcmp(rest + i, "time", 4) == 0) ||
		    (k == 5 && memcmp(rest + i, "level", 5) == 0) ||
		    (k == 3 && memcmp(rest + i, "msg", 3) == 0))
			put(o, "_", 1);
		put_text(o, rest + i, k);
		put(o, "\":", 2);
		put_value(o, rest + i + k + 1, end - i - k - 1);
		i = end;
		while (i < len && rest[i] == ' ')
			i++;
	}
}

unsigned long log_json_line(char *out, unsigned long outlen, const char *line, unsigned long len)
{
	struct out o = {out, outlen, 0};
	const char *sp1 = memchr(line, ' ', len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
	const char *rest = sp2 ? sp2 + 1 : line + len;
	size_t restlen = (size_t)(line + len - rest);
	size_t from = pairs_start(rest, restlen), msglen = from;

	assert(outlen >= LOG_JSON_MAX(len));
	while (msglen > 0 && rest[msglen - 1] == ' ')
		msglen--;
	put(&o, "{\"time\":\"", 9);
	put_text(&o, line, sp1 ? (size_t)(sp1 - line) : len);
	put(&o, "\",\"level\":\"", 11);
	if (sp1 && sp2)
		put_text(&o, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	put(&o, "\",\"msg\":\"", 9);
	put_text(&o, rest, msglen);
	put(&o, "\"", 1);
	put_pairs(&o, rest, restlen, from);
	put(&o, "}", 1);
	out[o.n] = '\0';
	return o.n;
}
