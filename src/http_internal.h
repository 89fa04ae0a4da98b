#ifndef ALERT_EXEC_HTTP_INTERNAL_H
#define ALERT_EXEC_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http.h"

/*
 * What http.c (the blocking client and the attempts of every call) shares
 * with http_multi.c (many queries from one thread, each slot a struct
 * http). Not for other modules: they see http.h.
 */

/* Room for a quoted target or name in an error message. */
#define HTTP_WHAT_MAX 160

/* A client: one easy handle and what its calls keep between attempts. */
struct http {
	CURL *curl;
	struct curl_slist *json_headers; /* Content-Type, empty Expect */
	char *base_url;                  /* without trailing '/' */
	size_t base_len;
	int attempts;
	const atomic_int *stop;
	int cut_on_stop;        /* the stop flag ends the transfer in flight */
	int64_t retry_after_ms; /* Retry-After of the last answer, 0: none */
	int maybe_sent;         /* the last attempt failed after the request
					  * may have reached the server */
	size_t alerts_max_body;
	char **skipped; /* invalid entries of the last /alerts */
	size_t nskipped;

	char *url; /* reused: base + path + query */
	size_t url_cap;

	/* The response body of the current transfer, NUL-terminated. The
	 * buffer is kept between calls; it grows up to the largest cap used. */
	char *buf;
	size_t len;
	size_t cap;
	size_t limit;  /* body cap of this transfer */
	int keep_body; /* 0: the body is counted, not kept */
	int over;      /* the body went over limit */
	int oom;       /* growing buf failed */
	char curl_err[CURL_ERROR_SIZE];
};

struct http_request;

/* Validates a 2xx body in http->buf; 0, or -1 with a message in err. */
typedef int (*http_body_check)(struct http *http, const struct http_request *req, char *err,
			       size_t errlen);

/* One call: what to send and how to judge the answer. */
struct http_request {
	const char *what;      /* context of messages: "alerts", "query x" */
	const char *path;      /* "/alerts" ... */
	const char *target;    /* for /query: appended URL-encoded, else NULL */
	const char *post;      /* JSON body of a POST, NULL for GET */
	size_t limit;          /* body cap; 0: the body is discarded */
	http_body_check check; /* NULL: any 2xx body is fine */
	void *ctx;             /* for check */
};

/* Writes the message into err unless err is NULL or errlen 0. */
void http_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends to the message already in err. */
void http_append_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Readies the handle's buffers for an attempt. */
void http_attempt_begin(struct http *http);

/* The outcome of an attempt that ended with cc: an enum http_status with
 * the message in err. Sets *retry when another attempt may succeed. */
int http_attempt_end(struct http *http, const struct http_request *req, CURLcode cc, int *retry,
		     char *err, size_t errlen);

/* Sets up the handle for req. HTTP_OK or HTTP_ERR_INTERNAL. */
int http_request_setup(struct http *http, const struct http_request *req, char *err, size_t errlen);

/* The request of a query of target, its value into *value; what
 * (HTTP_WHAT_MAX bytes) holds its context ("query \"cpu load\""). */
struct http_request http_query_request(char *what, const char *target, double *value);

#endif
