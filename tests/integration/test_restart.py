"""Restarts keep the schedule of calls: after kill -9 and after SIGTERM, a
firing alert's repeat comes no earlier than repeatIntervalSecs after the
last delivered notify (and not much later), never twice; a state change
that happens while the daemon is down is notified once after restart."""

import signal
import sys

from fault_helpers import check_no_sanitizer_reports
from harness import Emulator, Engine, Workdir, alert, calls, check, log, now_ms, wait_until

REPEAT_MS = 4000
LATE_MS = REPEAT_MS + 1000 + 2000  # repeat + one interval + delivery slack

ALERTS = [alert("a", repeat=4), alert("b", repeat=300)]


def row(eng, name):
    """(state, last_notified ms, last_value, pending calls) of an alert."""
    r = eng.sql("select s.state, s.last_notified, s.last_value, "
                "(select count(*) from outbox o where o.alert_id = a.id and o.status = 'pending') "
                "from alert a join alert_state s on s.alert_id = a.id where a.name = ?", (name,))
    return r[0] if r else None


def delivered_after(eng, name, after):
    """Waits until a notify of name delivered after `after` (ms) is committed,
    with nothing of it left in the outbox; returns last_notified."""
    def done():
        r = row(eng, name)
        return r and r[1] is not None and r[1] > after and r[3] == 0 and r[1]
    return wait_until(done, 10, "a delivered notify of %s committed" % name)


def notify_times(emu, name):
    return [r["t"] for r in emu.records() if r["alert"] == name and r["kind"] == "notify"]


def restart_keeps_repeat(eng, emu, sig):
    """The last notify of a is committed; stops the daemon with sig, starts
    it again at once and checks when the next notify of a arrives."""
    before = notify_times(emu, "a")
    rc, took = eng.kill(sig)
    # SIGTERM: a clean exit; SIGKILL: killed by it, not dead before
    check(rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL),
          "exit status %d after %s:\n%s" % (rc, signal.Signals(sig).name, eng.log_text()[-2000:]))
    eng.start()
    log("%s: daemon down %.2fs, restarted" % (signal.Signals(sig).name, took))
    wait_until(lambda: len(notify_times(emu, "a")) > len(before), LATE_MS / 1000 + 3,
               "the repeat of a after %s" % signal.Signals(sig).name)
    after = notify_times(emu, "a")
    check(len(after) == len(before) + 1, "one repeat expected, got %s" % after[len(before):])
    gap = after[-1] - before[-1]
    log("%s: repeat %d ms after the previous notify" % (signal.Signals(sig).name, gap))
    check(gap >= REPEAT_MS, "repeat %d ms after the last notify: earlier than %d ms"
          % (gap, REPEAT_MS))
    check(gap <= LATE_MS, "repeat %d ms after the last notify: later than %d ms" % (gap, LATE_MS))


def main():
    wd = Workdir("restart")
    emu = Emulator(wd, alerts=ALERTS, timeline={"q-a": [[0, 150]], "q-b": [[0, 50]]},
                   args=["--validate"], name="emu1")
    emu2 = None
    eng = Engine(wd, emu.url).start().wait_started()
    try:
        first = delivered_after(eng, "a", 0)
        restart_keeps_repeat(eng, emu, signal.SIGKILL)
        second = delivered_after(eng, "a", first)
        restart_keeps_repeat(eng, emu, signal.SIGTERM)
        delivered_after(eng, "a", second)

        # b was evaluated PASS; it goes WARN while the daemon is down.
        wait_until(lambda: row(eng, "b")[2] == 50, 5, "b evaluated PASS")
        rc, _ = eng.kill(signal.SIGKILL)
        check(rc == -signal.SIGKILL, "exit status %d before the SIGKILL:\n%s"
              % (rc, eng.log_text()[-2000:]))
        emu.stop()
        emu2 = Emulator(wd, alerts=ALERTS, timeline={"q-a": [[0, 150]], "q-b": [[0, 150]]},
                        name="emu2")
        eng.server = emu2.url
        eng.start()
        restarted = now_ms()
        wait_until(lambda: ("notify", "b", "warning") in calls(emu2.records()), 5,
                   "the notify of b after restart")
        # Two more evaluations of b: anything that should not come would come now.
        wait_until(lambda: eng.sql("select count(*) from alert a join alert_state s on "
                                   "s.alert_id = a.id where a.name = 'b' and s.last_eval > ?",
                                   (restarted + 2000,))[0][0] == 1, 6,
                   "b evaluated 2 s after restart")
        b_calls = calls(emu.records(), "b") + calls(emu2.records(), "b")
        transitions = eng.sql("select from_state, to_state from transition t join alert a "
                              "on a.id = t.alert_id where a.name = 'b' order by t.id")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu_rc = emu.stop()
        if emu2:
            emu2.stop()
    log("b:", b_calls, transitions)
    check(b_calls == [("notify", "b", "warning")], "calls of b: %s" % b_calls)
    check(transitions == [("PASS", "WARN")], "transitions of b: %s" % transitions)
    check(emu_rc == 0, "emulator validator found errors:\n" + emu.read_stderr())
    check_no_sanitizer_reports(wd)
    log("restart: ok")
    wd.cleanup()


if __name__ == "__main__":
    main()
