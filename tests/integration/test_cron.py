"""Cron mode (--once) as a cron user runs it:
- the last alert disappears from the server: the run that retires it
  delivers its resolve before deciding the exit status (69: the server gave
  no alert), and says that retired alerts are stored;
- later runs prune what is older than --retention (delivered calls,
  history, retired alerts);
- SIGTERM and SIGINT stop a run against a slow server at once, whether it
  is fetching definitions or querying, with status 0 or 75."""

import signal
import subprocess
import time

from harness import Emulator, Engine, Workdir, alert, calls, check, log, summary, wait_until


def last_alert_retired(wd):
    emu = Emulator(wd, alerts=[alert("a")], timeline={"q-a": [[0, 150]]}, name="emu1")
    eng = Engine(wd, emu.url)
    try:
        rc, out, err = eng.once()
        check(rc == 0, "first run: exit %d\n%s" % (rc, err))
        check(calls(emu.records()) == [("notify", "a", "warning")],
              "first run: %s" % emu.records())
    finally:
        emu.stop()
    emu = Emulator(wd, alerts=[], name="emu2")
    eng.server = emu.url
    try:
        rc, out, err = eng.once()
        log("alert removed: exit %d, %s" % (rc, out.strip()))
        check(calls(emu.records()) == [("resolve", "a", "")],
              "the run that retired the last alert did not deliver its resolve: %s"
              % emu.records())
        got = summary(out)
        check(got["resolved"] == 1 and got["pending"] == 0, "summary: %s" % out)
        check(rc == 69, "exit %d, expected 69 (no alert definitions)" % rc)
        check("none are stored" not in err, "the message says none are stored:\n" + err)
        check("retired_alerts=1" in err, "the message does not say what is stored:\n"
              + err)
        rc, out, err = eng.once()
        check(rc == 69 and len(emu.records()) == 1, "a later run: exit %d, records %s"
              % (rc, emu.records()))
    finally:
        emu.stop()
    return eng


def pruned(eng):
    rows = eng.sql("select (select count(*) from outbox), (select count(*) from transition), "
                   "(select count(*) from alert)")[0]
    check(rows == (2, 2, 1), "before pruning: outbox, transition, alert = %s" % (rows,))
    time.sleep(1.2)
    emu = Emulator(eng.wd, alerts=[], name="emu3")
    eng.server = emu.url
    try:
        rc, out, err = eng.once(["--retention", "1s"])
    finally:
        emu.stop()
    rows = eng.sql("select (select count(*) from outbox), (select count(*) from transition), "
                   "(select count(*) from alert)")[0]
    log("after a run with --retention 1s: outbox, transition, alert = %s" % (rows,))
    check(rows == (0, 0, 0), "--once did not prune: %s" % (rows,))
    check("pruned rows=" in err, "no pruned line:\n" + err)


def stopped(wd, sig, wait_for):
    """A --once run against a server that answers after 3 s gets sig once
    `wait_for` is in its log (or after 0.5 s when None)."""
    emu = Emulator(wd, alerts=[alert("s", repeat=300)], timeline={"q-s": [[0, 150]]},
                   name="slow-%d-%s" % (sig, wait_for), args=["--latency-ms", "3000"])
    eng = Engine(wd, emu.url, db=wd.database("slow-%d" % sig), name="slow-%d" % sig)
    try:
        if wait_for:
            # definitions stored by a first run, so the second queries
            eng.once(timeout=30)
        logf = wd.file("stopped-%d.log" % sig)
        with open(logf, "w") as f:
            proc = subprocess.Popen(eng.cmd(["--once", "--timeout", "10s"]), stderr=f,
                                    stdout=subprocess.PIPE, text=True)
            if wait_for:
                wait_until(lambda: wait_for in open(logf).read(), 10, wait_for)
            else:
                time.sleep(0.5)
            t0 = time.time()
            proc.send_signal(sig)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("--once did not stop within 10 s of signal %d" % sig)
            took = time.time() - t0
        log("signal %d while %s: exit %d after %.2f s" % (sig, wait_for or "fetching",
                                                          proc.returncode, took))
        check(proc.returncode in (0, 75), "exit status %d" % proc.returncode)
        check(took < 1.5, "took %.2f s to stop (the server answers after 3 s)" % took)
    finally:
        emu.stop()


def main():
    wd = Workdir("cron")
    try:
        eng = last_alert_retired(wd)
        pruned(eng)
        stopped(wd, signal.SIGTERM, None)
        stopped(wd, signal.SIGINT, "definitions loaded")
        log("ok: --once delivers before its exit status, prunes, and stops on a signal")
    finally:
        wd.cleanup()


if __name__ == "__main__":
    main()
