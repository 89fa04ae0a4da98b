#include "server.h"

#include "buf.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define CONNECTION_LIMIT 4000
#define CONNECTION_TIMEOUT_SECS 120
#define LISTEN_BACKLOG 1024
#define THREAD_STACK_BYTES (512 * 1024)

struct server {
	struct server_config cfg;
	struct MHD_Daemon *daemon;
	unsigned port;
	atomic_int started;    /* after start the MHD logger stays quiet */
	char start_error[256]; /* the last MHD message while starting */
};

/* The body of a POST /notify or /resolve, collected across the calls MHD
 * makes to the handler. */
struct upload {
	struct buf body;
	int64_t arrived_ms; /* since start, when the headers were in */
	int too_large;
};

static enum endpoint classify(const char *url)
{
	if (strcmp(url, "/alerts") == 0)
		return EP_ALERTS;
	if (strcmp(url, "/query") == 0)
		return EP_QUERY;
	if (strcmp(url, "/notify") == 0)
		return EP_NOTIFY;
	if (strcmp(url, "/resolve") == 0)
		return EP_RESOLVE;
	if (strcmp(url, "/stats") == 0)
		return EP_STATS;
	return EP_OTHER;
}

static int is_post(enum endpoint ep)
{
	return ep == EP_NOTIFY || ep == EP_RESOLVE;
}

static int method_allowed(enum endpoint ep, const char *method)
{
	if (is_post(ep))
		return strcmp(method, "POST") == 0;
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static const char *endpoint_name(enum endpoint ep)
{
	switch (ep) {
	case EP_ALERTS:
		return "alerts";
	case EP_QUERY:
		return "query";
	case EP_NOTIFY:
		return "notify";
	case EP_RESOLVE:
		return "resolve";
	case EP_STATS:
		return "stats";
	default:
		return "other";
	}
}

/* The body of the POST being answered on this thread, for the request
 * log (an answer is queued on the thread that handles the request). */
static _Thread_local const struct buf *answering_body;

/* Appends {"us": ..., "ep": ..., "status": ..., "target"|"alert": ...,
 * "ua": the User-Agent, when the request had one} to
 * the request log: the target of a /query, the alertName of a notify or
 * resolve whose body names one (whatever the answer). A lost line is not
 * worth failing the request for. */
static void log_request(struct server *s, struct MHD_Connection *conn,
			enum endpoint ep, unsigned status)
{
	const char *target = NULL;
	const char *ua;
	cJSON *root = NULL;
	struct buf line;
	char err[256];

	if (s->cfg.request_log == NULL || ep == EP_STATS)
		return;
	buf_init(&line);
	buf_printf(&line, "{\"us\":%lld,\"ep\":\"%s\",\"status\":%u",
		   (long long)timebase_epoch_us(), endpoint_name(ep), status);
	if (ep == EP_QUERY)
		target = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
						     "target");
	if (target != NULL) {
		buf_puts(&line, ",\"target\":");
		buf_json_string(&line, target, strlen(target));
	}
	/* Who asked: several engines tell themselves apart by it. */
	ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_USER_AGENT);
	if (ua != NULL) {
		buf_puts(&line, ",\"ua\":");
		buf_json_string(&line, ua, strlen(ua));
	}
	if (is_post(ep) && answering_body != NULL &&
	    answering_body->data != NULL) {
		const cJSON *n;

		root = cJSON_ParseWithLength(answering_body->data,
					     answering_body->len);
		n = cJSON_GetObjectItemCaseSensitive(root, "alertName");
		if (cJSON_IsString(n)) {
			buf_puts(&line, ",\"alert\":");
			buf_json_string(&line, n->valuestring,
					strlen(n->valuestring));
		}
	}
	buf_puts(&line, "}");
	if (!line.failed)
		journal_write(s->cfg.request_log, line.data, line.len, err,
			      sizeof(err));
	buf_free(&line);
	cJSON_Delete(root);
}

/* Queues an answer of len bytes (owned by MHD per mode), counts it and
 * logs it in the request log. */
static enum MHD_Result send_body(struct server *s, struct MHD_Connection *conn,
				 enum endpoint ep, unsigned status,
				 const char *body, size_t len,
				 enum MHD_ResponseMemoryMode mode,
				 const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	stats_count(s->cfg.stats, ep, status);
	log_request(s, conn, ep, status);
	return ret;
}

/* Answers status with the JSON body {"error": "<formatted message>"}. */
__attribute__((format(printf, 6, 7)))
static enum MHD_Result send_error(struct server *s, struct MHD_Connection *conn,
				  enum endpoint ep, unsigned status,
				  const char *allow, const char *fmt, ...)
{
	struct buf msg;
	struct buf body;
	va_list ap;
	size_t len;
	char *data;

	buf_init(&msg);
	buf_init(&body);
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	buf_puts(&body, "{\"error\": ");
	if (!msg.failed && msg.len > 0)
		buf_json_string(&body, msg.data, msg.len);
	else
		buf_puts(&body, "\"\"");
	buf_puts(&body, "}\n");
	buf_free(&msg);
	len = body.len;
	data = buf_take(&body);
	if (data == NULL)
		return MHD_NO;
	return send_body(s, conn, ep, status, data, len, MHD_RESPMEM_MUST_FREE,
			 allow);
}

static void sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Answers GET /query. A HEAD request gets the same status but its value
 * is not delivered, so it is neither validated nor logged. */
static enum MHD_Result serve_query(struct server *s, struct MHD_Connection *conn,
				   int head)
{
	const struct server_config *cfg = &s->cfg;
	const char *target;
	char body[512];
	double value;
	int n;

	target = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
					     "target");
	if (target == NULL || target[0] == '\0')
		return send_error(s, conn, EP_QUERY, MHD_HTTP_BAD_REQUEST, NULL,
				  "missing target parameter");
	if (!values_at(cfg->values, target, timebase_secs(cfg->time), &value))
		return send_error(s, conn, EP_QUERY, MHD_HTTP_NOT_FOUND, NULL,
				  "unknown target \"%s\"", target);
	n = snprintf(body, sizeof(body), "{\"value\": %.5f}\n", value);
	if (n < 0 || (size_t)n >= sizeof(body))
		return send_error(s, conn, EP_QUERY,
				  MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				  "value of \"%s\" too large to print", target);
	if (cfg->validator != NULL && !head)
		validator_served(cfg->validator, target, value,
				 timebase_ms(cfg->time));
	if (cfg->query_log != NULL && !head) {
		long long us = (long long)timebase_epoch_us();
		struct buf line;
		char err[256];

		buf_init(&line);
		buf_printf(&line, "{\"t\":%lld.%03lld,\"us\":%lld,\"target\":",
			   us / 1000, us % 1000, us);
		buf_json_string(&line, target, strlen(target));
		buf_puts(&line, "}");
		/* A lost benchmark line is not worth failing the query for. */
		if (!line.failed)
			journal_write(cfg->query_log, line.data, line.len, err,
				      sizeof(err));
		buf_free(&line);
	}
	return send_body(s, conn, EP_QUERY, MHD_HTTP_OK, body, (size_t)n,
			 MHD_RESPMEM_MUST_COPY, NULL);
}

/* Checks the body of a notify/resolve. Returns 0 with *name (and *message
 * for notify) pointing into root, or -1 with the 400 reason in why. */
static int parse_call(const cJSON *root, enum endpoint ep, const char **name,
		      const char **message, char *why, size_t whylen)
{
	const cJSON *n;
	const cJSON *m;

	if (root == NULL) {
		fmt_err(why, whylen, "invalid JSON body");
		return -1;
	}
	if (!cJSON_IsObject(root)) {
		fmt_err(why, whylen, "body is not a JSON object");
		return -1;
	}
	n = cJSON_GetObjectItemCaseSensitive(root, "alertName");
	if (n == NULL || !cJSON_IsString(n)) {
		fmt_err(why, whylen, "alertName is %s",
			n == NULL ? "missing" : "not a string");
		return -1;
	}
	if (n->valuestring[0] == '\0') {
		fmt_err(why, whylen, "alertName is empty");
		return -1;
	}
	*name = n->valuestring;
	*message = NULL;
	if (ep == EP_NOTIFY) {
		m = cJSON_GetObjectItemCaseSensitive(root, "message");
		if (m == NULL || !cJSON_IsString(m)) {
			fmt_err(why, whylen, "message is %s",
				m == NULL ? "missing" : "not a string");
			return -1;
		}
		*message = m->valuestring;
	}
	return 0;
}

static enum MHD_Result serve_call(struct server *s, struct MHD_Connection *conn,
				  enum endpoint ep, const struct upload *up)
{
	const struct server_config *cfg = &s->cfg;
	cJSON *root = NULL;
	const char *name = NULL;
	const char *message = NULL;
	struct buf line;
	char why[256];
	enum MHD_Result ret;

	buf_init(&line);
	root = cJSON_ParseWithLength(up->body.data != NULL ? up->body.data : "",
				     up->body.len);
	if (parse_call(root, ep, &name, &message, why, sizeof(why)) != 0) {
		ret = send_error(s, conn, ep, MHD_HTTP_BAD_REQUEST, NULL, "%s",
				 why);
		goto out;
	}
	if (faults_reject(cfg->faults, ep)) {
		ret = send_error(s, conn, ep, MHD_HTTP_BAD_REQUEST, NULL,
				 "rejected %s of \"%s\" (injected)",
				 ep == EP_NOTIFY ? "notify" : "resolve", name);
		goto out;
	}
	if (cfg->record != NULL) {
		buf_printf(&line, "{\"t\":%lld,\"kind\":\"%s\",\"alert\":",
			   (long long)(timebase_epoch_us() / 1000),
			   ep == EP_NOTIFY ? "notify" : "resolve");
		buf_json_string(&line, name, strlen(name));
		if (message != NULL) {
			buf_puts(&line, ",\"message\":");
			buf_json_string(&line, message, strlen(message));
		}
		buf_puts(&line, "}");
		if (line.failed) {
			ret = send_error(s, conn, ep,
					 MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
					 "record: out of memory");
			goto out;
		}
		if (journal_write(cfg->record, line.data, line.len, why,
				  sizeof(why)) != 0) {
			ret = send_error(s, conn, ep,
					 MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
					 "record: %s", why);
			goto out;
		}
	}
	if (cfg->validator != NULL) {
		if (ep == EP_NOTIFY)
			validator_notify(cfg->validator, name, message,
					 up->arrived_ms);
		else
			validator_resolve(cfg->validator, name,
					  up->arrived_ms);
	}
	ret = send_body(s, conn, ep, MHD_HTTP_OK, "{\"status\": \"ok\"}\n", 17,
			MHD_RESPMEM_PERSISTENT, NULL);
out:
	buf_free(&line);
	cJSON_Delete(root);
	return ret;
}

static enum MHD_Result serve_stats(struct server *s, struct MHD_Connection *conn,
				   const char *method)
{
	char *body;

	if (!method_allowed(EP_STATS, method))
		return send_error(s, conn, EP_STATS, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "GET, HEAD", "method %s not allowed", method);
	body = stats_json(s->cfg.stats);
	if (body == NULL)
		return MHD_NO;
	return send_body(s, conn, EP_STATS, MHD_HTTP_OK, body, strlen(body),
			 MHD_RESPMEM_MUST_FREE, NULL);
}

/* Answers a complete request (for POSTs: once the body is in, or at once
 * when it is too large). */
static enum MHD_Result dispatch_request(struct server *s,
					struct MHD_Connection *conn,
					enum endpoint ep, const char *url,
					const char *method,
					const struct upload *up)
{
	struct faults *f = s->cfg.faults;

	if (ep == EP_STATS)
		return serve_stats(s, conn, method);
	if (faults_latency_ms(f, ep) > 0)
		sleep_ms(faults_latency_ms(f, ep));
	if (faults_down(f, timebase_secs(s->cfg.time)))
		return send_error(s, conn, ep, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
				  "service unavailable (down window)");
	if (ep == EP_OTHER)
		return send_error(s, conn, ep, MHD_HTTP_NOT_FOUND, NULL,
				  "not found: %s", url);
	if (!method_allowed(ep, method))
		return send_error(s, conn, ep, MHD_HTTP_METHOD_NOT_ALLOWED,
				  is_post(ep) ? "POST" : "GET, HEAD",
				  "method %s not allowed on %s", method, url);
	if (up != NULL && up->too_large)
		return send_error(s, conn, ep, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
				  "request body larger than %d bytes",
				  SERVER_MAX_BODY);
	if (faults_fail(f, ep))
		return send_error(s, conn, ep, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  NULL, "injected failure");
	switch (ep) {
	case EP_ALERTS:
		return send_body(s, conn, ep, MHD_HTTP_OK, s->cfg.alerts->body,
				 s->cfg.alerts->body_len, MHD_RESPMEM_PERSISTENT,
				 NULL);
	case EP_QUERY:
		return serve_query(s, conn, strcmp(method, "HEAD") == 0);
	default:
		return serve_call(s, conn, ep, up);
	}
}

static enum MHD_Result dispatch(struct server *s, struct MHD_Connection *conn,
				enum endpoint ep, const char *url,
				const char *method, const struct upload *up)
{
	enum MHD_Result ret;

	answering_body = up != NULL ? &up->body : NULL;
	ret = dispatch_request(s, conn, ep, url, method, up);
	answering_body = NULL;
	return ret;
}

static int declared_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(
		conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end = NULL;
	unsigned long long n;

	if (cl == NULL)
		return 0;
	errno = 0;
	n = strtoull(cl, &end, 10);
	return errno == ERANGE || n > SERVER_MAX_BODY;
}

/* Marks a request whose headers were seen but whose body is discarded (all
 * but POST /notify and /resolve): its address is the per-request context. */
static const char discard_body = 0;

/* MHD calls the handler once with the headers, then for each piece of the
 * body, then once more. Answering on the first call would make MHD close a
 * keep-alive connection, so every answer waits for the last call (except
 * a 413 for a declared oversized body, which closes anyway). */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct server *s = cls;
	enum endpoint ep = classify(url);
	int collect = is_post(ep) && strcmp(method, "POST") == 0;
	struct upload *up = NULL;

	(void)version;
	if (*con_cls == NULL) {
		if (!collect) {
			*con_cls = (void *)&discard_body;
			return MHD_YES;
		}
		up = calloc(1, sizeof(*up));
		if (up == NULL)
			return MHD_NO;
		buf_init(&up->body);
		up->arrived_ms = timebase_ms(s->cfg.time);
		*con_cls = up;
		if (declared_too_large(conn)) {
			up->too_large = 1;
			return dispatch(s, conn, ep, url, method, up);
		}
		return MHD_YES;
	}
	if (collect)
		up = *con_cls;
	if (*upload_data_size > 0) {
		if (up != NULL && !up->too_large &&
		    up->body.len + *upload_data_size > SERVER_MAX_BODY) {
			up->too_large = 1;
			buf_free(&up->body);
		}
		if (up != NULL && !up->too_large &&
		    buf_append(&up->body, upload_data, *upload_data_size) != 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(s, conn, ep, url, method, up);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	*con_cls = NULL;
	if (up == NULL || (const void *)up == (const void *)&discard_body)
		return;
	buf_free(&up->body);
	free(up);
}

__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct server *s = cls;

	if (atomic_load(&s->started))
		return;
	if (vsnprintf(s->start_error, sizeof(s->start_error), fmt, ap) < 0)
		s->start_error[0] = '\0';
}

int server_start(struct server **out, const struct server_config *cfg,
		 char *err, size_t errlen)
{
	struct server *s = NULL;
	struct sockaddr_in addr;
	struct MHD_OptionItem opts[10];
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG;
	size_t n = 0;
	size_t len;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		fmt_err(err, errlen, "cannot start server: out of memory");
		return -1;
	}
	s->cfg = *cfg;
	atomic_init(&s->started, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)cfg->port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &addr };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
					     (intptr_t)completed, s };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER,
					     (intptr_t)mhd_log, s };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
					     CONNECTION_LIMIT, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
					     CONNECTION_TIMEOUT_SECS, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_BACKLOG_SIZE,
					     LISTEN_BACKLOG, NULL };
	if (faults_max_latency_ms(cfg->faults) > 0) {
		/* Sleeping answers must not hold up other connections. */
		flags |= MHD_USE_THREAD_PER_CONNECTION;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_STACK_SIZE,
						     THREAD_STACK_BYTES, NULL };
	} else if (cfg->threads > 1) {
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
						     cfg->threads, NULL };
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	/* MHD_start_daemon is variadic; the callbacks are function pointers
	 * passed through intptr_t in MHD_OPTION_ARRAY as MHD documents. */
	s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL,
				     handle, s, MHD_OPTION_ARRAY, opts,
				     MHD_OPTION_END);
	if (s->daemon == NULL) {
		len = strlen(s->start_error);
		while (len > 0 && (s->start_error[len - 1] == '\n' ||
				   s->start_error[len - 1] == '.'))
			s->start_error[--len] = '\0';
		fmt_err(err, errlen, "cannot listen on 127.0.0.1:%u: %s",
			cfg->port,
			len > 0 ? s->start_error : "libmicrohttpd failed to start");
		free(s);
		return -1;
	}
	atomic_store(&s->started, 1);
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info != NULL ? info->port : cfg->port;
	*out = s;
	return 0;
}

unsigned server_port(const struct server *s)
{
	return s->port;
}

void server_stop(struct server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
