"""A graceful stop hands an engine's shards over at once, and a paused
engine (SIGSTOP, a zombie) writes nothing for the shards it lost.

Two engines (--lease 3s) on one database, 100 alerts at 1 s.

- handover: both hold about half of the 1024 shards; e1 gets SIGTERM and
  exits 0 having given its shards back; e2 holds all 1024 within 2 s of
  e1's exit, alert_status names e2 as every alert's owner, and every
  alert e1 had been querying is queried by e2 within 2 s + one interval.
- zombie: e1 is started again (it takes its share back from e2) and then
  paused with SIGSTOP for twice the lease; e2 takes its shards over. After
  SIGCONT e1 logs that its lease ran out, and until it claims shards again
  it commits nothing: no evaluation, transition or delivery is logged by
  it (each is logged after its commit, so a write its fence refused is
  not).
- --once: beside the two live engines it takes no shard and evaluates
  nothing; once they stopped it claims all 1024, evaluates, and gives
  them back at its exit. Every call enqueued reaches the server.

Registered as integration_pg_handover (fixture pg, lock daemon_timing_pg).
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import ON_PG, Engine, Workdir, check, log, wait_until  # noqa: E402
from fault_helpers import (SHAPE_CYCLE, cycling_alerts, log_lines, read_jsonl,  # noqa: E402
                           start_emulator, undelivered)
sys.path.insert(0, os.path.dirname(__file__))
from test_pg_engines import reap, track  # noqa: E402

LEASE_S = 3


def owners(eng):
    return eng.sql("select owner, count(*) from shard where lease_until > now() "
                   "group by owner order by owner")


def start(wd, emu, db, eid, run):
    eng = Engine(wd, emu.url, db=db, name="%s-run%d" % (eid, run),
                 args=["--engine-id", eid, "--lease", "%ds" % LEASE_S])
    return track(eng.start()).wait_started(30)


def engine_of(ua):
    return ua[ua.index(" (") + 2:-1] if ua and " (" in ua else None


def queried(request_log, since, eid):
    """{target: first time after since it was queried by eid}."""
    out = {}
    for r in read_jsonl(request_log):
        t = r["us"] / 1e6
        if r.get("ep") == "query" and t > since and engine_of(r.get("ua")) == eid:
            out.setdefault(r["target"], t)
    return out


def handover(wd, emu, db, request_log):
    e1 = start(wd, emu, db, "e1", 1)
    e2 = start(wd, emu, db, "e2", 1)
    wait_until(lambda: dict(owners(e1)).get("e1", 0) >= 500 and
               dict(owners(e1)).get("e2", 0) >= 500, 20, "both engines to hold half")
    time.sleep(2)
    before = time.time()
    e1_targets = set(queried(request_log, before - 1.5, "e1"))
    check(e1_targets, "e1 queried nothing")
    rc, took = e1.kill(signal.SIGTERM, timeout=30)
    gone = time.time()
    check(rc == 0, "e1: SIGTERM exit %d" % rc)
    check("gave back shards engine=e1" in e1.log_text(), "e1 did not log its give-back")
    wait_until(lambda: dict(owners(e2)).get("e2", 0) == 1024, 2.0, "e2 to hold every shard")
    log("handover: e1 stopped in %.2f s, e2 holds all 1024 %.2f s after" %
        (took, time.time() - gone))
    rows = e2.sql("select count(*) from alert_status where owner = 'e2'")
    check(rows[0][0] == 100, "alert_status names e2 for %d of 100 alerts" % rows[0][0])
    time.sleep(3.5)
    again = queried(request_log, gone, "e2")
    for t in e1_targets:
        check(t in again and again[t] - gone <= 3.0,
              "%s: not queried by e2 within 3 s of the handover" % t)
    return e2


def zombie(wd, emu, db, e2):
    e1 = start(wd, emu, db, "e1", 2)
    wait_until(lambda: dict(owners(e1)).get("e1", 0) >= 500, 20, "e1 to take its share")
    time.sleep(1.5)
    e1.proc.send_signal(signal.SIGSTOP)
    paused = time.time()
    wait_until(lambda: dict(owners(e2)).get("e2", 0) == 1024, LEASE_S + 4,
               "e2 to take the paused engine's shards")
    time.sleep(max(0.0, paused + 2 * LEASE_S - time.time()))
    e1.proc.send_signal(signal.SIGCONT)
    woke = time.time()
    wait_until(lambda: "claimed shards engine=e1" in
               "".join(l[2] for l in log_lines(e1.stderr_path) if l[0] > woke),
               20, "e1 to claim shards again")
    lines = [l for l in log_lines(e1.stderr_path) if l[0] >= woke - 0.5]
    text = "\n".join(l[2] for l in lines)
    check("lease not renewed in time" in text or "lost shards engine=e1" in text,
          "e1 did not log that it lost its shards:\n%s" % text[:3000])
    reclaim = min(l[0] for l in lines if "claimed shards engine=e1" in l[2])
    for t, level, msg in lines:
        if t >= reclaim:
            break
        for what in ("evaluated alert=", "transition alert=", "delivered kind="):
            check(what not in msg, "e1 committed after it woke, before it claimed shards "
                  "again: %s" % msg)
    log("zombie: paused %.1f s, reclaimed %.2f s after waking" % (woke - paused, reclaim - woke))
    return e1


def once_runs(wd, emu, db, engines):
    """--once takes only the shards no live engine holds: none while two
    run; every one once they stopped, given back at its exit."""
    def balanced():
        held = dict(owners(engines[0]))
        return held.get("e1", 0) >= 500 and held.get("e1", 0) + held.get("e2", 0) == 1024
    wait_until(balanced, 10, "e1 and e2 to share every shard")
    drain = Engine(wd, emu.url, db=db, name="once", args=["--lease", "%ds" % LEASE_S])
    rc, out, err = drain.once()
    check("evaluated=0 " in out, "--once beside live engines evaluated: %r" % out)
    # Its exit status counts the pending calls of the shards it held:
    # none, whatever the live engines have pending.
    check(rc == 0 and "pending=0" in out, "--once beside live engines: exit %d, %r" % (rc, out))
    check(dict(owners(engines[0])).get("once", 0) == 0, "--once kept shards: %r"
          % owners(engines[0]))
    for eng in engines:
        rc, _ = eng.kill(signal.SIGTERM, timeout=30)
        check(rc == 0, "%s: SIGTERM exit %d" % (eng.name, rc))
    time.sleep(1.5)
    rc, out, err = drain.once()
    check("claimed shards engine=once shards=1024 " in err, "--once did not claim the "
          "free shards:\n%s" % err[-2000:])
    check(not out.startswith("evaluated=0 "), "--once on free shards evaluated nothing: %r"
          % out)
    left = Engine.sql(drain, "select count(*) from shard where lease_until > now()")
    check(left[0][0] == 0, "--once left %d shards held" % left[0][0])
    for _ in range(10):
        if undelivered(db) == 0:
            break
        drain.once()


def main():
    check(ON_PG, "several engines need PostgreSQL: run with ALERT_EXEC_TEST_DB=postgresql "
          "and ALERT_EXEC_PG_URI_FILE (ctest's pg fixture does)")
    wd = Workdir("pg-handover")
    alerts, timeline = cycling_alerts(100)
    request_log = wd.file("requests.jsonl")
    emu = track(start_emulator(wd, alerts=alerts, timeline=timeline,
                               args=["--cycle", str(SHAPE_CYCLE), "--request-log", request_log]))
    db = wd.database("handover")
    e2 = handover(wd, emu, db, request_log)
    e1 = zombie(wd, emu, db, e2)
    time.sleep(2)
    once_runs(wd, emu, db, (e1, e2))
    emu.stop()
    check(undelivered(db) == 0, "calls left undelivered")
    wd.cleanup()


if __name__ == "__main__":
    try:
        main()
    finally:
        reap()
