#ifndef ALERT_EXEC_CONFIG_H
#define ALERT_EXEC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "log.h"

/*
 * Options, their defaults and their validation. A struct config is filled
 * once by config_parse() and read-only afterwards.
 */

/* Room for the server URL as logs show it (longer ones are cut). */
#define CONFIG_SERVER_REDACTED_MAX 512
/* Longest --engine-id, in bytes. */
#define CONFIG_ENGINE_ID_MAX 128

struct config {
	const char *server; /* --server, base URL: checked by http_check_url */
	/* server as every log line and message shows it: its userinfo (a
	 * password) hidden by http_redact_url. */
	char server_redacted[CONFIG_SERVER_REDACTED_MAX];
	const char *db_path;        /* --db */
	int once;                   /* --once: cron mode */
	int concurrency;            /* -c: parallel evaluations */
	int deliverers;             /* --deliverers: parallel deliveries */
	int64_t resolution_ms;      /* -i: longest sleep of the scheduler */
	int attempts;               /* -r: immediate attempts per HTTP call */
	enum log_level log_level;   /* -l */
	enum log_format log_format; /* --log-format */
	int64_t refresh_ms;         /* --refresh: re-fetch definitions */
	int64_t give_up_ms;         /* --give-up-after: a call older is dead */
	int64_t retention_ms;       /* --retention: keep delivered rows and history */
	int64_t connect_timeout_ms; /* --connect-timeout */
	int64_t timeout_ms;         /* --timeout: whole HTTP call */
	int sync_full;              /* --sync full */
	const char *listen;         /* --listen ADDR:PORT; NULL: off */
	/* --engine-id: who this engine is in logs, its User-Agent and the
	 * database's engine and shard tables (default host:pid). */
	char engine_id[CONFIG_ENGINE_ID_MAX + 1];
	int64_t lease_ms; /* --lease: of the shards (PostgreSQL) */
};

enum config_result {
	CONFIG_OK = 0,     /* run */
	CONFIG_EXIT = 1,   /* --help or --version was printed: exit 0 */
	CONFIG_USAGE = -1, /* bad command line: message in err, exit 64 */
};

/* Fills *cfg with the defaults. */
void config_defaults(struct config *cfg);

/* Parses argv into *cfg (after config_defaults). --help and --version
 * print to stdout. Returns an enum config_result; on CONFIG_USAGE err
 * holds one line naming the option and what is wrong with its value.
 * Touches no file: a bad --server is found here, before the database is
 * created. */
int config_parse(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Parses a duration: a number with an optional unit ms, s, m, h or d
 * (seconds without one), e.g. "1.5", "250ms", "24h". Returns 0 with
 * *ms set, or -1 when malformed, negative or too large. */
int config_parse_duration(const char *text, int64_t *ms);

/* Parses a --listen address: a numeric IPv4 address or an IPv6 one in
 * brackets, a colon and a port from 0 (any free one) to 65535, e.g.
 * "127.0.0.1:9097", "[::1]:0". 0 with *sa and *len set, -1 when malformed. */
int config_parse_listen(const char *text, struct sockaddr_storage *sa, socklen_t *len);

#endif
