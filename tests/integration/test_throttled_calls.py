"""A server that answers /notify with 429 (Too Many Requests) or 408
(Request Timeout) is asking to be called again later, not refusing the
call: both are retried until delivered, never given up after the three
attempts of a 4xx. A 429's Retry-After is honoured, and the -r immediate
attempts do not hammer a server that asked for a pause. Judged from what
the server saw."""

from harness import Engine, Workdir, alert, check, log, wait_until
from scripted_server import ScriptedServer, ok

THROTTLED = 3      # 429s before "a" is taken
TIMED_OUT = 4      # 408s before "b" is taken
RETRY_AFTER = 2    # seconds


def main():
    wd = Workdir("throttled")
    srv = ScriptedServer()
    eng = None
    try:
        srv.on("alerts", lambda hit, n: ok([alert("a", repeat=300), alert("b", repeat=300)]))
        srv.on("query", lambda hit, n: ok({"value": 150}))

        def notify(hit, n):
            name = hit.body.get("alertName")
            seen = sum(1 for h in srv.of("notify") if h.body.get("alertName") == name)
            if name == "a" and seen <= THROTTLED:
                return 429, {"Retry-After": str(RETRY_AFTER)}, b'{"error": "slow down"}'
            if name == "b" and seen <= TIMED_OUT:
                return 408, {}, b'{"error": "request timeout"}'
            return ok()

        srv.on("notify", notify)
        eng = Engine(wd, srv.url, args=["-r", "3"]).start().wait_started()
        wait_until(lambda: eng.sql("select count(*) from outbox where status <> 'pending'")[0][0]
                   >= 2, 30, "both notifies to be delivered or given up")
        rows = dict(eng.sql("select a.name, o.status from outbox o join alert a "
                            "on a.id = o.alert_id"))
        log("outbox:", rows)
        check(rows == {"a": "delivered", "b": "delivered"}, "calls not delivered: %s" % rows)
        check(" gave up " not in eng.log_text(), "a call was given up:\n" + eng.log_text())

        hits_a = [h for h in srv.of("notify") if h.body.get("alertName") == "a"]
        a = [h.at for h in hits_a]
        b = [h.at for h in srv.of("notify") if h.body.get("alertName") == "b"]
        log("notify a at +%s s" % ["%.2f" % (t - a[0]) for t in a])
        log("notify b at +%s s" % ["%.2f" % (t - b[0]) for t in b])
        # One request per attempt: a 429 or 408 is not repeated at once by -r.
        check(len(a) == THROTTLED + 1, "a: %d requests, expected %d" % (len(a), THROTTLED + 1))
        check(len(b) == TIMED_OUT + 1, "b: %d requests, expected %d" % (len(b), TIMED_OUT + 1))
        # The server asked for RETRY_AFTER seconds each time; the backoff
        # alone would have sent the second attempt within a second. From
        # just before an answer was written (the engine cannot have seen
        # it earlier) to the next request's arrival (stamped late if at
        # all), the wait is a lower bound of the engine's, up to the 10 ms
        # the engine's clock may be off the wall clock before it follows it
        # (clock.h) and its millisecond resolution.
        waits = [h1.at - h0.replying for h0, h1 in zip(hits_a, hits_a[1:])]
        check(min(waits) >= RETRY_AFTER - 0.012,
              "a: Retry-After %d s not honoured, waits %s" % (RETRY_AFTER,
                                                              ["%.3f" % g for g in waits]))
        gaps = [t1 - t0 for t0, t1 in zip(a, a[1:])]
        check(max(gaps) < RETRY_AFTER + 1.5, "a: retried late, gaps %s" % gaps)
        rc, _ = eng.kill(15)
        check(rc == 0, "engine exit status %d" % rc)
        log("ok: 429 with Retry-After and 408 retried until delivered")
    finally:
        if eng and eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        srv.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
