"""Several engines on one PostgreSQL database, killed with SIGKILL again and
again, restarted under their own --engine-id or a new one, some stopped
gracefully for good and others added.

300 alerts at 1 s whose values follow cycling timelines (repeat 3 s), the
emulator recording every accepted call (--record) and every request with
its User-Agent (--request-log), three engines at first, --lease 3s. Every
ENGINES_STEP_S (default 1.5) one change: mostly a kill -9 of a random
engine and its restart (under the same id half of the time, else a new
one); every seventh change a graceful stop of an engine that is not
restarted and a new engine in its place. ENGINES_KILLS (default 30) kills
in all. Then every engine stops gracefully, and --once runs deliver what
is left.

What is judged:
- every outbox row reached the server, each alert's calls in the outbox's
  order; a call that arrives again right after itself is a duplicate, and
  there are at most as many as kills (one delivery worker per engine: at
  most one call in flight when it dies) plus graceful handovers;
- no alert queried by two engines (the User-Agent names the engine) less
  than half an interval apart: one engine evaluates an alert at a time
  (but for a query a kill or a graceful stop cut off, in its last
  second: it is never written, and the next holder makes it at once);
- after each kill of an engine that is not restarted under its own id,
  every alert it queried in the second before is queried again, by
  another engine, within lease + 2 s; when an engine that claimed shards
  after that kill was killed too before the alert was queried, it may
  have taken the alert over and died before querying it, so the wait is
  timed from its kill (and so on, kill to kill);
- every engine logged its id in its start line, and none exits other
  than 0 on SIGTERM.

Registered as integration_pg_engines (fixture pg, lock daemon_timing_pg).
Summary line: pg-engines: seed=.. kills=.. stops=.. calls=.. duplicates=..
takeover_max=..
"""

import datetime
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import ON_PG, Engine, Workdir, check, log, wait_until  # noqa: E402
from fault_helpers import (SHAPE_CYCLE, cycling_alerts, outbox_rows, read_jsonl,  # noqa: E402
                           start_emulator, undelivered)

LEASE_S = 3
KILLS = int(os.environ.get("ENGINES_KILLS", "30"))
STEP_S = float(os.environ.get("ENGINES_STEP_S", "1.5"))
ALERTS = 300


# Every process a test started: killed when it fails, so that no engine
# is left running against a server that goes away.
STARTED = []


def track(obj):
    STARTED.append(obj.proc)
    return obj


def reap():
    for p in STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()


def engine_of(ua):
    """The engine id in a User-Agent "alert-exec/VERSION (ID)"."""
    if ua and ua.endswith(")") and " (" in ua:
        return ua[ua.index(" (") + 2:-1]
    return None


class Fleet:
    """The running engines on one database, by id."""

    def __init__(self, wd, emu, db):
        self.wd, self.emu, self.db = wd, emu, db
        self.running = {}
        self.count = 0
        self.runs = 0
        self.kills = []   # (time, id, restarted under the same id, its log)
        self.stops = 0
        self.stopped = {}  # engine: [(SIGTERM or SIGKILL sent, exited)]

    def start(self, eid=None):
        if eid is None:
            self.count += 1
            eid = "e%d" % self.count
        self.runs += 1
        eng = Engine(self.wd, self.emu.url, db=self.db, name="%s-run%d" % (eid, self.runs),
                     args=["--engine-id", eid, "--lease", "%ds" % LEASE_S, "-c", "16"])
        track(eng.start()).wait_started(30)
        check(("engine=%s " % eid) in eng.log_text(), "%s: no engine= in its start line" % eid)
        self.running[eid] = eng
        return eid

    def kill(self, rng):
        eid = rng.choice(sorted(self.running))
        eng = self.running.pop(eid)
        sent = time.time()
        eng.kill(signal.SIGKILL)
        self.stopped.setdefault(eid, []).append((sent, time.time()))
        same = rng.random() < 0.5
        self.kills.append((time.time(), eid, same, eng.stderr_path))
        self.start(eid if same else None)

    def stop_one(self, rng):
        eid = rng.choice(sorted(self.running))
        eng = self.running.pop(eid)
        sent = time.time()
        rc, took = eng.kill(signal.SIGTERM, timeout=30)
        self.stopped.setdefault(eid, []).append((sent, time.time()))
        check(rc == 0, "%s: SIGTERM exit %d" % (eid, rc))
        self.stops += 1
        self.start()

    def stop_all(self):
        for eid, eng in sorted(self.running.items()):
            sent = time.time()
            rc, _ = eng.kill(signal.SIGTERM, timeout=30)
            self.stopped.setdefault(eid, []).append((sent, time.time()))
            check(rc == 0, "%s: SIGTERM exit %d" % (eid, rc))
        self.running = {}


def check_calls(db, records):
    """Every outbox row delivered, in order per alert; returns (calls,
    duplicates)."""
    rows = outbox_rows(db)
    by_alert = {}
    for r in records:
        by_alert.setdefault(r["alert"], []).append(
            (r["kind"], r.get("message") if r["kind"] == "notify" else None))
    total = dups = 0
    for name, want in rows.items():
        got = by_alert.pop(name, [])
        wanted = [(w[1], w[2] if w[1] == "notify" else None) for w in want]
        total += len(wanted)
        j = 0
        for call in got:
            if j < len(wanted) and call == wanted[j]:
                j += 1
            elif j > 0 and call == wanted[j - 1]:
                dups += 1
            else:
                raise AssertionError("%s: call %r out of order; outbox %r, received %r"
                                     % (name, call, wanted, got))
        check(j == len(wanted), "%s: %d of %d calls delivered: outbox %r, received %r"
              % (name, j, len(wanted), wanted, got))
        for w in want:
            check(w[3] == "delivered", "%s: outbox row %r not delivered" % (name, w))
    check(not by_alert, "calls of alerts without outbox rows: %r" % sorted(by_alert))
    return total, dups


def queries(emu_log):
    """{target: [(seconds, engine)]} of the answered queries."""
    out = {}
    for r in read_jsonl(emu_log):
        if r.get("ep") == "query" and "target" in r:
            eid = engine_of(r.get("ua"))
            check(eid is not None, "a query without the engine in its User-Agent: %r" % r)
            out.setdefault(r["target"], []).append((r["us"] / 1e6, eid))
    for v in out.values():
        v.sort()
    return out


def check_one_evaluator(qs, stops=None):
    """No target queried by two engines less than half an interval apart,
    but for a query that a kill or a graceful stop cut off (stops:
    {engine: [(when it was sent SIGKILL or SIGTERM, when it had exited)]},
    a query from a second before the signal to the exit): its evaluation
    is never written, and the next holder makes it at once (a restart
    under the same id gives its shards back at once, so that may be
    another engine right away)."""
    stops = stops or {}
    for target, seq in qs.items():
        for (t1, e1), (t2, e2) in zip(seq, seq[1:]):
            if e1 == e2 or t2 - t1 >= 0.5:
                continue
            if any(sent - 1.0 <= t1 <= gone for sent, gone in stops.get(e1, [])):
                continue
            raise AssertionError("%s queried by %s at %.3f and by %s at %.3f"
                                 % (target, e1, t1, e2, t2))


def claims(log_path):
    """The times (epoch seconds) an engine's log says it claimed shards."""
    out = []
    with open(log_path) as f:
        for line in f:
            if " claimed shards " in line:
                t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
                out.append(t.replace(tzinfo=datetime.timezone.utc).timestamp())
    return out


def last_kill_in_chain(tk, until, all_kills):
    """The kill from which a takeover is timed: tk, or the kill of an
    engine that claimed shards after tk and was killed before the alert
    was queried again (before `until`): it may have taken the alert over
    and died before querying it, and its fresh lease must then run out in
    turn. Followed from kill to kill."""
    k = tk
    for t, _, _, log_path in sorted(all_kills):
        if k < t < until and any(k < c <= t for c in claims(log_path)):
            k = t
    return k


def check_takeovers(qs, kills, all_kills):
    """The alerts a killed engine queried in its last second are queried
    again within lease + 2 s of that kill, or of the last kill of a chain
    (last_kill_in_chain). Returns the longest wait and how many waits
    met the bound only through a chain."""
    worst = 0.0
    chained = 0
    for tk, eid, same, _ in kills:
        for target, seq in qs.items():
            if not any(e == eid and tk - 1.0 <= t <= tk for t, e in seq):
                continue
            after = [t for t, e in seq if t > tk]
            check(after, "%s: never queried after %s was killed at %.3f" % (target, eid, tk))
            k = last_kill_in_chain(tk, after[0], all_kills)
            chained += after[0] - tk > LEASE_S + 2
            wait = after[0] - k
            check(wait <= LEASE_S + 2, "%s: queried again %.2f s after %s was killed "
                  "(same id: %s; %.2f s after the kill at %.3f)"
                  % (target, after[0] - tk, eid, same, wait, k))
            if wait > worst:
                log("takeover %.2f s: %s after %s was killed at %.3f%s"
                    % (wait, target, eid, tk, "" if k == tk else
                       " (timed from the kill at %.3f)" % k))
            worst = max(worst, wait)
    return worst, chained


def main():
    check(ON_PG, "several engines need PostgreSQL: run with ALERT_EXEC_TEST_DB=postgresql "
          "and ALERT_EXEC_PG_URI_FILE (ctest's pg fixture does)")
    seed = int(os.environ.get("ENGINES_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    log("seed=%d kills=%d" % (seed, KILLS))
    wd = Workdir("pg-engines")
    alerts, timeline = cycling_alerts(ALERTS)
    request_log = wd.file("requests.jsonl")
    emu = track(start_emulator(wd, alerts=alerts, timeline=timeline,
                               args=["--cycle", str(SHAPE_CYCLE), "--request-log", request_log]))
    db = wd.database("engines")
    fleet = Fleet(wd, emu, db)
    for _ in range(3):
        fleet.start()
    wait_until(lambda: fleet.running["e1"].sql("select count(*) from alert")[0][0] == ALERTS,
               30, "the definitions")
    time.sleep(3)
    changes = 0
    while len(fleet.kills) < KILLS:
        time.sleep(STEP_S * (0.5 + rng.random()))
        changes += 1
        if changes % 7 == 0:
            fleet.stop_one(rng)
        else:
            fleet.kill(rng)
    time.sleep(LEASE_S + 3)
    fleet.stop_all()
    drain = Engine(wd, emu.url, db=db, name="drain", args=["--lease", "%ds" % LEASE_S])
    for _ in range(10):
        drain.once()
        if undelivered(db) == 0:
            break
    emu.stop()
    check(undelivered(db) == 0, "calls left undelivered")
    total, dups = check_calls(db, emu.records())
    check(dups <= len(fleet.kills) + fleet.stops,
          "%d duplicates for %d kills and %d stops" % (dups, len(fleet.kills), fleet.stops))
    qs = queries(request_log)
    check(len(qs) == ALERTS, "%d of %d alerts queried" % (len(qs), ALERTS))
    check_one_evaluator(qs, fleet.stopped)
    worst, chained = check_takeovers(qs, [k for k in fleet.kills if not k[2]], fleet.kills)
    log("pg-engines: seed=%d kills=%d stops=%d calls=%d duplicates=%d takeover_max=%.2f "
        "chained=%d" % (seed, len(fleet.kills), fleet.stops, total, dups, worst, chained))
    wd.cleanup()


if __name__ == "__main__":
    try:
        main()
    finally:
        reap()
