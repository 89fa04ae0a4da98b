#include "options.h"

#include "buf.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void options_usage(FILE *out)
{
	fputs(
"usage: alerts-emulator [options]\n"
"An emulator of the alerts server (GET /alerts, GET /query?target=Q,\n"
"POST /notify, POST /resolve, GET /stats) on 127.0.0.1.\n"
"\n"
"  --port N              port to listen on (default 9001; 0 picks a free one);\n"
"                        the first stdout line is 'listening on 127.0.0.1:PORT'\n"
"  --profile v2|latest   generated alerts alert-1..alert-N (default v2)\n"
"  --count N             number of generated alerts (default 10)\n"
"  --alerts FILE         serve this JSON array as given instead of a profile\n"
"  --seed N              seed of the default value cycle and of faults (default 1)\n"
"  --timeline FILE       scripted values {\"target\": [[seconds, value], ...]}\n"
"  --cycle SECS          repeat the timeline every SECS seconds\n"
"  --fail-rate R         probability in [0,1] of HTTP 500 on every endpoint\n"
"  --fail-rate-alerts R, --fail-rate-query R, --fail-rate-notify R,\n"
"  --fail-rate-resolve R per-endpoint rates, overriding --fail-rate\n"
"  --reject-rate-notify R, --reject-rate-resolve R\n"
"                        probability in [0,1] of HTTP 400 for a well-formed\n"
"                        notify/resolve (the server rejects the call)\n"
"  --latency-ms N        wait N ms before answering\n"
"  --query-latency-ms N  wait N ms before answering a /query instead\n"
"  --down FROM:TO        answer 503 from FROM to TO seconds after start\n"
"                        (repeatable)\n"
"  --record FILE         append one JSON line per accepted notify/resolve\n"
"  --query-log FILE      append one JSON line per /query answered 200\n"
"  --request-log FILE    append one JSON line per answered request (all but\n"
"                        /stats) as it is answered: time, endpoint, status,\n"
"                        the target of a /query, the alertName of a call\n"
"  --validate            check notify/resolve calls against served values;\n"
"                        exit 1 if any ERROR was reported\n"
"  --threads N           server threads without latency (default 2)\n"
"  --help                show this help\n"
"\n"
"Exit status: 0 ok, 1 validation errors, 64 usage, 65 bad file content,\n"
"66 cannot read file, 71 cannot listen, 73 cannot open output file.\n",
	      out);
}

static int parse_long(const char *flag, const char *text, long min, long max,
		      long *out, char *err, size_t errlen)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (end == text || *end != '\0' || errno != 0 || v < min || v > max) {
		fmt_err(err, errlen, "bad %s \"%s\": expected an integer in "
			"%ld..%ld", flag, text, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seed(const char *text, uint64_t *out, char *err,
		      size_t errlen)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (end == text || *end != '\0' || errno != 0 || text[0] == '-') {
		fmt_err(err, errlen, "bad --seed \"%s\": expected a non-negative "
			"integer", text);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

static int parse_secs(const char *flag, const char *text, double *out,
		      char *err, size_t errlen)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v <= 0) {
		fmt_err(err, errlen, "bad %s \"%s\": expected a positive number "
			"of seconds", flag, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* Every flag but the rate flags below; whether it takes a value. */
static const struct {
	const char *flag;
	int takes_value;
} plain_flags[] = {
	{ "--help", 0 }, { "--validate", 0 }, { "--port", 1 },
	{ "--profile", 1 }, { "--count", 1 }, { "--alerts", 1 },
	{ "--timeline", 1 }, { "--cycle", 1 }, { "--seed", 1 },
	{ "--latency-ms", 1 }, { "--query-latency-ms", 1 }, { "--down", 1 }, { "--record", 1 },
	{ "--query-log", 1 }, { "--request-log", 1 }, { "--threads", 1 },
};

static const struct {
	const char *flag;
	int endpoint; /* -1: every endpoint */
} rate_flags[] = {
	{ "--fail-rate", -1 },
	{ "--fail-rate-alerts", EP_ALERTS },
	{ "--fail-rate-query", EP_QUERY },
	{ "--fail-rate-notify", EP_NOTIFY },
	{ "--fail-rate-resolve", EP_RESOLVE },
};

static const struct {
	const char *flag;
	int endpoint;
} reject_flags[] = {
	{ "--reject-rate-notify", EP_NOTIFY },
	{ "--reject-rate-resolve", EP_RESOLVE },
};

int options_parse(struct options *o, int argc, char **argv, char *err,
		  size_t errlen)
{
	double rate[EP_COUNT];
	double global_rate = 0;
	int have_profile = 0;
	int have_count = 0;
	int i;
	size_t k;

	memset(o, 0, sizeof(*o));
	o->port = 9001;
	o->profile = "v2";
	o->count = 10;
	o->seed = 1;
	o->threads = 2;
	faults_init(&o->faults, 1);
	for (k = 0; k < EP_COUNT; k++)
		rate[k] = -1;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *eq = strchr(arg, '=');
		char flag[64];
		const char *val = NULL;
		size_t n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		int takes_value;

		if (strncmp(arg, "--", 2) != 0 || n >= sizeof(flag)) {
			if (strcmp(arg, "-h") == 0) {
				o->help = 1;
				continue;
			}
			fmt_err(err, errlen, "unexpected argument \"%s\"", arg);
			return -1;
		}
		memcpy(flag, arg, n);
		flag[n] = '\0';
		takes_value = -1;
		for (k = 0; k < sizeof(plain_flags) / sizeof(plain_flags[0]);
		     k++) {
			if (strcmp(flag, plain_flags[k].flag) == 0)
				takes_value = plain_flags[k].takes_value;
		}
		for (k = 0; k < sizeof(rate_flags) / sizeof(rate_flags[0]);
		     k++) {
			if (strcmp(flag, rate_flags[k].flag) == 0)
				takes_value = 1;
		}
		for (k = 0; k < sizeof(reject_flags) / sizeof(reject_flags[0]);
		     k++) {
			if (strcmp(flag, reject_flags[k].flag) == 0)
				takes_value = 1;
		}
		if (takes_value < 0) {
			fmt_err(err, errlen, "unknown option %s", flag);
			return -1;
		}
		if (takes_value) {
			if (eq != NULL) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				fmt_err(err, errlen, "%s needs a value", flag);
				return -1;
			}
		} else if (eq != NULL) {
			fmt_err(err, errlen, "%s takes no value", flag);
			return -1;
		}

		if (strcmp(flag, "--help") == 0) {
			o->help = 1;
		} else if (strcmp(flag, "--validate") == 0) {
			o->validate = 1;
		} else if (strcmp(flag, "--port") == 0) {
			if (parse_long(flag, val, 0, 65535, &o->port, err,
				       errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--profile") == 0) {
			if (strcmp(val, "v2") != 0 && strcmp(val, "latest") != 0) {
				fmt_err(err, errlen, "bad --profile \"%s\": "
					"expected v2 or latest", val);
				return -1;
			}
			o->profile = val;
			have_profile = 1;
		} else if (strcmp(flag, "--count") == 0) {
			if (parse_long(flag, val, 1, 1000000, &o->count, err,
				       errlen) != 0)
				return -1;
			have_count = 1;
		} else if (strcmp(flag, "--alerts") == 0) {
			o->alerts_path = val;
		} else if (strcmp(flag, "--timeline") == 0) {
			o->timeline_path = val;
		} else if (strcmp(flag, "--cycle") == 0) {
			if (parse_secs(flag, val, &o->cycle, err, errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--seed") == 0) {
			if (parse_seed(val, &o->seed, err, errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--latency-ms") == 0) {
			if (parse_long(flag, val, 0, 600000,
				       &o->faults.latency_ms, err, errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--query-latency-ms") == 0) {
			if (parse_long(flag, val, 0, 600000,
				       &o->faults.query_latency_ms, err,
				       errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--down") == 0) {
			if (faults_add_down(&o->faults, val, err, errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--record") == 0) {
			o->record_path = val;
		} else if (strcmp(flag, "--query-log") == 0) {
			o->query_log_path = val;
		} else if (strcmp(flag, "--request-log") == 0) {
			o->request_log_path = val;
		} else if (strncmp(flag, "--reject-rate-", 14) == 0) {
			for (k = 0; k < sizeof(reject_flags) /
					    sizeof(reject_flags[0]);
			     k++) {
				if (strcmp(flag, reject_flags[k].flag) == 0)
					break;
			}
			if (faults_parse_rate(
				    val,
				    &o->faults.reject_rate[reject_flags[k].endpoint],
				    err, errlen) != 0)
				return -1;
		} else if (strcmp(flag, "--threads") == 0) {
			if (parse_long(flag, val, 1, 64, &o->threads, err,
				       errlen) != 0)
				return -1;
		} else {
			for (k = 0; k < sizeof(rate_flags) / sizeof(rate_flags[0]);
			     k++) {
				if (strcmp(flag, rate_flags[k].flag) == 0)
					break;
			}
			if (k == sizeof(rate_flags) / sizeof(rate_flags[0])) {
				fmt_err(err, errlen, "unknown option %s", flag);
				return -1;
			}
			if (rate_flags[k].endpoint < 0) {
				if (faults_parse_rate(val, &global_rate, err,
						      errlen) != 0)
					return -1;
			} else if (faults_parse_rate(
					   val, &rate[rate_flags[k].endpoint],
					   err, errlen) != 0) {
				return -1;
			}
		}
	}
	if (o->alerts_path != NULL && (have_profile || have_count)) {
		fmt_err(err, errlen, "--alerts conflicts with %s",
			have_profile ? "--profile" : "--count");
		return -1;
	}
	if (o->cycle > 0 && o->timeline_path == NULL) {
		fmt_err(err, errlen, "--cycle needs --timeline");
		return -1;
	}
	o->faults.seed = o->seed;
	for (k = 0; k < EP_COUNT; k++) {
		if (k == EP_STATS || k == EP_OTHER)
			continue;
		o->faults.fail_rate[k] = rate[k] >= 0 ? rate[k] : global_rate;
	}
	return 0;
}
