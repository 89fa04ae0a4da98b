/* options: the emulator's command line, parsed into a read-only struct. */
#ifndef EMU_OPTIONS_H
#define EMU_OPTIONS_H

#include "faults.h"

#include <stdint.h>
#include <stdio.h>

struct options {
	long port;                 /* --port, 0 picks a free port */
	const char *profile;       /* --profile v2|latest */
	long count;                /* --count */
	const char *alerts_path;   /* --alerts FILE, or NULL */
	const char *timeline_path; /* --timeline FILE, or NULL */
	double cycle;              /* --cycle SECS, 0: no repetition */
	uint64_t seed;             /* --seed */
	struct faults faults;      /* --fail-rate*, --reject-rate*, --latency-ms,
				      --down */
	const char *record_path;   /* --record FILE, or NULL */
	const char *query_log_path; /* --query-log FILE, or NULL */
	const char *request_log_path; /* --request-log FILE, or NULL */
	int validate;              /* --validate */
	long threads;              /* --threads: server thread pool size */
	int help;                  /* --help */
};

/* Parses argv into o (strings are borrowed from argv). Flags take their
 * value as the next argument or after '='. Returns 0, or -1 with the
 * reason in err (unknown flag, missing or bad value, conflicting flags);
 * the caller exits 64. */
int options_parse(struct options *o, int argc, char **argv, char *err,
		  size_t errlen);

/* Writes the usage text to out. */
void options_usage(FILE *out);

#endif
