#ifndef ALERT_EXEC_API_H
#define ALERT_EXEC_API_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/*
 * The client of the alerts server (DESIGN.md section 1): libcurl for the
 * transport, cJSON for the bodies. One struct api per thread: it owns one
 * CURL easy handle that is reused, so connections are kept alive.
 * Everything the server sends is validated here.
 */

/* Results of a call. */
enum api_status {
	API_OK = 0,
	API_ERR_TRANSPORT = -1, /* connect, timeout, reset, ... : retry */
	API_ERR_SERVER = -2,    /* HTTP 5xx (or any other non-2xx, non-4xx): retry */
	API_ERR_CLIENT = -3,    /* HTTP 4xx: the server refuses this request */
	API_ERR_BODY = -4,      /* 2xx with a body that fails validation */
	API_ERR_INTERNAL = -5,  /* out of memory, curl init failure */
};

#define API_ALERTS_MAX_BODY (1024 * 1024)
#define API_MAX_BODY (64 * 1024)
/* Limits on strings of a definition; longer ones make the entry invalid. */
#define API_MAX_NAME 256
#define API_MAX_QUERY 4096
#define API_MAX_MESSAGE 4096
/* Largest accepted intervalSecs / repeatIntervalSecs / sustainSecs. */
#define API_MAX_SECS (366LL * 24 * 3600)

struct api_opts {
	const char *base_url;      /* e.g. "http://localhost:9001", no trailing / needed */
	long connect_timeout_ms;   /* CURLOPT_CONNECTTIMEOUT_MS */
	long timeout_ms;           /* CURLOPT_TIMEOUT_MS, whole transfer */
	int attempts;              /* immediate attempts per call (-r), >= 1 */
	const volatile int *stop;  /* when non-NULL and set, no further attempt is made */
};

struct api;

/* Creates a client. Copies what it needs of *opts. Returns NULL with a
 * message in err on failure. Free with api_free(). */
struct api *api_new(const struct api_opts *opts, char *err, size_t errlen);
void api_free(struct api *api);

/* GET /alerts. On API_OK sets *defs to a malloc'd array of *n validated
 * definitions (free with api_defs_free); invalid entries are skipped with a
 * warning logged. A body that is not a JSON array is API_ERR_BODY. */
int api_fetch_alerts(struct api *api, struct alert_def **defs, size_t *n,
		     char *err, size_t errlen);

/* GET /query?target=<URL-encoded target>. On API_OK sets *value (finite). */
int api_query(struct api *api, const char *target, double *value,
	      char *err, size_t errlen);

/* POST /notify {"alertName": name, "message": message} and
 * POST /resolve {"alertName": name}, Content-Type application/json.
 * API_OK on any 2xx. Each is attempted opts.attempts times at once on
 * transport and server errors (not on 4xx). The last error is in err. */
int api_notify(struct api *api, const char *name, const char *message,
	       char *err, size_t errlen);
int api_resolve(struct api *api, const char *name, char *err, size_t errlen);

/* Pure parsers, used by the calls above and by the fuzz targets. */

/* Parses and validates a /alerts body of len bytes (need not be
 * NUL-terminated). Returns 0 with *defs/*n (possibly n == 0), or -1 with a
 * message in err when the body is not a JSON array. Entries with a missing
 * or mistyped field, an empty, over-long or duplicate name, a non-positive
 * intervalSecs, a negative sustainSecs, or values over API_MAX_SECS are
 * skipped, each with one warning naming the entry and the field. */
int api_parse_alerts(const char *body, size_t len, struct alert_def **defs,
		     size_t *n, char *err, size_t errlen);

/* Parses a /query body {"value": <number>}. Returns 0 with a finite *value,
 * or -1 with a message in err (not JSON, not an object, no "value", not a
 * number, not finite). */
int api_parse_value(const char *body, size_t len, double *value,
		    char *err, size_t errlen);

/* Frees one definition's strings (not the struct) / an array of n. */
void api_def_clear(struct alert_def *def);
void api_defs_free(struct alert_def *defs, size_t n);

/* Deep copy of src into *dst. Returns 0, or -1 when out of memory. */
int api_def_copy(struct alert_def *dst, const struct alert_def *src);

#endif
