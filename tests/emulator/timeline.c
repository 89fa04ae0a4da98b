#include "timeline.h"

#include "buf.h"
#include "file.h"
#include "strmap.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct step {
	double at;
	double value;
};

struct track {
	char *target;
	struct step *steps;
	size_t count;
};

struct timeline {
	struct track *tracks;
	size_t count;
	double cycle;
	struct strmap *by_target;
};

void timeline_free(struct timeline *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->count; i++) {
		free(t->tracks[i].target);
		free(t->tracks[i].steps);
	}
	free(t->tracks);
	strmap_free(t->by_target);
	free(t);
}

size_t timeline_count(const struct timeline *t)
{
	return t != NULL ? t->count : 0;
}

/* Fills tr from the JSON array of steps a. Returns 0, or -1 with the
 * reason (without the file/target prefix) in why. */
static int parse_track(const cJSON *a, double cycle, struct track *tr,
		       char *why, size_t whylen)
{
	const cJSON *s;
	size_t n;
	size_t i = 0;

	if (!cJSON_IsArray(a)) {
		fmt_err(why, whylen, "not an array of [seconds, value] steps");
		return -1;
	}
	n = (size_t)cJSON_GetArraySize(a);
	if (n == 0) {
		fmt_err(why, whylen, "no steps");
		return -1;
	}
	tr->steps = calloc(n, sizeof(*tr->steps));
	if (tr->steps == NULL) {
		fmt_err(why, whylen, "out of memory");
		return -1;
	}
	cJSON_ArrayForEach(s, a) {
		const cJSON *at;
		const cJSON *v;

		if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) != 2) {
			fmt_err(why, whylen,
				"step %zu: not a [seconds, value] pair", i + 1);
			return -1;
		}
		at = cJSON_GetArrayItem(s, 0);
		v = cJSON_GetArrayItem(s, 1);
		if (!cJSON_IsNumber(at)) {
			fmt_err(why, whylen, "step %zu: seconds is not a number",
				i + 1);
			return -1;
		}
		if (!cJSON_IsNumber(v)) {
			fmt_err(why, whylen, "step %zu: value is not a number",
				i + 1);
			return -1;
		}
		if (at->valuedouble < 0) {
			fmt_err(why, whylen, "step %zu: seconds is negative",
				i + 1);
			return -1;
		}
		if (i > 0 && at->valuedouble <= tr->steps[i - 1].at) {
			fmt_err(why, whylen,
				"step %zu: seconds %g not after step %zu (%g)",
				i + 1, at->valuedouble, i, tr->steps[i - 1].at);
			return -1;
		}
		if (cycle > 0 && at->valuedouble >= cycle) {
			fmt_err(why, whylen,
				"step %zu: seconds %g not before the cycle "
				"length %g", i + 1, at->valuedouble, cycle);
			return -1;
		}
		tr->steps[i].at = at->valuedouble;
		tr->steps[i].value = v->valuedouble;
		i++;
	}
	tr->count = i;
	return 0;
}

int timeline_parse(struct timeline **out, const char *label, const char *data,
		   size_t len, double cycle, char *err, size_t errlen)
{
	struct timeline *t = NULL;
	cJSON *root = NULL;
	const cJSON *e;
	size_t n;
	int rc = FILE_ERR_CONTENT;

	*out = NULL;
	root = cJSON_ParseWithLength(data, len);
	if (root == NULL) {
		fmt_err(err, errlen, "timeline %s: not valid JSON", label);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		fmt_err(err, errlen, "timeline %s: not a JSON object", label);
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(root);
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto oom;
	t->cycle = cycle;
	t->tracks = calloc(n + 1, sizeof(*t->tracks));
	t->by_target = strmap_new(n);
	if (t->tracks == NULL || t->by_target == NULL)
		goto oom;
	cJSON_ArrayForEach(e, root) {
		struct track *tr = &t->tracks[t->count];
		char why[256];
		size_t klen = strlen(e->string);
		int dup;

		tr->target = malloc(klen + 1);
		if (tr->target == NULL)
			goto oom;
		memcpy(tr->target, e->string, klen + 1);
		t->count++;
		if (parse_track(e, cycle, tr, why, sizeof(why)) != 0) {
			fmt_err(err, errlen, "timeline %s: target \"%s\": %s",
				label, tr->target, why);
			goto out;
		}
		dup = strmap_put(t->by_target, tr->target, (int)(t->count - 1));
		if (dup < 0)
			goto oom;
		if (dup > 0) {
			fmt_err(err, errlen,
				"timeline %s: target \"%s\": duplicate target",
				label, tr->target);
			goto out;
		}
	}
	*out = t;
	t = NULL;
	rc = 0;
	goto out;
oom:
	fmt_err(err, errlen, "timeline %s: out of memory", label);
out:
	cJSON_Delete(root);
	timeline_free(t);
	return rc;
}

int timeline_load(struct timeline **out, const char *path, double cycle,
		  char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = file_read(path, &data, &len, err, errlen);
	if (rc == 0)
		rc = timeline_parse(out, path, data, len, cycle, err, errlen);
	free(data);
	return rc;
}

int timeline_value(const struct timeline *t, const char *target,
		   double elapsed, double *value)
{
	const struct track *tr;
	size_t lo;
	size_t hi;
	int i = strmap_get(t != NULL ? t->by_target : NULL, target);

	if (i < 0)
		return 0;
	tr = &t->tracks[i];
	assert(tr->count > 0);
	if (t->cycle > 0) {
		elapsed = fmod(elapsed, t->cycle);
		if (elapsed < 0)
			elapsed += t->cycle;
	}
	/* Find the last step at or before elapsed: steps[lo].at <= elapsed <
	 * steps[hi].at after the loop, with lo = 0 standing for "before the
	 * first step" too. */
	lo = 0;
	hi = tr->count;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (tr->steps[mid].at <= elapsed)
			lo = mid;
		else
			hi = mid;
	}
	*value = tr->steps[lo].value;
	return 1;
}
