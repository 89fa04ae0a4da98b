#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAX_DURATION_MS (INT64_C(366) * 24 * 3600 * 1000)

static const char usage_text[] =
	"usage: alert-exec [options]\n"
	"\n"
	"Evaluates the alerts of an alerts server on their intervals and calls its\n"
	"notify and resolve endpoints, keeping all state in a SQLite database.\n"
	"\n"
	"  --server URL           alerts server (default http://localhost:9001)\n"
	"  --db PATH              database file (default ./alert-exec.db)\n"
	"  --once                 evaluate what is due, deliver, exit (cron mode)\n"
	"  -c, --concurrency N    parallel evaluations (default 4)\n"
	"      --deliverers N     parallel deliveries (default 1: a crash can\n"
	"                         duplicate at most this many calls)\n"
	"  -i, --interval SECS    scheduler resolution: longest idle sleep (default 1)\n"
	"  -r, --retry N          immediate attempts per HTTP call (default 3)\n"
	"  -l, --log LEVEL        critical|error|warn|warning|info|debug (default info)\n"
	"      --refresh DUR      re-fetch definitions every DUR (default 60s)\n"
	"      --give-up-after DUR  a call not delivered after DUR is dead (default 24h)\n"
	"      --retention DUR    keep delivered calls and history DUR (default 7d)\n"
	"      --connect-timeout DUR  HTTP connect timeout (default 2s)\n"
	"      --timeout DUR      HTTP call timeout (default 5s)\n"
	"      --sync MODE        normal|full: SQLite synchronous mode (default normal)\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n"
	"\n"
	"DUR is a number of seconds, or a number with a unit: ms, s, m, h, d.\n"
	"Exit codes: 0 ok, 64 usage, 69 no alert definitions, 74 database error,\n"
	"75 work left queued (--once) or database in use by another engine.\n";

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->server = "http://localhost:9001";
	snprintf(cfg->server_redacted, sizeof(cfg->server_redacted), "%s", cfg->server);
	cfg->db_path = "./alert-exec.db";
	cfg->concurrency = 4;
	cfg->deliverers = 1;
	cfg->resolution_ms = 1000;
	cfg->attempts = 3;
	cfg->log_level = LOG_INFO;
	cfg->refresh_ms = 60 * 1000;
	cfg->give_up_ms = INT64_C(24) * 3600 * 1000;
	cfg->retention_ms = INT64_C(7) * 24 * 3600 * 1000;
	cfg->connect_timeout_ms = 2000;
	cfg->timeout_ms = 5000;
}

int config_parse_duration(const char *text, int64_t *ms)
{
	static const struct {
		const char *suffix;
		double ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
		     {"d", 86400000}};
	char *end = NULL;
	double v;

	if (!text || !*text || *text == '-' || *text == '+' || *text == ' ')
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || !isfinite(v) || v < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			double r = v * units[i].ms;

			if (r > (double)MAX_DURATION_MS)
				return -1;
			*ms = (int64_t)llround(r);
			return 0;
		}
	}
	return -1;
}

/* Parses a whole number in [lo, hi]. */
static int parse_int(const char *text, long lo, long hi, int *out)
{
	char *end = NULL;
	long v;

	if (!text || !*text)
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

enum {
	OPT_SERVER = 256,
	OPT_DB,
	OPT_ONCE,
	OPT_REFRESH,
	OPT_GIVE_UP,
	OPT_RETENTION,
	OPT_CONNECT_TIMEOUT,
	OPT_TIMEOUT,
	OPT_SYNC,
	OPT_DELIVERERS,
};

static int duration_opt(const char *name, const char *arg, int64_t lo, int64_t *out,
			char *err, size_t errlen)
{
	if (config_parse_duration(arg, out) != 0) {
		snprintf(err, errlen, "%s: '%s' is not a duration (seconds, or a number with "
			 "ms, s, m, h or d)", name, arg);
		return -1;
	}
	if (*out < lo) {
		snprintf(err, errlen, "%s: '%s' is below the minimum of %lld ms", name, arg,
			 (long long)lo);
		return -1;
	}
	return 0;
}

/* Takes url as --server when libcurl reads it as a whole http(s) URL. */
static int server_opt(struct config *cfg, const char *url, char *err, size_t errlen)
{
	char why[256];

	if (http_check_url(url, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "--server: %s", why);
		return -1;
	}
	cfg->server = url;
	http_redact_url(cfg->server_redacted, sizeof(cfg->server_redacted), url);
	return 0;
}

int config_parse(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, OPT_SERVER},
		{"db", required_argument, NULL, OPT_DB},
		{"once", no_argument, NULL, OPT_ONCE},
		{"concurrency", required_argument, NULL, 'c'},
		{"deliverers", required_argument, NULL, OPT_DELIVERERS},
		{"interval", required_argument, NULL, 'i'},
		{"retry", required_argument, NULL, 'r'},
		{"log", required_argument, NULL, 'l'},
		{"refresh", required_argument, NULL, OPT_REFRESH},
		{"give-up-after", required_argument, NULL, OPT_GIVE_UP},
		{"retention", required_argument, NULL, OPT_RETENTION},
		{"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"sync", required_argument, NULL, OPT_SYNC},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":c:i:r:l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_SERVER:
			if (server_opt(cfg, optarg, err, errlen) != 0)
				return CONFIG_USAGE;
			break;
		case OPT_DB:
			if (!*optarg) {
				snprintf(err, errlen, "--db: empty path");
				return CONFIG_USAGE;
			}
			cfg->db_path = optarg;
			break;
		case OPT_ONCE:
			cfg->once = 1;
			break;
		case 'c':
			if (parse_int(optarg, 1, 256, &cfg->concurrency) != 0) {
				snprintf(err, errlen, "-c/--concurrency: '%s' is not a whole number "
					 "from 1 to 256", optarg);
				return CONFIG_USAGE;
			}
			break;
		case OPT_DELIVERERS:
			if (parse_int(optarg, 1, 64, &cfg->deliverers) != 0) {
				snprintf(err, errlen, "--deliverers: '%s' is not a whole number "
					 "from 1 to 64", optarg);
				return CONFIG_USAGE;
			}
			break;
		case 'i':
			if (duration_opt("-i/--interval", optarg, 10, &cfg->resolution_ms, err,
					 errlen) != 0)
				return CONFIG_USAGE;
			break;
		case 'r':
			if (parse_int(optarg, 1, 100, &cfg->attempts) != 0) {
				snprintf(err, errlen, "-r/--retry: '%s' is not a whole number "
					 "from 1 to 100", optarg);
				return CONFIG_USAGE;
			}
			break;
		case 'l':
			if (log_parse_level(optarg, &cfg->log_level) != 0) {
				snprintf(err, errlen, "-l/--log: unknown level '%s' (critical, error, "
					 "warn, warning, info, debug)", optarg);
				return CONFIG_USAGE;
			}
			break;
		case OPT_REFRESH:
			if (duration_opt("--refresh", optarg, 1000, &cfg->refresh_ms, err,
					 errlen) != 0)
				return CONFIG_USAGE;
			break;
		case OPT_GIVE_UP:
			if (duration_opt("--give-up-after", optarg, 1000, &cfg->give_up_ms, err,
					 errlen) != 0)
				return CONFIG_USAGE;
			break;
		case OPT_RETENTION:
			if (duration_opt("--retention", optarg, 1000, &cfg->retention_ms, err,
					 errlen) != 0)
				return CONFIG_USAGE;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (duration_opt("--connect-timeout", optarg, 1, &cfg->connect_timeout_ms,
					 err, errlen) != 0)
				return CONFIG_USAGE;
			break;
		case OPT_TIMEOUT:
			if (duration_opt("--timeout", optarg, 1, &cfg->timeout_ms, err,
					 errlen) != 0)
				return CONFIG_USAGE;
			break;
		case OPT_SYNC:
			if (strcmp(optarg, "normal") == 0) {
				cfg->sync_full = 0;
			} else if (strcmp(optarg, "full") == 0) {
				cfg->sync_full = 1;
			} else {
				snprintf(err, errlen, "--sync: '%s' is not normal or full", optarg);
				return CONFIG_USAGE;
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			return CONFIG_EXIT;
		case 'V':
			printf("alert-exec %s\n", ALERT_EXEC_VERSION);
			return CONFIG_EXIT;
		case ':':
			snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
			return CONFIG_USAGE;
		default:
			if (optopt && optopt < 256)
				snprintf(err, errlen, "unknown option -%c (see --help)", optopt);
			else
				snprintf(err, errlen, "unknown option %s (see --help)",
					 argv[optind - 1]);
			return CONFIG_USAGE;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return CONFIG_USAGE;
	}
	if (cfg->connect_timeout_ms > cfg->timeout_ms)
		cfg->connect_timeout_ms = cfg->timeout_ms;
	return CONFIG_OK;
}
