#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "http.h"

#define MAX_DURATION_MS (INT64_C(366) * 24 * 3600 * 1000)

static const char usage_text[] =
	"usage: alert-exec [options]\n"
	"       alert-exec check [--server URL]   validate the server's /alerts, exit\n"
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
	"      --log-format FORMAT  logfmt|json: lines of key=value or JSON objects\n"
	"                         (default logfmt)\n"
	"      --refresh DUR      re-fetch definitions every DUR (default 60s)\n"
	"      --give-up-after DUR  a call not delivered after DUR is dead (default 24h)\n"
	"      --retention DUR    keep delivered calls and history DUR (default 7d)\n"
	"      --connect-timeout DUR  HTTP connect timeout (default 2s)\n"
	"      --timeout DUR      HTTP call timeout (default 5s)\n"
	"      --sync MODE        normal|full: SQLite synchronous mode (default normal)\n"
	"      --listen ADDR:PORT HTTP listener: status page, /metrics, /-/healthy,\n"
	"                         /-/ready (default 127.0.0.1:9097; off: none)\n"
	"      --engine-id ID     this engine's name in logs and the database\n"
	"                         (default host:pid)\n"
	"      --lease DUR        PostgreSQL: lease of the shards an engine holds\n"
	"                         (default 15s, at least 3s; SQLite ignores it)\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n"
	"\n"
	"DUR is a number of seconds, or a number with a unit: ms, s, m, h, d.\n"
	"Exit codes: 0 ok, 64 usage, 69 no alert definitions, 71 --listen cannot be\n"
	"bound, 74 database error, 75 work left queued (--once) or database in use\n"
	"by another engine.\n"
	"\n"
	"alert-exec status [--db PATH] [--json] prints the alerts of a database.\n";

static int parse_int(const char *text, long lo, long hi, int *out);

/* host:pid, the host name cut to fit. */
static void default_engine_id(char *out, size_t outlen)
{
	char host[256] = "localhost";

	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(out, outlen, "%.100s:%ld", host, (long)getpid());
}

/* Takes id as --engine-id: printable ASCII, not empty, at most
 * CONFIG_ENGINE_ID_MAX bytes (it goes into logs, a User-Agent header and
 * the database as it is). */
static int engine_id_opt(struct config *cfg, const char *id, char *err, size_t errlen)
{
	size_t n = strlen(id);

	if (n == 0 || n > CONFIG_ENGINE_ID_MAX) {
		snprintf(err, errlen, "--engine-id: must be 1 to %d bytes", CONFIG_ENGINE_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (id[i] < 0x21 || id[i] > 0x7e) {
			snprintf(err, errlen,
				 "--engine-id: only printable ASCII without spaces is allowed");
			return -1;
		}
	}
	memcpy(cfg->engine_id, id, n + 1);
	return 0;
}

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
	cfg->log_format = LOG_FORMAT_LOGFMT;
	cfg->refresh_ms = 60 * 1000;
	cfg->give_up_ms = INT64_C(24) * 3600 * 1000;
	cfg->retention_ms = INT64_C(7) * 24 * 3600 * 1000;
	cfg->connect_timeout_ms = 2000;
	cfg->timeout_ms = 5000;
	cfg->lease_ms = 15000;
	default_engine_id(cfg->engine_id, sizeof(cfg->engine_id));
	cfg->listen = "127.0.0.1:9097";
}

int config_parse_listen(const char *text, struct sockaddr_storage *sa, socklen_t *len)
{
	char host[64];
	const char *colon = text ? strrchr(text, ':') : NULL;
	size_t hostlen;
	int port;

	if (colon == NULL || !isdigit((unsigned char)colon[1]) ||
	    parse_int(colon + 1, 0, 65535, &port) != 0)
		return -1;
	hostlen = (size_t)(colon - text);
	if (hostlen >= sizeof(host))
		return -1;
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	memset(sa, 0, sizeof(*sa));
	if (hostlen > 2 && host[0] == '[' && host[hostlen - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		host[hostlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	}
	return 0;
}

int config_parse_duration(const char *text, int64_t *ms)
{
	static const struct {
		const char *suffix;
		double ms;
	} units[] = {{"", 1000},   {"ms", 1},      {"s", 1000},
		     {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
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
	OPT_LOG_FORMAT,
	OPT_LISTEN,
	OPT_ENGINE_ID,
	OPT_LEASE,
};

static int duration_opt(const char *name, const char *arg, int64_t lo, int64_t *out, char *err,
			size_t errlen)
{
	if (config_parse_duration(arg, out) != 0) {
		snprintf(err, errlen,
			 "%s: '%s' is not a duration (seconds, or a number with "
			 "ms, s, m, h or d)",
			 name, arg);
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

/* The options that take a duration, and their minimum. */
static const struct duration_option {
	int opt;
	const char *name;
	int64_t min_ms;
	size_t field; /* offsetof(struct config, ...) */
} duration_options[] = {
	{'i', "-i/--interval", 10, offsetof(struct config, resolution_ms)},
	{OPT_REFRESH, "--refresh", 1000, offsetof(struct config, refresh_ms)},
	{OPT_GIVE_UP, "--give-up-after", 1000, offsetof(struct config, give_up_ms)},
	{OPT_RETENTION, "--retention", 1000, offsetof(struct config, retention_ms)},
	{OPT_CONNECT_TIMEOUT, "--connect-timeout", 1, offsetof(struct config, connect_timeout_ms)},
	{OPT_TIMEOUT, "--timeout", 1, offsetof(struct config, timeout_ms)},
	{OPT_LEASE, "--lease", 3000, offsetof(struct config, lease_ms)},
};

/* The options that take a whole number, and its range. */
static const struct int_option {
	int opt;
	const char *name;
	long lo, hi;
	size_t field;
} int_options[] = {
	{'c', "-c/--concurrency", 1, 256, offsetof(struct config, concurrency)},
	{OPT_DELIVERERS, "--deliverers", 1, 64, offsetof(struct config, deliverers)},
	{'r', "-r/--retry", 1, 100, offsetof(struct config, attempts)},
};

/* Takes the value of a duration or whole-number option; 1 when opt is
 * neither, 0 when taken, -1 when the value is bad (message in err). */
static int table_opt(struct config *cfg, int opt, const char *arg, char *err, size_t errlen)
{
	char *base = (char *)cfg;

	for (size_t i = 0; i < sizeof(duration_options) / sizeof(duration_options[0]); i++) {
		const struct duration_option *d = &duration_options[i];

		if (d->opt == opt)
			return duration_opt(d->name, arg, d->min_ms, (int64_t *)(base + d->field),
					    err, errlen);
	}
	for (size_t i = 0; i < sizeof(int_options) / sizeof(int_options[0]); i++) {
		const struct int_option *o = &int_options[i];

		if (o->opt != opt)
			continue;
		if (parse_int(arg, o->lo, o->hi, (int *)(base + o->field)) == 0)
			return 0;
		snprintf(err, errlen, "%s: '%s' is not a whole number from %ld to %ld", o->name,
			 arg, o->lo, o->hi);
		return -1;
	}
	return 1;
}

/* --listen: an address, or off. */
static int listen_opt(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t len;

	if (strcmp(arg, "off") == 0) {
		cfg->listen = NULL;
		return CONFIG_OK;
	}
	if (config_parse_listen(arg, &sa, &len) != 0) {
		snprintf(err, errlen,
			 "--listen: '%s' is not ADDR:PORT (a numeric IPv4 address or an IPv6 "
			 "one in brackets, a port from 0 to 65535) or off",
			 arg);
		return CONFIG_USAGE;
	}
	cfg->listen = arg;
	return CONFIG_OK;
}

/* The other options with a value or none. An enum config_result. */
static int other_opt(struct config *cfg, int opt, const char *arg, char *err, size_t errlen)
{
	switch (opt) {
	case OPT_SERVER:
		return server_opt(cfg, arg, err, errlen) == 0 ? CONFIG_OK : CONFIG_USAGE;
	case OPT_DB:
		if (!*arg) {
			snprintf(err, errlen, "--db: empty path");
			return CONFIG_USAGE;
		}
		cfg->db_path = arg;
		return CONFIG_OK;
	case OPT_ONCE:
		cfg->once = 1;
		return CONFIG_OK;
	case OPT_ENGINE_ID:
		return engine_id_opt(cfg, arg, err, errlen) == 0 ? CONFIG_OK : CONFIG_USAGE;
	case 'l':
		if (log_parse_level(arg, &cfg->log_level) == 0)
			return CONFIG_OK;
		snprintf(err, errlen,
			 "-l/--log: unknown level '%s' (critical, error, warn, "
			 "warning, info, debug)",
			 arg);
		return CONFIG_USAGE;
	case OPT_LOG_FORMAT:
		if (log_parse_format(arg, &cfg->log_format) == 0)
			return CONFIG_OK;
		snprintf(err, errlen, "--log-format: '%s' is not logfmt or json", arg);
		return CONFIG_USAGE;
	case OPT_SYNC:
		if (strcmp(arg, "normal") != 0 && strcmp(arg, "full") != 0) {
			snprintf(err, errlen, "--sync: '%s' is not normal or full", arg);
			return CONFIG_USAGE;
		}
		cfg->sync_full = strcmp(arg, "full") == 0;
		return CONFIG_OK;
	case OPT_LISTEN:
		return listen_opt(cfg, arg, err, errlen);
	case 'h':
		fputs(usage_text, stdout);
		return CONFIG_EXIT;
	case 'V':
		printf("alert-exec %s\n", ALERT_EXEC_VERSION);
		return CONFIG_EXIT;
	}
	return CONFIG_USAGE;
}

/* The message of an option getopt did not take. */
static void bad_opt(int c, char **argv, char *err, size_t errlen)
{
	if (c == ':')
		snprintf(err, errlen, "%s: needs a value", argv[optind - 1]);
	else if (optopt && optopt < 256)
		snprintf(err, errlen, "unknown option -%c (see --help)", optopt);
	else
		snprintf(err, errlen, "unknown option %s (see --help)", argv[optind - 1]);
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
		{"log-format", required_argument, NULL, OPT_LOG_FORMAT},
		{"refresh", required_argument, NULL, OPT_REFRESH},
		{"give-up-after", required_argument, NULL, OPT_GIVE_UP},
		{"retention", required_argument, NULL, OPT_RETENTION},
		{"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"sync", required_argument, NULL, OPT_SYNC},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"engine-id", required_argument, NULL, OPT_ENGINE_ID},
		{"lease", required_argument, NULL, OPT_LEASE},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":c:i:r:l:hV", longopts, NULL)) != -1) {
		int rc;

		if (c == ':' || c == '?') {
			bad_opt(c, argv, err, errlen);
			return CONFIG_USAGE;
		}
		rc = table_opt(cfg, c, optarg, err, errlen);
		if (rc < 0)
			return CONFIG_USAGE;
		if (rc > 0)
			rc = other_opt(cfg, c, optarg, err, errlen);
		if (rc != CONFIG_OK)
			return rc;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return CONFIG_USAGE;
	}
	if (cfg->connect_timeout_ms > cfg->timeout_ms)
		cfg->connect_timeout_ms = cfg->timeout_ms;
	return CONFIG_OK;
}
