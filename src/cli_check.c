#include "cli_check.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "alerts.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "log.h"

static const char check_usage[] =
	"usage: alert-exec check [--server URL]\n"
	"\n"
	"Fetches /alerts from the alerts server and validates every entry as the\n"
	"engine does; prints each problem, then a summary line.\n"
	"\n"
	"  --server URL           alerts server (default http://localhost:9001)\n"
	"  -h, --help             this text\n"
	"\n"
	"Exit codes: 0 every entry is valid, 65 some are not, 69 the server cannot\n"
	"be reached or does not answer with a JSON array, 64 usage.\n";

/* What the problems of one /alerts body add up to. */
struct check_tally {
	size_t invalid;
	size_t clamped;
};

static void print_problem(const struct alerts_problem *problem, void *arg)
{
	struct check_tally *t = arg;
	char quoted[ALERTS_MAX_NAME * 4 + 8];

	if (problem->skipped)
		t->invalid++;
	else
		t->clamped++;
	/* The name comes from the server: quoted and escaped as in the log,
	 * so that it cannot split the line or reach the terminal raw. */
	if (problem->name != NULL)
		printf("entry %zu (%s): %s: %s\n", problem->index,
		       log_quote(quoted, sizeof(quoted), problem->name),
		       problem->skipped ? "invalid" : "warning", problem->why);
	else
		printf("entry %zu: %s: %s\n", problem->index,
		       problem->skipped ? "invalid" : "warning", problem->why);
}

/* Reads the options of check into *cfg (its defaults set); an enum
 * config_result with the message in err. */
static int check_options(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{"server", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char why[256];
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(check_usage, stdout);
			return CONFIG_EXIT;
		}
		if (c != 's') {
			snprintf(err, errlen, "check: %s: %s", argv[optind - 1],
				 c == ':' ? "needs a value" : "unknown option (see check --help)");
			return CONFIG_USAGE;
		}
		if (http_check_url(optarg, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "check: --server: %s", why);
			return CONFIG_USAGE;
		}
		cfg->server = optarg;
		http_redact_url(cfg->server_redacted, sizeof(cfg->server_redacted), optarg);
	}
	if (optind < argc) {
		snprintf(err, errlen, "check: unexpected argument '%s' (see check --help)",
			 argv[optind]);
		return CONFIG_USAGE;
	}
	return CONFIG_OK;
}

int cli_check(int argc, char **argv)
{
	struct config cfg;
	struct http_opts opts;
	struct http *client = NULL;
	struct alert_def *defs = NULL;
	struct check_tally tally = {0};
	char err[1024];
	size_t n = 0;
	int rc;

	config_defaults(&cfg);
	rc = check_options(&cfg, argc, argv, err, sizeof(err));
	if (rc != CONFIG_OK) {
		if (rc == CONFIG_USAGE)
			fprintf(stderr, "alert-exec: %s\n", err);
		return rc == CONFIG_EXIT ? ENGINE_EXIT_OK : ENGINE_EXIT_USAGE;
	}
	/* The engine's client with the engine's default timeouts and
	 * attempts: what check sees is what a starting engine would see. */
	opts = (struct http_opts){
		.base_url = cfg.server,
		.connect_timeout_ms = (long)cfg.connect_timeout_ms,
		.timeout_ms = (long)cfg.timeout_ms,
		.attempts = cfg.attempts,
	};
	client = http_new(&opts, err, sizeof(err));
	if (client == NULL) {
		fprintf(stderr, "alert-exec: check: %s\n", err);
		return ENGINE_EXIT_OSERR;
	}
	rc = http_fetch_alerts_report(client, print_problem, &tally, &defs, &n, err, sizeof(err));
	if (rc != HTTP_OK) {
		fprintf(stderr, "alert-exec: check: %s: %s\n", cfg.server_redacted, err);
		rc = rc == HTTP_ERR_INTERNAL ? ENGINE_EXIT_OSERR : ENGINE_EXIT_NO_ALERTS;
		goto out;
	}
	printf("entries=%zu valid=%zu invalid=%zu clamped=%zu server=%s\n", n + tally.invalid, n,
	       tally.invalid, tally.clamped, cfg.server_redacted);
	rc = tally.invalid > 0 ? ENGINE_EXIT_DATAERR : ENGINE_EXIT_OK;
out:
	fflush(stdout);
	alert_defs_free(defs, n);
	http_free(client);
	return rc;
}
