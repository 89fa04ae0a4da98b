/* server: the HTTP side of the emulator (libmicrohttpd) on 127.0.0.1.
 *
 *   GET  /alerts          200, the alert definitions (application/json)
 *   GET  /query?target=Q  200 {"value": 123.45678}; 404 unknown target;
 *                         400 without target
 *   POST /notify          {"alertName": "...", "message": "..."} -> 200
 *   POST /resolve         {"alertName": "..."} -> 200
 *   GET  /stats           200, request counters (never failed, never down)
 *
 * Bodies are read raw as JSON whatever the Content-Type; bad bodies get
 * 400, bodies over 64 KiB 413, unknown paths 404, wrong methods 405, every
 * error a JSON {"error": "..."}. Down windows answer 503 to everything but
 * /stats, then the fail rates answer 500, then a well-formed notify or
 * resolve may be rejected with 400 (the reject rates). Accepted notify/resolve calls are
 * recorded (and flushed) and given to the validator before the 200 goes
 * out; values are given to the validator and the query log before their
 * 200 goes out. */
#ifndef EMU_SERVER_H
#define EMU_SERVER_H

#include "alerts.h"
#include "faults.h"
#include "journal.h"
#include "stats.h"
#include "timebase.h"
#include "values.h"
#include "validator.h"

#include <stddef.h>
#include <stdint.h>

#define SERVER_MAX_BODY (64 * 1024)

/* What the server works with; all borrowed, and all must outlive the
 * server. Optional parts are NULL. */
struct server_config {
	unsigned port;                  /* 0 picks a free port */
	unsigned threads;               /* pool size when latency is 0 */
	const struct alerts *alerts;
	const struct values *values;
	struct faults *faults;
	struct stats *stats;
	struct journal *record;         /* optional */
	struct journal *query_log;      /* optional */
	struct journal *request_log;    /* optional: every answer but /stats */
	struct validator *validator;    /* optional */
	const struct timebase *time;
};

struct server;

/* Starts listening and serving in background threads. Returns 0 and sets
 * *out, or -1 with "cannot listen on 127.0.0.1:PORT: reason" in err. */
int server_start(struct server **out, const struct server_config *cfg,
		 char *err, size_t errlen);

/* The port actually bound. */
unsigned server_port(const struct server *s);

/* Stops serving (closing open connections, waiting for in-flight answers)
 * and releases the server; server_stop(NULL) is a no-op. */
void server_stop(struct server *s);

#endif
