/* timeline: scripted per-target values from a JSON file
 * {"target": [[seconds, value], ...]}. Each value holds from its step until
 * the next step; before the first step the first value holds. Seconds count
 * from emulator start; with a cycle the script repeats every cycle seconds.
 * Immutable after loading, so lookups need no locking. */
#ifndef EMU_TIMELINE_H
#define EMU_TIMELINE_H

#include <stddef.h>

struct timeline;

/* Parses data (len bytes) from the file named label. cycle > 0 repeats the
 * script every cycle seconds (every step must then lie before cycle);
 * cycle <= 0 means no repetition. Steps must have strictly increasing,
 * non-negative seconds and numeric values. Returns 0 and sets *out (free
 * with timeline_free), or FILE_ERR_CONTENT with a message such as
 * `timeline t.json: target "x": step 2: value is not a number`. */
int timeline_parse(struct timeline **out, const char *label, const char *data,
		   size_t len, double cycle, char *err, size_t errlen);

/* Reads and parses the file at path. Returns 0, FILE_ERR_READ or
 * FILE_ERR_CONTENT with the reason in err. */
int timeline_load(struct timeline **out, const char *path, double cycle,
		  char *err, size_t errlen);

/* Releases the timeline; timeline_free(NULL) is a no-op. */
void timeline_free(struct timeline *t);

/* Looks target up (t may be NULL). Returns 1 and sets *value to the value
 * holding at elapsed seconds since start, or 0 when the timeline does not
 * script this target. */
int timeline_value(const struct timeline *t, const char *target,
		   double elapsed, double *value);

/* Number of scripted targets. */
size_t timeline_count(const struct timeline *t);

#endif
