#include "alerts.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hash.h"
#include "json.h"
#include "log.h"

/* Seconds used when repeatIntervalSecs is missing or <= 0 (DESIGN.md 1). */
#define DEFAULT_REPEAT_SECS 300
/* Room for a quoted name in a warning. */
#define WHAT_MAX 160

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- definitions ---------------------------------------------------------- */

void alert_def_clear(struct alert_def *def)
{
	if (def == NULL)
		return;
	free(def->name);
	free(def->query);
	free(def->warn_message);
	free(def->crit_message);
	def->name = NULL;
	def->query = NULL;
	def->warn_message = NULL;
	def->crit_message = NULL;
}

void alert_defs_free(struct alert_def *defs, size_t n)
{
	if (defs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		alert_def_clear(&defs[i]);
	free(defs);
}

/* ---- /query body --------------------------------------------------------- */

int alerts_parse_value_z(const char *body, size_t len, double *value, char *err, size_t errlen)
{
	cJSON *root = NULL;
	const cJSON *v = NULL;
	char why[160];
	int rc = -1;

	assert(body != NULL && value != NULL);
	root = json_parse(body, len, why, sizeof(why));
	if (root == NULL) {
		set_err(err, errlen, "%s", why);
		goto out;
	}
	if (!cJSON_IsObject(root)) {
		set_err(err, errlen, "body is not a JSON object (it is %s)", json_type(root));
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "value");
	if (v == NULL) {
		set_err(err, errlen, "body has no \"value\"");
		goto out;
	}
	if (!cJSON_IsNumber(v)) {
		set_err(err, errlen, "value is not a number (it is %s)", json_type(v));
		goto out;
	}
	/* cJSON rejects NaN/Infinity literals, but 1e999 parses to inf. */
	if (!isfinite(v->valuedouble)) {
		set_err(err, errlen, "value is not finite");
		goto out;
	}
	*value = v->valuedouble;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

int alerts_parse_value(const char *body, size_t len, double *value, char *err, size_t errlen)
{
	char *copy = NULL;
	int rc;

	assert(body != NULL || len == 0);
	assert(value != NULL);
	copy = json_copy(len > 0 ? body : "", len);
	if (copy == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	rc = alerts_parse_value_z(copy, len, value, err, errlen);
	free(copy);
	return rc;
}

/* ---- /alerts body -------------------------------------------------------- */

#define STR_NONEMPTY 1
#define STR_NOCONTROL 2

/* Checks the string member key of obj (shown as label). Returns 0 with
 * *out borrowed from obj, or -1 with the reason in why. */
static int check_string(const cJSON *obj, const char *key, const char *label, size_t max, int flags,
			const char **out, char *why, size_t whylen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	size_t len;

	if (item == NULL) {
		set_err(why, whylen, "%s is missing", label);
		return -1;
	}
	if (!cJSON_IsString(item) || item->valuestring == NULL) {
		set_err(why, whylen, "%s is not a string (it is %s)", label, json_type(item));
		return -1;
	}
	len = strlen(item->valuestring);
	if ((flags & STR_NONEMPTY) && len == 0) {
		set_err(why, whylen, "%s is empty", label);
		return -1;
	}
	if (len > max) {
		set_err(why, whylen, "%s is longer than %zu bytes", label, max);
		return -1;
	}
	if ((flags & STR_NOCONTROL) && json_has_control(item->valuestring)) {
		set_err(why, whylen, "%s has a control character", label);
		return -1;
	}
	if (!json_utf8_valid(item->valuestring)) {
		set_err(why, whylen, "%s is not valid UTF-8", label);
		return -1;
	}
	*out = item->valuestring;
	return 0;
}

/* Checks an integer-valued number of seconds <= ALERTS_MAX_SECS (the sign
 * is the caller's business). An optional member may be missing or null.
 * A value over the limit is invalid, or, when clamped is not NULL,
 * brought down to ALERTS_MAX_SECS with *clamped set to the value sent (left
 * alone otherwise). Returns 0 with
 * *secs, 1 when an optional member is absent, or -1 with the reason in
 * why. */
static int check_secs(const cJSON *obj, const char *key, int optional, double *clamped,
		      double *secs, char *why, size_t whylen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	double d;

	if (item == NULL || (optional && cJSON_IsNull(item))) {
		if (optional)
			return 1;
		set_err(why, whylen, "%s is missing", key);
		return -1;
	}
	if (!cJSON_IsNumber(item)) {
		set_err(why, whylen, "%s is not a number (it is %s)", key, json_type(item));
		return -1;
	}
	d = item->valuedouble;
	if (!isfinite(d) || d != floor(d)) {
		set_err(why, whylen, "%s is not an integer (%g)", key, d);
		return -1;
	}
	if (d > (double)ALERTS_MAX_SECS && clamped != NULL) {
		*clamped = d;
		d = (double)ALERTS_MAX_SECS;
	}
	if (d > (double)ALERTS_MAX_SECS) {
		set_err(why, whylen, "%s is over %lld (%g)", key, (long long)ALERTS_MAX_SECS, d);
		return -1;
	}
	*secs = d;
	return 0;
}

/* Checks the level object key ("warn" / "critical"). */
static int check_level(const cJSON *entry, const char *key, double *value, const char **message,
		       char *why, size_t whylen)
{
	const cJSON *level = cJSON_GetObjectItemCaseSensitive(entry, key);
	const cJSON *v = NULL;
	char label[32];

	if (level == NULL) {
		set_err(why, whylen, "%s is missing", key);
		return -1;
	}
	if (!cJSON_IsObject(level)) {
		set_err(why, whylen, "%s is not an object (it is %s)", key, json_type(level));
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(level, "value");
	if (v == NULL) {
		set_err(why, whylen, "%s.value is missing", key);
		return -1;
	}
	if (!cJSON_IsNumber(v)) {
		set_err(why, whylen, "%s.value is not a number (it is %s)", key, json_type(v));
		return -1;
	}
	if (!isfinite(v->valuedouble)) {
		set_err(why, whylen, "%s.value is not finite", key);
		return -1;
	}
	*value = v->valuedouble;
	snprintf(label, sizeof(label), "%s.message", key);
	/* An empty message is accepted: see alerts.h. */
	return check_string(level, "message", label, ALERTS_MAX_MESSAGE, 0, message, why, whylen);
}

/* The fields of one valid entry, borrowed from the cJSON tree. */
struct entry {
	const char *name;
	const char *query;
	double interval;
	double repeat;
	double sustain;
	double warn_value;
	const char *warn_message;
	double crit_value;
	const char *crit_message;
	double repeat_sent;  /* > ALERTS_MAX_SECS when repeat was clamped, else 0 */
	double sustain_sent; /* likewise for sustain */
};

/* Validates one array element. On success fills *e and returns 0; on
 * failure returns -1 with the reason in why; e->name is set as soon as
 * the name is known to be usable, so that the warning can show it. */
static int check_entry(const cJSON *item, struct entry *e, char *why, size_t whylen)
{
	int r;

	e->name = NULL;
	e->repeat_sent = 0;
	e->sustain_sent = 0;
	if (!cJSON_IsObject(item)) {
		set_err(why, whylen, "entry is not an object (it is %s)", json_type(item));
		return -1;
	}
	if (check_string(item, "name", "name", ALERTS_MAX_NAME, STR_NONEMPTY | STR_NOCONTROL,
			 &e->name, why, whylen) != 0)
		return -1;
	if (check_string(item, "query", "query", ALERTS_MAX_QUERY, STR_NONEMPTY, &e->query, why,
			 whylen) != 0)
		return -1;

	if (check_secs(item, "intervalSecs", 0, NULL, &e->interval, why, whylen) != 0)
		return -1;
	if (e->interval <= 0) {
		set_err(why, whylen, "intervalSecs is not a positive integer (%g)", e->interval);
		return -1;
	}

	/* A server may send a huge repeat or sustain to mean "never": the
	 * alert is kept with the longest one accepted. */
	r = check_secs(item, "repeatIntervalSecs", 1, &e->repeat_sent, &e->repeat, why, whylen);
	if (r < 0)
		return -1;
	if (r > 0 || e->repeat <= 0)
		e->repeat = DEFAULT_REPEAT_SECS;

	r = check_secs(item, "sustainSecs", 1, &e->sustain_sent, &e->sustain, why, whylen);
	if (r < 0)
		return -1;
	if (r > 0)
		e->sustain = 0;
	if (e->sustain < 0) {
		set_err(why, whylen, "sustainSecs is negative (%g)", e->sustain);
		return -1;
	}

	if (check_level(item, "warn", &e->warn_value, &e->warn_message, why, whylen) != 0)
		return -1;
	if (check_level(item, "critical", &e->crit_value, &e->crit_message, why, whylen) != 0)
		return -1;
	return 0;
}

static int def_from_entry(struct alert_def *def, const struct entry *e)
{
	memset(def, 0, sizeof(*def));
	def->name = strdup(e->name);
	def->query = strdup(e->query);
	def->warn_message = strdup(e->warn_message);
	def->crit_message = strdup(e->crit_message);
	if (def->name == NULL || def->query == NULL || def->warn_message == NULL ||
	    def->crit_message == NULL) {
		alert_def_clear(def);
		return -1;
	}
	/* Every seconds value is integral and <= ALERTS_MAX_SECS: exact. */
	def->interval_ms = (int64_t)e->interval * 1000;
	def->repeat_ms = (int64_t)e->repeat * 1000;
	def->sustain_ms = (int64_t)e->sustain * 1000;
	def->warn_value = e->warn_value;
	def->crit_value = e->crit_value;
	return 0;
}

/* Result of count_element past ALERTS_MAX_ENTRIES. */
#define TOO_MANY 2

static int count_element(const cJSON *item, const char *raw, size_t rawlen, void *arg)
{
	size_t *count = arg;

	(void)item;
	(void)raw;
	(void)rawlen;
	/* A body this long is refused whole: no need to read the rest. */
	return ++*count > ALERTS_MAX_ENTRIES ? TOO_MANY : 0;
}

/* What a parse of a /alerts body has kept and counted so far. */
struct parse_state {
	struct alert_def *list;
	size_t cap;            /* room in list */
	struct hash_set names; /* of the kept names */
	size_t kept;
	size_t index;
	char **skipped; /* names of invalid entries */
	size_t nskipped;
	size_t skipped_cap;
	int want_skipped; /* 0: skipped names are not collected */
	size_t warnings;  /* warnings about entries, logged or not */
	size_t nskips;    /* entries skipped */
	size_t nclamps;   /* values clamped */
	/* When set, every problem goes to report rather than to the log. */
	alerts_problem_fn report;
	void *report_arg;
};

/* Logs a warning about entry index unless ALERTS_MAX_ENTRY_WARNINGS were
 * logged already: a body of a million bad entries must not write a
 * million lines at every refresh (alerts_parse_full_z sums up
 * the rest). */
static void warn_entry(struct parse_state *p, size_t index, const char *name, const char *what,
		       const char *why)
{
	char quoted[WHAT_MAX];

	if (p->report != NULL) {
		struct alerts_problem problem = {index, name, strcmp(what, "skipping") == 0, why};

		p->report(&problem, p->report_arg);
		return;
	}
	if (p->warnings++ >= ALERTS_MAX_ENTRY_WARNINGS)
		return;
	if (name != NULL)
		log_msg(LOG_WARN, "alerts: %s entry %zu (%s): %s", what, index,
			log_quote(quoted, sizeof(quoted), name), why);
	else
		log_msg(LOG_WARN, "alerts: %s entry %zu: %s", what, index, why);
}

static void warn_skip(struct parse_state *p, size_t index, const char *name, const char *why)
{
	p->nskips++;
	warn_entry(p, index, name, "skipping", why);
}

/* Warns about each value of a kept entry that was brought down to
 * ALERTS_MAX_SECS. */
static void warn_clamps(struct parse_state *p, size_t index, const struct entry *e)
{
	const struct {
		const char *key;
		double sent;
	} v[] = {{"repeatIntervalSecs", e->repeat_sent}, {"sustainSecs", e->sustain_sent}};
	char why[128];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i].sent <= 0)
			continue;
		p->nclamps++;
		snprintf(why, sizeof(why), "%s %g is over %lld, using %lld", v[i].key, v[i].sent,
			 (long long)ALERTS_MAX_SECS, (long long)ALERTS_MAX_SECS);
		warn_entry(p, index, e->name, "keeping", why);
	}
}

/* Remembers the name of an invalid entry. 0, or -1 when out of memory. */
static int note_skipped(struct parse_state *p, const char *name)
{
	char *copy = NULL;

	if (p->nskipped == p->skipped_cap) {
		size_t cap = p->skipped_cap > 0 ? p->skipped_cap * 2 : 16;
		char **grown = realloc(p->skipped, cap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		p->skipped = grown;
		p->skipped_cap = cap;
	}
	copy = strdup(name);
	if (copy == NULL)
		return -1;
	p->skipped[p->nskipped++] = copy;
	return 0;
}

/* The names kept so far are a hash_set of index + 1 into p->list. */
struct name_match {
	const struct alert_def *defs;
	const char *name;
};

static int name_matches(uint64_t entry, const void *arg)
{
	const struct name_match *m = arg;

	return strcmp(m->defs[entry - 1].name, m->name) == 0;
}

/* Whether a definition named name (of hash h) was kept already. */
static int name_kept(const struct parse_state *p, const char *name, uint64_t h)
{
	struct name_match m = {p->list, name};

	return hash_set_find(&p->names, h, name_matches, &m) != 0;
}

/* Makes room in p->names for one more name: a full set is replaced by one
 * twice its size, so that it grows with the definitions kept, not with
 * the entries sent. 0, or -1 when out of memory (the set is unchanged). */
static int reserve_name(struct parse_state *p)
{
	struct hash_set grown;

	if (p->names.slot != NULL && p->names.n < p->names.max)
		return 0;
	if (hash_set_init(&grown, p->names.max > 0 ? p->names.max * 2 : 8) != 0)
		return -1;
	for (size_t idx = 0; idx < p->kept; idx++)
		hash_set_add(&grown, hash_str(p->list[idx].name), idx + 1);
	hash_set_free(&p->names);
	p->names = grown;
	return 0;
}

/* Makes room in p->list and p->names for one more definition. */
static int reserve_def(struct parse_state *p)
{
	if (p->kept == p->cap) {
		size_t cap = p->cap > 0 ? p->cap * 2 : 16;
		struct alert_def *grown = realloc(p->list, cap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		p->list = grown;
		p->cap = cap;
	}
	return reserve_name(p);
}

/* Keeps one valid entry, or warns and skips it. 1 when out of memory. */
static int keep_element(const cJSON *item, const char *raw, size_t rawlen, void *arg)
{
	struct parse_state *p = arg;
	struct entry e;
	uint64_t h;
	char why[256];
	size_t index = p->index++;
	int c = json_raw_control(raw, rawlen);

	if (c >= 0) {
		/* Which string holds it is not known: the name is not trusted. */
		snprintf(why, sizeof(why),
			 "a string holds the raw control byte 0x%02x "
			 "(not JSON)",
			 (unsigned)c);
		warn_skip(p, index, NULL, why);
		return 0;
	}
	if (check_entry(item, &e, why, sizeof(why)) != 0) {
		warn_skip(p, index, e.name, why);
		if (p->want_skipped && e.name != NULL && note_skipped(p, e.name) != 0)
			return 1;
		return 0;
	}
	if (reserve_def(p) != 0)
		return 1;
	h = hash_str(e.name);
	if (name_kept(p, e.name, h)) {
		warn_skip(p, index, e.name, "name is a duplicate");
		return 0;
	}
	if (def_from_entry(&p->list[p->kept], &e) != 0)
		return 1;
	p->kept++;
	hash_set_add(&p->names, h, p->kept); /* index + 1 */
	warn_clamps(p, index, &e);
	return 0;
}

/* Checks the whole body before a single entry is taken or warned about:
 * 0, or -1 with the message in err. */
static int check_alerts_body(const char *body, size_t len, size_t *open, char *err, size_t errlen)
{
	size_t count = 0;
	char why[256];
	char snip[64];
	int rc;

	*open = json_array_start(body, len);
	if (*open == 0) {
		cJSON *root = json_parse(body, len, why, sizeof(why));

		if (root == NULL)
			set_err(err, errlen, "alerts: %s", why);
		else
			set_err(err, errlen, "alerts: body is not a JSON array (it is %s)",
				json_type(root));
		cJSON_Delete(root);
		return -1;
	}
	rc = json_for_each_element(body, len, *open, count_element, &count);
	if (rc == TOO_MANY) {
		set_err(err, errlen, "alerts: body has more than %d entries", ALERTS_MAX_ENTRIES);
		return -1;
	}
	if (rc != 0) {
		set_err(err, errlen, "alerts: body is not JSON (starts with %s)",
			json_snippet(snip, sizeof(snip), body, len));
		return -1;
	}
	if (json_has_nul_escape(body, len)) {
		set_err(err, errlen,
			"alerts: body holds a \\u0000 escape (a NUL byte in a string)");
		return -1;
	}
	return 0;
}

/* alerts_parse_full_z, handing the problems of entries to report when it
 * is not NULL. */
static int parse_body(const char *body, size_t len, struct alert_def **defs, size_t *n,
		      char ***skipped, size_t *nskipped, alerts_problem_fn report, void *report_arg,
		      char *err, size_t errlen)
{
	struct parse_state p = {
		.want_skipped = skipped != NULL, .report = report, .report_arg = report_arg};
	size_t open = 0;
	int rc = -1;

	assert(body != NULL && body[len] == '\0');
	assert(defs != NULL && n != NULL);
	assert((skipped == NULL) == (nskipped == NULL));
	*defs = NULL;
	*n = 0;
	if (skipped != NULL) {
		*skipped = NULL;
		*nskipped = 0;
	}
	if (check_alerts_body(body, len, &open, err, errlen) != 0)
		goto out;
	/* Never NULL on success, even for an empty array. */
	p.list = malloc(sizeof(*p.list));
	p.cap = 1;
	if (p.list == NULL || json_for_each_element(body, len, open, keep_element, &p) != 0) {
		set_err(err, errlen, "alerts: out of memory");
		goto out;
	}
	if (p.warnings > ALERTS_MAX_ENTRY_WARNINGS)
		log_msg(LOG_WARN,
			"alerts: more warnings not logged more=%zu entries_skipped=%zu "
			"values_clamped=%zu",
			p.warnings - ALERTS_MAX_ENTRY_WARNINGS, p.nskips, p.nclamps);
	*defs = p.list;
	*n = p.kept;
	p.list = NULL;
	if (skipped != NULL) {
		*skipped = p.skipped;
		*nskipped = p.nskipped;
		p.skipped = NULL;
	}
	rc = 0;
out:
	alert_defs_free(p.list, p.kept);
	alerts_names_free(p.skipped, p.nskipped);
	hash_set_free(&p.names);
	return rc;
}

int alerts_parse_full_z(const char *body, size_t len, struct alert_def **defs, size_t *n,
			char ***skipped, size_t *nskipped, char *err, size_t errlen)
{
	return parse_body(body, len, defs, n, skipped, nskipped, NULL, NULL, err, errlen);
}

int alerts_parse_report_z(const char *body, size_t len, struct alert_def **defs, size_t *n,
			  char ***skipped, size_t *nskipped, alerts_problem_fn report,
			  void *report_arg, char *err, size_t errlen)
{
	assert(report != NULL);
	return parse_body(body, len, defs, n, skipped, nskipped, report, report_arg, err, errlen);
}

void alerts_names_free(char **names, size_t n)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int alerts_parse(const char *body, size_t len, struct alert_def **defs, size_t *n, char *err,
		 size_t errlen)
{
	return alerts_parse_full(body, len, defs, n, NULL, NULL, err, errlen);
}

int alerts_parse_full(const char *body, size_t len, struct alert_def **defs, size_t *n,
		      char ***skipped, size_t *nskipped, char *err, size_t errlen)
{
	char *copy = NULL;
	int rc;

	assert(body != NULL || len == 0);
	assert(defs != NULL && n != NULL);
	assert((skipped == NULL) == (nskipped == NULL));
	*defs = NULL;
	*n = 0;
	if (skipped != NULL) {
		*skipped = NULL;
		*nskipped = 0;
	}
	copy = json_copy(len > 0 ? body : "", len);
	if (copy == NULL) {
		set_err(err, errlen, "alerts: out of memory");
		return -1;
	}
	rc = alerts_parse_full_z(copy, len, defs, n, skipped, nskipped, err, errlen);
	free(copy);
	return rc;
}
