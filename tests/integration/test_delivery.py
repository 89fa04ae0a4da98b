"""Delivery retries, judged from the server's side (the emulator's
--request-log: every answered request with its status and time):

1. backoff: a notify the server answers 500 every time is retried with
   waits that double from 0.5 s, each drawn from the upper half of its
   step (n-th wait in [0.25, 0.5] x 2^(n-1) s), and the waits differ from
   a fixed schedule (jitter). With -r 1 every attempt is one request.
2. give-up: with --give-up-after 3s the row is retried until it is older
   than that, then becomes `dead` with one ERROR line naming it, and is
   never sent again.
3. rejection: a notify answered 400 (4xx) is tried 3 times, backing off,
   then becomes `dead` with one ERROR line; its alert keeps its state.

The 60 s cap is reached only at the 8th retry, after about two minutes of
waits: BACKOFF_LONG=1 runs the backoff case that long and checks the waits
stop doubling at 60 s; the default run checks the first five steps."""

import os
import re
import signal
import time

from fault_helpers import check_no_sanitizer_reports, read_jsonl, sql
from harness import Emulator, Engine, Workdir, alert, check, log, wait_until

FIRST_MS = 500          # the first backoff step
CAP_MS = 60000
# A retry comes when its wait is over: this much later at most (a worker's
# wake-up and the request itself on a busy machine).
LATE_MS = 250
EARLY_MS = 20           # clocks: the engine's and the emulator's, rounded


def notify_requests(path):
    """[(epoch s, status)] of the /notify requests the emulator answered."""
    return [(r["us"] / 1e6, r["status"]) for r in read_jsonl(path) if r["ep"] == "notify"]


def error_lines(eng, word):
    return [l for l in eng.log_text().splitlines() if " ERROR " in l and word in l]


def firing(wd, name, args):
    """An emulator serving one CRITICAL alert (no repeat for 5 minutes)
    with the given fault flags, logging every request."""
    rlog = wd.file(name + "-requests.jsonl")
    emu = Emulator(wd, alerts=[alert("f", repeat=300)], timeline={"q-f": [[0, 500]]}, name=name,
                   args=["--request-log", rlog] + args)
    return emu, rlog


def check_backoff(wd):
    long_run = bool(os.environ.get("BACKOFF_LONG"))
    waits_wanted = 10 if long_run else 5
    emu, rlog = firing(wd, "backoff", ["--fail-rate-notify", "1"])
    eng = Engine(wd, emu.url, db=wd.database("backoff"), name="backoff", args=["-r", "1"])
    try:
        eng.start().wait_started()
        # 0.5 + 1 + 2 + 4 + 8 s of waits at most for five, then 16, 32, 60...
        budget = sum(min(FIRST_MS * 2 ** k, CAP_MS) for k in range(waits_wanted)) / 1000 + 5
        wait_until(lambda: len(notify_requests(rlog)) >= waits_wanted + 1, budget,
                   "%d attempts of the notify" % (waits_wanted + 1))
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    reqs = notify_requests(rlog)
    check(all(s == 500 for _, s in reqs), "a notify was not answered 500: %s" % reqs)
    waits = [round((b - a) * 1000) for (a, _), (b, _) in zip(reqs, reqs[1:])][:waits_wanted]
    log("backoff: waits between attempts (ms): %s" % waits)
    shares = []
    for n, w in enumerate(waits, 1):
        step = min(FIRST_MS * 2 ** (n - 1), CAP_MS)
        check(step / 2 - EARLY_MS <= w <= step + LATE_MS,
              "wait %d is %d ms, the backoff allows %d..%d ms" % (n, w, step / 2, step))
        shares.append(w / step)
    # Jitter: the waits are not a fixed share of their step (a fixed
    # schedule gives the same share every time, to a few ms).
    check(max(shares) - min(shares) > 0.02,
          "waits without jitter: each is %.3f..%.3f of its step" % (min(shares), max(shares)))
    rows = sql(eng.db, "select status, attempts from outbox")
    check(rows and rows[0][0] == "pending" and rows[0][1] == len(reqs),
          "outbox row %s after %d refused attempts" % (rows, len(reqs)))
    return waits


def check_give_up(wd):
    give_up_ms = 3000
    emu, rlog = firing(wd, "give-up", ["--fail-rate-notify", "1"])
    eng = Engine(wd, emu.url, db=wd.database("give-up"), name="give-up",
                 args=["-r", "1", "--give-up-after", "%dms" % give_up_ms])
    try:
        eng.start().wait_started()
        # 0.5 + 1 + 2 s of waits reach 3 s; the attempt after the next wait
        # (at most 4 s) finds the row too old.
        wait_until(lambda: sql(eng.db, "select count(*) from outbox where status = 'dead'")[0][0],
                   give_up_ms / 1000 + 4 + 3, "the notify to be given up")
        dead_at = time.time()
        time.sleep(3)               # a dead row is never sent again
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    rows = sql(eng.db, "select status, attempts, created, last_error from outbox order by id")
    status, attempts, created, last_error = rows[0]
    # the first row's attempts, then whatever came after it was given up
    reqs, later = notify_requests(rlog)[:attempts], notify_requests(rlog)[attempts:]
    check(status == "dead" and attempts == len(reqs), "row %s after %d requests" % (rows[0], len(reqs)))
    check(last_error and "500" in last_error, "last_error of the dead row: %r" % last_error)
    # Retried until it was older than --give-up-after, not given up sooner:
    # the last attempt (the one that gave up) came after that age, and the
    # one before it did not.
    last_age = reqs[-1][0] * 1000 - created
    check(last_age >= give_up_ms - EARLY_MS,
          "given up at an age of %d ms, --give-up-after is %d ms" % (last_age, give_up_ms))
    check(len(reqs) < 2 or reqs[-2][0] * 1000 - created < give_up_ms,
          "attempt %d at an age of %d ms was not given up" % (len(reqs) - 1,
                                                              reqs[-2][0] * 1000 - created))
    errors = error_lines(eng, "gave up")
    # one ERROR line per dead row
    check(len(errors) == sum(1 for r in rows if r[0] == "dead") and "alert=f" in errors[0]
          and "kind=notify" in errors[0] and "reason=too-old" in errors[0],
          "ERROR lines of the give-up: %s" % errors)
    log("give-up: dead after %d attempts at an age of %d ms: %s"
        % (attempts, last_age, errors[0].split(" ERROR ", 1)[1][:160]))
    check(dead_at - reqs[-1][0] < 2, "dead row seen %.1fs after its last attempt" % (dead_at - reqs[-1][0]))
    check_quiet_after(later, rows, reqs[-1][0])


def check_quiet_after(later, rows, dead_s):
    """After its notify is given up the alert, still firing, is not
    notified again before repeatIntervalSecs (300 s): the dead row is not
    sent again and no new row takes its place at once."""
    check(later == [] and len(rows) == 1,
          "the alert was notified again %.1fs after its notify was given up (repeatIntervalSecs "
          "300): %d more requests to /notify in 3 s, outbox rows (status, attempts, ...): %s"
          % ((later[0][0] - dead_s) if later else 0, len(later), [r[:2] for r in rows]))


def check_rejected(wd):
    emu, rlog = firing(wd, "rejected", ["--reject-rate-notify", "1"])
    eng = Engine(wd, emu.url, db=wd.database("rejected"), name="rejected", args=["-r", "3"])
    try:
        eng.start().wait_started()
        wait_until(lambda: sql(eng.db, "select count(*) from outbox where status = 'dead'")[0][0],
                   10, "the rejected notify to be given up")
        time.sleep(3)
        state = sql(eng.db, "select state from alert_status where name = 'f'")
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    first_attempts = sql(eng.db, "select attempts from outbox order by id limit 1")[0][0]
    reqs, later = notify_requests(rlog)[:first_attempts], notify_requests(rlog)[first_attempts:]
    # A 4xx is not retried at once (-r 3 would make three requests of one
    # attempt): 3 attempts, one request each, the 2nd and 3rd after a backoff.
    check([s for _, s in reqs] == [400, 400, 400], "requests to /notify: %s" % reqs)
    waits = [round((b - a) * 1000) for (a, _), (b, _) in zip(reqs, reqs[1:])]
    for n, w in enumerate(waits, 1):
        step = FIRST_MS * 2 ** (n - 1)
        check(step / 2 - EARLY_MS <= w <= step + LATE_MS,
              "a rejected notify retried after %d ms, the backoff allows %d..%d ms" % (w, step / 2, step))
    rows = sql(eng.db, "select status, attempts, last_error from outbox order by id")
    check(rows[0][0] == "dead" and rows[0][1] == 3 and "400" in rows[0][2],
          "outbox after three rejections: %s" % rows)
    errors = error_lines(eng, "gave up")
    # one ERROR line per dead row
    check(len(errors) == sum(1 for r in rows if r[0] == "dead") and "alert=f" in errors[0] and re.search(r"attempts=3\b", errors[0]),
          "ERROR lines of the rejection: %s" % errors)
    check(state == [("CRITICAL",)], "state of f after its notify was given up: %s" % state)
    log("rejected: 3 attempts %s ms apart, then dead: %s"
        % (waits, errors[0].split(" ERROR ", 1)[1][:160]))
    check_quiet_after(later, rows, reqs[-1][0])


def main():
    t0 = time.time()
    wd = Workdir("delivery")
    log("workdir: %s (kept with KEEP_TEST_DIR=1)" % wd.path)
    failed = []
    # Each case on its own database and emulator: one failing does not hide
    # what the others find.
    for case in (check_rejected, check_give_up, check_backoff):
        try:
            case(wd)
        except AssertionError as e:
            log("FAIL %s: %s" % (case.__name__, e))
            failed.append(case.__name__)
    check_no_sanitizer_reports(wd)
    check(not failed, "failed: %s" % ", ".join(failed))
    log("delivery: ok (%.1fs)" % (time.time() - t0))
    wd.cleanup()


if __name__ == "__main__":
    main()
