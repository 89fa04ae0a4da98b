"""A server slower than the engine's --timeout (500 ms; the server answers
after 1.5 s): every query fails, as a failure (the alert keeps its state,
alert_status counts failures and shows the error), a waiting call is
retried with backoff, and SIGTERM still ends the daemon, status 0, within
--timeout + 1 s. Once the server is fast again the waiting call goes
through, before the resolve that follows it.

1. Fast server: alert a goes CRITICAL; every notify is answered 500, so
   its notify waits in the outbox. Alert b is PASS.
2. The same port, a server answering after 1.5 s whose values would make
   a PASS: nothing changes, queries and the notify time out.
3. SIGTERM while queries and calls are in flight: measured. The slow
   server took every notify the engine gave up on (it answers after the
   engine's timeout): those are the at-least-once copies, and each
   timed-out attempt was one request, not -r of them (a notify that may
   have reached the server is not sent again at once), judged from its
   request log against the attempts the outbox counts.
4. Fast, healthy server: after a restart the notify of a goes through,
   then its resolve."""

import signal
import time

from fault_helpers import check_no_sanitizer_reports, read_jsonl, sql, undelivered
from harness import Emulator, Engine, Workdir, alert, alert_state, calls, check, log, wait_until

TIMEOUT_MS = 500
LATENCY_MS = 1500
ALERTS = [alert("a"), alert("b")]


def main():
    wd = Workdir("slow-server")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    t0 = time.time()
    emu = Emulator(wd, alerts=ALERTS, timeline={"q-a": [[0, 500]], "q-b": [[0, 50]]},
                   args=["--fail-rate-notify", "1"], name="fast")
    port = emu.port
    eng = Engine(wd, emu.url, args=["--timeout", "%dms" % TIMEOUT_MS])
    slow = healthy = None
    try:
        eng.start().wait_started()
        wait_until(lambda: (alert_state(eng, "a") or {}).get("state") == "CRITICAL", 10,
                   "a CRITICAL")
        wait_until(lambda: sql(eng.db, "select attempts from outbox where status = 'pending'")
                   and sql(eng.db, "select attempts from outbox")[0][0] >= 1, 10,
                   "the notify of a failing")
        emu.stop()

        rlog = wd.file("slow-requests.jsonl")
        slow = Emulator(wd, alerts=ALERTS, timeline={"q-a": [[0, 50]], "q-b": [[0, 50]]},
                        args=["--latency-ms", str(LATENCY_MS), "--request-log", rlog],
                        name="slow", port=port)
        switched = time.time()
        attempts_before = sql(eng.db, "select attempts from outbox")[0][0]
        failures_before = dict(sql(eng.db, "select name, failures from alert_status"))
        time.sleep(6)
        a, b = alert_state(eng, "a"), alert_state(eng, "b")
        log("after 6 s of a slow server: a=%s b=%s" % (a, b))
        for st, name, state in ((a, "a", "CRITICAL"), (b, "b", "PASS")):
            check(st["state"] == state, "%s: state %s, expected it kept at %s" % (name, st["state"], state))
            check(st["failures"] > failures_before.get(name, 0),
                  "%s: failures %d, not counting the timeouts" % (name, st["failures"]))
            check(st["last_error"] and "timed out" in st["last_error"].lower(),
                  "%s: last_error %r" % (name, st["last_error"]))
        rows = sql(eng.db, "select kind, status, attempts, last_error from outbox")
        check(len(rows) == 1, "the only call is the notify of a: %s" % rows)
        kind, status, attempts, last_error = rows[0]
        check(status == "pending" and attempts > attempts_before,
              "the notify of a was not retried: %s (attempts before %d)" % (rows[0], attempts_before))
        check("timed out" in (last_error or "").lower(), "notify last_error %r" % last_error)
        # backoff, not a loop: 6 s allow 0.25-0.5, 0.5-1, 1-2, 2-4 s waits, plus
        # the attempt the switch caught and the first one
        check(attempts - attempts_before <= 6, "%d notify attempts in 6 s" % (attempts - attempts_before))
        log("notify of a: attempts %d -> %d, last error %r" % (attempts_before, attempts, last_error))

        log_text = eng.log_text()
        check("query failed alert=a" in log_text and "delivery failed kind=notify alert=a" in log_text,
              "no query or delivery failures logged")
        rc, took = eng.kill(signal.SIGTERM)
        log("SIGTERM: exit %d in %.3fs (bound %.3fs)" % (rc, took, TIMEOUT_MS / 1000 + 1))
        check(rc == 0, "exit status %d after SIGTERM" % rc)
        check(took <= TIMEOUT_MS / 1000 + 1, "stopped in %.3fs, over --timeout + 1 s" % took)
        leased = sql(eng.db, "select count(*) from outbox where lease_until is not null")
        check(leased == [(0,)], "calls left leased after SIGTERM: %s" % leased)
        check(undelivered(eng.db) == 1, "the notify of a is still waiting")
        attempts_after = sql(eng.db, "select attempts from outbox")[0][0]
        slow.stop()
        late = [c for c in calls(slow.records())]
        reqs = [r for r in read_jsonl(rlog) if r["ep"] == "notify"]
        made = attempts_after - attempts_before
        log("the slow server got %d notify requests for %d failed attempts and accepted %d "
            "(after the engine had given up on them: at-least-once, they are retried)"
            % (len(reqs), made, len(late)))
        check(late and all(c == ("notify", "a", "critical") for c in late),
              "the slow server accepted no notify the engine gave up on: %s" % late)
        # one request per attempt; one more may have been cut short by the
        # stop (released, not counted as an attempt)
        check(made <= len(reqs) <= made + 1,
              "%d notify requests for %d timed-out attempts (-r 3 would resend at once)"
              % (len(reqs), made))

        healthy = Emulator(wd, alerts=ALERTS, timeline={"q-a": [[0, 50]], "q-b": [[0, 50]]},
                           name="healthy", port=port)
        eng.start().wait_started()
        wait_until(lambda: ("resolve", "a", "") in calls(healthy.records()), 15,
                   "the resolve of a")
        got = calls(healthy.records(), "a")
        check(got[:2] == [("notify", "a", "critical"), ("resolve", "a", "")],
              "calls of a once the server is fast: %s" % got)
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
            eng.proc.wait()
        for e in (emu, slow, healthy):
            if e:
                e.stop()
    log("slow-server: ok (%.1fs, slow phase from %.1fs)" % (time.time() - t0, switched - t0))
    check_no_sanitizer_reports(wd)
    wd.cleanup()


if __name__ == "__main__":
    main()
