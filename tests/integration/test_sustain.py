"""sustainSecs 3, intervalSecs 1, for WARN and for CRITICAL: a 2 s spike
above the threshold does not notify; a longer run notifies once, only
after the value has been above for 3 s of evaluations; moving down is
immediate (CRITICAL to WARN, and back to PASS).

Judged from the server's side: the emulator's query log gives the
arrival of every query, its timeline the value each one was served, and
its record the time of each accepted call. The run's sustain clock starts
at the first query served a value above the threshold; the notify may
not come before 3 s after it, and must come with the first evaluation at
or after 3 s (a query DECIDE_MS after that at most: evaluation times jitter
by a few ms against the queries) plus DELIVER_MS to deliver. A step down
is notified within DELIVER_MS of the first query that was served it."""

import signal
import time

from fault_helpers import query_times, start_emulator
from harness import Engine, Workdir, alert, calls, check, log

SUSTAIN_MS = 3000
DECIDE_MS = 100
DELIVER_MS = 500
EARLY_MS = 20
# emulator seconds of each step
TIMELINE = {
    "q-s": [[0, 50], [2, 150], [4, 50], [6, 150], [11, 50]],                  # WARN
    "q-c": [[0, 50], [2, 250], [4, 50], [6, 250], [12, 150], [15, 50]],       # CRITICAL
}
EXPECTED = {
    "s": [(("notify", "warning"), 6, "up"), (("resolve", ""), 11, "down")],
    "c": [(("notify", "critical"), 6, "up"), (("notify", "warning"), 12, "down"),
          (("resolve", ""), 15, "down")],
}
END = 17


def main():
    wd = Workdir("sustain")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    qlog = wd.file("queries.jsonl")
    emu = start_emulator(wd, alerts=[alert("s", sustain=3, repeat=300),
                                     alert("c", sustain=3, repeat=300)],
                         timeline=TIMELINE, args=["--query-log", qlog])
    eng = Engine(wd, emu.url).start().wait_started()
    try:
        # the whole timeline, and one more evaluation: anything that should
        # not come would come by then
        time.sleep(max(0, emu.started + END + 1.2 - time.time()))
        trans = eng.sql("select a.name, t.from_state, t.to_state from transition t join alert a "
                        "on a.id = t.alert_id order by t.id")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    queries = query_times(qlog)          # target -> [ms]
    recs = emu.records()
    for name, want in EXPECTED.items():
        got = [((k, m), t) for (k, _a, m), t in zip(calls(recs, name),
                                                     [r["t"] for r in recs if r["alert"] == name])]
        check([c for c, _ in got] == [c for c, _, _ in want], "calls of %s: %s" % (name, got))
        qs = queries["q-" + name]
        for (call, step, how), (_, t) in zip(want, got):
            # the first query certainly served the step: after it, by the
            # emulator clock's latest possible start
            after = [q for q in qs if q >= (emu.started + step) * 1000]
            check(after, "%s: no query after the step at %d s" % (name, step))
            first = after[0]
            if how == "up":
                decided_by = min(q for q in qs if q >= first + SUSTAIN_MS + DECIDE_MS)
                log("%s: run from %d ms: %s accepted %d ms after its first query above "
                    "(allowed %d..%d)" % (name, step * 1000, call, t - first, SUSTAIN_MS,
                                          decided_by + DELIVER_MS - first))
                check(t >= first + SUSTAIN_MS - EARLY_MS,
                      "%s: %s %d ms after the run's first evaluation, sustainSecs 3"
                      % (name, call, t - first))
                check(t <= decided_by + DELIVER_MS,
                      "%s: %s %d ms after the run's first evaluation: the evaluation at "
                      "%d ms had seen 3 s of it" % (name, call, t - first, decided_by - first))
            else:
                log("%s: step down at %d s: %s accepted %d ms after the first query of it"
                    % (name, step, call, t - first))
                check(first <= t + EARLY_MS and t <= first + DELIVER_MS,
                      "%s: %s accepted %d ms after the first query served the step down"
                      % (name, call, t - first))
    # the history: the spikes left no transition, the runs one each way
    for name, want in (("s", [("PASS", "WARN"), ("WARN", "PASS")]),
                       ("c", [("PASS", "CRITICAL"), ("CRITICAL", "WARN"), ("WARN", "PASS")])):
        got = [(f, t) for n, f, t in trans if n == name]
        check(got == want, "transitions of %s: %s" % (name, got))
    log("sustain: ok")
    wd.cleanup()


if __name__ == "__main__":
    main()
