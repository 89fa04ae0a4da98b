"""--once (cron mode): a fresh database evaluates every alert at once and
delivers; the summary line counts it; a run back-to-back sends nothing;
calls the server does not take stay queued (exit 75) until a later run
delivers them (exit 0); no definitions at all exits 69; a database held by
a running daemon exits 75 naming its pid."""

import signal

from harness import (ON_PG, Emulator, Engine, Workdir, alert, calls, check, log, now_ms, summary,
                     wait_until)

ALERTS = [alert("a", repeat=300), alert("b", repeat=300), alert("c", repeat=300)]
BEFORE = {"q-a": [[0, 150]], "q-b": [[0, 250]], "q-c": [[0, 50]]}
AFTER = {"q-a": [[0, 50]], "q-b": [[0, 150]], "q-c": [[0, 50]]}  # a resolves, b drops to WARN


def run(eng, want_rc, want, what):
    rc, out, err = eng.once()
    log("%s: exit %d, %s" % (what, rc, out.strip()))
    check(rc == want_rc, "%s: exit status %d, expected %d; stderr:\n%s" % (what, rc, want_rc, err))
    got = summary(out)
    for k, v in want.items():
        check(got[k] in (v if isinstance(v, tuple) else (v,)),
              "%s: %s=%d, expected %s (%s)" % (what, k, got[k], v, out.strip()))
    return err


def wait_due(eng):
    """Waits until every alert is due again (intervalSecs 1)."""
    wait_until(lambda: eng.sql("select max(next_eval) from alert_state")[0][0] <= now_ms(), 3,
               "alerts due")


def main():
    wd = Workdir("once")
    emus = []
    daemon = None
    try:
        emu1 = Emulator(wd, alerts=ALERTS, timeline=BEFORE, name="emu1")
        emus.append(emu1)
        eng = Engine(wd, emu1.url)

        run(eng, 0, {"evaluated": 3, "notified": 2, "resolved": 0, "failed": 0, "pending": 0},
            "fresh database")
        first = sorted(calls(emu1.records()))
        check(first == [("notify", "a", "warning"), ("notify", "b", "critical")],
              "calls of the first run: %s" % first)

        run(eng, 0, {"evaluated": (0, 3), "notified": 0, "resolved": 0, "failed": 0,
                     "pending": 0}, "back-to-back run")
        check(len(emu1.records()) == 2, "back-to-back run sent calls: %s" % emu1.records()[2:])

        # The values change; the server refuses every notify and resolve.
        emu1.stop()
        emu2 = Emulator(wd, alerts=ALERTS, timeline=AFTER, name="emu2",
                        args=["--fail-rate-notify", "1", "--fail-rate-resolve", "1"])
        emus.append(emu2)
        eng.server = emu2.url
        wait_due(eng)
        run(eng, 75, {"evaluated": 3, "notified": 0, "resolved": 0, "failed": 0, "pending": 2},
            "calls refused")
        check(emu2.records() == [], "refused calls recorded: %s" % emu2.records())

        # The server is gone (closed port): queries fail, the calls stay queued.
        emu2.stop()
        wait_due(eng)
        run(eng, 75, {"evaluated": 3, "notified": 0, "resolved": 0, "failed": 3, "pending": 2},
            "server down")
        failures = eng.sql("select a.name, s.failures from alert a join alert_state s "
                           "on s.alert_id = a.id where s.failures > 0 order by a.name")
        check(failures == [("a", 1), ("b", 1), ("c", 1)], "failures recorded: %s" % failures)

        # The server is back: the next run delivers both.
        emu3 = Emulator(wd, alerts=ALERTS, timeline=AFTER, name="emu3")
        emus.append(emu3)
        eng.server = emu3.url
        # Cron mode: a run tries every waiting call, backoff or not.
        check(eng.sql("select count(*) from outbox where status = 'pending' "
                      "and next_attempt > ?", (now_ms() + 100,))[0][0] > 0,
              "the failed calls should be waiting out a backoff")
        run(eng, 0, {"notified": 1, "resolved": 1, "failed": 0, "pending": 0}, "server back")
        back = sorted(calls(emu3.records()))
        check(back == [("notify", "b", "warning"), ("resolve", "a", "")],
              "calls delivered when the server is back: %s" % back)
        run(eng, 0, {"notified": 0, "resolved": 0, "failed": 0, "pending": 0}, "after delivery")
        check(len(emu3.records()) == 2, "calls sent twice: %s" % emu3.records())

        # No definitions: a fresh database and no server.
        fresh = Engine(wd, emu2.url, db=wd.database("fresh"), name="fresh")
        rc, out, err = fresh.once()
        log("no definitions: exit %d" % rc)
        check(rc == 69, "no definitions: exit status %d, expected 69; stderr:\n%s" % (rc, err))

        # A daemon holds the database (SQLite's lock: one engine per file;
        # PostgreSQL takes none, engines may share a database).
        if not ON_PG:
            daemon = Engine(wd, emu3.url, db=eng.db, name="daemon").start().wait_started()
            rc, out, err = eng.once()
            log("database held by pid %d: exit %d" % (daemon.proc.pid, rc))
            check(rc == 75, "locked database: exit status %d, expected 75; stderr:\n%s"
                  % (rc, err))
            check(str(daemon.proc.pid) in err, "locked database: holder pid %d not named:\n%s"
                  % (daemon.proc.pid, err))
            rc, _ = daemon.kill(signal.SIGTERM)
            check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if daemon and daemon.proc.poll() is None:
            daemon.proc.kill()
        for e in emus:
            e.stop()
    log("once: ok")
    wd.cleanup()


if __name__ == "__main__":
    main()
