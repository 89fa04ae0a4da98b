"""The schedule of evaluations, judged from the queries the server answered
(the emulator's --request-log, every request with its status):

1. spread: 30 new alerts with intervalSecs 5 are first evaluated within
   their first interval, spread over it (not all at once: no half-second
   of the interval holds more than a third of them, and most half-seconds
   hold some), then every 5 s at a fixed rate.
2. after a stop longer than an interval (4 s at intervalSecs 1), each
   alert is evaluated once within an interval of the restart and then
   every second: the missed evaluations are not replayed.
3. a failed query waits for the next interval: alerts that are WARN, then
   every query answered 500. Each evaluation makes its -r immediate
   attempts (3 requests within moments) and the next one comes an
   interval later, not sooner; the state stays WARN, the failures and the
   error are recorded, nothing is sent."""

import signal
import time

from fault_helpers import check_no_sanitizer_reports, read_jsonl, sql
from harness import Emulator, Engine, Workdir, alert, check, log, wait_until

SLACK_MS = 300      # a query against its schedule, on a busy 2-core machine


def query_requests(path, target=None):
    """{target: [(epoch s, status)]} of the /query requests answered."""
    out = {}
    for r in read_jsonl(path):
        if r["ep"] == "query" and (target is None or r["target"] == target):
            out.setdefault(r["target"], []).append((r["us"] / 1e6, r["status"]))
    return out


def check_spread(wd):
    n, interval = 30, 5.0
    alerts = [alert("s%02d" % i, interval=int(interval), repeat=300) for i in range(n)]
    rlog = wd.file("spread-requests.jsonl")
    emu = Emulator(wd, alerts=alerts, timeline={a["query"]: [[0, 10]] for a in alerts},
                   name="spread", args=["--request-log", rlog])
    eng = Engine(wd, emu.url, db=wd.database("spread"), name="spread")
    try:
        eng.start().wait_started()
        wait_until(lambda: "definitions loaded" in eng.log_text(), 10, "definitions")
        loaded = time.time()
        time.sleep(2 * interval + 1.5)
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    per = query_requests(rlog)
    check(len(per) == n, "%d of %d alerts queried" % (len(per), n))
    firsts = []
    for a in alerts:
        ts = [t for t, s in per[a["query"]]]
        firsts.append(ts[0] - loaded)
        check(-SLACK_MS / 1000 <= ts[0] - loaded <= interval + SLACK_MS / 1000,
              "%s first queried %.2fs after the definitions were loaded, interval %gs"
              % (a["name"], ts[0] - loaded, interval))
        # then at a fixed rate
        for k, (t1, t2) in enumerate(zip(ts, ts[1:])):
            check(abs(t2 - t1 - interval) <= SLACK_MS / 1000,
                  "%s: queries %d and %d %.2fs apart, interval %gs" % (a["name"], k + 1, k + 2,
                                                                     t2 - t1, interval))
        check(len(ts) >= 2, "%s queried %d times in %.1fs" % (a["name"], len(ts), 2 * interval))
    buckets = [0] * int(interval * 2)
    for f in firsts:
        buckets[min(max(int(f * 2), 0), len(buckets) - 1)] += 1
    log("spread: first queries per half second of the first interval: %s" % buckets)
    check(max(buckets) <= n // 3, "%d of %d alerts first evaluated in one half-second: %s"
          % (max(buckets), n, buckets))
    check(sum(1 for b in buckets if b) >= len(buckets) * 6 // 10,
          "first evaluations in only %d of %d half-seconds: %s"
          % (sum(1 for b in buckets if b), len(buckets), buckets))


def check_no_replay(wd):
    interval, down = 1.0, 4.0
    alerts = [alert("r%d" % i, interval=int(interval), repeat=300) for i in range(8)]
    rlog = wd.file("replay-requests.jsonl")
    emu = Emulator(wd, alerts=alerts, timeline={a["query"]: [[0, 10]] for a in alerts},
                   name="replay", args=["--request-log", rlog])
    eng = Engine(wd, emu.url, db=wd.database("replay"), name="replay")
    try:
        eng.start().wait_started()
        time.sleep(3)
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
        time.sleep(down)
        restart = time.time()
        eng.start().wait_started()
        time.sleep(3.2)
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    per = query_requests(rlog)
    for a in alerts:
        ts = [t for t, _s in per.get(a["query"], []) if t >= restart]
        check(len(ts) >= 3, "%s queried %d times in the 3 s after the restart" % (a["name"], len(ts)))
        check(ts[0] - restart <= interval + SLACK_MS / 1000,
              "%s first queried %.2fs after the restart" % (a["name"], ts[0] - restart))
        gaps = [b - t for t, b in zip(ts, ts[1:])]
        check(all(abs(g - interval) <= SLACK_MS / 1000 for g in gaps),
              "%s: queries after a %gs stop %s s apart: missed evaluations replayed?"
              % (a["name"], down, [round(g, 2) for g in gaps]))
    log("no replay: after a %gs stop each alert queried once within %.2fs, then every %gs"
        % (down, max(min(t for t, _s in per[a["query"]] if t >= restart) - restart
                     for a in alerts), interval))


def check_failed_query_waits(wd):
    interval, attempts = 2.0, 3
    alerts = [alert("w%d" % i, interval=int(interval), repeat=300) for i in range(4)]
    timeline = {a["query"]: [[0, 150]] for a in alerts}
    healthy = Emulator(wd, alerts=alerts, timeline=timeline, name="healthy")
    eng = Engine(wd, healthy.url, db=wd.database("failing"), name="failing",
                 args=["-r", str(attempts)])
    rlog = wd.file("failing-requests.jsonl")
    failing = None
    try:
        eng.start().wait_started()
        wait_until(lambda: sql(eng.db, "select count(*) from outbox where status = 'delivered'")
                   [0][0] == len(alerts), 10, "every alert WARN and notified")
        healthy.stop()
        failing = Emulator(wd, alerts=alerts, timeline=timeline, name="failing", port=healthy.port,
                           args=["--request-log", rlog, "--fail-rate-query", "1"])
        switched = time.time()
        time.sleep(4 * interval + 0.5)
        rows = sql(eng.db, "select name, state, failures, last_error from alert_status order by name")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        healthy.stop()
        if failing:
            failing.stop()
    per = query_requests(rlog)
    check(len(per) == len(alerts), "%d of %d alerts queried by the failing server"
          % (len(per), len(alerts)))
    for a in alerts:
        reqs = per[a["query"]]
        check(all(s == 500 for _, s in reqs), "%s: a query was not answered 500" % a["name"])
        # Requests within 0.5 s of one another are one evaluation's attempts.
        evals = [[reqs[0][0]]]
        for (t1, _), (t2, _) in zip(reqs, reqs[1:]):
            if t2 - t1 < 0.5:
                evals[-1].append(t2)
            else:
                evals.append([t2])
        sizes = [len(e) for e in evals]
        starts = [e[0] - switched for e in evals]
        log("%s: evaluations at %s s after the switch, %s requests each"
            % (a["name"], [round(s, 2) for s in starts], sizes))
        gaps = [b[0] - e[0] for e, b in zip(evals, evals[1:])]
        check(gaps and all(abs(g - interval) <= SLACK_MS / 1000 for g in gaps),
              "%s: failed evaluations %s s apart, intervalSecs %g: a failed query waits for "
              "the next interval" % (a["name"], [round(g, 2) for g in gaps], interval))
        check(all(k == attempts for k in sizes[:-1]) and 1 <= sizes[-1] <= attempts,
              "%s: requests per evaluation %s, -r is %d" % (a["name"], sizes, attempts))
    for name, state, failures, last_error in rows:
        check(state == "WARN" and failures >= 3 and last_error and "500" in last_error,
              "%s after failed queries: state %s failures %s last_error %r"
              % (name, state, failures, last_error))
    check(failing.records() == [], "calls sent on failed queries: %s" % failing.records())


def main():
    t0 = time.time()
    wd = Workdir("schedule")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    check_spread(wd)
    check_no_replay(wd)
    check_failed_query_waits(wd)
    check_no_sanitizer_reports(wd)
    log("schedule: ok (%.1fs)" % (time.time() - t0))
    wd.cleanup()


if __name__ == "__main__":
    main()
