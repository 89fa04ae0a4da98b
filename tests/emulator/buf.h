/* buf: a growable byte buffer for building response bodies, JSON lines and
 * error messages without sprintf/strcpy/strcat. */
#ifndef EMU_BUF_H
#define EMU_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated once anything was appended */
	size_t len;
	size_t cap;
	int failed; /* set once an allocation failed; later appends are no-ops */
};

/* Initialises an empty buffer; no allocation happens until the first append. */
void buf_init(struct buf *b);

/* Releases the storage; the buffer is empty and reusable afterwards.
 * buf_free on an initialised empty buffer is a no-op. */
void buf_free(struct buf *b);

/* Makes room for at least extra more bytes (plus the terminating NUL).
 * Returns 0, or -1 when out of memory (b->failed is then set). */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes. Returns 0, or -1 when out of memory. */
int buf_append(struct buf *b, const void *data, size_t n);

/* Appends a NUL-terminated string. Returns 0 or -1. */
int buf_puts(struct buf *b, const char *s);

/* Appends printf-formatted text. Returns 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Appends s (n bytes, may contain any byte) as a quoted JSON string with
 * the required escapes. Returns 0 or -1. */
int buf_json_string(struct buf *b, const char *s, size_t n);

/* Hands the storage to the caller (who frees it with free()) and leaves the
 * buffer empty. Returns NULL when nothing was appended or an allocation
 * failed. */
char *buf_take(struct buf *b);

/* Formats into a caller buffer of size n (n > 0), always NUL-terminated,
 * silently truncating. Used for error messages. */
void fmt_err(char *dst, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
