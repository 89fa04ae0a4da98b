"""Definitions change under a running daemon (the emulator is replaced on
the same port, then SIGHUP): an alert that disappears is retired with
exactly one resolve; a changed message keeps the alert's state and the next
notify carries it. An alert retired while its evaluation is in flight stays
retired when that evaluation is abandoned by a stop. Stored definitions are
used when the server is down at start; with none stored, --once exits 69."""

import json
import signal
import time

from harness import (Emulator, Engine, Workdir, alert, alert_state, calls, check, log, now_ms,
                     wait_until)

REPEAT_MS = 4000
X = alert("x", repeat=4)
X2 = alert("x", repeat=4, warn_msg="warning, again")
Y = alert("y", repeat=300)
TIMELINE = {"q-x": [[0, 150]], "q-y": [[0, 250]]}


def notified(eng, name):
    """last_notified of an alert once its notify is committed, else None."""
    r = eng.sql("select s.last_notified from alert a join alert_state s on s.alert_id = a.id "
                "where a.name = ?", (name,))
    return r[0][0] if r else None


def queried(emu, target):
    with open(emu.query_log) as f:
        return [json.loads(l) for l in f if json.loads(l)["target"] == target]


def requests(path):
    """[(answered at, epoch s; target)] of the /query answers in a request log."""
    try:
        with open(path) as f:
            rs = [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []
    return [(r["us"] / 1e6, r.get("target")) for r in rs if r["ep"] == "query"]


def fetches(path):
    """Answer times (epoch s) of the /alerts requests in a request log."""
    with open(path) as f:
        rs = [json.loads(l) for l in f if l.strip()]
    return [r["us"] / 1e6 for r in rs if r["ep"] == "alerts"]


def retired_in_flight(wd):
    """Every query takes 1.5 s (/alerts is fast) and one evaluation worker
    queries p then q back to back: the moment the server answers p, the
    query of q is on its way. The SIGHUP that retires q is sent then, and
    the SIGTERM as soon as q is retired, so both land while q's query is in
    flight: the server's request log must show a query of q that arrived
    before the definitions fetch of the SIGHUP was answered (q is retired
    after that answer) and was answered after the SIGTERM (else the test
    did not test what it says). q must stay retired: never queried again."""
    latency = 1.5
    slow = ["--query-latency-ms", str(int(latency * 1000))]
    timeline = {"q-p": [[0, 50]], "q-q": [[0, 50]]}
    rlog = wd.file("slow-requests.jsonl")
    emu = Emulator(wd, alerts=[alert("p"), alert("q")], timeline=timeline,
                   args=slow + ["--request-log", rlog], name="slow1")
    emus = [emu]
    eng = Engine(wd, emu.url, db=wd.database("retire"), args=["-c", "1"], name="retire")
    eng.start().wait_started()
    try:
        wait_until(lambda: eng.sql("select count(*) from alert_state where last_eval is not null")
                   [0][0] == 2, 12, "p and q evaluated")
        # The same server without q, on the same port; the engine's
        # connection to the first one is cut, it reconnects.
        emu.stop()
        emu = Emulator(wd, alerts=[alert("p")], timeline=timeline, name="slow2", port=emu.port,
                       args=slow + ["--request-log", rlog])
        emus.append(emu)
        seen = len(requests(rlog))
        wait_until(lambda: any(t == "q-p" for _a, t in requests(rlog)[seen:]), 3 * latency + 2,
                   "an answer to p from the second server")
        t_hup = time.time()
        eng.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: eng.sql("select retired from alert where name = 'q'")[0][0], 6,
                   "q retired")
        t_term = time.time()
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
        emu.stop()
        fetched = [a for a in fetches(rlog) if a > t_hup]
        check(fetched, "no definitions fetch after the SIGHUP")
        in_flight = [(a, t) for a, t in requests(rlog)[seen:]
                     if t == "q-q" and a - latency < fetched[0] and a > t_term]
        check(in_flight, "no query of q was in flight from the fetch the SIGHUP made (%.3f) "
              "to the SIGTERM (%.3f): %s" % (fetched[0], t_term, requests(rlog)[seen:]))
        emu = Emulator(wd, alerts=[alert("p")], timeline=timeline, name="fast", port=emu.port,
                       args=["--query-log", wd.file("fast-queries.jsonl")])
        emu.query_log = wd.file("fast-queries.jsonl")
        emus.append(emu)
        eng.start().wait_started()
        wait_until(lambda: len(queried(emu, "q-p")) >= 3, 6, "p evaluated 3 times")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
        q = alert_state(eng, "q")
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        for e in emus:
            e.stop()
    log("retired in flight: q's query in flight across SIGHUP and SIGTERM; queried %d times "
        "after restart; %s" % (len(queried(emu, "q-q")), q))
    check(queried(emu, "q-q") == [], "retired q evaluated after restart: %s" % queried(emu, "q-q"))
    check(q["retired"] == 1 and q["state"] == "PASS", "alert_status of q: %s" % q)


def main():
    wd = Workdir("definitions")
    emu1 = Emulator(wd, alerts=[X, Y], timeline=TIMELINE, name="emu1")
    emu2 = None
    eng = Engine(wd, emu1.url).start().wait_started()
    try:
        wait_until(lambda: notified(eng, "x") and notified(eng, "y"), 5, "x and y notified")

        # The server now serves x with a new message and no y.
        emu1.stop()
        emu2 = Emulator(wd, alerts=[X2], timeline=TIMELINE, name="emu2", port=emu1.port)
        eng.proc.send_signal(signal.SIGHUP)
        changed = now_ms()
        wait_until(lambda: ("resolve", "y", "") in calls(emu2.records()), 5, "the resolve of y")
        wait_until(lambda: ("notify", "x", "warning, again") in calls(emu2.records()),
                   REPEAT_MS / 1000 + 3, "a notify of x with the new message")
        # Past one more repeat interval of x: y must stay quiet, x keep its pace.
        wait_until(lambda: len([c for c in calls(emu2.records(), "x")]) >= 2,
                   REPEAT_MS / 1000 + 3, "a second notify of x with the new message")
        y = alert_state(eng, "y")
        x = alert_state(eng, "x")
        transitions = eng.sql("select a.name, t.from_state, t.to_state from transition t "
                              "join alert a on a.id = t.alert_id order by t.id")
        new_rows = eng.sql("select o.message from outbox o join alert a on a.id = o.alert_id "
                           "where a.name = 'x' and o.kind = 'notify' and o.created > ("
                           "select updated from alert where name = 'x')")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)

        # The server is down at start; the stored definition of x is used.
        emu2.stop()
        eng.start()
        wait_until(lambda: (alert_state(eng, "x") or {}).get("failures", 0) >= 2, 6,
                   "failed queries of x recorded")
        down = alert_state(eng, "x")
        check(eng.proc.poll() is None, "daemon exited with the server down: %s" % eng.log_text())
        check("using stored definitions" in eng.log_text(),
              "no word of the stored definitions:\n" + eng.log_text())
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)

        # No server and nothing stored.
        rc, _, err = Engine(wd, emu2.url, db=wd.database("fresh"), name="fresh").once()
        check(rc == 69, "--once without definitions: exit %d, expected 69:\n%s" % (rc, err))
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu1.stop()
        if emu2:
            emu2.stop()
    recs = emu1.records() + emu2.records()
    y_calls = calls(recs, "y")
    x_calls = [(k, m) for k, _, m in calls(recs, "x")]
    x_times = [r["t"] for r in recs if r["alert"] == "x"]
    log("y:", y_calls, "| x:", x_calls)
    check(y_calls == [("notify", "y", "critical"), ("resolve", "y", "")], "calls of y: %s" % y_calls)
    check(y["retired"] == 1 and y["state"] == "PASS", "alert_status of y: %s" % y)
    check(x["retired"] == 0 and x["state"] == "WARN", "alert_status of x: %s" % x)
    check(transitions == [("x", "PASS", "WARN"), ("y", "PASS", "CRITICAL"),
                          ("y", "CRITICAL", "PASS")] or
          transitions == [("y", "PASS", "CRITICAL"), ("x", "PASS", "WARN"),
                          ("y", "CRITICAL", "PASS")], "transitions: %s" % transitions)
    # The state was kept: no new PASS->WARN notify at the change, the repeats
    # keep their pace, and every notify enqueued after the change says the new message.
    gaps = [b - a for a, b in zip(x_times, x_times[1:])]
    check(all(g >= REPEAT_MS for g in gaps), "x notified %s ms apart" % gaps)
    check(all(k == "notify" for k, _ in x_calls), "calls of x: %s" % x_calls)
    msgs = [m for _, m in x_calls]
    first_new = msgs.index("warning, again")
    check(all(m == "warning" for m in msgs[:first_new]) and
          all(m == "warning, again" for m in msgs[first_new:]), "messages of x: %s" % msgs)
    check(new_rows and all(m == "warning, again" for (m,) in new_rows),
          "notifies of x enqueued after the change: %s" % new_rows)
    check(down["last_error"], "no last_error with the server down: %s" % down)
    log("server down at start: x failures=%d last_error=%s" % (down["failures"], down["last_error"]))
    retired_in_flight(wd)
    log("definitions: ok (change at %d)" % changed)
    wd.cleanup()


if __name__ == "__main__":
    main()
