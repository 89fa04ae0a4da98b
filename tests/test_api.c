/*
 * Tests of api.c: the pure parsers of /alerts and /query bodies, and the
 * HTTP client against a tiny server that runs in a thread of this test
 * (127.0.0.1, port 0) and answers canned responses.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "api.h"
#include "log.h"

/* ---- helpers ------------------------------------------------------------- */

/* Collects what log_msg writes to stderr while a parser runs. */
struct capture {
	FILE *file;
	int saved;
};

static void capture_begin(struct capture *c)
{
	c->file = tmpfile();
	assert_non_null(c->file);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns what was written (malloc'd). */
static char *capture_end(struct capture *c)
{
	char *text;
	long size;

	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	assert_int_equal(fseek(c->file, 0, SEEK_END), 0);
	size = ftell(c->file);
	assert_true(size >= 0);
	rewind(c->file);
	text = calloc(1, (size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)size, c->file), (size_t)size);
	fclose(c->file);
	return text;
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(text, needle); p != NULL;
	     p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Parses body; returns the log text written meanwhile (malloc'd). */
static char *parse_logged(const char *body, struct alert_def **defs,
			  size_t *n, int *rc, char *err, size_t errlen)
{
	struct capture c;

	capture_begin(&c);
	*rc = api_parse_alerts(body, strlen(body), defs, n, err, errlen);
	return capture_end(&c);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes s into out (size n); -1 on a bad escape. '+' stays '+'. */
static int url_decode(const char *s, char *out, size_t n)
{
	size_t o = 0;

	for (; *s != '\0'; s++) {
		int c = (unsigned char)*s;

		if (c == '%') {
			int hi = hexval(s[1]);
			int lo = hi < 0 ? -1 : hexval(s[2]);

			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			s += 2;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* Whether a header line starts with name (lowercase, with the colon). */
static int has_header(const char *headers, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = headers; p != NULL && *p != '\0';) {
		if (strncasecmp(p, name, n) == 0)
			return 1;
		p = strstr(p, "\r\n");
		if (p != NULL)
			p += 2;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a canned HTTP server -------------------------------------------------- */

struct canned {
	int status;
	const char *body;        /* NULL: empty */
	size_t len;              /* 0: strlen(body) */
	const char *headers;     /* extra header lines, each ending in \r\n */
	int silent;              /* read the request, never answer */
	int close_delimited;     /* no Content-Length: the body ends at close */
};

#define MAX_CANNED 8
#define IN_CAP (64 * 1024)

struct server {
	int lfd;
	int wake[2];
	int port;
	char base_url[64];
	pthread_t thread;
	pthread_mutex_t mu;

	/* Set by serve(): request i of the script gets canned[i], the last
	 * one repeats. */
	struct canned canned[MAX_CANNED];
	size_t ncanned;
	int script_start;        /* requests before canned[0] was set */
	/* Copies of the canned bodies, freed after the thread is joined: the
	 * thread may still be sending an old one that the client abandoned. */
	char **owned;
	size_t nowned;

	/* Recorded by the server under mu. */
	int requests;
	int connections;
	char request_line[8192];
	char headers[8192];
	char body[8192];
	size_t body_len;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Answers with c. Returns 0 to keep the connection, -1 to close it. */
static int respond(int fd, const struct canned *c)
{
	const char *body = c->body != NULL ? c->body : "";
	size_t len = c->len > 0 ? c->len : strlen(body);
	char head[512];
	int n;

	if (c->silent)
		return 0;
	if (c->close_delimited)
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d Canned\r\nContent-Type: application/json\r\n"
			     "Connection: close\r\n%s\r\n",
			     c->status, c->headers != NULL ? c->headers : "");
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d Canned\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\n%s\r\n",
			     c->status, len, c->headers != NULL ? c->headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (send_all(fd, head, (size_t)n) != 0 || send_all(fd, body, len) != 0)
		return -1;
	return c->close_delimited ? -1 : 0;
}

static size_t content_length(const char *headers)
{
	for (const char *p = headers; p != NULL && *p != '\0';) {
		if (strncasecmp(p, "content-length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
		p = strstr(p, "\r\n");
		if (p != NULL)
			p += 2;
	}
	return 0;
}

/* Handles the complete requests at the start of in. Returns the bytes
 * consumed, or (size_t)-1 when the connection is to be closed. */
static size_t serve_buffer(struct server *s, int fd, char *in, size_t inlen)
{
	size_t used = 0;

	for (;;) {
		char *start = in + used;
		char *end = NULL;
		size_t head_len;
		size_t body_len;
		struct canned c;
		char *eol;
		size_t i;

		in[inlen] = '\0';
		end = strstr(start, "\r\n\r\n");
		if (end == NULL)
			return used;
		head_len = (size_t)(end - start) + 4;
		*end = '\0';
		body_len = content_length(start);
		if (used + head_len + body_len > inlen) {
			*end = '\r';
			return used;
		}

		pthread_mutex_lock(&s->mu);
		eol = strstr(start, "\r\n");
		snprintf(s->request_line, sizeof(s->request_line), "%.*s",
			 (int)(eol != NULL ? eol - start : (ptrdiff_t)strlen(start)),
			 start);
		snprintf(s->headers, sizeof(s->headers), "%s",
			 eol != NULL ? eol + 2 : "");
		s->body_len = body_len < sizeof(s->body) - 1 ? body_len
							     : sizeof(s->body) - 1;
		memcpy(s->body, start + head_len, s->body_len);
		s->body[s->body_len] = '\0';
		i = (size_t)(s->requests - s->script_start);
		c = s->canned[i < s->ncanned ? i : s->ncanned - 1];
		s->requests++;
		pthread_mutex_unlock(&s->mu);

		used += head_len + body_len;
		if (respond(fd, &c) != 0)
			return (size_t)-1;
	}
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	char *in = malloc(IN_CAP + 1);
	size_t inlen = 0;
	int cfd = -1;

	assert_non_null(in);
	for (;;) {
		struct pollfd p[3] = {
			{.fd = s->wake[0], .events = POLLIN},
			{.fd = s->lfd, .events = POLLIN},
			{.fd = cfd, .events = POLLIN},
		};

		if (poll(p, cfd >= 0 ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents != 0)
			break;
		if (cfd >= 0 && p[2].revents != 0) {
			ssize_t r = recv(cfd, in + inlen, IN_CAP - inlen, 0);
			size_t used;

			if (r <= 0) {
				close(cfd);
				cfd = -1;
				inlen = 0;
			} else {
				inlen += (size_t)r;
				used = serve_buffer(s, cfd, in, inlen);
				if (used == (size_t)-1 || inlen == IN_CAP) {
					close(cfd);
					cfd = -1;
					inlen = 0;
				} else {
					memmove(in, in + used, inlen - used);
					inlen -= used;
				}
			}
		}
		if (p[1].revents & POLLIN) {
			int nfd = accept(s->lfd, NULL, NULL);
			struct timeval tv = {.tv_sec = 3};

			if (nfd >= 0) {
				/* The client gave up on the old connection. */
				if (cfd >= 0)
					close(cfd);
				setsockopt(nfd, SOL_SOCKET, SO_SNDTIMEO, &tv,
					   sizeof(tv));
				cfd = nfd;
				inlen = 0;
				pthread_mutex_lock(&s->mu);
				s->connections++;
				pthread_mutex_unlock(&s->mu);
			}
		}
	}
	if (cfd >= 0)
		close(cfd);
	free(in);
	return NULL;
}

static int server_setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	int one = 1;

	assert_non_null(s);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&addr, &alen), 0);
	s->port = ntohs(addr.sin_port);
	snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d",
		 s->port);
	assert_int_equal(pipe(s->wake), 0);
	pthread_mutex_init(&s->mu, NULL);
	s->canned[0] = (struct canned){.status = 200, .body = "{\"value\": 1}"};
	s->ncanned = 1;
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	*state = s;
	return 0;
}

static int server_teardown(void **state)
{
	struct server *s = *state;

	assert_int_equal(write(s->wake[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	close(s->wake[0]);
	close(s->wake[1]);
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	for (size_t i = 0; i < s->nowned; i++)
		free(s->owned[i]);
	free(s->owned);
	free(s);
	return 0;
}

/* Sets the responses of the next requests. The bodies are copied. */
static void serve(struct server *s, size_t n, const struct canned *c)
{
	char **owned;

	assert_true(n >= 1 && n <= MAX_CANNED);
	pthread_mutex_lock(&s->mu);
	owned = realloc(s->owned, (s->nowned + n) * sizeof(*owned));
	assert_non_null(owned);
	s->owned = owned;
	for (size_t i = 0; i < n; i++) {
		const char *body = c[i].body != NULL ? c[i].body : "";
		size_t len = c[i].len > 0 ? c[i].len : strlen(body);
		char *copy = malloc(len + 1);

		assert_non_null(copy);
		memcpy(copy, body, len);
		copy[len] = '\0';
		s->owned[s->nowned++] = copy;
		s->canned[i] = c[i];
		s->canned[i].body = copy;
		s->canned[i].len = len;
	}
	s->ncanned = n;
	s->script_start = s->requests;
	pthread_mutex_unlock(&s->mu);
}

static int requests(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static int connections(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->connections;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Copies the last request line / headers / body under the lock. */
static void last_request(struct server *s, char *line, char *headers,
			 char *body, size_t n)
{
	pthread_mutex_lock(&s->mu);
	if (line != NULL)
		snprintf(line, n, "%s", s->request_line);
	if (headers != NULL)
		snprintf(headers, n, "%s", s->headers);
	if (body != NULL)
		snprintf(body, n, "%s", s->body);
	pthread_mutex_unlock(&s->mu);
}

#define TEST_ALERTS_CAP (1024 * 1024)

/* The options of a test client. */
static struct api_opts test_opts(const char *url, int attempts, long timeout_ms,
				 const atomic_int *stop)
{
	struct api_opts opts = {
		.base_url = url,
		.connect_timeout_ms = 1000,
		.timeout_ms = timeout_ms,
		.attempts = attempts,
		.stop = stop,
		.alerts_max_body = TEST_ALERTS_CAP,
	};

	return opts;
}

static struct api *client(const char *url, int attempts, long timeout_ms,
			  const atomic_int *stop)
{
	struct api_opts opts = test_opts(url, attempts, timeout_ms, stop);
	char err[256] = "";
	struct api *api = api_new(&opts, err, sizeof(err));

	if (api == NULL)
		fail_msg("api_new: %s", err);
	return api;
}

/* ---- /alerts parsing ------------------------------------------------------- */

#define WC "\"warn\":{\"value\":100,\"message\":\"w\"}," \
	   "\"critical\":{\"value\":200,\"message\":\"c\"}"

static void test_parse_good_alerts(void **state)
{
	static const char body[] =
		"[\n"
		" {\"name\":\"alert-1\",\"query\":\"test-query-1\","
		"\"intervalSecs\":15,\"repeatIntervalSecs\":100,\"sustainSecs\":0,"
		"\"warn\":{\"value\":100,\"message\":\"warning\"},"
		"\"critical\":{\"value\":200,\"message\":\"critical\"}},\n"
		/* escapes, UTF-8 both raw and \u, extra members, float-typed
		 * integers, empty message, negative threshold */
		" {\"name\":\"disk \\\"root\\\" \xc3\xbc\\u00fc\","
		"\"query\":\"cpu load & mem #1 \xc3\xbc+x\","
		"\"intervalSecs\":60.0,\"sustainSecs\":30,\"extra\":[1,{}],"
		"\"warn\":{\"value\":-5.5,\"message\":\"line1\\nline2 \\\"q\\\"\"},"
		"\"critical\":{\"value\":1e3,\"message\":\"\"}},\n"
		/* limits: the largest interval, repeat 0 -> 300 s, null sustain */
		" {\"name\":\"alert-3\",\"query\":\"q3\",\"intervalSecs\":31622400,"
		"\"repeatIntervalSecs\":0,\"sustainSecs\":null,"
		"\"warn\":{\"value\":0,\"message\":\"w3\"},"
		"\"critical\":{\"value\":179.26082,\"message\":\"c3\"}}\n"
		"]\n";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(log, "");
	assert_int_equal(n, 3);

	assert_string_equal(defs[0].name, "alert-1");
	assert_string_equal(defs[0].query, "test-query-1");
	assert_int_equal(defs[0].interval_ms, 15000);
	assert_int_equal(defs[0].repeat_ms, 100000);
	assert_int_equal(defs[0].sustain_ms, 0);
	assert_true(defs[0].warn_value == 100.0);
	assert_string_equal(defs[0].warn_message, "warning");
	assert_true(defs[0].crit_value == 200.0);
	assert_string_equal(defs[0].crit_message, "critical");

	assert_string_equal(defs[1].name, "disk \"root\" \xc3\xbc\xc3\xbc");
	assert_string_equal(defs[1].query, "cpu load & mem #1 \xc3\xbc+x");
	assert_int_equal(defs[1].interval_ms, 60000);
	assert_int_equal(defs[1].repeat_ms, 300000);
	assert_int_equal(defs[1].sustain_ms, 30000);
	assert_true(defs[1].warn_value == -5.5);
	assert_string_equal(defs[1].warn_message, "line1\nline2 \"q\"");
	assert_true(defs[1].crit_value == 1000.0);
	assert_string_equal(defs[1].crit_message, "");

	assert_string_equal(defs[2].name, "alert-3");
	assert_string_equal(defs[2].query, "q3");
	assert_int_equal(defs[2].interval_ms, API_MAX_SECS * 1000);
	assert_int_equal(defs[2].repeat_ms, 300000);
	assert_int_equal(defs[2].sustain_ms, 0);
	assert_true(defs[2].warn_value == 0.0);
	assert_string_equal(defs[2].warn_message, "w3");
	assert_true(defs[2].crit_value == 179.26082);
	assert_string_equal(defs[2].crit_message, "c3");

	api_defs_free(defs, n);
	free(log);
}

/* Each bad entry sits between two good ones and must be the only one
 * skipped, with exactly one warning that contains want. */
static const struct {
	const char *entry;
	const char *want;
} bad_entries[] = {
	{"{\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is missing"},
	{"{\"name\":\"\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is empty"},
	{"{\"name\":7,\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not a string (it is a number)"},
	{"{\"name\":null,\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not a string (it is null)"},
	{"{\"name\":\"a\\tb\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name has a control character"},
	{"{\"name\":\"bad\\u007f\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name has a control character"},
	{"{\"name\":\"bad\xff\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not valid UTF-8"},
	{"{\"name\":\"bad\xc0\xaf\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1: name is not valid UTF-8"},
	{"{\"name\":\"good-a\",\"query\":\"other\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (good-a): name is a duplicate"},
	{"{\"name\":\"bad\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (bad): query is missing"},
	{"{\"name\":\"bad\",\"query\":\"\",\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (bad): query is empty"},
	{"{\"name\":\"bad\",\"query\":[\"q\"],\"intervalSecs\":10," WC "}",
	 "skipping entry 1 (bad): query is not a string (it is an array)"},
	{"{\"name\":\"bad\",\"query\":\"q\"," WC "}",
	 "skipping entry 1 (bad): intervalSecs is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":\"10\"," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a number (it is a string)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":null," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a number (it is null)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":1.5," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not an integer (1.5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":0," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a positive integer (0)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":-5," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not a positive integer (-5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":31622401," WC "}",
	 "skipping entry 1 (bad): intervalSecs is over 31622400"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":1e300," WC "}",
	 "skipping entry 1 (bad): intervalSecs is over 31622400"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":1e999," WC "}",
	 "skipping entry 1 (bad): intervalSecs is not an integer (inf)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"repeatIntervalSecs\":\"100\"," WC "}",
	 "skipping entry 1 (bad): repeatIntervalSecs is not a number (it is a string)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"repeatIntervalSecs\":2.5," WC "}",
	 "skipping entry 1 (bad): repeatIntervalSecs is not an integer (2.5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"sustainSecs\":-1," WC "}",
	 "skipping entry 1 (bad): sustainSecs is negative (-1)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"sustainSecs\":0.5," WC "}",
	 "skipping entry 1 (bad): sustainSecs is not an integer (0.5)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"sustainSecs\":true," WC "}",
	 "skipping entry 1 (bad): sustainSecs is not a number (it is a boolean)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,\"warn\":100,"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn is not an object (it is a number)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":\"100\",\"message\":\"w\"},"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn.value is not a number (it is a string)"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"message\":\"w\"},"
	 "\"critical\":{\"value\":200,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): warn.value is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":100,\"message\":\"w\"},"
	 "\"critical\":{\"value\":-1e999,\"message\":\"c\"}}",
	 "skipping entry 1 (bad): critical.value is not finite"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":100,\"message\":\"w\"},"
	 "\"critical\":{\"value\":200}}",
	 "skipping entry 1 (bad): critical.message is missing"},
	{"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
	 "\"warn\":{\"value\":100,\"message\":\"w\"},"
	 "\"critical\":{\"value\":200,\"message\":false}}",
	 "skipping entry 1 (bad): critical.message is not a string (it is a boolean)"},
	{"42", "skipping entry 1: entry is not an object (it is a number)"},
	{"[]", "skipping entry 1: entry is not an object (it is an array)"},
	{"null", "skipping entry 1: entry is not an object (it is null)"},
};

static void check_one_bad(const char *entry, const char *want)
{
	static const char good_a[] =
		"{\"name\":\"good-a\",\"query\":\"qa\",\"intervalSecs\":10," WC "}";
	static const char good_b[] =
		"{\"name\":\"good-b\",\"query\":\"qb\",\"intervalSecs\":20," WC "}";
	size_t len = strlen(good_a) + strlen(entry) + strlen(good_b) + 8;
	char *body = malloc(len);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	assert_non_null(body);
	snprintf(body, len, "[%s,%s,%s]", good_a, entry, good_b);
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	if (rc != 0 || n != 2 || count_of(log, "WARN") != 1 ||
	    count_of(log, want) != 1)
		fail_msg("entry %s: rc %d, n %zu, want one warning \"%s\", "
			 "log:\n%s", entry, rc, n, want, log);
	assert_string_equal(defs[0].name, "good-a");
	assert_string_equal(defs[0].query, "qa");
	assert_string_equal(defs[1].name, "good-b");
	assert_int_equal(defs[1].interval_ms, 20000);
	assert_non_null(strstr(log, "WARN alerts: skipping entry 1"));
	api_defs_free(defs, n);
	free(log);
	free(body);
}

static void test_parse_bad_entries(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++)
		check_one_bad(bad_entries[i].entry, bad_entries[i].want);
}

static void test_parse_long_strings(void **state)
{
	size_t big = API_MAX_MESSAGE + 64;
	char *name = malloc(big);
	char *entry = malloc(2 * big);

	(void)state;
	assert_non_null(name);
	assert_non_null(entry);

	/* API_MAX_NAME bytes is fine, one more is not. */
	memset(name, 'n', API_MAX_NAME + 1);
	name[API_MAX_NAME + 1] = '\0';
	snprintf(entry, 2 * big,
		 "{\"name\":\"%s\",\"query\":\"q\",\"intervalSecs\":10," WC "}",
		 name);
	check_one_bad(entry, "skipping entry 1: name is longer than 256 bytes");

	/* An over-long message: the name is usable and shown. */
	memset(name, 'm', API_MAX_MESSAGE + 1);
	name[API_MAX_MESSAGE + 1] = '\0';
	snprintf(entry, 2 * big,
		 "{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":10,"
		 "\"warn\":{\"value\":1,\"message\":\"%s\"},"
		 "\"critical\":{\"value\":2,\"message\":\"c\"}}",
		 name);
	check_one_bad(entry,
		      "skipping entry 1 (bad): warn.message is longer than 4096 bytes");

	/* Exactly at the limits: kept. */
	{
		struct alert_def *defs = NULL;
		size_t n = 0;
		char err[256];
		char nm[API_MAX_NAME + 1];
		char *log;
		int rc;

		memset(nm, 'n', API_MAX_NAME);
		nm[API_MAX_NAME] = '\0';
		name[API_MAX_MESSAGE] = '\0';
		snprintf(entry, 2 * big,
			 "[{\"name\":\"%s\",\"query\":\"q\",\"intervalSecs\":10,"
			 "\"warn\":{\"value\":1,\"message\":\"%s\"},"
			 "\"critical\":{\"value\":2,\"message\":\"c\"}}]",
			 nm, name);
		log = parse_logged(entry, &defs, &n, &rc, err, sizeof(err));
		assert_int_equal(rc, 0);
		assert_int_equal(n, 1);
		assert_string_equal(log, "");
		assert_int_equal(strlen(defs[0].name), API_MAX_NAME);
		assert_int_equal(strlen(defs[0].warn_message), API_MAX_MESSAGE);
		api_defs_free(defs, n);
		free(log);
	}
	free(entry);
	free(name);
}

static void test_parse_all_bad_at_once(void **state)
{
	size_t nbad = sizeof(bad_entries) / sizeof(bad_entries[0]);
	size_t len = 64;
	char *body;
	char *p;
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	for (size_t i = 0; i < nbad; i++)
		len += strlen(bad_entries[i].entry) + 1;
	len += 2 * 200;
	body = malloc(len);
	assert_non_null(body);
	p = body;
	p += snprintf(p, len, "[{\"name\":\"good-a\",\"query\":\"qa\","
		      "\"intervalSecs\":10," WC "}");
	for (size_t i = 0; i < nbad; i++)
		p += snprintf(p, len - (size_t)(p - body), ",%s",
			      bad_entries[i].entry);
	snprintf(p, len - (size_t)(p - body),
		 ",{\"name\":\"good-b\",\"query\":\"qb\",\"intervalSecs\":20," WC "}]");

	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 2);
	assert_string_equal(defs[0].name, "good-a");
	assert_string_equal(defs[1].name, "good-b");
	assert_int_equal(count_of(log, "WARN"), (int)nbad);
	/* The last bad one is at index nbad. */
	{
		char want[64];

		snprintf(want, sizeof(want), "skipping entry %zu:", nbad);
		assert_non_null(strstr(log, want));
	}
	api_defs_free(defs, n);
	free(log);
	free(body);
}

static void test_parse_optional_fields(void **state)
{
	static const struct {
		const char *fields;
		int64_t repeat_ms;
		int64_t sustain_ms;
	} cases[] = {
		{"", 300000, 0},
		{"\"repeatIntervalSecs\":0,", 300000, 0},
		{"\"repeatIntervalSecs\":-1,", 300000, 0},
		{"\"repeatIntervalSecs\":-1e300,", 300000, 0},
		{"\"repeatIntervalSecs\":null,\"sustainSecs\":null,", 300000, 0},
		{"\"repeatIntervalSecs\":1,\"sustainSecs\":0,", 1000, 0},
		{"\"repeatIntervalSecs\":31622400,\"sustainSecs\":31622400,",
		 31622400000LL, 31622400000LL},
		{"\"repeatIntervalSecs\":1e2,\"sustainSecs\":45,", 100000, 45000},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[512];
		struct alert_def *defs = NULL;
		size_t n = 0;
		char err[256] = "";
		char *log;
		int rc;

		snprintf(body, sizeof(body),
			 "[{\"name\":\"a\",\"query\":\"q\",\"intervalSecs\":5,%s" WC "}]",
			 cases[i].fields);
		log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
		if (rc != 0 || n != 1)
			fail_msg("%s: rc %d n %zu log %s", body, rc, n, log);
		assert_string_equal(log, "");
		assert_int_equal(defs[0].interval_ms, 5000);
		assert_int_equal(defs[0].repeat_ms, cases[i].repeat_ms);
		assert_int_equal(defs[0].sustain_ms, cases[i].sustain_ms);
		api_defs_free(defs, n);
		free(log);
	}
}

static void test_parse_bad_bodies(void **state)
{
	static const struct {
		const char *body;
		const char *err;
	} cases[] = {
		{"", "alerts: body is empty"},
		{"not json", "alerts: body is not JSON (starts with \"not json\")"},
		{"<html><body>502 Bad Gateway</body></html>",
		 "alerts: body is not JSON (starts with \"<html><body>502 Bad Gateway</body></html\")"},
		{"{}", "alerts: body is not a JSON array (it is an object)"},
		{"{\"alerts\":[]}", "alerts: body is not a JSON array (it is an object)"},
		{"\"[]\"", "alerts: body is not a JSON array (it is a string)"},
		{"null", "alerts: body is not a JSON array (it is null)"},
		{"17", "alerts: body is not a JSON array (it is a number)"},
		{"[{\"name\":\"a\"", "alerts: body is not JSON (starts with"},
		{"[] []", "alerts: body is not JSON (starts with"},
		{"[1,]", "alerts: body is not JSON (starts with"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct alert_def sentinel;
		struct alert_def *defs = &sentinel;
		size_t n = 99;
		char err[256] = "";
		char *log;
		int rc;

		log = parse_logged(cases[i].body, &defs, &n, &rc, err,
				   sizeof(err));
		if (rc != -1 || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("body %s: rc %d err \"%s\" want \"%s\"",
				 cases[i].body, rc, err, cases[i].err);
		assert_null(defs);
		assert_int_equal(n, 0);
		assert_string_equal(log, "");
		free(log);
	}
}

static void test_parse_empty_array(void **state)
{
	static const char *const bodies[] = {"[]", " \n[ ]\r\n\t"};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct alert_def *defs = NULL;
		size_t n = 99;
		char err[64] = "";

		assert_int_equal(api_parse_alerts(bodies[i], strlen(bodies[i]),
						  &defs, &n, err, sizeof(err)),
				 0);
		assert_int_equal(n, 0);
		assert_non_null(defs);
		api_defs_free(defs, n);
	}
}

/* The parser uses only len bytes: what follows is not read. */
static void test_parse_not_nul_terminated(void **state)
{
	static const char body[] = "[]garbage";
	char *exact = malloc(2);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[64];

	(void)state;
	assert_int_equal(api_parse_alerts(body, 2, &defs, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	api_defs_free(defs, n);

	/* Under ASan a read past the end of exact would be reported. */
	assert_non_null(exact);
	memcpy(exact, "[\"", 2);
	assert_int_equal(api_parse_alerts(exact, 2, &defs, &n, err, sizeof(err)), -1);
	free(exact);
}

static void test_parse_many(void **state)
{
	size_t count = 5000;
	size_t len = count * 256 + 16;
	char *body = malloc(len);
	char *p = body;
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[64];
	char *log;
	int rc;

	(void)state;
	assert_non_null(body);
	*p++ = '[';
	for (size_t i = 0; i < count; i++)
		p += snprintf(p, len - (size_t)(p - body),
			      "%s{\"name\":\"alert-%zu\",\"query\":\"q\","
			      "\"intervalSecs\":10," WC "}",
			      i > 0 ? "," : "", i % 4000);
	snprintf(p, len - (size_t)(p - body), "]");
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 4000);
	/* 1000 duplicates: the first ones named, the rest counted. */
	assert_int_equal(count_of(log, "name is a duplicate"), API_MAX_ENTRY_WARNINGS);
	assert_int_equal(count_of(log, "WARN"), API_MAX_ENTRY_WARNINGS + 1);
	assert_non_null(strstr(log, "alerts: and 950 more warnings not logged (in all: "
				    "entries skipped=1000 values clamped=0)"));
	assert_string_equal(defs[3999].name, "alert-3999");
	api_defs_free(defs, n);
	free(log);
	free(body);
}

static void test_def_copy(void **state)
{
	struct alert_def src = {
		.name = strdup("alert-1"),
		.query = strdup("q"),
		.interval_ms = 15000,
		.repeat_ms = 100000,
		.sustain_ms = 5000,
		.warn_value = 1.5,
		.warn_message = strdup("w"),
		.crit_value = 2.5,
		.crit_message = strdup("c"),
	};
	struct alert_def dst;

	(void)state;
	assert_int_equal(api_def_copy(&dst, &src), 0);
	assert_ptr_not_equal(dst.name, src.name);
	assert_ptr_not_equal(dst.crit_message, src.crit_message);
	api_def_clear(&src);
	assert_null(src.name);
	assert_string_equal(dst.name, "alert-1");
	assert_string_equal(dst.query, "q");
	assert_string_equal(dst.warn_message, "w");
	assert_string_equal(dst.crit_message, "c");
	assert_int_equal(dst.interval_ms, 15000);
	assert_int_equal(dst.repeat_ms, 100000);
	assert_int_equal(dst.sustain_ms, 5000);
	assert_true(dst.warn_value == 1.5 && dst.crit_value == 2.5);
	api_def_clear(&dst);
	api_def_clear(&dst); /* idempotent */
	api_def_clear(NULL);
	api_defs_free(NULL, 3);
}

/* ---- /query parsing -------------------------------------------------------- */

static void test_parse_value_good(void **state)
{
	static const struct {
		const char *body;
		double value;
	} cases[] = {
		{"{\"value\": 179.26082}", 179.26082},
		{"{\"value\":0}", 0.0},
		{"{\"value\":0.0}", 0.0},
		{"{\"value\":-5}", -5.0},
		{"{\"value\":150}", 150.0},
		{"{\"value\":1e308}", 1e308},
		{" {\"target\":\"x\",\"value\":2.5}\n", 2.5},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -12345;
		char err[128] = "";

		if (api_parse_value(cases[i].body, strlen(cases[i].body), &v, err,
				    sizeof(err)) != 0)
			fail_msg("%s: %s", cases[i].body, err);
		assert_true(v == cases[i].value);
	}
}

static void test_parse_value_bad(void **state)
{
	static const struct {
		const char *body;
		const char *err;
	} cases[] = {
		{"<html><body>Internal error</body></html>",
		 "body is not JSON (starts with \"<html><body>Internal error</body></html>\")"},
		{"<html>\n<body>\n\n\nInternal server error, please retry later</body></html>",
		 "body is not JSON (starts with \"<html>\\n<body>\\n\\n\\nInternal server error, p\")"},
		{"", "body is empty"},
		{"   ", "body is not JSON"},
		{"{\"value\":\"1\"}", "value is not a number (it is a string)"},
		{"{\"value\":null}", "value is not a number (it is null)"},
		{"{\"value\":true}", "value is not a number (it is a boolean)"},
		{"{\"value\":[1]}", "value is not a number (it is an array)"},
		{"{}", "body has no \"value\""},
		{"{\"Value\":1}", "body has no \"value\""},
		{"[]", "body is not a JSON object (it is an array)"},
		{"1", "body is not a JSON object (it is a number)"},
		{"NaN", "body is not JSON"},
		{"{\"value\": NaN}", "body is not JSON"},
		{"{\"value\": Infinity}", "body is not JSON"},
		{"{\"value\": -Infinity}", "body is not JSON"},
		{"{\"value\": 1e999}", "value is not finite"},
		{"{\"value\": -1e999}", "value is not finite"},
		{"{\"value\": 17", "body is not JSON"},
		{"{\"value\": 17}}", "body is not JSON"},
		{"{\"value\": 0x10}", "body is not JSON"},
		{"{\"value\": 1} trailing", "body is not JSON"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = 42;
		char err[128] = "";
		int rc = api_parse_value(cases[i].body, strlen(cases[i].body), &v,
					 err, sizeof(err));

		if (rc != -1 || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fail_msg("%s: rc %d err \"%s\" want \"%s\"", cases[i].body,
				 rc, err, cases[i].err);
		assert_true(v == 42);
	}
}

static void test_parse_value_length(void **state)
{
	static const char body[] = "{\"value\":12}345";
	double v = 0;
	char err[64];

	(void)state;
	assert_int_equal(api_parse_value(body, 12, &v, err, sizeof(err)), 0);
	assert_true(v == 12.0);
	/* A tiny err buffer is truncated, not overrun; NULL is allowed. */
	assert_int_equal(api_parse_value("x", 1, &v, err, 4), -1);
	assert_string_equal(err, "bod");
	assert_int_equal(api_parse_value("x", 1, &v, NULL, 0), -1);
}

/* ---- the fuzz seed corpus ---------------------------------------------------- */

/* Reads path into an exact-size buffer, so that ASan sees any read past
 * the end. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long size;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	data = malloc(size > 0 ? (size_t)size : 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len = (size_t)size;
	return data;
}

/* Every seed goes through its parser; seeds named good_* must pass. */
static void run_corpus(const char *dir, int alerts)
{
	char path[1024];
	DIR *d;
	const struct dirent *ent;
	int files = 0;

	snprintf(path, sizeof(path), "%s/tests/fuzz/%s", SOURCE_DIR, dir);
	d = opendir(path);
	assert_non_null(d);
	for (ent = readdir(d); ent != NULL; ent = readdir(d)) {
		int good = strncmp(ent->d_name, "good_", 5) == 0;
		struct capture cap;
		char err[256] = "";
		size_t len = 0;
		char *data;
		char *log;
		int rc;

		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/tests/fuzz/%s/%s", SOURCE_DIR,
			 dir, ent->d_name);
		data = read_file(path, &len);
		capture_begin(&cap);
		if (alerts) {
			struct alert_def *defs = NULL;
			size_t n = 0;

			rc = api_parse_alerts(data, len, &defs, &n, err, sizeof(err));
			if (good && n == 0)
				rc = -2;
			api_defs_free(defs, n);
		} else {
			double v = 0;

			rc = api_parse_value(data, len, &v, err, sizeof(err));
		}
		log = capture_end(&cap);
		if (rc < -1 || (good && (rc != 0 || log[0] != '\0')))
			fail_msg("%s: rc %d err \"%s\" log %s", path, rc, err, log);
		free(log);
		free(data);
		files++;
	}
	closedir(d);
	assert_true(files >= 5);
}

static void test_corpus(void **state)
{
	(void)state;
	run_corpus("corpus_alerts", 1);
	run_corpus("corpus_query", 0);
}

/* ---- the HTTP client ------------------------------------------------------ */

static void test_new_rejects(void **state)
{
	static const char *const urls[] = {"", "ftp://127.0.0.1/", "localhost:9001",
					   "http://[::1", "http://", "http://h:99999"};
	struct api_opts opts = {.attempts = 1, .timeout_ms = 1000};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		opts.base_url = urls[i];
		err[0] = '\0';
		assert_null(api_new(&opts, err, sizeof(err)));
		assert_non_null(strstr(err, "api: server URL"));
	}
	opts.base_url = "http://127.0.0.1:1";
	opts.attempts = 0;
	assert_null(api_new(&opts, err, sizeof(err)));
	assert_string_equal(err, "api: attempts is 0, must be at least 1");
	opts.attempts = 1;
	opts.timeout_ms = -1;
	assert_null(api_new(&opts, err, sizeof(err)));
	api_free(NULL);
}

/* The server URL as logs show it: userinfo hidden, also in a URL libcurl
 * cannot read, and in a buffer too small for it. */
static void test_redact_url(void **state)
{
	static const struct {
		const char *url, *shown;
	} cases[] = {
		{"http://user:pass@host:9001", "http://***@host:9001"},
		{"http://user:pass@host:9001/", "http://***@host:9001/"},
		{"https://token@[::1]:8443/base", "https://***@[::1]:8443/base"},
		{"http://u:p@ss@host", "http://***@host"},
		{"http://u:pa/ss@host", "http://***@host"},
		{"http://u:secret@[::1", "http://***@[::1"},
		{"http://host/a@b", "http://host/a@b"},
		{"http://u:p@host/a@b", "http://***@host/a@b"},
		{"http://host:9001", "http://host:9001"},
		{"http://h/?x=a@b", "http://h/?x=a@b"},
		{"", ""},
	};
	char out[64];
	char tiny[12];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = api_redact_url(out, sizeof(out), cases[i].url);

		assert_ptr_equal(got, out);
		if (strcmp(out, cases[i].shown) != 0)
			fail_msg("%s shown as %s, want %s", cases[i].url, out, cases[i].shown);
	}
	api_redact_url(tiny, sizeof(tiny), "http://user:secret@h");
	assert_string_equal(tiny, "http://***@");
}

static void test_check_url(void **state)
{
	static const char *const good[] = {"http://127.0.0.1:9001", "https://h/base/",
					   "http://[::1]:80", "http://u:p@h:1"};
	static const char *const bad[] = {"http://[::1", "http://", "http://h:99999",
					  "http://h:0", "ftp://x", "http://a b", "http://h/?q",
					  "http://h#f", "localhost:9001"};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err[0] = '\0';
		if (api_check_url(good[i], err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (api_check_url(bad[i], err, sizeof(err)) != -1 || err[0] != '\'')
			fail_msg("%s: err '%s'", bad[i], err);
	}
}

static void test_fetch_alerts(void **state)
{
	struct server *s = *state;
	static const char body[] =
		"[{\"name\":\"alert-1\",\"query\":\"test-query-1\",\"intervalSecs\":15,"
		"\"repeatIntervalSecs\":100,\"sustainSecs\":0,"
		"\"warn\":{\"value\":100,\"message\":\"warning\"},"
		"\"critical\":{\"value\":200,\"message\":\"critical\"}},"
		"{\"name\":\"alert-2\",\"query\":\"test-query-2\",\"intervalSecs\":1.5," WC "}]";
	struct canned c = {.status = 200, .body = body};
	struct api *api = client(s->base_url, 3, 2000, NULL);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char line[8192];
	struct capture cap;
	char *log;
	int rc;

	serve(s, 1, &c);
	capture_begin(&cap);
	rc = api_fetch_alerts(api, &defs, &n, err, sizeof(err));
	log = capture_end(&cap);
	if (rc != API_OK)
		fail_msg("fetch: %d %s", rc, err);
	assert_int_equal(n, 1);
	assert_string_equal(defs[0].name, "alert-1");
	assert_int_equal(defs[0].repeat_ms, 100000);
	assert_int_equal(count_of(log, "alerts: skipping entry 1 (alert-2): "
				       "intervalSecs is not an integer (1.5)"), 1);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_string_equal(line, "GET /alerts HTTP/1.1");
	assert_int_equal(requests(s), 1);
	api_defs_free(defs, n);
	free(log);
	api_free(api);
}

static void test_fetch_alerts_not_array(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 200, .body = "{\"error\":\"busy\"}"},
		{.status = 200, .body = "[]"},
	};
	struct api *api = client(s->base_url, 2, 2000, NULL);
	struct alert_def *defs = NULL;
	size_t n = 7;
	char err[256] = "";

	/* A bad body is retried within the attempts... */
	serve(s, 2, c);
	assert_int_equal(api_fetch_alerts(api, &defs, &n, err, sizeof(err)), API_OK);
	assert_int_equal(n, 0);
	assert_int_equal(requests(s), 2);
	api_defs_free(defs, n);

	/* ... and fails when every attempt gets one. */
	serve(s, 1, c);
	assert_int_equal(api_fetch_alerts(api, &defs, &n, err, sizeof(err)),
			 API_ERR_BODY);
	assert_null(defs);
	assert_int_equal(n, 0);
	assert_string_equal(err, "alerts: body is not a JSON array (it is an object)"
				 " (2 attempts)");
	assert_int_equal(requests(s), 4);
	api_free(api);
}

static char *big_body(size_t len)
{
	char *b = malloc(len);

	assert_non_null(b);
	b[0] = '[';
	memset(b + 1, ' ', len - 2);
	b[len - 1] = ']';
	return b;
}

static void test_fetch_alerts_over_cap(void **state)
{
	struct server *s = *state;
	size_t len = 2 * 1024 * 1024;
	char *body = big_body(len);
	struct api *api = client(s->base_url, 3, 5000, NULL);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";

	/* With a Content-Length (curl stops at the headers) and without one
	 * (the write callback stops at the cap): neither is retried. */
	for (int delimited = 0; delimited <= 1; delimited++) {
		struct canned c = {.status = 200, .body = body, .len = len,
				   .close_delimited = delimited};

		serve(s, 1, &c);
		assert_int_equal(api_fetch_alerts(api, &defs, &n, err, sizeof(err)),
				 API_ERR_BODY);
		assert_string_equal(err, "alerts: body over 1048576 bytes");
		assert_null(defs);
		assert_int_equal(requests(s), delimited + 1);
	}

	/* Exactly at the cap is fine. */
	{
		struct canned c = {.status = 200, .body = body,
				   .len = TEST_ALERTS_CAP,
				   .close_delimited = 1};

		body[TEST_ALERTS_CAP - 1] = ']';
		serve(s, 1, &c);
		assert_int_equal(api_fetch_alerts(api, &defs, &n, err, sizeof(err)),
				 API_OK);
		assert_int_equal(n, 0);
		api_defs_free(defs, n);
	}
	api_free(api);
	free(body);
}

static void test_query_over_cap(void **state)
{
	struct server *s = *state;
	size_t len = 100 * 1024;
	char *body = big_body(len);
	struct api *api = client(s->base_url, 3, 5000, NULL);
	double v = 0;
	char err[256] = "";
	struct canned ok = {.status = 200, .body = "{\"value\": 3}"};

	{
		struct canned c = {.status = 200, .body = body, .len = len,
				   .close_delimited = 1};

		serve(s, 1, &c);
		assert_int_equal(api_query(api, "q", &v, err, sizeof(err)),
				 API_ERR_BODY);
		assert_string_equal(err, "query q: body over 65536 bytes");
		assert_int_equal(requests(s), 1);
	}
	{
		/* A 500 with a huge page is a 500, and retried. */
		struct canned c[] = {
			{.status = 500, .body = body, .len = len},
			{.status = 200, .body = "{\"value\": 3}"},
		};

		serve(s, 2, c);
		assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_OK);
		assert_true(v == 3);
		assert_int_equal(requests(s), 3);
	}
	/* The client still works after aborted transfers. */
	serve(s, 1, &ok);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_OK);
	api_free(api);
	free(body);
}

static void test_query_url_encoding(void **state)
{
	struct server *s = *state;
	static const char target[] =
		"cpu load & mem #1 \xc3\xbc+x %41/?=;\"'\\<>\t\x7f~._-";
	struct api *api = client(s->base_url, 1, 2000, NULL);
	double v = 0;
	char err[256] = "";
	char line[8192];
	char decoded[512];
	const char *q;
	const char *end;
	char raw[512];

	assert_int_equal(api_query(api, target, &v, err, sizeof(err)), API_OK);
	assert_true(v == 1.0);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_true(strncmp(line, "GET /query?target=", 18) == 0);
	q = line + 18;
	end = strstr(q, " HTTP/1.1");
	assert_non_null(end);
	assert_string_equal(end, " HTTP/1.1");
	snprintf(raw, sizeof(raw), "%.*s", (int)(end - q), q);
	assert_true(strncmp(raw, "cpu%20load%20%26%20mem%20%231%20%C3%BC%2Bx%20%2541"
				 "%2F%3F%3D", 54) == 0);
	for (const char *p = raw; *p != '\0'; p++)
		assert_true(strchr(" &#+?/=\"", *p) == NULL);
	assert_int_equal(url_decode(raw, decoded, sizeof(decoded)), 0);
	assert_string_equal(decoded, target);
	api_free(api);
}

static void test_trailing_slash(void **state)
{
	struct server *s = *state;
	char url[80];
	struct api *api;
	double v = 0;
	char line[8192];

	snprintf(url, sizeof(url), "%s//", s->base_url);
	api = client(url, 1, 2000, NULL);
	assert_int_equal(api_query(api, "a", &v, NULL, 0), API_OK);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_string_equal(line, "GET /query?target=a HTTP/1.1");
	api_free(api);
}

static void test_retry_500_then_200(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 500, .body = "oops"},
		{.status = 200, .body = "{\"value\": 179.26082}"},
	};
	struct api *api = client(s->base_url, 3, 2000, NULL);
	double v = 0;
	char err[256] = "";

	serve(s, 2, c);
	assert_int_equal(api_query(api, "test-query-3", &v, err, sizeof(err)), API_OK);
	assert_true(v == 179.26082);
	assert_int_equal(requests(s), 2);
	/* Both requests went over one kept-alive connection. */
	assert_int_equal(connections(s), 1);
	api_free(api);
}

static void test_retry_500_exhausted(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 500, .body = "oops"};
	struct api *api = client(s->base_url, 3, 2000, NULL);
	double v = 0;
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(api_query(api, "test-query-3", &v, err, sizeof(err)),
			 API_ERR_SERVER);
	assert_string_equal(err, "query test-query-3: HTTP 500 (3 attempts)");
	assert_int_equal(requests(s), 3);
	api_free(api);
}

static void test_client_error_not_retried(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 400, .body = "{\"error\":\"bad\"}"};
	struct api *api = client(s->base_url, 3, 2000, NULL);
	double v = 0;
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(api_query(api, "cpu load", &v, err, sizeof(err)),
			 API_ERR_CLIENT);
	assert_string_equal(err, "query \"cpu load\": HTTP 400");
	assert_int_equal(requests(s), 1);
	assert_int_equal(api_notify(api, "a", "m", err, sizeof(err)),
			 API_ERR_CLIENT);
	assert_string_equal(err, "notify a: HTTP 400");
	assert_int_equal(requests(s), 2);
	api_free(api);
}

static void test_redirect_not_followed(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 302, .body = "",
			   .headers = "Location: /elsewhere\r\n"};
	struct api *api = client(s->base_url, 2, 2000, NULL);
	double v = 0;
	char err[256] = "";
	char line[8192];

	serve(s, 1, &c);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_SERVER);
	assert_string_equal(err, "query q: HTTP 302 (2 attempts)");
	assert_int_equal(requests(s), 2);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_string_equal(line, "GET /query?target=q HTTP/1.1");
	api_free(api);
}

static void test_bad_query_body_retried(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 200, .body = "<html>"},
		{.status = 200, .body = "{\"value\": 0}"},
	};
	struct api *api = client(s->base_url, 3, 2000, NULL);
	double v = 42;
	char err[256] = "";

	serve(s, 2, c);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_OK);
	assert_true(v == 0.0);
	assert_int_equal(requests(s), 2);

	serve(s, 1, c);
	v = 42;
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_BODY);
	assert_string_equal(err, "query q: body is not JSON (starts with <html>)"
				 " (3 attempts)");
	assert_int_equal(requests(s), 5);
	assert_true(v == 42);
	api_free(api);
}

static void test_notify_body(void **state)
{
	struct server *s = *state;
	static const char message[] = "disk \"root\" is full\nsecond line \xc3\xbc \\ /";
	static const char name[] = "alert \"7\" \xc3\xbc";
	struct canned c = {.status = 200, .body = "whatever, not JSON"};
	struct api *api = client(s->base_url, 1, 2000, NULL);
	char err[256] = "";
	char line[8192];
	char headers[8192];
	char body[8192];
	cJSON *root;
	const cJSON *j;

	serve(s, 1, &c);
	if (api_notify(api, name, message, err, sizeof(err)) != API_OK)
		fail_msg("notify: %s", err);
	last_request(s, line, headers, body, sizeof(line));
	assert_string_equal(line, "POST /notify HTTP/1.1");
	assert_non_null(strstr(headers, "Content-Type: application/json\r\n"));
	assert_int_equal(has_header(headers, "expect:"), 0);
	root = cJSON_Parse(body);
	assert_non_null(root);
	assert_int_equal(cJSON_GetArraySize(root), 2);
	j = cJSON_GetObjectItemCaseSensitive(root, "alertName");
	assert_true(cJSON_IsString(j));
	assert_string_equal(j->valuestring, name);
	j = cJSON_GetObjectItemCaseSensitive(root, "message");
	assert_true(cJSON_IsString(j));
	assert_string_equal(j->valuestring, message);
	cJSON_Delete(root);
	api_free(api);
}

static void test_resolve_body(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 503, .body = "later"},
		{.status = 204},
	};
	struct api *api = client(s->base_url, 2, 2000, NULL);
	char err[256] = "";
	char line[8192];
	char headers[8192];
	char body[8192];
	cJSON *root;
	const cJSON *j;

	serve(s, 2, c);
	if (api_resolve(api, "alert-1", err, sizeof(err)) != API_OK)
		fail_msg("resolve: %s", err);
	assert_int_equal(requests(s), 2);
	last_request(s, line, headers, body, sizeof(line));
	assert_string_equal(line, "POST /resolve HTTP/1.1");
	assert_non_null(strstr(headers, "Content-Type: application/json\r\n"));
	root = cJSON_Parse(body);
	assert_non_null(root);
	assert_int_equal(cJSON_GetArraySize(root), 1);
	j = cJSON_GetObjectItemCaseSensitive(root, "alertName");
	assert_true(cJSON_IsString(j));
	assert_string_equal(j->valuestring, "alert-1");
	cJSON_Delete(root);

	/* A GET after a POST is a GET again. */
	serve(s, 1, &(struct canned){.status = 200, .body = "{\"value\":1}"});
	assert_int_equal(api_query(api, "q", &(double){0}, err, sizeof(err)), API_OK);
	last_request(s, line, NULL, body, sizeof(line));
	assert_string_equal(line, "GET /query?target=q HTTP/1.1");
	assert_string_equal(body, "");
	api_free(api);
}

static void test_keep_alive(void **state)
{
	struct server *s = *state;
	struct api *api = client(s->base_url, 1, 2000, NULL);
	double v = 0;

	for (int i = 0; i < 5; i++)
		assert_int_equal(api_query(api, "q", &v, NULL, 0), API_OK);
	assert_int_equal(api_notify(api, "a", "m", NULL, 0), API_OK);
	assert_int_equal(api_resolve(api, "a", NULL, 0), API_OK);
	assert_int_equal(requests(s), 7);
	assert_int_equal(connections(s), 1);
	api_free(api);
}

static void test_silent_server_times_out(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	struct api *api = client(s->base_url, 2, 300, NULL);
	double v = 0;
	char err[256] = "";
	double t0;
	double elapsed;

	serve(s, 1, &c);
	t0 = now_s();
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)),
			 API_ERR_TRANSPORT);
	elapsed = now_s() - t0;
	assert_true(elapsed < 2.0);
	assert_true(elapsed >= 0.5);
	assert_true(strncmp(err, "query q: transport error: ", 26) == 0);
	assert_non_null(strstr(err, "(2 attempts)"));
	assert_int_equal(requests(s), 2);
	api_free(api);
}

/* A notify that timed out may have been taken: not sent again at once
 * (the outbox's backoff retries it). A query is. */
static void test_post_not_repeated_after_timeout(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	struct api *api = client(s->base_url, 3, 300, NULL);
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(api_notify(api, "a", "m", err, sizeof(err)), API_ERR_TRANSPORT);
	assert_true(strncmp(err, "notify a: transport error: ", 27) == 0);
	assert_null(strstr(err, "attempts"));
	assert_int_equal(requests(s), 1);
	/* the server may have taken it: a repeat is no longer dropped */
	assert_true(api_maybe_sent(api));
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_ERR_TRANSPORT);
	assert_int_equal(requests(s), 2);
	assert_true(api_maybe_sent(api));
	api_free(api);
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];
	struct api *api;
	double v = 0;
	char err[256] = "";
	double t0;

	(void)state;
	/* A port that is bound but not listening refuses connections. */
	assert_true(fd >= 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(addr.sin_port));
	api = client(url, 3, 2000, NULL);
	t0 = now_s();
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_TRANSPORT);
	assert_true(now_s() - t0 < 2.0);
	assert_true(strncmp(err, "query q: transport error: ", 26) == 0);
	assert_non_null(strstr(err, "(3 attempts)"));
	/* never connected: nothing reached the server, tried again at once */
	assert_int_equal(api_notify(api, "a", "m", err, sizeof(err)),
			 API_ERR_TRANSPORT);
	assert_non_null(strstr(err, "(3 attempts)"));
	assert_false(api_maybe_sent(api));
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_ERR_TRANSPORT);
	assert_false(api_maybe_sent(api));
	{
		struct alert_def *defs = NULL;
		size_t n = 0;

		assert_int_equal(api_fetch_alerts(api, &defs, &n, err, sizeof(err)),
				 API_ERR_TRANSPORT);
		assert_null(defs);
	}
	api_free(api);
	close(fd);
}

static void test_stop_flag(void **state)
{
	struct server *s = *state;
	atomic_int stop = 1;
	struct api *api = client(s->base_url, 3, 2000, &stop);
	double v = 0;
	char err[256] = "";

	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_TRANSPORT);
	assert_string_equal(err, "query q: stopped");
	assert_int_equal(api_notify(api, "a", "m", err, sizeof(err)),
			 API_ERR_TRANSPORT);
	assert_string_equal(err, "notify a: stopped");
	assert_int_equal(requests(s), 0);
	stop = 0;
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_OK);
	assert_int_equal(requests(s), 1);
	api_free(api);
}

/* Sets *flag after delay_ms, from its own thread. */
struct delayed_stop {
	atomic_int *flag;
	long delay_ms;
	pthread_t thread;
};

static void *delayed_stop_main(void *arg)
{
	struct delayed_stop *d = arg;
	struct timespec ts = {.tv_sec = d->delay_ms / 1000,
			      .tv_nsec = (d->delay_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	atomic_store(d->flag, 1);
	return NULL;
}

static void delayed_stop_start(struct delayed_stop *d, atomic_int *flag, long delay_ms)
{
	d->flag = flag;
	d->delay_ms = delay_ms;
	assert_int_equal(pthread_create(&d->thread, NULL, delayed_stop_main, d), 0);
}

/* A stop cuts off a GET in flight: a /alerts the server would answer
 * after 10 s, and a query, end within about a second of the flag. */
static void test_stop_cuts_off_get(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	atomic_int stop = 0;
	struct api *api = client(s->base_url, 3, 10000, &stop);
	struct delayed_stop d;
	struct alert_def *defs = NULL;
	size_t n = 0;
	double v = 0;
	char err[256] = "";
	double t0;

	serve(s, 1, &c);
	t0 = now_s();
	delayed_stop_start(&d, &stop, 200);
	assert_int_equal(api_fetch_alerts(api, &defs, &n, err, sizeof(err)), API_ERR_TRANSPORT);
	assert_true(now_s() - t0 < 1.5);
	pthread_join(d.thread, NULL);
	assert_string_equal(err, "alerts: stopped");
	assert_null(defs);
	assert_int_equal(requests(s), 1);

	stop = 0;
	t0 = now_s();
	delayed_stop_start(&d, &stop, 200);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_TRANSPORT);
	assert_true(now_s() - t0 < 1.5);
	pthread_join(d.thread, NULL);
	assert_string_equal(err, "query q: stopped");
	assert_int_equal(requests(s), 2);
	api_free(api);
}

/* A POST in flight is not cut off by a stop: it runs to its timeout, so
 * that whether it was taken is known. */
static void test_stop_leaves_post_in_flight(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	atomic_int stop = 0;
	struct api *api = client(s->base_url, 3, 1500, &stop);
	struct delayed_stop d;
	char err[256] = "";
	double t0;
	double elapsed;

	serve(s, 1, &c);
	t0 = now_s();
	delayed_stop_start(&d, &stop, 200);
	assert_int_equal(api_notify(api, "a", "m", err, sizeof(err)), API_ERR_TRANSPORT);
	elapsed = now_s() - t0;
	pthread_join(d.thread, NULL);
	assert_true(elapsed >= 1.4);
	assert_true(strncmp(err, "notify a: transport error: ", 27) == 0);
	assert_null(strstr(err, "stopped"));
	assert_int_equal(requests(s), 1);

	/* A POST answered while the flag is set is taken as answered. */
	c = (struct canned){.status = 200};
	serve(s, 1, &c);
	stop = 0;
	api_free(api);
	api = client(s->base_url, 1, 1500, &stop);
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_OK);
	api_free(api);
}

/* 429 and 408 ask for time: API_ERR_SERVER (retried later by the caller),
 * one attempt only, and the Retry-After is there to read. Other 4xx stay
 * API_ERR_CLIENT. */
static void test_too_many_requests(void **state)
{
	struct server *s = *state;
	struct api *api = client(s->base_url, 3, 2000, NULL);
	struct canned c429 = {.status = 429, .headers = "Retry-After: 7\r\n"};
	struct canned c408 = {.status = 408, .headers = "Retry-After: 2\r\n"};
	struct canned bare = {.status = 429};
	struct canned c404 = {.status = 404};
	struct canned c503 = {.status = 503, .headers = "Retry-After: 30\r\n"};
	struct canned ok = {.status = 200, .body = "{\"value\": 1}"};
	double v = 0;
	char err[256] = "";

	assert_int_equal(api_retry_after_ms(api), 0);
	serve(s, 1, &c429);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_SERVER);
	assert_int_equal(requests(s), 1);
	assert_int_equal(api_retry_after_ms(api), 7000);
	assert_string_equal(err, "query q: HTTP 429 (retry after 7000 ms)");

	serve(s, 1, &c408);
	assert_int_equal(api_notify(api, "a", "m", err, sizeof(err)), API_ERR_SERVER);
	assert_int_equal(requests(s), 2);
	assert_int_equal(api_retry_after_ms(api), 2000);

	serve(s, 1, &bare);
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_ERR_SERVER);
	assert_int_equal(requests(s), 3);
	assert_int_equal(api_retry_after_ms(api), 0);
	assert_string_equal(err, "resolve a: HTTP 429");

	serve(s, 1, &c404);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_CLIENT);
	assert_int_equal(requests(s), 4);

	/* Any answer may carry it; a 503 is still tried again at once. */
	serve(s, 1, &c503);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_ERR_SERVER);
	assert_int_equal(requests(s), 7);
	assert_int_equal(api_retry_after_ms(api), 30000);

	/* The next answer without one clears it. */
	serve(s, 1, &ok);
	assert_int_equal(api_query(api, "q", &v, err, sizeof(err)), API_OK);
	assert_int_equal(api_retry_after_ms(api), 0);
	api_free(api);
}

/* Retry-After as an HTTP-date, and values that are not one. */
static void test_retry_after_forms(void **state)
{
	struct server *s = *state;
	struct api *api = client(s->base_url, 1, 2000, NULL);
	char date[128];
	char headers[160];
	time_t later = time(NULL) + 120;
	struct tm tm;
	struct canned c = {.status = 429};
	char err[256] = "";
	int64_t ms;

	gmtime_r(&later, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(headers, sizeof(headers), "Retry-After: %s\r\n", date);
	c.headers = headers;
	serve(s, 1, &c);
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_ERR_SERVER);
	ms = api_retry_after_ms(api);
	if (ms < 110000 || ms > 121000)
		fail_msg("Retry-After %s read as %lld ms", date, (long long)ms);

	c.headers = "Retry-After: soon\r\n";
	serve(s, 1, &c);
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_ERR_SERVER);
	assert_int_equal(api_retry_after_ms(api), 0);

	c.headers = "Retry-After: Thu, 01 Jan 1970 00:00:01 GMT\r\n";
	serve(s, 1, &c);
	assert_int_equal(api_resolve(api, "a", err, sizeof(err)), API_ERR_SERVER);
	assert_int_equal(api_retry_after_ms(api), 0);
	api_free(api);
}

/* ---- many queries from one thread (api_multi) ----------------------------- */

struct finished {
	int calls;              /* done calls */
	int tags[64];           /* done calls per tag */
	int rc[64];
	double value[64];
	char err[64][API_ERR_MAX];
};

static void on_done(void *tag, int rc, double value, const char *err, void *arg)
{
	struct finished *f = arg;
	int i = (int)(intptr_t)tag;

	assert_true(i >= 0 && i < 64);
	f->calls++;
	f->tags[i]++;
	f->rc[i] = rc;
	f->value[i] = value;
	snprintf(f->err[i], sizeof(f->err[i]), "%s", err);
}

static struct api_multi *multi_client(const char *url, size_t n, int attempts,
				      long timeout_ms, const atomic_int *stop)
{
	struct api_opts opts = test_opts(url, attempts, timeout_ms, stop);
	char err[256] = "";
	struct api_multi *m = api_multi_new(&opts, n, err, sizeof(err));

	if (m == NULL)
		fail_msg("api_multi_new: %s", err);
	return m;
}

/* Runs m until nothing is in flight (at most 10 s). */
static void run_all(struct api_multi *m, struct finished *f)
{
	double t0 = now_s();

	while (api_multi_busy(m) > 0) {
		assert_int_equal(api_multi_run(m, 100, on_done, f), 0);
		assert_true(now_s() - t0 < 10);
	}
}

/* A slot retries at once like api_query, over its kept-alive connection,
 * and reports the last error with the attempts made. */
static void test_multi_retries(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 500, .body = "oops"},
		{.status = 200, .body = "{\"value\": 179.26082}"},
		{.status = 503, .body = "busy"},
	};
	struct api_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	struct finished *f = calloc(1, sizeof(*f));
	char err[256] = "";

	serve(s, 3, c);
	assert_int_equal(api_multi_idle(m), 1);
	assert_int_equal(api_multi_start(m, "test-query-3", (void *)0, err, sizeof(err)), API_OK);
	assert_int_equal(api_multi_idle(m), 0);
	/* one slot: a second query must wait */
	assert_int_equal(api_multi_start(m, "x", (void *)1, err, sizeof(err)), API_ERR_INTERNAL);
	run_all(m, f);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->rc[0], API_OK);
	assert_true(f->value[0] == 179.26082);
	assert_string_equal(f->err[0], "");
	assert_int_equal(requests(s), 2);
	assert_int_equal(connections(s), 1);
	/* the third answer repeats: 503 three times */
	assert_int_equal(api_multi_start(m, "a b", (void *)2, err, sizeof(err)), API_OK);
	run_all(m, f);
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->rc[2], API_ERR_SERVER);
	assert_string_equal(f->err[2], "query \"a b\": HTTP 503 (3 attempts)");
	assert_int_equal(requests(s), 5);
	assert_int_equal(connections(s), 1);
	api_multi_free(m);
	free(f);
}

/* Bodies are validated as api_query validates them. */
static void test_multi_bad_body(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 200, .body = "<html>"};
	struct api_multi *m = multi_client(s->base_url, 1, 2, 2000, NULL);
	struct finished *f = calloc(1, sizeof(*f));
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(api_multi_start(m, "q", (void *)5, err, sizeof(err)), API_OK);
	run_all(m, f);
	assert_int_equal(f->rc[5], API_ERR_BODY);
	assert_string_equal(f->err[5], "query q: body is not JSON (starts with <html>) (2 attempts)");
	api_multi_free(m);
	free(f);
}

/* A silent server: the query times out after each attempt; a stop cuts
 * the one in flight off at once, and no new one starts. */
static void test_multi_timeout_and_cancel(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	atomic_int stop = 0;
	struct api_multi *m = multi_client(s->base_url, 2, 2, 300, &stop);
	struct finished *f = calloc(1, sizeof(*f));
	char err[256] = "";
	double t0, elapsed;

	serve(s, 1, &c);
	t0 = now_s();
	assert_int_equal(api_multi_start(m, "q", (void *)0, err, sizeof(err)), API_OK);
	run_all(m, f);
	elapsed = now_s() - t0;
	assert_true(elapsed >= 0.5 && elapsed < 2.0);
	assert_int_equal(f->rc[0], API_ERR_TRANSPORT);
	assert_true(strncmp(f->err[0], "query q: transport error: ", 26) == 0);
	assert_non_null(strstr(f->err[0], "(2 attempts)"));
	/* cut off while waiting */
	assert_int_equal(api_multi_start(m, "r", (void *)1, err, sizeof(err)), API_OK);
	assert_int_equal(api_multi_run(m, 50, on_done, f), 0);
	assert_int_equal(f->tags[1], 0);
	stop = 1;
	t0 = now_s();
	api_multi_cancel(m, on_done, f);
	assert_true(now_s() - t0 < 0.1);
	assert_int_equal(f->tags[1], 1);
	assert_int_equal(f->rc[1], API_ERR_TRANSPORT);
	assert_string_equal(f->err[1], "query r: stopped");
	assert_int_equal(api_multi_busy(m), 0);
	assert_int_equal(api_multi_idle(m), 2);
	/* stopped: nothing more is sent */
	assert_int_equal(api_multi_start(m, "s", (void *)2, err, sizeof(err)), API_ERR_TRANSPORT);
	assert_string_equal(err, "query s: stopped");
	assert_int_equal(f->tags[2], 0);
	api_multi_free(m);
	free(f);
}

/* Four slots against the emulator, which serves many connections: every
 * query ends once, with the value of its own target, URL-encoded as
 * api_query encodes it. */
static void test_multi_many_in_flight(void **state)
{
	static const char *const targets[] = {"t 1", "t&2", "t#3", "caf\xc3\xa9"};
	char path[] = "/tmp/alert-exec-multi-XXXXXX";
	char tl[300];
	char line[128];
	char *argv[] = {(char *)BINARY_DIR "/alerts-emulator", (char *)"--port", (char *)"0",
			(char *)"--timeline", tl, NULL};
	struct finished *f = calloc(1, sizeof(*f));
	struct api_multi *m;
	unsigned port = 0;
	char base[64];
	char err[256] = "";
	posix_spawn_file_actions_t fa;
	int fds[2];
	pid_t pid;
	FILE *out;
	int started = 0, max_busy = 0;
	extern char **environ;

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(tl, sizeof(tl), "%s/timeline.json", path);
	out = fopen(tl, "w");
	assert_non_null(out);
	fprintf(out, "{\"t 1\": [[0, 1.5]], \"t&2\": [[0, 2.5]], \"t#3\": [[0, 3.5]], "
		     "\"caf\xc3\xa9\": [[0, 4.5]]}");
	fclose(out);
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	out = fdopen(fds[0], "r");
	assert_non_null(out);
	if (fgets(line, sizeof(line), out) == NULL ||
	    sscanf(line, "listening on 127.0.0.1:%u", &port) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("emulator did not start");
	}
	fclose(out);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", port);

	m = multi_client(base, 4, 1, 2000, NULL);
	while (started < 64 || api_multi_busy(m) > 0) {
		while (started < 64 && api_multi_idle(m) > 0) {
			assert_int_equal(api_multi_start(m, targets[started % 4],
							 (void *)(intptr_t)started, err,
							 sizeof(err)), API_OK);
			started++;
		}
		if ((int)api_multi_busy(m) > max_busy)
			max_busy = (int)api_multi_busy(m);
		assert_int_equal(api_multi_run(m, 100, on_done, f), 0);
	}
	api_multi_free(m);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(tl);
	rmdir(path);
	assert_int_equal(max_busy, 4);
	assert_int_equal(f->calls, 64);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(f->tags[i], 1);
		if (f->rc[i] != API_OK)
			fail_msg("query %d: %s", i, f->err[i]);
		assert_true(f->value[i] == 1.5 + i % 4);
	}
	free(f);
}

static int group_setup(void **state)
{
	(void)state;
	log_set_level(LOG_INFO);
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

/* cJSON turns \u0000 into a NUL byte, which would cut "a\u0000b" to the
 * alert "a": such a body is refused whole; an escaped backslash before
 * "u0000" is ordinary text. */
static void test_parse_nul_escape_refused(void **state)
{
	static const char bad[] =
		"[{\"name\":\"a\\u0000b\",\"query\":\"q\",\"intervalSecs\":1," WC "}]";
	static const char fine[] =
		"[{\"name\":\"a\\\\u0000b\",\"query\":\"q\",\"intervalSecs\":1," WC "}]";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";

	(void)state;
	assert_int_equal(api_parse_alerts(bad, strlen(bad), &defs, &n, err, sizeof(err)), -1);
	assert_null(defs);
	assert_string_equal(err, "alerts: body holds a \\u0000 escape (a NUL byte in a string)");
	assert_int_equal(api_parse_alerts(fine, strlen(fine), &defs, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(defs[0].name, "a\\u0000b");
	api_defs_free(defs, n);
}

/* Counts the lines of text. */
static int lines_of(const char *text)
{
	return count_of(text, "\n");
}

/* Parses body[0..len) (it may hold NUL bytes); returns the log text. */
static char *parse_logged_len(const char *body, size_t len, struct alert_def **defs,
			      size_t *n, int *rc, char *err, size_t errlen)
{
	struct capture c;

	capture_begin(&c);
	*rc = api_parse_alerts(body, len, defs, n, err, errlen);
	return capture_end(&c);
}

/* A raw NUL inside a JSON string (invalid JSON) must not cut the string
 * short: "alert-x<NUL>evil" coming first would otherwise take the place of
 * the real alert-x. Other raw control bytes are refused alike, in any
 * string of the entry, keys included. */
static void test_parse_raw_control_refused(void **state)
{
	static const char body[] =
		"[{\"name\":\"alert-x\0evil\",\"query\":\"evil\",\"intervalSecs\":1," WC "},"
		"{\"name\":\"alert-y\",\"query\":\"line\nbreak\",\"intervalSecs\":1," WC "},"
		"{\"name\0junk\":\"alert-z\",\"name\":\"alert-w\",\"query\":\"q\","
		"\"intervalSecs\":1," WC "},"
		"{\"name\":\"alert-v\",\"query\":\"q\",\"intervalSecs\":1,"
		"\"warn\":{\"value\":1,\"message\":\"tab\there\"},"
		"\"critical\":{\"value\":2,\"message\":\"c\"}},"
		"{\"name\":\"alert-x\",\"query\":\"real\",\"intervalSecs\":1," WC "}]";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged_len(body, sizeof(body) - 1, &defs, &n, &rc, err, sizeof(err));
	if (rc != 0 || n != 1)
		fail_msg("rc %d n %zu err %s log %s", rc, n, err, log);
	assert_string_equal(defs[0].name, "alert-x");
	assert_string_equal(defs[0].query, "real");
	assert_int_equal(count_of(log, "WARN"), 4);
	assert_int_equal(lines_of(log), 4);
	assert_int_equal(count_of(log, "skipping entry 0: a string holds the raw control "
				       "byte 0x00 (not JSON)"), 1);
	assert_int_equal(count_of(log, "skipping entry 1: a string holds the raw control "
				       "byte 0x0a"), 1);
	assert_int_equal(count_of(log, "skipping entry 2: a string holds the raw control "
				       "byte 0x00"), 1);
	assert_int_equal(count_of(log, "skipping entry 3: a string holds the raw control "
				       "byte 0x09"), 1);
	api_defs_free(defs, n);
	free(log);
}

/* A /query answer with a raw control byte in a string is not JSON: the
 * key "value<NUL>x" must not be read as "value". */
static void test_parse_value_raw_control(void **state)
{
	static const struct {
		const char *body;
		size_t len;
	} cases[] = {
		{"{\"value\0x\": 5, \"value\": 7}", 26},
		{"{\"value\0\": 5}", 13},
		{"{\"note\": \"a\nb\", \"value\": 5}", 27},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -1;
		char err[128] = "";

		if (api_parse_value(cases[i].body, cases[i].len, &v, err, sizeof(err)) != -1)
			fail_msg("case %zu: read %g", i, v);
		assert_non_null(strstr(err, "body is not JSON (a string holds the raw control byte"));
	}
}

/* Writes a /alerts body of count entries, each entry (a JSON text), into
 * a malloc'd buffer; *len gets its length. */
static char *repeated_body(const char *entry, size_t count, size_t *len)
{
	size_t elen = strlen(entry);
	char *body = malloc(count * (elen + 1) + 2);
	char *p = body;

	assert_non_null(body);
	*p++ = '[';
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, entry, elen);
		p += elen;
	}
	*p++ = ']';
	*len = (size_t)(p - body);
	return body;
}

/* Thousands of bad entries give API_MAX_ENTRY_WARNINGS lines and one that
 * counts the rest, not a line each. */
static void test_parse_warnings_summarised(void **state)
{
	size_t len = 0;
	char *body = repeated_body("42", 5000, &len);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged_len(body, len, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 0);
	assert_int_equal(lines_of(log), API_MAX_ENTRY_WARNINGS + 1);
	assert_int_equal(count_of(log, "entry is not an object"), API_MAX_ENTRY_WARNINGS);
	assert_non_null(strstr(log, "skipping entry 49: entry is not an object"));
	assert_null(strstr(log, "skipping entry 50:"));
	assert_non_null(strstr(log, "WARN alerts: and 4950 more warnings not logged (in all: "
				    "entries skipped=5000 values clamped=0)\n"));
	api_defs_free(defs, n);
	free(log);
	free(body);
}

/* A body with more than API_MAX_ALERTS entries is refused whole, before
 * a single entry is taken or warned about; API_MAX_ALERTS are fine. */
static void test_parse_too_many_entries(void **state)
{
	size_t len = 0;
	char *body = repeated_body("0", API_MAX_ALERTS + 1, &len);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged_len(body, len, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, -1);
	assert_null(defs);
	assert_string_equal(err, "alerts: body has more than 1000000 entries");
	assert_string_equal(log, "");
	free(log);
	free(body);

	body = repeated_body("0", API_MAX_ALERTS, &len);
	log = parse_logged_len(body, len, &defs, &n, &rc, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_int_equal(n, 0);
	assert_int_equal(lines_of(log), API_MAX_ENTRY_WARNINGS + 1);
	api_defs_free(defs, n);
	free(log);
	free(body);
}

/* A repeatIntervalSecs or sustainSecs over API_MAX_SECS (2^31-1 meaning
 * "never") keeps the alert with API_MAX_SECS and one warning per field;
 * an intervalSecs over it still makes the entry invalid. */
static void test_parse_huge_secs_clamped(void **state)
{
	static const char body[] =
		"[{\"name\":\"a\",\"query\":\"q\",\"intervalSecs\":5,"
		"\"repeatIntervalSecs\":2147483647," WC "},"
		"{\"name\":\"b\",\"query\":\"q\",\"intervalSecs\":5,"
		"\"repeatIntervalSecs\":1e300,\"sustainSecs\":2147483647," WC "},"
		"{\"name\":\"c\",\"query\":\"q\",\"intervalSecs\":2147483647,"
		"\"repeatIntervalSecs\":2147483647," WC "}]";
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char *log;
	int rc;

	(void)state;
	log = parse_logged(body, &defs, &n, &rc, err, sizeof(err));
	if (rc != 0 || n != 2)
		fail_msg("rc %d n %zu log %s", rc, n, log);
	assert_string_equal(defs[0].name, "a");
	assert_int_equal(defs[0].repeat_ms, API_MAX_SECS * 1000);
	assert_int_equal(defs[0].sustain_ms, 0);
	assert_string_equal(defs[1].name, "b");
	assert_int_equal(defs[1].repeat_ms, API_MAX_SECS * 1000);
	assert_int_equal(defs[1].sustain_ms, API_MAX_SECS * 1000);
	assert_int_equal(lines_of(log), 4);
	assert_int_equal(count_of(log, "WARN alerts: keeping entry 0 (a): repeatIntervalSecs "
				       "2.14748e+09 is over 31622400, using 31622400"), 1);
	assert_int_equal(count_of(log, "WARN alerts: keeping entry 1 (b): repeatIntervalSecs "
				       "1e+300 is over 31622400, using 31622400"), 1);
	assert_int_equal(count_of(log, "WARN alerts: keeping entry 1 (b): sustainSecs "
				       "2.14748e+09 is over 31622400, using 31622400"), 1);
	assert_int_equal(count_of(log, "WARN alerts: skipping entry 2 (c): intervalSecs is "
				       "over 31622400"), 1);
	api_defs_free(defs, n);
	free(log);
}

/* Invalid entries whose name is usable are reported, so that the engine
 * keeps those alerts instead of retiring them. */
static void test_parse_reports_skipped_names(void **state)
{
	static const char body[] =
		"[{\"name\":\"ok\",\"query\":\"q\",\"intervalSecs\":1," WC "},"
		"{\"name\":\"bad\",\"query\":\"q\",\"intervalSecs\":\"x\"," WC "},"
		"{\"query\":\"q\",\"intervalSecs\":1," WC "},"
		"{\"name\":\"ok\",\"query\":\"q\",\"intervalSecs\":2," WC "}]";
	struct alert_def *defs = NULL;
	char **skipped = NULL;
	size_t n = 0, nskipped = 0;
	char err[256] = "";

	(void)state;
	assert_int_equal(api_parse_alerts_full(body, strlen(body), &defs, &n, &skipped,
					       &nskipped, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(defs[0].name, "ok");
	/* the nameless entry cannot be kept; the duplicate is not invalid */
	assert_int_equal(nskipped, 1);
	assert_string_equal(skipped[0], "bad");
	api_defs_free(defs, n);
	api_names_free(skipped, nskipped);
}

#define SERVED(f) cmocka_unit_test_setup_teardown(f, server_setup, server_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good_alerts),
		cmocka_unit_test(test_parse_bad_entries),
		cmocka_unit_test(test_parse_long_strings),
		cmocka_unit_test(test_parse_all_bad_at_once),
		cmocka_unit_test(test_parse_nul_escape_refused),
		cmocka_unit_test(test_parse_raw_control_refused),
		cmocka_unit_test(test_parse_value_raw_control),
		cmocka_unit_test(test_parse_warnings_summarised),
		cmocka_unit_test(test_parse_too_many_entries),
		cmocka_unit_test(test_parse_huge_secs_clamped),
		cmocka_unit_test(test_parse_reports_skipped_names),
		cmocka_unit_test(test_parse_optional_fields),
		cmocka_unit_test(test_parse_bad_bodies),
		cmocka_unit_test(test_parse_empty_array),
		cmocka_unit_test(test_parse_not_nul_terminated),
		cmocka_unit_test(test_parse_many),
		cmocka_unit_test(test_def_copy),
		cmocka_unit_test(test_parse_value_good),
		cmocka_unit_test(test_parse_value_bad),
		cmocka_unit_test(test_parse_value_length),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_new_rejects),
		cmocka_unit_test(test_redact_url),
		cmocka_unit_test(test_check_url),
		SERVED(test_fetch_alerts),
		SERVED(test_fetch_alerts_not_array),
		SERVED(test_fetch_alerts_over_cap),
		SERVED(test_query_over_cap),
		SERVED(test_query_url_encoding),
		SERVED(test_trailing_slash),
		SERVED(test_retry_500_then_200),
		SERVED(test_retry_500_exhausted),
		SERVED(test_client_error_not_retried),
		SERVED(test_redirect_not_followed),
		SERVED(test_bad_query_body_retried),
		SERVED(test_notify_body),
		SERVED(test_resolve_body),
		SERVED(test_keep_alive),
		SERVED(test_silent_server_times_out),
		SERVED(test_post_not_repeated_after_timeout),
		cmocka_unit_test(test_connection_refused),
		SERVED(test_stop_flag),
		SERVED(test_stop_cuts_off_get),
		SERVED(test_stop_leaves_post_in_flight),
		SERVED(test_too_many_requests),
		SERVED(test_retry_after_forms),
		SERVED(test_multi_retries),
		SERVED(test_multi_bad_body),
		SERVED(test_multi_timeout_and_cancel),
		cmocka_unit_test(test_multi_many_in_flight),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
