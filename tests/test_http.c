/*
 * Tests of http.c and http_multi.c: the client of the alerts server
 * against a tiny server that runs in a thread of this test (127.0.0.1,
 * port 0) and answers canned responses, and the multi client against the
 * emulator.
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

#include "capture.h"
#include "http.h"
#include "log.h"

/* ---- helpers ------------------------------------------------------------- */

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

/* Reads what the client sent on cfd and answers the complete requests.
 * Returns 0 to keep the connection, -1 when it is to be closed. */
static int serve_read(struct server *s, int cfd, char *in, size_t *inlen)
{
	ssize_t r = recv(cfd, in + *inlen, IN_CAP - *inlen, 0);
	size_t used;

	if (r <= 0)
		return -1;
	*inlen += (size_t)r;
	used = serve_buffer(s, cfd, in, *inlen);
	if (used == (size_t)-1 || *inlen == IN_CAP)
		return -1;
	memmove(in, in + used, *inlen - used);
	*inlen -= used;
	return 0;
}

/* Takes a new connection in place of the old one (the client gave up on
 * it). Returns the descriptor to serve. */
static int serve_accept(struct server *s, int cfd)
{
	int nfd = accept(s->lfd, NULL, NULL);
	struct timeval tv = {.tv_sec = 3};

	if (nfd < 0)
		return cfd;
	if (cfd >= 0)
		close(cfd);
	setsockopt(nfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&s->mu);
	s->connections++;
	pthread_mutex_unlock(&s->mu);
	return nfd;
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
		if (cfd >= 0 && p[2].revents != 0 && serve_read(s, cfd, in, &inlen) != 0) {
			close(cfd);
			cfd = -1;
			inlen = 0;
		}
		if (p[1].revents & POLLIN) {
			int nfd = serve_accept(s, cfd);

			if (nfd != cfd)
				inlen = 0;
			cfd = nfd;
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
static struct http_opts test_opts(const char *url, int attempts, long timeout_ms,
				 const atomic_int *stop)
{
	struct http_opts opts = {
		.base_url = url,
		.connect_timeout_ms = 1000,
		.timeout_ms = timeout_ms,
		.attempts = attempts,
		.stop = stop,
		.alerts_max_body = TEST_ALERTS_CAP,
	};

	return opts;
}

static struct http *client(const char *url, int attempts, long timeout_ms,
			  const atomic_int *stop)
{
	struct http_opts opts = test_opts(url, attempts, timeout_ms, stop);
	char err[256] = "";
	struct http *http = http_new(&opts, err, sizeof(err));

	if (http == NULL)
		fail_msg("http_new: %s", err);
	return http;
}

static struct http_multi *multi_client(const char *url, size_t n, int attempts,
				      long timeout_ms, const atomic_int *stop)
{
	struct http_opts opts = test_opts(url, attempts, timeout_ms, stop);
	char err[256] = "";
	struct http_multi *m = http_multi_new(&opts, n, err, sizeof(err));

	if (m == NULL)
		fail_msg("http_multi_new: %s", err);
	return m;
}

/* One query through m, waited for as the engine's query thread waits for
 * it: returns its status, with *value set on HTTP_OK and the message in
 * err. */
struct one_query {
	int calls;
	int rc;
	double value;
	char err[HTTP_ERR_MAX];
};

static void one_done(void *tag, int rc, double value, const char *err, void *arg)
{
	struct one_query *o = arg;

	(void)tag;
	o->calls++;
	o->rc = rc;
	o->value = value;
	snprintf(o->err, sizeof(o->err), "%s", err);
}

static int query(struct http_multi *m, const char *target, double *value, char *err,
		 size_t errlen)
{
	struct one_query o = {0};
	double t0 = now_s();
	int rc = http_multi_start(m, target, NULL, o.err, sizeof(o.err));

	if (rc != HTTP_OK) {
		if (err != NULL)
			snprintf(err, errlen, "%s", o.err);
		return rc;
	}
	while (http_multi_busy(m) > 0) {
		assert_int_equal(http_multi_run(m, 100, one_done, &o), 0);
		assert_true(now_s() - t0 < 30);
	}
	assert_int_equal(o.calls, 1);
	if (o.rc == HTTP_OK)
		*value = o.value;
	if (err != NULL)
		snprintf(err, errlen, "%s", o.err);
	return o.rc;
}

#define WC "\"warn\":{\"value\":100,\"message\":\"w\"}," \
	   "\"critical\":{\"value\":200,\"message\":\"c\"}"

/* ---- the HTTP client ------------------------------------------------------ */

static void test_new_rejects(void **state)
{
	static const char *const urls[] = {"", "ftp://127.0.0.1/", "localhost:9001",
					   "http://[::1", "http://", "http://h:99999"};
	struct http_opts opts = {.attempts = 1, .timeout_ms = 1000};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		opts.base_url = urls[i];
		err[0] = '\0';
		assert_null(http_new(&opts, err, sizeof(err)));
		assert_non_null(strstr(err, "api: server URL"));
	}
	opts.base_url = "http://127.0.0.1:1";
	opts.attempts = 0;
	assert_null(http_new(&opts, err, sizeof(err)));
	assert_string_equal(err, "api: attempts is 0, must be at least 1");
	opts.attempts = 1;
	opts.timeout_ms = -1;
	assert_null(http_new(&opts, err, sizeof(err)));
	http_free(NULL);
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
		const char *got = http_redact_url(out, sizeof(out), cases[i].url);

		assert_ptr_equal(got, out);
		if (strcmp(out, cases[i].shown) != 0)
			fail_msg("%s shown as %s, want %s", cases[i].url, out, cases[i].shown);
	}
	http_redact_url(tiny, sizeof(tiny), "http://user:secret@h");
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
		if (http_check_url(good[i], err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (http_check_url(bad[i], err, sizeof(err)) != -1 || err[0] != '\'')
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
	struct http *http = client(s->base_url, 3, 2000, NULL);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	char line[8192];
	struct capture cap;
	char *log;
	int rc;

	serve(s, 1, &c);
	capture_begin(&cap);
	rc = http_fetch_alerts(http, &defs, &n, err, sizeof(err));
	log = capture_end(&cap);
	if (rc != HTTP_OK)
		fail_msg("fetch: %d %s", rc, err);
	assert_int_equal(n, 1);
	assert_string_equal(defs[0].name, "alert-1");
	assert_int_equal(defs[0].repeat_ms, 100000);
	assert_int_equal(count_of(log, "alerts: skipping entry 1 (alert-2): "
				       "intervalSecs is not an integer (1.5)"), 1);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_string_equal(line, "GET /alerts HTTP/1.1");
	assert_int_equal(requests(s), 1);
	alert_defs_free(defs, n);
	free(log);
	http_free(http);
}

static void test_fetch_alerts_not_array(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 200, .body = "{\"error\":\"busy\"}"},
		{.status = 200, .body = "[]"},
	};
	struct http *http = client(s->base_url, 2, 2000, NULL);
	struct alert_def *defs = NULL;
	size_t n = 7;
	char err[256] = "";

	/* A bad body is retried within the attempts... */
	serve(s, 2, c);
	assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)), HTTP_OK);
	assert_int_equal(n, 0);
	assert_int_equal(requests(s), 2);
	alert_defs_free(defs, n);

	/* ... and fails when every attempt gets one. */
	serve(s, 1, c);
	assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)),
			 HTTP_ERR_BODY);
	assert_null(defs);
	assert_int_equal(n, 0);
	assert_string_equal(err, "alerts: body is not a JSON array (it is an object)"
				 " (2 attempts)");
	assert_int_equal(requests(s), 4);
	http_free(http);
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
	struct http *http = client(s->base_url, 3, 5000, NULL);
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";

	/* With a Content-Length (curl stops at the headers) and without one
	 * (the write callback stops at the cap): neither is retried. */
	for (int delimited = 0; delimited <= 1; delimited++) {
		struct canned c = {.status = 200, .body = body, .len = len,
				   .close_delimited = delimited};

		serve(s, 1, &c);
		assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)),
				 HTTP_ERR_BODY);
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
		assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)),
				 HTTP_OK);
		assert_int_equal(n, 0);
		alert_defs_free(defs, n);
	}
	http_free(http);
	free(body);
}

static void test_query_over_cap(void **state)
{
	struct server *s = *state;
	size_t len = 100 * 1024;
	char *body = big_body(len);
	struct http_multi *m = multi_client(s->base_url, 1, 3, 5000, NULL);
	double v = 0;
	char err[256] = "";
	struct canned ok = {.status = 200, .body = "{\"value\": 3}"};

	{
		struct canned c = {.status = 200, .body = body, .len = len,
				   .close_delimited = 1};

		serve(s, 1, &c);
		assert_int_equal(query(m, "q", &v, err, sizeof(err)),
				 HTTP_ERR_BODY);
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
		assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_OK);
		assert_true(v == 3);
		assert_int_equal(requests(s), 3);
	}
	/* The client still works after aborted transfers. */
	serve(s, 1, &ok);
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_OK);
	http_multi_free(m);
	free(body);
}

static void test_query_url_encoding(void **state)
{
	struct server *s = *state;
	static const char target[] =
		"cpu load & mem #1 \xc3\xbc+x %41/?=;\"'\\<>\t\x7f~._-";
	struct http_multi *m = multi_client(s->base_url, 1, 1, 2000, NULL);
	double v = 0;
	char err[256] = "";
	char line[8192];
	char decoded[512];
	const char *q;
	const char *end;
	char raw[512];

	assert_int_equal(query(m, target, &v, err, sizeof(err)), HTTP_OK);
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
	http_multi_free(m);
}

static void test_trailing_slash(void **state)
{
	struct server *s = *state;
	char url[80];
	struct http_multi *m;
	double v = 0;
	char line[8192];

	snprintf(url, sizeof(url), "%s//", s->base_url);
	m = multi_client(url, 1, 1, 2000, NULL);
	assert_int_equal(query(m, "a", &v, NULL, 0), HTTP_OK);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_string_equal(line, "GET /query?target=a HTTP/1.1");
	http_multi_free(m);
}

static void test_retry_500_then_200(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 500, .body = "oops"},
		{.status = 200, .body = "{\"value\": 179.26082}"},
	};
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	double v = 0;
	char err[256] = "";

	serve(s, 2, c);
	assert_int_equal(query(m, "test-query-3", &v, err, sizeof(err)), HTTP_OK);
	assert_true(v == 179.26082);
	assert_int_equal(requests(s), 2);
	/* Both requests went over one kept-alive connection. */
	assert_int_equal(connections(s), 1);
	http_multi_free(m);
}

static void test_retry_500_exhausted(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 500, .body = "oops"};
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	double v = 0;
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(query(m, "test-query-3", &v, err, sizeof(err)),
			 HTTP_ERR_SERVER);
	assert_string_equal(err, "query test-query-3: HTTP 500 (3 attempts)");
	assert_int_equal(requests(s), 3);
	http_multi_free(m);
}

static void test_client_error_not_retried(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 400, .body = "{\"error\":\"bad\"}"};
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	struct http *http = client(s->base_url, 3, 2000, NULL);
	double v = 0;
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(query(m, "cpu load", &v, err, sizeof(err)), HTTP_ERR_CLIENT);
	assert_string_equal(err, "query \"cpu load\": HTTP 400");
	assert_int_equal(requests(s), 1);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)),
			 HTTP_ERR_CLIENT);
	assert_string_equal(err, "notify a: HTTP 400");
	assert_int_equal(requests(s), 2);
	http_multi_free(m);
	http_free(http);
}

static void test_redirect_not_followed(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 302, .body = "",
			   .headers = "Location: /elsewhere\r\n"};
	struct http_multi *m = multi_client(s->base_url, 1, 2, 2000, NULL);
	double v = 0;
	char err[256] = "";
	char line[8192];

	serve(s, 1, &c);
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_ERR_SERVER);
	assert_string_equal(err, "query q: HTTP 302 (2 attempts)");
	assert_int_equal(requests(s), 2);
	last_request(s, line, NULL, NULL, sizeof(line));
	assert_string_equal(line, "GET /query?target=q HTTP/1.1");
	http_multi_free(m);
}

static void test_bad_query_body_retried(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 200, .body = "<html>"},
		{.status = 200, .body = "{\"value\": 0}"},
	};
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	double v = 42;
	char err[256] = "";

	serve(s, 2, c);
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_OK);
	assert_true(v == 0.0);
	assert_int_equal(requests(s), 2);

	serve(s, 1, c);
	v = 42;
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_ERR_BODY);
	assert_string_equal(err, "query q: body is not JSON (starts with <html>)"
				 " (3 attempts)");
	assert_int_equal(requests(s), 5);
	assert_true(v == 42);
	http_multi_free(m);
}

static void test_notify_body(void **state)
{
	struct server *s = *state;
	static const char message[] = "disk \"root\" is full\nsecond line \xc3\xbc \\ /";
	static const char name[] = "alert \"7\" \xc3\xbc";
	struct canned c = {.status = 200, .body = "whatever, not JSON"};
	struct http *http = client(s->base_url, 1, 2000, NULL);
	char err[256] = "";
	char line[8192];
	char headers[8192];
	char body[8192];
	cJSON *root;
	const cJSON *j;

	serve(s, 1, &c);
	if (http_notify(http, name, message, err, sizeof(err)) != HTTP_OK)
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
	http_free(http);
}

static void test_resolve_body(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 503, .body = "later"},
		{.status = 204},
	};
	struct http *http = client(s->base_url, 2, 2000, NULL);
	char err[256] = "";
	char line[8192];
	char headers[8192];
	char body[8192];
	cJSON *root;
	const cJSON *j;

	serve(s, 2, c);
	if (http_resolve(http, "alert-1", err, sizeof(err)) != HTTP_OK)
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
	serve(s, 1, &(struct canned){.status = 200, .body = "[]"});
	{
		struct alert_def *defs = NULL;
		size_t n = 0;

		assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)), HTTP_OK);
		alert_defs_free(defs, n);
	}
	last_request(s, line, NULL, body, sizeof(line));
	assert_string_equal(line, "GET /alerts HTTP/1.1");
	assert_string_equal(body, "");
	http_free(http);
}

static void test_keep_alive(void **state)
{
	struct server *s = *state;
	struct http_multi *m = multi_client(s->base_url, 1, 1, 2000, NULL);
	struct http *http = client(s->base_url, 1, 2000, NULL);
	double v = 0;

	/* One connection per handle, kept for all its calls. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(query(m, "q", &v, NULL, 0), HTTP_OK);
	assert_int_equal(connections(s), 1);
	assert_int_equal(http_notify(http, "a", "m", NULL, 0), HTTP_OK);
	assert_int_equal(http_resolve(http, "a", NULL, 0), HTTP_OK);
	assert_int_equal(requests(s), 7);
	assert_int_equal(connections(s), 2);
	http_multi_free(m);
	http_free(http);
}

static void test_silent_server_times_out(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	struct http_multi *m = multi_client(s->base_url, 1, 2, 300, NULL);
	double v = 0;
	char err[256] = "";
	double t0;
	double elapsed;

	serve(s, 1, &c);
	t0 = now_s();
	assert_int_equal(query(m, "q", &v, err, sizeof(err)),
			 HTTP_ERR_TRANSPORT);
	elapsed = now_s() - t0;
	assert_true(elapsed < 2.0);
	assert_true(elapsed >= 0.5);
	assert_true(strncmp(err, "query q: transport error: ", 26) == 0);
	assert_non_null(strstr(err, "(2 attempts)"));
	assert_int_equal(requests(s), 2);
	http_multi_free(m);
}

/* A notify that timed out may have been taken: not sent again at once
 * (the outbox's backoff retries it). A query is. */
static void test_post_not_repeated_after_timeout(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	struct http *http = client(s->base_url, 3, 300, NULL);
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_true(strncmp(err, "notify a: transport error: ", 27) == 0);
	assert_null(strstr(err, "attempts"));
	assert_int_equal(requests(s), 1);
	/* the server may have taken it: a repeat is no longer dropped */
	assert_true(http_maybe_sent(http));
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_int_equal(requests(s), 2);
	assert_true(http_maybe_sent(http));
	http_free(http);
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];
	struct http_multi *m;
	struct http *http;
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
	m = multi_client(url, 1, 3, 2000, NULL);
	http = client(url, 3, 2000, NULL);
	t0 = now_s();
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_true(now_s() - t0 < 2.0);
	assert_true(strncmp(err, "query q: transport error: ", 26) == 0);
	assert_non_null(strstr(err, "(3 attempts)"));
	/* never connected: nothing reached the server, tried again at once */
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)),
			 HTTP_ERR_TRANSPORT);
	assert_non_null(strstr(err, "(3 attempts)"));
	assert_false(http_maybe_sent(http));
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_false(http_maybe_sent(http));
	{
		struct alert_def *defs = NULL;
		size_t n = 0;

		assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)),
				 HTTP_ERR_TRANSPORT);
		assert_null(defs);
	}
	http_multi_free(m);
	http_free(http);
	close(fd);
}

static void test_stop_flag(void **state)
{
	struct server *s = *state;
	atomic_int stop = 1;
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, &stop);
	struct http *http = client(s->base_url, 3, 2000, &stop);
	double v = 0;
	char err[256] = "";

	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_string_equal(err, "query q: stopped");
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)),
			 HTTP_ERR_TRANSPORT);
	assert_string_equal(err, "notify a: stopped");
	assert_int_equal(requests(s), 0);
	stop = 0;
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_OK);
	assert_int_equal(requests(s), 1);
	http_multi_free(m);
	http_free(http);
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
 * after 10 s ends within about a second of the flag. */
static void test_stop_cuts_off_get(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	atomic_int stop = 0;
	struct http *http = client(s->base_url, 3, 10000, &stop);
	struct delayed_stop d;
	struct alert_def *defs = NULL;
	size_t n = 0;
	char err[256] = "";
	double t0;

	serve(s, 1, &c);
	t0 = now_s();
	delayed_stop_start(&d, &stop, 200);
	assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_true(now_s() - t0 < 1.5);
	pthread_join(d.thread, NULL);
	assert_string_equal(err, "alerts: stopped");
	assert_null(defs);
	assert_int_equal(requests(s), 1);

	/* The client is whole after a cut: its next GET goes out, and is
	 * cut off again. */
	stop = 0;
	t0 = now_s();
	delayed_stop_start(&d, &stop, 200);
	assert_int_equal(http_fetch_alerts(http, &defs, &n, err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_true(now_s() - t0 < 1.5);
	pthread_join(d.thread, NULL);
	assert_string_equal(err, "alerts: stopped");
	assert_int_equal(requests(s), 2);
	http_free(http);
}

/* A POST in flight is not cut off by a stop: it runs to its timeout, so
 * that whether it was taken is known. */
static void test_stop_leaves_post_in_flight(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	atomic_int stop = 0;
	struct http *http = client(s->base_url, 3, 1500, &stop);
	struct delayed_stop d;
	char err[256] = "";
	double t0;
	double elapsed;

	serve(s, 1, &c);
	t0 = now_s();
	delayed_stop_start(&d, &stop, 200);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)), HTTP_ERR_TRANSPORT);
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
	http_free(http);
	http = client(s->base_url, 1, 1500, &stop);
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_OK);
	http_free(http);
}

/* 429 and 408 ask for time: HTTP_ERR_SERVER (retried later by the caller),
 * one attempt only, and the Retry-After is there to read. Other 4xx stay
 * HTTP_ERR_CLIENT. */
static void test_too_many_requests(void **state)
{
	struct server *s = *state;
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	struct http *http = client(s->base_url, 3, 2000, NULL);
	struct canned c429 = {.status = 429, .headers = "Retry-After: 7\r\n"};
	struct canned c408 = {.status = 408, .headers = "Retry-After: 2\r\n"};
	struct canned bare = {.status = 429};
	struct canned c404 = {.status = 404};
	struct canned c503 = {.status = 503, .headers = "Retry-After: 30\r\n"};
	struct canned ok = {.status = 200};
	double v = 0;
	char err[256] = "";

	assert_int_equal(http_retry_after_ms(http), 0);
	serve(s, 1, &c429);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(requests(s), 1);
	assert_int_equal(http_retry_after_ms(http), 7000);
	assert_string_equal(err, "notify a: HTTP 429 (retry after 7000 ms)");
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(requests(s), 2);
	assert_string_equal(err, "query q: HTTP 429 (retry after 7000 ms)");

	serve(s, 1, &c408);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(requests(s), 3);
	assert_int_equal(http_retry_after_ms(http), 2000);

	serve(s, 1, &bare);
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(requests(s), 4);
	assert_int_equal(http_retry_after_ms(http), 0);
	assert_string_equal(err, "resolve a: HTTP 429");

	serve(s, 1, &c404);
	assert_int_equal(query(m, "q", &v, err, sizeof(err)), HTTP_ERR_CLIENT);
	assert_int_equal(requests(s), 5);

	/* Any answer may carry it; a 503 is still tried again at once. */
	serve(s, 1, &c503);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(requests(s), 8);
	assert_int_equal(http_retry_after_ms(http), 30000);

	/* The next answer without one clears it. */
	serve(s, 1, &ok);
	assert_int_equal(http_notify(http, "a", "m", err, sizeof(err)), HTTP_OK);
	assert_int_equal(http_retry_after_ms(http), 0);
	http_multi_free(m);
	http_free(http);
}

/* Retry-After as an HTTP-date, and values that are not one. */
static void test_retry_after_forms(void **state)
{
	struct server *s = *state;
	struct http *http = client(s->base_url, 1, 2000, NULL);
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
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_ERR_SERVER);
	ms = http_retry_after_ms(http);
	if (ms < 110000 || ms > 121000)
		fail_msg("Retry-After %s read as %lld ms", date, (long long)ms);

	c.headers = "Retry-After: soon\r\n";
	serve(s, 1, &c);
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(http_retry_after_ms(http), 0);

	c.headers = "Retry-After: Thu, 01 Jan 1970 00:00:01 GMT\r\n";
	serve(s, 1, &c);
	assert_int_equal(http_resolve(http, "a", err, sizeof(err)), HTTP_ERR_SERVER);
	assert_int_equal(http_retry_after_ms(http), 0);
	http_free(http);
}

/* ---- many queries from one thread (http_multi) ----------------------------- */

struct finished {
	int calls;              /* done calls */
	int tags[64];           /* done calls per tag */
	int rc[64];
	double value[64];
	char err[64][HTTP_ERR_MAX];
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

/* Runs m until nothing is in flight (at most 10 s). */
static void run_all(struct http_multi *m, struct finished *f)
{
	double t0 = now_s();

	while (http_multi_busy(m) > 0) {
		assert_int_equal(http_multi_run(m, 100, on_done, f), 0);
		assert_true(now_s() - t0 < 10);
	}
}

/* A slot retries at once like every call, over its kept-alive connection,
 * and reports the last error with the attempts made. */
static void test_multi_retries(void **state)
{
	struct server *s = *state;
	struct canned c[] = {
		{.status = 500, .body = "oops"},
		{.status = 200, .body = "{\"value\": 179.26082}"},
		{.status = 503, .body = "busy"},
	};
	struct http_multi *m = multi_client(s->base_url, 1, 3, 2000, NULL);
	struct finished *f = calloc(1, sizeof(*f));
	char err[256] = "";

	serve(s, 3, c);
	assert_int_equal(http_multi_idle(m), 1);
	assert_int_equal(http_multi_start(m, "test-query-3", (void *)0, err, sizeof(err)), HTTP_OK);
	assert_int_equal(http_multi_idle(m), 0);
	/* one slot: a second query must wait */
	assert_int_equal(http_multi_start(m, "x", (void *)1, err, sizeof(err)), HTTP_ERR_INTERNAL);
	run_all(m, f);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->rc[0], HTTP_OK);
	assert_true(f->value[0] == 179.26082);
	assert_string_equal(f->err[0], "");
	assert_int_equal(requests(s), 2);
	assert_int_equal(connections(s), 1);
	/* the third answer repeats: 503 three times */
	assert_int_equal(http_multi_start(m, "a b", (void *)2, err, sizeof(err)), HTTP_OK);
	run_all(m, f);
	assert_int_equal(f->calls, 2);
	assert_int_equal(f->rc[2], HTTP_ERR_SERVER);
	assert_string_equal(f->err[2], "query \"a b\": HTTP 503 (3 attempts)");
	assert_int_equal(requests(s), 5);
	assert_int_equal(connections(s), 1);
	http_multi_free(m);
	free(f);
}

/* Bodies are validated as alerts_parse_value validates them. */
static void test_multi_bad_body(void **state)
{
	struct server *s = *state;
	struct canned c = {.status = 200, .body = "<html>"};
	struct http_multi *m = multi_client(s->base_url, 1, 2, 2000, NULL);
	struct finished *f = calloc(1, sizeof(*f));
	char err[256] = "";

	serve(s, 1, &c);
	assert_int_equal(http_multi_start(m, "q", (void *)5, err, sizeof(err)), HTTP_OK);
	run_all(m, f);
	assert_int_equal(f->rc[5], HTTP_ERR_BODY);
	assert_string_equal(f->err[5], "query q: body is not JSON (starts with <html>) (2 attempts)");
	http_multi_free(m);
	free(f);
}

/* A silent server: the query times out after each attempt; a stop cuts
 * the one in flight off at once, and no new one starts. */
static void test_multi_timeout_and_cancel(void **state)
{
	struct server *s = *state;
	struct canned c = {.silent = 1};
	atomic_int stop = 0;
	struct http_multi *m = multi_client(s->base_url, 2, 2, 300, &stop);
	struct finished *f = calloc(1, sizeof(*f));
	char err[256] = "";
	double t0, elapsed;

	serve(s, 1, &c);
	t0 = now_s();
	assert_int_equal(http_multi_start(m, "q", (void *)0, err, sizeof(err)), HTTP_OK);
	run_all(m, f);
	elapsed = now_s() - t0;
	assert_true(elapsed >= 0.5 && elapsed < 2.0);
	assert_int_equal(f->rc[0], HTTP_ERR_TRANSPORT);
	assert_true(strncmp(f->err[0], "query q: transport error: ", 26) == 0);
	assert_non_null(strstr(f->err[0], "(2 attempts)"));
	/* cut off while waiting */
	assert_int_equal(http_multi_start(m, "r", (void *)1, err, sizeof(err)), HTTP_OK);
	assert_int_equal(http_multi_run(m, 50, on_done, f), 0);
	assert_int_equal(f->tags[1], 0);
	stop = 1;
	t0 = now_s();
	http_multi_cancel(m, on_done, f);
	assert_true(now_s() - t0 < 0.1);
	assert_int_equal(f->tags[1], 1);
	assert_int_equal(f->rc[1], HTTP_ERR_TRANSPORT);
	assert_string_equal(f->err[1], "query r: stopped");
	assert_int_equal(http_multi_busy(m), 0);
	assert_int_equal(http_multi_idle(m), 2);
	/* stopped: nothing more is sent */
	assert_int_equal(http_multi_start(m, "s", (void *)2, err, sizeof(err)), HTTP_ERR_TRANSPORT);
	assert_string_equal(err, "query s: stopped");
	assert_int_equal(f->tags[2], 0);
	http_multi_free(m);
	free(f);
}

/* Four slots against the emulator, which serves many connections: every
 * query ends once, with the value of its own target, URL-encoded as
 * every query is encoded. */
/* Starts the emulator on a free port with the timeline file tl; writes
 * its base URL into base and returns its pid. */
static pid_t emulator_start(char *tl, char *base, size_t baselen)
{
	char *argv[] = {(char *)BINARY_DIR "/alerts-emulator", (char *)"--port", (char *)"0",
			(char *)"--timeline", tl, NULL};
	posix_spawn_file_actions_t fa;
	unsigned port = 0;
	char line[128];
	int fds[2];
	pid_t pid;
	FILE *out;
	extern char **environ;

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
	snprintf(base, baselen, "http://127.0.0.1:%u", port);
	return pid;
}

static void test_multi_many_in_flight(void **state)
{
	static const char *const targets[] = {"t 1", "t&2", "t#3", "caf\xc3\xa9"};
	char path[] = "/tmp/alert-exec-multi-XXXXXX";
	char tl[300];
	struct finished *f = calloc(1, sizeof(*f));
	struct http_multi *m;
	char base[64];
	char err[256] = "";
	pid_t pid;
	FILE *out;
	int started = 0, max_busy = 0;

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(tl, sizeof(tl), "%s/timeline.json", path);
	out = fopen(tl, "w");
	assert_non_null(out);
	fprintf(out, "{\"t 1\": [[0, 1.5]], \"t&2\": [[0, 2.5]], \"t#3\": [[0, 3.5]], "
		     "\"caf\xc3\xa9\": [[0, 4.5]]}");
	fclose(out);
	pid = emulator_start(tl, base, sizeof(base));

	m = multi_client(base, 4, 1, 2000, NULL);
	while (started < 64 || http_multi_busy(m) > 0) {
		while (started < 64 && http_multi_idle(m) > 0) {
			assert_int_equal(http_multi_start(m, targets[started % 4],
							 (void *)(intptr_t)started, err,
							 sizeof(err)), HTTP_OK);
			started++;
		}
		if ((int)http_multi_busy(m) > max_busy)
			max_busy = (int)http_multi_busy(m);
		assert_int_equal(http_multi_run(m, 100, on_done, f), 0);
	}
	http_multi_free(m);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(tl);
	rmdir(path);
	assert_int_equal(max_busy, 4);
	assert_int_equal(f->calls, 64);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(f->tags[i], 1);
		if (f->rc[i] != HTTP_OK)
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

#define SERVED(f) cmocka_unit_test_setup_teardown(f, server_setup, server_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
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
