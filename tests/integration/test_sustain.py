"""sustainSecs 3, intervalSecs 1: a 2 s spike above warn does not notify; a
5 s run notifies once, only after the value has been above for 3 s of
evaluations; the drop resolves at once (within an interval and a second)."""

import signal
import time

from harness import Emulator, Engine, Workdir, alert, calls, check, log, wait_until

SUSTAIN_MS = 3000
SPIKE = (2, 4)        # emulator seconds with the value above warn
RUN = (6, 11)
TIMELINE = {"q-s": [[0, 50], [SPIKE[0], 150], [SPIKE[1], 50], [RUN[0], 150], [RUN[1], 50]]}


def state(eng):
    """(state, last_value, warn_since) of s; Nones before its definition is stored."""
    r = eng.sql("select s.state, s.last_value, s.warn_since from alert a join alert_state s "
                "on s.alert_id = a.id where a.name = 's'")
    return r[0] if r else (None, None, None)


def main():
    wd = Workdir("sustain")
    spawned = time.time()  # the emulator's clock starts after this ...
    emu = Emulator(wd, alerts=[alert("s", sustain=3, repeat=300)], timeline=TIMELINE)
    listening = time.time()  # ... and before this
    eng = Engine(wd, emu.url).start().wait_started()
    try:
        # The spike is seen by the evaluations, and does not escalate.
        wait_until(lambda: state(eng)[1] == 150, SPIKE[1] + 2, "an evaluation of the spike")
        wait_until(lambda: state(eng)[1] == 50, 4, "an evaluation after the spike")
        check(calls(emu.records()) == [], "the 2 s spike notified: %s" % emu.records())
        check(state(eng)[0] == "PASS", "state after the spike: %s" % (state(eng),))

        # The run: one notify after the value has been above for 3 s.
        wait_until(lambda: calls(emu.records()), RUN[0] + SUSTAIN_MS / 1000 + 4 - (time.time() - listening),
                   "the notify of the 5 s run")
        _, _, warn_since = state(eng)
        went_warn = eng.sql("select at from transition where to_state = 'WARN'")
        wait_until(lambda: ("resolve", "s", "") in calls(emu.records()),
                   RUN[1] + 3 - (time.time() - listening), "the resolve after the drop")
        time.sleep(1.2)  # one more evaluation: anything that should not come would come now
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    recs = emu.records()
    log("calls:", [(r["kind"], r["t"]) for r in recs])
    check(calls(recs) == [("notify", "s", "warning"), ("resolve", "s", "")], "calls: %s" % calls(recs))
    check(len(went_warn) == 1, "transitions to WARN: %s" % went_warn)
    notify_t, resolve_t = recs[0]["t"], recs[1]["t"]
    # The run's clock starts at the first evaluation above warn, which cannot
    # precede RUN[0]; the escalation needs SUSTAIN_MS more of evaluations.
    check(warn_since >= spawned * 1000 + RUN[0] * 1000,
          "sustain clock started %d ms before the run" % (spawned * 1000 + RUN[0] * 1000 - warn_since))
    check(went_warn[0][0] - warn_since >= SUSTAIN_MS,
          "escalated %d ms after the run started" % (went_warn[0][0] - warn_since))
    check(notify_t >= went_warn[0][0], "notify before the transition")
    # Moving down is immediate: the first evaluation after the drop.
    late = resolve_t - (listening * 1000 + RUN[1] * 1000)
    log("escalated %d ms into the run; resolved at most %d ms after the drop"
        % (went_warn[0][0] - warn_since, late))
    check(late <= 2000, "resolve %d ms after the drop" % late)
    log("sustain: ok")
    wd.cleanup()


if __name__ == "__main__":
    main()
