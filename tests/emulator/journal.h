/* journal: an append-only JSON-lines file shared by the server threads
 * (the --record file and the --query-log). Writes are serialised by a
 * mutex; a journal opened with flush_each flushes every line before
 * journal_write returns. */
#ifndef EMU_JOURNAL_H
#define EMU_JOURNAL_H

#include <stddef.h>

struct journal;

/* Opens path for appending (created if missing). Returns 0 and sets *out,
 * or -1 with "cannot open PATH: reason" in err. */
int journal_open(struct journal **out, const char *path, int flush_each,
		 char *err, size_t errlen);

/* Appends line (len bytes, without the newline) and a newline. Returns 0,
 * or -1 with the reason in err when writing or flushing failed. */
int journal_write(struct journal *j, const char *line, size_t len, char *err,
		  size_t errlen);

/* Flushes buffered lines to the file. Returns 0 or -1 on a write error.
 * j may be NULL. */
int journal_flush(struct journal *j);

/* Flushes and closes; journal_close(NULL) is a no-op. Returns 0 or -1 when
 * the final flush or close failed. */
int journal_close(struct journal *j);

#endif
