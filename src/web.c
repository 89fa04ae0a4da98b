#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "config.h"
#include "engine.h"
#include "status.h"
#include "store.h"
#include "strbuf.h"

#define WEB_CONNECTIONS 16 /* at most; a scraper and a few browsers */
#define WEB_IDLE_TIMEOUT_S 10

struct web {
	struct web_source src;
	struct MHD_Daemon *daemon;
	struct store_reader *reader; /* used by the listener's one thread only */
	int fd;
};

int web_healthy(int64_t now, int64_t last_tick, int64_t window_ms, char *why, size_t whylen)
{
	if (last_tick <= 0) {
		snprintf(why, whylen, "the scheduler has not started");
		return 0;
	}
	if (now - last_tick > window_ms) {
		snprintf(why, whylen, "the scheduler loop last turned %lld ms ago (limit %lld ms)",
			 (long long)(now - last_tick), (long long)window_ms);
		return 0;
	}
	snprintf(why, whylen, "ok");
	return 1;
}

int web_ready(const char *db_error, int defs_loaded, char *why, size_t whylen)
{
	if (db_error != NULL) {
		snprintf(why, whylen, "database not readable: %s", db_error);
		return 0;
	}
	if (!defs_loaded) {
		snprintf(why, whylen, "alert definitions not loaded yet");
		return 0;
	}
	snprintf(why, whylen, "ok");
	return 1;
}

/* Queues body (a malloc'ed string, given away) with status and type. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
			       char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body ? body : (char *)"",
								 body ? MHD_RESPMEM_MUST_FREE
								      : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A one-line text answer. */
static enum MHD_Result respond_line(struct MHD_Connection *c, unsigned status, const char *line)
{
	struct strbuf b = {0};

	strbuf_printf(&b, "%s\n", line);
	if (b.failed) {
		strbuf_free(&b);
		return MHD_NO;
	}
	return respond(c, status, "text/plain; charset=utf-8", b.data, b.len);
}

/* A built page, or a 500 naming what failed. */
static enum MHD_Result respond_buf(struct MHD_Connection *c, struct strbuf *b, int rc,
				   const char *err, const char *type)
{
	char line[700];

	if (rc != 0 || b->failed) {
		snprintf(line, sizeof(line), "%s", rc != 0 ? err : "out of memory");
		strbuf_free(b);
		return respond_line(c, MHD_HTTP_INTERNAL_SERVER_ERROR, line);
	}
	return respond(c, MHD_HTTP_OK, type, b->data, b->len);
}

static enum MHD_Result serve_metrics(struct web *w, struct MHD_Connection *c)
{
	struct metrics_db db = {0};
	struct store_outbox_totals t;
	struct strbuf b = {0};
	char err[600];
	int64_t now = w->src.clock->wall_ms(w->src.clock->ctx);

	db.ok = store_read_state_counts(w->reader, db.alerts, err, sizeof(err)) == 0 &&
		store_read_outbox_totals(w->reader, &t, err, sizeof(err)) == 0;
	if (db.ok) {
		db.pending = t.pending;
		db.dead = t.dead;
		if (t.oldest_created > 0 && now > t.oldest_created)
			db.oldest_pending_s = (double)(now - t.oldest_created) / 1e3;
	}
	metrics_write(w->src.metrics, &db, &b);
	return respond_buf(c, &b, 0, NULL, "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result serve_page(struct web *w, struct MHD_Connection *c)
{
	struct strbuf b = {0};
	char err[600];
	int rc = status_page(w->reader, w->src.clock->wall_ms(w->src.clock->ctx), &b, err,
			     sizeof(err));

	return respond_buf(c, &b, rc, err, "text/html; charset=utf-8");
}

static enum MHD_Result serve_health(struct web *w, struct MHD_Connection *c, int ready)
{
	const struct metrics *m = w->src.metrics;
	char why[800], err[600];
	int64_t counts[3];
	int ok;

	if (ready) {
		int db = store_read_state_counts(w->reader, counts, err, sizeof(err));

		ok = web_ready(db == 0 ? NULL : err, atomic_load(&m->defs_loaded), why,
			       sizeof(why));
	} else {
		ok = web_healthy(w->src.clock->steady_ms(w->src.clock->ctx),
				 atomic_load(&m->scheduler_tick), w->src.health_window_ms, why,
				 sizeof(why));
	}
	return respond_line(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct web *w = cls;

	(void)version;
	(void)upload;
	(void)state;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_line(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	if (*upload_size != 0) {
		*upload_size = 0; /* a GET with a body: ignored */
		return MHD_YES;
	}
	if (strcmp(url, "/") == 0)
		return serve_page(w, c);
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(w, c);
	if (strcmp(url, "/-/healthy") == 0)
		return serve_health(w, c, 0);
	if (strcmp(url, "/-/ready") == 0)
		return serve_health(w, c, 1);
	return respond_line(c, MHD_HTTP_NOT_FOUND, "not found");
}

/* Binds and listens on sa; the fd, or -1 with the reason in err. */
static int bind_socket(const char *listen_text, const struct sockaddr_storage *sa, socklen_t len,
		       char *addr, size_t addrlen, char *err, size_t errlen)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char host[INET6_ADDRSTRLEN] = "?";
	int one = 1, port = 0;
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)sa, len) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
		snprintf(err, errlen, "--listen %s: %s", listen_text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (bound.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&bound;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(addr, addrlen, "[%s]:%d", host, port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&bound;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(addr, addrlen, "%s:%d", host, port);
	}
	return fd;
}

int web_start(const struct web_source *src, const char *listen_text, struct web **out, char *addr,
	      size_t addrlen, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t len;
	struct web *w = calloc(1, sizeof(*w));
	int status = ENGINE_EXIT_OSERR;

	*out = NULL;
	if (w == NULL) {
		snprintf(err, errlen, "listener: out of memory");
		return ENGINE_EXIT_OSERR;
	}
	w->src = *src;
	w->fd = -1;
	if (config_parse_listen(listen_text, &sa, &len) != 0) {
		snprintf(err, errlen, "--listen %s: not ADDR:PORT", listen_text);
		goto fail;
	}
	w->fd = bind_socket(listen_text, &sa, len, addr, addrlen, err, errlen);
	if (w->fd < 0)
		goto fail;
	if (store_reader_open(src->db_path, &w->reader, err, errlen) != 0) {
		status = ENGINE_EXIT_DB;
		goto fail;
	}
	w->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
		NULL, NULL, handle, w, MHD_OPTION_LISTEN_SOCKET, w->fd, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)WEB_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)WEB_IDLE_TIMEOUT_S, MHD_OPTION_END);
	if (w->daemon == NULL) {
		snprintf(err, errlen, "--listen %s: the listener's thread cannot start",
			 listen_text);
		goto fail;
	}
	w->fd = -1; /* MHD_stop_daemon closes it */
	*out = w;
	return ENGINE_EXIT_OK;
fail:
	web_stop(w);
	return status;
}

void web_stop(struct web *w)
{
	if (w == NULL)
		return;
	if (w->daemon != NULL)
		MHD_stop_daemon(w->daemon);
	if (w->fd >= 0)
		close(w->fd);
	store_reader_close(w->reader);
	free(w);
}
