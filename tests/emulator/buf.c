#include "buf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need;
	size_t cap;
	char *p;

	if (b->failed)
		return -1;
	if (extra > (size_t)-1 / 2 - b->len) {
		b->failed = 1;
		return -1;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	int n;

	if (buf_reserve(b, 64) != 0)
		return -1;
	va_copy(copy, ap);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, copy);
	va_end(copy);
	if (n < 0) {
		b->failed = 1;
		return -1;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (buf_reserve(b, (size_t)n) != 0)
			return -1;
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		if (n < 0) {
			b->failed = 1;
			return -1;
		}
	}
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int buf_json_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	if (buf_reserve(b, n + 2) != 0)
		return -1;
	b->data[b->len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t elen = 0;

		switch (c) {
		case '"': esc[0] = '\\'; esc[1] = '"'; elen = 2; break;
		case '\\': esc[0] = '\\'; esc[1] = '\\'; elen = 2; break;
		case '\n': esc[0] = '\\'; esc[1] = 'n'; elen = 2; break;
		case '\r': esc[0] = '\\'; esc[1] = 'r'; elen = 2; break;
		case '\t': esc[0] = '\\'; esc[1] = 't'; elen = 2; break;
		default:
			if (c < 0x20) {
				esc[0] = '\\';
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				elen = 6;
			}
			break;
		}
		if (elen == 0) {
			if (buf_append(b, &s[i], 1) != 0)
				return -1;
		} else if (buf_append(b, esc, elen) != 0) {
			return -1;
		}
	}
	return buf_append(b, "\"", 1);
}

char *buf_take(struct buf *b)
{
	char *p = NULL;

	if (!b->failed)
		p = b->data;
	else
		free(b->data);
	buf_init(b);
	return p;
}

void fmt_err(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;

	assert(dst != NULL && n > 0);
	va_start(ap, fmt);
	if (vsnprintf(dst, n, fmt, ap) < 0)
		dst[0] = '\0';
	va_end(ap);
}
