#ifndef ALERT_EXEC_CLI_CHECK_H
#define ALERT_EXEC_CLI_CHECK_H

/*
 * `alert-exec check [--server URL]`: fetches /alerts with the engine's
 * client and timeouts, validates every entry with the engine's parser
 * (alerts.h), and prints each problem on stdout, one line each, naming the
 * entry's index and, when usable, its name, then one summary line:
 *
 *   entry 2 (alert-3): invalid: intervalSecs is not a positive integer (0)
 *   entry 4 (alert-5): warning: sustainSecs 2.14748e+09 is over 31622400, using 31622400
 *   entries=5 valid=4 invalid=1 clamped=1 server=http://localhost:9001
 *
 * Like amtool check-config or vmalert -dryRun: nothing is stored.
 */

/* Runs the subcommand; argv[0] is "check". Returns the exit status: 0
 * when every entry is valid (a clamped value is a warning, the entry is
 * kept), 65 when some are not, 69 when the server cannot be reached or
 * its answer is not a readable /alerts (not 2xx, not a JSON array), 64 on
 * a bad command line, 71 when the client cannot start. Expects
 * curl_global_init to have been called. */
int cli_check(int argc, char **argv);

#endif
