"""PostgreSQL restarted under three running engines: nothing is lost, the
engines reconnect and go on.

The test runs a scratch server of its own (tests/pg/pg-scratch.sh start,
restart, stop), since a restart cuts every connection to it, and the
tests beside it use the shared one. Three engines (--lease 3s) on one
database, 100 alerts at 1 s with changing values. The server is
restarted (pg_ctl restart -m fast) RESTARTS times (default 2), 6 s apart.

What is judged:
- every engine is still running after the restarts and exits 0 on
  SIGTERM; each logged the lost connection and its return once per
  restart (an episode is logged once, however many of its connections
  it cut);
- every alert is queried again within lease + 2 s + one interval of the
  restart's end, and by one engine at a time;
- after --once runs drain what is left, every outbox row reached the
  server, in order per alert, with duplicates no more than the calls
  in flight at the restarts could make (one per engine per restart).

Registered as integration_pg_server_restart (lock daemon_timing_pg).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.dirname(__file__))
from harness import ON_PG, Engine, Workdir, check, log, wait_until  # noqa: E402
from fault_helpers import (SHAPE_CYCLE, cycling_alerts, start_emulator,  # noqa: E402
                           undelivered)
from test_pg_engines import check_calls, check_one_evaluator, queries, reap, track  # noqa: E402

LEASE_S = 3
RESTARTS = int(os.environ.get("RESTARTS", "2"))
SCRATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg-scratch.sh")


def main():
    check(ON_PG, "several engines need PostgreSQL: run with ALERT_EXEC_TEST_DB=postgresql "
          "and ALERT_EXEC_PG_URI_FILE (ctest's pg fixture does)")
    wd = Workdir("pg-restart")
    # Outside the work directory, which a passing test removes before
    # the server is stopped.
    fd, uri_file = tempfile.mkstemp(prefix="alert-exec-pg-restart.", suffix=".uri")
    os.close(fd)
    os.unlink(uri_file)
    subprocess.run([SCRATCH, "start", uri_file], check=True, stdout=subprocess.DEVNULL)
    os.environ["ALERT_EXEC_PG_URI_FILE"] = uri_file
    try:
        run(wd, uri_file)
    finally:
        reap()
        subprocess.run([SCRATCH, "stop", uri_file], stdout=subprocess.DEVNULL)


def run(wd, uri_file):
    alerts, timeline = cycling_alerts(100)
    request_log = wd.file("requests.jsonl")
    emu = track(start_emulator(wd, alerts=alerts, timeline=timeline,
                               args=["--cycle", str(SHAPE_CYCLE), "--request-log", request_log]))
    db = wd.database("restart")
    engines = []
    for i in range(3):
        eid = "e%d" % (i + 1)
        eng = Engine(wd, emu.url, db=db, name=eid, args=["--engine-id", eid,
                                                          "--lease", "%ds" % LEASE_S])
        engines.append(track(eng.start()).wait_started(30))
    time.sleep(5)
    ends = []
    for _ in range(RESTARTS):
        subprocess.run([SCRATCH, "restart", uri_file], check=True, stdout=subprocess.DEVNULL)
        ends.append(time.time())
        log("restarted the server")
        time.sleep(6)
    for eng in engines:
        check(eng.proc.poll() is None, "%s exited %s after the restart:\n%s"
              % (eng.name, eng.proc.returncode, eng.log_text()[-3000:]))
    qs = queries(request_log)
    for end in ends:
        for target, seq in qs.items():
            after = [t for t, _ in seq if t > end]
            check(after and after[0] - end <= LEASE_S + 3,
                  "%s not queried within %d s of the restart at %.3f"
                  % (target, LEASE_S + 3, end))
    check_one_evaluator(qs)
    for eng in engines:
        text = eng.log_text()
        lost = text.count("WARN database connection lost")
        back = text.count("INFO database connection back")
        log("%s: connection lost %d, back %d" % (eng.name, lost, back))
        check(lost == RESTARTS and lost == back,
              "%s logged lost %d, back %d for %d restarts" % (eng.name, lost, back, RESTARTS))
        rc, _ = eng.kill(signal.SIGTERM, timeout=30)
        check(rc == 0, "%s: SIGTERM exit %d" % (eng.name, rc))
    drain = Engine(wd, emu.url, db=db, name="drain", args=["--lease", "%ds" % LEASE_S])
    for _ in range(10):
        drain.once()
        if undelivered(db) == 0:
            break
    emu.stop()
    check(undelivered(db) == 0, "calls left undelivered")
    total, dups = check_calls(db, emu.records())
    check(dups <= 3 * RESTARTS, "%d duplicates for %d restarts" % (dups, RESTARTS))
    log("pg-restart: restarts=%d calls=%d duplicates=%d" % (RESTARTS, total, dups))
    wd.pg_databases = []  # the whole server goes with its stop
    wd.cleanup()


if __name__ == "__main__":
    main()
