"""An alert's interval shortens (3600 s -> 2 s) while its query is in
flight. The evaluation made with the old definition is discarded and the
alert evaluated again at once with the new one, which then holds: the
next evaluations come every 2 s, not an hour later. Judged from the
queries the server saw."""

import time

from harness import Engine, Workdir, alert, check, log, now_ms, wait_until
from scripted_server import ScriptedServer, ok

QUERY_DELAY = 2.5   # the first query of the daemon: in flight while definitions change
FETCH_DELAY = 0.5   # the daemon's /alerts: answered after its first pick


def main():
    wd = Workdir("definition-change")
    srv = ScriptedServer()
    eng = None
    try:
        defs = {"now": [alert("a", interval=3600)]}
        srv.on("alerts", lambda hit, n: ok(defs["now"]))
        srv.on("query", lambda hit, n: ok({"value": 50}))
        eng = Engine(wd, srv.url)
        rc, out, err = eng.once()
        check(rc == 0, "--once: exit %d\n%s" % (rc, err))
        # Due again now, with the stored interval of an hour.
        eng.sql("update alert_state set next_eval = ?", (now_ms(),))
        con_before = len(srv.of("query"))

        def slow_fetch(hit, n):
            time.sleep(FETCH_DELAY)
            return ok(defs["now"])

        def slow_first_query(hit, n):
            if n == con_before + 1:
                time.sleep(QUERY_DELAY)
            return ok({"value": 50})

        defs["now"] = [alert("a", interval=2)]
        srv.on("alerts", slow_fetch)
        srv.on("query", slow_first_query)
        eng.start().wait_started()
        wait_until(lambda: len(srv.of("query")) >= con_before + 4, 12,
                   "four queries of the daemon")
        queries = [h for h in srv.of("query")][con_before:]
        fetch = srv.of("alerts")[-1]
        # The premise: the first query was in flight when the new
        # definition was stored (the fetch was answered before it).
        check(queries[0].at < fetch.answered < queries[0].answered,
              "premise: the first query (%.2f-%.2f) did not span the fetch's answer (%.2f)"
              % (queries[0].at, queries[0].answered, fetch.answered))
        times = ["%.2f" % (h.at - queries[0].at) for h in queries]
        log("queries at +%s s" % times)
        # Discarded, the evaluation is made again at once...
        check(queries[1].at - queries[0].answered < 0.5,
              "the alert was not evaluated again at once: %s" % times)
        # ...and then every 2 s.
        gaps = [b.at - a.at for a, b in zip(queries[1:], queries[2:])]
        check(all(1.9 < g < 2.3 for g in gaps), "not every 2 s: %s" % times)
        row = eng.sql("select next_eval - last_eval from alert_state")[0][0]
        check(row <= 2100, "stored schedule %d ms after the last evaluation" % row)
        rc, _ = eng.kill(15)
        check(rc == 0, "engine exit status %d" % rc)
        log("ok: an evaluation made with a replaced definition is discarded")
    finally:
        if eng and eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        srv.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
