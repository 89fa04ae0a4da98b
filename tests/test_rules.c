/*
 * Table tests of the alert state machine (src/rules.c).
 *
 * Every row of step_cases is one call of rules_step: a definition, a stored
 * state, a value and a time, and everything the rules must answer. The loop
 * checks all rows and names each failing one before the test fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rules.h"

#define N RULES_NEVER
#define PASS LEVEL_PASS
#define WARN LEVEL_WARN
#define CRIT LEVEL_CRITICAL
#define NONE RULES_CALL_NONE
#define NOTIFY RULES_CALL_NOTIFY
#define RESOLVE RULES_CALL_RESOLVE

#define I 15000                 /* interval_ms */
#define R 100000                /* repeat_ms */
#define S 60000                 /* sustain_ms */
#define T INT64_C(1700000000000) /* "now" of most rows */
#define PREV (T - I)            /* last_ok one interval ago */

/* Which message the call must carry: checked by pointer identity. */
enum want_msg {
	MSG_NONE,
	MSG_WARN,
	MSG_CRIT,
};

struct def_fields {
	double warn;
	double crit;
	int64_t sustain_ms;
	int64_t repeat_ms;
	int64_t interval_ms;
};

struct expect {
	enum rules_level state;
	enum rules_call call;
	enum want_msg msg;
	int changed;
	int64_t warn_since;
	int64_t crit_since;
};

struct step_case {
	const char *desc;
	struct def_fields def;
	struct rules_state in; /* state, warn_since, crit_since, last_ok,
				  last_notified, notify_pending */
	double value;
	int64_t now;
	struct expect want;
};

/* The usual definition: warn 100, critical 200, no sustain. */
#define DEF { 100, 200, 0, R, I }
/* The same with sustainSecs = 60. */
#define DEF_S { 100, 200, S, R, I }

static const struct step_case step_cases[] = {
	/* ---- every transition, no sustain ---- */
	{ "PASS stays PASS below warn", DEF,
	  { PASS, N, N, PREV, N, 0 }, 50, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "PASS -> WARN notifies with the warn message", DEF,
	  { PASS, N, N, PREV, N, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T, N } },
	{ "PASS -> CRITICAL notifies with the critical message", DEF,
	  { PASS, N, N, PREV, N, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T, T } },
	{ "WARN -> CRITICAL at once although the repeat is not due", DEF,
	  { WARN, T - 60000, N, PREV, T - 20000, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T - 60000, T } },
	{ "WARN -> CRITICAL notifies even while the warn notify is pending", DEF,
	  { WARN, T - 30000, N, PREV, N, 1 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T - 30000, T } },
	{ "CRITICAL -> WARN notifies with the warn message", DEF,
	  { CRIT, T - 60000, T - 30000, PREV, T - 20000, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T - 60000, N } },
	{ "WARN -> PASS resolves", DEF,
	  { WARN, T - 60000, N, PREV, T - 20000, 0 }, 50, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },
	{ "CRITICAL -> PASS resolves", DEF,
	  { CRIT, T - 60000, T - 60000, PREV, T - 20000, 0 }, 50, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },
	{ "CRITICAL -> PASS resolves even while a notify is pending", DEF,
	  { CRIT, T - 60000, T - 60000, PREV, T - 20000, 1 }, 50, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },
	{ "WARN stays WARN, repeat not due: nothing", DEF,
	  { WARN, T - 60000, N, PREV, T - 20000, 0 }, 150, T,
	  { WARN, NONE, MSG_NONE, 0, T - 60000, N } },
	{ "CRITICAL stays CRITICAL, repeat not due: nothing", DEF,
	  { CRIT, T - 60000, T - 45000, PREV, T - 20000, 0 }, 250, T,
	  { CRIT, NONE, MSG_NONE, 0, T - 60000, T - 45000 } },
	{ "PASS stays PASS: never a repeat, whatever last_notified", DEF,
	  { PASS, N, N, PREV, T - 10 * R, 0 }, 50, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },

	/* ---- the thresholds are strict ---- */
	{ "v == warn is PASS", DEF,
	  { PASS, N, N, PREV, N, 0 }, 100, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "v == crit is WARN", DEF,
	  { PASS, N, N, PREV, N, 0 }, 200, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T, N } },
	{ "v just above crit is CRITICAL", DEF,
	  { PASS, N, N, PREV, N, 0 }, 200.001, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T, T } },
	{ "v == warn from WARN resolves", DEF,
	  { WARN, T - 60000, N, PREV, T - 20000, 0 }, 100, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },
	{ "v == crit from CRITICAL goes down to WARN", DEF,
	  { CRIT, T - 60000, T - 60000, PREV, T - 20000, 0 }, 200, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T - 60000, N } },

	/* ---- 0 and negative numbers are ordinary values ---- */
	{ "0 with warn -1 is WARN", { -1, 5, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 0, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T, N } },
	{ "0 with warn 0 is PASS", { 0, 5, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 0, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "0 with crit -1 is CRITICAL", { -10, -1, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 0, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T, T } },
	{ "negative value below negative warn is PASS", { -10, -5, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, -20, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "negative value between negative thresholds is WARN",
	  { -10, -5, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, -7.5, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T, N } },
	{ "value 0 from WARN resolves (0 is not an error)", DEF,
	  { WARN, T - 60000, N, PREV, T - 20000, 0 }, 0, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },

	/* ---- warn at or above critical: no WARN band ---- */
	{ "warn above crit: between them is CRITICAL", { 300, 200, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, N, T } },
	{ "warn above crit: above both is CRITICAL", { 300, 200, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 350, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T, T } },
	{ "warn above crit: below both is PASS", { 300, 200, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 150, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "warn above crit: CRITICAL between them stays CRITICAL",
	  { 300, 200, 0, R, I },
	  { CRIT, T - 60000, T - 60000, PREV, T - 20000, 0 }, 250, T,
	  { CRIT, NONE, MSG_NONE, 0, N, T - 60000 } },
	{ "warn == crit: at the threshold is PASS", { 100, 100, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 100, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "warn == crit: above is CRITICAL", { 100, 100, 0, R, I },
	  { PASS, N, N, PREV, N, 0 }, 101, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T, T } },

	/* ---- repeats ---- */
	{ "WARN repeat exactly at repeat_ms fires", DEF,
	  { WARN, T - 2 * R, N, PREV, T - R, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 0, T - 2 * R, N } },
	{ "WARN repeat 1 ms before repeat_ms does not fire", DEF,
	  { WARN, T - 2 * R, N, PREV, T - R + 1, 0 }, 150, T,
	  { WARN, NONE, MSG_NONE, 0, T - 2 * R, N } },
	{ "CRITICAL repeat exactly at repeat_ms fires with the critical message",
	  DEF,
	  { CRIT, T - 2 * R, T - 2 * R, PREV, T - R, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 0, T - 2 * R, T - 2 * R } },
	{ "CRITICAL repeat 1 ms before repeat_ms does not fire", DEF,
	  { CRIT, T - 2 * R, T - 2 * R, PREV, T - R + 1, 0 }, 250, T,
	  { CRIT, NONE, MSG_NONE, 0, T - 2 * R, T - 2 * R } },
	{ "no repeat while a notify is pending", DEF,
	  { WARN, T - 20 * R, N, PREV, T - 10 * R, 1 }, 150, T,
	  { WARN, NONE, MSG_NONE, 0, T - 20 * R, N } },
	{ "repeat when nothing was ever delivered (last_notified NEVER)", DEF,
	  { WARN, T - 30000, N, PREV, N, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 0, T - 30000, N } },
	{ "no repeat when nothing was delivered but a notify is pending", DEF,
	  { CRIT, T - 30000, T - 30000, PREV, N, 1 }, 250, T,
	  { CRIT, NONE, MSG_NONE, 0, T - 30000, T - 30000 } },
	{ "long overdue repeat fires (once per evaluation, not per period)", DEF,
	  { CRIT, T - 20 * R, T - 20 * R, PREV, T - 10 * R, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 0, T - 20 * R, T - 20 * R } },

	/* ---- sustain ---- */
	{ "sustain: a one-evaluation spike does not fire", DEF_S,
	  { PASS, N, N, PREV, N, 0 }, 150, T,
	  { PASS, NONE, MSG_NONE, 0, T, N } },
	{ "sustain: a run 1 ms short of sustain does not fire", DEF_S,
	  { PASS, T - S + 1, N, PREV, N, 0 }, 150, T,
	  { PASS, NONE, MSG_NONE, 0, T - S + 1, N } },
	{ "sustain: a run reaching sustain fires WARN", DEF_S,
	  { PASS, T - S, N, PREV, N, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T - S, N } },
	{ "sustain: the evaluation after firing does not notify again", DEF_S,
	  { WARN, T - S - I, N, PREV, T - I + 500, 0 }, 150, T,
	  { WARN, NONE, MSG_NONE, 0, T - S - I, N } },
	{ "sustain: staying in the sustained level repeats when due", DEF_S,
	  { WARN, T - S - R, N, PREV, T - R, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 0, T - S - R, N } },
	{ "sustain: PASS -> CRITICAL when both clocks ran sustain", DEF_S,
	  { PASS, T - S - I, T - S, PREV, N, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T - S - I, T - S } },
	{ "sustain: PASS, value CRITICAL, only warn sustained -> WARN", DEF_S,
	  { PASS, T - S, T - I, PREV, N, 0 }, 250, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T - S, T - I } },
	{ "sustain: PASS, value CRITICAL, neither sustained -> stays PASS",
	  DEF_S,
	  { PASS, T - I, T - I, PREV, N, 0 }, 250, T,
	  { PASS, NONE, MSG_NONE, 0, T - I, T - I } },
	{ "sustain: WARN, value CRITICAL not sustained -> stays WARN", DEF_S,
	  { WARN, T - 2 * S, T - I, PREV, T - 20000, 0 }, 250, T,
	  { WARN, NONE, MSG_NONE, 0, T - 2 * S, T - I } },
	{ "sustain: WARN held below CRITICAL still repeats with warn message",
	  DEF_S,
	  { WARN, T - 2 * S, T - I, PREV, T - R, 0 }, 250, T,
	  { WARN, NOTIFY, MSG_WARN, 0, T - 2 * S, T - I } },
	{ "sustain: WARN -> CRITICAL once the critical run reaches sustain",
	  DEF_S,
	  { WARN, T - 2 * S, T - S, PREV, T - 20000, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T - 2 * S, T - S } },
	{ "sustain: CRITICAL -> WARN is immediate", DEF_S,
	  { CRIT, T - 2 * S, T - 2 * S, PREV, T - 20000, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T - 2 * S, N } },
	{ "sustain: WARN -> PASS is immediate", DEF_S,
	  { WARN, T - 2 * S, N, PREV, T - 20000, 0 }, 50, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },
	{ "sustain: CRITICAL -> PASS is immediate", DEF_S,
	  { CRIT, T - 2 * S, T - 2 * S, PREV, T - 20000, 0 }, 50, T,
	  { PASS, RESOLVE, MSG_NONE, 1, N, N } },
	{ "sustain: a value at or below warn clears the clock", DEF_S,
	  { PASS, T - I, N, PREV, N, 0 }, 100, T,
	  { PASS, NONE, MSG_NONE, 0, N, N } },
	{ "sustain: gap > 2 x interval restarts the clock, no fire", DEF_S,
	  { PASS, T - S, N, T - 2 * I - 1, N, 0 }, 150, T,
	  { PASS, NONE, MSG_NONE, 0, T, N } },
	{ "sustain: gap == 2 x interval does not break the run", DEF_S,
	  { PASS, T - S, N, T - 2 * I, N, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T - S, N } },
	{ "sustain: gap in WARN restarts both clocks, no escalation", DEF_S,
	  { WARN, T - 2 * S, T - S, T - 3 * I, T - 20000, 0 }, 250, T,
	  { WARN, NONE, MSG_NONE, 0, T, T } },
	{ "sustain: gap does not stop moving down", DEF_S,
	  { CRIT, T - 2 * S, T - 2 * S, T - 10 * I, T - 20000, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T, N } },
	{ "sustain: first evaluation starts the clocks at now", DEF_S,
	  { PASS, T - 2 * S, T - 2 * S, N, N, 0 }, 250, T,
	  { PASS, NONE, MSG_NONE, 0, T, T } },
	{ "no sustain: first evaluation fires at once", DEF,
	  { PASS, N, N, N, N, 0 }, 250, T,
	  { CRIT, NOTIFY, MSG_CRIT, 1, T, T } },
	{ "no sustain: fires at once even if the wall clock stepped back", DEF,
	  { PASS, T + 5000, N, T + 5000, N, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T + 5000, N } },
	{ "sustain: a clock stepped back does not count as sustained", DEF_S,
	  { PASS, T + 5000, N, T + 5000, N, 0 }, 150, T,
	  { PASS, NONE, MSG_NONE, 0, T + 5000, N } },
	{ "no sustain: a gap restarts the clocks but still fires", DEF,
	  { PASS, N, N, T - 10 * I, N, 0 }, 150, T,
	  { WARN, NOTIFY, MSG_WARN, 1, T, N } },
};

static char warn_message[] = "warning";
static char crit_message[] = "critical";

static void make_def(struct alert_def *def, const struct def_fields *f)
{
	memset(def, 0, sizeof(*def));
	def->name = "alert-test";
	def->query = "test-query";
	def->warn_value = f->warn;
	def->crit_value = f->crit;
	def->sustain_ms = f->sustain_ms;
	def->repeat_ms = f->repeat_ms;
	def->interval_ms = f->interval_ms;
	def->warn_message = warn_message;
	def->crit_message = crit_message;
}

static const char *expected_message(const struct alert_def *def,
				    enum want_msg msg)
{
	switch (msg) {
	case MSG_WARN:
		return def->warn_message;
	case MSG_CRIT:
		return def->crit_message;
	case MSG_NONE:
		break;
	}
	return NULL;
}

static const char *call_name(enum rules_call call)
{
	switch (call) {
	case RULES_CALL_NONE:
		return "NONE";
	case RULES_CALL_NOTIFY:
		return "NOTIFY";
	case RULES_CALL_RESOLVE:
		return "RESOLVE";
	}
	return "?";
}

static const char *message_name(const struct alert_def *def, const char *m)
{
	if (m == NULL)
		return "NULL";
	if (m == def->warn_message)
		return "def->warn_message";
	if (m == def->crit_message)
		return "def->crit_message";
	return "a pointer not borrowed from the definition";
}

/* Checks one row; prints every mismatch with the row's description and
 * returns the number of mismatches. */
static int check_case(const struct step_case *c)
{
	struct alert_def def;
	struct rules_result r;
	const char *want_message;
	int bad = 0;

	make_def(&def, &c->def);
	want_message = expected_message(&def, c->want.msg);
	memset(&r, 0xa5, sizeof(r));
	rules_step(&def, &c->in, c->value, c->now, &r);

	if (r.next.state != c->want.state) {
		print_error("  state %s, want %s\n", rules_level_name(r.next.state),
			    rules_level_name(c->want.state));
		bad++;
	}
	if (r.call != c->want.call) {
		print_error("  call %s, want %s\n", call_name(r.call),
			    call_name(c->want.call));
		bad++;
	}
	if (r.message != want_message) {
		print_error("  message %s, want %s\n", message_name(&def, r.message),
			    message_name(&def, want_message));
		bad++;
	}
	if (r.changed != c->want.changed) {
		print_error("  changed %d, want %d\n", r.changed, c->want.changed);
		bad++;
	}
	if (r.next.warn_since != c->want.warn_since) {
		print_error("  warn_since T%+lld, want T%+lld\n",
			    (long long)(r.next.warn_since - T),
			    (long long)(c->want.warn_since - T));
		bad++;
	}
	if (r.next.crit_since != c->want.crit_since) {
		print_error("  crit_since T%+lld, want T%+lld\n",
			    (long long)(r.next.crit_since - T),
			    (long long)(c->want.crit_since - T));
		bad++;
	}
	if (r.next.last_ok != c->now) {
		print_error("  last_ok not set to now\n");
		bad++;
	}
	if (r.next.last_notified != c->in.last_notified ||
	    r.next.notify_pending != c->in.notify_pending) {
		print_error("  last_notified/notify_pending not copied\n");
		bad++;
	}
	return bad;
}

static void test_step_table(void **unused)
{
	size_t i;
	size_t n = sizeof(step_cases) / sizeof(step_cases[0]);
	int failed = 0;

	(void)unused;
	assert_true(n >= 40);
	for (i = 0; i < n; i++) {
		/* Only failing rows print: their mismatches, then the row. */
		if (check_case(&step_cases[i]) > 0) {
			print_error("FAILED case %zu: %s\n", i, step_cases[i].desc);
			failed++;
		}
	}
	print_message("%zu step cases, %d failed\n", n, failed);
	assert_int_equal(failed, 0);
}

static void test_step_in_place(void **unused)
{
	/* The caller may pass the result's own state as the input. */
	struct alert_def def;
	struct def_fields f = DEF;
	struct rules_result r;

	(void)unused;
	make_def(&def, &f);
	rules_state_init(&r.next);
	r.next.last_ok = PREV;
	rules_step(&def, &r.next, 250, T, &r);
	assert_int_equal(r.next.state, LEVEL_CRITICAL);
	assert_int_equal(r.call, RULES_CALL_NOTIFY);
	assert_ptr_equal(r.message, def.crit_message);
	assert_int_equal(r.changed, 1);
	assert_true(r.next.warn_since == T && r.next.crit_since == T);
}

static void test_level(void **unused)
{
	struct alert_def def;
	struct def_fields f = DEF;

	(void)unused;
	make_def(&def, &f);
	assert_int_equal(rules_level(&def, -1e300), LEVEL_PASS);
	assert_int_equal(rules_level(&def, 0), LEVEL_PASS);
	assert_int_equal(rules_level(&def, 100), LEVEL_PASS);
	assert_int_equal(rules_level(&def, 100.0000001), LEVEL_WARN);
	assert_int_equal(rules_level(&def, 200), LEVEL_WARN);
	assert_int_equal(rules_level(&def, 200.0000001), LEVEL_CRITICAL);
	assert_int_equal(rules_level(&def, 1e300), LEVEL_CRITICAL);
	def.warn_value = 300;
	assert_int_equal(rules_level(&def, 250), LEVEL_CRITICAL);
	assert_int_equal(rules_level(&def, 200), LEVEL_PASS);
}

static void test_state_init(void **unused)
{
	struct rules_state s;

	(void)unused;
	memset(&s, 0x5a, sizeof(s));
	rules_state_init(&s);
	assert_int_equal(s.state, LEVEL_PASS);
	assert_true(s.warn_since == RULES_NEVER);
	assert_true(s.crit_since == RULES_NEVER);
	assert_true(s.last_ok == RULES_NEVER);
	assert_true(s.last_notified == RULES_NEVER);
	assert_int_equal(s.notify_pending, 0);
}

static void test_level_names(void **unused)
{
	static const enum rules_level levels[] = {
		LEVEL_PASS, LEVEL_WARN, LEVEL_CRITICAL
	};
	enum rules_level got;
	size_t i;

	(void)unused;
	assert_string_equal(rules_level_name(LEVEL_PASS), "PASS");
	assert_string_equal(rules_level_name(LEVEL_WARN), "WARN");
	assert_string_equal(rules_level_name(LEVEL_CRITICAL), "CRITICAL");
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		got = LEVEL_PASS;
		assert_int_equal(rules_level_parse(rules_level_name(levels[i]),
						   &got), 0);
		assert_int_equal(got, levels[i]);
	}
	got = LEVEL_WARN;
	assert_int_equal(rules_level_parse("warn", &got), -1);
	assert_int_equal(rules_level_parse("", &got), -1);
	assert_int_equal(rules_level_parse("CRITICALX", &got), -1);
	assert_int_equal(rules_level_parse("CRIT", &got), -1);
	assert_int_equal(got, LEVEL_WARN); /* untouched on failure */
}

static void test_first_eval_range_and_stability(void **unused)
{
	static const int64_t intervals[] = { 1, 2, 999, 15000, 86400000 };
	size_t i;
	const int64_t now = T;

	(void)unused;
	for (i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		int64_t a = rules_first_eval("alert-1", intervals[i], now);
		int64_t b = rules_first_eval("alert-1", intervals[i], now);
		int64_t later = rules_first_eval("alert-1", intervals[i],
						 now + 12345);

		assert_true(a == b);
		assert_true(a >= now && a < now + intervals[i]);
		/* The offset depends on the name only, not on now. */
		assert_true(later - (now + 12345) == a - now);
	}
	assert_true(rules_first_eval("alert-1", 1, now) == now);
	assert_true(rules_first_eval("", 15000, now) >= now);
	/* Different names land on different offsets (not all the same). */
	assert_true(rules_first_eval("alert-1", 15000, 0) !=
		    rules_first_eval("alert-2", 15000, 0) ||
		    rules_first_eval("alert-2", 15000, 0) !=
		    rules_first_eval("alert-3", 15000, 0));
	/* No overflow near the end of time: still in range. */
	assert_true(rules_first_eval("alert-1", 15000, INT64_MAX) == INT64_MAX);
}

static void test_first_eval_spread(void **unused)
{
	enum { NAMES = 10000, INTERVAL = 15000, BUCKETS = INTERVAL / 1000 };
	int count[BUCKETS] = { 0 };
	char name[32];
	int i;
	int max = 0;
	const int64_t now = 1000;

	(void)unused;
	for (i = 0; i < NAMES; i++) {
		int64_t t;

		snprintf(name, sizeof(name), "alert-%d", i);
		t = rules_first_eval(name, INTERVAL, now);
		assert_true(t >= now && t < now + INTERVAL);
		assert_true(t == rules_first_eval(name, INTERVAL, now));
		count[(t - now) / 1000]++;
	}
	for (i = 0; i < BUCKETS; i++) {
		if (count[i] > max)
			max = count[i];
	}
	print_message("busiest 1 s bucket: %d of %d names (average %d)\n", max,
		      NAMES, NAMES / BUCKETS);
	assert_true(max <= 3 * NAMES / BUCKETS);
}

static void test_next_eval(void **unused)
{
	(void)unused;
	/* On time: fixed rate. */
	assert_true(rules_next_eval(10000, 1000, 10000) == 11000);
	/* Late but within the interval: no drift. */
	assert_true(rules_next_eval(10000, 1000, 10400) == 11000);
	assert_true(rules_next_eval(10000, 1000, 10999) == 11000);
	/* Exactly one interval behind: the next slot is now, not after it. */
	assert_true(rules_next_eval(10000, 1000, 11000) == 12000);
	/* More than one interval behind: once now, then from now on. */
	assert_true(rules_next_eval(10000, 1000, 13500) == 14500);
	assert_true(rules_next_eval(10000, 1000, 10000 + 1000000) ==
		    10000 + 1000000 + 1000);
	/* Early (clock stepped back): still scheduled + interval. */
	assert_true(rules_next_eval(10000, 1000, 9000) == 11000);
	/* Saturates instead of overflowing. */
	assert_true(rules_next_eval(INT64_MAX - 10, 1000, INT64_MAX - 20) ==
		    INT64_MAX);
	assert_true(rules_next_eval(0, 1000, INT64_MAX - 10) == INT64_MAX);
}

/*
 * A timeline through rules_step with the state fed back, and the outbox
 * simulated: a NOTIFY sets notify_pending; on a step marked `deliver` the
 * pending notify was delivered 1 s before that evaluation (last_notified
 * set, pending cleared).
 */
struct seq_step {
	int64_t t_s;           /* seconds */
	double value;
	int deliver;
	enum rules_level state;
	enum rules_call call;
	enum want_msg msg;
};

static void test_sequence(void **unused)
{
	/* interval 10 s, sustain 20 s, repeat 60 s, warn 100, critical 200 */
	static const struct def_fields f = { 100, 200, 20000, 60000, 10000 };
	static const struct seq_step steps[] = {
		{ 0, 50, 0, PASS, NONE, MSG_NONE },    /* first evaluation */
		{ 10, 150, 0, PASS, NONE, MSG_NONE },  /* warn run starts */
		{ 20, 150, 0, PASS, NONE, MSG_NONE },  /* 10 s of 20 */
		{ 30, 150, 0, WARN, NOTIFY, MSG_WARN },/* sustained */
		{ 40, 150, 0, WARN, NONE, MSG_NONE },  /* pending, no repeat */
		{ 50, 150, 1, WARN, NONE, MSG_NONE },  /* delivered at 49 */
		{ 60, 250, 0, WARN, NONE, MSG_NONE },  /* crit run starts */
		{ 70, 250, 0, WARN, NONE, MSG_NONE },
		{ 80, 250, 0, CRIT, NOTIFY, MSG_CRIT },/* crit sustained */
		{ 90, 250, 1, CRIT, NONE, MSG_NONE },  /* delivered at 89 */
		{ 100, 250, 0, CRIT, NONE, MSG_NONE },
		{ 110, 250, 0, CRIT, NONE, MSG_NONE },
		{ 120, 250, 0, CRIT, NONE, MSG_NONE },
		{ 130, 250, 0, CRIT, NONE, MSG_NONE },
		{ 140, 250, 0, CRIT, NONE, MSG_NONE }, /* 51 s since 89 */
		{ 150, 250, 0, CRIT, NOTIFY, MSG_CRIT },/* repeat: 61 s */
		{ 160, 150, 1, WARN, NOTIFY, MSG_WARN },/* down: immediate */
		{ 170, 50, 0, PASS, RESOLVE, MSG_NONE },/* resolve */
		{ 180, 250, 1, PASS, NONE, MSG_NONE }, /* spike */
		{ 190, 50, 0, PASS, NONE, MSG_NONE },  /* spike over */
		{ 200, 250, 0, PASS, NONE, MSG_NONE }, /* run starts */
		{ 235, 250, 0, PASS, NONE, MSG_NONE }, /* gap 35 s: restart */
		{ 245, 250, 0, PASS, NONE, MSG_NONE },
		{ 255, 250, 0, CRIT, NOTIFY, MSG_CRIT },/* both sustained */
		{ 275, 250, 1, CRIT, NONE, MSG_NONE }, /* gap 20 s: no break */
		{ 285, 0, 0, PASS, RESOLVE, MSG_NONE },/* 0 is a value */
		{ 295, 0, 0, PASS, NONE, MSG_NONE },
	};
	struct alert_def def;
	struct rules_state s;
	struct rules_result r;
	size_t i;
	int failed = 0;

	(void)unused;
	make_def(&def, &f);
	rules_state_init(&s);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct seq_step *st = &steps[i];
		int64_t now = st->t_s * 1000;

		if (st->deliver && s.notify_pending) {
			s.last_notified = now - 1000;
			s.notify_pending = 0;
		}
		rules_step(&def, &s, st->value, now, &r);
		if (r.next.state != st->state || r.call != st->call ||
		    r.message != expected_message(&def, st->msg)) {
			print_error("FAILED step at t=%llds value %g: got %s %s,"
				    " want %s %s\n",
				    (long long)st->t_s, st->value,
				    rules_level_name(r.next.state),
				    call_name(r.call), rules_level_name(st->state),
				    call_name(st->call));
			failed++;
		}
		s = r.next;
		if (r.call == RULES_CALL_NOTIFY)
			s.notify_pending = 1;
	}
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_table),
		cmocka_unit_test(test_step_in_place),
		cmocka_unit_test(test_level),
		cmocka_unit_test(test_state_init),
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_first_eval_range_and_stability),
		cmocka_unit_test(test_first_eval_spread),
		cmocka_unit_test(test_next_eval),
		cmocka_unit_test(test_sequence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
