#ifndef ALERT_EXEC_ENGINE_H
#define ALERT_EXEC_ENGINE_H

#include "config.h"

/*
 * The engine: loads definitions, runs the evaluation and delivery workers,
 * and stops them. Each worker thread owns its own SQLite connection and
 * curl handle; write transactions are serialised by one mutex so that no
 * thread waits in SQLite's busy handler.
 */

/* Exit statuses (sysexits.h values). */
enum engine_exit {
	ENGINE_EXIT_OK = 0,
	ENGINE_EXIT_USAGE = 64,
	ENGINE_EXIT_NO_ALERTS = 69,
	ENGINE_EXIT_DB = 74,
	ENGINE_EXIT_TEMPFAIL = 75,
};

/* Runs alert-exec with cfg until it is done (--once) or SIGTERM/SIGINT
 * (daemon). Expects SIGTERM, SIGINT and SIGHUP to be blocked in the
 * calling thread (and so in every thread it starts); it waits for them
 * with sigtimedwait. curl_global_init must have been called. Returns an
 * enum engine_exit; errors are logged. */
int engine_run(const struct config *cfg);

#endif
