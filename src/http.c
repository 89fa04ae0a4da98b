#include "http_internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"

#ifndef ALERT_EXEC_VERSION
#define ALERT_EXEC_VERSION "unknown"
#endif

/* Size of the response buffer a new client starts with. */
#define INITIAL_BUF 4096

void http_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void http_append_err(char *err, size_t errlen, const char *fmt, ...)
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

/* ---- transport ------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http *http = userdata;
	size_t n = size * nmemb; /* size is always 1 */

	if (!http->keep_body)
		return n;
	if (n > http->limit - http->len) {
		http->over = 1;
		return 0; /* != n: curl aborts with CURLE_WRITE_ERROR */
	}
	if (http->len + n + 1 > http->cap) {
		size_t cap = http->cap * 2;
		char *grown;

		if (cap < http->len + n + 1)
			cap = http->len + n + 1;
		if (cap > http->limit + 1)
			cap = http->limit + 1;
		grown = realloc(http->buf, cap);
		if (grown == NULL) {
			http->oom = 1;
			return 0;
		}
		http->buf = grown;
		http->cap = cap;
	}
	memcpy(http->buf + http->len, data, n);
	http->len += n;
	http->buf[http->len] = '\0';
	return n;
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Builds base + path [+ "?target=" + percent-encoded target] in http->url.
 * Every byte but the RFC 3986 unreserved ones is encoded, so the server
 * decodes the original bytes whatever they are. */
static int build_url(struct http *http, const char *path, const char *target)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char param[] = "?target=";
	size_t plen = strlen(path);
	size_t tlen = target != NULL ? strlen(target) : 0;
	size_t need;
	char *p;

	if (tlen > (SIZE_MAX - http->base_len - plen - sizeof(param)) / 3)
		return -1;
	need = http->base_len + plen + sizeof(param) + 3 * tlen;
	if (need > http->url_cap) {
		char *grown = realloc(http->url, need);

		if (grown == NULL)
			return -1;
		http->url = grown;
		http->url_cap = need;
	}
	p = http->url;
	memcpy(p, http->base_url, http->base_len);
	p += http->base_len;
	memcpy(p, path, plen);
	p += plen;
	if (target != NULL) {
		memcpy(p, param, sizeof(param) - 1);
		p += sizeof(param) - 1;
		for (const unsigned char *t = (const unsigned char *)target; *t != '\0'; t++) {
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

static int stopped(const struct http *http)
{
	/* Other threads set the flag: read it atomically. */
	return http->stop != NULL && atomic_load(http->stop) != 0;
}

/* libcurl calls this during a transfer, about once a second at the
 * least, also while nothing arrives. A GET of a blocking call is ended
 * once the stop flag is set: nothing is lost by cutting it off, and a
 * stop must not wait out a slow /alerts. A POST runs to its end (or its
 * timeout): cut off, it might have been taken or not, and a graceful stop
 * must know which. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct http *http = userdata;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return http->cut_on_stop && stopped(http);
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

void http_attempt_begin(struct http *http)
{
	http->retry_after_ms = 0;
	http->maybe_sent = 0;
	http->len = 0;
	http->buf[0] = '\0';
	http->over = 0;
	http->oom = 0;
	http->curl_err[0] = '\0';
}

/* The outcome of an answer with the non-2xx status code. Sets *retry
 * when another attempt at once may succeed. */
static int status_error(const struct http *http, const struct http_request *req, long code,
			int *retry, char *err, size_t errlen)
{
	http_set_err(err, errlen, "%s: HTTP %ld", req->what, code);
	if (code == 408 || code == 429) {
		/* Not a refusal of the request but of its moment: worth another
		 * try, though not at once, which would ignore the server's pace
		 * (the caller has http_retry_after_ms). */
		if (http->retry_after_ms > 0)
			http_append_err(err, errlen, " (retry after %lld ms)",
					(long long)http->retry_after_ms);
		return HTTP_ERR_SERVER;
	}
	if (code >= 400 && code <= 499)
		return HTTP_ERR_CLIENT;
	*retry = 1;
	return HTTP_ERR_SERVER;
}

/* The outcome of an attempt that ended with cc. Sets *retry when another
 * attempt may succeed. */
int http_attempt_end(struct http *http, const struct http_request *req, CURLcode cc, int *retry,
		     char *err, size_t errlen)
{
	long code = 0;
	int over;

	*retry = 0;
	if (curl_easy_getinfo(http->curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	over = http->over || cc == CURLE_FILESIZE_EXCEEDED;
	if (code != 0)
		http->retry_after_ms = retry_after(http->curl);

	if (http->oom) {
		http_set_err(err, errlen, "%s: out of memory", req->what);
		return HTTP_ERR_INTERNAL;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		http_set_err(err, errlen, "%s: stopped", req->what);
		return HTTP_ERR_TRANSPORT;
	}
	if (cc != CURLE_OK && !over) {
		/* A notify or resolve may have reached the server unless the
		 * connection was never made: sending it again at once would
		 * multiply it at a slow server. Its delivery's backoff retries
		 * it. A GET is safe to repeat. */
		int unsent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
			     cc == CURLE_COULDNT_RESOLVE_PROXY;

		*retry = req->post == NULL || unsent;
		http->maybe_sent = !unsent;
		http_set_err(err, errlen, "%s: transport error: %s", req->what,
			     http->curl_err[0] != '\0' ? http->curl_err : curl_easy_strerror(cc));
		return HTTP_ERR_TRANSPORT;
	}
	if ((code >= 200 && code <= 299) || (over && code == 0)) {
		if (over) {
			/* A body that big comes back as big: no retry. */
			http_set_err(err, errlen, "%s: body over %zu bytes", req->what, req->limit);
			return HTTP_ERR_BODY;
		}
		if (req->check != NULL && req->check(http, req, err, errlen) != 0) {
			/* A bad body can be a transient fault of the server. */
			*retry = 1;
			return HTTP_ERR_BODY;
		}
		return HTTP_OK;
	}
	/* Not 2xx: the status decides, whatever happened to the body. */
	return status_error(http, req, code, retry, err, errlen);
}

/* Sets up the handle for req. */
int http_request_setup(struct http *http, const struct http_request *req, char *err, size_t errlen)
{
	CURLcode cc = CURLE_OK;

	if (build_url(http, req->path, req->target) != 0) {
		http_set_err(err, errlen, "%s: out of memory", req->what);
		return HTTP_ERR_INTERNAL;
	}
	http->limit = req->limit;
	http->keep_body = req->limit > 0;
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_URL, http->url);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_MAXFILESIZE_LARGE,
				      (curl_off_t)req->limit);
	if (req->post != NULL) {
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(http->curl, CURLOPT_HTTPHEADER, http->json_headers);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(http->curl, CURLOPT_POSTFIELDSIZE_LARGE,
					      (curl_off_t)strlen(req->post));
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(http->curl, CURLOPT_POSTFIELDS, req->post);
	} else {
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(http->curl, CURLOPT_HTTPHEADER,
					      (struct curl_slist *)NULL);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(http->curl, CURLOPT_HTTPGET, 1L);
	}
	if (cc != CURLE_OK) {
		http_set_err(err, errlen, "%s: curl setup: %s", req->what, curl_easy_strerror(cc));
		return HTTP_ERR_INTERNAL;
	}
	return HTTP_OK;
}

/* Sets up the handle for req and makes up to http->attempts attempts. */
static int call(struct http *http, const struct http_request *req, char *err, size_t errlen)
{
	int rc = http_request_setup(http, req, err, errlen);
	int made = 0;

	if (rc != HTTP_OK)
		return rc;
	http->retry_after_ms = 0;
	http->maybe_sent = 0;
	http->cut_on_stop = req->post == NULL;
	/* Only a transfer the stop may cut off needs the progress callback. */
	if (curl_easy_setopt(http->curl, CURLOPT_NOPROGRESS, http->cut_on_stop ? 0L : 1L) !=
	    CURLE_OK) {
		http_set_err(err, errlen, "%s: curl setup failed", req->what);
		return HTTP_ERR_INTERNAL;
	}
	for (made = 0; made < http->attempts; made++) {
		int retry = 0;

		if (stopped(http)) {
			if (made == 0) {
				http_set_err(err, errlen, "%s: stopped", req->what);
				rc = HTTP_ERR_TRANSPORT;
			}
			break;
		}
		http_attempt_begin(http);
		rc = http_attempt_end(http, req, curl_easy_perform(http->curl), &retry, err,
				      errlen);
		if (rc == HTTP_OK || !retry) {
			made++;
			break;
		}
	}
	http->cut_on_stop = 0;
	if (rc != HTTP_OK && made > 1)
		http_append_err(err, errlen, " (%d attempts)", made);
	/* The POST body is the caller's: leave no pointer to it behind. */
	if (req->post != NULL)
		curl_easy_setopt(http->curl, CURLOPT_POSTFIELDS, (char *)NULL);
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

const char *http_redact_url(char *out, size_t outlen, const char *url)
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

int http_check_url(const char *url, char *err, size_t errlen)
{
	char shown[HTTP_WHAT_MAX];
	char why[128];
	CURLU *u = NULL;
	char *port = NULL;
	char *extra = NULL;
	CURLUcode uc;
	int rc = -1;

	assert(url != NULL);
	http_redact_url(shown, sizeof(shown), url);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		http_set_err(err, errlen, "'%s' is not an http:// or https:// URL", shown);
		return -1;
	}
	u = curl_url();
	if (u == NULL) {
		http_set_err(err, errlen, "'%s': out of memory", shown);
		return -1;
	}
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		snprintf(why, sizeof(why), "%s", curl_url_strerror(uc));
		lower_first(why);
		http_set_err(err, errlen, "'%s' is not a valid URL: %s", shown, why);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && strcmp(port, "0") == 0) {
		http_set_err(err, errlen, "'%s' is not a valid URL: port 0", shown);
		goto out;
	}
	/* Paths are appended to the URL as it is written. */
	if (curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
		http_set_err(err, errlen,
			     "'%s' has a query or fragment; the server's base URL "
			     "takes none",
			     shown);
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
 * memory (http_free releases what was taken). */
static int alloc_buffers(struct http *http)
{
	struct curl_slist *more = NULL;

	http->cap = INITIAL_BUF;
	http->buf = malloc(http->cap);
	if (http->buf == NULL)
		return -1;
	http->buf[0] = '\0';
	http->json_headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (http->json_headers == NULL)
		return -1;
	/* No "Expect: 100-continue" round trip before a POST. */
	more = curl_slist_append(http->json_headers, "Expect:");
	if (more == NULL)
		return -1;
	http->json_headers = more;
	return 0;
}

/* The options of a new client's handle that stay for all its calls. */
static CURLcode setup_handle(struct http *http, const struct http_opts *opts)
{
	char agent[256];
	CURLcode cc;

	/* libcurl copies the string. */
	if (opts->engine_id != NULL)
		snprintf(agent, sizeof(agent), "alert-exec/%s (%s)", ALERT_EXEC_VERSION,
			 opts->engine_id);
	else
		snprintf(agent, sizeof(agent), "alert-exec/%s", ALERT_EXEC_VERSION);

	cc = curl_easy_setopt(http->curl, CURLOPT_NOSIGNAL, 1L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_CONNECTTIMEOUT_MS,
				      opts->connect_timeout_ms);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_TIMEOUT_MS, opts->timeout_ms);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_USERAGENT, agent);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_ERRORBUFFER, http->curl_err);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_WRITEFUNCTION, on_body);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_WRITEDATA, http);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_XFERINFODATA, http);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(http->curl, CURLOPT_NOPROGRESS, 1L);
	return cc;
}

/* Whether opts can make a client; -1 with the message in err. */
static int check_opts(const struct http_opts *opts, char *err, size_t errlen)
{
	char why[256];

	if (opts->base_url == NULL || opts->base_url[0] == '\0') {
		http_set_err(err, errlen, "api: server URL is empty");
		return -1;
	}
	if (opts->attempts < 1) {
		http_set_err(err, errlen, "api: attempts is %d, must be at least 1",
			     opts->attempts);
		return -1;
	}
	if (opts->connect_timeout_ms < 0 || opts->timeout_ms < 0) {
		http_set_err(err, errlen, "api: timeouts must not be negative");
		return -1;
	}
	if (http_check_url(opts->base_url, why, sizeof(why)) != 0) {
		http_set_err(err, errlen, "api: server URL %s", why);
		return -1;
	}
	return 0;
}

struct http *http_new(const struct http_opts *opts, char *err, size_t errlen)
{
	struct http *http = NULL;
	struct http *ret = NULL;
	CURLcode cc = CURLE_OK;

	assert(opts != NULL);
	if (check_opts(opts, err, errlen) != 0)
		goto out;
	http = calloc(1, sizeof(*http));
	if (http == NULL)
		goto oom;
	http->attempts = opts->attempts;
	http->stop = opts->stop;
	http->alerts_max_body = opts->alerts_max_body ? opts->alerts_max_body
						      : HTTP_ALERTS_MAX_BODY;
	http->base_url = strdup(opts->base_url);
	if (http->base_url == NULL)
		goto oom;
	http->base_len = strlen(http->base_url);
	while (http->base_len > 0 && http->base_url[http->base_len - 1] == '/')
		http->base_url[--http->base_len] = '\0';
	if (alloc_buffers(http) != 0)
		goto oom;
	http->curl = curl_easy_init();
	if (http->curl == NULL) {
		http_set_err(err, errlen, "api: curl_easy_init failed");
		goto out;
	}
	cc = setup_handle(http, opts);
	if (cc != CURLE_OK) {
		http_set_err(err, errlen, "api: curl setup: %s", curl_easy_strerror(cc));
		goto out;
	}
	ret = http;
	http = NULL;
	goto out;
oom:
	http_set_err(err, errlen, "api: out of memory");
out:
	http_free(http);
	return ret;
}

void http_free(struct http *http)
{
	if (http == NULL)
		return;
	if (http->curl != NULL)
		curl_easy_cleanup(http->curl);
	curl_slist_free_all(http->json_headers);
	free(http->base_url);
	free(http->url);
	free(http->buf);
	alerts_names_free(http->skipped, http->nskipped);
	free(http);
}

/* ---- calls ---------------------------------------------------------------- */

struct alerts_out {
	struct alert_def **defs;
	size_t *n;
	alerts_problem_fn report; /* NULL: problems are logged */
	void *report_arg;
};

static int check_alerts(struct http *http, const struct http_request *req, char *err, size_t errlen)
{
	struct alerts_out *o = req->ctx;
	char **skipped = NULL;
	size_t nskipped = 0;

	/* http->buf is NUL-terminated: no copy of a body of up to
	 * alerts_max_body. */
	if (o->report != NULL) {
		if (alerts_parse_report_z(http->buf, http->len, o->defs, o->n, &skipped, &nskipped,
					  o->report, o->report_arg, err, errlen) != 0)
			return -1;
	} else if (alerts_parse_full_z(http->buf, http->len, o->defs, o->n, &skipped, &nskipped,
				       err, errlen) != 0) {
		return -1;
	}
	alerts_names_free(http->skipped, http->nskipped);
	http->skipped = skipped;
	http->nskipped = nskipped;
	return 0;
}

int64_t http_retry_after_ms(const struct http *http)
{
	assert(http != NULL);
	return http->retry_after_ms;
}

int http_maybe_sent(const struct http *http)
{
	assert(http != NULL);
	return http->maybe_sent;
}

void http_skipped_names(const struct http *http, const char *const **names, size_t *n)
{
	*names = (const char *const *)http->skipped;
	*n = http->nskipped;
}

int http_fetch_alerts(struct http *http, struct alert_def **defs, size_t *n, char *err,
		      size_t errlen)
{
	return http_fetch_alerts_report(http, NULL, NULL, defs, n, err, errlen);
}

int http_fetch_alerts_report(struct http *http, alerts_problem_fn report, void *report_arg,
			     struct alert_def **defs, size_t *n, char *err, size_t errlen)
{
	struct alerts_out o = {defs, n, report, report_arg};
	struct http_request req = {
		.what = "alerts",
		.path = "/alerts",
		.limit = http->alerts_max_body,
		.check = check_alerts,
		.ctx = &o,
	};

	assert(http != NULL && defs != NULL && n != NULL);
	*defs = NULL;
	*n = 0;
	return call(http, &req, err, errlen);
}

static int check_value(struct http *http, const struct http_request *req, char *err, size_t errlen)
{
	char why[160];

	if (alerts_parse_value_z(http->buf, http->len, req->ctx, why, sizeof(why)) != 0) {
		http_set_err(err, errlen, "%s: %s", req->what, why);
		return -1;
	}
	return 0;
}

struct http_request http_query_request(char *what, const char *target, double *value)
{
	char quoted[HTTP_WHAT_MAX - 8];
	struct http_request req = {
		.what = what,
		.path = "/query",
		.target = target,
		.limit = HTTP_QUERY_MAX_BODY,
		.check = check_value,
		.ctx = value,
	};

	snprintf(what, HTTP_WHAT_MAX, "query %s", log_quote(quoted, sizeof(quoted), target));
	return req;
}

/* POSTs {"alertName": name[, "message": message]} to path. */
static int post_alert(struct http *http, const char *path, const char *verb, const char *name,
		      const char *message, char *err, size_t errlen)
{
	char what[HTTP_WHAT_MAX];
	char quoted[HTTP_WHAT_MAX - 8];
	cJSON *root = NULL;
	char *body = NULL;
	int rc = HTTP_ERR_INTERNAL;
	struct http_request req = {
		.what = what, .path = path, .limit = 0, /* any 2xx will do: the body is not read */
	};

	snprintf(what, sizeof(what), "%s %s", verb, log_quote(quoted, sizeof(quoted), name));
	root = cJSON_CreateObject();
	if (root == NULL || cJSON_AddStringToObject(root, "alertName", name) == NULL)
		goto oom;
	if (message != NULL && cJSON_AddStringToObject(root, "message", message) == NULL)
		goto oom;
	body = cJSON_PrintUnformatted(root);
	if (body == NULL)
		goto oom;
	req.post = body;
	rc = call(http, &req, err, errlen);
	goto out;
oom:
	http_set_err(err, errlen, "%s: out of memory", what);
out:
	cJSON_free(body);
	cJSON_Delete(root);
	return rc;
}

int http_notify(struct http *http, const char *name, const char *message, char *err, size_t errlen)
{
	assert(http != NULL && name != NULL && message != NULL);
	return post_alert(http, "/notify", "notify", name, message, err, errlen);
}

int http_resolve(struct http *http, const char *name, char *err, size_t errlen)
{
	assert(http != NULL && name != NULL);
	return post_alert(http, "/resolve", "resolve", name, NULL, err, errlen);
}
