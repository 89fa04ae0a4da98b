"""kill -9 at random moments, again and again, on one database: nothing the
engine decided to send is lost, a kill sends again only the calls that
were in flight, no repeat comes early, and each alert's calls keep the
timeline's order.

The daemon runs against 60 alerts whose values change on a cycling
timeline (interval 1 s, repeat 3 s). It is killed with SIGKILL CRASH_KILLS
times (default 30) and restarted on the same database within a second.
The moments come from random.Random(CRASH_SEED) (default: the time;
printed): half of the kills (CRASH_ON_CALL) right after the server accepted
a call, when the engine has most likely not yet written it delivered, the
others anywhere. A timed kill waits (polling, not spinning) for the record
to grow; at least half of the timed kills must land within ON_CALL_MS of an
accepted call, or the test did not test what it says. Then the daemon is stopped with SIGTERM, and --once
runs deliver what the evaluations in flight at the stop enqueued.

What is judged, and from what:
- the values: every evaluation the engine logged carries a value the
  timeline served around that time, and its level; every committed
  transition follows the previous one (the transition table);
- nothing dropped between server and database: per run, the /query
  answers the emulator logged (--query-log) equal the evaluations the
  engine committed, but for at most one per alert cut off by the kill;
- every transition enqueued its call in its own commit (outbox rows);
- every outbox row reached the server (the emulator's --record), in the
  outbox's order per alert, after its creation and before the engine
  wrote it delivered; a record that repeats the one before it is a
  duplicate and must straddle a kill. Duplicates number at most one per
  kill overall, and at most one per delivery worker in any one kill (the
  default is one worker: one call in flight when the process dies);
- repeats: none earlier than repeatIntervalSecs after the previous
  delivered notify, none later than repeat + interval + REPEAT_SLACK_MS
  plus the downtime that overlaps that very wait (from a kill to the
  restarted daemon's "definitions loaded" line); change calls accepted
  within CALL_DELAY_MS plus the downtime overlapping them;
- before the --once drain, the last daemon itself sent every call but
  those enqueued or due again in its last CALL_DELAY_MS;
- the emulator's validator (--validate) judges the calls against the
  values it served; it does not know about the kills, so each complaint
  must be explained on its own: a call that arrived (duplicate, early
  repeat, unexpected, wrong message) must be one of the duplicates found
  above, at its arrival time; a call that did not come by its deadline
  must either come from a value that only a query cut short by a kill was
  served (the served-at time is that query's), or have arrived later by
  no more than the downtime overlapping its wait plus REPEAT_SLACK_MS.

Summary line: crash-loop: seed=.. kills=.. expected=.. delivered=.. lost=..
duplicated=..
"""

import os
import random
import re
import signal
import time

from fault_helpers import (Judgement, change_calls_present, check_chain,
                           check_no_sanitizer_reports, check_timing, cycling_alerts, field, level,
                           log_lines, outbox_rows, read_jsonl, sql, start_emulator, stop_drained, transitions,
                           validator_errors, validator_summary)
from harness import Engine, Workdir, check, log

CYCLE = 24
INTERVAL_MS = 1000
REPEAT_MS = 3000
# Enough alerts that a kill often lands while calls and queries are in flight.
NALERTS = int(os.environ.get("CRASH_ALERTS", "60"))
ALERTS, TIMELINE = cycling_alerts(NALERTS, CYCLE, INTERVAL_MS // 1000, REPEAT_MS // 1000)
DEFS = {a["name"]: a for a in ALERTS}
QUERY = {a["name"]: a["query"] for a in ALERTS}
REPEAT_SLACK_MS = 500      # a repeat may come this much after repeat + interval (+ downtime)
CALL_DELAY_MS = 2000      # enqueued to accepted, engine up
DELIVERERS = 1             # the default: one call in flight, so at most one duplicate per kill
ON_CALL_SHARE = float(os.environ.get("CRASH_ON_CALL", "0.5"))  # share of kills timed to an accepted call
ON_CALL_MS = 50            # a timed kill lands this soon after the record grew


def served_in_window(steps, value, lo, hi):
    """Whether the timeline served value at some time in [lo, hi] (seconds
    since the emulator started)."""
    for k, (at, v) in enumerate(steps):
        if abs(v - value) > 1e-6:
            continue
        end = steps[k + 1][0] if k + 1 < len(steps) else CYCLE
        c0 = int(lo // CYCLE) - 1
        for c in range(c0, int(hi // CYCLE) + 2):
            if c * CYCLE + at <= hi and c * CYCLE + end >= lo:
                return True
    return False


def main():
    seed = int(os.environ.get("CRASH_SEED") or time.time_ns() % 1000000007)
    nkills = int(os.environ.get("CRASH_KILLS", "30"))
    rng = random.Random(seed)
    log("crash-loop: seed=%d kills=%d (rerun with CRASH_SEED=%d)" % (seed, nkills, seed))
    wd = Workdir("crash-loop")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    qlog = wd.file("query-log.jsonl")
    emu = start_emulator(wd, alerts=ALERTS, timeline=TIMELINE,
                         args=["--validate", "--cycle", str(CYCLE), "--query-log", qlog])
    eng = Engine(wd, emu.url, args=["--deliverers", str(DELIVERERS)])
    runs = []   # [start, end, killed] of every run, epoch seconds
    timed = on_call = 0
    t0 = time.time()
    try:
        for _ in range(nkills):
            start = time.time()
            eng.start()
            if rng.random() < ON_CALL_SHARE:
                # Right after the server accepted a call: most likely before
                # the engine wrote it delivered, so it is sent again.
                timed += 1
                time.sleep(rng.uniform(0.3, 1.5))
                size = os.path.getsize(emu.record_path)
                deadline = time.time() + 2.0
                grew = None
                while time.time() < deadline:
                    if os.path.getsize(emu.record_path) != size:
                        grew = time.time()
                        break
                    time.sleep(0.002)
            else:
                grew = None
                time.sleep(rng.uniform(0.3, 2.5))
            end = time.time()
            if grew is not None and end - grew <= ON_CALL_MS / 1000:
                on_call += 1
            rc, _ = eng.kill(signal.SIGKILL)
            check(rc == -signal.SIGKILL, "engine exited with %s before it was killed:\n%s"
                  % (rc, eng.log_text()[-3000:]))
            runs.append([start, end, True])
            time.sleep(rng.uniform(0.1, 1.0))
        # The last run stops cleanly; --once runs deliver what the
        # evaluations in flight at the stop enqueued.
        start = time.time()
        eng.start()
        time.sleep(4.0)
        drain = stop_drained(eng)
        drain.check_daemon_sent(CALL_DELAY_MS)
        # The SIGTERM went out `took` before the daemon was seen gone.
        runs.append([start, drain.stopped, False, drain.stopped - drain.took])
        runs.extend([a, b, False] for a, b in drain.runs)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
            eng.proc.wait()
        emu_rc = emu.stop()
    took_all = time.time() - t0
    # The premise of the timed kills: they did land right after a call.
    check(timed == 0 or on_call * 2 >= timed,
          "only %d of %d timed kills came within %d ms of an accepted call" % (on_call, timed, ON_CALL_MS))
    emu_start = (emu.start_lo + emu.started) / 2        # the validator's time zero
    emu_slack = (emu.started - emu.start_lo) / 2 + 0.05

    # -- what the engine saw and committed -------------------------------------
    trans = transitions(eng.db)
    check_chain(trans, DEFS)
    rows = outbox_rows(eng.db)
    change_calls_present(trans, rows, DEFS)
    leased = sql(eng.db, "select count(*) from outbox where lease_until is not null")
    check(leased == [(0,)], "calls left leased after SIGTERM: %s" % leased)

    served = {}             # target -> [epoch seconds of each 200 answer]
    for q in read_jsonl(qlog):
        served.setdefault(q["target"], []).append(q["us"] / 1e6)
    evaluations = 0
    cut_short = 0
    cut_short_at = {}       # alert -> [epoch s of answers no evaluation committed, the run killed]
    stop_cut = 0            # answers to queries a SIGTERM cut off
    for i, (start, end, killed, *sigterm) in enumerate(runs):
        upto = runs[i + 1][0] if i + 1 < len(runs) else float("inf")
        committed = {}
        logged_delivered = {}
        for t, _lvl, text in log_lines(wd.file("engine-%d.log" % (i + 1))):
            if text.startswith("delivered "):
                name = field(text, "alert")
                logged_delivered[name] = logged_delivered.get(name, 0) + 1
            m = re.match(r"(evaluated|transition) ", text)
            if not m:
                continue
            name = field(text, "alert")
            v = float(field(text, "value"))
            lvl = field(text, "state") if m.group(1) == "evaluated" else field(text, "to")
            check(lvl == level(DEFS[name], v), "run %d: %s logged %s for value %s" % (i + 1, name, lvl, v))
            rel = t - emu_start
            check(served_in_window(TIMELINE[QUERY[name]], v, rel - 2.0 - emu_slack, rel + emu_slack),
                  "run %d: %s evaluated value %s at %.3f s, which the timeline did not serve then"
                  % (i + 1, name, v, rel))
            committed[name] = committed.get(name, 0) + 1
            evaluations += 1
        # Every delivery the run logged is a row it wrote delivered (a row
        # deleted under a delivery in flight would leave the server's call
        # out of the history). The line is written after the commit, so a
        # kill between them leaves a delivered row unlogged: one per
        # delivery worker at most.
        unlogged = 0
        for name in QUERY:
            n = sum(1 for r in rows.get(name, [])
                    if r[3] == "delivered" and start * 1000 <= r[6] < upto * 1000)
            logged = logged_delivered.get(name, 0)
            check(logged <= n <= logged + (1 if killed else 0),
                  "run %d: %s: %d deliveries logged, %d rows delivered in the run"
                  % (i + 1, name, logged, n))
            unlogged += n - logged
        check(unlogged <= DELIVERERS, "run %d: %d rows delivered but not logged"
              % (i + 1, unlogged))
        for name, q in QUERY.items():
            answers = [t for t in served.get(q, []) if start <= t < upto]
            d = len(answers) - committed.get(name, 0)
            check(0 <= d <= 1, "run %d (%s): %d answers to %s, %d evaluations committed"
                  % (i + 1, "killed" if killed else "stopped", len(answers), q, committed.get(name, 0)))
            cut_short += d
            if d and not killed:
                # A SIGTERM cuts off the queries in flight (README,
                # "Signals"): an answer the server sent as the stop came
                # may go unread. Such an answer comes in the alert's last
                # interval before the signal, and there are no more of
                # them than queries run at once (-c 4).
                check(sigterm and answers[-1] >= sigterm[0] - INTERVAL_MS / 1000,
                      "run %d: an answer to %s at %.3f s was not committed, yet the run was "
                      "stopped cleanly (SIGTERM at %s)" % (i + 1, q, answers[-1] - start,
                      "%.3f s" % (sigterm[0] - start) if sigterm else "none: a --once run"))
                stop_cut += 1
                check(stop_cut <= 4, "run %d: %d answers cut off by the SIGTERM, more than the "
                      "4 queries in flight at once" % (i + 1, stop_cut))
            if d:
                cut_short_at.setdefault(name, []).append(answers[-1])

    # -- what the server accepted ----------------------------------------------
    records = emu.records()
    j = Judgement(rows, records)
    j.check_complete()
    kills = [(r[1], runs[i + 1][0]) for i, r in enumerate(runs) if r[2]]
    per_kill = [0] * len(kills)
    for name, first, t, call in j.copies:
        which = [k for k, (kt, _restart) in enumerate(kills) if first <= kt * 1000 + 100 and t >= kt * 1000]
        check(which, "%s: %s accepted at %d and again at %d with no kill between"
              % (name, call, first, t))
        # The kill that cut the delivery short is the first one after the
        # first copy; later ones in between only delayed the second copy
        # (the run after that kill was killed before it got to resend).
        per_kill[which[0]] += 1
    # A kill duplicates the calls in flight: one per delivery worker at most,
    # so with the default single worker at most one per crash (DESIGN.md).
    check(max(per_kill, default=0) <= DELIVERERS,
          "more duplicates in one kill than delivery workers: %s" % per_kill)
    check(sum(per_kill) <= len(kills), "%d duplicates for %d kills" % (sum(per_kill), len(kills)))

    # Downtime of each kill: from the kill until the restarted daemon had
    # loaded its definitions (its log), or until the next kill when it
    # never got that far.
    down_windows = []
    for i, r in enumerate(runs):
        if not r[2]:
            continue
        ready = runs[i + 1][1]
        for t, _lvl, text in log_lines(wd.file("engine-%d.log" % (i + 2))):
            if text.startswith("definitions loaded") or text.startswith("using stored definitions"):
                ready = t
                break
        down_windows.append((r[1] * 1000, ready * 1000))

    # repeats: never early, never late by more than the downtime that
    # overlaps the wait, plus a fixed slack
    def downtime(lo, hi):
        return drain.down(lo, hi) + sum(max(0, min(hi, b) - max(lo, a)) for a, b in down_windows)
    check_timing(rows, records, trans, DEFS, j.copies, runs[-1][1] * 1000, REPEAT_MS, INTERVAL_MS,
                 call_delay_ms=CALL_DELAY_MS, repeat_slack_ms=REPEAT_SLACK_MS, allowance=downtime)

    # -- the validator's view --------------------------------------------------
    unexplained = []
    explained = 0
    recs_of = {}
    for r in records:
        recs_of.setdefault(r["alert"], []).append((r["t"], r["kind"], r.get("message", "")))
    for line in validator_errors(emu):
        name = re.match(r"ERROR alert=(\S+):", line).group(1)
        # A complaint about a call that arrived (a duplicate, an early repeat,
        # an unexpected notify or resolve, a wrong message) names its arrival
        # time: it is explained when that call is a duplicate found above.
        m = re.search(r'(?:(?:duplicate|early repeat|unexpected) (?:notify "[^"]*"|resolve)|'
                      r'came notify "[^"]*") at ([\d.]+) s', line)
        ok = False
        if m:
            at = (emu_start + float(m.group(1))) * 1000
            ok = any(c[0] == name and abs(c[2] - at) <= emu_slack * 1000 + 100 for c in j.copies)
        m2 = re.search(r'expected (?:(?:change|repeat) notify "((?:[^"\\]|\\.)*)"|resolve) '
                       r'\((\w+) served at ([\d.]+) s\) by ([\d.]+) s, none came', line)
        if m2:
            since = emu_start + float(m2.group(3))
            due = (emu_start + float(m2.group(4))) * 1000
            # Only a query cut short by a kill was served it (the level
            # started with that answer): nothing was committed to call.
            ok = any(abs(t - since) <= emu_slack + 0.05 for t in cut_short_at.get(name, []))
            # Or it came late, by no more than the downtime in its way.
            want = ("notify", m2.group(1)) if m2.group(1) is not None else ("resolve", "")
            arrived = [t for t, k, msg in recs_of.get(name, []) if (k, msg) == want and t >= since * 1000]
            if not ok and arrived:
                ok = arrived[0] - due <= downtime(since * 1000, arrived[0]) + REPEAT_SLACK_MS
        if ok:
            explained += 1
        else:
            unexplained.append(line)
    log(validator_summary(emu))
    check(not unexplained, "validator errors the kills do not explain:\n" + "\n".join(unexplained))
    check(emu_rc in (0, 1), "emulator exit status %d" % emu_rc)

    log("crash-loop: seed=%d kills=%d expected=%d delivered=%d lost=%d duplicated=%d "
        "(most in one kill=%d; evaluations=%d cut-short-by-kill=%d "
        "validator-errors-explained=%d timed-kills=%d on-a-call=%d runs=%d %.1fs)"
        % (seed, len(kills), j.expected, j.delivered, len(j.lost) + len(j.not_delivered),
           len(j.copies), max(per_kill, default=0), evaluations, cut_short, explained,
           timed, on_call, len(runs), took_all))
    check_no_sanitizer_reports(wd)
    wd.cleanup()


if __name__ == "__main__":
    main()
