#ifndef ALERT_EXEC_API_H
#define ALERT_EXEC_API_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "rules.h"

/*
 * The client of the alerts server (DESIGN.md section 1): libcurl for the
 * transport, cJSON for the bodies. One struct api per thread: it owns one
 * CURL easy handle that is reused, so connections are kept alive.
 * Everything the server sends is validated here.
 *
 * Threads: a struct api is used by one thread at a time; different
 * threads use different clients. curl_global_init() must have been called
 * (main does it once, before any thread starts).
 *
 * Errors: every call returns API_OK (0) or a negative enum api_status and
 * writes a one-line, lowercase message naming the call into err, e.g.
 *   query "cpu load": HTTP 500 (3 attempts)
 *   notify alert-7: transport error: Operation timed out after 5000 ...
 *   alerts: body over 67108864 bytes
 * (targets and names are written as log_quote() writes log values).
 * err may be NULL or errlen 0 when the message is not wanted.
 *
 * Attempts: a call makes up to opts.attempts attempts back to back (no
 * sleep). It tries again after API_ERR_TRANSPORT, API_ERR_SERVER, and a
 * 2xx body that fails validation (a bad /query or /alerts body can be a
 * transient fault of the server); not after API_ERR_CLIENT, a body over
 * its cap, or API_ERR_INTERNAL. A notify or resolve is not tried again
 * after a transport error other than a failed connect (a timeout, a
 * connection dropped after sending): the server may have taken it. HTTP
 * 408 and 429 are API_ERR_SERVER but not tried again at once: the server
 * asks for time (api_retry_after_ms says how much, when it did).
 *
 * Stop: *opts.stop is read before every attempt, the first included: a
 * call stopped before its first attempt returns API_ERR_TRANSPORT
 * ("stopped") without sending anything. A GET in flight (api_fetch_alerts,
 * api_query) is cut off within about a second of the flag being set, with
 * API_ERR_TRANSPORT ("alerts: stopped"). A POST in flight (api_notify,
 * api_resolve) is not: it runs to its answer or to timeout_ms, so that
 * its outcome is known and a graceful stop does not leave a call that
 * was maybe taken. The queries of api_multi are not cut off by the flag
 * either (api_multi_cancel does that). The status is that of the last
 * attempt.
 *
 * Bodies: /alerts bodies are capped at API_ALERTS_MAX_BODY and /query
 * bodies at API_MAX_BODY; a 2xx over its cap is API_ERR_BODY, a non-2xx
 * over its cap keeps the class of its status. Bodies of /notify and
 * /resolve answers are not read. Redirects are not followed (3xx is
 * API_ERR_SERVER).
 */

/* Results of a call. */
enum api_status {
	API_OK = 0,
	API_ERR_TRANSPORT = -1, /* connect, timeout, reset, ... : retry */
	API_ERR_SERVER = -2,    /* HTTP 5xx, 408, 429 (or any other non-2xx,
				 * non-4xx): retry */
	API_ERR_CLIENT = -3,    /* HTTP 4xx but 408 and 429: the server refuses
				 * this request */
	API_ERR_BODY = -4,      /* 2xx with a body that fails validation */
	API_ERR_INTERNAL = -5,  /* out of memory, curl init failure */
};

/* Default cap of a /alerts body: 100 000 alerts of the v2 profile take
 * about 20 MB. */
#define API_ALERTS_MAX_BODY (64 * 1024 * 1024)
#define API_MAX_BODY (64 * 1024)
/* Limits on strings of a definition; longer ones make the entry invalid. */
#define API_MAX_NAME 256
#define API_MAX_QUERY 4096
#define API_MAX_MESSAGE 4096
/* Largest accepted intervalSecs; a larger repeatIntervalSecs or
 * sustainSecs is brought down to it. */
#define API_MAX_SECS (366LL * 24 * 3600)
/* Most entries of a /alerts body, ten times the 100 000 alerts the
 * benchmark runs; a body with more is refused whole (API_ERR_BODY). */
#define API_MAX_ALERTS 1000000
/* Warnings about entries of one /alerts body that are logged one by one
 * (enough for every kind of bad entry at once); the rest are counted in
 * one line. */
#define API_MAX_ENTRY_WARNINGS 50

struct api_opts {
	const char *base_url;      /* e.g. "http://localhost:9001", no trailing / needed */
	long connect_timeout_ms;   /* CURLOPT_CONNECTTIMEOUT_MS; 0: curl's default */
	long timeout_ms;           /* CURLOPT_TIMEOUT_MS, whole transfer; 0: none */
	int attempts;              /* immediate attempts per call (-r), >= 1 */
	const atomic_int *stop;    /* when non-NULL and set, no further attempt is
				    * made (read before every attempt) */
	size_t alerts_max_body;    /* cap of a /alerts body; 0: API_ALERTS_MAX_BODY */
};

struct api;

/* Checks that url can be the server's base URL: http:// or https://, read
 * whole by libcurl's URL parser (host, port 1-65535, IPv6 brackets), no
 * query or fragment. Needs no curl_global_init(). Returns 0, or -1 with
 * a message in err that starts with the URL, its userinfo hidden
 * ("'http://[::1' is not a valid URL: bad IPv6 address"). */
int api_check_url(const char *url, char *err, size_t errlen);

/* Writes url into out (outlen > 0, truncated to fit) with its userinfo
 * hidden: "http://user:secret@host:9001/x" becomes
 * "http://" "***@host:9001/x"; a URL without one is copied as it is. A URL
 * libcurl cannot read loses everything before its last '@' (before any
 * '?' or '#'), so a malformed one does not show a password either.
 * Returns out. For logs and messages. */
const char *api_redact_url(char *out, size_t outlen, const char *url);

/* Creates a client. Copies what it needs of *opts (the stop flag is
 * borrowed and must outlive the client). Returns NULL with a message in
 * err when base_url fails api_check_url, attempts < 1, a
 * timeout is negative, or out of memory. Free with api_free();
 * api_free(NULL) is a no-op. */
struct api *api_new(const struct api_opts *opts, char *err, size_t errlen);
void api_free(struct api *api);

/* GET /alerts. On API_OK sets *defs to a malloc'd array of *n validated
 * definitions (free with api_defs_free); invalid entries are skipped with a
 * warning logged (see api_parse_alerts). A body that is not a JSON array
 * is API_ERR_BODY. On error *defs is NULL and *n 0. */
int api_fetch_alerts(struct api *api, struct alert_def **defs, size_t *n,
		     char *err, size_t errlen);

/* GET /query?target=<target>, every byte of target but A-Z a-z 0-9 -._~
 * percent-encoded. On API_OK sets *value (finite); a body that is not
 * {"value": <finite number>} is API_ERR_BODY. */
int api_query(struct api *api, const char *target, double *value,
	      char *err, size_t errlen);

/* Queries from one thread, up to n at a time, each slot with its own
 * handle and keep-alive connection (the libcurl multi interface). Each
 * query is api_query made without blocking: the same URL, validation,
 * caps and attempts (a failed attempt that may be retried is started
 * again at once, unless opts.stop is set). Not thread-safe but for
 * api_multi_wakeup. */
struct api_multi;

/* Length of the messages api_multi passes to done. */
#define API_ERR_MAX 256

/* Called by api_multi_run and api_multi_cancel for each query that ended:
 * rc as api_query's, value set on API_OK, err its message ("" on API_OK). */
typedef void (*api_done_fn)(void *tag, int rc, double value, const char *err, void *arg);

/* n >= 1 slots; opts as for api_new. NULL with a message in err. */
struct api_multi *api_multi_new(const struct api_opts *opts, size_t n, char *err,
				size_t errlen);
void api_multi_free(struct api_multi *m);

/* Slots free for api_multi_start / queries in flight. */
size_t api_multi_idle(const struct api_multi *m);
size_t api_multi_busy(const struct api_multi *m);

/* Starts a query of target in an idle slot (target is copied); tag is
 * handed to done. API_OK, or an error (no idle slot, stopped, setup) with
 * a message in err, and then done will not be called for it. */
int api_multi_start(struct api_multi *m, const char *target, void *tag, char *err,
		    size_t errlen);

/* Waits up to timeout_ms for network activity or api_multi_wakeup, moves
 * the transfers on, and calls done for every query that ended. 0, or -1
 * when libcurl failed (logged). */
int api_multi_run(struct api_multi *m, int timeout_ms, api_done_fn done, void *arg);

/* From any thread: makes a wait in api_multi_run return now (or the next
 * one, when none is waiting). */
void api_multi_wakeup(struct api_multi *m);

/* Ends every query in flight at once with API_ERR_TRANSPORT ("...:
 * stopped"), calling done for each. A request cut off may have reached
 * the server. */
void api_multi_cancel(struct api_multi *m, api_done_fn done, void *arg);

/* POST /notify {"alertName": name, "message": message} and
 * POST /resolve {"alertName": name}, Content-Type application/json.
 * API_OK on any 2xx, whatever the body. Each is attempted opts.attempts
 * times at once on transport and server errors (not on 4xx). The last
 * error is in err. A call that fails may still have reached the server
 * (a timeout after the request was sent): delivery is at-least-once. */
int api_notify(struct api *api, const char *name, const char *message,
	       char *err, size_t errlen);
int api_resolve(struct api *api, const char *name, char *err, size_t errlen);

/* Pure parsers, used by the calls above and by the fuzz targets. They do
 * no I/O but api_parse_alerts' warnings (log_msg). body need not be
 * NUL-terminated; it is copied first. */

/* Parses and validates a /alerts body of len bytes. Returns 0 with *defs
 * (never NULL, free with api_defs_free) and *n (possibly 0), or -1 with a
 * message in err ("alerts: body is not a JSON array (it is an object)",
 * not JSON, a \u0000 escape anywhere, more than API_MAX_ALERTS entries,
 * out of memory) and *defs NULL. Memory grows with the entries kept, not
 * with the entries sent.
 *
 * An entry is kept when it is an object with:
 *   name      a string, non-empty, <= API_MAX_NAME bytes, UTF-8, no
 *             control characters, not the name of an entry kept before it;
 *   query     a string, non-empty, <= API_MAX_QUERY bytes, UTF-8;
 *   intervalSecs  an integer-valued number in [1, API_MAX_SECS];
 *   repeatIntervalSecs  optional: missing, null or <= 0 means 300 s; if
 *             present a number, integer-valued; above API_MAX_SECS it is
 *             API_MAX_SECS (a server may send 2^31-1 for "never");
 *   sustainSecs  optional: missing or null means 0; if present a number,
 *             integer-valued, >= 0; above API_MAX_SECS it is API_MAX_SECS;
 *   warn, critical  objects with "value" a finite number and "message" a
 *             UTF-8 string <= API_MAX_MESSAGE bytes. An empty message is
 *             accepted: the server defines the text and its validator
 *             expects it back; dropping the alert would be worse;
 * and when no string of it (key or value) holds a raw byte below 0x20,
 * which JSON does not allow (cJSON keeps a raw NUL, and the C string
 * "alert-x<NUL>evil" reads as alert-x); the name of such an entry is not
 * trusted, so it is not among the skipped names below.
 * Other members are ignored. Every other entry is skipped with exactly one
 * warning naming its 0-based index, its name when that is usable, and the
 * field: "alerts: skipping entry 3 (alert-7): intervalSecs is not a
 * positive integer (0)". A value brought down to API_MAX_SECS gives one
 * warning naming the entry and the field ("alerts: keeping entry 4
 * (alert-8): sustainSecs 2.14748e+09 is over 31622400, using 31622400").
 * Only the first API_MAX_ENTRY_WARNINGS such warnings of a body are
 * logged; one more line counts the rest ("alerts: and 999950 more
 * warnings not logged (in all: entries skipped=1000000 values
 * clamped=0)"). Of entries with the same name the first kept one wins.
 * Times come out in ms. */
int api_parse_alerts(const char *body, size_t len, struct alert_def **defs,
		     size_t *n, char *err, size_t errlen);

/* api_parse_alerts, also returning in *skipped (malloc'd, free with
 * api_names_free) the *nskipped names of the entries that were skipped as
 * invalid although their name was usable. An entry that turns invalid says
 * nothing about whether its alert still fires: the engine keeps that
 * alert's stored definition rather than retiring it. */
int api_parse_alerts_full(const char *body, size_t len, struct alert_def **defs,
			  size_t *n, char ***skipped, size_t *nskipped,
			  char *err, size_t errlen);
void api_names_free(char **names, size_t n);

/* The Retry-After of the last answer of the last call made with api, in
 * ms: delta-seconds or an HTTP-date, as libcurl reads it; 0 when the
 * answer had none, an invalid one or a date in the past, or when no
 * answer came. Any answer may carry one (429, 503, ...). Not capped: the
 * caller bounds it. */
int64_t api_retry_after_ms(const struct api *api);

/* Whether the last call made with api failed with a transport error that
 * struck after the connection was made (a timeout, a connection dropped
 * while sending or waiting): its request may have reached the server.
 * 0 after an answer of the server, a failed connect, or a success. */
int api_maybe_sent(const struct api *api);

/* The names the last successful api_fetch_alerts skipped (see
 * api_parse_alerts_full): borrowed, valid until the next fetch or
 * api_free. */
void api_skipped_names(const struct api *api, const char *const **names, size_t *n);

/* Parses a /query body {"value": <number>} (other members are ignored).
 * Returns 0 with a finite *value, or -1 with a bare reason in err that
 * api_query prefixes with its context: "body is empty", "body is not JSON
 * (starts with <html>)", "body is not a JSON object (it is an array)",
 * "body has no \"value\"", "value is not a number (it is null)", "value is
 * not finite" (1e999), "body is not JSON (a string holds the raw control
 * byte 0x00)" (cJSON would read the key "value<NUL>x" as "value"). */
int api_parse_value(const char *body, size_t len, double *value,
		    char *err, size_t errlen);

/* Frees one definition's strings (not the struct) / an array of n. */
void api_def_clear(struct alert_def *def);
void api_defs_free(struct alert_def *defs, size_t n);

/* Deep copy of src into *dst. Returns 0, or -1 when out of memory (then
 * *dst owns nothing). */
int api_def_copy(struct alert_def *dst, const struct alert_def *src);

#endif
