"""A server that answers HTTP 500 at random on every endpoint, at the real
server's rate (1.2 %) and at 30 %: every call the engine decided reaches
the server exactly once (a 500 is not an acceptance, so there is nothing
to duplicate; a repeat still failing when a state change supersedes it
is dropped), in the order of its alert, repeats keep their spacing, and
the emulator's validator finds nothing wrong with what it received.

Each rate runs on its own emulator (seeded faults: FLAKY_SEED, default
the time; printed) and database, with alerts whose values change on a
cycling timeline (interval 1 s, repeat 3 s), for one cycle; then the
daemon is stopped with SIGTERM and --once runs deliver what is left.

Timing is judged from the server's side: a repeat is due with the first
query the server answered repeatIntervalSecs after the notify before it
was accepted (--query-log), and the next call was decided at the latest
when it first reached the server, answered or refused (--request-log).
Before the --once drain, the daemon itself must have sent every call but
those enqueued or due again in its last CALL_DELAY_MS."""

import os
import time

from fault_helpers import (Judgement, change_calls_present, check_chain,
                           check_no_sanitizer_reports, check_timing, count, cycling_alerts,
                           query_times, request_times,
                           outbox_rows, start_emulator, stats, stop_drained, transitions,
                           validator_errors, validator_summary)
from harness import Engine, Workdir, check, log

RATES = [0.012, 0.3]
CYCLE = 24
RUN_SECS = 20
INTERVAL_MS = 1000
REPEAT_MS = 3000
CALL_DELAY_MS = 2000      # enqueued (or due again) to sent, daemon up
ALERTS, TIMELINE = cycling_alerts(30, CYCLE, INTERVAL_MS // 1000, REPEAT_MS // 1000)
DEFS = {a["name"]: a for a in ALERTS}


def run(wd, rate, seed):
    tag = "rate-%g" % rate
    emu = start_emulator(wd, alerts=ALERTS, timeline=TIMELINE, name="emu-" + tag,
                         args=["--validate", "--cycle", str(CYCLE), "--fail-rate", str(rate),
                               "--seed", str(seed), "--query-log", wd.file(tag + "-queries.jsonl"),
                               "--request-log", wd.file(tag + "-requests.jsonl")])
    eng = Engine(wd, emu.url, db=wd.database(tag), name="engine-" + tag)
    try:
        eng.start()
        time.sleep(RUN_SECS)
        drain = stop_drained(eng)
        st = stats(emu)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
            eng.proc.wait()
        emu_rc = emu.stop()
    end_ms = drain.drained * 1000
    drain.check_daemon_sent(CALL_DELAY_MS)

    trans = transitions(eng.db)
    check_chain(trans, DEFS)
    rows = outbox_rows(eng.db)
    change_calls_present(trans, rows, DEFS)
    records = emu.records()
    j = Judgement(rows, records)
    j.check_complete()
    check(not j.copies, "%s: calls accepted twice: %s" % (tag, j.copies[:10]))
    check_timing(rows, records, trans, DEFS, j.copies, end_ms, REPEAT_MS, INTERVAL_MS,
                 call_delay_ms=10000, allowance=drain.down,
                 answered=query_times(wd.file(tag + "-queries.jsonl")),
                 decided=request_times(wd.file(tag + "-requests.jsonl")))
    log(validator_summary(emu))
    errors = validator_errors(emu)
    check(emu_rc == 0 and not errors, "%s: validator (exit %d):\n%s" % (tag, emu_rc, "\n".join(errors)))

    failed = {ep: count(st, ep, 500) for ep in ("alerts", "query", "notify", "resolve")}
    calls = count(st, "notify") + count(st, "resolve")
    check(calls == j.delivered + failed["notify"] + failed["resolve"],
          "%s: %d notify/resolve requests, %d accepted and %d answered 500"
          % (tag, calls, j.delivered, failed["notify"] + failed["resolve"]))
    if rate >= 0.1:
        check(failed["notify"] + failed["resolve"] > 0 and failed["query"] > 0,
              "%s: no faults were injected: %s" % (tag, st))
    attempts = sum(r[4] for rs in rows.values() for r in rs)
    log("flaky-server: rate=%g seed=%d expected=%d delivered=%d lost=%d duplicated=%d "
        "attempts=%d http500=%s" % (rate, seed, j.expected, j.delivered,
                                     len(j.lost) + len(j.not_delivered), len(j.copies),
                                     attempts, failed))
    check(j.expected > 0, "%s: no calls at all" % tag)


def main():
    seed = int(os.environ.get("FLAKY_SEED") or time.time_ns() % 1000000007)
    log("flaky-server: seed=%d (rerun with FLAKY_SEED=%d)" % (seed, seed))
    wd = Workdir("flaky-server")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    t0 = time.time()
    for rate in RATES:
        run(wd, rate, seed)
    log("flaky-server: ok (%.1fs)" % (time.time() - t0))
    check_no_sanitizer_reports(wd)
    wd.cleanup()


if __name__ == "__main__":
    main()
