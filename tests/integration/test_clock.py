"""The wall clock jumps: back an hour and forward a day while the daemon
runs, and back a day while it is down. Evaluations neither stall nor come
in a burst, and repeats of a firing alert stay at least repeatIntervalSecs
apart and keep coming.

The daemon runs under libfaketime in its file-controlled mode, so the offset
of its CLOCK_REALTIME changes while it runs; CLOCK_MONOTONIC stays real
(the engine measures jumps against it). The emulator runs on the real clock:
its query log and record are the real times of what the engine did."""

import json
import os
import signal
import subprocess
import time

from harness import Emulator, Engine, Workdir, alert, check, log, wait_until

INTERVAL = 1.0
REPEAT = 2.0
QUIET = ["quiet-%d" % i for i in range(6)]       # PASS: queried every second
FIRING = ["firing-%d" % i for i in range(4)]     # CRITICAL: a notify every 2 s
ALERTS = ([alert(n, interval=int(INTERVAL), repeat=int(REPEAT)) for n in QUIET] +
          [alert(n, interval=int(INTERVAL), repeat=int(REPEAT)) for n in FIRING])
TIMELINE = dict([("q-" + n, [[0, 10]]) for n in QUIET] + [("q-" + n, [[0, 500]]) for n in FIRING])


def find_libfaketime():
    for d in ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime",
              "/usr/lib/faketime", "/usr/local/lib/faketime", "/usr/local/lib"):
        p = os.path.join(d, "libfaketimeMT.so.1")
        if os.path.exists(p):
            return p
    r = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.endswith("/libfaketimeMT.so.1"):
            return line
    raise AssertionError("libfaketime not found: scripts/install-deps.sh faketime")


class FakeClock:
    """The offset file libfaketime reads on every clock call."""

    def __init__(self, wd):
        self.path = wd.file("faketime.rc")
        self.set(0)

    def set(self, offset_secs):
        # Whole-file replace: a reader never sees it half written (an empty
        # file would read as "no offset", a jump of its own).
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % offset_secs)
        os.rename(tmp, self.path)
        self.offset = offset_secs

    def env(self):
        env = dict(os.environ)
        # FORCE_MONOTONIC_FIX, on by default with glibc >= 2.34, makes every
        # pthread_cond_timedwait on a CLOCK_MONOTONIC condition variable
        # return at once (the workers would spin): off.
        env.update(LD_PRELOAD=find_libfaketime(), FAKETIME_TIMESTAMP_FILE=self.path,
                   FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1",
                   FAKETIME_FORCE_MONOTONIC_FIX="0")
        # An ASan build wants its runtime first in the library list.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                     "verify_asan_link_order=0"]))
        return env


class ClockEngine(Engine):
    """The daemon with its wall clock under a FakeClock."""

    def __init__(self, wd, server, clock, **kw):
        super().__init__(wd, server, **kw)
        self.clock = clock

    def start(self, extra=()):
        self.runs += 1
        self.stderr_path = self.wd.file("%s-%d.log" % (self.name, self.runs))
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.cmd(extra), stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=self.clock.env())
        return self


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def queries(path, t0, t1):
    """{target: [real seconds]} of the queries answered in [t0, t1)."""
    out = {}
    for q in read_jsonl(path):
        t = q["us"] / 1e6
        if t0 <= t < t1:
            out.setdefault(q["target"], []).append(t)
    return out


def settle():
    """The emulator flushes its query log once a second."""
    time.sleep(1.3)


SLACK = 0.3     # a query against its fixed-rate schedule, on a busy machine


def check_steady(qlog, t0, t1, what):
    """The README's "no stall, no burst": every alert is queried at its
    fixed rate throughout, no gap over an interval (+ SLACK), no two
    queries of an alert within an interval (- SLACK), so no window shorter
    than that holds more queries than there are alerts."""
    per = queries(qlog, t0, t1)
    names = ["q-" + n for n in QUIET + FIRING]
    worst_gap = 0.0
    for n in names:
        ts = per.get(n, [])
        check(len(ts) >= (t1 - t0) / INTERVAL - 3,
              "%s: %s queried %d times in %.1fs" % (what, n, len(ts), t1 - t0))
        edges = [t0] + ts + [t1]
        gaps = [b - a for a, b in zip(edges, edges[1:])]
        check(max(gaps) <= INTERVAL + SLACK,
              "%s: %s not queried for %.2fs (interval %.0fs)" % (what, n, max(gaps), INTERVAL))
        worst_gap = max(worst_gap, max(gaps))
        inner = [b - a for a, b in zip(ts, ts[1:])]
        check(not inner or min(inner) >= INTERVAL - SLACK,
              "%s: %s queried twice within %.2fs (interval %.0fs)" % (what, n, min(inner), INTERVAL))
    everything = sorted(t for n in names for t in per.get(n, []))
    window = INTERVAL - SLACK
    busiest = 0
    j = 0
    for i, t in enumerate(everything):
        while everything[j] <= t - window:
            j += 1
        busiest = max(busiest, i - j + 1)
    check(busiest <= len(names), "%s: %d queries within %.1fs, %d alerts at one per %.0fs"
          % (what, busiest, window, len(names), INTERVAL))
    return worst_gap, busiest


def check_repeats(emu, t0, t1, what, restarted=False):
    """Repeats of each firing alert that arrive in [t0, t1): at least REPEAT
    after the one before (which may be earlier), and never more than a
    repeat plus one interval (the evaluation that sees it due) plus SLACK
    without one, from t0 (or the one before, when the daemon ran all
    along) up to t1."""
    worst = []
    for n in FIRING:
        ts = [r["t"] / 1000.0 for r in emu.records() if r["alert"] == n and r["kind"] == "notify"]
        before = [t for t in ts if t < t0][-1:]
        inside = [t for t in ts if t0 <= t < t1]
        check(inside, "%s: %s not notified in %.1fs" % (what, n, t1 - t0))
        seq = before + inside
        gaps = [b - a for a, b in zip(seq, seq[1:])]
        check(not gaps or min(gaps) >= REPEAT - 0.05,
              "%s: repeats of %s %.3fs apart, repeatIntervalSecs is %.0f: %s"
              % (what, n, min(gaps), REPEAT, [round(t - t0, 3) for t in seq]))
        waits = gaps[1:] if before and restarted else gaps
        waits = waits + [t1 - seq[-1], inside[0] - t0]
        check(max(waits) <= REPEAT + INTERVAL + SLACK,
              "%s: no repeat of %s for %.2fs: %s" % (what, n, max(waits), [round(t - t0, 3) for t in seq]))
        worst.append(min(gaps or [REPEAT]))
    return min(worst)


def main():
    t_start = time.time()
    wd = Workdir("clock")
    qlog = wd.file("queries.jsonl")
    emu = Emulator(wd, alerts=ALERTS, timeline=TIMELINE, args=["--query-log", qlog])
    clock = FakeClock(wd)
    eng = ClockEngine(wd, emu.url, clock, args=["--refresh", "1h"])
    try:
        eng.start()

        def first_notifies():
            check(eng.proc.poll() is None, "daemon exited %s:\n%s" % (eng.proc.poll(), eng.log_text()[-3000:]))
            return len({r["alert"] for r in emu.records()}) == len(FIRING)
        wait_until(first_notifies, 15, "the first notifies")
        t_steady = time.time()
        time.sleep(5)
        phases = [("steady", t_steady)]
        for label, offset in (("back an hour", -3600), ("forward a day", 86400)):
            clock.set(offset)
            phases.append((label, time.time()))
            time.sleep(7)
        t_end = time.time()
        settle()
        text = eng.log_text()
        check(eng.proc.poll() is None, "daemon died:\n" + text[-3000:])
        jumps = [l for l in text.splitlines() if "wall clock jumped" in l]
        check(len(jumps) == 2, "expected two jumps in the log: %s" % jumps)
        for (label, t0), (_, t1) in zip(phases, phases[1:] + [(None, t_end)]):
            gap, busiest = check_steady(qlog, t0, t1, label)
            rep = check_repeats(emu, t0, t1, label)
            log("%s: longest gap %.2fs, busiest second %d queries, closest repeats %.2fs"
                % (label, gap, busiest, rep))

        # Down while the clock goes back a day (from +1 day to +0): the
        # stored schedules are a day ahead when it starts again.
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
        clock.set(0)
        time.sleep(0.5)
        t_restart = time.time()
        eng.start()
        time.sleep(7)
        t_end = time.time()
        settle()
        check(eng.proc.poll() is None, "daemon died after the restart:\n" + eng.log_text()[-3000:])
        # The first evaluations come within an interval of the start (half a
        # second for the start itself).
        gap, busiest = check_steady(qlog, t_restart + 0.5, t_end, "restart a day back")
        rep = check_repeats(emu, t_restart + 0.5, t_end, "restart a day back", restarted=True)
        log("restart a day back: longest gap %.2fs, busiest second %d queries, closest repeats %.2fs"
            % (gap, busiest, rep))
        rc, _ = eng.kill(signal.SIGTERM)
        check(rc == 0, "daemon exit status %d after SIGTERM" % rc)
    finally:
        if eng.proc and eng.proc.poll() is None:
            eng.proc.kill()
        emu.stop()
    log("clock: ok in %.1fs" % (time.time() - t_start))
    wd.cleanup()


if __name__ == "__main__":
    main()
