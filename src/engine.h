#ifndef ALERT_EXEC_ENGINE_H
#define ALERT_EXEC_ENGINE_H

#include "config.h"

/*
 * The engine: loads definitions, runs the evaluation scheduler, the query
 * thread and the delivery workers (engine_core.h says who owns what), and
 * stops them.
 */

/* Every exit status of the program (sysexits.h values): what each
 * failure maps to is decided here and nowhere else. */
enum engine_exit {
	ENGINE_EXIT_OK = 0,
	ENGINE_EXIT_USAGE = 64,
	ENGINE_EXIT_DATAERR = 65,   /* check: the server sends invalid definitions */
	ENGINE_EXIT_NO_ALERTS = 69, /* also check: the server gave no readable /alerts */
	ENGINE_EXIT_OSERR = 71,     /* out of memory, a thread or a library that cannot start */
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
