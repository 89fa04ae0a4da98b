"""SIGTERM while 1 000 alerts are evaluated every second and the outbox
holds calls the server keeps refusing: the daemon exits 0 within
--timeout + 1 s, leaves nothing leased (alert_state and outbox), and the
next start carries on: every alert is evaluated again, and the calls that
were waiting go through once the server accepts them (a waiting repeat may
instead be dropped by a state change of its alert, never a change call).
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
    return sql(eng.db, "select (select count(*) from alert_state where lease_until is not null),"
                       " (select count(*) from outbox where lease_until is not null)")[0]


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
        check(leases(eng) == (0, 0), "leases left after SIGTERM (alerts, calls): %s" % (leases(eng),))
        # a server that refuses most calls is not flooded: each row's attempts
        # follow the backoff (0.25-0.5, 0.5-1, 1-2 s ... apart), and retrying
        # all waiting rows when one goes through is backed off the same way
        stopped = now_ms()
        for rid, attempts, age in sql(eng.db, "select id, attempts, (? - created) / 1000.0 "
                                              "from outbox", (stopped,)):
            bound = 2 * (2 + math.log2(1 + max(age, 0) / 0.25))
            check(attempts <= bound, "row %d: %d attempts in %.1fs (at most %.1f)"
                  % (rid, attempts, age, bound))
        waiting = sql(eng.db, "select id, is_repeat from outbox where status = 'pending'")
        check(len(waiting) >= 20, "only %d calls waiting at the stop" % len(waiting))
        log("at the stop: %d calls waiting (%d repeats), %d delivered"
            % (len(waiting), sum(r for _, r in waiting),
               sql(eng.db, "select count(*) from outbox where status = 'delivered'")[0][0]))
        emu.stop()

        healthy = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, name="healthy", port=port,
                           args=["--cycle", "12"])
        restart = now_ms()
        eng.start().wait_started()
        wait_until(lambda: sql(eng.db, "select count(*) from alert_state where last_eval > ?",
                               (restart,))[0][0] == N, 15, "every alert evaluated after the restart")
        ids = [i for i, _ in waiting]

        def settled():
            left = sql(eng.db, "select id, status, is_repeat from outbox where id in (%s)"
                       % ",".join(map(str, ids)))
            return all(s == "delivered" for _, s, _r in left) and left
        left = wait_until(settled, 30, "the calls waiting at the stop to go through")
        gone = set(ids) - {i for i, _, _ in left}
        repeats = {i for i, r in waiting if r}
        check(gone <= repeats, "change calls gone from the outbox: %s" % sorted(gone - repeats))
        log("after the restart: %d of the waiting calls delivered, %d repeats dropped by a "
            "state change" % (len(left), len(gone)))
        rc, took2 = eng.kill(signal.SIGTERM)
        check(rc == 0 and took2 <= TIMEOUT_MS / 1000 + 1, "second stop: exit %d in %.3fs" % (rc, took2))
        check(leases(eng) == (0, 0), "leases left after the second SIGTERM: %s" % (leases(eng),))
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
