"""The real daemon against the emulator's timeline: every transition gives
exactly the calls of DESIGN.md section 2, in order, each within an
interval (plus delivery) of the step that caused it and not before it,
repeats no closer than repeatIntervalSecs, and alert_status shows the
states.

The boundaries are strict: a value equal to warn is PASS and one equal to
critical is WARN. Alert `equal` sits at exactly 100 (= warn) for 8 s, then
at exactly 200 (= critical): its one call is a WARN notify after the 8 s
step; a `>=` for warn would notify at once, a `>=` for critical would
notify critical after the step. Calls are compared as they came, never
collapsed: a duplicate fails."""

import itertools
import signal
import time

from fault_helpers import start_emulator
from harness import Engine, Workdir, alert, calls, check, log, wait_until

REPEAT_MS = 3000
LATE_MS = 1000 + 500    # one interval, then delivery
ALERTS = [
    alert("a"),                                    # PASS -> WARN (repeats) -> CRITICAL -> WARN -> PASS
    alert("b", repeat=300),                        # PASS -> CRITICAL -> PASS
    alert("zero", warn=-1, crit=10, repeat=300),   # 0 is a value: WARN
    alert("equal", repeat=300),                    # exactly at the thresholds: PASS, then WARN
]
TIMELINE = {
    "q-a": [[0, 50], [3, 150], [10, 250], [13, 180], [16, 20]],
    "q-b": [[0, 10], [3, 900], [6, 100]],
    "q-zero": [[0, 0]],
    "q-equal": [[0, 100], [8, 200]],
}
# (call, emulator second of the step that causes it) in order, per alert;
# a's runs of WARN and CRITICAL may repeat every 3 s within them.
WANT = {
    "a": [(("notify", "warning"), 3, 10), (("notify", "critical"), 10, 13),
          (("notify", "warning"), 13, 16), (("resolve", ""), 16, None)],
    "b": [(("notify", "critical"), 3, None), (("resolve", ""), 6, None)],
    "zero": [(("notify", "warning"), 0, None)],
    "equal": [(("notify", "warning"), 8, None)],
}


def main():
    wd = Workdir("transitions")
    emu = start_emulator(wd, alerts=ALERTS, timeline=TIMELINE, args=["--validate"])
    eng = Engine(wd, emu.url).start()
    try:
        wait_until(lambda: ("resolve", "a", "") in calls(emu.records()), 25, "resolve of a")
        time.sleep(1.5)  # anything that should not come would come now
        states = dict(eng.sql("select name, state from alert_status"))
        trans = eng.sql("select a.name, t.from_state, t.to_state, t.value from transition t "
                        "join alert a on a.id = t.alert_id order by t.id")
        rc, took = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu_rc = emu.stop()
    recs = emu.records()
    for name, want in WANT.items():
        got = [((r["kind"], r.get("message", "")), r["t"]) for r in recs if r["alert"] == name]
        log("%s: %s" % (name, [(c, round(t / 1000 - emu.started, 2)) for c, t in got]))
        runs = [(c, [t for _, t in g]) for c, g in itertools.groupby(got, key=lambda x: x[0])]
        check([c for c, _ in runs] == [c for c, _, _ in want],
              "calls of %s: %s, expected %s" % (name, [c for c, _ in got], [c for c, _, _ in want]))
        for (call, ts), (_, step, until) in zip(runs, want):
            # the first of a run: after its step, within an interval and delivery
            rel = ts[0] / 1000 - emu.start_lo
            check(rel >= step and ts[0] / 1000 - emu.started <= step + LATE_MS / 1000,
                  "%s: %s at %.2f s, its step is at %d s" % (name, call, rel, step))
            # more of the same only as repeats of a firing state, spaced
            gaps = [b - a for a, b in zip(ts, ts[1:])]
            check(not gaps or (call[0] == "notify" and until is not None),
                  "%s: %s came %d times" % (name, call, len(ts)))
            check(all(g >= REPEAT_MS for g in gaps), "%s: %s repeated %s ms apart" % (name, call, gaps))
            if until is not None:
                check(len(ts) <= (until - step) * 1000 // REPEAT_MS + 1,
                      "%s: %d of %s in %d s" % (name, len(ts), call, until - step))
    first_warn = [t for (c, t) in [((r["kind"], r.get("message", "")), r["t"]) for r in recs
                                   if r["alert"] == "a"]][:3]
    check(len([1 for r in recs if r["alert"] == "a" and r.get("message") == "warning"]) >= 3,
          "a: WARN for 7 s with repeat 3 s gave no repeat: %s" % first_warn)
    eq = [(f, t, v) for n, f, t, v in trans if n == "equal"]
    check(eq == [("PASS", "WARN", 200)], "transitions of equal (100 = warn is PASS, "
          "200 = critical is WARN): %s" % eq)
    check(states == {"a": "PASS", "b": "PASS", "zero": "WARN", "equal": "WARN"},
          "alert_status states: %s" % states)
    check(emu_rc == 0, "emulator validator found errors:\n" + emu.read_stderr())
    log("transitions: ok (%d calls, daemon stopped in %.2fs)" % (len(recs), took))
    wd.cleanup()


if __name__ == "__main__":
    main()
