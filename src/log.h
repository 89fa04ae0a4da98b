#ifndef ALERT_EXEC_LOG_H
#define ALERT_EXEC_LOG_H

/*
 * Levelled logging to stderr, one line per event:
 *
 *   2026-11-27T19:00:00.123Z INFO delivered kind=notify alert=alert-1
 *
 * The message after the level is free text, by convention an event word
 * followed by key=value fields. Values that may hold spaces are written
 * with log_quote(). Lines are written with one write(2) so that threads do
 * not interleave.
 */

enum log_level {
	LOG_CRITICAL = 0,
	LOG_ERROR = 1,
	LOG_WARN = 2,
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

/* How lines are written: logfmt (above), or one JSON object per line
 * with the same fields (log_json_line). */
enum log_format {
	LOG_FORMAT_LOGFMT = 0,
	LOG_FORMAT_JSON = 1,
};

/* Parses logfmt|json. 0 and *out set, or -1 for an unknown name. */
int log_parse_format(const char *name, enum log_format *out);

/* Sets the format. Called once at start, before any thread exists. */
void log_set_format(enum log_format format);

/* Room log_json_line needs for a line of len bytes: every byte may turn
 * into a \uXXXX escape. */
#define LOG_JSON_MAX(len) (6 * (len) + 64)

/* Writes the logfmt line (len bytes, no newline) into out (at least
 * LOG_JSON_MAX(len) bytes) as one JSON object, NUL-terminated, and
 * returns its length: "time", "level" and "msg" (the free text), then
 * each key=value pair of the line's end as a member, in order; values
 * unquoted and unescaped from logfmt, always JSON strings (numbers
 * included: the line does not say which are numbers); a key named time,
 * level or msg becomes _time, _level, _msg. Control characters are
 * escaped as \uXXXX and bytes of invalid UTF-8 become U+FFFD, so the
 * object is valid JSON on one line whatever the values hold. */
unsigned long log_json_line(char *out, unsigned long outlen, const char *line, unsigned long len);

/* Parses critical|error|warn|warning|info|debug (case-insensitive).
 * Returns 0 and sets *out, or -1 for an unknown name. */
int log_parse_level(const char *name, enum log_level *out);

/* Sets the threshold. Called once at start, before any thread exists. */
void log_set_level(enum log_level level);

/* Returns non-zero when a message at level would be written. */
int log_enabled(enum log_level level);

/* Writes one line at level when it passes the threshold. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes s into buf (size n) as a log value: unchanged when it has no
 * space, '=', quote, backslash or control character, else in double
 * quotes with those escaped (\" \\ \n \xHH for C0 and DEL, \uHHHH for
 * C1 controls in UTF-8); truncated with "..." to fit. Returns buf. */
const char *log_quote(char *buf, unsigned long n, const char *s);

#endif
