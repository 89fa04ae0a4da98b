"""Definitions are re-fetched every --refresh, with no SIGHUP: the server
changes its alerts under a running daemon (the emulator is replaced on
the same port) and within a refresh period plus an interval the daemon

- retires the alert that disappeared (it was firing: one resolve),
- evaluates and notifies the alert that was added,
- carries the changed message of a firing alert in its next notify, with
  no new notify at the change (its state is kept),
- keeps the stored definition of an alert whose entry turned invalid: a
  warning names it and the field, the stored row is unchanged, the alert
  is not retired and goes on repeating its old message.

The server's request log shows the daemon fetching /alerts every
--refresh seconds."""

import signal
import time

from fault_helpers import check_no_sanitizer_reports, read_jsonl
from harness import Emulator, Engine, Workdir, alert, calls, check, log, wait_until

REFRESH = 2.0
REPEAT = 3
GONE = alert("gone", repeat=300)                            # CRITICAL, then removed
CHANGED = alert("changed", repeat=REPEAT)                   # WARN, message changes
CHANGED2 = alert("changed", repeat=REPEAT, warn_msg="warning, changed")
INVALID = alert("invalid", repeat=REPEAT)                   # WARN, entry turns invalid
INVALID_BAD = dict(INVALID, intervalSecs="1")
ADDED = alert("added", repeat=300)                          # CRITICAL, new
TIMELINE = {"q-gone": [[0, 250]], "q-changed": [[0, 150]], "q-invalid": [[0, 150]],
            "q-added": [[0, 250]]}
SLACK = 1.5     # evaluation and delivery after the fetch


def alert_row(eng, name):
    r = eng.sql("select name, query, interval_ms, repeat_ms, sustain_ms, warn_value, warn_message, "
                "crit_value, crit_message, updated, retired from alert where name = ?", (name,))
    return r[0] if r else None


def main():
    t0 = time.time()
    wd = Workdir("refresh")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    emu1 = Emulator(wd, alerts=[GONE, CHANGED, INVALID], timeline=TIMELINE, name="before")
    emu2 = None
    rlog = wd.file("after-requests.jsonl")
    eng = Engine(wd, emu1.url, args=["--refresh", "%gs" % REFRESH]).start().wait_started()
    try:
        wait_until(lambda: {a for _, a, _ in calls(emu1.records())} == {"gone", "changed", "invalid"},
                   10, "the three alerts notified")
        invalid_before = alert_row(eng, "invalid")
        emu1.stop()
        emu2 = Emulator(wd, alerts=[CHANGED2, INVALID_BAD, ADDED], timeline=TIMELINE, name="after",
                        port=emu1.port, args=["--request-log", rlog])
        switched = time.time()
        wait_until(lambda: ("resolve", "gone", "") in calls(emu2.records()), REFRESH + SLACK + 1,
                   "the resolve of the removed alert, without SIGHUP")
        got_resolve = time.time()
        wait_until(lambda: ("notify", "added", "critical") in calls(emu2.records()),
                   REFRESH + SLACK + 1 - (time.time() - switched), "the notify of the added alert")
        wait_until(lambda: ("notify", "changed", "warning, changed") in calls(emu2.records()),
                   REFRESH + REPEAT + SLACK + 1, "a notify of the changed alert with its new message")
        # One more repeat period: the invalid alert keeps repeating its old
        # message, the removed one stays quiet.
        time.sleep(REPEAT + 1)
        invalid_after = alert_row(eng, "invalid")
        states = dict(eng.sql("select name, state from alert_status"))
        retired = dict(eng.sql("select name, retired from alert_status"))
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu1.stop()
        if emu2:
            emu2.stop()
    text = eng.log_text()
    check("SIGHUP" not in text and "signal=HUP" not in text, "the daemon saw a SIGHUP")
    recs2 = emu2.records()
    log("after the change:", [(c[0], c[1], c[2]) for c in calls(recs2)])
    check(got_resolve - switched <= REFRESH + SLACK,
          "the removed alert resolved %.1fs after the change, --refresh %gs"
          % (got_resolve - switched, REFRESH))
    check(calls(recs2, "gone") == [("resolve", "gone", "")], "calls of the removed alert: %s"
          % calls(recs2, "gone"))
    check(calls(recs2, "added") == [("notify", "added", "critical")], "calls of the added alert: %s"
          % calls(recs2, "added"))
    # The changed alert kept its state: its notifies are repeats, REPEAT
    # apart across the change, and the new message from the first one
    # enqueued after it.
    changed = [r for r in emu1.records() + recs2 if r["alert"] == "changed"]
    gaps = [b["t"] - a["t"] for a, b in zip(changed, changed[1:])]
    check(all(g >= REPEAT * 1000 - 5 for g in gaps), "notifies of the changed alert %s ms apart" % gaps)
    msgs = [r["message"] for r in changed]
    k = msgs.index("warning, changed")
    check(all(m == "warning" for m in msgs[:k]) and all(m == "warning, changed" for m in msgs[k:]),
          "messages of the changed alert: %s" % msgs)
    # The invalid entry: the stored definition stands.
    warns = [l for l in text.splitlines() if " WARN " in l and "skipping entry" in l]
    check(warns and all("invalid" in l and "intervalSecs" in l for l in warns),
          "warnings about the invalid entry: %s" % warns)
    check(invalid_after == invalid_before, "stored definition of the invalid entry changed:\n%s\n%s"
          % (invalid_before, invalid_after))
    check(retired.get("invalid") == 0 and states.get("invalid") == "WARN",
          "the alert of the invalid entry: retired %s, state %s" % (retired.get("invalid"),
                                                                   states.get("invalid")))
    inv = [(r["kind"], r.get("message")) for r in recs2 if r["alert"] == "invalid"]
    check(inv and all(c == ("notify", "warning") for c in inv),
          "calls of the invalid entry's alert after the change: %s" % inv)
    check(states.get("gone") == "PASS" and retired.get("gone") == 1, "removed alert: state %s retired %s"
          % (states.get("gone"), retired.get("gone")))
    # /alerts every --refresh seconds (the server's view).
    fetches = [r["us"] / 1e6 for r in read_jsonl(rlog) if r["ep"] == "alerts"]
    gaps = [b - a for a, b in zip(fetches, fetches[1:])]
    log("fetches of /alerts %s s apart" % [round(g, 2) for g in gaps])
    check(len(fetches) >= 3 and all(abs(g - REFRESH) <= 0.3 for g in gaps),
          "/alerts fetched %d times, %s s apart, --refresh %gs" % (len(fetches), gaps, REFRESH))
    check_no_sanitizer_reports(wd)
    log("refresh: ok (%.1fs)" % (time.time() - t0))
    wd.cleanup()


if __name__ == "__main__":
    main()
