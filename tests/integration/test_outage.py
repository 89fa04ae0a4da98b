"""The server is down (503 on every endpoint) for 10 s while alerts change
state: what fell due during the outage arrives soon after it ends, in
order, once; the engine backs off exponentially while it waits (no tight
loop, no storm); and the outage adds no repeats.

40 alerts go CRITICAL half a second before the outage starts. The
emulator answers every request 100 ms late, so the two delivery workers
(20 calls/s) are still busy with those notifies when the outage begins:
the rest fail and wait in backoff. During the outage half the alerts drop
to WARN and half to PASS; the engine sees that once the server is back,
and the resolve or warning of an alert queues behind its waiting notify.

Checked:
- every outbox row reached the server once, in order (the record);
- the emulator's validator, which extends its deadlines over --down
  windows, found nothing wrong;
- rows that waited through the outage are all accepted within
  DRAIN_SECS after it ends, plus LATENCY_MS for each of them (one delivery
  worker sends one call at a time);
- per alert, at most MAX_FAILED_ATTEMPTS failed attempts during the
  outage, each retried no sooner than the backoff schedule allows, judged
  from the server's request log (--request-log: the 503 answers to the
  alert's calls; -r requests in a row are one attempt), never from the
  delays the engine logged; each attempt is at most -r requests;
- no repeat earlier than repeatIntervalSecs after the notify before it."""

import time

from fault_helpers import (Judgement, change_calls_present, check_chain,
                           check_no_sanitizer_reports, check_timing, count,
                           first_acceptances, outbox_rows, read_jsonl, start_emulator, stats,
                           stop_drained, transitions, validator_errors, validator_summary)
from harness import Engine, Workdir, alert, check, log

N = 40
DOWN_FROM, DOWN_TO = 5.0, 15.0
# Every request takes this long, so that calls queue up before the outage.
# One delivery worker (the default) sends one call at a time: the calls
# that waited through the outage drain at the server's pace, LATENCY_MS
# each, after the retries resume within DRAIN_SECS.
LATENCY_MS = 100
INTERVAL_MS = 1000
REPEAT_MS = 3000
RETRIES = 3                 # -r: HTTP requests per delivery attempt
DRAIN_SECS = 3.0            # after the outage, rows that waited through it are accepted by then
CALL_DELAY_MS = 2000        # enqueued (or due again) to sent, once the server answers
IDLE_MS = 200               # a worker between two calls of a backlog, on a busy machine
MAX_FAILED_ATTEMPTS = 6     # 0.25-0.5, 0.5-1, 1-2, 2-4, 4-8 s apart: six fit in 10 s
BACKOFF_FIRST_MS = 500      # the engine's schedule: the n-th retry waits 500 * 2^(n-1) ms,
                            # the upper half jittered, so at least half of that

ALERTS = [alert("o%d" % i, interval=INTERVAL_MS // 1000, repeat=REPEAT_MS // 1000)
          for i in range(1, N + 1)]
DEFS = {a["name"]: a for a in ALERTS}
TIMELINE = {a["query"]: [[0, 50], [DOWN_FROM - 0.5, 250], [10, 150 if i % 2 else 50], [30, 50]]
            for i, a in enumerate(ALERTS)}
RUN_SECS = 26


def main():
    wd = Workdir("outage")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    emu = start_emulator(wd, alerts=ALERTS, timeline=TIMELINE,
                         args=["--validate", "--down", "%g:%g" % (DOWN_FROM, DOWN_TO),
                               "--latency-ms", str(LATENCY_MS),
                               "--request-log", wd.file("requests.jsonl")])
    t_start = emu.started
    eng = Engine(wd, emu.url, args=["-c", "8", "-r", str(RETRIES)])
    t0 = time.time()
    try:
        eng.start()
        time.sleep(max(0, t_start + DOWN_FROM - time.time()))
        st_from = stats(emu)
        time.sleep(max(0, t_start + DOWN_TO - time.time()))
        st_to = stats(emu)
        time.sleep(max(0, t_start + RUN_SECS - time.time()))
        drain = stop_drained(eng)
        drain.check_daemon_sent(CALL_DELAY_MS)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
            eng.proc.wait()
        emu_rc = emu.stop()
    # the emulator's clock started between start_lo and started
    down_from = (emu.start_lo + DOWN_FROM) * 1000
    down_to = (emu.started + DOWN_TO) * 1000

    trans = transitions(eng.db)
    check_chain(trans, DEFS)
    rows = outbox_rows(eng.db)
    change_calls_present(trans, rows, DEFS)
    records = emu.records()
    j = Judgement(rows, records)
    j.check_complete()
    check(not j.copies, "calls accepted twice: %s" % j.copies[:10])

    # what waited through the outage, and when it came
    firsts = first_acceptances(rows, records)
    waited = [(name, r, firsts[name][k]) for name, rs in rows.items() for k, r in enumerate(rs)
              if r[5] < down_to and firsts[name][k] > down_from]
    check(len(waited) >= 5, "only %d calls waited through the outage: the test did not "
          "catch the engine busy" % len(waited))
    last = max(t for _n, _r, t in waited)
    drain_ms = DRAIN_SECS * 1000 + len(waited) * LATENCY_MS
    late = [(n, r[1:3], (t - down_to) / 1000) for n, r, t in waited if t > down_to + drain_ms]
    check(not late, "calls accepted more than %gs after the outage (%d waited, %d ms each): %s"
          % (drain_ms / 1000, len(waited), LATENCY_MS, late[:10]))
    # Retried at once when the server answers again: from the first call
    # accepted after the outage until the last call that waited through it,
    # the delivery worker sends back to back (the server's request log), it
    # does not sit out each call's own backoff.
    answered = sorted(r["us"] / 1000.0 for r in read_jsonl(wd.file("requests.jsonl"))
                      if r["ep"] in ("notify", "resolve") and r["status"] == 200)
    back = [t for t in answered if t >= down_to - 50]
    idle = [(round((a - down_to) / 1000, 2), round(b - a)) for a, b in zip(back, back[1:])
            if b <= last and b - a > LATENCY_MS + IDLE_MS]
    log("after the outage: first call accepted %.2fs after it, the last that waited %.2fs after it"
        % ((back[0] - down_to) / 1000, (last - down_to) / 1000))
    check(not idle, "the worker idled while calls waited out their backoff after the outage "
          "(s after it, ms idle): %s" % idle)

    # backoff, from the server's side: the 503 answers to each alert's
    # calls in the outage; answers less than IMMEDIATE_MS apart are the -r
    # immediate requests of one attempt. One call per alert at a time, so
    # an alert's failed attempts in the outage are those of its first
    # waiting call, numbered from 1.
    IMMEDIATE_MS = 2 * LATENCY_MS
    refused = {}
    for r in read_jsonl(wd.file("requests.jsonl")):
        if r["ep"] in ("notify", "resolve") and r["status"] == 503:
            refused.setdefault(r["alert"], []).append(r["us"] / 1000.0)
    check(refused, "no call was refused during the outage")
    most = failed_attempts = 0
    for name, ts in refused.items():
        attempts = [[ts[0]]]
        for a, b in zip(ts, ts[1:]):
            if b - a < IMMEDIATE_MS:
                attempts[-1].append(b)
            else:
                attempts.append([b])
        failed_attempts += len(attempts)
        most = max(most, len(attempts))
        check(len(attempts) <= MAX_FAILED_ATTEMPTS,
              "%s: %d failed attempts during the outage" % (name, len(attempts)))
        check(all(len(a) <= RETRIES for a in attempts),
              "%s: more than -r %d requests in one attempt: %s" % (name, RETRIES, [len(a) for a in attempts]))
        for n, (a1, a2) in enumerate(zip(attempts, attempts[1:]), 1):
            # the n-th wait is 500 * 2^(n-1) ms, its upper half jittered;
            # the next answer comes LATENCY_MS after the request
            floor = BACKOFF_FIRST_MS * 2 ** (n - 1) / 2 + LATENCY_MS
            check(a2[0] - a1[-1] >= floor - 20,
                  "%s: attempt %d came %d ms after attempt %d was refused, the backoff allows "
                  "no less than %d ms" % (name, n + 1, a2[0] - a1[-1], n, floor))
    down_calls = sum(len(ts) for ts in refused.values())
    # the /stats counters agree with the request log
    stats_503 = (count(st_to, "notify", 503) + count(st_to, "resolve", 503)
                 - count(st_from, "notify", 503) - count(st_from, "resolve", 503))
    check(stats_503 <= down_calls, "%d refused calls counted, %d logged" % (stats_503, down_calls))

    check_timing(rows, records, trans, DEFS, j.copies, drain.drained * 1000, REPEAT_MS,
                 INTERVAL_MS, allowance=lambda a, b: drain.down(a, b) + max(
                     0, min(b, down_to + DRAIN_SECS * 1000) - max(a, down_from)))
    log(validator_summary(emu))
    errors = validator_errors(emu)
    check(emu_rc == 0 and not errors, "validator (exit %d):\n%s" % (emu_rc, "\n".join(errors)))
    log("outage: expected=%d delivered=%d lost=%d duplicated=%d waited=%d last-accepted=%.2fs "
        "after the outage; failed attempts=%d (at most %d per row), requests during the "
        "outage=%d (%.1fs)"
        % (j.expected, j.delivered, len(j.lost) + len(j.not_delivered), len(j.copies),
           len(waited), (last - down_to) / 1000, failed_attempts, most, down_calls,
           time.time() - t0))
    check_no_sanitizer_reports(wd)
    wd.cleanup()


if __name__ == "__main__":
    main()
