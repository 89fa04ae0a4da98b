#ifndef ALERT_EXEC_HTTP_H
#define ALERT_EXEC_HTTP_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "alerts.h"

/*
 * The client of the alerts server (DESIGN.md section 1): libcurl for the
 * transport, cJSON for the bodies it sends. One struct http per thread: it
 * owns one CURL easy handle that is reused, so connections are kept alive.
 * Everything the server sends is validated (by alerts.h) before a call
 * returns it.
 *
 * Threads: a struct http is used by one thread at a time; different
 * threads use different clients. curl_global_init() must have been called
 * (main does it once, before any thread starts).
 *
 * Errors: every call returns HTTP_OK (0) or a negative enum http_status and
 * writes a one-line, lowercase message naming the call into err, e.g.
 *   query "cpu load": HTTP 500 (3 attempts)
 *   notify alert-7: transport error: Operation timed out after 5000 ...
 *   alerts: body over 67108864 bytes
 * (targets and names are written as log_quote() writes log values).
 * err may be NULL or errlen 0 when the message is not wanted.
 *
 * Attempts: a call makes up to opts.attempts attempts back to back (no
 * sleep). It tries again after HTTP_ERR_TRANSPORT, HTTP_ERR_SERVER, and a
 * 2xx body that fails validation (a bad /query or /alerts body can be a
 * transient fault of the server); not after HTTP_ERR_CLIENT, a body over
 * its cap, or HTTP_ERR_INTERNAL. A notify or resolve is not tried again
 * after a transport error other than a failed connect (a timeout, a
 * connection dropped after sending): the server may have taken it. HTTP
 * 408 and 429 are HTTP_ERR_SERVER but not tried again at once: the server
 * asks for time (http_retry_after_ms says how much, when it did).
 *
 * Stop: *opts.stop is read before every attempt, the first included: a
 * call stopped before its first attempt returns HTTP_ERR_TRANSPORT
 * ("stopped") without sending anything. A GET in flight (http_fetch_alerts)
 * is cut off within about a second of the flag being set, with
 * HTTP_ERR_TRANSPORT ("alerts: stopped"). A POST in flight (http_notify,
 * http_resolve) is not: it runs to its answer or to timeout_ms, so that
 * its outcome is known and a graceful stop does not leave a call that
 * was maybe taken. The queries of http_multi are not cut off by the flag
 * either (http_multi_cancel does that). The status is that of the last
 * attempt.
 *
 * Bodies: /alerts bodies are capped at HTTP_ALERTS_MAX_BODY and /query
 * bodies at HTTP_QUERY_MAX_BODY; a 2xx over its cap is HTTP_ERR_BODY, a
 * non-2xx over its cap keeps the class of its status. Bodies of /notify and
 * /resolve answers are not read. Redirects are not followed (3xx is
 * HTTP_ERR_SERVER).
 */

/* Results of a call. */
enum http_status {
	HTTP_OK = 0,
	HTTP_ERR_TRANSPORT = -1, /* connect, timeout, reset, ... : retry */
	HTTP_ERR_SERVER = -2,    /* HTTP 5xx, 408, 429 (or any other non-2xx,
				 * non-4xx): retry */
	HTTP_ERR_CLIENT = -3,    /* HTTP 4xx but 408 and 429: the server refuses
				 * this request */
	HTTP_ERR_BODY = -4,      /* 2xx with a body that fails validation */
	HTTP_ERR_INTERNAL = -5,  /* out of memory, curl init failure */
};

/* Default cap of a /alerts body: 100 000 alerts of the v2 profile take
 * about 20 MB. */
#define HTTP_ALERTS_MAX_BODY (64 * 1024 * 1024)
/* Cap of a /query body. */
#define HTTP_QUERY_MAX_BODY (64 * 1024)

struct http_opts {
	const char *base_url;    /* e.g. "http://localhost:9001", no trailing / needed */
	long connect_timeout_ms; /* CURLOPT_CONNECTTIMEOUT_MS; 0: curl's default */
	long timeout_ms;         /* CURLOPT_TIMEOUT_MS, whole transfer; 0: none */
	int attempts;            /* immediate attempts per call (-r), >= 1 */
	const atomic_int *stop;  /* when non-NULL and set, no further attempt is
				    * made (read before every attempt) */
	size_t alerts_max_body;  /* cap of a /alerts body; 0: HTTP_ALERTS_MAX_BODY */
	/* The engine's id, sent in the User-Agent as
	 * "alert-exec/VERSION (ID)" so the server sees who asks; NULL: none. */
	const char *engine_id;
};

struct http;

/* Checks that url can be the server's base URL: http:// or https://, read
 * whole by libcurl's URL parser (host, port 1-65535, IPv6 brackets), no
 * query or fragment. Needs no curl_global_init(). Returns 0, or -1 with
 * a message in err that starts with the URL, its userinfo hidden
 * ("'http://[::1' is not a valid URL: bad IPv6 address"). */
int http_check_url(const char *url, char *err, size_t errlen);

/* Writes url into out (outlen > 0, truncated to fit) with its userinfo
 * hidden: "http://user:secret@host:9001/x" becomes
 * "http://" "***@host:9001/x"; a URL without one is copied as it is. A URL
 * libcurl cannot read loses everything before its last '@' (before any
 * '?' or '#'), so a malformed one does not show a password either.
 * Returns out. For logs and messages. */
const char *http_redact_url(char *out, size_t outlen, const char *url);

/* Creates a client. Copies what it needs of *opts (the stop flag is
 * borrowed and must outlive the client). Returns NULL with a message in
 * err when base_url fails http_check_url, attempts < 1, a
 * timeout is negative, or out of memory. Free with http_free();
 * http_free(NULL) is a no-op. */
struct http *http_new(const struct http_opts *opts, char *err, size_t errlen);
void http_free(struct http *http);

/* GET /alerts. On HTTP_OK sets *defs to a malloc'd array of *n validated
 * definitions (free with alert_defs_free); invalid entries are skipped
 * with a warning logged (see alerts_parse). A body that is not a JSON
 * array is HTTP_ERR_BODY. On error *defs is NULL and *n 0. */
int http_fetch_alerts(struct http *http, struct alert_def **defs, size_t *n, char *err,
		      size_t errlen);

/* http_fetch_alerts that hands every problem of an entry to report (see
 * alerts_parse_report_z) instead of logging it; report NULL is
 * http_fetch_alerts. */
int http_fetch_alerts_report(struct http *http, alerts_problem_fn report, void *report_arg,
			     struct alert_def **defs, size_t *n, char *err, size_t errlen);

/* GET /query?target=<target>, from one thread, up to n at a time, each
 * slot with its own handle and keep-alive connection (the libcurl multi
 * interface), without blocking. Every byte of target but A-Z a-z 0-9
 * -._~ is percent-encoded. A query is a call as above (attempts, caps,
 * messages: a failed attempt that may be retried is started again at
 * once, unless opts.stop is set); its value is finite, and a body that is
 * not {"value": <finite number>} is HTTP_ERR_BODY (see
 * alerts_parse_value). Not thread-safe but for http_multi_wakeup. */
struct http_multi;

/* Length of the messages http_multi passes to done. */
#define HTTP_ERR_MAX 256

/* Called by http_multi_run and http_multi_cancel for each query that
 * ended: rc an enum http_status, value set on HTTP_OK, err its message
 * ("" on HTTP_OK). */
typedef void (*http_done_fn)(void *tag, int rc, double value, const char *err, void *arg);

/* n >= 1 slots; opts as for http_new. NULL with a message in err. */
struct http_multi *http_multi_new(const struct http_opts *opts, size_t n, char *err, size_t errlen);
void http_multi_free(struct http_multi *m);

/* Slots free for http_multi_start / queries in flight. */
size_t http_multi_idle(const struct http_multi *m);
size_t http_multi_busy(const struct http_multi *m);

/* Starts a query of target in an idle slot (target is copied); tag is
 * handed to done. HTTP_OK, or an error (no idle slot, stopped, setup) with
 * a message in err, and then done will not be called for it. */
int http_multi_start(struct http_multi *m, const char *target, void *tag, char *err, size_t errlen);

/* Waits up to timeout_ms for network activity or http_multi_wakeup, moves
 * the transfers on, and calls done for every query that ended. 0, or -1
 * when libcurl failed (logged). */
int http_multi_run(struct http_multi *m, int timeout_ms, http_done_fn done, void *arg);

/* From any thread: makes a wait in http_multi_run return now (or the next
 * one, when none is waiting). */
void http_multi_wakeup(struct http_multi *m);

/* Ends every query in flight at once with HTTP_ERR_TRANSPORT ("...:
 * stopped"), calling done for each. A request cut off may have reached
 * the server. */
void http_multi_cancel(struct http_multi *m, http_done_fn done, void *arg);

/* POST /notify {"alertName": name, "message": message} and
 * POST /resolve {"alertName": name}, Content-Type application/json.
 * HTTP_OK on any 2xx, whatever the body. Each is attempted opts.attempts
 * times at once on transport and server errors (not on 4xx). The last
 * error is in err. A call that fails may still have reached the server
 * (a timeout after the request was sent): delivery is at-least-once. */
int http_notify(struct http *http, const char *name, const char *message, char *err, size_t errlen);
int http_resolve(struct http *http, const char *name, char *err, size_t errlen);

/* The Retry-After of the last answer of the last call made with http, in
 * ms: delta-seconds or an HTTP-date, as libcurl reads it; 0 when the
 * answer had none, an invalid one or a date in the past, or when no
 * answer came. Any answer may carry one (429, 503, ...). Not capped: the
 * caller bounds it. */
int64_t http_retry_after_ms(const struct http *http);

/* Whether the last call made with http failed with a transport error that
 * struck after the connection was made (a timeout, a connection dropped
 * while sending or waiting): its request may have reached the server.
 * 0 after an answer of the server, a failed connect, or a success. */
int http_maybe_sent(const struct http *http);

/* The names the last successful http_fetch_alerts skipped (see
 * alerts_parse_full): borrowed, valid until the next fetch or
 * http_free. */
void http_skipped_names(const struct http *http, const char *const **names, size_t *n);

#endif
