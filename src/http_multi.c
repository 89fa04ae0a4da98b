#include "http_internal.h"

#include <assert.h>
#include <stdlib.h>

#include "log.h"

/*
 * Many queries from one thread: the libcurl multi interface over the
 * handles of struct http clients, one per slot, so that a query made
 * here is validated, capped, retried and worded as every call of http.c.
 */

struct query_slot {
	struct http *http; /* its handle, buffers and connection */
	int busy;
	int made; /* attempts made */
	void *tag;
	double value;
	struct http_request req;
	char what[HTTP_WHAT_MAX];
	char err[HTTP_ERR_MAX];
};

struct http_multi {
	CURLM *multi;
	struct query_slot *slot;
	size_t n;
	size_t busy;
	int attempts;
	const atomic_int *stop;
};

struct http_multi *http_multi_new(const struct http_opts *opts, size_t n, char *err, size_t errlen)
{
	struct http_multi *m;

	assert(opts != NULL);
	if (n < 1) {
		http_set_err(err, errlen, "api: a multi client needs at least one slot");
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->slot = calloc(n, sizeof(*m->slot))) == NULL) {
		free(m);
		http_set_err(err, errlen, "api: out of memory");
		return NULL;
	}
	m->n = n;
	m->attempts = opts->attempts;
	m->stop = opts->stop;
	m->multi = curl_multi_init();
	if (m->multi == NULL) {
		http_set_err(err, errlen, "api: curl_multi_init failed");
		http_multi_free(m);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		m->slot[i].http = http_new(opts, err, errlen);
		if (m->slot[i].http == NULL ||
		    curl_easy_setopt(m->slot[i].http->curl, CURLOPT_PRIVATE, (void *)&m->slot[i]) !=
			    CURLE_OK) {
			if (m->slot[i].http != NULL)
				http_set_err(err, errlen, "api: curl setup failed");
			http_multi_free(m);
			return NULL;
		}
	}
	return m;
}

void http_multi_free(struct http_multi *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		if (m->slot[i].http == NULL)
			continue;
		if (m->slot[i].busy)
			curl_multi_remove_handle(m->multi, m->slot[i].http->curl);
		http_free(m->slot[i].http);
	}
	if (m->multi != NULL)
		curl_multi_cleanup(m->multi);
	free(m->slot);
	free(m);
}

size_t http_multi_idle(const struct http_multi *m)
{
	return m->n - m->busy;
}

size_t http_multi_busy(const struct http_multi *m)
{
	return m->busy;
}

/* Adds the slot's handle to the multi for one more attempt. */
static int slot_attempt(struct http_multi *m, struct query_slot *q)
{
	CURLMcode mc;

	http_attempt_begin(q->http);
	q->made++;
	mc = curl_multi_add_handle(m->multi, q->http->curl);
	if (mc != CURLM_OK) {
		http_set_err(q->err, sizeof(q->err), "%s: curl: %s", q->what,
			     curl_multi_strerror(mc));
		return HTTP_ERR_INTERNAL;
	}
	return HTTP_OK;
}

int http_multi_start(struct http_multi *m, const char *target, void *tag, char *err, size_t errlen)
{
	struct query_slot *q = NULL;
	int rc;

	assert(m != NULL && target != NULL);
	for (size_t i = 0; i < m->n && q == NULL; i++)
		if (!m->slot[i].busy)
			q = &m->slot[i];
	if (q == NULL) {
		http_set_err(err, errlen, "api: no idle slot");
		return HTTP_ERR_INTERNAL;
	}
	q->req = http_query_request(q->what, target, &q->value);
	q->made = 0;
	q->tag = tag;
	q->err[0] = '\0';
	rc = http_request_setup(q->http, &q->req, err, errlen);
	q->req.target = NULL; /* the caller's; the URL holds it now */
	if (rc == HTTP_OK && m->stop != NULL && atomic_load(m->stop) != 0) {
		http_set_err(err, errlen, "%s: stopped", q->what);
		rc = HTTP_ERR_TRANSPORT;
	}
	if (rc == HTTP_OK && (rc = slot_attempt(m, q)) != HTTP_OK)
		http_set_err(err, errlen, "%s", q->err);
	if (rc != HTTP_OK)
		return rc;
	q->busy = 1;
	m->busy++;
	return HTTP_OK;
}

/* Ends the slot's query with rc: done is told, the slot is idle again. */
static void slot_done(struct http_multi *m, struct query_slot *q, int rc, http_done_fn done,
		      void *arg)
{
	if (rc != HTTP_OK && q->made > 1)
		http_append_err(q->err, sizeof(q->err), " (%d attempts)", q->made);
	q->busy = 0;
	m->busy--;
	done(q->tag, rc, q->value, rc == HTTP_OK ? "" : q->err, arg);
}

int http_multi_run(struct http_multi *m, int timeout_ms, http_done_fn done, void *arg)
{
	CURLMsg *msg;
	CURLMcode mc;
	int running = 0;
	int left = 0;

	mc = curl_multi_poll(m->multi, NULL, 0, timeout_ms, NULL);
	if (mc == CURLM_OK)
		mc = curl_multi_perform(m->multi, &running);
	if (mc != CURLM_OK) {
		log_msg(LOG_ERROR, "queries: curl: %s", curl_multi_strerror(mc));
		return -1;
	}
	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
		struct query_slot *q = NULL;
		CURLcode cc;
		int retry = 0;
		int rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		cc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		curl_multi_remove_handle(m->multi, msg->easy_handle);
		rc = http_attempt_end(q->http, &q->req, cc, &retry, q->err, sizeof(q->err));
		if (rc != HTTP_OK && retry && q->made < m->attempts &&
		    !(m->stop != NULL && atomic_load(m->stop) != 0) &&
		    slot_attempt(m, q) == HTTP_OK)
			continue;
		slot_done(m, q, rc, done, arg);
	}
	return 0;
}

void http_multi_wakeup(struct http_multi *m)
{
	curl_multi_wakeup(m->multi);
}

void http_multi_cancel(struct http_multi *m, http_done_fn done, void *arg)
{
	for (size_t i = 0; i < m->n; i++) {
		struct query_slot *q = &m->slot[i];

		if (!q->busy)
			continue;
		curl_multi_remove_handle(m->multi, q->http->curl);
		http_set_err(q->err, sizeof(q->err), "%s: stopped", q->what);
		slot_done(m, q, HTTP_ERR_TRANSPORT, done, arg);
	}
}
