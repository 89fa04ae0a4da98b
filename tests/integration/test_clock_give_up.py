"""A call's age is measured on the clock of its schedule. The server
refuses every notify; --give-up-after is an hour; the wall clock jumps two
hours forward a few seconds after the notify was enqueued. The notify is
not given up as "too old" (it is seconds old): it keeps being retried.

The daemon runs under libfaketime as in test_clock.py."""

import time

from harness import Emulator, Workdir, alert, check, log, wait_until
from test_clock import ClockEngine, FakeClock


def failed_attempts(eng):
    return eng.log_text().count("delivery failed kind=notify")


def main():
    wd = Workdir("clock-give-up")
    emu = Emulator(wd, alerts=[alert("a", repeat=300)], timeline={"q-a": [[0, 150]]},
                   args=["--fail-rate-notify", "1"])
    clock = FakeClock(wd)
    eng = ClockEngine(wd, emu.url, clock, args=["--give-up-after", "1h", "--refresh", "1h"])
    try:
        eng.start()
        wait_until(lambda: failed_attempts(eng) >= 1, 10, "a first failed attempt")
        clock.set(7200)
        wait_until(lambda: "wall clock jumped" in eng.log_text(), 5, "the jump to be seen")
        before = failed_attempts(eng)
        wait_until(lambda: failed_attempts(eng) >= before + 2 or " gave up " in eng.log_text(),
                   10, "two more attempts")
        text = eng.log_text()
        check(" gave up " not in text, "a notify seconds old was given up after the jump:\n"
              + "\n".join(l for l in text.splitlines() if "gave up" in l))
        rows = eng.sql("select status, attempts from outbox")
        check(len(rows) == 1 and rows[0][0] == "pending", "outbox: %s" % rows)
        log("ok: after a jump of +2 h the notify is still retried (%d attempts)" % rows[0][1])
        rc, _ = eng.kill(15)
        check(rc == 0, "engine exit status %d" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
