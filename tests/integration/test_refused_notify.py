"""A server that never takes a notify (every one answered 500) against
--give-up-after 1s: each notify is given up, one ERROR line each, and the
next repeat of the still-firing alert waits repeatIntervalSecs from the
give-up, as it would from a delivery. The engine does not queue, and give
up, a repeat on every evaluation."""

import time

from harness import Emulator, Engine, Workdir, alert, check, log

REPEAT = 4


def main():
    wd = Workdir("refused-notify")
    emu = Emulator(wd, alerts=[alert("a", interval=1, repeat=REPEAT)],
                   timeline={"q-a": [[0, 150]]}, args=["--fail-rate-notify", "1"])
    eng = None
    try:
        eng = Engine(wd, emu.url, args=["--give-up-after", "1s"]).start().wait_started()
        time.sleep(11)
        rc, _ = eng.kill(15)
        check(rc == 0, "engine exit status %d" % rc)
        rows = eng.sql("select id, kind, status, created, finished from outbox order by id")
        log("outbox:", [(r[0], r[2], r[3] - rows[0][3], (r[4] or r[3]) - rows[0][3])
                        for r in rows])
        check(len(rows) >= 2, "the alert was notified %d times in 11 s: repeats must go on"
              % len(rows))
        check(all(r[1] == "notify" and r[2] == "dead" for r in rows[:-1]),
              "not every finished notify is dead: %s" % rows)
        for prev, nxt in zip(rows, rows[1:]):
            check(nxt[3] >= prev[4] + REPEAT * 1000,
                  "a repeat %d ms after the previous notify was given up (repeat %d s): %s"
                  % (nxt[3] - prev[4], REPEAT, rows))
        dead = sum(1 for r in rows if r[2] == "dead")
        lines = [l for l in eng.log_text().splitlines() if " ERROR gave up " in l]
        check(len(lines) == dead, "%d gave-up lines for %d dead rows" % (len(lines), dead))
        log("ok: %d notifies given up, each repeat %d s after the last give-up" % (dead, REPEAT))
    finally:
        if eng and eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
