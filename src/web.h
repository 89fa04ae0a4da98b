#ifndef ALERT_EXEC_WEB_H
#define ALERT_EXEC_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "metrics.h"

/*
 * The operator's HTTP listener (libmicrohttpd, one thread of its own):
 *
 *   /           the status page (status.c)
 *   /metrics    the Prometheus text exposition (metrics.c)
 *   /-/healthy  200 while the scheduler loop turns, else 503
 *   /-/ready    200 once the database reads and definitions are loaded
 *
 * GET and HEAD only (405 otherwise); any other path is a 404. It reads
 * the engine's counters (relaxed atomics) and the database through a
 * reader of its own (store.h): it never takes the engine's write lock, so
 * a slow scrape cannot hold an evaluation back.
 */

struct web;

/* What the listener reads. Borrowed: must outlive the listener. */
struct web_source {
	struct metrics *metrics;
	const struct clock_source *clock;
	const char *db_path;
	int64_t health_window_ms; /* the scheduler must have turned within this */
};

/* Binds listen ("ADDR:PORT", config_parse_listen), opens the reader and
 * starts the listener's thread. On success *out is set and addr holds the
 * bound address (the port chosen for port 0). Returns an enum engine_exit:
 * ENGINE_EXIT_OK, ENGINE_EXIT_OSERR (the address cannot be bound: in use,
 * not local; or the thread cannot start), ENGINE_EXIT_DB (the database
 * cannot be read); the message in err. */
int web_start(const struct web_source *src, const char *listen, struct web **out, char *addr,
	      size_t addrlen, char *err, size_t errlen);

/* Stops the listener (waits for its thread) and closes its reader.
 * NULL is a no-op. */
void web_stop(struct web *w);

/* The health decision: 1 when the scheduler loop turned (last_tick, a
 * steady stamp; 0 when never) within window_ms of now, else 0 with a
 * one-line reason in why. */
int web_healthy(int64_t now, int64_t last_tick, int64_t window_ms, char *why, size_t whylen);

/* The readiness decision: 1 when the database could be read (db_error
 * NULL) and definitions were loaded, else 0 with a one-line reason. */
int web_ready(const char *db_error, int defs_loaded, char *why, size_t whylen);

#endif
