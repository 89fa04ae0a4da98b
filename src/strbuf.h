#ifndef ALERT_EXEC_STRBUF_H
#define ALERT_EXEC_STRBUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * A growable text buffer: the /metrics page, the status page and the
 * status command's output are built in one. A failed allocation is
 * remembered (failed) and every later append is a no-op, so a writer
 * appends without checking each step and looks at failed once at the end.
 */
struct strbuf {
	char *data; /* NUL-terminated; NULL until the first append */
	size_t len, cap;
	int failed; /* out of memory: the content is incomplete */
};

/* An empty buffer is all zeros: struct strbuf b = {0}. */
void strbuf_free(struct strbuf *b);

void strbuf_append(struct strbuf *b, const char *s);
void strbuf_append_n(struct strbuf *b, const char *s, size_t n);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s with &, <, >, " and ' written as character references: safe
 * as HTML text and inside a quoted attribute. NULL appends nothing. */
void strbuf_html(struct strbuf *b, const char *s);

/* Appends a time in ms since the epoch as ISO-8601 UTC with
 * milliseconds (2026-11-30T03:04:05.123Z), or `none` when ms <= 0. */
void strbuf_time(struct strbuf *b, int64_t ms, const char *none);

#endif
