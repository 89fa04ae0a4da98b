#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Longest logfmt line, its newline included; longer ones are cut with
 * "...". */
#define LOG_LINE_MAX 4096

static enum log_level threshold = LOG_INFO;
static enum log_format format = LOG_FORMAT_LOGFMT;

static const char *const level_names[] = {
	[LOG_CRITICAL] = "CRITICAL", [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARN",
	[LOG_INFO] = "INFO",         [LOG_DEBUG] = "DEBUG",
};

int log_parse_level(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{"critical", LOG_CRITICAL}, {"error", LOG_ERROR}, {"warn", LOG_WARN},
		{"warning", LOG_WARN},      {"info", LOG_INFO},   {"debug", LOG_DEBUG},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -1;
}

int log_parse_format(const char *name, enum log_format *out)
{
	if (strcmp(name, "logfmt") == 0)
		*out = LOG_FORMAT_LOGFMT;
	else if (strcmp(name, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -1;
	return 0;
}

void log_set_format(enum log_format f)
{
	format = f;
}

/* Writes a finished line (n bytes, its newline last) in the format set. */
static void write_line(const char *line, size_t n)
{
	char json[LOG_JSON_MAX(LOG_LINE_MAX)];

	if (format == LOG_FORMAT_JSON) {
		n = log_json_line(json, sizeof(json) - 1, line, n - 1);
		json[n++] = '\n';
		line = json;
	}
	/* One write per line: lines of different threads do not interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_set_level(enum log_level level)
{
	threshold = level;
}

int log_enabled(enum log_level level)
{
	return level <= threshold;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;
	int r;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
		     level_names[level]);
	if (r > 0)
		n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	}
	line[n++] = '\n';
	write_line(line, n);
}

/* A C1 control (U+0080..U+009F) in UTF-8: some terminals act on them
 * (U+009B starts an escape sequence) as they do on C0 controls. */
static int is_c1(const char *p)
{
	return (unsigned char)p[0] == 0xc2 && (unsigned char)p[1] >= 0x80 &&
	       (unsigned char)p[1] <= 0x9f;
}

const char *log_quote(char *buf, unsigned long n, const char *s)
{
	size_t o = 0;
	int plain = s[0] != '\0';

	if (n == 0)
		return buf;
	for (const char *p = s; *p && plain; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7f || is_c1(p))
			plain = 0;
	}
	if (plain) {
		snprintf(buf, n, "%s", s);
		if (strlen(s) >= n && n > 4)
			memcpy(buf + n - 4, "...", 4);
		return buf;
	}
	if (n < 8) {
		buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[8];
		size_t k;

		if (c == '"' || c == '\\')
			k = (size_t)snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\n')
			k = (size_t)snprintf(esc, sizeof(esc), "\\n");
		else if (c < ' ' || c == 0x7f)
			k = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
		else if (is_c1(p))
			k = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)*++p);
		else {
			esc[0] = (char)c;
			k = 1;
		}
		if (o + k + 5 > n) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, esc, k);
		o += k;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}
