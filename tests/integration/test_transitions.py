"""The real daemon against the emulator's timeline: every transition gives
exactly the calls of DESIGN.md section 2, in order, and alert_status shows
the states."""

import itertools
import signal
import sys
import time

from harness import Emulator, Engine, Workdir, alert, calls, check, log, wait_until

ALERTS = [
    alert("a"),                        # PASS -> WARN (repeats) -> CRITICAL -> WARN -> PASS
    alert("b"),                        # PASS -> CRITICAL -> PASS
    alert("zero", warn=-1, crit=10),   # 0 is a value: WARN
    alert("equal"),                    # exactly at the thresholds: PASS, then WARN
]
TIMELINE = {
    "q-a": [[0, 50], [3, 150], [10, 250], [13, 180], [16, 20]],
    "q-b": [[0, 10], [3, 900], [6, 100]],
    "q-zero": [[0, 0]],
    "q-equal": [[0, 100], [8, 200]],
}


def collapse(seq):
    return [k for k, _ in itertools.groupby(seq)]


def main():
    wd = Workdir("transitions")
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, args=["--validate"])
    eng = Engine(wd, emu.url).start()
    try:
        wait_until(lambda: ("resolve", "a", "") in calls(emu.records()), 25, "resolve of a")
        time.sleep(1.5)  # anything that should not come would come now
        states = dict(eng.sql("select name, state from alert_status"))
        rc, took = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu_rc = emu.stop()
    recs = emu.records()
    a = [(k, m) for k, _, m in calls(recs, "a")]
    log("a:", a)
    check(collapse(a) == [("notify", "warning"), ("notify", "critical"), ("notify", "warning"),
                          ("resolve", "")], "calls of a: %s" % a)
    first_warn = list(itertools.takewhile(lambda c: c == ("notify", "warning"), a))
    check(2 <= len(first_warn) <= 3, "WARN for 7 s with repeat 3 s: %d notifies" % len(first_warn))
    times = [r["t"] for r in recs if r["alert"] == "a" and r.get("message") == "warning"][:len(first_warn)]
    gaps = [b - a_ for a_, b in zip(times, times[1:])]
    check(all(g >= 3000 for g in gaps), "repeat earlier than repeatIntervalSecs: %s ms" % gaps)
    b = [(k, m) for k, _, m in calls(recs, "b")]
    log("b:", b)
    check(b == [("notify", "critical"), ("resolve", "")], "calls of b: %s" % b)
    zero = collapse([(k, m) for k, _, m in calls(recs, "zero")])
    check(zero == [("notify", "warning")], "calls of zero: %s" % zero)
    equal = collapse([(k, m) for k, _, m in calls(recs, "equal")])
    check(equal == [("notify", "warning")], "value == warn is PASS, == critical is WARN: %s" % equal)
    check(states == {"a": "PASS", "b": "PASS", "zero": "WARN", "equal": "WARN"},
          "alert_status states: %s" % states)
    check(emu_rc == 0, "emulator validator found errors:\n" + emu.read_stderr())
    log("transitions: ok (%d calls, daemon stopped in %.2fs)" % (len(recs), took))
    wd.cleanup()


if __name__ == "__main__":
    main()
