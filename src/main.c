/*
 * alert-exec: options -> config -> run (daemon or --once), or a
 * subcommand (status, check).
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli_check.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "status.h"
#include "store.h"

/* Checks that the database's directory exists and is writable, so that
 * the error names the real problem rather than SQLite's "unable to open". */
static int check_db_dir(const char *path, char *err, size_t errlen)
{
	char copy[4096];
	struct stat sb;
	const char *dir;

	if (strlen(path) >= sizeof(copy)) {
		snprintf(err, errlen, "--db: path too long");
		return -1;
	}
	snprintf(copy, sizeof(copy), "%s", path);
	dir = dirname(copy);
	if (stat(dir, &sb) != 0) {
		snprintf(err, errlen, "--db %s: directory %s: %s", path, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "--db %s: %s is not a directory", path, dir);
		return -1;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(err, errlen, "--db %s: directory %s is not writable: %s", path, dir,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* `alert-exec check ...`: a one-shot client of the alerts server. */
static int run_check(int argc, char **argv)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "alert-exec: check: curl_global_init failed\n");
		return ENGINE_EXIT_OSERR;
	}
	rc = cli_check(argc, argv);
	curl_global_cleanup();
	return rc;
}

int main(int argc, char **argv)
{
	struct config cfg;
	char err[512];
	sigset_t signals;
	int rc;

	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return run_check(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return status_main(argc - 1, argv + 1);
	config_defaults(&cfg);
	rc = config_parse(&cfg, argc, argv, err, sizeof(err));
	if (rc == CONFIG_EXIT)
		return 0;
	if (rc != CONFIG_OK) {
		fprintf(stderr, "alert-exec: %s\n", err);
		return ENGINE_EXIT_USAGE;
	}
	log_set_level(cfg.log_level);
	log_set_format(cfg.log_format);
	/* A database this binary cannot reach at all is a usage error. */
	if (store_location_is_postgres(cfg.db_path) && !store_postgres_built()) {
		fprintf(stderr, "alert-exec: alert-exec was built without PostgreSQL support "
				"(libpq)\n");
		return ENGINE_EXIT_USAGE;
	}
	/* A PostgreSQL URI is no directory: the server says what is wrong. */
	if (!store_location_is_postgres(cfg.db_path) &&
	    check_db_dir(cfg.db_path, err, sizeof(err)) != 0) {
		log_msg(LOG_CRITICAL, "%s", err);
		return ENGINE_EXIT_DB;
	}
	/* Signals are taken synchronously by the main thread (sigtimedwait);
	 * every thread inherits this mask. A closed pipe is an error, not a
	 * death. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_msg(LOG_CRITICAL, "curl_global_init failed");
		return ENGINE_EXIT_OSERR;
	}
	rc = engine_run(&cfg);
	curl_global_cleanup();
	return rc;
}
