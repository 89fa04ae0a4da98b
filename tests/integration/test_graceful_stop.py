"""SIGTERM while 1 000 alerts are evaluated every second and the outbox
holds calls the server keeps refusing: the daemon exits 0 within
--timeout + 1 s, leaves no call leased (an evaluation is never leased: its
alert stays due until it is written), and the
next start carries on: every alert is evaluated again, and the calls that
were waiting reach the server once it accepts them, in their order per
alert (judged from the second server's record, not the database; a
waiting repeat may instead be dropped by a state change of its alert,
never a change call).
While the server refuses most calls, they are not retried in a loop: each
row's attempts stay within what exponential backoff allows for its age.

1 000 alerts on 20 queries (50 alerts each); two queries cycle through
PASS, WARN, CRITICAL (100 alerts change state), the others stay PASS. The
first server refuses 95 % of notifies and resolves (HTTP 500); the second,
on the same port, none."""

import math
import signal
import time

from fault_helpers import check_no_sanitizer_reports, sql, undelivered
from harness import Emulator, Engine, Workdir, alert, check, log, now_ms, wait_until

N = 1000
QUERIES = 20
TIMEOUT_MS = 1000
ALERTS = [alert("g%d" % i, query="q%d" % (i % QUERIES), interval=1, repeat=3)
          for i in range(1, N + 1)]
TIMELINE = {"q%d" % k: ([[0, 50], [2, 150], [5, 250], [8, 50]] if k < 2 else [[0, 10 + k]])
            for k in range(QUERIES)}
TIMELINE["q1"] = [[0, 250], [3, 50], [6, 150], [9, 250]]


def leases(eng):
    return sql(eng.db, "select count(*) from outbox where lease_until is not null")[0][0]


def evaluations_logged(eng):
    return eng.log_text().count(" evaluated alert=") + eng.log_text().count(" transition alert=")


def main():
    wd = Workdir("graceful-stop")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    t0 = time.time()
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, name="refusing",
                   args=["--cycle", "12", "--fail-rate-notify", "0.95", "--fail-rate-resolve", "0.95"])
    port = emu.port
    eng = Engine(wd, emu.url, args=["--timeout", "%dms" % TIMEOUT_MS])
    healthy = None
    try:
        eng.start().wait_started()
        wait_until(lambda: evaluations_logged(eng) >= 2 * N, 30, "every alert evaluated twice")
        wait_until(lambda: undelivered(eng.db) >= 20, 30, "calls waiting in the outbox")
        time.sleep(1.0)
        before = evaluations_logged(eng)
        time.sleep(0.5)
        rate = (evaluations_logged(eng) - before) / 0.5
        rc, took = eng.kill(signal.SIGTERM)
        log("SIGTERM at %.0f evaluations/s: exit %d in %.3fs (bound %.3fs)"
            % (rate, rc, took, TIMEOUT_MS / 1000 + 1))
        check(rate > 0, "no evaluations in flight when stopped")
        check(rc == 0, "exit status %d after SIGTERM" % rc)
        check(took <= TIMEOUT_MS / 1000 + 1, "stopped in %.3fs, over --timeout + 1 s" % took)
        check(leases(eng) == 0, "calls left leased after SIGTERM: %s" % leases(eng))
        # a server that refuses most calls is not flooded: each row's attempts
        # follow the backoff (0.25-0.5, 0.5-1, 1-2 s ... apart), and retrying
        # all waiting rows when one goes through is backed off the same way
        stopped = now_ms()
        for rid, attempts, age in sql(eng.db, "select id, attempts, (? - created) / 1000.0 "
                                              "from outbox", (stopped,)):
            bound = 2 * (2 + math.log2(1 + max(age, 0) / 0.25))
            check(attempts <= bound, "row %d: %d attempts in %.1fs (at most %.1f)"
                  % (rid, attempts, age, bound))
        waiting = sql(eng.db, "select o.id, o.is_repeat, a.name, o.kind, coalesce(o.message, '') "
                              "from outbox o join alert a on a.id = o.alert_id "
                              "where o.status = 'pending' order by o.id")
        check(len(waiting) >= 20, "only %d calls waiting at the stop" % len(waiting))
        log("at the stop: %d calls waiting (%d repeats), %d delivered"
            % (len(waiting), sum(r[1] for r in waiting),
               sql(eng.db, "select count(*) from outbox where status = 'delivered'")[0][0]))
        emu.stop()

        healthy = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, name="healthy", port=port,
                           args=["--cycle", "12"])
        restart = now_ms()
        eng.start().wait_started()
        wait_until(lambda: sql(eng.db, "select count(*) from alert_state where last_eval > ?",
                               (restart,))[0][0] == N, 15, "every alert evaluated after the restart")
        def unmatched():
            """The waiting rows the healthy server has not accepted, per
            alert in order: a row matches the next record of its alert
            with its kind and message; a repeat may be skipped (dropped)."""
            recs = {}
            for r in healthy.records():
                recs.setdefault(r["alert"], []).append((r["kind"], r.get("message", "")))
            missing = []
            for name in sorted({w[2] for w in waiting}):
                got = recs.get(name, [])
                pos = 0
                for rid, repeat, _n, kind, msg in [w for w in waiting if w[2] == name]:
                    k = next((k for k in range(pos, len(got)) if got[k] == (kind, msg)), None)
                    if k is None:
                        missing.append((rid, repeat, name, kind, msg))
                    else:
                        pos = k + 1
            return missing

        def settled():
            return all(repeat for _i, repeat, *_ in unmatched())
        wait_until(settled, 30, "the change calls waiting at the stop to reach the server")
        time.sleep(1.0)
        missing = unmatched()
        ids = [w[0] for w in waiting]
        left = {i for (i,) in sql(eng.db, "select id from outbox where id in (%s)"
                                  % ",".join(map(str, ids)))}
        # A repeat the server never got was dropped, its row deleted, not
        # left pending or marked delivered.
        check(all(rid not in left for rid, *_ in missing),
              "repeats the server never got are still in the outbox: %s"
              % [m for m in missing if m[0] in left])
        log("after the restart: %d of the %d waiting calls reached the server, %d repeats dropped "
            "by a state change" % (len(waiting) - len(missing), len(waiting), len(missing)))
        rc, took2 = eng.kill(signal.SIGTERM)
        check(rc == 0 and took2 <= TIMEOUT_MS / 1000 + 1, "second stop: exit %d in %.3fs" % (rc, took2))
        check(leases(eng) == 0, "calls left leased after the second SIGTERM: %s" % leases(eng))
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
            eng.proc.wait()
        for e in (emu, healthy):
            if e:
                e.stop()
    log("graceful-stop: ok (stops in %.3fs and %.3fs; %.1fs)" % (took, took2, time.time() - t0))
    check_no_sanitizer_reports(wd)
    wd.cleanup()


if __name__ == "__main__":
    main()
