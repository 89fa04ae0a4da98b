/* alerts-emulator: an emulator of the alerts server for tests, demos and
 * benchmarks. main wires the modules together: options -> alerts, values,
 * journals, validator -> server, then waits for SIGTERM/SIGINT while
 * ticking the validator and flushing the query log once per second. */
#include "alerts.h"
#include "buf.h"
#include "file.h"
#include "journal.h"
#include "options.h"
#include "server.h"
#include "stats.h"
#include "timebase.h"
#include "timeline.h"
#include "validator.h"
#include "values.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define EXIT_VALIDATION 1
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_NOINPUT 66
#define EX_SOFTWARE 70
#define EX_OSERR 71
#define EX_CANTCREAT 73
#define SUMMARY_EVERY_MS (5 * 60 * 1000)

static int load_exit(int rc)
{
	return rc == FILE_ERR_READ ? EX_NOINPUT : EX_DATAERR;
}

/* Lets the server use many connections: raise the descriptor limit to the
 * hard limit. Failure is harmless. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Blocks SIGTERM and SIGINT in this thread and every thread it starts
 * later, so main can wait for them with sigtimedwait; ignores SIGPIPE. */
static void block_signals(sigset_t *set)
{
	struct sigaction sa;

	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Waits for SIGTERM/SIGINT; once per second flushes the query log and
 * checks validator deadlines, every five minutes prints the summary.
 * Deadlines are checked up to a second (plus the injected latency) ago: a
 * call that arrived in time may still be on its way into the validator. */
static void run(const sigset_t *set, const struct timebase *tb,
		long latency_ms, struct journal *query_log,
		struct validator *validator)
{
	int64_t next_summary = SUMMARY_EVERY_MS;

	for (;;) {
		struct timespec second = { 1, 0 };
		int sig = sigtimedwait(set, NULL, &second);
		int64_t now;

		if (sig == SIGTERM || sig == SIGINT)
			return;
		if (sig < 0 && errno != EAGAIN && errno != EINTR) {
			perror("alerts-emulator: sigtimedwait");
			return;
		}
		journal_flush(query_log);
		if (validator == NULL)
			continue;
		now = timebase_ms(tb);
		validator_tick(validator, now - latency_ms - 1000);
		if (now >= next_summary) {
			validator_summary(validator, now);
			next_summary += SUMMARY_EVERY_MS;
		}
	}
}

int main(int argc, char **argv)
{
	struct options opt;
	struct alerts *alerts = NULL;
	struct timeline *timeline = NULL;
	struct journal *record = NULL;
	struct journal *query_log = NULL;
	struct journal *request_log = NULL;
	struct validator *validator = NULL;
	struct stats *stats = NULL;
	struct server *server = NULL;
	struct server_config cfg;
	struct values values;
	struct timebase tb;
	struct buf warnings;
	sigset_t set;
	char err[512];
	size_t i;
	int rc;
	int status = EX_SOFTWARE;

	/* Before anything slow (100000 alerts): a SIGTERM during start-up
	 * then waits for run() and ends in a clean exit. */
	block_signals(&set);
	buf_init(&warnings);
	if (options_parse(&opt, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "alerts-emulator: %s (try --help)\n", err);
		status = EX_USAGE;
		goto out;
	}
	if (opt.help) {
		options_usage(stdout);
		status = 0;
		goto out;
	}
	if (opt.alerts_path != NULL)
		rc = alerts_load(&alerts, opt.alerts_path, &warnings, err,
				 sizeof(err));
	else
		rc = alerts_profile(&alerts, opt.profile, opt.count, err,
				    sizeof(err));
	if (warnings.len > 0)
		fputs(warnings.data, stderr);
	if (rc != 0) {
		fprintf(stderr, "alerts-emulator: %s\n", err);
		status = load_exit(rc);
		goto out;
	}
	if (opt.timeline_path != NULL) {
		rc = timeline_load(&timeline, opt.timeline_path, opt.cycle, err,
				   sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "alerts-emulator: %s\n", err);
			status = load_exit(rc);
			goto out;
		}
	}
	if ((opt.record_path != NULL &&
	     journal_open(&record, opt.record_path, 1, err, sizeof(err)) != 0) ||
	    (opt.query_log_path != NULL &&
	     journal_open(&query_log, opt.query_log_path, 0, err,
			  sizeof(err)) != 0) ||
	    (opt.request_log_path != NULL &&
	     journal_open(&request_log, opt.request_log_path, 1, err,
			  sizeof(err)) != 0)) {
		fprintf(stderr, "alerts-emulator: %s\n", err);
		status = EX_CANTCREAT;
		goto out;
	}
	stats = malloc(sizeof(*stats));
	if (opt.validate)
		validator = validator_new(alerts, stderr);
	if (stats == NULL || (opt.validate && validator == NULL)) {
		fprintf(stderr, "alerts-emulator: out of memory\n");
		goto out;
	}
	for (i = 0; validator != NULL && i < opt.faults.down_count; i++)
		validator_outage(validator,
				 (int64_t)(opt.faults.down_from[i] * 1000),
				 (int64_t)(opt.faults.down_to[i] * 1000));
	stats_init(stats);
	raise_fd_limit();

	values.alerts = alerts;
	values.timeline = timeline;
	values.seed = opt.seed;
	memset(&cfg, 0, sizeof(cfg));
	cfg.port = (unsigned)opt.port;
	cfg.threads = (unsigned)opt.threads;
	cfg.alerts = alerts;
	cfg.values = &values;
	cfg.faults = &opt.faults;
	cfg.stats = stats;
	cfg.record = record;
	cfg.query_log = query_log;
	cfg.request_log = request_log;
	cfg.validator = validator;
	cfg.time = &tb;
	timebase_init(&tb);
	if (server_start(&server, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "alerts-emulator: %s\n", err);
		status = EX_OSERR;
		goto out;
	}
	printf("listening on 127.0.0.1:%u\n", server_port(server));
	fflush(stdout);

	run(&set, &tb, faults_max_latency_ms(&opt.faults), query_log, validator);

	server_stop(server);
	server = NULL;
	status = 0;
	if (validator != NULL) {
		int64_t now = timebase_ms(&tb);

		validator_tick(validator, now);
		validator_summary(validator, now);
		if (validator_errors(validator) > 0)
			status = EXIT_VALIDATION;
	}
out:
	server_stop(server);
	if (journal_close(record) != 0 || journal_close(query_log) != 0 ||
	    journal_close(request_log) != 0) {
		fprintf(stderr, "alerts-emulator: closing an output file failed\n");
		if (status == 0)
			status = EX_CANTCREAT;
	}
	validator_free(validator);
	free(stats);
	timeline_free(timeline);
	alerts_free(alerts);
	buf_free(&warnings);
	return status;
}
