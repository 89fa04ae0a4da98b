"""SIGTERM while the main thread fetches /alerts from a server that takes
4 s to answer: the fetch is cut off and the daemon exits 0 within a
second, well inside the README's bound (--timeout plus a second)."""

import signal
import time

from harness import Emulator, Engine, Workdir, alert, check, log

LATENCY_MS = 4000


def main():
    wd = Workdir("stop-during-fetch")
    emu = Emulator(wd, alerts=[alert("a")], args=["--latency-ms", str(LATENCY_MS)])
    eng = None
    try:
        eng = Engine(wd, emu.url, args=["--timeout", "10s", "-r", "3"]).start().wait_started()
        time.sleep(0.5)
        # The premise: the fetch has not been answered yet.
        check("definitions loaded" not in eng.log_text(), "premise: the fetch already ended")
        rc, took = eng.kill(signal.SIGTERM)
        log("SIGTERM during the fetch: exit %d after %.2f s" % (rc, took))
        check(rc == 0, "exit status %d:\n%s" % (rc, eng.log_text()))
        check(took < 1.5, "took %.2f s to stop (the server answers after %d ms)"
              % (took, LATENCY_MS))
    finally:
        if eng and eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
        wd.cleanup()


if __name__ == "__main__":
    main()
